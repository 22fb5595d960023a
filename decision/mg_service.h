/*
 * mg_service.h — what the decision service does with one request, as a
 * struct mg_server_handler (mg_server.h is the transport):
 *
 *   parse (mg_proto) -> live risk (mg_riskcache) -> policy (mg_policy, the
 *   current one, held by reference for the request) -> decision id ->
 *   signature over the canonical response (mg_audit) -> audit record
 *   appended (and, with audit.fsync=always, durable) -> response line.
 *
 * A decision that cannot be audited is not given: the issuer gets an error
 * object (overloaded when the audit queue is full and audit.when_full is
 * deny, internal otherwise), never an unaudited answer.
 *
 * The policy is reloaded atomically (mg_service_reload()): a request sees
 * the old or the new policy, never half of one; a broken file is refused
 * with its error and the old policy keeps serving.
 */
#ifndef MG_SERVICE_H
#define MG_SERVICE_H

#include <stddef.h>
#include <stdint.h>

#include "mg_audit.h"
#include "mg_config.h"
#include "mg_err.h"
#include "mg_riskcache.h"
#include "mg_server.h"

/* Section "decision" (the service's own keys). */
struct mg_service_conf {
        char *policy;            /* decision.policy: path of the policy */
        int64_t policy_poll_ms;  /* decision.policy_poll: check for edits */
        int64_t audit_wait_ms;   /* decision.audit_wait: fsync=always wait */
};

extern const struct mg_conf_prop mg_service_conf_props[];
extern const size_t mg_service_conf_prop_cnt;

struct mg_service;

/* Everything the service is built from; not copied, must outlive it. */
struct mg_service_opts {
        const struct mg_service_conf *conf;
        const struct mg_riskcache_conf *risk;
        const struct mg_redis_conf *redis;
        const struct mg_audit_conf *audit;
        const struct mg_audit_log_opts *audit_opts; /* Kafka sink, or NULL */
};

/* Load the policy, open the audit log, start the risk subscriber. */
mg_err_t mg_service_new(const struct mg_service_opts *opts,
                        struct mg_service **svcp, char *errstr,
                        size_t errstr_size);
void mg_service_destroy(struct mg_service *svc);

/* The handler to give mg_server_new(). */
void mg_service_handler(struct mg_service *svc, struct mg_server_handler *h);

/* Reload the policy file. On error the old policy stays, the error names
 * file, line and column. */
mg_err_t mg_service_reload(struct mg_service *svc, char *errstr,
                           size_t errstr_size);

/* Reload if the policy file changed since the last load (size, mtime or
 * inode). Returns MG_OK when nothing changed or the reload succeeded. */
mg_err_t mg_service_reload_if_changed(struct mg_service *svc, char *errstr,
                                      size_t errstr_size);

/* Wait for every audit record to be durable (shutdown). */
mg_err_t mg_service_flush(struct mg_service *svc, int timeout_ms,
                          char *errstr, size_t errstr_size);

#endif /* MG_SERVICE_H */
