/*
 * mg_sim.c — the traffic simulator: a population of non-human identities,
 * their sessions, and labelled attacks, generated lazily in time order.
 *
 * Design. Every identity has one or more *streams*: a source of sessions
 * with its own client_id, user agent, home networks and PRNG (a shared
 * identity has one stream per application, a CI runner with a nightly
 * build has a second one, an attacked identity gets an extra stream that
 * plays the attack). A stream generates one *session* at a time — a token
 * and its uses: a service's token lifetime, a CI job, an integration's
 * poll, an agent's burst — into a small per-stream heap of compact pending
 * events, and sets the time of its next session. A heap of streams keyed
 * by min(next session, earliest pending event) decides what happens next:
 * the stream at the top either generates its next session (every event of
 * which lies at or after that instant, so nothing earlier can appear
 * later) or emits its earliest pending event. Events therefore come out in
 * non-decreasing time order while memory holds only the population and
 * the sessions in progress, never the run.
 *
 * Determinism: one PRNG per stream (xoshiro256**, seeded through
 * splitmix64 from the run's seed and the stream's index) and one for the
 * population, consumed in an order fixed by the algorithm alone; ties in
 * time are broken by stream index and push order. Day-to-day rate
 * variation is a pure function of (stream, day). No clock, no rand().
 * Floating point goes through the C library's exp/log/cos, identical on
 * every run of the same build.
 *
 * Realism over convenience: benign traffic has failures (~0.5% of token
 * requests, retried), HTTP errors, day-to-day rate changes, user-agent
 * upgrades, the odd new /24 inside a home /16 and now and then a newly
 * adopted resource. Attacks are modelled as the intrusions they imitate,
 * not tuned to any detector: an attacker's networks come from address
 * ranges no benign identity uses; escalated scopes are ones no benign
 * session ever requests.
 *
 * Attacks start after a history of min(2 days, half the run), so
 * baselines exist, and end before the run does. Each label's start and
 * end are the times of its attack stream's first and last emitted event;
 * a leaked secret's label starts at the scanner's signal.
 *
 * Workload: millions of events per run; per event the cost is filling one
 * struct mg_event, a validation and the callback.
 */
#include "mg_sim.h"

#include <assert.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIM_SEC   1000LL
#define SIM_MIN   (60 * SIM_SEC)
#define SIM_HOUR  (60 * SIM_MIN)
#define SIM_DAY   (24 * SIM_HOUR)
#define SIM_WEEK_HOURS 168
#define SIM_NEVER INT64_MAX

/* Sizes of the per-identity and per-stream tables. Eight resources is more
 * than any benign profile starts with (agents: up to six) and leaves room
 * for resources adopted during the run. */
#define SIM_RES_MAX    8
#define SIM_NETS_MAX   8  /* home networks of one stream */
#define SIM_RECENT     8  /* recent primary tokens kept per identity */
#define SIM_SCOPES_MAX 16 /* scopes in one generated token request */
#define SIM_CHAIN_MAX  6  /* token exchange hops of an escalation */
#define SIM_NONE       0xffff

/* Longest a single attack lasts from its first to its last event; attack
 * start times are drawn so this fits before the end of the run. */
#define SIM_ATTACK_SPAN_MAX (4 * SIM_HOUR + 30 * SIM_MIN)

const char *const mg_sim_profile_names[MG_SIM_PROFILE__CNT] = {
        "service", "workload", "ci", "integration",
        "agent",   "shared",   "dormant"};

const char *const mg_sim_attack_names[MG_SIM_ATTACK__CNT] = {
        "stolen_token",          "scope_escalation",
        "credential_stuffing",   "offhours_exfiltration",
        "dormant_reactivation",  "leaked_secret"};

/* Default population mix, in percent (see mg_sim.h). */
static const double sim_mix_default[MG_SIM_PROFILE__CNT] = {25, 12, 20, 15,
                                                            12, 8,  8};

/*
 * Catalogues. Services own resources "api://<svc>" and scopes
 * "<svc>:read|write|admin"; CI deploys through "api://deploy/<svc>". The
 * last SIM_SVC_RESTRICTED services are never granted to a benign identity:
 * they are what an escalation reaches for.
 */
static const char *const sim_services[] = {
        "billing",   "ledger",  "payments", "invoices",  "orders",
        "inventory", "catalog", "search",   "users",     "accounts",
        "profiles",  "notify",  "email",    "reports",   "analytics",
        "metrics",   "logs",    "tickets",  "kb",        "crm",
        "calendar",  "files",   "storage",  "media",     "pricing",
        "shipping",  "fraud",   "recommendations", "chat", "webhooks",
        "config",    "flags",   "contracts", "payroll",  "docs",
        /* restricted */
        "secrets",   "iam",     "keys"};
#define SIM_SVC_CNT ((int)(sizeof(sim_services) / sizeof(*sim_services)))
#define SIM_SVC_RESTRICTED 3
#define SIM_SVC_OPEN (SIM_SVC_CNT - SIM_SVC_RESTRICTED)
#define SIM_SVC_SECRETS (SIM_SVC_CNT - 3)
#define SIM_SVC_IAM     (SIM_SVC_CNT - 2)
#define SIM_SVC_KEYS    (SIM_SVC_CNT - 1)

/* Resource codes: [0, SVC_CNT) API of a service, [SVC_CNT, 2*SVC_CNT)
 * its deploy endpoint. */
#define SIM_RES_DEPLOY(svc) ((uint16_t)(SIM_SVC_CNT + (svc)))
#define SIM_RES_IS_DEPLOY(r) ((r) >= SIM_SVC_CNT)

/* Scope codes: svc * 3 + level for services, then the CI scopes. */
enum sim_level { SIM_READ, SIM_WRITE, SIM_ADMIN };
#define SIM_SCOPE(svc, level) ((uint16_t)((svc) * 3 + (level)))
#define SIM_SCOPE_DEPLOY_READ    ((uint16_t)(SIM_SVC_CNT * 3))
#define SIM_SCOPE_DEPLOY_WRITE   ((uint16_t)(SIM_SVC_CNT * 3 + 1))
#define SIM_SCOPE_ARTIFACTS_READ ((uint16_t)(SIM_SVC_CNT * 3 + 2))
static const char *const sim_levels[] = {"read", "write", "admin"};

/* Actions: method and path template; API ones are formatted with the
 * service's name. */
enum sim_action {
        SIM_ACT_LIST,      /* GET /v1/<svc> */
        SIM_ACT_GET,       /* GET /v1/<svc>/:id */
        SIM_ACT_SEARCH,    /* GET /v1/<svc>/search */
        SIM_ACT_CHANGES,   /* GET /v1/<svc>/changes */
        SIM_ACT_CREATE,    /* POST /v1/<svc> */
        SIM_ACT_UPDATE,    /* PUT /v1/<svc>/:id */
        SIM_ACT_DELETE,    /* DELETE /v1/<svc>/:id */
        SIM_ACT_EXPORT,    /* GET /v1/<svc>/export */
        SIM_ACT_GRANT,     /* POST /v1/<svc>/roles/bindings */
        SIM_ACT_RELEASE,   /* POST /releases */
        SIM_ACT_RELEASE_GET, /* GET /releases/:id */
        SIM_ACT_ARTIFACT,  /* GET /artifacts/:id */
        SIM_ACT_ARTIFACT_PUT, /* PUT /artifacts/:id */
        SIM_ACT_DEPLOY,    /* POST /deployments */
        SIM_ACT_STATUS,    /* GET /deployments/:id/status */
        SIM_ACT__CNT
};

static const struct {
        const char *method; /* HTTP method */
        const char *path;   /* after "/v1/<svc>" (api) or the whole path */
        int api;            /* a service API call, not a deploy one */
} sim_actions[SIM_ACT__CNT] = {
        {"GET", "", 1},           {"GET", "/:id", 1},
        {"GET", "/search", 1},    {"GET", "/changes", 1},
        {"POST", "", 1},          {"PUT", "/:id", 1},
        {"DELETE", "/:id", 1},    {"GET", "/export", 1},
        {"POST", "/roles/bindings", 1},
        {"POST", "/releases", 0}, {"GET", "/releases/:id", 0},
        {"GET", "/artifacts/:id", 0}, {"PUT", "/artifacts/:id", 0},
        {"POST", "/deployments", 0},
        {"GET", "/deployments/:id/status", 0}};

/* Typical response size of each action (bytes, median of a log-normal). */
static const double sim_action_bytes[SIM_ACT__CNT] = {
        8000, 2000, 5000, 1500, 600, 400, 120, 20e6, 300,
        1200, 900,  15e6, 400,  800, 300};

/* Failure reasons: the benign ones first, then what a guessing attacker
 * sees. */
static const char *const sim_fail_reasons[] = {
        "invalid_client", "invalid_grant: assertion expired",
        "invalid_grant: clock skew", "temporarily_unavailable",
        "invalid_scope",
        /* attacker */
        "invalid_client: secret mismatch", "unauthorized_client"};
#define SIM_FAIL_BENIGN 5
#define SIM_FAIL_NONE   0xff

/* Names that make identities read like a real estate. */
static const char *const sim_roles[] = {
        "sync",   "worker",     "exporter", "api",      "indexer",
        "cron",   "gateway",    "reconciler", "consumer", "publisher",
        "backfill", "scheduler"};
#define SIM_ROLE_CNT ((int)(sizeof(sim_roles) / sizeof(*sim_roles)))
static const char *const sim_repos[] = {"service", "infra", "web", "deploy",
                                        "api",     "jobs",  "mobile-backend"};
#define SIM_REPO_CNT ((int)(sizeof(sim_repos) / sizeof(*sim_repos)))
static const char *const sim_vendors[] = {
        "salesforce", "zendesk", "slack",  "hubspot",   "workday",
        "netsuite",   "datadog", "snowflake", "jira",   "pagerduty",
        "okta",       "docusign"};
#define SIM_VENDOR_CNT ((int)(sizeof(sim_vendors) / sizeof(*sim_vendors)))
static const char *const sim_agents[] = {
        "support-copilot", "sales-assistant", "code-reviewer",
        "triage-bot",      "finance-analyst", "ops-runbook",
        "research-agent",  "hr-helper",       "data-steward"};
#define SIM_AGENT_CNT ((int)(sizeof(sim_agents) / sizeof(*sim_agents)))
static const char *const sim_apps[] = {"api", "batch", "ui", "worker",
                                       "cron", "reports", "mobile"};
#define SIM_APP_CNT ((int)(sizeof(sim_apps) / sizeof(*sim_apps)))

/* First octets: the clouds benign CI runners and vendors live in, and
 * hosting ranges attackers come from. Disjoint, and neither overlaps the
 * 10/8 of internal workloads, so an attacker's /24 is never a benign
 * identity's. */
static const uint8_t sim_cloud_octets[] = {13, 20, 34, 35, 40, 52, 54, 104};
static const uint8_t sim_attacker_octets[] = {5,   31,  45,  46,  77,
                                              89,  91,  141, 146, 176,
                                              185, 193, 194, 195, 212};

/* Attacker tooling; no benign user agent starts like any of these. */
static const struct {
        const char *head, *tail; /* around a version number */
} sim_attacker_uas[] = {
        {"curl/8.", ".0"},
        {"python-requests/2.", ".1"},
        {"Go-http-client/1.", ""},
        {"PostmanRuntime/7.", ".0"},
        {"Mozilla/5.0 (X11; Linux x86_64; rv:12", ".0) Gecko/20100101"}};
#define SIM_ATTACKER_UA_CNT \
        ((int)(sizeof(sim_attacker_uas) / sizeof(*sim_attacker_uas)))

/* Kind of each profile (shared and dormant ones are chosen per identity). */
static const enum mg_identity_kind sim_profile_kind[MG_SIM_PROFILE__CNT] = {
        MG_IDENTITY_KIND_SERVICE_ACCOUNT, MG_IDENTITY_KIND_WORKLOAD,
        MG_IDENTITY_KIND_CI_RUNNER,       MG_IDENTITY_KIND_INTEGRATION,
        MG_IDENTITY_KIND_AI_AGENT,        MG_IDENTITY_KIND_SERVICE_ACCOUNT,
        MG_IDENTITY_KIND_SERVICE_ACCOUNT};

/*
 * PRNG: xoshiro256** seeded through splitmix64 (Blackman and Vigna).
 */
struct sim_rng {
        uint64_t s[4]; /* state, never all zero */
};

static uint64_t sim_splitmix64(uint64_t *x) {
        uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

static void sim_rng_seed(struct sim_rng *r, uint64_t seed, uint64_t stream) {
        uint64_t x = seed ^ (stream * 0xd1342543de82ef95ULL);
        int i;

        for (i = 0; i < 4; i++)
                r->s[i] = sim_splitmix64(&x);
}

static uint64_t sim_rotl(uint64_t x, int k) {
        return (x << k) | (x >> (64 - k));
}

static uint64_t sim_rng_next(struct sim_rng *r) {
        uint64_t res = sim_rotl(r->s[1] * 5, 7) * 9, t = r->s[1] << 17;

        r->s[2] ^= r->s[0];
        r->s[3] ^= r->s[1];
        r->s[1] ^= r->s[2];
        r->s[0] ^= r->s[3];
        r->s[2] ^= t;
        r->s[3] = sim_rotl(r->s[3], 45);
        return res;
}

/* Uniform in [0, 1). */
static double sim_unit(struct sim_rng *r) {
        return (double)(sim_rng_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform in [0, n), n > 0 (Lemire's multiply-shift; the bias for the
 * small n used here is far below anything observable). */
static uint32_t sim_below(struct sim_rng *r, uint32_t n) {
        return (uint32_t)(((sim_rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* Uniform integer in [lo, hi]. */
static int64_t sim_range(struct sim_rng *r, int64_t lo, int64_t hi) {
        if (hi <= lo)
                return lo;
        return lo + (int64_t)(sim_unit(r) * (double)(hi - lo + 1));
}

static int sim_chance(struct sim_rng *r, double p) {
        return sim_unit(r) < p;
}

/* Exponential with the given mean. */
static double sim_exp(struct sim_rng *r, double mean) {
        return -mean * log(1.0 - sim_unit(r));
}

/* Standard normal (Box-Muller, one of the pair). */
static double sim_normal(struct sim_rng *r) {
        double u1 = 1.0 - sim_unit(r), u2 = sim_unit(r);

        return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* Log-normal with the given median and shape. */
static double sim_lognormal(struct sim_rng *r, double median, double sigma) {
        return median * exp(sigma * sim_normal(r));
}

/* Poisson; Knuth's product method for small means, a rounded normal for
 * large ones (where the two are indistinguishable for our purpose). */
static int sim_poisson(struct sim_rng *r, double mean) {
        double l, p = 1.0;
        int k = 0;

        if (mean <= 0)
                return 0;
        if (mean > 30) {
                double v = mean + sqrt(mean) * sim_normal(r) + 0.5;

                return v < 0 ? 0 : (int)v;
        }
        l = exp(-mean);
        do {
                k++;
                p *= sim_unit(r);
        } while (p > l);
        return k - 1;
}

/*
 * Networks: an IPv4 /24 or an IPv6 /64; hosts are added when an address is
 * written.
 */
struct sim_net {
        uint8_t v6;   /* 1: IPv6 /64 in p[0..7]; 0: IPv4 /24 in p[0..2] */
        uint8_t p[8]; /* prefix bytes */
};

/* A compact pending event; strings are made only when it is emitted. */
struct sim_ev {
        int64_t ts;            /* event time */
        uint32_t seq;          /* push order, breaks ties in time */
        uint8_t type;          /* enum mg_event_type */
        uint8_t grant;         /* auth: enum mg_grant_type */
        uint8_t method;        /* auth: enum mg_auth_method */
        uint8_t outcome;       /* auth: enum mg_auth_outcome */
        uint8_t fail;          /* auth: sim_fail_reasons index or NONE */
        uint8_t ua;            /* auth: index in the stream's ua[] */
        uint8_t action;        /* usage: enum sim_action */
        uint8_t scope_cnt;     /* auth: entries in scopes */
        uint8_t severity;      /* signal */
        uint16_t host;         /* host part of the address */
        uint16_t res;          /* audience / resource code or NONE */
        uint16_t scope;        /* usage: scope exercised or NONE */
        uint16_t status;       /* usage: HTTP status */
        uint16_t scopes[SIM_SCOPES_MAX]; /* auth: scopes requested */
        uint32_t token;        /* token issued (auth) or used; 0 none */
        uint32_t parent;       /* auth: exchanged from; 0 none */
        int64_t bytes;         /* usage: response size */
        struct sim_net net;    /* source network */
};

enum sim_role {
        SIM_STREAM_NORMAL,  /* the identity's everyday traffic */
        SIM_STREAM_NIGHTLY, /* a CI runner's nightly build */
        SIM_STREAM_ATTACK   /* one labelled attack */
};

/* A source of sessions; see the file comment. */
struct sim_stream {
        uint32_t id_idx;          /* the identity */
        enum sim_role role;       /* what it plays */
        enum mg_sim_profile behaves; /* whose sessions it generates */
        struct sim_rng rng;       /* its own randomness */
        uint64_t day_seed;        /* day-to-day rate variation */
        char client[64];          /* client_id */
        char ua[2][96];           /* user agent before/after an upgrade */
        int64_t ua_switch_ms;     /* when ua[1] takes over; NEVER */
        struct sim_net nets[SIM_NETS_MAX]; /* home networks */
        int net_cnt;              /* entries in nets */
        uint16_t host_base, host_cnt; /* hosts: pods or runners */
        enum mg_auth_method method; /* how it authenticates */
        enum mg_grant_type grant;   /* its primary grant */
        double rate;              /* per hour: calls, jobs or bursts */
        int64_t period_ms;        /* token TTL or poll period */
        int64_t offset_ms;        /* nightly: time of day of the build */
        uint32_t token;           /* integration: current token */
        int64_t token_exp_ms;     /* ... and when it expires */
        int64_t noise_day;        /* last day drawn for network noise */
        int64_t next_ms;          /* next session, NEVER for none */
        int64_t key;              /* heap key: min(next, pending top) */
        struct sim_ev *pend;      /* heap of pending events */
        uint32_t pend_cnt, pend_cap; /* entries in use and allocated */
        uint32_t seq;             /* push counter */
        /* Attack streams only. */
        enum mg_sim_attack attack; /* type */
        int64_t first_ms, last_ms; /* first and last emitted */
        uint64_t att_events;       /* events emitted */
};

/* One identity of the population. */
struct sim_identity {
        char name[128];               /* the identity string */
        enum mg_identity_kind kind;   /* identity_kind */
        enum mg_sim_profile profile;  /* behaviour */
        enum mg_sim_profile behaves;  /* dormant: the profile it had */
        uint16_t res[SIM_RES_MAX];    /* resources it uses, most used 1st */
        uint8_t res_write[SIM_RES_MAX]; /* holds the write scope too */
        int res_cnt;                  /* entries in res */
        uint8_t window[SIM_WEEK_HOURS]; /* hours of week sessions start */
        /* Hours of week any benign session may start in (window plus a
         * CI runner's nightly build): off hours are the others. */
        uint8_t active[SIM_WEEK_HOURS];
        int64_t quiet_ms;             /* dormant: no session from here */
        uint32_t token_seq;           /* last token number issued */
        uint32_t recent[SIM_RECENT];  /* recent primary tokens ... */
        int64_t recent_ts[SIM_RECENT]; /* ... and their issue times */
        int recent_cnt, recent_pos;   /* entries in recent, next slot */
        uint32_t stream;              /* first normal stream */
        int attacked;                 /* has an attack stream */
};

/* The whole run. */
struct sim_state {
        struct mg_sim_opts opts;        /* copy, checked */
        int64_t end_ms;                 /* first instant after the run */
        int64_t history_ms;             /* attacks start after this */
        struct sim_rng rng;             /* population and attack plan */
        struct sim_identity *ids;       /* the population */
        struct sim_stream *streams;     /* all streams */
        uint32_t stream_cnt, stream_cap; /* in use, allocated */
        uint32_t *heap;                 /* stream indices by key */
        uint32_t heap_cnt;              /* streams with work left */
        uint64_t event_seq;             /* event ids */
        mg_sim_emit_cb emit_cb;         /* the caller's callbacks ... */
        mg_sim_label_cb label_cb;
        void *opaque;                   /* ... and their argument */
        struct mg_sim_stats *stats;     /* counters, the caller's */
        struct mg_event ev;             /* the event being emitted */
};

/*
 * Time helpers.
 */

/* Hour of week, Monday 00:00 UTC = 0 (1970-01-01 was a Thursday). */
static int sim_how(int64_t t) {
        int64_t day = t / SIM_DAY;

        return (int)((day + 3) % 7) * 24 + (int)(t % SIM_DAY / SIM_HOUR);
}

static int sim_is_weekend(int64_t t) {
        return sim_how(t) >= 5 * 24;
}

/* First instant >= t in an hour of the identity's window, or NEVER. */
static int64_t sim_next_active(const struct sim_identity *id, int64_t t) {
        int i;

        for (i = 0; i <= SIM_WEEK_HOURS; i++) {
                if (id->window[sim_how(t)])
                        return t;
                t = (t / SIM_HOUR + 1) * SIM_HOUR;
        }
        return SIM_NEVER;
}

/* The stream's activity multiplier for t's day: log-normal around 1, a
 * pure function of (stream, day). */
static double sim_day_factor(const struct sim_stream *s, int64_t t) {
        uint64_t x = s->day_seed + (uint64_t)(t / SIM_DAY);
        double u1 = (double)((sim_splitmix64(&x) >> 11) + 1) * 0x1.0p-53;
        double u2 = (double)(sim_splitmix64(&x) >> 11) * 0x1.0p-53;

        return exp(0.25 * sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

/* Diurnal swing: amplitude 0 is flat, 1 goes from 0 at 02:00 UTC to twice
 * the mean at 14:00. */
static double sim_diurnal(int64_t t, double amplitude) {
        double h = (double)(t % SIM_DAY) / (double)SIM_HOUR;

        return 1.0 + amplitude * cos(2.0 * M_PI * (h - 14.0) / 24.0);
}

/*
 * Pending events: a binary min-heap per stream ordered by (ts, seq).
 */

static int sim_ev_less(const struct sim_ev *a, const struct sim_ev *b) {
        return a->ts < b->ts || (a->ts == b->ts && a->seq < b->seq);
}

/* Push a copy of e; returns NULL when out of memory, else the copy. */
static struct sim_ev *sim_pend_push(struct sim_stream *s,
                                    const struct sim_ev *e) {
        uint32_t i, parent;

        if (s->pend_cnt == s->pend_cap) {
                uint32_t cap = s->pend_cap ? s->pend_cap * 2 : 32;
                void *p = realloc(s->pend, cap * sizeof(*s->pend));

                if (!p)
                        return NULL;
                s->pend = p;
                s->pend_cap = cap;
        }
        i = s->pend_cnt++;
        s->pend[i] = *e;
        s->pend[i].seq = s->seq++;
        while (i > 0) {
                struct sim_ev tmp;

                parent = (i - 1) / 2;
                if (!sim_ev_less(&s->pend[i], &s->pend[parent]))
                        break;
                tmp = s->pend[i];
                s->pend[i] = s->pend[parent];
                s->pend[parent] = tmp;
                i = parent;
        }
        return &s->pend[i];
}

static void sim_pend_pop(struct sim_stream *s, struct sim_ev *out) {
        uint32_t i = 0, l, r, m;

        *out = s->pend[0];
        s->pend[0] = s->pend[--s->pend_cnt];
        for (;;) {
                struct sim_ev tmp;

                l = 2 * i + 1;
                r = l + 1;
                m = i;
                if (l < s->pend_cnt && sim_ev_less(&s->pend[l], &s->pend[m]))
                        m = l;
                if (r < s->pend_cnt && sim_ev_less(&s->pend[r], &s->pend[m]))
                        m = r;
                if (m == i)
                        break;
                tmp = s->pend[i];
                s->pend[i] = s->pend[m];
                s->pend[m] = tmp;
                i = m;
        }
}

/*
 * The heap of streams, keyed by (key, index).
 */

static void sim_stream_rekey(struct sim_stream *s) {
        int64_t top = s->pend_cnt ? s->pend[0].ts : SIM_NEVER;

        s->key = s->next_ms < top ? s->next_ms : top;
}

static int sim_heap_less(const struct sim_state *st, uint32_t a,
                         uint32_t b) {
        int64_t ka = st->streams[a].key, kb = st->streams[b].key;

        return ka < kb || (ka == kb && a < b);
}

static void sim_heap_down(struct sim_state *st, uint32_t i) {
        uint32_t l, r, m, tmp;

        for (;;) {
                l = 2 * i + 1;
                r = l + 1;
                m = i;
                if (l < st->heap_cnt &&
                    sim_heap_less(st, st->heap[l], st->heap[m]))
                        m = l;
                if (r < st->heap_cnt &&
                    sim_heap_less(st, st->heap[r], st->heap[m]))
                        m = r;
                if (m == i)
                        return;
                tmp = st->heap[i];
                st->heap[i] = st->heap[m];
                st->heap[m] = tmp;
                i = m;
        }
}

/*
 * Building events.
 */

/* A new token number for the identity. */
static uint32_t sim_token_new(struct sim_identity *id) {
        return ++id->token_seq;
}

/* Remember a primary token (what a thief would find) with its time. */
static void sim_token_note(struct sim_identity *id, uint32_t token,
                           int64_t ts) {
        id->recent[id->recent_pos] = token;
        id->recent_ts[id->recent_pos] = ts;
        id->recent_pos = (id->recent_pos + 1) % SIM_RECENT;
        if (id->recent_cnt < SIM_RECENT)
                id->recent_cnt++;
}

/* Every scope the identity holds, in resource order (at most max). */
static int sim_identity_scopes(const struct sim_identity *id, uint16_t *out,
                               int max) {
        int i, n = 0;

        for (i = 0; i < id->res_cnt && n < max; i++) {
                uint16_t r = id->res[i];

                if (SIM_RES_IS_DEPLOY(r)) {
                        /* One set of CI scopes covers every deploy target. */
                        int k, seen = 0;

                        for (k = 0; k < n; k++)
                                seen |= out[k] == SIM_SCOPE_DEPLOY_READ;
                        if (seen)
                                continue;
                        out[n++] = SIM_SCOPE_DEPLOY_READ;
                        if (n < max)
                                out[n++] = SIM_SCOPE_DEPLOY_WRITE;
                        if (n < max)
                                out[n++] = SIM_SCOPE_ARTIFACTS_READ;
                        continue;
                }
                out[n++] = SIM_SCOPE(r, SIM_READ);
                if (id->res_write[i] && n < max)
                        out[n++] = SIM_SCOPE(r, SIM_WRITE);
        }
        return n;
}

/* Index of a resource in the identity's list, weighted toward the first
 * (weight 1/(i+1)). */
static int sim_pick_res(struct sim_rng *r, const struct sim_identity *id) {
        double total = 0, u;
        int i;

        for (i = 0; i < id->res_cnt; i++)
                total += 1.0 / (i + 1);
        u = sim_unit(r) * total;
        for (i = 0; i < id->res_cnt - 1; i++) {
                u -= 1.0 / (i + 1);
                if (u < 0)
                        break;
        }
        return i;
}

/* HTTP status of a call that would succeed with ok, with the errors real
 * APIs return now and then. */
static uint16_t sim_status(struct sim_rng *r, uint16_t ok) {
        double u = sim_unit(r);

        if (u < 0.015)
                return 404;
        if (u < 0.020)
                return 429;
        if (u < 0.023)
                return 503;
        if (u < 0.025)
                return 500;
        if (u < 0.027)
                return 401;
        if (u < 0.029)
                return 403;
        return ok;
}

static uint16_t sim_ok_status(enum sim_action act) {
        switch (act) {
        case SIM_ACT_CREATE:
        case SIM_ACT_RELEASE:
        case SIM_ACT_DEPLOY:
        case SIM_ACT_GRANT:
                return 201;
        case SIM_ACT_DELETE:
                return 204;
        default:
                return 200;
        }
}

static int64_t sim_bytes(struct sim_rng *r, enum sim_action act,
                         uint16_t status) {
        double b;

        if (status >= 400)
                return 80 + (int64_t)sim_below(r, 240);
        if (status == 204)
                return 0;
        b = sim_lognormal(r, sim_action_bytes[act],
                          act == SIM_ACT_EXPORT || act == SIM_ACT_ARTIFACT
                                  ? 0.9
                                  : 0.7);
        return (int64_t)b + 1;
}

/* A source address for a session: one of the stream's networks. */
static void sim_pick_addr(struct sim_stream *s, struct sim_net *net,
                          uint16_t *host) {
        *net = s->nets[sim_below(&s->rng, (uint32_t)s->net_cnt)];
        *host = (uint16_t)(s->host_base + sim_below(&s->rng, s->host_cnt));
}

/* Push an auth event. scopes/scope_cnt as requested; token 0 for a
 * failure. Returns 0 or -1 (out of memory). */
static int sim_push_auth(struct sim_stream *s, int64_t ts, uint8_t ua,
                         const struct sim_net *net, uint16_t host,
                         enum mg_grant_type grant, uint16_t audience,
                         const uint16_t *scopes, int scope_cnt,
                         uint8_t fail, uint32_t token, uint32_t parent) {
        struct sim_ev e;

        memset(&e, 0, sizeof(e));
        e.ts = ts;
        e.type = MG_EVENT_AUTH;
        e.grant = (uint8_t)grant;
        e.method = (uint8_t)s->method;
        /* A federated CI token is exchanged with the runner's own key. */
        if (grant == MG_GRANT_TOKEN_EXCHANGE &&
            s->method == MG_AUTH_METHOD_OIDC_FEDERATION)
                e.method = MG_AUTH_METHOD_PRIVATE_KEY_JWT;
        e.outcome = fail == SIM_FAIL_NONE ? MG_OUTCOME_SUCCESS
                                          : MG_OUTCOME_FAILURE;
        e.fail = fail;
        e.ua = ua;
        e.res = audience;
        e.scope = SIM_NONE;
        if (scope_cnt > SIM_SCOPES_MAX)
                scope_cnt = SIM_SCOPES_MAX;
        memcpy(e.scopes, scopes, (size_t)scope_cnt * sizeof(*scopes));
        e.scope_cnt = (uint8_t)scope_cnt;
        e.host = host;
        e.net = *net;
        e.token = token;
        e.parent = parent;
        return sim_pend_push(s, &e) ? 0 : -1;
}

static int sim_push_usage(struct sim_stream *s, int64_t ts,
                          const struct sim_net *net, uint16_t host,
                          uint32_t token, uint16_t res, enum sim_action act,
                          uint16_t scope, uint16_t status, int64_t bytes) {
        struct sim_ev e;

        memset(&e, 0, sizeof(e));
        e.ts = ts;
        e.type = MG_EVENT_USAGE;
        e.fail = SIM_FAIL_NONE;
        e.res = res;
        e.action = (uint8_t)act;
        e.scope = scope;
        e.status = status;
        e.bytes = bytes;
        e.token = token;
        e.host = host;
        e.net = *net;
        return sim_pend_push(s, &e) ? 0 : -1;
}

/* The user agent a benign stream uses at ts. */
static uint8_t sim_ua_at(const struct sim_stream *s, int64_t ts) {
        return ts >= s->ua_switch_ms ? 1 : 0;
}

/* Obtain a token at ts the way the stream always does, sometimes after a
 * benign failure (then the success comes up to two seconds later). Pushes
 * the auth event(s); *token is the new token. */
static int sim_session_auth(struct sim_state *st, struct sim_stream *s,
                            int64_t ts, const struct sim_net *net,
                            uint16_t host, uint16_t audience,
                            const uint16_t *scopes, int scope_cnt,
                            uint32_t *token) {
        struct sim_identity *id = &st->ids[s->id_idx];

        if (sim_chance(&s->rng, 0.005)) {
                if (sim_push_auth(s, ts, sim_ua_at(s, ts), net, host, s->grant,
                                  audience, scopes, scope_cnt,
                                  (uint8_t)sim_below(&s->rng,
                                                     SIM_FAIL_BENIGN),
                                  0, 0))
                        return -1;
                ts += sim_range(&s->rng, 200, 2000);
        }
        *token = sim_token_new(id);
        if (s->role != SIM_STREAM_ATTACK)
                sim_token_note(id, *token, ts);
        return sim_push_auth(s, ts, sim_ua_at(s, ts), net, host, s->grant,
                             audience, scopes, scope_cnt, SIM_FAIL_NONE,
                             *token, 0);
}

/* One everyday API call of the identity on resource index ri. */
static int sim_push_call(struct sim_state *st, struct sim_stream *s,
                         int64_t ts, const struct sim_net *net,
                         uint16_t host, uint32_t token, int ri,
                         int integration) {
        struct sim_identity *id = &st->ids[s->id_idx];
        uint16_t res = id->res[ri], scope, status;
        enum sim_action act;
        double u = sim_unit(&s->rng);

        /* A call to something the identity has no scope for: a new code
         * path, a misconfiguration; refused. */
        if (sim_chance(&s->rng, 0.0005)) {
                res = (uint16_t)sim_below(&s->rng, SIM_SVC_OPEN);
                return sim_push_usage(s, ts, net, host, token, res,
                                      SIM_ACT_GET, SIM_SCOPE(res, SIM_READ),
                                      403, 150);
        }
        if (id->res_write[ri] && u < 0.25) {
                act = u < 0.12 ? SIM_ACT_CREATE
                               : u < 0.23 ? SIM_ACT_UPDATE : SIM_ACT_DELETE;
                scope = SIM_SCOPE(res, SIM_WRITE);
        } else {
                u = sim_unit(&s->rng);
                if (integration)
                        act = u < 0.7 ? SIM_ACT_GET : SIM_ACT_LIST;
                else
                        act = u < 0.55 ? SIM_ACT_GET
                                       : u < 0.85 ? SIM_ACT_LIST
                                                  : SIM_ACT_SEARCH;
                scope = SIM_SCOPE(res, SIM_READ);
        }
        status = sim_status(&s->rng, sim_ok_status(act));
        return sim_push_usage(s, ts, net, host, token, res, act, scope,
                              status, sim_bytes(&s->rng, act, status));
}

/* Once a day per benign stream: now and then a new /24 (or /64) inside
 * the home range, now and then a newly adopted resource. */
static void sim_daily_noise(struct sim_state *st, struct sim_stream *s,
                            int64_t t) {
        struct sim_identity *id = &st->ids[s->id_idx];
        int64_t day = (t - st->opts.start_ms) / SIM_DAY;

        if (day == s->noise_day)
                return;
        s->noise_day = day;
        if (sim_chance(&s->rng, 0.08)) {
                struct sim_net net = s->nets[0];
                int slot = s->net_cnt < SIM_NETS_MAX
                                   ? s->net_cnt++
                                   : 1 + (int)sim_below(&s->rng,
                                                        SIM_NETS_MAX - 1);

                if (net.v6)
                        net.p[7] = (uint8_t)sim_below(&s->rng, 256);
                else
                        net.p[2] = (uint8_t)sim_below(&s->rng, 256);
                s->nets[slot] = net;
        }
        if (st->streams + id->stream == s &&
            id->profile != MG_SIM_PROFILE_CI && id->res_cnt < SIM_RES_MAX &&
            sim_chance(&s->rng, 0.04)) {
                uint16_t r = (uint16_t)sim_below(&s->rng, SIM_SVC_OPEN);
                int i, dup = 0;

                for (i = 0; i < id->res_cnt; i++)
                        dup |= id->res[i] == r;
                if (!dup) {
                        id->res[id->res_cnt] = r;
                        id->res_write[id->res_cnt] = 0;
                        id->res_cnt++;
                }
        }
}

/*
 * Sessions of benign streams.
 */

/* Next session of a stream that works only in its identity's active
 * hours: a Poisson process with the given mean gap, moved to the next
 * active hour when it falls outside. */
static int64_t sim_next_in_window(struct sim_stream *s,
                                  const struct sim_identity *id, int64_t t,
                                  double mean_ms) {
        int64_t n = t + 1 + (int64_t)sim_exp(&s->rng, mean_ms), a;
        double spread = mean_ms < 50 * SIM_MIN ? mean_ms : 50 * SIM_MIN;

        if (id->window[sim_how(n)])
                return n;
        a = sim_next_active(id, n);
        if (a == SIM_NEVER)
                return SIM_NEVER;
        return a + (int64_t)(sim_unit(&s->rng) * spread);
}

/* A steady service, workload or application of a shared identity: a token
 * for its lifetime and calls at the stream's rate meanwhile. */
static int sim_gen_service(struct sim_state *st, struct sim_stream *s) {
        struct sim_identity *id = &st->ids[s->id_idx];
        uint16_t scopes[SIM_SCOPES_MAX], host;
        int64_t t = s->next_ms, dur;
        struct sim_net net;
        uint32_t token;
        double mean;
        int n, i, scope_cnt;

        sim_daily_noise(st, s, t);
        dur = (int64_t)((double)s->period_ms *
                        (0.8 + 0.15 * sim_unit(&s->rng)));
        sim_pick_addr(s, &net, &host);
        scope_cnt = sim_identity_scopes(id, scopes, SIM_SCOPES_MAX);
        if (sim_session_auth(st, s, t, &net, host, id->res[0], scopes,
                             scope_cnt, &token))
                return -1;
        mean = s->rate * (double)dur / SIM_HOUR * sim_day_factor(s, t);
        if (s->behaves == MG_SIM_PROFILE_WORKLOAD)
                mean *= sim_diurnal(t, 0.65) * (sim_is_weekend(t) ? 0.6 : 1);
        else
                mean *= sim_diurnal(t, 0.15);
        n = sim_poisson(&s->rng, mean);
        for (i = 0; i < n; i++) {
                int64_t ts = t + 2 * SIM_SEC +
                             (int64_t)(sim_unit(&s->rng) *
                                       (double)(dur - 2 * SIM_SEC));

                if (sim_push_call(st, s, ts, &net, host, token,
                                  sim_pick_res(&s->rng, id), 0))
                        return -1;
        }
        s->next_ms = t + dur;
        return 0;
}

/* A SaaS integration's poll: a fresh token when the last one expired,
 * one "what changed" call, sometimes a few follow-up calls. */
static int sim_gen_integration(struct sim_state *st, struct sim_stream *s) {
        struct sim_identity *id = &st->ids[s->id_idx];
        uint16_t scopes[SIM_SCOPES_MAX], host, status;
        int64_t t = s->next_ms, ts;
        struct sim_net net;
        int i, n, scope_cnt;

        sim_daily_noise(st, s, t);
        sim_pick_addr(s, &net, &host);
        if (t >= s->token_exp_ms) {
                scope_cnt = sim_identity_scopes(id, scopes, SIM_SCOPES_MAX);
                if (sim_session_auth(st, s, t, &net, host, id->res[0], scopes,
                                     scope_cnt, &s->token))
                        return -1;
                s->token_exp_ms = t + SIM_HOUR;
        }
        ts = t + sim_range(&s->rng, 2500, 4000);
        status = sim_status(&s->rng, 200);
        if (sim_push_usage(s, ts, &net, host, s->token, id->res[0],
                           SIM_ACT_CHANGES, SIM_SCOPE(id->res[0], SIM_READ),
                           status, sim_bytes(&s->rng, SIM_ACT_CHANGES,
                                             status)))
                return -1;
        if (sim_chance(&s->rng, 0.15 * sim_day_factor(s, t))) {
                n = (int)sim_range(&s->rng, 1, 4);
                for (i = 0; i < n; i++)
                        if (sim_push_call(st, s,
                                          ts + sim_range(&s->rng, 200,
                                                         30 * SIM_SEC),
                                          &net, host, s->token,
                                          sim_pick_res(&s->rng, id), 1))
                                return -1;
        }
        s->next_ms = t + (int64_t)((double)s->period_ms *
                                   (0.9 + 0.2 * sim_unit(&s->rng)));
        return 0;
}

/* A CI job on an ephemeral runner: build (artifacts) or release (deploy,
 * then poll its status). */
static int sim_gen_ci(struct sim_state *st, struct sim_stream *s) {
        struct sim_identity *id = &st->ids[s->id_idx];
        uint16_t scopes[3], host, res, status;
        int64_t t = s->next_ms, ts;
        struct sim_net net;
        uint32_t token;
        int release, i, n, scope_cnt = 0;
        enum sim_action act;

        sim_daily_noise(st, s, t);
        net = s->nets[sim_below(&s->rng, (uint32_t)s->net_cnt)];
        host = (uint16_t)sim_range(&s->rng, 1, 254);
        res = id->res[sim_pick_res(&s->rng, id)];
        release = sim_chance(&s->rng,
                             s->role == SIM_STREAM_NIGHTLY ? 0.1 : 0.3);
        scopes[scope_cnt++] = SIM_SCOPE_DEPLOY_READ;
        if (release)
                scopes[scope_cnt++] = SIM_SCOPE_DEPLOY_WRITE;
        scopes[scope_cnt++] = SIM_SCOPE_ARTIFACTS_READ;
        if (sim_session_auth(st, s, t, &net, host, res, scopes, scope_cnt,
                             &token))
                return -1;
        ts = t + 3 * SIM_SEC;
        n = (int)(release ? sim_range(&s->rng, 1, 3)
                          : sim_range(&s->rng, 2, 6));
        for (i = 0; i < n; i++) {
                ts += sim_range(&s->rng, 2 * SIM_SEC, 40 * SIM_SEC);
                status = sim_status(&s->rng, 200);
                if (sim_push_usage(s, ts, &net, host, token, res,
                                   SIM_ACT_ARTIFACT, SIM_SCOPE_ARTIFACTS_READ,
                                   status,
                                   sim_bytes(&s->rng, SIM_ACT_ARTIFACT,
                                             status)))
                        return -1;
        }
        if (release) {
                static const enum sim_action steps[] = {SIM_ACT_RELEASE,
                                                        SIM_ACT_DEPLOY};

                for (i = 0; i < 2; i++) {
                        ts += sim_range(&s->rng, 1 * SIM_SEC, 20 * SIM_SEC);
                        status = sim_status(&s->rng, 201);
                        if (sim_push_usage(s, ts, &net, host, token, res,
                                           steps[i], SIM_SCOPE_DEPLOY_WRITE,
                                           status,
                                           sim_bytes(&s->rng, steps[i],
                                                     status)))
                                return -1;
                }
                n = (int)sim_range(&s->rng, 3, 20);
                act = SIM_ACT_STATUS;
        } else {
                n = (int)sim_range(&s->rng, 1, 3);
                act = SIM_ACT_RELEASE_GET;
        }
        for (i = 0; i < n; i++) {
                ts += sim_range(&s->rng, 10 * SIM_SEC, 20 * SIM_SEC);
                status = sim_status(&s->rng, 200);
                if (sim_push_usage(s, ts, &net, host, token, res, act,
                                   SIM_SCOPE_DEPLOY_READ, status,
                                   sim_bytes(&s->rng, act, status)))
                        return -1;
        }
        if (s->role == SIM_STREAM_NIGHTLY)
                s->next_ms = (t / SIM_DAY + 1) * SIM_DAY + s->offset_ms +
                             sim_range(&s->rng, 0, 90 * SIM_SEC);
        else
                s->next_ms = sim_next_in_window(
                        s, id, t,
                        (double)SIM_HOUR / (s->rate * sim_day_factor(s, t)));
        return 0;
}

/* An AI agent's burst: a token, exchanged for one token per task (and
 * sometimes once more, for a downstream tool), then many calls. */
static int sim_gen_agent(struct sim_state *st, struct sim_stream *s) {
        struct sim_identity *id = &st->ids[s->id_idx];
        uint16_t scopes[SIM_SCOPES_MAX], host;
        uint32_t root, leaf[6];
        int leaf_res[6], leaf_cnt = 0, task_cnt, i, n, scope_cnt;
        int64_t t = s->next_ms, ts, dur;
        struct sim_net net;

        sim_daily_noise(st, s, t);
        sim_pick_addr(s, &net, &host);
        scope_cnt = sim_identity_scopes(id, scopes, SIM_SCOPES_MAX);
        if (sim_session_auth(st, s, t, &net, host, id->res[0], scopes,
                             scope_cnt, &root))
                return -1;
        ts = t + 2500;
        task_cnt = (int)sim_range(&s->rng, 1, id->res_cnt < 3 ? id->res_cnt
                                                                : 3);
        for (i = 0; i < task_cnt; i++) {
                int ri = sim_pick_res(&s->rng, id), k = 0;
                uint16_t sc[2];
                uint32_t tok = sim_token_new(id);

                sc[k++] = SIM_SCOPE(id->res[ri], SIM_READ);
                if (id->res_write[ri])
                        sc[k++] = SIM_SCOPE(id->res[ri], SIM_WRITE);
                ts += sim_range(&s->rng, 200, 2000);
                if (sim_push_auth(s, ts, sim_ua_at(s, ts), &net, host,
                                  MG_GRANT_TOKEN_EXCHANGE, id->res[ri], sc, k,
                                  SIM_FAIL_NONE, tok, root))
                        return -1;
                leaf[leaf_cnt] = tok;
                leaf_res[leaf_cnt++] = ri;
                if (sim_chance(&s->rng, 0.35)) {
                        int rj = sim_pick_res(&s->rng, id);
                        uint16_t sc2 = SIM_SCOPE(id->res[rj], SIM_READ);
                        uint32_t tok2 = sim_token_new(id);

                        ts += sim_range(&s->rng, 200, 2000);
                        if (sim_push_auth(s, ts, sim_ua_at(s, ts), &net, host,
                                          MG_GRANT_TOKEN_EXCHANGE,
                                          id->res[rj], &sc2, 1,
                                          SIM_FAIL_NONE, tok2, tok))
                                return -1;
                        leaf[leaf_cnt] = tok2;
                        leaf_res[leaf_cnt++] = rj;
                }
        }
        n = (int)sim_lognormal(&s->rng, 35 * sim_day_factor(s, t), 0.7);
        n = n < 5 ? 5 : n > 300 ? 300 : n;
        dur = sim_range(&s->rng, 3 * SIM_MIN, 25 * SIM_MIN);
        ts += SIM_SEC;
        for (i = 0; i < n; i++) {
                int c = (int)sim_below(&s->rng, (uint32_t)leaf_cnt);

                if (sim_push_call(st, s,
                                  ts + (int64_t)(sim_unit(&s->rng) *
                                                 (double)dur),
                                  &net, host, leaf[c], leaf_res[c], 0))
                        return -1;
        }
        s->next_ms = sim_next_in_window(
                s, id, t, (double)SIM_HOUR / (s->rate * sim_day_factor(s, t)));
        return 0;
}

/*
 * Attacks. Each is generated whole when its stream's start comes up.
 */

/* A read on resource res; bulk picks the calls that move the most data. */
static void sim_read_action(struct sim_rng *r, uint16_t res, int bulk,
                            enum sim_action *act, uint16_t *scope) {
        double u = sim_unit(r);

        if (SIM_RES_IS_DEPLOY(res)) {
                if (bulk || u < 0.6) {
                        *act = SIM_ACT_ARTIFACT;
                        *scope = SIM_SCOPE_ARTIFACTS_READ;
                } else {
                        *act = SIM_ACT_RELEASE_GET;
                        *scope = SIM_SCOPE_DEPLOY_READ;
                }
                return;
        }
        *scope = SIM_SCOPE(res, SIM_READ);
        if (bulk)
                *act = u < 0.8 ? SIM_ACT_EXPORT : SIM_ACT_LIST;
        else
                *act = u < 0.4 ? SIM_ACT_LIST
                               : u < 0.8 ? SIM_ACT_GET
                                         : u < 0.9 ? SIM_ACT_SEARCH
                                                   : SIM_ACT_EXPORT;
}

/* An attacker's reads with token from t over dur: n calls. expired_after
 * makes calls past that instant fail with 401 (a replayed token that has
 * run out). */
static int sim_attack_reads(struct sim_state *st, struct sim_stream *s,
                            int64_t t, int64_t dur, int n, uint32_t token,
                            int64_t expired_after) {
        struct sim_identity *id = &st->ids[s->id_idx];
        struct sim_net net;
        uint16_t host, scope, status, res;
        enum sim_action act;
        int i;

        for (i = 0; i < n; i++) {
                int64_t ts = i == 0 ? t
                                    : t + (int64_t)(sim_unit(&s->rng) *
                                                    (double)dur);

                sim_pick_addr(s, &net, &host);
                res = id->res[sim_below(&s->rng, (uint32_t)id->res_cnt)];
                sim_read_action(&s->rng, res, 0, &act, &scope);
                if (ts > expired_after && sim_chance(&s->rng, 0.8))
                        status = 401;
                else if (sim_chance(&s->rng, 0.1))
                        status = 403;
                else
                        status = sim_status(&s->rng, 200);
                if (sim_push_usage(s, ts, &net, host, token, res, act, scope,
                                   status, sim_bytes(&s->rng, act, status)))
                        return -1;
        }
        return 0;
}

static int sim_attack_stolen_token(struct sim_state *st,
                                   struct sim_stream *s) {
        struct sim_identity *id = &st->ids[s->id_idx];
        uint16_t scopes[SIM_SCOPES_MAX], host;
        int64_t t = s->next_ms, issued = -1;
        struct sim_net net;
        uint32_t token = 0;
        int i, scope_cnt;

        /* The most recent token issued before now, if any: replayed as
         * is half of the time; otherwise the stolen credential mints a
         * fresh one from the attacker's host. */
        for (i = 0; i < id->recent_cnt; i++)
                if (id->recent_ts[i] < t && id->recent_ts[i] > issued) {
                        issued = id->recent_ts[i];
                        token = id->recent[i];
                }
        if (token && sim_chance(&s->rng, 0.5))
                return sim_attack_reads(
                        st, s, t,
                        sim_range(&s->rng, 2 * SIM_MIN, 60 * SIM_MIN),
                        (int)sim_range(&s->rng, 5, 60), token,
                        issued + SIM_HOUR);
        sim_pick_addr(s, &net, &host);
        scope_cnt = sim_identity_scopes(id, scopes, SIM_SCOPES_MAX);
        token = sim_token_new(id);
        if (sim_push_auth(s, t, 0, &net, host, MG_GRANT_CLIENT_CREDENTIALS,
                          id->res[0], scopes, scope_cnt, SIM_FAIL_NONE, token,
                          0))
                return -1;
        return sim_attack_reads(st, s, t + sim_range(&s->rng, 500, 3000),
                                sim_range(&s->rng, 2 * SIM_MIN,
                                          55 * SIM_MIN),
                                (int)sim_range(&s->rng, 5, 60), token,
                                SIM_NEVER);
}

static int sim_attack_escalation(struct sim_state *st,
                                 struct sim_stream *s) {
        struct sim_identity *id = &st->ids[s->id_idx];
        uint16_t scopes[SIM_SCOPES_MAX], esc[4], esc_res[4], host, status;
        int64_t t = s->next_ms, ts;
        struct sim_net net;
        uint32_t token, parent;
        int esc_cnt = 0, depth, hop, i, n, k, scope_cnt;
        enum sim_action act;

        sim_pick_addr(s, &net, &host);
        scope_cnt = sim_identity_scopes(id, scopes, SIM_SCOPES_MAX);
        if (sim_session_auth(st, s, t, &net, host, id->res[0], scopes,
                             scope_cnt, &token))
                return -1;
        /* What it reaches for: the admin scope of its own service, secrets,
         * role bindings, signing keys — none of which it ever held. */
        if (!SIM_RES_IS_DEPLOY(id->res[0]) && sim_chance(&s->rng, 0.5)) {
                esc_res[esc_cnt] = id->res[0];
                esc[esc_cnt++] = SIM_SCOPE(id->res[0], SIM_ADMIN);
        }
        k = (int)sim_range(&s->rng, 1, 3);
        for (i = 0; i < 3 && esc_cnt < k + 1; i++) {
                static const uint16_t svcs[] = {SIM_SVC_SECRETS, SIM_SVC_IAM,
                                                SIM_SVC_KEYS};
                static const enum sim_level lv[] = {SIM_READ, SIM_ADMIN,
                                                    SIM_WRITE};
                int j = (int)((i + sim_below(&s->rng, 3)) % 3), dup = 0, m;

                for (m = 0; m < esc_cnt; m++)
                        dup |= esc_res[m] == svcs[j];
                if (dup)
                        continue;
                esc_res[esc_cnt] = svcs[j];
                esc[esc_cnt++] = SIM_SCOPE(svcs[j], lv[j]);
        }
        depth = (id->profile == MG_SIM_PROFILE_AGENT ? 2 : 0) +
                (int)sim_range(&s->rng, 2, 3);
        if (depth > SIM_CHAIN_MAX)
                depth = SIM_CHAIN_MAX;
        ts = t + 2500;
        for (hop = 1; hop <= depth; hop++) {
                uint16_t sc[SIM_SCOPES_MAX];
                int c = 0, want = hop - (depth - esc_cnt);

                /* Early hops look like ordinary delegation; the last ones
                 * add the escalated scopes one by one, all of them by the
                 * last hop (want == esc_cnt there). */
                for (i = 0; i < scope_cnt && i < 2; i++)
                        sc[c++] = scopes[i];
                for (i = 0; i < want && i < esc_cnt; i++)
                        sc[c++] = esc[i];
                parent = token;
                token = sim_token_new(id);
                ts += sim_range(&s->rng, 1 * SIM_SEC, 20 * SIM_SEC);
                if (sim_push_auth(s, ts, sim_ua_at(s, ts), &net, host,
                                  MG_GRANT_TOKEN_EXCHANGE,
                                  want > 0 ? esc_res[0] : id->res[0], sc, c,
                                  SIM_FAIL_NONE, token, parent))
                        return -1;
        }
        n = (int)sim_range(&s->rng, 3, 20);
        for (i = 0; i < n; i++) {
                int e = (int)sim_below(&s->rng, (uint32_t)esc_cnt);
                int64_t when = ts + SIM_SEC +
                               sim_range(&s->rng, 0, 20 * SIM_MIN);

                act = esc_res[e] == SIM_SVC_SECRETS ? SIM_ACT_GET
                      : esc_res[e] == SIM_SVC_KEYS  ? SIM_ACT_UPDATE
                                                    : SIM_ACT_GRANT;
                status = sim_chance(&s->rng, 0.2)
                                 ? 403
                                 : sim_status(&s->rng, sim_ok_status(act));
                if (sim_push_usage(s, when, &net, host, token, esc_res[e],
                                   act, esc[e], status,
                                   sim_bytes(&s->rng, act, status)))
                        return -1;
        }
        return 0;
}

static int sim_attack_stuffing(struct sim_state *st, struct sim_stream *s) {
        struct sim_identity *id = &st->ids[s->id_idx];
        uint16_t scopes[SIM_SCOPES_MAX], host;
        int64_t t = s->next_ms, dur, last = t;
        struct sim_net net;
        uint32_t token;
        int i, n, scope_cnt;

        scope_cnt = sim_identity_scopes(id, scopes, SIM_SCOPES_MAX);
        n = (int)sim_range(&s->rng, 20, 200);
        dur = sim_range(&s->rng, 2 * SIM_MIN, 20 * SIM_MIN);
        for (i = 0; i < n; i++) {
                int64_t ts = i == 0 ? t
                                    : t + (int64_t)(sim_unit(&s->rng) *
                                                    (double)dur);
                double u = sim_unit(&s->rng);
                uint8_t why = u < 0.6    ? 0
                              : u < 0.85 ? SIM_FAIL_BENIGN
                                         : SIM_FAIL_BENIGN + 1;

                if (ts > last)
                        last = ts;
                sim_pick_addr(s, &net, &host);
                if (sim_push_auth(s, ts, 0, &net, host,
                                  MG_GRANT_CLIENT_CREDENTIALS, id->res[0],
                                  scopes, scope_cnt, why, 0, 0))
                        return -1;
        }
        if (!sim_chance(&s->rng, 0.4))
                return 0;
        /* One guess was right. */
        last += sim_range(&s->rng, 1 * SIM_SEC, 30 * SIM_SEC);
        sim_pick_addr(s, &net, &host);
        token = sim_token_new(id);
        if (sim_push_auth(s, last, 0, &net, host, MG_GRANT_CLIENT_CREDENTIALS,
                          id->res[0], scopes, scope_cnt, SIM_FAIL_NONE, token,
                          0))
                return -1;
        return sim_attack_reads(st, s, last + sim_range(&s->rng, 500, 3000),
                                sim_range(&s->rng, 1 * SIM_MIN,
                                          10 * SIM_MIN),
                                (int)sim_range(&s->rng, 3, 15), token,
                                SIM_NEVER);
}

static int sim_attack_exfiltration(struct sim_state *st,
                                   struct sim_stream *s) {
        struct sim_identity *id = &st->ids[s->id_idx];
        uint16_t scopes[SIM_SCOPES_MAX], host, scope, status, res;
        int64_t t = s->next_ms, dur;
        struct sim_net net;
        uint32_t token;
        enum sim_action act;
        int i, n, scope_cnt;

        sim_pick_addr(s, &net, &host);
        scope_cnt = sim_identity_scopes(id, scopes, SIM_SCOPES_MAX);
        token = sim_token_new(id);
        if (sim_push_auth(s, t, 0, &net, host, s->grant, id->res[0], scopes,
                          scope_cnt, SIM_FAIL_NONE, token, 0))
                return -1;
        n = (int)sim_range(&s->rng, 80, 400);
        dur = sim_range(&s->rng, 15 * SIM_MIN, 55 * SIM_MIN);
        for (i = 0; i < n; i++) {
                int64_t ts = t + 1500 +
                             (int64_t)(sim_unit(&s->rng) * (double)dur);

                res = id->res[sim_below(&s->rng, (uint32_t)id->res_cnt)];
                sim_read_action(&s->rng, res, 1, &act, &scope);
                status = sim_status(&s->rng, 200);
                if (sim_push_usage(
                            s, ts, &net, host, token, res, act, scope,
                            status,
                            status >= 400
                                    ? 150
                                    : (int64_t)sim_lognormal(
                                              &s->rng,
                                              act == SIM_ACT_LIST ? 2e6
                                                                  : 25e6,
                                              0.8)))
                        return -1;
        }
        return 0;
}

static int sim_attack_reactivation(struct sim_state *st,
                                   struct sim_stream *s) {
        struct sim_identity *id = &st->ids[s->id_idx];
        uint16_t scopes[SIM_SCOPES_MAX], host;
        int64_t t = s->next_ms, dur;
        struct sim_net net;
        uint32_t token;
        int k, sessions, i, n, scope_cnt;

        scope_cnt = sim_identity_scopes(id, scopes, SIM_SCOPES_MAX);
        sessions = (int)sim_range(&s->rng, 1, 3);
        for (k = 0; k < sessions; k++) {
                sim_pick_addr(s, &net, &host);
                token = sim_token_new(id);
                if (sim_push_auth(s, t, 0, &net, host, s->grant, id->res[0],
                                  scopes, scope_cnt, SIM_FAIL_NONE, token, 0))
                        return -1;
                n = (int)sim_range(&s->rng, 10, 60);
                dur = sim_range(&s->rng, 5 * SIM_MIN, 30 * SIM_MIN);
                for (i = 0; i < n; i++)
                        if (sim_push_call(st, s,
                                          t + 2 * SIM_SEC +
                                                  (int64_t)(sim_unit(&s->rng) *
                                                            (double)dur),
                                          &net, host, token,
                                          sim_pick_res(&s->rng, id), 0))
                                return -1;
                t += dur + sim_range(&s->rng, 10 * SIM_MIN, 50 * SIM_MIN);
        }
        return 0;
}

static int sim_attack_leaked_secret(struct sim_state *st,
                                    struct sim_stream *s) {
        struct sim_identity *id = &st->ids[s->id_idx];
        uint16_t scopes[SIM_SCOPES_MAX], host;
        int64_t t = s->next_ms, use;
        struct sim_net net;
        struct sim_ev e;
        uint32_t token;
        int scope_cnt;

        memset(&e, 0, sizeof(e));
        e.ts = t;
        e.type = MG_EVENT_SIGNAL;
        e.fail = SIM_FAIL_NONE;
        e.severity = (uint8_t)sim_range(&s->rng, 70, 100);
        e.res = e.scope = SIM_NONE;
        if (!sim_pend_push(s, &e))
                return -1;
        use = t + sim_range(&s->rng, 10 * SIM_MIN, 3 * SIM_HOUR);
        sim_pick_addr(s, &net, &host);
        scope_cnt = sim_identity_scopes(id, scopes, SIM_SCOPES_MAX);
        token = sim_token_new(id);
        if (sim_push_auth(s, use, 0, &net, host, MG_GRANT_CLIENT_CREDENTIALS,
                          id->res[0], scopes, scope_cnt, SIM_FAIL_NONE, token,
                          0))
                return -1;
        return sim_attack_reads(st, s, use + sim_range(&s->rng, 500, 3000),
                                sim_range(&s->rng, 2 * SIM_MIN,
                                          45 * SIM_MIN),
                                (int)sim_range(&s->rng, 5, 40), token,
                                SIM_NEVER);
}

/* Generate the stream's next session (benign) or its whole attack, and
 * set its next session time. Returns 0 or -1 (out of memory). */
static int sim_generate(struct sim_state *st, struct sim_stream *s) {
        const struct sim_identity *id = &st->ids[s->id_idx];
        int rc;

        if (s->role == SIM_STREAM_ATTACK) {
                switch (s->attack) {
                case MG_SIM_ATTACK_STOLEN_TOKEN:
                        rc = sim_attack_stolen_token(st, s);
                        break;
                case MG_SIM_ATTACK_SCOPE_ESCALATION:
                        rc = sim_attack_escalation(st, s);
                        break;
                case MG_SIM_ATTACK_CREDENTIAL_STUFFING:
                        rc = sim_attack_stuffing(st, s);
                        break;
                case MG_SIM_ATTACK_OFFHOURS_EXFILTRATION:
                        rc = sim_attack_exfiltration(st, s);
                        break;
                case MG_SIM_ATTACK_DORMANT_REACTIVATION:
                        rc = sim_attack_reactivation(st, s);
                        break;
                case MG_SIM_ATTACK_LEAKED_SECRET:
                default:
                        rc = sim_attack_leaked_secret(st, s);
                        break;
                }
                s->next_ms = SIM_NEVER;
                return rc;
        }
        switch (s->behaves) {
        case MG_SIM_PROFILE_CI:
                rc = sim_gen_ci(st, s);
                break;
        case MG_SIM_PROFILE_INTEGRATION:
                rc = sim_gen_integration(st, s);
                break;
        case MG_SIM_PROFILE_AGENT:
                rc = sim_gen_agent(st, s);
                break;
        default:
                rc = sim_gen_service(st, s);
                break;
        }
        if (s->next_ms >= st->end_ms || s->next_ms >= id->quiet_ms)
                s->next_ms = SIM_NEVER;
        return rc;
}

/*
 * The population.
 */

/* A new stream of identity id_idx; returns its index or -1 (out of
 * memory). Streams live in one array: callers hold indices, not
 * pointers, until the population is complete. */
static int64_t sim_stream_add(struct sim_state *st, uint32_t id_idx,
                              enum sim_role role,
                              enum mg_sim_profile behaves) {
        struct sim_stream *s;
        uint64_t x;

        if (st->stream_cnt == st->stream_cap) {
                uint32_t cap = st->stream_cap ? st->stream_cap * 2 : 1024;
                void *p = realloc(st->streams, cap * sizeof(*st->streams));

                if (!p)
                        return -1;
                st->streams = p;
                st->stream_cap = cap;
        }
        s = &st->streams[st->stream_cnt];
        memset(s, 0, sizeof(*s));
        s->id_idx = id_idx;
        s->role = role;
        s->behaves = behaves;
        sim_rng_seed(&s->rng, st->opts.seed, 1 + (uint64_t)st->stream_cnt);
        x = st->opts.seed ^ ((uint64_t)st->stream_cnt << 32) ^
            0x5eed5eed5eed5eedULL;
        s->day_seed = sim_splitmix64(&x);
        s->ua_switch_ms = SIM_NEVER;
        s->noise_day = -1;
        s->next_ms = SIM_NEVER;
        s->host_base = 1;
        s->host_cnt = 1;
        return st->stream_cnt++;
}

/* Home networks inside the company: a /24 of 10/8 or, for some, a /64 of
 * a unique local /48; more of the same /16 (or /48). */
static void sim_nets_internal(struct sim_stream *s, int cnt, double v6) {
        struct sim_rng *r = &s->rng;
        struct sim_net net;
        int i;

        memset(&net, 0, sizeof(net));
        if (sim_chance(r, v6)) {
                net.v6 = 1;
                net.p[0] = 0xfd;
                for (i = 1; i < 8; i++)
                        net.p[i] = (uint8_t)sim_below(r, 256);
        } else {
                net.p[0] = 10;
                net.p[1] = (uint8_t)sim_below(r, 256);
                net.p[2] = (uint8_t)sim_below(r, 256);
        }
        for (i = 0; i < cnt; i++) {
                s->nets[i] = net;
                if (net.v6)
                        net.p[7] = (uint8_t)sim_below(r, 256);
                else
                        net.p[2] = (uint8_t)sim_below(r, 256);
        }
        s->net_cnt = cnt;
}

/* Networks in a public cloud (CI runners, SaaS vendors): /24s of one
 * cloud /16, or /64s of one /48. */
static void sim_nets_cloud(struct sim_stream *s, int cnt, double v6) {
        struct sim_rng *r = &s->rng;
        struct sim_net net;
        int i;

        memset(&net, 0, sizeof(net));
        if (sim_chance(r, v6)) {
                net.v6 = 1;
                net.p[0] = 0x26;
                net.p[1] = 0x00;
                net.p[2] = 0x1f;
                net.p[3] = (uint8_t)(0x10 + sim_below(r, 16));
                net.p[4] = (uint8_t)sim_below(r, 256);
                net.p[5] = (uint8_t)sim_below(r, 256);
        } else {
                net.p[0] = sim_cloud_octets[sim_below(
                        r, sizeof(sim_cloud_octets))];
                net.p[1] = (uint8_t)sim_below(r, 256);
        }
        for (i = 0; i < cnt; i++) {
                if (net.v6)
                        net.p[7] = (uint8_t)sim_below(r, 256);
                else
                        net.p[2] = (uint8_t)sim_below(r, 256);
                s->nets[i] = net;
        }
        s->net_cnt = cnt;
}

/* An attacker's network: a /24 of a hosting range. */
static void sim_nets_attacker(struct sim_stream *s, int cnt) {
        struct sim_rng *r = &s->rng;
        int i;

        for (i = 0; i < cnt; i++) {
                memset(&s->nets[i], 0, sizeof(s->nets[i]));
                s->nets[i].p[0] = sim_attacker_octets[sim_below(
                        r, sizeof(sim_attacker_octets))];
                s->nets[i].p[1] = (uint8_t)sim_below(r, 256);
                s->nets[i].p[2] = (uint8_t)sim_below(r, 256);
        }
        s->net_cnt = cnt;
        s->host_base = (uint16_t)sim_range(r, 2, 200);
        s->host_cnt = (uint16_t)sim_range(r, 1, 4);
}

static void sim_attacker_ua(struct sim_stream *s) {
        int f = (int)sim_below(&s->rng, SIM_ATTACKER_UA_CNT);

        snprintf(s->ua[0], sizeof(s->ua[0]), "%s%d%s",
                 sim_attacker_uas[f].head, (int)sim_range(&s->rng, 1, 9),
                 sim_attacker_uas[f].tail);
        memcpy(s->ua[1], s->ua[0], sizeof(s->ua[1]));
        s->ua_switch_ms = SIM_NEVER;
}

/* The stream's user agent, and sometimes an upgrade during the run. */
static void sim_stream_ua(struct sim_state *st, struct sim_stream *s,
                          const char *product) {
        struct sim_rng *r = &s->rng;
        int maj = (int)sim_range(r, 1, 6), mnr = (int)sim_range(r, 0, 30),
            pat = (int)sim_range(r, 0, 12), x = (int)sim_range(r, 8, 23);
        int fam = (int)sim_below(r, 4), v;

        for (v = 0; v < 2; v++, mnr++, pat = 0) {
                char *ua = s->ua[v];
                size_t n = sizeof(s->ua[v]);

                switch (s->behaves) {
                case MG_SIM_PROFILE_CI:
                        if (fam < 2)
                                snprintf(ua, n,
                                         "GitHub-Actions-Runner/2.%d.%d",
                                         mnr + 300, pat);
                        else if (fam < 3)
                                snprintf(ua, n, "gitlab-runner/17.%d.%d",
                                         mnr, pat);
                        else
                                snprintf(ua, n, "buildkite-agent/3.%d.%d",
                                         mnr + 60, pat);
                        break;
                case MG_SIM_PROFILE_INTEGRATION:
                        snprintf(ua, n, "%s-connector/%d.%d.%d", product, maj,
                                 mnr, pat);
                        break;
                case MG_SIM_PROFILE_AGENT:
                        snprintf(ua, n,
                                 "%s/%d.%d.%d agent-sdk/0.%d (python 3.%d)",
                                 product, maj, mnr, pat, x + 10, x % 5 + 9);
                        break;
                default:
                        if (s->behaves == MG_SIM_PROFILE_WORKLOAD &&
                            fam == 0)
                                snprintf(ua, n, "envoy/1.%d.%d", mnr, pat);
                        else if (fam == 0)
                                snprintf(ua, n,
                                         "%s/%d.%d.%d (go1.%d; linux/amd64)",
                                         product, maj, mnr, pat, x);
                        else if (fam == 1)
                                snprintf(ua, n,
                                         "%s/%d.%d.%d Java/%d okhttp/4.12.0",
                                         product, maj, mnr, pat, x);
                        else if (fam == 2)
                                snprintf(ua, n,
                                         "%s/%d.%d.%d python/3.%d "
                                         "urllib3/2.2.1",
                                         product, maj, mnr, pat, x % 6 + 8);
                        else
                                snprintf(ua, n,
                                         "%s/%d.%d.%d node/%d undici/6.19.2",
                                         product, maj, mnr, pat, x);
                        break;
                }
        }
        if (sim_chance(r, 0.3))
                s->ua_switch_ms = st->opts.start_ms +
                                  sim_range(r, 0, st->end_ms -
                                                          st->opts.start_ms);
}

/* Everything a benign stream needs to start. */
static void sim_stream_setup(struct sim_state *st, struct sim_stream *s,
                             const char *client, const char *product) {
        const struct sim_identity *id = &st->ids[s->id_idx];
        struct sim_rng *r = &s->rng;
        static const int64_t ttls[] = {15 * SIM_MIN, 30 * SIM_MIN,
                                       60 * SIM_MIN};
        int64_t start = st->opts.start_ms;
        double u = sim_unit(r);

        snprintf(s->client, sizeof(s->client), "%s", client);
        sim_stream_ua(st, s, product);
        s->grant = MG_GRANT_CLIENT_CREDENTIALS;
        switch (s->behaves) {
        case MG_SIM_PROFILE_CI:
                s->method = MG_AUTH_METHOD_OIDC_FEDERATION;
                s->grant = MG_GRANT_JWT_BEARER;
                sim_nets_cloud(s, (int)sim_range(r, 3, 6), 0);
                s->rate = sim_lognormal(r, 1.5, 0.4);
                if (s->role == SIM_STREAM_NIGHTLY)
                        s->next_ms = start + s->offset_ms +
                                     sim_range(r, 0, 90 * SIM_SEC);
                else
                        s->next_ms = sim_next_in_window(
                                s, id, start, (double)SIM_HOUR / s->rate);
                return;
        case MG_SIM_PROFILE_INTEGRATION:
                s->method = u < 0.7 ? MG_AUTH_METHOD_CLIENT_SECRET
                                    : MG_AUTH_METHOD_PRIVATE_KEY_JWT;
                sim_nets_cloud(s, (int)sim_range(r, 1, 3), 0.15);
                s->host_base = (uint16_t)sim_range(r, 2, 200);
                s->host_cnt = (uint16_t)sim_range(r, 1, 12);
                s->period_ms = sim_range(r, 5 * SIM_MIN, 15 * SIM_MIN);
                s->next_ms = start + sim_range(r, 0, s->period_ms);
                return;
        case MG_SIM_PROFILE_AGENT:
                s->method = u < 0.6   ? MG_AUTH_METHOD_PRIVATE_KEY_JWT
                            : u < 0.8 ? MG_AUTH_METHOD_CLIENT_SECRET
                                      : MG_AUTH_METHOD_MTLS;
                sim_nets_internal(s, (int)sim_range(r, 1, 2), 0.25);
                s->host_base = (uint16_t)sim_range(r, 2, 200);
                s->host_cnt = (uint16_t)sim_range(r, 1, 4);
                s->rate = sim_lognormal(r, 0.7, 0.4);
                s->next_ms = sim_next_in_window(s, id, start,
                                                (double)SIM_HOUR / s->rate);
                return;
        case MG_SIM_PROFILE_WORKLOAD:
                if (u < 0.5) {
                        s->method = MG_AUTH_METHOD_X509_SVID;
                } else {
                        s->method = MG_AUTH_METHOD_JWT_SVID;
                        s->grant = MG_GRANT_JWT_BEARER;
                }
                break;
        default:
                s->method = u < 0.5    ? MG_AUTH_METHOD_CLIENT_SECRET
                            : u < 0.85 ? MG_AUTH_METHOD_PRIVATE_KEY_JWT
                                       : MG_AUTH_METHOD_MTLS;
                if (s->method == MG_AUTH_METHOD_PRIVATE_KEY_JWT &&
                    sim_chance(r, 0.2))
                        s->grant = MG_GRANT_JWT_BEARER;
                break;
        }
        /* Services, workloads, applications of shared identities. */
        sim_nets_internal(s, (int)sim_range(r, 1, 3), 0.2);
        s->host_base = (uint16_t)sim_range(r, 2, 200);
        s->host_cnt = (uint16_t)sim_range(r, 1, 8);
        s->rate = id->profile == MG_SIM_PROFILE_SHARED
                          ? sim_lognormal(r, 3, 0.5)
                          : sim_lognormal(r, 5, 0.6);
        s->period_ms = ttls[sim_below(r, 3)];
        s->next_ms = start + sim_range(r, 0, s->period_ms);
}

/* Resources of a new identity: cnt distinct services starting with svc,
 * each with the write scope with probability pw. */
static void sim_identity_res(struct sim_rng *r, struct sim_identity *id,
                             int svc, int cnt, double pw, int deploy) {
        while (id->res_cnt < cnt) {
                uint16_t res = (uint16_t)(id->res_cnt == 0
                                                  ? svc
                                                  : (int)sim_below(
                                                            r, SIM_SVC_OPEN));
                int i, dup = 0;

                if (deploy)
                        res = SIM_RES_DEPLOY(res);
                for (i = 0; i < id->res_cnt; i++)
                        dup |= id->res[i] == res;
                if (dup)
                        continue;
                id->res[id->res_cnt] = res;
                id->res_write[id->res_cnt] = !deploy && sim_chance(r, pw);
                id->res_cnt++;
        }
}

/* Hours of week [h0, h1) on weekdays only or every day. */
static void sim_identity_window(struct sim_identity *id, int h0, int h1,
                                int weekdays) {
        int d, h;

        memset(id->window, 0, sizeof(id->window));
        for (d = 0; d < (weekdays ? 5 : 7); d++)
                for (h = h0; h < h1; h++)
                        id->window[d * 24 + h] = 1;
        memcpy(id->active, id->window, sizeof(id->active));
}

static mg_err_t sim_identity_init(struct sim_state *st, uint32_t idx,
                                  enum mg_sim_profile prof) {
        struct sim_identity *id = &st->ids[idx];
        struct sim_rng *r = &st->rng;
        const char *svc_name, *role;
        char client[64], product[64];
        int64_t si;
        int svc, k, cnt, d;

        id->profile = prof;
        id->behaves = prof;
        id->kind = sim_profile_kind[prof];
        id->quiet_ms = SIM_NEVER;
        memset(id->window, 1, sizeof(id->window));
        memset(id->active, 1, sizeof(id->active));
        if (prof == MG_SIM_PROFILE_SHARED && sim_chance(r, 0.5))
                id->kind = MG_IDENTITY_KIND_WORKLOAD;
        if (prof == MG_SIM_PROFILE_DORMANT) {
                id->behaves = sim_chance(r, 0.6) ? MG_SIM_PROFILE_SERVICE
                                                 : MG_SIM_PROFILE_INTEGRATION;
                id->kind = sim_profile_kind[id->behaves];
                id->quiet_ms = st->opts.start_ms +
                               (int64_t)((0.5 + 0.5 * sim_unit(r)) *
                                         (double)st->history_ms);
        }
        svc = (int)sim_below(r, SIM_SVC_OPEN);
        svc_name = sim_services[svc];
        role = sim_roles[sim_below(r, SIM_ROLE_CNT)];
        switch (id->behaves) {
        case MG_SIM_PROFILE_WORKLOAD:
                snprintf(id->name, sizeof(id->name),
                         "spiffe://corp.example/ns/%s/sa/%s-%u", svc_name,
                         role, idx);
                snprintf(client, sizeof(client), "k8s-%s-%s-%u", svc_name,
                         role, idx);
                sim_identity_res(r, id, svc, (int)sim_range(r, 1, 4), 0.4, 0);
                break;
        case MG_SIM_PROFILE_CI: {
                const char *repo = sim_repos[sim_below(r, SIM_REPO_CNT)];

                snprintf(id->name, sizeof(id->name),
                         "spiffe://corp.example/ci/%s-%s-%u", svc_name, repo,
                         idx);
                snprintf(client, sizeof(client), "gh-%s-%s-%u", svc_name,
                         repo, idx);
                sim_identity_res(r, id, svc, (int)sim_range(r, 1, 2), 0, 1);
                sim_identity_window(id, (int)sim_range(r, 7, 9),
                                    (int)sim_range(r, 16, 19), 1);
                break;
        }
        case MG_SIM_PROFILE_INTEGRATION: {
                const char *vendor = sim_vendors[sim_below(r, SIM_VENDOR_CNT)];

                snprintf(id->name, sizeof(id->name), "int-%s-%s-%04u", vendor,
                         svc_name, idx);
                snprintf(client, sizeof(client), "%s-%s-%u", vendor, svc_name,
                         idx);
                snprintf(product, sizeof(product), "%c%s",
                         vendor[0] - 'a' + 'A', vendor + 1);
                sim_identity_res(r, id, svc, (int)sim_range(r, 1, 3), 0.3, 0);
                break;
        }
        case MG_SIM_PROFILE_AGENT: {
                const char *agent = sim_agents[sim_below(r, SIM_AGENT_CNT)];

                snprintf(id->name, sizeof(id->name), "agent://%s-%u", agent,
                         idx);
                snprintf(client, sizeof(client), "%s-gw-%u", agent, idx);
                snprintf(product, sizeof(product), "%s", agent);
                sim_identity_res(r, id, svc, (int)sim_range(r, 3, 6), 0.5, 0);
                sim_identity_window(id, (int)sim_range(r, 6, 9),
                                    (int)sim_range(r, 18, 23),
                                    sim_chance(r, 0.6));
                break;
        }
        default: /* service, shared */
                snprintf(id->name, sizeof(id->name), "svc-%s-%s-%04u",
                         svc_name, role, idx);
                snprintf(client, sizeof(client), "svc-%s-%s-%u", svc_name,
                         role, idx);
                sim_identity_res(r, id, svc,
                                 (int)(prof == MG_SIM_PROFILE_SHARED
                                               ? sim_range(r, 2, 5)
                                               : sim_range(r, 1, 4)),
                                 0.4, 0);
                break;
        }
        if (id->behaves != MG_SIM_PROFILE_INTEGRATION &&
            id->behaves != MG_SIM_PROFILE_AGENT)
                snprintf(product, sizeof(product), "%s-%s", svc_name, role);

        /* Streams: one per application of a shared identity, a nightly
         * build for half of the CI runners, one otherwise. */
        cnt = prof == MG_SIM_PROFILE_SHARED ? (int)sim_range(r, 2, 4) : 1;
        for (k = 0; k < cnt; k++) {
                char app_client[80];
                const char *app = sim_apps[(k + sim_below(r, SIM_APP_CNT)) %
                                           SIM_APP_CNT];

                if ((si = sim_stream_add(st, idx, SIM_STREAM_NORMAL,
                                         id->behaves)) < 0)
                        return MG_ERR_NOMEM;
                if (k == 0)
                        id->stream = (uint32_t)si;
                if (cnt > 1)
                        snprintf(app_client, sizeof(app_client), "%s-%s-%d",
                                 client, app, k);
                else
                        snprintf(app_client, sizeof(app_client), "%s", client);
                sim_stream_setup(st, &st->streams[si], app_client,
                                 cnt > 1 ? app_client : product);
        }
        if (id->behaves == MG_SIM_PROFILE_CI && sim_chance(r, 0.5)) {
                int hn = (int)sim_range(r, 0, 4);
                struct sim_stream *s;

                for (d = 0; d < 7; d++)
                        id->active[d * 24 + hn] = 1;
                if ((si = sim_stream_add(st, idx, SIM_STREAM_NIGHTLY,
                                         id->behaves)) < 0)
                        return MG_ERR_NOMEM;
                s = &st->streams[si];
                s->offset_ms = hn * SIM_HOUR + sim_range(r, 0, 50) * SIM_MIN;
                sim_stream_setup(st, s, client, product);
                /* Same runner pool and tooling as the daytime jobs. */
                memcpy(s->nets, st->streams[id->stream].nets,
                       sizeof(s->nets));
                s->net_cnt = st->streams[id->stream].net_cnt;
                memcpy(s->ua, st->streams[id->stream].ua, sizeof(s->ua));
                s->ua_switch_ms = st->streams[id->stream].ua_switch_ms;
        }
        st->stats->identities[prof]++;
        st->stats->kinds[id->kind]++;
        return MG_OK;
}

static mg_err_t sim_population(struct sim_state *st) {
        const struct mg_sim_opts *o = &st->opts;
        uint32_t n = (uint32_t)o->identities, i, j, cnt[MG_SIM_PROFILE__CNT];
        double total = 0, frac[MG_SIM_PROFILE__CNT];
        uint8_t *prof;
        uint32_t used = 0;
        mg_err_t err = MG_OK;
        int p;

        if (!(st->ids = calloc(n, sizeof(*st->ids))) ||
            !(prof = malloc(n)))
                return MG_ERR_NOMEM;
        /* Exact apportionment (largest remainder), so a small population
         * still has every profile with a weight. */
        for (p = 0; p < MG_SIM_PROFILE__CNT; p++)
                total += o->mix[p];
        for (p = 0; p < MG_SIM_PROFILE__CNT; p++) {
                double q = (double)n * o->mix[p] / total;

                cnt[p] = (uint32_t)q;
                frac[p] = q - cnt[p];
                used += cnt[p];
        }
        while (used < n) {
                int best = -1;

                for (p = 0; p < MG_SIM_PROFILE__CNT; p++)
                        if (o->mix[p] > 0 && (best < 0 || frac[p] > frac[best]))
                                best = p;
                cnt[best]++;
                frac[best] = -1;
                used++;
        }
        for (p = 0, i = 0; p < MG_SIM_PROFILE__CNT; p++)
                for (j = 0; j < cnt[p]; j++)
                        prof[i++] = (uint8_t)p;
        for (i = n - 1; i > 0; i--) {
                uint8_t tmp;

                j = sim_below(&st->rng, i + 1);
                tmp = prof[i];
                prof[i] = prof[j];
                prof[j] = tmp;
        }
        for (i = 0; i < n && !err; i++)
                err = sim_identity_init(st, i, (enum mg_sim_profile)prof[i]);
        free(prof);
        return err;
}

/*
 * Attack plan.
 */

static int sim_attack_eligible(const struct sim_identity *id,
                               enum mg_sim_attack type) {
        switch (type) {
        case MG_SIM_ATTACK_DORMANT_REACTIVATION:
                return id->profile == MG_SIM_PROFILE_DORMANT;
        case MG_SIM_ATTACK_OFFHOURS_EXFILTRATION:
                return id->profile == MG_SIM_PROFILE_CI ||
                       id->profile == MG_SIM_PROFILE_AGENT;
        default:
                return id->profile != MG_SIM_PROFILE_DORMANT;
        }
}

/* An hour never active for id, with inactive neighbours (a session that
 * started the hour before could spill into it; the attack may run into
 * the next). */
static int sim_offhour(const struct sim_identity *id, int64_t hour) {
        int h = sim_how(hour * SIM_HOUR);

        return !id->active[(h + SIM_WEEK_HOURS - 1) % SIM_WEEK_HOURS] &&
               !id->active[h] && !id->active[(h + 1) % SIM_WEEK_HOURS];
}

/* When an attack of this type on id starts, or NEVER when it cannot. */
static int64_t sim_attack_start(struct sim_state *st,
                                const struct sim_identity *id,
                                enum mg_sim_attack type) {
        int64_t lo = st->opts.start_ms + st->history_ms,
                hi = st->end_ms - SIM_ATTACK_SPAN_MAX, run, gap, h, n = 0;

        if (type == MG_SIM_ATTACK_DORMANT_REACTIVATION) {
                run = st->end_ms - st->opts.start_ms;
                gap = run / 8 < SIM_DAY ? run / 8 : SIM_DAY;
                if (id->quiet_ms + gap > lo)
                        lo = id->quiet_ms + gap;
        }
        if (hi < lo)
                return SIM_NEVER;
        if (type != MG_SIM_ATTACK_OFFHOURS_EXFILTRATION)
                return sim_range(&st->rng, lo, hi);
        for (h = (lo + SIM_HOUR - 1) / SIM_HOUR; h <= hi / SIM_HOUR; h++)
                n += sim_offhour(id, h);
        if (n == 0)
                return SIM_NEVER;
        n = sim_range(&st->rng, 0, n - 1);
        for (h = (lo + SIM_HOUR - 1) / SIM_HOUR;; h++)
                if (sim_offhour(id, h) && n-- == 0)
                        break;
        return h * SIM_HOUR + sim_range(&st->rng, 0, 59) * SIM_MIN +
               sim_range(&st->rng, 0, 59 * SIM_SEC);
}

/* The stream playing an attack on identity idx from t0. */
static mg_err_t sim_attack_add(struct sim_state *st, uint32_t idx,
                               enum mg_sim_attack type, int64_t t0) {
        struct sim_identity *id = &st->ids[idx];
        const struct sim_stream *victim;
        struct sim_stream *s;
        int64_t si = sim_stream_add(st, idx, SIM_STREAM_ATTACK, id->behaves);
        int own_net = 0, own_ua = 0;

        if (si < 0)
                return MG_ERR_NOMEM;
        s = &st->streams[si];
        victim = &st->streams[id->stream];
        s->attack = type;
        s->next_ms = t0;
        s->first_ms = SIM_NEVER;
        memcpy(s->client, victim->client, sizeof(s->client));
        memcpy(s->ua, victim->ua, sizeof(s->ua));
        s->ua_switch_ms = victim->ua_switch_ms;
        memcpy(s->nets, victim->nets, sizeof(s->nets));
        s->net_cnt = victim->net_cnt;
        s->host_base = victim->host_base;
        s->host_cnt = victim->host_cnt;
        s->method = victim->method;
        s->grant = victim->grant;
        switch (type) {
        case MG_SIM_ATTACK_SCOPE_ESCALATION:
                /* From inside: the identity's own host and software. */
                own_net = own_ua = 1;
                break;
        case MG_SIM_ATTACK_OFFHOURS_EXFILTRATION:
                own_net = sim_chance(&s->rng, 0.6);
                own_ua = sim_chance(&s->rng, 0.5);
                break;
        case MG_SIM_ATTACK_DORMANT_REACTIVATION:
                own_net = own_ua = sim_chance(&s->rng, 0.5);
                break;
        default:
                break;
        }
        if (!own_net)
                sim_nets_attacker(s, (int)sim_range(&s->rng, 1, 2));
        if (!own_ua)
                sim_attacker_ua(s);
        if (own_ua) {
                /* The user agent current at the attack, for all of it. */
                if (t0 >= s->ua_switch_ms)
                        memcpy(s->ua[0], s->ua[1], sizeof(s->ua[0]));
                s->ua_switch_ms = SIM_NEVER;
        }
        id->attacked = 1;
        return MG_OK;
}

static mg_err_t sim_plan_attacks(struct sim_state *st) {
        static const enum mg_sim_attack order[MG_SIM_ATTACK__CNT] = {
                MG_SIM_ATTACK_DORMANT_REACTIVATION,
                MG_SIM_ATTACK_OFFHOURS_EXFILTRATION,
                MG_SIM_ATTACK_STOLEN_TOKEN,
                MG_SIM_ATTACK_SCOPE_ESCALATION,
                MG_SIM_ATTACK_CREDENTIAL_STUFFING,
                MG_SIM_ATTACK_LEAKED_SECRET};
        uint32_t n = (uint32_t)st->opts.identities, i, j, *perm, total;
        mg_err_t err = MG_OK;
        int k;

        total = (uint32_t)floor((double)n * st->opts.attack_rate + 0.5);
        if (total == 0)
                return MG_OK;
        if (!(perm = malloc(n * sizeof(*perm))))
                return MG_ERR_NOMEM;
        for (i = 0; i < n; i++)
                perm[i] = i;
        for (i = n - 1; i > 0; i--) {
                uint32_t tmp;

                j = sim_below(&st->rng, i + 1);
                tmp = perm[i];
                perm[i] = perm[j];
                perm[j] = tmp;
        }
        /* Types spread evenly; the ones that need a particular identity
         * (dormant, with off hours) choose first. */
        for (k = 0; k < MG_SIM_ATTACK__CNT && !err; k++) {
                enum mg_sim_attack type = order[k];
                uint32_t want = total / MG_SIM_ATTACK__CNT +
                                ((uint32_t)type < total % MG_SIM_ATTACK__CNT),
                         placed = 0;

                for (i = 0; i < n && placed < want && !err; i++) {
                        struct sim_identity *id = &st->ids[perm[i]];
                        int64_t t0;

                        if (id->attacked || !sim_attack_eligible(id, type))
                                continue;
                        if ((t0 = sim_attack_start(st, id, type)) ==
                            SIM_NEVER)
                                continue;
                        err = sim_attack_add(st, perm[i], type, t0);
                        placed++;
                }
                st->stats->attacks_unplaced += want - placed;
        }
        free(perm);
        return err;
}

/*
 * Emitting.
 */

static void sim_fmt_res(uint16_t res, char *buf, size_t size) {
        if (SIM_RES_IS_DEPLOY(res))
                snprintf(buf, size, "api://deploy/%s",
                         sim_services[res - SIM_SVC_CNT]);
        else
                snprintf(buf, size, "api://%s", sim_services[res]);
}

static void sim_fmt_scope(uint16_t scope, char *buf, size_t size) {
        if (scope == SIM_SCOPE_DEPLOY_READ)
                snprintf(buf, size, "deploy:read");
        else if (scope == SIM_SCOPE_DEPLOY_WRITE)
                snprintf(buf, size, "deploy:write");
        else if (scope == SIM_SCOPE_ARTIFACTS_READ)
                snprintf(buf, size, "artifacts:read");
        else
                snprintf(buf, size, "%s:%s", sim_services[scope / 3],
                         sim_levels[scope % 3]);
}

static void sim_fmt_addr(const struct sim_net *net, uint16_t host, char *buf,
                         size_t size) {
        const uint8_t *p = net->p;

        if (net->v6)
                snprintf(buf, size, "%x:%x:%x:%x::%x", p[0] << 8 | p[1],
                         p[2] << 8 | p[3], p[4] << 8 | p[5], p[6] << 8 | p[7],
                         host);
        else
                snprintf(buf, size, "%u.%u.%u.%u", p[0], p[1], p[2],
                         host % 254 + 1);
}

static void sim_fmt_token(const struct sim_state *st, uint32_t id_idx,
                          uint32_t token, char *buf, size_t size) {
        snprintf(buf, size, "t-%" PRIu64 "-%u-%u", st->opts.seed, id_idx,
                 token);
}

/* Copy s into ev as field (name for errors); err keeps the first error. */
static void sim_set(struct mg_event *ev, const char **field, const char *name,
                    const char *s, mg_err_t *err, char *errstr,
                    size_t errstr_size) {
        if (!*err)
                *err = mg_event_set_str(ev, field, name, s, strlen(s), errstr,
                                        errstr_size);
}

/* Build the mg_event of e, check it, hand it to the callback. */
static mg_err_t sim_emit(struct sim_state *st, struct sim_stream *s,
                         const struct sim_ev *e, char *errstr,
                         size_t errstr_size) {
        const struct sim_identity *id = &st->ids[s->id_idx];
        struct mg_event *ev = &st->ev;
        char buf[256];
        mg_err_t err = MG_OK;
        int i;

        mg_event_reset(ev, (enum mg_event_type)e->type);
        ev->ts_ms = e->ts;
        snprintf(buf, sizeof(buf), "%c-%" PRIu64 "-%" PRIu64,
                 "aus"[e->type], st->opts.seed, ++st->event_seq);
        sim_set(ev, &ev->event_id, "event_id", buf, &err, errstr,
                errstr_size);
        sim_set(ev, &ev->identity, "identity", id->name, &err, errstr,
                errstr_size);
        switch (e->type) {
        case MG_EVENT_AUTH: {
                struct mg_event_auth *auth = &ev->u.auth;

                auth->identity_kind = id->kind;
                auth->auth_method = (enum mg_auth_method)e->method;
                auth->grant_type = (enum mg_grant_type)e->grant;
                auth->outcome = (enum mg_auth_outcome)e->outcome;
                sim_set(ev, &auth->client_id, "client_id", s->client, &err,
                        errstr, errstr_size);
                sim_fmt_addr(&e->net, e->host, buf, sizeof(buf));
                sim_set(ev, &auth->source_ip, "source_ip", buf, &err, errstr,
                        errstr_size);
                sim_set(ev, &auth->user_agent, "user_agent", s->ua[e->ua],
                        &err, errstr, errstr_size);
                if (e->res != SIM_NONE) {
                        sim_fmt_res(e->res, buf, sizeof(buf));
                        sim_set(ev, &auth->audience, "audience", buf, &err,
                                errstr, errstr_size);
                }
                for (i = 0; i < e->scope_cnt && !err; i++) {
                        sim_fmt_scope(e->scopes[i], buf, sizeof(buf));
                        err = mg_event_add_scope(ev, buf, strlen(buf), errstr,
                                                 errstr_size);
                }
                if (e->fail != SIM_FAIL_NONE)
                        sim_set(ev, &auth->failure_reason, "failure_reason",
                                sim_fail_reasons[e->fail], &err, errstr,
                                errstr_size);
                if (e->token) {
                        sim_fmt_token(st, s->id_idx, e->token, buf,
                                      sizeof(buf));
                        sim_set(ev, &auth->token_id, "token_id", buf, &err,
                                errstr, errstr_size);
                }
                if (e->parent) {
                        sim_fmt_token(st, s->id_idx, e->parent, buf,
                                      sizeof(buf));
                        sim_set(ev, &auth->parent_token_id, "parent_token_id",
                                buf, &err, errstr, errstr_size);
                }
                break;
        }
        case MG_EVENT_USAGE: {
                struct mg_event_usage *usage = &ev->u.usage;

                usage->status = e->status;
                usage->bytes = e->bytes;
                if (e->token) {
                        sim_fmt_token(st, s->id_idx, e->token, buf,
                                      sizeof(buf));
                        sim_set(ev, &usage->token_id, "token_id", buf, &err,
                                errstr, errstr_size);
                }
                sim_fmt_res(e->res, buf, sizeof(buf));
                sim_set(ev, &usage->resource, "resource", buf, &err, errstr,
                        errstr_size);
                if (sim_actions[e->action].api)
                        snprintf(buf, sizeof(buf), "%s /v1/%s%s",
                                 sim_actions[e->action].method,
                                 sim_services[e->res],
                                 sim_actions[e->action].path);
                else
                        snprintf(buf, sizeof(buf), "%s %s",
                                 sim_actions[e->action].method,
                                 sim_actions[e->action].path);
                sim_set(ev, &usage->action, "action", buf, &err, errstr,
                        errstr_size);
                if (e->scope != SIM_NONE) {
                        sim_fmt_scope(e->scope, buf, sizeof(buf));
                        sim_set(ev, &usage->scope, "scope", buf, &err, errstr,
                                errstr_size);
                }
                sim_fmt_addr(&e->net, e->host, buf, sizeof(buf));
                sim_set(ev, &usage->source_ip, "source_ip", buf, &err, errstr,
                        errstr_size);
                break;
        }
        default: {
                struct mg_event_signal *sig = &ev->u.signal;

                sig->kind = MG_SIGNAL_SECRET_EXPOSED;
                sig->severity = e->severity;
                sim_set(ev, &sig->source, "source", "secret-scanner", &err,
                        errstr, errstr_size);
                snprintf(buf, sizeof(buf),
                         "client secret of %s found in a public repository",
                         s->client);
                sim_set(ev, &sig->detail, "detail", buf, &err, errstr,
                        errstr_size);
                break;
        }
        }
        /* A generated event that does not validate is a bug here. */
        if (!err)
                err = mg_event_validate(ev, st->end_ms, errstr, errstr_size);
        if (err) {
                char why[256];

                snprintf(why, sizeof(why), "%s", errstr ? errstr : "");
                return mg_err_set(MG_ERR_FATAL, errstr, errstr_size,
                                  "simulator generated an invalid event: %s",
                                  why);
        }
        st->stats->events[e->type]++;
        if (s->role == SIM_STREAM_ATTACK) {
                if (s->first_ms == SIM_NEVER)
                        s->first_ms = e->ts;
                s->last_ms = e->ts;
                s->att_events++;
        }
        if (st->emit_cb(st->opaque, ev))
                st->stats->stopped = 1;
        return MG_OK;
}

static void sim_label(struct sim_state *st, const struct sim_stream *s) {
        struct mg_sim_label lab;

        lab.identity = st->ids[s->id_idx].name;
        lab.attack = s->attack;
        lab.start_ms = s->first_ms;
        lab.end_ms = s->last_ms;
        lab.events = s->att_events;
        st->stats->attacks[s->attack]++;
        if (st->label_cb)
                st->label_cb(st->opaque, &lab);
}

static mg_err_t sim_loop(struct sim_state *st, char *errstr,
                         size_t errstr_size) {
        struct sim_ev e;
        uint32_t i;
        mg_err_t err;

        for (i = 0; i < st->stream_cnt; i++) {
                sim_stream_rekey(&st->streams[i]);
                if (st->streams[i].key != SIM_NEVER)
                        st->heap[st->heap_cnt++] = i;
        }
        for (i = st->heap_cnt / 2; i-- > 0;)
                sim_heap_down(st, i);
        while (st->heap_cnt > 0 && !st->stats->stopped) {
                struct sim_stream *s = &st->streams[st->heap[0]];

                if (s->pend_cnt == 0 || s->next_ms <= s->pend[0].ts) {
                        if (sim_generate(st, s))
                                return mg_err_set(MG_ERR_NOMEM, errstr,
                                                  errstr_size,
                                                  "out of memory");
                } else {
                        sim_pend_pop(s, &e);
                        if (e.ts >= st->end_ms)
                                s->pend_cnt = 0; /* all later: past the end */
                        else if ((err = sim_emit(st, s, &e, errstr,
                                                 errstr_size)))
                                return err;
                        if (s->role == SIM_STREAM_ATTACK && !s->pend_cnt &&
                            s->next_ms == SIM_NEVER && s->att_events)
                                sim_label(st, s);
                }
                sim_stream_rekey(s);
                if (s->key == SIM_NEVER)
                        st->heap[0] = st->heap[--st->heap_cnt];
                if (st->heap_cnt > 0)
                        sim_heap_down(st, 0);
        }
        return MG_OK;
}

/*
 * Public API.
 */

void mg_sim_opts_default(struct mg_sim_opts *opts) {
        memset(opts, 0, sizeof(*opts));
        opts->seed = 1;
        opts->start_ms = MG_SIM_START_DEFAULT_MS;
        opts->days = 7;
        opts->identities = 2000;
        opts->attack_rate = 0.05;
        memcpy(opts->mix, sim_mix_default, sizeof(opts->mix));
}

mg_err_t mg_sim_mix_parse(const char *s, double mix[MG_SIM_PROFILE__CNT],
                          char *errstr, size_t errstr_size) {
        const char *p = s;

        if (!*p)
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "empty mix: expected NAME=WEIGHT[,...]");
        while (*p) {
                size_t len = strcspn(p, ",");
                const char *eq = memchr(p, '=', len);
                char num[32], *end;
                int idx;
                double w;

                if (!eq)
                        return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                          "'%.*s': expected NAME=WEIGHT",
                                          (int)len, p);
                idx = mg_enum_parse(mg_sim_profile_names, MG_SIM_PROFILE__CNT,
                                    p, (size_t)(eq - p));
                if (idx < 0)
                        return mg_err_set(
                                MG_ERR_INVALID, errstr, errstr_size,
                                "'%.*s': unknown profile (service, workload, "
                                "ci, integration, agent, shared, dormant)",
                                (int)(eq - p), p);
                if ((size_t)(p + len - eq - 1) >= sizeof(num))
                        return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                          "'%.*s': weight too long", (int)len,
                                          p);
                memcpy(num, eq + 1, (size_t)(p + len - eq - 1));
                num[p + len - eq - 1] = '\0';
                w = strtod(num, &end);
                if (!num[0] || *end || !(w >= 0 && w <= 1e6))
                        return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                          "'%.*s': weight must be a number "
                                          "0..1000000",
                                          (int)len, p);
                mix[idx] = w;
                p += len;
                if (*p == ',')
                        p++;
        }
        return MG_OK;
}

mg_err_t mg_sim_opts_check(const struct mg_sim_opts *opts, char *errstr,
                           size_t errstr_size) {
        double total = 0;
        int p;

        if (opts->days < 1 || opts->days > MG_SIM_DAYS_MAX)
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "days: %d is out of range 1..%d",
                                  opts->days, MG_SIM_DAYS_MAX);
        if (opts->identities < 1 || opts->identities > MG_SIM_IDENTITIES_MAX)
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "identities: %d is out of range 1..%d",
                                  opts->identities, MG_SIM_IDENTITIES_MAX);
        if (!(opts->attack_rate >= 0 && opts->attack_rate <= 1))
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "attack_rate: %g is out of range 0..1",
                                  opts->attack_rate);
        if (opts->start_ms < MG_EVENT_TS_MIN ||
            opts->start_ms > INT64_MAX / 2)
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "start: %" PRId64
                                  " is before 2000-01-01T00:00:00Z or absurdly "
                                  "far ahead",
                                  opts->start_ms);
        for (p = 0; p < MG_SIM_PROFILE__CNT; p++) {
                if (!(opts->mix[p] >= 0 && opts->mix[p] <= 1e6))
                        return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                          "mix: weight of %s must be "
                                          "0..1000000",
                                          mg_sim_profile_names[p]);
                total += opts->mix[p];
        }
        if (total <= 0)
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "mix: every weight is 0");
        return MG_OK;
}

mg_err_t mg_sim_run(const struct mg_sim_opts *opts, mg_sim_emit_cb emit_cb,
                    mg_sim_label_cb label_cb, void *opaque,
                    struct mg_sim_stats *stats, char *errstr,
                    size_t errstr_size) {
        struct mg_sim_stats local;
        struct sim_state *st = NULL;
        int64_t run;
        mg_err_t err;
        uint32_t i;

        if (!stats)
                stats = &local;
        memset(stats, 0, sizeof(*stats));
        if ((err = mg_sim_opts_check(opts, errstr, errstr_size)))
                return err;
        if (!emit_cb)
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "emit_cb is NULL");
        if (!(st = calloc(1, sizeof(*st)))) {
                err = MG_ERR_NOMEM;
                goto out;
        }
        st->opts = *opts;
        run = (int64_t)opts->days * SIM_DAY;
        st->end_ms = opts->start_ms + run;
        st->history_ms = run / 2 < 2 * SIM_DAY ? run / 2 : 2 * SIM_DAY;
        sim_rng_seed(&st->rng, opts->seed, 0);
        st->emit_cb = emit_cb;
        st->label_cb = label_cb;
        st->opaque = opaque;
        st->stats = stats;
        if ((err = sim_population(st)) || (err = sim_plan_attacks(st)))
                goto out;
        if (!(st->heap = malloc(st->stream_cnt * sizeof(*st->heap)))) {
                err = MG_ERR_NOMEM;
                goto out;
        }
        err = sim_loop(st, errstr, errstr_size);
out:
        if (err == MG_ERR_NOMEM)
                mg_err_set(err, errstr, errstr_size, "out of memory");
        if (st) {
                for (i = 0; i < st->stream_cnt; i++)
                        free(st->streams[i].pend);
                free(st->streams);
                free(st->heap);
                free(st->ids);
                free(st);
        }
        return err;
}

char *mg_sim_label_to_json(const struct mg_sim_label *lab) {
        char start[32], end[32], *out;
        json_t *obj;

        mg_time_format_rfc3339(lab->start_ms, start, sizeof(start));
        mg_time_format_rfc3339(lab->end_ms, end, sizeof(end));
        obj = json_pack("{s:s, s:s, s:s, s:s}", "identity", lab->identity,
                        "attack",
                        (unsigned)lab->attack < MG_SIM_ATTACK__CNT
                                ? mg_sim_attack_names[lab->attack]
                                : "?",
                        "start", start, "end", end);
        if (!obj)
                return NULL;
        out = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(obj);
        return out;
}
