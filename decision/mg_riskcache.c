/*
 * mg_riskcache.c — live risk for the decision service (see mg_riskcache.h).
 *
 * Layout: a fixed array of buckets, each chain guarded by one of
 * RC_STRIPES mutexes (bucket index modulo stripes), so server threads
 * rarely contend. An entry is a single allocation: the fixed fields, then
 * the identity and the reasons packed as (u8 signal, f32 points, u8 len,
 * detail bytes). Lookups copy what they need out under the lock; nothing
 * is handed out by pointer.
 *
 * The subscriber thread owns its own hiredis connection in subscribe mode
 * and bumps an epoch every time it (re)subscribes: an entry read or updated
 * during the current epoch, while still subscribed, cannot have missed a
 * change. A quiet channel is normal (scoring publishes changes only), so
 * the subscriber waits for traffic with poll() in short slices (to notice
 * a stop) and keeps the connection; after a quiet second it sends a PING,
 * and a PING unanswered for a second means a dead link (a partition sends
 * no FIN), so it reconnects. (It used to treat a 1 s read timeout as an
 * error and resubscribe every quiet second: each time a gap in which an
 * update could be lost, and a new epoch that sent every cached identity
 * back to Redis once decision.risk_stale_after had passed.)
 *
 * Staleness counters (last arrival, channel delay histogram) are written
 * by the subscriber thread alone, as relaxed atomics that /metrics reads.
 *
 * Bounding: when the map holds more than decision.max_identities, inserts
 * evict entries from a rotating cursor over the buckets (roughly the
 * oldest-inserted first, at no per-lookup cost).
 */
#include "mg_riskcache.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "mg_hash.h"
#include "mg_log.h"

#define RC_STRIPES 64
#define RC_BUCKETS (1u << 16)
#define RC_REASONS 3          /* reasons kept per identity */
#define RC_DETAIL_MAX 96      /* bytes kept of a reason's detail */
#define RC_SCOPES_MAX 32      /* granted scopes kept per identity */
/* The subscriber: quiet this long, it PINGs; unanswered this long, the
 * link is dead. A dead link is noticed within 2 s, as it was when every
 * quiet second ended in a reconnect. */
#define RC_PING_IDLE_MS 1000
#define RC_PING_TIMEOUT_MS 1000
/* Longest wait in poll(): how soon the subscriber sees a stop. */
#define RC_POLL_SLICE_MS 200

#define RC_OFF(field) offsetof(struct mg_riskcache_conf, field)

const struct mg_conf_prop mg_riskcache_conf_props[] = {
        {"decision.risk_stale_after", MG_CONF_MS, RC_OFF(stale_after_ms),
         "30s", 100, 3600000, 1,
         "A risk record read this long ago counts as stale unless the risk "
         "channel has been connected since (then every change would have "
         "arrived). Stale risk triggers the policy's degraded mode."},
        {"decision.max_identities", MG_CONF_INT, RC_OFF(max_entries),
         "1000000", 1000, 100000000, 0,
         "Identities whose risk is kept in memory (about 200 bytes each)."},
        {"decision.risk_get_timeout", MG_CONF_MS, RC_OFF(get_timeout_ms),
         "50ms", 1, 10000, 0,
         "Time allowed for reading a missing identity's risk from Redis; "
         "past it the decision is taken in degraded mode."},
        {"decision.scope_info_ttl", MG_CONF_MS, RC_OFF(scope_info_ttl_ms),
         "60s", 1000, 86400000, 1,
         "How long an identity's scope usage, read from its baseline, is "
         "kept. Unused means unused for weeks, so a minute is plenty."},
        {"decision.scope_unused_after", MG_CONF_MS,
         RC_OFF(scope_unused_after_ms), "30d", 3600000, 31536000000.0, 1,
         "A granted scope not used for this long is unused: policies with "
         "remove_unused_scopes drop it at issuance."},
};
const size_t mg_riskcache_conf_prop_cnt =
        sizeof(mg_riskcache_conf_props) / sizeof(*mg_riskcache_conf_props);

const int64_t mg_riskcache_delay_bounds_ms[MG_RISKCACHE_DELAY_BUCKETS] = {
        1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 5000};

/* Granted scopes of an identity and since when each is idle. */
struct rc_scopes {
        int64_t loaded_ms;               /* when read from the baseline */
        int cnt;                         /* entries */
        struct {
                uint64_t hash;           /* FNV-1a of the scope */
                int64_t idle_since_ms;   /* latest use or first grant */
        } s[];
};

struct rc_entry {
        struct rc_entry *next;    /* bucket chain */
        uint64_t hash;            /* FNV-1a of the identity */
        uint64_t epoch;           /* subscriber epoch at read/update */
        int64_t fetched_ms;       /* wall time of read/update */
        int64_t updated_ms;       /* the record's "updated" (0: absent) */
        int64_t ts_ms;            /* the record's event time */
        struct rc_scopes *scopes; /* lazily loaded, or NULL */
        size_t size;              /* bytes allocated for this entry */
        float score;              /* risk */
        uint8_t level;            /* enum mg_risk_level */
        uint8_t known;            /* a record exists */
        uint8_t reason_cnt;       /* packed reasons */
        uint16_t id_len;          /* identity length */
        char data[];              /* identity NUL, then packed reasons */
};

struct mg_riskcache {
        const struct mg_riskcache_conf *conf;  /* not owned */
        const struct mg_redis_conf *rconf;     /* not owned */
        char host[256];                        /* Redis host */
        int port;                              /* Redis port */
        struct rc_entry **buckets;             /* RC_BUCKETS chains */
        pthread_mutex_t locks[RC_STRIPES];     /* bucket stripes */
        atomic_uint_fast64_t cnt;              /* entries */
        atomic_uint_fast64_t bytes;            /* their memory */
        atomic_uint_fast64_t hits, misses, updates, redis_errors;
        atomic_uint_fast64_t epoch;            /* subscriber epoch: times
                                                * it subscribed */
        int64_t started_ms;                    /* wall time created */
        atomic_int_fast64_t last_update_ms;    /* last channel arrival */
        /* channel delay histogram (see mg_riskcache_stats) */
        atomic_uint_fast64_t delay[MG_RISKCACHE_DELAY_BUCKETS + 1];
        atomic_uint_fast64_t delay_sum_ms;     /* sum of the delays */
        atomic_int subscribed;                 /* subscriber connected */
        atomic_int stop;                       /* subscriber must stop */
        atomic_uint evict_cursor;              /* next bucket to evict */
        pthread_t sub_thread;                  /* the subscriber */
        int sub_started;
};

struct mg_riskcache_conn {
        struct mg_riskcache *rc;  /* cache */
        redisContext *ctx;        /* NULL while disconnected */
        int64_t retry_after_ms;   /* don't reconnect before this */
        /* scope_unused_cb context of the current lookup */
        char identity[MG_EVENT_IDENTITY_MAX + 1];
        int64_t now_ms;
};

static pthread_mutex_t *stripe(struct mg_riskcache *rc, uint64_t h) {
        return &rc->locks[(h & (RC_BUCKETS - 1)) % RC_STRIPES];
}

/* Find under the stripe lock. */
static struct rc_entry *rc_find(struct mg_riskcache *rc, const char *id,
                                size_t len, uint64_t h) {
        struct rc_entry *e = rc->buckets[h & (RC_BUCKETS - 1)];

        for (; e; e = e->next)
                if (e->hash == h && e->id_len == len &&
                    !memcmp(e->data, id, len))
                        return e;
        return NULL;
}

static void rc_free_entry(struct mg_riskcache *rc, struct rc_entry *e) {
        atomic_fetch_sub(&rc->bytes, e->size);
        atomic_fetch_sub(&rc->cnt, 1);
        free(e->scopes);
        free(e);
}

/* Evict entries from the cursor's buckets until under the bound, looking
 * at most once at every bucket. Called without locks held. */
static void rc_evict(struct mg_riskcache *rc) {
        unsigned scanned = 0;

        while (atomic_load(&rc->cnt) > (uint64_t)rc->conf->max_entries &&
               scanned++ < RC_BUCKETS) {
                unsigned b = atomic_fetch_add(&rc->evict_cursor, 1) &
                             (RC_BUCKETS - 1);
                pthread_mutex_t *lk = &rc->locks[b % RC_STRIPES];
                struct rc_entry *e;

                pthread_mutex_lock(lk);
                e = rc->buckets[b];
                if (e)
                        rc->buckets[b] = e->next;
                pthread_mutex_unlock(lk);
                if (e)
                        rc_free_entry(rc, e);
        }
}

/* A parsed risk record, before it becomes an entry. */
struct rc_record {
        const char *identity;
        size_t id_len;
        int known;
        double score;
        int level;
        int64_t ts_ms, updated_ms;
        int reason_cnt;
        struct {
                int signal;
                double points;
                const char *detail;
                size_t len;
        } reasons[RC_REASONS];
};

static struct rc_entry *rc_entry_new(const struct rc_record *r,
                                     uint64_t epoch, int64_t now_ms) {
        size_t size = sizeof(struct rc_entry) + r->id_len + 1, i;
        struct rc_entry *e;
        char *p;

        for (i = 0; i < (size_t)r->reason_cnt; i++)
                size += 1 + sizeof(float) + 1 + r->reasons[i].len;
        if (!(e = calloc(1, size)))
                return NULL;
        e->size = size;
        e->hash = mg_hash_mem(r->identity, r->id_len);
        e->epoch = epoch;
        e->fetched_ms = now_ms;
        e->updated_ms = r->updated_ms;
        e->ts_ms = r->ts_ms;
        e->score = (float)r->score;
        e->level = (uint8_t)r->level;
        e->known = (uint8_t)r->known;
        e->reason_cnt = (uint8_t)r->reason_cnt;
        e->id_len = (uint16_t)r->id_len;
        memcpy(e->data, r->identity, r->id_len);
        p = e->data + r->id_len + 1;
        for (i = 0; i < (size_t)r->reason_cnt; i++) {
                float pts = (float)r->reasons[i].points;

                *p++ = (char)r->reasons[i].signal;
                memcpy(p, &pts, sizeof(pts));
                p += sizeof(pts);
                *p++ = (char)r->reasons[i].len;
                memcpy(p, r->reasons[i].detail, r->reasons[i].len);
                p += r->reasons[i].len;
        }
        return e;
}

/* Insert or replace (a newer record wins; an absent record only fills a
 * gap). Keeps the scope info of the entry it replaces. */
static void rc_put(struct mg_riskcache *rc, struct rc_entry *ne) {
        pthread_mutex_t *lk = stripe(rc, ne->hash);
        struct rc_entry **pp, *old = NULL;

        pthread_mutex_lock(lk);
        pp = &rc->buckets[ne->hash & (RC_BUCKETS - 1)];
        for (; *pp; pp = &(*pp)->next)
                if ((*pp)->hash == ne->hash && (*pp)->id_len == ne->id_len &&
                    !memcmp((*pp)->data, ne->data, ne->id_len))
                        break;
        if (*pp && (*pp)->updated_ms > ne->updated_ms) {
                /* What we read is older than what the channel brought. */
                (*pp)->fetched_ms = ne->fetched_ms;
                pthread_mutex_unlock(lk);
                free(ne);
                return;
        }
        if (*pp) {
                old = *pp;
                ne->next = old->next;
                ne->scopes = old->scopes;
                old->scopes = NULL;
        } else {
                ne->next = NULL;
        }
        *pp = ne;
        pthread_mutex_unlock(lk);
        atomic_fetch_add(&rc->bytes, ne->size);
        atomic_fetch_add(&rc->cnt, 1);
        if (old)
                rc_free_entry(rc, old);
        else if (atomic_load(&rc->cnt) > (uint64_t)rc->conf->max_entries)
                rc_evict(rc);
}

static int signal_index(const char *name) {
        int i;

        for (i = 0; i < MG_SIG__CNT; i++)
                if (!strcmp(mg_signal_names[i], name))
                        return i;
        return -1;
}

static int level_index(const char *name) {
        int i;

        for (i = 0; i < 4; i++)
                if (!strcmp(mg_risk_level_names[i], name))
                        return i;
        return -1;
}

/* Parse a risk record; the record's strings point into root. */
static mg_err_t rc_parse(json_t *root, struct rc_record *r, char *errstr,
                         size_t errstr_size) {
        json_t *reasons, *rs;
        const char *level;
        size_t i;

        memset(r, 0, sizeof(*r));
        if (!json_is_object(root) ||
            !json_is_string(json_object_get(root, "identity")) ||
            !json_is_number(json_object_get(root, "risk")) ||
            !json_is_string(json_object_get(root, "level")))
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "risk record lacks identity, risk or "
                                  "level");
        r->identity = json_string_value(json_object_get(root, "identity"));
        r->id_len = json_string_length(json_object_get(root, "identity"));
        if (r->id_len == 0 || r->id_len > MG_EVENT_IDENTITY_MAX)
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "risk record identity has %zu bytes",
                                  r->id_len);
        r->known = 1;
        r->score = json_number_value(json_object_get(root, "risk"));
        if (!(r->score >= 0 && r->score <= 100))
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "risk %g out of range", r->score);
        level = json_string_value(json_object_get(root, "level"));
        if ((r->level = level_index(level)) < 0)
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "unknown level '%s'", level);
        r->ts_ms = json_integer_value(json_object_get(root, "ts"));
        r->updated_ms = json_integer_value(json_object_get(root, "updated"));
        reasons = json_object_get(root, "reasons");
        json_array_foreach(reasons, i, rs) {
                const char *sig =
                        json_string_value(json_object_get(rs, "signal"));
                const char *detail =
                        json_string_value(json_object_get(rs, "detail"));
                int si;

                if (r->reason_cnt == RC_REASONS)
                        break;
                if (!sig || (si = signal_index(sig)) < 0)
                        continue;
                r->reasons[r->reason_cnt].signal = si;
                r->reasons[r->reason_cnt].points = json_number_value(
                        json_object_get(rs, "points"));
                r->reasons[r->reason_cnt].detail = detail ? detail : "";
                r->reasons[r->reason_cnt].len =
                        detail ? strnlen(detail, RC_DETAIL_MAX) : 0;
                r->reason_cnt++;
        }
        return MG_OK;
}

/* Count one channel delay (ms; a negative one, from clock skew between
 * hosts, as 0). */
static void rc_delay_add(struct mg_riskcache *rc, int64_t ms) {
        int i;

        if (ms < 0)
                ms = 0;
        for (i = 0; i < MG_RISKCACHE_DELAY_BUCKETS; i++)
                if (ms <= mg_riskcache_delay_bounds_ms[i])
                        break;
        atomic_fetch_add_explicit(&rc->delay[i], 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&rc->delay_sum_ms, (uint64_t)ms,
                                  memory_order_relaxed);
}

mg_err_t mg_riskcache_update(struct mg_riskcache *rc, const char *json,
                             size_t len, int64_t now_ms) {
        struct rc_record r;
        struct rc_entry *e;
        json_error_t jerr;
        json_t *root = json_loadb(json, len, 0, &jerr);
        char errstr[160];
        mg_err_t err;

        if (!root) {
                mg_log_warn("riskcache", "bad risk record: %s", jerr.text);
                return MG_ERR_INVALID;
        }
        if ((err = rc_parse(root, &r, errstr, sizeof(errstr)))) {
                mg_log_warn("riskcache", "bad risk record: %s", errstr);
                json_decref(root);
                return err;
        }
        e = rc_entry_new(&r, atomic_load(&rc->epoch), now_ms);
        json_decref(root);
        if (!e)
                return MG_ERR_NOMEM;
        rc_put(rc, e);
        atomic_fetch_add(&rc->updates, 1);
        atomic_store_explicit(&rc->last_update_ms, now_ms,
                              memory_order_relaxed);
        if (r.updated_ms > 0)
                rc_delay_add(rc, now_ms - r.updated_ms);
        return MG_OK;
}

/* ---- subscriber thread ------------------------------------------------ */

/* Send PING on a subscribed connection; 0, or -1 if the link failed. */
static int rc_ping(redisContext *c) {
        int done = 0;

        if (redisAppendCommand(c, "PING") != REDIS_OK)
                return -1;
        while (!done)
                if (redisBufferWrite(c, &done) != REDIS_OK)
                        return -1;
        return 0;
}

/* Read the channel until the link fails or stop is set (see the file
 * comment). */
static void rc_listen(struct mg_riskcache *rc, redisContext *c) {
        int64_t now, last_rx = mg_time_now_ms(), ping_sent = 0;
        struct pollfd pfd;
        redisReply *r;
        int n;

        while (!atomic_load(&rc->stop)) {
                void *reply = NULL;

                /* Whole replies already read come first. */
                if (redisGetReplyFromReader(c, &reply) != REDIS_OK)
                        return;
                now = mg_time_now_ms();
                if (reply) {
                        r = reply;
                        last_rx = now;
                        ping_sent = 0;
                        /* ["message", channel, record]; a PING's answer
                         * is ["pong", ""]. */
                        if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
                            r->element[2]->type == REDIS_REPLY_STRING)
                                mg_riskcache_update(rc, r->element[2]->str,
                                                    r->element[2]->len, now);
                        freeReplyObject(r);
                        continue;
                }
                if (ping_sent && now - ping_sent >= RC_PING_TIMEOUT_MS) {
                        mg_log_warn("riskcache",
                                    "risk channel: no answer to PING in "
                                    "%d ms, reconnecting",
                                    RC_PING_TIMEOUT_MS);
                        return;
                }
                if (!ping_sent && now - last_rx >= RC_PING_IDLE_MS) {
                        if (rc_ping(c))
                                return;
                        ping_sent = now;
                }
                pfd.fd = c->fd;
                pfd.events = POLLIN;
                pfd.revents = 0;
                n = poll(&pfd, 1, RC_POLL_SLICE_MS);
                if (n < 0 && errno != EINTR)
                        return;
                /* Readable: data, or the end of the connection (then the
                 * read fails). */
                if (n > 0 && redisBufferRead(c) != REDIS_OK)
                        return;
        }
}

static void *rc_subscriber(void *arg) {
        struct mg_riskcache *rc = arg;

        while (!atomic_load(&rc->stop)) {
                struct timeval tv = {1, 0};
                redisContext *c = redisConnectWithTimeout(rc->host, rc->port,
                                                          tv);
                redisReply *r = NULL;

                /* Bounds AUTH and SUBSCRIBE too: a Redis that accepts
                 * connections but does not answer (stopped, overloaded)
                 * must not hold the thread, which has a stop to notice.
                 * rc_listen() reads only what poll() says is there. */
                if (c && !c->err)
                        redisSetTimeout(c, tv);
                if (c && !c->err && rc->rconf->password &&
                    *rc->rconf->password) {
                        r = redisCommand(c, "AUTH %s", rc->rconf->password);
                        freeReplyObject(r);
                }
                if (c && !c->err)
                        r = redisCommand(c, "SUBSCRIBE %s",
                                         rc->rconf->risk_channel);
                if (!c || c->err || !r) {
                        freeReplyObject(r);
                        redisFree(c);
                        /* Redis away: retry soon, bounded loop. */
                        for (int i = 0; i < 5 && !atomic_load(&rc->stop); i++)
                                usleep(100 * 1000);
                        continue;
                }
                freeReplyObject(r);
                atomic_fetch_add(&rc->epoch, 1);
                atomic_store(&rc->subscribed, 1);
                mg_log_debug("riskcache", "subscribed to %s",
                             rc->rconf->risk_channel);
                rc_listen(rc, c);
                atomic_store(&rc->subscribed, 0);
                redisFree(c);
        }
        return NULL;
}

/* ---- per-thread connections and lookups ------------------------------- */

struct mg_riskcache_conn *mg_riskcache_conn_new(struct mg_riskcache *rc) {
        struct mg_riskcache_conn *conn = calloc(1, sizeof(*conn));

        if (conn)
                conn->rc = rc;
        return conn;
}

void mg_riskcache_conn_destroy(struct mg_riskcache_conn *conn) {
        if (!conn)
                return;
        if (conn->ctx)
                redisFree(conn->ctx);
        free(conn);
}

/* A command on the thread's connection; NULL (and the connection dropped)
 * on failure. */
static redisReply *conn_command(struct mg_riskcache_conn *conn,
                                const char *fmt, const char *a, size_t alen) {
        struct mg_riskcache *rc = conn->rc;
        redisReply *r;
        struct timeval tv;

        if (!conn->ctx) {
                if (mg_time_now_ms() < conn->retry_after_ms)
                        return NULL;
                tv.tv_sec = (time_t)(rc->conf->get_timeout_ms / 1000);
                tv.tv_usec = (suseconds_t)(rc->conf->get_timeout_ms % 1000) *
                             1000;
                conn->ctx = redisConnectWithTimeout(rc->host, rc->port, tv);
                if (!conn->ctx || conn->ctx->err) {
                        if (conn->ctx)
                                redisFree(conn->ctx);
                        conn->ctx = NULL;
                        /* Don't stall every request on a dead Redis. */
                        conn->retry_after_ms = mg_time_now_ms() + 500;
                        return NULL;
                }
                redisSetTimeout(conn->ctx, tv);
                if (rc->rconf->password && *rc->rconf->password)
                        freeReplyObject(redisCommand(conn->ctx, "AUTH %s",
                                                     rc->rconf->password));
        }
        r = redisCommand(conn->ctx, fmt, a, alen);
        if (!r || r->type == REDIS_REPLY_ERROR) {
                freeReplyObject(r);
                redisFree(conn->ctx);
                conn->ctx = NULL;
                conn->retry_after_ms = mg_time_now_ms() + 500;
                return NULL;
        }
        return r;
}

/* Read the record of a missing identity; MG_OK with the entry inserted. */
static mg_err_t rc_fetch(struct mg_riskcache *rc,
                         struct mg_riskcache_conn *conn, const char *identity,
                         int64_t now_ms) {
        char key[MG_EVENT_IDENTITY_MAX + 16];
        uint64_t epoch = atomic_load(&rc->epoch);
        struct rc_record r;
        struct rc_entry *e;
        redisReply *reply;
        json_t *root = NULL;
        char errstr[160];
        int n;

        n = snprintf(key, sizeof(key), "mg:{%s}:risk", identity);
        reply = conn_command(conn, "GET %b", key, (size_t)n);
        if (!reply) {
                atomic_fetch_add(&rc->redis_errors, 1);
                return MG_ERR_REDIS;
        }
        if (reply->type == REDIS_REPLY_STRING) {
                root = json_loadb(reply->str, reply->len, 0, NULL);
                if (!root || rc_parse(root, &r, errstr, sizeof(errstr))) {
                        mg_log_warn("riskcache", "%s: unreadable risk record",
                                    key);
                        json_decref(root);
                        freeReplyObject(reply);
                        return MG_ERR_DECODE;
                }
        } else {
                /* Scoring has never seen the identity: risk 0, a fact. */
                memset(&r, 0, sizeof(r));
                r.identity = identity;
                r.id_len = strlen(identity);
        }
        e = rc_entry_new(&r, epoch, now_ms);
        json_decref(root);
        freeReplyObject(reply);
        if (!e)
                return MG_ERR_NOMEM;
        rc_put(rc, e);
        return MG_OK;
}

static int entry_fresh(struct mg_riskcache *rc, const struct rc_entry *e,
                       int64_t now_ms) {
        if (atomic_load(&rc->subscribed) &&
            e->epoch == atomic_load(&rc->epoch))
                return 1;
        return now_ms - e->fetched_ms < rc->conf->stale_after_ms;
}

/* Copy an entry's risk into a view. */
static void entry_risk(const struct rc_entry *e, struct mg_risk_view *view) {
        const char *p = e->data + e->id_len + 1;
        int i;

        view->known = e->known;
        view->updated_ms = e->updated_ms;
        memset(&view->risk, 0, sizeof(view->risk));
        view->risk.score = e->score;
        view->risk.level = (enum mg_risk_level)e->level;
        view->risk.ts_ms = e->ts_ms;
        for (i = 0; i < e->reason_cnt && i < MG_REASONS_MAX; i++) {
                struct mg_reason *rs = &view->risk.reasons[i];
                float pts;
                size_t len;

                rs->signal = (enum mg_signal)(unsigned char)*p++;
                memcpy(&pts, p, sizeof(pts));
                p += sizeof(pts);
                len = (unsigned char)*p++;
                rs->points = pts;
                snprintf(rs->detail, sizeof(rs->detail), "%.*s", (int)len, p);
                p += len;
        }
        view->risk.reason_cnt = i;
}

/* Copy an entry into a view (under its lock). */
static void entry_to_view(struct mg_riskcache *rc, const struct rc_entry *e,
                          int64_t now_ms, struct mg_risk_view *view) {
        entry_risk(e, view);
        view->fresh = entry_fresh(rc, e, now_ms);
}

mg_err_t mg_riskcache_view_from_json(const char *json, size_t len,
                                     struct mg_risk_view *view, char *errstr,
                                     size_t errstr_size) {
        struct rc_record r;
        struct rc_entry *e;
        json_error_t jerr;
        json_t *root = json_loadb(json, len, 0, &jerr);
        mg_err_t err;

        if (!root)
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "bad risk record: %s", jerr.text);
        if ((err = rc_parse(root, &r, errstr, errstr_size)))
                goto out;
        if (!(e = rc_entry_new(&r, 0, 0))) {
                err = mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                 "out of memory");
                goto out;
        }
        entry_risk(e, view);
        view->fresh = 1;
        free(e);
out:
        json_decref(root);
        return err;
}

/* ---- unused scopes ---------------------------------------------------- */

/* Load the identity's granted scopes from its baseline. */
static struct rc_scopes *rc_load_scopes(struct mg_riskcache_conn *conn,
                                        const char *identity,
                                        int64_t now_ms) {
        char key[MG_EVENT_IDENTITY_MAX + 16], errstr[128];
        struct mg_scope_idle idle[RC_SCOPES_MAX];
        struct mg_baseline *bl = NULL;
        struct rc_scopes *sc = NULL;
        redisReply *reply;
        int n, i;

        n = snprintf(key, sizeof(key), "mg:{%s}:bl", identity);
        reply = conn_command(conn, "HGET %b b", key, (size_t)n);
        if (!reply)
                return NULL;
        n = 0;
        if (reply->type == REDIS_REPLY_STRING) {
                if (!(bl = malloc(mg_baseline_size())))
                        goto out;
                if (mg_baseline_decode(bl, reply->str, reply->len, errstr,
                                       sizeof(errstr))) {
                        mg_log_warn("riskcache", "%s: %s", key, errstr);
                        goto out;
                }
                n = mg_baseline_scopes_idle(bl, idle, RC_SCOPES_MAX);
        }
        sc = calloc(1, sizeof(*sc) + (size_t)n * sizeof(sc->s[0]));
        if (!sc)
                goto out;
        sc->loaded_ms = now_ms;
        for (i = 0; i < n; i++) {
                if (!idle[i].exact)
                        continue; /* cut names never match: not removed */
                sc->s[sc->cnt].hash = mg_hash_mem(idle[i].scope,
                                            strlen(idle[i].scope));
                sc->s[sc->cnt].idle_since_ms = idle[i].idle_since_ms;
                sc->cnt++;
        }
out:
        free(bl);
        freeReplyObject(reply);
        return sc;
}

/* The view's oracle: is scope granted and unused? Loads the identity's
 * scope data on first use within scope_info_ttl. */
static int rc_scope_unused_cb(void *opaque, const char *scope) {
        struct mg_riskcache_conn *conn = opaque;
        struct mg_riskcache *rc = conn->rc;
        size_t len = strlen(conn->identity);
        uint64_t h = mg_hash_mem(conn->identity, len), sh;
        pthread_mutex_t *lk = stripe(rc, h);
        struct rc_entry *e;
        struct rc_scopes *sc = NULL;
        int i, unused = 0, need;

        pthread_mutex_lock(lk);
        e = rc_find(rc, conn->identity, len, h);
        need = e && (!e->scopes || conn->now_ms - e->scopes->loaded_ms >=
                                           rc->conf->scope_info_ttl_ms);
        pthread_mutex_unlock(lk);
        if (need && (sc = rc_load_scopes(conn, conn->identity,
                                         conn->now_ms))) {
                pthread_mutex_lock(lk);
                e = rc_find(rc, conn->identity, len, h);
                if (e) {
                        free(e->scopes);
                        e->scopes = sc;
                        sc = NULL;
                }
                pthread_mutex_unlock(lk);
                free(sc);
        }
        sh = mg_hash_mem(scope, strlen(scope));
        pthread_mutex_lock(lk);
        e = rc_find(rc, conn->identity, len, h);
        if (e && e->scopes)
                for (i = 0; i < e->scopes->cnt; i++)
                        if (e->scopes->s[i].hash == sh) {
                                unused = conn->now_ms -
                                                 e->scopes->s[i].idle_since_ms >=
                                         rc->conf->scope_unused_after_ms;
                                break;
                        }
        pthread_mutex_unlock(lk);
        return unused;
}

void mg_riskcache_get(struct mg_riskcache *rc, struct mg_riskcache_conn *conn,
                      const char *identity, int64_t now_ms,
                      struct mg_risk_view *view) {
        size_t len = strlen(identity);
        uint64_t h = mg_hash_mem(identity, len);
        pthread_mutex_t *lk = stripe(rc, h);
        struct rc_entry *e;
        int found = 0, fresh = 0;

        memset(view, 0, sizeof(*view));
        pthread_mutex_lock(lk);
        if ((e = rc_find(rc, identity, len, h))) {
                entry_to_view(rc, e, now_ms, view);
                found = 1;
                fresh = view->fresh;
        }
        pthread_mutex_unlock(lk);
        if (found && fresh) {
                atomic_fetch_add(&rc->hits, 1);
        } else {
                atomic_fetch_add(&rc->misses, 1);
                if (rc_fetch(rc, conn, identity, now_ms) == MG_OK) {
                        pthread_mutex_lock(lk);
                        if ((e = rc_find(rc, identity, len, h)))
                                entry_to_view(rc, e, now_ms, view);
                        pthread_mutex_unlock(lk);
                } else {
                        /* Keep what we had, flagged as not fresh. */
                        view->fresh = 0;
                }
        }
        snprintf(conn->identity, sizeof(conn->identity), "%s", identity);
        conn->now_ms = now_ms;
        if (view->fresh || view->known) {
                view->scope_unused_cb = rc_scope_unused_cb;
                view->opaque = conn;
        }
}

mg_err_t mg_riskcache_new(const struct mg_riskcache_conf *conf,
                          const struct mg_redis_conf *rconf,
                          struct mg_riskcache **rcp, char *errstr,
                          size_t errstr_size) {
        struct mg_riskcache *rc = calloc(1, sizeof(*rc));
        const char *colon;
        int i;

        *rcp = NULL;
        if (!rc || !(rc->buckets = calloc(RC_BUCKETS, sizeof(*rc->buckets)))) {
                free(rc);
                return mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                  "out of memory");
        }
        rc->conf = conf;
        rc->rconf = rconf;
        rc->started_ms = mg_time_now_ms();
        colon = strrchr(rconf->addr, ':');
        if (!colon || colon == rconf->addr ||
            (size_t)(colon - rconf->addr) >= sizeof(rc->host) ||
            (rc->port = atoi(colon + 1)) <= 0 || rc->port > 65535) {
                free(rc->buckets);
                free(rc);
                return mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                  "redis.addr '%s' is not host:port",
                                  rconf->addr);
        }
        memcpy(rc->host, rconf->addr, (size_t)(colon - rconf->addr));
        for (i = 0; i < RC_STRIPES; i++)
                pthread_mutex_init(&rc->locks[i], NULL);
        if (pthread_create(&rc->sub_thread, NULL, rc_subscriber, rc) != 0) {
                mg_riskcache_destroy(rc);
                return mg_err_set(MG_ERR_FATAL, errstr, errstr_size,
                                  "cannot start the risk subscriber");
        }
        rc->sub_started = 1;
        *rcp = rc;
        return MG_OK;
}

void mg_riskcache_destroy(struct mg_riskcache *rc) {
        unsigned b;
        int i;

        if (!rc)
                return;
        atomic_store(&rc->stop, 1);
        if (rc->sub_started)
                pthread_join(rc->sub_thread, NULL);
        for (b = 0; b < RC_BUCKETS; b++)
                while (rc->buckets[b]) {
                        struct rc_entry *e = rc->buckets[b];

                        rc->buckets[b] = e->next;
                        rc_free_entry(rc, e);
                }
        for (i = 0; i < RC_STRIPES; i++)
                pthread_mutex_destroy(&rc->locks[i]);
        free(rc->buckets);
        free(rc);
}

void mg_riskcache_stats_get(struct mg_riskcache *rc,
                            struct mg_riskcache_stats *st) {
        int i;

        memset(st, 0, sizeof(*st));
        st->entries = atomic_load(&rc->cnt);
        st->bytes = atomic_load(&rc->bytes);
        st->hits = atomic_load(&rc->hits);
        st->misses = atomic_load(&rc->misses);
        st->updates = atomic_load(&rc->updates);
        st->redis_errors = atomic_load(&rc->redis_errors);
        st->subscribed = atomic_load(&rc->subscribed);
        st->subscriptions = atomic_load(&rc->epoch);
        st->started_ms = rc->started_ms;
        st->last_update_ms = atomic_load_explicit(&rc->last_update_ms,
                                                  memory_order_relaxed);
        for (i = 0; i <= MG_RISKCACHE_DELAY_BUCKETS; i++)
                st->delay_buckets[i] = atomic_load_explicit(
                        &rc->delay[i], memory_order_relaxed);
        st->delay_sum_ms = atomic_load_explicit(&rc->delay_sum_ms,
                                                memory_order_relaxed);
}
