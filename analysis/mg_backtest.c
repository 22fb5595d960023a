/*
 * mg_backtest.c — detection quality of a replay (definitions in
 * mg_backtest.h).
 *
 * Per identity the backtest keeps its attack labels (found once, by binary
 * search in the labels sorted by identity) and one sample per active hour
 * (the highest risk of the hour): about 8 bytes per identity-hour, so a
 * week of 100,000 identities is tens of megabytes. Everything else is
 * counters. The evaluation runs once, at the end, over the hour samples.
 */
#include "mg_backtest.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mg_lines.h"
#include "mg_metrics.h"
#include "mg_report.h"

#define HOUR_MS (3600LL * 1000)
/* Attack types one labels file may name. */
#define BT_TYPES_MAX 32
/* Riskiest identities drawn in the report. */
#define BT_TIMELINES 12
/* Decision-mix buckets drawn at most (hours are merged beyond). */
#define BT_BUCKETS_MAX 240

struct bt_label {
        char *identity;         /* owned */
        int type;               /* index in bt->types */
        int64_t start_ms, end_ms;
        int64_t detect_ms;      /* first non-allow decision, -1: none */
};

struct bt_hour {
        int64_t hour;           /* epoch ms / 1 h */
        float risk;             /* highest risk in the hour */
};

struct bt_ident {
        char *identity;               /* owned */
        struct bt_label **labels;     /* into bt->labels, owned array */
        int label_cnt;
        struct bt_hour *hours;        /* active hours, in time order */
        size_t nhours, hours_cap;
        float max_risk;               /* over every hour */
};

struct mg_backtest {
        struct bt_label *labels;      /* sorted by identity */
        size_t label_cnt;
        char types[BT_TYPES_MAX][48]; /* attack types, first-seen order */
        int type_cnt;
        struct bt_ident **idents;     /* every identity seen */
        size_t nidents, idents_cap;
        uint64_t (*mix)[MG_DECISION__CNT]; /* issuances per hour */
        size_t nmix, mix_cap;             /* hours in use, allocated */
        int64_t first_hour;           /* hour of the first event */
        struct mg_backtest_result res;
        double *benign_scores, *attack_scores; /* hour samples, for the
                                                * report */
        size_t benign_cnt, attack_cnt;
};

static int grow(void **p, size_t *cap, size_t need, size_t size) {
        size_t n = *cap ? *cap : 16;
        void *q;

        if (need <= *cap)
                return 0;
        while (n < need)
                n *= 2;
        if (!(q = realloc(*p, n * size)))
                return -1;
        *p = q;
        *cap = n;
        return 0;
}

/* ---- labels ------------------------------------------------------------ */

static mg_err_t label_time(json_t *v, const char *name, int64_t *ms,
                           char *errstr, size_t errstr_size) {
        if (json_is_integer(v)) {
                *ms = json_integer_value(v);
                return MG_OK;
        }
        if (json_is_string(v) &&
            mg_time_parse_rfc3339(json_string_value(v),
                                  json_string_length(v), ms) == MG_OK)
                return MG_OK;
        return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                          "field '%s' must be an RFC 3339 time or epoch "
                          "milliseconds",
                          name);
}

static int bt_type(struct mg_backtest *bt, const char *name) {
        int i;

        for (i = 0; i < bt->type_cnt; i++)
                if (!strcmp(bt->types[i], name))
                        return i;
        if (bt->type_cnt == BT_TYPES_MAX || strlen(name) >= sizeof(*bt->types))
                return -1;
        snprintf(bt->types[bt->type_cnt], sizeof(*bt->types), "%s", name);
        return bt->type_cnt++;
}

/* Parse one labels line into lab. */
static mg_err_t label_parse(struct mg_backtest *bt, const char *line,
                            struct bt_label *lab, char *errstr,
                            size_t errstr_size) {
        json_error_t jerr;
        json_t *doc = json_loads(line, JSON_REJECT_DUPLICATES, &jerr);
        json_t *identity, *attack;
        mg_err_t err = MG_OK;

        if (!doc || !json_is_object(doc)) {
                err = mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                 "not a JSON object: %s",
                                 doc ? "another JSON value" : jerr.text);
                goto out;
        }
        identity = json_object_get(doc, "identity");
        attack = json_object_get(doc, "attack");
        if (!json_is_string(identity) || !json_string_length(identity) ||
            !json_is_string(attack) || !json_string_length(attack)) {
                err = mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                 "fields 'identity' and 'attack' must be "
                                 "non-empty strings");
                goto out;
        }
        if ((err = label_time(json_object_get(doc, "start"), "start",
                              &lab->start_ms, errstr, errstr_size)) ||
            (err = label_time(json_object_get(doc, "end"), "end",
                              &lab->end_ms, errstr, errstr_size)))
                goto out;
        if (lab->end_ms < lab->start_ms) {
                err = mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                 "'end' is before 'start'");
                goto out;
        }
        if ((lab->type = bt_type(bt, json_string_value(attack))) < 0) {
                err = mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                 "attack type '%s': more than %d types or "
                                 "a name over 47 bytes",
                                 json_string_value(attack), BT_TYPES_MAX);
                goto out;
        }
        lab->detect_ms = -1;
        if (!(lab->identity = strdup(json_string_value(identity))))
                err = mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                 "out of memory");
out:
        json_decref(doc);
        return err;
}

static int label_cmp(const void *a, const void *b) {
        const struct bt_label *x = a, *y = b;
        int c = strcmp(x->identity, y->identity);

        if (c)
                return c;
        return x->start_ms < y->start_ms ? -1 : x->start_ms > y->start_ms;
}

/* A labels line is a short JSON object: anything longer is a wrong file. */
#define BT_LABEL_LINE_MAX 4096

static mg_err_t labels_read(struct mg_backtest *bt, FILE *fp,
                            const char *name, char *errstr,
                            size_t errstr_size) {
        char *line, lerr[512];
        struct mg_lines ln;
        size_t lcap = 0, len;
        mg_err_t err;

        mg_lines_init(&ln, fp, BT_LABEL_LINE_MAX);
        while ((err = mg_lines_next(&ln, &line, &len)) == MG_OK ||
               err == MG_ERR_TOOBIG) {
                if (err == MG_ERR_TOOBIG) {
                        mg_err_set(err, errstr, errstr_size,
                                   "%s:%zu: line of %zu bytes is over the "
                                   "%d-byte limit",
                                   name, ln.lineno, len, BT_LABEL_LINE_MAX);
                        goto out;
                }
                if (grow((void **)&bt->labels, &lcap, bt->label_cnt + 1,
                         sizeof(*bt->labels))) {
                        err = mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                         "out of memory");
                        goto out;
                }
                if ((err = label_parse(bt, line, &bt->labels[bt->label_cnt],
                                       lerr, sizeof(lerr)))) {
                        mg_err_set(err, errstr, errstr_size, "%s:%zu: %s",
                                   name, ln.lineno, lerr);
                        goto out;
                }
                bt->label_cnt++;
        }
        if (err == MG_ERR_IO) {
                mg_err_set(err, errstr, errstr_size, "reading labels %s: %m",
                           name);
                goto out;
        }
        err = MG_OK;
        if (bt->label_cnt) /* labels is NULL when there are none */
                qsort(bt->labels, bt->label_cnt, sizeof(*bt->labels),
                      label_cmp);
out:
        mg_lines_free(&ln);
        return err;
}

mg_err_t mg_backtest_new_stream(FILE *labels, const char *name,
                                struct mg_backtest **btp, char *errstr,
                                size_t errstr_size) {
        struct mg_backtest *bt = calloc(1, sizeof(*bt));
        mg_err_t err;

        *btp = NULL;
        if (!bt)
                return mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                  "out of memory");
        bt->first_hour = -1;
        if (labels &&
            (err = labels_read(bt, labels, name, errstr, errstr_size))) {
                mg_backtest_destroy(bt);
                return err;
        }
        *btp = bt;
        return MG_OK;
}

mg_err_t mg_backtest_new(const char *labels_path, struct mg_backtest **btp,
                         char *errstr, size_t errstr_size) {
        FILE *fp = NULL;
        mg_err_t err;

        if (labels_path && !(fp = fopen(labels_path, "r"))) {
                *btp = NULL;
                return mg_err_set(MG_ERR_IO, errstr, errstr_size,
                                  "cannot open labels %s: %m", labels_path);
        }
        err = mg_backtest_new_stream(fp, labels_path, btp, errstr,
                                     errstr_size);
        if (fp)
                fclose(fp);
        return err;
}

void mg_backtest_destroy(struct mg_backtest *bt) {
        size_t i;

        if (!bt)
                return;
        for (i = 0; i < bt->label_cnt; i++)
                free(bt->labels[i].identity);
        free(bt->labels);
        for (i = 0; i < bt->nidents; i++) {
                free(bt->idents[i]->identity);
                free(bt->idents[i]->labels);
                free(bt->idents[i]->hours);
                free(bt->idents[i]);
        }
        free(bt->idents);
        free(bt->mix);
        free(bt->res.rows);
        free(bt->benign_scores);
        free(bt->attack_scores);
        free(bt);
}

/* ---- observing --------------------------------------------------------- */

static struct bt_ident *ident_new(struct mg_backtest *bt,
                                  const char *identity) {
        struct bt_ident *id = calloc(1, sizeof(*id));
        size_t lo = 0, hi = bt->label_cnt;

        if (!id || !(id->identity = strdup(identity)) ||
            grow((void **)&bt->idents, &bt->idents_cap, bt->nidents + 1,
                 sizeof(*bt->idents)))
                goto fail;
        /* The first label of the identity, then the run of its labels. */
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (strcmp(bt->labels[mid].identity, identity) < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        for (hi = lo; hi < bt->label_cnt &&
                      !strcmp(bt->labels[hi].identity, identity);
             hi++)
                ;
        if (hi > lo) {
                size_t i;

                if (!(id->labels = malloc((hi - lo) * sizeof(*id->labels))))
                        goto fail;
                for (i = lo; i < hi; i++)
                        id->labels[id->label_cnt++] = &bt->labels[i];
        }
        bt->idents[bt->nidents++] = id;
        return id;
fail:
        if (id)
                free(id->identity);
        free(id);
        return NULL;
}

/* The label whose window holds ts, or NULL; *after is set when ts is in
 * the aftermath of one. */
static struct bt_label *ident_label_at(const struct bt_ident *id, int64_t ts,
                                       int *after) {
        int i;

        *after = 0;
        for (i = 0; i < id->label_cnt; i++) {
                struct bt_label *lab = id->labels[i];

                if (ts >= lab->start_ms && ts <= lab->end_ms)
                        return lab;
                if (ts > lab->end_ms &&
                    ts <= lab->end_ms + MG_BACKTEST_AFTERMATH_MS)
                        *after = 1;
        }
        return NULL;
}

static int ident_sample(struct bt_ident *id, int64_t ts, double risk) {
        int64_t hour = ts / HOUR_MS;
        struct bt_hour *h = id->nhours ? &id->hours[id->nhours - 1] : NULL;

        if (h && h->hour >= hour) { /* late events land in the newest hour */
                if (risk > h->risk)
                        h->risk = (float)risk;
        } else {
                if (grow((void **)&id->hours, &id->hours_cap, id->nhours + 1,
                         sizeof(*id->hours)))
                        return -1;
                id->hours[id->nhours].hour = hour;
                id->hours[id->nhours++].risk = (float)risk;
        }
        if (risk > id->max_risk)
                id->max_risk = (float)risk;
        return 0;
}

static int mix_count(struct mg_backtest *bt, int64_t ts,
                     enum mg_outcome outcome) {
        int64_t b = ts / HOUR_MS - bt->first_hour;
        size_t cap = bt->mix_cap;

        if (b < 0)
                b = 0;
        if ((size_t)b >= bt->nmix) {
                if (grow((void **)&bt->mix, &cap, (size_t)b + 1,
                         sizeof(*bt->mix)))
                        return -1;
                memset(bt->mix + bt->nmix, 0,
                       ((size_t)b + 1 - bt->nmix) * sizeof(*bt->mix));
                bt->mix_cap = cap;
                bt->nmix = (size_t)b + 1;
        }
        bt->mix[b][outcome]++;
        return 0;
}

mg_err_t mg_backtest_observe(struct mg_backtest *bt,
                             const struct mg_event *ev,
                             const struct mg_replay_step *step, char *errstr,
                             size_t errstr_size) {
        struct bt_ident *id = *step->user;
        int s;

        if (!id) {
                if (!(id = ident_new(bt, ev->identity)))
                        goto nomem;
                *step->user = id;
        }
        if (bt->first_hour < 0) {
                bt->first_hour = ev->ts_ms / HOUR_MS;
                bt->res.start_ms = ev->ts_ms;
        }
        if (ev->ts_ms > bt->res.end_ms)
                bt->res.end_ms = ev->ts_ms;
        bt->res.events++;
        if (step->res.applied) {
                if (ident_sample(id, ev->ts_ms, step->res.risk.score))
                        goto nomem;
                for (s = 0; s < MG_SIG__CNT; s++) {
                        if (!(step->res.fired & (1u << s)))
                                continue;
                        bt->res.sig_fires[s]++;
                        bt->res.sig_points[s] += step->res.points[s];
                }
        }
        if (step->decided) {
                enum mg_outcome o = step->decision.outcome;
                struct bt_label *lab;
                int after;

                bt->res.decisions[o]++;
                if (mix_count(bt, ev->ts_ms, o))
                        goto nomem;
                lab = ident_label_at(id, ev->ts_ms, &after);
                if (lab) {
                        if (o != MG_DECISION_ALLOW && lab->detect_ms < 0)
                                lab->detect_ms = ev->ts_ms;
                } else if (!after) {
                        bt->res.benign[o]++;
                }
        }
        return MG_OK;
nomem:
        return mg_err_set(MG_ERR_NOMEM, errstr, errstr_size, "out of memory");
}

/* ---- evaluation -------------------------------------------------------- */

/* Class of one identity-hour: the attack type it belongs to, -1 benign,
 * -2 left out (aftermath). */
static int hour_class(const struct bt_ident *id, int64_t hour) {
        int64_t h0 = hour * HOUR_MS, h1 = h0 + HOUR_MS;
        int i, cls = -1;

        for (i = 0; i < id->label_cnt; i++) {
                const struct bt_label *lab = id->labels[i];

                if (lab->start_ms < h1 && lab->end_ms >= h0)
                        return lab->type;
                if (h0 > lab->end_ms &&
                    h0 <= lab->end_ms + MG_BACKTEST_AFTERMATH_MS)
                        cls = -2;
        }
        return cls;
}

/* One row: positives of type (or of every type when type < 0) against
 * every negative. */
static mg_err_t bt_row(struct mg_backtest *bt, int type,
                       struct mg_backtest_row *row, double *scores,
                       unsigned char *labs, char *errstr,
                       size_t errstr_size) {
        double *ttd = NULL;
        size_t i, j, n = 0, nttd = 0;

        snprintf(row->name, sizeof(row->name), "%s",
                 type < 0 ? "overall" : bt->types[type]);
        for (i = 0; i < bt->nidents; i++) {
                const struct bt_ident *id = bt->idents[i];

                for (j = 0; j < id->nhours; j++) {
                        int cls = hour_class(id, id->hours[j].hour);

                        if (cls == -2 || (cls >= 0 && type >= 0 &&
                                          cls != type))
                                continue;
                        scores[n] = id->hours[j].risk;
                        labs[n++] = cls >= 0;
                        if (cls >= 0)
                                row->positives++;
                        else
                                row->negatives++;
                }
        }
        row->auc = mg_metrics_auc(scores, labs, n);
        row->tpr = mg_metrics_tpr_at_fpr(scores, labs, n, MG_BACKTEST_FPR,
                                         &row->threshold);
        if (bt->label_cnt &&
            !(ttd = malloc(bt->label_cnt * sizeof(*ttd))))
                return mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                  "out of memory");
        for (i = 0; i < bt->label_cnt; i++) {
                const struct bt_label *lab = &bt->labels[i];

                if (type >= 0 && lab->type != type)
                        continue;
                row->attacks++;
                if (lab->detect_ms >= 0) {
                        row->detected++;
                        ttd[nttd++] = (double)(lab->detect_ms - lab->start_ms);
                }
        }
        row->median_ttd_ms = mg_metrics_median(ttd, nttd);
        free(ttd);
        return MG_OK;
}

/* Keep the hour samples of both classes for the report's histograms. */
static mg_err_t bt_keep_scores(struct mg_backtest *bt, const double *scores,
                               const unsigned char *labs, size_t n,
                               char *errstr, size_t errstr_size) {
        size_t i;

        bt->benign_scores = malloc((n ? n : 1) * sizeof(double));
        bt->attack_scores = malloc((n ? n : 1) * sizeof(double));
        if (!bt->benign_scores || !bt->attack_scores)
                return mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                  "out of memory");
        for (i = 0; i < n; i++) {
                if (labs[i])
                        bt->attack_scores[bt->attack_cnt++] = scores[i];
                else
                        bt->benign_scores[bt->benign_cnt++] = scores[i];
        }
        return MG_OK;
}

mg_err_t mg_backtest_finish(struct mg_backtest *bt,
                            const struct mg_backtest_result **resp,
                            char *errstr, size_t errstr_size) {
        size_t i, total = 0;
        double *scores = NULL;
        unsigned char *labs = NULL;
        mg_err_t err = MG_OK;
        int t;

        for (i = 0; i < bt->nidents; i++)
                total += bt->idents[i]->nhours;
        bt->res.identities = bt->nidents;
        bt->res.row_cnt = 1 + (size_t)bt->type_cnt;
        bt->res.rows = calloc(bt->res.row_cnt, sizeof(*bt->res.rows));
        scores = malloc((total ? total : 1) * sizeof(*scores));
        labs = malloc(total ? total : 1);
        if (!bt->res.rows || !scores || !labs) {
                err = mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                 "out of memory");
                goto out;
        }
        /* Per type first: the overall row goes last, so its samples are
         * what the scratch arrays hold for the report's histograms. */
        for (t = 0; t < bt->type_cnt && !err; t++)
                err = bt_row(bt, t, &bt->res.rows[t + 1], scores, labs,
                             errstr, errstr_size);
        if (err || (err = bt_row(bt, -1, &bt->res.rows[0], scores, labs,
                                 errstr, errstr_size)))
                goto out;
        if ((err = bt_keep_scores(bt, scores, labs,
                                  bt->res.rows[0].positives +
                                          bt->res.rows[0].negatives,
                                  errstr, errstr_size)))
                goto out;
        *resp = &bt->res;
out:
        free(scores);
        free(labs);
        return err;
}

/* ---- output ------------------------------------------------------------ */

static uint64_t sum(const uint64_t *v) {
        uint64_t n = 0;
        int i;

        for (i = 0; i < MG_DECISION__CNT; i++)
                n += v[i];
        return n;
}

static double share(uint64_t part, uint64_t whole) {
        return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

/* A duration in ms as "4m12s" style text. */
static void fmt_ttd(char *buf, size_t size, double ms) {
        if (isnan(ms))
                snprintf(buf, size, "-");
        else if (ms < 60000)
                snprintf(buf, size, "%.1fs", ms / 1000);
        else if (ms < HOUR_MS)
                snprintf(buf, size, "%dm%02ds", (int)(ms / 60000),
                         (int)fmod(ms / 1000, 60));
        else
                snprintf(buf, size, "%dh%02dm", (int)(ms / HOUR_MS),
                         (int)fmod(ms / 60000, 60));
}

static json_t *json_num(double v) {
        return isnan(v) || isinf(v) ? json_null() : json_real(v);
}

static json_t *json_outcomes(const uint64_t *v) {
        json_t *o = json_object();
        int i;

        for (i = 0; i < MG_DECISION__CNT; i++)
                json_object_set_new(o, mg_outcome_names[i],
                                    json_integer((json_int_t)v[i]));
        return o;
}

static void print_json(FILE *fp, const struct mg_backtest_result *res) {
        json_t *doc = json_object(), *rows = json_array(), *benign, *sigs;
        uint64_t nb = sum(res->benign);
        char *text;
        size_t i;

        json_object_set_new(doc, "events", json_integer((json_int_t)res->events));
        json_object_set_new(doc, "identities",
                            json_integer((json_int_t)res->identities));
        json_object_set_new(doc, "decisions", json_outcomes(res->decisions));
        benign = json_outcomes(res->benign);
        json_object_set_new(
                benign, "hurt_share",
                json_num(nb ? (double)(nb - res->benign[MG_DECISION_ALLOW]) /
                                      (double)nb
                            : NAN));
        json_object_set_new(doc, "benign", benign);
        for (i = 0; i < res->row_cnt; i++) {
                const struct mg_backtest_row *r = &res->rows[i];

                json_array_append_new(
                        rows,
                        json_pack("{s:s, s:I, s:I, s:I, s:I, s:o, s:o, s:o, "
                                  "s:o}",
                                  "type", r->name, "attacks",
                                  (json_int_t)r->attacks, "detected",
                                  (json_int_t)r->detected, "positive_hours",
                                  (json_int_t)r->positives, "negative_hours",
                                  (json_int_t)r->negatives, "auc",
                                  json_num(r->auc), "tpr_at_1pct_fpr",
                                  json_num(r->tpr), "threshold",
                                  json_num(r->threshold), "median_ttd_ms",
                                  json_num(r->median_ttd_ms)));
        }
        json_object_set_new(doc, "detection", rows);
        sigs = json_object();
        for (i = 0; i < MG_SIG__CNT; i++)
                json_object_set_new(
                        sigs, mg_signal_names[i],
                        json_pack("{s:I, s:f}", "fired",
                                  (json_int_t)res->sig_fires[i], "points",
                                  res->sig_points[i]));
        json_object_set_new(doc, "signals", sigs);
        text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER |
                                       JSON_REAL_PRECISION(6));
        if (text)
                fprintf(fp, "%s\n", text);
        free(text);
        json_decref(doc);
}

void mg_backtest_print(FILE *fp, const struct mg_backtest_result *res,
                       int json) {
        uint64_t nd = sum(res->decisions), nb = sum(res->benign);
        int fired = 0;
        size_t i;

        if (json) {
                print_json(fp, res);
                return;
        }
        fprintf(fp,
                "issuances  %" PRIu64 ": allow %" PRIu64 ", narrow %" PRIu64
                ", step_up %" PRIu64 ", deny %" PRIu64 "\n",
                nd, res->decisions[MG_DECISION_ALLOW],
                res->decisions[MG_DECISION_NARROW],
                res->decisions[MG_DECISION_STEP_UP],
                res->decisions[MG_DECISION_DENY]);
        fprintf(fp,
                "benign     %" PRIu64 ": narrowed %.2f%%, stepped up %.2f%%, "
                "denied %.2f%% (not allowed: %.2f%%)\n",
                nb, share(res->benign[MG_DECISION_NARROW], nb),
                share(res->benign[MG_DECISION_STEP_UP], nb),
                share(res->benign[MG_DECISION_DENY], nb),
                share(nb - res->benign[MG_DECISION_ALLOW], nb));
        fprintf(fp, "signals   ");
        for (i = 0; i < MG_SIG__CNT; i++) {
                if (!res->sig_fires[i])
                        continue;
                fprintf(fp, " %s %" PRIu64 " (%.0f pts)", mg_signal_names[i],
                        res->sig_fires[i], res->sig_points[i]);
                fired = 1;
        }
        fprintf(fp, "%s\n", fired ? "" : " none fired");
        if (res->row_cnt < 2)
                return;
        fprintf(fp, "\n%-24s %7s %8s %8s %9s %6s %9s %6s %10s\n",
                "attack type", "attacks", "detected", "hours+", "hours-",
                "AUC", "TPR@1%FPR", "thr", "median TTD");
        for (i = 0; i < res->row_cnt; i++) {
                const struct mg_backtest_row *r = &res->rows[i];
                char ttd[32];

                fmt_ttd(ttd, sizeof(ttd), r->median_ttd_ms);
                fprintf(fp,
                        "%-24s %7zu %8zu %8zu %9zu %6.3f %9.3f %6.1f %10s\n",
                        r->name, r->attacks, r->detected, r->positives,
                        r->negatives, r->auc, r->tpr, r->threshold, ttd);
        }
}

static int ident_risk_cmp(const void *a, const void *b) {
        const struct bt_ident *x = *(const struct bt_ident *const *)a;
        const struct bt_ident *y = *(const struct bt_ident *const *)b;

        if (x->max_risk != y->max_risk)
                return x->max_risk < y->max_risk ? 1 : -1;
        return strcmp(x->identity, y->identity);
}

mg_err_t mg_backtest_report(struct mg_backtest *bt, FILE *fp,
                            const char *subtitle,
                            const struct mg_scoring_conf *scoring,
                            char *errstr, size_t errstr_size) {
        struct mg_report rep = {0};
        struct mg_report_timeline tl[BT_TIMELINES];
        struct mg_report_point *pts[BT_TIMELINES] = {0};
        struct mg_report_row *rows = NULL;
        struct bt_ident **by_risk = NULL;
        uint64_t(*mix)[MG_DECISION__CNT] = NULL;
        size_t i, j, ntl = 0, factor, nbuckets;
        mg_err_t err = MG_OK;

        by_risk = malloc((bt->nidents ? bt->nidents : 1) * sizeof(*by_risk));
        rows = calloc(bt->res.row_cnt ? bt->res.row_cnt : 1, sizeof(*rows));
        factor = bt->nmix / BT_BUCKETS_MAX + 1;
        nbuckets = (bt->nmix + factor - 1) / factor;
        mix = calloc(nbuckets ? nbuckets : 1, sizeof(*mix));
        if (!by_risk || !rows || !mix)
                goto nomem;
        if (bt->nidents) { /* idents is NULL before the first event */
                memcpy(by_risk, bt->idents, bt->nidents * sizeof(*by_risk));
                qsort(by_risk, bt->nidents, sizeof(*by_risk),
                      ident_risk_cmp);
        }
        for (ntl = 0; ntl < BT_TIMELINES && ntl < bt->nidents; ntl++) {
                const struct bt_ident *id = by_risk[ntl];

                if (!(pts[ntl] = malloc((id->nhours ? id->nhours : 1) *
                                        sizeof(**pts))))
                        goto nomem;
                for (j = 0; j < id->nhours; j++) {
                        pts[ntl][j].ts_ms = id->hours[j].hour * HOUR_MS;
                        pts[ntl][j].risk = id->hours[j].risk;
                }
                memset(&tl[ntl], 0, sizeof(tl[ntl]));
                tl[ntl].identity = id->identity;
                if (id->label_cnt) {
                        tl[ntl].attack = bt->types[id->labels[0]->type];
                        tl[ntl].attack_start_ms = id->labels[0]->start_ms;
                        tl[ntl].attack_end_ms = id->labels[0]->end_ms;
                }
                tl[ntl].pts = pts[ntl];
                tl[ntl].cnt = id->nhours;
        }
        for (i = 0; i < bt->nmix; i++)
                for (j = 0; j < MG_DECISION__CNT; j++)
                        mix[i / factor][j] += bt->mix[i][j];
        for (i = 0; i < bt->res.row_cnt; i++) {
                const struct mg_backtest_row *r = &bt->res.rows[i];

                rows[i].name = r->name;
                rows[i].attacks = r->attacks;
                rows[i].positives = r->positives;
                rows[i].negatives = r->negatives;
                rows[i].auc = r->auc;
                rows[i].tpr_at_1fpr = r->tpr;
                rows[i].median_ttd_ms = r->median_ttd_ms;
                rows[i].detected = r->detected;
        }
        rep.title = "mintgate replay";
        rep.subtitle = subtitle;
        rep.start_ms = bt->res.start_ms;
        rep.end_ms = bt->res.end_ms;
        rep.timelines = tl;
        rep.timeline_cnt = ntl;
        rep.benign_scores = bt->benign_scores;
        rep.benign_cnt = bt->benign_cnt;
        rep.attack_scores = bt->attack_scores;
        rep.attack_cnt = bt->attack_cnt;
        rep.bucket_ms = (int64_t)factor * HOUR_MS;
        rep.bucket_cnt = nbuckets;
        rep.decision_mix = (const uint64_t(*)[MG_DECISION__CNT])mix;
        rep.signal_points = bt->res.sig_points;
        rep.signal_fires = bt->res.sig_fires;
        rep.rows = rows;
        rep.row_cnt = bt->res.row_cnt;
        rep.benign_requests = sum(bt->res.benign);
        rep.benign_hurt =
                rep.benign_requests - bt->res.benign[MG_DECISION_ALLOW];
        rep.events = bt->res.events;
        rep.scoring = scoring;
        err = mg_report_write_html(fp, &rep, errstr, errstr_size);
        goto out;
nomem:
        err = mg_err_set(MG_ERR_NOMEM, errstr, errstr_size, "out of memory");
out:
        for (i = 0; i < BT_TIMELINES; i++)
                free(pts[i]);
        free(by_risk);
        free(rows);
        free(mix);
        return err;
}
