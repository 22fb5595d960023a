/*
 * mg_event.h — the typed event model shared by every stage.
 *
 * An event is one authentication, usage or external-signal record (the
 * records in schemas/X.avsc; DESIGN.md "Input events"). Ingest fills one from
 * Avro, `mintgate produce` and `replay` from a JSON line; scoring reads it.
 *
 * Design: a struct mg_event owns all its strings in a fixed arena inside the
 * struct, so decoding allocates nothing per event and an event can be reused
 * with mg_event_reset(). Every string is NUL-terminated; an absent optional
 * field is NULL. Every size is capped (the MG_EVENT_*_MAX constants) and
 * going over a cap is MG_ERR_TOOBIG naming the field — never a truncation.
 *
 * Enumerations are tables of names in the same order as the Avro enum
 * symbols, so an Avro enum index and our enum value are the same number for
 * the current reader schema.
 *
 * Thread-safety: functions touch only the event passed in; tables are const.
 */
#ifndef MG_EVENT_H
#define MG_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "mg_err.h"

/* Caps. An identity is a SPIFFE ID or an account name: SPIFFE allows 2048
 * bytes, real ones are under 200; 512 leaves room without letting one event
 * bloat Redis keys. Other strings are addresses, names and short details. */
#define MG_EVENT_IDENTITY_MAX 512
#define MG_EVENT_STR_MAX      1024 /* any other string field, in bytes */
#define MG_EVENT_SCOPES_MAX   64   /* scopes in one auth event */
#define MG_EVENT_ARENA_SIZE   16384 /* all strings of one event together */

/* Timestamps must lie in [MG_EVENT_TS_MIN, now + MG_EVENT_TS_MAX_FUTURE]:
 * earlier is a unit mistake (seconds sent as milliseconds), later is a
 * broken clock. */
#define MG_EVENT_TS_MIN        946684800000LL /* 2000-01-01T00:00:00Z */
#define MG_EVENT_TS_MAX_FUTURE (24LL * 3600 * 1000)

enum mg_event_type {
        MG_EVENT_AUTH,
        MG_EVENT_USAGE,
        MG_EVENT_SIGNAL,
        MG_EVENT_TYPE__CNT
};

enum mg_identity_kind {
        MG_IDENTITY_KIND_UNKNOWN,
        MG_IDENTITY_KIND_SERVICE_ACCOUNT,
        MG_IDENTITY_KIND_CI_RUNNER,
        MG_IDENTITY_KIND_INTEGRATION,
        MG_IDENTITY_KIND_AI_AGENT,
        MG_IDENTITY_KIND_WORKLOAD,
        MG_IDENTITY_KIND__CNT
};

enum mg_auth_method {
        MG_AUTH_METHOD_CLIENT_SECRET,
        MG_AUTH_METHOD_PRIVATE_KEY_JWT,
        MG_AUTH_METHOD_MTLS,
        MG_AUTH_METHOD_JWT_SVID,
        MG_AUTH_METHOD_X509_SVID,
        MG_AUTH_METHOD_OIDC_FEDERATION,
        MG_AUTH_METHOD_API_KEY,
        MG_AUTH_METHOD__CNT
};

enum mg_grant_type {
        MG_GRANT_CLIENT_CREDENTIALS,
        MG_GRANT_TOKEN_EXCHANGE,
        MG_GRANT_REFRESH_TOKEN,
        MG_GRANT_JWT_BEARER,
        MG_GRANT_AUTHORIZATION_CODE,
        MG_GRANT_DEVICE_CODE,
        MG_GRANT__CNT
};

enum mg_auth_outcome {
        MG_OUTCOME_SUCCESS,
        MG_OUTCOME_FAILURE,
        MG_OUTCOME__CNT
};

enum mg_signal_kind {
        MG_SIGNAL_SECRET_EXPOSED,
        MG_SIGNAL_CREDENTIAL_COMPROMISE,
        MG_SIGNAL_QUARANTINE,
        MG_SIGNAL_RELEASE,
        MG_SIGNAL__CNT
};

/* Name tables, index = enum value, same order as the Avro symbols. */
extern const char *const mg_event_type_names[MG_EVENT_TYPE__CNT];
extern const char *const mg_identity_kind_names[MG_IDENTITY_KIND__CNT];
extern const char *const mg_auth_method_names[MG_AUTH_METHOD__CNT];
extern const char *const mg_grant_type_names[MG_GRANT__CNT];
extern const char *const mg_auth_outcome_names[MG_OUTCOME__CNT];
extern const char *const mg_signal_kind_names[MG_SIGNAL__CNT];

/* Index of name (len bytes, not necessarily NUL-terminated) in a table of
 * cnt names, or -1. */
int mg_enum_parse(const char *const *names, int cnt, const char *name,
                  size_t len);

struct mg_event_auth {
        enum mg_identity_kind identity_kind; /* v1 writers: UNKNOWN */
        const char *client_id;               /* OAuth client, required */
        const char *source_ip;               /* textual IPv4/IPv6, required */
        const char *user_agent;              /* optional */
        enum mg_auth_method auth_method;
        enum mg_grant_type grant_type;
        const char *audience;                /* optional */
        const char *scopes[MG_EVENT_SCOPES_MAX]; /* requested/granted */
        int scope_cnt;
        enum mg_auth_outcome outcome;
        const char *failure_reason;          /* optional */
        const char *token_id;                /* optional: token issued */
        const char *parent_token_id;         /* optional: exchanged from */
};

struct mg_event_usage {
        const char *token_id;   /* optional */
        const char *resource;  /* required: API or audience used */
        const char *action;    /* required: e.g. "POST /releases" */
        const char *scope;     /* optional: scope exercised */
        const char *source_ip; /* optional */
        int32_t status;        /* protocol status, e.g. HTTP 201 */
        int64_t bytes;         /* payload size, >= 0 */
};

struct mg_event_signal {
        enum mg_signal_kind kind;
        int32_t severity;   /* 0..100 */
        const char *source; /* required: who raised it */
        const char *detail; /* optional */
};

/* Where a consumed event came from; topic is NULL for events not read from
 * Kafka (JSON lines, replay). */
struct mg_event_origin {
        const char *topic;
        int32_t partition;
        int64_t offset;
};

struct mg_event {
        enum mg_event_type type;
        const char *event_id;   /* required, producer-unique */
        int64_t ts_ms;          /* event time, epoch milliseconds UTC */
        const char *identity;   /* required, non-empty, <= IDENTITY_MAX */
        union {
                struct mg_event_auth auth;
                struct mg_event_usage usage;
                struct mg_event_signal signal;
        } u;
        struct mg_event_origin origin; /* filled by ingest */
        size_t arena_used;             /* bytes of arena in use */
        char arena[MG_EVENT_ARENA_SIZE]; /* storage for every string */
};

/* Clear ev (all strings NULL, numbers 0, enums their first value) and set
 * its type. Cheap: does not zero the arena. */
void mg_event_reset(struct mg_event *ev, enum mg_event_type type);

/* Copy len bytes of s into ev's arena and point *field at the copy.
 * name is the field's name for the error message. Rejects strings over the
 * field's cap (MG_EVENT_IDENTITY_MAX when field is &ev->identity,
 * MG_EVENT_STR_MAX otherwise), strings with NUL bytes, and a full arena,
 * with MG_ERR_TOOBIG or MG_ERR_INVALID naming the field. */
mg_err_t mg_event_set_str(struct mg_event *ev, const char **field,
                          const char *name, const char *s, size_t len,
                          char *errstr, size_t errstr_size);

/* Append one scope (as mg_event_set_str); MG_ERR_TOOBIG past
 * MG_EVENT_SCOPES_MAX. Auth events only. */
mg_err_t mg_event_add_scope(struct mg_event *ev, const char *s, size_t len,
                            char *errstr, size_t errstr_size);

/* Check the invariants every stage relies on: required fields present,
 * identity non-empty, timestamp in range relative to now_ms, severity
 * 0..100, bytes >= 0, enums in range. The first violation is returned as
 * MG_ERR_INVALID / MG_ERR_BAD_ENUM with the field named in errstr. */
mg_err_t mg_event_validate(const struct mg_event *ev, int64_t now_ms,
                           char *errstr, size_t errstr_size);

/* Parse one JSON line (DESIGN.md JSON-lines form) into ev, then validate.
 * `ts` may be RFC 3339 or epoch milliseconds; unknown fields are ignored;
 * optional fields may be absent or null. Errors name the field. */
mg_err_t mg_event_from_json(struct mg_event *ev, const char *line, size_t len,
                            int64_t now_ms, char *errstr, size_t errstr_size);

/* Format ev as one JSON line (no trailing newline) into a malloc'd string
 * the caller frees. Timestamps are written as RFC 3339 UTC with
 * milliseconds. Returns NULL on allocation failure. */
char *mg_event_to_json(const struct mg_event *ev);

/* Parse an RFC 3339 timestamp ("2026-11-20T10:00:00.000Z", offsets
 * allowed) to epoch milliseconds. */
mg_err_t mg_time_parse_rfc3339(const char *s, size_t len, int64_t *ms);
/* Format epoch milliseconds as "YYYY-MM-DDTHH:MM:SS.mmmZ" into buf (>= 25
 * bytes). */
void mg_time_format_rfc3339(int64_t ms, char *buf, size_t size);
/* Wall clock, epoch milliseconds. */
int64_t mg_time_now_ms(void);

#endif /* MG_EVENT_H */
