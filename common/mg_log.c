/*
 * mg_log.c — see mg_log.h. The message is formatted into one buffer and
 * written with a single fputs() so concurrent lines stay whole.
 */
#include "mg_log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static atomic_int mg_log_level = MG_LOG_INFO;

static const char *const mg_log_names[] = {"error", "warn", "info", "debug"};

void mg_log_set_level(enum mg_log_level level) {
        atomic_store(&mg_log_level, (int)level);
}

enum mg_log_level mg_log_get_level(void) {
        return (enum mg_log_level)atomic_load(&mg_log_level);
}

int mg_log_level_parse(const char *name) {
        size_t i;

        for (i = 0; i < sizeof(mg_log_names) / sizeof(*mg_log_names); i++)
                if (!strcmp(name, mg_log_names[i]))
                        return (int)i;
        return -1;
}

void mg_log(enum mg_log_level level, const char *component, const char *fmt,
            ...) {
        char line[2048];
        struct timespec ts;
        struct tm tm;
        va_list ap;
        int n;

        if ((int)level > atomic_load(&mg_log_level))
                return;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        n = snprintf(line, sizeof(line),
                     "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
                     mg_log_names[level], component);
        if (n < 0 || (size_t)n >= sizeof(line) - 2)
                n = 0;
        va_start(ap, fmt);
        vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
        va_end(ap);
        n = (int)strlen(line);
        line[n] = '\n';
        line[n + 1] = '\0';
        fputs(line, stderr);
}
