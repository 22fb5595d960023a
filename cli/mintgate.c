/*
 * mintgate.c — the `mintgate` command: one binary, one subcommand per stage
 * (DESIGN.md "The mintgate command"). This file only dispatches.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
        const char *name;
        int (*main_cb)(int argc, char **argv);
        const char *summary;
} cli_cmds[] = {
        {"broker", cmd_broker_main,
         "embedded Kafka-protocol broker for development and tests"},
        {"produce", cmd_produce_main,
         "JSON-lines events -> Avro -> Kafka, keyed by identity"},
        {"ingest", cmd_ingest_main,
         "consume, decode and validate events; print or count them"},
        {"score", cmd_score_main,
         "ingest + scoring worker: baselines and live risk in Redis"},
        {"baseline", cmd_baseline_main,
         "baselines: show, top (riskiest now), reset, export, import"},
        {"serve", cmd_serve_main,
         "decision service: issuance decisions over TCP and HTTP"},
        {"query", cmd_query_main,
         "decision client: requests as JSON lines, prints the answers"},
        {"policy", cmd_policy_main, "`policy check FILE`: validate a policy"},
        {"audit", cmd_audit_main,
         "`audit verify LOG`, `audit verify-decision`: check evidence"},
        {"simulate", cmd_simulate_main,
         "synthetic NHI traffic with labelled attacks, as JSON lines"},
        {"replay", cmd_replay_main,
         "events through scoring and decisions offline: backtest, report"},
        {"dev", cmd_dev_main,
         "everything on the embedded default, with demo traffic"},
        {"config", cmd_config_main,
         "configuration reference (config reference) and checks"},
};

#define CLI_CMD_CNT (sizeof(cli_cmds) / sizeof(*cli_cmds))

static void usage(FILE *fp) {
        size_t i;

        fprintf(fp,
                "mintgate — token issuance checkpoint for non-human "
                "identities\n\n"
                "Usage: mintgate <command> [options]\n\nCommands:\n");
        for (i = 0; i < CLI_CMD_CNT; i++)
                fprintf(fp, "  %-10s %s\n", cli_cmds[i].name,
                        cli_cmds[i].summary);
        fprintf(fp,
                "\n`mintgate <command> --help` describes a command; "
                "`mintgate config reference` lists every configuration "
                "key.\nExit status: 0 success, 1 runtime failure, 2 bad "
                "usage or configuration.\n");
}

int main(int argc, char **argv) {
        size_t i;

        if (argc < 2) {
                usage(stderr);
                return MG_EXIT_USAGE;
        }
        if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
            !strcmp(argv[1], "help")) {
                usage(stdout);
                return MG_EXIT_OK;
        }
        if (!strcmp(argv[1], "--version")) {
                printf("mintgate 0.1.0\n");
                return MG_EXIT_OK;
        }
        for (i = 0; i < CLI_CMD_CNT; i++)
                if (!strcmp(argv[1], cli_cmds[i].name))
                        return cli_cmds[i].main_cb(argc - 1, argv + 1);
        fprintf(stderr, "mintgate: unknown command '%s'\n\n", argv[1]);
        usage(stderr);
        return MG_EXIT_USAGE;
}
