/*
 * invctl channel watch CH: the ChannelStock stream of one channel, read as a
 * channel connector reads it: a durable pull consumer on INV_CHANNEL
 * filtered to inv.chan.<CH> (default name watch-<CH>), so a restart resumes
 * after the last record it acknowledged. A connector applies a record only
 * when its version is higher than the one it holds for that sku; this
 * printer shows every record as it comes.
 */
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker_pull.h"
#include "cli.h"
#include "cmd.h"
#include "codec.h"
#include "event.h"
#include "event_parse.h"

static void watch__print(const sf_channel_stock *cs, uint64_t seq, int json)
{
    char when[40] = "";
    if (!sf_time_format_rfc3339(cs->computed_at, when, sizeof when))
        snprintf(when, sizeof when, "%" PRId64, cs->computed_at);
    if (json) {
        json_t *o =
            json_pack("{s:s, s:s, s:I, s:I, s:s, s:I}", "channel", cs->channel, "sku", cs->sku,
                      "ats", (json_int_t)cs->ats, "version", (json_int_t)cs->version, "computed_at",
                      when, "stream_seq", (json_int_t)seq);
        char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;
        if (t)
            printf("%s\n", t);
        free(t);
        json_decref(o);
    } else {
        printf("%s %s %s ats=%" PRId64 " version=%" PRId64 " seq=%" PRIu64 "\n", when, cs->channel,
               cs->sku, cs->ats, cs->version, seq);
    }
}

int cmd_channel_watch(const sf_config *cfg, int argc, char **argv)
{
    static const char usage[] =
        "usage: invctl channel watch CH [--durable NAME] [--json] [--drain]\n"
        "  --durable NAME  the resumable cursor (default watch-CH)\n"
        "  --drain         exit once no record arrives for 2 s\n";
    static const struct option longopts[] = {{"durable", required_argument, NULL, 'd'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"drain", no_argument, NULL, 'D'},
                                             {NULL, 0, NULL, 0}};
    if (argc < 3 || !sf_is_token(argv[2])) {
        fputs(usage, stderr);
        return 2;
    }
    const char *channel = argv[2];
    char durable[SF_STR_MAX + 1];
    snprintf(durable, sizeof durable, "watch-%.57s", channel);
    int json = 0, drain = 0, opt;
    optind = 3;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'd':
            if (!sf_is_token(optarg) || strlen(optarg) > SF_STR_MAX) {
                fprintf(stderr, "invctl channel watch: --durable: use A-Z a-z 0-9 _ -\n");
                return 2;
            }
            snprintf(durable, sizeof durable, "%s", optarg);
            break;
        case 'j': json = 1; break;
        case 'D': drain = 1; break;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (optind != argc) {
        fputs(usage, stderr);
        return 2;
    }
    sf_error err;
    sf_error_clear(&err);
    sf_broker_opts bo;
    sf_broker_opts_init(&bo);
    bo.urls = cfg->nats.url;
    bo.tls = (sf_broker_tls){cfg->nats.tls_ca, cfg->nats.tls_cert, cfg->nats.tls_key,
                             cfg->nats.tls_required};
    bo.name = "invctl-channel-watch";
    sf_broker *b = NULL;
    sf_sub *sub = NULL;
    sf_batch *batch = NULL;
    sf_codec *codec = NULL;
    int rc = 1;
    if (sf_broker_connect(&bo, &b, &err) ||
        sf_broker_ensure_channel_consumer(b, channel, durable, &err) ||
        sf_broker_pull_subscribe(b, "INV_CHANNEL", durable, &sub, &err) ||
        sf_batch_new(&batch, &err) || sf_codec_new(&codec, &err))
        goto out;
    while (!sf_shutdown) {
        sf_status st = sf_sub_fetch(sub, 256, drain ? 2000 : 1000, batch, &err);
        if (st == SF_ETIMEOUT) {
            if (drain)
                break;
            continue;
        }
        if (st == SF_EUNAVAIL) {
            fprintf(stderr, "invctl channel watch: %s (retrying)\n", err.msg);
            continue;
        }
        if (st)
            goto out;
        for (size_t i = 0; i < sf_batch_count(batch); i++) {
            size_t len = 0;
            const void *data = sf_batch_data(batch, i, &len);
            sf_channel_stock cs;
            sf_error derr;
            if (sf_codec_decode_channel_stock(codec, data, len, &cs, &derr)) {
                fprintf(stderr, "invctl channel watch: %s:%" PRIu64 ": cannot decode: %s\n",
                        sf_batch_subject(batch, i), sf_batch_stream_seq(batch, i), derr.msg);
                if (sf_batch_term(batch, i, &derr))
                    fprintf(stderr, "invctl channel watch: %s\n", derr.msg);
                continue;
            }
            watch__print(&cs, sf_batch_stream_seq(batch, i), json);
            if (sf_batch_ack(batch, i, &derr))
                fprintf(stderr, "invctl channel watch: ack: %s\n", derr.msg);
        }
        fflush(stdout);
    }
    /* The last acks must reach the server before the connection closes. */
    sf_batch_release(batch);
    rc = 0;
out:
    if (err.status)
        fprintf(stderr, "invctl channel watch: %s\n", err.msg);
    sf_batch_destroy(batch);
    sf_sub_free(sub);
    sf_codec_free(codec);
    sf_broker_close(b);
    return rc;
}
