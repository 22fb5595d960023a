/*
 * bench_ingest.c — ingest throughput against a bare librdkafka consumer.
 *
 * Fills the embedded broker (in-process mock cluster) with N Avro events
 * over mg.auth / mg.usage / mg.signals, then alternates, R rounds each:
 *   (a) a bare librdkafka consumer group reading all N messages and doing
 *       nothing with them (rd_kafka_consume_batch_queue, destroy);
 *   (b) the ingest stage (mg_ingest) decoding and validating all N and
 *       handing them to a sink that only counts.
 * Each round uses a fresh consumer group and is timed from the moment its
 * partitions are assigned to its Nth message, so both include fetching from
 * the broker and neither includes the group join (the mock coordinator
 * delays a new group's first assignment by 3 s). Prints every round, the
 * medians and the ratio of medians (target: >= 0.8).
 *
 * Usage: bench_ingest [N events, default 500000] [R rounds, default 5]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "mg_avro.h"
#include "mg_broker.h"
#include "mg_config.h"
#include "mg_ingest.h"

#include "bench_common.h"

/* The counting sink of (b). */
struct count_sink {
        uint64_t got;   /* events delivered */
        double t_last;  /* time the last batch was acknowledged */
};

static mg_err_t count_cb(void *opaque, struct mg_ingest_batch *batch,
                         char *errstr, size_t errstr_size) {
        struct count_sink *cs = opaque;
        size_t n = mg_ingest_batch_count(batch);

        if (!cs->got && getenv("BENCH_DEBUG"))
                fprintf(stderr, "first batch %zu at %.3f\n", n, bench_now());
        cs->got += n;
        cs->t_last = bench_now();
        return MG_OK;
}

/* (b) ingest: returns events/s from assignment to the last batch. */
static double run_ingest(const char *bootstrap, const char *group,
                         uint64_t n) {
        struct mg_conf *conf = mg_conf_new();
        struct mg_ingest_conf ic;
        struct count_sink cs = {0, 0};
        struct mg_ingest_stats st;
        struct mg_ingest_sink sink = {count_cb, NULL, NULL, &cs, NULL};
        struct mg_ingest_run_opts ropts = {0, n};
        struct mg_ingest *ing;
        char errstr[512];

        memset(&ic, 0, sizeof(ic));
        if (mg_conf_add_section(conf, "Ingest", mg_ingest_conf_props,
                                mg_ingest_conf_prop_cnt, &ic, errstr,
                                sizeof(errstr)) ||
            mg_conf_set(conf, "kafka.bootstrap.servers", bootstrap, errstr,
                        sizeof(errstr)) ||
            mg_conf_set(conf, "ingest.group_id", group, errstr,
                        sizeof(errstr)) ||
            (getenv("BENCH_BATCH") &&
             mg_conf_set(conf, "ingest.batch_size", getenv("BENCH_BATCH"),
                         errstr, sizeof(errstr))) ||
            (getenv("BENCH_KAFKA_K") &&
             mg_conf_set(conf, getenv("BENCH_KAFKA_K"), getenv("BENCH_KAFKA_V"),
                         errstr, sizeof(errstr))) ||
            (getenv("BENCH_WAIT") &&
             mg_conf_set(conf, "ingest.batch_wait", getenv("BENCH_WAIT"),
                         errstr, sizeof(errstr))))
                bench_die("conf", errstr);
        if (mg_ingest_new(&ic, &sink, &ing, errstr, sizeof(errstr)))
                bench_die("ingest", errstr);
        if (mg_ingest_run(ing, &ropts, errstr, sizeof(errstr)))
                bench_die("ingest run", errstr);
        if (cs.got != n) {
                fprintf(stderr, "bench_ingest: ingest delivered %" PRIu64
                                " of %" PRIu64 "\n",
                        cs.got, n);
                exit(1);
        }
        mg_ingest_stats_get(ing, &st);
        if (getenv("BENCH_DEBUG"))
                fprintf(stderr, "assigned at %.3f, last %.3f\n",
                        (double)st.assigned_us / 1e6, cs.t_last);
        mg_ingest_destroy(ing);
        mg_conf_destroy(conf);
        return (double)n / (cs.t_last - (double)st.assigned_us / 1e6);
}

int main(int argc, char **argv) {
        static const char *const topics[] = {"mg.auth", "mg.usage",
                                             "mg.signals", "mg.dlq"};
        uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 500000;
        int rounds = argc > 2 ? atoi(argv[2]) : 5, i;
        /* 16 partitions keep each under the mock's ~5 MB retention. */
        struct mg_broker_opts bopts = {"127.0.0.1", 0, topics, 4, getenv("BENCH_PARTS") ? atoi(getenv("BENCH_PARTS")) : 16};
        struct mg_broker *broker;
        double *bare, *ing, mb, mi, t;
        char errstr[512], group[64];

        if (n < 1000 || rounds < 1) {
                fprintf(stderr, "usage: bench_ingest [N>=1000] [R>=1]\n");
                return 2;
        }
        bare = calloc((size_t)rounds, sizeof(*bare));
        ing = calloc((size_t)rounds, sizeof(*ing));
        if (mg_broker_new(&bopts, &broker, errstr, sizeof(errstr)))
                bench_die("broker", errstr);
        t = bench_now();
        bench_fill(mg_broker_bootstrap(broker), n, 2000);
        printf("bench_ingest: %" PRIu64 " events in the embedded broker "
               "(filled in %.2f s), %d rounds\n",
               n, bench_now() - t, rounds);
        for (i = 0; i < rounds; i++) {
                snprintf(group, sizeof(group), "bench-ingest-%d", i);
                ing[i] = run_ingest(mg_broker_bootstrap(broker), group, n);
                snprintf(group, sizeof(group), "bench-bare-%d", i);
                bare[i] = bench_bare_consumer(mg_broker_bootstrap(broker),
                                              group, n);
                printf("  round %d: bare consumer %9.0f msg/s   ingest "
                       "(decode+validate) %9.0f ev/s   ratio %.2f\n",
                       i + 1, bare[i], ing[i], ing[i] / bare[i]);
                fflush(stdout);
        }
        mb = bench_median(bare, rounds);
        mi = bench_median(ing, rounds);
        printf("median: bare consumer %.0f msg/s, ingest %.0f ev/s, "
               "ratio %.2f (target >= 0.80)\n",
               mb, mi, mi / mb);
        mg_broker_destroy(broker);
        free(bare);
        free(ing);
        return 0;
}
