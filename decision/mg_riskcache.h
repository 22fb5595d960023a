/*
 * mg_riskcache.h — the decision service's view of live risk.
 *
 * An in-memory map identity -> latest risk record, shared by the server's
 * worker threads, kept current by a subscriber thread on scoring's risk
 * channel (mg:risk, see scoring/mg_store.h), and filled on a miss by a read
 * of mg:{<identity>}:risk through the calling thread's own Redis connection.
 * An identity scoring has never seen has no record: that is a known fact
 * (risk 0), cached as such, not a failure.
 *
 * Freshness: a record is fresh while the subscriber has been connected
 * without a gap since the record was read or last updated (then every
 * change would have reached it), or for decision.risk_stale_after after it
 * was read. When Redis is unreachable, records age out and misses cannot
 * be filled: the view says not fresh and the policy's degraded mode
 * applies.
 *
 * Unused scopes are a 30-day notion: they are read lazily from the
 * identity's baseline (mg:{<identity>}:bl) only when a policy asks, and
 * kept decision.scope_info_ttl.
 *
 * Staleness, for /metrics: the time the last record arrived on the
 * channel, how many times the subscriber has (re)subscribed, and a
 * histogram of the channel's delay (arrival minus the record's "updated",
 * the time scoring saved it). The view a decision is taken with carries
 * the record's "updated", so the caller can tell how old that risk is.
 *
 * Memory: an entry is one allocation holding the identity and up to three
 * reasons with their details, typically under 256 bytes.
 *
 * Threads: lookups from any thread (striped locks); each thread needs its
 * own struct mg_riskcache_conn for misses.
 */
#ifndef MG_RISKCACHE_H
#define MG_RISKCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "mg_config.h"
#include "mg_decision.h"
#include "mg_err.h"
#include "mg_store.h"

/* Settings (section "decision", risk part). */
struct mg_riskcache_conf {
        int64_t stale_after_ms;     /* age at which a record is stale */
        int64_t max_entries;        /* identities kept */
        int64_t get_timeout_ms;     /* a miss's Redis read */
        int64_t scope_info_ttl_ms;  /* unused-scope data kept this long */
        int64_t scope_unused_after_ms; /* granted, not used this long */
};

extern const struct mg_conf_prop mg_riskcache_conf_props[];
extern const size_t mg_riskcache_conf_prop_cnt;

struct mg_riskcache;
struct mg_riskcache_conn;

/* Upper bounds (ms) of the channel delay histogram's buckets: the
 * freshness target is tens of milliseconds, so the detail is there; 5 s
 * and beyond is a stalled scorer or network. */
#define MG_RISKCACHE_DELAY_BUCKETS 11
extern const int64_t mg_riskcache_delay_bounds_ms[MG_RISKCACHE_DELAY_BUCKETS];

/* Counters for metrics. */
struct mg_riskcache_stats {
        uint64_t entries;       /* identities cached */
        uint64_t bytes;         /* their memory */
        uint64_t hits, misses;  /* lookups */
        uint64_t updates;       /* records received on the channel */
        uint64_t redis_errors;  /* failed reads */
        int subscribed;         /* the subscriber is connected */
        uint64_t subscriptions; /* times the subscriber (re)subscribed */
        int64_t started_ms;     /* wall time the cache was created */
        int64_t last_update_ms; /* wall time the last record arrived on the
                                 * channel; 0: none yet */
        /* Channel delay of the records that carried "updated": count per
         * bucket of mg_riskcache_delay_bounds_ms (not cumulative), the
         * last for those over the last bound; and their sum. */
        uint64_t delay_buckets[MG_RISKCACHE_DELAY_BUCKETS + 1];
        uint64_t delay_sum_ms;
};

/* conf and rconf must outlive the cache. Starts the subscriber thread. */
mg_err_t mg_riskcache_new(const struct mg_riskcache_conf *conf,
                          const struct mg_redis_conf *rconf,
                          struct mg_riskcache **rcp, char *errstr,
                          size_t errstr_size);
void mg_riskcache_destroy(struct mg_riskcache *rc);

/* A per-thread Redis connection for misses (connects lazily). */
struct mg_riskcache_conn *mg_riskcache_conn_new(struct mg_riskcache *rc);
void mg_riskcache_conn_destroy(struct mg_riskcache_conn *conn);

/* Fill view with the identity's risk now: from the cache, else read from
 * Redis through conn. view->scope_unused_cb is set when scope data can be
 * had. Never fails: a failure shows as view->fresh == 0. */
void mg_riskcache_get(struct mg_riskcache *rc, struct mg_riskcache_conn *conn,
                      const char *identity, int64_t now_ms,
                      struct mg_risk_view *view);

/* Apply one risk record (the JSON of the channel) as the subscriber does,
 * now_ms being when it arrived; exposed for tests. */
mg_err_t mg_riskcache_update(struct mg_riskcache *rc, const char *json,
                             size_t len, int64_t now_ms);

/* The view the cache would give a decision for one risk record (the
 * JSON of the channel): three reasons at most, score and points as the
 * cache stores them, details cut as it cuts them. fresh is set, the
 * scope oracle is not. For replay, which must decide exactly as the live
 * service does. Errors name what is wrong with the record. */
mg_err_t mg_riskcache_view_from_json(const char *json, size_t len,
                                     struct mg_risk_view *view, char *errstr,
                                     size_t errstr_size);

void mg_riskcache_stats_get(struct mg_riskcache *rc,
                            struct mg_riskcache_stats *st);

#endif /* MG_RISKCACHE_H */
