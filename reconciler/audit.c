/*
 * audit: the batch loop of `inv-reconciler audit` (audit.h); the rebuild,
 * the comparison and the repair are SQL in schemas/sql/005_audit.sql.
 *
 * The one idea: a batch is a sku range (lo, hi], fixed before it is
 * compared (hi = the 500th sku after lo), and the comparison and the repair
 * both work on exactly that range, so every sku is checked once whatever
 * arrives meanwhile. A new sku landing in a range already passed is simply
 * not audited by this run; one landing ahead of the scan is.
 */
#include "audit.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "db.h"
#include "log.h"
#include "ops.h"
#include "progress.h"

enum { AUDIT_BATCH_SKUS = 500, AUDIT_REPAIR_TRIES = 5 };

/* Distinct skus anywhere, for the progress total only. */
static const char AUDIT_TOTAL_SQL[] =
    "SELECT count(*) FROM (SELECT sku FROM ledger UNION SELECT sku FROM positions"
    " UNION SELECT sku FROM reservations) s";

/* How many skus follow $1 (up to $2) and the last of them: the next batch. */
static const char AUDIT_NEXT_SQL[] =
    "SELECT count(*), max(b.sku COLLATE \"C\") FROM ("
    " SELECT u.sku FROM ("
    "  (SELECT DISTINCT l.sku FROM ledger l WHERE l.sku > $1 ORDER BY l.sku LIMIT $2)"
    "  UNION (SELECT DISTINCT p.sku FROM positions p WHERE p.sku > $1 ORDER BY p.sku LIMIT $2)"
    "  UNION (SELECT DISTINCT r.sku FROM reservations r WHERE r.sku > $1"
    "         ORDER BY r.sku LIMIT $2)"
    " ) u ORDER BY u.sku COLLATE \"C\" LIMIT $2) b";

/* Drift rows of (lo, hi], then one row with sku NULL and stored = positions
 * compared. Columns: sku, location, ref, field, stored, rebuilt. */
static const char AUDIT_DRIFT_SQL[] =
    "SELECT sku, location, ref, field, stored, rebuilt FROM sf_audit_drift($1, $2)";

#define AUDIT_ALERT_SAMPLE 20
#define AUDIT_ALERT_WAIT_MS 1000 /* for the ops feed's reader to be connected */

static const char AUDIT_REPAIR_SQL[] = "SELECT sf_audit_repair($1, $2, $3::jsonb)";

typedef struct audit__run {
    const rec_audit_opts *o;
    PGconn *pg;
    FILE *spool; /* result lines until the job ends: nothing partial on failure */
    uint64_t checked, drifts, repaired;
    json_t *sample; /* the first AUDIT_ALERT_SAMPLE drifts, for alert.drift */
} audit__run;

/* A failed batch names its sku range. */
static sf_status audit__context(sf_status st, sf_error *err, const char *lo, const char *hi)
{
    if (st)
        sf_error_prefix(err, "skus ('%s', '%s']: ", lo, hi);
    return st;
}

/* A stored or rebuilt value as JSON: null when absent, then by field. */
static json_t *audit__json_value(const PGresult *res, int row, int col, const char *field)
{
    if (PQgetisnull(res, row, col))
        return json_null();
    const char *v = PQgetvalue(res, row, col);
    if (!strcmp(field, "count_event_id"))
        return json_string(v);
    if (!strcmp(v, "true"))
        return json_true();
    if (!strcmp(v, "false"))
        return json_false();
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (*v && !*end && !errno)
        return json_integer((json_int_t)n);
    return json_string(v);
}

static sf_status audit__emit(audit__run *r, const PGresult *res, int i, sf_error *err)
{
    const char *sku = PQgetvalue(res, i, 0), *loc = PQgetvalue(res, i, 1);
    const char *field = PQgetvalue(res, i, 3);
    bool has_ref = !PQgetisnull(res, i, 2);
    const char *ref = PQgetvalue(res, i, 2);
    if (r->o->json) {
        json_t *d = json_object();
        bool ok = d && !json_object_set_new(d, "sku", json_string(sku)) &&
                  !json_object_set_new(d, "location", json_string(loc)) &&
                  (!has_ref || !json_object_set_new(d, "ref", json_string(ref))) &&
                  !json_object_set_new(d, "field", json_string(field)) &&
                  !json_object_set_new(d, "stored", audit__json_value(res, i, 4, field)) &&
                  !json_object_set_new(d, "rebuilt", audit__json_value(res, i, 5, field));
        char *s = ok ? json_dumps(d, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(d);
        if (!s)
            return SF_ERR(err, SF_ENOMEM, "cannot encode the drift of %s@%s %s as JSON", sku, loc,
                          field);
        fprintf(r->spool, "%s%s", r->drifts ? ",\n" : "\n", s);
        free(s);
    } else {
        char shown[256];
        const char *dot = strchr(field, '.');
        if (has_ref && dot)
            snprintf(shown, sizeof shown, "%.*s[%s]%s", (int)(dot - field), field, ref, dot);
        else
            snprintf(shown, sizeof shown, "%s", field);
        fprintf(r->spool, "%-20s %-12s %-40s %14s %14s\n", sku, loc, shown,
                PQgetisnull(res, i, 4) ? "-" : PQgetvalue(res, i, 4),
                PQgetisnull(res, i, 5) ? "-" : PQgetvalue(res, i, 5));
    }
    return SF_OK;
}

/* Append (sku, location) of row i to keys unless it is the last one there
 * (rows come sorted by key, so that is the only possible repeat). */
static sf_status audit__add_key(json_t *keys, const PGresult *res, int i, sf_error *err)
{
    const char *sku = PQgetvalue(res, i, 0), *loc = PQgetvalue(res, i, 1);
    size_t n = json_array_size(keys);
    if (n) {
        json_t *last = json_array_get(keys, n - 1);
        if (!strcmp(json_string_value(json_object_get(last, "sku")), sku) &&
            !strcmp(json_string_value(json_object_get(last, "location")), loc))
            return SF_OK;
    }
    if (json_array_append_new(keys, json_pack("{s:s, s:s}", "sku", sku, "location", loc)))
        return SF_ERR(err, SF_ENOMEM, "out of memory listing the keys to repair");
    return SF_OK;
}

/* One transaction: lock, recompute under the lock, rewrite, mark dirty. A
 * deadlock or serialization failure against a consumer is tried again. */
static sf_status audit__repair(audit__run *r, const char *lo, const char *hi, const json_t *keys,
                               sf_error *err)
{
    char *doc = json_dumps(keys, JSON_COMPACT);
    if (!doc)
        return SF_ERR(err, SF_ENOMEM, "out of memory encoding the keys to repair");
    const char *params[3] = {lo, hi, doc};
    sf_status st = SF_OK;
    for (int attempt = 1;; attempt++) {
        PGresult *res = NULL;
        st = sf_db_exec(r->pg, "BEGIN", err);
        if (!st)
            st = sf_db_query(r->pg, AUDIT_REPAIR_SQL, 3, params, &res, err);
        PQclear(res);
        if (!st)
            st = sf_db_exec(r->pg, "COMMIT", err);
        if (!st)
            break;
        PQclear(PQexec(r->pg, "ROLLBACK"));
        if (st != SF_EUNAVAIL || PQstatus(r->pg) != CONNECTION_OK || attempt == AUDIT_REPAIR_TRIES)
            break;
        usleep(20000u << attempt);
    }
    free(doc);
    if (st)
        sf_error_prefix(err, "repair: ");
    return st;
}

/* Compare (lo, hi], spool its drifts, repair them when asked. */
static sf_status audit__batch(audit__run *r, const char *lo, const char *hi, sf_error *err)
{
    PGresult *res = NULL;
    const char *params[2] = {lo, hi};
    sf_status st = sf_db_query(r->pg, AUDIT_DRIFT_SQL, 2, params, &res, err);
    if (st)
        return audit__context(st, err, lo, hi);
    json_t *keys = r->o->repair ? json_array() : NULL;
    if (r->o->repair && !keys)
        st = SF_ERR(err, SF_ENOMEM, "out of memory");
    uint64_t drifts = 0;
    for (int i = 0, n = PQntuples(res); i < n && !st; i++) {
        if (PQgetisnull(res, i, 0)) {
            r->checked += strtoull(PQgetvalue(res, i, 4), NULL, 10);
            continue;
        }
        st = audit__emit(r, res, i, err);
        if (!st && json_array_size(r->sample) < AUDIT_ALERT_SAMPLE)
            json_array_append_new(
                r->sample,
                json_pack("{s:s, s:s, s:s?, s:s, s:s?, s:s?}", "sku", PQgetvalue(res, i, 0),
                          "location", PQgetvalue(res, i, 1), "ref",
                          PQgetisnull(res, i, 2) ? NULL : PQgetvalue(res, i, 2), "field",
                          PQgetvalue(res, i, 3), "stored",
                          PQgetisnull(res, i, 4) ? NULL : PQgetvalue(res, i, 4), "rebuilt",
                          PQgetisnull(res, i, 5) ? NULL : PQgetvalue(res, i, 5)));
        if (!st && keys)
            st = audit__add_key(keys, res, i, err);
        r->drifts++;
        drifts++;
    }
    PQclear(res);
    if (!st && keys && drifts) {
        st = audit__repair(r, lo, hi, keys, err);
        if (!st)
            r->repaired += drifts;
    }
    json_decref(keys);
    return audit__context(st, err, lo, hi);
}

/* The bound of the next batch after lo: *hi (heap) and its sku count; n = 0
 * when the scan is done. */
static sf_status audit__next(audit__run *r, const char *lo, char **hi, uint64_t *n, sf_error *err)
{
    char limit[16];
    snprintf(limit, sizeof limit, "%d", AUDIT_BATCH_SKUS);
    const char *params[2] = {lo, limit};
    PGresult *res = NULL;
    sf_status st = sf_db_query(r->pg, AUDIT_NEXT_SQL, 2, params, &res, err);
    if (st)
        return st;
    *n = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    *hi = NULL;
    if (*n && !(*hi = strdup(PQgetvalue(res, 0, 1))))
        st = SF_ERR(err, SF_ENOMEM, "out of memory");
    PQclear(res);
    return st;
}

static sf_status audit__write(const audit__run *r, FILE *out, sf_error *err)
{
    /* rewind() clears the error indicator: check the writes first. */
    if (fflush(r->spool) || ferror(r->spool))
        return SF_ERR(err, SF_EIO, "spooling the results to a temporary file: %s", strerror(errno));
    if (r->o->json)
        fprintf(out, "{\"checked\":%" PRIu64 ",\"drifts\":[", r->checked);
    else if (r->drifts)
        fprintf(out, "%-20s %-12s %-40s %14s %14s\n", "sku", "location", "field", "stored",
                "rebuilt");
    rewind(r->spool);
    char buf[8192];
    size_t len;
    while ((len = fread(buf, 1, sizeof buf, r->spool)) > 0)
        fwrite(buf, 1, len, out);
    if (r->o->json)
        fprintf(out, "%s],\"repaired\":%" PRIu64 "}\n", r->drifts ? "\n" : "", r->repaired);
    else
        fprintf(out, "%" PRIu64 " positions checked, %" PRIu64 " drifts (%" PRIu64 " repaired)\n",
                r->checked, r->drifts, r->repaired);
    if (ferror(r->spool))
        return SF_ERR(err, SF_EIO, "reading back the spooled results failed");
    if (fflush(out) || ferror(out))
        return SF_ERR(err, SF_EIO, "writing the results: %s", strerror(errno));
    return SF_OK;
}

/* alert.drift on the ops feed, once per run that found drift: the counts
 * and the first drifts. */
static void audit__alert(audit__run *r, sf_ops *ops)
{
    if (!r->drifts)
        return;
    if (!sf_ops_wait_reader(ops, "alert.drift", AUDIT_ALERT_WAIT_MS))
        return; /* nobody listens */
    char msg[160];
    snprintf(msg, sizeof msg,
             "audit: %" PRIu64 " drifts in %" PRIu64 " positions checked (%" PRIu64 " repaired)",
             r->drifts, r->checked, r->repaired);
    sf_ops_alert(ops, "drift", msg,
                 json_pack("{s:I, s:I, s:I, s:O}", "checked", (json_int_t)r->checked, "drifts",
                           (json_int_t)r->drifts, "repaired", (json_int_t)r->repaired, "sample",
                           r->sample));
}

int rec_audit(const sf_config *cfg, const rec_audit_opts *o, FILE *out, FILE *progress)
{
    audit__run r = {.o = o, .sample = json_array()};
    sf_error err;
    sf_error_clear(&err);
    /* Opened first, so its subscription has arrived by the end. */
    sf_ops *ops = NULL;
    sf_error oerr;
    if (sf_ops_open(cfg->ops.endpoint, "inv-reconciler", &ops, &oerr))
        sf_log(SF_LOG_WARN, "ops feed: %s (no alert.drift)", oerr.msg);
    rec_progress p;
    bool shown = false;
    char *lo = NULL, *hi = NULL;
    PGresult *res = NULL;
    uint64_t total = 0, done = 0;

    sf_status st = sf_db_connect(cfg->pg.dsn, &r.pg, &err);
    if (!st && !(r.spool = tmpfile()))
        st = SF_ERR(&err, SF_EIO, "cannot create a temporary file: %s", strerror(errno));
    if (!st && !(lo = strdup("")))
        st = SF_ERR(&err, SF_ENOMEM, "out of memory");
    if (!st && !(st = sf_db_query(r.pg, AUDIT_TOTAL_SQL, 0, NULL, &res, &err)))
        total = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    if (!st && progress) {
        rec_progress_begin(&p, progress, o->repair ? "audit --repair" : "audit", total);
        shown = true;
    }
    while (!st) {
        if (sf_shutdown) {
            st = SF_ERR(&err, SF_EINTERNAL, "interrupted after %" PRIu64 " of %" PRIu64 " skus%s",
                        done, total,
                        o->repair ? " (the batches repaired so far stay repaired)" : "");
            break;
        }
        uint64_t n = 0;
        st = audit__next(&r, lo, &hi, &n, &err);
        if (st || n == 0)
            break;
        st = audit__batch(&r, lo, hi, &err);
        done += n;
        if (shown)
            rec_progress_step(&p, n);
        free(lo);
        lo = hi;
        hi = NULL;
    }
    if (shown)
        rec_progress_end(&p);
    if (!st)
        st = audit__write(&r, out, &err);
    if (!st)
        audit__alert(&r, ops);
    sf_ops_close(ops);
    json_decref(r.sample);

    free(lo);
    free(hi);
    if (r.spool)
        fclose(r.spool);
    if (r.pg)
        PQfinish(r.pg);
    if (st) {
        /* A missing table or function: the database was not set up. */
        fprintf(stderr, "inv-reconciler audit: %s%s\n", err.msg,
                strstr(err.msg, "does not exist") ? " (run invctl setup)" : "");
        return 1;
    }
    return r.drifts > r.repaired ? 1 : 0;
}
