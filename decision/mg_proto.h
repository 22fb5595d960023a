/*
 * mg_proto.h — the decision protocol's wire codec (DESIGN.md "Decision
 * protocol"): one JSON request object per line in, one JSON response or
 * error object per line out. (What a signature covers is the canonical
 * form of the response, built by mg_audit_canonical_response().)
 *
 * Requests are parsed (by hand; jansson is the reference the fuzzer
 * compares against) into a struct mg_decide_req, whose
 * arena owns every string (no allocation survives the call). Responses
 * are written by a small JSON writer straight into the caller's buffer:
 * keys in the documented order, strings escaped (", \, control characters
 * as \n \r \t or \u00XX; bytes that are not UTF-8 as U+FFFD, since JSON
 * cannot carry them), no whitespace, no trailing newline.
 *
 * Thread-safety: every function touches only its arguments.
 */
#ifndef MG_PROTO_H
#define MG_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "mg_decision.h"
#include "mg_err.h"

/* Longest request line parsed. The arena holds 16 KiB of strings; written
 * with \u escapes they take up to six times as much, and issuers may add
 * fields we ignore. 128 KiB covers that and bounds what one line can make
 * jansson allocate. (The server's line limit should not exceed it.) */
#define MG_PROTO_LINE_MAX (128 * 1024)
/* Longest request id, in bytes. Ids are UUIDs or counters; a longer one
 * is refused (too_big) and echoed as null. */
#define MG_PROTO_ID_MAX 256
/* Deepest context.exchange_depth accepted. */
#define MG_PROTO_EXCHANGE_DEPTH_MAX 64
/* Longest TTL a request may ask for, seconds (what an int32 holds). */
#define MG_PROTO_TTL_MAX INT32_MAX
/* A buffer of this size always holds a response or an error object (for a
 * message under 4 KiB) for a request parsed by
 * mg_proto_parse_request() and a decision over it, plus six bytes per
 * byte of signature: every string escaped at the worst case (six bytes
 * per byte), the request's and the decision's. Typical responses are
 * under 1 KiB. */
#define MG_PROTO_OUT_MAX (256 * 1024)

/* Parse one request line (len bytes, no newline needed) into req.
 *
 * On success: MG_OK, every required field set (identity, client_id,
 * resource, at least one scope, grant_type, ttl in 1..MG_PROTO_TTL_MAX),
 * optional context fields set or NULL/0. Unknown fields are ignored.
 *
 * On failure: MG_ERR_INVALID or MG_ERR_TOOBIG; code gets the protocol
 * error code (MG_PROTO_ERR_BAD_JSON: not JSON, or not an object;
 * MG_PROTO_ERR_BAD_FIELD: a field missing, of the wrong type, empty or out
 * of range; MG_PROTO_ERR_TOO_BIG: a cap exceeded) and errstr a message
 * naming the field. req->id (and id_numeric) is still set when the line
 * had a usable id, so the error object can echo it; other fields are
 * unspecified. code or errstr may be NULL.
 *
 * "id" may be a string or a number; a number is kept as its text (an
 * integer digit for digit; a fraction in the shortest form that reads back
 * to the same double) with id_numeric set, and echoed unquoted. */
mg_err_t mg_proto_parse_request(struct mg_decide_req *req, const char *line,
                                size_t len, char *code, size_t code_size,
                                char *errstr, size_t errstr_size);

/* Write the response to req (for its id) with decision d as one line:
 *
 *   {"id":…,"decision":…,"scopes":[…],"ttl":…,"risk":…,"level":…,
 *    "reasons":[{"signal":…,"points":…,"detail":…},…],"policy":…,
 *    "decision_id":…,"degraded":…[,"signature":…]}
 *
 * in exactly that key order, without whitespace or newline. id is null
 * when req has none; policy is null when no path matched (d->policy "");
 * risk and points are numbers with at most two decimals ("47.5", "30");
 * "signature" is present only when signature is not NULL.
 *
 * buf gets the line and a NUL; *lenp its length. MG_ERR_TOOBIG when
 * size is too small (then *lenp is the size needed, less the NUL);
 * MG_ERR_INVALID when d is inconsistent (an outcome, level or count out of
 * range). */
mg_err_t mg_proto_format_response(const struct mg_decide_req *req,
                                  const struct mg_decision *d,
                                  const char *signature, char *buf,
                                  size_t size, size_t *lenp);

/* Write an error object {"id":…,"error":{"code":…,"message":…}} as one
 * line. req may be NULL (id null), e.g. for a line over the size limit;
 * otherwise its id is echoed as the response would echo it. Buffer rules
 * as for mg_proto_format_response(). */
mg_err_t mg_proto_format_error(const struct mg_decide_req *req,
                               const char *code, const char *message,
                               char *buf, size_t size, size_t *lenp);

#endif /* MG_PROTO_H */
