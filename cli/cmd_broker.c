/*
 * cmd_broker.c — `mintgate broker`: run the embedded Kafka-protocol broker
 * (ingest/mg_broker.h) until SIGINT or SIGTERM.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "mg_broker.h"
#include "mg_log.h"

/* Topics of DESIGN.md, created at start: inputs, dead letters, audit. */
static const char *const broker_default_topics[] = {
        "mg.auth", "mg.usage", "mg.signals", "mg.dlq", "mg.decisions"};

static void broker_usage(FILE *fp) {
        fprintf(fp,
                "Usage: mintgate broker [options]\n\n"
                "Runs an in-memory Kafka-protocol broker (librdkafka's mock "
                "cluster) for\ndevelopment and tests. Messages live in "
                "memory with small per-partition\nretention; nothing is "
                "durable. Production uses a real Kafka cluster.\n\n"
                "  -p, --port PORT        bootstrap port (default 9092; 0 "
                "picks a free one)\n"
                "      --host ADDR        listen address (default "
                "127.0.0.1)\n"
                "  -n, --partitions N     partitions per topic (default 4)\n"
                "  -t, --topics LIST      comma-separated topics (default "
                "mg.auth,mg.usage,\n"
                "                         mg.signals,mg.dlq,mg.decisions)\n"
                "  -h, --help             this help\n\n"
                "Prints `bootstrap.servers=HOST:PORT` on stdout once it is "
                "ready.\n");
}

int cmd_broker_main(int argc, char **argv) {
        static const struct option longopts[] = {
                {"port", required_argument, NULL, 'p'},
                {"host", required_argument, NULL, 'H'},
                {"partitions", required_argument, NULL, 'n'},
                {"topics", required_argument, NULL, 't'},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0}};
        const char *topics[64];
        struct mg_broker_opts opts = {"127.0.0.1", 9092, NULL, 0, 4};
        struct mg_broker *broker = NULL;
        char *topic_list = NULL, *tok, *save = NULL, *end;
        static volatile sig_atomic_t stop;
        char errstr[512];
        int c, rc = MG_EXIT_OK;
        long v;

        while ((c = getopt_long(argc, argv, "p:n:t:h", longopts, NULL)) !=
               -1) {
                switch (c) {
                case 'p':
                        v = strtol(optarg, &end, 10);
                        if (*end || v < 0 || v > 65535) {
                                fprintf(stderr,
                                        "mintgate broker: --port %s: not a "
                                        "port number 0..65535\n",
                                        optarg);
                                return MG_EXIT_USAGE;
                        }
                        opts.port = (int)v;
                        break;
                case 'H':
                        opts.host = optarg;
                        break;
                case 'n':
                        v = strtol(optarg, &end, 10);
                        if (*end || v < 1 || v > 1000) {
                                fprintf(stderr,
                                        "mintgate broker: --partitions %s: "
                                        "expected 1..1000\n",
                                        optarg);
                                return MG_EXIT_USAGE;
                        }
                        opts.partitions = (int)v;
                        break;
                case 't':
                        topic_list = optarg;
                        break;
                case 'h':
                        broker_usage(stdout);
                        return MG_EXIT_OK;
                default:
                        broker_usage(stderr);
                        return MG_EXIT_USAGE;
                }
        }
        if (cli_no_operands(argc, argv, "broker"))
                return MG_EXIT_USAGE;
        if (topic_list) {
                topic_list = strdup(topic_list);
                for (tok = strtok_r(topic_list, ",", &save); tok;
                     tok = strtok_r(NULL, ",", &save)) {
                        if (opts.topic_cnt == 64) {
                                fprintf(stderr, "mintgate broker: more than "
                                                "64 topics\n");
                                free(topic_list);
                                return MG_EXIT_USAGE;
                        }
                        topics[opts.topic_cnt++] = tok;
                }
        } else {
                for (c = 0; c < 5; c++)
                        topics[opts.topic_cnt++] = broker_default_topics[c];
        }
        opts.topics = topics;

        cli_signals_install(&stop);
        if (mg_broker_new(&opts, &broker, errstr, sizeof(errstr))) {
                fprintf(stderr, "mintgate broker: %s\n", errstr);
                free(topic_list);
                return MG_EXIT_FAILURE;
        }
        printf("bootstrap.servers=%s\n", mg_broker_bootstrap(broker));
        fflush(stdout);
        mg_log_info("broker",
                    "in-memory development broker on %s (%d topics x %d "
                    "partitions; mock broker %s); not durable, for "
                    "development and tests only",
                    mg_broker_bootstrap(broker), opts.topic_cnt,
                    opts.partitions, mg_broker_mock_address(broker));
        while (!stop)
                usleep(50 * 1000);
        mg_log_info("broker", "stopping");
        mg_broker_destroy(broker);
        free(topic_list);
        return rc;
}
