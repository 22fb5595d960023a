/*
 * bench_common.h — what the benchmarks share: clocks and medians, a
 * realistic synthetic event mix, filling the embedded broker, the bare
 * librdkafka consumer every throughput figure is compared with, and a
 * redis-server started on a free loopback port.
 */
#ifndef MG_BENCH_COMMON_H
#define MG_BENCH_COMMON_H

#include <stdint.h>
#include <sys/types.h>

#include "mg_event.h"

/* Monotonic seconds. */
double bench_now(void);
/* Median of n values (sorts v). */
double bench_median(double *v, int n);
/* Print "bench: what: errstr" and exit 1. */
void bench_die(const char *what, const char *errstr)
        __attribute__((noreturn));

/* Event i of a deterministic mix: 45% auth, 50% usage, 5% signals, over
 * n_ids identities, event times spread over the hour before now_ms. */
void bench_make_event(struct mg_event *ev, uint64_t i, int64_t now_ms,
                      unsigned n_ids);
/* Produce events 0..n-1 of that mix to mg.auth / mg.usage / mg.signals,
 * single-object encoded, and wait for every delivery. */
void bench_fill(const char *bootstrap, uint64_t n, unsigned n_ids);

/* A producer of mintgate events (single-object Avro, to mg.auth /
 * mg.usage / mg.signals by type, keyed by identity). */
struct bench_producer;
struct bench_producer *bench_producer_new(const char *bootstrap,
                                          const char *linger_ms);
void bench_produce(struct bench_producer *bp, const struct mg_event *ev);
/* Flush (every delivery acknowledged) and free. */
void bench_producer_destroy(struct bench_producer *bp);

/* A bare librdkafka consumer group reading n messages of the three input
 * topics and doing nothing with them: messages/s from the assignment of
 * its partitions to its nth message. */
double bench_bare_consumer(const char *bootstrap, const char *group,
                           uint64_t n);

/* A redis-server child on a free loopback port, in a temporary dir. */
struct bench_redis {
        pid_t pid;      /* child */
        int port;       /* its port */
        char dir[64];   /* its working directory */
        char addr[32];  /* "127.0.0.1:port" */
};

void bench_redis_start(struct bench_redis *rd);
void bench_redis_stop(struct bench_redis *rd);

#endif /* MG_BENCH_COMMON_H */
