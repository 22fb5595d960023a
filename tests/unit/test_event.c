/*
 * test_event.c — unit tests of the event model (common/mg_event.c).
 *
 * The JSON cases start from the three DESIGN.md example lines and derive
 * each error case from them with jansson (delete a field, replace one), so
 * every case differs from a known-good line in exactly one way. RFC 3339
 * conversion is checked against a plain reference model that counts days
 * one month at a time (STYLE.md: check clever code against a naive one).
 *
 * "Now" is pinned to 2026-11-21T00:00:00Z so the DESIGN.md timestamps are
 * in range whatever the wall clock says.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "mg_event.h"

#define NOW_MS 1795219200000LL /* 2026-11-21T00:00:00Z */
#define T0_MS  1795168800000LL /* 2026-11-20T10:00:00Z */

static const char design_auth[] =
        "{\"type\":\"auth\",\"event_id\":\"a-1\","
        "\"ts\":\"2026-11-20T10:00:00.000Z\","
        "\"identity\":\"spiffe://corp/ci/deployer\","
        "\"identity_kind\":\"ci_runner\",\"client_id\":\"gh-actions\","
        "\"source_ip\":\"203.0.113.7\",\"user_agent\":\"runner/2.3\","
        "\"auth_method\":\"jwt_svid\",\"grant_type\":\"client_credentials\","
        "\"audience\":\"api://deploy\",\"scopes\":[\"deploy:write\"],"
        "\"outcome\":\"success\",\"failure_reason\":null,"
        "\"token_id\":\"t-91\",\"parent_token_id\":null}";

static const char design_usage[] =
        "{\"type\":\"usage\",\"event_id\":\"u-1\","
        "\"ts\":\"2026-11-20T10:00:01.250Z\","
        "\"identity\":\"spiffe://corp/ci/deployer\",\"token_id\":\"t-91\","
        "\"resource\":\"api://deploy\",\"action\":\"POST /releases\","
        "\"scope\":\"deploy:write\",\"source_ip\":\"203.0.113.7\","
        "\"status\":201,\"bytes\":5120}";

static const char design_signal[] =
        "{\"type\":\"signal\",\"event_id\":\"s-1\","
        "\"ts\":\"2026-11-20T10:05:00Z\","
        "\"identity\":\"spiffe://corp/ci/deployer\","
        "\"kind\":\"secret_exposed\",\"severity\":90,"
        "\"source\":\"secret-scanner\","
        "\"detail\":\"token found in public repo\"}";

/* Events are 17 KiB: keep them off the stack. */
static struct mg_event ev, ev2;
static char errstr[512];

static mg_err_t parse(struct mg_event *e, const char *line) {
        errstr[0] = '\0';
        return mg_event_from_json(e, line, strlen(line), NOW_MS, errstr,
                                  sizeof(errstr));
}

/* Parse line, expect err and an error message containing want. */
static void expect_err(const char *line, mg_err_t err, const char *want) {
        mg_err_t got = parse(&ev, line);

        if (got != err || !strstr(errstr, want))
                print_error("line: %s\nerr %d (want %d), errstr: \"%s\" "
                            "(want \"%s\")\n",
                            line, got, err, errstr, want);
        assert_int_equal(got, err);
        assert_non_null(strstr(errstr, want));
}

/* base with field set to the JSON text val (NULL: deleted), re-serialised. */
static char *edit(const char *base, const char *field, const char *val) {
        json_error_t jerr;
        json_t *root = json_loads(base, 0, &jerr);
        char *out;

        assert_non_null(root);
        if (val) {
                json_t *v = json_loads(val, JSON_DECODE_ANY | JSON_ALLOW_NUL,
                                      &jerr);

                assert_non_null(v);
                json_object_set_new(root, field, v);
        } else {
                json_object_del(root, field);
        }
        out = json_dumps(root, JSON_COMPACT);
        json_decref(root);
        assert_non_null(out);
        return out;
}

static void expect_edit_err(const char *base, const char *field,
                            const char *val, mg_err_t err, const char *want) {
        char *line = edit(base, field, val);

        expect_err(line, err, want);
        free(line);
}

static void expect_edit_ok(const char *base, const char *field,
                           const char *val) {
        char *line = edit(base, field, val);
        mg_err_t got = parse(&ev, line);

        if (got)
                print_error("line: %s\nerrstr: %s\n", line, errstr);
        assert_int_equal(got, MG_OK);
        free(line);
}

static void assert_str_or_null(const char *a, const char *b) {
        if (!a || !b)
                assert_ptr_equal(a, b);
        else
                assert_string_equal(a, b);
}

static void assert_events_equal(const struct mg_event *a,
                                const struct mg_event *b) {
        int i;

        assert_int_equal(a->type, b->type);
        assert_str_or_null(a->event_id, b->event_id);
        assert_int_equal(a->ts_ms, b->ts_ms);
        assert_str_or_null(a->identity, b->identity);
        switch (a->type) {
        case MG_EVENT_AUTH:
                assert_int_equal(a->u.auth.identity_kind,
                                 b->u.auth.identity_kind);
                assert_str_or_null(a->u.auth.client_id, b->u.auth.client_id);
                assert_str_or_null(a->u.auth.source_ip, b->u.auth.source_ip);
                assert_str_or_null(a->u.auth.user_agent,
                                   b->u.auth.user_agent);
                assert_int_equal(a->u.auth.auth_method, b->u.auth.auth_method);
                assert_int_equal(a->u.auth.grant_type, b->u.auth.grant_type);
                assert_str_or_null(a->u.auth.audience, b->u.auth.audience);
                assert_int_equal(a->u.auth.scope_cnt, b->u.auth.scope_cnt);
                for (i = 0; i < a->u.auth.scope_cnt; i++)
                        assert_str_or_null(a->u.auth.scopes[i],
                                           b->u.auth.scopes[i]);
                assert_int_equal(a->u.auth.outcome, b->u.auth.outcome);
                assert_str_or_null(a->u.auth.failure_reason,
                                   b->u.auth.failure_reason);
                assert_str_or_null(a->u.auth.token_id, b->u.auth.token_id);
                assert_str_or_null(a->u.auth.parent_token_id,
                                   b->u.auth.parent_token_id);
                break;
        case MG_EVENT_USAGE:
                assert_str_or_null(a->u.usage.token_id, b->u.usage.token_id);
                assert_str_or_null(a->u.usage.resource, b->u.usage.resource);
                assert_str_or_null(a->u.usage.action, b->u.usage.action);
                assert_str_or_null(a->u.usage.scope, b->u.usage.scope);
                assert_str_or_null(a->u.usage.source_ip,
                                   b->u.usage.source_ip);
                assert_int_equal(a->u.usage.status, b->u.usage.status);
                assert_int_equal(a->u.usage.bytes, b->u.usage.bytes);
                break;
        case MG_EVENT_SIGNAL:
                assert_int_equal(a->u.signal.kind, b->u.signal.kind);
                assert_int_equal(a->u.signal.severity, b->u.signal.severity);
                assert_str_or_null(a->u.signal.source, b->u.signal.source);
                assert_str_or_null(a->u.signal.detail, b->u.signal.detail);
                break;
        default:
                fail_msg("bad type %d", (int)a->type);
        }
}

/* to_json(e) parses back into an equal event. */
static void assert_round_trip(const struct mg_event *e) {
        char *json = mg_event_to_json(e);
        mg_err_t err;

        assert_non_null(json);
        err = parse(&ev2, json);
        if (err)
                print_error("json: %s\nerrstr: %s\n", json, errstr);
        assert_int_equal(err, MG_OK);
        assert_events_equal(e, &ev2);
        free(json);
}

/*
 * Enum tables.
 */

static void test_enum_tables(void **state) {
        static const char *const kinds[] = {"unknown",     "service_account",
                                            "ci_runner",   "integration",
                                            "ai_agent",    "workload"};
        static const char *const methods[] = {
                "client_secret", "private_key_jwt", "mtls",   "jwt_svid",
                "x509_svid",     "oidc_federation", "api_key"};
        static const char *const grants[] = {
                "client_credentials", "token_exchange",     "refresh_token",
                "jwt_bearer",         "authorization_code", "device_code"};
        static const char *const sigs[] = {"secret_exposed",
                                           "credential_compromise",
                                           "quarantine", "release"};
        int i;

        assert_int_equal(MG_IDENTITY_KIND__CNT, 6);
        for (i = 0; i < MG_IDENTITY_KIND__CNT; i++)
                assert_string_equal(mg_identity_kind_names[i], kinds[i]);
        assert_int_equal(MG_AUTH_METHOD__CNT, 7);
        for (i = 0; i < MG_AUTH_METHOD__CNT; i++)
                assert_string_equal(mg_auth_method_names[i], methods[i]);
        assert_int_equal(MG_GRANT__CNT, 6);
        for (i = 0; i < MG_GRANT__CNT; i++)
                assert_string_equal(mg_grant_type_names[i], grants[i]);
        assert_int_equal(MG_SIGNAL__CNT, 4);
        for (i = 0; i < MG_SIGNAL__CNT; i++)
                assert_string_equal(mg_signal_kind_names[i], sigs[i]);
        assert_string_equal(mg_auth_outcome_names[MG_OUTCOME_SUCCESS],
                            "success");
        assert_string_equal(mg_auth_outcome_names[MG_OUTCOME_FAILURE],
                            "failure");
        assert_string_equal(mg_event_type_names[MG_EVENT_AUTH], "auth");
        assert_string_equal(mg_event_type_names[MG_EVENT_USAGE], "usage");
        assert_string_equal(mg_event_type_names[MG_EVENT_SIGNAL], "signal");
}

static void test_enum_parse(void **state) {
        /* len bounds the name: no NUL terminator needed. */
        assert_int_equal(mg_enum_parse(mg_auth_method_names,
                                       MG_AUTH_METHOD__CNT, "mtlsXYZ", 4),
                         MG_AUTH_METHOD_MTLS);
        assert_int_equal(mg_enum_parse(mg_grant_type_names, MG_GRANT__CNT,
                                       "device_code", 11),
                         MG_GRANT_DEVICE_CODE);
        /* A prefix or an extension of a name is not the name. */
        assert_int_equal(mg_enum_parse(mg_auth_method_names,
                                       MG_AUTH_METHOD__CNT, "mtl", 3),
                         -1);
        assert_int_equal(mg_enum_parse(mg_auth_method_names,
                                       MG_AUTH_METHOD__CNT, "mtlss", 5),
                         -1);
        assert_int_equal(mg_enum_parse(mg_auth_method_names,
                                       MG_AUTH_METHOD__CNT, "", 0),
                         -1);
        assert_int_equal(mg_enum_parse(mg_auth_outcome_names,
                                       MG_OUTCOME__CNT, "SUCCESS", 7),
                         -1);
}

/*
 * Arena strings.
 */

static void test_set_str(void **state) {
        static char big[MG_EVENT_STR_MAX + 2];
        const char *field = NULL;
        int i;

        mg_event_reset(&ev, MG_EVENT_USAGE);
        assert_int_equal(ev.arena_used, 0);
        assert_null(ev.identity);
        assert_int_equal(mg_event_set_str(&ev, &ev.identity, "identity",
                                          "abcdef", 3, errstr,
                                          sizeof(errstr)),
                         MG_OK);
        assert_string_equal(ev.identity, "abc");
        assert_int_equal(ev.arena_used, 4);
        assert_true(ev.identity >= ev.arena &&
                    ev.identity < ev.arena + sizeof(ev.arena));

        /* Empty strings are strings, not NULL. */
        assert_int_equal(mg_event_set_str(&ev, &field, "scope", NULL, 0,
                                          errstr, sizeof(errstr)),
                         MG_OK);
        assert_non_null(field);
        assert_string_equal(field, "");

        assert_int_equal(mg_event_set_str(&ev, &field, "action", "a\0b", 3,
                                          errstr, sizeof(errstr)),
                         MG_ERR_INVALID);
        assert_non_null(strstr(errstr, "action"));
        assert_non_null(strstr(errstr, "NUL"));

        memset(big, 'x', sizeof(big));
        assert_int_equal(mg_event_set_str(&ev, &field, "user_agent", big,
                                          MG_EVENT_STR_MAX, errstr,
                                          sizeof(errstr)),
                         MG_OK);
        assert_int_equal(strlen(field), MG_EVENT_STR_MAX);
        assert_int_equal(mg_event_set_str(&ev, &field, "user_agent", big,
                                          MG_EVENT_STR_MAX + 1, errstr,
                                          sizeof(errstr)),
                         MG_ERR_TOOBIG);
        assert_string_equal(errstr,
                            "field user_agent is 1025 bytes, the limit is "
                            "1024");
        /* The identity's cap applies to the identity field itself. */
        assert_int_equal(mg_event_set_str(&ev, &ev.identity, "identity", big,
                                          MG_EVENT_IDENTITY_MAX + 1, errstr,
                                          sizeof(errstr)),
                         MG_ERR_TOOBIG);
        assert_string_equal(errstr,
                            "field identity is 513 bytes, the limit is 512");

        /* Fill the arena: 1024-byte strings take 1025 bytes each. */
        mg_event_reset(&ev, MG_EVENT_USAGE);
        for (i = 0; i < MG_EVENT_ARENA_SIZE / (MG_EVENT_STR_MAX + 1); i++)
                assert_int_equal(mg_event_set_str(&ev, &field, "detail", big,
                                                  MG_EVENT_STR_MAX, errstr,
                                                  sizeof(errstr)),
                                 MG_OK);
        assert_int_equal(mg_event_set_str(&ev, &field, "detail", big,
                                          MG_EVENT_STR_MAX, errstr,
                                          sizeof(errstr)),
                         MG_ERR_TOOBIG);
        assert_non_null(strstr(errstr, "event is larger than 16384 bytes"));
        assert_true(ev.arena_used <= MG_EVENT_ARENA_SIZE);

        /* Reset rewinds the arena. */
        mg_event_reset(&ev, MG_EVENT_SIGNAL);
        assert_int_equal(ev.arena_used, 0);
        assert_int_equal(ev.type, MG_EVENT_SIGNAL);
        assert_int_equal(ev.u.signal.severity, 0);
        assert_null(ev.u.signal.source);
}

static void test_add_scope(void **state) {
        char s[8];
        int i;

        mg_event_reset(&ev, MG_EVENT_USAGE);
        assert_int_equal(mg_event_add_scope(&ev, "a", 1, errstr,
                                            sizeof(errstr)),
                         MG_ERR_INVALID);
        assert_non_null(strstr(errstr, "scopes"));

        mg_event_reset(&ev, MG_EVENT_AUTH);
        for (i = 0; i < MG_EVENT_SCOPES_MAX; i++) {
                snprintf(s, sizeof(s), "s%d", i);
                assert_int_equal(mg_event_add_scope(&ev, s, strlen(s), errstr,
                                                    sizeof(errstr)),
                                 MG_OK);
        }
        assert_int_equal(ev.u.auth.scope_cnt, MG_EVENT_SCOPES_MAX);
        assert_string_equal(ev.u.auth.scopes[0], "s0");
        assert_string_equal(ev.u.auth.scopes[63], "s63");
        assert_int_equal(mg_event_add_scope(&ev, "x", 1, errstr,
                                            sizeof(errstr)),
                         MG_ERR_TOOBIG);
        assert_non_null(strstr(errstr, "scopes"));
        assert_int_equal(ev.u.auth.scope_cnt, MG_EVENT_SCOPES_MAX);

        /* A failed copy does not count a scope. */
        mg_event_reset(&ev, MG_EVENT_AUTH);
        assert_int_equal(mg_event_add_scope(&ev, "a\0", 2, errstr,
                                            sizeof(errstr)),
                         MG_ERR_INVALID);
        assert_int_equal(ev.u.auth.scope_cnt, 0);
}

/*
 * JSON: the DESIGN.md examples.
 */

static void test_json_design_auth(void **state) {
        struct mg_event_auth *auth = &ev.u.auth;

        assert_int_equal(parse(&ev, design_auth), MG_OK);
        assert_int_equal(ev.type, MG_EVENT_AUTH);
        assert_string_equal(ev.event_id, "a-1");
        assert_int_equal(ev.ts_ms, T0_MS);
        assert_string_equal(ev.identity, "spiffe://corp/ci/deployer");
        assert_int_equal(auth->identity_kind, MG_IDENTITY_KIND_CI_RUNNER);
        assert_string_equal(auth->client_id, "gh-actions");
        assert_string_equal(auth->source_ip, "203.0.113.7");
        assert_string_equal(auth->user_agent, "runner/2.3");
        assert_int_equal(auth->auth_method, MG_AUTH_METHOD_JWT_SVID);
        assert_int_equal(auth->grant_type, MG_GRANT_CLIENT_CREDENTIALS);
        assert_string_equal(auth->audience, "api://deploy");
        assert_int_equal(auth->scope_cnt, 1);
        assert_string_equal(auth->scopes[0], "deploy:write");
        assert_int_equal(auth->outcome, MG_OUTCOME_SUCCESS);
        assert_null(auth->failure_reason);
        assert_string_equal(auth->token_id, "t-91");
        assert_null(auth->parent_token_id);
        assert_null(ev.origin.topic);
}

static void test_json_design_usage(void **state) {
        struct mg_event_usage *usage = &ev.u.usage;

        assert_int_equal(parse(&ev, design_usage), MG_OK);
        assert_int_equal(ev.type, MG_EVENT_USAGE);
        assert_string_equal(ev.event_id, "u-1");
        assert_int_equal(ev.ts_ms, T0_MS + 1250);
        assert_string_equal(ev.identity, "spiffe://corp/ci/deployer");
        assert_string_equal(usage->token_id, "t-91");
        assert_string_equal(usage->resource, "api://deploy");
        assert_string_equal(usage->action, "POST /releases");
        assert_string_equal(usage->scope, "deploy:write");
        assert_string_equal(usage->source_ip, "203.0.113.7");
        assert_int_equal(usage->status, 201);
        assert_int_equal(usage->bytes, 5120);
}

static void test_json_design_signal(void **state) {
        struct mg_event_signal *sig = &ev.u.signal;

        assert_int_equal(parse(&ev, design_signal), MG_OK);
        assert_int_equal(ev.type, MG_EVENT_SIGNAL);
        assert_string_equal(ev.event_id, "s-1");
        assert_int_equal(ev.ts_ms, T0_MS + 5 * 60 * 1000);
        assert_int_equal(sig->kind, MG_SIGNAL_SECRET_EXPOSED);
        assert_int_equal(sig->severity, 90);
        assert_string_equal(sig->source, "secret-scanner");
        assert_string_equal(sig->detail, "token found in public repo");
}

/* to_json writes the DESIGN.md form: same fields, same order. */
static void test_json_write_form(void **state) {
        static const char want_auth[] =
                "{\"type\":\"auth\",\"event_id\":\"a-1\","
                "\"ts\":\"2026-11-20T10:00:00.000Z\","
                "\"identity\":\"spiffe://corp/ci/deployer\","
                "\"identity_kind\":\"ci_runner\",\"client_id\":\"gh-actions\","
                "\"source_ip\":\"203.0.113.7\",\"user_agent\":\"runner/2.3\","
                "\"auth_method\":\"jwt_svid\","
                "\"grant_type\":\"client_credentials\","
                "\"audience\":\"api://deploy\",\"scopes\":[\"deploy:write\"],"
                "\"outcome\":\"success\",\"failure_reason\":null,"
                "\"token_id\":\"t-91\",\"parent_token_id\":null}";
        static const char want_signal[] =
                "{\"type\":\"signal\",\"event_id\":\"s-1\","
                "\"ts\":\"2026-11-20T10:05:00.000Z\","
                "\"identity\":\"spiffe://corp/ci/deployer\","
                "\"kind\":\"secret_exposed\",\"severity\":90,"
                "\"source\":\"secret-scanner\","
                "\"detail\":\"token found in public repo\"}";
        char *json;

        assert_int_equal(parse(&ev, design_auth), MG_OK);
        json = mg_event_to_json(&ev);
        assert_non_null(json);
        assert_string_equal(json, want_auth);
        free(json);

        /* The usage example is already in canonical form. */
        assert_int_equal(parse(&ev, design_usage), MG_OK);
        json = mg_event_to_json(&ev);
        assert_non_null(json);
        assert_string_equal(json, design_usage);
        free(json);

        assert_int_equal(parse(&ev, design_signal), MG_OK);
        json = mg_event_to_json(&ev);
        assert_non_null(json);
        assert_string_equal(json, want_signal);
        free(json);
}

static void test_json_round_trip(void **state) {
        static const char *const lines[] = {
                design_auth, design_usage, design_signal,
                /* Only the required fields: optionals come back null. */
                "{\"type\":\"auth\",\"event_id\":\"a\",\"ts\":1795168800001,"
                "\"identity\":\"i\",\"client_id\":\"c\",\"source_ip\":\"::1\","
                "\"auth_method\":\"mtls\",\"grant_type\":\"device_code\","
                "\"outcome\":\"failure\"}",
                "{\"type\":\"usage\",\"event_id\":\"u\","
                "\"ts\":\"2026-11-20T10:00:00+01:00\",\"identity\":\"i\","
                "\"resource\":\"\",\"action\":\"\",\"status\":-1,"
                "\"bytes\":9007199254740993}",
                "{\"type\":\"signal\",\"event_id\":\"s\","
                "\"ts\":\"2026-11-20T10:00:00Z\",\"identity\":\"i\","
                "\"kind\":\"release\",\"source\":\"ir\"}",
                /* Characters that need escaping, and non-ASCII text. */
                "{\"type\":\"signal\",\"event_id\":\"q\\\"\\\\\\/\","
                "\"ts\":\"2026-11-20T10:00:00Z\","
                "\"identity\":\"\\u00e9\\u4e2d\\ud83d\\ude00\","
                "\"kind\":\"quarantine\",\"severity\":0,"
                "\"source\":\"\\b\\f\\n\\r\\t\\u0001\\u001f\\u007f\","
                "\"detail\":\"\\u2028\"}",
        };
        size_t i;

        for (i = 0; i < sizeof(lines) / sizeof(*lines); i++) {
                if (parse(&ev, lines[i]))
                        fail_msg("%s: %s", lines[i], errstr);
                assert_round_trip(&ev);
        }
}

/* Bytes that are not UTF-8 (an Avro producer may send them) are written
 * as U+FFFD, so the line is still valid JSON. */
static void test_json_write_bad_utf8(void **state) {
        char *json;

        assert_int_equal(parse(&ev, design_signal), MG_OK);
        assert_int_equal(mg_event_set_str(&ev, &ev.u.signal.detail, "detail",
                                          "a\xff\xc3(\xed\xa0\x80z", 8,
                                          errstr, sizeof(errstr)),
                         MG_OK);
        json = mg_event_to_json(&ev);
        assert_non_null(json);
        assert_non_null(strstr(json, "\"detail\":\"a\xef\xbf\xbd"
                                     "\xef\xbf\xbd(\xef\xbf\xbd"
                                     "\xef\xbf\xbd\xef\xbf\xbdz\""));
        assert_int_equal(parse(&ev2, json), MG_OK);
        free(json);
}

/*
 * JSON: errors.
 */

static void test_json_missing_required(void **state) {
        static const char *const auth_req[] = {"event_id", "ts", "identity",
                                               "client_id", "source_ip",
                                               "auth_method", "grant_type",
                                               "outcome"};
        static const char *const usage_req[] = {"event_id", "ts", "identity",
                                                "resource", "action"};
        static const char *const signal_req[] = {"event_id", "ts", "identity",
                                                 "kind", "source"};
        char want[64];
        size_t i;

        for (i = 0; i < sizeof(auth_req) / sizeof(*auth_req); i++) {
                snprintf(want, sizeof(want), "field %s is missing",
                         auth_req[i]);
                expect_edit_err(design_auth, auth_req[i], NULL,
                                MG_ERR_INVALID, want);
                /* null is the same as absent. */
                expect_edit_err(design_auth, auth_req[i], "null",
                                MG_ERR_INVALID, want);
        }
        for (i = 0; i < sizeof(usage_req) / sizeof(*usage_req); i++) {
                snprintf(want, sizeof(want), "field %s is missing",
                         usage_req[i]);
                expect_edit_err(design_usage, usage_req[i], NULL,
                                MG_ERR_INVALID, want);
        }
        for (i = 0; i < sizeof(signal_req) / sizeof(*signal_req); i++) {
                snprintf(want, sizeof(want), "field %s is missing",
                         signal_req[i]);
                expect_edit_err(design_signal, signal_req[i], NULL,
                                MG_ERR_INVALID, want);
        }
        expect_edit_err(design_auth, "type", NULL, MG_ERR_INVALID,
                        "field type is missing");
}

static void test_json_empty_identity(void **state) {
        expect_edit_err(design_auth, "identity", "\"\"", MG_ERR_INVALID,
                        "identity is empty");
        expect_edit_err(design_usage, "event_id", "\"\"", MG_ERR_INVALID,
                        "event_id is empty");
}

static void test_json_wrong_type(void **state) {
        expect_edit_err(design_usage, "status", "\"201\"", MG_ERR_INVALID,
                        "field status: expected integer");
        expect_edit_err(design_usage, "bytes", "1.5", MG_ERR_INVALID,
                        "field bytes: expected integer");
        expect_edit_err(design_signal, "severity", "true", MG_ERR_INVALID,
                        "field severity: expected integer");
        expect_edit_err(design_auth, "identity", "5", MG_ERR_INVALID,
                        "field identity: expected string");
        expect_edit_err(design_auth, "user_agent", "{}", MG_ERR_INVALID,
                        "field user_agent: expected string");
        expect_edit_err(design_auth, "auth_method", "3", MG_ERR_INVALID,
                        "field auth_method: expected string");
        expect_edit_err(design_auth, "scopes", "\"deploy:write\"",
                        MG_ERR_INVALID, "field scopes: expected array");
        expect_edit_err(design_auth, "scopes", "[\"a\",7]", MG_ERR_INVALID,
                        "field scopes[1]: expected string");
        expect_edit_err(design_auth, "type", "1", MG_ERR_INVALID,
                        "field type: expected string");
        expect_edit_err(design_auth, "ts", "[]", MG_ERR_INVALID, "field ts");
        expect_edit_err(design_auth, "ts", "1795168800000.0", MG_ERR_INVALID,
                        "field ts");
        expect_edit_err(design_usage, "status", "2147483648", MG_ERR_INVALID,
                        "field status");
        expect_edit_err(design_signal, "severity", "-2147483649",
                        MG_ERR_INVALID, "field severity");
}

static void test_json_unknown_enum(void **state) {
        expect_edit_err(design_auth, "auth_method", "\"foo\"",
                        MG_ERR_BAD_ENUM,
                        "field auth_method: unknown value \"foo\"");
        expect_edit_err(design_auth, "identity_kind", "\"robot\"",
                        MG_ERR_BAD_ENUM,
                        "field identity_kind: unknown value \"robot\"");
        expect_edit_err(design_auth, "grant_type", "\"password\"",
                        MG_ERR_BAD_ENUM,
                        "field grant_type: unknown value \"password\"");
        expect_edit_err(design_auth, "outcome", "\"SUCCESS\"",
                        MG_ERR_BAD_ENUM,
                        "field outcome: unknown value \"SUCCESS\"");
        expect_edit_err(design_signal, "kind", "\"\"", MG_ERR_BAD_ENUM,
                        "field kind: unknown value \"\"");
        /* Odd bytes in the value are escaped in the message. */
        expect_edit_err(design_signal, "kind", "\"a\\nb\"", MG_ERR_BAD_ENUM,
                        "field kind: unknown value \"a\\x0ab\"");
        /* A long value is cut short in the message. */
        expect_edit_err(design_signal, "kind",
                        "\"0123456789012345678901234567890123456789"
                        "0123456789\"",
                        MG_ERR_BAD_ENUM,
                        "unknown value \"012345678901234567890123456789"
                        "012345678901234567\"...");
        /* An unknown type is named. */
        expect_edit_err(design_auth, "type", "\"login\"", MG_ERR_INVALID,
                        "field type: unknown event type \"login\"");
}

static void test_json_oversize(void **state) {
        static char big[6000 + 3];
        char *val = big;

        val[0] = '"';
        memset(val + 1, 'x', 5000);
        val[5001] = '"';
        val[5002] = '\0';
        expect_edit_err(design_auth, "user_agent", val, MG_ERR_TOOBIG,
                        "field user_agent is 5000 bytes, the limit is 1024");

        memset(val + 1, 'x', 513);
        val[514] = '"';
        val[515] = '\0';
        expect_edit_err(design_auth, "identity", val, MG_ERR_TOOBIG,
                        "field identity is 513 bytes, the limit is 512");
        val[513] = '"';
        val[514] = '\0';
        expect_edit_ok(design_auth, "identity", val);
        assert_int_equal(strlen(ev.identity), 512);
}

static void test_json_arena_full(void **state) {
        /* 20 scopes of 1000 bytes: each under the field cap, together over
         * the arena. */
        json_t *root = json_loads(design_auth, 0, NULL), *arr = json_array();
        char s[1001];
        char *line;
        int i;

        memset(s, 's', 1000);
        s[1000] = '\0';
        for (i = 0; i < 20; i++)
                json_array_append_new(arr, json_string(s));
        json_object_set_new(root, "scopes", arr);
        line = json_dumps(root, JSON_COMPACT);
        json_decref(root);
        expect_err(line, MG_ERR_TOOBIG, "event is larger than 16384 bytes");
        free(line);
}

static void test_json_scopes_limit(void **state) {
        json_t *root = json_loads(design_auth, 0, NULL), *arr = json_array();
        char *line;
        int i;

        for (i = 0; i < MG_EVENT_SCOPES_MAX; i++)
                json_array_append_new(arr, json_sprintf("scope%d", i));
        json_object_set_new(root, "scopes", arr);
        line = json_dumps(root, JSON_COMPACT);
        assert_int_equal(parse(&ev, line), MG_OK);
        assert_int_equal(ev.u.auth.scope_cnt, MG_EVENT_SCOPES_MAX);
        assert_string_equal(ev.u.auth.scopes[63], "scope63");
        assert_round_trip(&ev);
        free(line);

        json_array_append_new(arr, json_string("one-too-many"));
        line = json_dumps(root, JSON_COMPACT);
        json_decref(root);
        expect_err(line, MG_ERR_TOOBIG,
                   "field scopes has 65 entries, the limit is 64");
        free(line);
}

static void test_json_nul_in_string(void **state) {
        expect_edit_err(design_auth, "client_id", "\"gh\\u0000x\"",
                        MG_ERR_INVALID, "field client_id contains a NUL byte");
}

static void test_json_ts(void **state) {
        static const char *const bad[] = {
                "\"2026-11-20\"",          "\"2026-11-20T10:00:00\"",
                "\"2026-11-20T10:00Z\"",   "\"2026-11-20T10:00:00.Z\"",
                "\"2026-13-20T10:00:00Z\"", "\"20261120T100000Z\"",
                "\"2026-11-20T10:00:00Z \"", "\"yesterday\"",
                "\"\"",                    "\"2026-11-20T10:00:00+0100\"",
        };
        char val[64];
        size_t i;

        for (i = 0; i < sizeof(bad) / sizeof(*bad); i++)
                expect_edit_err(design_signal, "ts", bad[i], MG_ERR_INVALID,
                                "field ts");
        expect_edit_err(design_signal, "ts", "\"2026-11-20T10:00:00+01\"",
                        MG_ERR_INVALID,
                        "field ts: \"2026-11-20T10:00:00+01\" is not an RFC "
                        "3339 timestamp");

        /* Epoch milliseconds. */
        expect_edit_ok(design_signal, "ts", "1795168800123");
        assert_int_equal(ev.ts_ms, T0_MS + 123);

        /* Seconds sent as milliseconds land in 1970: rejected. */
        expect_edit_err(design_signal, "ts", "1795168800", MG_ERR_INVALID,
                        "field ts: 1795168800 (1970-01-21T18:39:28.800Z) is "
                        "before 2000-01-01T00:00:00Z");
        expect_edit_err(design_signal, "ts", "\"1999-12-31T23:59:59.999Z\"",
                        MG_ERR_INVALID, "before 2000-01-01");
        expect_edit_ok(design_signal, "ts", "\"2000-01-01T00:00:00Z\"");
        assert_int_equal(ev.ts_ms, MG_EVENT_TS_MIN);

        /* Up to 24 h ahead of now is accepted, one ms more is not. */
        snprintf(val, sizeof(val), "%lld", NOW_MS + MG_EVENT_TS_MAX_FUTURE);
        expect_edit_ok(design_signal, "ts", val);
        snprintf(val, sizeof(val), "%lld",
                 NOW_MS + MG_EVENT_TS_MAX_FUTURE + 1);
        expect_edit_err(design_signal, "ts", val, MG_ERR_INVALID,
                        "field ts: 2026-11-22T00:00:00.001Z is more than 24 "
                        "hours ahead of now (2026-11-21T00:00:00.000Z)");
}

static void test_json_optionals_and_defaults(void **state) {
        static const char auth_min[] =
                "{\"type\":\"auth\",\"event_id\":\"a\","
                "\"ts\":\"2026-11-20T10:00:00Z\",\"identity\":\"i\","
                "\"client_id\":\"c\",\"source_ip\":\"s\","
                "\"auth_method\":\"api_key\",\"grant_type\":\"jwt_bearer\","
                "\"outcome\":\"failure\"}";
        static const char usage_min[] =
                "{\"type\":\"usage\",\"event_id\":\"u\","
                "\"ts\":\"2026-11-20T10:00:00Z\",\"identity\":\"i\","
                "\"resource\":\"r\",\"action\":\"a\"}";
        static const char signal_min[] =
                "{\"type\":\"signal\",\"event_id\":\"s\","
                "\"ts\":\"2026-11-20T10:00:00Z\",\"identity\":\"i\","
                "\"kind\":\"quarantine\",\"source\":\"ir\"}";

        assert_int_equal(parse(&ev, auth_min), MG_OK);
        assert_int_equal(ev.u.auth.identity_kind, MG_IDENTITY_KIND_UNKNOWN);
        assert_null(ev.u.auth.user_agent);
        assert_null(ev.u.auth.audience);
        assert_int_equal(ev.u.auth.scope_cnt, 0);
        assert_null(ev.u.auth.failure_reason);
        assert_null(ev.u.auth.token_id);
        assert_null(ev.u.auth.parent_token_id);
        assert_int_equal(ev.u.auth.auth_method, MG_AUTH_METHOD_API_KEY);
        assert_int_equal(ev.u.auth.grant_type, MG_GRANT_JWT_BEARER);
        assert_int_equal(ev.u.auth.outcome, MG_OUTCOME_FAILURE);

        assert_int_equal(parse(&ev, usage_min), MG_OK);
        assert_null(ev.u.usage.token_id);
        assert_null(ev.u.usage.scope);
        assert_null(ev.u.usage.source_ip);
        assert_int_equal(ev.u.usage.status, 0);
        assert_int_equal(ev.u.usage.bytes, 0);

        assert_int_equal(parse(&ev, signal_min), MG_OK);
        assert_int_equal(ev.u.signal.severity, 50);
        assert_null(ev.u.signal.detail);

        /* Explicit nulls behave as absent, defaults included. */
        expect_edit_ok(design_auth, "identity_kind", "null");
        assert_int_equal(ev.u.auth.identity_kind, MG_IDENTITY_KIND_UNKNOWN);
        expect_edit_ok(design_auth, "scopes", "null");
        assert_int_equal(ev.u.auth.scope_cnt, 0);
        expect_edit_ok(design_auth, "scopes", "[]");
        assert_int_equal(ev.u.auth.scope_cnt, 0);
        expect_edit_ok(design_signal, "severity", "null");
        assert_int_equal(ev.u.signal.severity, 50);
        expect_edit_ok(design_usage, "status", "null");
        assert_int_equal(ev.u.usage.status, 0);
        expect_edit_ok(design_usage, "token_id", "null");
        assert_null(ev.u.usage.token_id);
}

static void test_json_unknown_fields(void **state) {
        expect_edit_ok(design_auth, "x_extra", "{\"nested\":[1,2,{}]}");
        assert_string_equal(ev.u.auth.client_id, "gh-actions");
        /* A field of another event type is just unknown here. */
        expect_edit_ok(design_signal, "resource", "42");
        assert_int_equal(ev.u.signal.severity, 90);
}

static void test_json_not_object(void **state) {
        static const char *const lines[] = {"[1,2]", "\"auth\"", "42",
                                            "null", "true"};
        size_t i;

        for (i = 0; i < sizeof(lines) / sizeof(*lines); i++)
                expect_err(lines[i], MG_ERR_INVALID,
                           "expected a JSON object");
        expect_err("", MG_ERR_INVALID, "invalid JSON");
        expect_err("{", MG_ERR_INVALID, "invalid JSON");
        expect_err("{\"type\":\"auth\"} {}", MG_ERR_INVALID, "invalid JSON");
        expect_err("{\"type\":\"auth\",\"type\":\"usage\"}", MG_ERR_INVALID,
                   "invalid JSON");
        /* Invalid UTF-8 in the input is a JSON error, not a crash. */
        expect_err("{\"type\":\"\xff\"}", MG_ERR_INVALID, "invalid JSON");
}

static void test_json_bounded_input(void **state) {
        /* len bounds the input: a valid line followed by garbage bytes the
         * caller did not pass. */
        char buf[sizeof(design_signal) + 8];

        memcpy(buf, design_signal, sizeof(design_signal) - 1);
        memcpy(buf + sizeof(design_signal) - 1, "garbage!", 8);
        assert_int_equal(mg_event_from_json(&ev, buf,
                                            sizeof(design_signal) - 1,
                                            NOW_MS, errstr, sizeof(errstr)),
                         MG_OK);
        /* Over the line cap: refused before parsing. */
        assert_int_equal(mg_event_from_json(&ev, buf, (size_t)1 << 30,
                                            NOW_MS, errstr, sizeof(errstr)),
                         MG_ERR_TOOBIG);
        assert_non_null(strstr(errstr, "JSON line"));
        /* A NULL errstr is allowed. */
        assert_int_equal(mg_event_from_json(&ev, "[]", 2, NOW_MS, NULL, 0),
                         MG_ERR_INVALID);
}

/*
 * Validation of hand-built events.
 */

static void set(struct mg_event *e, const char **field, const char *name,
                const char *s) {
        assert_int_equal(mg_event_set_str(e, field, name, s, strlen(s),
                                          errstr, sizeof(errstr)),
                         MG_OK);
}

static mg_err_t validate(const struct mg_event *e) {
        errstr[0] = '\0';
        return mg_event_validate(e, NOW_MS, errstr, sizeof(errstr));
}

static void build_auth(struct mg_event *e) {
        mg_event_reset(e, MG_EVENT_AUTH);
        set(e, &e->event_id, "event_id", "a");
        set(e, &e->identity, "identity", "id");
        e->ts_ms = T0_MS;
        set(e, &e->u.auth.client_id, "client_id", "c");
        set(e, &e->u.auth.source_ip, "source_ip", "10.0.0.1");
}

static void build_usage(struct mg_event *e) {
        mg_event_reset(e, MG_EVENT_USAGE);
        set(e, &e->event_id, "event_id", "u");
        set(e, &e->identity, "identity", "id");
        e->ts_ms = T0_MS;
        set(e, &e->u.usage.resource, "resource", "r");
        set(e, &e->u.usage.action, "action", "a");
}

static void build_signal(struct mg_event *e) {
        mg_event_reset(e, MG_EVENT_SIGNAL);
        set(e, &e->event_id, "event_id", "s");
        set(e, &e->identity, "identity", "id");
        e->ts_ms = T0_MS;
        set(e, &e->u.signal.source, "source", "scanner");
}

static void test_validate_common(void **state) {
        build_usage(&ev);
        assert_int_equal(validate(&ev), MG_OK);

        ev.type = (enum mg_event_type)7;
        assert_int_equal(validate(&ev), MG_ERR_BAD_ENUM);
        assert_non_null(strstr(errstr, "type"));

        build_usage(&ev);
        ev.event_id = NULL;
        assert_int_equal(validate(&ev), MG_ERR_INVALID);
        assert_string_equal(errstr, "field event_id is missing");

        build_usage(&ev);
        ev.identity = "";
        assert_int_equal(validate(&ev), MG_ERR_INVALID);
        assert_string_equal(errstr, "identity is empty");

        build_usage(&ev);
        ev.identity = NULL;
        assert_int_equal(validate(&ev), MG_ERR_INVALID);
        assert_string_equal(errstr, "field identity is missing");

        /* The identity cap holds for hand-built events too. */
        {
                static char longid[MG_EVENT_IDENTITY_MAX + 2];

                memset(longid, 'i', MG_EVENT_IDENTITY_MAX + 1);
                build_usage(&ev);
                ev.identity = longid;
                assert_int_equal(validate(&ev), MG_ERR_TOOBIG);
                assert_non_null(strstr(errstr, "field identity"));
                longid[MG_EVENT_IDENTITY_MAX] = '\0';
                assert_int_equal(validate(&ev), MG_OK);
        }

        build_usage(&ev);
        ev.ts_ms = MG_EVENT_TS_MIN - 1;
        assert_int_equal(validate(&ev), MG_ERR_INVALID);
        assert_non_null(strstr(errstr, "field ts"));
        ev.ts_ms = MG_EVENT_TS_MIN;
        assert_int_equal(validate(&ev), MG_OK);
        ev.ts_ms = NOW_MS + MG_EVENT_TS_MAX_FUTURE + 1;
        assert_int_equal(validate(&ev), MG_ERR_INVALID);
        assert_non_null(strstr(errstr, "field ts"));
        /* An absurd now does not overflow. */
        ev.ts_ms = INT64_MAX;
        assert_int_equal(mg_event_validate(&ev, INT64_MAX, errstr,
                                           sizeof(errstr)),
                         MG_OK);
        assert_int_equal(mg_event_validate(&ev, NOW_MS, errstr,
                                           sizeof(errstr)),
                         MG_ERR_INVALID);
}

static void test_validate_auth(void **state) {
        build_auth(&ev);
        assert_int_equal(validate(&ev), MG_OK);

        ev.u.auth.client_id = NULL;
        assert_int_equal(validate(&ev), MG_ERR_INVALID);
        assert_string_equal(errstr, "field client_id is missing");

        build_auth(&ev);
        ev.u.auth.source_ip = NULL;
        assert_int_equal(validate(&ev), MG_ERR_INVALID);
        assert_string_equal(errstr, "field source_ip is missing");

        build_auth(&ev);
        ev.u.auth.auth_method = MG_AUTH_METHOD__CNT;
        assert_int_equal(validate(&ev), MG_ERR_BAD_ENUM);
        assert_non_null(strstr(errstr, "field auth_method"));

        build_auth(&ev);
        ev.u.auth.grant_type = (enum mg_grant_type)-1;
        assert_int_equal(validate(&ev), MG_ERR_BAD_ENUM);
        assert_non_null(strstr(errstr, "field grant_type"));

        build_auth(&ev);
        ev.u.auth.outcome = MG_OUTCOME__CNT;
        assert_int_equal(validate(&ev), MG_ERR_BAD_ENUM);
        assert_non_null(strstr(errstr, "field outcome"));

        build_auth(&ev);
        ev.u.auth.identity_kind = MG_IDENTITY_KIND__CNT;
        assert_int_equal(validate(&ev), MG_ERR_BAD_ENUM);
        assert_non_null(strstr(errstr, "field identity_kind"));

        build_auth(&ev);
        ev.u.auth.scope_cnt = MG_EVENT_SCOPES_MAX + 1;
        assert_int_equal(validate(&ev), MG_ERR_INVALID);
        assert_non_null(strstr(errstr, "field scopes"));
        ev.u.auth.scope_cnt = -1;
        assert_int_equal(validate(&ev), MG_ERR_INVALID);
        ev.u.auth.scope_cnt = 1;
        ev.u.auth.scopes[0] = NULL;
        assert_int_equal(validate(&ev), MG_ERR_INVALID);
        assert_non_null(strstr(errstr, "scopes[0]"));
}

static void test_validate_usage(void **state) {
        build_usage(&ev);
        ev.u.usage.bytes = -1;
        assert_int_equal(validate(&ev), MG_ERR_INVALID);
        assert_non_null(strstr(errstr, "field bytes"));
        ev.u.usage.bytes = 0;
        assert_int_equal(validate(&ev), MG_OK);

        ev.u.usage.resource = NULL;
        assert_int_equal(validate(&ev), MG_ERR_INVALID);
        assert_string_equal(errstr, "field resource is missing");

        build_usage(&ev);
        ev.u.usage.action = NULL;
        assert_int_equal(validate(&ev), MG_ERR_INVALID);
        assert_string_equal(errstr, "field action is missing");

        /* From JSON too. */
        expect_edit_err(design_usage, "bytes", "-5", MG_ERR_INVALID,
                        "field bytes: -5 is negative");
}

static void test_validate_signal(void **state) {
        build_signal(&ev);
        assert_int_equal(validate(&ev), MG_OK);
        ev.u.signal.severity = 100;
        assert_int_equal(validate(&ev), MG_OK);
        ev.u.signal.severity = 101;
        assert_int_equal(validate(&ev), MG_ERR_INVALID);
        assert_non_null(strstr(errstr, "field severity"));
        ev.u.signal.severity = -1;
        assert_int_equal(validate(&ev), MG_ERR_INVALID);

        build_signal(&ev);
        ev.u.signal.kind = MG_SIGNAL__CNT;
        assert_int_equal(validate(&ev), MG_ERR_BAD_ENUM);
        assert_non_null(strstr(errstr, "field kind"));

        build_signal(&ev);
        ev.u.signal.source = NULL;
        assert_int_equal(validate(&ev), MG_ERR_INVALID);
        assert_string_equal(errstr, "field source is missing");

        expect_edit_err(design_signal, "severity", "101", MG_ERR_INVALID,
                        "field severity: 101 is out of range 0..100");
}

/*
 * RFC 3339.
 */

/* Reference model: days since 1970-01-01, one month at a time. */
static int64_t naive_days(int y, int m, int d) {
        static const int mdays[12] = {31, 28, 31, 30, 31, 30,
                                      31, 31, 30, 31, 30, 31};
        int64_t days = 0;
        int yy, mm;

        for (yy = 1970; yy < y; yy++)
                days += (yy % 4 == 0 && yy % 100 != 0) || yy % 400 == 0 ? 366
                                                                        : 365;
        for (yy = y; yy < 1970; yy++)
                days -= (yy % 4 == 0 && yy % 100 != 0) || yy % 400 == 0 ? 366
                                                                        : 365;
        for (mm = 1; mm < m; mm++)
                days += mdays[mm - 1] +
                        (mm == 2 && ((y % 4 == 0 && y % 100 != 0) ||
                                     y % 400 == 0));
        return days + d - 1;
}

static int naive_mdays(int y, int m) {
        static const int mdays[12] = {31, 28, 31, 30, 31, 30,
                                      31, 31, 30, 31, 30, 31};

        return mdays[m - 1] +
               (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
}

static mg_err_t ts(const char *s, int64_t *ms) {
        return mg_time_parse_rfc3339(s, strlen(s), ms);
}

/* Every day from 1899 to 2101 (so 1900 and 2100, not leap, and 2000, leap,
 * are all crossed): parse and format agree with the reference model. */
static void test_rfc3339_reference(void **state) {
        char buf[40], fmt[40];
        int y, m, d;
        int64_t ms;

        for (y = 1899; y <= 2101; y++) {
                for (m = 1; m <= 12; m++) {
                        for (d = 1; d <= naive_mdays(y, m); d++) {
                                int64_t want = naive_days(y, m, d) *
                                                       86400000LL +
                                               (13 * 3600 + 7 * 60 + 9) *
                                                       1000LL +
                                               42;

                                snprintf(buf, sizeof(buf),
                                         "%04d-%02d-%02dT13:07:09.042Z", y, m,
                                         d);
                                assert_int_equal(ts(buf, &ms), MG_OK);
                                assert_int_equal(ms, want);
                                mg_time_format_rfc3339(ms, fmt, sizeof(fmt));
                                assert_string_equal(fmt, buf);
                        }
                        /* The day after the last is rejected. */
                        snprintf(buf, sizeof(buf),
                                 "%04d-%02d-%02dT00:00:00Z", y, m,
                                 naive_mdays(y, m) + 1);
                        assert_int_equal(ts(buf, &ms), MG_ERR_INVALID);
                }
        }
}

static void test_rfc3339_cases(void **state) {
        static const struct {
                const char *s;
                int64_t ms;
        } good[] = {
                {"1970-01-01T00:00:00Z", 0},
                {"1969-12-31T23:59:59.999Z", -1},
                {"2026-11-20T10:00:00Z", T0_MS},
                {"2026-11-20t10:00:00z", T0_MS},
                {"2026-11-20 10:00:00Z", T0_MS},
                {"2026-11-20T15:30:00+05:30", T0_MS},
                {"2026-11-20T02:00:00-08:00", T0_MS},
                {"2026-11-20T10:00:00-00:00", T0_MS},
                {"2026-11-21T09:59:00+23:59", T0_MS},
                {"2026-11-20T10:00:00.1Z", T0_MS + 100},
                {"2026-11-20T10:00:00.12Z", T0_MS + 120},
                {"2026-11-20T10:00:00.123Z", T0_MS + 123},
                {"2026-11-20T10:00:00.123999999Z", T0_MS + 123},
                {"2026-11-20T10:00:00.000000000000000000001Z", T0_MS},
                {"2026-11-20T15:30:00.5+05:30", T0_MS + 500},
                /* Leap second: the first ms of the next minute. */
                {"2026-11-20T09:59:60Z", T0_MS},
                {"2024-02-29T00:00:00Z", 1709164800000LL},
                {"2000-02-29T00:00:00Z", 951782400000LL},
        };
        static const char *const bad[] = {
                "2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z",
                "2026-04-31T00:00:00Z", "2026-00-10T00:00:00Z",
                "2026-13-10T00:00:00Z", "2026-01-00T00:00:00Z",
                "2026-01-32T00:00:00Z", "2026-01-01T24:00:00Z",
                "2026-01-01T23:60:00Z", "2026-01-01T23:59:61Z",
                "2026-01-01T00:00:00+24:00", "2026-01-01T00:00:00+05:60",
                "2026-01-01T00:00:00+0530", "2026-01-01T00:00:00+05",
                "2026-01-01T00:00:00", "2026-01-01T00:00:00.Z",
                "2026-01-01T00:00:00,5Z", "2026-01-01T00:00Z",
                "2026-01-01", "2026-1-01T00:00:00Z", "26-01-01T00:00:00Z",
                "2026-01-01X00:00:00Z", "2026-01-01T00:00:00ZZ",
                "2026-01-01T00:00:00Z ", " 2026-01-01T00:00:00Z",
                "+2026-01-01T00:00:00Z", "2026-01-01T0a:00:00Z",
                "2026-01-01T00:00:00UTC", "",
        };
        char buf[64];
        int64_t ms;
        size_t i;

        for (i = 0; i < sizeof(good) / sizeof(*good); i++) {
                ms = 0x5a5a;
                if (ts(good[i].s, &ms) != MG_OK || ms != good[i].ms)
                        fail_msg("%s: got %lld, want %lld", good[i].s,
                                 (long long)ms, (long long)good[i].ms);
        }
        for (i = 0; i < sizeof(bad) / sizeof(*bad); i++)
                if (ts(bad[i], &ms) != MG_ERR_INVALID)
                        fail_msg("%s: accepted", bad[i]);
        /* len bounds the text: a prefix of a valid time is not one. */
        assert_int_equal(mg_time_parse_rfc3339("2026-11-20T10:00:00Z", 19,
                                               &ms),
                         MG_ERR_INVALID);
        assert_int_equal(mg_time_parse_rfc3339("2026-11-20T10:00:00Zjunk", 20,
                                               &ms),
                         MG_OK);
        assert_int_equal(ms, T0_MS);

        mg_time_format_rfc3339(0, buf, sizeof(buf));
        assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
        mg_time_format_rfc3339(-1, buf, sizeof(buf));
        assert_string_equal(buf, "1969-12-31T23:59:59.999Z");
        mg_time_format_rfc3339(T0_MS + 1250, buf, sizeof(buf));
        assert_string_equal(buf, "2026-11-20T10:00:01.250Z");
        mg_time_format_rfc3339(MG_EVENT_TS_MIN, buf, sizeof(buf));
        assert_string_equal(buf, "2000-01-01T00:00:00.000Z");
        /* Extremes format without overflow (and without a crash). */
        mg_time_format_rfc3339(INT64_MIN, buf, sizeof(buf));
        mg_time_format_rfc3339(INT64_MAX, buf, sizeof(buf));
        assert_true(strlen(buf) < sizeof(buf));
}

static void test_time_now(void **state) {
        int64_t now = mg_time_now_ms();
        int64_t sys = (int64_t)time(NULL) * 1000;

        assert_true(now >= sys - 2000 && now <= sys + 2000);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_enum_tables),
                cmocka_unit_test(test_enum_parse),
                cmocka_unit_test(test_set_str),
                cmocka_unit_test(test_add_scope),
                cmocka_unit_test(test_json_design_auth),
                cmocka_unit_test(test_json_design_usage),
                cmocka_unit_test(test_json_design_signal),
                cmocka_unit_test(test_json_write_form),
                cmocka_unit_test(test_json_round_trip),
                cmocka_unit_test(test_json_write_bad_utf8),
                cmocka_unit_test(test_json_missing_required),
                cmocka_unit_test(test_json_empty_identity),
                cmocka_unit_test(test_json_wrong_type),
                cmocka_unit_test(test_json_unknown_enum),
                cmocka_unit_test(test_json_oversize),
                cmocka_unit_test(test_json_arena_full),
                cmocka_unit_test(test_json_scopes_limit),
                cmocka_unit_test(test_json_nul_in_string),
                cmocka_unit_test(test_json_ts),
                cmocka_unit_test(test_json_optionals_and_defaults),
                cmocka_unit_test(test_json_unknown_fields),
                cmocka_unit_test(test_json_not_object),
                cmocka_unit_test(test_json_bounded_input),
                cmocka_unit_test(test_validate_common),
                cmocka_unit_test(test_validate_auth),
                cmocka_unit_test(test_validate_usage),
                cmocka_unit_test(test_validate_signal),
                cmocka_unit_test(test_rfc3339_reference),
                cmocka_unit_test(test_rfc3339_cases),
                cmocka_unit_test(test_time_now),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
