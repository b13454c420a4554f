/*
 * query: prepared statements and their JSON (see query.h).
 *
 * Statements are prepared right after each connect; their names are the
 * q__stmts indices. Text results are parsed with strtoll: every number
 * column is a bigint. Strings come from the ledger and positions, which
 * only ever hold validated UTF-8, but a string jansson refuses becomes
 * null rather than a failed reply.
 */
#include "query.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "log.h"

#define Q_STATEMENT_TIMEOUT_MS 10000
#define Q_CONNECT_TIMEOUT_S "3"

enum {
    Q_PING = 0,
    Q_STOCK,
    Q_STOCK_LOCATION,
    Q_CHANNEL,
    Q_LEDGER,
    Q_KNOWN,
    Q_RESERVATION,
    Q_RESV_TOTALS,
    Q__COUNT
};

/* A reservation has expired (as `invctl reservations list` says): its
 * expiry passed ($now, epoch ms) with something outstanding; the
 * reconciler's next pass releases it. NULL expires_at is never expired. */
#define Q_EXPIRED(now)                                                                             \
    "(expires_at IS NOT NULL AND expires_at <= " now " AND outstanding > 0"                        \
    " AND NOT never_expires)"

/* The last version each channel was sent for a sku (state sent). */
#define Q_SENT(chan, sku)                                                                          \
    "LEFT JOIN LATERAL (SELECT cs.version, cs.ats, cs.computed_at FROM channel_stock cs"           \
    " WHERE cs.channel = " chan " AND cs.sku = " sku " AND cs.state = 'sent'"                      \
    " ORDER BY cs.version DESC LIMIT 1) s ON true"

static const struct {
    const char *name;
    int nparams;
    const char *sql;
} q__stmts[Q__COUNT] = {
    [Q_PING] = {"api_ping", 0, "SELECT 1"},
    /* 'L' rows: the locations; 'C' rows: the channels. One snapshot. */
    [Q_STOCK] = {"api_stock", 1,
                 "SELECT 'L' AS k, p.location COLLATE \"C\" AS name, p.on_hand, p.reserved,"
                 " COALESCE(l.safety_stock, 0), GREATEST(p.inbound, 0), p.damaged, p.version,"
                 " (extract(epoch FROM p.updated_at) * 1000)::bigint"
                 " FROM positions p LEFT JOIN locations l ON l.location = p.location"
                 " WHERE p.sku = $1"
                 " UNION ALL"
                 " SELECT 'C', a.channel COLLATE \"C\", a.ats, s.version, s.ats, s.computed_at,"
                 " NULL, NULL, NULL"
                 " FROM sf_channel_ats(ARRAY[$1::text]) a " Q_SENT("a.channel",
                                                                   "a.sku") " ORDER BY 1 DESC, 2"},
    [Q_STOCK_LOCATION] = {"api_stock_location", 2,
                          "SELECT p.on_hand, p.reserved, COALESCE(l.safety_stock, 0),"
                          " GREATEST(p.inbound, 0), p.damaged, p.version,"
                          " (extract(epoch FROM p.updated_at) * 1000)::bigint"
                          " FROM positions p LEFT JOIN locations l ON l.location = p.location"
                          " WHERE p.sku = $1 AND p.location = $2"},
    /* No row at all: the channel does not exist (callers pass >= 1 sku). */
    [Q_CHANNEL] =
        {"api_channel_stock", 2,
         "SELECT k.sku, COALESCE(a.ats, 0),"
         " EXISTS (SELECT 1 FROM positions p WHERE p.sku = k.sku),"
         " s.version, s.ats, s.computed_at"
         " FROM (SELECT u.sku COLLATE \"C\" AS sku, min(u.ord) AS ord"
         "       FROM unnest($2::text[]) WITH ORDINALITY u(sku, ord) GROUP BY 1) k"
         " LEFT JOIN sf_channel_ats($2::text[]) a ON a.channel = $1 AND a.sku = k.sku " Q_SENT(
             "$1", "k.sku") " WHERE EXISTS (SELECT 1 FROM channels c WHERE c.channel = $1)"
                            " ORDER BY k.ord"},
    [Q_LEDGER] = {"api_ledger", 4,
                  "SELECT stream_seq, event_id, kind, location, qty, occurred_at, source,"
                  " channel, ref, condition, expires_at,"
                  " (extract(epoch FROM received_at) * 1000)::bigint"
                  " FROM ledger WHERE sku = $1 AND stream_seq > $3"
                  " AND ($2::text IS NULL OR location = $2)"
                  " ORDER BY stream_seq LIMIT $4"},
    [Q_KNOWN] = {"api_known", 1, "SELECT EXISTS (SELECT 1 FROM positions WHERE sku = $1)"},
    [Q_RESERVATION] =
        {"api_reservation", 2,
         "SELECT sku, location, reserved, released, sold, outstanding,"
         " CASE WHEN never_expires THEN NULL ELSE expires_at END, never_expires,"
         " " Q_EXPIRED("$2::bigint") ","
                                     " (extract(epoch FROM updated_at) * 1000)::bigint"
                                     " FROM reservations WHERE ref = $1 ORDER BY sku, location"},
    /* The expired count reads the partial index reservations_expiry (its
     * predicate is implied by Q_EXPIRED); the sums one pass over the rows
     * still holding something. */
    [Q_RESV_TOTALS] = {"api_reservation_totals", 1,
                       "SELECT COALESCE(sum(outstanding), 0)::bigint, count(*),"
                       " (SELECT count(*) FROM reservations WHERE " Q_EXPIRED(
                           "$1::bigint") ")"
                                         " FROM reservations WHERE outstanding > 0"},
};

struct api_db {
    char *dsn;
    PGconn *pg; /* NULL until connected; reset on a lost connection */
};

sf_status api_db_new(const char *dsn, api_db **out, sf_error *err)
{
    api_db *db = calloc(1, sizeof *db);
    if (!db || !(db->dsn = strdup(dsn))) {
        free(db);
        return SF_ERR(err, SF_ENOMEM, "out of memory");
    }
    *out = db;
    return SF_OK;
}

void api_db_free(api_db *db)
{
    if (!db)
        return;
    if (db->pg)
        PQfinish(db->pg);
    free(db->dsn);
    free(db);
}

static void q__notice(void *arg, const char *message)
{
    (void)arg;
    char line[300];
    snprintf(line, sizeof line, "%s", message);
    line[strcspn(line, "\n")] = '\0';
    sf_log(SF_LOG_WARN, "postgres: %s", line);
}

void api_db_quiet(PGconn *pg)
{
    PQsetNoticeProcessor(pg, q__notice, NULL);
}

/* Connect (the DSN's own connect_timeout wins over ours) and prepare. */
static sf_status q__connect(api_db *db, sf_error *err)
{
    const char *const keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *const vals[] = {Q_CONNECT_TIMEOUT_S, "inv-api", db->dsn, NULL};
    PGconn *pg = PQconnectdbParams(keys, vals, 1);
    if (!pg)
        return SF_ERR(err, SF_ENOMEM, "postgres: out of memory connecting");
    if (PQstatus(pg) != CONNECTION_OK) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", PQerrorMessage(pg));
        msg[strcspn(msg, "\n")] = '\0';
        PQfinish(pg);
        return SF_ERR(err, SF_EUNAVAIL, "postgres: %s", msg);
    }
    api_db_quiet(pg);
    char set[80];
    snprintf(set, sizeof set, "SET statement_timeout = %d", Q_STATEMENT_TIMEOUT_MS);
    sf_status st = sf_db_exec(pg, set, err);
    for (int i = 0; i < Q__COUNT && !st; i++) {
        PGresult *res = PQprepare(pg, q__stmts[i].name, q__stmts[i].sql, q__stmts[i].nparams, NULL);
        if (!res || PQresultStatus(res) != PGRES_COMMAND_OK)
            st = sf_db_fail(pg, res, q__stmts[i].name, err);
        PQclear(res);
    }
    if (st) {
        PQfinish(pg);
        return st;
    }
    db->pg = pg;
    return SF_OK;
}

/* Run statement i; on a lost connection reconnect and retry once. */
static sf_status q__run(api_db *db, int i, const char *const *params, PGresult **out, sf_error *err)
{
    *out = NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        sf_status st;
        if (!db->pg && (st = q__connect(db, err)))
            return st;
        PGresult *res =
            PQexecPrepared(db->pg, q__stmts[i].name, q__stmts[i].nparams, params, NULL, NULL, 0);
        if (res && PQresultStatus(res) == PGRES_TUPLES_OK) {
            *out = res;
            return SF_OK;
        }
        st = sf_db_fail(db->pg, res, q__stmts[i].name, err);
        PQclear(res);
        if (PQstatus(db->pg) == CONNECTION_OK)
            return st == SF_EUNAVAIL ? st : SF_EINTERNAL;
        PQfinish(db->pg); /* lost: the next attempt (or call) reconnects */
        db->pg = NULL;
        if (st != SF_EUNAVAIL)
            st = SF_ERR(err, SF_EUNAVAIL, "postgres: connection lost");
        if (attempt == 1)
            return st;
    }
    return SF_ERR(err, SF_EINTERNAL, "unreachable");
}

sf_status api_db_ping(api_db *db, sf_error *err)
{
    PGresult *res = NULL;
    sf_status st = q__run(db, Q_PING, NULL, &res, err);
    PQclear(res);
    return st;
}

void api_time_format(int64_t ms, char *buf, size_t size)
{
    int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    int millis = (int)(ms - secs * 1000);
    time_t t = (time_t)secs;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(buf, size, "%lld", (long long)ms);
        return;
    }
    snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
}

static json_int_t q__i64(const PGresult *res, int r, int c)
{
    return (json_int_t)strtoll(PQgetvalue(res, r, c), NULL, 10);
}

static json_t *q__str(const char *s)
{
    json_t *j = json_string(s);
    return j ? j : json_null();
}

/* A nullable text column. */
static json_t *q__opt_str(const PGresult *res, int r, int c)
{
    return PQgetisnull(res, r, c) ? json_null() : q__str(PQgetvalue(res, r, c));
}

static json_t *q__time(const PGresult *res, int r, int c)
{
    if (PQgetisnull(res, r, c))
        return json_null();
    char buf[48];
    api_time_format((int64_t)q__i64(res, r, c), buf, sizeof buf);
    return json_string(buf);
}

/* {"version", "ats", "computed_at"} of columns c.. or null if none sent. */
static json_t *q__sent(const PGresult *res, int r, int c)
{
    if (PQgetisnull(res, r, c))
        return json_null();
    return json_pack("{s:I, s:I, s:o}", "version", q__i64(res, r, c), "ats", q__i64(res, r, c + 1),
                     "computed_at", q__time(res, r, c + 2));
}

/* A position from 7 columns at c: on_hand, reserved, safety_stock,
 * inbound, damaged, version, updated_at (ms). */
static json_t *q__position(const PGresult *res, int r, int c, json_int_t tot[5])
{
    json_int_t on_hand = q__i64(res, r, c), reserved = q__i64(res, r, c + 1),
               safety = q__i64(res, r, c + 2), inbound = q__i64(res, r, c + 3),
               damaged = q__i64(res, r, c + 4);
    json_int_t available = on_hand - reserved - safety;
    if (tot) {
        tot[0] += on_hand;
        tot[1] += reserved;
        tot[2] += available;
        tot[3] += inbound;
        tot[4] += damaged;
    }
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o}", "on_hand", on_hand, "reserved",
                     reserved, "safety_stock", safety, "available", available, "inbound", inbound,
                     "damaged", damaged, "version", q__i64(res, r, c + 5), "updated_at",
                     q__time(res, r, c + 6));
}

sf_status api_db_stock(api_db *db, const char *sku, json_t **out, sf_error *err)
{
    *out = NULL;
    PGresult *res = NULL;
    const char *params[] = {sku};
    sf_status st = q__run(db, Q_STOCK, params, &res, err);
    if (st)
        return st;
    json_t *locs = json_array(), *chans = json_array();
    json_int_t tot[5] = {0};
    for (int r = 0; r < PQntuples(res); r++) {
        if (PQgetvalue(res, r, 0)[0] == 'L') {
            json_t *o = json_pack("{s:o}", "location", q__str(PQgetvalue(res, r, 1)));
            json_t *p = q__position(res, r, 2, tot);
            json_object_update(o, p);
            json_decref(p);
            json_array_append_new(locs, o);
        } else {
            json_array_append_new(
                chans, json_pack("{s:o, s:I, s:o}", "channel", q__str(PQgetvalue(res, r, 1)), "ats",
                                 q__i64(res, r, 2), "published", q__sent(res, r, 3)));
        }
    }
    PQclear(res);
    if (json_array_size(locs) == 0) {
        json_decref(locs);
        json_decref(chans);
        return SF_ERR(err, SF_ENOTFOUND, "no stock recorded");
    }
    *out = json_pack("{s:s, s:o, s:{s:I, s:I, s:I, s:I, s:I}, s:o}", "sku", sku, "locations", locs,
                     "totals", "on_hand", tot[0], "reserved", tot[1], "available", tot[2],
                     "inbound", tot[3], "damaged", tot[4], "channels", chans);
    return *out ? SF_OK : SF_ERR(err, SF_ENOMEM, "out of memory building the reply");
}

sf_status api_db_stock_location(api_db *db, const char *sku, const char *location, json_t **out,
                                sf_error *err)
{
    *out = NULL;
    PGresult *res = NULL;
    const char *params[] = {sku, location};
    sf_status st = q__run(db, Q_STOCK_LOCATION, params, &res, err);
    if (st)
        return st;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return SF_ERR(err, SF_ENOTFOUND, "no stock recorded at this location");
    }
    json_t *p = q__position(res, 0, 0, NULL);
    PQclear(res);
    *out = json_pack("{s:s, s:s}", "sku", sku, "location", location);
    json_object_update(*out, p);
    json_decref(p);
    return *out ? SF_OK : SF_ERR(err, SF_ENOMEM, "out of memory building the reply");
}

/* skus as a PostgreSQL array literal {"a","b"}: each element quoted, '"'
 * and '\' escaped. Caller frees. */
static char *q__array_literal(const char *const *skus, size_t n)
{
    size_t cap = 3;
    for (size_t i = 0; i < n; i++)
        cap += 2 * strlen(skus[i]) + 3;
    char *buf = malloc(cap), *o = buf;
    if (!buf)
        return NULL;
    *o++ = '{';
    for (size_t i = 0; i < n; i++) {
        if (i)
            *o++ = ',';
        *o++ = '"';
        for (const char *s = skus[i]; *s; s++) {
            if (*s == '"' || *s == '\\')
                *o++ = '\\';
            *o++ = *s;
        }
        *o++ = '"';
    }
    *o++ = '}';
    *o = '\0';
    return buf;
}

sf_status api_db_channel_stock(api_db *db, const char *channel, const char *const *skus, size_t n,
                               json_t **out, sf_error *err)
{
    *out = NULL;
    char *arr = q__array_literal(skus, n);
    if (!arr)
        return SF_ERR(err, SF_ENOMEM, "out of memory");
    PGresult *res = NULL;
    const char *params[] = {channel, arr};
    sf_status st = q__run(db, Q_CHANNEL, params, &res, err);
    free(arr);
    if (st)
        return st;
    int rows = PQntuples(res);
    if (rows == 0) {
        PQclear(res);
        return SF_ERR(err, SF_ENOTFOUND, "no such channel");
    }
    json_t *list = json_array();
    for (int r = 0; r < rows; r++) {
        json_array_append_new(
            list, json_pack("{s:o, s:I, s:b, s:o}", "sku", q__str(PQgetvalue(res, r, 0)), "ats",
                            q__i64(res, r, 1), "known", PQgetvalue(res, r, 2)[0] == 't',
                            "published", q__sent(res, r, 3)));
    }
    PQclear(res);
    *out =
        json_pack("{s:s, s:I, s:o}", "channel", channel, "count", (json_int_t)rows, "skus", list);
    return *out ? SF_OK : SF_ERR(err, SF_ENOMEM, "out of memory building the reply");
}

sf_status api_db_ledger(api_db *db, const char *sku, const char *location, int64_t after, int limit,
                        json_t **out, sf_error *err)
{
    *out = NULL;
    char a[24], l[16];
    snprintf(a, sizeof a, "%lld", (long long)after);
    snprintf(l, sizeof l, "%d", limit + 1); /* one more: is there a next page? */
    const char *params[] = {sku, location, a, l};
    PGresult *res = NULL;
    sf_status st = q__run(db, Q_LEDGER, params, &res, err);
    if (st)
        return st;
    int rows = PQntuples(res);
    if (rows == 0) {
        PQclear(res);
        const char *kp[] = {sku};
        if ((st = q__run(db, Q_KNOWN, kp, &res, err)))
            return st;
        bool known = PQgetvalue(res, 0, 0)[0] == 't';
        PQclear(res);
        res = NULL;
        if (!known)
            return SF_ERR(err, SF_ENOTFOUND, "no stock recorded");
    }
    bool more = rows > limit;
    if (more)
        rows = limit;
    json_t *events = json_array();
    for (int r = 0; r < rows; r++) {
        json_array_append_new(
            events,
            json_pack("{s:I, s:o, s:o, s:o, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "seq",
                      q__i64(res, r, 0), "event_id", q__str(PQgetvalue(res, r, 1)), "kind",
                      q__str(PQgetvalue(res, r, 2)), "location", q__str(PQgetvalue(res, r, 3)),
                      "qty", q__i64(res, r, 4), "occurred_at", q__time(res, r, 5), "source",
                      q__str(PQgetvalue(res, r, 6)), "channel", q__opt_str(res, r, 7), "ref",
                      q__opt_str(res, r, 8), "condition", q__opt_str(res, r, 9), "expires_at",
                      q__time(res, r, 10), "received_at", q__time(res, r, 11)));
    }
    json_t *next = more ? json_integer(q__i64(res, rows - 1, 0)) : json_null();
    PQclear(res);
    *out = json_pack("{s:s, s:o, s:I, s:i, s:o, s:o}", "sku", sku, "location",
                     location ? json_string(location) : json_null(), "after", (json_int_t)after,
                     "limit", limit, "events", events, "next_after", next);
    return *out ? SF_OK : SF_ERR(err, SF_ENOMEM, "out of memory building the reply");
}

sf_status api_db_reservation(api_db *db, const char *ref, int64_t now_ms, json_t **out,
                             sf_error *err)
{
    *out = NULL;
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    const char *params[] = {ref, now};
    PGresult *res = NULL;
    sf_status st = q__run(db, Q_RESERVATION, params, &res, err);
    if (st)
        return st;
    int rows = PQntuples(res);
    if (rows == 0) {
        PQclear(res);
        return SF_ERR(err, SF_ENOTFOUND, "no reservation with this ref");
    }
    json_t *lines = json_array();
    json_int_t total = 0;
    for (int r = 0; r < rows; r++) {
        json_int_t outstanding = q__i64(res, r, 5);
        total += outstanding;
        json_array_append_new(
            lines, json_pack("{s:o, s:o, s:I, s:I, s:I, s:I, s:o, s:b, s:b, s:o}", "sku",
                             q__str(PQgetvalue(res, r, 0)), "location",
                             q__str(PQgetvalue(res, r, 1)), "reserved", q__i64(res, r, 2),
                             "released", q__i64(res, r, 3), "sold", q__i64(res, r, 4),
                             "outstanding", outstanding, "expires_at", q__time(res, r, 6),
                             "never_expires", PQgetvalue(res, r, 7)[0] == 't', "expired",
                             PQgetvalue(res, r, 8)[0] == 't', "updated_at", q__time(res, r, 9)));
    }
    PQclear(res);
    *out = json_pack("{s:s, s:o, s:I}", "ref", ref, "lines", lines, "outstanding", total);
    return *out ? SF_OK : SF_ERR(err, SF_ENOMEM, "out of memory building the reply");
}

sf_status api_db_reservation_totals(api_db *db, int64_t now_ms, api_resv_totals *out, sf_error *err)
{
    memset(out, 0, sizeof *out);
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    const char *params[] = {now};
    PGresult *res = NULL;
    sf_status st = q__run(db, Q_RESV_TOTALS, params, &res, err);
    if (st)
        return st;
    if (PQntuples(res) == 1) {
        out->outstanding = (int64_t)q__i64(res, 0, 0);
        out->open = (int64_t)q__i64(res, 0, 1);
        out->expired = (int64_t)q__i64(res, 0, 2);
    }
    PQclear(res);
    return SF_OK;
}
