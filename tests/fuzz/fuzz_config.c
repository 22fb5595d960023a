/*
 * fuzz_config.c — libFuzzer target for the YAML configuration loader
 * (mg_conf_load_buf()), over a small table with every property type and a
 * map, the way a module declares one.
 *
 * Checks beyond memory safety: a load that succeeds leaves every bounded
 * field within its bounds and every map pair non-NULL; a load that fails
 * says why. Printing the reference after the load exercises that path
 * too. Any violation abort()s.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_conf {
        char *name;            /* STR, length 1..32 */
        char *note;            /* STR, unbounded, no default */
        int64_t batch;         /* INT 1..100000 */
        int64_t any;           /* INT, unbounded */
        double ratio;          /* DOUBLE 0..1 */
        int flag;              /* BOOL */
        int64_t wait_ms;       /* MS 1ms..1h */
        struct mg_conf_map kafka; /* MAP kafka.* */
};

#define FC(f) offsetof(struct fuzz_conf, f)
static const struct mg_conf_prop fuzz_props[] = {
        {"ingest.name", MG_CONF_STR, FC(name), "mintgate", 1, 32, 0, "Name."},
        {"ingest.note", MG_CONF_STR, FC(note), NULL, 0, 0, 0, "Note."},
        {"ingest.batch_size", MG_CONF_INT, FC(batch), "500", 1, 100000, 1,
         "Batch."},
        {"ingest.any", MG_CONF_INT, FC(any), NULL, 0, 0, 0, "Any int."},
        {"scoring.ratio", MG_CONF_DOUBLE, FC(ratio), "0.5", 0, 1, 1,
         "Ratio."},
        {"scoring.flag", MG_CONF_BOOL, FC(flag), "true", 0, 0, 0, "Flag."},
        {"scoring.wait_ms", MG_CONF_MS, FC(wait_ms), "250ms", 1, 3600000, 1,
         "Wait."},
        {"kafka", MG_CONF_MAP, FC(kafka), NULL, 0, 0, 0, "librdkafka."},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static FILE *devnull;
        struct fuzz_conf fc;
        struct mg_conf *conf;
        char errstr[1024];
        mg_err_t err;
        size_t i, len;

        if (!devnull)
                devnull = fopen("/dev/null", "w");
        memset(&fc, 0, sizeof(fc));
        conf = mg_conf_new();
        if (!conf)
                abort();
        if (mg_conf_add_section(conf, "Fuzz", fuzz_props,
                                sizeof(fuzz_props) / sizeof(*fuzz_props), &fc,
                                errstr, sizeof(errstr)))
                abort();
        errstr[0] = '\0';
        err = mg_conf_load_buf(conf, "fuzz.yaml", (const char *)data, size,
                               errstr, sizeof(errstr));
        if (err) {
                if (err != MG_ERR_CONFIG && err != MG_ERR_NOMEM)
                        abort();
                if (!errstr[0])
                        abort();
        } else {
                len = fc.name ? strlen(fc.name) : 0;
                if (!fc.name || len < 1 || len > 32)
                        abort();
                if (fc.batch < 1 || fc.batch > 100000)
                        abort();
                if (!(fc.ratio >= 0 && fc.ratio <= 1))
                        abort();
                if (fc.wait_ms < 1 || fc.wait_ms > 3600000)
                        abort();
                if (fc.flag != 0 && fc.flag != 1)
                        abort();
                for (i = 0; i < fc.kafka.cnt; i++)
                        if (!fc.kafka.keys[i] || !fc.kafka.values[i] ||
                            !fc.kafka.keys[i][0])
                                abort();
        }
        if (devnull)
                mg_conf_print_reference(conf, devnull, (int)(size & 1));
        mg_conf_destroy(conf);
        return 0;
}
