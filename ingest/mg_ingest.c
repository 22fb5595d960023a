/*
 * mg_ingest.c — consumer group, decode, validate, dead-letter, acknowledge.
 *
 * The loop (mg_ingest_run) works in poll batches:
 *
 *   1. take up to batch_size messages from the consumer queue
 *      (rd_kafka_consume_batch_queue waits at most batch_wait for more);
 *   2. decode and validate each; good ones become the sink batch, bad ones
 *      are marked for the dead-letter topic with their reason;
 *   3. call the sink; a retry verdict rewinds every partition of the poll
 *      batch to its first offset and pauses (nothing is stored or
 *      committed), a fatal one stops the loop;
 *   4. produce the dead letters (bad + sink-rejected) and wait until the
 *      DLQ has acknowledged all of them; a DLQ failure is a retry too;
 *   5. store offsets (last offset + 1 per partition) for the next commit.
 *
 * Offsets are committed by librdkafka's auto-commit of *stored* offsets
 * (enable.auto.offset.store=false), and synchronously when the loop ends,
 * so a commit never covers an event the sink or DLQ has not acknowledged.
 * The correctness-critical consumer properties are forced after the user's
 * kafka.* keys are applied.
 *
 * The expected workload is a steady stream of small (~200 byte) events;
 * decoding reuses one array of events (no allocation per message), and the
 * work per message is one Avro decode plus validation.
 */
#include "mg_ingest.h"

#include <inttypes.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mg_avro.h"
#include "mg_log.h"

#define CONF_OFF(field) offsetof(struct mg_ingest_conf, field)

const struct mg_conf_prop mg_ingest_conf_props[] = {
        {"ingest.group_id", MG_CONF_STR, CONF_OFF(group_id), "mintgate-score",
         1, 255, 0,
         "Kafka consumer group of the scoring workers. Run more workers with "
         "the same group to spread identities over them."},
        {"ingest.topics.auth", MG_CONF_STR, CONF_OFF(topic_auth), "mg.auth", 1,
         249, 0, "Topic of authentication events (AuthEvent)."},
        {"ingest.topics.usage", MG_CONF_STR, CONF_OFF(topic_usage), "mg.usage",
         1, 249, 0, "Topic of token usage events (UsageEvent)."},
        {"ingest.topics.signals", MG_CONF_STR, CONF_OFF(topic_signals),
         "mg.signals", 1, 249, 0, "Topic of external signals (SignalEvent)."},
        {"ingest.topics.dlq", MG_CONF_STR, CONF_OFF(topic_dlq), "mg.dlq", 1, 249,
         0,
         "Dead-letter topic: messages that cannot be decoded or validated, "
         "unchanged, with headers naming the reason and origin."},
        {"ingest.batch_size", MG_CONF_INT, CONF_OFF(batch_size), "500", 1,
         10000, 0,
         "Most events handed to the scoring stage at once; larger batches "
         "pipeline more Redis work per round trip."},
        {"ingest.batch_wait", MG_CONF_MS, CONF_OFF(batch_wait_ms), "5ms", 1,
         1000, 0,
         "Longest wait to fill a batch: the latency a lone event can see "
         "before scoring."},
        {"ingest.retry_backoff", MG_CONF_MS, CONF_OFF(retry_backoff_ms), "1s",
         10, 60000, 0,
         "Pause before a batch is retried after a transient failure (Redis or "
         "the dead-letter topic unavailable)."},
        {"ingest.dlq_timeout", MG_CONF_MS, CONF_OFF(dlq_timeout_ms), "30s", 100,
         600000, 0,
         "How long to wait for the dead-letter topic to acknowledge; past it "
         "the batch is retried."},
        {"ingest.flush_interval", MG_CONF_MS, CONF_OFF(flush_interval_ms),
         "10ms", 1, 10000, 0,
         "Two-phase stages (scoring): longest time accepted events wait "
         "before they are made durable and their offsets committed. Shorter "
         "is fresher risk; longer coalesces more events per Redis write."},
        {"ingest.flush_max", MG_CONF_INT, CONF_OFF(flush_max), "50000", 1,
         10000000, 0,
         "Two-phase stages: flush once this many events are pending, "
         "whatever their age."},
        {"ingest.fetch_wait", MG_CONF_MS, CONF_OFF(fetch_wait_ms), "100ms", 1,
         10000, 0,
         "How long the broker may hold a fetch that finds no data "
         "(fetch.wait.max.ms). Kafka answers as soon as data arrives; the "
         "embedded development broker waits the whole time, so `dev` uses "
         "10ms."},
        {"kafka", MG_CONF_MAP, CONF_OFF(kafka), NULL, 0, 0, 0,
         "Any librdkafka property, e.g. kafka.bootstrap.servers (default "
         MG_INGEST_DEFAULT_BROKERS "), kafka.security.protocol. Applied to "
         "every Kafka client of mintgate."},
        {"schemas.confluent_ids", MG_CONF_MAP, CONF_OFF(schema_ids), NULL, 0, 0,
         0,
         "Confluent wire format: schema id -> .avsc file of the writer "
         "schema, e.g. schemas.confluent_ids.17: /etc/mintgate/auth.v3.avsc. "
         "Built in: 1 auth.v1, 2 auth, 3 usage, 4 signal, 5 decision."},
};
const size_t mg_ingest_conf_prop_cnt =
        sizeof(mg_ingest_conf_props) / sizeof(*mg_ingest_conf_props);

/* One message of a poll batch and what became of it. */
struct ingest_msg {
        rd_kafka_message_t *rkm; /* owned until the poll batch ends */
        struct mg_event *ev;     /* decoded event, NULL when dead-lettered */
        mg_err_t err;            /* MG_OK or the dead-letter reason */
        char detail[256];        /* the reason as a sentence */
};

struct mg_ingest_batch {
        struct mg_ingest *ing;    /* owner */
        struct ingest_msg **msgs; /* the good messages, in order */
        size_t cnt;               /* entries in msgs */
};

/* Acknowledgement state of the dead letters of one poll batch; the DLQ
 * producer's delivery callback updates it. */
struct dlq_wait {
        int outstanding;         /* produced, not yet acknowledged */
        int failed;              /* deliveries that failed */
        char error[256];         /* first failure */
};

struct mg_ingest {
        const struct mg_ingest_conf *conf; /* not owned */
        struct mg_ingest_sink sink;        /* next stage */
        rd_kafka_t *rk;                    /* consumer */
        rd_kafka_queue_t *rkqu;            /* its consumer queue */
        rd_kafka_t *dlq_rk;                /* dead-letter producer */
        struct mg_avro_registry *reg;      /* writer schemas */
        struct mg_avro_decoder *dec;       /* this thread's decoder */
        rd_kafka_message_t **rkms;         /* poll buffer, batch_size */
        struct ingest_msg *msgs;           /* per poll message, batch_size */
        struct ingest_msg **good;          /* sink batch, batch_size */
        struct mg_event *evs;              /* decode targets, batch_size */
        atomic_int stop;                   /* mg_ingest_stop() was called */
        /* Accepted, not yet flushed (two-phase sinks): per partition the
         * first pending offset (to rewind to) and last + 1 (to store). */
        rd_kafka_topic_partition_list_t *pending_first;
        rd_kafka_topic_partition_list_t *pending_next;
        uint64_t pending_cnt;              /* events pending */
        int64_t active_ms;                 /* last message or assignment */
        int64_t pending_since_ms;          /* when the oldest was accepted */
        pthread_mutex_t stats_lock;        /* guards stats */
        struct mg_ingest_stats stats;      /* counters */
};

static mg_err_t ingest_flush(struct mg_ingest *ing, char *errstr,
                             size_t errstr_size);
static void pending_clear(struct mg_ingest *ing);

static int64_t mono_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

mg_err_t mg_ingest_kafka_conf_apply(const struct mg_conf_map *kafka,
                                    rd_kafka_conf_t *kconf, char *errstr,
                                    size_t errstr_size) {
        char kerr[256];
        size_t i;

        if (rd_kafka_conf_set(kconf, "bootstrap.servers",
                              MG_INGEST_DEFAULT_BROKERS, kerr,
                              sizeof(kerr)) != RD_KAFKA_CONF_OK)
                return mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                  "bootstrap.servers: %s", kerr);
        for (i = 0; kafka && i < kafka->cnt; i++)
                if (rd_kafka_conf_set(kconf, kafka->keys[i], kafka->values[i],
                                      kerr, sizeof(kerr)) != RD_KAFKA_CONF_OK)
                        return mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                          "kafka.%s: %s", kafka->keys[i],
                                          kerr);
        return MG_OK;
}

mg_err_t mg_ingest_schemas_apply(const struct mg_ingest_conf *conf,
                                 struct mg_avro_registry *reg, char *errstr,
                                 size_t errstr_size) {
        size_t i;

        for (i = 0; i < conf->schema_ids.cnt; i++) {
                const char *idtext = conf->schema_ids.keys[i];
                const char *path = conf->schema_ids.values[i];
                char label[256], *end, *base;
                long id;
                mg_err_t err;

                id = strtol(idtext, &end, 10);
                if (!*idtext || *end || id < 0 || id > INT32_MAX)
                        return mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                          "schemas.confluent_ids.%s: schema "
                                          "id must be an integer 0..%d",
                                          idtext, INT32_MAX);
                snprintf(label, sizeof(label), "%s", path);
                base = basename(label);
                if ((end = strstr(base, ".avsc")) && !end[5])
                        *end = '\0';
                err = mg_avro_registry_add_file(reg, base, path, (int32_t)id,
                                                errstr, errstr_size);
                if (err)
                        return err;
        }
        return MG_OK;
}

static void dlq_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                      void *opaque) {
        struct dlq_wait *wait = rkm->_private;

        if (!wait)
                return;
        wait->outstanding--;
        if (rkm->err && wait->failed++ == 0)
                snprintf(wait->error, sizeof(wait->error), "%s",
                         rd_kafka_err2str(rkm->err));
}

void mg_ingest_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac,
                            const char *buf) {
        enum mg_log_level l = level <= 3   ? MG_LOG_ERROR
                              : level <= 4 ? MG_LOG_WARN
                              : level <= 6 ? MG_LOG_INFO
                                           : MG_LOG_DEBUG;
        mg_log(l, "kafka", "%s: %s", fac, buf);
}

static mg_err_t kafka_set(rd_kafka_conf_t *kconf, const char *key,
                          const char *value, char *errstr,
                          size_t errstr_size) {
        char kerr[256];

        if (rd_kafka_conf_set(kconf, key, value, kerr, sizeof(kerr)) !=
            RD_KAFKA_CONF_OK)
                return mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                  "%s: %s", key, kerr);
        return MG_OK;
}

static int64_t mono_us(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Both rebalance protocols: eager (assign everything anew) and cooperative
 * (incremental). The sink hears of a revocation before it takes effect. */
static void ingest_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t kerr,
                                rd_kafka_topic_partition_list_t *parts,
                                void *opaque) {
        struct mg_ingest *ing = opaque;
        int cooperative =
                !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
        rd_kafka_error_t *error = NULL;
        rd_kafka_resp_err_t aerr = RD_KAFKA_RESP_ERR_NO_ERROR;

        if (kerr == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                mg_log_info("ingest", "assigned %d partition(s)", parts->cnt);
                if (cooperative)
                        error = rd_kafka_incremental_assign(rk, parts);
                else
                        aerr = rd_kafka_assign(rk, parts);
                pthread_mutex_lock(&ing->stats_lock);
                ing->stats.assigned_us = mono_us();
                pthread_mutex_unlock(&ing->stats_lock);
                /* The first fetch takes a moment: not idleness. */
                ing->active_ms = mono_ms();
                if (ing->sink.partitions_cb)
                        ing->sink.partitions_cb(ing->sink.opaque, 1, parts);
        } else {
                char errstr[256];

                mg_log_info("ingest", "revoked %d partition(s)", parts->cnt);
                /* What was accepted on these partitions must be durable and
                 * its offsets stored before another worker takes over. If
                 * that fails, the new owner redelivers from the last
                 * commit. */
                if (ingest_flush(ing, errstr, sizeof(errstr)))
                        mg_log_warn("ingest",
                                    "flush before revocation failed: %s",
                                    errstr);
                if (ing->sink.partitions_cb)
                        ing->sink.partitions_cb(ing->sink.opaque, 0, parts);
                if (cooperative)
                        error = rd_kafka_incremental_unassign(rk, parts);
                else
                        aerr = rd_kafka_assign(rk, NULL);
        }
        if (error) {
                mg_log_error("ingest", "rebalance: %s",
                             rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
        } else if (aerr) {
                mg_log_error("ingest", "rebalance: %s",
                             rd_kafka_err2str(aerr));
        }
}

static mg_err_t kafka_set_ms(rd_kafka_conf_t *kconf, const char *key,
                             int64_t ms, char *errstr, size_t errstr_size) {
        char text[24];

        snprintf(text, sizeof(text), "%" PRId64, ms);
        return kafka_set(kconf, key, text, errstr, errstr_size);
}

static mg_err_t consumer_new(struct mg_ingest *ing, char *errstr,
                             size_t errstr_size) {
        rd_kafka_conf_t *kconf = rd_kafka_conf_new();
        char kerr[512];
        mg_err_t err;

        rd_kafka_conf_set_log_cb(kconf, mg_ingest_kafka_log_cb);
        rd_kafka_conf_set_rebalance_cb(kconf, ingest_rebalance_cb);
        rd_kafka_conf_set_opaque(kconf, ing);
        /* Defaults the user's kafka.* keys may override. A 10 s session
         * (Kafka's default is 45 s) makes a crashed worker's partitions move
         * sooner, and bounds the wait after a clean close too: librdkafka
         * 2.0 clears its member id before sending LeaveGroup, so the
         * coordinator keeps the old member until its session expires. */
        if ((err = kafka_set(kconf, "auto.offset.reset", "earliest", errstr,
                             errstr_size)) ||
            (err = kafka_set(kconf, "session.timeout.ms", "10000", errstr,
                             errstr_size)) ||
            /* Prefetch deeper than librdkafka's default (100000): with the
             * default the fetcher idles behind a consumer that does real
             * work per message, and ingest ran at a third of its decode
             * rate (tests/bench/bench_ingest.c). Memory stays bounded by
             * queued.max.messages.kbytes. */
            (err = kafka_set(kconf, "queued.min.messages", "1000000", errstr,
                             errstr_size)) ||
            /* Commit acknowledged offsets every second (librdkafka: 5 s):
             * a restarted worker then re-reads, and skips, less. */
            (err = kafka_set(kconf, "auto.commit.interval.ms", "1000", errstr,
                             errstr_size)) ||
            (err = kafka_set_ms(kconf, "fetch.wait.max.ms",
                                ing->conf->fetch_wait_ms, errstr,
                                errstr_size)) ||
            (err = mg_ingest_kafka_conf_apply(&ing->conf->kafka, kconf, errstr,
                                              errstr_size)) ||
            /* Forced: the at-least-once contract depends on these. */
            (err = kafka_set(kconf, "group.id", ing->conf->group_id, errstr,
                             errstr_size)) ||
            (err = kafka_set(kconf, "enable.auto.offset.store", "false",
                             errstr, errstr_size)) ||
            (err = kafka_set(kconf, "enable.auto.commit", "true", errstr,
                             errstr_size)) ||
            (err = kafka_set(kconf, "enable.partition.eof", "false", errstr,
                             errstr_size))) {
                rd_kafka_conf_destroy(kconf);
                return err;
        }
        ing->rk = rd_kafka_new(RD_KAFKA_CONSUMER, kconf, kerr, sizeof(kerr));
        if (!ing->rk) {
                rd_kafka_conf_destroy(kconf);
                return mg_err_set(MG_ERR_KAFKA, errstr, errstr_size,
                                  "cannot create the consumer: %s", kerr);
        }
        rd_kafka_poll_set_consumer(ing->rk);
        ing->rkqu = rd_kafka_queue_get_consumer(ing->rk);
        return MG_OK;
}

static mg_err_t dlq_producer_new(struct mg_ingest *ing, char *errstr,
                                 size_t errstr_size) {
        rd_kafka_conf_t *kconf = rd_kafka_conf_new();
        char kerr[512];
        mg_err_t err;

        rd_kafka_conf_set_log_cb(kconf, mg_ingest_kafka_log_cb);
        rd_kafka_conf_set_dr_msg_cb(kconf, dlq_dr_cb);
        if ((err = mg_ingest_kafka_conf_apply(&ing->conf->kafka, kconf, errstr,
                                              errstr_size)) ||
            (err = kafka_set(kconf, "acks", "all", errstr, errstr_size)) ||
            (err = kafka_set(kconf, "linger.ms", "0", errstr, errstr_size))) {
                rd_kafka_conf_destroy(kconf);
                return err;
        }
        ing->dlq_rk = rd_kafka_new(RD_KAFKA_PRODUCER, kconf, kerr,
                                   sizeof(kerr));
        if (!ing->dlq_rk) {
                rd_kafka_conf_destroy(kconf);
                return mg_err_set(MG_ERR_KAFKA, errstr, errstr_size,
                                  "cannot create the DLQ producer: %s", kerr);
        }
        return MG_OK;
}

mg_err_t mg_ingest_new(const struct mg_ingest_conf *conf,
                       const struct mg_ingest_sink *sink,
                       struct mg_ingest **ingp, char *errstr,
                       size_t errstr_size) {
        struct mg_ingest *ing;
        size_t n = (size_t)conf->batch_size;
        mg_err_t err;

        *ingp = NULL;
        ing = calloc(1, sizeof(*ing));
        if (!ing)
                return mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                  "out of memory");
        ing->conf = conf;
        ing->sink = *sink;
        pthread_mutex_init(&ing->stats_lock, NULL);
        ing->rkms = calloc(n, sizeof(*ing->rkms));
        ing->msgs = calloc(n, sizeof(*ing->msgs));
        ing->good = calloc(n, sizeof(*ing->good));
        ing->evs = malloc(n * sizeof(*ing->evs));
        ing->pending_first = rd_kafka_topic_partition_list_new(16);
        ing->pending_next = rd_kafka_topic_partition_list_new(16);
        if (!ing->rkms || !ing->msgs || !ing->good || !ing->evs) {
                err = mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                 "out of memory for a batch of %zu", n);
                goto out;
        }
        if ((err = mg_avro_registry_new(&ing->reg, errstr, errstr_size)) ||
            (err = mg_ingest_schemas_apply(conf, ing->reg, errstr,
                                           errstr_size)) ||
            (err = mg_avro_decoder_new(ing->reg, &ing->dec, errstr,
                                       errstr_size)) ||
            (err = consumer_new(ing, errstr, errstr_size)) ||
            (err = dlq_producer_new(ing, errstr, errstr_size)))
                goto out;
out:
        if (err) {
                mg_ingest_destroy(ing);
                return err;
        }
        *ingp = ing;
        return MG_OK;
}

void mg_ingest_destroy(struct mg_ingest *ing) {
        if (!ing)
                return;
        if (ing->rkqu)
                rd_kafka_queue_destroy(ing->rkqu);
        if (ing->rk) {
                rd_kafka_consumer_close(ing->rk);
                rd_kafka_destroy(ing->rk);
        }
        if (ing->dlq_rk) {
                rd_kafka_flush(ing->dlq_rk, (int)ing->conf->dlq_timeout_ms);
                rd_kafka_destroy(ing->dlq_rk);
        }
        if (ing->pending_first)
                rd_kafka_topic_partition_list_destroy(ing->pending_first);
        if (ing->pending_next)
                rd_kafka_topic_partition_list_destroy(ing->pending_next);
        mg_avro_decoder_destroy(ing->dec);
        mg_avro_registry_destroy(ing->reg);
        free(ing->rkms);
        free(ing->msgs);
        free(ing->good);
        free(ing->evs);
        pthread_mutex_destroy(&ing->stats_lock);
        free(ing);
}

void mg_ingest_stop(struct mg_ingest *ing) {
        atomic_store(&ing->stop, 1);
}

void mg_ingest_stats_get(struct mg_ingest *ing, struct mg_ingest_stats *st) {
        pthread_mutex_lock(&ing->stats_lock);
        *st = ing->stats;
        pthread_mutex_unlock(&ing->stats_lock);
}

size_t mg_ingest_batch_count(const struct mg_ingest_batch *batch) {
        return batch->cnt;
}

const struct mg_event *mg_ingest_batch_event(const struct mg_ingest_batch *batch,
                                             size_t i) {
        if (i >= batch->cnt)
                return NULL;
        return batch->msgs[i]->ev;
}

void mg_ingest_batch_reject(struct mg_ingest_batch *batch, size_t i,
                            mg_err_t err, const char *detail) {
        struct ingest_msg *msg;

        if (i >= batch->cnt)
                return;
        msg = batch->msgs[i];
        msg->err = err ? err : MG_ERR_INVALID;
        snprintf(msg->detail, sizeof(msg->detail), "%s",
                 detail ? detail : mg_err_str(msg->err));
}

mg_err_t mg_ingest_decode(struct mg_avro_decoder *dec,
                          const rd_kafka_message_t *rkm, int64_t now_ms,
                          struct mg_event *ev, char *errstr,
                          size_t errstr_size) {
        mg_err_t err;

        err = mg_avro_decode(dec, rkm->payload, rkm->len, ev, errstr,
                             errstr_size);
        if (!err)
                err = mg_event_validate(ev, now_ms, errstr, errstr_size);
        if (err)
                return err;
        ev->origin.topic = rd_kafka_topic_name(rkm->rkt);
        ev->origin.partition = rkm->partition;
        ev->origin.offset = rkm->offset;
        return MG_OK;
}

/* Decode and validate one message into msg (msg->ev set on success). */
static void ingest_decode(struct mg_ingest *ing, struct ingest_msg *msg,
                          struct mg_event *ev, int64_t now_ms) {
        msg->err = mg_ingest_decode(ing->dec, msg->rkm, now_ms, ev,
                                    msg->detail, sizeof(msg->detail));
        msg->ev = msg->err ? NULL : ev;
}

static mg_err_t dlq_produce(struct mg_ingest *ing, struct ingest_msg *msg,
                            struct dlq_wait *wait) {
        rd_kafka_message_t *rkm = msg->rkm;
        rd_kafka_headers_t *hdrs = rd_kafka_headers_new(6);
        const char *reason = mg_err_name(msg->err);
        char part[16], off[24], ts[24];
        rd_kafka_resp_err_t kerr;

        snprintf(part, sizeof(part), "%" PRId32, rkm->partition);
        snprintf(off, sizeof(off), "%" PRId64, rkm->offset);
        snprintf(ts, sizeof(ts), "%" PRId64, mg_time_now_ms());
        rd_kafka_header_add(hdrs, "mg.dlq.reason", -1, reason, -1);
        rd_kafka_header_add(hdrs, "mg.dlq.error", -1, msg->detail, -1);
        rd_kafka_header_add(hdrs, "mg.dlq.topic", -1,
                            rd_kafka_topic_name(rkm->rkt), -1);
        rd_kafka_header_add(hdrs, "mg.dlq.partition", -1, part, -1);
        rd_kafka_header_add(hdrs, "mg.dlq.offset", -1, off, -1);
        rd_kafka_header_add(hdrs, "mg.dlq.ts", -1, ts, -1);
        for (;;) {
                kerr = rd_kafka_producev(
                        ing->dlq_rk, RD_KAFKA_V_TOPIC(ing->conf->topic_dlq),
                        RD_KAFKA_V_KEY(rkm->key, rkm->key_len),
                        RD_KAFKA_V_VALUE(rkm->payload, rkm->len),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                        RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(wait),
                        RD_KAFKA_V_END);
                if (kerr != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        break;
                rd_kafka_poll(ing->dlq_rk, 10);
        }
        if (kerr) {
                rd_kafka_headers_destroy(hdrs);
                if (wait->failed++ == 0)
                        snprintf(wait->error, sizeof(wait->error), "%s",
                                 rd_kafka_err2str(kerr));
                return MG_ERR_KAFKA;
        }
        wait->outstanding++;
        return MG_OK;
}

/* Offsets of the poll batch's n messages, one entry per partition: the
 * first message's offset (first = 1), or the last one's + 1. */
static rd_kafka_topic_partition_list_t *batch_offsets(struct mg_ingest *ing,
                                                      size_t n, int first) {
        rd_kafka_topic_partition_list_t *parts =
                rd_kafka_topic_partition_list_new((int)n);
        size_t i;

        for (i = 0; i < n; i++) {
                rd_kafka_message_t *rkm = ing->msgs[i].rkm;
                const char *topic = rd_kafka_topic_name(rkm->rkt);
                rd_kafka_topic_partition_t *tp =
                        rd_kafka_topic_partition_list_find(parts, topic,
                                                           rkm->partition);

                if (!tp) {
                        tp = rd_kafka_topic_partition_list_add(
                                parts, topic, rkm->partition);
                        tp->offset = first ? rkm->offset : rkm->offset + 1;
                } else if (!first && rkm->offset + 1 > tp->offset) {
                        tp->offset = rkm->offset + 1;
                }
        }
        return parts;
}

/* Seek each partition of parts to its offset, so the next polls redeliver
 * from there (librdkafka drops what it had prefetched beyond). */
static void ingest_rewind(struct mg_ingest *ing,
                          rd_kafka_topic_partition_list_t *parts) {
        rd_kafka_error_t *kerror;

        if (parts->cnt == 0)
                return;
        kerror = rd_kafka_seek_partitions(ing->rk, parts, 5000);
        if (kerror) {
                mg_log_error("ingest", "rewind failed: %s",
                             rd_kafka_error_string(kerror));
                rd_kafka_error_destroy(kerror);
        }
}

/* Store the offsets of parts for the next commit. */
static void ingest_store(struct mg_ingest *ing,
                         rd_kafka_topic_partition_list_t *parts) {
        rd_kafka_resp_err_t kerr;

        if (parts->cnt == 0)
                return;
        kerr = rd_kafka_offsets_store(ing->rk, parts);
        /* A partition revoked meanwhile cannot be stored: its new owner
         * re-reads from the last commit, which is at-least-once. */
        if (kerr)
                mg_log_debug("ingest", "offsets_store: %s",
                             rd_kafka_err2str(kerr));
}

/* Add an accepted poll batch to the pending offsets. */
static void pending_add(struct mg_ingest *ing, size_t n) {
        rd_kafka_topic_partition_list_t *first = batch_offsets(ing, n, 1);
        rd_kafka_topic_partition_list_t *next = batch_offsets(ing, n, 0);
        int i;

        for (i = 0; i < first->cnt; i++) {
                const rd_kafka_topic_partition_t *f = &first->elems[i];

                if (!rd_kafka_topic_partition_list_find(
                            ing->pending_first, f->topic, f->partition))
                        rd_kafka_topic_partition_list_add(
                                ing->pending_first, f->topic, f->partition)
                                ->offset = f->offset;
        }
        for (i = 0; i < next->cnt; i++) {
                const rd_kafka_topic_partition_t *nx = &next->elems[i];
                rd_kafka_topic_partition_t *tp =
                        rd_kafka_topic_partition_list_find(
                                ing->pending_next, nx->topic, nx->partition);

                if (!tp)
                        tp = rd_kafka_topic_partition_list_add(
                                ing->pending_next, nx->topic, nx->partition);
                if (nx->offset > tp->offset)
                        tp->offset = nx->offset;
        }
        rd_kafka_topic_partition_list_destroy(first);
        rd_kafka_topic_partition_list_destroy(next);
        if (ing->pending_cnt == 0)
                ing->pending_since_ms = mono_ms();
        ing->pending_cnt += n;
}

static void pending_clear(struct mg_ingest *ing) {
        rd_kafka_topic_partition_list_destroy(ing->pending_first);
        rd_kafka_topic_partition_list_destroy(ing->pending_next);
        ing->pending_first = rd_kafka_topic_partition_list_new(16);
        ing->pending_next = rd_kafka_topic_partition_list_new(16);
        ing->pending_cnt = 0;
}

/* Make pending batches durable through the sink, then store their
 * offsets. On a retry-class failure the pending batches are rewound (the
 * sink has dropped them) and MG_ERR_RETRY is returned. */
static mg_err_t ingest_flush(struct mg_ingest *ing, char *errstr,
                             size_t errstr_size) {
        mg_err_t err;

        if (!ing->sink.flush_cb || ing->pending_cnt == 0)
                return MG_OK;
        err = ing->sink.flush_cb(ing->sink.opaque, errstr, errstr_size);
        if (!err) {
                ingest_store(ing, ing->pending_next);
                pending_clear(ing);
                pthread_mutex_lock(&ing->stats_lock);
                ing->stats.flushes++;
                pthread_mutex_unlock(&ing->stats_lock);
                return MG_OK;
        }
        if (mg_err_class(err) != MG_ERR_CLASS_RETRY)
                return err;
        mg_log_warn("ingest",
                    "next stage could not make %" PRIu64 " events durable "
                    "(%s); rewinding and retrying in %" PRId64 " ms",
                    ing->pending_cnt, errstr, ing->conf->retry_backoff_ms);
        ingest_rewind(ing, ing->pending_first);
        pending_clear(ing);
        pthread_mutex_lock(&ing->stats_lock);
        ing->stats.retries++;
        pthread_mutex_unlock(&ing->stats_lock);
        return MG_ERR_RETRY;
}

/* Sleep up to ms, returning early when stopped. */
static void ingest_backoff(struct mg_ingest *ing, int64_t ms) {
        int64_t end = mono_ms() + ms;

        while (!atomic_load(&ing->stop) && mono_ms() < end) {
                struct timespec ts = {0, 10 * 1000 * 1000};

                nanosleep(&ts, NULL);
        }
}

/* Handle one poll batch of n messages. Returns MG_OK when every message is
 * acknowledged (offsets stored), MG_ERR_RETRY when the batch was rewound,
 * or a fatal error. */
static mg_err_t ingest_handle(struct mg_ingest *ing, size_t n, char *errstr,
                              size_t errstr_size) {
        struct mg_ingest_batch batch = {ing, ing->good, 0};
        struct dlq_wait wait = {0, 0, ""};
        int64_t now_ms = mg_time_now_ms(), deadline;
        uint64_t bytes = 0, by_type[MG_EVENT_TYPE__CNT] = {0};
        uint64_t dlq_by_err[MG_ERR__CNT] = {0};
        size_t i, dead = 0;
        mg_err_t err;

        for (i = 0; i < n; i++) {
                struct ingest_msg *msg = &ing->msgs[i];

                bytes += msg->rkm->len;
                ingest_decode(ing, msg, &ing->evs[batch.cnt], now_ms);
                if (msg->ev)
                        batch.msgs[batch.cnt++] = msg;
        }

        if (batch.cnt > 0) {
                err = ing->sink.deliver_cb(ing->sink.opaque, &batch, errstr,
                                           errstr_size);
                if (err && mg_err_class(err) != MG_ERR_CLASS_RETRY)
                        return err;
                if (err) {
                        mg_log_warn("ingest",
                                    "next stage not ready (%s), retrying "
                                    "%zu messages in %" PRId64 " ms",
                                    errstr, n, ing->conf->retry_backoff_ms);
                        goto retry;
                }
        }

        for (i = 0; i < n; i++) {
                struct ingest_msg *msg = &ing->msgs[i];

                if (!msg->err) {
                        by_type[msg->ev->type]++;
                        continue;
                }
                mg_log_debug("ingest", "dead-letter %s [%" PRId32
                             "] @%" PRId64 ": %s: %s",
                             rd_kafka_topic_name(msg->rkm->rkt),
                             msg->rkm->partition, msg->rkm->offset,
                             mg_err_name(msg->err), msg->detail);
                if (dlq_produce(ing, msg, &wait))
                        break;
                dlq_by_err[msg->err]++;
                dead++;
        }
        deadline = mono_ms() + ing->conf->dlq_timeout_ms;
        while (wait.outstanding > 0 && mono_ms() < deadline)
                rd_kafka_poll(ing->dlq_rk, 5);
        if (wait.outstanding > 0 || wait.failed) {
                mg_log_warn("ingest",
                            "dead-letter topic %s did not acknowledge (%s), "
                            "retrying %zu messages",
                            ing->conf->topic_dlq,
                            wait.failed ? wait.error : "timeout", n);
                /* Late acknowledgements must not touch this stack frame. */
                while (wait.outstanding > 0)
                        rd_kafka_poll(ing->dlq_rk, 100);
                goto retry;
        }

        if (ing->sink.flush_cb) {
                pending_add(ing, n);
        } else {
                rd_kafka_topic_partition_list_t *next =
                        batch_offsets(ing, n, 0);

                ingest_store(ing, next);
                rd_kafka_topic_partition_list_destroy(next);
        }
        pthread_mutex_lock(&ing->stats_lock);
        ing->stats.consumed += n;
        ing->stats.bytes += bytes;
        ing->stats.delivered += n - dead;
        ing->stats.dead_lettered += dead;
        for (i = 0; i < MG_ERR__CNT; i++)
                ing->stats.dlq_by_err[i] += dlq_by_err[i];
        for (i = 0; i < MG_EVENT_TYPE__CNT; i++)
                ing->stats.by_type[i] += by_type[i];
        pthread_mutex_unlock(&ing->stats_lock);
        return MG_OK;

retry:
        {
                rd_kafka_topic_partition_list_t *first =
                        batch_offsets(ing, n, 1);

                ingest_rewind(ing, first);
                rd_kafka_topic_partition_list_destroy(first);
        }
        pthread_mutex_lock(&ing->stats_lock);
        ing->stats.retries++;
        pthread_mutex_unlock(&ing->stats_lock);
        ingest_backoff(ing, ing->conf->retry_backoff_ms);
        return MG_ERR_RETRY;
}

static mg_err_t ingest_subscribe(struct mg_ingest *ing, char *errstr,
                                 size_t errstr_size) {
        const char *names[] = {ing->conf->topic_auth, ing->conf->topic_usage,
                               ing->conf->topic_signals};
        rd_kafka_topic_partition_list_t *topics =
                rd_kafka_topic_partition_list_new(3);
        rd_kafka_resp_err_t kerr;
        size_t i;

        /* The three kinds may share one topic: then one identity's events
         * keep their order across kinds (one partition per key). */
        for (i = 0; i < sizeof(names) / sizeof(*names); i++)
                if (!rd_kafka_topic_partition_list_find(
                            topics, names[i], RD_KAFKA_PARTITION_UA))
                        rd_kafka_topic_partition_list_add(
                                topics, names[i], RD_KAFKA_PARTITION_UA);
        kerr = rd_kafka_subscribe(ing->rk, topics);
        rd_kafka_topic_partition_list_destroy(topics);
        if (kerr)
                return mg_err_set(MG_ERR_KAFKA, errstr, errstr_size,
                                  "subscribe: %s", rd_kafka_err2str(kerr));
        return MG_OK;
}

/* Whether the consumer currently owns any partition. */
static int ingest_assigned(struct mg_ingest *ing) {
        rd_kafka_topic_partition_list_t *parts = NULL;
        int cnt = 0;

        if (!rd_kafka_assignment(ing->rk, &parts) && parts) {
                cnt = parts->cnt;
                rd_kafka_topic_partition_list_destroy(parts);
        }
        return cnt > 0;
}

mg_err_t mg_ingest_run(struct mg_ingest *ing,
                       const struct mg_ingest_run_opts *opts, char *errstr,
                       size_t errstr_size) {
        uint64_t seen = 0;
        mg_err_t err;

        ing->active_ms = mono_ms();
        if ((err = ingest_subscribe(ing, errstr, errstr_size)))
                return err;
        while (!atomic_load(&ing->stop)) {
                ssize_t r, i;
                size_t n = 0;

                int64_t wait_ms = ing->conf->batch_wait_ms;

                /* Do not sleep past a due flush. */
                if (ing->pending_cnt > 0) {
                        int64_t due = ing->pending_since_ms +
                                      ing->conf->flush_interval_ms -
                                      mono_ms();

                        if (due < wait_ms)
                                wait_ms = due > 0 ? due : 0;
                }
                r = rd_kafka_consume_batch_queue(ing->rkqu, (int)wait_ms,
                                                 ing->rkms,
                                                 (size_t)ing->conf->batch_size);
                for (i = 0; i < r; i++) {
                        rd_kafka_message_t *rkm = ing->rkms[i];

                        if (rkm->err) {
                                mg_log_warn("ingest", "consumer: %s",
                                            rd_kafka_message_errstr(rkm));
                                rd_kafka_message_destroy(rkm);
                                continue;
                        }
                        ing->msgs[n].rkm = rkm;
                        ing->msgs[n].err = MG_OK;
                        n++;
                }
                if (n > 0) {
                        err = ingest_handle(ing, n, errstr, errstr_size);
                        for (i = 0; i < (ssize_t)n; i++)
                                rd_kafka_message_destroy(ing->msgs[i].rkm);
                        if (err && err != MG_ERR_RETRY)
                                return err;
                        ing->active_ms = mono_ms();
                        if (!err)
                                seen += n;
                }
                if (ing->pending_cnt > 0 &&
                    ((int64_t)ing->pending_cnt >= ing->conf->flush_max ||
                     mono_ms() - ing->pending_since_ms >=
                             ing->conf->flush_interval_ms)) {
                        err = ingest_flush(ing, errstr, errstr_size);
                        if (err == MG_ERR_RETRY)
                                ingest_backoff(ing,
                                               ing->conf->retry_backoff_ms);
                        else if (err)
                                return err;
                }
                if (ing->sink.tick_cb)
                        ing->sink.tick_cb(ing->sink.opaque);
                if (opts && opts->max_messages && seen >= opts->max_messages)
                        break;
                if (opts && opts->idle_exit_ms &&
                    mono_ms() - ing->active_ms >= opts->idle_exit_ms) {
                        /* Idle means nothing to read while assigned, not
                         * waiting for the group to form (the coordinator
                         * may delay the first assignment by seconds). */
                        if (ingest_assigned(ing))
                                break;
                        ing->active_ms = mono_ms();
                }
        }
        /* Last flush; if it fails the events are redelivered next time. */
        if ((err = ingest_flush(ing, errstr, errstr_size)) &&
            err != MG_ERR_RETRY)
                return err;
        err = MG_OK;
        {
                rd_kafka_resp_err_t kerr = rd_kafka_commit(ing->rk, NULL, 0);

                if (kerr && kerr != RD_KAFKA_RESP_ERR__NO_OFFSET)
                        err = mg_err_set(MG_ERR_KAFKA, errstr, errstr_size,
                                         "final commit: %s",
                                         rd_kafka_err2str(kerr));
        }
        return err;
}
