/*
 * mg_store_redis.c — the Redis implementation of struct mg_store_ops
 * (layout in mg_store.h), on hiredis.
 *
 * Every call is one pipelined round trip for the whole batch: load sends
 * one HGETALL per identity, save one EVALSHA per redis.ids_per_call
 * identities, then reads all replies. The save script does, per identity,
 * the generation compare-and-set, writes the blob, generation and offsets
 * in one HSET, and on a risk change SETs the risk key and PUBLISHes it —
 * atomically per identity, because a Lua script runs as one unit. Saving
 * many identities per call matters: Redis spends about 6 us of fixed cost
 * per script call, several times the work of one identity
 * (tests/bench/bench_score.c). A script may only touch keys of one slot on
 * a Redis Cluster, so with redis.cluster one identity (whose two keys share
 * its hash tag) is saved per call.
 *
 * Errors: a connection or protocol error drops the connection (the next
 * call reconnects) and returns MG_ERR_REDIS, which the ingest stage treats
 * as retry: it pauses, commits nothing and redelivers. Data that does not
 * decode (a corrupt blob) is a fatal MG_ERR_DECODE naming the key: mintgate
 * never silently resets a baseline.
 *
 * Administration (`mintgate baseline`): scans walk SCAN batches and read
 * each batch's values with pipelined GETs or HGETALLs sent together with
 * the next SCAN, so a batch costs one round trip and memory is one batch.
 * Reset and import are two more scripts, loaded with the save script on
 * connect. Both increment the generation rather than set it: a generation
 * never goes back, so a scorer holding any earlier copy of the identity is
 * refused on its next save and reloads what was written here. Reset keeps
 * the offsets (the events they cover must not be applied again to the
 * fresh baseline); import writes them only when asked, since an offset is
 * a position on the Kafka cluster the baseline was exported from.
 */
#include "mg_store.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "mg_log.h"

#define REDIS_OFF(field) offsetof(struct mg_redis_conf, field)

const struct mg_conf_prop mg_redis_conf_props[] = {
        {"redis.addr", MG_CONF_STR, REDIS_OFF(addr), "127.0.0.1:6379", 3, 255,
         0, "Redis server host:port holding baselines and live risk."},
        {"redis.connect_timeout", MG_CONF_MS, REDIS_OFF(connect_timeout_ms),
         "1s", 10, 60000, 0, "Time allowed to connect to Redis."},
        {"redis.io_timeout", MG_CONF_MS, REDIS_OFF(io_timeout_ms), "5s", 10,
         600000, 0,
         "Time allowed for one pipelined round trip; past it the connection "
         "is dropped and the batch retried."},
        {"redis.password", MG_CONF_STR, REDIS_OFF(password), NULL, 0, 255, 0,
         "Password for AUTH; empty for none."},
        {"redis.risk_channel", MG_CONF_STR, REDIS_OFF(risk_channel), "mg:risk",
         1, 255, 0,
         "Pub/sub channel on which every risk change is published as JSON."},
        {"redis.cluster", MG_CONF_BOOL, REDIS_OFF(cluster), "false", 0, 0, 0,
         "The server is a Redis Cluster (behind a cluster-aware proxy): "
         "save one identity per script call, since a script may only touch "
         "keys of one slot. Off: several identities share a call, which "
         "costs Redis far less per identity."},
        {"redis.ids_per_call", MG_CONF_INT, REDIS_OFF(ids_per_call), "64", 1,
         MG_STORE_IDS_PER_CALL_MAX, 0,
         "Identities saved by one script call when redis.cluster is off."},
};
const size_t mg_redis_conf_prop_cnt =
        sizeof(mg_redis_conf_props) / sizeof(*mg_redis_conf_props);

/* Saves k identities atomically. KEYS: bl and risk key of each identity,
 * in pairs. ARGV[1]: channel; then per identity: number of offset pairs n,
 * expected generation, blob, new generation, risk JSON or "", then n
 * field/value pairs. Returns one 1 (saved) or 0 (stale generation) per
 * identity. Identities are independent: a stale one does not stop the
 * others. */
static const char save_script[] =
        "local ch = ARGV[1]\n"
        "local a = 2\n"
        "local res = {}\n"
        "for k = 1, #KEYS, 2 do\n"
        "  local n = tonumber(ARGV[a])\n"
        "  local g = redis.call('HGET', KEYS[k], 'g')\n"
        "  if (g or '0') ~= ARGV[a + 1] then\n"
        "    res[#res + 1] = 0\n"
        "  else\n"
        "    local args = {'b', ARGV[a + 2], 'g', ARGV[a + 3]}\n"
        "    for i = 0, n - 1 do\n"
        "      args[#args + 1] = ARGV[a + 5 + 2 * i]\n"
        "      args[#args + 1] = ARGV[a + 6 + 2 * i]\n"
        "    end\n"
        "    redis.call('HSET', KEYS[k], unpack(args))\n"
        "    local risk = ARGV[a + 4]\n"
        "    if risk ~= '' then\n"
        "      redis.call('SET', KEYS[k + 1], risk)\n"
        "      redis.call('PUBLISH', ch, risk)\n"
        "    end\n"
        "    res[#res + 1] = 1\n"
        "  end\n"
        "  a = a + 5 + 2 * n\n"
        "end\n"
        "return res\n";

/* Resets one identity (mg_store_redis_reset()). KEYS: its bl and risk
 * key. ARGV: channel, zero risk JSON. Returns 0 when there is no bl hash
 * (nothing done), else {new generation, blobs deleted (0 or 1), offsets
 * kept, old risk JSON or "", subscribers reached}. A failing command stops
 * a script without undoing what it already did, so the one that can fail
 * (HINCRBY on a damaged g) comes first, here and in put_script. */
static const char reset_script[] =
        "if redis.call('EXISTS', KEYS[1]) == 0 then\n"
        "  return 0\n"
        "end\n"
        "local g = redis.call('HINCRBY', KEYS[1], 'g', 1)\n"
        "local had = redis.call('HDEL', KEYS[1], 'b')\n"
        "local offs = 0\n"
        "for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do\n"
        "  if string.sub(f, 1, 2) == 'o:' then\n"
        "    offs = offs + 1\n"
        "  end\n"
        "end\n"
        "local old = redis.call('GET', KEYS[2])\n"
        "redis.call('DEL', KEYS[2])\n"
        "local n = redis.call('PUBLISH', ARGV[1], ARGV[2])\n"
        "return {g, had, offs, old or '', n}\n";

/* Writes k imported identities (mg_store_redis_put()), each atomically.
 * KEYS: bl and risk key of each identity, in pairs. ARGV[1]: channel;
 * ARGV[2]: "1" to replace the offsets; then per identity: number of offset
 * pairs n (0 unless replacing), blob, risk JSON, then n field/value pairs.
 * Returns the new generation of each identity. */
static const char put_script[] =
        "local ch = ARGV[1]\n"
        "local with = ARGV[2] == '1'\n"
        "local a = 3\n"
        "local res = {}\n"
        "for k = 1, #KEYS, 2 do\n"
        "  local n = tonumber(ARGV[a])\n"
        "  res[#res + 1] = redis.call('HINCRBY', KEYS[k], 'g', 1)\n"
        "  redis.call('HSET', KEYS[k], 'b', ARGV[a + 1])\n"
        "  if with then\n"
        "    local keep = {}\n"
        "    for i = 0, n - 1 do\n"
        "      keep[ARGV[a + 3 + 2 * i]] = true\n"
        "    end\n"
        "    for _, f in ipairs(redis.call('HKEYS', KEYS[k])) do\n"
        "      if string.sub(f, 1, 2) == 'o:' and not keep[f] then\n"
        "        redis.call('HDEL', KEYS[k], f)\n"
        "      end\n"
        "    end\n"
        "    for i = 0, n - 1 do\n"
        "      redis.call('HSET', KEYS[k], ARGV[a + 3 + 2 * i],\n"
        "                 ARGV[a + 4 + 2 * i])\n"
        "    end\n"
        "  end\n"
        "  redis.call('SET', KEYS[k + 1], ARGV[a + 2])\n"
        "  redis.call('PUBLISH', ch, ARGV[a + 2])\n"
        "  a = a + 3 + 2 * n\n"
        "end\n"
        "return res\n";

/* Arguments of one identity in a save call: 2 keys, 5 fixed values and
 * 2 per origin (a put call needs fewer: 2 keys, 3 values, 2 per origin). */
#define SAVE_ARGS_PER_ID (2 + 5 + 2 * MG_STORE_ORIGINS_MAX)
/* Longest text argument: a key of the longest identity. */
#define SAVE_TEXT_MAX (MG_EVENT_IDENTITY_MAX + 80)

/* Scratch for building one save call, allocated once per store. */
struct save_call {
        const char **argv;     /* arguments */
        size_t *argvlen;       /* their lengths */
        char (*texts)[SAVE_TEXT_MAX]; /* formatted arguments */
        unsigned char *blobs;  /* encoded baselines, one slot per id */
        int argc, ntext;       /* used */
};

struct redis_store {
        const struct mg_redis_conf *conf; /* not owned */
        int per_call;                     /* identities per save call */
        struct save_call call;            /* scratch */
        redisContext *ctx;                /* NULL while disconnected */
        char sha[41];                     /* SHA1 of save_script */
        char reset_sha[41];               /* SHA1 of reset_script */
        char put_sha[41];                 /* SHA1 of put_script */
        char host[256];                   /* from conf->addr */
        int port;
};

static void tv_from_ms(struct timeval *tv, int64_t ms) {
        tv->tv_sec = (time_t)(ms / 1000);
        tv->tv_usec = (suseconds_t)((ms % 1000) * 1000);
}

static mg_err_t parse_addr(const char *addr, char *host, size_t host_size,
                           int *portp, char *errstr, size_t errstr_size) {
        const char *colon = strrchr(addr, ':');
        char *end;
        long port;

        if (!colon || colon == addr || (size_t)(colon - addr) >= host_size)
                return mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                  "redis address '%s' is not host:port",
                                  addr);
        port = strtol(colon + 1, &end, 10);
        if (*end || port < 1 || port > 65535)
                return mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                  "redis address '%s': bad port", addr);
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = '\0';
        *portp = (int)port;
        return MG_OK;
}

static void redis_drop(struct redis_store *rs) {
        if (rs->ctx)
                redisFree(rs->ctx);
        rs->ctx = NULL;
}

/* SCRIPT LOAD text into sha. */
static mg_err_t script_load(struct redis_store *rs, const char *text,
                            char sha[41], char *errstr, size_t errstr_size) {
        redisReply *reply = redisCommand(rs->ctx, "SCRIPT LOAD %s", text);
        mg_err_t err = MG_OK;

        if (!reply || reply->type != REDIS_REPLY_STRING ||
            reply->len != 40)
                err = mg_err_set(MG_ERR_REDIS, errstr, errstr_size,
                                 "Redis SCRIPT LOAD failed: %s",
                                 reply && reply->type == REDIS_REPLY_ERROR
                                         ? reply->str
                                         : rs->ctx->errstr);
        else
                memcpy(sha, reply->str, 41);
        freeReplyObject(reply);
        return err;
}

/* Connect, authenticate, load the scripts. */
static mg_err_t redis_connect(struct redis_store *rs, char *errstr,
                              size_t errstr_size) {
        struct timeval tv;
        redisReply *reply;
        mg_err_t err = MG_OK;

        if (rs->ctx)
                return MG_OK;
        tv_from_ms(&tv, rs->conf->connect_timeout_ms);
        rs->ctx = redisConnectWithTimeout(rs->host, rs->port, tv);
        if (!rs->ctx || rs->ctx->err) {
                err = mg_err_set(MG_ERR_REDIS, errstr, errstr_size,
                                 "cannot connect to Redis at %s: %s",
                                 rs->conf->addr,
                                 rs->ctx ? rs->ctx->errstr : "out of memory");
                redis_drop(rs);
                return err;
        }
        tv_from_ms(&tv, rs->conf->io_timeout_ms);
        redisSetTimeout(rs->ctx, tv);
        if (rs->conf->password && *rs->conf->password) {
                reply = redisCommand(rs->ctx, "AUTH %s", rs->conf->password);
                if (!reply || reply->type == REDIS_REPLY_ERROR)
                        err = mg_err_set(MG_ERR_REDIS, errstr, errstr_size,
                                         "Redis AUTH failed: %s",
                                         reply ? reply->str
                                               : rs->ctx->errstr);
                freeReplyObject(reply);
                if (err)
                        goto out;
        }
        if (!(err = script_load(rs, save_script, rs->sha, errstr,
                                errstr_size)) &&
            !(err = script_load(rs, reset_script, rs->reset_sha, errstr,
                                errstr_size)))
                err = script_load(rs, put_script, rs->put_sha, errstr,
                                  errstr_size);
        if (!err)
                mg_log_debug("store", "connected to Redis at %s",
                            rs->conf->addr);
out:
        if (err)
                redis_drop(rs);
        return err;
}

static void key_of(char *buf, size_t size, const char *identity,
                   const char *suffix) {
        snprintf(buf, size, "mg:{%s}:%s", identity, suffix);
}

/* Apply one HGETALL reply to rec. */
static mg_err_t rec_from_reply(struct mg_store_rec *rec,
                               const redisReply *reply, char *errstr,
                               size_t errstr_size) {
        char derr[256];
        size_t i;

        mg_baseline_init(rec->bl);
        rec->gen = 0;
        rec->origin_cnt = 0;
        if (reply->type != REDIS_REPLY_ARRAY || reply->elements % 2)
                return mg_err_set(MG_ERR_REDIS, errstr, errstr_size,
                                  "unexpected HGETALL reply for %s",
                                  rec->identity);
        for (i = 0; i + 1 < reply->elements; i += 2) {
                const redisReply *f = reply->element[i];
                const redisReply *v = reply->element[i + 1];
                char tmp[32], *colon, *end;

                if (f->type != REDIS_REPLY_STRING ||
                    v->type != REDIS_REPLY_STRING)
                        continue;
                if (!strcmp(f->str, "b")) {
                        if (mg_baseline_decode(rec->bl, v->str, v->len, derr,
                                               sizeof(derr)))
                                return mg_err_set(
                                        MG_ERR_DECODE, errstr, errstr_size,
                                        "mg:{%s}:bl field b: %s",
                                        rec->identity, derr);
                } else if (!strcmp(f->str, "g")) {
                        snprintf(tmp, sizeof(tmp), "%.*s", (int)v->len,
                                 v->str);
                        rec->gen = strtoull(tmp, NULL, 10);
                } else if (!strncmp(f->str, "o:", 2) &&
                           (colon = strrchr(f->str + 2, ':')) &&
                           rec->origin_cnt < MG_STORE_ORIGINS_MAX) {
                        struct mg_store_origin *o =
                                &rec->origins[rec->origin_cnt];
                        size_t tlen = (size_t)(colon - (f->str + 2));

                        if (tlen >= sizeof(o->topic))
                                continue;
                        memcpy(o->topic, f->str + 2, tlen);
                        o->topic[tlen] = '\0';
                        o->partition = (int32_t)strtol(colon + 1, &end, 10);
                        snprintf(tmp, sizeof(tmp), "%.*s", (int)v->len,
                                 v->str);
                        o->offset = strtoll(tmp, NULL, 10);
                        rec->origin_cnt++;
                }
        }
        return MG_OK;
}

/* Read cnt replies; on a connection error drop the connection. */
static mg_err_t redis_replies(struct redis_store *rs, redisReply **replies,
                              size_t cnt, char *errstr, size_t errstr_size) {
        size_t i;

        for (i = 0; i < cnt; i++) {
                void *r = NULL;

                if (redisGetReply(rs->ctx, &r) != REDIS_OK) {
                        mg_err_t err = mg_err_set(
                                MG_ERR_REDIS, errstr, errstr_size,
                                "Redis at %s: %s", rs->conf->addr,
                                rs->ctx->errstr[0] ? rs->ctx->errstr
                                                   : "connection lost");
                        while (i > 0)
                                freeReplyObject(replies[--i]);
                        redis_drop(rs);
                        return err;
                }
                replies[i] = r;
        }
        return MG_OK;
}

static mg_err_t redis_load_cb(void *st, struct mg_store_rec **recs,
                              size_t cnt, char *errstr, size_t errstr_size) {
        struct redis_store *rs = st;
        redisReply **replies = NULL;
        char key[MG_EVENT_IDENTITY_MAX + 16];
        mg_err_t err;
        size_t i;

        if (cnt == 0)
                return MG_OK;
        if ((err = redis_connect(rs, errstr, errstr_size)))
                return err;
        replies = calloc(cnt, sizeof(*replies));
        if (!replies)
                return mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                  "out of memory");
        for (i = 0; i < cnt; i++) {
                const char *argv[2] = {"HGETALL", key};
                size_t argvlen[2] = {7, 0};

                key_of(key, sizeof(key), recs[i]->identity, "bl");
                argvlen[1] = strlen(key);
                redisAppendCommandArgv(rs->ctx, 2, argv, argvlen);
        }
        if ((err = redis_replies(rs, replies, cnt, errstr, errstr_size)))
                goto out;
        for (i = 0; i < cnt && !err; i++) {
                if (replies[i]->type == REDIS_REPLY_ERROR)
                        err = mg_err_set(MG_ERR_REDIS, errstr, errstr_size,
                                         "HGETALL %s: %s", recs[i]->identity,
                                         replies[i]->str);
                else
                        err = rec_from_reply(recs[i], replies[i], errstr,
                                             errstr_size);
        }
        for (i = 0; i < cnt; i++)
                freeReplyObject(replies[i]);
out:
        free(replies);
        return err;
}

static void call_arg(struct save_call *call, const void *p, size_t len) {
        call->argv[call->argc] = p;
        call->argvlen[call->argc++] = len;
}

static void call_text(struct save_call *call, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void call_text(struct save_call *call, const char *fmt, ...) {
        char *t = call->texts[call->ntext++];
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(t, SAVE_TEXT_MAX, fmt, ap);
        va_end(ap);
        if (n < 0)
                n = 0;
        call_arg(call, t, (size_t)n < SAVE_TEXT_MAX ? (size_t)n
                                                    : SAVE_TEXT_MAX - 1);
}

/* Start a script call over recs[0..k): EVALSHA sha, both keys of each
 * identity, the risk channel. */
static void call_begin(struct save_call *call, const char *sha,
                       struct mg_store_rec **recs, size_t k,
                       const char *channel) {
        size_t i;

        call->argc = call->ntext = 0;
        call_arg(call, "EVALSHA", 7);
        call_arg(call, sha, 40);
        call_text(call, "%zu", 2 * k);
        for (i = 0; i < k; i++) {
                call_text(call, "mg:{%s}:bl", recs[i]->identity);
                call_text(call, "mg:{%s}:risk", recs[i]->identity);
        }
        call_arg(call, channel, strlen(channel));
}

/* Encode rec's baseline into slot i of the call's blobs. */
static mg_err_t call_blob(struct save_call *call, size_t i,
                          const struct mg_store_rec *rec, size_t *blenp,
                          char *errstr, size_t errstr_size) {
        if (mg_baseline_encode(rec->bl, call->blobs + i * MG_BASELINE_BLOB_MAX,
                               MG_BASELINE_BLOB_MAX, blenp))
                return mg_err_set(MG_ERR_FATAL, errstr, errstr_size,
                                  "baseline of %s does not encode",
                                  rec->identity);
        return MG_OK;
}

/* The first n origins of rec as field/value pairs. */
static void call_origins(struct save_call *call,
                         const struct mg_store_rec *rec, int n) {
        int o;

        for (o = 0; o < n; o++) {
                call_text(call, "o:%s:%" PRId32, rec->origins[o].topic,
                          rec->origins[o].partition);
                call_text(call, "%" PRId64, rec->origins[o].offset);
        }
}

/* Append one EVALSHA saving recs[0..k). */
static mg_err_t append_save(struct redis_store *rs, struct mg_store_rec **recs,
                            size_t k, char *errstr, size_t errstr_size) {
        struct save_call *call = &rs->call;
        size_t i, blen;
        mg_err_t err;

        call_begin(call, rs->sha, recs, k, rs->conf->risk_channel);
        for (i = 0; i < k; i++) {
                struct mg_store_rec *rec = recs[i];

                if ((err = call_blob(call, i, rec, &blen, errstr,
                                     errstr_size)))
                        return err;
                call_text(call, "%d", rec->origin_cnt);
                call_text(call, "%" PRIu64, rec->gen);
                call_arg(call, call->blobs + i * MG_BASELINE_BLOB_MAX, blen);
                call_text(call, "%" PRIu64, rec->gen + 1);
                if (rec->risk_json)
                        call_arg(call, rec->risk_json,
                                 strlen(rec->risk_json));
                else
                        call_arg(call, "", 0);
                call_origins(call, rec, rec->origin_cnt);
        }
        /* hiredis copies the arguments into its output buffer. */
        redisAppendCommandArgv(rs->ctx, call->argc, call->argv,
                               call->argvlen);
        return MG_OK;
}

/* One pipelined round trip of script calls over recs, redis.ids_per_call
 * identities per call: append_cb appends the call for recs[0..k), then
 * reply_cb takes each call's reply (an array of k results). what names the
 * operation in errors. A connection error, or a reply that is not such an
 * array (NOSCRIPT after a Redis restart, OOM, ...), drops the connection
 * (the next call reconnects and reloads the scripts) and is MG_ERR_REDIS:
 * the caller retries. */
static mg_err_t redis_calls(
        struct redis_store *rs, struct mg_store_rec **recs, size_t cnt,
        mg_err_t (*append_cb)(struct redis_store *rs,
                              struct mg_store_rec **recs, size_t k, void *arg,
                              char *errstr, size_t errstr_size),
        void (*reply_cb)(struct mg_store_rec **recs, size_t k,
                         const redisReply *r, void *arg),
        void *arg, const char *what, char *errstr, size_t errstr_size) {
        size_t per = (size_t)rs->per_call;
        size_t ncalls = (cnt + per - 1) / per;
        redisReply **replies = NULL;
        mg_err_t err;
        size_t c, sent = 0;

        if (cnt == 0)
                return MG_OK;
        if ((err = redis_connect(rs, errstr, errstr_size)))
                return err;
        replies = calloc(ncalls, sizeof(*replies));
        if (!replies)
                return mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                  "out of memory");
        for (c = 0; c < ncalls; c++) {
                size_t first = c * per;
                size_t k = cnt - first < per ? cnt - first : per;

                if ((err = append_cb(rs, recs + first, k, arg, errstr,
                                     errstr_size)))
                        break;
                sent++;
        }
        /* Replies of the commands sent must be read even after an error. */
        if (redis_replies(rs, replies, sent, errstr, errstr_size)) {
                err = MG_ERR_REDIS;
                goto out;
        }
        for (c = 0; c < sent; c++) {
                redisReply *r = replies[c];
                size_t first = c * per;
                size_t k = cnt - first < per ? cnt - first : per;

                if (r->type != REDIS_REPLY_ARRAY || r->elements != k) {
                        if (!err)
                                err = mg_err_set(
                                        MG_ERR_REDIS, errstr, errstr_size,
                                        "%s %s and %zu more: %s", what,
                                        recs[first]->identity, k - 1,
                                        r->type == REDIS_REPLY_ERROR
                                                ? r->str
                                                : "unexpected reply");
                } else {
                        reply_cb(recs + first, k, r, arg);
                }
                freeReplyObject(r);
        }
        if (err)
                redis_drop(rs);
out:
        free(replies);
        return err;
}

static mg_err_t save_append_cb(struct redis_store *rs,
                               struct mg_store_rec **recs, size_t k,
                               void *arg, char *errstr, size_t errstr_size) {
        return append_save(rs, recs, k, errstr, errstr_size);
}

/* Where a save's results go: conflicts[i] for recs0[i]. */
struct save_state {
        int *conflicts;              /* the caller's, indexed like recs0 */
        struct mg_store_rec **recs0; /* the first record of the save */
};

/* One save call's results: 1 saved (the generation moves on), 0 stale. */
static void save_reply_cb(struct mg_store_rec **recs, size_t k,
                          const redisReply *r, void *arg) {
        struct save_state *ss = arg;
        int *conflicts = ss->conflicts + (recs - ss->recs0);
        size_t i;

        for (i = 0; i < k; i++) {
                int saved = r->element[i]->type == REDIS_REPLY_INTEGER &&
                            r->element[i]->integer == 1;

                conflicts[i] = !saved;
                if (saved)
                        recs[i]->gen++;
        }
}

static mg_err_t redis_save_cb(void *st, struct mg_store_rec **recs,
                              size_t cnt, int *conflicts, char *errstr,
                              size_t errstr_size) {
        struct save_state ss = {conflicts, recs};
        size_t i;

        /* Defined for every record, even those of a call that failed. */
        for (i = 0; i < cnt; i++)
                conflicts[i] = 0;
        return redis_calls(st, recs, cnt, save_append_cb, save_reply_cb, &ss,
                           "saving", errstr, errstr_size);
}

static void redis_destroy_cb(void *st) {
        struct redis_store *rs = st;

        redis_drop(rs);
        free(rs->call.argv);
        free(rs->call.argvlen);
        free(rs->call.texts);
        free(rs->call.blobs);
        free(rs);
}

static const struct mg_store_ops redis_store_ops = {
        "redis", redis_load_cb, redis_save_cb, redis_destroy_cb};

mg_err_t mg_store_redis_new(const struct mg_redis_conf *conf,
                            struct mg_store *store, char *errstr,
                            size_t errstr_size) {
        struct redis_store *rs = calloc(1, sizeof(*rs));
        mg_err_t err;

        if (!rs)
                return mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                  "out of memory");
        rs->conf = conf;
        rs->per_call = conf->cluster || conf->ids_per_call < 1
                               ? 1
                               : (int)conf->ids_per_call;
        rs->call.argv = calloc(4 + (size_t)rs->per_call * SAVE_ARGS_PER_ID,
                               sizeof(*rs->call.argv));
        rs->call.argvlen = calloc(4 + (size_t)rs->per_call * SAVE_ARGS_PER_ID,
                                  sizeof(*rs->call.argvlen));
        rs->call.texts = calloc(2 + (size_t)rs->per_call * SAVE_ARGS_PER_ID,
                                sizeof(*rs->call.texts));
        rs->call.blobs = malloc((size_t)rs->per_call * MG_BASELINE_BLOB_MAX);
        if (!rs->call.argv || !rs->call.argvlen || !rs->call.texts ||
            !rs->call.blobs) {
                redis_destroy_cb(rs);
                return mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                  "out of memory");
        }
        if ((err = parse_addr(conf->addr, rs->host, sizeof(rs->host),
                              &rs->port, errstr, errstr_size))) {
                redis_destroy_cb(rs);
                return err;
        }
        store->ops = &redis_store_ops;
        store->st = rs;
        return MG_OK;
}

mg_err_t mg_store_redis_get(const struct mg_redis_conf *conf,
                            struct mg_store_rec *rec, char *errstr,
                            size_t errstr_size) {
        struct mg_store store;
        mg_err_t err;

        if ((err = mg_store_redis_new(conf, &store, errstr, errstr_size)))
                return err;
        err = store.ops->load_cb(store.st, &rec, 1, errstr, errstr_size);
        if (!err && rec->gen == 0)
                err = mg_err_set(MG_ERR_NOT_FOUND, errstr, errstr_size,
                                 "no baseline for identity '%s'",
                                 rec->identity);
        mg_store_destroy(&store);
        return err;
}

/*
 * Administration (`mintgate baseline`).
 */

/* Keys one SCAN call asks for: big enough that a million identities take
 * a thousand round trips, small enough that one batch of values (up to a
 * thousand baselines of a few KB) stays a few MB. */
#define SCAN_COUNT "1000"
/* Named identities read per pipelined round trip, for the same reasons. */
#define FETCH_BATCH 1000

static struct redis_store *redis_of(struct mg_store *store) {
        assert(store->ops == &redis_store_ops);
        return store->st;
}

/* The identity in key mg:{<identity>}:<suffix> into id; 0 if key is not
 * of that form. */
static int identity_of_key(const redisReply *key, const char *suffix,
                           char *id, size_t id_size) {
        size_t slen = strlen(suffix), n;

        if (key->type != REDIS_REPLY_STRING || key->len < 4 + 2 + slen ||
            memcmp(key->str, "mg:{", 4) ||
            memcmp(key->str + key->len - slen - 2, "}:", 2) ||
            memcmp(key->str + key->len - slen, suffix, slen))
                return 0;
        n = key->len - 4 - 2 - slen;
        if (n == 0 || n >= id_size || memchr(key->str + 4, '\0', n))
                return 0;
        memcpy(id, key->str + 4, n);
        id[n] = '\0';
        return 1;
}

static void append_scan(struct redis_store *rs, const char *cursor,
                        const char *pattern) {
        const char *argv[6] = {"SCAN", cursor, "MATCH", pattern, "COUNT",
                               SCAN_COUNT};
        size_t argvlen[6];
        int i;

        for (i = 0; i < 6; i++)
                argvlen[i] = strlen(argv[i]);
        redisAppendCommandArgv(rs->ctx, 6, argv, argvlen);
}

static void append_key_cmd(struct redis_store *rs, const char *cmd,
                           const char *identity, const char *suffix) {
        char key[MG_EVENT_IDENTITY_MAX + 16];
        const char *argv[2] = {cmd, key};
        size_t argvlen[2];

        key_of(key, sizeof(key), identity, suffix);
        argvlen[0] = strlen(cmd);
        argvlen[1] = strlen(key);
        redisAppendCommandArgv(rs->ctx, 2, argv, argvlen);
}

/* Check a SCAN reply and copy its cursor into cursor (size 32). */
static mg_err_t scan_reply_check(struct redis_store *rs,
                                 const redisReply *reply, char *cursor,
                                 char *errstr, size_t errstr_size) {
        if (reply->type == REDIS_REPLY_ERROR)
                return mg_err_set(MG_ERR_REDIS, errstr, errstr_size,
                                  "SCAN on Redis at %s: %s", rs->conf->addr,
                                  reply->str);
        if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
            reply->element[0]->type != REDIS_REPLY_STRING ||
            reply->element[0]->len >= 32 ||
            reply->element[1]->type != REDIS_REPLY_ARRAY)
                return mg_err_set(MG_ERR_REDIS, errstr, errstr_size,
                                  "SCAN on Redis at %s: unexpected reply",
                                  rs->conf->addr);
        memcpy(cursor, reply->element[0]->str, reply->element[0]->len);
        cursor[reply->element[0]->len] = '\0';
        return MG_OK;
}

/* Hand one GET or HGETALL reply for identity to cb. absent_error: what
 * to say when there is nothing (NULL: skip the identity silently, it was
 * deleted after the SCAN saw it). rec is scratch. */
static mg_err_t deliver(enum mg_store_scan_kind kind, const char *identity,
                        const redisReply *reply, struct mg_store_rec *rec,
                        const char *absent_error, mg_store_item_cb cb,
                        void *opaque) {
        struct mg_store_item item;
        char why[MG_EVENT_IDENTITY_MAX + 320];

        memset(&item, 0, sizeof(item));
        item.identity = identity;
        if (reply->type == REDIS_REPLY_NIL ||
            (reply->type == REDIS_REPLY_ARRAY && reply->elements == 0)) {
                if (!absent_error)
                        return MG_OK;
                item.error = absent_error;
        } else if (reply->type == REDIS_REPLY_ERROR) {
                snprintf(why, sizeof(why), "mg:{%s}:%s: %s", identity,
                         kind == MG_STORE_SCAN_RISK ? "risk" : "bl",
                         reply->str);
                item.error = why;
        } else if (kind == MG_STORE_SCAN_RISK) {
                if (reply->type == REDIS_REPLY_STRING) {
                        item.risk_json = reply->str;
                } else {
                        snprintf(why, sizeof(why),
                                 "mg:{%s}:risk: not a string", identity);
                        item.error = why;
                }
        } else {
                snprintf(rec->identity, sizeof(rec->identity), "%s",
                         identity);
                if (rec_from_reply(rec, reply, why, sizeof(why)))
                        item.error = why;
                else
                        item.rec = rec;
        }
        return cb(opaque, &item);
}

mg_err_t mg_store_redis_scan(struct mg_store *store,
                             enum mg_store_scan_kind kind,
                             mg_store_item_cb cb, void *opaque, char *errstr,
                             size_t errstr_size) {
        struct redis_store *rs = redis_of(store);
        const char *suffix = kind == MG_STORE_SCAN_RISK ? "risk" : "bl";
        const char *cmd = kind == MG_STORE_SCAN_RISK ? "GET" : "HGETALL";
        redisReply *scan = NULL, *next = NULL, **vals = NULL;
        struct mg_store_rec *rec = NULL;
        char (*ids)[MG_EVENT_IDENTITY_MAX + 1] = NULL;
        char pattern[16], cursor[32] = "0";
        size_t i, n, cap = 0;
        mg_err_t err;
        int more;

        snprintf(pattern, sizeof(pattern), "mg:{*}:%s", suffix);
        if ((err = redis_connect(rs, errstr, errstr_size)))
                return err;
        if (kind == MG_STORE_SCAN_BASELINE && !(rec = mg_store_rec_new(""))) {
                err = mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                 "out of memory");
                goto out;
        }
        append_scan(rs, cursor, pattern);
        if ((err = redis_replies(rs, &scan, 1, errstr, errstr_size)))
                goto out;
        for (;;) {
                const redisReply *keys;

                if ((err = scan_reply_check(rs, scan, cursor, errstr,
                                            errstr_size)))
                        goto out;
                keys = scan->element[1];
                if (keys->elements > cap) {
                        void *a = realloc(vals, keys->elements *
                                                        sizeof(*vals));
                        void *b = a ? realloc(ids, keys->elements *
                                                           sizeof(*ids))
                                    : NULL;

                        if (a)
                                vals = a;
                        if (b)
                                ids = b;
                        if (!a || !b) {
                                err = mg_err_set(MG_ERR_NOMEM, errstr,
                                                 errstr_size,
                                                 "out of memory");
                                goto out;
                        }
                        cap = keys->elements;
                }
                /* This batch's values and the next SCAN: one round trip. */
                for (i = n = 0; i < keys->elements; i++)
                        if (identity_of_key(keys->element[i], suffix, ids[n],
                                            sizeof(ids[n])))
                                append_key_cmd(rs, cmd, ids[n++], suffix);
                more = strcmp(cursor, "0") != 0;
                if (more)
                        append_scan(rs, cursor, pattern);
                if ((err = redis_replies(rs, vals, n, errstr, errstr_size)))
                        goto out;
                if (more &&
                    (err = redis_replies(rs, &next, 1, errstr, errstr_size))) {
                        while (n > 0)
                                freeReplyObject(vals[--n]);
                        goto out;
                }
                for (i = 0; i < n && !err; i++)
                        err = deliver(kind, ids[i], vals[i], rec, NULL, cb,
                                      opaque);
                for (i = 0; i < n; i++)
                        freeReplyObject(vals[i]);
                freeReplyObject(scan);
                scan = next;
                next = NULL;
                if (err || !more)
                        break;
        }
out:
        freeReplyObject(scan);
        freeReplyObject(next);
        free(vals);
        free(ids);
        mg_store_rec_destroy(rec);
        return err;
}

mg_err_t mg_store_redis_fetch(struct mg_store *store,
                              const char *const *identities, size_t cnt,
                              mg_store_item_cb cb, void *opaque,
                              char *errstr, size_t errstr_size) {
        struct redis_store *rs = redis_of(store);
        redisReply **vals = NULL;
        struct mg_store_rec *rec = NULL;
        char absent[MG_EVENT_IDENTITY_MAX + 64];
        size_t first, i, k;
        mg_err_t err;

        if (cnt == 0)
                return MG_OK;
        if ((err = redis_connect(rs, errstr, errstr_size)))
                return err;
        vals = calloc(cnt < FETCH_BATCH ? cnt : FETCH_BATCH, sizeof(*vals));
        rec = mg_store_rec_new("");
        if (!vals || !rec) {
                err = mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                 "out of memory");
                goto out;
        }
        for (first = 0; first < cnt && !err; first += k) {
                k = cnt - first < FETCH_BATCH ? cnt - first : FETCH_BATCH;
                for (i = 0; i < k; i++)
                        append_key_cmd(rs, "HGETALL", identities[first + i],
                                       "bl");
                if ((err = redis_replies(rs, vals, k, errstr, errstr_size)))
                        goto out;
                for (i = 0; i < k && !err; i++) {
                        snprintf(absent, sizeof(absent),
                                 "no baseline for identity '%s'",
                                 identities[first + i]);
                        err = deliver(MG_STORE_SCAN_BASELINE,
                                      identities[first + i], vals[i], rec,
                                      absent, cb, opaque);
                }
                for (i = 0; i < k; i++)
                        freeReplyObject(vals[i]);
        }
out:
        free(vals);
        mg_store_rec_destroy(rec);
        return err;
}

/* Integer element i of a script's array reply, or -1. */
static long long reply_int(const redisReply *r, size_t i) {
        if (i >= r->elements || r->element[i]->type != REDIS_REPLY_INTEGER)
                return -1;
        return r->element[i]->integer;
}

mg_err_t mg_store_redis_reset(struct mg_store *store, const char *identity,
                              int64_t now_ms,
                              struct mg_store_reset_result *res, char *errstr,
                              size_t errstr_size) {
        struct redis_store *rs = redis_of(store);
        char blkey[MG_EVENT_IDENTITY_MAX + 16];
        char riskkey[MG_EVENT_IDENTITY_MAX + 16];
        const char *argv[7];
        size_t argvlen[7];
        struct mg_risk zero;
        redisReply *reply = NULL;
        const redisReply *old;
        char *risk_json = NULL;
        json_t *doc;
        mg_err_t err;
        int i;

        memset(res, 0, sizeof(*res));
        memset(&zero, 0, sizeof(zero));
        zero.level = MG_RISK_LOW;
        zero.ts_ms = now_ms;
        if (!(risk_json = mg_store_risk_json(identity, &zero, now_ms)))
                return mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                  "out of memory");
        if ((err = redis_connect(rs, errstr, errstr_size)))
                goto out;
        key_of(blkey, sizeof(blkey), identity, "bl");
        key_of(riskkey, sizeof(riskkey), identity, "risk");
        argv[0] = "EVALSHA";
        argv[1] = rs->reset_sha;
        argv[2] = "2";
        argv[3] = blkey;
        argv[4] = riskkey;
        argv[5] = rs->conf->risk_channel;
        argv[6] = risk_json;
        for (i = 0; i < 7; i++)
                argvlen[i] = strlen(argv[i]);
        redisAppendCommandArgv(rs->ctx, 7, argv, argvlen);
        if ((err = redis_replies(rs, &reply, 1, errstr, errstr_size)))
                goto out;
        if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 0) {
                err = mg_err_set(MG_ERR_NOT_FOUND, errstr, errstr_size,
                                 "no baseline for identity '%s'", identity);
                goto out;
        }
        if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 5 ||
            reply->element[3]->type != REDIS_REPLY_STRING ||
            reply_int(reply, 0) < 1) {
                err = mg_err_set(MG_ERR_REDIS, errstr, errstr_size,
                                 "resetting %s: %s", identity,
                                 reply->type == REDIS_REPLY_ERROR
                                         ? reply->str
                                         : "unexpected reply");
                redis_drop(rs);
                goto out;
        }
        res->gen = (uint64_t)reply_int(reply, 0);
        res->had_baseline = reply_int(reply, 1) == 1;
        res->offsets_kept = (int)reply_int(reply, 2);
        res->receivers = reply_int(reply, 4);
        old = reply->element[3];
        res->had_risk = old->len > 0;
        res->old_risk = -1;
        if (res->had_risk && (doc = json_loadb(old->str, old->len, 0, NULL))) {
                if (json_is_number(json_object_get(doc, "risk")))
                        res->old_risk = json_number_value(
                                json_object_get(doc, "risk"));
                json_decref(doc);
        }
out:
        freeReplyObject(reply);
        free(risk_json);
        return err;
}

/* Append one EVALSHA writing recs[0..k) (put_script). */
static mg_err_t append_put(struct redis_store *rs, struct mg_store_rec **recs,
                           size_t k, int with_offsets, char *errstr,
                           size_t errstr_size) {
        struct save_call *call = &rs->call;
        size_t i, blen;
        mg_err_t err;
        int n;

        call_begin(call, rs->put_sha, recs, k, rs->conf->risk_channel);
        call_arg(call, with_offsets ? "1" : "0", 1);
        for (i = 0; i < k; i++) {
                struct mg_store_rec *rec = recs[i];

                if (!rec->risk_json)
                        return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                          "no risk record for %s",
                                          rec->identity);
                if ((err = call_blob(call, i, rec, &blen, errstr,
                                     errstr_size)))
                        return err;
                n = with_offsets ? rec->origin_cnt : 0;
                call_text(call, "%d", n);
                call_arg(call, call->blobs + i * MG_BASELINE_BLOB_MAX, blen);
                call_arg(call, rec->risk_json, strlen(rec->risk_json));
                call_origins(call, rec, n);
        }
        redisAppendCommandArgv(rs->ctx, call->argc, call->argv,
                               call->argvlen);
        return MG_OK;
}

static mg_err_t put_append_cb(struct redis_store *rs,
                              struct mg_store_rec **recs, size_t k, void *arg,
                              char *errstr, size_t errstr_size) {
        return append_put(rs, recs, k, *(const int *)arg, errstr,
                          errstr_size);
}

/* An import call's results: each identity's new generation. */
static void put_reply_cb(struct mg_store_rec **recs, size_t k,
                         const redisReply *r, void *arg) {
        size_t i;

        for (i = 0; i < k; i++)
                recs[i]->gen = (uint64_t)reply_int(r, i);
}

mg_err_t mg_store_redis_put(struct mg_store *store, struct mg_store_rec **recs,
                            size_t cnt, int with_offsets, char *errstr,
                            size_t errstr_size) {
        return redis_calls(redis_of(store), recs, cnt, put_append_cb,
                           put_reply_cb, &with_offsets, "writing", errstr,
                           errstr_size);
}
