/*
 * mg_baseline.h — the behavioural baseline of one identity and the pure
 * scoring function over it: no I/O, no clock, no allocation. The Redis
 * store (mg_store.h) persists baselines as the opaque blobs produced here;
 * `mintgate replay` (later) runs the same function over an in-memory store.
 *
 * Model (event time drives everything; time never runs backwards inside a
 * baseline: an event older than the newest seen is applied at the newest
 * time, so late events within the ingest bound neither decay nor "undecay"
 * anything):
 *   - decayed counters (exponential, per-signal half-lives) for rates;
 *   - bounded top-K tables with last-seen times (source /24 or /64
 *     networks, source ASes when a prefix -> AS table is configured,
 *     clients, user agents, resources/audiences, scopes granted and used,
 *     recent token ids) — least recently seen is evicted, so the baseline
 *     is O(1) in size whatever the identity does;
 *   - an hour-of-week activity histogram (decayed);
 *   - per-minute rate mean/variance (EWMA) for rate spikes;
 *   - per-signal decayed risk contributions; risk = min(100, sum), decaying
 *     with scoring.risk.half_life; reasons = top contributions with the
 *     detail of their latest firing.
 *
 * Thread-safety: functions touch only their arguments.
 */
#ifndef MG_BASELINE_H
#define MG_BASELINE_H

#include <stddef.h>
#include <stdint.h>

#include "mg_asn.h"
#include "mg_config.h"
#include "mg_err.h"
#include "mg_event.h"

/* Anomaly signals, in reporting order. */
enum mg_signal {
        MG_SIG_NEW_SOURCE,
        MG_SIG_RATE_SPIKE,
        MG_SIG_OFF_HOURS,
        MG_SIG_AUTH_FAILURES,
        MG_SIG_SCOPE_EXPANSION,
        MG_SIG_NEW_RESOURCE,
        MG_SIG_DORMANT_REACTIVATION,
        MG_SIG_SHARED_IDENTITY,
        MG_SIG_TOKEN_CHAIN,
        MG_SIG_SECRET_EXPOSED,
        MG_SIG_CREDENTIAL_COMPROMISE,
        MG_SIG_QUARANTINE,
        MG_SIG__CNT
};

extern const char *const mg_signal_names[MG_SIG__CNT];

/* Per-signal tuning (scoring.signals.<name>.*). */
struct mg_signal_conf {
        double weight;      /* points added when the signal fires */
        double threshold;   /* signal-specific trigger level (see table) */
        int64_t warmup;     /* events the baseline must have seen first */
};

/* Scoring configuration (section "scoring"; see mg_scoring_conf_props). */
struct mg_scoring_conf {
        struct mg_signal_conf sig[MG_SIG__CNT];
        int64_t risk_half_life_ms;    /* scoring.risk.half_life */
        double level_medium;          /* risk >= this: medium */
        double level_high;            /* risk >= this: high */
        double level_critical;        /* risk >= this: critical */
        int64_t dormant_after_ms;     /* scoring.dormant_after */
        int64_t scope_unused_after_ms; /* scoring.scope_unused_after */
        int64_t late_bound_ms;        /* scoring.late_bound: older = late */
        int64_t rate_half_life_ms;    /* scoring.rate.half_life */
        int64_t failure_window_ms;    /* scoring.auth_failures.window */
        double new_source_nearby;     /* scoring.signals.new_source.
                                       * nearby_weight */
        char *asn_file;               /* scoring.asn_file; "" for none */
        /* Not in the table: asn_file loaded (mg_asn_load_file()) by the
         * program that scores, which owns it; NULL: no AS data. Lookups
         * are pure reads, so apply stays free of I/O. */
        const struct mg_asn *asn;
};

extern const struct mg_conf_prop mg_scoring_conf_props[];
extern const size_t mg_scoring_conf_prop_cnt;

/* Levels of a risk score. */
enum mg_risk_level {
        MG_RISK_LOW,
        MG_RISK_MEDIUM,
        MG_RISK_HIGH,
        MG_RISK_CRITICAL
};
extern const char *const mg_risk_level_names[4];

/* One reason: a signal's current contribution. */
struct mg_reason {
        enum mg_signal signal;
        double points;     /* decayed contribution now */
        char detail[128];  /* human-readable, e.g. "198.51.100.0/24 never seen" */
};

#define MG_REASONS_MAX 5

/* A risk score at a point in time. */
struct mg_risk {
        double score;                /* 0..100 */
        enum mg_risk_level level;
        int64_t ts_ms;               /* event time it is valid at */
        struct mg_reason reasons[MG_REASONS_MAX]; /* top contributors */
        int reason_cnt;
};

/* What applying one event did. */
struct mg_apply_result {
        int applied;                 /* 0: rejected (late), see err */
        unsigned fired;              /* bitmask of (1 << enum mg_signal) */
        double points[MG_SIG__CNT];  /* points each fired signal added */
        struct mg_risk risk;         /* risk after the event */
        int risk_changed;            /* level or score moved by >= 0.5 */
};

/* The baseline: a fixed-size, self-contained struct (no pointers) whose
 * fields are private to mg_baseline.c; allocate mg_baseline_size() bytes,
 * copy it with memcpy. */
struct mg_baseline;

/* Size of struct mg_baseline, for allocation. */
size_t mg_baseline_size(void);
/* A fresh, empty baseline for identity-independent use. */
void mg_baseline_init(struct mg_baseline *bl);

/* Apply one validated event. Late events (older than the newest seen by
 * more than conf->late_bound_ms) are not applied: MG_ERR_LATE. */
mg_err_t mg_baseline_apply(struct mg_baseline *bl,
                           const struct mg_scoring_conf *conf,
                           const struct mg_event *ev,
                           struct mg_apply_result *res);

/* Risk of the baseline decayed to now_ms; a now_ms before its newest
 * event time counts as that time (so 0 gives the risk at the newest
 * event, as the scorer stores it). */
void mg_baseline_risk(const struct mg_baseline *bl,
                      const struct mg_scoring_conf *conf, int64_t now_ms,
                      struct mg_risk *risk);

/* Events applied, per event type. */
uint64_t mg_baseline_event_count(const struct mg_baseline *bl,
                                 enum mg_event_type type);

/* 1 if scope was granted to the identity but not used for
 * conf->scope_unused_after_ms as of now_ms; 0 if used recently or unknown. */
int mg_baseline_scope_unused(const struct mg_baseline *bl,
                             const struct mg_scoring_conf *conf,
                             const char *scope, int64_t now_ms);

/* A granted scope and since when it has been idle: its latest use, or its
 * first grant if it was never used since. It is unused when
 * now - idle_since_ms >= scoring.scope_unused_after. */
struct mg_scope_idle {
        char scope[64];        /* the scope (cut to 63 bytes if longer) */
        int exact;             /* scope is the whole name, not cut */
        int64_t idle_since_ms; /* event time */
};

/* Fill out with up to max of the identity's granted scopes; returns how
 * many. For the decision service, which judges "unused" with its own
 * clock. */
int mg_baseline_scopes_idle(const struct mg_baseline *bl,
                            struct mg_scope_idle *out, int max);

/* Serialize to a portable, versioned byte string (little-endian, no
 * padding). MG_ERR_TOOBIG if size is too small; MG_BASELINE_BLOB_MAX
 * always suffices. */
#define MG_BASELINE_BLOB_MAX 4096
mg_err_t mg_baseline_encode(const struct mg_baseline *bl, void *buf,
                            size_t size, size_t *lenp);
/* Parse a blob of the current version or an older one (a version 1 blob,
 * from before source ASes, has none); MG_ERR_DECODE naming the problem if
 * it is corrupt or of an unknown version. */
mg_err_t mg_baseline_decode(struct mg_baseline *bl, const void *buf,
                            size_t len, char *errstr, size_t errstr_size);

/* JSON object describing the baseline and its risk at now_ms (for
 * `baseline show --json` and export); malloc'd, caller frees. Includes
 * "events":{"auth":N,"usage":N,"signal":N} and "asns":[{"asn":N,
 * "last_seen":…}] (empty without AS data). */
char *mg_baseline_to_json(const struct mg_baseline *bl,
                          const struct mg_scoring_conf *conf, int64_t now_ms);

#endif /* MG_BASELINE_H */
