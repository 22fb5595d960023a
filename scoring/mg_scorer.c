/*
 * mg_scorer.c — batches of events onto stored baselines, effectively once
 * (contract in mg_scorer.h).
 *
 * The cache is a chained hash table on the identity (FNV-1a) plus an LRU
 * list. A flush publishes an identity's risk only when the baseline
 * reported a change (level changed, or score moved by half a point or more
 * since the risk it last published).
 *
 * Failure handling keeps the cache and the store in agreement: if a save
 * fails or is refused, every entry the batch changed is dropped from the
 * cache (its true state is in the store, whatever it is), and the batch is
 * retried from the store's state. Entries saved before a refusal keep their
 * new offsets, so on the retry their events are recognised as applied.
 */
#include "mg_scorer.h"

#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "mg_hash.h"
#include "mg_log.h"

#define WORKER_OFF(field) offsetof(struct mg_worker_conf, field)

const struct mg_conf_prop mg_worker_conf_props[] = {
        {"worker.cache_identities", MG_CONF_INT, WORKER_OFF(cache_identities),
         "200000", 1000, 100000000, 0,
         "Baselines a scoring worker keeps in memory (about 4 KB each); the "
         "least recently used are evicted and reloaded from Redis on their "
         "next event."},
};
const size_t mg_worker_conf_prop_cnt =
        sizeof(mg_worker_conf_props) / sizeof(*mg_worker_conf_props);

struct scorer_entry {
        struct mg_store_rec *rec;        /* identity, baseline, offsets */
        uint64_t hash;                   /* FNV-1a of the identity */
        struct scorer_entry *hnext;      /* hash chain */
        struct scorer_entry *lprev, *lnext; /* LRU list, head = newest */
        int dirty;                       /* changed in this batch */
        struct mg_risk risk;             /* risk after its last event */
        int risk_changed;                /* risk moved since the last flush */
};

struct mg_scorer {
        const struct mg_scoring_conf *conf; /* not owned */
        const struct mg_worker_conf *wconf; /* not owned */
        struct mg_store store;              /* owned */
        struct scorer_entry **buckets;      /* hash table */
        size_t nbuckets;                    /* power of two */
        size_t cnt;                         /* entries */
        struct scorer_entry *lru_head, *lru_tail;
        struct mg_store_rec **recs;         /* scratch: records of a call */
        struct scorer_entry **ev_ents;      /* scratch: each event's entry */
        int *conflicts;                     /* scratch: save results */
        size_t scratch_cap;
        struct scorer_entry **dirty;        /* changed since the last flush */
        size_t ndirty, dirty_cap;
        struct mg_scorer_stats stats;
};

static uint64_t mono_us(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void lru_unlink(struct mg_scorer *sc, struct scorer_entry *e) {
        if (e->lprev)
                e->lprev->lnext = e->lnext;
        else
                sc->lru_head = e->lnext;
        if (e->lnext)
                e->lnext->lprev = e->lprev;
        else
                sc->lru_tail = e->lprev;
        e->lprev = e->lnext = NULL;
}

static void lru_push(struct mg_scorer *sc, struct scorer_entry *e) {
        e->lprev = NULL;
        e->lnext = sc->lru_head;
        if (sc->lru_head)
                sc->lru_head->lprev = e;
        sc->lru_head = e;
        if (!sc->lru_tail)
                sc->lru_tail = e;
}

static struct scorer_entry *cache_find(struct mg_scorer *sc,
                                       const char *identity, uint64_t h) {
        struct scorer_entry *e = sc->buckets[h & (sc->nbuckets - 1)];

        for (; e; e = e->hnext)
                if (e->hash == h && !strcmp(e->rec->identity, identity))
                        return e;
        return NULL;
}

static void cache_remove(struct mg_scorer *sc, struct scorer_entry *e) {
        struct scorer_entry **pp = &sc->buckets[e->hash & (sc->nbuckets - 1)];

        while (*pp != e)
                pp = &(*pp)->hnext;
        *pp = e->hnext;
        lru_unlink(sc, e);
        mg_store_rec_destroy(e->rec);
        free(e);
        sc->cnt--;
}

static int cache_grow(struct mg_scorer *sc) {
        size_t n = sc->nbuckets * 2, i;
        struct scorer_entry **b = calloc(n, sizeof(*b));

        if (!b)
                return -1;
        for (i = 0; i < sc->nbuckets; i++) {
                struct scorer_entry *e = sc->buckets[i], *next;

                for (; e; e = next) {
                        next = e->hnext;
                        e->hnext = b[e->hash & (n - 1)];
                        b[e->hash & (n - 1)] = e;
                }
        }
        free(sc->buckets);
        sc->buckets = b;
        sc->nbuckets = n;
        return 0;
}

static struct scorer_entry *cache_add(struct mg_scorer *sc,
                                      const char *identity, uint64_t h) {
        struct scorer_entry *e;

        if (sc->cnt + 1 > sc->nbuckets - sc->nbuckets / 4 &&
            cache_grow(sc) != 0)
                return NULL;
        e = calloc(1, sizeof(*e));
        if (!e || !(e->rec = mg_store_rec_new(identity))) {
                free(e);
                return NULL;
        }
        e->hash = h;
        e->hnext = sc->buckets[h & (sc->nbuckets - 1)];
        sc->buckets[h & (sc->nbuckets - 1)] = e;
        lru_push(sc, e);
        sc->cnt++;
        return e;
}

/* Evict least recently used entries beyond the bound (never dirty ones:
 * eviction runs between batches). */
static void cache_trim(struct mg_scorer *sc) {
        while (sc->cnt > (size_t)sc->wconf->cache_identities && sc->lru_tail)
                cache_remove(sc, sc->lru_tail);
}

void mg_scorer_cache_clear(struct mg_scorer *sc) {
        while (sc->lru_head)
                cache_remove(sc, sc->lru_head);
        sc->ndirty = 0;
}

static int scratch_reserve(struct mg_scorer *sc, size_t n) {
        void *a, *b, *c;

        if (n <= sc->scratch_cap)
                return 0;
        a = realloc(sc->recs, n * sizeof(*sc->recs));
        if (a)
                sc->recs = a;
        b = realloc(sc->ev_ents, n * sizeof(*sc->ev_ents));
        if (b)
                sc->ev_ents = b;
        c = realloc(sc->conflicts, n * sizeof(*sc->conflicts));
        if (c)
                sc->conflicts = c;
        if (!a || !b || !c)
                return -1;
        sc->scratch_cap = n;
        return 0;
}

static int dirty_push(struct mg_scorer *sc, struct scorer_entry *e) {
        if (sc->ndirty == sc->dirty_cap) {
                size_t cap = sc->dirty_cap ? sc->dirty_cap * 2 : 1024;
                void *p = realloc(sc->dirty, cap * sizeof(*sc->dirty));

                if (!p)
                        return -1;
                sc->dirty = p;
                sc->dirty_cap = cap;
        }
        e->dirty = 1;
        sc->dirty[sc->ndirty++] = e;
        return 0;
}

mg_err_t mg_scorer_new(const struct mg_scoring_conf *conf,
                       const struct mg_worker_conf *wconf,
                       struct mg_store *store, struct mg_scorer **scp,
                       char *errstr, size_t errstr_size) {
        struct mg_scorer *sc = calloc(1, sizeof(*sc));

        *scp = NULL;
        if (!sc) {
                mg_store_destroy(store);
                return mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                  "out of memory");
        }
        sc->conf = conf;
        sc->wconf = wconf;
        sc->store = *store;
        store->ops = NULL;
        sc->nbuckets = 1024;
        sc->buckets = calloc(sc->nbuckets, sizeof(*sc->buckets));
        if (!sc->buckets) {
                mg_scorer_destroy(sc);
                return mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                  "out of memory");
        }
        *scp = sc;
        return MG_OK;
}

void mg_scorer_destroy(struct mg_scorer *sc) {
        if (!sc)
                return;
        if (sc->buckets)
                mg_scorer_cache_clear(sc);
        free(sc->buckets);
        free(sc->recs);
        free(sc->ev_ents);
        free(sc->conflicts);
        free(sc->dirty);
        mg_store_destroy(&sc->store);
        free(sc);
}

void mg_scorer_set_conf(struct mg_scorer *sc,
                        const struct mg_scoring_conf *conf) {
        sc->conf = conf;
}

void mg_scorer_stats_get(const struct mg_scorer *sc,
                         struct mg_scorer_stats *st) {
        *st = sc->stats;
}

/* Drop every entry changed since the last flush: the store holds the
 * truth, and the events are redelivered. */
static void scorer_forget_dirty(struct mg_scorer *sc) {
        size_t i;

        for (i = 0; i < sc->ndirty; i++)
                cache_remove(sc, sc->dirty[i]);
        sc->ndirty = 0;
}

/* Remove the first n entries of sc->recs, created but not loaded: they
 * must not be used with empty state later. */
static void scorer_unload(struct mg_scorer *sc, size_t n) {
        size_t i;

        for (i = 0; i < n; i++) {
                const char *id = sc->recs[i]->identity;

                cache_remove(sc, cache_find(sc, id, mg_hash_str(id)));
        }
}

const struct mg_baseline *mg_scorer_baseline(struct mg_scorer *sc,
                                             const char *identity) {
        struct scorer_entry *e = cache_find(sc, identity, mg_hash_str(identity));

        return e ? e->rec->bl : NULL;
}

mg_err_t mg_scorer_apply(struct mg_scorer *sc, const struct mg_event *const *evs,
                         size_t cnt, mg_err_t *verdicts,
                         struct mg_apply_result *results, char *errstr,
                         size_t errstr_size) {
        size_t i, nload = 0;
        uint64_t t0 = mono_us(), t1;
        mg_err_t err = MG_OK;

        if (scratch_reserve(sc, cnt))
                return mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                  "out of memory");

        /* 1. Find or create every identity's entry; load the new ones. */
        for (i = 0; i < cnt; i++) {
                const char *id = evs[i]->identity;
                uint64_t h = mg_hash_str(id);
                struct scorer_entry *e = cache_find(sc, id, h);

                if (!e) {
                        if (!(e = cache_add(sc, id, h))) {
                                scorer_unload(sc, nload);
                                return mg_err_set(MG_ERR_NOMEM, errstr,
                                                  errstr_size,
                                                  "out of memory");
                        }
                        sc->recs[nload++] = e->rec;
                }
                lru_unlink(sc, e);
                lru_push(sc, e);
                sc->ev_ents[i] = e; /* steps 1 and 2 see the same entries */
        }
        if (nload > 0) {
                err = sc->store.ops->load_cb(sc->store.st, sc->recs, nload,
                                             errstr, errstr_size);
                if (err) {
                        scorer_unload(sc, nload);
                        return err;
                }
                sc->stats.loads += nload;
        }
        t1 = mono_us();
        sc->stats.load_us += t1 - t0;

        /* 2. Apply in order; skip what the baseline has already applied. */
        for (i = 0; i < cnt; i++) {
                const struct mg_event *ev = evs[i];
                struct scorer_entry *e = sc->ev_ents[i];
                struct mg_store_origin *o = NULL;
                struct mg_apply_result scratch;
                struct mg_apply_result *res = results ? &results[i] : &scratch;
                mg_err_t aerr;

                verdicts[i] = MG_OK;
                res->applied = 0;
                if (ev->origin.topic) {
                        o = mg_store_rec_origin(e->rec, ev->origin.topic,
                                                ev->origin.partition);
                        if (!o) {
                                err = mg_err_set(
                                        MG_ERR_FATAL, errstr, errstr_size,
                                        "identity %s has events from more "
                                        "than %d partitions",
                                        ev->identity, MG_STORE_ORIGINS_MAX);
                                goto fail;
                        }
                        if (ev->origin.offset <= o->offset) {
                                sc->stats.replayed++;
                                continue;
                        }
                        o->offset = ev->origin.offset;
                }
                if (!e->dirty && dirty_push(sc, e)) {
                        err = mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                         "out of memory");
                        goto fail;
                }
                aerr = mg_baseline_apply(e->rec->bl, sc->conf, ev, res);
                if (aerr == MG_ERR_LATE) {
                        verdicts[i] = MG_ERR_LATE;
                        sc->stats.late++;
                        continue;
                }
                if (aerr) {
                        err = mg_err_set(aerr, errstr, errstr_size,
                                         "scoring event %s of %s: %s",
                                         ev->event_id, ev->identity,
                                         mg_err_str(aerr));
                        goto fail;
                }
                /* The baseline remembers what it last published, so a
                 * reloaded identity does not publish the same risk twice.
                 * What is published is the risk of the last event that
                 * changed it, whatever the flush boundaries: the same
                 * events publish the same records (replay relies on it). */
                if (res->risk_changed) {
                        e->risk = res->risk;
                        e->risk_changed = 1;
                }
                sc->stats.applied++;
        }
        sc->stats.apply_us += mono_us() - t1;
        sc->stats.batches++;
        return MG_OK;

fail:
        scorer_forget_dirty(sc);
        return err;
}

mg_err_t mg_scorer_flush(struct mg_scorer *sc, char *errstr,
                         size_t errstr_size) {
        int64_t now_ms = mg_time_now_ms();
        uint64_t t0 = mono_us();
        mg_err_t err = MG_OK;
        size_t i;

        if (sc->ndirty == 0)
                return MG_OK;
        if (scratch_reserve(sc, sc->ndirty)) {
                err = mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                 "out of memory");
                goto fail;
        }
        /* Every changed identity, with its risk record when it moved. */
        for (i = 0; i < sc->ndirty; i++) {
                struct scorer_entry *e = sc->dirty[i];

                free(e->rec->risk_json);
                e->rec->risk_json = NULL;
                if (e->risk_changed) {
                        e->rec->risk_json = mg_store_risk_json(
                                e->rec->identity, &e->risk, now_ms);
                        if (!e->rec->risk_json) {
                                err = mg_err_set(MG_ERR_NOMEM, errstr,
                                                 errstr_size,
                                                 "out of memory");
                                goto fail;
                        }
                }
                sc->recs[i] = e->rec;
        }
        err = sc->store.ops->save_cb(sc->store.st, sc->recs, sc->ndirty,
                                     sc->conflicts, errstr, errstr_size);
        sc->stats.save_us += mono_us() - t0;
        if (err)
                goto fail;
        for (i = 0; i < sc->ndirty; i++) {
                struct scorer_entry *e = sc->dirty[i];

                if (sc->conflicts[i]) {
                        err = mg_err_set(MG_ERR_RETRY, errstr, errstr_size,
                                         "baseline of %s was changed by "
                                         "another worker; reloading",
                                         e->rec->identity);
                        sc->stats.conflicts++;
                        continue;
                }
                sc->stats.saves++;
                if (e->rec->risk_json)
                        sc->stats.published++;
        }
        if (err)
                goto fail;
        for (i = 0; i < sc->ndirty; i++) {
                sc->dirty[i]->dirty = 0;
                sc->dirty[i]->risk_changed = 0;
        }
        sc->ndirty = 0;
        sc->stats.flushes++;
        cache_trim(sc);
        return MG_OK;

fail:
        scorer_forget_dirty(sc);
        return err;
}
