/*
 * mg_range.c — read [from, to) of the input topics as decoded events in
 * event-time order (see mg_range.h for the contract).
 *
 * A read runs in three steps:
 *
 *   1. Find the partitions: one metadata request for *all* topics, in which
 *      each input topic must appear. (Asking for the topics by name would
 *      let a broker with auto-creation create a missing one, and
 *      `mintgate broker` always does.)
 *   2. Fix the bounds: one ListOffsets round per question, each answered
 *      for every partition at once (rd_kafka_offsets_for_times() takes the
 *      earliest and latest markers as timestamps, as Kafka's ListOffsets
 *      does): the earliest offsets, the latest, then the start and end
 *      times when the bounds are times. A broker answers "none" to a time
 *      when no message is stamped at or after it; when it says so of a
 *      partition that has messages, a second question (time 0, which every
 *      stamped message is at or after) tells a broker that cannot look up
 *      times from one that is right, and such partitions get their time
 *      bounds by scanning: read from the first offset, skip messages
 *      stamped before the start time until the first at or after it, and
 *      end at the first message stamped at or after the end time (the
 *      same offsets Kafka's time index finds).
 *   3. Merge: every partition with something to read is assigned at its
 *      start offset with its own queue (rd_kafka_queue_get_partition(),
 *      not forwarded to the consumer queue), so the reader can wait for
 *      the partition it needs. Each partition holds at most one decoded
 *      head event; the earliest head is delivered and its partition asked
 *      for the next. A partition is done at its end offset, at a partition
 *      EOF past it (offsets may have gaps: compaction, transaction
 *      markers), or at the end time of a scan; it is then paused so
 *      nothing more is fetched for it.
 *
 * Selecting the earliest head is a linear pass over the partitions: input
 * topics have tens of partitions, and a pass over them costs less than the
 * Avro decode of the event it selects.
 */
#include "mg_range.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mg_avro.h"
#include "mg_log.h"

/* Metadata and ListOffsets are one round trip each; 10 s covers a first
 * connection to a distant cluster (TLS, SASL) and still reports an
 * unreachable one soon. */
#define RANGE_LOOKUP_TIMEOUT_MS 10000
/* A partition that owes messages but yields nothing for this long fails
 * the read: librdkafka reconnects and follows a new leader within seconds,
 * so a minute of nothing is a cluster gone away. */
#define RANGE_STALL_MS 60000
/* Wait granularity for a partition's queue; librdkafka's error events are
 * served at least this often. */
#define RANGE_POLL_MS 100
/* librdkafka's assign() needs a group.id. assign() never joins the group
 * and the reader commits nothing, so the name is only a label. */
#define RANGE_GROUP_ID "mintgate-range"

/* One partition of the input topics. */
struct range_part {
        const char *topic;      /* conf's topic name */
        int32_t partition;      /* partition number */
        int64_t low, high;      /* earliest and latest when the read began */
        int64_t start, end;     /* offsets [start, end) to read */
        int64_t from_ts;        /* time scan: skip messages stamped before
                                 * this until one is not (INT64_MIN: none) */
        int64_t to_ts;          /* time scan: end at the first message
                                 * stamped at or after (INT64_MAX: none) */
        int64_t next;           /* offset after the last message read */
        rd_kafka_queue_t *rkqu; /* its own queue, once assigned */
        struct mg_event *ev;    /* the head event, when has_head */
        int has_head;           /* ev is the partition's next event */
        int done;               /* nothing more to read */
};

/* State of one mg_range_read(). */
struct range_read {
        const struct mg_ingest_conf *conf; /* what to read */
        const char *brokers;               /* bootstrap.servers, for errors */
        rd_kafka_t *rk;                    /* the consumer: the lookups',
                                            * then the reading one */
        struct mg_avro_registry *reg;      /* writer schemas */
        struct mg_avro_decoder *dec;       /* this thread's decoder */
        struct range_part *parts;          /* every partition, in order */
        int part_cnt;                      /* entries in parts */
        mg_range_event_cb event_cb;        /* good events */
        mg_range_bad_cb bad_cb;            /* bad messages, or NULL */
        void *opaque;                      /* for both */
        struct mg_range_stats *st;         /* counters */
        int64_t progress_ms;               /* when a partition last moved */
};

/* Properties the reader depends on, set after the user's kafka.* keys. */
static const char *const range_forced_props[][2] = {
        {"group.id", RANGE_GROUP_ID},
        {"enable.auto.commit", "false"},     /* commits nothing */
        {"enable.auto.offset.store", "false"},
        {"enable.partition.eof", "true"},    /* ends past offset gaps */
        /* Messages deleted under the reader are an error, not a jump. */
        {"auto.offset.reset", "error"},
};

/* Prefetch, all partitions together. With one queue per partition,
 * librdkafka's limits (queued.min.messages, queued.max.messages.kbytes)
 * apply per partition, so the reader splits this budget over the
 * partitions it reads and lets bytes, not a message count, be the limit.
 * librdkafka 2.0 does not fetch again as soon as the application drains a
 * full queue, only when its broker thread next looks, so the queues must
 * hold what the merge reads meanwhile: replaying 200000 events from 4
 * partitions (release build, embedded broker) took 3.1 s with 1 MiB or
 * 10000 messages per partition, 0.4 s with 4 MiB or more. Since each
 * partition drains at 1/N of the rate, the total is what counts: 128 MiB
 * is eight times what that needed. */
#define RANGE_PREFETCH_KB (128 * 1024)
/* Bounds of one partition's share: librdkafka's default at most; at
 * least a fetch (max.partition.fetch.bytes, 1 MiB). */
#define RANGE_PART_KB_MIN 1024
#define RANGE_PART_KB_MAX 65536

static int64_t mono_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

mg_err_t mg_range_bound_parse(const char *s, struct mg_range_bound *b,
                              char *errstr, size_t errstr_size) {
        const char *digits = s[0] == '@' ? s + 1 : s;
        char *end;
        int64_t v;

        if (!strcmp(s, "earliest") || !strcmp(s, "latest")) {
                b->kind = s[0] == 'e' ? MG_RANGE_EARLIEST : MG_RANGE_LATEST;
                b->value = 0;
                return MG_OK;
        }
        if (*digits >= '0' && *digits <= '9') {
                errno = 0;
                v = strtoll(digits, &end, 10);
                if (*end == '\0' && errno == 0) {
                        if (s[0] == '@') {
                                b->kind = MG_RANGE_OFFSET;
                                b->value = v;
                                return MG_OK;
                        }
                        if (v < MG_EVENT_TS_MIN)
                                return mg_err_set(
                                        MG_ERR_INVALID, errstr, errstr_size,
                                        "'%.64s' is before 2000 as epoch "
                                        "milliseconds (seconds?): a time "
                                        "bound is RFC 3339 or epoch "
                                        "milliseconds",
                                        s);
                        b->kind = MG_RANGE_TIME;
                        b->value = v;
                        return MG_OK;
                }
                if (*end == '\0')
                        return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                          "'%.64s' is out of range", s);
        }
        if (s[0] == '@')
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "'%.64s': expected @ and an offset, a "
                                  "whole number >= 0, such as @1234",
                                  s);
        if (mg_time_parse_rfc3339(s, strlen(s), &v) == MG_OK) {
                b->kind = MG_RANGE_TIME;
                b->value = v;
                return MG_OK;
        }
        return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                          "'%.64s' is not a range bound: expected earliest, "
                          "latest, an RFC 3339 time such as "
                          "2026-11-20T00:00:00Z, epoch milliseconds, or "
                          "@OFFSET",
                          s);
}

const char *mg_range_bound_format(const struct mg_range_bound *b, char *buf,
                                  size_t size) {
        switch (b->kind) {
        case MG_RANGE_EARLIEST:
                snprintf(buf, size, "earliest");
                break;
        case MG_RANGE_LATEST:
                snprintf(buf, size, "latest");
                break;
        case MG_RANGE_TIME:
                mg_time_format_rfc3339(b->value, buf, size);
                break;
        case MG_RANGE_OFFSET:
                snprintf(buf, size, "@%" PRId64, b->value);
                break;
        }
        return buf;
}

/* bootstrap.servers as configured, for messages. */
static const char *range_brokers(const struct mg_ingest_conf *conf) {
        size_t i;

        for (i = 0; i < conf->kafka.cnt; i++)
                if (!strcmp(conf->kafka.keys[i], "bootstrap.servers"))
                        return conf->kafka.values[i];
        return MG_INGEST_DEFAULT_BROKERS;
}

static mg_err_t range_kafka_set(rd_kafka_conf_t *kconf,
                                const char *const prop[2], char *errstr,
                                size_t errstr_size) {
        char kerr[256];

        if (rd_kafka_conf_set(kconf, prop[0], prop[1], kerr, sizeof(kerr)) !=
            RD_KAFKA_CONF_OK)
                return mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                  "%s: %s", prop[0], kerr);
        return MG_OK;
}

/* A consumer for the reader: lookups (read_cnt 0) or reading read_cnt
 * partitions, with its share of the prefetch budget each. */
static mg_err_t range_consumer_new(struct range_read *rr, int read_cnt,
                                   char *errstr, size_t errstr_size) {
        rd_kafka_conf_t *kconf = rd_kafka_conf_new();
        char kerr[512], wait[24], share[24];
        const char *defaults[][2] = {
                {"fetch.wait.max.ms", wait},
                /* The byte share is the limit, not a message count. */
                {"queued.min.messages", "10000000"},
                {"queued.max.messages.kbytes", share}};
        int64_t kb = RANGE_PREFETCH_KB / (read_cnt > 0 ? read_cnt : 1);
        mg_err_t err = MG_OK;
        size_t i;

        rd_kafka_conf_set_log_cb(kconf, mg_ingest_kafka_log_cb);
        snprintf(wait, sizeof(wait), "%" PRId64, rr->conf->fetch_wait_ms);
        snprintf(share, sizeof(share), "%" PRId64,
                 kb < RANGE_PART_KB_MIN   ? (int64_t)RANGE_PART_KB_MIN
                 : kb > RANGE_PART_KB_MAX ? (int64_t)RANGE_PART_KB_MAX
                                          : kb);
        for (i = 0; !err && i < sizeof(defaults) / sizeof(*defaults); i++)
                err = range_kafka_set(kconf, defaults[i], errstr,
                                      errstr_size);
        if (!err)
                err = mg_ingest_kafka_conf_apply(&rr->conf->kafka, kconf,
                                                 errstr, errstr_size);
        for (i = 0; !err && i < sizeof(range_forced_props) /
                                        sizeof(*range_forced_props);
             i++)
                err = range_kafka_set(kconf, range_forced_props[i], errstr,
                                      errstr_size);
        if (err) {
                rd_kafka_conf_destroy(kconf);
                return err;
        }
        rr->rk = rd_kafka_new(RD_KAFKA_CONSUMER, kconf, kerr, sizeof(kerr));
        if (!rr->rk) {
                rd_kafka_conf_destroy(kconf);
                return mg_err_set(MG_ERR_KAFKA, errstr, errstr_size,
                                  "cannot create the consumer: %s", kerr);
        }
        /* Errors librdkafka reports outside a partition (a broker down)
         * come through rd_kafka_consumer_poll(), served while waiting. */
        rd_kafka_poll_set_consumer(rr->rk);
        return MG_OK;
}

static void range_consumer_destroy(struct range_read *rr) {
        if (!rr->rk)
                return;
        rd_kafka_consumer_close(rr->rk);
        rd_kafka_destroy(rr->rk);
        rr->rk = NULL;
}

/* Step 1: every partition of the input topics, in auth, usage, signals
 * order (a topic the kinds share once). */
static mg_err_t range_partitions(struct range_read *rr, char *errstr,
                                 size_t errstr_size) {
        const char *names[] = {rr->conf->topic_auth, rr->conf->topic_usage,
                               rr->conf->topic_signals};
        const char *keys[] = {"ingest.topics.auth", "ingest.topics.usage",
                              "ingest.topics.signals"};
        const struct rd_kafka_metadata_topic *mts[3] = {NULL};
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t kerr;
        mg_err_t err = MG_OK;
        int i, j, k, cnt = 0;

        kerr = rd_kafka_metadata(rr->rk, 1, NULL, &md,
                                 RANGE_LOOKUP_TIMEOUT_MS);
        if (kerr)
                return mg_err_set(MG_ERR_KAFKA, errstr, errstr_size,
                                  "cannot list the topics of the Kafka "
                                  "cluster at %s: %s",
                                  rr->brokers, rd_kafka_err2str(kerr));
        for (i = 0; i < 3; i++) {
                for (j = 0; j < i && strcmp(names[j], names[i]); j++)
                        ;
                if (j < i)
                        continue; /* shared with an earlier kind */
                for (j = 0; j < md->topic_cnt; j++)
                        if (!strcmp(md->topics[j].topic, names[i]))
                                break;
                if (j == md->topic_cnt) {
                        err = mg_err_set(MG_ERR_NOT_FOUND, errstr,
                                         errstr_size,
                                         "topic '%s' (%s) does not exist in "
                                         "the Kafka cluster at %s",
                                         names[i], keys[i], rr->brokers);
                        goto out;
                }
                if (md->topics[j].err || md->topics[j].partition_cnt <= 0) {
                        err = mg_err_set(
                                MG_ERR_KAFKA, errstr, errstr_size,
                                "topic '%s' (%s): %s", names[i], keys[i],
                                md->topics[j].err
                                        ? rd_kafka_err2str(md->topics[j].err)
                                        : "no partitions");
                        goto out;
                }
                mts[i] = &md->topics[j];
                cnt += md->topics[j].partition_cnt;
        }
        rr->parts = calloc((size_t)cnt, sizeof(*rr->parts));
        if (!rr->parts) {
                err = mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                 "out of memory for %d partitions", cnt);
                goto out;
        }
        for (i = 0; i < 3; i++) {
                if (!mts[i])
                        continue;
                /* Metadata lists partitions in no promised order. */
                for (k = 0; k < mts[i]->partition_cnt; k++) {
                        struct range_part *rp = &rr->parts[rr->part_cnt++];

                        rp->topic = names[i];
                        rp->partition = k;
                        rp->from_ts = INT64_MIN;
                        rp->to_ts = INT64_MAX;
                }
        }
out:
        rd_kafka_metadata_destroy(md);
        return err;
}

/* Ask the cluster, for every partition whose want[] is set (NULL: all),
 * the offset for "timestamp" query (a time, RD_KAFKA_OFFSET_BEGINNING or
 * RD_KAFKA_OFFSET_END) into out[] (-1: none at or after that time). */
static mg_err_t range_list_offsets(struct range_read *rr, int64_t query,
                                   const int *want, int64_t *out,
                                   const char *what, char *errstr,
                                   size_t errstr_size) {
        rd_kafka_topic_partition_list_t *parts =
                rd_kafka_topic_partition_list_new(rr->part_cnt);
        rd_kafka_resp_err_t kerr;
        mg_err_t err = MG_OK;
        int i;

        for (i = 0; i < rr->part_cnt; i++)
                if (!want || want[i])
                        rd_kafka_topic_partition_list_add(
                                parts, rr->parts[i].topic,
                                rr->parts[i].partition)
                                ->offset = query;
        if (parts->cnt == 0)
                goto out;
        kerr = rd_kafka_offsets_for_times(rr->rk, parts,
                                          RANGE_LOOKUP_TIMEOUT_MS);
        if (kerr) {
                err = mg_err_set(MG_ERR_KAFKA, errstr, errstr_size,
                                 "looking up the %s offsets on %s: %s", what,
                                 rr->brokers, rd_kafka_err2str(kerr));
                goto out;
        }
        for (i = 0; i < rr->part_cnt; i++) {
                const struct range_part *rp = &rr->parts[i];
                const rd_kafka_topic_partition_t *tp;

                if (want && !want[i])
                        continue;
                tp = rd_kafka_topic_partition_list_find(parts, rp->topic,
                                                        rp->partition);
                if (!tp || tp->err) {
                        err = mg_err_set(MG_ERR_KAFKA, errstr, errstr_size,
                                         "%s [%" PRId32 "]: looking up the "
                                         "%s offset: %s",
                                         rp->topic, rp->partition, what,
                                         tp ? rd_kafka_err2str(tp->err)
                                            : "no answer");
                        goto out;
                }
                out[i] = tp->offset;
        }
out:
        rd_kafka_topic_partition_list_destroy(parts);
        return err;
}

/* The offset of a TIME bound the cluster answered with `answer`. */
static int64_t range_time_offset(const struct range_part *rp, int64_t answer,
                                 int scan, int is_end) {
        if (answer >= 0)
                return answer < rp->low    ? rp->low
                       : answer > rp->high ? rp->high
                                           : answer;
        /* None stamped at or after the time: everything is before it. A
         * scan starts at the first offset and ends at the last. */
        return scan && !is_end ? rp->low : rp->high;
}

/* The offset of an EARLIEST, LATEST or OFFSET bound. */
static int64_t range_plain_offset(const struct range_part *rp,
                                  const struct mg_range_bound *b) {
        if (b->kind == MG_RANGE_EARLIEST)
                return rp->low;
        if (b->kind == MG_RANGE_LATEST)
                return rp->high;
        return b->value < rp->low    ? rp->low
               : b->value > rp->high ? rp->high
                                     : b->value;
}

/* Step 2: fix [start, end) of every partition. */
static mg_err_t range_resolve(struct range_read *rr,
                              const struct mg_range_bound *from,
                              const struct mg_range_bound *to, char *errstr,
                              size_t errstr_size) {
        size_t n = (size_t)rr->part_cnt;
        /* Per partition: the cluster's answers, whether to probe. */
        int64_t *low = calloc(n, sizeof(*low));
        int64_t *high = calloc(n, sizeof(*high));
        int64_t *at_from = calloc(n, sizeof(*at_from));
        int64_t *at_to = calloc(n, sizeof(*at_to));
        int64_t *probe = calloc(n, sizeof(*probe));
        int *want = calloc(n, sizeof(*want));
        char fb[40], tb[40];
        mg_err_t err = MG_OK;
        int i, scan, probes = 0;
        /* The first offset stamped at or after a time is never past the
         * first at or after a later one: nothing to look up or scan. */
        int times_empty = from->kind == MG_RANGE_TIME &&
                          to->kind == MG_RANGE_TIME &&
                          from->value >= to->value;

        if (!low || !high || !at_from || !at_to || !probe || !want) {
                err = mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                 "out of memory for %zu partitions", n);
                goto out;
        }
        if ((err = range_list_offsets(rr, RD_KAFKA_OFFSET_BEGINNING, NULL, low,
                                      "earliest", errstr, errstr_size)) ||
            (err = range_list_offsets(rr, RD_KAFKA_OFFSET_END, NULL, high,
                                      "latest", errstr, errstr_size)) ||
            (from->kind == MG_RANGE_TIME && !times_empty &&
             (err = range_list_offsets(rr, from->value, NULL, at_from,
                                       "start time", errstr, errstr_size))) ||
            (to->kind == MG_RANGE_TIME && !times_empty &&
             (err = range_list_offsets(rr, to->value, NULL, at_to,
                                       "end time", errstr, errstr_size))))
                goto out;
        /* "None at or after the time" of a partition with messages: true,
         * or a broker that cannot look up times; time 0 tells which. */
        for (i = 0; i < rr->part_cnt; i++) {
                want[i] = low[i] < high[i] && !times_empty &&
                          ((from->kind == MG_RANGE_TIME && at_from[i] < 0) ||
                           (to->kind == MG_RANGE_TIME && at_to[i] < 0));
                probes += want[i];
        }
        if (probes &&
            (err = range_list_offsets(rr, 0, want, probe, "time 0", errstr,
                                      errstr_size)))
                goto out;
        for (i = 0; i < rr->part_cnt; i++) {
                struct range_part *rp = &rr->parts[i];

                rp->low = low[i];
                rp->high = high[i] > low[i] ? high[i] : low[i];
                scan = want[i] && probe[i] < 0;
                if (from->kind == MG_RANGE_TIME) {
                        rp->start = range_time_offset(rp, at_from[i],
                                                      scan, 0);
                        if (scan && at_from[i] < 0)
                                rp->from_ts = from->value;
                } else {
                        rp->start = range_plain_offset(rp, from);
                }
                if (to->kind == MG_RANGE_TIME) {
                        rp->end = range_time_offset(rp, at_to[i], scan, 1);
                        if (scan && at_to[i] < 0)
                                rp->to_ts = to->value;
                } else {
                        rp->end = range_plain_offset(rp, to);
                }
                if (from->kind == MG_RANGE_OFFSET && from->value < rp->low &&
                    rp->low < rp->high)
                        mg_log_warn("range",
                                    "%s [%" PRId32 "]: offset %" PRId64
                                    " is no longer kept; reading from %" PRId64,
                                    rp->topic, rp->partition, from->value,
                                    rp->low);
                if (rp->end < rp->start || times_empty)
                        rp->end = rp->start;
                rp->next = rp->start;
                rp->done = rp->start == rp->end;
                rr->st->empty += rp->done;
                if (scan)
                        rr->st->time_scan = 1;
                rr->st->in_range += rp->end - rp->start;
                mg_log_debug("range",
                             "%s [%" PRId32 "]: offsets %" PRId64 "..%" PRId64
                             " of %" PRId64 "..%" PRId64 "%s",
                             rp->topic, rp->partition, rp->start, rp->end,
                             rp->low, rp->high, scan ? ", time scan" : "");
        }
        rr->st->partitions = (uint32_t)rr->part_cnt;
        if (rr->st->time_scan)
                mg_log_info("range",
                            "the Kafka cluster at %s cannot look offsets up "
                            "by time (librdkafka's mock cluster cannot): "
                            "finding the time bounds by reading message "
                            "timestamps",
                            rr->brokers);
        mg_log_info("range",
                    "reading %" PRIu32 " partitions (%" PRIu32 " empty), "
                    "%" PRId64 " offsets from %s to %s",
                    rr->st->partitions, rr->st->empty, rr->st->in_range,
                    mg_range_bound_format(from, fb, sizeof(fb)),
                    mg_range_bound_format(to, tb, sizeof(tb)));
out:
        free(low);
        free(high);
        free(at_from);
        free(at_to);
        free(probe);
        free(want);
        return err;
}

/* Step 3's set-up: a consumer whose prefetch budget is shared by the
 * partitions that have something to read (the lookups' consumer goes), one
 * queue each, then assign them all at their start offsets. */
static mg_err_t range_assign(struct range_read *rr, char *errstr,
                             size_t errstr_size) {
        rd_kafka_topic_partition_list_t *parts;
        rd_kafka_resp_err_t kerr;
        mg_err_t err = MG_OK;
        int i, read_cnt = 0;

        for (i = 0; i < rr->part_cnt; i++)
                read_cnt += rr->parts[i].start < rr->parts[i].end;
        if (read_cnt == 0)
                return MG_OK;
        range_consumer_destroy(rr);
        if ((err = range_consumer_new(rr, read_cnt, errstr, errstr_size)))
                return err;
        parts = rd_kafka_topic_partition_list_new(read_cnt);
        for (i = 0; i < rr->part_cnt; i++) {
                struct range_part *rp = &rr->parts[i];

                if (rp->done)
                        continue;
                rp->ev = malloc(sizeof(*rp->ev));
                rp->rkqu = rd_kafka_queue_get_partition(rr->rk, rp->topic,
                                                        rp->partition);
                if (!rp->ev || !rp->rkqu) {
                        err = mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                         "%s [%" PRId32 "]: out of memory "
                                         "for its queue",
                                         rp->topic, rp->partition);
                        goto out;
                }
                /* Its messages stay on its queue (set before assign). */
                rd_kafka_queue_forward(rp->rkqu, NULL);
                rd_kafka_topic_partition_list_add(parts, rp->topic,
                                                  rp->partition)
                        ->offset = rp->start;
        }
        if ((kerr = rd_kafka_assign(rr->rk, parts)))
                err = mg_err_set(MG_ERR_KAFKA, errstr, errstr_size,
                                 "assigning %d partitions: %s", parts->cnt,
                                 rd_kafka_err2str(kerr));
out:
        rd_kafka_topic_partition_list_destroy(parts);
        return err;
}

/* Nothing more to read from rp: stop fetching it. */
static void range_part_done(struct range_read *rr, struct range_part *rp) {
        rd_kafka_topic_partition_list_t *one;

        rp->done = 1;
        if (!rp->rkqu)
                return;
        one = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(one, rp->topic, rp->partition);
        rd_kafka_pause_partitions(rr->rk, one);
        rd_kafka_topic_partition_list_destroy(one);
}

/* Serve librdkafka's events outside the partitions (errors are logged;
 * librdkafka retries what can be retried). */
static void range_serve(struct range_read *rr) {
        rd_kafka_message_t *rkm;

        while ((rkm = rd_kafka_consumer_poll(rr->rk, 0))) {
                if (rkm->err)
                        mg_log_warn("range", "consumer: %s",
                                    rd_kafka_message_errstr(rkm));
                rd_kafka_message_destroy(rkm);
        }
}

/* Handle one message of rp's queue. */
static mg_err_t range_message(struct range_read *rr, struct range_part *rp,
                              const rd_kafka_message_t *rkm, char *errstr,
                              size_t errstr_size) {
        char detail[256];
        int64_t ts;
        mg_err_t err;

        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                /* Offsets may end in a gap (compaction, transaction
                 * markers): the end of the log past the end bound is the
                 * end. Short of it, more is coming. */
                if (rkm->offset >= rp->end)
                        range_part_done(rr, rp);
                return MG_OK;
        }
        if (rkm->err)
                return mg_err_set(MG_ERR_KAFKA, errstr, errstr_size,
                                  "reading %s [%" PRId32 "] at offset %" PRId64
                                  ": %s",
                                  rp->topic, rp->partition, rp->next,
                                  rd_kafka_message_errstr(rkm));
        if (rkm->offset >= rp->end) {
                range_part_done(rr, rp);
                return MG_OK;
        }
        ts = rd_kafka_message_timestamp(rkm, NULL);
        if (ts >= rp->to_ts) {
                rp->end = rkm->offset;
                range_part_done(rr, rp);
                return MG_OK;
        }
        rp->next = rkm->offset + 1;
        if (rp->from_ts != INT64_MIN) {
                if (ts < rp->from_ts) {
                        rr->st->scanned++;
                        goto next;
                }
                rp->from_ts = INT64_MIN; /* the range starts here */
        }
        rr->st->consumed++;
        rr->st->bytes += rkm->len;
        err = mg_ingest_decode(rr->dec, rkm, mg_time_now_ms(), rp->ev, detail,
                               sizeof(detail));
        if (err) {
                rr->st->bad++;
                rr->st->bad_by_err[err]++;
                if (rr->bad_cb)
                        rr->bad_cb(rr->opaque, rp->topic, rp->partition,
                                   rkm->offset, err, detail);
                goto next;
        }
        rp->ev->origin.topic = rp->topic;
        rp->has_head = 1;
        return MG_OK;
next:
        if (rp->next >= rp->end)
                range_part_done(rr, rp);
        return MG_OK;
}

/* Read rp until it has a head event or is done. */
static mg_err_t range_fill(struct range_read *rr, struct range_part *rp,
                           char *errstr, size_t errstr_size) {
        rd_kafka_message_t *rkm;
        mg_err_t err;

        while (!rp->done && !rp->has_head) {
                rkm = rd_kafka_consume_queue(rp->rkqu, RANGE_POLL_MS);
                if (!rkm) {
                        range_serve(rr);
                        if (mono_ms() - rr->progress_ms < RANGE_STALL_MS)
                                continue;
                        return mg_err_set(
                                MG_ERR_KAFKA, errstr, errstr_size,
                                "%s [%" PRId32 "]: nothing read for %d s at "
                                "offset %" PRId64 " (the range ends at "
                                "%" PRId64 "); is the Kafka cluster at %s "
                                "reachable?",
                                rp->topic, rp->partition,
                                RANGE_STALL_MS / 1000, rp->next, rp->end,
                                rr->brokers);
                }
                rr->progress_ms = mono_ms();
                err = range_message(rr, rp, rkm, errstr, errstr_size);
                rd_kafka_message_destroy(rkm);
                if (err)
                        return err;
        }
        return MG_OK;
}

/* Step 3: deliver the earliest head until every partition is done. */
static mg_err_t range_merge(struct range_read *rr, char *errstr,
                            size_t errstr_size) {
        struct range_part *best;
        mg_err_t err;
        int i;

        rr->progress_ms = mono_ms();
        for (;;) {
                best = NULL;
                for (i = 0; i < rr->part_cnt; i++) {
                        struct range_part *rp = &rr->parts[i];

                        if (!rp->has_head &&
                            (err = range_fill(rr, rp, errstr, errstr_size)))
                                return err;
                        /* Strictly earlier: ties stay with the first. */
                        if (rp->has_head &&
                            (!best || rp->ev->ts_ms < best->ev->ts_ms))
                                best = rp;
                }
                if (!best)
                        return MG_OK;
                best->has_head = 0;
                rr->st->delivered++;
                if (rr->event_cb(rr->opaque, best->ev)) {
                        rr->st->stopped = 1;
                        return MG_OK;
                }
                if (best->next >= best->end)
                        range_part_done(rr, best);
        }
}

mg_err_t mg_range_read(const struct mg_ingest_conf *conf,
                       const struct mg_range_bound *from,
                       const struct mg_range_bound *to,
                       mg_range_event_cb event_cb, mg_range_bad_cb bad_cb,
                       void *opaque, struct mg_range_stats *st,
                       char *errstr, size_t errstr_size) {
        struct mg_range_stats local;
        struct range_read rr;
        mg_err_t err;
        int i;

        memset(&rr, 0, sizeof(rr));
        rr.conf = conf;
        rr.brokers = range_brokers(conf);
        rr.event_cb = event_cb;
        rr.bad_cb = bad_cb;
        rr.opaque = opaque;
        rr.st = st ? st : &local;
        memset(rr.st, 0, sizeof(*rr.st));
        if ((err = mg_avro_registry_new(&rr.reg, errstr, errstr_size)) ||
            (err = mg_ingest_schemas_apply(conf, rr.reg, errstr,
                                           errstr_size)) ||
            (err = mg_avro_decoder_new(rr.reg, &rr.dec, errstr,
                                       errstr_size)) ||
            (err = range_consumer_new(&rr, 0, errstr, errstr_size)) ||
            (err = range_partitions(&rr, errstr, errstr_size)) ||
            (err = range_resolve(&rr, from, to, errstr, errstr_size)) ||
            (err = range_assign(&rr, errstr, errstr_size)) ||
            (err = range_merge(&rr, errstr, errstr_size)))
                goto out;
        mg_log_info("range",
                    "read %" PRIu64 " messages: %" PRIu64 " events, %" PRIu64
                    " bad%s",
                    rr.st->consumed, rr.st->delivered, rr.st->bad,
                    rr.st->stopped ? "; stopped early" : "");
out:
        for (i = 0; i < rr.part_cnt; i++) {
                if (rr.parts[i].rkqu)
                        rd_kafka_queue_destroy(rr.parts[i].rkqu);
                free(rr.parts[i].ev);
        }
        free(rr.parts);
        range_consumer_destroy(&rr);
        mg_avro_decoder_destroy(rr.dec);
        mg_avro_registry_destroy(rr.reg);
        return err;
}
