/*
 * mg_ingest.c — consumer group, decode, validate, align, dead-letter,
 * acknowledge.
 *
 * The loop (mg_ingest_run) works in rounds:
 *
 *   1. take up to batch_size messages from the consumer queue
 *      (rd_kafka_consume_batch_queue waits at most batch_wait for more),
 *      decode and validate each, and queue it on its partition;
 *   2. deliver: merge the partitions' queues in event-time order and hand
 *      batches of up to batch_size to the sink, holding back what is
 *      ahead of the slowest partition by more than ingest.align_window
 *      (below); in a batch, good events go to the sink and bad ones are
 *      marked for the dead-letter topic with their reason;
 *   3. a retry verdict from the sink rewinds every partition of the batch
 *      to its first offset and waits ingest.retry_backoff (nothing is
 *      stored or committed), a fatal one stops the loop;
 *   4. produce the dead letters (bad + sink-rejected) and wait until the
 *      DLQ has acknowledged all of them; a DLQ failure is a retry too;
 *   5. store offsets (last offset + 1 per partition) for the next commit;
 *   6. pause the partitions that have messages held back, resume those
 *      whose held messages are all delivered.
 *
 * Offsets are committed by librdkafka's auto-commit of *stored* offsets
 * (enable.auto.offset.store=false), and synchronously when the loop ends,
 * so a commit never covers an event the sink or DLQ has not acknowledged.
 * The correctness-critical consumer properties are forced after the user's
 * kafka.* keys are applied.
 *
 * Event-time alignment. Scoring refuses an event older than its identity's
 * newest by more than scoring.late_bound, and one identity's events are
 * spread over three topics. Reading a backlog, librdkafka fetches each
 * partition on its own (up to max.partition.fetch.bytes at a time), so one
 * topic could run hours of event time ahead of another and an identity's
 * older events would arrive after its newer ones and be refused as late.
 * So ingest merges its partitions by event time, as Kafka Streams does
 * across a task's partitions and Flink with watermark alignment:
 *   - each message gets an alignment time, the largest event time of its
 *     partition up to it (a running maximum: a partition whose events are
 *     not in time order does not make alignment jitter);
 *   - the frontier is the smallest alignment time of the partitions that
 *     can still give an older event: those with nothing queued that are
 *     neither at the end of their log (a partition-EOF event, or its next
 *     offset is the cached high watermark) nor silent for ALIGN_STALL_MS.
 *     A partition that has given nothing since assignment or a rewind
 *     holds everything back until its first message or end of log;
 *   - the queue heads are delivered smallest alignment time first while
 *     they are within ingest.align_window of the frontier, so a backlog
 *     reaches the sink in event-time order and one identity's events
 *     across topics are at most the window apart;
 *   - a partition with messages held back is paused
 *     (rd_kafka_pause_partitions), which bounds what is held to about one
 *     poll per partition, and resumed once they are delivered.
 * librdkafka's pause purges the partition's prefetched messages and
 * resumes fetching at the last message the application took (+ 1), which
 * is after everything held; a rewind (seek) drops the partition's held
 * messages too, since they will come again, and resumes it; a revoked
 * partition's held messages are dropped (its next owner reads them from
 * the last commit); when the loop ends, the partitions with held messages
 * are rewound to the first of them. A held message keeps only its
 * librdkafka message and its verdict: the event is decoded again when it
 * is delivered, so the event arena (16 KB) is not held per message. In
 * steady state every partition is within milliseconds of the others:
 * nothing is held, and alignment costs a queue append per message, a few
 * comparisons per delivered event and a pass over the assigned partitions
 * per round.
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
        {"ingest.align_window", MG_CONF_MS, CONF_OFF(align_window_ms), "10m",
         0, 7 * 86400000.0, 0,
         "Event-time alignment of the input partitions. Reading a backlog, "
         "each partition is fetched on its own, so one topic can run hours "
         "of event time ahead of another and an identity's older events "
         "would reach scoring after its newer ones and be refused as late "
         "(scoring.late_bound). Ingest merges the partitions by event time "
         "and holds back (pausing it) a partition more than this ahead of "
         "the slowest one that still has data; a partition at the end of "
         "its log holds nothing back. Keep it well inside "
         "scoring.late_bound: an identity's events may reach scoring up to "
         "this much out of order. In steady state the partitions are "
         "milliseconds apart and nothing is held. 0 turns alignment off."},
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

/* No alignment time: the partition has given no event since it was
 * assigned or rewound, so its next one may be older than anything. */
#define ALIGN_NONE INT64_MIN

/* A partition with nothing queued that is neither at the end of its log nor
 * giving messages holds the others back for at most this long. Kafka
 * answers a fetch within fetch.wait.max.ms and moves a partition to a new
 * leader in seconds; a partition silent for longer is in trouble, and
 * stalling every other partition behind it would turn one broker's problem
 * into a stop of scoring. */
#define ALIGN_STALL_MS 10000

/* One message taken from the consumer queue, from decoding until it is
 * acknowledged, rewound or dropped. */
struct ingest_msg {
        rd_kafka_message_t *rkm; /* owned */
        struct mg_event *ev;     /* decoded event while in this round's or
                                  * this batch's decode targets, else NULL
                                  * (dead letter, or held since an earlier
                                  * round: decoded again when delivered) */
        mg_err_t err;            /* MG_OK or the dead-letter reason */
        int64_t at_ms;           /* alignment time: largest event time of
                                  * its partition up to it, or ALIGN_NONE */
        struct ingest_msg *next; /* its partition's queue, or the free list */
        char detail[256];        /* the reason as a sentence */
};

/* A partition's queue of messages taken and not yet delivered, and its
 * event-time alignment state. */
struct align_part {
        char *topic;             /* owned */
        int32_t partition;
        struct ingest_msg *head; /* oldest queued message (offset order) */
        struct ingest_msg *tail; /* newest queued message */
        size_t held;             /* messages queued */
        int64_t at_ms;           /* alignment time of the last message
                                  * taken, ALIGN_NONE since assignment or a
                                  * rewind */
        int64_t next_offset;     /* after the last message taken, or the end
                                  * of log reported; -1 unknown */
        int at_end;              /* reached the end of its log since its last
                                  * message */
        int stalled;             /* silent for ALIGN_STALL_MS: holds nothing
                                  * back until it speaks again */
        int paused;              /* paused by alignment */
        int assigned;            /* in the assignment (not only known from
                                  * a message that came after its
                                  * revocation): may hold others back */
        int64_t heard_ms;        /* monotonic: last message, end of log,
                                  * assignment, resume or rewind */
};

struct mg_ingest_batch {
        struct mg_ingest *ing;    /* owner */
        struct ingest_msg **msgs; /* the good messages, in order */
        size_t cnt;               /* entries in msgs */
};

/* Acknowledgement state of the dead letters of one batch; the DLQ
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
        struct ingest_msg **pulled;        /* taken this round, batch_size */
        size_t pulled_cnt;                 /* entries in pulled */
        struct mg_event *evs;              /* decode targets of a round,
                                            * batch_size */
        struct mg_event *redo;             /* decode targets of held
                                            * messages in a batch,
                                            * batch_size, on first use */
        struct ingest_msg **batch;         /* delivery batch, batch_size */
        struct ingest_msg **good;          /* sink batch, batch_size */
        struct ingest_msg *free_msgs;      /* recycled messages */
        /* Alignment on: one queue per assigned partition. */
        struct align_part **parts;
        size_t part_cnt;                   /* entries in parts */
        size_t part_size;                  /* allocated entries in parts */
        struct align_part **busy;          /* scratch: parts with a queue */
        struct align_part *part_last;      /* lookup cache */
        struct align_part fifo;            /* alignment off: the one queue */
        uint64_t held_cnt;                 /* messages queued, all parts */
        size_t paused_cnt;                 /* parts paused by alignment */
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
static void align_assign(struct mg_ingest *ing,
                         const rd_kafka_topic_partition_list_t *parts);
static void align_revoke(struct mg_ingest *ing,
                         const rd_kafka_topic_partition_list_t *parts);

static int64_t mono_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Return a message to the free list, with its librdkafka message. */
static void msg_release(struct mg_ingest *ing, struct ingest_msg *msg) {
        rd_kafka_message_destroy(msg->rkm);
        msg->rkm = NULL;
        msg->ev = NULL;
        msg->next = ing->free_msgs;
        ing->free_msgs = msg;
}

/* Drop every message queued on ap (not delivered: librdkafka gives them
 * again after a rewind, the next owner after a revocation). */
static void align_drop_queue(struct mg_ingest *ing, struct align_part *ap) {
        struct ingest_msg *msg;

        while ((msg = ap->head)) {
                ap->head = msg->next;
                msg_release(ing, msg);
        }
        ap->tail = NULL;
        ing->held_cnt -= ap->held;
        ap->held = 0;
}

static void align_drop_all(struct mg_ingest *ing) {
        size_t i;

        for (i = 0; i < ing->part_cnt; i++)
                align_drop_queue(ing, ing->parts[i]);
        align_drop_queue(ing, &ing->fifo);
}

static void align_part_free(struct align_part *ap) {
        free(ap->topic);
        free(ap);
}

/* The state of (topic, partition) as after an assignment: nothing taken. */
static void align_part_reset(struct align_part *ap, int64_t now_ms) {
        ap->at_ms = ALIGN_NONE;
        ap->next_offset = -1;
        ap->at_end = 0;
        ap->stalled = 0;
        ap->heard_ms = now_ms;
}

static struct align_part *align_find(struct mg_ingest *ing, const char *topic,
                                     int32_t partition) {
        size_t i;

        for (i = 0; i < ing->part_cnt; i++) {
                struct align_part *ap = ing->parts[i];

                if (ap->partition == partition && !strcmp(ap->topic, topic))
                        return ap;
        }
        return NULL;
}

/* The state of (topic, partition), created if missing; NULL when out of
 * memory. */
static struct align_part *align_get(struct mg_ingest *ing, const char *topic,
                                    int32_t partition) {
        struct align_part *ap = ing->part_last;

        if (ap && ap->partition == partition && !strcmp(ap->topic, topic))
                return ap;
        if (!(ap = align_find(ing, topic, partition))) {
                if (ing->part_cnt == ing->part_size) {
                        size_t size = ing->part_size ? ing->part_size * 2 : 16;
                        struct align_part **parts, **busy;

                        parts = realloc(ing->parts, size * sizeof(*parts));
                        if (!parts)
                                return NULL;
                        ing->parts = parts;
                        busy = realloc(ing->busy, size * sizeof(*busy));
                        if (!busy)
                                return NULL;
                        ing->busy = busy;
                        ing->part_size = size;
                }
                if (!(ap = calloc(1, sizeof(*ap))) ||
                    !(ap->topic = strdup(topic))) {
                        free(ap);
                        return NULL;
                }
                ap->partition = partition;
                align_part_reset(ap, mono_ms());
                ing->parts[ing->part_cnt++] = ap;
        }
        ing->part_last = ap;
        return ap;
}

/* Rebalance: partitions assigned. A partition keeps librdkafka's pause
 * flag across revocation and a later assignment, so clear it. */
static void align_assign(struct mg_ingest *ing,
                         const rd_kafka_topic_partition_list_t *parts) {
        rd_kafka_topic_partition_list_t *copy;
        int64_t now_ms = mono_ms();
        int i;

        if (!ing->conf->align_window_ms)
                return;
        for (i = 0; i < parts->cnt; i++) {
                struct align_part *ap = align_get(ing, parts->elems[i].topic,
                                                  parts->elems[i].partition);

                if (!ap) {
                        /* Created at its first message instead. */
                        mg_log_error("ingest", "out of memory for the "
                                               "alignment of %s [%" PRId32
                                               "]",
                                     parts->elems[i].topic,
                                     parts->elems[i].partition);
                        continue;
                }
                align_drop_queue(ing, ap);
                align_part_reset(ap, now_ms);
                ap->assigned = 1;
                if (ap->paused) {
                        ap->paused = 0;
                        ing->paused_cnt--;
                }
        }
        if ((copy = rd_kafka_topic_partition_list_copy(parts))) {
                rd_kafka_resume_partitions(ing->rk, copy);
                rd_kafka_topic_partition_list_destroy(copy);
        }
}

/* Rebalance: partitions revoked (after the flush): forget them. */
static void align_revoke(struct mg_ingest *ing,
                         const rd_kafka_topic_partition_list_t *parts) {
        int i;

        for (i = 0; i < parts->cnt; i++) {
                struct align_part *ap = align_find(ing, parts->elems[i].topic,
                                                   parts->elems[i].partition);
                size_t k;

                if (!ap)
                        continue;
                align_drop_queue(ing, ap);
                if (ap->paused)
                        ing->paused_cnt--;
                for (k = 0; ing->parts[k] != ap; k++)
                        ;
                ing->parts[k] = ing->parts[--ing->part_cnt];
                align_part_free(ap);
        }
        ing->part_last = NULL;
}

/* After a rewind (seek) of parts to their offsets: their queued messages
 * will come again, so drop them; until the first of them comes back the
 * partition may give anything, so it holds the others back; resume it if
 * alignment had paused it. */
static void align_forget(struct mg_ingest *ing,
                         const rd_kafka_topic_partition_list_t *parts) {
        rd_kafka_topic_partition_list_t *resume = NULL;
        int64_t now_ms = mono_ms();
        int i;

        /* Alignment off: the queue is emptied by every round, and a rewind
         * comes after the round's last batch. */
        if (!ing->conf->align_window_ms)
                return;
        for (i = 0; i < parts->cnt; i++) {
                const rd_kafka_topic_partition_t *tp = &parts->elems[i];
                struct align_part *ap =
                        align_find(ing, tp->topic, tp->partition);

                if (!ap)
                        continue;
                align_drop_queue(ing, ap);
                align_part_reset(ap, now_ms);
                ap->next_offset = tp->offset;
                if (ap->paused) {
                        if (!resume)
                                resume = rd_kafka_topic_partition_list_new(
                                        parts->cnt);
                        rd_kafka_topic_partition_list_add(resume, ap->topic,
                                                          ap->partition);
                        ap->paused = 0;
                        ing->paused_cnt--;
                }
        }
        if (resume) {
                rd_kafka_resume_partitions(ing->rk, resume);
                rd_kafka_topic_partition_list_destroy(resume);
        }
}

/* A partition-EOF event: the partition has given everything up to
 * rkm->offset. */
static void align_eof(struct mg_ingest *ing, const rd_kafka_message_t *rkm,
                      int64_t now_ms) {
        struct align_part *ap;

        if (!ing->conf->align_window_ms ||
            !(ap = align_get(ing, rd_kafka_topic_name(rkm->rkt),
                             rkm->partition)))
                return;
        ap->at_end = 1;
        ap->next_offset = rkm->offset;
        ap->stalled = 0;
        ap->heard_ms = now_ms;
}

/* Whether alignment time at may be delivered under frontier, window w. */
static int align_within(int64_t at, int64_t frontier, int64_t w) {
        if (at == ALIGN_NONE || frontier == INT64_MAX)
                return 1;
        if (frontier == ALIGN_NONE)
                return 0;
        return at - frontier <= w;
}

/* Whether ap has given everything the broker had when it last answered:
 * its next offset is the cached high watermark (no request is sent). Used
 * when a partition holds others back, since the end-of-log event comes
 * only after one more fetch, and not at all after a rewind to a log end
 * already reported. */
static int align_at_end(struct mg_ingest *ing, const struct align_part *ap) {
        int64_t lo, hi;

        if (ap->next_offset < 0 ||
            rd_kafka_get_watermark_offsets(ing->rk, ap->topic, ap->partition,
                                           &lo, &hi))
                return 0;
        return hi >= 0 && ap->next_offset >= hi;
}

/* The frontier: the smallest alignment time of the partitions that may
 * still give an older event than they have queued (nothing queued, not at
 * the end of their log, not stalled); INT64_MAX when there are none,
 * ALIGN_NONE when one has given nothing yet. refine: ask the cached high
 * watermarks whether such a partition is in fact at its end. *slowest, when
 * not NULL, gets the partition that sets it. */
static int64_t align_frontier(struct mg_ingest *ing, int refine,
                              int64_t now_ms, struct align_part **slowest) {
        int64_t frontier = INT64_MAX;
        size_t i;

        if (slowest)
                *slowest = NULL;
        for (i = 0; i < ing->part_cnt; i++) {
                struct align_part *ap = ing->parts[i];

                if (ap->held || ap->at_end || ap->stalled || !ap->assigned)
                        continue;
                if (refine && align_at_end(ing, ap)) {
                        ap->at_end = 1;
                        continue;
                }
                /* A partition paused with its queue just delivered is
                 * silent by our doing; it is resumed at the round's end. */
                if (!ap->paused && now_ms - ap->heard_ms >= ALIGN_STALL_MS) {
                        /* Quiet at its end (no end-of-log event comes
                         * after a rewind to an end already reported)? */
                        if (align_at_end(ing, ap)) {
                                ap->at_end = 1;
                                continue;
                        }
                        ap->stalled = 1;
                        mg_log_info("ingest",
                                    "%s [%" PRId32 "] has given nothing for "
                                    "%d s and is not at its end; the other "
                                    "partitions no longer wait for it",
                                    ap->topic, ap->partition,
                                    ALIGN_STALL_MS / 1000);
                        continue;
                }
                if (ap->at_ms < frontier) {
                        frontier = ap->at_ms;
                        if (slowest)
                                *slowest = ap;
                }
        }
        return frontier;
}

/* End of a round: pause the partitions with messages held back (they are
 * ahead of the frontier by more than the window), resume the paused ones
 * whose queue is delivered. */
static void align_pause_resume(struct mg_ingest *ing) {
        rd_kafka_topic_partition_list_t *pause = NULL, *resume = NULL;
        struct align_part *slowest = NULL;
        int64_t frontier = ALIGN_NONE, now_ms;
        int debug = mg_log_get_level() >= MG_LOG_DEBUG;
        size_t i;

        if (!ing->held_cnt && !ing->paused_cnt)
                return;
        now_ms = mono_ms();
        if (debug)
                frontier = align_frontier(ing, 0, now_ms, &slowest);
        for (i = 0; i < ing->part_cnt; i++) {
                struct align_part *ap = ing->parts[i];

                if (ap->held && !ap->paused) {
                        if (!pause)
                                pause = rd_kafka_topic_partition_list_new(4);
                        rd_kafka_topic_partition_list_add(pause, ap->topic,
                                                          ap->partition);
                        ap->paused = 1;
                        ing->paused_cnt++;
                        if (!debug || !slowest ||
                            ap->head->at_ms == ALIGN_NONE)
                                mg_log_debug("ingest",
                                             "pausing %s [%" PRId32
                                             "]: %zu held",
                                             ap->topic, ap->partition,
                                             ap->held);
                        else if (frontier == ALIGN_NONE)
                                mg_log_debug("ingest",
                                             "pausing %s [%" PRId32
                                             "]: %zu held until %s [%" PRId32
                                             "] gives its first event",
                                             ap->topic, ap->partition,
                                             ap->held, slowest->topic,
                                             slowest->partition);
                        else
                                mg_log_debug(
                                        "ingest",
                                        "pausing %s [%" PRId32 "]: %zu held, "
                                        "%" PRId64 " s of event time ahead "
                                        "of %s [%" PRId32 "]",
                                        ap->topic, ap->partition, ap->held,
                                        (ap->head->at_ms - frontier) / 1000,
                                        slowest->topic, slowest->partition);
                } else if (!ap->held && ap->paused) {
                        if (!resume)
                                resume = rd_kafka_topic_partition_list_new(4);
                        rd_kafka_topic_partition_list_add(resume, ap->topic,
                                                          ap->partition);
                        ap->paused = 0;
                        ap->heard_ms = now_ms;
                        ing->paused_cnt--;
                        mg_log_debug("ingest", "resuming %s [%" PRId32 "]",
                                     ap->topic, ap->partition);
                }
        }
        if (pause) {
                rd_kafka_pause_partitions(ing->rk, pause);
                pthread_mutex_lock(&ing->stats_lock);
                ing->stats.align_pauses += (uint64_t)pause->cnt;
                pthread_mutex_unlock(&ing->stats_lock);
                rd_kafka_topic_partition_list_destroy(pause);
        }
        if (resume) {
                rd_kafka_resume_partitions(ing->rk, resume);
                rd_kafka_topic_partition_list_destroy(resume);
        }
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
                align_assign(ing, parts);
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
                align_revoke(ing, parts);
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
            /* Alignment: a partition at the end of its log must not hold
             * the others back, and this is how librdkafka says so. */
            (err = kafka_set(kconf, "enable.partition.eof", "true", errstr,
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
        ing->pulled = calloc(n, sizeof(*ing->pulled));
        ing->batch = calloc(n, sizeof(*ing->batch));
        ing->good = calloc(n, sizeof(*ing->good));
        ing->evs = malloc(n * sizeof(*ing->evs));
        ing->fifo.at_ms = ALIGN_NONE;
        ing->fifo.next_offset = -1;
        ing->pending_first = rd_kafka_topic_partition_list_new(16);
        ing->pending_next = rd_kafka_topic_partition_list_new(16);
        if (!ing->rkms || !ing->pulled || !ing->batch || !ing->good ||
            !ing->evs) {
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
        struct ingest_msg *msg;

        if (!ing)
                return;
        /* librdkafka wants its messages back before the handle goes. */
        align_drop_all(ing);
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
        /* Closing revoked the assigned partitions; free any left (taken
         * from a message of a partition no longer assigned). */
        while (ing->part_cnt > 0)
                align_part_free(ing->parts[--ing->part_cnt]);
        free(ing->parts);
        free(ing->busy);
        while ((msg = ing->free_msgs)) {
                ing->free_msgs = msg->next;
                free(msg);
        }
        mg_avro_decoder_destroy(ing->dec);
        mg_avro_registry_destroy(ing->reg);
        free(ing->rkms);
        free(ing->pulled);
        free(ing->batch);
        free(ing->good);
        free(ing->evs);
        free(ing->redo);
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

/* Offsets of the batch's n messages, one entry per partition: the first
 * message's offset (first = 1), or the last one's + 1. A batch keeps each
 * partition's messages in offset order. */
static rd_kafka_topic_partition_list_t *batch_offsets(struct ingest_msg **msgs,
                                                      size_t n, int first) {
        rd_kafka_topic_partition_list_t *parts =
                rd_kafka_topic_partition_list_new((int)n);
        size_t i;

        for (i = 0; i < n; i++) {
                rd_kafka_message_t *rkm = msgs[i]->rkm;
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
 * from there (librdkafka drops what it had prefetched beyond, and so does
 * alignment with what it held). */
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
        align_forget(ing, parts);
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

/* Add an accepted batch to the pending offsets. */
static void pending_add(struct mg_ingest *ing, struct ingest_msg **msgs,
                        size_t n) {
        rd_kafka_topic_partition_list_t *first = batch_offsets(msgs, n, 1);
        rd_kafka_topic_partition_list_t *next = batch_offsets(msgs, n, 0);
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

/* Handle one batch of n messages (at most batch_size). Returns MG_OK when
 * every message is acknowledged (offsets stored, or pending a flush),
 * MG_ERR_RETRY when the batch was rewound, or a fatal error. */
static mg_err_t ingest_handle(struct mg_ingest *ing, struct ingest_msg **msgs,
                              size_t n, char *errstr, size_t errstr_size) {
        struct mg_ingest_batch batch = {ing, ing->good, 0};
        struct dlq_wait wait = {0, 0, ""};
        int64_t now_ms = mg_time_now_ms(), deadline;
        uint64_t bytes = 0, by_type[MG_EVENT_TYPE__CNT] = {0};
        uint64_t dlq_by_err[MG_ERR__CNT] = {0};
        size_t i, dead = 0;
        mg_err_t err;

        for (i = 0; i < n; i++) {
                struct ingest_msg *msg = msgs[i];

                bytes += msg->rkm->len;
                /* Held since an earlier round: decode it again. */
                if (!msg->ev && !msg->err) {
                        if (!ing->redo &&
                            !(ing->redo = malloc((size_t)ing->conf->batch_size *
                                                 sizeof(*ing->redo))))
                                return mg_err_set(MG_ERR_NOMEM, errstr,
                                                  errstr_size,
                                                  "out of memory for a batch "
                                                  "of %" PRId64,
                                                  ing->conf->batch_size);
                        ingest_decode(ing, msg, &ing->redo[i], now_ms);
                }
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
                struct ingest_msg *msg = msgs[i];

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
                pending_add(ing, msgs, n);
        } else {
                rd_kafka_topic_partition_list_t *next =
                        batch_offsets(msgs, n, 0);

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
                        batch_offsets(msgs, n, 1);

                ingest_rewind(ing, first);
                rd_kafka_topic_partition_list_destroy(first);
        }
        pthread_mutex_lock(&ing->stats_lock);
        ing->stats.retries++;
        pthread_mutex_unlock(&ing->stats_lock);
        ingest_backoff(ing, ing->conf->retry_backoff_ms);
        return MG_ERR_RETRY;
}

/* Take one message from the consumer queue: decode it into this round's
 * targets and queue it on its partition (alignment on) or on the one queue.
 * On failure (out of memory) rkm is left to the caller. */
static mg_err_t ingest_take(struct mg_ingest *ing, rd_kafka_message_t *rkm,
                            int64_t wall_ms, int64_t now_ms, char *errstr,
                            size_t errstr_size) {
        struct align_part *ap = &ing->fifo;
        struct ingest_msg *msg;

        if (ing->conf->align_window_ms &&
            !(ap = align_get(ing, rd_kafka_topic_name(rkm->rkt),
                             rkm->partition)))
                goto nomem;
        if ((msg = ing->free_msgs))
                ing->free_msgs = msg->next;
        else if (!(msg = malloc(sizeof(*msg))))
                goto nomem;
        msg->rkm = rkm;
        msg->next = NULL;
        ingest_decode(ing, msg, &ing->evs[ing->pulled_cnt], wall_ms);
        ing->pulled[ing->pulled_cnt++] = msg;
        if (msg->ev && (ap->at_ms == ALIGN_NONE || msg->ev->ts_ms > ap->at_ms))
                ap->at_ms = msg->ev->ts_ms;
        msg->at_ms = ap->at_ms;
        if (ap->tail)
                ap->tail->next = msg;
        else
                ap->head = msg;
        ap->tail = msg;
        ap->held++;
        ing->held_cnt++;
        ap->next_offset = rkm->offset + 1;
        ap->at_end = 0;
        ap->stalled = 0;
        ap->heard_ms = now_ms;
        return MG_OK;
nomem:
        return mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                          "out of memory for a consumed message");
}

/* Hand the batch of n messages in ing->batch to the sink, then release
 * them; *seen counts the acknowledged ones. */
static mg_err_t ingest_deliver_batch(struct mg_ingest *ing, size_t n,
                                     uint64_t *seen, char *errstr,
                                     size_t errstr_size) {
        mg_err_t err = ingest_handle(ing, ing->batch, n, errstr, errstr_size);
        size_t i;

        for (i = 0; i < n; i++)
                msg_release(ing, ing->batch[i]);
        if (!err)
                *seen += n;
        return err;
}

/* Deliver what may go: alignment off, the round's messages in the order
 * they came; on, the queue heads merged smallest alignment time first
 * while they are within the window of the frontier. Batches of at most
 * batch_size. Stops at the first batch that is not acknowledged (retry or
 * fatal error). */
static mg_err_t ingest_deliver(struct mg_ingest *ing, uint64_t *seen,
                               char *errstr, size_t errstr_size) {
        size_t max = (size_t)ing->conf->batch_size, busy_cnt = 0, n, i;
        int64_t w = ing->conf->align_window_ms, frontier;
        struct ingest_msg *msg;
        int refined = 0, blocked = 0;
        mg_err_t err;

        if (!w) {
                while (ing->fifo.head) {
                        for (n = 0; n < max && (msg = ing->fifo.head); n++) {
                                ing->fifo.head = msg->next;
                                ing->batch[n] = msg;
                        }
                        if (!ing->fifo.head)
                                ing->fifo.tail = NULL;
                        ing->fifo.held -= n;
                        ing->held_cnt -= n;
                        if ((err = ingest_deliver_batch(ing, n, seen, errstr,
                                                        errstr_size)))
                                return err;
                }
                return MG_OK;
        }
        for (i = 0; i < ing->part_cnt; i++)
                if (ing->parts[i]->held)
                        ing->busy[busy_cnt++] = ing->parts[i];
        frontier = align_frontier(ing, 0, mono_ms(), NULL);
        while (busy_cnt > 0 && !blocked) {
                n = 0;
                while (n < max && busy_cnt > 0) {
                        struct align_part *ap;
                        size_t b, min = 0;

                        for (b = 1; b < busy_cnt; b++)
                                if (ing->busy[b]->head->at_ms <
                                    ing->busy[min]->head->at_ms)
                                        min = b;
                        ap = ing->busy[min];
                        if (!align_within(ap->head->at_ms, frontier, w)) {
                                /* Before holding back, ask whether the
                                 * partitions holding it are at their end. */
                                if (refined) {
                                        blocked = 1;
                                        break;
                                }
                                refined = 1;
                                frontier = align_frontier(ing, 1, mono_ms(),
                                                          NULL);
                                continue;
                        }
                        msg = ap->head;
                        if (!(ap->head = msg->next))
                                ap->tail = NULL;
                        msg->next = NULL;
                        ap->held--;
                        ing->held_cnt--;
                        ing->batch[n++] = msg;
                        if (!ap->held) {
                                ing->busy[min] = ing->busy[--busy_cnt];
                                /* Its next event may be as old as its last:
                                 * it holds the others now. */
                                if (!ap->at_end && ap->assigned &&
                                    ap->at_ms < frontier)
                                        frontier = ap->at_ms;
                        }
                }
                if (n == 0)
                        break;
                if ((err = ingest_deliver_batch(ing, n, seen, errstr,
                                                errstr_size)))
                        return err;
        }
        return MG_OK;
}

/* End of a round: the round's decode targets are reused by the next one,
 * so messages still held lose their event (decoded again when
 * delivered). */
static void ingest_round_end(struct mg_ingest *ing) {
        size_t i;

        for (i = 0; i < ing->pulled_cnt; i++)
                ing->pulled[i]->ev = NULL;
        ing->pulled_cnt = 0;
}

/* When the loop ends, messages held were taken from librdkafka but not
 * delivered: rewind their partitions to the first of them (which also
 * resumes them), so that this consumer skips nothing after the stored
 * offsets if it runs again. */
static void align_finish(struct mg_ingest *ing) {
        rd_kafka_topic_partition_list_t *parts;
        size_t i;

        if (!ing->held_cnt)
                return;
        parts = rd_kafka_topic_partition_list_new((int)ing->part_cnt);
        for (i = 0; i < ing->part_cnt; i++) {
                struct align_part *ap = ing->parts[i];

                if (ap->held)
                        rd_kafka_topic_partition_list_add(parts, ap->topic,
                                                          ap->partition)
                                ->offset = ap->head->rkm->offset;
        }
        ingest_rewind(ing, parts);
        rd_kafka_topic_partition_list_destroy(parts);
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
                int64_t wait_ms = ing->conf->batch_wait_ms, wall_ms, now_ms;
                ssize_t r, i;

                /* Do not sleep past a due flush. */
                if (ing->pending_cnt > 0) {
                        int64_t due = ing->pending_since_ms +
                                      ing->conf->flush_interval_ms -
                                      mono_ms();

                        if (due < wait_ms)
                                wait_ms = due > 0 ? due : 0;
                }
                ing->pulled_cnt = 0;
                r = rd_kafka_consume_batch_queue(ing->rkqu, (int)wait_ms,
                                                 ing->rkms,
                                                 (size_t)ing->conf->batch_size);
                wall_ms = mg_time_now_ms();
                now_ms = mono_ms();
                for (i = 0; i < r; i++) {
                        rd_kafka_message_t *rkm = ing->rkms[i];

                        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                                align_eof(ing, rkm, now_ms);
                                rd_kafka_message_destroy(rkm);
                                continue;
                        }
                        if (rkm->err) {
                                mg_log_warn("ingest", "consumer: %s",
                                            rd_kafka_message_errstr(rkm));
                                rd_kafka_message_destroy(rkm);
                                continue;
                        }
                        if ((err = ingest_take(ing, rkm, wall_ms, now_ms,
                                               errstr, errstr_size))) {
                                while (i < r)
                                        rd_kafka_message_destroy(
                                                ing->rkms[i++]);
                                goto out;
                        }
                }
                if (ing->held_cnt > 0) {
                        err = ingest_deliver(ing, &seen, errstr, errstr_size);
                        ingest_round_end(ing);
                        if (err && err != MG_ERR_RETRY)
                                goto out;
                        /* Held back, waiting for a slower partition: not
                         * idle either. */
                        ing->active_ms = mono_ms();
                }
                align_pause_resume(ing);
                if (ing->pending_cnt > 0 &&
                    ((int64_t)ing->pending_cnt >= ing->conf->flush_max ||
                     mono_ms() - ing->pending_since_ms >=
                             ing->conf->flush_interval_ms)) {
                        err = ingest_flush(ing, errstr, errstr_size);
                        if (err == MG_ERR_RETRY)
                                ingest_backoff(ing,
                                               ing->conf->retry_backoff_ms);
                        else if (err)
                                goto out;
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
        align_finish(ing);
        /* Last flush; if it fails the events are redelivered next time. */
        if ((err = ingest_flush(ing, errstr, errstr_size)) &&
            err != MG_ERR_RETRY)
                goto out;
        err = MG_OK;
        {
                rd_kafka_resp_err_t kerr = rd_kafka_commit(ing->rk, NULL, 0);

                if (kerr && kerr != RD_KAFKA_RESP_ERR__NO_OFFSET)
                        err = mg_err_set(MG_ERR_KAFKA, errstr, errstr_size,
                                         "final commit: %s",
                                         rd_kafka_err2str(kerr));
        }
out:
        /* A fatal error: what is held is never delivered by this run. */
        if (err)
                align_drop_all(ing);
        return err;
}
