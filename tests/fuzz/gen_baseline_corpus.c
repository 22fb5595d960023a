/*
 * gen_baseline_corpus.c — writes the version 3 seeds of fuzz_baseline:
 * blob bodies (a blob without its 4-byte checksum, which the fuzzer
 * appends) of baselines built by applying events through the public API,
 * so each seed is exactly what the encoder writes for a known history:
 *
 *   v3_peaks       shared_identity highs of the first day (6 networks, 5
 *                  clients, 3 user agents) above what is active at the
 *                  newest event two days later, which fires new_source
 *                  near a known network; source ASes
 *   v3_peaks_full  highs at the table sizes (16 networks, 8 clients, 8
 *                  user agents within a day), the largest decode accepts
 *   v3_pause       a rate weight below 1, decayed by a two-day pause
 *                  (decode refused such weights before 2ba4465)
 *
 * Usage: gen_baseline_corpus DIR. The files are checked in under
 * tests/fuzz/corpus/fuzz_baseline (the v1 and v2 seeds there came from
 * the encoders of those versions); run this again when the blob layout
 * changes. Scoring runs with the defaults and fuzz_baseline's prefix -> AS
 * table; events come from the JSON-lines form, one second apart at most
 * where the time does not matter.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_baseline.h"

/* Monday 2026-11-16T00:00:00Z: the seeds' first day. */
#define GEN_T0     1794787200000LL
#define GEN_MIN_MS 60000LL
#define GEN_DAY_MS 86400000LL

/* What a scenario builds on. */
struct gen {
        struct mg_scoring_conf conf; /* scoring configuration */
        struct mg_baseline *bl;      /* the baseline being built */
        struct mg_event ev;          /* the event being applied */
        char errstr[512];            /* what went wrong */
};

/* Parse one JSON-lines event and apply it to g->bl. */
static mg_err_t gen_apply(struct gen *g, const char *line) {
        struct mg_apply_result res;
        mg_err_t err;

        err = mg_event_from_json(&g->ev, line, strlen(line),
                                 GEN_T0 + 365 * GEN_DAY_MS, g->errstr,
                                 sizeof(g->errstr));
        if (err)
                goto out;
        err = mg_baseline_apply(g->bl, &g->conf, &g->ev, &res);
        if (err)
                snprintf(g->errstr, sizeof(g->errstr), "apply %s: %s", line,
                         mg_err_str(err));
out:
        return err;
}

/* A successful client_credentials grant at ts. */
static mg_err_t gen_auth(struct gen *g, int64_t ts, const char *client,
                         const char *ip, const char *ua) {
        char line[512];

        snprintf(line, sizeof(line),
                 "{\"type\":\"auth\",\"event_id\":\"a\",\"ts\":%" PRId64 ","
                 "\"identity\":\"spiffe://corp/ci/deployer\","
                 "\"client_id\":\"%s\",\"source_ip\":\"%s\","
                 "\"user_agent\":\"%s\",\"auth_method\":\"jwt_svid\","
                 "\"grant_type\":\"client_credentials\","
                 "\"audience\":\"api://deploy\","
                 "\"scopes\":[\"deploy:write\"],\"outcome\":\"success\"}",
                 ts, client, ip, ua);
        return gen_apply(g, line);
}

/* A use of api://deploy at ts. */
static mg_err_t gen_use(struct gen *g, int64_t ts, const char *ip) {
        char line[512];

        snprintf(line, sizeof(line),
                 "{\"type\":\"usage\",\"event_id\":\"u\",\"ts\":%" PRId64 ","
                 "\"identity\":\"spiffe://corp/ci/deployer\","
                 "\"resource\":\"api://deploy\",\"action\":\"POST /releases\","
                 "\"scope\":\"deploy:write\",\"source_ip\":\"%s\","
                 "\"status\":201}",
                 ts, ip);
        return gen_apply(g, line);
}

static mg_err_t gen_peaks(struct gen *g) {
        static const char *const ips[] = {
                "198.51.100.7",   "198.51.101.7",   "203.0.113.7",
                "2001:db8:1:1::7", "2001:db8:1:2::7", "192.0.2.7"};
        static const char *const uas[] = {"runner/2.3", "runner/2.4",
                                          "curl/8"};
        char client[32];
        int64_t t = GEN_T0 + 9 * 3600000LL;
        mg_err_t err = MG_OK;
        int i;

        /* New_source's warm-up from the first network. */
        for (i = 0; i < 30 && !err; i++)
                err = gen_use(g, t + i * GEN_MIN_MS, ips[0]);
        /* Then the first day's highs: near (198.51.101.0/24), far
         * (203.0.113.0/24, 192.0.2.0/24), a new AS (2001:db8:1:1::/64),
         * near by /48 and AS (2001:db8:1:2::/64). */
        t += 30 * GEN_MIN_MS;
        for (i = 0; i < 6 && !err; i++) {
                snprintf(client, sizeof(client), "client-%d", i % 5);
                err = gen_auth(g, t + i * GEN_MIN_MS, client, ips[i],
                               uas[i % 3]);
        }
        /* Two days later one of each is active: a new network of a known
         * /16 (new_source at the nearby weight, its detail kept). */
        t += 2 * GEN_DAY_MS;
        if (!err)
                err = gen_auth(g, t, "client-0", "198.51.102.7", uas[0]);
        return err;
}

static mg_err_t gen_peaks_full(struct gen *g) {
        char client[32], ip[32], ua[32];
        mg_err_t err = MG_OK;
        int i;

        for (i = 0; i < 16 && !err; i++) {
                snprintf(client, sizeof(client), "client-%d", i % 8);
                snprintf(ip, sizeof(ip), "10.%d.0.1", i);
                snprintf(ua, sizeof(ua), "agent/%d", i % 8);
                err = gen_auth(g, GEN_T0 + i * GEN_MIN_MS, client, ip, ua);
        }
        return err;
}

static mg_err_t gen_pause(struct gen *g) {
        mg_err_t err = MG_OK;
        int i;

        /* A completed minute of 3, one event in the next, then two days
         * of nothing: the weight is (r + 1) * r^2879, about 0.5. */
        for (i = 0; i < 3 && !err; i++)
                err = gen_use(g, GEN_T0 + i * 1000, "198.51.100.7");
        if (!err)
                err = gen_use(g, GEN_T0 + GEN_MIN_MS, "198.51.100.7");
        if (!err)
                err = gen_use(g, GEN_T0 + 2 * GEN_DAY_MS + GEN_MIN_MS,
                              "198.51.100.7");
        return err;
}

/* One seed: its file and how to build it. */
struct gen_seed {
        const char *file;                /* name in DIR */
        mg_err_t (*build)(struct gen *); /* applies its events */
};

static const struct gen_seed gen_seeds[] = {
        {"v3_peaks", gen_peaks},
        {"v3_peaks_full", gen_peaks_full},
        {"v3_pause", gen_pause},
};

/* Defaults with fuzz_baseline's prefix -> AS table (*asnp, the caller
 * destroys it). */
static mg_err_t gen_conf(struct gen *g, struct mg_asn **asnp) {
        static const char asn_text[] = "198.51.0.0/16 64500\n"
                                       "2001:db8::/32 64501\n";
        struct mg_conf *mc = mg_conf_new();
        mg_err_t err;

        if (!mc) {
                snprintf(g->errstr, sizeof(g->errstr), "out of memory");
                return MG_ERR_NOMEM;
        }
        memset(&g->conf, 0, sizeof(g->conf));
        err = mg_conf_add_section(mc, "Scoring", mg_scoring_conf_props,
                                  mg_scoring_conf_prop_cnt, &g->conf,
                                  g->errstr, sizeof(g->errstr));
        mg_conf_destroy(mc);
        g->conf.asn_file = NULL; /* freed with mc */
        if (!err)
                err = mg_asn_load_buf("fuzz", asn_text, sizeof(asn_text) - 1,
                                      asnp, g->errstr, sizeof(g->errstr));
        g->conf.asn = *asnp;
        return err;
}

/* Encode g->bl, check that it decodes, write it without its checksum. */
static int gen_write(struct gen *g, const char *dir, const char *file) {
        static unsigned char blob[MG_BASELINE_BLOB_MAX];
        struct mg_baseline *copy = malloc(mg_baseline_size());
        char path[4096];
        size_t len;
        FILE *fp = NULL;
        int rc = -1;

        if (!copy) {
                fprintf(stderr, "gen_baseline_corpus: out of memory\n");
                goto out;
        }
        if (mg_baseline_encode(g->bl, blob, sizeof(blob), &len) ||
            mg_baseline_decode(copy, blob, len, g->errstr,
                               sizeof(g->errstr))) {
                fprintf(stderr, "gen_baseline_corpus: %s: %s\n", file,
                        g->errstr);
                goto out;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, file);
        fp = fopen(path, "wb");
        if (!fp || fwrite(blob, 1, len - 4, fp) != len - 4) {
                perror(path);
                goto out;
        }
        rc = 0;
out:
        if (fp && fclose(fp) != 0 && rc == 0) {
                perror(path);
                rc = -1;
        }
        free(copy);
        return rc;
}

int main(int argc, char **argv) {
        static struct gen g;
        struct mg_asn *asn = NULL;
        size_t i;
        int rc = 1;

        if (argc != 2) {
                fprintf(stderr, "usage: %s DIR\n", argv[0]);
                return 2;
        }
        g.bl = malloc(mg_baseline_size());
        if (!g.bl) {
                fprintf(stderr, "gen_baseline_corpus: out of memory\n");
                goto out;
        }
        if (gen_conf(&g, &asn))
                goto fail;
        for (i = 0; i < sizeof(gen_seeds) / sizeof(gen_seeds[0]); i++) {
                mg_baseline_init(g.bl);
                if (gen_seeds[i].build(&g))
                        goto fail;
                if (gen_write(&g, argv[1], gen_seeds[i].file))
                        goto out;
        }
        rc = 0;
        goto out;
fail:
        fprintf(stderr, "gen_baseline_corpus: %s\n", g.errstr);
out:
        mg_asn_destroy(asn);
        free(g.bl);
        return rc;
}
