/*
 * The running inv-api against its contract, docs/openapi.json (OpenAPI
 * 3.0; docs/openapi.yaml is its YAML rendering, checked here byte for byte
 * and rewritten with SF_OPENAPI_WRITE=1).
 *
 * Each operation lists x-test-requests: {path, key, status, method?,
 * headers?, body?, postgres?, server?}. The test sends each one (those
 * marked postgres "down" with PostgreSQL stopped; those marked server
 * "rate-limited" to a second inv-api with [api] rate_per_key = 1 and burst
 * = 1, right after a request that took the key's one token, so the 429 of
 * every rate-limited operation is exercised), checks the status, the
 * documented Content-Type and
 * headers, and validates a JSON body against the response schema: types,
 * required properties, nullable, enum, minimum, pattern, date-time, and
 * additionalProperties false, so an undocumented field fails as surely as
 * a missing one. It also checks that every documented status of every
 * operation is exercised, that nothing undocumented is, and that each
 * request's path matches its path template.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apikey.h"
#include "fixture.h"
#include "stockcheck.h"
#include "test_api_http.h"

TestSuite(api_openapi, .init = fx_reset, .fini = api_fini, .timeout = 240);

/* ------------------------------------------------------- YAML rendering --- */

static void y_pad(FILE *f, int n)
{
    for (int i = 0; i < n; i++)
        fputc(' ', f);
}

static void y_scalar(FILE *f, json_t *v)
{
    if (json_is_object(v))
        fputs("{}", f);
    else if (json_is_array(v))
        fputs("[]", f);
    else if (json_is_integer(v))
        fprintf(f, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        fprintf(f, "%.17g", json_real_value(v));
    else if (json_is_true(v))
        fputs("true", f);
    else if (json_is_false(v))
        fputs("false", f);
    else if (json_is_null(v))
        fputs("null", f);
    else {
        /* a JSON string is a valid YAML double-quoted scalar */
        char *s = json_dumps(v, JSON_ENCODE_ANY);
        cr_assert(s);
        fputs(s, f);
        free(s);
    }
}

static void y_key(FILE *f, const char *k)
{
    bool plain = (k[0] >= 'A' && k[0] <= 'Z') || (k[0] >= 'a' && k[0] <= 'z') || k[0] == '_';
    for (const char *c = k; *c && plain; c++)
        plain = (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
                *c == '_' || *c == '-';
    if (plain) {
        fputs(k, f);
    } else {
        json_t *s = json_string(k);
        y_scalar(f, s);
        json_decref(s);
    }
}

static void y_obj(FILE *f, json_t *o, int indent, bool inline_first);
static void y_arr(FILE *f, json_t *a, int indent);

static bool y_nested(json_t *v)
{
    return (json_is_object(v) && json_object_size(v)) || (json_is_array(v) && json_array_size(v));
}

static void y_value(FILE *f, json_t *v, int indent)
{
    if (json_is_object(v) && json_object_size(v)) {
        fputc('\n', f);
        y_obj(f, v, indent + 2, false);
    } else if (json_is_array(v) && json_array_size(v)) {
        fputc('\n', f);
        y_arr(f, v, indent + 2);
    } else {
        fputc(' ', f);
        y_scalar(f, v);
        fputc('\n', f);
    }
}

static void y_obj(FILE *f, json_t *o, int indent, bool inline_first)
{
    const char *k;
    json_t *v;
    bool first = true;
    json_object_foreach(o, k, v)
    {
        if (!(first && inline_first))
            y_pad(f, indent);
        first = false;
        y_key(f, k);
        fputc(':', f);
        y_value(f, v, indent);
    }
}

static void y_arr(FILE *f, json_t *a, int indent)
{
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        y_pad(f, indent);
        fputs("-", f);
        if (json_is_object(v) && y_nested(v)) {
            fputc(' ', f);
            y_obj(f, v, indent + 2, true);
        } else if (y_nested(v)) {
            fputc('\n', f);
            y_arr(f, v, indent + 2);
        } else {
            fputc(' ', f);
            y_scalar(f, v);
            fputc('\n', f);
        }
    }
}

static char *render_yaml(json_t *doc, size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    cr_assert(f);
    fputs("# Rendered from docs/openapi.json (the source) by tests/integration/"
          "test_api_openapi.c;\n# regenerate with SF_OPENAPI_WRITE=1. Do not edit by hand.\n",
          f);
    y_obj(f, doc, 0, false);
    cr_assert(fclose(f) == 0);
    return buf;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 20;
    char *buf = malloc(cap);
    cr_assert(buf);
    *len = fread(buf, 1, cap - 1, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

static json_t *load_doc(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/docs/openapi.json", fx_env("SF_ROOT"));
    json_error_t je;
    json_t *doc = json_load_file(path, 0, &je);
    cr_assert(doc, "%s:%d: %s", path, je.line, je.text);
    return doc;
}

Test(api_openapi, yaml_is_the_rendering_of_the_json)
{
    json_t *doc = load_doc();
    size_t want_len = 0, have_len = 0;
    char *want = render_yaml(doc, &want_len);
    char path[4096];
    snprintf(path, sizeof path, "%s/docs/openapi.yaml", fx_env("SF_ROOT"));
    const char *w = getenv("SF_OPENAPI_WRITE");
    if (w && *w) {
        FILE *f = fopen(path, "wb");
        cr_assert(f, "cannot write %s", path);
        fwrite(want, 1, want_len, f);
        fclose(f);
    }
    char *have = read_file(path, &have_len);
    cr_assert(have, "%s is missing (SF_OPENAPI_WRITE=1 writes it)", path);
    cr_assert(have_len == want_len && memcmp(have, want, want_len) == 0,
              "%s differs from the rendering of docs/openapi.json: regenerate it with "
              "SF_OPENAPI_WRITE=1",
              path);
    cr_assert(!strcmp(json_string_value(json_object_get(doc, "openapi")), "3.0.3"));
    free(want);
    free(have);
    json_decref(doc);
}

/* ------------------------------------------------------- the validator --- */

static json_t *deref(json_t *doc, json_t *schema)
{
    for (int depth = 0; depth < 16; depth++) {
        json_t *ref = json_object_get(schema, "$ref");
        if (!ref)
            return schema;
        const char *r = json_string_value(ref);
        const char *prefix = "#/components/schemas/";
        cr_assert(r && !strncmp(r, prefix, strlen(prefix)), "unsupported $ref %s", r ? r : "?");
        schema = json_object_get(json_object_get(json_object_get(doc, "components"), "schemas"),
                                 r + strlen(prefix));
        cr_assert(schema, "dangling $ref %s", r);
    }
    cr_assert_fail("$ref loop");
    return NULL;
}

static bool is_datetime(const char *s)
{
    int y, mo, d, h, mi, sec, ms;
    char z;
    return strlen(s) == 24 &&
           sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3d%c", &y, &mo, &d, &h, &mi, &sec, &ms, &z) == 8 &&
           z == 'Z' && mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h < 24 && mi < 60 && sec < 61;
}

/* Fail the validation with a message (the validator does not assert, so
 * its own test can feed it wrong bodies). */
#define V_CHECK(cond, ...)                                                                         \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            snprintf(why, why_size, __VA_ARGS__);                                                  \
            return false;                                                                          \
        }                                                                                          \
    } while (0)

static bool validate(json_t *doc, json_t *schema, json_t *v, const char *where, char *why,
                     size_t why_size)
{
    schema = deref(doc, schema);
    if (json_is_null(v)) {
        V_CHECK(json_is_true(json_object_get(schema, "nullable")), "%s: null, not nullable", where);
        return true;
    }
    const char *type = json_string_value(json_object_get(schema, "type"));
    V_CHECK(type, "%s: schema without type", where);
    json_t *en = json_object_get(schema, "enum");
    if (en) {
        bool found = false;
        size_t i;
        json_t *e;
        json_array_foreach(en, i, e) found = found || json_equal(e, v);
        V_CHECK(found, "%s: value not in the enum", where);
    }
    char sub[512];
    if (!strcmp(type, "object")) {
        V_CHECK(json_is_object(v), "%s: not an object", where);
        json_t *props = json_object_get(schema, "properties");
        size_t i;
        json_t *req;
        json_array_foreach(json_object_get(schema, "required"), i, req)
        {
            V_CHECK(json_object_get(v, json_string_value(req)), "%s: required %s missing", where,
                    json_string_value(req));
        }
        const char *k;
        json_t *pv;
        json_object_foreach(v, k, pv)
        {
            json_t *ps = json_object_get(props, k);
            if (json_is_false(json_object_get(schema, "additionalProperties")))
                V_CHECK(ps, "%s: undocumented property %s", where, k);
            if (ps) {
                snprintf(sub, sizeof sub, "%s.%s", where, k);
                if (!validate(doc, ps, pv, sub, why, why_size))
                    return false;
            }
        }
    } else if (!strcmp(type, "array")) {
        V_CHECK(json_is_array(v), "%s: not an array", where);
        json_t *mn = json_object_get(schema, "minItems"), *mx = json_object_get(schema, "maxItems");
        V_CHECK(!mn || (json_int_t)json_array_size(v) >= json_integer_value(mn), "%s: minItems",
                where);
        V_CHECK(!mx || (json_int_t)json_array_size(v) <= json_integer_value(mx), "%s: maxItems",
                where);
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            snprintf(sub, sizeof sub, "%s[%zu]", where, i);
            if (!validate(doc, json_object_get(schema, "items"), e, sub, why, why_size))
                return false;
        }
    } else if (!strcmp(type, "string")) {
        V_CHECK(json_is_string(v), "%s: not a string", where);
        const char *s = json_string_value(v);
        json_t *fmt = json_object_get(schema, "format"), *pat = json_object_get(schema, "pattern");
        if (fmt && !strcmp(json_string_value(fmt), "date-time"))
            V_CHECK(is_datetime(s), "%s: '%s' is not RFC 3339 UTC with ms", where, s);
        json_t *mx = json_object_get(schema, "maxLength"),
               *mn = json_object_get(schema, "minLength");
        V_CHECK(!mx || (json_int_t)strlen(s) <= json_integer_value(mx), "%s: maxLength", where);
        V_CHECK(!mn || (json_int_t)strlen(s) >= json_integer_value(mn), "%s: minLength", where);
        if (pat) {
            regex_t re;
            V_CHECK(regcomp(&re, json_string_value(pat), REG_EXTENDED | REG_NOSUB) == 0,
                    "%s: bad pattern", where);
            int m = regexec(&re, s, 0, NULL, 0);
            regfree(&re);
            V_CHECK(m == 0, "%s: '%s' does not match %s", where, s, json_string_value(pat));
        }
    } else if (!strcmp(type, "integer")) {
        V_CHECK(json_is_integer(v), "%s: not an integer", where);
        json_t *mn = json_object_get(schema, "minimum"), *mx = json_object_get(schema, "maximum");
        V_CHECK(!mn || json_integer_value(v) >= json_integer_value(mn), "%s: below minimum", where);
        V_CHECK(!mx || json_integer_value(v) <= json_integer_value(mx), "%s: above maximum", where);
    } else if (!strcmp(type, "boolean")) {
        V_CHECK(json_is_boolean(v), "%s: not a boolean", where);
    } else {
        V_CHECK(false, "%s: unsupported schema type %s", where, type);
    }
    return true;
}

/* Validate text against the named component schema. */
static bool validate_as(json_t *doc, const char *name, const char *text, char *why, size_t size)
{
    json_t *v = json_loads(text, 0, NULL);
    cr_assert(v, "not JSON: %s", text);
    json_t *schema = json_pack("{s:s+}", "$ref", "#/components/schemas/", name);
    bool ok = validate(doc, schema, v, name, why, size);
    json_decref(schema);
    json_decref(v);
    return ok;
}

Test(api_openapi, validator_rejects_what_the_contract_forbids)
{
    json_t *doc = load_doc();
    char why[512];
    cr_assert(validate_as(doc, "Error", "{\"error\":\"x\",\"field\":null}", why, sizeof why), "%s",
              why);
    cr_assert(!validate_as(doc, "Error", "{\"error\":\"x\",\"field\":null,\"extra\":1}", why,
                           sizeof why));
    cr_assert(strstr(why, "undocumented property extra"), "%s", why);
    cr_assert(!validate_as(doc, "Error", "{\"error\":\"x\"}", why, sizeof why));
    cr_assert(strstr(why, "required field missing"), "%s", why);
    cr_assert(!validate_as(doc, "Error", "{\"error\":null,\"field\":null}", why, sizeof why));
    const char *pos = "{\"location\":\"L\",\"on_hand\":1,\"reserved\":0,\"safety_stock\":0,"
                      "\"available\":1,\"inbound\":%s,\"damaged\":0,\"version\":1,"
                      "\"updated_at\":\"%s\"}";
    char text[512];
    snprintf(text, sizeof text, pos, "0", "2026-11-20T10:00:00.000Z");
    cr_assert(validate_as(doc, "Position", text, why, sizeof why), "%s", why);
    snprintf(text, sizeof text, pos, "-1", "2026-11-20T10:00:00.000Z");
    cr_assert(!validate_as(doc, "Position", text, why, sizeof why)); /* inbound is floored */
    snprintf(text, sizeof text, pos, "\"0\"", "2026-11-20T10:00:00.000Z");
    cr_assert(!validate_as(doc, "Position", text, why, sizeof why));
    snprintf(text, sizeof text, pos, "0", "2026-11-20 10:00:00");
    cr_assert(!validate_as(doc, "Position", text, why, sizeof why));
    cr_assert(
        !validate_as(doc, "LedgerEvent",
                     "{\"seq\":1,\"event_id\":\"e\",\"kind\":\"STEAL\",\"location\":\"L\","
                     "\"qty\":1,\"occurred_at\":\"2026-11-20T10:00:00.000Z\",\"source\":\"s\","
                     "\"channel\":null,\"ref\":null,\"condition\":null,\"expires_at\":null,"
                     "\"received_at\":\"2026-11-20T10:00:00.000Z\"}",
                     why, sizeof why));
    cr_assert(strstr(why, "enum"), "%s", why);
    json_decref(doc);
}

/* ------------------------------------------------------ the live check --- */

/* Does request path (before '?') match the template, segment by segment? */
static bool matches_template(const char *tmpl, const char *path)
{
    size_t plen = strcspn(path, "?");
    const char *t = tmpl, *p = path;
    while (*t && p < path + plen) {
        size_t tl = strcspn(t, "/"), pl = strcspn(p, "/?");
        if (p + pl > path + plen)
            pl = (size_t)(path + plen - p);
        if (t[0] != '{' && (tl != pl || strncmp(t, p, tl) != 0))
            return false;
        t += tl;
        p += pl;
        if (*t == '/' && *p == '/') {
            t++;
            p++;
        } else if (*t || p != path + plen) {
            return false;
        }
    }
    return !*t && p == path + plen;
}

typedef struct keys {
    char read[128], admin[128], ingest[128], unknown[SF_APIKEY_KEY_MAX + 1];
} keys;

static const char *key_for(const keys *k, const char *which)
{
    if (!strcmp(which, "read"))
        return k->read;
    if (!strcmp(which, "admin"))
        return k->admin;
    if (!strcmp(which, "ingest"))
        return k->ingest;
    if (!strcmp(which, "unknown"))
        return k->unknown;
    cr_assert(!strcmp(which, "none"), "x-test key '%s' is not read|admin|ingest|unknown|none",
              which);
    return NULL;
}

/* METHOD path with the x-test request's headers (an object of strings) and
 * body. */
static int req_with_body(int port, const char *method, const char *path, const char *key,
                         json_t *headers, const char *body, api_resp *r)
{
    char req[8192];
    size_t n =
        (size_t)snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n", method, path);
    if (key)
        n += (size_t)snprintf(req + n, sizeof req - n, "Authorization: Bearer %s\r\n", key);
    const char *h;
    json_t *v;
    json_object_foreach(headers, h, v)
    {
        n += (size_t)snprintf(req + n, sizeof req - n, "%s: %s\r\n", h, json_string_value(v));
    }
    n += (size_t)snprintf(req + n, sizeof req - n,
                          "Content-Length: %zu\r\nConnection: close\r\n\r\n%s", strlen(body), body);
    cr_assert(n < sizeof req, "x-test request too long");
    return api_raw(port, req, n, r);
}

/* Take the one token of key's bucket on the rate-limited server: ask
 * until a request passes (the bucket refills at 1 a second), so the next
 * request, sent at once, finds it empty. */
static void take_the_token(int port, const char *key)
{
    for (int i = 0; i < 30; i++) {
        api_resp r;
        int st = api_get(port, "/v1/stock/SKU-A", key, &r);
        api_resp_free(&r);
        if (st == 200)
            return;
        cr_assert_eq(st, 429, "priming the rate limit: status %d", st);
        usleep(100 * 1000);
    }
    cr_assert(false, "no token came back within 3 s at rate_per_key = 1");
}

/* Send one x-test request and check the answer against the operation;
 * limited_port: the server with the tiny rate. */
static void run_one(json_t *doc, const char *tmpl, json_t *op, json_t *t, const keys *k, int port,
                    int limited_port)
{
    const char *path = json_string_value(json_object_get(t, "path"));
    const char *which = json_string_value(json_object_get(t, "key"));
    json_t *m = json_object_get(t, "method");
    const char *method = m ? json_string_value(m) : "GET";
    int status = (int)json_integer_value(json_object_get(t, "status"));
    cr_assert(path && which && status, "%s: malformed x-test request", tmpl);
    cr_assert(matches_template(tmpl, path), "%s: request %.80s does not match its path", tmpl,
              path);
    char code[8];
    snprintf(code, sizeof code, "%d", status);
    json_t *resp = json_object_get(json_object_get(op, "responses"), code);
    cr_assert(resp, "%s: tested status %d is not documented", tmpl, status);

    json_t *server = json_object_get(t, "server");
    if (server) {
        cr_assert(!strcmp(json_string_value(server), "rate-limited"),
                  "%s: x-test server is only \"rate-limited\"", tmpl);
        port = limited_port;
        take_the_token(port, key_for(k, which));
    }
    api_resp r;
    json_t *th = json_object_get(t, "headers"), *tb = json_object_get(t, "body");
    int got = th || tb ? req_with_body(port, method, path, key_for(k, which), th,
                                       tb ? json_string_value(tb) : "", &r)
                       : api_req(port, method, path, key_for(k, which), &r);
    cr_assert_eq(got, status, "%s %.100s (key %s): status %d, documented %d: %.300s", method, path,
                 which, got, status, r.body);
    char where[256], ct[128], h[256];
    snprintf(where, sizeof where, "%s %.60s -> %d", method, path, status);
    const char *hname;
    json_t *hv;
    json_object_foreach(json_object_get(resp, "headers"), hname, hv)
    {
        cr_assert(api_header(&r, hname, h, sizeof h)[0], "%s: header %s missing", where, hname);
    }
    json_t *content = json_object_get(resp, "content");
    api_header(&r, "Content-Type", ct, sizeof ct);
    json_t *jc = json_object_get(content, "application/json");
    if (jc) {
        cr_assert(!strcmp(ct, "application/json"), "%s: Content-Type %s", where, ct);
        json_t *body = api_json(&r);
        char why[512];
        bool ok = validate(doc, json_object_get(jc, "schema"), body, where, why, sizeof why);
        json_decref(body);
        cr_assert(ok, "%s (body: %.400s)", why, r.body);
    } else {
        /* text: the one documented type (text/plain, text/html, or
         * text/event-stream, whose 200 is tested with HEAD) */
        void *it = json_object_iter(content);
        const char *type = it ? json_object_iter_key(it) : NULL;
        cr_assert(type && !strncmp(type, "text/", 5), "%s: no documented content", where);
        cr_assert(!strncmp(ct, type, strlen(type)), "%s: Content-Type %s, documented %s", where, ct,
                  type);
        size_t i;
        json_t *needle;
        json_array_foreach(json_object_get(resp, "x-test-contains"), i, needle)
        {
            cr_assert(strstr(r.body, json_string_value(needle)), "%s: body lacks %s", where,
                      json_string_value(needle));
        }
    }
    api_resp_free(&r);
}

/* Every x-test request of every operation whose postgres flag is `down`. */
static int run_all(json_t *doc, const keys *k, int port, int limited_port, bool down)
{
    int n = 0;
    const char *tmpl;
    json_t *item;
    json_object_foreach(json_object_get(doc, "paths"), tmpl, item)
    {
        const char *method;
        json_t *op;
        json_object_foreach(item, method, op)
        {
            size_t i;
            json_t *t;
            json_array_foreach(json_object_get(op, "x-test-requests"), i, t)
            {
                json_t *pg = json_object_get(t, "postgres");
                bool wants_down = pg && !strcmp(json_string_value(pg), "down");
                if (wants_down != down)
                    continue;
                run_one(doc, tmpl, op, t, k, port, limited_port);
                n++;
            }
        }
    }
    return n;
}

Test(api_openapi, every_documented_answer_matches_the_server)
{
    json_t *doc = load_doc();
    /* coverage first: each documented status is tested, for every operation */
    const char *tmpl;
    json_t *item;
    int operations = 0;
    json_object_foreach(json_object_get(doc, "paths"), tmpl, item)
    {
        const char *method;
        json_t *op;
        json_object_foreach(item, method, op)
        {
            cr_assert(!strcmp(method, "get") || !strcmp(method, "post"),
                      "%s: only GET and POST operations exist", tmpl);
            operations++;
            const char *code;
            json_t *resp;
            json_object_foreach(json_object_get(op, "responses"), code, resp)
            {
                bool tested = false;
                size_t i;
                json_t *t;
                json_array_foreach(json_object_get(op, "x-test-requests"), i, t)
                {
                    tested =
                        tested || json_integer_value(json_object_get(t, "status")) == atoi(code);
                }
                cr_assert(tested, "%s: documented status %s has no x-test request", tmpl, code);
            }
        }
    }
    cr_assert_eq(operations, 10);

    api_load_data();
    keys k;
    api_add_key("reader", "read", k.read, sizeof k.read, NULL, 0);
    api_add_key("boss", "admin", k.admin, sizeof k.admin, NULL, 0);
    api_add_key("feeder", "ingest", k.ingest, sizeof k.ingest, NULL, 0);
    sf_apikey_new stranger;
    cr_assert(sf_apikey_generate(NULL, &stranger, NULL) == SF_OK);
    snprintf(k.unknown, sizeof k.unknown, "%s", stranger.key);
    const char *rec[] = {"inv-reconciler", "--drain", NULL}; /* "published" is not null */
    api_run_ok(rec);
    pid_t pid, limited_pid;
    int port = api_start("api-openapi.log", NULL, &pid);
    char cfg[512];
    sc_tmp("api-openapi-rate.ini", cfg, sizeof cfg);
    FILE *f = fopen(cfg, "w");
    cr_assert(f, "cannot write %s", cfg);
    fputs("[api]\nrate_per_key = 1\nburst = 1\n", f);
    fclose(f);
    const char *limited[] = {"--config", cfg, NULL};
    int limited_port = api_start("api-openapi-rate.log", limited, &limited_pid);

    int up = run_all(doc, &k, port, limited_port, false);
    cr_assert(up >= 40, "only %d requests ran", up);
    /* (the suite's teardown starts PostgreSQL again if a check fails here) */
    fx_stack("pg-stop immediate");
    int down = run_all(doc, &k, port, limited_port, true);
    fx_stack("pg-start");
    cr_assert_eq(down, 7);
    json_decref(api_get_json(port, "/healthz", NULL, 200));
    cr_assert_eq(fx_stop(pid, SIGTERM, 10000), 0);
    cr_assert_eq(fx_stop(limited_pid, SIGTERM, 10000), 0);
    json_decref(doc);
}
