/*
 * cmd_audit.c — `mintgate audit`: check evidence. `verify LOG` walks the
 * hash chain of an audit log (and every signature with --key); any edited,
 * inserted, deleted or reordered record is reported with its line.
 * `verify-decision` checks the signature of decision responses (JSON lines
 * from a file or stdin) as the service sent them.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mg_audit.h"

static void audit_usage(FILE *fp) {
        fprintf(fp,
                "Usage: mintgate audit verify LOG [--key KEYFILE]\n"
                "       mintgate audit verify-decision --key KEYFILE "
                "[FILE|-]\n\n"
                "verify           check every record's hash and chain link "
                "(and signature,\n                 with the public or HMAC "
                "key); exit 1 at the first bad line\nverify-decision  check "
                "the signature of each response line; exit 1 if any\n"
                "                 fails\n");
}

static int audit_verify_log(const char *path, const char *key) {
        struct mg_audit_verifier *vf = NULL;
        struct mg_audit_verify_report rep;
        char errstr[512];
        mg_err_t err;

        if (key && mg_audit_verifier_new_file(key, &vf, errstr,
                                              sizeof(errstr))) {
                fprintf(stderr, "mintgate audit: %s\n", errstr);
                return MG_EXIT_USAGE;
        }
        err = mg_audit_verify_file(path, vf, &rep, errstr, sizeof(errstr));
        mg_audit_verifier_destroy(vf);
        if (err && !rep.bad_line) {
                fprintf(stderr, "mintgate audit: %s\n", errstr);
                return MG_EXIT_FAILURE;
        }
        if (rep.bad_line) {
                printf("%s: line %" PRIu64 ": %s\n", path, rep.bad_line,
                       rep.problem);
                return MG_EXIT_FAILURE;
        }
        printf("%s: ok, %" PRIu64 " records, %" PRIu64
               " signatures verified, chain head %s\n",
               path, rep.records_ok, rep.signed_ok, rep.last_hash);
        return MG_EXIT_OK;
}

static int audit_verify_decisions(const char *path, const char *key) {
        struct mg_audit_verifier *vf = NULL;
        FILE *in = stdin;
        char *line = NULL, errstr[512];
        size_t cap = 0, lineno = 0, bad = 0;
        ssize_t n;

        if (!key) {
                fprintf(stderr, "mintgate audit: verify-decision needs "
                                "--key\n");
                return MG_EXIT_USAGE;
        }
        if (mg_audit_verifier_new_file(key, &vf, errstr, sizeof(errstr))) {
                fprintf(stderr, "mintgate audit: %s\n", errstr);
                return MG_EXIT_USAGE;
        }
        if (path && strcmp(path, "-") && !(in = fopen(path, "r"))) {
                perror(path);
                mg_audit_verifier_destroy(vf);
                return MG_EXIT_FAILURE;
        }
        while ((n = getline(&line, &cap, in)) > 0) {
                lineno++;
                while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
                        line[--n] = '\0';
                if (n == 0)
                        continue;
                if (mg_audit_verify_decision(vf, line, errstr,
                                             sizeof(errstr))) {
                        printf("line %zu: FAILED: %s\n", lineno, errstr);
                        bad++;
                } else {
                        printf("line %zu: ok\n", lineno);
                }
        }
        free(line);
        if (in != stdin)
                fclose(in);
        mg_audit_verifier_destroy(vf);
        return bad ? MG_EXIT_FAILURE : MG_EXIT_OK;
}

int cmd_audit_main(int argc, char **argv) {
        static const struct option longopts[] = {
                {"key", required_argument, NULL, 'k'},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0}};
        const char *key = NULL, *verb;
        int c;

        while ((c = getopt_long(argc, argv, "k:h", longopts, NULL)) != -1) {
                switch (c) {
                case 'k':
                        key = optarg;
                        break;
                case 'h':
                        audit_usage(stdout);
                        return MG_EXIT_OK;
                default:
                        audit_usage(stderr);
                        return MG_EXIT_USAGE;
                }
        }
        if (optind >= argc) {
                audit_usage(stderr);
                return MG_EXIT_USAGE;
        }
        verb = argv[optind];
        if (!strcmp(verb, "verify") && argc - optind == 2)
                return audit_verify_log(argv[optind + 1], key);
        if (!strcmp(verb, "verify-decision") && argc - optind <= 2)
                return audit_verify_decisions(
                        argc - optind == 2 ? argv[optind + 1] : NULL, key);
        audit_usage(stderr);
        return MG_EXIT_USAGE;
}
