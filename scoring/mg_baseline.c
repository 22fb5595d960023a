/*
 * mg_baseline.c — the behavioural baseline of one identity and the pure
 * scoring function over it (see mg_baseline.h).
 *
 * Design. A baseline is one fixed-size struct without pointers, so the
 * scoring stage can keep it in a flat buffer and the Redis store can treat
 * it as an opaque blob. Everything in it is bounded:
 *   - LRU tables (most recently seen first, least recently seen evicted):
 *     16 source networks (/24 or /64), 8 source ASes (with
 *     scoring.asn_file), 8 clients, 8 user agents, 32 resources/audiences,
 *     32 scopes (granted and used, with times), 16 recent token ids
 *     (64-bit hashes and chain depth), 32 recent failed authentications.
 *     A table's content is therefore "the K most recently seen distinct
 *     values", which is what the unit test's naive model recomputes from
 *     the raw event list.
 *   - an hour-of-week histogram of activity (168 float buckets, decayed
 *     with a 14-day half-life, stored relative to a reference time so only
 *     the bucket an event falls in is touched);
 *   - per-minute event counts as decayed sums (weight, sum, sum of squares)
 *     over completed minutes, from which the mean and variance follow;
 *   - per-signal risk contributions, decayed with scoring.risk.half_life.
 * The struct is about 10 KB in memory; the encoded blob holds only the
 * used table entries, times as varint offsets from the newest event and
 * names without their hash when the hash can be recomputed, so a typical
 * identity encodes to well under 1.5 KB (the unit test prints one).
 *
 * Source ASes. With a prefix -> AS table (conf->asn, from
 * scoring.asn_file) each source address's origin AS is remembered too,
 * and new_source names it when it is new: "AS64500 never seen
 * (198.51.100.0/24)". The AS only refines a network novelty, it never
 * fires alone: an address in a known network is known whatever its AS,
 * so turning asn_file on (every identity's AS table empty) or a routing
 * change in the file fires nothing: firings are those of the network
 * table with or without AS data. What the AS changes is the points: a new
 * network in an AS the identity uses is "nearby" (like one in the same
 * /16 or /48) and adds new_source.nearby_weight, not the full weight.
 * Without asn_file the AS table stays empty and costs one blob byte.
 *
 * Time. Only event time exists here: no clock, no randomness. The
 * effective time of an event is max(its timestamp, the newest seen), so
 * time never runs backwards inside a baseline; an event older than the
 * newest by more than scoring.late_bound is refused (MG_ERR_LATE) and
 * leaves the baseline untouched. A late event still lands in the hour of
 * the week it happened in.
 *
 * Activity. Auth and usage events are the identity's activity: they count
 * towards warm-up, rates, the hour-of-week histogram and dormancy. Signal
 * events only add risk. The tables learn only from what worked (successful
 * authentications and usage): a failed authentication neither teaches a
 * network, client or scope nor fires the novelty signals — failures are
 * the business of auth_failures.
 *
 * Floating point: IEEE double arithmetic, exp2()/expm1()/sqrt() from libm,
 * no fast-math; the same binary gives the same results on every replay.
 * The histogram is stored as float (its 24-bit mantissa is plenty for a
 * share compared against a threshold) because 168 doubles would take most
 * of the per-identity Redis budget; arithmetic on it is done in double and
 * rounded once per update.
 *
 * Workload: one mg_baseline_apply() per consumed event, tens of thousands
 * per second per thread. Apply is O(table sizes) with no allocation;
 * encode/decode are linear in the blob.
 */
#include "mg_baseline.h"

#include <arpa/inet.h>
#include <assert.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_hash.h"

/* Table sizes. Each is a trade between what one workload plausibly uses
 * and the blob budget (<= ~1.5 KB encoded for a typical identity). */
#define MG_BL_NETS      16 /* a workload behind a few NATs or AZs uses 1-4 */
#define MG_BL_ASNS      8  /* a workload runs in one to a few providers */
#define MG_BL_CLIENTS   8  /* more than a handful is already "shared" */
#define MG_BL_AGENTS    8  /* versions overlap during rollouts */
#define MG_BL_RESOURCES 32 /* a deployer or agent touches tens of APIs */
#define MG_BL_SCOPES    32 /* broad service accounts hold tens of scopes */
#define MG_BL_TOKENS    16 /* an hour or more of issued tokens */
#define MG_BL_FAILS     32 /* upper bound of the auth_failures threshold */
#define MG_BL_TEXT      64 /* bytes kept of a name for display (63 + NUL) */

#define MG_BL_DETAIL sizeof(((struct mg_reason *)0)->detail)

/* Hour-of-week histogram: 7 days x 24 hours, bucket 0 = Monday 00h UTC. */
#define MG_HOW_BUCKETS 168
/* A two-week half-life keeps a weekly pattern through a holiday week and
 * still learns a schedule change in about a month. */
#define MG_HOW_HALF_LIFE_MS (14LL * 86400000)
/* Histogram weights grow as 2^(age/half-life) from the reference time;
 * past 16 half-lives (x65536) the buckets are rescaled, far from float's
 * range yet rare (every 224 days). */
#define MG_HOW_RENORM 16.0
/* off_hours says nothing until a whole week has been observed: before
 * that every new hour of the week would look unusual. */
#define MG_OFF_HOURS_SPAN_MS (7LL * 86400000)
/* Before that, from two days on, hours of the day are judged instead: one
 * day could be an exception, two show a routine. */
#define MG_OFF_HOURS_DAY_SPAN_MS (2LL * 86400000)
/* shared_identity counts clients, user agents and networks active within
 * one day: a daily batch job is still "active" the next day. */
#define MG_SHARED_WINDOW_MS (24LL * 3600000)
/* The tables shared_identity counts, indexes of shared_peak. */
#define MG_BL_SHARED_NETS    0
#define MG_BL_SHARED_CLIENTS 1
#define MG_BL_SHARED_AGENTS  2
/* rate_spike also needs this many events above the mean, so a quiet
 * identity going from 1 to 3 events a minute does not fire. */
#define MG_RATE_MIN_EXCESS 10.0
/* Reasons below half a point round to nothing in any display. */
#define MG_REASON_MIN_POINTS 0.5
/* A risk change smaller than this is not worth publishing. */
#define MG_RISK_CHANGE_MIN 0.5
#define MG_MS_PER_MIN  60000LL
#define MG_MS_PER_HOUR 3600000LL
#define MG_MS_PER_DAY  86400000LL
/* Newest plausible event time in a blob: 2200-01-01. Anything later is
 * corruption, and the bound keeps time arithmetic far from overflow. */
#define MG_BL_TS_MAX 7258118400000LL

#define MG_BL_MAGIC   "MGBL"
/* Version 2 added the source AS table, version 3 the shared_identity
 * peaks; older blobs still decode (an empty AS table; peaks as active at
 * their newest event). */
#define MG_BL_VERSION     3
#define MG_BL_VERSION_MIN 1
/* Flag bits of the blob's flags byte. */
#define MG_BLF_RATE_FIRED 0x01
#define MG_BLF_FAIL_BURST 0x02
/* Name header byte: bit 7 set = text is cut or sanitised, hash follows. */
#define MG_BL_NAME_HASHED 0x80

const char *const mg_signal_names[MG_SIG__CNT] = {
        "new_source",      "rate_spike",           "off_hours",
        "auth_failures",   "scope_expansion",      "new_resource",
        "dormant_reactivation", "shared_identity", "token_chain",
        "secret_exposed",  "credential_compromise", "quarantine"};

const char *const mg_risk_level_names[4] = {"low", "medium", "high",
                                            "critical"};

/* A source network: the /24 of an IPv4 or the /64 of an IPv6 address. */
struct mg_bl_net {
        uint8_t family;    /* 4 or 6 */
        uint8_t prefix[8]; /* first 3 (IPv4) or 8 (IPv6) bytes, rest 0 */
        int64_t last_ms;   /* effective time last seen */
};

/* A source AS. */
struct mg_bl_asn {
        int64_t last_ms;   /* effective time last seen */
        uint32_t asn;      /* AS number, > 0 */
};

/* A named value: client, user agent, resource. The hash identifies it;
 * the text is for people. Hashed tables start with the hash (mg_lru_find).
 */
struct mg_bl_name {
        uint64_t hash;          /* mg_bl_hash() of the whole value */
        int64_t last_ms;        /* effective time last seen */
        uint8_t exact;          /* 1: text is the whole value */
        char text[MG_BL_TEXT];  /* valid UTF-8, NUL-terminated */
};

/* A scope, granted (successful auth) and/or used (usage.scope). Times are
 * those of its current stay in the table: an evicted scope comes back as
 * new. */
struct mg_bl_scope {
        uint64_t hash;             /* mg_bl_hash() of the scope */
        int64_t first_granted_ms;  /* first grant; 0: never granted */
        int64_t granted_ms;        /* latest grant; 0: never granted */
        int64_t used_ms;           /* latest use; 0: never used */
        uint8_t exact;             /* 1: text is the whole scope */
        char text[MG_BL_TEXT];     /* valid UTF-8, NUL-terminated */
};

/* A token issued to the identity. */
struct mg_bl_token {
        uint64_t hash;  /* mg_bl_hash() of the token id */
        uint8_t depth;  /* exchanges since a non-exchange grant, max 255 */
};

struct mg_baseline {
        uint64_t ev_cnt[MG_EVENT_TYPE__CNT]; /* events applied, per type */
        int64_t newest_ms;      /* newest effective time; 0: no event */
        int64_t first_act_ms;   /* first activity (auth/usage); 0: none */
        int64_t last_act_ms;    /* latest activity; 0: none */

        /* rate_spike: decayed sums over completed minutes, weighted
         * r^(rate_minute - 1 - m) for minute m, r = 2^(-1 / half-life). */
        int64_t rate_minute;    /* minute (ms / 60000) being counted */
        uint32_t rate_cur;      /* activity events in rate_minute */
        uint8_t rate_fired;     /* rate_spike fired in rate_minute */
        double rate_w;          /* sum of weights (minutes) */
        double rate_s1;         /* sum of weight * count */
        double rate_s2;         /* sum of weight * count^2 */

        /* off_hours: bucket b holds sum of 2^((te - how_ref_ms) / 14d)
         * over activity in hour-of-week b; shares are scale-free. */
        int64_t how_ref_ms;     /* reference time of the weights */
        float how[MG_HOW_BUCKETS]; /* weight per hour of the week */

        /* auth_failures */
        int64_t fail_ms[MG_BL_FAILS]; /* failed auths in the window,
                                       * newest first */
        uint8_t fail_cnt;       /* entries in fail_ms */
        uint8_t fail_burst;     /* threshold reached at the last failure */

        /* risk */
        double contrib[MG_SIG__CNT]; /* points at newest_ms (quarantine
                                      * does not decay) */
        char detail[MG_SIG__CNT][MG_BL_DETAIL]; /* latest firing; kept
                                                 * while contrib > 0.5 */
        double pub_score;       /* score of the last risk change */
        uint8_t pub_level;      /* level of the last risk change */

        /* shared_identity: the most networks, clients and user agents
         * (MG_BL_SHARED_*) the identity has had active within one day:
         * its own normal, which only a new high exceeds. */
        uint8_t shared_peak[3];

        /* LRU tables, most recently seen first */
        uint8_t net_cnt;                        /* entries in nets */
        uint8_t asn_cnt;                        /* entries in asns */
        uint8_t client_cnt;                     /* entries in clients */
        uint8_t agent_cnt;                      /* entries in agents */
        uint8_t resource_cnt;                   /* entries in resources */
        uint8_t scope_cnt;                      /* entries in scopes */
        uint8_t token_cnt;                      /* entries in tokens */
        struct mg_bl_net nets[MG_BL_NETS];      /* source networks */
        struct mg_bl_asn asns[MG_BL_ASNS];      /* their ASes */
        struct mg_bl_name clients[MG_BL_CLIENTS]; /* OAuth client ids */
        struct mg_bl_name agents[MG_BL_AGENTS]; /* user agents */
        struct mg_bl_name resources[MG_BL_RESOURCES]; /* resources and
                                                       * audiences */
        struct mg_bl_scope scopes[MG_BL_SCOPES]; /* scopes */
        struct mg_bl_token tokens[MG_BL_TOKENS]; /* recently issued */
};

/* mg_lru_find() reads the hash at the start of an entry. */
_Static_assert(offsetof(struct mg_bl_name, hash) == 0, "hash first");
_Static_assert(offsetof(struct mg_bl_scope, hash) == 0, "hash first");
_Static_assert(offsetof(struct mg_bl_token, hash) == 0, "hash first");
_Static_assert(MG_HOW_BUCKETS % 8 == 0, "bitmap of whole bytes");
_Static_assert(MG_SIG__CNT <= 16, "signal bitmaps are 16 bits");

/*
 * Configuration table.
 */

#define CONF_OFF(field) offsetof(struct mg_scoring_conf, field)

/* Three properties per signal: weight (default w; wdesc ends its
 * description), threshold (default thr, bounds tmin..tmax, description
 * tdesc) and warmup (default warm). */
#define SIG_PROPS(name, idx, w, wdesc, thr, tmin, tmax, tdesc, warm)       \
        {"scoring.signals." name ".weight", MG_CONF_DOUBLE,                 \
         CONF_OFF(sig[idx].weight), w, 0, 100, 1,                            \
         "Points " name " adds to the risk score when it fires" wdesc "."}, \
        {"scoring.signals." name ".threshold", MG_CONF_DOUBLE,              \
         CONF_OFF(sig[idx].threshold), thr, tmin, tmax, 1, tdesc},          \
        {"scoring.signals." name ".warmup", MG_CONF_INT,                    \
         CONF_OFF(sig[idx].warmup), warm, 0, 1e9, 1,                         \
         "Auth and usage events the identity must have had before " name   \
         " may fire."}

const struct mg_conf_prop mg_scoring_conf_props[] = {
        {"scoring.risk.half_life", MG_CONF_MS, CONF_OFF(risk_half_life_ms),
         "6h", 60000, 30 * 86400000.0, 1,
         "Half-life of a signal's contribution to the risk score, in event "
         "time. Quarantine does not decay: it holds until a release."},
        {"scoring.levels.medium", MG_CONF_DOUBLE, CONF_OFF(level_medium), "25",
         0, 100, 1, "Risk score from which the level is medium."},
        {"scoring.levels.high", MG_CONF_DOUBLE, CONF_OFF(level_high), "50", 0,
         100, 1, "Risk score from which the level is high."},
        {"scoring.levels.critical", MG_CONF_DOUBLE, CONF_OFF(level_critical),
         "80", 0, 100, 1, "Risk score from which the level is critical."},
        {"scoring.dormant_after", MG_CONF_MS, CONF_OFF(dormant_after_ms),
         "14d", 3600000, 365 * 86400000.0, 1,
         "Silence after which activity counts as dormant_reactivation."},
        {"scoring.scope_unused_after", MG_CONF_MS,
         CONF_OFF(scope_unused_after_ms), "30d", 3600000, 365 * 86400000.0, 1,
         "A scope granted for at least this long and not used for this long "
         "is unused: the decision service may narrow it away."},
        {"scoring.late_bound", MG_CONF_MS, CONF_OFF(late_bound_ms), "1h", 0,
         7 * 86400000.0, 1,
         "Events up to this much older than the identity's newest event are "
         "applied (at the newest time); older ones are refused as late."},
        {"scoring.rate.half_life", MG_CONF_MS, CONF_OFF(rate_half_life_ms),
         "1d", 60000, 30 * 86400000.0, 1,
         "Half-life of the per-minute event rate's mean and variance; a day "
         "keeps the last bursts of a bursty identity in memory."},
        {"scoring.auth_failures.window", MG_CONF_MS,
         CONF_OFF(failure_window_ms), "5m", 1000, 86400000, 1,
         "Window in which failed authentications are counted for "
         "auth_failures."},
        {"scoring.asn_file", MG_CONF_STR, CONF_OFF(asn_file), "", 0, 4096, 0,
         "File of prefix -> origin AS lines, \"203.0.113.0/24 64500\" or "
         "CAIDA pfx2as \"1.0.0.0<TAB>24<TAB>13335\" (IPv4 and IPv6, longest "
         "prefix wins; a bad line stops the start naming file and line). "
         "With it each identity remembers its 8 most recent source ASes "
         "and new_source names a new one: \"AS64500 never seen "
         "(198.51.100.0/24)\". Empty: no AS data. Read once at start."},
        {"scoring.signals.new_source.nearby_weight", MG_CONF_DOUBLE,
         CONF_OFF(new_source_nearby), "10", 0, 100, 1,
         "Points new_source adds instead of its weight when the new network "
         "is near one the identity uses: the same /16 (IPv4) or /48 (IPv6) "
         "as a network in its table, or, with scoring.asn_file, an AS it "
         "has used. Workloads move between a site's subnets all the time; "
         "a network far from all of them is the stronger sign."},
        SIG_PROPS("new_source", MG_SIG_NEW_SOURCE, "30", "", "16", 1,
                  MG_BL_NETS,
                  "How many of the identity's most recently seen source "
                  "networks (/24 for IPv4, /64 for IPv6) count as known, "
                  "1-16; a successful auth or usage from any other network "
                  "fires (naming the AS too when scoring.asn_file places "
                  "the address in an AS the identity has not used).",
                  "20"),
        SIG_PROPS("rate_spike", MG_SIG_RATE_SPIKE, "20", "", "8", 1, 100,
                  "Standard deviations above the identity's mean events per "
                  "active minute (minutes with any activity, so an identity "
                  "that works in bursts has bursts as its norm) that the "
                  "current minute must exceed, and by at least 10 events; at "
                  "most once per minute.",
                  "200"),
        SIG_PROPS("off_hours", MG_SIG_OFF_HOURS, "25", "", "0.001", 0, 1,
                  "Fires when the share of the identity's activity in this "
                  "hour of the week (UTC, averaged with the hours before and "
                  "after, decayed over weeks) is below this; uniform "
                  "round-the-clock activity is 1/168 = 0.006. With two to "
                  "seven days of history, the hour of the day over all days "
                  "stands in for the hour of the week (so weekends cannot "
                  "be told from weekdays before a whole week). At most once "
                  "per clock hour.",
                  "500"),
        SIG_PROPS("auth_failures", MG_SIG_AUTH_FAILURES, "25", "", "5", 1,
                  MG_BL_FAILS,
                  "Failed authentications within scoring.auth_failures.window "
                  "that fire, 1-32; once per burst (the count must drop "
                  "below it before it fires again).",
                  "0"),
        SIG_PROPS("scope_expansion", MG_SIG_SCOPE_EXPANSION, "25", "", "32",
                  1, MG_BL_SCOPES,
                  "How many of the identity's most recently granted or used "
                  "scopes count as known, 1-32; a successful auth granting "
                  "any other scope fires.",
                  "20"),
        SIG_PROPS("new_resource", MG_SIG_NEW_RESOURCE, "8", "", "32", 1,
                  MG_BL_RESOURCES,
                  "How many of the identity's most recently used resources "
                  "and audiences count as known, 1-32; first use of any "
                  "other fires.",
                  "20"),
        SIG_PROPS("dormant_reactivation", MG_SIG_DORMANT_REACTIVATION, "30",
                  "", "0", 0, 1,
                  "Not used: the silence that counts is "
                  "scoring.dormant_after.",
                  "20"),
        SIG_PROPS("shared_identity", MG_SIG_SHARED_IDENTITY, "20", "", "3", 1,
                  MG_BL_CLIENTS - 1,
                  "Distinct clients, user agents or source networks active "
                  "in the last 24h above which a new one fires (one identity "
                  "used by several workloads), 1-7; only past the identity's "
                  "own highest count so far (learnt during the warm-up too), "
                  "and not for a network new_source judges new.",
                  "300"),
        SIG_PROPS("token_chain", MG_SIG_TOKEN_CHAIN, "25", "", "4", 1, 254,
                  "Deepest token exchange chain allowed (a token from a "
                  "plain grant has depth 0, each exchange adds 1); an "
                  "exchange from a parent token not among the identity's 16 "
                  "most recent also fires.",
                  "20"),
        SIG_PROPS("secret_exposed", MG_SIG_SECRET_EXPOSED, "60",
                  " times severity/100", "0", 0, 100,
                  "Least severity (0-100) of a secret_exposed signal that "
                  "counts.",
                  "0"),
        SIG_PROPS("credential_compromise", MG_SIG_CREDENTIAL_COMPROMISE, "80",
                  " times severity/100", "0", 0, 100,
                  "Least severity (0-100) of a credential_compromise signal "
                  "that counts.",
                  "0"),
        SIG_PROPS("quarantine", MG_SIG_QUARANTINE, "100",
                  " times severity/100; held until a release", "0", 0, 100,
                  "Least severity (0-100) of a quarantine signal that "
                  "counts.",
                  "0"),
};
const size_t mg_scoring_conf_prop_cnt =
        sizeof(mg_scoring_conf_props) / sizeof(*mg_scoring_conf_props);

/*
 * Small helpers.
 */

/* FNV-1a, then murmur3's finaliser so nearby strings spread over all 64
 * bits. Stored in blobs: never change it without a blob version bump. */
static uint64_t mg_bl_hash(const char *s) {
        uint64_t h = mg_hash_str(s);

        h ^= h >> 33;
        h *= 0xff51afd7ed558ccdULL;
        h ^= h >> 33;
        h *= 0xc4ceb9fe1a85ec53ULL;
        h ^= h >> 33;
        return h;
}

/* Length of the valid UTF-8 character at p (avail bytes), 0 if invalid
 * (overlong forms, surrogates and code points past U+10FFFF included, as
 * JSON refuses them). NUL is invalid here. */
static size_t mg_utf8_len(const unsigned char *p, size_t avail) {
        uint32_t cp;
        size_t n, i;

        if (avail == 0 || p[0] == 0)
                return 0;
        if (p[0] < 0x80)
                return 1;
        if ((p[0] & 0xe0) == 0xc0) {
                n = 2;
                cp = p[0] & 0x1f;
        } else if ((p[0] & 0xf0) == 0xe0) {
                n = 3;
                cp = p[0] & 0x0f;
        } else if ((p[0] & 0xf8) == 0xf0) {
                n = 4;
                cp = p[0] & 0x07;
        } else {
                return 0;
        }
        if (n > avail)
                return 0;
        for (i = 1; i < n; i++) {
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (p[i] & 0x3f);
        }
        if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) ||
            (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        return n;
}

/* 1 if s (len bytes) is valid UTF-8 without NUL. */
static int mg_utf8_valid(const char *s, size_t len) {
        size_t i = 0, n;

        while (i < len) {
                n = mg_utf8_len((const unsigned char *)s + i, len - i);
                if (!n)
                        return 0;
                i += n;
        }
        return 1;
}

/* Copy s into dst (size bytes) as valid UTF-8: invalid bytes become '?'
 * and the copy ends at a character boundary. Returns 1 when dst holds s
 * exactly. */
static int mg_bl_text_copy(char *dst, size_t size, const char *s) {
        size_t i = 0, o = 0, n, len = strlen(s);
        int exact = 1;

        assert(size > 0);
        while (i < len) {
                n = mg_utf8_len((const unsigned char *)s + i, len - i);
                if (o + (n ? n : 1) >= size) {
                        exact = 0;
                        break;
                }
                if (n) {
                        memcpy(dst + o, s + i, n);
                        o += n;
                        i += n;
                } else {
                        dst[o++] = '?';
                        i++;
                        exact = 0;
                }
        }
        dst[o] = '\0';
        return exact;
}

static int64_t mg_floor_div(int64_t a, int64_t b) {
        int64_t q = a / b;

        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Hour of the week of a time, 0 = Monday 00h UTC (1970-01-01 was a
 * Thursday, day 3). */
static int mg_how_bucket(int64_t ms) {
        int64_t hours = mg_floor_div(ms, MG_MS_PER_HOUR);
        int64_t days = mg_floor_div(hours, 24);
        int64_t wday = ((days + 3) % 7 + 7) % 7;

        return (int)(wday * 24 + (hours - days * 24));
}

static const char *const mg_day_names[7] = {"Mon", "Tue", "Wed", "Thu",
                                            "Fri", "Sat", "Sun"};

/* 2^(-dt/half_life); 1 when there is nothing to decay. */
static double mg_bl_decay(int64_t dt_ms, int64_t half_life_ms) {
        if (dt_ms <= 0 || half_life_ms <= 0)
                return 1.0;
        return exp2(-(double)dt_ms / (double)half_life_ms);
}

static enum mg_risk_level mg_bl_level(const struct mg_scoring_conf *conf,
                                      double score) {
        if (score >= conf->level_critical)
                return MG_RISK_CRITICAL;
        if (score >= conf->level_high)
                return MG_RISK_HIGH;
        if (score >= conf->level_medium)
                return MG_RISK_MEDIUM;
        return MG_RISK_LOW;
}

/* A threshold that counts table entries, as an int in 1..cap. */
static int mg_bl_known(double threshold, int cap) {
        if (!(threshold >= 1))
                return 1;
        if (threshold >= cap)
                return cap;
        return (int)threshold;
}

/*
 * Source networks.
 */

/* The network of a textual address: IPv4 or IPv6, optionally in brackets,
 * with a port (IPv4 "a.b.c.d:p") or a zone ("fe80::1%eth0"). IPv4-mapped
 * IPv6 addresses are IPv4. The whole address goes to addr (4 bytes for
 * IPv4, 16 for IPv6) for the AS lookup. -1 when it is not an address. */
static int mg_bl_net_parse(const char *ip, struct mg_bl_net *net,
                           unsigned char addr[16]) {
        char buf[INET6_ADDRSTRLEN + 8], *p;
        unsigned char a[16];
        const char *end;
        size_t len;

        memset(net, 0, sizeof(*net));
        if (!ip)
                return -1;
        if (ip[0] == '[') {
                ip++;
                end = strchr(ip, ']');
                if (!end)
                        return -1;
                len = (size_t)(end - ip);
        } else {
                len = strlen(ip);
        }
        if (len >= sizeof(buf))
                return -1;
        memcpy(buf, ip, len);
        buf[len] = '\0';
        if ((p = strchr(buf, '%')))
                *p = '\0';
        if ((p = strchr(buf, ':')) && strchr(buf, '.') &&
            !strchr(p + 1, ':'))
                *p = '\0'; /* "a.b.c.d:port" */
        if (inet_pton(AF_INET, buf, a) == 1) {
                net->family = 4;
                memcpy(net->prefix, a, 3);
                memcpy(addr, a, 4);
                return 0;
        }
        if (inet_pton(AF_INET6, buf, a) != 1)
                return -1;
        if (!memcmp(a, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12)) {
                net->family = 4;
                memcpy(net->prefix, a + 12, 3);
                memcpy(addr, a + 12, 4);
                return 0;
        }
        net->family = 6;
        memcpy(net->prefix, a, 8);
        memcpy(addr, a, 16);
        return 0;
}

/* "198.51.100.0/24" or "2001:db8:1:2::/64". */
static void mg_bl_net_format(const struct mg_bl_net *net, char *buf,
                             size_t size) {
        unsigned char a[16] = {0};
        char tmp[INET6_ADDRSTRLEN];

        if (net->family == 4) {
                snprintf(buf, size, "%u.%u.%u.0/24", net->prefix[0],
                         net->prefix[1], net->prefix[2]);
                return;
        }
        memcpy(a, net->prefix, 8);
        if (!inet_ntop(AF_INET6, a, tmp, sizeof(tmp)))
                snprintf(tmp, sizeof(tmp), "?");
        snprintf(buf, size, "%s/64", tmp);
}

/*
 * LRU tables: arrays kept most recently seen first.
 */

/* Largest entry moved by mg_lru_touch(). */
#define MG_LRU_ELSIZE_MAX sizeof(struct mg_bl_scope)
_Static_assert(sizeof(struct mg_bl_name) <= MG_LRU_ELSIZE_MAX, "lru size");
_Static_assert(sizeof(struct mg_bl_net) <= MG_LRU_ELSIZE_MAX, "lru size");
_Static_assert(sizeof(struct mg_bl_asn) <= MG_LRU_ELSIZE_MAX, "lru size");

/* Index of the entry of a hashed table whose hash is h, or -1. */
static int mg_lru_find(const void *arr, size_t elsize, int cnt, uint64_t h) {
        const unsigned char *p = arr;
        uint64_t eh;
        int i;

        for (i = 0; i < cnt; i++) {
                memcpy(&eh, p + (size_t)i * elsize, sizeof(eh));
                if (eh == h)
                        return i;
        }
        return -1;
}

static int mg_bl_asn_find(const struct mg_baseline *bl, uint32_t asn) {
        int i;

        for (i = 0; i < bl->asn_cnt; i++)
                if (bl->asns[i].asn == asn)
                        return i;
        return -1;
}

static int mg_bl_net_find(const struct mg_baseline *bl,
                          const struct mg_bl_net *net) {
        int i;

        for (i = 0; i < bl->net_cnt; i++)
                if (bl->nets[i].family == net->family &&
                    !memcmp(bl->nets[i].prefix, net->prefix, 8))
                        return i;
        return -1;
}

/* Whether a network of the table shares net's /16 (IPv4) or /48 (IPv6):
 * the same site, another subnet. */
static int mg_bl_net_nearby(const struct mg_baseline *bl,
                            const struct mg_bl_net *net) {
        size_t wide = net->family == 4 ? 2 : 6;
        int i;

        for (i = 0; i < bl->net_cnt; i++)
                if (bl->nets[i].family == net->family &&
                    !memcmp(bl->nets[i].prefix, net->prefix, wide))
                        return 1;
        return 0;
}

/* Move entry idx to the front, or, when idx < 0, make a zeroed entry at
 * the front (the last one falls out when the table is full). Returns the
 * front entry. */
static void *mg_lru_touch(void *arr, size_t elsize, uint8_t *cnt, int cap,
                          int idx) {
        unsigned char tmp[MG_LRU_ELSIZE_MAX], *p = arr;

        assert(elsize <= sizeof(tmp));
        if (idx < 0) {
                if (*cnt < cap)
                        (*cnt)++;
                memmove(p + elsize, p, (size_t)(*cnt - 1) * elsize);
                memset(p, 0, elsize);
        } else if (idx > 0) {
                memcpy(tmp, p + (size_t)idx * elsize, elsize);
                memmove(p + elsize, p, (size_t)idx * elsize);
                memcpy(p, tmp, elsize);
        }
        return p;
}

/* Entries of a name table last seen within the shared_identity window. */
static int mg_bl_names_active(const struct mg_bl_name *names, int cnt,
                              int64_t te) {
        int i, n = 0;

        for (i = 0; i < cnt; i++)
                n += te - names[i].last_ms < MG_SHARED_WINDOW_MS;
        return n;
}

/* How many networks, clients and user agents (indexes MG_BL_SHARED_*) are
 * active within the shared_identity window at te. */
static void mg_bl_shared_active(const struct mg_baseline *bl, int64_t te,
                                int active[3]) {
        int i, nets = 0;

        for (i = 0; i < bl->net_cnt; i++)
                nets += te - bl->nets[i].last_ms < MG_SHARED_WINDOW_MS;
        active[MG_BL_SHARED_NETS] = nets;
        active[MG_BL_SHARED_CLIENTS] =
                mg_bl_names_active(bl->clients, bl->client_cnt, te);
        active[MG_BL_SHARED_AGENTS] =
                mg_bl_names_active(bl->agents, bl->agent_cnt, te);
}

/* The shared_identity peaks of a baseline that did not keep them (blob
 * versions 1 and 2): what is active at its newest event, so an upgrade
 * does not make every busy identity's next value a new high. */
static void mg_bl_shared_peaks_now(struct mg_baseline *bl) {
        int active[3], i;

        mg_bl_shared_active(bl, bl->newest_ms, active);
        for (i = 0; i < 3; i++)
                bl->shared_peak[i] = (uint8_t)active[i];
}

/* Touch value in a name table at te; sets *was_active to whether it was
 * there and active in the shared_identity window before. Returns its
 * index before the touch (-1: new). */
static int mg_bl_name_touch(struct mg_bl_name *names, uint8_t *cnt, int cap,
                            const char *value, int64_t te, int *was_active) {
        uint64_t h = mg_bl_hash(value);
        struct mg_bl_name *name;
        int idx;

        idx = mg_lru_find(names, sizeof(*names), *cnt, h);
        if (was_active)
                *was_active = idx >= 0 &&
                              te - names[idx].last_ms < MG_SHARED_WINDOW_MS;
        name = mg_lru_touch(names, sizeof(*names), cnt, cap, idx);
        if (idx < 0) {
                name->hash = h;
                name->exact = (uint8_t)mg_bl_text_copy(
                        name->text, sizeof(name->text), value);
        }
        name->last_ms = te;
        return idx;
}

/*
 * Applying events.
 */

/* What one event fired. */
struct mg_bl_fired {
        unsigned mask;                           /* 1 << enum mg_signal */
        double points[MG_SIG__CNT];              /* points of each */
        char detail[MG_SIG__CNT][MG_BL_DETAIL];  /* detail of each */
};

/* State of one mg_baseline_apply(). */
struct mg_bl_ctx {
        struct mg_baseline *bl;             /* baseline being updated */
        const struct mg_scoring_conf *conf; /* configuration */
        const struct mg_event *ev;          /* event being applied */
        int64_t te;           /* effective time of the event */
        uint64_t act_before;  /* activity events applied before it */
        uint64_t auth_before; /* authentications applied before it */
        struct mg_bl_fired fired;
};

/* 1 if signal sig is past its warm-up. */
/* scope_expansion judges grants, so it counts authentications: usage and
 * auth events come from different topics and partitions, with no order
 * between them, and forty usage events must not arm it before the first
 * grant has been seen. The others count all activity. */
static int mg_bl_armed(const struct mg_bl_ctx *ctx, enum mg_signal sig) {
        int64_t warmup = ctx->conf->sig[sig].warmup;
        uint64_t seen = sig == MG_SIG_SCOPE_EXPANSION ? ctx->auth_before
                                                      : ctx->act_before;

        return warmup <= 0 || seen >= (uint64_t)warmup;
}

__attribute__((format(printf, 4, 5))) static void
mg_bl_fire(struct mg_bl_ctx *ctx, enum mg_signal sig, double points,
           const char *fmt, ...) {
        char buf[2 * MG_BL_DETAIL];
        va_list ap;

        if (ctx->fired.mask & (1u << sig))
                return;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        ctx->fired.mask |= 1u << sig;
        ctx->fired.points[sig] = points;
        mg_bl_text_copy(ctx->fired.detail[sig], MG_BL_DETAIL, buf);
}

/* rate_spike: count the event in its minute, closing the minutes before
 * it. A completed active minute m enters the sums with weight 1 and every
 * later minute, active or not, multiplies the sums by r: the mean and
 * variance are those of the identity's active minutes, recent ones
 * weighing more. */
static void mg_bl_rate(struct mg_bl_ctx *ctx) {
        struct mg_baseline *bl = ctx->bl;
        const struct mg_scoring_conf *conf = ctx->conf;
        int64_t minute = mg_floor_div(ctx->te, MG_MS_PER_MIN), gap;
        double hl, r, rg, c, mean, var, sd, k;

        if (ctx->act_before == 0) {
                bl->rate_minute = minute;
        } else if (minute > bl->rate_minute) {
                hl = conf->rate_half_life_ms > 0
                             ? (double)conf->rate_half_life_ms / MG_MS_PER_MIN
                             : 1.0;
                r = exp2(-1.0 / hl);
                c = bl->rate_cur;
                bl->rate_w = bl->rate_w * r + 1.0;
                bl->rate_s1 = bl->rate_s1 * r + c;
                bl->rate_s2 = bl->rate_s2 * r + c * c;
                /* Minutes without activity decay the sums but do not
                 * enter them: the statistics are of active minutes, so an
                 * identity that works in bursts has bursts as its norm. */
                gap = minute - bl->rate_minute - 1;
                if (gap > 0) {
                        rg = exp2(-(double)gap / hl);
                        bl->rate_w *= rg;
                        bl->rate_s1 *= rg;
                        bl->rate_s2 *= rg;
                }
                bl->rate_minute = minute;
                bl->rate_cur = 0;
                bl->rate_fired = 0;
        }
        if (bl->rate_cur < UINT32_MAX)
                bl->rate_cur++;
        if (bl->rate_fired || bl->rate_w <= 0 ||
            !mg_bl_armed(ctx, MG_SIG_RATE_SPIKE))
                return;
        c = bl->rate_cur;
        mean = bl->rate_s1 / bl->rate_w;
        var = bl->rate_s2 / bl->rate_w - mean * mean;
        sd = var > 0 ? sqrt(var) : 0;
        k = conf->sig[MG_SIG_RATE_SPIKE].threshold;
        /* Counts are integers and the mean is one whenever traffic is
         * constant: comparing against half an event keeps rounding noise
         * in the mean from deciding. */
        if (c - mean > MG_RATE_MIN_EXCESS - 0.5 && c > mean + k * sd) {
                bl->rate_fired = 1;
                mg_bl_fire(ctx, MG_SIG_RATE_SPIKE,
                           conf->sig[MG_SIG_RATE_SPIKE].weight,
                           "%.0f events in one minute, usual %.1f +- %.1f", c,
                           mean, sd);
        }
}

/* Share of the histogram's weight in bucket b and its two neighbours,
 * divided by 3 (the average share of the three hours). -1 when empty. */
static double mg_bl_how_share(const struct mg_baseline *bl, int b) {
        double total = 0, near;
        int i;

        for (i = 0; i < MG_HOW_BUCKETS; i++)
                total += bl->how[i];
        if (total <= 0)
                return -1;
        near = (double)bl->how[(b + MG_HOW_BUCKETS - 1) % MG_HOW_BUCKETS] +
               (double)bl->how[b] +
               (double)bl->how[(b + 1) % MG_HOW_BUCKETS];
        return near / (3 * total);
}

/* Share of the histogram's weight in hour of the day b % 24 and its two
 * neighbours, over every day of the week, divided by 3 * 7: comparable
 * with mg_bl_how_share(). -1 when empty. */
static double mg_bl_hod_share(const struct mg_baseline *bl, int b) {
        double total = 0, near = 0;
        int i, h = b % 24;

        for (i = 0; i < MG_HOW_BUCKETS; i++) {
                int d = (i % 24 - h + 24) % 24;

                total += bl->how[i];
                if (d == 0 || d == 1 || d == 23)
                        near += bl->how[i];
        }
        if (total <= 0)
                return -1;
        return near / (3 * 7 * total);
}

/* off_hours: check the event's hour of the week, then count it there.
 * Before a whole week has been seen, the hour of the day stands in for it
 * (from MG_OFF_HOURS_DAY_SPAN_MS on): a workload that has only ever run in
 * office hours is off hours at 3 am on any day. */
static void mg_bl_how(struct mg_bl_ctx *ctx) {
        struct mg_baseline *bl = ctx->bl;
        int b = mg_how_bucket(ctx->ev->ts_ms), i, again;
        int64_t seen = bl->first_act_ms ? ctx->te - bl->first_act_ms : 0;
        double share, x, f;

        /* At most once per clock hour: the first activity of an hour
         * says it all, the rest of a busy hour would only repeat it. */
        again = bl->last_act_ms &&
                mg_floor_div(bl->last_act_ms, MG_MS_PER_HOUR) ==
                        mg_floor_div(ctx->te, MG_MS_PER_HOUR);
        if (bl->first_act_ms && seen >= MG_OFF_HOURS_DAY_SPAN_MS && !again &&
            mg_bl_armed(ctx, MG_SIG_OFF_HOURS)) {
                share = seen >= MG_OFF_HOURS_SPAN_MS ? mg_bl_how_share(bl, b)
                                                     : mg_bl_hod_share(bl, b);
                if (share >= 0 &&
                    share < ctx->conf->sig[MG_SIG_OFF_HOURS].threshold)
                        mg_bl_fire(ctx, MG_SIG_OFF_HOURS,
                                   ctx->conf->sig[MG_SIG_OFF_HOURS].weight,
                                   "activity %s %02d:00-%02d:59 UTC, an hour "
                                   "with %.2f%% of the usual activity",
                                   mg_day_names[b / 24], b % 24, b % 24,
                                   share * 100);
        }
        if (!bl->how_ref_ms)
                bl->how_ref_ms = ctx->te;
        x = (double)(ctx->te - bl->how_ref_ms) / MG_HOW_HALF_LIFE_MS;
        if (x > MG_HOW_RENORM) {
                f = exp2(-x);
                for (i = 0; i < MG_HOW_BUCKETS; i++)
                        bl->how[i] = (float)((double)bl->how[i] * f);
                bl->how_ref_ms = ctx->te;
                x = 0;
        }
        bl->how[b] = (float)((double)bl->how[b] + exp2(x));
}

/* Forget failures outside the window (the ring is newest first). Slots
 * past fail_cnt stay zero, so a decoded baseline is byte-identical to the
 * one encoded. */
static void mg_bl_fail_prune(struct mg_baseline *bl,
                             const struct mg_scoring_conf *conf, int64_t te) {
        while (bl->fail_cnt > 0 &&
               te - bl->fail_ms[bl->fail_cnt - 1] >= conf->failure_window_ms)
                bl->fail_ms[--bl->fail_cnt] = 0;
}

/* auth_failures: one more failed authentication at te. */
static void mg_bl_failure(struct mg_bl_ctx *ctx) {
        struct mg_baseline *bl = ctx->bl;
        double thr = ctx->conf->sig[MG_SIG_AUTH_FAILURES].threshold;
        int reached;

        if (bl->fail_cnt < MG_BL_FAILS)
                bl->fail_cnt++;
        memmove(&bl->fail_ms[1], &bl->fail_ms[0],
                (size_t)(bl->fail_cnt - 1) * sizeof(bl->fail_ms[0]));
        bl->fail_ms[0] = ctx->te;
        reached = bl->fail_cnt >= thr;
        if (reached && !bl->fail_burst && mg_bl_armed(ctx,
                                                      MG_SIG_AUTH_FAILURES))
                mg_bl_fire(ctx, MG_SIG_AUTH_FAILURES,
                           ctx->conf->sig[MG_SIG_AUTH_FAILURES].weight,
                           "%s%d failed authentications within %" PRId64 "s",
                           bl->fail_cnt >= MG_BL_FAILS ? ">=" : "",
                           bl->fail_cnt,
                           ctx->conf->failure_window_ms / 1000);
        bl->fail_burst = (uint8_t)reached;
}

/* shared_identity for one table: a value just became active, making
 * `active` values active within a day. Fires past the threshold only on a
 * new high for the identity (more than its own normal, e.g. a workload
 * that always runs from six node subnets); learns the high meanwhile,
 * warm-up included. */
static int mg_bl_shared_high(struct mg_bl_ctx *ctx, int table, int active,
                             int was_active) {
        uint8_t *peak = &ctx->bl->shared_peak[table];
        int fire = !was_active &&
                   active > ctx->conf->sig[MG_SIG_SHARED_IDENTITY].threshold &&
                   active > *peak && mg_bl_armed(ctx, MG_SIG_SHARED_IDENTITY);

        if (active > *peak)
                *peak = (uint8_t)active;
        return fire;
}

/* new_source and shared_identity over the networks table, and the
 * source AS (see the file comment). */
static void mg_bl_source(struct mg_bl_ctx *ctx, const char *ip) {
        struct mg_baseline *bl = ctx->bl;
        struct mg_bl_net net, *front;
        struct mg_bl_asn *as;
        unsigned char addr[16];
        char text[64];
        uint32_t asn;
        int idx, i, active = 0, was_active, novel;

        if (mg_bl_net_parse(ip, &net, addr))
                return;
        asn = mg_asn_lookup(ctx->conf->asn, net.family, addr);
        idx = mg_bl_net_find(bl, &net);
        novel = idx < 0 ||
                idx >= mg_bl_known(ctx->conf->sig[MG_SIG_NEW_SOURCE].threshold,
                                   MG_BL_NETS);
        if (novel && mg_bl_armed(ctx, MG_SIG_NEW_SOURCE)) {
                double far = ctx->conf->sig[MG_SIG_NEW_SOURCE].weight;
                double nearby = ctx->conf->new_source_nearby;

                mg_bl_net_format(&net, text, sizeof(text));
                if (asn && mg_bl_asn_find(bl, asn) < 0)
                        mg_bl_fire(ctx, MG_SIG_NEW_SOURCE, far,
                                   "AS%" PRIu32 " never seen (%s)", asn,
                                   text);
                else if (asn || mg_bl_net_nearby(bl, &net))
                        mg_bl_fire(ctx, MG_SIG_NEW_SOURCE, nearby,
                                   "%s never seen, near a known network",
                                   text);
                else
                        mg_bl_fire(ctx, MG_SIG_NEW_SOURCE, far,
                                   "%s never seen", text);
        }
        if (asn) {
                as = mg_lru_touch(bl->asns, sizeof(*bl->asns), &bl->asn_cnt,
                                  MG_BL_ASNS, mg_bl_asn_find(bl, asn));
                as->asn = asn;
                as->last_ms = ctx->te;
        }
        was_active = idx >= 0 &&
                     ctx->te - bl->nets[idx].last_ms < MG_SHARED_WINDOW_MS;
        front = mg_lru_touch(bl->nets, sizeof(*bl->nets), &bl->net_cnt,
                             MG_BL_NETS, idx);
        *front = net;
        front->last_ms = ctx->te;
        for (i = 0; i < bl->net_cnt; i++)
                active += ctx->te - bl->nets[i].last_ms < MG_SHARED_WINDOW_MS;
        /* A network new_source judges new is its news, not also
         * shared_identity's: one network, one signal. */
        if (mg_bl_shared_high(ctx, MG_BL_SHARED_NETS, active,
                              was_active || novel)) {
                mg_bl_net_format(&net, text, sizeof(text));
                mg_bl_fire(ctx, MG_SIG_SHARED_IDENTITY,
                           ctx->conf->sig[MG_SIG_SHARED_IDENTITY].weight,
                           "%d source networks in 24h, newest %s", active,
                           text);
        }
}

/* shared_identity over a name table (clients or user agents). */
static void mg_bl_shared_name(struct mg_bl_ctx *ctx, struct mg_bl_name *names,
                              uint8_t *cnt, int cap, int table,
                              const char *what, const char *value) {
        int was_active, active;

        mg_bl_name_touch(names, cnt, cap, value, ctx->te, &was_active);
        active = mg_bl_names_active(names, *cnt, ctx->te);
        if (mg_bl_shared_high(ctx, table, active, was_active))
                mg_bl_fire(ctx, MG_SIG_SHARED_IDENTITY,
                           ctx->conf->sig[MG_SIG_SHARED_IDENTITY].weight,
                           "%d %s in 24h, newest %s", active, what,
                           names[0].text);
}

/* new_resource for a resource or audience. */
static void mg_bl_resource(struct mg_bl_ctx *ctx, const char *value) {
        struct mg_baseline *bl = ctx->bl;
        int idx, known;

        known = mg_bl_known(ctx->conf->sig[MG_SIG_NEW_RESOURCE].threshold,
                            MG_BL_RESOURCES);
        idx = mg_bl_name_touch(bl->resources, &bl->resource_cnt,
                               MG_BL_RESOURCES, value, ctx->te, NULL);
        if ((idx < 0 || idx >= known) && mg_bl_armed(ctx, MG_SIG_NEW_RESOURCE))
                mg_bl_fire(ctx, MG_SIG_NEW_RESOURCE,
                           ctx->conf->sig[MG_SIG_NEW_RESOURCE].weight,
                           "first use of %s", bl->resources[0].text);
}

/* Move a scope to the front (granted or used now); returns its entry. */
static struct mg_bl_scope *mg_bl_scope_touch(struct mg_baseline *bl,
                                             const char *scope) {
        uint64_t h = mg_bl_hash(scope);
        struct mg_bl_scope *sc;
        int idx;

        idx = mg_lru_find(bl->scopes, sizeof(*bl->scopes), bl->scope_cnt, h);
        sc = mg_lru_touch(bl->scopes, sizeof(*bl->scopes), &bl->scope_cnt,
                          MG_BL_SCOPES, idx);
        if (idx < 0) {
                sc->hash = h;
                sc->exact = (uint8_t)mg_bl_text_copy(sc->text,
                                                     sizeof(sc->text), scope);
        }
        return sc;
}

/* scope_expansion: check every scope of a successful auth, then record the
 * grants. */
static void mg_bl_scopes(struct mg_bl_ctx *ctx) {
        const struct mg_event_auth *auth = &ctx->ev->u.auth;
        struct mg_baseline *bl = ctx->bl;
        struct mg_bl_scope *sc;
        const char *first = NULL;
        int i, idx, known, novel = 0;

        known = mg_bl_known(ctx->conf->sig[MG_SIG_SCOPE_EXPANSION].threshold,
                            MG_BL_SCOPES);
        for (i = 0; i < auth->scope_cnt; i++) {
                if (!auth->scopes[i])
                        continue;
                idx = mg_lru_find(bl->scopes, sizeof(*bl->scopes),
                                  bl->scope_cnt, mg_bl_hash(auth->scopes[i]));
                if (idx < 0 || idx >= known) {
                        if (!novel++)
                                first = auth->scopes[i];
                }
        }
        if (novel && mg_bl_armed(ctx, MG_SIG_SCOPE_EXPANSION)) {
                char text[MG_BL_TEXT];

                mg_bl_text_copy(text, sizeof(text), first);
                if (novel > 1)
                        mg_bl_fire(ctx, MG_SIG_SCOPE_EXPANSION,
                                   ctx->conf->sig[MG_SIG_SCOPE_EXPANSION]
                                           .weight,
                                   "%s and %d more never granted nor used",
                                   text, novel - 1);
                else
                        mg_bl_fire(ctx, MG_SIG_SCOPE_EXPANSION,
                                   ctx->conf->sig[MG_SIG_SCOPE_EXPANSION]
                                           .weight,
                                   "%s never granted nor used", text);
        }
        for (i = 0; i < auth->scope_cnt; i++) {
                if (!auth->scopes[i])
                        continue;
                sc = mg_bl_scope_touch(bl, auth->scopes[i]);
                sc->granted_ms = ctx->te;
                if (!sc->first_granted_ms)
                        sc->first_granted_ms = ctx->te;
        }
}

/* token_chain: check an exchange's parent, then record the new token. */
static void mg_bl_tokens(struct mg_bl_ctx *ctx) {
        const struct mg_event_auth *auth = &ctx->ev->u.auth;
        const struct mg_signal_conf *sc = &ctx->conf->sig[MG_SIG_TOKEN_CHAIN];
        struct mg_baseline *bl = ctx->bl;
        struct mg_bl_token *tok;
        unsigned depth = 0;
        uint64_t h;
        int idx;

        if (auth->grant_type == MG_GRANT_TOKEN_EXCHANGE &&
            auth->parent_token_id) {
                idx = mg_lru_find(bl->tokens, sizeof(*bl->tokens),
                                  bl->token_cnt,
                                  mg_bl_hash(auth->parent_token_id));
                if (idx < 0) {
                        depth = 1;
                        if (mg_bl_armed(ctx, MG_SIG_TOKEN_CHAIN))
                                mg_bl_fire(ctx, MG_SIG_TOKEN_CHAIN, sc->weight,
                                           "token exchange from a parent "
                                           "token not issued recently");
                } else {
                        depth = bl->tokens[idx].depth + 1u;
                        if (depth > 255)
                                depth = 255;
                        if (depth > sc->threshold &&
                            mg_bl_armed(ctx, MG_SIG_TOKEN_CHAIN))
                                mg_bl_fire(ctx, MG_SIG_TOKEN_CHAIN, sc->weight,
                                           "token exchange chain of depth "
                                           "%u, more than %.0f",
                                           depth, sc->threshold);
                }
        }
        if (!auth->token_id)
                return;
        h = mg_bl_hash(auth->token_id);
        idx = mg_lru_find(bl->tokens, sizeof(*bl->tokens), bl->token_cnt, h);
        tok = mg_lru_touch(bl->tokens, sizeof(*bl->tokens), &bl->token_cnt,
                           MG_BL_TOKENS, idx);
        tok->hash = h;
        tok->depth = (uint8_t)depth;
}

/* What every activity event (auth or usage) does. */
static void mg_bl_activity(struct mg_bl_ctx *ctx) {
        struct mg_baseline *bl = ctx->bl;
        int64_t silence;

        if (bl->last_act_ms &&
            (silence = ctx->te - bl->last_act_ms) >
                    ctx->conf->dormant_after_ms &&
            mg_bl_armed(ctx, MG_SIG_DORMANT_REACTIVATION))
                mg_bl_fire(ctx, MG_SIG_DORMANT_REACTIVATION,
                           ctx->conf->sig[MG_SIG_DORMANT_REACTIVATION].weight,
                           "active again after %" PRId64 "d %" PRId64
                           "h of silence",
                           (int64_t)(silence / MG_MS_PER_DAY),
                           (int64_t)(silence % MG_MS_PER_DAY /
                                     MG_MS_PER_HOUR));
        mg_bl_rate(ctx);
        mg_bl_how(ctx);
        if (!bl->first_act_ms)
                bl->first_act_ms = ctx->te;
        bl->last_act_ms = ctx->te;
}

static void mg_bl_auth(struct mg_bl_ctx *ctx) {
        const struct mg_event_auth *auth = &ctx->ev->u.auth;
        struct mg_baseline *bl = ctx->bl;
        mg_bl_activity(ctx);
        if (auth->outcome != MG_OUTCOME_SUCCESS) {
                mg_bl_failure(ctx);
                return;
        }
        mg_bl_source(ctx, auth->source_ip);
        if (auth->client_id)
                mg_bl_shared_name(ctx, bl->clients, &bl->client_cnt,
                                  MG_BL_CLIENTS, MG_BL_SHARED_CLIENTS,
                                  "clients", auth->client_id);
        if (auth->user_agent)
                mg_bl_shared_name(ctx, bl->agents, &bl->agent_cnt,
                                  MG_BL_AGENTS, MG_BL_SHARED_AGENTS,
                                  "user agents", auth->user_agent);
        if (auth->audience)
                mg_bl_resource(ctx, auth->audience);
        mg_bl_scopes(ctx);
        mg_bl_tokens(ctx);
}

static void mg_bl_usage(struct mg_bl_ctx *ctx) {
        const struct mg_event_usage *usage = &ctx->ev->u.usage;
        struct mg_bl_scope *sc;

        mg_bl_activity(ctx);
        if (usage->source_ip)
                mg_bl_source(ctx, usage->source_ip);
        if (usage->resource)
                mg_bl_resource(ctx, usage->resource);
        if (usage->scope) {
                sc = mg_bl_scope_touch(ctx->bl, usage->scope);
                sc->used_ms = ctx->te;
        }
}

static void mg_bl_signal(struct mg_bl_ctx *ctx) {
        const struct mg_event_signal *sig = &ctx->ev->u.signal;
        struct mg_baseline *bl = ctx->bl;
        const struct mg_signal_conf *sc;
        enum mg_signal s;
        char source[MG_BL_TEXT], detail[MG_BL_DETAIL];

        switch (sig->kind) {
        case MG_SIGNAL_SECRET_EXPOSED:
                s = MG_SIG_SECRET_EXPOSED;
                break;
        case MG_SIGNAL_CREDENTIAL_COMPROMISE:
                s = MG_SIG_CREDENTIAL_COMPROMISE;
                break;
        case MG_SIGNAL_QUARANTINE:
                s = MG_SIG_QUARANTINE;
                break;
        case MG_SIGNAL_RELEASE:
                bl->contrib[MG_SIG_SECRET_EXPOSED] = 0;
                bl->contrib[MG_SIG_CREDENTIAL_COMPROMISE] = 0;
                bl->contrib[MG_SIG_QUARANTINE] = 0;
                return;
        default:
                /* Not validated: an unknown kind must not lift a
                 * quarantine. */
                return;
        }
        sc = &ctx->conf->sig[s];
        if (sig->severity < sc->threshold || !mg_bl_armed(ctx, s))
                return;
        mg_bl_text_copy(source, sizeof(source), sig->source ? sig->source : "");
        mg_bl_text_copy(detail, sizeof(detail), sig->detail ? sig->detail : "");
        mg_bl_fire(ctx, s, sc->weight * sig->severity / 100.0,
                   "%s from %s, severity %d%s%s", mg_signal_names[s], source,
                   (int)sig->severity, detail[0] ? ": " : "", detail);
}

/* Contributions of bl decayed to t (>= newest), into c. */
static void mg_bl_contrib_at(const struct mg_baseline *bl,
                             const struct mg_scoring_conf *conf, int64_t t,
                             double c[MG_SIG__CNT]) {
        double f = mg_bl_decay(t - bl->newest_ms, conf->risk_half_life_ms);
        int s;

        for (s = 0; s < MG_SIG__CNT; s++)
                c[s] = s == MG_SIG_QUARANTINE ? bl->contrib[s]
                                              : bl->contrib[s] * f;
}

void mg_baseline_risk(const struct mg_baseline *bl,
                      const struct mg_scoring_conf *conf, int64_t now_ms,
                      struct mg_risk *risk) {
        double c[MG_SIG__CNT], sum = 0;
        int s, best, used = 0, n;

        memset(risk, 0, sizeof(*risk));
        if (now_ms < bl->newest_ms)
                now_ms = bl->newest_ms;
        mg_bl_contrib_at(bl, conf, now_ms, c);
        for (s = 0; s < MG_SIG__CNT; s++)
                sum += c[s];
        risk->score = sum > 100 ? 100 : sum;
        risk->level = mg_bl_level(conf, risk->score);
        risk->ts_ms = now_ms;
        for (n = 0; n < MG_REASONS_MAX; n++) {
                best = -1;
                for (s = 0; s < MG_SIG__CNT; s++)
                        if (!(used & (1 << s)) &&
                            c[s] > MG_REASON_MIN_POINTS &&
                            (best < 0 || c[s] > c[best]))
                                best = s;
                if (best < 0)
                        break;
                used |= 1 << best;
                risk->reasons[n].signal = (enum mg_signal)best;
                risk->reasons[n].points = c[best];
                memcpy(risk->reasons[n].detail, bl->detail[best],
                       MG_BL_DETAIL);
        }
        risk->reason_cnt = n;
}

size_t mg_baseline_size(void) {
        return sizeof(struct mg_baseline);
}

void mg_baseline_init(struct mg_baseline *bl) {
        memset(bl, 0, sizeof(*bl));
}

mg_err_t mg_baseline_apply(struct mg_baseline *bl,
                           const struct mg_scoring_conf *conf,
                           const struct mg_event *ev,
                           struct mg_apply_result *res) {
        struct mg_bl_ctx ctx;
        double f;
        mg_err_t err = MG_OK;
        int s;

        memset(res, 0, sizeof(*res));
        if ((unsigned)ev->type >= MG_EVENT_TYPE__CNT) {
                err = MG_ERR_INVALID;
                goto out;
        }
        if (bl->newest_ms && ev->ts_ms < bl->newest_ms - conf->late_bound_ms) {
                err = MG_ERR_LATE;
                goto out;
        }
        memset(&ctx, 0, sizeof(ctx));
        ctx.bl = bl;
        ctx.conf = conf;
        ctx.ev = ev;
        ctx.te = ev->ts_ms > bl->newest_ms ? ev->ts_ms : bl->newest_ms;
        ctx.act_before = bl->ev_cnt[MG_EVENT_AUTH] + bl->ev_cnt[MG_EVENT_USAGE];
        ctx.auth_before = bl->ev_cnt[MG_EVENT_AUTH];

        /* Bring the risk to the event's time. */
        f = mg_bl_decay(ctx.te - bl->newest_ms, conf->risk_half_life_ms);
        for (s = 0; s < MG_SIG__CNT; s++)
                if (s != MG_SIG_QUARANTINE)
                        bl->contrib[s] *= f;
        bl->newest_ms = ctx.te;
        bl->ev_cnt[ev->type]++;
        mg_bl_fail_prune(bl, conf, ctx.te);

        switch (ev->type) {
        case MG_EVENT_AUTH:
                mg_bl_auth(&ctx);
                break;
        case MG_EVENT_USAGE:
                mg_bl_usage(&ctx);
                break;
        default:
                mg_bl_signal(&ctx);
                break;
        }

        for (s = 0; s < MG_SIG__CNT; s++) {
                if (ctx.fired.mask & (1u << s)) {
                        bl->contrib[s] += ctx.fired.points[s];
                        res->points[s] = ctx.fired.points[s];
                        memcpy(bl->detail[s], ctx.fired.detail[s],
                               MG_BL_DETAIL);
                }
                /* A detail is only shown while its points are; keeping it
                 * longer would cost blob bytes for nothing. */
                if (!(bl->contrib[s] > MG_REASON_MIN_POINTS))
                        memset(bl->detail[s], 0, MG_BL_DETAIL);
        }
        res->applied = 1;
        res->fired = ctx.fired.mask;
out:
        mg_baseline_risk(bl, conf, bl->newest_ms, &res->risk);
        if (res->applied &&
            ((unsigned)res->risk.level != bl->pub_level ||
             fabs(res->risk.score - bl->pub_score) >= MG_RISK_CHANGE_MIN)) {
                res->risk_changed = 1;
                bl->pub_score = res->risk.score;
                bl->pub_level = (uint8_t)res->risk.level;
        }
        return err;
}

uint64_t mg_baseline_event_count(const struct mg_baseline *bl,
                                 enum mg_event_type type) {
        if ((unsigned)type >= MG_EVENT_TYPE__CNT)
                return 0;
        return bl->ev_cnt[type];
}

/* The scope's entry, or NULL. */
static const struct mg_bl_scope *mg_bl_scope_get(const struct mg_baseline *bl,
                                                 const char *scope) {
        int idx = mg_lru_find(bl->scopes, sizeof(*bl->scopes), bl->scope_cnt,
                              mg_bl_hash(scope));

        return idx < 0 ? NULL : &bl->scopes[idx];
}

static int mg_bl_scope_is_unused(const struct mg_bl_scope *sc,
                                 const struct mg_scoring_conf *conf,
                                 int64_t now_ms) {
        int64_t since;

        if (!sc->granted_ms)
                return 0;
        since = sc->used_ms > sc->first_granted_ms ? sc->used_ms
                                                   : sc->first_granted_ms;
        return now_ms - since >= conf->scope_unused_after_ms;
}

int mg_baseline_scopes_idle(const struct mg_baseline *bl,
                            struct mg_scope_idle *out, int max) {
        int i, n = 0;

        for (i = 0; i < bl->scope_cnt && n < max; i++) {
                const struct mg_bl_scope *sc = &bl->scopes[i];

                if (!sc->granted_ms)
                        continue;
                snprintf(out[n].scope, sizeof(out[n].scope), "%s", sc->text);
                out[n].exact = sc->exact;
                out[n].idle_since_ms = sc->used_ms > sc->first_granted_ms
                                               ? sc->used_ms
                                               : sc->first_granted_ms;
                n++;
        }
        return n;
}

int mg_baseline_scope_unused(const struct mg_baseline *bl,
                             const struct mg_scoring_conf *conf,
                             const char *scope, int64_t now_ms) {
        const struct mg_bl_scope *sc;

        if (!scope || !(sc = mg_bl_scope_get(bl, scope)))
                return 0;
        return mg_bl_scope_is_unused(sc, conf, now_ms);
}

/*
 * Encoding. Layout of version 3 (all integers little-endian):
 *
 *   "MGBL" u8:version u8:flags
 *   varint:auth varint:usage varint:signal   event counts
 *   u64:newest_ms                             0 when no event
 *   time:first_act time:last_act
 *   [activity only] varint:minute offset varint:rate_cur f64:w f64:s1 f64:s2
 *   [activity only] time:how_ref u8[21]:nonzero buckets, f32 per bucket
 *   u16:nonzero contributions, f64 each; u16:details, u8 len + bytes each
 *   f64:pub_score u8:pub_level
 *   u8:n time*n                               failures
 *   u8:n (u8:family, 3|8 bytes, time)*n       networks
 *   u8:n (varint:AS, time)*n                  source ASes (not in v1)
 *   u8[3]                                     shared_identity peaks:
 *                                             networks, clients, user
 *                                             agents (not in v1, v2)
 *   u8:n name*n  (clients, user agents, resources)
 *   u8:n (name without time, time*3)*n        scopes
 *   u8:n (u64:hash u8:depth)*n                tokens
 *
 *   u32:CRC-32C of everything before it
 *
 * A time is varint(newest_ms - t + 1), 0 for "never"; a name is u8
 * (length | 0x80 when the hash follows), the text, [u64 hash], time.
 * Structure alone cannot tell a flipped bit in a double, a hash or a time
 * from a real value; the checksum does, for 4 bytes. Version 2 is the
 * same without the shared_identity peaks, version 1 also without the
 * source ASes; both decode (an empty AS table, peaks as active at the
 * newest event) and encode again as version 3, so baselines stored by
 * older builds keep working.
 */

/* CRC-32C (Castagnoli, reflected polynomial 0x82f63b78), one table
 * lookup per byte: about a microsecond for a typical blob. */
static const uint32_t mg_crc32c_table[256] = {
        0x00000000, 0xf26b8303, 0xe13b70f7, 0x1350f3f4,
        0xc79a971f, 0x35f1141c, 0x26a1e7e8, 0xd4ca64eb,
        0x8ad958cf, 0x78b2dbcc, 0x6be22838, 0x9989ab3b,
        0x4d43cfd0, 0xbf284cd3, 0xac78bf27, 0x5e133c24,
        0x105ec76f, 0xe235446c, 0xf165b798, 0x030e349b,
        0xd7c45070, 0x25afd373, 0x36ff2087, 0xc494a384,
        0x9a879fa0, 0x68ec1ca3, 0x7bbcef57, 0x89d76c54,
        0x5d1d08bf, 0xaf768bbc, 0xbc267848, 0x4e4dfb4b,
        0x20bd8ede, 0xd2d60ddd, 0xc186fe29, 0x33ed7d2a,
        0xe72719c1, 0x154c9ac2, 0x061c6936, 0xf477ea35,
        0xaa64d611, 0x580f5512, 0x4b5fa6e6, 0xb93425e5,
        0x6dfe410e, 0x9f95c20d, 0x8cc531f9, 0x7eaeb2fa,
        0x30e349b1, 0xc288cab2, 0xd1d83946, 0x23b3ba45,
        0xf779deae, 0x05125dad, 0x1642ae59, 0xe4292d5a,
        0xba3a117e, 0x4851927d, 0x5b016189, 0xa96ae28a,
        0x7da08661, 0x8fcb0562, 0x9c9bf696, 0x6ef07595,
        0x417b1dbc, 0xb3109ebf, 0xa0406d4b, 0x522bee48,
        0x86e18aa3, 0x748a09a0, 0x67dafa54, 0x95b17957,
        0xcba24573, 0x39c9c670, 0x2a993584, 0xd8f2b687,
        0x0c38d26c, 0xfe53516f, 0xed03a29b, 0x1f682198,
        0x5125dad3, 0xa34e59d0, 0xb01eaa24, 0x42752927,
        0x96bf4dcc, 0x64d4cecf, 0x77843d3b, 0x85efbe38,
        0xdbfc821c, 0x2997011f, 0x3ac7f2eb, 0xc8ac71e8,
        0x1c661503, 0xee0d9600, 0xfd5d65f4, 0x0f36e6f7,
        0x61c69362, 0x93ad1061, 0x80fde395, 0x72966096,
        0xa65c047d, 0x5437877e, 0x4767748a, 0xb50cf789,
        0xeb1fcbad, 0x197448ae, 0x0a24bb5a, 0xf84f3859,
        0x2c855cb2, 0xdeeedfb1, 0xcdbe2c45, 0x3fd5af46,
        0x7198540d, 0x83f3d70e, 0x90a324fa, 0x62c8a7f9,
        0xb602c312, 0x44694011, 0x5739b3e5, 0xa55230e6,
        0xfb410cc2, 0x092a8fc1, 0x1a7a7c35, 0xe811ff36,
        0x3cdb9bdd, 0xceb018de, 0xdde0eb2a, 0x2f8b6829,
        0x82f63b78, 0x709db87b, 0x63cd4b8f, 0x91a6c88c,
        0x456cac67, 0xb7072f64, 0xa457dc90, 0x563c5f93,
        0x082f63b7, 0xfa44e0b4, 0xe9141340, 0x1b7f9043,
        0xcfb5f4a8, 0x3dde77ab, 0x2e8e845f, 0xdce5075c,
        0x92a8fc17, 0x60c37f14, 0x73938ce0, 0x81f80fe3,
        0x55326b08, 0xa759e80b, 0xb4091bff, 0x466298fc,
        0x1871a4d8, 0xea1a27db, 0xf94ad42f, 0x0b21572c,
        0xdfeb33c7, 0x2d80b0c4, 0x3ed04330, 0xccbbc033,
        0xa24bb5a6, 0x502036a5, 0x4370c551, 0xb11b4652,
        0x65d122b9, 0x97baa1ba, 0x84ea524e, 0x7681d14d,
        0x2892ed69, 0xdaf96e6a, 0xc9a99d9e, 0x3bc21e9d,
        0xef087a76, 0x1d63f975, 0x0e330a81, 0xfc588982,
        0xb21572c9, 0x407ef1ca, 0x532e023e, 0xa145813d,
        0x758fe5d6, 0x87e466d5, 0x94b49521, 0x66df1622,
        0x38cc2a06, 0xcaa7a905, 0xd9f75af1, 0x2b9cd9f2,
        0xff56bd19, 0x0d3d3e1a, 0x1e6dcdee, 0xec064eed,
        0xc38d26c4, 0x31e6a5c7, 0x22b65633, 0xd0ddd530,
        0x0417b1db, 0xf67c32d8, 0xe52cc12c, 0x1747422f,
        0x49547e0b, 0xbb3ffd08, 0xa86f0efc, 0x5a048dff,
        0x8ecee914, 0x7ca56a17, 0x6ff599e3, 0x9d9e1ae0,
        0xd3d3e1ab, 0x21b862a8, 0x32e8915c, 0xc083125f,
        0x144976b4, 0xe622f5b7, 0xf5720643, 0x07198540,
        0x590ab964, 0xab613a67, 0xb831c993, 0x4a5a4a90,
        0x9e902e7b, 0x6cfbad78, 0x7fab5e8c, 0x8dc0dd8f,
        0xe330a81a, 0x115b2b19, 0x020bd8ed, 0xf0605bee,
        0x24aa3f05, 0xd6c1bc06, 0xc5914ff2, 0x37faccf1,
        0x69e9f0d5, 0x9b8273d6, 0x88d28022, 0x7ab90321,
        0xae7367ca, 0x5c18e4c9, 0x4f48173d, 0xbd23943e,
        0xf36e6f75, 0x0105ec76, 0x12551f82, 0xe03e9c81,
        0x34f4f86a, 0xc69f7b69, 0xd5cf889d, 0x27a40b9e,
        0x79b737ba, 0x8bdcb4b9, 0x988c474d, 0x6ae7c44e,
        0xbe2da0a5, 0x4c4623a6, 0x5f16d052, 0xad7d5351,
};

static uint32_t mg_crc32c(const unsigned char *p, size_t len) {
        uint32_t crc = 0xffffffffu;

        while (len--)
                crc = mg_crc32c_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
        return crc ^ 0xffffffffu;
}

/* Bounded writer; overflow is sticky. */
struct mg_wbuf {
        unsigned char *p;  /* caller's buffer */
        size_t size;       /* its size */
        size_t len;        /* bytes written (or needed) */
};

static void mg_w_bytes(struct mg_wbuf *w, const void *b, size_t n) {
        if (w->len + n <= w->size)
                memcpy(w->p + w->len, b, n);
        w->len += n;
}

static void mg_w_u8(struct mg_wbuf *w, unsigned v) {
        unsigned char b = (unsigned char)v;

        mg_w_bytes(w, &b, 1);
}

static void mg_w_u16(struct mg_wbuf *w, unsigned v) {
        mg_w_u8(w, v & 0xff);
        mg_w_u8(w, (v >> 8) & 0xff);
}

static void mg_w_u64(struct mg_wbuf *w, uint64_t v) {
        int i;

        for (i = 0; i < 8; i++)
                mg_w_u8(w, (unsigned)(v >> (8 * i)) & 0xff);
}

static void mg_w_varint(struct mg_wbuf *w, uint64_t v) {
        while (v >= 0x80) {
                mg_w_u8(w, (unsigned)(v & 0x7f) | 0x80);
                v >>= 7;
        }
        mg_w_u8(w, (unsigned)v);
}

static void mg_w_f64(struct mg_wbuf *w, double d) {
        uint64_t v;

        memcpy(&v, &d, sizeof(v));
        mg_w_u64(w, v);
}

static void mg_w_f32(struct mg_wbuf *w, float f) {
        uint32_t v;
        int i;

        memcpy(&v, &f, sizeof(v));
        for (i = 0; i < 4; i++)
                mg_w_u8(w, (v >> (8 * i)) & 0xff);
}

static void mg_w_time(struct mg_wbuf *w, const struct mg_baseline *bl,
                      int64_t t) {
        assert(t == 0 || (t <= bl->newest_ms));
        mg_w_varint(w, t ? (uint64_t)(bl->newest_ms - t) + 1 : 0);
}

static void mg_w_text(struct mg_wbuf *w, const char *text, int exact,
                      uint64_t hash) {
        size_t len = strlen(text);

        assert(len < MG_BL_TEXT);
        mg_w_u8(w, (unsigned)len | (exact ? 0 : MG_BL_NAME_HASHED));
        mg_w_bytes(w, text, len);
        if (!exact)
                mg_w_u64(w, hash);
}

static int mg_bl_has_activity(const struct mg_baseline *bl) {
        return bl->ev_cnt[MG_EVENT_AUTH] + bl->ev_cnt[MG_EVENT_USAGE] > 0;
}

mg_err_t mg_baseline_encode(const struct mg_baseline *bl, void *buf,
                            size_t size, size_t *lenp) {
        struct mg_wbuf w = {buf, size, 0};
        unsigned char bitmap[MG_HOW_BUCKETS / 8];
        unsigned mask;
        int i, s;

        mg_w_bytes(&w, MG_BL_MAGIC, 4);
        mg_w_u8(&w, MG_BL_VERSION);
        mg_w_u8(&w, (bl->rate_fired ? MG_BLF_RATE_FIRED : 0) |
                            (bl->fail_burst ? MG_BLF_FAIL_BURST : 0));
        for (i = 0; i < MG_EVENT_TYPE__CNT; i++)
                mg_w_varint(&w, bl->ev_cnt[i]);
        mg_w_u64(&w, (uint64_t)bl->newest_ms);
        mg_w_time(&w, bl, bl->first_act_ms);
        mg_w_time(&w, bl, bl->last_act_ms);
        if (mg_bl_has_activity(bl)) {
                mg_w_varint(&w, (uint64_t)(mg_floor_div(bl->newest_ms,
                                                        MG_MS_PER_MIN) -
                                           bl->rate_minute));
                mg_w_varint(&w, bl->rate_cur);
                mg_w_f64(&w, bl->rate_w);
                mg_w_f64(&w, bl->rate_s1);
                mg_w_f64(&w, bl->rate_s2);
                mg_w_time(&w, bl, bl->how_ref_ms);
                memset(bitmap, 0, sizeof(bitmap));
                for (i = 0; i < MG_HOW_BUCKETS; i++)
                        if (bl->how[i] != 0)
                                bitmap[i / 8] |= (unsigned char)(1u << (i % 8));
                mg_w_bytes(&w, bitmap, sizeof(bitmap));
                for (i = 0; i < MG_HOW_BUCKETS; i++)
                        if (bl->how[i] != 0)
                                mg_w_f32(&w, bl->how[i]);
        }
        for (mask = 0, s = 0; s < MG_SIG__CNT; s++)
                if (bl->contrib[s] != 0)
                        mask |= 1u << s;
        mg_w_u16(&w, mask);
        for (s = 0; s < MG_SIG__CNT; s++)
                if (mask & (1u << s))
                        mg_w_f64(&w, bl->contrib[s]);
        for (mask = 0, s = 0; s < MG_SIG__CNT; s++)
                if (bl->detail[s][0])
                        mask |= 1u << s;
        mg_w_u16(&w, mask);
        for (s = 0; s < MG_SIG__CNT; s++) {
                if (!(mask & (1u << s)))
                        continue;
                mg_w_u8(&w, (unsigned)strlen(bl->detail[s]));
                mg_w_bytes(&w, bl->detail[s], strlen(bl->detail[s]));
        }
        mg_w_f64(&w, bl->pub_score);
        mg_w_u8(&w, bl->pub_level);

        mg_w_u8(&w, bl->fail_cnt);
        for (i = 0; i < bl->fail_cnt; i++)
                mg_w_time(&w, bl, bl->fail_ms[i]);
        mg_w_u8(&w, bl->net_cnt);
        for (i = 0; i < bl->net_cnt; i++) {
                mg_w_u8(&w, bl->nets[i].family);
                mg_w_bytes(&w, bl->nets[i].prefix,
                           bl->nets[i].family == 4 ? 3 : 8);
                mg_w_time(&w, bl, bl->nets[i].last_ms);
        }
        mg_w_u8(&w, bl->asn_cnt);
        for (i = 0; i < bl->asn_cnt; i++) {
                mg_w_varint(&w, bl->asns[i].asn);
                mg_w_time(&w, bl, bl->asns[i].last_ms);
        }
        mg_w_bytes(&w, bl->shared_peak, sizeof(bl->shared_peak));
#define MG_W_NAMES(arr, cnt)                                                  \
        do {                                                                  \
                mg_w_u8(&w, cnt);                                             \
                for (i = 0; i < (cnt); i++) {                                 \
                        mg_w_text(&w, (arr)[i].text, (arr)[i].exact,          \
                                  (arr)[i].hash);                             \
                        mg_w_time(&w, bl, (arr)[i].last_ms);                  \
                }                                                             \
        } while (0)
        MG_W_NAMES(bl->clients, bl->client_cnt);
        MG_W_NAMES(bl->agents, bl->agent_cnt);
        MG_W_NAMES(bl->resources, bl->resource_cnt);
#undef MG_W_NAMES
        mg_w_u8(&w, bl->scope_cnt);
        for (i = 0; i < bl->scope_cnt; i++) {
                const struct mg_bl_scope *sc = &bl->scopes[i];

                mg_w_text(&w, sc->text, sc->exact, sc->hash);
                mg_w_time(&w, bl, sc->first_granted_ms);
                mg_w_time(&w, bl, sc->granted_ms);
                mg_w_time(&w, bl, sc->used_ms);
        }
        mg_w_u8(&w, bl->token_cnt);
        for (i = 0; i < bl->token_cnt; i++) {
                mg_w_u64(&w, bl->tokens[i].hash);
                mg_w_u8(&w, bl->tokens[i].depth);
        }

        if (w.len <= size) {
                uint32_t crc = mg_crc32c(w.p, w.len);

                for (i = 0; i < 4; i++)
                        mg_w_u8(&w, (crc >> (8 * i)) & 0xff);
        } else {
                w.len += 4;
        }
        *lenp = w.len;
        return w.len > size ? MG_ERR_TOOBIG : MG_OK;
}

/*
 * Decoding: every read is bounds-checked, the first problem is sticky and
 * named; later reads return zeros.
 */
struct mg_rbuf {
        const unsigned char *p; /* blob */
        size_t len;             /* its length */
        size_t off;             /* next byte */
        int failed;             /* a problem was found */
        char *errstr;           /* caller's buffer for the message */
        size_t errstr_size;     /* its size */
        int64_t newest_ms;      /* times are stored relative to it */
};

__attribute__((format(printf, 2, 3))) static void
mg_r_fail(struct mg_rbuf *r, const char *fmt, ...) {
        char msg[256];
        va_list ap;

        if (r->failed)
                return;
        r->failed = 1;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        mg_err_set(MG_ERR_DECODE, r->errstr, r->errstr_size,
                   "baseline blob: %s (at byte %zu of %zu)", msg, r->off,
                   r->len);
}

static const unsigned char *mg_r_bytes(struct mg_rbuf *r, size_t n,
                                       const char *what) {
        const unsigned char *b;

        if (r->failed)
                return NULL;
        if (n > r->len - r->off) {
                mg_r_fail(r, "truncated in %s", what);
                return NULL;
        }
        b = r->p + r->off;
        r->off += n;
        return b;
}

static unsigned mg_r_u8(struct mg_rbuf *r, const char *what) {
        const unsigned char *b = mg_r_bytes(r, 1, what);

        return b ? b[0] : 0;
}

static unsigned mg_r_u16(struct mg_rbuf *r, const char *what) {
        const unsigned char *b = mg_r_bytes(r, 2, what);

        return b ? (unsigned)b[0] | (unsigned)b[1] << 8 : 0;
}

static uint64_t mg_r_u64(struct mg_rbuf *r, const char *what) {
        const unsigned char *b = mg_r_bytes(r, 8, what);
        uint64_t v = 0;
        int i;

        if (!b)
                return 0;
        for (i = 7; i >= 0; i--)
                v = v << 8 | b[i];
        return v;
}

/* LEB128, at most 10 bytes, no bits past 64, no redundant zero bytes (one
 * value, one encoding). */
static uint64_t mg_r_varint(struct mg_rbuf *r, const char *what) {
        uint64_t v = 0;
        unsigned b;
        int shift;

        for (shift = 0; shift < 64; shift += 7) {
                b = mg_r_u8(r, what);
                if (r->failed)
                        return 0;
                if (shift == 63 && b > 1) {
                        mg_r_fail(r, "%s: varint overflows 64 bits", what);
                        return 0;
                }
                v |= (uint64_t)(b & 0x7f) << shift;
                if (!(b & 0x80)) {
                        if (b == 0 && shift > 0) {
                                mg_r_fail(r, "%s: overlong varint", what);
                                return 0;
                        }
                        return v;
                }
        }
        mg_r_fail(r, "%s: varint longer than 10 bytes", what);
        return 0;
}

/* A finite double in [lo, hi]. */
static double mg_r_f64(struct mg_rbuf *r, const char *what, double lo,
                       double hi) {
        uint64_t v = mg_r_u64(r, what);
        double d;

        memcpy(&d, &v, sizeof(d));
        if (r->failed)
                return 0;
        if (!isfinite(d) || d < lo || d > hi) {
                mg_r_fail(r, "%s: %g is out of range", what, d);
                return 0;
        }
        return d;
}

/* A finite positive float. */
static float mg_r_f32(struct mg_rbuf *r, const char *what) {
        const unsigned char *b = mg_r_bytes(r, 4, what);
        uint32_t v;
        float f;

        if (!b)
                return 0;
        v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
            (uint32_t)b[3] << 24;
        memcpy(&f, &v, sizeof(f));
        if (!isfinite(f) || !(f > 0)) {
                mg_r_fail(r, "%s: %g is not a positive weight", what,
                          (double)f);
                return 0;
        }
        return f;
}

static int64_t mg_r_time(struct mg_rbuf *r, const char *what) {
        uint64_t v = mg_r_varint(r, what);

        if (r->failed || v == 0)
                return 0;
        if (!r->newest_ms ||
            v - 1 > (uint64_t)(r->newest_ms - MG_EVENT_TS_MIN)) {
                mg_r_fail(r, "%s: time out of range", what);
                return 0;
        }
        return r->newest_ms - (int64_t)(v - 1);
}

/* A count of at most max entries. */
static int mg_r_count(struct mg_rbuf *r, const char *what, int max) {
        unsigned n = mg_r_u8(r, what);

        if (n > (unsigned)max) {
                mg_r_fail(r, "%u %s, more than %d", n, what, max);
                return 0;
        }
        return (int)n;
}

/* Text of at most max - 1 bytes into dst; returns its header's hashed
 * bit. */
static int mg_r_text(struct mg_rbuf *r, const char *what, char *dst,
                     size_t max) {
        unsigned hdr = mg_r_u8(r, what);
        size_t len = hdr & ~(unsigned)MG_BL_NAME_HASHED;
        const unsigned char *b;

        if (len >= max) {
                mg_r_fail(r, "%s: text of %zu bytes, at most %zu", what, len,
                          max - 1);
                return 0;
        }
        b = mg_r_bytes(r, len, what);
        if (!b)
                return 0;
        if (!mg_utf8_valid((const char *)b, len)) {
                mg_r_fail(r, "%s: text is not valid UTF-8", what);
                return 0;
        }
        memcpy(dst, b, len);
        dst[len] = '\0';
        return (hdr & MG_BL_NAME_HASHED) != 0;
}

/* Name text and hash (read or recomputed). */
static void mg_r_name(struct mg_rbuf *r, const char *what, char *text,
                      uint8_t *exact, uint64_t *hash) {
        int hashed = mg_r_text(r, what, text, MG_BL_TEXT);

        *exact = (uint8_t)!hashed;
        *hash = hashed ? mg_r_u64(r, what) : mg_bl_hash(text);
}

/* Times of an LRU table must not increase from the front. */
static void mg_r_order(struct mg_rbuf *r, const char *what, int64_t prev,
                       int64_t t) {
        if (!t)
                mg_r_fail(r, "%s: entry without a time", what);
        else if (t > prev)
                mg_r_fail(r, "%s: entries out of recency order", what);
}

static void mg_r_unique(struct mg_rbuf *r, const char *what, const void *arr,
                        size_t elsize, int cnt) {
        const unsigned char *p = arr;
        uint64_t h;

        if (r->failed || cnt == 0)
                return;
        memcpy(&h, p + (size_t)(cnt - 1) * elsize, sizeof(h));
        if (mg_lru_find(arr, elsize, cnt - 1, h) >= 0)
                mg_r_fail(r, "%s: duplicate entry", what);
}

static void mg_r_names(struct mg_rbuf *r, const char *what,
                       struct mg_bl_name *names, uint8_t *cntp, int cap) {
        int i, cnt = mg_r_count(r, what, cap);
        int64_t prev = r->newest_ms;

        for (i = 0; i < cnt && !r->failed; i++) {
                mg_r_name(r, what, names[i].text, &names[i].exact,
                          &names[i].hash);
                names[i].last_ms = mg_r_time(r, what);
                mg_r_order(r, what, prev, names[i].last_ms);
                prev = names[i].last_ms;
                mg_r_unique(r, what, names, sizeof(*names), i + 1);
        }
        *cntp = (uint8_t)cnt;
}

mg_err_t mg_baseline_decode(struct mg_baseline *bl, const void *buf,
                            size_t len, char *errstr, size_t errstr_size) {
        struct mg_rbuf rd = {buf, len, 0, 0, errstr, errstr_size, 0};
        struct mg_rbuf *r = &rd;
        const unsigned char *b;
        uint64_t total = 0, act, minute_off;
        unsigned flags, mask, dmask, version, dlen;
        int64_t prev;
        int i, s, cnt;

        mg_baseline_init(bl);
        b = mg_r_bytes(r, 4, "magic");
        if (b && memcmp(b, MG_BL_MAGIC, 4))
                mg_r_fail(r, "bad magic, not a baseline");
        version = mg_r_u8(r, "version");
        if (!r->failed &&
            (version < MG_BL_VERSION_MIN || version > MG_BL_VERSION))
                mg_r_fail(r, "unknown version %u (this build reads %d to %d)",
                          version, MG_BL_VERSION_MIN, MG_BL_VERSION);
        /* Magic and version first, for the clearer message; then the
         * checksum; then the body without it. */
        if (!r->failed) {
                const unsigned char *c;
                uint32_t crc;

                if (len < 4 + 6) {
                        r->off = len;
                        mg_r_fail(r, "truncated before the checksum");
                } else {
                        c = r->p + len - 4;
                        crc = (uint32_t)c[0] | (uint32_t)c[1] << 8 |
                              (uint32_t)c[2] << 16 | (uint32_t)c[3] << 24;
                        if (crc != mg_crc32c(r->p, len - 4)) {
                                r->off = len - 4;
                                mg_r_fail(r, "checksum mismatch (corrupt or "
                                             "truncated)");
                        }
                        r->len = len - 4;
                }
        }
        flags = mg_r_u8(r, "flags");
        if (flags & ~(unsigned)(MG_BLF_RATE_FIRED | MG_BLF_FAIL_BURST))
                mg_r_fail(r, "unknown flags 0x%02x", flags);
        bl->rate_fired = (flags & MG_BLF_RATE_FIRED) != 0;
        bl->fail_burst = (flags & MG_BLF_FAIL_BURST) != 0;
        for (i = 0; i < MG_EVENT_TYPE__CNT; i++) {
                bl->ev_cnt[i] = mg_r_varint(r, "event count");
                if (bl->ev_cnt[i] > UINT64_MAX / 4)
                        mg_r_fail(r, "event count out of range");
                total += bl->ev_cnt[i];
        }
        act = bl->ev_cnt[MG_EVENT_AUTH] + bl->ev_cnt[MG_EVENT_USAGE];
        bl->newest_ms = (int64_t)mg_r_u64(r, "newest time");
        if (!r->failed &&
            (total ? bl->newest_ms < MG_EVENT_TS_MIN ||
                             bl->newest_ms > MG_BL_TS_MAX
                   : bl->newest_ms != 0))
                mg_r_fail(r, "newest time does not match the event counts");
        rd.newest_ms = bl->newest_ms;
        bl->first_act_ms = mg_r_time(r, "first activity");
        bl->last_act_ms = mg_r_time(r, "last activity");
        if (!r->failed && ((act > 0) != (bl->first_act_ms != 0) ||
                           (act > 0) != (bl->last_act_ms != 0) ||
                           bl->first_act_ms > bl->last_act_ms))
                mg_r_fail(r, "activity times do not match the counts");
        if (act > 0) {
                minute_off = mg_r_varint(r, "rate minute");
                if (minute_off > (uint64_t)bl->newest_ms / MG_MS_PER_MIN)
                        mg_r_fail(r, "rate minute out of range");
                else
                        bl->rate_minute =
                                mg_floor_div(bl->newest_ms, MG_MS_PER_MIN) -
                                (int64_t)minute_off;
                if (!r->failed &&
                    bl->rate_minute !=
                            mg_floor_div(bl->last_act_ms, MG_MS_PER_MIN))
                        mg_r_fail(r, "rate minute is not the last activity's");
                minute_off = mg_r_varint(r, "rate count");
                if (!r->failed && (minute_off == 0 || minute_off > act ||
                                   minute_off > UINT32_MAX))
                        mg_r_fail(r, "rate count out of range");
                bl->rate_cur = (uint32_t)minute_off;
                bl->rate_w = mg_r_f64(r, "rate weight", 0, 1e12);
                bl->rate_s1 = mg_r_f64(r, "rate sum", 0, 1e30);
                bl->rate_s2 = mg_r_f64(r, "rate sum of squares", 0, 1e60);
                /* The sums are 0 until a minute completes. Then they are
                 * those of active minutes, each of at most `act` events,
                 * so the mean s1 / w is at most act and s2 / w at most
                 * act^2; the weight itself can be anything above 0 (a
                 * pause decays it without adding to it). Sums too large
                 * for their weight would make the mean overflow. The
                 * factor 2 leaves room for the rounding of a weight
                 * decayed into the subnormal range. */
                if (!r->failed &&
                    (bl->rate_w == 0
                             ? bl->rate_s1 != 0 || bl->rate_s2 != 0
                             : bl->rate_s1 > 2 * bl->rate_w * (double)act ||
                                       bl->rate_s2 > 2 * bl->rate_w *
                                                             (double)act *
                                                             (double)act))
                        mg_r_fail(r, "rate weight %g is impossible for its "
                                     "sums",
                                  bl->rate_w);
                bl->how_ref_ms = mg_r_time(r, "histogram time");
                if (!r->failed && !bl->how_ref_ms)
                        mg_r_fail(r, "histogram without a time");
                b = mg_r_bytes(r, MG_HOW_BUCKETS / 8, "histogram");
                for (i = 0; b && i < MG_HOW_BUCKETS; i++)
                        if (b[i / 8] & (1u << (i % 8)))
                                bl->how[i] = mg_r_f32(r, "histogram bucket");
        } else if (bl->rate_fired) {
                mg_r_fail(r, "rate flag without activity");
        }
        mask = mg_r_u16(r, "contributions");
        if (mask >> MG_SIG__CNT)
                mg_r_fail(r, "unknown signals in contributions");
        for (s = 0; s < MG_SIG__CNT; s++)
                if (mask & (1u << s)) {
                        bl->contrib[s] = mg_r_f64(r, "contribution", 0, 1e12);
                        if (!r->failed && !(bl->contrib[s] > 0))
                                mg_r_fail(r, "zero contribution");
                }
        dmask = mg_r_u16(r, "details");
        for (s = 0; s < MG_SIG__CNT && !r->failed; s++) {
                if (((dmask >> s) & 1) !=
                    (bl->contrib[s] > MG_REASON_MIN_POINTS)) {
                        mg_r_fail(r, "detail of %s does not match its points",
                                  mg_signal_names[s]);
                        break;
                }
                if (!(dmask & (1u << s)))
                        continue;
                dlen = mg_r_u8(r, "detail");
                if (dlen == 0 || dlen >= MG_BL_DETAIL) {
                        mg_r_fail(r, "detail of %u bytes", dlen);
                        break;
                }
                b = mg_r_bytes(r, dlen, "detail");
                if (b && !mg_utf8_valid((const char *)b, dlen))
                        mg_r_fail(r, "detail is not valid UTF-8");
                if (b && !r->failed)
                        memcpy(bl->detail[s], b, dlen);
        }
        bl->pub_score = mg_r_f64(r, "published score", 0, 100);
        bl->pub_level = (uint8_t)mg_r_u8(r, "published level");
        if (bl->pub_level > MG_RISK_CRITICAL)
                mg_r_fail(r, "unknown level %u", bl->pub_level);

        cnt = mg_r_count(r, "failures", MG_BL_FAILS);
        for (prev = bl->newest_ms, i = 0; i < cnt && !r->failed; i++) {
                bl->fail_ms[i] = mg_r_time(r, "failure");
                mg_r_order(r, "failures", prev, bl->fail_ms[i]);
                prev = bl->fail_ms[i];
        }
        bl->fail_cnt = (uint8_t)cnt;

        cnt = mg_r_count(r, "networks", MG_BL_NETS);
        for (prev = bl->newest_ms, i = 0; i < cnt && !r->failed; i++) {
                struct mg_bl_net *net = &bl->nets[i];

                net->family = (uint8_t)mg_r_u8(r, "network family");
                if (net->family != 4 && net->family != 6) {
                        mg_r_fail(r, "network family %u", net->family);
                        break;
                }
                b = mg_r_bytes(r, net->family == 4 ? 3 : 8, "network");
                if (b)
                        memcpy(net->prefix, b, net->family == 4 ? 3 : 8);
                net->last_ms = mg_r_time(r, "network");
                mg_r_order(r, "networks", prev, net->last_ms);
                prev = net->last_ms;
                bl->net_cnt = (uint8_t)i;
                if (!r->failed && mg_bl_net_find(bl, net) >= 0)
                        mg_r_fail(r, "networks: duplicate entry");
        }
        bl->net_cnt = (uint8_t)cnt;

        cnt = version >= 2 ? mg_r_count(r, "source ASes", MG_BL_ASNS) : 0;
        for (prev = bl->newest_ms, i = 0; i < cnt && !r->failed; i++) {
                struct mg_bl_asn *as = &bl->asns[i];
                uint64_t v = mg_r_varint(r, "source AS");

                if (!r->failed && (v == 0 || v > UINT32_MAX)) {
                        mg_r_fail(r, "source AS %" PRIu64 " out of range", v);
                        break;
                }
                as->asn = (uint32_t)v;
                as->last_ms = mg_r_time(r, "source AS");
                mg_r_order(r, "source ASes", prev, as->last_ms);
                prev = as->last_ms;
                bl->asn_cnt = (uint8_t)i;
                if (!r->failed && mg_bl_asn_find(bl, as->asn) >= 0)
                        mg_r_fail(r, "source ASes: duplicate entry");
        }
        bl->asn_cnt = (uint8_t)cnt;
        if (version >= 3) {
                const unsigned char *pk = mg_r_bytes(
                        r, sizeof(bl->shared_peak), "shared_identity peaks");

                if (pk)
                        memcpy(bl->shared_peak, pk, sizeof(bl->shared_peak));
                if (!r->failed && (bl->shared_peak[0] > MG_BL_NETS ||
                                   bl->shared_peak[1] > MG_BL_CLIENTS ||
                                   bl->shared_peak[2] > MG_BL_AGENTS))
                        mg_r_fail(r, "shared_identity peak out of range");
        }

        mg_r_names(r, "clients", bl->clients, &bl->client_cnt, MG_BL_CLIENTS);
        mg_r_names(r, "user agents", bl->agents, &bl->agent_cnt, MG_BL_AGENTS);
        if (version < 3 && !r->failed)
                mg_bl_shared_peaks_now(bl);
        mg_r_names(r, "resources", bl->resources, &bl->resource_cnt,
                   MG_BL_RESOURCES);

        cnt = mg_r_count(r, "scopes", MG_BL_SCOPES);
        for (prev = bl->newest_ms, i = 0; i < cnt && !r->failed; i++) {
                struct mg_bl_scope *sc = &bl->scopes[i];
                int64_t touched;

                mg_r_name(r, "scopes", sc->text, &sc->exact, &sc->hash);
                sc->first_granted_ms = mg_r_time(r, "scope");
                sc->granted_ms = mg_r_time(r, "scope");
                sc->used_ms = mg_r_time(r, "scope");
                if (!r->failed &&
                    ((sc->first_granted_ms == 0) != (sc->granted_ms == 0) ||
                     sc->first_granted_ms > sc->granted_ms))
                        mg_r_fail(r, "scope grant times are inconsistent");
                touched = sc->granted_ms > sc->used_ms ? sc->granted_ms
                                                       : sc->used_ms;
                mg_r_order(r, "scopes", prev, touched);
                prev = touched;
                mg_r_unique(r, "scopes", bl->scopes, sizeof(*bl->scopes),
                            i + 1);
        }
        bl->scope_cnt = (uint8_t)cnt;

        cnt = mg_r_count(r, "tokens", MG_BL_TOKENS);
        for (i = 0; i < cnt && !r->failed; i++) {
                bl->tokens[i].hash = mg_r_u64(r, "token");
                bl->tokens[i].depth = (uint8_t)mg_r_u8(r, "token depth");
                mg_r_unique(r, "tokens", bl->tokens, sizeof(*bl->tokens),
                            i + 1);
        }
        bl->token_cnt = (uint8_t)cnt;

        if (!r->failed && r->off != r->len)
                mg_r_fail(r, "%zu trailing bytes", r->len - r->off);
        if (r->failed) {
                mg_baseline_init(bl);
                return MG_ERR_DECODE;
        }
        return MG_OK;
}

/*
 * JSON.
 */

/* Set key to v in obj; v NULL (allocation failure) makes *ok 0. */
static void mg_j_set(json_t *obj, const char *key, json_t *v, int *ok) {
        if (!v || json_object_set_new(obj, key, v))
                *ok = 0;
}

static void mg_j_push(json_t *arr, json_t *v, int *ok) {
        if (!v || json_array_append_new(arr, v))
                *ok = 0;
}

static json_t *mg_j_time(int64_t ms) {
        char buf[32];

        if (!ms)
                return json_null();
        mg_time_format_rfc3339(ms, buf, sizeof(buf));
        return json_string(buf);
}

/* Round to hundredths for display; null for what JSON cannot hold. */
static json_t *mg_j_real(double v) {
        v = round(v * 100) / 100;
        return isfinite(v) ? json_real(v) : json_null();
}

static json_t *mg_j_names(const struct mg_bl_name *names, int cnt,
                          const char *key, int *ok) {
        json_t *arr = json_array(), *o;
        int i;

        if (!arr) {
                *ok = 0;
                return NULL;
        }
        for (i = 0; i < cnt; i++) {
                o = json_object();
                mg_j_push(arr, o, ok);
                if (!o)
                        break;
                mg_j_set(o, key, json_string(names[i].text), ok);
                if (!names[i].exact)
                        mg_j_set(o, "truncated", json_true(), ok);
                mg_j_set(o, "last_seen", mg_j_time(names[i].last_ms), ok);
        }
        return arr;
}

char *mg_baseline_to_json(const struct mg_baseline *bl,
                          const struct mg_scoring_conf *conf, int64_t now_ms) {
        json_t *root = json_object(), *o, *arr, *item;
        double c[MG_SIG__CNT], mean = 0, var, day[7] = {0}, hour[24] = {0};
        double total = 0, share;
        struct mg_risk risk;
        char text[64], *out = NULL;
        int ok = root != NULL, i, s, active = 0, quiet = 0;

        if (!ok)
                goto out;
        if (now_ms < bl->newest_ms)
                now_ms = bl->newest_ms;
        mg_baseline_risk(bl, conf, now_ms, &risk);
        mg_j_set(root, "risk", mg_j_real(risk.score), &ok);
        mg_j_set(root, "level", json_string(mg_risk_level_names[risk.level]),
                 &ok);
        mg_j_set(root, "at", mg_j_time(risk.ts_ms), &ok);
        mg_j_set(root, "reasons", arr = json_array(), &ok);
        for (i = 0; arr && i < risk.reason_cnt; i++) {
                mg_j_push(arr, item = json_object(), &ok);
                if (!item)
                        break;
                mg_j_set(item, "signal",
                         json_string(mg_signal_names[risk.reasons[i].signal]),
                         &ok);
                mg_j_set(item, "points", mg_j_real(risk.reasons[i].points),
                         &ok);
                mg_j_set(item, "detail", json_string(risk.reasons[i].detail),
                         &ok);
        }
        mg_bl_contrib_at(bl, conf, now_ms, c);
        mg_j_set(root, "contributions", o = json_object(), &ok);
        for (s = 0; o && s < MG_SIG__CNT; s++)
                if (c[s] > 0)
                        mg_j_set(o, mg_signal_names[s], mg_j_real(c[s]), &ok);
        mg_j_set(root, "events", o = json_object(), &ok);
        for (i = 0; o && i < MG_EVENT_TYPE__CNT; i++)
                mg_j_set(o, mg_event_type_names[i],
                         json_integer((json_int_t)bl->ev_cnt[i]), &ok);
        mg_j_set(root, "first_seen", mg_j_time(bl->first_act_ms), &ok);
        mg_j_set(root, "last_active", mg_j_time(bl->last_act_ms), &ok);
        mg_j_set(root, "last_seen", mg_j_time(bl->newest_ms), &ok);

        mg_j_set(root, "networks", arr = json_array(), &ok);
        for (i = 0; arr && i < bl->net_cnt; i++) {
                mg_j_push(arr, item = json_object(), &ok);
                if (!item)
                        break;
                mg_bl_net_format(&bl->nets[i], text, sizeof(text));
                mg_j_set(item, "network", json_string(text), &ok);
                mg_j_set(item, "last_seen", mg_j_time(bl->nets[i].last_ms),
                         &ok);
        }
        mg_j_set(root, "asns", arr = json_array(), &ok);
        for (i = 0; arr && i < bl->asn_cnt; i++) {
                mg_j_push(arr, item = json_object(), &ok);
                if (!item)
                        break;
                mg_j_set(item, "asn", json_integer(bl->asns[i].asn), &ok);
                mg_j_set(item, "last_seen", mg_j_time(bl->asns[i].last_ms),
                         &ok);
        }
        mg_j_set(root, "clients",
                 mg_j_names(bl->clients, bl->client_cnt, "client_id", &ok),
                 &ok);
        mg_j_set(root, "user_agents",
                 mg_j_names(bl->agents, bl->agent_cnt, "user_agent", &ok),
                 &ok);
        mg_j_set(root, "resources",
                 mg_j_names(bl->resources, bl->resource_cnt, "resource", &ok),
                 &ok);
        mg_j_set(root, "scopes", arr = json_array(), &ok);
        for (i = 0; arr && i < bl->scope_cnt; i++) {
                const struct mg_bl_scope *sc = &bl->scopes[i];

                mg_j_push(arr, item = json_object(), &ok);
                if (!item)
                        break;
                mg_j_set(item, "scope", json_string(sc->text), &ok);
                if (!sc->exact)
                        mg_j_set(item, "truncated", json_true(), &ok);
                mg_j_set(item, "granted", mg_j_time(sc->granted_ms), &ok);
                mg_j_set(item, "used", mg_j_time(sc->used_ms), &ok);
                mg_j_set(item, "unused",
                         json_boolean(mg_bl_scope_is_unused(sc, conf,
                                                            now_ms)),
                         &ok);
        }
        /* shared_identity's view: what is active within a day now, and
         * the most ever active at once (it fires only past both the
         * threshold and that peak). */
        {
                static const char *const keys[3] = {"networks", "clients",
                                                    "user_agents"};
                int act[3];

                mg_bl_shared_active(bl, now_ms, act);
                mg_j_set(root, "sharing", o = json_object(), &ok);
                for (i = 0; o && i < 3; i++) {
                        mg_j_set(o, keys[i], item = json_object(), &ok);
                        if (!item)
                                break;
                        mg_j_set(item, "active_24h", json_integer(act[i]),
                                 &ok);
                        mg_j_set(item, "peak",
                                 json_integer(bl->shared_peak[i]), &ok);
                }
        }
        mg_j_set(root, "recent_tokens", json_integer(bl->token_cnt), &ok);
        mg_j_set(root, "recent_auth_failures", json_integer(bl->fail_cnt),
                 &ok);

        if (bl->rate_w > 0) {
                mean = bl->rate_s1 / bl->rate_w;
                var = bl->rate_s2 / bl->rate_w - mean * mean;
                mg_j_set(root, "rate", o = json_object(), &ok);
                if (o) {
                        mg_j_set(o, "per_minute_mean", mg_j_real(mean), &ok);
                        mg_j_set(o, "per_minute_stddev",
                                 mg_j_real(var > 0 ? sqrt(var) : 0), &ok);
                }
        }

        for (i = 0; i < MG_HOW_BUCKETS; i++) {
                total += bl->how[i];
                day[i / 24] += bl->how[i];
                hour[i % 24] += bl->how[i];
                active += bl->how[i] > 0;
        }
        mg_j_set(root, "activity", o = json_object(), &ok);
        if (o && total > 0) {
                for (i = 0; i < MG_HOW_BUCKETS; i++) {
                        share = mg_bl_how_share(bl, i);
                        quiet += share <
                                 conf->sig[MG_SIG_OFF_HOURS].threshold;
                }
                mg_j_set(o, "hours_of_week_active", json_integer(active),
                         &ok);
                mg_j_set(o, "hours_of_week_quiet", json_integer(quiet), &ok);
                mg_j_set(o, "by_day_utc", item = json_object(), &ok);
                for (i = 0; item && i < 7; i++)
                        mg_j_set(item, mg_day_names[i],
                                 json_real(round(day[i] / total * 1000) /
                                           1000),
                                 &ok);
                mg_j_set(o, "by_hour_utc", item = json_array(), &ok);
                for (i = 0; item && i < 24; i++)
                        mg_j_push(item,
                                  json_real(round(hour[i] / total * 1000) /
                                            1000),
                                  &ok);
        }
        if (ok)
                out = json_dumps(root, JSON_COMPACT);
out:
        json_decref(root);
        return out;
}
