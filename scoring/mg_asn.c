/*
 * mg_asn.c — prefix -> origin AS table (see mg_asn.h).
 *
 * Design. Prefixes nest, and a lookup wants the longest one covering an
 * address. Rather than a trie walked bit by bit, loading flattens the
 * prefixes into the sorted list of points where the answer changes: range
 * i covers [start[i], start[i + 1]) and has one AS (0 for "no prefix").
 * A lookup is then a binary search over a plain array of start
 * addresses, narrowed first by a direct index on the address's top 16
 * bits (65537 entries per family, 512 KB in all), so a million ranges
 * cost a handful of probes in a few dozen neighbouring entries: no pointer
 * chasing, no allocation. IPv4 and IPv6 have a table each, IPv4 keys
 * being 32 bits, so a full pfx2as snapshot (about a million IPv4
 * prefixes) takes 8 bytes per IPv4 range and 20 per IPv6 range, some
 * 15-25 MB.
 *
 * Flattening: the prefixes of a family are sorted by (first address,
 * length), so a prefix comes after every prefix containing it; a sweep
 * keeps the stack of prefixes still open at the current address (each
 * nested in the one below, so at most 33 or 129 deep) and emits a
 * breakpoint whenever one opens or closes. Neighbouring ranges with the
 * same AS merge, which removes most nested more-specifics of real tables.
 *
 * Loading cost: reading and parsing lines (inet_pton mostly), then a
 * stable LSD radix sort over the key bytes (qsort's comparisons took
 * twice as long as everything else together), then the linear sweep.
 * While loading, an IPv4 prefix takes 16 bytes (32 with the sort's
 * scratch copy), an IPv6 one 32 (64).
 *
 * Workload: loaded once at start; looked up once per auth or usage event
 * by the scoring hot path, from any thread.
 */
#include "mg_asn.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* An address of up to 128 bits, most significant half first; IPv4 uses
 * lo only. */
struct asn_key {
        uint64_t hi; /* bits 127..64 */
        uint64_t lo; /* bits 63..0 */
};

/* A prefix of either family, as the sweep sees it; also how IPv6
 * prefixes are kept while loading. */
struct asn_pfx {
        struct asn_key start; /* first address (host bits zero) */
        uint32_t asn;         /* origin AS, > 0 */
        uint32_t line;        /* line it was read from, for errors */
        uint8_t len;          /* prefix length */
};

/* An IPv4 prefix while loading: 16 bytes, a full table has a million. */
struct asn_pfx4 {
        uint32_t start; /* first address (host bits zero) */
        uint32_t asn;   /* origin AS, > 0 */
        uint32_t line;  /* line it was read from, for errors */
        uint8_t len;    /* prefix length */
};

/* Entries of the top-16-bit index: one per value, and one past the end. */
#define ASN_INDEX (65536 + 1)

/* The table being built, one family. */
struct asn_ranges {
        int bits;              /* 32 or 128 */
        uint32_t *start4;      /* IPv4: first address of each range */
        struct asn_key *start6; /* IPv6: first address of each range */
        uint32_t *asn;         /* AS of each range, 0: none */
        size_t cnt;            /* in use */
        size_t cap;            /* allocated */
};

struct mg_asn {
        uint32_t *start4;       /* IPv4 range starts, ascending, [0] = 0 */
        uint32_t *asn4;         /* AS of each IPv4 range, 0: none */
        size_t cnt4;            /* IPv4 ranges, >= 1 */
        struct asn_key *start6; /* IPv6 range starts, ascending, [0] = :: */
        uint32_t *asn6;         /* AS of each IPv6 range, 0: none */
        size_t cnt6;            /* IPv6 ranges, >= 1 */
        /* idx4[h]: the range holding address h << 16 (h < 65536), and
         * idx4[65536] the last range; an address with top bits h lies in
         * ranges idx4[h]..idx4[h + 1]. idx6 the same over the top 16 bits
         * of IPv6 addresses. */
        uint32_t idx4[ASN_INDEX];
        uint32_t idx6[ASN_INDEX];
        size_t prefixes4;       /* distinct IPv4 prefixes loaded */
        size_t prefixes6;       /* distinct IPv6 prefixes loaded */
};

/* State of one load. */
struct asn_load {
        const char *name;         /* file name for messages */
        size_t line;              /* current line number */
        struct asn_pfx4 *p4;      /* IPv4 prefixes read */
        size_t cnt4, cap4;        /* entries in p4, allocated */
        struct asn_pfx *p6;       /* IPv6 prefixes read */
        size_t cnt6, cap6;        /* entries in p6, allocated */
        char *errstr;             /* caller's buffer */
        size_t errstr_size;       /* its size */
};

static const unsigned char asn_v4_mapped[12] = {0, 0, 0, 0, 0, 0,
                                                0, 0, 0, 0, 0xff, 0xff};

/*
 * 128-bit keys.
 */

static int key_cmp(struct asn_key a, struct asn_key b) {
        if (a.hi != b.hi)
                return a.hi < b.hi ? -1 : 1;
        return a.lo < b.lo ? -1 : a.lo > b.lo;
}

static int key_eq(struct asn_key a, struct asn_key b) {
        return a.hi == b.hi && a.lo == b.lo;
}

/* The host part of a /len in an address space of bits (32 or 128). */
static struct asn_key key_hostmask(int len, int bits) {
        struct asn_key m = {0, 0};

        if (bits == 32) {
                m.lo = len >= 32 ? 0 : 0xffffffffu >> len;
        } else if (len >= 64) {
                m.lo = len >= 128 ? 0 : ~0ULL >> (len - 64);
        } else {
                m.hi = len == 0 ? ~0ULL : ~0ULL >> len;
                m.lo = ~0ULL;
        }
        return m;
}

/* Last address of a prefix. */
static struct asn_key key_end(const struct asn_pfx *p, int bits) {
        struct asn_key m = key_hostmask(p->len, bits), e;

        e.hi = p->start.hi | m.hi;
        e.lo = p->start.lo | m.lo;
        return e;
}

/* The highest address of the space. */
static int key_is_max(struct asn_key k, int bits) {
        return bits == 32 ? k.lo == 0xffffffffu
                          : k.hi == ~0ULL && k.lo == ~0ULL;
}

/* k + 1; k must not be the highest address. */
static struct asn_key key_next(struct asn_key k) {
        if (++k.lo == 0)
                k.hi++;
        return k;
}

static struct asn_key key_from_bytes(const unsigned char *b, int n) {
        struct asn_key k = {0, 0};
        int i;

        for (i = 0; i < n; i++) {
                if (n == 16 && i < 8)
                        k.hi = k.hi << 8 | b[i];
                else
                        k.lo = k.lo << 8 | b[i];
        }
        return k;
}

/* "203.0.113.0/24" or "2001:db8::/32" for messages. */
static void asn_pfx_format(const struct asn_pfx *p, int bits, char *buf,
                           size_t size) {
        unsigned char b[16];
        char tmp[INET6_ADDRSTRLEN];
        int i;

        if (bits == 32) {
                for (i = 0; i < 4; i++)
                        b[i] = (unsigned char)(p->start.lo >> (24 - 8 * i));
                inet_ntop(AF_INET, b, tmp, sizeof(tmp));
        } else {
                for (i = 0; i < 8; i++) {
                        b[i] = (unsigned char)(p->start.hi >> (56 - 8 * i));
                        b[8 + i] = (unsigned char)(p->start.lo >>
                                                   (56 - 8 * i));
                }
                inet_ntop(AF_INET6, b, tmp, sizeof(tmp));
        }
        snprintf(buf, size, "%s/%u", tmp, p->len);
}

/*
 * Parsing.
 */

__attribute__((format(printf, 2, 3))) static mg_err_t
asn_fail(struct asn_load *ld, const char *fmt, ...) {
        char msg[320];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        return mg_err_set(MG_ERR_CONFIG, ld->errstr, ld->errstr_size,
                          "%s:%zu: %s", ld->name, ld->line, msg);
}

/* A field for a message: at most 48 bytes, unprintable bytes as '?'. */
static const char *asn_quote(const char *s, size_t len, char *buf,
                             size_t size) {
        size_t i, n = len < size - 4 ? len : size - 4;

        if (n > 48)
                n = 48;
        for (i = 0; i < n; i++)
                buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
        if (n < len)
                buf[i++] = '.', buf[i++] = '.', buf[i++] = '.';
        buf[i] = '\0';
        return buf;
}

/* A decimal of 1..maxdigits digits into *v; -1 if not. */
static int asn_decimal(const char *s, size_t len, size_t maxdigits,
                       uint64_t *v) {
        size_t i;

        if (len == 0 || len > maxdigits)
                return -1;
        *v = 0;
        for (i = 0; i < len; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -1;
                *v = *v * 10 + (uint64_t)(s[i] - '0');
        }
        return 0;
}

/* The ASN field: [AS]n, or a multi-origin "n_n" / AS set "n,n" whose first
 * AS counts. Every member must be a valid AS. */
static mg_err_t asn_parse_asn(struct asn_load *ld, const char *s, size_t len,
                              uint32_t *asnp) {
        const char *p = s, *end = s + len, *sep;
        char q[64];
        uint64_t v;
        int first = 1;

        if (len >= 2 && (p[0] == 'A' || p[0] == 'a') &&
            (p[1] == 'S' || p[1] == 's'))
                p += 2;
        for (;;) {
                for (sep = p; sep < end && *sep != '_' && *sep != ','; sep++)
                        ;
                /* 10 digits hold every 32-bit AS; more is not one. */
                if (asn_decimal(p, (size_t)(sep - p), 10, &v))
                        return asn_fail(ld,
                                        "'%s' is not an AS number (expected "
                                        "a decimal such as 64500, or "
                                        "13335_4826 for several origins)",
                                        asn_quote(s, len, q, sizeof(q)));
                if (v > UINT32_MAX)
                        return asn_fail(ld,
                                        "AS number %.*s is larger than "
                                        "4294967295",
                                        (int)(sep - p), p);
                if (v == 0)
                        return asn_fail(ld, "AS 0 is never an origin "
                                            "(RFC 7607)");
                if (first)
                        *asnp = (uint32_t)v;
                first = 0;
                if (sep == end)
                        return MG_OK;
                p = sep + 1;
        }
}

/* Make room for one more entry of elsize bytes in *arr. */
static mg_err_t asn_grow(struct asn_load *ld, void **arr, size_t cnt,
                         size_t *cap, size_t elsize) {
        size_t ncap;
        void *np;

        if (cnt < *cap)
                return MG_OK;
        ncap = *cap ? *cap * 2 : 4096;
        if (!(np = realloc(*arr, ncap * elsize)))
                return mg_err_set(MG_ERR_NOMEM, ld->errstr, ld->errstr_size,
                                  "%s: out of memory at line %zu", ld->name,
                                  ld->line);
        *arr = np;
        *cap = ncap;
        return MG_OK;
}

static mg_err_t asn_push(struct asn_load *ld, const struct asn_pfx *p,
                         int bits) {
        mg_err_t err;

        if (bits == 32) {
                struct asn_pfx4 *q;

                if ((err = asn_grow(ld, (void **)&ld->p4, ld->cnt4, &ld->cap4,
                                    sizeof(*ld->p4))))
                        return err;
                q = &ld->p4[ld->cnt4++];
                memset(q, 0, sizeof(*q));
                q->start = (uint32_t)p->start.lo;
                q->asn = p->asn;
                q->line = p->line;
                q->len = p->len;
                return MG_OK;
        }
        if ((err = asn_grow(ld, (void **)&ld->p6, ld->cnt6, &ld->cap6,
                            sizeof(*ld->p6))))
                return err;
        ld->p6[ld->cnt6++] = *p;
        return MG_OK;
}

/* One line without its line end: 0, 2 or 3 fields. */
static mg_err_t asn_parse_line(struct asn_load *ld, const char *s,
                               size_t len) {
        const char *f[3], *slash;
        size_t flen[3], alen, i = 0;
        char addr[INET6_ADDRSTRLEN + 1], q[64];
        unsigned char b[16];
        struct asn_pfx p;
        struct asn_key m;
        uint64_t v;
        int nf = 0, bits, six;
        mg_err_t err;

        if (memchr(s, '\0', len))
                return asn_fail(ld, "NUL byte in the line (not a text "
                                    "file?)");
        if (len > MG_ASN_LINE_MAX)
                return asn_fail(ld, "line of %zu bytes, longer than %d", len,
                                MG_ASN_LINE_MAX);
        for (i = 0; i < len && s[i] != '#';) {
                if (s[i] == ' ' || s[i] == '\t') {
                        i++;
                        continue;
                }
                if (nf == 3)
                        return asn_fail(ld,
                                        "more than 3 fields: expected "
                                        "'PREFIX ASN' or 'ADDRESS LENGTH "
                                        "ASN'");
                f[nf] = s + i;
                while (i < len && s[i] != ' ' && s[i] != '\t' && s[i] != '#')
                        i++;
                flen[nf] = (size_t)(s + i - f[nf]);
                nf++;
        }
        if (nf == 0)
                return MG_OK;
        if (nf == 1)
                return asn_fail(ld,
                                "'%s' alone: expected 'PREFIX ASN' (e.g. "
                                "203.0.113.0/24 64500) or 'ADDRESS LENGTH "
                                "ASN'",
                                asn_quote(f[0], flen[0], q, sizeof(q)));
        memset(&p, 0, sizeof(p));
        slash = memchr(f[0], '/', flen[0]);
        if (nf == 2 && !slash)
                return asn_fail(ld,
                                "prefix '%s' has no /LENGTH (e.g. "
                                "203.0.113.0/24)",
                                asn_quote(f[0], flen[0], q, sizeof(q)));
        if (nf == 3 && slash)
                return asn_fail(ld,
                                "'%s' has a /LENGTH and a LENGTH field too",
                                asn_quote(f[0], flen[0], q, sizeof(q)));
        alen = slash ? (size_t)(slash - f[0]) : flen[0];
        six = memchr(f[0], ':', alen) != NULL;
        if (alen > 0 && alen < sizeof(addr)) {
                memcpy(addr, f[0], alen);
                addr[alen] = '\0';
        } else {
                addr[0] = '\0';
        }
        if (!addr[0] || inet_pton(six ? AF_INET6 : AF_INET, addr, b) != 1)
                return asn_fail(ld, "'%s' is not an IPv4 or IPv6 address",
                                asn_quote(f[0], alen, q, sizeof(q)));
        bits = six ? 128 : 32;
        if (slash ? asn_decimal(slash + 1, flen[0] - alen - 1, 3, &v)
                  : asn_decimal(f[1], flen[1], 3, &v))
                return asn_fail(ld, "prefix length '%s' is not a number",
                                slash ? asn_quote(slash + 1,
                                                  flen[0] - alen - 1, q,
                                                  sizeof(q))
                                      : asn_quote(f[1], flen[1], q,
                                                  sizeof(q)));
        if (v > (uint64_t)bits)
                return asn_fail(ld, "prefix length %u is more than %d for %s",
                                (unsigned)v, bits, six ? "IPv6" : "IPv4");
        p.len = (uint8_t)v;
        /* ::ffff:a.b.c.d/96+n is the IPv4 a.b.c.d/n: lookups of mapped
         * addresses go to the IPv4 table. */
        if (six && p.len >= 96 && !memcmp(b, asn_v4_mapped, 12)) {
                six = 0;
                bits = 32;
                p.len = (uint8_t)(p.len - 96);
                memmove(b, b + 12, 4);
        }
        p.start = key_from_bytes(b, six ? 16 : 4);
        m = key_hostmask(p.len, bits);
        if ((p.start.hi & m.hi) || (p.start.lo & m.lo)) {
                char want[64];

                p.start.hi &= ~m.hi;
                p.start.lo &= ~m.lo;
                asn_pfx_format(&p, bits, want, sizeof(want));
                return asn_fail(ld,
                                "host bits set in '%s' (the prefix is %s)",
                                asn_quote(f[0], slash ? flen[0] : alen, q,
                                          sizeof(q)),
                                want);
        }
        if ((err = asn_parse_asn(ld, f[nf - 1], flen[nf - 1], &p.asn)))
                return err;
        p.line = (uint32_t)ld->line;
        return asn_push(ld, &p, bits);
}

/*
 * Flattening.
 */

/* Byte k of a prefix's sort key, 0 the least significant: the length,
 * then the address from its last byte to its first. */
static unsigned asn_key_byte4(const void *el, int k) {
        const struct asn_pfx4 *p = el;

        return k == 0 ? p->len : (p->start >> (8 * (k - 1))) & 0xff;
}

static unsigned asn_key_byte6(const void *el, int k) {
        const struct asn_pfx *p = el;

        if (k == 0)
                return p->len;
        k--;
        return (unsigned)((k < 8 ? p->start.lo >> (8 * k)
                                 : p->start.hi >> (8 * (k - 8))) &
                          0xff);
}

/* Stable LSD radix sort of cnt elements of elsize bytes by nbytes key
 * bytes: orders by (address, length) with repeats in line order. tmp has
 * room for cnt elements. A pass in which every element has the same byte
 * (IPv6 prefixes rarely reach the low 64 bits) is skipped. */
static void asn_radix_sort(void *arr, void *tmp, size_t cnt, size_t elsize,
                           int nbytes, unsigned (*byte)(const void *, int)) {
        unsigned char *src = arr, *dst = tmp, *t;
        size_t count[256], pos, c, i;
        int k, b;

        for (k = 0; k < nbytes && cnt > 1; k++) {
                memset(count, 0, sizeof(count));
                for (i = 0; i < cnt; i++)
                        count[byte(src + i * elsize, k)]++;
                if (count[byte(src, k)] == cnt)
                        continue;
                for (pos = 0, b = 0; b < 256; b++) {
                        c = count[b];
                        count[b] = pos;
                        pos += c;
                }
                for (i = 0; i < cnt; i++) {
                        const unsigned char *el = src + i * elsize;

                        memcpy(dst + count[byte(el, k)]++ * elsize, el,
                               elsize);
                }
                t = src;
                src = dst;
                dst = t;
        }
        if (src != arr)
                memcpy(arr, src, cnt * elsize);
}

/* Prefix i of a family's list, as the sweep sees it. */
static void asn_get(const struct asn_load *ld, int bits, size_t i,
                    struct asn_pfx *p) {
        if (bits == 128) {
                *p = ld->p6[i];
                return;
        }
        memset(p, 0, sizeof(*p));
        p->start.lo = ld->p4[i].start;
        p->asn = ld->p4[i].asn;
        p->line = ld->p4[i].line;
        p->len = ld->p4[i].len;
}

/* Sort a family's prefixes and drop repeats; a prefix given two
 * different ASes is an error naming both lines. */
static mg_err_t asn_sort(struct asn_load *ld, int bits) {
        size_t cnt = bits == 32 ? ld->cnt4 : ld->cnt6, i, n = 0;
        size_t elsize = bits == 32 ? sizeof(*ld->p4) : sizeof(*ld->p6);
        void *arr = bits == 32 ? (void *)ld->p4 : (void *)ld->p6, *tmp;
        struct asn_pfx prev = {{0, 0}, 0, 0, 0}, cur;

        if (cnt > 1) {
                if (!(tmp = malloc(cnt * elsize)))
                        return mg_err_set(MG_ERR_NOMEM, ld->errstr,
                                          ld->errstr_size,
                                          "%s: out of memory", ld->name);
                asn_radix_sort(arr, tmp, cnt, elsize, 1 + bits / 8,
                               bits == 32 ? asn_key_byte4 : asn_key_byte6);
                free(tmp);
        }
        for (i = 0; i < cnt; i++) {
                asn_get(ld, bits, i, &cur);
                if (n && key_eq(prev.start, cur.start) &&
                    prev.len == cur.len) {
                        if (prev.asn != cur.asn) {
                                char text[64];

                                asn_pfx_format(&cur, bits, text,
                                               sizeof(text));
                                ld->line = cur.line;
                                return asn_fail(ld,
                                                "%s is AS%u here but AS%u "
                                                "on line %u",
                                                text, cur.asn, prev.asn,
                                                prev.line);
                        }
                        continue;
                }
                if (bits == 32)
                        ld->p4[n] = ld->p4[i];
                else
                        ld->p6[n] = ld->p6[i];
                n++;
                prev = cur;
        }
        if (bits == 32)
                ld->cnt4 = n;
        else
                ld->cnt6 = n;
        return MG_OK;
}

/* The start of range i as a key. */
static struct asn_key asn_range_start(const struct asn_ranges *r, size_t i) {
        struct asn_key k = {0, 0};

        if (r->bits == 128)
                return r->start6[i];
        k.lo = r->start4[i];
        return k;
}

/* A new breakpoint: from k on, the AS is asn. One at the same address
 * replaces the previous one; one that does not change the AS is not
 * needed. */
static int asn_emit(struct asn_ranges *r, struct asn_key k, uint32_t asn) {
        if (r->cnt && key_eq(asn_range_start(r, r->cnt - 1), k))
                r->cnt--;
        if (r->cnt && r->asn[r->cnt - 1] == asn)
                return 0;
        if (r->cnt == r->cap) {
                size_t cap = r->cap ? r->cap * 2 : 1024;
                uint32_t *a;

                if (r->bits == 32) {
                        uint32_t *s = realloc(r->start4, cap * sizeof(*s));

                        if (!s)
                                return -1;
                        r->start4 = s;
                } else {
                        struct asn_key *s = realloc(r->start6,
                                                    cap * sizeof(*s));

                        if (!s)
                                return -1;
                        r->start6 = s;
                }
                if (!(a = realloc(r->asn, cap * sizeof(*a))))
                        return -1;
                r->asn = a;
                r->cap = cap;
        }
        if (r->bits == 32)
                r->start4[r->cnt] = (uint32_t)k.lo;
        else
                r->start6[r->cnt] = k;
        r->asn[r->cnt] = asn;
        r->cnt++;
        return 0;
}

/* Breakpoints of a family's sorted, distinct prefixes (see the file
 * comment). */
static int asn_flatten(const struct asn_load *ld, struct asn_ranges *r) {
        struct {
                struct asn_key end; /* last address of the prefix */
                uint32_t asn;       /* its AS */
        } open[129];
        struct asn_key zero = {0, 0};
        struct asn_pfx p;
        size_t i, cnt = r->bits == 32 ? ld->cnt4 : ld->cnt6;
        int depth = 0;

        if (asn_emit(r, zero, 0))
                return -1;
        for (i = 0; i < cnt; i++) {
                asn_get(ld, r->bits, i, &p);
                /* Close what ends before p (it cannot end at the top of
                 * the space: p starts after it). */
                while (depth > 0 &&
                       key_cmp(open[depth - 1].end, p.start) < 0) {
                        depth--;
                        if (asn_emit(r, key_next(open[depth].end),
                                     depth ? open[depth - 1].asn : 0))
                                return -1;
                }
                /* What is still open contains p: lengths strictly grow
                 * up the stack. */
                assert(depth <= r->bits);
                if (asn_emit(r, p.start, p.asn))
                        return -1;
                open[depth].end = key_end(&p, r->bits);
                open[depth].asn = p.asn;
                depth++;
        }
        while (depth > 0) {
                depth--;
                /* Ends at the top of the space: so do those below. */
                if (key_is_max(open[depth].end, r->bits))
                        continue;
                if (asn_emit(r, key_next(open[depth].end),
                             depth ? open[depth - 1].asn : 0))
                        return -1;
        }
        return 0;
}

/* Fill idx (ASN_INDEX entries) for a family's ranges. */
static void asn_index(const struct asn_ranges *r, uint32_t *idx) {
        struct asn_key at = {0, 0};
        size_t i = 0;
        uint32_t h;

        for (h = 0; h < ASN_INDEX - 1; h++) {
                if (r->bits == 32)
                        at.lo = (uint64_t)h << 16;
                else
                        at.hi = (uint64_t)h << 48;
                while (i + 1 < r->cnt &&
                       key_cmp(asn_range_start(r, i + 1), at) <= 0)
                        i++;
                idx[h] = (uint32_t)i;
        }
        idx[ASN_INDEX - 1] = (uint32_t)(r->cnt - 1);
}

/* Build the table of one family from its prefixes, then free them. */
static mg_err_t asn_build(struct asn_load *ld, struct mg_asn *asn, int bits) {
        struct asn_ranges r;
        mg_err_t err;

        memset(&r, 0, sizeof(r));
        r.bits = bits;
        if ((err = asn_sort(ld, bits)))
                return err;
        if (asn_flatten(ld, &r)) {
                free(r.start4);
                free(r.start6);
                free(r.asn);
                return mg_err_set(MG_ERR_NOMEM, ld->errstr, ld->errstr_size,
                                  "%s: out of memory", ld->name);
        }
        /* Ranges are at most 2 * prefixes + 1 and prefixes fewer than
         * bytes in the file: the index's 32 bits suffice. */
        assert(r.cnt >= 1 && r.cnt <= UINT32_MAX);
        if (bits == 32) {
                asn->prefixes4 = ld->cnt4;
                asn->cnt4 = r.cnt;
                asn->start4 = r.start4;
                asn->asn4 = r.asn;
                asn_index(&r, asn->idx4);
                free(ld->p4);
                ld->p4 = NULL;
                ld->cnt4 = ld->cap4 = 0;
        } else {
                asn->prefixes6 = ld->cnt6;
                asn->cnt6 = r.cnt;
                asn->start6 = r.start6;
                asn->asn6 = r.asn;
                asn_index(&r, asn->idx6);
                free(ld->p6);
                ld->p6 = NULL;
                ld->cnt6 = ld->cap6 = 0;
        }
        return MG_OK;
}

mg_err_t mg_asn_load_buf(const char *name, const char *buf, size_t len,
                         struct mg_asn **asnp, char *errstr,
                         size_t errstr_size) {
        struct asn_load ld;
        struct mg_asn *asn = NULL;
        const char *p = buf, *end = buf + len, *nl;
        size_t n;
        mg_err_t err = MG_OK;

        *asnp = NULL;
        memset(&ld, 0, sizeof(ld));
        ld.name = name ? name : "(asn table)";
        ld.errstr = errstr;
        ld.errstr_size = errstr_size;
        if (len > MG_ASN_FILE_MAX)
                return mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                  "%s: %zu bytes is larger than the %u byte "
                                  "limit for a prefix -> AS file",
                                  ld.name, len, MG_ASN_FILE_MAX);
        /* A UTF-8 byte order mark from an editor is not content. */
        if (len >= 3 && !memcmp(p, "\xef\xbb\xbf", 3))
                p += 3;
        while (p < end) {
                ld.line++;
                nl = memchr(p, '\n', (size_t)(end - p));
                n = (size_t)((nl ? nl : end) - p);
                if (n > 0 && p[n - 1] == '\r')
                        n--;
                if ((err = asn_parse_line(&ld, p, n)))
                        goto out;
                p = nl ? nl + 1 : end;
        }
        if (ld.cnt4 + ld.cnt6 == 0) {
                err = mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                 "%s: no prefixes (an empty file is likelier "
                                 "a failed download than an intent; leave "
                                 "scoring.asn_file empty for no AS data)",
                                 ld.name);
                goto out;
        }
        if (!(asn = calloc(1, sizeof(*asn)))) {
                err = mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                 "%s: out of memory", ld.name);
                goto out;
        }
        if ((err = asn_build(&ld, asn, 32)) ||
            (err = asn_build(&ld, asn, 128)))
                goto out;
out:
        free(ld.p4);
        free(ld.p6);
        if (err)
                mg_asn_destroy(asn);
        else
                *asnp = asn;
        return err;
}

mg_err_t mg_asn_load_file(const char *path, struct mg_asn **asnp,
                          char *errstr, size_t errstr_size) {
        struct stat st;
        FILE *fp = NULL;
        char *buf = NULL, *nb;
        size_t len = 0, cap, n;
        mg_err_t err = MG_OK;

        *asnp = NULL;
        if (!(fp = fopen(path, "rb")) || fstat(fileno(fp), &st) != 0) {
                err = mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                 "%s: %s", path, strerror(errno));
                goto out;
        }
        if (S_ISDIR(st.st_mode)) {
                err = mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                 "%s: is a directory, not a prefix -> AS "
                                 "file",
                                 path);
                goto out;
        }
        if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > MG_ASN_FILE_MAX) {
                err = mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                 "%s: %lld bytes is larger than the %u byte "
                                 "limit for a prefix -> AS file",
                                 path, (long long)st.st_size,
                                 MG_ASN_FILE_MAX);
                goto out;
        }
        /* The size is a hint (a pipe has none, a file may grow): read to
         * the end, one byte past the cap at most, which load_buf refuses
         * by name. */
        cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 65536;
        if (!(buf = malloc(cap)))
                goto oom;
        for (;;) {
                if (len == cap) {
                        if (cap > MG_ASN_FILE_MAX)
                                break;
                        cap = cap > MG_ASN_FILE_MAX / 2
                                      ? (size_t)MG_ASN_FILE_MAX + 1
                                      : cap * 2;
                        if (!(nb = realloc(buf, cap)))
                                goto oom;
                        buf = nb;
                }
                n = fread(buf + len, 1, cap - len, fp);
                if (n == 0)
                        break;
                len += n;
        }
        if (ferror(fp)) {
                err = mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                 "%s: %s", path, strerror(errno));
                goto out;
        }
        err = mg_asn_load_buf(path, buf, len, asnp, errstr, errstr_size);
        goto out;
oom:
        err = mg_err_set(MG_ERR_NOMEM, errstr, errstr_size, "%s: out of memory",
                         path);
out:
        if (fp)
                fclose(fp);
        free(buf);
        return err;
}

/* Index of the last range starting at or before a among ranges lo..hi
 * (start[lo] <= a). */
static size_t asn_search4(const uint32_t *start, size_t lo, size_t hi,
                          uint32_t a) {
        size_t mid;

        hi++;
        while (hi - lo > 1) {
                mid = lo + (hi - lo) / 2;
                if (start[mid] <= a)
                        lo = mid;
                else
                        hi = mid;
        }
        return lo;
}

static size_t asn_search6(const struct asn_key *start, size_t lo, size_t hi,
                          struct asn_key a) {
        size_t mid;

        hi++;
        while (hi - lo > 1) {
                mid = lo + (hi - lo) / 2;
                if (key_cmp(start[mid], a) <= 0)
                        lo = mid;
                else
                        hi = mid;
        }
        return lo;
}

uint32_t mg_asn_lookup(const struct mg_asn *asn, int family,
                       const unsigned char *addr) {
        struct asn_key k;
        uint32_t a, h;

        if (!asn)
                return 0;
        if (family == 6 && !memcmp(addr, asn_v4_mapped, 12)) {
                family = 4;
                addr += 12;
        }
        if (family == 4) {
                a = (uint32_t)addr[0] << 24 | (uint32_t)addr[1] << 16 |
                    (uint32_t)addr[2] << 8 | addr[3];
                h = a >> 16;
                return asn->asn4[asn_search4(asn->start4, asn->idx4[h],
                                             asn->idx4[h + 1], a)];
        }
        if (family == 6) {
                k = key_from_bytes(addr, 16);
                h = (uint32_t)(k.hi >> 48);
                return asn->asn6[asn_search6(asn->start6, asn->idx6[h],
                                             asn->idx6[h + 1], k)];
        }
        return 0;
}

void mg_asn_stats_get(const struct mg_asn *asn, struct mg_asn_stats *st) {
        memset(st, 0, sizeof(*st));
        if (!asn)
                return;
        st->prefixes4 = asn->prefixes4;
        st->prefixes6 = asn->prefixes6;
        st->ranges4 = asn->cnt4;
        st->ranges6 = asn->cnt6;
        st->bytes = sizeof(*asn) +
                    asn->cnt4 * (sizeof(*asn->start4) + sizeof(*asn->asn4)) +
                    asn->cnt6 * (sizeof(*asn->start6) + sizeof(*asn->asn6));
}

void mg_asn_destroy(struct mg_asn *asn) {
        if (!asn)
                return;
        free(asn->start4);
        free(asn->asn4);
        free(asn->start6);
        free(asn->asn6);
        free(asn);
}
