/*
 * invctl status and dlq: what JetStream holds. status reports stream depths,
 * the stock-applier's lag and redeliveries and the DLQ depth; dlq list
 * shows each sidelined message with its reason headers; dlq replay
 * republishes the original bytes to their source subject with msg id
 * "<event_id>:replay:<dlq seq>" (so a replay is itself deduplicated).
 */
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "cmd.h"
#include "codec.h"

static sf_status status__connect(const sf_config *cfg, sf_broker **b, sf_error *err)
{
    sf_broker_opts bo;
    sf_broker_opts_init(&bo);
    bo.urls = cfg->nats.url;
    bo.tls = (sf_broker_tls){cfg->nats.tls_ca, cfg->nats.tls_cert, cfg->nats.tls_key,
                             cfg->nats.tls_required};
    bo.name = "invctl";
    return sf_broker_connect(&bo, b, err);
}

static void status__print_json(json_t *doc)
{
    char *s = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    printf("%s\n", s);
    free(s);
    json_decref(doc);
}

int cmd_status(const sf_config *cfg, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int json = 0, opt;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (opt == 'j')
            json = 1;
        else if (opt == 'h') {
            printf("usage: invctl status [--json]\nStream depths, consumer lag (pending), "
                   "unacknowledged and redelivered counts, ack floor, DLQ depth, and on a\n"
                   "cluster INV_EVENTS' leader and how many of its followers are current.\n");
            return 0;
        } else
            return 2;
    }
    sf_error err;
    sf_error_clear(&err);
    sf_broker *b = NULL;
    uint64_t ev_msgs = 0, dlq_msgs = 0, ch_msgs = 0, bytes, first, last, pending = 0,
             ack_pending = 0, redelivered = 0, ack_floor = 0, ev_last = 0;
    char leader[64] = "";
    int replicas = 0, current = 0;
    int rc = 1;
    if (status__connect(cfg, &b, &err) ||
        sf_broker_stream_info(b, SF_STREAM_EVENTS, &ev_msgs, &bytes, &first, &ev_last, &err) ||
        sf_broker_stream_info(b, SF_STREAM_DLQ, &dlq_msgs, &bytes, &first, &last, &err) ||
        sf_broker_stream_info(b, SF_STREAM_CHANNEL, &ch_msgs, &bytes, &first, &last, &err) ||
        sf_broker_consumer_info(b, SF_STREAM_EVENTS, SF_CONSUMER_APPLIER, &pending, &ack_pending,
                                &redelivered, &ack_floor, &err) ||
        sf_broker_stream_cluster(b, SF_STREAM_EVENTS, leader, sizeof leader, &replicas, &current,
                                 &err)) {
        fprintf(stderr, "invctl status: %s\n", err.msg);
        goto out;
    }
    if (json)
        status__print_json(json_pack(
            "{s:I, s:I, s:I, s:{s:s, s:I, s:I, s:I, s:I, s:I}, s:{s:s?, s:i, s:i}}", "events",
            (json_int_t)ev_msgs, "dlq", (json_int_t)dlq_msgs, "channel", (json_int_t)ch_msgs,
            "consumer", "name", SF_CONSUMER_APPLIER, "pending", (json_int_t)pending, "ack_pending",
            (json_int_t)ack_pending, "redelivered", (json_int_t)redelivered, "ack_floor",
            (json_int_t)ack_floor, "last_seq", (json_int_t)ev_last, "events_replicas", "leader",
            leader[0] ? leader : NULL, "replicas", replicas, "current_followers", current));
    else
        printf("INV_EVENTS   %" PRIu64 " messages (last seq %" PRIu64 ")\n"
               "INV_DLQ      %" PRIu64 " messages\n"
               "INV_CHANNEL  %" PRIu64 " messages\n"
               "stock-applier: %" PRIu64 " pending (lag), %" PRIu64 " unacknowledged, %" PRIu64
               " redelivered, ack floor %" PRIu64 "\n",
               ev_msgs, ev_last, dlq_msgs, ch_msgs, pending, ack_pending, redelivered, ack_floor);
    if (!json && replicas > 1)
        printf("INV_EVENTS   %d replicas: leader %s, %d of %d followers current\n", replicas,
               leader[0] ? leader : "(none: election in progress)", current, replicas - 1);
    rc = 0;
out:
    sf_broker_close(b);
    return rc;
}

/* Replay one DLQ message; *skipped when its bytes are not a decodable event. */
static sf_status dlq__replay_one(sf_broker *b, sf_codec *codec, uint64_t seq, sf_error *err)
{
    sf_stored_msg *m = NULL;
    sf_status st = sf_broker_get_msg(b, SF_STREAM_DLQ, seq, &m, err);
    if (st)
        return st;
    size_t len = 0;
    const void *data = sf_stored_msg_data(m, &len);
    const char *subject = sf_stored_msg_header(m, SF_HDR_SOURCE_SUBJECT);
    sf_event ev;
    sf_error derr;
    if (!subject || !*subject) {
        st =
            SF_ERR(err, SF_EINVAL, "INV_DLQ:%" PRIu64 ": no %s header", seq, SF_HDR_SOURCE_SUBJECT);
    } else if (sf_codec_decode_event(codec, data, len, &ev, &derr) != SF_OK) {
        st = SF_ERR(err, SF_EINVAL, "INV_DLQ:%" PRIu64 ": not replayable: %s", seq, derr.msg);
    } else {
        char msg_id[SF_STR_MAX + 48];
        snprintf(msg_id, sizeof msg_id, "%s:replay:%" PRIu64, ev.event_id, seq);
        uint64_t new_seq = 0;
        st = sf_broker_publish_sync(b, subject, msg_id, NULL, 0, data, len, &new_seq, err);
        if (!st)
            printf("replayed INV_DLQ:%" PRIu64 " -> %s (INV_EVENTS seq %" PRIu64 ")\n", seq,
                   subject, new_seq);
    }
    sf_stored_msg_free(m);
    return st;
}

static int dlq__list(sf_broker *b, int json, long long limit)
{
    sf_error err;
    uint64_t msgs = 0, bytes, first = 0, last = 0;
    if (sf_broker_stream_info(b, SF_STREAM_DLQ, &msgs, &bytes, &first, &last, &err)) {
        fprintf(stderr, "invctl dlq list: %s\n", err.msg);
        return 1;
    }
    json_t *arr = json ? json_array() : NULL;
    long long shown = 0;
    for (uint64_t seq = first; msgs > 0 && seq <= last && shown < limit; seq++) {
        sf_stored_msg *m = NULL;
        if (sf_broker_get_msg(b, SF_STREAM_DLQ, seq, &m, &err) != SF_OK)
            continue; /* deleted in between */
        const char *reason = sf_stored_msg_header(m, SF_HDR_REASON);
        const char *src = sf_stored_msg_header(m, SF_HDR_SOURCE_SUBJECT);
        const char *src_seq = sf_stored_msg_header(m, SF_HDR_SOURCE_SEQ);
        const char *dlv = sf_stored_msg_header(m, SF_HDR_DELIVERIES);
        if (json)
            json_array_append_new(
                arr, json_pack("{s:I, s:s, s:s, s:s, s:s, s:s}", "seq", (json_int_t)seq, "subject",
                               sf_stored_msg_subject(m), "reason", reason ? reason : "",
                               "source_subject", src ? src : "", "source_seq",
                               src_seq ? src_seq : "", "deliveries", dlv ? dlv : ""));
        else
            printf("%" PRIu64 "\t%s\t%s:%s\tdeliveries=%s\t%s\n", seq, sf_stored_msg_subject(m),
                   src ? src : "?", src_seq ? src_seq : "?", dlv ? dlv : "?", reason ? reason : "");
        sf_stored_msg_free(m);
        shown++;
    }
    if (json)
        status__print_json(arr);
    return 0;
}

int cmd_dlq(const sf_config *cfg, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},      {"limit", required_argument, NULL, 'n'},
        {"seq", required_argument, NULL, 's'}, {"all", no_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},      {NULL, 0, NULL, 0}};
    int json = 0, all = 0, opt;
    long long limit = 1000, seq = 0;
    const char *usage = "usage: invctl dlq list [--json] [--limit N]\n"
                        "       invctl dlq replay (--seq N | --all)\n";
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    const char *action = argv[1];
    optind = 2;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'j': json = 1; break;
        case 'a': all = 1; break;
        case 'n':
            if (!cmd_parse_i64("--limit", optarg, 1, 100000000, &limit))
                return 2;
            break;
        case 's':
            if (!cmd_parse_i64("--seq", optarg, 1, INT64_MAX, &seq))
                return 2;
            break;
        case 'h': fputs(usage, stdout); return 0;
        default: return 2;
        }
    }
    int is_list = !strcmp(action, "list"), is_replay = !strcmp(action, "replay");
    if ((!is_list && !is_replay) || (is_replay && !all == !seq)) {
        fputs(usage, stderr);
        return 2;
    }
    sf_error err;
    sf_error_clear(&err);
    sf_broker *b = NULL;
    if (status__connect(cfg, &b, &err)) {
        fprintf(stderr, "invctl dlq: %s\n", err.msg);
        return 1;
    }
    int rc = 0;
    if (is_list) {
        rc = dlq__list(b, json, limit);
    } else {
        sf_codec *codec = NULL;
        uint64_t msgs = 0, bytes, first = 0, last = 0;
        if (sf_codec_new(&codec, &err) ||
            sf_broker_stream_info(b, SF_STREAM_DLQ, &msgs, &bytes, &first, &last, &err)) {
            fprintf(stderr, "invctl dlq replay: %s\n", err.msg);
            rc = 1;
        } else {
            uint64_t lo = all ? first : (uint64_t)seq, hi = all ? last : (uint64_t)seq;
            for (uint64_t s = lo; (all ? msgs > 0 : 1) && s <= hi; s++) {
                if (dlq__replay_one(b, codec, s, &err) != SF_OK) {
                    fprintf(stderr, "invctl dlq replay: %s\n", err.msg);
                    rc = 1;
                }
            }
        }
        sf_codec_free(codec);
    }
    sf_broker_close(b);
    return rc;
}
