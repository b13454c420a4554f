/*
 * test_event_parse_json: one JSON line -> sf_event (DESIGN.md "JSON form"):
 * field types, case-insensitive symbols, RFC 3339 and epoch-ms times, the
 * derived id of a line without event_id, and every reject's exact message.
 * Also the JSON writer and the RFC 3339 formatter, by round trip.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "event.h"
#include "event_parse.h"
#include "leak_guard.h"

#define NOW INT64_C(1795514400000) /* 2026-11-24T10:00:00Z */

static sf_parse_opts opts_fixed(void)
{
    sf_parse_opts o;
    sf_parse_opts_init(&o);
    o.now_ms = NOW + 1000;
    o.default_source = "web-feed";
    return o;
}

static sf_event parse_ok(const char *line)
{
    sf_parse_opts o = opts_fixed();
    sf_event ev;
    sf_error err;
    sf_error_clear(&err);
    sf_status st = sf_event_parse_json(line, strlen(line), &o, &ev, &err);
    cr_assert(st == SF_OK, "rejected %s: %s", line, err.msg);
    return ev;
}

static void parse_reject(const char *line, const char *msg)
{
    sf_parse_opts o = opts_fixed();
    sf_event ev;
    sf_error err;
    sf_error_clear(&err);
    sf_status st = sf_event_parse_json(line, strlen(line), &o, &ev, &err);
    cr_assert(st == SF_EINVAL, "accepted %s", line);
    cr_assert(strcmp(err.msg, msg) == 0, "%s\n  got:  %s\n  want: %s", line, err.msg, msg);
}

/* A reject whose text comes from jansson: pin our prefix and the gist,
 * not the library's exact wording. */
static void parse_reject_json(const char *line, const char *gist)
{
    sf_parse_opts o = opts_fixed();
    sf_event ev;
    sf_error err;
    sf_error_clear(&err);
    cr_assert(sf_event_parse_json(line, strlen(line), &o, &ev, &err) == SF_EINVAL, "accepted %s",
              line);
    cr_assert(strncmp(err.msg, "not valid JSON: ", 16) == 0 && strstr(err.msg, gist) &&
                  strstr(err.msg, "(column "),
              "%s: %s", line, err.msg);
}

/* The contract's example line, with a reject field spliced in. */
#define BASE "\"kind\":\"sale\",\"sku\":\"SKU-1\",\"location\":\"STORE-1\",\"qty\":2"
#define AT "\"occurred_at\":\"2026-11-24T10:00:00.123Z\""

LEAK_TEST(event_parse_json, contract_example)
{
    sf_event ev = parse_ok("{\"event_id\":\"s-1\",\"kind\":\"sale\",\"sku\":\"SKU-1\","
                           "\"location\":\"STORE-1\",\"qty\":2,"
                           "\"occurred_at\":\"2026-11-24T10:00:00.123Z\",\"channel\":\"web\","
                           "\"ref\":\"order-1\"}");
    cr_assert(strcmp(ev.event_id, "s-1") == 0);
    cr_assert(ev.kind == SF_KIND_SALE);
    cr_assert(strcmp(ev.sku, "SKU-1") == 0 && strcmp(ev.location, "STORE-1") == 0);
    cr_assert(ev.qty == 2);
    cr_assert(ev.occurred_at == INT64_C(1795514400123), "%lld", (long long)ev.occurred_at);
    cr_assert(strcmp(ev.source, "web-feed") == 0, "default source");
    cr_assert(ev.has_channel && strcmp(ev.channel, "web") == 0);
    cr_assert(ev.has_ref && strcmp(ev.ref, "order-1") == 0);
    cr_assert(!ev.has_condition && !ev.has_expires_at);
}

LEAK_TEST(event_parse_json, missing_event_id_is_derived)
{
    /* printf 'SALE\x1fSKU-1\x1fSTORE-1\x1f2\x1f1795514400123\x1fweb-feed\x1fweb\x1forder-1\x1f\x1f'
     *   | sha256sum
     * fce204fda205e5a964a60a3226c4fc01277d47953248bd07bfe6a66cff9817b8 */
    const char *want = "d-fce204fda205e5a964a60a3226c4fc01277d4795";
    sf_event a = parse_ok("{" BASE "," AT ",\"channel\":\"web\",\"ref\":\"order-1\"}");
    cr_assert(strcmp(a.event_id, want) == 0, "%s", a.event_id);
    /* the same content re-sent, in another field order, kind case and time
     * form (epoch ms of the same instant), keeps its id */
    sf_event b =
        parse_ok("{\"ref\":\"order-1\",\"channel\":\"web\",\"occurred_at\":1795514400123,"
                 "\"qty\":2,\"location\":\"STORE-1\",\"sku\":\"SKU-1\",\"kind\":\"SALE\"}");
    cr_assert(strcmp(b.event_id, want) == 0, "%s", b.event_id);
    /* null event_id is absent too */
    sf_event c =
        parse_ok("{\"event_id\":null," BASE "," AT ",\"channel\":\"web\",\"ref\":\"order-1\"}");
    cr_assert(strcmp(c.event_id, want) == 0, "%s", c.event_id);
    /* the source is part of the content */
    sf_event d = parse_ok("{" BASE "," AT ",\"channel\":\"web\",\"ref\":\"order-1\","
                          "\"source\":\"pos\"}");
    cr_assert(strcmp(d.event_id, want) != 0);
}

LEAK_TEST(event_parse_json, kind_and_condition_are_case_insensitive)
{
    sf_event ev = parse_ok("{\"kind\":\"Transfer_Out\",\"sku\":\"A\",\"location\":\"L\",\"qty\":1,"
                           "\"occurred_at\":1}");
    cr_assert(ev.kind == SF_KIND_TRANSFER_OUT);
    ev = parse_ok("{\"kind\":\"return\",\"sku\":\"A\",\"location\":\"L\",\"qty\":1,"
                  "\"occurred_at\":1,\"condition\":\"Damaged\"}");
    cr_assert(ev.kind == SF_KIND_RETURN && ev.has_condition && ev.condition == SF_COND_DAMAGED);
    ev = parse_ok("{\"kind\":\"RETURN\",\"sku\":\"A\",\"location\":\"L\",\"qty\":1,"
                  "\"occurred_at\":1,\"condition\":\"resellable\"}");
    cr_assert(ev.has_condition && ev.condition == SF_COND_RESELLABLE);
    parse_reject("{\"kind\":\"sell\",\"sku\":\"A\",\"location\":\"L\",\"qty\":1,\"occurred_at\":1}",
                 "field kind: 'sell' is not a kind (SALE, RETURN, RECEIPT, ASN, COUNT, ADJUST, "
                 "TRANSFER_OUT, TRANSFER_IN, RESERVE, RELEASE)");
    parse_reject("{\"kind\":\"return\",\"sku\":\"A\",\"location\":\"L\",\"qty\":1,"
                 "\"occurred_at\":1,\"condition\":\"new\"}",
                 "field condition: 'new' is not RESELLABLE or DAMAGED");
    parse_reject("{\"kind\":\"sale\",\"sku\":\"A\",\"location\":\"L\",\"qty\":1,"
                 "\"occurred_at\":1,\"condition\":\"damaged\"}",
                 "field condition: only RETURN may carry a condition (kind is SALE)");
    parse_reject("{\"kind\":\"sale\\u0000x\",\"sku\":\"A\",\"location\":\"L\",\"qty\":1,"
                 "\"occurred_at\":1}",
                 "field kind: 'sale\\x00x' is not a kind");
}

LEAK_TEST(event_parse_json, rfc3339_forms)
{
    struct {
        const char *text;
        int64_t ms;
    } cases[] = {
        {"2026-11-24T10:00:00.123Z", INT64_C(1795514400123)},
        {"2026-11-24t10:00:00.123z", INT64_C(1795514400123)},
        {"2026-11-24 10:00:00.123Z", INT64_C(1795514400123)},
        {"2026-11-24T10:00:00.1239Z", INT64_C(1795514400123)}, /* truncated to ms */
        {"2026-11-24T10:00:00.123456789Z", INT64_C(1795514400123)},
        {"2026-11-24T10:00:00.5Z", INT64_C(1795514400500)},
        {"2026-11-24T10:00:00Z", INT64_C(1795514400000)},
        {"2026-11-24T10:00:00+02:00", INT64_C(1795507200000)},
        {"2026-11-24T04:00:00-05:30", INT64_C(1795512600000)},
        {"2026-11-24T10:00:00.123+00:00", INT64_C(1795514400123)},
        {"2024-02-29T23:59:59.999Z", INT64_C(1709251199999)},
        {"2000-02-29T00:00:00Z", INT64_C(951782400000)},
        {"1970-01-01T00:00:00Z", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char line[256];
        snprintf(line, sizeof line,
                 "{\"kind\":\"asn\",\"sku\":\"A\",\"location\":\"L\",\"qty\":1,"
                 "\"occurred_at\":\"%s\"}",
                 cases[i].text);
        sf_event ev = parse_ok(line);
        cr_assert(ev.occurred_at == cases[i].ms, "%s: %lld, want %lld", cases[i].text,
                  (long long)ev.occurred_at, (long long)cases[i].ms);
    }
}

static void time_reject(const char *text, const char *why)
{
    char line[256], msg[256];
    snprintf(line, sizeof line,
             "{\"kind\":\"asn\",\"sku\":\"A\",\"location\":\"L\",\"qty\":1,\"occurred_at\":\"%s\"}",
             text);
    snprintf(msg, sizeof msg, "field occurred_at: '%s' is not an RFC 3339 timestamp (%s)", text,
             why);
    parse_reject(line, msg);
}

LEAK_TEST(event_parse_json, rfc3339_rejects)
{
    const char *shape = "expected YYYY-MM-DDTHH:MM:SS[.sss] and Z or +hh:mm";
    time_reject("2026-13-01T00:00:00Z", "month out of range");
    time_reject("2026-00-01T00:00:00Z", "month out of range");
    time_reject("2026-02-29T00:00:00Z", "day out of range for the month");
    time_reject("1900-02-29T00:00:00Z", "day out of range for the month");
    time_reject("2026-04-31T00:00:00Z", "day out of range for the month");
    time_reject("2026-11-24T24:00:00Z", "hour or minute out of range");
    time_reject("2026-11-24T10:60:00Z", "hour or minute out of range");
    time_reject("2026-12-31T23:59:60Z", "leap second 60 is not supported");
    time_reject("2026-11-24T10:00:61Z", "second out of range");
    time_reject("2026-11-24T10:00:00", shape);
    time_reject("2026-11-24T10:00:00.123", "missing time zone (Z or +hh:mm)");
    time_reject("2026-11-24", shape);
    time_reject("2026-11-24T10:00:00.Z", "the fraction must have 1 to 9 digits");
    time_reject("2026-11-24T10:00:00.1234567891Z", "the fraction must have 1 to 9 digits");
    time_reject("2026-11-24T10:00:00ZZ", "trailing characters");
    time_reject("2026-11-24T10:00:00+2:00", shape);
    time_reject("2026-11-24T10:00:00+24:00", "offset out of range");
    time_reject("2026-11-24T10:00:00+02:60", "offset out of range");
    time_reject("26-11-24T10:00:00.000Z", shape);
    time_reject("2026/11/24T10:00:00Z", shape);
    parse_reject("{\"kind\":\"asn\",\"sku\":\"A\",\"location\":\"L\",\"qty\":1,"
                 "\"occurred_at\":\"1795514400123\"}",
                 "field occurred_at: a string of digits; epoch milliseconds must be a JSON "
                 "integer, or use RFC 3339");
    parse_reject("{\"kind\":\"asn\",\"sku\":\"A\",\"location\":\"L\",\"qty\":1,"
                 "\"occurred_at\":\"1969-12-31T23:59:59Z\"}",
                 "field occurred_at: -1000 is before 1970-01-01T00:00:00Z");
    parse_reject("{\"kind\":\"asn\",\"sku\":\"A\",\"location\":\"L\",\"qty\":1,"
                 "\"occurred_at\":-1}",
                 "field occurred_at: -1 is before 1970-01-01T00:00:00Z");
}

LEAK_TEST(event_parse_json, rejects_future_beyond_max_future_ms)
{
    /* now is NOW + 1000; max_future_ms 300000 */
    sf_event ev = parse_ok("{\"kind\":\"asn\",\"sku\":\"A\",\"location\":\"L\",\"qty\":1,"
                           "\"occurred_at\":1795514701000}");
    cr_assert(ev.occurred_at == INT64_C(1795514701000));
    parse_reject("{\"kind\":\"asn\",\"sku\":\"A\",\"location\":\"L\",\"qty\":1,"
                 "\"occurred_at\":\"2026-11-24T10:05:01.001Z\"}",
                 "field occurred_at: 1795514701001 is 300001 ms ahead of now 1795514401000 "
                 "(max_future_ms 300000)");
    /* max_future_ms is an option */
    sf_parse_opts o = opts_fixed();
    o.max_future_ms = 0;
    sf_error err;
    const char *line = "{\"kind\":\"asn\",\"sku\":\"A\",\"location\":\"L\",\"qty\":1,"
                       "\"occurred_at\":1795514401001}";
    cr_assert(sf_event_parse_json(line, strlen(line), &o, &ev, &err) == SF_EINVAL);
    /* now_ms < 0 reads the clock: a time a year ahead is rejected, now is not */
    o.now_ms = -1;
    o.max_future_ms = 300000;
    char l2[256];
    snprintf(l2, sizeof l2,
             "{\"kind\":\"asn\",\"sku\":\"A\",\"location\":\"L\",\"qty\":1,\"occurred_at\":%lld}",
             (long long)(sf_now_ms() + INT64_C(365) * 86400000));
    cr_assert(sf_event_parse_json(l2, strlen(l2), &o, &ev, &err) == SF_EINVAL);
    snprintf(l2, sizeof l2,
             "{\"kind\":\"asn\",\"sku\":\"A\",\"location\":\"L\",\"qty\":1,\"occurred_at\":%lld}",
             (long long)sf_now_ms());
    cr_assert(sf_event_parse_json(l2, strlen(l2), &o, &ev, &err) == SF_OK, "%s", err.msg);
}

LEAK_TEST(event_parse_json, qty_must_be_a_json_integer)
{
    sf_event ev = parse_ok("{\"kind\":\"adjust\",\"sku\":\"A\",\"location\":\"L\",\"qty\":-7,"
                           "\"occurred_at\":1}");
    cr_assert(ev.qty == -7);
    parse_reject("{\"kind\":\"sale\",\"sku\":\"A\",\"location\":\"L\",\"qty\":2.5,"
                 "\"occurred_at\":1}",
                 "field qty: 2.5 is not an integer");
    parse_reject("{\"kind\":\"sale\",\"sku\":\"A\",\"location\":\"L\",\"qty\":2.0,"
                 "\"occurred_at\":1}",
                 "field qty: 2.0 is not an integer");
    parse_reject("{\"kind\":\"sale\",\"sku\":\"A\",\"location\":\"L\",\"qty\":1e3,"
                 "\"occurred_at\":1}",
                 "field qty: 1000.0 is not an integer");
    parse_reject("{\"kind\":\"sale\",\"sku\":\"A\",\"location\":\"L\",\"qty\":\"2\","
                 "\"occurred_at\":1}",
                 "field qty: the string '2', expected a JSON integer");
    parse_reject("{\"kind\":\"sale\",\"sku\":\"A\",\"location\":\"L\",\"qty\":true,"
                 "\"occurred_at\":1}",
                 "field qty: a boolean, expected an integer");
    parse_reject("{\"kind\":\"sale\",\"sku\":\"A\",\"location\":\"L\",\"qty\":-2,"
                 "\"occurred_at\":1}",
                 "field qty: -2 is negative (only ADJUST may be)");
    parse_reject_json("{\"kind\":\"sale\",\"sku\":\"A\",\"location\":\"L\","
                      "\"qty\":99999999999999999999,\"occurred_at\":1}",
                      "too big integer");
}

LEAK_TEST(event_parse_json, rejects_unknown_fields_nulls_and_wrong_types)
{
    parse_reject("{" BASE "," AT ",\"chanel\":\"web\"}", "unknown field 'chanel'");
    parse_reject("{" BASE "," AT ",\"Sku\":\"x\"}", "unknown field 'Sku'");
    parse_reject("{\"kind\":\"sale\",\"sku\":null,\"location\":\"L\",\"qty\":1,"
                 "\"occurred_at\":1}",
                 "field sku: null (required)");
    parse_reject("{\"kind\":null,\"sku\":\"A\",\"location\":\"L\",\"qty\":1,\"occurred_at\":1}",
                 "field kind: null (required)");
    parse_reject("{\"kind\":\"sale\",\"sku\":5,\"location\":\"L\",\"qty\":1,\"occurred_at\":1}",
                 "field sku: an integer, expected a string");
    parse_reject("{" BASE "," AT ",\"channel\":true}",
                 "field channel: a boolean, expected a string");
    parse_reject("{" BASE "," AT ",\"ref\":{\"id\":1}}", "field ref: an object, expected a string");
    parse_reject("{" BASE ",\"occurred_at\":[1]}",
                 "field occurred_at: an array, expected an RFC 3339 string or epoch ms integer");
    parse_reject("{" BASE ",\"occurred_at\":1.5}", "field occurred_at: 1.5 is not an integer");
    /* null optional fields are absent */
    sf_event ev = parse_ok("{" BASE "," AT ",\"channel\":null,\"ref\":null,\"condition\":null,"
                           "\"expires_at\":null,\"source\":null}");
    cr_assert(!ev.has_channel && !ev.has_ref && !ev.has_condition && !ev.has_expires_at);
    cr_assert(strcmp(ev.source, "web-feed") == 0);
}

LEAK_TEST(event_parse_json, rejects_missing_required_fields)
{
    parse_reject("{\"sku\":\"A\",\"location\":\"L\",\"qty\":1,\"occurred_at\":1}",
                 "field kind: missing (required)");
    parse_reject("{\"kind\":\"sale\",\"location\":\"L\",\"qty\":1,\"occurred_at\":1}",
                 "field sku: missing (required)");
    parse_reject("{\"kind\":\"sale\",\"sku\":\"A\",\"qty\":1,\"occurred_at\":1}",
                 "field location: missing (required)");
    parse_reject("{\"kind\":\"sale\",\"sku\":\"A\",\"location\":\"L\",\"occurred_at\":1}",
                 "field qty: missing (required)");
    parse_reject("{\"kind\":\"sale\",\"sku\":\"A\",\"location\":\"L\",\"qty\":1}",
                 "field occurred_at: missing (required)");
    parse_reject("{}", "field kind: missing (required)");
    /* no source and no default */
    sf_parse_opts o = opts_fixed();
    o.default_source = NULL;
    sf_event ev;
    sf_error err;
    const char *line = "{\"kind\":\"sale\",\"sku\":\"A\",\"location\":\"L\",\"qty\":1,"
                       "\"occurred_at\":1}";
    cr_assert(sf_event_parse_json(line, strlen(line), &o, &ev, &err) == SF_EINVAL);
    cr_assert(strcmp(err.msg, "field source: missing and no default source is set") == 0, "%s",
              err.msg);
    const char *with = "{\"kind\":\"sale\",\"sku\":\"A\",\"location\":\"L\",\"qty\":1,"
                       "\"occurred_at\":1,\"source\":\"pos-7\"}";
    cr_assert(sf_event_parse_json(with, strlen(with), &o, &ev, &err) == SF_OK, "%s", err.msg);
    cr_assert(strcmp(ev.source, "pos-7") == 0);
}

LEAK_TEST(event_parse_json, rejects_non_objects_and_bad_json)
{
    parse_reject("[1,2]", "not a JSON object (an array)");
    parse_reject("\"sale\"", "not a JSON object (a string)");
    parse_reject("42", "not a JSON object (an integer)");
    parse_reject("null", "not a JSON object (null)");
    parse_reject_json("{\"kind\":", "end of file");
    parse_reject_json("", "expected");
    parse_reject_json("{\"sku\":\"A\",\"sku\":\"B\"}", "duplicate object key");
    parse_reject_json("{\"kind\":\"sale\"} {\"x\":1}", "end of file expected");
    parse_reject_json("{\"kind\":\"sale\",\"sku\":\"\xff\"}", "0xff");
    /* a raw control byte inside a string never reaches the message raw */
    sf_parse_opts o = opts_fixed();
    sf_event ev;
    sf_error err;
    const char *raw = "{\"sku\":\"a\x01\x1b[2J\"}";
    cr_assert(sf_event_parse_json(raw, strlen(raw), &o, &ev, &err) == SF_EINVAL);
    for (const char *p = err.msg; *p; p++)
        cr_assert((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7F, "raw byte in: %s",
                  err.msg);
}

LEAK_TEST(event_parse_json, string_rules_name_the_field)
{
    parse_reject("{\"kind\":\"sale\",\"sku\":\"a\\u0000b\",\"location\":\"L\",\"qty\":1,"
                 "\"occurred_at\":1}",
                 "field sku: 'a\\x00b' holds control character U+0000 (byte 2)");
    parse_reject("{\"kind\":\"sale\",\"sku\":\"a\\nb\",\"location\":\"L\",\"qty\":1,"
                 "\"occurred_at\":1}",
                 "field sku: 'a\\x0ab' holds control character U+000A (byte 2)");
    parse_reject("{\"kind\":\"sale\",\"sku\":\"A\",\"location\":\"STORE 1\",\"qty\":1,"
                 "\"occurred_at\":1}",
                 "field location: 'STORE 1' has a character outside A-Z a-z 0-9 _ - (byte 6)");
    parse_reject("{\"kind\":\"sale\",\"sku\":\"0123456789012345678901234567890123456789012345678901"
                 "234567890123X\",\"location\":\"L\",\"qty\":1,\"occurred_at\":1}",
                 "field sku: 65 bytes, longer than 64");
    parse_reject("{\"event_id\":\"\"," BASE "," AT "}", "field event_id: empty (required)");
    parse_reject("{" BASE "," AT ",\"ref\":\"\"}", "field ref: empty (omit the field instead)");
    /* an escaped surrogate pair is a valid code point; a lone one is refused by jansson */
    sf_event ev = parse_ok("{\"kind\":\"sale\",\"sku\":\"\\ud834\\udd1e\",\"location\":\"L\","
                           "\"qty\":1,\"occurred_at\":1}");
    cr_assert(strcmp(ev.sku, "\xf0\x9d\x84\x9e") == 0);
}

LEAK_TEST(event_parse_json, expires_at_on_reserve)
{
    sf_event ev = parse_ok("{\"kind\":\"reserve\",\"sku\":\"A\",\"location\":\"L\",\"qty\":1,"
                           "\"occurred_at\":1,\"ref\":\"o-1\","
                           "\"expires_at\":\"2026-11-24T10:00:00.123Z\"}");
    cr_assert(ev.has_expires_at && ev.expires_at == INT64_C(1795514400123));
    ev = parse_ok("{\"kind\":\"reserve\",\"sku\":\"A\",\"location\":\"L\",\"qty\":1,"
                  "\"occurred_at\":1,\"expires_at\":5000}");
    cr_assert(ev.has_expires_at && ev.expires_at == 5000);
    parse_reject("{\"kind\":\"release\",\"sku\":\"A\",\"location\":\"L\",\"qty\":1,"
                 "\"occurred_at\":1,\"expires_at\":5000}",
                 "field expires_at: only RESERVE may carry expires_at (kind is RELEASE)");
    parse_reject("{\"kind\":\"reserve\",\"sku\":\"A\",\"location\":\"L\",\"qty\":1,"
                 "\"occurred_at\":1,\"expires_at\":\"soon\"}",
                 "field expires_at: 'soon' is not an RFC 3339 timestamp (expected "
                 "YYYY-MM-DDTHH:MM:SS[.sss] and Z or +hh:mm)");
}

LEAK_TEST(event_parse_json, line_limits_and_terminators)
{
    sf_event ev = parse_ok("{" BASE "," AT "}\r\n");
    cr_assert(ev.qty == 2);
    ev = parse_ok("  {" BASE "," AT "}  \n");
    cr_assert(ev.qty == 2);
    sf_parse_opts o = opts_fixed();
    o.max_line = 50;
    const char *line = "{" BASE "," AT "}";
    sf_error err;
    cr_assert(sf_event_parse_json(line, strlen(line), &o, &ev, &err) == SF_EINVAL);
    char want[100];
    snprintf(want, sizeof want, "line is %zu bytes, longer than max_line 50", strlen(line));
    cr_assert(strcmp(err.msg, want) == 0, "%s", err.msg);
    o.max_line = strlen(line);
    cr_assert(sf_event_parse_json(line, strlen(line), &o, &ev, &err) == SF_OK, "%s", err.msg);
}

static bool same_event(const sf_event *a, const sf_event *b)
{
    return strcmp(a->event_id, b->event_id) == 0 && a->kind == b->kind &&
           strcmp(a->sku, b->sku) == 0 && strcmp(a->location, b->location) == 0 &&
           a->qty == b->qty && a->occurred_at == b->occurred_at &&
           strcmp(a->source, b->source) == 0 && a->has_channel == b->has_channel &&
           (!a->has_channel || strcmp(a->channel, b->channel) == 0) && a->has_ref == b->has_ref &&
           (!a->has_ref || strcmp(a->ref, b->ref) == 0) && a->has_condition == b->has_condition &&
           (!a->has_condition || a->condition == b->condition) &&
           a->has_expires_at == b->has_expires_at &&
           (!a->has_expires_at || a->expires_at == b->expires_at);
}

LEAK_TEST(event_parse_json, format_json_round_trips)
{
    sf_event ev;
    sf_event_init(&ev);
    strcpy(ev.event_id, "r-\"1\"\\");
    ev.kind = SF_KIND_RESERVE;
    strcpy(ev.sku, "SKU \xc3\xa9/1");
    strcpy(ev.location, "LOC-1");
    ev.qty = 4;
    ev.occurred_at = INT64_C(1795514400123);
    strcpy(ev.source, "web");
    ev.has_channel = true;
    strcpy(ev.channel, "web");
    ev.has_ref = true;
    strcpy(ev.ref, "order-7");
    ev.has_expires_at = true;
    ev.expires_at = INT64_C(1795518000000);
    char buf[512];
    size_t len = 0;
    sf_error err;
    cr_assert(sf_event_format_json(&ev, 0, buf, sizeof buf, &len, &err) == SF_OK);
    const char *want = "{\"event_id\":\"r-\\\"1\\\"\\\\\",\"kind\":\"RESERVE\",\"sku\":\"SKU "
                       "\xc3\xa9/1\",\"location\":\"LOC-1\",\"qty\":4,\"occurred_at\":\"2026-11-"
                       "24T10:00:00.123Z\",\"source\":\"web\",\"channel\":\"web\",\"ref\":"
                       "\"order-7\",\"expires_at\":\"2026-11-24T11:00:00.000Z\"}";
    cr_assert(strcmp(buf, want) == 0, "\n  got:  %s\n  want: %s", buf, want);
    cr_assert(len == strlen(want));
    sf_event back = parse_ok(buf);
    cr_assert(same_event(&back, &ev));

    cr_assert(sf_event_format_json(&ev, SF_JSON_EPOCH_MS | SF_JSON_KIND_LOWER, buf, sizeof buf,
                                   &len, &err) == SF_OK);
    cr_assert(strstr(buf, "\"kind\":\"reserve\"") &&
                  strstr(buf, "\"occurred_at\":1795514400123,") &&
                  strstr(buf, "\"expires_at\":1795518000000}"),
              "%s", buf);
    back = parse_ok(buf);
    cr_assert(same_event(&back, &ev));

    /* too small: an error, and an empty buffer rather than half a line */
    char small[40];
    cr_assert(sf_event_format_json(&ev, 0, small, sizeof small, &len, &err) == SF_EINVAL);
    cr_assert(small[0] == '\0');
    /* a RETURN with a condition */
    ev.kind = SF_KIND_RETURN;
    ev.has_expires_at = false;
    ev.has_condition = true;
    ev.condition = SF_COND_DAMAGED;
    cr_assert(sf_event_format_json(&ev, 0, buf, sizeof buf, NULL, &err) == SF_OK);
    cr_assert(strstr(buf, ",\"condition\":\"DAMAGED\"}"), "%s", buf);
}

LEAK_TEST(event_parse_json, time_format_and_parse_agree)
{
    char t[32];
    cr_assert(sf_time_format_rfc3339(0, t, sizeof t) && strcmp(t, "1970-01-01T00:00:00.000Z") == 0);
    cr_assert(sf_time_format_rfc3339(INT64_C(951782400000), t, sizeof t) &&
              strcmp(t, "2000-02-29T00:00:00.000Z") == 0);
    cr_assert(sf_time_format_rfc3339(INT64_C(253402300799999), t, sizeof t) &&
              strcmp(t, "9999-12-31T23:59:59.999Z") == 0);
    cr_assert(!sf_time_format_rfc3339(INT64_C(253402300800000), t, sizeof t));
    cr_assert(!sf_time_format_rfc3339(-1, t, sizeof t));
    cr_assert(!sf_time_format_rfc3339(0, t, 24));
    sf_error err;
    /* every ~39 days over 60 years, with odd milliseconds */
    for (int64_t ms = 0; ms < INT64_C(1900000000000); ms += INT64_C(3333333337)) {
        cr_assert(sf_time_format_rfc3339(ms, t, sizeof t));
        int64_t back = -1;
        cr_assert(sf_time_parse_rfc3339(t, strlen(t), &back, &err) == SF_OK, "%s", err.msg);
        cr_assert(back == ms, "%s: %lld != %lld", t, (long long)back, (long long)ms);
    }
}
