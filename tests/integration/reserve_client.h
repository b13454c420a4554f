/*
 * reserve_client: what the check-and-reserve tests share (header-only,
 * static; included by tests/integration/test_reserve*.c): a thread-safe
 * POST /v1/reservations client that never asserts (Criterion asserts only
 * from the test's own thread), a fan-out of N concurrent clients, and the
 * oracle that rebuilds the in-memory model from the ledger rows.
 */
#ifndef SF_TEST_RESERVE_CLIENT_H
#define SF_TEST_RESERVE_CLIENT_H

#include <pthread.h>

#include "test_api_http.h"

#define RC_HELPER static __attribute__((unused))

typedef struct rc_call {
    /* in */
    int port;
    const char *api_key;
    char idem[96];
    char body[512];
    int repeat;               /* send it this many times, one after the other */
    pthread_barrier_t *start; /* optional: all clients leave it together */
    /* out: the answer to each send */
    int status[4];
    char answer[4][256];
    char replayed[4][8];
} rc_call;

/* Send one request on a fresh connection; the body of the answer into
 * answer (cut to its size). Returns the status, 0 on a transport error. */
RC_HELPER int rc_post(int port, const char *api_key, const char *idem, const char *body,
                      char *answer, size_t size, char *replayed, size_t rsize)
{
    answer[0] = '\0';
    replayed[0] = '\0';
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return 0;
    }
    char req[2048];
    int n = snprintf(req, sizeof req,
                     "POST /v1/reservations HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Authorization: Bearer %s\r\nIdempotency-Key: %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     api_key, idem, strlen(body), body);
    api_send_all(fd, req, (size_t)n);
    char buf[8192];
    size_t len = 0;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, API_IO_TIMEOUT_MS) <= 0)
            break;
        ssize_t got = recv(fd, buf + len, sizeof buf - 1 - len, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        len += (size_t)got;
        buf[len] = '\0';
        if (api__complete(buf, len, 0) || len == sizeof buf - 1)
            break;
    }
    close(fd);
    buf[len] = '\0';
    int status = 0;
    sscanf(buf, "HTTP/1.%*d %d", &status);
    const char *sep = strstr(buf, "\r\n\r\n");
    snprintf(answer, size, "%s", sep ? sep + 4 : "");
    const char *rp = NULL;
    for (const char *h = strstr(buf, "\r\n"); h && !rp; h = strstr(h + 2, "\r\n"))
        if (!strncasecmp(h, "\r\nIdempotent-Replayed: ", 23))
            rp = h;
    if (rp && (!sep || rp < sep))
        snprintf(replayed, rsize, "%.*s", (int)strcspn(rp + 23, "\r\n"), rp + 23);
    return status;
}

static void *rc__thread(void *arg)
{
    rc_call *c = arg;
    if (c->start)
        pthread_barrier_wait(c->start);
    for (int i = 0; i < c->repeat && i < 4; i++)
        c->status[i] = rc_post(c->port, c->api_key, c->idem, c->body, c->answer[i],
                               sizeof c->answer[i], c->replayed[i], sizeof c->replayed[i]);
    return NULL;
}

/* Run calls[0..n) on n threads released together. */
RC_HELPER void rc_fire(rc_call *calls, size_t n)
{
    pthread_t *t = calloc(n, sizeof *t);
    pthread_barrier_t start;
    cr_assert(t && pthread_barrier_init(&start, NULL, (unsigned)n) == 0);
    for (size_t i = 0; i < n; i++) {
        calls[i].start = &start;
        if (calls[i].repeat == 0)
            calls[i].repeat = 1;
        cr_assert(pthread_create(&t[i], NULL, rc__thread, &calls[i]) == 0);
    }
    for (size_t i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&start);
    free(t);
}

/* Every ledger row as an event: the model of the ledger's set. */
RC_HELPER sf_model *rc_model_of_ledger(void)
{
    PGresult *res = PQexec(fx_pg(), "SELECT event_id, kind, sku, location, qty, occurred_at,"
                                    " source, channel, ref, condition, expires_at FROM ledger");
    cr_assert(PQresultStatus(res) == PGRES_TUPLES_OK, "%s", PQerrorMessage(fx_pg()));
    int n = PQntuples(res);
    sf_event *evs = calloc((size_t)n + 1, sizeof *evs);
    cr_assert(evs);
    for (int i = 0; i < n; i++) {
        sf_event *e = &evs[i];
        sf_event_init(e);
        sf_error err;
        snprintf(e->event_id, sizeof e->event_id, "%s", PQgetvalue(res, i, 0));
        cr_assert(sf_kind_parse(PQgetvalue(res, i, 1), &e->kind, &err) == SF_OK);
        snprintf(e->sku, sizeof e->sku, "%s", PQgetvalue(res, i, 2));
        snprintf(e->location, sizeof e->location, "%s", PQgetvalue(res, i, 3));
        e->qty = strtoll(PQgetvalue(res, i, 4), NULL, 10);
        e->occurred_at = strtoll(PQgetvalue(res, i, 5), NULL, 10);
        snprintf(e->source, sizeof e->source, "%s", PQgetvalue(res, i, 6));
        if ((e->has_channel = !PQgetisnull(res, i, 7)))
            snprintf(e->channel, sizeof e->channel, "%s", PQgetvalue(res, i, 7));
        if ((e->has_ref = !PQgetisnull(res, i, 8)))
            snprintf(e->ref, sizeof e->ref, "%s", PQgetvalue(res, i, 8));
        if ((e->has_condition = !PQgetisnull(res, i, 9)))
            cr_assert(sf_condition_parse(PQgetvalue(res, i, 9), &e->condition, &err) == SF_OK);
        if ((e->has_expires_at = !PQgetisnull(res, i, 10)))
            e->expires_at = strtoll(PQgetvalue(res, i, 10), NULL, 10);
    }
    PQclear(res);
    sf_model *m = sc_model_of(evs, (size_t)n);
    free(evs);
    return m;
}

/* An ingest key and inv-api on a free port with `threads` threads. */
RC_HELPER int rc_start_api(const char *log_name, const char *threads, char *key, size_t size,
                           pid_t *pid)
{
    api_add_key("reserver", "ingest", key, size, NULL, 0);
    const char *extra[] = {"--threads", threads, NULL};
    return api_start(log_name, extra, pid);
}

#endif
