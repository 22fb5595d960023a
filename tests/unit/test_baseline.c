/*
 * test_baseline.c — unit tests of the baseline and scoring function
 * (scoring/mg_baseline.c).
 *
 * The centre is a reference model (STYLE.md: check clever code against a
 * plain one). For randomised event streams of many identities the
 * incremental baseline's result after every event — fired signals, risk
 * score, level, event counts, scope_unused — is compared with a naive
 * recomputation that keeps every applied event in a list and derives
 * everything from it again:
 *   - decayed sums are sums over all past events of w * 2^(-dt / half-life);
 *   - an LRU table of K entries is "the K most recently seen distinct
 *     values", found by scanning the list backwards;
 *   - per-minute rate statistics are sums over the minutes that had
 *     activity (the others count for nothing);
 *   - hours of the week come from gmtime_r(); from two days to a week of
 *     history off_hours sums the same hours of the day over every day;
 *   - a new network is "near" when a network among the identity's 16 most
 *     recent has the same /16 or /48, compared as text of inet_pton's
 *     bytes (or, with AS data, when its AS is among the 8 most recent);
 *   - shared_identity's high for a table is the largest count of values
 *     active that any earlier event's touch left, each event recording
 *     its own count.
 * The naive model is slow and obviously right; it records, for each event,
 * what it decided (fired signals, points, token depth, active counts) so
 * later events can sum them up. The address pool puts several /24s in
 * one /16 (and /64s in one /48) and others alone, so both weights of
 * new_source occur; the test counts how often each new path was taken
 * (nearby and far new_source, off_hours by hour of day, shared_identity
 * firing past its high and held by it or by new_source) and requires
 * each.
 *
 * Two comparisons are continuous and can legitimately differ in the last
 * bits: the hour-of-week share (stored as float by the baseline) and the
 * rate statistics. Where the naive value lies within a hair of the
 * threshold the bit is not compared; the test counts such cases and
 * requires them to be rare. Level is skipped the same way when the score
 * sits on a level boundary.
 *
 * With a prefix -> AS table (half the identities) the model also keeps
 * the identity's source ASes: it checks that a new_source firing names
 * the AS exactly when the AS is new, and the baseline's AS table against
 * "the 8 most recently seen ASes".
 *
 * Then one test per signal (fires on its pattern, quiet on normal traffic
 * of the same volume), source ASes, late events, encoding (round trip,
 * every truncation, garbage, blobs of versions 1 and 2, the
 * shared_identity peaks), the size of a typical identity's blob,
 * scope_unused and JSON.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <jansson.h>
#include <math.h>

#include "mg_baseline.h"

#define MIN_MS  60000LL
#define HOUR_MS 3600000LL
#define DAY_MS  86400000LL
#define T0      1794787200000LL /* Monday 2026-11-16T00:00:00Z */

/* Private constants of mg_baseline.c the naive model has to know. */
#define K_NETS          16
#define K_ASNS          8
#define K_CLIENTS       8
#define K_AGENTS        8
#define K_RESOURCES     32
#define K_SCOPES        32
#define K_TOKENS        16
#define SHARED_WINDOW   (24 * HOUR_MS)
#define HOW_HALF_LIFE   (14 * DAY_MS)
#define OFF_HOURS_SPAN  (7 * DAY_MS)
#define OFF_HOURS_DAY_SPAN (2 * DAY_MS)
#define RATE_MIN_EXCESS 10.0

/*
 * Building events.
 */

/* Everything a test event may carry; NULL / 0 = absent. */
struct spec {
        enum mg_event_type type;  /* auth, usage or signal */
        int64_t ts;               /* event time */
        const char *client;       /* auth: client_id */
        const char *ip;           /* auth, usage: source_ip */
        const char *ua;           /* auth: user_agent */
        const char *aud;          /* auth: audience */
        const char *scopes[8];    /* auth: scopes */
        int scope_cnt;            /* entries in scopes */
        int fail;                 /* auth: outcome failure */
        int exchange;             /* auth: grant token_exchange */
        const char *token;        /* auth: token issued */
        const char *parent;       /* auth: token exchanged from */
        const char *resource;     /* usage: resource */
        const char *scope;        /* usage: scope exercised */
        enum mg_signal_kind kind; /* signal: kind */
        int severity;             /* signal: 0..100 */
};

/* Events are 17 KiB: keep them off the stack. */
static struct mg_event ev;

static void set_str(struct mg_event *e, const char **field, const char *name,
                    const char *val) {
        char err[256];

        if (!val)
                return;
        if (mg_event_set_str(e, field, name, val, strlen(val), err,
                             sizeof(err)))
                fail_msg("set %s: %s", name, err);
}

static void build(const struct spec *sp, struct mg_event *e) {
        char err[256];
        int i;

        mg_event_reset(e, sp->type);
        e->ts_ms = sp->ts;
        set_str(e, &e->event_id, "event_id", "e-1");
        set_str(e, &e->identity, "identity", "spiffe://test/workload");
        switch (sp->type) {
        case MG_EVENT_AUTH:
                set_str(e, &e->u.auth.client_id, "client_id",
                        sp->client ? sp->client : "client-a");
                set_str(e, &e->u.auth.source_ip, "source_ip",
                        sp->ip ? sp->ip : "192.0.2.10");
                set_str(e, &e->u.auth.user_agent, "user_agent", sp->ua);
                set_str(e, &e->u.auth.audience, "audience", sp->aud);
                set_str(e, &e->u.auth.token_id, "token_id", sp->token);
                set_str(e, &e->u.auth.parent_token_id, "parent_token_id",
                        sp->parent);
                e->u.auth.outcome =
                        sp->fail ? MG_OUTCOME_FAILURE : MG_OUTCOME_SUCCESS;
                e->u.auth.grant_type = sp->exchange
                                               ? MG_GRANT_TOKEN_EXCHANGE
                                               : MG_GRANT_CLIENT_CREDENTIALS;
                for (i = 0; i < sp->scope_cnt; i++)
                        if (mg_event_add_scope(e, sp->scopes[i],
                                               strlen(sp->scopes[i]), err,
                                               sizeof(err)))
                                fail_msg("scope: %s", err);
                break;
        case MG_EVENT_USAGE:
                set_str(e, &e->u.usage.resource, "resource",
                        sp->resource ? sp->resource : "api://default");
                set_str(e, &e->u.usage.action, "action", "GET /");
                set_str(e, &e->u.usage.source_ip, "source_ip", sp->ip);
                set_str(e, &e->u.usage.scope, "scope", sp->scope);
                e->u.usage.status = 200;
                break;
        default:
                e->u.signal.kind = sp->kind;
                e->u.signal.severity = sp->severity;
                set_str(e, &e->u.signal.source, "source", "scanner");
                set_str(e, &e->u.signal.detail, "detail", "found in a repo");
                break;
        }
        if (mg_event_validate(e, sp->ts + 1000, err, sizeof(err)))
                fail_msg("test event invalid: %s", err);
}

/* The prefix -> AS table of the AS tests and of the reference model: the
 * addresses normal() uses, documentation ranges, and nested prefixes over
 * the model's address pool (10.x.y.z, 2001:db8:x:y::z), some of it left
 * uncovered. */
static const struct {
        const char *addr; /* first address */
        int len;          /* prefix length */
        uint32_t asn;     /* origin */
} asn_prefixes[] = {
        {"192.0.2.0", 23, 64496},     {"198.51.100.0", 23, 64500},
        {"2001:db8::", 32, 64501},    {"2001:db8:4::", 48, 64514},
        {"2001:db8:18::", 45, 64515}, {"10.0.0.0", 16, 64510},
        {"10.1.0.0", 16, 64511},      {"10.1.16.0", 20, 64512},
        {"10.2.0.0", 20, 64513},
};
#define ASN_PREFIX_CNT (sizeof(asn_prefixes) / sizeof(*asn_prefixes))

/* The table above, loaded. */
static struct mg_asn *test_asn(void) {
        char text[1024], err[256];
        struct mg_asn *asn;
        size_t i, off = 0;

        for (i = 0; i < ASN_PREFIX_CNT; i++)
                off += (size_t)snprintf(text + off, sizeof(text) - off,
                                        "%s/%d %u\n", asn_prefixes[i].addr,
                                        asn_prefixes[i].len,
                                        asn_prefixes[i].asn);
        if (mg_asn_load_buf("test", text, off, &asn, err, sizeof(err)))
                fail_msg("AS table: %s", err);
        return asn;
}

/* The AS of an address the plain way: every prefix, bit by bit. */
static uint32_t naive_asn(const char *ip) {
        unsigned char a[16], p[16];
        int fam = strchr(ip, ':') ? AF_INET6 : AF_INET, best = -1, k;
        size_t i;

        if (inet_pton(fam, ip, a) != 1)
                fail_msg("naive_asn: %s", ip);
        for (i = 0; i < ASN_PREFIX_CNT; i++) {
                int pfam = strchr(asn_prefixes[i].addr, ':') ? AF_INET6
                                                              : AF_INET;

                if (pfam != fam ||
                    inet_pton(pfam, asn_prefixes[i].addr, p) != 1)
                        continue;
                for (k = 0; k < asn_prefixes[i].len; k++)
                        if (((a[k / 8] ^ p[k / 8]) >> (7 - k % 8)) & 1)
                                break;
                if (k == asn_prefixes[i].len &&
                    (best < 0 || asn_prefixes[i].len >
                                         asn_prefixes[best].len))
                        best = (int)i;
        }
        return best < 0 ? 0 : asn_prefixes[best].asn;
}

static void load_defaults(struct mg_scoring_conf *c) {
        struct mg_conf *mc = mg_conf_new();
        char err[512];

        assert_non_null(mc);
        memset(c, 0, sizeof(*c));
        if (mg_conf_add_section(mc, "Scoring", mg_scoring_conf_props,
                                mg_scoring_conf_prop_cnt, c, err,
                                sizeof(err)))
                fail_msg("defaults: %s", err);
        mg_conf_destroy(mc);
        c->asn_file = NULL; /* freed with mc */
}

/*
 * Shared state of the per-signal tests.
 */
static struct mg_scoring_conf conf;  /* defaults unless a test changes it */
static struct mg_baseline *bl;       /* the baseline under test */
static struct mg_apply_result res;   /* result of the last apply() */
static struct mg_asn *asn_tab;       /* conf.asn when a test sets it */

static int setup(void **state) {
        (void)state;
        load_defaults(&conf);
        bl = malloc(mg_baseline_size());
        assert_non_null(bl);
        mg_baseline_init(bl);
        return 0;
}

static int teardown(void **state) {
        (void)state;
        free(bl);
        bl = NULL;
        mg_asn_destroy(asn_tab);
        asn_tab = NULL;
        conf.asn = NULL;
        return 0;
}

static size_t roundtrip(const struct mg_baseline *b);

/* Score with the test's prefix -> AS table. */
static void use_asn_table(void) {
        conf.asn = asn_tab = test_asn();
}

/* Apply, expect success, return the fired mask. */
static unsigned apply(const struct spec *sp) {
        mg_err_t err;

        build(sp, &ev);
        err = mg_baseline_apply(bl, &conf, &ev, &res);
        if (err)
                fail_msg("apply at %lld: %s", (long long)sp->ts,
                         mg_err_name(err));
        assert_true(res.applied);
        return res.fired;
}

/* A successful auth: client, address, user agent, one scope. */
static unsigned ok_auth(int64_t ts, const char *client, const char *ip,
                        const char *ua) {
        return apply(&(struct spec){.type = MG_EVENT_AUTH, .ts = ts,
                                    .client = client, .ip = ip, .ua = ua,
                                    .aud = "api://deploy",
                                    .scopes = {"deploy:write"},
                                    .scope_cnt = 1});
}

static unsigned use(int64_t ts, const char *resource, const char *ip) {
        return apply(&(struct spec){.type = MG_EVENT_USAGE, .ts = ts,
                                    .resource = resource, .ip = ip,
                                    .scope = "deploy:write"});
}

static unsigned fail_auth(int64_t ts) {
        return apply(&(struct spec){.type = MG_EVENT_AUTH, .ts = ts,
                                    .client = "client-a", .ip = "192.0.2.10",
                                    .fail = 1});
}

static unsigned signal_ev(int64_t ts, enum mg_signal_kind kind, int sev) {
        return apply(&(struct spec){.type = MG_EVENT_SIGNAL, .ts = ts,
                                    .kind = kind, .severity = sev});
}

/* n events of ordinary traffic from t, step apart: auth and usage from
 * the same client, network, agent and resources. Returns the time after. */
static int64_t normal(int64_t t, int n, int64_t step) {
        static const char *const ips[] = {"192.0.2.10", "192.0.2.77"};
        static const char *const rs[] = {"api://deploy", "api://status"};
        int i;

        for (i = 0; i < n; i++, t += step) {
                unsigned f = i % 3 == 0
                                     ? ok_auth(t, "client-a", ips[i % 2],
                                               "agent/1.0")
                                     : use(t, rs[i % 2], ips[i % 2]);

                if (f)
                        fail_msg("normal traffic fired 0x%x at event %d "
                                 "(%s)",
                                 f, i, res.risk.reason_cnt
                                               ? res.risk.reasons[0].detail
                                               : "");
        }
        return t;
}

#define BIT(s) (1u << (s))

/* The detail the latest risk gives for signal s, or NULL. */
static const char *reason_detail(enum mg_signal s) {
        int i;

        for (i = 0; i < res.risk.reason_cnt; i++)
                if (res.risk.reasons[i].signal == s)
                        return res.risk.reasons[i].detail;
        return NULL;
}

static void assert_detail(enum mg_signal s, const char *want) {
        const char *d = reason_detail(s);

        if (!d || !strstr(d, want))
                fail_msg("%s: detail \"%s\", want \"%s\"", mg_signal_names[s],
                         d ? d : "(none)", want);
}

/* The last event fired new_source with these points and exactly this
 * detail ("... never seen" alone is a prefix of the nearby detail). */
static void assert_source(double points, const char *detail) {
        const char *d = reason_detail(MG_SIG_NEW_SOURCE);

        if (!(res.fired & BIT(MG_SIG_NEW_SOURCE)))
                fail_msg("new_source did not fire (want \"%s\")", detail);
        if (res.points[MG_SIG_NEW_SOURCE] != points)
                fail_msg("new_source: %g points, want %g (\"%s\")",
                         res.points[MG_SIG_NEW_SOURCE], points,
                         d ? d : "(none)");
        if (!d || strcmp(d, detail))
                fail_msg("new_source: detail \"%s\", want \"%s\"",
                         d ? d : "(none)", detail);
}

/*
 * Configuration table.
 */

static void test_conf_table(void **state) {
        static const char nearby[] = "scoring.signals.new_source.nearby_weight";
        struct mg_conf *mc = mg_conf_new();
        struct mg_scoring_conf c;
        char err[512], key[128];
        size_t i, j;
        int s;

        (void)state;
        load_defaults(&c);
        assert_int_equal(c.risk_half_life_ms, 6 * HOUR_MS);
        assert_true(c.level_medium == 25 && c.level_high == 50 &&
                    c.level_critical == 80);
        assert_int_equal(c.dormant_after_ms, 14 * DAY_MS);
        assert_int_equal(c.scope_unused_after_ms, 30 * DAY_MS);
        assert_int_equal(c.late_bound_ms, HOUR_MS);
        assert_int_equal(c.failure_window_ms, 5 * MIN_MS);
        assert_true(c.rate_half_life_ms > 0);
        assert_true(c.sig[MG_SIG_NEW_SOURCE].weight == 30);
        assert_true(c.new_source_nearby == 10);
        assert_true(c.sig[MG_SIG_RATE_SPIKE].threshold == 8);
        assert_true(c.sig[MG_SIG_SCOPE_EXPANSION].weight == 25);
        assert_true(c.sig[MG_SIG_NEW_RESOURCE].weight == 8);
        assert_int_equal(c.sig[MG_SIG_SHARED_IDENTITY].warmup, 300);
        assert_true(c.sig[MG_SIG_QUARANTINE].weight >= c.level_critical);
        /* Every signal has its three keys, every key a description, all
         * reloadable, no duplicates. */
        for (s = 0; s < MG_SIG__CNT; s++) {
                static const char *const parts[] = {"weight", "threshold",
                                                    "warmup"};

                for (j = 0; j < 3; j++) {
                        snprintf(key, sizeof(key), "scoring.signals.%s.%s",
                                 mg_signal_names[s], parts[j]);
                        for (i = 0; i < mg_scoring_conf_prop_cnt; i++)
                                if (!strcmp(mg_scoring_conf_props[i].name,
                                            key))
                                        break;
                        if (i == mg_scoring_conf_prop_cnt)
                                fail_msg("missing %s", key);
                }
        }
        assert_int_equal(mg_scoring_conf_prop_cnt, 11 + 3 * MG_SIG__CNT);
        /* All reloadable but the AS file, which is read once at start. */
        for (i = 0; i < mg_scoring_conf_prop_cnt; i++) {
                assert_int_equal(mg_scoring_conf_props[i].reloadable,
                                 strcmp(mg_scoring_conf_props[i].name,
                                        "scoring.asn_file") != 0);
                assert_true(strlen(mg_scoring_conf_props[i].desc) > 20);
        }
        assert_null(c.asn);
        /* Values load through the table, bounds apply. */
        assert_non_null(mc);
        assert_int_equal(mg_conf_add_section(mc, "Scoring",
                                             mg_scoring_conf_props,
                                             mg_scoring_conf_prop_cnt, &c,
                                             err, sizeof(err)),
                         MG_OK);
        assert_string_equal(c.asn_file, "");
        assert_int_equal(mg_conf_set(mc, "scoring.signals.rate_spike.threshold",
                                     "4.5", err, sizeof(err)),
                         MG_OK);
        assert_true(c.sig[MG_SIG_RATE_SPIKE].threshold == 4.5);
        assert_int_equal(mg_conf_set(mc, "scoring.risk.half_life", "2h", err,
                                     sizeof(err)),
                         MG_OK);
        assert_int_equal(c.risk_half_life_ms, 2 * HOUR_MS);
        assert_int_equal(mg_conf_set(mc, nearby, "12.5", err, sizeof(err)),
                         MG_OK);
        assert_true(c.new_source_nearby == 12.5);
        assert_int_equal(mg_conf_set(mc, nearby, "101", err, sizeof(err)),
                         MG_ERR_CONFIG);
        assert_non_null(strstr(err, "nearby_weight"));
        assert_int_equal(mg_conf_set(mc, "scoring.signals.auth_failures.threshold",
                                     "33", err, sizeof(err)),
                         MG_ERR_CONFIG);
        assert_int_equal(mg_conf_set(mc, "scoring.signals.bogus.weight", "1",
                                     err, sizeof(err)),
                         MG_ERR_CONFIG);
        assert_int_equal(mg_conf_set(mc, "scoring.asn_file",
                                     "/var/lib/mintgate/pfx2as.txt", err,
                                     sizeof(err)),
                         MG_OK);
        assert_string_equal(c.asn_file, "/var/lib/mintgate/pfx2as.txt");
        mg_conf_destroy(mc);
}

/*
 * One test per signal.
 */

static void test_new_source(void **state) {
        int64_t t;

        (void)state;
        /* Five networks in a day would be shared_identity: not tested
         * here. */
        conf.sig[MG_SIG_SHARED_IDENTITY].threshold = 7;
        t = normal(T0 + 9 * HOUR_MS, 60, 5 * MIN_MS);
        assert_int_equal(use(t, "api://deploy", "198.51.100.23"),
                         BIT(MG_SIG_NEW_SOURCE));
        assert_source(30, "198.51.100.0/24 never seen");
        assert_true(res.risk.score == 30 && res.risk.level == MG_RISK_MEDIUM);
        assert_true(res.risk_changed);
        /* Same /24, other host: known now. */
        assert_int_equal(use(t + 1000, "api://deploy", "198.51.100.99"), 0);
        /* Ports, brackets and IPv4-mapped IPv6 are the same network. */
        assert_int_equal(use(t + 2000, "api://deploy", "198.51.100.5:4431"),
                         0);
        assert_int_equal(use(t + 3000, "api://deploy", "::ffff:198.51.100.7"),
                         0);
        /* IPv6: the /64 counts. */
        assert_int_equal(use(t + 4000, "api://deploy", "2001:db8:1:2::5"),
                         BIT(MG_SIG_NEW_SOURCE));
        assert_source(30, "2001:db8:1:2::/64 never seen");
        assert_int_equal(use(t + 5000, "api://deploy",
                             "[2001:db8:1:2:aaaa::9]"),
                         0);
        /* Another /64 of the same /48: near a known network. */
        assert_int_equal(use(t + 6000, "api://deploy", "2001:db8:1:3::5"),
                         BIT(MG_SIG_NEW_SOURCE));
        assert_source(10, "2001:db8:1:3::/64 never seen, near a known "
                          "network");
        /* A failed authentication neither fires nor teaches. */
        assert_int_equal(apply(&(struct spec){.type = MG_EVENT_AUTH,
                                              .ts = t + 7000,
                                              .client = "client-a",
                                              .ip = "203.0.113.9",
                                              .fail = 1}),
                         0);
        assert_int_equal(use(t + 8000, "api://deploy", "203.0.113.10"),
                         BIT(MG_SIG_NEW_SOURCE));
        assert_source(30, "203.0.113.0/24 never seen");
        /* Not an address: ignored. */
        assert_int_equal(use(t + 9000, "api://deploy", "not-an-ip"), 0);
}

static void test_new_source_warmup_and_k(void **state) {
        int64_t t = T0;
        int i;

        (void)state;
        /* Twenty networks within minutes are shared_identity too. */
        conf.sig[MG_SIG_SHARED_IDENTITY].warmup = 1000000;
        /* During warm-up novelties are learnt silently. */
        for (i = 0; i < 19; i++) {
                char ip[32];

                snprintf(ip, sizeof(ip), "10.0.%d.1", i);
                assert_int_equal(use(t += MIN_MS, "api://a", ip), 0);
        }
        /* 20 events seen: the 17th most recent network (10.0.2.0/24) was
         * evicted from the 16-entry table and is new again. */
        assert_int_equal(use(t += MIN_MS, "api://a", "10.0.18.9"), 0);
        assert_int_equal(use(t += MIN_MS, "api://a", "10.0.2.1"),
                         BIT(MG_SIG_NEW_SOURCE));
        /* threshold 2: only the 2 most recent networks are known. */
        conf.sig[MG_SIG_NEW_SOURCE].threshold = 2;
        assert_int_equal(use(t += MIN_MS, "api://a", "10.0.18.1"), 0);
        assert_int_equal(use(t += MIN_MS, "api://a", "10.0.17.1"),
                         BIT(MG_SIG_NEW_SOURCE));
}

/* A new network near a known one (the same /16 or /48: another subnet of
 * a site the identity uses) weighs scoring.signals.new_source.
 * nearby_weight; one far from all of them the full weight. */
static void test_new_source_nearby(void **state) {
        char ip[32], want[64];
        int64_t t;
        int i;

        (void)state;
        /* Many networks in a day are shared_identity: not tested here. */
        conf.sig[MG_SIG_SHARED_IDENTITY].warmup = 1000000;
        t = normal(T0 + 9 * HOUR_MS, 60, 5 * MIN_MS); /* 192.0.2.0/24 */
        /* Same /16: near. */
        assert_int_equal(use(t, "api://deploy", "192.0.3.7"),
                         BIT(MG_SIG_NEW_SOURCE));
        assert_source(10, "192.0.3.0/24 never seen, near a known network");
        assert_true(res.risk.score == 10 && res.risk.level == MG_RISK_LOW);
        /* Another /16: far. */
        assert_int_equal(use(t + 1000, "api://deploy", "198.51.100.23"),
                         BIT(MG_SIG_NEW_SOURCE));
        assert_source(30, "198.51.100.0/24 never seen");
        /* Its /16 is known now, through any of its /24s. */
        assert_int_equal(use(t + 2000, "api://deploy", "198.51.200.1"),
                         BIT(MG_SIG_NEW_SOURCE));
        assert_source(10, "198.51.200.0/24 never seen, near a known network");
        /* 192.1.x shares only the first byte: far. */
        assert_int_equal(use(t + 3000, "api://deploy", "192.1.2.3"),
                         BIT(MG_SIG_NEW_SOURCE));
        assert_source(30, "192.1.2.0/24 never seen");
        /* IPv6: the /48 counts. The first IPv6 network is far from every
         * IPv4 one, even one whose bytes it starts with (c000:200::/48
         * and 192.0.2.0/24 share their first six prefix bytes, not their
         * family). */
        assert_int_equal(use(t + 4000, "api://deploy", "c000:200::1"),
                         BIT(MG_SIG_NEW_SOURCE));
        assert_source(30, "c000:200::/64 never seen");
        assert_int_equal(use(t + 5000, "api://deploy", "2001:db8:1:2::5"),
                         BIT(MG_SIG_NEW_SOURCE));
        assert_source(30, "2001:db8:1:2::/64 never seen");
        assert_int_equal(use(t + 6000, "api://deploy", "2001:db8:1:ff::5"),
                         BIT(MG_SIG_NEW_SOURCE));
        assert_source(10, "2001:db8:1:ff::/64 never seen, near a known "
                          "network");
        assert_int_equal(use(t + 7000, "api://deploy", "2001:db8:2:2::5"),
                         BIT(MG_SIG_NEW_SOURCE));
        assert_source(30, "2001:db8:2:2::/64 never seen");
        /* IPv4-mapped IPv6 is IPv4: near 192.0.2.0/24. */
        assert_int_equal(use(t + 8000, "api://deploy", "::ffff:192.0.9.1"),
                         BIT(MG_SIG_NEW_SOURCE));
        assert_source(10, "192.0.9.0/24 never seen, near a known network");
        /* The risk adds up the points: 10 + 30 + 10 + 30 + 30 + 30 + 10 +
         * 30 + 10 = 190, capped. */
        assert_true(res.risk.score == 100);
        /* The nearby weight is a setting of its own. */
        conf.new_source_nearby = 4;
        assert_int_equal(use(t + 9000, "api://deploy", "198.51.7.1"),
                         BIT(MG_SIG_NEW_SOURCE));
        assert_source(4, "198.51.7.0/24 never seen, near a known network");
        /* Near a network the table has forgotten is not near: networks
         * of 16 other /16s push 192.0.2.0/24 out of the table. */
        mg_baseline_init(bl);
        conf.new_source_nearby = 10;
        t = normal(t + DAY_MS, 30, MIN_MS);
        for (i = 0; i < 16; i++) {
                snprintf(ip, sizeof(ip), "100.%d.0.1", 64 + i);
                snprintf(want, sizeof(want), "100.%d.0.0/24 never seen",
                         64 + i);
                assert_int_equal(use(t += 1000, "api://deploy", ip),
                                 BIT(MG_SIG_NEW_SOURCE));
                assert_source(30, want);
        }
        assert_int_equal(use(t + 1000, "api://deploy", "192.0.4.1"),
                         BIT(MG_SIG_NEW_SOURCE));
        assert_source(30, "192.0.4.0/24 never seen");
}

static void test_new_source_asn(void **state) {
        struct mg_baseline *copy = malloc(mg_baseline_size());
        json_error_t jerr;
        json_t *root, *asns;
        char *text;
        int64_t t;

        (void)state;
        assert_non_null(copy);
        /* Many networks in a day are shared_identity: not tested here. */
        conf.sig[MG_SIG_SHARED_IDENTITY].warmup = 1000000;
        /* Learnt without AS data, then scoring.asn_file is turned on:
         * known networks stay known (their ASes are learnt silently), so
         * the switch fires nothing. */
        t = normal(T0 + 9 * HOUR_MS, 60, 5 * MIN_MS);
        use_asn_table();
        t = normal(t, 10, 5 * MIN_MS);
        /* A new /24 in a known AS (192.0.2.0/23): a new network near a
         * known one, named by the network. */
        assert_int_equal(use(t, "api://deploy", "192.0.3.7"),
                         BIT(MG_SIG_NEW_SOURCE));
        assert_source(10, "192.0.3.0/24 never seen, near a known network");
        assert_true(res.risk.score == 10);
        /* A new AS: the full weight, and the detail names it. */
        memcpy(copy, bl, mg_baseline_size());
        assert_int_equal(use(t + 1000, "api://deploy", "198.51.100.23"),
                         BIT(MG_SIG_NEW_SOURCE));
        assert_source(30, "AS64500 never seen (198.51.100.0/24)");
        assert_true(fabs(res.risk.score - (10 * pow(2, -1000.0 / (6 * HOUR_MS)) +
                                           30)) < 1e-9);
        /* Another network of that AS: known AS now, a new network near
         * a known one. */
        assert_int_equal(use(t + 2000, "api://deploy", "198.51.101.9"),
                         BIT(MG_SIG_NEW_SOURCE));
        assert_source(10, "198.51.101.0/24 never seen, near a known network");
        /* IPv6, nested prefixes: the longest wins. */
        assert_int_equal(use(t + 3000, "api://deploy", "2001:db8:4:1::5"),
                         BIT(MG_SIG_NEW_SOURCE));
        assert_source(30, "AS64514 never seen (2001:db8:4:1::/64)");
        assert_int_equal(use(t + 4000, "api://deploy", "2001:db8:5:1::5"),
                         BIT(MG_SIG_NEW_SOURCE));
        assert_source(30, "AS64501 never seen (2001:db8:5:1::/64)");
        /* Another /48 of a known AS: no network of the table shares its
         * /48, but the AS is the identity's: near. */
        assert_int_equal(use(t + 4500, "api://deploy", "2001:db8:9:1::5"),
                         BIT(MG_SIG_NEW_SOURCE));
        assert_source(10, "2001:db8:9:1::/64 never seen, near a known "
                          "network");
        /* An address no prefix covers, far from the networks: the
         * network alone, the full weight. */
        assert_int_equal(use(t + 5000, "api://deploy", "203.0.113.10"),
                         BIT(MG_SIG_NEW_SOURCE));
        assert_source(30, "203.0.113.0/24 never seen");
        /* IPv4-mapped and with a port: the same AS and network. */
        assert_int_equal(use(t + 6000, "api://deploy",
                             "::ffff:198.51.100.99"),
                         0);
        assert_int_equal(use(t + 7000, "api://deploy", "198.51.100.5:443"),
                         0);
        /* A failed authentication teaches no AS. */
        apply(&(struct spec){.type = MG_EVENT_AUTH, .ts = t + 8000,
                             .client = "client-a", .ip = "10.1.16.1",
                             .fail = 1});
        assert_int_equal(use(t + 9000, "api://deploy", "10.1.17.1"),
                         BIT(MG_SIG_NEW_SOURCE));
        assert_source(30, "AS64512 never seen (10.1.17.0/24)");
        /* The AS table, most recent first, survives encoding. */
        roundtrip(bl);
        text = mg_baseline_to_json(bl, &conf, t + 9000);
        assert_non_null(text);
        root = json_loads(text, 0, &jerr);
        assert_non_null(root);
        asns = json_object_get(root, "asns");
        assert_int_equal(json_array_size(asns), 5);
        assert_int_equal(json_integer_value(json_object_get(
                                 json_array_get(asns, 0), "asn")),
                         64512);
        assert_int_equal(json_integer_value(json_object_get(
                                 json_array_get(asns, 1), "asn")),
                         64500);
        assert_int_equal(json_integer_value(json_object_get(
                                 json_array_get(asns, 4), "asn")),
                         64496);
        json_decref(root);
        free(text);

        /* Without AS data the same event fires, naming the network: a
         * new AS and a far network weigh the same. */
        conf.asn = NULL;
        memcpy(bl, copy, mg_baseline_size());
        assert_int_equal(use(t + 1000, "api://deploy", "198.51.100.23"),
                         BIT(MG_SIG_NEW_SOURCE));
        assert_source(30, "198.51.100.0/24 never seen");
        assert_true(fabs(res.risk.score - (10 * pow(2, -1000.0 / (6 * HOUR_MS)) +
                                           30)) < 1e-9);
        /* Only the AS made 2001:db8:9:1::/64 near: without AS data it is
         * far (no IPv6 network in the table). */
        assert_int_equal(use(t + 4500, "api://deploy", "2001:db8:9:1::5"),
                         BIT(MG_SIG_NEW_SOURCE));
        assert_source(30, "2001:db8:9:1::/64 never seen");
        free(copy);
}

/* More ASes than the table holds: the least recently seen goes, and its
 * networks are known still (the network table is larger): an AS only
 * refines a network novelty. */
static void test_new_source_asn_eviction(void **state) {
        /* After normal()'s 64496, eight more: 64510, 64511, 64512, 64513,
         * 64500, 64501, 64514, 64515. */
        static const char *const ips[] = {
                "10.0.1.1",     "10.1.1.1",      "10.1.17.1",
                "10.2.1.1",     "198.51.100.1",  "2001:db8:1::1",
                "2001:db8:4::1", "2001:db8:18::1"};
        int64_t t = T0;
        int i;

        (void)state;
        use_asn_table();
        conf.sig[MG_SIG_SHARED_IDENTITY].warmup = 1000000;
        t = normal(t, 30, MIN_MS);
        for (i = 0; i < 8; i++) {
                assert_int_equal(use(t += MIN_MS, "api://deploy", ips[i]),
                                 BIT(MG_SIG_NEW_SOURCE));
                assert_non_null(reason_detail(MG_SIG_NEW_SOURCE));
                assert_true(!strncmp(reason_detail(MG_SIG_NEW_SOURCE), "AS",
                                     2));
        }
        /* 64496 fell out of the 8 ASes, but 192.0.2.0/24 is among the 16
         * networks: known, nothing fires. */
        assert_int_equal(use(t += MIN_MS, "api://deploy", "192.0.2.10"), 0);
        /* It is back in the AS table: a new network of it is a new
         * network only, near a known one. */
        assert_int_equal(use(t += MIN_MS, "api://deploy", "192.0.3.10"),
                         BIT(MG_SIG_NEW_SOURCE));
        assert_source(10, "192.0.3.0/24 never seen, near a known network");
        roundtrip(bl);
}

static void test_rate_spike(void **state) {
        int64_t t = T0 + 8 * HOUR_MS, m;
        unsigned fired = 0, f;
        int i, j, fires = 0;

        (void)state;
        /* Six hours of 2-4 events a minute. */
        for (m = 0; m < 360; m++)
                for (j = 0; j < 2 + (int)(m % 3); j++)
                        assert_int_equal(use(t + m * MIN_MS + j * 7000,
                                             "api://deploy", "192.0.2.10"),
                                         0);
        t += 360 * MIN_MS;
        /* 40 in one minute: fires once, at the event that crosses. */
        for (i = 0; i < 40; i++) {
                f = use(t + i * 1000, "api://deploy", "192.0.2.10");
                if (f & BIT(MG_SIG_RATE_SPIKE)) {
                        fires++;
                        assert_true(i >= 10);
                }
                fired |= f;
        }
        assert_int_equal(fired, BIT(MG_SIG_RATE_SPIKE));
        assert_int_equal(fires, 1);
        assert_detail(MG_SIG_RATE_SPIKE, "events in one minute");
        /* The next minute may fire again. */
        t += MIN_MS;
        for (fires = 0, i = 0; i < 40; i++)
                fires += !!(use(t + i * 1000, "api://deploy", "192.0.2.10") &
                            BIT(MG_SIG_RATE_SPIKE));
        assert_int_equal(fires, 1);
}

static void test_rate_spike_quiet(void **state) {
        int64_t t = T0 + 8 * HOUR_MS, m;
        int j;

        (void)state;
        /* The same volume (3 a minute on average) with ordinary jitter,
         * including a minute of 8. */
        for (m = 0; m < 400; m++) {
                int n = m % 50 == 49 ? 8 : 1 + (int)((m * 7) % 5);

                for (j = 0; j < n; j++)
                        assert_int_equal(use(t + m * MIN_MS + j * 5000,
                                             "api://deploy", "192.0.2.10"),
                                         0);
        }
        /* A very quiet identity going from 1 to 3 a minute: too few to
         * matter, even though it is many standard deviations. */
        mg_baseline_init(bl);
        t = T0 + 20 * DAY_MS;
        for (m = 0; m < 300; m++)
                assert_int_equal(use(t + m * MIN_MS, "api://deploy",
                                     "192.0.2.10"),
                                 0);
        t += 300 * MIN_MS;
        for (j = 0; j < 3; j++)
                assert_int_equal(use(t + j * 1000, "api://deploy",
                                     "192.0.2.10"),
                                 0);
}

/* An identity that works in bursts (a batch job: 20-25 calls within a
 * minute, once an hour, idle in between) has bursts as its norm: its
 * statistics are of active minutes. Counting the idle minutes as zeros
 * made the mean 0.4 and every burst a spike. A burst far above its usual
 * bursts still fires. */
static void test_rate_spike_bursty(void **state) {
        int64_t t = T0 + 2 * HOUR_MS;
        unsigned f;
        int h, j, n, fires = 0;

        (void)state;
        /* A day of hourly bursts: 540 events, armed from the tenth burst
         * on. */
        for (h = 0; h < 24; h++) {
                n = 20 + h % 6;
                for (j = 0; j < n; j++)
                        assert_int_equal(use(t + h * HOUR_MS + j * 2000,
                                             "api://deploy", "192.0.2.10"),
                                         0);
        }
        /* 80 in one burst: fires once, when the count passes 22.6 + 8 *
         * 1.7 = 36.2 (counting the idle minutes, the mean was 0.4 and
         * the standard deviation 2.9: every burst fired at 18). */
        t += 24 * HOUR_MS;
        for (j = 0; j < 80; j++) {
                f = use(t + j * 500, "api://deploy", "192.0.2.10");
                if (f & BIT(MG_SIG_RATE_SPIKE)) {
                        fires++;
                        assert_int_equal(j + 1, 37);
                }
                assert_int_equal(f & ~BIT(MG_SIG_RATE_SPIKE), 0);
        }
        assert_int_equal(fires, 1);
        assert_detail(MG_SIG_RATE_SPIKE,
                      "37 events in one minute, usual 22.6 +- 1.7");
        /* The next hour's ordinary burst is quiet again. */
        t += HOUR_MS;
        for (j = 0; j < 25; j++)
                assert_int_equal(use(t + j * 2000, "api://deploy",
                                     "192.0.2.10"),
                                 0);
}

/* Is t within Mon-Fri 09:00-17:00 UTC? */
static int office(int64_t t) {
        int64_t h = (t - T0) / HOUR_MS;

        return (h / 24) % 7 < 5 && h % 24 >= 9 && h % 24 < 17;
}

static void test_off_hours(void **state) {
        int64_t t;
        int n = 0;

        (void)state;
        /* Three weeks of office hours, an event every 10 minutes. */
        for (t = T0; t < T0 + 21 * DAY_MS; t += 10 * MIN_MS) {
                if (!office(t))
                        continue;
                assert_int_equal(n % 4 ? use(t, "api://deploy", "192.0.2.10")
                                       : ok_auth(t, "client-a", "192.0.2.10",
                                                 "agent/1.0"),
                                 0);
                n++;
        }
        assert_true(n > 500);
        /* Sunday 03:30 UTC. */
        t = T0 + 27 * DAY_MS + 3 * HOUR_MS + 30 * MIN_MS;
        assert_int_equal(use(t, "api://deploy", "192.0.2.10"),
                         BIT(MG_SIG_OFF_HOURS));
        assert_detail(MG_SIG_OFF_HOURS, "Sun 03:00-03:59 UTC");
        /* Tuesday 10:00 the week after: usual. */
        assert_int_equal(use(T0 + 29 * DAY_MS + 10 * HOUR_MS, "api://deploy",
                             "192.0.2.10"),
                         0);
        /* 17:xx is next to 16:xx, which is usual: smoothing keeps a late
         * finish quiet. */
        assert_int_equal(use(T0 + 29 * DAY_MS + 17 * HOUR_MS + 5 * MIN_MS,
                             "api://deploy", "192.0.2.10"),
                         0);
}

/* From two days of history to a week, the hour of the day stands in for
 * the hour of the week. */
static void test_off_hours_days(void **state) {
        int64_t t;
        int n = 0;

        (void)state;
        /* Office hours Monday to Wednesday, an event every 2 minutes: 720
         * events, past the warm-up of 500 on Wednesday. */
        for (t = T0; t < T0 + 3 * DAY_MS; t += 2 * MIN_MS) {
                if (!office(t))
                        continue;
                assert_int_equal(n % 4 ? use(t, "api://deploy", "192.0.2.10")
                                       : ok_auth(t, "client-a", "192.0.2.10",
                                                 "agent/1.0"),
                                 0);
                n++;
        }
        assert_int_equal(n, 720);
        /* Thursday 03:30 UTC, on the third day of history: off hours. */
        t = T0 + 3 * DAY_MS + 3 * HOUR_MS + 30 * MIN_MS;
        assert_int_equal(use(t, "api://deploy", "192.0.2.10"),
                         BIT(MG_SIG_OFF_HOURS));
        assert_detail(MG_SIG_OFF_HOURS, "Thu 03:00-03:59 UTC, an hour with "
                                        "0.00% of the usual activity");
        /* Thursday 10:00: usual; 17:xx next to 16:xx: usual. */
        assert_int_equal(use(T0 + 3 * DAY_MS + 10 * HOUR_MS, "api://deploy",
                             "192.0.2.10"),
                         0);
        assert_int_equal(use(T0 + 3 * DAY_MS + 17 * HOUR_MS + 5 * MIN_MS,
                             "api://deploy", "192.0.2.10"),
                         0);
        /* Saturday 10:00: the hour of the day is usual, and a weekend
         * cannot be told from a weekday before a whole week. */
        assert_int_equal(use(T0 + 5 * DAY_MS + 10 * HOUR_MS, "api://deploy",
                             "192.0.2.10"),
                         0);
        /* From day 7 the hour of the week: Sunday 10:00 is off hours. */
        assert_int_equal(use(T0 + 6 * DAY_MS + 10 * HOUR_MS, "api://deploy",
                             "192.0.2.10"),
                         0);
        assert_int_equal(use(T0 + 13 * DAY_MS + 10 * HOUR_MS, "api://deploy",
                             "192.0.2.10"),
                         BIT(MG_SIG_OFF_HOURS));
        assert_detail(MG_SIG_OFF_HOURS, "Sun 10:00-10:59 UTC");

        /* Less than two days of history: nothing is off hours yet. The
         * same office hours, Monday and Tuesday, every minute (960
         * events), then Wednesday 03:30, 42.5 hours after the first. */
        mg_baseline_init(bl);
        for (n = 0, t = T0; t < T0 + 2 * DAY_MS; t += MIN_MS) {
                if (!office(t))
                        continue;
                assert_int_equal(use(t, "api://deploy", "192.0.2.10"), 0);
                n++;
        }
        assert_int_equal(n, 960);
        assert_int_equal(use(T0 + 2 * DAY_MS + 3 * HOUR_MS + 30 * MIN_MS,
                             "api://deploy", "192.0.2.10"),
                         0);
        /* A day later it has: 03:30 on Thursday fires. */
        assert_int_equal(use(T0 + 3 * DAY_MS + 3 * HOUR_MS + 30 * MIN_MS,
                             "api://deploy", "192.0.2.10"),
                         BIT(MG_SIG_OFF_HOURS));
}

static void test_off_hours_round_the_clock(void **state) {
        uint64_t x = 12345;
        int64_t t = T0;
        int i, by_day = 0;

        (void)state;
        /* Activity spread over all hours with random gaps of 1-9 minutes,
         * for four weeks: never fires, neither by the hour of the day
         * (days 2 to 7, past the warm-up of 500 events) nor by the hour
         * of the week. */
        for (i = 0; t < T0 + 28 * DAY_MS; i++) {
                x = x * 6364136223846793005ULL + 1442695040888963407ULL;
                t += MIN_MS + (int64_t)((x >> 33) % (8 * MIN_MS));
                assert_int_equal(i % 4 ? use(t, "api://deploy", "192.0.2.10")
                                       : ok_auth(t, "client-a", "192.0.2.10",
                                                 "agent/1.0"),
                                 0);
                by_day += i >= 500 && t - T0 >= 2 * DAY_MS + 5 * MIN_MS &&
                          t - T0 < 7 * DAY_MS;
        }
        assert_true(i > 5000);
        assert_true(by_day > 1000);
}

static void test_auth_failures(void **state) {
        int64_t t;
        int i;

        (void)state;
        t = normal(T0 + 9 * HOUR_MS, 30, MIN_MS);
        for (i = 0; i < 4; i++)
                assert_int_equal(fail_auth(t + i * 30000), 0);
        assert_int_equal(fail_auth(t + 4 * 30000),
                         BIT(MG_SIG_AUTH_FAILURES));
        assert_detail(MG_SIG_AUTH_FAILURES,
                      "5 failed authentications within 300s");
        /* The same burst goes on: no more firing. */
        for (i = 5; i < 12; i++)
                assert_int_equal(fail_auth(t + i * 30000), 0);
        /* Six minutes of quiet end the burst; the next one fires. */
        t += 12 * 30000 + 6 * MIN_MS;
        for (i = 0; i < 4; i++)
                assert_int_equal(fail_auth(t + i * 1000), 0);
        assert_int_equal(fail_auth(t + 4000), BIT(MG_SIG_AUTH_FAILURES));
}

static void test_auth_failures_quiet(void **state) {
        int64_t t;
        int i;

        (void)state;
        t = normal(T0 + 9 * HOUR_MS, 30, MIN_MS);
        /* As many failures, but never five within five minutes. */
        for (i = 0; i < 12; i++)
                assert_int_equal(fail_auth(t + i * 80000), 0);
}

/* Regression: usage and auth events arrive through different topics with
 * no order between them. Forty uses of a scope before the identity's first
 * authentication armed scope_expansion, which then fired on that first
 * grant. It counts authentications now. */
static void test_scope_expansion_armed_by_auths(void **state) {
        int64_t t = T0 + 9 * HOUR_MS;
        int i;

        (void)state;
        for (i = 0; i < 40; i++)
                assert_int_equal(apply(&(struct spec){.type = MG_EVENT_USAGE,
                                                      .ts = t + i * MIN_MS,
                                                      .resource = "api://deploy",
                                                      .ip = "192.0.2.10",
                                                      .scope = "deploy:write"}) &
                                         BIT(MG_SIG_SCOPE_EXPANSION),
                                 0);
        assert_int_equal(apply(&(struct spec){.type = MG_EVENT_AUTH,
                                              .ts = t - MIN_MS,
                                              .client = "client-a",
                                              .ip = "192.0.2.10",
                                              .scopes = {"deploy:read",
                                                         "deploy:write"},
                                              .scope_cnt = 2}) &
                                 BIT(MG_SIG_SCOPE_EXPANSION),
                         0);
}

static void test_scope_expansion(void **state) {
        int64_t t;

        (void)state;
        /* 60 events hold 20 authentications: scope_expansion armed. */
        t = normal(T0 + 9 * HOUR_MS, 60, MIN_MS);
        assert_int_equal(apply(&(struct spec){.type = MG_EVENT_AUTH, .ts = t,
                                              .client = "client-a",
                                              .ip = "192.0.2.10",
                                              .scopes = {"deploy:write",
                                                         "secrets:read",
                                                         "admin:all"},
                                              .scope_cnt = 3}),
                         BIT(MG_SIG_SCOPE_EXPANSION));
        assert_detail(MG_SIG_SCOPE_EXPANSION,
                      "secrets:read and 1 more never granted nor used");
        /* Granted now: known. */
        assert_int_equal(apply(&(struct spec){.type = MG_EVENT_AUTH,
                                              .ts = t + 1000,
                                              .client = "client-a",
                                              .ip = "192.0.2.10",
                                              .scopes = {"admin:all"},
                                              .scope_cnt = 1}),
                         0);
        /* A scope already used (token from elsewhere) is not new. */
        assert_int_equal(apply(&(struct spec){.type = MG_EVENT_USAGE,
                                              .ts = t + 2000,
                                              .resource = "api://deploy",
                                              .ip = "192.0.2.10",
                                              .scope = "logs:read"}),
                         0);
        assert_int_equal(apply(&(struct spec){.type = MG_EVENT_AUTH,
                                              .ts = t + 3000,
                                              .client = "client-a",
                                              .ip = "192.0.2.10",
                                              .scopes = {"logs:read"},
                                              .scope_cnt = 1}),
                         0);
        /* A failed request for a new scope fires nothing. */
        assert_int_equal(apply(&(struct spec){.type = MG_EVENT_AUTH,
                                              .ts = t + 4000,
                                              .client = "client-a",
                                              .ip = "192.0.2.10",
                                              .scopes = {"root"},
                                              .scope_cnt = 1, .fail = 1}),
                         0);
}

static void test_new_resource(void **state) {
        int64_t t;

        (void)state;
        t = normal(T0 + 9 * HOUR_MS, 30, MIN_MS);
        assert_int_equal(use(t, "api://billing", "192.0.2.10"),
                         BIT(MG_SIG_NEW_RESOURCE));
        assert_detail(MG_SIG_NEW_RESOURCE, "first use of api://billing");
        assert_int_equal(use(t + 1000, "api://billing", "192.0.2.10"), 0);
        /* An audience is a resource too. */
        assert_int_equal(apply(&(struct spec){.type = MG_EVENT_AUTH,
                                              .ts = t + 2000,
                                              .client = "client-a",
                                              .ip = "192.0.2.10",
                                              .aud = "api://hr",
                                              .scopes = {"deploy:write"},
                                              .scope_cnt = 1}),
                         BIT(MG_SIG_NEW_RESOURCE));
        assert_int_equal(use(t + 3000, "api://hr", "192.0.2.10"), 0);
}

static void test_dormant(void **state) {
        int64_t t;

        (void)state;
        t = normal(T0 + 9 * HOUR_MS, 30, MIN_MS);
        /* 13 days of silence: not dormant. */
        t += 13 * DAY_MS;
        assert_int_equal(use(t, "api://deploy", "192.0.2.10"), 0);
        /* 15 days: dormant. */
        t += 15 * DAY_MS;
        assert_int_equal(use(t, "api://deploy", "192.0.2.10"),
                         BIT(MG_SIG_DORMANT_REACTIVATION));
        assert_detail(MG_SIG_DORMANT_REACTIVATION, "after 15d 0h of silence");
        /* A signal in between is not activity. */
        t += 20 * DAY_MS;
        signal_ev(t - DAY_MS, MG_SIGNAL_SECRET_EXPOSED, 10);
        assert_int_equal(use(t, "api://deploy", "192.0.2.10"),
                         BIT(MG_SIG_DORMANT_REACTIVATION));
        /* A new identity with few events is never "dormant". */
        mg_baseline_init(bl);
        t = normal(T0, 5, MIN_MS);
        assert_int_equal(use(t + 30 * DAY_MS, "api://deploy", "192.0.2.10"),
                         0);
}

static void test_shared_identity(void **state) {
        static const char *const clients[] = {"client-b", "client-c",
                                              "client-d", "client-e"};
        int64_t t;
        int i;

        (void)state;
        /* The warm-up (300 events) with one client, agent and network:
         * the identity's highs are 1. */
        t = normal(T0 + 9 * HOUR_MS, 300, MIN_MS);
        /* Clients b, c are the 2nd and 3rd in 24h: fine; d is the 4th,
         * past the threshold and a new high. */
        for (i = 0; i < 3; i++)
                assert_int_equal(ok_auth(t + i * HOUR_MS, clients[i],
                                         "192.0.2.10", "agent/1.0"),
                                 i == 2 ? BIT(MG_SIG_SHARED_IDENTITY) : 0);
        assert_detail(MG_SIG_SHARED_IDENTITY,
                      "4 clients in 24h, newest client-d");
        /* Known clients coming and going do not fire again. */
        for (i = 0; i < 3; i++)
                assert_int_equal(ok_auth(t + 4 * HOUR_MS + i * MIN_MS,
                                         clients[i], "192.0.2.10",
                                         "agent/1.0"),
                                 0);
        /* Two days later the four are back, one after the other: four is
         * this identity's normal now. */
        t += 2 * DAY_MS;
        assert_int_equal(ok_auth(t, "client-a", "192.0.2.10", "agent/1.0"),
                         0);
        for (i = 0; i < 3; i++)
                assert_int_equal(ok_auth(t + (i + 1) * MIN_MS, clients[i],
                                         "192.0.2.10", "agent/1.0"),
                                 0);
        /* A fifth is a new high. */
        assert_int_equal(ok_auth(t + 4 * MIN_MS, clients[3], "192.0.2.10",
                                 "agent/1.0"),
                         BIT(MG_SIG_SHARED_IDENTITY));
        assert_detail(MG_SIG_SHARED_IDENTITY,
                      "5 clients in 24h, newest client-e");
        /* User agents count the same way, with a high of their own. */
        t += 5 * HOUR_MS;
        assert_int_equal(ok_auth(t, "client-a", "192.0.2.10", "agent/2.0"), 0);
        assert_int_equal(ok_auth(t + 1, "client-a", "192.0.2.10", "curl/8"),
                         0);
        assert_int_equal(ok_auth(t + 2, "client-a", "192.0.2.10",
                                 "python-requests/2"),
                         BIT(MG_SIG_SHARED_IDENTITY));
        assert_detail(MG_SIG_SHARED_IDENTITY,
                      "4 user agents in 24h, newest python-requests/2");
        /* Not above the threshold: a new high alone does not fire. */
        mg_baseline_init(bl);
        t = normal(t + DAY_MS, 300, MIN_MS);
        assert_int_equal(ok_auth(t, "client-b", "192.0.2.10", "agent/1.0"),
                         0);
        assert_int_equal(ok_auth(t + 1, "client-c", "192.0.2.10",
                                 "agent/1.0"),
                         0);
}

/* Networks: a workload that runs from six node subnets every day is not
 * shared; a seventh subnet it has used before is a new high; a network
 * new_source calls new is new_source's news alone. */
static void test_shared_identity_networks(void **state) {
        struct mg_baseline *copy = malloc(mg_baseline_size());
        char ip[32];
        int64_t t = T0 + 2 * HOUR_MS, day;
        int d, i, j;

        (void)state;
        assert_non_null(copy);
        conf.sig[MG_SIG_NEW_SOURCE].weight = 0; /* not the point here */
        /* 10.0.7.0/24 once (the table keeps it), then two days of
         * nothing. */
        assert_int_equal(use(t, "api://deploy", "10.0.7.5"), 0);
        /* Every 25 hours, a batch from 10.0.1-6.0/24 (each network's
         * last use is then more than a day old: it becomes active again)
         * and 30 events without an address. 12 batches: 433 events, past
         * the warm-up of 300 from the tenth batch on (where a fourth
         * network used to fire). */
        for (d = 0; d < 12; d++) {
                day = T0 + 2 * DAY_MS + d * 25 * HOUR_MS;
                for (i = 1; i <= 6; i++) {
                        snprintf(ip, sizeof(ip), "10.0.%d.5", i);
                        assert_int_equal(use(day + i * MIN_MS,
                                             "api://deploy", ip),
                                         0);
                }
                for (j = 0; j < 30; j++)
                        assert_int_equal(use(day + (10 + 10 * j) * MIN_MS,
                                             "api://deploy", NULL),
                                         0);
        }
        assert_true(mg_baseline_event_count(bl, MG_EVENT_USAGE) > 300 + 36);
        /* The next batch with 10.0.7.0/24: a seventh network in a day,
         * known to new_source (seen two weeks ago, among the 16): fires
         * once. */
        day = T0 + 2 * DAY_MS + 12 * 25 * HOUR_MS;
        memcpy(copy, bl, mg_baseline_size());
        for (i = 1; i <= 7; i++) {
                snprintf(ip, sizeof(ip), "10.0.%d.5", i);
                assert_int_equal(use(day + i * MIN_MS, "api://deploy", ip),
                                 i == 7 ? BIT(MG_SIG_SHARED_IDENTITY) : 0);
        }
        assert_detail(MG_SIG_SHARED_IDENTITY,
                      "7 source networks in 24h, newest 10.0.7.0/24");
        assert_int_equal(use(day + 8 * MIN_MS, "api://deploy", "10.0.7.9"),
                         0);
        /* The batch after: seven is normal now. */
        day += 25 * HOUR_MS;
        for (i = 1; i <= 7; i++) {
                snprintf(ip, sizeof(ip), "10.0.%d.5", i);
                assert_int_equal(use(day + i * MIN_MS, "api://deploy", ip),
                                 0);
        }
        /* An eighth network never seen: new_source fires (with 0 points
         * here), shared_identity does not, though it is a new high. */
        assert_int_equal(use(day + 8 * MIN_MS, "api://deploy", "10.0.8.5"),
                         BIT(MG_SIG_NEW_SOURCE));
        /* ... and eight is the high from now on: the eight again the next
         * day fire nothing. */
        day += 25 * HOUR_MS;
        for (i = 1; i <= 8; i++) {
                snprintf(ip, sizeof(ip), "10.0.%d.5", i);
                assert_int_equal(use(day + i * MIN_MS, "api://deploy", ip),
                                 0);
        }
        roundtrip(bl);
        /* Back to the batch with the seventh network, new_source now
         * knowing only the 3 most recent networks: 10.0.7.0/24 is in the
         * table but new to new_source, so shared_identity leaves it to
         * new_source. */
        memcpy(bl, copy, mg_baseline_size());
        conf.sig[MG_SIG_NEW_SOURCE].threshold = 3;
        day = T0 + 2 * DAY_MS + 12 * 25 * HOUR_MS;
        for (i = 1; i <= 6; i++) {
                snprintf(ip, sizeof(ip), "10.0.%d.5", i);
                use(day + i * MIN_MS, "api://deploy", ip);
        }
        assert_int_equal(use(day + 7 * MIN_MS, "api://deploy", "10.0.7.5"),
                         BIT(MG_SIG_NEW_SOURCE));
        free(copy);
}

static void test_shared_identity_quiet(void **state) {
        static const char *const clients[] = {"client-a", "client-b",
                                              "client-c", "client-d",
                                              "client-e"};
        int64_t t;
        int i, j;

        (void)state;
        t = normal(T0 + 9 * HOUR_MS, 30, MIN_MS);
        /* Five clients, but one at a time (a rename every two days). */
        for (i = 0; i < 5; i++)
                for (j = 0; j < 20; j++)
                        assert_int_equal(ok_auth(t + i * 2 * DAY_MS +
                                                         j * HOUR_MS,
                                                 clients[i], "192.0.2.10",
                                                 "agent/1.0"),
                                         0);
}

static void test_token_chain(void **state) {
        char tok[16], parent[16];
        int64_t t;
        int i;

        (void)state;
        t = normal(T0 + 9 * HOUR_MS, 30, MIN_MS);
        assert_int_equal(apply(&(struct spec){.type = MG_EVENT_AUTH, .ts = t,
                                              .client = "client-a",
                                              .ip = "192.0.2.10",
                                              .token = "t0"}),
                         0);
        /* t0 -> t1 -> ... -> t4 is depth 4: allowed; t5 is depth 5. */
        for (i = 1; i <= 5; i++) {
                snprintf(tok, sizeof(tok), "t%d", i);
                snprintf(parent, sizeof(parent), "t%d", i - 1);
                assert_int_equal(apply(&(struct spec){.type = MG_EVENT_AUTH,
                                                      .ts = t + i * 1000,
                                                      .client = "client-a",
                                                      .ip = "192.0.2.10",
                                                      .exchange = 1,
                                                      .token = tok,
                                                      .parent = parent}),
                                 i == 5 ? BIT(MG_SIG_TOKEN_CHAIN) : 0);
        }
        assert_detail(MG_SIG_TOKEN_CHAIN, "depth 5, more than 4");
        /* A parent never issued to this identity. */
        assert_int_equal(apply(&(struct spec){.type = MG_EVENT_AUTH,
                                              .ts = t + 10000,
                                              .client = "client-a",
                                              .ip = "192.0.2.10",
                                              .exchange = 1, .token = "x1",
                                              .parent = "stolen"}),
                         BIT(MG_SIG_TOKEN_CHAIN));
        assert_detail(MG_SIG_TOKEN_CHAIN, "parent token not issued recently");
}

static void test_token_chain_quiet(void **state) {
        char tok[16], parent[16];
        int64_t t;
        int i;

        (void)state;
        t = normal(T0 + 9 * HOUR_MS, 30, MIN_MS);
        /* Hourly plain tokens, each exchanged once: depth 1 forever. */
        for (i = 0; i < 100; i++) {
                snprintf(tok, sizeof(tok), "p%d", i);
                snprintf(parent, sizeof(parent), "x%d", i);
                assert_int_equal(apply(&(struct spec){.type = MG_EVENT_AUTH,
                                                      .ts = t + i * HOUR_MS,
                                                      .client = "client-a",
                                                      .ip = "192.0.2.10",
                                                      .token = tok}),
                                 0);
                assert_int_equal(apply(&(struct spec){.type = MG_EVENT_AUTH,
                                                      .ts = t + i * HOUR_MS +
                                                            1000,
                                                      .client = "client-a",
                                                      .ip = "192.0.2.10",
                                                      .exchange = 1,
                                                      .token = parent,
                                                      .parent = tok}),
                                 0);
        }
}

static void test_external_signals(void **state) {
        int64_t t = T0;

        (void)state;
        assert_int_equal(signal_ev(t, MG_SIGNAL_SECRET_EXPOSED, 90),
                         BIT(MG_SIG_SECRET_EXPOSED));
        assert_true(fabs(res.risk.score - 54) < 1e-9);
        assert_int_equal(res.risk.level, MG_RISK_HIGH);
        assert_detail(MG_SIG_SECRET_EXPOSED,
                      "secret_exposed from scanner, severity 90: found in a "
                      "repo");
        /* Six hours later it has halved. */
        t += 6 * HOUR_MS;
        assert_int_equal(signal_ev(t, MG_SIGNAL_CREDENTIAL_COMPROMISE, 50),
                         BIT(MG_SIG_CREDENTIAL_COMPROMISE));
        assert_true(fabs(res.risk.score - (27 + 40)) < 1e-9);
        assert_int_equal(res.risk.reason_cnt, 2);
        assert_int_equal(res.risk.reasons[0].signal,
                         MG_SIG_CREDENTIAL_COMPROMISE);
        /* Quarantine drives to critical and does not decay. */
        assert_int_equal(signal_ev(t, MG_SIGNAL_QUARANTINE, 100),
                         BIT(MG_SIG_QUARANTINE));
        assert_int_equal(res.risk.level, MG_RISK_CRITICAL);
        assert_true(res.risk.score == 100);
        t += 10 * DAY_MS;
        mg_baseline_risk(bl, &conf, t, &res.risk);
        assert_int_equal(res.risk.level, MG_RISK_CRITICAL);
        assert_true(res.risk.score == 100);
        /* Release clears quarantine and the external contributions, not
         * the others. */
        assert_int_equal(use(t, "api://deploy", "192.0.2.10"), 0);
        mg_baseline_init(bl);
        t = normal(T0, 30, MIN_MS);
        use(t, "api://new", "192.0.2.10");
        signal_ev(t, MG_SIGNAL_QUARANTINE, 100);
        signal_ev(t, MG_SIGNAL_SECRET_EXPOSED, 100);
        assert_int_equal(signal_ev(t + 1, MG_SIGNAL_RELEASE, 0), 0);
        assert_true(res.risk_changed);
        assert_true(fabs(res.risk.score - 8) < 1e-3);
        assert_int_equal(res.risk.reason_cnt, 1);
        assert_int_equal(res.risk.reasons[0].signal, MG_SIG_NEW_RESOURCE);
        /* Severity below the threshold does not count. */
        conf.sig[MG_SIG_SECRET_EXPOSED].threshold = 50;
        assert_int_equal(signal_ev(t + 2, MG_SIGNAL_SECRET_EXPOSED, 49), 0);
        /* An unknown kind (not validated) changes nothing, in particular
         * it does not lift a quarantine. */
        signal_ev(t + 3, MG_SIGNAL_QUARANTINE, 100);
        build(&(struct spec){.type = MG_EVENT_SIGNAL, .ts = t + 4,
                             .kind = MG_SIGNAL_RELEASE},
              &ev);
        ev.u.signal.kind = (enum mg_signal_kind)77;
        assert_int_equal(mg_baseline_apply(bl, &conf, &ev, &res), MG_OK);
        assert_int_equal(res.fired, 0);
        assert_int_equal(res.risk.level, MG_RISK_CRITICAL);
        /* Nor does an unknown event type: refused. */
        ev.type = (enum mg_event_type)9;
        assert_int_equal(mg_baseline_apply(bl, &conf, &ev, &res),
                         MG_ERR_INVALID);
        assert_false(res.applied);
}

static void test_risk_reasons(void **state) {
        int64_t t;

        (void)state;
        t = normal(T0 + 9 * HOUR_MS, 60, MIN_MS);
        /* Six signals at once: five reasons, largest first. */
        signal_ev(t, MG_SIGNAL_SECRET_EXPOSED, 10);        /* 6 */
        signal_ev(t, MG_SIGNAL_CREDENTIAL_COMPROMISE, 15); /* 12 */
        use(t, "api://new", "198.51.100.1");                /* 30 + 8 */
        apply(&(struct spec){.type = MG_EVENT_AUTH, .ts = t,
                             .client = "client-a", .ip = "192.0.2.10",
                             .scopes = {"x"}, .scope_cnt = 1}); /* 25 */
        signal_ev(t, MG_SIGNAL_SECRET_EXPOSED, 0);          /* 0 */
        assert_true(res.risk.score == 81);
        assert_int_equal(res.risk.level, MG_RISK_CRITICAL);
        assert_int_equal(res.risk.reason_cnt, MG_REASONS_MAX);
        assert_int_equal(res.risk.reasons[0].signal, MG_SIG_NEW_SOURCE);
        assert_int_equal(res.risk.reasons[1].signal, MG_SIG_SCOPE_EXPANSION);
        assert_int_equal(res.risk.reasons[2].signal,
                         MG_SIG_CREDENTIAL_COMPROMISE);
        assert_int_equal(res.risk.reasons[3].signal, MG_SIG_NEW_RESOURCE);
        assert_int_equal(res.risk.reasons[4].signal, MG_SIG_SECRET_EXPOSED);
        /* Decay: 6h halves; after ~4 days everything is under half a
         * point and no reason is left. */
        mg_baseline_risk(bl, &conf, t + 6 * HOUR_MS, &res.risk);
        assert_true(fabs(res.risk.score - 40.5) < 1e-9);
        assert_true(fabs(res.risk.reasons[0].points - 15) < 1e-9);
        mg_baseline_risk(bl, &conf, t + 40 * HOUR_MS, &res.risk);
        assert_int_equal(res.risk.reason_cnt, 0);
        assert_int_equal(res.risk.level, MG_RISK_LOW);
        /* risk_changed: published changes only, from the last one. */
        use(t + 1 * MIN_MS, "api://deploy", "192.0.2.10");
        assert_false(res.risk_changed);
        use(t + 6 * HOUR_MS, "api://deploy", "192.0.2.10");
        assert_true(res.risk_changed);
        assert_int_equal(res.risk.level, MG_RISK_MEDIUM);
        use(t + 6 * HOUR_MS + 1000, "api://deploy", "192.0.2.10");
        assert_false(res.risk_changed);
}

static void test_late_events(void **state) {
        struct mg_baseline *copy = malloc(mg_baseline_size());
        struct mg_risk before;
        int64_t t;
        mg_err_t err;

        (void)state;
        assert_non_null(copy);
        t = normal(T0 + 9 * HOUR_MS, 30, MIN_MS);
        use(t, "api://new", "192.0.2.10"); /* 8 points at t */
        /* 59 minutes late: applied, at the newest time (no decay, no
         * negative decay). */
        use(t - 59 * MIN_MS, "api://deploy", "192.0.2.10");
        assert_true(res.risk.score == 8 && res.risk.ts_ms == t);
        assert_int_equal(mg_baseline_event_count(bl, MG_EVENT_USAGE), 22);
        /* A late novelty fires at the newest time. */
        assert_int_equal(use(t - 30 * MIN_MS, "api://other", "192.0.2.10"),
                         BIT(MG_SIG_NEW_RESOURCE));
        assert_true(res.risk.score == 16);
        /* 61 minutes late: refused, baseline untouched. */
        memcpy(copy, bl, mg_baseline_size());
        mg_baseline_risk(bl, &conf, t, &before);
        build(&(struct spec){.type = MG_EVENT_USAGE, .ts = t - 61 * MIN_MS,
                             .resource = "api://third", .ip = "10.9.9.9"},
              &ev);
        err = mg_baseline_apply(bl, &conf, &ev, &res);
        assert_int_equal(err, MG_ERR_LATE);
        assert_false(res.applied);
        assert_int_equal(res.fired, 0);
        assert_false(res.risk_changed);
        assert_true(res.risk.score == before.score);
        assert_memory_equal(copy, bl, mg_baseline_size());
        free(copy);
}

static void test_scope_unused(void **state) {
        int64_t t;

        (void)state;
        t = T0;
        apply(&(struct spec){.type = MG_EVENT_AUTH, .ts = t,
                             .client = "client-a", .ip = "192.0.2.10",
                             .scopes = {"deploy:write", "secrets:read"},
                             .scope_cnt = 2});
        use(t + 1000, "api://deploy", "192.0.2.10"); /* uses deploy:write */
        /* Granted for 29 days: too soon to say. */
        assert_int_equal(mg_baseline_scope_unused(bl, &conf, "secrets:read",
                                                  t + 29 * DAY_MS),
                         0);
        assert_int_equal(mg_baseline_scope_unused(bl, &conf, "secrets:read",
                                                  t + 30 * DAY_MS),
                         1);
        /* Used a second after the grant: unused 30 days after the use. */
        assert_int_equal(mg_baseline_scope_unused(bl, &conf, "deploy:write",
                                                  t + 30 * DAY_MS),
                         0);
        assert_int_equal(mg_baseline_scope_unused(bl, &conf, "deploy:write",
                                                  t + 30 * DAY_MS + 1000),
                         1);
        /* Used 10 days ago: in use. */
        t += 20 * DAY_MS;
        use(t, "api://deploy", "192.0.2.10");
        assert_int_equal(mg_baseline_scope_unused(bl, &conf, "deploy:write",
                                                  t + 10 * DAY_MS),
                         0);
        /* Unknown, or used but never granted: 0. */
        assert_int_equal(mg_baseline_scope_unused(bl, &conf, "nope",
                                                  t + 100 * DAY_MS),
                         0);
        apply(&(struct spec){.type = MG_EVENT_USAGE, .ts = t + 1,
                             .resource = "api://x", .scope = "only:used"});
        assert_int_equal(mg_baseline_scope_unused(bl, &conf, "only:used",
                                                  t + 100 * DAY_MS),
                         0);
        /* Re-granting does not reset the clock of an unused scope. */
        t += 15 * DAY_MS;
        apply(&(struct spec){.type = MG_EVENT_AUTH, .ts = t,
                             .client = "client-a", .ip = "192.0.2.10",
                             .scopes = {"secrets:read"}, .scope_cnt = 1});
        assert_int_equal(mg_baseline_scope_unused(bl, &conf, "secrets:read",
                                                  t),
                         1);
}

/*
 * Encoding.
 */

/* Encode bl, decode it again, require the identical struct and blob. */
static size_t roundtrip(const struct mg_baseline *b) {
        static unsigned char blob[MG_BASELINE_BLOB_MAX],
                blob2[MG_BASELINE_BLOB_MAX];
        struct mg_baseline *copy = malloc(mg_baseline_size());
        char err[256];
        size_t len, len2;

        assert_non_null(copy);
        assert_int_equal(mg_baseline_encode(b, blob, sizeof(blob), &len),
                         MG_OK);
        if (mg_baseline_decode(copy, blob, len, err, sizeof(err)))
                fail_msg("decode of a fresh blob: %s", err);
        assert_memory_equal(copy, b, mg_baseline_size());
        assert_int_equal(mg_baseline_encode(copy, blob2, sizeof(blob2),
                                            &len2),
                         MG_OK);
        assert_int_equal(len, len2);
        assert_memory_equal(blob, blob2, len);
        free(copy);
        return len;
}

static void test_encode_decode(void **state) {
        static unsigned char blob[MG_BASELINE_BLOB_MAX], bad[MG_BASELINE_BLOB_MAX];
        struct mg_baseline *copy = malloc(mg_baseline_size());
        char err[256];
        size_t len, i, need;
        int64_t t;
        int bit, accepted = 0;

        (void)state;
        assert_non_null(copy);
        roundtrip(bl); /* empty */
        use_asn_table(); /* the bit flips cover the AS table too */
        t = normal(T0 + 9 * HOUR_MS, 60, MIN_MS);
        use(t, "api://new\xff\xfe", "2001:db8::1");
        signal_ev(t, MG_SIGNAL_QUARANTINE, 70);
        fail_auth(t + 1);
        apply(&(struct spec){.type = MG_EVENT_AUTH, .ts = t + 2,
                             .client = "a-client-id-that-is-much-longer-"
                                       "than-the-sixty-three-bytes-kept-for-"
                                       "display",
                             .ip = "192.0.2.10", .token = "t1",
                             .scopes = {"s1"}, .scope_cnt = 1});
        len = roundtrip(bl);

        assert_int_equal(mg_baseline_encode(bl, blob, sizeof(blob), &len),
                         MG_OK);
        /* Too small a buffer: TOOBIG with the size needed. */
        assert_int_equal(mg_baseline_encode(bl, blob, 10, &need),
                         MG_ERR_TOOBIG);
        assert_int_equal(need, len);
        /* Every truncation fails with a message. */
        for (i = 0; i < len; i++) {
                err[0] = '\0';
                assert_int_equal(mg_baseline_decode(copy, blob, i, err,
                                                    sizeof(err)),
                                 MG_ERR_DECODE);
                assert_non_null(strstr(err, "baseline blob"));
        }
        /* Trailing garbage, bad magic, unknown version. */
        memcpy(bad, blob, len);
        bad[len] = 0;
        assert_int_equal(mg_baseline_decode(copy, bad, len + 1, err,
                                            sizeof(err)),
                         MG_ERR_DECODE);
        assert_non_null(strstr(err, "checksum"));
        bad[0] = 'X';
        assert_int_equal(mg_baseline_decode(copy, bad, len, err, sizeof(err)),
                         MG_ERR_DECODE);
        assert_non_null(strstr(err, "magic"));
        bad[0] = blob[0];
        bad[4] = 4;
        assert_int_equal(mg_baseline_decode(copy, bad, len, err, sizeof(err)),
                         MG_ERR_DECODE);
        assert_non_null(strstr(err, "version 4"));
        bad[4] = 0;
        assert_int_equal(mg_baseline_decode(copy, bad, len, err, sizeof(err)),
                         MG_ERR_DECODE);
        assert_non_null(strstr(err, "version 0 (this build reads 1 to 3)"));
        /* Every single bit flip fails (the checksum sees those the
         * structure cannot), with a message. */
        for (i = 0; i < len; i++) {
                for (bit = 0; bit < 8; bit++) {
                        memcpy(bad, blob, len);
                        bad[i] ^= (unsigned char)(1u << bit);
                        err[0] = '\0';
                        if (mg_baseline_decode(copy, bad, len, err,
                                               sizeof(err)) == MG_OK)
                                accepted++;
                        else
                                assert_non_null(strstr(err, "baseline blob"));
                }
        }
        assert_int_equal(accepted, 0);
        free(copy);
}

/* CRC-32C bit by bit, to make test blobs that pass the checksum. */
static uint32_t crc32c(const unsigned char *p, size_t len) {
        uint32_t crc = 0xffffffffu;
        int k;

        while (len--) {
                crc ^= *p++;
                for (k = 0; k < 8; k++)
                        crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
        }
        return ~crc;
}

/* Found by fuzz_baseline: a rate weight of 2^-1022 (never produced: it is
 * 0 or >= 1) decoded, and the mean overflowed, so to_json failed. */
static void test_decode_impossible_rate(void **state) {
        static const unsigned char body[] = {
                0x4d, 0x47, 0x42, 0x4c, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00,
                0x4c, 0xa7, 0xe1, 0xa1, 0x01, 0x00, 0x00, 0x01, 0x01, 0x00,
                0x01, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00,
                0x00, 0x00, 0x34, 0xba, 0x26, 0x00, 0x40, 0x60, 0x00, 0x00,
                0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00,
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80,
                0x3f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x04, 0xcb, 0x00, 0x71,
                0x01, 0x01, 0x0a, 0x67, 0x68, 0x2d, 0x61, 0x63, 0x74, 0x69,
                0x6f, 0x6e, 0x73, 0x01, 0x01, 0x07, 0x61, 0x67, 0x65, 0x6e,
                0x74, 0x2f, 0x32, 0x01, 0x01, 0x0c, 0x61, 0x70, 0x69, 0x3a,
                0x2f, 0x2f, 0x64, 0x65, 0x70, 0x6c, 0x6f, 0x79, 0x01, 0x02,
                0x0c, 0x61, 0x70, 0x69, 0x3a, 0x2f, 0x2f, 0x64, 0x65, 0x70,
                0x6c, 0x6f, 0x79, 0x01, 0x01, 0x00, 0x0c, 0x64, 0x65, 0x70,
                0x6c, 0x6f, 0x79, 0x3a, 0x77, 0x72, 0x69, 0x74, 0x65, 0x11,
                0x01, 0x05, 0x01, 0x59, 0xc0, 0xaa, 0x28, 0x04, 0xb8, 0x0c,
                0x17, 0x00};
        unsigned char blob[sizeof(body) + 4];
        uint32_t crc = crc32c(body, sizeof(body));
        char err[256];

        (void)state;
        memcpy(blob, body, sizeof(body));
        blob[sizeof(body)] = (unsigned char)crc;
        blob[sizeof(body) + 1] = (unsigned char)(crc >> 8);
        blob[sizeof(body) + 2] = (unsigned char)(crc >> 16);
        blob[sizeof(body) + 3] = (unsigned char)(crc >> 24);
        assert_int_equal(mg_baseline_decode(bl, blob, sizeof(blob), err,
                                            sizeof(err)),
                         MG_ERR_DECODE);
        assert_non_null(strstr(err, "rate weight"));
}

/* Put a fresh checksum on a blob of len bytes (after editing it). */
static void reseal(unsigned char *blob, size_t len) {
        uint32_t crc = crc32c(blob, len - 4);
        int i;

        for (i = 0; i < 4; i++)
                blob[len - 4 + i] = (unsigned char)(crc >> (8 * i));
}

/* Offset of the shared_identity peaks (networks, clients, user agents) in
 * a version 3 blob whose most recently seen client is `client` (exact,
 * found once in the blob): the three bytes before the clients table,
 * which starts with its entry count and the name's length. */
static size_t peaks_offset(const unsigned char *blob, size_t len,
                           const char *client) {
        size_t n = strlen(client), i, found = 0, hits = 0;

        for (i = 5; i + n <= len; i++)
                if (!memcmp(blob + i, client, n)) {
                        found = i;
                        hits++;
                }
        assert_int_equal(hits, 1);
        assert_int_equal(blob[found - 1], n);
        return found - 5;
}

/* Version 3 keeps the shared_identity highs in the blob; a version 2 blob
 * (the same layout without them) takes what is active at its newest
 * event; a high larger than its table is refused. */
static void test_decode_shared_peaks(void **state) {
        static const char *const clients[] = {"client-1", "client-2",
                                              "client-3", "client-4",
                                              "client-5"};
        static const struct {
                int idx;   /* which peak */
                int value; /* its byte */
                int ok;    /* decodes */
        } cases[] = {{0, 16, 1}, {0, 17, 0}, {0, 255, 0}, {1, 8, 1},
                     {1, 9, 0},  {2, 8, 1},  {2, 9, 0},   {0, 0, 1}};
        static unsigned char blob[MG_BASELINE_BLOB_MAX],
                v2[MG_BASELINE_BLOB_MAX], bad[MG_BASELINE_BLOB_MAX];
        struct mg_baseline *copy = malloc(mg_baseline_size());
        char ip[32], err[256];
        size_t len, len2, len3, off, i;
        int64_t t = T0 + 9 * HOUR_MS;

        (void)state;
        assert_non_null(copy);
        conf.sig[MG_SIG_SHARED_IDENTITY].warmup = 0;
        /* Monday: 6 networks, 5 clients, 2 user agents within minutes. */
        for (i = 0; i < 6; i++) {
                snprintf(ip, sizeof(ip), "10.0.%zu.1", i);
                ok_auth(t + (int64_t)i * MIN_MS, clients[i % 5], ip,
                        i % 2 ? "agent/2" : "agent/1");
        }
        /* Wednesday: one of each, the last client a new one. */
        t += 2 * DAY_MS;
        ok_auth(t, "client-1", "10.0.0.1", "agent/1");
        ok_auth(t + MIN_MS, "client-last", "10.0.0.1", "agent/1");
        assert_int_equal(mg_baseline_encode(bl, blob, sizeof(blob), &len),
                         MG_OK);
        assert_int_equal(blob[4], 3);
        off = peaks_offset(blob, len, "client-last");
        assert_int_equal(blob[off], 6);
        assert_int_equal(blob[off + 1], 5);
        assert_int_equal(blob[off + 2], 2);
        assert_int_equal(blob[off + 3], 6); /* clients in the table */
        roundtrip(bl);

        /* The same baseline written by the version 2 encoder. */
        memcpy(v2, blob, off);
        memcpy(v2 + off, blob + off + 3, len - off - 3);
        len2 = len - 3;
        v2[4] = 2;
        reseal(v2, len2);
        if (mg_baseline_decode(copy, v2, len2, err, sizeof(err)))
                fail_msg("version 2 blob: %s", err);
        /* Its peaks are what is active at its newest event: 1 network,
         * 2 clients, 1 user agent. The rest is the same baseline. */
        assert_int_equal(mg_baseline_encode(copy, bad, sizeof(bad), &len3),
                         MG_OK);
        assert_int_equal(len3, len);
        assert_int_equal(bad[off], 1);
        assert_int_equal(bad[off + 1], 2);
        assert_int_equal(bad[off + 2], 1);
        bad[off] = blob[off];
        bad[off + 1] = blob[off + 1];
        bad[off + 2] = blob[off + 2];
        reseal(bad, len);
        assert_memory_equal(bad, blob, len);
        /* The peaks decide: three more clients make 5 active, the
         * identity's own high from Monday: quiet. From the version 2
         * blob, with a high of 2, the 4th and the 5th are new highs past
         * the threshold. */
        for (i = 0; i < 3; i++)
                assert_int_equal(ok_auth(t + (int64_t)(2 + i) * MIN_MS,
                                         clients[i + 1], "10.0.0.1",
                                         "agent/1"),
                                 0);
        memcpy(bl, copy, mg_baseline_size());
        assert_int_equal(ok_auth(t + 2 * MIN_MS, "client-2", "10.0.0.1",
                                 "agent/1"),
                         0);
        assert_int_equal(ok_auth(t + 3 * MIN_MS, "client-3", "10.0.0.1",
                                 "agent/1"),
                         BIT(MG_SIG_SHARED_IDENTITY));
        assert_detail(MG_SIG_SHARED_IDENTITY,
                      "4 clients in 24h, newest client-3");
        assert_int_equal(ok_auth(t + 4 * MIN_MS, "client-4", "10.0.0.1",
                                 "agent/1"),
                         BIT(MG_SIG_SHARED_IDENTITY));
        assert_detail(MG_SIG_SHARED_IDENTITY,
                      "5 clients in 24h, newest client-4");

        /* Highs up to the table sizes decode; one more is refused. */
        for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
                memcpy(bad, blob, len);
                bad[off + cases[i].idx] = (unsigned char)cases[i].value;
                reseal(bad, len);
                err[0] = '\0';
                if (cases[i].ok) {
                        if (mg_baseline_decode(copy, bad, len, err,
                                               sizeof(err)))
                                fail_msg("peak %d = %d: %s", cases[i].idx,
                                         cases[i].value, err);
                        roundtrip(copy);
                } else {
                        assert_int_equal(mg_baseline_decode(copy, bad, len,
                                                            err, sizeof(err)),
                                         MG_ERR_DECODE);
                        assert_non_null(strstr(
                                err, "shared_identity peak out of range"));
                }
        }
        /* A version 3 blob without its peaks is one short at the end. */
        memcpy(bad, v2, len2);
        bad[4] = 3;
        reseal(bad, len2);
        assert_int_equal(mg_baseline_decode(copy, bad, len2, err,
                                            sizeof(err)),
                         MG_ERR_DECODE);
        free(copy);
}

/* Regression: rate_spike's statistics are of active minutes, so a pause
 * decays the weight without adding to it and it falls below 1 (half a
 * minute after a day's pause at the one-day half-life). Decode refused
 * such a weight as impossible, so an identity's blob stopped loading
 * after any long pause. */
static void test_decode_rate_after_pause(void **state) {
        static unsigned char blob[MG_BASELINE_BLOB_MAX];
        char err[256];
        size_t len;
        int64_t t = T0 + 9 * HOUR_MS;
        int i;

        (void)state;
        /* Three events in one minute, one in the next: one completed
         * minute of 3 (weight 1). */
        for (i = 0; i < 3; i++)
                use(t + i * 1000, "api://deploy", "192.0.2.10");
        use(t + MIN_MS, "api://deploy", "192.0.2.10");
        roundtrip(bl);
        /* Two days later: the weight is (r + 1) * r^2879, about 0.5. */
        use(t + 2 * DAY_MS + MIN_MS, "api://deploy", "192.0.2.10");
        assert_int_equal(mg_baseline_encode(bl, blob, sizeof(blob), &len),
                         MG_OK);
        if (mg_baseline_decode(bl, blob, len, err, sizeof(err)))
                fail_msg("blob after a pause: %s", err);
        roundtrip(bl);
        /* Three weeks: a weight of about 2^-21, still a mean of 2. */
        use(t + 23 * DAY_MS, "api://deploy", "192.0.2.10");
        roundtrip(bl);
        /* And with a one-minute half-life, a day's pause decays the sums
         * into the subnormal range; two days' to zero. */
        conf.rate_half_life_ms = MIN_MS;
        use(t + 23 * DAY_MS + MIN_MS, "api://deploy", "192.0.2.10");
        use(t + 23 * DAY_MS + 2 * MIN_MS, "api://deploy", "192.0.2.10");
        use(t + 23 * DAY_MS + 2 * MIN_MS + 1000, "api://deploy",
            "192.0.2.10");
        use(t + 23 * DAY_MS + 2 * MIN_MS + 1072 * MIN_MS, "api://deploy",
            "192.0.2.10");
        roundtrip(bl);
        use(t + 26 * DAY_MS, "api://deploy", "192.0.2.10");
        roundtrip(bl);
}

/* Baselines stored before source ASes (blob version 1) keep working: this
 * blob was written by the version 1 encoder (31 activity events from
 * 192.0.2.10, 198.51.100.7 and 2001:db8:1:2::5, then new_source and
 * shared_identity from 203.0.113.9). It decodes with an empty AS table
 * and shared_identity peaks of what is active at its newest event, scores
 * on, and encodes again as version 3. */
static void test_decode_version_1(void **state) {
        static const unsigned char v1[] = {
                0x4d, 0x47, 0x42, 0x4c, 0x01, 0x00, 0x0a, 0x15, 0x00, 0xc0,
                0x25, 0xb1, 0xe3, 0xa1, 0x01, 0x00, 0x00, 0xc1, 0xee, 0x6d,
                0x01, 0x00, 0x01, 0x94, 0x85, 0xc1, 0x41, 0xa6, 0xca, 0x3d,
                0x40, 0x94, 0x85, 0xc1, 0x41, 0xa6, 0xca, 0x3d, 0x40, 0x94,
                0x85, 0xc1, 0x41, 0xa6, 0xca, 0x3d, 0x40, 0xc1, 0xee, 0x6d,
                0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                0x00, 0xc4, 0x20, 0xf8, 0x41, 0x81, 0x00, 0x00, 0x00, 0x00,
                0x00, 0x00, 0x00, 0x3e, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00,
                0x00, 0x34, 0x40, 0x81, 0x00, 0x19, 0x32, 0x30, 0x33, 0x2e,
                0x30, 0x2e, 0x31, 0x31, 0x33, 0x2e, 0x30, 0x2f, 0x32, 0x34,
                0x20, 0x6e, 0x65, 0x76, 0x65, 0x72, 0x20, 0x73, 0x65, 0x65,
                0x6e, 0x2f, 0x34, 0x20, 0x73, 0x6f, 0x75, 0x72, 0x63, 0x65,
                0x20, 0x6e, 0x65, 0x74, 0x77, 0x6f, 0x72, 0x6b, 0x73, 0x20,
                0x69, 0x6e, 0x20, 0x32, 0x34, 0x68, 0x2c, 0x20, 0x6e, 0x65,
                0x77, 0x65, 0x73, 0x74, 0x20, 0x32, 0x30, 0x33, 0x2e, 0x30,
                0x2e, 0x31, 0x31, 0x33, 0x2e, 0x30, 0x2f, 0x32, 0x34, 0x00,
                0x00, 0x00, 0x00, 0x00, 0x00, 0x49, 0x40, 0x02, 0x00, 0x04,
                0x04, 0xcb, 0x00, 0x71, 0x01, 0x04, 0xc0, 0x00, 0x02, 0xe1,
                0xd4, 0x03, 0x04, 0xc6, 0x33, 0x64, 0xc1, 0xa9, 0x07, 0x06,
                0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0x00, 0x02, 0xc1, 0xfc,
                0x15, 0x01, 0x08, 0x63, 0x6c, 0x69, 0x65, 0x6e, 0x74, 0x2d,
                0x61, 0xa1, 0xfe, 0x0a, 0x01, 0x09, 0x61, 0x67, 0x65, 0x6e,
                0x74, 0x2f, 0x31, 0x2e, 0x30, 0xa1, 0xfe, 0x0a, 0x01, 0x0c,
                0x61, 0x70, 0x69, 0x3a, 0x2f, 0x2f, 0x64, 0x65, 0x70, 0x6c,
                0x6f, 0x79, 0x01, 0x01, 0x0c, 0x64, 0x65, 0x70, 0x6c, 0x6f,
                0x79, 0x3a, 0x77, 0x72, 0x69, 0x74, 0x65, 0xc1, 0xee, 0x6d,
                0xa1, 0xfe, 0x0a, 0xe1, 0xd4, 0x03, 0x02, 0xdd, 0x0e, 0x03,
                0x48, 0xb7, 0xde, 0xbe, 0x51, 0x00, 0xae, 0xac, 0x47, 0x31,
                0x78, 0xef, 0x63, 0x42, 0x00, 0x05, 0x9e, 0x16, 0x66};
        static unsigned char blob[MG_BASELINE_BLOB_MAX];
        struct mg_baseline *copy = malloc(mg_baseline_size());
        json_error_t jerr;
        json_t *root, *nets;
        char err[256], *text;
        size_t len, off;

        (void)state;
        assert_non_null(copy);
        assert_int_equal(v1[4], 1);
        if (mg_baseline_decode(bl, v1, sizeof(v1), err, sizeof(err)))
                fail_msg("version 1 blob: %s", err);
        assert_int_equal(mg_baseline_event_count(bl, MG_EVENT_AUTH), 10);
        assert_int_equal(mg_baseline_event_count(bl, MG_EVENT_USAGE), 21);
        mg_baseline_risk(bl, &conf, 0, &res.risk);
        assert_int_equal(res.risk.ts_ms, T0 + 9 * HOUR_MS + 30 * MIN_MS);
        assert_true(res.risk.score == 50);
        assert_detail(MG_SIG_NEW_SOURCE, "203.0.113.0/24 never seen");
        text = mg_baseline_to_json(bl, &conf, res.risk.ts_ms);
        assert_non_null(text);
        root = json_loads(text, 0, &jerr);
        assert_non_null(root);
        nets = json_object_get(root, "networks");
        assert_int_equal(json_array_size(nets), 4);
        assert_string_equal(json_string_value(json_object_get(
                                    json_array_get(nets, 3), "network")),
                            "2001:db8:1:2::/64");
        assert_int_equal(json_array_size(json_object_get(root, "asns")), 0);
        json_decref(root);
        free(text);
        /* Re-encoded: version 3, four bytes more (the empty AS table and
         * the peaks: the 4 networks, 1 client and 1 user agent active
         * within a day of its newest event), the same baseline. */
        assert_int_equal(mg_baseline_encode(bl, blob, sizeof(blob), &len),
                         MG_OK);
        assert_int_equal(blob[4], 3);
        assert_int_equal(len, sizeof(v1) + 4);
        off = peaks_offset(blob, len, "client-a");
        assert_int_equal(blob[off - 1], 0); /* no source ASes */
        assert_int_equal(blob[off], 4);
        assert_int_equal(blob[off + 1], 1);
        assert_int_equal(blob[off + 2], 1);
        assert_int_equal(mg_baseline_decode(copy, blob, len, err,
                                            sizeof(err)),
                         MG_OK);
        assert_memory_equal(copy, bl, mg_baseline_size());
        /* It scores on, and learns ASes from here (five networks in a
         * day would be shared_identity: not tested here). */
        use_asn_table();
        conf.sig[MG_SIG_SHARED_IDENTITY].warmup = 1000000;
        assert_int_equal(use(res.risk.ts_ms + MIN_MS, "api://deploy",
                             "198.51.100.8"),
                         0);
        assert_int_equal(use(res.risk.ts_ms + 2 * MIN_MS, "api://deploy",
                             "198.51.101.8"),
                         BIT(MG_SIG_NEW_SOURCE));
        assert_detail(MG_SIG_NEW_SOURCE, "198.51.101.0/24 never seen");
        roundtrip(bl);
        free(copy);
}

/* A typical service account: around the clock for four weeks, 2
 * networks, 2 clients, 2 user agents, 6 resources, 6 scopes, tokens every
 * 15 minutes, a few failures and a decayed signal. */
static void test_blob_size_typical(void **state) {
        static const char *const res_names[] = {
                "https://api.corp.example/deploy", "https://api.corp.example/releases",
                "https://vault.corp.example/v1/secret", "api://artifacts",
                "https://registry.corp.example/v2", "api://status"};
        static const char *const scopes[] = {"deploy:write", "releases:read",
                                             "secrets:read", "artifacts:write",
                                             "registry:pull", "status:read"};
        char tok[32];
        int64_t t;
        int i;
        size_t len;

        (void)state;
        use_asn_table(); /* both networks' ASes in the blob */
        for (i = 0, t = T0; t < T0 + 28 * DAY_MS; i++, t += 3 * MIN_MS) {
                if (i % 5 == 0) {
                        snprintf(tok, sizeof(tok), "tok-%08d", i);
                        apply(&(struct spec){
                                .type = MG_EVENT_AUTH, .ts = t,
                                .client = i % 2 ? "gh-actions-deployer"
                                                : "gh-actions-deployer-2",
                                .ip = i % 3 ? "203.0.113.7" : "198.51.100.20",
                                .ua = i % 2 ? "runner/2.311.0" : "runner/2.312.0",
                                .aud = res_names[i % 6],
                                .scopes = {scopes[i % 6], scopes[(i + 1) % 6]},
                                .scope_cnt = 2, .token = tok});
                } else {
                        apply(&(struct spec){
                                .type = MG_EVENT_USAGE, .ts = t,
                                .resource = res_names[i % 6],
                                .ip = i % 3 ? "203.0.113.7" : "198.51.100.20",
                                .scope = scopes[i % 6]});
                }
        }
        fail_auth(t);
        fail_auth(t + 1000);
        signal_ev(t + 2000, MG_SIGNAL_SECRET_EXPOSED, 40);
        len = roundtrip(bl);
        print_message("typical identity (%llu events): blob %zu bytes, "
                      "struct %zu bytes\n",
                      (unsigned long long)(mg_baseline_event_count(
                                                   bl, MG_EVENT_AUTH) +
                                           mg_baseline_event_count(
                                                   bl, MG_EVENT_USAGE)),
                      len, mg_baseline_size());
        assert_true(len <= 1536);
}

/* The sharing section: networks, clients and user agents active within a
 * day, and the peak shared_identity measures against, which outlives
 * them. */
static int sharing_get(const char *table, const char *field, int64_t now) {
        char *text = mg_baseline_to_json(bl, &conf, now);
        json_t *root = text ? json_loads(text, 0, NULL) : NULL;
        json_t *v = json_object_get(
                json_object_get(json_object_get(root, "sharing"), table),
                field);
        int n;

        if (!json_is_integer(v))
                fail_msg("sharing.%s.%s missing: %s", table, field,
                         text ? text : "(null)");
        n = (int)json_integer_value(v);
        json_decref(root);
        free(text);
        return n;
}

static void test_to_json_sharing(void **state) {
        static const char *const ips[] = {"192.0.2.1", "198.51.100.1",
                                          "203.0.113.1"};
        int64_t t = T0 + 9 * HOUR_MS;
        int i;

        (void)state;
        for (i = 0; i < 3; i++)
                apply(&(struct spec){.type = MG_EVENT_AUTH,
                                     .ts = t + i * MIN_MS,
                                     .client = i ? "client-b" : "client-a",
                                     .ip = ips[i], .ua = "agent/1"});
        t += HOUR_MS;
        assert_int_equal(sharing_get("networks", "active_24h", t), 3);
        assert_int_equal(sharing_get("networks", "peak", t), 3);
        assert_int_equal(sharing_get("clients", "active_24h", t), 2);
        assert_int_equal(sharing_get("clients", "peak", t), 2);
        assert_int_equal(sharing_get("user_agents", "active_24h", t), 1);
        assert_int_equal(sharing_get("user_agents", "peak", t), 1);
        /* Two days on one network: the others age out, the peaks stay. */
        t += 2 * DAY_MS;
        apply(&(struct spec){.type = MG_EVENT_AUTH, .ts = t,
                             .client = "client-a", .ip = ips[0],
                             .ua = "agent/1"});
        assert_int_equal(sharing_get("networks", "active_24h", t), 1);
        assert_int_equal(sharing_get("networks", "peak", t), 3);
        assert_int_equal(sharing_get("clients", "active_24h", t), 1);
        assert_int_equal(sharing_get("clients", "peak", t), 2);
}

static void test_to_json(void **state) {
        json_error_t jerr;
        json_t *root, *v, *scopes;
        char *text;
        size_t i;
        int64_t t;
        int found = 0;

        (void)state;
        t = normal(T0 + 9 * HOUR_MS, 30, MIN_MS);
        apply(&(struct spec){.type = MG_EVENT_AUTH, .ts = t,
                             .client = "client-a", .ip = "192.0.2.10",
                             .scopes = {"secrets:read"}, .scope_cnt = 1});
        use(t, "api://x\xc3", "2001:db8:5::1");
        text = mg_baseline_to_json(bl, &conf, t + 31 * DAY_MS);
        assert_non_null(text);
        root = json_loads(text, 0, &jerr);
        if (!root)
                fail_msg("to_json: %s: %s", jerr.text, text);
        assert_true(json_is_number(json_object_get(root, "risk")));
        assert_string_equal(json_string_value(json_object_get(root, "level")),
                            "low");
        assert_true(json_is_array(json_object_get(root, "reasons")));
        v = json_object_get(root, "events");
        assert_int_equal(json_integer_value(json_object_get(v, "auth")), 11);
        assert_int_equal(json_integer_value(json_object_get(v, "usage")), 21);
        assert_int_equal(json_integer_value(json_object_get(v, "signal")), 0);
        assert_non_null(json_object_get(root, "last_seen"));
        v = json_object_get(root, "networks");
        assert_string_equal(json_string_value(json_object_get(
                                    json_array_get(v, 0), "network")),
                            "2001:db8:5::/64");
        /* No AS data: an empty list. */
        assert_true(json_is_array(json_object_get(root, "asns")));
        assert_int_equal(json_array_size(json_object_get(root, "asns")), 0);
        v = json_object_get(root, "resources");
        assert_string_equal(json_string_value(json_object_get(
                                    json_array_get(v, 0), "resource")),
                            "api://x?");
        assert_true(json_is_array(json_object_get(root, "clients")));
        assert_true(json_is_array(json_object_get(root, "user_agents")));
        scopes = json_object_get(root, "scopes");
        for (i = 0; i < json_array_size(scopes); i++) {
                json_t *sc = json_array_get(scopes, i);

                if (strcmp(json_string_value(json_object_get(sc, "scope")),
                           "secrets:read"))
                        continue;
                found = 1;
                assert_true(json_is_true(json_object_get(sc, "unused")));
                assert_true(json_is_null(json_object_get(sc, "used")));
        }
        assert_true(found);
        v = json_object_get(root, "activity");
        assert_int_equal(json_integer_value(json_object_get(
                                 v, "hours_of_week_active")),
                         1);
        assert_int_equal(json_array_size(json_object_get(v, "by_hour_utc")),
                         24);
        json_decref(root);
        free(text);
}

/*
 * The reference model.
 */

/* splitmix64: small, seedable, good enough for test streams. */
static uint64_t rng;

static uint64_t rnd(void) {
        uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);

        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

static int rnd_below(int n) {
        return (int)(rnd() % (uint64_t)n);
}

static int chance(double p) {
        return (double)(rnd() >> 11) * 0x1.0p-53 < p;
}

/* Value pools. Values are compared by pool index in the naive model
 * (equal strings only ever come from the same slot). */
#define POOL_IPS     64
#define POOL_CLIENTS 16
#define POOL_AGENTS  16
#define POOL_RES     64
#define POOL_SCOPES  48
#define POOL_TOKENS  1024
static char pool_ip[POOL_IPS][48];         /* addresses, 2 per network */
static int pool_ip_net[POOL_IPS];          /* naive network id of each */
static int pool_ip_site[POOL_IPS];         /* naive id of its /16 or /48 */
static int pool_ip_v6[POOL_IPS];           /* an IPv6 address */
static uint32_t pool_ip_asn[POOL_IPS];     /* naive_asn() of each */
static char pool_client[POOL_CLIENTS][24]; /* client ids */
static char pool_agent[POOL_AGENTS][24];   /* user agents */
static char pool_res[POOL_RES][40];        /* resources and audiences */
static char pool_scope[POOL_SCOPES][24];   /* scopes */
static char pool_token[POOL_TOKENS][16];   /* token ids (issued: even
                                            * slots, strangers: odd) */

/* The /48 (third group) of the IPv6 networks, one per fifth network:
 * two pairs share a /48, and 2001:db8:1c::/48 shares only its AS
 * (2001:db8:18::/45) with 2001:db8:18::/48. */
static const int pool_v6_site[] = {0x4, 0x4, 0x18, 0x18, 0x1, 0x1c};

static void pools_init(void) {
        char key[64][24], site[64][24];
        unsigned char a[16];
        int i, j;

        /* 32 networks: every fifth IPv6, the others IPv4 spread over
         * seven /16s (10.0 to 10.6), three or four /24s in each. */
        for (i = 0; i < POOL_IPS; i++) {
                int net = i / 2;

                if (net % 5 == 4)
                        snprintf(pool_ip[i], sizeof(pool_ip[i]),
                                 "2001:db8:%x:%x::%x",
                                 pool_v6_site[net / 5], net, i + 1);
                else
                        snprintf(pool_ip[i], sizeof(pool_ip[i]),
                                 "10.%d.%d.%d", net % 7, net, i + 1);
        }
        /* The naive network and site: the leading bytes of inet_pton's
         * result, grouped by equal text. */
        for (i = 0; i < POOL_IPS; i++) {
                if (inet_pton(AF_INET, pool_ip[i], a) == 1) {
                        snprintf(key[i], sizeof(key[i]), "4:%u.%u.%u", a[0],
                                 a[1], a[2]);
                        snprintf(site[i], sizeof(site[i]), "4:%u.%u", a[0],
                                 a[1]);
                } else if (inet_pton(AF_INET6, pool_ip[i], a) == 1) {
                        snprintf(key[i], sizeof(key[i]),
                                 "6:%02x%02x%02x%02x%02x%02x%02x%02x", a[0],
                                 a[1], a[2], a[3], a[4], a[5], a[6], a[7]);
                        snprintf(site[i], sizeof(site[i]),
                                 "6:%02x%02x%02x%02x%02x%02x", a[0], a[1],
                                 a[2], a[3], a[4], a[5]);
                        pool_ip_v6[i] = 1;
                } else {
                        fail_msg("pool address %s", pool_ip[i]);
                }
                for (j = 0; j < i && strcmp(key[j], key[i]); j++)
                        ;
                pool_ip_net[i] = j;
                for (j = 0; j < i && strcmp(site[j], site[i]); j++)
                        ;
                pool_ip_site[i] = j;
                pool_ip_asn[i] = naive_asn(pool_ip[i]);
        }
        for (i = 0; i < POOL_CLIENTS; i++)
                snprintf(pool_client[i], sizeof(pool_client[i]), "client-%d",
                         i);
        for (i = 0; i < POOL_AGENTS; i++)
                snprintf(pool_agent[i], sizeof(pool_agent[i]), "agent/%d.%d",
                         i / 4, i % 4);
        for (i = 0; i < POOL_RES; i++)
                snprintf(pool_res[i], sizeof(pool_res[i]),
                         "https://api-%d.example/v1", i);
        for (i = 0; i < POOL_SCOPES; i++)
                snprintf(pool_scope[i], sizeof(pool_scope[i]), "scope:%d", i);
        for (i = 0; i < POOL_TOKENS; i++)
                snprintf(pool_token[i], sizeof(pool_token[i]), "tok-%d", i);
}

/* One applied event in the naive model, values as pool indices (-1:
 * absent), with what the naive model decided for it. */
struct nev {
        enum mg_event_type type;   /* event type */
        int64_t ts;                /* its timestamp */
        int64_t te;                /* effective time, max(ts, newest) */
        int fail;                  /* failed auth */
        int net;                   /* network id (auth, usage) */
        uint32_t asn;              /* its AS with AS data, else 0 */
        int asn_novel;             /* new_source fired for a new AS */
        int near;                  /* new_source fired with the nearby
                                    * weight: 1 for a network of the same
                                    * site, 2 for a known AS alone */
        int active[3];             /* networks, clients, user agents
                                    * active within a day after this
                                    * event's touch; 0: not touched */
        unsigned shared_held;      /* SHARED_HELD_* reasons shared_identity
                                    * did not fire for a value it would
                                    * have fired for before peaks */
        int by_day;                /* off_hours judged by hour of day */
        int client;                /* auth */
        int agent;                 /* auth */
        int aud;                   /* auth audience (resource pool) */
        int scopes[8];             /* auth scopes */
        int scope_cnt;             /* entries in scopes */
        int exchange;              /* auth token exchange */
        int token;                 /* auth: issued */
        int parent;                /* auth: exchanged from */
        int res;                   /* usage resource */
        int uscope;                /* usage scope */
        enum mg_signal_kind kind;  /* signal kind */
        int severity;              /* signal severity */
        int how;                   /* naive_how(ts), computed once */
        unsigned fired;            /* signals the naive model fired */
        double points[MG_SIG__CNT]; /* their points */
        int depth;                 /* depth of the token issued */
};

/* The tables shared_identity counts (nev.active). */
#define SHARED_NETS    0
#define SHARED_CLIENTS 1
#define SHARED_AGENTS  2
/* Why a shared_identity candidate (a value becoming active past the
 * threshold, signal armed) did not fire (nev.shared_held). */
#define SHARED_HELD_PEAK  1u /* not above the identity's high */
#define SHARED_HELD_NOVEL 2u /* a network new to new_source */

#define NAIVE_MAX 512
static struct nev nv[NAIVE_MAX]; /* applied events of one identity */
static int nv_cnt;               /* entries in nv */

static int is_act(const struct nev *e) {
        return e->type != MG_EVENT_SIGNAL;
}

static int is_ok_auth(const struct nev *e) {
        return e->type == MG_EVENT_AUTH && !e->fail;
}

/* The values one event touches in one table, in the order it touches
 * them; returns how many. */
typedef int (*touch_cb)(const struct nev *e, int *out);

static int touch_nets(const struct nev *e, int *out) {
        if (e->net < 0 || !(is_ok_auth(e) || e->type == MG_EVENT_USAGE))
                return 0;
        out[0] = e->net;
        return 1;
}

static int touch_asns(const struct nev *e, int *out) {
        if (e->asn == 0 || touch_nets(e, out) == 0)
                return 0;
        out[0] = (int)e->asn;
        return 1;
}

static int touch_clients(const struct nev *e, int *out) {
        if (!is_ok_auth(e) || e->client < 0)
                return 0;
        out[0] = e->client;
        return 1;
}

static int touch_agents(const struct nev *e, int *out) {
        if (!is_ok_auth(e) || e->agent < 0)
                return 0;
        out[0] = e->agent;
        return 1;
}

static int touch_resources(const struct nev *e, int *out) {
        if (is_ok_auth(e) && e->aud >= 0) {
                out[0] = e->aud;
                return 1;
        }
        if (e->type == MG_EVENT_USAGE && e->res >= 0) {
                out[0] = e->res;
                return 1;
        }
        return 0;
}

static int touch_scopes(const struct nev *e, int *out) {
        if (is_ok_auth(e)) {
                memcpy(out, e->scopes, sizeof(int) * (size_t)e->scope_cnt);
                return e->scope_cnt;
        }
        if (e->type == MG_EVENT_USAGE && e->uscope >= 0) {
                out[0] = e->uscope;
                return 1;
        }
        return 0;
}

static int touch_tokens(const struct nev *e, int *out) {
        if (!is_ok_auth(e) || e->token < 0)
                return 0;
        out[0] = e->token;
        return 1;
}

/* The k most recently touched distinct values among events [0, end),
 * most recent first, with the time each was last touched: the content of
 * an LRU table of k entries. Returns how many. */
static int recent(touch_cb cb, int end, int k, int *vals, int64_t *last) {
        int i, j, m, n = 0, t[8];

        for (i = end - 1; i >= 0 && n < k; i--) {
                int cnt = cb(&nv[i], t);

                for (j = cnt - 1; j >= 0 && n < k; j--) {
                        for (m = 0; m < n && vals[m] != t[j]; m++)
                                ;
                        if (m < n)
                                continue;
                        vals[n] = t[j];
                        last[n++] = nv[i].te;
                }
        }
        return n;
}

/* Position of v in vals[0..n), or -1. */
static int pos(const int *vals, int n, int v) {
        int i;

        for (i = 0; i < n; i++)
                if (vals[i] == v)
                        return i;
        return -1;
}

/* shared_identity over one table (k entries; `table` indexes nev.active)
 * for event n touching value v. Records in nv[n].active[table] how many
 * values are active after the touch (warm-up or not), and returns whether
 * the signal fires: v was not active in the window before, the count is
 * above thr and above every count an earlier event left (the identity's
 * high), v is not `novel` (a network new to new_source) and the signal is
 * `armed`. A firing held back by the last two conditions is noted in
 * nv[n].shared_held. */
static int naive_shared(touch_cb cb, int k, int table, int n, int v,
                        double thr, int novel, int armed) {
        int vals[K_NETS], cnt, p, was_active, active = 0, peak = 0, i;
        int64_t last[K_NETS], te = nv[n].te;

        cnt = recent(cb, n, k, vals, last);
        p = pos(vals, cnt, v);
        was_active = p >= 0 && te - last[p] < SHARED_WINDOW;
        cnt = recent(cb, n + 1, k, vals, last);
        for (i = 0; i < cnt; i++)
                active += te - last[i] < SHARED_WINDOW;
        nv[n].active[table] = active;
        for (i = 0; i < n; i++)
                if (nv[i].active[table] > peak)
                        peak = nv[i].active[table];
        if (was_active || !(active > thr) || !armed)
                return 0;
        if (novel) {
                nv[n].shared_held |= SHARED_HELD_NOVEL;
                return 0;
        }
        if (active <= peak) {
                nv[n].shared_held |= SHARED_HELD_PEAK;
                return 0;
        }
        return 1;
}

/* Novelty: v is not among the `known` most recent values before n. */
static int naive_novel(touch_cb cb, int n, int known, int v) {
        int vals[K_RESOURCES];
        int64_t last[K_RESOURCES];
        int cnt = recent(cb, n, known, vals, last);

        return pos(vals, cnt, v) < 0;
}

static int clamp_known(double thr, int cap) {
        if (thr < 1)
                return 1;
        return thr >= cap ? cap : (int)thr;
}

/* Hour of the week (Monday 00h = 0) the plain way. */
static int naive_how(int64_t ms) {
        time_t secs = (time_t)(ms / 1000);
        struct tm tm;

        gmtime_r(&secs, &tm);
        return ((tm.tm_wday + 6) % 7) * 24 + tm.tm_hour;
}

/* a and b equal to within rel (relative). */
static int near(double a, double b, double rel) {
        return fabs(a - b) <= rel * fmax(1e-300, fmax(fabs(a), fabs(b)));
}

/* Counters of the comparison, reported at the end. */
struct cmp_stats {
        long events;                 /* events compared */
        long late;                   /* refused as late */
        long undecided;              /* bits not compared (near a tie) */
        long fired[MG_SIG__CNT];     /* firings per signal */
        long unused_checks;          /* scope_unused comparisons */
        long asn_named;              /* new_source details naming an AS */
        long net_named;              /* ... naming the network alone, the
                                      * event having an AS */
        long asn_tables;             /* AS tables compared */
        long roundtrips;             /* encode/decode checks */
        long source_far;             /* new_source at its weight, for a
                                      * network (not a new AS) */
        long source_near;            /* ... at the nearby weight: a
                                      * network of the same site known */
        long source_near_v6;         /* ... of them IPv6 (same /48) */
        long source_near_asn;        /* ... near only by a known AS */
        long by_day;                 /* off_hours judged by hour of day
                                      * (2 to 7 days of history) */
        long by_day_fired;           /* ... firing */
        long shared_high;            /* shared_identity fired (a new
                                      * high) */
        long shared_held_peak;       /* held: not above the high */
        long shared_held_novel;      /* held: new to new_source */
};

/* Decide event n from the events before it, the plain way. Sets
 * nv[n].fired, points and depth; *undecided gets bits whose decision is
 * within rounding of its threshold. */
static void naive_eval(const struct mg_scoring_conf *c, int n,
                       unsigned *undecided) {
        struct nev *e = &nv[n];
        int64_t act_before = 0, auth_before = 0, te = e->te;
        int i, j, first_act = -1, last_act = -1;

        e->fired = 0;
        e->depth = 0;
        e->asn_novel = 0;
        e->near = 0;
        e->shared_held = 0;
        e->by_day = 0;
        memset(e->active, 0, sizeof(e->active));
        memset(e->points, 0, sizeof(e->points));
        for (i = 0; i < n; i++) {
                if (!is_act(&nv[i]))
                        continue;
                act_before++;
                if (nv[i].type == MG_EVENT_AUTH)
                        auth_before++;
                if (first_act < 0)
                        first_act = i;
                last_act = i;
        }
#define ARMED(s) (act_before >= c->sig[s].warmup)
#define FIRE(s, pts)                                                          \
        do {                                                                  \
                e->fired |= 1u << (s);                                        \
                e->points[s] = (pts);                                         \
        } while (0)

        if (e->type == MG_EVENT_SIGNAL) {
                enum mg_signal s = e->kind == MG_SIGNAL_SECRET_EXPOSED
                                           ? MG_SIG_SECRET_EXPOSED
                                   : e->kind == MG_SIGNAL_CREDENTIAL_COMPROMISE
                                           ? MG_SIG_CREDENTIAL_COMPROMISE
                                           : MG_SIG_QUARANTINE;

                if (e->kind != MG_SIGNAL_RELEASE && ARMED(s) &&
                    e->severity >= c->sig[s].threshold)
                        FIRE(s, c->sig[s].weight * e->severity / 100.0);
                return;
        }

        /* dormant_reactivation */
        if (last_act >= 0 && te - nv[last_act].te > c->dormant_after_ms &&
            ARMED(MG_SIG_DORMANT_REACTIVATION))
                FIRE(MG_SIG_DORMANT_REACTIVATION,
                     c->sig[MG_SIG_DORMANT_REACTIVATION].weight);

        /* rate_spike: sums over the earlier minutes that had activity,
         * minute m weighing r^(M-1-m); minutes without any count for
         * nothing. */
        if (first_act >= 0 && ARMED(MG_SIG_RATE_SPIKE)) {
                int64_t mm = te / MIN_MS;
                double hl = (double)c->rate_half_life_ms / MIN_MS;
                double w = 0, s1 = 0, s2 = 0, mean, var, sd, cnt = 0, k;
                int already = 0, excess, excess_tie, above, above_tie;

                for (i = 0; i <= n; i++) {
                        if (!is_act(&nv[i]) || nv[i].te / MIN_MS != mm)
                                continue;
                        cnt++;
                        if (i < n && (nv[i].fired & BIT(MG_SIG_RATE_SPIKE)))
                                already = 1;
                }
                for (i = 0; i < n;) {
                        int64_t m = nv[i].te / MIN_MS;
                        double cm = 0, f = exp2(-(double)(mm - 1 - m) / hl);

                        for (j = i; j < n && nv[j].te / MIN_MS == m; j++)
                                cm += is_act(&nv[j]);
                        if (m < mm && cm > 0) {
                                w += f;
                                s1 += cm * f;
                                s2 += cm * cm * f;
                        }
                        i = j;
                }
                if (w > 0 && !already) {
                        mean = s1 / w;
                        var = s2 / w - mean * mean;
                        sd = var > 0 ? sqrt(var) : 0;
                        k = c->sig[MG_SIG_RATE_SPIKE].threshold;
                        /* Both conditions must hold: one within rounding
                         * of its bound leaves the bit open only if the
                         * other holds or is within rounding too (a
                         * steady one event a minute has its count on
                         * mean + k * 0, and 9 events short of firing). */
                        excess = cnt - mean > RATE_MIN_EXCESS - 0.5;
                        excess_tie = near(cnt - mean, RATE_MIN_EXCESS - 0.5,
                                          1e-9);
                        above = cnt > mean + k * sd;
                        above_tie = near(cnt, mean + k * sd, 1e-9);
                        if ((excess_tie || above_tie) &&
                            (excess || excess_tie) && (above || above_tie))
                                *undecided |= BIT(MG_SIG_RATE_SPIKE);
                        if (excess && above)
                                FIRE(MG_SIG_RATE_SPIKE,
                                     c->sig[MG_SIG_RATE_SPIKE].weight);
                }
        }

        /* off_hours: shares of decayed weights, this hour of the week and
         * the two next to it, over all activity before; from two days to
         * a week of history, this hour of the day and the two next to it
         * on every day, over 21 hours of the week. At most once per clock
         * hour: not when the previous activity was in the same hour. */
        if (first_act >= 0 && te - nv[first_act].te >= OFF_HOURS_DAY_SPAN &&
            !(last_act >= 0 &&
              nv[last_act].te / HOUR_MS == te / HOUR_MS) &&
            ARMED(MG_SIG_OFF_HOURS)) {
                int b = e->how, h;
                double total = 0, near3 = 0, wgt, share;
                double thr = c->sig[MG_SIG_OFF_HOURS].threshold;

                e->by_day = te - nv[first_act].te < OFF_HOURS_SPAN;
                for (i = 0; i < n; i++) {
                        if (!is_act(&nv[i]))
                                continue;
                        wgt = exp2(-(double)(te - nv[i].te) / HOW_HALF_LIFE);
                        total += wgt;
                        h = nv[i].how;
                        if (e->by_day) {
                                h %= 24;
                                if (h == b % 24 || h == (b + 1) % 24 ||
                                    h == (b + 23) % 24)
                                        near3 += wgt;
                        } else if (h == b || h == (b + 1) % 168 ||
                                   h == (b + 167) % 168) {
                                near3 += wgt;
                        }
                }
                share = near3 / ((e->by_day ? 21 : 3) * total);
                /* The baseline keeps floats: ~1e-6 relative. */
                if (near(share, thr, 1e-4))
                        *undecided |= BIT(MG_SIG_OFF_HOURS);
                if (share < thr)
                        FIRE(MG_SIG_OFF_HOURS,
                             c->sig[MG_SIG_OFF_HOURS].weight);
        }

        if (e->type == MG_EVENT_AUTH && e->fail) {
                /* auth_failures: count in the window now and at the
                 * previous failure. */
                int now_cnt = 0, prev_cnt = 0, prev = -1;
                double thr = c->sig[MG_SIG_AUTH_FAILURES].threshold;

                for (i = 0; i < n; i++)
                        if (nv[i].type == MG_EVENT_AUTH && nv[i].fail)
                                prev = i;
                for (i = 0; i <= n; i++) {
                        if (nv[i].type != MG_EVENT_AUTH || !nv[i].fail)
                                continue;
                        now_cnt += te - nv[i].te < c->failure_window_ms;
                        if (prev >= 0 && i <= prev)
                                prev_cnt += nv[prev].te - nv[i].te <
                                            c->failure_window_ms;
                }
                if (now_cnt >= thr && !(prev >= 0 && prev_cnt >= thr) &&
                    ARMED(MG_SIG_AUTH_FAILURES))
                        FIRE(MG_SIG_AUTH_FAILURES,
                             c->sig[MG_SIG_AUTH_FAILURES].weight);
                return;
        }

        /* new_source, shared_identity (networks first) */
        if (e->net >= 0) {
                int novel = naive_novel(touch_nets, n,
                                        clamp_known(c->sig[MG_SIG_NEW_SOURCE]
                                                            .threshold,
                                                    K_NETS),
                                        e->net);

                if (novel && ARMED(MG_SIG_NEW_SOURCE)) {
                        int vals[K_NETS], cnt;
                        int64_t last[K_NETS];

                        /* Named by its AS when that is new too: the full
                         * weight. Otherwise near when a network of the
                         * table (any of the 16) is of the same site, or
                         * the AS is known. */
                        e->asn_novel = e->asn &&
                                       naive_novel(touch_asns, n, K_ASNS,
                                                   (int)e->asn);
                        cnt = recent(touch_nets, n, K_NETS, vals, last);
                        for (i = 0; i < cnt && !e->asn_novel; i++)
                                if (pool_ip_site[vals[i]] ==
                                    pool_ip_site[e->net])
                                        e->near = 1;
                        if (!e->asn_novel && !e->near && e->asn)
                                e->near = 2;
                        FIRE(MG_SIG_NEW_SOURCE,
                             e->near ? c->new_source_nearby
                                     : c->sig[MG_SIG_NEW_SOURCE].weight);
                }
                /* Learnt warm-up or not: the high. */
                if (naive_shared(touch_nets, K_NETS, SHARED_NETS, n, e->net,
                                 c->sig[MG_SIG_SHARED_IDENTITY].threshold,
                                 novel, ARMED(MG_SIG_SHARED_IDENTITY)))
                        FIRE(MG_SIG_SHARED_IDENTITY,
                             c->sig[MG_SIG_SHARED_IDENTITY].weight);
        }
        if (e->type == MG_EVENT_AUTH && e->client >= 0 &&
            naive_shared(touch_clients, K_CLIENTS, SHARED_CLIENTS, n,
                         e->client, c->sig[MG_SIG_SHARED_IDENTITY].threshold,
                         0, ARMED(MG_SIG_SHARED_IDENTITY)))
                FIRE(MG_SIG_SHARED_IDENTITY,
                     c->sig[MG_SIG_SHARED_IDENTITY].weight);
        if (e->type == MG_EVENT_AUTH && e->agent >= 0 &&
            naive_shared(touch_agents, K_AGENTS, SHARED_AGENTS, n, e->agent,
                         c->sig[MG_SIG_SHARED_IDENTITY].threshold, 0,
                         ARMED(MG_SIG_SHARED_IDENTITY)))
                FIRE(MG_SIG_SHARED_IDENTITY,
                     c->sig[MG_SIG_SHARED_IDENTITY].weight);

        /* new_resource */
        {
                int r = e->type == MG_EVENT_AUTH ? e->aud : e->res;

                if (r >= 0 && ARMED(MG_SIG_NEW_RESOURCE) &&
                    naive_novel(touch_resources, n,
                                clamp_known(c->sig[MG_SIG_NEW_RESOURCE]
                                                    .threshold,
                                            K_RESOURCES),
                                r))
                        FIRE(MG_SIG_NEW_RESOURCE,
                             c->sig[MG_SIG_NEW_RESOURCE].weight);
        }
        if (e->type != MG_EVENT_AUTH)
                return;

        /* scope_expansion */
        if (auth_before >= c->sig[MG_SIG_SCOPE_EXPANSION].warmup) {
                int known = clamp_known(
                        c->sig[MG_SIG_SCOPE_EXPANSION].threshold, K_SCOPES);

                for (i = 0; i < e->scope_cnt; i++)
                        if (naive_novel(touch_scopes, n, known,
                                        e->scopes[i]))
                                FIRE(MG_SIG_SCOPE_EXPANSION,
                                     c->sig[MG_SIG_SCOPE_EXPANSION].weight);
        }

        /* token_chain: the parent among the 16 most recent tokens, its
         * depth from the latest event that issued it. */
        if (e->exchange && e->parent >= 0) {
                int vals[K_TOKENS];
                int64_t last[K_TOKENS];
                int cnt = recent(touch_tokens, n, K_TOKENS, vals, last);
                double thr = c->sig[MG_SIG_TOKEN_CHAIN].threshold;

                if (pos(vals, cnt, e->parent) < 0) {
                        e->depth = 1;
                        if (ARMED(MG_SIG_TOKEN_CHAIN))
                                FIRE(MG_SIG_TOKEN_CHAIN,
                                     c->sig[MG_SIG_TOKEN_CHAIN].weight);
                } else {
                        for (i = n - 1; i >= 0; i--)
                                if (is_ok_auth(&nv[i]) &&
                                    nv[i].token == e->parent)
                                        break;
                        assert_true(i >= 0);
                        e->depth = nv[i].depth + 1 > 255 ? 255
                                                         : nv[i].depth + 1;
                        if (e->depth > thr && ARMED(MG_SIG_TOKEN_CHAIN))
                                FIRE(MG_SIG_TOKEN_CHAIN,
                                     c->sig[MG_SIG_TOKEN_CHAIN].weight);
                }
        }
#undef ARMED
#undef FIRE
}

/* Risk at time t after events [0, end): every firing's points decayed
 * from its time (quarantine not decayed); external signals count only
 * after the last release. */
static double naive_score(const struct mg_scoring_conf *c, int end,
                          int64_t t) {
        double sum = 0;
        int i, s, release = -1;

        for (i = 0; i < end; i++)
                if (nv[i].type == MG_EVENT_SIGNAL &&
                    nv[i].kind == MG_SIGNAL_RELEASE)
                        release = i;
        for (i = 0; i < end; i++) {
                for (s = 0; s < MG_SIG__CNT; s++) {
                        if (!(nv[i].fired & BIT(s)))
                                continue;
                        if (s >= MG_SIG_SECRET_EXPOSED && i < release)
                                continue;
                        sum += s == MG_SIG_QUARANTINE
                                       ? nv[i].points[s]
                                       : nv[i].points[s] *
                                                 exp2(-(double)(t - nv[i].te) /
                                                      c->risk_half_life_ms);
                }
        }
        return sum > 100 ? 100 : sum;
}

static enum mg_risk_level naive_level(const struct mg_scoring_conf *c,
                                      double score, int *undecided) {
        *undecided = near(score, c->level_medium, 1e-9) ||
                     near(score, c->level_high, 1e-9) ||
                     near(score, c->level_critical, 1e-9);
        return score >= c->level_critical ? MG_RISK_CRITICAL
               : score >= c->level_high   ? MG_RISK_HIGH
               : score >= c->level_medium ? MG_RISK_MEDIUM
                                          : MG_RISK_LOW;
}

/* scope_unused the plain way. A scope stays in the K-entry LRU table
 * between two of its touches iff fewer than K distinct other scopes were
 * touched in between; its times are those of its current stay. */
static int naive_scope_unused(const struct mg_scoring_conf *c, int end,
                              int scope, int64_t now) {
        int others[K_SCOPES], other_cnt = 0, i, j, t[8], cnt, found = 0;
        int64_t first_granted = 0, granted = 0, used = 0, since;

        for (i = end - 1; i >= 0; i--) {
                cnt = touch_scopes(&nv[i], t);
                for (j = cnt - 1; j >= 0; j--) {
                        if (t[j] == scope) {
                                found = 1;
                                other_cnt = 0;
                                if (nv[i].type == MG_EVENT_AUTH) {
                                        if (!granted)
                                                granted = nv[i].te;
                                        first_granted = nv[i].te;
                                } else if (!used) {
                                        used = nv[i].te;
                                }
                        } else if (pos(others, other_cnt, t[j]) < 0) {
                                others[other_cnt++] = t[j];
                                if (other_cnt == K_SCOPES)
                                        goto done;
                        }
                }
        }
done:
        if (!found || !granted)
                return 0;
        since = used > first_granted ? used : first_granted;
        return now - since >= c->scope_unused_after_ms;
}

/* The generator's view of one identity. */
struct profile {
        const struct mg_scoring_conf *conf; /* which configuration */
        int business;           /* active Mon-Fri 08-18 UTC only */
        int grid;               /* gaps are whole hours, so times meet
                                 * windows (24h, 7d) exactly */
        double novelty;         /* chance of an unusual value */
        int ips[3], ip_cnt;     /* usual addresses */
        int clients[2], client_cnt; /* usual clients */
        int agents[2], agent_cnt;   /* usual user agents */
        int res[6], res_cnt;        /* usual resources */
        int scopes[4], scope_cnt;   /* usual scopes */
        int64_t t;              /* generator clock */
        int burst;              /* events left in a one-minute burst */
        int fails;              /* failures left in a failure burst */
        int tokens[64], token_cnt; /* issued token slots, newest last */
        int next_token;         /* next issued token slot */
};

static int pick(const int *usual, int cnt, int pool, double novelty) {
        return chance(novelty) ? rnd_below(pool) : usual[rnd_below(cnt)];
}

static void profile_init(struct profile *p,
                         const struct mg_scoring_conf *c) {
        int i;

        memset(p, 0, sizeof(*p));
        p->conf = c;
        p->business = chance(0.4);
        p->grid = chance(0.25);
        p->novelty = chance(p->grid ? 0.5 : 0.2) ? 0.3 : 0.03;
        p->ip_cnt = 1 + rnd_below(3);
        for (i = 0; i < p->ip_cnt; i++)
                p->ips[i] = rnd_below(POOL_IPS);
        p->client_cnt = 1 + rnd_below(2);
        for (i = 0; i < p->client_cnt; i++)
                p->clients[i] = rnd_below(POOL_CLIENTS);
        p->agent_cnt = 1 + rnd_below(2);
        for (i = 0; i < p->agent_cnt; i++)
                p->agents[i] = rnd_below(POOL_AGENTS);
        p->res_cnt = 3 + rnd_below(4);
        for (i = 0; i < p->res_cnt; i++)
                p->res[i] = rnd_below(POOL_RES);
        p->scope_cnt = 2 + rnd_below(3);
        for (i = 0; i < p->scope_cnt; i++)
                p->scopes[i] = rnd_below(POOL_SCOPES);
        p->t = T0 + rnd_below(7 * 24) * HOUR_MS;
}

static int business_hour(int64_t t) {
        int h = naive_how(t);

        return h / 24 < 5 && h % 24 >= 8 && h % 24 < 18;
}

/* Next event of an identity, as a spec and as the naive model's record
 * (minus te and decisions). */
static void gen_event(struct profile *p, struct spec *sp, struct nev *e) {
        const struct mg_scoring_conf *c = p->conf;
        int64_t before = p->t;
        double r, thr;
        int i;

        memset(sp, 0, sizeof(*sp));
        memset(e, 0, sizeof(*e));
        e->net = e->client = e->agent = e->aud = e->token = e->parent = -1;
        e->res = e->uscope = -1;
        if (p->burst > 0) {
                p->burst--;
                p->t += rnd_below(2000);
        } else if (p->fails > 0) {
                p->fails--;
                /* Sometimes exactly window / (threshold - 1) apart: the
                 * threshold-th failure then sits on the window's edge. */
                thr = c->sig[MG_SIG_AUTH_FAILURES].threshold;
                if (chance(0.3) && thr >= 2)
                        p->t += c->failure_window_ms / (int64_t)(thr - 1);
                else
                        p->t += 5000 + rnd_below(40000);
        } else {
                r = (double)(rnd() >> 11) * 0x1.0p-53;
                if (r < 0.002)
                        p->t += c->dormant_after_ms; /* exactly */
                else if (r < 0.004)
                        p->t += 15 * DAY_MS + rnd_below(5 * 24) * HOUR_MS;
                else if (r < 0.02)
                        p->t += DAY_MS + rnd_below(4 * 24) * HOUR_MS;
                else if (p->grid) /* back on the grid after bursts */
                        p->t = p->t / HOUR_MS * HOUR_MS +
                               (1 + rnd_below(4)) * HOUR_MS;
                else
                        p->t += 30000 + rnd_below(90 * 60) * 1000LL;
                if (p->business && !chance(0.03))
                        while (!business_hour(p->t))
                                p->t += HOUR_MS -
                                        (p->grid ? 0 : 1000 * rnd_below(60));
                if (chance(0.02)) {
                        p->burst = 11 + rnd_below(20);
                        p->t = p->t / MIN_MS * MIN_MS + rnd_below(1000);
                }
                if (chance(0.01))
                        p->fails = 3 + rnd_below(7);
        }
        sp->ts = e->ts = p->t;
        if (chance(0.03) && before) {
                /* Late: behind the newest event, sometimes exactly at the
                 * bound (applied) or just past it (refused). */
                p->t = before;
                r = (double)(rnd() >> 11) * 0x1.0p-53;
                sp->ts = e->ts =
                        before -
                        (r < 0.2   ? c->late_bound_ms
                         : r < 0.3 ? c->late_bound_ms + 1
                                   : rnd_below((int)(c->late_bound_ms * 3 / 2) +
                                               1));
        }

        r = (double)(rnd() >> 11) * 0x1.0p-53;
        if (p->fails > 0 || (p->burst == 0 && r < 0.35)) {
                sp->type = e->type = MG_EVENT_AUTH;
                e->fail = sp->fail = p->fails > 0 || chance(0.05);
                i = pick(p->ips, p->ip_cnt, POOL_IPS, p->novelty);
                sp->ip = pool_ip[i];
                e->net = pool_ip_net[i];
                e->asn = c->asn ? pool_ip_asn[i] : 0;
                e->client = pick(p->clients, p->client_cnt, POOL_CLIENTS,
                                 p->novelty);
                sp->client = pool_client[e->client];
                if (!chance(0.1)) {
                        e->agent = pick(p->agents, p->agent_cnt, POOL_AGENTS,
                                        p->novelty);
                        sp->ua = pool_agent[e->agent];
                }
                if (chance(0.5)) {
                        e->aud = pick(p->res, p->res_cnt, POOL_RES,
                                      p->novelty);
                        sp->aud = pool_res[e->aud];
                }
                e->scope_cnt = sp->scope_cnt = 1 + rnd_below(3);
                for (i = 0; i < e->scope_cnt; i++) {
                        e->scopes[i] = pick(p->scopes, p->scope_cnt,
                                            POOL_SCOPES, p->novelty);
                        sp->scopes[i] = pool_scope[e->scopes[i]];
                }
                if (chance(0.3)) {
                        e->exchange = sp->exchange = 1;
                        if (chance(0.1) || !p->token_cnt)
                                e->parent = 2 * rnd_below(POOL_TOKENS / 2) + 1;
                        else if (!chance(0.05))
                                e->parent = p->tokens[p->token_cnt - 1 -
                                                      rnd_below(p->token_cnt <
                                                                        24
                                                                ? p->token_cnt
                                                                : 24)];
                        if (e->parent >= 0)
                                sp->parent = pool_token[e->parent];
                }
                if (chance(0.8) && p->next_token < POOL_TOKENS / 2) {
                        e->token = 2 * p->next_token++;
                        if (chance(0.05) && p->token_cnt)
                                e->token = p->tokens[rnd_below(p->token_cnt)];
                        sp->token = pool_token[e->token];
                        if (!e->fail) {
                                if (p->token_cnt == 64) {
                                        memmove(p->tokens, p->tokens + 1,
                                                63 * sizeof(int));
                                        p->token_cnt--;
                                }
                                p->tokens[p->token_cnt++] = e->token;
                        }
                }
        } else if (p->burst > 0 || r < 0.95) {
                sp->type = e->type = MG_EVENT_USAGE;
                e->res = pick(p->res, p->res_cnt, POOL_RES, p->novelty);
                sp->resource = pool_res[e->res];
                if (!chance(0.1)) {
                        i = pick(p->ips, p->ip_cnt, POOL_IPS, p->novelty);
                        sp->ip = pool_ip[i];
                        e->net = pool_ip_net[i];
                        e->asn = c->asn ? pool_ip_asn[i] : 0;
                }
                if (chance(0.7)) {
                        e->uscope = pick(p->scopes, p->scope_cnt, POOL_SCOPES,
                                         p->novelty);
                        sp->scope = pool_scope[e->uscope];
                }
        } else {
                sp->type = e->type = MG_EVENT_SIGNAL;
                sp->kind = e->kind = chance(0.25)
                                             ? MG_SIGNAL_RELEASE
                                             : (enum mg_signal_kind)rnd_below(
                                                       3);
                sp->severity = e->severity = rnd_below(101);
        }
}

/* Configuration A: defaults with short warm-ups so every signal can fire
 * in a few hundred events. B: small tables and windows, low levels. */
static void conf_variants(struct mg_scoring_conf *a,
                          struct mg_scoring_conf *b) {
        load_defaults(a);
        a->sig[MG_SIG_NEW_SOURCE].warmup = 10;
        a->sig[MG_SIG_RATE_SPIKE].warmup = 30;
        a->sig[MG_SIG_OFF_HOURS].warmup = 40;
        a->sig[MG_SIG_SCOPE_EXPANSION].warmup = 10;
        a->sig[MG_SIG_NEW_RESOURCE].warmup = 10;
        a->sig[MG_SIG_DORMANT_REACTIVATION].warmup = 10;
        a->sig[MG_SIG_SHARED_IDENTITY].warmup = 10;
        a->sig[MG_SIG_TOKEN_CHAIN].warmup = 5;
        *b = *a;
        b->sig[MG_SIG_NEW_SOURCE].threshold = 3;
        b->new_source_nearby = 4;
        b->sig[MG_SIG_NEW_RESOURCE].threshold = 4;
        b->sig[MG_SIG_SCOPE_EXPANSION].threshold = 3;
        b->sig[MG_SIG_SHARED_IDENTITY].threshold = 2;
        b->sig[MG_SIG_TOKEN_CHAIN].threshold = 2;
        b->sig[MG_SIG_AUTH_FAILURES].threshold = 3;
        b->sig[MG_SIG_OFF_HOURS].threshold = 0.01;
        b->sig[MG_SIG_SECRET_EXPOSED].threshold = 30;
        b->failure_window_ms = 2 * MIN_MS;
        b->dormant_after_ms = 2 * DAY_MS;
        b->late_bound_ms = 10 * MIN_MS;
        b->risk_half_life_ms = HOUR_MS;
        b->rate_half_life_ms = 30 * MIN_MS;
        b->scope_unused_after_ms = 3 * DAY_MS;
        b->level_medium = 10;
        b->level_high = 20;
        b->level_critical = 40;
}

/* A new_source firing of event e names the AS exactly when the naive
 * model found the AS new too, and says "near" exactly when the model
 * gave it the nearby weight. (Its reason is missing only when five
 * larger ones crowd it out.) */
static void check_source_detail(const struct nev *e, struct cmp_stats *st) {
        static const char near_text[] = ", near a known network";
        const char *d = reason_detail(MG_SIG_NEW_SOURCE);
        char want[40];
        size_t len;
        int said_near;

        st->source_far += !e->asn_novel && !e->near;
        st->source_near += e->near != 0;
        st->source_near_v6 += e->near == 1 && pool_ip_v6[e->net];
        st->source_near_asn += e->near == 2;
        if (!d)
                return;
        len = strlen(d);
        said_near = len > strlen(near_text) &&
                    !strcmp(d + len - strlen(near_text), near_text);
        if (said_near != (e->near != 0))
                fail_msg("new_source \"%s\": the model says %s", d,
                         e->near ? "near" : "not near");
        if (e->asn_novel) {
                snprintf(want, sizeof(want), "AS%u never seen (", e->asn);
                if (strncmp(d, want, strlen(want)))
                        fail_msg("new_source \"%s\", want \"%s...\"", d,
                                 want);
                st->asn_named++;
        } else {
                if (!strncmp(d, "AS", 2))
                        fail_msg("new_source \"%s\" names an AS the "
                                 "identity has used",
                                 d);
                st->net_named += e->asn != 0;
        }
}

/* The baseline's AS table is the 8 most recently seen ASes, with the
 * time each was last seen. */
static void check_asn_table(const struct mg_scoring_conf *c, int64_t now,
                            struct cmp_stats *st) {
        int vals[K_ASNS], cnt, i;
        int64_t last[K_ASNS];
        char *text, when[40];
        json_t *root, *asns, *item;

        cnt = recent(touch_asns, nv_cnt, K_ASNS, vals, last);
        text = mg_baseline_to_json(bl, c, now);
        assert_non_null(text);
        root = json_loads(text, 0, NULL);
        assert_non_null(root);
        asns = json_object_get(root, "asns");
        assert_int_equal(json_array_size(asns), cnt);
        for (i = 0; i < cnt; i++) {
                item = json_array_get(asns, (size_t)i);
                assert_int_equal(json_integer_value(json_object_get(item,
                                                                    "asn")),
                                 vals[i]);
                mg_time_format_rfc3339(last[i], when, sizeof(when));
                assert_string_equal(json_string_value(json_object_get(
                                            item, "last_seen")),
                                    when);
        }
        json_decref(root);
        free(text);
        st->asn_tables++;
}

static void run_identity(const struct mg_scoring_conf *c, int events,
                         struct cmp_stats *st) {
        struct profile p;
        struct spec sp;
        struct mg_risk risk;
        enum mg_risk_level lvl;
        unsigned undecided;
        uint64_t counts[MG_EVENT_TYPE__CNT] = {0};
        int64_t newest = 0, later;
        double score;
        mg_err_t err;
        int k, s, lvl_undecided, sc;

        profile_init(&p, c);
        mg_baseline_init(bl);
        nv_cnt = 0;
        for (k = 0; k < events; k++) {
                gen_event(&p, &sp, &nv[nv_cnt]);
                build(&sp, &ev);
                err = mg_baseline_apply(bl, c, &ev, &res);
                if (nv_cnt && sp.ts < newest - c->late_bound_ms) {
                        assert_int_equal(err, MG_ERR_LATE);
                        assert_false(res.applied);
                        st->late++;
                        continue;
                }
                assert_int_equal(err, MG_OK);
                nv[nv_cnt].te = sp.ts > newest ? sp.ts : newest;
                nv[nv_cnt].how = naive_how(sp.ts);
                newest = nv[nv_cnt].te;
                counts[sp.type]++;
                undecided = 0;
                naive_eval(c, nv_cnt, &undecided);
                nv_cnt++;
                st->events++;

                if ((res.fired & ~undecided) !=
                    (nv[nv_cnt - 1].fired & ~undecided))
                        fail_msg("event %d (type %s at %lld): fired 0x%x, "
                                 "naive 0x%x",
                                 k, mg_event_type_names[sp.type],
                                 (long long)sp.ts, res.fired,
                                 nv[nv_cnt - 1].fired);
                if (undecided) {
                        st->undecided++;
                        /* Follow the baseline where the naive model could
                         * not decide, so later sums agree. */
                        for (s = 0; s < MG_SIG__CNT; s++) {
                                if (!(undecided & BIT(s)))
                                        continue;
                                if (res.fired & BIT(s)) {
                                        nv[nv_cnt - 1].fired |= BIT(s);
                                        nv[nv_cnt - 1].points[s] =
                                                c->sig[s].weight;
                                } else {
                                        nv[nv_cnt - 1].fired &= ~BIT(s);
                                }
                        }
                }
                for (s = 0; s < MG_SIG__CNT; s++)
                        st->fired[s] += !!(res.fired & BIT(s));
                if (res.fired & BIT(MG_SIG_NEW_SOURCE))
                        check_source_detail(&nv[nv_cnt - 1], st);
                st->by_day += nv[nv_cnt - 1].by_day;
                st->by_day_fired += nv[nv_cnt - 1].by_day &&
                                    (res.fired & BIT(MG_SIG_OFF_HOURS));
                st->shared_high += !!(res.fired &
                                      BIT(MG_SIG_SHARED_IDENTITY));
                st->shared_held_peak += !!(nv[nv_cnt - 1].shared_held &
                                           SHARED_HELD_PEAK);
                st->shared_held_novel += !!(nv[nv_cnt - 1].shared_held &
                                            SHARED_HELD_NOVEL);

                score = naive_score(c, nv_cnt, newest);
                if (!near(res.risk.score, score, 1e-6) &&
                    fabs(res.risk.score - score) > 1e-9)
                        fail_msg("event %d: score %.12g, naive %.12g", k,
                                 res.risk.score, score);
                lvl = naive_level(c, score, &lvl_undecided);
                if (!lvl_undecided)
                        assert_int_equal(res.risk.level, lvl);
                assert_int_equal(res.risk.ts_ms, newest);
                for (s = 0; s < MG_EVENT_TYPE__CNT; s++)
                        assert_int_equal(mg_baseline_event_count(
                                                 bl, (enum mg_event_type)s),
                                         counts[s]);

                /* Now and then: risk later, scope_unused, the AS table, a
                 * round trip. */
                if (k % 5 == 0 && c->asn)
                        check_asn_table(c, newest, st);
                if (k % 5 == 0) {
                        later = newest + rnd_below(20 * 24) * HOUR_MS;
                        mg_baseline_risk(bl, c, later, &risk);
                        score = naive_score(c, nv_cnt, later);
                        if (!near(risk.score, score, 1e-6) &&
                            fabs(risk.score - score) > 1e-9)
                                fail_msg("risk later: %.12g, naive %.12g",
                                         risk.score, score);
                        for (sc = 0; sc < 3; sc++) {
                                int scope = sc == 0 ? p.scopes[0]
                                                    : rnd_below(POOL_SCOPES);

                                later = newest +
                                        rnd_below(60 * 24) * HOUR_MS;
                                assert_int_equal(
                                        mg_baseline_scope_unused(
                                                bl, c, pool_scope[scope],
                                                later),
                                        naive_scope_unused(c, nv_cnt, scope,
                                                           later));
                                st->unused_checks++;
                        }
                }
                if (k % 23 == 0) {
                        roundtrip(bl);
                        st->roundtrips++;
                }
        }
}

static void test_reference_model(void **state) {
        struct mg_scoring_conf cv[4];
        struct cmp_stats st;
        int id, s;

        (void)state;
        memset(&st, 0, sizeof(st));
        pools_init();
        conf_variants(&cv[0], &cv[1]);
        /* The same two with AS data. */
        cv[2] = cv[0];
        cv[3] = cv[1];
        cv[2].asn = cv[3].asn = asn_tab = test_asn();
        rng = 20261116;
        for (id = 0; id < 200; id++)
                run_identity(&cv[id % 4], 250 + rnd_below(150), &st);
        print_message("reference model: %ld events (%ld late refused), %ld "
                      "with a bit at its threshold, %ld scope_unused checks, "
                      "%ld round trips\n",
                      st.events, st.late, st.undecided, st.unused_checks,
                      st.roundtrips);
        print_message("  new_source with AS data: %ld named a new AS, %ld "
                      "a new network of a known AS; %ld AS tables "
                      "compared\n",
                      st.asn_named, st.net_named, st.asn_tables);
        assert_true(st.asn_named >= 50 && st.net_named >= 50 &&
                    st.asn_tables >= 1000);
        print_message("  new_source: %ld far (full weight), %ld near "
                      "(nearby weight; %ld of them IPv6, %ld near by the "
                      "AS alone)\n",
                      st.source_far, st.source_near, st.source_near_v6,
                      st.source_near_asn);
        print_message("  off_hours by hour of day (2-7 days of history): "
                      "%ld events judged, %ld fired\n",
                      st.by_day, st.by_day_fired);
        print_message("  shared_identity: %ld fired past the identity's "
                      "high; held %ld times by the high, %ld by new_source "
                      "novelty\n",
                      st.shared_high, st.shared_held_peak,
                      st.shared_held_novel);
        /* Every new path was taken, more than a few times. */
        assert_true(st.source_far >= 20 && st.source_near >= 20 &&
                    st.source_near_v6 >= 20 && st.source_near_asn >= 20);
        assert_true(st.by_day >= 20 && st.by_day_fired >= 20);
        assert_true(st.shared_high >= 20 && st.shared_held_peak >= 20 &&
                    st.shared_held_novel >= 20);
        for (s = 0; s < MG_SIG__CNT; s++) {
                print_message("  %-22s fired %ld times\n", mg_signal_names[s],
                              st.fired[s]);
                /* Every signal was exercised. */
                assert_true(st.fired[s] >= 5);
        }
        assert_true(st.undecided * 1000 < st.events);
        assert_true(st.late > 100);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_conf_table),
                cmocka_unit_test_setup_teardown(test_new_source, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_new_source_warmup_and_k,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_new_source_nearby, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_new_source_asn, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_new_source_asn_eviction,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_rate_spike, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_rate_spike_quiet, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_rate_spike_bursty, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_off_hours, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_off_hours_days, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_off_hours_round_the_clock,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_auth_failures, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_auth_failures_quiet,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(
                        test_scope_expansion_armed_by_auths, setup, teardown),
                cmocka_unit_test_setup_teardown(test_scope_expansion, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_new_resource, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_dormant, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_shared_identity, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_shared_identity_networks,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_shared_identity_quiet,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_token_chain, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_token_chain_quiet, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_external_signals, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_risk_reasons, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_late_events, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_scope_unused, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_encode_decode, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_decode_impossible_rate,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_decode_rate_after_pause,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_decode_shared_peaks,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_decode_version_1, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_blob_size_typical, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_to_json, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_to_json_sharing, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_reference_model, setup,
                                                teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
