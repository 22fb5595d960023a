/*
 * mg_config.c — table-driven configuration over libyaml (see mg_config.h).
 *
 * A struct mg_conf is a list of sections, each a module's static property
 * table over a caller-owned struct. Loading walks libyaml's event stream
 * (yaml_parser_parse(), no document tree is built) with one recursive call
 * per nested mapping, keeping the dotted key of the current mapping in a
 * fixed buffer; each scalar leaf is looked up in the tables and parsed by
 * its type straight into the section struct. Positions come from libyaml's
 * marks (0-based there, 1-based in our messages): an unknown key is reported
 * at the key, a bad value at the value. The closest known key (edit distance
 * at most 2) is suggested, since unknown keys are nearly always typos.
 *
 * Rules a reader of a configuration file can rely on:
 *   - Nested mappings and dotted keys mean the same ("ingest:\n  group_id:
 *     x" and "ingest.group_id: x"); a mapping may only sit at a key that is
 *     a prefix of some property or under a map property.
 *   - A leaf key given twice in one file is an error naming both positions,
 *     however it was spelled (nested or dotted). YAML itself forbids
 *     duplicate keys and most loaders silently keep the last; for a security
 *     tool an ambiguous file is worse than a refused one. Across calls the
 *     last value wins: mg_conf_set() after a load replaces (that is how
 *     command-line flags override the file), and so does a second load.
 *   - A null value (plain "", "~" or "null", e.g. "password:") restores the
 *     property's default; a quoted "" is an empty string. Under a map, null
 *     removes that key; at a key that only opens a section ("ingest:" with
 *     nothing under it) it is accepted and changes nothing. mg_conf_set()
 *     has no YAML styles, so its text is always taken literally.
 *   - Sequences are refused ("expected a scalar value"): no property takes a
 *     list today. Aliases are refused too (no "billion laughs"), and so is
 *     a second YAML document in one file. Tags are ignored.
 *   - The first error stops loading; values applied before it stay, so a
 *     caller that wants all-or-nothing loads into a fresh mg_conf (which is
 *     what reload does).
 *
 * Every input is bounded: a file at MG_CONF_FILE_MAX, a dotted key at
 * MG_CONF_KEY_MAX (which also bounds the recursion depth), a map at
 * MG_CONF_MAP_MAX pairs. Workload: a few hundred keys, at start-up and on
 * SIGHUP; lookups are linear scans of the tables.
 */
#include "mg_config.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

/* A configuration file is a page or two of YAML; 1 MiB is far beyond any
 * real one and keeps a wrong path (a log file, a core) from being slurped. */
#define MG_CONF_FILE_MAX (1024 * 1024)
/* Longest dotted key. librdkafka's longest property is under 50 bytes;
 * 256 leaves room for nesting while bounding recursion (each level adds at
 * least two bytes, "a."). */
#define MG_CONF_KEY_MAX 256
/* librdkafka has about 150 properties; 1024 pairs in one map is a mistake,
 * not a configuration. */
#define MG_CONF_MAP_MAX 1024
/* Longest excerpt of a bad value quoted in an error message. */
#define MG_CONF_QUOTE_MAX 64

/* One module's table over its struct. */
struct mg_conf_section {
        const char *title;                /* heading in the reference */
        const struct mg_conf_prop *props; /* static table */
        size_t cnt;                       /* entries in props */
        void *base;                       /* caller's struct the table
                                           * describes */
};

struct mg_conf {
        struct mg_conf_section *sections; /* in the order they were added */
        size_t cnt;                       /* sections in use */
};

/* A leaf key seen during one load, to refuse duplicates. */
struct mg_conf_seen {
        char *key;   /* full dotted key, malloc'd */
        size_t line; /* 1-based position of its first occurrence */
        size_t col;
};

/* State of one mg_conf_load_buf() call. */
struct mg_conf_load {
        struct mg_conf *conf;
        const char *name;          /* file name for messages */
        yaml_parser_t parser;      /* libyaml event parser */
        char key[MG_CONF_KEY_MAX + 1]; /* dotted key of the current mapping
                                        * (prefix), NUL-terminated */
        struct mg_conf_seen *seen; /* leaf keys set so far */
        size_t seen_cnt;           /* entries in use */
        size_t seen_cap;           /* entries allocated */
        char *errstr;              /* caller's error buffer */
        size_t errstr_size;
};

/*
 * Small helpers.
 */

/* Quote at most MG_CONF_QUOTE_MAX bytes of s for a message; non-printable
 * bytes as \xNN. buf must hold 4 * MG_CONF_QUOTE_MAX + 8 bytes. */
static const char *mg_conf_quote(char *buf, size_t size, const char *s,
                                 size_t len) {
        size_t i, o = 0;

        buf[o++] = '\'';
        for (i = 0; i < len && i < MG_CONF_QUOTE_MAX; i++) {
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

static void *mg_conf_field(const struct mg_conf_section *sec,
                           const struct mg_conf_prop *prop) {
        return (char *)sec->base + prop->offset;
}

static int mg_conf_bounded(const struct mg_conf_prop *prop) {
        return !(prop->min == 0 && prop->max == 0);
}

static const char *mg_conf_type_name(enum mg_conf_type type) {
        switch (type) {
        case MG_CONF_STR:
                return "string";
        case MG_CONF_INT:
                return "int";
        case MG_CONF_DOUBLE:
                return "double";
        case MG_CONF_BOOL:
                return "bool";
        case MG_CONF_MS:
                return "duration";
        case MG_CONF_MAP:
                return "map";
        }
        return "?";
}

/* Format a duration in the largest unit that divides it exactly. */
static void mg_conf_format_ms(int64_t ms, char *buf, size_t size) {
        static const struct {
                int64_t div;
                const char *unit;
        } units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"},
                     {1000, "s"}};
        size_t i;

        for (i = 0; i < sizeof(units) / sizeof(*units); i++) {
                if (ms != 0 && ms % units[i].div == 0) {
                        snprintf(buf, size, "%" PRId64 "%s", ms / units[i].div,
                                 units[i].unit);
                        return;
                }
        }
        snprintf(buf, size, "%" PRId64 "ms", ms);
}

/* Bound of a numeric property as text, in the property's own unit. */
static void mg_conf_format_bound(const struct mg_conf_prop *prop, double v,
                                 char *buf, size_t size) {
        if (prop->type == MG_CONF_MS)
                mg_conf_format_ms((int64_t)v, buf, size);
        else if (prop->type == MG_CONF_DOUBLE)
                snprintf(buf, size, "%g", v);
        else
                snprintf(buf, size, "%.0f", v);
}

/*
 * Value parsers. Each takes the value text (len bytes, NUL-terminated at
 * len) and writes a reason into detail on failure.
 */

/* Decimal integer with an optional sign and k/M/G multiplier. */
static int mg_conf_parse_int(const char *s, size_t len, int64_t *out) {
        uint64_t v = 0, lim, mult = 1;
        size_t i = 0;
        int neg = 0;

        if (i < len && (s[i] == '+' || s[i] == '-'))
                neg = s[i++] == '-';
        if (i >= len || s[i] < '0' || s[i] > '9')
                return -1;
        /* Magnitude limit: INT64_MAX, or INT64_MAX + 1 when negative. */
        lim = (uint64_t)INT64_MAX + (uint64_t)neg;
        for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
                unsigned d = (unsigned)(s[i] - '0');

                if (v > (lim - d) / 10)
                        return -2;
                v = v * 10 + d;
        }
        if (i < len) {
                switch (s[i]) {
                case 'k':
                        mult = 1000;
                        break;
                case 'M':
                        mult = 1000000;
                        break;
                case 'G':
                        mult = 1000000000;
                        break;
                default:
                        return -1;
                }
                if (++i != len)
                        return -1;
                if (v > lim / mult)
                        return -2;
                v *= mult;
        }
        if (neg)
                *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN
                                                     : -(int64_t)v;
        else
                *out = (int64_t)v;
        return 0;
}

/* Decimal floating point (no hex, inf or nan) with an optional k/M/G. */
static int mg_conf_parse_double(const char *s, size_t len, double *out) {
        char buf[64], *end;
        double mult = 1, v;
        size_t i;

        if (len > 0) {
                switch (s[len - 1]) {
                case 'k':
                        mult = 1e3;
                        len--;
                        break;
                case 'M':
                        mult = 1e6;
                        len--;
                        break;
                case 'G':
                        mult = 1e9;
                        len--;
                        break;
                default:
                        break;
                }
        }
        if (len == 0 || len >= sizeof(buf))
                return -1;
        for (i = 0; i < len; i++)
                if (!s[i] || !strchr("0123456789+-.eE", s[i]))
                        return -1;
        memcpy(buf, s, len);
        buf[len] = '\0';
        errno = 0;
        v = strtod(buf, &end);
        if (end != buf + len)
                return -1;
        v *= mult;
        if (errno == ERANGE || !isfinite(v))
                return -2;
        *out = v;
        return 0;
}

static int mg_conf_parse_bool(const char *s, size_t len, int *out) {
        static const char *const yes[] = {"true", "yes", "on", "1"};
        static const char *const no[] = {"false", "no", "off", "0"};
        size_t i;

        for (i = 0; i < sizeof(yes) / sizeof(*yes); i++) {
                if (strlen(yes[i]) == len && !strncasecmp(s, yes[i], len)) {
                        *out = 1;
                        return 0;
                }
                if (strlen(no[i]) == len && !strncasecmp(s, no[i], len)) {
                        *out = 0;
                        return 0;
                }
        }
        return -1;
}

/* Duration: digits then ms/s/m/h/d or nothing (milliseconds). 0 on
 * success, -1 when malformed, -2 when it does not fit in int64 ms. */
static int mg_conf_parse_dur(const char *s, size_t len, int64_t *out) {
        static const struct {
                const char *unit;
                int64_t ms;
        } units[] = {{"", 1},          {"ms", 1},        {"s", 1000},
                     {"m", 60000},     {"h", 3600000},   {"d", 86400000}};
        uint64_t v = 0;
        size_t i = 0, u;

        if (i >= len || s[i] < '0' || s[i] > '9')
                return -1;
        for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
                unsigned d = (unsigned)(s[i] - '0');

                if (v > ((uint64_t)INT64_MAX - d) / 10)
                        return -2;
                v = v * 10 + d;
        }
        for (u = 0; u < sizeof(units) / sizeof(*units); u++) {
                if (strlen(units[u].unit) == len - i &&
                    !memcmp(s + i, units[u].unit, len - i)) {
                        if (v > (uint64_t)INT64_MAX / (uint64_t)units[u].ms)
                                return -2;
                        *out = (int64_t)v * units[u].ms;
                        return 0;
                }
        }
        return -1;
}

mg_err_t mg_conf_parse_ms(const char *s, int64_t *msp) {
        int64_t v;

        if (!s || mg_conf_parse_dur(s, strlen(s), &v))
                return MG_ERR_CONFIG;
        *msp = v;
        return MG_OK;
}

/* A numeric value v against the property's bounds. */
static mg_err_t mg_conf_check_bounds(const struct mg_conf_prop *prop,
                                     double v, const char *text, char *detail,
                                     size_t detail_size) {
        char bound[48];

        if (!mg_conf_bounded(prop))
                return MG_OK;
        if (v < prop->min) {
                mg_conf_format_bound(prop, prop->min, bound, sizeof(bound));
                return mg_err_set(MG_ERR_CONFIG, detail, detail_size,
                                  "%s is below the minimum %s", text, bound);
        }
        if (v > prop->max) {
                mg_conf_format_bound(prop, prop->max, bound, sizeof(bound));
                return mg_err_set(MG_ERR_CONFIG, detail, detail_size,
                                  "%s is above the maximum %s", text, bound);
        }
        return MG_OK;
}

/*
 * Applying values.
 */

static void mg_conf_map_clear(struct mg_conf_map *map) {
        size_t i;

        for (i = 0; i < map->cnt; i++) {
                free(map->keys[i]);
                free(map->values[i]);
        }
        free(map->keys);
        free(map->values);
        map->keys = map->values = NULL;
        map->cnt = 0;
}

/* Remove the pair for sub, if any, keeping the others in order. */
static void mg_conf_map_del(struct mg_conf_map *map, const char *sub) {
        size_t i;

        for (i = 0; i < map->cnt; i++) {
                if (strcmp(map->keys[i], sub))
                        continue;
                free(map->keys[i]);
                free(map->values[i]);
                memmove(&map->keys[i], &map->keys[i + 1],
                        (map->cnt - i - 1) * sizeof(*map->keys));
                memmove(&map->values[i], &map->values[i + 1],
                        (map->cnt - i - 1) * sizeof(*map->values));
                map->cnt--;
                return;
        }
}

/* Set sub = value in map, replacing an existing pair in place (so file
 * order is kept) or appending. */
static mg_err_t mg_conf_map_set(struct mg_conf_map *map, const char *sub,
                                const char *value, size_t len, char *detail,
                                size_t detail_size) {
        char *v, *k, **keys, **values;
        size_t i;

        v = malloc(len + 1);
        if (!v)
                return mg_err_set(MG_ERR_NOMEM, detail, detail_size,
                                  "out of memory");
        memcpy(v, value, len);
        v[len] = '\0';
        for (i = 0; i < map->cnt; i++) {
                if (!strcmp(map->keys[i], sub)) {
                        free(map->values[i]);
                        map->values[i] = v;
                        return MG_OK;
                }
        }
        if (map->cnt >= MG_CONF_MAP_MAX) {
                free(v);
                return mg_err_set(MG_ERR_CONFIG, detail, detail_size,
                                  "more than %d keys", MG_CONF_MAP_MAX);
        }
        k = strdup(sub);
        keys = realloc(map->keys, (map->cnt + 1) * sizeof(*keys));
        if (keys)
                map->keys = keys;
        values = realloc(map->values, (map->cnt + 1) * sizeof(*values));
        if (values)
                map->values = values;
        if (!k || !keys || !values) {
                free(k);
                free(v);
                return mg_err_set(MG_ERR_NOMEM, detail, detail_size,
                                  "out of memory");
        }
        map->keys[map->cnt] = k;
        map->values[map->cnt] = v;
        map->cnt++;
        return MG_OK;
}

/* Parse text (len bytes, no NUL inside) as prop's type and store it in
 * sec's struct. For MG_CONF_MAP, sub is the key below the prefix. The field
 * is only changed when the value is valid. */
static mg_err_t mg_conf_apply(const struct mg_conf_section *sec,
                              const struct mg_conf_prop *prop,
                              const char *sub, const char *text, size_t len,
                              char *detail, size_t detail_size) {
        char qbuf[4 * MG_CONF_QUOTE_MAX + 8], num[48];
        void *field = mg_conf_field(sec, prop);
        int64_t i64;
        double d;
        char *s;
        int b, rc;
        mg_err_t err;

        switch (prop->type) {
        case MG_CONF_STR:
                if (mg_conf_bounded(prop) &&
                    ((double)len < prop->min || (double)len > prop->max))
                        return mg_err_set(MG_ERR_CONFIG, detail, detail_size,
                                          "%s is %zu bytes long, expected "
                                          "%.0f to %.0f",
                                          mg_conf_quote(qbuf, sizeof(qbuf),
                                                        text, len),
                                          len, prop->min, prop->max);
                s = malloc(len + 1);
                if (!s)
                        return mg_err_set(MG_ERR_NOMEM, detail, detail_size,
                                          "out of memory");
                memcpy(s, text, len);
                s[len] = '\0';
                free(*(char **)field);
                *(char **)field = s;
                return MG_OK;

        case MG_CONF_INT:
                rc = mg_conf_parse_int(text, len, &i64);
                if (rc)
                        return mg_err_set(MG_ERR_CONFIG, detail, detail_size,
                                          rc == -2 ? "%s does not fit in a "
                                                     "64-bit integer"
                                                   : "%s is not an integer",
                                          mg_conf_quote(qbuf, sizeof(qbuf),
                                                        text, len));
                snprintf(num, sizeof(num), "%" PRId64, i64);
                err = mg_conf_check_bounds(prop, (double)i64, num, detail,
                                           detail_size);
                if (err)
                        return err;
                *(int64_t *)field = i64;
                return MG_OK;

        case MG_CONF_DOUBLE:
                rc = mg_conf_parse_double(text, len, &d);
                if (rc)
                        return mg_err_set(MG_ERR_CONFIG, detail, detail_size,
                                          rc == -2 ? "%s is out of range"
                                                   : "%s is not a number",
                                          mg_conf_quote(qbuf, sizeof(qbuf),
                                                        text, len));
                snprintf(num, sizeof(num), "%g", d);
                err = mg_conf_check_bounds(prop, d, num, detail, detail_size);
                if (err)
                        return err;
                *(double *)field = d;
                return MG_OK;

        case MG_CONF_BOOL:
                if (mg_conf_parse_bool(text, len, &b))
                        return mg_err_set(MG_ERR_CONFIG, detail, detail_size,
                                          "%s is not a boolean (true/false, "
                                          "yes/no, on/off, 1/0)",
                                          mg_conf_quote(qbuf, sizeof(qbuf),
                                                        text, len));
                *(int *)field = b;
                return MG_OK;

        case MG_CONF_MS:
                rc = mg_conf_parse_dur(text, len, &i64);
                if (rc)
                        return mg_err_set(MG_ERR_CONFIG, detail, detail_size,
                                          rc == -2 ? "%s is too long a "
                                                     "duration"
                                                   : "%s is not a duration "
                                                     "(e.g. 250ms, 5s, 2m, "
                                                     "1h, 7d)",
                                          mg_conf_quote(qbuf, sizeof(qbuf),
                                                        text, len));
                mg_conf_format_ms(i64, num, sizeof(num));
                err = mg_conf_check_bounds(prop, (double)i64, num, detail,
                                           detail_size);
                if (err)
                        return err;
                *(int64_t *)field = i64;
                return MG_OK;

        case MG_CONF_MAP:
                if (!sub || !*sub)
                        return mg_err_set(MG_ERR_CONFIG, detail, detail_size,
                                          "expected keys below it (%s.NAME: "
                                          "value)",
                                          prop->name);
                return mg_conf_map_set((struct mg_conf_map *)field, sub, text,
                                       len, detail, detail_size);
        }
        return mg_err_set(MG_ERR_CONFIG, detail, detail_size,
                          "property has an unknown type %d", (int)prop->type);
}

/* Free what the field owns and put the property's default back. */
static mg_err_t mg_conf_apply_default(const struct mg_conf_section *sec,
                                      const struct mg_conf_prop *prop,
                                      char *detail, size_t detail_size) {
        void *field = mg_conf_field(sec, prop);

        switch (prop->type) {
        case MG_CONF_STR:
                free(*(char **)field);
                *(char **)field = NULL;
                break;
        case MG_CONF_INT:
        case MG_CONF_MS:
                *(int64_t *)field = 0;
                break;
        case MG_CONF_DOUBLE:
                *(double *)field = 0;
                break;
        case MG_CONF_BOOL:
                *(int *)field = 0;
                break;
        case MG_CONF_MAP:
                mg_conf_map_clear((struct mg_conf_map *)field);
                /* A map's default is always empty: its keys are free. */
                return MG_OK;
        }
        if (!prop->def)
                return MG_OK;
        return mg_conf_apply(sec, prop, NULL, prop->def, strlen(prop->def),
                             detail, detail_size);
}

/*
 * Key lookup.
 */

/* The property key names: an exact non-map property, or a map property
 * whose name is a prefix of key (then *subp points past "name."; exactly
 * the map's name gives an empty *subp). NULL when none. */
static const struct mg_conf_prop *
mg_conf_find(const struct mg_conf *conf, const char *key,
             const struct mg_conf_section **secp, const char **subp) {
        size_t s, i, n;

        for (s = 0; s < conf->cnt; s++) {
                const struct mg_conf_section *sec = &conf->sections[s];

                for (i = 0; i < sec->cnt; i++) {
                        const struct mg_conf_prop *prop = &sec->props[i];

                        n = strlen(prop->name);
                        if (strncmp(key, prop->name, n) != 0)
                                continue;
                        if (key[n] == '\0' ||
                            (key[n] == '.' && prop->type == MG_CONF_MAP)) {
                                *secp = sec;
                                *subp = key[n] ? key + n + 1 : key + n;
                                return prop;
                        }
                }
        }
        return NULL;
}

/* Whether key followed by '.' starts some property's name ("ingest" for
 * "ingest.group_id"): such a key may open a nested mapping. */
static int mg_conf_is_prefix(const struct mg_conf *conf, const char *key) {
        size_t s, i, n = strlen(key);

        for (s = 0; s < conf->cnt; s++)
                for (i = 0; i < conf->sections[s].cnt; i++) {
                        const char *name = conf->sections[s].props[i].name;

                        if (!strncmp(name, key, n) && name[n] == '.')
                                return 1;
                }
        return 0;
}

int mg_conf_distance(const char *a, const char *b) {
        size_t la = strlen(a), lb = strlen(b), i, j;
        int row[MG_CONF_KEY_MAX + 1], diag, up, best;

        if (la > MG_CONF_KEY_MAX || lb > MG_CONF_KEY_MAX ||
            (la > lb ? la - lb : lb - la) > 2)
                return 3;
        for (j = 0; j <= lb; j++)
                row[j] = (int)j;
        for (i = 1; i <= la; i++) {
                diag = row[0];
                row[0] = (int)i;
                best = row[0];
                for (j = 1; j <= lb; j++) {
                        up = row[j];
                        row[j] = diag + (a[i - 1] != b[j - 1]);
                        if (up + 1 < row[j])
                                row[j] = up + 1;
                        if (row[j - 1] + 1 < row[j])
                                row[j] = row[j - 1] + 1;
                        diag = up;
                        if (row[j] < best)
                                best = row[j];
                }
                if (best > 2)
                        return 3;
        }
        return row[lb];
}

/* "unknown key 'x'", with "; did you mean 'y'?" when one is close. */
static void mg_conf_unknown(const struct mg_conf *conf, const char *key,
                            char *detail, size_t detail_size) {
        char qbuf[4 * MG_CONF_QUOTE_MAX + 8];
        const char *best = NULL;
        int best_d = 3, d;
        size_t s, i;

        for (s = 0; s < conf->cnt; s++)
                for (i = 0; i < conf->sections[s].cnt; i++) {
                        d = mg_conf_distance(key,
                                             conf->sections[s].props[i].name);
                        if (d < best_d) {
                                best_d = d;
                                best = conf->sections[s].props[i].name;
                        }
                }
        mg_conf_quote(qbuf, sizeof(qbuf), key, strlen(key));
        if (best)
                snprintf(detail, detail_size,
                         "unknown key %s; did you mean '%s'?", qbuf, best);
        else
                snprintf(detail, detail_size, "unknown key %s", qbuf);
}

/*
 * Loading YAML.
 */

/* Report an error at a 0-based libyaml mark. */
static mg_err_t mg_conf_load_err(struct mg_conf_load *ld, mg_err_t err,
                                 yaml_mark_t mark, const char *detail) {
        return mg_err_set(err == MG_ERR_NOMEM ? err : MG_ERR_CONFIG,
                          ld->errstr, ld->errstr_size, "%s:%zu:%zu: %s",
                          ld->name, mark.line + 1, mark.column + 1, detail);
}

/* Next event; a libyaml error becomes MG_ERR_CONFIG with its position. */
static mg_err_t mg_conf_next(struct mg_conf_load *ld, yaml_event_t *event) {
        yaml_parser_t *parser = &ld->parser;

        if (yaml_parser_parse(parser, event))
                return MG_OK;
        memset(event, 0, sizeof(*event)); /* nothing to delete */
        if (parser->error == YAML_MEMORY_ERROR)
                return mg_err_set(MG_ERR_NOMEM, ld->errstr, ld->errstr_size,
                                  "%s: out of memory", ld->name);
        if (parser->error == YAML_READER_ERROR)
                return mg_err_set(MG_ERR_CONFIG, ld->errstr, ld->errstr_size,
                                  "%s: byte %zu: %s", ld->name,
                                  parser->problem_offset,
                                  parser->problem ? parser->problem
                                                  : "cannot read input");
        return mg_err_set(MG_ERR_CONFIG, ld->errstr, ld->errstr_size,
                          "%s:%zu:%zu: YAML syntax error: %s%s%s", ld->name,
                          parser->problem_mark.line + 1,
                          parser->problem_mark.column + 1,
                          parser->problem ? parser->problem : "unknown",
                          parser->context ? " " : "",
                          parser->context ? parser->context : "");
}

/* Remember a leaf key; MG_ERR_CONFIG when it was already set in this
 * load. */
static mg_err_t mg_conf_seen_add(struct mg_conf_load *ld, yaml_mark_t mark) {
        char detail[512];
        struct mg_conf_seen *seen;
        size_t i;

        for (i = 0; i < ld->seen_cnt; i++) {
                if (!strcmp(ld->seen[i].key, ld->key)) {
                        snprintf(detail, sizeof(detail),
                                 "duplicate key '%s' (first set at %zu:%zu)",
                                 ld->key, ld->seen[i].line, ld->seen[i].col);
                        return mg_conf_load_err(ld, MG_ERR_CONFIG, mark,
                                                detail);
                }
        }
        if (ld->seen_cnt == ld->seen_cap) {
                size_t cap = ld->seen_cap ? 2 * ld->seen_cap : 32;

                seen = realloc(ld->seen, cap * sizeof(*seen));
                if (!seen)
                        return mg_err_set(MG_ERR_NOMEM, ld->errstr,
                                          ld->errstr_size, "out of memory");
                ld->seen = seen;
                ld->seen_cap = cap;
        }
        seen = &ld->seen[ld->seen_cnt];
        seen->key = strdup(ld->key);
        if (!seen->key)
                return mg_err_set(MG_ERR_NOMEM, ld->errstr, ld->errstr_size,
                                  "out of memory");
        seen->line = mark.line + 1;
        seen->col = mark.column + 1;
        ld->seen_cnt++;
        return MG_OK;
}

/* A plain scalar YAML reads as null: "", "~", "null". */
static int mg_conf_is_null(const yaml_event_t *event) {
        const char *v = (const char *)event->data.scalar.value;

        if (event->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
                return 0;
        return !*v || !strcmp(v, "~") || !strcmp(v, "null") ||
               !strcmp(v, "Null") || !strcmp(v, "NULL");
}

/* A scalar value at ld->key (key_mark: where the key was). */
static mg_err_t mg_conf_load_scalar(struct mg_conf_load *ld,
                                    const yaml_event_t *val,
                                    yaml_mark_t key_mark) {
        const struct mg_conf_section *sec;
        const struct mg_conf_prop *prop;
        const char *sub, *text = (const char *)val->data.scalar.value;
        size_t len = val->data.scalar.length;
        char detail[512], msg[768];
        mg_err_t err;

        prop = mg_conf_find(ld->conf, ld->key, &sec, &sub);
        if (!prop) {
                if (mg_conf_is_null(val) && mg_conf_is_prefix(ld->conf,
                                                              ld->key))
                        return MG_OK; /* an empty section */
                if (mg_conf_is_prefix(ld->conf, ld->key))
                        return mg_conf_load_err(ld, MG_ERR_CONFIG,
                                                val->start_mark,
                                                "expected a mapping of "
                                                "settings here");
                mg_conf_unknown(ld->conf, ld->key, detail, sizeof(detail));
                return mg_conf_load_err(ld, MG_ERR_CONFIG, key_mark, detail);
        }
        err = mg_conf_seen_add(ld, key_mark);
        if (err)
                return err;
        if (memchr(text, '\0', len)) {
                err = mg_err_set(MG_ERR_CONFIG, detail, sizeof(detail),
                                 "value contains a NUL byte");
        } else if (mg_conf_is_null(val) && prop->type == MG_CONF_MAP &&
                   *sub) {
                /* A map key's default is "not set". */
                mg_conf_map_del((struct mg_conf_map *)mg_conf_field(sec, prop),
                                sub);
                err = MG_OK;
        } else if (mg_conf_is_null(val)) {
                err = mg_conf_apply_default(sec, prop, detail,
                                            sizeof(detail));
        } else {
                err = mg_conf_apply(sec, prop, sub, text, len, detail,
                                    sizeof(detail));
        }
        if (!err)
                return MG_OK;
        snprintf(msg, sizeof(msg), "%s: %s", ld->key, detail);
        return mg_conf_load_err(ld, err, val->start_mark, msg);
}

/* Append a mapping key to ld->key; returns the previous length to restore,
 * or (size_t)-1 after setting an error. */
static size_t mg_conf_key_push(struct mg_conf_load *ld,
                               const yaml_event_t *key) {
        const char *k = (const char *)key->data.scalar.value;
        size_t klen = key->data.scalar.length, len = strlen(ld->key);
        char qbuf[4 * MG_CONF_QUOTE_MAX + 8], detail[512];
        size_t need = len + (len ? 1 : 0) + klen;

        if (need > MG_CONF_KEY_MAX) {
                snprintf(detail, sizeof(detail),
                         "key is longer than %d bytes", MG_CONF_KEY_MAX);
                mg_conf_load_err(ld, MG_ERR_CONFIG, key->start_mark, detail);
                return (size_t)-1;
        }
        /* Empty components ("a..b", ".a", "a.", "") name nothing. */
        if (klen == 0 || memchr(k, '\0', klen) || k[0] == '.' ||
            k[klen - 1] == '.' || strstr(k, "..")) {
                snprintf(detail, sizeof(detail), "malformed key %s",
                         mg_conf_quote(qbuf, sizeof(qbuf), k, klen));
                mg_conf_load_err(ld, MG_ERR_CONFIG, key->start_mark, detail);
                return (size_t)-1;
        }
        if (len)
                ld->key[len] = '.';
        memcpy(ld->key + len + (len ? 1 : 0), k, klen);
        ld->key[need] = '\0';
        return len;
}

/* Can a mapping sit at ld->key? Yes at a prefix of property names, at a
 * map property and below one. */
static int mg_conf_mapping_ok(const struct mg_conf_load *ld) {
        const struct mg_conf_section *sec;
        const char *sub;
        const struct mg_conf_prop *prop;

        if (mg_conf_is_prefix(ld->conf, ld->key))
                return 1;
        prop = mg_conf_find(ld->conf, ld->key, &sec, &sub);
        return prop && prop->type == MG_CONF_MAP;
}

/* A mapping at ld->key where none may be: under a scalar property, or
 * under a key nothing starts with. Kept out of mg_conf_load_mapping() so
 * its buffers are not on every recursion level. */
static mg_err_t mg_conf_bad_mapping(struct mg_conf_load *ld,
                                    yaml_mark_t key_mark,
                                    yaml_mark_t val_mark) {
        const struct mg_conf_section *sec;
        const char *sub;
        char detail[512], msg[768];

        if (mg_conf_find(ld->conf, ld->key, &sec, &sub)) {
                snprintf(msg, sizeof(msg), "%s: expected a scalar value",
                         ld->key);
                return mg_conf_load_err(ld, MG_ERR_CONFIG, val_mark, msg);
        }
        mg_conf_unknown(ld->conf, ld->key, detail, sizeof(detail));
        return mg_conf_load_err(ld, MG_ERR_CONFIG, key_mark, detail);
}

/* A sequence at ld->key: no property takes one. */
static mg_err_t mg_conf_bad_list(struct mg_conf_load *ld, yaml_mark_t mark) {
        char msg[768];

        snprintf(msg, sizeof(msg), "%s: expected a scalar value, not a list",
                 ld->key);
        return mg_conf_load_err(ld, MG_ERR_CONFIG, mark, msg);
}

/* The body of a mapping whose start event was consumed, up to and
 * including its end event. Recursion depth is bounded by MG_CONF_KEY_MAX. */
static mg_err_t mg_conf_load_mapping(struct mg_conf_load *ld) {
        yaml_event_t key, val;
        mg_err_t err = MG_OK;
        size_t saved;

        memset(&key, 0, sizeof(key));
        memset(&val, 0, sizeof(val));
        for (;;) {
                if ((err = mg_conf_next(ld, &key)))
                        goto out;
                if (key.type == YAML_MAPPING_END_EVENT)
                        goto out;
                if (key.type == YAML_ALIAS_EVENT) {
                        err = mg_conf_load_err(ld, MG_ERR_CONFIG,
                                               key.start_mark,
                                               "aliases are not supported");
                        goto out;
                }
                if (key.type != YAML_SCALAR_EVENT) {
                        err = mg_conf_load_err(ld, MG_ERR_CONFIG,
                                               key.start_mark,
                                               "a key must be a scalar");
                        goto out;
                }
                saved = mg_conf_key_push(ld, &key);
                if (saved == (size_t)-1) {
                        err = MG_ERR_CONFIG;
                        goto out;
                }
                if ((err = mg_conf_next(ld, &val)))
                        goto out;
                switch (val.type) {
                case YAML_SCALAR_EVENT:
                        err = mg_conf_load_scalar(ld, &val, key.start_mark);
                        break;
                case YAML_MAPPING_START_EVENT:
                        if (!mg_conf_mapping_ok(ld)) {
                                err = mg_conf_bad_mapping(ld, key.start_mark,
                                                          val.start_mark);
                                break;
                        }
                        err = mg_conf_load_mapping(ld);
                        break;
                case YAML_SEQUENCE_START_EVENT:
                        err = mg_conf_bad_list(ld, val.start_mark);
                        break;
                case YAML_ALIAS_EVENT:
                        err = mg_conf_load_err(ld, MG_ERR_CONFIG,
                                               val.start_mark,
                                               "aliases are not supported");
                        break;
                default:
                        err = mg_conf_load_err(ld, MG_ERR_CONFIG,
                                               val.start_mark,
                                               "unexpected YAML event");
                        break;
                }
                if (err)
                        goto out;
                ld->key[saved] = '\0';
                yaml_event_delete(&key);
                yaml_event_delete(&val);
        }
out:
        yaml_event_delete(&key);
        yaml_event_delete(&val);
        return err;
}

/* Stream → at most one document → a mapping (or nothing) → stream end. */
static mg_err_t mg_conf_load_stream(struct mg_conf_load *ld) {
        yaml_event_t event;
        mg_err_t err;
        int docs = 0;

        memset(&event, 0, sizeof(event));
        /* libyaml's grammar guarantees the event order checked below; the
         * checks keep a surprise from becoming a crash. */
        if ((err = mg_conf_next(ld, &event)))
                goto out;
        if (event.type != YAML_STREAM_START_EVENT) {
                err = mg_conf_load_err(ld, MG_ERR_CONFIG, event.start_mark,
                                       "unexpected YAML event");
                goto out;
        }
        for (;;) {
                yaml_event_delete(&event);
                if ((err = mg_conf_next(ld, &event)))
                        goto out;
                if (event.type == YAML_STREAM_END_EVENT)
                        goto out;
                if (event.type != YAML_DOCUMENT_START_EVENT) {
                        err = mg_conf_load_err(ld, MG_ERR_CONFIG,
                                               event.start_mark,
                                               "unexpected YAML event");
                        goto out;
                }
                if (docs++ > 0) {
                        err = mg_conf_load_err(ld, MG_ERR_CONFIG,
                                               event.start_mark,
                                               "only one YAML document is "
                                               "allowed");
                        goto out;
                }
                yaml_event_delete(&event);
                if ((err = mg_conf_next(ld, &event)))
                        goto out;
                if (event.type == YAML_MAPPING_START_EVENT) {
                        if ((err = mg_conf_load_mapping(ld)))
                                goto out;
                } else if (!(event.type == YAML_SCALAR_EVENT &&
                             mg_conf_is_null(&event))) {
                        /* A document of only comments is a null scalar. */
                        err = mg_conf_load_err(ld, MG_ERR_CONFIG,
                                               event.start_mark,
                                               "expected a mapping of "
                                               "settings at the top level");
                        goto out;
                }
                yaml_event_delete(&event);
                if ((err = mg_conf_next(ld, &event)))
                        goto out;
                if (event.type != YAML_DOCUMENT_END_EVENT) {
                        err = mg_conf_load_err(ld, MG_ERR_CONFIG,
                                               event.start_mark,
                                               "unexpected YAML event");
                        goto out;
                }
        }
out:
        yaml_event_delete(&event);
        return err;
}

mg_err_t mg_conf_load_buf(struct mg_conf *conf, const char *name,
                          const char *buf, size_t len, char *errstr,
                          size_t errstr_size) {
        struct mg_conf_load *ld;
        mg_err_t err;
        size_t i;

        if (len > MG_CONF_FILE_MAX)
                return mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                  "%s: %zu bytes is larger than the %d byte "
                                  "limit for a configuration file",
                                  name, len, MG_CONF_FILE_MAX);
        ld = calloc(1, sizeof(*ld));
        if (!ld)
                return mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                  "out of memory");
        ld->conf = conf;
        ld->name = name ? name : "(config)";
        ld->errstr = errstr;
        ld->errstr_size = errstr_size;
        if (!yaml_parser_initialize(&ld->parser)) {
                free(ld);
                return mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                  "out of memory");
        }
        yaml_parser_set_input_string(&ld->parser, (const unsigned char *)buf,
                                     len);
        err = mg_conf_load_stream(ld);

        yaml_parser_delete(&ld->parser);
        for (i = 0; i < ld->seen_cnt; i++)
                free(ld->seen[i].key);
        free(ld->seen);
        free(ld);
        return err;
}

mg_err_t mg_conf_load_file(struct mg_conf *conf, const char *path,
                           char *errstr, size_t errstr_size) {
        FILE *fp = NULL;
        char *buf = NULL;
        size_t len = 0, n;
        mg_err_t err = MG_OK;

        fp = fopen(path, "rb");
        if (!fp) {
                err = mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                 "%s: %s", path, strerror(errno));
                goto out;
        }
        /* Read at most one byte past the cap, to tell "too big" apart. */
        buf = malloc(MG_CONF_FILE_MAX + 1);
        if (!buf) {
                err = mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                 "out of memory");
                goto out;
        }
        while ((n = fread(buf + len, 1, MG_CONF_FILE_MAX + 1 - len, fp)) > 0)
                len += n;
        if (ferror(fp)) {
                err = mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                 "%s: read error", path);
                goto out;
        }
        err = mg_conf_load_buf(conf, path, buf, len, errstr, errstr_size);
out:
        free(buf);
        if (fp)
                fclose(fp);
        return err;
}

/*
 * The mg_conf object.
 */

struct mg_conf *mg_conf_new(void) {
        return calloc(1, sizeof(struct mg_conf));
}

void mg_conf_destroy(struct mg_conf *conf) {
        size_t s, i;

        if (!conf)
                return;
        for (s = 0; s < conf->cnt; s++) {
                const struct mg_conf_section *sec = &conf->sections[s];

                for (i = 0; i < sec->cnt; i++) {
                        const struct mg_conf_prop *prop = &sec->props[i];
                        void *field = mg_conf_field(sec, prop);

                        if (prop->type == MG_CONF_STR) {
                                free(*(char **)field);
                                *(char **)field = NULL;
                        } else if (prop->type == MG_CONF_MAP) {
                                mg_conf_map_clear(
                                        (struct mg_conf_map *)field);
                        }
                }
        }
        free(conf->sections);
        free(conf);
}

mg_err_t mg_conf_add_section(struct mg_conf *conf, const char *title,
                             const struct mg_conf_prop *props, size_t cnt,
                             void *base, char *errstr, size_t errstr_size) {
        const struct mg_conf_section *other;
        struct mg_conf_section *sections, *sec;
        char detail[512];
        const char *sub;
        size_t i, j;
        mg_err_t err = MG_OK;

        /* Table mistakes are programming errors, but say which. */
        for (i = 0; i < cnt; i++) {
                if (!props[i].name || !*props[i].name ||
                    (unsigned)props[i].type > MG_CONF_MAP)
                        return mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                          "%s: property %zu is malformed",
                                          title, i);
                for (j = 0; j < i; j++)
                        if (!strcmp(props[i].name, props[j].name))
                                break;
                if (j < i || mg_conf_find(conf, props[i].name, &other, &sub))
                        return mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                          "%s: property %s is defined twice "
                                          "or inside a map property",
                                          title, props[i].name);
        }
        sections = realloc(conf->sections,
                           (conf->cnt + 1) * sizeof(*sections));
        if (!sections)
                return mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                  "out of memory");
        conf->sections = sections;
        sec = &conf->sections[conf->cnt];
        sec->title = title;
        sec->props = props;
        sec->cnt = cnt;
        sec->base = base;

        /* The caller's struct may hold anything: clear the owned fields
         * before mg_conf_apply_default() frees "old" values. */
        for (i = 0; i < cnt; i++) {
                void *field = mg_conf_field(sec, &props[i]);

                if (props[i].type == MG_CONF_STR)
                        *(char **)field = NULL;
                else if (props[i].type == MG_CONF_MAP)
                        memset(field, 0, sizeof(struct mg_conf_map));
        }
        conf->cnt++;
        for (i = 0; i < cnt; i++) {
                err = mg_conf_apply_default(sec, &props[i], detail,
                                            sizeof(detail));
                if (err) {
                        err = mg_err_set(err, errstr, errstr_size,
                                         "%s: default of %s: %s", title,
                                         props[i].name, detail);
                        break;
                }
        }
        return err;
}

mg_err_t mg_conf_set(struct mg_conf *conf, const char *key, const char *value,
                     char *errstr, size_t errstr_size) {
        const struct mg_conf_section *sec;
        const struct mg_conf_prop *prop;
        char detail[512];
        const char *sub;
        mg_err_t err;

        if (!key || !value)
                return mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                  "--set: key and value are required");
        prop = mg_conf_find(conf, key, &sec, &sub);
        if (!prop) {
                mg_conf_unknown(conf, key, detail, sizeof(detail));
                return mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                  "--set: %s", detail);
        }
        if (prop->type == MG_CONF_MAP &&
            (!*sub || sub[0] == '.' || sub[strlen(sub) - 1] == '.' ||
             strstr(sub, "..")))
                return mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                  "--set %s: expected a key below %s "
                                  "(%s.NAME)",
                                  key, prop->name, prop->name);
        err = mg_conf_apply(sec, prop, sub, value, strlen(value), detail,
                            sizeof(detail));
        if (err)
                return mg_err_set(err, errstr, errstr_size, "--set %s: %s",
                                  key, detail);
        return MG_OK;
}

/*
 * Reference documentation.
 */

/* Bounds of a property as text ("" when unbounded). */
static int mg_conf_str_eq(const char *x, const char *y) {
        return !strcmp(x ? x : "", y ? y : "");
}

static int mg_conf_map_eq(const struct mg_conf_map *x,
                          const struct mg_conf_map *y) {
        size_t i;

        if (x->cnt != y->cnt)
                return 0;
        for (i = 0; i < x->cnt; i++)
                if (strcmp(x->keys[i], y->keys[i]) ||
                    strcmp(x->values[i], y->values[i]))
                        return 0;
        return 1;
}

/* Whether prop has the same value in both sections. */
static int mg_conf_prop_eq(const struct mg_conf_section *sa,
                           const struct mg_conf_section *sb,
                           const struct mg_conf_prop *prop) {
        const void *x = mg_conf_field(sa, prop), *y = mg_conf_field(sb, prop);

        switch (prop->type) {
        case MG_CONF_STR:
                return mg_conf_str_eq(*(char *const *)x, *(char *const *)y);
        case MG_CONF_INT:
        case MG_CONF_MS:
                return *(const int64_t *)x == *(const int64_t *)y;
        case MG_CONF_DOUBLE:
                return *(const double *)x == *(const double *)y;
        case MG_CONF_BOOL:
                return *(const int *)x == *(const int *)y;
        case MG_CONF_MAP:
                return mg_conf_map_eq(x, y);
        }
        return 0;
}

size_t mg_conf_diff(const struct mg_conf *a, const struct mg_conf *b,
                    void (*cb)(void *opaque, const struct mg_conf_prop *prop),
                    void *opaque) {
        size_t i, j, n = 0;

        for (i = 0; i < a->cnt && i < b->cnt; i++) {
                const struct mg_conf_section *sa = &a->sections[i];
                const struct mg_conf_section *sb = &b->sections[i];

                assert(sa->props == sb->props);
                for (j = 0; j < sa->cnt; j++) {
                        if (mg_conf_prop_eq(sa, sb, &sa->props[j]))
                                continue;
                        n++;
                        if (cb)
                                cb(opaque, &sa->props[j]);
                }
        }
        return n;
}

static void mg_conf_format_range(const struct mg_conf_prop *prop, char *buf,
                                 size_t size) {
        char lo[48], hi[48];

        buf[0] = '\0';
        if (!mg_conf_bounded(prop) || prop->type == MG_CONF_BOOL ||
            prop->type == MG_CONF_MAP)
                return;
        mg_conf_format_bound(prop, prop->min, lo, sizeof(lo));
        mg_conf_format_bound(prop, prop->max, hi, sizeof(hi));
        snprintf(buf, size, "%s%s .. %s",
                 prop->type == MG_CONF_STR ? "length " : "", lo, hi);
}

/* Default as shown in the reference. */
static const char *mg_conf_default_text(const struct mg_conf_prop *prop) {
        if (prop->type == MG_CONF_MAP)
                return "(empty)";
        if (!prop->def)
                return prop->type == MG_CONF_STR    ? "(none)"
                       : prop->type == MG_CONF_BOOL ? "false"
                                                    : "0";
        return prop->def;
}

/* Text with Markdown table cell metacharacters escaped. */
static void mg_conf_md_cell(FILE *fp, const char *s) {
        for (; *s; s++) {
                if (*s == '|')
                        fputs("\\|", fp);
                else if (*s == '\n')
                        fputc(' ', fp);
                else
                        fputc(*s, fp);
        }
}

void mg_conf_print_reference(const struct mg_conf *conf, FILE *fp,
                             int markdown) {
        char range[128], name[MG_CONF_KEY_MAX + 8];
        size_t s, i, w;

        for (s = 0; s < conf->cnt; s++) {
                const struct mg_conf_section *sec = &conf->sections[s];

                if (markdown) {
                        fprintf(fp, "%s## %s\n\n", s ? "\n" : "",
                                sec->title);
                        fputs("| Key | Type | Default | Range | Reloadable "
                              "| Description |\n",
                              fp);
                        fputs("|---|---|---|---|---|---|\n", fp);
                } else {
                        fprintf(fp, "%s%s\n", s ? "\n" : "", sec->title);
                }
                /* Width of the key column: longest name (maps with
                 * ".*"). */
                w = 0;
                for (i = 0; i < sec->cnt; i++) {
                        size_t n = strlen(sec->props[i].name) +
                                   (sec->props[i].type == MG_CONF_MAP ? 2
                                                                      : 0);

                        if (n > w)
                                w = n;
                }
                for (i = 0; i < sec->cnt; i++) {
                        const struct mg_conf_prop *prop = &sec->props[i];
                        const char *def = mg_conf_default_text(prop);

                        mg_conf_format_range(prop, range, sizeof(range));
                        if (markdown) {
                                fprintf(fp, "| `%s%s` | %s | ", prop->name,
                                        prop->type == MG_CONF_MAP ? ".*" : "",
                                        mg_conf_type_name(prop->type));
                                if (prop->def && prop->type != MG_CONF_MAP) {
                                        fputc('`', fp);
                                        mg_conf_md_cell(fp, def);
                                        fputc('`', fp);
                                } else {
                                        mg_conf_md_cell(fp, def);
                                }
                                fprintf(fp, " | %s | %s | ", range,
                                        prop->reloadable ? "yes" : "no");
                                mg_conf_md_cell(fp, prop->desc ? prop->desc
                                                               : "");
                                fputs(" |\n", fp);
                        } else {
                                snprintf(name, sizeof(name), "%s%s",
                                         prop->name,
                                         prop->type == MG_CONF_MAP ? ".*"
                                                                   : "");
                                fprintf(fp, "  %-*s  %-8s  default %s%s%s%s\n",
                                        (int)w, name,
                                        mg_conf_type_name(prop->type), def,
                                        *range ? ", range " : "", range,
                                        prop->reloadable ? ", reloadable"
                                                         : "");
                                if (prop->desc)
                                        fprintf(fp, "      %s\n", prop->desc);
                        }
                }
        }
}
