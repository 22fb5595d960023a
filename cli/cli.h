/*
 * cli.h — what the `mintgate` subcommands share: the dispatcher's table,
 * loading the configuration (file + flags) into every module's section, and
 * exit codes. Each subcommand is one cmd_*.c file using only the stages'
 * public headers (curl's src/tool_*.c over lib/).
 */
#ifndef MG_CLI_H
#define MG_CLI_H

#include <signal.h>
#include <stdio.h>

#include "mg_asn.h"
#include "mg_avro.h"
#include "mg_config.h"
#include "mg_ingest.h"
#include "mg_scorer.h"
#include "mg_server.h"
#include "mg_service.h"
#include "mg_store.h"

/* Exit statuses (DESIGN.md "The mintgate command"). */
#define MG_EXIT_OK      0
#define MG_EXIT_FAILURE 1 /* runtime failure */
#define MG_EXIT_USAGE   2 /* bad usage or configuration */

/* Settings of the command itself (section "general"). */
struct cli_general_conf {
        char *log_level; /* error, warn, info, debug */
};

/* Every module's configuration, loaded once per process. */
struct cli_conf {
        struct mg_conf *conf;            /* owns strings and maps */
        struct cli_general_conf general; /* log.* */
        struct mg_ingest_conf ingest;    /* ingest.*, kafka.*, schemas.* */
        struct mg_scoring_conf scoring;  /* scoring.* */
        struct mg_redis_conf redis;      /* redis.* */
        struct mg_worker_conf worker;    /* worker.* */
        struct mg_server_conf server;    /* serve.* */
        struct mg_service_conf service;  /* decision.policy, ... */
        struct mg_riskcache_conf risk;   /* decision.risk_*, ... */
        struct mg_audit_conf audit;      /* audit.* */
        struct mg_asn *asn;              /* scoring.asn_file loaded by
                                          * cli_asn_load(), or NULL */
};

/* Options every subcommand accepts (parsed by cli_common_opt()). */
struct cli_common {
        const char *config_path; /* --config FILE */
        const char *sets[64];    /* --set KEY=VALUE, in order */
        int set_cnt;
        const char *brokers;     /* --brokers: kafka.bootstrap.servers */
        const char *log_level;   /* --log-level: wins over log.level */
        const char *group;       /* --group: ingest.group_id */
        int64_t idle_exit_ms;    /* --idle-exit: stop when idle, 0 never */
        const char *redis;       /* --redis: redis.addr */
};

/* getopt_long entries for the common options; include in each table. */
#define CLI_COMMON_LONGOPTS                                                   \
        {"config", required_argument, NULL, 'c'},                             \
        {"set", required_argument, NULL, 'S'},                                \
        {"log-level", required_argument, NULL, 'L'},                          \
        {"brokers", required_argument, NULL, 'b'},                            \
        {"redis", required_argument, NULL, 'R'},                              \
        {"help", no_argument, NULL, 'h'}

/* Options of the commands that consume (ingest, score). */
#define CLI_CONSUMER_LONGOPTS                                                 \
        {"group", required_argument, NULL, 'g'},                              \
        {"idle-exit", required_argument, NULL, 'I'}

#define CLI_CONSUMER_HELP                                                     \
        "  -g, --group ID        consumer group (ingest.group_id)\n"         \
        "      --idle-exit DUR   stop after DUR (e.g. 5s) without messages\n"

#define CLI_COMMON_HELP                                                       \
        "  -c, --config FILE     YAML configuration file\n"                   \
        "      --set KEY=VALUE   override one configuration key\n"            \
        "      --log-level LVL   error, warn, info (default) or debug\n"      \
        "  -b, --brokers LIST    Kafka bootstrap servers host:port[,...]\n"  \
        "      --redis ADDR      Redis host:port (redis.addr)\n"             \
        "  -h, --help            this help\n"

/* Handle a common option c (from getopt_long). Returns 1 if handled, 0 if
 * c is not a common option, -1 on a bad value (message printed). */
int cli_common_opt(struct cli_common *common, int c, const char *arg);

/* MG_EXIT_OK when every argument was an option, else print the first
 * stray one and return MG_EXIT_USAGE. */
int cli_no_operands(int argc, char **argv, const char *cmd);

/* " reason=count" for each dead-letter reason seen. */
void cli_print_dlq_reasons(FILE *fp, const struct mg_ingest_stats *st);

/* Build the configuration: defaults, then --config, then --brokers,
 * --redis and --group, then each --set. Prints the error and returns
 * MG_EXIT_USAGE on failure. */
int cli_conf_load(struct cli_conf *cc, const struct cli_common *common,
                  const char *cmd);
void cli_conf_free(struct cli_conf *cc);

/* For the commands that score: load scoring.asn_file (when set) into
 * cc->asn and point cc->scoring.asn at it; freed by cli_conf_free(). On
 * failure prints the error naming file and line, frees the configuration
 * and returns MG_EXIT_USAGE (MG_EXIT_FAILURE when out of memory). */
int cli_asn_load(struct cli_conf *cc, const char *cmd);

/* Install SIGINT/SIGTERM handlers that set *flag (and ignore SIGPIPE). */
void cli_signals_install(volatile sig_atomic_t *flag);
/* Same, calling handler (which must be async-signal-safe). */
void cli_signals_handle(void (*handler)(int));
/* SIGINT/SIGTERM stop ing (mg_ingest_stop() is async-signal-safe); NULL
 * forgets it. */
void cli_signals_stop_ingest(struct mg_ingest *ing);

/* kafka.bootstrap.servers when configured (file, --brokers, --set), else
 * NULL. */
const char *cli_kafka_brokers(const struct cli_conf *cc);

/* Producing JSON-lines events (cmd_produce.c), shared with `dev`. */
struct cli_produce_opts {
        enum mg_avro_framing framing; /* single-object or Confluent */
        const char *auth_label;   /* writer schema of auth events, or NULL */
        double corrupt_rate;      /* share damaged on purpose (testing) */
        uint64_t corrupt_seed;    /* seed of the damage */
        const char *corrupt_log;  /* TSV list of damaged messages, or NULL */
        int quiet;                /* no summary line on stderr */
};

struct cli_produce_result {
        uint64_t sent;     /* acknowledged by the broker */
        uint64_t rejected; /* bad lines */
        uint64_t failed;   /* delivery failures */
        uint64_t damaged;  /* damaged on purpose */
};

/* Produce every JSON line of in. Returns an exit status. */
int cli_produce(const struct cli_conf *cc, FILE *in,
                const struct cli_produce_opts *opts,
                struct cli_produce_result *res);

/* The ingest sink feeding a scorer (cli_score.c), shared by score and
 * dev. Zero it, set sc (owned: freed by cli_score_sink_free()), then
 * cli_score_sink_init() fills an mg_ingest_sink. */
struct cli_score_sink {
        struct mg_scorer *sc;            /* the scoring stage, owned */
        const struct mg_event **evs;     /* scratch: the batch's events */
        mg_err_t *verdicts;              /* scratch: per event */
        size_t cap;                      /* entries in both */
        int64_t report_every_ms;         /* log counters this often; 0 no */
        int64_t next_report_ms;          /* when to log counters next */
        /* Optional: sees each acknowledged batch (dev prints it). */
        void (*observe_cb)(void *opaque, const struct mg_event **evs,
                           const mg_err_t *verdicts, size_t cnt);
        void *observe_opaque;
        /* Optional reload (SIGHUP): when *reload is set, the configuration
         * is loaded again as common says; the scoring keys apply from the
         * next batch, the baselines are kept, and changed keys that need
         * a restart are reported and left as they run. A broken file is
         * reported and changes nothing. */
        volatile sig_atomic_t *reload;
        const struct cli_common *common; /* how it was loaded */
        struct cli_conf *running;        /* the configuration at start */
        struct cli_conf *reloaded;       /* the latest reload, owned */
};

void cli_score_sink_init(struct cli_score_sink *ss,
                         struct mg_ingest_sink *sink);
void cli_score_sink_free(struct cli_score_sink *ss);

/* Decision client pieces (cmd_query.c), shared with dev. Connect to
 * host:port: a socket, -1 when it cannot connect, -2 for a bad address. */
int cli_query_connect(const char *addr);
/* Send len bytes of request lines on fd, pipelined, and write the first
 * want answer lines to out; *errors counts error objects. 0 or -1. */
int cli_query_exchange(int fd, const char *buf, size_t len, size_t want,
                       FILE *out, size_t *errors);

int cmd_broker_main(int argc, char **argv);
int cmd_produce_main(int argc, char **argv);
int cmd_ingest_main(int argc, char **argv);
int cmd_dev_main(int argc, char **argv);
int cmd_config_main(int argc, char **argv);
int cmd_score_main(int argc, char **argv);
int cmd_serve_main(int argc, char **argv);
int cmd_query_main(int argc, char **argv);
int cmd_policy_main(int argc, char **argv);
int cmd_audit_main(int argc, char **argv);
int cmd_replay_main(int argc, char **argv);
int cmd_baseline_main(int argc, char **argv);
int cmd_simulate_main(int argc, char **argv);

#endif /* MG_CLI_H */
