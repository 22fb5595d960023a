/*
 * mg_hash.h — FNV-1a (64-bit), the hash of mintgate's in-memory tables
 * keyed by an identity or a name (the scorer's cache, the stores, replay,
 * the risk cache). Short keys, one multiply per byte, no setup: fast enough
 * that the tables' probing dominates, and good enough with power-of-two
 * tables for the keys these see. Baseline blobs persist their own hashes
 * (mg_baseline.c), which only start from this one.
 */
#ifndef MG_HASH_H
#define MG_HASH_H

#include <stddef.h>
#include <stdint.h>

#define MG_HASH_FNV_OFFSET 0xcbf29ce484222325ULL
#define MG_HASH_FNV_PRIME  0x100000001b3ULL

/* FNV-1a of len bytes at p. */
static inline uint64_t mg_hash_mem(const void *p, size_t len) {
        const unsigned char *s = p;
        uint64_t h = MG_HASH_FNV_OFFSET;
        size_t i;

        for (i = 0; i < len; i++)
                h = (h ^ s[i]) * MG_HASH_FNV_PRIME;
        return h;
}

/* FNV-1a of a NUL-terminated string. */
static inline uint64_t mg_hash_str(const char *s) {
        uint64_t h = MG_HASH_FNV_OFFSET;

        while (*s)
                h = (h ^ (unsigned char)*s++) * MG_HASH_FNV_PRIME;
        return h;
}

#endif /* MG_HASH_H */
