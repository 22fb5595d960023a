/*
 * mg_proto.c — the decision protocol codec (see mg_proto.h).
 *
 * Reading is a single pass over the line by a small strict JSON parser
 * that decodes the fields it knows straight into the request's arena and
 * validates (without storing) everything else. jansson would do, but it
 * builds a tree with an allocation per node and costs about 3.4 us for a
 * typical request, more than the whole decision should; this parser takes
 * a tenth of that and allocates nothing. jansson stays the reference:
 * tests/fuzz/fuzz_proto.c checks on every input that both accept exactly
 * the same JSON (RFC 8259: UTF-8 only, escapes and surrogate pairs checked,
 * 64-bit integers, no overflowing reals, nesting to jansson's 2048 levels,
 * nothing after the object) and read the same fields.
 *
 * Rules beyond JSON: a known field given twice is refused (which of two
 * "scopes" counts is the kind of ambiguity an attacker likes); unknown
 * fields are ignored whatever they hold; "\u0000" is valid JSON, so a
 * string holding it is a bad field, named. A syntax error anywhere makes
 * the line bad_json, even after a bad field, so a line that is not JSON is
 * always reported as such; otherwise the first bad field in line order is
 * reported, and the "id" is kept when it was usable wherever it stood.
 * Strings have the same caps as events (identity 512 bytes, other strings
 * 1 KiB).
 *
 * Writing does not use jansson: building a tree to print a dozen keys
 * would cost more than deciding. A writer appends to the caller's buffer
 * and keeps counting past its end, so one check at the end says whether
 * it fitted and how much was needed. Strings are copied in runs of bytes
 * that need no escaping, found with a 256-entry class table; numbers are
 * written without printf.
 *
 * Workload: one parse and one or two writes per request on every server
 * thread; typical requests are a few hundred bytes (timings in
 * tests/unit/test_proto.c).
 */
#include "mg_proto.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const mg_outcome_names[MG_DECISION__CNT] = {"allow", "narrow",
                                                        "step_up", "deny"};

/*
 * Reading.
 */

/* Nesting jansson accepts (JSON_PARSER_MAX_DEPTH), so the two parsers
 * agree on every line. Every value counts, scalars too: the top-level
 * object is depth 1, its members' values depth 2, and so on. */
#define MG_PROTO_DEPTH_MAX 2048

/* Keys of the request object and of its context, in DESIGN.md order. */
enum mg_proto_key {
        MG_PROTO_K_ID,
        MG_PROTO_K_IDENTITY,
        MG_PROTO_K_CLIENT_ID,
        MG_PROTO_K_RESOURCE,
        MG_PROTO_K_SCOPES,
        MG_PROTO_K_GRANT_TYPE,
        MG_PROTO_K_TTL,
        MG_PROTO_K_CONTEXT,
        MG_PROTO_K__CNT
};

static const char *const mg_proto_keys[MG_PROTO_K__CNT] = {
        "id",     "identity",   "client_id", "resource",
        "scopes", "grant_type", "ttl",       "context"};

enum mg_proto_ctx_key {
        MG_PROTO_C_SOURCE_IP,
        MG_PROTO_C_PARENT_TOKEN_ID,
        MG_PROTO_C_EXCHANGE_DEPTH,
        MG_PROTO_C__CNT
};

static const char *const mg_proto_ctx_keys[MG_PROTO_C__CNT] = {
        "source_ip", "parent_token_id", "exchange_depth"};

/* Names of the context keys in messages. */
static const char *const mg_proto_ctx_names[MG_PROTO_C__CNT] = {
        "context.source_ip", "context.parent_token_id",
        "context.exchange_depth"};

/* State of one parse. A syntax error stops it at once; a field error is
 * kept (the first one, in line order) and parsing goes on, so that a line
 * that is not JSON at all is reported as such, and an "id" after the bad
 * field is still found. */
struct mg_proto_rd {
        const char *start;           /* the line */
        const char *p;               /* cursor */
        const char *end;             /* end of the line */
        struct mg_decide_req *req;   /* being filled */
        const char *jerr;            /* syntax error, or NULL */
        size_t jpos;                 /* its byte offset */
        mg_err_t ferr;               /* first field error, or MG_OK */
        const char *fcode;           /* its protocol code */
        char fmsg[256];              /* its message */
        unsigned seen;               /* bit k: mg_proto_keys[k] seen */
        int id_bad;                  /* "id" was given but is unusable */
        int depth;                   /* of the container being read */
};

/* Byte classes inside a string: 0 plain (copied in runs), 1 anything
 * else ('"', '\', control characters, bytes >= 0x80). */
static const unsigned char mg_rd_class[256] = {
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x00 */
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x10 */
        0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x20 '"' */
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, /* 0x50 '\\' */
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x7f plain */
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x80 */
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0xc0 */
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0xe0 */
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

static size_t mg_w_utf8(const unsigned char *s, size_t n);

/* A syntax error at p; returns -1 for `return mg_rd_syntax(...)`. */
static int mg_rd_syntax(struct mg_proto_rd *rd, const char *p,
                        const char *what) {
        rd->jerr = what;
        rd->jpos = (size_t)(p - rd->start);
        return -1;
}

/* Keep the first field error. */
static void mg_rd_field(struct mg_proto_rd *rd, mg_err_t err,
                        const char *pcode, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static void mg_rd_field(struct mg_proto_rd *rd, mg_err_t err,
                        const char *pcode, const char *fmt, ...) {
        va_list ap;

        if (rd->ferr)
                return;
        rd->ferr = err;
        rd->fcode = pcode;
        va_start(ap, fmt);
        vsnprintf(rd->fmsg, sizeof(rd->fmsg), fmt, ap);
        va_end(ap);
}

#define MG_RD_BAD(rd, ...)                                                    \
        mg_rd_field((rd), MG_ERR_INVALID, MG_PROTO_ERR_BAD_FIELD, __VA_ARGS__)
#define MG_RD_BIG(rd, ...)                                                    \
        mg_rd_field((rd), MG_ERR_TOOBIG, MG_PROTO_ERR_TOO_BIG, __VA_ARGS__)

static inline void mg_rd_ws(struct mg_proto_rd *rd) {
        while (rd->p < rd->end && (*rd->p == ' ' || *rd->p == '\n' ||
                                   *rd->p == '\r' || *rd->p == '\t'))
                rd->p++;
}

/* The next byte after whitespace, or -1 at the end. */
static inline int mg_rd_peek(struct mg_proto_rd *rd) {
        mg_rd_ws(rd);
        return rd->p < rd->end ? (unsigned char)*rd->p : -1;
}

static int mg_rd_hex4(const char *p, unsigned *out) {
        unsigned v = 0;
        int i;

        for (i = 0; i < 4; i++) {
                char c = p[i];

                v <<= 4;
                if (c >= '0' && c <= '9')
                        v |= (unsigned)(c - '0');
                else if (c >= 'a' && c <= 'f')
                        v |= (unsigned)(c - 'a' + 10);
                else if (c >= 'A' && c <= 'F')
                        v |= (unsigned)(c - 'A' + 10);
                else
                        return -1;
        }
        *out = v;
        return 0;
}

/* The string at the cursor (on its '"'), decoded: up to cap bytes go to
 * dst (may be NULL), *lenp gets the whole decoded length and *nulp
 * whether it holds a NUL. Validates escapes, surrogate pairs and UTF-8
 * as jansson does. */
static int mg_rd_string(struct mg_proto_rd *rd, char *dst, size_t cap,
                        size_t *lenp, int *nulp) {
        const unsigned char *p = (const unsigned char *)rd->p + 1;
        const unsigned char *end = (const unsigned char *)rd->end, *run;
        unsigned char u[4];
        unsigned cp, lo;
        size_t n = 0, k;

        *nulp = 0;
        for (;;) {
                for (run = p; p < end && !mg_rd_class[*p]; p++)
                        ;
                if (p > run) {
                        k = (size_t)(p - run);
                        if (dst && n < cap)
                                memcpy(dst + n, run, k < cap - n ? k : cap - n);
                        n += k;
                }
                if (p >= end)
                        return mg_rd_syntax(rd, (const char *)p,
                                            "unterminated string");
                if (*p == '"')
                        break;
                if (*p < 0x20)
                        return mg_rd_syntax(rd, (const char *)p,
                                            "control character in string");
                if (*p >= 0x80) {
                        k = mg_w_utf8(p, (size_t)(end - p));
                        if (!k)
                                return mg_rd_syntax(rd, (const char *)p,
                                                    "invalid UTF-8");
                        memcpy(u, p, k);
                        p += k;
                        goto append;
                }
                /* A backslash escape. */
                if (end - p < 2)
                        return mg_rd_syntax(rd, (const char *)p,
                                            "unterminated string");
                k = 1;
                switch (p[1]) {
                case '"':
                case '\\':
                case '/':
                        u[0] = p[1];
                        break;
                case 'b':
                        u[0] = '\b';
                        break;
                case 'f':
                        u[0] = '\f';
                        break;
                case 'n':
                        u[0] = '\n';
                        break;
                case 'r':
                        u[0] = '\r';
                        break;
                case 't':
                        u[0] = '\t';
                        break;
                case 'u':
                        if (end - p < 6 ||
                            mg_rd_hex4((const char *)p + 2, &cp))
                                return mg_rd_syntax(rd, (const char *)p,
                                                    "invalid \\u escape");
                        if (cp >= 0xdc00 && cp <= 0xdfff)
                                return mg_rd_syntax(rd, (const char *)p,
                                                    "lone low surrogate");
                        if (cp >= 0xd800 && cp <= 0xdbff) {
                                if (end - p < 12 || p[6] != '\\' ||
                                    p[7] != 'u' ||
                                    mg_rd_hex4((const char *)p + 8, &lo) ||
                                    lo < 0xdc00 || lo > 0xdfff)
                                        return mg_rd_syntax(
                                                rd, (const char *)p,
                                                "unpaired high surrogate");
                                cp = 0x10000 + ((cp - 0xd800) << 10) +
                                     (lo - 0xdc00);
                                p += 6;
                        }
                        p += 4;
                        if (cp == 0)
                                *nulp = 1;
                        if (cp < 0x80) {
                                u[0] = (unsigned char)cp;
                        } else if (cp < 0x800) {
                                u[0] = (unsigned char)(0xc0 | (cp >> 6));
                                u[1] = (unsigned char)(0x80 | (cp & 0x3f));
                                k = 2;
                        } else if (cp < 0x10000) {
                                u[0] = (unsigned char)(0xe0 | (cp >> 12));
                                u[1] = (unsigned char)(0x80 |
                                                       ((cp >> 6) & 0x3f));
                                u[2] = (unsigned char)(0x80 | (cp & 0x3f));
                                k = 3;
                        } else {
                                u[0] = (unsigned char)(0xf0 | (cp >> 18));
                                u[1] = (unsigned char)(0x80 |
                                                       ((cp >> 12) & 0x3f));
                                u[2] = (unsigned char)(0x80 |
                                                       ((cp >> 6) & 0x3f));
                                u[3] = (unsigned char)(0x80 | (cp & 0x3f));
                                k = 4;
                        }
                        break;
                default:
                        return mg_rd_syntax(rd, (const char *)p,
                                            "invalid escape");
                }
                p += 2;
append:
                if (dst && n + k <= cap)
                        memcpy(dst + n, u, k);
                else if (dst && n < cap)
                        memcpy(dst + n, u, cap - n);
                n += k;
        }
        rd->p = (const char *)p + 1;
        *lenp = n;
        return 0;
}

/* The number at the cursor. JSON grammar; an integer (no fraction or
 * exponent) must fit in 64 bits and a real must not overflow a double, as
 * jansson requires. *intp says which; *ivp gets an integer's value. */
static int mg_rd_number(struct mg_proto_rd *rd, int *intp, int64_t *ivp) {
        const char *p = rd->p, *end = rd->end, *tok = rd->p;
        char small[64], *buf;
        uint64_t v = 0, lim;
        int neg = 0, is_int = 1, over = 0;
        size_t len;
        double d;

        if (p < end && *p == '-') {
                neg = 1;
                p++;
        }
        if (p >= end || *p < '0' || *p > '9')
                return mg_rd_syntax(rd, p, "invalid number");
        lim = (uint64_t)INT64_MAX + (uint64_t)neg;
        if (*p == '0') {
                p++;
        } else {
                for (; p < end && *p >= '0' && *p <= '9'; p++) {
                        unsigned dg = (unsigned)(*p - '0');

                        if (v > (lim - dg) / 10)
                                over = 1;
                        else
                                v = v * 10 + dg;
                }
        }
        if (p < end && *p == '.') {
                is_int = 0;
                p++;
                if (p >= end || *p < '0' || *p > '9')
                        return mg_rd_syntax(rd, p, "invalid number");
                while (p < end && *p >= '0' && *p <= '9')
                        p++;
        }
        if (p < end && (*p == 'e' || *p == 'E')) {
                is_int = 0;
                p++;
                if (p < end && (*p == '+' || *p == '-'))
                        p++;
                if (p >= end || *p < '0' || *p > '9')
                        return mg_rd_syntax(rd, p, "invalid number");
                while (p < end && *p >= '0' && *p <= '9')
                        p++;
        }
        if (is_int) {
                if (over)
                        return mg_rd_syntax(rd, tok,
                                            "integer does not fit in 64 "
                                            "bits");
                *ivp = neg ? (v == (uint64_t)INT64_MAX + 1
                                      ? INT64_MIN
                                      : -(int64_t)v)
                           : (int64_t)v;
        } else {
                /* strtod needs a terminated copy; a real this long is
                 * bizarre but legal, so take the heap then. */
                len = (size_t)(p - tok);
                buf = len < sizeof(small) ? small : malloc(len + 1);
                if (!buf)
                        return mg_rd_syntax(rd, tok, "out of memory");
                memcpy(buf, tok, len);
                buf[len] = '\0';
                d = strtod(buf, NULL);
                if (buf != small)
                        free(buf);
                if (isinf(d))
                        return mg_rd_syntax(rd, tok,
                                            "real number overflow");
        }
        *intp = is_int;
        rd->p = p;
        return 0;
}

/* Consume "null" at the cursor if it is there. */
static int mg_rd_null(struct mg_proto_rd *rd) {
        if (rd->end - rd->p >= 4 && !memcmp(rd->p, "null", 4)) {
                rd->p += 4;
                return 1;
        }
        return 0;
}

/* The literal (true, false, null) at the cursor. */
static int mg_rd_literal(struct mg_proto_rd *rd) {
        static const char *const lits[] = {"true", "false", "null"};
        size_t i, n, left = (size_t)(rd->end - rd->p);

        for (i = 0; i < 3; i++) {
                n = strlen(lits[i]);
                if (left >= n && !memcmp(rd->p, lits[i], n)) {
                        rd->p += n;
                        return 0;
                }
        }
        return mg_rd_syntax(rd, rd->p, "invalid token");
}

/* After a member's value: ',' (then *morep = 1) or the closing byte. */
static int mg_rd_next(struct mg_proto_rd *rd, char close, int *morep) {
        int c = mg_rd_peek(rd);

        if (c == ',') {
                rd->p++;
                *morep = 1;
                return 0;
        }
        if (c == close) {
                rd->p++;
                *morep = 0;
                return 0;
        }
        return mg_rd_syntax(rd, rd->p,
                            c < 0 ? "unexpected end of input"
                                  : close == '}' ? "expected ',' or '}'"
                                                 : "expected ',' or ']'");
}

/* A member's key at the cursor, then its ':'. The key is decoded into
 * key (cap - 1 bytes at most, NUL-terminated; *klenp the whole length). */
static int mg_rd_key(struct mg_proto_rd *rd, char *key, size_t cap,
                     size_t *klenp) {
        int nul;

        if (mg_rd_peek(rd) != '"')
                return mg_rd_syntax(rd, rd->p, "expected a string key");
        if (mg_rd_string(rd, key, cap - 1, klenp, &nul))
                return -1;
        if (nul) /* jansson refuses these whatever the flags */
                return mg_rd_syntax(rd, rd->p, "NUL byte in object key");
        key[*klenp < cap - 1 ? *klenp : cap - 1] = '\0';
        if (mg_rd_peek(rd) != ':')
                return mg_rd_syntax(rd, rd->p, "expected ':'");
        rd->p++;
        return 0;
}

/* Skip (and validate) one value at the cursor whose container is at
 * depth. Iterative: a bit per level says object or array. */
static int mg_rd_skip(struct mg_proto_rd *rd, int depth) {
        unsigned char is_obj[MG_PROTO_DEPTH_MAX / 8 + 1];
        int base = depth, c, more, in, nul;
        char key[1];
        size_t klen;

        for (;;) {
                c = mg_rd_peek(rd);
                /* jansson counts every value, scalars too. */
                if (depth + 1 > MG_PROTO_DEPTH_MAX)
                        return mg_rd_syntax(rd, rd->p, "too deeply nested");
                if (c == '{' || c == '[') {
                        depth++;
                        in = depth - base - 1;
                        if (c == '{')
                                is_obj[in / 8] |= (unsigned char)(1u << (in % 8));
                        else
                                is_obj[in / 8] &= (unsigned char)~(1u << (in % 8));
                        rd->p++;
                        if (mg_rd_peek(rd) == (c == '{' ? '}' : ']')) {
                                rd->p++;
                                depth--;
                                goto after;
                        }
                        if (c == '{' && mg_rd_key(rd, key, sizeof(key), &klen))
                                return -1;
                        continue;
                }
                if (c == '"') {
                        if (mg_rd_string(rd, NULL, 0, &klen, &nul))
                                return -1;
                } else if (c == '-' || (c >= '0' && c <= '9')) {
                        int is_int;
                        int64_t iv;

                        if (mg_rd_number(rd, &is_int, &iv))
                                return -1;
                } else if (c < 0) {
                        return mg_rd_syntax(rd, rd->p,
                                            "unexpected end of input");
                } else if (mg_rd_literal(rd)) {
                        return -1;
                }
after:
                if (depth == base)
                        return 0;
                in = depth - base - 1;
                c = (is_obj[in / 8] >> (in % 8)) & 1;
                if (mg_rd_next(rd, c ? '}' : ']', &more))
                        return -1;
                if (!more) {
                        depth--;
                        goto after;
                }
                if (c && mg_rd_key(rd, key, sizeof(key), &klen))
                        return -1;
        }
}

/* A string value into the arena (or NULL for null when optional). The
 * cursor is on the value. */
static int mg_rd_str(struct mg_proto_rd *rd, const char **field,
                     const char *name, int required, size_t cap) {
        struct mg_decide_req *req = rd->req;
        size_t room = MG_REQ_ARENA_SIZE - req->arena_used, len, avail;
        char *dst = req->arena + req->arena_used;
        int c = mg_rd_peek(rd), nul;

        *field = NULL;
        if (c != '"') {
                if (mg_rd_null(rd)) {
                        if (required)
                                MG_RD_BAD(rd, "field %s is missing", name);
                        return 0;
                }
                MG_RD_BAD(rd, "field %s: expected a string", name);
                return mg_rd_skip(rd, rd->depth);
        }
        /* One byte of the room is for the NUL. */
        avail = room > 0 ? room - 1 : 0;
        if (mg_rd_string(rd, dst, avail < cap ? avail : cap, &len, &nul))
                return -1;
        if (len > cap)
                MG_RD_BIG(rd, "field %s is %zu bytes, the limit is %zu", name,
                          len, cap);
        else if (len + 1 > room)
                MG_RD_BIG(rd, "request is larger than %d bytes (at field %s)",
                          MG_REQ_ARENA_SIZE, name);
        else if (nul)
                MG_RD_BAD(rd, "field %s contains a NUL byte", name);
        else if (required && len == 0)
                MG_RD_BAD(rd, "field %s is empty", name);
        else {
                dst[len] = '\0';
                req->arena_used += len + 1;
                *field = dst;
        }
        return 0;
}

/* An integer value in [min, max] (null: def, or missing when required). */
static int mg_rd_int(struct mg_proto_rd *rd, const char *name, int required,
                     int64_t min, int64_t max, int64_t def, int64_t *out) {
        const char *tok;
        int c = mg_rd_peek(rd), is_int;
        int64_t v;

        if (c == '-' || (c >= '0' && c <= '9')) {
                tok = rd->p;
                if (mg_rd_number(rd, &is_int, &v))
                        return -1;
                if (!is_int)
                        MG_RD_BAD(rd, "field %s: expected an integer", name);
                else if (v < min || v > max)
                        MG_RD_BAD(rd, "field %s: %.*s is out of range "
                                      "%" PRId64 "..%" PRId64,
                                  name, (int)(rd->p - tok), tok, min, max);
                else
                        *out = v;
                return 0;
        }
        if (mg_rd_null(rd)) {
                if (required)
                        MG_RD_BAD(rd, "field %s is missing", name);
                else
                        *out = def;
                return 0;
        }
        MG_RD_BAD(rd, "field %s: expected an integer", name);
        return mg_rd_skip(rd, rd->depth);
}

/* "id": a string, or a number kept as its text. */
static int mg_rd_id(struct mg_proto_rd *rd) {
        struct mg_decide_req *req = rd->req;
        const char *tok;
        int c = mg_rd_peek(rd), is_int;
        size_t len;
        int64_t v;

        if (c == '"') {
                /* mg_rd_str() sets the field only when it is usable. */
                if (mg_rd_str(rd, &req->id, "id", 0, MG_PROTO_ID_MAX))
                        return -1;
                if (!req->id)
                        rd->id_bad = 1;
                return 0;
        }
        if (c == '-' || (c >= '0' && c <= '9')) {
                tok = rd->p;
                if (mg_rd_number(rd, &is_int, &v))
                        return -1;
                len = (size_t)(rd->p - tok);
                if (len > MG_PROTO_ID_MAX) {
                        MG_RD_BIG(rd, "field id is %zu bytes, the limit is %d",
                                  len, MG_PROTO_ID_MAX);
                        rd->id_bad = 1;
                        return 0;
                }
                if (len + 1 > MG_REQ_ARENA_SIZE - req->arena_used) {
                        MG_RD_BIG(rd, "request is larger than %d bytes (at "
                                      "field id)",
                                  MG_REQ_ARENA_SIZE);
                        rd->id_bad = 1;
                        return 0;
                }
                memcpy(req->arena + req->arena_used, tok, len);
                req->arena[req->arena_used + len] = '\0';
                req->id = req->arena + req->arena_used;
                req->arena_used += len + 1;
                req->id_numeric = 1;
                return 0;
        }
        if (mg_rd_null(rd))
                return 0;
        MG_RD_BAD(rd, "field id: expected a string or a number");
        rd->id_bad = 1;
        return mg_rd_skip(rd, rd->depth);
}

/* "scopes": a non-empty array of scope strings. */
static int mg_rd_scopes(struct mg_proto_rd *rd) {
        struct mg_decide_req *req = rd->req;
        const char *s;
        char name[32];
        int c = mg_rd_peek(rd), more = 1, i = 0;
        size_t j, len;

        if (c != '[') {
                if (mg_rd_null(rd)) {
                        MG_RD_BAD(rd, "field scopes is missing");
                        return 0;
                }
                MG_RD_BAD(rd, "field scopes: expected an array of strings");
                return mg_rd_skip(rd, rd->depth);
        }
        rd->p++;
        if (mg_rd_peek(rd) == ']') {
                rd->p++;
                MG_RD_BAD(rd, "field scopes is empty");
                return 0;
        }
        rd->depth = 2;
        while (more) {
                snprintf(name, sizeof(name), "scopes[%d]", i);
                if (mg_rd_peek(rd) != '"') {
                        MG_RD_BAD(rd, "field %s: expected a string", name);
                        if (mg_rd_skip(rd, rd->depth))
                                return -1;
                } else if (req->scope_cnt == MG_REQ_SCOPES_MAX) {
                        MG_RD_BIG(rd, "field scopes has more than %d entries",
                                  MG_REQ_SCOPES_MAX);
                        if (mg_rd_skip(rd, rd->depth))
                                return -1;
                } else {
                        if (mg_rd_str(rd, &s, name, 1, MG_EVENT_STR_MAX))
                                return -1;
                        if (s) {
                                /* OAuth scope tokens have no spaces: "a b"
                                 * is two scopes sent as one, which no
                                 * policy would match as meant. */
                                len = strlen(s);
                                for (j = 0; j < len; j++)
                                        if ((unsigned char)s[j] <= 0x20 ||
                                            s[j] == 0x7f)
                                                break;
                                if (j < len)
                                        MG_RD_BAD(rd, "field %s contains %s "
                                                      "at byte %zu",
                                                  name,
                                                  s[j] == ' '
                                                          ? "a space (send "
                                                            "each scope "
                                                            "separately)"
                                                          : "a control "
                                                            "character",
                                                  j + 1);
                                else
                                        req->scopes[req->scope_cnt++] = s;
                        }
                }
                i++;
                if (mg_rd_next(rd, ']', &more))
                        return -1;
        }
        rd->depth = 1;
        return 0;
}

/* "context": an object (or null) with the optional context fields. */
static int mg_rd_context(struct mg_proto_rd *rd) {
        struct mg_decide_req *req = rd->req;
        const char **strs[2] = {&req->source_ip, &req->parent_token_id};
        char key[24];
        unsigned seen = 0;
        int c = mg_rd_peek(rd), more, k;
        int64_t depth = 0;
        size_t klen;

        if (c != '{') {
                if (mg_rd_null(rd))
                        return 0;
                MG_RD_BAD(rd, "field context: expected an object");
                return mg_rd_skip(rd, rd->depth);
        }
        rd->p++;
        if (mg_rd_peek(rd) == '}') {
                rd->p++;
                return 0;
        }
        rd->depth = 2;
        do {
                if (mg_rd_key(rd, key, sizeof(key), &klen))
                        return -1;
                for (k = 0; k < MG_PROTO_C__CNT; k++)
                        if (klen == strlen(mg_proto_ctx_keys[k]) &&
                            !memcmp(key, mg_proto_ctx_keys[k], klen))
                                break;
                if (k < MG_PROTO_C__CNT && (seen & (1u << k))) {
                        MG_RD_BAD(rd, "field %s appears twice",
                                  mg_proto_ctx_names[k]);
                        if (mg_rd_skip(rd, rd->depth))
                                return -1;
                } else if (k == MG_PROTO_C_EXCHANGE_DEPTH) {
                        seen |= 1u << k;
                        if (mg_rd_int(rd, mg_proto_ctx_names[k], 0, 0,
                                      MG_PROTO_EXCHANGE_DEPTH_MAX, 0, &depth))
                                return -1;
                        req->exchange_depth = (int)depth;
                } else if (k < MG_PROTO_C__CNT) {
                        seen |= 1u << k;
                        if (mg_rd_str(rd, strs[k], mg_proto_ctx_names[k], 0,
                                      MG_EVENT_STR_MAX))
                                return -1;
                } else if (mg_rd_skip(rd, rd->depth)) {
                        return -1;
                }
                if (mg_rd_next(rd, '}', &more))
                        return -1;
        } while (more);
        rd->depth = 1;
        return 0;
}

/* One member value of the request object, by key. */
static int mg_rd_member(struct mg_proto_rd *rd, int k) {
        struct mg_decide_req *req = rd->req;
        int64_t ttl = 0;

        switch (k) {
        case MG_PROTO_K_ID:
                return mg_rd_id(rd);
        case MG_PROTO_K_IDENTITY:
                return mg_rd_str(rd, &req->identity, "identity", 1,
                                 MG_EVENT_IDENTITY_MAX);
        case MG_PROTO_K_CLIENT_ID:
                return mg_rd_str(rd, &req->client_id, "client_id", 1,
                                 MG_EVENT_STR_MAX);
        case MG_PROTO_K_RESOURCE:
                return mg_rd_str(rd, &req->resource, "resource", 1,
                                 MG_EVENT_STR_MAX);
        case MG_PROTO_K_SCOPES:
                return mg_rd_scopes(rd);
        case MG_PROTO_K_GRANT_TYPE:
                return mg_rd_str(rd, &req->grant_type, "grant_type", 1,
                                 MG_EVENT_STR_MAX);
        case MG_PROTO_K_TTL:
                if (mg_rd_int(rd, "ttl", 1, 1, MG_PROTO_TTL_MAX, 0, &ttl))
                        return -1;
                req->ttl = ttl;
                return 0;
        case MG_PROTO_K_CONTEXT:
                return mg_rd_context(rd);
        default:
                return mg_rd_skip(rd, rd->depth);
        }
}

/* The request object and nothing after it but whitespace. */
static int mg_rd_request(struct mg_proto_rd *rd) {
        char key[24];
        int more, k;
        size_t klen;

        if (mg_rd_peek(rd) != '{')
                return mg_rd_syntax(rd, rd->p,
                                    rd->p < rd->end ? "expected a JSON object"
                                                    : "empty request");
        rd->p++;
        rd->depth = 1;
        if (mg_rd_peek(rd) == '}') {
                rd->p++;
                more = 0;
        } else {
                more = 1;
        }
        while (more) {
                if (mg_rd_key(rd, key, sizeof(key), &klen))
                        return -1;
                for (k = 0; k < MG_PROTO_K__CNT; k++)
                        if (klen == strlen(mg_proto_keys[k]) &&
                            !memcmp(key, mg_proto_keys[k], klen))
                                break;
                if (k < MG_PROTO_K__CNT && (rd->seen & (1u << k))) {
                        MG_RD_BAD(rd, "field %s appears twice",
                                  mg_proto_keys[k]);
                        if (k == MG_PROTO_K_ID) {
                                rd->req->id = NULL; /* which one? */
                                rd->req->id_numeric = 0;
                                rd->id_bad = 1;
                        }
                        if (mg_rd_skip(rd, rd->depth))
                                return -1;
                } else {
                        if (k < MG_PROTO_K__CNT)
                                rd->seen |= 1u << k;
                        if (mg_rd_member(rd, k))
                                return -1;
                }
                if (mg_rd_next(rd, '}', &more))
                        return -1;
        }
        if (mg_rd_peek(rd) >= 0)
                return mg_rd_syntax(rd, rd->p, "data after the object");
        return 0;
}

mg_err_t mg_proto_parse_request(struct mg_decide_req *req, const char *line,
                                size_t len, char *code, size_t code_size,
                                char *errstr, size_t errstr_size) {
        struct mg_proto_rd rd;
        const char *pcode = NULL;
        mg_err_t err = MG_OK;
        int k;

        /* Everything before the arena; the arena is rewound, not wiped. */
        memset(req, 0, offsetof(struct mg_decide_req, arena));
        if (code && code_size > 0)
                code[0] = '\0';
        if (len > MG_PROTO_LINE_MAX) {
                err = MG_ERR_TOOBIG;
                pcode = MG_PROTO_ERR_TOO_BIG;
                if (errstr && errstr_size > 0)
                        snprintf(errstr, errstr_size,
                                 "request is %zu bytes, the limit is %d", len,
                                 MG_PROTO_LINE_MAX);
                goto out;
        }
        memset(&rd, 0, sizeof(rd));
        rd.start = rd.p = line;
        rd.end = line + len;
        rd.req = req;
        if (mg_rd_request(&rd)) {
                /* Not JSON: nothing in it can be trusted, the id neither. */
                req->id = NULL;
                req->id_numeric = 0;
                err = MG_ERR_INVALID;
                pcode = MG_PROTO_ERR_BAD_JSON;
                if (errstr && errstr_size > 0)
                        snprintf(errstr, errstr_size,
                                 "invalid JSON at byte %zu: %s", rd.jpos + 1,
                                 rd.jerr);
                goto out;
        }
        for (k = MG_PROTO_K_IDENTITY; !rd.ferr && k < MG_PROTO_K_CONTEXT; k++)
                if (!(rd.seen & (1u << k)))
                        MG_RD_BAD(&rd, "field %s is missing",
                                  mg_proto_keys[k]);
        if (rd.ferr) {
                err = rd.ferr;
                pcode = rd.fcode;
                if (errstr && errstr_size > 0)
                        snprintf(errstr, errstr_size, "%s", rd.fmsg);
                if (rd.id_bad) {
                        req->id = NULL;
                        req->id_numeric = 0;
                }
        }
out:
        if (pcode && code && code_size > 0)
                snprintf(code, code_size, "%s", pcode);
        return err;
}

/*
 * Writing.
 */

/* Output into the caller's buffer; len keeps counting past size so the
 * caller learns what would have been needed. */
struct mg_proto_w {
        char *p;     /* caller's buffer */
        size_t size; /* its size */
        size_t len;  /* bytes written, or that would have been */
};

static inline void mg_w_put(struct mg_proto_w *w, const char *s, size_t n) {
        if (w->len < w->size && n < w->size - w->len)
                memcpy(w->p + w->len, s, n);
        w->len += n;
}

#define MG_W_LIT(w, lit) mg_w_put((w), (lit), sizeof(lit) - 1)

/* Byte classes for strings: 0 copy as is, 1 escape, 2 start of a
 * multi-byte sequence (or invalid) to check. */
static const unsigned char mg_w_class[256] = {
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x00 */
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x10 */
        0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x20 '"' */
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, /* 0x50 '\\' */
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x7f as is */
        2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 0x80 */
        2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
        2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
        2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
        2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 0xc0 */
        2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
        2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 0xe0 */
        2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0 when the
 * bytes there are not one (overlong forms, surrogates and code points past
 * U+10FFFF are invalid, as jansson judges them). */
static size_t mg_w_utf8(const unsigned char *s, size_t n) {
        uint32_t cp;
        size_t len, i;

        if (s[0] >= 0xc2 && s[0] <= 0xdf) {
                len = 2;
                cp = s[0] & 0x1f;
        } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
                len = 3;
                cp = s[0] & 0x0f;
        } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
                len = 4;
                cp = s[0] & 0x07;
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

/* A JSON string (quoted); NULL as null. */
static void mg_w_str(struct mg_proto_w *w, const char *str) {
        static const char hex[] = "0123456789abcdef";
        const unsigned char *p = (const unsigned char *)str;
        size_t n, k;
        char esc[6];

        if (!str) {
                MG_W_LIT(w, "null");
                return;
        }
        n = strlen(str);
        MG_W_LIT(w, "\"");
        while (n > 0) {
                for (k = 0; k < n && !mg_w_class[p[k]]; k++)
                        ;
                if (k > 0) {
                        mg_w_put(w, (const char *)p, k);
                        p += k;
                        n -= k;
                        continue;
                }
                k = 1;
                switch (*p) {
                case '"':
                        MG_W_LIT(w, "\\\"");
                        break;
                case '\\':
                        MG_W_LIT(w, "\\\\");
                        break;
                case '\n':
                        MG_W_LIT(w, "\\n");
                        break;
                case '\r':
                        MG_W_LIT(w, "\\r");
                        break;
                case '\t':
                        MG_W_LIT(w, "\\t");
                        break;
                default:
                        if (*p < 0x20) {
                                esc[0] = '\\';
                                esc[1] = 'u';
                                esc[2] = '0';
                                esc[3] = '0';
                                esc[4] = hex[*p >> 4];
                                esc[5] = hex[*p & 15];
                                mg_w_put(w, esc, 6);
                        } else if ((k = mg_w_utf8(p, n)) > 0) {
                                mg_w_put(w, (const char *)p, k);
                        } else {
                                MG_W_LIT(w, "\xef\xbf\xbd");
                                k = 1;
                        }
                        break;
                }
                p += k;
                n -= k;
        }
        MG_W_LIT(w, "\"");
}

static void mg_w_int(struct mg_proto_w *w, int64_t v) {
        char buf[24], *e = buf + sizeof(buf), *b = e;
        uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

        do {
                *--b = (char)('0' + u % 10);
                u /= 10;
        } while (u);
        if (v < 0)
                *--b = '-';
        mg_w_put(w, b, (size_t)(e - b));
}

/* round(v * 100) / 100 with exactly two decimals (fixed set) or with
 * trailing zeros and a bare '.' dropped (fixed clear). Non-finite values
 * are 0 (never valid JSON otherwise); beyond +-1e15 the value is clamped,
 * far past any risk or points. */
static void mg_w_num2(struct mg_proto_w *w, double v, int fixed) {
        char buf[32], *e = buf + sizeof(buf), *b = e;
        long long h;
        uint64_t u;
        int neg, i;

        if (!isfinite(v))
                v = 0;
        if (v > 1e15)
                v = 1e15;
        if (v < -1e15)
                v = -1e15;
        h = llround(v * 100);
        neg = h < 0;
        u = neg ? 0 - (uint64_t)h : (uint64_t)h;
        for (i = 0; i < 2; i++) {
                *--b = (char)('0' + u % 10);
                u /= 10;
        }
        *--b = '.';
        do {
                *--b = (char)('0' + u % 10);
                u /= 10;
        } while (u);
        if (neg)
                *--b = '-';
        if (!fixed) {
                if (e[-1] == '0') {
                        e--;
                        if (e[-1] == '0')
                                e -= 2; /* and the '.' */
                }
        }
        mg_w_put(w, b, (size_t)(e - b));
}

/* "id": as the response echoes it. */
static void mg_w_id(struct mg_proto_w *w, const struct mg_decide_req *req) {
        if (!req || !req->id)
                MG_W_LIT(w, "null");
        else if (req->id_numeric)
                mg_w_put(w, req->id, strlen(req->id));
        else
                mg_w_str(w, req->id);
}

static void mg_w_scopes(struct mg_proto_w *w, const char *const *scopes,
                        int cnt) {
        int i;

        MG_W_LIT(w, "[");
        for (i = 0; i < cnt; i++) {
                if (i)
                        MG_W_LIT(w, ",");
                mg_w_str(w, scopes[i] ? scopes[i] : "");
        }
        MG_W_LIT(w, "]");
}

static void mg_w_reasons(struct mg_proto_w *w, const struct mg_decision *d,
                         int fixed) {
        const struct mg_decision_reason *r;
        char s[sizeof(r->signal)], det[sizeof(r->detail)];
        int i;

        MG_W_LIT(w, "[");
        for (i = 0; i < d->reason_cnt; i++) {
                r = &d->reasons[i];
                /* Fixed arrays: never trust them to be terminated. */
                memcpy(s, r->signal, sizeof(s));
                s[sizeof(s) - 1] = '\0';
                memcpy(det, r->detail, sizeof(det));
                det[sizeof(det) - 1] = '\0';
                if (i)
                        MG_W_LIT(w, ",");
                MG_W_LIT(w, "{\"signal\":");
                mg_w_str(w, s);
                MG_W_LIT(w, ",\"points\":");
                mg_w_num2(w, r->points, fixed);
                MG_W_LIT(w, ",\"detail\":");
                mg_w_str(w, det);
                MG_W_LIT(w, "}");
        }
        MG_W_LIT(w, "]");
}

/* The decision's policy name, or NULL (null on the wire) for none. */
static const char *mg_w_policy(const struct mg_decision *d, char *buf,
                               size_t size) {
        memcpy(buf, d->policy, size);
        buf[size - 1] = '\0';
        return buf[0] ? buf : NULL;
}

static int mg_w_check(const struct mg_decision *d) {
        return (unsigned)d->outcome < MG_DECISION__CNT &&
               (unsigned)d->level <= MG_RISK_CRITICAL && d->scope_cnt >= 0 &&
               d->scope_cnt <= MG_REQ_SCOPES_MAX && d->reason_cnt >= 0 &&
               d->reason_cnt <= MG_DECISION_REASONS_MAX;
}

/* NUL-terminate and report. */
static mg_err_t mg_w_finish(struct mg_proto_w *w, size_t *lenp) {
        if (lenp)
                *lenp = w->len;
        if (w->len >= w->size)
                return MG_ERR_TOOBIG;
        w->p[w->len] = '\0';
        return MG_OK;
}

mg_err_t mg_proto_format_response(const struct mg_decide_req *req,
                                  const struct mg_decision *d,
                                  const char *signature, char *buf,
                                  size_t size, size_t *lenp) {
        struct mg_proto_w w = {buf, size, 0};
        char policy[sizeof(d->policy)], did[sizeof(d->decision_id)];

        if (!mg_w_check(d))
                return MG_ERR_INVALID;
        MG_W_LIT(&w, "{\"id\":");
        mg_w_id(&w, req);
        MG_W_LIT(&w, ",\"decision\":\"");
        mg_w_put(&w, mg_outcome_names[d->outcome],
                 strlen(mg_outcome_names[d->outcome]));
        MG_W_LIT(&w, "\",\"scopes\":");
        mg_w_scopes(&w, d->scopes, d->scope_cnt);
        MG_W_LIT(&w, ",\"ttl\":");
        mg_w_int(&w, d->ttl);
        MG_W_LIT(&w, ",\"risk\":");
        mg_w_num2(&w, d->risk, 0);
        MG_W_LIT(&w, ",\"level\":\"");
        mg_w_put(&w, mg_risk_level_names[d->level],
                 strlen(mg_risk_level_names[d->level]));
        MG_W_LIT(&w, "\",\"reasons\":");
        mg_w_reasons(&w, d, 0);
        MG_W_LIT(&w, ",\"policy\":");
        mg_w_str(&w, mg_w_policy(d, policy, sizeof(policy)));
        MG_W_LIT(&w, ",\"decision_id\":");
        memcpy(did, d->decision_id, sizeof(did));
        did[sizeof(did) - 1] = '\0';
        mg_w_str(&w, did);
        if (d->degraded)
                MG_W_LIT(&w, ",\"degraded\":true");
        else
                MG_W_LIT(&w, ",\"degraded\":false");
        if (signature) {
                MG_W_LIT(&w, ",\"signature\":");
                mg_w_str(&w, signature);
        }
        MG_W_LIT(&w, "}");
        return mg_w_finish(&w, lenp);
}

mg_err_t mg_proto_format_error(const struct mg_decide_req *req,
                               const char *code, const char *message,
                               char *buf, size_t size, size_t *lenp) {
        struct mg_proto_w w = {buf, size, 0};

        MG_W_LIT(&w, "{\"id\":");
        mg_w_id(&w, req);
        MG_W_LIT(&w, ",\"error\":{\"code\":");
        mg_w_str(&w, code ? code : MG_PROTO_ERR_INTERNAL);
        MG_W_LIT(&w, ",\"message\":");
        mg_w_str(&w, message ? message : "");
        MG_W_LIT(&w, "}}");
        return mg_w_finish(&w, lenp);
}

