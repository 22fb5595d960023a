/*
 * mg_config.h — table-driven configuration (STYLE.md "Configuration is a
 * table"; librdkafka's rd_kafka_properties[], Redis' static_configs[]).
 *
 * Each module declares one table of struct mg_conf_prop (name, type, field
 * offset, default, bounds, reloadable, description) over one struct of its
 * own. A struct mg_conf gathers the sections of the modules a subcommand
 * uses, applies defaults, loads one YAML file and command-line overrides,
 * and validates every value against its table. Nested YAML mappings are
 * flattened to dotted keys ("ingest:\n  group_id: x" is "ingest.group_id").
 * An unknown key or a bad value is MG_ERR_CONFIG with the file, line, column
 * and key in the message. Map-typed properties (MG_CONF_MAP) accept any key
 * under their prefix: `kafka.*` is one, passed straight to librdkafka.
 *
 * The reference documentation and `--help` text are generated from the
 * tables (mg_conf_print_reference()).
 *
 * Ownership: string and map fields in section structs are owned by the
 * struct mg_conf and freed by mg_conf_destroy(); the section structs
 * themselves belong to the caller. Not thread-safe; load before starting
 * threads (reload builds a new mg_conf and swaps).
 */
#ifndef MG_CONFIG_H
#define MG_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mg_err.h"

enum mg_conf_type {
        MG_CONF_STR,    /* char *; min/max bound the length */
        MG_CONF_INT,    /* int64_t; accepts k/M/G suffixes (x1000) */
        MG_CONF_DOUBLE, /* double */
        MG_CONF_BOOL,   /* int: true/false/yes/no/on/off/1/0 */
        MG_CONF_MS,     /* int64_t milliseconds: "250ms", "5s", "2m", "1h",
                         * "7d", or a bare integer of milliseconds */
        MG_CONF_MAP     /* struct mg_conf_map: any key under the name */
};

struct mg_conf_prop {
        const char *name;       /* full dotted key, e.g. "ingest.group_id" */
        enum mg_conf_type type;
        size_t offset;          /* offsetof() the field in the section */
        const char *def;        /* default as YAML text; NULL: none/empty */
        double min, max;        /* bounds (both 0: unbounded) */
        int reloadable;         /* may change on SIGHUP */
        const char *desc;       /* one or two sentences for the reference */
};

/* Pairs stored for an MG_CONF_MAP property, in file order. */
struct mg_conf_map {
        size_t cnt;             /* pairs in use */
        char **keys;            /* key below the map's prefix */
        char **values;          /* value text */
};

struct mg_conf;

struct mg_conf *mg_conf_new(void);
/* Frees every string and map the configuration owns; NULL is a no-op. */
void mg_conf_destroy(struct mg_conf *conf);

/* Add a module's table over base (caller-owned struct) and apply its
 * defaults. title names the section in the reference. Tables are not
 * copied: they must be static. */
mg_err_t mg_conf_add_section(struct mg_conf *conf, const char *title,
                             const struct mg_conf_prop *props, size_t cnt,
                             void *base, char *errstr, size_t errstr_size);

/* Load a YAML file. Every scalar is checked against the tables; the first
 * error stops loading. */
mg_err_t mg_conf_load_file(struct mg_conf *conf, const char *path,
                           char *errstr, size_t errstr_size);
/* Same, from a buffer; name labels error messages. */
mg_err_t mg_conf_load_buf(struct mg_conf *conf, const char *name,
                          const char *buf, size_t len, char *errstr,
                          size_t errstr_size);

/* Set one dotted key from text (command-line flags, tests), validated as
 * if it came from the file. */
mg_err_t mg_conf_set(struct mg_conf *conf, const char *key, const char *value,
                     char *errstr, size_t errstr_size);

/* Call cb for every key whose value differs between a and b, two
 * configurations built from the same sections in the same order (a reload
 * against the running one). Returns how many differ. */
size_t mg_conf_diff(const struct mg_conf *a, const struct mg_conf *b,
                    void (*cb)(void *opaque, const struct mg_conf_prop *prop),
                    void *opaque);

/* Print the reference documentation of every added section (Markdown when
 * markdown is set, plain text for --help). */
void mg_conf_print_reference(const struct mg_conf *conf, FILE *fp,
                             int markdown);

/* Levenshtein distance between two keys, for "did you mean": exact up to
 * 2; 3 for anything farther, or for keys over 256 bytes. */
int mg_conf_distance(const char *a, const char *b);

/* Parse a duration ("250ms", "5s", "2m", "1h", "7d", bare = ms). */
mg_err_t mg_conf_parse_ms(const char *s, int64_t *msp);

#endif /* MG_CONFIG_H */
