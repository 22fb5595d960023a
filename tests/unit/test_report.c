/*
 * test_report.c — unit tests of the HTML report (analysis/mg_report.c).
 *
 * A realistic sample report (a week of a replay: 20 timelines of 5,040
 * samples each, 84,000 benign and 400 attack identity-hours, hourly
 * decision buckets, every signal, one row per attack type; all from a
 * fixed-seed generator, so the output is the same on every run) is written
 * to a temporary file and read back:
 *   - it is one HTML document with one <svg> per chart (one per timeline),
 *     each with the SVG namespace;
 *   - nothing can reach the network: no "http" but the SVG namespace, no
 *     script, no src=, url(), @import or <link>;
 *   - strings from outside are escaped wherever they appear (an identity
 *     `spiffe://x/<b>&"'` and an attack label with a <script> tag);
 *   - it stays small (< 2 MB).
 * With MG_REPORT_OUT set the sample is also written there (the headless
 * Chromium test tests/integration/test_report_render.py renders it).
 *
 * Then: empty inputs give a page with a "no data" note per section and no
 * chart; partly empty ones (a timeline without samples, buckets without
 * decisions) likewise; a 100,000-sample series is drawn with at most 600
 * points and keeps its single spike; inconsistent reports are refused with
 * the field's name and nothing written; a failing stream is MG_ERR_IO.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cmocka.h>
#include <math.h>

#include "mg_report.h"

#define HOUR_MS 3600000LL
#define DAY_MS  (24 * HOUR_MS)
#define T0      1794787200000LL /* Monday 2026-11-16T00:00:00Z */

#define NASTY_ID      "spiffe://x/<b>&\"'"
#define NASTY_ID_ESC  "spiffe://x/&lt;b&gt;&amp;&quot;&#39;"
#define NASTY_ATTACK  "<script>alert(1)</script>"
#define SVG_NS        "xmlns=\"http://www.w3.org/2000/svg\""

/*
 * Helpers.
 */

static uint64_t rng_state;

/* splitmix64 in [0, 1). */
static double rnd(void) {
        uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        z ^= z >> 31;
        return (double)(z >> 11) / 9007199254740992.0;
}

/* Non-overlapping occurrences of needle in hay. */
static size_t count(const char *hay, const char *needle) {
        size_t n = 0, len = strlen(needle);
        const char *p;

        for (p = strstr(hay, needle); p; p = strstr(p + len, needle))
                n++;
        return n;
}

/* The text between `<section ... id="id"` and its `</section>`, as a
 * malloc'd string; fails the test if there is no such section. */
static char *section(const char *html, const char *id) {
        char key[64];
        const char *p, *end;
        char *s;

        snprintf(key, sizeof(key), "id=\"%s\"", id);
        p = strstr(html, key);
        if (!p)
                fail_msg("no section %s", id);
        end = strstr(p, "</section>");
        assert_non_null(end);
        s = strndup(p, (size_t)(end - p));
        assert_non_null(s);
        return s;
}

/* Write rep to a temporary file and return its contents (malloc'd,
 * NUL-terminated); *errp gets the result, *lenp the size. */
static char *render(const struct mg_report *rep, mg_err_t *errp,
                    char *errstr, size_t errstr_size, size_t *lenp) {
        char path[] = "/tmp/mg_test_report_XXXXXX";
        FILE *fp;
        char *buf;
        long len;
        int fd;

        fd = mkstemp(path);
        assert_true(fd >= 0);
        fp = fdopen(fd, "w+");
        assert_non_null(fp);
        unlink(path);
        *errp = mg_report_write_html(fp, rep, errstr, errstr_size);
        assert_int_equal(fseek(fp, 0, SEEK_END), 0);
        len = ftell(fp);
        assert_true(len >= 0);
        rewind(fp);
        buf = malloc((size_t)len + 1);
        assert_non_null(buf);
        assert_int_equal(fread(buf, 1, (size_t)len, fp), (size_t)len);
        buf[len] = '\0';
        fclose(fp);
        if (lenp)
                *lenp = (size_t)len;
        return buf;
}

/*
 * The sample report.
 */

#define TL_CNT     20
#define TL_PTS     (7 * 24 * 30) /* every 2 minutes for a week */
#define BENIGN_CNT 84000         /* 500 identities x 168 hours */
#define ATTACK_CNT 400
#define BUCKETS    168           /* hours of the week */

static const char *const attack_types[] = {
        "token_theft", "scope_escalation", "dormant_takeover", NASTY_ATTACK,
};

/* Storage of the sample, filled by sample_build(). */
struct sample {
        struct mg_report rep;
        struct mg_report_timeline tl[TL_CNT];
        struct mg_report_point pts[TL_CNT][TL_PTS];
        char names[TL_CNT][64];
        double benign[BENIGN_CNT];
        double attack[ATTACK_CNT];
        uint64_t mix[BUCKETS][MG_DECISION__CNT];
        double sig_points[MG_SIG__CNT];
        uint64_t sig_fires[MG_SIG__CNT];
        struct mg_report_row rows[5];
};

static void sample_build(struct sample *s) {
        static const char *const kinds[] = {"ci", "svc", "agent", "etl"};
        struct mg_report_timeline *tl;
        double r, peak, u;
        int64_t t, a0 = 0, a1 = 0;
        int i, j, o, h;

        memset(s, 0, sizeof(*s));
        rng_state = 42;
        for (i = 0; i < TL_CNT; i++) {
                tl = &s->tl[i];
                if (i == 0)
                        snprintf(s->names[i], sizeof(s->names[i]), "%s",
                                 NASTY_ID);
                else
                        snprintf(s->names[i], sizeof(s->names[i]),
                                 "spiffe://corp/%s/%s-%02d", kinds[i % 4],
                                 i % 3 ? "deployer" : "exporter", i);
                tl->identity = s->names[i];
                /* 12 of 20 are attacked, for 2 to 5 hours. */
                if (i < 12) {
                        tl->attack = attack_types[i % 4];
                        a0 = T0 + (1 + i % 6) * DAY_MS + (8 + i) * HOUR_MS;
                        a1 = a0 + (2 + i % 4) * HOUR_MS;
                        tl->attack_start_ms = a0;
                        tl->attack_end_ms = a1;
                }
                peak = 55 + 40 * rnd();
                r = 0;
                for (j = 0; j < TL_PTS; j++) {
                        t = T0 + (int64_t)j * 120000;
                        /* Decay with a 6 h half-life, small noise, rare
                         * benign bumps, a climb during the attack. */
                        r *= pow(0.5, 120000.0 / (6 * HOUR_MS));
                        if (rnd() < 0.002)
                                r += 10 + 15 * rnd();
                        if (tl->attack && t >= a0 && t < a1 && r < peak)
                                r += (peak - r) * 0.15;
                        u = r + 3 * rnd();
                        s->pts[i][j].ts_ms = t;
                        s->pts[i][j].risk = (float)(u > 100 ? 100 : u);
                }
                tl->pts = s->pts[i];
                tl->cnt = TL_PTS;
        }
        for (i = 0; i < BENIGN_CNT; i++) {
                /* Mostly low; a tail of false alarms. */
                u = rnd();
                s->benign[i] = u < 0.97 ? -4 * log(1 - rnd())
                                        : 20 + 60 * rnd() * rnd();
        }
        for (i = 0; i < ATTACK_CNT; i++)
                s->attack[i] = i % 10 == 0 ? 10 * rnd() : 30 + 65 * rnd();
        for (h = 0; h < BUCKETS; h++) {
                /* Diurnal allow traffic; more friction in attack hours. */
                u = 1500 + 900 * sin((h % 24 - 6) * 3.14159265 / 12);
                s->mix[h][MG_DECISION_ALLOW] = (uint64_t)(u + 100 * rnd());
                s->mix[h][MG_DECISION_NARROW] = (uint64_t)(15 + 20 * rnd());
                s->mix[h][MG_DECISION_STEP_UP] = (uint64_t)(3 + 6 * rnd());
                s->mix[h][MG_DECISION_DENY] = (uint64_t)(2 * rnd());
                if (h % 24 >= 9 && h % 24 <= 13 && h / 24 >= 1) {
                        s->mix[h][MG_DECISION_STEP_UP] += 40;
                        s->mix[h][MG_DECISION_DENY] += 25;
                }
        }
        for (o = 0; o < MG_SIG__CNT; o++) {
                /* Quarantine never fired: a zero bar. */
                s->sig_fires[o] = o == MG_SIG_QUARANTINE
                                          ? 0
                                          : (uint64_t)(5 + o * 37 % 300);
                s->sig_points[o] = (double)s->sig_fires[o] * (8 + o % 5 * 6);
        }
        s->rows[0] = (struct mg_report_row){"overall", 12, 38, 83962, 0.962,
                                            0.871, 14.5 * 60000, 11};
        s->rows[1] = (struct mg_report_row){"token_theft", 3, 10, 83990,
                                            0.981, 0.9, 6 * 60000, 3};
        s->rows[2] = (struct mg_report_row){"scope_escalation", 3, 9, 83991,
                                            0.944, 0.778, 42 * 60000, 3};
        s->rows[3] = (struct mg_report_row){"dormant_takeover", 3, 11, 83989,
                                            NAN, NAN, NAN, 0};
        s->rows[4] = (struct mg_report_row){NASTY_ATTACK, 3, 8, 83992, 0.9,
                                            0.625, 2.5 * HOUR_MS, 2};

        s->rep.title = "mintgate replay";
        s->rep.subtitle = "events-week47.jsonl \xc2\xb7 config prod.yaml "
                          "\xc2\xb7 policy policy.yaml";
        s->rep.start_ms = T0;
        s->rep.end_ms = T0 + 7 * DAY_MS;
        s->rep.timelines = s->tl;
        s->rep.timeline_cnt = TL_CNT;
        s->rep.benign_scores = s->benign;
        s->rep.benign_cnt = BENIGN_CNT;
        s->rep.attack_scores = s->attack;
        s->rep.attack_cnt = ATTACK_CNT;
        s->rep.bucket_ms = HOUR_MS;
        s->rep.bucket_cnt = BUCKETS;
        s->rep.decision_mix = (const uint64_t(*)[MG_DECISION__CNT])s->mix;
        s->rep.signal_points = s->sig_points;
        s->rep.signal_fires = s->sig_fires;
        s->rep.rows = s->rows;
        s->rep.row_cnt = 5;
        s->rep.benign_requests = 301234;
        s->rep.benign_hurt = 1187;
        s->rep.events = 12345678;
}

/* The checks every report must pass, whatever it holds. */
static void check_document(const char *html) {
        assert_true(strncmp(html, "<!DOCTYPE html>\n", 16) == 0);
        assert_non_null(strstr(html, "<meta charset=\"utf-8\">"));
        assert_int_equal(strcmp(html + strlen(html) - 8, "</html>\n"), 0);
        /* Nothing that could fetch: the only "http" is the namespace. */
        assert_int_equal(count(html, "http"), count(html, SVG_NS));
        assert_null(strcasestr(html, "<script"));
        assert_null(strcasestr(html, "<link"));
        assert_null(strcasestr(html, "<img"));
        assert_null(strcasestr(html, "<iframe"));
        assert_null(strcasestr(html, "src="));
        assert_null(strcasestr(html, "url("));
        assert_null(strcasestr(html, "@import"));
        /* Every chart is namespaced; sections are closed. */
        assert_int_equal(count(html, "<svg"), count(html, SVG_NS));
        assert_int_equal(count(html, "<svg"), count(html, "</svg>"));
        assert_int_equal(count(html, "<section"), 5);
        assert_int_equal(count(html, "</section>"), 5);
}

static void test_sample(void **state) {
        static struct sample s;
        static const struct {
                const char *id;
                size_t svgs;
        } sections[] = {
                {"quality", 0}, {"distributions", 1}, {"signals", 1},
                {"mix", 1},     {"timelines", TL_CNT},
        };
        char errstr[256] = "";
        const char *out;
        mg_err_t err;
        size_t len, i;
        char *html, *sec;
        FILE *fp;

        sample_build(&s);
        html = render(&s.rep, &err, errstr, sizeof(errstr), &len);
        assert_int_equal(err, MG_OK);
        check_document(html);
        for (i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
                sec = section(html, sections[i].id);
                assert_int_equal(count(sec, "<svg"), sections[i].svgs);
                free(sec);
        }
        assert_int_equal(count(html, "<svg"), 3 + TL_CNT);
        assert_int_equal(count(html, "class=\"nodata\""), 0);
        /* Escaped wherever they appear, never raw. */
        assert_null(strstr(html, "<b>"));
        assert_null(strstr(html, "&\"'"));
        assert_true(count(html, NASTY_ID_ESC) >= 2); /* caption, title */
        assert_true(count(html, "&lt;script&gt;alert(1)&lt;/script&gt;") >=
                    4); /* 3 badges, table row */
        /* The headline figures. */
        assert_non_null(strstr(html, ">12,345,678<"));
        assert_non_null(strstr(html, ">0.962<"));
        assert_non_null(strstr(html, ">87.1%<"));
        assert_non_null(strstr(html, ">11 / 12<"));
        assert_non_null(strstr(html, ">14m 30s<"));
        assert_non_null(strstr(html, ">0.39%<")); /* 1187 / 301234 */
        /* A row without figures shows dashes. */
        sec = section(html, "quality");
        assert_non_null(strstr(sec, "dormant_takeover</td><td>3</td>"
                                    "<td>0 <span class=\"muted\">(0%)"
                                    "</span></td><td>11</td><td>83,989</td>"
                                    "<td>\xe2\x80\x94</td>"));
        free(sec);
        assert_true(len < 2 * 1024 * 1024);
        print_message("sample report: %zu bytes, %d timelines of %d "
                      "samples\n",
                      len, TL_CNT, TL_PTS);
        out = getenv("MG_REPORT_OUT");
        if (out) {
                fp = fopen(out, "w");
                if (!fp)
                        fail_msg("cannot write MG_REPORT_OUT %s", out);
                assert_int_equal(mg_report_write_html(fp, &s.rep, errstr,
                                                      sizeof(errstr)),
                                 MG_OK);
                assert_int_equal(fclose(fp), 0);
                print_message("sample report written to %s\n", out);
        }
        free(html);
}

/* Nothing but a title: a page of "no data" notes and no chart. */
static void test_empty(void **state) {
        struct mg_report rep = {.title = "empty replay"};
        char errstr[256] = "";
        mg_err_t err;
        char *html;

        html = render(&rep, &err, errstr, sizeof(errstr), NULL);
        assert_int_equal(err, MG_OK);
        check_document(html);
        assert_int_equal(count(html, "<svg"), 0);
        assert_int_equal(count(html, "class=\"nodata\""), 5);
        assert_non_null(strstr(html, "No data: no detection-quality rows"));
        assert_non_null(strstr(html, "No data: no identity timelines"));
        assert_non_null(strstr(html, "No data: no identity-hour scores"));
        assert_non_null(strstr(html, "No data: no decision buckets"));
        assert_non_null(strstr(html, "No data: no signal contributions"));
        /* Headline figures that cannot be computed are dashes. */
        assert_true(count(html, "<div class=\"v\">\xe2\x80\x94</div>") >= 4);
        free(html);
}

/* Sections with inputs but nothing to draw. */
static void test_partly_empty(void **state) {
        static const struct mg_report_point nan_pts[3] = {
                {T0, NAN}, {T0 + HOUR_MS, NAN}, {T0 + 2 * HOUR_MS, NAN}};
        const struct mg_report_timeline tl[2] = {
                {"spiffe://corp/a", NULL, 0, 0, NULL, 0},
                {"spiffe://corp/b", "token_theft", T0, T0 + HOUR_MS, nan_pts,
                 3},
        };
        static const uint64_t mix[3][MG_DECISION__CNT];
        const double zero_points[MG_SIG__CNT] = {0};
        const double one_attack[1] = {70};
        struct mg_report rep = {
                .title = "partial",
                .start_ms = T0,
                .end_ms = T0 + DAY_MS,
                .timelines = tl,
                .timeline_cnt = 2,
                .attack_scores = one_attack,
                .attack_cnt = 1,
                .bucket_ms = HOUR_MS,
                .bucket_cnt = 3,
                .decision_mix = mix,
                .signal_points = zero_points,
        };
        char errstr[256] = "";
        char *html, *sec;
        mg_err_t err;

        html = render(&rep, &err, errstr, sizeof(errstr), NULL);
        assert_int_equal(err, MG_OK);
        check_document(html);
        /* Two timelines without a drawable sample: axes and a note. */
        sec = section(html, "timelines");
        assert_int_equal(count(sec, "<svg"), 2);
        assert_int_equal(count(sec, ">no samples</text>"), 2);
        assert_int_equal(count(sec, "<polyline"), 0);
        free(sec);
        /* Attack hours only: the histogram is drawn. */
        sec = section(html, "distributions");
        assert_int_equal(count(sec, "<svg"), 1);
        assert_int_equal(count(sec, "<rect"), 1);
        free(sec);
        assert_non_null(strstr(html, "No data: no decisions in any bucket"));
        assert_non_null(strstr(html, "No data: no signal contributions"));
        assert_non_null(strstr(html, "No data: no detection-quality rows"));
        assert_int_equal(count(html, "class=\"nodata\""), 3);
        free(html);
}

/* A long series is cut to <= 600 points and keeps its extremes. */
static void test_downsample(void **state) {
        enum { N = 100000, SPIKE = 61237, MID = 12345 };
        static struct mg_report_point pts[N];
        const struct mg_report_timeline tl = {"spiffe://corp/long", NULL, 0, 0,
                                              pts, N};
        struct mg_report rep = {.title = "long",
                                .start_ms = T0,
                                .end_ms = T0 + N * 1000LL,
                                .timelines = &tl,
                                .timeline_cnt = 1};
        double x, y, last_x = -1, ys[3];
        char errstr[256] = "";
        int n = 0, nys = 0, k, seen;
        const char *p;
        char *html, *end;
        mg_err_t err;
        size_t i;

        /* Risk 0 but for one sample at 50 and one at 100. */
        for (i = 0; i < N; i++) {
                pts[i].ts_ms = T0 + (int64_t)i * 1000;
                pts[i].risk = i == SPIKE ? 100 : i == MID ? 50 : 0;
        }
        html = render(&rep, &err, errstr, sizeof(errstr), NULL);
        assert_int_equal(err, MG_OK);
        p = strstr(html, "<polyline class=\"risk\"");
        assert_non_null(p);
        p = strstr(p, "points=\"");
        assert_non_null(p);
        p += strlen("points=\"");
        while (*p != '"') {
                x = strtod(p, &end);
                assert_true(end != p && *end == ',');
                y = strtod(end + 1, &end);
                p = end;
                while (*p == ' ')
                        p++;
                n++;
                assert_true(x >= last_x); /* time order */
                last_x = x;
                for (k = 0, seen = 0; k < nys; k++)
                        seen |= fabs(ys[k] - y) < 0.05;
                if (!seen) {
                        assert_true(nys < 3);
                        ys[nys++] = y;
                }
        }
        assert_true(n <= 600);
        assert_true(n >= 300); /* every column has samples */
        /* Exactly three levels, 0, 50 and 100, evenly spaced on screen:
         * both single samples survived among 99,998 zeros. */
        assert_int_equal(nys, 3);
        for (k = 1; k < 3; k++) { /* sort */
                for (i = (size_t)k; i > 0 && ys[i - 1] > ys[i]; i--) {
                        x = ys[i - 1];
                        ys[i - 1] = ys[i];
                        ys[i] = x;
                }
        }
        assert_true(fabs((ys[0] + ys[2]) / 2 - ys[1]) < 0.1);
        /* The caption has the peak of all samples. */
        assert_non_null(strstr(html, ">peak 100.0<"));
        free(html);
}

/* Inconsistent reports are refused, naming the field; nothing written. */
static void test_invalid(void **state) {
        const struct mg_report_point pt = {T0, 10};
        const struct mg_report_timeline no_id = {NULL, NULL, 0, 0, &pt, 1};
        const struct mg_report_timeline no_pts = {"a", NULL, 0, 0, NULL, 4};
        const struct mg_report_timeline backwards = {"a", "x", T0 + 5, T0,
                                                     &pt, 1};
        const struct mg_report_point two[2] = {{T0 + 1, 5}, {T0, 6}};
        const struct mg_report_timeline unordered = {"a", NULL, 0, 0, two,
                                                     2};
        const struct mg_report_point far_pts[2] = {{T0, 5}, {INT64_MAX, 6}};
        const struct mg_report_timeline far = {"a", NULL, 0, 0, far_pts, 2};
        const struct mg_report_timeline far_attack = {"a", "x", 0, INT64_MAX,
                                                      &pt, 1};
        const struct mg_report_row no_name = {NULL, 0, 0, 0, NAN, NAN, NAN,
                                              0};
        static const uint64_t mix[1][MG_DECISION__CNT];
        static const uint64_t mix2[2][MG_DECISION__CNT];
        const struct {
                struct mg_report rep;
                const char *expect;
        } cases[] = {
                {{.title = NULL}, "title is NULL"},
                {{.title = "t", .start_ms = 10, .end_ms = 5},
                 "end_ms 5 is before start_ms 10"},
                {{.title = "t", .timeline_cnt = 2}, "timelines is NULL"},
                {{.title = "t", .benign_cnt = 2}, "benign_scores is NULL"},
                {{.title = "t", .attack_cnt = 2}, "attack_scores is NULL"},
                {{.title = "t", .bucket_ms = 1000, .bucket_cnt = 2},
                 "decision_mix is NULL"},
                {{.title = "t", .row_cnt = 1}, "rows is NULL"},
                {{.title = "t", .bucket_cnt = 1, .decision_mix = mix},
                 "bucket_ms is 0"},
                {{.title = "t", .start_ms = -2000000000000000LL},
                 "start_ms -2000000000000000 or end_ms 0 is out of range"},
                {{.title = "t", .bucket_ms = INT64_MAX / 2, .bucket_cnt = 2,
                  .decision_mix = mix2},
                 "2 buckets of 4611686018427387903 ms from start_ms 0 end "
                 "out of range"},
                {{.title = "t", .timelines = &unordered, .timeline_cnt = 1},
                 "timelines[0].pts[1] is earlier than the sample before"},
                {{.title = "t", .timelines = &far, .timeline_cnt = 1},
                 "timelines[0].pts[1].ts_ms 9223372036854775807 is out of "
                 "range"},
                {{.title = "t", .timelines = &far_attack, .timeline_cnt = 1},
                 "timelines[0]: attack window 0..9223372036854775807 is out "
                 "of range"},
                {{.title = "t", .timelines = &no_id, .timeline_cnt = 1},
                 "timelines[0].identity is NULL"},
                {{.title = "t", .timelines = &no_pts, .timeline_cnt = 1},
                 "timelines[0].pts is NULL with cnt 4"},
                {{.title = "t", .timelines = &backwards, .timeline_cnt = 1},
                 "timelines[0]: attack window ends"},
                {{.title = "t", .rows = &no_name, .row_cnt = 1},
                 "rows[0].name is NULL"},
        };
        char errstr[256];
        size_t i, len;
        mg_err_t err;
        char *html;

        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                errstr[0] = '\0';
                html = render(&cases[i].rep, &err, errstr, sizeof(errstr),
                              &len);
                assert_int_equal(err, MG_ERR_INVALID);
                if (!strstr(errstr, cases[i].expect))
                        fail_msg("case %zu: \"%s\" lacks \"%s\"", i, errstr,
                                 cases[i].expect);
                assert_int_equal(len, 0);
                free(html);
        }
        assert_int_equal(mg_report_write_html(stdout, NULL, errstr,
                                              sizeof(errstr)),
                         MG_ERR_INVALID);
        assert_non_null(strstr(errstr, "rep is NULL"));
        assert_int_equal(mg_report_write_html(NULL, &cases[1].rep, errstr,
                                              sizeof(errstr)),
                         MG_ERR_INVALID);
        assert_non_null(strstr(errstr, "fp is NULL"));
}

/* A full device: the write fails and says so. */
static void test_write_error(void **state) {
        struct mg_report rep = {.title = "t"};
        char errstr[256] = "";
        FILE *fp;

        fp = fopen("/dev/full", "w");
        if (!fp)
                fail_msg("cannot open /dev/full");
        assert_int_equal(mg_report_write_html(fp, &rep, errstr,
                                              sizeof(errstr)),
                         MG_ERR_IO);
        assert_non_null(strstr(errstr, "writing the HTML failed"));
        assert_non_null(strstr(errstr, "No space left on device"));
        fclose(fp);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_sample),
                cmocka_unit_test(test_empty),
                cmocka_unit_test(test_partly_empty),
                cmocka_unit_test(test_downsample),
                cmocka_unit_test(test_invalid),
                cmocka_unit_test(test_write_error),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
