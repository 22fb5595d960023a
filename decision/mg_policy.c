/*
 * mg_policy.c — policy files and the decision function (see mg_policy.h
 * for the file format and the order of the rules).
 *
 * Loading walks libyaml's event stream (no document tree), like
 * common/mg_config.c: one function per level of the format (stream, top
 * mapping, path, list, ttl step, window), each consuming exactly the events
 * of its node, so that every error can name the line and column of the key
 * or value at fault. The keys of a path are one table (mg_policy_props[]:
 * name, type, field offset, default, bounds, description), as STYLE.md
 * asks; the loader, the defaults, the required-key check and the reference
 * text all read it. A path first records which keys it set (a bitmask and
 * their positions); after the document, keys it did not set come from
 * "defaults" and then from the table, and only then are cross-key rules
 * (threshold order, fail_narrow's minimum_scopes, the default name) checked,
 * so "defaults" may come before or after "policies".
 *
 * Memory: everything a loaded policy holds lives in one bump arena owned by
 * the struct mg_policy (strings, scope lists, steps, windows) plus the path
 * array, so freeing is a walk over a few chunks and a loaded policy is
 * immutable. Paths are sorted most specific first at load time; deciding is
 * a linear scan that stops at the first match (a policy has tens of paths,
 * and a glob test is a few dozen byte comparisons).
 *
 * Deciding allocates nothing, reads only the policy, the request and the
 * view, and formats reasons with snprintf (the C locale: mintgate never
 * calls setlocale()). Workload: one call per issuance request, from every
 * server thread at once; loads happen at start-up and on reload.
 */
#include "mg_policy.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "mg_config.h"

/* Caps on what one file may hold. Real policies have tens of paths with a
 * handful of scopes each; the caps only stop a runaway or hostile file
 * from making the loader (and every decision's scan) arbitrarily slow. */
#define MG_POLICY_PATHS_MAX   4096
#define MG_POLICY_LIST_MAX    256  /* globs in one scope list */
#define MG_POLICY_STEPS_MAX   16   /* ttl_by_risk steps */
#define MG_POLICY_WINDOWS_MAX 64   /* release windows of a path */
/* A glob may be as long as the request string it is matched against. */
#define MG_POLICY_GLOB_MAX    MG_EVENT_STR_MAX
/* The name goes into struct mg_decision.policy with its NUL. */
#define MG_POLICY_NAME_MAX    (sizeof(((struct mg_decision *)0)->policy) - 1)
/* A year: longer-lived tokens are what this service exists to prevent. */
#define MG_POLICY_TTL_MAX     (365LL * 86400)
/* Longest excerpt of a bad value quoted in an error message. */
#define MG_POLICY_QUOTE_MAX   64
/* Longest dotted key ("thresholds.step_up" is the longest real one). */
#define MG_POLICY_KEY_MAX     64
/* Arena chunks: one holds a typical policy whole. */
#define MG_POLICY_CHUNK_SIZE  (64 * 1024)

#define MG_MS_PER_DAY 86400000LL

/*
 * The loaded policy.
 */

/* What a path does without fresh risk. */
enum mg_policy_degraded {
        MG_POLICY_FAIL_CLOSED, /* deny */
        MG_POLICY_FAIL_NARROW, /* minimum_scopes, degraded_ttl */
        MG_POLICY_FAIL_OPEN,   /* as if risk were 0 */
        MG_POLICY_DEGRADED__CNT
};

static const char *const mg_policy_degraded_names[MG_POLICY_DEGRADED__CNT] = {
        "fail_closed", "fail_narrow", "fail_open"};

/* Days of the week, Monday first (bit i of a window's day mask). */
static const char *const mg_policy_day_names[7] = {"mon", "tue", "wed", "thu",
                                                   "fri", "sat", "sun"};

/* A list of globs (scopes). */
struct mg_policy_globs {
        const char *const *pats; /* in the arena; NULL when cnt is 0 */
        int cnt;                 /* entries */
};

/* One ttl_by_risk step: risk < below caps the TTL at max_ttl. */
struct mg_policy_step {
        double below;    /* risk bound, exclusive */
        int64_t max_ttl; /* seconds */
};

struct mg_policy_steps {
        const struct mg_policy_step *v; /* below rising, max_ttl falling */
        int cnt;                        /* entries */
};

/* One release window. */
struct mg_policy_window {
        const char *scope; /* glob of the scopes it governs */
        unsigned days;     /* bit i: mg_policy_day_names[i] */
        int start_min;     /* minute of the UTC day, inclusive */
        int end_min;       /* minute of the UTC day, exclusive (<= 1440) */
};

struct mg_policy_windows {
        const struct mg_policy_window *v; /* in file order */
        int cnt;                          /* entries */
};

/* One policy path. Field order follows mg_policy_props[]. */
struct mg_policy_path {
        const char *name;                  /* the decision's "policy" */
        const char *client;                /* glob on client_id */
        const char *resource;              /* glob on resource */
        struct mg_policy_globs allowed;    /* allowed_scopes */
        struct mg_policy_globs high_impact; /* high_impact_scopes */
        int64_t max_ttl;                   /* seconds */
        struct mg_policy_steps ttl_by_risk; /* TTL caps by risk */
        double narrow;                     /* thresholds.narrow */
        double step_up;                    /* thresholds.step_up */
        double deny;                       /* thresholds.deny */
        int remove_unused;                 /* remove_unused_scopes */
        int64_t unused_days;               /* scope_unused_days */
        unsigned grants;                   /* bit g: mg_grant_type_names[g] */
        int64_t max_depth;                 /* max_exchange_depth, -1: none */
        struct mg_policy_windows windows;  /* release_windows */
        int degraded;                      /* enum mg_policy_degraded */
        struct mg_policy_globs minimum;    /* minimum_scopes */
        int64_t degraded_ttl;              /* seconds */
        size_t index;                      /* position in the file */
        size_t client_lit;                 /* literal prefix of client */
        int client_stars;                  /* '*' in client */
        size_t resource_lit;               /* literal prefix of resource */
        int resource_stars;                /* '*' in resource */
};

/* A block of the policy's arena. */
struct mg_policy_chunk {
        struct mg_policy_chunk *next; /* older chunk */
        size_t used;                  /* bytes handed out */
        size_t cap;                   /* bytes in data */
        max_align_t data[];           /* storage, suitably aligned */
};

struct mg_policy {
        atomic_uint refcnt;            /* holders; the last frees */
        struct mg_policy_path *paths;  /* most specific first (malloc'd) */
        size_t cnt;                    /* paths */
        const char *source;            /* file name (arena) */
        struct mg_policy_chunk *chunks; /* the arena, newest first */
};

static void *mg_policy_alloc(struct mg_policy *pol, size_t n) {
        struct mg_policy_chunk *ch = pol->chunks;
        size_t align = sizeof(max_align_t), cap;
        void *p;

        n = (n + align - 1) / align * align;
        if (!ch || ch->cap - ch->used < n) {
                cap = n > MG_POLICY_CHUNK_SIZE ? n : MG_POLICY_CHUNK_SIZE;
                ch = malloc(sizeof(*ch) + cap);
                if (!ch)
                        return NULL;
                ch->next = pol->chunks;
                ch->used = 0;
                ch->cap = cap;
                pol->chunks = ch;
        }
        p = (char *)ch->data + ch->used;
        ch->used += n;
        return p;
}

static char *mg_policy_strdup(struct mg_policy *pol, const char *s,
                              size_t len) {
        char *p = mg_policy_alloc(pol, len + 1);

        if (p) {
                memcpy(p, s, len);
                p[len] = '\0';
        }
        return p;
}

static void mg_policy_free(struct mg_policy *pol) {
        struct mg_policy_chunk *ch, *next;

        if (!pol)
                return;
        for (ch = pol->chunks; ch; ch = next) {
                next = ch->next;
                free(ch);
        }
        free(pol->paths);
        free(pol);
}

/*
 * The table of path keys.
 */

enum mg_policy_type {
        MG_POLICY_T_STR,      /* const char *; min/max bound the length */
        MG_POLICY_T_GLOB,     /* const char *: a client/resource glob */
        MG_POLICY_T_SCOPES,   /* struct mg_policy_globs: list of globs */
        MG_POLICY_T_SECONDS,  /* int64_t: 30, "30s", "15m", "1h", "1d" */
        MG_POLICY_T_RISK,     /* double risk 0..100 */
        MG_POLICY_T_BOOL,     /* int */
        MG_POLICY_T_INT,      /* int64_t; no default: -1 (no limit) */
        MG_POLICY_T_GRANTS,   /* unsigned mask; no default: all */
        MG_POLICY_T_STEPS,    /* struct mg_policy_steps */
        MG_POLICY_T_WINDOWS,  /* struct mg_policy_windows */
        MG_POLICY_T_DEGRADED  /* int enum mg_policy_degraded */
};

#define MG_POLICY_F_REQUIRED 1u /* must be set (by the path or defaults) */
#define MG_POLICY_F_PER_PATH 2u /* not allowed in defaults */

struct mg_policy_prop {
        const char *name;         /* key; dotted below a nested mapping */
        enum mg_policy_type type; /* how the value is read */
        size_t offset;            /* offsetof() in struct mg_policy_path */
        const char *def;          /* default as YAML text; NULL: see type */
        double min, max;          /* bounds (both 0: none) */
        unsigned flags;           /* MG_POLICY_F_* */
        const char *desc;         /* for the reference */
};

#define PP(f) offsetof(struct mg_policy_path, f)
static const struct mg_policy_prop mg_policy_props[] = {
        {"client", MG_POLICY_T_GLOB, PP(client), NULL, 0, 0,
         MG_POLICY_F_REQUIRED | MG_POLICY_F_PER_PATH,
         "Glob on the request's client_id."},
        {"resource", MG_POLICY_T_GLOB, PP(resource), NULL, 0, 0,
         MG_POLICY_F_REQUIRED | MG_POLICY_F_PER_PATH,
         "Glob on the request's resource (or audience)."},
        {"name", MG_POLICY_T_STR, PP(name), NULL, 1, MG_POLICY_NAME_MAX,
         MG_POLICY_F_PER_PATH,
         "Name reported as the decision's policy; default "
         "\"<client>/<resource>\"."},
        {"allowed_scopes", MG_POLICY_T_SCOPES, PP(allowed), NULL, 0, 0,
         MG_POLICY_F_REQUIRED,
         "Globs of the scopes that may be granted; others are removed."},
        {"high_impact_scopes", MG_POLICY_T_SCOPES, PP(high_impact), NULL, 0,
         0, 0, "Globs of scopes removed once risk >= thresholds.narrow."},
        {"max_ttl", MG_POLICY_T_SECONDS, PP(max_ttl), "1h", 1,
         MG_POLICY_TTL_MAX, 0, "Cap on the requested TTL."},
        {"ttl_by_risk", MG_POLICY_T_STEPS, PP(ttl_by_risk), NULL, 0, 0, 0,
         "Steps {below: risk, max_ttl: duration}: the first with risk < "
         "below caps the TTL; above the last, the last applies."},
        {"thresholds.narrow", MG_POLICY_T_RISK, PP(narrow), "25", 0, 100, 0,
         "Risk from which high-impact scopes are removed."},
        {"thresholds.step_up", MG_POLICY_T_RISK, PP(step_up), "50", 0, 100, 0,
         "Risk from which the decision is step_up."},
        {"thresholds.deny", MG_POLICY_T_RISK, PP(deny), "80", 0, 100, 0,
         "Risk from which the decision is deny."},
        {"remove_unused_scopes", MG_POLICY_T_BOOL, PP(remove_unused),
         "false", 0, 0, 0,
         "Remove scopes the identity was granted but has not used."},
        {"scope_unused_days", MG_POLICY_T_INT, PP(unused_days), "30", 1, 3650,
         0, "Days of disuse named in unused-scope reasons."},
        {"grant_types", MG_POLICY_T_GRANTS, PP(grants), NULL, 0, 0, 0,
         "Allowed grant types (default all); others are denied."},
        {"max_exchange_depth", MG_POLICY_T_INT, PP(max_depth), NULL, 0, 64, 0,
         "Deny a deeper context.exchange_depth (default: no limit)."},
        {"release_windows", MG_POLICY_T_WINDOWS, PP(windows), NULL, 0, 0, 0,
         "Windows {scope, days, hours} (UTC) outside which matching scopes "
         "are removed."},
        {"degraded", MG_POLICY_T_DEGRADED, PP(degraded), "fail_closed", 0, 0,
         0, "Without fresh risk: fail_closed, fail_narrow or fail_open."},
        {"minimum_scopes", MG_POLICY_T_SCOPES, PP(minimum), NULL, 0, 0, 0,
         "Globs of the scopes fail_narrow may still grant."},
        {"degraded_ttl", MG_POLICY_T_SECONDS, PP(degraded_ttl), "5m", 1,
         MG_POLICY_TTL_MAX, 0, "TTL cap under fail_narrow."},
};
#undef PP

#define MG_POLICY_PROP_CNT (sizeof(mg_policy_props) / sizeof(*mg_policy_props))

/* Indexes of the props the cross-key checks name. */
enum {
        MG_POLICY_P_CLIENT = 0,
        MG_POLICY_P_RESOURCE = 1,
        MG_POLICY_P_NAME = 2,
        MG_POLICY_P_NARROW = 7,
        MG_POLICY_P_STEP_UP = 8,
        MG_POLICY_P_DENY = 9,
        MG_POLICY_P_DEGRADED = 15,
        MG_POLICY_P_MINIMUM = 16
};

static void *mg_policy_field(struct mg_policy_path *path, size_t i) {
        return (char *)path + mg_policy_props[i].offset;
}

/*
 * Scalar value parsers: text (len bytes) to a value, or a reason in
 * detail. Shared by the YAML loader and the table defaults.
 */

/* Quote at most MG_POLICY_QUOTE_MAX bytes of s; non-printable bytes as
 * \xNN. buf must hold 4 * MG_POLICY_QUOTE_MAX + 8 bytes. */
static const char *mg_policy_quote(char *buf, size_t size, const char *s,
                                   size_t len) {
        size_t i, o = 0;

        assert(size >= 4 * MG_POLICY_QUOTE_MAX + 8);
        buf[o++] = '\'';
        for (i = 0; i < len && i < MG_POLICY_QUOTE_MAX; i++) {
                unsigned char c = (unsigned char)s[i];

                if (c < 0x20 || c >= 0x7f || c == '\'' || c == '\\')
                        o += (size_t)snprintf(buf + o, size - o, "\\x%02x",
                                              c);
                else
                        buf[o++] = (char)c;
        }
        buf[o++] = '\'';
        if (i < len) {
                memcpy(buf + o, "...", 3);
                o += 3;
        }
        buf[o] = '\0';
        return buf;
}

#define QBUF_SIZE (4 * MG_POLICY_QUOTE_MAX + 8)

/* Non-negative decimal integer, no sign, no spaces; -2 past max. */
static int mg_policy_parse_uint(const char *s, size_t len, int64_t max,
                                int64_t *out) {
        int64_t v = 0;
        size_t i;

        if (len == 0)
                return -1;
        for (i = 0; i < len; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -1;
                if (v > (max - (s[i] - '0')) / 10)
                        return -2;
                v = v * 10 + (s[i] - '0');
        }
        *out = v;
        return 0;
}

/* Whole seconds: digits with an optional s/m/h/d unit. */
static mg_err_t mg_policy_parse_seconds(const char *s, size_t len,
                                        const struct mg_policy_prop *prop,
                                        int64_t *out, char *detail,
                                        size_t detail_size) {
        char qbuf[QBUF_SIZE];
        int64_t v, mult = 1;
        size_t olen = len;
        int rc;

        if (len > 0) {
                switch (s[len - 1]) {
                case 's':
                        len--;
                        break;
                case 'm':
                        mult = 60;
                        len--;
                        break;
                case 'h':
                        mult = 3600;
                        len--;
                        break;
                case 'd':
                        mult = 86400;
                        len--;
                        break;
                default:
                        break;
                }
        }
        rc = mg_policy_parse_uint(s, len, INT64_MAX / 86400, &v);
        if (rc == 0)
                v *= mult;
        if (rc == -1)
                return mg_err_set(MG_ERR_CONFIG, detail, detail_size,
                                  "%s is not a duration in whole seconds "
                                  "(e.g. 300, 90s, 15m, 1h, 1d)",
                                  mg_policy_quote(qbuf, sizeof(qbuf), s,
                                                  olen));
        if (rc == -2 || v < (int64_t)prop->min || v > (int64_t)prop->max)
                return mg_err_set(MG_ERR_CONFIG, detail, detail_size,
                                  "%s is out of range %.0fs..%.0fs (1 "
                                  "year)",
                                  mg_policy_quote(qbuf, sizeof(qbuf), s,
                                                  olen),
                                  prop->min, prop->max);
        *out = v;
        return MG_OK;
}

/* Decimal number (no hex, inf or nan). */
static mg_err_t mg_policy_parse_risk(const char *s, size_t len,
                                     const struct mg_policy_prop *prop,
                                     double *out, char *detail,
                                     size_t detail_size) {
        char buf[64], qbuf[QBUF_SIZE], *end;
        double v;
        size_t i;

        for (i = 0; i < len; i++)
                if (!s[i] || !strchr("0123456789+-.eE", s[i]))
                        break;
        if (len == 0 || i < len || len >= sizeof(buf))
                return mg_err_set(MG_ERR_CONFIG, detail, detail_size,
                                  "%s is not a number",
                                  mg_policy_quote(qbuf, sizeof(qbuf), s,
                                                  len));
        memcpy(buf, s, len);
        buf[len] = '\0';
        v = strtod(buf, &end);
        if (end != buf + len)
                return mg_err_set(MG_ERR_CONFIG, detail, detail_size,
                                  "%s is not a number",
                                  mg_policy_quote(qbuf, sizeof(qbuf), s,
                                                  len));
        if (!(v >= prop->min && v <= prop->max))
                return mg_err_set(MG_ERR_CONFIG, detail, detail_size,
                                  "%s is out of range %g..%g",
                                  mg_policy_quote(qbuf, sizeof(qbuf), s,
                                                  len),
                                  prop->min, prop->max);
        *out = v;
        return MG_OK;
}

static mg_err_t mg_policy_parse_bool(const char *s, size_t len, int *out,
                                     char *detail, size_t detail_size) {
        static const char *const yes[] = {"true", "yes", "on"};
        static const char *const no[] = {"false", "no", "off"};
        char qbuf[QBUF_SIZE];
        size_t i;

        for (i = 0; i < sizeof(yes) / sizeof(*yes); i++) {
                if (strlen(yes[i]) == len && !strncasecmp(s, yes[i], len)) {
                        *out = 1;
                        return MG_OK;
                }
                if (strlen(no[i]) == len && !strncasecmp(s, no[i], len)) {
                        *out = 0;
                        return MG_OK;
                }
        }
        return mg_err_set(MG_ERR_CONFIG, detail, detail_size,
                          "%s is not a boolean (true/false, yes/no, "
                          "on/off)",
                          mg_policy_quote(qbuf, sizeof(qbuf), s, len));
}

static mg_err_t mg_policy_parse_int(const char *s, size_t len,
                                    const struct mg_policy_prop *prop,
                                    int64_t *out, char *detail,
                                    size_t detail_size) {
        char qbuf[QBUF_SIZE];
        int64_t v;
        int rc;

        rc = mg_policy_parse_uint(s, len, INT64_MAX, &v);
        if (rc == -1)
                return mg_err_set(MG_ERR_CONFIG, detail, detail_size,
                                  "%s is not a non-negative integer",
                                  mg_policy_quote(qbuf, sizeof(qbuf), s,
                                                  len));
        if (rc == -2 || v < (int64_t)prop->min || v > (int64_t)prop->max)
                return mg_err_set(MG_ERR_CONFIG, detail, detail_size,
                                  "%s is out of range %.0f..%.0f",
                                  mg_policy_quote(qbuf, sizeof(qbuf), s,
                                                  len),
                                  prop->min, prop->max);
        *out = v;
        return MG_OK;
}

/* Index of s in names (exact, case-insensitive), or -1. */
static int mg_policy_lookup(const char *const *names, int cnt, const char *s,
                            size_t len) {
        int i;

        for (i = 0; i < cnt; i++)
                if (strlen(names[i]) == len && !strncasecmp(names[i], s, len))
                        return i;
        return -1;
}

/* "a, b, c" into buf, for "expected one of" messages. */
static const char *mg_policy_names_list(const char *const *names, int cnt,
                                        char *buf, size_t size) {
        size_t o = 0;
        int i;

        buf[0] = '\0';
        for (i = 0; i < cnt && o < size; i++)
                o += (size_t)snprintf(buf + o, size - o, "%s%s",
                                      i ? ", " : "", names[i]);
        return buf;
}

static mg_err_t mg_policy_parse_enum(const char *const *names, int cnt,
                                     const char *what, const char *s,
                                     size_t len, int *out, char *detail,
                                     size_t detail_size) {
        char qbuf[QBUF_SIZE], list[256];
        int i = mg_policy_lookup(names, cnt, s, len);

        if (i < 0)
                return mg_err_set(MG_ERR_CONFIG, detail, detail_size,
                                  "unknown %s %s (expected one of: %s)", what,
                                  mg_policy_quote(qbuf, sizeof(qbuf), s, len),
                                  mg_policy_names_list(names, cnt, list,
                                                       sizeof(list)));
        *out = i;
        return MG_OK;
}

/* Check a glob; scope globs may not contain spaces either. */
static mg_err_t mg_policy_check_glob(const char *s, size_t len, int scope,
                                     char *detail, size_t detail_size) {
        char qbuf[QBUF_SIZE];
        size_t i;

        if (len == 0)
                return mg_err_set(MG_ERR_CONFIG, detail, detail_size,
                                  "bad glob: empty");
        if (len > MG_POLICY_GLOB_MAX)
                return mg_err_set(MG_ERR_CONFIG, detail, detail_size,
                                  "bad glob: %zu bytes, the limit is %d", len,
                                  MG_POLICY_GLOB_MAX);
        for (i = 0; i < len; i++) {
                unsigned char c = (unsigned char)s[i];
                const char *why = NULL;

                if (c < 0x20 || c == 0x7f)
                        why = "a control character";
                else if (c == '?' || c == '[' || c == ']')
                        why = "'?', '[' or ']' (only '*' is a wildcard)";
                else if (c == '*' && i + 1 < len && s[i + 1] == '*')
                        why = "'**' (one '*' already matches any run)";
                else if (c == ' ' && scope)
                        why = "a space (list scopes separately)";
                if (why)
                        return mg_err_set(MG_ERR_CONFIG, detail, detail_size,
                                          "bad glob %s: %s at byte %zu",
                                          mg_policy_quote(qbuf, sizeof(qbuf),
                                                          s, len),
                                          why, i + 1);
        }
        return MG_OK;
}

/* Parse a scalar-typed prop's text into path. */
static mg_err_t mg_policy_apply(struct mg_policy *pol,
                                struct mg_policy_path *path, size_t pi,
                                const char *text, size_t len, char *detail,
                                size_t detail_size) {
        const struct mg_policy_prop *prop = &mg_policy_props[pi];
        void *field = mg_policy_field(path, pi);
        char qbuf[QBUF_SIZE];
        const char *s;
        mg_err_t err;

        if (prop->type == MG_POLICY_T_STR || prop->type == MG_POLICY_T_GLOB) {
                if (prop->type == MG_POLICY_T_STR &&
                    ((double)len < prop->min || (double)len > prop->max))
                        return mg_err_set(MG_ERR_CONFIG, detail, detail_size,
                                          "%s is %zu bytes long, expected "
                                          "%.0f to %.0f",
                                          mg_policy_quote(qbuf, sizeof(qbuf),
                                                          text, len),
                                          len, prop->min, prop->max);
                if (prop->type == MG_POLICY_T_GLOB &&
                    (err = mg_policy_check_glob(text, len, 0, detail,
                                                detail_size)))
                        return err;
                s = mg_policy_strdup(pol, text, len);
                if (!s)
                        return mg_err_set(MG_ERR_NOMEM, detail, detail_size,
                                          "out of memory");
                *(const char **)field = s;
                return MG_OK;
        }
        switch (prop->type) {
        case MG_POLICY_T_SECONDS:
                return mg_policy_parse_seconds(text, len, prop,
                                               (int64_t *)field, detail,
                                               detail_size);
        case MG_POLICY_T_RISK:
                return mg_policy_parse_risk(text, len, prop, (double *)field,
                                            detail, detail_size);
        case MG_POLICY_T_BOOL:
                return mg_policy_parse_bool(text, len, (int *)field, detail,
                                            detail_size);
        case MG_POLICY_T_INT:
                return mg_policy_parse_int(text, len, prop, (int64_t *)field,
                                           detail, detail_size);
        case MG_POLICY_T_DEGRADED:
                return mg_policy_parse_enum(mg_policy_degraded_names,
                                            MG_POLICY_DEGRADED__CNT,
                                            "degraded mode", text, len,
                                            (int *)field, detail,
                                            detail_size);
        default:
                break;
        }
        /* Lists are read by their own loaders, never from text. */
        assert(!"not a scalar key");
        return mg_err_set(MG_ERR_CONFIG, detail, detail_size,
                          "not a scalar key");
}

/* Built-in defaults of every key. */
static void mg_policy_path_init(struct mg_policy *pol,
                                struct mg_policy_path *path) {
        char detail[256];
        size_t i;

        memset(path, 0, sizeof(*path));
        path->grants = (1u << MG_GRANT__CNT) - 1;
        path->max_depth = -1;
        for (i = 0; i < MG_POLICY_PROP_CNT; i++) {
                mg_err_t err;

                if (!mg_policy_props[i].def)
                        continue;
                err = mg_policy_apply(pol, path, i, mg_policy_props[i].def,
                                      strlen(mg_policy_props[i].def), detail,
                                      sizeof(detail));
                assert(!err && "a table default does not parse");
                (void)err;
        }
}

/*
 * Loading YAML.
 */

/* Where each key of one path (or of defaults) was set. */
struct mg_policy_src {
        yaml_mark_t start;                     /* the path's mapping */
        yaml_mark_t at[MG_POLICY_PROP_CNT];    /* each key, when set */
        uint32_t set;                          /* bit i: prop i was set */
};

/* State of one load. */
struct mg_policy_load {
        struct mg_policy *pol;          /* being built */
        const char *name;               /* file name for messages */
        yaml_parser_t parser;           /* libyaml event parser */
        struct mg_policy_path defaults; /* "defaults" over the table's */
        struct mg_policy_src defaults_src; /* where defaults were set */
        struct mg_policy_src *srcs;     /* per path, parallel to paths */
        size_t cap;                     /* paths/srcs allocated */
        const char **items;             /* scratch list, LIST_MAX entries */
        char *errstr;                   /* caller's error buffer */
        size_t errstr_size;             /* its size */
};

/* Report an error at a 0-based libyaml mark. */
static mg_err_t mg_policy_err(struct mg_policy_load *ld, yaml_mark_t mark,
                              const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static mg_err_t mg_policy_err(struct mg_policy_load *ld, yaml_mark_t mark,
                              const char *fmt, ...) {
        char detail[768];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(detail, sizeof(detail), fmt, ap);
        va_end(ap);
        return mg_err_set(MG_ERR_CONFIG, ld->errstr, ld->errstr_size,
                          "%s:%zu:%zu: %s", ld->name, mark.line + 1,
                          mark.column + 1, detail);
}

static mg_err_t mg_policy_oom(struct mg_policy_load *ld) {
        return mg_err_set(MG_ERR_NOMEM, ld->errstr, ld->errstr_size,
                          "%s: out of memory", ld->name);
}

/* Next event; a libyaml error becomes MG_ERR_CONFIG with its position.
 * Aliases are refused here, once for every caller: a policy has no use
 * for them and they are the "billion laughs" door. */
static mg_err_t mg_policy_next(struct mg_policy_load *ld,
                               yaml_event_t *event) {
        yaml_parser_t *parser = &ld->parser;

        if (!yaml_parser_parse(parser, event)) {
                memset(event, 0, sizeof(*event)); /* nothing to delete */
                if (parser->error == YAML_MEMORY_ERROR)
                        return mg_policy_oom(ld);
                if (parser->error == YAML_READER_ERROR)
                        return mg_err_set(MG_ERR_CONFIG, ld->errstr,
                                          ld->errstr_size, "%s: byte %zu: %s",
                                          ld->name, parser->problem_offset,
                                          parser->problem
                                                  ? parser->problem
                                                  : "cannot read input");
                return mg_err_set(MG_ERR_CONFIG, ld->errstr, ld->errstr_size,
                                  "%s:%zu:%zu: YAML syntax error: %s%s%s",
                                  ld->name, parser->problem_mark.line + 1,
                                  parser->problem_mark.column + 1,
                                  parser->problem ? parser->problem
                                                  : "unknown",
                                  parser->context ? " " : "",
                                  parser->context ? parser->context : "");
        }
        if (event->type == YAML_ALIAS_EVENT)
                return mg_policy_err(ld, event->start_mark,
                                     "aliases are not supported");
        return MG_OK;
}

/* A plain scalar YAML reads as null: "", "~", "null". */
static int mg_policy_is_null(const yaml_event_t *event) {
        const char *v = (const char *)event->data.scalar.value;

        if (event->type != YAML_SCALAR_EVENT ||
            event->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
                return 0;
        return !*v || !strcmp(v, "~") || !strcmp(v, "null") ||
               !strcmp(v, "Null") || !strcmp(v, "NULL");
}

/* What a value event is, for "expected X, found Y". */
static const char *mg_policy_kind(const yaml_event_t *event) {
        switch (event->type) {
        case YAML_SCALAR_EVENT:
                return mg_policy_is_null(event) ? "nothing" : "a scalar";
        case YAML_SEQUENCE_START_EVENT:
                return "a list";
        case YAML_MAPPING_START_EVENT:
                return "a mapping";
        default:
                return "something else";
        }
}

/* A non-null scalar's text, or an error naming what was expected. */
static mg_err_t mg_policy_scalar(struct mg_policy_load *ld,
                                 const yaml_event_t *val, const char *where,
                                 const char *expected) {
        if (val->type == YAML_SCALAR_EVENT && !mg_policy_is_null(val) &&
            !memchr(val->data.scalar.value, '\0', val->data.scalar.length))
                return MG_OK;
        if (val->type == YAML_SCALAR_EVENT && !mg_policy_is_null(val))
                return mg_policy_err(ld, val->start_mark,
                                     "%s: value contains a NUL byte", where);
        return mg_policy_err(ld, val->start_mark, "%s: expected %s, found %s",
                             where, expected, mg_policy_kind(val));
}

/* "unknown key 'x'" with "; did you mean 'y'?" when one of names (cnt,
 * stride bytes apart, starting at first) is close. */
static void mg_policy_unknown(char *buf, size_t size, const char *key,
                              size_t klen, const char *const *names,
                              size_t cnt, size_t stride) {
        char qbuf[QBUF_SIZE], k[MG_POLICY_KEY_MAX + 1];
        const char *best = NULL, *name;
        int best_d = 3, d;
        size_t i;

        mg_policy_quote(qbuf, sizeof(qbuf), key, klen);
        if (klen <= MG_POLICY_KEY_MAX) {
                memcpy(k, key, klen);
                k[klen] = '\0';
                for (i = 0; i < cnt; i++) {
                        name = *(const char *const *)((const char *)names +
                                                      i * stride);
                        d = mg_conf_distance(k, name);
                        if (d < best_d) {
                                best_d = d;
                                best = name;
                        }
                }
        }
        if (best)
                snprintf(buf, size, "unknown key %s; did you mean '%s'?",
                         qbuf, best);
        else
                snprintf(buf, size, "unknown key %s", qbuf);
}

/* A scope glob list: the sequence start was read into val. */
static mg_err_t mg_policy_load_globs(struct mg_policy_load *ld,
                                     const yaml_event_t *val,
                                     const char *where,
                                     struct mg_policy_globs *out) {
        char detail[512];
        yaml_event_t item;
        const char **pats;
        mg_err_t err = MG_OK;
        int cnt = 0, i;

        memset(&item, 0, sizeof(item));
        if (val->type != YAML_SEQUENCE_START_EVENT)
                return mg_policy_err(ld, val->start_mark,
                                     "%s: expected a list of scope globs "
                                     "(e.g. [\"deploy:read\", \"repo:*\"]), "
                                     "found %s",
                                     where, mg_policy_kind(val));
        for (;;) {
                if ((err = mg_policy_next(ld, &item)))
                        goto out;
                if (item.type == YAML_SEQUENCE_END_EVENT)
                        break;
                if ((err = mg_policy_scalar(ld, &item, where,
                                            "a scope glob")))
                        goto out;
                if (cnt == MG_POLICY_LIST_MAX) {
                        err = mg_policy_err(ld, item.start_mark,
                                            "%s: more than %d entries", where,
                                            MG_POLICY_LIST_MAX);
                        goto out;
                }
                if (mg_policy_check_glob((const char *)item.data.scalar.value,
                                         item.data.scalar.length, 1, detail,
                                         sizeof(detail))) {
                        err = mg_policy_err(ld, item.start_mark, "%s: %s",
                                            where, detail);
                        goto out;
                }
                ld->items[cnt] = mg_policy_strdup(
                        ld->pol, (const char *)item.data.scalar.value,
                        item.data.scalar.length);
                if (!ld->items[cnt]) {
                        err = mg_policy_oom(ld);
                        goto out;
                }
                cnt++;
                yaml_event_delete(&item);
        }
        out->cnt = cnt;
        out->pats = NULL;
        if (cnt > 0) {
                pats = mg_policy_alloc(ld->pol, (size_t)cnt * sizeof(*pats));
                if (!pats) {
                        err = mg_policy_oom(ld);
                        goto out;
                }
                for (i = 0; i < cnt; i++)
                        pats[i] = ld->items[i];
                out->pats = pats;
        }
out:
        yaml_event_delete(&item);
        return err;
}

/* grant_types: a list of grant names. */
static mg_err_t mg_policy_load_grants(struct mg_policy_load *ld,
                                      const yaml_event_t *val,
                                      const char *where, unsigned *out) {
        char detail[512];
        yaml_event_t item;
        mg_err_t err = MG_OK;
        unsigned mask = 0;
        int g = 0;

        memset(&item, 0, sizeof(item));
        if (val->type != YAML_SEQUENCE_START_EVENT)
                return mg_policy_err(ld, val->start_mark,
                                     "%s: expected a list of grant types, "
                                     "found %s",
                                     where, mg_policy_kind(val));
        for (;;) {
                if ((err = mg_policy_next(ld, &item)))
                        goto out;
                if (item.type == YAML_SEQUENCE_END_EVENT)
                        break;
                if ((err = mg_policy_scalar(ld, &item, where,
                                            "a grant type")))
                        goto out;
                if (mg_policy_parse_enum(mg_grant_type_names, MG_GRANT__CNT,
                                         "grant type",
                                         (const char *)item.data.scalar.value,
                                         item.data.scalar.length, &g, detail,
                                         sizeof(detail))) {
                        err = mg_policy_err(ld, item.start_mark, "%s: %s",
                                            where, detail);
                        goto out;
                }
                mask |= 1u << g;
                yaml_event_delete(&item);
        }
        *out = mask;
out:
        yaml_event_delete(&item);
        return err;
}

/* The body of a small item mapping (a step or a window): calls one of the
 * handlers by key. Item keys are few and fixed, so the handlers are a
 * switch in the caller; this reads the key and checks for duplicates. */
static mg_err_t mg_policy_item_key(struct mg_policy_load *ld,
                                   const yaml_event_t *key,
                                   const char *const *names, size_t cnt,
                                   const char *where, yaml_mark_t *seen,
                                   unsigned *seen_mask, int *idx) {
        char detail[512];
        size_t i;

        if (key->type != YAML_SCALAR_EVENT)
                return mg_policy_err(ld, key->start_mark,
                                     "%s: a key must be a scalar", where);
        for (i = 0; i < cnt; i++)
                if (strlen(names[i]) == key->data.scalar.length &&
                    !memcmp(names[i], key->data.scalar.value,
                            key->data.scalar.length))
                        break;
        if (i == cnt) {
                mg_policy_unknown(detail, sizeof(detail),
                                  (const char *)key->data.scalar.value,
                                  key->data.scalar.length, names, cnt,
                                  sizeof(*names));
                return mg_policy_err(ld, key->start_mark, "%s: %s", where,
                                     detail);
        }
        if (*seen_mask & (1u << i))
                return mg_policy_err(ld, key->start_mark,
                                     "%s: duplicate key '%s' (first set at "
                                     "%zu:%zu)",
                                     where, names[i], seen[i].line + 1,
                                     seen[i].column + 1);
        *seen_mask |= 1u << i;
        seen[i] = key->start_mark;
        *idx = (int)i;
        return MG_OK;
}

/* ttl_by_risk: a list of {below, max_ttl}. */
static mg_err_t mg_policy_load_steps(struct mg_policy_load *ld,
                                     const yaml_event_t *val,
                                     const char *where,
                                     struct mg_policy_steps *out) {
        static const char *const keys[] = {"below", "max_ttl"};
        static const struct mg_policy_prop below_prop = {
                "below", MG_POLICY_T_RISK, 0, NULL, 0, 100, 0, NULL};
        static const struct mg_policy_prop ttl_prop = {
                "max_ttl", MG_POLICY_T_SECONDS, 0, NULL, 1, MG_POLICY_TTL_MAX,
                0, NULL};
        struct mg_policy_step steps[MG_POLICY_STEPS_MAX], *v;
        char detail[512], item_where[224];
        yaml_mark_t seen[2], item_mark;
        yaml_event_t ev;
        unsigned mask;
        mg_err_t err = MG_OK;
        int cnt = 0, k = 0;

        memset(&ev, 0, sizeof(ev));
        if (val->type != YAML_SEQUENCE_START_EVENT)
                return mg_policy_err(ld, val->start_mark,
                                     "%s: expected a list of {below: risk, "
                                     "max_ttl: duration} steps, found %s",
                                     where, mg_policy_kind(val));
        for (;;) {
                if ((err = mg_policy_next(ld, &ev)))
                        goto out;
                if (ev.type == YAML_SEQUENCE_END_EVENT)
                        break;
                snprintf(item_where, sizeof(item_where), "%s[%d]", where,
                         cnt);
                if (ev.type != YAML_MAPPING_START_EVENT) {
                        err = mg_policy_err(ld, ev.start_mark,
                                            "%s: expected a mapping {below, "
                                            "max_ttl}, found %s",
                                            item_where, mg_policy_kind(&ev));
                        goto out;
                }
                if (cnt == MG_POLICY_STEPS_MAX) {
                        err = mg_policy_err(ld, ev.start_mark,
                                            "%s: more than %d steps", where,
                                            MG_POLICY_STEPS_MAX);
                        goto out;
                }
                mask = 0;
                item_mark = ev.start_mark;
                seen[0] = seen[1] = ev.start_mark;
                for (;;) {
                        yaml_event_delete(&ev);
                        if ((err = mg_policy_next(ld, &ev)))
                                goto out;
                        if (ev.type == YAML_MAPPING_END_EVENT)
                                break;
                        if ((err = mg_policy_item_key(ld, &ev, keys, 2,
                                                      item_where, seen, &mask,
                                                      &k)))
                                goto out;
                        yaml_event_delete(&ev);
                        if ((err = mg_policy_next(ld, &ev)) ||
                            (err = mg_policy_scalar(
                                     ld, &ev, item_where,
                                     k == 0 ? "a risk" : "a duration")))
                                goto out;
                        err = k == 0 ? mg_policy_parse_risk(
                                               (const char *)
                                                       ev.data.scalar.value,
                                               ev.data.scalar.length,
                                               &below_prop,
                                               &steps[cnt].below, detail,
                                               sizeof(detail))
                                     : mg_policy_parse_seconds(
                                               (const char *)
                                                       ev.data.scalar.value,
                                               ev.data.scalar.length,
                                               &ttl_prop,
                                               &steps[cnt].max_ttl, detail,
                                               sizeof(detail));
                        if (err) {
                                err = mg_policy_err(ld, ev.start_mark,
                                                    "%s.%s: %s", item_where,
                                                    keys[k], detail);
                                goto out;
                        }
                }
                if (mask != 3u) {
                        err = mg_policy_err(ld, item_mark,
                                            "%s: missing '%s'", item_where,
                                            mask & 1u ? "max_ttl" : "below");
                        goto out;
                }
                if (cnt > 0 && !(steps[cnt].below > steps[cnt - 1].below)) {
                        err = mg_policy_err(ld, seen[0],
                                            "%s.below: %g is not above the "
                                            "previous step's %g (steps go "
                                            "up in risk)",
                                            item_where, steps[cnt].below,
                                            steps[cnt - 1].below);
                        goto out;
                }
                if (cnt > 0 && steps[cnt].max_ttl > steps[cnt - 1].max_ttl) {
                        err = mg_policy_err(ld, seen[1],
                                            "%s.max_ttl: %" PRId64 "s is "
                                            "longer than the previous "
                                            "step's %" PRId64 "s (the TTL "
                                            "may only shrink as risk rises)",
                                            item_where, steps[cnt].max_ttl,
                                            steps[cnt - 1].max_ttl);
                        goto out;
                }
                cnt++;
                yaml_event_delete(&ev);
        }
        out->cnt = cnt;
        out->v = NULL;
        if (cnt > 0) {
                v = mg_policy_alloc(ld->pol, (size_t)cnt * sizeof(*v));
                if (!v) {
                        err = mg_policy_oom(ld);
                        goto out;
                }
                memcpy(v, steps, (size_t)cnt * sizeof(*v));
                out->v = v;
        }
out:
        yaml_event_delete(&ev);
        return err;
}

/* "HH:MM" at s (5 bytes) to minutes; 24:00 only when end is set. */
static int mg_policy_hhmm(const char *s, int end) {
        int h, m;

        if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' ||
            s[2] != ':' || s[3] < '0' || s[3] > '5' || s[4] < '0' ||
            s[4] > '9')
                return -1;
        h = (s[0] - '0') * 10 + (s[1] - '0');
        m = (s[3] - '0') * 10 + (s[4] - '0');
        if (h > 24 || (h == 24 && (m != 0 || !end)))
                return -1;
        return h * 60 + m;
}

/* A window's hours: "HH:MM-HH:MM", start < end. */
static mg_err_t mg_policy_parse_hours(const char *s, size_t len,
                                      struct mg_policy_window *w,
                                      char *detail, size_t detail_size) {
        char qbuf[QBUF_SIZE];

        if (len != 11 || s[5] != '-' ||
            (w->start_min = mg_policy_hhmm(s, 0)) < 0 ||
            (w->end_min = mg_policy_hhmm(s + 6, 1)) < 0)
                return mg_err_set(MG_ERR_CONFIG, detail, detail_size,
                                  "bad window: hours %s is not "
                                  "\"HH:MM-HH:MM\" (UTC, 00:00 to 24:00)",
                                  mg_policy_quote(qbuf, sizeof(qbuf), s,
                                                  len));
        if (w->start_min >= w->end_min)
                return mg_err_set(MG_ERR_CONFIG, detail, detail_size,
                                  "bad window: hours %s end before they "
                                  "start (split a window across midnight "
                                  "into two)",
                                  mg_policy_quote(qbuf, sizeof(qbuf), s,
                                                  len));
        return MG_OK;
}

/* A window's days: a list of day names. */
static mg_err_t mg_policy_load_days(struct mg_policy_load *ld,
                                    const yaml_event_t *val,
                                    const char *where, unsigned *out) {
        char detail[512];
        yaml_event_t item;
        mg_err_t err = MG_OK;
        unsigned mask = 0;
        int d = 0;

        memset(&item, 0, sizeof(item));
        if (val->type != YAML_SEQUENCE_START_EVENT)
                return mg_policy_err(ld, val->start_mark,
                                     "%s: bad window: expected a list of "
                                     "days (e.g. [mon, tue]), found %s",
                                     where, mg_policy_kind(val));
        for (;;) {
                if ((err = mg_policy_next(ld, &item)))
                        goto out;
                if (item.type == YAML_SEQUENCE_END_EVENT)
                        break;
                if ((err = mg_policy_scalar(ld, &item, where, "a day")))
                        goto out;
                if (mg_policy_parse_enum(mg_policy_day_names, 7, "day",
                                         (const char *)item.data.scalar.value,
                                         item.data.scalar.length, &d, detail,
                                         sizeof(detail))) {
                        err = mg_policy_err(ld, item.start_mark,
                                            "%s: bad window: %s", where,
                                            detail);
                        goto out;
                }
                mask |= 1u << d;
                yaml_event_delete(&item);
        }
        if (!mask) {
                err = mg_policy_err(ld, val->start_mark,
                                    "%s: bad window: no days (leave 'days' "
                                    "out for every day)",
                                    where);
                goto out;
        }
        *out = mask;
out:
        yaml_event_delete(&item);
        return err;
}

/* release_windows: a list of {scope, days, hours}. */
static mg_err_t mg_policy_load_windows(struct mg_policy_load *ld,
                                       const yaml_event_t *val,
                                       const char *where,
                                       struct mg_policy_windows *out) {
        static const char *const keys[] = {"scope", "days", "hours"};
        struct mg_policy_window wins[MG_POLICY_WINDOWS_MAX], *v, *w;
        char detail[512], item_where[224], key_where[256];
        yaml_mark_t seen[3], item_mark;
        yaml_event_t ev;
        unsigned mask;
        mg_err_t err = MG_OK;
        int cnt = 0, k = 0;

        memset(&ev, 0, sizeof(ev));
        if (val->type != YAML_SEQUENCE_START_EVENT)
                return mg_policy_err(ld, val->start_mark,
                                     "%s: expected a list of {scope, days, "
                                     "hours} windows, found %s",
                                     where, mg_policy_kind(val));
        for (;;) {
                if ((err = mg_policy_next(ld, &ev)))
                        goto out;
                if (ev.type == YAML_SEQUENCE_END_EVENT)
                        break;
                snprintf(item_where, sizeof(item_where), "%s[%d]", where,
                         cnt);
                if (ev.type != YAML_MAPPING_START_EVENT) {
                        err = mg_policy_err(ld, ev.start_mark,
                                            "%s: expected a mapping {scope, "
                                            "days, hours}, found %s",
                                            item_where, mg_policy_kind(&ev));
                        goto out;
                }
                if (cnt == MG_POLICY_WINDOWS_MAX) {
                        err = mg_policy_err(ld, ev.start_mark,
                                            "%s: more than %d windows", where,
                                            MG_POLICY_WINDOWS_MAX);
                        goto out;
                }
                w = &wins[cnt];
                item_mark = ev.start_mark;
                w->scope = NULL;
                w->days = 0x7f;
                w->start_min = 0;
                w->end_min = 24 * 60;
                mask = 0;
                for (;;) {
                        yaml_event_delete(&ev);
                        if ((err = mg_policy_next(ld, &ev)))
                                goto out;
                        if (ev.type == YAML_MAPPING_END_EVENT)
                                break;
                        if ((err = mg_policy_item_key(ld, &ev, keys, 3,
                                                      item_where, seen, &mask,
                                                      &k)))
                                goto out;
                        snprintf(key_where, sizeof(key_where), "%s.%s",
                                 item_where, keys[k]);
                        yaml_event_delete(&ev);
                        if ((err = mg_policy_next(ld, &ev)))
                                goto out;
                        if (k == 1) {
                                if ((err = mg_policy_load_days(ld, &ev,
                                                               key_where,
                                                               &w->days)))
                                        goto out;
                                continue;
                        }
                        if ((err = mg_policy_scalar(ld, &ev, key_where,
                                                    k == 0 ? "a scope glob"
                                                           : "\"HH:MM-HH:MM\""
                                                    )))
                                goto out;
                        if (k == 0)
                                err = mg_policy_check_glob(
                                        (const char *)ev.data.scalar.value,
                                        ev.data.scalar.length, 1, detail,
                                        sizeof(detail));
                        else
                                err = mg_policy_parse_hours(
                                        (const char *)ev.data.scalar.value,
                                        ev.data.scalar.length, w, detail,
                                        sizeof(detail));
                        if (err) {
                                err = mg_policy_err(ld, ev.start_mark,
                                                    "%s: %s", key_where,
                                                    detail);
                                goto out;
                        }
                        if (k == 0) {
                                w->scope = mg_policy_strdup(
                                        ld->pol,
                                        (const char *)ev.data.scalar.value,
                                        ev.data.scalar.length);
                                if (!w->scope) {
                                        err = mg_policy_oom(ld);
                                        goto out;
                                }
                        }
                }
                if (!(mask & 1u)) {
                        err = mg_policy_err(ld, item_mark,
                                            "%s: bad window: missing 'scope'",
                                            item_where);
                        goto out;
                }
                cnt++;
                yaml_event_delete(&ev);
        }
        out->cnt = cnt;
        out->v = NULL;
        if (cnt > 0) {
                v = mg_policy_alloc(ld->pol, (size_t)cnt * sizeof(*v));
                if (!v) {
                        err = mg_policy_oom(ld);
                        goto out;
                }
                memcpy(v, wins, (size_t)cnt * sizeof(*v));
                out->v = v;
        }
out:
        yaml_event_delete(&ev);
        return err;
}

/* Index of the prop named key (klen bytes), or -1. */
static int mg_policy_find(const char *key, size_t klen) {
        size_t i;

        for (i = 0; i < MG_POLICY_PROP_CNT; i++)
                if (strlen(mg_policy_props[i].name) == klen &&
                    !memcmp(mg_policy_props[i].name, key, klen))
                        return (int)i;
        return -1;
}

/* Whether key + "." starts some prop name (a nested mapping's key). */
static int mg_policy_is_prefix(const char *key, size_t klen) {
        size_t i;

        for (i = 0; i < MG_POLICY_PROP_CNT; i++)
                if (strlen(mg_policy_props[i].name) > klen &&
                    !memcmp(mg_policy_props[i].name, key, klen) &&
                    mg_policy_props[i].name[klen] == '.')
                        return 1;
        return 0;
}

/* The value of prop pi (its first event in val) into path. */
static mg_err_t mg_policy_load_value(struct mg_policy_load *ld,
                                     struct mg_policy_path *path, size_t pi,
                                     const yaml_event_t *val,
                                     const char *where) {
        const struct mg_policy_prop *prop = &mg_policy_props[pi];
        void *field = mg_policy_field(path, pi);
        char detail[512];
        mg_err_t err;

        switch (prop->type) {
        case MG_POLICY_T_SCOPES:
                return mg_policy_load_globs(ld, val, where,
                                            (struct mg_policy_globs *)field);
        case MG_POLICY_T_GRANTS:
                return mg_policy_load_grants(ld, val, where,
                                             (unsigned *)field);
        case MG_POLICY_T_STEPS:
                return mg_policy_load_steps(ld, val, where,
                                            (struct mg_policy_steps *)field);
        case MG_POLICY_T_WINDOWS:
                return mg_policy_load_windows(
                        ld, val, where, (struct mg_policy_windows *)field);
        default:
                break;
        }
        err = mg_policy_scalar(ld, val, where,
                               prop->type == MG_POLICY_T_SECONDS
                                       ? "a duration"
                               : prop->type == MG_POLICY_T_RISK ? "a risk"
                               : prop->type == MG_POLICY_T_BOOL
                                       ? "a boolean"
                               : prop->type == MG_POLICY_T_INT
                                       ? "an integer"
                               : prop->type == MG_POLICY_T_GLOB ? "a glob"
                                                                : "a string");
        if (err)
                return err;
        err = mg_policy_apply(ld->pol, path, pi,
                              (const char *)val->data.scalar.value,
                              val->data.scalar.length, detail,
                              sizeof(detail));
        if (err == MG_ERR_NOMEM)
                return mg_policy_oom(ld);
        if (err)
                return mg_policy_err(ld, val->start_mark, "%s: %s", where,
                                     detail);
        return MG_OK;
}

/* The body of a path mapping (or of defaults, or of a nested mapping
 * under prefix) whose start event was consumed, through its end event.
 * Nesting is one level deep at most ("thresholds"), so the recursion is
 * bounded by the table. */
static mg_err_t mg_policy_load_path(struct mg_policy_load *ld,
                                    struct mg_policy_path *path,
                                    struct mg_policy_src *src, int defaults,
                                    const char *where, const char *prefix) {
        char key[MG_POLICY_KEY_MAX + 1], kwhere[192], detail[512];
        yaml_event_t kev, val;
        size_t plen = strlen(prefix), klen;
        mg_err_t err = MG_OK;
        int pi;

        memset(&kev, 0, sizeof(kev));
        memset(&val, 0, sizeof(val));
        for (;;) {
                if ((err = mg_policy_next(ld, &kev)))
                        goto out;
                if (kev.type == YAML_MAPPING_END_EVENT)
                        goto out;
                if (kev.type != YAML_SCALAR_EVENT) {
                        err = mg_policy_err(ld, kev.start_mark,
                                            "%s: a key must be a scalar",
                                            where);
                        goto out;
                }
                klen = kev.data.scalar.length;
                if (plen + 1 + klen > MG_POLICY_KEY_MAX) {
                        mg_policy_unknown(detail, sizeof(detail),
                                          (const char *)kev.data.scalar.value,
                                          klen, NULL, 0, 0);
                        err = mg_policy_err(ld, kev.start_mark, "%s: %s",
                                            where, detail);
                        goto out;
                }
                if (plen) {
                        memcpy(key, prefix, plen);
                        key[plen] = '.';
                        memcpy(key + plen + 1, kev.data.scalar.value, klen);
                        klen += plen + 1;
                } else {
                        memcpy(key, kev.data.scalar.value, klen);
                }
                key[klen] = '\0';
                snprintf(kwhere, sizeof(kwhere), "%s.%s", where, key);
                pi = mg_policy_find(key, klen);
                if ((err = mg_policy_next(ld, &val)))
                        goto out;
                if (pi < 0 && mg_policy_is_prefix(key, klen)) {
                        if (val.type != YAML_MAPPING_START_EVENT) {
                                err = mg_policy_err(ld, val.start_mark,
                                                    "%s: expected a mapping, "
                                                    "found %s",
                                                    kwhere,
                                                    mg_policy_kind(&val));
                                goto out;
                        }
                        if ((err = mg_policy_load_path(ld, path, src,
                                                       defaults, where,
                                                       key)))
                                goto out;
                        yaml_event_delete(&kev);
                        yaml_event_delete(&val);
                        continue;
                }
                if (pi < 0) {
                        mg_policy_unknown(detail, sizeof(detail), key, klen,
                                          &mg_policy_props[0].name,
                                          MG_POLICY_PROP_CNT,
                                          sizeof(*mg_policy_props));
                        err = mg_policy_err(ld, kev.start_mark, "%s: %s",
                                            where, detail);
                        goto out;
                }
                if (defaults &&
                    (mg_policy_props[pi].flags & MG_POLICY_F_PER_PATH)) {
                        err = mg_policy_err(ld, kev.start_mark,
                                            "%s: '%s' belongs in each "
                                            "policy, not in defaults",
                                            where, key);
                        goto out;
                }
                if (src->set & (1u << pi)) {
                        err = mg_policy_err(ld, kev.start_mark,
                                            "%s: duplicate key '%s' (first "
                                            "set at %zu:%zu)",
                                            where, key,
                                            src->at[pi].line + 1,
                                            src->at[pi].column + 1);
                        goto out;
                }
                src->set |= 1u << pi;
                src->at[pi] = kev.start_mark;
                if ((err = mg_policy_load_value(ld, path, (size_t)pi, &val,
                                                kwhere)))
                        goto out;
                yaml_event_delete(&kev);
                yaml_event_delete(&val);
        }
out:
        yaml_event_delete(&kev);
        yaml_event_delete(&val);
        return err;
}

/* policies: a list of path mappings; the sequence start was consumed. */
static mg_err_t mg_policy_load_paths(struct mg_policy_load *ld) {
        struct mg_policy *pol = ld->pol;
        struct mg_policy_path *paths;
        struct mg_policy_src *srcs;
        char where[32];
        yaml_event_t ev;
        mg_err_t err = MG_OK;
        size_t cap;

        memset(&ev, 0, sizeof(ev));
        for (;;) {
                if ((err = mg_policy_next(ld, &ev)))
                        goto out;
                if (ev.type == YAML_SEQUENCE_END_EVENT)
                        goto out;
                snprintf(where, sizeof(where), "policies[%zu]", pol->cnt);
                if (ev.type != YAML_MAPPING_START_EVENT) {
                        err = mg_policy_err(ld, ev.start_mark,
                                            "%s: expected a mapping (client, "
                                            "resource, allowed_scopes, ...), "
                                            "found %s",
                                            where, mg_policy_kind(&ev));
                        goto out;
                }
                if (pol->cnt == MG_POLICY_PATHS_MAX) {
                        err = mg_policy_err(ld, ev.start_mark,
                                            "more than %d policies",
                                            MG_POLICY_PATHS_MAX);
                        goto out;
                }
                if (pol->cnt == ld->cap) {
                        cap = ld->cap ? 2 * ld->cap : 16;
                        paths = realloc(pol->paths, cap * sizeof(*paths));
                        if (paths)
                                pol->paths = paths;
                        srcs = realloc(ld->srcs, cap * sizeof(*srcs));
                        if (srcs)
                                ld->srcs = srcs;
                        if (!paths || !srcs) {
                                err = mg_policy_oom(ld);
                                goto out;
                        }
                        ld->cap = cap;
                }
                /* Fields stay zero until the merge: the set mask says
                 * which ones the path gave. */
                memset(&pol->paths[pol->cnt], 0, sizeof(*pol->paths));
                memset(&ld->srcs[pol->cnt], 0, sizeof(*ld->srcs));
                pol->paths[pol->cnt].index = pol->cnt;
                ld->srcs[pol->cnt].start = ev.start_mark;
                pol->cnt++;
                if ((err = mg_policy_load_path(ld, &pol->paths[pol->cnt - 1],
                                               &ld->srcs[pol->cnt - 1], 0,
                                               where, "")))
                        goto out;
                yaml_event_delete(&ev);
        }
out:
        yaml_event_delete(&ev);
        return err;
}

/* The top-level mapping; its start event was consumed. */
static mg_err_t mg_policy_load_top(struct mg_policy_load *ld,
                                   yaml_mark_t top_mark) {
        static const char *const keys[] = {"version", "defaults", "policies"};
        yaml_mark_t seen[3];
        yaml_event_t kev, val;
        unsigned mask = 0;
        mg_err_t err = MG_OK;
        int k;

        memset(&kev, 0, sizeof(kev));
        memset(&val, 0, sizeof(val));
        for (;;) {
                if ((err = mg_policy_next(ld, &kev)))
                        goto out;
                if (kev.type == YAML_MAPPING_END_EVENT)
                        break;
                if ((err = mg_policy_item_key(ld, &kev, keys, 3, "top level",
                                              seen, &mask, &k)) ||
                    (err = mg_policy_next(ld, &val)))
                        goto out;
                switch (k) {
                case 0:
                        if ((err = mg_policy_scalar(ld, &val, "version",
                                                    "1")))
                                goto out;
                        if (strcmp((const char *)val.data.scalar.value,
                                   "1")) {
                                err = mg_policy_err(ld, val.start_mark,
                                                    "version: only version "
                                                    "1 is known");
                                goto out;
                        }
                        break;
                case 1:
                        if (val.type != YAML_MAPPING_START_EVENT) {
                                err = mg_policy_err(ld, val.start_mark,
                                                    "defaults: expected a "
                                                    "mapping of path keys, "
                                                    "found %s",
                                                    mg_policy_kind(&val));
                                goto out;
                        }
                        ld->defaults_src.start = val.start_mark;
                        err = mg_policy_load_path(ld, &ld->defaults,
                                                  &ld->defaults_src, 1,
                                                  "defaults", "");
                        break;
                default:
                        if (val.type != YAML_SEQUENCE_START_EVENT) {
                                err = mg_policy_err(ld, val.start_mark,
                                                    "policies: expected a "
                                                    "list of policies, "
                                                    "found %s",
                                                    mg_policy_kind(&val));
                                goto out;
                        }
                        err = mg_policy_load_paths(ld);
                        break;
                }
                if (err)
                        goto out;
                yaml_event_delete(&kev);
                yaml_event_delete(&val);
        }
        if (!(mask & 4u))
                err = mg_policy_err(ld, top_mark,
                                    "missing 'policies' (a list of paths; "
                                    "an empty list denies every request)");
out:
        yaml_event_delete(&kev);
        yaml_event_delete(&val);
        return err;
}

/* Stream → one document → the top mapping → stream end. */
static mg_err_t mg_policy_load_stream(struct mg_policy_load *ld) {
        yaml_event_t ev;
        mg_err_t err;
        int docs = 0;

        memset(&ev, 0, sizeof(ev));
        if ((err = mg_policy_next(ld, &ev)))
                goto out;
        assert(ev.type == YAML_STREAM_START_EVENT);
        for (;;) {
                yaml_event_delete(&ev);
                if ((err = mg_policy_next(ld, &ev)))
                        goto out;
                if (ev.type == YAML_STREAM_END_EVENT)
                        break;
                if (docs++ > 0) {
                        err = mg_policy_err(ld, ev.start_mark,
                                            "only one YAML document is "
                                            "allowed");
                        goto out;
                }
                yaml_event_delete(&ev);
                if ((err = mg_policy_next(ld, &ev)))
                        goto out;
                if (ev.type != YAML_MAPPING_START_EVENT) {
                        err = mg_policy_err(ld, ev.start_mark,
                                            "expected a mapping with "
                                            "'policies' at the top level, "
                                            "found %s",
                                            mg_policy_kind(&ev));
                        goto out;
                }
                if ((err = mg_policy_load_top(ld, ev.start_mark)))
                        goto out;
                yaml_event_delete(&ev);
                if ((err = mg_policy_next(ld, &ev)))
                        goto out;
                assert(ev.type == YAML_DOCUMENT_END_EVENT);
        }
        if (!docs) {
                err = mg_policy_err(ld, ev.start_mark,
                                    "empty file: expected a mapping with "
                                    "'policies'");
                goto out;
        }
out:
        yaml_event_delete(&ev);
        return err;
}

/* Where to report a rule broken by keys pa and pb of path i: at pb, or
 * at pa, as the path set them; else as defaults set them; else at the
 * path itself (both are built-in defaults). */
static yaml_mark_t mg_policy_mark(const struct mg_policy_load *ld, size_t i,
                                  size_t pa, size_t pb) {
        const struct mg_policy_src *src = &ld->srcs[i], *def = &ld->defaults_src;

        if (src->set & (1u << pb))
                return src->at[pb];
        if (src->set & (1u << pa))
                return src->at[pa];
        if (def->set & (1u << pb))
                return def->at[pb];
        if (def->set & (1u << pa))
                return def->at[pa];
        return src->start;
}

/* Literal prefix length and '*' count of a glob. */
static void mg_policy_glob_spec(const char *pat, size_t *lit, int *stars) {
        const char *p;

        *lit = strcspn(pat, "*");
        *stars = 0;
        for (p = pat; *p; p++)
                *stars += *p == '*';
}

/* Fill path i's unset keys from defaults, then check what spans keys. */
static mg_err_t mg_policy_finish_path(struct mg_policy_load *ld, size_t i) {
        struct mg_policy_path *path = &ld->pol->paths[i];
        const struct mg_policy_src *src = &ld->srcs[i];
        char where[32], name[2 * MG_POLICY_GLOB_MAX + 2], qbuf[QBUF_SIZE];
        size_t pi, n;

        snprintf(where, sizeof(where), "policies[%zu]", i);
        for (pi = 0; pi < MG_POLICY_PROP_CNT; pi++) {
                const struct mg_policy_prop *prop = &mg_policy_props[pi];
                size_t size;

                if (src->set & (1u << pi))
                        continue;
                if ((prop->flags & MG_POLICY_F_REQUIRED) &&
                    !(ld->defaults_src.set & (1u << pi)))
                        return mg_policy_err(ld, src->start,
                                             "%s: missing '%s'", where,
                                             prop->name);
                /* The field's size: the distance to the next field is not
                 * usable (padding), so go by type. */
                switch (prop->type) {
                case MG_POLICY_T_STR:
                case MG_POLICY_T_GLOB:
                        size = sizeof(const char *);
                        break;
                case MG_POLICY_T_SCOPES:
                        size = sizeof(struct mg_policy_globs);
                        break;
                case MG_POLICY_T_SECONDS:
                case MG_POLICY_T_INT:
                        size = sizeof(int64_t);
                        break;
                case MG_POLICY_T_RISK:
                        size = sizeof(double);
                        break;
                case MG_POLICY_T_BOOL:
                case MG_POLICY_T_DEGRADED:
                        size = sizeof(int);
                        break;
                case MG_POLICY_T_GRANTS:
                        size = sizeof(unsigned);
                        break;
                case MG_POLICY_T_STEPS:
                        size = sizeof(struct mg_policy_steps);
                        break;
                case MG_POLICY_T_WINDOWS:
                        size = sizeof(struct mg_policy_windows);
                        break;
                default:
                        abort();
                }
                memcpy(mg_policy_field(path, pi),
                       mg_policy_field(&ld->defaults, pi), size);
        }
        if (path->narrow > path->step_up)
                return mg_policy_err(
                        ld, mg_policy_mark(ld, i, MG_POLICY_P_NARROW,
                                       MG_POLICY_P_STEP_UP),
                        "%s.thresholds: step_up %g is below narrow %g (need "
                        "narrow <= step_up <= deny)",
                        where, path->step_up, path->narrow);
        if (path->step_up > path->deny)
                return mg_policy_err(
                        ld, mg_policy_mark(ld, i, MG_POLICY_P_STEP_UP,
                                       MG_POLICY_P_DENY),
                        "%s.thresholds: deny %g is below step_up %g (need "
                        "narrow <= step_up <= deny)",
                        where, path->deny, path->step_up);
        if (path->degraded == MG_POLICY_FAIL_NARROW && !path->minimum.cnt)
                return mg_policy_err(
                        ld, mg_policy_mark(ld, i, MG_POLICY_P_MINIMUM,
                                       MG_POLICY_P_DEGRADED),
                        "%s.degraded: fail_narrow needs minimum_scopes (the "
                        "scopes still granted without fresh risk)",
                        where);
        if (!path->name) {
                n = (size_t)snprintf(name, sizeof(name), "%s/%s",
                                     path->client, path->resource);
                if (n > MG_POLICY_NAME_MAX)
                        return mg_policy_err(
                                ld, src->start,
                                "%s: the default name %s is %zu bytes, over "
                                "%zu: set 'name'",
                                where,
                                mg_policy_quote(qbuf, sizeof(qbuf), name, n),
                                n, (size_t)MG_POLICY_NAME_MAX);
                path->name = mg_policy_strdup(ld->pol, name, n);
                if (!path->name)
                        return mg_policy_oom(ld);
        }
        mg_policy_glob_spec(path->client, &path->client_lit,
                            &path->client_stars);
        mg_policy_glob_spec(path->resource, &path->resource_lit,
                            &path->resource_stars);
        return MG_OK;
}

/* Most specific first: client, then resource (longer literal prefix, then
 * fewer stars), then file order. */
static int mg_policy_cmp(const void *a, const void *b) {
        const struct mg_policy_path *x = a, *y = b;

        if (x->client_lit != y->client_lit)
                return x->client_lit > y->client_lit ? -1 : 1;
        if (x->client_stars != y->client_stars)
                return x->client_stars < y->client_stars ? -1 : 1;
        if (x->resource_lit != y->resource_lit)
                return x->resource_lit > y->resource_lit ? -1 : 1;
        if (x->resource_stars != y->resource_stars)
                return x->resource_stars < y->resource_stars ? -1 : 1;
        return x->index < y->index ? -1 : x->index > y->index;
}

mg_err_t mg_policy_load_buf(const char *name, const char *buf, size_t len,
                            struct mg_policy **polp, char *errstr,
                            size_t errstr_size) {
        struct mg_policy_load *ld = NULL;
        struct mg_policy *pol = NULL;
        mg_err_t err = MG_OK;
        size_t i;

        *polp = NULL;
        if (!name)
                name = "(policy)";
        if (len > MG_POLICY_FILE_MAX)
                return mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                  "%s: %zu bytes is larger than the %d byte "
                                  "limit for a policy file",
                                  name, len, MG_POLICY_FILE_MAX);
        ld = calloc(1, sizeof(*ld));
        pol = calloc(1, sizeof(*pol));
        if (!ld || !pol) {
                free(ld);
                free(pol);
                return mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                  "out of memory");
        }
        atomic_init(&pol->refcnt, 1);
        ld->pol = pol;
        ld->errstr = errstr;
        ld->errstr_size = errstr_size;
        ld->items = malloc(MG_POLICY_LIST_MAX * sizeof(*ld->items));
        pol->source = mg_policy_strdup(pol, name, strlen(name));
        ld->name = pol->source;
        if (!ld->items || !pol->source) {
                ld->name = name;
                err = mg_policy_oom(ld);
                goto out_free;
        }
        mg_policy_path_init(pol, &ld->defaults);
        if (!yaml_parser_initialize(&ld->parser)) {
                err = mg_policy_oom(ld);
                goto out_free;
        }
        yaml_parser_set_input_string(&ld->parser, (const unsigned char *)buf,
                                     len);
        err = mg_policy_load_stream(ld);
        yaml_parser_delete(&ld->parser);
        for (i = 0; !err && i < pol->cnt; i++)
                err = mg_policy_finish_path(ld, i);
        if (!err && pol->cnt > 1)
                qsort(pol->paths, pol->cnt, sizeof(*pol->paths),
                      mg_policy_cmp);
out_free:
        free(ld->items);
        free(ld->srcs);
        free(ld);
        if (err)
                mg_policy_free(pol);
        else
                *polp = pol;
        return err;
}

mg_err_t mg_policy_load_file(const char *path, struct mg_policy **polp,
                             char *errstr, size_t errstr_size) {
        FILE *fp = NULL;
        char *buf = NULL;
        size_t len = 0, n;
        mg_err_t err = MG_OK;

        *polp = NULL;
        fp = fopen(path, "rb");
        if (!fp) {
                err = mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                 "%s: %s", path, strerror(errno));
                goto out;
        }
        /* One byte past the cap tells "too big" apart. */
        buf = malloc(MG_POLICY_FILE_MAX + 1);
        if (!buf) {
                err = mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                 "out of memory");
                goto out;
        }
        while (len < MG_POLICY_FILE_MAX + 1 &&
               (n = fread(buf + len, 1, MG_POLICY_FILE_MAX + 1 - len, fp)) >
                       0)
                len += n;
        if (ferror(fp)) {
                err = mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                 "%s: read error", path);
                goto out;
        }
        err = mg_policy_load_buf(path, buf, len, polp, errstr, errstr_size);
out:
        free(buf);
        if (fp)
                fclose(fp);
        return err;
}

/*
 * Lifetime.
 */

struct mg_policy *mg_policy_ref(struct mg_policy *pol) {
        if (pol)
                atomic_fetch_add_explicit(&pol->refcnt, 1,
                                          memory_order_relaxed);
        return pol;
}

void mg_policy_unref(struct mg_policy *pol) {
        if (!pol)
                return;
        /* Release: our reads of the policy happen before the free; the
         * acquire fence makes the freeing thread see everyone's. */
        if (atomic_fetch_sub_explicit(&pol->refcnt, 1,
                                      memory_order_release) == 1) {
                atomic_thread_fence(memory_order_acquire);
                mg_policy_free(pol);
        }
}

void mg_policy_destroy(struct mg_policy *pol) {
        mg_policy_unref(pol);
}

size_t mg_policy_path_cnt(const struct mg_policy *pol) {
        return pol->cnt;
}

const char *mg_policy_source(const struct mg_policy *pol) {
        return pol->source;
}

void mg_policy_slot_init(struct mg_policy_slot *slot, struct mg_policy *pol) {
        pthread_mutex_init(&slot->lock, NULL);
        slot->pol = mg_policy_ref(pol);
}

struct mg_policy *mg_policy_slot_get(struct mg_policy_slot *slot) {
        struct mg_policy *pol;

        pthread_mutex_lock(&slot->lock);
        pol = mg_policy_ref(slot->pol);
        pthread_mutex_unlock(&slot->lock);
        return pol;
}

void mg_policy_slot_set(struct mg_policy_slot *slot, struct mg_policy *pol) {
        struct mg_policy *old;

        mg_policy_ref(pol);
        pthread_mutex_lock(&slot->lock);
        old = slot->pol;
        slot->pol = pol;
        pthread_mutex_unlock(&slot->lock);
        /* Outside the lock: freeing a big policy must not stall readers. */
        mg_policy_unref(old);
}

void mg_policy_slot_destroy(struct mg_policy_slot *slot) {
        mg_policy_unref(slot->pol);
        slot->pol = NULL;
        pthread_mutex_destroy(&slot->lock);
}

/*
 * Reference.
 */

static const char *mg_policy_type_name(enum mg_policy_type type) {
        switch (type) {
        case MG_POLICY_T_STR:
                return "string";
        case MG_POLICY_T_GLOB:
                return "glob";
        case MG_POLICY_T_SCOPES:
                return "list of globs";
        case MG_POLICY_T_SECONDS:
                return "duration";
        case MG_POLICY_T_RISK:
                return "risk";
        case MG_POLICY_T_BOOL:
                return "bool";
        case MG_POLICY_T_INT:
                return "int";
        case MG_POLICY_T_GRANTS:
                return "list of grants";
        case MG_POLICY_T_STEPS:
                return "list of steps";
        case MG_POLICY_T_WINDOWS:
                return "list of windows";
        case MG_POLICY_T_DEGRADED:
                return "mode";
        }
        return "?";
}

void mg_policy_print_reference(FILE *fp, int markdown) {
        size_t i;

        if (markdown)
                fputs("| Key | Type | Default | Description |\n"
                      "|---|---|---|---|\n",
                      fp);
        for (i = 0; i < MG_POLICY_PROP_CNT; i++) {
                const struct mg_policy_prop *prop = &mg_policy_props[i];
                const char *def =
                        prop->def ? prop->def
                        : (prop->flags & MG_POLICY_F_REQUIRED) ? "(required)"
                                                               : "(none)";

                if (markdown)
                        fprintf(fp, "| `%s` | %s | %s | %s%s |\n", prop->name,
                                mg_policy_type_name(prop->type), def,
                                prop->desc,
                                prop->flags & MG_POLICY_F_PER_PATH
                                        ? " Not in defaults."
                                        : "");
                else
                        fprintf(fp, "  %-22s %-16s default %s\n      %s\n",
                                prop->name, mg_policy_type_name(prop->type),
                                def, prop->desc);
        }
}

/*
 * Deciding.
 */

/* Glob match: '*' matches any run, everything else itself. Greedy with
 * one backtrack point, O(len(p) * len(s)) at worst, linear in practice. */
static int mg_policy_glob(const char *p, const char *s) {
        const char *star = NULL, *resume = NULL;

        while (*s) {
                if (*p == '*') {
                        star = p++;
                        resume = s;
                } else if (*p && *p == *s) {
                        p++;
                        s++;
                } else if (star) {
                        p = star + 1;
                        s = ++resume;
                } else {
                        return 0;
                }
        }
        while (*p == '*')
                p++;
        return !*p;
}

static int mg_policy_globs_match(const struct mg_policy_globs *g,
                                 const char *s) {
        int i;

        for (i = 0; i < g->cnt; i++)
                if (mg_policy_glob(g->pats[i], s))
                        return 1;
        return 0;
}

/* Reasons being collected; past the cap, the last slot counts the rest. */
struct mg_decide_ctx {
        struct mg_decision *out; /* the decision */
        int dropped;             /* reasons that did not fit */
};

/* Cut a string that snprintf truncated to len bytes back to a UTF-8
 * boundary, so a multi-byte character is never left half. */
static void mg_policy_utf8_trim(char *s, size_t len) {
        size_t i = len, need;
        unsigned char c;

        while (i > 0 && len - i < 3 && ((unsigned char)s[i - 1] & 0xc0) == 0x80)
                i--;
        if (i == 0)
                return;
        c = (unsigned char)s[i - 1];
        if (c < 0xc0)
                return; /* ASCII, or not UTF-8 anyway */
        need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
        if (len - (i - 1) < need)
                s[i - 1] = '\0';
}

static void mg_decide_reason(struct mg_decide_ctx *ctx, const char *signal,
                             double points, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static void mg_decide_reason(struct mg_decide_ctx *ctx, const char *signal,
                             double points, const char *fmt, ...) {
        struct mg_decision *out = ctx->out;
        struct mg_decision_reason *r;
        va_list ap;
        int n;

        if (out->reason_cnt >= MG_DECISION_REASONS_MAX) {
                ctx->dropped++;
                return;
        }
        r = &out->reasons[out->reason_cnt++];
        snprintf(r->signal, sizeof(r->signal), "%s", signal);
        r->points = points;
        va_start(ap, fmt);
        n = vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
        va_end(ap);
        if (n >= (int)sizeof(r->detail))
                mg_policy_utf8_trim(r->detail, sizeof(r->detail) - 1);
}

/* A risk for a message: two decimals at most, no trailing zeros. */
static const char *mg_policy_num(char *buf, size_t size, double v) {
        size_t n = (size_t)snprintf(buf, size, "%.2f", v);

        if (n < size && strchr(buf, '.')) {
                while (n > 0 && buf[n - 1] == '0')
                        buf[--n] = '\0';
                if (n > 0 && buf[n - 1] == '.')
                        buf[--n] = '\0';
        }
        return buf;
}

/* "mon-fri 08:00-18:00 UTC" */
static void mg_policy_window_text(const struct mg_policy_window *w,
                                  char *buf, size_t size) {
        size_t o = 0;
        int d = 0, e;

        buf[0] = '\0';
        while (d < 7 && o < size) {
                if (!(w->days & (1u << d))) {
                        d++;
                        continue;
                }
                for (e = d; e + 1 < 7 && (w->days & (1u << (e + 1))); e++)
                        ;
                if (e == d)
                        o += (size_t)snprintf(buf + o, size - o, "%s%s",
                                              o ? "," : "",
                                              mg_policy_day_names[d]);
                else
                        o += (size_t)snprintf(buf + o, size - o, "%s%s-%s",
                                              o ? "," : "",
                                              mg_policy_day_names[d],
                                              mg_policy_day_names[e]);
                d = e + 1;
        }
        if (o < size)
                snprintf(buf + o, size - o, " %02d:%02d-%02d:%02d UTC",
                         w->start_min / 60, w->start_min % 60,
                         w->end_min / 60, w->end_min % 60);
}

/* The window governing scope that now falls outside of, or NULL when the
 * scope has no window or now is inside one of its windows. */
static const struct mg_policy_window *
mg_policy_window_closed(const struct mg_policy_path *path, const char *scope,
                        int wday, int minute) {
        const struct mg_policy_window *first = NULL, *w;
        int i;

        for (i = 0; i < path->windows.cnt; i++) {
                w = &path->windows.v[i];
                if (!mg_policy_glob(w->scope, scope))
                        continue;
                if ((w->days & (1u << wday)) && minute >= w->start_min &&
                    minute < w->end_min)
                        return NULL;
                if (!first)
                        first = w;
        }
        return first;
}

static const struct mg_policy_path *
mg_policy_match(const struct mg_policy *pol, const char *client,
                const char *resource) {
        size_t i;

        for (i = 0; i < pol->cnt; i++)
                if (mg_policy_glob(pol->paths[i].client, client) &&
                    mg_policy_glob(pol->paths[i].resource, resource))
                        return &pol->paths[i];
        return NULL;
}

/* Empty the grant of a denied request. */
static void mg_decide_deny(struct mg_decision *out) {
        out->outcome = MG_DECISION_DENY;
        out->scope_cnt = 0;
        out->ttl = 0;
}

void mg_policy_decide(const struct mg_policy *pol,
                      const struct mg_decide_req *req,
                      const struct mg_risk_view *view, int64_t now_ms,
                      struct mg_decision *out) {
        struct mg_decide_ctx ctx = {out, 0};
        const struct mg_policy_path *path;
        const struct mg_policy_window *w;
        const char *s, *client, *resource, *ttl_why = NULL;
        char num[32], num2[32], wtext[64];
        int known, fresh, rules, removed = 0, wday, minute, i, j, g;
        int64_t ttl, cap, day;
        double r = 0;

        assert(pol && req && out);
        out->outcome = MG_DECISION_ALLOW;
        out->scope_cnt = 0;
        out->ttl = 0;
        out->reason_cnt = 0;
        out->policy[0] = '\0';
        out->decision_id[0] = '\0';
        /* A risk that is not a number would compare false against every
         * threshold and allow everything: treat it as missing. */
        known = view && view->known && isfinite(view->risk.score);
        /* Fresh with no record is a fact: scoring has no risk for the
         * identity, which is risk 0, not a failure. */
        fresh = view && view->fresh && (known || !view->known);
        out->risk = !known                    ? 0
                    : view->risk.score < 0    ? 0
                    : view->risk.score > 100  ? 100
                                              : view->risk.score;
        out->level = known && (unsigned)view->risk.level <= MG_RISK_CRITICAL
                             ? view->risk.level
                             : MG_RISK_LOW;
        out->degraded = !fresh;
        if (known)
                for (i = 0; i < view->risk.reason_cnt && i < MG_REASONS_MAX;
                     i++) {
                        const struct mg_reason *rr = &view->risk.reasons[i];

                        mg_decide_reason(&ctx,
                                         (unsigned)rr->signal < MG_SIG__CNT
                                                 ? mg_signal_names[rr->signal]
                                                 : "unknown",
                                         isfinite(rr->points) ? rr->points
                                                              : 0,
                                         "%.*s", (int)sizeof(rr->detail),
                                         rr->detail);
                }

        client = req->client_id ? req->client_id : "";
        resource = req->resource ? req->resource : "";
        path = mg_policy_match(pol, client, resource);
        if (!path) {
                mg_decide_reason(&ctx, "policy", 0,
                                 "no policy for client %s and resource %s",
                                 client, resource);
                mg_decide_deny(out);
                goto out;
        }
        snprintf(out->policy, sizeof(out->policy), "%s", path->name);

        g = req->grant_type
                    ? mg_enum_parse(mg_grant_type_names, MG_GRANT__CNT,
                                    req->grant_type, strlen(req->grant_type))
                    : -1;
        if (g < 0 || !(path->grants & (1u << g))) {
                mg_decide_reason(&ctx, "policy", 0,
                                 "grant type %s is not allowed by policy %s",
                                 req->grant_type ? req->grant_type : "(none)",
                                 path->name);
                mg_decide_deny(out);
                goto out;
        }
        if (path->max_depth >= 0 && req->exchange_depth > path->max_depth) {
                mg_decide_reason(&ctx, "policy", 0,
                                 "token exchange depth %d is deeper than "
                                 "policy %s allows (%" PRId64 ")",
                                 req->exchange_depth, path->name,
                                 path->max_depth);
                mg_decide_deny(out);
                goto out;
        }

        rules = 1; /* risk thresholds and ttl_by_risk apply */
        if (fresh) {
                r = out->risk;
        } else {
                const char *why = !view || !view->known ? "missing"
                                  : !known              ? "not a number"
                                                        : "stale";

                /* An unread record (Redis down) shows as not known and not
                 * fresh: "missing". */

                switch (path->degraded) {
                case MG_POLICY_FAIL_OPEN:
                        mg_decide_reason(&ctx, "degraded", 0,
                                         "risk is %s: policy fails open "
                                         "(decided as if risk were 0)",
                                         why);
                        break;
                case MG_POLICY_FAIL_NARROW:
                        mg_decide_reason(&ctx, "degraded", 0,
                                         "risk is %s: policy fails narrow "
                                         "(minimum scopes, ttl <= %" PRId64
                                         "s)",
                                         why, path->degraded_ttl);
                        rules = 0;
                        break;
                default:
                        mg_decide_reason(&ctx, "degraded", 0,
                                         "risk is %s: policy fails closed",
                                         why);
                        mg_decide_deny(out);
                        goto out;
                }
        }
        if (rules && r >= path->deny) {
                mg_decide_reason(&ctx, "policy", 0,
                                 "risk %s >= deny threshold %s",
                                 mg_policy_num(num, sizeof(num), r),
                                 mg_policy_num(num2, sizeof(num2),
                                               path->deny));
                mg_decide_deny(out);
                goto out;
        }

        day = now_ms / MG_MS_PER_DAY - (now_ms % MG_MS_PER_DAY < 0);
        minute = (int)((now_ms - day * MG_MS_PER_DAY) / 60000);
        /* 1970-01-01 was a Thursday (index 3, Monday first). */
        wday = (int)(((day % 7) + 7 + 3) % 7);

        for (i = 0; i < req->scope_cnt && i < MG_REQ_SCOPES_MAX; i++) {
                s = req->scopes[i];
                if (!s)
                        continue;
                for (j = 0; j < i; j++)
                        if (req->scopes[j] && !strcmp(req->scopes[j], s))
                                break;
                if (j < i)
                        continue; /* a duplicate: granted (or not) once */
                if (!mg_policy_globs_match(&path->allowed, s)) {
                        mg_decide_reason(&ctx, "policy", 0,
                                         "%s is not allowed by policy %s: "
                                         "removed",
                                         s, path->name);
                } else if ((w = mg_policy_window_closed(path, s, wday,
                                                        minute))) {
                        mg_policy_window_text(w, wtext, sizeof(wtext));
                        mg_decide_reason(&ctx, "release_window", 0,
                                         "%s outside its release window "
                                         "(%s): removed",
                                         s, wtext);
                } else if (rules && r >= path->narrow &&
                           mg_policy_globs_match(&path->high_impact, s)) {
                        mg_decide_reason(&ctx, "policy", 0,
                                         "%s is high-impact: removed at risk "
                                         "%s >= narrow threshold %s",
                                         s, mg_policy_num(num, sizeof(num), r),
                                         mg_policy_num(num2, sizeof(num2),
                                                       path->narrow));
                } else if (path->remove_unused && view &&
                           view->scope_unused_cb &&
                           view->scope_unused_cb(view->opaque, s)) {
                        mg_decide_reason(&ctx, "scope_unused", 0,
                                         "%s not used in %" PRId64
                                         "d: removed",
                                         s, path->unused_days);
                } else if (!rules &&
                           !mg_policy_globs_match(&path->minimum, s)) {
                        mg_decide_reason(&ctx, "degraded", 0,
                                         "%s is not a minimum scope: removed "
                                         "while risk is unavailable",
                                         s);
                } else {
                        out->scopes[out->scope_cnt++] = s;
                        continue;
                }
                removed = 1;
        }

        ttl = req->ttl > 0 ? req->ttl : path->max_ttl;
        if (ttl > path->max_ttl) {
                ttl = path->max_ttl;
                ttl_why = "max_ttl";
        }
        if (rules && path->ttl_by_risk.cnt > 0) {
                for (i = 0; i + 1 < path->ttl_by_risk.cnt &&
                            !(r < path->ttl_by_risk.v[i].below);
                     i++)
                        ;
                cap = path->ttl_by_risk.v[i].max_ttl;
                if (ttl > cap) {
                        ttl = cap;
                        ttl_why = "ttl_by_risk";
                }
        }
        if (!rules && ttl > path->degraded_ttl) {
                ttl = path->degraded_ttl;
                ttl_why = "degraded_ttl";
        }
        out->ttl = ttl;
        if (ttl_why && req->ttl > 0) {
                if (!strcmp(ttl_why, "ttl_by_risk"))
                        mg_decide_reason(&ctx, "policy", 0,
                                         "ttl %" PRId64 "s capped to %" PRId64
                                         "s at risk %s (ttl_by_risk)",
                                         req->ttl, ttl,
                                         mg_policy_num(num, sizeof(num), r));
                else
                        mg_decide_reason(&ctx, "policy", 0,
                                         "ttl %" PRId64 "s capped to %" PRId64
                                         "s (%s)",
                                         req->ttl, ttl, ttl_why);
        }

        if (out->scope_cnt == 0) {
                mg_decide_reason(&ctx, "policy", 0,
                                 "none of the requested scopes can be "
                                 "granted");
                mg_decide_deny(out);
        } else if (rules && r >= path->step_up) {
                mg_decide_reason(&ctx, "policy", 0,
                                 "risk %s >= step-up threshold %s",
                                 mg_policy_num(num, sizeof(num), r),
                                 mg_policy_num(num2, sizeof(num2),
                                               path->step_up));
                out->outcome = MG_DECISION_STEP_UP;
        } else if (removed || (req->ttl > 0 && ttl < req->ttl)) {
                out->outcome = MG_DECISION_NARROW;
        }
out:
        if (ctx.dropped > 0) {
                struct mg_decision_reason *last =
                        &out->reasons[MG_DECISION_REASONS_MAX - 1];

                snprintf(last->signal, sizeof(last->signal), "policy");
                last->points = 0;
                snprintf(last->detail, sizeof(last->detail),
                         "%d more reasons not shown", ctx.dropped + 1);
        }
}
