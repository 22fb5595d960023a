/*
 * test_riskcache.c — the decision service's live-risk cache without a
 * Redis server (the subscriber retries against a closed port): records
 * arriving on the channel, freshness by age, newer-wins ordering, unknown
 * identities under an unreachable Redis, the memory bound, the size of an
 * entry, and the staleness counters behind /metrics.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "mg_riskcache.h"

static struct mg_riskcache_conf rconf = {
        30000, 1000, 20, 60000, 30LL * 86400000};
/* Port 1 on loopback: nothing listens, connects fail at once. */
static struct mg_redis_conf redis_conf = {"127.0.0.1:1", 100, 100, NULL,
                                          "mg:risk", 0, 64};

static const char rec_a[] =
        "{\"identity\":\"svc-a\",\"risk\":47.5,\"level\":\"medium\","
        "\"ts\":1000,\"reasons\":[{\"signal\":\"new_source\",\"points\":30,"
        "\"detail\":\"198.51.100.0/24 never seen\"},{\"signal\":"
        "\"rate_spike\",\"points\":17.5,\"detail\":\"40 events in a "
        "minute\"}],\"updated\":5000}";

static void test_update_then_get(void **state) {
        struct mg_riskcache *rc;
        struct mg_riskcache_conn *conn;
        struct mg_risk_view view;
        char errstr[128];

        assert_int_equal(mg_riskcache_new(&rconf, &redis_conf, &rc, errstr,
                                          sizeof(errstr)),
                         MG_OK);
        conn = mg_riskcache_conn_new(rc);
        assert_int_equal(mg_riskcache_update(rc, rec_a, strlen(rec_a), 10000),
                         MG_OK);
        mg_riskcache_get(rc, conn, "svc-a", 10500, &view);
        assert_true(view.known);
        assert_true(view.fresh);
        assert_float_equal(view.risk.score, 47.5, 1e-6);
        assert_int_equal(view.risk.level, MG_RISK_MEDIUM);
        assert_int_equal(view.risk.reason_cnt, 2);
        assert_int_equal(view.risk.reasons[0].signal, MG_SIG_NEW_SOURCE);
        assert_string_equal(view.risk.reasons[0].detail,
                            "198.51.100.0/24 never seen");
        /* Past the staleness bound, with no channel, it is not fresh, but
         * the last known risk is still reported. */
        mg_riskcache_get(rc, conn, "svc-a", 10000 + 30001, &view);
        assert_false(view.fresh);
        assert_true(view.known);
        assert_float_equal(view.risk.score, 47.5, 1e-6);
        mg_riskcache_conn_destroy(conn);
        mg_riskcache_destroy(rc);
}

static void test_newer_record_wins(void **state) {
        static const char older[] =
                "{\"identity\":\"svc-a\",\"risk\":10,\"level\":\"low\","
                "\"ts\":900,\"reasons\":[],\"updated\":4000}";
        static const char newer[] =
                "{\"identity\":\"svc-a\",\"risk\":90,\"level\":\"critical\","
                "\"ts\":1100,\"reasons\":[],\"updated\":6000}";
        struct mg_riskcache *rc;
        struct mg_riskcache_conn *conn;
        struct mg_risk_view view;
        char errstr[128];

        assert_int_equal(mg_riskcache_new(&rconf, &redis_conf, &rc, errstr,
                                          sizeof(errstr)),
                         MG_OK);
        conn = mg_riskcache_conn_new(rc);
        mg_riskcache_update(rc, rec_a, strlen(rec_a), 10000);
        mg_riskcache_update(rc, older, strlen(older), 10001);
        mg_riskcache_get(rc, conn, "svc-a", 10002, &view);
        assert_float_equal(view.risk.score, 47.5, 1e-6);
        mg_riskcache_update(rc, newer, strlen(newer), 10003);
        mg_riskcache_get(rc, conn, "svc-a", 10004, &view);
        assert_float_equal(view.risk.score, 90, 1e-6);
        assert_int_equal(view.risk.level, MG_RISK_CRITICAL);
        mg_riskcache_conn_destroy(conn);
        mg_riskcache_destroy(rc);
}

static void test_bad_records_refused(void **state) {
        static const char *const bad[] = {
                "not json",
                "[1,2]",
                "{\"risk\":1,\"level\":\"low\"}",
                "{\"identity\":\"x\",\"risk\":101,\"level\":\"low\"}",
                "{\"identity\":\"x\",\"risk\":1,\"level\":\"severe\"}",
                "{\"identity\":\"\",\"risk\":1,\"level\":\"low\"}",
        };
        struct mg_riskcache *rc;
        struct mg_riskcache_stats st;
        char errstr[128];
        size_t i;

        assert_int_equal(mg_riskcache_new(&rconf, &redis_conf, &rc, errstr,
                                          sizeof(errstr)),
                         MG_OK);
        for (i = 0; i < sizeof(bad) / sizeof(*bad); i++)
                assert_int_not_equal(
                        mg_riskcache_update(rc, bad[i], strlen(bad[i]), 1),
                        MG_OK);
        mg_riskcache_stats_get(rc, &st);
        assert_int_equal(st.entries, 0);
        mg_riskcache_destroy(rc);
}

static void test_unreachable_redis_is_not_fresh(void **state) {
        struct mg_riskcache *rc;
        struct mg_riskcache_conn *conn;
        struct mg_risk_view view;
        struct mg_riskcache_stats st;
        char errstr[128];

        assert_int_equal(mg_riskcache_new(&rconf, &redis_conf, &rc, errstr,
                                          sizeof(errstr)),
                         MG_OK);
        conn = mg_riskcache_conn_new(rc);
        mg_riskcache_get(rc, conn, "never-seen", 1000, &view);
        assert_false(view.fresh);
        assert_false(view.known);
        mg_riskcache_stats_get(rc, &st);
        assert_true(st.redis_errors >= 1);
        assert_int_equal(st.misses, 1);
        mg_riskcache_conn_destroy(conn);
        mg_riskcache_destroy(rc);
}

/* What /metrics reports about staleness: the last arrival, the channel
 * delay histogram, and the "updated" of the record a view comes from. */
static void test_staleness_counters(void **state) {
        static const char no_updated[] =
                "{\"identity\":\"svc-b\",\"risk\":5,\"level\":\"low\","
                "\"ts\":1000,\"reasons\":[]}";
        static const char skewed[] =
                "{\"identity\":\"svc-c\",\"risk\":5,\"level\":\"low\","
                "\"ts\":1000,\"reasons\":[],\"updated\":20000}";
        struct mg_riskcache *rc;
        struct mg_riskcache_conn *conn;
        struct mg_riskcache_stats st;
        struct mg_risk_view view;
        char errstr[128];
        uint64_t total;
        int i;

        assert_int_equal(mg_riskcache_new(&rconf, &redis_conf, &rc, errstr,
                                          sizeof(errstr)),
                         MG_OK);
        conn = mg_riskcache_conn_new(rc);
        mg_riskcache_stats_get(rc, &st);
        assert_true(st.started_ms > 0);
        assert_int_equal(st.last_update_ms, 0);
        /* Nothing listens on the port: never subscribed. */
        assert_int_equal(st.subscriptions, 0);
        for (i = 0; i <= MG_RISKCACHE_DELAY_BUCKETS; i++)
                assert_int_equal(st.delay_buckets[i], 0);

        /* rec_a was saved at 5000 and arrives at 5020: 20 ms. */
        assert_int_equal(mg_riskcache_update(rc, rec_a, strlen(rec_a), 5020),
                         MG_OK);
        mg_riskcache_stats_get(rc, &st);
        assert_int_equal(st.last_update_ms, 5020);
        assert_int_equal(st.delay_sum_ms, 20);
        /* Buckets 1, 2, 5, 10, 25 ms: the fifth. */
        assert_int_equal(mg_riskcache_delay_bounds_ms[4], 25);
        assert_int_equal(st.delay_buckets[4], 1);
        /* The view carries the record's "updated". */
        mg_riskcache_get(rc, conn, "svc-a", 6000, &view);
        assert_int_equal(view.updated_ms, 5000);

        /* Without "updated": an arrival, no delay. */
        assert_int_equal(mg_riskcache_update(rc, no_updated,
                                             strlen(no_updated), 7000),
                         MG_OK);
        /* Saved "after" it arrived (clocks apart): counted as 0 ms. */
        assert_int_equal(mg_riskcache_update(rc, skewed, strlen(skewed),
                                             8000),
                         MG_OK);
        /* Far behind: past the last bound. */
        assert_int_equal(mg_riskcache_update(rc, rec_a, strlen(rec_a),
                                             5000 + 60000),
                         MG_OK);
        mg_riskcache_stats_get(rc, &st);
        assert_int_equal(st.last_update_ms, 65000);
        assert_int_equal(st.updates, 4);
        assert_int_equal(st.delay_buckets[0], 1);
        assert_int_equal(st.delay_buckets[MG_RISKCACHE_DELAY_BUCKETS], 1);
        assert_int_equal(st.delay_sum_ms, 20 + 0 + 60000);
        for (total = 0, i = 0; i <= MG_RISKCACHE_DELAY_BUCKETS; i++)
                total += st.delay_buckets[i];
        assert_int_equal(total, 3);
        mg_riskcache_get(rc, conn, "svc-b", 8000, &view);
        assert_true(view.known);
        assert_int_equal(view.updated_ms, 0);
        /* A refused record is no arrival. */
        assert_int_not_equal(mg_riskcache_update(rc, "{}", 2, 90000), MG_OK);
        mg_riskcache_stats_get(rc, &st);
        assert_int_equal(st.last_update_ms, 65000);
        mg_riskcache_conn_destroy(conn);
        mg_riskcache_destroy(rc);
}

static void test_memory_bound_and_entry_size(void **state) {
        struct mg_riskcache *rc;
        struct mg_riskcache_stats st;
        char errstr[128], rec[512];
        int i;

        assert_int_equal(mg_riskcache_new(&rconf, &redis_conf, &rc, errstr,
                                          sizeof(errstr)),
                         MG_OK);
        for (i = 0; i < 3000; i++) {
                int n = snprintf(rec, sizeof(rec),
                                 "{\"identity\":\"spiffe://corp/ns/sa-%d\","
                                 "\"risk\":30,\"level\":\"medium\",\"ts\":1,"
                                 "\"reasons\":[{\"signal\":\"new_source\","
                                 "\"points\":30,\"detail\":\"198.51.100.0/24 "
                                 "never seen\"}],\"updated\":%d}",
                                 i, i + 1);

                assert_int_equal(mg_riskcache_update(rc, rec, (size_t)n, 10),
                                 MG_OK);
        }
        mg_riskcache_stats_get(rc, &st);
        /* Bounded by decision.max_identities (1000 here). */
        assert_true(st.entries <= 1000);
        assert_true(st.entries > 500);
        /* A typical entry: identity + one reason, well under 256 bytes. */
        print_message("risk cache: %.1f bytes per identity\n",
                      (double)st.bytes / (double)st.entries);
        assert_true(st.bytes / st.entries <= 256);
        mg_riskcache_destroy(rc);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_update_then_get),
                cmocka_unit_test(test_newer_record_wins),
                cmocka_unit_test(test_bad_records_refused),
                cmocka_unit_test(test_unreachable_redis_is_not_fresh),
                cmocka_unit_test(test_memory_bound_and_entry_size),
                cmocka_unit_test(test_staleness_counters),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
