/*
 * mg_store_mem.c — the in-memory implementation of struct mg_store_ops, for
 * offline replay and tests: the same contract as the Redis store (records
 * with generations, compare-and-set saves, offsets saved with the state
 * they produced), held in one process.
 *
 * Baselines are kept as the encoded blobs the Redis store would hold
 * (mg_baseline_encode), not as live structs: a blob is about a third of a
 * struct, and every save and load goes through the same serialization as
 * production, so a replay also exercises it. Risk records are kept as the
 * JSON a Redis store would publish.
 *
 * Layout: an open-addressing hash table on the identity (FNV-1a, linear
 * probing, grown at 3/4 load); no deletions, so no tombstones.
 */
#include "mg_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_hash.h"

struct mem_rec {
        char *identity;                  /* key, owned */
        uint64_t hash;                   /* FNV-1a of identity */
        unsigned char *blob;             /* encoded baseline, owned */
        size_t blob_len;
        uint64_t gen;                    /* generation, >= 1 once saved */
        struct mg_store_origin origins[MG_STORE_ORIGINS_MAX];
        int origin_cnt;
        char *risk_json;                 /* latest risk record, or NULL */
};

struct mem_store {
        struct mem_rec **slots;          /* hash table, NULL = empty */
        size_t nslots;                   /* power of two */
        size_t cnt;                      /* records */
        unsigned char blob[MG_BASELINE_BLOB_MAX]; /* scratch for encoding */
};

/* The slot holding identity, or the empty slot where it would go. */
static struct mem_rec **mem_slot(struct mem_store *ms, const char *identity,
                                 uint64_t h) {
        size_t i = h & (ms->nslots - 1);

        while (ms->slots[i] && (ms->slots[i]->hash != h ||
                                strcmp(ms->slots[i]->identity, identity)))
                i = (i + 1) & (ms->nslots - 1);
        return &ms->slots[i];
}

static int mem_grow(struct mem_store *ms) {
        struct mem_rec **old = ms->slots;
        size_t n = ms->nslots, i;

        ms->slots = calloc(n * 2, sizeof(*ms->slots));
        if (!ms->slots) {
                ms->slots = old;
                return -1;
        }
        ms->nslots = n * 2;
        for (i = 0; i < n; i++)
                if (old[i])
                        *mem_slot(ms, old[i]->identity, old[i]->hash) = old[i];
        free(old);
        return 0;
}

static mg_err_t mem_load_cb(void *st, struct mg_store_rec **recs, size_t cnt,
                            char *errstr, size_t errstr_size) {
        struct mem_store *ms = st;
        size_t i;

        for (i = 0; i < cnt; i++) {
                struct mg_store_rec *rec = recs[i];
                const struct mem_rec *mr =
                        *mem_slot(ms, rec->identity, mg_hash_str(rec->identity));
                char derr[256];

                mg_baseline_init(rec->bl);
                rec->gen = 0;
                rec->origin_cnt = 0;
                if (!mr)
                        continue;
                if (mg_baseline_decode(rec->bl, mr->blob, mr->blob_len, derr,
                                       sizeof(derr)))
                        return mg_err_set(MG_ERR_DECODE, errstr, errstr_size,
                                          "baseline of %s: %s", rec->identity,
                                          derr);
                rec->gen = mr->gen;
                memcpy(rec->origins, mr->origins, sizeof(rec->origins));
                rec->origin_cnt = mr->origin_cnt;
        }
        return MG_OK;
}

/* Save one record whose generation matched; rec->gen is updated. */
static mg_err_t mem_save_one(struct mem_store *ms, struct mem_rec **slot,
                             struct mg_store_rec *rec, uint64_t h) {
        struct mem_rec *mr = *slot;
        unsigned char *blob;
        size_t len;

        if (mg_baseline_encode(rec->bl, ms->blob, sizeof(ms->blob), &len))
                return MG_ERR_TOOBIG;
        if (!mr) {
                if (!(mr = calloc(1, sizeof(*mr))) ||
                    !(mr->identity = strdup(rec->identity))) {
                        free(mr);
                        return MG_ERR_NOMEM;
                }
                mr->hash = h;
                *slot = mr;
                ms->cnt++;
        }
        if (len != mr->blob_len) {
                if (!(blob = realloc(mr->blob, len)))
                        return MG_ERR_NOMEM;
                mr->blob = blob;
                mr->blob_len = len;
        }
        memcpy(mr->blob, ms->blob, len);
        if (rec->risk_json) {
                char *risk = strdup(rec->risk_json);

                if (!risk)
                        return MG_ERR_NOMEM;
                free(mr->risk_json);
                mr->risk_json = risk;
        }
        memcpy(mr->origins, rec->origins, sizeof(mr->origins));
        mr->origin_cnt = rec->origin_cnt;
        rec->gen = ++mr->gen;
        return MG_OK;
}

static mg_err_t mem_save_cb(void *st, struct mg_store_rec **recs, size_t cnt,
                            int *conflicts, char *errstr,
                            size_t errstr_size) {
        struct mem_store *ms = st;
        size_t i;

        for (i = 0; i < cnt; i++) {
                struct mg_store_rec *rec = recs[i];
                uint64_t h = mg_hash_str(rec->identity);
                struct mem_rec **slot;
                mg_err_t err;

                if (ms->cnt + 1 > ms->nslots - ms->nslots / 4 &&
                    mem_grow(ms))
                        return mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                          "out of memory");
                slot = mem_slot(ms, rec->identity, h);
                conflicts[i] = (*slot ? (*slot)->gen : 0) != rec->gen;
                if (conflicts[i])
                        continue;
                if ((err = mem_save_one(ms, slot, rec, h)))
                        return mg_err_set(err, errstr, errstr_size,
                                          "saving the baseline of %s: %s",
                                          rec->identity, mg_err_str(err));
        }
        return MG_OK;
}

static void mem_destroy_cb(void *st) {
        struct mem_store *ms = st;
        size_t i;

        for (i = 0; i < ms->nslots; i++) {
                struct mem_rec *mr = ms->slots[i];

                if (!mr)
                        continue;
                free(mr->identity);
                free(mr->blob);
                free(mr->risk_json);
                free(mr);
        }
        free(ms->slots);
        free(ms);
}

static const struct mg_store_ops mem_store_ops = {
        "memory", mem_load_cb, mem_save_cb, mem_destroy_cb};

mg_err_t mg_store_mem_new(struct mg_store *store, char *errstr,
                          size_t errstr_size) {
        struct mem_store *ms = calloc(1, sizeof(*ms));

        if (ms) {
                ms->nslots = 1024;
                ms->slots = calloc(ms->nslots, sizeof(*ms->slots));
        }
        if (!ms || !ms->slots) {
                free(ms);
                return mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                  "out of memory");
        }
        store->ops = &mem_store_ops;
        store->st = ms;
        return MG_OK;
}
