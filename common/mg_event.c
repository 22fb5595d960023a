/*
 * mg_event.c — the event model: enum name tables, the string arena,
 * validation, the JSON-lines codec and RFC 3339 timestamps.
 *
 * Strings live in the event's own arena (mg_event_set_str() appends, reset
 * rewinds), so filling an event allocates nothing and a consumer thread
 * reuses one struct mg_event for every message. Every cap is checked before
 * copying and reported with the field's name, never truncated.
 *
 * The JSON-lines form (DESIGN.md "Input events") is read with jansson: one
 * bounded line (MG_EVENT_JSON_MAX) is parsed into a tree, then each field is
 * looked up by name, so field order does not matter and unknown fields are
 * ignored. Duplicate keys are rejected (which of two "identity" fields wins
 * is exactly the kind of ambiguity an attacker likes). Strings may contain
 * "\u0000" at the JSON level; they are then rejected by mg_event_set_str()
 * with the field named, rather than by jansson with a generic message.
 * Optional fields absent or null become NULL; required ones are checked by
 * mg_event_validate(), which mg_event_from_json() always runs last, so the
 * Avro decoder and the JSON reader enforce exactly the same invariants.
 *
 * Writing is a small hand-rolled JSON writer rather than jansson: fields come
 * out in the DESIGN.md order, and bytes that are not valid UTF-8 (an Avro
 * writer may send them; JSON cannot carry them) are written as U+FFFD rather
 * than making the whole line fail. Everything mg_event_to_json() writes is
 * accepted by mg_event_from_json(); the fuzzer checks that.
 *
 * Timestamps are converted with a days-from-civil calculation (H. Hinnant's
 * algorithms) so that neither the process time zone nor the C library's
 * timegm() is involved. A leap second ("23:59:60") is accepted, as RFC 3339
 * allows, and lands on the first millisecond of the next minute.
 *
 * Workload: one call per consumed or produced message, tens of thousands per
 * second per thread; nothing here takes a lock.
 */
#include "mg_event.h"

#include <assert.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Longest JSON line mg_event_from_json() parses. The arena holds 16 KiB of
 * strings; written as "\u00XX" escapes those take up to six times as much,
 * and a producer may add fields we ignore. 256 KiB covers that with room to
 * spare and still bounds what one bad line can make jansson allocate. */
#define MG_EVENT_JSON_MAX (256 * 1024)

/* Longest excerpt of a bad value quoted in an error message. */
#define MG_EVENT_QUOTE_MAX 48

#define MG_MS_PER_DAY 86400000LL

const char *const mg_event_type_names[MG_EVENT_TYPE__CNT] = {
        "auth", "usage", "signal"};

const char *const mg_identity_kind_names[MG_IDENTITY_KIND__CNT] = {
        "unknown",     "service_account", "ci_runner",
        "integration", "ai_agent",        "workload"};

const char *const mg_auth_method_names[MG_AUTH_METHOD__CNT] = {
        "client_secret", "private_key_jwt", "mtls",   "jwt_svid",
        "x509_svid",     "oidc_federation", "api_key"};

const char *const mg_grant_type_names[MG_GRANT__CNT] = {
        "client_credentials", "token_exchange",     "refresh_token",
        "jwt_bearer",         "authorization_code", "device_code"};

const char *const mg_auth_outcome_names[MG_OUTCOME__CNT] = {"success",
                                                             "failure"};

const char *const mg_signal_kind_names[MG_SIGNAL__CNT] = {
        "secret_exposed", "credential_compromise", "quarantine", "release"};

int mg_enum_parse(const char *const *names, int cnt, const char *name,
                  size_t len) {
        int i;

        if (!name)
                return -1;
        for (i = 0; i < cnt; i++)
                if (strlen(names[i]) == len && !memcmp(names[i], name, len))
                        return i;
        return -1;
}

/* Name of an enum value for output; "?" when out of range, so a broken
 * event can still be printed. */
static const char *mg_enum_name(const char *const *names, int cnt, int v) {
        if (v < 0 || v >= cnt)
                return "?";
        return names[v];
}

/* Quote (at most MG_EVENT_QUOTE_MAX bytes of) a value for an error message:
 * printable ASCII as is, anything else as \xNN, "..." when cut short. buf
 * must hold at least 4 * MG_EVENT_QUOTE_MAX + 8 bytes. */
static const char *mg_event_quote(char *buf, size_t size, const char *s,
                                  size_t len) {
        size_t i, o = 0;

        assert(size >= 4 * MG_EVENT_QUOTE_MAX + 8);
        buf[o++] = '"';
        for (i = 0; i < len && i < MG_EVENT_QUOTE_MAX; i++) {
                unsigned char c = (unsigned char)s[i];

                if (c == '"' || c == '\\') {
                        buf[o++] = '\\';
                        buf[o++] = (char)c;
                } else if (c < 0x20 || c >= 0x7f) {
                        o += (size_t)snprintf(buf + o, size - o, "\\x%02x",
                                              c);
                } else {
                        buf[o++] = (char)c;
                }
        }
        buf[o++] = '"';
        if (i < len) {
                memcpy(buf + o, "...", 3);
                o += 3;
        }
        buf[o] = '\0';
        return buf;
}

void mg_event_reset(struct mg_event *ev, enum mg_event_type type) {
        /* Everything before the arena: pointers to NULL, numbers and enums
         * to 0 (every enum's first value), arena_used to 0. */
        memset(ev, 0, offsetof(struct mg_event, arena));
        ev->type = type;
}

mg_err_t mg_event_set_str(struct mg_event *ev, const char **field,
                          const char *name, const char *s, size_t len,
                          char *errstr, size_t errstr_size) {
        /* The field's address says which it is: no name comparison on
         * the decode path (a dozen calls per event). */
        size_t cap = field == &ev->identity ? MG_EVENT_IDENTITY_MAX
                                            : MG_EVENT_STR_MAX;
        char *dst;

        assert(ev && field && name);
        assert(s || len == 0);
        if (len > cap)
                return mg_err_set(MG_ERR_TOOBIG, errstr, errstr_size,
                                  "field %s is %zu bytes, the limit is %zu",
                                  name, len, cap);
        if (len > 0 && memchr(s, '\0', len))
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "field %s contains a NUL byte", name);
        if (len + 1 > MG_EVENT_ARENA_SIZE - ev->arena_used)
                return mg_err_set(MG_ERR_TOOBIG, errstr, errstr_size,
                                  "event is larger than %d bytes (at field "
                                  "%s)",
                                  MG_EVENT_ARENA_SIZE, name);
        dst = ev->arena + ev->arena_used;
        if (len > 0)
                memcpy(dst, s, len);
        dst[len] = '\0';
        ev->arena_used += len + 1;
        *field = dst;
        return MG_OK;
}

mg_err_t mg_event_add_scope(struct mg_event *ev, const char *s, size_t len,
                            char *errstr, size_t errstr_size) {
        struct mg_event_auth *auth = &ev->u.auth;
        mg_err_t err;

        if (ev->type != MG_EVENT_AUTH)
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "field scopes: only auth events have "
                                  "scopes");
        if (auth->scope_cnt < 0 || auth->scope_cnt >= MG_EVENT_SCOPES_MAX)
                return mg_err_set(MG_ERR_TOOBIG, errstr, errstr_size,
                                  "field scopes has more than %d entries",
                                  MG_EVENT_SCOPES_MAX);
        err = mg_event_set_str(ev, &auth->scopes[auth->scope_cnt], "scopes",
                               s, len, errstr, errstr_size);
        if (err)
                return err;
        auth->scope_cnt++;
        return MG_OK;
}

/*
 * Validation.
 */

/* A required string: present, and (when nonempty is set) not "". */
static mg_err_t mg_event_check_str(const char *s, const char *name,
                                   int nonempty, char *errstr,
                                   size_t errstr_size) {
        if (!s)
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "field %s is missing", name);
        if (nonempty && !*s)
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "%s is empty", name);
        return MG_OK;
}

static mg_err_t mg_event_check_enum(int v, int cnt, const char *name,
                                    char *errstr, size_t errstr_size) {
        if (v < 0 || v >= cnt)
                return mg_err_set(MG_ERR_BAD_ENUM, errstr, errstr_size,
                                  "field %s: enum value %d is out of range "
                                  "0..%d",
                                  name, v, cnt - 1);
        return MG_OK;
}

static mg_err_t mg_event_validate_auth(const struct mg_event *ev,
                                       char *errstr, size_t errstr_size) {
        const struct mg_event_auth *auth = &ev->u.auth;
        mg_err_t err;
        int i;

        if ((err = mg_event_check_str(auth->client_id, "client_id", 0, errstr,
                                      errstr_size)) ||
            (err = mg_event_check_str(auth->source_ip, "source_ip", 0, errstr,
                                      errstr_size)) ||
            (err = mg_event_check_enum((int)auth->identity_kind,
                                       MG_IDENTITY_KIND__CNT, "identity_kind",
                                       errstr, errstr_size)) ||
            (err = mg_event_check_enum((int)auth->auth_method,
                                       MG_AUTH_METHOD__CNT, "auth_method",
                                       errstr, errstr_size)) ||
            (err = mg_event_check_enum((int)auth->grant_type, MG_GRANT__CNT,
                                       "grant_type", errstr, errstr_size)) ||
            (err = mg_event_check_enum((int)auth->outcome, MG_OUTCOME__CNT,
                                       "outcome", errstr, errstr_size)))
                return err;
        if (auth->scope_cnt < 0 || auth->scope_cnt > MG_EVENT_SCOPES_MAX)
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "field scopes: count %d is out of range "
                                  "0..%d",
                                  auth->scope_cnt, MG_EVENT_SCOPES_MAX);
        for (i = 0; i < auth->scope_cnt; i++)
                if (!auth->scopes[i])
                        return mg_err_set(MG_ERR_INVALID, errstr,
                                          errstr_size,
                                          "field scopes[%d] is missing", i);
        return MG_OK;
}

static mg_err_t mg_event_validate_usage(const struct mg_event *ev,
                                        char *errstr, size_t errstr_size) {
        const struct mg_event_usage *usage = &ev->u.usage;
        mg_err_t err;

        if ((err = mg_event_check_str(usage->resource, "resource", 0, errstr,
                                      errstr_size)) ||
            (err = mg_event_check_str(usage->action, "action", 0, errstr,
                                      errstr_size)))
                return err;
        if (usage->bytes < 0)
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "field bytes: %" PRId64 " is negative",
                                  usage->bytes);
        return MG_OK;
}

static mg_err_t mg_event_validate_signal(const struct mg_event *ev,
                                         char *errstr, size_t errstr_size) {
        const struct mg_event_signal *sig = &ev->u.signal;
        mg_err_t err;

        if ((err = mg_event_check_str(sig->source, "source", 0, errstr,
                                      errstr_size)) ||
            (err = mg_event_check_enum((int)sig->kind, MG_SIGNAL__CNT, "kind",
                                       errstr, errstr_size)))
                return err;
        if (sig->severity < 0 || sig->severity > 100)
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "field severity: %" PRId32
                                  " is out of range 0..100",
                                  sig->severity);
        return MG_OK;
}

mg_err_t mg_event_validate(const struct mg_event *ev, int64_t now_ms,
                           char *errstr, size_t errstr_size) {
        char tsbuf[32], limbuf[32];
        mg_err_t err;

        if ((err = mg_event_check_enum((int)ev->type, MG_EVENT_TYPE__CNT,
                                       "type", errstr, errstr_size)) ||
            (err = mg_event_check_str(ev->event_id, "event_id", 1, errstr,
                                      errstr_size)) ||
            (err = mg_event_check_str(ev->identity, "identity", 1, errstr,
                                      errstr_size)))
                return err;
        /* The identity becomes part of Redis keys: enforce its cap even for
         * an event built by hand rather than through mg_event_set_str(). */
        if (strnlen(ev->identity, MG_EVENT_IDENTITY_MAX + 1) >
            MG_EVENT_IDENTITY_MAX)
                return mg_err_set(MG_ERR_TOOBIG, errstr, errstr_size,
                                  "field identity is longer than %d bytes",
                                  MG_EVENT_IDENTITY_MAX);
        if (ev->ts_ms < MG_EVENT_TS_MIN) {
                mg_time_format_rfc3339(ev->ts_ms, tsbuf, sizeof(tsbuf));
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "field ts: %" PRId64 " (%s) is before "
                                  "2000-01-01T00:00:00Z; seconds instead of "
                                  "milliseconds?",
                                  ev->ts_ms, tsbuf);
        }
        if (now_ms <= INT64_MAX - MG_EVENT_TS_MAX_FUTURE &&
            ev->ts_ms > now_ms + MG_EVENT_TS_MAX_FUTURE) {
                mg_time_format_rfc3339(ev->ts_ms, tsbuf, sizeof(tsbuf));
                mg_time_format_rfc3339(now_ms, limbuf, sizeof(limbuf));
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "field ts: %s is more than %lld hours "
                                  "ahead of now (%s)",
                                  tsbuf,
                                  MG_EVENT_TS_MAX_FUTURE / 3600000LL, limbuf);
        }
        switch (ev->type) {
        case MG_EVENT_AUTH:
                return mg_event_validate_auth(ev, errstr, errstr_size);
        case MG_EVENT_USAGE:
                return mg_event_validate_usage(ev, errstr, errstr_size);
        case MG_EVENT_SIGNAL:
                return mg_event_validate_signal(ev, errstr, errstr_size);
        default:
                break;
        }
        return MG_OK; /* not reached: type was range-checked above */
}

/*
 * Reading JSON.
 */

/* The value of field name in obj, or NULL when absent or null. */
static json_t *mg_json_field(json_t *obj, const char *name) {
        json_t *v = json_object_get(obj, name);

        return json_is_null(v) ? NULL : v;
}

/* Optional string field into *field (NULL when absent/null). */
static mg_err_t mg_json_get_str(struct mg_event *ev, json_t *obj,
                                const char *name, const char **field,
                                char *errstr, size_t errstr_size) {
        json_t *v = mg_json_field(obj, name);

        *field = NULL;
        if (!v)
                return MG_OK;
        if (!json_is_string(v))
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "field %s: expected string", name);
        return mg_event_set_str(ev, field, name, json_string_value(v),
                                json_string_length(v), errstr, errstr_size);
}

/* Enum field given by its symbol; def when absent/null and def >= 0,
 * "missing" when absent and def < 0. */
static mg_err_t mg_json_get_enum(json_t *obj, const char *name,
                                 const char *const *names, int cnt, int def,
                                 int *out, char *errstr, size_t errstr_size) {
        json_t *v = mg_json_field(obj, name);
        char qbuf[4 * MG_EVENT_QUOTE_MAX + 8];
        int idx;

        if (!v) {
                if (def < 0)
                        return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                          "field %s is missing", name);
                *out = def;
                return MG_OK;
        }
        if (!json_is_string(v))
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "field %s: expected string", name);
        idx = mg_enum_parse(names, cnt, json_string_value(v),
                            json_string_length(v));
        if (idx < 0)
                return mg_err_set(MG_ERR_BAD_ENUM, errstr, errstr_size,
                                  "field %s: unknown value %s", name,
                                  mg_event_quote(qbuf, sizeof(qbuf),
                                                 json_string_value(v),
                                                 json_string_length(v)));
        *out = idx;
        return MG_OK;
}

/* Optional integer field within [min, max]; def when absent/null. */
static mg_err_t mg_json_get_int(json_t *obj, const char *name, int64_t min,
                                int64_t max, int64_t def, int64_t *out,
                                char *errstr, size_t errstr_size) {
        json_t *v = mg_json_field(obj, name);
        json_int_t i;

        if (!v) {
                *out = def;
                return MG_OK;
        }
        if (!json_is_integer(v))
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "field %s: expected integer", name);
        i = json_integer_value(v);
        if (i < min || i > max)
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "field %s: %lld is out of range "
                                  "%" PRId64 "..%" PRId64,
                                  name, (long long)i, min, max);
        *out = (int64_t)i;
        return MG_OK;
}

/* "ts": RFC 3339 text or integer epoch milliseconds; required. */
static mg_err_t mg_json_get_ts(json_t *obj, int64_t *out, char *errstr,
                               size_t errstr_size) {
        json_t *v = mg_json_field(obj, "ts");
        char qbuf[4 * MG_EVENT_QUOTE_MAX + 8];

        if (!v)
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "field ts is missing");
        if (json_is_integer(v)) {
                *out = (int64_t)json_integer_value(v);
                return MG_OK;
        }
        if (!json_is_string(v))
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "field ts: expected an RFC 3339 string or "
                                  "integer epoch milliseconds");
        if (mg_time_parse_rfc3339(json_string_value(v), json_string_length(v),
                                  out))
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "field ts: %s is not an RFC 3339 "
                                  "timestamp",
                                  mg_event_quote(qbuf, sizeof(qbuf),
                                                 json_string_value(v),
                                                 json_string_length(v)));
        return MG_OK;
}

static mg_err_t mg_json_get_scopes(struct mg_event *ev, json_t *obj,
                                   char *errstr, size_t errstr_size) {
        json_t *v = mg_json_field(obj, "scopes");
        size_t i, n;
        mg_err_t err;

        if (!v)
                return MG_OK;
        if (!json_is_array(v))
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "field scopes: expected array");
        n = json_array_size(v);
        if (n > MG_EVENT_SCOPES_MAX)
                return mg_err_set(MG_ERR_TOOBIG, errstr, errstr_size,
                                  "field scopes has %zu entries, the limit "
                                  "is %d",
                                  n, MG_EVENT_SCOPES_MAX);
        for (i = 0; i < n; i++) {
                json_t *s = json_array_get(v, i);

                if (!json_is_string(s))
                        return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                          "field scopes[%zu]: expected "
                                          "string",
                                          i);
                err = mg_event_add_scope(ev, json_string_value(s),
                                         json_string_length(s), errstr,
                                         errstr_size);
                if (err)
                        return err;
        }
        return MG_OK;
}

static mg_err_t mg_json_get_auth(struct mg_event *ev, json_t *obj,
                                 char *errstr, size_t errstr_size) {
        struct mg_event_auth *auth = &ev->u.auth;
        int kind = 0, method = 0, grant = 0, outcome = 0;
        mg_err_t err;

        if ((err = mg_json_get_enum(obj, "identity_kind",
                                    mg_identity_kind_names,
                                    MG_IDENTITY_KIND__CNT,
                                    MG_IDENTITY_KIND_UNKNOWN, &kind, errstr,
                                    errstr_size)) ||
            (err = mg_json_get_str(ev, obj, "client_id", &auth->client_id,
                                   errstr, errstr_size)) ||
            (err = mg_json_get_str(ev, obj, "source_ip", &auth->source_ip,
                                   errstr, errstr_size)) ||
            (err = mg_json_get_str(ev, obj, "user_agent", &auth->user_agent,
                                   errstr, errstr_size)) ||
            (err = mg_json_get_enum(obj, "auth_method", mg_auth_method_names,
                                    MG_AUTH_METHOD__CNT, -1, &method, errstr,
                                    errstr_size)) ||
            (err = mg_json_get_enum(obj, "grant_type", mg_grant_type_names,
                                    MG_GRANT__CNT, -1, &grant, errstr,
                                    errstr_size)) ||
            (err = mg_json_get_str(ev, obj, "audience", &auth->audience,
                                   errstr, errstr_size)) ||
            (err = mg_json_get_scopes(ev, obj, errstr, errstr_size)) ||
            (err = mg_json_get_enum(obj, "outcome", mg_auth_outcome_names,
                                    MG_OUTCOME__CNT, -1, &outcome, errstr,
                                    errstr_size)) ||
            (err = mg_json_get_str(ev, obj, "failure_reason",
                                   &auth->failure_reason, errstr,
                                   errstr_size)) ||
            (err = mg_json_get_str(ev, obj, "token_id", &auth->token_id,
                                   errstr, errstr_size)) ||
            (err = mg_json_get_str(ev, obj, "parent_token_id",
                                   &auth->parent_token_id, errstr,
                                   errstr_size)))
                return err;
        auth->identity_kind = (enum mg_identity_kind)kind;
        auth->auth_method = (enum mg_auth_method)method;
        auth->grant_type = (enum mg_grant_type)grant;
        auth->outcome = (enum mg_auth_outcome)outcome;
        return MG_OK;
}

static mg_err_t mg_json_get_usage(struct mg_event *ev, json_t *obj,
                                  char *errstr, size_t errstr_size) {
        struct mg_event_usage *usage = &ev->u.usage;
        int64_t status = 0, bytes = 0;
        mg_err_t err;

        if ((err = mg_json_get_str(ev, obj, "token_id", &usage->token_id,
                                   errstr, errstr_size)) ||
            (err = mg_json_get_str(ev, obj, "resource", &usage->resource,
                                   errstr, errstr_size)) ||
            (err = mg_json_get_str(ev, obj, "action", &usage->action, errstr,
                                   errstr_size)) ||
            (err = mg_json_get_str(ev, obj, "scope", &usage->scope, errstr,
                                   errstr_size)) ||
            (err = mg_json_get_str(ev, obj, "source_ip", &usage->source_ip,
                                   errstr, errstr_size)) ||
            (err = mg_json_get_int(obj, "status", INT32_MIN, INT32_MAX, 0,
                                   &status, errstr, errstr_size)) ||
            (err = mg_json_get_int(obj, "bytes", INT64_MIN, INT64_MAX, 0,
                                   &bytes, errstr, errstr_size)))
                return err;
        usage->status = (int32_t)status;
        usage->bytes = bytes;
        return MG_OK;
}

static mg_err_t mg_json_get_signal(struct mg_event *ev, json_t *obj,
                                   char *errstr, size_t errstr_size) {
        struct mg_event_signal *sig = &ev->u.signal;
        int64_t severity = 50; /* the Avro schema's default */
        int kind = 0;
        mg_err_t err;

        if ((err = mg_json_get_enum(obj, "kind", mg_signal_kind_names,
                                    MG_SIGNAL__CNT, -1, &kind, errstr,
                                    errstr_size)) ||
            (err = mg_json_get_int(obj, "severity", INT32_MIN, INT32_MAX, 50,
                                   &severity, errstr, errstr_size)) ||
            (err = mg_json_get_str(ev, obj, "source", &sig->source, errstr,
                                   errstr_size)) ||
            (err = mg_json_get_str(ev, obj, "detail", &sig->detail, errstr,
                                   errstr_size)))
                return err;
        sig->kind = (enum mg_signal_kind)kind;
        sig->severity = (int32_t)severity;
        return MG_OK;
}

mg_err_t mg_event_from_json(struct mg_event *ev, const char *line, size_t len,
                            int64_t now_ms, char *errstr, size_t errstr_size) {
        char qbuf[4 * MG_EVENT_QUOTE_MAX + 8];
        json_t *root = NULL, *v;
        json_error_t jerr;
        mg_err_t err = MG_OK;
        int type;

        if (len > MG_EVENT_JSON_MAX) {
                err = mg_err_set(MG_ERR_TOOBIG, errstr, errstr_size,
                                 "JSON line is %zu bytes, the limit is %d",
                                 len, MG_EVENT_JSON_MAX);
                goto out;
        }
        /* JSON_DECODE_ANY: a scalar line parses, and is then refused below
         * with a clearer message than jansson's. */
        root = json_loadb(line, len,
                          JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL |
                                  JSON_DECODE_ANY,
                          &jerr);
        if (!root) {
                err = mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                 "invalid JSON at column %d: %s",
                                 jerr.column, jerr.text);
                goto out;
        }
        if (!json_is_object(root)) {
                err = mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                 "expected a JSON object");
                goto out;
        }

        v = mg_json_field(root, "type");
        if (!v) {
                err = mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                 "field type is missing");
                goto out;
        }
        if (!json_is_string(v)) {
                err = mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                 "field type: expected string");
                goto out;
        }
        type = mg_enum_parse(mg_event_type_names, MG_EVENT_TYPE__CNT,
                             json_string_value(v), json_string_length(v));
        if (type < 0) {
                err = mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                 "field type: unknown event type %s",
                                 mg_event_quote(qbuf, sizeof(qbuf),
                                                json_string_value(v),
                                                json_string_length(v)));
                goto out;
        }
        mg_event_reset(ev, (enum mg_event_type)type);

        if ((err = mg_json_get_str(ev, root, "event_id", &ev->event_id,
                                   errstr, errstr_size)) ||
            (err = mg_json_get_ts(root, &ev->ts_ms, errstr, errstr_size)) ||
            (err = mg_json_get_str(ev, root, "identity", &ev->identity,
                                   errstr, errstr_size)))
                goto out;

        switch (ev->type) {
        case MG_EVENT_AUTH:
                err = mg_json_get_auth(ev, root, errstr, errstr_size);
                break;
        case MG_EVENT_USAGE:
                err = mg_json_get_usage(ev, root, errstr, errstr_size);
                break;
        case MG_EVENT_SIGNAL:
                err = mg_json_get_signal(ev, root, errstr, errstr_size);
                break;
        default:
                assert(!"type was parsed from the table");
                break;
        }
        if (err)
                goto out;

        err = mg_event_validate(ev, now_ms, errstr, errstr_size);
out:
        json_decref(root);
        return err;
}

/*
 * Writing JSON.
 */

/* Growable output buffer; oom sticks once an allocation fails so callers
 * check once at the end. */
struct mg_jbuf {
        char *p;    /* malloc'd text, NUL-terminated when not oom */
        size_t len; /* bytes written, excluding the NUL */
        size_t cap; /* bytes allocated */
        int oom;    /* an allocation failed: p is garbage, give up */
};

static void mg_jbuf_reserve(struct mg_jbuf *jb, size_t n) {
        size_t cap;
        char *p;

        if (jb->oom || jb->len + n + 1 <= jb->cap)
                return;
        cap = jb->cap ? jb->cap : 512;
        while (cap < jb->len + n + 1)
                cap *= 2;
        p = realloc(jb->p, cap);
        if (!p) {
                jb->oom = 1;
                return;
        }
        jb->p = p;
        jb->cap = cap;
}

static void mg_jbuf_put(struct mg_jbuf *jb, const char *s, size_t n) {
        mg_jbuf_reserve(jb, n);
        if (jb->oom)
                return;
        memcpy(jb->p + jb->len, s, n);
        jb->len += n;
        jb->p[jb->len] = '\0';
}

static void mg_jbuf_puts(struct mg_jbuf *jb, const char *s) {
        mg_jbuf_put(jb, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0 when the
 * bytes there are not one (overlong forms, surrogates and code points past
 * U+10FFFF are invalid, as in jansson). */
static size_t mg_utf8_seq(const unsigned char *s, size_t n) {
        uint32_t cp;
        size_t len, i;

        if (s[0] < 0x80)
                return 1;
        if (s[0] >= 0xc2 && s[0] <= 0xdf) {
                len = 2;
                cp = s[0] & 0x1f;
        } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
                len = 3;
                cp = s[0] & 0x0f;
        } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
                len = 4;
                cp = s[0] & 0x07;
        } else {
                return 0;
        }
        if (n < len)
                return 0;
        for (i = 1; i < len; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (s[i] & 0x3f);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        return len;
}

/* A JSON string, or null for NULL. */
static void mg_jbuf_str(struct mg_jbuf *jb, const char *s) {
        const unsigned char *p = (const unsigned char *)s;
        size_t n, k;
        char esc[8];

        if (!s) {
                mg_jbuf_puts(jb, "null");
                return;
        }
        n = strlen(s);
        mg_jbuf_put(jb, "\"", 1);
        while (n > 0) {
                /* Copy the longest run needing no escape in one go. */
                for (k = 0; k < n && p[k] >= 0x20 && p[k] < 0x80 &&
                            p[k] != '"' && p[k] != '\\';
                     k++)
                        ;
                if (k > 0) {
                        mg_jbuf_put(jb, (const char *)p, k);
                        p += k;
                        n -= k;
                        continue;
                }
                switch (*p) {
                case '"':
                        mg_jbuf_put(jb, "\\\"", 2);
                        k = 1;
                        break;
                case '\\':
                        mg_jbuf_put(jb, "\\\\", 2);
                        k = 1;
                        break;
                case '\n':
                        mg_jbuf_put(jb, "\\n", 2);
                        k = 1;
                        break;
                case '\r':
                        mg_jbuf_put(jb, "\\r", 2);
                        k = 1;
                        break;
                case '\t':
                        mg_jbuf_put(jb, "\\t", 2);
                        k = 1;
                        break;
                default:
                        if (*p < 0x20) {
                                snprintf(esc, sizeof(esc), "\\u%04x", *p);
                                mg_jbuf_put(jb, esc, 6);
                                k = 1;
                        } else if ((k = mg_utf8_seq(p, n)) > 0) {
                                mg_jbuf_put(jb, (const char *)p, k);
                        } else {
                                mg_jbuf_put(jb, "\xef\xbf\xbd", 3);
                                k = 1;
                        }
                        break;
                }
                p += k;
                n -= k;
        }
        mg_jbuf_put(jb, "\"", 1);
}

/* ,"name": — every field but the first ("type") starts with the comma. */
static void mg_jbuf_key(struct mg_jbuf *jb, const char *name) {
        mg_jbuf_put(jb, ",\"", 2);
        mg_jbuf_puts(jb, name);
        mg_jbuf_put(jb, "\":", 2);
}

static void mg_jbuf_key_str(struct mg_jbuf *jb, const char *name,
                            const char *s) {
        mg_jbuf_key(jb, name);
        mg_jbuf_str(jb, s);
}

static void mg_jbuf_key_int(struct mg_jbuf *jb, const char *name, int64_t v) {
        char num[24];

        mg_jbuf_key(jb, name);
        snprintf(num, sizeof(num), "%" PRId64, v);
        mg_jbuf_puts(jb, num);
}

static void mg_jbuf_key_sym(struct mg_jbuf *jb, const char *name,
                            const char *sym) {
        mg_jbuf_key(jb, name);
        mg_jbuf_str(jb, sym);
}

char *mg_event_to_json(const struct mg_event *ev) {
        struct mg_jbuf jb = {NULL, 0, 0, 0};
        char ts[32];
        int i;

        mg_jbuf_puts(&jb, "{\"type\":");
        mg_jbuf_str(&jb, mg_enum_name(mg_event_type_names, MG_EVENT_TYPE__CNT,
                                      (int)ev->type));
        mg_jbuf_key_str(&jb, "event_id", ev->event_id);
        mg_time_format_rfc3339(ev->ts_ms, ts, sizeof(ts));
        mg_jbuf_key_str(&jb, "ts", ts);
        mg_jbuf_key_str(&jb, "identity", ev->identity);

        switch (ev->type) {
        case MG_EVENT_AUTH: {
                const struct mg_event_auth *auth = &ev->u.auth;

                mg_jbuf_key_sym(&jb, "identity_kind",
                                mg_enum_name(mg_identity_kind_names,
                                             MG_IDENTITY_KIND__CNT,
                                             (int)auth->identity_kind));
                mg_jbuf_key_str(&jb, "client_id", auth->client_id);
                mg_jbuf_key_str(&jb, "source_ip", auth->source_ip);
                mg_jbuf_key_str(&jb, "user_agent", auth->user_agent);
                mg_jbuf_key_sym(&jb, "auth_method",
                                mg_enum_name(mg_auth_method_names,
                                             MG_AUTH_METHOD__CNT,
                                             (int)auth->auth_method));
                mg_jbuf_key_sym(&jb, "grant_type",
                                mg_enum_name(mg_grant_type_names,
                                             MG_GRANT__CNT,
                                             (int)auth->grant_type));
                mg_jbuf_key_str(&jb, "audience", auth->audience);
                mg_jbuf_key(&jb, "scopes");
                mg_jbuf_put(&jb, "[", 1);
                for (i = 0; i < auth->scope_cnt && i < MG_EVENT_SCOPES_MAX;
                     i++) {
                        if (i > 0)
                                mg_jbuf_put(&jb, ",", 1);
                        mg_jbuf_str(&jb, auth->scopes[i]);
                }
                mg_jbuf_put(&jb, "]", 1);
                mg_jbuf_key_sym(&jb, "outcome",
                                mg_enum_name(mg_auth_outcome_names,
                                             MG_OUTCOME__CNT,
                                             (int)auth->outcome));
                mg_jbuf_key_str(&jb, "failure_reason", auth->failure_reason);
                mg_jbuf_key_str(&jb, "token_id", auth->token_id);
                mg_jbuf_key_str(&jb, "parent_token_id",
                                auth->parent_token_id);
                break;
        }
        case MG_EVENT_USAGE: {
                const struct mg_event_usage *usage = &ev->u.usage;

                mg_jbuf_key_str(&jb, "token_id", usage->token_id);
                mg_jbuf_key_str(&jb, "resource", usage->resource);
                mg_jbuf_key_str(&jb, "action", usage->action);
                mg_jbuf_key_str(&jb, "scope", usage->scope);
                mg_jbuf_key_str(&jb, "source_ip", usage->source_ip);
                mg_jbuf_key_int(&jb, "status", usage->status);
                mg_jbuf_key_int(&jb, "bytes", usage->bytes);
                break;
        }
        case MG_EVENT_SIGNAL: {
                const struct mg_event_signal *sig = &ev->u.signal;

                mg_jbuf_key_sym(&jb, "kind",
                                mg_enum_name(mg_signal_kind_names,
                                             MG_SIGNAL__CNT, (int)sig->kind));
                mg_jbuf_key_int(&jb, "severity", sig->severity);
                mg_jbuf_key_str(&jb, "source", sig->source);
                mg_jbuf_key_str(&jb, "detail", sig->detail);
                break;
        }
        default:
                break;
        }
        mg_jbuf_put(&jb, "}", 1);
        if (jb.oom) {
                free(jb.p);
                return NULL;
        }
        return jb.p;
}

/*
 * Time.
 */

/* Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's
 * days_from_civil). m is 1..12, d is 1..31. */
static int64_t mg_days_from_civil(int64_t y, int m, int d) {
        int64_t era, yoe, doy, doe;

        y -= m <= 2;
        era = (y >= 0 ? y : y - 399) / 400;
        yoe = y - era * 400;
        doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
}

/* Inverse of mg_days_from_civil (Hinnant's civil_from_days). */
static void mg_civil_from_days(int64_t z, int64_t *yp, int *mp, int *dp) {
        int64_t era, doe, yoe, y, doy, mp_;

        z += 719468;
        era = (z >= 0 ? z : z - 146096) / 146097;
        doe = z - era * 146097;
        yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        y = yoe + era * 400;
        doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        mp_ = (5 * doy + 2) / 153;
        *dp = (int)(doy - (153 * mp_ + 2) / 5 + 1);
        *mp = (int)(mp_ < 10 ? mp_ + 3 : mp_ - 9);
        *yp = y + (*mp <= 2);
}

static int mg_is_leap(int y) {
        return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int mg_days_in_month(int y, int m) {
        static const int days[12] = {31, 28, 31, 30, 31, 30,
                                     31, 31, 30, 31, 30, 31};

        return m == 2 && mg_is_leap(y) ? 29 : days[m - 1];
}

/* n decimal digits at s[*pos] into *out; 0 when they are not all digits. */
static int mg_digits(const char *s, size_t len, size_t *pos, int n,
                     int *out) {
        int v = 0, i;

        if (len - *pos < (size_t)n)
                return 0;
        for (i = 0; i < n; i++) {
                char c = s[*pos + (size_t)i];

                if (c < '0' || c > '9')
                        return 0;
                v = v * 10 + (c - '0');
        }
        *pos += (size_t)n;
        *out = v;
        return 1;
}

/* The character c at s[*pos]; consumes it. */
static int mg_expect(const char *s, size_t len, size_t *pos, char c) {
        if (*pos >= len || s[*pos] != c)
                return 0;
        (*pos)++;
        return 1;
}

mg_err_t mg_time_parse_rfc3339(const char *s, size_t len, int64_t *ms) {
        int year, mon, day, hour, min, sec, frac = 0, oh = 0, om = 0;
        int sign = 0, i;
        size_t pos = 0;
        int64_t days, secs;

        if (!s || !mg_digits(s, len, &pos, 4, &year) ||
            !mg_expect(s, len, &pos, '-') ||
            !mg_digits(s, len, &pos, 2, &mon) ||
            !mg_expect(s, len, &pos, '-') ||
            !mg_digits(s, len, &pos, 2, &day))
                return MG_ERR_INVALID;
        if (pos >= len || (s[pos] != 'T' && s[pos] != 't' && s[pos] != ' '))
                return MG_ERR_INVALID;
        pos++;
        if (!mg_digits(s, len, &pos, 2, &hour) ||
            !mg_expect(s, len, &pos, ':') ||
            !mg_digits(s, len, &pos, 2, &min) ||
            !mg_expect(s, len, &pos, ':') ||
            !mg_digits(s, len, &pos, 2, &sec))
                return MG_ERR_INVALID;
        if (pos < len && s[pos] == '.') {
                /* At least one digit; the first three are milliseconds,
                 * further ones are dropped (truncation, not rounding, so a
                 * time never moves into the next second). */
                pos++;
                for (i = 0; pos < len && s[pos] >= '0' && s[pos] <= '9';
                     i++, pos++)
                        if (i < 3)
                                frac = frac * 10 + (s[pos] - '0');
                if (i == 0)
                        return MG_ERR_INVALID;
                for (; i < 3; i++)
                        frac *= 10;
        }
        if (pos >= len)
                return MG_ERR_INVALID;
        if (s[pos] == 'Z' || s[pos] == 'z') {
                pos++;
        } else if (s[pos] == '+' || s[pos] == '-') {
                sign = s[pos] == '-' ? -1 : 1;
                pos++;
                if (!mg_digits(s, len, &pos, 2, &oh) ||
                    !mg_expect(s, len, &pos, ':') ||
                    !mg_digits(s, len, &pos, 2, &om) || oh > 23 || om > 59)
                        return MG_ERR_INVALID;
        } else {
                return MG_ERR_INVALID;
        }
        if (pos != len)
                return MG_ERR_INVALID;
        if (mon < 1 || mon > 12 || day < 1 ||
            day > mg_days_in_month(year, mon) || hour > 23 || min > 59 ||
            sec > 60)
                return MG_ERR_INVALID;

        days = mg_days_from_civil(year, mon, day);
        secs = days * 86400 + hour * 3600 + min * 60 + sec;
        secs -= (int64_t)sign * (oh * 3600 + om * 60);
        *ms = secs * 1000 + frac;
        return MG_OK;
}

void mg_time_format_rfc3339(int64_t ms, char *buf, size_t size) {
        int64_t days = ms / MG_MS_PER_DAY, rem = ms % MG_MS_PER_DAY, year;
        int mon, day;

        if (rem < 0) {
                rem += MG_MS_PER_DAY;
                days--;
        }
        mg_civil_from_days(days, &year, &mon, &day);
        snprintf(buf, size, "%04" PRId64 "-%02d-%02dT%02d:%02d:%02d.%03dZ",
                 year, mon, day, (int)(rem / 3600000),
                 (int)(rem / 60000 % 60), (int)(rem / 1000 % 60),
                 (int)(rem % 1000));
}

int64_t mg_time_now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
