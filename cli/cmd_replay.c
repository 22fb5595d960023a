/*
 * cmd_replay.c — `mintgate replay`: a history through the live scoring and
 * decision code in one process (analysis/mg_replay.h), as fast as the CPU
 * allows, for backtests. The history is a JSON-lines file, or a range of
 * the Kafka input topics (ingest/mg_range.h: every partition from --from
 * to --to, decoded and validated as `score` does, merged in event time)
 * when brokers are configured and no file is given; both sources feed the
 * same per-event step (loop_event). On top of the replay:
 *
 *   - with --labels, detection quality overall and per attack type
 *     (analysis/mg_backtest.h); with --report, the same as one HTML page;
 *   - with --compare FILE (a policy or a configuration), a second replay
 *     with FILE in place of the policy or the configuration, in lockstep
 *     over the same events, and the decisions that changed;
 *   - with --decisions FILE, every issuance's response, in the decision
 *     service's wire format (the id is the event's event_id);
 *   - with --requests FILE, requests in the wire format decided after the
 *     replay, as the live service would answer them then (stdout).
 *
 * A bad input line is reported with its number, a bad Kafka message with
 * its topic, partition and offset, and skipped; the exit status is then 1,
 * after the replay of every good event.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "mg_backtest.h"
#include "mg_lines.h"
#include "mg_policy.h"
#include "mg_proto.h"
#include "mg_range.h"
#include "mg_replay.h"

/* Changed decisions listed one by one, at most. */
#define REPLAY_CHANGES_LISTED 20
/* Longest input line: an event's strings fit in MG_EVENT_ARENA_SIZE. */
#define REPLAY_LINE_MAX (4 * MG_EVENT_ARENA_SIZE)

/* One replay: the base, or the alternative of --compare. */
struct replay_run {
        const char *label;            /* what it runs, for output */
        struct cli_conf cc;           /* its configuration */
        int own_cc;                   /* cc loaded for this run */
        struct mg_policy *pol;        /* its policy, owned */
        struct mg_replay_conf rconf;
        struct mg_replay *rp;
        struct mg_replay_step step;
};

struct replay_opts {
        const char *input;        /* events, "-" for stdin, NULL: none */
        struct mg_range_bound from; /* --from: start of a topic range */
        struct mg_range_bound to;   /* --to: its end, not included */
        int range_set;            /* --from or --to was given */
        const char *labels;       /* --labels */
        const char *report;       /* --report */
        const char *compare;      /* --compare */
        const char *decisions;    /* --decisions */
        const char *requests;     /* --requests */
        const char *policy;       /* --policy, else decision.policy */
        const char *show;         /* --show IDENTITY */
        int64_t request_ttl_s;    /* --request-ttl */
        int64_t now_ms;           /* --now, 0: the last event's time */
        int json;                 /* --json */
};

static void replay_usage(FILE *fp) {
        fprintf(fp,
                "Usage: mintgate replay [options] [EVENTS.jsonl]\n"
                "       mintgate replay --brokers LIST [--from BOUND] "
                "[--to BOUND] [options]\n\n"
                "Replays JSON-lines events (stdin when no file or -) "
                "through the scoring and\ndecision code of `score` and "
                "`serve`, in one process, in event time: each\nsuccessful "
                "authentication is an issuance decided with the risk the "
                "live service\nwould have had just before it.\n\n"
                "With --brokers (or kafka.bootstrap.servers in the "
                "configuration) and no events\nfile, replays the input "
                "topics (ingest.topics.*) instead: every partition\nfrom "
                "--from to --to, decoded and validated as `score` does, "
                "merged in event\ntime. The read joins no consumer group "
                "and commits nothing. (Give - to read\nstdin even so.)\n\n"
                "  -b, --brokers LIST      Kafka bootstrap servers "
                "host:port[,...]: replay the\n"
                "                          topics\n"
                "      --from BOUND        where the range starts in each "
                "partition: earliest\n"
                "                          (default), latest, a time (RFC "
                "3339 or epoch ms, of\n"
                "                          the Kafka message timestamps), "
                "or @OFFSET\n"
                "      --to BOUND          where it ends, not included "
                "(default latest: the end\n"
                "                          when the replay starts); same "
                "forms\n"
                "      --policy FILE       issuance policy (default: "
                "decision.policy)\n"
                "      --labels FILE       attack labels (JSON lines, as "
                "`simulate --labels`):\n"
                "                          detection quality overall and per "
                "attack type\n"
                "      --report FILE       write an HTML report (self-"
                "contained)\n"
                "      --compare FILE      replay again with FILE as the "
                "policy or configuration;\n"
                "                          list the decisions that changed\n"
                "      --decisions FILE    write every issuance's response "
                "(wire format)\n"
                "      --requests FILE     decide these requests (wire "
                "format) after the replay;\n"
                "                          answers on stdout, summary on "
                "stderr\n"
                "      --now TIME          when --requests are decided "
                "(RFC 3339, epoch ms or\n"
                "                          \"wall\"; default: the last "
                "event's time)\n"
                "      --request-ttl DUR   TTL each replayed issuance asks "
                "for (default 1h)\n"
                "      --show IDENTITY     print the identity's baseline at "
                "the end (as\n"
                "                          `baseline show --json`)\n"
                "      --json              print the summary as JSON\n"
                "  -c, --config FILE       YAML configuration file\n"
                "      --set KEY=VALUE     override one configuration key\n"
                "      --log-level LVL     error, warn, info (default) or "
                "debug\n"
                "  -h, --help              this help\n");
}

static int run_open(struct replay_run *run, const struct replay_opts *o,
                    const char *policy_path) {
        char errstr[1024];

        if (mg_policy_load_file(policy_path, &run->pol, errstr,
                                sizeof(errstr))) {
                fprintf(stderr, "mintgate replay: %s\n", errstr);
                return MG_EXIT_USAGE;
        }
        run->rconf.scoring = &run->cc.scoring;
        run->rconf.policy = run->pol;
        run->rconf.request_ttl_s = o->request_ttl_s;
        run->rconf.flush_every = 65536;
        if (mg_replay_new(&run->rconf, &run->rp, errstr, sizeof(errstr))) {
                fprintf(stderr, "mintgate replay: %s\n", errstr);
                return MG_EXIT_FAILURE;
        }
        return MG_EXIT_OK;
}

static void run_close(struct replay_run *run) {
        mg_replay_destroy(run->rp);
        run->rp = NULL;
        if (run->pol)
                mg_policy_destroy(run->pol);
        run->pol = NULL;
        if (run->own_cc)
                cli_conf_free(&run->cc);
}

/* --compare FILE: a policy, else a configuration. */
static int compare_open(struct replay_run *alt, const struct replay_run *base,
                        const struct replay_opts *o) {
        struct cli_common common = {0};
        struct mg_policy *pol;
        char perr[1024];
        int r;

        if (!mg_policy_load_file(o->compare, &pol, perr, sizeof(perr))) {
                mg_policy_destroy(pol);
                alt->cc = base->cc;
                alt->label = o->compare;
                return run_open(alt, o, o->compare);
        }
        common.config_path = o->compare;
        common.log_level = "error";
        if ((r = cli_conf_load(&alt->cc, &common, "replay --compare"))) {
                fprintf(stderr,
                        "mintgate replay: --compare %s is not a policy "
                        "either: %s\n",
                        o->compare, perr);
                return r;
        }
        alt->own_cc = 1;
        if ((r = cli_asn_load(&alt->cc, "replay --compare")))
                return r;
        alt->label = o->compare;
        return run_open(alt, o, o->policy ? o->policy
                                          : base->cc.service.policy);
}

/* Transitions between the two runs' outcomes. */
struct compare_stats {
        uint64_t moved[MG_DECISION__CNT][MG_DECISION__CNT];
        uint64_t regranted; /* same outcome, other scopes or TTL */
        uint64_t listed;
};

static int same_grant(const struct mg_decision *a,
                      const struct mg_decision *b) {
        int i;

        if (a->ttl != b->ttl || a->scope_cnt != b->scope_cnt)
                return 0;
        for (i = 0; i < a->scope_cnt; i++)
                if (strcmp(a->scopes[i], b->scopes[i]))
                        return 0;
        return 1;
}

static void compare_step(struct compare_stats *cs, const struct mg_event *ev,
                         const struct mg_replay_step *a,
                         const struct mg_replay_step *b) {
        enum mg_outcome oa = a->decision.outcome, ob = b->decision.outcome;
        char ts[32];

        if (!a->decided)
                return;
        cs->moved[oa][ob]++;
        if (oa == ob) {
                if (!same_grant(&a->decision, &b->decision))
                        cs->regranted++;
                return;
        }
        if (cs->listed++ >= REPLAY_CHANGES_LISTED)
                return;
        if (cs->listed == 1)
                printf("changed decisions (first %d):\n",
                       REPLAY_CHANGES_LISTED);
        mg_time_format_rfc3339(ev->ts_ms, ts, sizeof(ts));
        printf("  %s  %-8s -> %-8s  %s  %s (risk %.1f -> %.1f)\n", ts,
               mg_outcome_names[oa], mg_outcome_names[ob], ev->event_id,
               ev->identity, a->decision.risk, b->decision.risk);
}

static void compare_print(const struct compare_stats *cs, const char *base,
                          const char *alt) {
        uint64_t total = 0, changed = 0;
        int i, j;

        for (i = 0; i < MG_DECISION__CNT; i++)
                for (j = 0; j < MG_DECISION__CNT; j++) {
                        total += cs->moved[i][j];
                        if (i != j)
                                changed += cs->moved[i][j];
                }
        printf("\ncompare: %s -> %s: %" PRIu64 " of %" PRIu64
               " issuances changed outcome, %" PRIu64
               " more kept it with other scopes or TTL\n",
               base, alt, changed, total, cs->regranted);
        for (i = 0; i < MG_DECISION__CNT; i++)
                for (j = 0; j < MG_DECISION__CNT; j++)
                        if (i != j && cs->moved[i][j])
                                printf("  %-8s -> %-8s %10" PRIu64 "\n",
                                       mg_outcome_names[i],
                                       mg_outcome_names[j], cs->moved[i][j]);
}

/* Write one issuance's response line. */
static int decision_write(FILE *fp, const struct mg_event *ev,
                          const struct mg_replay_step *step,
                          struct mg_decide_req *req) {
        char buf[8192];
        size_t len;

        memset(req, 0, offsetof(struct mg_decide_req, arena));
        req->id = ev->event_id;
        if (mg_proto_format_response(req, &step->decision, NULL, buf,
                                     sizeof(buf), &len))
                return -1;
        buf[len++] = '\n';
        return fwrite(buf, 1, len, fp) == len ? 0 : -1;
}

/* --requests: decide each request line after the replay. */
static int requests_answer(struct replay_run *run, const char *path,
                           int64_t now_ms, struct mg_decide_req *req) {
        FILE *fp = fopen(path, "r");
        char *line, buf[8192], code[32], errstr[512];
        struct mg_decision d;
        struct mg_lines ln;
        size_t len;
        mg_err_t err;
        int bad = 0;

        if (!fp) {
                fprintf(stderr, "mintgate replay: cannot open %s: %m\n",
                        path);
                return -1;
        }
        mg_lines_init(&ln, fp, REPLAY_LINE_MAX);
        while ((err = mg_lines_next(&ln, &line, &len)) != MG_ERR_NOT_FOUND &&
               err != MG_ERR_IO) {
                if (err == MG_ERR_TOOBIG ||
                    mg_proto_parse_request(req, line, len, code, sizeof(code),
                                           errstr, sizeof(errstr))) {
                        fprintf(stderr, "mintgate replay: %s:%zu: %s\n", path,
                                ln.lineno,
                                err ? "line over the size limit" : errstr);
                        bad = 1;
                        continue;
                }
                mg_replay_decide(run->rp, req, now_ms, &d);
                if (mg_proto_format_response(req, &d, NULL, buf, sizeof(buf),
                                             &len) == MG_OK)
                        printf("%s\n", buf);
        }
        if (err == MG_ERR_IO) {
                fprintf(stderr, "mintgate replay: reading %s: %m\n", path);
                bad = 1;
        }
        mg_lines_free(&ln);
        fclose(fp);
        return bad ? -1 : 0;
}

static int parse_now(const char *arg, int64_t *ms) {
        char *end;

        if (!strcmp(arg, "wall")) {
                *ms = mg_time_now_ms();
                return 0;
        }
        *ms = strtoll(arg, &end, 10);
        if (end != arg && !*end && *ms > 0)
                return 0;
        return mg_time_parse_rfc3339(arg, strlen(arg), ms) == MG_OK ? 0 : -1;
}

static int replay_parse(int argc, char **argv, struct replay_opts *o,
                        struct cli_common *common) {
        static const struct option longopts[] = {
                CLI_COMMON_LONGOPTS,
                {"policy", required_argument, NULL, 'P'},
                {"labels", required_argument, NULL, 'l'},
                {"report", required_argument, NULL, 'r'},
                {"compare", required_argument, NULL, 'C'},
                {"decisions", required_argument, NULL, 'd'},
                {"requests", required_argument, NULL, 'q'},
                {"now", required_argument, NULL, 'n'},
                {"request-ttl", required_argument, NULL, 't'},
                {"json", no_argument, NULL, 'j'},
                {"show", required_argument, NULL, 's'},
                {"from", required_argument, NULL, 'F'},
                {"to", required_argument, NULL, 'T'},
                {NULL, 0, NULL, 0}};
        struct mg_range_bound *b;
        char errstr[512];
        int64_t ms;
        int c, r;

        o->request_ttl_s = 3600;
        o->from.kind = MG_RANGE_EARLIEST;
        o->to.kind = MG_RANGE_LATEST;
        while ((c = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
                if ((r = cli_common_opt(common, c, optarg)) < 0)
                        return MG_EXIT_USAGE;
                if (r)
                        continue;
                switch (c) {
                case 'P':
                        o->policy = optarg;
                        break;
                case 'l':
                        o->labels = optarg;
                        break;
                case 'r':
                        o->report = optarg;
                        break;
                case 'C':
                        o->compare = optarg;
                        break;
                case 'd':
                        o->decisions = optarg;
                        break;
                case 'q':
                        o->requests = optarg;
                        break;
                case 'j':
                        o->json = 1;
                        break;
                case 's':
                        o->show = optarg;
                        break;
                case 'F':
                case 'T':
                        b = c == 'F' ? &o->from : &o->to;
                        if (mg_range_bound_parse(optarg, b, errstr,
                                                 sizeof(errstr))) {
                                fprintf(stderr, "mintgate replay: --%s: %s\n",
                                        c == 'F' ? "from" : "to", errstr);
                                return MG_EXIT_USAGE;
                        }
                        o->range_set = 1;
                        break;
                case 'n':
                        if (parse_now(optarg, &o->now_ms)) {
                                fprintf(stderr,
                                        "mintgate replay: --now %s: expected "
                                        "RFC 3339, epoch ms or \"wall\"\n",
                                        optarg);
                                return MG_EXIT_USAGE;
                        }
                        break;
                case 't':
                        if (mg_conf_parse_ms(optarg, &ms) || ms < 1000) {
                                fprintf(stderr,
                                        "mintgate replay: --request-ttl %s: "
                                        "expected a duration of 1s or more "
                                        "such as 15m\n",
                                        optarg);
                                return MG_EXIT_USAGE;
                        }
                        o->request_ttl_s = ms / 1000;
                        break;
                case 'h':
                        replay_usage(stdout);
                        return -1;
                default:
                        replay_usage(stderr);
                        return MG_EXIT_USAGE;
                }
        }
        if (argc - optind > 1) {
                fprintf(stderr, "mintgate replay: one events file at most "
                                "(got '%s' too)\n",
                        argv[optind + 1]);
                return MG_EXIT_USAGE;
        }
        o->input = optind < argc ? argv[optind] : NULL;
        if (o->from.kind == o->to.kind &&
            (o->from.kind == MG_RANGE_TIME ||
             o->from.kind == MG_RANGE_OFFSET) &&
            o->from.value > o->to.value) {
                char fb[40], tb[40];

                fprintf(stderr,
                        "mintgate replay: --from %s is after --to %s: the "
                        "range is empty\n",
                        mg_range_bound_format(&o->from, fb, sizeof(fb)),
                        mg_range_bound_format(&o->to, tb, sizeof(tb)));
                return MG_EXIT_USAGE;
        }
        return MG_EXIT_OK;
}

/* The replay loop over every event of the source. */
struct replay_loop {
        struct replay_run *base, *alt;    /* alt: NULL without --compare */
        struct mg_backtest *bt;
        FILE *decisions;                  /* --decisions, or NULL */
        struct mg_decide_req *req;        /* scratch */
        struct compare_stats cs;
        uint64_t rejected;                /* bad lines or messages */
        int64_t last_ms;                  /* latest event time */
};

static int loop_event(struct replay_loop *lp, const struct mg_event *ev) {
        char errstr[512];

        if (mg_replay_event(lp->base->rp, ev, &lp->base->step, errstr,
                            sizeof(errstr)) ||
            (lp->alt && mg_replay_event(lp->alt->rp, ev, &lp->alt->step,
                                        errstr, sizeof(errstr))) ||
            mg_backtest_observe(lp->bt, ev, &lp->base->step, errstr,
                                sizeof(errstr))) {
                fprintf(stderr, "mintgate replay: %s\n", errstr);
                return -1;
        }
        if (ev->ts_ms > lp->last_ms)
                lp->last_ms = ev->ts_ms;
        if (lp->alt)
                compare_step(&lp->cs, ev, &lp->base->step, &lp->alt->step);
        if (lp->decisions && lp->base->step.decided &&
            decision_write(lp->decisions, ev, &lp->base->step, lp->req)) {
                fprintf(stderr, "mintgate replay: writing decisions: %m\n");
                return -1;
        }
        return 0;
}

static int loop_run(struct replay_loop *lp, FILE *in, const char *name) {
        struct mg_event *ev = malloc(sizeof(*ev));
        int64_t now_ms = mg_time_now_ms();
        char *line, errstr[512];
        struct mg_lines ln;
        size_t len;
        mg_err_t err;
        int rc = 0;

        if (!ev) {
                fprintf(stderr, "mintgate replay: out of memory\n");
                return -1;
        }
        mg_lines_init(&ln, in, REPLAY_LINE_MAX);
        while ((err = mg_lines_next(&ln, &line, &len)) != MG_ERR_NOT_FOUND &&
               err != MG_ERR_IO) {
                if (err == MG_ERR_TOOBIG) {
                        fprintf(stderr,
                                "mintgate replay: %s:%zu: line of %zu bytes "
                                "is over the %d-byte limit\n",
                                name, ln.lineno, len, REPLAY_LINE_MAX);
                        lp->rejected++;
                        continue;
                }
                if (mg_event_from_json(ev, line, len, now_ms, errstr,
                                       sizeof(errstr))) {
                        fprintf(stderr, "mintgate replay: %s:%zu: %s\n", name,
                                ln.lineno, errstr);
                        lp->rejected++;
                        continue;
                }
                if ((rc = loop_event(lp, ev)))
                        break;
        }
        if (!rc && err == MG_ERR_IO) {
                fprintf(stderr, "mintgate replay: reading %s: %m\n", name);
                rc = -1;
        }
        mg_lines_free(&ln);
        free(ev);
        return rc;
}

static int range_event(void *opaque, const struct mg_event *ev) {
        return loop_event(opaque, ev);
}

/* A bad message counts as a bad line does. */
static void range_bad(void *opaque, const char *topic, int32_t partition,
                      int64_t offset, mg_err_t err, const char *errstr) {
        struct replay_loop *lp = opaque;

        fprintf(stderr,
                "mintgate replay: %s [%" PRId32 "] offset %" PRId64 ": %s: "
                "%s\n",
                topic, partition, offset, mg_err_name(err), errstr);
        lp->rejected++;
}

/* The replay loop over the topic range. Returns an exit status. */
static int loop_range(struct replay_loop *lp, const struct cli_conf *cc,
                      const struct replay_opts *o) {
        struct mg_range_stats st;
        char errstr[1024];
        mg_err_t err;

        err = mg_range_read(&cc->ingest, &o->from, &o->to, range_event,
                            range_bad, lp, &st, errstr, sizeof(errstr));
        if (err) {
                fprintf(stderr, "mintgate replay: %s\n", errstr);
                return err == MG_ERR_CONFIG ? MG_EXIT_USAGE : MG_EXIT_FAILURE;
        }
        /* Only a failed step stops the read; it said why. */
        return st.stopped ? MG_EXIT_FAILURE : MG_EXIT_OK;
}

static double mono_s(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int report_write(struct mg_backtest *bt, const struct replay_opts *o,
                        const char *source, const char *policy,
                        const struct mg_scoring_conf *scoring) {
        char subtitle[4096], errstr[512];
        FILE *fp = fopen(o->report, "w");
        int rc = 0;

        if (!fp) {
                fprintf(stderr, "mintgate replay: cannot create %s: %m\n",
                        o->report);
                return -1;
        }
        snprintf(subtitle, sizeof(subtitle), "events %s, labels %s, policy %s",
                 source, o->labels ? o->labels : "none", policy);
        if (mg_backtest_report(bt, fp, subtitle, scoring, errstr,
                               sizeof(errstr))) {
                fprintf(stderr, "mintgate replay: %s: %s\n", o->report,
                        errstr);
                rc = -1;
        }
        if (fclose(fp) && !rc) {
                fprintf(stderr, "mintgate replay: writing %s: %m\n",
                        o->report);
                rc = -1;
        }
        return rc;
}

static int show_baseline(struct mg_replay *rp, const char *identity,
                         int64_t now_ms, FILE *out) {
        char *json = mg_replay_baseline_json(rp, identity, now_ms);

        if (!json) {
                fprintf(stderr, "mintgate replay: --show %s: no event named "
                                "that identity\n",
                        identity);
                return -1;
        }
        fprintf(out, "%s\n", json);
        free(json);
        return 0;
}

/* What a topic replay reads, for the report: "Kafka mg.auth, mg.usage,
 * mg.signals from earliest to latest". */
static void range_describe(const struct cli_conf *cc,
                           const struct replay_opts *o, char *buf,
                           size_t size) {
        const char *names[] = {cc->ingest.topic_auth, cc->ingest.topic_usage,
                               cc->ingest.topic_signals};
        char fb[40], tb[40];
        size_t len;
        int i, j;

        len = (size_t)snprintf(buf, size, "Kafka");
        for (i = 0; i < 3 && len < size; i++) {
                for (j = 0; j < i && strcmp(names[i], names[j]); j++)
                        ;
                if (j == i)
                        len += (size_t)snprintf(buf + len, size - len, "%s%s",
                                                i ? ", " : " ", names[i]);
        }
        if (len < size)
                snprintf(buf + len, size - len, " from %s to %s",
                         mg_range_bound_format(&o->from, fb, sizeof(fb)),
                         mg_range_bound_format(&o->to, tb, sizeof(tb)));
}

int cmd_replay_main(int argc, char **argv) {
        struct replay_opts o = {0};
        struct cli_common common = {0};
        struct replay_run base = {0}, alt = {0};
        struct replay_loop lp = {0};
        const struct mg_backtest_result *res;
        const char *policy;
        FILE *in = NULL, *out = stdout;
        char errstr[1024], source[1024], skipped[32] = "";
        const char *bad_what = "lines";
        double t0, secs;
        int r, kafka, rc = MG_EXIT_FAILURE;

        if ((r = replay_parse(argc, argv, &o, &common)))
                return r < 0 ? MG_EXIT_OK : r;
        if ((r = cli_conf_load(&base.cc, &common, "replay")))
                return r;
        base.own_cc = 1;
        if ((r = cli_asn_load(&base.cc, "replay"))) {
                rc = r;
                goto out;
        }
        /* Brokers and no file: the topics. */
        kafka = !o.input && cli_kafka_brokers(&base.cc);
        if (o.range_set && !kafka) {
                fprintf(stderr,
                        "mintgate replay: --from and --to bound a range of "
                        "the Kafka topics: give --brokers (or "
                        "kafka.bootstrap.servers) and no events file\n");
                rc = MG_EXIT_USAGE;
                goto out;
        }
        if (kafka) {
                range_describe(&base.cc, &o, source, sizeof(source));
                bad_what = "messages";
        } else {
                if (!o.input)
                        o.input = "-";
                snprintf(source, sizeof(source), "%s", o.input);
        }
        policy = o.policy ? o.policy : base.cc.service.policy;
        base.label = policy;
        if ((r = run_open(&base, &o, policy)) ||
            (o.compare && (r = compare_open(&alt, &base, &o)))) {
                rc = r;
                goto out;
        }
        if (mg_backtest_new(o.labels, &lp.bt, errstr, sizeof(errstr))) {
                fprintf(stderr, "mintgate replay: %s\n", errstr);
                rc = MG_EXIT_USAGE;
                goto out;
        }
        if (!kafka)
                in = strcmp(o.input, "-") ? fopen(o.input, "r") : stdin;
        if (!kafka && !in) {
                fprintf(stderr, "mintgate replay: cannot open %s: %m\n",
                        o.input);
                goto out;
        }
        if (o.decisions && !(lp.decisions = fopen(o.decisions, "w"))) {
                fprintf(stderr, "mintgate replay: cannot create %s: %m\n",
                        o.decisions);
                goto out;
        }
        if (!(lp.req = malloc(sizeof(*lp.req)))) {
                fprintf(stderr, "mintgate replay: out of memory\n");
                goto out;
        }
        lp.base = &base;
        lp.alt = o.compare ? &alt : NULL;
        if (o.requests)
                out = stderr;
        t0 = mono_s();
        if (kafka)
                r = loop_range(&lp, &base.cc, &o);
        else
                r = loop_run(&lp, in, strcmp(o.input, "-") ? o.input : "stdin")
                            ? MG_EXIT_FAILURE
                            : MG_EXIT_OK;
        if (r) {
                rc = r;
                goto out;
        }
        if (mg_replay_flush(base.rp, errstr, sizeof(errstr)) ||
            mg_backtest_finish(lp.bt, &res, errstr, sizeof(errstr))) {
                fprintf(stderr, "mintgate replay: %s\n", errstr);
                goto out;
        }
        secs = mono_s() - t0;
        if (lp.rejected)
                snprintf(skipped, sizeof(skipped), "; bad %s skipped",
                         bad_what);
        if (!o.json)
                fprintf(out,
                        "replayed %" PRIu64 " events of %zu identities in "
                        "%.2f s (%.0f events/s)%s\n",
                        res->events, mg_replay_identity_count(base.rp), secs,
                        secs > 0 ? (double)res->events / secs : 0.0,
                        skipped);
        mg_backtest_print(out, res, o.json);
        if (lp.alt)
                compare_print(&lp.cs, base.label, alt.label);
        rc = MG_EXIT_OK;
        if (o.show && show_baseline(base.rp, o.show, lp.last_ms, out))
                rc = MG_EXIT_FAILURE;
        if (o.report &&
            report_write(lp.bt, &o, source, policy, &base.cc.scoring))
                rc = MG_EXIT_FAILURE;
        if (o.requests &&
            requests_answer(&base, o.requests,
                            o.now_ms ? o.now_ms : lp.last_ms, lp.req))
                rc = MG_EXIT_FAILURE;
        if (lp.rejected) {
                fprintf(stderr, "mintgate replay: %" PRIu64
                                " bad %s skipped\n",
                        lp.rejected, bad_what);
                rc = MG_EXIT_FAILURE;
        }
out:
        if (lp.decisions && fclose(lp.decisions) && rc == MG_EXIT_OK) {
                fprintf(stderr, "mintgate replay: writing %s: %m\n",
                        o.decisions);
                rc = MG_EXIT_FAILURE;
        }
        if (in && in != stdin)
                fclose(in);
        free(lp.req);
        mg_backtest_destroy(lp.bt);
        run_close(&alt);
        run_close(&base);
        return rc;
}
