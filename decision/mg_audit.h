/*
 * mg_audit.h — audit and evidence of the decision service: decision ids,
 * signatures over decisions, the hash-chained local audit log (with its
 * writer thread and optional Kafka sink), and verification of logs and of
 * single decision responses.
 *
 * Every decision the server answers becomes one audit record
 * (schemas/decision.avsc). The record goes to a local append-only file of
 * JSON lines, which is the evidence of record, and — when brokers are
 * configured — to the Kafka topic audit.topic (default mg.decisions) as
 * Avro, keyed by identity, for the SOC.
 *
 * ---- The audit log line -------------------------------------------------
 *
 * One record per line, '\n'-terminated, the members in exactly this order,
 * no whitespace, field names identical to the Avro record (DESIGN.md's rule
 * for JSON forms) plus "hash":
 *
 *   {"decision_id":"…","ts":1763632800000,"request_id":"r-17"|null,
 *    "identity":"…","client_id":"…","resource":"…","grant_type":"…",
 *    "requested_scopes":["…"],"requested_ttl":3600,"decision":"narrow",
 *    "scopes":["…"],"ttl":300,"risk":47.5,"level":"medium",
 *    "reasons":[{"signal":"…","points":30,"detail":"…"}],"policy":"…",
 *    "degraded":false,"signature":"ed25519:…","prev_hash":"<64 hex>",
 *    "hash":"<64 hex>"}
 *
 * (shown wrapped; a real line has no line breaks). Numbers: ts and TTLs are
 * integers; risk and points are the shortest "%.{15,16,17}g" text that reads
 * back as the same double. Strings: '"' and '\' are escaped as \" and \\,
 * bytes below 0x20 and 0x7f as \u00xx (lowercase hex), everything else is
 * verbatim UTF-8 (invalid UTF-8 in a record is replaced by U+FFFD when the
 * record is appended, so Avro and JSON carry the same text).
 *
 * The chain. Hex is lowercase SHA-256.
 *   - hash: SHA-256 of the line's bytes up to, not including, the final
 *     `,"hash":"` — with a closing '}' appended. That is the JSON object
 *     without its hash member, itself valid JSON. A line therefore always
 *     ends with `,"hash":"` + 64 hex digits + `"}` (75 bytes) and "\n".
 *   - prev_hash: SHA-256 of the whole previous line (its bytes without the
 *     '\n', hash member included). The first line of a log carries the
 *     genesis value, 64 '0' characters.
 * Editing a line breaks its hash; editing it and recomputing its hash
 * breaks the next line's prev_hash; deleting, inserting or reordering lines
 * breaks a prev_hash; cutting lines off the front breaks the genesis rule;
 * a torn last line has no '\n'. Cutting whole lines off the *end* and
 * rewriting the whole chain from some point can only be detected against a
 * copy held elsewhere: every record also goes to Kafka with its prev_hash,
 * and report.last_hash (the chain head) can be anchored externally.
 * Signatures (below) make records unforgeable without the key.
 *
 * ---- Signatures and the canonical form --------------------------------
 *
 * Signature text: "ed25519:" + base64url (RFC 4648 §5, no padding) of the
 * 64-byte Ed25519 signature (86 characters), or "hmac-sha256:" + base64url
 * of the 32-byte HMAC-SHA256 (43 characters). An unsigned record carries "".
 *
 * What is signed is the canonical form of the decision *response*
 * (DESIGN.md "Decision protocol"), built by mg_audit_canonical_response():
 * a JSON object with these members in this order and no whitespace,
 *
 *   {"decision_id":"…","id":"r-17"|null,["identity":"…",]"decision":"…",
 *    "scopes":["…"],"ttl":300,"risk":47.50,"level":"…","policy":"…",
 *    "degraded":false}
 *
 * decision_id, decision, scopes, ttl (integer), risk (number, written
 * "%.2f"; -0 as 0), level, policy and degraded (boolean) are required;
 * policy may be null (no path matched: mg_proto writes null), signed as ""
 * as the record stores it. id is the response's id, null when absent or
 * null; a numeric id (mg_decide_req.id_numeric) is signed as a *string* of
 * its text (an integer in decimal, any other number in the shortest
 * "%.{15,16,17}g" that reads back), because the record's request_id is a
 * string and the log line must rebuild the same bytes. identity is present
 * only when the response carries it as a string (DESIGN.md's response does
 * not). Strings are escaped as in the log line. reasons, error and
 * signature are not signed. The server must sign exactly this: it builds its response
 * body, calls mg_audit_canonical_response() (or mg_audit_sign_response())
 * on it, and adds "signature" as the last member. The record it appends
 * must carry the same values (in particular the same risk double: write the
 * response's risk so it reads back as that double, as jansson does, or
 * round it to 0.01 first). A log line is verified against the same form,
 * rebuilt from its fields with request_id as id, first without identity,
 * then with it.
 *
 * Keys: an Ed25519 private key in PEM (signing), its public key in PEM
 * (verifying; the private key file works too), or an HMAC key file whose
 * raw bytes, all of them, at least 32, are the key (both sides). A file
 * that starts with "-----BEGIN " is PEM.
 *
 * Threads: signers, verifiers and the functions that take bytes are
 * thread-safe. An audit log's append/wait/flush/stats may be called from
 * any thread; its writer thread is its own.
 */
#ifndef MG_AUDIT_H
#define MG_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "mg_config.h"
#include "mg_err.h"

struct mg_avro_registry;

/*
 * Configuration: section "audit" (mg_audit_conf_props).
 */

struct mg_audit_conf {
        char *log;                 /* audit.log: path of the local log */
        char *fsync;               /* audit.fsync: always|interval|never */
        int64_t fsync_interval_ms; /* audit.fsync_interval */
        int64_t queue;             /* audit.queue: records not yet written */
        char *when_full;           /* audit.when_full: block|deny */
        char *topic;               /* audit.topic: Kafka topic */
        char *key_file;            /* audit.key_file: NULL or "": unsigned */
};

extern const struct mg_conf_prop mg_audit_conf_props[];
extern const size_t mg_audit_conf_prop_cnt;

/* Check the values the table cannot (audit.fsync and audit.when_full are
 * one of a few words). MG_ERR_CONFIG naming the key. */
mg_err_t mg_audit_conf_validate(const struct mg_audit_conf *conf,
                                char *errstr, size_t errstr_size);

/*
 * Decision ids.
 */

#define MG_AUDIT_ID_SIZE 40 /* buffer for a decision id: 36 chars + NUL */

/* Write a new decision id into out: a UUIDv7 in its 36-character text form.
 * Ids of one process are strictly increasing (the 48-bit millisecond time,
 * then a 12-bit counter within the millisecond), and 62 random bits
 * (RAND_bytes) keep ids of different processes apart. MG_ERR_FATAL only if
 * the random generator fails (out is then empty). Any thread. */
mg_err_t mg_audit_decision_id(char out[MG_AUDIT_ID_SIZE]);

/*
 * Signatures.
 */

/* Buffer for a signature text ("ed25519:" + 86 characters, + NUL). */
#define MG_AUDIT_SIG_SIZE 128
/* Shortest HMAC key: as long as the SHA-256 output, per RFC 2104. */
#define MG_AUDIT_HMAC_KEY_MIN 32

enum mg_audit_key_kind {
        MG_AUDIT_KEY_ED25519,     /* Ed25519 key pair (PEM) */
        MG_AUDIT_KEY_HMAC_SHA256  /* shared secret (raw bytes) */
};

struct mg_audit_signer;
struct mg_audit_verifier;

/* Load a signing key from path: an Ed25519 private key in PEM
 * (unencrypted) or an HMAC key file (>= MG_AUDIT_HMAC_KEY_MIN raw bytes).
 * A public key, another key type, a short HMAC key are MG_ERR_CONFIG with
 * the reason; an unreadable file is MG_ERR_IO. Warns when the file is
 * readable by group or others. The caller owns *signerp
 * (mg_audit_signer_destroy()). */
mg_err_t mg_audit_signer_new_file(const char *path,
                                  struct mg_audit_signer **signerp,
                                  char *errstr, size_t errstr_size);
/* Frees the signer and wipes its key; NULL is a no-op. */
void mg_audit_signer_destroy(struct mg_audit_signer *signer);
enum mg_audit_key_kind
mg_audit_signer_kind(const struct mg_audit_signer *signer);

/* Sign msg (len bytes) into out (size bytes, MG_AUDIT_SIG_SIZE is enough)
 * as a NUL-terminated signature text. MG_ERR_TOOBIG when out is too small,
 * MG_ERR_FATAL when OpenSSL fails. Any thread, concurrently. */
mg_err_t mg_audit_sign(const struct mg_audit_signer *signer, const void *msg,
                       size_t len, char *out, size_t size);

/* Load a verification key from path: an Ed25519 public (or private) key in
 * PEM, or an HMAC key file. Errors as mg_audit_signer_new_file(). The
 * caller owns *verifierp (mg_audit_verifier_destroy()). */
mg_err_t mg_audit_verifier_new_file(const char *path,
                                    struct mg_audit_verifier **verifierp,
                                    char *errstr, size_t errstr_size);
void mg_audit_verifier_destroy(struct mg_audit_verifier *verifier);
enum mg_audit_key_kind
mg_audit_verifier_kind(const struct mg_audit_verifier *verifier);

/* MG_OK when sig (a signature text) is a valid signature of msg under the
 * verifier's key; MG_ERR_INVALID when it is not, is malformed, or is of the
 * other key kind. HMAC tags are compared in constant time. Any thread. */
mg_err_t mg_audit_verify(const struct mg_audit_verifier *verifier,
                         const void *msg, size_t len, const char *sig);

/* Largest canonical form we build: a response's signed members (scopes
 * and policy are bounded by the request arena, MG_REQ_ARENA_SIZE, but JSON
 * escaping may take 6 bytes per byte). */
#define MG_AUDIT_CANONICAL_MAX (128 * 1024)

/* Build the canonical form (see the top of this file) of the decision
 * response json (len bytes; one JSON object, surrounding whitespace and a
 * trailing "\n" allowed) into buf (size bytes, not NUL-terminated), its
 * length in *lenp. MG_ERR_INVALID when json is not an object, has duplicate
 * keys, or a signed member is missing or of the wrong type (an error
 * response is not signed); MG_ERR_TOOBIG when buf is too small. Any
 * thread. */
mg_err_t mg_audit_canonical_response(const char *json, size_t len, char *buf,
                                     size_t size, size_t *lenp);

/* Server side in one call: the canonical form of the response json, signed
 * into out (see mg_audit_sign()). Errors of both. */
mg_err_t mg_audit_sign_response(const struct mg_audit_signer *signer,
                                const char *json, size_t len, char *out,
                                size_t size);

/* Verify one decision response line as the server sent it (its members
 * plus "signature"): MG_OK when the signature verifies over the canonical
 * form of the line; otherwise MG_ERR_INVALID with the reason in errstr
 * (no signature, malformed, does not verify). Any thread. */
mg_err_t mg_audit_verify_decision(const struct mg_audit_verifier *verifier,
                                  const char *response_json_line,
                                  char *errstr, size_t errstr_size);

/*
 * Audit records and the audit log.
 */

/* Longest audit log line, '\n' included. Bounds the writer's buffers and
 * what the verifier reads as one line; a record that would be longer is
 * refused by mg_audit_log_append() (MG_ERR_TOOBIG). A request's strings fit
 * in MG_REQ_ARENA_SIZE (16 KiB); even escaped 6 bytes per byte, with 16
 * reasons, a record stays well below this. */
#define MG_AUDIT_LINE_MAX (256 * 1024)

/* One reason of a record. */
struct mg_audit_reason {
        const char *signal;  /* signal or rule name */
        double points;       /* risk points it contributed, finite */
        const char *detail;  /* human-readable */
};

/* One decision, as appended (schemas/decision.avsc minus prev_hash, which
 * the log fills in). Nothing is retained: append copies it. */
struct mg_audit_record {
        const char *decision_id;    /* required, e.g. mg_audit_decision_id() */
        int64_t ts_ms;              /* decision time, epoch ms UTC, >= 0 */
        const char *request_id;     /* the issuer's id, or NULL */
        const char *identity;       /* required; the Kafka message key */
        const char *client_id;      /* required */
        const char *resource;       /* required */
        const char *grant_type;     /* required */
        const char *const *requested_scopes; /* scopes asked for */
        int requested_scope_cnt;    /* entries in requested_scopes */
        int64_t requested_ttl;      /* seconds, 0..INT32_MAX */
        const char *decision;       /* allow, narrow, step_up or deny */
        const char *const *scopes;  /* scopes granted */
        int scope_cnt;              /* entries in scopes */
        int64_t ttl;                /* seconds granted, 0..INT32_MAX */
        double risk;                /* risk used, finite; as in the response */
        const char *level;          /* required: low, medium, high, critical */
        const struct mg_audit_reason *reasons; /* why */
        int reason_cnt;             /* entries in reasons */
        const char *policy;         /* matching policy path; NULL: "" */
        int degraded;               /* decided without fresh risk */
        const char *signature;      /* signature text; NULL or "": unsigned */
};

/* Called on the writer thread whenever more records became durable (see
 * mg_audit_log_wait()): seq is the highest durable sequence number. Keep it
 * short (e.g. wake an event loop). */
typedef void mg_audit_durable_cb(void *opaque, uint64_t seq);

/* What an audit log needs beyond its configuration section. */
struct mg_audit_log_opts {
        const char *brokers;    /* Kafka bootstrap servers; NULL: no Kafka */
        const struct mg_conf_map *kafka; /* kafka.* properties, or NULL */
        const struct mg_avro_registry *reg; /* schemas (label "decision");
                                             * NULL: the built-ins */
        mg_audit_durable_cb *durable_cb; /* or NULL */
        void *opaque;           /* passed to durable_cb */
};

/* Counters, for metrics; a consistent snapshot. */
struct mg_audit_stats {
        uint64_t queued;          /* records accepted by append */
        uint64_t written;         /* records written to the file */
        uint64_t fsyncs;          /* successful fdatasync() calls */
        uint64_t backlog;         /* accepted, not yet written (<= queue) */
        uint64_t blocked;         /* appends that waited for room (block) */
        uint64_t refused;         /* appends refused for room (deny) */
        uint64_t write_errors;    /* failed write()s (each is retried) */
        uint64_t lost;            /* accepted records never written: the log
                                   * failed or was closed while failing */
        uint64_t written_seq;     /* highest seq written to the file */
        uint64_t synced_seq;      /* highest seq covered by an fdatasync */
        uint64_t kafka_produced;  /* records handed to librdkafka */
        uint64_t kafka_delivered; /* records Kafka acknowledged */
        uint64_t kafka_failed;    /* records Kafka did not take: delivery
                                   * failed after librdkafka's retries, or
                                   * its queue was full; each is logged */
        uint64_t kafka_in_flight; /* produced, no delivery report yet */
        int failed;               /* the log stopped: appends are refused */
};

struct mg_audit_log;

/* Open (create, mode 0640) the log at conf->log and start its writer
 * thread; with opts->brokers, also a Kafka producer to conf->topic
 * (idempotent, acks=all; opts->kafka applied first, as for every mintgate
 * client). conf is copied; opts may be NULL (file only).
 *
 * An existing log is continued: its last line is read and its hash checked,
 * and the next record's prev_hash is the SHA-256 of that line. A last line
 * whose hash fails is MG_ERR_INVALID (the log was modified: verify it with
 * mg_audit_verify_file() and move it aside). A torn last line (no '\n', left
 * by a crash in mid-write) is completed with '\n' when it is a whole record
 * whose hash checks; otherwise its bytes are appended to "<log>.torn" and
 * the log is truncated to its last complete line, with a warning. Another
 * process holding the log (flock) is MG_ERR_IO. The caller owns *logp
 * (mg_audit_log_destroy()). */
mg_err_t mg_audit_log_new(const struct mg_audit_conf *conf,
                          const struct mg_audit_log_opts *opts,
                          struct mg_audit_log **logp, char *errstr,
                          size_t errstr_size);

/* Append rec: validate it, copy it into the writer's queue, and return;
 * its sequence number (1, 2, ... for this log object) goes to *seqp when
 * seqp is not NULL. When audit.queue records are already waiting to be
 * written, audit.when_full applies: "block" waits for room (counted in
 * blocked), "deny" returns MG_ERR_RETRY at once (counted in refused) so the
 * server can answer deny / overloaded. A record is never dropped silently.
 * Other errors: MG_ERR_INVALID (a required field missing, a TTL out of
 * range, a number not finite, an unknown decision), MG_ERR_TOOBIG (over
 * MG_AUDIT_LINE_MAX), MG_ERR_IO (the log failed: see stats.failed),
 * MG_ERR_FATAL (the log is being destroyed). Any thread.
 *
 * With audit.fsync=always the record is not durable yet when this returns:
 * answer the decision after mg_audit_log_wait(seq) or the durable_cb. */
mg_err_t mg_audit_log_append(struct mg_audit_log *log,
                             const struct mg_audit_record *rec,
                             uint64_t *seqp, char *errstr,
                             size_t errstr_size);

/* Wait until record seq is durable under the fsync policy: covered by an
 * fdatasync for "always", written to the file (the OS) for "interval" and
 * "never". The writer syncs a whole batch at once, so concurrent waiters
 * share fsyncs (group commit). timeout_ms < 0 waits for ever. MG_OK,
 * MG_ERR_TIMEOUT, MG_ERR_IO (the log failed), MG_ERR_INVALID (seq was
 * never given out). Any thread. */
mg_err_t mg_audit_log_wait(struct mg_audit_log *log, uint64_t seq,
                           int timeout_ms, char *errstr, size_t errstr_size);

/* Make every record appended so far written and fdatasync'ed (whatever the
 * policy), then wait for Kafka's delivery reports of all produced records,
 * all within timeout_ms (< 0: for ever). MG_ERR_TIMEOUT when time ran out
 * (Kafka down: the records stay queued in librdkafka), MG_ERR_IO when the
 * log failed. Any thread. */
mg_err_t mg_audit_log_flush(struct mg_audit_log *log, int timeout_ms,
                            char *errstr, size_t errstr_size);

void mg_audit_log_stats(struct mg_audit_log *log, struct mg_audit_stats *st);

/* Test hook: while paused the writer takes no records from the queue (a
 * batch it already took is finished), so tests can fill the queue
 * deterministically. Not for production use. */
void mg_audit_log_pause(struct mg_audit_log *log, int paused);

/* Write and sync everything queued, wait up to 10 s for Kafka's delivery
 * reports (what remains is counted in kafka_failed and logged), stop the
 * writer and close the file. Appends must have returned. NULL: no-op. */
void mg_audit_log_destroy(struct mg_audit_log *log);

/*
 * Verification.
 */

/* What mg_audit_verify_file() found. */
struct mg_audit_verify_report {
        uint64_t lines;          /* lines read, the bad one included */
        uint64_t records_ok;     /* lines that passed every check */
        uint64_t signed_ok;      /* ... whose signature verified */
        uint64_t bad_line;       /* first bad line (1-based), 0: none */
        char problem[256];       /* what is wrong with it, a sentence */
        char last_hash[65];      /* SHA-256 of the last good line (the chain
                                  * head; 64 '0' for an empty log) */
};

/* Walk the audit log at path and check, line by line: the line ends in
 * '\n' and is at most MG_AUDIT_LINE_MAX bytes, its hash, its prev_hash
 * against the previous line (the genesis value on line 1), that it is a
 * JSON object with every record field of the right type, and, when
 * verifier is not NULL, its signature (an unsigned record is then an
 * error). Stops at the first problem: MG_ERR_INVALID with report->bad_line
 * and report->problem set and errstr "line N: what is wrong", e.g.
 * "line 17: hash mismatch: record edited". MG_OK when every line passed;
 * MG_ERR_IO when the file cannot be read. Any thread. */
mg_err_t mg_audit_verify_file(const char *path,
                              const struct mg_audit_verifier *verifier,
                              struct mg_audit_verify_report *report,
                              char *errstr, size_t errstr_size);

#endif /* MG_AUDIT_H */
