/*
 * test_asn.c — unit tests of the prefix -> AS table (scoring/mg_asn.c).
 *
 * Lookups in both families, nested prefixes (the longest wins, also at the
 * edges of the address space), the two line formats (CIDR and CAIDA
 * pfx2as, multi-origin and AS sets), comments and line ends, every kind
 * of bad line named by file and line, loading from a file, and a
 * reference model: random tables of heavily nested prefixes looked up at
 * random addresses, compared with a plain longest-prefix match that scans
 * every prefix.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "mg_asn.h"

/* Load text, failing the test with the message if it does not load. */
static struct mg_asn *load(const char *text) {
        struct mg_asn *asn = NULL;
        char err[512];

        if (mg_asn_load_buf("t.txt", text, strlen(text), &asn, err,
                            sizeof(err)))
                fail_msg("load: %s", err);
        assert_non_null(asn);
        return asn;
}

/* The AS of a textual address. */
static uint32_t look(const struct mg_asn *asn, const char *ip) {
        unsigned char b[16];

        if (inet_pton(AF_INET, ip, b) == 1)
                return mg_asn_lookup(asn, 4, b);
        if (inet_pton(AF_INET6, ip, b) == 1)
                return mg_asn_lookup(asn, 6, b);
        fail_msg("bad test address %s", ip);
        return 0;
}

static void test_v4_v6(void **state) {
        struct mg_asn *asn = load("203.0.113.0/24 64500\n"
                                  "2001:db8::/32 64501\n"
                                  "198.51.100.0/25 64502\n");
        struct mg_asn_stats st;

        (void)state;
        assert_int_equal(look(asn, "203.0.113.0"), 64500);
        assert_int_equal(look(asn, "203.0.113.255"), 64500);
        assert_int_equal(look(asn, "203.0.112.255"), 0);
        assert_int_equal(look(asn, "203.0.114.0"), 0);
        assert_int_equal(look(asn, "198.51.100.127"), 64502);
        assert_int_equal(look(asn, "198.51.100.128"), 0);
        assert_int_equal(look(asn, "2001:db8::1"), 64501);
        assert_int_equal(look(asn, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"),
                         64501);
        assert_int_equal(look(asn, "2001:db9::"), 0);
        assert_int_equal(look(asn, "2001:db7:ffff::"), 0);
        assert_int_equal(look(asn, "::"), 0);
        assert_int_equal(look(asn, "0.0.0.0"), 0);
        assert_int_equal(look(asn, "255.255.255.255"), 0);
        /* IPv4-mapped IPv6 is looked up as IPv4. */
        assert_int_equal(look(asn, "::ffff:203.0.113.9"), 64500);
        /* The families do not mix: 203.0.113.0 as the first 32 bits of
         * an IPv6 address is not that IPv4 network. */
        assert_int_equal(look(asn, "cb00:7100::"), 0);
        /* Other families, and no table, have no AS. */
        assert_int_equal(mg_asn_lookup(asn, 5,
                                       (const unsigned char *)"\0\0\0\0"),
                         0);
        assert_int_equal(mg_asn_lookup(NULL, 4,
                                       (const unsigned char *)"\xcb\0\x71\1"),
                         0);
        mg_asn_stats_get(asn, &st);
        assert_int_equal(st.prefixes4, 2);
        assert_int_equal(st.prefixes6, 1);
        /* Gaps are ranges too: [0, 198.51.100.0), the /25, the gap, the
         * /24, the rest. */
        assert_int_equal(st.ranges4, 5);
        assert_int_equal(st.ranges6, 3);
        assert_true(st.bytes > 0);
        mg_asn_destroy(asn);
        mg_asn_destroy(NULL);
}

static void test_nested_longest_wins(void **state) {
        struct mg_asn *asn = load(
                /* Out of order on purpose: loading sorts. */
                "10.1.2.0/24 3\n"
                "0.0.0.0/0 1\n"
                "10.0.0.0/8 2\n"
                "10.1.2.128/25 4\n"
                "10.1.2.200/32 5\n"
                "10.1.3.0/24 2\n"     /* same AS as its parent: merges */
                "255.255.255.255/32 6\n"
                "::/0 7\n"
                "2001:db8::/32 8\n"
                "2001:db8:1::/48 9\n"
                "2001:db8:1:2::/64 10\n"
                "2001:db8:1:2::7/128 11\n"
                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00/120 12\n");
        struct mg_asn_stats st;

        (void)state;
        assert_int_equal(look(asn, "9.255.255.255"), 1);
        assert_int_equal(look(asn, "10.0.0.0"), 2);
        assert_int_equal(look(asn, "10.1.1.255"), 2);
        assert_int_equal(look(asn, "10.1.2.0"), 3);
        assert_int_equal(look(asn, "10.1.2.127"), 3);
        assert_int_equal(look(asn, "10.1.2.128"), 4);
        assert_int_equal(look(asn, "10.1.2.199"), 4);
        assert_int_equal(look(asn, "10.1.2.200"), 5);
        assert_int_equal(look(asn, "10.1.2.201"), 4);
        assert_int_equal(look(asn, "10.1.3.7"), 2);
        assert_int_equal(look(asn, "10.255.255.255"), 2);
        assert_int_equal(look(asn, "11.0.0.0"), 1);
        assert_int_equal(look(asn, "255.255.255.254"), 1);
        assert_int_equal(look(asn, "255.255.255.255"), 6);
        assert_int_equal(look(asn, "2001:db7::"), 7);
        assert_int_equal(look(asn, "2001:db8::"), 8);
        assert_int_equal(look(asn, "2001:db8:1::"), 9);
        assert_int_equal(look(asn, "2001:db8:1:2::6"), 10);
        assert_int_equal(look(asn, "2001:db8:1:2::7"), 11);
        assert_int_equal(look(asn, "2001:db8:1:2::8"), 10);
        assert_int_equal(look(asn, "2001:db8:1:3::"), 9);
        assert_int_equal(look(asn, "2001:db8:2::"), 8);
        assert_int_equal(look(asn, "2001:db9::"), 7);
        assert_int_equal(look(asn, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:feff"),
                         7);
        assert_int_equal(look(asn, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
                         12);
        mg_asn_stats_get(asn, &st);
        assert_int_equal(st.prefixes4, 7);
        /* 1 | 2 | 3 | 4 | 5 | 4 | 2 (10.1.3.0/24 merged) | 1 | 6 */
        assert_int_equal(st.ranges4, 9);
        mg_asn_destroy(asn);
}

static void test_formats(void **state) {
        struct mg_asn *asn = load(
                "\xef\xbb\xbf# CAIDA RouteViews pfx2as and CIDR, mixed\r\n"
                "\r\n"
                "1.0.0.0\t24\t13335\r\n"
                "1.0.4.0\t22\t38803_56203\n"     /* multi-origin */
                "1.0.16.0\t24\t2519,7545\n"      /* AS set */
                "   # indented comment\n"
                "2a00:1450::\t32\t15169\n"
                "  203.0.113.0/24   AS64500   # trailing comment\n"
                "198.51.100.0/24\tas64501\n"
                "192.0.2.0/24 4294967295\n"
                "::ffff:100.64.0.0/106 64502\n"  /* mapped: 100.64.0.0/10 */
                "203.0.113.0/24 64500\n"         /* repeated, same AS */
                "2001:db8::/32 64503");          /* no final newline */

        (void)state;
        assert_int_equal(look(asn, "1.0.0.1"), 13335);
        assert_int_equal(look(asn, "1.0.7.255"), 38803);
        assert_int_equal(look(asn, "1.0.16.9"), 2519);
        assert_int_equal(look(asn, "2a00:1450:4001::1"), 15169);
        assert_int_equal(look(asn, "203.0.113.5"), 64500);
        assert_int_equal(look(asn, "198.51.100.5"), 64501);
        assert_int_equal(look(asn, "192.0.2.1"), 4294967295u);
        assert_int_equal(look(asn, "100.127.255.255"), 64502);
        assert_int_equal(look(asn, "::ffff:100.64.1.1"), 64502);
        assert_int_equal(look(asn, "2001:db8::1"), 64503);
        mg_asn_destroy(asn);
}

/* Every bad line is refused with the file, its line and what is wrong. */
static void test_bad_lines(void **state) {
        static const struct {
                const char *text; /* the file */
                const char *want; /* in the message */
        } cases[] = {
                {"203.0.113.0/24 64500\n203.0.113.0 64500\n",
                 "t.txt:2: prefix '203.0.113.0' has no /LENGTH"},
                {"203.0.113.0/24\n", "t.txt:1: '203.0.113.0/24' alone"},
                {"# c\n\n1.0.0.0 24 13335 x\n", "t.txt:3: more than 3 fields"},
                {"1.0.0.0/24 24 13335\n", "has a /LENGTH and a LENGTH field"},
                {"203.0.113/24 64500\n",
                 "t.txt:1: '203.0.113' is not an IPv4 or IPv6 address"},
                {"300.0.0.0/8 64500\n", "'300.0.0.0' is not an IPv4"},
                {"2001:db8::g/32 64500\n", "'2001:db8::g' is not an IPv4"},
                {"/24 64500\n", "'' is not an IPv4"},
                {"203.0.113.0/ 64500\n", "prefix length '' is not a number"},
                {"203.0.113.0/2x 64500\n", "prefix length '2x' is not"},
                {"203.0.113.0/33 64500\n",
                 "prefix length 33 is more than 32 for IPv4"},
                {"2001:db8::/129 64500\n",
                 "prefix length 129 is more than 128 for IPv6"},
                {"203.0.113.0/1000 64500\n", "prefix length '1000' is not"},
                {"203.0.113.5/24 64500\n",
                 "host bits set in '203.0.113.5/24' (the prefix is "
                 "203.0.113.0/24)"},
                {"2001:db8::1\t32\t64500\n",
                 "host bits set in '2001:db8::1' (the prefix is "
                 "2001:db8::/32)"},
                {"203.0.113.0/24 0\n", "AS 0 is never an origin"},
                {"203.0.113.0/24 4294967296\n",
                 "AS number 4294967296 is larger than 4294967295"},
                {"203.0.113.0/24 99999999999\n",
                 "'99999999999' is not an AS number"},
                {"203.0.113.0/24 AS\n", "'AS' is not an AS number"},
                {"203.0.113.0/24 -5\n", "'-5' is not an AS number"},
                {"203.0.113.0/24 1.10\n", "'1.10' is not an AS number"},
                {"203.0.113.0/24 64500_\n", "'64500_' is not an AS number"},
                {"203.0.113.0/24 64500_0\n", "AS 0 is never an origin"},
                {"203.0.113.0/24 64500\n\n203.0.113.0/24 64501\n",
                 "t.txt:3: 203.0.113.0/24 is AS64501 here but AS64500 on "
                 "line 1"},
                {"2001:db8::/32 1\n2001:db8::/32 2\n",
                 "t.txt:2: 2001:db8::/32 is AS2 here but AS1 on line 1"},
                {"", "t.txt: no prefixes"},
                {"# only comments\n\n", "t.txt: no prefixes"},
                {"203.0.113.0/24 64500\n1.0.0.0\x01/8 1\n",
                 "t.txt:2: '1.0.0.0?' is not an IPv4"},
        };
        struct mg_asn *asn;
        char err[512];
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
                err[0] = '\0';
                asn = (struct mg_asn *)&asn; /* must be reset to NULL */
                assert_int_equal(mg_asn_load_buf("t.txt", cases[i].text,
                                                 strlen(cases[i].text), &asn,
                                                 err, sizeof(err)),
                                 MG_ERR_CONFIG);
                assert_null(asn);
                if (!strstr(err, cases[i].want))
                        fail_msg("case %zu: \"%s\", want \"%s\"", i, err,
                                 cases[i].want);
        }
        /* A NUL byte, and a line past the length cap. */
        assert_int_equal(mg_asn_load_buf("t.txt", "1.0.0.0/8 1\n2\0", 14,
                                         &asn, err, sizeof(err)),
                         MG_ERR_CONFIG);
        assert_non_null(strstr(err, "t.txt:2: NUL byte"));
        {
                char *big = malloc(MG_ASN_LINE_MAX + 40);

                assert_non_null(big);
                memset(big, ' ', MG_ASN_LINE_MAX + 40);
                memcpy(big, "1.0.0.0/8 1", 11);
                assert_int_equal(mg_asn_load_buf("t.txt", big,
                                                 MG_ASN_LINE_MAX + 40, &asn,
                                                 err, sizeof(err)),
                                 MG_ERR_CONFIG);
                assert_non_null(strstr(err, "t.txt:1: line of"));
                free(big);
        }
}

static void test_load_file(void **state) {
        char path[] = "/tmp/mg-test-asn-XXXXXX", err[512];
        struct mg_asn *asn = NULL;
        FILE *fp;
        int fd;

        (void)state;
        fd = mkstemp(path);
        assert_true(fd >= 0);
        fp = fdopen(fd, "w");
        assert_non_null(fp);
        fputs("203.0.113.0/24 64500\n2001:db8::/32 64501\nbad line here\n",
              fp);
        fclose(fp);
        /* Errors name the file. */
        assert_int_equal(mg_asn_load_file(path, &asn, err, sizeof(err)),
                         MG_ERR_CONFIG);
        assert_non_null(strstr(err, path));
        assert_non_null(strstr(err, ":3: 'bad' is not an IPv4 or IPv6 "
                                    "address"));
        fp = fopen(path, "w");
        assert_non_null(fp);
        fputs("203.0.113.0/24 64500\n2001:db8::/32 64501\n", fp);
        fclose(fp);
        assert_int_equal(mg_asn_load_file(path, &asn, err, sizeof(err)),
                         MG_OK);
        assert_int_equal(look(asn, "203.0.113.1"), 64500);
        assert_int_equal(look(asn, "2001:db8::1"), 64501);
        mg_asn_destroy(asn);
        unlink(path);
        /* Missing file, directory. */
        assert_int_equal(mg_asn_load_file(path, &asn, err, sizeof(err)),
                         MG_ERR_CONFIG);
        assert_null(asn);
        assert_non_null(strstr(err, "No such file"));
        assert_int_equal(mg_asn_load_file("/tmp", &asn, err, sizeof(err)),
                         MG_ERR_CONFIG);
        assert_non_null(strstr(err, "/tmp: is a directory"));
}

/*
 * The reference model.
 */

static uint64_t rng = 20261123;

static uint64_t rnd(void) {
        uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);

        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

/* A prefix of the model: bytes, length, AS. */
struct rpfx {
        unsigned char b[16]; /* address, host bits zero */
        int len;             /* prefix length */
        uint32_t asn;        /* AS */
};

#define RPFX_MAX 600

/* Does p cover addr? Whole bytes, then the bits of the last one. */
static int covers(const struct rpfx *p, const unsigned char *addr) {
        int whole = p->len / 8, rest = p->len % 8;

        if (memcmp(p->b, addr, (size_t)whole))
                return 0;
        return rest == 0 ||
               !((p->b[whole] ^ addr[whole]) & (0xff00u >> rest) & 0xff);
}

/* Random bytes near base: the first `fixed` bits of base, the rest random,
 * so prefixes and addresses crowd into a small space and nest a lot. */
static void near_base(unsigned char *out, const unsigned char *base, int n,
                      int fixed) {
        int i;

        for (i = 0; i < n; i++)
                out[i] = (unsigned char)rnd();
        for (i = 0; i < fixed; i++) {
                unsigned bit = 0x80u >> (i % 8);

                out[i / 8] = (unsigned char)((out[i / 8] & ~bit) |
                                             (base[i / 8] & bit));
        }
}

static void model_round(int six, int cnt) {
        static struct rpfx p[RPFX_MAX];
        static char text[RPFX_MAX * 80];
        static const unsigned char base[16] = {0x20, 0x01, 0x0d, 0xb8, 0xc0,
                                               0xa8, 0x01, 0x02};
        int n = six ? 16 : 4, bits = 8 * n, i, j, k, best;
        size_t off = 0;
        char a[INET6_ADDRSTRLEN], err[512];
        unsigned char addr[16];
        struct mg_asn *asn;
        uint32_t want;

        for (i = 0; i < cnt; i++) {
                /* Lengths cluster near the fixed part, so they overlap. */
                int fixed = bits - 14;

                near_base(p[i].b, base, n, fixed);
                p[i].len = rnd() % 8 == 0 ? (int)(rnd() % (bits + 1))
                                          : fixed + (int)(rnd() % 15);
                if (p[i].len > bits)
                        p[i].len = bits;
                for (k = p[i].len; k < bits; k++)
                        p[i].b[k / 8] &= (unsigned char)~(0x80u >> (k % 8));
                /* Few ASes, so neighbours often share one and merge. */
                p[i].asn = 1 + (uint32_t)(rnd() % 6);
                /* Repeats of a prefix must keep its AS. */
                for (j = 0; j < i; j++)
                        if (p[j].len == p[i].len &&
                            !memcmp(p[j].b, p[i].b, (size_t)n))
                                p[i].asn = p[j].asn;
                inet_ntop(six ? AF_INET6 : AF_INET, p[i].b, a, sizeof(a));
                /* Both formats. */
                off += (size_t)snprintf(text + off, sizeof(text) - off,
                                        i % 3 ? "%s/%d %u\n" : "%s\t%d\t%u\n",
                                        a, p[i].len, p[i].asn);
        }
        if (mg_asn_load_buf("model", text, off, &asn, err, sizeof(err)))
                fail_msg("model table: %s", err);
        for (k = 0; k < 2000; k++) {
                /* Addresses near the prefixes, and at their edges. */
                if (k % 3 == 0) {
                        const struct rpfx *q = &p[rnd() % (uint64_t)cnt];

                        memcpy(addr, q->b, (size_t)n);
                        if (k % 2)
                                for (j = q->len; j < bits; j++)
                                        addr[j / 8] |=
                                                (unsigned char)(0x80u >>
                                                                (j % 8));
                } else {
                        near_base(addr, base, n, bits - 16);
                }
                if (!six && k % 97 == 0)
                        memset(addr, k % 2 ? 0xff : 0, 4);
                best = -1;
                for (i = 0; i < cnt; i++)
                        if (covers(&p[i], addr) &&
                            (best < 0 || p[i].len > p[best].len))
                                best = i;
                want = best < 0 ? 0 : p[best].asn;
                if (mg_asn_lookup(asn, six ? 6 : 4, addr) != want) {
                        inet_ntop(six ? AF_INET6 : AF_INET, addr, a,
                                  sizeof(a));
                        fail_msg("%s: AS%u, the plain match says AS%u", a,
                                 mg_asn_lookup(asn, six ? 6 : 4, addr),
                                 want);
                }
        }
        mg_asn_destroy(asn);
}

static void test_reference_model(void **state) {
        int r;

        (void)state;
        for (r = 0; r < 40; r++)
                model_round(r % 2, 1 + (int)(rnd() % RPFX_MAX));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_v4_v6),
                cmocka_unit_test(test_nested_longest_wins),
                cmocka_unit_test(test_formats),
                cmocka_unit_test(test_bad_lines),
                cmocka_unit_test(test_load_file),
                cmocka_unit_test(test_reference_model),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
