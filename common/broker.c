/*
 * broker: NATS JetStream behind stockflow's API (see broker.h for the
 * contract): the connection, setup, synchronous publishing and the
 * read-only views. With broker_pub.c (the asynchronous publisher) and
 * broker_pull.c (pull consumption) it is the only user of nats.c; the three
 * share broker_int.h.
 *
 * The one idea needed to change it safely: the connection's callbacks
 * (disconnected, reconnected, closed, async errors) run on nats.c threads;
 * what they touch in sf_broker is guarded by its mutex, and the closed
 * callback is nats.c's last call into it (sf_broker_close waits for it).
 */
#include "broker.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker_int.h"
#include "log.h"

/* ---- errors ---------------------------------------------------------------- */

/* Set err from a nats.c failure: "<context>: <status text> (<detail>)". The
 * detail is nats.c's thread-local last error, which names the real cause. */
sf_status broker__err(sf_error *err, sf_status st, natsStatus ns, const char *file, int line,
                      const char *fmt, ...)
{
    char ctx[SF_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx, sizeof ctx, fmt, ap);
    va_end(ap);
    natsStatus last = NATS_OK;
    const char *detail = nats_GetLastError(&last);
    const char *text = natsStatus_GetText(ns);
    if (last == ns && detail && *detail && strcmp(detail, text) != 0)
        return sf_error_set(err, st, file, line, "%s: %s (%s)", ctx, text, detail);
    return sf_error_set(err, st, file, line, "%s: %s", ctx, text);
}

bool broker__is_connected(const sf_broker *b)
{
    return natsConnection_Status(b->nc) == NATS_CONN_STATUS_CONNECTED;
}

static const char *broker__conn_status_str(natsConnStatus cs)
{
    switch (cs) {
    case NATS_CONN_STATUS_DISCONNECTED: return "disconnected";
    case NATS_CONN_STATUS_CONNECTING: return "connecting";
    case NATS_CONN_STATUS_CONNECTED: return "connected";
    case NATS_CONN_STATUS_CLOSED: return "closed";
    case NATS_CONN_STATUS_RECONNECTING: return "reconnecting";
    case NATS_CONN_STATUS_DRAINING_SUBS: return "draining";
    case NATS_CONN_STATUS_DRAINING_PUBS: return "draining";
    }
    return "unknown";
}

/* The fail-fast gate in front of every network call. */
sf_status broker__check_connected(const sf_broker *b, sf_error *err, const char *what,
                                  const char *name)
{
    natsConnStatus cs = natsConnection_Status(b->nc);
    if (cs == NATS_CONN_STATUS_CONNECTED)
        return SF_OK;
    return SF_ERR(err, SF_EUNAVAIL, "%s %s: NATS %s is %s", what, name, b->urls,
                  broker__conn_status_str(cs));
}

/* Classify a nats.c status. What is not clearly the caller's fault or a
 * timeout is "unavailable" while the connection is down, else internal. */
sf_status broker__map(const sf_broker *b, natsStatus s)
{
    switch (s) {
    case NATS_OK: return SF_OK;
    case NATS_TIMEOUT: return SF_ETIMEOUT;
    case NATS_NO_MEMORY: return SF_ENOMEM;
    case NATS_NOT_FOUND: return SF_ENOTFOUND;
    case NATS_INVALID_ARG:
    case NATS_INVALID_SUBJECT:
    case NATS_MAX_PAYLOAD:
    case NATS_ADDRESS_MISSING: return SF_EINVAL;
    case NATS_IO_ERROR:
    case NATS_CONNECTION_CLOSED:
    case NATS_NO_SERVER:
    case NATS_STALE_CONNECTION:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_CONNECTION_AUTH_FAILED:
    case NATS_NOT_PERMITTED:
    case NATS_INSUFFICIENT_BUFFER:
    case NATS_NOT_YET_CONNECTED:
    case NATS_NO_RESPONDERS:
    case NATS_DRAINING:
    case NATS_SECURE_CONNECTION_WANTED:
    case NATS_SECURE_CONNECTION_REQUIRED:
    case NATS_SSL_ERROR: return SF_EUNAVAIL;
    default: break;
    }
    if (b && !broker__is_connected(b))
        return SF_EUNAVAIL;
    return SF_EINTERNAL;
}

/* A JetStream API failure: not-found codes become SF_ENOTFOUND, other
 * server-side refusals SF_EUNAVAIL (retry later), the rest via broker__map. */
sf_status broker__map_js(const sf_broker *b, natsStatus s, jsErrCode code)
{
    if (code == JSStreamNotFoundErr || code == JSConsumerNotFoundErr || code == JSNoMessageFoundErr)
        return SF_ENOTFOUND;
    if (s == NATS_NOT_FOUND)
        return SF_ENOTFOUND;
    if (s == NATS_ERR && code != 0)
        return SF_EUNAVAIL;
    return broker__map(b, s);
}

/* ---- header hygiene ----------------------------------------------------------- */

/* Header text goes into the protocol verbatim: a CR or LF in a msg id or
 * value would end the header block early and smuggle in headers. */
static bool broker__clean_text(const char *s, size_t max, bool name)
{
    size_t n = 0;
    for (; s[n]; n++) {
        unsigned char c = (unsigned char)s[n];
        if (n == max || c < 0x20 || c == 0x7f || (name && (c == ' ' || c == ':')))
            return false;
    }
    return n > 0 || !name;
}

sf_status broker__check_msg_id(const char *msg_id, const char *subject, sf_error *err)
{
    if (msg_id && (!*msg_id || !broker__clean_text(msg_id, SF_MSG_ID_MAX, false)))
        return SF_ERR(err, SF_EINVAL,
                      "publish %s: msg id must be 1..%d bytes without control characters", subject,
                      SF_MSG_ID_MAX);
    return SF_OK;
}

/* ---- subjects --------------------------------------------------------------- */

static sf_status broker__check_token(const char *tok, const char *what, bool kind, sf_error *err)
{
    if (!tok || !*tok)
        return SF_ERR(err, SF_EINVAL, "subject %s is empty", what);
    size_t n = strnlen(tok, BROKER_TOKEN_MAX + 1);
    if (n > BROKER_TOKEN_MAX)
        return SF_ERR(err, SF_EINVAL, "subject %s '%.*s...' is longer than %d bytes", what, 16, tok,
                      BROKER_TOKEN_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)tok[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
                  (!kind && ((c >= '0' && c <= '9') || c == '-'));
        if (!ok)
            return SF_ERR(err, SF_EINVAL,
                          "subject %s '%s': byte %zu (0x%02x) is not one of A-Z a-z %s_", what, tok,
                          i, c, kind ? "" : "0-9 - ");
    }
    return SF_OK;
}

static sf_status broker__fmt_subject(char *buf, size_t cap, sf_error *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static sf_status broker__fmt_subject(char *buf, size_t cap, sf_error *err, const char *fmt, ...)
{
    if (!buf || cap == 0)
        return SF_ERR(err, SF_EINVAL, "subject buffer is empty");
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap) {
        buf[0] = '\0';
        return SF_ERR(err, SF_EINVAL, "subject does not fit in %zu bytes", cap);
    }
    return SF_OK;
}

sf_status sf_subject_event(char *buf, size_t cap, const char *kind, const char *location,
                           sf_error *err)
{
    sf_status st = broker__check_token(kind, "kind", true, err);
    if (st == SF_OK)
        st = broker__check_token(location, "location", false, err);
    if (st != SF_OK)
        return st;
    char lower[BROKER_TOKEN_MAX + 1];
    size_t n = strlen(kind);
    for (size_t i = 0; i < n; i++)
        lower[i] = (kind[i] >= 'A' && kind[i] <= 'Z') ? (char)(kind[i] - 'A' + 'a') : kind[i];
    lower[n] = '\0';
    return broker__fmt_subject(buf, cap, err, "inv.evt.%s.%s", lower, location);
}

sf_status sf_subject_dlq(char *buf, size_t cap, const char *reason, sf_error *err)
{
    sf_status st = broker__check_token(reason, "dlq reason", false, err);
    if (st != SF_OK)
        return st;
    return broker__fmt_subject(buf, cap, err, "inv.dlq.%s", reason);
}

sf_status sf_subject_channel(char *buf, size_t cap, const char *channel, sf_error *err)
{
    sf_status st = broker__check_token(channel, "channel", false, err);
    if (st != SF_OK)
        return st;
    return broker__fmt_subject(buf, cap, err, "inv.chan.%s", channel);
}

/* ---- connection ------------------------------------------------------------- */

void sf_broker_opts_init(sf_broker_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->connect_timeout_ms = 2000;
    opts->reconnect_wait_ms = 250;
    opts->reconnect_max_ms = 4000;
    opts->ping_interval_ms = 10000;
    opts->js_wait_ms = 5000;
}

/* Called by nats.c after a full pass over the server list failed: doubling
 * from reconnect_wait_ms up to reconnect_max_ms, then "equal jitter" (half
 * fixed, half random) so a fleet of consumers does not reconnect in step. */
static int64_t broker__reconnect_delay(natsConnection *nc, int attempts, void *closure)
{
    (void)nc;
    sf_broker *b = closure;
    int shift = attempts > 1 ? attempts - 1 : 0;
    if (shift > 20)
        shift = 20;
    int64_t d = b->reconnect_wait_ms << shift;
    if (d > b->reconnect_max_ms || d <= 0)
        d = b->reconnect_max_ms;
    int64_t half = d / 2;
    return half + (half > 0 ? (int64_t)(rand_r(&b->seed) % (half + 1)) : 0);
}

static void broker__notify(natsConnection *nc, sf_broker *b, sf_broker_state state)
{
    if (!b->on_state)
        return;
    char url[256] = "";
    if (natsConnection_GetConnectedUrl(nc, url, sizeof url) != NATS_OK)
        url[0] = '\0';
    b->on_state(b->state_closure, state, url);
}

static void broker__on_disconnected(natsConnection *nc, void *closure)
{
    broker__notify(nc, closure, SF_BROKER_DISCONNECTED);
}

static void broker__on_reconnected(natsConnection *nc, void *closure)
{
    broker__notify(nc, closure, SF_BROKER_RECONNECTED);
}

static void broker__on_closed(natsConnection *nc, void *closure)
{
    sf_broker *b = closure;
    broker__notify(nc, b, SF_BROKER_CLOSED);
    pthread_mutex_lock(&b->mu);
    b->closed = true;
    pthread_cond_broadcast(&b->closed_cond);
    pthread_mutex_unlock(&b->mu);
}

static int64_t broker__mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Copy a URL list with every password replaced by "***"
 * (nats://user:secret@host -> nats://user:***@host): URLs go into logs. */
static void broker__redact(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = in; *p && o + 1 < cap;) {
        const char *scheme = strstr(p, "://");
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        const char *host = scheme && scheme < end ? scheme + 3 : p;
        const char *at = NULL;
        for (const char *q = host; q < end && *q != '/'; q++)
            if (*q == '@')
                at = q;
        const char *colon = at ? memchr(host, ':', (size_t)(at - host)) : NULL;
        if (colon) {
            o += (size_t)snprintf(out + o, cap - o, "%.*s:***%.*s", (int)(colon - p), p,
                                  (int)(end - at), at);
        } else {
            o += (size_t)snprintf(out + o, cap - o, "%.*s", (int)(end - p), p);
        }
        if (o >= cap)
            o = cap - 1;
        p = end;
        if (*p == ',' && o + 1 < cap) {
            out[o++] = ',';
            p++;
        }
    }
    out[o < cap ? o : cap - 1] = '\0';
}

/* nats.c's asynchronous error callback: the server refused something on a
 * live connection (a publish or subscription outside this user's
 * permissions, a slow consumer). Permission violations are remembered so
 * that the publish waiting for its ack can say why none comes. */
static void broker__on_error(natsConnection *nc, natsSubscription *sub, natsStatus s, void *closure)
{
    sf_broker *b = closure;
    const char *text = NULL;
    if (natsConnection_GetLastError(nc, &text) == NATS_OK || !text || !*text)
        text = natsStatus_GetText(s);
    const char *subj = sub ? natsSubscription_GetSubject(sub) : NULL;
    bool perm = s == NATS_NOT_PERMITTED || strstr(text, "Permissions Violation") != NULL;
    if (perm) {
        pthread_mutex_lock(&b->mu);
        size_t slot = b->perm_errors % BROKER_DENIED_RING;
        snprintf(b->denied[slot], BROKER_DENIED_TEXT, "%s", text);
        b->denied_at[slot] = broker__mono_ms();
        b->perm_errors++;
        pthread_mutex_unlock(&b->mu);
    }
    sf_log(perm ? SF_LOG_ERROR : SF_LOG_WARN, "NATS %s: %s%s%s", b->urls, text,
           subj ? ", subscription " : "", subj ? subj : "");
}

/* The server's refusal of a publish to subject, if one was reported on this
 * connection within max_age_ms, copied to out ("" and false otherwise). */
bool broker__denied(sf_broker *b, const char *subject, int64_t max_age_ms, char *out, size_t cap)
{
    int64_t now = broker__mono_ms();
    char want[SF_SUBJECT_MAX + 40];
    snprintf(want, sizeof want, "Publish to \"%s\"", subject);
    bool found = false;
    out[0] = '\0';
    pthread_mutex_lock(&b->mu);
    for (size_t i = 0; i < BROKER_DENIED_RING && !found; i++) {
        if (b->denied[i][0] && now - b->denied_at[i] <= max_age_ms && strstr(b->denied[i], want)) {
            snprintf(out, cap, "%s", b->denied[i]);
            found = true;
        }
    }
    pthread_mutex_unlock(&b->mu);
    return found;
}

/* Fail at once a publish to a subject the server refused moments ago. */
sf_status broker__check_denied(sf_broker *b, const char *subject, const char *msg_id, sf_error *err)
{
    char why[BROKER_DENIED_TEXT];
    if (!broker__denied(b, subject, BROKER_DENIED_FRESH_MS, why, sizeof why))
        return SF_OK;
    return SF_ERR(err, SF_EDENIED, "publish %s (msg id %s): refused by NATS %s: %s", subject,
                  msg_id ? msg_id : "-", b->urls, why);
}

uint64_t sf_broker_permission_errors(const sf_broker *b)
{
    if (!b)
        return 0;
    sf_broker *m = (sf_broker *)b; /* the mutex only */
    pthread_mutex_lock(&m->mu);
    uint64_t n = m->perm_errors;
    pthread_mutex_unlock(&m->mu);
    return n;
}

/* Split b->urls on commas into list (pointers into scratch). */
static sf_status broker__split_urls(const char *urls, const char *shown, char *scratch, size_t cap,
                                    const char **list, int *count, sf_error *err)
{
    size_t n = strlen(urls);
    if (n >= cap)
        return SF_ERR(err, SF_EINVAL, "NATS URL list is longer than %zu bytes", cap - 1);
    memcpy(scratch, urls, n + 1);
    int c = 0;
    char *save = NULL;
    for (char *tok = strtok_r(scratch, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ' || *tok == '\t')
            tok++;
        char *end = tok + strlen(tok);
        while (end > tok && (end[-1] == ' ' || end[-1] == '\t'))
            *--end = '\0';
        if (!*tok)
            continue;
        if (c == BROKER_URL_COUNT_MAX)
            return SF_ERR(err, SF_EINVAL, "NATS URL list '%s' has more than %d entries", shown,
                          BROKER_URL_COUNT_MAX);
        list[c++] = tok;
    }
    if (c == 0)
        return SF_ERR(err, SF_EINVAL, "NATS URL list '%s' is empty", shown);
    *count = c;
    return SF_OK;
}

static natsStatus broker__build_opts(sf_broker *b, const sf_broker_opts *o, const char **list,
                                     int count, natsOptions **out)
{
    natsOptions *no = NULL;
    natsStatus s = natsOptions_Create(&no);
    if (s == NATS_OK)
        s = natsOptions_SetServers(no, list, count);
    if (s == NATS_OK && o->name && *o->name)
        s = natsOptions_SetName(no, o->name);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(no, o->connect_timeout_ms);
    if (s == NATS_OK)
        s = natsOptions_SetNoRandomize(no, false);
    if (s == NATS_OK)
        s = natsOptions_SetAllowReconnect(no, true);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(no, -1); /* negative: forever */
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(no, o->reconnect_wait_ms);
    if (s == NATS_OK)
        s = natsOptions_SetCustomReconnectDelay(no, broker__reconnect_delay, b);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectBufSize(no, BROKER_RECONNECT_BUF);
    if (s == NATS_OK)
        s = natsOptions_SetFailRequestsOnDisconnect(no, true);
    if (s == NATS_OK)
        s = natsOptions_SetPingInterval(no, o->ping_interval_ms);
    if (s == NATS_OK)
        s = natsOptions_SetMaxPingsOut(no, 2);
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(no, broker__on_disconnected, b);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(no, broker__on_reconnected, b);
    if (s == NATS_OK)
        s = natsOptions_SetClosedCB(no, broker__on_closed, b);
    if (s == NATS_OK)
        s = natsOptions_SetErrorHandler(no, broker__on_error, b);
    const sf_broker_tls *t = &o->tls;
    bool tls = t->required || (t->ca && *t->ca) || (t->cert && *t->cert);
    if (s == NATS_OK && tls)
        s = natsOptions_SetSecure(no, true);
    if (s == NATS_OK && t->ca && *t->ca)
        s = natsOptions_LoadCATrustedCertificates(no, t->ca);
    if (s == NATS_OK && t->cert && *t->cert)
        s = natsOptions_LoadCertificatesChain(no, t->cert, t->key);
    if (s == NATS_OK)
        *out = no;
    else
        natsOptions_Destroy(no);
    return s;
}

static bool broker__close_wait(sf_broker *b);

sf_status sf_broker_connect(const sf_broker_opts *opts, sf_broker **out, sf_error *err)
{
    if (!opts || !out)
        return SF_ERR(err, SF_EINVAL, "sf_broker_connect: NULL argument");
    *out = NULL;
    if (!opts->urls || !*opts->urls)
        return SF_ERR(err, SF_EINVAL, "NATS URL is empty (set [nats] url or INV_NATS_URL)");
    char shown[BROKER_URLS_MAX];
    broker__redact(opts->urls, shown, sizeof shown);
    if ((opts->tls.cert && *opts->tls.cert) != (opts->tls.key && *opts->tls.key))
        return SF_ERR(err, SF_EINVAL,
                      "NATS %s: TLS client certificate and key go together (tls_cert '%s', "
                      "tls_key '%s')",
                      shown, opts->tls.cert ? opts->tls.cert : "",
                      opts->tls.key ? opts->tls.key : "");
    if (opts->connect_timeout_ms <= 0 || opts->reconnect_wait_ms <= 0 ||
        opts->reconnect_max_ms < opts->reconnect_wait_ms || opts->ping_interval_ms <= 0 ||
        opts->js_wait_ms <= 0)
        return SF_ERR(err, SF_EINVAL,
                      "NATS options for %s: timeouts must be > 0 and reconnect_max_ms >= "
                      "reconnect_wait_ms",
                      shown);

    sf_broker *b = calloc(1, sizeof *b);
    if (!b)
        return SF_ERR(err, SF_ENOMEM, "NATS %s: out of memory", opts->urls);
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->closed_cond, NULL);
    char scratch[BROKER_URLS_MAX];
    const char *list[BROKER_URL_COUNT_MAX];
    int count = 0;
    broker__redact(opts->urls, b->urls, sizeof b->urls);
    sf_status st =
        broker__split_urls(opts->urls, b->urls, scratch, sizeof scratch, list, &count, err);
    if (st != SF_OK)
        goto fail;
    b->js_wait_ms = opts->js_wait_ms;
    b->reconnect_wait_ms = opts->reconnect_wait_ms;
    b->reconnect_max_ms = opts->reconnect_max_ms;
    b->seed = (unsigned int)time(NULL) ^ (unsigned int)(uintptr_t)b;
    b->on_state = opts->on_state;
    b->state_closure = opts->state_closure;

    natsOptions *no = NULL;
    natsStatus s = broker__build_opts(b, opts, list, count, &no);
    if (s != NATS_OK) {
        st = BROKER_ERR(err, broker__map(NULL, s) == SF_EINVAL ? SF_EINVAL : SF_EIO, s,
                        "NATS %s: options (TLS ca '%s', cert '%s', key '%s')", b->urls,
                        opts->tls.ca ? opts->tls.ca : "", opts->tls.cert ? opts->tls.cert : "",
                        opts->tls.key ? opts->tls.key : "");
        goto fail;
    }
    s = natsConnection_Connect(&b->nc, no);
    natsOptions_Destroy(no);
    if (s != NATS_OK) {
        sf_status mapped = broker__map(NULL, s);
        st = BROKER_ERR(err, mapped == SF_EINVAL ? SF_EINVAL : SF_EUNAVAIL, s,
                        "cannot connect to NATS at %s", b->urls);
        goto fail;
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = opts->js_wait_ms;
    s = natsConnection_JetStream(&b->js, b->nc, &jo);
    if (s != NATS_OK) {
        st = BROKER_ERR(err, broker__map(b, s), s, "NATS %s: JetStream context", b->urls);
        goto fail;
    }
    *out = b;
    return SF_OK;

fail:
    if (b->nc) {
        jsCtx_Destroy(b->js);
        if (!broker__close_wait(b))
            return st; /* leaked on purpose, see broker__close_wait */
    }
    pthread_cond_destroy(&b->closed_cond);
    pthread_mutex_destroy(&b->mu);
    free(b);
    return st;
}

/* Close the connection and wait for nats.c's closed callback, its last call
 * into b (it runs on nats.c's callback thread, after any disconnected one).
 * Bounded: if it never comes, b is leaked rather than freed under it. */
static bool broker__close_wait(sf_broker *b)
{
    natsConnection_Close(b->nc);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 5;
    pthread_mutex_lock(&b->mu);
    while (!b->closed && pthread_cond_timedwait(&b->closed_cond, &b->mu, &deadline) != ETIMEDOUT)
        ;
    bool closed = b->closed;
    pthread_mutex_unlock(&b->mu);
    natsConnection_Destroy(b->nc);
    b->nc = NULL;
    return closed;
}

void sf_broker_close(sf_broker *b)
{
    if (!b)
        return;
    jsCtx_Destroy(b->js);
    if (!broker__close_wait(b))
        return; /* leaked on purpose, see broker__close_wait */
    pthread_cond_destroy(&b->closed_cond);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

bool sf_broker_connected(const sf_broker *b)
{
    return b && broker__is_connected(b);
}

const char *sf_broker_urls(const sf_broker *b)
{
    return b ? b->urls : "";
}

void sf_broker_library_cleanup(void)
{
    /* Waits for nats.c's threads to exit, so its memory is really gone. */
    (void)nats_CloseAndWait(5000);
}

/* ---- setup ------------------------------------------------------------------ */

void sf_setup_opts_init(sf_setup_opts *opts)
{
    opts->replicas = 1;
    opts->ack_wait_ms = 10000;
    opts->max_ack_pending = 65536;
}

const char *sf_setup_action_str(sf_setup_action action)
{
    switch (action) {
    case SF_SETUP_CREATED: return "created";
    case SF_SETUP_UPDATED: return "updated";
    case SF_SETUP_UNCHANGED: return "unchanged";
    }
    return "unknown";
}

static void broker__report(sf_setup_result *res, const char *kind, const char *name,
                           sf_setup_action action)
{
    if (!res || res->count >= SF_SETUP_MAX_ITEMS)
        return;
    sf_setup_item *it = &res->items[res->count++];
    it->kind = kind;
    snprintf(it->name, sizeof it->name, "%s", name);
    it->action = action;
}

static bool broker__stream_matches(const jsStreamConfig *have, const jsStreamConfig *want)
{
    return have->SubjectsLen == 1 && have->Subjects && have->Subjects[0] &&
           strcmp(have->Subjects[0], want->Subjects[0]) == 0 && have->Storage == want->Storage &&
           have->Duplicates == want->Duplicates && have->Replicas == want->Replicas;
}

static sf_status broker__ensure_stream(sf_broker *b, const char *name, const char *subject,
                                       int replicas, sf_setup_result *res, sf_error *err)
{
    const char *subjects[1] = {subject};
    jsStreamConfig want;
    jsStreamConfig_Init(&want);
    want.Name = name;
    want.Subjects = subjects;
    want.SubjectsLen = 1;
    want.Storage = js_FileStorage;
    want.Retention = js_LimitsPolicy;
    want.Duplicates = BROKER_DUP_WINDOW_NS;
    want.Replicas = replicas;

    jsStreamInfo *si = NULL;
    jsErrCode code = 0;
    natsStatus s = js_GetStreamInfo(&si, b->js, name, NULL, &code);
    if (s != NATS_OK && code != JSStreamNotFoundErr && s != NATS_NOT_FOUND)
        return BROKER_ERR(err, broker__map_js(b, s, code), s, "stream %s: info (NATS %s)", name,
                          b->urls);
    if (s != NATS_OK) {
        code = 0;
        s = js_AddStream(NULL, b->js, &want, NULL, &code);
        if (s == NATS_OK) {
            broker__report(res, "stream", name, SF_SETUP_CREATED);
            return SF_OK;
        }
        if (code != JSStreamNameExistErr) /* else: another setup won the race */
            return BROKER_ERR(err, broker__map_js(b, s, code), s,
                              "stream %s (%s): create (NATS %s, js code %d)", name, subject,
                              b->urls, (int)code);
        s = js_GetStreamInfo(&si, b->js, name, NULL, &code);
        if (s != NATS_OK)
            return BROKER_ERR(err, broker__map_js(b, s, code), s, "stream %s: info (NATS %s)", name,
                              b->urls);
    }
    if (broker__stream_matches(si->Config, &want)) {
        jsStreamInfo_Destroy(si);
        broker__report(res, "stream", name, SF_SETUP_UNCHANGED);
        return SF_OK;
    }
    /* Update from the server's config so settings we do not manage (MaxAge,
     * MaxBytes set by an operator) survive. */
    jsStreamConfig upd = *si->Config;
    upd.Subjects = subjects;
    upd.SubjectsLen = 1;
    upd.Storage = js_FileStorage;
    upd.Duplicates = BROKER_DUP_WINDOW_NS;
    upd.Replicas = replicas;
    code = 0;
    s = js_UpdateStream(NULL, b->js, &upd, NULL, &code);
    jsStreamInfo_Destroy(si);
    if (s != NATS_OK) {
        sf_status st = (s == NATS_ERR && code != 0) ? SF_EINVAL : broker__map_js(b, s, code);
        return BROKER_ERR(err, st, s,
                          "stream %s (%s): update refused (NATS %s, js code %d); a storage "
                          "change needs the stream deleted first",
                          name, subject, b->urls, (int)code);
    }
    broker__report(res, "stream", name, SF_SETUP_UPDATED);
    return SF_OK;
}

static bool broker__consumer_matches(const jsConsumerConfig *have, const jsConsumerConfig *want)
{
    return have->AckPolicy == want->AckPolicy && have->AckWait == want->AckWait &&
           have->MaxDeliver == want->MaxDeliver && have->MaxAckPending == want->MaxAckPending &&
           have->DeliverPolicy == want->DeliverPolicy && !have->DeliverSubject;
}

static sf_status broker__ensure_consumer(sf_broker *b, const char *stream, const char *durable,
                                         const sf_setup_opts *o, sf_setup_result *res,
                                         sf_error *err)
{
    char label[64];
    snprintf(label, sizeof label, "%s/%s", stream, durable);
    jsConsumerConfig want;
    jsConsumerConfig_Init(&want);
    want.Durable = durable;
    want.AckPolicy = js_AckExplicit;
    want.AckWait = BROKER_MS_TO_NS(o->ack_wait_ms);
    want.MaxDeliver = -1;
    want.MaxAckPending = o->max_ack_pending;
    want.DeliverPolicy = js_DeliverAll;
    want.ReplayPolicy = js_ReplayInstant;

    jsConsumerInfo *ci = NULL;
    jsErrCode code = 0;
    natsStatus s = js_GetConsumerInfo(&ci, b->js, stream, durable, NULL, &code);
    if (s != NATS_OK && code != JSConsumerNotFoundErr && s != NATS_NOT_FOUND)
        return BROKER_ERR(err, broker__map_js(b, s, code), s, "consumer %s: info (NATS %s)", label,
                          b->urls);
    if (s != NATS_OK) {
        code = 0;
        s = js_AddConsumer(NULL, b->js, stream, &want, NULL, &code);
        if (s != NATS_OK)
            return BROKER_ERR(err, broker__map_js(b, s, code), s,
                              "consumer %s: create (NATS %s, js code %d)", label, b->urls,
                              (int)code);
        broker__report(res, "consumer", label, SF_SETUP_CREATED);
        return SF_OK;
    }
    if (broker__consumer_matches(ci->Config, &want)) {
        jsConsumerInfo_Destroy(ci);
        broker__report(res, "consumer", label, SF_SETUP_UNCHANGED);
        return SF_OK;
    }
    jsConsumerConfig upd = *ci->Config;
    upd.Durable = durable;
    upd.AckPolicy = want.AckPolicy;
    upd.AckWait = want.AckWait;
    upd.MaxDeliver = want.MaxDeliver;
    upd.MaxAckPending = want.MaxAckPending;
    upd.DeliverPolicy = want.DeliverPolicy;
    code = 0;
    s = js_UpdateConsumer(NULL, b->js, stream, &upd, NULL, &code);
    jsConsumerInfo_Destroy(ci);
    if (s != NATS_OK) {
        sf_status st = (s == NATS_ERR && code != 0) ? SF_EINVAL : broker__map_js(b, s, code);
        return BROKER_ERR(err, st, s,
                          "consumer %s: update refused (NATS %s, js code %d); an ack or deliver "
                          "policy change needs the consumer deleted first",
                          label, b->urls, (int)code);
    }
    broker__report(res, "consumer", label, SF_SETUP_UPDATED);
    return SF_OK;
}

sf_status sf_broker_setup(sf_broker *b, const sf_setup_opts *opts, sf_setup_result *res,
                          sf_error *err)
{
    if (!b || !opts)
        return SF_ERR(err, SF_EINVAL, "sf_broker_setup: NULL argument");
    if (res)
        res->count = 0;
    if (opts->replicas < 1 || opts->replicas > 5)
        return SF_ERR(err, SF_EINVAL, "setup: replicas %d is not in 1..5", opts->replicas);
    if (opts->ack_wait_ms < 1 || opts->ack_wait_ms > 24LL * 3600 * 1000)
        return SF_ERR(err, SF_EINVAL, "setup: ack_wait_ms %lld is not in 1..86400000",
                      (long long)opts->ack_wait_ms);
    if (opts->max_ack_pending < 1 || opts->max_ack_pending > 10 * 1000 * 1000)
        return SF_ERR(err, SF_EINVAL, "setup: max_ack_pending %lld is not in 1..10000000",
                      (long long)opts->max_ack_pending);
    sf_status st = broker__check_connected(b, err, "setup", "streams");
    if (st == SF_OK)
        st = broker__ensure_stream(b, SF_STREAM_EVENTS, SF_SUBJECTS_EVENTS, opts->replicas, res,
                                   err);
    if (st == SF_OK)
        st = broker__ensure_stream(b, SF_STREAM_DLQ, SF_SUBJECTS_DLQ, opts->replicas, res, err);
    if (st == SF_OK)
        st = broker__ensure_stream(b, SF_STREAM_CHANNEL, SF_SUBJECTS_CHANNEL, opts->replicas, res,
                                   err);
    if (st == SF_OK)
        st = broker__ensure_consumer(b, SF_STREAM_EVENTS, SF_CONSUMER_APPLIER, opts, res, err);
    return st;
}

sf_status sf_broker_delete_stream(sf_broker *b, const char *stream, sf_error *err)
{
    if (!b || !stream || !*stream)
        return SF_ERR(err, SF_EINVAL, "delete stream: no stream name");
    sf_status st = broker__check_connected(b, err, "delete stream", stream);
    if (st != SF_OK)
        return st;
    jsErrCode code = 0;
    natsStatus s = js_DeleteStream(b->js, stream, NULL, &code);
    if (s != NATS_OK)
        return BROKER_ERR(err, broker__map_js(b, s, code), s, "delete stream %s (NATS %s)", stream,
                          b->urls);
    return SF_OK;
}

/* ---- synchronous publish ------------------------------------------------------ */

sf_status sf_broker_publish_sync(sf_broker *b, const char *subject, const char *msg_id,
                                 const sf_header *hdrs, size_t nhdrs, const void *data, size_t len,
                                 uint64_t *seq, sf_error *err)
{
    if (seq)
        *seq = 0;
    if (!b || !subject || !*subject || (!data && len) || (!hdrs && nhdrs))
        return SF_ERR(err, SF_EINVAL, "publish: bad argument (subject '%s')",
                      subject ? subject : "(null)");
    if (len > INT_MAX)
        return SF_ERR(err, SF_EINVAL, "publish %s: %zu bytes is too large", subject, len);
    sf_status st = broker__check_msg_id(msg_id, subject, err);
    if (st != SF_OK)
        return st;
    const char *id = msg_id ? msg_id : "-";
    for (size_t i = 0; i < nhdrs; i++) {
        if (!hdrs[i].name || !hdrs[i].value ||
            !broker__clean_text(hdrs[i].name, SF_HEADER_NAME_MAX, true) ||
            !broker__clean_text(hdrs[i].value, SF_HEADER_VALUE_MAX, false))
            return SF_ERR(err, SF_EINVAL,
                          "publish %s (msg id %s): header %zu ('%.40s') needs a name of 1..%d "
                          "printable bytes without ':' and a value of at most %d bytes "
                          "without control characters",
                          subject, id, i, hdrs[i].name ? hdrs[i].name : "(null)",
                          SF_HEADER_NAME_MAX, SF_HEADER_VALUE_MAX);
    }
    st = broker__check_connected(b, err, "publish", subject);
    if (st == SF_OK)
        st = broker__check_denied(b, subject, msg_id, err);
    if (st != SF_OK)
        return st;
    natsMsg *m = NULL;
    natsStatus s = natsMsg_Create(&m, subject, NULL, data, (int)len);
    for (size_t i = 0; s == NATS_OK && i < nhdrs; i++)
        s = natsMsgHeader_Add(m, hdrs[i].name, hdrs[i].value);
    if (s != NATS_OK) {
        natsMsg_Destroy(m);
        return BROKER_ERR(err, broker__map(b, s), s, "publish %s (msg id %s)", subject, id);
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = b->js_wait_ms;
    po.MsgId = msg_id;
    jsPubAck *pa = NULL;
    jsErrCode code = 0;
    s = js_PublishMsg(&pa, b->js, m, &po, &code);
    natsMsg_Destroy(m);
    if (s != NATS_OK) {
        if (s == NATS_NO_RESPONDERS)
            return SF_ERR(err, SF_EUNAVAIL,
                          "publish %s (msg id %s): no stream answers for this subject (stream "
                          "missing or without leader; run invctl setup?) (NATS %s)",
                          subject, id, b->urls);
        char why[BROKER_DENIED_TEXT];
        if (s == NATS_TIMEOUT && broker__denied(b, subject, INT64_MAX, why, sizeof why))
            return SF_ERR(err, SF_EDENIED, "publish %s (msg id %s): refused by NATS %s: %s",
                          subject, id, b->urls, why);
        return BROKER_ERR(err, broker__map_js(b, s, code), s,
                          "publish %s (msg id %s, NATS %s, js code %d)", subject, id, b->urls,
                          (int)code);
    }
    if (seq)
        *seq = pa->Sequence;
    bool dup = pa->Duplicate;
    uint64_t got = pa->Sequence;
    jsPubAck_Destroy(pa);
    if (dup)
        return SF_ERR(err, SF_EDUP, "publish %s: msg id %s is already stored at sequence %llu",
                      subject, id, (unsigned long long)got);
    return SF_OK;
}

/* ---- information ----------------------------------------------------------------- */

/* The info of stream (the caller destroys it): the argument check, the
 * connection check and the request that stream_info and stream_cluster
 * share. */
static sf_status broker__stream_info(sf_broker *b, const char *stream, jsStreamInfo **si,
                                     sf_error *err)
{
    *si = NULL;
    if (!b || !stream || !*stream)
        return SF_ERR(err, SF_EINVAL, "stream info: no stream name");
    sf_status st = broker__check_connected(b, err, "stream info", stream);
    if (st != SF_OK)
        return st;
    jsErrCode code = 0;
    natsStatus s = js_GetStreamInfo(si, b->js, stream, NULL, &code);
    if (s != NATS_OK)
        return BROKER_ERR(err, broker__map_js(b, s, code), s, "stream info %s (NATS %s)", stream,
                          b->urls);
    return SF_OK;
}

sf_status sf_broker_stream_info(sf_broker *b, const char *stream, uint64_t *msgs, uint64_t *bytes,
                                uint64_t *first_seq, uint64_t *last_seq, sf_error *err)
{
    jsStreamInfo *si = NULL;
    sf_status st = broker__stream_info(b, stream, &si, err);
    if (st != SF_OK)
        return st;
    if (msgs)
        *msgs = si->State.Msgs;
    if (bytes)
        *bytes = si->State.Bytes;
    if (first_seq)
        *first_seq = si->State.FirstSeq;
    if (last_seq)
        *last_seq = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    return SF_OK;
}

sf_status sf_broker_stream_cluster(sf_broker *b, const char *stream, char *leader, size_t cap,
                                   int *replicas, int *current, sf_error *err)
{
    jsStreamInfo *si = NULL;
    sf_status st = broker__stream_info(b, stream, &si, err);
    if (st != SF_OK)
        return st;
    if (leader && cap)
        snprintf(leader, cap, "%s", si->Cluster && si->Cluster->Leader ? si->Cluster->Leader : "");
    if (replicas)
        *replicas = (int)si->Config->Replicas;
    if (current) {
        *current = 0;
        for (int i = 0; si->Cluster && i < si->Cluster->ReplicasLen; i++) {
            const jsPeerInfo *p = si->Cluster->Replicas[i];
            if (p->Current && !p->Offline && p->Lag == 0)
                (*current)++;
        }
    }
    jsStreamInfo_Destroy(si);
    return SF_OK;
}

sf_status sf_broker_consumer_info(sf_broker *b, const char *stream, const char *durable,
                                  uint64_t *num_pending, uint64_t *num_ack_pending,
                                  uint64_t *num_redelivered, uint64_t *ack_floor, sf_error *err)
{
    if (!b || !stream || !*stream || !durable || !*durable)
        return SF_ERR(err, SF_EINVAL, "consumer info: stream and durable are required");
    sf_status st = broker__check_connected(b, err, "consumer info", durable);
    if (st != SF_OK)
        return st;
    jsConsumerInfo *ci = NULL;
    jsErrCode code = 0;
    natsStatus s = js_GetConsumerInfo(&ci, b->js, stream, durable, NULL, &code);
    if (s != NATS_OK)
        return BROKER_ERR(err, broker__map_js(b, s, code), s, "consumer info %s/%s (NATS %s)",
                          stream, durable, b->urls);
    if (num_pending)
        *num_pending = ci->NumPending;
    if (num_ack_pending)
        *num_ack_pending = ci->NumAckPending > 0 ? (uint64_t)ci->NumAckPending : 0;
    if (num_redelivered)
        *num_redelivered = ci->NumRedelivered > 0 ? (uint64_t)ci->NumRedelivered : 0;
    if (ack_floor)
        *ack_floor = ci->AckFloor.Stream;
    jsConsumerInfo_Destroy(ci);
    return SF_OK;
}

struct sf_stored_msg {
    natsMsg *m;
};

sf_status sf_broker_get_msg(sf_broker *b, const char *stream, uint64_t seq, sf_stored_msg **out,
                            sf_error *err)
{
    if (!b || !stream || !*stream || !out || seq == 0)
        return SF_ERR(err, SF_EINVAL, "get message: stream and a sequence > 0 are required");
    *out = NULL;
    sf_status st = broker__check_connected(b, err, "get message from", stream);
    if (st != SF_OK)
        return st;
    sf_stored_msg *sm = calloc(1, sizeof *sm);
    if (!sm)
        return SF_ERR(err, SF_ENOMEM, "get %s:%llu: out of memory", stream,
                      (unsigned long long)seq);
    jsErrCode code = 0;
    natsStatus s = js_GetMsg(&sm->m, b->js, stream, seq, NULL, &code);
    if (s != NATS_OK) {
        free(sm);
        st = broker__map_js(b, s, code);
        if (st == SF_ENOTFOUND)
            return SF_ERR(err, SF_ENOTFOUND, "%s:%llu: no such message", stream,
                          (unsigned long long)seq);
        return BROKER_ERR(err, st, s, "get %s:%llu (NATS %s)", stream, (unsigned long long)seq,
                          b->urls);
    }
    *out = sm;
    return SF_OK;
}

const char *sf_stored_msg_subject(const sf_stored_msg *m)
{
    return m ? natsMsg_GetSubject(m->m) : NULL;
}

const void *sf_stored_msg_data(const sf_stored_msg *m, size_t *len)
{
    if (len)
        *len = m ? (size_t)natsMsg_GetDataLength(m->m) : 0;
    return m ? natsMsg_GetData(m->m) : NULL;
}

uint64_t sf_stored_msg_seq(const sf_stored_msg *m)
{
    return m ? natsMsg_GetSequence(m->m) : 0;
}

int64_t sf_stored_msg_time_ms(const sf_stored_msg *m)
{
    return m ? natsMsg_GetTime(m->m) / 1000000 : 0; /* nats.c: ns since the epoch */
}

const char *sf_stored_msg_header(sf_stored_msg *m, const char *name)
{
    const char *v = NULL;
    if (!m || !name || natsMsgHeader_Get(m->m, name, &v) != NATS_OK)
        return NULL;
    return v;
}

sf_status sf_stored_msg_headers(sf_stored_msg *m, sf_header *out, size_t cap, size_t *n,
                                sf_error *err)
{
    if (!m || !n || (!out && cap))
        return SF_ERR(err, SF_EINVAL, "stored message headers: NULL argument");
    *n = 0;
    const char **keys = NULL;
    int nkeys = 0;
    natsStatus s = natsMsgHeader_Keys(m->m, &keys, &nkeys);
    if (s == NATS_NOT_FOUND)
        return SF_OK;
    if (s != NATS_OK)
        return BROKER_ERR(err, broker__map(NULL, s), s, "headers of %s:%llu",
                          natsMsg_GetSubject(m->m), (unsigned long long)sf_stored_msg_seq(m));
    size_t total = 0;
    for (int k = 0; k < nkeys && s == NATS_OK; k++) {
        const char **vals = NULL;
        int nvals = 0;
        s = natsMsgHeader_Values(m->m, keys[k], &vals, &nvals);
        if (s != NATS_OK)
            break;
        for (int v = 0; v < nvals; v++, total++) {
            if (total < cap) {
                out[total].name = keys[k];
                out[total].value = vals[v];
            }
        }
        free((void *)vals);
    }
    free((void *)keys);
    if (s != NATS_OK)
        return BROKER_ERR(err, broker__map(NULL, s), s, "headers of %s:%llu",
                          natsMsg_GetSubject(m->m), (unsigned long long)sf_stored_msg_seq(m));
    *n = total;
    return SF_OK;
}

void sf_stored_msg_free(sf_stored_msg *m)
{
    if (!m)
        return;
    natsMsg_Destroy(m->m);
    free(m);
}
