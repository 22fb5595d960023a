/*
 * mg_report.h — the analyst's report of a replay: one self-contained HTML
 * page (inline CSS and inline SVG only: no script, font, image or style
 * sheet from anywhere, so it opens offline, attaches to a ticket and
 * prints).
 *
 * The caller (`mintgate replay`) computes every figure; this module only
 * lays them out. Sections, in reading order:
 *   - headline figures: events replayed, overall AUC and TPR at 1% FPR,
 *     attacks detected, median time to detect, benign requests hurt;
 *   - the detection-quality table, one row per attack type after
 *     "overall";
 *   - score distributions of benign and attack identity-hours, overlaid
 *     histograms over risk 0..100 in bins of 5 with log-scale counts;
 *   - per-signal contribution, horizontal bars sorted by risk points;
 *   - the decision mix over time, stacked bars by outcome (deny, step-up
 *     and narrow at the base, where the few are visible under the many);
 *   - risk timelines of the given identities as small multiples on one
 *     shared time axis, attack windows shaded, the level thresholds as
 *     faint dashed lines (the scoring defaults: the report is not given
 *     the replay's configuration). A series longer than 600 points is cut
 *     to at most 600 (the lowest and highest sample of each of 300 time
 *     columns), so every peak survives.
 * A section with nothing to show (no rows, no timelines, no scores, no
 * buckets or only empty ones, no signal data) says "no data" instead of
 * drawing an empty chart. Every string from the caller is HTML-escaped.
 *
 * Size: at most about 17 KB per timeline (whatever its length), 130 KB
 * for the decision mix (240 bars) and 15 KB for the rest: 20 timelines
 * come to about 0.5 MB. Nothing is allocated; the output is deterministic
 * (no clock; decimal points are '.' since mintgate never calls
 * setlocale()).
 */
#ifndef MG_REPORT_H
#define MG_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mg_baseline.h" /* MG_SIG__CNT, mg_signal_names */
#include "mg_decision.h" /* MG_DECISION__CNT, mg_outcome_names */
#include "mg_err.h"

/* One risk sample. */
struct mg_report_point {
        int64_t ts_ms;  /* event time, epoch milliseconds */
        float risk;     /* 0..100; NaN samples are skipped */
};

/* One identity's risk over time. */
struct mg_report_timeline {
        const char *identity;           /* required */
        const char *attack;             /* attack type label, NULL: benign */
        int64_t attack_start_ms;        /* valid when attack != NULL */
        int64_t attack_end_ms;          /* >= attack_start_ms */
        const struct mg_report_point *pts; /* cnt samples in time order
                                            * (equal times allowed) */
        size_t cnt;                     /* samples (0: "no samples") */
};

/* One line of the detection-quality table. */
struct mg_report_row {
        const char *name;              /* "overall" or an attack type */
        size_t attacks;                /* labelled attacks of this type */
        size_t positives, negatives;   /* identity-hours */
        double auc, tpr_at_1fpr;       /* NAN when not computable */
        double median_ttd_ms;          /* attack start -> first narrow/
                                        * step_up/deny; NAN: none */
        size_t detected;               /* attacks with any narrow/step_up/
                                        * deny inside the window */
};

/* Everything the report shows. Arrays are borrowed for the call; a NULL
 * array must come with a zero count. */
struct mg_report {
        const char *title;             /* required, e.g. "mintgate replay" */
        const char *subtitle;          /* e.g. input, config and policy
                                        * names; NULL: none */
        int64_t start_ms, end_ms;      /* event-time span of the replay,
                                        * end_ms >= start_ms */
        const struct mg_report_timeline *timelines; /* riskiest identities,
                                                     * shown in this order */
        size_t timeline_cnt;           /* entries in timelines */
        const double *benign_scores;   /* identity-hour risk, benign hours */
        size_t benign_cnt;             /* entries in benign_scores */
        const double *attack_scores;   /* identity-hour risk, attack hours */
        size_t attack_cnt;             /* entries in attack_scores */
        int64_t bucket_ms;             /* decision-mix bucket width, > 0
                                        * when bucket_cnt > 0; bucket i
                                        * starts at start_ms + i * bucket_ms */
        size_t bucket_cnt;             /* rows in decision_mix; more than
                                        * 240 are drawn in groups */
        const uint64_t (*decision_mix)[MG_DECISION__CNT]; /* bucket_cnt rows
                                        * of counts by enum mg_outcome */
        const double *signal_points;   /* MG_SIG__CNT: total risk points each
                                        * signal contributed; NULL: no data */
        const uint64_t *signal_fires;  /* MG_SIG__CNT: times each signal
                                        * fired; NULL: not shown */
        const struct mg_report_row *rows; /* rows[0] is "overall" */
        size_t row_cnt;                /* entries in rows */
        uint64_t benign_requests;      /* benign issuance requests */
        uint64_t benign_hurt;          /* of them, narrowed or denied */
        uint64_t events;               /* events replayed */
        /* The scoring settings replayed, for the level thresholds drawn on
         * the timelines; NULL: the defaults. */
        const struct mg_scoring_conf *scoring;
};

/* Write the report to fp as one HTML document. MG_ERR_INVALID naming the
 * field when rep is inconsistent (a NULL array with a count, a NULL
 * identity or row name, an inverted span or attack window, samples out of
 * time order, a bucket width <= 0, a time beyond +-10^15 ms); nothing is
 * written then. MG_ERR_IO when writing (or flushing) fp
 * fails; fp is left to the caller either way. Any thread; touches only its
 * arguments. */
mg_err_t mg_report_write_html(FILE *fp, const struct mg_report *rep,
                              char *errstr, size_t errstr_size);

#endif /* MG_REPORT_H */
