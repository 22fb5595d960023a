/*
 * fuzz_avro.c — libFuzzer target for the Avro decoder: framing detection,
 * schema lookup, the scanner and Avro C's reader on arbitrary bytes.
 *
 * The registry and decoder are created once and reused across inputs, as
 * the ingest consumer reuses them across messages, so state leaking from one
 * message into the next (cached Avro C values, the event arena) is exercised
 * too. Every input must either decode to an event that re-encodes, or fail
 * with one of the documented error codes and a message; anything else aborts.
 *
 * Every input is decoded twice, by the fast (one-pass) decoder and by the
 * reference decoder (mg_avro_decoder_use_reference()); they must agree on
 * the error code, the message and, on success, every field of the event.
 * Besides the built-in schemas the registry holds three evolved writers
 * (Confluent ids 21-23: fields reordered, added and dropped, unions, int
 * promoted to long, enum symbols reordered or unknown), so that the fuzzer
 * also reaches schema resolution: it finds their ids by mutating the
 * Confluent seeds.
 * The seed corpus (tests/fuzz/corpus/fuzz_avro) holds valid messages of each
 * event type in both framings, written by tests/fuzz/gen_avro_corpus.c.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_avro.h"

static struct mg_avro_registry *fz_reg;
static struct mg_avro_decoder *fz_dec;  /* fast decoder */
static struct mg_avro_decoder *fz_ref;  /* reference decoder */
static struct mg_avro_encoder *fz_enc;
static struct mg_event fz_ev, fz_ev2, fz_ref_ev;
static uint8_t fz_out[MG_AVRO_MSG_MAX];

/* The evolved writers of tests/unit/test_avro.c. */
#include "../avro_evolved.h"

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
            mg_avro_registry_add(fz_reg, "auth.x", mg_test_auth_x,
                                 strlen(mg_test_auth_x), 21, errstr,
                                 sizeof(errstr)) ||
            mg_avro_registry_add(fz_reg, "usage.x", mg_test_usage_x,
                                 strlen(mg_test_usage_x), 22, errstr,
                                 sizeof(errstr)) ||
            mg_avro_registry_add(fz_reg, "signal.x", mg_test_signal_x,
                                 strlen(mg_test_signal_x), 23, errstr,
                                 sizeof(errstr)) ||
            mg_avro_decoder_new(fz_reg, &fz_dec, errstr, sizeof(errstr)) ||
            mg_avro_decoder_new(fz_reg, &fz_ref, errstr, sizeof(errstr)) ||
            mg_avro_encoder_new(fz_reg, MG_AVRO_SINGLE_OBJECT, &fz_enc, errstr,
                                sizeof(errstr))) {
                fprintf(stderr, "fuzz_avro: setup failed: %s\n", errstr);
                abort();
        }
        mg_avro_decoder_use_reference(fz_ref, 1);
}

/* 1 if the strings differ (NULL only equals NULL). */
static int fz_str_differ(const char *a, const char *b) {
        return a != b && (!a || !b || strcmp(a, b));
}

/* Abort unless the fast and reference decoders' events are the same, field
 * by field (including the arena in use). */
static void fz_same(const struct mg_event *a, const struct mg_event *b) {
        const struct mg_event_auth *x = &a->u.auth, *y = &b->u.auth;
        const struct mg_event_usage *u = &a->u.usage, *v = &b->u.usage;
        const struct mg_event_signal *s = &a->u.signal, *t = &b->u.signal;
        int i, differ;

        differ = a->type != b->type || a->ts_ms != b->ts_ms ||
                 fz_str_differ(a->event_id, b->event_id) ||
                 fz_str_differ(a->identity, b->identity) ||
                 fz_str_differ(a->origin.topic, b->origin.topic) ||
                 a->origin.partition != b->origin.partition ||
                 a->origin.offset != b->origin.offset ||
                 a->arena_used != b->arena_used;
        if (!differ && a->type == MG_EVENT_AUTH) {
                differ = x->identity_kind != y->identity_kind ||
                         fz_str_differ(x->client_id, y->client_id) ||
                         fz_str_differ(x->source_ip, y->source_ip) ||
                         fz_str_differ(x->user_agent, y->user_agent) ||
                         x->auth_method != y->auth_method ||
                         x->grant_type != y->grant_type ||
                         fz_str_differ(x->audience, y->audience) ||
                         x->scope_cnt != y->scope_cnt ||
                         x->outcome != y->outcome ||
                         fz_str_differ(x->failure_reason,
                                       y->failure_reason) ||
                         fz_str_differ(x->token_id, y->token_id) ||
                         fz_str_differ(x->parent_token_id,
                                       y->parent_token_id);
                for (i = 0; !differ && i < x->scope_cnt; i++)
                        differ = fz_str_differ(x->scopes[i], y->scopes[i]);
        } else if (!differ && a->type == MG_EVENT_USAGE) {
                differ = fz_str_differ(u->token_id, v->token_id) ||
                         fz_str_differ(u->resource, v->resource) ||
                         fz_str_differ(u->action, v->action) ||
                         fz_str_differ(u->scope, v->scope) ||
                         fz_str_differ(u->source_ip, v->source_ip) ||
                         u->status != v->status || u->bytes != v->bytes;
        } else if (!differ && a->type == MG_EVENT_SIGNAL) {
                differ = s->kind != t->kind || s->severity != t->severity ||
                         fz_str_differ(s->source, t->source) ||
                         fz_str_differ(s->detail, t->detail);
        }
        if (differ) {
                char *ja = mg_event_to_json(a), *jb = mg_event_to_json(b);

                fprintf(stderr, "fast and reference decoders differ:\n%s\n"
                        "%s\n", ja ? ja : "(null)", jb ? jb : "(null)");
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
        char errstr[512], ref_errstr[512];
        size_t len;
        mg_err_t err, ref_err;

        if (!fz_reg)
                fz_init();
        errstr[0] = ref_errstr[0] = '\0';
        err = mg_avro_decode(fz_dec, data, size, &fz_ev, errstr,
                             sizeof(errstr));
        ref_err = mg_avro_decode(fz_ref, data, size, &fz_ref_ev, ref_errstr,
                                 sizeof(ref_errstr));
        if (err != ref_err || strcmp(errstr, ref_errstr)) {
                fprintf(stderr, "fast decoder: %s \"%s\"; reference "
                        "decoder: %s \"%s\"\n", mg_err_name(err), errstr,
                        mg_err_name(ref_err), ref_errstr);
                abort();
        }
        if (!err)
                fz_same(&fz_ev, &fz_ref_ev);
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
