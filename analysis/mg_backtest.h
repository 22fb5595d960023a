/*
 * mg_backtest.h — detection quality of a replay against labelled attacks
 * (`mintgate replay --labels`), and the data of the visual report.
 *
 * Labels are JSON lines, one per attack, as `mintgate simulate --labels`
 * writes them:
 *   {"identity":"…","attack":"stolen_token","start":"<RFC 3339 or ms>",
 *    "end":"<RFC 3339 or ms>"}
 *
 * Units of evaluation:
 *   - identity-hours: every hour in which an identity had events, scored
 *     by the highest risk it reached in that hour. An hour overlapping one
 *     of the identity's attack windows is a positive of that attack's type.
 *     The identity's hours in the day after an attack ends are left out:
 *     a compromised identity's aftermath is neither attack nor clean
 *     traffic (its risk is still decaying). Every other hour is a negative.
 *     ROC AUC and the true-positive rate at 1% false positives are
 *     computed overall and per attack type (each type's positives against
 *     all negatives);
 *   - attacks: detected when an issuance of the identity inside the
 *     window was narrowed, stepped up or denied; time to detect is from
 *     the attack's start to that decision;
 *   - requests: issuances outside attack windows and their aftermath are
 *     benign; the share of them not simply allowed is what the defaults
 *     cost legitimate workloads.
 *
 * Threads: one backtest per thread.
 */
#ifndef MG_BACKTEST_H
#define MG_BACKTEST_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mg_err.h"
#include "mg_replay.h"

/* Hours after an attack's end that are left out of the evaluation. */
#define MG_BACKTEST_AFTERMATH_MS (24LL * 3600 * 1000)
/* False-positive rate at which the true-positive rate is reported. */
#define MG_BACKTEST_FPR 0.01

struct mg_backtest;

/* One line of results: overall or one attack type. */
struct mg_backtest_row {
        char name[48];          /* "overall" or the attack type */
        size_t attacks;         /* labelled attacks */
        size_t detected;        /* narrowed, stepped up or denied in time */
        size_t positives;       /* attack identity-hours */
        size_t negatives;       /* benign identity-hours compared against */
        double auc;             /* ROC AUC; NAN without both classes */
        double tpr;             /* TPR at MG_BACKTEST_FPR; NAN likewise */
        double threshold;       /* the risk threshold giving tpr */
        double median_ttd_ms;   /* median time to detect; NAN: none */
};

/* Everything a backtest measured. */
struct mg_backtest_result {
        struct mg_backtest_row *rows;  /* rows[0] is "overall" */
        size_t row_cnt;
        uint64_t events;               /* events replayed */
        uint64_t identities;           /* identities seen */
        uint64_t decisions[MG_DECISION__CNT];       /* every issuance */
        uint64_t benign[MG_DECISION__CNT];          /* benign issuances */
        int64_t start_ms, end_ms;      /* event-time span */
        uint64_t sig_fires[MG_SIG__CNT];  /* times each signal fired */
        double sig_points[MG_SIG__CNT];   /* risk points it added */
};

/* A backtest; labels_path may be NULL (no labels: decision mix, signal
 * contributions and timelines only). Errors name the labels file's line. */
mg_err_t mg_backtest_new(const char *labels_path, struct mg_backtest **btp,
                         char *errstr, size_t errstr_size);
/* The same with the labels read from a stream (NULL: none); name labels
 * error messages. */
mg_err_t mg_backtest_new_stream(FILE *labels, const char *name,
                                struct mg_backtest **btp, char *errstr,
                                size_t errstr_size);
void mg_backtest_destroy(struct mg_backtest *bt);

/* Account for one replayed event and what it did. */
mg_err_t mg_backtest_observe(struct mg_backtest *bt,
                             const struct mg_event *ev,
                             const struct mg_replay_step *step, char *errstr,
                             size_t errstr_size);

/* Compute the results after the last event. *resp stays valid until the
 * backtest is destroyed. The backtest owns what it hangs on the replay's
 * identity pointers: destroy the replay first or with it. */
mg_err_t mg_backtest_finish(struct mg_backtest *bt,
                            const struct mg_backtest_result **resp,
                            char *errstr, size_t errstr_size);

/* Print the results as a table (human) or one JSON object. */
void mg_backtest_print(FILE *fp, const struct mg_backtest_result *res,
                       int json);

/* Write the HTML report (mg_report.h) of a finished backtest. */
mg_err_t mg_backtest_report(struct mg_backtest *bt, FILE *fp,
                            const char *subtitle,
                            const struct mg_scoring_conf *scoring,
                            char *errstr, size_t errstr_size);

#endif /* MG_BACKTEST_H */
