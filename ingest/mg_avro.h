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
 * Schema resolution: Avro C's resolver (avro_resolved_writer) does the
 * field matching, reordering, skipping, promotions and union/enum
 * resolution, but refuses reader fields that the writer lacks even when they
 * have a default. So the decoder resolves the writer against the reader
 * schema *projected onto the writer's fields*, and fills the remaining reader
 * fields from their declared defaults. The resolver, projected schema and
 * value instances are cached per writer schema in the decoder.
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

/* Decode one framed message into ev (reset first). Does not validate beyond
 * what decoding needs (call mg_event_validate()). Errors: MG_ERR_TOOBIG,
 * MG_ERR_BAD_MAGIC, MG_ERR_UNKNOWN_SCHEMA, MG_ERR_TRUNCATED, MG_ERR_DECODE
 * (including trailing bytes after the record), MG_ERR_BAD_ENUM, each with a
 * sentence in errstr. Never reads past buf + len. */
mg_err_t mg_avro_decode(struct mg_avro_decoder *dec, const void *buf,
                        size_t len, struct mg_event *ev, char *errstr,
                        size_t errstr_size);

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
