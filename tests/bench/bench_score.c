/*
 * bench_score.c — end-to-end scoring against a bare librdkafka consumer,
 * Redis memory per identity, and event-to-risk-visible latency.
 *
 * One run, against the embedded broker (in-process) and a real
 * redis-server (child process):
 *   1. throughput: N events over 2,000 identities; R rounds alternating a
 *      bare consumer group reading all N, and the ingest + scoring stage
 *      (decode, validate, score, persist in Redis, acknowledge) with Redis
 *      flushed before each round; both timed from partition assignment to
 *      the Nth message; medians and their ratio (target >= 0.5);
 *   2. memory: Redis used_memory after a round, less the empty server's,
 *      per identity (target <= 2 KB), and MEMORY USAGE of both keys of a
 *      sample of identities;
 *   3. freshness: a steady 50,000 events/s for D seconds into fresh topics
 *      while a scorer runs; 1% of the events are probes (an external
 *      secret_exposed signal for a fresh identity), whose risk change a
 *      subscriber on the risk channel receives. Latency = produce call to
 *      publication received; p50/p99 (target p99 < 50 ms).
 *
 * Usage: bench_score [N, default 300000] [R, default 3] [D s, default 10]
 *                    [rate events/s, default 50000]
 * BENCH_CONF="key=value,..." sets configuration keys of every scorer run
 * (e.g. BENCH_CONF=ingest.flush_interval=20ms,ingest.align_window=0).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <librdkafka/rdkafka.h>

#include "bench_common.h"
#include "mg_avro.h"
#include "mg_broker.h"
#include "mg_config.h"
#include "mg_ingest.h"
#include "mg_scorer.h"
#include "mg_store.h"

#define N_IDS 2000
#define PROBES_MAX 100000

/* Freshness run: probes and when each was seen where. */
struct fresh {
        const char *bootstrap;       /* broker */
        const struct bench_redis *rd; /* redis */
        const char *channel;         /* risk channel */
        double rate;                 /* events/s */
        double seconds;              /* duration */
        double sent_at[PROBES_MAX];  /* produce time of probe k */
        double seen_at[PROBES_MAX];  /* publication received, or 0 */
        double consumed_at[PROBES_MAX]; /* handed to the scorer, or 0 */
        double bare_at[PROBES_MAX];  /* read by the bare consumer, or 0 */
        int probes;                  /* probes sent */
        atomic_int stop;             /* subscriber stops */
        atomic_int ready;            /* subscriber subscribed */
        atomic_int bare_ready;       /* bare consumer polling */
};


/* Everything one scoring run needs, built from configuration tables as
 * `mintgate score` builds it. */
struct score_run {
        struct mg_conf *conf;
        struct mg_ingest_conf ic;
        struct mg_scoring_conf scf;
        struct mg_redis_conf rc;
        struct mg_worker_conf wc;
        struct mg_scorer *sc;
        struct mg_ingest *ing;
        const struct mg_event **evs;
        mg_err_t *verdicts;
        size_t cap;
        uint64_t accepted;           /* applied, not yet flushed */
        struct fresh *fresh;         /* freshness probes, or NULL */
        atomic_uint_fast64_t got;    /* events made durable */
        double t_last;               /* when the last batch was acked */
};

static mg_err_t run_deliver_cb(void *opaque, struct mg_ingest_batch *batch,
                               char *errstr, size_t errstr_size) {
        struct score_run *run = opaque;
        size_t i, n = mg_ingest_batch_count(batch);
        mg_err_t err;

        if (n > run->cap) {
                run->evs = realloc(run->evs, n * sizeof(*run->evs));
                run->verdicts = realloc(run->verdicts,
                                        n * sizeof(*run->verdicts));
                if (!run->evs || !run->verdicts)
                        bench_die("realloc", "out of memory");
                run->cap = n;
        }
        for (i = 0; i < n; i++) {
                run->evs[i] = mg_ingest_batch_event(batch, i);
                if (run->fresh &&
                    !strncmp(run->evs[i]->identity, "probe-", 6)) {
                        int k = atoi(run->evs[i]->identity + 6);

                        if (k >= 0 && k < PROBES_MAX &&
                            !run->fresh->consumed_at[k])
                                run->fresh->consumed_at[k] = bench_now();
                }
        }
        err = mg_scorer_apply(run->sc, run->evs, n, run->verdicts, NULL,
                              errstr, errstr_size);
        if (err)
                return err;
        run->accepted += n;
        return MG_OK;
}

static mg_err_t run_flush_cb(void *opaque, char *errstr, size_t errstr_size) {
        struct score_run *run = opaque;
        mg_err_t err = mg_scorer_flush(run->sc, errstr, errstr_size);

        if (!err) {
                atomic_fetch_add(&run->got, run->accepted);
                run->accepted = 0;
                run->t_last = bench_now();
        }
        return err;
}

static void run_partitions_cb(void *opaque, int assigned,
                              const rd_kafka_topic_partition_list_t *parts) {
        struct score_run *run = opaque;

        if (!assigned)
                mg_scorer_cache_clear(run->sc);
}

static void run_set(struct score_run *run, const char *key, const char *val) {
        char errstr[512];

        if (mg_conf_set(run->conf, key, val, errstr, sizeof(errstr)))
                bench_die(key, errstr);
}

static void run_init(struct score_run *run, const char *bootstrap,
                     const char *redis_addr, const char *group,
                     const char *topic_prefix) {
        struct mg_ingest_sink sink = {run_deliver_cb, run_flush_cb,
                                      run_partitions_cb, run, NULL};
        struct mg_store store;
        char errstr[512], key[64];

        memset(run, 0, sizeof(*run));
        run->conf = mg_conf_new();
        if (mg_conf_add_section(run->conf, "i", mg_ingest_conf_props,
                                mg_ingest_conf_prop_cnt, &run->ic, errstr,
                                sizeof(errstr)) ||
            mg_conf_add_section(run->conf, "s", mg_scoring_conf_props,
                                mg_scoring_conf_prop_cnt, &run->scf, errstr,
                                sizeof(errstr)) ||
            mg_conf_add_section(run->conf, "r", mg_redis_conf_props,
                                mg_redis_conf_prop_cnt, &run->rc, errstr,
                                sizeof(errstr)) ||
            mg_conf_add_section(run->conf, "w", mg_worker_conf_props,
                                mg_worker_conf_prop_cnt, &run->wc, errstr,
                                sizeof(errstr)))
                bench_die("conf", errstr);
        run_set(run, "kafka.bootstrap.servers", bootstrap);
        run_set(run, "ingest.group_id", group);
        run_set(run, "redis.addr", redis_addr);
        if (topic_prefix) {
                snprintf(key, sizeof(key), "%s.auth", topic_prefix);
                run_set(run, "ingest.topics.auth", key);
                snprintf(key, sizeof(key), "%s.usage", topic_prefix);
                run_set(run, "ingest.topics.usage", key);
                snprintf(key, sizeof(key), "%s.signals", topic_prefix);
                run_set(run, "ingest.topics.signals", key);
        }
        /* The mock broker answers a fetch with no data only after the
         * full fetch wait even if data arrives meanwhile; Kafka answers as
         * soon as data is there. */
        run_set(run, "ingest.fetch_wait", "5ms");
        if (getenv("BENCH_CONF")) {
                char *list = strdup(getenv("BENCH_CONF")), *save = NULL, *kv;

                for (kv = strtok_r(list, ",", &save); kv;
                     kv = strtok_r(NULL, ",", &save)) {
                        char *eq = strchr(kv, '=');

                        if (!eq)
                                bench_die("BENCH_CONF", kv);
                        *eq = '\0';
                        run_set(run, kv, eq + 1);
                }
                free(list);
        }
        if (mg_store_redis_new(&run->rc, &store, errstr, sizeof(errstr)) ||
            mg_scorer_new(&run->scf, &run->wc, &store, &run->sc, errstr,
                          sizeof(errstr)) ||
            mg_ingest_new(&run->ic, &sink, &run->ing, errstr,
                          sizeof(errstr)))
                bench_die("scorer", errstr);
}

static void run_free(struct score_run *run) {
        mg_ingest_destroy(run->ing);
        mg_scorer_destroy(run->sc);
        mg_conf_destroy(run->conf);
        free(run->evs);
        free(run->verdicts);
}

static void redis_cmd(const struct bench_redis *rd, const char *cmd,
                      long long *intp) {
        redisContext *c = redisConnect("127.0.0.1", rd->port);
        redisReply *r = c && !c->err ? redisCommand(c, cmd) : NULL;

        if (!r)
                bench_die("redis", cmd);
        if (intp)
                *intp = r->integer;
        freeReplyObject(r);
        redisFree(c);
}

static long long redis_used_memory(const struct bench_redis *rd) {
        redisContext *c = redisConnect("127.0.0.1", rd->port);
        redisReply *r = c && !c->err ? redisCommand(c, "INFO memory") : NULL;
        long long v = -1;
        const char *p;

        if (r && r->type == REDIS_REPLY_STRING &&
            (p = strstr(r->str, "used_memory:")))
                v = atoll(p + strlen("used_memory:"));
        freeReplyObject(r);
        redisFree(c);
        return v;
}

/* (b) of a round: messages/s from assignment to the last acked batch. */
static double run_score_round(const char *bootstrap,
                              const struct bench_redis *rd, const char *group,
                              uint64_t n) {
        struct mg_ingest_run_opts ropts = {0, n};
        struct mg_ingest_stats st;
        struct score_run run;
        char errstr[512];

        run_init(&run, bootstrap, rd->addr, group, NULL);
        if (mg_ingest_run(run.ing, &ropts, errstr, sizeof(errstr)))
                bench_die("ingest run", errstr);
        mg_ingest_stats_get(run.ing, &st);
        if (atomic_load(&run.got) != n)
                bench_die("score round", "not every event was scored");
        {
                struct mg_scorer_stats ss;

                mg_scorer_stats_get(run.sc, &ss);
                printf("    scorer: %" PRIu64 " batches, %" PRIu64
                       " flushes, %" PRIu64 " loads, %" PRIu64
                       " saves; time in load %.2f s, apply %.2f s, save "
                       "%.2f s\n",
                       ss.batches, ss.flushes, ss.loads, ss.saves,
                       ss.load_us / 1e6, ss.apply_us / 1e6, ss.save_us / 1e6);
        }
        run_free(&run);
        return (double)n / (run.t_last - (double)st.assigned_us / 1e6);
}

/* ---- freshness -------------------------------------------------------- */


static void *fresh_subscriber(void *arg) {
        struct fresh *fr = arg;
        redisContext *c = redisConnect("127.0.0.1", fr->rd->port);
        struct timeval tv = {0, 200 * 1000};
        void *reply;

        if (!c || c->err)
                bench_die("subscriber", "cannot connect");
        freeReplyObject(redisCommand(c, "SUBSCRIBE %s", fr->channel));
        redisSetTimeout(c, tv);
        atomic_store(&fr->ready, 1);
        while (!atomic_load(&fr->stop)) {
                redisReply *r;
                const char *p;

                if (redisGetReply(c, &reply) != REDIS_OK) {
                        /* timeout: reconnecting is not needed for a bench;
                         * hiredis marks the context broken, so reopen. */
                        redisFree(c);
                        c = redisConnect("127.0.0.1", fr->rd->port);
                        if (!c || c->err)
                                break;
                        freeReplyObject(
                                redisCommand(c, "SUBSCRIBE %s", fr->channel));
                        redisSetTimeout(c, tv);
                        continue;
                }
                r = reply;
                if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
                    r->element[2]->type == REDIS_REPLY_STRING &&
                    (p = strstr(r->element[2]->str, "\"probe-"))) {
                        int k = atoi(p + 7);

                        if (k >= 0 && k < PROBES_MAX && !fr->seen_at[k])
                                fr->seen_at[k] = bench_now();
                }
                freeReplyObject(r);
        }
        redisFree(c);
        return NULL;
}

/* One pre-encoded message of the paced stream. */
struct fresh_msg {
        int type;        /* topic index */
        int probe;       /* probe number, or -1 */
        size_t key_off, key_len, val_off, val_len; /* in the arena */
};

/* Paced producer: background mix plus one probe per 100 events. Every
 * message is encoded before the clock starts, so the producer costs the
 * two cores little more than librdkafka's own work. Event times are when
 * each message is due. */
static void fresh_produce(struct fresh *fr) {
        static const char *const topics[] = {"fresh.auth", "fresh.usage",
                                             "fresh.signals"};
        static struct mg_event ev;
        struct mg_avro_registry *reg;
        struct mg_avro_encoder *enc;
        rd_kafka_conf_t *kconf = rd_kafka_conf_new();
        uint64_t i, total = (uint64_t)(fr->rate * fr->seconds);
        struct fresh_msg *msgs = calloc(total, sizeof(*msgs));
        size_t arena_cap = total * 256, arena_len = 0, len;
        unsigned char *arena = malloc(arena_cap);
        char errstr[512];
        int64_t start_ms = mg_time_now_ms() + 1000;
        uint64_t burst = (uint64_t)(fr->rate / 1000.0) ? (uint64_t)(fr->rate / 1000.0) : 1;
        struct timespec tick;
        double t0;
        rd_kafka_t *rk;
        int probes = 0;

        if (!msgs || !arena)
                bench_die("fresh", "out of memory");
        if (mg_avro_registry_new(&reg, errstr, sizeof(errstr)) ||
            mg_avro_encoder_new(reg, MG_AVRO_SINGLE_OBJECT, &enc, errstr,
                                sizeof(errstr)))
                bench_die("encoder", errstr);
        for (i = 0; i < total; i++) {
                int64_t due_ms = start_ms + (int64_t)((double)i * 1000.0 /
                                                      fr->rate);
                struct fresh_msg *m = &msgs[i];

                bench_make_event(&ev, i, due_ms, N_IDS);
                ev.ts_ms = due_ms;
                m->probe = -1;
                if (i % 100 == 99 && probes < PROBES_MAX) {
                        char line[256];

                        snprintf(line, sizeof(line),
                                 "{\"type\":\"signal\",\"event_id\":\"p%d\","
                                 "\"ts\":%" PRId64 ",\"identity\":"
                                 "\"probe-%d\",\"kind\":\"secret_exposed\","
                                 "\"severity\":90,\"source\":\"bench\"}",
                                 probes, due_ms, probes);
                        if (mg_event_from_json(&ev, line, strlen(line),
                                               due_ms, errstr,
                                               sizeof(errstr)))
                                bench_die("probe", errstr);
                        m->probe = probes++;
                }
                if (arena_len + MG_AVRO_MSG_MAX + MG_EVENT_IDENTITY_MAX >
                    arena_cap)
                        bench_die("fresh", "arena too small");
                m->type = (int)ev.type;
                m->key_off = arena_len;
                m->key_len = strlen(ev.identity);
                memcpy(arena + arena_len, ev.identity, m->key_len);
                arena_len += m->key_len;
                if (mg_avro_encode(enc, &ev, NULL, arena + arena_len,
                                   MG_AVRO_MSG_MAX, &len, errstr,
                                   sizeof(errstr)))
                        bench_die("encode", errstr);
                m->val_off = arena_len;
                m->val_len = len;
                arena_len += len;
        }
        rd_kafka_conf_set(kconf, "bootstrap.servers", fr->bootstrap, NULL, 0);
        /* librdkafka's default linger; see run_freshness() on why it
         * matters to the embedded broker. */
        rd_kafka_conf_set(kconf, "linger.ms", "5", NULL, 0);
        if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, kconf, errstr,
                                sizeof(errstr))))
                bench_die("producer", errstr);
        while (mg_time_now_ms() < start_ms)
                usleep(1000);
        clock_gettime(CLOCK_MONOTONIC, &tick);
        t0 = bench_now();
        for (i = 0; i < total; i++) {
                const struct fresh_msg *m = &msgs[i];

                /* Pace in 1 ms bursts: sleep (not spin) until the burst
                 * of message i is due, so pacing costs no CPU. */
                if (i % burst == 0 && i > 0) {
                        tick.tv_nsec += 1000000;
                        if (tick.tv_nsec >= 1000000000) {
                                tick.tv_sec++;
                                tick.tv_nsec -= 1000000000;
                        }
                        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &tick,
                                        NULL);
                }
                if (m->probe >= 0)
                        fr->sent_at[m->probe] = bench_now();
                while (rd_kafka_producev(
                               rk, RD_KAFKA_V_TOPIC(topics[m->type]),
                               RD_KAFKA_V_KEY(arena + m->key_off, m->key_len),
                               RD_KAFKA_V_VALUE(arena + m->val_off,
                                                m->val_len),
                               RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                               RD_KAFKA_V_END) ==
                       RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        rd_kafka_poll(rk, 1);
                rd_kafka_poll(rk, 0);
        }
        fr->probes = probes;
        printf("freshness: produced %" PRIu64 " events in %.2f s (%.0f/s)\n",
               total, bench_now() - t0, (double)total / (bench_now() - t0));
        rd_kafka_flush(rk, 30000);
        rd_kafka_destroy(rk);
        mg_avro_encoder_destroy(enc);
        mg_avro_registry_destroy(reg);
        free(msgs);
        free(arena);
}

/* The latency floor: a bare librdkafka consumer on the same topics, in
 * the same run, noting when it reads each probe (keyed "probe-N"). */
static void *fresh_bare_main(void *arg) {
        struct fresh *fr = arg;
        rd_kafka_conf_t *kconf = rd_kafka_conf_new();
        rd_kafka_topic_partition_list_t *topics =
                rd_kafka_topic_partition_list_new(3);
        rd_kafka_message_t *msgs[500];
        char errstr[512];
        rd_kafka_queue_t *rkqu;
        rd_kafka_t *rk;
        ssize_t r, i;

        rd_kafka_conf_set(kconf, "bootstrap.servers", fr->bootstrap, NULL, 0);
        rd_kafka_conf_set(kconf, "group.id", "bench-fresh-bare", NULL, 0);
        rd_kafka_conf_set(kconf, "auto.offset.reset", "latest", NULL, 0);
        rd_kafka_conf_set(kconf, "fetch.wait.max.ms", "5", NULL, 0);
        if (!(rk = rd_kafka_new(RD_KAFKA_CONSUMER, kconf, errstr,
                                sizeof(errstr))))
                bench_die("bare consumer", errstr);
        rd_kafka_poll_set_consumer(rk);
        rkqu = rd_kafka_queue_get_consumer(rk);
        rd_kafka_topic_partition_list_add(topics, "fresh.auth", -1);
        rd_kafka_topic_partition_list_add(topics, "fresh.usage", -1);
        rd_kafka_topic_partition_list_add(topics, "fresh.signals", -1);
        rd_kafka_subscribe(rk, topics);
        rd_kafka_topic_partition_list_destroy(topics);
        while (!atomic_load(&fr->stop)) {
                r = rd_kafka_consume_batch_queue(rkqu, 5, msgs, 500);
                for (i = 0; i < r; i++) {
                        rd_kafka_message_t *m = msgs[i];

                        if (!m->err && m->key_len > 6 &&
                            !memcmp(m->key, "probe-", 6)) {
                                int k = atoi((const char *)m->key + 6);

                                if (k >= 0 && k < PROBES_MAX &&
                                    !fr->bare_at[k])
                                        fr->bare_at[k] = bench_now();
                        }
                        rd_kafka_message_destroy(m);
                }
                if (r == 0 && !atomic_load(&fr->ready))
                        atomic_store(&fr->bare_ready, 1);
        }
        rd_kafka_queue_destroy(rkqu);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        return NULL;
}

/* p50 and p99 of the probes' latencies (ms) from sent_at to at[]; returns
 * how many were seen. */
static int fresh_percentiles(const struct fresh *fr, const double *at,
                             double *p50, double *p99) {
        double *lat = calloc((size_t)fr->probes + 1, sizeof(*lat));
        int i, n = 0;

        for (i = 0; i < fr->probes; i++)
                if (at[i])
                        lat[n++] = (at[i] - fr->sent_at[i]) * 1000.0;
        if (n > 0) {
                bench_median(lat, n);
                *p50 = lat[n / 2];
                *p99 = lat[(int)((double)n * 0.99) < n
                                   ? (int)((double)n * 0.99)
                                   : n - 1];
        }
        free(lat);
        return n;
}

struct ingest_thread {
        struct score_run *run;
        mg_err_t err;
        char errstr[512];
};

static void *ingest_main(void *arg) {
        struct ingest_thread *it = arg;
        struct mg_ingest_run_opts ropts = {0, 0};

        it->err = mg_ingest_run(it->run->ing, &ropts, it->errstr,
                                sizeof(it->errstr));
        return NULL;
}

static void run_freshness(struct mg_broker *broker,
                          const struct bench_redis *rd, double rate,
                          double seconds) {
        static struct fresh fr;
        static const char *const topics[] = {"fresh.auth", "fresh.usage",
                                             "fresh.signals"};
        struct ingest_thread it;
        struct score_run run;
        struct mg_ingest_stats st;
        pthread_t ting, tsub, tbare;
        char errstr[512];
        int i;

        /* Four partitions a topic, as `mintgate broker` makes them. The
         * mock broker finds a fetch offset by walking the partition's
         * message sets from the oldest ("FIXME: Maintain an index" in
         * librdkafka 2.0's rdkafka_mock.c), so its fetch latency grows
         * with the count of message sets kept: 16 partitions a topic of
         * one-message sets (linger.ms 1) made a bare consumer's p99 2.6 s
         * at 50,000 events/s; 4 partitions and batches of 5 ms, 17.5 ms.
         * Kafka indexes its log; this is the embedded broker's floor. */
        for (i = 0; i < 3; i++)
                if (mg_broker_topic_create(broker, topics[i], 4, errstr,
                                           sizeof(errstr)))
                        bench_die("topic", errstr);
        memset(&fr, 0, sizeof(fr));
        fr.bootstrap = mg_broker_bootstrap(broker);
        fr.rd = rd;
        fr.rate = rate;
        fr.seconds = seconds;
        run_init(&run, fr.bootstrap, rd->addr, "bench-fresh", "fresh");
        fr.channel = run.rc.risk_channel;
        run.fresh = &fr;
        it.run = &run;
        pthread_create(&tsub, NULL, fresh_subscriber, &fr);
        pthread_create(&ting, NULL, ingest_main, &it);
        pthread_create(&tbare, NULL, fresh_bare_main, &fr);
        do { /* wait for the group and the subscription */
                usleep(20 * 1000);
                mg_ingest_stats_get(run.ing, &st);
        } while (!st.assigned_us || !atomic_load(&fr.ready));
        sleep(4); /* the bare consumer's group forms too */
        fresh_produce(&fr);
        sleep(2); /* let the last probes arrive */
        mg_ingest_stop(run.ing);
        pthread_join(ting, NULL);
        atomic_store(&fr.stop, 1);
        pthread_join(tsub, NULL);
        pthread_join(tbare, NULL);
        if (it.err)
                bench_die("fresh ingest", it.errstr);
        {
                struct mg_scorer_stats ss;

                mg_scorer_stats_get(run.sc, &ss);
                printf("freshness: scorer %" PRIu64 " batches, %" PRIu64
                       " flushes, %" PRIu64 " events, %" PRIu64
                       " loads, %" PRIu64 " saves; time in load %.2f s, "
                       "apply %.2f s, save %.2f s\n",
                       ss.batches, ss.flushes, ss.applied, ss.loads,
                       ss.saves, ss.load_us / 1e6, ss.apply_us / 1e6,
                       ss.save_us / 1e6);
        }
        {
                double b50 = 0, b99 = 0, c50 = 0, c99 = 0, p50 = 0, p99 = 0;
                int nb = fresh_percentiles(&fr, fr.bare_at, &b50, &b99);
                int nc = fresh_percentiles(&fr, fr.consumed_at, &c50, &c99);
                int np = fresh_percentiles(&fr, fr.seen_at, &p50, &p99);

                printf("freshness: %d probes at %.0f events/s, latency from "
                       "the produce call:\n"
                       "  bare librdkafka consumer reads it   p50 %7.1f ms  "
                       "p99 %7.1f ms  (%d seen)\n"
                       "  scorer is handed it                 p50 %7.1f ms  "
                       "p99 %7.1f ms  (%d seen)\n"
                       "  risk change published (visible)    p50 %7.1f ms  "
                       "p99 %7.1f ms  (%d seen; target p99 < 50 ms)\n",
                       fr.probes, rate, b50, b99, nb, c50, c99, nc, p50, p99,
                       np);
        }
        run_free(&run);
}

int main(int argc, char **argv) {
        static const char *const topics[] = {"mg.auth", "mg.usage",
                                             "mg.signals", "mg.dlq"};
        uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 300000;
        int rounds = argc > 2 ? atoi(argv[2]) : 3, i;
        double seconds = argc > 3 ? atof(argv[3]) : 10;
        double rate = argc > 4 ? atof(argv[4]) : 50000;
        struct mg_broker_opts bopts = {"127.0.0.1", 0, topics, 4, 16};
        struct bench_redis rd;
        struct mg_broker *broker;
        double *bare, *score, mb, ms;
        long long mem0, mem1, keys, usage_bl = 0, usage_risk = 0;
        char errstr[512], group[64], cmd[160];

        if (n < 1000 || rounds < 1 || seconds <= 0 || rate < 100) {
                fprintf(stderr, "usage: bench_score [N>=1000] [R>=1] [D>0] "
                                "[rate>=100]\n");
                return 2;
        }
        bare = calloc((size_t)rounds, sizeof(*bare));
        score = calloc((size_t)rounds, sizeof(*score));
        memset(&rd, 0, sizeof(rd));
        bench_redis_start(&rd);
        if (mg_broker_new(&bopts, &broker, errstr, sizeof(errstr)))
                bench_die("broker", errstr);
        bench_fill(mg_broker_bootstrap(broker), n, N_IDS);
        printf("bench_score: %" PRIu64 " events over %d identities, %d "
               "rounds; redis-server %s\n",
               n, N_IDS, rounds, rd.addr);
        redis_cmd(&rd, "FLUSHALL", NULL);
        mem0 = redis_used_memory(&rd);
        for (i = 0; i < rounds; i++) {
                redis_cmd(&rd, "FLUSHALL", NULL);
                snprintf(group, sizeof(group), "bench-score-%d", i);
                score[i] = run_score_round(mg_broker_bootstrap(broker), &rd,
                                           group, n);
                snprintf(group, sizeof(group), "bench-bare-%d", i);
                bare[i] = bench_bare_consumer(mg_broker_bootstrap(broker),
                                              group, n);
                printf("  round %d: bare consumer %9.0f msg/s   scoring "
                       "end-to-end %9.0f ev/s   ratio %.2f\n",
                       i + 1, bare[i], score[i], score[i] / bare[i]);
                fflush(stdout);
        }
        mb = bench_median(bare, rounds);
        ms = bench_median(score, rounds);
        printf("median: bare consumer %.0f msg/s, scoring %.0f ev/s, ratio "
               "%.2f (target >= 0.50)\n",
               mb, ms, ms / mb);

        mem1 = redis_used_memory(&rd);
        redis_cmd(&rd, "DBSIZE", &keys);
        for (i = 0; i < 100; i++) {
                long long u;

                snprintf(cmd, sizeof(cmd), "MEMORY USAGE mg:{spiffe://corp/ns/sa-%d}:bl", i);
                redis_cmd(&rd, cmd, &u);
                usage_bl += u;
                snprintf(cmd, sizeof(cmd), "MEMORY USAGE mg:{spiffe://corp/ns/sa-%d}:risk", i);
                redis_cmd(&rd, cmd, &u);
                usage_risk += u;
        }
        printf("memory: %lld keys; used_memory grew %lld bytes for %d "
               "identities = %.0f bytes/identity (target <= 2048); MEMORY "
               "USAGE per identity: baseline %.0f + risk %.0f bytes\n",
               keys, mem1 - mem0, N_IDS, (double)(mem1 - mem0) / N_IDS,
               (double)usage_bl / 100, (double)usage_risk / 100);
        fflush(stdout);

        run_freshness(broker, &rd, rate, seconds);
        {
                redisContext *c = redisConnect("127.0.0.1", rd.port);
                redisReply *r = c && !c->err
                                        ? redisCommand(c, "INFO commandstats")
                                        : NULL;
                const char *p;

                if (r && r->type == REDIS_REPLY_STRING &&
                    (p = strstr(r->str, "cmdstat_evalsha:")))
                        printf("redis: %.*s\n", (int)strcspn(p, "\r\n"), p);
                if (r && r->type == REDIS_REPLY_STRING &&
                    (p = strstr(r->str, "cmdstat_hgetall:")))
                        printf("redis: %.*s\n", (int)strcspn(p, "\r\n"), p);
                freeReplyObject(r);
                redisFree(c);
        }

        mg_broker_destroy(broker);
        bench_redis_stop(&rd);
        free(bare);
        free(score);
        return 0;
}
