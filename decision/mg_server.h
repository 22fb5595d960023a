/*
 * mg_server.h — the decision service's transport: newline-delimited JSON
 * over TCP (pipelined: responses in request order on the connection) and
 * the same handler over HTTP (POST /v1/decide), plus GET /healthz and
 * GET /metrics. What a request means is the handler's business
 * (struct mg_server_handler); this module moves bytes, enforces the caps
 * and timeouts, and measures.
 *
 * Threads: serve.threads workers, each with its own libevent loop and its
 * own SO_REUSEPORT listeners for both ports, so the kernel spreads
 * connections over workers and a connection lives on one thread: no locks
 * on the request path. The handler gets a per-thread context.
 *
 * Robustness: a line longer than serve.max_line gets a too_big error and
 * the connection is closed (its framing is lost); any other bad request
 * gets its error line and the connection stays usable. Connections beyond
 * serve.max_connections are refused; a connection idle for
 * serve.idle_timeout, or whose peer does not read its responses within
 * serve.write_timeout, is closed; a peer that stops reading stops being
 * read (its output is capped), so it cannot make the server buffer
 * without bound.
 *
 * TLS (serve.tls.cert set): both ports speak TLS 1.2+ only; a plaintext
 * client fails the handshake and is closed (there is no mixed mode: a
 * port that also took plaintext would make "TLS on" a client's choice).
 * With serve.tls.client_auth=require, a client must present a certificate
 * that chains to serve.tls.ca, and, when serve.tls.allow is set, whose
 * identity is on the list: an entry with "://" is matched against the
 * certificate's URI subjectAltNames (a SPIFFE ID), any other entry
 * against its subject CN. The check runs inside the handshake (the
 * verify callback), so a refused client never reaches the handler on
 * either port, /healthz and /metrics included. Refusals and failed
 * handshakes are counted in /metrics.
 */
#ifndef MG_SERVER_H
#define MG_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>

#include "mg_config.h"
#include "mg_err.h"

struct mg_server_conf {
        char *listen;              /* host:port of the line protocol */
        char *http_listen;         /* host:port of HTTP, or "" for none */
        int64_t threads;           /* workers; 0: one per core */
        int64_t max_line;          /* longest request line, bytes */
        int64_t max_conns;         /* open connections, all threads */
        int64_t idle_timeout_ms;   /* close connections idle this long */
        int64_t write_timeout_ms;  /* close peers not reading this long */
        char *tls_cert;            /* PEM server chain; "" for plaintext */
        char *tls_key;             /* PEM private key of tls_cert */
        char *tls_ca;              /* PEM CA bundle for client certs */
        char *tls_client_auth;     /* "none" or "require" */
        char *tls_allow;           /* comma-separated allowed client
                                    * identities; "" for any verified */
};

extern const struct mg_conf_prop mg_server_conf_props[];
extern const size_t mg_server_conf_prop_cnt;

struct mg_server_handler {
        /* One request (a line without its newline, or an HTTP body):
         * append exactly one response line, with its newline, to out. */
        void (*request_cb)(void *opaque, void *thread_ctx, const char *req,
                           size_t len, struct evbuffer *out);
        /* Append an error line (code, message) to out; used for requests
         * the transport itself refuses (too_big). */
        void (*error_cb)(void *opaque, const char *code, const char *message,
                         struct evbuffer *out);
        /* Optional per-thread context. */
        void *(*thread_init_cb)(void *opaque);
        void (*thread_fini_cb)(void *opaque, void *thread_ctx);
        /* Optional: append Prometheus metrics of the service. */
        void (*metrics_cb)(void *opaque, struct evbuffer *out);
        /* Optional: append a health report; return 1 if healthy. */
        int (*health_cb)(void *opaque, struct evbuffer *out);
        void *opaque;
};

struct mg_server;

/* Bind every listener (errors name the address) and, with TLS, load the
 * certificate, key and CA (errors name the serve.tls.* key); does not
 * serve yet. conf must outlive the server. */
mg_err_t mg_server_new(const struct mg_server_conf *conf,
                       const struct mg_server_handler *handler,
                       struct mg_server **srvp, char *errstr,
                       size_t errstr_size);
/* Serve on the worker threads until mg_server_stop(); returns then. */
mg_err_t mg_server_run(struct mg_server *srv, char *errstr,
                       size_t errstr_size);
/* Make mg_server_run() return. Any thread; not from a signal handler. */
void mg_server_stop(struct mg_server *srv);
void mg_server_destroy(struct mg_server *srv);

/* Bound addresses, "host:port" (port 0 in the configuration resolved). */
const char *mg_server_addr(const struct mg_server *srv);
const char *mg_server_http_addr(const struct mg_server *srv);

#endif /* MG_SERVER_H */
