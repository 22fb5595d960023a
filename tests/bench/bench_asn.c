/*
 * bench_asn.c — loading and looking up a full-size prefix -> AS table
 * (scoring/mg_asn.c, scoring.asn_file).
 *
 * Writes a synthetic table shaped like a CAIDA pfx2as snapshot to a
 * temporary file: N IPv4 prefixes (by default 1,000,000: /24s mostly, with
 * /8../23 covering prefixes and more-specifics nested under them, the
 * pfx2as tab-separated format) and N/4 IPv6 prefixes (/32../48, CIDR
 * format). Then R rounds of mg_asn_load_file() (time each), the table's
 * size, the process's peak RSS growth during a load, and lookups per second
 * over random addresses (one thread, what new_source pays per event).
 *
 * Usage: bench_asn [N IPv4 prefixes, default 1000000] [R rounds, default 3]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "mg_asn.h"

static uint64_t rng = 1;

static uint64_t rnd(void) {
        uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);

        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

static double now_s(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long maxrss_kb(void) {
        struct rusage ru;

        getrusage(RUSAGE_SELF, &ru);
        return ru.ru_maxrss;
}

/* The synthetic table; returns the number of lines written. */
static long write_table(FILE *fp, long n4) {
        long i, lines = 0;
        uint32_t a, asn;
        int len;

        for (i = 0; i < n4; i++) {
                /* One in eight a covering prefix, the rest /24s (of which
                 * some fall inside a covering prefix: nesting). */
                if (i % 8 == 0) {
                        len = 8 + (int)(rnd() % 16);
                } else {
                        len = 24;
                }
                a = (uint32_t)rnd() & ~0u << (32 - len);
                /* A function of the prefix: a repeat keeps its AS. */
                asn = 1 + (uint32_t)(((uint64_t)a * 2654435761u + len) %
                                     70000);
                fprintf(fp, "%u.%u.%u.%u\t%d\t%u%s\n", a >> 24,
                        (a >> 16) & 0xff, (a >> 8) & 0xff, a & 0xff, len, asn,
                        i % 50 == 0 ? "_4826" : "");
                lines++;
        }
        for (i = 0; i < n4 / 4; i++) {
                unsigned g1 = (unsigned)(rnd() % 0x1000), g2, g3;

                len = 32 + (int)(rnd() % 17);
                g2 = (unsigned)rnd() & 0xffff;
                g3 = (unsigned)rnd() & (0xffffu << (48 - len)) & 0xffff;
                fprintf(fp, "2%03x:%x:%x::/%d %u\n", g1, g2, g3, len,
                        1 + (g1 * 65536 + g2 * 7 + g3 + (unsigned)len) %
                                    70000);
                lines++;
        }
        return lines;
}

int main(int argc, char **argv) {
        long n4 = argc > 1 ? atol(argv[1]) : 1000000;
        int rounds = argc > 2 ? atoi(argv[2]) : 3, r;
        char path[] = "/tmp/mg-bench-asn-XXXXXX", err[512];
        struct mg_asn *asn = NULL;
        struct mg_asn_stats st;
        long lines, rss0, rss1;
        double t0, t1, best = 1e9;
        unsigned char addr[16];
        uint64_t hits = 0, k, n_look = 10000000;
        FILE *fp;
        int fd;

        if (n4 <= 0 || rounds <= 0) {
                fprintf(stderr, "usage: bench_asn [N] [R]\n");
                return 2;
        }
        if ((fd = mkstemp(path)) < 0 || !(fp = fdopen(fd, "w"))) {
                perror(path);
                return 1;
        }
        lines = write_table(fp, n4);
        fclose(fp);
        printf("table: %ld lines (%ld IPv4, %ld IPv6) in %s\n", lines, n4,
               n4 / 4, path);
        for (r = 0; r < rounds; r++) {
                rss0 = maxrss_kb();
                t0 = now_s();
                if (mg_asn_load_file(path, &asn, err, sizeof(err))) {
                        fprintf(stderr, "load: %s\n", err);
                        unlink(path);
                        return 1;
                }
                t1 = now_s();
                rss1 = maxrss_kb();
                if (t1 - t0 < best)
                        best = t1 - t0;
                printf("round %d: load %.0f ms (peak RSS +%ld MB)\n", r + 1,
                       (t1 - t0) * 1000, (rss1 - rss0) / 1024);
                if (r + 1 < rounds)
                        mg_asn_destroy(asn);
        }
        mg_asn_stats_get(asn, &st);
        printf("loaded: %zu IPv4 + %zu IPv6 prefixes -> %zu + %zu ranges, "
               "%.1f MB\n",
               st.prefixes4, st.prefixes6, st.ranges4, st.ranges6,
               (double)st.bytes / 1e6);
        t0 = now_s();
        for (k = 0; k < n_look; k++) {
                uint64_t v = rnd();

                memcpy(addr, &v, 8);
                if (k & 1) {
                        v = rnd();
                        memcpy(addr + 8, &v, 8);
                        addr[0] = 0x20;
                        hits += mg_asn_lookup(asn, 6, addr) != 0;
                } else {
                        hits += mg_asn_lookup(asn, 4, addr) != 0;
                }
        }
        t1 = now_s();
        printf("lookups: %.1f M/s (%.0f ns each, %.0f%% covered)\n",
               (double)n_look / (t1 - t0) / 1e6, (t1 - t0) / n_look * 1e9,
               100.0 * (double)hits / (double)n_look);
        printf("best load: %.0f ms\n", best * 1000);
        mg_asn_destroy(asn);
        unlink(path);
        return 0;
}
