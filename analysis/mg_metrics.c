/*
 * mg_metrics.c — ROC AUC, TPR at a false-positive budget, median (see
 * mg_metrics.h for the definitions, which are the contract).
 *
 * Design. AUC and TPR@FPR both copy (score, label) pairs into one array,
 * sort it by score with qsort() and walk it once, one tie group (a run of
 * equal scores) at a time:
 *   - AUC is the Mann-Whitney U statistic over P positives and N
 *     negatives: walking up from the lowest score, each positive of a
 *     group beats every negative below the group and ties with the
 *     negatives inside it, U += pos * (neg_below + neg_in_group / 2), and
 *     AUC = U / (P * N). Counting pairs this way, rather than summing
 *     mid-ranks, keeps every partial sum an exact multiple of one half in
 *     a double up to 2^52 pairs, far beyond any replay.
 *   - TPR@FPR walks down from the highest score: lowering the threshold to
 *     a group takes the whole group in, so tied negatives are all in or all
 *     out, and both rates only grow; the walk stops at the first group
 *     that breaks the budget.
 * The rates are compared as fp / N <= max_fpr: both sides are correctly
 * rounded, so an exact budget (3 of 300 against 0.01) is met.
 *
 * Workload: a few calls per replay over up to millions of samples; the
 * copy costs 16 bytes per sample.
 */
#include "mg_metrics.h"

#include <math.h>
#include <stdlib.h>

/* One sample of the working copy. */
struct mg_metrics_pair {
        double score;           /* never NaN: checked while copying */
        unsigned char positive; /* 1: positive label */
};

/* Ascending by score; ties in any order (every walk groups them). */
static int mg_metrics_pair_cmp(const void *a, const void *b) {
        double x = ((const struct mg_metrics_pair *)a)->score;
        double y = ((const struct mg_metrics_pair *)b)->score;

        return (x > y) - (x < y);
}

/* Ascending, NaNs after every number (a consistent order for qsort()). */
static int mg_metrics_double_cmp(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;

        if (isnan(x) || isnan(y))
                return isnan(x) - isnan(y);
        return (x > y) - (x < y);
}

/* A sorted copy of the samples and their class sizes; NULL when a score is
 * NaN, either class is empty or memory runs out (the caller then answers
 * NAN). The caller frees the copy. */
static struct mg_metrics_pair *mg_metrics_sorted(const double *scores,
                                                 const unsigned char *labels,
                                                 size_t n, size_t *posp,
                                                 size_t *negp) {
        struct mg_metrics_pair *pairs;
        size_t i, pos = 0;

        if (n == 0)
                return NULL;
        for (i = 0; i < n; i++) {
                if (isnan(scores[i]))
                        return NULL;
                pos += labels[i] != 0;
        }
        if (pos == 0 || pos == n)
                return NULL;
        pairs = malloc(n * sizeof(*pairs));
        if (!pairs)
                return NULL;
        for (i = 0; i < n; i++) {
                pairs[i].score = scores[i];
                pairs[i].positive = labels[i] != 0;
        }
        qsort(pairs, n, sizeof(*pairs), mg_metrics_pair_cmp);
        *posp = pos;
        *negp = n - pos;
        return pairs;
}

double mg_metrics_auc(const double *scores, const unsigned char *labels,
                      size_t n) {
        struct mg_metrics_pair *pairs;
        size_t i, j, pos, neg, neg_below = 0, gpos, gneg;
        double u = 0;

        pairs = mg_metrics_sorted(scores, labels, n, &pos, &neg);
        if (!pairs)
                return NAN;
        for (i = 0; i < n; i = j) {
                gpos = gneg = 0;
                for (j = i; j < n && pairs[j].score == pairs[i].score; j++) {
                        gpos += pairs[j].positive;
                        gneg += !pairs[j].positive;
                }
                u += (double)gpos * ((double)neg_below + 0.5 * (double)gneg);
                neg_below += gneg;
        }
        free(pairs);
        return u / ((double)pos * (double)neg);
}

double mg_metrics_tpr_at_fpr(const double *scores,
                             const unsigned char *labels, size_t n,
                             double max_fpr, double *thresholdp) {
        struct mg_metrics_pair *pairs = NULL;
        size_t i, j, pos, neg, tp = 0, fp = 0, best_tp = 0;
        double best_t = INFINITY, tpr = NAN;
        int found = 0;

        if (isnan(max_fpr) ||
            !(pairs = mg_metrics_sorted(scores, labels, n, &pos, &neg))) {
                best_t = NAN;
                goto out;
        }
        /* i: one past the lowest sample already taken in. */
        for (i = n; i > 0; i = j) {
                for (j = i; j > 0 && pairs[j - 1].score == pairs[i - 1].score;
                     j--) {
                        tp += pairs[j - 1].positive;
                        fp += !pairs[j - 1].positive;
                }
                if ((double)fp / (double)neg > max_fpr)
                        break;
                /* Strictly better only: of thresholds with the same TPR
                 * the highest (the first met) has the lowest FPR. */
                if (!found || tp > best_tp) {
                        found = 1;
                        best_tp = tp;
                        best_t = pairs[i - 1].score;
                }
        }
        tpr = (double)best_tp / (double)pos;
out:
        free(pairs);
        if (thresholdp)
                *thresholdp = best_t;
        return tpr;
}

double mg_metrics_median(double *v, size_t n) {
        if (n == 0)
                return NAN;
        qsort(v, n, sizeof(*v), mg_metrics_double_cmp);
        if (isnan(v[n - 1]))
                return NAN;
        if (n % 2)
                return v[n / 2];
        /* Halves first: the sum of two huge values must not overflow. */
        return v[n / 2 - 1] / 2 + v[n / 2] / 2;
}
