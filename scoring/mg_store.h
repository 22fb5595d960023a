/*
 * mg_store.h — where baselines live between batches: a small ops struct with
 * one implementation per backend (Redis now; an in-memory one for offline
 * replay), so the scorer is the same code over both.
 *
 * A record is one identity's persisted state: its baseline, the last
 * applied offset of every (topic, partition) its events came from, and a
 * generation number that every save increments. Saves are
 * compare-and-set on the generation, atomically with the offsets: a save
 * whose generation is stale (another worker wrote meanwhile, e.g. after a
 * rebalance) is refused as a conflict and nothing of it is applied. Since
 * the offsets travel with the state they produced, a replayed message is
 * recognised by its offset and not counted twice.
 *
 * Redis layout (keys carry the identity in a hash tag, so one identity's
 * keys share a Redis Cluster slot):
 *   mg:{<identity>}:bl    hash: b = baseline blob, g = generation,
 *                          o:<topic>:<partition> = last applied offset
 *   mg:{<identity>}:risk  string: the current risk as JSON (below)
 *   channel mg:risk       every risk change, the same JSON
 * Risk JSON: {"identity":…,"risk":47.5,"level":"medium","ts":<event ms>,
 *             "reasons":[{"signal":…,"points":…,"detail":…}],
 *             "updated":<wall ms>}
 *
 * Threads: a store belongs to one thread.
 */
#ifndef MG_STORE_H
#define MG_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "mg_baseline.h"
#include "mg_config.h"
#include "mg_err.h"

/* Distinct (topic, partition) origins one identity can have: one per input
 * topic in steady state, more transiently after a topic's partition count
 * changes. */
#define MG_STORE_ORIGINS_MAX 8

/* Most identities one save call may carry (redis.ids_per_call). */
#define MG_STORE_IDS_PER_CALL_MAX 512

struct mg_store_origin {
        char topic[64];    /* input topic */
        int32_t partition; /* its partition */
        int64_t offset;    /* last offset applied to the baseline */
};

/* One identity's state as the scorer holds it. */
struct mg_store_rec {
        char identity[MG_EVENT_IDENTITY_MAX + 1]; /* the key */
        struct mg_baseline *bl;        /* owned, mg_baseline_size() bytes */
        uint64_t gen;                  /* generation loaded; 0: new */
        struct mg_store_origin origins[MG_STORE_ORIGINS_MAX];
        int origin_cnt;
        char *risk_json;               /* to publish on save, or NULL */
};

struct mg_store_ops {
        const char *name;
        /* Fill each record (identity set by the caller) from the store:
         * baseline (fresh if absent), generation, origins. */
        mg_err_t (*load_cb)(void *st, struct mg_store_rec **recs, size_t cnt,
                            char *errstr, size_t errstr_size);
        /* Save each record if its stored generation still equals rec->gen,
         * then set rec->gen to the new generation; publish risk_json when
         * set. conflicts[i] = 1 for records refused as stale. Returns a
         * retry-class error when the store is unreachable (then nothing
         * may be assumed saved). */
        mg_err_t (*save_cb)(void *st, struct mg_store_rec **recs, size_t cnt,
                            int *conflicts, char *errstr, size_t errstr_size);
        void (*destroy_cb)(void *st);
};

struct mg_store {
        const struct mg_store_ops *ops;
        void *st; /* backend state */
};

/* Redis connection settings (section "redis"). */
struct mg_redis_conf {
        char *addr;             /* host:port */
        int64_t connect_timeout_ms;
        int64_t io_timeout_ms;
        char *password;         /* AUTH, or empty */
        char *risk_channel;     /* pub/sub channel of risk changes */
        int cluster;            /* Redis Cluster: one identity per script */
        int64_t ids_per_call;   /* identities saved per script call */
};

extern const struct mg_conf_prop mg_redis_conf_props[];
extern const size_t mg_redis_conf_prop_cnt;

/* A Redis store. Does not connect until first use; reconnects by itself
 * after errors. conf must outlive the store. */
mg_err_t mg_store_redis_new(const struct mg_redis_conf *conf,
                            struct mg_store *store, char *errstr,
                            size_t errstr_size);

/* An in-memory store (mg_store_mem.c) for offline replay: the same
 * contract, baselines held as encoded blobs in one process. */
mg_err_t mg_store_mem_new(struct mg_store *store, char *errstr,
                          size_t errstr_size);

void mg_store_destroy(struct mg_store *store);

/* Allocate / free a record (with its baseline). */
struct mg_store_rec *mg_store_rec_new(const char *identity);
void mg_store_rec_destroy(struct mg_store_rec *rec);

/* The origin entry of (topic, partition) in rec, added if absent (offset
 * -1). NULL when MG_STORE_ORIGINS_MAX are in use. */
struct mg_store_origin *mg_store_rec_origin(struct mg_store_rec *rec,
                                            const char *topic,
                                            int32_t partition);

/* Build the risk JSON of DESIGN.md's data model; malloc'd. */
char *mg_store_risk_json(const char *identity, const struct mg_risk *risk,
                         int64_t updated_ms);

/* Read one identity's record straight from Redis (for `baseline show`):
 * MG_ERR_NOT_FOUND when absent. */
mg_err_t mg_store_redis_get(const struct mg_redis_conf *conf,
                            struct mg_store_rec *rec, char *errstr,
                            size_t errstr_size);

/*
 * Administration of a Redis store (`mintgate baseline top | reset | export
 * | import`). Each function takes a store made by mg_store_redis_new() and
 * uses its connection (connecting on first use), so a command's many calls
 * share one connection. A connection or protocol error drops it and
 * returns MG_ERR_REDIS naming the address.
 */

/* Keys mg_store_redis_scan() walks. */
enum mg_store_scan_kind {
        MG_STORE_SCAN_RISK,     /* mg:{*}:risk, read with GET */
        MG_STORE_SCAN_BASELINE  /* mg:{*}:bl, read with HGETALL */
};

/* One identity handed to a mg_store_item_cb; everything in it is valid
 * only during the callback. */
struct mg_store_item {
        const char *identity;  /* from the key */
        const char *risk_json; /* MG_STORE_SCAN_RISK: the value (NUL-
                                * terminated), else NULL */
        struct mg_store_rec *rec; /* baseline scans and fetches: the record
                                   * as the scorer would load it; NULL when
                                   * it cannot be read (see error) */
        const char *error;     /* why rec is NULL (absent identity, corrupt
                                * blob), else NULL */
};

/* Sees one identity. Returning anything but MG_OK stops the walk, which
 * then returns that code (the callback reports its own error). */
typedef mg_err_t (*mg_store_item_cb)(void *opaque,
                                     const struct mg_store_item *item);

/* Every identity with a key of that kind, in no particular order: SCAN
 * (MATCH mg:{*}:risk or mg:{*}:bl, COUNT 1000), each batch's values read
 * with pipelined GETs or HGETALLs sent together with the next SCAN, so a
 * batch of up to about a thousand identities costs one round trip and
 * memory stays bounded by one batch whatever the key count. Keys deleted
 * meanwhile are skipped; as with any SCAN, an identity may be seen twice
 * if Redis resizes its table during the walk. With redis.cluster this
 * walks only the node at redis.addr. */
mg_err_t mg_store_redis_scan(struct mg_store *store,
                             enum mg_store_scan_kind kind,
                             mg_store_item_cb cb, void *opaque, char *errstr,
                             size_t errstr_size);

/* The baseline records of cnt named identities, in order, with pipelined
 * HGETALLs (one round trip per thousand). An identity with no record gets
 * an item whose error says so. */
mg_err_t mg_store_redis_fetch(struct mg_store *store,
                              const char *const *identities, size_t cnt,
                              mg_store_item_cb cb, void *opaque,
                              char *errstr, size_t errstr_size);

/* What mg_store_redis_reset() did. */
struct mg_store_reset_result {
        uint64_t gen;          /* generation after the reset */
        int had_baseline;      /* a baseline blob was deleted */
        int offsets_kept;      /* o:* offsets left in place */
        int had_risk;          /* a risk key was deleted ... */
        double old_risk;       /* ... holding this score */
        int64_t receivers;     /* subscribers the zero risk reached */
};

/* Start identity's baseline afresh, atomically (one script): delete the
 * blob, increment the generation (running scorers' next save of it is
 * refused as stale, so they reload the now-empty baseline), keep the
 * offsets (events already applied are not counted again when redelivered),
 * delete the risk key and publish a zero risk record (level low, no
 * reasons, ts and updated = now_ms) on redis.risk_channel so decision
 * services forget the old risk. MG_ERR_NOT_FOUND, with nothing changed,
 * when the identity has no baseline hash. */
mg_err_t mg_store_redis_reset(struct mg_store *store, const char *identity,
                              int64_t now_ms,
                              struct mg_store_reset_result *res, char *errstr,
                              size_t errstr_size);

/* Write cnt records (`baseline import`): per identity, atomically, set the
 * blob to rec->bl, increment the generation (never set it: generations only
 * grow, so a scorer holding an older copy always sees a conflict), SET the
 * risk key to rec->risk_json (required) and publish it. with_offsets: the
 * stored offsets become exactly rec's (others deleted); otherwise the
 * stored offsets are left alone, since offsets only mean something on the
 * Kafka cluster they came from. On success rec->gen is the new generation.
 * Pipelined: one round trip, redis.ids_per_call identities per script
 * call (one with redis.cluster). */
mg_err_t mg_store_redis_put(struct mg_store *store, struct mg_store_rec **recs,
                            size_t cnt, int with_offsets, char *errstr,
                            size_t errstr_size);

#endif /* MG_STORE_H */
