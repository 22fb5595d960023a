/*
 * cli.c — configuration loading and helpers shared by the subcommands.
 */
#include "cli.h"

#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "mg_log.h"

#define GEN_OFF(field) offsetof(struct cli_general_conf, field)

static const struct mg_conf_prop cli_general_props[] = {
        {"log.level", MG_CONF_STR, GEN_OFF(log_level), "info", 1, 16, 1,
         "Least severe level logged to stderr: error, warn, info or debug."},
};

int cli_common_opt(struct cli_common *common, int c, const char *arg) {
        switch (c) {
        case 'c':
                common->config_path = arg;
                return 1;
        case 'S':
                if (common->set_cnt >= (int)(sizeof(common->sets) /
                                             sizeof(*common->sets))) {
                        fprintf(stderr, "mintgate: too many --set options\n");
                        return -1;
                }
                if (!strchr(arg, '=')) {
                        fprintf(stderr,
                                "mintgate: --set %s: expected KEY=VALUE\n",
                                arg);
                        return -1;
                }
                common->sets[common->set_cnt++] = arg;
                return 1;
        case 'L':
                if (mg_log_level_parse(arg) < 0) {
                        fprintf(stderr,
                                "mintgate: --log-level %s: expected error, "
                                "warn, info or debug\n",
                                arg);
                        return -1;
                }
                common->log_level = arg;
                return 1;
        case 'b':
                common->brokers = arg;
                return 1;
        case 'R':
                common->redis = arg;
                return 1;
        case 'g':
                common->group = arg;
                return 1;
        case 'I':
                if (mg_conf_parse_ms(arg, &common->idle_exit_ms) ||
                    common->idle_exit_ms <= 0) {
                        fprintf(stderr,
                                "mintgate: --idle-exit %s: expected a "
                                "duration such as 500ms or 5s\n",
                                arg);
                        return -1;
                }
                return 1;
        default:
                return 0;
        }
}

int cli_conf_load(struct cli_conf *cc, const struct cli_common *common,
                  const char *cmd) {
        char errstr[512];
        mg_err_t err;
        int i;

        memset(cc, 0, sizeof(*cc));
        cc->conf = mg_conf_new();
        if (!cc->conf) {
                fprintf(stderr, "mintgate %s: out of memory\n", cmd);
                return MG_EXIT_FAILURE;
        }
        if ((err = mg_conf_add_section(cc->conf, "General", cli_general_props,
                                       sizeof(cli_general_props) /
                                               sizeof(*cli_general_props),
                                       &cc->general, errstr,
                                       sizeof(errstr))) ||
            (err = mg_conf_add_section(cc->conf, "Ingest",
                                       mg_ingest_conf_props,
                                       mg_ingest_conf_prop_cnt, &cc->ingest,
                                       errstr, sizeof(errstr))) ||
            (err = mg_conf_add_section(cc->conf, "Scoring",
                                       mg_scoring_conf_props,
                                       mg_scoring_conf_prop_cnt, &cc->scoring,
                                       errstr, sizeof(errstr))) ||
            (err = mg_conf_add_section(cc->conf, "Redis", mg_redis_conf_props,
                                       mg_redis_conf_prop_cnt, &cc->redis,
                                       errstr, sizeof(errstr))) ||
            (err = mg_conf_add_section(cc->conf, "Scoring worker",
                                       mg_worker_conf_props,
                                       mg_worker_conf_prop_cnt, &cc->worker,
                                       errstr, sizeof(errstr))) ||
            (err = mg_conf_add_section(cc->conf, "Decision service",
                                       mg_service_conf_props,
                                       mg_service_conf_prop_cnt, &cc->service,
                                       errstr, sizeof(errstr))) ||
            (err = mg_conf_add_section(cc->conf, "Decision service: live risk",
                                       mg_riskcache_conf_props,
                                       mg_riskcache_conf_prop_cnt, &cc->risk,
                                       errstr, sizeof(errstr))) ||
            (err = mg_conf_add_section(cc->conf, "Decision service: network",
                                       mg_server_conf_props,
                                       mg_server_conf_prop_cnt, &cc->server,
                                       errstr, sizeof(errstr))) ||
            (err = mg_conf_add_section(cc->conf, "Audit", mg_audit_conf_props,
                                       mg_audit_conf_prop_cnt, &cc->audit,
                                       errstr, sizeof(errstr))))
                goto fail;
        if (common->config_path &&
            (err = mg_conf_load_file(cc->conf, common->config_path, errstr,
                                     sizeof(errstr))))
                goto fail;
        if (common->brokers &&
            (err = mg_conf_set(cc->conf, "kafka.bootstrap.servers",
                               common->brokers, errstr, sizeof(errstr))))
                goto fail;
        if (common->redis &&
            (err = mg_conf_set(cc->conf, "redis.addr", common->redis, errstr,
                               sizeof(errstr))))
                goto fail;
        if (common->group &&
            (err = mg_conf_set(cc->conf, "ingest.group_id", common->group,
                               errstr, sizeof(errstr))))
                goto fail;
        for (i = 0; i < common->set_cnt; i++) {
                char key[256];
                const char *eq = strchr(common->sets[i], '=');
                size_t klen = (size_t)(eq - common->sets[i]);

                if (klen >= sizeof(key)) {
                        snprintf(errstr, sizeof(errstr),
                                 "--set: key too long");
                        goto fail;
                }
                memcpy(key, common->sets[i], klen);
                key[klen] = '\0';
                if ((err = mg_conf_set(cc->conf, key, eq + 1, errstr,
                                       sizeof(errstr))))
                        goto fail;
        }
        if (mg_log_level_parse(cc->general.log_level) < 0) {
                snprintf(errstr, sizeof(errstr),
                         "log.level: '%s' is not error, warn, info or debug",
                         cc->general.log_level);
                goto fail;
        }
        mg_log_set_level((enum mg_log_level)mg_log_level_parse(
                common->log_level ? common->log_level
                                  : cc->general.log_level));
        return MG_EXIT_OK;
fail:
        fprintf(stderr, "mintgate %s: configuration error: %s\n", cmd, errstr);
        cli_conf_free(cc);
        return MG_EXIT_USAGE;
}

void cli_conf_free(struct cli_conf *cc) {
        mg_conf_destroy(cc->conf);
        cc->conf = NULL;
        mg_asn_destroy(cc->asn);
        cc->asn = NULL;
        cc->scoring.asn = NULL;
}

int cli_asn_load(struct cli_conf *cc, const char *cmd) {
        const char *path = cc->scoring.asn_file;
        struct mg_asn_stats st;
        char errstr[512];
        int64_t t0;
        mg_err_t err;

        if (!path || !*path)
                return MG_EXIT_OK;
        t0 = mg_time_now_ms();
        if ((err = mg_asn_load_file(path, &cc->asn, errstr,
                                    sizeof(errstr)))) {
                fprintf(stderr, "mintgate %s: scoring.asn_file: %s\n", cmd,
                        errstr);
                cli_conf_free(cc);
                return err == MG_ERR_NOMEM ? MG_EXIT_FAILURE : MG_EXIT_USAGE;
        }
        cc->scoring.asn = cc->asn;
        mg_asn_stats_get(cc->asn, &st);
        mg_log_info(cmd,
                    "%s: %zu IPv4 and %zu IPv6 prefixes, %zu ranges, %.1f "
                    "MB, loaded in %" PRId64 " ms",
                    path, st.prefixes4, st.prefixes6, st.ranges4 + st.ranges6,
                    (double)st.bytes / 1e6, mg_time_now_ms() - t0);
        return MG_EXIT_OK;
}

int cli_no_operands(int argc, char **argv, const char *cmd) {
        if (optind < argc) {
                fprintf(stderr, "mintgate %s: unexpected argument '%s'\n", cmd,
                        argv[optind]);
                return MG_EXIT_USAGE;
        }
        return MG_EXIT_OK;
}

void cli_print_dlq_reasons(FILE *fp, const struct mg_ingest_stats *st) {
        int i;

        for (i = 0; i < MG_ERR__CNT; i++)
                if (st->dlq_by_err[i])
                        fprintf(fp, " %s=%" PRIu64, mg_err_name((mg_err_t)i),
                                st->dlq_by_err[i]);
}

static volatile sig_atomic_t *cli_signal_flag;

static void cli_signal_handler(int sig) {
        (void)sig;
        if (cli_signal_flag)
                *cli_signal_flag = 1;
}

void cli_signals_handle(void (*handler)(int)) {
        struct sigaction sa;

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = handler;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
}

static struct mg_ingest *volatile cli_ingest;

static void cli_ingest_signal(int sig) {
        (void)sig;
        if (cli_ingest)
                mg_ingest_stop(cli_ingest);
}

void cli_signals_stop_ingest(struct mg_ingest *ing) {
        cli_ingest = ing;
        if (ing)
                cli_signals_handle(cli_ingest_signal);
}

const char *cli_kafka_brokers(const struct cli_conf *cc) {
        size_t i;

        for (i = 0; i < cc->ingest.kafka.cnt; i++)
                if (!strcmp(cc->ingest.kafka.keys[i], "bootstrap.servers"))
                        return cc->ingest.kafka.values[i];
        return NULL;
}

void cli_signals_install(volatile sig_atomic_t *flag) {
        cli_signal_flag = flag;
        cli_signals_handle(cli_signal_handler);
}
