/*
 * mg_scorer.h — the scoring stage: applies batches of events to the
 * identities' baselines held in a store (mg_store.h), effectively once.
 *
 * Two phases. mg_scorer_apply(): identities not in the cache are loaded in
 * one round trip; events are applied in order, each to its identity's
 * baseline, except those whose (topic, partition) offset the baseline has
 * already applied (a redelivery after a crash or a retry). mg_scorer_flush()
 * (every few milliseconds): every changed identity is saved in one round
 * trip, compare-and-set on its generation, with its new offsets and — when
 * its risk moved — its risk record, published to subscribers. Flushing on
 * a timer rather than per batch lets many events of an identity share one
 * write. Only after a successful flush may the events be acknowledged.
 *
 * The cache holds the identities this worker owns (their partitions are
 * assigned to it), so loads are rare in steady state. It must be cleared
 * when partitions move (mg_scorer_cache_clear()), and is bounded by
 * worker.cache_identities (least recently used evicted).
 *
 * Independent of Kafka: events may come from ingest or from a replay.
 * Threads: one scorer per thread.
 */
#ifndef MG_SCORER_H
#define MG_SCORER_H

#include <stddef.h>
#include <stdint.h>

#include "mg_baseline.h"
#include "mg_config.h"
#include "mg_err.h"
#include "mg_event.h"
#include "mg_store.h"

/* Settings of the worker (section "worker"). */
struct mg_worker_conf {
        int64_t cache_identities; /* baselines kept in memory */
};

extern const struct mg_conf_prop mg_worker_conf_props[];
extern const size_t mg_worker_conf_prop_cnt;

struct mg_scorer;

/* Counters. */
struct mg_scorer_stats {
        uint64_t applied;       /* events applied to a baseline */
        uint64_t replayed;      /* events skipped: offset already applied */
        uint64_t late;          /* events refused as too late */
        uint64_t published;     /* risk changes saved and published */
        uint64_t loads;         /* identities loaded from the store */
        uint64_t saves;         /* identity saves */
        uint64_t conflicts;     /* saves refused as stale */
        uint64_t batches;       /* batches applied */
        uint64_t flushes;       /* successful flushes */
        uint64_t load_us;       /* time spent loading from the store */
        uint64_t apply_us;      /* time spent applying events */
        uint64_t save_us;       /* time spent saving to the store */
};

/* Takes ownership of store (destroyed with the scorer). conf and wconf must
 * outlive the scorer; conf may be replaced with mg_scorer_set_conf(). */
mg_err_t mg_scorer_new(const struct mg_scoring_conf *conf,
                       const struct mg_worker_conf *wconf,
                       struct mg_store *store, struct mg_scorer **scp,
                       char *errstr, size_t errstr_size);
void mg_scorer_destroy(struct mg_scorer *sc);

/* Apply cnt events (validated, origin set, in consumption order) to the
 * cached baselines, loading missing identities from the store (one round
 * trip). verdicts[i] is set to MG_OK or to a dead-letter error for events
 * that were refused (MG_ERR_LATE). results, when not NULL, gets what each
 * event did (results[i].applied is 0 for a refused or already-applied
 * event). Nothing is saved yet: the effects are durable after the next
 * successful mg_scorer_flush(). Returns a retry-class error when the store
 * is unreachable (nothing of this batch was applied; earlier unflushed
 * batches are kept), or a fatal error. */
mg_err_t mg_scorer_apply(struct mg_scorer *sc, const struct mg_event *const *evs,
                         size_t cnt, mg_err_t *verdicts,
                         struct mg_apply_result *results, char *errstr,
                         size_t errstr_size);

/* The cached baseline of identity, or NULL when it is not cached (for
 * replay, which caches every identity: NULL means never seen). Valid until
 * the next call on sc. */
const struct mg_baseline *mg_scorer_baseline(struct mg_scorer *sc,
                                             const char *identity);

/* Save every baseline changed since the last flush, with its offsets and,
 * when its risk moved, its risk record (published): one pipelined round
 * trip, compare-and-set per identity. On any failure every unflushed
 * change is dropped (the caller redelivers those events) and a
 * retry-class error is returned (store unreachable, or another worker
 * wrote an identity meanwhile). */
mg_err_t mg_scorer_flush(struct mg_scorer *sc, char *errstr,
                         size_t errstr_size);

/* Forget every cached baseline (partitions moved). */
void mg_scorer_cache_clear(struct mg_scorer *sc);

/* Use new scoring settings from the next batch on (SIGHUP reload). */
void mg_scorer_set_conf(struct mg_scorer *sc,
                        const struct mg_scoring_conf *conf);

void mg_scorer_stats_get(const struct mg_scorer *sc,
                         struct mg_scorer_stats *st);

#endif /* MG_SCORER_H */
