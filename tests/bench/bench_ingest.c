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

static double now_s(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;

        return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
        qsort(v, (size_t)n, sizeof(*v), cmp_double);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void die(const char *what, const char *errstr) {
        fprintf(stderr, "bench_ingest: %s: %s\n", what, errstr);
        exit(1);
}

/* A realistic mix: 45% auth, 50% usage, 5% signals, 2,000 identities. */
static void make_event(struct mg_event *ev, uint64_t i, int64_t now_ms) {
        char line[1024];
        char errstr[256];
        unsigned r = (unsigned)((i * 2654435761u) % 100);
        unsigned id = (unsigned)((i * 40503u) % 2000);
        int64_t ts = now_ms - (int64_t)(i % 3600000);

        if (r < 45)
                snprintf(line, sizeof(line),
                         "{\"type\":\"auth\",\"event_id\":\"a-%" PRIu64
                         "\",\"ts\":%" PRId64
                         ",\"identity\":\"spiffe://corp/ns/sa-%u\","
                         "\"identity_kind\":\"workload\",\"client_id\":"
                         "\"client-%u\",\"source_ip\":\"203.0.113.%u\","
                         "\"user_agent\":\"runner/2.3\",\"auth_method\":"
                         "\"jwt_svid\",\"grant_type\":\"client_credentials\","
                         "\"audience\":\"api://deploy\",\"scopes\":"
                         "[\"deploy:write\",\"logs:read\"],\"outcome\":"
                         "\"success\",\"token_id\":\"t-%" PRIu64 "\"}",
                         i, ts, id, id % 50, id % 256, i);
        else if (r < 95)
                snprintf(line, sizeof(line),
                         "{\"type\":\"usage\",\"event_id\":\"u-%" PRIu64
                         "\",\"ts\":%" PRId64
                         ",\"identity\":\"spiffe://corp/ns/sa-%u\","
                         "\"token_id\":\"t-%" PRIu64 "\",\"resource\":"
                         "\"api://deploy\",\"action\":\"POST /releases\","
                         "\"scope\":\"deploy:write\",\"source_ip\":"
                         "\"203.0.113.%u\",\"status\":201,\"bytes\":5120}",
                         i, ts, id, i, id % 256);
        else
                snprintf(line, sizeof(line),
                         "{\"type\":\"signal\",\"event_id\":\"s-%" PRIu64
                         "\",\"ts\":%" PRId64
                         ",\"identity\":\"spiffe://corp/ns/sa-%u\","
                         "\"kind\":\"secret_exposed\",\"severity\":90,"
                         "\"source\":\"secret-scanner\",\"detail\":"
                         "\"token found in public repo\"}",
                         i, ts, id);
        if (mg_event_from_json(ev, line, strlen(line), now_ms, errstr,
                               sizeof(errstr)))
                die("make_event", errstr);
}

static void fill(const char *bootstrap, uint64_t n) {
        static const char *const topics[] = {"mg.auth", "mg.usage",
                                             "mg.signals"};
        static struct mg_event ev;
        struct mg_avro_registry *reg;
        struct mg_avro_encoder *enc;
        rd_kafka_conf_t *kconf = rd_kafka_conf_new();
        unsigned char buf[MG_AVRO_MSG_MAX];
        char errstr[512];
        int64_t now_ms = mg_time_now_ms();
        rd_kafka_t *rk;
        uint64_t i;
        size_t len;

        if (mg_avro_registry_new(&reg, errstr, sizeof(errstr)) ||
            mg_avro_encoder_new(reg, MG_AVRO_SINGLE_OBJECT, &enc, errstr,
                                sizeof(errstr)))
                die("encoder", errstr);
        rd_kafka_conf_set(kconf, "bootstrap.servers", bootstrap, NULL, 0);
        rd_kafka_conf_set(kconf, "linger.ms", "20", NULL, 0);
        rd_kafka_conf_set(kconf, "batch.size", "1000000", NULL, 0);
        rd_kafka_conf_set(kconf, "queue.buffering.max.messages", "2000000",
                          NULL, 0);
        if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, kconf, errstr,
                                sizeof(errstr))))
                die("producer", errstr);
        for (i = 0; i < n; i++) {
                make_event(&ev, i, now_ms);
                if (mg_avro_encode(enc, &ev, NULL, buf, sizeof(buf), &len,
                                   errstr, sizeof(errstr)))
                        die("encode", errstr);
                while (rd_kafka_producev(
                               rk, RD_KAFKA_V_TOPIC(topics[ev.type]),
                               RD_KAFKA_V_KEY(ev.identity,
                                              strlen(ev.identity)),
                               RD_KAFKA_V_VALUE(buf, len),
                               RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                               RD_KAFKA_V_END) ==
                       RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        rd_kafka_poll(rk, 10);
                rd_kafka_poll(rk, 0);
        }
        if (rd_kafka_flush(rk, 60000))
                die("flush", "timed out");
        rd_kafka_destroy(rk);
        mg_avro_encoder_destroy(enc);
        mg_avro_registry_destroy(reg);
}

static double bare_assigned_at;

static void bare_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t kerr,
                              rd_kafka_topic_partition_list_t *parts,
                              void *opaque) {
        if (kerr == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                rd_kafka_assign(rk, parts);
                bare_assigned_at = now_s();
        } else {
                rd_kafka_assign(rk, NULL);
        }
}

/* (a) bare consumer: returns messages/s from assignment to last message. */
static double run_bare(const char *bootstrap, const char *group, uint64_t n) {
        rd_kafka_conf_t *kconf = rd_kafka_conf_new();
        rd_kafka_topic_partition_list_t *topics =
                rd_kafka_topic_partition_list_new(3);
        rd_kafka_message_t *msgs[500];
        char errstr[512];
        double t1 = 0;
        uint64_t got = 0;
        rd_kafka_queue_t *rkqu;
        rd_kafka_t *rk;
        ssize_t r, i;

        rd_kafka_conf_set(kconf, "bootstrap.servers", bootstrap, NULL, 0);
        rd_kafka_conf_set(kconf, "group.id", group, NULL, 0);
        rd_kafka_conf_set(kconf, "auto.offset.reset", "earliest", NULL, 0);
        rd_kafka_conf_set(kconf, "enable.auto.offset.store", "false", NULL,
                          0);
        rd_kafka_conf_set_rebalance_cb(kconf, bare_rebalance_cb);
        if (!(rk = rd_kafka_new(RD_KAFKA_CONSUMER, kconf, errstr,
                                sizeof(errstr))))
                die("consumer", errstr);
        rd_kafka_poll_set_consumer(rk);
        rkqu = rd_kafka_queue_get_consumer(rk);
        rd_kafka_topic_partition_list_add(topics, "mg.auth", -1);
        rd_kafka_topic_partition_list_add(topics, "mg.usage", -1);
        rd_kafka_topic_partition_list_add(topics, "mg.signals", -1);
        rd_kafka_subscribe(rk, topics);
        rd_kafka_topic_partition_list_destroy(topics);
        while (got < n) {
                r = rd_kafka_consume_batch_queue(rkqu, 1000, msgs, 500);
                for (i = 0; i < r; i++) {
                        if (!msgs[i]->err)
                                got++;
                        rd_kafka_message_destroy(msgs[i]);
                }
        }
        t1 = now_s();
        rd_kafka_queue_destroy(rkqu);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        return (double)n / (t1 - bare_assigned_at);
}

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
                fprintf(stderr, "first batch %zu at %.3f\n", n, now_s());
        cs->got += n;
        cs->t_last = now_s();
        return MG_OK;
}

/* (b) ingest: returns events/s from assignment to the last batch. */
static double run_ingest(const char *bootstrap, const char *group,
                         uint64_t n) {
        struct mg_conf *conf = mg_conf_new();
        struct mg_ingest_conf ic;
        struct count_sink cs = {0, 0};
        struct mg_ingest_stats st;
        struct mg_ingest_sink sink = {count_cb, NULL, &cs};
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
                die("conf", errstr);
        if (mg_ingest_new(&ic, &sink, &ing, errstr, sizeof(errstr)))
                die("ingest", errstr);
        if (mg_ingest_run(ing, &ropts, errstr, sizeof(errstr)))
                die("ingest run", errstr);
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
                die("broker", errstr);
        t = now_s();
        fill(mg_broker_bootstrap(broker), n);
        printf("bench_ingest: %" PRIu64 " events in the embedded broker "
               "(filled in %.2f s), %d rounds\n",
               n, now_s() - t, rounds);
        for (i = 0; i < rounds; i++) {
                snprintf(group, sizeof(group), "bench-ingest-%d", i);
                ing[i] = run_ingest(mg_broker_bootstrap(broker), group, n);
                snprintf(group, sizeof(group), "bench-bare-%d", i);
                bare[i] = run_bare(mg_broker_bootstrap(broker), group, n);
                printf("  round %d: bare consumer %9.0f msg/s   ingest "
                       "(decode+validate) %9.0f ev/s   ratio %.2f\n",
                       i + 1, bare[i], ing[i], ing[i] / bare[i]);
                fflush(stdout);
        }
        mb = median(bare, rounds);
        mi = median(ing, rounds);
        printf("median: bare consumer %.0f msg/s, ingest %.0f ev/s, "
               "ratio %.2f (target >= 0.80)\n",
               mb, mi, mi / mb);
        mg_broker_destroy(broker);
        free(bare);
        free(ing);
        return 0;
}
