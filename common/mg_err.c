/*
 * mg_err.c — names and sentences for mg_err_t; one table so the two can
 * never drift apart.
 */
#include "mg_err.h"

#include <stdarg.h>
#include <stdio.h>

static const struct {
        const char *name;
        const char *desc;
        enum mg_err_class cls;
} mg_err_tab[MG_ERR__CNT] = {
        [MG_OK]                 = {"ok", "success", MG_ERR_CLASS_OK},
        [MG_ERR_INVALID]        = {"invalid", "input failed validation",
                                   MG_ERR_CLASS_DEADLETTER},
        [MG_ERR_TOOBIG]         = {"too_big", "a size limit was exceeded",
                                   MG_ERR_CLASS_DEADLETTER},
        [MG_ERR_BAD_MAGIC]      = {"bad_magic",
                                   "unknown message framing (magic byte)",
                                   MG_ERR_CLASS_DEADLETTER},
        [MG_ERR_UNKNOWN_SCHEMA] = {"unknown_schema",
                                   "writer schema fingerprint or id is not "
                                   "registered",
                                   MG_ERR_CLASS_DEADLETTER},
        [MG_ERR_TRUNCATED]      = {"truncated", "message is truncated",
                                   MG_ERR_CLASS_DEADLETTER},
        [MG_ERR_DECODE]         = {"decode",
                                   "message does not decode under its schema",
                                   MG_ERR_CLASS_DEADLETTER},
        [MG_ERR_BAD_ENUM]       = {"bad_enum", "unknown enum value",
                                   MG_ERR_CLASS_DEADLETTER},
        [MG_ERR_LATE]           = {"late", "event time is too far behind",
                                   MG_ERR_CLASS_DEADLETTER},
        [MG_ERR_NOMEM]          = {"no_memory", "out of memory",
                                   MG_ERR_CLASS_FATAL},
        [MG_ERR_IO]             = {"io", "I/O error", MG_ERR_CLASS_FATAL},
        [MG_ERR_CONFIG]         = {"config", "bad configuration",
                                   MG_ERR_CLASS_FATAL},
        [MG_ERR_USAGE]          = {"usage", "bad command line",
                                   MG_ERR_CLASS_FATAL},
        [MG_ERR_NOT_FOUND]      = {"not_found", "not found",
                                   MG_ERR_CLASS_FATAL},
        [MG_ERR_RETRY]          = {"retry", "temporary failure, retry",
                                   MG_ERR_CLASS_RETRY},
        [MG_ERR_TIMEOUT]        = {"timeout", "operation timed out",
                                   MG_ERR_CLASS_RETRY},
        [MG_ERR_KAFKA]          = {"kafka", "Kafka client error",
                                   MG_ERR_CLASS_RETRY},
        [MG_ERR_REDIS]          = {"redis", "Redis error", MG_ERR_CLASS_RETRY},
        [MG_ERR_FATAL]          = {"fatal", "unrecoverable error",
                                   MG_ERR_CLASS_FATAL},
};

const char *mg_err_name(mg_err_t err) {
        if ((unsigned)err >= MG_ERR__CNT)
                return "unknown";
        return mg_err_tab[err].name;
}

const char *mg_err_str(mg_err_t err) {
        if ((unsigned)err >= MG_ERR__CNT)
                return "unknown error";
        return mg_err_tab[err].desc;
}

enum mg_err_class mg_err_class(mg_err_t err) {
        if ((unsigned)err >= MG_ERR__CNT)
                return MG_ERR_CLASS_FATAL;
        return mg_err_tab[err].cls;
}

mg_err_t mg_err_set(mg_err_t err, char *errstr, size_t errstr_size,
                    const char *fmt, ...) {
        va_list ap;

        if (errstr && errstr_size > 0) {
                va_start(ap, fmt);
                vsnprintf(errstr, errstr_size, fmt, ap);
                va_end(ap);
        }
        return err;
}
