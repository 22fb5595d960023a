/*
 * test_audit.c — unit tests of decision/mg_audit.c: decision ids, both key
 * kinds (keys generated at test time with OpenSSL into a mkdtemp
 * directory), the canonical form against hand-written bytes, the audit log
 * (append, verify, every kind of tampering, torn lines, reopening, the
 * queue's when_full actions made deterministic with the pause hook, each
 * fsync mode) and the Kafka sink against the embedded broker.
 *
 * Expected bytes are written out by hand from mg_audit.h, not produced by
 * the code under test; tampered logs are made by editing the file's bytes.
 *
 * With MG_AUDIT_BENCH=1 in the environment, test_bench_append also prints
 * append throughput for fsync=interval and fsync=always (median of three).
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <avro.h>
#include <cmocka.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "mg_audit.h"
#include "mg_avro.h"
#include "mg_broker.h"

/* The test directory and the keys generated in it. */
static char t_dir[64];
static char t_ed_priv[128], t_ed_pub[128], t_hmac[128], t_ec[128];

/*
 * Helpers: files, keys, configuration, records.
 */

static void t_path(char *out, size_t size, const char *name) {
        snprintf(out, size, "%s/%s", t_dir, name);
}

static char *t_read(const char *path, size_t *lenp) {
        FILE *fp = fopen(path, "rb");
        char *buf;
        long len;

        assert_non_null(fp);
        assert_int_equal(fseek(fp, 0, SEEK_END), 0);
        len = ftell(fp);
        assert_true(len >= 0);
        rewind(fp);
        buf = malloc((size_t)len + 1);
        assert_non_null(buf);
        assert_int_equal(fread(buf, 1, (size_t)len, fp), (size_t)len);
        buf[len] = '\0';
        fclose(fp);
        *lenp = (size_t)len;
        return buf;
}

static void t_write(const char *path, const void *p, size_t len) {
        FILE *fp = fopen(path, "wb");

        assert_non_null(fp);
        assert_int_equal(fwrite(p, 1, len, fp), len);
        assert_int_equal(fclose(fp), 0);
}

/* Offsets of the starts of the lines of buf (and of its end), up to max. */
static int t_lines(const char *buf, size_t len, size_t *starts, int max) {
        int n = 0;
        size_t i;

        starts[n++] = 0;
        for (i = 0; i < len && n < max; i++)
                if (buf[i] == '\n')
                        starts[n++] = i + 1;
        return n - 1; /* complete lines */
}

static void t_write_key(const char *path, EVP_PKEY *pk, int pub) {
        FILE *fp = fopen(path, "w");

        assert_non_null(fp);
        assert_int_equal(pub ? PEM_write_PUBKEY(fp, pk)
                             : PEM_write_PrivateKey(fp, pk, NULL, NULL, 0,
                                                    NULL, NULL),
                         1);
        assert_int_equal(fclose(fp), 0);
        assert_int_equal(chmod(path, 0600), 0);
}

static int t_setup(void **state) {
        unsigned char secret[48];
        EVP_PKEY *pk;

        snprintf(t_dir, sizeof(t_dir), "/tmp/test_audit.XXXXXX");
        if (!mkdtemp(t_dir))
                return -1;
        t_path(t_ed_priv, sizeof(t_ed_priv), "ed25519.pem");
        t_path(t_ed_pub, sizeof(t_ed_pub), "ed25519.pub.pem");
        t_path(t_hmac, sizeof(t_hmac), "hmac.key");
        t_path(t_ec, sizeof(t_ec), "ec.pem");
        pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        if (!pk)
                return -1;
        t_write_key(t_ed_priv, pk, 0);
        t_write_key(t_ed_pub, pk, 1);
        EVP_PKEY_free(pk);
        pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        if (!pk)
                return -1;
        t_write_key(t_ec, pk, 0);
        EVP_PKEY_free(pk);
        if (RAND_bytes(secret, sizeof(secret)) != 1)
                return -1;
        t_write(t_hmac, secret, sizeof(secret));
        return chmod(t_hmac, 0600);
}

static int t_teardown(void **state) {
        char path[512];
        struct dirent *de;
        DIR *d = opendir(t_dir);

        if (!d)
                return 0;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.') {
                        snprintf(path, sizeof(path), "%s/%s", t_dir,
                                 de->d_name);
                        unlink(path);
                }
        closedir(d);
        rmdir(t_dir);
        return 0;
}

/* An audit configuration on the file name in t_dir. */
struct t_conf {
        char log[256];             /* path */
        struct mg_audit_conf conf; /* points at log */
};

static void t_conf_init(struct t_conf *tc, const char *name,
                        const char *fsync, int64_t queue,
                        const char *when_full) {
        t_path(tc->log, sizeof(tc->log), name);
        unlink(tc->log);
        memset(&tc->conf, 0, sizeof(tc->conf));
        tc->conf.log = tc->log;
        tc->conf.fsync = (char *)fsync;
        tc->conf.fsync_interval_ms = 5;
        tc->conf.queue = queue;
        tc->conf.when_full = (char *)when_full;
        tc->conf.topic = (char *)"mg.decisions";
}

/* A record, its strings, and its signature over the response it stands
 * for. */
struct t_rec {
        char id[MG_AUDIT_ID_SIZE];         /* decision id */
        char req_id[32];                   /* request id */
        char identity[64];                 /* identity */
        const char *req_scopes[2];         /* requested */
        const char *scopes[1];             /* granted */
        struct mg_audit_reason reasons[2]; /* why */
        char sig[MG_AUDIT_SIG_SIZE];       /* signature text */
        struct mg_audit_record rec;        /* points at the above */
};

/* Record i: varied risks (doubles that need 17 digits too), request ids
 * present or not, and every third response carrying the identity (so the
 * verifier's second form is exercised). */
static void t_rec_make(struct t_rec *t, int i,
                       const struct mg_audit_signer *signer) {
        static const char *const decisions[] = {"allow", "narrow", "step_up",
                                                "deny"};
        char json[2048];
        struct mg_audit_record *r = &t->rec;

        memset(t, 0, sizeof(*t));
        assert_int_equal(mg_audit_decision_id(t->id), MG_OK);
        snprintf(t->req_id, sizeof(t->req_id), "r-%d", i);
        snprintf(t->identity, sizeof(t->identity), "spiffe://corp/svc-%d",
                 i % 7);
        t->req_scopes[0] = "deploy:write";
        t->req_scopes[1] = "secrets:read";
        t->scopes[0] = "deploy:write";
        t->reasons[0].signal = "new_source";
        t->reasons[0].points = 30;
        t->reasons[0].detail = "198.51.100.0/24 never seen";
        t->reasons[1].signal = "rate";
        t->reasons[1].points = 0.1 * i;
        t->reasons[1].detail = "";
        r->decision_id = t->id;
        r->ts_ms = 1795000000000LL + i;
        r->request_id = i % 5 == 4 ? NULL : t->req_id;
        r->identity = t->identity;
        r->client_id = "gh-actions";
        r->resource = "api://deploy";
        r->grant_type = "token_exchange";
        r->requested_scopes = t->req_scopes;
        r->requested_scope_cnt = 2;
        r->requested_ttl = 3600;
        r->decision = decisions[i % 4];
        r->scopes = t->scopes;
        r->scope_cnt = i % 4 == 3 ? 0 : 1;
        r->ttl = i % 4 == 3 ? 0 : 300;
        r->risk = i % 3 ? 47.5 : 100.0 / (i + 3);
        r->level = "medium";
        r->reasons = t->reasons;
        r->reason_cnt = 2;
        r->policy = i % 6 == 5 ? NULL : "gh-actions/api://deploy";
        r->degraded = i % 2;
        if (!signer)
                return;
        /* the response the server would have sent, in DESIGN.md order */
        snprintf(json, sizeof(json),
                 "{\"id\":%s%s%s,\"decision\":\"%s\",\"scopes\":[%s],"
                 "\"ttl\":%" PRId64 ",\"risk\":%.17g,\"level\":\"medium\","
                 "\"reasons\":[],\"policy\":%s,\"decision_id\":\"%s\","
                 "\"degraded\":%s%s%s%s}",
                 r->request_id ? "\"" : "",
                 r->request_id ? r->request_id : "null",
                 r->request_id ? "\"" : "", r->decision,
                 r->scope_cnt ? "\"deploy:write\"" : "", r->ttl, r->risk,
                 r->policy ? "\"gh-actions/api://deploy\"" : "null", t->id,
                 r->degraded ? "true" : "false",
                 i % 3 == 1 ? ",\"identity\":\"" : "",
                 i % 3 == 1 ? t->identity : "", i % 3 == 1 ? "\"" : "");
        assert_int_equal(mg_audit_sign_response(signer, json, strlen(json),
                                                t->sig, sizeof(t->sig)),
                         MG_OK);
        r->signature = t->sig;
}

/* Append n records (signed when signer) to a new or existing log. */
static void t_append_n(struct mg_audit_log *log, int first, int n,
                       const struct mg_audit_signer *signer) {
        struct t_rec t;
        char errstr[256];
        int i;

        for (i = first; i < first + n; i++) {
                t_rec_make(&t, i, signer);
                assert_int_equal(mg_audit_log_append(log, &t.rec, NULL,
                                                     errstr, sizeof(errstr)),
                                 MG_OK);
        }
}

/* A log at tc of n records signed with the Ed25519 key. */
static void t_make_log(struct t_conf *tc, const char *name, int n) {
        struct mg_audit_signer *signer;
        struct mg_audit_log *log;
        char errstr[256];

        t_conf_init(tc, name, "never", 1000, "block");
        assert_int_equal(mg_audit_signer_new_file(t_ed_priv, &signer, errstr,
                                                  sizeof(errstr)),
                         MG_OK);
        assert_int_equal(mg_audit_log_new(&tc->conf, NULL, &log, errstr,
                                          sizeof(errstr)),
                         MG_OK);
        t_append_n(log, 0, n, signer);
        mg_audit_log_destroy(log);
        mg_audit_signer_destroy(signer);
}

/* Verify path with the Ed25519 public key; returns the result code. */
static mg_err_t t_verify(const char *path,
                         struct mg_audit_verify_report *rep, char *errstr,
                         size_t errstr_size) {
        struct mg_audit_verifier *vf;
        mg_err_t err;

        assert_int_equal(mg_audit_verifier_new_file(t_ed_pub, &vf, errstr,
                                                    errstr_size),
                         MG_OK);
        err = mg_audit_verify_file(path, vf, rep, errstr, errstr_size);
        mg_audit_verifier_destroy(vf);
        return err;
}

static void assert_has(const char *s, const char *sub) {
        if (!strstr(s, sub))
                fail_msg("\"%s\" does not contain \"%s\"", s, sub);
}

/*
 * Decision ids.
 */

static void test_decision_ids(void **state) {
        enum { N = 10000 };
        char(*ids)[MG_AUDIT_ID_SIZE] = calloc(N, MG_AUDIT_ID_SIZE);
        struct timespec ts;
        uint64_t ms, now;
        int i, j;

        assert_non_null(ids);
        clock_gettime(CLOCK_REALTIME, &ts);
        now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
        for (i = 0; i < N; i++)
                assert_int_equal(mg_audit_decision_id(ids[i]), MG_OK);
        for (i = 0; i < N; i++) {
                assert_int_equal(strlen(ids[i]), 36);
                for (j = 0; j < 36; j++) {
                        if (j == 8 || j == 13 || j == 18 || j == 23)
                                assert_int_equal(ids[i][j], '-');
                        else
                                assert_non_null(strchr("0123456789abcdef",
                                                       ids[i][j]));
                }
                assert_int_equal(ids[i][14], '7');           /* version */
                assert_non_null(strchr("89ab", ids[i][19])); /* variant */
                /* strictly increasing, so unique and in time order */
                if (i)
                        assert_true(strcmp(ids[i - 1], ids[i]) < 0);
        }
        /* the first 48 bits are the time in ms */
        ms = strtoull((char[13]){ids[0][0], ids[0][1], ids[0][2], ids[0][3],
                                 ids[0][4], ids[0][5], ids[0][6], ids[0][7],
                                 ids[0][9], ids[0][10], ids[0][11],
                                 ids[0][12], 0},
                      NULL, 16);
        assert_true(ms >= now && ms < now + 60000);
        free(ids);
}

/*
 * Signatures.
 */

static void t_sign_verify(const char *sign_path, const char *verify_path,
                          enum mg_audit_key_kind kind, const char *prefix,
                          size_t sig_len) {
        static const char msg[] = "{\"decision_id\":\"x\",\"ttl\":300}";
        struct mg_audit_signer *signer;
        struct mg_audit_verifier *vf;
        char sig[MG_AUDIT_SIG_SIZE], bad[MG_AUDIT_SIG_SIZE + 8], errstr[256];
        char msg2[sizeof(msg)];

        assert_int_equal(mg_audit_signer_new_file(sign_path, &signer, errstr,
                                                  sizeof(errstr)),
                         MG_OK);
        assert_int_equal(mg_audit_signer_kind(signer), kind);
        assert_int_equal(mg_audit_verifier_new_file(verify_path, &vf, errstr,
                                                    sizeof(errstr)),
                         MG_OK);
        assert_int_equal(mg_audit_verifier_kind(vf), kind);
        assert_int_equal(mg_audit_sign(signer, msg, strlen(msg), sig,
                                       sizeof(sig)),
                         MG_OK);
        assert_int_equal(strncmp(sig, prefix, strlen(prefix)), 0);
        assert_int_equal(strlen(sig), strlen(prefix) + sig_len);
        assert_null(strchr(sig, '='));
        assert_int_equal(mg_audit_verify(vf, msg, strlen(msg), sig), MG_OK);
        /* a tampered message */
        memcpy(msg2, msg, sizeof(msg));
        msg2[25] = '4';
        assert_int_equal(mg_audit_verify(vf, msg2, strlen(msg2), sig),
                         MG_ERR_INVALID);
        /* a tampered signature: one character, then a truncation */
        strcpy(bad, sig);
        bad[strlen(prefix) + 3] = bad[strlen(prefix) + 3] == 'A' ? 'B' : 'A';
        assert_int_equal(mg_audit_verify(vf, msg, strlen(msg), bad),
                         MG_ERR_INVALID);
        strcpy(bad, sig);
        bad[strlen(bad) - 1] = '\0';
        assert_int_equal(mg_audit_verify(vf, msg, strlen(msg), bad),
                         MG_ERR_INVALID);
        /* the same text with padding or a foreign character */
        snprintf(bad, sizeof(bad), "%s=", sig);
        assert_int_equal(mg_audit_verify(vf, msg, strlen(msg), bad),
                         MG_ERR_INVALID);
        strcpy(bad, sig);
        bad[strlen(prefix)] = '+';
        assert_int_equal(mg_audit_verify(vf, msg, strlen(msg), bad),
                         MG_ERR_INVALID);
        assert_int_equal(mg_audit_verify(vf, msg, strlen(msg), ""),
                         MG_ERR_INVALID);
        /* too small an output buffer */
        assert_int_equal(mg_audit_sign(signer, msg, strlen(msg), bad,
                                       strlen(prefix) + sig_len),
                         MG_ERR_TOOBIG);
        mg_audit_verifier_destroy(vf);
        mg_audit_signer_destroy(signer);
}

static void test_sign_verify_ed25519(void **state) {
        t_sign_verify(t_ed_priv, t_ed_pub, MG_AUDIT_KEY_ED25519, "ed25519:",
                      86);
        /* the private key file verifies too */
        t_sign_verify(t_ed_priv, t_ed_priv, MG_AUDIT_KEY_ED25519, "ed25519:",
                      86);
}

static void test_sign_verify_hmac(void **state) {
        t_sign_verify(t_hmac, t_hmac, MG_AUDIT_KEY_HMAC_SHA256,
                      "hmac-sha256:", 43);
}

static void test_key_kinds_do_not_mix(void **state) {
        struct mg_audit_signer *ed, *hm;
        struct mg_audit_verifier *ved, *vhm;
        char sig_ed[MG_AUDIT_SIG_SIZE], sig_hm[MG_AUDIT_SIG_SIZE], e[256];

        assert_int_equal(mg_audit_signer_new_file(t_ed_priv, &ed, e,
                                                  sizeof(e)),
                         MG_OK);
        assert_int_equal(mg_audit_signer_new_file(t_hmac, &hm, e, sizeof(e)),
                         MG_OK);
        assert_int_equal(mg_audit_verifier_new_file(t_ed_pub, &ved, e,
                                                    sizeof(e)),
                         MG_OK);
        assert_int_equal(mg_audit_verifier_new_file(t_hmac, &vhm, e,
                                                    sizeof(e)),
                         MG_OK);
        assert_int_equal(mg_audit_sign(ed, "m", 1, sig_ed, sizeof(sig_ed)),
                         MG_OK);
        assert_int_equal(mg_audit_sign(hm, "m", 1, sig_hm, sizeof(sig_hm)),
                         MG_OK);
        assert_int_equal(mg_audit_verify(vhm, "m", 1, sig_ed),
                         MG_ERR_INVALID);
        assert_int_equal(mg_audit_verify(ved, "m", 1, sig_hm),
                         MG_ERR_INVALID);
        mg_audit_verifier_destroy(ved);
        mg_audit_verifier_destroy(vhm);
        mg_audit_signer_destroy(ed);
        mg_audit_signer_destroy(hm);
}

static void test_bad_keys(void **state) {
        struct mg_audit_signer *signer = (void *)1;
        struct mg_audit_verifier *vf = (void *)1;
        char path[256], errstr[256];

        /* a public key cannot sign */
        assert_int_equal(mg_audit_signer_new_file(t_ed_pub, &signer, errstr,
                                                  sizeof(errstr)),
                         MG_ERR_CONFIG);
        assert_null(signer);
        assert_has(errstr, "public key");
        /* another key type */
        assert_int_equal(mg_audit_signer_new_file(t_ec, &signer, errstr,
                                                  sizeof(errstr)),
                         MG_ERR_CONFIG);
        assert_has(errstr, "not Ed25519");
        assert_int_equal(mg_audit_verifier_new_file(t_ec, &vf, errstr,
                                                    sizeof(errstr)),
                         MG_ERR_CONFIG);
        assert_null(vf);
        /* a short HMAC key */
        t_path(path, sizeof(path), "short.key");
        t_write(path, "0123456789abcdef0123456789abcde", 31);
        assert_int_equal(mg_audit_signer_new_file(path, &signer, errstr,
                                                  sizeof(errstr)),
                         MG_ERR_CONFIG);
        assert_has(errstr, "31 bytes");
        /* PEM that is not a key */
        t_path(path, sizeof(path), "junk.pem");
        t_write(path, "-----BEGIN JUNK-----\nAAAA\n-----END JUNK-----\n", 45);
        assert_int_equal(mg_audit_verifier_new_file(path, &vf, errstr,
                                                    sizeof(errstr)),
                         MG_ERR_CONFIG);
        /* no file */
        t_path(path, sizeof(path), "missing.key");
        assert_int_equal(mg_audit_signer_new_file(path, &signer, errstr,
                                                  sizeof(errstr)),
                         MG_ERR_IO);
        assert_has(errstr, "missing.key");
        mg_audit_signer_destroy(NULL);
        mg_audit_verifier_destroy(NULL);
}

/*
 * The canonical form.
 */

/* DESIGN.md's response, by hand: its canonical bytes, by hand. */
static const char t_resp[] =
        "{\"id\":\"r-17\",\"decision\":\"narrow\",\"scopes\":[\"deploy:write\"],"
        "\"ttl\":300,\"risk\":47.5,\"level\":\"medium\",\"reasons\":[{"
        "\"signal\":\"new_source\",\"points\":30,\"detail\":\"198.51.100.0/24"
        " never seen\"},{\"signal\":\"scope_unused\",\"points\":0,\"detail\":"
        "\"secrets:read not used in 30d: removed\"}],\"policy\":\"gh-actions/"
        "api://deploy\",\"decision_id\":\"0190f3c2-7b1e-7a3d-9c4e-"
        "5f6a7b8c9d0e\",\"degraded\":false}\n";
static const char t_resp_canon[] =
        "{\"decision_id\":\"0190f3c2-7b1e-7a3d-9c4e-5f6a7b8c9d0e\","
        "\"id\":\"r-17\",\"decision\":\"narrow\",\"scopes\":[\"deploy:write\"],"
        "\"ttl\":300,\"risk\":47.50,\"level\":\"medium\",\"policy\":"
        "\"gh-actions/api://deploy\",\"degraded\":false}";

static mg_err_t t_canon(const char *json, char *buf, size_t size,
                        size_t *lenp) {
        return mg_audit_canonical_response(json, strlen(json), buf, size,
                                           lenp);
}

static void t_canon_is(const char *json, const char *want) {
        char buf[4096];
        size_t len;

        assert_int_equal(t_canon(json, buf, sizeof(buf), &len), MG_OK);
        buf[len] = '\0';
        assert_string_equal(buf, want);
}

static void test_canonical_example(void **state) {
        char buf[4096];
        size_t len;

        t_canon_is(t_resp, t_resp_canon);
        /* surrounding whitespace and member order do not matter */
        t_canon_is("  {\"degraded\":true,\"decision_id\":\"d\",\"policy\":"
                   "\"p\",\"level\":\"low\",\"risk\":0,\"ttl\":0,\"scopes\":"
                   "[],\"decision\":\"deny\"}\r\n",
                   "{\"decision_id\":\"d\",\"id\":null,\"decision\":\"deny\","
                   "\"scopes\":[],\"ttl\":0,\"risk\":0.00,\"level\":\"low\","
                   "\"policy\":\"p\",\"degraded\":true}");
        /* a numeric id is signed as its text; a null policy as "";
         * identity when present; risk rounded to two decimals */
        t_canon_is("{\"id\":17,\"identity\":\"svc\",\"decision\":\"allow\","
                   "\"scopes\":[\"a\",\"b\"],\"ttl\":60,\"risk\":99.999,"
                   "\"level\":\"critical\",\"policy\":null,\"decision_id\":"
                   "\"d\",\"degraded\":false,\"signature\":\"x\"}",
                   "{\"decision_id\":\"d\",\"id\":\"17\",\"identity\":\"svc\","
                   "\"decision\":\"allow\",\"scopes\":[\"a\",\"b\"],\"ttl\":60,"
                   "\"risk\":100.00,\"level\":\"critical\",\"policy\":\"\","
                   "\"degraded\":false}");
        t_canon_is("{\"id\":1.5,\"decision\":\"allow\",\"scopes\":[],"
                   "\"ttl\":1,\"risk\":-0.0,\"level\":\"l\",\"policy\":\"\","
                   "\"decision_id\":\"d\",\"degraded\":false}",
                   "{\"decision_id\":\"d\",\"id\":\"1.5\",\"decision\":"
                   "\"allow\",\"scopes\":[],\"ttl\":1,\"risk\":0.00,\"level\":"
                   "\"l\",\"policy\":\"\",\"degraded\":false}");
        /* escaping: ", \, control bytes and DEL as \u00xx, UTF-8 as is */
        t_canon_is("{\"id\":\"q\\\"b\\\\s\\n\\u0001\\u007f\\u00e9\\/\","
                   "\"decision\":\"allow\",\"scopes\":[],\"ttl\":1,\"risk\":1,"
                   "\"level\":\"l\",\"policy\":\"\",\"decision_id\":\"d\","
                   "\"degraded\":false}",
                   "{\"decision_id\":\"d\",\"id\":\"q\\\"b\\\\s\\u000a\\u0001"
                   "\\u007f\xc3\xa9/\",\"decision\":\"allow\",\"scopes\":[],"
                   "\"ttl\":1,\"risk\":1.00,\"level\":\"l\",\"policy\":\"\","
                   "\"degraded\":false}");
        /* too small */
        assert_int_equal(t_canon(t_resp, buf, 20, &len), MG_ERR_TOOBIG);
        /* not signable */
        assert_int_equal(t_canon("[1]", buf, sizeof(buf), &len),
                         MG_ERR_INVALID);
        assert_int_equal(t_canon("{\"id\":\"r\",\"error\":{\"code\":"
                                 "\"bad_json\",\"message\":\"m\"}}",
                                 buf, sizeof(buf), &len),
                         MG_ERR_INVALID);
        assert_int_equal(t_canon("{\"decision_id\":\"d\",\"decision_id\":"
                                 "\"e\",\"decision\":\"allow\",\"scopes\":[],"
                                 "\"ttl\":1,\"risk\":1,\"level\":\"l\","
                                 "\"policy\":\"\",\"degraded\":false}",
                                 buf, sizeof(buf), &len),
                         MG_ERR_INVALID);
        assert_int_equal(t_canon("{\"decision_id\":\"d\",\"decision\":"
                                 "\"allow\",\"scopes\":[],\"ttl\":1.5,"
                                 "\"risk\":1,\"level\":\"l\",\"policy\":\"\","
                                 "\"degraded\":false}",
                                 buf, sizeof(buf), &len),
                         MG_ERR_INVALID);
        assert_int_equal(t_canon("{\"decision_id\":\"d\",\"decision\":"
                                 "\"allow\",\"scopes\":[1],\"ttl\":1,"
                                 "\"risk\":1,\"level\":\"l\",\"policy\":\"\","
                                 "\"degraded\":false}",
                                 buf, sizeof(buf), &len),
                         MG_ERR_INVALID);
        assert_int_equal(t_canon("{\"decision_id\":\"d\",\"decision\":"
                                 "\"allow\",\"scopes\":[],\"ttl\":1,"
                                 "\"risk\":1,\"level\":\"l\",\"policy\":\"\","
                                 "\"degraded\":0}",
                                 buf, sizeof(buf), &len),
                         MG_ERR_INVALID);
        assert_int_equal(t_canon("{\"id\":[],\"decision_id\":\"d\","
                                 "\"decision\":\"allow\",\"scopes\":[],"
                                 "\"ttl\":1,\"risk\":1,\"level\":\"l\","
                                 "\"policy\":\"\",\"degraded\":false}",
                                 buf, sizeof(buf), &len),
                         MG_ERR_INVALID);
}

static void test_sign_response_and_verify_decision(void **state) {
        const char *const keys[][2] = {{t_ed_priv, t_ed_pub},
                                       {t_hmac, t_hmac}};
        struct mg_audit_signer *signer;
        struct mg_audit_verifier *vf;
        char sig[MG_AUDIT_SIG_SIZE], line[4096], errstr[256], *p;
        size_t k, n;

        for (k = 0; k < 2; k++) {
                assert_int_equal(mg_audit_signer_new_file(keys[k][0], &signer,
                                                          errstr,
                                                          sizeof(errstr)),
                                 MG_OK);
                assert_int_equal(mg_audit_verifier_new_file(
                                         keys[k][1], &vf, errstr,
                                         sizeof(errstr)),
                                 MG_OK);
                assert_int_equal(mg_audit_sign_response(signer, t_resp,
                                                        strlen(t_resp), sig,
                                                        sizeof(sig)),
                                 MG_OK);
                /* the server adds "signature" as the last member */
                n = strlen(t_resp) - 2; /* without "}\n" */
                snprintf(line, sizeof(line), "%.*s,\"signature\":\"%s\"}",
                         (int)n, t_resp, sig);
                assert_int_equal(mg_audit_verify_decision(vf, line, errstr,
                                                          sizeof(errstr)),
                                 MG_OK);
                /* reasons are not signed; the ttl is */
                p = strstr(line, "\"points\":30");
                p[10] = '1';
                assert_int_equal(mg_audit_verify_decision(vf, line, errstr,
                                                          sizeof(errstr)),
                                 MG_OK);
                p = strstr(line, "\"ttl\":300");
                p[6] = '9';
                assert_int_equal(mg_audit_verify_decision(vf, line, errstr,
                                                          sizeof(errstr)),
                                 MG_ERR_INVALID);
                assert_has(errstr, "does not verify");
                assert_int_equal(mg_audit_verify_decision(vf, t_resp, errstr,
                                                          sizeof(errstr)),
                                 MG_ERR_INVALID);
                assert_has(errstr, "no signature");
                assert_int_equal(mg_audit_verify_decision(vf, "{", errstr,
                                                          sizeof(errstr)),
                                 MG_ERR_INVALID);
                mg_audit_verifier_destroy(vf);
                mg_audit_signer_destroy(signer);
        }
}

/*
 * The audit log.
 */

static void test_append_verify(void **state) {
        struct mg_audit_verify_report rep;
        struct mg_audit_verifier *vf;
        struct t_conf tc;
        unsigned char h[32];
        char errstr[256], hex[65];
        size_t len, starts[256];
        char *buf;
        int n, i;

        t_make_log(&tc, "ok.log", 120);
        assert_int_equal(t_verify(tc.log, &rep, errstr, sizeof(errstr)),
                         MG_OK);
        assert_int_equal(rep.lines, 120);
        assert_int_equal(rep.records_ok, 120);
        assert_int_equal(rep.signed_ok, 120);
        assert_int_equal(rep.bad_line, 0);
        /* the chain head is the SHA-256 of the last line */
        buf = t_read(tc.log, &len);
        n = t_lines(buf, len, starts, 256);
        assert_int_equal(n, 120);
        assert_int_equal(EVP_Digest(buf + starts[n - 1],
                                    starts[n] - 1 - starts[n - 1], h, NULL,
                                    EVP_sha256(), NULL),
                         1);
        for (i = 0; i < 32; i++)
                snprintf(hex + 2 * i, 3, "%02x", h[i]);
        assert_string_equal(rep.last_hash, hex);
        /* line 1 carries the genesis value; every line ends as specified */
        assert_non_null(strstr(buf, "\"prev_hash\":\"00000000000000000000"
                                    "00000000000000000000000000000000000000"
                                    "000000\",\"hash\":\""));
        for (i = 0; i < n; i++)
                assert_memory_equal(buf + starts[i + 1] - 76, ",\"hash\":\"",
                                    9);
        /* an HMAC verifier refuses Ed25519 signatures, naming the line */
        assert_int_equal(mg_audit_verifier_new_file(t_hmac, &vf, errstr,
                                                    sizeof(errstr)),
                         MG_OK);
        assert_int_equal(mg_audit_verify_file(tc.log, vf, &rep, errstr,
                                              sizeof(errstr)),
                         MG_ERR_INVALID);
        assert_int_equal(rep.bad_line, 1);
        assert_has(errstr, "line 1: an ed25519 signature");
        mg_audit_verifier_destroy(vf);
        /* without a verifier, the chain alone */
        assert_int_equal(mg_audit_verify_file(tc.log, NULL, &rep, errstr,
                                              sizeof(errstr)),
                         MG_OK);
        assert_int_equal(rep.signed_ok, 0);
        free(buf);
}

/* The exact line of a hand-made record, with odd strings. */
static void test_line_format(void **state) {
        const char *scopes[2] = {"a\"b", "c\\d"};
        struct mg_audit_reason reason = {"s", 1e-7, "tab\there"};
        struct mg_audit_record rec;
        struct mg_audit_verify_report rep;
        struct mg_audit_log *log;
        struct t_conf tc;
        char errstr[256], *buf;
        size_t len;
        uint64_t seq;
        static const char want[] =
                "{\"decision_id\":\"id-1\",\"ts\":1795000000000,"
                "\"request_id\":null,\"identity\":\"\xc3\xa9\\u007f\xef\xbf"
                "\xbd\",\"client_id\":\"c\",\"resource\":\"r\",\"grant_type\":"
                "\"g\",\"requested_scopes\":[\"a\\\"b\",\"c\\\\d\"],"
                "\"requested_ttl\":2147483647,\"decision\":\"step_up\","
                "\"scopes\":[],\"ttl\":0,\"risk\":0.1,\"level\":\"high\","
                "\"reasons\":[{\"signal\":\"s\",\"points\":1e-07,"
                "\"detail\":\"tab\\u0009here\"}],\"policy\":\"\","
                "\"degraded\":true,\"signature\":\"\",\"prev_hash\":\"";

        memset(&rec, 0, sizeof(rec));
        rec.decision_id = "id-1";
        rec.ts_ms = 1795000000000LL;
        rec.identity = "\xc3\xa9\x7f\xff"; /* é, DEL, an invalid byte */
        rec.client_id = "c";
        rec.resource = "r";
        rec.grant_type = "g";
        rec.requested_scopes = scopes;
        rec.requested_scope_cnt = 2;
        rec.requested_ttl = INT32_MAX;
        rec.decision = "step_up";
        rec.risk = 0.1;
        rec.level = "high";
        rec.reasons = &reason;
        rec.reason_cnt = 1;
        rec.degraded = 1;
        t_conf_init(&tc, "format.log", "always", 10, "block");
        assert_int_equal(mg_audit_log_new(&tc.conf, NULL, &log, errstr,
                                          sizeof(errstr)),
                         MG_OK);
        assert_int_equal(mg_audit_log_append(log, &rec, &seq, errstr,
                                             sizeof(errstr)),
                         MG_OK);
        assert_int_equal(seq, 1);
        assert_int_equal(mg_audit_log_wait(log, seq, 5000, errstr,
                                           sizeof(errstr)),
                         MG_OK);
        mg_audit_log_destroy(log);
        buf = t_read(tc.log, &len);
        if (strncmp(buf, want, strlen(want)))
                fail_msg("line:\n%s\nwant prefix:\n%s", buf, want);
        assert_int_equal(len, strlen(want) + 64 + 10 + 64 + 3);
        assert_int_equal(mg_audit_verify_file(tc.log, NULL, &rep, errstr,
                                              sizeof(errstr)),
                         MG_OK);
        /* an unsigned record fails a verifier */
        assert_int_equal(t_verify(tc.log, &rep, errstr, sizeof(errstr)),
                         MG_ERR_INVALID);
        assert_has(errstr, "line 1: no signature");
        free(buf);
}

static void test_record_validation(void **state) {
        struct mg_audit_verify_report rep;
        struct mg_audit_log *log;
        struct t_conf tc;
        struct t_rec t;
        struct mg_audit_stats st;
        char errstr[256], *big;
        uint64_t seq = 7;

        t_conf_init(&tc, "valid.log", "never", 10, "deny");
        assert_int_equal(mg_audit_log_new(&tc.conf, NULL, &log, errstr,
                                          sizeof(errstr)),
                         MG_OK);
        t_rec_make(&t, 1, NULL);
        t.rec.identity = NULL;
        assert_int_equal(mg_audit_log_append(log, &t.rec, &seq, errstr,
                                             sizeof(errstr)),
                         MG_ERR_INVALID);
        assert_int_equal(seq, 0);
        assert_has(errstr, "identity");
        t_rec_make(&t, 1, NULL);
        t.rec.decision = "maybe";
        assert_int_equal(mg_audit_log_append(log, &t.rec, NULL, errstr,
                                             sizeof(errstr)),
                         MG_ERR_INVALID);
        t_rec_make(&t, 1, NULL);
        t.rec.ttl = (int64_t)INT32_MAX + 1;
        assert_int_equal(mg_audit_log_append(log, &t.rec, NULL, errstr,
                                             sizeof(errstr)),
                         MG_ERR_INVALID);
        t_rec_make(&t, 1, NULL);
        t.rec.risk = NAN;
        assert_int_equal(mg_audit_log_append(log, &t.rec, NULL, errstr,
                                             sizeof(errstr)),
                         MG_ERR_INVALID);
        t_rec_make(&t, 1, NULL);
        t.reasons[1].points = INFINITY;
        assert_int_equal(mg_audit_log_append(log, &t.rec, NULL, errstr,
                                             sizeof(errstr)),
                         MG_ERR_INVALID);
        /* a detail that escapes past MG_AUDIT_LINE_MAX */
        big = malloc(MG_AUDIT_LINE_MAX / 6 + 10);
        memset(big, 1, MG_AUDIT_LINE_MAX / 6 + 9);
        big[MG_AUDIT_LINE_MAX / 6 + 9] = '\0';
        t_rec_make(&t, 1, NULL);
        t.reasons[1].detail = big;
        assert_int_equal(mg_audit_log_append(log, &t.rec, NULL, errstr,
                                             sizeof(errstr)),
                         MG_ERR_TOOBIG);
        /* a long line (beyond the one-pass stack buffer) is fine */
        memset(big, 'x', 20000);
        big[20000] = '\0';
        t.reasons[1].detail = big;
        assert_int_equal(mg_audit_log_append(log, &t.rec, &seq, errstr,
                                             sizeof(errstr)),
                         MG_OK);
        assert_int_equal(seq, 1);
        assert_int_equal(mg_audit_log_flush(log, 5000, errstr,
                                            sizeof(errstr)),
                         MG_OK);
        assert_int_equal(mg_audit_verify_file(tc.log, NULL, &rep, errstr,
                                              sizeof(errstr)),
                         MG_OK);
        assert_int_equal(rep.lines, 1);
        free(big);
        mg_audit_log_stats(log, &st);
        assert_int_equal(st.queued, 1);
        assert_int_equal(mg_audit_log_wait(log, 2, 0, errstr,
                                           sizeof(errstr)),
                         MG_ERR_INVALID);
        mg_audit_log_destroy(log);
        mg_audit_log_destroy(NULL);
}

/* Verify a copy of the log edited by edit(); expect bad_line and a phrase
 * in the problem. */
static void t_tamper(const char *name, void (*edit)(char *buf, size_t *lenp,
                                                     size_t *starts),
                     uint64_t bad_line, const char *phrase) {
        struct mg_audit_verify_report rep;
        struct t_conf tc;
        char path[300], errstr[512], want[64], *buf;
        size_t len, starts[64];

        t_make_log(&tc, name, 10);
        buf = t_read(tc.log, &len);
        buf = realloc(buf, len + 4096);
        assert_int_equal(t_lines(buf, len, starts, 64), 10);
        edit(buf, &len, starts);
        snprintf(path, sizeof(path), "%s.edited", tc.log);
        t_write(path, buf, len);
        assert_int_equal(t_verify(path, &rep, errstr, sizeof(errstr)),
                         MG_ERR_INVALID);
        assert_int_equal(rep.bad_line, bad_line);
        snprintf(want, sizeof(want), "line %" PRIu64 ": ", bad_line);
        assert_int_equal(strncmp(errstr, want, strlen(want)), 0);
        assert_has(rep.problem, phrase);
        assert_has(errstr, phrase);
        assert_int_equal(rep.records_ok, bad_line - 1);
        assert_int_equal(rep.lines, bad_line);
        free(buf);
}

static void t_edit_byte(char *buf, size_t *lenp, size_t *starts) {
        char *p = strstr(buf + starts[4], "svc-");

        p[4] = p[4] == '9' ? '8' : '9'; /* line 5's identity */
}

/* Edit line 5 at what (its byte after the text what) and recompute its
 * hash. */
static void t_rehash(char *buf, size_t *starts, const char *what) {
        char *line = buf + starts[4], *p = strstr(line, what);
        size_t n = starts[5] - 1 - starts[4];
        unsigned char h[32];
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        int i;

        p += strlen(what);
        *p = *p == '9' ? '8' : '9';
        EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
        EVP_DigestUpdate(ctx, line, n - 75);
        EVP_DigestUpdate(ctx, "}", 1);
        EVP_DigestFinal_ex(ctx, h, NULL);
        EVP_MD_CTX_free(ctx);
        for (i = 0; i < 32; i++) {
                char two[3];

                snprintf(two, sizeof(two), "%02x", h[i]);
                memcpy(line + n - 66 + 2 * i, two, 2);
        }
}

/* An unsigned member (client_id): line 6's prev_hash breaks. */
static void t_edit_rehash(char *buf, size_t *lenp, size_t *starts) {
        t_rehash(buf, starts, "\"client_id\":\"gh-action");
}

/* The identity, which line 5's response carried (record 4: 4 % 3 == 1),
 * so its signature covers it. */
static void t_edit_rehash_signed(char *buf, size_t *lenp, size_t *starts) {
        t_rehash(buf, starts, "svc-");
}

static void t_delete_line(char *buf, size_t *lenp, size_t *starts) {
        /* line 4 goes */
        memmove(buf + starts[3], buf + starts[4], *lenp - starts[4]);
        *lenp -= starts[4] - starts[3];
}

static void t_delete_first(char *buf, size_t *lenp, size_t *starts) {
        memmove(buf, buf + starts[1], *lenp - starts[1]);
        *lenp -= starts[1];
}

static void t_swap_lines(char *buf, size_t *lenp, size_t *starts) {
        /* lines 6 and 7 trade places */
        size_t a = starts[6] - starts[5], b = starts[7] - starts[6];
        char *tmp = malloc(a + b);

        memcpy(tmp, buf + starts[6], b);
        memcpy(tmp + b, buf + starts[5], a);
        memcpy(buf + starts[5], tmp, a + b);
        free(tmp);
}

static void t_insert_line(char *buf, size_t *lenp, size_t *starts) {
        /* a copy of line 2 after line 8 */
        size_t a = starts[2] - starts[1];

        memmove(buf + starts[8] + a, buf + starts[8], *lenp - starts[8]);
        memcpy(buf + starts[8], buf + starts[1], a);
        *lenp += a;
}

static void t_torn_cut(char *buf, size_t *lenp, size_t *starts) {
        *lenp = starts[9] + 40; /* line 10 cut in the middle */
}

static void t_torn_newline(char *buf, size_t *lenp, size_t *starts) {
        (*lenp)--; /* line 10 lacks only its '\n' */
}

static void t_edit_json(char *buf, size_t *lenp, size_t *starts) {
        /* line 3: break the JSON but keep the tail; the hash catches it */
        buf[starts[2]] = '[';
}

static void test_tamper_edit_byte(void **state) {
        t_tamper("edit.log", t_edit_byte, 5, "hash mismatch: record edited");
}

static void test_tamper_edit_rehash(void **state) {
        t_tamper("rehash.log", t_edit_rehash, 6, "prev_hash mismatch");
        t_tamper("rehash2.log", t_edit_rehash_signed, 5,
                 "signature does not verify");
}

static void test_tamper_delete(void **state) {
        t_tamper("delete.log", t_delete_line, 4, "prev_hash mismatch");
        t_tamper("delete1.log", t_delete_first, 1, "genesis");
}

static void test_tamper_swap(void **state) {
        t_tamper("swap.log", t_swap_lines, 6, "prev_hash mismatch");
}

static void test_tamper_insert(void **state) {
        t_tamper("insert.log", t_insert_line, 9, "prev_hash mismatch");
}

static void test_tamper_json(void **state) {
        t_tamper("json.log", t_edit_json, 3, "malformed");
}

static void test_torn_last_line(void **state) {
        t_tamper("torn.log", t_torn_cut, 10, "torn");
        t_tamper("torn2.log", t_torn_newline, 10, "torn");
}

static void test_long_line(void **state) {
        struct mg_audit_verify_report rep;
        char path[256], errstr[256], *buf;
        size_t n = MG_AUDIT_LINE_MAX + 100;

        t_path(path, sizeof(path), "long.log");
        buf = malloc(n);
        memset(buf, 'x', n);
        buf[n - 1] = '\n';
        t_write(path, buf, n);
        assert_int_equal(mg_audit_verify_file(path, NULL, &rep, errstr,
                                              sizeof(errstr)),
                         MG_ERR_INVALID);
        assert_int_equal(rep.bad_line, 1);
        assert_has(errstr, "longer than");
        free(buf);
        t_path(path, sizeof(path), "empty.log");
        t_write(path, "", 0);
        assert_int_equal(mg_audit_verify_file(path, NULL, &rep, errstr,
                                              sizeof(errstr)),
                         MG_OK);
        assert_int_equal(rep.lines, 0);
        assert_string_equal(rep.last_hash, "000000000000000000000000000000"
                                           "0000000000000000000000000000000000");
        t_path(path, sizeof(path), "nonexistent.log");
        assert_int_equal(mg_audit_verify_file(path, NULL, &rep, errstr,
                                              sizeof(errstr)),
                         MG_ERR_IO);
}

/* Reopening continues the chain; a torn tail is completed or moved aside;
 * a modified last line is refused; a second opener is refused. */
static void test_reopen(void **state) {
        struct mg_audit_verify_report rep;
        struct mg_audit_signer *signer;
        struct mg_audit_log *log, *log2;
        struct t_conf tc;
        char errstr[256], torn[300], *buf;
        size_t len, starts[64];
        struct stat st;

        assert_int_equal(mg_audit_signer_new_file(t_ed_priv, &signer, errstr,
                                                  sizeof(errstr)),
                         MG_OK);
        t_make_log(&tc, "reopen.log", 5);
        assert_int_equal(mg_audit_log_new(&tc.conf, NULL, &log, errstr,
                                          sizeof(errstr)),
                         MG_OK);
        /* another opener of the same log */
        assert_int_equal(mg_audit_log_new(&tc.conf, NULL, &log2, errstr,
                                          sizeof(errstr)),
                         MG_ERR_IO);
        assert_null(log2);
        assert_has(errstr, "another process");
        t_append_n(log, 5, 5, signer);
        mg_audit_log_destroy(log);
        assert_int_equal(t_verify(tc.log, &rep, errstr, sizeof(errstr)),
                         MG_OK);
        assert_int_equal(rep.lines, 10);

        /* a record that lost only its '\n' is completed */
        buf = t_read(tc.log, &len);
        t_write(tc.log, buf, len - 1);
        assert_int_equal(mg_audit_log_new(&tc.conf, NULL, &log, errstr,
                                          sizeof(errstr)),
                         MG_OK);
        t_append_n(log, 10, 2, signer);
        mg_audit_log_destroy(log);
        assert_int_equal(t_verify(tc.log, &rep, errstr, sizeof(errstr)),
                         MG_OK);
        assert_int_equal(rep.lines, 12);
        free(buf);

        /* a half-written record is moved to <log>.torn */
        buf = t_read(tc.log, &len);
        assert_int_equal(t_lines(buf, len, starts, 64), 12);
        t_write(tc.log, buf, starts[11] + 100);
        snprintf(torn, sizeof(torn), "%s.torn", tc.log);
        unlink(torn);
        assert_int_equal(mg_audit_log_new(&tc.conf, NULL, &log, errstr,
                                          sizeof(errstr)),
                         MG_OK);
        t_append_n(log, 12, 3, signer);
        mg_audit_log_destroy(log);
        assert_int_equal(t_verify(tc.log, &rep, errstr, sizeof(errstr)),
                         MG_OK);
        assert_int_equal(rep.lines, 14);
        assert_int_equal(stat(torn, &st), 0);
        assert_int_equal(st.st_size, 101);
        free(buf);

        /* a modified last line: refused */
        buf = t_read(tc.log, &len);
        buf[len - 10] = buf[len - 10] == 'a' ? 'b' : 'a';
        t_write(tc.log, buf, len);
        assert_int_equal(mg_audit_log_new(&tc.conf, NULL, &log, errstr,
                                          sizeof(errstr)),
                         MG_ERR_INVALID);
        assert_has(errstr, "hash mismatch");
        free(buf);
        mg_audit_signer_destroy(signer);
}

/* The queue with when_full=deny: the paused writer makes it fill. */
static void test_queue_full_deny(void **state) {
        struct mg_audit_verify_report rep;
        struct mg_audit_stats st;
        struct mg_audit_log *log;
        struct t_conf tc;
        struct t_rec t;
        char errstr[256];
        uint64_t seq;

        t_conf_init(&tc, "deny.log", "always", 3, "deny");
        assert_int_equal(mg_audit_log_new(&tc.conf, NULL, &log, errstr,
                                          sizeof(errstr)),
                         MG_OK);
        mg_audit_log_pause(log, 1);
        t_append_n(log, 0, 3, NULL);
        t_rec_make(&t, 3, NULL);
        assert_int_equal(mg_audit_log_append(log, &t.rec, &seq, errstr,
                                             sizeof(errstr)),
                         MG_ERR_RETRY);
        assert_int_equal(seq, 0);
        mg_audit_log_stats(log, &st);
        assert_int_equal(st.queued, 3);
        assert_int_equal(st.refused, 1);
        assert_int_equal(st.backlog, 3);
        assert_int_equal(st.written, 0);
        /* nothing durable while paused */
        assert_int_equal(mg_audit_log_wait(log, 3, 50, errstr,
                                           sizeof(errstr)),
                         MG_ERR_TIMEOUT);
        mg_audit_log_pause(log, 0);
        assert_int_equal(mg_audit_log_wait(log, 3, 5000, errstr,
                                           sizeof(errstr)),
                         MG_OK);
        assert_int_equal(mg_audit_log_append(log, &t.rec, &seq, errstr,
                                             sizeof(errstr)),
                         MG_OK);
        assert_int_equal(seq, 4);
        assert_int_equal(mg_audit_log_flush(log, 5000, errstr,
                                            sizeof(errstr)),
                         MG_OK);
        mg_audit_log_stats(log, &st);
        assert_int_equal(st.written, 4);
        assert_int_equal(st.backlog, 0);
        assert_int_equal(st.synced_seq, 4);
        assert_int_equal(st.lost, 0);
        mg_audit_log_destroy(log);
        assert_int_equal(mg_audit_verify_file(tc.log, NULL, &rep, errstr,
                                              sizeof(errstr)),
                         MG_OK);
        assert_int_equal(rep.lines, 4);
}

struct t_blocker {
        struct mg_audit_log *log; /* log to append to */
        mg_err_t err;             /* what append returned */
        uint64_t seq;             /* its sequence number */
        atomic_int done;          /* append returned */
};

static void *t_blocker_main(void *arg) {
        struct t_blocker *b = arg;
        struct t_rec t;
        char errstr[256];

        t_rec_make(&t, 99, NULL);
        b->err = mg_audit_log_append(b->log, &t.rec, &b->seq, errstr,
                                     sizeof(errstr));
        atomic_store(&b->done, 1);
        return NULL;
}

/* The queue with when_full=block: the append waits until the writer
 * makes room. */
static void test_queue_full_block(void **state) {
        struct mg_audit_verify_report rep;
        struct mg_audit_stats st;
        struct t_blocker b;
        struct t_conf tc;
        pthread_t th;
        char errstr[256];
        int i;

        memset(&b, 0, sizeof(b));
        t_conf_init(&tc, "block.log", "interval", 2, "block");
        assert_int_equal(mg_audit_log_new(&tc.conf, NULL, &b.log, errstr,
                                          sizeof(errstr)),
                         MG_OK);
        mg_audit_log_pause(b.log, 1);
        t_append_n(b.log, 0, 2, NULL);
        assert_int_equal(pthread_create(&th, NULL, t_blocker_main, &b), 0);
        /* the append counts itself blocked before it waits */
        for (i = 0; i < 5000; i++) {
                mg_audit_log_stats(b.log, &st);
                if (st.blocked)
                        break;
                usleep(1000);
        }
        assert_int_equal(st.blocked, 1);
        usleep(20000);
        assert_int_equal(atomic_load(&b.done), 0);
        mg_audit_log_stats(b.log, &st);
        assert_int_equal(st.queued, 2);
        mg_audit_log_pause(b.log, 0);
        assert_int_equal(pthread_join(th, NULL), 0);
        assert_int_equal(b.err, MG_OK);
        assert_int_equal(b.seq, 3);
        assert_int_equal(mg_audit_log_flush(b.log, 5000, errstr,
                                            sizeof(errstr)),
                         MG_OK);
        mg_audit_log_stats(b.log, &st);
        assert_int_equal(st.written, 3);
        assert_int_equal(st.refused, 0);
        mg_audit_log_destroy(b.log);
        assert_int_equal(mg_audit_verify_file(tc.log, NULL, &rep, errstr,
                                              sizeof(errstr)),
                         MG_OK);
        assert_int_equal(rep.lines, 3);
}

/* What the durable callback saw. */
struct t_durable {
        atomic_uint_fast64_t max; /* highest seq reported */
        atomic_int calls;         /* how many reports */
};

static void t_durable_cb(void *opaque, uint64_t seq) {
        struct t_durable *d = opaque;

        if (seq > atomic_load(&d->max))
                atomic_store(&d->max, seq);
        atomic_fetch_add(&d->calls, 1);
}

static void test_fsync_modes(void **state) {
        static const char *const modes[] = {"always", "interval", "never"};
        struct mg_audit_verify_report rep;
        struct mg_audit_log_opts opts;
        struct mg_audit_stats st;
        struct mg_audit_log *log;
        struct t_durable d;
        struct t_conf tc;
        struct t_rec t;
        char errstr[256], name[32];
        uint64_t seq = 0;
        int m, i;

        for (m = 0; m < 3; m++) {
                memset(&d, 0, sizeof(d));
                memset(&opts, 0, sizeof(opts));
                opts.durable_cb = t_durable_cb;
                opts.opaque = &d;
                snprintf(name, sizeof(name), "fsync-%s.log", modes[m]);
                t_conf_init(&tc, name, modes[m], 100, "block");
                assert_int_equal(mg_audit_log_new(&tc.conf, &opts, &log,
                                                  errstr, sizeof(errstr)),
                                 MG_OK);
                for (i = 0; i < 50; i++) {
                        t_rec_make(&t, i, NULL);
                        assert_int_equal(mg_audit_log_append(
                                                 log, &t.rec, &seq, errstr,
                                                 sizeof(errstr)),
                                         MG_OK);
                        if (i % 10 == 9)
                                assert_int_equal(
                                        mg_audit_log_wait(log, seq, 5000,
                                                          errstr,
                                                          sizeof(errstr)),
                                        MG_OK);
                }
                assert_int_equal(mg_audit_log_wait(log, 50, 5000, errstr,
                                                   sizeof(errstr)),
                                 MG_OK);
                mg_audit_log_stats(log, &st);
                assert_int_equal(st.written, 50);
                assert_int_equal(st.written_seq, 50);
                /* the callback runs on the writer after waiters wake */
                for (i = 0; i < 5000 && atomic_load(&d.max) < 50; i++)
                        usleep(1000);
                assert_int_equal(atomic_load(&d.max), 50);
                if (m == 0) {
                        assert_int_equal(st.synced_seq, 50);
                        assert_true(st.fsyncs >= 1);
                } else if (m == 1) {
                        /* within a few intervals (5 ms) the timer syncs */
                        for (i = 0; i < 2000 && st.synced_seq < 50; i++) {
                                usleep(1000);
                                mg_audit_log_stats(log, &st);
                        }
                        assert_int_equal(st.synced_seq, 50);
                } else {
                        usleep(20000);
                        mg_audit_log_stats(log, &st);
                        assert_int_equal(st.fsyncs, 0);
                        assert_int_equal(st.synced_seq, 0);
                }
                assert_int_equal(mg_audit_log_flush(log, 5000, errstr,
                                                    sizeof(errstr)),
                                 MG_OK);
                mg_audit_log_stats(log, &st);
                assert_int_equal(st.synced_seq, 50);
                assert_true(st.fsyncs >= 1);
                mg_audit_log_destroy(log);
                assert_int_equal(mg_audit_verify_file(tc.log, NULL, &rep,
                                                      errstr,
                                                      sizeof(errstr)),
                                 MG_OK);
                assert_int_equal(rep.lines, 50);
        }
}

static void test_conf(void **state) {
        struct mg_audit_conf ac;
        struct mg_conf *conf = mg_conf_new();
        char errstr[256];
        static const char yaml[] = "audit:\n  fsync: always\n  queue: 5k\n"
                                   "  fsync_interval: 20ms\n";

        memset(&ac, 0, sizeof(ac));
        assert_non_null(conf);
        assert_int_equal(mg_conf_add_section(conf, "Audit",
                                             mg_audit_conf_props,
                                             mg_audit_conf_prop_cnt, &ac,
                                             errstr, sizeof(errstr)),
                         MG_OK);
        assert_string_equal(ac.fsync, "interval");
        assert_string_equal(ac.when_full, "deny");
        assert_string_equal(ac.topic, "mg.decisions");
        assert_int_equal(mg_audit_conf_validate(&ac, errstr, sizeof(errstr)),
                         MG_OK);
        assert_int_equal(mg_conf_load_buf(conf, "t.yaml", yaml,
                                          strlen(yaml), errstr,
                                          sizeof(errstr)),
                         MG_OK);
        assert_string_equal(ac.fsync, "always");
        assert_int_equal(ac.queue, 5000);
        assert_int_equal(ac.fsync_interval_ms, 20);
        assert_int_equal(mg_conf_set(conf, "audit.when_full", "wait", errstr,
                                     sizeof(errstr)),
                         MG_OK); /* the table checks only the length */
        assert_int_equal(mg_audit_conf_validate(&ac, errstr, sizeof(errstr)),
                         MG_ERR_CONFIG);
        assert_has(errstr, "audit.when_full");
        assert_int_equal(mg_conf_set(conf, "audit.when_full", "block",
                                     errstr, sizeof(errstr)),
                         MG_OK);
        assert_int_equal(mg_conf_set(conf, "audit.fsync", "weekly",
                                     errstr, sizeof(errstr)),
                         MG_OK);
        assert_int_equal(mg_audit_conf_validate(&ac, errstr, sizeof(errstr)),
                         MG_ERR_CONFIG);
        assert_has(errstr, "audit.fsync");
        assert_int_equal(mg_conf_set(conf, "audit.unknown", "1", errstr,
                                     sizeof(errstr)),
                         MG_ERR_CONFIG);
        mg_conf_destroy(conf);
}

/*
 * The Kafka sink, against the embedded broker.
 */

static void test_kafka_sink(void **state) {
        enum { N = 40 };
        static const char *const topics[] = {"mg.decisions"};
        struct mg_broker_opts bopts = {"127.0.0.1", 0, topics, 1, 2};
        char ids[N][MG_AUDIT_ID_SIZE], prevs[N][65], errstr[512], kerr[256];
        struct mg_audit_signer *signer;
        struct mg_audit_log_opts opts;
        struct mg_avro_registry *reg;
        struct mg_audit_stats st;
        struct mg_broker *broker;
        struct mg_audit_log *log;
        struct t_conf tc;
        avro_schema_t schema;
        avro_value_iface_t *iface;
        avro_value_t val, f;
        avro_reader_t rd;
        rd_kafka_conf_t *kconf;
        rd_kafka_topic_partition_list_t *sub;
        rd_kafka_message_t *m;
        rd_kafka_t *rk;
        json_t *root;
        uint64_t fp, got_fp;
        size_t len, starts[N + 2], sz;
        const char *s;
        char *buf;
        int i, j, got = 0, matched = 0;
        time_t end;

        if (mg_broker_new(&bopts, &broker, errstr, sizeof(errstr))) {
                print_message("no embedded broker (%s): skipped\n", errstr);
                skip();
        }
        assert_int_equal(mg_avro_registry_new(&reg, errstr, sizeof(errstr)),
                         MG_OK);
        assert_int_equal(mg_avro_registry_schema(reg, "decision",
                                                 (struct avro_obj_t **)&schema,
                                                 &fp),
                         MG_OK);
        assert_int_equal(mg_audit_signer_new_file(t_ed_priv, &signer, errstr,
                                                  sizeof(errstr)),
                         MG_OK);
        memset(&opts, 0, sizeof(opts));
        opts.brokers = mg_broker_bootstrap(broker);
        opts.reg = reg;
        t_conf_init(&tc, "kafka.log", "interval", 1000, "block");
        assert_int_equal(mg_audit_log_new(&tc.conf, &opts, &log, errstr,
                                          sizeof(errstr)),
                         MG_OK);
        t_append_n(log, 0, N, signer);
        assert_int_equal(mg_audit_log_flush(log, 30000, errstr,
                                            sizeof(errstr)),
                         MG_OK);
        mg_audit_log_stats(log, &st);
        assert_int_equal(st.kafka_produced, N);
        assert_int_equal(st.kafka_delivered, N);
        assert_int_equal(st.kafka_failed, 0);
        assert_int_equal(st.kafka_in_flight, 0);
        mg_audit_log_destroy(log);
        mg_audit_signer_destroy(signer);

        /* what the file says: each decision's prev_hash */
        buf = t_read(tc.log, &len);
        assert_int_equal(t_lines(buf, len, starts, N + 2), N);
        for (i = 0; i < N; i++) {
                root = json_loadb(buf + starts[i], starts[i + 1] - starts[i],
                                  0, NULL);
                assert_non_null(root);
                snprintf(ids[i], sizeof(ids[i]), "%s",
                         json_string_value(
                                 json_object_get(root, "decision_id")));
                snprintf(prevs[i], sizeof(prevs[i]), "%s",
                         json_string_value(
                                 json_object_get(root, "prev_hash")));
                json_decref(root);
        }
        free(buf);

        /* a plain consumer reads them back */
        kconf = rd_kafka_conf_new();
        assert_int_equal(rd_kafka_conf_set(kconf, "bootstrap.servers",
                                           mg_broker_bootstrap(broker), kerr,
                                           sizeof(kerr)),
                         RD_KAFKA_CONF_OK);
        rd_kafka_conf_set(kconf, "group.id", "test-audit", kerr,
                          sizeof(kerr));
        rd_kafka_conf_set(kconf, "auto.offset.reset", "earliest", kerr,
                          sizeof(kerr));
        rd_kafka_conf_set(kconf, "enable.auto.commit", "false", kerr,
                          sizeof(kerr));
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, kconf, kerr, sizeof(kerr));
        assert_non_null(rk);
        rd_kafka_poll_set_consumer(rk);
        sub = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(sub, "mg.decisions",
                                          RD_KAFKA_PARTITION_UA);
        assert_int_equal(rd_kafka_subscribe(rk, sub), 0);
        rd_kafka_topic_partition_list_destroy(sub);
        iface = avro_generic_class_from_schema(schema);
        assert_int_equal(avro_generic_value_new(iface, &val), 0);
        end = time(NULL) + 30;
        while (got < N && time(NULL) < end) {
                if (!(m = rd_kafka_consumer_poll(rk, 200)))
                        continue;
                if (m->err) {
                        rd_kafka_message_destroy(m);
                        continue;
                }
                got++;
                assert_true(m->len > 10);
                assert_int_equal(((unsigned char *)m->payload)[0], 0xc3);
                assert_int_equal(((unsigned char *)m->payload)[1], 0x01);
                got_fp = 0;
                for (j = 7; j >= 0; j--)
                        got_fp = got_fp << 8 |
                                 ((unsigned char *)m->payload)[2 + j];
                assert_int_equal(got_fp, fp);
                assert_true(m->key_len > 18);
                assert_memory_equal(m->key, "spiffe://corp/svc-", 18);
                /* the body decodes, and carries the file's chain */
                rd = avro_reader_memory((const char *)m->payload + 10,
                                        (int64_t)m->len - 10);
                avro_value_reset(&val);
                assert_int_equal(avro_value_read(rd, &val), 0);
                avro_reader_free(rd);
                assert_int_equal(avro_value_get_by_name(&val, "decision_id",
                                                        &f, NULL),
                                 0);
                avro_value_get_string(&f, &s, &sz);
                for (i = 0; i < N; i++)
                        if (!strcmp(ids[i], s))
                                break;
                assert_true(i < N);
                assert_int_equal(avro_value_get_by_name(&val, "prev_hash", &f,
                                                        NULL),
                                 0);
                avro_value_get_string(&f, &s, &sz);
                assert_string_equal(s, prevs[i]);
                assert_int_equal(avro_value_get_by_name(&val, "identity", &f,
                                                        NULL),
                                 0);
                avro_value_get_string(&f, &s, &sz);
                assert_memory_equal(m->key, s, m->key_len);
                matched++;
                rd_kafka_message_destroy(m);
        }
        assert_int_equal(got, N);
        assert_int_equal(matched, N);
        avro_value_decref(&val);
        avro_value_iface_decref(iface);
        avro_schema_decref(schema);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        mg_avro_registry_destroy(reg);
        mg_broker_destroy(broker);
}

/*
 * Append throughput (MG_AUDIT_BENCH=1).
 */

struct t_bench {
        struct mg_audit_log *log; /* shared log */
        int n;                    /* appends by this thread */
        int wait;                 /* wait for each record to be durable */
        int base;                 /* first record index */
};

static void *t_bench_main(void *arg) {
        struct t_bench *b = arg;
        struct t_rec t;
        char errstr[256];
        uint64_t seq;
        int i;

        t_rec_make(&t, b->base, NULL);
        for (i = 0; i < b->n; i++) {
                if (mg_audit_log_append(b->log, &t.rec, &seq, errstr,
                                        sizeof(errstr)) ||
                    (b->wait && mg_audit_log_wait(b->log, seq, -1, errstr,
                                                  sizeof(errstr))))
                        abort();
        }
        return NULL;
}

static double t_now(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Records/s of threads x n appends (each waited for when wait), until the
 * last is written and synced. */
static double t_bench_run(const char *fsync, int threads, int n, int wait) {
        struct t_bench b[64];
        pthread_t th[64];
        struct mg_audit_log *log;
        struct t_conf tc;
        char errstr[256];
        double t0, t1;
        int i;

        t_conf_init(&tc, "bench.log", fsync, 65536, "block");
        tc.conf.fsync_interval_ms = 100;
        assert_int_equal(mg_audit_log_new(&tc.conf, NULL, &log, errstr,
                                          sizeof(errstr)),
                         MG_OK);
        t0 = t_now();
        for (i = 0; i < threads; i++) {
                b[i].log = log;
                b[i].n = n;
                b[i].wait = wait;
                b[i].base = i;
                assert_int_equal(pthread_create(&th[i], NULL, t_bench_main,
                                                &b[i]),
                                 0);
        }
        for (i = 0; i < threads; i++)
                pthread_join(th[i], NULL);
        assert_int_equal(mg_audit_log_flush(log, -1, errstr, sizeof(errstr)),
                         MG_OK);
        t1 = t_now();
        mg_audit_log_destroy(log);
        unlink(tc.log);
        return threads * (double)n / (t1 - t0);
}

static int t_cmp_double(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;

        return x < y ? -1 : x > y;
}

static double t_bench_median(const char *fsync, int threads, int n,
                             int wait) {
        double r[3];
        int i;

        for (i = 0; i < 3; i++)
                r[i] = t_bench_run(fsync, threads, n, wait);
        qsort(r, 3, sizeof(*r), t_cmp_double);
        return r[1];
}

static void test_bench_append(void **state) {
        if (!getenv("MG_AUDIT_BENCH"))
                skip();
        printf("append, 1 thread, fsync=interval: %.0f records/s\n",
               t_bench_median("interval", 1, 200000, 0));
        printf("append, 4 threads, fsync=interval: %.0f records/s\n",
               t_bench_median("interval", 4, 50000, 0));
        printf("append, 1 thread, fsync=always: %.0f records/s\n",
               t_bench_median("always", 1, 200000, 0));
        printf("append, 4 threads, fsync=always: %.0f records/s\n",
               t_bench_median("always", 4, 50000, 0));
        printf("append+wait, 1 thread, fsync=always: %.0f records/s\n",
               t_bench_median("always", 1, 2000, 1));
        printf("append+wait, 16 threads, fsync=always: %.0f records/s\n",
               t_bench_median("always", 16, 2000, 1));
        printf("append+wait, 16 threads, fsync=interval: %.0f records/s\n",
               t_bench_median("interval", 16, 20000, 1));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_decision_ids),
                cmocka_unit_test(test_sign_verify_ed25519),
                cmocka_unit_test(test_sign_verify_hmac),
                cmocka_unit_test(test_key_kinds_do_not_mix),
                cmocka_unit_test(test_bad_keys),
                cmocka_unit_test(test_canonical_example),
                cmocka_unit_test(test_sign_response_and_verify_decision),
                cmocka_unit_test(test_append_verify),
                cmocka_unit_test(test_line_format),
                cmocka_unit_test(test_record_validation),
                cmocka_unit_test(test_tamper_edit_byte),
                cmocka_unit_test(test_tamper_edit_rehash),
                cmocka_unit_test(test_tamper_delete),
                cmocka_unit_test(test_tamper_swap),
                cmocka_unit_test(test_tamper_insert),
                cmocka_unit_test(test_tamper_json),
                cmocka_unit_test(test_torn_last_line),
                cmocka_unit_test(test_long_line),
                cmocka_unit_test(test_reopen),
                cmocka_unit_test(test_queue_full_deny),
                cmocka_unit_test(test_queue_full_block),
                cmocka_unit_test(test_fsync_modes),
                cmocka_unit_test(test_conf),
                cmocka_unit_test(test_kafka_sink),
                cmocka_unit_test(test_bench_append),
        };

        return cmocka_run_group_tests(tests, t_setup, t_teardown);
}
