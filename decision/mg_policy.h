/*
 * mg_policy.h — the issuance policy: a YAML file of policy paths, and the
 * decision function that applies the matching path to a request and the
 * identity's live risk.
 *
 * The policy file
 * ---------------
 * One YAML document, a mapping with these top-level keys:
 *
 *   version: 1          optional; the only version there is
 *   defaults: {...}     optional; any path key except client, resource and
 *                       name. A path that does not set a key takes it from
 *                       here, then from the built-in default.
 *   policies: [...]     required; a list of paths (an empty list denies
 *                       every request)
 *
 * A path is a mapping (mg_policy_print_reference() prints the table):
 *
 *   client: "gh-*"                 required; glob on the request client_id
 *   resource: "api://deploy*"      required; glob on the request resource
 *   name: ci-deploy                default "<client>/<resource>"; at most
 *                                  255 bytes; the decision's "policy"
 *   allowed_scopes: [deploy:*]     required; requested scopes matching none
 *                                  of these globs are removed (narrow)
 *   high_impact_scopes: [...]      removed once risk >= thresholds.narrow
 *   max_ttl: 1h                    cap on the requested TTL (default 1h)
 *   ttl_by_risk:                   further caps as risk rises: the first
 *     - {below: 10, max_ttl: 15m}  step with risk < below applies; risk at
 *     - {below: 25, max_ttl: 5m}   or above the last step's below keeps
 *                                  the last step's cap. below must rise
 *                                  and max_ttl must not grow, step by step.
 *   thresholds: {narrow: 25, step_up: 50, deny: 80}
 *                                  risk >= deny: deny; >= step_up: step_up;
 *                                  >= narrow: drop high-impact scopes.
 *                                  narrow <= step_up <= deny (equal values
 *                                  switch the lower outcome off).
 *   remove_unused_scopes: false    remove scopes the identity has not used
 *                                  (struct mg_risk_view.scope_unused_cb)
 *   scope_unused_days: 30          the window that reason text names; keep
 *                                  it equal to the risk cache's setting
 *   grant_types: [client_credentials, token_exchange]
 *                                  allowed grants (default: all); names as
 *                                  in mg_grant_type_names; others: deny
 *   max_exchange_depth: 1          deny when context.exchange_depth is
 *                                  deeper (default: no limit)
 *   release_windows:               a scope matching a window's scope glob
 *     - scope: "deploy:write"      is issued only inside one of its
 *       days: [mon, tue, wed, thu, fri]   windows (UTC; days default all
 *       hours: "08:00-18:00"       week, hours "00:00-24:00"; start <
 *                                  end, start inclusive, end exclusive)
 *   degraded: fail_closed          without fresh risk: fail_closed denies,
 *                                  fail_narrow grants only minimum_scopes
 *                                  with at most degraded_ttl, fail_open
 *                                  decides as if risk were 0
 *   minimum_scopes: [deploy:read]  globs; required by fail_narrow
 *   degraded_ttl: 5m               default 5m
 *
 * Durations (max_ttl, degraded_ttl, ttl_by_risk[].max_ttl) are whole
 * seconds: a bare integer, or a number with s, m, h or d. Globs: `*`
 * matches any run of characters (also none); every other character is
 * literal; `?`, `[`, `]`, `**`, control characters and (in scopes) spaces
 * are refused, as mistakes. Booleans are true/false (yes/no, on/off).
 *
 * Matching: the most specific path whose client and resource globs both
 * match wins. Specificity compares the client glob, then the resource
 * glob: longer literal prefix first, then fewer `*`; remaining ties go to
 * the earlier path in the file. No match: deny ("no policy for client X
 * and resource Y").
 *
 * Loading is strict: an unknown key (with a suggestion when one is
 * close), a wrong type, a duplicate key, a bad glob, a value out of range,
 * thresholds out of order, an unknown grant or degraded mode or day, a
 * malformed window, an alias or a second document is MG_ERR_CONFIG with
 * "file:line:col: where: what" in errstr. A policy is all or nothing.
 *
 * Deciding (mg_policy_decide()), in this order, the first deny winning:
 *   1. no matching path: deny;
 *   2. grant type not allowed, or exchange chain too deep: deny;
 *   3. risk not fresh (unknown, stale or not a number): the decision is
 *      degraded, and fail_closed denies, fail_open takes risk 0, fail_narrow
 *      keeps only minimum_scopes with at most degraded_ttl;
 *   4. risk >= deny: deny;
 *   5. each requested scope, in request order, duplicates dropped: removed
 *      when not allowed, outside its release window, high-impact at risk
 *      >= narrow, unused (remove_unused_scopes), or (fail_narrow) not a
 *      minimum scope — one reason per removed scope, the first that applies;
 *   6. TTL: requested, capped by max_ttl, ttl_by_risk and (fail_narrow)
 *      degraded_ttl, with a reason when capped;
 *   7. no scope left: deny; risk >= step_up: step_up (with the scopes and
 *      TTL a successful step-up would get); anything removed or shortened:
 *      narrow; else allow.
 * The reasons are the identity's risk reasons (when risk is known), then
 * the policy's, at most MG_DECISION_REASONS_MAX (the last slot then says
 * how many more there were). A deny grants no scopes and TTL 0.
 *
 * Lifetime and threads: a loaded policy is immutable and reference
 * counted. Any number of threads may call mg_policy_decide() on it at
 * once. Hot reload loads a new policy and swaps it into a struct
 * mg_policy_slot; a request holding the old one (mg_policy_slot_get())
 * finishes with it, and the last mg_policy_unref() frees it.
 */
#ifndef MG_POLICY_H
#define MG_POLICY_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mg_decision.h"
#include "mg_err.h"

/* A policy file over 1 MiB is a wrong path, not a policy. */
#define MG_POLICY_FILE_MAX (1024 * 1024)

struct mg_policy;

/* Load a policy file (MG_POLICY_FILE_MAX at most). On success *polp holds
 * one reference (release it with mg_policy_unref() or
 * mg_policy_destroy()); on error *polp is NULL and errstr says where and
 * what. Any thread; touches nothing shared. */
mg_err_t mg_policy_load_file(const char *path, struct mg_policy **polp,
                             char *errstr, size_t errstr_size);

/* The same from a buffer (need not be NUL-terminated); name labels error
 * messages. */
mg_err_t mg_policy_load_buf(const char *name, const char *buf, size_t len,
                            struct mg_policy **polp, char *errstr,
                            size_t errstr_size);

/* Take another reference; returns pol. NULL is passed through. */
struct mg_policy *mg_policy_ref(struct mg_policy *pol);
/* Drop a reference; the last one frees the policy. NULL is a no-op. */
void mg_policy_unref(struct mg_policy *pol);
/* mg_policy_unref() under the name that pairs with loading: drops the
 * loader's reference (other holders keep the policy alive). */
void mg_policy_destroy(struct mg_policy *pol);

/* Number of paths, and the name of the file it was loaded from. */
size_t mg_policy_path_cnt(const struct mg_policy *pol);
const char *mg_policy_source(const struct mg_policy *pol);

/* Decide req under pol with the identity's risk view at now_ms (epoch
 * milliseconds; release windows use it as UTC). Fills every field of out
 * and clears decision_id (the server sets it). out's scopes point into
 * req, so req must outlive out. Pure: no allocation, no clock, no locks;
 * view->scope_unused_cb is called (from this thread) when the matching
 * path removes unused scopes. */
void mg_policy_decide(const struct mg_policy *pol,
                      const struct mg_decide_req *req,
                      const struct mg_risk_view *view, int64_t now_ms,
                      struct mg_decision *out);

/* Print the path-key table (Markdown when markdown is set, plain text
 * for --help). */
void mg_policy_print_reference(FILE *fp, int markdown);

/*
 * Hot reload. Counting references is not enough on its own: a reader that
 * loads the pointer and then takes a reference can lose the race to a
 * writer that swaps and drops the last reference in between. The slot
 * makes "load and ref" one step under a mutex (held for two instructions;
 * uncontended, about 20 ns).
 */
struct mg_policy_slot {
        pthread_mutex_t lock; /* guards pol */
        struct mg_policy *pol; /* current policy (one reference), or NULL */
};

/* Start with pol (NULL allowed). The slot takes its own reference: the
 * caller still holds, and drops, its own. */
void mg_policy_slot_init(struct mg_policy_slot *slot, struct mg_policy *pol);
/* A new reference to the current policy (NULL when none): the caller
 * mg_policy_unref()s it when its request is done. Any thread. */
struct mg_policy *mg_policy_slot_get(struct mg_policy_slot *slot);
/* Install pol (NULL allowed; the slot takes its own reference, the caller
 * keeps and drops its own) and drop the slot's reference to the previous
 * policy, which lives on while requests hold it. Any thread. */
void mg_policy_slot_set(struct mg_policy_slot *slot, struct mg_policy *pol);
/* Drop the current policy and the mutex. No other thread may use the
 * slot any more. */
void mg_policy_slot_destroy(struct mg_policy_slot *slot);

#endif /* MG_POLICY_H */
