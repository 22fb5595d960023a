/*
 * test_config.c — unit tests of the table-driven configuration loader
 * (common/mg_config.c).
 *
 * One small table over struct tconf covers every property type, with and
 * without bounds and defaults, plus a map; a second section checks that
 * sections coexist. Every test starts from a fresh mg_conf (setup/teardown)
 * so defaults are re-applied and ASan sees every string freed. Error
 * messages are compared in full where their exact form is the contract
 * (file:line:col: key: reason), by substring elsewhere.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "mg_config.h"

struct tconf {
        char *group_id;         /* STR, default, length 1..64 */
        int64_t batch_size;     /* INT 1..100000 */
        int64_t batch_wait_ms;  /* MS 1ms..1h */
        int64_t offset;         /* INT, unbounded, no default */
        char *password;         /* STR, no default, unbounded */
        double decay;           /* DOUBLE 0..1 */
        double rate;            /* DOUBLE, unbounded, no default */
        int enabled;            /* BOOL, default true */
        int debug;              /* BOOL, no default */
        int64_t window_ms;      /* MS, unbounded, default 7d */
        struct mg_conf_map kafka; /* MAP kafka.* */
};

struct tserve {
        char *listen; /* STR, default */
        int64_t port; /* INT 1..65535 */
};

#define TC(f) offsetof(struct tconf, f)
static const struct mg_conf_prop tconf_props[] = {
        {"ingest.group_id", MG_CONF_STR, TC(group_id), "mintgate", 1, 64, 0,
         "Consumer group of the scoring workers."},
        {"ingest.batch_size", MG_CONF_INT, TC(batch_size), "500", 1, 100000,
         1, "Most events per sink batch."},
        {"ingest.batch_wait_ms", MG_CONF_MS, TC(batch_wait_ms), "250ms", 1,
         3600000, 1, "Longest wait to fill a batch."},
        {"ingest.offset", MG_CONF_INT, TC(offset), NULL, 0, 0, 0,
         "Unbounded integer."},
        {"redis.password", MG_CONF_STR, TC(password), NULL, 0, 0, 0,
         "Password | with a pipe."},
        {"scoring.decay", MG_CONF_DOUBLE, TC(decay), "0.5", 0, 1, 1,
         "Decay factor."},
        {"scoring.rate", MG_CONF_DOUBLE, TC(rate), NULL, 0, 0, 0,
         "Unbounded double."},
        {"scoring.enabled", MG_CONF_BOOL, TC(enabled), "true", 0, 0, 1,
         "Whether scoring runs."},
        {"scoring.debug", MG_CONF_BOOL, TC(debug), NULL, 0, 0, 0,
         "Debug output."},
        {"scoring.window_ms", MG_CONF_MS, TC(window_ms), "7d", 0, 0, 0,
         "Baseline window."},
        {"kafka", MG_CONF_MAP, TC(kafka), NULL, 0, 0, 0,
         "Passed to librdkafka."},
};

#define TS(f) offsetof(struct tserve, f)
static const struct mg_conf_prop tserve_props[] = {
        {"serve.listen", MG_CONF_STR, TS(listen), "127.0.0.1", 0, 0, 0,
         "Listen address."},
        {"serve.port", MG_CONF_INT, TS(port), "7070", 1, 65535, 0,
         "Listen port."},
};

#define NPROPS(t) (sizeof(t) / sizeof(*(t)))

static struct mg_conf *conf;
static struct tconf tc;
static struct tserve ts;
static char errstr[1024];

static int setup(void **state) {
        memset(&tc, 0x5a, sizeof(tc)); /* defaults must overwrite this */
        memset(&ts, 0, sizeof(ts));
        conf = mg_conf_new();
        if (!conf)
                return -1;
        if (mg_conf_add_section(conf, "Test", tconf_props, NPROPS(tconf_props),
                                &tc, errstr, sizeof(errstr)) ||
            mg_conf_add_section(conf, "Serve", tserve_props,
                                NPROPS(tserve_props), &ts, errstr,
                                sizeof(errstr)))
                return -1;
        return 0;
}

static int teardown(void **state) {
        mg_conf_destroy(conf);
        conf = NULL;
        return 0;
}

static mg_err_t load(const char *yaml) {
        errstr[0] = '\0';
        return mg_conf_load_buf(conf, "test.yaml", yaml, strlen(yaml), errstr,
                                sizeof(errstr));
}

static mg_err_t set(const char *key, const char *value) {
        errstr[0] = '\0';
        return mg_conf_set(conf, key, value, errstr, sizeof(errstr));
}

static void load_ok(const char *yaml) {
        if (load(yaml))
                fail_msg("%s\n--> %s", yaml, errstr);
}

/* Load yaml, expect MG_ERR_CONFIG and exactly want. */
static void load_err(const char *yaml, const char *want) {
        mg_err_t err = load(yaml);

        if (err != MG_ERR_CONFIG || strcmp(errstr, want))
                fail_msg("%s\n--> err %d: \"%s\"\n(want \"%s\")", yaml, err,
                         errstr, want);
}

/* Load yaml, expect MG_ERR_CONFIG with want in the message. */
static void load_err_has(const char *yaml, const char *want) {
        mg_err_t err = load(yaml);

        if (err != MG_ERR_CONFIG || !strstr(errstr, want))
                fail_msg("%s\n--> err %d: \"%s\"\n(want \"...%s...\")", yaml,
                         err, errstr, want);
}

static void set_ok(const char *key, const char *value) {
        if (set(key, value))
                fail_msg("--set %s=%s: %s", key, value, errstr);
}

static void set_err_has(const char *key, const char *value,
                        const char *want) {
        mg_err_t err = set(key, value);

        if (err != MG_ERR_CONFIG || !strstr(errstr, want))
                fail_msg("--set %s=%s --> err %d: \"%s\" (want \"...%s...\")",
                         key, value, err, errstr, want);
}

static void test_defaults(void **state) {
        assert_string_equal(tc.group_id, "mintgate");
        assert_int_equal(tc.batch_size, 500);
        assert_int_equal(tc.batch_wait_ms, 250);
        assert_int_equal(tc.offset, 0);
        assert_null(tc.password);
        assert_true(tc.decay == 0.5);
        assert_true(tc.rate == 0);
        assert_int_equal(tc.enabled, 1);
        assert_int_equal(tc.debug, 0);
        assert_int_equal(tc.window_ms, 7LL * 86400 * 1000);
        assert_int_equal(tc.kafka.cnt, 0);
        assert_null(tc.kafka.keys);
        assert_null(tc.kafka.values);
        assert_string_equal(ts.listen, "127.0.0.1");
        assert_int_equal(ts.port, 7070);
}

static void test_int(void **state) {
        set_ok("ingest.batch_size", "42");
        assert_int_equal(tc.batch_size, 42);
        set_ok("ingest.batch_size", "+7");
        assert_int_equal(tc.batch_size, 7);
        set_ok("ingest.batch_size", "2k");
        assert_int_equal(tc.batch_size, 2000);
        set_ok("ingest.batch_size", "100k");
        assert_int_equal(tc.batch_size, 100000);
        set_ok("ingest.batch_size", "1");
        assert_int_equal(tc.batch_size, 1);

        set_err_has("ingest.batch_size", "0",
                    "--set ingest.batch_size: 0 is below the minimum 1");
        set_err_has("ingest.batch_size", "100001",
                    "100001 is above the maximum 100000");
        set_err_has("ingest.batch_size", "101k",
                    "101000 is above the maximum 100000");
        set_err_has("ingest.batch_size", "-1", "below the minimum 1");
        /* A failed set leaves the old value. */
        assert_int_equal(tc.batch_size, 1);

        set_err_has("ingest.batch_size", "abc", "'abc' is not an integer");
        set_err_has("ingest.batch_size", "1.5", "'1.5' is not an integer");
        set_err_has("ingest.batch_size", "", "'' is not an integer");
        set_err_has("ingest.batch_size", "1kk", "not an integer");
        set_err_has("ingest.batch_size", "1K", "not an integer");
        set_err_has("ingest.batch_size", "k", "not an integer");
        set_err_has("ingest.batch_size", " 5", "not an integer");
        set_err_has("ingest.batch_size", "0x10", "not an integer");

        /* Unbounded: the whole int64 range, suffixes, overflow. */
        set_ok("ingest.offset", "9223372036854775807");
        assert_int_equal(tc.offset, INT64_MAX);
        set_ok("ingest.offset", "-9223372036854775808");
        assert_true(tc.offset == INT64_MIN);
        set_ok("ingest.offset", "0");
        assert_int_equal(tc.offset, 0);
        set_ok("ingest.offset", "10G");
        assert_int_equal(tc.offset, 10000000000LL);
        set_ok("ingest.offset", "-3M");
        assert_int_equal(tc.offset, -3000000);
        set_err_has("ingest.offset", "9223372036854775808",
                    "does not fit in a 64-bit integer");
        set_err_has("ingest.offset", "-9223372036854775809",
                    "does not fit in a 64-bit integer");
        set_err_has("ingest.offset", "9300000000G",
                    "does not fit in a 64-bit integer");
}

static void test_double(void **state) {
        set_ok("scoring.decay", "0.25");
        assert_true(tc.decay == 0.25);
        set_ok("scoring.decay", "1e-1");
        assert_true(tc.decay == 0.1);
        set_ok("scoring.decay", "1");
        assert_true(tc.decay == 1.0);
        set_ok("scoring.decay", "0");
        assert_true(tc.decay == 0.0);
        set_err_has("scoring.decay", "1.5", "1.5 is above the maximum 1");
        set_err_has("scoring.decay", "-0.1", "-0.1 is below the minimum 0");
        assert_true(tc.decay == 0.0);

        set_ok("scoring.rate", "2.5k");
        assert_true(tc.rate == 2500.0);
        set_ok("scoring.rate", "-4M");
        assert_true(tc.rate == -4e6);
        set_err_has("scoring.rate", "nan", "'nan' is not a number");
        set_err_has("scoring.rate", "inf", "not a number");
        set_err_has("scoring.rate", "0x10", "not a number");
        set_err_has("scoring.rate", "1,5", "not a number");
        set_err_has("scoring.rate", "", "not a number");
        set_err_has("scoring.rate", "1e999", "'1e999' is out of range");
        set_err_has("scoring.rate", "1e308G", "out of range");
}

static void test_bool(void **state) {
        static const char *const yes[] = {"true", "yes", "on", "1", "TRUE",
                                          "Yes"};
        static const char *const no[] = {"false", "no", "off", "0", "False",
                                         "OFF"};
        size_t i;

        for (i = 0; i < NPROPS(yes); i++) {
                tc.debug = 0;
                set_ok("scoring.debug", yes[i]);
                assert_int_equal(tc.debug, 1);
        }
        for (i = 0; i < NPROPS(no); i++) {
                tc.debug = 1;
                set_ok("scoring.debug", no[i]);
                assert_int_equal(tc.debug, 0);
        }
        set_err_has("scoring.debug", "maybe",
                    "--set scoring.debug: 'maybe' is not a boolean");
        set_err_has("scoring.debug", "2", "not a boolean");
        set_err_has("scoring.debug", "", "not a boolean");
        set_err_has("scoring.debug", "truex", "not a boolean");
}

static void test_str(void **state) {
        set_ok("ingest.group_id", "g");
        assert_string_equal(tc.group_id, "g");
        set_ok("ingest.group_id", "second value replaces the first");
        assert_string_equal(tc.group_id, "second value replaces the first");
        set_err_has("ingest.group_id", "",
                    "--set ingest.group_id: '' is 0 bytes long, expected 1 "
                    "to 64");
        set_err_has("ingest.group_id",
                    "01234567890123456789012345678901234567890123456789"
                    "012345678901234",
                    "is 65 bytes long, expected 1 to 64");
        assert_string_equal(tc.group_id, "second value replaces the first");
        set_ok("redis.password", "");
        assert_non_null(tc.password);
        assert_string_equal(tc.password, "");
}

static void test_durations(void **state) {
        static const struct {
                const char *text;
                int64_t ms;
        } good[] = {
                {"250ms", 250},      {"5s", 5000},        {"2m", 120000},
                {"1h", 3600000},     {"7d", 604800000},   {"100", 100},
                {"0", 0},            {"0s", 0},           {"90m", 5400000},
                {"106751991167d", 106751991167LL * 86400000},
        };
        static const char *const bad[] = {
                "",    "s",     "5 s", "5sec", "-5s", "1.5s", "5S",
                "5ms5", "ms",   " 5s", "5h ", "1e3", "5us",
                "106751991168d", "9223372036854775808",
        };
        int64_t ms;
        size_t i;

        for (i = 0; i < NPROPS(good); i++) {
                ms = -1;
                assert_int_equal(mg_conf_parse_ms(good[i].text, &ms), MG_OK);
                assert_int_equal(ms, good[i].ms);
        }
        for (i = 0; i < NPROPS(bad); i++)
                if (mg_conf_parse_ms(bad[i], &ms) != MG_ERR_CONFIG)
                        fail_msg("'%s' accepted", bad[i]);
        assert_int_equal(mg_conf_parse_ms(NULL, &ms), MG_ERR_CONFIG);

        set_ok("ingest.batch_wait_ms", "5s");
        assert_int_equal(tc.batch_wait_ms, 5000);
        set_ok("ingest.batch_wait_ms", "1h");
        assert_int_equal(tc.batch_wait_ms, 3600000);
        set_err_has("ingest.batch_wait_ms", "0",
                    "--set ingest.batch_wait_ms: 0ms is below the minimum "
                    "1ms");
        set_err_has("ingest.batch_wait_ms", "61m",
                    "61m is above the maximum 1h");
        set_err_has("ingest.batch_wait_ms", "5 s",
                    "'5 s' is not a duration");
        set_ok("scoring.window_ms", "30d");
        assert_int_equal(tc.window_ms, 30LL * 86400000);
}

static void test_yaml_nested(void **state) {
        load_ok("# mintgate test configuration\n"
                "ingest:\n"
                "  group_id: \"workers\"   # quoted\n"
                "  batch_size: 1k\n"
                "  batch_wait_ms: 2s\n"
                "redis.password: 's3cret: yes'\n"
                "scoring:\n"
                "  decay: 0.75\n"
                "  enabled: off\n"
                "  debug: yes\n"
                "serve: {listen: '0.0.0.0', port: 8080}\n");
        assert_string_equal(tc.group_id, "workers");
        assert_int_equal(tc.batch_size, 1000);
        assert_int_equal(tc.batch_wait_ms, 2000);
        assert_string_equal(tc.password, "s3cret: yes");
        assert_true(tc.decay == 0.75);
        assert_int_equal(tc.enabled, 0);
        assert_int_equal(tc.debug, 1);
        assert_string_equal(ts.listen, "0.0.0.0");
        assert_int_equal(ts.port, 8080);
        /* Untouched keys keep their defaults. */
        assert_int_equal(tc.window_ms, 604800000);
}

static void test_yaml_unknown_key(void **state) {
        load_err("ingest:\n"
                 "  group_id: a\n"
                 "  grup_id: b\n",
                 "test.yaml:3:3: unknown key 'ingest.grup_id'; did you mean "
                 "'ingest.group_id'?");
        /* An unknown section is reported at its own key. */
        load_err("scoring:\n  decay: 0.1\ningst:\n  group_id: x\n",
                 "test.yaml:3:1: unknown key 'ingst'");
        load_err("zzz: 1\n", "test.yaml:1:1: unknown key 'zzz'");
        load_err("ingest:\n    batchsize: 3\n",
                 "test.yaml:2:5: unknown key 'ingest.batchsize'; did you "
                 "mean 'ingest.batch_size'?");
        /* A dotted key in a nested mapping. */
        load_err("ingest:\n  batch.size: 3\n",
                 "test.yaml:2:3: unknown key 'ingest.batch.size'; did you "
                 "mean 'ingest.batch_size'?");
        /* A section name given a scalar. */
        load_err("ingest: 5\n",
                 "test.yaml:1:9: expected a mapping of settings here");
}

static void test_yaml_bounds_position(void **state) {
        load_err("# mintgate\n"
                 "\n"
                 "ingest:\n"
                 "  batch_size: 0\n",
                 "test.yaml:4:15: ingest.batch_size: 0 is below the minimum "
                 "1");
        load_err("scoring: {decay: 2}\n",
                 "test.yaml:1:18: scoring.decay: 2 is above the maximum 1");
        load_err("ingest.batch_wait_ms: forever\n",
                 "test.yaml:1:23: ingest.batch_wait_ms: 'forever' is not a "
                 "duration (e.g. 250ms, 5s, 2m, 1h, 7d)");
        load_err("scoring:\n  enabled: \"maybe\"\n",
                 "test.yaml:2:12: scoring.enabled: 'maybe' is not a boolean "
                 "(true/false, yes/no, on/off, 1/0)");
        /* A NUL byte (YAML "\0" escape) is refused, not truncated. */
        load_err_has("ingest.group_id: \"a\\0b\"\n",
                     "test.yaml:1:18: ingest.group_id: value contains a NUL "
                     "byte");
}

static void test_yaml_map(void **state) {
        load_ok("kafka:\n"
                "  fetch.wait.max.ms: 10\n"
                "  client:\n"
                "    id: \"mintgate-1\"\n"
                "kafka.socket.timeout.ms: 5000\n"
                "ingest:\n"
                "  batch_size: 3\n");
        assert_int_equal(tc.kafka.cnt, 3);
        assert_string_equal(tc.kafka.keys[0], "fetch.wait.max.ms");
        assert_string_equal(tc.kafka.values[0], "10");
        assert_string_equal(tc.kafka.keys[1], "client.id");
        assert_string_equal(tc.kafka.values[1], "mintgate-1");
        assert_string_equal(tc.kafka.keys[2], "socket.timeout.ms");
        assert_string_equal(tc.kafka.values[2], "5000");

        /* Setting again replaces in place; order stays. */
        set_ok("kafka.client.id", "other");
        assert_int_equal(tc.kafka.cnt, 3);
        assert_string_equal(tc.kafka.keys[1], "client.id");
        assert_string_equal(tc.kafka.values[1], "other");
        set_ok("kafka.debug", "all");
        assert_int_equal(tc.kafka.cnt, 4);
        assert_string_equal(tc.kafka.keys[3], "debug");

        /* A second load replaces too; null removes one key. */
        load_ok("kafka.fetch.wait.max.ms: 20\nkafka.client.id: ~\n");
        assert_int_equal(tc.kafka.cnt, 3);
        assert_string_equal(tc.kafka.keys[0], "fetch.wait.max.ms");
        assert_string_equal(tc.kafka.values[0], "20");
        assert_string_equal(tc.kafka.keys[1], "socket.timeout.ms");
        assert_string_equal(tc.kafka.keys[2], "debug");

        /* The map name itself takes no scalar; null empties the map. */
        load_err("kafka: 5\n",
                 "test.yaml:1:8: kafka: expected keys below it (kafka.NAME: "
                 "value)");
        set_err_has("kafka", "x", "--set kafka: expected a key below kafka");
        set_err_has("kafka.", "x", "expected a key below kafka");
        set_err_has("kafka..x", "x", "expected a key below kafka");
        load_ok("kafka: {}\n");
        assert_int_equal(tc.kafka.cnt, 3);
        load_ok("kafka:\n");
        assert_int_equal(tc.kafka.cnt, 0);
        assert_null(tc.kafka.keys);
}

static void test_yaml_duplicates(void **state) {
        load_err("ingest.batch_size: 5\n"
                 "ingest:\n"
                 "  batch_size: 6\n",
                 "test.yaml:3:3: duplicate key 'ingest.batch_size' (first "
                 "set at 1:1)");
        load_err("kafka:\n  a: 1\nkafka.a: 2\n",
                 "test.yaml:3:1: duplicate key 'kafka.a' (first set at 2:3)");
        /* Two blocks of one section with different keys merge. */
        load_ok("ingest:\n  batch_size: 5\nscoring.decay: 0.1\n"
                "ingest:\n  group_id: g\n");
        assert_int_equal(tc.batch_size, 5);
        assert_string_equal(tc.group_id, "g");
}

static void test_yaml_null_and_empty(void **state) {
        load_ok("");
        load_ok("\n\n");
        load_ok("# only a comment\n");
        load_ok("---\n");
        load_ok("---\n...\n");
        load_ok("ingest:\n");
        load_ok("ingest: {}\n");
        assert_int_equal(tc.batch_size, 500);

        /* Null restores the default; quoted "" is an empty string. */
        set_ok("ingest.batch_size", "7");
        set_ok("ingest.group_id", "g");
        set_ok("redis.password", "pw");
        load_ok("ingest:\n  batch_size: ~\n  group_id:\n"
                "redis.password: null\n");
        assert_int_equal(tc.batch_size, 500);
        assert_string_equal(tc.group_id, "mintgate");
        assert_null(tc.password);
        load_ok("redis.password: ''\n");
        assert_string_equal(tc.password, "");
        load_err("ingest.group_id: \"\"\n",
                 "test.yaml:1:18: ingest.group_id: '' is 0 bytes long, "
                 "expected 1 to 64");
}

static void test_yaml_structure_errors(void **state) {
        load_err("ingest:\n  group_id:\n    - a\n    - b\n",
                 "test.yaml:3:5: ingest.group_id: expected a scalar value, "
                 "not a list");
        load_err("kafka: [a, b]\n",
                 "test.yaml:1:8: kafka: expected a scalar value, not a list");
        load_err("ingest:\n  batch_size:\n    x: 1\n",
                 "test.yaml:3:5: ingest.batch_size: expected a scalar value");
        load_err("- a\n- b\n",
                 "test.yaml:1:1: expected a mapping of settings at the top "
                 "level");
        load_err("hello\n",
                 "test.yaml:1:1: expected a mapping of settings at the top "
                 "level");
        load_err("ingest.batch_size: &n 5\ningest.offset: *n\n",
                 "test.yaml:2:16: aliases are not supported");
        load_err("ingest.batch_size: 5\n---\nscoring.decay: 0.5\n",
                 "test.yaml:2:1: only one YAML document is allowed");
        load_err("? [a]\n: 1\n", "test.yaml:1:3: a key must be a scalar");
        load_err("&k ingest.batch_size: 1\n*k : 2\n",
                 "test.yaml:2:1: aliases are not supported");
        load_err("ingest..batch_size: 1\n",
                 "test.yaml:1:1: malformed key 'ingest..batch_size'");
        load_err("ingest:\n  .batch_size: 1\n",
                 "test.yaml:2:3: malformed key '.batch_size'");
        load_err("'': 1\n", "test.yaml:1:1: malformed key ''");
}

static void test_yaml_malformed(void **state) {
        load_err("ingest:\n  group_id: x\n bad: 1\n",
                 "test.yaml:3:2: YAML syntax error: did not find expected "
                 "key while parsing a block mapping");
        load_err_has("scoring: {decay: 0.5\n", "YAML syntax error");
        load_err("ingest.group_id: b: c\n",
                 "test.yaml:1:19: YAML syntax error: mapping values are not "
                 "allowed in this context");
        load_err_has("ingest:\n\tgroup_id: x\n", "test.yaml:2:1: YAML "
                                                  "syntax error");
        load_err_has("key: \"unterminated\n", "test.yaml:");
        load_err_has("key: \"unterminated\n", "YAML syntax error");
        /* Bytes that are not UTF-8. */
        load_err_has("ingest.group_id: \xff\xfe\n", "test.yaml");
}

static void test_yaml_limits(void **state) {
        char key[400], *big;
        size_t n = 1024 * 1024 + 1;

        /* A dotted key over 256 bytes. */
        memset(key, 'k', sizeof(key));
        memcpy(key, "kafka.", 6);
        memcpy(key + 300, ": 1\n", 5);
        load_err_has(key, "key is longer than 256 bytes");

        /* Nesting deep under a map ends at the key limit, not the stack. */
        {
                static char deep[8192];
                size_t o = 0;
                int i;

                o += (size_t)snprintf(deep + o, sizeof(deep) - o, "kafka: ");
                for (i = 0; i < 1000; i++)
                        o += (size_t)snprintf(deep + o, sizeof(deep) - o,
                                              "{a: ");
                load_err_has(deep, "key is longer than 256 bytes");
        }

        /* A map holds at most 1024 pairs. */
        {
                static char many[1100 * 16];
                size_t o = 0;
                int i;

                for (i = 0; i < 1025; i++)
                        o += (size_t)snprintf(many + o, sizeof(many) - o,
                                              "kafka.k%d: v\n", i);
                load_err(many, "test.yaml:1025:14: kafka.k1024: more than "
                               "1024 keys");
                assert_int_equal(tc.kafka.cnt, 1024);
        }

        /* A buffer over 1 MiB is refused before parsing. */
        big = malloc(n);
        assert_non_null(big);
        memset(big, '#', n);
        assert_int_equal(mg_conf_load_buf(conf, "big.yaml", big, n, errstr,
                                          sizeof(errstr)),
                         MG_ERR_CONFIG);
        assert_non_null(strstr(errstr, "big.yaml"));
        assert_non_null(strstr(errstr, "larger than"));
        free(big);
}

static void test_set(void **state) {
        load_ok("ingest.batch_size: 10\n");
        set_ok("ingest.batch_size", "20");
        assert_int_equal(tc.batch_size, 20);
        set_ok("serve.port", "9090");
        assert_int_equal(ts.port, 9090);
        set_err_has("ingest.grup_id", "x",
                    "--set: unknown key 'ingest.grup_id'; did you mean "
                    "'ingest.group_id'?");
        set_err_has("ingest", "x", "--set: unknown key 'ingest'");
        set_err_has("serve.port", "70000",
                    "--set serve.port: 70000 is above the maximum 65535");
        assert_int_equal(mg_conf_set(conf, "serve.port", "0", NULL, 0),
                         MG_ERR_CONFIG);
        assert_int_equal(ts.port, 9090);
}

struct diff_seen {
        char keys[512];
        size_t cnt;
};

static void diff_cb(void *opaque, const struct mg_conf_prop *prop) {
        struct diff_seen *ds = opaque;
        size_t len = strlen(ds->keys);

        snprintf(ds->keys + len, sizeof(ds->keys) - len, "%s%s",
                 ds->cnt++ ? " " : "", prop->name);
}

/* A reload compares the new configuration with the running one: every
 * changed key of every type is reported once, unchanged ones never. */
static void test_diff(void **state) {
        struct tconf tc2;
        struct tserve ts2;
        struct mg_conf *conf2 = mg_conf_new();
        struct diff_seen ds = {"", 0};
        static const char yaml[] = "kafka: {acks: all}\nscoring.decay: 0.25\n";

        memset(&tc2, 0, sizeof(tc2));
        memset(&ts2, 0, sizeof(ts2));
        assert_non_null(conf2);
        assert_int_equal(mg_conf_add_section(conf2, "Test", tconf_props,
                                             NPROPS(tconf_props), &tc2,
                                             errstr, sizeof(errstr)),
                         MG_OK);
        assert_int_equal(mg_conf_add_section(conf2, "Serve", tserve_props,
                                             NPROPS(tserve_props), &ts2,
                                             errstr, sizeof(errstr)),
                         MG_OK);
        load_ok(yaml);
        assert_int_equal(mg_conf_diff(conf, conf2, diff_cb, &ds), 2);
        assert_string_equal(ds.keys, "scoring.decay kafka");
        assert_int_equal(mg_conf_load_buf(conf2, "new.yaml", yaml,
                                          strlen(yaml), errstr,
                                          sizeof(errstr)),
                         MG_OK);
        assert_int_equal(mg_conf_diff(conf, conf2, NULL, NULL), 0);
        assert_int_equal(mg_conf_set(conf2, "redis.password", "pw", errstr,
                                     sizeof(errstr)),
                         MG_OK);
        assert_int_equal(mg_conf_set(conf2, "scoring.enabled", "false",
                                     errstr, sizeof(errstr)),
                         MG_OK);
        assert_int_equal(mg_conf_set(conf2, "scoring.window_ms", "1d",
                                     errstr, sizeof(errstr)),
                         MG_OK);
        assert_int_equal(mg_conf_set(conf2, "serve.port", "8080", errstr,
                                     sizeof(errstr)),
                         MG_OK);
        assert_int_equal(mg_conf_set(conf2, "kafka.acks", "1", errstr,
                                     sizeof(errstr)),
                         MG_OK);
        ds.keys[0] = '\0';
        ds.cnt = 0;
        assert_int_equal(mg_conf_diff(conf, conf2, diff_cb, &ds), 5);
        assert_string_equal(ds.keys, "redis.password scoring.enabled "
                                     "scoring.window_ms kafka serve.port");
        mg_conf_destroy(conf2);
}

static void test_load_file(void **state) {
        char path[] = "/tmp/mg_test_config_XXXXXX";
        char want[256];
        FILE *fp;
        int fd;

        fd = mkstemp(path);
        assert_true(fd >= 0);
        fp = fdopen(fd, "w");
        assert_non_null(fp);
        fputs("ingest:\n  batch_size: 77\n  group_id: from-file\n"
              "  batch_wait_ms: 1d\n",
              fp);
        fclose(fp);

        assert_int_equal(mg_conf_load_file(conf, path, errstr,
                                           sizeof(errstr)),
                         MG_ERR_CONFIG);
        snprintf(want, sizeof(want),
                 "%s:4:18: ingest.batch_wait_ms: 1d is above the maximum 1h",
                 path);
        assert_string_equal(errstr, want);
        /* Values before the error were applied. */
        assert_int_equal(tc.batch_size, 77);
        assert_string_equal(tc.group_id, "from-file");
        unlink(path);

        assert_int_equal(mg_conf_load_file(conf, path, errstr,
                                           sizeof(errstr)),
                         MG_ERR_CONFIG);
        assert_non_null(strstr(errstr, path));
        assert_non_null(strstr(errstr, "No such file"));
}

static char *print_ref(int markdown) {
        char *buf = NULL;
        size_t len = 0;
        FILE *fp = open_memstream(&buf, &len);

        assert_non_null(fp);
        mg_conf_print_reference(conf, fp, markdown);
        fclose(fp);
        if (getenv("MG_TEST_PRINT"))
                fputs(buf, stdout);
        assert_non_null(buf);
        return buf;
}

static void test_reference(void **state) {
        char *md = print_ref(1), *txt = print_ref(0);
        size_t i;

        for (i = 0; i < NPROPS(tconf_props); i++) {
                assert_non_null(strstr(md, tconf_props[i].name));
                assert_non_null(strstr(txt, tconf_props[i].name));
                assert_non_null(strstr(txt, tconf_props[i].desc));
        }
        assert_non_null(strstr(md, "## Test\n"));
        assert_non_null(strstr(md, "## Serve\n"));
        assert_non_null(strstr(md, "| Key | Type | Default | Range | "
                                   "Reloadable | Description |\n"));
        assert_non_null(strstr(md, "| `ingest.batch_size` | int | `500` | "
                                   "1 .. 100000 | yes | Most events per sink "
                                   "batch. |\n"));
        assert_non_null(strstr(md, "| `ingest.batch_wait_ms` | duration | "
                                   "`250ms` | 1ms .. 1h | yes |"));
        assert_non_null(strstr(md, "| `ingest.group_id` | string | "
                                   "`mintgate` | length 1 .. 64 | no |"));
        assert_non_null(strstr(md, "| `kafka.*` | map | (empty) |  | no |"));
        assert_non_null(strstr(md, "| `redis.password` | string | (none) |"));
        assert_non_null(strstr(md, "| `scoring.debug` | bool | false |"));
        /* A pipe in a description would end the cell. */
        assert_non_null(strstr(md, "Password \\| with a pipe."));

        assert_non_null(strstr(txt, "Test\n"));
        assert_non_null(strstr(txt, "Serve\n"));
        assert_non_null(strstr(txt, "  ingest.batch_wait_ms  duration  "
                                    "default 250ms, range 1ms .. 1h, "
                                    "reloadable\n"
                                    "      Longest wait to fill a batch.\n"));
        assert_non_null(strstr(txt, "  kafka.*               map       "
                                    "default (empty)\n"));
        assert_non_null(strstr(txt, "  scoring.decay         double    "
                                    "default 0.5, range 0 .. 1, "
                                    "reloadable"));
        free(md);
        free(txt);
}

static void test_destroy(void **state) {
        set_ok("redis.password", "pw");
        set_ok("kafka.a", "1");
        mg_conf_destroy(conf);
        conf = NULL;
        /* Owned fields are freed and cleared. */
        assert_null(tc.group_id);
        assert_null(tc.password);
        assert_null(ts.listen);
        assert_int_equal(tc.kafka.cnt, 0);
        assert_null(tc.kafka.keys);
        mg_conf_destroy(NULL);
}

static void test_table_errors(void **state) {
        static const struct mg_conf_prop dup[] = {
                {"x.a", MG_CONF_INT, 0, NULL, 0, 0, 0, "a"},
                {"x.a", MG_CONF_INT, 0, NULL, 0, 0, 0, "a again"},
        };
        static const struct mg_conf_prop clash[] = {
                {"ingest.batch_size", MG_CONF_INT, 0, NULL, 0, 0, 0, "c"},
        };
        static const struct mg_conf_prop under_map[] = {
                {"kafka.client.id", MG_CONF_STR, 0, NULL, 0, 0, 0, "c"},
        };
        static const struct mg_conf_prop bad_def[] = {
                {"y.n", MG_CONF_INT, 0, "lots", 1, 10, 0, "bad default"},
        };
        struct mg_conf *c2 = mg_conf_new();
        int64_t n = 0;
        char *s = NULL;

        assert_non_null(c2);
        assert_int_equal(mg_conf_add_section(c2, "Dup", dup, NPROPS(dup), &n,
                                             errstr, sizeof(errstr)),
                         MG_ERR_CONFIG);
        assert_non_null(strstr(errstr, "x.a"));
        assert_int_equal(mg_conf_add_section(conf, "Clash", clash,
                                             NPROPS(clash), &n, errstr,
                                             sizeof(errstr)),
                         MG_ERR_CONFIG);
        assert_non_null(strstr(errstr, "ingest.batch_size"));
        assert_int_equal(mg_conf_add_section(conf, "Under", under_map,
                                             NPROPS(under_map), &s, errstr,
                                             sizeof(errstr)),
                         MG_ERR_CONFIG);
        assert_int_equal(mg_conf_add_section(c2, "Bad", bad_def,
                                             NPROPS(bad_def), &n, errstr,
                                             sizeof(errstr)),
                         MG_ERR_CONFIG);
        assert_string_equal(errstr,
                            "Bad: default of y.n: 'lots' is not an integer");
        mg_conf_destroy(c2);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_defaults, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_int, setup, teardown),
                cmocka_unit_test_setup_teardown(test_double, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bool, setup, teardown),
                cmocka_unit_test_setup_teardown(test_str, setup, teardown),
                cmocka_unit_test_setup_teardown(test_durations, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_yaml_nested, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_yaml_unknown_key, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_yaml_bounds_position,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_yaml_map, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_yaml_duplicates, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_yaml_null_and_empty,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_yaml_structure_errors,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_yaml_malformed, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_yaml_limits, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_set, setup, teardown),
                cmocka_unit_test_setup_teardown(test_diff, setup, teardown),
                cmocka_unit_test_setup_teardown(test_load_file, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_reference, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_destroy, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_table_errors, setup,
                                                teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
