/*
 * cmd_serve.c — `mintgate serve`: the decision service. The transport
 * (decision/mg_server.h) runs on its worker threads; this thread watches
 * signals and the policy file: SIGHUP or an edit reloads the policy
 * atomically (a broken file is refused and the old policy serves on),
 * SIGINT/SIGTERM stop the service after the audit log is flushed.
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "mg_log.h"

static volatile sig_atomic_t serve_stop, serve_hup;

static void serve_on_signal(int sig) {
        if (sig == SIGHUP)
                serve_hup = 1;
        else
                serve_stop = 1;
}

struct serve_thread {
        struct mg_server *srv;
        mg_err_t err;
        char errstr[256];
};

static void *serve_thread_main(void *arg) {
        struct serve_thread *st = arg;

        st->err = mg_server_run(st->srv, st->errstr, sizeof(st->errstr));
        return NULL;
}

static void serve_usage(FILE *fp) {
        fprintf(fp,
                "Usage: mintgate serve [options]\n\n"
                "Answers token issuers: one JSON request per line over TCP "
                "(pipelined), or\nPOST /v1/decide over HTTP; GET /healthz, "
                "GET /metrics. Every decision is\nsigned (audit.key_file) and "
                "audited (audit.log, and mg.decisions when\n--brokers or "
                "kafka.bootstrap.servers is set).\n\n" CLI_COMMON_HELP
                "  -l, --listen ADDR     line protocol host:port "
                "(serve.listen)\n"
                "      --http ADDR       HTTP host:port, \"\" for none "
                "(serve.http_listen)\n"
                "  -p, --policy FILE     policy file (decision.policy)\n\n"
                "Prints `listen=ADDR http=ADDR` on stdout once serving. "
                "SIGHUP reloads the\npolicy (so does editing the file).\n");
}

int cmd_serve_main(int argc, char **argv) {
        static const struct option longopts[] = {
                CLI_COMMON_LONGOPTS,
                {"listen", required_argument, NULL, 'l'},
                {"http", required_argument, NULL, 'H'},
                {"policy", required_argument, NULL, 'p'},
                {NULL, 0, NULL, 0}};
        const char *listen = NULL, *http = NULL, *policy = NULL;
        struct mg_audit_log_opts aopts;
        struct mg_service_opts sopts;
        struct mg_server_handler handler;
        struct serve_thread st;
        struct cli_common common;
        struct cli_conf cc;
        struct mg_service *svc = NULL;
        struct mg_server *srv = NULL;
        pthread_t thread;
        char errstr[512];
        int c, r, rc = MG_EXIT_FAILURE;
        int64_t next_poll = 0;
        mg_err_t err;

        memset(&common, 0, sizeof(common));
        while ((c = getopt_long(argc, argv, "c:b:l:p:h", longopts, NULL)) !=
               -1) {
                if ((r = cli_common_opt(&common, c, optarg)) < 0)
                        return MG_EXIT_USAGE;
                if (r)
                        continue;
                switch (c) {
                case 'h':
                        serve_usage(stdout);
                        return MG_EXIT_OK;
                case 'l':
                        listen = optarg;
                        break;
                case 'H':
                        http = optarg;
                        break;
                case 'p':
                        policy = optarg;
                        break;
                default:
                        serve_usage(stderr);
                        return MG_EXIT_USAGE;
                }
        }
        if ((r = cli_no_operands(argc, argv, "serve")) ||
            (r = cli_conf_load(&cc, &common, "serve")))
                return r;
        if ((listen && mg_conf_set(cc.conf, "serve.listen", listen, errstr,
                                   sizeof(errstr))) ||
            (http && mg_conf_set(cc.conf, "serve.http_listen", http, errstr,
                                 sizeof(errstr))) ||
            (policy && mg_conf_set(cc.conf, "decision.policy", policy, errstr,
                                   sizeof(errstr)))) {
                fprintf(stderr, "mintgate serve: %s\n", errstr);
                rc = MG_EXIT_USAGE;
                goto out;
        }
        memset(&aopts, 0, sizeof(aopts));
        aopts.brokers = cli_kafka_brokers(&cc);
        aopts.kafka = &cc.ingest.kafka;
        if (!aopts.brokers)
                mg_log_warn("serve",
                            "no Kafka configured (--brokers): decisions are "
                            "audited to %s only",
                            cc.audit.log);
        sopts.conf = &cc.service;
        sopts.risk = &cc.risk;
        sopts.redis = &cc.redis;
        sopts.audit = &cc.audit;
        sopts.audit_opts = &aopts;
        if ((err = mg_service_new(&sopts, &svc, errstr, sizeof(errstr)))) {
                fprintf(stderr, "mintgate serve: %s\n", errstr);
                rc = err == MG_ERR_CONFIG || err == MG_ERR_INVALID
                             ? MG_EXIT_USAGE
                             : MG_EXIT_FAILURE;
                goto out;
        }
        mg_service_handler(svc, &handler);
        if ((err = mg_server_new(&cc.server, &handler, &srv, errstr,
                                 sizeof(errstr)))) {
                fprintf(stderr, "mintgate serve: %s\n", errstr);
                rc = err == MG_ERR_CONFIG ? MG_EXIT_USAGE : MG_EXIT_FAILURE;
                goto out;
        }
        signal(SIGHUP, serve_on_signal);
        cli_signals_handle(serve_on_signal);
        memset(&st, 0, sizeof(st));
        st.srv = srv;
        if (pthread_create(&thread, NULL, serve_thread_main, &st) != 0) {
                fprintf(stderr, "mintgate serve: cannot start\n");
                goto out;
        }
        printf("listen=%s http=%s\n", mg_server_addr(srv),
               mg_server_http_addr(srv));
        fflush(stdout);
        mg_log_info("serve", "serving on %s (HTTP %s), policy %s, Redis %s",
                    mg_server_addr(srv), mg_server_http_addr(srv),
                    cc.service.policy, cc.redis.addr);
        while (!serve_stop) {
                int64_t now = mg_time_now_ms();

                if (serve_hup || now >= next_poll) {
                        err = serve_hup ? mg_service_reload(svc, errstr,
                                                            sizeof(errstr))
                                        : mg_service_reload_if_changed(
                                                  svc, errstr, sizeof(errstr));
                        if (err)
                                mg_log_error("serve",
                                             "policy not reloaded, the old "
                                             "one serves on: %s",
                                             errstr);
                        else if (serve_hup)
                                mg_log_info("serve", "policy reloaded");
                        serve_hup = 0;
                        next_poll = now + cc.service.policy_poll_ms;
                }
                usleep(50 * 1000);
        }
        mg_log_info("serve", "stopping");
        mg_server_stop(srv);
        pthread_join(thread, NULL);
        rc = MG_EXIT_OK;
        if (mg_service_flush(svc, 10000, errstr, sizeof(errstr))) {
                fprintf(stderr, "mintgate serve: audit flush: %s\n", errstr);
                rc = MG_EXIT_FAILURE;
        }
out:
        mg_server_destroy(srv);
        mg_service_destroy(svc);
        cli_conf_free(&cc);
        return rc;
}
