/*
 * test_metrics.c — unit tests of the detection-quality metrics
 * (analysis/mg_metrics.c).
 *
 * Small cases are worked by hand in the comments next to them: AUC at its
 * extremes, all ties, a 3+3 case with one tied pair; TPR@FPR where the
 * threshold lands on a tie group, on an exact budget, and where nothing
 * fits; empty classes; medians of odd and even length. Then the clever
 * O(n log n) walks are checked against plain O(n^2) references on
 * randomised inputs (STYLE.md: check clever code against a plain model):
 * AUC as the share of positive-negative pairs the positive wins (ties one
 * half), TPR@FPR by trying every observed score as a threshold.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <float.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <math.h>

#include "mg_metrics.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* |a - b| <= eps in double (cmocka's assert_float_equal works in float). */
#define assert_near(a, b, eps)                                               \
        do {                                                                 \
                double a_ = (a), b_ = (b);                                   \
                if (!(fabs(a_ - b_) <= (eps)))                               \
                        fail_msg("%s = %.17g, expected %.17g", #a, a_, b_);  \
        } while (0)

/* Perfect separation, inverted, all tied. */
static void test_auc_extremes(void **state) {
        /* Every positive (0.8, 0.9) above every negative (0.1..0.3): all
         * 2 * 3 pairs won, AUC = 6 / 6 = 1. */
        const double s[] = {0.1, 0.2, 0.3, 0.8, 0.9};
        const unsigned char up[] = {0, 0, 0, 1, 1};
        /* The same scores with the classes swapped: no pair won, 0 / 6. */
        const unsigned char down[] = {1, 1, 0, 0, 0};
        /* Everything scores 5: each of the 2 * 2 pairs ties, 4 * 0.5 / 4. */
        const double flat[] = {5, 5, 5, 5};
        const unsigned char mixed[] = {1, 0, 1, 0};

        assert_near(mg_metrics_auc(s, up, N_OF(s)), 1.0, 1e-15);
        assert_near(mg_metrics_auc(s, down, N_OF(s)), 0.0, 1e-15);
        assert_near(mg_metrics_auc(flat, mixed, N_OF(flat)), 0.5, 1e-15);
}

/* Three positives and three negatives with one tied pair. */
static void test_auc_tie(void **state) {
        /* Positives 0.9, 0.6, 0.4; negatives 0.5, 0.4, 0.1.
         *   0.9 beats 0.5, 0.4, 0.1                 -> 3
         *   0.6 beats 0.5, 0.4, 0.1                 -> 3
         *   0.4 loses to 0.5, ties 0.4, beats 0.1   -> 0 + 0.5 + 1 = 1.5
         * U = 7.5 of 9 pairs: AUC = 5/6. The order of the input must not
         * matter, so the classes are interleaved. */
        const double s[] = {0.4, 0.5, 0.9, 0.1, 0.6, 0.4};
        const unsigned char l[] = {1, 0, 1, 0, 1, 0};

        assert_near(mg_metrics_auc(s, l, N_OF(s)), 7.5 / 9, 1e-15);
}

/* Empty classes, no samples, NaN scores: NAN. */
static void test_auc_undefined(void **state) {
        const double s[] = {0.1, 0.2, 0.3};
        const unsigned char pos[] = {1, 1, 1};
        const unsigned char neg[] = {0, 0, 0};
        const double with_nan[] = {0.1, NAN, 0.3};
        const unsigned char l[] = {0, 1, 1};

        assert_true(isnan(mg_metrics_auc(s, pos, N_OF(s))));
        assert_true(isnan(mg_metrics_auc(s, neg, N_OF(s))));
        assert_true(isnan(mg_metrics_auc(NULL, NULL, 0)));
        assert_true(isnan(mg_metrics_auc(with_nan, l, N_OF(with_nan))));
        /* A label is positive when it is not 0, not only when it is 1. */
        {
                const unsigned char l7[] = {0, 7, 200};

                assert_near(mg_metrics_auc(s, l7, N_OF(s)), 1.0, 1e-15);
        }
}

/* Four positives, four negatives, a tie group of two negatives and one
 * positive at 0.5. Walking the threshold down (tp / fp cumulative, rates
 * over 4):
 *   t = 0.9  pos          tp 1 fp 0   TPR .25 FPR 0
 *   t = 0.8  neg          tp 1 fp 1   TPR .25 FPR .25
 *   t = 0.7  pos          tp 2 fp 1   TPR .50 FPR .25
 *   t = 0.5  neg neg pos  tp 3 fp 3   TPR .75 FPR .75
 *   t = 0.3  pos          tp 4 fp 3   TPR 1   FPR .75
 *   t = 0.1  neg          tp 4 fp 4   TPR 1   FPR 1 */
static const double tie_s[] = {0.5, 0.9, 0.1, 0.5, 0.8, 0.3, 0.7, 0.5};
static const unsigned char tie_l[] = {0, 1, 0, 1, 0, 1, 1, 0};

static void test_tpr_tie_group(void **state) {
        double t;

        /* Budget .5: taking one of the tied 0.5 negatives would give FPR
         * .5 and TPR .75, but ties are all in or all out; t = 0.5 costs
         * .75, so the best is t = 0.7 with TPR .5. */
        assert_near(mg_metrics_tpr_at_fpr(tie_s, tie_l, 8, 0.5, &t), 0.5,
                    1e-15);
        assert_near(t, 0.7, 0);
        /* Budget .75 takes the tie group and 0.3 after it: TPR 1. */
        assert_near(mg_metrics_tpr_at_fpr(tie_s, tie_l, 8, 0.75, &t), 1.0,
                    1e-15);
        assert_near(t, 0.3, 0);
        /* Budget .25: 0.8 and 0.7 both cost .25; 0.7 finds more. */
        assert_near(mg_metrics_tpr_at_fpr(tie_s, tie_l, 8, 0.25, &t), 0.5,
                    1e-15);
        assert_near(t, 0.7, 0);
        /* Budget 0: only the top positive. */
        assert_near(mg_metrics_tpr_at_fpr(tie_s, tie_l, 8, 0.0, &t), 0.25,
                    1e-15);
        assert_near(t, 0.9, 0);
        /* Budget 1: t = 0.1 also reaches TPR 1 but at FPR 1; the highest
         * threshold with the best TPR is reported, 0.3. */
        assert_near(mg_metrics_tpr_at_fpr(tie_s, tie_l, 8, 1.0, &t), 1.0,
                    1e-15);
        assert_near(t, 0.3, 0);
        /* thresholdp may be NULL. */
        assert_near(mg_metrics_tpr_at_fpr(tie_s, tie_l, 8, 0.5, NULL), 0.5,
                    1e-15);
}

/* The highest scores are two tied negatives: any threshold costs FPR .5. */
static void test_tpr_nothing_fits(void **state) {
        /* Negatives 0.9, 0.9, 0.2, 0.1; positives 0.5, 0.4. t = 0.9 takes
         * both 0.9 negatives at once: FPR .5 > .25, so no observed score
         * is a threshold within budget: TPR 0, t = INFINITY. */
        const double s[] = {0.9, 0.5, 0.9, 0.2, 0.4, 0.1};
        const unsigned char l[] = {0, 1, 0, 0, 1, 0};
        double t = 0;

        assert_near(mg_metrics_tpr_at_fpr(s, l, N_OF(s), 0.25, &t), 0.0, 0);
        assert_true(isinf(t) && t > 0);
        /* A negative budget is never met either. */
        assert_near(mg_metrics_tpr_at_fpr(s, l, N_OF(s), -1, &t), 0.0, 0);
        assert_true(isinf(t) && t > 0);
        /* With budget .5 the tie group fits, then 0.5 and 0.4 follow at
         * no further cost: TPR 1 at t = 0.4. */
        assert_near(mg_metrics_tpr_at_fpr(s, l, N_OF(s), 0.5, &t), 1.0, 0);
        assert_near(t, 0.4, 0);
}

/* A budget met exactly: 3 false positives of 300 against 1%. */
static void test_tpr_exact_budget(void **state) {
        /* 10 positives at 0.99, 10 at 0.9; 3 negatives at 0.95, 297 at
         * 0.1. t = 0.99: FPR 0, TPR .5; t = 0.95: FPR 3/300 = .01 <= .01;
         * t = 0.9: TPR 1, FPR still .01; t = 0.1: FPR 1. */
        double s[320], t;
        unsigned char l[320];
        int i;

        for (i = 0; i < 320; i++) {
                s[i] = i < 10 ? 0.99 : i < 20 ? 0.9 : i < 23 ? 0.95 : 0.1;
                l[i] = i < 20;
        }
        assert_near(mg_metrics_tpr_at_fpr(s, l, 320, 0.01, &t), 1.0, 0);
        assert_near(t, 0.9, 0);
        /* Just under the budget the three negatives at 0.95 do not fit. */
        assert_near(mg_metrics_tpr_at_fpr(s, l, 320, 0.0099, &t), 0.5, 0);
        assert_near(t, 0.99, 0);
}

/* Empty classes, no samples, NaN: NAN, and *thresholdp NAN. */
static void test_tpr_undefined(void **state) {
        const double s[] = {0.1, 0.2};
        const unsigned char pos[] = {1, 1};
        const unsigned char neg[] = {0, 0};
        const unsigned char l[] = {0, 1};
        const double with_nan[] = {NAN, 0.2};
        double t = 0;

        assert_true(isnan(mg_metrics_tpr_at_fpr(s, pos, 2, 0.1, &t)));
        assert_true(isnan(t));
        t = 0;
        assert_true(isnan(mg_metrics_tpr_at_fpr(s, neg, 2, 0.1, &t)));
        assert_true(isnan(t));
        t = 0;
        assert_true(isnan(mg_metrics_tpr_at_fpr(NULL, NULL, 0, 0.1, &t)));
        assert_true(isnan(t));
        t = 0;
        assert_true(isnan(mg_metrics_tpr_at_fpr(with_nan, l, 2, 0.1, &t)));
        assert_true(isnan(t));
        t = 0;
        assert_true(isnan(mg_metrics_tpr_at_fpr(s, l, 2, NAN, &t)));
        assert_true(isnan(t));
}

/* AUC and TPR@FPR leave their inputs as they were. */
static void test_inputs_untouched(void **state) {
        double s[] = {0.5, 0.9, 0.1, 0.5, 0.8, 0.3, 0.7, 0.5}, t;
        unsigned char l[] = {0, 1, 0, 1, 0, 1, 1, 0};
        double s0[N_OF(s)];
        unsigned char l0[N_OF(l)];

        memcpy(s0, s, sizeof(s));
        memcpy(l0, l, sizeof(l));
        mg_metrics_auc(s, l, N_OF(s));
        mg_metrics_tpr_at_fpr(s, l, N_OF(s), 0.5, &t);
        assert_memory_equal(s, s0, sizeof(s));
        assert_memory_equal(l, l0, sizeof(l));
}

static void test_median(void **state) {
        /* Odd: sorted 1 2 3, the middle one is 2; v ends up sorted. */
        double odd[] = {3, 1, 2};
        /* Even: sorted 1 2 3 4, the mean of 2 and 3. */
        double even[] = {4, 1, 3, 2};
        /* One value; two equal values. */
        double one[] = {-7.25};
        double two[] = {6, 6};
        /* Halves are added, so huge values do not overflow to infinity. */
        double huge[] = {DBL_MAX, DBL_MAX};
        double with_nan[] = {1, NAN, 3};

        assert_near(mg_metrics_median(odd, 3), 2, 0);
        assert_near(odd[0], 1, 0);
        assert_near(odd[1], 2, 0);
        assert_near(odd[2], 3, 0);
        assert_near(mg_metrics_median(even, 4), 2.5, 0);
        assert_near(mg_metrics_median(one, 1), -7.25, 0);
        assert_near(mg_metrics_median(two, 2), 6, 0);
        assert_near(mg_metrics_median(huge, 2), DBL_MAX, 0);
        assert_true(isnan(mg_metrics_median(NULL, 0)));
        assert_true(isnan(mg_metrics_median(with_nan, 3)));
        /* NaNs sort last. */
        assert_near(with_nan[0], 1, 0);
        assert_near(with_nan[1], 3, 0);
        assert_true(isnan(with_nan[2]));
}

/*
 * Randomised checks against O(n^2) references.
 */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

/* splitmix64: deterministic, so a failure reproduces. */
static uint64_t rng(void) {
        uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

/* The share of positive-negative pairs the positive wins, ties one half. */
static double ref_auc(const double *s, const unsigned char *l, size_t n) {
        double won = 0, pairs = 0;
        size_t i, j;

        for (i = 0; i < n; i++) {
                if (!l[i])
                        continue;
                for (j = 0; j < n; j++) {
                        if (l[j])
                                continue;
                        pairs++;
                        won += s[i] > s[j] ? 1 : s[i] == s[j] ? 0.5 : 0;
                }
        }
        return pairs ? won / pairs : NAN;
}

/* Every observed score tried as a threshold: the best TPR within budget,
 * the highest threshold among equals. */
static double ref_tpr(const double *s, const unsigned char *l, size_t n,
                      double max_fpr, double *thresholdp) {
        double best = -1, best_t = INFINITY;
        size_t i, j, pos = 0, neg = 0, tp, fp;

        for (i = 0; i < n; i++) {
                pos += l[i] != 0;
                neg += l[i] == 0;
        }
        for (i = 0; i < n; i++) {
                tp = fp = 0;
                for (j = 0; j < n; j++) {
                        if (s[j] >= s[i]) {
                                tp += l[j] != 0;
                                fp += l[j] == 0;
                        }
                }
                if ((double)fp / (double)neg > max_fpr)
                        continue;
                if ((double)tp / (double)pos > best ||
                    ((double)tp / (double)pos == best && s[i] > best_t)) {
                        best = (double)tp / (double)pos;
                        best_t = s[i];
                }
        }
        *thresholdp = best_t;
        return best < 0 ? 0 : best;
}

static void test_random_vs_reference(void **state) {
        static const double budgets[] = {0, 0.01, 0.05, 0.1, 0.3, 1};
        double s[400], t, ref_t, auc, ref, tpr;
        unsigned char l[400];
        size_t n, i, b;
        int round, checked = 0;

        for (round = 0; round < 600; round++) {
                n = 2 + rng() % 399;
                for (i = 0; i < n; i++) {
                        /* Half of the rounds draw from 8 values: many
                         * ties. Positives score higher on average. */
                        l[i] = rng() % 4 == 0;
                        if (round % 2)
                                s[i] = (double)(rng() % 8) + (l[i] ? 2 : 0);
                        else
                                s[i] = (double)(rng() >> 11) / 0x1p53 +
                                       (l[i] ? 0.3 : 0);
                }
                auc = mg_metrics_auc(s, l, n);
                ref = ref_auc(s, l, n);
                if (isnan(ref)) {
                        assert_true(isnan(auc));
                        continue;
                }
                assert_near(auc, ref, 1e-12);
                for (b = 0; b < N_OF(budgets); b++) {
                        ref = ref_tpr(s, l, n, budgets[b], &ref_t);
                        tpr = mg_metrics_tpr_at_fpr(s, l, n, budgets[b], &t);
                        assert_near(tpr, ref, 1e-12);
                        assert_true(t == ref_t);
                }
                checked++;
        }
        /* Nearly every round has both classes. */
        assert_true(checked > 550);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_auc_extremes),
                cmocka_unit_test(test_auc_tie),
                cmocka_unit_test(test_auc_undefined),
                cmocka_unit_test(test_tpr_tie_group),
                cmocka_unit_test(test_tpr_nothing_fits),
                cmocka_unit_test(test_tpr_exact_budget),
                cmocka_unit_test(test_tpr_undefined),
                cmocka_unit_test(test_inputs_untouched),
                cmocka_unit_test(test_median),
                cmocka_unit_test(test_random_vs_reference),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
