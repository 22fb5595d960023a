/*
 * cmd_baseline.c — `mintgate baseline`: inspect identities' baselines in
 * Redis. `show <identity>` prints the baseline, live risk, level, reasons
 * and how many events of each type have been applied (--json: the whole
 * baseline document, counts under events.auth / events.usage /
 * events.signal).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"

static void baseline_usage(FILE *fp) {
        fprintf(fp, "Usage: mintgate baseline show IDENTITY [options]\n\n"
                    "Prints the identity's baseline, risk now, level, "
                    "reasons and event counts.\n\n" CLI_COMMON_HELP
                    "      --json            the whole baseline as JSON\n");
}

static void print_human(const char *identity, json_t *doc) {
        json_t *reasons = json_object_get(doc, "reasons");
        json_t *events = json_object_get(doc, "events");
        json_t *r;
        size_t i;
        char *rest;

        printf("identity  %s\n", identity);
        printf("risk      %.1f (%s)\n",
               json_number_value(json_object_get(doc, "risk")),
               json_string_value(json_object_get(doc, "level"))
                       ? json_string_value(json_object_get(doc, "level"))
                       : "?");
        printf("events    auth %" JSON_INTEGER_FORMAT
               ", usage %" JSON_INTEGER_FORMAT
               ", signal %" JSON_INTEGER_FORMAT "\n",
               json_integer_value(json_object_get(events, "auth")),
               json_integer_value(json_object_get(events, "usage")),
               json_integer_value(json_object_get(events, "signal")));
        printf("reasons  ");
        if (!json_array_size(reasons))
                printf(" none\n");
        else
                printf("\n");
        json_array_foreach(reasons, i, r)
                printf("  %-22s %5.1f  %s\n",
                       json_string_value(json_object_get(r, "signal")),
                       json_number_value(json_object_get(r, "points")),
                       json_string_value(json_object_get(r, "detail")));
        json_object_del(doc, "reasons");
        json_object_del(doc, "events");
        json_object_del(doc, "risk");
        json_object_del(doc, "level");
        rest = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (rest)
                printf("baseline  %s\n", rest);
        free(rest);
}

int cmd_baseline_main(int argc, char **argv) {
        static const struct option longopts[] = {
                CLI_COMMON_LONGOPTS, {"json", no_argument, NULL, 'J'},
                {NULL, 0, NULL, 0}};
        struct cli_common common;
        struct cli_conf cc;
        struct mg_store_rec *rec = NULL;
        const char *verb, *identity;
        json_t *doc = NULL;
        char errstr[512], *text = NULL;
        int c, r, rc = MG_EXIT_FAILURE, as_json = 0;
        mg_err_t err;

        memset(&common, 0, sizeof(common));
        while ((c = getopt_long(argc, argv, "c:b:h", longopts, NULL)) != -1) {
                if ((r = cli_common_opt(&common, c, optarg)) < 0)
                        return MG_EXIT_USAGE;
                if (r)
                        continue;
                switch (c) {
                case 'h':
                        baseline_usage(stdout);
                        return MG_EXIT_OK;
                case 'J':
                        as_json = 1;
                        break;
                default:
                        baseline_usage(stderr);
                        return MG_EXIT_USAGE;
                }
        }
        if (argc - optind != 2 || strcmp(argv[optind], "show")) {
                baseline_usage(stderr);
                return MG_EXIT_USAGE;
        }
        verb = argv[optind];
        identity = argv[optind + 1];
        (void)verb;
        if (!*identity || strlen(identity) > MG_EVENT_IDENTITY_MAX) {
                fprintf(stderr, "mintgate baseline: identity must be 1..%d "
                                "bytes\n",
                        MG_EVENT_IDENTITY_MAX);
                return MG_EXIT_USAGE;
        }
        if ((r = cli_conf_load(&cc, &common, "baseline")))
                return r;
        if (!(rec = mg_store_rec_new(identity))) {
                fprintf(stderr, "mintgate baseline: out of memory\n");
                goto out;
        }
        err = mg_store_redis_get(&cc.redis, rec, errstr, sizeof(errstr));
        if (err) {
                fprintf(stderr, "mintgate baseline: %s\n", errstr);
                rc = err == MG_ERR_CONFIG ? MG_EXIT_USAGE : MG_EXIT_FAILURE;
                goto out;
        }
        text = mg_baseline_to_json(rec->bl, &cc.scoring, mg_time_now_ms());
        if (!text || !(doc = json_loads(text, 0, NULL))) {
                fprintf(stderr, "mintgate baseline: cannot render %s\n",
                        identity);
                goto out;
        }
        if (as_json) {
                json_object_set_new(doc, "identity", json_string(identity));
                free(text);
                text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
                printf("%s\n", text ? text : "{}");
        } else {
                print_human(identity, doc);
        }
        rc = MG_EXIT_OK;
out:
        json_decref(doc);
        free(text);
        mg_store_rec_destroy(rec);
        cli_conf_free(&cc);
        return rc;
}
