/*
 * test_proto.c — unit tests of the decision protocol codec
 * (decision/mg_proto.c): every error path of the request parser with its
 * code and message, what it decodes, the id kept for error objects, caps,
 * the exact bytes of responses and error objects,
 * string escaping (control characters, invalid UTF-8), buffer sizes, and
 * round trips through jansson, the reference JSON implementation.
 *
 * The last test times parse and format over a typical request and prints
 * the figures (they are only loosely bounded here: sanitizer builds are
 * several times slower than release ones).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>
#include <math.h>

#include "mg_proto.h"

static const char DESIGN_REQ[] =
        "{\"id\":\"r-17\",\"identity\":\"spiffe://corp/ci/deployer\","
        "\"client_id\":\"gh-actions\",\"resource\":\"api://deploy\","
        "\"scopes\":[\"deploy:write\",\"secrets:read\"],"
        "\"grant_type\":\"token_exchange\",\"ttl\":3600,"
        "\"context\":{\"source_ip\":\"198.51.100.4\","
        "\"parent_token_id\":\"t-91\"}}";

static struct mg_decide_req req;
static char code[32], errstr[512];
static char out[MG_PROTO_OUT_MAX];

static mg_err_t parse(const char *line) {
        code[0] = errstr[0] = '\0';
        return mg_proto_parse_request(&req, line, strlen(line), code,
                                      sizeof(code), errstr, sizeof(errstr));
}

/* A valid request with one member replaced or added: member is
 * "\"key\":value" text, put first (so later members are still parsed). */
static const char *with(const char *member) {
        static char line[4096];

        snprintf(line, sizeof(line),
                 "{%s%s\"identity\":\"i\",\"client_id\":\"c\","
                 "\"resource\":\"r\",\"scopes\":[\"a\"],"
                 "\"grant_type\":\"client_credentials\",\"ttl\":60}",
                 member, *member ? "," : "");
        return line;
}

/* The same without one required member. */
static const char *without(const char *key) {
        static const char *const members[] = {
                "\"identity\":\"i\"",   "\"client_id\":\"c\"",
                "\"resource\":\"r\"",   "\"scopes\":[\"a\"]",
                "\"grant_type\":\"g\"", "\"ttl\":60"};
        static char line[512];
        size_t i, o = 0;

        o += (size_t)snprintf(line + o, sizeof(line) - o, "{\"id\":\"x\"");
        for (i = 0; i < sizeof(members) / sizeof(*members); i++)
                if (strncmp(members[i] + 1, key, strlen(key)) ||
                    members[i][strlen(key) + 1] != '"')
                        o += (size_t)snprintf(line + o, sizeof(line) - o,
                                              ",%s", members[i]);
        snprintf(line + o, sizeof(line) - o, "}");
        return line;
}

static void expect_error(const char *line, mg_err_t err, const char *pcode,
                         const char *msg) {
        mg_err_t got = parse(line);

        if (got != err || strcmp(code, pcode) || !strstr(errstr, msg))
                fail_msg("line %.200s\n  want %d %s \"%s\"\n  got  %d %s "
                         "\"%s\"",
                         line, (int)err, pcode, msg, (int)got, code, errstr);
}

/*
 * Parsing.
 */

static void test_parse_design_request(void **state) {
        (void)state;
        assert_int_equal(parse(DESIGN_REQ), MG_OK);
        assert_string_equal(code, "");
        assert_string_equal(req.id, "r-17");
        assert_false(req.id_numeric);
        assert_string_equal(req.identity, "spiffe://corp/ci/deployer");
        assert_string_equal(req.client_id, "gh-actions");
        assert_string_equal(req.resource, "api://deploy");
        assert_int_equal(req.scope_cnt, 2);
        assert_string_equal(req.scopes[0], "deploy:write");
        assert_string_equal(req.scopes[1], "secrets:read");
        assert_string_equal(req.grant_type, "token_exchange");
        assert_int_equal(req.ttl, 3600);
        assert_string_equal(req.source_ip, "198.51.100.4");
        assert_string_equal(req.parent_token_id, "t-91");
        assert_int_equal(req.exchange_depth, 0);
        /* Strings live in the arena. */
        assert_true(req.identity >= req.arena &&
                    req.identity < req.arena + req.arena_used);
}

static void test_parse_optional_and_unknown(void **state) {
        (void)state;
        /* Optional members absent, null, unknown ones of every shape. */
        assert_int_equal(
                parse(" {\"identity\":\"i\",\"x\":{\"y\":[1,2.5e-3,true,"
                      "false,null,{\"identity\":5}]},\"client_id\":\"c\","
                      "\"resource\":\"r\",\"scopes\":[\"a\"],\"id\":null,"
                      "\"grant_type\":\"g\",\"ttl\":1,\"context\":null,"
                      "\"\":\"\",\"scopes_\":0}\r\n"),
                MG_OK);
        assert_null(req.id);
        assert_null(req.source_ip);
        assert_null(req.parent_token_id);
        assert_int_equal(req.exchange_depth, 0);
        assert_string_equal(req.identity, "i");
        assert_int_equal(parse(with("\"context\":{\"source_ip\":null,"
                                    "\"exchange_depth\":3,\"other\":[{}],"
                                    "\"parent_token_id\":\"p\"}")),
                         MG_OK);
        assert_null(req.source_ip);
        assert_string_equal(req.parent_token_id, "p");
        assert_int_equal(req.exchange_depth, 3);
        assert_int_equal(parse(with("\"context\":{}")), MG_OK);
        /* A reused request starts clean. */
        assert_int_equal(parse(with("")), MG_OK);
        assert_int_equal(req.exchange_depth, 0);
        assert_null(req.parent_token_id);
}

static void test_parse_escapes(void **state) {
        (void)state;
        assert_int_equal(
                parse(with("\"identity\":\"q\\\" b\\\\ s\\/ \\b\\f\\n\\r\\t "
                           "\\u00e9 \\u20AC \\ud83d\\ude00 \xc3\xa9 \x7f\"")),
                MG_ERR_INVALID); /* identity twice: it is in with() too */
        assert_int_equal(
                parse("{\"identity\":\"q\\\" b\\\\ s\\/ \\b\\f\\n\\r\\t "
                      "\\u00e9 \\u20AC \\ud83d\\ude00 \xc3\xa9 \x7f\","
                      "\"client_id\":\"c\",\"resource\":\"r\",\"scopes\":"
                      "[\"a\"],\"grant_type\":\"g\",\"ttl\":1}"),
                MG_OK);
        assert_string_equal(req.identity,
                            "q\" b\\ s/ \b\f\n\r\t \xc3\xa9 \xe2\x82\xac "
                            "\xf0\x9f\x98\x80 \xc3\xa9 \x7f");
        /* An escaped key is the same key. */
        assert_int_equal(parse(with("\"\\u0069d\":\"esc\"")), MG_OK);
        assert_string_equal(req.id, "esc");
}

static void test_parse_numeric_id(void **state) {
        static const char *const ids[] = {"17", "-3", "0", "-0", "1.50",
                                          "-2.5e+3", "1E2",
                                          "9223372036854775807"};
        char member[64];
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(ids) / sizeof(*ids); i++) {
                snprintf(member, sizeof(member), "\"id\":%s", ids[i]);
                assert_int_equal(parse(with(member)), MG_OK);
                assert_true(req.id_numeric);
                /* Its text, exactly as sent. */
                assert_string_equal(req.id, ids[i]);
        }
}

/* The id survives a bad field so the error object can echo it. */
static void test_parse_id_kept(void **state) {
        char line[600];

        (void)state;
        expect_error(with("\"id\":\"r-9\",\"ttl\":\"soon\""), MG_ERR_INVALID,
                     MG_PROTO_ERR_BAD_FIELD, "field ttl: expected an integer");
        assert_string_equal(req.id, "r-9");
        /* ... also when it comes after the bad field. */
        expect_error("{\"ttl\":0,\"id\":42}", MG_ERR_INVALID,
                     MG_PROTO_ERR_BAD_FIELD, "field ttl: 0 is out of range");
        assert_string_equal(req.id, "42");
        assert_true(req.id_numeric);
        /* ... and when required fields are missing. */
        expect_error("{\"id\":\"only\"}", MG_ERR_INVALID,
                     MG_PROTO_ERR_BAD_FIELD, "field identity is missing");
        assert_string_equal(req.id, "only");
        /* An unusable id is not kept. */
        expect_error(with("\"id\":{\"a\":1}"), MG_ERR_INVALID,
                     MG_PROTO_ERR_BAD_FIELD,
                     "field id: expected a string or a number");
        assert_null(req.id);
        expect_error(with("\"id\":true"), MG_ERR_INVALID,
                     MG_PROTO_ERR_BAD_FIELD, "field id: expected");
        assert_null(req.id);
        expect_error(with("\"id\":\"a\\u0000b\""), MG_ERR_INVALID,
                     MG_PROTO_ERR_BAD_FIELD, "field id contains a NUL byte");
        assert_null(req.id);
        memset(line, 0, sizeof(line));
        strcpy(line, "\"id\":\"");
        memset(line + 6, 'x', MG_PROTO_ID_MAX + 1);
        strcat(line, "\"");
        expect_error(with(line), MG_ERR_TOOBIG, MG_PROTO_ERR_TOO_BIG,
                     "field id is 257 bytes, the limit is 256");
        assert_null(req.id);
        expect_error("{\"id\":\"a\",\"id\":\"b\"}", MG_ERR_INVALID,
                     MG_PROTO_ERR_BAD_FIELD, "field id appears twice");
        assert_null(req.id);
        /* Not JSON: nothing is trusted. */
        expect_error("{\"id\":\"r-1\",\"ttl\":}", MG_ERR_INVALID,
                     MG_PROTO_ERR_BAD_JSON, "invalid JSON at byte 19");
        assert_null(req.id);
        /* Not JSON even after a bad field: bad_json wins. */
        expect_error("{\"id\":\"r-1\",\"ttl\":\"x\",}", MG_ERR_INVALID,
                     MG_PROTO_ERR_BAD_JSON, "expected a string key");
        assert_null(req.id);
}

static void test_parse_bad_json(void **state) {
        static const struct {
                const char *line;
                const char *msg;
        } cases[] = {
                {"", "invalid JSON at byte 1: empty request"},
                {" \n\t ", "empty request"},
                {"nope", "invalid JSON at byte 1: expected a JSON object"},
                {"[1]", "expected a JSON object"},
                {"\"s\"", "expected a JSON object"},
                {"17", "expected a JSON object"},
                {"{", "invalid JSON at byte 2: expected a string key"},
                {"{\"a\"", "expected ':'"},
                {"{\"a\":", "unexpected end of input"},
                {"{\"a\":1", "invalid JSON at byte 7: unexpected end of input"},
                {"{\"a\":1]", "invalid JSON at byte 7: expected ',' or '}'"},
                {"{\"a\":1,}", "invalid JSON at byte 8: expected a string key"},
                {"{\"a\":[1,]}", "invalid JSON at byte 9: invalid token"},
                {"{\"a\":[1 2]}", "expected ',' or ']'"},
                {"{} x", "invalid JSON at byte 4: data after the object"},
                {"{}{}", "data after the object"},
                {"{a:1}", "expected a string key"},
                {"{'a':1}", "expected a string key"},
                {"{\"a\":tru}", "invalid token"},
                {"{\"a\":nul}", "invalid token"},
                {"{\"a\":True}", "invalid token"},
                {"{\"a\":01}", "expected ',' or '}'"},
                {"{\"a\":-}", "invalid number"},
                {"{\"a\":1.}", "invalid number"},
                {"{\"a\":.5}", "invalid token"},
                {"{\"a\":1e}", "invalid number"},
                {"{\"a\":+1}", "invalid token"},
                {"{\"a\":NaN}", "invalid token"},
                {"{\"a\":Infinity}", "invalid token"},
                {"{\"a\":99999999999999999999}",
                 "integer does not fit in 64 bits"},
                {"{\"a\":-9223372036854775809}", "does not fit in 64 bits"},
                {"{\"a\":1e999}", "real number overflow"},
                {"{\"a\":\"x}", "unterminated string"},
                {"{\"a\":\"\x01\"}", "control character in string"},
                {"{\"a\":\"\t\"}", "control character in string"},
                {"{\"a\":\"\\x\"}", "invalid escape"},
                {"{\"a\":\"\\u12G4\"}", "invalid \\u escape"},
                {"{\"a\":\"\\u12\"}", "invalid \\u escape"},
                {"{\"a\":\"\\udc00\"}", "lone low surrogate"},
                {"{\"a\":\"\\ud800\"}", "unpaired high surrogate"},
                {"{\"a\":\"\\ud800\\u0041\"}", "unpaired high surrogate"},
                {"{\"a\":\"\xff\"}", "invalid UTF-8"},
                {"{\"a\":\"\xc0\x80\"}", "invalid UTF-8"},    /* overlong */
                {"{\"a\":\"\xed\xa0\x80\"}", "invalid UTF-8"}, /* surrogate */
                {"{\"a\":\"\xf4\x90\x80\x80\"}", "invalid UTF-8"},
                {"{\"a\":\"\xe2\x82\"}", "invalid UTF-8"}, /* truncated */
                {"{\"a\\u0000\":1}", "NUL byte in object key"},
                {"{\"a\":[{\"b\\u0000\":1}]}", "NUL byte in object key"},
                {"/*c*/{}", "expected a JSON object"},
                {"\xef\xbb\xbf{}", "expected a JSON object"}, /* BOM */
        };
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(*cases); i++)
                expect_error(cases[i].line, MG_ERR_INVALID,
                             MG_PROTO_ERR_BAD_JSON, cases[i].msg);
        /* A raw NUL byte is not JSON. */
        assert_int_equal(mg_proto_parse_request(&req, "{}\0", 3, code,
                                                sizeof(code), errstr,
                                                sizeof(errstr)),
                         MG_ERR_INVALID);
        assert_string_equal(code, MG_PROTO_ERR_BAD_JSON);
        /* The line need not be NUL-terminated: only len bytes are read. */
        assert_int_equal(mg_proto_parse_request(&req, DESIGN_REQ,
                                                strlen(DESIGN_REQ) - 1, code,
                                                sizeof(code), errstr,
                                                sizeof(errstr)),
                         MG_ERR_INVALID);
        assert_string_equal(code, MG_PROTO_ERR_BAD_JSON);
}

/* Nesting as deep as jansson takes it, and one more. jansson counts every
 * value: the request object is depth 1, its members' values 2, ... 2048. */
static const char *nested(int n, const char *inner) {
        static char line[16384];
        size_t o;
        int i;

        /* {"deep":[{"k":[ ... inner ... ]}]} with the innermost an array */
        o = (size_t)snprintf(line, sizeof(line), "{\"deep\":");
        for (i = 0; i < n; i++)
                o += (size_t)snprintf(line + o, sizeof(line) - o, "%s",
                                      (n - 1 - i) % 2 ? "{\"k\":" : "[");
        o += (size_t)snprintf(line + o, sizeof(line) - o, "%s", inner);
        for (i = n - 1; i >= 0; i--)
                line[o++] = (n - 1 - i) % 2 ? '}' : ']';
        snprintf(line + o, sizeof(line) - o,
                 ",\"identity\":\"i\",\"client_id\":\"c\",\"resource\":"
                 "\"r\",\"scopes\":[\"a\"],\"grant_type\":\"g\","
                 "\"ttl\":60}");
        return line;
}

static void test_parse_depth(void **state) {
        (void)state;
        assert_int_equal(parse(nested(2046, "0")), MG_OK);   /* 0 at 2048 */
        assert_int_equal(parse(nested(2047, "")), MG_OK);    /* [] at 2048 */
        expect_error(nested(2047, "0"), MG_ERR_INVALID, MG_PROTO_ERR_BAD_JSON,
                     "too deeply nested");
        expect_error(nested(2047, "[]"), MG_ERR_INVALID, MG_PROTO_ERR_BAD_JSON,
                     "too deeply nested");
        expect_error(nested(2048, ""), MG_ERR_INVALID, MG_PROTO_ERR_BAD_JSON,
                     "too deeply nested");
}

static void test_parse_bad_fields(void **state) {
        static const struct {
                const char *member;
                const char *msg;
        } cases[] = {
                {"\"identity\":5", "field identity: expected a string"},
                {"\"client_id\":[\"c\"]", "field client_id: expected a "
                                          "string"},
                {"\"resource\":{}", "field resource: expected a string"},
                {"\"grant_type\":true", "field grant_type: expected a "
                                        "string"},
                {"\"identity\":\"\"", "field identity is empty"},
                {"\"client_id\":\"\"", "field client_id is empty"},
                {"\"resource\":null", "field resource is missing"},
                {"\"identity\":\"a\\u0000b\"",
                 "field identity contains a NUL byte"},
                {"\"scopes\":\"a\"", "field scopes: expected an array of "
                                     "strings"},
                {"\"scopes\":[]", "field scopes is empty"},
                {"\"scopes\":null", "field scopes is missing"},
                {"\"scopes\":[\"a\",5]", "field scopes[1]: expected a "
                                         "string"},
                {"\"scopes\":[\"a\",\"\"]", "field scopes[1] is empty"},
                {"\"scopes\":[\"a b\"]", "field scopes[0] contains a space "
                                         "(send each scope separately) at "
                                         "byte 2"},
                {"\"scopes\":[\"a\\nb\"]", "field scopes[0] contains a "
                                           "control character at byte 2"},
                {"\"ttl\":0", "field ttl: 0 is out of range "
                              "1..2147483647"},
                {"\"ttl\":-5", "field ttl: -5 is out of range"},
                {"\"ttl\":2147483648", "field ttl: 2147483648 is out of "
                                       "range"},
                {"\"ttl\":60.0", "field ttl: expected an integer"},
                {"\"ttl\":6e1", "field ttl: expected an integer"},
                {"\"ttl\":\"60\"", "field ttl: expected an integer"},
                {"\"ttl\":null", "field ttl is missing"},
                {"\"context\":[]", "field context: expected an object"},
                {"\"context\":\"x\"", "field context: expected an object"},
                {"\"context\":{\"source_ip\":1}",
                 "field context.source_ip: expected a string"},
                {"\"context\":{\"parent_token_id\":[]}",
                 "field context.parent_token_id: expected a string"},
                {"\"context\":{\"exchange_depth\":65}",
                 "field context.exchange_depth: 65 is out of range 0..64"},
                {"\"context\":{\"exchange_depth\":-1}",
                 "field context.exchange_depth: -1 is out of range"},
                {"\"context\":{\"exchange_depth\":\"1\"}",
                 "field context.exchange_depth: expected an integer"},
                {"\"context\":{\"source_ip\":\"a\",\"source_ip\":\"b\"}",
                 "field context.source_ip appears twice"},
                {"\"ttl\":5", "field ttl appears twice"},
                {"\"scopes\":[\"x\"]", "field scopes appears twice"},
        };
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(*cases); i++)
                expect_error(with(cases[i].member), MG_ERR_INVALID,
                             MG_PROTO_ERR_BAD_FIELD, cases[i].msg);
        /* Each required field missing, reported in DESIGN.md order. */
        expect_error(without("identity"), MG_ERR_INVALID,
                     MG_PROTO_ERR_BAD_FIELD, "field identity is missing");
        expect_error(without("client_id"), MG_ERR_INVALID,
                     MG_PROTO_ERR_BAD_FIELD, "field client_id is missing");
        expect_error(without("resource"), MG_ERR_INVALID,
                     MG_PROTO_ERR_BAD_FIELD, "field resource is missing");
        expect_error(without("scopes"), MG_ERR_INVALID,
                     MG_PROTO_ERR_BAD_FIELD, "field scopes is missing");
        expect_error(without("grant_type"), MG_ERR_INVALID,
                     MG_PROTO_ERR_BAD_FIELD, "field grant_type is missing");
        expect_error(without("ttl"), MG_ERR_INVALID, MG_PROTO_ERR_BAD_FIELD,
                     "field ttl is missing");
        expect_error("{}", MG_ERR_INVALID, MG_PROTO_ERR_BAD_FIELD,
                     "field identity is missing");
        /* The first bad field in line order is the one reported. */
        expect_error("{\"ttl\":0,\"identity\":5}", MG_ERR_INVALID,
                     MG_PROTO_ERR_BAD_FIELD, "field ttl");
        /* code and errstr may be NULL. */
        assert_int_equal(mg_proto_parse_request(&req, "{}", 2, NULL, 0, NULL,
                                                0),
                         MG_ERR_INVALID);
}

static void test_parse_caps(void **state) {
        static char line[MG_PROTO_LINE_MAX + 64], big[8192];
        size_t o;
        int i;

        (void)state;
        /* identity: 512 bytes fit, 513 do not. */
        memset(big, 'i', 512);
        big[512] = '\0';
        snprintf(line, sizeof(line), "{\"identity\":\"%s\",\"client_id\":"
                 "\"c\",\"resource\":\"r\",\"scopes\":[\"a\"],\"grant_type\":"
                 "\"g\",\"ttl\":1}", big);
        assert_int_equal(parse(line), MG_OK);
        assert_int_equal(strlen(req.identity), 512);
        big[512] = 'i';
        big[513] = '\0';
        snprintf(line, sizeof(line), "{\"identity\":\"%s\"}", big);
        expect_error(line, MG_ERR_TOOBIG, MG_PROTO_ERR_TOO_BIG,
                     "field identity is 513 bytes, the limit is 512");
        /* Other strings: 1024 bytes, counted after decoding escapes. */
        memset(big, 0, sizeof(big));
        for (i = 0; i < 1025; i++)
                strcat(big, i % 2 ? "\\u0063" : "c");
        snprintf(line, sizeof(line), "{\"client_id\":\"%s\"}", big);
        expect_error(line, MG_ERR_TOOBIG, MG_PROTO_ERR_TOO_BIG,
                     "field client_id is 1025 bytes, the limit is 1024");
        /* 64 scopes fit, 65 do not. */
        for (i = 64; i <= 65; i++) {
                int k;

                o = (size_t)snprintf(big, sizeof(big), "\"scopes\":[");
                for (k = 0; k < i; k++)
                        o += (size_t)snprintf(big + o, sizeof(big) - o,
                                              "%s\"s%d\"", k ? "," : "", k);
                snprintf(big + o, sizeof(big) - o, "]");
                snprintf(line, sizeof(line),
                         "{%s,\"identity\":\"i\",\"client_id\":\"c\","
                         "\"resource\":\"r\",\"grant_type\":\"g\","
                         "\"ttl\":1}",
                         big);
                if (i == 64) {
                        assert_int_equal(parse(line), MG_OK);
                        assert_int_equal(req.scope_cnt, 64);
                        assert_string_equal(req.scopes[63], "s63");
                } else {
                        expect_error(line, MG_ERR_TOOBIG, MG_PROTO_ERR_TOO_BIG,
                                     "field scopes has more than 64 "
                                     "entries");
                }
        }
        /* The arena: 17 scopes of 1000 bytes are over 16 KiB together. */
        memset(big, 's', 1000);
        big[1000] = '\0';
        o = (size_t)snprintf(line, sizeof(line), "{\"identity\":\"i\","
                             "\"scopes\":[");
        for (i = 0; i < 17; i++)
                o += (size_t)snprintf(line + o, sizeof(line) - o,
                                      "%s\"%s%d\"", i ? "," : "", big, i);
        snprintf(line + o, sizeof(line) - o, "]}");
        expect_error(line, MG_ERR_TOOBIG, MG_PROTO_ERR_TOO_BIG,
                     "request is larger than 16384 bytes (at field "
                     "scopes[16])");
        /* The line itself. */
        memset(line, ' ', MG_PROTO_LINE_MAX + 1);
        line[0] = '{';
        line[MG_PROTO_LINE_MAX] = '}';
        assert_int_equal(mg_proto_parse_request(&req, line,
                                                MG_PROTO_LINE_MAX + 1, code,
                                                sizeof(code), errstr,
                                                sizeof(errstr)),
                         MG_ERR_TOOBIG);
        assert_string_equal(code, MG_PROTO_ERR_TOO_BIG);
        assert_string_equal(errstr, "request is 131073 bytes, the limit is "
                                    "131072");
        /* ... at the limit it is parsed. */
        assert_int_equal(mg_proto_parse_request(&req, line, MG_PROTO_LINE_MAX,
                                                code, sizeof(code), errstr,
                                                sizeof(errstr)),
                         MG_ERR_INVALID);
        assert_string_equal(code, MG_PROTO_ERR_BAD_JSON);
}

/* Requests written by jansson (from strings of every kind) read back the
 * same. */
static void test_parse_jansson_round_trip(void **state) {
        json_t *o, *scopes, *ctx;
        char s[64], s2[80], s3[80], *text;
        int i, k, n;

        (void)state;
        srand(7);
        for (i = 0; i < 300; i++) {
                /* Random valid UTF-8: ASCII (controls too), 2-, 3- and
                 * 4-byte characters. */
                for (k = 0, n = 0; k < 40; k++) {
                        int c = rand() % 4;

                        if (c == 0) {
                                s[n++] = (char)(1 + rand() % 127);
                        } else if (c == 1) {
                                s[n++] = (char)0xc3;
                                s[n++] = (char)(0x80 + rand() % 64);
                        } else if (c == 2) {
                                memcpy(s + n, "\xe2\x82\xac", 3);
                                n += 3;
                        } else {
                                memcpy(s + n, "\xf0\x9f\x98\x80", 4);
                                n += 4;
                        }
                        if (n > 50)
                                break;
                }
                s[n] = '\0';
                snprintf(s2, sizeof(s2), "c:%s", s);
                snprintf(s3, sizeof(s3), "ip:%s", s);
                o = json_object();
                json_object_set_new(o, "identity", json_string(s));
                json_object_set_new(o, "client_id", json_string(s2));
                json_object_set_new(o, "resource", json_string("r"));
                scopes = json_array();
                json_array_append_new(scopes, json_string("a:b"));
                json_array_append_new(scopes, json_string("\xc3\xa9"));
                json_object_set_new(o, "scopes", scopes);
                json_object_set_new(o, "grant_type", json_string("g"));
                json_object_set_new(o, "ttl", json_integer(1 + i));
                json_object_set_new(o, "id", i % 2 ? json_integer(-i)
                                                   : json_string(s));
                ctx = json_object();
                json_object_set_new(ctx, "source_ip", json_string(s3));
                json_object_set_new(ctx, "exchange_depth",
                                    json_integer(i % 65));
                json_object_set_new(o, "context", ctx);
                text = json_dumps(o, i % 3 ? JSON_COMPACT
                                           : JSON_INDENT(2) |
                                                     JSON_ENSURE_ASCII);
                assert_non_null(text);
                if (parse(text) != MG_OK)
                        fail_msg("%s: %s", text, errstr);
                assert_string_equal(req.identity, s);
                assert_string_equal(req.client_id, s2);
                assert_string_equal(req.source_ip, s3);
                assert_string_equal(req.scopes[1], "\xc3\xa9");
                assert_int_equal(req.ttl, 1 + i);
                assert_int_equal(req.exchange_depth, i % 65);
                assert_int_equal(req.id_numeric, i % 2);
                if (i % 2)
                        assert_int_equal(strtol(req.id, NULL, 10), -i);
                else
                        assert_string_equal(req.id, s);
                free(text);
                json_decref(o);
        }
}

/*
 * Writing.
 */

/* The DESIGN.md response. */
static void design_decision(struct mg_decision *d) {
        memset(d, 0, sizeof(*d));
        d->outcome = MG_DECISION_NARROW;
        d->scopes[0] = req.scopes[0];
        d->scope_cnt = 1;
        d->ttl = 300;
        d->risk = 47.5;
        d->level = MG_RISK_MEDIUM;
        snprintf(d->reasons[0].signal, sizeof(d->reasons[0].signal),
                 "new_source");
        d->reasons[0].points = 30;
        snprintf(d->reasons[0].detail, sizeof(d->reasons[0].detail),
                 "198.51.100.0/24 never seen");
        snprintf(d->reasons[1].signal, sizeof(d->reasons[1].signal),
                 "scope_unused");
        snprintf(d->reasons[1].detail, sizeof(d->reasons[1].detail),
                 "secrets:read not used in 30d: removed");
        d->reason_cnt = 2;
        snprintf(d->policy, sizeof(d->policy), "gh-actions/api://deploy");
        snprintf(d->decision_id, sizeof(d->decision_id), "d-0001");
}

static void test_format_response(void **state) {
        struct mg_decision d;
        size_t len;

        (void)state;
        assert_int_equal(parse(DESIGN_REQ), MG_OK);
        design_decision(&d);
        assert_int_equal(mg_proto_format_response(&req, &d, NULL, out,
                                                  sizeof(out), &len),
                         MG_OK);
        assert_string_equal(
                out,
                "{\"id\":\"r-17\",\"decision\":\"narrow\",\"scopes\":"
                "[\"deploy:write\"],\"ttl\":300,\"risk\":47.5,\"level\":"
                "\"medium\",\"reasons\":[{\"signal\":\"new_source\","
                "\"points\":30,\"detail\":\"198.51.100.0/24 never seen\"},"
                "{\"signal\":\"scope_unused\",\"points\":0,\"detail\":"
                "\"secrets:read not used in 30d: removed\"}],\"policy\":"
                "\"gh-actions/api://deploy\",\"decision_id\":\"d-0001\","
                "\"degraded\":false}");
        assert_int_equal(len, strlen(out));

        /* Signature last; numeric id unquoted; no policy is null; deny
         * with nothing. */
        assert_int_equal(parse(with("\"id\":-12")), MG_OK);
        memset(&d, 0, sizeof(d));
        d.outcome = MG_DECISION_DENY;
        d.level = MG_RISK_CRITICAL;
        d.risk = 100;
        d.degraded = 1;
        assert_int_equal(mg_proto_format_response(&req, &d, "ed25519:AbC-_",
                                                  out, sizeof(out), &len),
                         MG_OK);
        assert_string_equal(out, "{\"id\":-12,\"decision\":\"deny\","
                                 "\"scopes\":[],\"ttl\":0,\"risk\":100,"
                                 "\"level\":\"critical\",\"reasons\":[],"
                                 "\"policy\":null,\"decision_id\":\"\","
                                 "\"degraded\":true,\"signature\":"
                                 "\"ed25519:AbC-_\"}");
        /* No id at all. */
        assert_int_equal(parse(with("")), MG_OK);
        d.outcome = MG_DECISION_STEP_UP;
        assert_int_equal(mg_proto_format_response(&req, &d, NULL, out,
                                                  sizeof(out), &len),
                         MG_OK);
        assert_memory_equal(out, "{\"id\":null,\"decision\":\"step_up\"", 31);
        assert_int_equal(mg_proto_format_response(NULL, &d, NULL, out,
                                                  sizeof(out), &len),
                         MG_OK);
        assert_memory_equal(out, "{\"id\":null,", 11);
}

static void test_format_numbers(void **state) {
        static const struct {
                double v;
                const char *resp;
        } cases[] = {
                {47.5, "47.5"},   {30, "30"},
                {0, "0"},          {100, "100"},
                {0.1, "0.1"},      {12.345, "12.35"},
                {12.344, "12.34"}, {0.005, "0.01"},
                {0.004, "0"},      {99.999, "100"},
                {-1.5, "-1.5"},   {-0.001, "0"},
                {NAN, "0"},        {INFINITY, "0"},
                {1e300, "1000000000000000"},
        };
        struct mg_decision d;
        char want[128];
        size_t i, len;

        (void)state;
        assert_int_equal(parse(DESIGN_REQ), MG_OK);
        for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
                design_decision(&d);
                d.risk = cases[i].v;
                d.reasons[0].points = cases[i].v;
                assert_int_equal(mg_proto_format_response(&req, &d, NULL, out,
                                                          sizeof(out), &len),
                                 MG_OK);
                snprintf(want, sizeof(want), "\"risk\":%s,", cases[i].resp);
                if (!strstr(out, want))
                        fail_msg("%g: want %s in %s", cases[i].v, want, out);
                snprintf(want, sizeof(want), "\"points\":%s,", cases[i].resp);
                assert_non_null(strstr(out, want));
        }
}

/* Every string goes through the same escaping; check it byte for byte and
 * through jansson. */
static void test_format_escaping(void **state) {
        static const struct {
                const char *in, *out, *decoded;
        } cases[] = {
                {"plain", "\"plain\"", "plain"},
                {"q\"b\\", "\"q\\\"b\\\\\"", "q\"b\\"},
                {"\n\r\t", "\"\\n\\r\\t\"", "\n\r\t"},
                {"\x01\x08\x0c\x1f", "\"\\u0001\\u0008\\u000c\\u001f\"",
                 "\x01\x08\x0c\x1f"},
                {"\x7f/", "\"\x7f/\"", "\x7f/"},
                {"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80",
                 "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"",
                 "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"},
                /* Invalid: each bad byte becomes U+FFFD. */
                {"a\xff" "b", "\"a\xef\xbf\xbd" "b\"", "a\xef\xbf\xbd" "b"},
                {"\xc0\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\"",
                 "\xef\xbf\xbd\xef\xbf\xbd"},
                {"\xed\xa0\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"",
                 "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
                {"\xe2\x82", "\"\xef\xbf\xbd\xef\xbf\xbd\"",
                 "\xef\xbf\xbd\xef\xbf\xbd"},
                {"\xf4\x90\x80\x80x",
                 "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdx\"",
                 "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdx"},
        };
        struct mg_decision d;
        json_t *root;
        json_error_t jerr;
        char want[128];
        size_t i, len;

        (void)state;
        assert_int_equal(parse(DESIGN_REQ), MG_OK);
        for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
                design_decision(&d);
                snprintf(d.reasons[0].detail, sizeof(d.reasons[0].detail),
                         "%s", cases[i].in);
                assert_int_equal(mg_proto_format_response(&req, &d, NULL, out,
                                                          sizeof(out), &len),
                                 MG_OK);
                snprintf(want, sizeof(want), "\"detail\":%s}", cases[i].out);
                if (!strstr(out, want))
                        fail_msg("case %zu: want %s in %s", i, want, out);
                root = json_loadb(out, len, JSON_REJECT_DUPLICATES, &jerr);
                if (!root)
                        fail_msg("case %zu: jansson: %s", i, jerr.text);
                assert_string_equal(
                        json_string_value(json_object_get(
                                json_array_get(json_object_get(root,
                                                               "reasons"),
                                               0),
                                "detail")),
                        cases[i].decoded);
                json_decref(root);
        }
        /* Fixed arrays without their NUL are cut, not overrun. */
        design_decision(&d);
        memset(d.reasons[0].signal, 'S', sizeof(d.reasons[0].signal));
        memset(d.reasons[0].detail, 'D', sizeof(d.reasons[0].detail));
        memset(d.policy, 'P', sizeof(d.policy));
        memset(d.decision_id, 'I', sizeof(d.decision_id));
        assert_int_equal(mg_proto_format_response(&req, &d, NULL, out,
                                                  sizeof(out), &len),
                         MG_OK);
        root = json_loadb(out, len, 0, &jerr);
        assert_non_null(root);
        assert_int_equal(strlen(json_string_value(
                                 json_object_get(root, "policy"))),
                         sizeof(d.policy) - 1);
        json_decref(root);
}

static void test_format_sizes(void **state) {
        struct mg_decision d;
        size_t len, need;
        char small[64];

        (void)state;
        assert_int_equal(parse(DESIGN_REQ), MG_OK);
        design_decision(&d);
        assert_int_equal(mg_proto_format_response(&req, &d, NULL, out,
                                                  sizeof(out), &len),
                         MG_OK);
        /* len + 1 bytes (for the NUL) is enough; len is not. */
        assert_int_equal(mg_proto_format_response(&req, &d, NULL, out,
                                                  len + 1, &need),
                         MG_OK);
        assert_int_equal(need, len);
        assert_int_equal(mg_proto_format_response(&req, &d, NULL, out, len,
                                                  &need),
                         MG_ERR_TOOBIG);
        assert_int_equal(need, len);
        memset(small, 'x', sizeof(small));
        assert_int_equal(mg_proto_format_response(&req, &d, NULL, small,
                                                  sizeof(small), &need),
                         MG_ERR_TOOBIG);
        assert_int_equal(need, len);
        assert_int_equal(mg_proto_format_error(&req, "c", "m", small, 5,
                                               &need),
                         MG_ERR_TOOBIG);
        /* Inconsistent decisions are refused. */
        d.outcome = MG_DECISION__CNT;
        assert_int_equal(mg_proto_format_response(&req, &d, NULL, out,
                                                  sizeof(out), &len),
                         MG_ERR_INVALID);
        design_decision(&d);
        d.level = (enum mg_risk_level)4;
        assert_int_equal(mg_proto_format_response(&req, &d, NULL, out,
                                                  sizeof(out), &len),
                         MG_ERR_INVALID);
        design_decision(&d);
        d.scope_cnt = MG_REQ_SCOPES_MAX + 1;
        assert_int_equal(mg_proto_format_response(&req, &d, NULL, out,
                                                  sizeof(out), &len),
                         MG_ERR_INVALID);
        design_decision(&d);
        d.reason_cnt = -1;
        assert_int_equal(mg_proto_format_response(&req, &d, NULL, out,
                                                  sizeof(out), &len),
                         MG_ERR_INVALID);
}

/* MG_PROTO_OUT_MAX holds the worst case: the arena full of the bytes
 * that escape longest (control characters, six bytes each, where the
 * parser lets them be), every scope granted, every reason full of
 * controls. */
static void test_format_worst_case(void **state) {
        static char line[MG_PROTO_LINE_MAX];
        static const char *const keys[] = {"client_id", "resource",
                                           "grant_type"};
        static const char sig[] = "ed25519:"
                                  "0123456789012345678901234567890123456789"
                                  "0123456789012345678901234567890123456789"
                                  "012345";
        struct mg_decision d;
        size_t o, need_resp;
        int i, k;

        (void)state;
        o = (size_t)snprintf(line, sizeof(line), "{\"id\":\"");
        for (k = 0; k < MG_PROTO_ID_MAX; k++)
                o += (size_t)snprintf(line + o, sizeof(line) - o, "\\n");
        o += (size_t)snprintf(line + o, sizeof(line) - o, "\",\"identity\":\"");
        for (k = 0; k < MG_EVENT_IDENTITY_MAX; k++)
                o += (size_t)snprintf(line + o, sizeof(line) - o, "\\u0001");
        for (i = 0; i < 3; i++) {
                o += (size_t)snprintf(line + o, sizeof(line) - o,
                                      "\",\"%s\":\"", keys[i]);
                for (k = 0; k < MG_EVENT_STR_MAX; k++)
                        o += (size_t)snprintf(line + o, sizeof(line) - o,
                                              "\\u0002");
        }
        o += (size_t)snprintf(line + o, sizeof(line) - o,
                              "\",\"context\":{\"source_ip\":\"");
        for (k = 0; k < MG_EVENT_STR_MAX; k++)
                o += (size_t)snprintf(line + o, sizeof(line) - o, "\\u0003");
        o += (size_t)snprintf(line + o, sizeof(line) - o,
                              "\",\"parent_token_id\":\"");
        for (k = 0; k < MG_EVENT_STR_MAX; k++)
                o += (size_t)snprintf(line + o, sizeof(line) - o, "\\u0004");
        o += (size_t)snprintf(line + o, sizeof(line) - o,
                              "\"},\"ttl\":1,\"scopes\":[");
        /* What is left of the arena, in 64 scopes of '"'. */
        for (i = 0; i < MG_REQ_SCOPES_MAX; i++) {
                o += (size_t)snprintf(line + o, sizeof(line) - o, "%s\"",
                                      i ? "," : "");
                for (k = 0; k < 162; k++)
                        o += (size_t)snprintf(line + o, sizeof(line) - o,
                                              "\\\"");
                o += (size_t)snprintf(line + o, sizeof(line) - o, "\"");
        }
        snprintf(line + o, sizeof(line) - o, "]}");
        if (parse(line) != MG_OK)
                fail_msg("%s", errstr);
        assert_true(req.arena_used > MG_REQ_ARENA_SIZE - 200);
        memset(&d, 0, sizeof(d));
        d.outcome = MG_DECISION_NARROW;
        for (i = 0; i < req.scope_cnt; i++)
                d.scopes[d.scope_cnt++] = req.scopes[i];
        for (i = 0; i < MG_DECISION_REASONS_MAX; i++) {
                memset(d.reasons[i].signal, 1, sizeof(d.reasons[i].signal) - 1);
                memset(d.reasons[i].detail, 2, sizeof(d.reasons[i].detail) - 1);
                d.reasons[i].points = -1e15;
        }
        d.reason_cnt = MG_DECISION_REASONS_MAX;
        memset(d.policy, 3, sizeof(d.policy) - 1);
        memset(d.decision_id, 4, sizeof(d.decision_id) - 1);
        assert_int_equal(mg_proto_format_response(&req, &d, sig, out,
                                                  sizeof(out), &need_resp),
                         MG_OK);
        print_message("worst case: response %zu bytes (MG_PROTO_OUT_MAX %d)\n",
                      need_resp, MG_PROTO_OUT_MAX);
        assert_true(need_resp < MG_PROTO_OUT_MAX);
}

static void test_format_error(void **state) {
        size_t len;

        (void)state;
        assert_int_equal(mg_proto_format_error(NULL, MG_PROTO_ERR_TOO_BIG,
                                               "line is over 65536 bytes",
                                               out, sizeof(out), &len),
                         MG_OK);
        assert_string_equal(out, "{\"id\":null,\"error\":{\"code\":"
                                 "\"too_big\",\"message\":\"line is over "
                                 "65536 bytes\"}}");
        assert_int_equal(len, strlen(out));
        /* The id as the parse left it. */
        expect_error("{\"id\":\"r\\\"1\",\"ttl\":true}", MG_ERR_INVALID,
                     MG_PROTO_ERR_BAD_FIELD, "ttl");
        assert_int_equal(mg_proto_format_error(&req, code, errstr, out,
                                               sizeof(out), &len),
                         MG_OK);
        assert_string_equal(out, "{\"id\":\"r\\\"1\",\"error\":{\"code\":"
                                 "\"bad_field\",\"message\":\"field ttl: "
                                 "expected an integer\"}}");
        expect_error("{\"id\":7.25}", MG_ERR_INVALID, MG_PROTO_ERR_BAD_FIELD,
                     "identity");
        assert_int_equal(mg_proto_format_error(&req, code, "a\nb\x01", out,
                                               sizeof(out), &len),
                         MG_OK);
        assert_string_equal(out, "{\"id\":7.25,\"error\":{\"code\":"
                                 "\"bad_field\",\"message\":\"a\\nb\\u0001"
                                 "\"}}");
        /* NULL code and message still make a valid object. */
        assert_int_equal(mg_proto_format_error(NULL, NULL, NULL, out,
                                               sizeof(out), &len),
                         MG_OK);
        assert_string_equal(out, "{\"id\":null,\"error\":{\"code\":"
                                 "\"internal\",\"message\":\"\"}}");
}

static void test_outcome_names(void **state) {
        (void)state;
        assert_string_equal(mg_outcome_names[MG_DECISION_ALLOW], "allow");
        assert_string_equal(mg_outcome_names[MG_DECISION_NARROW], "narrow");
        assert_string_equal(mg_outcome_names[MG_DECISION_STEP_UP], "step_up");
        assert_string_equal(mg_outcome_names[MG_DECISION_DENY], "deny");
}

static double now_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Timings over the DESIGN.md request and response. */
static void test_timing(void **state) {
        struct mg_decision d;
        json_error_t jerr;
        json_t *root;
        double t0, t_parse, t_format, t_jansson;
        size_t len, n = strlen(DESIGN_REQ);
        int i, iters = 100000;

        (void)state;
        assert_int_equal(parse(DESIGN_REQ), MG_OK);
        design_decision(&d);
        t0 = now_ns();
        for (i = 0; i < iters; i++)
                mg_proto_parse_request(&req, DESIGN_REQ, n, code,
                                       sizeof(code), errstr, sizeof(errstr));
        t_parse = (now_ns() - t0) / iters;
        t0 = now_ns();
        for (i = 0; i < iters; i++)
                mg_proto_format_response(&req, &d, NULL, out, sizeof(out),
                                         &len);
        t_format = (now_ns() - t0) / iters;
        t0 = now_ns();
        for (i = 0; i < iters / 10; i++) {
                root = json_loadb(DESIGN_REQ, n, JSON_REJECT_DUPLICATES,
                                  &jerr);
                json_decref(root);
        }
        t_jansson = (now_ns() - t0) / (iters / 10);
        print_message("parse %.0f ns, format %.0f ns (%zu-byte request, "
                      "%zu-byte response); jansson json_loadb alone %.0f "
                      "ns\n",
                      t_parse, t_format, n, len, t_jansson);
        /* Loose: sanitizers and shared CI machines are slow. */
        assert_true(t_parse < 50000 && t_format < 50000);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_design_request),
                cmocka_unit_test(test_parse_optional_and_unknown),
                cmocka_unit_test(test_parse_escapes),
                cmocka_unit_test(test_parse_numeric_id),
                cmocka_unit_test(test_parse_id_kept),
                cmocka_unit_test(test_parse_bad_json),
                cmocka_unit_test(test_parse_depth),
                cmocka_unit_test(test_parse_bad_fields),
                cmocka_unit_test(test_parse_caps),
                cmocka_unit_test(test_parse_jansson_round_trip),
                cmocka_unit_test(test_format_response),
                cmocka_unit_test(test_format_numbers),
                cmocka_unit_test(test_format_escaping),
                cmocka_unit_test(test_format_sizes),
                cmocka_unit_test(test_format_worst_case),
                cmocka_unit_test(test_format_error),
                cmocka_unit_test(test_outcome_names),
                cmocka_unit_test(test_timing),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
