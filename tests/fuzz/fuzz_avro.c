/*
 * fuzz_avro.c — libFuzzer target for the Avro decoder: framing detection,
 * schema lookup, the scanner and Avro C's reader on arbitrary bytes.
 *
 * The registry and decoder are created once and reused across inputs, as
 * the ingest consumer reuses them across messages, so state leaking from one
 * message into the next (cached Avro C values, the event arena) is exercised
 * too. Every input must either decode to an event that re-encodes, or fail
 * with one of the documented error codes and a message; anything else aborts.
 * The seed corpus (tests/fuzz/corpus/fuzz_avro) holds valid messages of each
 * event type in both framings, written by tests/fuzz/gen_avro_corpus.c.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_avro.h"

static struct mg_avro_registry *fz_reg;
static struct mg_avro_decoder *fz_dec;
static struct mg_avro_encoder *fz_enc;
static struct mg_event fz_ev, fz_ev2;
static uint8_t fz_out[MG_AVRO_MSG_MAX];

/* Avro C puts a 4-byte reference count in front of every value instance
 * and hands out the address after it, so every pointer stored inside a
 * generic value (string buffers, array storage) sits at an address that is
 * 4 modulo 8. LeakSanitizer only scans aligned words by default, so the
 * values this target keeps across inputs (as the consumer does) looked
 * leaked. Scanning unaligned words too finds the references. */
const char *__lsan_default_options(void);
const char *__lsan_default_options(void) {
        return "use_unaligned=1";
}

static void fz_init(void) {
        char errstr[512];

        if (mg_avro_registry_new(&fz_reg, errstr, sizeof(errstr)) ||
            mg_avro_decoder_new(fz_reg, &fz_dec, errstr, sizeof(errstr)) ||
            mg_avro_encoder_new(fz_reg, MG_AVRO_SINGLE_OBJECT, &fz_enc, errstr,
                                sizeof(errstr))) {
                fprintf(stderr, "fuzz_avro: setup failed: %s\n", errstr);
                abort();
        }
}

/* Abort unless a and b are the same event (compared in their JSON form,
 * which covers every field). */
static void fz_compare(const struct mg_event *a, const struct mg_event *b) {
        char *ja = mg_event_to_json(a), *jb = mg_event_to_json(b);

        if (!ja || !jb || strcmp(ja, jb)) {
                fprintf(stderr, "round trip changed the event:\n%s\n%s\n",
                        ja ? ja : "(null)", jb ? jb : "(null)");
                abort();
        }
        free(ja);
        free(jb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char errstr[512];
        size_t len;
        mg_err_t err;

        if (!fz_reg)
                fz_init();
        errstr[0] = '\0';
        err = mg_avro_decode(fz_dec, data, size, &fz_ev, errstr,
                             sizeof(errstr));
        switch (err) {
        case MG_OK:
                /* Validation must cope with whatever decoded. */
                (void)mg_event_validate(&fz_ev, mg_time_now_ms(), errstr,
                                        sizeof(errstr));
                /* A decoded event encodes under its current schema and
                 * decodes back to the same event. */
                err = mg_avro_encode(fz_enc, &fz_ev, NULL, fz_out,
                                     sizeof(fz_out), &len, errstr,
                                     sizeof(errstr));
                if (err) {
                        fprintf(stderr, "re-encode failed: %s: %s\n",
                                mg_err_name(err), errstr);
                        abort();
                }
                err = mg_avro_decode(fz_dec, fz_out, len, &fz_ev2, errstr,
                                     sizeof(errstr));
                if (err) {
                        fprintf(stderr, "re-decode failed: %s: %s\n",
                                mg_err_name(err), errstr);
                        abort();
                }
                fz_compare(&fz_ev, &fz_ev2);
                break;
        case MG_ERR_TOOBIG:
        case MG_ERR_BAD_MAGIC:
        case MG_ERR_UNKNOWN_SCHEMA:
        case MG_ERR_TRUNCATED:
        case MG_ERR_DECODE:
        case MG_ERR_BAD_ENUM:
        case MG_ERR_INVALID:
                if (!errstr[0]) {
                        fprintf(stderr, "%s without a message\n",
                                mg_err_name(err));
                        abort();
                }
                break;
        default:
                fprintf(stderr, "unexpected error %s: %s\n", mg_err_name(err),
                        errstr);
                abort();
        }
        return 0;
}
