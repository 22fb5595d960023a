/*
 * mg_replay.h — offline replay: recorded events through the same scoring
 * and decision code as the live pipeline, in one process, as fast as the
 * CPU allows.
 *
 * Scoring is mg_scorer over the in-memory store (mg_store_mem_new()), the
 * same code `mintgate score` runs over Redis. Decisions are
 * mg_policy_decide(), the same function `mintgate serve` calls, with the
 * risk view the live decision service would hold at that moment:
 *
 *   - the identity's risk as scoring last published it (a risk record is
 *     published when the level changes or the score moves by half a point;
 *     mg_apply_result.risk_changed), taken in through the cache's own
 *     parser (mg_riskcache_view_from_json()), or "no record, risk 0" for
 *     an identity scoring has never seen — always fresh: a replay has no
 *     outages;
 *   - unused scopes judged on the identity's baseline at the request's
 *     time.
 *
 * Every successful authentication event is an issuance: the issuer asked
 * before it minted the token, so its decision is taken with the risk
 * *before* the event is applied (the live service cannot know of an event
 * that has not happened yet). The request is the event's identity,
 * client_id, audience (or client_id when it has none), scopes and grant,
 * with replay.request_ttl and the token-exchange depth replay tracks from
 * the event's parent_token_id. Time is the event's time: release windows
 * and risk decay follow the recording, not the wall clock.
 *
 * Each identity carries one opaque pointer for the caller (backtest
 * bookkeeping), so a caller needs no second identity table.
 *
 * Threads: a replay belongs to one thread.
 */
#ifndef MG_REPLAY_H
#define MG_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "mg_baseline.h"
#include "mg_decision.h"
#include "mg_err.h"
#include "mg_event.h"
#include "mg_policy.h"

/* What a replay is built from; not copied, must outlive the replay. */
struct mg_replay_conf {
        const struct mg_scoring_conf *scoring; /* scoring settings */
        const struct mg_policy *policy;        /* issuance policy */
        int64_t request_ttl_s;  /* TTL each replayed issuance asks for */
        int64_t flush_every;    /* events between store flushes, >= 1 */
};

/* What one event did. */
struct mg_replay_step {
        mg_err_t verdict;            /* MG_OK, or MG_ERR_LATE (refused) */
        struct mg_apply_result res;  /* res.applied: the baseline took it */
        int decided;                 /* the event was an issuance */
        struct mg_decision decision; /* its decision, when decided */
        void **user;                 /* the identity's caller pointer,
                                      * NULL until the caller sets it */
};

struct mg_replay;

mg_err_t mg_replay_new(const struct mg_replay_conf *conf,
                       struct mg_replay **rpp, char *errstr,
                       size_t errstr_size);
/* Frees the replay; the caller frees what its user pointers hold first
 * (mg_replay_foreach()). */
void mg_replay_destroy(struct mg_replay *rp);

/* Replay one validated event (in event-time order, as recorded): decide
 * it when it is an issuance, then score it. step->decision refers to ev's
 * strings. Errors are fatal (out of memory, a store failure). */
mg_err_t mg_replay_event(struct mg_replay *rp, const struct mg_event *ev,
                         struct mg_replay_step *step, char *errstr,
                         size_t errstr_size);

/* Decide req at now_ms as the live service would after the events
 * replayed so far. out refers to req's strings. */
void mg_replay_decide(struct mg_replay *rp, const struct mg_decide_req *req,
                      int64_t now_ms, struct mg_decision *out);

/* The identity's baseline and risk at now_ms as `mintgate baseline show
 * --json` prints them (malloc'd), or NULL when it was never seen. */
char *mg_replay_baseline_json(struct mg_replay *rp, const char *identity,
                              int64_t now_ms);

/* Save every unflushed baseline to the store (the end of a replay). */
mg_err_t mg_replay_flush(struct mg_replay *rp, char *errstr,
                         size_t errstr_size);

/* Call cb for every identity seen, with its caller pointer. */
void mg_replay_foreach(struct mg_replay *rp,
                       void (*cb)(void *opaque, const char *identity,
                                  void **user),
                       void *opaque);

/* Identities seen. */
size_t mg_replay_identity_count(const struct mg_replay *rp);

#endif /* MG_REPLAY_H */
