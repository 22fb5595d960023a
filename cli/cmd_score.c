/*
 * cmd_score.c — `mintgate score`: the ingest + scoring worker. The ingest
 * stage (consumer group, decode, validate, DLQ, commits) with the scorer as
 * its sink: a batch is acknowledged only once its baselines, offsets and
 * risk changes are saved in Redis. Run more workers with the same group to
 * spread identities over them. SIGHUP reloads the configuration file:
 * the scoring keys (weights, thresholds, warm-ups, half-lives) apply from
 * the next batch and every baseline is kept.
 */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "mg_log.h"

static volatile sig_atomic_t score_hup;

static void score_on_hup(int sig) {
        (void)sig;
        score_hup = 1;
}

static void score_usage(FILE *fp) {
        fprintf(fp,
                "Usage: mintgate score [options]\n\n"
                "Consumes mg.auth, mg.usage and mg.signals, keeps each "
                "identity's baseline and\nlive risk in Redis, publishes risk "
                "changes on redis.risk_channel. Offsets are\ncommitted only "
                "after Redis has the effects; while Redis is unreachable, "
                "it\npauses and resumes by itself. SIGHUP reloads the "
                "configuration file: scoring\nkeys apply from the next batch, "
                "baselines are kept.\n\n" CLI_COMMON_HELP
                CLI_CONSUMER_HELP);
}

int cmd_score_main(int argc, char **argv) {
        static const struct option longopts[] = {
                CLI_COMMON_LONGOPTS,
                CLI_CONSUMER_LONGOPTS,
                {NULL, 0, NULL, 0}};
        struct mg_ingest_run_opts ropts = {0, 0};
        struct cli_score_sink ss;
        struct mg_ingest_sink sink;
        struct mg_scorer_stats st;
        struct mg_ingest_stats ist;
        struct cli_common common;
        struct cli_conf cc;
        struct mg_store store;
        struct mg_ingest *ing = NULL;
        char errstr[512];
        int c, r, rc = MG_EXIT_FAILURE;
        mg_err_t err;

        memset(&common, 0, sizeof(common));
        memset(&ss, 0, sizeof(ss));
        ss.report_every_ms = 10000;
        while ((c = getopt_long(argc, argv, "c:b:g:h", longopts, NULL)) !=
               -1) {
                if ((r = cli_common_opt(&common, c, optarg)) < 0)
                        return MG_EXIT_USAGE;
                if (r)
                        continue;
                switch (c) {
                case 'h':
                        score_usage(stdout);
                        return MG_EXIT_OK;
                default:
                        score_usage(stderr);
                        return MG_EXIT_USAGE;
                }
        }
        if ((r = cli_no_operands(argc, argv, "score")) ||
            (r = cli_conf_load(&cc, &common, "score")) ||
            (r = cli_asn_load(&cc, "score")))
                return r;
        ropts.idle_exit_ms = common.idle_exit_ms;
        if ((err = mg_store_redis_new(&cc.redis, &store, errstr,
                                      sizeof(errstr))) ||
            (err = mg_scorer_new(&cc.scoring, &cc.worker, &store, &ss.sc,
                                 errstr, sizeof(errstr)))) {
                fprintf(stderr, "mintgate score: %s\n", errstr);
                rc = err == MG_ERR_CONFIG ? MG_EXIT_USAGE : MG_EXIT_FAILURE;
                goto out;
        }
        cli_score_sink_init(&ss, &sink);
        ss.reload = &score_hup;
        ss.common = &common;
        ss.running = &cc;
        signal(SIGHUP, score_on_hup);
        if ((err = mg_ingest_new(&cc.ingest, &sink, &ing, errstr,
                                 sizeof(errstr)))) {
                fprintf(stderr, "mintgate score: %s\n", errstr);
                rc = err == MG_ERR_CONFIG ? MG_EXIT_USAGE : MG_EXIT_FAILURE;
                goto out;
        }
        cli_signals_stop_ingest(ing);
        mg_log_info("score", "consuming %s, %s, %s as group %s; Redis %s",
                    cc.ingest.topic_auth, cc.ingest.topic_usage,
                    cc.ingest.topic_signals, cc.ingest.group_id,
                    cc.redis.addr);
        err = mg_ingest_run(ing, &ropts, errstr, sizeof(errstr));
        cli_signals_stop_ingest(NULL);
        rc = MG_EXIT_OK;
        if (err) {
                fprintf(stderr, "mintgate score: %s\n", errstr);
                rc = MG_EXIT_FAILURE;
        }
        mg_scorer_stats_get(ss.sc, &st);
        mg_ingest_stats_get(ing, &ist);
        fprintf(stderr,
                "mintgate score: consumed %" PRIu64 ", applied %" PRIu64
                ", replayed %" PRIu64 ", late %" PRIu64
                ", dead-lettered %" PRIu64 ", risk changes %" PRIu64
                ", retries %" PRIu64 ", alignment pauses %" PRIu64 "\n",
                ist.consumed, st.applied, st.replayed, st.late,
                ist.dead_lettered, st.published, ist.retries,
                ist.align_pauses);
out:
        mg_ingest_destroy(ing);
        cli_score_sink_free(&ss);
        cli_conf_free(&cc);
        return rc;
}
