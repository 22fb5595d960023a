/*
 * mg_log.h — leveled logging to stderr.
 *
 * One line per message: "2026-11-20T10:00:00.000Z LEVEL component: text".
 * The level is process-wide (set once at start-up from the command line or
 * configuration); writes are single fprintf() calls, so lines from threads
 * do not interleave.
 */
#ifndef MG_LOG_H
#define MG_LOG_H

enum mg_log_level {
        MG_LOG_ERROR,
        MG_LOG_WARN,
        MG_LOG_INFO,
        MG_LOG_DEBUG
};

void mg_log_set_level(enum mg_log_level level);
enum mg_log_level mg_log_get_level(void);
/* Parse "error", "warn", "info", "debug"; returns -1 when unknown. */
int mg_log_level_parse(const char *name);

void mg_log(enum mg_log_level level, const char *component, const char *fmt,
            ...) __attribute__((format(printf, 3, 4)));

#define mg_log_error(comp, ...) mg_log(MG_LOG_ERROR, comp, __VA_ARGS__)
#define mg_log_warn(comp, ...)  mg_log(MG_LOG_WARN, comp, __VA_ARGS__)
#define mg_log_info(comp, ...)  mg_log(MG_LOG_INFO, comp, __VA_ARGS__)
#define mg_log_debug(comp, ...) mg_log(MG_LOG_DEBUG, comp, __VA_ARGS__)

#endif /* MG_LOG_H */
