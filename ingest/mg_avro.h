/*
 * mg_avro.h — Avro framing, schema registry, decoding and encoding of
 * mintgate events.
 *
 * Wire formats (DESIGN.md "Input events"), detected by the first byte:
 *   - single-object encoding: C3 01, 8-byte little-endian CRC-64-AVRO
 *     (Rabin) fingerprint of the writer schema's Parsing Canonical Form,
 *     then the Avro binary body;
 *   - Confluent wire format: 00, 4-byte big-endian schema id, then the body.
 * Each framing is a small ops struct in mg_avro.c (one per variant).
 *
 * The registry knows every writer schema: the built-in ones compiled from
 * the .avsc files of schemas/ (labels "auth", "auth.v1", "usage", "signal", "decision"),
 * plus any the configuration adds. The reader schema of a record is the
 * current built-in schema with the same full name.
 *
 * Schema resolution follows the Avro specification as Avro C's resolver
 * (avro_resolved_writer) implements it: fields matched by name, reordered
 * or skipped, int promoted to long, unions resolved by the writer's branch,
 * enums mapped by symbol name (an unknown symbol takes the reader enum's
 * default), and reader fields the writer lacks filled from their declared
 * defaults. Registration checks every writer with Avro C's resolver. The
 * decoder then reads each message in one pass, straight into the event,
 * through a plan prepared per writer schema at registration; the original
 * path through Avro C's resolver (the reference decoder) is kept for tests
 * and debugging, and gives the same events and errors.
 *
 * Threading: a registry is immutable once built and may be shared by
 * threads; a decoder or encoder belongs to one thread.
 */
#ifndef MG_AVRO_H
#define MG_AVRO_H

#include <stddef.h>
#include <stdint.h>

#include "mg_err.h"
#include "mg_event.h"

struct mg_avro_registry;
struct mg_avro_decoder;
struct mg_avro_encoder;

enum mg_avro_framing {
        MG_AVRO_SINGLE_OBJECT, /* C3 01 + 8-byte fingerprint */
        MG_AVRO_CONFLUENT      /* 00 + 4-byte schema id */
};

/* Largest encoded event we accept or produce: the arena plus framing and
 * varint overhead; anything bigger is MG_ERR_TOOBIG before decoding. */
#define MG_AVRO_MSG_MAX (MG_EVENT_ARENA_SIZE + 1024)

/* Create a registry holding the built-in schemas, each under its label with
 * its default Confluent id (auth.v1=1, auth=2, usage=3, signal=4,
 * decision=5). The caller owns the result: mg_avro_registry_destroy(). */
mg_err_t mg_avro_registry_new(struct mg_avro_registry **regp, char *errstr,
                              size_t errstr_size);
void mg_avro_registry_destroy(struct mg_avro_registry *reg);

/* Register a writer schema from JSON text under label, with a Confluent
 * schema id (or -1 for none). A label or id already present is replaced.
 * Fails with MG_ERR_INVALID naming the problem when the JSON is not a valid
 * Avro record schema, or when its full name has no reader schema. */
mg_err_t mg_avro_registry_add(struct mg_avro_registry *reg, const char *label,
                              const char *json, size_t len,
                              int32_t confluent_id, char *errstr,
                              size_t errstr_size);
/* Same, reading the schema from an .avsc file. */
mg_err_t mg_avro_registry_add_file(struct mg_avro_registry *reg,
                                   const char *label, const char *path,
                                   int32_t confluent_id, char *errstr,
                                   size_t errstr_size);

/* CRC-64-AVRO fingerprint of the schema's Parsing Canonical Form. */
mg_err_t mg_avro_fingerprint(const char *json, size_t len, uint64_t *fpp,
                             char *errstr, size_t errstr_size);
/* Fingerprint of a registered label (MG_ERR_NOT_FOUND if none). */
mg_err_t mg_avro_registry_fingerprint(const struct mg_avro_registry *reg,
                                      const char *label, uint64_t *fpp);

/* Decoder: one per thread. The registry must outlive it. */
mg_err_t mg_avro_decoder_new(const struct mg_avro_registry *reg,
                             struct mg_avro_decoder **decp, char *errstr,
                             size_t errstr_size);
void mg_avro_decoder_destroy(struct mg_avro_decoder *dec);

/* Decode one framed message into ev (reset first; its contents are
 * unspecified after an error). Does not validate beyond what decoding needs
 * (call mg_event_validate()). Errors, each with a sentence in errstr:
 * MG_ERR_TOOBIG (the message, a string over its cap, more than
 * MG_EVENT_SCOPES_MAX scopes, a full arena), MG_ERR_BAD_MAGIC,
 * MG_ERR_UNKNOWN_SCHEMA, MG_ERR_TRUNCATED, MG_ERR_DECODE (including
 * trailing bytes after the record, and a union branch the reader cannot
 * hold), MG_ERR_BAD_ENUM (an index out of range, a symbol we do not know),
 * MG_ERR_INVALID (a string with a NUL byte; a writer schema that is not an
 * event record), MG_ERR_NOMEM (the reference decoder's first use of a
 * writer schema), MG_ERR_FATAL (the registry changed after the decoder was
 * created). Never reads past buf + len. The decoder's thread only. */
mg_err_t mg_avro_decode(struct mg_avro_decoder *dec, const void *buf,
                        size_t len, struct mg_event *ev, char *errstr,
                        size_t errstr_size);

/* on != 0: make mg_avro_decode() use the reference decoder, the original
 * three passes (validate the bytes, read them with Avro C's resolver into
 * generic values, copy those into the event by field name), which is
 * several times slower; on == 0 (the default): the one-pass decoder. Both
 * give the same event and the same error code and message for every input;
 * this switch exists so tests and the fuzzer can check that, and to rule the
 * fast decoder in or out when debugging. The decoder's thread only. */
void mg_avro_decoder_use_reference(struct mg_avro_decoder *dec, int on);

/* Encoder: one per thread. The registry must outlive it. */
mg_err_t mg_avro_encoder_new(const struct mg_avro_registry *reg,
                             enum mg_avro_framing framing,
                             struct mg_avro_encoder **encp, char *errstr,
                             size_t errstr_size);
void mg_avro_encoder_destroy(struct mg_avro_encoder *enc);

/* Encode ev, framed, into buf (size bytes), length in *lenp. label selects
 * the writer schema (NULL: the current schema for ev's type; "auth.v1"
 * writes the old auth schema, dropping the fields it lacks). MG_ERR_TOOBIG
 * when buf is too small; MG_ERR_UNKNOWN_SCHEMA for a Confluent encoder and a
 * label without an id. */
mg_err_t mg_avro_encode(struct mg_avro_encoder *enc, const struct mg_event *ev,
                        const char *label, void *buf, size_t size,
                        size_t *lenp, char *errstr, size_t errstr_size);

/* The Avro C schema and fingerprint of the writer schema registered under
 * label, for code that writes records other than events with Avro C's
 * generic values (the decision audit records: label "decision"). *schemap
 * receives a new reference, released with avro_schema_decref(); either out
 * parameter may be NULL. MG_ERR_NOT_FOUND when no schema has that label.
 * Any thread: the registry is immutable once built. (struct avro_obj_t * is
 * Avro C's avro_schema_t, named so that this header needs no avro.h.) */
struct avro_obj_t;
mg_err_t mg_avro_registry_schema(const struct mg_avro_registry *reg,
                                 const char *label,
                                 struct avro_obj_t **schemap, uint64_t *fpp);

#endif /* MG_AVRO_H */
