/*
 * cmd_score.c — `mintgate score`: the ingest + scoring worker. The ingest
 * stage (consumer group, decode, validate, DLQ, commits) with the scorer as
 * its sink: a batch is acknowledged only once its baselines, offsets and
 * risk changes are saved in Redis. Run more workers with the same group to
 * spread identities over them.
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

/* The sink: ingest batches into the scorer. */
struct score_sink {
        struct mg_scorer *sc;            /* the scoring stage */
        const struct mg_event **evs;     /* scratch: the batch's events */
        mg_err_t *verdicts;              /* scratch: per event */
        size_t cap;                      /* entries in both */
        int64_t next_report_ms;          /* when to log counters next */
};

static mg_err_t score_deliver_cb(void *opaque, struct mg_ingest_batch *batch,
                                 char *errstr, size_t errstr_size) {
        struct score_sink *ss = opaque;
        size_t i, n = mg_ingest_batch_count(batch);
        int64_t now;
        mg_err_t err;

        if (n > ss->cap) {
                void *a = realloc(ss->evs, n * sizeof(*ss->evs));
                void *b = a ? realloc(ss->verdicts, n * sizeof(*ss->verdicts))
                            : NULL;

                if (a)
                        ss->evs = a;
                if (b)
                        ss->verdicts = b;
                if (!a || !b)
                        return mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                          "out of memory");
                ss->cap = n;
        }
        for (i = 0; i < n; i++)
                ss->evs[i] = mg_ingest_batch_event(batch, i);
        err = mg_scorer_apply(ss->sc, ss->evs, n, ss->verdicts, errstr,
                              errstr_size);
        if (err)
                return err;
        for (i = 0; i < n; i++)
                if (ss->verdicts[i])
                        mg_ingest_batch_reject(
                                batch, i, ss->verdicts[i],
                                ss->verdicts[i] == MG_ERR_LATE
                                        ? "event time is older than the "
                                          "identity's newest event by more "
                                          "than scoring.late_bound"
                                        : NULL);
        now = mg_time_now_ms();
        if (now >= ss->next_report_ms) {
                struct mg_scorer_stats st;

                mg_scorer_stats_get(ss->sc, &st);
                mg_log_info("score",
                            "applied %" PRIu64 ", replayed %" PRIu64
                            ", late %" PRIu64 ", risk changes %" PRIu64
                            ", loads %" PRIu64 ", saves %" PRIu64,
                            st.applied, st.replayed, st.late, st.published,
                            st.loads, st.saves);
                ss->next_report_ms = now + 10000;
        }
        return MG_OK;
}

static void score_partitions_cb(void *opaque, int assigned,
                                const rd_kafka_topic_partition_list_t *parts) {
        struct score_sink *ss = opaque;

        /* Another worker may own some of these identities now. */
        mg_scorer_cache_clear(ss->sc);
}

static struct mg_ingest *volatile score_ingest;

static void score_on_signal(int sig) {
        (void)sig;
        if (score_ingest)
                mg_ingest_stop(score_ingest);
}

static void score_usage(FILE *fp) {
        fprintf(fp,
                "Usage: mintgate score [options]\n\n"
                "Consumes mg.auth, mg.usage and mg.signals, keeps each "
                "identity's baseline and\nlive risk in Redis, publishes risk "
                "changes on redis.risk_channel. Offsets are\ncommitted only "
                "after Redis has the effects; while Redis is unreachable, "
                "it\npauses and resumes by itself.\n\n" CLI_COMMON_HELP
                "  -g, --group ID        consumer group (ingest.group_id)\n"
                "      --idle-exit MS    stop after MS without messages\n");
}

int cmd_score_main(int argc, char **argv) {
        static const struct option longopts[] = {
                CLI_COMMON_LONGOPTS,
                {"group", required_argument, NULL, 'g'},
                {"idle-exit", required_argument, NULL, 'I'},
                {NULL, 0, NULL, 0}};
        struct mg_ingest_run_opts ropts = {0, 0};
        struct score_sink ss;
        struct mg_ingest_sink sink = {score_deliver_cb, score_partitions_cb,
                                      &ss};
        struct mg_scorer_stats st;
        struct mg_ingest_stats ist;
        struct cli_common common;
        struct cli_conf cc;
        struct mg_store store;
        struct mg_ingest *ing = NULL;
        const char *group = NULL;
        char errstr[512];
        int c, r, rc = MG_EXIT_FAILURE;
        mg_err_t err;

        memset(&common, 0, sizeof(common));
        memset(&ss, 0, sizeof(ss));
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
                case 'g':
                        group = optarg;
                        break;
                case 'I':
                        if (mg_conf_parse_ms(optarg, &ropts.idle_exit_ms) ||
                            ropts.idle_exit_ms <= 0) {
                                fprintf(stderr,
                                        "mintgate score: --idle-exit %s: "
                                        "expected a duration\n",
                                        optarg);
                                return MG_EXIT_USAGE;
                        }
                        break;
                default:
                        score_usage(stderr);
                        return MG_EXIT_USAGE;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "mintgate score: unexpected argument '%s'\n",
                        argv[optind]);
                return MG_EXIT_USAGE;
        }
        if ((r = cli_conf_load(&cc, &common, "score")))
                return r;
        if (group && mg_conf_set(cc.conf, "ingest.group_id", group, errstr,
                                 sizeof(errstr))) {
                fprintf(stderr, "mintgate score: --group: %s\n", errstr);
                rc = MG_EXIT_USAGE;
                goto out;
        }
        if ((err = mg_store_redis_new(&cc.redis, &store, errstr,
                                      sizeof(errstr))) ||
            (err = mg_scorer_new(&cc.scoring, &cc.worker, &store, &ss.sc,
                                 errstr, sizeof(errstr)))) {
                fprintf(stderr, "mintgate score: %s\n", errstr);
                rc = err == MG_ERR_CONFIG ? MG_EXIT_USAGE : MG_EXIT_FAILURE;
                goto out;
        }
        if ((err = mg_ingest_new(&cc.ingest, &sink, &ing, errstr,
                                 sizeof(errstr)))) {
                fprintf(stderr, "mintgate score: %s\n", errstr);
                rc = err == MG_ERR_CONFIG ? MG_EXIT_USAGE : MG_EXIT_FAILURE;
                goto out;
        }
        score_ingest = ing;
        cli_signals_handle(score_on_signal);
        mg_log_info("score", "consuming %s, %s, %s as group %s; Redis %s",
                    cc.ingest.topic_auth, cc.ingest.topic_usage,
                    cc.ingest.topic_signals, cc.ingest.group_id,
                    cc.redis.addr);
        err = mg_ingest_run(ing, &ropts, errstr, sizeof(errstr));
        score_ingest = NULL;
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
                ", retries %" PRIu64 "\n",
                ist.consumed, st.applied, st.replayed, st.late,
                ist.dead_lettered, st.published, ist.retries);
out:
        mg_ingest_destroy(ing);
        mg_scorer_destroy(ss.sc);
        free(ss.evs);
        free(ss.verdicts);
        cli_conf_free(&cc);
        return rc;
}
