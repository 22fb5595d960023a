/*
 * mg_lines.c — line-at-a-time reading of JSON-lines input (contract in
 * mg_lines.h), on getline(3): one buffer per reader, grown to the longest
 * line seen.
 */
#include "mg_lines.h"

#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

void mg_lines_init(struct mg_lines *ln, FILE *fp, size_t max) {
        memset(ln, 0, sizeof(*ln));
        ln->fp = fp;
        ln->max = max;
}

void mg_lines_free(struct mg_lines *ln) {
        free(ln->buf);
        ln->buf = NULL;
        ln->cap = 0;
}

mg_err_t mg_lines_next(struct mg_lines *ln, char **line, size_t *len) {
        ssize_t n;

        for (;;) {
                n = getline(&ln->buf, &ln->cap, ln->fp);
                if (n < 0)
                        return ferror(ln->fp) ? MG_ERR_IO : MG_ERR_NOT_FOUND;
                ln->lineno++;
                while (n > 0 && (ln->buf[n - 1] == '\n' ||
                                 ln->buf[n - 1] == '\r'))
                        ln->buf[--n] = '\0';
                if (n == 0)
                        continue;
                *line = ln->buf;
                *len = (size_t)n;
                return (size_t)n > ln->max ? MG_ERR_TOOBIG : MG_OK;
        }
}
