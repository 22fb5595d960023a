/*
 * cmd_ingest.c — `mintgate ingest`: run the ingest stage with a sink that
 * prints each decoded event as a JSON line (--print) or only counts them.
 * For operators checking what a topic holds after decoding, and for tests
 * that account for every message. `mintgate score` is the same consumer
 * with the scoring stage as its sink.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mg_log.h"

struct print_sink {
        int print;       /* write events to stdout */
        FILE *out;       /* stdout */
};

static mg_err_t print_deliver_cb(void *opaque, struct mg_ingest_batch *batch,
                                 char *errstr, size_t errstr_size) {
        struct print_sink *ps = opaque;
        size_t i, n = mg_ingest_batch_count(batch);

        if (!ps->print)
                return MG_OK;
        for (i = 0; i < n; i++) {
                const struct mg_event *ev = mg_ingest_batch_event(batch, i);
                char *json = mg_event_to_json(ev);

                if (!json)
                        return mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                          "out of memory");
                fprintf(ps->out,
                        "{\"topic\":\"%s\",\"partition\":%" PRId32
                        ",\"offset\":%" PRId64 ",\"event\":%s}\n",
                        ev->origin.topic, ev->origin.partition,
                        ev->origin.offset, json);
                free(json);
        }
        /* Durable means written: a full disk must not ack the batch. */
        if (fflush(ps->out) != 0)
                return mg_err_set(MG_ERR_IO, errstr, errstr_size,
                                  "cannot write decoded events to stdout");
        return MG_OK;
}

static void ingest_usage(FILE *fp) {
        fprintf(fp,
                "Usage: mintgate ingest [options]\n\n"
                "Consumes the input topics in a consumer group, decodes and "
                "validates each\nmessage, dead-letters bad ones to the DLQ "
                "topic, commits what it handled.\n\n" CLI_COMMON_HELP
                CLI_CONSUMER_HELP
                "      --print           print each event as a JSON line\n"
                "      --max N           stop after N messages\n\n"
                "At the end prints a summary of what was consumed, "
                "delivered and\ndead-lettered (by reason) on stderr.\n");
}

int cmd_ingest_main(int argc, char **argv) {
        static const struct option longopts[] = {
                CLI_COMMON_LONGOPTS,
                CLI_CONSUMER_LONGOPTS,
                {"print", no_argument, NULL, 'P'},
                {"max", required_argument, NULL, 'M'},
                {NULL, 0, NULL, 0}};
        struct mg_ingest_run_opts ropts = {0, 0};
        struct print_sink psink = {0, stdout};
        struct mg_ingest_sink sink = {print_deliver_cb, NULL, NULL, &psink,
                                      NULL};
        struct mg_ingest_stats st;
        struct cli_common common;
        struct cli_conf cc;
        struct mg_ingest *ing = NULL;
        char errstr[512], *end;
        int c, r, rc;
        mg_err_t err;

        memset(&common, 0, sizeof(common));
        while ((c = getopt_long(argc, argv, "c:b:g:h", longopts, NULL)) !=
               -1) {
                if ((r = cli_common_opt(&common, c, optarg)) < 0)
                        return MG_EXIT_USAGE;
                if (r)
                        continue;
                switch (c) {
                case 'h':
                        ingest_usage(stdout);
                        return MG_EXIT_OK;
                case 'P':
                        psink.print = 1;
                        break;
                case 'M':
                        ropts.max_messages = strtoull(optarg, &end, 10);
                        if (*end || !ropts.max_messages) {
                                fprintf(stderr,
                                        "mintgate ingest: --max %s: expected "
                                        "a positive integer\n",
                                        optarg);
                                return MG_EXIT_USAGE;
                        }
                        break;
                default:
                        ingest_usage(stderr);
                        return MG_EXIT_USAGE;
                }
        }
        if ((rc = cli_no_operands(argc, argv, "ingest")) ||
            (rc = cli_conf_load(&cc, &common, "ingest")))
                return rc;
        ropts.idle_exit_ms = common.idle_exit_ms;
        if ((err = mg_ingest_new(&cc.ingest, &sink, &ing, errstr,
                                 sizeof(errstr)))) {
                fprintf(stderr, "mintgate ingest: %s\n", errstr);
                cli_conf_free(&cc);
                return err == MG_ERR_CONFIG ? MG_EXIT_USAGE : MG_EXIT_FAILURE;
        }
        cli_signals_stop_ingest(ing);
        err = mg_ingest_run(ing, &ropts, errstr, sizeof(errstr));
        mg_ingest_stats_get(ing, &st);
        cli_signals_stop_ingest(NULL);
        rc = MG_EXIT_OK;
        if (err) {
                fprintf(stderr, "mintgate ingest: %s\n", errstr);
                rc = MG_EXIT_FAILURE;
        }
        fprintf(stderr,
                "mintgate ingest: consumed %" PRIu64 ", delivered %" PRIu64
                " (auth %" PRIu64 ", usage %" PRIu64 ", signal %" PRIu64
                "), dead-lettered %" PRIu64,
                st.consumed, st.delivered, st.by_type[MG_EVENT_AUTH],
                st.by_type[MG_EVENT_USAGE], st.by_type[MG_EVENT_SIGNAL],
                st.dead_lettered);
        cli_print_dlq_reasons(stderr, &st);
        fprintf(stderr, ", retries %" PRIu64 "\n", st.retries);
        mg_ingest_destroy(ing);
        cli_conf_free(&cc);
        return rc;
}
