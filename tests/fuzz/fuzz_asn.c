/*
 * fuzz_asn.c — libFuzzer target for mg_asn_load_buf(), the parser of the
 * prefix -> AS file (scoring.asn_file): it reads whatever an operator
 * downloads or edits, so it must refuse anything malformed with a message
 * and never crash.
 *
 * Checks beyond memory safety, any violation abort()s:
 *   - a failed load says why: MG_ERR_CONFIG (or NOMEM), no table, and a
 *     message that starts with the name it was given;
 *   - a loaded table is sane: at least one prefix, at least one range per
 *     family, and every AS a lookup returns is 0 or written in the input
 *     (a decimal the parser read, not bytes from elsewhere), for the
 *     edges of both address spaces and for addresses taken from the
 *     input's own bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_asn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int is_digit(uint8_t c) {
        return c >= '0' && c <= '9';
}

/* Is asn 0, or its decimal somewhere in the input as a whole number
 * (leading zeros allowed)? */
static int asn_in_input(uint32_t asn, const uint8_t *data, size_t size) {
        char dec[16];
        size_t n, i, j;

        if (asn == 0)
                return 1;
        n = (size_t)snprintf(dec, sizeof(dec), "%u", asn);
        for (i = 0; i + n <= size; i++) {
                if (memcmp(data + i, dec, n) ||
                    (i + n < size && is_digit(data[i + n])))
                        continue;
                for (j = i; j > 0 && data[j - 1] == '0'; j--)
                        ;
                if (j == 0 || !is_digit(data[j - 1]))
                        return 1;
        }
        return 0;
}

static void probe(const struct mg_asn *asn, int family,
                  const unsigned char *addr, const uint8_t *data,
                  size_t size) {
        if (!asn_in_input(mg_asn_lookup(asn, family, addr), data, size))
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const unsigned char edges[][16] = {
                {0},
                {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
                {0x20, 0x01, 0x0d, 0xb8},
                {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 203, 0, 113, 7}};
        struct mg_asn *asn = (struct mg_asn *)&asn;
        struct mg_asn_stats st;
        unsigned char addr[16];
        char errstr[512];
        size_t i;
        mg_err_t err;

        errstr[0] = '\0';
        err = mg_asn_load_buf("fuzz", (const char *)data, size, &asn, errstr,
                              sizeof(errstr));
        if (err) {
                if ((err != MG_ERR_CONFIG && err != MG_ERR_NOMEM) || asn ||
                    strncmp(errstr, "fuzz", 4))
                        abort();
                return 0;
        }
        if (!asn)
                abort();
        mg_asn_stats_get(asn, &st);
        if (st.prefixes4 + st.prefixes6 == 0 || st.ranges4 == 0 ||
            st.ranges6 == 0 || st.ranges4 > 2 * st.prefixes4 + 1 ||
            st.ranges6 > 2 * st.prefixes6 + 1)
                abort();
        for (i = 0; i < sizeof(edges) / sizeof(*edges); i++) {
                probe(asn, 4, edges[i], data, size);
                probe(asn, 6, edges[i], data, size);
        }
        for (i = 0; i + 16 <= size && i < 64 * 16; i += 16) {
                memcpy(addr, data + i, 16);
                probe(asn, 4, addr, data, size);
                probe(asn, 6, addr, data, size);
        }
        mg_asn_destroy(asn);
        return 0;
}
