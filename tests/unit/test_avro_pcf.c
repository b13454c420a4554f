/*
 * Parsing Canonical Form and CRC-64-AVRO: every case of the Apache test
 * vectors (../shared/testdata/avro-schema-tests.txt, read at run time from
 * the repository root), namespace cases the vectors lack, the contract's
 * own fingerprint, and the errors a bad schema gets.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avro_pcf.h"
#include "leak_guard.h"

#define VECTORS "../shared/testdata/avro-schema-tests.txt"

/* --- the vector file ------------------------------------------------------ */

typedef struct text {
    char *p;
    size_t len, cap;
} text;

static void text_add(text *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->p = realloc(t->p, t->cap);
        cr_assert_not_null(t->p);
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
}

typedef struct vector {
    text input, canonical;
    int has_fp;
    long long fp;
    int line; /* of its <<INPUT */
} vector;

typedef struct vectors {
    vector *v;
    size_t n;
    size_t markers; /* <<INPUT lines seen, counted independently */
} vectors;

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    cr_assert_not_null(p);
    cr_assert_eq(fread(p, 1, (size_t)n, f), (size_t)n);
    p[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return p;
}

/* Format: "<<INPUT text" on one line, or "<<INPUT" then lines up to a line
 * "INPUT" (a here-document); the same for canonical; "<<fingerprint N". */
static void load_vectors(vectors *vs)
{
    size_t len;
    char *file = slurp(VECTORS, &len);
    cr_assert_not_null(file,
                       "cannot open %s (tests run from the repository root, with "
                       "../shared beside it)",
                       VECTORS);
    memset(vs, 0, sizeof *vs);
    vs->v = calloc(512, sizeof *vs->v);
    cr_assert_not_null(vs->v);
    char *save = NULL;
    text *heredoc = NULL;
    const char *heredoc_end = NULL;
    int lineno = 0;
    for (char *line = strtok_r(file, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        if (heredoc) {
            if (strcmp(line, heredoc_end) == 0) {
                heredoc = NULL;
                continue;
            }
            text_add(heredoc, line, strlen(line));
            text_add(heredoc, "\n", 1);
            continue;
        }
        vector *cur = vs->n ? &vs->v[vs->n - 1] : NULL;
        if (strncmp(line, "<<INPUT", 7) == 0) {
            vs->markers++;
            cr_assert_lt(vs->n, 512);
            cur = &vs->v[vs->n++];
            cur->line = lineno;
            text_add(&cur->input, "", 0);
            if (line[7] == '\0') {
                heredoc = &cur->input;
                heredoc_end = "INPUT";
            } else {
                text_add(&cur->input, line + 8, strlen(line + 8));
            }
        } else if (strncmp(line, "<<canonical", 11) == 0) {
            cr_assert_not_null(cur, "%s:%d: canonical before any input", VECTORS, lineno);
            text_add(&cur->canonical, "", 0);
            if (line[11] == '\0') {
                heredoc = &cur->canonical;
                heredoc_end = "canonical";
            } else {
                text_add(&cur->canonical, line + 12, strlen(line + 12));
            }
        } else if (strncmp(line, "<<fingerprint ", 14) == 0) {
            cr_assert_not_null(cur, "%s:%d: fingerprint before any input", VECTORS, lineno);
            cur->has_fp = 1;
            cur->fp = strtoll(line + 14, NULL, 10);
        }
    }
    free(file);
}

static void free_vectors(vectors *vs)
{
    for (size_t i = 0; i < vs->n; i++) {
        free(vs->v[i].input.p);
        free(vs->v[i].canonical.p);
    }
    free(vs->v);
}

/* A here-document canonical form keeps no trailing newline. */
static void chomp(text *t)
{
    while (t->len && (t->p[t->len - 1] == '\n' || t->p[t->len - 1] == '\r'))
        t->p[--t->len] = '\0';
}

LEAK_TEST(avro_pcf, every_apache_vector_matches)
{
    vectors vs;
    load_vectors(&vs);
    size_t checked = 0, fingerprints = 0;
    for (size_t i = 0; i < vs.n; i++) {
        vector *v = &vs.v[i];
        cr_assert_not_null(v->canonical.p, "%s:%d: case without a canonical form", VECTORS,
                           v->line);
        chomp(&v->canonical);
        char *pcf = NULL;
        sf_error err;
        sf_status st = sf_avro_pcf(v->input.p, v->input.len, &pcf, &err);
        cr_assert_eq(st, SF_OK, "%s:%d: %s", VECTORS, v->line, err.msg);
        cr_assert(strcmp(pcf, v->canonical.p) == 0, "%s:%d:\n got  %s\n want %s", VECTORS, v->line,
                  pcf, v->canonical.p);
        uint64_t fp = sf_avro_crc64(pcf, strlen(pcf));
        uint64_t fp2 = 0;
        cr_assert_eq(sf_avro_fingerprint(v->input.p, v->input.len, &fp2, &err), SF_OK);
        cr_assert_eq(fp, fp2);
        if (v->has_fp) {
            cr_assert_eq((int64_t)fp, (int64_t)v->fp, "%s:%d: fingerprint %lld, want %lld", VECTORS,
                         v->line, (long long)(int64_t)fp, v->fp);
            fingerprints++;
        }
        free(pcf);
        checked++;
    }
    /* Every case in the file was checked; the file held 34 cases with 26
     * fingerprints when this was written, and may only grow. */
    cr_assert_eq(checked, vs.markers);
    cr_assert_geq(checked, 34);
    cr_assert_geq(fingerprints, 26);
    free_vectors(&vs);
}

/* --- cases the vectors lack (canonical forms from the Python avro library
 * 1.11.1, except where noted) ---------------------------------------------- */

static void assert_pcf(const char *in, const char *want)
{
    char *pcf = NULL;
    sf_error err;
    sf_status st = sf_avro_pcf(in, strlen(in), &pcf, &err);
    cr_assert_eq(st, SF_OK, "%s: %s", in, err.msg);
    cr_assert(strcmp(pcf, want) == 0, "\n in   %s\n got  %s\n want %s", in, pcf, want);
    free(pcf);
}

LEAK_TEST(avro_pcf, nested_types_inherit_the_namespace)
{
    assert_pcf("{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"a.b\",\"fields\":["
               "{\"name\":\"f\",\"type\":{\"type\":\"record\",\"name\":\"S\",\"fields\":[]}},"
               "{\"name\":\"g\",\"type\":\"S\"},{\"name\":\"h\",\"type\":\"a.b.S\"}]}",
               "{\"name\":\"a.b.R\",\"type\":\"record\",\"fields\":[{\"name\":\"f\",\"type\":"
               "{\"name\":\"a.b.S\",\"type\":\"record\",\"fields\":[]}},{\"name\":\"g\",\"type\":"
               "\"a.b.S\"},{\"name\":\"h\",\"type\":\"a.b.S\"}]}");
}

LEAK_TEST(avro_pcf, dotted_name_sets_the_namespace)
{
    assert_pcf("{\"type\":\"record\",\"name\":\"x.y.R\",\"namespace\":\"ignored\",\"fields\":["
               "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\"]}},"
               "{\"name\":\"e2\",\"type\":\"E\"}]}",
               "{\"name\":\"x.y.R\",\"type\":\"record\",\"fields\":[{\"name\":\"e\",\"type\":"
               "{\"name\":\"x.y.E\",\"type\":\"enum\",\"symbols\":[\"A\"]}},{\"name\":\"e2\","
               "\"type\":\"x.y.E\"}]}");
    assert_pcf(
        "{\"type\":\"record\",\"name\":\"Err\",\"namespace\":\"n\",\"fields\":[{\"name\":"
        "\"u\",\"type\":[\"null\",{\"type\":\"record\",\"name\":\"m.Deep\",\"fields\":[{"
        "\"name\":\"v\",\"type\":{\"type\":\"enum\",\"name\":\"Sym\",\"symbols\":[\"X\"]}}]},"
        "\"m.Deep\",\"m.Sym\"]}]}",
        "{\"name\":\"n.Err\",\"type\":\"record\",\"fields\":[{\"name\":\"u\",\"type\":["
        "\"null\",{\"name\":\"m.Deep\",\"type\":\"record\",\"fields\":[{\"name\":\"v\","
        "\"type\":{\"name\":\"m.Sym\",\"type\":\"enum\",\"symbols\":[\"X\"]}}]},\"m.Deep\","
        "\"m.Sym\"]}]}");
}

/* A second use of a fixed is a name, as for every named type (the spec's
 * rule; Python 1.11.1 re-expands fixed here, a bug in that library). The
 * quoted size with a leading zero is the INTEGERS rule. */
LEAK_TEST(avro_pcf, explicit_namespace_and_integers)
{
    assert_pcf("{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"p\",\"fields\":[{\"name\":"
               "\"q\",\"type\":{\"type\":\"fixed\",\"name\":\"F\",\"namespace\":\"q\",\"size\":"
               "\"016\"}},{\"name\":\"r\",\"type\":{\"type\":\"record\",\"name\":\"In\",\"fields\":"
               "[{\"name\":\"t\",\"type\":\"q.F\"}]}}]}",
               "{\"name\":\"p.R\",\"type\":\"record\",\"fields\":[{\"name\":\"q\",\"type\":{"
               "\"name\":\"q.F\",\"type\":\"fixed\",\"size\":16}},{\"name\":\"r\",\"type\":{"
               "\"name\":\"p.In\",\"type\":\"record\",\"fields\":[{\"name\":\"t\",\"type\":"
               "\"q.F\"}]}}]}");
}

LEAK_TEST(avro_pcf, strings_whitespace_strip_and_logical_types)
{
    assert_pcf("{\"type\":\"enum\",\"name\":\"\\u0045num\",\"symbols\":[\"\\u0041\", \"B_1\"]}",
               "{\"name\":\"Enum\",\"type\":\"enum\",\"symbols\":[\"A\",\"B_1\"]}");
    assert_pcf("{\"type\" : \"array\",\n\t\"items\" : {\"type\":\"map\", \"values\": "
               "{\"type\":\"array\",\"items\":\"int\",\"doc\":\"x\"}, \"default\":{}}}",
               "{\"type\":\"array\",\"items\":{\"type\":\"map\",\"values\":{\"type\":\"array\","
               "\"items\":\"int\"}}}");
    assert_pcf("{\"type\":\"error\",\"name\":\"Oops\",\"fields\":[{\"name\":\"msg\",\"type\":"
               "\"string\",\"doc\":\"d\",\"aliases\":[\"x\"]}]}",
               "{\"name\":\"Oops\",\"type\":\"error\",\"fields\":[{\"name\":\"msg\",\"type\":"
               "\"string\"}]}");
    /* A logical type is its underlying primitive once STRIP has run (Java;
     * this is what gives the contract's fingerprint). */
    assert_pcf("{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}", "\"long\"");
    assert_pcf("{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":4,\"scale\":2}",
               "\"bytes\"");
}

static void assert_rejected(const char *in, const char *words)
{
    char *pcf = NULL;
    sf_error err;
    sf_error_clear(&err);
    sf_status st = sf_avro_pcf(in, strlen(in), &pcf, &err);
    cr_assert_eq(st, SF_EINVAL, "%s: accepted as %s", in, pcf ? pcf : "?");
    cr_assert_null(pcf);
    cr_assert(strstr(err.msg, words) != NULL, "%s: message \"%s\" lacks \"%s\"", in, err.msg,
              words);
}

LEAK_TEST(avro_pcf, bad_schemas_are_rejected_with_a_reason)
{
    assert_rejected("{\"type\":", "schema JSON");
    assert_rejected("\"Nope\"", "unknown type name \"Nope\"");
    assert_rejected("{\"type\":\"record\",\"name\":\"1a\",\"fields\":[]}", "invalid record name");
    assert_rejected("{\"type\":\"record\",\"name\":\"int\",\"fields\":[]}", "may not be named");
    assert_rejected("{\"type\":\"record\",\"name\":\"R\"}", "without a \"fields\" array");
    assert_rejected("[\"int\",[\"null\"]]", "union directly inside a union");
    assert_rejected("{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"A\"]}", "twice");
    assert_rejected("{\"type\":\"fixed\",\"name\":\"F\",\"size\":-1}", "\"size\"");
    assert_rejected("{\"type\":\"array\"}", "without \"items\"");
    assert_rejected("{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":"
                    "{\"type\":\"enum\",\"name\":\"R\",\"symbols\":[]}}]}",
                    "defined twice");
    assert_rejected("{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":"
                    "\"int\"},{\"name\":\"a\",\"type\":\"int\"}]}",
                    "field \"a\" appears twice");
    assert_rejected("{\"a\":1,\"a\":2,\"type\":\"int\"}", "schema JSON");
    assert_rejected("42", "expected a string, object or array");
}

LEAK_TEST(avro_pcf, nesting_is_bounded)
{
    /* 200 nested arrays: beyond SF_AVRO_PCF_MAX_DEPTH, refused, no crash. */
    text t = {0};
    const char *open = "{\"type\":\"array\",\"items\":";
    for (int i = 0; i < 200; i++)
        text_add(&t, open, strlen(open));
    text_add(&t, "\"int\"", 5);
    for (int i = 0; i < 200; i++)
        text_add(&t, "}", 1);
    char *pcf = NULL;
    sf_error err;
    cr_assert_eq(sf_avro_pcf(t.p, t.len, &pcf, &err), SF_EINVAL);
    cr_assert(strstr(err.msg, "nested deeper") != NULL, "%s", err.msg);
    free(t.p);
}

/* --- CRC-64-AVRO and the contract's fingerprint --------------------------- */

static uint64_t crc64_bitwise(const unsigned char *p, size_t n)
{
    uint64_t fp = SF_AVRO_CRC64_EMPTY;
    for (size_t i = 0; i < n; i++) {
        fp ^= p[i];
        for (int k = 0; k < 8; k++)
            fp = (fp >> 1) ^ (SF_AVRO_CRC64_EMPTY & (0 - (fp & 1)));
    }
    return fp;
}

LEAK_TEST(avro_pcf, crc64_table_matches_the_definition)
{
    cr_assert_eq(sf_avro_crc64("", 0), SF_AVRO_CRC64_EMPTY);
    unsigned char buf[4096];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(i * 131 + (i >> 8));
    for (int b = 0; b < 256; b++) {
        unsigned char one = (unsigned char)b;
        cr_assert_eq(sf_avro_crc64(&one, 1), crc64_bitwise(&one, 1), "byte %d", b);
    }
    for (size_t n = 0; n <= sizeof buf; n += 97)
        cr_assert_eq(sf_avro_crc64(buf, n), crc64_bitwise(buf, n), "length %zu", n);
}

LEAK_TEST(avro_pcf, inventory_event_v1_has_the_contract_fingerprint)
{
    size_t len;
    char *json = slurp("schemas/inventory_event.v1.avsc", &len);
    cr_assert_not_null(json, "cannot open schemas/inventory_event.v1.avsc from the repo root");
    uint64_t fp = 0;
    sf_error err;
    cr_assert_eq(sf_avro_fingerprint(json, len, &fp, &err), SF_OK, "%s", err.msg);
    cr_assert_eq(fp, UINT64_C(0x42eccc0aaba12f73), "fingerprint 0x%016llx", (unsigned long long)fp);
    const unsigned char want[8] = {0x73, 0x2f, 0xa1, 0xab, 0x0a, 0xcc, 0xec, 0x42};
    for (int i = 0; i < 8; i++)
        cr_assert_eq((unsigned char)(fp >> (8 * i)), want[i], "little-endian byte %d", i);
    free(json);
}

LEAK_TEST(avro_pcf, named_types_index_full_names)
{
    const char *s = "{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"a\",\"fields\":[{\"name\":"
                    "\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"X\"]}},"
                    "{\"name\":\"f\",\"type\":{\"type\":\"fixed\",\"name\":\"b.F\",\"size\":1}}]}";
    json_t *root = json_loads(s, 0, NULL);
    cr_assert_not_null(root);
    json_t *named = NULL;
    sf_error err;
    cr_assert_eq(sf_avro_named_types(root, &named, &err), SF_OK, "%s", err.msg);
    cr_assert_eq(json_object_size(named), 3);
    cr_assert_eq(json_object_get(named, "a.R"), root);
    cr_assert_not_null(json_object_get(named, "a.E"));
    cr_assert_not_null(json_object_get(named, "b.F"));
    json_decref(named);
    json_decref(root);
}
