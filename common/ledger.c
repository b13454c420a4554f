/*
 * ledger: COPY-staged, set-based batch apply. The text COPY row is built
 * in one buffer per batch that grows to the largest batch seen and is
 * reused, so the hot path allocates nothing per event. Every field is
 * escaped for COPY text format even though validation already excludes
 * control characters: the escaping must not depend on the caller.
 */
#include "ledger.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"

struct sf_ledger {
    char *dsn;
    PGconn *conn;
    char *buf; /* COPY text of the current batch */
    size_t len, cap;
    int failed; /* sticky: the buffer could not grow */
};

static const char LEDGER_PREPARE_SQL[] =
    "CREATE TEMP TABLE IF NOT EXISTS sf_stage ("
    " event_id text COLLATE \"C\", kind text, sku text COLLATE \"C\","
    " location text COLLATE \"C\", qty bigint, occurred_at bigint, source text COLLATE \"C\","
    " channel text COLLATE \"C\", ref text COLLATE \"C\", condition text, expires_at bigint,"
    " stream_seq bigint) ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE IF NOT EXISTS sf_applied (LIKE sf_stage) ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE IF NOT EXISTS sf_late (sku text COLLATE \"C\", location text COLLATE \"C\","
    " count_at bigint) ON COMMIT DELETE ROWS;";

static sf_status ledger__prepare(sf_ledger *lg, sf_error *err)
{
    sf_status st = sf_db_connect(lg->dsn, &lg->conn, err);
    if (st)
        return st;
    return sf_db_exec(lg->conn, LEDGER_PREPARE_SQL, err);
}

sf_status sf_ledger_open(const char *dsn, sf_ledger **out, sf_error *err)
{
    *out = NULL;
    sf_ledger *lg = calloc(1, sizeof *lg);
    if (!lg || !(lg->dsn = strdup(dsn))) {
        free(lg);
        return SF_ERR(err, SF_ENOMEM, "out of memory");
    }
    sf_status st = ledger__prepare(lg, err);
    if (st) {
        sf_ledger_close(lg);
        return st;
    }
    *out = lg;
    return SF_OK;
}

void sf_ledger_close(sf_ledger *lg)
{
    if (!lg)
        return;
    if (lg->conn)
        PQfinish(lg->conn);
    free(lg->buf);
    free(lg->dsn);
    free(lg);
}

sf_status sf_ledger_reconnect(sf_ledger *lg, sf_error *err)
{
    if (lg->conn)
        PQfinish(lg->conn);
    lg->conn = NULL;
    return ledger__prepare(lg, err);
}

struct pg_conn *sf_ledger_conn(sf_ledger *lg)
{
    return lg->conn;
}

static void ledger__reserve(sf_ledger *lg, size_t more)
{
    if (lg->failed)
        return;
    if (more > SIZE_MAX / 2 - lg->len) {
        lg->failed = 1;
        return;
    }
    size_t need = lg->len + more;
    if (need <= lg->cap)
        return;
    size_t cap = lg->cap ? lg->cap : 64 * 1024;
    while (cap < need)
        cap *= 2;
    char *nb = realloc(lg->buf, cap);
    if (!nb) {
        lg->failed = 1;
        return;
    }
    lg->buf = nb;
    lg->cap = cap;
}

/* Append a field escaped for COPY text format, then the separator. */
static void ledger__put_str(sf_ledger *lg, const char *s, char sep)
{
    size_t n = strlen(s);
    ledger__reserve(lg, 2 * n + 1);
    if (lg->failed)
        return;
    char *o = lg->buf + lg->len;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        switch (c) {
        case '\\':
            *o++ = '\\';
            *o++ = '\\';
            break;
        case '\t':
            *o++ = '\\';
            *o++ = 't';
            break;
        case '\n':
            *o++ = '\\';
            *o++ = 'n';
            break;
        case '\r':
            *o++ = '\\';
            *o++ = 'r';
            break;
        default: *o++ = c;
        }
    }
    *o++ = sep;
    lg->len = (size_t)(o - lg->buf);
}

static void ledger__put_raw(sf_ledger *lg, const char *s, char sep)
{
    size_t n = strlen(s);
    ledger__reserve(lg, n + 1);
    if (lg->failed)
        return;
    memcpy(lg->buf + lg->len, s, n);
    lg->buf[lg->len + n] = sep;
    lg->len += n + 1;
}

static void ledger__put_i64(sf_ledger *lg, int64_t v, char sep)
{
    char num[24];
    snprintf(num, sizeof num, "%" PRId64, v);
    ledger__put_raw(lg, num, sep);
}

static void ledger__put_row(sf_ledger *lg, const sf_event *ev, uint64_t seq)
{
    ledger__put_str(lg, ev->event_id, '\t');
    ledger__put_raw(lg, sf_kind_name(ev->kind), '\t');
    ledger__put_str(lg, ev->sku, '\t');
    ledger__put_str(lg, ev->location, '\t');
    ledger__put_i64(lg, ev->qty, '\t');
    ledger__put_i64(lg, ev->occurred_at, '\t');
    ledger__put_str(lg, ev->source, '\t');
    if (ev->has_channel)
        ledger__put_str(lg, ev->channel, '\t');
    else
        ledger__put_raw(lg, "\\N", '\t');
    if (ev->has_ref)
        ledger__put_str(lg, ev->ref, '\t');
    else
        ledger__put_raw(lg, "\\N", '\t');
    ledger__put_raw(lg, ev->has_condition ? sf_condition_name(ev->condition) : "\\N", '\t');
    if (ev->has_expires_at)
        ledger__put_i64(lg, ev->expires_at, '\t');
    else
        ledger__put_raw(lg, "\\N", '\t');
    if (seq)
        ledger__put_i64(lg, (int64_t)seq, '\n');
    else
        ledger__put_raw(lg, "\\N", '\n');
}

/* Drain results of a sent command; the first failure wins. */
static sf_status ledger__drain(sf_ledger *lg, int64_t *value, const char *what, sf_error *err)
{
    sf_status st = SF_OK;
    PGresult *res;
    while ((res = PQgetResult(lg->conn)) != NULL) {
        ExecStatusType rs = PQresultStatus(res);
        if (rs == PGRES_TUPLES_OK && value && PQntuples(res) == 1)
            *value = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        else if (rs != PGRES_COMMAND_OK && rs != PGRES_TUPLES_OK && rs != PGRES_COPY_IN && !st)
            st = sf_db_fail(lg->conn, res, what, err);
        PQclear(res);
    }
    if (!st && PQstatus(lg->conn) != CONNECTION_OK)
        st = sf_db_fail(lg->conn, NULL, what, err);
    return st;
}

sf_status sf_ledger_apply(sf_ledger *lg, const sf_event *evs, const uint64_t *seqs, size_t n,
                          size_t *inserted, sf_error *err)
{
    *inserted = 0;
    if (n == 0)
        return SF_OK;
    if (!lg->conn)
        return SF_ERR(err, SF_EUNAVAIL, "postgres: not connected");
    lg->len = 0;
    lg->failed = 0;
    for (size_t i = 0; i < n; i++)
        ledger__put_row(lg, &evs[i], seqs ? seqs[i] : 0);
    if (lg->failed)
        return SF_ERR(err, SF_ENOMEM, "out of memory staging %zu events", n);

    if (!PQsendQuery(lg->conn, "BEGIN; COPY sf_stage FROM STDIN"))
        return sf_db_fail(lg->conn, NULL, "begin", err);
    /* Results: BEGIN (command ok), then COPY_IN; the loop stops at COPY_IN. */
    sf_status st = SF_OK;
    PGresult *res;
    while ((res = PQgetResult(lg->conn)) != NULL) {
        ExecStatusType rs = PQresultStatus(res);
        if (rs == PGRES_COPY_IN) {
            PQclear(res);
            break;
        }
        if (rs != PGRES_COMMAND_OK && !st)
            st = sf_db_fail(lg->conn, res, "begin", err);
        PQclear(res);
    }
    if (st || !res) {
        (void)ledger__drain(lg, NULL, "begin", NULL);
        PQclear(PQexec(lg->conn, "ROLLBACK"));
        return st ? st : sf_db_fail(lg->conn, NULL, "copy", err);
    }
    if (PQputCopyData(lg->conn, lg->buf, (int)lg->len) != 1 || PQputCopyEnd(lg->conn, NULL) != 1)
        return sf_db_fail(lg->conn, NULL, "copy", err);
    st = ledger__drain(lg, NULL, "copy", err);
    if (st) {
        PQclear(PQexec(lg->conn, "ROLLBACK"));
        return st;
    }
    int64_t count = 0;
    if (!PQsendQuery(lg->conn, "SELECT sf_apply_stage(); COMMIT"))
        return sf_db_fail(lg->conn, NULL, "apply", err);
    st = ledger__drain(lg, &count, "apply", err);
    if (st) {
        PQclear(PQexec(lg->conn, "ROLLBACK"));
        return st;
    }
    *inserted = (size_t)count;
    return SF_OK;
}
