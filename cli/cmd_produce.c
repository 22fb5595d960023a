/*
 * cmd_produce.c — `mintgate produce`: JSON-lines events (DESIGN.md) from a
 * file or stdin, each encoded with its Avro schema and framing, produced to
 * its topic keyed by identity.
 *
 * A bad line is reported with its line number and skipped; the rest go on.
 * The summary counts lines sent, rejected and failed in delivery (from
 * librdkafka's delivery reports, after a final flush).
 *
 * Fault injection for testing consumers (--corrupt-rate): a seeded share of
 * the messages is damaged on purpose in one of seven ways, each of which a
 * correct consumer must dead-letter: truncated, wrong magic byte, unknown
 * fingerprint, unknown Confluent schema id, enum index out of range, empty
 * identity, oversize field. With --corrupt-log, each damaged message is
 * listed (topic, partition, offset from its delivery report, kind,
 * event_id) so a test can check the dead-letter topic against it.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "cli.h"
#include "mg_lines.h"
#include "mg_avro.h"
#include "mg_log.h"

/* Lines longer than this are rejected: the biggest valid event is its
 * arena (16 KiB) plus JSON quoting; 64 KiB leaves room for escapes. */
#define PRODUCE_LINE_MAX (64 * 1024)

/* event_id of an "oversize" corruption: past MG_EVENT_STR_MAX. */
#define PRODUCE_OVERSIZE_LEN (MG_EVENT_STR_MAX + 977)

enum corrupt_kind {
        CORRUPT_TRUNCATED,
        CORRUPT_BAD_MAGIC,
        CORRUPT_UNKNOWN_FINGERPRINT,
        CORRUPT_UNKNOWN_SCHEMA_ID,
        CORRUPT_BAD_ENUM,
        CORRUPT_EMPTY_IDENTITY,
        CORRUPT_OVERSIZE,
        CORRUPT__CNT
};

static const char *const corrupt_names[CORRUPT__CNT] = {
        "truncated",      "bad_magic",      "unknown_fingerprint",
        "unknown_schema_id", "bad_enum",    "empty_identity",
        "oversize"};

/* One damaged message, completed by its delivery report. */
struct corrupt_rec {
        enum corrupt_kind kind;  /* what was done */
        char event_id[128];      /* the original event's id */
        const char *topic;       /* where it went */
        int32_t partition;       /* from the delivery report */
        int64_t offset;          /* from the delivery report */
        int delivered;           /* the broker acknowledged it */
};

struct produce_state {
        rd_kafka_t *rk;                 /* producer */
        struct mg_avro_encoder *enc;    /* event encoder */
        const struct mg_avro_registry *reg; /* for fingerprints */
        enum mg_avro_framing framing;   /* --confluent or not */
        const char *auth_label;         /* --schema for auth events */
        const char *topics[MG_EVENT_TYPE__CNT]; /* topic per event type */
        double corrupt_rate;            /* share of messages to damage */
        uint64_t rng;                   /* xorshift64* state */
        struct corrupt_rec *corrupt;    /* damaged messages */
        size_t corrupt_cnt, corrupt_cap;
        uint64_t sent, rejected, failed, delivered; /* counters */
};

static uint64_t rng_next(uint64_t *s) {
        *s ^= *s >> 12;
        *s ^= *s << 25;
        *s ^= *s >> 27;
        return *s * 0x2545F4914F6CDD1DULL;
}

static double rng_unit(uint64_t *s) {
        return (double)(rng_next(s) >> 11) / 9007199254740992.0;
}

static void produce_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                          void *opaque) {
        struct produce_state *ps = opaque;
        /* _private is the 1-based index of a corrupt record, or 0. */
        size_t idx = (size_t)(uintptr_t)rkm->_private;

        if (rkm->err) {
                ps->failed++;
                mg_log_error("produce", "delivery to %s failed: %s",
                             rd_kafka_topic_name(rkm->rkt),
                             rd_kafka_err2str(rkm->err));
                return;
        }
        ps->delivered++;
        if (idx > 0) {
                struct corrupt_rec *cr = &ps->corrupt[idx - 1];

                cr->partition = rkm->partition;
                cr->offset = rkm->offset;
                cr->delivered = 1;
        }
}

/* Length of the Avro varint at p (at most 10 bytes), 0 if malformed. */
static size_t varint_len(const unsigned char *p, size_t len) {
        size_t i;

        for (i = 0; i < len && i < 10; i++)
                if (!(p[i] & 0x80))
                        return i + 1;
        return 0;
}

/* Decode a zigzag varint at p; returns its length or 0. */
static size_t varint_get(const unsigned char *p, size_t len, int64_t *v) {
        size_t n = varint_len(p, len), i;
        uint64_t u = 0;

        for (i = 0; i < n; i++)
                u |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        *v = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
        return n;
}

static size_t varint_put(unsigned char *p, int64_t v) {
        uint64_t u = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
        size_t n = 0;

        while (u >= 0x80) {
                p[n++] = (unsigned char)(u | 0x80);
                u >>= 7;
        }
        p[n++] = (unsigned char)u;
        return n;
}

/* Skip an Avro string at p; returns bytes skipped or 0. */
static size_t skip_string(const unsigned char *p, size_t len) {
        int64_t slen;
        size_t n = varint_get(p, len, &slen);

        if (!n || slen < 0 || (size_t)slen > len - n)
                return 0;
        return n + (size_t)slen;
}

static size_t frame_len(enum mg_avro_framing framing) {
        return framing == MG_AVRO_CONFLUENT ? 5 : 10;
}

/* Damage the encoded message buf (len bytes, room for size) in place.
 * Returns the new length, or 0 if this kind does not apply to it. */
static size_t corrupt_apply(struct produce_state *ps, enum corrupt_kind kind,
                            const struct mg_event *ev, unsigned char *buf,
                            size_t len, size_t size) {
        size_t hdr = frame_len(ps->framing), n, off, idlen;
        unsigned char tmp[16];

        switch (kind) {
        case CORRUPT_TRUNCATED:
                return 1 + (size_t)(rng_next(&ps->rng) % (len - 1));
        case CORRUPT_BAD_MAGIC:
                buf[0] = 0x7f;
                return len;
        case CORRUPT_UNKNOWN_FINGERPRINT:
                if (ps->framing != MG_AVRO_SINGLE_OBJECT)
                        return 0;
                buf[2] ^= 0xa5; /* a fingerprint nobody registered */
                buf[9] ^= 0x5a;
                return len;
        case CORRUPT_UNKNOWN_SCHEMA_ID:
                /* Reframe as Confluent with an id nobody registered. */
                memmove(buf + 5, buf + hdr, len - hdr);
                buf[0] = 0;
                buf[1] = 0x00, buf[2] = 0x00, buf[3] = 0x27, buf[4] = 0x0f;
                return len - hdr + 5;
        case CORRUPT_BAD_ENUM:
                /* The 4th field of AuthEvent (v2) and SignalEvent is an
                 * enum: skip event_id, ts and identity, rewrite it. */
                if (ev->type == MG_EVENT_USAGE ||
                    (ev->type == MG_EVENT_AUTH && ps->auth_label))
                        return 0;
                off = hdr;
                if (!(n = skip_string(buf + off, len - off)))
                        return 0;
                off += n;
                if (!(n = varint_len(buf + off, len - off)))
                        return 0;
                off += n;
                if (!(n = skip_string(buf + off, len - off)))
                        return 0;
                off += n;
                if (varint_len(buf + off, len - off) != 1)
                        return 0;
                buf[off] = (unsigned char)(57 << 1); /* index 57 */
                return len;
        case CORRUPT_EMPTY_IDENTITY:
                return 0; /* done before encoding, see produce_line() */
        case CORRUPT_OVERSIZE:
                /* event_id is the first field of every schema: replace it
                 * with one past the cap. */
                off = hdr;
                if (!(idlen = skip_string(buf + off, len - off)))
                        return 0;
                n = varint_put(tmp, PRODUCE_OVERSIZE_LEN);
                if (len - idlen + n + PRODUCE_OVERSIZE_LEN > size)
                        return 0;
                memmove(buf + off + n + PRODUCE_OVERSIZE_LEN,
                        buf + off + idlen, len - off - idlen);
                memcpy(buf + off, tmp, n);
                memset(buf + off + n, 'x', PRODUCE_OVERSIZE_LEN);
                return len - idlen + n + PRODUCE_OVERSIZE_LEN;
        default:
                return 0;
        }
}

static int corrupt_note(struct produce_state *ps, enum corrupt_kind kind,
                        const struct mg_event *ev, const char *topic) {
        struct corrupt_rec *cr;

        if (ps->corrupt_cnt == ps->corrupt_cap) {
                size_t cap = ps->corrupt_cap ? ps->corrupt_cap * 2 : 256;
                void *p = realloc(ps->corrupt, cap * sizeof(*ps->corrupt));

                if (!p)
                        return -1;
                ps->corrupt = p;
                ps->corrupt_cap = cap;
        }
        cr = &ps->corrupt[ps->corrupt_cnt++];
        memset(cr, 0, sizeof(*cr));
        cr->kind = kind;
        snprintf(cr->event_id, sizeof(cr->event_id), "%s", ev->event_id);
        cr->topic = topic;
        cr->partition = -1;
        cr->offset = -1;
        return (int)ps->corrupt_cnt;
}

/* Produce one parsed event (maybe damaged). Returns 0 or -1. */
static int produce_event(struct produce_state *ps, struct mg_event *ev,
                         size_t lineno) {
        static unsigned char buf[MG_AVRO_MSG_MAX + PRODUCE_OVERSIZE_LEN + 16];
        const char *topic = ps->topics[ev->type];
        const char *label = ev->type == MG_EVENT_AUTH ? ps->auth_label : NULL;
        enum corrupt_kind kind = CORRUPT__CNT;
        size_t len = 0, clen;
        char errstr[256];
        uintptr_t opaque = 0;
        rd_kafka_resp_err_t kerr;
        int tries;

        if (ps->corrupt_rate > 0 && rng_unit(&ps->rng) < ps->corrupt_rate)
                kind = (enum corrupt_kind)(rng_next(&ps->rng) % CORRUPT__CNT);
        if (kind == CORRUPT_EMPTY_IDENTITY)
                ev->identity = "";
        if (mg_avro_encode(ps->enc, ev, label, buf, MG_AVRO_MSG_MAX, &len,
                           errstr, sizeof(errstr))) {
                fprintf(stderr, "mintgate produce: line %zu: %s\n", lineno,
                        errstr);
                ps->rejected++;
                return -1;
        }
        /* Kinds that do not fit this message fall through to the next. */
        for (tries = 0; kind != CORRUPT__CNT && tries < CORRUPT__CNT;
             tries++) {
                if (kind == CORRUPT_EMPTY_IDENTITY && tries == 0)
                        break; /* applied before encoding */
                if (kind != CORRUPT_EMPTY_IDENTITY &&
                    (clen = corrupt_apply(ps, kind, ev, buf, len,
                                          sizeof(buf)))) {
                        len = clen;
                        break;
                }
                kind = (enum corrupt_kind)((kind + 1) % CORRUPT__CNT);
        }
        if (tries == CORRUPT__CNT)
                kind = CORRUPT__CNT; /* nothing fitted: sent intact */
        if (kind != CORRUPT__CNT) {
                int idx = corrupt_note(ps, kind, ev, topic);

                if (idx < 0) {
                        fprintf(stderr, "mintgate produce: out of memory\n");
                        return -1;
                }
                opaque = (uintptr_t)idx;
        }
        for (;;) {
                kerr = rd_kafka_producev(
                        ps->rk, RD_KAFKA_V_TOPIC(topic),
                        RD_KAFKA_V_KEY(ev->identity, strlen(ev->identity)),
                        RD_KAFKA_V_VALUE(buf, len),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                        RD_KAFKA_V_OPAQUE((void *)opaque), RD_KAFKA_V_END);
                if (kerr != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        break;
                rd_kafka_poll(ps->rk, 10);
        }
        if (kerr) {
                fprintf(stderr, "mintgate produce: line %zu: %s\n", lineno,
                        rd_kafka_err2str(kerr));
                ps->failed++;
                return -1;
        }
        ps->sent++;
        rd_kafka_poll(ps->rk, 0);
        return 0;
}

static int produce_stream(struct produce_state *ps, FILE *in) {
        static struct mg_event ev;
        struct mg_lines ln;
        char *line, errstr[512];
        int64_t now_ms = mg_time_now_ms();
        size_t len;
        mg_err_t err;

        mg_lines_init(&ln, in, PRODUCE_LINE_MAX);
        while ((err = mg_lines_next(&ln, &line, &len)) != MG_ERR_NOT_FOUND &&
               err != MG_ERR_IO) {
                if (err == MG_ERR_TOOBIG) {
                        fprintf(stderr,
                                "mintgate produce: line %zu: %zu bytes, the "
                                "limit is %d\n",
                                ln.lineno, len, PRODUCE_LINE_MAX);
                        ps->rejected++;
                        continue;
                }
                if (mg_event_from_json(&ev, line, len, now_ms, errstr,
                                       sizeof(errstr))) {
                        fprintf(stderr, "mintgate produce: line %zu: %s\n",
                                ln.lineno, errstr);
                        ps->rejected++;
                        continue;
                }
                produce_event(ps, &ev, ln.lineno);
        }
        mg_lines_free(&ln);
        if (err == MG_ERR_IO) {
                fprintf(stderr, "mintgate produce: read error: %s\n",
                        strerror(errno));
                return -1;
        }
        return 0;
}

static int corrupt_log_write(const struct produce_state *ps,
                             const char *path) {
        FILE *fp = fopen(path, "w");
        size_t i;

        if (!fp) {
                fprintf(stderr, "mintgate produce: %s: %s\n", path,
                        strerror(errno));
                return -1;
        }
        fprintf(fp, "topic\tpartition\toffset\tkind\tevent_id\n");
        for (i = 0; i < ps->corrupt_cnt; i++) {
                const struct corrupt_rec *cr = &ps->corrupt[i];

                if (!cr->delivered)
                        continue;
                fprintf(fp, "%s\t%" PRId32 "\t%" PRId64 "\t%s\t%s\n",
                        cr->topic, cr->partition, cr->offset,
                        corrupt_names[cr->kind], cr->event_id);
        }
        return fclose(fp) == 0 ? 0 : -1;
}

static void produce_usage(FILE *fp) {
        fprintf(fp,
                "Usage: mintgate produce [options] [FILE]\n\n"
                "Reads JSON-lines events (FILE or stdin), encodes each with "
                "its Avro schema\nand produces it to its topic, keyed by "
                "identity.\n\n" CLI_COMMON_HELP
                "      --confluent       Confluent wire format (00 + schema "
                "id) instead of\n"
                "                        single-object encoding\n"
                "      --schema LABEL    writer schema for auth events, "
                "e.g. auth.v1\n"
                "      --corrupt-rate R  damage this share of messages on "
                "purpose (testing)\n"
                "      --corrupt-seed N  seed for --corrupt-rate (default "
                "1)\n"
                "      --corrupt-log F   list damaged messages (TSV) in F\n");
}

int cli_produce(const struct cli_conf *cc, FILE *in,
                const struct cli_produce_opts *opts,
                struct cli_produce_result *res) {
        struct produce_state ps;
        struct mg_avro_registry *reg = NULL;
        rd_kafka_conf_t *kconf = NULL;
        char errstr[512];
        int rc = MG_EXIT_FAILURE;
        mg_err_t err;

        memset(&ps, 0, sizeof(ps));
        memset(res, 0, sizeof(*res));
        ps.framing = opts->framing;
        ps.auth_label = opts->auth_label;
        ps.corrupt_rate = opts->corrupt_rate;
        ps.rng = opts->corrupt_seed ? opts->corrupt_seed : 1;
        ps.topics[MG_EVENT_AUTH] = cc->ingest.topic_auth;
        ps.topics[MG_EVENT_USAGE] = cc->ingest.topic_usage;
        ps.topics[MG_EVENT_SIGNAL] = cc->ingest.topic_signals;

        if ((err = mg_avro_registry_new(&reg, errstr, sizeof(errstr))) ||
            (err = mg_ingest_schemas_apply(&cc->ingest, reg, errstr,
                                           sizeof(errstr))) ||
            (err = mg_avro_encoder_new(reg, ps.framing, &ps.enc, errstr,
                                       sizeof(errstr)))) {
                fprintf(stderr, "mintgate produce: %s\n", errstr);
                rc = err == MG_ERR_CONFIG || err == MG_ERR_INVALID
                             ? MG_EXIT_USAGE
                             : MG_EXIT_FAILURE;
                goto out;
        }
        ps.reg = reg;
        if (ps.auth_label) {
                uint64_t fp;

                if (mg_avro_registry_fingerprint(reg, ps.auth_label, &fp)) {
                        fprintf(stderr,
                                "mintgate produce: --schema %s: no such "
                                "schema\n",
                                ps.auth_label);
                        rc = MG_EXIT_USAGE;
                        goto out;
                }
        }

        kconf = rd_kafka_conf_new();
        if (mg_ingest_kafka_conf_apply(&cc->ingest.kafka, kconf, errstr,
                                       sizeof(errstr))) {
                fprintf(stderr, "mintgate produce: %s\n", errstr);
                rc = MG_EXIT_USAGE;
                goto out;
        }
        rd_kafka_conf_set(kconf, "linger.ms", "5", NULL, 0);
        rd_kafka_conf_set(kconf, "queue.buffering.max.messages", "1000000",
                          NULL, 0);
        rd_kafka_conf_set_dr_msg_cb(kconf, produce_dr_cb);
        rd_kafka_conf_set_opaque(kconf, &ps);
        ps.rk = rd_kafka_new(RD_KAFKA_PRODUCER, kconf, errstr, sizeof(errstr));
        if (!ps.rk) {
                fprintf(stderr, "mintgate produce: %s\n", errstr);
                goto out;
        }
        kconf = NULL;

        if (produce_stream(&ps, in) == 0)
                rc = MG_EXIT_OK;
        while (rd_kafka_outq_len(ps.rk) > 0 &&
               rd_kafka_flush(ps.rk, 1000) == RD_KAFKA_RESP_ERR__TIMED_OUT)
                mg_log_info("produce", "waiting for %d deliveries",
                            rd_kafka_outq_len(ps.rk));
        if (!opts->quiet) {
                fprintf(stderr,
                        "mintgate produce: %" PRIu64 " sent, %" PRIu64
                        " rejected, %" PRIu64 " failed delivery",
                        ps.delivered, ps.rejected, ps.failed);
                if (ps.corrupt_rate > 0)
                        fprintf(stderr, " (%zu damaged on purpose)",
                                ps.corrupt_cnt);
                fprintf(stderr, "\n");
        }
        if (opts->corrupt_log && corrupt_log_write(&ps, opts->corrupt_log))
                rc = MG_EXIT_FAILURE;
        if (ps.rejected || ps.failed)
                rc = MG_EXIT_FAILURE;
        res->sent = ps.delivered;
        res->rejected = ps.rejected;
        res->failed = ps.failed;
        res->damaged = ps.corrupt_cnt;
out:
        if (kconf)
                rd_kafka_conf_destroy(kconf);
        if (ps.rk)
                rd_kafka_destroy(ps.rk);
        mg_avro_encoder_destroy(ps.enc);
        mg_avro_registry_destroy(reg);
        free(ps.corrupt);
        return rc;
}

int cmd_produce_main(int argc, char **argv) {
        static const struct option longopts[] = {
                CLI_COMMON_LONGOPTS,
                {"confluent", no_argument, NULL, 'C'},
                {"schema", required_argument, NULL, 's'},
                {"corrupt-rate", required_argument, NULL, 'r'},
                {"corrupt-seed", required_argument, NULL, 'e'},
                {"corrupt-log", required_argument, NULL, 'l'},
                {NULL, 0, NULL, 0}};
        struct cli_produce_opts popts;
        struct cli_produce_result res;
        struct cli_common common;
        struct cli_conf cc;
        FILE *in = stdin;
        char *end;
        int c, r, rc;

        memset(&popts, 0, sizeof(popts));
        memset(&common, 0, sizeof(common));
        popts.framing = MG_AVRO_SINGLE_OBJECT;
        popts.corrupt_seed = 1;
        while ((c = getopt_long(argc, argv, "c:b:h", longopts, NULL)) != -1) {
                if ((r = cli_common_opt(&common, c, optarg)) < 0)
                        return MG_EXIT_USAGE;
                if (r)
                        continue;
                switch (c) {
                case 'h':
                        produce_usage(stdout);
                        return MG_EXIT_OK;
                case 'C':
                        popts.framing = MG_AVRO_CONFLUENT;
                        break;
                case 's':
                        popts.auth_label = optarg;
                        break;
                case 'r':
                        popts.corrupt_rate = strtod(optarg, &end);
                        if (*end || !(popts.corrupt_rate >= 0 &&
                                      popts.corrupt_rate <= 1)) {
                                fprintf(stderr,
                                        "mintgate produce: --corrupt-rate "
                                        "%s: expected 0..1\n",
                                        optarg);
                                return MG_EXIT_USAGE;
                        }
                        break;
                case 'e':
                        popts.corrupt_seed = strtoull(optarg, &end, 10);
                        if (*end || !popts.corrupt_seed) {
                                fprintf(stderr,
                                        "mintgate produce: --corrupt-seed "
                                        "%s: expected a positive integer\n",
                                        optarg);
                                return MG_EXIT_USAGE;
                        }
                        break;
                case 'l':
                        popts.corrupt_log = optarg;
                        break;
                default:
                        produce_usage(stderr);
                        return MG_EXIT_USAGE;
                }
        }
        if (argc - optind > 1) {
                fprintf(stderr, "mintgate produce: more than one input file\n");
                return MG_EXIT_USAGE;
        }
        if ((rc = cli_conf_load(&cc, &common, "produce")))
                return rc;
        if (optind < argc && strcmp(argv[optind], "-") &&
            !(in = fopen(argv[optind], "r"))) {
                fprintf(stderr, "mintgate produce: %s: %s\n", argv[optind],
                        strerror(errno));
                cli_conf_free(&cc);
                return MG_EXIT_FAILURE;
        }
        rc = cli_produce(&cc, in, &popts, &res);
        if (in != stdin)
                fclose(in);
        cli_conf_free(&cc);
        return rc;
}
