/*
 * mg_avro_builtin.h — the schemas compiled into the binary from
 * the .avsc files of schemas/ (generated table, see cmake/embed.cmake). Private to
 * ingest/mg_avro.c; not part of the public API.
 */
#ifndef MG_AVRO_BUILTIN_H
#define MG_AVRO_BUILTIN_H

#include <stddef.h>
#include <stdint.h>

struct mg_avro_builtin {
        const char *label;     /* "auth", "auth.v1", ... */
        int32_t confluent_id;  /* default Confluent schema id */
        const char *json;      /* schema text, NUL-terminated */
        size_t len;            /* strlen(json) */
};

/* Terminated by an entry with label NULL. */
extern const struct mg_avro_builtin mg_avro_builtin_schemas[];

#endif /* MG_AVRO_BUILTIN_H */
