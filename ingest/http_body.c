/*
 * http_body: a cursor over the body and one result per non-blank line. The
 * result array is sized from the newline count when the body arrives, so
 * pointers handed out (the publisher's tokens point at them) never move,
 * and memory is bounded by the body size the HTTP layer already limited.
 * Error texts may quote the client's bytes: they are made valid UTF-8
 * (anything else becomes '?') before they are stored, so the JSON reply can
 * always be built.
 */
#include "http_body.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ingest_body {
    char *data;
    size_t len;
    size_t pos;       /* next byte to read */
    uint64_t line_no; /* physical lines consumed */
    sf_parse_opts opts;
    ingest_line_result *results;
    size_t n_results, cap_results;
    ingest_body_counts counts;
};

const char *ingest_line_status_str(ingest_line_status s)
{
    switch (s) {
    case INGEST_LINE_ACCEPTED: return "accepted";
    case INGEST_LINE_DUPLICATE: return "duplicate";
    case INGEST_LINE_REJECTED: return "rejected";
    case INGEST_LINE_FAILED: return "failed";
    default: return "pending";
    }
}

sf_status ingest_body_new(char *data, size_t len, const sf_parse_opts *opts, ingest_body **out,
                          sf_error *err)
{
    *out = NULL;
    ingest_body *b = calloc(1, sizeof *b);
    if (!b) {
        free(data);
        return SF_ERR(err, SF_ENOMEM, "out of memory");
    }
    b->data = data;
    b->len = data ? len : 0;
    b->opts = *opts;
    /* One result at most per line: newlines + 1. */
    size_t lines = 1;
    for (size_t i = 0; i < b->len; i++) {
        const char *nl = memchr(b->data + i, '\n', b->len - i);
        if (!nl)
            break;
        lines++;
        i = (size_t)(nl - b->data);
    }
    b->cap_results = lines;
    b->results = calloc(lines, sizeof *b->results);
    if (!b->results) {
        ingest_body_free(b);
        return SF_ERR(err, SF_ENOMEM, "out of memory for %zu line results", lines);
    }
    *out = b;
    return SF_OK;
}

void ingest_body_free(ingest_body *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n_results; i++)
        free(b->results[i].error);
    free(b->results);
    free(b->data);
    free(b);
}

/* Length of the valid UTF-8 sequence at s[0..n) (1..4), 0 if invalid. */
static size_t body__utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t need;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < need)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((need == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (need == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return need;
}

/* A copy of s that is valid UTF-8 without control characters. */
static char *body__clean_dup(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        const unsigned char *u = (const unsigned char *)s + i;
        size_t k = body__utf8_len(u, n - i);
        if (k == 0 || (k == 1 && (u[0] < 0x20 || u[0] == 0x7F))) {
            out[o++] = '?';
            i++;
            continue;
        }
        memcpy(out + o, u, k);
        o += k;
        i += k;
    }
    out[o] = '\0';
    return out;
}

static int body__blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] != ' ' && s[i] != '\t')
            return 0;
    }
    return 1;
}

/* Record a rejected line with "line N: why". */
static sf_status body__reject(ingest_body *b, ingest_line_result *r, const char *why, sf_error *err)
{
    sf_error e;
    SF_ERR(&e, SF_EINVAL, "line %llu: %s", (unsigned long long)r->line, why);
    if (!(r->error = body__clean_dup(e.msg)))
        return SF_ERR(err, SF_ENOMEM, "out of memory");
    r->status = INGEST_LINE_REJECTED;
    b->counts.rejected++;
    return SF_OK;
}

sf_status ingest_body_next(ingest_body *b, sf_event *ev, ingest_line_result **out, sf_error *err)
{
    *out = NULL;
    while (b->pos < b->len) {
        const char *line = b->data + b->pos;
        size_t rest = b->len - b->pos;
        const char *nl = memchr(line, '\n', rest);
        size_t len = nl ? (size_t)(nl - line) : rest;
        b->pos += nl ? len + 1 : len;
        b->line_no++;
        if (b->line_no == 1 && len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
            line += 3;
            len -= 3;
        }
        if (len > 0 && line[len - 1] == '\r')
            len--;
        if (body__blank(line, len))
            continue;
        if (b->n_results == b->cap_results) /* cannot happen: sized from newlines */
            return SF_ERR(err, SF_EINTERNAL, "line %llu: more lines than counted",
                          (unsigned long long)b->line_no);
        ingest_line_result *r = &b->results[b->n_results++];
        r->line = b->line_no;
        b->counts.lines++;
        *out = r;
        sf_error why;
        sf_error_clear(&why);
        if (len > b->opts.max_line) {
            SF_ERR(&why, SF_EINVAL, "%zu bytes, longer than max_line %zu", len, b->opts.max_line);
            return body__reject(b, r, why.msg, err);
        }
        sf_status st = sf_event_parse_json(line, len, &b->opts, ev, &why);
        if (st == SF_ENOMEM)
            return SF_ERR(err, st, "line %llu: %s", (unsigned long long)r->line, why.msg);
        if (st != SF_OK)
            return body__reject(b, r, why.msg, err);
        memcpy(r->event_id, ev->event_id, sizeof r->event_id);
        r->status = INGEST_LINE_PENDING;
        b->counts.pending++;
        return SF_OK;
    }
    return SF_ENOTFOUND;
}

void ingest_body_settle(ingest_body *b, ingest_line_result *r, ingest_line_status status,
                        const char *error)
{
    if (r->status != INGEST_LINE_PENDING || status == INGEST_LINE_PENDING)
        return;
    b->counts.pending--;
    r->status = status;
    switch (status) {
    case INGEST_LINE_ACCEPTED: b->counts.accepted++; return;
    case INGEST_LINE_DUPLICATE: b->counts.duplicate++; return;
    case INGEST_LINE_REJECTED: b->counts.rejected++; break;
    default: b->counts.failed++; break;
    }
    char msg[SF_ERROR_MSG_MAX + 32];
    snprintf(msg, sizeof msg, "line %llu: %s", (unsigned long long)r->line,
             error && *error ? error : "not published");
    r->error = body__clean_dup(msg); /* NULL (no memory): the status still tells */
}

ingest_body_counts ingest_body_count(const ingest_body *b)
{
    return b->counts;
}

int ingest_body_done(const ingest_body *b)
{
    return b->pos >= b->len && b->counts.pending == 0;
}

int ingest_body_http_status(const ingest_body *b)
{
    if (b->counts.failed)
        return 503;
    if (b->counts.rejected || b->counts.lines == 0)
        return 400;
    return 202;
}

json_t *ingest_body_reply_json(const ingest_body *b)
{
    const ingest_body_counts *c = &b->counts;
    json_t *results = json_array();
    json_t *j = json_pack("{s:I, s:I, s:I, s:I}", "accepted", (json_int_t)c->accepted, "duplicate",
                          (json_int_t)c->duplicate, "rejected", (json_int_t)c->rejected, "failed",
                          (json_int_t)c->failed);
    if (!results || !j) {
        json_decref(results);
        json_decref(j);
        return NULL;
    }
    if (c->lines == 0 && json_object_set_new(j, "error", json_string("body: no event lines")))
        goto fail;
    for (size_t i = 0; i < b->n_results; i++) {
        const ingest_line_result *r = &b->results[i];
        json_t *o = json_pack("{s:I, s:s}", "line", (json_int_t)r->line, "status",
                              ingest_line_status_str(r->status));
        if (!o || json_array_append_new(results, o))
            goto fail;
        /* event ids passed validation (UTF-8, no control characters) */
        if (r->event_id[0] && json_object_set_new(o, "event_id", json_string(r->event_id)))
            goto fail;
        if (r->error && json_object_set_new(o, "error", json_string(r->error)))
            goto fail;
    }
    if (json_object_set_new(j, "results", results)) {
        json_decref(j);
        return NULL;
    }
    return j;
fail:
    json_decref(results);
    json_decref(j);
    return NULL;
}
