/*
 * mg_audit.c — decision ids, signatures, the hash-chained audit log and its
 * verification (see mg_audit.h for the formats, which are the contract).
 *
 * Design. An append does everything that does not depend on the order of
 * records on the caller's thread: it validates the record, writes its log
 * line with placeholders for prev_hash and hash, and (with Kafka) encodes
 * its Avro body with a placeholder prev_hash at a known offset. It then
 * takes a sequence number and joins a FIFO under the log's mutex. The
 * writer thread takes the whole FIFO at once (a batch), fills in the chain
 * (two SHA-256 per line: its hash, then its own digest, which is the next
 * line's prev_hash), writes the batch with one write() per megabyte,
 * fdatasync()s according to audit.fsync, wakes waiters (group commit), and
 * only then hands the records to librdkafka, so Kafka never carries a record
 * the file lacks. Nothing is done with the mutex held but list and counter
 * updates: librdkafka callbacks take the same mutex.
 *
 * Errors. A failed write() is retried with backoff (the queue then fills
 * and audit.when_full applies); a failed fdatasync() is not, since Linux may
 * already have dropped the dirty pages it could not write: the log fails,
 * appends and waits get MG_ERR_IO, and whatever was queued is counted lost.
 *
 * Workload: one append per decision from every server thread (tens of
 * thousands per second), lines of 0.5-1 KiB; the writer's cost per record is
 * two hashes and a memcpy, its cost per batch a write() and, with
 * audit.fsync=always, an fdatasync().
 *
 * Verification reads the file in bounded chunks (never more than
 * MG_AUDIT_LINE_MAX for one line), checks the chain bytewise before it
 * parses a line with jansson, and rebuilds the signed canonical form from
 * the parsed fields.
 */
#include "mg_audit.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <avro.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "mg_avro.h"
#include "mg_ingest.h"
#include "mg_log.h"

/*
 * Configuration.
 */

#define AU_OFF(field) offsetof(struct mg_audit_conf, field)

const struct mg_conf_prop mg_audit_conf_props[] = {
        {"audit.log", MG_CONF_STR, AU_OFF(log), "mintgate-audit.log", 1, 4095,
         0,
         "Path of the local audit log: one JSON line per decision, "
         "hash-chained, the evidence of record. Created with mode 0640; an "
         "existing log is continued."},
        {"audit.fsync", MG_CONF_STR, AU_OFF(fsync), "interval", 5, 8, 0,
         "When records reach the disk: always (a decision is answered only "
         "after an fdatasync covers its record; batches share one), interval "
         "(every audit.fsync_interval; a crash of the machine may lose that "
         "much), never (left to the OS)."},
        {"audit.fsync_interval", MG_CONF_MS, AU_OFF(fsync_interval_ms),
         "100ms", 1, 60000, 0,
         "Time between fdatasync() calls with audit.fsync=interval: the most "
         "a power loss can take from the log."},
        {"audit.queue", MG_CONF_INT, AU_OFF(queue), "16384", 1, 10000000, 0,
         "Records accepted but not yet written, at most (about 1 KiB each). "
         "Absorbs disk stalls; when full, audit.when_full applies."},
        {"audit.when_full", MG_CONF_STR, AU_OFF(when_full), "deny", 4, 5, 0,
         "What an append does when audit.queue records wait: block (the "
         "decision waits for room) or deny (the decision is answered deny / "
         "overloaded at once, so latency stays bounded)."},
        {"audit.topic", MG_CONF_STR, AU_OFF(topic), "mg.decisions", 1, 249, 0,
         "Kafka topic of the audit stream (Avro, single-object encoding, "
         "keyed by identity), when brokers are configured."},
        {"audit.key_file", MG_CONF_STR, AU_OFF(key_file), NULL, 0, 4095, 0,
         "Signing key: an Ed25519 private key in PEM or a file of at least "
         "32 random bytes (HMAC-SHA256). Empty: decisions are not signed."},
};
const size_t mg_audit_conf_prop_cnt =
        sizeof(mg_audit_conf_props) / sizeof(*mg_audit_conf_props);

enum au_fsync {
        AU_FSYNC_ALWAYS,   /* fdatasync after every batch */
        AU_FSYNC_INTERVAL, /* every fsync_interval_ms */
        AU_FSYNC_NEVER     /* only on flush and close */
};

static int au_fsync_parse(const char *s, enum au_fsync *modep) {
        if (!s)
                return -1;
        if (!strcmp(s, "always"))
                *modep = AU_FSYNC_ALWAYS;
        else if (!strcmp(s, "interval"))
                *modep = AU_FSYNC_INTERVAL;
        else if (!strcmp(s, "never"))
                *modep = AU_FSYNC_NEVER;
        else
                return -1;
        return 0;
}

mg_err_t mg_audit_conf_validate(const struct mg_audit_conf *conf,
                                char *errstr, size_t errstr_size) {
        enum au_fsync mode;

        if (!conf->log || !conf->log[0])
                return mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                  "audit.log: a path is required");
        if (au_fsync_parse(conf->fsync, &mode))
                return mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                  "audit.fsync: \"%s\" is not one of always, "
                                  "interval, never",
                                  conf->fsync ? conf->fsync : "");
        if (!conf->when_full || (strcmp(conf->when_full, "block") &&
                                 strcmp(conf->when_full, "deny")))
                return mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                  "audit.when_full: \"%s\" is not one of "
                                  "block, deny",
                                  conf->when_full ? conf->when_full : "");
        if (conf->fsync_interval_ms < 1)
                return mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                  "audit.fsync_interval: must be at least "
                                  "1ms");
        if (conf->queue < 1)
                return mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                  "audit.queue: must be at least 1");
        if (!conf->topic || !conf->topic[0])
                return mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                  "audit.topic: a topic name is required");
        return MG_OK;
}

/*
 * Small helpers: a bounded writer, JSON strings, numbers, hex, base64url,
 * SHA-256.
 */

/* Appends to buf and keeps counting past its end, so one pass with size 0
 * measures and a second one writes; len > size means it did not fit. */
struct au_w {
        char *buf;   /* destination, may be NULL when size is 0 */
        size_t size; /* bytes of buf */
        size_t len;  /* bytes produced so far (even those not stored) */
};

static void au_put(struct au_w *w, const void *p, size_t n) {
        if (w->len <= w->size && n <= w->size - w->len)
                memcpy(w->buf + w->len, p, n);
        w->len += n;
}

/* s must be a string literal (sizeof), never an expression. */
#define AU_LIT(w, s) au_put((w), "" s, sizeof(s) - 1)

/* Length of the well-formed UTF-8 sequence at s (n bytes available), or 0
 * when it is not one: overlong forms, surrogates and code points above
 * U+10FFFF are not (RFC 3629, as jansson checks its input). */
static size_t au_utf8_len(const unsigned char *s, size_t n) {
        unsigned c = s[0];
        size_t len, i;
        uint32_t cp;

        if (c < 0x80)
                return 1;
        if (c < 0xc2)
                return 0;
        if (c < 0xe0) {
                len = 2;
                cp = c & 0x1f;
        } else if (c < 0xf0) {
                len = 3;
                cp = c & 0x0f;
        } else if (c < 0xf5) {
                len = 4;
                cp = c & 0x07;
        } else {
                return 0;
        }
        if (n < len)
                return 0;
        for (i = 1; i < len; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (s[i] & 0x3f);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        return len;
}

static const char au_fffd[3] = {(char)0xef, (char)0xbf, (char)0xbd};

/* 1 when every byte of s is well-formed UTF-8. */
static int au_utf8_ok(const char *s) {
        const unsigned char *p = (const unsigned char *)s;
        size_t n = strlen(s), k;

        while (n) {
                if (!(k = au_utf8_len(p, n)))
                        return 0;
                p += k;
                n -= k;
        }
        return 1;
}

/* s with every byte that does not start a well-formed sequence replaced by
 * U+FFFD, into out (3 * strlen(s) + 1 bytes); returns out. */
static char *au_utf8_fix(const char *s, char *out) {
        const unsigned char *p = (const unsigned char *)s;
        size_t n = strlen(s), k, o = 0;

        while (n) {
                if ((k = au_utf8_len(p, n))) {
                        memcpy(out + o, p, k);
                        o += k;
                } else {
                        memcpy(out + o, au_fffd, 3);
                        o += 3;
                        k = 1;
                }
                p += k;
                n -= k;
        }
        out[o] = '\0';
        return out;
}

/* A JSON string: '"' and '\' escaped with a backslash, bytes below 0x20
 * and 0x7f as \u00xx, well-formed UTF-8 verbatim, other bytes as U+FFFD. */
static void au_put_str(struct au_w *w, const char *s, size_t n) {
        static const char hex[] = "0123456789abcdef";
        const unsigned char *p = (const unsigned char *)s;
        const unsigned char *end = p + n, *run;
        char esc[6];
        size_t k;

        AU_LIT(w, "\"");
        while (p < end) {
                run = p;
                while (p < end && *p >= 0x20 && *p < 0x7f && *p != '"' &&
                       *p != '\\')
                        p++;
                if (p > run)
                        au_put(w, run, (size_t)(p - run));
                if (p == end)
                        break;
                if (*p == '"' || *p == '\\') {
                        esc[0] = '\\';
                        esc[1] = (char)*p;
                        au_put(w, esc, 2);
                        p++;
                } else if (*p < 0x20 || *p == 0x7f) {
                        memcpy(esc, "\\u00", 4);
                        esc[4] = hex[*p >> 4];
                        esc[5] = hex[*p & 15];
                        au_put(w, esc, 6);
                        p++;
                } else if ((k = au_utf8_len(p, (size_t)(end - p)))) {
                        au_put(w, p, k);
                        p += k;
                } else {
                        au_put(w, au_fffd, 3);
                        p++;
                }
        }
        AU_LIT(w, "\"");
}

static void au_put_cstr(struct au_w *w, const char *s) {
        au_put_str(w, s, strlen(s));
}

static void au_put_int(struct au_w *w, int64_t v) {
        char num[24];
        int n = snprintf(num, sizeof(num), "%" PRId64, v);

        au_put(w, num, (size_t)n);
}

/* The shortest "%.{15,16,17}g" text of a finite d that reads back as d. */
static int au_fmt_double(char *num, size_t size, double d) {
        int n = 0, prec;

        for (prec = 15; prec <= 17; prec++) {
                n = snprintf(num, size, "%.*g", prec, d);
                if (strtod(num, NULL) == d)
                        break;
        }
        return n;
}

static void au_put_double(struct au_w *w, double d) {
        char num[40];
        int n = au_fmt_double(num, sizeof(num), d);

        au_put(w, num, (size_t)n);
}

static void au_hex(const unsigned char *p, size_t n, char *out) {
        static const char hex[] = "0123456789abcdef";
        size_t i;

        for (i = 0; i < n; i++) {
                out[2 * i] = hex[p[i] >> 4];
                out[2 * i + 1] = hex[p[i] & 15];
        }
}

static int au_is_hex64(const char *s) {
        int i;

        for (i = 0; i < 64; i++)
                if (!((s[i] >= '0' && s[i] <= '9') ||
                      (s[i] >= 'a' && s[i] <= 'f')))
                        return 0;
        return 1;
}

static const char au_b64url[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* base64url without padding of n bytes into out (4 * n / 3 + 3 bytes),
 * NUL-terminated; returns its length. */
static size_t au_b64url_enc(const unsigned char *p, size_t n, char *out) {
        size_t i, o = 0;
        uint32_t v;

        for (i = 0; i + 3 <= n; i += 3) {
                v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
                out[o++] = au_b64url[v >> 18];
                out[o++] = au_b64url[(v >> 12) & 63];
                out[o++] = au_b64url[(v >> 6) & 63];
                out[o++] = au_b64url[v & 63];
        }
        if (n - i == 1) {
                v = (uint32_t)p[i] << 16;
                out[o++] = au_b64url[v >> 18];
                out[o++] = au_b64url[(v >> 12) & 63];
        } else if (n - i == 2) {
                v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
                out[o++] = au_b64url[v >> 18];
                out[o++] = au_b64url[(v >> 12) & 63];
                out[o++] = au_b64url[(v >> 6) & 63];
        }
        out[o] = '\0';
        return o;
}

/* Decode exactly want bytes from the base64url text s (no padding, no
 * other characters, unused low bits zero, so every signature has one
 * text). 0 on success. */
static int au_b64url_dec(const char *s, unsigned char *out, size_t want) {
        size_t len = strlen(s), i, o = 0;
        uint32_t acc = 0;
        int bits = 0;
        const char *c;

        if (len != (want * 8 + 5) / 6)
                return -1;
        for (i = 0; i < len; i++) {
                if (!s[i] || !(c = strchr(au_b64url, s[i])))
                        return -1;
                acc = (acc << 6) | (uint32_t)(c - au_b64url);
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[o++] = (unsigned char)(acc >> bits);
                        acc &= (1u << bits) - 1;
                }
        }
        return o == want && acc == 0 ? 0 : -1;
}

/* SHA-256 of the concatenation of two pieces (b may be empty), with the
 * caller's context and fetched digest when it has them (the writer hashes
 * every line twice; an implicit fetch per call takes a lock). */
static int au_sha256_ctx(EVP_MD_CTX *ctx, const EVP_MD *md, const void *a,
                         size_t alen, const void *b, size_t blen,
                         unsigned char out[32]) {
        int ok = EVP_DigestInit_ex(ctx, md, NULL) == 1 &&
                 EVP_DigestUpdate(ctx, a, alen) == 1 &&
                 (!blen || EVP_DigestUpdate(ctx, b, blen) == 1) &&
                 EVP_DigestFinal_ex(ctx, out, NULL) == 1;

        return ok ? 0 : -1;
}

static int au_sha256(const void *a, size_t alen, const void *b, size_t blen,
                     unsigned char out[32]) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        int rc = ctx ? au_sha256_ctx(ctx, EVP_sha256(), a, alen, b, blen, out)
                     : -1;

        EVP_MD_CTX_free(ctx);
        return rc;
}

static const char au_genesis[65] =
        "0000000000000000000000000000000000000000000000000000000000000000";

/* The last 75 bytes of a line (without '\n'): ,"hash":" 64 hex "} */
#define AU_HASH_TAIL 75

/* Check the hash member of line (len bytes, no '\n'): present at the end,
 * and equal to the SHA-256 of the line without it. On success, digest gets
 * the SHA-256 of the whole line (the next line's prev_hash). 0, or -1 with
 * a sentence in problem. */
static int au_line_hash_check(const char *line, size_t len,
                              unsigned char digest[32], char *problem,
                              size_t problem_size) {
        unsigned char h[32];
        char hex[64];
        const char *tail;

        if (len < AU_HASH_TAIL + 1 || line[0] != '{' ||
            memcmp(line + len - AU_HASH_TAIL, ",\"hash\":\"", 9) ||
            memcmp(line + len - 2, "\"}", 2) ||
            !au_is_hex64(line + len - AU_HASH_TAIL + 9)) {
                snprintf(problem, problem_size,
                         "malformed: the line does not end with a \"hash\" "
                         "member of 64 lowercase hex digits");
                return -1;
        }
        tail = line + len - AU_HASH_TAIL;
        if (au_sha256(line, (size_t)(tail - line), "}", 1, h)) {
                snprintf(problem, problem_size, "SHA-256 failed (OpenSSL)");
                return -1;
        }
        au_hex(h, 32, hex);
        if (memcmp(hex, tail + 9, 64)) {
                snprintf(problem, problem_size,
                         "hash mismatch: record edited");
                return -1;
        }
        if (au_sha256(line, len, NULL, 0, digest)) {
                snprintf(problem, problem_size, "SHA-256 failed (OpenSSL)");
                return -1;
        }
        return 0;
}

/*
 * Decision ids.
 */

/* (ms << 12 | counter) of the last id: the next is at least one more, and
 * at least the current millisecond. A counter that runs over 4095 borrows
 * the next millisecond, so ids stay strictly increasing. */
static _Atomic uint64_t au_id_state;

mg_err_t mg_audit_decision_id(char out[MG_AUDIT_ID_SIZE]) {
        unsigned char b[16], rnd[8];
        struct timespec ts;
        uint64_t now, prev, next;
        char hex[32];

        out[0] = '\0';
        if (RAND_bytes(rnd, sizeof(rnd)) != 1)
                return MG_ERR_FATAL;
        clock_gettime(CLOCK_REALTIME, &ts);
        now = ((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000)
              << 12;
        prev = atomic_load(&au_id_state);
        do {
                next = prev + 1 > now ? prev + 1 : now;
        } while (!atomic_compare_exchange_weak(&au_id_state, &prev, next));
        /* 48-bit unix_ts_ms, ver 7, 12-bit counter, var 10, 62 random bits */
        b[0] = (unsigned char)(next >> 52);
        b[1] = (unsigned char)(next >> 44);
        b[2] = (unsigned char)(next >> 36);
        b[3] = (unsigned char)(next >> 28);
        b[4] = (unsigned char)(next >> 20);
        b[5] = (unsigned char)(next >> 12);
        b[6] = (unsigned char)(0x70 | ((next >> 8) & 0x0f));
        b[7] = (unsigned char)next;
        memcpy(b + 8, rnd, 8);
        b[8] = (unsigned char)(0x80 | (b[8] & 0x3f));
        au_hex(b, 16, hex);
        snprintf(out, MG_AUDIT_ID_SIZE, "%.8s-%.4s-%.4s-%.4s-%.12s", hex,
                 hex + 8, hex + 12, hex + 16, hex + 20);
        return MG_OK;
}

/*
 * Keys, signing and verifying.
 */

/* Largest key file read: a PEM key is a few hundred bytes; an HMAC key
 * longer than this is a mistake (a wrong file), not more security. */
#define AU_KEY_FILE_MAX 65536

#define AU_PFX_ED25519 "ed25519:"
#define AU_PFX_HMAC    "hmac-sha256:"

/* What signers and verifiers hold. */
struct au_key {
        enum mg_audit_key_kind kind; /* which of the two below is set */
        EVP_PKEY *pkey;              /* Ed25519 key (private or public) */
        unsigned char *secret;       /* HMAC key bytes, wiped on destroy */
        size_t secret_len;           /* bytes of secret, >= 32 */
};

struct mg_audit_signer {
        struct au_key key; /* a private key or an HMAC secret */
};

struct mg_audit_verifier {
        struct au_key key; /* a public (or private) key or an HMAC secret */
};

static void au_key_clear(struct au_key *key) {
        EVP_PKEY_free(key->pkey);
        if (key->secret) {
                OPENSSL_cleanse(key->secret, key->secret_len);
                free(key->secret);
        }
        memset(key, 0, sizeof(*key));
}

/* Refuses encrypted PEM: a key file for a service cannot prompt. */
static int au_no_pass_cb(char *buf, int size, int rwflag, void *u) {
        return -1;
}

static mg_err_t au_key_load(const char *path, int for_signing,
                            struct au_key *key, char *errstr,
                            size_t errstr_size) {
        unsigned char *data = NULL;
        size_t len = 0;
        struct stat st;
        BIO *bio = NULL;
        EVP_PKEY *pub = NULL;
        ssize_t n;
        mg_err_t err = MG_OK;
        int fd = -1, secret = 0;

        memset(key, 0, sizeof(*key));
        if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st)) {
                err = mg_err_set(MG_ERR_IO, errstr, errstr_size, "%s: %s",
                                 path, strerror(errno));
                goto out;
        }
        if (!(data = malloc(AU_KEY_FILE_MAX + 1))) {
                err = mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                 "%s: out of memory", path);
                goto out;
        }
        while (len <= AU_KEY_FILE_MAX &&
               (n = read(fd, data + len, AU_KEY_FILE_MAX + 1 - len)) != 0) {
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        err = mg_err_set(MG_ERR_IO, errstr, errstr_size,
                                         "%s: %s", path, strerror(errno));
                        goto out;
                }
                len += (size_t)n;
        }
        if (len > AU_KEY_FILE_MAX) {
                err = mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                 "%s: over %d bytes: not a key file", path,
                                 AU_KEY_FILE_MAX);
                goto out;
        }
        if (len >= 11 && !memcmp(data, "-----BEGIN ", 11)) {
                key->kind = MG_AUDIT_KEY_ED25519;
                if (!(bio = BIO_new_mem_buf(data, (int)len))) {
                        err = mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                         "%s: out of memory", path);
                        goto out;
                }
                if (!for_signing)
                        key->pkey = PEM_read_bio_PUBKEY(bio, NULL,
                                                        au_no_pass_cb, NULL);
                if (!key->pkey) {
                        (void)BIO_reset(bio);
                        key->pkey = PEM_read_bio_PrivateKey(
                                bio, NULL, au_no_pass_cb, NULL);
                        secret = 1;
                }
                if (!key->pkey && for_signing) {
                        (void)BIO_reset(bio);
                        pub = PEM_read_bio_PUBKEY(bio, NULL, au_no_pass_cb,
                                                  NULL);
                }
                ERR_clear_error();
                if (!key->pkey) {
                        err = mg_err_set(
                                MG_ERR_CONFIG, errstr, errstr_size,
                                "%s: %s", path,
                                pub ? "a public key cannot sign: the private "
                                      "key is needed"
                                    : "not an unencrypted PEM private or "
                                      "public key");
                        goto out;
                }
                if (!EVP_PKEY_is_a(key->pkey, "ED25519")) {
                        err = mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                         "%s: a %s key, not Ed25519", path,
                                         EVP_PKEY_get0_type_name(key->pkey)
                                                 ? EVP_PKEY_get0_type_name(
                                                           key->pkey)
                                                 : "unknown");
                        goto out;
                }
        } else {
                key->kind = MG_AUDIT_KEY_HMAC_SHA256;
                secret = 1;
                if (len < MG_AUDIT_HMAC_KEY_MIN) {
                        err = mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                         "%s: an HMAC key of %zu bytes; at "
                                         "least %d are needed",
                                         path, len, MG_AUDIT_HMAC_KEY_MIN);
                        goto out;
                }
                if (!(key->secret = malloc(len))) {
                        err = mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                         "%s: out of memory", path);
                        goto out;
                }
                memcpy(key->secret, data, len);
                key->secret_len = len;
        }
        /* A public key is no secret; a private key or HMAC key is. */
        if (secret && (st.st_mode & (S_IRGRP | S_IROTH)))
                mg_log_warn("audit",
                            "%s holds a secret key and is readable by group "
                            "or others (mode %03o)",
                            path, (unsigned)(st.st_mode & 0777));
out:
        if (err)
                au_key_clear(key);
        EVP_PKEY_free(pub);
        BIO_free(bio);
        if (data) {
                OPENSSL_cleanse(data, AU_KEY_FILE_MAX + 1);
                free(data);
        }
        if (fd >= 0)
                close(fd);
        return err;
}

mg_err_t mg_audit_signer_new_file(const char *path,
                                  struct mg_audit_signer **signerp,
                                  char *errstr, size_t errstr_size) {
        struct mg_audit_signer *signer;
        mg_err_t err;

        *signerp = NULL;
        if (!(signer = calloc(1, sizeof(*signer))))
                return mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                  "out of memory");
        if ((err = au_key_load(path, 1, &signer->key, errstr, errstr_size))) {
                free(signer);
                return err;
        }
        *signerp = signer;
        return MG_OK;
}

void mg_audit_signer_destroy(struct mg_audit_signer *signer) {
        if (!signer)
                return;
        au_key_clear(&signer->key);
        free(signer);
}

enum mg_audit_key_kind
mg_audit_signer_kind(const struct mg_audit_signer *signer) {
        return signer->key.kind;
}

mg_err_t mg_audit_verifier_new_file(const char *path,
                                    struct mg_audit_verifier **verifierp,
                                    char *errstr, size_t errstr_size) {
        struct mg_audit_verifier *verifier;
        mg_err_t err;

        *verifierp = NULL;
        if (!(verifier = calloc(1, sizeof(*verifier))))
                return mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                  "out of memory");
        if ((err = au_key_load(path, 0, &verifier->key, errstr,
                               errstr_size))) {
                free(verifier);
                return err;
        }
        *verifierp = verifier;
        return MG_OK;
}

void mg_audit_verifier_destroy(struct mg_audit_verifier *verifier) {
        if (!verifier)
                return;
        au_key_clear(&verifier->key);
        free(verifier);
}

enum mg_audit_key_kind
mg_audit_verifier_kind(const struct mg_audit_verifier *verifier) {
        return verifier->key.kind;
}

/* The raw signature or tag of msg: 64 bytes (Ed25519) or 32 (HMAC). */
static int au_raw_sign(const struct au_key *key, const void *msg, size_t len,
                       unsigned char *sig, size_t *siglenp) {
        EVP_MD_CTX *ctx;
        unsigned int hlen = 0;
        int ok;

        if (!msg)
                msg = "";
        if (key->kind == MG_AUDIT_KEY_HMAC_SHA256) {
                ok = HMAC(EVP_sha256(), key->secret, (int)key->secret_len,
                          msg, len, sig, &hlen) != NULL && hlen == 32;
                *siglenp = hlen;
                return ok ? 0 : -1;
        }
        *siglenp = 64;
        ctx = EVP_MD_CTX_new();
        ok = ctx &&
             EVP_DigestSignInit(ctx, NULL, NULL, NULL, key->pkey) == 1 &&
             EVP_DigestSign(ctx, sig, siglenp, msg, len) == 1 &&
             *siglenp == 64;
        EVP_MD_CTX_free(ctx);
        return ok ? 0 : -1;
}

mg_err_t mg_audit_sign(const struct mg_audit_signer *signer, const void *msg,
                       size_t len, char *out, size_t size) {
        unsigned char sig[64];
        size_t siglen, need;
        const char *pfx;

        pfx = signer->key.kind == MG_AUDIT_KEY_ED25519 ? AU_PFX_ED25519
                                                        : AU_PFX_HMAC;
        need = strlen(pfx) +
               (signer->key.kind == MG_AUDIT_KEY_ED25519 ? 86 : 43) + 1;
        if (size < need) {
                if (size)
                        out[0] = '\0';
                return MG_ERR_TOOBIG;
        }
        if (au_raw_sign(&signer->key, msg, len, sig, &siglen)) {
                ERR_clear_error();
                out[0] = '\0';
                return MG_ERR_FATAL;
        }
        memcpy(out, pfx, strlen(pfx));
        au_b64url_enc(sig, siglen, out + strlen(pfx));
        OPENSSL_cleanse(sig, sizeof(sig));
        return MG_OK;
}

mg_err_t mg_audit_verify(const struct mg_audit_verifier *verifier,
                         const void *msg, size_t len, const char *sig) {
        const struct au_key *key = &verifier->key;
        unsigned char raw[64], tag[32];
        size_t taglen;
        EVP_MD_CTX *ctx;
        int ok;

        if (!sig)
                return MG_ERR_INVALID;
        if (!msg)
                msg = "";
        if (key->kind == MG_AUDIT_KEY_HMAC_SHA256) {
                if (strncmp(sig, AU_PFX_HMAC, strlen(AU_PFX_HMAC)) ||
                    au_b64url_dec(sig + strlen(AU_PFX_HMAC), raw, 32))
                        return MG_ERR_INVALID;
                if (au_raw_sign(key, msg, len, tag, &taglen)) {
                        ERR_clear_error();
                        return MG_ERR_INVALID;
                }
                ok = CRYPTO_memcmp(raw, tag, 32) == 0;
                OPENSSL_cleanse(tag, sizeof(tag));
                return ok ? MG_OK : MG_ERR_INVALID;
        }
        if (strncmp(sig, AU_PFX_ED25519, strlen(AU_PFX_ED25519)) ||
            au_b64url_dec(sig + strlen(AU_PFX_ED25519), raw, 64))
                return MG_ERR_INVALID;
        ctx = EVP_MD_CTX_new();
        ok = ctx &&
             EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key->pkey) == 1 &&
             EVP_DigestVerify(ctx, raw, 64, msg, len) == 1;
        EVP_MD_CTX_free(ctx);
        ERR_clear_error();
        return ok ? MG_OK : MG_ERR_INVALID;
}

/*
 * The canonical form of a decision response.
 */

/* Whether the canonical form carries "identity". */
enum au_ident {
        AU_IDENT_AUTO, /* when obj has it as a string (a response) */
        AU_IDENT_OMIT, /* never */
        AU_IDENT_ADD   /* always: obj must have it (a log line) */
};

static int au_bad(char *problem, size_t size, const char *key,
                  const char *what) {
        snprintf(problem, size, "member \"%s\" %s", key, what);
        return -1;
}

/* Write "key": then obj's string member key. */
static int au_canon_str(struct au_w *w, json_t *obj, const char *key,
                        const char *lead, char *problem, size_t psize) {
        json_t *v = json_object_get(obj, key);

        if (!v)
                return au_bad(problem, psize, key, "is missing");
        if (!json_is_string(v))
                return au_bad(problem, psize, key, "is not a string");
        au_put(w, lead, strlen(lead));
        au_put_str(w, json_string_value(v), json_string_length(v));
        return 0;
}

/* The canonical form of obj (a response, or a log line read with idkey
 * "request_id") into w; -1 with a sentence in problem when a signed member
 * is missing or of the wrong type. */
static int au_canon(struct au_w *w, json_t *obj, const char *idkey,
                    enum au_ident ident, char *problem, size_t psize) {
        char num[352];
        json_t *v, *item;
        size_t i;
        double d;
        int n;

        if (au_canon_str(w, obj, "decision_id", "{\"decision_id\":", problem,
                         psize))
                return -1;
        AU_LIT(w, ",\"id\":");
        v = json_object_get(obj, idkey);
        if (!v || json_is_null(v)) {
                AU_LIT(w, "null");
        } else if (json_is_string(v)) {
                au_put_str(w, json_string_value(v), json_string_length(v));
        } else if (json_is_integer(v)) {
                /* A numeric id is signed as its text: the audit record
                 * keeps request_id as a string. */
                n = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
                             json_integer_value(v));
                au_put_str(w, num, (size_t)n);
        } else if (json_is_real(v)) {
                n = au_fmt_double(num, sizeof(num), json_real_value(v));
                au_put_str(w, num, (size_t)n);
        } else {
                return au_bad(problem, psize, idkey,
                              "is not a string, a number or null");
        }
        v = json_object_get(obj, "identity");
        if (ident == AU_IDENT_ADD ||
            (ident == AU_IDENT_AUTO && json_is_string(v)))
                if (au_canon_str(w, obj, "identity", ",\"identity\":",
                                 problem, psize))
                        return -1;
        if (au_canon_str(w, obj, "decision", ",\"decision\":", problem,
                         psize))
                return -1;
        v = json_object_get(obj, "scopes");
        if (!v)
                return au_bad(problem, psize, "scopes", "is missing");
        if (!json_is_array(v))
                return au_bad(problem, psize, "scopes", "is not an array");
        AU_LIT(w, ",\"scopes\":[");
        json_array_foreach(v, i, item) {
                if (!json_is_string(item))
                        return au_bad(problem, psize, "scopes",
                                      "holds something other than strings");
                if (i)
                        AU_LIT(w, ",");
                au_put_str(w, json_string_value(item),
                           json_string_length(item));
        }
        AU_LIT(w, "]");
        v = json_object_get(obj, "ttl");
        if (!v)
                return au_bad(problem, psize, "ttl", "is missing");
        if (!json_is_integer(v))
                return au_bad(problem, psize, "ttl", "is not an integer");
        AU_LIT(w, ",\"ttl\":");
        au_put_int(w, json_integer_value(v));
        v = json_object_get(obj, "risk");
        if (!v)
                return au_bad(problem, psize, "risk", "is missing");
        if (!json_is_number(v))
                return au_bad(problem, psize, "risk", "is not a number");
        d = json_number_value(v);
        if (!isfinite(d))
                return au_bad(problem, psize, "risk", "is not finite");
        /* -0 and 0 sign alike: "-0" in a log line reads back as integer 0 */
        n = snprintf(num, sizeof(num), "%.2f", d == 0 ? 0.0 : d);
        AU_LIT(w, ",\"risk\":");
        au_put(w, num, (size_t)n);
        if (au_canon_str(w, obj, "level", ",\"level\":", problem, psize))
                return -1;
        v = json_object_get(obj, "policy");
        if (v && json_is_null(v)) {
                /* no matching path: the record says "" */
                AU_LIT(w, ",\"policy\":\"\"");
        } else if (au_canon_str(w, obj, "policy", ",\"policy\":", problem,
                                psize)) {
                return -1;
        }
        v = json_object_get(obj, "degraded");
        if (!v)
                return au_bad(problem, psize, "degraded", "is missing");
        if (!json_is_boolean(v))
                return au_bad(problem, psize, "degraded", "is not a boolean");
        if (json_is_true(v))
                AU_LIT(w, ",\"degraded\":true}");
        else
                AU_LIT(w, ",\"degraded\":false}");
        return 0;
}

/* Parse one JSON object (duplicate keys refused). NULL with a sentence. */
static json_t *au_parse_object(const char *json, size_t len, char *problem,
                               size_t psize) {
        json_error_t jerr;
        json_t *root;

        root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!root) {
                snprintf(problem, psize, "not JSON: %s (column %d)",
                         jerr.text, jerr.column);
                return NULL;
        }
        if (!json_is_object(root)) {
                json_decref(root);
                snprintf(problem, psize, "not a JSON object");
                return NULL;
        }
        return root;
}

mg_err_t mg_audit_canonical_response(const char *json, size_t len, char *buf,
                                     size_t size, size_t *lenp) {
        struct au_w w = {buf, size, 0};
        char problem[256];
        json_t *root;
        mg_err_t err = MG_OK;

        *lenp = 0;
        if (!(root = au_parse_object(json, len, problem, sizeof(problem))))
                return MG_ERR_INVALID;
        if (au_canon(&w, root, "id", AU_IDENT_AUTO, problem,
                     sizeof(problem))) {
                err = MG_ERR_INVALID;
                goto out;
        }
        *lenp = w.len;
        if (w.len > size)
                err = MG_ERR_TOOBIG;
out:
        json_decref(root);
        return err;
}

mg_err_t mg_audit_sign_response(const struct mg_audit_signer *signer,
                                const char *json, size_t len, char *out,
                                size_t size) {
        size_t clen;
        char *canon;
        mg_err_t err;

        if (size)
                out[0] = '\0';
        if (!(canon = malloc(MG_AUDIT_CANONICAL_MAX)))
                return MG_ERR_NOMEM;
        err = mg_audit_canonical_response(json, len, canon,
                                          MG_AUDIT_CANONICAL_MAX, &clen);
        if (!err)
                err = mg_audit_sign(signer, canon, clen, out, size);
        free(canon);
        return err;
}

/* Verify sig over the canonical form of obj, rebuilt with idkey as the id;
 * ident as for au_canon(). 0 when it verifies; -1 with a sentence. */
static int au_canon_verify(const struct mg_audit_verifier *verifier,
                           json_t *obj, const char *idkey,
                           enum au_ident ident, const char *sig,
                           char *problem, size_t psize) {
        struct au_w w = {NULL, 0, 0};
        int rc = -1;

        if (au_canon(&w, obj, idkey, ident, problem, psize))
                return -1;
        if (!(w.buf = malloc(w.len ? w.len : 1))) {
                snprintf(problem, psize, "out of memory");
                return -1;
        }
        w.size = w.len;
        w.len = 0;
        if (au_canon(&w, obj, idkey, ident, problem, psize))
                goto out;
        rc = mg_audit_verify(verifier, w.buf, w.len, sig) == MG_OK ? 0 : -1;
        if (rc)
                snprintf(problem, psize, "signature does not verify");
out:
        free(w.buf);
        return rc;
}

/* Why sig cannot be one of verifier's, or NULL when it might be. */
static const char *au_sig_kind_problem(const struct mg_audit_verifier *vf,
                                       const char *sig) {
        int ed = !strncmp(sig, AU_PFX_ED25519, strlen(AU_PFX_ED25519));
        int hm = !strncmp(sig, AU_PFX_HMAC, strlen(AU_PFX_HMAC));

        if (!sig[0])
                return "no signature: the record is unsigned";
        if (!ed && !hm)
                return "malformed signature: neither ed25519: nor "
                       "hmac-sha256:";
        if (ed && vf->key.kind != MG_AUDIT_KEY_ED25519)
                return "an ed25519 signature, but the key is an HMAC key";
        if (hm && vf->key.kind != MG_AUDIT_KEY_HMAC_SHA256)
                return "an hmac-sha256 signature, but the key is an Ed25519 "
                       "key";
        return NULL;
}

mg_err_t mg_audit_verify_decision(const struct mg_audit_verifier *verifier,
                                  const char *response_json_line,
                                  char *errstr, size_t errstr_size) {
        char problem[256];
        const char *sig, *why;
        json_t *root, *v;
        mg_err_t err = MG_OK;

        if (!(root = au_parse_object(response_json_line,
                                     strlen(response_json_line), problem,
                                     sizeof(problem))))
                return mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                  "response is %s", problem);
        v = json_object_get(root, "signature");
        if (!v || json_is_null(v)) {
                err = mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                 "no signature in the response");
                goto out;
        }
        if (!json_is_string(v)) {
                err = mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                 "member \"signature\" is not a string");
                goto out;
        }
        sig = json_string_value(v);
        if ((why = au_sig_kind_problem(verifier, sig))) {
                err = mg_err_set(MG_ERR_INVALID, errstr, errstr_size, "%s",
                                 why);
                goto out;
        }
        if (au_canon_verify(verifier, root, "id", AU_IDENT_AUTO, sig, problem,
                            sizeof(problem)))
                err = mg_err_set(MG_ERR_INVALID, errstr, errstr_size, "%s",
                                 problem);
out:
        json_decref(root);
        return err;
}

/*
 * Records: validation, the log line, the Avro message.
 */

static const char *const au_outcomes[] = {"allow", "narrow", "step_up",
                                          "deny"};
#define AU_OUTCOME_CNT 4

/* Index of rec->decision in au_outcomes, or -1 with a sentence. */
static int au_rec_check(const struct mg_audit_record *rec, char *errstr,
                        size_t errstr_size) {
        const char *const req[][2] = {
                {"decision_id", rec->decision_id},
                {"identity", rec->identity},
                {"client_id", rec->client_id},
                {"resource", rec->resource},
                {"grant_type", rec->grant_type},
                {"decision", rec->decision},
                {"level", rec->level},
        };
        size_t i;
        int k, outcome = -1;

        for (i = 0; i < sizeof(req) / sizeof(*req); i++)
                if (!req[i][1] || !req[i][1][0]) {
                        mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                   "audit record: %s is required", req[i][0]);
                        return -1;
                }
        for (k = 0; k < AU_OUTCOME_CNT; k++)
                if (!strcmp(rec->decision, au_outcomes[k]))
                        outcome = k;
        if (outcome < 0) {
                mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                           "audit record: unknown decision \"%.64s\"",
                           rec->decision);
                return -1;
        }
        if (rec->ts_ms < 0 || rec->requested_ttl < 0 ||
            rec->requested_ttl > INT32_MAX || rec->ttl < 0 ||
            rec->ttl > INT32_MAX) {
                mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                           "audit record: %s out of range",
                           rec->ts_ms < 0 ? "ts" : rec->ttl < 0 ||
                                                           rec->ttl > INT32_MAX
                                                   ? "ttl"
                                                   : "requested_ttl");
                return -1;
        }
        if (!isfinite(rec->risk)) {
                mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                           "audit record: risk is not finite");
                return -1;
        }
        if (rec->requested_scope_cnt < 0 || rec->scope_cnt < 0 ||
            rec->reason_cnt < 0 ||
            (rec->requested_scope_cnt && !rec->requested_scopes) ||
            (rec->scope_cnt && !rec->scopes) ||
            (rec->reason_cnt && !rec->reasons)) {
                mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                           "audit record: a count without its array");
                return -1;
        }
        for (k = 0; k < rec->requested_scope_cnt; k++)
                if (!rec->requested_scopes[k]) {
                        mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                   "audit record: requested_scopes[%d] is "
                                   "NULL", k);
                        return -1;
                }
        for (k = 0; k < rec->scope_cnt; k++)
                if (!rec->scopes[k]) {
                        mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                   "audit record: scopes[%d] is NULL", k);
                        return -1;
                }
        for (k = 0; k < rec->reason_cnt; k++)
                if (!rec->reasons[k].signal || !rec->reasons[k].detail ||
                    !isfinite(rec->reasons[k].points)) {
                        mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                   "audit record: reasons[%d] lacks a signal "
                                   "or detail, or its points are not finite",
                                   k);
                        return -1;
                }
        return outcome;
}

/* -0 is written "-0", which reads back as the integer 0: store 0. */
static double au_unsigned_zero(double d) {
        return d == 0 ? 0.0 : d;
}

static void au_put_scopes(struct au_w *w, const char *const *scopes,
                          int cnt) {
        int i;

        AU_LIT(w, "[");
        for (i = 0; i < cnt; i++) {
                if (i)
                        AU_LIT(w, ",");
                au_put_cstr(w, scopes[i]);
        }
        AU_LIT(w, "]");
}

/* The log line of rec with placeholders for prev_hash and hash, '\n'
 * included (the last AU_LINE_TAIL bytes are fixed, see au_line_fill()). */
static void au_line_write(struct au_w *w, const struct mg_audit_record *rec) {
        int i;

        AU_LIT(w, "{\"decision_id\":");
        au_put_cstr(w, rec->decision_id);
        AU_LIT(w, ",\"ts\":");
        au_put_int(w, rec->ts_ms);
        AU_LIT(w, ",\"request_id\":");
        if (rec->request_id)
                au_put_cstr(w, rec->request_id);
        else
                AU_LIT(w, "null");
        AU_LIT(w, ",\"identity\":");
        au_put_cstr(w, rec->identity);
        AU_LIT(w, ",\"client_id\":");
        au_put_cstr(w, rec->client_id);
        AU_LIT(w, ",\"resource\":");
        au_put_cstr(w, rec->resource);
        AU_LIT(w, ",\"grant_type\":");
        au_put_cstr(w, rec->grant_type);
        AU_LIT(w, ",\"requested_scopes\":");
        au_put_scopes(w, rec->requested_scopes, rec->requested_scope_cnt);
        AU_LIT(w, ",\"requested_ttl\":");
        au_put_int(w, rec->requested_ttl);
        AU_LIT(w, ",\"decision\":");
        au_put_cstr(w, rec->decision);
        AU_LIT(w, ",\"scopes\":");
        au_put_scopes(w, rec->scopes, rec->scope_cnt);
        AU_LIT(w, ",\"ttl\":");
        au_put_int(w, rec->ttl);
        AU_LIT(w, ",\"risk\":");
        au_put_double(w, au_unsigned_zero(rec->risk));
        AU_LIT(w, ",\"level\":");
        au_put_cstr(w, rec->level);
        AU_LIT(w, ",\"reasons\":[");
        for (i = 0; i < rec->reason_cnt; i++) {
                if (i)
                        AU_LIT(w, ",");
                AU_LIT(w, "{\"signal\":");
                au_put_cstr(w, rec->reasons[i].signal);
                AU_LIT(w, ",\"points\":");
                au_put_double(w, au_unsigned_zero(rec->reasons[i].points));
                AU_LIT(w, ",\"detail\":");
                au_put_cstr(w, rec->reasons[i].detail);
                AU_LIT(w, "}");
        }
        AU_LIT(w, "],\"policy\":");
        au_put_cstr(w, rec->policy ? rec->policy : "");
        if (rec->degraded)
                AU_LIT(w, ",\"degraded\":true");
        else
                AU_LIT(w, ",\"degraded\":false");
        AU_LIT(w, ",\"signature\":");
        au_put_cstr(w, rec->signature ? rec->signature : "");
        AU_LIT(w, ",\"prev_hash\":\"");
        au_put(w, au_genesis, 64);
        AU_LIT(w, "\",\"hash\":\"");
        au_put(w, au_genesis, 64);
        AU_LIT(w, "\"}\n");
}

/* From the end of a line ('\n' included): where prev_hash's and hash's
 * hex digits start. */
#define AU_LINE_PREV_BACK 141
#define AU_LINE_HASH_BACK 67

/* Fields of the Avro record, in the order of au_field_names. */
enum au_field {
        AU_F_DECISION_ID,
        AU_F_TS,
        AU_F_REQUEST_ID,
        AU_F_IDENTITY,
        AU_F_CLIENT_ID,
        AU_F_RESOURCE,
        AU_F_GRANT_TYPE,
        AU_F_REQUESTED_SCOPES,
        AU_F_REQUESTED_TTL,
        AU_F_DECISION,
        AU_F_SCOPES,
        AU_F_TTL,
        AU_F_RISK,
        AU_F_LEVEL,
        AU_F_REASONS,
        AU_F_POLICY,
        AU_F_DEGRADED,
        AU_F_PREV_HASH,
        AU_F_SIGNATURE,
        AU_F__CNT
};

static const char *const au_field_names[AU_F__CNT] = {
        "decision_id", "ts",       "request_id",       "identity",
        "client_id",   "resource", "grant_type",       "requested_scopes",
        "requested_ttl", "decision", "scopes",         "ttl",
        "risk",        "level",    "reasons",          "policy",
        "degraded",    "prev_hash", "signature"};

/* Single-object framing: C3 01, then the fingerprint little-endian. */
#define AU_SO_HEADER 10

/* The Avro side of a log with Kafka: one generic value reused under a
 * mutex (Avro C values are not thread-safe), so appends encode in turn. */
struct au_enc {
        pthread_mutex_t lock;       /* one append encodes at a time */
        avro_schema_t schema;       /* the "decision" writer schema */
        avro_value_iface_t *iface;  /* its generic class */
        avro_value_t rec;           /* the value every append refills */
        int have_rec;               /* rec was created */
        avro_writer_t writer;       /* memory writer, pointed at entries */
        uint64_t fp;                /* CRC-64-AVRO fingerprint */
        int idx[AU_F__CNT];         /* field index by enum au_field */
        int null_branch;            /* request_id's null branch */
        int str_branch;             /* request_id's string branch */
        int outcome_idx[AU_OUTCOME_CNT]; /* enum index of each outcome */
        char *fix;                  /* scratch for repaired UTF-8 */
        size_t fix_size;            /* bytes of fix */
};

static void au_enc_destroy(struct au_enc *enc) {
        if (!enc)
                return;
        if (enc->writer)
                avro_writer_free(enc->writer);
        if (enc->have_rec)
                avro_value_decref(&enc->rec);
        if (enc->iface)
                avro_value_iface_decref(enc->iface);
        if (enc->schema)
                avro_schema_decref(enc->schema);
        pthread_mutex_destroy(&enc->lock);
        free(enc->fix);
        free(enc);
}

static mg_err_t au_enc_new(const struct mg_avro_registry *reg,
                           struct au_enc **encp, char *errstr,
                           size_t errstr_size) {
        struct mg_avro_registry *own = NULL;
        avro_schema_t f;
        struct au_enc *enc;
        mg_err_t err = MG_OK;
        int i, n;

        *encp = NULL;
        if (!(enc = calloc(1, sizeof(*enc))))
                return mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                  "out of memory");
        pthread_mutex_init(&enc->lock, NULL);
        if (!reg) {
                if ((err = mg_avro_registry_new(&own, errstr, errstr_size)))
                        goto out;
                reg = own;
        }
        if ((err = mg_avro_registry_schema(reg, "decision",
                                           (struct avro_obj_t **)&enc->schema,
                                           &enc->fp))) {
                err = mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                 "no Avro schema registered as \"decision\"");
                goto out;
        }
        /* The writer patches prev_hash into encoded bytes: it must be the
         * last string but one, followed only by the signature string. */
        n = (int)avro_schema_record_size(enc->schema);
        for (i = 0; i < AU_F__CNT; i++)
                enc->idx[i] = avro_schema_record_field_get_index(
                        enc->schema, au_field_names[i]);
        for (i = 0; i < AU_F__CNT; i++)
                if (enc->idx[i] < 0)
                        break;
        if (i < AU_F__CNT || enc->idx[AU_F_PREV_HASH] != n - 2 ||
            enc->idx[AU_F_SIGNATURE] != n - 1 ||
            !is_avro_string(avro_schema_record_field_get_by_index(
                    enc->schema, n - 2)) ||
            !is_avro_string(avro_schema_record_field_get_by_index(
                    enc->schema, n - 1))) {
                err = mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                 "the \"decision\" schema lacks field %s, or "
                                 "does not end with the strings prev_hash "
                                 "and signature",
                                 i < AU_F__CNT ? au_field_names[i] : "-");
                goto out;
        }
        f = avro_schema_record_field_get(enc->schema, "request_id");
        if (!is_avro_union(f) ||
            !avro_schema_union_branch_by_name(f, &enc->null_branch, "null") ||
            !avro_schema_union_branch_by_name(f, &enc->str_branch,
                                              "string")) {
                err = mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                 "decision schema: request_id is not a union "
                                 "of null and string");
                goto out;
        }
        f = avro_schema_record_field_get(enc->schema, "decision");
        for (i = 0; i < AU_OUTCOME_CNT; i++)
                if (!is_avro_enum(f) ||
                    (enc->outcome_idx[i] = avro_schema_enum_get_by_name(
                             f, au_outcomes[i])) < 0) {
                        err = mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                         "decision schema: decision lacks "
                                         "the symbol %s",
                                         au_outcomes[i]);
                        goto out;
                }
        if (!(enc->iface = avro_generic_class_from_schema(enc->schema)) ||
            avro_generic_value_new(enc->iface, &enc->rec)) {
                err = mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                 "Avro: %s", avro_strerror());
                goto out;
        }
        enc->have_rec = 1;
        if (!(enc->writer = avro_writer_memory(NULL, 0))) {
                err = mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                 "out of memory");
                goto out;
        }
out:
        mg_avro_registry_destroy(own);
        if (err)
                au_enc_destroy(enc);
        else
                *encp = enc;
        return err;
}

/* s, or its UTF-8 repair in the encoder's scratch (one at a time). */
static const char *au_enc_clean(struct au_enc *enc, const char *s) {
        size_t need;
        char *p;

        if (au_utf8_ok(s))
                return s;
        need = 3 * strlen(s) + 1;
        if (need > enc->fix_size) {
                if (!(p = realloc(enc->fix, need)))
                        return NULL;
                enc->fix = p;
                enc->fix_size = need;
        }
        return au_utf8_fix(s, enc->fix);
}

static int au_enc_set_str(struct au_enc *enc, avro_value_t *v, const char *s) {
        const char *c = au_enc_clean(enc, s);

        return c ? avro_value_set_string(v, c) : ENOMEM;
}

static int au_enc_set_scopes(struct au_enc *enc, avro_value_t *arr,
                             const char *const *scopes, int cnt) {
        avro_value_t item;
        int i, rc;

        for (i = 0; i < cnt; i++)
                if ((rc = avro_value_append(arr, &item, NULL)) ||
                    (rc = au_enc_set_str(enc, &item, scopes[i])))
                        return rc;
        return 0;
}

/* Fill the encoder's value from rec, prev_hash the genesis placeholder.
 * The encoder's lock is held. 0 or an errno-style code. */
static int au_enc_fill(struct au_enc *enc, const struct mg_audit_record *rec,
                       int outcome) {
        avro_value_t f, b, r;
        int rc, i;

#define AU_FIELD(id) avro_value_get_by_index(&enc->rec, enc->idx[id], &f, NULL)
        if ((rc = avro_value_reset(&enc->rec)) ||
            (rc = AU_FIELD(AU_F_DECISION_ID)) ||
            (rc = au_enc_set_str(enc, &f, rec->decision_id)) ||
            (rc = AU_FIELD(AU_F_TS)) ||
            (rc = avro_value_set_long(&f, rec->ts_ms)) ||
            (rc = AU_FIELD(AU_F_REQUEST_ID)))
                return rc;
        if (rec->request_id)
                rc = avro_value_set_branch(&f, enc->str_branch, &b) ||
                     au_enc_set_str(enc, &b, rec->request_id);
        else
                rc = avro_value_set_branch(&f, enc->null_branch, &b) ||
                     avro_value_set_null(&b);
        if (rc || (rc = AU_FIELD(AU_F_IDENTITY)) ||
            (rc = au_enc_set_str(enc, &f, rec->identity)) ||
            (rc = AU_FIELD(AU_F_CLIENT_ID)) ||
            (rc = au_enc_set_str(enc, &f, rec->client_id)) ||
            (rc = AU_FIELD(AU_F_RESOURCE)) ||
            (rc = au_enc_set_str(enc, &f, rec->resource)) ||
            (rc = AU_FIELD(AU_F_GRANT_TYPE)) ||
            (rc = au_enc_set_str(enc, &f, rec->grant_type)) ||
            (rc = AU_FIELD(AU_F_REQUESTED_SCOPES)) ||
            (rc = au_enc_set_scopes(enc, &f, rec->requested_scopes,
                                    rec->requested_scope_cnt)) ||
            (rc = AU_FIELD(AU_F_REQUESTED_TTL)) ||
            (rc = avro_value_set_int(&f, (int32_t)rec->requested_ttl)) ||
            (rc = AU_FIELD(AU_F_DECISION)) ||
            (rc = avro_value_set_enum(&f, enc->outcome_idx[outcome])) ||
            (rc = AU_FIELD(AU_F_SCOPES)) ||
            (rc = au_enc_set_scopes(enc, &f, rec->scopes, rec->scope_cnt)) ||
            (rc = AU_FIELD(AU_F_TTL)) ||
            (rc = avro_value_set_int(&f, (int32_t)rec->ttl)) ||
            (rc = AU_FIELD(AU_F_RISK)) ||
            (rc = avro_value_set_double(&f, au_unsigned_zero(rec->risk))) ||
            (rc = AU_FIELD(AU_F_LEVEL)) ||
            (rc = au_enc_set_str(enc, &f, rec->level)) ||
            (rc = AU_FIELD(AU_F_REASONS)))
                return rc ? rc : EINVAL;
        for (i = 0; i < rec->reason_cnt; i++) {
                if ((rc = avro_value_append(&f, &r, NULL)) ||
                    (rc = avro_value_get_by_name(&r, "signal", &b, NULL)) ||
                    (rc = au_enc_set_str(enc, &b, rec->reasons[i].signal)) ||
                    (rc = avro_value_get_by_name(&r, "points", &b, NULL)) ||
                    (rc = avro_value_set_double(
                             &b, au_unsigned_zero(rec->reasons[i].points))) ||
                    (rc = avro_value_get_by_name(&r, "detail", &b, NULL)) ||
                    (rc = au_enc_set_str(enc, &b, rec->reasons[i].detail)))
                        return rc;
        }
        if ((rc = AU_FIELD(AU_F_POLICY)) ||
            (rc = au_enc_set_str(enc, &f, rec->policy ? rec->policy : "")) ||
            (rc = AU_FIELD(AU_F_DEGRADED)) ||
            (rc = avro_value_set_boolean(&f, rec->degraded ? 1 : 0)) ||
            (rc = AU_FIELD(AU_F_PREV_HASH)) ||
            (rc = avro_value_set_string(&f, au_genesis)) ||
            (rc = AU_FIELD(AU_F_SIGNATURE)) ||
            (rc = au_enc_set_str(enc, &f,
                                 rec->signature ? rec->signature : "")))
                return rc;
#undef AU_FIELD
        return 0;
}

/* Bytes of the Avro varint of a non-negative length (zig-zag encoded). */
static size_t au_varint_len(size_t len) {
        uint64_t v = (uint64_t)len << 1;
        size_t n = 1;

        while (v >= 0x80) {
                v >>= 7;
                n++;
        }
        return n;
}

/*
 * The audit log.
 */

/* One record on its way to the file and to Kafka. */
struct au_entry {
        struct au_entry *next; /* FIFO link */
        uint64_t seq;          /* sequence number in this log object */
        char *line;            /* the log line, '\n' included; the writer
                                * fills in prev_hash and hash */
        size_t line_len;       /* bytes of line */
        char *avro;            /* single-object framed Avro, or NULL */
        size_t avro_len;       /* bytes of avro */
        size_t avro_prev_off;  /* where prev_hash's 64 bytes are in avro */
        char *key;             /* Kafka message key: the identity */
        size_t key_len;        /* bytes of key */
        char data[];           /* storage of line, avro and key */
};

/* Writes are gathered up to this many bytes: big enough that a batch of a
 * thousand typical lines is one write(), small enough to copy cheaply. */
#define AU_WBUF_SIZE (1024 * 1024)
/* Longest pause between retries of a failing write(). */
#define AU_RETRY_MAX_MS 1000
/* How long a closing log keeps retrying a failing write() before it
 * counts what is left as lost. */
#define AU_CLOSE_RETRY_MS 10000
/* Delivery reports are served at least this often while any are due. */
#define AU_KAFKA_POLL_MS 10

struct mg_audit_log {
        struct mg_audit_conf conf;   /* copy; strings owned */
        enum au_fsync fsync;         /* parsed conf.fsync */
        int deny_when_full;          /* conf.when_full is "deny" */
        int fd;                      /* the log, O_APPEND, flock'ed */
        mg_audit_durable_cb *durable_cb; /* or NULL */
        void *opaque;                /* for durable_cb */
        struct au_enc *enc;          /* Avro encoder; NULL without Kafka */
        rd_kafka_t *rk;              /* producer, or NULL */
        rd_kafka_topic_t *rkt;       /* conf.topic */
        pthread_t thread;            /* the writer */
        int thread_started;          /* thread must be joined */

        pthread_mutex_t lock;        /* guards everything below */
        pthread_cond_t writer_cond;  /* work for the writer */
        int writer_idle;         /* the writer sleeps on writer_cond for new
                                  * records (under lock): only then does an
                                  * append need to wake it */
        pthread_cond_t room_cond;    /* backlog fell below conf.queue */
        pthread_cond_t durable_cond; /* progress, failure or stop */
        struct au_entry *head;       /* FIFO of records to write */
        struct au_entry *tail;       /* its last entry */
        uint64_t last_seq;           /* highest seq given out */
        uint64_t flush_seq;          /* sync everything up to this */
        uint64_t kafka_seq;          /* highest seq handed to Kafka (or
                                      * refused by it) */
        int paused;                  /* test hook: take nothing */
        int stopping;                /* destroy() runs */
        struct mg_audit_stats st;    /* the counters */

        /* The writer's own state, no lock needed. */
        char prev_hex[64];           /* SHA-256 of the last line written */
        char *wbuf;                  /* gathered lines, AU_WBUF_SIZE */
        EVP_MD *sha256;              /* SHA-256, fetched once */
        EVP_MD_CTX *mdctx;           /* reused for every line */
        int64_t last_sync_ms;        /* monotonic time of the last sync */
};

static int64_t au_now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Absolute CLOCK_MONOTONIC time ms from now, for timed waits. */
static struct timespec au_deadline(int64_t ms) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += ms / 1000;
        ts.tv_nsec += (ms % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
        }
        return ts;
}

/* Highest seq that mg_audit_log_wait() may report; the lock is held. */
static uint64_t au_durable_seq(const struct mg_audit_log *log) {
        return log->fsync == AU_FSYNC_ALWAYS ? log->st.synced_seq
                                             : log->st.written_seq;
}

/* Build the entry of rec: its line and, with Kafka, its Avro message. */
static mg_err_t au_entry_new(struct mg_audit_log *log,
                             const struct mg_audit_record *rec, int outcome,
                             struct au_entry **ep, char *errstr,
                             size_t errstr_size) {
        struct au_enc *enc = log->enc;
        struct au_w w = {NULL, 0, 0};
        char small[4096];
        size_t key_max, avro_size = 0, sig_len = 0, off;
        struct au_entry *e = NULL;
        const char *sig;
        avro_value_t f;
        mg_err_t err = MG_OK;
        int locked = 0, rc, i;

        *ep = NULL;
        /* Typical lines fit the stack buffer: one pass, then a copy. */
        w.buf = small;
        w.size = sizeof(small);
        au_line_write(&w, rec);
        if (w.len > MG_AUDIT_LINE_MAX)
                return mg_err_set(MG_ERR_TOOBIG, errstr, errstr_size,
                                  "audit record: a line of %zu bytes is over "
                                  "the %d-byte limit",
                                  w.len, MG_AUDIT_LINE_MAX);
        key_max = 3 * strlen(rec->identity) + 1;
        if (enc) {
                pthread_mutex_lock(&enc->lock);
                locked = 1;
                if ((rc = au_enc_fill(enc, rec, outcome)) ||
                    (rc = avro_value_sizeof(&enc->rec, &avro_size)) ||
                    (rc = avro_value_get_by_index(&enc->rec,
                                                  enc->idx[AU_F_SIGNATURE],
                                                  &f, NULL)) ||
                    (rc = avro_value_get_string(&f, &sig, &sig_len))) {
                        err = mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                         "audit record: Avro: %s",
                                         avro_strerror());
                        goto out;
                }
                sig_len--; /* Avro C counts the NUL */
                avro_size += AU_SO_HEADER;
        }
        if (!(e = malloc(sizeof(*e) + w.len + avro_size + key_max))) {
                err = mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                 "out of memory");
                goto out;
        }
        memset(e, 0, sizeof(*e));
        e->line = e->data;
        e->line_len = w.len;
        if (w.len <= sizeof(small)) {
                memcpy(e->line, small, w.len);
        } else {
                w.buf = e->line;
                w.size = w.len;
                w.len = 0;
                au_line_write(&w, rec);
                assert(w.len == e->line_len);
        }
        e->key = e->data + e->line_len + avro_size;
        au_utf8_fix(rec->identity, e->key);
        e->key_len = strlen(e->key);
        if (enc) {
                e->avro = e->data + e->line_len;
                e->avro_len = avro_size;
                e->avro[0] = (char)0xc3;
                e->avro[1] = 0x01;
                for (i = 0; i < 8; i++)
                        e->avro[2 + i] = (char)(enc->fp >> (8 * i));
                avro_writer_memory_set_dest(enc->writer,
                                            e->avro + AU_SO_HEADER,
                                            (int64_t)(avro_size -
                                                      AU_SO_HEADER));
                if (avro_value_write(enc->writer, &enc->rec) ||
                    avro_writer_tell(enc->writer) !=
                            (int64_t)(avro_size - AU_SO_HEADER)) {
                        err = mg_err_set(MG_ERR_FATAL, errstr, errstr_size,
                                         "audit record: Avro: %s",
                                         avro_strerror());
                        goto out;
                }
                off = avro_size - sig_len - au_varint_len(sig_len) - 64;
                if (memcmp(e->avro + off, au_genesis, 64)) {
                        err = mg_err_set(MG_ERR_FATAL, errstr, errstr_size,
                                         "audit record: prev_hash is not "
                                         "where the Avro layout puts it");
                        goto out;
                }
                e->avro_prev_off = off;
        }
out:
        if (locked)
                pthread_mutex_unlock(&enc->lock);
        if (err)
                free(e);
        else
                *ep = e;
        return err;
}

mg_err_t mg_audit_log_append(struct mg_audit_log *log,
                             const struct mg_audit_record *rec,
                             uint64_t *seqp, char *errstr,
                             size_t errstr_size) {
        struct au_entry *e = NULL;
        mg_err_t err = MG_OK;
        int outcome, waited = 0;

        if (seqp)
                *seqp = 0;
        if ((outcome = au_rec_check(rec, errstr, errstr_size)) < 0)
                return MG_ERR_INVALID;
        if ((err = au_entry_new(log, rec, outcome, &e, errstr, errstr_size)))
                return err;
        pthread_mutex_lock(&log->lock);
        for (;;) {
                if (log->stopping) {
                        err = mg_err_set(MG_ERR_FATAL, errstr, errstr_size,
                                         "the audit log is being closed");
                        goto out;
                }
                if (log->st.failed) {
                        err = mg_err_set(MG_ERR_IO, errstr, errstr_size,
                                         "the audit log %s failed",
                                         log->conf.log);
                        goto out;
                }
                if (log->st.backlog < (uint64_t)log->conf.queue)
                        break;
                if (log->deny_when_full) {
                        log->st.refused++;
                        err = mg_err_set(MG_ERR_RETRY, errstr, errstr_size,
                                         "the audit queue is full (%" PRId64
                                         " records)",
                                         log->conf.queue);
                        goto out;
                }
                if (!waited++)
                        log->st.blocked++;
                pthread_cond_wait(&log->room_cond, &log->lock);
        }
        e->seq = ++log->last_seq;
        if (log->tail)
                log->tail->next = e;
        else
                log->head = e;
        log->tail = e;
        log->st.queued++;
        log->st.backlog++;
        if (seqp)
                *seqp = e->seq;
        e = NULL;
        /* A busy writer takes this record on its next pass; waking it per
         * record cost a futex call and a context switch per decision. */
        if (log->writer_idle)
                pthread_cond_signal(&log->writer_cond);
out:
        pthread_mutex_unlock(&log->lock);
        free(e);
        return err;
}

mg_err_t mg_audit_log_wait(struct mg_audit_log *log, uint64_t seq,
                           int timeout_ms, char *errstr, size_t errstr_size) {
        struct timespec dl = au_deadline(timeout_ms < 0 ? 0 : timeout_ms);
        mg_err_t err = MG_OK;

        pthread_mutex_lock(&log->lock);
        if (seq > log->last_seq) {
                err = mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                                 "record %" PRIu64 " was never appended",
                                 seq);
                goto out;
        }
        while (au_durable_seq(log) < seq) {
                if (log->st.failed) {
                        err = mg_err_set(MG_ERR_IO, errstr, errstr_size,
                                         "the audit log %s failed before "
                                         "record %" PRIu64 " was durable",
                                         log->conf.log, seq);
                        goto out;
                }
                if (timeout_ms < 0) {
                        pthread_cond_wait(&log->durable_cond, &log->lock);
                } else if (pthread_cond_timedwait(&log->durable_cond,
                                                  &log->lock,
                                                  &dl) == ETIMEDOUT &&
                           au_durable_seq(log) < seq) {
                        err = mg_err_set(MG_ERR_TIMEOUT, errstr, errstr_size,
                                         "record %" PRIu64 " not durable "
                                         "after %d ms",
                                         seq, timeout_ms);
                        goto out;
                }
        }
out:
        pthread_mutex_unlock(&log->lock);
        return err;
}

mg_err_t mg_audit_log_flush(struct mg_audit_log *log, int timeout_ms,
                            char *errstr, size_t errstr_size) {
        struct timespec dl = au_deadline(timeout_ms < 0 ? 0 : timeout_ms);
        int64_t end = au_now_ms() + timeout_ms, left;
        uint64_t target;
        mg_err_t err = MG_OK;

        pthread_mutex_lock(&log->lock);
        target = log->last_seq;
        if (log->flush_seq < target)
                log->flush_seq = target;
        pthread_cond_signal(&log->writer_cond);
        while (log->st.synced_seq < target) {
                if (log->st.failed) {
                        err = mg_err_set(MG_ERR_IO, errstr, errstr_size,
                                         "the audit log %s failed",
                                         log->conf.log);
                        goto out;
                }
                if (timeout_ms < 0) {
                        pthread_cond_wait(&log->durable_cond, &log->lock);
                } else if (pthread_cond_timedwait(&log->durable_cond,
                                                  &log->lock,
                                                  &dl) == ETIMEDOUT &&
                           log->st.synced_seq < target) {
                        err = mg_err_set(MG_ERR_TIMEOUT, errstr, errstr_size,
                                         "audit records not written and "
                                         "synced within %d ms",
                                         timeout_ms);
                        goto out;
                }
        }
        /* Delivery reports: served here too, so the wait ends as soon as
         * the last one arrives (rd_kafka_poll() is thread-safe). */
        while (log->rk &&
               (log->kafka_seq < target || log->st.kafka_in_flight > 0)) {
                left = timeout_ms < 0 ? AU_KAFKA_POLL_MS : end - au_now_ms();
                if (left <= 0) {
                        err = mg_err_set(MG_ERR_TIMEOUT, errstr, errstr_size,
                                         "%" PRIu64 " audit records without "
                                         "a Kafka delivery report after %d ms",
                                         log->st.kafka_in_flight, timeout_ms);
                        goto out;
                }
                pthread_mutex_unlock(&log->lock);
                rd_kafka_poll(log->rk, (int)(left < AU_KAFKA_POLL_MS
                                                     ? left
                                                     : AU_KAFKA_POLL_MS));
                pthread_mutex_lock(&log->lock);
        }
out:
        pthread_mutex_unlock(&log->lock);
        return err;
}

void mg_audit_log_stats(struct mg_audit_log *log, struct mg_audit_stats *st) {
        pthread_mutex_lock(&log->lock);
        *st = log->st;
        pthread_mutex_unlock(&log->lock);
}

void mg_audit_log_pause(struct mg_audit_log *log, int paused) {
        pthread_mutex_lock(&log->lock);
        log->paused = paused;
        pthread_cond_signal(&log->writer_cond);
        pthread_mutex_unlock(&log->lock);
}

/*
 * The writer thread.
 */

/* The log failed: refuse appends, wake everyone, count what is queued (and
 * unwritten, records of the writer's batch not written) as lost. */
static void au_fail(struct mg_audit_log *log, uint64_t unwritten,
                    const char *what, int errnum) {
        struct au_entry *e, *next;
        uint64_t lost = unwritten;

        pthread_mutex_lock(&log->lock);
        for (e = log->head; e; e = next) {
                next = e->next;
                free(e);
                lost++;
        }
        log->head = log->tail = NULL;
        log->st.failed = 1;
        log->st.lost += lost;
        log->st.backlog -= lost;
        pthread_cond_broadcast(&log->room_cond);
        pthread_cond_broadcast(&log->durable_cond);
        pthread_mutex_unlock(&log->lock);
        mg_log_error("audit",
                     "%s: %s failed (%s): the audit log stops; %" PRIu64
                     " records lost",
                     log->conf.log, what, strerror(errnum), lost);
}

/* fdatasync what is written; 0, or -1 when the log failed. */
static int au_sync(struct mg_audit_log *log) {
        uint64_t seq, durable;

        pthread_mutex_lock(&log->lock);
        seq = log->st.written_seq; /* only this thread moves it */
        pthread_mutex_unlock(&log->lock);
        if (fdatasync(log->fd)) {
                au_fail(log, 0, "fdatasync", errno);
                return -1;
        }
        log->last_sync_ms = au_now_ms();
        pthread_mutex_lock(&log->lock);
        log->st.fsyncs++;
        log->st.synced_seq = seq;
        durable = au_durable_seq(log);
        pthread_cond_broadcast(&log->durable_cond);
        pthread_mutex_unlock(&log->lock);
        if (log->durable_cb && log->fsync == AU_FSYNC_ALWAYS)
                log->durable_cb(log->opaque, durable);
        return 0;
}

/* write() all of p, retrying failures with backoff; -1 only when the log
 * is closing and has retried for AU_CLOSE_RETRY_MS. */
static int au_write_all(struct mg_audit_log *log, const char *p, size_t n) {
        int64_t backoff = 10, first_fail = 0;
        uint64_t errors;
        ssize_t w;
        int stopping, errnum;

        while (n) {
                w = write(log->fd, p, n);
                if (w > 0) {
                        p += w;
                        n -= (size_t)w;
                        continue;
                }
                if (w < 0 && errno == EINTR)
                        continue;
                errnum = w < 0 ? errno : ENOSPC;
                pthread_mutex_lock(&log->lock);
                errors = ++log->st.write_errors;
                stopping = log->stopping;
                pthread_mutex_unlock(&log->lock);
                if (errors == 1 || errors % 100 == 0)
                        mg_log_error("audit",
                                     "%s: write failed (%s), retrying; %" PRIu64
                                     " failures so far",
                                     log->conf.log, strerror(errnum), errors);
                if (!first_fail)
                        first_fail = au_now_ms();
                if (stopping && au_now_ms() - first_fail > AU_CLOSE_RETRY_MS)
                        return -1;
                usleep((useconds_t)(backoff * 1000));
                if ((backoff *= 2) > AU_RETRY_MAX_MS)
                        backoff = AU_RETRY_MAX_MS;
        }
        return 0;
}

/* Lines up to and including seq (count of them) reached the file. */
static void au_written(struct mg_audit_log *log, uint64_t seq,
                       uint64_t count) {
        uint64_t durable;

        pthread_mutex_lock(&log->lock);
        log->st.written += count;
        log->st.written_seq = seq;
        log->st.backlog -= count;
        durable = au_durable_seq(log);
        pthread_cond_broadcast(&log->room_cond);
        pthread_cond_broadcast(&log->durable_cond);
        pthread_mutex_unlock(&log->lock);
        if (log->durable_cb && log->fsync != AU_FSYNC_ALWAYS)
                log->durable_cb(log->opaque, durable);
}

/* Fill in e's prev_hash and hash, and advance the chain. */
static void au_chain(struct mg_audit_log *log, struct au_entry *e) {
        char *prev = e->line + e->line_len - AU_LINE_PREV_BACK;
        char *hash = e->line + e->line_len - AU_LINE_HASH_BACK;
        char *member = hash - 9; /* ,"hash":" */
        unsigned char h[32];
        int rc;

        memcpy(prev, log->prev_hex, 64);
        if (e->avro)
                memcpy(e->avro + e->avro_prev_off, log->prev_hex, 64);
        /* The hashed text is the line up to its hash member, closed by
         * '}': write the '}' over the ',' for the moment. */
        *member = '}';
        rc = au_sha256_ctx(log->mdctx, log->sha256, e->line,
                           (size_t)(member + 1 - e->line), NULL, 0, h);
        *member = ',';
        au_hex(h, 32, hash);
        rc |= au_sha256_ctx(log->mdctx, log->sha256, e->line,
                            e->line_len - 1, NULL, 0, h);
        au_hex(h, 32, log->prev_hex);
        /* SHA-256 does not fail short of a broken OpenSSL installation. */
        assert(rc == 0);
        (void)rc;
}

/* Hand the written records of batch to librdkafka. */
static void au_produce(struct mg_audit_log *log, struct au_entry *batch,
                       uint64_t upto) {
        struct au_entry *e;
        rd_kafka_resp_err_t kerr;

        for (e = batch; e && e->seq <= upto; e = e->next) {
                pthread_mutex_lock(&log->lock);
                log->st.kafka_produced++;
                log->st.kafka_in_flight++;
                pthread_mutex_unlock(&log->lock);
                if (rd_kafka_produce(log->rkt, RD_KAFKA_PARTITION_UA,
                                     RD_KAFKA_MSG_F_COPY, e->avro,
                                     e->avro_len, e->key, e->key_len,
                                     (void *)(uintptr_t)e->seq) == 0)
                        continue;
                kerr = rd_kafka_last_error();
                pthread_mutex_lock(&log->lock);
                log->st.kafka_produced--;
                log->st.kafka_in_flight--;
                log->st.kafka_failed++;
                pthread_mutex_unlock(&log->lock);
                mg_log_error("audit",
                             "record %" PRIu64 " not sent to Kafka topic %s: "
                             "%s (it is in %s)",
                             e->seq, log->conf.topic, rd_kafka_err2str(kerr),
                             log->conf.log);
        }
        pthread_mutex_lock(&log->lock);
        log->kafka_seq = upto;
        pthread_mutex_unlock(&log->lock);
        rd_kafka_poll(log->rk, 0);
}

/* Write one batch (a FIFO taken whole), sync it when audit.fsync=always,
 * send it to Kafka, free it. */
static void au_batch_run(struct mg_audit_log *log, struct au_entry *batch) {
        struct au_entry *e, *next;
        uint64_t cnt = 0, total = 0, done = 0, last = 0;
        size_t used = 0;

        for (e = batch; e; e = e->next) {
                au_chain(log, e);
                total++;
        }
        for (e = batch; e; e = e->next) {
                if (e->line_len <= AU_WBUF_SIZE - used) {
                        memcpy(log->wbuf + used, e->line, e->line_len);
                        used += e->line_len;
                        cnt++;
                        last = e->seq;
                }
                if (e->next && e->next->line_len <= AU_WBUF_SIZE - used)
                        continue;
                /* flush the gathered lines (e is in them: a line is never
                 * longer than the buffer) */
                if (au_write_all(log, log->wbuf, used)) {
                        au_fail(log, total - done, "write", EIO);
                        break;
                }
                au_written(log, last, cnt);
                done += cnt;
                used = 0;
                cnt = 0;
        }
        if (done == total && log->fsync == AU_FSYNC_ALWAYS)
                (void)au_sync(log);
        if (log->rk && done)
                au_produce(log, batch, last);
        for (e = batch; e; e = next) {
                next = e->next;
                free(e);
        }
}

static void *au_writer_main(void *arg) {
        struct mg_audit_log *log = arg;
        struct au_entry *batch;
        struct timespec dl;
        int64_t wait_ms, now;
        int sync_due;

        pthread_mutex_lock(&log->lock);
        for (;;) {
                if (log->head && !log->st.failed &&
                    (!log->paused || log->stopping)) {
                        batch = log->head;
                        log->head = log->tail = NULL;
                        pthread_mutex_unlock(&log->lock);
                        au_batch_run(log, batch);
                        pthread_mutex_lock(&log->lock);
                        continue;
                }
                now = au_now_ms();
                sync_due = !log->st.failed &&
                           log->st.written_seq > log->st.synced_seq &&
                           (log->flush_seq > log->st.synced_seq ||
                            log->stopping ||
                            (log->fsync == AU_FSYNC_INTERVAL &&
                             now - log->last_sync_ms >=
                                     log->conf.fsync_interval_ms));
                if (sync_due) {
                        pthread_mutex_unlock(&log->lock);
                        (void)au_sync(log);
                        pthread_mutex_lock(&log->lock);
                        continue;
                }
                if (log->stopping)
                        break;
                wait_ms = -1;
                if (log->fsync == AU_FSYNC_INTERVAL && !log->st.failed &&
                    log->st.written_seq > log->st.synced_seq)
                        /* > 0: sync_due would have been set otherwise */
                        wait_ms = log->last_sync_ms +
                                  log->conf.fsync_interval_ms - now;
                if (log->rk && log->st.kafka_in_flight > 0 &&
                    (wait_ms < 0 || wait_ms > AU_KAFKA_POLL_MS))
                        wait_ms = AU_KAFKA_POLL_MS;
                log->writer_idle = 1;
                if (wait_ms < 0) {
                        pthread_cond_wait(&log->writer_cond, &log->lock);
                } else if (wait_ms > 0) {
                        dl = au_deadline(wait_ms);
                        pthread_cond_timedwait(&log->writer_cond, &log->lock,
                                               &dl);
                }
                log->writer_idle = 0;
                if (log->rk) {
                        pthread_mutex_unlock(&log->lock);
                        rd_kafka_poll(log->rk, 0);
                        pthread_mutex_lock(&log->lock);
                }
        }
        pthread_mutex_unlock(&log->lock);
        return NULL;
}

/*
 * Opening: the file, its tail, Kafka.
 */

static int au_pread_all(int fd, void *buf, size_t len, off_t off) {
        ssize_t n;
        size_t got = 0;

        while (got < len) {
                n = pread(fd, (char *)buf + got, len - got,
                          off + (off_t)got);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return -1;
                got += (size_t)n;
        }
        return 0;
}

static int au_write_plain(int fd, const void *p, size_t n) {
        ssize_t w;

        while (n) {
                w = write(fd, p, n);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0)
                        return -1;
                p = (const char *)p + w;
                n -= (size_t)w;
        }
        return 0;
}

/* Where the last '\n' before offset end is (*posp, -1: none). -1 on a
 * read error. Reads backwards in 64 KiB steps. */
static int au_last_nl(int fd, off_t end, off_t *posp) {
        static const size_t step = 65536;
        char *buf = malloc(step);
        off_t start;
        size_t n, i;
        int rc = 0;

        *posp = -1;
        if (!buf)
                return -1;
        while (end > 0) {
                start = end > (off_t)step ? end - (off_t)step : 0;
                n = (size_t)(end - start);
                if (au_pread_all(fd, buf, n, start)) {
                        rc = -1;
                        break;
                }
                for (i = n; i > 0; i--)
                        if (buf[i - 1] == '\n') {
                                *posp = start + (off_t)(i - 1);
                                goto out;
                        }
                end = start;
        }
out:
        free(buf);
        return rc;
}

/* Append bytes [from, to) of the log to "<log>.torn", then cut the log
 * at from. */
static mg_err_t au_move_torn(struct mg_audit_log *log, off_t from, off_t to,
                             char *errstr, size_t errstr_size) {
        char path[4200], *buf = NULL;
        size_t n;
        off_t off;
        mg_err_t err = MG_OK;
        int fd;

        snprintf(path, sizeof(path), "%s.torn", log->conf.log);
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (fd < 0 || !(buf = malloc(65536))) {
                err = mg_err_set(MG_ERR_IO, errstr, errstr_size, "%s: %s",
                                 path, strerror(errno));
                goto out;
        }
        for (off = from; off < to; off += (off_t)n) {
                n = to - off > 65536 ? 65536 : (size_t)(to - off);
                if (au_pread_all(log->fd, buf, n, off) ||
                    au_write_plain(fd, buf, n)) {
                        err = mg_err_set(MG_ERR_IO, errstr, errstr_size,
                                         "%s: copying the torn line: %s",
                                         path, strerror(errno));
                        goto out;
                }
        }
        if (au_write_plain(fd, "\n", 1) || fsync(fd) ||
            ftruncate(log->fd, from) || fdatasync(log->fd)) {
                err = mg_err_set(MG_ERR_IO, errstr, errstr_size,
                                 "%s: moving the torn line aside: %s",
                                 log->conf.log, strerror(errno));
                goto out;
        }
        mg_log_warn("audit",
                    "%s: its last line was torn (an interrupted write): its "
                    "%jd bytes were moved to %s and the log continues from "
                    "the line before",
                    log->conf.log, (intmax_t)(to - from), path);
out:
        free(buf);
        if (fd >= 0)
                close(fd);
        return err;
}

/* Continue an existing log: check its last line, set the chain's head,
 * complete or move aside a torn last line. */
static mg_err_t au_recover(struct mg_audit_log *log, char *errstr,
                           size_t errstr_size) {
        char problem[256], *line = NULL, last;
        unsigned char digest[32];
        off_t size, nl, start;
        size_t len;
        mg_err_t err = MG_OK;

        for (;;) {
                if ((size = lseek(log->fd, 0, SEEK_END)) < 0 ||
                    (size > 0 &&
                     au_pread_all(log->fd, &last, 1, size - 1))) {
                        err = mg_err_set(MG_ERR_IO, errstr, errstr_size,
                                         "%s: %s", log->conf.log,
                                         strerror(errno));
                        goto out;
                }
                if (size == 0) {
                        memcpy(log->prev_hex, au_genesis, 64);
                        goto out;
                }
                if (au_last_nl(log->fd, last == '\n' ? size - 1 : size,
                               &nl)) {
                        err = mg_err_set(MG_ERR_IO, errstr, errstr_size,
                                         "%s: %s", log->conf.log,
                                         strerror(errno));
                        goto out;
                }
                start = nl + 1;
                len = (size_t)(size - start) - (last == '\n');
                if (len + 1 <= MG_AUDIT_LINE_MAX) {
                        free(line);
                        if (!(line = malloc(len + 1))) {
                                err = mg_err_set(MG_ERR_NOMEM, errstr,
                                                 errstr_size,
                                                 "out of memory");
                                goto out;
                        }
                        if (au_pread_all(log->fd, line, len, start)) {
                                err = mg_err_set(MG_ERR_IO, errstr,
                                                 errstr_size, "%s: %s",
                                                 log->conf.log,
                                                 strerror(errno));
                                goto out;
                        }
                }
                if (last == '\n') {
                        if (len + 1 > MG_AUDIT_LINE_MAX)
                                snprintf(problem, sizeof(problem),
                                         "longer than %d bytes",
                                         MG_AUDIT_LINE_MAX);
                        if (len + 1 > MG_AUDIT_LINE_MAX ||
                            au_line_hash_check(line, len, digest, problem,
                                               sizeof(problem))) {
                                err = mg_err_set(
                                        MG_ERR_INVALID, errstr, errstr_size,
                                        "%s: its last line is bad (%s): the "
                                        "log was modified; verify it and "
                                        "move it aside",
                                        log->conf.log, problem);
                                goto out;
                        }
                        au_hex(digest, 32, log->prev_hex);
                        goto out;
                }
                /* Torn: a whole record that only lacks its '\n' is kept. */
                if (len + 1 <= MG_AUDIT_LINE_MAX &&
                    !au_line_hash_check(line, len, digest, problem,
                                        sizeof(problem))) {
                        if (au_write_plain(log->fd, "\n", 1) ||
                            fdatasync(log->fd)) {
                                err = mg_err_set(MG_ERR_IO, errstr,
                                                 errstr_size, "%s: %s",
                                                 log->conf.log,
                                                 strerror(errno));
                                goto out;
                        }
                        mg_log_warn("audit",
                                    "%s: its last record lacked its "
                                    "newline (an interrupted write): "
                                    "completed",
                                    log->conf.log);
                        au_hex(digest, 32, log->prev_hex);
                        goto out;
                }
                if ((err = au_move_torn(log, start, size, errstr,
                                        errstr_size)))
                        goto out;
        }
out:
        free(line);
        return err;
}

/* Open (or create) the log, lock it, and find the chain's head. */
static mg_err_t au_open_file(struct mg_audit_log *log, char *errstr,
                             size_t errstr_size) {
        char dir[4200], *slash;
        struct stat st;
        int created, dfd;

        created = stat(log->conf.log, &st) != 0;
        log->fd = open(log->conf.log,
                       O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (log->fd < 0)
                return mg_err_set(MG_ERR_IO, errstr, errstr_size, "%s: %s",
                                  log->conf.log, strerror(errno));
        if (flock(log->fd, LOCK_EX | LOCK_NB))
                return mg_err_set(MG_ERR_IO, errstr, errstr_size,
                                  "%s: %s", log->conf.log,
                                  errno == EWOULDBLOCK
                                          ? "another process holds this "
                                            "audit log"
                                          : strerror(errno));
        if (created) {
                /* The new name must survive a crash too. */
                snprintf(dir, sizeof(dir), "%s", log->conf.log);
                slash = strrchr(dir, '/');
                if (!slash)
                        snprintf(dir, sizeof(dir), ".");
                else if (slash == dir)
                        dir[1] = '\0';
                else
                        *slash = '\0';
                if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >=
                    0) {
                        (void)fsync(dfd);
                        close(dfd);
                }
        }
        return au_recover(log, errstr, errstr_size);
}

static void au_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac,
                            const char *buf) {
        enum mg_log_level l = level <= 3   ? MG_LOG_ERROR
                              : level <= 4 ? MG_LOG_WARN
                              : level <= 6 ? MG_LOG_INFO
                                           : MG_LOG_DEBUG;
        mg_log(l, "kafka", "%s: %s", fac, buf);
}

/* Delivery report: on the writer's thread or a flush()'s, never with the
 * log's lock held by the caller. */
static void au_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m,
                     void *opaque) {
        struct mg_audit_log *log = opaque;

        pthread_mutex_lock(&log->lock);
        log->st.kafka_in_flight--;
        if (m->err)
                log->st.kafka_failed++;
        else
                log->st.kafka_delivered++;
        pthread_mutex_unlock(&log->lock);
        if (m->err)
                mg_log_error("audit",
                             "record %" PRIu64 " not delivered to Kafka "
                             "topic %s: %s (it is in %s)",
                             (uint64_t)(uintptr_t)m->_private,
                             log->conf.topic, rd_kafka_err2str(m->err),
                             log->conf.log);
}

static mg_err_t au_kafka_new(struct mg_audit_log *log,
                             const struct mg_audit_log_opts *opts,
                             char *errstr, size_t errstr_size) {
        rd_kafka_conf_t *kconf = rd_kafka_conf_new();
        const char *const fixed[][2] = {
                {"bootstrap.servers", opts->brokers},
                {"enable.idempotence", "true"},
                {"acks", "all"},
        };
        char kerr[256];
        mg_err_t err;
        size_t i;

        if (!kconf)
                return mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                  "out of memory");
        if ((err = mg_ingest_kafka_conf_apply(opts->kafka, kconf, errstr,
                                              errstr_size)))
                goto fail;
        for (i = 0; i < sizeof(fixed) / sizeof(*fixed); i++)
                if (rd_kafka_conf_set(kconf, fixed[i][0], fixed[i][1], kerr,
                                      sizeof(kerr)) != RD_KAFKA_CONF_OK) {
                        err = mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                         "%s: %s", fixed[i][0], kerr);
                        goto fail;
                }
        rd_kafka_conf_set_log_cb(kconf, au_kafka_log_cb);
        rd_kafka_conf_set_dr_msg_cb(kconf, au_dr_cb);
        rd_kafka_conf_set_opaque(kconf, log);
        log->rk = rd_kafka_new(RD_KAFKA_PRODUCER, kconf, kerr, sizeof(kerr));
        if (!log->rk) {
                err = mg_err_set(MG_ERR_KAFKA, errstr, errstr_size,
                                 "Kafka producer: %s", kerr);
                goto fail;
        }
        /* kconf belongs to the producer now */
        if (!(log->rkt = rd_kafka_topic_new(log->rk, log->conf.topic,
                                            NULL)))
                return mg_err_set(MG_ERR_KAFKA, errstr, errstr_size,
                                  "Kafka topic %s: %s", log->conf.topic,
                                  rd_kafka_err2str(rd_kafka_last_error()));
        return MG_OK;
fail:
        rd_kafka_conf_destroy(kconf);
        return err;
}

static char *au_strdup(const char *s) {
        return strdup(s ? s : "");
}

mg_err_t mg_audit_log_new(const struct mg_audit_conf *conf,
                          const struct mg_audit_log_opts *opts,
                          struct mg_audit_log **logp, char *errstr,
                          size_t errstr_size) {
        struct mg_audit_log *log;
        pthread_condattr_t ca;
        mg_err_t err;

        *logp = NULL;
        if ((err = mg_audit_conf_validate(conf, errstr, errstr_size)))
                return err;
        if (!(log = calloc(1, sizeof(*log))))
                return mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                  "out of memory");
        log->fd = -1;
        pthread_mutex_init(&log->lock, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&log->writer_cond, &ca);
        pthread_cond_init(&log->room_cond, &ca);
        pthread_cond_init(&log->durable_cond, &ca);
        pthread_condattr_destroy(&ca);
        log->conf = *conf;
        log->conf.log = au_strdup(conf->log);
        log->conf.fsync = au_strdup(conf->fsync);
        log->conf.when_full = au_strdup(conf->when_full);
        log->conf.topic = au_strdup(conf->topic);
        log->conf.key_file = au_strdup(conf->key_file);
        log->wbuf = malloc(AU_WBUF_SIZE);
        log->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
        log->mdctx = EVP_MD_CTX_new();
        if (!log->conf.log || !log->conf.fsync || !log->conf.when_full ||
            !log->conf.topic || !log->conf.key_file || !log->wbuf ||
            !log->sha256 || !log->mdctx) {
                err = mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                 "out of memory");
                goto out;
        }
        (void)au_fsync_parse(log->conf.fsync, &log->fsync);
        log->deny_when_full = !strcmp(log->conf.when_full, "deny");
        if ((err = au_open_file(log, errstr, errstr_size)))
                goto out;
        log->last_sync_ms = au_now_ms();
        if (opts) {
                log->durable_cb = opts->durable_cb;
                log->opaque = opts->opaque;
        }
        if (opts && opts->brokers) {
                if ((err = au_enc_new(opts->reg, &log->enc, errstr,
                                      errstr_size)) ||
                    (err = au_kafka_new(log, opts, errstr, errstr_size)))
                        goto out;
        }
        if (pthread_create(&log->thread, NULL, au_writer_main, log)) {
                err = mg_err_set(MG_ERR_FATAL, errstr, errstr_size,
                                 "cannot start the audit writer thread");
                goto out;
        }
        log->thread_started = 1;
out:
        if (err)
                mg_audit_log_destroy(log);
        else
                *logp = log;
        return err;
}

void mg_audit_log_destroy(struct mg_audit_log *log) {
        uint64_t left;

        if (!log)
                return;
        if (log->thread_started) {
                pthread_mutex_lock(&log->lock);
                log->stopping = 1;
                pthread_cond_broadcast(&log->writer_cond);
                pthread_cond_broadcast(&log->room_cond);
                pthread_cond_broadcast(&log->durable_cond);
                pthread_mutex_unlock(&log->lock);
                pthread_join(log->thread, NULL);
        }
        if (log->rk) {
                if (rd_kafka_flush(log->rk, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
                        /* What is left fails with a purge error; serve
                         * those reports so each is counted and logged. */
                        rd_kafka_purge(log->rk, RD_KAFKA_PURGE_F_QUEUE |
                                                        RD_KAFKA_PURGE_F_INFLIGHT);
                        (void)rd_kafka_flush(log->rk, 1000);
                }
                pthread_mutex_lock(&log->lock);
                left = log->st.kafka_in_flight;
                log->st.kafka_failed += left;
                log->st.kafka_in_flight = 0;
                pthread_mutex_unlock(&log->lock);
                if (left)
                        mg_log_error("audit",
                                     "%" PRIu64 " records without a Kafka "
                                     "delivery report at close (they are in "
                                     "%s)",
                                     left, log->conf.log);
        }
        if (log->rkt)
                rd_kafka_topic_destroy(log->rkt);
        if (log->rk)
                rd_kafka_destroy(log->rk);
        au_enc_destroy(log->enc);
        if (log->fd >= 0)
                close(log->fd);
        free(log->wbuf);
        EVP_MD_CTX_free(log->mdctx);
        EVP_MD_free(log->sha256);
        free(log->conf.log);
        free(log->conf.fsync);
        free(log->conf.when_full);
        free(log->conf.topic);
        free(log->conf.key_file);
        pthread_cond_destroy(&log->writer_cond);
        pthread_cond_destroy(&log->room_cond);
        pthread_cond_destroy(&log->durable_cond);
        pthread_mutex_destroy(&log->lock);
        free(log);
}

/*
 * Verification.
 */

/* Types of the members of a log line. */
enum au_jt {
        AU_JT_STR,      /* string */
        AU_JT_STR_NULL, /* string or null */
        AU_JT_TS,       /* integer >= 0 */
        AU_JT_TTL,      /* integer 0..INT32_MAX */
        AU_JT_NUM,      /* number */
        AU_JT_BOOL,     /* true or false */
        AU_JT_STRS,     /* array of strings */
        AU_JT_REASONS,  /* array of {signal, points, detail} */
        AU_JT_DECISION, /* one of the outcomes */
        AU_JT_HEX       /* 64 lowercase hex digits */
};

static const struct {
        const char *name; /* member name */
        enum au_jt type;  /* what it must hold */
} au_line_members[] = {
        {"decision_id", AU_JT_STR},   {"ts", AU_JT_TS},
        {"request_id", AU_JT_STR_NULL}, {"identity", AU_JT_STR},
        {"client_id", AU_JT_STR},     {"resource", AU_JT_STR},
        {"grant_type", AU_JT_STR},    {"requested_scopes", AU_JT_STRS},
        {"requested_ttl", AU_JT_TTL}, {"decision", AU_JT_DECISION},
        {"scopes", AU_JT_STRS},       {"ttl", AU_JT_TTL},
        {"risk", AU_JT_NUM},          {"level", AU_JT_STR},
        {"reasons", AU_JT_REASONS},   {"policy", AU_JT_STR},
        {"degraded", AU_JT_BOOL},     {"signature", AU_JT_STR},
        {"prev_hash", AU_JT_HEX},     {"hash", AU_JT_HEX},
};
#define AU_LINE_MEMBERS (sizeof(au_line_members) / sizeof(*au_line_members))

static int au_check_reason(json_t *r) {
        json_t *s = json_object_get(r, "signal");
        json_t *p = json_object_get(r, "points");
        json_t *d = json_object_get(r, "detail");

        return json_is_object(r) && json_object_size(r) == 3 &&
               json_is_string(s) && json_is_number(p) && json_is_string(d);
}

/* Every member present, of its type, and nothing else. */
static int au_check_members(json_t *root, char *problem, size_t psize) {
        const char *key, *what;
        json_t *v, *item;
        json_int_t i;
        size_t k, j;
        int k2;

        for (k = 0; k < AU_LINE_MEMBERS; k++) {
                key = au_line_members[k].name;
                v = json_object_get(root, key);
                what = NULL;
                if (!v) {
                        what = "is missing";
                } else {
                        switch (au_line_members[k].type) {
                        case AU_JT_STR:
                                if (!json_is_string(v))
                                        what = "is not a string";
                                break;
                        case AU_JT_STR_NULL:
                                if (!json_is_string(v) && !json_is_null(v))
                                        what = "is not a string or null";
                                break;
                        case AU_JT_TS:
                        case AU_JT_TTL:
                                i = json_is_integer(v) ? json_integer_value(v)
                                                       : -1;
                                if (i < 0 || (au_line_members[k].type ==
                                                      AU_JT_TTL &&
                                              i > INT32_MAX))
                                        what = "is not an integer in range";
                                break;
                        case AU_JT_NUM:
                                if (!json_is_number(v))
                                        what = "is not a number";
                                break;
                        case AU_JT_BOOL:
                                if (!json_is_boolean(v))
                                        what = "is not a boolean";
                                break;
                        case AU_JT_STRS:
                                if (!json_is_array(v))
                                        what = "is not an array of strings";
                                json_array_foreach(v, j, item) {
                                        if (!json_is_string(item))
                                                what = "is not an array of "
                                                       "strings";
                                }
                                break;
                        case AU_JT_REASONS:
                                if (!json_is_array(v))
                                        what = "is not an array of reasons";
                                json_array_foreach(v, j, item) {
                                        if (!au_check_reason(item))
                                                what = "holds something "
                                                       "other than {signal, "
                                                       "points, detail}";
                                }
                                break;
                        case AU_JT_DECISION:
                                what = "is not allow, narrow, step_up or "
                                       "deny";
                                for (k2 = 0; json_is_string(v) &&
                                             k2 < AU_OUTCOME_CNT;
                                     k2++)
                                        if (!strcmp(json_string_value(v),
                                                    au_outcomes[k2]))
                                                what = NULL;
                                break;
                        case AU_JT_HEX:
                                if (!json_is_string(v) ||
                                    json_string_length(v) != 64 ||
                                    !au_is_hex64(json_string_value(v)))
                                        what = "is not 64 lowercase hex "
                                               "digits";
                                break;
                        }
                }
                if (what) {
                        snprintf(problem, psize, "malformed: member \"%s\" %s",
                                 key, what);
                        return -1;
                }
        }
        if (json_object_size(root) != AU_LINE_MEMBERS) {
                json_object_foreach(root, key, v) {
                        for (k = 0; k < AU_LINE_MEMBERS; k++)
                                if (!strcmp(key, au_line_members[k].name))
                                        break;
                        if (k == AU_LINE_MEMBERS) {
                                snprintf(problem, psize,
                                         "malformed: unknown member "
                                         "\"%.64s\"",
                                         key);
                                return -1;
                        }
                }
        }
        return 0;
}

/* Check one line (len bytes, no '\n') against the chain's head prev_hex
 * (updated on success). 0, or -1 with a sentence in problem; *signedp is
 * set when its signature verified. */
static int au_verify_line(const char *line, size_t len, char prev_hex[64],
                          uint64_t lineno,
                          const struct mg_audit_verifier *verifier,
                          int *signedp, char *problem, size_t psize) {
        unsigned char digest[32];
        const char *sig, *why;
        char why_json[200];
        json_t *root = NULL;
        int rc = -1;

        *signedp = 0;
        if (au_line_hash_check(line, len, digest, problem, psize))
                return -1;
        if (!(root = au_parse_object(line, len, why_json,
                                     sizeof(why_json)))) {
                snprintf(problem, psize, "malformed: %s", why_json);
                return -1;
        }
        if (au_check_members(root, problem, psize))
                goto out;
        if (memcmp(json_string_value(json_object_get(root, "prev_hash")),
                   prev_hex, 64)) {
                if (lineno == 1)
                        snprintf(problem, psize,
                                 "prev_hash is not the genesis value: lines "
                                 "were cut off the front of the log");
                else
                        snprintf(problem, psize,
                                 "prev_hash mismatch: the line before it is "
                                 "not its predecessor (a line was deleted, "
                                 "inserted or reordered)");
                goto out;
        }
        if (verifier) {
                sig = json_string_value(json_object_get(root, "signature"));
                if ((why = au_sig_kind_problem(verifier, sig))) {
                        snprintf(problem, psize, "%s", why);
                        goto out;
                }
                if (au_canon_verify(verifier, root, "request_id",
                                    AU_IDENT_OMIT, sig, problem, psize) &&
                    au_canon_verify(verifier, root, "request_id",
                                    AU_IDENT_ADD, sig, problem, psize))
                        goto out;
                *signedp = 1;
        }
        au_hex(digest, 32, prev_hex);
        rc = 0;
out:
        json_decref(root);
        return rc;
}

/* Bytes read at once by the verifier, beyond the longest line. */
#define AU_VERIFY_CHUNK 65536

mg_err_t mg_audit_verify_file(const char *path,
                              const struct mg_audit_verifier *verifier,
                              struct mg_audit_verify_report *report,
                              char *errstr, size_t errstr_size) {
        const size_t cap = MG_AUDIT_LINE_MAX + AU_VERIFY_CHUNK;
        size_t beg = 0, end = 0, scanned = 0, len;
        char prev_hex[64], *buf = NULL, *nl;
        int fd = -1, eof = 0, sig_ok;
        mg_err_t err = MG_OK;
        ssize_t n;

        memset(report, 0, sizeof(*report));
        memcpy(prev_hex, au_genesis, 64);
        memcpy(report->last_hash, au_genesis, 65);
        if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
                err = mg_err_set(MG_ERR_IO, errstr, errstr_size, "%s: %s",
                                 path, strerror(errno));
                goto out;
        }
        if (!(buf = malloc(cap))) {
                err = mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                 "out of memory");
                goto out;
        }
        for (;;) {
                nl = memchr(buf + scanned, '\n', end - scanned);
                if (nl ? (size_t)(nl - (buf + beg)) >= MG_AUDIT_LINE_MAX
                       : end - beg >= MG_AUDIT_LINE_MAX) {
                        report->lines++;
                        snprintf(report->problem, sizeof(report->problem),
                                 "longer than %d bytes: not an audit line",
                                 MG_AUDIT_LINE_MAX);
                        goto bad;
                }
                if (!nl && !eof) {
                        /* move the partial line to the front, read more */
                        memmove(buf, buf + beg, end - beg);
                        end -= beg;
                        beg = 0;
                        scanned = end;
                        n = read(fd, buf + end, cap - end);
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n < 0) {
                                err = mg_err_set(MG_ERR_IO, errstr,
                                                 errstr_size, "%s: %s", path,
                                                 strerror(errno));
                                goto out;
                        }
                        if (n == 0)
                                eof = 1;
                        end += (size_t)n;
                        continue;
                }
                if (!nl) {
                        if (beg == end)
                                break; /* every line ended in '\n' */
                        report->lines++;
                        snprintf(report->problem, sizeof(report->problem),
                                 "torn: the last line has no newline (an "
                                 "interrupted write)");
                        goto bad;
                }
                report->lines++;
                len = (size_t)(nl - (buf + beg));
                if (au_verify_line(buf + beg, len, prev_hex, report->lines,
                                   verifier, &sig_ok, report->problem,
                                   sizeof(report->problem)))
                        goto bad;
                report->records_ok++;
                report->signed_ok += (uint64_t)sig_ok;
                memcpy(report->last_hash, prev_hex, 64);
                beg = scanned = (size_t)(nl - buf) + 1;
        }
        goto out;
bad:
        report->bad_line = report->lines;
        err = mg_err_set(MG_ERR_INVALID, errstr, errstr_size,
                         "line %" PRIu64 ": %s", report->bad_line,
                         report->problem);
out:
        free(buf);
        if (fd >= 0)
                close(fd);
        return err;
}
