/*
 * mg_report.c — the replay report as one self-contained HTML page (see
 * mg_report.h for what it shows).
 *
 * Design. The page is written top to bottom straight into the caller's
 * FILE with stdio; nothing is buffered here and nothing allocated, and
 * write errors are collected by the stream and checked once at the end
 * (ferror() after fflush()). Validation comes first, so a bad report
 * writes nothing.
 *
 * Charts are inline SVG with a viewBox, scaled to their column by CSS; all
 * styling is in the page's one <style> block, which inline SVG inherits,
 * so the SVG carries geometry only. A chart is a plot rectangle inside
 * fixed margins (struct mg_report_frame) with a linear time axis and a
 * linear or log value axis. Time ticks fall on round UTC steps (1 s .. 1
 * year) chosen so that at most a given number fit; value ticks on 1-2-5
 * multiples. Legends are HTML above their chart, where text wraps.
 *
 * Escaping: every caller string goes through mg_report_esc() (the five
 * HTML specials, and control bytes replaced by U+FFFD since they are not
 * allowed in HTML text). Numbers are formatted by hand where locale could
 * interfere (thousands separators); "%.1f" writes '.' since mintgate never
 * calls setlocale().
 *
 * Workload: once per replay. The work is linear in the samples and
 * buckets given; the output only in the number of timelines, since each
 * series is cut to 600 points and the decision mix to 240 bars.
 */
#include "mg_report.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SEC_MS  1000LL
#define MIN_MS  (60 * SEC_MS)
#define HOUR_MS (60 * MIN_MS)
#define DAY_MS  (24 * HOUR_MS)

/* Series longer than this are reduced to the extremes of half as many
 * time columns: 600 points is about one per pixel of a timeline at full
 * page width, so nothing visible is lost. */
#define MG_REPORT_SERIES_MAX 600
#define MG_REPORT_COLUMNS    (MG_REPORT_SERIES_MAX / 2)
/* Decision-mix bars: more buckets than this are summed in groups, so a bar
 * stays at least ~4 px wide. */
#define MG_REPORT_BARS_MAX 240
/* Times beyond +-10^15 ms (31,700 years from 1970) are corrupt input;
 * within them no time arithmetic here can overflow. */
#define MG_REPORT_TIME_MAX 1000000000000000LL
/* Score histogram: risk 0..100 in bins of 5. */
#define MG_REPORT_BINS 20

/* Palette (muted, after the Grafana light theme). */
#define C_RISK    "#1f60c4"
#define C_AREA    "#5794f2"
#define C_ATTACK  "#e02f44"
#define C_BENIGN  "#5794f2"
#define C_MEDIUM  "#e0b400"
#define C_HIGH    "#ff780a"
#define C_CRIT    "#c4162a"
#define C_SIGNAL  "#5794f2"

/* Colours of the outcomes, by enum mg_outcome. */
static const char *const mg_report_outcome_colors[MG_DECISION__CNT] = {
        "#9ac48a", /* allow: muted green, the bulk */
        "#f2cc0c", /* narrow */
        "#ff9830", /* step_up */
        "#e02f44", /* deny */
};

/* Plot geometry of one SVG chart. */
struct mg_report_frame {
        double width, height;   /* viewBox size */
        double x0, y0;          /* top left of the plot area */
        double w, h;            /* plot area size */
        int64_t tmin, tmax;     /* time axis domain (tmax > tmin) */
};

/* Level thresholds drawn on timelines. */
struct mg_report_levels {
        double medium, high, critical;
};

/*
 * Text output.
 */

/* s with &, <, >, ", ' as entities and control bytes as U+FFFD: safe in
 * element text and in quoted attributes. */
static void mg_report_esc(FILE *fp, const char *s) {
        const unsigned char *p;

        for (p = (const unsigned char *)s; *p; p++) {
                switch (*p) {
                case '&':
                        fputs("&amp;", fp);
                        break;
                case '<':
                        fputs("&lt;", fp);
                        break;
                case '>':
                        fputs("&gt;", fp);
                        break;
                case '"':
                        fputs("&quot;", fp);
                        break;
                case '\'':
                        fputs("&#39;", fp);
                        break;
                default:
                        if (*p < 0x20 || *p == 0x7f)
                                fputs("\xef\xbf\xbd", fp);
                        else
                                putc(*p, fp);
                }
        }
}

/* v with thousands separators, e.g. "1,234,567". */
static const char *mg_report_count(char *buf, size_t size, uint64_t v) {
        char digits[32];
        size_t len, i, o = 0;

        len = (size_t)snprintf(digits, sizeof(digits), "%" PRIu64, v);
        for (i = 0; i < len && o + 2 < size; i++) {
                if (i > 0 && (len - i) % 3 == 0)
                        buf[o++] = ',';
                buf[o++] = digits[i];
        }
        buf[o] = '\0';
        return buf;
}

/* A share as a percentage with enough digits to tell small ones apart. */
static const char *mg_report_pct(char *buf, size_t size, double share) {
        if (isnan(share))
                snprintf(buf, size, "\xe2\x80\x94"); /* em dash */
        else if (share == 0)
                snprintf(buf, size, "0%%");
        else if (share > 0 && share < 0.001)
                snprintf(buf, size, "%.3f%%", share * 100);
        else if (share < 0.1)
                snprintf(buf, size, "%.2f%%", share * 100);
        else
                snprintf(buf, size, "%.1f%%", share * 100);
        return buf;
}

/* A duration for people: "850 ms", "12.5 s", "4m 05s", "3h 20m",
 * "2d 04h", and round ones short ("15m", "1h", "7d"); an em dash for
 * NaN. */
static const char *mg_report_dur(char *buf, size_t size, double ms) {
        int64_t s;

        if (isnan(ms)) {
                snprintf(buf, size, "\xe2\x80\x94");
                return buf;
        }
        if (ms < 0)
                ms = 0;
        if (ms < 1000) {
                snprintf(buf, size, "%.0f ms", ms);
                return buf;
        }
        if (ms < 60000) {
                snprintf(buf, size, "%.1f s", ms / 1000);
                return buf;
        }
        s = (int64_t)(ms / 1000 + 0.5);
        if (s % 86400 == 0)
                snprintf(buf, size, "%" PRId64 "d", s / 86400);
        else if (s % 3600 == 0)
                snprintf(buf, size, "%" PRId64 "h", s / 3600);
        else if (s % 60 == 0)
                snprintf(buf, size, "%" PRId64 "m", s / 60);
        else if (s < 3600)
                snprintf(buf, size, "%" PRId64 "m %02" PRId64 "s", s / 60,
                         s % 60);
        else if (s < 86400)
                snprintf(buf, size, "%" PRId64 "h %02" PRId64 "m", s / 3600,
                         s / 60 % 60);
        else
                snprintf(buf, size, "%" PRId64 "d %02" PRId64 "h", s / 86400,
                         s / 3600 % 24);
        return buf;
}

/* How mg_report_time() writes a time. */
enum mg_report_time_style {
        MG_REPORT_TIME_FULL,    /* 2026-11-16 14:05 */
        MG_REPORT_TIME_DAY,     /* Nov 16 */
        MG_REPORT_TIME_MINUTE,  /* 14:05 */
        MG_REPORT_TIME_SECOND   /* 14:05:30 */
};

/* An epoch-milliseconds time in UTC. */
static const char *mg_report_time(char *buf, size_t size, int64_t ms,
                                  enum mg_report_time_style style) {
        time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
        struct tm tm;
        size_t n = 0;

        if (!gmtime_r(&t, &tm)) {
                snprintf(buf, size, "?");
                return buf;
        }
        switch (style) {
        case MG_REPORT_TIME_FULL:
                n = strftime(buf, size, "%Y-%m-%d %H:%M", &tm);
                break;
        case MG_REPORT_TIME_DAY:
                n = strftime(buf, size, "%b %d", &tm);
                break;
        case MG_REPORT_TIME_MINUTE:
                n = strftime(buf, size, "%H:%M", &tm);
                break;
        case MG_REPORT_TIME_SECOND:
                n = strftime(buf, size, "%H:%M:%S", &tm);
                break;
        }
        if (n == 0 && size > 0)
                buf[0] = '\0';
        return buf;
}

/*
 * Scales and axes.
 */

static double mg_report_x(const struct mg_report_frame *fr, int64_t ts) {
        double f = ((double)ts - (double)fr->tmin) /
                   ((double)fr->tmax - (double)fr->tmin);

        if (f < 0)
                f = 0;
        if (f > 1)
                f = 1;
        return fr->x0 + f * fr->w;
}

/* y of v on a linear axis lo..hi, clamped to the plot. */
static double mg_report_y(const struct mg_report_frame *fr, double v,
                          double lo, double hi) {
        double f = (v - lo) / (hi - lo);

        if (!(f >= 0))
                f = 0;
        if (f > 1)
                f = 1;
        return fr->y0 + fr->h - f * fr->h;
}

/* A 1-2-5 step giving at most about max_ticks intervals over 0..top. */
static double mg_report_nice_step(double top, int max_ticks) {
        double raw = top / max_ticks, mag, f;

        if (!(raw > 0))
                return 1;
        mag = pow(10, floor(log10(raw)));
        f = raw / mag;
        if (f <= 1)
                return mag;
        if (f <= 2)
                return 2 * mag;
        if (f <= 5)
                return 5 * mag;
        return 10 * mag;
}

/* Time ticks: the smallest round step with at most max_ticks intervals,
 * labelled by day when the step is a day or more, by second when under a
 * minute, else by minute with midnights named by their day. Labels that
 * would run off the right edge are left out. */
static void mg_report_time_axis(FILE *fp, const struct mg_report_frame *fr,
                                int max_ticks) {
        static const int64_t steps[] = {
                SEC_MS,      2 * SEC_MS,  5 * SEC_MS,  10 * SEC_MS,
                15 * SEC_MS, 30 * SEC_MS, MIN_MS,      2 * MIN_MS,
                5 * MIN_MS,  10 * MIN_MS, 15 * MIN_MS, 30 * MIN_MS,
                HOUR_MS,     2 * HOUR_MS, 3 * HOUR_MS, 6 * HOUR_MS,
                12 * HOUR_MS, DAY_MS,     2 * DAY_MS,  7 * DAY_MS,
                14 * DAY_MS, 30 * DAY_MS, 91 * DAY_MS, 365 * DAY_MS,
        };
        double span = (double)fr->tmax - (double)fr->tmin, x;
        double ybase = fr->y0 + fr->h;
        enum mg_report_time_style style;
        int64_t step = 0, t;
        char label[32];
        size_t i;

        for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
                step = steps[i];
                if (span / (double)step <= max_ticks)
                        break;
        }
        /* Centuries: whole multiples of 365 days. */
        if (span / (double)step > max_ticks)
                step = (int64_t)ceil(span / max_ticks / (double)step) * step;
        fprintf(fp, "<g class=\"axis\"><line x1=\"%.1f\" y1=\"%.1f\" "
                    "x2=\"%.1f\" y2=\"%.1f\"/>",
                fr->x0, ybase, fr->x0 + fr->w, ybase);
        /* First multiple of step at or after tmin (the division truncates
         * toward zero, which is already that for tmin < 0). */
        t = fr->tmin / step * step;
        if (t < fr->tmin)
                t += step;
        for (; t <= fr->tmax; t += step) {
                x = mg_report_x(fr, t);
                if (step >= DAY_MS)
                        style = MG_REPORT_TIME_DAY;
                else if (step < MIN_MS)
                        style = MG_REPORT_TIME_SECOND;
                else if (t % DAY_MS == 0)
                        style = MG_REPORT_TIME_DAY;
                else
                        style = MG_REPORT_TIME_MINUTE;
                fprintf(fp, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
                            "y2=\"%.1f\"/>",
                        x, ybase, x, ybase + 4);
                if (x + 22 > fr->width)
                        continue;
                fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" "
                            "text-anchor=\"middle\">%s</text>",
                        x, ybase + 16,
                        mg_report_time(label, sizeof(label), t, style));
        }
        fputs("</g>", fp);
}

/* Horizontal grid lines with labels on the left at 0, step, .. <= top. */
static void mg_report_value_axis(FILE *fp, const struct mg_report_frame *fr,
                                 double top, double step) {
        char label[32];
        double v, y;

        fputs("<g class=\"axis\">", fp);
        for (v = 0; v <= top * (1 + 1e-9); v += step) {
                y = mg_report_y(fr, v, 0, top);
                fprintf(fp, "<line class=\"gridline\" x1=\"%.1f\" "
                            "y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>",
                        fr->x0, y, fr->x0 + fr->w, y);
                if (v >= 1e6 && fmod(v, 1e6) == 0)
                        snprintf(label, sizeof(label), "%.0fM", v / 1e6);
                else if (v >= 1e4 && fmod(v, 1e3) == 0)
                        snprintf(label, sizeof(label), "%.0fk", v / 1e3);
                else
                        mg_report_count(label, sizeof(label), (uint64_t)v);
                fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" "
                            "text-anchor=\"end\">%s</text>",
                        fr->x0 - 6, y + 4, label);
        }
        fputs("</g>", fp);
}

/* The opening tag of a chart; close with "</svg>". */
static void mg_report_svg_open(FILE *fp, const struct mg_report_frame *fr,
                               const char *label) {
        fprintf(fp, "<svg xmlns=\"http://www.w3.org/2000/svg\" "
                    "class=\"chart\" viewBox=\"0 0 %.0f %.0f\" "
                    "role=\"img\" aria-label=\"",
                fr->width, fr->height);
        mg_report_esc(fp, label);
        fputs("\">", fp);
}

static void mg_report_nodata(FILE *fp, const char *what) {
        fputs("<div class=\"nodata\">No data: ", fp);
        mg_report_esc(fp, what);
        fputs("</div>\n", fp);
}

/*
 * Page frame and headline.
 */

static const char mg_report_css[] =
        ":root{--bg:#f4f5f5;--panel:#fff;--border:#dce1e6;--text:#1f2328;"
        "--muted:#656d76;--grid:#eceef1}\n"
        "*{box-sizing:border-box}\n"
        "body{margin:0;background:var(--bg);color:var(--text);"
        "font:14px/1.45 -apple-system,BlinkMacSystemFont,\"Segoe UI\","
        "Roboto,\"Helvetica Neue\",Arial,\"Noto Sans\",\"Liberation Sans\","
        "\"DejaVu Sans\",sans-serif}\n"
        ".page{max-width:1200px;margin:0 auto;padding:24px 24px 32px}\n"
        "header{margin-bottom:18px}\n"
        "header h1{font-size:22px;font-weight:600;margin:0 0 2px}\n"
        "header p{margin:0;color:var(--muted)}\n"
        ".cards{display:grid;grid-template-columns:repeat(6,minmax(0,1fr));"
        "gap:12px;margin:0 0 16px}\n"
        ".card{background:var(--panel);border:1px solid var(--border);"
        "border-radius:6px;padding:12px 14px}\n"
        ".card .k{font-size:11.5px;color:var(--muted);text-transform:"
        "uppercase;letter-spacing:.04em}\n"
        ".card .v{font-size:26px;font-weight:600;margin:2px 0;"
        "font-variant-numeric:tabular-nums;white-space:nowrap}\n"
        ".card .d{font-size:12px;color:var(--muted)}\n"
        ".panel{background:var(--panel);border:1px solid var(--border);"
        "border-radius:6px;padding:14px 16px 16px;margin:0 0 16px}\n"
        ".panel h2{font-size:15px;font-weight:600;margin:0 0 2px}\n"
        ".note{color:var(--muted);font-size:12px;margin:0 0 10px}\n"
        ".nodata{color:var(--muted);font-style:italic;text-align:center;"
        "padding:28px 0;border:1px dashed var(--border);border-radius:4px}\n"
        ".row2{display:grid;grid-template-columns:minmax(0,1fr) "
        "minmax(0,1fr);gap:16px}\n"
        ".row2 .panel{margin:0 0 16px}\n"
        "table{border-collapse:collapse;width:100%;"
        "font-variant-numeric:tabular-nums}\n"
        "th,td{padding:6px 10px;text-align:right;white-space:nowrap;"
        "border-bottom:1px solid var(--grid)}\n"
        "th:first-child,td:first-child{text-align:left}\n"
        "th{font-size:12px;font-weight:600;color:var(--muted);"
        "border-bottom:1px solid var(--border)}\n"
        "tr.overall td{font-weight:600;background:#f8f9fa}\n"
        "td.name{max-width:260px;overflow:hidden;text-overflow:ellipsis}\n"
        ".muted{color:var(--muted)}\n"
        ".legend{display:flex;flex-wrap:wrap;gap:4px 16px;font-size:12px;"
        "color:var(--muted);margin:0 0 6px}\n"
        ".sw{display:inline-block;width:10px;height:10px;border-radius:2px;"
        "margin-right:5px;vertical-align:-1px}\n"
        ".sw.line{height:0;border-top:2px solid;border-radius:0;"
        "vertical-align:3px}\n"
        ".sw.dash{height:0;border-top:1px dashed;border-radius:0;"
        "vertical-align:3px}\n"
        "svg.chart{display:block;width:100%;height:auto;overflow:visible}\n"
        "svg.chart text{font-size:11px;fill:#656d76}\n"
        ".axis line{stroke:#b9c0c7;stroke-width:1}\n"
        ".axis line.gridline{stroke:#eceef1}\n"
        "svg.chart text.ptitle{font-weight:600;fill:#1f2328}\n"
        ".multiples{display:grid;grid-template-columns:minmax(0,1fr) "
        "minmax(0,1fr);gap:14px 24px}\n"
        "figure{margin:0;min-width:0}\n"
        "figcaption{display:flex;gap:8px;align-items:baseline;"
        "font-size:12.5px;min-width:0}\n"
        ".ident{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"
        "\"Liberation Mono\",\"DejaVu Sans Mono\",monospace;flex:1 1 auto;"
        "min-width:0;overflow:hidden;text-overflow:ellipsis;"
        "white-space:nowrap}\n"
        ".badge{border-radius:3px;padding:0 6px;font-size:11.5px;"
        "white-space:nowrap;background:#fde8ea;color:#a8162a}\n"
        ".badge.benign{background:#eef1f4;color:var(--muted)}\n"
        ".peak{color:var(--muted);white-space:nowrap;"
        "font-variant-numeric:tabular-nums}\n"
        "footer{color:var(--muted);font-size:12px;text-align:center;"
        "margin-top:8px}\n"
        "@media print{body{background:#fff}.page{max-width:none;"
        "padding:0}.panel,figure,.card{break-inside:avoid}}\n"
        "@page{size:A4 landscape;margin:10mm}\n";

static void mg_report_head(FILE *fp, const struct mg_report *rep) {
        char a[32], b[32], d[32];

        fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
              "<meta charset=\"utf-8\">\n"
              "<meta name=\"viewport\" "
              "content=\"width=device-width,initial-scale=1\">\n<title>",
              fp);
        mg_report_esc(fp, rep->title);
        fprintf(fp, "</title>\n<style>\n%s</style>\n</head>\n<body>\n"
                    "<div class=\"page\">\n<header>\n<h1>",
                mg_report_css);
        mg_report_esc(fp, rep->title);
        fputs("</h1>\n", fp);
        if (rep->subtitle) {
                fputs("<p>", fp);
                mg_report_esc(fp, rep->subtitle);
                fputs("</p>\n", fp);
        }
        if (rep->end_ms > rep->start_ms)
                fprintf(fp, "<p>Event time %s \xe2\x80\x93 %s UTC "
                            "(%s)</p>\n",
                        mg_report_time(a, sizeof(a), rep->start_ms,
                                       MG_REPORT_TIME_FULL),
                        mg_report_time(b, sizeof(b), rep->end_ms,
                                       MG_REPORT_TIME_FULL),
                        mg_report_dur(d, sizeof(d),
                                      (double)(rep->end_ms - rep->start_ms)));
        fputs("</header>\n", fp);
}

static void mg_report_card(FILE *fp, const char *key, const char *value,
                           const char *detail) {
        fprintf(fp, "<div class=\"card\"><div class=\"k\">%s</div>"
                    "<div class=\"v\">%s</div><div class=\"d\">%s</div>"
                    "</div>\n",
                key, value, detail);
}

static void mg_report_cards(FILE *fp, const struct mg_report *rep) {
        const struct mg_report_row *all = rep->row_cnt ? &rep->rows[0] : NULL;
        char v[64], d[128], n1[32], n2[32];

        fputs("<div class=\"cards\">\n", fp);
        mg_report_count(v, sizeof(v), rep->events);
        mg_report_card(fp, "Events replayed", v, "auth, usage and signals");

        if (all && !isnan(all->auc))
                snprintf(v, sizeof(v), "%.3f", all->auc);
        else
                snprintf(v, sizeof(v), "\xe2\x80\x94");
        mg_report_card(fp, "ROC AUC", v, "identity-hour risk, overall");

        mg_report_pct(v, sizeof(v), all ? all->tpr_at_1fpr : NAN);
        mg_report_card(fp, "TPR @ 1% FPR", v,
                       "attack hours caught at 1% false alarms");

        if (all && all->attacks) {
                snprintf(v, sizeof(v), "%zu / %zu", all->detected,
                         all->attacks);
                mg_report_pct(n1, sizeof(n1),
                              (double)all->detected / (double)all->attacks);
                snprintf(d, sizeof(d), "%s of labelled attacks", n1);
        } else {
                snprintf(v, sizeof(v), "\xe2\x80\x94");
                snprintf(d, sizeof(d), "no labelled attacks");
        }
        mg_report_card(fp, "Attacks detected", v, d);

        mg_report_dur(v, sizeof(v), all ? all->median_ttd_ms : NAN);
        mg_report_card(fp, "Time to detect", v,
                       "median, attack start to first narrow, step-up or "
                       "deny");

        mg_report_pct(v, sizeof(v),
                      rep->benign_requests
                              ? (double)rep->benign_hurt /
                                        (double)rep->benign_requests
                              : NAN);
        snprintf(d, sizeof(d), "%s of %s benign requests narrowed or denied",
                 mg_report_count(n1, sizeof(n1), rep->benign_hurt),
                 mg_report_count(n2, sizeof(n2), rep->benign_requests));
        mg_report_card(fp, "Benign hurt", v, d);
        fputs("</div>\n", fp);
}

/*
 * Detection-quality table.
 */

static void mg_report_table(FILE *fp, const struct mg_report *rep) {
        const struct mg_report_row *row;
        char a[32], b[32], c[32];
        size_t i;

        fputs("<section class=\"panel\" id=\"quality\">\n"
              "<h2>Detection quality by attack type</h2>\n"
              "<p class=\"note\">Identity-hours inside an attack window are "
              "positives, all others negatives; AUC and TPR rank their "
              "risk. Time to detect runs from the attack's start to its "
              "identity's first narrow, step-up or deny.</p>\n",
              fp);
        if (rep->row_cnt == 0) {
                mg_report_nodata(fp, "no detection-quality rows");
                fputs("</section>\n", fp);
                return;
        }
        fputs("<table>\n<thead><tr><th>Attack type</th><th>Attacks</th>"
              "<th>Detected</th><th>Positive hours</th>"
              "<th>Negative hours</th><th>ROC AUC</th>"
              "<th>TPR @ 1% FPR</th><th>Median time to detect</th></tr>"
              "</thead>\n<tbody>\n",
              fp);
        for (i = 0; i < rep->row_cnt; i++) {
                row = &rep->rows[i];
                fprintf(fp, "<tr%s><td class=\"name\" title=\"",
                        i == 0 ? " class=\"overall\"" : "");
                mg_report_esc(fp, row->name);
                fputs("\">", fp);
                mg_report_esc(fp, row->name);
                fprintf(fp, "</td><td>%s</td>",
                        mg_report_count(a, sizeof(a), row->attacks));
                if (row->attacks)
                        fprintf(fp, "<td>%zu <span class=\"muted\">(%s)"
                                    "</span></td>",
                                row->detected,
                                mg_report_pct(b, sizeof(b),
                                              (double)row->detected /
                                                      (double)row->attacks));
                else
                        fprintf(fp, "<td class=\"muted\">\xe2\x80\x94</td>");
                fprintf(fp, "<td>%s</td><td>%s</td>",
                        mg_report_count(a, sizeof(a), row->positives),
                        mg_report_count(b, sizeof(b), row->negatives));
                if (isnan(row->auc))
                        snprintf(c, sizeof(c), "\xe2\x80\x94");
                else
                        snprintf(c, sizeof(c), "%.3f", row->auc);
                fprintf(fp, "<td>%s</td><td>%s</td><td>%s</td></tr>\n", c,
                        mg_report_pct(a, sizeof(a), row->tpr_at_1fpr),
                        mg_report_dur(b, sizeof(b), row->median_ttd_ms));
        }
        fputs("</tbody>\n</table>\n</section>\n", fp);
}

/*
 * Score distributions.
 */

static void mg_report_histogram(const double *v, size_t n,
                                uint64_t bins[MG_REPORT_BINS]) {
        size_t i;
        int b;

        memset(bins, 0, MG_REPORT_BINS * sizeof(bins[0]));
        for (i = 0; i < n; i++) {
                if (isnan(v[i]))
                        continue;
                if (v[i] <= 0)
                        b = 0;
                else if (v[i] >= 100)
                        b = MG_REPORT_BINS - 1;
                else
                        b = (int)(v[i] / (100.0 / MG_REPORT_BINS));
                if (b >= MG_REPORT_BINS)
                        b = MG_REPORT_BINS - 1;
                bins[b]++;
        }
}

/* y of a count on the log axis 10^lo .. 10^hi. */
static double mg_report_logy(const struct mg_report_frame *fr, uint64_t n,
                             double lo, double hi) {
        return mg_report_y(fr, log10((double)n), lo, hi);
}

static void mg_report_bars(FILE *fp, const struct mg_report_frame *fr,
                           const uint64_t bins[MG_REPORT_BINS], double lo,
                           double hi, const char *color, const char *what) {
        double bw = fr->w / MG_REPORT_BINS, y, base = fr->y0 + fr->h;
        char n[32];
        int b;

        fprintf(fp, "<g fill=\"%s\" fill-opacity=\"0.45\" stroke=\"%s\" "
                    "stroke-opacity=\"0.9\">",
                color, color);
        for (b = 0; b < MG_REPORT_BINS; b++) {
                if (!bins[b])
                        continue;
                y = mg_report_logy(fr, bins[b], lo, hi);
                fprintf(fp, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                            "height=\"%.1f\"><title>%s: %s identity-hours "
                            "at risk %d\xe2\x80\x93%d</title></rect>",
                        fr->x0 + b * bw + 1, y, bw - 2, base - y, what,
                        mg_report_count(n, sizeof(n), bins[b]),
                        b * (100 / MG_REPORT_BINS),
                        (b + 1) * (100 / MG_REPORT_BINS));
        }
        fputs("</g>", fp);
}

static void mg_report_distributions(FILE *fp, const struct mg_report *rep) {
        static const char *const decade_names[] = {"1",   "10",   "100",
                                                   "1k",  "10k",  "100k",
                                                   "1M",  "10M",  "100M"};
        struct mg_report_frame fr = {560, 250, 52, 10, 560 - 52 - 14,
                                     250 - 10 - 44, 0, 1};
        uint64_t benign[MG_REPORT_BINS], attack[MG_REPORT_BINS], max = 0;
        double lo = log10(0.5), hi, y, x;
        char a[32], b[32], label[32];
        int i, decades;

        fputs("<section class=\"panel\" id=\"distributions\">\n"
              "<h2>Risk of identity-hours, benign vs attack</h2>\n"
              "<p class=\"note\">Overlaid histograms, bins of 5 risk points;"
              " counts on a log scale since benign hours dominate.</p>\n",
              fp);
        mg_report_histogram(rep->benign_scores, rep->benign_cnt, benign);
        mg_report_histogram(rep->attack_scores, rep->attack_cnt, attack);
        for (i = 0; i < MG_REPORT_BINS; i++) {
                if (benign[i] > max)
                        max = benign[i];
                if (attack[i] > max)
                        max = attack[i];
        }
        if (max == 0) {
                mg_report_nodata(fp, "no identity-hour scores");
                fputs("</section>\n", fp);
                return;
        }
        fprintf(fp, "<div class=\"legend\"><span><i class=\"sw\" "
                    "style=\"background:%s;opacity:.6\"></i>benign hours "
                    "(%s)</span><span><i class=\"sw\" style=\"background:%s;"
                    "opacity:.6\"></i>attack hours (%s)</span></div>\n",
                C_BENIGN, mg_report_count(a, sizeof(a), rep->benign_cnt),
                C_ATTACK, mg_report_count(b, sizeof(b), rep->attack_cnt));
        decades = (int)ceil(log10((double)max) - 1e-12);
        if (decades < 1)
                decades = 1;
        hi = decades;
        mg_report_svg_open(fp, &fr, "histogram of identity-hour risk");
        /* Value axis: one grid line per decade. */
        fputs("<g class=\"axis\">", fp);
        for (i = 0; i <= decades; i++) {
                y = mg_report_y(&fr, i, lo, hi);
                if (i < (int)(sizeof(decade_names) /
                              sizeof(decade_names[0])))
                        snprintf(label, sizeof(label), "%s",
                                 decade_names[i]);
                else
                        snprintf(label, sizeof(label), "1e%d", i);
                fprintf(fp, "<line class=\"gridline\" x1=\"%.1f\" "
                            "y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
                            "<text x=\"%.1f\" y=\"%.1f\" "
                            "text-anchor=\"end\">%s</text>",
                        fr.x0, y, fr.x0 + fr.w, y, fr.x0 - 6, y + 4, label);
        }
        fprintf(fp, "<text x=\"12\" y=\"%.1f\" text-anchor=\"middle\" "
                    "transform=\"rotate(-90 12 %.1f)\">identity-hours"
                    "</text></g>",
                fr.y0 + fr.h / 2, fr.y0 + fr.h / 2);
        mg_report_bars(fp, &fr, benign, lo, hi, C_BENIGN, "benign");
        mg_report_bars(fp, &fr, attack, lo, hi, C_ATTACK, "attack");
        /* Risk axis. */
        fprintf(fp, "<g class=\"axis\"><line x1=\"%.1f\" y1=\"%.1f\" "
                    "x2=\"%.1f\" y2=\"%.1f\"/>",
                fr.x0, fr.y0 + fr.h, fr.x0 + fr.w, fr.y0 + fr.h);
        for (i = 0; i <= 100; i += 10) {
                x = fr.x0 + fr.w * i / 100;
                fprintf(fp, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
                            "y2=\"%.1f\"/><text x=\"%.1f\" y=\"%.1f\" "
                            "text-anchor=\"middle\">%d</text>",
                        x, fr.y0 + fr.h, x, fr.y0 + fr.h + 4, x,
                        fr.y0 + fr.h + 16, i);
        }
        fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">"
                    "risk score of the hour (0\xe2\x80\x93" "100)</text></g>",
                fr.x0 + fr.w / 2, fr.height - 6);
        fputs("</svg>\n</section>\n", fp);
}

/*
 * Per-signal contribution.
 */

static void mg_report_signals(FILE *fp, const struct mg_report *rep) {
        struct mg_report_frame fr = {560, 0, 150, 26, 200, 0, 0, 1};
        int order[MG_SIG__CNT], i, j, k;
        double total = 0, max = 0, y, bw;
        uint64_t points;
        char a[32], b[32];

        fputs("<section class=\"panel\" id=\"signals\">\n"
              "<h2>Risk points by signal</h2>\n"
              "<p class=\"note\">Total risk points each signal added over "
              "the replay, and how often it fired.</p>\n",
              fp);
        if (rep->signal_points) {
                for (i = 0; i < MG_SIG__CNT; i++) {
                        if (rep->signal_points[i] > 0) {
                                total += rep->signal_points[i];
                                if (rep->signal_points[i] > max)
                                        max = rep->signal_points[i];
                        }
                }
        }
        if (!(total > 0)) {
                mg_report_nodata(fp, "no signal contributions");
                fputs("</section>\n", fp);
                return;
        }
        /* Insertion sort by points, descending; stable on equal points. */
        for (i = 0; i < MG_SIG__CNT; i++) {
                for (j = i; j > 0; j--) {
                        k = order[j - 1];
                        if (!(rep->signal_points[i] > rep->signal_points[k]))
                                break;
                        order[j] = k;
                }
                order[j] = i;
        }
        fr.h = MG_SIG__CNT * 22;
        fr.height = fr.y0 + fr.h + 4;
        mg_report_svg_open(fp, &fr, "risk points by signal");
        fprintf(fp, "<g class=\"axis\"><text x=\"480\" y=\"14\" "
                    "text-anchor=\"end\">points</text>");
        if (rep->signal_fires)
                fputs("<text x=\"552\" y=\"14\" text-anchor=\"end\">fires"
                      "</text>",
                      fp);
        fputs("</g>", fp);
        for (j = 0; j < MG_SIG__CNT; j++) {
                i = order[j];
                y = fr.y0 + j * 22;
                bw = rep->signal_points[i] > 0
                             ? fr.w * rep->signal_points[i] / max
                             : 0;
                fputs("<g><text x=\"140\" text-anchor=\"end\" ", fp);
                fprintf(fp, "y=\"%.1f\">", y + 15);
                mg_report_esc(fp, mg_signal_names[i]);
                fputs("</text>", fp);
                if (bw > 0)
                        fprintf(fp, "<rect x=\"%.1f\" y=\"%.1f\" "
                                    "width=\"%.1f\" height=\"14\" rx=\"2\" "
                                    "fill=\"%s\"/><text x=\"%.1f\" "
                                    "y=\"%.1f\">%s</text>",
                                fr.x0, y + 4, bw < 1 ? 1 : bw, C_SIGNAL,
                                fr.x0 + (bw < 1 ? 1 : bw) + 5, y + 15,
                                mg_report_pct(a, sizeof(a),
                                              rep->signal_points[i] / total));
                else
                        fprintf(fp, "<line class=\"gridline\" x1=\"%.1f\" "
                                    "y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                                    "stroke=\"#dce1e6\"/>",
                                fr.x0, y + 4, fr.x0, y + 18);
                points = rep->signal_points[i] > 0
                                 ? (uint64_t)(rep->signal_points[i] + 0.5)
                                 : 0;
                fprintf(fp, "<text x=\"480\" y=\"%.1f\" "
                            "text-anchor=\"end\">%s</text>",
                        y + 15, mg_report_count(a, sizeof(a), points));
                if (rep->signal_fires)
                        fprintf(fp, "<text x=\"552\" y=\"%.1f\" "
                                    "text-anchor=\"end\">%s</text>",
                                y + 15,
                                mg_report_count(b, sizeof(b),
                                                rep->signal_fires[i]));
                fputs("</g>", fp);
        }
        fputs("</svg>\n</section>\n", fp);
}

/*
 * Decision mix over time.
 */

/* Outcomes bottom-up: the rare ones at the base. The friction plot
 * stacks all but the last (allow). */
static const enum mg_outcome mg_report_stack[MG_DECISION__CNT] = {
        MG_DECISION_DENY, MG_DECISION_STEP_UP, MG_DECISION_NARROW,
        MG_DECISION_ALLOW,
};

/* Counts of buckets [i, end) by outcome into bar; returns their total
 * and, in *hurtp, the total of all but allow. */
static uint64_t mg_report_mix_sum(const struct mg_report *rep, size_t i,
                                  size_t end,
                                  uint64_t bar[MG_DECISION__CNT],
                                  uint64_t *hurtp) {
        uint64_t tot = 0;
        int o;

        memset(bar, 0, MG_DECISION__CNT * sizeof(bar[0]));
        for (; i < end; i++)
                for (o = 0; o < MG_DECISION__CNT; o++)
                        bar[o] += rep->decision_mix[i][o];
        for (o = 0; o < MG_DECISION__CNT; o++)
                tot += bar[o];
        *hurtp = tot - bar[MG_DECISION_ALLOW];
        return tot;
}

/* One stacked bar of the first layers outcomes of mg_report_stack, on a
 * 0..top axis, in whole counts so its top is exactly its total. */
static void mg_report_mix_bar(FILE *fp, const struct mg_report_frame *fr,
                              const uint64_t bar[MG_DECISION__CNT],
                              int layers, double top, double x1, double x2) {
        double gap = x2 - x1 > 3 ? 1 : 0, y, h;
        uint64_t below = 0;
        int k, o;

        for (k = 0; k < layers; k++) {
                o = mg_report_stack[k];
                if (!bar[o])
                        continue;
                y = mg_report_y(fr, (double)(below + bar[o]), 0, top);
                h = mg_report_y(fr, (double)below, 0, top) - y;
                fprintf(fp, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" "
                            "height=\"%.2f\" fill=\"%s\"/>",
                        x1 + gap / 2, y, x2 - x1 - gap, h,
                        mg_report_outcome_colors[o]);
                below += bar[o];
        }
}

/* The 0..*topp axis of a count plot with its title above it. */
static void mg_report_mix_axis(FILE *fp, const struct mg_report_frame *fr,
                               uint64_t max, const char *title,
                               double *topp) {
        double step = mg_report_nice_step((double)max, 4);

        if (step < 1) /* whole requests */
                step = 1;
        *topp = max ? ceil((double)max / step) * step : 1;
        mg_report_value_axis(fp, fr, *topp, step);
        fprintf(fp, "<text class=\"ptitle\" x=\"%.1f\" y=\"%.1f\">%s"
                    "</text><line class=\"base\" x1=\"%.1f\" y1=\"%.1f\" "
                    "x2=\"%.1f\" y2=\"%.1f\"/>",
                fr->x0, fr->y0 - 8, title, fr->x0, fr->y0 + fr->h,
                fr->x0 + fr->w, fr->y0 + fr->h);
}

/* Two plots on one time axis: every decision (allow dominates), and below
 * it narrow, step-up and deny alone on their own scale, where their
 * changes over time can be read. */
static void mg_report_mix(FILE *fp, const struct mg_report *rep) {
        struct mg_report_frame all = {1140, 340, 60, 26, 1140 - 60 - 20,
                                      140, 0, 1};
        struct mg_report_frame hurt = {1140, 340, 60, 196, 1140 - 60 - 20,
                                       110, 0, 1};
        uint64_t sum[MG_DECISION__CNT] = {0}, bar[MG_DECISION__CNT];
        uint64_t tot, hurt_tot, grand = 0, max = 0, max_hurt = 0;
        double top_all, top_hurt, x1, x2;
        char a[32], b[32], t[32], d[32];
        size_t group, i, end;
        int o;

        fputs("<section class=\"panel\" id=\"mix\">\n"
              "<h2>Decisions over time</h2>\n",
              fp);
        if (rep->bucket_cnt == 0) {
                fputs("<p class=\"note\">Issuance decisions by outcome."
                      "</p>\n",
                      fp);
                mg_report_nodata(fp, "no decision buckets");
                fputs("</section>\n", fp);
                return;
        }
        group = (rep->bucket_cnt + MG_REPORT_BARS_MAX - 1) /
                MG_REPORT_BARS_MAX;
        for (i = 0; i < rep->bucket_cnt; i += group) {
                end = i + group < rep->bucket_cnt ? i + group
                                                  : rep->bucket_cnt;
                tot = mg_report_mix_sum(rep, i, end, bar, &hurt_tot);
                for (o = 0; o < MG_DECISION__CNT; o++)
                        sum[o] += bar[o];
                if (tot > max)
                        max = tot;
                if (hurt_tot > max_hurt)
                        max_hurt = hurt_tot;
        }
        for (o = 0; o < MG_DECISION__CNT; o++)
                grand += sum[o];
        fprintf(fp, "<p class=\"note\">Issuance decisions by outcome, "
                    "stacked, per %s of event time; below, the ones that "
                    "were not allowed, on their own scale.</p>\n",
                mg_report_dur(d, sizeof(d),
                              (double)group * (double)rep->bucket_ms));
        if (grand == 0) {
                mg_report_nodata(fp, "no decisions in any bucket");
                fputs("</section>\n", fp);
                return;
        }
        fputs("<div class=\"legend\">", fp);
        for (o = 0; o < MG_DECISION__CNT; o++)
                fprintf(fp, "<span><i class=\"sw\" style=\"background:%s\">"
                            "</i>%s %s (%s)</span>",
                        mg_report_outcome_colors[o], mg_outcome_names[o],
                        mg_report_count(a, sizeof(a), sum[o]),
                        mg_report_pct(b, sizeof(b),
                                      (double)sum[o] / (double)grand));
        fputs("</div>\n", fp);

        all.tmin = hurt.tmin = rep->start_ms;
        all.tmax = hurt.tmax =
                rep->start_ms + (int64_t)rep->bucket_cnt * rep->bucket_ms;
        mg_report_svg_open(fp, &all, "decisions over time by outcome");
        fputs("<g class=\"axis\">", fp);
        mg_report_mix_axis(fp, &all, max, "all decisions (requests)",
                           &top_all);
        mg_report_mix_axis(fp, &hurt, max_hurt,
                           "narrow, step-up and deny (requests)", &top_hurt);
        fputs("</g>", fp);
        if (max_hurt == 0)
                fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" "
                            "text-anchor=\"middle\">every request was "
                            "allowed</text>",
                        hurt.x0 + hurt.w / 2, hurt.y0 + hurt.h / 2);
        for (i = 0; i < rep->bucket_cnt; i += group) {
                end = i + group < rep->bucket_cnt ? i + group
                                                  : rep->bucket_cnt;
                if (mg_report_mix_sum(rep, i, end, bar, &hurt_tot) == 0)
                        continue;
                x1 = mg_report_x(&all, rep->start_ms +
                                               (int64_t)i * rep->bucket_ms);
                x2 = mg_report_x(&all, rep->start_ms +
                                               (int64_t)end * rep->bucket_ms);
                /* One group per bar: hovering either plot shows all. */
                fprintf(fp, "<g><title>%s UTC",
                        mg_report_time(t, sizeof(t),
                                       rep->start_ms +
                                               (int64_t)i * rep->bucket_ms,
                                       MG_REPORT_TIME_FULL));
                for (o = 0; o < MG_DECISION__CNT; o++)
                        fprintf(fp, " \xc2\xb7 %s %s", mg_outcome_names[o],
                                mg_report_count(a, sizeof(a), bar[o]));
                fputs("</title>", fp);
                mg_report_mix_bar(fp, &all, bar, MG_DECISION__CNT, top_all,
                                  x1, x2);
                mg_report_mix_bar(fp, &hurt, bar, MG_DECISION__CNT - 1,
                                  top_hurt, x1, x2);
                fputs("</g>", fp);
        }
        mg_report_time_axis(fp, &hurt, 12);
        fputs("</svg>\n</section>\n", fp);
}

/*
 * Risk timelines.
 */

/* The indices of the samples to draw, in order: all finite ones when they
 * fit, else the lowest and highest of each of MG_REPORT_COLUMNS time
 * columns (a spike is a column's highest, so it survives). Returns how
 * many; idx holds MG_REPORT_SERIES_MAX. */
static size_t mg_report_downsample(const struct mg_report_frame *fr,
                                   const struct mg_report_timeline *tl,
                                   size_t idx[MG_REPORT_SERIES_MAX]) {
        size_t lo[MG_REPORT_COLUMNS], hi[MG_REPORT_COLUMNS], i, n = 0;
        unsigned char used[MG_REPORT_COLUMNS] = {0};
        double f;
        int c;

        for (i = 0; i < tl->cnt; i++)
                n += !isnan(tl->pts[i].risk);
        if (n <= MG_REPORT_SERIES_MAX) {
                for (i = 0, n = 0; i < tl->cnt; i++)
                        if (!isnan(tl->pts[i].risk))
                                idx[n++] = i;
                return n;
        }
        for (i = 0; i < tl->cnt; i++) {
                if (isnan(tl->pts[i].risk))
                        continue;
                f = (mg_report_x(fr, tl->pts[i].ts_ms) - fr->x0) / fr->w;
                c = (int)(f * MG_REPORT_COLUMNS);
                if (c >= MG_REPORT_COLUMNS)
                        c = MG_REPORT_COLUMNS - 1;
                if (!used[c]) {
                        used[c] = 1;
                        lo[c] = hi[c] = i;
                        continue;
                }
                if (tl->pts[i].risk < tl->pts[lo[c]].risk)
                        lo[c] = i;
                if (tl->pts[i].risk > tl->pts[hi[c]].risk)
                        hi[c] = i;
        }
        for (c = 0, n = 0; c < MG_REPORT_COLUMNS; c++) {
                if (!used[c])
                        continue;
                idx[n++] = lo[c] < hi[c] ? lo[c] : hi[c];
                if (lo[c] != hi[c])
                        idx[n++] = lo[c] < hi[c] ? hi[c] : lo[c];
        }
        return n;
}

/* The level thresholds replayed, else the scoring defaults
 * (mg_scoring_conf_props). */
static void mg_report_levels(const struct mg_report *rep,
                             struct mg_report_levels *lv) {
        const struct mg_conf_prop *p;
        size_t i;

        if (rep->scoring) {
                lv->medium = rep->scoring->level_medium;
                lv->high = rep->scoring->level_high;
                lv->critical = rep->scoring->level_critical;
                return;
        }
        lv->medium = 25;
        lv->high = 50;
        lv->critical = 80;
        for (i = 0; i < mg_scoring_conf_prop_cnt; i++) {
                p = &mg_scoring_conf_props[i];
                if (!p->def)
                        continue;
                if (!strcmp(p->name, "scoring.levels.medium"))
                        lv->medium = strtod(p->def, NULL);
                else if (!strcmp(p->name, "scoring.levels.high"))
                        lv->high = strtod(p->def, NULL);
                else if (!strcmp(p->name, "scoring.levels.critical"))
                        lv->critical = strtod(p->def, NULL);
        }
}

static double mg_report_risk(float r) {
        if (r < 0)
                return 0;
        if (r > 100)
                return 100;
        return r;
}

/* y of a sample on the 0..100 risk axis. */
static double mg_report_risk_y(const struct mg_report_frame *fr,
                               const struct mg_report_point *pt) {
        return mg_report_y(fr, mg_report_risk(pt->risk), 0, 100);
}

static void mg_report_timeline(FILE *fp, const struct mg_report_frame *fr,
                               const struct mg_report_levels *lv,
                               const struct mg_report_timeline *tl) {
        size_t idx[MG_REPORT_SERIES_MAX], n, i;
        const double lines[3] = {lv->medium, lv->high, lv->critical};
        static const char *const colors[3] = {C_MEDIUM, C_HIGH, C_CRIT};
        double peak = NAN, r, x1, x2, y;
        int k;

        for (i = 0; i < tl->cnt; i++) {
                r = mg_report_risk(tl->pts[i].risk);
                if (!isnan(r) && (isnan(peak) || r > peak))
                        peak = r;
        }
        fputs("<figure><figcaption><span class=\"ident\" title=\"", fp);
        mg_report_esc(fp, tl->identity);
        fputs("\">", fp);
        mg_report_esc(fp, tl->identity);
        fputs("</span>", fp);
        if (tl->attack) {
                fputs("<span class=\"badge\">", fp);
                mg_report_esc(fp, tl->attack);
                fputs("</span>", fp);
        } else {
                fputs("<span class=\"badge benign\">benign</span>", fp);
        }
        if (!isnan(peak))
                fprintf(fp, "<span class=\"peak\">peak %.1f</span>", peak);
        fputs("</figcaption>\n", fp);
        mg_report_svg_open(fp, fr, tl->identity);
        if (tl->attack) {
                x1 = mg_report_x(fr, tl->attack_start_ms);
                x2 = mg_report_x(fr, tl->attack_end_ms);
                if (x2 - x1 < 1.5) /* a short attack stays visible */
                        x2 = x1 + 1.5;
                fprintf(fp, "<g fill=\"%s\" stroke=\"%s\" "
                            "stroke-opacity=\"0.35\"><rect x=\"%.1f\" "
                            "y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                            "fill-opacity=\"0.10\" stroke=\"none\"/>"
                            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
                            "y2=\"%.1f\"/><line x1=\"%.1f\" y1=\"%.1f\" "
                            "x2=\"%.1f\" y2=\"%.1f\"/></g>",
                        C_ATTACK, C_ATTACK, x1, fr->y0, x2 - x1, fr->h, x1,
                        fr->y0, x1, fr->y0 + fr->h, x2, fr->y0, x2,
                        fr->y0 + fr->h);
        }
        mg_report_value_axis(fp, fr, 100, 50);
        for (k = 0; k < 3; k++) {
                if (!(lines[k] > 0 && lines[k] < 100))
                        continue;
                y = mg_report_y(fr, lines[k], 0, 100);
                fprintf(fp, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
                            "y2=\"%.1f\" stroke=\"%s\" stroke-opacity="
                            "\"0.55\" stroke-dasharray=\"3 3\"/>",
                        fr->x0, y, fr->x0 + fr->w, y, colors[k]);
        }
        n = mg_report_downsample(fr, tl, idx);
        if (n == 0) {
                fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" "
                            "text-anchor=\"middle\">no samples</text>",
                        fr->x0 + fr->w / 2, fr->y0 + fr->h / 2);
        } else {
                /* The area under the line, then the line. */
                fprintf(fp, "<path fill=\"%s\" fill-opacity=\"0.12\" "
                            "d=\"M%.1f %.1f",
                        C_AREA, mg_report_x(fr, tl->pts[idx[0]].ts_ms),
                        fr->y0 + fr->h);
                for (i = 0; i < n; i++)
                        fprintf(fp, "L%.1f %.1f",
                                mg_report_x(fr, tl->pts[idx[i]].ts_ms),
                                mg_report_risk_y(fr, &tl->pts[idx[i]]));
                fprintf(fp, "L%.1f %.1fZ\"/>",
                        mg_report_x(fr, tl->pts[idx[n - 1]].ts_ms),
                        fr->y0 + fr->h);
                fprintf(fp, "<polyline class=\"risk\" fill=\"none\" "
                            "stroke=\"%s\" stroke-width=\"1.4\" "
                            "stroke-linejoin=\"round\" points=\"",
                        C_RISK);
                for (i = 0; i < n; i++)
                        fprintf(fp, "%s%.1f,%.1f", i ? " " : "",
                                mg_report_x(fr, tl->pts[idx[i]].ts_ms),
                                mg_report_risk_y(fr, &tl->pts[idx[i]]));
                fputs("\"/>", fp);
        }
        mg_report_time_axis(fp, fr, 8);
        fputs("</svg></figure>\n", fp);
}

static void mg_report_timelines(FILE *fp, const struct mg_report *rep) {
        struct mg_report_frame fr = {560, 150, 34, 8, 560 - 34 - 16,
                                     150 - 8 - 24, 0, 1};
        const struct mg_report_timeline *tl;
        struct mg_report_levels lv;
        size_t i, j;

        mg_report_levels(rep, &lv);
        fputs("<section class=\"panel\" id=\"timelines\">\n"
              "<h2>Risk over time, riskiest identities</h2>\n",
              fp);
        if (rep->timeline_cnt == 0) {
                fputs("<p class=\"note\">Live risk score (0\xe2\x80\x93"
                      "100) of the riskiest identities.</p>\n",
                      fp);
                mg_report_nodata(fp, "no identity timelines");
                fputs("</section>\n", fp);
                return;
        }
        fprintf(fp, "<p class=\"note\">Live risk score (0\xe2\x80\x93" "100) "
                    "on one shared time axis (UTC). Level thresholds are "
                    "the %s: medium %g, high %g, critical %g.</p>\n",
                rep->scoring ? "replayed settings" : "scoring defaults",
                lv.medium, lv.high, lv.critical);
        fprintf(fp, "<div class=\"legend\"><span><i class=\"sw line\" "
                    "style=\"border-color:%s\"></i>risk</span><span><i "
                    "class=\"sw\" style=\"background:%s;opacity:.25\"></i>"
                    "attack window</span><span><i class=\"sw dash\" "
                    "style=\"border-color:%s\"></i>medium</span><span><i "
                    "class=\"sw dash\" style=\"border-color:%s\"></i>high"
                    "</span><span><i class=\"sw dash\" style=\"border-"
                    "color:%s\"></i>critical</span></div>\n",
                C_RISK, C_ATTACK, C_MEDIUM, C_HIGH, C_CRIT);
        /* One time axis for all: the replay's span, widened to every
         * sample so none is clamped. */
        fr.tmin = rep->start_ms;
        fr.tmax = rep->end_ms;
        for (i = 0; i < rep->timeline_cnt; i++) {
                tl = &rep->timelines[i];
                for (j = 0; j < tl->cnt; j++) {
                        if (tl->pts[j].ts_ms < fr.tmin)
                                fr.tmin = tl->pts[j].ts_ms;
                        if (tl->pts[j].ts_ms > fr.tmax)
                                fr.tmax = tl->pts[j].ts_ms;
                }
        }
        if (fr.tmax <= fr.tmin)
                fr.tmax = fr.tmin + MIN_MS;
        fputs("<div class=\"multiples\">\n", fp);
        for (i = 0; i < rep->timeline_cnt; i++)
                mg_report_timeline(fp, &fr, &lv, &rep->timelines[i]);
        fputs("</div>\n</section>\n", fp);
}

/*
 * Validation and the whole page.
 */

static int mg_report_time_ok(int64_t t) {
        return t >= -MG_REPORT_TIME_MAX && t <= MG_REPORT_TIME_MAX;
}

/* One timeline: identity, samples in range and in time order, attack
 * window. */
static mg_err_t mg_report_check_timeline(const struct mg_report_timeline *tl,
                                         size_t i, char *errstr,
                                         size_t errstr_size) {
        size_t j;

        if (!tl->identity)
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "report: timelines[%zu].identity is NULL",
                                  i);
        if (tl->cnt && !tl->pts)
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "report: timelines[%zu].pts is NULL with "
                                  "cnt %zu",
                                  i, tl->cnt);
        for (j = 0; j < tl->cnt; j++) {
                if (!mg_report_time_ok(tl->pts[j].ts_ms))
                        return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                          "report: timelines[%zu].pts[%zu]."
                                          "ts_ms %" PRId64 " is out of "
                                          "range",
                                          i, j, tl->pts[j].ts_ms);
                if (j > 0 && tl->pts[j].ts_ms < tl->pts[j - 1].ts_ms)
                        return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                          "report: timelines[%zu].pts[%zu] "
                                          "is earlier than the sample "
                                          "before it: samples must be in "
                                          "time order",
                                          i, j);
        }
        if (!tl->attack)
                return MG_OK;
        if (!mg_report_time_ok(tl->attack_start_ms) ||
            !mg_report_time_ok(tl->attack_end_ms))
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "report: timelines[%zu]: attack window "
                                  "%" PRId64 "..%" PRId64 " is out of range",
                                  i, tl->attack_start_ms, tl->attack_end_ms);
        if (tl->attack_end_ms < tl->attack_start_ms)
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "report: timelines[%zu]: attack window "
                                  "ends (%" PRId64 ") before it starts "
                                  "(%" PRId64 ")",
                                  i, tl->attack_end_ms, tl->attack_start_ms);
        return MG_OK;
}

static mg_err_t mg_report_check(const struct mg_report *rep, char *errstr,
                                size_t errstr_size) {
        mg_err_t err;
        size_t i;

#define MG_REPORT_NEED(arr, cnt)                                             \
        do {                                                                 \
                if ((cnt) && !(arr))                                         \
                        return mg_err_set(MG_ERR_INVALID, errstr,            \
                                          errstr_size,                       \
                                          "report: " #arr " is NULL with "   \
                                          #cnt " %zu",                       \
                                          (size_t)(cnt));                    \
        } while (0)

        if (!rep->title)
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "report: title is NULL");
        if (!mg_report_time_ok(rep->start_ms) ||
            !mg_report_time_ok(rep->end_ms))
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "report: start_ms %" PRId64 " or end_ms "
                                  "%" PRId64 " is out of range (beyond "
                                  "+-10^15 ms)",
                                  rep->start_ms, rep->end_ms);
        if (rep->end_ms < rep->start_ms)
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "report: end_ms %" PRId64 " is before "
                                  "start_ms %" PRId64,
                                  rep->end_ms, rep->start_ms);
        MG_REPORT_NEED(rep->timelines, rep->timeline_cnt);
        MG_REPORT_NEED(rep->benign_scores, rep->benign_cnt);
        MG_REPORT_NEED(rep->attack_scores, rep->attack_cnt);
        MG_REPORT_NEED(rep->decision_mix, rep->bucket_cnt);
        MG_REPORT_NEED(rep->rows, rep->row_cnt);
#undef MG_REPORT_NEED
        if (rep->bucket_cnt && rep->bucket_ms <= 0)
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "report: bucket_ms is %" PRId64 ", must be "
                                  "> 0 with %zu buckets",
                                  rep->bucket_ms, rep->bucket_cnt);
        if (rep->bucket_cnt &&
            (double)rep->start_ms +
                            (double)rep->bucket_cnt * (double)rep->bucket_ms >
                    (double)MG_REPORT_TIME_MAX)
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "report: %zu buckets of %" PRId64 " ms "
                                  "from start_ms %" PRId64 " end out of "
                                  "range (beyond 10^15 ms)",
                                  rep->bucket_cnt, rep->bucket_ms,
                                  rep->start_ms);
        for (i = 0; i < rep->timeline_cnt; i++)
                if ((err = mg_report_check_timeline(&rep->timelines[i], i,
                                                    errstr, errstr_size)))
                        return err;
        for (i = 0; i < rep->row_cnt; i++)
                if (!rep->rows[i].name)
                        return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                          "report: rows[%zu].name is NULL",
                                          i);
        return MG_OK;
}

mg_err_t mg_report_write_html(FILE *fp, const struct mg_report *rep,
                              char *errstr, size_t errstr_size) {
        mg_err_t err;

        if (!fp || !rep) {
                err = mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                 "report: %s is NULL", fp ? "rep" : "fp");
                goto out;
        }
        if ((err = mg_report_check(rep, errstr, errstr_size)))
                goto out;
        /* A failed write sets errno and the stream's error flag, which
         * later writes keep: both are read once at the end. */
        errno = 0;
        mg_report_head(fp, rep);
        mg_report_cards(fp, rep);
        mg_report_table(fp, rep);
        fputs("<div class=\"row2\">\n", fp);
        mg_report_distributions(fp, rep);
        mg_report_signals(fp, rep);
        fputs("</div>\n", fp);
        mg_report_mix(fp, rep);
        mg_report_timelines(fp, rep);
        fputs("<footer>mintgate replay report \xc2\xb7 self-contained: "
              "no scripts, no network</footer>\n</div>\n</body>\n</html>\n",
              fp);
        if (fflush(fp) != 0 || ferror(fp)) {
                err = mg_err_set(MG_ERR_IO, errstr, errstr_size,
                                 "report: writing the HTML failed: %s",
                                 errno ? strerror(errno) : "stream error");
                goto out;
        }
out:
        return err;
}
