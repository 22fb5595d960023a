/*
 * fuzz_policy.c — libFuzzer target for the policy file loader
 * (mg_policy_load_buf()) and the decision function over what it loads.
 *
 * A load that fails must say where and why ("fuzz.yaml:" then, apart from
 * reader errors on undecodable bytes, "line:col: ") with MG_ERR_CONFIG.
 * A load that succeeds is exercised: a set of requests (fixed ones, plus
 * ones whose client, resource and scopes are cut from the input itself, so
 * the fuzzer can steer them onto the paths it wrote) is decided under
 * every kind of risk view at two instants, and each decision keeps the
 * invariants the header promises: granted scopes are requested ones, in
 * order, without duplicates; a deny grants nothing; an allow grants all
 * (distinct) requested scopes for the requested TTL; the TTL never grows;
 * reasons fit; the policy name fits. References are taken and dropped
 * around the decisions as the server would. Any violation abort()s.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                              \
        do {                                                                  \
                if (!(c)) {                                                   \
                        fprintf(stderr, "%s:%d: check failed: %s\n",          \
                                __FILE__, __LINE__, #c);                      \
                        abort();                                              \
                }                                                             \
        } while (0)

static int fuzz_unused_cb(void *opaque, const char *scope) {
        (void)opaque;
        return scope[0] == 'u';
}

static void fuzz_check(const struct mg_decide_req *req,
                       const struct mg_decision *d) {
        int i, j, k, distinct = 0;

        CHECK((unsigned)d->outcome < MG_DECISION__CNT);
        CHECK(d->reason_cnt >= 0 && d->reason_cnt <= MG_DECISION_REASONS_MAX);
        CHECK(memchr(d->policy, '\0', sizeof(d->policy)) != NULL);
        for (i = 0; i < d->reason_cnt; i++) {
                CHECK(memchr(d->reasons[i].signal, '\0',
                             sizeof(d->reasons[i].signal)));
                CHECK(memchr(d->reasons[i].detail, '\0',
                             sizeof(d->reasons[i].detail)));
        }
        if (d->outcome == MG_DECISION_DENY) {
                CHECK(d->scope_cnt == 0 && d->ttl == 0);
                CHECK(d->reason_cnt > 0);
                return;
        }
        CHECK(d->policy[0] != '\0');
        CHECK(d->scope_cnt >= 1 && d->ttl >= 1 && d->ttl <= req->ttl);
        /* In request order: each granted pointer is a later request slot
         * than the one before. */
        for (i = 0, k = 0; i < d->scope_cnt; i++, k++) {
                while (k < req->scope_cnt && req->scopes[k] != d->scopes[i])
                        k++;
                CHECK(k < req->scope_cnt);
                for (j = 0; j < i; j++)
                        CHECK(strcmp(d->scopes[i], d->scopes[j]));
        }
        for (i = 0; i < req->scope_cnt; i++) {
                for (j = 0; j < i; j++)
                        if (!strcmp(req->scopes[i], req->scopes[j]))
                                break;
                distinct += j == i;
        }
        if (d->outcome == MG_DECISION_ALLOW)
                CHECK(d->scope_cnt == distinct && d->ttl == req->ttl);
}

/* A NUL-terminated piece of the input (at most n bytes from off). */
static const char *fuzz_cut(struct mg_decide_req *req, const uint8_t *data,
                            size_t size, size_t off, size_t n) {
        char *s = req->arena + req->arena_used;
        size_t i, o = 0;

        for (i = off; i < size && o < n; i++)
                if (data[i] && data[i] != '\n')
                        s[o++] = (char)data[i];
        s[o] = '\0';
        req->arena_used += o + 1;
        return s;
}

static void fuzz_decide(const struct mg_policy *pol, const uint8_t *data,
                        size_t size) {
        static const char *const fixed[][3] = {
                {"gh-actions", "api://deploy/prod", "deploy:write"},
                {"svc-billing", "api://billing", "invoices:read"},
                {"agent-support-7", "api://support/tickets", "kb:read"},
                {"c", "r", "a"},
        };
        static const char *const grants[] = {"client_credentials",
                                             "token_exchange", "password"};
        static const int64_t nows[] = {1795422000000LL, /* Mon 08:20 UTC */
                                       1795872000000LL}; /* Sat 13:20 UTC */
        static struct mg_decide_req req;
        struct mg_risk_view view;
        struct mg_decision d;
        size_t off;
        int r, v, t;

        for (r = 0; r < 6; r++) {
                memset(&req, 0, offsetof(struct mg_decide_req, arena));
                req.identity = "spiffe://fuzz/id";
                if (r < 4) {
                        req.client_id = fixed[r][0];
                        req.resource = fixed[r][1];
                        req.scopes[0] = fixed[r][2];
                        req.scopes[1] = "unused:x";
                        req.scopes[2] = fixed[r][2];
                        req.scope_cnt = 3;
                } else {
                        /* Pieces of the input: YAML scalars live there. */
                        off = r == 4 ? size / 3 : size / 2;
                        req.client_id = fuzz_cut(&req, data, size, off, 24);
                        req.resource = fuzz_cut(&req, data, size, off + 3,
                                                24);
                        req.scopes[0] = fuzz_cut(&req, data, size, off + 6,
                                                 16);
                        req.scopes[1] = fuzz_cut(&req, data, size, off + 9,
                                                 8);
                        req.scope_cnt = 2;
                }
                req.grant_type = grants[r % 3];
                req.ttl = r == 5 ? 1 : 86400;
                req.exchange_depth = r;
                for (v = 0; v < 5; v++) {
                        memset(&view, 0, sizeof(view));
                        view.known = v > 0;
                        view.fresh = v > 1;
                        view.risk.score = v == 4 ? INFINITY : v * 24.0;
                        view.risk.level = (enum mg_risk_level)(v % 4);
                        view.risk.reason_cnt = v;
                        view.scope_unused_cb = v & 1 ? fuzz_unused_cb : NULL;
                        for (t = 0; t < 2; t++) {
                                mg_policy_decide(pol, &req, &view, nows[t],
                                                 &d);
                                fuzz_check(&req, &d);
                                CHECK(d.degraded == (v < 2 || v == 4));
                        }
                }
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static FILE *devnull;
        struct mg_policy *pol = NULL, *ref;
        struct mg_policy_slot slot;
        char errstr[1024];
        mg_err_t err;

        if (!devnull) {
                devnull = fopen("/dev/null", "w");
                if (devnull)
                        mg_policy_print_reference(devnull, 1);
        }
        errstr[0] = '\0';
        err = mg_policy_load_buf("fuzz.yaml", (const char *)data, size, &pol,
                                 errstr, sizeof(errstr));
        if (err) {
                CHECK(err == MG_ERR_CONFIG || err == MG_ERR_NOMEM);
                CHECK(pol == NULL);
                CHECK(!strncmp(errstr, "fuzz.yaml:", 10));
                CHECK(strlen(errstr) > 11);
                return 0;
        }
        CHECK(pol != NULL);
        CHECK(!strcmp(mg_policy_source(pol), "fuzz.yaml"));
        mg_policy_slot_init(&slot, pol);
        mg_policy_unref(pol); /* the slot's reference is the last */
        ref = mg_policy_slot_get(&slot);
        CHECK(ref == pol);
        mg_policy_slot_set(&slot, NULL); /* the request's ref keeps it */
        fuzz_decide(ref, data, size);
        mg_policy_unref(ref);
        mg_policy_slot_destroy(&slot);
        return 0;
}
