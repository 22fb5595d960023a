/*
 * mg_avro.c — Avro framing, the writer-schema registry, and the decoder and
 * encoder between framed Avro messages and struct mg_event (API and wire
 * formats in mg_avro.h).
 *
 * Registry. Every writer schema is parsed once, when it is registered: Avro C
 * parses it, we compute its Parsing Canonical Form (jansson) and the
 * CRC-64-AVRO fingerprint of that, find its reader (the current built-in
 * schema with the same full name), and prepare what makes the per-message
 * work cheap: a compiled copy of the writer schema for the scanner, the
 * writer-enum-symbol -> our-enum maps, a decode plan for the fast decoder
 * (below), and for the reference decoder the reader schema *projected* onto
 * the writer's fields (Avro C's resolver rejects reader fields the writer
 * lacks, even with a default, so those fields are dropped and filled from
 * their defaults afterwards) and a map from each reader field to its slot in
 * the projection. Registration also resolves the writer with Avro C once, so
 * a writer that cannot resolve is refused at configuration time, never at
 * message time; the plan is built only for writers Avro C accepted.
 *
 * Every decode starts with the framing: the first byte picks a framing ops
 * struct, which parses the header and finds the writer schema. Then one of
 * two decoders reads the body (at most MG_AVRO_MSG_MAX bytes).
 *
 * The fast decoder (the default) is one pass. The plan of a writer schema is
 * an array of ops, one per writer field in writer order, built at
 * registration: skip the field (the reader lacks it), or store it into a
 * given member of struct mg_event, converted as Avro's resolution converts
 * it (int -> long; null or string into ["null","string"]; an enum through
 * the symbol map; a union through a per-branch op, where a branch the reader
 * cannot hold is an error only when it occurs, as in Avro C). A small
 * interpreter walks the ops over the bytes, with the scanner's checks and
 * messages (it calls the scanner's helpers, and the scanner itself for
 * skipped fields), storing strings with mg_event_set_str() and scopes with
 * mg_event_add_scope(), so caps and errors are those of the event model.
 * Then the reader fields the writer lacks take their defaults. Interpreting
 * a prepared plan rather than resolving by name keeps the loop free of
 * lookups, allocation and indirection through Avro C's value interfaces:
 * per message it is a varint or a memcpy per field.
 *
 * The reference decoder is the original three-pass path, kept for tests
 * (every fast result is checked against it) and debugging
 * (mg_avro_decoder_use_reference()), and used for any writer whose pairing
 * with its reader the plan builder does not cover:
 *   1. scan: our own walk of the body against the compiled writer schema.
 *      Avro C 1.11 trusts its input: a huge string length makes it allocate
 *      that much (and leak it on the error path), a negative one underflows,
 *      an enum index out of range is stored as is (and printed by reading
 *      past the symbol table), a union index out of range indexes past the
 *      resolver's branch array, and varints are not range checked. The scan
 *      checks every length against the bytes left, every enum and union
 *      index, varint sizes, booleans and UTF-8, and finds the end of the
 *      record, so trailing bytes are an error. Only bytes that passed reach
 *      Avro C, which then cannot misbehave on them;
 *   2. Avro C reads the body through the cached resolver (writer -> projected
 *      reader) into a cached generic value;
 *   3. we copy the fields into the event by name through the field table
 *      below, in reader order, taking defaults for the reader fields the
 *      writer lacks.
 * Avro C resolves enums by passing the *writer's* index through unchanged
 * (resolved-writer.c, try_enum only compares names), so enum values are
 * mapped from the writer's symbol names to ours, prepared at registration;
 * a symbol we do not know takes the enum's declared default, if any.
 *
 * Both decoders give the same event and the same error (code and message)
 * for every input; the unit tests and the fuzzer check it. That fixes which
 * error wins when a message has several: bytes that do not decode (the
 * first in the message), then a union branch the reader cannot hold (the
 * first in the message), then a value the event cannot hold (the first in
 * *reader* order, as the reference fills in that order and the shared
 * string arena can make the order matter). The fast decoder keeps walking
 * after a value fails to store, so byte errors later in the message still
 * win, and on such a failure replays the fields in reader order.
 *
 * Per decoder (one per thread) the fast decoder needs only a small array;
 * the reference decoder's resolver, generic interfaces and value instances
 * are built per writer schema on first use and reused (Avro C allocates each
 * string it reads).
 *
 * Encoding sets a cached generic value of the chosen writer schema from the
 * event and lets Avro C write it behind the framing header.
 *
 * Workload: one decode per consumed Kafka message, hundreds of thousands per
 * second per core; registration happens at start-up and is allowed to be
 * slow.
 */
#include "mg_avro.h"
#include "mg_avro_builtin.h"

#include <assert.h>
#include <avro.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Single-object header: C3 01, then the 8-byte little-endian fingerprint. */
#define MG_AVRO_SO_HDR_LEN 10
/* Confluent header: 00, then the 4-byte big-endian schema id. */
#define MG_AVRO_CF_HDR_LEN 5
/* Deepest nesting of records, arrays, maps and unions the scanner follows.
 * Our records nest three levels; 32 leaves room for added schemas while a
 * recursive schema cannot be used to run the stack down with crafted input. */
#define MG_AVRO_DEPTH_MAX 32
/* Largest .avsc file registry_add_file() reads: real schemas are a few KiB,
 * the cap keeps a wrong path (a log file, a device) from being slurped. */
#define MG_AVRO_SCHEMA_FILE_MAX (1024 * 1024)
/* CRC-64-AVRO of zero bytes, the polynomial of the Rabin fingerprint (Avro
 * specification, "Schema Fingerprints"). */
#define MG_AVRO_FP_EMPTY 0xc15d213aa4d7a795ULL

/*
 * The event field table: which Avro field fills which member of struct
 * mg_event, and how.
 */

/* How a value travels between an Avro field and struct mg_event. */
enum mg_avro_fkind {
        MG_AVRO_FK_STR,    /* "string", required: const char * */
        MG_AVRO_FK_OPTSTR, /* ["null","string"]: const char *, NULL = null */
        MG_AVRO_FK_INT,    /* "int": int32_t */
        MG_AVRO_FK_LONG,   /* "long": int64_t */
        MG_AVRO_FK_ENUM,   /* enum: a C enum, mapped by symbol name */
        MG_AVRO_FK_SCOPES  /* array of string: the auth scopes */
};

struct mg_avro_efield {
        int type;                /* enum mg_event_type; -1 = every type */
        const char *name;        /* Avro (and JSON) field name */
        enum mg_avro_fkind kind; /* representation on both sides */
        size_t off;              /* offset of the member in struct mg_event */
        const char *const *syms; /* ENUM: our symbol names, index = value */
        int sym_cnt;             /* ENUM: entries in syms */
};

/* Enum members are stored through an int lvalue. */
_Static_assert(sizeof(enum mg_identity_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(enum mg_auth_method) == sizeof(int), "enum size");
_Static_assert(sizeof(enum mg_grant_type) == sizeof(int), "enum size");
_Static_assert(sizeof(enum mg_auth_outcome) == sizeof(int), "enum size");
_Static_assert(sizeof(enum mg_signal_kind) == sizeof(int), "enum size");

#define MG_AVRO_EF(t, n, k, m)                                                 \
        { t, n, k, offsetof(struct mg_event, m), NULL, 0 }
#define MG_AVRO_EE(t, n, m, tab, cnt)                                          \
        { t, n, MG_AVRO_FK_ENUM, offsetof(struct mg_event, m), tab, cnt }

static const struct mg_avro_efield mg_avro_efields[] = {
        MG_AVRO_EF(-1, "event_id", MG_AVRO_FK_STR, event_id),
        MG_AVRO_EF(-1, "ts", MG_AVRO_FK_LONG, ts_ms),
        MG_AVRO_EF(-1, "identity", MG_AVRO_FK_STR, identity),

        MG_AVRO_EE(MG_EVENT_AUTH, "identity_kind", u.auth.identity_kind,
                   mg_identity_kind_names, MG_IDENTITY_KIND__CNT),
        MG_AVRO_EF(MG_EVENT_AUTH, "client_id", MG_AVRO_FK_STR,
                   u.auth.client_id),
        MG_AVRO_EF(MG_EVENT_AUTH, "source_ip", MG_AVRO_FK_STR,
                   u.auth.source_ip),
        MG_AVRO_EF(MG_EVENT_AUTH, "user_agent", MG_AVRO_FK_OPTSTR,
                   u.auth.user_agent),
        MG_AVRO_EE(MG_EVENT_AUTH, "auth_method", u.auth.auth_method,
                   mg_auth_method_names, MG_AUTH_METHOD__CNT),
        MG_AVRO_EE(MG_EVENT_AUTH, "grant_type", u.auth.grant_type,
                   mg_grant_type_names, MG_GRANT__CNT),
        MG_AVRO_EF(MG_EVENT_AUTH, "audience", MG_AVRO_FK_OPTSTR,
                   u.auth.audience),
        MG_AVRO_EF(MG_EVENT_AUTH, "scopes", MG_AVRO_FK_SCOPES, u.auth.scopes),
        MG_AVRO_EE(MG_EVENT_AUTH, "outcome", u.auth.outcome,
                   mg_auth_outcome_names, MG_OUTCOME__CNT),
        MG_AVRO_EF(MG_EVENT_AUTH, "failure_reason", MG_AVRO_FK_OPTSTR,
                   u.auth.failure_reason),
        MG_AVRO_EF(MG_EVENT_AUTH, "token_id", MG_AVRO_FK_OPTSTR,
                   u.auth.token_id),
        MG_AVRO_EF(MG_EVENT_AUTH, "parent_token_id", MG_AVRO_FK_OPTSTR,
                   u.auth.parent_token_id),

        MG_AVRO_EF(MG_EVENT_USAGE, "token_id", MG_AVRO_FK_OPTSTR,
                   u.usage.token_id),
        MG_AVRO_EF(MG_EVENT_USAGE, "resource", MG_AVRO_FK_STR,
                   u.usage.resource),
        MG_AVRO_EF(MG_EVENT_USAGE, "action", MG_AVRO_FK_STR, u.usage.action),
        MG_AVRO_EF(MG_EVENT_USAGE, "scope", MG_AVRO_FK_OPTSTR, u.usage.scope),
        MG_AVRO_EF(MG_EVENT_USAGE, "source_ip", MG_AVRO_FK_OPTSTR,
                   u.usage.source_ip),
        MG_AVRO_EF(MG_EVENT_USAGE, "status", MG_AVRO_FK_INT, u.usage.status),
        MG_AVRO_EF(MG_EVENT_USAGE, "bytes", MG_AVRO_FK_LONG, u.usage.bytes),

        MG_AVRO_EE(MG_EVENT_SIGNAL, "kind", u.signal.kind,
                   mg_signal_kind_names, MG_SIGNAL__CNT),
        MG_AVRO_EF(MG_EVENT_SIGNAL, "severity", MG_AVRO_FK_INT,
                   u.signal.severity),
        MG_AVRO_EF(MG_EVENT_SIGNAL, "source", MG_AVRO_FK_STR,
                   u.signal.source),
        MG_AVRO_EF(MG_EVENT_SIGNAL, "detail", MG_AVRO_FK_OPTSTR,
                   u.signal.detail),
};

#define MG_AVRO_EFIELD_CNT                                                     \
        (sizeof(mg_avro_efields) / sizeof(mg_avro_efields[0]))

/*
 * Registry data.
 */

/* One field of a reader schema. */
struct mg_avro_rfield {
        const char *name;                /* field name (owned by rd->json) */
        const struct mg_avro_efield *ef; /* member it fills; NULL when the
                                          * reader is not an event record */
        json_t *def;      /* declared "default" (owned by rd->json), or NULL */
        int64_t def_num;  /* INT/LONG/ENUM: the default as a number */
        int enum_def;     /* ENUM: the enum type's own "default" (for writer
                           * symbols we do not know), or -1 */
};

/* A reader schema: the current built-in schema of one record full name. */
struct mg_avro_reader {
        char *label;      /* built-in label, e.g. "auth" */
        char *fullname;   /* e.g. "io.mintgate.events.AuthEvent" */
        int ev_type;      /* enum mg_event_type, -1: not an event (Decision) */
        json_t *json;     /* the schema as written; owns names and defaults */
        json_t *pcf;      /* canonical form (full names), for projections */
        json_t *defs;     /* full name -> its definition inside pcf */
        size_t field_cnt; /* fields of the record */
        struct mg_avro_rfield *fields; /* in schema order */
};

/* Opcodes of a compiled writer schema. */
enum mg_avro_op {
        MG_AVRO_OP_NULL,
        MG_AVRO_OP_BOOL,
        MG_AVRO_OP_INT,
        MG_AVRO_OP_LONG,
        MG_AVRO_OP_FLOAT,
        MG_AVRO_OP_DOUBLE,
        MG_AVRO_OP_BYTES,
        MG_AVRO_OP_STRING,
        MG_AVRO_OP_FIXED,
        MG_AVRO_OP_ENUM,
        MG_AVRO_OP_ARRAY,
        MG_AVRO_OP_MAP,
        MG_AVRO_OP_UNION,
        MG_AVRO_OP_RECORD
};

/* One type of a compiled writer schema; nodes refer to each other by index
 * so recursive schemas compile to cycles. */
struct mg_avro_node {
        enum mg_avro_op op;
        int64_t n;          /* FIXED: size; ENUM: symbols; UNION: branches;
                             * RECORD: fields; ARRAY/MAP: 1 */
        size_t min;         /* fewest bytes a value takes (bounds counts) */
        int *kids;          /* ARRAY/MAP: item type; UNION: branches;
                             * RECORD: field types */
        const char **names; /* RECORD: field names (owned by the avro schema) */
        avro_schema_t schema; /* named types: for memoizing (borrowed) */
};

/* How one reader field is found in a particular writer. */
struct mg_avro_wmap {
        int widx;       /* index in the writer record, -1: use default */
        int pidx;       /* index in the projected record, -1: use default */
        int sym_cnt;    /* ENUM in writer: the writer's symbol count */
        int *sym_map;   /* ENUM in writer: writer index -> our value, or -1 */
        avro_schema_t wenum; /* ENUM in writer: its enum schema (borrowed) */
};

/* What one op of a decode plan does with the writer's bytes (see the top of
 * the file). Each kind reads exactly what the scanner reads for the writer
 * type it is built for. */
enum mg_avro_dop_kind {
        MG_AVRO_DOP_SKIP,     /* a field the reader lacks: scan past it */
        MG_AVRO_DOP_NULL,     /* writer null -> optional string: NULL */
        MG_AVRO_DOP_STR,      /* writer string -> string member */
        MG_AVRO_DOP_SCOPE,    /* writer string -> one more scope */
        MG_AVRO_DOP_INT,      /* writer int -> int32_t member */
        MG_AVRO_DOP_INT_LONG, /* writer int -> int64_t member (promotion) */
        MG_AVRO_DOP_LONG,     /* writer long -> int64_t member */
        MG_AVRO_DOP_ENUM,     /* writer enum -> our value, by symbol */
        MG_AVRO_DOP_SCOPES,   /* writer array -> the scopes; kids[0]: item */
        MG_AVRO_DOP_UNION,    /* writer union; kids: one per writer branch */
        MG_AVRO_DOP_BAD       /* a union branch the reader cannot hold */
};

/* One op of a decode plan. */
struct mg_avro_dop {
        enum mg_avro_dop_kind kind;
        int wnode;            /* writer's compiled node: what the bytes are */
        size_t off;           /* member of struct mg_event it fills */
        const char *name;     /* that field's name (efield table), for
                               * mg_event_set_str() and messages */
        const struct mg_avro_wmap *wm; /* ENUM: symbol map of the field */
        const char *rtype;    /* UNION: Avro C's name of the reader type, for
                               * the message of a branch it cannot hold */
        struct mg_avro_dop *kids; /* UNION: per branch; SCOPES: the item */
        int kid_cnt;          /* entries in kids */
};

/* One registered writer schema. */
struct mg_avro_schema {
        char *label;          /* registration label, e.g. "auth.v1" */
        int32_t confluent_id; /* Confluent schema id, -1: none */
        uint64_t fp;          /* CRC-64-AVRO of the canonical form */
        avro_schema_t schema; /* the writer schema */
        const struct mg_avro_reader *rd; /* its reader */
        avro_schema_t projected; /* rd projected onto our fields */
        struct mg_avro_wmap *wmap; /* per reader field (rd->field_cnt) */
        struct mg_avro_node *nodes; /* compiled schema, root at 0 */
        size_t node_cnt;      /* entries in nodes */
        size_t wfield_cnt;    /* fields of the writer record */
        const struct mg_avro_efield **wfields; /* per writer field: member
                                                * to encode it from, or NULL */
        struct mg_avro_dop *plan; /* fast decoder: one op per writer field;
                                   * NULL: the reference decoder only */
        int *dflt;            /* reader fields the writer lacks (defaults) */
        size_t dflt_cnt;      /* entries in dflt */
};

struct mg_avro_registry {
        struct mg_avro_reader *readers; /* current built-ins, by full name */
        size_t reader_cnt;              /* entries in readers */
        struct mg_avro_schema **schemas; /* registered writers */
        size_t cnt;                     /* entries in schemas */
        size_t cap;                     /* allocated entries */
        unsigned gen;                   /* bumped by every add: decoders and
                                         * encoders index schemas[] and
                                         * must not outlive a change */
};

/*
 * Framing: one small ops struct per wire format.
 */

struct mg_avro_framing_ops {
        const char *name;    /* for messages */
        uint8_t magic[2];    /* first bytes */
        size_t magic_len;    /* bytes of magic */
        size_t hdr_len;      /* bytes before the Avro body */
        /* Find the writer schema named by a header of hdr_len bytes: its
         * index in reg->schemas. */
        mg_err_t (*parse)(const struct mg_avro_registry *reg,
                          const uint8_t *hdr, size_t *idxp, char *errstr,
                          size_t errstr_size);
        /* Write the header for ws into hdr (hdr_len bytes). */
        mg_err_t (*write)(const struct mg_avro_schema *ws, uint8_t *hdr,
                          char *errstr, size_t errstr_size);
};

/* Per-decoder, per-writer cache of Avro C objects. */
struct mg_avro_dslot {
        avro_value_iface_t *riface; /* resolver writer -> projected reader */
        avro_value_iface_t *giface; /* generic class of the projection */
        avro_value_t rval;          /* projected record, filled by reads */
        avro_value_t wval;          /* resolver instance writing into rval */
        int ready;                  /* the above are built */
};

struct mg_avro_decoder {
        const struct mg_avro_registry *reg; /* not owned */
        unsigned gen;               /* reg->gen when created */
        int use_reference;          /* decode with the reference decoder */
        const uint8_t **pos;        /* fast decoder: where each writer field
                                     * of the message starts (for replaying
                                     * them in reader order) */
        avro_reader_t reader;       /* memory reader, re-pointed per message */
        size_t slot_cnt;            /* = reg->cnt when created */
        struct mg_avro_dslot *slots; /* per registry entry */
};

/* Per-encoder, per-writer cache. */
struct mg_avro_eslot {
        avro_value_iface_t *giface; /* generic class of the writer schema */
        avro_value_t val;           /* instance, reset per message */
        int ready;                  /* the above are built */
};

struct mg_avro_encoder {
        const struct mg_avro_registry *reg;     /* not owned */
        unsigned gen;               /* reg->gen when created */
        const struct mg_avro_framing_ops *ops;  /* the chosen framing */
        avro_writer_t writer;       /* memory writer, re-pointed per message */
        size_t slot_cnt;            /* = reg->cnt when created */
        struct mg_avro_eslot *slots; /* per registry entry */
};

/*
 * CRC-64-AVRO (Rabin) fingerprint, table-driven as in the specification.
 */

static uint64_t mg_avro_fp_table[256];
static pthread_once_t mg_avro_fp_once = PTHREAD_ONCE_INIT;

static void mg_avro_fp_init(void) {
        int i, j;

        for (i = 0; i < 256; i++) {
                uint64_t fp = (uint64_t)i;

                for (j = 0; j < 8; j++)
                        fp = (fp >> 1) ^ (MG_AVRO_FP_EMPTY & -(fp & 1));
                mg_avro_fp_table[i] = fp;
        }
}

static uint64_t mg_avro_rabin(const void *buf, size_t len) {
        const uint8_t *p = buf;
        uint64_t fp = MG_AVRO_FP_EMPTY;
        size_t i;

        pthread_once(&mg_avro_fp_once, mg_avro_fp_init);
        for (i = 0; i < len; i++)
                fp = (fp >> 8) ^ mg_avro_fp_table[(fp ^ p[i]) & 0xff];
        return fp;
}

/*
 * Parsing Canonical Form (Avro specification, "Transforming into Parsing
 * Canonical Form"), built as a jansson tree: [PRIMITIVES] and [STRIP] by
 * constructing only the kept attributes, [ORDER] by inserting them in order
 * (jansson keeps insertion order), [FULLNAMES] with the enclosing namespace
 * passed down, [STRINGS]/[WHITESPACE] by json_dumps(JSON_COMPACT), which
 * writes UTF-8 unescaped, and [INTEGERS] by storing sizes as integers.
 */

static const char *const mg_avro_primitives[] = {
        "null", "boolean", "int", "long", "float", "double", "bytes", "string"};

static int mg_avro_is_primitive(const char *s) {
        size_t i;

        for (i = 0; i < sizeof(mg_avro_primitives) / sizeof(char *); i++)
                if (!strcmp(s, mg_avro_primitives[i]))
                        return 1;
        return 0;
}

/* name qualified by ns (malloc'd): a dotted name is already full, an empty
 * namespace is the null namespace. */
static char *mg_avro_qualify(const char *name, const char *ns) {
        size_t nl, sl;
        char *s;

        if (strchr(name, '.') || !ns || !*ns)
                return strdup(name);
        nl = strlen(name);
        sl = strlen(ns);
        s = malloc(sl + 1 + nl + 1);
        if (!s)
                return NULL;
        memcpy(s, ns, sl);
        s[sl] = '.';
        memcpy(s + sl + 1, name, nl + 1);
        return s;
}

/* State of one canonicalization. */
struct mg_avro_pcf {
        json_t *defs;      /* full name -> canonical definition */
        char *errstr;      /* caller's error buffer */
        size_t errstr_size;
};

static json_t *mg_avro_pcf_node(struct mg_avro_pcf *pc, json_t *s,
                                const char *ns);

/* A reference to a named type: the full name, resolved as Java does (the
 * enclosing namespace first, then the null namespace). */
static json_t *mg_avro_pcf_ref(struct mg_avro_pcf *pc, const char *name,
                               const char *ns) {
        json_t *out = NULL;
        char *full = mg_avro_qualify(name, ns);

        if (!full)
                goto out;
        if (json_object_get(pc->defs, full))
                out = json_string(full);
        else if (!strchr(name, '.') && json_object_get(pc->defs, name))
                out = json_string(name);
        else
                mg_err_set(MG_ERR_INVALID, pc->errstr, pc->errstr_size,
                           "unknown type name \"%s\"", name);
out:
        free(full);
        return out;
}

static json_t *mg_avro_pcf_named(struct mg_avro_pcf *pc, json_t *s,
                                 const char *type, const char *ns) {
        json_t *out = NULL, *name = json_object_get(s, "name");
        json_t *space = json_object_get(s, "namespace");
        json_t *v, *f, *arr;
        char *full = NULL, *dot;
        size_t i;

        if (!json_is_string(name) || !*json_string_value(name)) {
                mg_err_set(MG_ERR_INVALID, pc->errstr, pc->errstr_size,
                           "%s without a name", type);
                goto fail;
        }
        if (json_is_string(space) && !strchr(json_string_value(name), '.'))
                full = mg_avro_qualify(json_string_value(name),
                                       json_string_value(space));
        else
                full = mg_avro_qualify(json_string_value(name), ns);
        if (!full)
                goto fail;
        if (json_object_get(pc->defs, full)) {
                mg_err_set(MG_ERR_INVALID, pc->errstr, pc->errstr_size,
                           "type %s is defined twice", full);
                goto fail;
        }
        out = json_object();
        if (!out || json_object_set_new(out, "name", json_string(full)) ||
            json_object_set_new(out, "type", json_string(type)) ||
            json_object_set(pc->defs, full, out))
                goto fail;

        /* Nested definitions inherit the namespace of this full name. */
        dot = strrchr(full, '.');
        if (dot)
                *dot = '\0';
        else
                full[0] = '\0';

        if (!strcmp(type, "record") || !strcmp(type, "error")) {
                json_t *fields = json_object_get(s, "fields");

                if (!json_is_array(fields)) {
                        mg_err_set(MG_ERR_INVALID, pc->errstr,
                                   pc->errstr_size, "record without fields");
                        goto fail;
                }
                arr = json_array();
                if (!arr || json_object_set_new(out, "fields", arr))
                        goto fail;
                json_array_foreach(fields, i, f) {
                        json_t *fname = json_object_get(f, "name");
                        json_t *fo, *ft;

                        if (!json_is_string(fname) ||
                            !json_object_get(f, "type")) {
                                mg_err_set(MG_ERR_INVALID, pc->errstr,
                                           pc->errstr_size,
                                           "record field without a name or "
                                           "type");
                                goto fail;
                        }
                        ft = mg_avro_pcf_node(pc, json_object_get(f, "type"),
                                              full);
                        if (!ft)
                                goto fail;
                        fo = json_object();
                        if (!fo || json_array_append_new(arr, fo) ||
                            json_object_set(fo, "name", fname) ||
                            json_object_set_new(fo, "type", ft))
                                goto fail;
                }
        } else if (!strcmp(type, "enum")) {
                v = json_object_get(s, "symbols");
                if (!json_is_array(v)) {
                        mg_err_set(MG_ERR_INVALID, pc->errstr,
                                   pc->errstr_size, "enum without symbols");
                        goto fail;
                }
                if (json_object_set_new(out, "symbols", json_deep_copy(v)))
                        goto fail;
        } else { /* fixed */
                json_int_t size = -1;

                v = json_object_get(s, "size");
                if (json_is_integer(v)) {
                        size = json_integer_value(v);
                } else if (json_is_string(v)) { /* [INTEGERS]: "16" -> 16 */
                        char *end;

                        size = (json_int_t)strtoll(json_string_value(v), &end,
                                                   10);
                        if (*end || end == json_string_value(v))
                                size = -1;
                }
                if (size < 0) {
                        mg_err_set(MG_ERR_INVALID, pc->errstr,
                                   pc->errstr_size, "fixed without a size");
                        goto fail;
                }
                if (json_object_set_new(out, "size", json_integer(size)))
                        goto fail;
        }
        free(full);
        return out;
fail:
        if (pc->errstr && pc->errstr_size && !pc->errstr[0])
                mg_err_set(MG_ERR_NOMEM, pc->errstr, pc->errstr_size,
                           "out of memory");
        free(full);
        json_decref(out);
        return NULL;
}

static json_t *mg_avro_pcf_node(struct mg_avro_pcf *pc, json_t *s,
                                const char *ns) {
        json_t *out, *v, *c, *type;
        const char *t;
        size_t i;

        if (json_is_string(s)) {
                if (mg_avro_is_primitive(json_string_value(s)))
                        return json_string(json_string_value(s));
                return mg_avro_pcf_ref(pc, json_string_value(s), ns);
        }
        if (json_is_array(s)) { /* union */
                out = json_array();
                if (!out)
                        return NULL;
                json_array_foreach(s, i, v) {
                        c = mg_avro_pcf_node(pc, v, ns);
                        if (!c || json_array_append_new(out, c)) {
                                json_decref(out);
                                return NULL;
                        }
                }
                return out;
        }
        if (!json_is_object(s)) {
                mg_err_set(MG_ERR_INVALID, pc->errstr, pc->errstr_size,
                           "a schema must be a string, array or object");
                return NULL;
        }
        type = json_object_get(s, "type");
        if (json_is_object(type) || json_is_array(type))
                return mg_avro_pcf_node(pc, type, ns);
        if (!json_is_string(type)) {
                mg_err_set(MG_ERR_INVALID, pc->errstr, pc->errstr_size,
                           "schema object without a type");
                return NULL;
        }
        t = json_string_value(type);
        if (mg_avro_is_primitive(t)) /* [PRIMITIVES]: {"type":"int"} */
                return json_string(t);
        if (!strcmp(t, "record") || !strcmp(t, "error") ||
            !strcmp(t, "enum") || !strcmp(t, "fixed"))
                return mg_avro_pcf_named(pc, s, t, ns);
        if (!strcmp(t, "array") || !strcmp(t, "map")) {
                const char *key = t[0] == 'a' ? "items" : "values";

                v = json_object_get(s, key);
                if (!v) {
                        mg_err_set(MG_ERR_INVALID, pc->errstr,
                                   pc->errstr_size, "%s without %s", t, key);
                        return NULL;
                }
                c = mg_avro_pcf_node(pc, v, ns);
                out = json_object();
                if (!c || !out || json_object_set_new(out, "type",
                                                      json_string(t)) ||
                    json_object_set_new(out, key, c)) {
                        if (!out)
                                json_decref(c);
                        json_decref(out);
                        return NULL;
                }
                return out;
        }
        return mg_avro_pcf_ref(pc, t, ns); /* {"type":"SomeRecord"} */
}

/* Canonical form of root as a jansson tree; *defsp (if not NULL) receives
 * the full name -> definition table. */
static mg_err_t mg_avro_pcf_tree(json_t *root, json_t **pcfp, json_t **defsp,
                                 char *errstr, size_t errstr_size) {
        struct mg_avro_pcf pc = {NULL, errstr, errstr_size};
        json_t *pcf = NULL;
        mg_err_t err = MG_OK;

        if (errstr && errstr_size)
                errstr[0] = '\0';
        pc.defs = json_object();
        if (!pc.defs) {
                err = mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                 "out of memory");
                goto out;
        }
        pcf = mg_avro_pcf_node(&pc, root, "");
        if (!pcf) {
                err = MG_ERR_INVALID;
                if (errstr && errstr_size && !errstr[0])
                        mg_err_set(err, errstr, errstr_size, "out of memory");
                goto out;
        }
        *pcfp = pcf;
        pcf = NULL;
        if (defsp) {
                *defsp = pc.defs;
                pc.defs = NULL;
        }
out:
        json_decref(pc.defs);
        json_decref(pcf);
        return err;
}

static mg_err_t mg_avro_pcf_fingerprint(json_t *pcf, uint64_t *fpp,
                                        char *errstr, size_t errstr_size) {
        char *text = json_dumps(pcf, JSON_COMPACT | JSON_PRESERVE_ORDER |
                                             JSON_ENCODE_ANY);

        if (!text)
                return mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                  "out of memory");
        *fpp = mg_avro_rabin(text, strlen(text));
        free(text);
        return MG_OK;
}

mg_err_t mg_avro_fingerprint(const char *json, size_t len, uint64_t *fpp,
                             char *errstr, size_t errstr_size) {
        json_t *root = NULL, *pcf = NULL;
        json_error_t jerr;
        mg_err_t err;

        root = json_loadb(json, len, JSON_DECODE_ANY, &jerr);
        if (!root) {
                err = mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                 "schema is not JSON (line %d, column %d: %s)",
                                 jerr.line, jerr.column, jerr.text);
                goto out;
        }
        if ((err = mg_avro_pcf_tree(root, &pcf, NULL, errstr, errstr_size)))
                goto out;
        err = mg_avro_pcf_fingerprint(pcf, fpp, errstr, errstr_size);
out:
        json_decref(root);
        json_decref(pcf);
        return err;
}

/*
 * Avro C schema helpers.
 */

static avro_schema_t mg_avro_unlink(avro_schema_t s) {
        while (is_avro_link(s))
                s = avro_schema_link_target(s);
        return s;
}

/* Does an Avro type fit an event field of this kind? */
static int mg_avro_kind_fits(avro_schema_t s, enum mg_avro_fkind kind) {
        avro_schema_t a, b;

        s = mg_avro_unlink(s);
        switch (kind) {
        case MG_AVRO_FK_STR:
                return is_avro_string(s);
        case MG_AVRO_FK_OPTSTR:
                if (!is_avro_union(s) || avro_schema_union_size(s) != 2)
                        return 0;
                a = mg_avro_unlink(avro_schema_union_branch(s, 0));
                b = mg_avro_unlink(avro_schema_union_branch(s, 1));
                return (is_avro_null(a) && is_avro_string(b)) ||
                       (is_avro_string(a) && is_avro_null(b));
        case MG_AVRO_FK_INT:
                return is_avro_int32(s);
        case MG_AVRO_FK_LONG:
                return is_avro_int64(s);
        case MG_AVRO_FK_ENUM:
                return is_avro_enum(s);
        case MG_AVRO_FK_SCOPES:
                return is_avro_array(s) &&
                       is_avro_string(
                               mg_avro_unlink(avro_schema_array_items(s)));
        }
        return 0;
}

static const struct mg_avro_efield *mg_avro_efield_find(int type,
                                                        const char *name) {
        size_t i;

        for (i = 0; i < MG_AVRO_EFIELD_CNT; i++)
                if ((mg_avro_efields[i].type == -1 ||
                     mg_avro_efields[i].type == type) &&
                    !strcmp(mg_avro_efields[i].name, name))
                        return &mg_avro_efields[i];
        return NULL;
}

/*
 * Readers.
 */

static void mg_avro_reader_clear(struct mg_avro_reader *rd) {
        free(rd->label);
        free(rd->fullname);
        json_decref(rd->json);
        json_decref(rd->pcf);
        json_decref(rd->defs);
        free(rd->fields);
        memset(rd, 0, sizeof(*rd));
}

/* Check and convert the declared default of an event field. */
static mg_err_t mg_avro_reader_default(const struct mg_avro_reader *rd,
                                       struct mg_avro_rfield *rf,
                                       char *errstr, size_t errstr_size) {
        const struct mg_avro_efield *ef = rf->ef;
        json_t *d = rf->def, *v;
        size_t i;
        int ok = 0;

        switch (ef->kind) {
        case MG_AVRO_FK_STR:
                ok = json_is_string(d);
                break;
        case MG_AVRO_FK_OPTSTR:
                ok = json_is_null(d) || json_is_string(d);
                break;
        case MG_AVRO_FK_INT:
        case MG_AVRO_FK_LONG:
                ok = json_is_integer(d);
                if (ok)
                        rf->def_num = json_integer_value(d);
                if (ef->kind == MG_AVRO_FK_INT &&
                    (rf->def_num < INT32_MIN || rf->def_num > INT32_MAX))
                        ok = 0;
                break;
        case MG_AVRO_FK_ENUM:
                ok = json_is_string(d) &&
                     (rf->def_num = mg_enum_parse(ef->syms, ef->sym_cnt,
                                                  json_string_value(d),
                                                  json_string_length(d))) >=
                             0;
                break;
        case MG_AVRO_FK_SCOPES:
                ok = json_is_array(d) &&
                     json_array_size(d) <= MG_EVENT_SCOPES_MAX;
                json_array_foreach(d, i, v) {
                        if (!json_is_string(v))
                                ok = 0;
                }
                break;
        }
        if (!ok)
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "reader schema %s: default of field %s "
                                  "does not fit the event",
                                  rd->fullname, rf->name);
        return MG_OK;
}

/* Set up rd as the reader for the built-in schema b. */
static mg_err_t mg_avro_reader_init(struct mg_avro_reader *rd,
                                    const struct mg_avro_builtin *b,
                                    char *errstr, size_t errstr_size) {
        avro_schema_t schema = NULL;
        json_error_t jerr;
        json_t *fields, *f, *ftype;
        mg_err_t err = MG_OK;
        size_t i, want = 0, have = 0;

        memset(rd, 0, sizeof(*rd));
        rd->label = strdup(b->label);
        rd->json = json_loadb(b->json, b->len, 0, &jerr);
        if (!rd->label || !rd->json) {
                err = mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                 "built-in schema %s: %s", b->label,
                                 rd->json ? "out of memory" : jerr.text);
                goto out;
        }
        if (avro_schema_from_json_length(b->json, b->len, &schema)) {
                err = mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                 "built-in schema %s: %s", b->label,
                                 avro_strerror());
                schema = NULL;
                goto out;
        }
        if ((err = mg_avro_pcf_tree(rd->json, &rd->pcf, &rd->defs, errstr,
                                    errstr_size)))
                goto out;
        fields = json_object_get(rd->json, "fields");
        if (!is_avro_record(schema) || !json_is_array(fields) ||
            json_array_size(fields) != avro_schema_record_size(schema)) {
                err = mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                 "built-in schema %s is not a record",
                                 b->label);
                goto out;
        }
        rd->fullname = strdup(json_string_value(
                json_object_get(rd->pcf, "name")));
        rd->ev_type = mg_enum_parse(mg_event_type_names, MG_EVENT_TYPE__CNT,
                                    b->label, strlen(b->label));
        rd->field_cnt = json_array_size(fields);
        rd->fields = calloc(rd->field_cnt ? rd->field_cnt : 1,
                            sizeof(*rd->fields));
        if (!rd->fullname || !rd->fields) {
                err = mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                 "out of memory");
                goto out;
        }

        json_array_foreach(fields, i, f) {
                struct mg_avro_rfield *rf = &rd->fields[i];

                rf->name = json_string_value(json_object_get(f, "name"));
                rf->def = json_object_get(f, "default");
                rf->enum_def = -1;
                if (rd->ev_type < 0)
                        continue;
                rf->ef = mg_avro_efield_find(rd->ev_type, rf->name);
                if (!rf->ef) {
                        err = mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                         "reader schema %s: field %s has no "
                                         "place in struct mg_event",
                                         rd->fullname, rf->name);
                        goto out;
                }
                have++;
                if (!mg_avro_kind_fits(
                            avro_schema_record_field_get_by_index(schema,
                                                                  (int)i),
                            rf->ef->kind)) {
                        err = mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                         "reader schema %s: field %s has a "
                                         "type struct mg_event cannot hold",
                                         rd->fullname, rf->name);
                        goto out;
                }
                if (rf->def &&
                    (err = mg_avro_reader_default(rd, rf, errstr,
                                                  errstr_size)))
                        goto out;
                /* An enum type's own default stands in for writer symbols
                 * the reader does not know (Avro 1.9 enum defaults). Only an
                 * enum defined inline in the field is looked at. */
                ftype = json_object_get(f, "type");
                if (rf->ef->kind == MG_AVRO_FK_ENUM && json_is_object(ftype) &&
                    json_is_string(json_object_get(ftype, "default"))) {
                        json_t *d = json_object_get(ftype, "default");

                        rf->enum_def = mg_enum_parse(rf->ef->syms,
                                                     rf->ef->sym_cnt,
                                                     json_string_value(d),
                                                     json_string_length(d));
                        if (rf->enum_def < 0) {
                                err = mg_err_set(MG_ERR_INVALID, errstr,
                                                 errstr_size,
                                                 "reader schema %s: enum "
                                                 "default of field %s is "
                                                 "unknown",
                                                 rd->fullname, rf->name);
                                goto out;
                        }
                }
        }
        if (rd->ev_type >= 0) {
                for (i = 0; i < MG_AVRO_EFIELD_CNT; i++)
                        if (mg_avro_efields[i].type == -1 ||
                            mg_avro_efields[i].type == rd->ev_type)
                                want++;
                if (want != have) {
                        err = mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                         "reader schema %s has %zu of the "
                                         "%zu fields of a %s event",
                                         rd->fullname, have, want, b->label);
                        goto out;
                }
        }
out:
        if (schema)
                avro_schema_decref(schema);
        if (err)
                mg_avro_reader_clear(rd);
        return err;
}

static const struct mg_avro_reader *
mg_avro_reader_find(const struct mg_avro_registry *reg, const char *fullname) {
        size_t i;

        for (i = 0; i < reg->reader_cnt; i++)
                if (!strcmp(reg->readers[i].fullname, fullname))
                        return &reg->readers[i];
        return NULL;
}

/*
 * Projection: the reader's canonical record keeping only the fields the
 * writer has, with every named type defined at its first use among the kept
 * fields (a dropped field may have held the definition a later field
 * refers to).
 */

static json_t *mg_avro_inline(json_t *t, json_t *defs, json_t *seen) {
        json_t *out, *v, *c, *name;
        const char *key;
        size_t i;

        if (json_is_string(t)) {
                const char *s = json_string_value(t);

                if (mg_avro_is_primitive(s) || json_object_get(seen, s))
                        return json_incref(t);
                v = json_object_get(defs, s);
                return v ? mg_avro_inline(v, defs, seen) : NULL;
        }
        if (json_is_array(t)) {
                out = json_array();
                json_array_foreach(t, i, v) {
                        c = mg_avro_inline(v, defs, seen);
                        if (!c || json_array_append_new(out, c)) {
                                json_decref(out);
                                return NULL;
                        }
                }
                return out;
        }
        out = json_object();
        if (!out)
                return NULL;
        name = json_object_get(t, "name");
        if (json_is_string(name) &&
            json_object_set(seen, json_string_value(name), json_true()))
                goto fail;
        json_object_foreach(t, key, v) {
                if (!strcmp(key, "items") || !strcmp(key, "values")) {
                        c = mg_avro_inline(v, defs, seen);
                } else if (!strcmp(key, "fields")) {
                        json_t *f;

                        c = json_array();
                        json_array_foreach(v, i, f) {
                                json_t *fo = json_object();
                                json_t *ft = mg_avro_inline(
                                        json_object_get(f, "type"), defs, seen);

                                if (!fo || !ft ||
                                    json_object_set(fo, "name",
                                                    json_object_get(f,
                                                                    "name")) ||
                                    json_object_set_new(fo, "type", ft) ||
                                    json_array_append_new(c, fo)) {
                                        if (!fo)
                                                json_decref(ft);
                                        json_decref(c);
                                        goto fail;
                                }
                        }
                } else {
                        c = json_incref(v);
                }
                if (!c || json_object_set_new(out, key, c))
                        goto fail;
        }
        return out;
fail:
        json_decref(out);
        return NULL;
}

/* Build ws->projected and ws->wmap[].pidx. */
static mg_err_t mg_avro_project(struct mg_avro_schema *ws, char *errstr,
                                size_t errstr_size) {
        const struct mg_avro_reader *rd = ws->rd;
        json_t *out = NULL, *seen = NULL, *fields = NULL, *rfields, *f, *fo;
        json_t *ft;
        avro_value_iface_t *iface = NULL;
        char *text = NULL;
        mg_err_t err = MG_OK;
        size_t i;
        int k = 0;

        out = json_object();
        seen = json_object();
        fields = json_array();
        if (!out || !seen || !fields ||
            json_object_set(out, "name", json_object_get(rd->pcf, "name")) ||
            json_object_set(out, "type", json_object_get(rd->pcf, "type")) ||
            json_object_set(out, "fields", fields) ||
            json_object_set(seen, rd->fullname, json_true()))
                goto nomem;
        rfields = json_object_get(rd->pcf, "fields");
        json_array_foreach(rfields, i, f) {
                const char *name =
                        json_string_value(json_object_get(f, "name"));

                /* The writer field Avro C's resolver pairs with this one. */
                ws->wmap[i].widx =
                        avro_schema_record_field_get_index(ws->schema, name);
                if (ws->wmap[i].widx < 0) {
                        if (!rd->fields[i].def) {
                                err = mg_err_set(MG_ERR_INVALID, errstr,
                                                 errstr_size,
                                                 "schema %s lacks field %s, "
                                                 "which has no default in "
                                                 "the reader schema",
                                                 ws->label, name);
                                goto out;
                        }
                        ws->wmap[i].pidx = -1;
                        continue;
                }
                ft = mg_avro_inline(json_object_get(f, "type"), rd->defs,
                                    seen);
                fo = json_object();
                if (!ft || !fo || json_array_append_new(fields, fo) ||
                    json_object_set(fo, "name", json_object_get(f, "name")) ||
                    json_object_set_new(fo, "type", ft)) {
                        if (!fo)
                                json_decref(ft);
                        goto nomem;
                }
                ws->wmap[i].pidx = k++;
        }
        text = json_dumps(out, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!text)
                goto nomem;
        if (avro_schema_from_json_length(text, strlen(text), &ws->projected)) {
                ws->projected = NULL;
                err = mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                 "schema %s: projected reader schema does "
                                 "not parse: %s",
                                 ws->label, avro_strerror());
                goto out;
        }
        /* Resolve once now, so an incompatible writer is refused here. */
        iface = avro_resolved_writer_new(ws->schema, ws->projected);
        if (!iface) {
                err = mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                 "schema %s does not resolve against reader "
                                 "%s: %s",
                                 ws->label, rd->fullname, avro_strerror());
                goto out;
        }
        goto out;
nomem:
        err = mg_err_set(MG_ERR_NOMEM, errstr, errstr_size, "out of memory");
out:
        if (iface)
                avro_value_iface_decref(iface);
        free(text);
        json_decref(fields);
        json_decref(out);
        json_decref(seen);
        return err;
}

/*
 * Compiling a writer schema for the scanner.
 */

struct mg_avro_compiler {
        struct mg_avro_node *nodes; /* growing array */
        size_t cnt;                 /* nodes in use */
        size_t cap;                 /* allocated */
        int depth;                  /* schema nesting, bounded */
};

static int mg_avro_compile(struct mg_avro_compiler *cc, avro_schema_t s) {
        struct mg_avro_node *nd;
        size_t i;
        int idx, n = 0, kid;

        s = mg_avro_unlink(s);
        if (is_avro_named_type(s))
                for (i = 0; i < cc->cnt; i++)
                        if (cc->nodes[i].schema == s)
                                return (int)i;
        if (cc->depth > 1000)
                return -1;
        if (cc->cnt == cc->cap) {
                size_t cap = cc->cap ? cc->cap * 2 : 16;
                struct mg_avro_node *p = realloc(cc->nodes, cap * sizeof(*p));

                if (!p)
                        return -1;
                cc->nodes = p;
                cc->cap = cap;
        }
        idx = (int)cc->cnt++;
        nd = &cc->nodes[idx];
        memset(nd, 0, sizeof(*nd));
        nd->schema = s;

        switch (avro_typeof(s)) {
        case AVRO_NULL:
                nd->op = MG_AVRO_OP_NULL;
                return idx;
        case AVRO_BOOLEAN:
                nd->op = MG_AVRO_OP_BOOL;
                return idx;
        case AVRO_INT32:
                nd->op = MG_AVRO_OP_INT;
                return idx;
        case AVRO_INT64:
                nd->op = MG_AVRO_OP_LONG;
                return idx;
        case AVRO_FLOAT:
                nd->op = MG_AVRO_OP_FLOAT;
                return idx;
        case AVRO_DOUBLE:
                nd->op = MG_AVRO_OP_DOUBLE;
                return idx;
        case AVRO_BYTES:
                nd->op = MG_AVRO_OP_BYTES;
                return idx;
        case AVRO_STRING:
                nd->op = MG_AVRO_OP_STRING;
                return idx;
        case AVRO_FIXED:
                nd->op = MG_AVRO_OP_FIXED;
                nd->n = avro_schema_fixed_size(s);
                return idx;
        case AVRO_ENUM:
                nd->op = MG_AVRO_OP_ENUM;
                nd->n = avro_schema_enum_number_of_symbols(s);
                return idx;
        case AVRO_ARRAY:
        case AVRO_MAP:
                nd->op = is_avro_array(s) ? MG_AVRO_OP_ARRAY : MG_AVRO_OP_MAP;
                n = 1;
                break;
        case AVRO_UNION:
                nd->op = MG_AVRO_OP_UNION;
                n = (int)avro_schema_union_size(s);
                break;
        case AVRO_RECORD:
                nd->op = MG_AVRO_OP_RECORD;
                n = (int)avro_schema_record_size(s);
                nd->names = calloc(n ? (size_t)n : 1, sizeof(*nd->names));
                if (!nd->names)
                        return -1;
                break;
        default:
                return -1;
        }
        nd->n = n;
        nd->kids = calloc(n ? (size_t)n : 1, sizeof(*nd->kids));
        if (!nd->kids)
                return -1;
        cc->depth++;
        for (i = 0; i < (size_t)n; i++) {
                avro_schema_t ks;

                if (is_avro_array(s))
                        ks = avro_schema_array_items(s);
                else if (is_avro_map(s))
                        ks = avro_schema_map_values(s);
                else if (is_avro_union(s))
                        ks = avro_schema_union_branch(s, (int)i);
                else
                        ks = avro_schema_record_field_get_by_index(s, (int)i);
                kid = mg_avro_compile(cc, ks);
                if (kid < 0) {
                        cc->depth--;
                        return -1;
                }
                /* cc->nodes may have moved */
                cc->nodes[idx].kids[i] = kid;
                if (is_avro_record(s))
                        cc->nodes[idx].names[i] =
                                avro_schema_record_field_name(s, (int)i);
        }
        cc->depth--;
        return idx;
}

/* Fewest bytes a value of node i takes; a cycle counts as 0 (a safe
 * underestimate: min only bounds array counts). */
static size_t mg_avro_min_size(struct mg_avro_node *nodes, int i,
                               uint8_t *visiting) {
        struct mg_avro_node *nd = &nodes[i];
        size_t m = 0, k, best;
        int64_t j;

        if (visiting[i])
                return 0;
        switch (nd->op) {
        case MG_AVRO_OP_NULL:
                return 0;
        case MG_AVRO_OP_FLOAT:
                return 4;
        case MG_AVRO_OP_DOUBLE:
                return 8;
        case MG_AVRO_OP_FIXED:
                return (size_t)nd->n;
        case MG_AVRO_OP_UNION:
                visiting[i] = 1;
                best = SIZE_MAX;
                for (j = 0; j < nd->n; j++) {
                        k = mg_avro_min_size(nodes, nd->kids[j], visiting);
                        if (k < best)
                                best = k;
                }
                visiting[i] = 0;
                return 1 + (best == SIZE_MAX ? 0 : best);
        case MG_AVRO_OP_RECORD:
                visiting[i] = 1;
                for (j = 0; j < nd->n; j++) {
                        k = mg_avro_min_size(nodes, nd->kids[j], visiting);
                        m = m + k < m ? SIZE_MAX : m + k;
                }
                visiting[i] = 0;
                return m;
        default: /* one varint or byte at least */
                return 1;
        }
}

static void mg_avro_nodes_free(struct mg_avro_node *nodes, size_t cnt) {
        size_t i;

        for (i = 0; nodes && i < cnt; i++) {
                free(nodes[i].kids);
                free(nodes[i].names);
        }
        free(nodes);
}

static mg_err_t mg_avro_compile_schema(struct mg_avro_schema *ws,
                                       char *errstr, size_t errstr_size) {
        struct mg_avro_compiler cc = {NULL, 0, 0, 0};
        uint8_t *visiting = NULL;
        mg_err_t err = MG_OK;
        size_t i;

        if (mg_avro_compile(&cc, ws->schema) != 0) {
                err = mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                 "schema %s: cannot compile (too deep or out "
                                 "of memory)",
                                 ws->label);
                goto out;
        }
        visiting = calloc(cc.cnt, 1);
        if (!visiting) {
                err = mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                 "out of memory");
                goto out;
        }
        for (i = 0; i < cc.cnt; i++)
                cc.nodes[i].min = mg_avro_min_size(cc.nodes, (int)i, visiting);
        ws->nodes = cc.nodes;
        ws->node_cnt = cc.cnt;
        cc.nodes = NULL;
out:
        free(visiting);
        mg_avro_nodes_free(cc.nodes, cc.cnt);
        return err;
}

/*
 * Decode plans for the fast decoder (see the top of the file).
 *
 * Which writer types reach which reader types follows Avro C's resolver
 * (resolved-writer.c), which registration has already run on the pair:
 * a string only into a string, null only into null, an int into an int or
 * (promoted) a long, a long into a long, an enum into an enum of the same
 * name, an array into an array whose items resolve; into a reader union,
 * the first of its branches that takes the value; and a writer union
 * branch by branch, each branch against the whole reader type, where a
 * union with no branch that resolves does not resolve. A branch that does
 * not resolve is kept as a BAD op: Avro C accepts such a writer and fails
 * only when a message takes that branch. The plan is the ops of one record
 * field after another, so decoding needs no recursion but for unions and
 * arrays, and no lookup at all.
 */

static void mg_avro_dop_clear(struct mg_avro_dop *op) {
        int i;

        for (i = 0; op->kids && i < op->kid_cnt; i++)
                mg_avro_dop_clear(&op->kids[i]);
        free(op->kids);
        op->kids = NULL;
        op->kid_cnt = 0;
}

static void mg_avro_plan_free(struct mg_avro_dop *plan, size_t cnt) {
        size_t i;

        for (i = 0; plan && i < cnt; i++)
                mg_avro_dop_clear(&plan[i]);
        free(plan);
}

/* Build into op how the writer value of compiled node wnode reaches the
 * event member of ef, whose reader type is rs and kind is kind (scope: the
 * value is one item of the scopes). 1: it does; 0: Avro C's resolver would
 * not pair them; -1: out of memory. */
static int mg_avro_dop_build(const struct mg_avro_schema *ws,
                             struct mg_avro_dop *op, int wnode,
                             const struct mg_avro_efield *ef,
                             const struct mg_avro_wmap *wm,
                             enum mg_avro_fkind kind, int scope,
                             avro_schema_t rs) {
        const struct mg_avro_node *nd = &ws->nodes[wnode];
        int i, r, any = 0;

        memset(op, 0, sizeof(*op));
        op->kind = MG_AVRO_DOP_BAD;
        op->wnode = wnode;
        op->off = ef->off;
        op->name = ef->name;
        switch (nd->op) {
        case MG_AVRO_OP_NULL:
                if (kind == MG_AVRO_FK_OPTSTR && !scope)
                        op->kind = MG_AVRO_DOP_NULL;
                break;
        case MG_AVRO_OP_STRING:
                if (scope)
                        op->kind = MG_AVRO_DOP_SCOPE;
                else if (kind == MG_AVRO_FK_STR || kind == MG_AVRO_FK_OPTSTR)
                        op->kind = MG_AVRO_DOP_STR;
                break;
        case MG_AVRO_OP_INT:
                if (kind == MG_AVRO_FK_INT && !scope)
                        op->kind = MG_AVRO_DOP_INT;
                else if (kind == MG_AVRO_FK_LONG && !scope)
                        op->kind = MG_AVRO_DOP_INT_LONG;
                break;
        case MG_AVRO_OP_LONG:
                if (kind == MG_AVRO_FK_LONG && !scope)
                        op->kind = MG_AVRO_DOP_LONG;
                break;
        case MG_AVRO_OP_ENUM:
                /* mg_avro_map_enums() made the map, and Avro C checked the
                 * names, for a plain enum field (and refuses any other
                 * writer type for an enum field). */
                if (kind == MG_AVRO_FK_ENUM && !scope && wm->sym_map &&
                    wm->sym_cnt == nd->n) {
                        op->kind = MG_AVRO_DOP_ENUM;
                        op->wm = wm;
                }
                break;
        case MG_AVRO_OP_ARRAY:
                if (kind != MG_AVRO_FK_SCOPES || scope)
                        break;
                op->kids = calloc(1, sizeof(*op->kids));
                if (!op->kids)
                        return -1;
                op->kid_cnt = 1;
                rs = mg_avro_unlink(rs);
                r = mg_avro_dop_build(ws, &op->kids[0], nd->kids[0], ef, wm,
                                      MG_AVRO_FK_STR, 1,
                                      is_avro_array(rs)
                                              ? avro_schema_array_items(rs)
                                              : rs);
                if (r <= 0) {
                        mg_avro_dop_clear(op);
                        return r;
                }
                op->kind = MG_AVRO_DOP_SCOPES;
                break;
        case MG_AVRO_OP_UNION:
                op->kids = calloc(nd->n ? (size_t)nd->n : 1,
                                  sizeof(*op->kids));
                if (!op->kids)
                        return -1;
                op->kid_cnt = (int)nd->n;
                for (i = 0; i < op->kid_cnt; i++) {
                        r = mg_avro_dop_build(ws, &op->kids[i], nd->kids[i],
                                              ef, wm, kind, scope, rs);
                        if (r < 0) {
                                mg_avro_dop_clear(op);
                                return -1;
                        }
                        any |= r;
                }
                if (!any) { /* "No branches in the writer are compatible" */
                        mg_avro_dop_clear(op);
                        break;
                }
                op->kind = MG_AVRO_DOP_UNION;
                op->rtype = avro_schema_type_name(mg_avro_unlink(rs));
                break;
        default:
                break;
        }
        return op->kind != MG_AVRO_DOP_BAD;
}

/* Build ws->plan and ws->dflt. A writer field the plan cannot take leaves
 * ws->plan NULL (the writer is then decoded by the reference decoder); with
 * the pairs Avro C accepts and our reader types that does not happen. */
static mg_err_t mg_avro_plan_build(struct mg_avro_schema *ws, char *errstr,
                                   size_t errstr_size) {
        const struct mg_avro_reader *rd = ws->rd;
        const struct mg_avro_node *root = &ws->nodes[0];
        struct mg_avro_dop *plan = NULL;
        mg_err_t err = MG_OK;
        size_t i;
        int r;

        assert(root->op == MG_AVRO_OP_RECORD &&
               (size_t)root->n == ws->wfield_cnt);
        plan = calloc(ws->wfield_cnt ? ws->wfield_cnt : 1, sizeof(*plan));
        ws->dflt = calloc(rd->field_cnt ? rd->field_cnt : 1,
                          sizeof(*ws->dflt));
        if (!plan || !ws->dflt)
                goto nomem;
        for (i = 0; i < ws->wfield_cnt; i++) {
                plan[i].kind = MG_AVRO_DOP_SKIP;
                plan[i].wnode = root->kids[i];
        }
        for (i = 0; i < rd->field_cnt; i++) {
                const struct mg_avro_rfield *rf = &rd->fields[i];
                const struct mg_avro_wmap *wm = &ws->wmap[i];

                if (wm->widx < 0) {
                        ws->dflt[ws->dflt_cnt++] = (int)i;
                        continue;
                }
                r = mg_avro_dop_build(
                        ws, &plan[wm->widx], root->kids[wm->widx], rf->ef, wm,
                        rf->ef->kind, 0,
                        avro_schema_record_field_get(ws->projected,
                                                     rf->name));
                if (r < 0)
                        goto nomem;
                if (r == 0)
                        goto out; /* reference decoder only */
        }
        ws->plan = plan;
        plan = NULL;
        goto out;
nomem:
        err = mg_err_set(MG_ERR_NOMEM, errstr, errstr_size, "out of memory");
out:
        mg_avro_plan_free(plan, ws->wfield_cnt);
        return err;
}

/*
 * Writer schemas.
 */

static void mg_avro_schema_free(struct mg_avro_schema *ws) {
        size_t i;

        if (!ws)
                return;
        if (ws->wmap && ws->rd)
                for (i = 0; i < ws->rd->field_cnt; i++)
                        free(ws->wmap[i].sym_map);
        free(ws->wmap);
        mg_avro_plan_free(ws->plan, ws->wfield_cnt);
        free(ws->dflt);
        mg_avro_nodes_free(ws->nodes, ws->node_cnt);
        free((void *)ws->wfields);
        if (ws->projected)
                avro_schema_decref(ws->projected);
        if (ws->schema)
                avro_schema_decref(ws->schema);
        free(ws->label);
        free(ws);
}

/* Map the writer's enum symbols of each enum field to our values. */
static mg_err_t mg_avro_map_enums(struct mg_avro_schema *ws, char *errstr,
                                  size_t errstr_size) {
        const struct mg_avro_reader *rd = ws->rd;
        size_t i;
        int k;

        for (i = 0; i < rd->field_cnt; i++) {
                const struct mg_avro_rfield *rf = &rd->fields[i];
                struct mg_avro_wmap *wm = &ws->wmap[i];
                avro_schema_t w;

                if (!rf->ef || rf->ef->kind != MG_AVRO_FK_ENUM ||
                    wm->pidx < 0)
                        continue;
                w = mg_avro_unlink(
                        avro_schema_record_field_get(ws->schema, rf->name));
                if (!is_avro_enum(w))
                        return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                          "schema %s: field %s must be an "
                                          "enum",
                                          ws->label, rf->name);
                wm->wenum = w;
                wm->sym_cnt = avro_schema_enum_number_of_symbols(w);
                wm->sym_map = calloc(wm->sym_cnt ? (size_t)wm->sym_cnt : 1,
                                     sizeof(int));
                if (!wm->sym_map)
                        return mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                          "out of memory");
                for (k = 0; k < wm->sym_cnt; k++) {
                        const char *sym = avro_schema_enum_get(w, k);

                        wm->sym_map[k] = mg_enum_parse(rf->ef->syms,
                                                       rf->ef->sym_cnt, sym,
                                                       strlen(sym));
                        if (wm->sym_map[k] < 0)
                                wm->sym_map[k] = rf->enum_def;
                }
        }
        return MG_OK;
}

/* Parse and prepare one writer schema. */
static mg_err_t mg_avro_schema_new(const struct mg_avro_registry *reg,
                                   const char *label, const char *json,
                                   size_t len, int32_t confluent_id,
                                   struct mg_avro_schema **wsp, char *errstr,
                                   size_t errstr_size) {
        struct mg_avro_schema *ws = NULL;
        json_t *root = NULL, *pcf = NULL;
        json_error_t jerr;
        mg_err_t err = MG_OK;
        const char *fullname;
        size_t i;

        ws = calloc(1, sizeof(*ws));
        if (!ws || !(ws->label = strdup(label))) {
                err = mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                 "out of memory");
                goto out;
        }
        ws->confluent_id = confluent_id;
        root = json_loadb(json, len, JSON_DECODE_ANY, &jerr);
        if (!root) {
                err = mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                 "schema %s is not valid JSON (line %d, "
                                 "column %d: %s)",
                                 label, jerr.line, jerr.column, jerr.text);
                goto out;
        }
        if (avro_schema_from_json_length(json, len, &ws->schema)) {
                ws->schema = NULL;
                err = mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                 "schema %s is not a valid Avro schema: %s",
                                 label, avro_strerror());
                goto out;
        }
        if (!is_avro_record(ws->schema)) {
                err = mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                 "schema %s is not a record", label);
                goto out;
        }
        if ((err = mg_avro_pcf_tree(root, &pcf, NULL, errstr, errstr_size)))
                goto out;
        if ((err = mg_avro_pcf_fingerprint(pcf, &ws->fp, errstr,
                                           errstr_size)))
                goto out;
        fullname = json_string_value(json_object_get(pcf, "name"));
        ws->rd = mg_avro_reader_find(reg, fullname);
        if (!ws->rd) {
                err = mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                 "schema %s: no reader schema for record %s",
                                 label, fullname);
                goto out;
        }
        ws->wmap = calloc(ws->rd->field_cnt ? ws->rd->field_cnt : 1,
                          sizeof(*ws->wmap));
        ws->wfield_cnt = avro_schema_record_size(ws->schema);
        ws->wfields = calloc(ws->wfield_cnt ? ws->wfield_cnt : 1,
                             sizeof(*ws->wfields));
        if (!ws->wmap || !ws->wfields) {
                err = mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                 "out of memory");
                goto out;
        }
        if ((err = mg_avro_project(ws, errstr, errstr_size)) ||
            (err = mg_avro_map_enums(ws, errstr, errstr_size)) ||
            (err = mg_avro_compile_schema(ws, errstr, errstr_size)))
                goto out;
        if (ws->rd->ev_type >= 0 &&
            (err = mg_avro_plan_build(ws, errstr, errstr_size)))
                goto out;
        if (ws->rd->ev_type >= 0)
                for (i = 0; i < ws->wfield_cnt; i++)
                        ws->wfields[i] = mg_avro_efield_find(
                                ws->rd->ev_type,
                                avro_schema_record_field_name(ws->schema,
                                                              (int)i));
        *wsp = ws;
        ws = NULL;
out:
        mg_avro_schema_free(ws);
        json_decref(root);
        json_decref(pcf);
        return err;
}

/*
 * The registry.
 */

mg_err_t mg_avro_registry_add(struct mg_avro_registry *reg, const char *label,
                              const char *json, size_t len,
                              int32_t confluent_id, char *errstr,
                              size_t errstr_size) {
        struct mg_avro_schema *ws = NULL;
        mg_err_t err;
        size_t i;

        if (!label || !*label || !json)
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "a schema needs a label and a text");
        if (confluent_id < -1)
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "schema %s: Confluent id %" PRId32
                                  " is negative",
                                  label, confluent_id);
        if ((err = mg_avro_schema_new(reg, label, json, len, confluent_id,
                                      &ws, errstr, errstr_size)))
                return err;
        reg->gen++;

        if (confluent_id >= 0)
                for (i = 0; i < reg->cnt; i++)
                        if (reg->schemas[i]->confluent_id == confluent_id)
                                reg->schemas[i]->confluent_id = -1;
        for (i = 0; i < reg->cnt; i++) {
                if (!strcmp(reg->schemas[i]->label, label)) {
                        mg_avro_schema_free(reg->schemas[i]);
                        reg->schemas[i] = ws;
                        return MG_OK;
                }
        }
        if (reg->cnt == reg->cap) {
                size_t cap = reg->cap ? reg->cap * 2 : 8;
                struct mg_avro_schema **p =
                        realloc(reg->schemas, cap * sizeof(*p));

                if (!p) {
                        mg_avro_schema_free(ws);
                        return mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                          "out of memory");
                }
                reg->schemas = p;
                reg->cap = cap;
        }
        reg->schemas[reg->cnt++] = ws;
        return MG_OK;
}

mg_err_t mg_avro_registry_add_file(struct mg_avro_registry *reg,
                                   const char *label, const char *path,
                                   int32_t confluent_id, char *errstr,
                                   size_t errstr_size) {
        FILE *fp = NULL;
        char *buf = NULL;
        size_t len;
        mg_err_t err;

        fp = fopen(path, "rb");
        if (!fp) {
                err = mg_err_set(MG_ERR_IO, errstr, errstr_size,
                                 "schema %s: cannot open %s: %s", label, path,
                                 strerror(errno));
                goto out;
        }
        buf = malloc(MG_AVRO_SCHEMA_FILE_MAX + 1);
        if (!buf) {
                err = mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                 "out of memory");
                goto out;
        }
        len = fread(buf, 1, MG_AVRO_SCHEMA_FILE_MAX + 1, fp);
        if (ferror(fp)) {
                err = mg_err_set(MG_ERR_IO, errstr, errstr_size,
                                 "schema %s: cannot read %s", label, path);
                goto out;
        }
        if (len > MG_AVRO_SCHEMA_FILE_MAX) {
                err = mg_err_set(MG_ERR_TOOBIG, errstr, errstr_size,
                                 "schema %s: %s is larger than %d bytes",
                                 label, path, MG_AVRO_SCHEMA_FILE_MAX);
                goto out;
        }
        err = mg_avro_registry_add(reg, label, buf, len, confluent_id, errstr,
                                   errstr_size);
out:
        if (fp)
                fclose(fp);
        free(buf);
        return err;
}

void mg_avro_registry_destroy(struct mg_avro_registry *reg) {
        size_t i;

        if (!reg)
                return;
        for (i = 0; i < reg->cnt; i++)
                mg_avro_schema_free(reg->schemas[i]);
        free(reg->schemas);
        for (i = 0; i < reg->reader_cnt; i++)
                mg_avro_reader_clear(&reg->readers[i]);
        free(reg->readers);
        free(reg);
}

mg_err_t mg_avro_registry_new(struct mg_avro_registry **regp, char *errstr,
                              size_t errstr_size) {
        const struct mg_avro_builtin *b;
        struct mg_avro_registry *reg;
        mg_err_t err = MG_OK;
        size_t n = 0;

        reg = calloc(1, sizeof(*reg));
        if (!reg) {
                err = mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                 "out of memory");
                goto out;
        }
        /* Readers: the unversioned labels ("auth"); "auth.v1" and the like
         * are older writers of the same record. */
        for (b = mg_avro_builtin_schemas; b->label; b++)
                n++;
        reg->readers = calloc(n ? n : 1, sizeof(*reg->readers));
        if (!reg->readers) {
                err = mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                 "out of memory");
                goto out;
        }
        for (b = mg_avro_builtin_schemas; b->label; b++) {
                struct mg_avro_reader *rd = &reg->readers[reg->reader_cnt];

                if (strchr(b->label, '.'))
                        continue;
                if ((err = mg_avro_reader_init(rd, b, errstr, errstr_size)))
                        goto out;
                reg->reader_cnt++;
                if (mg_avro_reader_find(reg, rd->fullname) != rd) {
                        err = mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                         "two current built-in schemas for "
                                         "record %s",
                                         rd->fullname);
                        goto out;
                }
        }
        for (b = mg_avro_builtin_schemas; b->label; b++)
                if ((err = mg_avro_registry_add(reg, b->label, b->json, b->len,
                                                b->confluent_id, errstr,
                                                errstr_size)))
                        goto out;
out:
        if (err) {
                mg_avro_registry_destroy(reg);
                reg = NULL;
        }
        *regp = reg;
        return err;
}

static const struct mg_avro_schema *
mg_avro_registry_label(const struct mg_avro_registry *reg, const char *label,
                       size_t *idxp) {
        size_t i;

        for (i = 0; i < reg->cnt; i++) {
                if (!strcmp(reg->schemas[i]->label, label)) {
                        if (idxp)
                                *idxp = i;
                        return reg->schemas[i];
                }
        }
        return NULL;
}

mg_err_t mg_avro_registry_fingerprint(const struct mg_avro_registry *reg,
                                      const char *label, uint64_t *fpp) {
        const struct mg_avro_schema *ws = mg_avro_registry_label(reg, label,
                                                                 NULL);

        if (!ws)
                return MG_ERR_NOT_FOUND;
        *fpp = ws->fp;
        return MG_OK;
}

/*
 * Framing ops.
 */

/* Registered schemas are few (a handful of versions per record), so the
 * lookups below are linear scans. */
static mg_err_t mg_avro_so_parse(const struct mg_avro_registry *reg,
                                 const uint8_t *hdr, size_t *idxp,
                                 char *errstr, size_t errstr_size) {
        uint64_t fp = 0;
        size_t i;

        for (i = 0; i < 8; i++)
                fp |= (uint64_t)hdr[2 + i] << (8 * i);
        for (i = 0; i < reg->cnt; i++) {
                if (reg->schemas[i]->fp == fp) {
                        *idxp = i;
                        return MG_OK;
                }
        }
        return mg_err_set(MG_ERR_UNKNOWN_SCHEMA, errstr, errstr_size,
                          "no writer schema has fingerprint 0x%016" PRIx64,
                          fp);
}

static mg_err_t mg_avro_so_write(const struct mg_avro_schema *ws,
                                 uint8_t *hdr, char *errstr,
                                 size_t errstr_size) {
        size_t i;

        hdr[0] = 0xc3;
        hdr[1] = 0x01;
        for (i = 0; i < 8; i++)
                hdr[2 + i] = (uint8_t)(ws->fp >> (8 * i));
        return MG_OK;
}

static mg_err_t mg_avro_cf_parse(const struct mg_avro_registry *reg,
                                 const uint8_t *hdr, size_t *idxp,
                                 char *errstr, size_t errstr_size) {
        uint32_t id = (uint32_t)hdr[1] << 24 | (uint32_t)hdr[2] << 16 |
                      (uint32_t)hdr[3] << 8 | hdr[4];
        size_t i;

        for (i = 0; i < reg->cnt; i++) {
                if (reg->schemas[i]->confluent_id >= 0 &&
                    (uint32_t)reg->schemas[i]->confluent_id == id) {
                        *idxp = i;
                        return MG_OK;
                }
        }
        return mg_err_set(MG_ERR_UNKNOWN_SCHEMA, errstr, errstr_size,
                          "no writer schema has Confluent id %" PRIu32, id);
}

static mg_err_t mg_avro_cf_write(const struct mg_avro_schema *ws,
                                 uint8_t *hdr, char *errstr,
                                 size_t errstr_size) {
        uint32_t id = (uint32_t)ws->confluent_id;

        if (ws->confluent_id < 0)
                return mg_err_set(MG_ERR_UNKNOWN_SCHEMA, errstr, errstr_size,
                                  "schema %s has no Confluent id", ws->label);
        hdr[0] = 0x00;
        hdr[1] = (uint8_t)(id >> 24);
        hdr[2] = (uint8_t)(id >> 16);
        hdr[3] = (uint8_t)(id >> 8);
        hdr[4] = (uint8_t)id;
        return MG_OK;
}

static const struct mg_avro_framing_ops mg_avro_framing_so = {
        "single-object", {0xc3, 0x01}, 2, MG_AVRO_SO_HDR_LEN,
        mg_avro_so_parse, mg_avro_so_write};
static const struct mg_avro_framing_ops mg_avro_framing_cf = {
        "Confluent", {0x00, 0x00}, 1, MG_AVRO_CF_HDR_LEN,
        mg_avro_cf_parse, mg_avro_cf_write};

/* Indexed by enum mg_avro_framing. */
static const struct mg_avro_framing_ops *const mg_avro_framings[] = {
        [MG_AVRO_SINGLE_OBJECT] = &mg_avro_framing_so,
        [MG_AVRO_CONFLUENT] = &mg_avro_framing_cf,
};

/* Pick the framing of a message by its first byte(s) and check its header
 * is complete. */
static mg_err_t mg_avro_framing_detect(const uint8_t *p, size_t len,
                                       const struct mg_avro_framing_ops **opsp,
                                       char *errstr, size_t errstr_size) {
        const struct mg_avro_framing_ops *ops = NULL;
        size_t i;

        if (len == 0)
                return mg_err_set(MG_ERR_TRUNCATED, errstr, errstr_size,
                                  "empty message");
        for (i = 0; i < sizeof(mg_avro_framings) / sizeof(*mg_avro_framings);
             i++)
                if (p[0] == mg_avro_framings[i]->magic[0])
                        ops = mg_avro_framings[i];
        if (!ops)
                return mg_err_set(MG_ERR_BAD_MAGIC, errstr, errstr_size,
                                  "first byte 0x%02x is neither "
                                  "single-object (0xc3 0x01) nor Confluent "
                                  "(0x00) framing",
                                  p[0]);
        if (len < ops->magic_len)
                return mg_err_set(MG_ERR_TRUNCATED, errstr, errstr_size,
                                  "message of %zu bytes ends inside the %s "
                                  "magic",
                                  len, ops->name);
        if (memcmp(p, ops->magic, ops->magic_len))
                return mg_err_set(MG_ERR_BAD_MAGIC, errstr, errstr_size,
                                  "bytes 0x%02x 0x%02x: 0xc3 must be "
                                  "followed by 0x01 (single-object version)",
                                  p[0], p[1]);
        if (len < ops->hdr_len)
                return mg_err_set(MG_ERR_TRUNCATED, errstr, errstr_size,
                                  "message of %zu bytes is shorter than the "
                                  "%zu-byte %s header",
                                  len, ops->hdr_len, ops->name);
        *opsp = ops;
        return MG_OK;
}

/*
 * The scanner: validates a body against a compiled writer schema before
 * Avro C sees it (see the top of the file for why).
 */

struct mg_avro_scan {
        const struct mg_avro_node *nodes; /* compiled writer schema */
        const uint8_t *p;     /* next unread byte */
        const uint8_t *end;   /* one past the body */
        const char *field;    /* innermost record field, for messages */
        int depth;            /* current nesting */
        char *errstr;         /* caller's error buffer */
        size_t errstr_size;
};

/* A declared length or count that the bytes left cannot hold: a plausible
 * size is a truncated message, an impossible one a corrupt message. */
static mg_err_t mg_avro_scan_overrun(struct mg_avro_scan *sc, const char *what,
                                     uint64_t need) {
        size_t left = (size_t)(sc->end - sc->p);

        if (need <= MG_AVRO_MSG_MAX)
                return mg_err_set(MG_ERR_TRUNCATED, sc->errstr,
                                  sc->errstr_size,
                                  "field %s: %s needs %" PRIu64
                                  " bytes, %zu are left",
                                  sc->field, what, need, left);
        return mg_err_set(MG_ERR_DECODE, sc->errstr, sc->errstr_size,
                          "field %s: %s of %" PRIu64
                          " bytes is impossible (%zu are left)",
                          sc->field, what, need, left);
}

static mg_err_t mg_avro_scan_varint(struct mg_avro_scan *sc, int64_t *vp) {
        uint64_t v = 0;
        int i;

        for (i = 0; i < 10; i++) {
                uint8_t b;

                if (sc->p == sc->end)
                        return mg_err_set(MG_ERR_TRUNCATED, sc->errstr,
                                          sc->errstr_size,
                                          "field %s: message ends inside a "
                                          "number",
                                          sc->field);
                b = *sc->p++;
                if (i == 9 && (b & 0xfe))
                        break;
                v |= (uint64_t)(b & 0x7f) << (7 * i);
                if (!(b & 0x80)) {
                        *vp = (int64_t)((v >> 1) ^ -(v & 1));
                        return MG_OK;
                }
        }
        return mg_err_set(MG_ERR_DECODE, sc->errstr, sc->errstr_size,
                          "field %s: variable-length number overflows 64 bits",
                          sc->field);
}

/* A zig-zag varint. Most numbers of an event (lengths, indexes, counts)
 * take one byte: that case is inline, the rest in mg_avro_scan_varint(). */
static inline mg_err_t mg_avro_scan_long(struct mg_avro_scan *sc,
                                         int64_t *vp) {
        if (sc->p != sc->end && *sc->p < 0x80) {
                uint64_t v = *sc->p++;

                *vp = (int64_t)((v >> 1) ^ -(v & 1));
                return MG_OK;
        }
        return mg_avro_scan_varint(sc, vp);
}

/* Strict UTF-8 (no overlong forms, surrogates or code points past
 * U+10FFFF), as the Avro specification requires of strings. */
static int mg_avro_utf8_valid(const uint8_t *s, size_t len) {
        const uint64_t hi = 0x8080808080808080ULL;
        uint64_t w, any = 0;
        size_t i = 0;

        /* Nearly every string is ASCII: check that eight bytes at a time
         * (the last word overlapping) before the full check. */
        if (len >= 8) {
                for (i = 0; i + 8 < len; i += 8) {
                        memcpy(&w, s + i, 8);
                        any |= w;
                }
                memcpy(&w, s + len - 8, 8);
                any |= w;
        } else {
                for (i = 0; i < len; i++)
                        any |= s[i];
        }
        if (!(any & hi))
                return 1;

        i = 0;
        while (i < len) {
                uint8_t c = s[i];
                size_t n;
                uint32_t cp;

                if (c < 0x80) {
                        i++;
                        continue;
                }
                if (c >= 0xc2 && c <= 0xdf) {
                        n = 1;
                        cp = c & 0x1f;
                } else if (c >= 0xe0 && c <= 0xef) {
                        n = 2;
                        cp = c & 0x0f;
                } else if (c >= 0xf0 && c <= 0xf4) {
                        n = 3;
                        cp = c & 0x07;
                } else {
                        return 0;
                }
                if (len - i - 1 < n)
                        return 0;
                for (size_t k = 1; k <= n; k++) {
                        if ((s[i + k] & 0xc0) != 0x80)
                                return 0;
                        cp = cp << 6 | (s[i + k] & 0x3f);
                }
                if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
                    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
                        return 0;
                i += n + 1;
        }
        return 1;
}

/* A bytes or string value; *sp and *lenp receive it. */
static inline mg_err_t mg_avro_scan_span(struct mg_avro_scan *sc,
                                         int is_string, const uint8_t **sp,
                                         size_t *lenp) {
        int64_t n;
        mg_err_t err;

        if ((err = mg_avro_scan_long(sc, &n)))
                return err;
        if (n < 0)
                return mg_err_set(MG_ERR_DECODE, sc->errstr, sc->errstr_size,
                                  "field %s: negative length %" PRId64,
                                  sc->field, n);
        if ((uint64_t)n > (size_t)(sc->end - sc->p))
                return mg_avro_scan_overrun(sc, is_string ? "string"
                                                          : "bytes",
                                            (uint64_t)n);
        if (is_string && !mg_avro_utf8_valid(sc->p, (size_t)n))
                return mg_err_set(MG_ERR_DECODE, sc->errstr, sc->errstr_size,
                                  "field %s: string is not valid UTF-8",
                                  sc->field);
        *sp = sc->p;
        *lenp = (size_t)n;
        sc->p += n;
        return MG_OK;
}

static mg_err_t mg_avro_scan_bytes(struct mg_avro_scan *sc, int is_string) {
        const uint8_t *s;
        size_t len;

        return mg_avro_scan_span(sc, is_string, &s, &len);
}

static mg_err_t mg_avro_scan_int(struct mg_avro_scan *sc, int64_t *vp) {
        mg_err_t err;

        if ((err = mg_avro_scan_long(sc, vp)))
                return err;
        if (*vp < INT32_MIN || *vp > INT32_MAX)
                return mg_err_set(MG_ERR_DECODE, sc->errstr, sc->errstr_size,
                                  "field %s: %" PRId64 " does not fit an int",
                                  sc->field, *vp);
        return MG_OK;
}

/* The index of a symbol of an enum of cnt symbols. */
static mg_err_t mg_avro_scan_enum(struct mg_avro_scan *sc, int64_t cnt,
                                  int64_t *vp) {
        mg_err_t err;

        if ((err = mg_avro_scan_long(sc, vp)))
                return err;
        if (*vp < 0 || *vp >= cnt)
                return mg_err_set(MG_ERR_BAD_ENUM, sc->errstr,
                                  sc->errstr_size,
                                  "field %s: enum index %" PRId64
                                  " is out of range (%" PRId64 " symbols)",
                                  sc->field, *vp, cnt);
        return MG_OK;
}

/* The branch of a union of cnt branches. */
static mg_err_t mg_avro_scan_branch(struct mg_avro_scan *sc, int64_t cnt,
                                    int64_t *vp) {
        mg_err_t err;

        if ((err = mg_avro_scan_long(sc, vp)))
                return err;
        if (*vp < 0 || *vp >= cnt)
                return mg_err_set(MG_ERR_DECODE, sc->errstr, sc->errstr_size,
                                  "field %s: union branch %" PRId64
                                  " is out of range (%" PRId64 " branches)",
                                  sc->field, *vp, cnt);
        return MG_OK;
}

static mg_err_t mg_avro_scan_node(struct mg_avro_scan *sc, int idx);

/* The header of one block of an array or map whose items take at least
 * item_min bytes each: *cntp items follow (0: the end of the value), in
 * *bsizep bytes if the writer said (else -1). *totalp counts the items of
 * the value so far. */
static mg_err_t mg_avro_scan_block(struct mg_avro_scan *sc, size_t item_min,
                                   uint64_t *totalp, int64_t *cntp,
                                   int64_t *bsizep) {
        int64_t cnt, bsize = -1;
        mg_err_t err;

        *cntp = 0;
        *bsizep = -1;
        if ((err = mg_avro_scan_long(sc, &cnt)))
                return err;
        if (cnt == 0)
                return MG_OK;
        if (cnt < 0) { /* a negative count is followed by a size */
                if (cnt == INT64_MIN)
                        return mg_err_set(MG_ERR_DECODE, sc->errstr,
                                          sc->errstr_size,
                                          "field %s: bad block count",
                                          sc->field);
                cnt = -cnt;
                if ((err = mg_avro_scan_long(sc, &bsize)))
                        return err;
                if (bsize < 0)
                        return mg_err_set(MG_ERR_DECODE, sc->errstr,
                                          sc->errstr_size,
                                          "field %s: negative block size",
                                          sc->field);
                if ((uint64_t)bsize > (size_t)(sc->end - sc->p))
                        return mg_avro_scan_overrun(sc, "block",
                                                    (uint64_t)bsize);
        }
        if (item_min > 0 &&
            (uint64_t)cnt > (size_t)(sc->end - sc->p) / item_min)
                return mg_avro_scan_overrun(
                        sc, "item count",
                        (uint64_t)cnt > UINT64_MAX / item_min
                                ? UINT64_MAX
                                : (uint64_t)cnt * item_min);
        *totalp += (uint64_t)cnt;
        if (*totalp > MG_AVRO_MSG_MAX)
                return mg_err_set(MG_ERR_DECODE, sc->errstr, sc->errstr_size,
                                  "field %s: more than %d items", sc->field,
                                  MG_AVRO_MSG_MAX);
        *cntp = cnt;
        *bsizep = bsize;
        return MG_OK;
}

/* After the items of a block that began at start: its declared size. */
static mg_err_t mg_avro_scan_block_end(struct mg_avro_scan *sc,
                                       const uint8_t *start, int64_t bsize) {
        if (bsize >= 0 && sc->p - start != bsize)
                return mg_err_set(MG_ERR_DECODE, sc->errstr, sc->errstr_size,
                                  "field %s: block size %" PRId64
                                  " does not match its %td bytes",
                                  sc->field, bsize, sc->p - start);
        return MG_OK;
}

/* Array or map: blocks of items until a zero count. */
static mg_err_t mg_avro_scan_blocks(struct mg_avro_scan *sc,
                                    const struct mg_avro_node *nd) {
        size_t item_min = sc->nodes[nd->kids[0]].min +
                          (nd->op == MG_AVRO_OP_MAP ? 1 : 0);
        uint64_t total = 0;
        mg_err_t err;

        for (;;) {
                const uint8_t *start;
                int64_t cnt, bsize, j;

                if ((err = mg_avro_scan_block(sc, item_min, &total, &cnt,
                                              &bsize)) ||
                    cnt == 0)
                        return err;
                start = sc->p;
                for (j = 0; j < cnt; j++) {
                        if (nd->op == MG_AVRO_OP_MAP &&
                            (err = mg_avro_scan_bytes(sc, 1)))
                                return err;
                        if ((err = mg_avro_scan_node(sc, nd->kids[0])))
                                return err;
                }
                if ((err = mg_avro_scan_block_end(sc, start, bsize)))
                        return err;
        }
}

static mg_err_t mg_avro_scan_node(struct mg_avro_scan *sc, int idx) {
        const struct mg_avro_node *nd = &sc->nodes[idx];
        const char *saved;
        mg_err_t err = MG_OK;
        int64_t v, i;

        switch (nd->op) {
        case MG_AVRO_OP_NULL:
                return MG_OK;
        case MG_AVRO_OP_BOOL:
                if (sc->p == sc->end)
                        return mg_avro_scan_overrun(sc, "boolean", 1);
                if (*sc->p > 1)
                        return mg_err_set(MG_ERR_DECODE, sc->errstr,
                                          sc->errstr_size,
                                          "field %s: boolean byte 0x%02x",
                                          sc->field, *sc->p);
                sc->p++;
                return MG_OK;
        case MG_AVRO_OP_INT:
                return mg_avro_scan_int(sc, &v);
        case MG_AVRO_OP_LONG:
                return mg_avro_scan_long(sc, &v);
        case MG_AVRO_OP_FLOAT:
        case MG_AVRO_OP_DOUBLE:
        case MG_AVRO_OP_FIXED:
                i = nd->op == MG_AVRO_OP_FLOAT    ? 4
                    : nd->op == MG_AVRO_OP_DOUBLE ? 8
                                                  : nd->n;
                if ((uint64_t)i > (size_t)(sc->end - sc->p))
                        return mg_avro_scan_overrun(sc, "value", (uint64_t)i);
                sc->p += i;
                return MG_OK;
        case MG_AVRO_OP_BYTES:
        case MG_AVRO_OP_STRING:
                return mg_avro_scan_bytes(sc, nd->op == MG_AVRO_OP_STRING);
        case MG_AVRO_OP_ENUM:
                return mg_avro_scan_enum(sc, nd->n, &v);
        default:
                break;
        }

        if (++sc->depth > MG_AVRO_DEPTH_MAX) {
                err = mg_err_set(MG_ERR_DECODE, sc->errstr, sc->errstr_size,
                                 "field %s: nested more than %d levels deep",
                                 sc->field, MG_AVRO_DEPTH_MAX);
                goto out;
        }
        switch (nd->op) {
        case MG_AVRO_OP_ARRAY:
        case MG_AVRO_OP_MAP:
                err = mg_avro_scan_blocks(sc, nd);
                break;
        case MG_AVRO_OP_UNION:
                if ((err = mg_avro_scan_branch(sc, nd->n, &v)))
                        break;
                err = mg_avro_scan_node(sc, nd->kids[v]);
                break;
        case MG_AVRO_OP_RECORD:
                saved = sc->field;
                for (i = 0; i < nd->n && !err; i++) {
                        sc->field = nd->names[i];
                        err = mg_avro_scan_node(sc, nd->kids[i]);
                }
                sc->field = saved;
                break;
        default:
                assert(!"unreachable");
        }
out:
        sc->depth--;
        return err;
}

/*
 * Decoder.
 */

static void mg_avro_dslot_clear(struct mg_avro_dslot *slot) {
        if (slot->wval.self)
                avro_value_decref(&slot->wval);
        if (slot->rval.self)
                avro_value_decref(&slot->rval);
        if (slot->riface)
                avro_value_iface_decref(slot->riface);
        if (slot->giface)
                avro_value_iface_decref(slot->giface);
        memset(slot, 0, sizeof(*slot));
}

static mg_err_t mg_avro_dslot_build(struct mg_avro_dslot *slot,
                                    const struct mg_avro_schema *ws,
                                    char *errstr, size_t errstr_size) {
        slot->giface = avro_generic_class_from_schema(ws->projected);
        slot->riface = avro_resolved_writer_new(ws->schema, ws->projected);
        if (!slot->giface || !slot->riface ||
            avro_generic_value_new(slot->giface, &slot->rval) ||
            avro_resolved_writer_new_value(slot->riface, &slot->wval)) {
                mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                           "schema %s: cannot set up the resolver: %s",
                           ws->label, avro_strerror());
                mg_avro_dslot_clear(slot);
                return MG_ERR_NOMEM;
        }
        avro_resolved_writer_set_dest(&slot->wval, &slot->rval);
        slot->ready = 1;
        return MG_OK;
}

mg_err_t mg_avro_decoder_new(const struct mg_avro_registry *reg,
                             struct mg_avro_decoder **decp, char *errstr,
                             size_t errstr_size) {
        struct mg_avro_decoder *dec;
        size_t i, pos_cnt = 0;
        mg_err_t err = MG_OK;

        dec = calloc(1, sizeof(*dec));
        if (!dec)
                goto nomem;
        dec->reg = reg;
        dec->gen = reg->gen;
        dec->slot_cnt = reg->cnt;
        dec->slots = calloc(reg->cnt ? reg->cnt : 1, sizeof(*dec->slots));
        for (i = 0; i < reg->cnt; i++)
                if (reg->schemas[i]->wfield_cnt > pos_cnt)
                        pos_cnt = reg->schemas[i]->wfield_cnt;
        dec->pos = calloc(pos_cnt ? pos_cnt : 1, sizeof(*dec->pos));
        dec->reader = avro_reader_memory("", 0);
        if (!dec->slots || !dec->pos || !dec->reader)
                goto nomem;
        *decp = dec;
        return MG_OK;
nomem:
        err = mg_err_set(MG_ERR_NOMEM, errstr, errstr_size, "out of memory");
        mg_avro_decoder_destroy(dec);
        *decp = NULL;
        return err;
}

void mg_avro_decoder_destroy(struct mg_avro_decoder *dec) {
        size_t i;

        if (!dec)
                return;
        for (i = 0; dec->slots && i < dec->slot_cnt; i++)
                mg_avro_dslot_clear(&dec->slots[i]);
        free(dec->slots);
        free(dec->pos);
        if (dec->reader)
                avro_reader_free(dec->reader);
        free(dec);
}

/* The string in v (an Avro string value). */
static mg_err_t mg_avro_get_str(avro_value_t *v, const char **sp,
                                size_t *lenp) {
        size_t size = 0;

        if (avro_value_get_string(v, sp, &size) || size == 0)
                return MG_ERR_DECODE;
        *lenp = size - 1; /* Avro C counts the NUL */
        return MG_OK;
}

/* Fill one event field from the projected value fv. */
static mg_err_t mg_avro_fill_field(struct mg_event *ev,
                                   const struct mg_avro_efield *ef,
                                   const struct mg_avro_wmap *wm,
                                   avro_value_t *fv, char *errstr,
                                   size_t errstr_size) {
        char *base = (char *)ev + ef->off;
        avro_value_t bv, item;
        const char *s;
        size_t len, n, j;
        int32_t i32;
        int64_t i64;
        int e;
        mg_err_t err;

        switch (ef->kind) {
        case MG_AVRO_FK_OPTSTR:
                if (avro_value_get_current_branch(fv, &bv))
                        goto broken;
                if (avro_value_get_type(&bv) == AVRO_NULL) {
                        *(const char **)base = NULL;
                        return MG_OK;
                }
                fv = &bv;
                /* fall through */
        case MG_AVRO_FK_STR:
                if (mg_avro_get_str(fv, &s, &len))
                        goto broken;
                return mg_event_set_str(ev, (const char **)base, ef->name, s,
                                        len, errstr, errstr_size);
        case MG_AVRO_FK_INT:
                if (avro_value_get_int(fv, &i32))
                        goto broken;
                *(int32_t *)base = i32;
                return MG_OK;
        case MG_AVRO_FK_LONG:
                if (avro_value_get_long(fv, &i64))
                        goto broken;
                *(int64_t *)base = i64;
                return MG_OK;
        case MG_AVRO_FK_ENUM:
                /* Avro C stored the writer's index; the scanner checked it
                 * against the writer's symbol count. */
                if (avro_value_get_enum(fv, &e) || e < 0 || e >= wm->sym_cnt)
                        goto broken;
                if (wm->sym_map[e] < 0)
                        return mg_err_set(MG_ERR_BAD_ENUM, errstr, errstr_size,
                                          "field %s: symbol %s is not known",
                                          ef->name,
                                          avro_schema_enum_get(wm->wenum, e));
                *(int *)base = wm->sym_map[e];
                return MG_OK;
        case MG_AVRO_FK_SCOPES:
                if (avro_value_get_size(fv, &n))
                        goto broken;
                for (j = 0; j < n; j++) {
                        if (avro_value_get_by_index(fv, j, &item, NULL) ||
                            mg_avro_get_str(&item, &s, &len))
                                goto broken;
                        if ((err = mg_event_add_scope(ev, s, len, errstr,
                                                      errstr_size)))
                                return err;
                }
                return MG_OK;
        }
broken:
        return mg_err_set(MG_ERR_DECODE, errstr, errstr_size,
                          "field %s: unexpected value from Avro C: %s",
                          ef->name, avro_strerror());
}

/* Fill one event field from the reader's declared default. */
static mg_err_t mg_avro_fill_default(struct mg_event *ev,
                                     const struct mg_avro_rfield *rf,
                                     char *errstr, size_t errstr_size) {
        const struct mg_avro_efield *ef = rf->ef;
        char *base = (char *)ev + ef->off;
        json_t *v;
        size_t i;
        mg_err_t err;

        switch (ef->kind) {
        case MG_AVRO_FK_STR:
        case MG_AVRO_FK_OPTSTR:
                if (json_is_null(rf->def)) {
                        *(const char **)base = NULL;
                        return MG_OK;
                }
                return mg_event_set_str(ev, (const char **)base, ef->name,
                                        json_string_value(rf->def),
                                        json_string_length(rf->def), errstr,
                                        errstr_size);
        case MG_AVRO_FK_INT:
                *(int32_t *)base = (int32_t)rf->def_num;
                return MG_OK;
        case MG_AVRO_FK_LONG:
                *(int64_t *)base = rf->def_num;
                return MG_OK;
        case MG_AVRO_FK_ENUM:
                *(int *)base = (int)rf->def_num;
                return MG_OK;
        case MG_AVRO_FK_SCOPES:
                json_array_foreach(rf->def, i, v) {
                        err = mg_event_add_scope(ev, json_string_value(v),
                                                 json_string_length(v),
                                                 errstr, errstr_size);
                        if (err)
                                return err;
                }
                return MG_OK;
        }
        return MG_OK;
}

/* The reference decoder: scan, Avro C's resolver, copy by name (see the top
 * of the file). */
static mg_err_t mg_avro_decode_reference(struct mg_avro_decoder *dec,
                                         size_t idx,
                                         const uint8_t *body, size_t blen,
                                         struct mg_event *ev, char *errstr,
                                         size_t errstr_size) {
        const struct mg_avro_schema *ws = dec->reg->schemas[idx];
        const struct mg_avro_reader *rd = ws->rd;
        struct mg_avro_dslot *slot;
        struct mg_avro_scan sc;
        avro_value_t fv;
        size_t i;
        mg_err_t err;

        sc.nodes = ws->nodes;
        sc.p = body;
        sc.end = body + blen;
        sc.field = rd->fullname;
        sc.depth = 0;
        sc.errstr = errstr;
        sc.errstr_size = errstr_size;
        if ((err = mg_avro_scan_node(&sc, 0)))
                return err;
        if (sc.p != sc.end)
                return mg_err_set(MG_ERR_DECODE, errstr, errstr_size,
                                  "%td bytes after the end of the %s record",
                                  sc.end - sc.p, rd->fullname);

        slot = &dec->slots[idx];
        if (!slot->ready &&
            (err = mg_avro_dslot_build(slot, ws, errstr, errstr_size)))
                return err;
        avro_reader_memory_set_source(dec->reader, (const char *)body,
                                      (int64_t)blen);
        if (avro_value_read(dec->reader, &slot->wval))
                return mg_err_set(MG_ERR_DECODE, errstr, errstr_size,
                                  "record %s (schema %s): %s", rd->fullname,
                                  ws->label, avro_strerror());
#ifndef NDEBUG
        /* Avro C must have stopped where the scanner did. Debug builds
         * only: the failing read makes Avro C format an error message,
         * which costs about 8% of a decode. */
        {
                char extra;

                if (avro_read(dec->reader, &extra, 1) == 0)
                        return mg_err_set(MG_ERR_DECODE, errstr, errstr_size,
                                          "record %s (schema %s): Avro C and "
                                          "the scanner disagree on its "
                                          "length",
                                          rd->fullname, ws->label);
        }
#endif

        mg_event_reset(ev, (enum mg_event_type)rd->ev_type);
        for (i = 0; i < rd->field_cnt; i++) {
                const struct mg_avro_rfield *rf = &rd->fields[i];
                const struct mg_avro_wmap *wm = &ws->wmap[i];

                if (wm->pidx < 0) {
                        err = mg_avro_fill_default(ev, rf, errstr,
                                                   errstr_size);
                } else if (avro_value_get_by_index(&slot->rval,
                                                   (size_t)wm->pidx, &fv,
                                                   NULL)) {
                        err = mg_err_set(MG_ERR_DECODE, errstr, errstr_size,
                                         "field %s: %s", rf->name,
                                         avro_strerror());
                } else {
                        err = mg_avro_fill_field(ev, rf->ef, wm, &fv, errstr,
                                                 errstr_size);
                }
                if (err)
                        return err;
        }
        return MG_OK;
}

/*
 * The fast decoder: interprets a writer's plan over the bytes (see the top
 * of the file and "Decode plans").
 */

/* State of one fast decode. */
struct mg_avro_fast {
        struct mg_avro_scan sc;   /* cursor, depth and error buffer, as the
                                   * scanner's (its helpers read them) */
        struct mg_event *ev;      /* the event being filled */
        int store;                /* store values into ev; 0 once one failed
                                   * (only the bytes are checked then) */
        mg_err_t ev_err;          /* first value ev could not hold; errstr
                                   * has its message */
        const struct mg_avro_dop *bad; /* first union whose writer branch
                                        * the reader cannot hold, or NULL */
        int64_t bad_branch;       /* that branch */
};

static mg_err_t mg_avro_fast_nested(struct mg_avro_fast *fx,
                                    const struct mg_avro_dop *op);

/* A value ev cannot hold: remember the first, store nothing more (so
 * errstr keeps its message), keep checking the bytes. */
static void mg_avro_fast_failed(struct mg_avro_fast *fx, mg_err_t err) {
        if (!fx->ev_err)
                fx->ev_err = err;
        fx->store = 0;
}

/* Run one op over the value at sc.p. Returns the errors of the bytes (as
 * the scanner would, at the same place and with the same message); a value
 * the event cannot hold, and a union branch the reader cannot hold, are
 * noted in fx instead, and the walk goes on. The leaves (one value each,
 * nearly every field) are handled inline; skips, arrays and unions in
 * mg_avro_fast_nested(). */
static inline mg_err_t mg_avro_fast_op(struct mg_avro_fast *fx,
                                       const struct mg_avro_dop *op) {
        struct mg_avro_scan *sc = &fx->sc;
        void *dst = (char *)fx->ev + op->off;
        const uint8_t *s = NULL; /* set by mg_avro_scan_span() (gcc cannot */
        size_t len = 0;          /* tell once it is inlined) */
        int64_t v;
        mg_err_t err;

        switch (op->kind) {
        case MG_AVRO_DOP_NULL:
                if (fx->store)
                        *(const char **)dst = NULL;
                return MG_OK;
        case MG_AVRO_DOP_STR:
        case MG_AVRO_DOP_SCOPE:
                if ((err = mg_avro_scan_span(sc, 1, &s, &len)))
                        return err;
                if (!fx->store)
                        return MG_OK;
                if (op->kind == MG_AVRO_DOP_STR)
                        err = mg_event_set_str(fx->ev, (const char **)dst,
                                               op->name, (const char *)s, len,
                                               sc->errstr, sc->errstr_size);
                else
                        err = mg_event_add_scope(fx->ev, (const char *)s, len,
                                                 sc->errstr, sc->errstr_size);
                if (err)
                        mg_avro_fast_failed(fx, err);
                return MG_OK;
        case MG_AVRO_DOP_INT:
        case MG_AVRO_DOP_INT_LONG:
                if ((err = mg_avro_scan_int(sc, &v)))
                        return err;
                if (fx->store && op->kind == MG_AVRO_DOP_INT)
                        *(int32_t *)dst = (int32_t)v;
                else if (fx->store)
                        *(int64_t *)dst = v;
                return MG_OK;
        case MG_AVRO_DOP_LONG:
                if ((err = mg_avro_scan_long(sc, &v)))
                        return err;
                if (fx->store)
                        *(int64_t *)dst = v;
                return MG_OK;
        case MG_AVRO_DOP_ENUM:
                if ((err = mg_avro_scan_enum(sc, sc->nodes[op->wnode].n, &v)))
                        return err;
                if (!fx->store)
                        return MG_OK;
                if (op->wm->sym_map[v] < 0)
                        mg_avro_fast_failed(
                                fx, mg_err_set(MG_ERR_BAD_ENUM, sc->errstr,
                                               sc->errstr_size,
                                               "field %s: symbol %s is not "
                                               "known",
                                               op->name,
                                               avro_schema_enum_get(
                                                       op->wm->wenum,
                                                       (int)v)));
                else
                        *(int *)dst = op->wm->sym_map[v];
                return MG_OK;
        default:
                return mg_avro_fast_nested(fx, op);
        }
}

/* The scopes: mg_avro_scan_blocks() with the item op for each item. */
static mg_err_t mg_avro_fast_blocks(struct mg_avro_fast *fx,
                                    const struct mg_avro_dop *op) {
        struct mg_avro_scan *sc = &fx->sc;
        const struct mg_avro_node *nd = &sc->nodes[op->wnode];
        size_t item_min = sc->nodes[nd->kids[0]].min;
        uint64_t total = 0;
        mg_err_t err;

        for (;;) {
                const uint8_t *start;
                int64_t cnt, bsize, j;

                if ((err = mg_avro_scan_block(sc, item_min, &total, &cnt,
                                              &bsize)) ||
                    cnt == 0)
                        return err;
                start = sc->p;
                for (j = 0; j < cnt; j++)
                        if ((err = mg_avro_fast_op(fx, &op->kids[0])))
                                return err;
                if ((err = mg_avro_scan_block_end(sc, start, bsize)))
                        return err;
        }
}

/* mg_avro_fast_op() for SKIP, SCOPES and UNION. */
static mg_err_t mg_avro_fast_nested(struct mg_avro_fast *fx,
                                    const struct mg_avro_dop *op) {
        struct mg_avro_scan *sc = &fx->sc;
        const struct mg_avro_dop *kid;
        int64_t v;
        mg_err_t err;

        if (op->kind == MG_AVRO_DOP_SKIP)
                return mg_avro_scan_node(sc, op->wnode);
        assert(op->kind == MG_AVRO_DOP_SCOPES ||
               op->kind == MG_AVRO_DOP_UNION);

        /* Arrays and unions nest, as in mg_avro_scan_node(). */
        if (++sc->depth > MG_AVRO_DEPTH_MAX) {
                err = mg_err_set(MG_ERR_DECODE, sc->errstr, sc->errstr_size,
                                 "field %s: nested more than %d levels deep",
                                 sc->field, MG_AVRO_DEPTH_MAX);
                goto out;
        }
        if (op->kind == MG_AVRO_DOP_SCOPES) {
                err = mg_avro_fast_blocks(fx, op);
                goto out;
        }
        if ((err = mg_avro_scan_branch(sc, sc->nodes[op->wnode].n, &v)))
                goto out;
        kid = &op->kids[v];
        if (kid->kind != MG_AVRO_DOP_BAD) {
                err = mg_avro_fast_op(fx, kid);
                goto out;
        }
        /* Avro C fails here, after its scan: the bytes decide first. */
        if (!fx->bad) {
                fx->bad = op;
                fx->bad_branch = v;
        }
        fx->store = 0;
        err = mg_avro_scan_node(sc, kid->wnode);
out:
        sc->depth--;
        return err;
}

/* A value could not be stored. The reference decoder fills the event in
 * reader order and reports the first failure in that order, and as every
 * string shares the arena, which field fails can depend on the order. So
 * replay the fields in reader order from where the first pass found them:
 * the same bytes, the reference's order and its error. Costs a second pass
 * for messages that go to the dead-letter queue only. */
static mg_err_t mg_avro_fast_replay(struct mg_avro_decoder *dec,
                                    const struct mg_avro_schema *ws,
                                    struct mg_avro_fast *fx) {
        const struct mg_avro_reader *rd = ws->rd;
        mg_err_t err = MG_OK;
        size_t i;

        mg_event_reset(fx->ev, (enum mg_event_type)rd->ev_type);
        fx->store = 1;
        fx->ev_err = MG_OK;
        for (i = 0; i < rd->field_cnt && !err; i++) {
                int w = ws->wmap[i].widx;

                if (w < 0) {
                        err = mg_avro_fill_default(fx->ev, &rd->fields[i],
                                                   fx->sc.errstr,
                                                   fx->sc.errstr_size);
                        continue;
                }
                fx->sc.p = dec->pos[w];
                fx->sc.field = ws->nodes[0].names[w];
                err = mg_avro_fast_op(fx, &ws->plan[w]);
                assert(!err); /* these bytes passed the first pass */
                if (!err)
                        err = fx->ev_err;
        }
        return err;
}

static mg_err_t mg_avro_decode_fast(struct mg_avro_decoder *dec,
                                    const struct mg_avro_schema *ws,
                                    const uint8_t *body, size_t blen,
                                    struct mg_event *ev, char *errstr,
                                    size_t errstr_size) {
        const struct mg_avro_reader *rd = ws->rd;
        const struct mg_avro_node *root = &ws->nodes[0];
        struct mg_avro_fast fx;
        mg_err_t err;
        size_t i;

        fx.sc.nodes = ws->nodes;
        fx.sc.p = body;
        fx.sc.end = body + blen;
        fx.sc.field = rd->fullname;
        fx.sc.depth = 1; /* inside the root record, as the scanner at its
                          * fields */
        fx.sc.errstr = errstr;
        fx.sc.errstr_size = errstr_size;
        fx.ev = ev;
        fx.store = 1;
        fx.ev_err = MG_OK;
        fx.bad = NULL;
        fx.bad_branch = 0;

        mg_event_reset(ev, (enum mg_event_type)rd->ev_type);
        for (i = 0; i < ws->wfield_cnt; i++) {
                dec->pos[i] = fx.sc.p;
                fx.sc.field = root->names[i];
                if ((err = mg_avro_fast_op(&fx, &ws->plan[i])))
                        return err;
        }
        if (fx.sc.p != fx.sc.end)
                return mg_err_set(MG_ERR_DECODE, errstr, errstr_size,
                                  "%td bytes after the end of the %s record",
                                  fx.sc.end - fx.sc.p, rd->fullname);
        if (fx.bad) /* Avro C's message, behind the reference's prefix */
                return mg_err_set(MG_ERR_DECODE, errstr, errstr_size,
                                  "record %s (schema %s): Writer union "
                                  "branch %" PRId64 " is incompatible with "
                                  "reader schema \"%s\"",
                                  rd->fullname, ws->label, fx.bad_branch,
                                  fx.bad->rtype);
        if (!fx.ev_err) {
                for (i = 0; i < ws->dflt_cnt; i++)
                        if (mg_avro_fill_default(ev, &rd->fields[ws->dflt[i]],
                                                 errstr, errstr_size))
                                break;
                if (i == ws->dflt_cnt)
                        return MG_OK;
        }
        return mg_avro_fast_replay(dec, ws, &fx);
}

mg_err_t mg_avro_decode(struct mg_avro_decoder *dec, const void *buf,
                        size_t len, struct mg_event *ev, char *errstr,
                        size_t errstr_size) {
        const struct mg_avro_framing_ops *ops = NULL;
        const struct mg_avro_schema *ws;
        const uint8_t *p = buf;
        size_t idx;
        mg_err_t err;

        if (len > MG_AVRO_MSG_MAX)
                return mg_err_set(MG_ERR_TOOBIG, errstr, errstr_size,
                                  "message is %zu bytes, the limit is %d",
                                  len, MG_AVRO_MSG_MAX);
        if (dec->gen != dec->reg->gen)
                return mg_err_set(MG_ERR_FATAL, errstr, errstr_size,
                                  "the schema registry changed after this "
                                  "decoder was created");
        if ((err = mg_avro_framing_detect(p, len, &ops, errstr, errstr_size)) ||
            (err = ops->parse(dec->reg, p, &idx, errstr, errstr_size)))
                return err;
        assert(idx < dec->slot_cnt);
        ws = dec->reg->schemas[idx];
        if (ws->rd->ev_type < 0)
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "writer schema %s (record %s) is not an "
                                  "event record; it cannot be decoded into "
                                  "an event",
                                  ws->label, ws->rd->fullname);
        if (dec->use_reference || !ws->plan)
                return mg_avro_decode_reference(dec, idx, p + ops->hdr_len,
                                                len - ops->hdr_len, ev,
                                                errstr, errstr_size);
        return mg_avro_decode_fast(dec, ws, p + ops->hdr_len,
                                   len - ops->hdr_len, ev, errstr,
                                   errstr_size);
}

void mg_avro_decoder_use_reference(struct mg_avro_decoder *dec, int on) {
        dec->use_reference = on != 0;
}

/*
 * Encoder.
 */

mg_err_t mg_avro_encoder_new(const struct mg_avro_registry *reg,
                             enum mg_avro_framing framing,
                             struct mg_avro_encoder **encp, char *errstr,
                             size_t errstr_size) {
        struct mg_avro_encoder *enc = NULL;
        mg_err_t err;

        if ((unsigned)framing >=
            sizeof(mg_avro_framings) / sizeof(*mg_avro_framings)) {
                err = mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                 "unknown framing %d", (int)framing);
                goto fail;
        }
        enc = calloc(1, sizeof(*enc));
        if (!enc)
                goto nomem;
        enc->reg = reg;
        enc->gen = reg->gen;
        enc->ops = mg_avro_framings[framing];
        enc->slot_cnt = reg->cnt;
        enc->slots = calloc(reg->cnt ? reg->cnt : 1, sizeof(*enc->slots));
        enc->writer = avro_writer_memory("", 0);
        if (!enc->slots || !enc->writer)
                goto nomem;
        *encp = enc;
        return MG_OK;
nomem:
        err = mg_err_set(MG_ERR_NOMEM, errstr, errstr_size, "out of memory");
fail:
        mg_avro_encoder_destroy(enc);
        *encp = NULL;
        return err;
}

void mg_avro_encoder_destroy(struct mg_avro_encoder *enc) {
        size_t i;

        if (!enc)
                return;
        for (i = 0; enc->slots && i < enc->slot_cnt; i++) {
                if (enc->slots[i].val.self)
                        avro_value_decref(&enc->slots[i].val);
                if (enc->slots[i].giface)
                        avro_value_iface_decref(enc->slots[i].giface);
        }
        free(enc->slots);
        if (enc->writer)
                avro_writer_free(enc->writer);
        free(enc);
}

/* Store s (NULL = null) into an Avro string or union-with-string value. */
static mg_err_t mg_avro_put_str(avro_value_t *fv, const char *s,
                                const char *name, char *errstr,
                                size_t errstr_size) {
        avro_schema_t us;
        avro_value_t bv;
        size_t i, n;

        if (avro_value_get_type(fv) == AVRO_UNION) {
                us = avro_value_get_schema(fv);
                n = avro_schema_union_size(us);
                for (i = 0; i < n; i++) {
                        avro_schema_t b = mg_avro_unlink(
                                avro_schema_union_branch(us, (int)i));

                        if (s ? is_avro_string(b) : is_avro_null(b))
                                break;
                }
                if (i == n || avro_value_set_branch(fv, (int)i, &bv))
                        goto nofit;
                if (!s)
                        return avro_value_set_null(&bv) ? MG_ERR_NOMEM : MG_OK;
                fv = &bv;
        }
        if (!s)
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "field %s is required by the writer schema",
                                  name);
        if (avro_value_get_type(fv) != AVRO_STRING)
                goto nofit;
        if (avro_value_set_string_len(fv, s, strlen(s) + 1))
                return mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                  "field %s: %s", name, avro_strerror());
        return MG_OK;
nofit:
        return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                          "field %s: the writer schema's type cannot hold %s",
                          name, s ? "a string" : "null");
}

/* Store one event field into the writer's field value fv. */
static mg_err_t mg_avro_put_field(const struct mg_event *ev,
                                  const struct mg_avro_efield *ef,
                                  avro_value_t *fv, char *errstr,
                                  size_t errstr_size) {
        const char *base = (const char *)ev + ef->off;
        const struct mg_event_auth *auth = &ev->u.auth;
        avro_value_t item;
        int64_t v;
        int e, k;
        mg_err_t err;

        switch (ef->kind) {
        case MG_AVRO_FK_STR:
        case MG_AVRO_FK_OPTSTR:
                return mg_avro_put_str(fv, *(const char *const *)base,
                                       ef->name, errstr, errstr_size);
        case MG_AVRO_FK_INT:
        case MG_AVRO_FK_LONG:
                v = ef->kind == MG_AVRO_FK_INT ? *(const int32_t *)base
                                               : *(const int64_t *)base;
                if (avro_value_get_type(fv) == AVRO_INT64)
                        return avro_value_set_long(fv, v) ? MG_ERR_NOMEM
                                                          : MG_OK;
                if (avro_value_get_type(fv) != AVRO_INT32)
                        break;
                if (v < INT32_MIN || v > INT32_MAX)
                        return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                          "field %s: %" PRId64
                                          " does not fit the writer's int",
                                          ef->name, v);
                return avro_value_set_int(fv, (int32_t)v) ? MG_ERR_NOMEM
                                                          : MG_OK;
        case MG_AVRO_FK_ENUM:
                e = *(const int *)base;
                if (avro_value_get_type(fv) != AVRO_ENUM)
                        break;
                if (e < 0 || e >= ef->sym_cnt)
                        return mg_err_set(MG_ERR_BAD_ENUM, errstr, errstr_size,
                                          "field %s: value %d is out of range",
                                          ef->name, e);
                k = avro_schema_enum_get_by_name(avro_value_get_schema(fv),
                                                 ef->syms[e]);
                if (k < 0)
                        return mg_err_set(MG_ERR_BAD_ENUM, errstr, errstr_size,
                                          "field %s: symbol %s is not in "
                                          "the writer schema",
                                          ef->name, ef->syms[e]);
                return avro_value_set_enum(fv, k) ? MG_ERR_NOMEM : MG_OK;
        case MG_AVRO_FK_SCOPES:
                if (avro_value_get_type(fv) != AVRO_ARRAY)
                        break;
                if (auth->scope_cnt < 0 ||
                    auth->scope_cnt > MG_EVENT_SCOPES_MAX)
                        return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                          "field scopes: bad count %d",
                                          auth->scope_cnt);
                for (k = 0; k < auth->scope_cnt; k++) {
                        if (!auth->scopes[k])
                                return mg_err_set(MG_ERR_INVALID, errstr,
                                                  errstr_size,
                                                  "field scopes: entry %d "
                                                  "is NULL",
                                                  k);
                        if (avro_value_append(fv, &item, NULL))
                                return mg_err_set(MG_ERR_NOMEM, errstr,
                                                  errstr_size,
                                                  "field scopes: %s",
                                                  avro_strerror());
                        if ((err = mg_avro_put_str(&item, auth->scopes[k],
                                                   "scopes", errstr,
                                                   errstr_size)))
                                return err;
                }
                return MG_OK;
        }
        return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                          "field %s: the writer schema's type does not fit "
                          "the event field",
                          ef->name);
}

mg_err_t mg_avro_encode(struct mg_avro_encoder *enc, const struct mg_event *ev,
                        const char *label, void *buf, size_t size,
                        size_t *lenp, char *errstr, size_t errstr_size) {
        const struct mg_avro_schema *ws;
        struct mg_avro_eslot *slot;
        const struct mg_avro_framing_ops *ops = enc->ops;
        uint8_t *out = buf;
        avro_value_t fv;
        size_t idx, i, cap;
        int rc;
        mg_err_t err;

        if (enc->gen != enc->reg->gen)
                return mg_err_set(MG_ERR_FATAL, errstr, errstr_size,
                                  "the schema registry changed after this "
                                  "encoder was created");
        if ((unsigned)ev->type >= MG_EVENT_TYPE__CNT)
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "event type %d is out of range",
                                  (int)ev->type);
        if (!label)
                label = mg_event_type_names[ev->type];
        ws = mg_avro_registry_label(enc->reg, label, &idx);
        if (!ws)
                return mg_err_set(MG_ERR_UNKNOWN_SCHEMA, errstr, errstr_size,
                                  "no writer schema labelled %s", label);
        if (ws->rd->ev_type != (int)ev->type)
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "schema %s (record %s) cannot carry a %s "
                                  "event",
                                  label, ws->rd->fullname,
                                  mg_event_type_names[ev->type]);
        if (size < ops->hdr_len)
                return mg_err_set(MG_ERR_TOOBIG, errstr, errstr_size,
                                  "buffer of %zu bytes cannot hold the %s "
                                  "header",
                                  size, ops->name);
        if ((err = ops->write(ws, out, errstr, errstr_size)))
                return err;

        assert(idx < enc->slot_cnt);
        slot = &enc->slots[idx];
        if (!slot->ready) {
                slot->giface = avro_generic_class_from_schema(ws->schema);
                if (!slot->giface ||
                    avro_generic_value_new(slot->giface, &slot->val)) {
                        if (slot->giface)
                                avro_value_iface_decref(slot->giface);
                        memset(slot, 0, sizeof(*slot));
                        return mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                          "schema %s: %s", label,
                                          avro_strerror());
                }
                slot->ready = 1;
        }
        avro_value_reset(&slot->val);
        for (i = 0; i < ws->wfield_cnt; i++) {
                if (!ws->wfields[i])
                        return mg_err_set(
                                MG_ERR_INVALID, errstr, errstr_size,
                                "schema %s: field %s has no counterpart in "
                                "struct mg_event",
                                label,
                                avro_schema_record_field_name(ws->schema,
                                                              (int)i));
                if (avro_value_get_by_index(&slot->val, i, &fv, NULL))
                        return mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                          "schema %s: %s", label,
                                          avro_strerror());
                if ((err = mg_avro_put_field(ev, ws->wfields[i], &fv, errstr,
                                             errstr_size)))
                        return err;
        }

        cap = size < MG_AVRO_MSG_MAX ? size : MG_AVRO_MSG_MAX;
        avro_writer_memory_set_dest(enc->writer, (const char *)out +
                                                         ops->hdr_len,
                                    (int64_t)(cap - ops->hdr_len));
        rc = avro_value_write(enc->writer, &slot->val);
        if (rc == ENOSPC)
                return mg_err_set(MG_ERR_TOOBIG, errstr, errstr_size,
                                  "encoded %s event does not fit in %zu bytes",
                                  mg_event_type_names[ev->type], cap);
        if (rc)
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "schema %s: %s", label, avro_strerror());
        *lenp = ops->hdr_len + (size_t)avro_writer_tell(enc->writer);
        return MG_OK;
}

/*
 * Registry access for other record types (mg_avro.h).
 */

mg_err_t mg_avro_registry_schema(const struct mg_avro_registry *reg,
                                 const char *label,
                                 struct avro_obj_t **schemap, uint64_t *fpp) {
        const struct mg_avro_schema *ws;

        if (!reg || !label)
                return MG_ERR_INVALID;
        ws = mg_avro_registry_label(reg, label, NULL);
        if (!ws)
                return MG_ERR_NOT_FOUND;
        if (schemap)
                *schemap = avro_schema_incref(ws->schema);
        if (fpp)
                *fpp = ws->fp;
        return MG_OK;
}
