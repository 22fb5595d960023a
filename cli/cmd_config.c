/*
 * cmd_config.c — `mintgate config`: print the configuration reference
 * generated from the modules' tables, or check a configuration file.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void config_usage(FILE *fp) {
        fprintf(fp, "Usage: mintgate config reference [--markdown]\n"
                    "       mintgate config check FILE\n\n"
                    "reference  every configuration key: type, default, "
                    "bounds, description\ncheck      load FILE and report "
                    "the first error with its line and column\n");
}

int cmd_config_main(int argc, char **argv) {
        struct cli_common common;
        struct cli_conf cc;
        int rc;

        memset(&common, 0, sizeof(common));
        if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
                config_usage(argc < 2 ? stderr : stdout);
                return argc < 2 ? MG_EXIT_USAGE : MG_EXIT_OK;
        }
        if (!strcmp(argv[1], "reference")) {
                int markdown = argc > 2 && !strcmp(argv[2], "--markdown");

                if ((rc = cli_conf_load(&cc, &common, "config")))
                        return rc;
                mg_conf_print_reference(cc.conf, stdout, markdown);
                cli_conf_free(&cc);
                return MG_EXIT_OK;
        }
        if (!strcmp(argv[1], "check") && argc == 3) {
                common.config_path = argv[2];
                if ((rc = cli_conf_load(&cc, &common, "config")))
                        return rc;
                cli_conf_free(&cc);
                printf("%s: ok\n", argv[2]);
                return MG_EXIT_OK;
        }
        config_usage(stderr);
        return MG_EXIT_USAGE;
}
