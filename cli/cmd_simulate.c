/*
 * cmd_simulate.c — `mintgate simulate`: synthetic non-human identity
 * traffic with labelled attacks (analysis/mg_sim.h), as JSON-lines events
 * on stdout or in a file, or produced straight to Kafka.
 *
 * With --brokers the events go through the same producer as `mintgate
 * produce` (cli_produce()): the generator writes JSON lines into a pipe
 * that cli_produce() reads on a second thread, so there is one producer
 * and memory stays bounded whatever the run's size. -o keeps a copy of the
 * events in a file as well.
 *
 * The labels file (--labels) has one JSON line per attack, written when
 * the attack's last event has been generated. A one-line summary goes to
 * stderr. Ctrl-C stops generating; what was generated is still flushed
 * (and, with --brokers, delivered).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "mg_sim.h"

/* Output buffer of each stream: the run writes hundreds of MB. */
#define SIMULATE_BUF_SIZE (1 << 20)

/* Where the events and labels go. */
struct simulate_out {
        FILE *out;          /* events: stdout, -o FILE or the pipe */
        FILE *copy;         /* -o FILE when out is the pipe, else NULL */
        FILE *labels;       /* --labels FILE, or NULL */
        int err;            /* errno of the first failed write, 0 */
        const char *err_what; /* which output failed */
};

/* The producer thread's work (--brokers). */
struct simulate_produce {
        const struct cli_conf *cc;          /* configuration */
        FILE *in;                           /* read end of the pipe */
        struct cli_produce_opts popts;      /* producer options */
        struct cli_produce_result res;      /* its counters */
        int rc;                             /* its exit status */
};

static volatile sig_atomic_t simulate_stop;

static int simulate_write(struct simulate_out *so, FILE *fp, const char *what,
                          const char *line) {
        if (fputs(line, fp) == EOF || putc('\n', fp) == EOF) {
                if (!so->err) {
                        so->err = errno ? errno : EIO;
                        so->err_what = what;
                }
                return -1;
        }
        return 0;
}

static int simulate_emit_cb(void *opaque, const struct mg_event *ev) {
        struct simulate_out *so = opaque;
        char *line = mg_event_to_json(ev);
        int rc = 0;

        if (!line) {
                so->err = ENOMEM;
                so->err_what = "events";
                return 1;
        }
        if (simulate_write(so, so->out, "events", line) ||
            (so->copy && simulate_write(so, so->copy, "-o", line)))
                rc = 1;
        free(line);
        return rc || simulate_stop;
}

static void simulate_label_cb(void *opaque, const struct mg_sim_label *lab) {
        struct simulate_out *so = opaque;
        char *line;

        if (!so->labels)
                return;
        if (!(line = mg_sim_label_to_json(lab))) {
                if (!so->err) {
                        so->err = ENOMEM;
                        so->err_what = "--labels";
                }
                return;
        }
        simulate_write(so, so->labels, "--labels", line);
        free(line);
}

static void *simulate_produce_main(void *arg) {
        struct simulate_produce *sp = arg;

        sp->rc = cli_produce(sp->cc, sp->in, &sp->popts, &sp->res);
        /* Closing the read end makes the generator's next write fail
         * (EPIPE) should the producer stop early. */
        fclose(sp->in);
        sp->in = NULL;
        return NULL;
}

static void simulate_on_signal(int sig) {
        (void)sig;
        simulate_stop = 1;
}

static void simulate_usage(FILE *fp) {
        fprintf(fp,
                "Usage: mintgate simulate [options]\n\n"
                "Generates a seeded, deterministic population of non-human "
                "identities and their\nauth, usage and signal events as JSON "
                "lines (the input of `produce` and\n`replay`), with labelled "
                "attacks. Same options, same bytes.\n\n"
                "      --seed N          PRNG seed (default 1)\n"
                "      --days N          length of the run, 1..%d (default "
                "7)\n"
                "      --identities N    population, 1..%d (default 2000)\n"
                "      --start TIME      first instant, RFC 3339 (default "
                "2026-11-02T00:00:00Z)\n"
                "      --attack-rate F   share of identities attacked, 0..1 "
                "(default 0.05)\n"
                "      --mix NAME=W,...  population weights of service, "
                "workload, ci,\n"
                "                        integration, agent, shared, dormant "
                "(default\n"
                "                        25,12,20,15,12,8,8); unnamed ones "
                "keep theirs\n"
                "      --labels FILE     write the attacks as JSON lines to "
                "FILE\n"
                "  -o, --output FILE     events to FILE instead of stdout (a "
                "copy with --brokers)\n"
                "  -b, --brokers LIST    produce to Kafka (as `mintgate "
                "produce`) instead of stdout\n"
                "  -c, --config FILE     YAML configuration (topics, kafka.*) "
                "for --brokers\n"
                "      --set KEY=VALUE   override one configuration key\n"
                "      --log-level LVL   error, warn, info (default) or "
                "debug\n"
                "  -h, --help            this help\n",
                MG_SIM_DAYS_MAX, MG_SIM_IDENTITIES_MAX);
}

/* Parse a decimal integer in [lo, hi] for flag; prints and returns -1 on
 * a bad value. */
static int simulate_int(const char *flag, const char *arg, long lo, long hi,
                        int *out) {
        char *end;
        long v;

        errno = 0;
        v = strtol(arg, &end, 10);
        if (!*arg || *end || errno || v < lo || v > hi) {
                fprintf(stderr,
                        "mintgate simulate: %s %s: expected an integer "
                        "%ld..%ld\n",
                        flag, arg, lo, hi);
                return -1;
        }
        *out = (int)v;
        return 0;
}

static FILE *simulate_open(const char *flag, const char *path) {
        FILE *fp = fopen(path, "w");

        if (!fp)
                fprintf(stderr, "mintgate simulate: %s %s: %s\n", flag, path,
                        strerror(errno));
        else
                setvbuf(fp, NULL, _IOFBF, SIMULATE_BUF_SIZE);
        return fp;
}

static void simulate_summary(const struct mg_sim_stats *stats,
                             const struct simulate_produce *sp,
                             double secs) {
        uint64_t total = 0, ids = 0, attacks = 0;
        const char *sep;
        int i;

        for (i = 0; i < MG_EVENT_TYPE__CNT; i++)
                total += stats->events[i];
        for (i = 0; i < MG_IDENTITY_KIND__CNT; i++)
                ids += stats->kinds[i];
        for (i = 0; i < MG_SIM_ATTACK__CNT; i++)
                attacks += stats->attacks[i];
        fprintf(stderr, "mintgate simulate: %" PRIu64 " events (", total);
        for (i = 0, sep = ""; i < MG_EVENT_TYPE__CNT; i++, sep = ", ")
                fprintf(stderr, "%s%s %" PRIu64, sep, mg_event_type_names[i],
                        stats->events[i]);
        fprintf(stderr, "), %" PRIu64 " identities (", ids);
        for (i = 0, sep = ""; i < MG_IDENTITY_KIND__CNT; i++) {
                if (!stats->kinds[i])
                        continue;
                fprintf(stderr, "%s%s %" PRIu64, sep,
                        mg_identity_kind_names[i], stats->kinds[i]);
                sep = ", ";
        }
        fprintf(stderr, "), %" PRIu64 " attacks (", attacks);
        for (i = 0, sep = ""; i < MG_SIM_ATTACK__CNT; i++, sep = ", ")
                fprintf(stderr, "%s%s %" PRIu64, sep, mg_sim_attack_names[i],
                        stats->attacks[i]);
        fprintf(stderr, ")");
        if (stats->attacks_unplaced)
                fprintf(stderr, ", %" PRIu64 " attacks not placed (no "
                                "eligible identity)",
                        stats->attacks_unplaced);
        if (sp)
                fprintf(stderr,
                        ", %" PRIu64 " produced, %" PRIu64
                        " rejected, %" PRIu64 " failed delivery",
                        sp->res.sent, sp->res.rejected, sp->res.failed);
        if (stats->stopped)
                fprintf(stderr, ", stopped early");
        fprintf(stderr, " in %.1f s\n", secs);
}

int cmd_simulate_main(int argc, char **argv) {
        static const struct option longopts[] = {
                CLI_COMMON_LONGOPTS,
                {"seed", required_argument, NULL, 'E'},
                {"days", required_argument, NULL, 'd'},
                {"identities", required_argument, NULL, 'n'},
                {"start", required_argument, NULL, 'T'},
                {"attack-rate", required_argument, NULL, 'a'},
                {"mix", required_argument, NULL, 'm'},
                {"labels", required_argument, NULL, 'l'},
                {"output", required_argument, NULL, 'o'},
                {NULL, 0, NULL, 0}};
        struct simulate_out so;
        struct simulate_produce sp;
        struct mg_sim_opts opts;
        struct mg_sim_stats stats;
        struct cli_common common;
        struct cli_conf cc;
        struct timespec t0, t1;
        const char *out_path = NULL, *labels_path = NULL;
        pthread_t thread;
        int c, r, rc = MG_EXIT_FAILURE, conf_loaded = 0, producing = 0;
        int fds[2] = {-1, -1};
        char errstr[512], *end;
        double total;
        mg_err_t err;

        memset(&so, 0, sizeof(so));
        memset(&sp, 0, sizeof(sp));
        memset(&common, 0, sizeof(common));
        mg_sim_opts_default(&opts);
        while ((c = getopt_long(argc, argv, "c:b:o:h", longopts, NULL)) !=
               -1) {
                if ((r = cli_common_opt(&common, c, optarg)) < 0)
                        return MG_EXIT_USAGE;
                if (r)
                        continue;
                switch (c) {
                case 'h':
                        simulate_usage(stdout);
                        return MG_EXIT_OK;
                case 'E':
                        errno = 0;
                        opts.seed = strtoull(optarg, &end, 10);
                        if (optarg[0] < '0' || optarg[0] > '9' || *end ||
                            errno) {
                                fprintf(stderr,
                                        "mintgate simulate: --seed %s: "
                                        "expected an integer 0..%" PRIu64
                                        "\n",
                                        optarg, UINT64_MAX);
                                return MG_EXIT_USAGE;
                        }
                        break;
                case 'd':
                        if (simulate_int("--days", optarg, 1, MG_SIM_DAYS_MAX,
                                         &opts.days))
                                return MG_EXIT_USAGE;
                        break;
                case 'n':
                        if (simulate_int("--identities", optarg, 1,
                                         MG_SIM_IDENTITIES_MAX,
                                         &opts.identities))
                                return MG_EXIT_USAGE;
                        break;
                case 'T':
                        if (mg_time_parse_rfc3339(optarg, strlen(optarg),
                                                  &opts.start_ms) ||
                            opts.start_ms < MG_EVENT_TS_MIN) {
                                fprintf(stderr,
                                        "mintgate simulate: --start %s: "
                                        "expected an RFC 3339 time after "
                                        "2000-01-01, e.g. "
                                        "2026-11-02T00:00:00Z\n",
                                        optarg);
                                return MG_EXIT_USAGE;
                        }
                        break;
                case 'a':
                        opts.attack_rate = strtod(optarg, &end);
                        if (!optarg[0] || *end ||
                            !(opts.attack_rate >= 0 &&
                              opts.attack_rate <= 1)) {
                                fprintf(stderr,
                                        "mintgate simulate: --attack-rate "
                                        "%s: expected a number 0..1\n",
                                        optarg);
                                return MG_EXIT_USAGE;
                        }
                        break;
                case 'm':
                        if (mg_sim_mix_parse(optarg, opts.mix, errstr,
                                             sizeof(errstr))) {
                                fprintf(stderr,
                                        "mintgate simulate: --mix %s: %s\n",
                                        optarg, errstr);
                                return MG_EXIT_USAGE;
                        }
                        break;
                case 'l':
                        labels_path = optarg;
                        break;
                case 'o':
                        out_path = optarg;
                        break;
                default:
                        simulate_usage(stderr);
                        return MG_EXIT_USAGE;
                }
        }
        if ((r = cli_no_operands(argc, argv, "simulate")))
                return r;
        for (c = 0, total = 0; c < MG_SIM_PROFILE__CNT; c++)
                total += opts.mix[c];
        if (total <= 0) {
                fprintf(stderr, "mintgate simulate: --mix: every weight is "
                                "0, nothing to simulate\n");
                return MG_EXIT_USAGE;
        }
        if (mg_sim_opts_check(&opts, errstr, sizeof(errstr))) {
                fprintf(stderr, "mintgate simulate: %s\n", errstr);
                return MG_EXIT_USAGE;
        }
        if (common.brokers) {
                int64_t last = opts.start_ms + opts.days * 86400000LL,
                        now = mg_time_now_ms();

                /* The producer validates against the clock: it would
                 * reject every event more than a day ahead. */
                if (last > now + MG_EVENT_TS_MAX_FUTURE) {
                        char when[32];

                        mg_time_format_rfc3339(last, when, sizeof(when));
                        fprintf(stderr,
                                "mintgate simulate: --start/--days: the run "
                                "ends at %s, more than a day from now; "
                                "Kafka producers reject events from the "
                                "future (choose an earlier --start)\n",
                                when);
                        return MG_EXIT_USAGE;
                }
                if ((rc = cli_conf_load(&cc, &common, "simulate")))
                        return rc;
                conf_loaded = 1;
                rc = MG_EXIT_FAILURE;
        } else if (common.config_path || common.set_cnt || common.redis) {
                fprintf(stderr, "mintgate simulate: --config, --set and "
                                "--redis only apply with --brokers\n");
                return MG_EXIT_USAGE;
        }

        if (labels_path && !(so.labels = simulate_open("--labels",
                                                      labels_path))) {
                rc = MG_EXIT_USAGE;
                goto out;
        }
        if (out_path && !(common.brokers ? (so.copy = simulate_open(
                                                    "-o", out_path))
                                         : (so.out = simulate_open(
                                                    "-o", out_path)))) {
                rc = MG_EXIT_USAGE;
                goto out;
        }
        /* Ctrl-C stops generating; SIGPIPE is ignored, so a producer that
         * stopped early shows as EPIPE on our next write. */
        cli_signals_handle(simulate_on_signal);
        if (common.brokers) {
                if (pipe(fds) != 0 || !(sp.in = fdopen(fds[0], "r"))) {
                        fprintf(stderr, "mintgate simulate: pipe: %s\n",
                                strerror(errno));
                        goto out;
                }
                fds[0] = -1;
                if (!(so.out = fdopen(fds[1], "w"))) {
                        fprintf(stderr, "mintgate simulate: pipe: %s\n",
                                strerror(errno));
                        goto out;
                }
                fds[1] = -1;
                setvbuf(so.out, NULL, _IOFBF, 64 * 1024);
                sp.cc = &cc;
                sp.popts.framing = MG_AVRO_SINGLE_OBJECT;
                sp.popts.corrupt_seed = 1;
                sp.popts.quiet = 1;
                if (pthread_create(&thread, NULL, simulate_produce_main,
                                   &sp) != 0) {
                        fprintf(stderr, "mintgate simulate: cannot start the "
                                        "producer thread\n");
                        goto out;
                }
                producing = 1;
        } else if (!so.out) {
                so.out = stdout;
                setvbuf(stdout, NULL, _IOFBF, SIMULATE_BUF_SIZE);
        }

        clock_gettime(CLOCK_MONOTONIC, &t0);
        err = mg_sim_run(&opts, simulate_emit_cb, simulate_label_cb, &so,
                         &stats, errstr, sizeof(errstr));
        if (fflush(so.out) == EOF && !so.err) {
                so.err = errno;
                so.err_what = "events";
        }
        if (producing) {
                /* EOF for the producer, which then flushes to Kafka. */
                fclose(so.out);
                so.out = NULL;
                pthread_join(thread, NULL);
                producing = 0;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (err) {
                fprintf(stderr, "mintgate simulate: %s\n", errstr);
                goto out;
        }
        if (so.err) {
                /* A producer that stopped early closed the pipe: its
                 * own error was printed, not ours to repeat. */
                if (!(common.brokers && so.err == EPIPE))
                        fprintf(stderr, "mintgate simulate: writing %s: %s\n",
                                so.err_what, strerror(so.err));
                goto out;
        }
        simulate_summary(&stats, common.brokers ? &sp : NULL,
                         (double)(t1.tv_sec - t0.tv_sec) +
                                 (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
        rc = common.brokers ? sp.rc : MG_EXIT_OK;
        if (stats.stopped && simulate_stop)
                rc = MG_EXIT_FAILURE;
out:
        if (producing) {
                fclose(so.out);
                so.out = NULL;
                pthread_join(thread, NULL);
        }
        /* The producer printed why it failed; its status says how. */
        if (common.brokers && sp.rc)
                rc = sp.rc;
        if (so.out && so.out != stdout && fclose(so.out) == EOF &&
            rc == MG_EXIT_OK) {
                fprintf(stderr, "mintgate simulate: -o %s: %s\n", out_path,
                        strerror(errno));
                rc = MG_EXIT_FAILURE;
        }
        if (so.copy && fclose(so.copy) == EOF && rc == MG_EXIT_OK) {
                fprintf(stderr, "mintgate simulate: -o %s: %s\n", out_path,
                        strerror(errno));
                rc = MG_EXIT_FAILURE;
        }
        if (so.labels && fclose(so.labels) == EOF && rc == MG_EXIT_OK) {
                fprintf(stderr, "mintgate simulate: --labels %s: %s\n",
                        labels_path, strerror(errno));
                rc = MG_EXIT_FAILURE;
        }
        if (sp.in)
                fclose(sp.in);
        if (fds[0] >= 0)
                close(fds[0]);
        if (fds[1] >= 0)
                close(fds[1]);
        if (conf_loaded)
                cli_conf_free(&cc);
        return rc;
}
