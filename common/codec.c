/*
 * codec: single-object Avro for events and channel stock, with schema
 * resolution by field name.
 *
 * Two passes per decode. (1) The body is read against the WRITER schema
 * into that schema's reusable generic value by our own bounded reader
 * (codec__decode), not avro_value_read: avro-c allocates whatever length a
 * string claims before reading it, never reports where a body ended (so
 * trailing bytes go unseen), and its errors carry no byte offset. (2) The
 * writer value is resolved into the READER schema's value (codec__resolve):
 * matching fields by name, filling absent ones from the reader JSON's
 * defaults (codec__fill_default), dropping the rest. When writer and reader
 * are the same schema, pass (2) is skipped.
 *
 * To change it safely: every read checks the bytes left before touching
 * them and reports the byte offset in the whole message; every avro-c call
 * result is checked; and the scratch value of a schema is only valid until
 * the next call, which is why a codec belongs to one thread.
 */
#include "codec.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "avro_pcf.h"
#include "schemas.h"

/* One shipped schema, parsed. */
typedef struct codec__schema {
    const sf_schema_def *def;
    uint64_t fp;          /* CRC-64-AVRO of the Parsing Canonical Form */
    json_t *json;         /* the parsed text: field defaults live here */
    json_t *named;        /* full name -> defining JSON object */
    avro_schema_t schema; /* avro-c's view (ignores defaults) */
    avro_value_iface_t *iface;
    avro_value_t value; /* scratch: decode target, encode source */
    bool has_value;
} codec__schema;

struct sf_codec {
    codec__schema *schemas;
    size_t n;
    codec__schema *event; /* InventoryEvent v1: writer and reader of events */
    codec__schema *stock; /* ChannelStock v1 */
    avro_writer_t writer; /* memory writer, re-pointed at the caller's buffer */
    char *scratch;        /* NUL-terminated copies of wire strings and keys */
    size_t scratch_cap;
};

/* Field order of InventoryEvent v1 and ChannelStock v1; sf_codec_new checks
 * the parsed schemas against these, so indexes are safe afterwards. */
enum {
    EV_EVENT_ID,
    EV_KIND,
    EV_SKU,
    EV_LOCATION,
    EV_QTY,
    EV_OCCURRED_AT,
    EV_SOURCE,
    EV_CHANNEL,
    EV_REF,
    EV_CONDITION,
    EV_EXPIRES_AT,
    EV__COUNT
};
static const char *const codec__event_fields[EV__COUNT] = {
    "event_id", "kind",    "sku", "location",  "qty",       "occurred_at",
    "source",   "channel", "ref", "condition", "expires_at"};

/* sf_kind and sf_condition values are the Avro symbol indexes (event.h). */
static const char *const codec__kind_symbols[SF_KIND__COUNT] = {
    "SALE",   "RETURN",       "RECEIPT",     "ASN",     "COUNT",
    "ADJUST", "TRANSFER_OUT", "TRANSFER_IN", "RESERVE", "RELEASE"};
static const char *const codec__condition_symbols[] = {"RESELLABLE", "DAMAGED"};
#define CODEC__CONDITIONS (sizeof codec__condition_symbols / sizeof codec__condition_symbols[0])

enum { CS_CHANNEL, CS_SKU, CS_ATS, CS_VERSION, CS_COMPUTED_AT, CS__COUNT };
static const char *const codec__stock_fields[CS__COUNT] = {"channel", "sku", "ats", "version",
                                                           "computed_at"};

/* State of one decode or resolution: where we are, for the messages. */
typedef struct codec__ctx {
    sf_codec *c;
    sf_error *err;
    const json_t *named; /* reader's named types, for defaults */
    const uint8_t *msg;  /* decoding: the whole message */
    size_t len;
    size_t pos;   /* next byte to read, an offset into msg */
    size_t items; /* array and map elements still allowed */
    char path[160];
    size_t path_len;
    char where[176];
} codec__ctx;

static void codec__ctx_init(codec__ctx *x, sf_codec *c, const json_t *named, sf_error *err)
{
    memset(x, 0, sizeof *x);
    x->c = c;
    x->err = err;
    x->named = named;
    x->items = SF_CODEC_MAX_ITEMS;
}

/* Append a field name to the path; returns what codec__path_pop needs.
 * On every field of every message: memcpy, not snprintf. */
static size_t codec__path_push(codec__ctx *x, const char *name)
{
    size_t old = x->path_len, room = sizeof x->path - 1 - old;
    if (old > 0 && room > 0) {
        x->path[x->path_len++] = '.';
        room--;
    }
    size_t n = strlen(name);
    if (n > room)
        n = room;
    memcpy(x->path + x->path_len, name, n);
    x->path_len += n;
    x->path[x->path_len] = '\0';
    return old;
}

static void codec__path_pop(codec__ctx *x, size_t old)
{
    x->path_len = old;
    x->path[old] = '\0';
}

/* "field sku" or "body": what a message is about. */
static const char *codec__where(codec__ctx *x)
{
    if (x->path_len == 0)
        return "body";
    snprintf(x->where, sizeof x->where, "field %s", x->path);
    return x->where;
}

static sf_status codec__avro_fail(sf_error *err, int rc, const char *what)
{
    return SF_ERR(err, rc == ENOMEM ? SF_ENOMEM : SF_EINTERNAL, "%s: %s", what, avro_strerror());
}

static sf_status codec__scratch(sf_codec *c, size_t n, sf_error *err)
{
    if (n <= c->scratch_cap)
        return SF_OK;
    size_t cap = n < 256 ? 256 : n;
    char *p = realloc(c->scratch, cap);
    if (!p)
        return SF_ERR(err, SF_ENOMEM, "codec: out of memory for %zu bytes", n);
    c->scratch = p;
    c->scratch_cap = cap;
    return SF_OK;
}

static avro_schema_t codec__deref(avro_schema_t s)
{
    for (int i = 0; i < 64 && is_avro_link(s); i++)
        s = avro_schema_link_target(s);
    return s;
}

/* "stockflow.Kind" for a named schema, into buf. */
static const char *codec__fullname(avro_schema_t s, char *buf, size_t size)
{
    const char *ns = avro_schema_namespace(s);
    if (ns && ns[0])
        snprintf(buf, size, "%s.%s", ns, avro_schema_name(s));
    else
        snprintf(buf, size, "%s", avro_schema_name(s));
    return buf;
}

static const char *codec__type_name(avro_type_t t)
{
    switch (t) {
    case AVRO_STRING: return "string";
    case AVRO_BYTES: return "bytes";
    case AVRO_INT32: return "int";
    case AVRO_INT64: return "long";
    case AVRO_FLOAT: return "float";
    case AVRO_DOUBLE: return "double";
    case AVRO_BOOLEAN: return "boolean";
    case AVRO_NULL: return "null";
    case AVRO_RECORD: return "record";
    case AVRO_ENUM: return "enum";
    case AVRO_FIXED: return "fixed";
    case AVRO_MAP: return "map";
    case AVRO_ARRAY: return "array";
    case AVRO_UNION: return "union";
    case AVRO_LINK: return "link";
    }
    return "unknown";
}

/* The "default" of field `field` of reader record `rec`, or NULL if none.
 * (JSON null is a default: json_null(), not NULL.) */
static const json_t *codec__field_default(const json_t *named, avro_schema_t rec, const char *field)
{
    char full[SF_AVRO_NAME_MAX + 2];
    const json_t *def = json_object_get(named, codec__fullname(rec, full, sizeof full));
    const json_t *fields = json_object_get(def, "fields");
    for (size_t i = 0; i < json_array_size(fields); i++) {
        const json_t *f = json_array_get(fields, i);
        const char *name = json_string_value(json_object_get(f, "name"));
        if (name && strcmp(name, field) == 0)
            return json_object_get(f, "default");
    }
    return NULL;
}

/* --- pass 1: reading the body against the writer schema ----------------- */

static sf_status codec__truncated(codec__ctx *x, size_t need)
{
    return SF_ERR(x->err, SF_EINVAL,
                  "body truncated at byte %zu: %s needs %zu more bytes, %zu left", x->pos,
                  codec__where(x), need, x->len - x->pos);
}

/* A base-128 varint of at most max_bytes bytes (5 for int, 10 for long). */
static sf_status codec__read_varint(codec__ctx *x, unsigned max_bytes, uint64_t *out)
{
    size_t start = x->pos;
    uint64_t v = 0;
    for (unsigned i = 0;; i++) {
        if (i == max_bytes)
            return SF_ERR(x->err, SF_EINVAL, "%s: varint at byte %zu is longer than %u bytes",
                          codec__where(x), start, max_bytes);
        if (x->pos >= x->len)
            return SF_ERR(x->err, SF_EINVAL,
                          "body truncated at byte %zu: %s: varint from byte %zu is cut off", x->pos,
                          codec__where(x), start);
        uint8_t b = x->msg[x->pos++];
        if (i == 9 && b > 1)
            return SF_ERR(x->err, SF_EINVAL, "%s: varint at byte %zu overflows 64 bits",
                          codec__where(x), start);
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80))
            break;
    }
    if (max_bytes == 5 && v > UINT32_MAX)
        return SF_ERR(x->err, SF_EINVAL, "%s: int at byte %zu overflows 32 bits", codec__where(x),
                      start);
    *out = v;
    return SF_OK;
}

static int64_t codec__unzigzag(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static sf_status codec__read_long(codec__ctx *x, int64_t *out)
{
    uint64_t v;
    sf_status st = codec__read_varint(x, 10, &v);
    if (st == SF_OK)
        *out = codec__unzigzag(v);
    return st;
}

static sf_status codec__read_int(codec__ctx *x, int32_t *out)
{
    uint64_t v;
    sf_status st = codec__read_varint(x, 5, &v);
    if (st == SF_OK)
        *out = (int32_t)codec__unzigzag(v);
    return st;
}

/* A length prefix (string, bytes, map key) that must fit in what is left. */
static sf_status codec__read_len(codec__ctx *x, const char *what, size_t *out)
{
    size_t start = x->pos;
    int64_t n;
    sf_status st = codec__read_long(x, &n);
    if (st != SF_OK)
        return st;
    if (n < 0)
        return SF_ERR(x->err, SF_EINVAL, "%s: negative %s length %" PRId64 " at byte %zu",
                      codec__where(x), what, n, start);
    if ((uint64_t)n > x->len - x->pos)
        return SF_ERR(x->err, SF_EINVAL,
                      "body truncated at byte %zu: %s: %s of %" PRId64 " bytes, %zu left", x->pos,
                      codec__where(x), what, n, x->len - x->pos);
    *out = (size_t)n;
    return SF_OK;
}

/* Copy n wire bytes into the scratch buffer with a NUL after them. */
static sf_status codec__take_cstr(codec__ctx *x, size_t n)
{
    sf_status st = codec__scratch(x->c, n + 1, x->err);
    if (st != SF_OK)
        return st;
    memcpy(x->c->scratch, x->msg + x->pos, n);
    x->c->scratch[n] = '\0';
    x->pos += n;
    return SF_OK;
}

static uint64_t codec__le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static sf_status codec__decode(codec__ctx *x, avro_value_t *v, int depth);

static sf_status codec__decode_blocks(codec__ctx *x, avro_value_t *v, bool is_map, int depth)
{
    for (;;) {
        size_t start = x->pos;
        int64_t count, bytes;
        sf_status st = codec__read_long(x, &count);
        if (st != SF_OK)
            return st;
        if (count == 0)
            return SF_OK;
        if (count < 0) {
            if (count == INT64_MIN)
                return SF_ERR(x->err, SF_EINVAL, "%s: bad block count at byte %zu", codec__where(x),
                              start);
            count = -count;
            if ((st = codec__read_long(x, &bytes)) != SF_OK)
                return st;
            if (bytes < 0)
                return SF_ERR(x->err, SF_EINVAL, "%s: negative block size at byte %zu",
                              codec__where(x), start);
        }
        if ((uint64_t)count > x->items)
            return SF_ERR(x->err, SF_EINVAL,
                          "%s: more than %d array and map elements in one message (byte %zu)",
                          codec__where(x), SF_CODEC_MAX_ITEMS, start);
        x->items -= (size_t)count;
        for (int64_t i = 0; i < count; i++) {
            avro_value_t child;
            int rc;
            if (is_map) {
                size_t n;
                size_t key_at = x->pos;
                if ((st = codec__read_len(x, "map key", &n)) != SF_OK)
                    return st;
                if (memchr(x->msg + x->pos, 0, n))
                    return SF_ERR(x->err, SF_EINVAL, "%s: map key at byte %zu holds a NUL byte",
                                  codec__where(x), key_at);
                if ((st = codec__take_cstr(x, n)) != SF_OK)
                    return st;
                rc = avro_value_add(v, x->c->scratch, &child, NULL, NULL);
            } else {
                rc = avro_value_append(v, &child, NULL);
            }
            if (rc)
                return codec__avro_fail(x->err, rc, "codec: adding an element");
            if ((st = codec__decode(x, &child, depth + 1)) != SF_OK)
                return st;
        }
    }
}

static sf_status codec__decode(codec__ctx *x, avro_value_t *v, int depth)
{
    if (depth > SF_CODEC_MAX_DEPTH)
        return SF_ERR(x->err, SF_EINVAL, "%s: nested deeper than %d levels", codec__where(x),
                      SF_CODEC_MAX_DEPTH);
    avro_schema_t sch = avro_value_get_schema(v);
    sf_status st = SF_OK;
    size_t start = x->pos;
    int rc = 0;
    switch (avro_value_get_type(v)) {
    case AVRO_NULL: rc = avro_value_set_null(v); break;
    case AVRO_BOOLEAN:
        if (x->pos >= x->len)
            return codec__truncated(x, 1);
        if (x->msg[x->pos] > 1)
            return SF_ERR(x->err, SF_EINVAL, "%s: boolean byte 0x%02x at byte %zu", codec__where(x),
                          x->msg[x->pos], x->pos);
        rc = avro_value_set_boolean(v, x->msg[x->pos++]);
        break;
    case AVRO_INT32: {
        int32_t i;
        if ((st = codec__read_int(x, &i)) == SF_OK)
            rc = avro_value_set_int(v, i);
        break;
    }
    case AVRO_INT64: {
        int64_t l;
        if ((st = codec__read_long(x, &l)) == SF_OK)
            rc = avro_value_set_long(v, l);
        break;
    }
    case AVRO_FLOAT: {
        if (x->len - x->pos < 4)
            return codec__truncated(x, 4);
        uint32_t bits = (uint32_t)codec__le(x->msg + x->pos, 4);
        float f;
        memcpy(&f, &bits, sizeof f);
        x->pos += 4;
        rc = avro_value_set_float(v, f);
        break;
    }
    case AVRO_DOUBLE: {
        if (x->len - x->pos < 8)
            return codec__truncated(x, 8);
        uint64_t bits = codec__le(x->msg + x->pos, 8);
        double d;
        memcpy(&d, &bits, sizeof d);
        x->pos += 8;
        rc = avro_value_set_double(v, d);
        break;
    }
    case AVRO_STRING: {
        size_t n;
        if ((st = codec__read_len(x, "string", &n)) != SF_OK)
            return st;
        if ((st = codec__take_cstr(x, n)) != SF_OK)
            return st;
        /* avro-c sizes include the NUL; embedded NULs survive (size-based). */
        rc = avro_value_set_string_len(v, x->c->scratch, n + 1);
        break;
    }
    case AVRO_BYTES: {
        size_t n;
        if ((st = codec__read_len(x, "bytes", &n)) != SF_OK)
            return st;
        rc = avro_value_set_bytes(v, (void *)(x->msg + x->pos), n);
        x->pos += n;
        break;
    }
    case AVRO_FIXED: {
        int64_t size = avro_schema_fixed_size(sch);
        if (size < 0 || (uint64_t)size > x->len - x->pos)
            return codec__truncated(x, size < 0 ? 0 : (size_t)size);
        rc = avro_value_set_fixed(v, (void *)(x->msg + x->pos), (size_t)size);
        x->pos += (size_t)size;
        break;
    }
    case AVRO_ENUM: {
        int32_t idx;
        if ((st = codec__read_int(x, &idx)) != SF_OK)
            return st;
        int n = avro_schema_enum_number_of_symbols(sch);
        if (idx < 0 || idx >= n)
            return SF_ERR(x->err, SF_EINVAL, "%s: enum index %" PRId32 " at byte %zu, want 0..%d",
                          codec__where(x), idx, start, n - 1);
        rc = avro_value_set_enum(v, idx);
        break;
    }
    case AVRO_UNION: {
        int64_t idx;
        if ((st = codec__read_long(x, &idx)) != SF_OK)
            return st;
        size_t n = avro_schema_union_size(sch);
        if (idx < 0 || (uint64_t)idx >= n)
            return SF_ERR(x->err, SF_EINVAL, "%s: union index %" PRId64 " at byte %zu, want 0..%zu",
                          codec__where(x), idx, start, n - 1);
        avro_value_t branch;
        if ((rc = avro_value_set_branch(v, (int)idx, &branch)) == 0)
            st = codec__decode(x, &branch, depth + 1);
        break;
    }
    case AVRO_RECORD: {
        size_t n = 0;
        if ((rc = avro_value_get_size(v, &n)) != 0)
            break;
        for (size_t i = 0; i < n && st == SF_OK; i++) {
            avro_value_t field;
            const char *name;
            if ((rc = avro_value_get_by_index(v, i, &field, &name)) != 0)
                break;
            size_t old = codec__path_push(x, name);
            st = codec__decode(x, &field, depth + 1);
            codec__path_pop(x, old);
        }
        break;
    }
    case AVRO_ARRAY: return codec__decode_blocks(x, v, false, depth);
    case AVRO_MAP: return codec__decode_blocks(x, v, true, depth);
    case AVRO_LINK:
        return SF_ERR(x->err, SF_EINTERNAL, "%s: unexpected avro-c link value", codec__where(x));
    }
    if (st == SF_OK && rc != 0)
        st = codec__avro_fail(x->err, rc, "codec: storing a decoded value");
    return st;
}

/* Check the single-object header and find the writer schema. */
static sf_status codec__frame(sf_codec *c, const uint8_t *msg, size_t len, codec__schema **writer,
                              sf_error *err)
{
    if (!msg && len > 0)
        return SF_ERR(err, SF_EINVAL, "no message bytes");
    if (len >= 1 && msg[0] != 0xC3)
        return SF_ERR(err, SF_EINVAL, "bad magic: byte 0 is 0x%02x, want 0xc3 (single object)",
                      msg[0]);
    if (len >= 2 && msg[1] != 0x01)
        return SF_ERR(err, SF_EINVAL, "bad magic: byte 1 is 0x%02x, want 0x01 (single object)",
                      msg[1]);
    if (len < SF_CODEC_HEADER_LEN)
        return SF_ERR(err, SF_EINVAL,
                      "short header: message of %zu bytes, the single-object header is %d", len,
                      SF_CODEC_HEADER_LEN);
    uint64_t fp = codec__le(msg + 2, 8);
    for (size_t i = 0; i < c->n; i++) {
        if (c->schemas[i].fp == fp) {
            *writer = &c->schemas[i];
            return SF_OK;
        }
    }
    return SF_ERR(err, SF_ENOTFOUND, "unknown writer schema fingerprint 0x%016" PRIx64, fp);
}

/* Read the body into the writer's scratch value; every byte must be used. */
static sf_status codec__read_body(sf_codec *c, codec__schema *w, const uint8_t *msg, size_t len,
                                  sf_error *err)
{
    int rc = avro_value_reset(&w->value);
    if (rc)
        return codec__avro_fail(err, rc, "codec: resetting a value");
    codec__ctx x;
    codec__ctx_init(&x, c, w->named, err);
    x.msg = msg;
    x.len = len;
    x.pos = SF_CODEC_HEADER_LEN;
    sf_status st = codec__decode(&x, &w->value, 0);
    if (st == SF_OK && x.pos != len)
        st = SF_ERR(err, SF_EINVAL,
                    "trailing garbage: %zu bytes after the body, which ends at byte %zu",
                    len - x.pos, x.pos);
    if (st != SF_OK)
        sf_error_prefix(err, "%s v%d: ", w->def->name, w->def->version);
    return st;
}

/* --- pass 2: resolution and defaults ------------------------------------- */

static sf_status codec__fill_default(codec__ctx *x, avro_value_t *dst, const json_t *def,
                                     int depth);

static const char *codec__json_kind(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real";
    case JSON_TRUE: return "true";
    case JSON_FALSE: return "false";
    case JSON_NULL: return "null";
    }
    return "?";
}

static sf_status codec__bad_default(codec__ctx *x, const json_t *def, avro_type_t t)
{
    return SF_ERR(x->err, SF_EINTERNAL, "%s: default %s does not fit type %s", codec__where(x),
                  codec__json_kind(def), codec__type_name(t));
}

/* A bytes/fixed default: a JSON string whose code points 0-255 are the
 * bytes (Avro specification). Leaves them in scratch, *n of them. */
static sf_status codec__latin1(codec__ctx *x, const json_t *def, size_t *n)
{
    const unsigned char *s = (const unsigned char *)json_string_value(def);
    size_t len = json_string_length(def);
    sf_status st = codec__scratch(x->c, len + 1, x->err);
    if (st != SF_OK)
        return st;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < 0x80) {
            x->c->scratch[o++] = (char)s[i];
        } else if ((s[i] == 0xC2 || s[i] == 0xC3) && i + 1 < len && (s[i + 1] & 0xC0) == 0x80) {
            x->c->scratch[o++] = (char)(((s[i] & 0x03) << 6) | (s[i + 1] & 0x3F));
            i++;
        } else {
            return SF_ERR(x->err, SF_EINTERNAL,
                          "%s: bytes default has a code point above U+00FF at offset %zu",
                          codec__where(x), i);
        }
    }
    *n = o;
    return SF_OK;
}

static sf_status codec__fill_record_default(codec__ctx *x, avro_value_t *dst, const json_t *def,
                                            int depth)
{
    if (!json_is_object(def))
        return codec__bad_default(x, def, AVRO_RECORD);
    avro_schema_t rs = avro_value_get_schema(dst);
    size_t n = avro_schema_record_size(rs);
    for (size_t i = 0; i < n; i++) {
        const char *name = avro_schema_record_field_name(rs, (int)i);
        const json_t *v = json_object_get(def, name);
        if (!v)
            v = codec__field_default(x->named, rs, name);
        size_t old = codec__path_push(x, name);
        avro_value_t field;
        sf_status st = SF_OK;
        if (!v)
            st = SF_ERR(x->err, SF_EINTERNAL, "%s: record default lacks it and it has no default",
                        codec__where(x));
        else if (avro_value_get_by_index(dst, i, &field, NULL) != 0)
            st = codec__avro_fail(x->err, EINVAL, "codec: record field");
        else
            st = codec__fill_default(x, &field, v, depth + 1);
        codec__path_pop(x, old);
        if (st != SF_OK)
            return st;
    }
    return SF_OK;
}

/* Set dst (a reader value) from a default given as JSON (Avro
 * specification, "default values": union defaults use the first branch). */
static sf_status codec__fill_default(codec__ctx *x, avro_value_t *dst, const json_t *def, int depth)
{
    if (depth > SF_CODEC_MAX_DEPTH)
        return SF_ERR(x->err, SF_EINTERNAL, "%s: default nested deeper than %d levels",
                      codec__where(x), SF_CODEC_MAX_DEPTH);
    avro_type_t t = avro_value_get_type(dst);
    avro_schema_t rs = avro_value_get_schema(dst);
    sf_status st = SF_OK;
    size_t n = 0;
    int rc = 0;
    switch (t) {
    case AVRO_NULL:
        if (!json_is_null(def))
            return codec__bad_default(x, def, t);
        rc = avro_value_set_null(dst);
        break;
    case AVRO_BOOLEAN:
        if (!json_is_boolean(def))
            return codec__bad_default(x, def, t);
        rc = avro_value_set_boolean(dst, json_is_true(def));
        break;
    case AVRO_INT32:
        if (!json_is_integer(def) || json_integer_value(def) < INT32_MIN ||
            json_integer_value(def) > INT32_MAX)
            return codec__bad_default(x, def, t);
        rc = avro_value_set_int(dst, (int32_t)json_integer_value(def));
        break;
    case AVRO_INT64:
        if (!json_is_integer(def))
            return codec__bad_default(x, def, t);
        rc = avro_value_set_long(dst, (int64_t)json_integer_value(def));
        break;
    case AVRO_FLOAT:
        if (!json_is_number(def))
            return codec__bad_default(x, def, t);
        rc = avro_value_set_float(dst, (float)json_number_value(def));
        break;
    case AVRO_DOUBLE:
        if (!json_is_number(def))
            return codec__bad_default(x, def, t);
        rc = avro_value_set_double(dst, json_number_value(def));
        break;
    case AVRO_STRING:
        if (!json_is_string(def))
            return codec__bad_default(x, def, t);
        rc = avro_value_set_string_len(dst, json_string_value(def), json_string_length(def) + 1);
        break;
    case AVRO_BYTES:
        if (!json_is_string(def))
            return codec__bad_default(x, def, t);
        if ((st = codec__latin1(x, def, &n)) == SF_OK)
            rc = avro_value_set_bytes(dst, x->c->scratch, n);
        break;
    case AVRO_FIXED:
        if (!json_is_string(def))
            return codec__bad_default(x, def, t);
        if ((st = codec__latin1(x, def, &n)) != SF_OK)
            return st;
        if ((int64_t)n != avro_schema_fixed_size(rs))
            return SF_ERR(x->err, SF_EINTERNAL, "%s: fixed default of %zu bytes, size is %" PRId64,
                          codec__where(x), n, avro_schema_fixed_size(rs));
        rc = avro_value_set_fixed(dst, x->c->scratch, n);
        break;
    case AVRO_ENUM: {
        const char *sym = json_string_value(def);
        int idx = sym ? avro_schema_enum_get_by_name(rs, sym) : -1;
        if (idx < 0)
            return codec__bad_default(x, def, t);
        rc = avro_value_set_enum(dst, idx);
        break;
    }
    case AVRO_UNION: {
        avro_value_t branch;
        if ((rc = avro_value_set_branch(dst, 0, &branch)) == 0)
            st = codec__fill_default(x, &branch, def, depth + 1);
        break;
    }
    case AVRO_RECORD: return codec__fill_record_default(x, dst, def, depth);
    case AVRO_ARRAY:
        if (!json_is_array(def))
            return codec__bad_default(x, def, t);
        for (size_t i = 0; i < json_array_size(def) && st == SF_OK && rc == 0; i++) {
            avro_value_t item;
            if ((rc = avro_value_append(dst, &item, NULL)) == 0)
                st = codec__fill_default(x, &item, json_array_get(def, i), depth + 1);
        }
        break;
    case AVRO_MAP: {
        if (!json_is_object(def))
            return codec__bad_default(x, def, t);
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)def, key, val)
        {
            avro_value_t item;
            if ((rc = avro_value_add(dst, key, &item, NULL, NULL)) != 0)
                break;
            if ((st = codec__fill_default(x, &item, val, depth + 1)) != SF_OK)
                break;
        }
        break;
    }
    case AVRO_LINK: return codec__bad_default(x, def, t);
    }
    if (st == SF_OK && rc != 0)
        st = codec__avro_fail(x->err, rc, "codec: storing a default");
    return st;
}

/* Same type, and for named types the same full name. */
static bool codec__same_type(avro_schema_t w, avro_schema_t r)
{
    w = codec__deref(w);
    r = codec__deref(r);
    if (avro_typeof(w) != avro_typeof(r))
        return false;
    switch (avro_typeof(w)) {
    case AVRO_RECORD:
    case AVRO_ENUM:
    case AVRO_FIXED: {
        char a[SF_AVRO_NAME_MAX + 2], b[SF_AVRO_NAME_MAX + 2];
        return strcmp(codec__fullname(w, a, sizeof a), codec__fullname(r, b, sizeof b)) == 0;
    }
    default: return true;
    }
}

/* Avro's promotions: int -> long, float, double; long -> float, double;
 * float -> double; string <-> bytes. */
static bool codec__promotes(avro_type_t w, avro_type_t r)
{
    switch (w) {
    case AVRO_INT32: return r == AVRO_INT64 || r == AVRO_FLOAT || r == AVRO_DOUBLE;
    case AVRO_INT64: return r == AVRO_FLOAT || r == AVRO_DOUBLE;
    case AVRO_FLOAT: return r == AVRO_DOUBLE;
    case AVRO_STRING: return r == AVRO_BYTES;
    case AVRO_BYTES: return r == AVRO_STRING;
    default: return false;
    }
}

static sf_status codec__mismatch(codec__ctx *x, avro_schema_t w, avro_schema_t r)
{
    return SF_ERR(x->err, SF_EINVAL, "%s: writer's %s does not resolve to reader's %s",
                  codec__where(x), avro_schema_type_name(codec__deref(w)),
                  avro_schema_type_name(codec__deref(r)));
}

static sf_status codec__resolve(codec__ctx *x, avro_value_t *src, avro_value_t *dst, int depth);

static sf_status codec__resolve_record(codec__ctx *x, avro_value_t *src, avro_value_t *dst,
                                       int depth)
{
    avro_schema_t ws = avro_value_get_schema(src), rs = avro_value_get_schema(dst);
    size_t n = avro_schema_record_size(rs);
    for (size_t i = 0; i < n; i++) {
        const char *name = avro_schema_record_field_name(rs, (int)i);
        size_t old = codec__path_push(x, name);
        avro_value_t from, to;
        sf_status st = SF_OK;
        int rc = avro_value_get_by_index(dst, i, &to, NULL);
        if (rc == 0 && avro_schema_record_field_get_index(ws, name) >= 0) {
            if ((rc = avro_value_get_by_name(src, name, &from, NULL)) == 0)
                st = codec__resolve(x, &from, &to, depth + 1);
        } else if (rc == 0) {
            const json_t *def = codec__field_default(x->named, rs, name);
            if (def)
                st = codec__fill_default(x, &to, def, depth + 1);
            else
                st = SF_ERR(x->err, SF_EINVAL,
                            "%s: the writer does not have it and the reader has no default",
                            codec__where(x));
        }
        if (st == SF_OK && rc != 0)
            st = codec__avro_fail(x->err, rc, "codec: record field");
        codec__path_pop(x, old);
        if (st != SF_OK)
            return st;
    }
    return SF_OK;
}

static sf_status codec__resolve_enum(codec__ctx *x, avro_value_t *src, avro_value_t *dst)
{
    avro_schema_t ws = avro_value_get_schema(src), rs = avro_value_get_schema(dst);
    int idx = 0;
    int rc = avro_value_get_enum(src, &idx);
    if (rc)
        return codec__avro_fail(x->err, rc, "codec: reading an enum");
    const char *sym = avro_schema_enum_get(ws, idx);
    int ri = sym ? avro_schema_enum_get_by_name(rs, sym) : -1;
    if (ri < 0) {
        /* An enum's own "default" symbol stands in for unknown ones. */
        char full[SF_AVRO_NAME_MAX + 2];
        const json_t *def = json_object_get(
            json_object_get(x->named, codec__fullname(rs, full, sizeof full)), "default");
        const char *dsym = json_string_value(def);
        ri = dsym ? avro_schema_enum_get_by_name(rs, dsym) : -1;
        if (ri < 0)
            return SF_ERR(x->err, SF_EINVAL, "%s: symbol %s is unknown to the reader",
                          codec__where(x), sym ? sym : "?");
    }
    rc = avro_value_set_enum(dst, ri);
    return rc ? codec__avro_fail(x->err, rc, "codec: setting an enum") : SF_OK;
}

/* Copy a string or bytes value into a string or bytes value. */
static sf_status codec__resolve_text(codec__ctx *x, avro_value_t *src, avro_value_t *dst,
                                     avro_type_t wt, avro_type_t rt)
{
    const void *p = NULL;
    size_t n = 0; /* content bytes, no NUL */
    int rc;
    if (wt == AVRO_STRING) {
        const char *s = NULL;
        size_t size = 0;
        rc = avro_value_get_string(src, &s, &size);
        p = s;
        n = size ? size - 1 : 0;
    } else {
        rc = avro_value_get_bytes(src, &p, &n);
    }
    if (rc)
        return codec__avro_fail(x->err, rc, "codec: reading text");
    if (rt == AVRO_BYTES) {
        rc = avro_value_set_bytes(dst, (void *)(n ? p : ""), n);
    } else {
        sf_status st = codec__scratch(x->c, n + 1, x->err);
        if (st != SF_OK)
            return st;
        if (n)
            memcpy(x->c->scratch, p, n);
        x->c->scratch[n] = '\0';
        rc = avro_value_set_string_len(dst, x->c->scratch, n + 1);
    }
    return rc ? codec__avro_fail(x->err, rc, "codec: storing text") : SF_OK;
}

static sf_status codec__resolve_union(codec__ctx *x, avro_value_t *src, avro_value_t *dst,
                                      int depth)
{
    avro_schema_t ws = avro_value_get_schema(src), rs = avro_value_get_schema(dst);
    size_t n = avro_schema_union_size(rs);
    int pick = -1;
    for (size_t i = 0; i < n && pick < 0; i++)
        if (codec__same_type(ws, avro_schema_union_branch(rs, (int)i)))
            pick = (int)i;
    for (size_t i = 0; i < n && pick < 0; i++)
        if (codec__promotes(avro_value_get_type(src),
                            avro_typeof(codec__deref(avro_schema_union_branch(rs, (int)i)))))
            pick = (int)i;
    if (pick < 0)
        return SF_ERR(x->err, SF_EINVAL, "%s: writer's %s matches no branch of the reader's union",
                      codec__where(x), avro_schema_type_name(codec__deref(ws)));
    avro_value_t branch;
    int rc = avro_value_set_branch(dst, pick, &branch);
    if (rc)
        return codec__avro_fail(x->err, rc, "codec: setting a union branch");
    return codec__resolve(x, src, &branch, depth + 1);
}

static sf_status codec__resolve_items(codec__ctx *x, avro_value_t *src, avro_value_t *dst,
                                      bool is_map, int depth)
{
    size_t n = 0;
    int rc = avro_value_get_size(src, &n);
    for (size_t i = 0; i < n && rc == 0; i++) {
        avro_value_t from, to;
        const char *key = NULL;
        if ((rc = avro_value_get_by_index(src, i, &from, &key)) != 0)
            break;
        rc = is_map ? avro_value_add(dst, key, &to, NULL, NULL) : avro_value_append(dst, &to, NULL);
        if (rc)
            break;
        sf_status st = codec__resolve(x, &from, &to, depth + 1);
        if (st != SF_OK)
            return st;
    }
    return rc ? codec__avro_fail(x->err, rc, "codec: copying elements") : SF_OK;
}

/* Set dst (reader value) from src (writer value): Avro's resolution rules. */
static sf_status codec__resolve(codec__ctx *x, avro_value_t *src, avro_value_t *dst, int depth)
{
    if (depth > SF_CODEC_MAX_DEPTH)
        return SF_ERR(x->err, SF_EINVAL, "%s: nested deeper than %d levels", codec__where(x),
                      SF_CODEC_MAX_DEPTH);
    avro_type_t wt = avro_value_get_type(src), rt = avro_value_get_type(dst);
    avro_schema_t ws = avro_value_get_schema(src), rs = avro_value_get_schema(dst);
    int rc = 0;
    if (wt == AVRO_UNION) {
        avro_value_t branch;
        if ((rc = avro_value_get_current_branch(src, &branch)) != 0)
            return SF_ERR(x->err, SF_EINVAL, "%s: union without a branch", codec__where(x));
        return codec__resolve(x, &branch, dst, depth + 1);
    }
    if (rt == AVRO_UNION)
        return codec__resolve_union(x, src, dst, depth);
    if (!codec__same_type(ws, rs) && !codec__promotes(wt, rt))
        return codec__mismatch(x, ws, rs);
    switch (rt) {
    case AVRO_NULL: rc = avro_value_set_null(dst); break;
    case AVRO_BOOLEAN: {
        int b = 0;
        if ((rc = avro_value_get_boolean(src, &b)) == 0)
            rc = avro_value_set_boolean(dst, b);
        break;
    }
    case AVRO_INT32: {
        int32_t i = 0;
        if ((rc = avro_value_get_int(src, &i)) == 0)
            rc = avro_value_set_int(dst, i);
        break;
    }
    case AVRO_INT64:
    case AVRO_FLOAT:
    case AVRO_DOUBLE: {
        int32_t i = 0;
        int64_t l = 0;
        float f = 0;
        double d = 0;
        if (wt == AVRO_INT32 && (rc = avro_value_get_int(src, &i)) == 0)
            l = i, f = (float)i, d = i;
        else if (wt == AVRO_INT64 && (rc = avro_value_get_long(src, &l)) == 0)
            f = (float)l, d = (double)l;
        else if (wt == AVRO_FLOAT && (rc = avro_value_get_float(src, &f)) == 0)
            d = f;
        else if (wt == AVRO_DOUBLE)
            rc = avro_value_get_double(src, &d);
        if (rc == 0)
            rc = rt == AVRO_INT64   ? avro_value_set_long(dst, l)
                 : rt == AVRO_FLOAT ? avro_value_set_float(dst, f)
                                    : avro_value_set_double(dst, d);
        break;
    }
    case AVRO_STRING:
    case AVRO_BYTES: return codec__resolve_text(x, src, dst, wt, rt);
    case AVRO_FIXED: {
        const void *p = NULL;
        size_t n = 0;
        if (avro_schema_fixed_size(ws) != avro_schema_fixed_size(rs))
            return codec__mismatch(x, ws, rs);
        if ((rc = avro_value_get_fixed(src, &p, &n)) == 0)
            rc = avro_value_set_fixed(dst, (void *)p, n);
        break;
    }
    case AVRO_ENUM: return codec__resolve_enum(x, src, dst);
    case AVRO_ARRAY: return codec__resolve_items(x, src, dst, false, depth);
    case AVRO_MAP: return codec__resolve_items(x, src, dst, true, depth);
    case AVRO_RECORD: return codec__resolve_record(x, src, dst, depth);
    case AVRO_UNION:
    case AVRO_LINK: return codec__mismatch(x, ws, rs);
    }
    return rc ? codec__avro_fail(x->err, rc, "codec: copying a value") : SF_OK;
}

/* The reader value for what was just read into w->value: w->value itself
 * when writer and reader are one schema, else r->value after resolution. */
static sf_status codec__to_reader(sf_codec *c, codec__schema *w, codec__schema *r,
                                  avro_value_t **out, sf_error *err)
{
    if (w == r) {
        *out = &w->value;
        return SF_OK;
    }
    int rc = avro_value_reset(&r->value);
    if (rc)
        return codec__avro_fail(err, rc, "codec: resetting a value");
    codec__ctx x;
    codec__ctx_init(&x, c, r->named, err);
    sf_status st = codec__resolve(&x, &w->value, &r->value, 0);
    if (st != SF_OK) {
        sf_error_prefix(err, "resolving %s v%d to %s v%d: ", w->def->name, w->def->version,
                        r->def->name, r->def->version);
        return st;
    }
    *out = &r->value;
    return SF_OK;
}

/* --- start-up ------------------------------------------------------------- */

/* Every field default in the schema must fit its field's type: found at
 * start-up, not on the first message that needs it. */
static sf_status codec__check_defaults(sf_codec *c, codec__schema *s, avro_schema_t sch, int depth,
                                       sf_error *err)
{
    if (depth > SF_CODEC_MAX_DEPTH)
        return SF_ERR(err, SF_EINTERNAL, "%s: nested deeper than %d levels", s->def->path,
                      SF_CODEC_MAX_DEPTH);
    sf_status st = SF_OK;
    switch (avro_typeof(sch)) {
    case AVRO_RECORD:
        for (size_t i = 0; i < avro_schema_record_size(sch) && st == SF_OK; i++) {
            const char *name = avro_schema_record_field_name(sch, (int)i);
            avro_schema_t fs = avro_schema_record_field_get_by_index(sch, (int)i);
            const json_t *def = codec__field_default(s->named, sch, name);
            if (def) {
                avro_value_iface_t *iface = avro_generic_class_from_schema(fs);
                avro_value_t v;
                if (!iface)
                    return codec__avro_fail(err, EINVAL, "codec: value class");
                if (avro_generic_value_new(iface, &v) != 0) {
                    avro_value_iface_decref(iface);
                    return codec__avro_fail(err, ENOMEM, "codec: value");
                }
                codec__ctx x;
                codec__ctx_init(&x, c, s->named, err);
                codec__path_push(&x, name);
                st = codec__fill_default(&x, &v, def, 0);
                avro_value_decref(&v);
                avro_value_iface_decref(iface);
                if (st != SF_OK) {
                    sf_error_prefix(err, "%s: ", s->def->path);
                    return st;
                }
            }
            st = codec__check_defaults(c, s, fs, depth + 1, err);
        }
        break;
    case AVRO_UNION:
        for (size_t i = 0; i < avro_schema_union_size(sch) && st == SF_OK; i++)
            st = codec__check_defaults(c, s, avro_schema_union_branch(sch, (int)i), depth + 1, err);
        break;
    case AVRO_ARRAY:
        st = codec__check_defaults(c, s, avro_schema_array_items(sch), depth + 1, err);
        break;
    case AVRO_MAP:
        st = codec__check_defaults(c, s, avro_schema_map_values(sch), depth + 1, err);
        break;
    default: break; /* links are checked where their type is defined */
    }
    return st;
}

static sf_status codec__schema_init(sf_codec *c, codec__schema *s, const sf_schema_def *def,
                                    sf_error *err)
{
    s->def = def;
    json_error_t jerr;
    s->json = json_loadb(def->json, def->len, JSON_REJECT_DUPLICATES, &jerr);
    if (!s->json)
        return SF_ERR(err, SF_EINTERNAL, "%s:%d:%d: %s", def->path, jerr.line, jerr.column,
                      jerr.text);
    char *pcf = NULL;
    sf_status st = sf_avro_named_types(s->json, &s->named, err);
    if (st == SF_OK)
        st = sf_avro_pcf_json(s->json, &pcf, err);
    if (st != SF_OK) {
        sf_error_prefix(err, "%s: ", def->path);
        return st;
    }
    s->fp = sf_avro_crc64(pcf, strlen(pcf));
    free(pcf);
    if (avro_schema_from_json_length(def->json, def->len, &s->schema) != 0) {
        s->schema = NULL;
        return SF_ERR(err, SF_EINTERNAL, "%s: avro-c rejects it: %s", def->path, avro_strerror());
    }
    s->iface = avro_generic_class_from_schema(s->schema);
    if (!s->iface)
        return SF_ERR(err, SF_EINTERNAL, "%s: avro-c value class: %s", def->path, avro_strerror());
    if (avro_generic_value_new(s->iface, &s->value) != 0)
        return SF_ERR(err, SF_ENOMEM, "%s: avro-c value: %s", def->path, avro_strerror());
    s->has_value = true;
    return codec__check_defaults(c, s, s->schema, 0, err);
}

static codec__schema *codec__find(const sf_codec *c, const char *name, int version)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->schemas[i].def->version == version && strcmp(c->schemas[i].def->name, name) == 0)
            return &c->schemas[i];
    return NULL;
}

/* The codec reads fields by index: the schema must have exactly these. */
static sf_status codec__check_fields(const codec__schema *s, const char *const *names, size_t n,
                                     sf_error *err)
{
    if (avro_typeof(s->schema) != AVRO_RECORD || avro_schema_record_size(s->schema) != n)
        return SF_ERR(err, SF_EINTERNAL, "%s: not a record of %zu fields", s->def->path, n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(avro_schema_record_field_name(s->schema, (int)i), names[i]) != 0)
            return SF_ERR(err, SF_EINTERNAL, "%s: field %zu is %s, the codec expects %s",
                          s->def->path, i, avro_schema_record_field_name(s->schema, (int)i),
                          names[i]);
    return SF_OK;
}

/* The enum of field `idx` (directly or as a union branch) must have
 * exactly these symbols in this order: the C enums are its indexes. */
static sf_status codec__check_symbols(const codec__schema *s, int idx, const char *const *syms,
                                      size_t n, sf_error *err)
{
    avro_schema_t e = avro_schema_record_field_get_by_index(s->schema, idx);
    if (avro_typeof(e) == AVRO_UNION) {
        avro_schema_t u = e;
        e = NULL;
        for (size_t i = 0; i < avro_schema_union_size(u) && !e; i++)
            if (avro_typeof(avro_schema_union_branch(u, (int)i)) == AVRO_ENUM)
                e = avro_schema_union_branch(u, (int)i);
    }
    if (!e || avro_typeof(e) != AVRO_ENUM || avro_schema_enum_number_of_symbols(e) != (int)n)
        return SF_ERR(err, SF_EINTERNAL, "%s: field %d is not an enum of %zu symbols", s->def->path,
                      idx, n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(avro_schema_enum_get(e, (int)i), syms[i]) != 0)
            return SF_ERR(err, SF_EINTERNAL, "%s: symbol %zu is %s, the codec expects %s",
                          s->def->path, i, avro_schema_enum_get(e, (int)i), syms[i]);
    return SF_OK;
}

sf_status sf_codec_new(sf_codec **out, sf_error *err)
{
    return sf_codec_new_with(NULL, 0, out, err);
}

sf_status sf_codec_new_with(const sf_schema_def *extra, size_t n_extra, sf_codec **out,
                            sf_error *err)
{
    if (!out || (!extra && n_extra))
        return SF_ERR(err, SF_EINVAL, "codec: missing argument");
    *out = NULL;
    size_t shipped = sf_schemas_count();
    if (n_extra > 1024)
        return SF_ERR(err, SF_EINVAL, "codec: %zu extra schemas, limit 1024", n_extra);
    sf_codec *c = calloc(1, sizeof *c);
    if (!c)
        return SF_ERR(err, SF_ENOMEM, "codec: out of memory");
    sf_status st = SF_OK;
    c->n = shipped + n_extra;
    c->schemas = calloc(c->n, sizeof *c->schemas);
    c->writer = avro_writer_memory((const char *)c, 0);
    if (!c->schemas || !c->writer) {
        st = SF_ERR(err, SF_ENOMEM, "codec: out of memory");
        goto fail;
    }
    for (size_t i = 0; i < c->n; i++) {
        const sf_schema_def *def = i < shipped ? sf_schemas_at(i) : &extra[i - shipped];
        if (!def->name || !def->path || !def->json) {
            st = SF_ERR(err, SF_EINVAL, "codec: schema %zu lacks name, path or text", i);
            goto fail;
        }
        if ((st = codec__schema_init(c, &c->schemas[i], def, err)) != SF_OK)
            goto fail;
        for (size_t j = 0; j < i; j++) {
            const codec__schema *a = &c->schemas[j], *b = &c->schemas[i];
            if (a->fp == b->fp ||
                (a->def->version == b->def->version && strcmp(a->def->name, b->def->name) == 0)) {
                st = SF_ERR(err, SF_EINTERNAL, "%s and %s have the same fingerprint or name",
                            a->def->path, b->def->path);
                goto fail;
            }
        }
    }
    c->event = codec__find(c, SF_SCHEMA_INVENTORY_EVENT, 1);
    c->stock = codec__find(c, SF_SCHEMA_CHANNEL_STOCK, 1);
    if (!c->event || !c->stock) {
        st = SF_ERR(err, SF_EINTERNAL, "codec: InventoryEvent v1 or ChannelStock v1 not shipped");
        goto fail;
    }
    if ((st = codec__check_fields(c->event, codec__event_fields, EV__COUNT, err)) != SF_OK ||
        (st = codec__check_symbols(c->event, EV_KIND, codec__kind_symbols, SF_KIND__COUNT, err)) !=
            SF_OK ||
        (st = codec__check_symbols(c->event, EV_CONDITION, codec__condition_symbols,
                                   CODEC__CONDITIONS, err)) != SF_OK ||
        (st = codec__check_fields(c->stock, codec__stock_fields, CS__COUNT, err)) != SF_OK)
        goto fail;
    *out = c;
    return SF_OK;
fail:
    sf_codec_free(c);
    return st;
}

void sf_codec_free(sf_codec *c)
{
    if (!c)
        return;
    for (size_t i = 0; c->schemas && i < c->n; i++) {
        codec__schema *s = &c->schemas[i];
        if (s->has_value)
            avro_value_decref(&s->value);
        if (s->iface)
            avro_value_iface_decref(s->iface);
        if (s->schema)
            avro_schema_decref(s->schema);
        json_decref(s->named);
        json_decref(s->json);
    }
    free(c->schemas);
    if (c->writer)
        avro_writer_free(c->writer);
    free(c->scratch);
    free(c);
}

sf_status sf_codec_fingerprint(const sf_codec *c, const char *name, int version, uint64_t *fp,
                               sf_error *err)
{
    if (!c || !name || !fp)
        return SF_ERR(err, SF_EINVAL, "codec: missing argument");
    const codec__schema *s = codec__find(c, name, version);
    if (!s)
        return SF_ERR(err, SF_ENOTFOUND, "codec: no schema %s v%d", name, version);
    *fp = s->fp;
    return SF_OK;
}

/* --- encoding ------------------------------------------------------------- */

/* Header, then the body of v written straight into buf. */
static sf_status codec__write(sf_codec *c, const codec__schema *s, avro_value_t *v, uint8_t *buf,
                              size_t cap, size_t *len, sf_error *err)
{
    if (!buf || !len)
        return SF_ERR(err, SF_EINVAL, "codec: no output buffer");
    if (cap < SF_CODEC_HEADER_LEN)
        return SF_ERR(err, SF_EINVAL, "buffer of %zu bytes cannot hold the %d-byte header", cap,
                      SF_CODEC_HEADER_LEN);
    buf[0] = 0xC3;
    buf[1] = 0x01;
    for (unsigned i = 0; i < 8; i++)
        buf[2 + i] = (uint8_t)(s->fp >> (8 * i));
    size_t room = cap - SF_CODEC_HEADER_LEN;
    if (room > (size_t)INT64_MAX)
        room = (size_t)INT64_MAX;
    avro_writer_memory_set_dest(c->writer, (const char *)buf + SF_CODEC_HEADER_LEN, (int64_t)room);
    int rc = avro_value_write(c->writer, v);
    if (rc) {
        size_t need = 0;
        if (rc == ENOSPC && avro_value_sizeof(v, &need) == 0)
            return SF_ERR(err, SF_EINVAL, "buffer too small: the message needs %zu bytes, have %zu",
                          need + SF_CODEC_HEADER_LEN, cap);
        return SF_ERR(err, SF_EINVAL, "cannot encode %s v%d: %s", s->def->name, s->def->version,
                      avro_strerror());
    }
    *len = SF_CODEC_HEADER_LEN + (size_t)avro_writer_tell(c->writer);
    return SF_OK;
}

/* A C string of at most SF_STR_MAX bytes into string value v. */
static sf_status codec__put_str(avro_value_t *v, const char *field, const char *s, sf_error *err)
{
    size_t n = strnlen(s, SF_STR_MAX + 1);
    if (n > SF_STR_MAX)
        return SF_ERR(err, SF_EINVAL, "field %s: longer than %d bytes (no NUL within %d)", field,
                      SF_STR_MAX, SF_STR_MAX + 1);
    int rc = avro_value_set_string_len(v, s, n + 1);
    return rc ? codec__avro_fail(err, rc, field) : SF_OK;
}

static sf_status codec__set_str(avro_value_t *rec, size_t idx, const char *field, const char *s,
                                sf_error *err)
{
    avro_value_t v;
    int rc = avro_value_get_by_index(rec, idx, &v, NULL);
    if (rc)
        return codec__avro_fail(err, rc, field);
    return codec__put_str(&v, field, s, err);
}

static sf_status codec__set_long(avro_value_t *rec, size_t idx, const char *field, int64_t l,
                                 sf_error *err)
{
    avro_value_t v;
    int rc = avro_value_get_by_index(rec, idx, &v, NULL);
    if (rc == 0)
        rc = avro_value_set_long(&v, l);
    return rc ? codec__avro_fail(err, rc, field) : SF_OK;
}

/* An optional ["null", X] field: branch 1 (returned in *branch) or null. */
static sf_status codec__set_opt(avro_value_t *rec, size_t idx, const char *field, bool present,
                                avro_value_t *branch, sf_error *err)
{
    avro_value_t v;
    int rc = avro_value_get_by_index(rec, idx, &v, NULL);
    if (rc == 0)
        rc = avro_value_set_branch(&v, present ? 1 : 0, branch);
    if (rc == 0 && !present)
        rc = avro_value_set_null(branch);
    return rc ? codec__avro_fail(err, rc, field) : SF_OK;
}

sf_status sf_codec_encode_event(sf_codec *c, const sf_event *ev, uint8_t *buf, size_t cap,
                                size_t *len, sf_error *err)
{
    if (!c || !ev)
        return SF_ERR(err, SF_EINVAL, "codec: missing argument");
    if ((unsigned)ev->kind >= SF_KIND__COUNT)
        return SF_ERR(err, SF_EINVAL, "field kind: %d is not a kind", (int)ev->kind);
    if (ev->has_condition && (unsigned)ev->condition >= CODEC__CONDITIONS)
        return SF_ERR(err, SF_EINVAL, "field condition: %d is not a condition", (int)ev->condition);
    avro_value_t *rec = &c->event->value, v;
    sf_status st;
    int rc;
    if ((st = codec__set_str(rec, EV_EVENT_ID, "event_id", ev->event_id, err)) ||
        (st = codec__set_str(rec, EV_SKU, "sku", ev->sku, err)) ||
        (st = codec__set_str(rec, EV_LOCATION, "location", ev->location, err)) ||
        (st = codec__set_str(rec, EV_SOURCE, "source", ev->source, err)) ||
        (st = codec__set_long(rec, EV_QTY, "qty", ev->qty, err)) ||
        (st = codec__set_long(rec, EV_OCCURRED_AT, "occurred_at", ev->occurred_at, err)))
        return st;
    if ((rc = avro_value_get_by_index(rec, EV_KIND, &v, NULL)) != 0 ||
        (rc = avro_value_set_enum(&v, (int)ev->kind)) != 0)
        return codec__avro_fail(err, rc, "kind");
    if ((st = codec__set_opt(rec, EV_CHANNEL, "channel", ev->has_channel, &v, err)) ||
        (ev->has_channel && (st = codec__put_str(&v, "channel", ev->channel, err))))
        return st;
    if ((st = codec__set_opt(rec, EV_REF, "ref", ev->has_ref, &v, err)) ||
        (ev->has_ref && (st = codec__put_str(&v, "ref", ev->ref, err))))
        return st;
    if ((st = codec__set_opt(rec, EV_CONDITION, "condition", ev->has_condition, &v, err)))
        return st;
    if (ev->has_condition && (rc = avro_value_set_enum(&v, (int)ev->condition)) != 0)
        return codec__avro_fail(err, rc, "condition");
    if ((st = codec__set_opt(rec, EV_EXPIRES_AT, "expires_at", ev->has_expires_at, &v, err)))
        return st;
    if (ev->has_expires_at && (rc = avro_value_set_long(&v, ev->expires_at)) != 0)
        return codec__avro_fail(err, rc, "expires_at");
    return codec__write(c, c->event, rec, buf, cap, len, err);
}

/* --- decoding into C structs ---------------------------------------------- */

/* A string field of the reader record into dst: the contract's limit of
 * SF_STR_MAX bytes and no NUL are wire checks, done here. */
static sf_status codec__get_str(avro_value_t *v, const char *field, char dst[SF_STR_MAX + 1],
                                sf_error *err)
{
    const char *s = NULL;
    size_t size = 0;
    int rc = avro_value_get_string(v, &s, &size);
    if (rc)
        return codec__avro_fail(err, rc, field);
    size_t n = size ? size - 1 : 0; /* avro-c counts the NUL */
    if (n > SF_STR_MAX)
        return SF_ERR(err, SF_EINVAL, "field %s: %zu bytes, limit %d", field, n, SF_STR_MAX);
    const char *nul = memchr(s, '\0', n);
    if (nul)
        return SF_ERR(err, SF_EINVAL, "field %s: NUL byte at offset %zu", field, (size_t)(nul - s));
    memcpy(dst, s, n);
    dst[n] = '\0';
    return SF_OK;
}

static sf_status codec__field(avro_value_t *rec, size_t idx, avro_value_t *v, sf_error *err)
{
    int rc = avro_value_get_by_index(rec, idx, v, NULL);
    return rc ? codec__avro_fail(err, rc, "codec: reader field") : SF_OK;
}

static sf_status codec__field_str(avro_value_t *rec, size_t idx, const char *field,
                                  char dst[SF_STR_MAX + 1], sf_error *err)
{
    avro_value_t v;
    sf_status st = codec__field(rec, idx, &v, err);
    return st ? st : codec__get_str(&v, field, dst, err);
}

static sf_status codec__field_long(avro_value_t *rec, size_t idx, const char *field, int64_t *out,
                                   sf_error *err)
{
    avro_value_t v;
    sf_status st = codec__field(rec, idx, &v, err);
    if (st != SF_OK)
        return st;
    int rc = avro_value_get_long(&v, out);
    return rc ? codec__avro_fail(err, rc, field) : SF_OK;
}

/* An optional field: *present, and its value in *branch when present. */
static sf_status codec__field_opt(avro_value_t *rec, size_t idx, const char *field, bool *present,
                                  avro_value_t *branch, sf_error *err)
{
    avro_value_t v;
    sf_status st = codec__field(rec, idx, &v, err);
    if (st != SF_OK)
        return st;
    int rc = avro_value_get_current_branch(&v, branch);
    if (rc)
        return codec__avro_fail(err, rc, field);
    *present = avro_value_get_type(branch) != AVRO_NULL;
    return SF_OK;
}

static sf_status codec__event_from(avro_value_t *rec, sf_event *out, sf_error *err)
{
    sf_event ev;
    memset(&ev, 0, sizeof ev);
    avro_value_t v;
    int idx = 0, rc;
    sf_status st;
    if ((st = codec__field_str(rec, EV_EVENT_ID, "event_id", ev.event_id, err)) ||
        (st = codec__field_str(rec, EV_SKU, "sku", ev.sku, err)) ||
        (st = codec__field_str(rec, EV_LOCATION, "location", ev.location, err)) ||
        (st = codec__field_str(rec, EV_SOURCE, "source", ev.source, err)) ||
        (st = codec__field_long(rec, EV_QTY, "qty", &ev.qty, err)) ||
        (st = codec__field_long(rec, EV_OCCURRED_AT, "occurred_at", &ev.occurred_at, err)) ||
        (st = codec__field(rec, EV_KIND, &v, err)))
        return st;
    if ((rc = avro_value_get_enum(&v, &idx)) != 0)
        return codec__avro_fail(err, rc, "kind");
    if (idx < 0 || idx >= SF_KIND__COUNT)
        return SF_ERR(err, SF_EINVAL, "field kind: symbol index %d", idx);
    ev.kind = (sf_kind)idx;
    if ((st = codec__field_opt(rec, EV_CHANNEL, "channel", &ev.has_channel, &v, err)) ||
        (ev.has_channel && (st = codec__get_str(&v, "channel", ev.channel, err))) ||
        (st = codec__field_opt(rec, EV_REF, "ref", &ev.has_ref, &v, err)) ||
        (ev.has_ref && (st = codec__get_str(&v, "ref", ev.ref, err))) ||
        (st = codec__field_opt(rec, EV_CONDITION, "condition", &ev.has_condition, &v, err)))
        return st;
    if (ev.has_condition) {
        if ((rc = avro_value_get_enum(&v, &idx)) != 0)
            return codec__avro_fail(err, rc, "condition");
        if (idx < 0 || (size_t)idx >= CODEC__CONDITIONS)
            return SF_ERR(err, SF_EINVAL, "field condition: symbol index %d", idx);
        ev.condition = (sf_condition)idx;
    }
    if ((st = codec__field_opt(rec, EV_EXPIRES_AT, "expires_at", &ev.has_expires_at, &v, err)))
        return st;
    if (ev.has_expires_at && (rc = avro_value_get_long(&v, &ev.expires_at)) != 0)
        return codec__avro_fail(err, rc, "expires_at");
    *out = ev;
    return SF_OK;
}

/* Header, body, resolution to reader r: the reader's value in *rec. */
static sf_status codec__read(sf_codec *c, codec__schema *r, const uint8_t *msg, size_t len,
                             avro_value_t **rec, sf_error *err)
{
    codec__schema *w = NULL;
    sf_status st = codec__frame(c, msg, len, &w, err);
    if (st == SF_OK)
        st = codec__read_body(c, w, msg, len, err);
    if (st == SF_OK)
        st = codec__to_reader(c, w, r, rec, err);
    return st;
}

sf_status sf_codec_decode_event(sf_codec *c, const uint8_t *msg, size_t len, sf_event *out,
                                sf_error *err)
{
    if (!c || !out)
        return SF_ERR(err, SF_EINVAL, "codec: missing argument");
    avro_value_t *rec;
    sf_status st = codec__read(c, c->event, msg, len, &rec, err);
    return st ? st : codec__event_from(rec, out, err);
}

sf_status sf_codec_encode_channel_stock(sf_codec *c, const sf_channel_stock *cs, uint8_t *buf,
                                        size_t cap, size_t *len, sf_error *err)
{
    if (!c || !cs)
        return SF_ERR(err, SF_EINVAL, "codec: missing argument");
    avro_value_t *rec = &c->stock->value;
    sf_status st;
    if ((st = codec__set_str(rec, CS_CHANNEL, "channel", cs->channel, err)) ||
        (st = codec__set_str(rec, CS_SKU, "sku", cs->sku, err)) ||
        (st = codec__set_long(rec, CS_ATS, "ats", cs->ats, err)) ||
        (st = codec__set_long(rec, CS_VERSION, "version", cs->version, err)) ||
        (st = codec__set_long(rec, CS_COMPUTED_AT, "computed_at", cs->computed_at, err)))
        return st;
    return codec__write(c, c->stock, rec, buf, cap, len, err);
}

sf_status sf_codec_decode_channel_stock(sf_codec *c, const uint8_t *msg, size_t len,
                                        sf_channel_stock *out, sf_error *err)
{
    if (!c || !out)
        return SF_ERR(err, SF_EINVAL, "codec: missing argument");
    avro_value_t *rec;
    sf_channel_stock cs;
    memset(&cs, 0, sizeof cs);
    sf_status st = codec__read(c, c->stock, msg, len, &rec, err);
    if (st || (st = codec__field_str(rec, CS_CHANNEL, "channel", cs.channel, err)) ||
        (st = codec__field_str(rec, CS_SKU, "sku", cs.sku, err)) ||
        (st = codec__field_long(rec, CS_ATS, "ats", &cs.ats, err)) ||
        (st = codec__field_long(rec, CS_VERSION, "version", &cs.version, err)) ||
        (st = codec__field_long(rec, CS_COMPUTED_AT, "computed_at", &cs.computed_at, err)))
        return st;
    *out = cs;
    return SF_OK;
}

/* --- generic values ------------------------------------------------------- */

sf_status sf_codec_value_new(sf_codec *c, const char *name, int version, avro_value_t *out,
                             sf_error *err)
{
    if (!c || !name || !out)
        return SF_ERR(err, SF_EINVAL, "codec: missing argument");
    codec__schema *s = codec__find(c, name, version);
    if (!s)
        return SF_ERR(err, SF_ENOTFOUND, "codec: no schema %s v%d", name, version);
    int rc = avro_generic_value_new(s->iface, out);
    return rc ? codec__avro_fail(err, rc, "codec: new value") : SF_OK;
}

sf_status sf_codec_encode_value(sf_codec *c, avro_value_t *value, uint8_t *buf, size_t cap,
                                size_t *len, sf_error *err)
{
    if (!c || !value || !value->iface)
        return SF_ERR(err, SF_EINVAL, "codec: missing argument");
    avro_schema_t sch = avro_value_get_schema(value);
    const codec__schema *s = NULL;
    for (size_t i = 0; i < c->n && !s; i++)
        if (c->schemas[i].schema == sch)
            s = &c->schemas[i];
    for (size_t i = 0; i < c->n && !s; i++)
        if (avro_schema_equal(c->schemas[i].schema, sch))
            s = &c->schemas[i];
    if (!s)
        return SF_ERR(err, SF_ENOTFOUND, "codec: the value's schema is not a shipped one");
    return codec__write(c, s, value, buf, cap, len, err);
}

sf_status sf_codec_decode_value(sf_codec *c, const uint8_t *msg, size_t len,
                                const char *reader_name, int reader_version, avro_value_t *out,
                                sf_error *err)
{
    if (!c || !reader_name || !out)
        return SF_ERR(err, SF_EINVAL, "codec: missing argument");
    codec__schema *r = codec__find(c, reader_name, reader_version);
    if (!r)
        return SF_ERR(err, SF_ENOTFOUND, "codec: no reader schema %s v%d", reader_name,
                      reader_version);
    codec__schema *w = NULL;
    sf_status st = codec__frame(c, msg, len, &w, err);
    if (st == SF_OK)
        st = codec__read_body(c, w, msg, len, err);
    if (st != SF_OK)
        return st;
    avro_value_t v;
    int rc = avro_generic_value_new(r->iface, &v);
    if (rc)
        return codec__avro_fail(err, rc, "codec: new value");
    codec__ctx x;
    codec__ctx_init(&x, c, r->named, err);
    st = codec__resolve(&x, &w->value, &v, 0);
    if (st != SF_OK) {
        sf_error_prefix(err, "resolving %s v%d to %s v%d: ", w->def->name, w->def->version,
                        r->def->name, r->def->version);
        avro_value_decref(&v);
        return st;
    }
    *out = v;
    return SF_OK;
}
