/*
 * fuzz_labels.c — libFuzzer target for the attack-labels reader of
 * `mintgate replay --labels` (analysis/mg_backtest.h), which reads files
 * an analyst or a simulator wrote.
 *
 * Besides "never crash, never leak", it checks that a refused file says
 * why, naming the file, and that an accepted one gives a backtest that
 * can finish with no events (every label then an undetected attack).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_backtest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const struct mg_backtest_result *res;
        struct mg_backtest *bt;
        char errstr[1024];
        FILE *fp;
        mg_err_t err;
        size_t i;

        if (size == 0)
                return 0;
        fp = fmemopen((void *)data, size, "r");
        if (!fp)
                return 0;
        errstr[0] = '\0';
        err = mg_backtest_new_stream(fp, "labels", &bt, errstr,
                                     sizeof(errstr));
        fclose(fp);
        if (err) {
                if (bt || strncmp(errstr, "labels", 6))
                        abort();
                return 0;
        }
        if (mg_backtest_finish(bt, &res, errstr, sizeof(errstr)))
                abort();
        for (i = 1; i < res->row_cnt; i++)
                if (res->rows[i].detected != 0 ||
                    res->rows[i].attacks > res->rows[0].attacks)
                        abort();
        mg_backtest_destroy(bt);
        return 0;
}
