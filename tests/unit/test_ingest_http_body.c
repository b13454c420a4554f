/*
 * test_ingest_http_body: a POST /v1/events body -> per-line results and the
 * reply (ingest/http_body.h): physical line numbers across blank lines,
 * CRLF and a BOM, the file reader's words for an overlong line, settling,
 * the status code rules, and a reply that stays valid JSON whatever bytes
 * an error quotes.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "../../ingest/http_body.h"
#include "leak_guard.h"

#define NOW INT64_C(1795514400000) /* 2026-11-24T10:00:00Z */
#define LINE(id)                                                                                   \
    "{\"event_id\":\"" id "\",\"kind\":\"sale\",\"sku\":\"S\",\"location\":\"L\",\"qty\":1,"       \
    "\"occurred_at\":1795514400000}"

static ingest_body *body_of(const char *text, size_t max_line)
{
    sf_parse_opts o;
    sf_parse_opts_init(&o);
    o.now_ms = NOW;
    o.default_source = "http";
    o.max_line = max_line;
    size_t len = strlen(text);
    char *copy = malloc(len + 1);
    cr_assert(copy);
    memcpy(copy, text, len);
    ingest_body *b = NULL;
    sf_error err;
    cr_assert(ingest_body_new(copy, len, &o, &b, &err) == SF_OK, "%s", err.msg);
    return b;
}

/* The next line's result; asserts its line number and status. */
static ingest_line_result *next_line(ingest_body *b, uint64_t line, ingest_line_status status)
{
    sf_event ev;
    ingest_line_result *r = NULL;
    sf_error err;
    cr_assert(ingest_body_next(b, &ev, &r, &err) == SF_OK, "%s", err.msg);
    cr_assert_eq(r->line, line);
    cr_assert_eq(r->status, status, "line %llu: status %s, error %s", (unsigned long long)line,
                 ingest_line_status_str(r->status), r->error ? r->error : "");
    return r;
}

static void no_more(ingest_body *b)
{
    sf_event ev;
    ingest_line_result *r;
    sf_error err;
    cr_assert(ingest_body_next(b, &ev, &r, &err) == SF_ENOTFOUND);
}

LEAK_TEST(http_body, numbers_physical_lines_across_bom_crlf_and_blanks)
{
    ingest_body *b =
        body_of("\xEF\xBB\xBF" LINE("a") "\r\n\r\n \t\n" LINE("b") "\r\n" LINE("c"), 65536);
    ingest_line_result *a = next_line(b, 1, INGEST_LINE_PENDING);
    cr_assert_str_eq(a->event_id, "a");
    ingest_line_result *lb = next_line(b, 4, INGEST_LINE_PENDING);
    ingest_line_result *c = next_line(b, 5, INGEST_LINE_PENDING);
    no_more(b);
    cr_assert_not(ingest_body_done(b), "3 lines are pending");
    ingest_body_settle(b, a, INGEST_LINE_ACCEPTED, NULL);
    ingest_body_settle(b, lb, INGEST_LINE_DUPLICATE, NULL);
    ingest_body_settle(b, c, INGEST_LINE_ACCEPTED, NULL);
    ingest_body_settle(b, c, INGEST_LINE_FAILED, "late"); /* settled once: no-op */
    cr_assert(ingest_body_done(b));
    ingest_body_counts n = ingest_body_count(b);
    cr_assert(n.lines == 3 && n.accepted == 2 && n.duplicate == 1 && n.failed == 0);
    cr_assert_eq(ingest_body_http_status(b), 202);
    json_t *j = ingest_body_reply_json(b);
    char *text = json_dumps(j, JSON_COMPACT);
    cr_assert_str_eq(text,
                     "{\"accepted\":2,\"duplicate\":1,\"rejected\":0,\"failed\":0,\"results\":["
                     "{\"line\":1,\"status\":\"accepted\",\"event_id\":\"a\"},"
                     "{\"line\":4,\"status\":\"duplicate\",\"event_id\":\"b\"},"
                     "{\"line\":5,\"status\":\"accepted\",\"event_id\":\"c\"}]}");
    free(text);
    json_decref(j);
    ingest_body_free(b);
}

LEAK_TEST(http_body, rejects_name_the_line_and_any_reject_makes_400)
{
    ingest_body *b =
        body_of(LINE("a") "\n{\"event_id\":\"b\",\"kind\":\"sale\"}\n"
                          "{\"event_id\":\""
                          "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                          "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                          "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                          "\"}\n",
                64);
    /* max_line 64 is below a valid line too: every line is overlong here but
     * the second, which is short and incomplete */
    ingest_line_result *a = next_line(b, 1, INGEST_LINE_REJECTED);
    cr_assert(strstr(a->error, "line 1: ") == a->error &&
                  strstr(a->error, "longer than max_line 64"),
              "%s", a->error);
    ingest_line_result *r = next_line(b, 2, INGEST_LINE_REJECTED);
    cr_assert(strstr(r->error, "line 2: field sku") == r->error, "%s", r->error);
    next_line(b, 3, INGEST_LINE_REJECTED);
    no_more(b);
    cr_assert(ingest_body_done(b));
    cr_assert_eq(ingest_body_http_status(b), 400);
    ingest_body_free(b);
}

LEAK_TEST(http_body, a_failed_line_makes_503_and_its_reason_stays_valid_utf8)
{
    ingest_body *b = body_of(LINE("a") "\n" LINE("b") "\nnope\n", 65536);
    ingest_line_result *a = next_line(b, 1, INGEST_LINE_PENDING);
    ingest_line_result *lb = next_line(b, 2, INGEST_LINE_PENDING);
    next_line(b, 3, INGEST_LINE_REJECTED);
    no_more(b);
    ingest_body_settle(b, a, INGEST_LINE_ACCEPTED, NULL);
    ingest_body_settle(b, lb, INGEST_LINE_FAILED, "timeout \xff\x01 \xc3\xa9");
    cr_assert_eq(ingest_body_http_status(b), 503, "a failed line wins over a rejected one");
    cr_assert_str_eq(lb->error, "line 2: timeout ?? \xc3\xa9");
    json_t *j = ingest_body_reply_json(b);
    cr_assert(j);
    cr_assert_eq(json_integer_value(json_object_get(j, "failed")), 1);
    json_decref(j);
    ingest_body_free(b);
}

LEAK_TEST(http_body, an_empty_or_blank_body_is_400_with_a_reason)
{
    ingest_body *b = body_of("\n  \r\n", 65536);
    no_more(b);
    cr_assert(ingest_body_done(b));
    cr_assert_eq(ingest_body_http_status(b), 400);
    json_t *j = ingest_body_reply_json(b);
    cr_assert_str_eq(json_string_value(json_object_get(j, "error")), "body: no event lines");
    cr_assert_eq(json_array_size(json_object_get(j, "results")), 0);
    json_decref(j);
    ingest_body_free(b);
}
