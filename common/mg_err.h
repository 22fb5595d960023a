/*
 * mg_err.h — the one error enum of mintgate.
 *
 * Every function that can fail returns an mg_err_t and delivers results
 * through out-parameters; details for a person go to an errstr buffer the
 * caller owns (librdkafka's rd_kafka_conf_set() convention). Each code has a
 * short stable name (mg_err_name(), used in dead-letter headers, metrics and
 * JSON error objects) and a sentence (mg_err_str()).
 *
 * Ingest classifies failures with mg_err_class(): a *retry* error pauses
 * consumption and commits nothing; a *dead-letter* error parks the message
 * with its reason and moves on; anything else is fatal.
 */
#ifndef MG_ERR_H
#define MG_ERR_H

#include <stddef.h>

typedef enum mg_err {
        MG_OK = 0,
        MG_ERR_INVALID,        /* input failed validation */
        MG_ERR_TOOBIG,         /* a size cap was exceeded */
        MG_ERR_BAD_MAGIC,      /* unknown framing (first byte) */
        MG_ERR_UNKNOWN_SCHEMA, /* fingerprint or schema id not registered */
        MG_ERR_TRUNCATED,      /* message shorter than its framing/schema */
        MG_ERR_DECODE,         /* bytes do not decode under the schema */
        MG_ERR_BAD_ENUM,       /* enum symbol or index not known */
        MG_ERR_LATE,           /* event time too far behind */
        MG_ERR_NOMEM,          /* allocation failed */
        MG_ERR_IO,             /* file or socket I/O failed */
        MG_ERR_CONFIG,         /* bad configuration */
        MG_ERR_USAGE,          /* bad command line */
        MG_ERR_NOT_FOUND,      /* no such object */
        MG_ERR_RETRY,          /* transient: try again later */
        MG_ERR_TIMEOUT,        /* an operation timed out */
        MG_ERR_KAFKA,          /* Kafka client error */
        MG_ERR_REDIS,          /* Redis error */
        MG_ERR_FATAL,          /* unrecoverable */
        MG_ERR__CNT
} mg_err_t;

/* What ingest does with a message whose handling failed with this code. */
enum mg_err_class {
        MG_ERR_CLASS_OK,
        MG_ERR_CLASS_RETRY,       /* pause, commit nothing, try again */
        MG_ERR_CLASS_DEADLETTER,  /* park in the DLQ with the reason, commit */
        MG_ERR_CLASS_FATAL        /* stop the process */
};

/* Short stable snake_case name, e.g. "bad_magic". Never NULL. */
const char *mg_err_name(mg_err_t err);
/* One sentence describing the code. Never NULL. */
const char *mg_err_str(mg_err_t err);
enum mg_err_class mg_err_class(mg_err_t err);

/* snprintf into errstr when errstr is not NULL; returns err so callers can
 * write `return mg_err_set(MG_ERR_INVALID, errstr, size, "…", …);`. */
mg_err_t mg_err_set(mg_err_t err, char *errstr, size_t errstr_size,
                    const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

#endif /* MG_ERR_H */
