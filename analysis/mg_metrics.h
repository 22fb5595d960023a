/*
 * mg_metrics.h — detection-quality metrics for `mintgate replay`: ROC AUC,
 * the true-positive rate at a false-positive budget, and the median.
 *
 * Pure functions over caller-owned arrays: no I/O, no global state, safe
 * from any thread. AUC and TPR@FPR sort a private copy of their inputs
 * (O(n log n), one allocation of 16 bytes per sample); the median sorts its
 * argument in place. Workload: one call per report row over up to a few
 * million identity-hours.
 *
 * A score that is NaN has no place in a ranking: AUC and TPR@FPR return NAN
 * when any score is NaN (and when they cannot allocate their copy), so a
 * bad input shows as "not computable" in the report instead of as a wrong
 * figure.
 */
#ifndef MG_METRICS_H
#define MG_METRICS_H

#include <stddef.h>

/* ROC AUC of scores for binary labels (labels[i] != 0: positive): the
 * probability that a random positive scores above a random negative, ties
 * counting one half (Mann-Whitney U, O(n log n) via sorting, tie groups
 * handled). NAN when either class is empty. Does not modify its inputs. */
double mg_metrics_auc(const double *scores, const unsigned char *labels,
                      size_t n);

/* Best true-positive rate of the rule "score >= t" over all thresholds t
 * whose false-positive rate is <= max_fpr (thresholds only at observed
 * score values, so tied negatives are all in or all out). *thresholdp (may
 * be NULL) gets the t achieving it, the highest one when several do
 * (INFINITY when even the highest score exceeds max_fpr, TPR then 0).
 * NAN when either class is empty or max_fpr is NaN; *thresholdp is then
 * NAN too. Does not modify its inputs. */
double mg_metrics_tpr_at_fpr(const double *scores,
                             const unsigned char *labels, size_t n,
                             double max_fpr, double *thresholdp);

/* Median of v (sorts v in place, NaNs last); mean of the two middle values
 * for even n; NAN when n == 0 or v holds a NaN. */
double mg_metrics_median(double *v, size_t n);

#endif /* MG_METRICS_H */
