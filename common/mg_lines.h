/*
 * mg_lines.h — reading JSON-lines input (events, labels, requests,
 * exported baselines) one line at a time, the same way everywhere: line
 * ends (LF or CRLF) stripped, blank lines skipped, a hard cap on a line's
 * length, and the line number kept for error messages ("file:12: ...").
 *
 * A line over the cap is reported (MG_ERR_TOOBIG with its length) and
 * skipped; the reader goes on with the next one, so one bad line never
 * hides the rest of a file.
 *
 * Threads: a reader belongs to one thread.
 */
#ifndef MG_LINES_H
#define MG_LINES_H

#include <stddef.h>
#include <stdio.h>

#include "mg_err.h"

struct mg_lines {
        FILE *fp;           /* not owned */
        size_t max;         /* longest line accepted, in bytes */
        size_t lineno;      /* 1-based number of the last line read */
        char *buf;          /* the last line, NUL-terminated, owned */
        size_t cap;         /* bytes allocated for buf */
};

/* Read fp with lines of at most max bytes. */
void mg_lines_init(struct mg_lines *ln, FILE *fp, size_t max);
void mg_lines_free(struct mg_lines *ln);

/* The next non-blank line: MG_OK with *line (owned by the reader, valid
 * until the next call) and *len set; MG_ERR_TOOBIG for a line over the cap
 * (skipped; *len is its length); MG_ERR_NOT_FOUND at the end of input;
 * MG_ERR_IO on a read error (errno set). ln->lineno numbers the line in
 * every case. */
mg_err_t mg_lines_next(struct mg_lines *ln, char **line, size_t *len);

#endif /* MG_LINES_H */
