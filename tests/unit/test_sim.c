/*
 * test_sim.c — unit tests of the traffic simulator (analysis/mg_sim.c).
 *
 * Determinism is checked by hashing every JSON line and label of two runs
 * with the same options (identical) and of a run with another seed
 * (different); every event of the first also makes a byte-identical round
 * trip through mg_event_from_json(). One 2-day x 300-identity run is then
 * checked event by event — time order, validation — and, in a second pass
 * once the labels are known, attack by attack: each label's identity has
 * events in its window, and the characteristic of its attack type is
 * there in the events themselves (a never-seen /24 for a stolen token, a
 * burst of failures for stuffing, a deeper token exchange asking for
 * scopes never requested, large transfers in an hour of week the identity
 * is otherwise never active in, a long silence before a reactivation, a
 * scanner's signal before use from a new network). Every identity kind and
 * attack type must appear.
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

#include "mg_sim.h"

#define DAY_MS  86400000LL
#define HOUR_MS 3600000LL

/* Events are 17 KiB: keep them off the stack. */
static struct mg_event ev2;
static char errstr[512];

/*
 * Pass 1: hashes, order, validation, round trip, labels.
 */

struct run {
        int64_t end_ms;             /* end of the run, "now" for checks */
        uint64_t hash;              /* FNV-1a of every JSON line */
        uint64_t label_hash;        /* ... and of every label line */
        uint64_t events;            /* events seen */
        int64_t last_ts;            /* previous event's time */
        int roundtrip;              /* also parse and re-format each line */
        int kinds[MG_IDENTITY_KIND__CNT]; /* auth events by kind */
        struct mg_sim_label *labels; /* copies; identity strdup'd */
        size_t label_cnt, label_cap;
        uint64_t stop_after;        /* stop the run after this many, or 0 */
};

static uint64_t fnv1a(uint64_t h, const char *s, size_t len) {
        size_t i;

        for (i = 0; i < len; i++) {
                h ^= (unsigned char)s[i];
                h *= 0x100000001b3ULL;
        }
        return h;
}

static int run_emit_cb(void *opaque, const struct mg_event *ev) {
        struct run *r = opaque;
        char *line = mg_event_to_json(ev), *again;
        size_t len;

        assert_non_null(line);
        len = strlen(line);
        r->hash = fnv1a(r->hash, line, len + 1); /* with its NUL */
        if (ev->ts_ms < r->last_ts)
                fail_msg("event %" PRIu64 " goes back in time: %s",
                         r->events, line);
        r->last_ts = ev->ts_ms;
        if (mg_event_validate(ev, r->end_ms, errstr, sizeof(errstr)))
                fail_msg("invalid event: %s: %s", errstr, line);
        if (ev->type == MG_EVENT_AUTH)
                r->kinds[ev->u.auth.identity_kind]++;
        if (r->roundtrip) {
                if (mg_event_from_json(&ev2, line, len, r->end_ms, errstr,
                                       sizeof(errstr)))
                        fail_msg("does not parse back: %s: %s", errstr, line);
                again = mg_event_to_json(&ev2);
                assert_non_null(again);
                assert_string_equal(again, line);
                free(again);
        }
        free(line);
        r->events++;
        return r->stop_after && r->events >= r->stop_after;
}

static void run_label_cb(void *opaque, const struct mg_sim_label *lab) {
        struct run *r = opaque;
        char *line = mg_sim_label_to_json(lab);

        assert_non_null(line);
        r->label_hash = fnv1a(r->label_hash, line, strlen(line) + 1);
        free(line);
        if (r->label_cnt == r->label_cap) {
                r->label_cap = r->label_cap ? r->label_cap * 2 : 16;
                r->labels = realloc(r->labels,
                                    r->label_cap * sizeof(*r->labels));
                assert_non_null(r->labels);
        }
        r->labels[r->label_cnt] = *lab;
        r->labels[r->label_cnt].identity = strdup(lab->identity);
        assert_non_null(r->labels[r->label_cnt].identity);
        r->label_cnt++;
}

static void run_free(struct run *r) {
        size_t i;

        for (i = 0; i < r->label_cnt; i++)
                free((char *)r->labels[i].identity);
        free(r->labels);
}

static void run_sim(const struct mg_sim_opts *opts, struct run *r,
                    struct mg_sim_stats *stats) {
        mg_err_t err;

        r->end_ms = opts->start_ms + opts->days * DAY_MS;
        r->hash = r->label_hash = 0xcbf29ce484222325ULL;
        r->last_ts = INT64_MIN;
        err = mg_sim_run(opts, run_emit_cb, run_label_cb, r, stats, errstr,
                         sizeof(errstr));
        if (err)
                fail_msg("mg_sim_run: %s", errstr);
}

static void small_opts(struct mg_sim_opts *opts, uint64_t seed) {
        mg_sim_opts_default(opts);
        opts->seed = seed;
        opts->days = 2;
        opts->identities = 60;
        opts->attack_rate = 0.2;
}

static void test_deterministic(void **state) {
        struct mg_sim_opts opts;
        struct mg_sim_stats s1, s2, s3;
        struct run a, b, c;
        int k;

        (void)state;
        memset(&a, 0, sizeof(a));
        memset(&b, 0, sizeof(b));
        memset(&c, 0, sizeof(c));
        small_opts(&opts, 42);
        /* Every event of this run (all profiles, two attacks of each
         * type) also goes through mg_event_from_json() and back. */
        a.roundtrip = 1;
        run_sim(&opts, &a, &s1);
        run_sim(&opts, &b, &s2);
        assert_true(a.events > 1000);
        for (k = 0; k < MG_SIM_PROFILE__CNT; k++)
                assert_true(s1.identities[k] > 0);
        for (k = 0; k < MG_SIM_ATTACK__CNT; k++)
                assert_int_equal(s1.attacks[k], 2);
        assert_int_equal(a.label_cnt, 12); /* 60 x 0.2 */
        assert_int_equal(a.events, b.events);
        assert_int_equal(a.hash, b.hash);
        assert_int_equal(a.label_cnt, b.label_cnt);
        assert_int_equal(a.label_hash, b.label_hash);
        assert_memory_equal(&s1, &s2, sizeof(s1));

        small_opts(&opts, 43);
        run_sim(&opts, &c, &s3);
        assert_int_equal(c.label_cnt, 12);
        assert_int_not_equal(a.hash, c.hash);
        assert_int_not_equal(a.label_hash, c.label_hash);
        run_free(&a);
        run_free(&b);
        run_free(&c);
}

/*
 * Pass 2: what each attack looks like in the events.
 */

#define NETS_MAX   128
#define SCOPES_MAX 256

struct token_depth {
        char id[64]; /* token_id */
        int depth;   /* 0 for a root token, parent's + 1 when exchanged */
};

/* What one attacked identity's events show about its label. */
struct lab_check {
        const struct mg_sim_label *lab;
        uint64_t before, in_window;       /* events before / in the window */
        int64_t last_before;              /* last event before start */
        char nets[NETS_MAX][48];          /* networks seen before start */
        int net_cnt;
        char scopes[SCOPES_MAX][64];      /* scopes requested before */
        int scope_cnt;
        struct token_depth *tokens;       /* every token and its depth */
        size_t token_cnt, token_cap;
        int max_depth_before;             /* deepest exchange before */
        int new_net_in_window;            /* a never-seen network used */
        int new_net_after_signal;         /* ... after a scanner signal */
        int signal_at_start;              /* secret_exposed at start */
        int failures;                     /* failed auths in window */
        int escalated;                    /* deeper exchange, new scope */
        int big_transfers;                /* usage >= 1 MB in window */
        int hour_clash;                   /* start's hour used outside */
};

struct check_run {
        struct run *r;                 /* pass 1, with the labels */
        struct lab_check *checks;      /* one per label */
};

static int how(int64_t ts) {
        return (int)((ts / DAY_MS + 3) % 7) * 24 + (int)(ts % DAY_MS / HOUR_MS);
}

/* The /24 of an IPv4 address or the /64 of one of ours in IPv6. */
static void net_of(const char *ip, char *out, size_t size) {
        const char *cut = strchr(ip, ':') ? strstr(ip, "::")
                                          : strrchr(ip, '.');
        size_t n = cut ? (size_t)(cut - ip) : strlen(ip);

        snprintf(out, size, "%.*s", (int)n, ip);
}

static int has(char (*set)[48], int cnt, const char *s) {
        int i;

        for (i = 0; i < cnt; i++)
                if (!strcmp(set[i], s))
                        return 1;
        return 0;
}

static int has_scope(const struct lab_check *lc, const char *s) {
        int i;

        for (i = 0; i < lc->scope_cnt; i++)
                if (!strcmp(lc->scopes[i], s))
                        return 1;
        return 0;
}

static int token_depth(const struct lab_check *lc, const char *id) {
        size_t i;

        for (i = 0; i < lc->token_cnt; i++)
                if (!strcmp(lc->tokens[i].id, id))
                        return lc->tokens[i].depth;
        return 0;
}

static void token_add(struct lab_check *lc, const char *id, int depth) {
        if (lc->token_cnt == lc->token_cap) {
                lc->token_cap = lc->token_cap ? lc->token_cap * 2 : 64;
                lc->tokens = realloc(lc->tokens,
                                     lc->token_cap * sizeof(*lc->tokens));
                assert_non_null(lc->tokens);
        }
        snprintf(lc->tokens[lc->token_cnt].id,
                 sizeof(lc->tokens[lc->token_cnt].id), "%s", id);
        lc->tokens[lc->token_cnt++].depth = depth;
}

static int check_emit_cb(void *opaque, const struct mg_event *ev) {
        struct check_run *cr = opaque;
        struct lab_check *lc = NULL;
        const struct mg_sim_label *lab;
        const char *ip = NULL;
        char net[48];
        size_t i;
        int in, before, k;

        for (i = 0; i < cr->r->label_cnt; i++)
                if (!strcmp(cr->r->labels[i].identity, ev->identity)) {
                        lc = &cr->checks[i];
                        break;
                }
        if (!lc)
                return 0;
        lab = lc->lab;
        in = ev->ts_ms >= lab->start_ms && ev->ts_ms <= lab->end_ms;
        before = ev->ts_ms < lab->start_ms;
        if (in)
                lc->in_window++;
        if (before) {
                lc->before++;
                lc->last_before = ev->ts_ms;
        }
        if (!in && how(ev->ts_ms) == how(lab->start_ms))
                lc->hour_clash = 1;
        if (ev->type == MG_EVENT_AUTH)
                ip = ev->u.auth.source_ip;
        else if (ev->type == MG_EVENT_USAGE)
                ip = ev->u.usage.source_ip;
        if (ip) {
                net_of(ip, net, sizeof(net));
                if (before && !has(lc->nets, lc->net_cnt, net)) {
                        assert_true(lc->net_cnt < NETS_MAX);
                        snprintf(lc->nets[lc->net_cnt++], sizeof(net), "%s",
                                 net);
                }
                if (in && !has(lc->nets, lc->net_cnt, net)) {
                        lc->new_net_in_window = 1;
                        if (lc->signal_at_start)
                                lc->new_net_after_signal = 1;
                }
        }
        if (ev->type == MG_EVENT_SIGNAL && ev->ts_ms == lab->start_ms &&
            ev->u.signal.kind == MG_SIGNAL_SECRET_EXPOSED &&
            !strcmp(ev->u.signal.source, "secret-scanner") &&
            ev->u.signal.severity >= 70)
                lc->signal_at_start = 1;
        if (ev->type == MG_EVENT_USAGE && in && ev->u.usage.bytes >= 1000000)
                lc->big_transfers++;
        if (ev->type == MG_EVENT_AUTH) {
                const struct mg_event_auth *auth = &ev->u.auth;
                int depth = 0, fresh = 0;

                if (in && auth->outcome == MG_OUTCOME_FAILURE)
                        lc->failures++;
                if (auth->parent_token_id)
                        depth = token_depth(lc, auth->parent_token_id) + 1;
                if (auth->token_id)
                        token_add(lc, auth->token_id, depth);
                for (k = 0; k < auth->scope_cnt; k++) {
                        if (has_scope(lc, auth->scopes[k]))
                                continue;
                        if (before) {
                                assert_true(lc->scope_cnt < SCOPES_MAX);
                                snprintf(lc->scopes[lc->scope_cnt++], 64,
                                         "%s", auth->scopes[k]);
                        } else {
                                fresh = 1;
                        }
                }
                if (before && depth > lc->max_depth_before)
                        lc->max_depth_before = depth;
                if (in && fresh && depth >= 2 &&
                    depth > lc->max_depth_before &&
                    auth->grant_type == MG_GRANT_TOKEN_EXCHANGE)
                        lc->escalated = 1;
        }
        return 0;
}

static void test_attacks_and_population(void **state) {
        struct mg_sim_opts opts;
        struct mg_sim_stats stats, stats2;
        struct check_run cr;
        struct run r;
        int seen[MG_SIM_ATTACK__CNT] = {0}, k;
        size_t i, j;
        uint64_t total = 0;
        mg_err_t err;

        (void)state;
        memset(&r, 0, sizeof(r));
        mg_sim_opts_default(&opts);
        opts.seed = 7;
        opts.days = 2;
        opts.identities = 300;
        opts.attack_rate = 0.1;
        run_sim(&opts, &r, &stats);

        /* Population and counters. */
        for (k = 0; k < MG_EVENT_TYPE__CNT; k++)
                total += stats.events[k];
        assert_int_equal(total, r.events);
        assert_true(r.events > 300 * 2 * 50);
        for (k = MG_IDENTITY_KIND_SERVICE_ACCOUNT;
             k <= MG_IDENTITY_KIND_WORKLOAD; k++) {
                if (!r.kinds[k] || !stats.kinds[k])
                        fail_msg("no identity of kind %s",
                                 mg_identity_kind_names[k]);
        }
        for (k = 0; k < MG_SIM_PROFILE__CNT; k++)
                assert_true(stats.identities[k] > 0);
        assert_int_equal(stats.attacks_unplaced, 0);
        assert_int_equal(r.label_cnt, 30);

        /* Labels: one per attacked identity, inside the run, after the
         * history, all types evenly. */
        for (i = 0; i < r.label_cnt; i++) {
                const struct mg_sim_label *lab = &r.labels[i];

                seen[lab->attack]++;
                assert_true(lab->start_ms <= lab->end_ms);
                assert_true(lab->start_ms >= opts.start_ms + DAY_MS);
                assert_true(lab->end_ms < r.end_ms);
                assert_true(lab->events >= 2);
                for (j = 0; j < i; j++)
                        assert_string_not_equal(lab->identity,
                                                r.labels[j].identity);
        }
        for (k = 0; k < MG_SIM_ATTACK__CNT; k++) {
                assert_int_equal(seen[k], 5);
                assert_int_equal(stats.attacks[k], 5);
        }

        /* Pass 2: the same run again (same events, as checked by the
         * hash), each event against the labels. */
        cr.r = &r;
        cr.checks = calloc(r.label_cnt, sizeof(*cr.checks));
        assert_non_null(cr.checks);
        for (i = 0; i < r.label_cnt; i++) {
                cr.checks[i].lab = &r.labels[i];
                cr.checks[i].last_before = INT64_MIN;
        }
        err = mg_sim_run(&opts, check_emit_cb, NULL, &cr, &stats2, errstr,
                         sizeof(errstr));
        assert_int_equal(err, MG_OK);
        assert_int_equal(stats2.events[MG_EVENT_USAGE],
                         stats.events[MG_EVENT_USAGE]);
        for (i = 0; i < r.label_cnt; i++) {
                struct lab_check *lc = &cr.checks[i];
                const struct mg_sim_label *lab = lc->lab;
                const char *what = mg_sim_attack_names[lab->attack];

                print_message("%-22s %-48s window %6" PRIu64
                              " events, %3d failures, %3d >=1MB\n",
                              what, lab->identity, lc->in_window,
                              lc->failures, lc->big_transfers);
                if (lc->in_window < lab->events || lc->before == 0)
                        fail_msg("%s on %s: %" PRIu64 " events in window "
                                 "(label says %" PRIu64 "), %" PRIu64
                                 " before",
                                 what, lab->identity, lc->in_window,
                                 lab->events, lc->before);
                switch (lab->attack) {
                case MG_SIM_ATTACK_STOLEN_TOKEN:
                        assert_true(lc->new_net_in_window);
                        break;
                case MG_SIM_ATTACK_SCOPE_ESCALATION:
                        assert_true(lc->escalated);
                        break;
                case MG_SIM_ATTACK_CREDENTIAL_STUFFING:
                        assert_true(lc->failures >= 20);
                        break;
                case MG_SIM_ATTACK_OFFHOURS_EXFILTRATION:
                        assert_false(lc->hour_clash);
                        assert_true(lc->big_transfers >= 40);
                        break;
                case MG_SIM_ATTACK_DORMANT_REACTIVATION:
                        /* Silent for hours before, active before that. */
                        assert_true(lc->last_before <
                                    lab->start_ms - 4 * HOUR_MS);
                        break;
                case MG_SIM_ATTACK_LEAKED_SECRET:
                        assert_true(lc->signal_at_start);
                        assert_true(lc->new_net_after_signal);
                        break;
                default:
                        fail_msg("unknown attack %d", lab->attack);
                }
                free(lc->tokens);
        }
        free(cr.checks);
        run_free(&r);
}

/*
 * Options, mix, stopping, label format.
 */

static void expect_bad_opts(const struct mg_sim_opts *opts,
                            const char *want) {
        struct run r;
        mg_err_t err;

        memset(&r, 0, sizeof(r));
        errstr[0] = '\0';
        err = mg_sim_run(opts, run_emit_cb, run_label_cb, &r, NULL, errstr,
                         sizeof(errstr));
        assert_int_equal(err, MG_ERR_INVALID);
        if (!strstr(errstr, want))
                fail_msg("errstr \"%s\" does not name %s", errstr, want);
        assert_int_equal(r.events, 0);
}

static void test_bad_options(void **state) {
        struct mg_sim_opts opts;
        int k;

        (void)state;
        mg_sim_opts_default(&opts);
        opts.days = 0;
        expect_bad_opts(&opts, "days");
        mg_sim_opts_default(&opts);
        opts.days = MG_SIM_DAYS_MAX + 1;
        expect_bad_opts(&opts, "days");
        mg_sim_opts_default(&opts);
        opts.identities = 0;
        expect_bad_opts(&opts, "identities");
        mg_sim_opts_default(&opts);
        opts.attack_rate = 1.5;
        expect_bad_opts(&opts, "attack_rate");
        mg_sim_opts_default(&opts);
        opts.start_ms = 1000; /* seconds mistaken for ms, or worse */
        expect_bad_opts(&opts, "start");
        mg_sim_opts_default(&opts);
        for (k = 0; k < MG_SIM_PROFILE__CNT; k++)
                opts.mix[k] = 0;
        expect_bad_opts(&opts, "mix");
        mg_sim_opts_default(&opts);
        opts.mix[MG_SIM_PROFILE_CI] = -1;
        expect_bad_opts(&opts, "ci");
}

static void test_mix_parse(void **state) {
        double mix[MG_SIM_PROFILE__CNT] = {1, 1, 1, 1, 1, 1, 1};

        (void)state;
        assert_int_equal(mg_sim_mix_parse("agent=30,dormant=0", mix, errstr,
                                          sizeof(errstr)),
                         MG_OK);
        assert_true(mix[MG_SIM_PROFILE_AGENT] == 30);
        assert_true(mix[MG_SIM_PROFILE_DORMANT] == 0);
        assert_true(mix[MG_SIM_PROFILE_CI] == 1);
        assert_int_equal(mg_sim_mix_parse("robot=3", mix, errstr,
                                          sizeof(errstr)),
                         MG_ERR_INVALID);
        assert_non_null(strstr(errstr, "'robot': unknown profile"));
        assert_int_equal(mg_sim_mix_parse("ci=3,agent", mix, errstr,
                                          sizeof(errstr)),
                         MG_ERR_INVALID);
        assert_non_null(strstr(errstr, "'agent': expected NAME=WEIGHT"));
        assert_int_equal(mg_sim_mix_parse("ci=lots", mix, errstr,
                                          sizeof(errstr)),
                         MG_ERR_INVALID);
        assert_non_null(strstr(errstr, "'ci=lots': weight"));
        assert_int_equal(mg_sim_mix_parse("ci=-2", mix, errstr,
                                          sizeof(errstr)),
                         MG_ERR_INVALID);
        assert_int_equal(mg_sim_mix_parse("", mix, errstr, sizeof(errstr)),
                         MG_ERR_INVALID);
}

/* A mix of one profile makes only that kind; dormant ones with no
 * attacks go silent for good after the early part of the run. */
static void test_mix_applies(void **state) {
        struct mg_sim_opts opts;
        struct mg_sim_stats stats;
        struct run r;
        int k;

        (void)state;
        memset(&r, 0, sizeof(r));
        small_opts(&opts, 5);
        for (k = 0; k < MG_SIM_PROFILE__CNT; k++)
                opts.mix[k] = 0;
        opts.mix[MG_SIM_PROFILE_AGENT] = 1;
        opts.identities = 20;
        opts.attack_rate = 0.3; /* 6: offhours placed, dormant not */
        run_sim(&opts, &r, &stats);
        assert_int_equal(stats.identities[MG_SIM_PROFILE_AGENT], 20);
        assert_int_equal(stats.kinds[MG_IDENTITY_KIND_AI_AGENT], 20);
        for (k = 0; k < MG_IDENTITY_KIND__CNT; k++)
                if (k != MG_IDENTITY_KIND_AI_AGENT)
                        assert_int_equal(r.kinds[k], 0);
        /* No dormant identity to reactivate: that attack is not placed. */
        assert_int_equal(stats.attacks_unplaced, 1);
        assert_int_equal(r.label_cnt, 5);
        run_free(&r);

        memset(&r, 0, sizeof(r));
        for (k = 0; k < MG_SIM_PROFILE__CNT; k++)
                opts.mix[k] = 0;
        opts.mix[MG_SIM_PROFILE_DORMANT] = 1;
        opts.attack_rate = 0;
        opts.days = 4; /* history 2 days: silent by then */
        run_sim(&opts, &r, &stats);
        assert_true(r.events > 0);
        assert_true(r.last_ts < opts.start_ms + 2 * DAY_MS + HOUR_MS);
        assert_int_equal(r.label_cnt, 0);
        run_free(&r);
}

static void test_stop_early(void **state) {
        struct mg_sim_opts opts;
        struct mg_sim_stats stats;
        struct run r;

        (void)state;
        memset(&r, 0, sizeof(r));
        small_opts(&opts, 9);
        r.stop_after = 1000;
        run_sim(&opts, &r, &stats);
        assert_int_equal(r.events, 1000);
        assert_true(stats.stopped);
        assert_int_equal(stats.events[MG_EVENT_AUTH] +
                                 stats.events[MG_EVENT_USAGE] +
                                 stats.events[MG_EVENT_SIGNAL],
                         1000);
        run_free(&r);
}

static void test_label_json(void **state) {
        struct mg_sim_label lab = {"svc-\"odd\"", MG_SIM_ATTACK_STOLEN_TOKEN,
                                   1793931000000LL, 1793933713000LL, 12};
        char *line;

        (void)state;
        line = mg_sim_label_to_json(&lab);
        assert_non_null(line);
        assert_string_equal(line,
                            "{\"identity\":\"svc-\\\"odd\\\"\",\"attack\":"
                            "\"stolen_token\",\"start\":"
                            "\"2026-11-06T02:10:00.000Z\",\"end\":"
                            "\"2026-11-06T02:55:13.000Z\"}");
        free(line);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_deterministic),
                cmocka_unit_test(test_attacks_and_population),
                cmocka_unit_test(test_bad_options),
                cmocka_unit_test(test_mix_parse),
                cmocka_unit_test(test_mix_applies),
                cmocka_unit_test(test_stop_early),
                cmocka_unit_test(test_label_json),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
