/*
 * test_range.c — the topic-range reader: parsing bounds, then reading
 * ranges of topics on an in-process embedded broker (mg_broker).
 *
 * The read tests produce a known history: five partitions over two topics
 * (the signals kind shares the auth topic, as `one topic` set-ups do), one
 * partition empty, one whose events go back in time, a message that does
 * not decode and one that does not validate, every message with its own
 * Kafka timestamp. Each read is checked against a plain model of the same
 * history: select the messages the bounds cover per partition, then merge
 * by taking the earliest head each time (ties to the partition listed
 * first) — the order mg_range_read() promises.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>

#include "mg_avro.h"
#include "mg_broker.h"
#include "mg_range.h"

/* ---- bounds --------------------------------------------------------- */

static void expect_bound(const char *s, enum mg_range_kind kind,
                         int64_t value) {
        struct mg_range_bound b = {MG_RANGE_LATEST, -1};
        char errstr[256] = "";

        assert_int_equal(mg_range_bound_parse(s, &b, errstr, sizeof(errstr)),
                         MG_OK);
        assert_int_equal(b.kind, kind);
        assert_int_equal(b.value, value);
}

static void expect_bad_bound(const char *s, const char *why) {
        struct mg_range_bound b;
        char errstr[256] = "";

        assert_int_equal(mg_range_bound_parse(s, &b, errstr, sizeof(errstr)),
                         MG_ERR_INVALID);
        /* The error quotes the input and says what is wrong. */
        assert_non_null(strstr(errstr, s));
        assert_non_null(strstr(errstr, why));
}

static void test_bound_parse(void **state) {
        expect_bound("earliest", MG_RANGE_EARLIEST, 0);
        expect_bound("latest", MG_RANGE_LATEST, 0);
        expect_bound("@0", MG_RANGE_OFFSET, 0);
        expect_bound("@1234", MG_RANGE_OFFSET, 1234);
        expect_bound("@9223372036854775807", MG_RANGE_OFFSET, INT64_MAX);
        /* 2026-11-20T00:00:00Z, written three ways. */
        expect_bound("2026-11-20T00:00:00Z", MG_RANGE_TIME, 1795132800000);
        expect_bound("2026-11-20T01:00:00.000+01:00", MG_RANGE_TIME,
                     1795132800000);
        expect_bound("1795132800000", MG_RANGE_TIME, 1795132800000);
        expect_bound("2026-11-20T00:00:00.250Z", MG_RANGE_TIME,
                     1795132800250);
        /* The first millisecond of 2000 is the earliest epoch-ms bound. */
        expect_bound("946684800000", MG_RANGE_TIME, 946684800000);

        expect_bad_bound("", "expected earliest, latest");
        expect_bad_bound("Earliest", "expected earliest, latest");
        expect_bad_bound("yesterday", "RFC 3339");
        expect_bad_bound("2026-11-20", "RFC 3339");
        expect_bad_bound("2026-11-20T00:00:00", "RFC 3339");
        expect_bad_bound("2026-13-20T00:00:00Z", "RFC 3339");
        expect_bad_bound("@", "expected @ and an offset");
        expect_bad_bound("@-1", "expected @ and an offset");
        expect_bad_bound("@12x", "expected @ and an offset");
        expect_bad_bound("@ 12", "expected @ and an offset");
        expect_bad_bound("@99999999999999999999", "out of range");
        expect_bad_bound("99999999999999999999", "out of range");
        expect_bad_bound("1795132800", "seconds?");
        expect_bad_bound("946684799999", "seconds?");
        expect_bad_bound("12abc", "expected earliest, latest");
}

static void test_bound_format(void **state) {
        const char *texts[] = {"earliest", "latest", "@0", "@1234",
                               "2026-11-20T00:00:00.250Z"};
        struct mg_range_bound b;
        char buf[40], errstr[256];
        size_t i;

        /* What format writes, parse reads back as itself. */
        for (i = 0; i < sizeof(texts) / sizeof(*texts); i++) {
                assert_int_equal(mg_range_bound_parse(texts[i], &b, errstr,
                                                      sizeof(errstr)),
                                 MG_OK);
                assert_string_equal(
                        mg_range_bound_format(&b, buf, sizeof(buf)), texts[i]);
        }
}

/* ---- reading -------------------------------------------------------- */

/* Event times and Kafka timestamps are offsets (seconds) from these. */
#define EV_BASE_MS  1790000000000LL /* 2026-09-21 */
#define MSG_BASE_MS 1780000000000LL /* 2026-05-28 */

#define PART_CNT 5
#define MSG_MAX  16

/* What one produced message is. */
enum msg_kind { MSG_GOOD, MSG_UNDECODABLE, MSG_INVALID };

/* One produced message, as the model knows it. */
struct model_msg {
        enum msg_kind kind;   /* good, or why it is bad */
        int ev_s;             /* event time: EV_BASE_MS + ev_s s */
        int seq;              /* production order; Kafka timestamp
                               * MSG_BASE_MS + seq s */
        char event_id[16];    /* e<seq> */
};

/* One partition of the history. */
struct model_part {
        const char *topic;
        int32_t partition;
        int cnt;                      /* messages; offset = index */
        struct model_msg msgs[MSG_MAX];
};

/* The history, in the order the reader lists partitions: the auth topic
 * (shared with signals), then the usage topic. */
static struct model_part model[PART_CNT] = {
        {"r.auth", 0, 0, {{0}}},
        {"r.auth", 1, 0, {{0}}},
        {"r.auth", 2, 0, {{0}}},
        {"r.usage", 0, 0, {{0}}},
        {"r.usage", 1, 0, {{0}}}, /* stays empty */
};

/* Event times per partition, in offset order; -1 is a message that does
 * not decode, -2 one that decodes but fails validation. Partition 1 goes
 * back in time (40, then 35); equal times (20) cross partitions. */
static const int history[PART_CNT][8] = {
        {10, -1, 30, 50, 0},
        {20, 20, 40, 35, 70, 0},
        {5, 60, 0},
        {20, -2, 45, 0},
        {0},
};

static int history_len(int p) {
        int n = 0;

        while (n < 8 && history[p][n] != 0)
                n++;
        return n;
}

struct fixture {
        struct mg_broker *broker;
        rd_kafka_t *producer;
        struct mg_avro_registry *reg;
        struct mg_avro_encoder *enc;
        struct mg_ingest_conf conf;
        char *kafka_keys[1], *kafka_values[1];
        int seq;                      /* messages produced so far */
};

static struct fixture fx;

/* Produce one message to model part p; kind and event time as history. */
static void produce(int p, enum msg_kind kind, int ev_s) {
        struct model_part *mp = &model[p];
        struct model_msg *m = &mp->msgs[mp->cnt];
        struct mg_event *ev = malloc(sizeof(*ev));
        char json[512], buf[MG_AVRO_MSG_MAX], errstr[256];
        size_t len;

        assert_non_null(ev);
        assert_true(mp->cnt < MSG_MAX);
        m->kind = kind;
        m->ev_s = ev_s;
        m->seq = fx.seq++;
        snprintf(m->event_id, sizeof(m->event_id), "e%d", m->seq);
        snprintf(json, sizeof(json),
                 "{\"type\":\"signal\",\"event_id\":\"%s\",\"ts\":%" PRId64
                 ",\"identity\":\"id-%d\",\"kind\":\"quarantine\","
                 "\"severity\":50,\"source\":\"test\"}",
                 m->event_id, (int64_t)(EV_BASE_MS + ev_s * 1000LL), p);
        assert_int_equal(mg_event_from_json(ev, json, strlen(json),
                                            mg_time_now_ms(), errstr,
                                            sizeof(errstr)),
                         MG_OK);
        if (kind == MSG_INVALID)
                ev->ts_ms = 1000; /* 1970: validation refuses it */
        assert_int_equal(mg_avro_encode(fx.enc, ev, NULL, buf, sizeof(buf),
                                        &len, errstr, sizeof(errstr)),
                         MG_OK);
        if (kind == MSG_UNDECODABLE)
                buf[0] = 0x7f; /* no such framing */
        assert_int_equal(
                rd_kafka_producev(fx.producer, RD_KAFKA_V_TOPIC(mp->topic),
                                  RD_KAFKA_V_PARTITION(mp->partition),
                                  RD_KAFKA_V_VALUE(buf, len),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                  RD_KAFKA_V_TIMESTAMP(MSG_BASE_MS +
                                                       m->seq * 1000LL),
                                  RD_KAFKA_V_END),
                RD_KAFKA_RESP_ERR_NO_ERROR);
        assert_int_equal(rd_kafka_flush(fx.producer, 10000),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
        mp->cnt++;
        free(ev);
}

static int setup(void **state) {
        const char *topics[] = {"r.auth", "r.usage"};
        struct mg_broker_opts opts = {"127.0.0.1", 0, topics, 1, 3};
        rd_kafka_conf_t *kconf = rd_kafka_conf_new();
        char errstr[512];
        int p, i;

        /* r.auth with 3 partitions, r.usage with 2. */
        if (mg_broker_new(&opts, &fx.broker, errstr, sizeof(errstr)) ||
            mg_broker_topic_create(fx.broker, "r.usage", 2, errstr,
                                   sizeof(errstr))) {
                fprintf(stderr, "broker: %s\n", errstr);
                return -1;
        }
        rd_kafka_conf_set(kconf, "bootstrap.servers",
                          mg_broker_bootstrap(fx.broker), errstr,
                          sizeof(errstr));
        fx.producer = rd_kafka_new(RD_KAFKA_PRODUCER, kconf, errstr,
                                   sizeof(errstr));
        if (!fx.producer ||
            mg_avro_registry_new(&fx.reg, errstr, sizeof(errstr)) ||
            mg_avro_encoder_new(fx.reg, MG_AVRO_SINGLE_OBJECT, &fx.enc,
                                errstr, sizeof(errstr))) {
                fprintf(stderr, "producer: %s\n", errstr);
                return -1;
        }
        /* Interleave the partitions, so production order (the Kafka
         * timestamps) is not partition order. */
        for (i = 0; i < 8; i++)
                for (p = 0; p < PART_CNT; p++) {
                        int s = history[p][i];

                        if (history_len(p) <= i)
                                continue;
                        produce(p, s == -1   ? MSG_UNDECODABLE
                                   : s == -2 ? MSG_INVALID
                                             : MSG_GOOD,
                                s > 0 ? s : 1);
                }
        fx.kafka_keys[0] = "bootstrap.servers";
        fx.kafka_values[0] = (char *)mg_broker_bootstrap(fx.broker);
        fx.conf.topic_auth = "r.auth";
        fx.conf.topic_usage = "r.usage";
        fx.conf.topic_signals = "r.auth";
        fx.conf.fetch_wait_ms = 10;
        fx.conf.kafka.cnt = 1;
        fx.conf.kafka.keys = fx.kafka_keys;
        fx.conf.kafka.values = fx.kafka_values;
        return 0;
}

static int teardown(void **state) {
        mg_avro_encoder_destroy(fx.enc);
        mg_avro_registry_destroy(fx.reg);
        if (fx.producer)
                rd_kafka_destroy(fx.producer);
        mg_broker_destroy(fx.broker);
        return 0;
}

/* What a read delivered. */
struct got {
        char ids[64][16];        /* event_ids in delivery order */
        int cnt;
        int stop_after;          /* event_cb returns 1 after this many */
        int produce_on_first;    /* produce one more message meanwhile */
        char bad[8][64];         /* "topic/partition/offset/err" */
        int bad_cnt;
};

static int got_event(void *opaque, const struct mg_event *ev) {
        struct got *g = opaque;

        assert_true(g->cnt < 64);
        snprintf(g->ids[g->cnt++], sizeof(g->ids[0]), "%s", ev->event_id);
        /* The origin names conf's topic and the message. */
        assert_true(ev->origin.topic == fx.conf.topic_auth ||
                    ev->origin.topic == fx.conf.topic_usage);
        if (g->produce_on_first && g->cnt == 1)
                produce(2, MSG_GOOD, 1);
        return g->stop_after && g->cnt >= g->stop_after;
}

static void got_bad(void *opaque, const char *topic, int32_t partition,
                    int64_t offset, mg_err_t err, const char *errstr) {
        struct got *g = opaque;

        assert_true(g->bad_cnt < 8);
        assert_true(errstr[0] != '\0');
        snprintf(g->bad[g->bad_cnt++], sizeof(g->bad[0]),
                 "%s/%" PRId32 "/%" PRId64 "/%s", topic, partition, offset,
                 mg_err_name(err));
}

/* The model's answer: per partition the messages in [from, to) (offsets,
 * or Kafka timestamps when from_seq/to_seq >= 0), merged. */
struct want {
        char ids[64][16];
        int cnt;
        char bad[8][64];
        int bad_cnt;
        uint64_t consumed;
};

static void model_read(int64_t from_off, int64_t to_off, int from_seq,
                       int to_seq, struct want *w) {
        int head[PART_CNT], stop[PART_CNT], p, i;

        memset(w, 0, sizeof(*w));
        for (p = 0; p < PART_CNT; p++) {
                const struct model_part *mp = &model[p];

                head[p] = from_off < mp->cnt ? (int)from_off : mp->cnt;
                stop[p] = to_off < mp->cnt ? (int)to_off : mp->cnt;
                /* A time bound: the first message stamped at or after. */
                if (from_seq >= 0)
                        for (head[p] = 0; head[p] < mp->cnt &&
                                          mp->msgs[head[p]].seq < from_seq;
                             head[p]++)
                                ;
                if (to_seq >= 0)
                        for (stop[p] = 0; stop[p] < mp->cnt &&
                                          mp->msgs[stop[p]].seq < to_seq;
                             stop[p]++)
                                ;
                for (i = head[p]; i < stop[p]; i++) {
                        w->consumed++;
                        if (mp->msgs[i].kind != MSG_GOOD)
                                snprintf(w->bad[w->bad_cnt++],
                                         sizeof(w->bad[0]),
                                         "%s/%" PRId32 "/%d/%s", mp->topic,
                                         mp->partition, i,
                                         mp->msgs[i].kind == MSG_INVALID
                                                 ? "invalid"
                                                 : "bad_magic");
                }
        }
        for (;;) {
                int best = -1;

                for (p = 0; p < PART_CNT; p++) {
                        while (head[p] < stop[p] &&
                               model[p].msgs[head[p]].kind != MSG_GOOD)
                                head[p]++;
                        if (head[p] < stop[p] &&
                            (best < 0 || model[p].msgs[head[p]].ev_s <
                                                 model[best].msgs[head[best]]
                                                         .ev_s))
                                best = p;
                }
                if (best < 0)
                        break;
                snprintf(w->ids[w->cnt++], sizeof(w->ids[0]), "%s",
                         model[best].msgs[head[best]++].event_id);
        }
}

/* Bad messages may be reported in any order across partitions. */
static int bad_cmp(const void *a, const void *b) {
        return strcmp(a, b);
}

static void read_and_check(const char *from, const char *to,
                           const struct want *w, struct mg_range_stats *st) {
        struct mg_range_bound fb, tb;
        struct got g;
        char errstr[512];
        int i;

        memset(&g, 0, sizeof(g));
        assert_int_equal(mg_range_bound_parse(from, &fb, errstr,
                                              sizeof(errstr)),
                         MG_OK);
        assert_int_equal(mg_range_bound_parse(to, &tb, errstr,
                                              sizeof(errstr)),
                         MG_OK);
        if (mg_range_read(&fx.conf, &fb, &tb, got_event, got_bad, &g, st,
                          errstr, sizeof(errstr)))
                fail_msg("read %s..%s: %s", from, to, errstr);
        for (i = 0; i < g.cnt && i < w->cnt; i++)
                if (strcmp(g.ids[i], w->ids[i]))
                        fail_msg("%s..%s: event %d is %s, want %s", from, to,
                                 i, g.ids[i], w->ids[i]);
        assert_int_equal(g.cnt, w->cnt);
        qsort(g.bad, (size_t)g.bad_cnt, sizeof(g.bad[0]), bad_cmp);
        assert_int_equal(g.bad_cnt, w->bad_cnt);
        for (i = 0; i < g.bad_cnt; i++)
                assert_string_equal(g.bad[i], w->bad[i]);
        assert_int_equal(st->delivered, (uint64_t)w->cnt);
        assert_int_equal(st->bad, (uint64_t)w->bad_cnt);
        assert_int_equal(st->consumed, w->consumed);
        assert_int_equal(st->partitions, PART_CNT);
        assert_false(st->stopped);
}

static void test_read_all(void **state) {
        struct mg_range_stats st;
        struct want w;

        /* Worked by hand from the history: ties at 20 go to r.auth [1]
         * (e1, e5) before r.usage [0] (e3); r.auth [1]'s 40 (e9) stays
         * before its 35 (e12); e4 and e7 are bad. */
        static const char *const by_hand[] = {"e2", "e0", "e1", "e5",
                                              "e3", "e8", "e9", "e12",
                                              "e10", "e11", "e6", "e13"};
        size_t i;

        model_read(0, INT64_MAX, -1, -1, &w);
        assert_int_equal(w.cnt, 12);
        for (i = 0; i < 12; i++)
                assert_string_equal(w.ids[i], by_hand[i]);
        assert_int_equal(w.bad_cnt, 2);
        assert_string_equal(w.bad[0], "r.auth/0/1/bad_magic");
        assert_string_equal(w.bad[1], "r.usage/0/1/invalid");
        read_and_check("earliest", "latest", &w, &st);
        assert_int_equal(st.empty, 1); /* r.usage [1] */
        assert_int_equal(st.in_range, 14);
        assert_int_equal(st.bad_by_err[MG_ERR_BAD_MAGIC], 1);
        assert_int_equal(st.bad_by_err[MG_ERR_INVALID], 1);
        assert_false(st.time_scan);
}

static void test_read_offsets(void **state) {
        struct mg_range_stats st;
        struct want w;

        model_read(1, 3, -1, -1, &w);
        assert_int_equal(w.cnt, 5); /* offsets 1 and 2: two are bad */
        assert_int_equal(w.bad_cnt, 2);
        read_and_check("@1", "@3", &w, &st);
        /* Past the end of every partition: nothing, and no error. */
        model_read(100, INT64_MAX, -1, -1, &w);
        read_and_check("@100", "latest", &w, &st);
        assert_int_equal(st.empty, PART_CNT);
        assert_int_equal(w.cnt, 0);
}

static void test_read_empty_ranges(void **state) {
        char t5[40], t9[40];
        const char *same[][2] = {{"@2", "@2"},  {"earliest", "earliest"},
                                 {"latest", "latest"}, {t5, t5},
                                 {"@3", "@1"}, {t9, t5}};
        struct mg_range_stats st;
        struct want w;
        size_t i;

        mg_time_format_rfc3339(MSG_BASE_MS + 5000, t5, sizeof(t5));
        mg_time_format_rfc3339(MSG_BASE_MS + 9000, t9, sizeof(t9));
        memset(&w, 0, sizeof(w));
        for (i = 0; i < sizeof(same) / sizeof(*same); i++) {
                read_and_check(same[i][0], same[i][1], &w, &st);
                assert_int_equal(st.consumed, 0);
                assert_int_equal(st.scanned, 0);
        }
}

/* Time bounds select by Kafka timestamp, not event time. The embedded
 * broker cannot look offsets up by time, so this is the scan. */
static void test_read_times(void **state) {
        struct mg_range_stats st;
        struct want w;
        char from[40], to[40];

        mg_time_format_rfc3339(MSG_BASE_MS + 3000, from, sizeof(from));
        mg_time_format_rfc3339(MSG_BASE_MS + 11000, to, sizeof(to));
        model_read(0, INT64_MAX, 3, 11, &w);
        assert_true(w.cnt >= 5 && w.cnt < 12);
        read_and_check(from, to, &w, &st);
        assert_true(st.time_scan);
        assert_true(st.scanned > 0);

        /* A time bound with an offset bound; a start after every message
         * and an end before every message read nothing. */
        model_read(0, 2, 3, -1, &w);
        read_and_check(from, "@2", &w, &st);
        memset(&w, 0, sizeof(w));
        read_and_check("2030-01-01T00:00:00Z", "latest", &w, &st);
        read_and_check("earliest", "2001-01-01T00:00:00Z", &w, &st);
}

static void test_read_stop(void **state) {
        struct mg_range_bound fb = {MG_RANGE_EARLIEST, 0};
        struct mg_range_bound tb = {MG_RANGE_LATEST, 0};
        struct mg_range_stats st;
        struct want w;
        struct got g;
        char errstr[512];

        memset(&g, 0, sizeof(g));
        g.stop_after = 3;
        model_read(0, INT64_MAX, -1, -1, &w);
        assert_int_equal(mg_range_read(&fx.conf, &fb, &tb, got_event, NULL,
                                       &g, &st, errstr, sizeof(errstr)),
                         MG_OK);
        assert_int_equal(g.cnt, 3);
        assert_true(st.stopped);
        assert_int_equal(st.delivered, 3);
        assert_string_equal(g.ids[2], w.ids[2]);
}

/* "latest" is the high watermark when the read starts: a message
 * produced during the read is not read. Runs last: it adds to the
 * history (and to the model, so the model stays right). */
static void test_read_latest_fixed(void **state) {
        struct mg_range_bound fb = {MG_RANGE_EARLIEST, 0};
        struct mg_range_bound tb = {MG_RANGE_LATEST, 0};
        struct mg_range_stats st;
        struct want w;
        struct got g;
        char errstr[512];

        model_read(0, INT64_MAX, -1, -1, &w);
        memset(&g, 0, sizeof(g));
        g.produce_on_first = 1;
        assert_int_equal(mg_range_read(&fx.conf, &fb, &tb, got_event, got_bad,
                                       &g, &st, errstr, sizeof(errstr)),
                         MG_OK);
        assert_int_equal(g.cnt, w.cnt);
        /* The next read has it. */
        model_read(0, INT64_MAX, -1, -1, &w);
        read_and_check("earliest", "latest", &w, &st);
        assert_int_equal(st.delivered, (uint64_t)g.cnt + 1);
}

static void test_read_missing_topic(void **state) {
        struct mg_range_bound fb = {MG_RANGE_EARLIEST, 0};
        struct mg_range_bound tb = {MG_RANGE_LATEST, 0};
        struct mg_ingest_conf conf = fx.conf;
        struct got g;
        char errstr[512];
        int i;

        memset(&g, 0, sizeof(g));
        conf.topic_signals = "r.missing";
        /* Twice: the first look must not have created it. */
        for (i = 0; i < 2; i++) {
                assert_int_equal(mg_range_read(&conf, &fb, &tb, got_event,
                                               got_bad, &g, NULL, errstr,
                                               sizeof(errstr)),
                                 MG_ERR_NOT_FOUND);
                assert_non_null(strstr(errstr, "'r.missing'"));
                assert_non_null(strstr(errstr, "ingest.topics.signals"));
        }
        assert_int_equal(g.cnt, 0);
}

static void test_read_bad_kafka_key(void **state) {
        struct mg_range_bound fb = {MG_RANGE_EARLIEST, 0};
        struct mg_range_bound tb = {MG_RANGE_LATEST, 0};
        struct mg_ingest_conf conf = fx.conf;
        char *keys[] = {"bootstrap.servers", "no.such.property"};
        char *values[] = {fx.kafka_values[0], "1"};
        char errstr[512];

        conf.kafka.cnt = 2;
        conf.kafka.keys = keys;
        conf.kafka.values = values;
        assert_int_equal(mg_range_read(&conf, &fb, &tb, got_event, NULL, NULL,
                                       NULL, errstr, sizeof(errstr)),
                         MG_ERR_CONFIG);
        assert_non_null(strstr(errstr, "kafka.no.such.property"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_bound_parse),
                cmocka_unit_test(test_bound_format),
                cmocka_unit_test(test_read_all),
                cmocka_unit_test(test_read_offsets),
                cmocka_unit_test(test_read_empty_ranges),
                cmocka_unit_test(test_read_times),
                cmocka_unit_test(test_read_stop),
                cmocka_unit_test(test_read_missing_topic),
                cmocka_unit_test(test_read_bad_kafka_key),
                cmocka_unit_test(test_read_latest_fixed),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
