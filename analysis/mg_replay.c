/*
 * mg_replay.c — offline replay over the live scoring and decision code
 * (contract in mg_replay.h).
 *
 * Per identity the replay keeps what the live decision service would hold
 * (the last published risk) and what the issuer would know (the exchange
 * depth of the identity's recent tokens), in an open-addressing table on
 * the identity. The baselines themselves live in the scorer's cache, over
 * an in-memory store that is flushed every replay.flush_every events, so
 * the store round trip (encode, compare-and-set, decode) is exercised as
 * in production without dominating the replay.
 */
#include "mg_replay.h"

#include <stdlib.h>
#include <string.h>

#include "mg_hash.h"
#include "mg_riskcache.h"
#include "mg_scorer.h"
#include "mg_store.h"

/* Recent tokens remembered per identity to tell an exchange's depth; the
 * baseline's token_chain signal remembers as many. */
#define RP_TOKENS 16

struct rp_token {
        uint64_t hash;   /* FNV-1a of the token id, 0 = empty */
        int depth;       /* 0: from a plain grant, +1 per exchange */
};

struct rp_ident {
        char *identity;                 /* key, owned */
        uint64_t hash;                  /* FNV-1a of identity */
        struct mg_risk_view view;       /* what the live service holds:
                                         * the last published record */
        struct rp_token tokens[RP_TOKENS]; /* ring of recent tokens */
        int token_next;                 /* next ring slot */
        void *user;                     /* the caller's */
};

struct mg_replay {
        const struct mg_replay_conf *conf; /* not owned */
        struct mg_worker_conf wconf;    /* every identity stays cached */
        struct mg_scorer *sc;           /* over an in-memory store */
        struct rp_ident **slots;        /* identity table */
        size_t nslots, cnt;
        uint64_t since_flush;           /* events since the last flush */
        struct mg_decide_req req;       /* scratch: one issuance */
};

/* The unused-scope oracle of one decision. */
struct rp_scope_ctx {
        const struct mg_baseline *bl;
        const struct mg_scoring_conf *conf;
        int64_t now_ms;
};

static uint64_t rp_hash(const char *s) {
        uint64_t h = mg_hash_str(s);

        return h ? h : 1; /* 0 marks an empty token slot */
}

static struct rp_ident **rp_slot(struct mg_replay *rp, const char *identity,
                                 uint64_t h) {
        size_t i = h & (rp->nslots - 1);

        while (rp->slots[i] && (rp->slots[i]->hash != h ||
                                strcmp(rp->slots[i]->identity, identity)))
                i = (i + 1) & (rp->nslots - 1);
        return &rp->slots[i];
}

static int rp_grow(struct mg_replay *rp) {
        struct rp_ident **old = rp->slots;
        size_t n = rp->nslots, i;

        rp->slots = calloc(n * 2, sizeof(*rp->slots));
        if (!rp->slots) {
                rp->slots = old;
                return -1;
        }
        rp->nslots = n * 2;
        for (i = 0; i < n; i++)
                if (old[i])
                        *rp_slot(rp, old[i]->identity, old[i]->hash) = old[i];
        free(old);
        return 0;
}

static struct rp_ident *rp_ident_get(struct mg_replay *rp,
                                     const char *identity) {
        uint64_t h = rp_hash(identity);
        struct rp_ident **slot, *id;

        if (rp->cnt + 1 > rp->nslots - rp->nslots / 4 && rp_grow(rp))
                return NULL;
        slot = rp_slot(rp, identity, h);
        if (*slot)
                return *slot;
        if (!(id = calloc(1, sizeof(*id))) ||
            !(id->identity = strdup(identity))) {
                free(id);
                return NULL;
        }
        id->hash = h;
        *slot = id;
        rp->cnt++;
        return id;
}

mg_err_t mg_replay_new(const struct mg_replay_conf *conf,
                       struct mg_replay **rpp, char *errstr,
                       size_t errstr_size) {
        struct mg_replay *rp = calloc(1, sizeof(*rp));
        struct mg_store store;
        mg_err_t err;

        *rpp = NULL;
        if (!rp)
                return mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                  "out of memory");
        rp->conf = conf;
        rp->wconf.cache_identities = INT64_MAX;
        rp->nslots = 1024;
        if (!(rp->slots = calloc(rp->nslots, sizeof(*rp->slots)))) {
                err = mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                 "out of memory");
                goto out;
        }
        if ((err = mg_store_mem_new(&store, errstr, errstr_size)))
                goto out;
        err = mg_scorer_new(conf->scoring, &rp->wconf, &store, &rp->sc,
                            errstr, errstr_size);
out:
        if (err)
                mg_replay_destroy(rp);
        else
                *rpp = rp;
        return err;
}

void mg_replay_destroy(struct mg_replay *rp) {
        size_t i;

        if (!rp)
                return;
        for (i = 0; rp->slots && i < rp->nslots; i++) {
                if (!rp->slots[i])
                        continue;
                free(rp->slots[i]->identity);
                free(rp->slots[i]);
        }
        free(rp->slots);
        mg_scorer_destroy(rp->sc);
        free(rp);
}

static int rp_scope_unused(void *opaque, const char *scope) {
        const struct rp_scope_ctx *ctx = opaque;

        return ctx->bl && mg_baseline_scope_unused(ctx->bl, ctx->conf, scope,
                                                   ctx->now_ms);
}

/* Decide req for identity id (NULL: never seen) at now_ms. */
static void rp_decide(struct mg_replay *rp, const struct rp_ident *id,
                      const struct mg_decide_req *req, int64_t now_ms,
                      struct mg_decision *out) {
        struct rp_scope_ctx ctx = {
                mg_scorer_baseline(rp->sc, req->identity), rp->conf->scoring,
                now_ms};
        struct mg_risk_view view = {0};

        if (id)
                view = id->view;
        view.fresh = 1; /* a replay has no outages */
        view.scope_unused_cb = rp_scope_unused;
        view.opaque = &ctx;
        mg_policy_decide(rp->conf->policy, req, &view, now_ms, out);
}

void mg_replay_decide(struct mg_replay *rp, const struct mg_decide_req *req,
                      int64_t now_ms, struct mg_decision *out) {
        struct rp_ident *const *slot =
                rp_slot(rp, req->identity, rp_hash(req->identity));

        rp_decide(rp, *slot, req, now_ms, out);
}

/* The exchange depth of a token the identity was issued, -1 if unknown. */
static int rp_token_depth(const struct rp_ident *id, const char *token_id) {
        uint64_t h = rp_hash(token_id);
        int i;

        for (i = 0; i < RP_TOKENS; i++)
                if (id->tokens[i].hash == h)
                        return id->tokens[i].depth;
        return -1;
}

/* The issuance an auth event records, as the issuer would have asked. */
static void rp_request(struct mg_replay *rp, const struct mg_event *ev,
                       const struct rp_ident *id) {
        const struct mg_event_auth *a = &ev->u.auth;
        struct mg_decide_req *req = &rp->req;
        int i, depth = 0;

        memset(req, 0, offsetof(struct mg_decide_req, arena));
        req->identity = ev->identity;
        req->client_id = a->client_id;
        req->resource = a->audience ? a->audience : a->client_id;
        for (i = 0; i < a->scope_cnt && i < MG_REQ_SCOPES_MAX; i++)
                req->scopes[i] = a->scopes[i];
        req->scope_cnt = i;
        req->grant_type = mg_grant_type_names[a->grant_type];
        req->ttl = rp->conf->request_ttl_s;
        req->source_ip = a->source_ip;
        req->parent_token_id = a->parent_token_id;
        if (a->parent_token_id) {
                /* A parent the identity was never issued is one exchange
                 * deep as far as the issuer can tell. */
                depth = rp_token_depth(id, a->parent_token_id);
                depth = depth < 0 ? 1 : depth + 1;
        }
        req->exchange_depth = depth;
}

static void rp_token_add(struct rp_ident *id, const char *token_id,
                         int depth) {
        id->tokens[id->token_next].hash = rp_hash(token_id);
        id->tokens[id->token_next].depth = depth;
        id->token_next = (id->token_next + 1) % RP_TOKENS;
}

/* Publish a risk change: the record scoring would publish, taken in as
 * the decision service's cache takes it. */
static mg_err_t rp_publish(struct rp_ident *id, const struct mg_risk *risk,
                           char *errstr, size_t errstr_size) {
        char *json = mg_store_risk_json(id->identity, risk, risk->ts_ms);
        mg_err_t err;

        if (!json)
                return mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                  "out of memory");
        err = mg_riskcache_view_from_json(json, strlen(json), &id->view,
                                          errstr, errstr_size);
        free(json);
        return err;
}

mg_err_t mg_replay_event(struct mg_replay *rp, const struct mg_event *ev,
                         struct mg_replay_step *step, char *errstr,
                         size_t errstr_size) {
        struct rp_ident *id = rp_ident_get(rp, ev->identity);
        mg_err_t err;

        step->decided = 0;
        step->user = NULL;
        if (!id)
                return mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                  "out of memory");
        step->user = &id->user;
        if (ev->type == MG_EVENT_AUTH &&
            ev->u.auth.outcome == MG_OUTCOME_SUCCESS) {
                rp_request(rp, ev, id);
                rp_decide(rp, id, &rp->req, ev->ts_ms, &step->decision);
                step->decided = 1;
                if (ev->u.auth.token_id)
                        rp_token_add(id, ev->u.auth.token_id,
                                     rp->req.exchange_depth);
        }
        err = mg_scorer_apply(rp->sc, &ev, 1, &step->verdict, &step->res,
                              errstr, errstr_size);
        if (err)
                return err;
        if (step->res.applied && step->res.risk_changed &&
            (err = rp_publish(id, &step->res.risk, errstr, errstr_size)))
                return err;
        if (++rp->since_flush >= (uint64_t)rp->conf->flush_every)
                return mg_replay_flush(rp, errstr, errstr_size);
        return MG_OK;
}

char *mg_replay_baseline_json(struct mg_replay *rp, const char *identity,
                              int64_t now_ms) {
        const struct mg_baseline *bl = mg_scorer_baseline(rp->sc, identity);

        return bl ? mg_baseline_to_json(bl, rp->conf->scoring, now_ms) : NULL;
}

mg_err_t mg_replay_flush(struct mg_replay *rp, char *errstr,
                         size_t errstr_size) {
        rp->since_flush = 0;
        return mg_scorer_flush(rp->sc, errstr, errstr_size);
}

void mg_replay_foreach(struct mg_replay *rp,
                       void (*cb)(void *opaque, const char *identity,
                                  void **user),
                       void *opaque) {
        size_t i;

        for (i = 0; i < rp->nslots; i++)
                if (rp->slots[i])
                        cb(opaque, rp->slots[i]->identity,
                           &rp->slots[i]->user);
}

size_t mg_replay_identity_count(const struct mg_replay *rp) {
        return rp->cnt;
}
