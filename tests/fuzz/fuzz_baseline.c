/*
 * fuzz_baseline.c — libFuzzer target for mg_baseline_decode(), the parser
 * that faces Redis data (a corrupted, truncated or foreign value must fail
 * with a message, never crash or yield a baseline that breaks later).
 *
 * Blobs end in a CRC-32C, which random mutations almost never get right,
 * so each input is tried twice: as it is (the checksum path), and as the
 * body of a blob with its checksum appended (the parser proper). The seed
 * corpus holds such bodies: real blobs without their last 4 bytes, of
 * version 1 (before source ASes), version 2 (v2_* files, before the
 * shared_identity peaks) and version 3 (v3_* files, written by
 * gen_baseline_corpus.c: peaks above the active counts and at the table
 * sizes, a rate weight below 1 after a pause).
 *
 * Checks beyond memory safety, any violation abort()s:
 *   - a failed decode says why (MG_ERR_DECODE and a non-empty message);
 *   - what decodes re-encodes, decodes again to the identical struct and
 *     the identical bytes (the encoding is canonical for what decode
 *     accepts);
 *   - a decoded baseline is usable: risk, JSON, scope_unused and applying
 *     an event after it all work, with a risk score in 0..100. The event
 *     comes from an address with an AS, so its AS table is updated too.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mg_baseline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct mg_event ev;

/* CRC-32C written bit by bit, independently of mg_baseline.c's table. */
static uint32_t crc32c(const uint8_t *p, size_t len) {
        uint32_t crc = 0xffffffffu;
        int k;

        while (len--) {
                crc ^= *p++;
                for (k = 0; k < 8; k++)
                        crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
        }
        return ~crc;
}

/* Defaults, with a prefix -> AS table covering fuzz_event()'s address.
 * The table lives as long as the process. */
static void fuzz_conf(struct mg_scoring_conf *conf) {
        static const char asn_text[] = "198.51.0.0/16 64500\n"
                                       "2001:db8::/32 64501\n";
        static struct mg_asn *asn;
        struct mg_conf *mc = mg_conf_new();
        char err[256];

        if (!mc)
                abort();
        memset(conf, 0, sizeof(*conf));
        if (mg_conf_add_section(mc, "Scoring", mg_scoring_conf_props,
                                mg_scoring_conf_prop_cnt, conf, err,
                                sizeof(err)))
                abort();
        mg_conf_destroy(mc);
        conf->asn_file = NULL; /* freed with mc */
        if (!asn && mg_asn_load_buf("fuzz", asn_text, sizeof(asn_text) - 1,
                                    &asn, err, sizeof(err)))
                abort();
        conf->asn = asn;
}

/* A usage event at ts from a new network and resource. */
static void fuzz_event(int64_t ts) {
        char err[256];

        mg_event_reset(&ev, MG_EVENT_USAGE);
        ev.ts_ms = ts;
        if (mg_event_set_str(&ev, &ev.event_id, "event_id", "f", 1, err,
                             sizeof(err)) ||
            mg_event_set_str(&ev, &ev.identity, "identity", "i", 1, err,
                             sizeof(err)) ||
            mg_event_set_str(&ev, &ev.u.usage.resource, "resource", "api://f",
                             7, err, sizeof(err)) ||
            mg_event_set_str(&ev, &ev.u.usage.action, "action", "GET", 3, err,
                             sizeof(err)) ||
            mg_event_set_str(&ev, &ev.u.usage.source_ip, "source_ip",
                             "198.51.100.1", 12, err, sizeof(err)) ||
            mg_event_set_str(&ev, &ev.u.usage.scope, "scope", "s", 1, err,
                             sizeof(err)))
                abort();
}

/* Decode one candidate blob and check what comes out. */
static void fuzz_blob(const uint8_t *data, size_t size) {
        static struct mg_scoring_conf conf;
        static struct mg_baseline *bl, *bl2;
        static unsigned char blob[MG_BASELINE_BLOB_MAX],
                blob2[MG_BASELINE_BLOB_MAX];
        struct mg_apply_result res;
        struct mg_risk risk;
        char errstr[512], *json;
        size_t len, len2;
        int64_t now;
        mg_err_t err;

        if (!bl) {
                fuzz_conf(&conf);
                bl = malloc(mg_baseline_size());
                bl2 = malloc(mg_baseline_size());
                if (!bl || !bl2)
                        abort();
        }
        errstr[0] = '\0';
        err = mg_baseline_decode(bl, data, size, errstr, sizeof(errstr));
        if (err) {
                if (err != MG_ERR_DECODE || !errstr[0])
                        abort();
                return;
        }
        if (mg_baseline_encode(bl, blob, sizeof(blob), &len) ||
            mg_baseline_decode(bl2, blob, len, errstr, sizeof(errstr)) ||
            memcmp(bl, bl2, mg_baseline_size()) ||
            mg_baseline_encode(bl2, blob2, sizeof(blob2), &len2) ||
            len != len2 || memcmp(blob, blob2, len))
                abort();

        /* Newest time: the risk timestamp at (any) now. */
        mg_baseline_risk(bl, &conf, 0, &risk);
        now = risk.ts_ms;
        if (!(risk.score >= 0 && risk.score <= 100) || risk.reason_cnt < 0 ||
            risk.reason_cnt > MG_REASONS_MAX)
                abort();
        json = mg_baseline_to_json(bl, &conf, now);
        if (!json)
                abort();
        free(json);
        (void)mg_baseline_scope_unused(bl, &conf, "s", now);
        if (now < MG_EVENT_TS_MIN)
                now = MG_EVENT_TS_MIN;
        fuzz_event(now + 1000);
        if (mg_baseline_apply(bl, &conf, &ev, &res) || !res.applied ||
            !(res.risk.score >= 0 && res.risk.score <= 100))
                abort();
        if (mg_baseline_encode(bl, blob, sizeof(blob), &len) ||
            mg_baseline_decode(bl2, blob, len, errstr, sizeof(errstr)))
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static uint8_t buf[MG_BASELINE_BLOB_MAX + 4];
        uint32_t crc;

        fuzz_blob(data, size);
        if (size > MG_BASELINE_BLOB_MAX)
                return 0;
        memcpy(buf, data, size);
        crc = crc32c(data, size);
        buf[size] = (uint8_t)crc;
        buf[size + 1] = (uint8_t)(crc >> 8);
        buf[size + 2] = (uint8_t)(crc >> 16);
        buf[size + 3] = (uint8_t)(crc >> 24);
        fuzz_blob(buf, size + 4);
        return 0;
}
