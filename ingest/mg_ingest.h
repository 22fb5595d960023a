/*
 * mg_ingest.h — the Kafka consumer stage: reads mg.auth, mg.usage and
 * mg.signals in a consumer group, decodes and validates each Avro message
 * into a struct mg_event, and hands batches to the next stage (the sink).
 *
 * Delivery contract (at-least-once, DESIGN.md):
 *   - The sink's deliver_cb receives a batch of validated events with their
 *     origin (topic, partition, offset). Without a flush_cb, returning MG_OK
 *     acknowledges the batch: its effects are durable, and its offsets are
 *     stored for commit. With a flush_cb (two-phase sinks such as the
 *     scorer, which coalesces many events per identity into one write),
 *     MG_OK only accepts the batch; its offsets are stored after the next
 *     successful flush_cb.
 *   - A retry-class return (MG_ERR_RETRY, MG_ERR_REDIS, ...) acknowledges
 *     nothing: the partitions are rewound to the batch's first offsets,
 *     consumption pauses for ingest.retry_backoff and the same events are
 *     delivered again. The sink must therefore be idempotent per origin.
 *   - A message that cannot be decoded or validated, or that the sink
 *     rejects with mg_ingest_batch_reject(), is produced unchanged (same
 *     key, same value) to the dead-letter topic with headers naming the
 *     reason and its origin, and is counted. Its offset is stored only
 *     after the dead-letter topic has acknowledged it. Nothing is dropped
 *     silently.
 *   - A fatal-class return stops mg_ingest_run() with that error.
 *   - Order: each partition's events arrive in offset order. Across
 *     partitions, with ingest.align_window set (the default), events arrive
 *     merged by event time: a partition more than the window ahead of the
 *     slowest one that may still give older events (assigned, not at the
 *     end of its log, heard from within the last 10 s) is held back and
 *     paused until that one catches up, so reading a backlog of several
 *     topics gives one identity's events in event-time order, at most the
 *     window apart, and not hours apart as separate fetches would. A
 *     partition at the end of its log or without data holds nothing back;
 *     in steady state nothing is held. Held messages are not acknowledged:
 *     a rewind, a revocation or the end of mg_ingest_run() gives them
 *     again (to this worker or the next owner). Alignment is per worker, so
 *     one identity's partitions of the three topics must be assigned to
 *     the same worker, as the default range assignor does when the topics
 *     have the same partition count.
 *
 * Dead-letter headers: mg.dlq.reason (mg_err_name(), e.g. "bad_magic"),
 * mg.dlq.error (the sentence), mg.dlq.topic, mg.dlq.partition,
 * mg.dlq.offset, mg.dlq.ts (epoch ms when it was dead-lettered).
 *
 * Threads: mg_ingest_run() runs the consumer loop and the sink on the
 * calling thread; mg_ingest_stop() may be called from any thread or a
 * signal handler.
 */
#ifndef MG_INGEST_H
#define MG_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "mg_avro.h"
#include "mg_config.h"
#include "mg_err.h"
#include "mg_event.h"

/* Configuration of the ingest section (see mg_ingest_conf_props). */
struct mg_ingest_conf {
        char *group_id;          /* consumer group */
        char *topic_auth;        /* authentication events */
        char *topic_usage;       /* token usage events */
        char *topic_signals;     /* external signals */
        char *topic_dlq;         /* dead-letter topic */
        int64_t batch_size;      /* max events per sink batch */
        int64_t batch_wait_ms;   /* max wait to fill a batch */
        int64_t retry_backoff_ms; /* pause after a retry verdict */
        int64_t dlq_timeout_ms;  /* wait for the DLQ to acknowledge */
        int64_t flush_interval_ms; /* max age of unflushed events */
        int64_t flush_max;       /* max unflushed events */
        int64_t fetch_wait_ms;   /* broker may hold an empty fetch this long */
        int64_t align_window_ms; /* event-time alignment window; 0: off */
        struct mg_conf_map kafka; /* kafka.*: passed to librdkafka */
        struct mg_conf_map schema_ids; /* schemas.confluent_ids: id -> avsc */
};

extern const struct mg_conf_prop mg_ingest_conf_props[];
extern const size_t mg_ingest_conf_prop_cnt;

/* bootstrap.servers when the configuration names none. */
#define MG_INGEST_DEFAULT_BROKERS "127.0.0.1:9092"

struct mg_ingest;
struct mg_ingest_batch;

/* The next stage. */
struct mg_ingest_sink {
        /* Make the batch's effects durable, then return MG_OK. May reject
         * single events with mg_ingest_batch_reject(). Called on the
         * ingest thread. */
        mg_err_t (*deliver_cb)(void *opaque, struct mg_ingest_batch *batch,
                               char *errstr, size_t errstr_size);
        /* Optional: make everything delivered so far durable. When set,
         * deliver_cb only has to apply a batch (e.g. in memory) and the
         * offsets of delivered batches are stored only after flush_cb
         * returns MG_OK. Ingest calls it every ingest.flush_interval, when
         * ingest.flush_max events are pending, before partitions are
         * revoked and before mg_ingest_run() returns. A retry-class error
         * rewinds every pending batch: the sink must drop what it had not
         * made durable. Called on the ingest thread. */
        mg_err_t (*flush_cb)(void *opaque, char *errstr, size_t errstr_size);
        /* Optional: partitions were assigned (assigned=1) or are about to
         * be revoked (assigned=0); state cached for revoked partitions must
         * be dropped, since another worker now owns them. Called on the
         * ingest thread, between batches. */
        void (*partitions_cb)(void *opaque, int assigned,
                              const rd_kafka_topic_partition_list_t *parts);
        void *opaque;
        /* Optional: called on the ingest thread once per turn of the
         * consumer loop (at least every ingest.batch_wait), between
         * batches, for housekeeping such as applying a reload. */
        void (*tick_cb)(void *opaque);
};

size_t mg_ingest_batch_count(const struct mg_ingest_batch *batch);
/* Event i of the batch; valid until deliver_cb returns. */
const struct mg_event *mg_ingest_batch_event(const struct mg_ingest_batch *batch,
                                             size_t i);
/* Dead-letter event i with a DLQ-class error (e.g. MG_ERR_LATE) and a
 * detail sentence instead of acknowledging it. */
void mg_ingest_batch_reject(struct mg_ingest_batch *batch, size_t i,
                            mg_err_t err, const char *detail);

/* Counters; read with mg_ingest_stats_get() from any thread. */
struct mg_ingest_stats {
        uint64_t consumed;         /* messages read from the input topics */
        uint64_t delivered;        /* events acknowledged by the sink */
        uint64_t dead_lettered;    /* messages acknowledged by the DLQ */
        uint64_t dlq_by_err[MG_ERR__CNT]; /* same, by reason */
        uint64_t retries;          /* batches redelivered */
        uint64_t bytes;            /* message value bytes consumed */
        uint64_t by_type[MG_EVENT_TYPE__CNT]; /* delivered, by event type */
        int64_t assigned_us;       /* monotonic time of the last assignment */
        uint64_t flushes;          /* successful sink flushes */
        uint64_t align_pauses;     /* partitions paused to align event time */
};

/* Create a consumer from conf (not copied: must outlive the ingest). Does
 * not connect yet. */
mg_err_t mg_ingest_new(const struct mg_ingest_conf *conf,
                       const struct mg_ingest_sink *sink,
                       struct mg_ingest **ingp, char *errstr,
                       size_t errstr_size);
void mg_ingest_destroy(struct mg_ingest *ing);

/* Options for one mg_ingest_run(). */
struct mg_ingest_run_opts {
        int64_t idle_exit_ms;  /* return after this long without messages
                                * (0: run until stopped) */
        uint64_t max_messages; /* return after this many (0: no limit) */
};

/* Subscribe and consume until stopped, idle or the limit; commits stored
 * offsets before returning. Returns MG_OK or the fatal error. */
mg_err_t mg_ingest_run(struct mg_ingest *ing,
                       const struct mg_ingest_run_opts *opts, char *errstr,
                       size_t errstr_size);
/* Ask mg_ingest_run() to return soon. Async-signal-safe. */
void mg_ingest_stop(struct mg_ingest *ing);

void mg_ingest_stats_get(struct mg_ingest *ing, struct mg_ingest_stats *st);

/* Apply a kafka.* map to a librdkafka configuration, with
 * bootstrap.servers defaulting to MG_INGEST_DEFAULT_BROKERS. Shared by every
 * Kafka client of mintgate (producer, consumer, DLQ). Errors name the key. */
mg_err_t mg_ingest_kafka_conf_apply(const struct mg_conf_map *kafka,
                                    rd_kafka_conf_t *kconf, char *errstr,
                                    size_t errstr_size);

/* librdkafka's log callback for every Kafka client of mintgate
 * (rd_kafka_conf_set_log_cb()): librdkafka's syslog levels mapped onto
 * mg_log's, component "kafka". Called on librdkafka's threads. */
void mg_ingest_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac,
                            const char *buf);

/* Decode one consumed message's value (framed Avro) with dec into ev and
 * validate it against now_ms (mg_event_validate()): what ingest does to
 * every message before the sink sees it, shared by every reader of the
 * input topics. On success ev->origin names the message; its topic is
 * librdkafka's string, valid while the client holds the topic. Errors are
 * dead-letter class (mg_err_class()), with a sentence in errstr. The
 * decoder's thread only. */
mg_err_t mg_ingest_decode(struct mg_avro_decoder *dec,
                          const rd_kafka_message_t *rkm, int64_t now_ms,
                          struct mg_event *ev, char *errstr,
                          size_t errstr_size);

/* Register conf->schema_ids (Confluent id -> .avsc file; the label is the
 * file's base name) in reg. */
mg_err_t mg_ingest_schemas_apply(const struct mg_ingest_conf *conf,
                                 struct mg_avro_registry *reg, char *errstr,
                                 size_t errstr_size);

#endif /* MG_INGEST_H */
