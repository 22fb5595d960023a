/*
 * fuzz_proto.c — libFuzzer target for the decision protocol codec
 * (mg_proto_parse_request() and the writers), with jansson as the
 * reference model of the hand-written request parser.
 *
 * For every input:
 *   - the parser and jansson agree on whether the line is a JSON object
 *     (bad_json exactly when jansson fails or finds no object), except
 *     that a raw NUL byte is always bad_json (see below);
 *   - a parse that fails says why, with a known code;
 *   - a parse that succeeds read the same fields jansson sees (strings
 *     byte for byte, the numeric id as the same number), and its
 *     invariants hold (required fields, caps, 1..64 scopes, ttl range);
 *   - the response and the error object written for it (with a fixed decision whose reasons hold awkward bytes) are
 *     valid JSON that jansson reads back to the same values;
 *   - mg_policy_decide() over the request under a fixed policy keeps its
 *     invariants (granted scopes are requested ones, no duplicates, TTL
 *     not above the request, a deny grants nothing).
 * Any violation abort()s.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mg_policy.h"
#include "mg_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fuzz_policy_yaml[] =
        "policies:\n"
        "  - client: \"*\"\n"
        "    resource: \"api://*\"\n"
        "    allowed_scopes: [\"read*\", \"write:*\", \"a\"]\n"
        "    high_impact_scopes: [\"write:*\"]\n"
        "    max_ttl: 1h\n"
        "    ttl_by_risk: [{below: 20, max_ttl: 30m}, {below: 50, max_ttl: "
        "1m}]\n"
        "    remove_unused_scopes: true\n"
        "    release_windows: [{scope: \"write:prod\", days: [mon], hours: "
        "\"08:00-09:00\"}]\n"
        "    max_exchange_depth: 2\n"
        "    grant_types: [client_credentials, token_exchange]\n"
        "    degraded: fail_narrow\n"
        "    minimum_scopes: [\"read*\"]\n"
        "  - client: \"c\"\n"
        "    resource: \"*\"\n"
        "    allowed_scopes: [\"*\"]\n"
        "    degraded: fail_open\n";

static struct mg_policy *fuzz_pol;

#define CHECK(c)                                                              \
        do {                                                                  \
                if (!(c)) {                                                   \
                        fprintf(stderr, "%s:%d: check failed: %s\n",          \
                                __FILE__, __LINE__, #c);                      \
                        abort();                                              \
                }                                                             \
        } while (0)

/* Every third scope is "unused". */
static int fuzz_unused_cb(void *opaque, const char *scope) {
        (void)opaque;
        return strlen(scope) % 3 == 0;
}

/* A string field of the request equals jansson's view of obj[key]. */
static void fuzz_same_str(json_t *obj, const char *key, const char *s) {
        json_t *v = obj ? json_object_get(obj, key) : NULL;

        if (!v || json_is_null(v)) {
                CHECK(s == NULL);
                return;
        }
        CHECK(s != NULL && json_is_string(v));
        CHECK(json_string_length(v) == strlen(s));
        CHECK(!memcmp(json_string_value(v), s, strlen(s)));
}

/* What the parser read equals what jansson read. */
static void fuzz_compare(const struct mg_decide_req *req, json_t *root) {
        json_t *v, *ctx;
        size_t i;

        v = json_object_get(root, "id");
        if (!v || json_is_null(v)) {
                CHECK(!req->id);
        } else if (json_is_string(v)) {
                CHECK(!req->id_numeric);
                fuzz_same_str(root, "id", req->id);
        } else {
                CHECK(req->id && req->id_numeric && json_is_number(v));
                if (json_is_integer(v))
                        CHECK(strtoll(req->id, NULL, 10) ==
                              json_integer_value(v));
                else
                        CHECK(strtod(req->id, NULL) == json_real_value(v));
        }
        fuzz_same_str(root, "identity", req->identity);
        fuzz_same_str(root, "client_id", req->client_id);
        fuzz_same_str(root, "resource", req->resource);
        fuzz_same_str(root, "grant_type", req->grant_type);
        v = json_object_get(root, "scopes");
        CHECK(json_is_array(v) &&
              json_array_size(v) == (size_t)req->scope_cnt);
        for (i = 0; i < json_array_size(v); i++) {
                json_t *s = json_array_get(v, i);

                CHECK(json_string_length(s) == strlen(req->scopes[i]) &&
                      !memcmp(json_string_value(s), req->scopes[i],
                              json_string_length(s)));
        }
        v = json_object_get(root, "ttl");
        CHECK(json_is_integer(v) && json_integer_value(v) == req->ttl);
        ctx = json_object_get(root, "context");
        if (!json_is_object(ctx))
                ctx = NULL;
        fuzz_same_str(ctx, "source_ip", req->source_ip);
        fuzz_same_str(ctx, "parent_token_id", req->parent_token_id);
        v = ctx ? json_object_get(ctx, "exchange_depth") : NULL;
        CHECK(json_is_integer(v) ? json_integer_value(v) ==
                                           req->exchange_depth
                                 : req->exchange_depth == 0);
}

static void fuzz_invariants(const struct mg_decide_req *req) {
        int i;

        CHECK(req->identity && *req->identity &&
              strlen(req->identity) <= MG_EVENT_IDENTITY_MAX);
        CHECK(req->client_id && *req->client_id);
        CHECK(req->resource && *req->resource);
        CHECK(req->grant_type && *req->grant_type);
        CHECK(req->scope_cnt >= 1 && req->scope_cnt <= MG_REQ_SCOPES_MAX);
        for (i = 0; i < req->scope_cnt; i++)
                CHECK(req->scopes[i] && *req->scopes[i] &&
                      !strchr(req->scopes[i], ' '));
        CHECK(req->ttl >= 1 && req->ttl <= MG_PROTO_TTL_MAX);
        CHECK(req->exchange_depth >= 0 &&
              req->exchange_depth <= MG_PROTO_EXCHANGE_DEPTH_MAX);
        CHECK(req->arena_used <= MG_REQ_ARENA_SIZE);
        CHECK(!req->id || strlen(req->id) <= MG_PROTO_ID_MAX);
}

/* The echoed id in a written object matches the request's. */
static void fuzz_check_id(json_t *root, const struct mg_decide_req *req) {
        json_t *id = json_object_get(root, "id");

        CHECK(id != NULL);
        if (!req || !req->id) {
                CHECK(json_is_null(id));
        } else if (req->id_numeric) {
                CHECK(json_is_number(id));
        } else {
                CHECK(json_is_string(id) &&
                      json_string_length(id) == strlen(req->id));
        }
}

/* buf (len bytes) is one JSON object. */
static json_t *fuzz_reparse(const char *buf, size_t len) {
        json_error_t jerr;
        json_t *root;

        CHECK(strlen(buf) == len && !memchr(buf, '\n', len));
        root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!root) {
                fprintf(stderr, "invalid JSON written (%s): %s\n", jerr.text,
                        buf);
                abort();
        }
        CHECK(json_is_object(root));
        return root;
}

static void fuzz_write(const struct mg_decide_req *req) {
        static char buf[MG_PROTO_OUT_MAX + 64];
        static const char *const sigs[] = {NULL, "c2ln", "\x01\xff\""};
        struct mg_decision d;
        json_t *root, *v;
        size_t len, small;
        int i;

        memset(&d, 0, sizeof(d));
        d.outcome = (enum mg_outcome)(req->scope_cnt % MG_DECISION__CNT);
        for (i = 0; i < req->scope_cnt; i += 2)
                d.scopes[d.scope_cnt++] = req->scopes[i];
        d.ttl = req->ttl / 2;
        d.risk = 47.456;
        d.level = MG_RISK_MEDIUM;
        /* Reasons with the request's own bytes cut anywhere, so detail
         * holds partial UTF-8 sequences and control characters. */
        for (i = 0; i < req->scope_cnt && i < MG_DECISION_REASONS_MAX; i++) {
                struct mg_decision_reason *r = &d.reasons[d.reason_cnt++];

                snprintf(r->signal, sizeof(r->signal), "%s",
                         req->scopes[i]);
                snprintf(r->detail, sizeof(r->detail), "%s\x7f\x1f%s",
                         req->identity, req->scopes[i]);
                r->points = (double)i * 3.333;
        }
        snprintf(d.policy, sizeof(d.policy), "%s", req->client_id);
        snprintf(d.decision_id, sizeof(d.decision_id), "%s", req->resource);
        d.degraded = req->ttl & 1;

        CHECK(mg_proto_format_response(req, &d, sigs[req->ttl % 3], buf,
                                       sizeof(buf), &len) == MG_OK);
        root = fuzz_reparse(buf, len);
        fuzz_check_id(root, req);
        v = json_object_get(root, "scopes");
        CHECK(json_is_array(v) && json_array_size(v) == (size_t)d.scope_cnt);
        v = json_object_get(root, "reasons");
        CHECK(json_is_array(v) &&
              json_array_size(v) == (size_t)d.reason_cnt);
        CHECK(json_is_number(json_object_get(root, "risk")));
        CHECK((json_object_get(root, "signature") != NULL) ==
              (sigs[req->ttl % 3] != NULL));
        json_decref(root);
        /* Too small a buffer: TOOBIG with the size needed. */
        small = len / 2;
        CHECK(mg_proto_format_response(req, &d, sigs[req->ttl % 3], buf,
                                       small, &small) == MG_ERR_TOOBIG &&
              small == len);
}

static void fuzz_decide(const struct mg_decide_req *req) {
        static const int64_t nows[] = {1795422000000LL /* Mon 08:20 UTC */,
                                       1795508400000LL /* Tue 08:20 UTC */};
        struct mg_risk_view view;
        struct mg_decision d;
        int i, j, k, n;

        for (n = 0; n < 4; n++) {
                memset(&view, 0, sizeof(view));
                view.known = n != 0;
                view.fresh = n >= 2;
                view.risk.score = n == 3 ? 35 : (double)(req->ttl % 101);
                view.risk.level = MG_RISK_MEDIUM;
                view.scope_unused_cb = n == 2 ? fuzz_unused_cb : NULL;
                mg_policy_decide(fuzz_pol, req, &view, nows[n & 1], &d);
                CHECK((unsigned)d.outcome < MG_DECISION__CNT);
                CHECK(d.reason_cnt >= 0 &&
                      d.reason_cnt <= MG_DECISION_REASONS_MAX);
                CHECK(d.degraded == (n < 2));
                if (d.outcome == MG_DECISION_DENY) {
                        CHECK(d.scope_cnt == 0 && d.ttl == 0);
                        continue;
                }
                CHECK(d.scope_cnt >= 1 && d.ttl >= 1 && d.ttl <= req->ttl);
                for (i = 0; i < d.scope_cnt; i++) {
                        for (k = 0; k < req->scope_cnt; k++)
                                if (d.scopes[i] == req->scopes[k])
                                        break;
                        CHECK(k < req->scope_cnt);
                        for (j = 0; j < i; j++)
                                CHECK(strcmp(d.scopes[i], d.scopes[j]));
                }
                if (d.outcome == MG_DECISION_ALLOW)
                        CHECK(d.ttl == req->ttl);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static struct mg_decide_req req;
        static char buf[MG_PROTO_OUT_MAX];
        char code[32], errstr[512];
        json_error_t jerr;
        json_t *root, *eroot;
        size_t len;
        mg_err_t err;

        if (!fuzz_pol &&
            mg_policy_load_buf("fuzz", fuzz_policy_yaml,
                               strlen(fuzz_policy_yaml), &fuzz_pol, errstr,
                               sizeof(errstr))) {
                fprintf(stderr, "%s\n", errstr);
                abort();
        }
        code[0] = errstr[0] = '\0';
        err = mg_proto_parse_request(&req, (const char *)data, size, code,
                                     sizeof(code), errstr, sizeof(errstr));
        root = json_loadb((const char *)data, size,
                          JSON_ALLOW_NUL | JSON_DECODE_ANY, &jerr);
        if (size > MG_PROTO_LINE_MAX) {
                CHECK(err == MG_ERR_TOOBIG &&
                      !strcmp(code, MG_PROTO_ERR_TOO_BIG));
        } else if (memchr(data, '\0', size)) {
                /* A raw NUL is never JSON (in a string it is a control
                 * character). jansson 2.14 lets one through right after
                 * a number or literal ("[1\0]"): not a model to follow. */
                CHECK(err == MG_ERR_INVALID &&
                      !strcmp(code, MG_PROTO_ERR_BAD_JSON));
        } else if (!root || !json_is_object(root)) {
                if (err != MG_ERR_INVALID ||
                    strcmp(code, MG_PROTO_ERR_BAD_JSON)) {
                        fprintf(stderr, "jansson refused (%s), we said %s\n",
                                root ? "not an object" : jerr.text,
                                err ? code : "ok");
                        abort();
                }
        } else if (err) {
                CHECK(!strcmp(code, MG_PROTO_ERR_BAD_FIELD) ||
                      !strcmp(code, MG_PROTO_ERR_TOO_BIG));
                CHECK(err == (strcmp(code, MG_PROTO_ERR_TOO_BIG)
                                      ? MG_ERR_INVALID
                                      : MG_ERR_TOOBIG));
        } else {
                fuzz_compare(&req, root);
                fuzz_invariants(&req);
        }
        if (err) {
                CHECK(errstr[0] != '\0');
                if (!strcmp(code, MG_PROTO_ERR_BAD_JSON))
                        CHECK(req.id == NULL);
                CHECK(mg_proto_format_error(&req, code, errstr, buf,
                                            sizeof(buf), &len) == MG_OK);
                eroot = fuzz_reparse(buf, len);
                fuzz_check_id(eroot, &req);
                CHECK(json_is_object(json_object_get(eroot, "error")));
                json_decref(eroot);
        } else {
                fuzz_write(&req);
                fuzz_decide(&req);
        }
        json_decref(root);
        return 0;
}
