/*
 * test_lines.c — the JSON-lines reader: line ends, blank lines, the size
 * cap and line numbers, on an in-memory file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "mg_lines.h"

static void expect_line(struct mg_lines *ln, const char *want, size_t lineno) {
        char *line;
        size_t len;

        assert_int_equal(mg_lines_next(ln, &line, &len), MG_OK);
        assert_string_equal(line, want);
        assert_int_equal(len, strlen(want));
        assert_int_equal(ln->lineno, lineno);
}

static void test_lines(void **state) {
        static char text[] = "one\n\r\n\ntwo\r\nthree is too long\n"
                             "\nfour";
        FILE *fp = fmemopen(text, strlen(text), "r");
        struct mg_lines ln;
        char *line;
        size_t len;

        assert_non_null(fp);
        mg_lines_init(&ln, fp, 10);
        expect_line(&ln, "one", 1);
        expect_line(&ln, "two", 4);
        assert_int_equal(mg_lines_next(&ln, &line, &len), MG_ERR_TOOBIG);
        assert_int_equal(len, strlen("three is too long"));
        assert_int_equal(ln.lineno, 5);
        /* The reader goes on after a line over the cap; a last line
         * without its newline counts. */
        expect_line(&ln, "four", 7);
        assert_int_equal(mg_lines_next(&ln, &line, &len), MG_ERR_NOT_FOUND);
        assert_int_equal(mg_lines_next(&ln, &line, &len), MG_ERR_NOT_FOUND);
        mg_lines_free(&ln);
        mg_lines_free(&ln); /* twice is harmless */
        fclose(fp);
}

static void test_empty(void **state) {
        static char text[] = "\n\n\r\n";
        FILE *fp = fmemopen(text, strlen(text), "r");
        struct mg_lines ln;
        char *line;
        size_t len;

        assert_non_null(fp);
        mg_lines_init(&ln, fp, 10);
        assert_int_equal(mg_lines_next(&ln, &line, &len), MG_ERR_NOT_FOUND);
        assert_int_equal(ln.lineno, 3);
        mg_lines_free(&ln);
        fclose(fp);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_lines),
                cmocka_unit_test(test_empty),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
