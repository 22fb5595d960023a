/*
 * gen_avro_corpus.c — writes the seed corpus of fuzz_avro: valid messages
 * of every event type in both framings, an old (auth.v1) writer, an auth
 * event with every optional field null, and a Decision header (registered,
 * but not an event).
 *
 * Usage: gen_avro_corpus DIR. The files are checked in under
 * tests/fuzz/corpus/fuzz_avro; run this again when a schema changes (the
 * fingerprints in the single-object files change with it). Events come from
 * the JSON-lines form so the corpus reads like DESIGN.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_avro.h"

/* Event time of the seeds; validation is run as of one second later. */
#define GEN_TS 1795000000000LL

struct gen_seed {
        const char *file;               /* name in DIR */
        enum mg_avro_framing framing;   /* wire format */
        const char *label;              /* writer schema, NULL: current */
        const char *json;               /* the event, JSON-lines form */
};

#define GEN_AUTH                                                               \
        "{\"type\":\"auth\",\"event_id\":\"a-1\",\"ts\":1795000000000,"        \
        "\"identity\":\"spiffe://corp/ci/deployer\",\"identity_kind\":"        \
        "\"ci_runner\",\"client_id\":\"gh-actions\",\"source_ip\":"            \
        "\"203.0.113.7\",\"user_agent\":\"runner/2.3\",\"auth_method\":"       \
        "\"jwt_svid\",\"grant_type\":\"token_exchange\",\"audience\":"         \
        "\"api://deploy\",\"scopes\":[\"deploy:write\",\"secrets:read\"],"     \
        "\"outcome\":\"failure\",\"failure_reason\":\"scope denied\","         \
        "\"token_id\":\"t-91\",\"parent_token_id\":\"t-90\"}"
#define GEN_AUTH_MIN                                                           \
        "{\"type\":\"auth\",\"event_id\":\"a-2\",\"ts\":1795000000000,"        \
        "\"identity\":\"svc\",\"client_id\":\"c\",\"source_ip\":\"::1\","      \
        "\"auth_method\":\"mtls\",\"grant_type\":\"client_credentials\","      \
        "\"outcome\":\"success\"}"
#define GEN_USAGE                                                              \
        "{\"type\":\"usage\",\"event_id\":\"u-1\",\"ts\":1795000001250,"       \
        "\"identity\":\"spiffe://corp/ci/deployer\",\"token_id\":\"t-91\","    \
        "\"resource\":\"api://deploy\",\"action\":\"POST /releases\","         \
        "\"scope\":\"deploy:write\",\"source_ip\":\"203.0.113.7\","            \
        "\"status\":201,\"bytes\":5120}"
#define GEN_SIGNAL                                                             \
        "{\"type\":\"signal\",\"event_id\":\"s-1\",\"ts\":1795000000000,"      \
        "\"identity\":\"spiffe://corp/ci/deployer\",\"kind\":"                 \
        "\"secret_exposed\",\"severity\":90,\"source\":\"secret-scanner\","    \
        "\"detail\":\"token found in public repo\"}"

static const struct gen_seed gen_seeds[] = {
        {"auth_so.bin", MG_AVRO_SINGLE_OBJECT, NULL, GEN_AUTH},
        {"auth_cf.bin", MG_AVRO_CONFLUENT, NULL, GEN_AUTH},
        {"auth_v1_so.bin", MG_AVRO_SINGLE_OBJECT, "auth.v1", GEN_AUTH},
        {"auth_v1_cf.bin", MG_AVRO_CONFLUENT, "auth.v1", GEN_AUTH},
        {"auth_min_so.bin", MG_AVRO_SINGLE_OBJECT, NULL, GEN_AUTH_MIN},
        {"usage_so.bin", MG_AVRO_SINGLE_OBJECT, NULL, GEN_USAGE},
        {"usage_cf.bin", MG_AVRO_CONFLUENT, NULL, GEN_USAGE},
        {"signal_so.bin", MG_AVRO_SINGLE_OBJECT, NULL, GEN_SIGNAL},
        {"signal_cf.bin", MG_AVRO_CONFLUENT, NULL, GEN_SIGNAL},
};

static int gen_write(const char *dir, const char *file, const void *buf,
                     size_t len) {
        char path[4096];
        FILE *fp;

        snprintf(path, sizeof(path), "%s/%s", dir, file);
        fp = fopen(path, "wb");
        if (!fp || fwrite(buf, 1, len, fp) != len || fclose(fp) != 0) {
                perror(path);
                return -1;
        }
        return 0;
}

int main(int argc, char **argv) {
        /* A Decision record's Confluent header and its first field. */
        static const unsigned char decision[] = {0x00, 0, 0, 0, 5,
                                                 0x06, 'd', '-', '1'};
        struct mg_avro_registry *reg = NULL;
        struct mg_avro_encoder *enc[2] = {NULL, NULL};
        static struct mg_event ev;
        static unsigned char buf[MG_AVRO_MSG_MAX];
        char errstr[512];
        size_t i, len;
        int rc = 1;

        if (argc != 2) {
                fprintf(stderr, "usage: %s DIR\n", argv[0]);
                return 2;
        }
        if (mg_avro_registry_new(&reg, errstr, sizeof(errstr)) ||
            mg_avro_encoder_new(reg, MG_AVRO_SINGLE_OBJECT, &enc[0], errstr,
                                sizeof(errstr)) ||
            mg_avro_encoder_new(reg, MG_AVRO_CONFLUENT, &enc[1], errstr,
                                sizeof(errstr)))
                goto fail;
        for (i = 0; i < sizeof(gen_seeds) / sizeof(gen_seeds[0]); i++) {
                const struct gen_seed *s = &gen_seeds[i];

                if (mg_event_from_json(&ev, s->json, strlen(s->json),
                                       GEN_TS + 1000, errstr,
                                       sizeof(errstr)) ||
                    mg_avro_encode(enc[s->framing], &ev, s->label, buf,
                                   sizeof(buf), &len, errstr,
                                   sizeof(errstr)))
                        goto fail;
                if (gen_write(argv[1], s->file, buf, len))
                        goto out;
        }
        if (gen_write(argv[1], "decision_cf.bin", decision, sizeof(decision)))
                goto out;
        rc = 0;
        goto out;
fail:
        fprintf(stderr, "gen_avro_corpus: %s\n", errstr);
out:
        mg_avro_encoder_destroy(enc[1]);
        mg_avro_encoder_destroy(enc[0]);
        mg_avro_registry_destroy(reg);
        return rc;
}
