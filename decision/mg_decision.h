/*
 * mg_decision.h — the types every part of the decision service shares: an
 * issuance request (DESIGN.md "Decision protocol"), the live-risk view the
 * decision is taken with, and the decision itself.
 *
 * Like struct mg_event, a request owns its strings in a fixed arena (no
 * allocation per request; every size capped, an over-cap field is an error
 * naming it). A decision refers to the request's strings and to static
 * text; it owns its own reason details.
 */
#ifndef MG_DECISION_H
#define MG_DECISION_H

#include <stddef.h>
#include <stdint.h>

#include "mg_baseline.h"
#include "mg_err.h"
#include "mg_event.h"

#define MG_REQ_SCOPES_MAX   64    /* scopes in one request */
#define MG_REQ_ARENA_SIZE   16384 /* all strings of one request */
#define MG_DECISION_REASONS_MAX 16 /* reasons in one decision */

/* An issuance request. */
struct mg_decide_req {
        const char *id;               /* issuer's request id, may be NULL */
        int id_numeric;               /* id was a JSON number (id holds its
                                       * text): echoed unquoted */
        const char *identity;         /* required */
        const char *client_id;        /* required */
        const char *resource;         /* required: resource or audience */
        const char *scopes[MG_REQ_SCOPES_MAX]; /* requested scopes */
        int scope_cnt;
        const char *grant_type;       /* required, e.g. "token_exchange" */
        int64_t ttl;                  /* requested TTL, seconds, > 0 */
        const char *source_ip;        /* context.source_ip, may be NULL */
        const char *parent_token_id;  /* context.parent_token_id, or NULL */
        int exchange_depth;           /* context.exchange_depth, 0 = none */
        size_t arena_used;            /* bytes of arena in use */
        char arena[MG_REQ_ARENA_SIZE]; /* storage for every string */
};

/* The live risk a decision is taken with. */
struct mg_risk_view {
        int known;          /* a risk record exists for the identity */
        int fresh;          /* what we know is current: the record is within
                             * the staleness bound, or it is certain there
                             * is none (risk 0). Not fresh: degraded mode */
        struct mg_risk risk; /* valid when known */
        int64_t updated_ms; /* wall time scoring saved the record (its
                             * "updated"); 0: no record, or none said */
        /* Optional oracle: 1 if the identity was granted scope but has not
         * used it for scoring.scope_unused_after (mg_baseline_scope_unused
         * on the identity's baseline). NULL: no unused-scope data. */
        int (*scope_unused_cb)(void *opaque, const char *scope);
        void *opaque;
};

/* (MG_OUTCOME_* are the auth events' outcomes, see mg_event.h.) */
enum mg_outcome {
        MG_DECISION_ALLOW,
        MG_DECISION_NARROW,   /* fewer scopes and/or shorter TTL */
        MG_DECISION_STEP_UP,  /* ask for stronger authentication */
        MG_DECISION_DENY,
        MG_DECISION__CNT
};

extern const char *const mg_outcome_names[MG_DECISION__CNT];

/* One reason in a decision: a risk signal or a policy rule. */
struct mg_decision_reason {
        char signal[48];    /* e.g. "new_source", "scope_unused", "policy" */
        double points;      /* risk points, 0 for policy rules */
        char detail[160];   /* human-readable */
};

/* The answer. */
struct mg_decision {
        enum mg_outcome outcome;
        const char *scopes[MG_REQ_SCOPES_MAX]; /* granted (point into req) */
        int scope_cnt;
        int64_t ttl;                 /* granted TTL, seconds */
        double risk;                 /* risk used, 0..100 */
        enum mg_risk_level level;    /* its level */
        struct mg_decision_reason reasons[MG_DECISION_REASONS_MAX];
        int reason_cnt;
        char policy[256];            /* matching policy path, or "" */
        int degraded;                /* decided without fresh risk */
        char decision_id[40];        /* unique id (set by the server) */
};

/* Protocol error codes of DESIGN.md's error object. */
#define MG_PROTO_ERR_BAD_JSON   "bad_json"    /* line is not JSON */
#define MG_PROTO_ERR_BAD_FIELD  "bad_field"   /* missing / wrong type */
#define MG_PROTO_ERR_TOO_BIG    "too_big"     /* a cap was exceeded */
#define MG_PROTO_ERR_INTERNAL   "internal"    /* the server failed */
#define MG_PROTO_ERR_OVERLOADED "overloaded"  /* audit cannot keep up */

#endif /* MG_DECISION_H */
