/*
 * test_policy.c — unit tests of the policy engine (decision/mg_policy.c):
 * loading (every kind of mistake, with its file:line:col), path matching
 * and specificity, each rule of a path, thresholds and TTL steps at their
 * boundaries, unused scopes, release windows across day and hour edges,
 * the degraded modes, reasons, and reference counting under concurrent
 * reloads.
 *
 * Decisions are checked field by field, reasons by their exact text where
 * the text is the contract (DESIGN.md shows "secrets:read not used in 30d:
 * removed") and by signal elsewhere. Times are fixed instants around
 * Monday 2026-11-23 00:00 UTC (MON below).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <math.h>
#include <pthread.h>

#include "mg_policy.h"

/* Monday 2026-11-23 00:00:00 UTC. */
#define MON 1795392000000LL
#define AT(day, h, m) (MON + (day) * 86400000LL + (h) * 3600000LL + (m) * 60000LL)

static char errbuf[1024];

/* Load yaml (asserting success). */
static struct mg_policy *load(const char *yaml) {
        struct mg_policy *pol = NULL;
        mg_err_t err;

        err = mg_policy_load_buf("test.yaml", yaml, strlen(yaml), &pol, errbuf,
                                 sizeof(errbuf));
        if (err)
                fail_msg("load failed: %s", errbuf);
        assert_non_null(pol);
        return pol;
}

/* Load yaml expecting an error containing want. */
static void load_fails(const char *yaml, const char *want) {
        struct mg_policy *pol = (struct mg_policy *)1;
        mg_err_t err;

        errbuf[0] = '\0';
        err = mg_policy_load_buf("test.yaml", yaml, strlen(yaml), &pol, errbuf,
                                 sizeof(errbuf));
        if (err != MG_ERR_CONFIG || !strstr(errbuf, want))
                fail_msg("want error containing \"%s\", got %d \"%s\"", want,
                         (int)err, errbuf);
        assert_null(pol);
}

static struct mg_decide_req req;
static struct mg_risk_view view;
static struct mg_decision dec;

/* A request: scopes is a NULL-terminated list. */
static void request(const char *client, const char *resource,
                    const char *const *scopes, int64_t ttl) {
        memset(&req, 0, sizeof(req));
        req.id = "r-1";
        req.identity = "spiffe://corp/test";
        req.client_id = client;
        req.resource = resource;
        for (req.scope_cnt = 0; scopes[req.scope_cnt]; req.scope_cnt++)
                req.scopes[req.scope_cnt] = scopes[req.scope_cnt];
        req.grant_type = "client_credentials";
        req.ttl = ttl;
}

/* A fresh risk view with score and no reasons. */
static void risk(double score) {
        memset(&view, 0, sizeof(view));
        view.known = 1;
        view.fresh = 1;
        view.risk.score = score;
        view.risk.level = score >= 80   ? MG_RISK_CRITICAL
                          : score >= 50 ? MG_RISK_HIGH
                          : score >= 25 ? MG_RISK_MEDIUM
                                        : MG_RISK_LOW;
}

static void decide(const struct mg_policy *pol, int64_t now) {
        memset(&dec, 0xa5, sizeof(dec)); /* every field must be written */
        mg_policy_decide(pol, &req, &view, now, &dec);
}

/* The granted scopes, joined with ' '. */
static const char *granted(void) {
        static char buf[512];
        size_t o = 0;
        int i;

        buf[0] = '\0';
        for (i = 0; i < dec.scope_cnt; i++)
                o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s",
                                      i ? " " : "", dec.scopes[i]);
        return buf;
}

/* Index of the first reason with this signal and detail containing
 * text, or -1. */
static int find_reason(const char *signal, const char *text) {
        int i;

        for (i = 0; i < dec.reason_cnt; i++)
                if (!strcmp(dec.reasons[i].signal, signal) &&
                    strstr(dec.reasons[i].detail, text))
                        return i;
        return -1;
}

static void assert_reason(const char *signal, const char *text) {
        if (find_reason(signal, text) < 0) {
                int i;

                for (i = 0; i < dec.reason_cnt; i++)
                        print_message("  reason %d: %s: %s\n", i,
                                      dec.reasons[i].signal,
                                      dec.reasons[i].detail);
                fail_msg("no reason %s containing \"%s\"", signal, text);
        }
}

static void assert_denied(void) {
        assert_int_equal(dec.outcome, MG_DECISION_DENY);
        assert_int_equal(dec.scope_cnt, 0);
        assert_int_equal(dec.ttl, 0);
}

static const char *const S_RW[] = {"repo:read", "repo:write", NULL};

/*
 * Loading.
 */

static void test_load_example(void **state) {
        const char *src = getenv("MG_SOURCE_DIR");
        char path[1024];
        struct mg_policy *pol = NULL;
        static const char *const s[] = {"deploy:write", "secrets:read",
                                        "deploy:read", NULL};

        (void)state;
        snprintf(path, sizeof(path), "%s/deploy/policy.yaml",
                 src ? src : ".");
        if (mg_policy_load_file(path, &pol, errbuf, sizeof(errbuf)))
                fail_msg("%s", errbuf);
        assert_int_equal(mg_policy_path_cnt(pol), 5);
        assert_string_equal(mg_policy_source(pol), path);

        /* The CI deployer, in its window, low risk: secrets:read is not
         * its to have, and its TTL is capped by max_ttl (30m). */
        request("gh-actions", "api://deploy/prod", s, 3600);
        req.grant_type = "token_exchange";
        req.exchange_depth = 1;
        risk(5);
        decide(pol, AT(0, 10, 0));
        assert_int_equal(dec.outcome, MG_DECISION_NARROW);
        assert_string_equal(granted(), "deploy:write deploy:read");
        assert_int_equal(dec.ttl, 1800);
        assert_string_equal(dec.policy, "ci-deploy");
        /* ... on Saturday deploy:write is out of its window. */
        decide(pol, AT(5, 10, 0));
        assert_string_equal(granted(), "deploy:read");
        assert_reason("release_window", "deploy:write outside its release "
                                        "window (mon-fri 08:00-18:00 UTC)");
        /* ... two exchange hops is one too many. */
        req.exchange_depth = 2;
        decide(pol, AT(0, 10, 0));
        assert_denied();
        /* An unknown client gets nothing. */
        request("jenkins", "api://deploy/prod", s, 3600);
        decide(pol, AT(0, 10, 0));
        assert_denied();
        assert_reason("policy", "no policy for client jenkins and resource "
                                "api://deploy/prod");
        mg_policy_destroy(pol);
}

static void test_load_file_errors(void **state) {
        struct mg_policy *pol = (struct mg_policy *)1;
        char path[] = "/tmp/mg_test_policy_XXXXXX";
        FILE *fp;
        int fd;
        size_t i;

        (void)state;
        assert_int_equal(mg_policy_load_file("/nonexistent/policy.yaml", &pol,
                                             errbuf, sizeof(errbuf)),
                         MG_ERR_CONFIG);
        assert_null(pol);
        assert_non_null(strstr(errbuf, "/nonexistent/policy.yaml: No such "
                                       "file"));
        /* Over the size cap. */
        fd = mkstemp(path);
        assert_true(fd >= 0);
        fp = fdopen(fd, "w");
        assert_non_null(fp);
        fputs("policies: []\n", fp);
        for (i = 0; i < MG_POLICY_FILE_MAX / 16 + 1; i++)
                fputs("# padding......\n", fp);
        fclose(fp);
        assert_int_equal(mg_policy_load_file(path, &pol, errbuf,
                                             sizeof(errbuf)),
                         MG_ERR_CONFIG);
        assert_non_null(strstr(errbuf, "larger than the 1048576 byte limit"));
        unlink(path);
}

/* Each kind of mistake, with where it is reported. */
static void test_load_errors(void **state) {
        static const char *const P = "policies:\n  - client: c\n    "
                                     "resource: r\n    allowed_scopes: [a]\n";
        static const struct {
                const char *tail; /* appended to P, or NULL: whole file */
                const char *yaml;
                const char *want;
        } cases[] = {
                /* Unknown keys, with a suggestion when close. */
                {"    alowed_scopes: [b]\n", NULL,
                 "test.yaml:5:5: policies[0]: unknown key 'alowed_scopes'; "
                 "did you mean 'allowed_scopes'?"},
                {"    colour: red\n", NULL,
                 "test.yaml:5:5: policies[0]: unknown key 'colour'"},
                {"    thresholds: {narow: 1}\n", NULL,
                 "test.yaml:5:18: policies[0]: unknown key "
                 "'thresholds.narow'; did you mean 'thresholds.narrow'?"},
                {NULL, "polices: []\n",
                 "test.yaml:1:1: top level: unknown key 'polices'; did you "
                 "mean 'policies'?"},
                {"    release_windows: [{scope: a, day: [mon]}]\n", NULL,
                 "test.yaml:5:34: policies[0].release_windows[0]: unknown "
                 "key 'day'; did you mean 'days'?"},
                {"    ttl_by_risk: [{below: 1, ttl: 5}]\n", NULL,
                 "test.yaml:5:30: policies[0].ttl_by_risk[0]: unknown key "
                 "'ttl'"},
                /* Wrong types. */
                {NULL,
                 "policies:\n  - client: c\n    resource: r\n    "
                 "allowed_scopes: a\n",
                 "test.yaml:4:21: policies[0].allowed_scopes: expected a "
                 "list of scope globs"},
                {"    max_ttl: [1]\n", NULL,
                 "test.yaml:5:14: policies[0].max_ttl: expected a duration, "
                 "found a list"},
                {"    remove_unused_scopes: {a: 1}\n", NULL,
                 "test.yaml:5:27: policies[0].remove_unused_scopes: expected "
                 "a boolean, found a mapping"},
                {"    remove_unused_scopes: maybe\n", NULL,
                 "test.yaml:5:27: policies[0].remove_unused_scopes: 'maybe' "
                 "is not a boolean"},
                {"    thresholds: 5\n", NULL,
                 "test.yaml:5:17: policies[0].thresholds: expected a mapping, "
                 "found a scalar"},
                {"    max_ttl:\n", NULL,
                 "policies[0].max_ttl: expected a duration, found nothing"},
                {"    thresholds: {deny: high}\n", NULL,
                 "test.yaml:5:24: policies[0].thresholds.deny: 'high' is "
                 "not a number"},
                {"    max_exchange_depth: -1\n", NULL,
                 "test.yaml:5:25: policies[0].max_exchange_depth: '-1' is not "
                 "a non-negative integer"},
                {NULL, "policies: {a: 1}\n",
                 "test.yaml:1:11: policies: expected a list of policies, "
                 "found a mapping"},
                {NULL, "policies: [5]\n",
                 "test.yaml:1:12: policies[0]: expected a mapping"},
                {NULL, "- a\n",
                 "test.yaml:1:1: expected a mapping with 'policies' at the "
                 "top level, found a list"},
                {NULL, "defaults: [1]\npolicies: []\n",
                 "test.yaml:1:11: defaults: expected a mapping of path keys"},
                /* Bad globs. */
                {NULL,
                 "policies:\n  - client: \"gh-**\"\n    resource: r\n    "
                 "allowed_scopes: [a]\n",
                 "test.yaml:2:13: policies[0].client: bad glob 'gh-**': '**'"},
                {NULL,
                 "policies:\n  - client: c\n    resource: \"api://?\"\n    "
                 "allowed_scopes: [a]\n",
                 "test.yaml:3:15: policies[0].resource: bad glob "
                 "'api://?': '?', '[' or ']' (only '*' is a wildcard) at "
                 "byte 7"},
                {NULL,
                 "policies:\n  - client: \"\"\n    resource: r\n    "
                 "allowed_scopes: [a]\n",
                 "test.yaml:2:13: policies[0].client: bad glob: empty"},
                {NULL,
                 "policies:\n  - client: c\n    resource: r\n    "
                 "allowed_scopes: [a, \"b c\"]\n",
                 "test.yaml:4:25: policies[0].allowed_scopes: bad glob 'b "
                 "c': a space (list scopes separately) at byte 2"},
                {"    high_impact_scopes: [\"a\\tb\"]\n", NULL,
                 "policies[0].high_impact_scopes: bad glob 'a\\x09b': a "
                 "control character at byte 2"},
                /* Thresholds out of order (reported at the later key). */
                {"    thresholds: {narrow: 60, step_up: 50}\n", NULL,
                 "test.yaml:5:30: policies[0].thresholds: step_up 50 is "
                 "below narrow 60 (need narrow <= step_up <= deny)"},
                {"    thresholds: {step_up: 90}\n", NULL,
                 "test.yaml:5:18: policies[0].thresholds: deny 80 is below "
                 "step_up 90"},
                {"    thresholds.deny: 101\n", NULL,
                 "test.yaml:5:22: policies[0].thresholds.deny: '101' is out "
                 "of range 0..100"},
                /* Unknown names. */
                {"    degraded: fail_sideways\n", NULL,
                 "test.yaml:5:15: policies[0].degraded: unknown degraded "
                 "mode 'fail_sideways' (expected one of: fail_closed, "
                 "fail_narrow, fail_open)"},
                {"    grant_types: [client_credentials, password]\n", NULL,
                 "test.yaml:5:39: policies[0].grant_types: unknown grant "
                 "type 'password' (expected one of: client_credentials, "
                 "token_exchange"},
                /* Bad windows. */
                {"    release_windows: [{scope: a, hours: \"18:00-08:00\"}]\n",
                 NULL,
                 "test.yaml:5:41: policies[0].release_windows[0].hours: bad "
                 "window: hours '18:00-08:00' end before they start"},
                {"    release_windows: [{scope: a, hours: \"8:00-18:00\"}]\n",
                 NULL,
                 "release_windows[0].hours: bad window: hours '8:00-18:00' "
                 "is not \"HH:MM-HH:MM\""},
                {"    release_windows: [{scope: a, hours: \"08:00-24:01\"}]\n",
                 NULL, "bad window: hours '08:00-24:01' is not"},
                {"    release_windows: [{scope: a, hours: \"24:00-24:00\"}]\n",
                 NULL, "bad window: hours '24:00-24:00' is not"},
                {"    release_windows: [{scope: a, hours: \"08:60-09:00\"}]\n",
                 NULL, "bad window: hours '08:60-09:00' is not"},
                {"    release_windows: [{scope: a, days: [mon, fry]}]\n", NULL,
                 "test.yaml:5:46: policies[0].release_windows[0].days: bad "
                 "window: unknown day 'fry' (expected one of: mon, tue, wed, "
                 "thu, fri, sat, sun)"},
                {"    release_windows: [{scope: a, days: []}]\n", NULL,
                 "test.yaml:5:40: policies[0].release_windows[0].days: bad "
                 "window: no days"},
                {"    release_windows: [{days: [mon]}]\n", NULL,
                 "test.yaml:5:23: policies[0].release_windows[0]: bad "
                 "window: missing 'scope'"},
                {"    release_windows: {scope: a}\n", NULL,
                 "test.yaml:5:22: policies[0].release_windows: expected a "
                 "list of {scope, days, hours} windows, found a mapping"},
                /* TTL steps. */
                {"    ttl_by_risk: [{below: 50, max_ttl: 60}, {below: 40, "
                 "max_ttl: 30}]\n",
                 NULL,
                 "test.yaml:5:46: policies[0].ttl_by_risk[1].below: 40 is not "
                 "above the previous step's 50"},
                {"    ttl_by_risk: [{below: 10, max_ttl: 60}, {below: 40, "
                 "max_ttl: 90}]\n",
                 NULL,
                 "test.yaml:5:57: policies[0].ttl_by_risk[1].max_ttl: 90s is "
                 "longer than the previous step's 60s"},
                {"    ttl_by_risk: [{below: 10}]\n", NULL,
                 "test.yaml:5:19: policies[0].ttl_by_risk[0]: missing "
                 "'max_ttl'"},
                /* Durations. */
                {"    max_ttl: 0\n", NULL,
                 "test.yaml:5:14: policies[0].max_ttl: '0' is out of range "
                 "1s..31536000s"},
                {"    max_ttl: 366d\n", NULL, "'366d' is out of range"},
                {"    max_ttl: 1.5h\n", NULL,
                 "'1.5h' is not a duration in whole seconds"},
                {"    degraded_ttl: 5 min\n", NULL,
                 "policies[0].degraded_ttl: '5 min' is not a duration"},
                /* Duplicates, missing keys, misplaced keys. */
                {"    allowed_scopes: [b]\n", NULL,
                 "test.yaml:5:5: policies[0]: duplicate key 'allowed_scopes' "
                 "(first set at 4:5)"},
                {"    thresholds: {narrow: 1}\n    thresholds.narrow: 2\n",
                 NULL,
                 "test.yaml:6:5: policies[0]: duplicate key "
                 "'thresholds.narrow' (first set at 5:18)"},
                {NULL, "policies:\n  - resource: r\n    allowed_scopes: [a]\n",
                 "test.yaml:2:5: policies[0]: missing 'client'"},
                {NULL, "policies:\n  - client: c\n    resource: r\n",
                 "test.yaml:2:5: policies[0]: missing 'allowed_scopes'"},
                {NULL, "defaults: {client: c}\npolicies: []\n",
                 "test.yaml:1:12: defaults: 'client' belongs in each policy, "
                 "not in defaults"},
                {"    degraded: fail_narrow\n", NULL,
                 "test.yaml:5:5: policies[0].degraded: fail_narrow needs "
                 "minimum_scopes"},
                {NULL, "version: 1\n",
                 "test.yaml:1:1: missing 'policies'"},
                {NULL, "version: 2\npolicies: []\n",
                 "test.yaml:1:10: version: only version 1 is known"},
                {NULL, "policies: []\npolicies: []\n",
                 "test.yaml:2:1: top level: duplicate key 'policies' (first "
                 "set at 1:1)"},
                /* Names. */
                {"    name: \"\"\n", NULL,
                 "policies[0].name: '' is 0 bytes long, expected 1 to 255"},
                /* YAML itself. */
                {NULL, "defaults: &d {allowed_scopes: [a]}\npolicies: *d\n",
                 "test.yaml:2:11: aliases are not supported"},
                {NULL, "policies: []\n---\npolicies: []\n",
                 "test.yaml:2:1: only one YAML document is allowed"},
                {NULL, "", "test.yaml:1:1: empty file"},
                {NULL, "# nothing\n",
                 "empty file: expected a mapping with 'policies'"},
                {NULL, "policies: [\n",
                 "test.yaml:2:1: YAML syntax error"},
                {NULL, "policies:\n\t- a\n", "test.yaml:2:1: YAML syntax error"},
                {NULL, "policies: \"\xff\"\n", "test.yaml: byte 11: invalid"},
        };
        char yaml[1024];
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
                if (cases[i].tail)
                        snprintf(yaml, sizeof(yaml), "%s%s", P, cases[i].tail);
                else
                        snprintf(yaml, sizeof(yaml), "%s", cases[i].yaml);
                print_message("case %zu\n", i);
                load_fails(yaml, cases[i].want);
        }
}

static void test_load_limits(void **state) {
        char name[300], yaml[2048];
        size_t n;
        int i;

        (void)state;
        /* A default name that does not fit in the decision. */
        memset(name, 'c', 200);
        name[200] = '\0';
        snprintf(yaml, sizeof(yaml),
                 "policies:\n  - client: %s\n    resource: %s\n    "
                 "allowed_scopes: [a]\n",
                 name, name);
        load_fails(yaml, "test.yaml:2:5: policies[0]: the default name");
        load_fails(yaml, "is 401 bytes, over 255: set 'name'");
        /* An explicit name that does not. */
        memset(name, 'n', 256);
        name[256] = '\0';
        snprintf(yaml, sizeof(yaml),
                 "policies:\n  - client: c\n    resource: r\n    "
                 "allowed_scopes: [a]\n    name: %s\n",
                 name);
        load_fails(yaml, "policies[0].name: 'nnnn");
        load_fails(yaml, "is 256 bytes long, expected 1 to 255");
        /* Too many ttl steps. */
        n = (size_t)snprintf(yaml, sizeof(yaml),
                             "policies:\n  - client: c\n    resource: r\n    "
                             "allowed_scopes: [a]\n    ttl_by_risk:\n");
        for (i = 0; i < 17; i++)
                n += (size_t)snprintf(yaml + n, sizeof(yaml) - n,
                                      "      - {below: %d, max_ttl: 60}\n",
                                      i + 1);
        load_fails(yaml, "test.yaml:22:9: policies[0].ttl_by_risk: more than "
                         "16 steps");
}

/* "defaults" apply to paths that do not set a key, wherever they are. */
static void test_defaults(void **state) {
        struct mg_policy *pol;
        static const char *const s[] = {"a", "b", NULL};

        (void)state;
        pol = load("policies:\n"
                   "  - {client: c1, resource: r}\n"
                   "  - {client: c2, resource: r, allowed_scopes: [b], "
                   "max_ttl: 10}\n"
                   "defaults:\n"
                   "  allowed_scopes: [a]\n"
                   "  max_ttl: 60\n"
                   "  thresholds: {narrow: 5}\n");
        request("c1", "r", s, 3600);
        risk(0);
        decide(pol, MON);
        assert_string_equal(granted(), "a");
        assert_int_equal(dec.ttl, 60);
        assert_string_equal(dec.policy, "c1/r");
        request("c2", "r", s, 3600);
        decide(pol, MON);
        assert_string_equal(granted(), "b");
        assert_int_equal(dec.ttl, 10);
        mg_policy_unref(pol);

        /* A threshold mistake made by defaults is reported there. */
        load_fails("defaults:\n  thresholds: {narrow: 70}\npolicies:\n"
                   "  - {client: c, resource: r, allowed_scopes: [a], "
                   "thresholds: {step_up: 60}}\n",
                   "test.yaml:4:64: policies[0].thresholds: step_up 60 is "
                   "below narrow 70");
        load_fails("defaults:\n  thresholds: {narrow: 70, step_up: 60}\n"
                   "policies:\n  - {client: c, resource: r, "
                   "allowed_scopes: [a]}\n",
                   "test.yaml:2:28: policies[0].thresholds: step_up 60 is "
                   "below narrow 70");
}

/*
 * Matching.
 */

static void test_glob(void **state) {
        static const struct {
                const char *pat, *s;
                int match;
        } cases[] = {
                {"*", "anything", 1},      {"*", "x", 1},
                {"gh-*", "gh-actions", 1}, {"gh-*", "gh-", 1},
                {"gh-*", "gh", 0},         {"gh-*", "xgh-a", 0},
                {"*-runner", "ci-runner", 1}, {"*-runner", "ci-runners", 0},
                {"a*b*c", "abc", 1},       {"a*b*c", "aXXbYYc", 1},
                {"a*b*c", "aXXbYY", 0},    {"a*b*c", "acb", 0},
                {"a*a", "a", 0},           {"a*a", "aa", 1},
                {"*ab", "aab", 1},         {"*ab*", "xaxabx", 1},
                {"api://deploy/*", "api://deploy/prod", 1},
                {"api://deploy/*", "api://deploy", 0},
                {"exact", "exact", 1},     {"exact", "exac", 0},
                {"exact", "exactly", 0},
        };
        static const char *const s[] = {"a", NULL};
        char yaml[512];
        struct mg_policy *pol;
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
                snprintf(yaml, sizeof(yaml),
                         "policies:\n  - client: \"%s\"\n    resource: "
                         "\"*\"\n    allowed_scopes: [a]\n",
                         cases[i].pat);
                pol = load(yaml);
                request(cases[i].s, "r", s, 60);
                risk(0);
                decide(pol, MON);
                if ((dec.outcome == MG_DECISION_ALLOW) != cases[i].match)
                        fail_msg("glob '%s' on '%s': want %d", cases[i].pat,
                                 cases[i].s, cases[i].match);
                mg_policy_unref(pol);
        }
}

static void test_specificity(void **state) {
        static const char *const s[] = {"a", NULL};
        static const struct {
                const char *client, *resource, *want;
        } cases[] = {
                {"gh-actions", "api://deploy/prod", "exact-client"},
                {"gh-other", "api://deploy/prod", "gh-deploy"},
                {"gh-other", "api://other", "gh-api"},
                {"gh-other", "ftp://x", "gh-any"},
                {"gh-x-y", "api://deploy/prod", "gh-deploy"},
                {"svc", "api://deploy/prod", "catch-all"},
                {"twin", "r", "twin-first"},
        };
        struct mg_policy *pol;
        size_t i;

        (void)state;
        /* In an order unlike the answer, so sorting has work to do. */
        pol = load("defaults: {allowed_scopes: [\"*\"]}\n"
                   "policies:\n"
                   "  - {name: catch-all, client: \"*\", resource: \"*\"}\n"
                   "  - {name: gh-any, client: \"gh-*\", resource: \"*\"}\n"
                   "  - {name: gh-api, client: \"gh-*\", resource: "
                   "\"api://*\"}\n"
                   "  - {name: gh-x, client: \"gh-*-*\", resource: "
                   "\"api://deploy/*\"}\n"
                   "  - {name: gh-deploy, client: \"gh-*\", resource: "
                   "\"api://deploy/*\"}\n"
                   "  - {name: exact-client, client: gh-actions, resource: "
                   "\"*\"}\n"
                   "  - {name: twin-first, client: twin, resource: r}\n"
                   "  - {name: twin-second, client: twin, resource: r}\n");
        risk(0);
        for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
                request(cases[i].client, cases[i].resource, s, 60);
                decide(pol, MON);
                if (strcmp(dec.policy, cases[i].want))
                        fail_msg("%s %s: got policy %s, want %s",
                                 cases[i].client, cases[i].resource,
                                 dec.policy, cases[i].want);
        }
        mg_policy_unref(pol);
}

static void test_no_policy(void **state) {
        struct mg_policy *pol;

        (void)state;
        pol = load("policies: []\n");
        assert_int_equal(mg_policy_path_cnt(pol), 0);
        request("gh-actions", "api://deploy", S_RW, 60);
        risk(0);
        decide(pol, MON);
        assert_denied();
        assert_string_equal(dec.policy, "");
        assert_string_equal(dec.decision_id, "");
        assert_int_equal(dec.reason_cnt, 1);
        assert_string_equal(dec.reasons[0].signal, "policy");
        assert_string_equal(dec.reasons[0].detail,
                            "no policy for client gh-actions and resource "
                            "api://deploy");
        assert_true(dec.reasons[0].points == 0);
        mg_policy_unref(pol);
}

/*
 * The rules of a path.
 */

static void test_allowed_scopes(void **state) {
        static const char *const s[] = {"repo:read", "admin", "repo:write",
                                        "repo:read", "org:read", NULL};
        struct mg_policy *pol;

        (void)state;
        pol = load("policies:\n  - client: c\n    resource: r\n"
                   "    allowed_scopes: [\"repo:*\", org:read]\n");
        request("c", "r", s, 60);
        risk(0);
        decide(pol, MON);
        assert_int_equal(dec.outcome, MG_DECISION_NARROW);
        /* Request order, the duplicate once, admin removed. */
        assert_string_equal(granted(), "repo:read repo:write org:read");
        assert_ptr_equal(dec.scopes[0], req.scopes[0]);
        assert_int_equal(dec.reason_cnt, 1);
        assert_string_equal(dec.reasons[0].detail,
                            "admin is not allowed by policy c/r: removed");
        assert_int_equal(dec.ttl, 60);
        assert_false(dec.degraded);

        /* Nothing left: deny, whatever else. */
        request("c", "r", (const char *const[]){"admin", "root", NULL}, 60);
        decide(pol, MON);
        assert_denied();
        assert_reason("policy", "none of the requested scopes can be granted");
        assert_reason("policy", "root is not allowed");
        /* An empty allow-list is an explicit deny path. */
        mg_policy_unref(pol);
        pol = load("policies:\n  - {client: c, resource: r, "
                   "allowed_scopes: []}\n");
        request("c", "r", S_RW, 60);
        decide(pol, MON);
        assert_denied();
        mg_policy_unref(pol);
}

static void test_thresholds(void **state) {
        static const struct {
                double risk;
                enum mg_outcome outcome;
                const char *scopes;
        } cases[] = {
                {0, MG_DECISION_ALLOW, "repo:read repo:write"},
                {29.99, MG_DECISION_ALLOW, "repo:read repo:write"},
                {30, MG_DECISION_NARROW, "repo:read"},
                {59.99, MG_DECISION_NARROW, "repo:read"},
                {60, MG_DECISION_STEP_UP, "repo:read"},
                {84.99, MG_DECISION_STEP_UP, "repo:read"},
                {85, MG_DECISION_DENY, ""},
                {100, MG_DECISION_DENY, ""},
                {250, MG_DECISION_DENY, ""}, /* clamped to 100 */
                {-5, MG_DECISION_ALLOW, "repo:read repo:write"},
        };
        struct mg_policy *pol;
        size_t i;

        (void)state;
        pol = load("policies:\n  - client: c\n    resource: r\n"
                   "    allowed_scopes: [\"repo:*\"]\n"
                   "    high_impact_scopes: [repo:write]\n"
                   "    thresholds: {narrow: 30, step_up: 60, deny: 85}\n");
        for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
                request("c", "r", S_RW, 60);
                risk(cases[i].risk);
                decide(pol, MON);
                if (dec.outcome != cases[i].outcome ||
                    strcmp(granted(), cases[i].scopes))
                        fail_msg("risk %g: got %s [%s]", cases[i].risk,
                                 mg_outcome_names[dec.outcome], granted());
                assert_true(dec.risk == (cases[i].risk > 100  ? 100
                                         : cases[i].risk < 0 ? 0
                                                             : cases[i].risk));
                assert_int_equal(dec.level, view.risk.level);
        }
        risk(30);
        request("c", "r", S_RW, 60);
        decide(pol, MON);
        assert_reason("policy", "repo:write is high-impact: removed at risk "
                                "30 >= narrow threshold 30");
        risk(60.5);
        decide(pol, MON);
        assert_reason("policy", "risk 60.5 >= step-up threshold 60");
        assert_int_equal(dec.ttl, 60);
        risk(99.25);
        decide(pol, MON);
        assert_reason("policy", "risk 99.25 >= deny threshold 85");
        mg_policy_unref(pol);

        /* Equal thresholds switch the lower outcome off. */
        pol = load("policies:\n  - {client: c, resource: r, allowed_scopes: "
                   "[\"*\"], thresholds: {narrow: 50, step_up: 50, deny: "
                   "50}}\n");
        risk(50);
        decide(pol, MON);
        assert_denied();
        risk(49);
        decide(pol, MON);
        assert_int_equal(dec.outcome, MG_DECISION_ALLOW);
        mg_policy_unref(pol);
}

static void test_ttl(void **state) {
        static const struct {
                double risk;
                int64_t req_ttl, ttl;
                const char *why;
        } cases[] = {
                {0, 60, 60, NULL},          /* under every cap */
                {0, 7200, 3600, "(max_ttl)"},
                {9.99, 7200, 3600, "(max_ttl)"},
                {10, 7200, 900, "at risk 10 (ttl_by_risk)"},
                {24, 600, 600, NULL},
                {24, 7200, 900, "ttl_by_risk"},
                {25, 7200, 120, "ttl_by_risk"},
                {45, 7200, 120, "ttl_by_risk"}, /* past the last step */
        };
        struct mg_policy *pol;
        char want[96];
        size_t i;

        (void)state;
        pol = load("policies:\n  - client: c\n    resource: r\n"
                   "    allowed_scopes: [\"*\"]\n    max_ttl: 1h\n"
                   "    ttl_by_risk:\n"
                   "      - {below: 10, max_ttl: 2h}\n"
                   "      - {below: 25, max_ttl: 15m}\n"
                   "      - {below: 40, max_ttl: 120s}\n");
        for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
                request("c", "r", S_RW, cases[i].req_ttl);
                risk(cases[i].risk);
                decide(pol, MON);
                if (dec.ttl != cases[i].ttl)
                        fail_msg("risk %g ttl %lld: got %lld", cases[i].risk,
                                 (long long)cases[i].req_ttl,
                                 (long long)dec.ttl);
                assert_int_equal(dec.outcome, cases[i].why
                                                      ? MG_DECISION_NARROW
                                                      : MG_DECISION_ALLOW);
                if (cases[i].why) {
                        snprintf(want, sizeof(want),
                                 "ttl %llds capped to %llds",
                                 (long long)cases[i].req_ttl,
                                 (long long)cases[i].ttl);
                        assert_reason("policy", want);
                        assert_reason("policy", cases[i].why);
                } else {
                        assert_int_equal(dec.reason_cnt, 0);
                }
        }
        mg_policy_unref(pol);
}

static int unused_calls;

/* repo:write and secrets:read are unused. */
static int unused_cb(void *opaque, const char *scope) {
        assert_ptr_equal(opaque, &unused_calls);
        unused_calls++;
        return !strcmp(scope, "repo:write") || !strcmp(scope, "secrets:read");
}

static void test_unused_scopes(void **state) {
        static const char *const s[] = {"repo:read", "secrets:read",
                                        "repo:write", NULL};
        struct mg_policy *pol;

        (void)state;
        pol = load("policies:\n"
                   "  - {client: c, resource: r, allowed_scopes: [\"*\"], "
                   "remove_unused_scopes: true}\n"
                   "  - {client: c7, resource: r, allowed_scopes: [\"*\"], "
                   "remove_unused_scopes: yes, scope_unused_days: 7}\n"
                   "  - {client: keep, resource: r, allowed_scopes: "
                   "[\"*\"]}\n");
        request("c", "r", s, 60);
        risk(0);
        view.scope_unused_cb = unused_cb;
        view.opaque = &unused_calls;
        unused_calls = 0;
        decide(pol, MON);
        assert_int_equal(unused_calls, 3);
        assert_int_equal(dec.outcome, MG_DECISION_NARROW);
        assert_string_equal(granted(), "repo:read");
        assert_int_equal(dec.reason_cnt, 2);
        assert_string_equal(dec.reasons[0].signal, "scope_unused");
        assert_true(dec.reasons[0].points == 0);
        assert_string_equal(dec.reasons[0].detail,
                            "secrets:read not used in 30d: removed");
        assert_string_equal(dec.reasons[1].detail,
                            "repo:write not used in 30d: removed");
        request("c7", "r", s, 60);
        decide(pol, MON);
        assert_string_equal(dec.reasons[0].detail,
                            "secrets:read not used in 7d: removed");
        /* Off: the oracle is not even asked. */
        unused_calls = 0;
        request("keep", "r", s, 60);
        decide(pol, MON);
        assert_int_equal(unused_calls, 0);
        assert_int_equal(dec.outcome, MG_DECISION_ALLOW);
        /* No oracle: nothing is removed for disuse. */
        view.scope_unused_cb = NULL;
        request("c", "r", s, 60);
        decide(pol, MON);
        assert_int_equal(dec.outcome, MG_DECISION_ALLOW);
        assert_int_equal(dec.scope_cnt, 3);
        /* Only unused scopes requested: nothing left, deny. */
        view.scope_unused_cb = unused_cb;
        request("c", "r", (const char *const[]){"repo:write", NULL}, 60);
        decide(pol, MON);
        assert_denied();
        assert_reason("scope_unused", "repo:write not used in 30d");
        mg_policy_unref(pol);
}

static void test_grant_types(void **state) {
        struct mg_policy *pol;

        (void)state;
        pol = load("policies:\n"
                   "  - {client: c, resource: r, allowed_scopes: [\"*\"], "
                   "grant_types: [token_exchange, JWT_BEARER]}\n"
                   "  - {client: any, resource: r, allowed_scopes: "
                   "[\"*\"]}\n");
        request("c", "r", S_RW, 60);
        risk(0);
        req.grant_type = "token_exchange";
        decide(pol, MON);
        assert_int_equal(dec.outcome, MG_DECISION_ALLOW);
        req.grant_type = "jwt_bearer";
        decide(pol, MON);
        assert_int_equal(dec.outcome, MG_DECISION_ALLOW);
        req.grant_type = "client_credentials";
        decide(pol, MON);
        assert_denied();
        assert_string_equal(dec.policy, "c/r");
        assert_reason("policy", "grant type client_credentials is not "
                                "allowed by policy c/r");
        /* Not a grant type at all. */
        req.grant_type = "password";
        decide(pol, MON);
        assert_denied();
        /* The default is every known grant, and only those. */
        request("any", "r", S_RW, 60);
        req.grant_type = "device_code";
        decide(pol, MON);
        assert_int_equal(dec.outcome, MG_DECISION_ALLOW);
        req.grant_type = "password";
        decide(pol, MON);
        assert_denied();
        mg_policy_unref(pol);
}

static void test_exchange_depth(void **state) {
        struct mg_policy *pol;

        (void)state;
        pol = load("policies:\n"
                   "  - {client: c, resource: r, allowed_scopes: [\"*\"], "
                   "max_exchange_depth: 1}\n"
                   "  - {client: z, resource: r, allowed_scopes: [\"*\"], "
                   "max_exchange_depth: 0}\n"
                   "  - {client: any, resource: r, allowed_scopes: "
                   "[\"*\"]}\n");
        risk(0);
        request("c", "r", S_RW, 60);
        req.grant_type = "token_exchange";
        req.exchange_depth = 1;
        decide(pol, MON);
        assert_int_equal(dec.outcome, MG_DECISION_ALLOW);
        req.exchange_depth = 2;
        decide(pol, MON);
        assert_denied();
        assert_reason("policy", "token exchange depth 2 is deeper than "
                                "policy c/r allows (1)");
        request("z", "r", S_RW, 60);
        req.exchange_depth = 1;
        decide(pol, MON);
        assert_denied();
        req.exchange_depth = 0;
        decide(pol, MON);
        assert_int_equal(dec.outcome, MG_DECISION_ALLOW);
        request("any", "r", S_RW, 60);
        req.exchange_depth = 64;
        decide(pol, MON);
        assert_int_equal(dec.outcome, MG_DECISION_ALLOW);
        mg_policy_unref(pol);
}

static void test_release_windows(void **state) {
        static const char *const s[] = {"deploy:read", "deploy:write",
                                        "deploy:admin", NULL};
        static const struct {
                int64_t now;
                const char *scopes;
        } cases[] = {
                {AT(0, 7, 59), "deploy:read"},      /* Mon, before */
                {AT(0, 8, 0), "deploy:read deploy:write"},
                {AT(0, 17, 59), "deploy:read deploy:write"},
                {AT(0, 18, 0), "deploy:read"},      /* end is exclusive */
                {AT(4, 12, 0), "deploy:read deploy:write"}, /* Fri */
                {AT(5, 12, 0), "deploy:read deploy:admin"}, /* Sat */
                {AT(5, 23, 59), "deploy:read deploy:admin"},
                {AT(6, 23, 59), "deploy:read deploy:admin"}, /* Sun */
                {AT(7, 0, 0), "deploy:read"},       /* Mon again */
                {AT(-1, 23, 59), "deploy:read deploy:admin"}, /* Sun */
                /* Tuesday 03:00: the second deploy:write window. */
                {AT(1, 3, 0), "deploy:read deploy:write"},
                {AT(1, 3, 30), "deploy:read"},
                {AT(1, 2, 59), "deploy:read"},
        };
        struct mg_policy *pol;
        size_t i;

        (void)state;
        pol = load("policies:\n  - client: c\n    resource: r\n"
                   "    allowed_scopes: [\"deploy:*\"]\n"
                   "    release_windows:\n"
                   "      - scope: deploy:write\n"
                   "        days: [mon, tue, wed, thu, fri]\n"
                   "        hours: \"08:00-18:00\"\n"
                   "      - {scope: \"deploy:w*\", days: [tue], hours: "
                   "\"03:00-03:30\"}\n"
                   "      - {scope: \"deploy:admin\", days: [Sat, SUN]}\n");
        risk(0);
        for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
                request("c", "r", s, 60);
                decide(pol, cases[i].now);
                if (strcmp(granted(), cases[i].scopes))
                        fail_msg("case %zu: got [%s], want [%s]", i,
                                 granted(), cases[i].scopes);
        }
        request("c", "r", s, 60);
        decide(pol, AT(5, 12, 0));
        assert_int_equal(dec.outcome, MG_DECISION_NARROW);
        assert_int_equal(find_reason("release_window",
                                     "deploy:write outside its release "
                                     "window (mon-fri 08:00-18:00 UTC): "
                                     "removed"),
                         0);
        decide(pol, AT(0, 12, 0));
        assert_string_equal(dec.reasons[0].detail,
                            "deploy:admin outside its release window "
                            "(sat-sun 00:00-24:00 UTC): removed");
        mg_policy_unref(pol);

        /* Before 1970 too (Wednesday 1969-12-31 23:00). */
        pol = load("policies:\n  - {client: c, resource: r, "
                   "allowed_scopes: [\"*\"], release_windows: [{scope: x, "
                   "days: [wed], hours: \"23:00-24:00\"}]}\n");
        request("c", "r", (const char *const[]){"x", NULL}, 60);
        decide(pol, -3600000);
        assert_int_equal(dec.outcome, MG_DECISION_ALLOW);
        decide(pol, -3600001);
        assert_denied();
        mg_policy_unref(pol);
}

static void test_degraded(void **state) {
        static const char *const s[] = {"deploy:read", "deploy:write",
                                        "logs:read", NULL};
        struct mg_policy *pol;

        (void)state;
        pol = load("defaults:\n  allowed_scopes: [\"*\"]\n"
                   "  high_impact_scopes: [deploy:write]\n"
                   "  ttl_by_risk: [{below: 10, max_ttl: 1h}, {below: 20, "
                   "max_ttl: 60}]\n"
                   "policies:\n"
                   "  - {client: closed, resource: r}\n"
                   "  - {client: narrow, resource: r, degraded: "
                   "fail_narrow, minimum_scopes: [\"*:read\"], "
                   "degraded_ttl: 90}\n"
                   "  - {client: open, resource: r, degraded: fail_open}\n");

        /* Fresh risk: none of it applies. */
        request("closed", "r", s, 600);
        risk(0);
        decide(pol, MON);
        assert_int_equal(dec.outcome, MG_DECISION_ALLOW);
        assert_false(dec.degraded);

        /* Missing (no record) and stale (a record, too old). */
        memset(&view, 0, sizeof(view));
        decide(pol, MON);
        assert_denied();
        assert_true(dec.degraded);
        assert_reason("degraded", "risk is missing: policy fails closed");
        assert_true(dec.risk == 0);
        assert_int_equal(dec.level, MG_RISK_LOW);
        /* Certainly no record (scoring has no risk for the identity): risk
         * 0, not degraded. */
        view.fresh = 1;
        decide(pol, MON);
        assert_int_equal(dec.outcome, MG_DECISION_ALLOW);
        assert_false(dec.degraded);
        assert_true(dec.risk == 0);
        memset(&view, 0, sizeof(view));
        risk(90);
        view.fresh = 0;
        decide(pol, MON);
        assert_denied();
        assert_true(dec.degraded);
        assert_reason("degraded", "risk is stale: policy fails closed");
        assert_true(dec.risk == 90); /* the view's, as it is */
        assert_int_equal(dec.level, MG_RISK_CRITICAL);
        /* A risk that is not a number is not a risk. */
        risk(NAN);
        decide(pol, MON);
        assert_denied();
        assert_true(dec.degraded);
        assert_reason("degraded", "risk is not a number");

        /* fail_narrow: minimum scopes, degraded TTL, risk rules off. */
        request("narrow", "r", s, 600);
        risk(90);
        view.fresh = 0;
        decide(pol, MON);
        assert_int_equal(dec.outcome, MG_DECISION_NARROW);
        assert_true(dec.degraded);
        assert_string_equal(granted(), "deploy:read logs:read");
        assert_int_equal(dec.ttl, 90);
        assert_reason("degraded", "risk is stale: policy fails narrow "
                                  "(minimum scopes, ttl <= 90s)");
        assert_reason("degraded", "deploy:write is not a minimum scope");
        assert_reason("policy", "ttl 600s capped to 90s (degraded_ttl)");
        /* ... already within it: allowed, but still degraded. */
        request("narrow", "r", (const char *const[]){"logs:read", NULL}, 30);
        memset(&view, 0, sizeof(view));
        decide(pol, MON);
        assert_int_equal(dec.outcome, MG_DECISION_ALLOW);
        assert_true(dec.degraded);
        /* ... nothing minimum requested: deny. */
        request("narrow", "r", (const char *const[]){"deploy:write", NULL},
                30);
        decide(pol, MON);
        assert_denied();
        assert_true(dec.degraded);

        /* fail_open: as if risk were 0 (stale risk 90 would deny). */
        request("open", "r", s, 600);
        risk(90);
        view.fresh = 0;
        decide(pol, MON);
        assert_int_equal(dec.outcome, MG_DECISION_ALLOW);
        assert_true(dec.degraded);
        assert_int_equal(dec.scope_cnt, 3);
        assert_int_equal(dec.ttl, 600); /* first ttl step: 1h */
        assert_true(dec.risk == 90);
        assert_reason("degraded", "risk is stale: policy fails open");
        mg_policy_unref(pol);
}

/* Risk reasons first, then policy reasons; the cap. */
static void test_reasons(void **state) {
        static const char *const names[] = {"s0", "s1", "s2", "s3", "s4",
                                            "s5", "s6", "s7", "s8", "s9",
                                            "s10", "s11", "s12", "s13",
                                            "s14", "s15", "s16", "s17",
                                            "ok", NULL};
        struct mg_policy *pol;
        int i;

        (void)state;
        pol = load("policies:\n  - {client: c, resource: r, "
                   "allowed_scopes: [ok]}\n");
        risk(12);
        view.risk.reason_cnt = 2;
        view.risk.reasons[0].signal = MG_SIG_NEW_SOURCE;
        view.risk.reasons[0].points = 30;
        snprintf(view.risk.reasons[0].detail, sizeof(view.risk.reasons[0].detail),
                 "198.51.100.0/24 never seen");
        view.risk.reasons[1].signal = MG_SIG_OFF_HOURS;
        view.risk.reasons[1].points = 7.5;
        snprintf(view.risk.reasons[1].detail, sizeof(view.risk.reasons[1].detail),
                 "active at 03:00");
        request("c", "r", (const char *const[]){"ok", "bad", NULL}, 60);
        decide(pol, MON);
        assert_int_equal(dec.reason_cnt, 3);
        assert_string_equal(dec.reasons[0].signal, "new_source");
        assert_true(dec.reasons[0].points == 30);
        assert_string_equal(dec.reasons[0].detail,
                            "198.51.100.0/24 never seen");
        assert_string_equal(dec.reasons[1].signal, "off_hours");
        assert_true(dec.reasons[1].points == 7.5);
        assert_string_equal(dec.reasons[2].signal, "policy");

        /* 2 risk reasons + 18 removed scopes: 16 slots, the last counts
         * what did not fit (20 - 15 = 5). */
        request("c", "r", names, 60);
        decide(pol, MON);
        assert_int_equal(dec.outcome, MG_DECISION_NARROW);
        assert_int_equal(dec.reason_cnt, MG_DECISION_REASONS_MAX);
        for (i = 2; i < MG_DECISION_REASONS_MAX - 1; i++)
                assert_non_null(strstr(dec.reasons[i].detail, names[i - 2]));
        assert_string_equal(dec.reasons[15].signal, "policy");
        assert_string_equal(dec.reasons[15].detail,
                            "5 more reasons not shown");

        /* A long scope is cut at a character, not inside one. */
        {
                static char longs[200];
                size_t n;

                memset(longs, 0, sizeof(longs));
                for (n = 0; n + 2 < 180; n += 2)
                        memcpy(longs + n, "\xc3\xa9", 2); /* é */
                request("c", "r", (const char *const[]){longs, "ok", NULL},
                        60);
                risk(0);
                decide(pol, MON);
                n = strlen(dec.reasons[0].detail);
                assert_true(n <= 159);
                assert_true(n % 2 == 0); /* whole é's only */
        }
        mg_policy_unref(pol);
}

static void test_step_up_narrows(void **state) {
        struct mg_policy *pol;

        (void)state;
        pol = load("policies:\n  - {client: c, resource: r, allowed_scopes: "
                   "[\"repo:*\"], high_impact_scopes: [repo:write], "
                   "ttl_by_risk: [{below: 50, max_ttl: 1h}, {below: 60, "
                   "max_ttl: 5m}]}\n");
        request("c", "r", (const char *const[]){"repo:read", "repo:write",
                                                "x", NULL},
                3600);
        risk(55);
        decide(pol, MON);
        /* What a successful step-up would get. */
        assert_int_equal(dec.outcome, MG_DECISION_STEP_UP);
        assert_string_equal(granted(), "repo:read");
        assert_int_equal(dec.ttl, 300);
        assert_string_equal(dec.policy, "c/r");
        assert_int_equal(dec.level, MG_RISK_HIGH);
        assert_false(dec.degraded);
        mg_policy_unref(pol);
}

static void test_reference(void **state) {
        char *text = NULL;
        size_t len = 0;
        FILE *fp;
        static const char *const keys[] = {
                "client", "resource", "name", "allowed_scopes",
                "high_impact_scopes", "max_ttl", "ttl_by_risk",
                "thresholds.narrow", "thresholds.step_up", "thresholds.deny",
                "remove_unused_scopes", "scope_unused_days", "grant_types",
                "max_exchange_depth", "release_windows", "degraded",
                "minimum_scopes", "degraded_ttl"};
        size_t i;

        (void)state;
        fp = open_memstream(&text, &len);
        assert_non_null(fp);
        mg_policy_print_reference(fp, 1);
        fclose(fp);
        assert_non_null(strstr(text, "| Key | Type | Default | Description"));
        for (i = 0; i < sizeof(keys) / sizeof(*keys); i++) {
                char want[64];

                snprintf(want, sizeof(want), "| `%s` |", keys[i]);
                assert_non_null(strstr(text, want));
        }
        assert_non_null(strstr(text, "| `max_ttl` | duration | 1h |"));
        free(text);
}

/*
 * Lifetime.
 */

static void test_refcount(void **state) {
        struct mg_policy *pol, *p2;
        struct mg_policy_slot slot;

        (void)state;
        pol = load("policies: []\n");
        assert_ptr_equal(mg_policy_ref(pol), pol);
        mg_policy_unref(pol);              /* 2 -> 1 */
        request("c", "r", S_RW, 60);
        risk(0);
        decide(pol, MON);                  /* still alive (ASan) */
        assert_null(mg_policy_ref(NULL));
        mg_policy_unref(NULL);
        mg_policy_destroy(NULL);

        mg_policy_slot_init(&slot, pol);   /* its own reference */
        mg_policy_unref(pol);              /* ... so the slot's is the last */
        p2 = mg_policy_slot_get(&slot);
        assert_ptr_equal(p2, pol);
        pol = load("policies: [{client: c, resource: r, allowed_scopes: "
                   "[\"*\"]}]\n");
        mg_policy_slot_set(&slot, pol);
        mg_policy_unref(pol);
        decide(p2, MON);                   /* the old one lives on */
        assert_denied();
        mg_policy_unref(p2);               /* ... until now */
        p2 = mg_policy_slot_get(&slot);
        decide(p2, MON);
        assert_int_equal(dec.outcome, MG_DECISION_ALLOW);
        mg_policy_unref(p2);
        mg_policy_slot_set(&slot, NULL);
        assert_null(mg_policy_slot_get(&slot));
        mg_policy_slot_destroy(&slot);
}

/* Readers decide while a writer keeps swapping policies: under ASan any
 * use after free or leak fails the test. */
struct reader {
        struct mg_policy_slot *slot; /* shared */
        int allows;                  /* decisions that allowed */
        int iters;                   /* decisions made */
};

static void *reader_main(void *arg) {
        struct reader *rd = arg;
        static const char *const s[] = {"a", NULL};
        struct mg_decide_req *r = calloc(1, sizeof(*r));
        struct mg_risk_view v;
        struct mg_decision d;
        struct mg_policy *pol;
        int i;

        memset(&v, 0, sizeof(v));
        v.known = v.fresh = 1;
        r->identity = "i";
        r->client_id = "c";
        r->resource = "r";
        r->scopes[0] = s[0];
        r->scope_cnt = 1;
        r->grant_type = "client_credentials";
        r->ttl = 60;
        for (i = 0; i < rd->iters; i++) {
                pol = mg_policy_slot_get(rd->slot);
                mg_policy_decide(pol, r, &v, MON, &d);
                rd->allows += d.outcome == MG_DECISION_ALLOW;
                mg_policy_unref(pol);
        }
        free(r);
        return NULL;
}

static void test_reload_threads(void **state) {
        struct mg_policy_slot slot;
        struct mg_policy *pol;
        struct reader rds[4];
        pthread_t th[4];
        int i, total = 0;

        (void)state;
        pol = load("policies: []\n");
        mg_policy_slot_init(&slot, pol);
        mg_policy_unref(pol);
        for (i = 0; i < 4; i++) {
                rds[i].slot = &slot;
                rds[i].allows = 0;
                rds[i].iters = 20000;
                assert_int_equal(pthread_create(&th[i], NULL, reader_main,
                                                &rds[i]),
                                 0);
        }
        for (i = 0; i < 400; i++) {
                pol = load(i % 2 ? "policies: []\n"
                                 : "policies: [{client: c, resource: r, "
                                   "allowed_scopes: [a]}]\n");
                mg_policy_slot_set(&slot, pol);
                mg_policy_unref(pol);
        }
        for (i = 0; i < 4; i++) {
                pthread_join(th[i], NULL);
                total += rds[i].allows;
        }
        assert_true(total >= 0 && total <= 80000);
        mg_policy_slot_destroy(&slot);
}

static double now_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Decision cost over the example policy: an allow without reasons, and a
 * narrow with risk and policy reasons (the DESIGN.md example's shape).
 * Printed; bounded only loosely (sanitizers). */
static void test_timing(void **state) {
        const char *src = getenv("MG_SOURCE_DIR");
        static const char *const s[] = {"deploy:write", "secrets:read",
                                        "deploy:read", NULL};
        struct mg_policy *pol = NULL;
        char path[1024];
        double t0, t_allow, t_narrow;
        int i, iters = 100000;

        (void)state;
        snprintf(path, sizeof(path), "%s/deploy/policy.yaml",
                 src ? src : ".");
        if (mg_policy_load_file(path, &pol, errbuf, sizeof(errbuf)))
                fail_msg("%s", errbuf);
        request("gh-actions", "api://deploy/prod",
                (const char *const[]){"deploy:read", NULL}, 600);
        req.grant_type = "token_exchange";
        risk(3);
        t0 = now_ns();
        for (i = 0; i < iters; i++)
                mg_policy_decide(pol, &req, &view, AT(0, 10, 0), &dec);
        t_allow = (now_ns() - t0) / iters;
        assert_int_equal(dec.outcome, MG_DECISION_ALLOW);
        request("gh-actions", "api://deploy/prod", s, 3600);
        req.grant_type = "token_exchange";
        risk(27.5);
        view.risk.reason_cnt = 1;
        view.risk.reasons[0].signal = MG_SIG_NEW_SOURCE;
        view.risk.reasons[0].points = 30;
        snprintf(view.risk.reasons[0].detail,
                 sizeof(view.risk.reasons[0].detail),
                 "198.51.100.0/24 never seen");
        t0 = now_ns();
        for (i = 0; i < iters; i++)
                mg_policy_decide(pol, &req, &view, AT(0, 10, 0), &dec);
        t_narrow = (now_ns() - t0) / iters;
        assert_int_equal(dec.outcome, MG_DECISION_NARROW);
        print_message("decide: allow %.0f ns, narrow with %d reasons %.0f "
                      "ns\n",
                      t_allow, dec.reason_cnt, t_narrow);
        assert_true(t_allow < 100000 && t_narrow < 100000);
        mg_policy_unref(pol);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_load_example),
                cmocka_unit_test(test_load_file_errors),
                cmocka_unit_test(test_load_errors),
                cmocka_unit_test(test_load_limits),
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_glob),
                cmocka_unit_test(test_specificity),
                cmocka_unit_test(test_no_policy),
                cmocka_unit_test(test_allowed_scopes),
                cmocka_unit_test(test_thresholds),
                cmocka_unit_test(test_ttl),
                cmocka_unit_test(test_unused_scopes),
                cmocka_unit_test(test_grant_types),
                cmocka_unit_test(test_exchange_depth),
                cmocka_unit_test(test_release_windows),
                cmocka_unit_test(test_degraded),
                cmocka_unit_test(test_reasons),
                cmocka_unit_test(test_step_up_narrows),
                cmocka_unit_test(test_reference),
                cmocka_unit_test(test_refcount),
                cmocka_unit_test(test_reload_threads),
                cmocka_unit_test(test_timing),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
