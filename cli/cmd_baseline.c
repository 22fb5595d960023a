/*
 * cmd_baseline.c — `mintgate baseline`: inspect and administer identities'
 * baselines in Redis (layout in scoring/mg_store.h).
 *
 *   show IDENTITY    the baseline, live risk, level, reasons and how many
 *                    events of each type have been applied (--json: the
 *                    whole baseline document, counts under events.auth /
 *                    events.usage / events.signal).
 *   top              the riskiest identities now. Every risk key is
 *                    scanned in batches (mg_store_redis_scan()), its risk
 *                    decayed from its event time to now with
 *                    scoring.risk.half_life — except quarantine points,
 *                    which the baseline never decays either — and the N
 *                    highest are kept in a bounded min-heap, so a million
 *                    identities cost one batch plus N entries of memory.
 *                    Records of risk 0 are not listed (import stores one
 *                    for every identity).
 *   reset IDENTITY   start the baseline afresh (mg_store_redis_reset()):
 *                    blob deleted, generation bumped so running scorers
 *                    reload, offsets kept, risk deleted and a zero risk
 *                    published.
 *   export           JSON lines, one per identity (all, by SCAN, or those
 *                    named): identity, generation, offsets, the blob in
 *                    base64 (lossless: the encoding is canonical, so
 *                    re-encoding what the store holds gives its bytes) and
 *                    the mg_baseline_to_json() summary for people.
 *   import           the reverse, in batches of IMPORT_BATCH identities
 *                    (mg_store_redis_put()): each blob is checked with
 *                    mg_baseline_decode(), a bad line is reported with its
 *                    number and skipped, the others are written with their
 *                    risk (mg_baseline_risk() at the baseline's newest event
 *                    time, as the scorer stores it), which is published.
 *
 * Offsets and import. A stored offset says "events of this (topic,
 * partition) up to here are in the baseline". It is a position on the
 * Kafka cluster the baseline was exported from; on another cluster the
 * same numbers name other events, and a scorer would skip real events as
 * already applied. So import keeps the target's offsets unless
 * --with-offsets is given, which is right only when restoring into the
 * deployment (same Kafka cluster and topics) the export came from.
 *
 * Exit status: 0; 1 when Redis fails, an identity is unknown or could not
 * be exported, or an import line was bad; 2 for bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "mg_hash.h"
#include "mg_lines.h"

/* Default and largest -n of top: a "top" list longer than ten thousand is
 * an export, and the heap's duplicate check is linear in it. */
#define TOP_DEFAULT 20
#define TOP_MAX     10000

/* Identities written per mg_store_redis_put() call (one round trip). */
#define IMPORT_BATCH 256

/* Import lines longer than this are rejected: a blob is at most
 * MG_BASELINE_BLOB_MAX bytes (5.4 KB of base64) and its summary a few KB
 * more; 1 MiB is far beyond any line export writes. */
#define IMPORT_LINE_MAX (1024 * 1024)

/* Base64 text of the largest blob, with its NUL. */
#define B64_BLOB_MAX (((MG_BASELINE_BLOB_MAX + 2) / 3) * 4 + 1)

enum baseline_verb { VERB_SHOW, VERB_TOP, VERB_RESET, VERB_EXPORT,
                     VERB_IMPORT };

static const char *const verb_names[] = {"show", "top", "reset", "export",
                                         "import"};

static void baseline_usage(FILE *fp) {
        fprintf(fp,
                "Usage: mintgate baseline show IDENTITY [--json] [options]\n"
                "       mintgate baseline top [-n N] [--json] [options]\n"
                "       mintgate baseline reset IDENTITY [options]\n"
                "       mintgate baseline export [-o FILE] [IDENTITY...] "
                "[options]\n"
                "       mintgate baseline import [--with-offsets] [FILE] "
                "[options]\n\n"
                "  show    the identity's baseline, risk now, level, reasons "
                "and event counts\n"
                "  top     the riskiest identities now: every stored risk, "
                "decayed from its event\n"
                "          time to now with scoring.risk.half_life "
                "(quarantine does not decay),\n"
                "          highest first; identities at risk 0 are not "
                "listed\n"
                "  reset   start the identity's baseline afresh: blob "
                "deleted, generation bumped\n"
                "          (running scorers reload it), offsets kept (events "
                "already applied are\n"
                "          not counted again), risk deleted and risk 0 "
                "published\n"
                "  export  JSON lines, one per identity (every identity "
                "when none is named):\n"
                "          identity, generation, offsets, the baseline blob "
                "in base64, a summary\n"
                "  import  export's JSON lines (FILE or stdin) written back; "
                "a bad line is\n"
                "          reported with its number, the others are still "
                "imported\n\n" CLI_COMMON_HELP
                "      --json            show: the whole baseline as JSON; "
                "top: one JSON array\n"
                "  -n, --count N         top: how many identities, 1..%d "
                "(default %d)\n"
                "  -o, --output FILE     export: write to FILE, not "
                "stdout\n"
                "      --with-offsets    import: also restore the Kafka "
                "offsets stored with each\n"
                "                        baseline (see below)\n\n"
                "Offsets: each baseline is stored with the last offset of "
                "every Kafka partition\nit has applied, so redelivered "
                "events are not counted twice. Offsets are\npositions on "
                "the Kafka cluster the export came from: imported into a "
                "deployment\nwith another cluster they would make the "
                "scorer skip real events. Import\ntherefore keeps the "
                "target's offsets; use --with-offsets only to restore "
                "into\nthe same deployment (same Kafka cluster and "
                "topics).\n\n"
                "With redis.cluster, top and export without identities "
                "scan only the node at\n--redis.\n",
                TOP_MAX, TOP_DEFAULT);
}

/*
 * Base64 (RFC 4648, standard alphabet, padded): the blob in export lines.
 */

static const char b64_alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Encode len bytes into out (room for ((len + 2) / 3) * 4 + 1). */
static void b64_encode(const unsigned char *in, size_t len, char *out) {
        size_t i;
        uint32_t v;

        for (i = 0; i + 2 < len; i += 3) {
                v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 |
                    in[i + 2];
                *out++ = b64_alphabet[v >> 18];
                *out++ = b64_alphabet[(v >> 12) & 63];
                *out++ = b64_alphabet[(v >> 6) & 63];
                *out++ = b64_alphabet[v & 63];
        }
        if (i < len) {
                v = (uint32_t)in[i] << 16;
                if (i + 1 < len)
                        v |= (uint32_t)in[i + 1] << 8;
                *out++ = b64_alphabet[v >> 18];
                *out++ = b64_alphabet[(v >> 12) & 63];
                *out++ = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
                *out++ = '=';
        }
        *out = '\0';
}

static int b64_value(char c) {
        const char *p = c ? strchr(b64_alphabet, c) : NULL;

        return p ? (int)(p - b64_alphabet) : -1;
}

/* Decode text (len chars) into out (cap bytes); strict: padded, no
 * whitespace. */
static mg_err_t b64_decode(const char *text, size_t len, unsigned char *out,
                           size_t cap, size_t *outlen, char *errstr,
                           size_t errstr_size) {
        size_t i, n = 0, pad = 0;
        int k, d[4];

        if (len % 4)
                return mg_err_set(MG_ERR_DECODE, errstr, errstr_size,
                                  "base64 length %zu is not a multiple of 4",
                                  len);
        if (len >= 1 && text[len - 1] == '=')
                pad = len >= 2 && text[len - 2] == '=' ? 2 : 1;
        if ((len / 4) * 3 - pad > cap)
                return mg_err_set(MG_ERR_TOOBIG, errstr, errstr_size,
                                  "more than %zu bytes", cap);
        for (i = 0; i < len; i += 4) {
                for (k = 0; k < 4; k++) {
                        d[k] = b64_value(text[i + k]);
                        if (d[k] < 0 && !(i + 4 == len && text[i + k] == '=' &&
                                          k >= 4 - (int)pad))
                                return mg_err_set(
                                        MG_ERR_DECODE, errstr, errstr_size,
                                        "invalid base64 character at "
                                        "offset %zu",
                                        i + (size_t)k);
                        if (d[k] < 0)
                                d[k] = 0;
                }
                out[n++] = (unsigned char)(d[0] << 2 | d[1] >> 4);
                if (i + 4 < len || pad < 2)
                        out[n++] = (unsigned char)((d[1] & 15) << 4 |
                                                   d[2] >> 2);
                if (i + 4 < len || pad < 1)
                        out[n++] = (unsigned char)((d[2] & 3) << 6 | d[3]);
        }
        *outlen = n;
        return MG_OK;
}

/*
 * show
 */

static void print_human(const char *identity, json_t *doc) {
        json_t *reasons = json_object_get(doc, "reasons");
        json_t *events = json_object_get(doc, "events");
        json_t *r;
        size_t i;
        char *rest;

        printf("identity  %s\n", identity);
        printf("risk      %.1f (%s)\n",
               json_number_value(json_object_get(doc, "risk")),
               json_string_value(json_object_get(doc, "level"))
                       ? json_string_value(json_object_get(doc, "level"))
                       : "?");
        printf("events    auth %" JSON_INTEGER_FORMAT
               ", usage %" JSON_INTEGER_FORMAT
               ", signal %" JSON_INTEGER_FORMAT "\n",
               json_integer_value(json_object_get(events, "auth")),
               json_integer_value(json_object_get(events, "usage")),
               json_integer_value(json_object_get(events, "signal")));
        printf("reasons  ");
        if (!json_array_size(reasons))
                printf(" none\n");
        else
                printf("\n");
        json_array_foreach(reasons, i, r)
                printf("  %-22s %5.1f  %s\n",
                       json_string_value(json_object_get(r, "signal")),
                       json_number_value(json_object_get(r, "points")),
                       json_string_value(json_object_get(r, "detail")));
        json_object_del(doc, "reasons");
        json_object_del(doc, "events");
        json_object_del(doc, "risk");
        json_object_del(doc, "level");
        rest = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (rest)
                printf("baseline  %s\n", rest);
        free(rest);
}

static int baseline_show(struct cli_conf *cc, const char *identity,
                         int as_json) {
        struct mg_store_rec *rec = NULL;
        json_t *doc = NULL;
        char errstr[512], *text = NULL;
        int rc = MG_EXIT_FAILURE;
        mg_err_t err;

        if (!(rec = mg_store_rec_new(identity))) {
                fprintf(stderr, "mintgate baseline: out of memory\n");
                goto out;
        }
        err = mg_store_redis_get(&cc->redis, rec, errstr, sizeof(errstr));
        if (err) {
                fprintf(stderr, "mintgate baseline: %s\n", errstr);
                rc = err == MG_ERR_CONFIG ? MG_EXIT_USAGE : MG_EXIT_FAILURE;
                goto out;
        }
        text = mg_baseline_to_json(rec->bl, &cc->scoring, mg_time_now_ms());
        if (!text || !(doc = json_loads(text, 0, NULL))) {
                fprintf(stderr, "mintgate baseline: cannot render %s\n",
                        identity);
                goto out;
        }
        if (as_json) {
                json_object_set_new(doc, "identity", json_string(identity));
                free(text);
                text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
                printf("%s\n", text ? text : "{}");
        } else {
                print_human(identity, doc);
        }
        rc = MG_EXIT_OK;
out:
        json_decref(doc);
        free(text);
        mg_store_rec_destroy(rec);
        return rc;
}

/*
 * top
 */

/* One ranked identity. */
struct top_entry {
        char *identity;  /* malloc'd */
        uint64_t hash;   /* FNV-1a of identity: cheap duplicate check */
        double now;      /* risk decayed to now: the rank */
        double stored;   /* risk as stored, at its event time */
        json_t *doc;     /* the risk record (level, ts, reasons), owned */
};

/* The N highest so far: a min-heap on (now, then identity reversed), so
 * the root is the entry the next better candidate replaces. */
struct top_state {
        const struct mg_scoring_conf *conf; /* half-life, levels */
        int64_t now_ms;          /* "now" of every decay */
        struct top_entry *heap;  /* cap entries */
        size_t cnt, cap;
        uint64_t scanned;        /* risk records seen */
        uint64_t risky;          /* of them, with a risk above 0 */
        uint64_t bad;            /* records that could not be read */
};

/* 1 if a ranks below b. */
static int top_below(const struct top_entry *a, const struct top_entry *b) {
        if (a->now != b->now)
                return a->now < b->now;
        return strcmp(a->identity, b->identity) > 0;
}

static void top_swap(struct top_entry *a, struct top_entry *b) {
        struct top_entry t = *a;

        *a = *b;
        *b = t;
}

static void top_sift_down(struct top_entry *heap, size_t cnt, size_t i) {
        for (;;) {
                size_t l = 2 * i + 1, r = l + 1, m = i;

                if (l < cnt && top_below(&heap[l], &heap[m]))
                        m = l;
                if (r < cnt && top_below(&heap[r], &heap[m]))
                        m = r;
                if (m == i)
                        return;
                top_swap(&heap[i], &heap[m]);
                i = m;
        }
}

static void top_sift_up(struct top_entry *heap, size_t i) {
        while (i > 0 && top_below(&heap[i], &heap[(i - 1) / 2])) {
                top_swap(&heap[i], &heap[(i - 1) / 2]);
                i = (i - 1) / 2;
        }
}

static void top_entry_free(struct top_entry *e) {
        free(e->identity);
        json_decref(e->doc);
}

/* The stored risk of doc decayed to now_ms: contributions halve every
 * scoring.risk.half_life of event time, except quarantine's, which holds
 * until a release (as in mg_baseline_risk()). */
static double top_decay(const struct top_state *ts, json_t *doc,
                        double stored, int64_t ts_ms) {
        int64_t age = ts->now_ms - ts_ms;
        double q = 0, f, v;
        json_t *r;
        size_t i;

        if (age < 0)
                age = 0;
        json_array_foreach(json_object_get(doc, "reasons"), i, r) {
                const char *sig =
                        json_string_value(json_object_get(r, "signal"));

                if (sig && !strcmp(sig, mg_signal_names[MG_SIG_QUARANTINE]))
                        q = json_number_value(json_object_get(r, "points"));
        }
        if (q < 0 || q > stored)
                q = q < 0 ? 0 : stored;
        f = exp2(-(double)age / (double)ts->conf->risk_half_life_ms);
        v = q + (stored - q) * f;
        return v > 100 ? 100 : v;
}

static mg_err_t top_item_cb(void *opaque, const struct mg_store_item *item) {
        struct top_state *ts = opaque;
        struct top_entry cand;
        json_error_t jerr;
        json_t *doc, *risk, *tsv;
        size_t i;

        ts->scanned++;
        if (item->error) {
                fprintf(stderr, "mintgate baseline top: %s; skipped\n",
                        item->error);
                ts->bad++;
                return MG_OK;
        }
        doc = json_loads(item->risk_json, 0, &jerr);
        risk = json_object_get(doc, "risk");
        tsv = json_object_get(doc, "ts");
        if (!json_is_object(doc) || !json_is_number(risk) ||
            !json_is_integer(tsv)) {
                fprintf(stderr,
                        "mintgate baseline top: mg:{%s}:risk: %s; skipped\n",
                        item->identity,
                        !doc ? jerr.text
                             : "not a risk record (needs numbers risk and "
                               "ts)");
                json_decref(doc);
                ts->bad++;
                return MG_OK;
        }
        memset(&cand, 0, sizeof(cand));
        cand.stored = json_number_value(risk);
        if (!(cand.stored > 0)) {
                /* Not risky (import stores every identity's risk). */
                json_decref(doc);
                return MG_OK;
        }
        ts->risky++;
        cand.now = top_decay(ts, doc, cand.stored, json_integer_value(tsv));
        cand.identity = (char *)item->identity; /* copied if kept */
        cand.hash = mg_hash_str(item->identity);
        if (ts->cnt == ts->cap && !top_below(&ts->heap[0], &cand)) {
                json_decref(doc);
                return MG_OK;
        }
        /* SCAN may return a key twice: keep the first sighting. */
        for (i = 0; i < ts->cnt; i++)
                if (ts->heap[i].hash == cand.hash &&
                    !strcmp(ts->heap[i].identity, cand.identity)) {
                        json_decref(doc);
                        return MG_OK;
                }
        if (!(cand.identity = strdup(item->identity))) {
                json_decref(doc);
                return MG_ERR_NOMEM;
        }
        cand.doc = doc;
        if (ts->cnt < ts->cap) {
                ts->heap[ts->cnt] = cand;
                top_sift_up(ts->heap, ts->cnt++);
        } else {
                top_entry_free(&ts->heap[0]);
                ts->heap[0] = cand;
                top_sift_down(ts->heap, ts->cnt, 0);
        }
        return MG_OK;
}

static int cmp_rank(const void *a, const void *b) {
        const struct top_entry *x = a, *y = b;

        return top_below(x, y) ? 1 : top_below(y, x) ? -1 : 0;
}

static const char *level_of(const struct mg_scoring_conf *conf, double v) {
        enum mg_risk_level l = v >= conf->level_critical ? MG_RISK_CRITICAL
                               : v >= conf->level_high   ? MG_RISK_HIGH
                               : v >= conf->level_medium ? MG_RISK_MEDIUM
                                                         : MG_RISK_LOW;

        return mg_risk_level_names[l];
}

/* The signal of the record's first (largest) reason, or NULL. */
static const char *top_reason(json_t *doc) {
        return json_string_value(json_object_get(
                json_array_get(json_object_get(doc, "reasons"), 0),
                "signal"));
}

static int top_print_json(const struct top_state *ts) {
        json_t *arr = json_array(), *o, *reasons;
        const char *reason;
        char *text;
        size_t i;
        int ok = arr != NULL;

        for (i = 0; ok && i < ts->cnt; i++) {
                const struct top_entry *e = &ts->heap[i];

                reason = top_reason(e->doc);
                reasons = json_object_get(e->doc, "reasons");
                reasons = json_is_array(reasons) ? json_incref(reasons)
                                                 : json_array();
                o = json_pack(
                        "{s:I, s:s, s:f, s:f, s:s, s:O?, s:O?, s:O?, s:s?, "
                        "s:o}",
                        "rank", (json_int_t)(i + 1), "identity", e->identity,
                        "risk_now", round(e->now * 100) / 100, "risk",
                        e->stored, "level", level_of(ts->conf, e->now),
                        "stored_level", json_object_get(e->doc, "level"),
                        "ts", json_object_get(e->doc, "ts"), "updated",
                        json_object_get(e->doc, "updated"), "top_reason",
                        reason, "reasons", reasons);
                ok = o && !json_array_append_new(arr, o);
        }
        text = ok ? json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER)
                  : NULL;
        json_decref(arr);
        if (!text) {
                fprintf(stderr, "mintgate baseline top: cannot render the "
                                "ranking as JSON (an identity that is not "
                                "UTF-8, or out of memory)\n");
                return MG_EXIT_FAILURE;
        }
        printf("%s\n", text);
        free(text);
        return MG_EXIT_OK;
}

static void top_print_human(const struct top_state *ts) {
        char when[40];
        size_t i;
        int w = 8;

        for (i = 0; i < ts->cnt; i++)
                if (strlen(ts->heap[i].identity) > (size_t)w)
                        w = (int)strlen(ts->heap[i].identity);
        printf("%4s  %-*s  %8s  %6s  %-8s  %s\n", "rank", w, "identity",
               "risk now", "stored", "level", "top reason");
        for (i = 0; i < ts->cnt; i++) {
                const struct top_entry *e = &ts->heap[i];
                const char *reason = top_reason(e->doc);

                printf("%4zu  %-*s  %8.1f  %6.1f  %-8s  %s\n", i + 1, w,
                       e->identity, e->now, e->stored,
                       level_of(ts->conf, e->now), reason ? reason : "-");
        }
        mg_time_format_rfc3339(ts->now_ms, when, sizeof(when));
        printf("%zu of %" PRIu64 " identities with a risk above 0, as of "
               "%s\n",
               ts->cnt, ts->risky, when);
}

static int baseline_top(struct cli_conf *cc, struct mg_store *store,
                        size_t n, int as_json) {
        struct top_state ts;
        char errstr[512];
        int rc = MG_EXIT_FAILURE;
        mg_err_t err;
        size_t i;

        memset(&ts, 0, sizeof(ts));
        ts.conf = &cc->scoring;
        ts.now_ms = mg_time_now_ms();
        ts.cap = n;
        if (!(ts.heap = calloc(n, sizeof(*ts.heap)))) {
                fprintf(stderr, "mintgate baseline top: out of memory\n");
                return MG_EXIT_FAILURE;
        }
        errstr[0] = '\0';
        err = mg_store_redis_scan(store, MG_STORE_SCAN_RISK, top_item_cb, &ts,
                                  errstr, sizeof(errstr));
        if (err) {
                fprintf(stderr, "mintgate baseline top: %s\n",
                        errstr[0] ? errstr : mg_err_str(err));
                goto out;
        }
        qsort(ts.heap, ts.cnt, sizeof(*ts.heap), cmp_rank);
        if (as_json) {
                rc = top_print_json(&ts);
        } else {
                top_print_human(&ts);
                rc = MG_EXIT_OK;
        }
out:
        for (i = 0; i < ts.cnt; i++)
                top_entry_free(&ts.heap[i]);
        free(ts.heap);
        return rc;
}

/*
 * reset
 */

static int baseline_reset(struct cli_conf *cc, struct mg_store *store,
                          const char *identity) {
        struct mg_store_reset_result res;
        char errstr[512];
        mg_err_t err;

        err = mg_store_redis_reset(store, identity, mg_time_now_ms(), &res,
                                   errstr, sizeof(errstr));
        if (err) {
                fprintf(stderr, "mintgate baseline reset: %s\n", errstr);
                return MG_EXIT_FAILURE;
        }
        printf("identity  %s\n", identity);
        printf("baseline  %s; generation now %" PRIu64
               " (running scorers reload it)\n",
               res.had_baseline ? "deleted" : "was already empty", res.gen);
        printf("offsets   %d kept (events already applied are not counted "
               "again)\n",
               res.offsets_kept);
        if (!res.had_risk)
                printf("risk      none stored");
        else if (res.old_risk >= 0)
                printf("risk      %.1f deleted", res.old_risk);
        else
                printf("risk      unreadable record deleted");
        printf("; risk 0 (low) published on %s to %" PRId64
               " subscriber(s)\n",
               cc->redis.risk_channel, res.receivers);
        return MG_EXIT_OK;
}

/*
 * export
 */

struct export_state {
        const struct mg_scoring_conf *conf; /* for the summary */
        int64_t now_ms;     /* the summary's "now" */
        FILE *out;          /* where lines go */
        const char *path;   /* its name, for errors */
        uint64_t written;   /* lines */
        uint64_t failed;    /* identities that could not be exported */
        unsigned char blob[MG_BASELINE_BLOB_MAX]; /* scratch */
        char b64[B64_BLOB_MAX];                   /* scratch */
};

/* The export line of rec, or NULL (out of memory, or the identity is not
 * UTF-8 and cannot be a JSON string). */
static json_t *export_line(struct export_state *es,
                           const struct mg_store_rec *rec) {
        json_t *line = json_object(), *offsets = json_object(), *summary;
        char field[96], *text;
        size_t len;
        int i, ok = line && offsets;

        for (i = 0; ok && i < rec->origin_cnt; i++) {
                snprintf(field, sizeof(field), "%s:%" PRId32,
                         rec->origins[i].topic, rec->origins[i].partition);
                ok = !json_object_set_new(
                        offsets, field,
                        json_integer(rec->origins[i].offset));
        }
        ok = ok && !mg_baseline_encode(rec->bl, es->blob, sizeof(es->blob),
                                       &len);
        if (ok)
                b64_encode(es->blob, len, es->b64);
        text = ok ? mg_baseline_to_json(rec->bl, es->conf, es->now_ms)
                  : NULL;
        summary = text ? json_loads(text, 0, NULL) : NULL;
        free(text);
        ok = ok && summary &&
             !json_object_set_new(line, "identity",
                                  json_string(rec->identity)) &&
             !json_object_set_new(line, "generation",
                                  json_integer((json_int_t)rec->gen)) &&
             !json_object_set(line, "offsets", offsets) &&
             !json_object_set_new(line, "baseline", json_string(es->b64)) &&
             !json_object_set(line, "summary", summary);
        json_decref(offsets);
        json_decref(summary);
        if (!ok) {
                json_decref(line);
                return NULL;
        }
        return line;
}

static mg_err_t export_item_cb(void *opaque,
                               const struct mg_store_item *item) {
        struct export_state *es = opaque;
        json_t *line;

        if (item->error) {
                fprintf(stderr, "mintgate baseline export: %s\n",
                        item->error);
                es->failed++;
                return MG_OK;
        }
        if (!(line = export_line(es, item->rec))) {
                fprintf(stderr,
                        "mintgate baseline export: %s: cannot build its "
                        "line (identity not UTF-8, or out of memory)\n",
                        item->identity);
                es->failed++;
                return MG_OK;
        }
        if (json_dumpf(line, es->out, JSON_COMPACT | JSON_PRESERVE_ORDER) ||
            fputc('\n', es->out) == EOF) {
                json_decref(line);
                fprintf(stderr, "mintgate baseline export: writing %s: %s\n",
                        es->path, strerror(errno));
                return MG_ERR_IO;
        }
        json_decref(line);
        es->written++;
        return MG_OK;
}

static int baseline_export(struct cli_conf *cc, struct mg_store *store,
                           const char *path, const char *const *ids,
                           size_t id_cnt) {
        struct export_state *es = calloc(1, sizeof(*es));
        char errstr[512];
        int rc = MG_EXIT_FAILURE;
        mg_err_t err;

        if (!es) {
                fprintf(stderr, "mintgate baseline export: out of memory\n");
                return MG_EXIT_FAILURE;
        }
        es->conf = &cc->scoring;
        es->now_ms = mg_time_now_ms();
        es->out = stdout;
        es->path = path && strcmp(path, "-") ? path : "stdout";
        if (path && strcmp(path, "-") && !(es->out = fopen(path, "w"))) {
                fprintf(stderr, "mintgate baseline export: %s: %s\n", path,
                        strerror(errno));
                goto out;
        }
        errstr[0] = '\0';
        if (id_cnt)
                err = mg_store_redis_fetch(store, ids, id_cnt, export_item_cb,
                                           es, errstr, sizeof(errstr));
        else
                err = mg_store_redis_scan(store, MG_STORE_SCAN_BASELINE,
                                          export_item_cb, es, errstr,
                                          sizeof(errstr));
        if (err) {
                /* A callback's failure was reported by the callback. */
                if (errstr[0])
                        fprintf(stderr, "mintgate baseline export: %s\n",
                                errstr);
                goto out;
        }
        if (fflush(es->out) || ferror(es->out)) {
                fprintf(stderr, "mintgate baseline export: writing %s: %s\n",
                        es->path, strerror(errno));
                goto out;
        }
        fprintf(stderr,
                "mintgate baseline export: %" PRIu64
                " identities written to %s",
                es->written, es->path);
        if (es->failed)
                fprintf(stderr, ", %" PRIu64 " could not be exported",
                        es->failed);
        fprintf(stderr, "\n");
        rc = es->failed ? MG_EXIT_FAILURE : MG_EXIT_OK;
out:
        if (es->out && es->out != stdout && fclose(es->out) &&
            rc == MG_EXIT_OK) {
                fprintf(stderr, "mintgate baseline export: closing %s: %s\n",
                        es->path, strerror(errno));
                rc = MG_EXIT_FAILURE;
        }
        free(es);
        return rc;
}

/*
 * import
 */

struct import_state {
        const struct mg_scoring_conf *conf; /* for the risk */
        struct mg_store *store;  /* where records go */
        int with_offsets;        /* --with-offsets */
        int64_t now_ms;          /* "updated" of the risk records */
        struct mg_store_rec *recs[IMPORT_BATCH]; /* the pending batch */
        size_t cnt;              /* records in it */
        uint64_t imported;       /* identities written */
        uint64_t bad;            /* lines rejected */
        unsigned char blob[MG_BASELINE_BLOB_MAX]; /* scratch */
};

/* Parse the "offsets" object of a line into rec. */
static mg_err_t import_offsets(json_t *offsets, struct mg_store_rec *rec,
                               char *errstr, size_t errstr_size) {
        const char *field;
        json_t *v;

        rec->origin_cnt = 0;
        if (!json_is_object(offsets))
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "\"offsets\" is not an object");
        json_object_foreach(offsets, field, v) {
                const char *colon = strrchr(field, ':');
                struct mg_store_origin *o;
                char topic[64], *end;
                long long part;

                if (!colon || colon == field ||
                    (size_t)(colon - field) >= sizeof(topic))
                        return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                          "offsets: \"%.80s\" is not "
                                          "topic:partition (topic 1..%zu "
                                          "bytes)",
                                          field, sizeof(topic) - 1);
                errno = 0;
                part = strtoll(colon + 1, &end, 10);
                if (!colon[1] || *end || errno || part < 0 ||
                    part > INT32_MAX)
                        return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                          "offsets: \"%.80s\": bad partition",
                                          field);
                if (!json_is_integer(v) || json_integer_value(v) < 0)
                        return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                          "offsets: \"%.80s\": the offset "
                                          "must be an integer >= 0",
                                          field);
                memcpy(topic, field, (size_t)(colon - field));
                topic[colon - field] = '\0';
                if (rec->origin_cnt == MG_STORE_ORIGINS_MAX)
                        return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                          "more than %d offsets",
                                          MG_STORE_ORIGINS_MAX);
                o = mg_store_rec_origin(rec, topic, (int32_t)part);
                if (!o)
                        return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                          "offsets: \"%.80s\" unusable",
                                          field);
                o->offset = json_integer_value(v);
        }
        return MG_OK;
}

/* Parse one line into rec (identity, baseline, offsets, risk JSON). */
static mg_err_t import_parse(struct import_state *is, const char *line,
                             size_t len, struct mg_store_rec *rec,
                             char *errstr, size_t errstr_size) {
        json_error_t jerr;
        json_t *root, *id, *b64, *offsets;
        struct mg_risk risk;
        char derr[256];
        size_t blen = 0;
        mg_err_t err = MG_OK;

        root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!root)
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "not JSON: %s (column %d)", jerr.text,
                                  jerr.column);
        id = json_object_get(root, "identity");
        b64 = json_object_get(root, "baseline");
        offsets = json_object_get(root, "offsets");
        if (!json_is_object(root)) {
                err = mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                 "not a JSON object");
                goto out;
        }
        if (!json_is_string(id) || json_string_length(id) == 0 ||
            json_string_length(id) > MG_EVENT_IDENTITY_MAX ||
            strlen(json_string_value(id)) != json_string_length(id)) {
                err = mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                 "\"identity\" must be a string of 1..%d "
                                 "bytes",
                                 MG_EVENT_IDENTITY_MAX);
                goto out;
        }
        snprintf(rec->identity, sizeof(rec->identity), "%s",
                 json_string_value(id));
        if (!json_is_string(b64)) {
                err = mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                 "%s: \"baseline\" (base64 string) missing",
                                 rec->identity);
                goto out;
        }
        if (b64_decode(json_string_value(b64), json_string_length(b64),
                       is->blob, sizeof(is->blob), &blen, derr,
                       sizeof(derr)) ||
            mg_baseline_decode(rec->bl, is->blob, blen, derr, sizeof(derr))) {
                err = mg_err_set(MG_ERR_DECODE, errstr, errstr_size,
                                 "%s: baseline: %s", rec->identity, derr);
                goto out;
        }
        rec->origin_cnt = 0;
        if (offsets && (err = import_offsets(offsets, rec, derr,
                                             sizeof(derr)))) {
                err = mg_err_set(err, errstr, errstr_size, "%s: %s",
                                 rec->identity, derr);
                goto out;
        }
        if (!offsets && is->with_offsets) {
                err = mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                 "%s: --with-offsets, but the line has no "
                                 "\"offsets\"",
                                 rec->identity);
                goto out;
        }
        /* The risk as the scorer stores it: at the newest event time. */
        mg_baseline_risk(rec->bl, is->conf, 0, &risk);
        free(rec->risk_json);
        if (!(rec->risk_json = mg_store_risk_json(rec->identity, &risk,
                                                  is->now_ms)))
                err = mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                 "out of memory");
out:
        json_decref(root);
        return err;
}

/* Write the pending batch. */
static mg_err_t import_flush(struct import_state *is) {
        char errstr[512];
        mg_err_t err;

        if (is->cnt == 0)
                return MG_OK;
        err = mg_store_redis_put(is->store, is->recs, is->cnt,
                                 is->with_offsets, errstr, sizeof(errstr));
        if (err) {
                fprintf(stderr, "mintgate baseline import: %s\n", errstr);
                return err;
        }
        is->imported += is->cnt;
        is->cnt = 0;
        return MG_OK;
}

static int baseline_import(struct cli_conf *cc, struct mg_store *store,
                           const char *path, int with_offsets) {
        struct import_state *is = calloc(1, sizeof(*is));
        const char *name = path && strcmp(path, "-") ? path : "stdin";
        FILE *in = stdin;
        char *line, errstr[MG_EVENT_IDENTITY_MAX + 512];
        struct mg_lines ln;
        size_t len, i;
        int rc = MG_EXIT_FAILURE;
        mg_err_t err;

        if (!is) {
                fprintf(stderr, "mintgate baseline import: out of memory\n");
                return MG_EXIT_FAILURE;
        }
        is->conf = &cc->scoring;
        is->store = store;
        is->with_offsets = with_offsets;
        is->now_ms = mg_time_now_ms();
        for (i = 0; i < IMPORT_BATCH; i++)
                if (!(is->recs[i] = mg_store_rec_new(""))) {
                        fprintf(stderr,
                                "mintgate baseline import: out of memory\n");
                        goto out;
                }
        if (path && strcmp(path, "-") && !(in = fopen(path, "r"))) {
                fprintf(stderr, "mintgate baseline import: %s: %s\n", path,
                        strerror(errno));
                goto out;
        }
        mg_lines_init(&ln, in, IMPORT_LINE_MAX);
        while ((err = mg_lines_next(&ln, &line, &len)) != MG_ERR_NOT_FOUND &&
               err != MG_ERR_IO) {
                if (err == MG_ERR_TOOBIG) {
                        fprintf(stderr,
                                "mintgate baseline import: %s line %zu: "
                                "%zu bytes, the limit is %d\n",
                                name, ln.lineno, len, IMPORT_LINE_MAX);
                        is->bad++;
                        continue;
                }
                if (import_parse(is, line, len, is->recs[is->cnt], errstr,
                                 sizeof(errstr))) {
                        fprintf(stderr,
                                "mintgate baseline import: %s line %zu: %s\n",
                                name, ln.lineno, errstr);
                        is->bad++;
                        continue;
                }
                if (++is->cnt == IMPORT_BATCH && import_flush(is)) {
                        err = MG_ERR_REDIS; /* import_flush said why */
                        break;
                }
        }
        mg_lines_free(&ln);
        if (err == MG_ERR_IO)
                fprintf(stderr, "mintgate baseline import: reading %s: %s\n",
                        name, strerror(errno));
        if (err != MG_ERR_NOT_FOUND)
                goto out;
        if (import_flush(is))
                goto out;
        fprintf(stderr,
                "mintgate baseline import: %" PRIu64
                " identities imported from %s (offsets %s)",
                is->imported, name,
                with_offsets ? "restored" : "of the target kept");
        if (is->bad)
                fprintf(stderr, ", %" PRIu64 " bad lines skipped", is->bad);
        fprintf(stderr, "\n");
        rc = is->bad ? MG_EXIT_FAILURE : MG_EXIT_OK;
out:
        if (in != stdin)
                fclose(in);
        for (i = 0; i < IMPORT_BATCH; i++)
                mg_store_rec_destroy(is->recs[i]);
        free(is);
        return rc;
}

/*
 * Command line.
 */

static int check_identity(const char *identity) {
        if (!*identity || strlen(identity) > MG_EVENT_IDENTITY_MAX) {
                fprintf(stderr,
                        "mintgate baseline: identity must be 1..%d bytes\n",
                        MG_EVENT_IDENTITY_MAX);
                return -1;
        }
        return 0;
}

/* A flag given to a verb it does not apply to. */
static int flag_misplaced(const char *flag, enum baseline_verb verb) {
        fprintf(stderr, "mintgate baseline: %s does not apply to %s\n", flag,
                verb_names[verb]);
        return MG_EXIT_USAGE;
}

int cmd_baseline_main(int argc, char **argv) {
        static const struct option longopts[] = {
                CLI_COMMON_LONGOPTS,
                {"json", no_argument, NULL, 'J'},
                {"count", required_argument, NULL, 'n'},
                {"output", required_argument, NULL, 'o'},
                {"with-offsets", no_argument, NULL, 'W'},
                {NULL, 0, NULL, 0}};
        struct cli_common common;
        struct cli_conf cc;
        struct mg_store store = {NULL, NULL};
        enum baseline_verb verb;
        const char *output = NULL;
        char errstr[512], *end;
        int c, r, rc = MG_EXIT_FAILURE, as_json = 0, with_offsets = 0;
        int operands, i;
        long long count = -1;
        mg_err_t err;

        memset(&common, 0, sizeof(common));
        while ((c = getopt_long(argc, argv, "c:b:hn:o:", longopts, NULL)) !=
               -1) {
                if ((r = cli_common_opt(&common, c, optarg)) < 0)
                        return MG_EXIT_USAGE;
                if (r)
                        continue;
                switch (c) {
                case 'h':
                        baseline_usage(stdout);
                        return MG_EXIT_OK;
                case 'J':
                        as_json = 1;
                        break;
                case 'n':
                        errno = 0;
                        count = strtoll(optarg, &end, 10);
                        if (!*optarg || *end || errno || count < 1 ||
                            count > TOP_MAX) {
                                fprintf(stderr,
                                        "mintgate baseline: -n %s: expected "
                                        "a whole number from 1 to %d\n",
                                        optarg, TOP_MAX);
                                return MG_EXIT_USAGE;
                        }
                        break;
                case 'o':
                        if (!*optarg) {
                                fprintf(stderr, "mintgate baseline: -o: "
                                                "empty file name\n");
                                return MG_EXIT_USAGE;
                        }
                        output = optarg;
                        break;
                case 'W':
                        with_offsets = 1;
                        break;
                default:
                        baseline_usage(stderr);
                        return MG_EXIT_USAGE;
                }
        }
        if (optind >= argc) {
                baseline_usage(stderr);
                return MG_EXIT_USAGE;
        }
        for (i = 0; i < (int)(sizeof(verb_names) / sizeof(*verb_names)); i++)
                if (!strcmp(argv[optind], verb_names[i]))
                        break;
        if (i == (int)(sizeof(verb_names) / sizeof(*verb_names))) {
                fprintf(stderr,
                        "mintgate baseline: unknown verb '%s' (show, top, "
                        "reset, export or import)\n",
                        argv[optind]);
                return MG_EXIT_USAGE;
        }
        verb = (enum baseline_verb)i;
        operands = argc - optind - 1;
        if (as_json && verb != VERB_SHOW && verb != VERB_TOP)
                return flag_misplaced("--json", verb);
        if (count >= 0 && verb != VERB_TOP)
                return flag_misplaced("-n/--count", verb);
        if (output && verb != VERB_EXPORT)
                return flag_misplaced("-o/--output", verb);
        if (with_offsets && verb != VERB_IMPORT)
                return flag_misplaced("--with-offsets", verb);
        if (((verb == VERB_SHOW || verb == VERB_RESET) && operands != 1) ||
            (verb == VERB_TOP && operands != 0) ||
            (verb == VERB_IMPORT && operands > 1)) {
                fprintf(stderr,
                        "mintgate baseline %s: %s\n", verb_names[verb],
                        verb == VERB_TOP      ? "takes no identity"
                        : verb == VERB_IMPORT ? "takes at most one FILE"
                                              : "needs exactly one IDENTITY");
                return MG_EXIT_USAGE;
        }
        if (verb != VERB_IMPORT)
                for (i = optind + 1; i < argc; i++)
                        if (check_identity(argv[i]))
                                return MG_EXIT_USAGE;
        if ((r = cli_conf_load(&cc, &common, "baseline")))
                return r;
        if (verb == VERB_SHOW) {
                rc = baseline_show(&cc, argv[optind + 1], as_json);
                goto out;
        }
        if ((err = mg_store_redis_new(&cc.redis, &store, errstr,
                                      sizeof(errstr)))) {
                fprintf(stderr, "mintgate baseline: %s\n", errstr);
                rc = err == MG_ERR_CONFIG ? MG_EXIT_USAGE : MG_EXIT_FAILURE;
                goto out;
        }
        switch (verb) {
        case VERB_TOP:
                rc = baseline_top(&cc, &store,
                                  count > 0 ? (size_t)count : TOP_DEFAULT,
                                  as_json);
                break;
        case VERB_RESET:
                rc = baseline_reset(&cc, &store, argv[optind + 1]);
                break;
        case VERB_EXPORT:
                rc = baseline_export(&cc, &store, output,
                                     (const char *const *)argv + optind + 1,
                                     (size_t)operands);
                break;
        case VERB_IMPORT:
                rc = baseline_import(&cc, &store,
                                     operands ? argv[optind + 1] : NULL,
                                     with_offsets);
                break;
        case VERB_SHOW:
                break;
        }
out:
        mg_store_destroy(&store);
        cli_conf_free(&cc);
        return rc;
}
