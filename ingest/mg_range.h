/*
 * mg_range.h — read a range of the input topics as decoded events, in
 * event-time order: the Kafka source of `mintgate replay`.
 *
 * The reader is a plain assigned consumer: it joins no group and commits
 * nothing, so it can read topics that scoring workers are consuming
 * without disturbing them. Every partition of the input topics
 * (ingest.topics.auth, .usage, .signals; a topic the kinds share is read
 * once) is read from its start bound to its end bound. Each message is
 * decoded and validated exactly as ingest does (mg_ingest_decode()); a bad
 * one is reported and skipped, never dead-lettered (a reader of history
 * changes nothing).
 *
 * Bounds, per partition, fixed when the read starts:
 *   - earliest: the first offset the broker still keeps;
 *   - latest: the high watermark then (later messages are not read);
 *   - @N: offset N in every partition, clamped to what the partition has;
 *   - a time: the first offset whose Kafka *message timestamp* is at or
 *     after it (rd_kafka_offsets_for_times(); the producer's CreateTime or
 *     the broker's LogAppendTime). A broker that cannot look offsets up by
 *     time (librdkafka 2.0's mock cluster, i.e. `mintgate broker`, answers
 *     "none" to every time) is detected with a probe, and the same offsets
 *     are then found by reading the partition from its first offset and
 *     comparing message timestamps.
 * The range is [from, to): the end bound's message is not read.
 *
 * Order: TIME bounds use message timestamps, but delivery order uses the
 * decoded *event* time (ev->ts_ms). The reader keeps one decoded head event
 * per partition and always delivers the earliest head (a k-way merge), so
 * events come in event-time order across partitions while each partition
 * keeps its own order (an event behind its predecessor in the same
 * partition still comes after it). Equal times go to the partition listed
 * first: topics in auth, usage, signals order, then lower partitions.
 *
 * Memory is bounded: one head event per partition, plus librdkafka's
 * prefetch, which with one queue per partition applies per partition:
 * queued.max.messages.kbytes defaults to a share of 128 MiB over the
 * partitions read (1 to 64 MiB each; kafka.* may set it).
 *
 * Threads: mg_range_read() runs on the calling thread and calls the
 * callbacks there.
 */
#ifndef MG_RANGE_H
#define MG_RANGE_H

#include <stddef.h>
#include <stdint.h>

#include "mg_err.h"
#include "mg_event.h"
#include "mg_ingest.h"

/* Where a range starts or ends, per partition. */
enum mg_range_kind {
        MG_RANGE_EARLIEST, /* the first offset kept */
        MG_RANGE_LATEST,   /* the high watermark when the read starts */
        MG_RANGE_TIME,     /* first message timestamp >= value (epoch ms) */
        MG_RANGE_OFFSET    /* offset value in every partition */
};

/* One bound of a range. */
struct mg_range_bound {
        enum mg_range_kind kind; /* which kind of bound */
        int64_t value;           /* epoch ms for TIME, offset for OFFSET */
};

/* Parse a bound: "earliest", "latest", an RFC 3339 time
 * ("2026-11-20T00:00:00Z") or epoch milliseconds (from 2000 on: smaller
 * numbers are taken for seconds, a mistake), or "@1234" (that offset in
 * every partition). Errors (MG_ERR_INVALID) quote s and say what was
 * expected. */
mg_err_t mg_range_bound_parse(const char *s, struct mg_range_bound *b,
                              char *errstr, size_t errstr_size);

/* Write b as mg_range_bound_parse() reads it (a time as RFC 3339) into
 * buf; returns buf. */
const char *mg_range_bound_format(const struct mg_range_bound *b, char *buf,
                                  size_t size);

/* What one mg_range_read() did. */
struct mg_range_stats {
        uint32_t partitions;    /* partitions of the input topics */
        uint32_t empty;         /* of which nothing lay in the range */
        int64_t in_range;       /* offsets between the bounds, before any
                                 * time scan (gaps and scans read fewer) */
        uint64_t consumed;      /* messages read in the range */
        uint64_t delivered;     /* good events passed to event_cb */
        uint64_t bad;           /* messages that failed decode/validation */
        uint64_t bad_by_err[MG_ERR__CNT]; /* same, by error */
        uint64_t bytes;         /* message value bytes read in the range */
        uint64_t scanned;       /* read before a time start (time scan) */
        int time_scan;          /* a time bound was found by scanning */
        int stopped;            /* event_cb asked to stop */
};

/* Called with each good event, in event-time order; ev and its strings are
 * valid during the call only (ev->origin.topic is conf's string). Return 0
 * to go on, non-zero to stop the read. */
typedef int (*mg_range_event_cb)(void *opaque, const struct mg_event *ev);

/* Called with each message that does not decode or validate (err is
 * dead-letter class, errstr the sentence); the message is skipped. */
typedef void (*mg_range_bad_cb)(void *opaque, const char *topic,
                                int32_t partition, int64_t offset,
                                mg_err_t err, const char *errstr);

/* Read [from, to) of the input topics of conf (ingest.topics.*, kafka.*,
 * schemas.*, ingest.fetch_wait; conf is not kept) and call event_cb for
 * each good event, bad_cb (may be NULL) for each bad message. Returns
 * MG_OK when every partition reached its end bound or event_cb returned
 * non-zero (st->stopped); MG_ERR_NOT_FOUND naming a topic the cluster does
 * not have; MG_ERR_CONFIG for a bad kafka.* key or schema; MG_ERR_KAFKA
 * when the cluster cannot be reached or a lookup fails (naming what),
 * when a partition's messages are deleted while it is read, or when no
 * partition makes progress for a minute. st may be NULL. */
mg_err_t mg_range_read(const struct mg_ingest_conf *conf,
                       const struct mg_range_bound *from,
                       const struct mg_range_bound *to,
                       mg_range_event_cb event_cb, mg_range_bad_cb bad_cb,
                       void *opaque, struct mg_range_stats *st,
                       char *errstr, size_t errstr_size);

#endif /* MG_RANGE_H */
