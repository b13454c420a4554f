/*
 * sync: a step is claim (one transaction) -> publish asynchronously -> wait
 * for every ack -> one UPDATE per chunk marking the acknowledged versions
 * sent. The publisher's callback runs on a nats thread and only writes the
 * row's own `acked` flag; sf_publisher_flush returns after every callback
 * has returned, and the flag is read only after that.
 */
#include "sync.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>

#include "broker_pub.h"
#include "codec.h"
#include "db.h"
#include "log.h"
#include "ops_feed.h"

enum { SYNC_FLUSH_MS = 10000 };

typedef struct sync__row {
    sf_channel_stock cs;
    int acked; /* 1 stored (or duplicate), -1 failed; written by the callback */
} sync__row;

struct rec_sync {
    sf_broker *broker;
    sf_ops *ops;
    PGconn *conn;
    char dsn[SF_CONFIG_URL_MAX + 1];
    sf_codec *codec;
    sf_publisher *pub;
    rec_opsfeed *feed;
    rec_sync_stats stats;
};

static void sync__on_ack(void *closure, void *token, const sf_pub_result *res)
{
    (void)closure;
    sync__row *r = token;
    r->acked = (res->status == SF_OK || res->status == SF_EDUP) ? 1 : -1;
}

static sf_status sync__ensure_publisher(rec_sync *s, sf_error *err)
{
    if (s->pub)
        return SF_OK;
    sf_publisher_opts po;
    sf_publisher_opts_init(&po);
    po.cb = sync__on_ack;
    po.closure = s;
    return sf_publisher_new(s->broker, &po, &s->pub, err);
}

static sf_status sync__connect(rec_sync *s, sf_error *err)
{
    bool fresh = false;
    sf_status st = sf_db_ensure(&s->conn, s->dsn, &fresh, err);
    if (!st && fresh)
        st = sf_db_exec(s->conn, "LISTEN inv_dirty", err);
    return st;
}

sf_status rec_sync_new(const sf_config *cfg, sf_broker *b, sf_ops *ops, rec_sync **out,
                       sf_error *err)
{
    *out = NULL;
    rec_sync *s = calloc(1, sizeof *s);
    if (!s)
        return SF_ERR(err, SF_ENOMEM, "out of memory");
    s->broker = b;
    s->ops = ops;
    snprintf(s->dsn, sizeof s->dsn, "%s", cfg->pg.dsn);
    sf_status st = sf_codec_new(&s->codec, err);
    if (!st)
        st = rec_opsfeed_new(ops, &s->feed, err);
    if (!st)
        st = sync__ensure_publisher(s, err);
    if (!st)
        st = sync__connect(s, err);
    if (st) {
        rec_sync_free(s);
        return st;
    }
    *out = s;
    return SF_OK;
}

void rec_sync_free(rec_sync *s)
{
    if (!s)
        return;
    sf_publisher_free(s->pub);
    rec_opsfeed_free(s->feed);
    sf_codec_free(s->codec);
    if (s->conn)
        PQfinish(s->conn);
    free(s);
}

const rec_sync_stats *rec_sync_stats_get(const rec_sync *s)
{
    return &s->stats;
}

/* Rows (channel, sku, version, ats, computed_at) of res from row `first`. */
static sf_status sync__rows(PGresult *res, sync__row **out, size_t *n, sf_error *err)
{
    int nt = PQntuples(res);
    *out = NULL;
    *n = 0;
    sync__row *rows = calloc(nt > 0 ? (size_t)nt : 1, sizeof *rows);
    if (!rows)
        return SF_ERR(err, SF_ENOMEM, "out of memory");
    size_t k = 0;
    for (int i = 0; i < nt; i++) {
        if (PQgetisnull(res, i, 0)) /* the claim's marker row */
            continue;
        sf_channel_stock *cs = &rows[k].cs;
        snprintf(cs->channel, sizeof cs->channel, "%s", PQgetvalue(res, i, 0));
        snprintf(cs->sku, sizeof cs->sku, "%s", PQgetvalue(res, i, 1));
        cs->version = strtoll(PQgetvalue(res, i, 2), NULL, 10);
        cs->ats = strtoll(PQgetvalue(res, i, 3), NULL, 10);
        cs->computed_at = strtoll(PQgetvalue(res, i, 4), NULL, 10);
        k++;
    }
    *out = rows;
    *n = k;
    return SF_OK;
}

/* Mark the rows with acked == 1 as sent: three arrays, one statement. */
static sf_status sync__mark_sent(rec_sync *s, const sync__row *rows, size_t n, sf_error *err)
{
    sf_db_array channel, sku, version;
    sf_db_array_init(&channel);
    sf_db_array_init(&sku);
    sf_db_array_init(&version);
    for (size_t i = 0; i < n; i++) {
        if (rows[i].acked != 1)
            continue;
        sf_db_array_add(&channel, rows[i].cs.channel);
        sf_db_array_add(&sku, rows[i].cs.sku);
        sf_db_array_add_int(&version, rows[i].cs.version);
    }
    const char *params[3] = {sf_db_array_end(&channel), sf_db_array_end(&sku),
                             sf_db_array_end(&version)};
    sf_status st = SF_OK;
    if (!params[0] || !params[1] || !params[2]) {
        st = SF_ERR(err, SF_ENOMEM, "out of memory");
    } else if (channel.n > 0) {
        PGresult *res = NULL;
        st = sf_db_query(s->conn,
                         "UPDATE channel_stock cs SET state = 'sent', sent_at = now()"
                         " FROM unnest($1::text[], $2::text[], $3::bigint[]) AS u(channel, sku,"
                         " version)"
                         " WHERE cs.channel = u.channel AND cs.sku = u.sku"
                         " AND cs.version = u.version AND cs.state = 'pending'",
                         3, params, &res, err);
        PQclear(res);
    }
    sf_db_array_free(&channel);
    sf_db_array_free(&sku);
    sf_db_array_free(&version);
    return st;
}

/* Publish rows, wait for the acks, mark the acknowledged ones sent. */
static sf_status sync__publish(rec_sync *s, sync__row *rows, size_t n, uint64_t *published,
                               sf_error *err)
{
    sf_status st = sync__ensure_publisher(s, err);
    if (st)
        return st; /* the versions stay pending */
    for (size_t i = 0; i < n; i++) {
        sync__row *r = &rows[i];
        char subject[SF_SUBJECT_MAX], msg_id[3 * SF_STR_MAX + 32];
        uint8_t buf[SF_CODEC_EVENT_MAX];
        size_t len = 0;
        r->acked = 0;
        sf_error perr;
        snprintf(msg_id, sizeof msg_id, "%s:%s:%" PRId64, r->cs.channel, r->cs.sku, r->cs.version);
        if (sf_subject_channel(subject, sizeof subject, r->cs.channel, &perr) ||
            sf_codec_encode_channel_stock(s->codec, &r->cs, buf, sizeof buf, &len, &perr) ||
            sf_publisher_publish(s->pub, subject, msg_id, buf, len, r, &perr)) {
            r->acked = -1;
            sf_log(SF_LOG_WARN, "publish %s failed (left pending, retried later): %s", msg_id,
                   perr.msg);
        }
    }
    sf_error ferr;
    if (sf_publisher_flush(s->pub, SYNC_FLUSH_MS, &ferr)) {
        /* Freeing the publisher completes every outstanding token (as a
         * timeout) before it returns, so no callback can touch rows after
         * this function; the versions stay pending and are republished. */
        sf_log(SF_LOG_WARN, "channel publishes still unacknowledged: %s", ferr.msg);
        sf_publisher_free(s->pub);
        s->pub = NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (rows[i].acked != 1) {
            s->stats.failed++;
            continue;
        }
        (*published)++;
        char topic[SF_STR_MAX + 16];
        snprintf(topic, sizeof topic, "channel.%s", rows[i].cs.channel);
        sf_ops_send(s->ops, topic,
                    json_pack("{s:s, s:s, s:I, s:I}", "channel", rows[i].cs.channel, "sku",
                              rows[i].cs.sku, "ats", (json_int_t)rows[i].cs.ats, "version",
                              (json_int_t)rows[i].cs.version));
    }
    return sync__mark_sent(s, rows, n, err);
}

/* stock.<sku> for the skus of the claim's marker rows (channel NULL, sku
 * set: schemas/sql/008_ops_feed.sql), when someone reads the feed. For
 * eyes only: a failure is logged. */
static void sync__stock_feed(rec_sync *s, PGresult *res)
{
    unsigned readers = rec_opsfeed_readers(s->feed);
    if (!readers)
        return; /* nobody watches: skip the query */
    sf_db_array skus;
    sf_db_array_init(&skus);
    for (int i = 0, n = PQntuples(res); i < n; i++) {
        if (PQgetisnull(res, i, 0) && !PQgetisnull(res, i, 1))
            sf_db_array_add(&skus, PQgetvalue(res, i, 1));
    }
    const char *lit = sf_db_array_end(&skus);
    sf_error err;
    if (!lit)
        sf_log(SF_LOG_WARN, "ops feed: out of memory for the stock of %zu skus", skus.n);
    else if (skus.n > 0 && rec_opsfeed_positions(s->feed, readers, s->conn, lit, &err))
        sf_log(SF_LOG_WARN, "ops feed: stock not published: %s", err.msg);
    sf_db_array_free(&skus);
    rec_opsfeed_counts(s->feed, &s->stats.stock_sent, &s->stats.negative);
}

sf_status rec_sync_backlog(rec_sync *s, uint64_t *n, sf_error *err)
{
    *n = 0;
    sf_status st = sync__connect(s, err);
    PGresult *res = NULL;
    if (!st)
        st = sf_db_query(s->conn, "SELECT count(*) FROM dirty", 0, NULL, &res, err);
    if (!st)
        *n = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return st;
}

sf_status rec_sync_step(rec_sync *s, int batch, int64_t now_ms, size_t *claimed, sf_error *err)
{
    *claimed = 0;
    sf_status st = sync__connect(s, err);
    if (st)
        return st;
    char b[16], now[24];
    snprintf(b, sizeof b, "%d", batch);
    snprintf(now, sizeof now, "%" PRId64, now_ms);
    const char *params[2] = {b, now};
    PGresult *res = NULL;
    if ((st = sf_db_exec(s->conn, "BEGIN", err)))
        return st;
    st = sf_db_query(s->conn,
                     "SELECT channel, sku, version, ats, computed_at, claimed "
                     "FROM sf_reconcile_claim($1::int, $2::bigint)",
                     2, params, &res, err);
    if (!st)
        st = sf_db_exec(s->conn, "COMMIT", err);
    if (st) {
        PQclear(res);
        sf_error rerr;
        if (sf_db_exec(s->conn, "ROLLBACK", &rerr)) /* the connection is gone: reconnect next */
            sf_log(SF_LOG_WARN, "%s", rerr.msg);
        return st;
    }
    if (PQntuples(res) > 0)
        *claimed = (size_t)strtoul(PQgetvalue(res, 0, 5), NULL, 10);
    sync__stock_feed(s, res);
    sync__row *rows = NULL;
    size_t n = 0;
    st = sync__rows(res, &rows, &n, err);
    PQclear(res);
    if (!st && n > 0)
        st = sync__publish(s, rows, n, &s->stats.published, err);
    free(rows);
    if (*claimed) {
        s->stats.steps++;
        s->stats.skus += *claimed;
    }
    return st;
}

sf_status rec_sync_republish(rec_sync *s, int64_t older_than_ms, sf_error *err)
{
    sf_status st = sync__connect(s, err);
    if (st)
        return st;
    char t[24];
    snprintf(t, sizeof t, "%" PRId64, older_than_ms);
    const char *params[1] = {t};
    PGresult *res = NULL;
    st = sf_db_query(s->conn,
                     "SELECT channel, sku, version, ats, computed_at FROM channel_stock "
                     "WHERE state = 'pending' AND computed_at <= $1::bigint "
                     "ORDER BY computed_at, channel, sku, version LIMIT 100000",
                     1, params, &res, err);
    if (st)
        return st;
    sync__row *rows = NULL;
    size_t n = 0;
    st = sync__rows(res, &rows, &n, err);
    PQclear(res);
    if (!st && n > 0) {
        sf_log(SF_LOG_INFO, "republishing %zu pending channel versions", n);
        st = sync__publish(s, rows, n, &s->stats.republished, err);
    }
    free(rows);
    return st;
}

sf_status rec_sync_mark_all(rec_sync *s, uint64_t *n, sf_error *err)
{
    *n = 0;
    sf_status st = sync__connect(s, err);
    if (st)
        return st;
    PGresult *res = NULL;
    st = sf_db_query(s->conn,
                     "WITH m AS (INSERT INTO dirty (sku) SELECT DISTINCT sku FROM positions "
                     "ORDER BY 1 ON CONFLICT (sku) DO UPDATE SET marked_at = now() RETURNING 1) "
                     "SELECT count(*) FROM m",
                     0, NULL, &res, err);
    if (!st)
        *n = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return st;
}

static void sync__drain_notifies(rec_sync *s, int *got)
{
    PGnotify *nt;
    PQconsumeInput(s->conn);
    while ((nt = PQnotifies(s->conn))) {
        *got = 1;
        PQfreemem(nt);
    }
}

sf_status rec_sync_wait(rec_sync *s, int wait_ms, sf_error *err)
{
    sf_status st = sync__connect(s, err);
    if (st)
        return st;
    int got = 0;
    sync__drain_notifies(s, &got);
    if (got)
        return SF_OK;
    int fd = PQsocket(s->conn);
    if (fd < 0)
        return SF_ERR(err, SF_EUNAVAIL, "postgres: connection lost");
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(fd, &rd);
    struct timeval tv = {wait_ms / 1000, (wait_ms % 1000) * 1000};
    if (select(fd + 1, &rd, NULL, NULL, &tv) > 0)
        sync__drain_notifies(s, &got);
    if (PQstatus(s->conn) != CONNECTION_OK)
        return SF_ERR(err, SF_EUNAVAIL, "postgres: connection lost while waiting");
    return SF_OK;
}
