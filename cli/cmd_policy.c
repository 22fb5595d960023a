/*
 * cmd_policy.c — `mintgate policy`: check a policy file (every error with
 * its line and column) or print the policy format reference.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "mg_policy.h"

int cmd_policy_main(int argc, char **argv) {
        struct mg_policy *pol;
        char errstr[512];

        if (argc == 3 && !strcmp(argv[1], "check")) {
                if (mg_policy_load_file(argv[2], &pol, errstr,
                                        sizeof(errstr))) {
                        fprintf(stderr, "%s\n", errstr);
                        return MG_EXIT_USAGE;
                }
                printf("%s: ok, %zu policy paths\n", argv[2],
                       mg_policy_path_cnt(pol));
                mg_policy_destroy(pol);
                return MG_EXIT_OK;
        }
        if (argc >= 2 && !strcmp(argv[1], "reference")) {
                mg_policy_print_reference(stdout, argc > 2 &&
                                                          !strcmp(argv[2],
                                                                  "--markdown"));
                return MG_EXIT_OK;
        }
        fprintf(argc >= 2 && (!strcmp(argv[1], "--help") ||
                              !strcmp(argv[1], "-h"))
                        ? stdout
                        : stderr,
                "Usage: mintgate policy check FILE\n"
                "       mintgate policy reference [--markdown]\n\n"
                "check      load FILE as the service would; print the first "
                "error with its\n           line and column (exit 2), or ok\n"
                "reference  the policy file format\n");
        return argc >= 2 && (!strcmp(argv[1], "--help") ||
                             !strcmp(argv[1], "-h"))
                       ? MG_EXIT_OK
                       : MG_EXIT_USAGE;
}
