/*
 * cmd_dev.c — `mintgate dev`: the whole pipeline on the embedded default.
 *
 * Starts, in one process tree: the embedded Kafka-protocol broker
 * (in-process), a redis-server from Debian's package on a free loopback
 * port in a temporary directory, then produces demo traffic (a few
 * identities of different kinds, with a small share of messages damaged on
 * purpose so the dead-letter path shows) through the same code as
 * `mintgate produce`, consumes it through the ingest and scoring stages
 * (the same sink as `mintgate score`), printing what it decodes and
 * dead-letters, and finally each demo identity's live risk and reasons as
 * read back from Redis.
 *
 * On a terminal it keeps running after the demo, so other commands (kcat,
 * `mintgate produce --brokers ...`) can use the stack, until Ctrl-C. Without
 * a terminal (scripts, CI) it stops when the demo is done.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "mg_broker.h"
#include "mg_log.h"

/* Events the dev sink prints one by one before it only counts. */
#define DEV_PRINT_MAX 8

/* A child redis-server. */
struct dev_redis {
        pid_t pid;          /* child process, 0 when not started */
        int port;           /* loopback port */
        char dir[64];       /* temporary working directory */
};

/* What the dev sink has seen. */
struct dev_sink {
        uint64_t printed;   /* events printed */
        uint64_t seen;      /* events delivered */
};

static struct mg_ingest *volatile dev_ingest;
static volatile sig_atomic_t dev_stop;

static void dev_on_signal(int sig) {
        (void)sig;
        dev_stop = 1;
        if (dev_ingest)
                mg_ingest_stop(dev_ingest);
}

static int free_port(void) {
        struct sockaddr_in sin;
        socklen_t slen = sizeof(sin);
        int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

        if (fd < 0)
                return -1;
        memset(&sin, 0, sizeof(sin));
        sin.sin_family = AF_INET;
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
            getsockname(fd, (struct sockaddr *)&sin, &slen) == 0)
                port = ntohs(sin.sin_port);
        close(fd);
        return port;
}

/* Send PING, expect +PONG: the server is ready. */
static int redis_ping(int port) {
        struct sockaddr_in sin;
        char buf[16];
        int fd = socket(AF_INET, SOCK_STREAM, 0), ok = 0;
        ssize_t n;

        if (fd < 0)
                return 0;
        memset(&sin, 0, sizeof(sin));
        sin.sin_family = AF_INET;
        sin.sin_port = htons((uint16_t)port);
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
            write(fd, "PING\r\n", 6) == 6 && (n = read(fd, buf, 7)) > 0)
                ok = n >= 5 && !memcmp(buf, "+PONG", 5);
        close(fd);
        return ok;
}

static int dev_redis_start(struct dev_redis *rd) {
        char port[16], logfile[128];
        int i;

        snprintf(rd->dir, sizeof(rd->dir), "/tmp/mintgate-dev-XXXXXX");
        if (!mkdtemp(rd->dir)) {
                fprintf(stderr, "mintgate dev: mkdtemp: %s\n",
                        strerror(errno));
                return -1;
        }
        if ((rd->port = free_port()) < 0) {
                fprintf(stderr, "mintgate dev: no free port for Redis\n");
                return -1;
        }
        snprintf(port, sizeof(port), "%d", rd->port);
        snprintf(logfile, sizeof(logfile), "%s/redis.log", rd->dir);
        rd->pid = fork();
        if (rd->pid < 0) {
                fprintf(stderr, "mintgate dev: fork: %s\n", strerror(errno));
                rd->pid = 0;
                return -1;
        }
        if (rd->pid == 0) {
                execlp("redis-server", "redis-server", "--port", port,
                       "--bind", "127.0.0.1", "--dir", rd->dir, "--save", "",
                       "--appendonly", "no", "--logfile", logfile,
                       (char *)NULL);
                fprintf(stderr,
                        "mintgate dev: cannot run redis-server (%s); "
                        "run deploy/install-deps.sh\n",
                        strerror(errno));
                _exit(127);
        }
        for (i = 0; i < 100; i++) { /* 5 s at most */
                int status;

                if (redis_ping(rd->port))
                        return 0;
                if (waitpid(rd->pid, &status, WNOHANG) == rd->pid) {
                        rd->pid = 0;
                        fprintf(stderr, "mintgate dev: redis-server exited; "
                                        "see its log above\n");
                        return -1;
                }
                usleep(50 * 1000);
        }
        fprintf(stderr, "mintgate dev: redis-server did not answer PING\n");
        return -1;
}

static void dev_redis_stop(struct dev_redis *rd) {
        char path[128];

        if (rd->pid > 0) {
                kill(rd->pid, SIGTERM);
                waitpid(rd->pid, NULL, 0);
                rd->pid = 0;
        }
        if (rd->dir[0]) {
                /* Everything dev put there: Redis' log, the demo policy,
                 * the demo's audit log. */
                static const char *const files[] = {"redis.log",
                                                    "policy.yaml",
                                                    "audit.log"};
                size_t i;

                for (i = 0; i < sizeof(files) / sizeof(*files); i++) {
                        snprintf(path, sizeof(path), "%s/%s", rd->dir,
                                 files[i]);
                        unlink(path);
                }
                if (rmdir(rd->dir) != 0)
                        mg_log_warn("dev", "%s left behind: %s", rd->dir,
                                    strerror(errno));
        }
}

/* Demo traffic: a CI runner that deploys during working hours, a steady
 * service account, an AI agent, and a burst of failures plus a leaked
 * secret for one identity. Written as JSON lines, the public input form. */
static FILE *dev_demo_traffic(int64_t now_ms) {
        static const struct {
                const char *identity, *kind, *client, *ip, *resource,
                        *scope;
        } ids[] = {
                {"spiffe://corp/ci/deployer", "ci_runner", "gh-actions",
                 "203.0.113.7", "api://deploy", "deploy:write"},
                {"svc-billing-sync", "service_account", "billing",
                 "10.20.0.15", "api://ledger", "ledger:read"},
                {"agent://support-copilot", "ai_agent", "copilot-gw",
                 "198.51.100.20", "api://tickets", "tickets:write"},
        };
        FILE *fp = tmpfile();
        int i, j, n = 0;

        if (!fp)
                return NULL;
        for (i = 0; i < 60; i++) {
                for (j = 0; j < 3; j++) {
                        int64_t ts = now_ms - (60 - i) * 60000LL + j * 1000;

                        fprintf(fp,
                                "{\"type\":\"auth\",\"event_id\":\"a-%d\","
                                "\"ts\":%" PRId64 ",\"identity\":\"%s\","
                                "\"identity_kind\":\"%s\",\"client_id\":\"%s\","
                                "\"source_ip\":\"%s\",\"user_agent\":"
                                "\"demo/1.0\",\"auth_method\":\"jwt_svid\","
                                "\"grant_type\":\"client_credentials\","
                                "\"audience\":\"%s\",\"scopes\":[\"%s\"],"
                                "\"outcome\":\"success\",\"token_id\":"
                                "\"t-%d\"}\n",
                                n, ts, ids[j].identity, ids[j].kind,
                                ids[j].client, ids[j].ip, ids[j].resource,
                                ids[j].scope, n);
                        fprintf(fp,
                                "{\"type\":\"usage\",\"event_id\":\"u-%d\","
                                "\"ts\":%" PRId64 ",\"identity\":\"%s\","
                                "\"token_id\":\"t-%d\",\"resource\":\"%s\","
                                "\"action\":\"POST /v1/items\",\"scope\":"
                                "\"%s\",\"source_ip\":\"%s\",\"status\":201,"
                                "\"bytes\":%d}\n",
                                n, ts + 250, ids[j].identity, n,
                                ids[j].resource, ids[j].scope, ids[j].ip,
                                512 + 17 * i);
                        n++;
                }
        }
        for (i = 0; i < 5; i++)
                fprintf(fp,
                        "{\"type\":\"auth\",\"event_id\":\"f-%d\",\"ts\":"
                        "%" PRId64 ",\"identity\":\"svc-billing-sync\","
                        "\"client_id\":\"billing\",\"source_ip\":"
                        "\"192.0.2.66\",\"auth_method\":\"client_secret\","
                        "\"grant_type\":\"client_credentials\",\"scopes\":"
                        "[\"ledger:admin\"],\"outcome\":\"failure\","
                        "\"failure_reason\":\"invalid_client\"}\n",
                        i, now_ms - 30000 + i * 1000);
        fprintf(fp,
                "{\"type\":\"signal\",\"event_id\":\"s-1\",\"ts\":%" PRId64
                ",\"identity\":\"svc-billing-sync\",\"kind\":"
                "\"secret_exposed\",\"severity\":90,\"source\":"
                "\"secret-scanner\",\"detail\":\"client secret found in a "
                "public repository\"}\n",
                now_ms - 5000);
        rewind(fp);
        return fp;
}

static void dev_observe_cb(void *opaque, const struct mg_event **evs,
                           const mg_err_t *verdicts, size_t cnt) {
        struct dev_sink *ds = opaque;
        size_t i;

        for (i = 0; i < cnt; i++) {
                const struct mg_event *ev = evs[i];
                char ts[32];

                ds->seen++;
                if (ds->printed >= DEV_PRINT_MAX)
                        continue;
                ds->printed++;
                mg_time_format_rfc3339(ev->ts_ms, ts, sizeof(ts));
                printf("  %-6s %s  %-28s ", mg_event_type_names[ev->type], ts,
                       ev->identity);
                switch (ev->type) {
                case MG_EVENT_AUTH:
                        printf("%s from %s via %s: %s\n", ev->u.auth.client_id,
                               ev->u.auth.source_ip,
                               mg_grant_type_names[ev->u.auth.grant_type],
                               mg_auth_outcome_names[ev->u.auth.outcome]);
                        break;
                case MG_EVENT_USAGE:
                        printf("%s %s -> %d\n", ev->u.usage.action,
                               ev->u.usage.resource, ev->u.usage.status);
                        break;
                default:
                        printf("%s (severity %d) from %s\n",
                               mg_signal_kind_names[ev->u.signal.kind],
                               ev->u.signal.severity, ev->u.signal.source);
                        break;
                }
                if (ds->printed == DEV_PRINT_MAX)
                        printf("  ... (further events scored, not "
                               "printed)\n");
        }
        fflush(stdout);
}

/* The risk of each demo identity, read back from Redis. */
static void dev_print_risk(const struct cli_conf *cc) {
        static const char *const ids[] = {"spiffe://corp/ci/deployer",
                                          "svc-billing-sync",
                                          "agent://support-copilot"};
        char errstr[256];
        size_t i;
        int r;

        printf("\nlive risk (from Redis):\n");
        for (i = 0; i < sizeof(ids) / sizeof(*ids); i++) {
                struct mg_store_rec *rec = mg_store_rec_new(ids[i]);
                struct mg_risk risk;

                if (!rec)
                        return;
                if (mg_store_redis_get(&cc->redis, rec, errstr,
                                       sizeof(errstr))) {
                        printf("  %-28s %s\n", ids[i], errstr);
                        mg_store_rec_destroy(rec);
                        continue;
                }
                mg_baseline_risk(rec->bl, &cc->scoring, mg_time_now_ms(),
                                 &risk);
                printf("  %-28s risk %5.1f %-8s events auth %" PRIu64
                       " usage %" PRIu64 " signal %" PRIu64 "\n",
                       ids[i], risk.score, mg_risk_level_names[risk.level],
                       mg_baseline_event_count(rec->bl, MG_EVENT_AUTH),
                       mg_baseline_event_count(rec->bl, MG_EVENT_USAGE),
                       mg_baseline_event_count(rec->bl, MG_EVENT_SIGNAL));
                for (r = 0; r < risk.reason_cnt; r++)
                        printf("      %-22s %5.1f  %s\n",
                               mg_signal_names[risk.reasons[r].signal],
                               risk.reasons[r].points,
                               risk.reasons[r].detail);
                mg_store_rec_destroy(rec);
        }
}

/* The demo's policy: one path per demo identity's client. */
static const char dev_policy[] =
        "version: 1\n"
        "defaults:\n"
        "  thresholds: {narrow: 25, step_up: 50, deny: 80}\n"
        "  max_ttl: 1h\n"
        "  degraded: fail_closed\n"
        "policies:\n"
        "  - name: ci-deploy\n"
        "    client: \"gh-actions\"\n"
        "    resource: \"api://deploy\"\n"
        "    allowed_scopes: [\"deploy:read\", \"deploy:write\"]\n"
        "    high_impact_scopes: [\"deploy:write\"]\n"
        "    max_ttl: 30m\n"
        "  - name: billing\n"
        "    client: \"billing\"\n"
        "    resource: \"api://ledger\"\n"
        "    allowed_scopes: [\"ledger:read\"]\n"
        "    max_ttl: 1h\n"
        "  - name: support-agent\n"
        "    client: \"copilot-gw\"\n"
        "    resource: \"api://tickets\"\n"
        "    allowed_scopes: [\"tickets:read\", \"tickets:write\"]\n"
        "    high_impact_scopes: [\"tickets:write\"]\n"
        "    max_ttl: 10m\n";

/* The demo's issuance requests, one per demo identity; the copilot asks
 * for a scope its policy does not allow. */
static const char dev_requests[] =
        "{\"id\":\"demo-1\",\"identity\":\"spiffe://corp/ci/deployer\","
        "\"client_id\":\"gh-actions\",\"resource\":\"api://deploy\","
        "\"scopes\":[\"deploy:write\"],\"grant_type\":"
        "\"client_credentials\",\"ttl\":900,\"context\":{\"source_ip\":"
        "\"203.0.113.7\"}}\n"
        "{\"id\":\"demo-2\",\"identity\":\"svc-billing-sync\","
        "\"client_id\":\"billing\",\"resource\":\"api://ledger\","
        "\"scopes\":[\"ledger:read\"],\"grant_type\":"
        "\"client_credentials\",\"ttl\":3600}\n"
        "{\"id\":\"demo-3\",\"identity\":\"agent://support-copilot\","
        "\"client_id\":\"copilot-gw\",\"resource\":\"api://tickets\","
        "\"scopes\":[\"tickets:write\",\"admin:all\"],\"grant_type\":"
        "\"client_credentials\",\"ttl\":3600}\n";

/* Scoring in the background once the demo is shown (interactive). */
struct dev_ingest_thread {
        struct mg_ingest *ing;           /* the demo's ingest + scorer */
        struct mg_ingest_run_opts opts;  /* until stopped */
};

static void *dev_ingest_main(void *arg) {
        struct dev_ingest_thread *it = arg;
        char errstr[256];

        if (mg_ingest_run(it->ing, &it->opts, errstr, sizeof(errstr)))
                fprintf(stderr, "mintgate dev: ingest: %s\n", errstr);
        return NULL;
}

struct dev_serve {
        struct mg_service *svc;   /* decision logic */
        struct mg_server *srv;    /* transport */
        pthread_t thread;         /* runs srv */
        int running;
};

static void *dev_serve_main(void *arg) {
        struct dev_serve *ds = arg;
        char errstr[128];

        mg_server_run(ds->srv, errstr, sizeof(errstr));
        return NULL;
}

/* Start the decision service on a free port with the demo policy, ask it
 * the demo requests and print the answers. */
static int dev_decide(struct cli_conf *cc, const char *dir,
                      struct dev_serve *ds) {
        struct mg_audit_log_opts aopts;
        struct mg_service_opts sopts;
        struct mg_server_handler handler;
        char path[128], audit[128], errstr[512];
        size_t errors = 0;
        FILE *fp;
        int fd;

        snprintf(path, sizeof(path), "%s/policy.yaml", dir);
        snprintf(audit, sizeof(audit), "%s/audit.log", dir);
        if (!(fp = fopen(path, "w")) || fputs(dev_policy, fp) < 0 ||
            fclose(fp) != 0) {
                fprintf(stderr, "mintgate dev: cannot write %s\n", path);
                return -1;
        }
        memset(&aopts, 0, sizeof(aopts));
        aopts.brokers = cli_kafka_brokers(cc);
        aopts.kafka = &cc->ingest.kafka;
        if (mg_conf_set(cc->conf, "decision.policy", path, errstr,
                        sizeof(errstr)) ||
            mg_conf_set(cc->conf, "audit.log", audit, errstr,
                        sizeof(errstr)) ||
            mg_conf_set(cc->conf, "serve.listen", "127.0.0.1:0", errstr,
                        sizeof(errstr)) ||
            mg_conf_set(cc->conf, "serve.http_listen", "127.0.0.1:0", errstr,
                        sizeof(errstr))) {
                fprintf(stderr, "mintgate dev: %s\n", errstr);
                return -1;
        }
        sopts.conf = &cc->service;
        sopts.risk = &cc->risk;
        sopts.redis = &cc->redis;
        sopts.audit = &cc->audit;
        sopts.audit_opts = &aopts;
        if (mg_service_new(&sopts, &ds->svc, errstr, sizeof(errstr))) {
                fprintf(stderr, "mintgate dev: decision service: %s\n",
                        errstr);
                return -1;
        }
        mg_service_handler(ds->svc, &handler);
        if (mg_server_new(&cc->server, &handler, &ds->srv, errstr,
                          sizeof(errstr)) ||
            pthread_create(&ds->thread, NULL, dev_serve_main, ds) != 0) {
                fprintf(stderr, "mintgate dev: decision service: %s\n",
                        errstr);
                return -1;
        }
        ds->running = 1;
        printf("\ndecision service on %s (HTTP %s), policy %s, audit %s\n"
               "sample queries (mintgate query --addr %s):\n",
               mg_server_addr(ds->srv), mg_server_http_addr(ds->srv), path,
               audit, mg_server_addr(ds->srv));
        fputs(dev_requests, stdout);
        printf("answers:\n");
        fflush(stdout);
        if ((fd = cli_query_connect(mg_server_addr(ds->srv))) < 0)
                return -1;
        if (cli_query_exchange(fd, dev_requests, strlen(dev_requests), 3,
                               stdout, &errors) != 0 || errors) {
                close(fd);
                return -1;
        }
        close(fd);
        return 0;
}

static void dev_serve_stop(struct dev_serve *ds) {
        char errstr[256];

        if (ds->running) {
                mg_server_stop(ds->srv);
                pthread_join(ds->thread, NULL);
                ds->running = 0;
        }
        if (ds->svc && mg_service_flush(ds->svc, 5000, errstr,
                                        sizeof(errstr)))
                fprintf(stderr, "mintgate dev: audit flush: %s\n", errstr);
        mg_server_destroy(ds->srv);
        mg_service_destroy(ds->svc);
        ds->srv = NULL;
        ds->svc = NULL;
}

static void dev_usage(FILE *fp) {
        fprintf(fp,
                "Usage: mintgate dev [options]\n\n"
                "Starts the embedded broker, a local redis-server and the "
                "pipeline, sends demo\ntraffic and shows what happens. On a "
                "terminal it keeps running until Ctrl-C;\notherwise it stops "
                "after the demo.\n\n" CLI_COMMON_HELP
                "  -p, --port PORT       broker bootstrap port (default: a "
                "free one)\n"
                "      --stay            keep running after the demo even "
                "without a terminal\n");
}

int cmd_dev_main(int argc, char **argv) {
        static const struct option longopts[] = {
                CLI_COMMON_LONGOPTS,
                {"port", required_argument, NULL, 'p'},
                {"stay", no_argument, NULL, 's'},
                {NULL, 0, NULL, 0}};
        static const char *const topics[] = {"mg.auth", "mg.usage",
                                             "mg.signals", "mg.dlq",
                                             "mg.decisions"};
        struct mg_broker_opts bopts = {"127.0.0.1", 0, topics, 5, 4};
        struct cli_produce_opts popts;
        struct cli_produce_result pres;
        struct mg_ingest_run_opts ropts = {1500, 0};
        struct dev_sink dsink = {0, 0};
        struct cli_score_sink ssink;
        struct mg_ingest_sink sink;
        struct mg_store store;
        struct dev_serve dserve;
        struct dev_redis rd;
        struct mg_ingest_stats st;
        struct cli_common common;
        struct cli_conf cc;
        struct mg_broker *broker = NULL;
        struct mg_ingest *ing = NULL;
        FILE *demo = NULL;
        char errstr[512], *end;
        int c, r, rc = MG_EXIT_FAILURE, stay = isatty(STDIN_FILENO);
        long v;

        memset(&common, 0, sizeof(common));
        memset(&rd, 0, sizeof(rd));
        memset(&ssink, 0, sizeof(ssink));
        memset(&dserve, 0, sizeof(dserve));
        while ((c = getopt_long(argc, argv, "c:b:p:h", longopts, NULL)) !=
               -1) {
                if ((r = cli_common_opt(&common, c, optarg)) < 0)
                        return MG_EXIT_USAGE;
                if (r)
                        continue;
                switch (c) {
                case 'h':
                        dev_usage(stdout);
                        return MG_EXIT_OK;
                case 'p':
                        v = strtol(optarg, &end, 10);
                        if (*end || v < 0 || v > 65535) {
                                fprintf(stderr,
                                        "mintgate dev: --port %s: not a port "
                                        "number\n",
                                        optarg);
                                return MG_EXIT_USAGE;
                        }
                        bopts.port = (int)v;
                        break;
                case 's':
                        stay = 1;
                        break;
                default:
                        dev_usage(stderr);
                        return MG_EXIT_USAGE;
                }
        }
        if (common.brokers) {
                fprintf(stderr, "mintgate dev: --brokers: dev runs its own "
                                "broker (see --port)\n");
                return MG_EXIT_USAGE;
        }
        if ((r = cli_conf_load(&cc, &common, "dev")) ||
            (r = cli_asn_load(&cc, "dev")))
                return r;
        cli_signals_handle(dev_on_signal);

        if (mg_broker_new(&bopts, &broker, errstr, sizeof(errstr))) {
                fprintf(stderr, "mintgate dev: broker: %s\n", errstr);
                goto out;
        }
        /* The embedded broker answers an empty fetch only after the full
         * ingest.fetch_wait, even when data arrives meanwhile (Kafka
         * answers at once): keep it short so new events show promptly. */
        if (mg_conf_set(cc.conf, "kafka.bootstrap.servers",
                        mg_broker_bootstrap(broker), errstr,
                        sizeof(errstr)) ||
            mg_conf_set(cc.conf, "ingest.fetch_wait", "10ms", errstr,
                        sizeof(errstr))) {
                fprintf(stderr, "mintgate dev: %s\n", errstr);
                goto out;
        }
        printf("mintgate dev\n"
               "  broker  %s  (embedded, in-memory; topics mg.auth "
               "mg.usage mg.signals mg.dlq mg.decisions)\n",
               mg_broker_bootstrap(broker));
        if (dev_redis_start(&rd))
                goto out;
        printf("  redis   127.0.0.1:%d  (redis-server in %s)\n\n", rd.port,
               rd.dir);
        snprintf(errstr, sizeof(errstr), "127.0.0.1:%d", rd.port);
        if (mg_conf_set(cc.conf, "redis.addr", errstr, errstr,
                        sizeof(errstr)) ||
            mg_store_redis_new(&cc.redis, &store, errstr, sizeof(errstr)) ||
            mg_scorer_new(&cc.scoring, &cc.worker, &store, &ssink.sc, errstr,
                          sizeof(errstr))) {
                fprintf(stderr, "mintgate dev: scoring: %s\n", errstr);
                goto out;
        }
        ssink.observe_cb = dev_observe_cb;
        ssink.observe_opaque = &dsink;
        cli_score_sink_init(&ssink, &sink);

        if (!(demo = dev_demo_traffic(mg_time_now_ms()))) {
                fprintf(stderr, "mintgate dev: tmpfile: %s\n",
                        strerror(errno));
                goto out;
        }
        memset(&popts, 0, sizeof(popts));
        popts.framing = MG_AVRO_SINGLE_OBJECT;
        popts.corrupt_rate = 0.02; /* show the dead-letter path */
        popts.corrupt_seed = 7;
        popts.quiet = 1;
        if (cli_produce(&cc, demo, &popts, &pres) != MG_EXIT_OK)
                goto out;
        printf("demo traffic: %" PRIu64 " events produced (%" PRIu64
               " damaged on purpose)\n\ningest + scoring (decoded events):\n",
               pres.sent, pres.damaged);
        fflush(stdout);

        if (mg_ingest_new(&cc.ingest, &sink, &ing, errstr, sizeof(errstr))) {
                fprintf(stderr, "mintgate dev: ingest: %s\n", errstr);
                goto out;
        }
        dev_ingest = ing;
        if (!dev_stop &&
            mg_ingest_run(ing, &ropts, errstr, sizeof(errstr))) {
                fprintf(stderr, "mintgate dev: ingest: %s\n", errstr);
                goto out;
        }
        mg_ingest_stats_get(ing, &st);
        printf("\nsummary: consumed %" PRIu64 ", decoded %" PRIu64
               " (auth %" PRIu64 ", usage %" PRIu64 ", signal %" PRIu64
               "), dead-lettered %" PRIu64,
               st.consumed, st.delivered, st.by_type[MG_EVENT_AUTH],
               st.by_type[MG_EVENT_USAGE], st.by_type[MG_EVENT_SIGNAL],
               st.dead_lettered);
        cli_print_dlq_reasons(stdout, &st);
        printf(" -> %s\n", cc.ingest.topic_dlq);
        dev_print_risk(&cc);
        if (dev_decide(&cc, rd.dir, &dserve) != 0) {
                rc = MG_EXIT_FAILURE;
                goto out;
        }
        if (stay && !dev_stop) {
                struct dev_ingest_thread it = {ing, {0, 0}};
                pthread_t t;

                printf("\nrunning: scoring and deciding until Ctrl-C. Try:\n"
                       "  mintgate produce --brokers %s FILE.jsonl\n"
                       "  mintgate query --addr %s --identity "
                       "svc-billing-sync --client billing --resource "
                       "api://ledger --scope ledger:read\n"
                       "  mintgate baseline show svc-billing-sync --redis "
                       "127.0.0.1:%d\n",
                       mg_broker_bootstrap(broker), mg_server_addr(dserve.srv),
                       rd.port);
                fflush(stdout);
                if (pthread_create(&t, NULL, dev_ingest_main, &it) == 0) {
                        while (!dev_stop)
                                usleep(100 * 1000);
                        mg_ingest_stop(ing);
                        pthread_join(t, NULL);
                }
        }
        rc = st.consumed == pres.sent ? MG_EXIT_OK : MG_EXIT_FAILURE;
        if (rc)
                fprintf(stderr,
                        "mintgate dev: %" PRIu64 " produced but %" PRIu64
                        " consumed\n",
                        pres.sent, st.consumed);
out:
        dev_ingest = NULL;
        dev_serve_stop(&dserve);
        mg_ingest_destroy(ing);
        cli_score_sink_free(&ssink);
        if (demo)
                fclose(demo);
        dev_redis_stop(&rd);
        mg_broker_destroy(broker);
        cli_conf_free(&cc);
        return rc;
}
