/*
 * mg_service.c — one request through the decision service (see
 * mg_service.h).
 *
 * Per worker thread: a risk-cache connection for misses, one request and
 * one decision struct, and the output buffers — nothing is allocated per
 * request here. Counters are relaxed atomics read by /metrics; those a
 * request touches besides the totals (per policy, risk staleness) live in
 * the worker's own state, so no two workers write the same cache line.
 *
 * Risk staleness in /metrics: how old the risk decisions use is, from
 * three angles. The channel's liveness (seconds since the last update
 * arrived; an update's delay from scoring's save to its arrival) comes
 * from the risk cache; the age of the record behind each decision (now
 * minus its "updated") is a histogram per worker, summed when scraped.
 *
 * The risk in a response is rounded to 0.01 before anything else, so the
 * response, its signature (which covers "%.2f") and the audit record carry
 * the same number.
 */
#include "mg_service.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mg_log.h"
#include "mg_policy.h"
#include "mg_proto.h"

#define SVC_OFF(field) offsetof(struct mg_service_conf, field)

const struct mg_conf_prop mg_service_conf_props[] = {
        {"decision.policy", MG_CONF_STR, SVC_OFF(policy), "policy.yaml", 1,
         4096, 1,
         "Policy file (see deploy/policy.yaml). Reloaded on SIGHUP and when "
         "it changes; a broken file is refused and the old policy serves "
         "on."},
        {"decision.policy_poll", MG_CONF_MS, SVC_OFF(policy_poll_ms), "1s",
         100, 3600000, 1, "How often the policy file is checked for edits."},
        {"decision.audit_wait", MG_CONF_MS, SVC_OFF(audit_wait_ms), "5s", 1,
         60000, 0,
         "With audit.fsync=always: longest wait for a decision's record to "
         "be durable before the request gets an error instead."},
};
const size_t mg_service_conf_prop_cnt =
        sizeof(mg_service_conf_props) / sizeof(*mg_service_conf_props);

struct mg_service {
        struct mg_service_opts opts;      /* not owned */
        struct mg_policy_slot slot;       /* the current policy */
        struct stat policy_st;            /* file as last loaded */
        struct mg_riskcache *rc;          /* live risk */
        struct mg_audit_log *audit;       /* audit log (+ Kafka) */
        struct mg_audit_signer *signer;   /* or NULL: unsigned */
        int fsync_always;                 /* wait for durability */
        /* Counters. */
        atomic_uint_fast64_t by_outcome[MG_DECISION__CNT];
        atomic_uint_fast64_t degraded;    /* decided without fresh risk */
        atomic_uint_fast64_t bad_requests;
        atomic_uint_fast64_t overloaded;  /* audit queue full (deny) */
        atomic_uint_fast64_t internal;    /* could not audit or sign */
        atomic_uint_fast64_t reloads, reload_errors;
        pthread_mutex_t threads_lock;     /* guards threads */
        struct svc_thread *threads;       /* every worker's state */
};

/* Decisions per policy path and outcome, per worker thread: the owner
 * inserts a name (then publishes it with a release store), /metrics reads
 * with acquire loads, so no lock is taken on the request path. Paths
 * beyond SVC_POLICIES_MAX on one thread count under "(other)". */
#define SVC_POLICIES_MAX 64
#define SVC_AGG_MAX (2 * SVC_POLICIES_MAX + 1) /* names shown in /metrics */

struct svc_policy_count {
        char name[256];                          /* policy path name */
        atomic_uint_fast64_t n[MG_DECISION__CNT]; /* per outcome */
        atomic_int used;                         /* name is set */
};

/* Upper bounds (ms) of the buckets of the risk age histogram: a record
 * is milliseconds old right after a change and days old for a quiet
 * identity, whose risk is no less current for it (nothing changed); the
 * operator reads the low buckets against the freshness target and the
 * high ones for how quiet the identities asking are. */
static const int64_t svc_age_bounds_ms[] = {
        10, 50, 100, 500, 1000, 5000, 30000, 60000, 300000, 3600000,
        21600000, 86400000};
#define SVC_AGE_BUCKETS (sizeof(svc_age_bounds_ms) / sizeof(*svc_age_bounds_ms))

/* A worker thread's state. */
struct svc_thread {
        struct svc_policy_count pc[SVC_POLICIES_MAX + 1]; /* last: other */
        /* Age of the risk record of each decision taken with one: count
         * per bucket of svc_age_bounds_ms (not cumulative; the last for
         * older ones) and the sum, written by the owner only. */
        atomic_uint_fast64_t age[SVC_AGE_BUCKETS + 1];
        atomic_uint_fast64_t age_sum_ms;
        struct svc_thread *next;          /* svc->threads list */
        struct mg_riskcache_conn *conn;   /* Redis for misses */
        struct mg_decide_req req;         /* the request */
        struct mg_decision d;             /* its decision */
        char sig[256];                    /* signature text */
        char out[MG_PROTO_OUT_MAX];       /* response line */
};

static void *svc_thread_init(void *opaque) {
        struct mg_service *svc = opaque;
        struct svc_thread *t = calloc(1, sizeof(*t));

        if (t && !(t->conn = mg_riskcache_conn_new(svc->rc))) {
                free(t);
                t = NULL;
        }
        if (!t) {
                mg_log_error("service", "out of memory for a worker");
                return NULL;
        }
        snprintf(t->pc[SVC_POLICIES_MAX].name,
                 sizeof(t->pc[SVC_POLICIES_MAX].name), "(other)");
        atomic_store(&t->pc[SVC_POLICIES_MAX].used, 1);
        pthread_mutex_lock(&svc->threads_lock);
        t->next = svc->threads;
        svc->threads = t;
        pthread_mutex_unlock(&svc->threads_lock);
        return t;
}

static void svc_thread_fini(void *opaque, void *ctx) {
        struct mg_service *svc = opaque;
        struct svc_thread *t = ctx, **pp;

        if (!t)
                return;
        pthread_mutex_lock(&svc->threads_lock);
        for (pp = &svc->threads; *pp; pp = &(*pp)->next)
                if (*pp == t) {
                        *pp = t->next;
                        break;
                }
        pthread_mutex_unlock(&svc->threads_lock);
        mg_riskcache_conn_destroy(t->conn);
        free(t);
}

static void svc_error(void *opaque, const char *code, const char *message,
                      struct evbuffer *out) {
        char buf[1024];
        size_t n = 0;

        if (mg_proto_format_error(NULL, code, message, buf, sizeof(buf), &n))
                n = (size_t)snprintf(buf, sizeof(buf),
                                     "{\"id\":null,\"error\":{\"code\":"
                                     "\"internal\",\"message\":\"error "
                                     "too long\"}}");
        evbuffer_add(out, buf, n);
        evbuffer_add(out, "\n", 1);
}

/* Answer req with an error object. */
static void svc_reply_error(struct svc_thread *t, const char *code,
                            const char *message, struct evbuffer *out) {
        size_t n = 0;

        if (mg_proto_format_error(&t->req, code, message, t->out,
                                  sizeof(t->out), &n) == MG_OK) {
                evbuffer_add(out, t->out, n);
                evbuffer_add(out, "\n", 1);
        } else {
                svc_error(NULL, code, message, out);
        }
}

/* Append the decision to the audit log; MG_OK once it is in (and durable
 * when audit.fsync=always). */
static mg_err_t svc_audit(struct mg_service *svc, struct svc_thread *t,
                          int64_t now_ms, char *errstr, size_t errstr_size) {
        struct mg_audit_reason reasons[MG_DECISION_REASONS_MAX];
        struct mg_audit_record rec;
        const struct mg_decision *d = &t->d;
        uint64_t seq = 0;
        mg_err_t err;
        int i;

        memset(&rec, 0, sizeof(rec));
        for (i = 0; i < d->reason_cnt; i++) {
                reasons[i].signal = d->reasons[i].signal;
                reasons[i].points = d->reasons[i].points;
                reasons[i].detail = d->reasons[i].detail;
        }
        rec.decision_id = d->decision_id;
        rec.ts_ms = now_ms;
        rec.request_id = t->req.id;
        rec.identity = t->req.identity;
        rec.client_id = t->req.client_id;
        rec.resource = t->req.resource;
        rec.grant_type = t->req.grant_type;
        rec.requested_scopes = t->req.scopes;
        rec.requested_scope_cnt = t->req.scope_cnt;
        rec.requested_ttl = t->req.ttl;
        rec.decision = mg_outcome_names[d->outcome];
        rec.scopes = d->scopes;
        rec.scope_cnt = d->scope_cnt;
        rec.ttl = d->ttl;
        rec.risk = d->risk;
        rec.level = mg_risk_level_names[d->level];
        rec.reasons = reasons;
        rec.reason_cnt = d->reason_cnt;
        rec.policy = d->policy;
        rec.degraded = d->degraded;
        rec.signature = svc->signer ? t->sig : NULL;
        err = mg_audit_log_append(svc->audit, &rec, &seq, errstr,
                                  errstr_size);
        if (!err && svc->fsync_always)
                err = mg_audit_log_wait(svc->audit, seq,
                                        (int)svc->opts.conf->audit_wait_ms,
                                        errstr, errstr_size);
        return err;
}

static void svc_count_policy(struct svc_thread *t, const char *name,
                             enum mg_outcome outcome) {
        struct svc_policy_count *pc = &t->pc[SVC_POLICIES_MAX];
        int i;

        if (!name[0])
                name = "(none)";
        for (i = 0; i < SVC_POLICIES_MAX; i++) {
                if (!atomic_load_explicit(&t->pc[i].used,
                                          memory_order_relaxed)) {
                        snprintf(t->pc[i].name, sizeof(t->pc[i].name), "%s",
                                 name);
                        atomic_store_explicit(&t->pc[i].used, 1,
                                              memory_order_release);
                        pc = &t->pc[i];
                        break;
                }
                if (!strcmp(t->pc[i].name, name)) {
                        pc = &t->pc[i];
                        break;
                }
        }
        atomic_fetch_add_explicit(&pc->n[outcome], 1, memory_order_relaxed);
}

/* Count the age of the risk record a decision was taken with. */
static void svc_count_age(struct svc_thread *t, int64_t age_ms) {
        size_t i;

        if (age_ms < 0)
                age_ms = 0; /* scoring's clock ahead of ours */
        for (i = 0; i < SVC_AGE_BUCKETS; i++)
                if (age_ms <= svc_age_bounds_ms[i])
                        break;
        atomic_fetch_add_explicit(&t->age[i], 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&t->age_sum_ms, (uint64_t)age_ms,
                                  memory_order_relaxed);
}

static void svc_request(void *opaque, void *ctx, const char *line, size_t len,
                        struct evbuffer *out) {
        struct mg_service *svc = opaque;
        struct svc_thread *t = ctx;
        struct mg_risk_view view;
        struct mg_policy *pol;
        char code[32], errstr[512];
        int64_t now_ms = mg_time_now_ms();
        size_t n = 0;
        mg_err_t err;

        if (!t) {
                svc_error(opaque, MG_PROTO_ERR_INTERNAL, "worker not ready",
                          out);
                return;
        }
        if (mg_proto_parse_request(&t->req, line, len, code, sizeof(code),
                                   errstr, sizeof(errstr))) {
                atomic_fetch_add_explicit(&svc->bad_requests, 1,
                                          memory_order_relaxed);
                svc_reply_error(t, code, errstr, out);
                return;
        }
        mg_riskcache_get(svc->rc, t->conn, t->req.identity, now_ms, &view);
        if (!(pol = mg_policy_slot_get(&svc->slot))) {
                svc_reply_error(t, MG_PROTO_ERR_INTERNAL, "no policy loaded",
                                out);
                return;
        }
        mg_policy_decide(pol, &t->req, &view, now_ms, &t->d);
        mg_policy_unref(pol);
        t->d.risk = round(t->d.risk * 100.0) / 100.0;
        if (mg_audit_decision_id(t->d.decision_id))
                goto internal;

        /* Sign the response as it will be sent, then send it signed. */
        if (mg_proto_format_response(&t->req, &t->d, NULL, t->out,
                                     sizeof(t->out), &n))
                goto internal;
        if (svc->signer &&
            (mg_audit_sign_response(svc->signer, t->out, n, t->sig,
                                    sizeof(t->sig)) ||
             mg_proto_format_response(&t->req, &t->d, t->sig, t->out,
                                      sizeof(t->out), &n)))
                goto internal;

        /* No answer without its audit record. */
        err = svc_audit(svc, t, now_ms, errstr, sizeof(errstr));
        if (err == MG_ERR_RETRY) {
                atomic_fetch_add_explicit(&svc->overloaded, 1,
                                          memory_order_relaxed);
                svc_reply_error(t, MG_PROTO_ERR_OVERLOADED,
                                "audit log cannot keep up; retry", out);
                return;
        }
        if (err) {
                mg_log_error("service", "audit: %s", errstr);
                goto internal;
        }
        atomic_fetch_add_explicit(&svc->by_outcome[t->d.outcome], 1,
                                  memory_order_relaxed);
        svc_count_policy(t, t->d.policy, t->d.outcome);
        if (view.known && view.updated_ms > 0)
                svc_count_age(t, now_ms - view.updated_ms);
        if (t->d.degraded)
                atomic_fetch_add_explicit(&svc->degraded, 1,
                                          memory_order_relaxed);
        evbuffer_add(out, t->out, n);
        evbuffer_add(out, "\n", 1);
        return;
internal:
        atomic_fetch_add_explicit(&svc->internal, 1, memory_order_relaxed);
        svc_reply_error(t, MG_PROTO_ERR_INTERNAL,
                        "the decision could not be signed or audited", out);
}

/* A Prometheus histogram of milliseconds, shown in seconds: counts per
 * bucket (not cumulative, cnt + 1 with the one past the last bound). */
static void svc_print_histogram(struct evbuffer *out, const char *name,
                                const char *help, const int64_t *bounds_ms,
                                size_t cnt, const uint64_t *counts,
                                uint64_t sum_ms) {
        uint64_t cum = 0;
        size_t i;

        evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", name,
                            help, name);
        for (i = 0; i < cnt; i++) {
                cum += counts[i];
                evbuffer_add_printf(out, "%s_bucket{le=\"%g\"} %" PRIu64 "\n",
                                    name, (double)bounds_ms[i] / 1000, cum);
        }
        cum += counts[cnt];
        evbuffer_add_printf(out,
                            "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n"
                            "%s_sum %.3f\n"
                            "%s_count %" PRIu64 "\n",
                            name, cum, name, (double)sum_ms / 1000, name,
                            cum);
}

/* The risk staleness series (see the file comment). */
static void svc_metrics_staleness(struct mg_service *svc,
                                  const struct mg_riskcache_stats *rs,
                                  struct evbuffer *out) {
        uint64_t age[SVC_AGE_BUCKETS + 1] = {0}, age_sum = 0;
        int64_t now = mg_time_now_ms(), since;
        struct svc_thread *t;
        size_t i;

        pthread_mutex_lock(&svc->threads_lock);
        for (t = svc->threads; t; t = t->next) {
                for (i = 0; i <= SVC_AGE_BUCKETS; i++)
                        age[i] += atomic_load_explicit(&t->age[i],
                                                       memory_order_relaxed);
                age_sum += atomic_load_explicit(&t->age_sum_ms,
                                                memory_order_relaxed);
        }
        pthread_mutex_unlock(&svc->threads_lock);
        since = rs->last_update_ms ? rs->last_update_ms : rs->started_ms;
        evbuffer_add_printf(
                out,
                "# HELP mintgate_risk_update_age_seconds Seconds since the "
                "last risk update arrived on the risk channel (since the "
                "service started, before the first). It grows while "
                "scoring publishes no change: quiet traffic, or scoring, "
                "Redis or the channel down.\n"
                "# TYPE mintgate_risk_update_age_seconds gauge\n"
                "mintgate_risk_update_age_seconds %.3f\n"
                "# HELP mintgate_risk_last_update_timestamp_seconds Unix time "
                "the last risk update arrived on the risk channel; 0 before "
                "the first.\n"
                "# TYPE mintgate_risk_last_update_timestamp_seconds gauge\n"
                "mintgate_risk_last_update_timestamp_seconds %.3f\n"
                "# HELP mintgate_risk_channel_subscriptions_total Times the "
                "risk subscriber subscribed to the channel. Each one after "
                "the first follows a gap in which updates may have been "
                "missed (risk read before it then counts as fresh only for "
                "decision.risk_stale_after).\n"
                "# TYPE mintgate_risk_channel_subscriptions_total counter\n"
                "mintgate_risk_channel_subscriptions_total %" PRIu64 "\n",
                since > 0 && now > since ? (double)(now - since) / 1000 : 0.0,
                (double)rs->last_update_ms / 1000, rs->subscriptions);
        svc_print_histogram(
                out, "mintgate_risk_update_delay_seconds",
                "Delay of each risk update on the channel: its arrival here "
                "minus the time scoring saved it (the record's updated); "
                "the publish part of event-to-decision freshness. Includes "
                "any clock difference between the hosts; updates without "
                "an updated time are not counted.",
                mg_riskcache_delay_bounds_ms, MG_RISKCACHE_DELAY_BUCKETS,
                rs->delay_buckets, rs->delay_sum_ms);
        svc_print_histogram(
                out, "mintgate_risk_staleness_seconds",
                "Age of the risk record each decision was taken with: the "
                "decision's time minus the time scoring saved the record. "
                "Small right after a change; large when an identity's risk "
                "has not changed for a while, which is normal for a quiet "
                "one. Decisions for identities scoring has never seen have "
                "no record and are not counted.",
                svc_age_bounds_ms, SVC_AGE_BUCKETS, age, age_sum);
}

static void svc_metrics(void *opaque, struct evbuffer *out) {
        struct mg_service *svc = opaque;
        struct mg_riskcache_stats rs;
        struct mg_audit_stats as;
        struct {
                const char *name;            /* policy (a worker's copy) */
                uint64_t n[MG_DECISION__CNT]; /* summed over workers */
        } agg[SVC_AGG_MAX];
        struct svc_thread *t;
        int i, k, nagg;

        mg_riskcache_stats_get(svc->rc, &rs);
        mg_audit_log_stats(svc->audit, &as);
        evbuffer_add_printf(out, "# TYPE mintgate_decisions_total counter\n");
        for (i = 0; i < MG_DECISION__CNT; i++)
                evbuffer_add_printf(out,
                                    "mintgate_decisions_total{decision=\"%s\""
                                    "} %" PRIu64 "\n",
                                    mg_outcome_names[i],
                                    atomic_load(&svc->by_outcome[i]));
        /* Sum the workers' tables by policy name. */
        nagg = 0;
        pthread_mutex_lock(&svc->threads_lock);
        for (t = svc->threads; t; t = t->next)
                for (k = 0; k <= SVC_POLICIES_MAX; k++) {
                        const struct svc_policy_count *pc = &t->pc[k];
                        int a;

                        if (!atomic_load_explicit(&pc->used,
                                                  memory_order_acquire))
                                continue;
                        for (a = 0; a < nagg; a++)
                                if (!strcmp(agg[a].name, pc->name))
                                        break;
                        if (a == nagg) {
                                if (nagg == SVC_AGG_MAX)
                                        continue;
                                agg[nagg].name = pc->name;
                                memset(agg[nagg].n, 0, sizeof(agg[nagg].n));
                                nagg++;
                        }
                        for (i = 0; i < MG_DECISION__CNT; i++)
                                agg[a].n[i] += atomic_load(&pc->n[i]);
                }
        evbuffer_add_printf(out, "# TYPE mintgate_policy_decisions_total "
                                 "counter\n");
        for (k = 0; k < nagg; k++)
                for (i = 0; i < MG_DECISION__CNT; i++)
                        if (agg[k].n[i])
                                evbuffer_add_printf(
                                        out,
                                        "mintgate_policy_decisions_total{"
                                        "policy=\"%s\",decision=\"%s\"} %"
                                        PRIu64 "\n",
                                        agg[k].name, mg_outcome_names[i],
                                        agg[k].n[i]);
        pthread_mutex_unlock(&svc->threads_lock);
        evbuffer_add_printf(
                out,
                "# TYPE mintgate_decisions_degraded_total counter\n"
                "mintgate_decisions_degraded_total %" PRIu64 "\n"
                "# TYPE mintgate_request_errors_total counter\n"
                "mintgate_request_errors_total{code=\"bad_request\"} %" PRIu64
                "\n"
                "mintgate_request_errors_total{code=\"overloaded\"} %" PRIu64
                "\n"
                "mintgate_request_errors_total{code=\"internal\"} %" PRIu64
                "\n"
                "# TYPE mintgate_risk_cache_identities gauge\n"
                "mintgate_risk_cache_identities %" PRIu64 "\n"
                "# TYPE mintgate_risk_cache_bytes gauge\n"
                "mintgate_risk_cache_bytes %" PRIu64 "\n"
                "# TYPE mintgate_risk_cache_lookups_total counter\n"
                "mintgate_risk_cache_lookups_total{result=\"hit\"} %" PRIu64
                "\n"
                "mintgate_risk_cache_lookups_total{result=\"miss\"} %" PRIu64
                "\n"
                "# TYPE mintgate_risk_updates_total counter\n"
                "mintgate_risk_updates_total %" PRIu64 "\n"
                "# TYPE mintgate_risk_channel_up gauge\n"
                "mintgate_risk_channel_up %d\n"
                "# TYPE mintgate_audit_backlog gauge\n"
                "mintgate_audit_backlog %" PRIu64 "\n"
                "# TYPE mintgate_audit_records_total counter\n"
                "mintgate_audit_records_total{state=\"written\"} %" PRIu64 "\n"
                "mintgate_audit_records_total{state=\"refused\"} %" PRIu64 "\n"
                "mintgate_audit_records_total{state=\"kafka_delivered\"} %"
                PRIu64 "\n"
                "mintgate_audit_records_total{state=\"kafka_failed\"} %" PRIu64
                "\n"
                "# TYPE mintgate_policy_reloads_total counter\n"
                "mintgate_policy_reloads_total{result=\"ok\"} %" PRIu64 "\n"
                "mintgate_policy_reloads_total{result=\"error\"} %" PRIu64
                "\n",
                atomic_load(&svc->degraded), atomic_load(&svc->bad_requests),
                atomic_load(&svc->overloaded), atomic_load(&svc->internal),
                rs.entries, rs.bytes, rs.hits, rs.misses, rs.updates,
                rs.subscribed, as.backlog, as.written, as.refused,
                as.kafka_delivered, as.kafka_failed,
                atomic_load(&svc->reloads), atomic_load(&svc->reload_errors));
        svc_metrics_staleness(svc, &rs, out);
}

static int svc_health(void *opaque, struct evbuffer *out) {
        struct mg_service *svc = opaque;
        struct mg_riskcache_stats rs;
        struct mg_audit_stats as;
        struct mg_policy *pol = mg_policy_slot_get(&svc->slot);
        int ok = pol && 1;

        mg_riskcache_stats_get(svc->rc, &rs);
        mg_audit_log_stats(svc->audit, &as);
        ok = ok && !as.failed;
        evbuffer_add_printf(out,
                            "{\"status\":\"%s\",\"policy\":%s,"
                            "\"risk_channel\":%s,\"audit_backlog\":%" PRIu64
                            ",\"audit_failed\":%s}\n",
                            ok ? "ok" : "failing", pol ? "true" : "false",
                            rs.subscribed ? "true" : "false", as.backlog,
                            as.failed ? "true" : "false");
        if (pol)
                mg_policy_unref(pol);
        return ok;
}

void mg_service_handler(struct mg_service *svc, struct mg_server_handler *h) {
        memset(h, 0, sizeof(*h));
        h->request_cb = svc_request;
        h->error_cb = svc_error;
        h->thread_init_cb = svc_thread_init;
        h->thread_fini_cb = svc_thread_fini;
        h->metrics_cb = svc_metrics;
        h->health_cb = svc_health;
        h->opaque = svc;
}

mg_err_t mg_service_reload(struct mg_service *svc, char *errstr,
                           size_t errstr_size) {
        struct mg_policy *pol;
        struct stat st;
        mg_err_t err;

        if (stat(svc->opts.conf->policy, &st) != 0)
                memset(&st, 0, sizeof(st));
        err = mg_policy_load_file(svc->opts.conf->policy, &pol, errstr,
                                  errstr_size);
        /* Remember the file either way: a broken edit is reported once,
         * not at every poll. */
        svc->policy_st = st;
        if (err) {
                atomic_fetch_add(&svc->reload_errors, 1);
                return err;
        }
        mg_policy_slot_set(&svc->slot, pol);
        mg_policy_unref(pol); /* the slot holds its own reference */
        atomic_fetch_add(&svc->reloads, 1);
        return MG_OK;
}

mg_err_t mg_service_reload_if_changed(struct mg_service *svc, char *errstr,
                                      size_t errstr_size) {
        struct stat st;

        if (stat(svc->opts.conf->policy, &st) != 0)
                return MG_OK; /* mid-rename: next poll */
        if (st.st_ino == svc->policy_st.st_ino &&
            st.st_size == svc->policy_st.st_size &&
            st.st_mtim.tv_sec == svc->policy_st.st_mtim.tv_sec &&
            st.st_mtim.tv_nsec == svc->policy_st.st_mtim.tv_nsec)
                return MG_OK;
        return mg_service_reload(svc, errstr, errstr_size);
}

mg_err_t mg_service_new(const struct mg_service_opts *opts,
                        struct mg_service **svcp, char *errstr,
                        size_t errstr_size) {
        struct mg_service *svc = calloc(1, sizeof(*svc));
        mg_err_t err;

        *svcp = NULL;
        if (!svc)
                return mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                  "out of memory");
        svc->opts = *opts;
        pthread_mutex_init(&svc->threads_lock, NULL);
        mg_policy_slot_init(&svc->slot, NULL);
        if ((err = mg_service_reload(svc, errstr, errstr_size)) ||
            (err = mg_audit_conf_validate(opts->audit, errstr,
                                          errstr_size)))
                goto fail;
        if (opts->audit->key_file && *opts->audit->key_file &&
            (err = mg_audit_signer_new_file(opts->audit->key_file,
                                            &svc->signer, errstr,
                                            errstr_size)))
                goto fail;
        svc->fsync_always = !strcmp(opts->audit->fsync, "always");
        if ((err = mg_audit_log_new(opts->audit, opts->audit_opts,
                                    &svc->audit, errstr, errstr_size)) ||
            (err = mg_riskcache_new(opts->risk, opts->redis, &svc->rc, errstr,
                                    errstr_size)))
                goto fail;
        *svcp = svc;
        return MG_OK;
fail:
        mg_service_destroy(svc);
        return err;
}

mg_err_t mg_service_flush(struct mg_service *svc, int timeout_ms,
                          char *errstr, size_t errstr_size) {
        return mg_audit_log_flush(svc->audit, timeout_ms, errstr, errstr_size);
}

void mg_service_destroy(struct mg_service *svc) {
        if (!svc)
                return;
        mg_riskcache_destroy(svc->rc);
        mg_audit_log_destroy(svc->audit);
        mg_audit_signer_destroy(svc->signer);
        mg_policy_slot_destroy(&svc->slot);
        pthread_mutex_destroy(&svc->threads_lock);
        free(svc);
}
