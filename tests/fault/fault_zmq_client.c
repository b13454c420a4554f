/*
 * fault_zmq_client: the fault suite's ZeroMQ producer. Sends every line of
 * a JSON-lines file to `inv-ingest --zmq` and keeps at it until the ingest
 * answered "ok <event_id>" for each one: an "err ..." reply, or no reply
 * within --timeout-ms (the ingest was killed, paused, or JetStream is
 * away), sends the same line again. The line keeps its event_id, so a
 * copy that JetStream stored after all comes back as a duplicate, which the
 * ingest also answers "ok".
 *
 * The one idea: one DEALER socket with up to --window requests in flight.
 * Each request carries a tag frame (line index, attempt) before an empty
 * delimiter; the ROUTER echoes the envelope with its reply, so replies are
 * matched to lines in any order, and a late reply to an earlier attempt is
 * recognised (an "ok" is always believed: that copy is stored; a stale
 * "err" is ignored because a newer attempt is still out).
 *
 * Every acknowledged event_id is appended to --acked (one a line): the
 * checker's record of what the ingest acknowledged. Exit 0 once every line
 * is acknowledged, 1 on a deadline or a reply naming the wrong event, 2 on
 * usage or unreadable input.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "event.h"
#include "event_parse.h"

enum { ERR_BACKOFF_MS = 250, POLL_MS = 10, TAG_LEN = 12 };

typedef enum zc__state { ZC_NEW = 0, ZC_INFLIGHT, ZC_WAITING, ZC_ACKED } zc__state;

typedef struct zc__line {
    char *text; /* owned */
    size_t len;
    char event_id[SF_STR_MAX + 1];
    uint8_t state;    /* zc__state */
    uint32_t attempt; /* attempts sent so far */
} zc__line;

/* A FIFO of (line, attempt, time): requests in send order (their timeouts
 * fall due in that order) or lines waiting for a retry (a fixed backoff, so
 * also in order). Stale entries are skipped when popped. */
typedef struct zc__entry {
    uint32_t line;
    uint32_t attempt;
    int64_t at_ms;
} zc__entry;

typedef struct zc__fifo {
    zc__entry *items;
    size_t cap, head, len;
} zc__fifo;

typedef struct zc__opts {
    const char *endpoint;
    const char *file;
    const char *acked;
    int window;
    long rate; /* new lines per second, 0 = unlimited */
    int timeout_ms;
    long deadline_s; /* 0 = none */
    int progress_s;
} zc__opts;

typedef struct zc__stats {
    uint64_t sent, resent, ok, ok_stale, err, stale_err, timeouts, bogus;
} zc__stats;

static int64_t zc__mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool zc__push(zc__fifo *f, uint32_t line, uint32_t attempt, int64_t at_ms)
{
    if (f->len == f->cap) {
        size_t ncap = f->cap ? f->cap * 2 : 1024;
        zc__entry *ni = malloc(ncap * sizeof *ni);
        if (!ni)
            return false;
        for (size_t i = 0; i < f->len; i++)
            ni[i] = f->items[(f->head + i) % f->cap];
        free(f->items);
        f->items = ni;
        f->cap = ncap;
        f->head = 0;
    }
    f->items[(f->head + f->len) % f->cap] = (zc__entry){line, attempt, at_ms};
    f->len++;
    return true;
}

static const zc__entry *zc__peek(const zc__fifo *f)
{
    return f->len ? &f->items[f->head] : NULL;
}

static void zc__pop(zc__fifo *f)
{
    f->head = (f->head + 1) % f->cap;
    f->len--;
}

/* Read every non-blank line and its event_id (parsed as inv-ingest does). */
static int zc__load(const char *path, zc__line **out, size_t *n_out)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fault_zmq_client: %s: %s\n", path, strerror(errno));
        return -1;
    }
    sf_parse_opts po;
    sf_parse_opts_init(&po);
    po.default_source = "inv-ingest";
    size_t n = 0, cap = 0;
    zc__line *lines = NULL;
    char *buf = NULL;
    size_t bufcap = 0;
    ssize_t got;
    uint64_t lineno = 0;
    int rc = 0;
    while ((got = getline(&buf, &bufcap, f)) >= 0) {
        lineno++;
        size_t len = (size_t)got;
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
            len--;
        if (len == 0)
            continue;
        sf_event ev;
        sf_error err;
        if (sf_event_parse_json(buf, len, &po, &ev, &err) != SF_OK) {
            fprintf(stderr, "fault_zmq_client: %s:%" PRIu64 ": %s\n", path, lineno, err.msg);
            rc = -1;
            break;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 4096;
            zc__line *nl = realloc(lines, ncap * sizeof *nl);
            if (!nl) {
                rc = -1;
                break;
            }
            lines = nl;
            cap = ncap;
        }
        zc__line *l = &lines[n];
        memset(l, 0, sizeof *l);
        if (!(l->text = malloc(len))) {
            rc = -1;
            break;
        }
        memcpy(l->text, buf, len);
        l->len = len;
        snprintf(l->event_id, sizeof l->event_id, "%s", ev.event_id);
        n++;
    }
    free(buf);
    fclose(f);
    if (n > UINT32_MAX) {
        fprintf(stderr, "fault_zmq_client: %s: too many lines\n", path);
        rc = -1;
    }
    if (rc) {
        for (size_t i = 0; i < n; i++)
            free(lines[i].text);
        free(lines);
        return -1;
    }
    *out = lines;
    *n_out = n;
    return 0;
}

static void zc__tag(uint8_t tag[TAG_LEN], uint32_t line, uint32_t attempt)
{
    uint64_t v = line;
    for (int i = 0; i < 8; i++)
        tag[i] = (uint8_t)(v >> (8 * i));
    for (int i = 0; i < 4; i++)
        tag[8 + i] = (uint8_t)(attempt >> (8 * i));
}

static void zc__untag(const uint8_t *tag, uint64_t *line, uint32_t *attempt)
{
    *line = 0;
    *attempt = 0;
    for (int i = 0; i < 8; i++)
        *line |= (uint64_t)tag[i] << (8 * i);
    for (int i = 0; i < 4; i++)
        *attempt |= (uint32_t)tag[8 + i] << (8 * i);
}

/* Send [tag][""][line] without blocking; false when the socket would block
 * (no connected peer: ZMQ_IMMEDIATE) or failed. */
static bool zc__send(void *sock, const zc__line *l, uint32_t index)
{
    uint8_t tag[TAG_LEN];
    zc__tag(tag, index, l->attempt + 1);
    if (zmq_send(sock, tag, sizeof tag, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return false;
    /* Once the first frame is queued the rest of the message goes too. */
    if (zmq_send(sock, "", 0, ZMQ_SNDMORE) < 0 || zmq_send(sock, l->text, l->len, 0) < 0)
        return false;
    return true;
}

typedef struct zc__run {
    const zc__opts *o;
    void *sock;
    zc__line *lines;
    size_t n;
    size_t next_new; /* lines[0..next_new) were sent at least once */
    size_t inflight;
    size_t acked;
    zc__fifo sent, waiting;
    FILE *acked_out;
    zc__stats st;
    int fatal;
} zc__run;

/* One reply: [tag][""][text]. */
static void zc__reply(zc__run *r, int64_t now)
{
    uint8_t frames[3][256];
    size_t sizes[3] = {0, 0, 0};
    char text[1024];
    size_t nframes = 0, text_len = 0;
    for (;;) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, r->sock, nframes ? 0 : ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&part);
            return;
        }
        int more = zmq_msg_more(&part);
        size_t sz = zmq_msg_size(&part);
        if (!more) {
            text_len = sz < sizeof text - 1 ? sz : sizeof text - 1;
            memcpy(text, zmq_msg_data(&part), text_len);
            text[text_len] = '\0';
            zmq_msg_close(&part);
            break;
        }
        if (nframes < 3) {
            sizes[nframes] = sz < sizeof frames[0] ? sz : sizeof frames[0];
            memcpy(frames[nframes], zmq_msg_data(&part), sizes[nframes]);
        }
        nframes++;
        zmq_msg_close(&part);
    }
    uint64_t index;
    uint32_t attempt;
    if (nframes != 2 || sizes[0] != TAG_LEN || sizes[1] != 0) {
        r->st.bogus++;
        fprintf(stderr, "fault_zmq_client: reply without our envelope: '%s'\n", text);
        return;
    }
    zc__untag(frames[0], &index, &attempt);
    if (index >= r->n) {
        r->st.bogus++;
        return;
    }
    zc__line *l = &r->lines[index];
    if (l->state == ZC_ACKED) {
        if (!strncmp(text, "ok ", 3))
            r->st.ok_stale++;
        return;
    }
    if (!strncmp(text, "ok ", 3)) {
        if (strcmp(text + 3, l->event_id) != 0) {
            fprintf(stderr, "fault_zmq_client: line %" PRIu64 " (%s) answered '%s'\n", index + 1,
                    l->event_id, text);
            r->fatal = 1;
            return;
        }
        if (l->state == ZC_INFLIGHT)
            r->inflight--;
        l->state = ZC_ACKED;
        r->acked++;
        r->st.ok++;
        if (attempt != l->attempt)
            r->st.ok_stale++;
        fprintf(r->acked_out, "%s\n", l->event_id);
        return;
    }
    if (l->state != ZC_INFLIGHT || attempt != l->attempt) {
        r->st.stale_err++;
        return;
    }
    r->st.err++;
    if (r->st.err <= 5 || r->st.err % 1000 == 0)
        fprintf(stderr, "fault_zmq_client: %s: %s (will resend; %" PRIu64 " err replies so far)\n",
                l->event_id, text, r->st.err);
    l->state = ZC_WAITING;
    r->inflight--;
    if (!zc__push(&r->waiting, (uint32_t)index, l->attempt, now + ERR_BACKOFF_MS))
        r->fatal = 1;
}

/* Requests without a reply for timeout_ms go back to the waiting queue. */
static void zc__expire(zc__run *r, int64_t now)
{
    const zc__entry *e;
    while ((e = zc__peek(&r->sent)) && e->at_ms + r->o->timeout_ms <= now) {
        zc__line *l = &r->lines[e->line];
        if (l->state == ZC_INFLIGHT && l->attempt == e->attempt) {
            l->state = ZC_WAITING;
            r->inflight--;
            r->st.timeouts++;
            if (!zc__push(&r->waiting, e->line, l->attempt, now))
                r->fatal = 1;
        }
        zc__pop(&r->sent);
    }
}

/* Fill the window: due retries first, then new lines within the rate. */
static void zc__fill(zc__run *r, int64_t now, int64_t start)
{
    while (r->inflight < (size_t)r->o->window) {
        const zc__entry *e = zc__peek(&r->waiting);
        while (e &&
               (r->lines[e->line].state != ZC_WAITING || r->lines[e->line].attempt != e->attempt)) {
            zc__pop(&r->waiting); /* acknowledged meanwhile */
            e = zc__peek(&r->waiting);
        }
        uint32_t index;
        bool retry = e && e->at_ms <= now;
        if (retry) {
            index = e->line;
        } else if (r->next_new < r->n &&
                   (r->o->rate <= 0 ||
                    (double)r->next_new < (double)r->o->rate * (double)(now - start) / 1000.0)) {
            index = (uint32_t)r->next_new;
        } else {
            return;
        }
        zc__line *l = &r->lines[index];
        if (!zc__send(r->sock, l, index))
            return; /* no peer right now: try again after the next poll */
        if (retry) {
            zc__pop(&r->waiting);
            r->st.resent++;
        } else {
            r->next_new++;
        }
        r->st.sent++;
        l->attempt++;
        l->state = ZC_INFLIGHT;
        r->inflight++;
        if (!zc__push(&r->sent, index, l->attempt, now)) {
            r->fatal = 1;
            return;
        }
    }
}

static void zc__progress(const zc__run *r, int64_t now, int64_t start, const char *what)
{
    fprintf(stderr,
            "fault_zmq_client: %s %.1f s: %zu/%zu acknowledged, %zu in flight, %" PRIu64
            " sent (%" PRIu64 " resends: %" PRIu64 " err replies, %" PRIu64 " timeouts)\n",
            what, (double)(now - start) / 1000.0, r->acked, r->n, r->inflight, r->st.sent,
            r->st.resent, r->st.err, r->st.timeouts);
}

static int zc__run_all(zc__run *r)
{
    int64_t start = zc__mono_ms(), next_progress = start + r->o->progress_s * 1000L;
    while (r->acked < r->n && !r->fatal) {
        int64_t now = zc__mono_ms();
        if (r->o->deadline_s > 0 && now - start > r->o->deadline_s * 1000L) {
            zc__progress(r, now, start, "DEADLINE");
            return 1;
        }
        zc__expire(r, now);
        zc__fill(r, now, start);
        zmq_pollitem_t item = {r->sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, POLL_MS) > 0) {
            for (int k = 0; k < 4096 && (item.revents & ZMQ_POLLIN); k++) {
                int events = 0;
                size_t sz = sizeof events;
                zmq_getsockopt(r->sock, ZMQ_EVENTS, &events, &sz);
                if (!(events & ZMQ_POLLIN))
                    break;
                zc__reply(r, zc__mono_ms());
            }
        }
        if (now >= next_progress) {
            zc__progress(r, now, start, "at");
            fflush(r->acked_out);
            next_progress = now + r->o->progress_s * 1000L;
        }
    }
    zc__progress(r, zc__mono_ms(), start, r->fatal ? "FAILED" : "done in");
    return r->fatal ? 1 : 0;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: fault_zmq_client --endpoint EP --file PATH --acked PATH [--window N]\n"
            "                        [--rate N] [--timeout-ms MS] [--deadline S] [--progress S]\n"
            "\n"
            "Sends each line of PATH (JSON events) to inv-ingest --zmq at EP, resending a line\n"
            "on 'err ...' or after MS without a reply, until every line got 'ok <event_id>'.\n"
            "Acknowledged ids are appended to --acked. --rate caps new lines per second\n"
            "(0: none), --window the requests in flight (256), --deadline the whole run\n"
            "(0: none). Exit 0 all acknowledged, 1 deadline or a wrong reply, 2 usage.\n");
}

static bool zc__num(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"endpoint", required_argument, NULL, 'e'}, {"file", required_argument, NULL, 'f'},
        {"acked", required_argument, NULL, 'a'},    {"window", required_argument, NULL, 'w'},
        {"rate", required_argument, NULL, 'r'},     {"timeout-ms", required_argument, NULL, 't'},
        {"deadline", required_argument, NULL, 'd'}, {"progress", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0}};
    zc__opts o = {.window = 256, .timeout_ms = 5000, .progress_s = 5};
    int opt;
    long v;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'e': o.endpoint = optarg; break;
        case 'f': o.file = optarg; break;
        case 'a': o.acked = optarg; break;
        case 'w':
            if (!zc__num(optarg, 1, 100000, &v))
                goto bad;
            o.window = (int)v;
            break;
        case 'r':
            if (!zc__num(optarg, 0, 10000000, &o.rate))
                goto bad;
            break;
        case 't':
            if (!zc__num(optarg, 100, 600000, &v))
                goto bad;
            o.timeout_ms = (int)v;
            break;
        case 'd':
            if (!zc__num(optarg, 0, 86400, &o.deadline_s))
                goto bad;
            break;
        case 'p':
            if (!zc__num(optarg, 1, 3600, &v))
                goto bad;
            o.progress_s = (int)v;
            break;
        case 'h': usage(stdout); return 0;
        default: goto bad;
        }
    }
    if (optind < argc || !o.endpoint || !o.file || !o.acked)
        goto bad;

    zc__run r = {.o = &o};
    if (zc__load(o.file, &r.lines, &r.n))
        return 2;
    if (!(r.acked_out = fopen(o.acked, "a"))) {
        fprintf(stderr, "fault_zmq_client: %s: %s\n", o.acked, strerror(errno));
        return 2;
    }
    void *ctx = zmq_ctx_new();
    r.sock = ctx ? zmq_socket(ctx, ZMQ_DEALER) : NULL;
    int zero = 0, one = 1, hwm = 1000000, ivl = 100, ivl_max = 1000;
    if (!r.sock || zmq_setsockopt(r.sock, ZMQ_LINGER, &zero, sizeof zero) ||
        zmq_setsockopt(r.sock, ZMQ_IMMEDIATE, &one, sizeof one) ||
        zmq_setsockopt(r.sock, ZMQ_SNDHWM, &hwm, sizeof hwm) ||
        zmq_setsockopt(r.sock, ZMQ_RCVHWM, &hwm, sizeof hwm) ||
        zmq_setsockopt(r.sock, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl) ||
        zmq_setsockopt(r.sock, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max) ||
        zmq_connect(r.sock, o.endpoint) != 0) {
        fprintf(stderr, "fault_zmq_client: %s: %s\n", o.endpoint, zmq_strerror(zmq_errno()));
        return 2;
    }
    fprintf(stderr, "fault_zmq_client: %zu events from %s to %s (window %d, rate %ld/s)\n", r.n,
            o.file, o.endpoint, o.window, o.rate);
    int rc = zc__run_all(&r);
    if (r.st.bogus)
        fprintf(stderr, "fault_zmq_client: %" PRIu64 " replies not ours\n", r.st.bogus);
    if (fclose(r.acked_out) != 0) {
        fprintf(stderr, "fault_zmq_client: %s: write failed\n", o.acked);
        rc = 1;
    }
    zmq_close(r.sock);
    zmq_ctx_term(ctx);
    for (size_t i = 0; i < r.n; i++)
        free(r.lines[i].text);
    free(r.lines);
    free(r.sent.items);
    free(r.waiting.items);
    return rc;
bad:
    usage(stderr);
    return 2;
}
