/*
 * supplier_report: see supplier_report.h. Two steps in one REPEATABLE READ
 * snapshot: list the latest supplier COUNT per (supplier, sku, location),
 * then ask sf_book_before() for each, 500 counts a statement (so progress
 * moves); then sort and print. The one idea: the book of a count depends
 * only on the ledger, never on positions, so the report is exact for counts
 * of any age and needs no lock.
 */
#include "supplier_report.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "db.h"
#include "event_parse.h"
#include "progress.h"

enum { REPORT_BATCH = 500 };

static const char REPORT_COUNTS_SQL[] =
    "SELECT DISTINCT ON (l.source, l.sku, l.location)"
    "       l.event_id, l.source, l.sku, l.location, l.qty, l.occurred_at"
    " FROM ledger l"
    " WHERE l.kind = 'COUNT' AND l.event_id LIKE 'sup-%' AND l.occurred_at >= $1"
    " ORDER BY l.source, l.sku, l.location, l.occurred_at DESC, l.event_id DESC";

/* $1: a JSON array of event ids; returns (1-based position, book_qty). */
static const char REPORT_BOOK_SQL[] =
    "SELECT e.i, sf_book_before(l.sku, l.location, l.occurred_at, l.event_id)"
    " FROM jsonb_array_elements_text($1::jsonb) WITH ORDINALITY AS e(id, i)"
    " JOIN ledger l ON l.event_id = e.id";

typedef struct report__row {
    char *event_id, *supplier, *sku, *location; /* one allocation, event_id first */
    int64_t counted_at, supplier_qty, book_qty, difference;
    bool has_book;
} report__row;

typedef struct report__rows {
    report__row *v;
    size_t n;
} report__rows;

static void report__rows_free(report__rows *rows)
{
    for (size_t i = 0; i < rows->n; i++)
        free(rows->v[i].event_id);
    free(rows->v);
    rows->v = NULL;
    rows->n = 0;
}

static int64_t report__i64(const PGresult *res, int row, int col)
{
    return (int64_t)strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* The counts of the snapshot into rows (strings copied). */
static sf_status report__load(PGconn *pg, int64_t since_ms, report__rows *rows, sf_error *err)
{
    char since[24];
    snprintf(since, sizeof since, "%" PRId64, since_ms > 0 ? since_ms : INT64_MIN);
    const char *params[1] = {since};
    PGresult *res = NULL;
    sf_status st = sf_db_query(pg, REPORT_COUNTS_SQL, 1, params, &res, err);
    if (st)
        return st;
    size_t n = (size_t)PQntuples(res);
    rows->v = n ? calloc(n, sizeof *rows->v) : NULL;
    if (n && !rows->v)
        st = SF_ERR(err, SF_ENOMEM, "out of memory for %zu counts", n);
    for (size_t i = 0; i < n && !st; i++) {
        int r = (int)i;
        size_t len[4];
        for (int c = 0; c < 4; c++)
            len[c] = (size_t)PQgetlength(res, r, c) + 1;
        char *buf = malloc(len[0] + len[1] + len[2] + len[3]);
        if (!buf) {
            st = SF_ERR(err, SF_ENOMEM, "out of memory for %zu counts", n);
            break;
        }
        report__row *x = &rows->v[i];
        char **dst[4] = {&x->event_id, &x->supplier, &x->sku, &x->location};
        for (int c = 0; c < 4; c++) {
            *dst[c] = buf;
            memcpy(buf, PQgetvalue(res, r, c), len[c]);
            buf += len[c];
        }
        x->supplier_qty = report__i64(res, r, 4);
        x->counted_at = report__i64(res, r, 5);
        rows->n = i + 1;
    }
    PQclear(res);
    return st;
}

/* book_qty of rows [from, from + n). */
static sf_status report__books(PGconn *pg, report__rows *rows, size_t from, size_t n, sf_error *err)
{
    json_t *ids = json_array();
    if (!ids)
        return SF_ERR(err, SF_ENOMEM, "out of memory");
    sf_status st = SF_OK;
    for (size_t i = from; i < from + n && !st; i++)
        if (json_array_append_new(ids, json_string(rows->v[i].event_id)))
            st = SF_ERR(err, SF_ENOMEM, "cannot encode event id %s", rows->v[i].event_id);
    char *doc = st ? NULL : json_dumps(ids, JSON_COMPACT);
    json_decref(ids);
    if (!st && !doc)
        st = SF_ERR(err, SF_ENOMEM, "out of memory");
    PGresult *res = NULL;
    if (!st) {
        const char *params[1] = {doc};
        st = sf_db_query(pg, REPORT_BOOK_SQL, 1, params, &res, err);
    }
    free(doc);
    if (st)
        return st;
    for (int r = 0, k = PQntuples(res); r < k; r++) {
        long long pos = strtoll(PQgetvalue(res, r, 0), NULL, 10);
        if (pos < 1 || (size_t)pos > n || PQgetisnull(res, r, 1))
            continue;
        report__row *x = &rows->v[from + (size_t)pos - 1];
        x->book_qty = report__i64(res, r, 1);
        x->has_book = true;
    }
    PQclear(res);
    for (size_t i = from; i < from + n; i++) {
        report__row *x = &rows->v[i];
        if (!x->has_book)
            return SF_ERR(err, SF_EINTERNAL, "count %s: no book computed", x->event_id);
        if (__builtin_sub_overflow(x->supplier_qty, x->book_qty, &x->difference))
            return SF_ERR(err, SF_EINVAL,
                          "count %s: difference %" PRId64 " - %" PRId64 " overflows 64 bits",
                          x->event_id, x->supplier_qty, x->book_qty);
    }
    return SF_OK;
}

static uint64_t report__magnitude(int64_t d)
{
    return d < 0 ? (uint64_t)0 - (uint64_t)d : (uint64_t)d;
}

/* supplier, |difference| descending, sku, location; strings bytewise. */
static int report__cmp(const void *a, const void *b)
{
    const report__row *x = a, *y = b;
    int c = strcmp(x->supplier, y->supplier);
    if (c)
        return c;
    uint64_t mx = report__magnitude(x->difference), my = report__magnitude(y->difference);
    if (mx != my)
        return mx > my ? -1 : 1;
    if ((c = strcmp(x->sku, y->sku)))
        return c;
    if ((c = strcmp(x->location, y->location)))
        return c;
    return strcmp(x->event_id, y->event_id);
}

/* One CSV cell, quoted (RFC 4180) when it holds a separator or a quote. */
static void report__csv_cell(FILE *out, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

static void report__write_csv(const report__rows *rows, FILE *out)
{
    fputs("supplier,sku,location,counted_at,supplier_qty,book_qty,difference\n", out);
    for (size_t i = 0; i < rows->n; i++) {
        const report__row *x = &rows->v[i];
        char at[32];
        if (!sf_time_format_rfc3339(x->counted_at, at, sizeof at))
            snprintf(at, sizeof at, "%" PRId64, x->counted_at);
        report__csv_cell(out, x->supplier);
        fputc(',', out);
        report__csv_cell(out, x->sku);
        fputc(',', out);
        report__csv_cell(out, x->location);
        fprintf(out, ",%s,%" PRId64 ",%" PRId64 ",%" PRId64 "\n", at, x->supplier_qty, x->book_qty,
                x->difference);
    }
}

static sf_status report__write_json(const report__rows *rows, int64_t since_ms, FILE *out,
                                    sf_error *err)
{
    json_t *list = json_array();
    size_t discrepancies = 0;
    bool ok = list != NULL;
    for (size_t i = 0; i < rows->n && ok; i++) {
        const report__row *x = &rows->v[i];
        char at[32];
        if (!sf_time_format_rfc3339(x->counted_at, at, sizeof at))
            snprintf(at, sizeof at, "%" PRId64, x->counted_at);
        discrepancies += x->difference != 0;
        ok = !json_array_append_new(
            list,
            json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s}", "supplier", x->supplier, "sku",
                      x->sku, "location", x->location, "counted_at", at, "supplier_qty",
                      (json_int_t)x->supplier_qty, "book_qty", (json_int_t)x->book_qty,
                      "difference", (json_int_t)x->difference, "event_id", x->event_id));
    }
    char since[32];
    json_t *since_v = json_null();
    if (since_ms > 0)
        since_v = sf_time_format_rfc3339(since_ms, since, sizeof since)
                      ? json_string(since)
                      : json_integer((json_int_t)since_ms);
    /* json_object_set_new takes its value even when it fails, so every value
     * is handed over exactly once, whatever failed before. */
    json_t *doc = json_object();
    int bad = !ok || !doc;
    bad |= json_object_set_new(doc, "since", since_v);
    bad |= json_object_set_new(doc, "rows", list);
    bad |= json_object_set_new(doc, "counts", json_integer((json_int_t)rows->n));
    bad |= json_object_set_new(doc, "discrepancies", json_integer((json_int_t)discrepancies));
    if (bad) {
        json_decref(doc);
        return SF_ERR(err, SF_ENOMEM, "cannot build the JSON report");
    }
    int rc = json_dumpf(doc, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(doc);
    if (rc)
        return SF_ERR(err, SF_EIO, "writing the report: %s", strerror(errno));
    fputc('\n', out);
    return SF_OK;
}

int rec_supplier_report(const sf_config *cfg, const rec_report_opts *o, FILE *out, FILE *progress)
{
    sf_error err;
    sf_error_clear(&err);
    report__rows rows = {0};
    PGconn *pg = NULL;
    rec_progress p;
    bool shown = false;

    sf_status st = sf_db_connect(cfg->pg.dsn, &pg, &err);
    if (!st)
        st = sf_db_exec(pg, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", &err);
    if (!st)
        st = report__load(pg, o->since_ms, &rows, &err);
    if (!st && progress) {
        rec_progress_begin(&p, progress, "supplier-report", rows.n);
        shown = true;
    }
    for (size_t i = 0; i < rows.n && !st; i += REPORT_BATCH) {
        if (sf_shutdown) {
            st = SF_ERR(&err, SF_EINTERNAL, "interrupted after %zu of %zu counts", i, rows.n);
            break;
        }
        size_t n = rows.n - i < REPORT_BATCH ? rows.n - i : REPORT_BATCH;
        st = report__books(pg, &rows, i, n, &err);
        if (shown)
            rec_progress_step(&p, n);
    }
    if (shown)
        rec_progress_end(&p);
    if (!st)
        st = sf_db_exec(pg, "COMMIT", &err);
    if (!st) {
        if (rows.n)
            qsort(rows.v, rows.n, sizeof *rows.v, report__cmp);
        if (o->json)
            st = report__write_json(&rows, o->since_ms, out, &err);
        else
            report__write_csv(&rows, out);
    }
    if (!st && (fflush(out) || ferror(out)))
        st = SF_ERR(&err, SF_EIO, "writing the report: %s", strerror(errno));

    report__rows_free(&rows);
    if (pg)
        PQfinish(pg);
    if (st) {
        /* A missing table or function: the database was not set up. */
        fprintf(stderr, "inv-reconciler supplier-report: %s%s\n", err.msg,
                strstr(err.msg, "does not exist") ? " (run invctl setup)" : "");
        return 1;
    }
    return 0;
}
