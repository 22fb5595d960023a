/*
 * fuzz_audit_verify.c — libFuzzer target for the audit log verifier
 * (mg_audit_verify_file()) and the decision-response parsers
 * (mg_audit_canonical_response(), mg_audit_verify_decision()): the input is
 * an audit file, written to a memfd and verified through /proc/self/fd/N,
 * and also a response line.
 *
 * Checks beyond memory safety, any violation abort()s:
 *   - the verifier answers MG_OK or MG_ERR_INVALID (never MG_ERR_IO on a
 *     readable file); on MG_OK every line passed and ended in '\n'; on
 *     MG_ERR_INVALID bad_line is the last line read, every line before it
 *     passed, and errstr is "line N: <problem>";
 *   - with a verifier the checks are a superset: it never accepts what the
 *     chain check refuses, stops no later, and on MG_OK has verified every
 *     signature and reached the same chain head;
 *   - a canonical form is valid JSON and its own canonical form (the
 *     function is idempotent).
 *
 * The seeds in corpus/fuzz_audit_verify/ are small logs signed with the key
 * below (HMAC-SHA256), so mutations start past the signature check, and
 * broken ones (a torn line, an edited byte, a swapped pair, a response).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "mg_audit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The corpus' HMAC key: 32 bytes, the shortest allowed. */
static const char fuzz_key[] = "mintgate fuzz_audit_verify key!!";

static int fuzz_memfd(const char *name, const void *p, size_t len,
                      char *path, size_t path_size) {
        int fd = memfd_create(name, MFD_CLOEXEC);

        if (fd < 0 || fchmod(fd, 0600) ||
            (len && pwrite(fd, p, len, 0) != (ssize_t)len))
                abort();
        snprintf(path, path_size, "/proc/self/fd/%d", fd);
        return fd;
}

static void fuzz_check_report(mg_err_t err,
                              const struct mg_audit_verify_report *rep,
                              const char *errstr, size_t newlines) {
        char want[40];

        if (err == MG_OK) {
                if (rep->bad_line || rep->records_ok != rep->lines ||
                    rep->lines != newlines || strlen(rep->last_hash) != 64)
                        abort();
                return;
        }
        if (err != MG_ERR_INVALID)
                abort();
        snprintf(want, sizeof(want), "line %llu: ",
                 (unsigned long long)rep->bad_line);
        if (!rep->bad_line || rep->bad_line != rep->lines ||
            rep->records_ok != rep->lines - 1 || !rep->problem[0] ||
            strncmp(errstr, want, strlen(want)))
                abort();
}

static void fuzz_canonical(const uint8_t *data, size_t size) {
        static char buf[MG_AUDIT_CANONICAL_MAX], buf2[MG_AUDIT_CANONICAL_MAX];
        size_t len, len2;
        json_t *root;

        if (mg_audit_canonical_response((const char *)data, size, buf,
                                        sizeof(buf), &len) != MG_OK)
                return;
        root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL);
        if (!root)
                abort();
        json_decref(root);
        if (mg_audit_canonical_response(buf, len, buf2, sizeof(buf2),
                                        &len2) != MG_OK ||
            len2 != len || memcmp(buf, buf2, len))
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static struct mg_audit_verifier *vf;
        static char path[64];
        static int fd = -1;
        struct mg_audit_verify_report r1, r2;
        char errstr[512], errstr2[512], kpath[64], *line;
        size_t i, newlines = 0;
        mg_err_t e1, e2;
        int kfd;

        if (fd < 0) {
                kfd = fuzz_memfd("key", fuzz_key, strlen(fuzz_key), kpath,
                                 sizeof(kpath));
                if (mg_audit_verifier_new_file(kpath, &vf, errstr,
                                               sizeof(errstr)))
                        abort();
                close(kfd);
                fd = fuzz_memfd("audit", NULL, 0, path, sizeof(path));
        }
        if (ftruncate(fd, 0) ||
            (size && pwrite(fd, data, size, 0) != (ssize_t)size))
                abort();
        for (i = 0; i < size; i++)
                newlines += data[i] == '\n';

        e1 = mg_audit_verify_file(path, NULL, &r1, errstr, sizeof(errstr));
        fuzz_check_report(e1, &r1, errstr, newlines);
        if (r1.signed_ok)
                abort();
        e2 = mg_audit_verify_file(path, vf, &r2, errstr2, sizeof(errstr2));
        fuzz_check_report(e2, &r2, errstr2, newlines);
        if (e2 == MG_OK &&
            (e1 != MG_OK || r2.signed_ok != r2.lines ||
             strcmp(r1.last_hash, r2.last_hash)))
                abort();
        if (e1 != MG_OK && (e2 == MG_OK || r2.bad_line > r1.bad_line))
                abort();

        fuzz_canonical(data, size);
        if ((line = malloc(size + 1))) {
                memcpy(line, data, size);
                line[size] = '\0';
                e1 = mg_audit_verify_decision(vf, line, errstr,
                                              sizeof(errstr));
                if (e1 != MG_OK && (e1 != MG_ERR_INVALID || !errstr[0]))
                        abort();
                free(line);
        }
        return 0;
}
