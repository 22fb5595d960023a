/*
 * cli_score.c — the ingest sink that feeds the scorer, shared by `score` and
 * `dev`: a batch from ingest goes to mg_scorer_apply(); events the scorer
 * refuses (late) are dead-lettered through the batch; ingest's periodic
 * flush is mg_scorer_flush(), after which the offsets are committed; a
 * revocation clears the scorer's cache, since another worker may own those
 * identities now.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mg_log.h"

static mg_err_t score_deliver_cb(void *opaque, struct mg_ingest_batch *batch,
                                 char *errstr, size_t errstr_size) {
        struct cli_score_sink *ss = opaque;
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
        err = mg_scorer_apply(ss->sc, ss->evs, n, ss->verdicts, NULL,
                              errstr, errstr_size);
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
        if (ss->observe_cb)
                ss->observe_cb(ss->observe_opaque, ss->evs, ss->verdicts, n);
        now = mg_time_now_ms();
        if (ss->report_every_ms && now >= ss->next_report_ms) {
                struct mg_scorer_stats st;

                mg_scorer_stats_get(ss->sc, &st);
                mg_log_info("score",
                            "applied %" PRIu64 ", replayed %" PRIu64
                            ", late %" PRIu64 ", risk changes %" PRIu64
                            ", loads %" PRIu64 ", saves %" PRIu64,
                            st.applied, st.replayed, st.late, st.published,
                            st.loads, st.saves);
                ss->next_report_ms = now + ss->report_every_ms;
        }
        return MG_OK;
}

static mg_err_t score_flush_cb(void *opaque, char *errstr,
                               size_t errstr_size) {
        struct cli_score_sink *ss = opaque;

        return mg_scorer_flush(ss->sc, errstr, errstr_size);
}

static void score_partitions_cb(void *opaque, int assigned,
                                const rd_kafka_topic_partition_list_t *parts) {
        struct cli_score_sink *ss = opaque;

        /* Ingest flushed before this revocation: forget identities that
         * another worker may own now. */
        if (!assigned)
                mg_scorer_cache_clear(ss->sc);
}

static void score_reload_key_cb(void *opaque, const struct mg_conf_prop *prop) {
        if (prop->reloadable)
                mg_log_info("score", "reload: %s changed", prop->name);
        else
                mg_log_warn("score",
                            "reload: %s changed but needs a restart; the "
                            "running value stays",
                            prop->name);
}

static void score_reload(struct cli_score_sink *ss) {
        struct cli_conf *cc = calloc(1, sizeof(*cc));
        struct cli_conf *cur = ss->reloaded ? ss->reloaded : ss->running;
        size_t n;

        *ss->reload = 0;
        if (!cc || cli_conf_load(cc, ss->common, "score: reload")) {
                mg_log_error("score", "reload failed%s; the running "
                                      "settings stay",
                             cc ? " (error above)" : ": out of memory");
                free(cc);
                return;
        }
        n = mg_conf_diff(cur->conf, cc->conf, score_reload_key_cb, NULL);
        /* scoring.asn_file needs a restart: keep the table loaded at
         * start (owned by the running configuration). */
        cc->scoring.asn = ss->running->scoring.asn;
        mg_scorer_set_conf(ss->sc, &cc->scoring);
        if (ss->reloaded) {
                cli_conf_free(ss->reloaded);
                free(ss->reloaded);
        }
        ss->reloaded = cc;
        mg_log_info("score",
                    "configuration reloaded (%zu keys changed); baselines "
                    "kept",
                    n);
}

static void score_tick_cb(void *opaque) {
        struct cli_score_sink *ss = opaque;

        if (ss->reload && *ss->reload)
                score_reload(ss);
}

void cli_score_sink_init(struct cli_score_sink *ss,
                         struct mg_ingest_sink *sink) {
        sink->deliver_cb = score_deliver_cb;
        sink->flush_cb = score_flush_cb;
        sink->partitions_cb = score_partitions_cb;
        sink->opaque = ss;
        sink->tick_cb = score_tick_cb;
}

void cli_score_sink_free(struct cli_score_sink *ss) {
        if (ss->reloaded) {
                cli_conf_free(ss->reloaded);
                free(ss->reloaded);
        }
        mg_scorer_destroy(ss->sc);
        free(ss->evs);
        free(ss->verdicts);
        memset(ss, 0, sizeof(*ss));
}
