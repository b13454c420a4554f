/*
 * test_feed_reader: a FILE* of JSON lines or CSV -> (line number, event or
 * reject). Format detection from the first non-blank line, blank lines,
 * BOM, CR/LF, max_line enforcement that resumes at the next line, line
 * numbers in every message, a bad CSV header accounting for every later
 * line, and read errors.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "event_parse.h"
#include "leak_guard.h"

#define NOW INT64_C(1795514400000)

static FILE *input(const char *data, size_t len)
{
    FILE *f = tmpfile();
    cr_assert(f);
    cr_assert(fwrite(data, 1, len, f) == len);
    rewind(f);
    return f;
}

static sf_feed_reader *reader(FILE *f, size_t max_line)
{
    sf_parse_opts o;
    sf_parse_opts_init(&o);
    o.now_ms = NOW;
    o.default_source = "feed";
    if (max_line)
        o.max_line = max_line;
    sf_feed_reader *r = NULL;
    sf_error err;
    cr_assert(sf_feed_reader_new(f, &o, &r, &err) == SF_OK, "%s", err.msg);
    return r;
}

static void next_event(sf_feed_reader *r, uint64_t line, const char *event_id)
{
    sf_feed_item it;
    sf_error err;
    cr_assert(sf_feed_reader_next(r, &it, &err) == SF_OK, "expected line %llu",
              (unsigned long long)line);
    cr_assert(it.ok, "line %llu rejected: %s", (unsigned long long)line, it.error.msg);
    cr_assert(it.line == line, "line %llu, want %llu", (unsigned long long)it.line,
              (unsigned long long)line);
    cr_assert(strcmp(it.event.event_id, event_id) == 0, "line %llu: id %s, want %s",
              (unsigned long long)line, it.event.event_id, event_id);
}

static void next_reject(sf_feed_reader *r, uint64_t line, const char *msg)
{
    sf_feed_item it;
    sf_error err;
    cr_assert(sf_feed_reader_next(r, &it, &err) == SF_OK, "expected line %llu",
              (unsigned long long)line);
    cr_assert(!it.ok, "line %llu accepted", (unsigned long long)line);
    cr_assert(it.line == line, "line %llu, want %llu", (unsigned long long)it.line,
              (unsigned long long)line);
    cr_assert(strcmp(it.error.msg, msg) == 0, "\n  got:  %s\n  want: %s", it.error.msg, msg);
}

static void next_end(sf_feed_reader *r)
{
    sf_feed_item it;
    sf_error err;
    cr_assert(sf_feed_reader_next(r, &it, &err) == SF_ENOTFOUND);
    cr_assert(sf_feed_reader_next(r, &it, &err) == SF_ENOTFOUND, "end stays the end");
}

#define J(id, qty)                                                                                 \
    "{\"event_id\":\"" id "\",\"kind\":\"sale\",\"sku\":\"A\",\"location\":\"L\",\"qty\":" #qty    \
    ",\"occurred_at\":1}"

LEAK_TEST(feed_reader, jsonl_with_blank_lines_bom_and_crlf)
{
    const char data[] = "\xEF\xBB\xBF" J(
        "e-1", 1) "\r\n"
                  "\n"
                  "   \t\r\n" J("e-4", 2) "\n" J(
                      "e-5", -2) "\r\n"
                                 "  " J("e-6", 3) "\n"
                                                  "not json\n" J("e-8", 4); /* no final newline */
    FILE *f = input(data, sizeof data - 1);
    sf_feed_reader *r = reader(f, 0);
    cr_assert(sf_feed_reader_format(r) == SF_FEED_UNKNOWN);
    next_event(r, 1, "e-1");
    cr_assert(sf_feed_reader_format(r) == SF_FEED_JSONL);
    next_event(r, 4, "e-4");
    next_reject(r, 5, "line 5: field qty: -2 is negative (only ADJUST may be)");
    next_event(r, 6, "e-6");
    sf_feed_item it;
    sf_error err;
    cr_assert(sf_feed_reader_next(r, &it, &err) == SF_OK && !it.ok && it.line == 7);
    cr_assert(strncmp(it.error.msg, "line 7: not valid JSON: ", 24) == 0, "%s", it.error.msg);
    cr_assert(it.text_len == 8 && memcmp(it.text, "not json", 8) == 0, "text of a reject");
    next_event(r, 8, "e-8");
    next_end(r);
    sf_feed_reader_free(r);
    fclose(f);
}

LEAK_TEST(feed_reader, item_text_is_the_line)
{
    const char data[] = "\xEF\xBB\xBF" J("e-1", 1) "\r\n";
    FILE *f = input(data, sizeof data - 1);
    sf_feed_reader *r = reader(f, 0);
    sf_feed_item it;
    sf_error err;
    cr_assert(sf_feed_reader_next(r, &it, &err) == SF_OK && it.ok);
    const char *want = J("e-1", 1);
    cr_assert(it.text_len == strlen(want) && memcmp(it.text, want, it.text_len) == 0,
              "BOM and CRLF stripped");
    next_end(r);
    sf_feed_reader_free(r);
    fclose(f);
}

LEAK_TEST(feed_reader, csv_with_header)
{
    const char data[] = "\xEF\xBB\xBF"
                        "\r\n"
                        "event_id,kind,sku,location,qty,occurred_at\r\n"
                        "c-1,sale,A,L,1,2026-11-24T09:00:00Z\r\n"
                        "\r\n"
                        "c-2,return,\"B, big\",L,2,1795514400000\r\n"
                        "c-3,sale,A,L,x,1\r\n"
                        "c-4,asn,A,L,9,1";
    FILE *f = input(data, sizeof data - 1);
    sf_feed_reader *r = reader(f, 0);
    next_event(r, 3, "c-1");
    cr_assert(sf_feed_reader_format(r) == SF_FEED_CSV);
    next_event(r, 5, "c-2");
    next_reject(r, 6, "line 6: field qty: 'x' is not an integer");
    next_event(r, 7, "c-4");
    next_end(r);
    sf_feed_reader_free(r);
    fclose(f);
}

LEAK_TEST(feed_reader, bad_csv_header_rejects_every_line)
{
    const char data[] = "kind,sku,location,qty,occurred_at,chanel\n"
                        "sale,A,L,1,1,web\n"
                        "\n"
                        "sale,A,L,1,1,web\n";
    FILE *f = input(data, sizeof data - 1);
    sf_feed_reader *r = reader(f, 0);
    next_reject(r, 1, "line 1: CSV header: unknown column 'chanel' (column 6)");
    next_reject(r, 2, "line 2: skipped: the CSV header (line 1) is invalid");
    next_reject(r, 4, "line 4: skipped: the CSV header (line 1) is invalid");
    next_end(r);
    sf_feed_reader_free(r);
    fclose(f);
}

LEAK_TEST(feed_reader, overlong_lines_are_rejected_and_reading_resumes)
{
    /* max_line 100: a 250-byte line, one of exactly 100, one of 101, one of
     * 100 plus a CR, and a 1 MB one at the end without a newline */
    size_t big = 1 << 20;
    char *data = malloc(big + 2048);
    cr_assert(data);
    size_t n = 0;
    n += (size_t)sprintf(data + n, "%s\n", J("o-1", 1));
    data[n] = '{';
    memset(data + n + 1, 'x', 249);
    n += 250;
    data[n++] = '\n';
    /* exactly 100 bytes: pad the id */
    char id100[128];
    size_t fixed = strlen(J("", 1));
    memset(id100, 'p', 100 - fixed);
    id100[100 - fixed] = '\0';
    char line[256];
    snprintf(line, sizeof line,
             "{\"event_id\":\"%s\",\"kind\":\"sale\",\"sku\":\"A\",\"location\":\"L\",\"qty\":1,"
             "\"occurred_at\":1}",
             id100);
    cr_assert(strlen(line) == 100);
    n += (size_t)sprintf(data + n, "%s\n", line);
    n += (size_t)sprintf(data + n, "%s \n", line);  /* 101 bytes */
    n += (size_t)sprintf(data + n, "%s\r\n", line); /* 100 + CR: fine */
    n += (size_t)sprintf(data + n, "%s\n", J("o-6", 1));
    memset(data + n, 'y', big);
    n += big;
    FILE *f = input(data, n);
    free(data);
    sf_feed_reader *r = reader(f, 100);
    next_event(r, 1, "o-1");
    next_reject(r, 2, "line 2: 250 bytes, longer than max_line 100");
    next_event(r, 3, id100);
    next_reject(r, 4, "line 4: 101 bytes, longer than max_line 100");
    next_event(r, 5, id100);
    next_event(r, 6, "o-6");
    sf_feed_item it;
    sf_error err;
    cr_assert(sf_feed_reader_next(r, &it, &err) == SF_OK && !it.ok && it.line == 7);
    cr_assert(strcmp(it.error.msg, "line 7: 1048576 bytes, longer than max_line 100") == 0, "%s",
              it.error.msg);
    cr_assert(it.text == NULL && it.text_len == 0);
    next_end(r);
    sf_feed_reader_free(r);
    fclose(f);
}

LEAK_TEST(feed_reader, overlong_first_line_still_decides_the_format)
{
    char data[1024];
    size_t n = 0;
    data[n++] = '{';
    memset(data + n, 'z', 300);
    n += 300;
    n += (size_t)sprintf(data + n, "\n%s\n", J("f-2", 1));
    FILE *f = input(data, n);
    sf_feed_reader *r = reader(f, 100);
    next_reject(r, 1, "line 1: 301 bytes, longer than max_line 100");
    cr_assert(sf_feed_reader_format(r) == SF_FEED_JSONL);
    next_event(r, 2, "f-2");
    next_end(r);
    sf_feed_reader_free(r);
    fclose(f);

    /* an overlong CSV header: the rows cannot be read */
    n = 0;
    memcpy(data, "kind,sku", 8);
    n = 8;
    memset(data + n, ',', 300);
    n += 300;
    n += (size_t)sprintf(data + n, "\nsale,A,L,1,1\n");
    f = input(data, n);
    r = reader(f, 100);
    next_reject(r, 1, "line 1: 308 bytes, longer than max_line 100");
    cr_assert(sf_feed_reader_format(r) == SF_FEED_CSV);
    next_reject(r, 2, "line 2: skipped: the CSV header (line 1) is invalid");
    next_end(r);
    sf_feed_reader_free(r);
    fclose(f);
}

LEAK_TEST(feed_reader, empty_and_blank_inputs)
{
    FILE *f = input("", 0);
    sf_feed_reader *r = reader(f, 0);
    next_end(r);
    cr_assert(sf_feed_reader_format(r) == SF_FEED_UNKNOWN);
    sf_feed_reader_free(r);
    fclose(f);
    f = input("\n\r\n  \n\t\n", 8);
    r = reader(f, 0);
    next_end(r);
    sf_feed_reader_free(r);
    fclose(f);
    /* a header only: no events */
    f = input("kind,sku,location,qty,occurred_at\n", 34);
    r = reader(f, 0);
    next_end(r);
    cr_assert(sf_feed_reader_format(r) == SF_FEED_CSV);
    sf_feed_reader_free(r);
    fclose(f);
}

LEAK_TEST(feed_reader, nul_bytes_are_rejected_not_truncated)
{
    const char data[] = "kind,sku,location,qty,occurred_at\n"
                        "sale,A\0B,L,1,1\n"
                        "sale,A,L,1,1\n";
    FILE *f = input(data, sizeof data - 1);
    sf_feed_reader *r = reader(f, 0);
    next_reject(r, 2, "line 2: field sku: 'A\\x00B' holds control character U+0000 (byte 2)");
    sf_feed_item it;
    sf_error err;
    cr_assert(sf_feed_reader_next(r, &it, &err) == SF_OK && it.ok && it.line == 3);
    next_end(r);
    sf_feed_reader_free(r);
    fclose(f);
}

LEAK_TEST(feed_reader, many_lines_keep_their_numbers)
{
    /* 20000 lines across many buffer refills, every 7th blank */
    size_t cap = 20000 * 120, n = 0;
    char *data = malloc(cap);
    cr_assert(data);
    for (int i = 1; i <= 20000; i++) {
        if (i % 7 == 0)
            data[n++] = '\n';
        else
            n += (size_t)snprintf(data + n, cap - n,
                                  "{\"event_id\":\"m-%d\",\"kind\":\"asn\",\"sku\":\"A\","
                                  "\"location\":\"L\",\"qty\":%d,\"occurred_at\":1}\n",
                                  i, i);
    }
    FILE *f = input(data, n);
    free(data);
    sf_feed_reader *r = reader(f, 128);
    sf_feed_item it;
    sf_error err;
    int count = 0;
    sf_status st;
    while ((st = sf_feed_reader_next(r, &it, &err)) == SF_OK) {
        cr_assert(it.ok, "%s", it.error.msg);
        char want[32];
        snprintf(want, sizeof want, "m-%llu", (unsigned long long)it.line);
        cr_assert(strcmp(it.event.event_id, want) == 0 && it.event.qty == (int64_t)it.line);
        count++;
    }
    cr_assert(st == SF_ENOTFOUND);
    cr_assert(count == 20000 - 20000 / 7, "%d", count);
    sf_feed_reader_free(r);
    fclose(f);
}

LEAK_TEST(feed_reader, options_and_read_errors)
{
    sf_parse_opts o;
    sf_parse_opts_init(&o);
    cr_assert(o.max_line == 65536 && o.max_future_ms == 300000 && o.now_ms < 0 &&
              o.default_source == NULL);
    sf_feed_reader *r = (sf_feed_reader *)1;
    sf_error err;
    o.max_line = 0;
    cr_assert(sf_feed_reader_new(stdin, &o, &r, &err) == SF_EINVAL && r == NULL);
    o.max_line = SF_PARSE_MAX_LINE_LIMIT + 1;
    cr_assert(sf_feed_reader_new(stdin, &o, &r, &err) == SF_EINVAL);
    cr_assert(strcmp(err.msg, "max_line 1073741825 is out of range (1..1073741824)") == 0, "%s",
              err.msg);
    sf_feed_reader_free(NULL);

    /* reading a write-only stream fails: SF_EIO naming the line */
    FILE *w = fopen("/dev/null", "w");
    cr_assert(w);
    o.max_line = 100;
    cr_assert(sf_feed_reader_new(w, &o, &r, &err) == SF_OK);
    sf_feed_item it;
    cr_assert(sf_feed_reader_next(r, &it, &err) == SF_EIO);
    cr_assert(strncmp(err.msg, "line 1: read error: ", 20) == 0, "%s", err.msg);
    sf_feed_reader_free(r);
    fclose(w);
}
