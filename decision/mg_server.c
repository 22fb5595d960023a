/*
 * mg_server.c — the decision service's transport (see mg_server.h).
 *
 * Each worker thread owns an event base, a listener for the line protocol
 * and an evhttp for HTTP, both on SO_REUSEPORT sockets of its own (the
 * first worker resolves port 0; the others bind the port it got). A line
 * request is handled straight from the input buffer: find the newline,
 * pull the line up contiguous, call the handler, drain. No allocation per
 * request on this side.
 *
 * Latency is measured around the handler call into a per-worker histogram
 * of relaxed atomics, read for /metrics without stopping anyone.
 *
 * TLS: one SSL_CTX, built in mg_server_new() and shared read-only by the
 * workers; each connection gets its own SSL in an OpenSSL bufferevent (the
 * line protocol's in accept_cb, HTTP's through evhttp_set_bevcb). The
 * client allow-list is checked in the verify callback at depth 0, so a
 * refused identity fails the handshake on both ports alike. Each SSL
 * carries the server in its ex_data until its handshake is done; the
 * ex_data free callback counts a connection whose handshake never
 * finished (plaintext, no certificate, bad chain, peer gone) once,
 * whichever transport frees it.
 */
#include "mg_server.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/thread.h>

#include "mg_log.h"

/* A connection's unsent responses beyond this stop its reading until the
 * peer catches up: pipelining clients cannot make us buffer without
 * bound. */
#define SRV_OUT_CAP (1024 * 1024)
#define SRV_WORKERS_MAX 64

#define SRV_OFF(field) offsetof(struct mg_server_conf, field)

const struct mg_conf_prop mg_server_conf_props[] = {
        {"serve.listen", MG_CONF_STR, SRV_OFF(listen), "127.0.0.1:7070", 3,
         255, 0,
         "host:port of the line protocol (one JSON request per line, "
         "responses in order; port 0 picks a free one)."},
        {"serve.http_listen", MG_CONF_STR, SRV_OFF(http_listen),
         "127.0.0.1:7071", 0, 255, 0,
         "host:port of HTTP: POST /v1/decide, GET /healthz, GET /metrics; "
         "empty for none."},
        {"serve.threads", MG_CONF_INT, SRV_OFF(threads), "0", 0,
         SRV_WORKERS_MAX, 0, "Worker threads; 0: one per core."},
        {"serve.max_line", MG_CONF_INT, SRV_OFF(max_line), "16384", 256,
         1048576, 0,
         "Longest request line, in bytes. A longer one is refused with "
         "too_big and its connection closed (its framing is lost)."},
        {"serve.max_connections", MG_CONF_INT, SRV_OFF(max_conns), "10000",
         1, 1000000, 0, "Open connections, all workers together."},
        {"serve.idle_timeout", MG_CONF_MS, SRV_OFF(idle_timeout_ms), "60s",
         100, 86400000, 0, "A connection idle this long is closed."},
        {"serve.write_timeout", MG_CONF_MS, SRV_OFF(write_timeout_ms), "10s",
         100, 3600000, 0,
         "A peer that does not take its responses for this long is "
         "closed."},
        {"serve.tls.cert", MG_CONF_STR, SRV_OFF(tls_cert), "", 0, 4096, 0,
         "PEM file of the server certificate chain. Set, both ports speak "
         "TLS 1.2+ only and plaintext clients are refused; empty: no TLS."},
        {"serve.tls.key", MG_CONF_STR, SRV_OFF(tls_key), "", 0, 4096, 0,
         "PEM file of serve.tls.cert's private key (unencrypted)."},
        {"serve.tls.ca", MG_CONF_STR, SRV_OFF(tls_ca), "", 0, 4096, 0,
         "PEM CA bundle that client certificates must chain to; needed "
         "by serve.tls.client_auth=require."},
        {"serve.tls.client_auth", MG_CONF_STR, SRV_OFF(tls_client_auth),
         "none", 4, 7, 0,
         "none, or require: clients must present a certificate verified "
         "against serve.tls.ca (mutual TLS), on both ports."},
        {"serve.tls.allow", MG_CONF_STR, SRV_OFF(tls_allow), "", 0, 65536, 0,
         "Comma-separated client identities allowed to connect: an entry "
         "with \"://\" (a SPIFFE ID such as spiffe://corp/ci/deployer) "
         "matches a URI subjectAltName, any other the subject CN. Empty: "
         "any verified client."},
};
const size_t mg_server_conf_prop_cnt =
        sizeof(mg_server_conf_props) / sizeof(*mg_server_conf_props);

/* Histogram bucket bounds, microseconds (Prometheus "le"). */
static const double srv_buckets_us[] = {10,   25,   50,   100,  250,
                                        500,  1000, 2500, 5000, 10000};
#define SRV_NBUCKETS (sizeof(srv_buckets_us) / sizeof(*srv_buckets_us))

struct srv_worker {
        struct mg_server *srv;           /* owner */
        int idx;                         /* worker number */
        struct event_base *base;         /* its loop */
        struct evconnlistener *listener; /* line protocol */
        struct evhttp *http;             /* HTTP, or NULL */
        void *ctx;                       /* handler's thread context */
        struct srv_conn *conns;          /* open connections */
        pthread_t thread;
        int started;
        /* Latency of handled requests. */
        atomic_uint_fast64_t hist[SRV_NBUCKETS + 1];
        atomic_uint_fast64_t hist_sum_us;
        atomic_uint_fast64_t requests;
};

struct mg_server {
        const struct mg_server_conf *conf;   /* not owned */
        struct mg_server_handler handler;
        struct srv_worker workers[SRV_WORKERS_MAX];
        int nworkers;
        char addr[300], http_addr[300];      /* bound addresses */
        atomic_int conns;                    /* open connections */
        atomic_uint_fast64_t conns_total, refused, too_big, timeouts;
        SSL_CTX *ssl_ctx;                    /* NULL: plaintext */
        char **allow;                        /* client identities allowed */
        size_t allow_cnt;                    /* 0: any verified client */
        char *allow_buf;                     /* storage of allow[] */
        atomic_uint_fast64_t tls_refused;    /* verified, not allowed */
        atomic_uint_fast64_t tls_handshake_failed; /* never finished */
};

/* ex_data index of an SSL's struct mg_server while its handshake runs
 * (process-wide, made once). */
static int srv_ssl_idx = -1;
static pthread_once_t srv_ssl_once = PTHREAD_ONCE_INIT;

/* One line-protocol connection. */
struct srv_conn {
        struct srv_worker *w;     /* its worker */
        struct bufferevent *bev;  /* the socket */
        int closing;              /* close once the output is flushed */
        struct srv_conn *prev, *next; /* the worker's list */
};

static uint64_t now_us(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void tv_ms(struct timeval *tv, int64_t ms) {
        tv->tv_sec = (time_t)(ms / 1000);
        tv->tv_usec = (suseconds_t)(ms % 1000) * 1000;
}

static void hist_add(struct srv_worker *w, uint64_t us) {
        size_t i;

        for (i = 0; i < SRV_NBUCKETS && (double)us > srv_buckets_us[i]; i++)
                ;
        atomic_fetch_add_explicit(&w->hist[i], 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&w->hist_sum_us, us, memory_order_relaxed);
        atomic_fetch_add_explicit(&w->requests, 1, memory_order_relaxed);
}

/* ---- TLS -------------------------------------------------------------- */

static int str_set(const char *s) {
        return s && *s;
}

/* Count a connection whose handshake never finished (its ex_data still
 * names the server), unless the verify callback counted it as refused.
 * Runs as its SSL is freed. (SSL_is_init_finished() cannot tell: a fatal
 * error after the handshake, such as a peer gone without close_notify,
 * puts the SSL back "in init".) */
static void tls_ssl_free_cb(void *parent, void *ptr, CRYPTO_EX_DATA *ad,
                            int idx, long argl, void *argp) {
        struct mg_server *srv = ptr;
        SSL *ssl = parent;

        if (srv &&
            SSL_get_verify_result(ssl) != X509_V_ERR_APPLICATION_VERIFICATION)
                atomic_fetch_add(&srv->tls_handshake_failed, 1);
}

/* Handshake done: the SSL no longer needs the server (only the verify
 * callback uses it), and clearing it tells tls_ssl_free_cb. */
static void tls_info_cb(const SSL *ssl, int where, int ret) {
        if (where & SSL_CB_HANDSHAKE_DONE)
                SSL_set_ex_data((SSL *)ssl, srv_ssl_idx, NULL);
}

static void tls_once(void) {
        srv_ssl_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL,
                                           tls_ssl_free_cb);
}

/* A new SSL for a connection of srv, or NULL. */
static SSL *tls_ssl_new(struct mg_server *srv) {
        SSL *ssl = SSL_new(srv->ssl_ctx);

        if (ssl && SSL_set_ex_data(ssl, srv_ssl_idx, srv) != 1) {
                SSL_free(ssl);
                ssl = NULL;
        }
        return ssl;
}

/* Free an SSL no bufferevent took, without counting it. */
static void tls_ssl_discard(SSL *ssl) {
        if (!ssl)
                return;
        SSL_set_ex_data(ssl, srv_ssl_idx, NULL);
        SSL_free(ssl);
}

/* Is (d, len) on the allow-list? uri: match the entries with "://",
 * else the others. Length-exact: an embedded NUL matches nothing. */
static int tls_allow_has(const struct mg_server *srv, int uri,
                         const unsigned char *d, size_t len) {
        size_t i;

        for (i = 0; i < srv->allow_cnt; i++)
                if ((strstr(srv->allow[i], "://") != NULL) == uri &&
                    strlen(srv->allow[i]) == len &&
                    memcmp(srv->allow[i], d, len) == 0)
                        return 1;
        return 0;
}

/* Append "label=value" to who for the log, unprintable bytes as '?'. */
static void tls_who_add(char *who, size_t who_size, const char *label,
                        const unsigned char *d, size_t len) {
        size_t off = strlen(who), i;
        char val[160];

        for (i = 0; i < len && i < sizeof(val) - 1; i++)
                val[i] = d[i] >= 0x20 && d[i] < 0x7f ? (char)d[i] : '?';
        val[i] = '\0';
        if (off < who_size)
                snprintf(who + off, who_size - off, "%s%s=%s", off ? " " : "",
                         label, val);
}

/* Does cert carry an allowed identity (a URI SAN, or the subject CN when
 * it has exactly one)? who gets what it presented, for the log. */
static int tls_cert_allowed(const struct mg_server *srv, X509 *cert,
                            char *who, size_t who_size) {
        GENERAL_NAMES *sans =
                X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
        X509_NAME *subj = X509_get_subject_name(cert);
        int i, n = sans ? sk_GENERAL_NAME_num(sans) : 0, allowed = 0, pos;

        who[0] = '\0';
        for (i = 0; i < n; i++) {
                const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
                const unsigned char *d;
                size_t len;

                if (gn->type != GEN_URI)
                        continue;
                d = ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier);
                len = (size_t)ASN1_STRING_length(
                        gn->d.uniformResourceIdentifier);
                tls_who_add(who, who_size, "uri", d, len);
                if (tls_allow_has(srv, 1, d, len))
                        allowed = 1;
        }
        GENERAL_NAMES_free(sans);
        pos = subj ? X509_NAME_get_index_by_NID(subj, NID_commonName, -1)
                   : -1;
        if (pos >= 0) {
                unsigned char *cn = NULL;
                int len = ASN1_STRING_to_UTF8(
                        &cn, X509_NAME_ENTRY_get_data(
                                     X509_NAME_get_entry(subj, pos)));

                if (len >= 0) {
                        tls_who_add(who, who_size, "cn", cn, (size_t)len);
                        /* Several CNs: ambiguous, none counts. */
                        if (X509_NAME_get_index_by_NID(subj, NID_commonName,
                                                       pos) < 0 &&
                            tls_allow_has(srv, 0, cn, (size_t)len))
                                allowed = 1;
                }
                OPENSSL_free(cn);
        }
        if (!who[0])
                snprintf(who, who_size, "(no URI SAN, no CN)");
        return allowed;
}

/* OpenSSL's chain verdict stands; on a verified leaf, the allow-list. */
static int tls_verify_cb(int ok, X509_STORE_CTX *xs) {
        SSL *ssl;
        struct mg_server *srv;
        char who[512];

        if (!ok || X509_STORE_CTX_get_error_depth(xs) != 0)
                return ok;
        ssl = X509_STORE_CTX_get_ex_data(xs,
                                         SSL_get_ex_data_X509_STORE_CTX_idx());
        srv = ssl ? SSL_get_ex_data(ssl, srv_ssl_idx) : NULL;
        if (!srv || srv->allow_cnt == 0)
                return 1;
        if (tls_cert_allowed(srv, X509_STORE_CTX_get_current_cert(xs), who,
                             sizeof(who)))
                return 1;
        atomic_fetch_add(&srv->tls_refused, 1);
        mg_log_info("server", "client refused: %s not in serve.tls.allow",
                    who);
        X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
}

/* Never prompt on the terminal for a key's passphrase: fail instead. */
static int tls_no_passwd_cb(char *buf, int size, int rwflag, void *u) {
        return 0;
}

/* MG_ERR_CONFIG naming key, with the file and OpenSSL's reason. */
static mg_err_t tls_file_err(const char *key, const char *path,
                             char *errstr, size_t errstr_size) {
        unsigned long e = ERR_peek_last_error();
        char reason[256];

        if (e)
                ERR_error_string_n(e, reason, sizeof(reason));
        else
                snprintf(reason, sizeof(reason), "invalid");
        ERR_clear_error();
        return mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                          "%s: cannot load '%s': %s", key, path, reason);
}

/* '%s' readable, or MG_ERR_CONFIG naming key with the system's reason. */
static mg_err_t tls_file_check(const char *key, const char *path,
                               char *errstr, size_t errstr_size) {
        if (access(path, R_OK) != 0)
                return mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                  "%s: '%s': %s", key, path, strerror(errno));
        return MG_OK;
}

/* Split serve.tls.allow into srv->allow (entries trimmed, empty ones
 * skipped). */
static mg_err_t tls_allow_parse(struct mg_server *srv, const char *list,
                                char *errstr, size_t errstr_size) {
        size_t cap = 1;
        const char *p;
        char *tok, *save = NULL;

        for (p = list; *p; p++)
                cap += *p == ',';
        if (!(srv->allow_buf = strdup(list)) ||
            !(srv->allow = calloc(cap, sizeof(*srv->allow))))
                return mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                  "out of memory");
        for (tok = strtok_r(srv->allow_buf, ",", &save); tok;
             tok = strtok_r(NULL, ",", &save)) {
                char *end;

                while (*tok == ' ' || *tok == '\t')
                        tok++;
                end = tok + strlen(tok);
                while (end > tok && (end[-1] == ' ' || end[-1] == '\t'))
                        *--end = '\0';
                if (*tok) {
                        assert(srv->allow_cnt < cap);
                        srv->allow[srv->allow_cnt++] = tok;
                }
        }
        return MG_OK;
}

/* Validate the serve.tls.* keys and build srv->ssl_ctx (NULL: no TLS). */
static mg_err_t tls_setup(struct mg_server *srv,
                          const struct mg_server_conf *conf, char *errstr,
                          size_t errstr_size) {
        const char *auth = str_set(conf->tls_client_auth)
                                   ? conf->tls_client_auth
                                   : "none";
        STACK_OF(X509_NAME) *names;
        SSL_CTX *ctx = NULL;
        mg_err_t err = MG_OK;
        int require = strcmp(auth, "require") == 0;

        if (!require && strcmp(auth, "none") != 0) {
                err = mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                 "serve.tls.client_auth: '%s' is not none "
                                 "or require",
                                 auth);
                goto out;
        }
        if (!str_set(conf->tls_cert)) {
                /* Half a TLS configuration must not serve plaintext. */
                if (str_set(conf->tls_key) || str_set(conf->tls_ca) ||
                    str_set(conf->tls_allow) || require)
                        err = mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                         "serve.tls.cert: required by the "
                                         "other serve.tls.* keys");
                goto out;
        }
        if (!str_set(conf->tls_key)) {
                err = mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                 "serve.tls.key: required with "
                                 "serve.tls.cert");
                goto out;
        }
        if (require && !str_set(conf->tls_ca)) {
                err = mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                 "serve.tls.ca: required with "
                                 "serve.tls.client_auth=require");
                goto out;
        }
        if (!require && str_set(conf->tls_allow)) {
                err = mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                 "serve.tls.allow: needs "
                                 "serve.tls.client_auth=require");
                goto out;
        }
        if ((err = tls_file_check("serve.tls.cert", conf->tls_cert, errstr,
                                  errstr_size)) ||
            (err = tls_file_check("serve.tls.key", conf->tls_key, errstr,
                                  errstr_size)) ||
            (require && (err = tls_file_check("serve.tls.ca", conf->tls_ca,
                                              errstr, errstr_size))))
                goto out;
        pthread_once(&srv_ssl_once, tls_once);
        if (srv_ssl_idx < 0 || !(ctx = SSL_CTX_new(TLS_server_method()))) {
                err = mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                 "cannot create the TLS context");
                goto out;
        }
        SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
        /* Renegotiation: a CPU sink for the peer, and no use here. */
        SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
                                         SSL_OP_CIPHER_SERVER_PREFERENCE);
        /* libevent may hand a retried write from a moved buffer. */
        SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        SSL_CTX_set_default_passwd_cb(ctx, tls_no_passwd_cb);
        SSL_CTX_set_info_callback(ctx, tls_info_cb);
        /* Resumption with client certificates needs a session context. */
        SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"mintgate",
                                       8);
        if (SSL_CTX_use_certificate_chain_file(ctx, conf->tls_cert) != 1) {
                err = tls_file_err("serve.tls.cert", conf->tls_cert, errstr,
                                   errstr_size);
                goto out;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, conf->tls_key,
                                        SSL_FILETYPE_PEM) != 1) {
                err = tls_file_err("serve.tls.key", conf->tls_key, errstr,
                                   errstr_size);
                goto out;
        }
        if (SSL_CTX_check_private_key(ctx) != 1) {
                ERR_clear_error();
                err = mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                 "serve.tls.key: '%s' does not match "
                                 "serve.tls.cert '%s'",
                                 conf->tls_key, conf->tls_cert);
                goto out;
        }
        if (require) {
                if (SSL_CTX_load_verify_locations(ctx, conf->tls_ca, NULL) !=
                            1 ||
                    !(names = SSL_load_client_CA_file(conf->tls_ca))) {
                        err = tls_file_err("serve.tls.ca", conf->tls_ca,
                                           errstr, errstr_size);
                        goto out;
                }
                SSL_CTX_set_client_CA_list(ctx, names);
                SSL_CTX_set_verify(ctx,
                                   SSL_VERIFY_PEER |
                                           SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                                   tls_verify_cb);
                if (str_set(conf->tls_allow) &&
                    (err = tls_allow_parse(srv, conf->tls_allow, errstr,
                                           errstr_size)))
                        goto out;
        }
        srv->ssl_ctx = ctx;
        ctx = NULL;
out:
        SSL_CTX_free(ctx);
        return err;
}

static void conn_free(struct srv_conn *c) {
        struct mg_server *srv = c->w->srv;

        if (c->prev)
                c->prev->next = c->next;
        else
                c->w->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        bufferevent_free(c->bev);
        free(c);
        atomic_fetch_sub(&srv->conns, 1);
}

/* Handle every complete line in the input. */
static void conn_read_cb(struct bufferevent *bev, void *arg) {
        struct srv_conn *c = arg;
        struct srv_worker *w = c->w;
        struct mg_server *srv = w->srv;
        struct evbuffer *in = bufferevent_get_input(bev);
        struct evbuffer *out = bufferevent_get_output(bev);
        size_t max = (size_t)srv->conf->max_line;

        while (!c->closing) {
                size_t eol_len = 0, len;
                struct evbuffer_ptr p =
                        evbuffer_search_eol(in, NULL, &eol_len,
                                            EVBUFFER_EOL_LF);
                char *line;
                uint64_t t0;

                if (p.pos < 0) {
                        if (evbuffer_get_length(in) <= max)
                                break;
                } else if ((size_t)p.pos <= max) {
                        len = (size_t)p.pos;
                        line = (char *)evbuffer_pullup(in, (ssize_t)(len +
                                                                 eol_len));
                        if (len > 0 && line[len - 1] == '\r')
                                len--;
                        if (len > 0) {
                                t0 = now_us();
                                srv->handler.request_cb(srv->handler.opaque,
                                                        w->ctx, line, len,
                                                        out);
                                hist_add(w, now_us() - t0);
                        }
                        evbuffer_drain(in, (size_t)p.pos + eol_len);
                        if (evbuffer_get_length(out) > SRV_OUT_CAP) {
                                /* Resumed by conn_write_cb. */
                                bufferevent_disable(bev, EV_READ);
                                break;
                        }
                        continue;
                }
                /* Over the cap: framing is lost; answer and close. */
                atomic_fetch_add(&srv->too_big, 1);
                srv->handler.error_cb(srv->handler.opaque, "too_big",
                                      "request line exceeds serve.max_line",
                                      out);
                c->closing = 1;
                bufferevent_disable(bev, EV_READ);
        }
}

static void conn_write_cb(struct bufferevent *bev, void *arg) {
        struct srv_conn *c = arg;

        /* Output flushed (the low watermark is 0). */
        if (c->closing) {
                conn_free(c);
                return;
        }
        if (!(bufferevent_get_enabled(bev) & EV_READ)) {
                bufferevent_enable(bev, EV_READ);
                conn_read_cb(bev, c);
        }
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg) {
        struct srv_conn *c = arg;

        if (what & BEV_EVENT_TIMEOUT)
                atomic_fetch_add(&c->w->srv->timeouts, 1);
        if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
                conn_free(c);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd,
                      struct sockaddr *sa, int socklen, void *arg) {
        struct srv_worker *w = arg;
        struct mg_server *srv = w->srv;
        struct timeval rtv, wtv;
        struct srv_conn *c;
        SSL *ssl = NULL;
        int one = 1;

        if (atomic_fetch_add(&srv->conns, 1) >= srv->conf->max_conns) {
                static const char msg[] =
                        "{\"id\":null,\"error\":{\"code\":\"overloaded\","
                        "\"message\":\"too many connections\"}}\n";

                atomic_fetch_sub(&srv->conns, 1);
                atomic_fetch_add(&srv->refused, 1);
                /* Best effort, non-blocking: the peer learns why (not a
                 * TLS peer: it would read a plaintext line as garbage). */
                if (!srv->ssl_ctx &&
                    send(fd, msg, sizeof(msg) - 1,
                         MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
                        mg_log_debug("server", "refusal not sent: %s",
                                     strerror(errno));
                evutil_closesocket(fd);
                return;
        }
        atomic_fetch_add(&srv->conns_total, 1);
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c = calloc(1, sizeof(*c));
        if (c && srv->ssl_ctx) {
                /* The bufferevent owns ssl (and fd) once made. */
                if ((ssl = tls_ssl_new(srv)))
                        c->bev = bufferevent_openssl_socket_new(
                                w->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                BEV_OPT_CLOSE_ON_FREE);
        } else if (c) {
                c->bev = bufferevent_socket_new(w->base, fd,
                                                BEV_OPT_CLOSE_ON_FREE);
        }
        if (!c || !c->bev) {
                free(c);
                tls_ssl_discard(ssl);
                evutil_closesocket(fd);
                atomic_fetch_sub(&srv->conns, 1);
                return;
        }
        c->w = w;
        c->next = w->conns;
        if (w->conns)
                w->conns->prev = c;
        w->conns = c;
        if (ssl)
                /* A peer's missing close_notify is an EOF, not an error. */
                bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
        tv_ms(&rtv, srv->conf->idle_timeout_ms);
        tv_ms(&wtv, srv->conf->write_timeout_ms);
        bufferevent_set_timeouts(c->bev, &rtv, &wtv);
        bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb,
                          c);
        bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* ---- HTTP ------------------------------------------------------------- */

/* evhttp's bufferevent for a new connection: TLS, accepting. */
static struct bufferevent *http_bev_cb(struct event_base *base, void *arg) {
        struct srv_worker *w = arg;
        struct bufferevent *bev = NULL;
        SSL *ssl = tls_ssl_new(w->srv);

        if (ssl && !(bev = bufferevent_openssl_socket_new(
                             base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                             BEV_OPT_CLOSE_ON_FREE)))
                tls_ssl_discard(ssl);
        return bev;
}

/* With TLS on, refuse a request that came over plaintext: evhttp falls
 * back to a plain bufferevent if http_bev_cb could not make one. */
static int http_tls_refused(struct srv_worker *w, struct evhttp_request *req) {
        struct evhttp_connection *evcon;

        if (!w->srv->ssl_ctx)
                return 0;
        evcon = evhttp_request_get_connection(req);
        if (evcon && bufferevent_openssl_get_ssl(
                             evhttp_connection_get_bufferevent(evcon)))
                return 0;
        evhttp_send_error(req, 403, "TLS required");
        return 1;
}

static void http_decide_cb(struct evhttp_request *req, void *arg) {
        struct srv_worker *w = arg;
        struct mg_server *srv = w->srv;
        struct evbuffer *body = evhttp_request_get_input_buffer(req);
        struct evbuffer *out = evbuffer_new();
        size_t len = evbuffer_get_length(body);
        const char *p;
        uint64_t t0;

        if (!out) {
                evhttp_send_error(req, HTTP_INTERNAL, NULL);
                return;
        }
        if (http_tls_refused(w, req)) {
                evbuffer_free(out);
                return;
        }
        if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
                evhttp_add_header(evhttp_request_get_output_headers(req),
                                  "Allow", "POST");
                evhttp_send_error(req, 405, "use POST");
                evbuffer_free(out);
                return;
        }
        p = (const char *)evbuffer_pullup(body, -1);
        while (len > 0 && (p[len - 1] == '\n' || p[len - 1] == '\r'))
                len--;
        t0 = now_us();
        srv->handler.request_cb(srv->handler.opaque, w->ctx, p ? p : "", len,
                                out);
        hist_add(w, now_us() - t0);
        evhttp_add_header(evhttp_request_get_output_headers(req),
                          "Content-Type", "application/json");
        evhttp_send_reply(req, HTTP_OK, "OK", out);
        evbuffer_free(out);
}

static void http_health_cb(struct evhttp_request *req, void *arg) {
        struct srv_worker *w = arg;
        struct mg_server *srv = w->srv;
        struct evbuffer *out = evbuffer_new();
        int ok = 1;

        if (!out) {
                evhttp_send_error(req, HTTP_INTERNAL, NULL);
                return;
        }
        if (http_tls_refused(w, req)) {
                evbuffer_free(out);
                return;
        }
        if (srv->handler.health_cb)
                ok = srv->handler.health_cb(srv->handler.opaque, out);
        else
                evbuffer_add_printf(out, "{\"status\":\"ok\"}\n");
        evhttp_add_header(evhttp_request_get_output_headers(req),
                          "Content-Type", "application/json");
        evhttp_send_reply(req, ok ? HTTP_OK : 503, ok ? "OK" : "Unavailable",
                          out);
        evbuffer_free(out);
}

static void http_metrics_cb(struct evhttp_request *req, void *arg) {
        struct srv_worker *w = arg;
        struct mg_server *srv = w->srv;
        struct evbuffer *out = evbuffer_new();
        uint64_t cum = 0, sum = 0, cnt = 0, b[SRV_NBUCKETS + 1] = {0};
        size_t i;
        int k;

        if (!out) {
                evhttp_send_error(req, HTTP_INTERNAL, NULL);
                return;
        }
        if (http_tls_refused(w, req)) {
                evbuffer_free(out);
                return;
        }
        for (k = 0; k < srv->nworkers; k++) {
                for (i = 0; i <= SRV_NBUCKETS; i++)
                        b[i] += atomic_load(&srv->workers[k].hist[i]);
                sum += atomic_load(&srv->workers[k].hist_sum_us);
                cnt += atomic_load(&srv->workers[k].requests);
        }
        evbuffer_add_printf(out,
                            "# HELP mintgate_request_seconds Time to handle "
                            "a request (decide, sign, audit).\n"
                            "# TYPE mintgate_request_seconds histogram\n");
        for (i = 0; i < SRV_NBUCKETS; i++) {
                cum += b[i];
                evbuffer_add_printf(out,
                                    "mintgate_request_seconds_bucket{le=\"%g"
                                    "\"} %" PRIu64 "\n",
                                    srv_buckets_us[i] / 1e6, cum);
        }
        cum += b[SRV_NBUCKETS];
        evbuffer_add_printf(
                out,
                "mintgate_request_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n"
                "mintgate_request_seconds_sum %.6f\n"
                "mintgate_request_seconds_count %" PRIu64 "\n"
                "# TYPE mintgate_connections gauge\n"
                "mintgate_connections %d\n"
                "# TYPE mintgate_connections_total counter\n"
                "mintgate_connections_total %" PRIu64 "\n"
                "# TYPE mintgate_connections_refused_total counter\n"
                "mintgate_connections_refused_total %" PRIu64 "\n"
                "# TYPE mintgate_requests_too_big_total counter\n"
                "mintgate_requests_too_big_total %" PRIu64 "\n"
                "# TYPE mintgate_connection_timeouts_total counter\n"
                "mintgate_connection_timeouts_total %" PRIu64 "\n"
                "# TYPE mintgate_tls_refused_total counter\n"
                "mintgate_tls_refused_total %" PRIu64 "\n"
                "# TYPE mintgate_tls_handshake_failed_total counter\n"
                "mintgate_tls_handshake_failed_total %" PRIu64 "\n",
                cum, (double)sum / 1e6, cnt, atomic_load(&srv->conns),
                atomic_load(&srv->conns_total), atomic_load(&srv->refused),
                atomic_load(&srv->too_big), atomic_load(&srv->timeouts),
                atomic_load(&srv->tls_refused),
                atomic_load(&srv->tls_handshake_failed));
        if (srv->handler.metrics_cb)
                srv->handler.metrics_cb(srv->handler.opaque, out);
        evhttp_add_header(evhttp_request_get_output_headers(req),
                          "Content-Type", "text/plain; version=0.0.4");
        evhttp_send_reply(req, HTTP_OK, "OK", out);
        evbuffer_free(out);
}

/* ---- sockets and threads ---------------------------------------------- */

static mg_err_t parse_hostport(const char *addr, struct sockaddr_in *sin,
                               char *errstr, size_t errstr_size) {
        const char *colon = strrchr(addr, ':');
        char host[256], *end;
        long port;

        if (!colon || (size_t)(colon - addr) >= sizeof(host))
                return mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                  "'%s' is not host:port", addr);
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = '\0';
        port = strtol(colon + 1, &end, 10);
        memset(sin, 0, sizeof(*sin));
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        if (*end || port < 0 || port > 65535 ||
            inet_pton(AF_INET, host[0] ? host : "0.0.0.0", &sin->sin_addr) !=
                    1)
                return mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                  "'%s': expected IPv4-address:port", addr);
        return MG_OK;
}

/* A listening SO_REUSEPORT socket on sin; sin's port becomes the bound
 * one. */
static int listen_socket(struct sockaddr_in *sin, char *errstr,
                         size_t errstr_size) {
        socklen_t slen = sizeof(*sin);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        0),
            one = 1;

        if (fd < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
            bind(fd, (struct sockaddr *)sin, sizeof(*sin)) ||
            listen(fd, 1024) ||
            getsockname(fd, (struct sockaddr *)sin, &slen)) {
                char host[64];

                inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
                mg_err_set(MG_ERR_IO, errstr, errstr_size,
                           "cannot listen on %s:%d: %s", host,
                           ntohs(sin->sin_port), strerror(errno));
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        return fd;
}

static void *worker_main(void *arg) {
        struct srv_worker *w = arg;
        struct mg_server *srv = w->srv;

        if (srv->handler.thread_init_cb)
                w->ctx = srv->handler.thread_init_cb(srv->handler.opaque);
        event_base_dispatch(w->base);
        if (srv->handler.thread_fini_cb)
                srv->handler.thread_fini_cb(srv->handler.opaque, w->ctx);
        return NULL;
}

mg_err_t mg_server_new(const struct mg_server_conf *conf,
                       const struct mg_server_handler *handler,
                       struct mg_server **srvp, char *errstr,
                       size_t errstr_size) {
        struct sockaddr_in sin, hsin;
        struct mg_server *srv;
        mg_err_t err;
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        int i, use_http = conf->http_listen && *conf->http_listen;
        char host[64];

        *srvp = NULL;
        if ((err = parse_hostport(conf->listen, &sin, errstr, errstr_size)) ||
            (use_http && (err = parse_hostport(conf->http_listen, &hsin,
                                               errstr, errstr_size))))
                return err;
        if (!(srv = calloc(1, sizeof(*srv))))
                return mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                  "out of memory");
        evthread_use_pthreads();
        srv->conf = conf;
        srv->handler = *handler;
        if ((err = tls_setup(srv, conf, errstr, errstr_size)))
                goto fail;
        srv->nworkers = conf->threads > 0 ? (int)conf->threads
                                          : (int)(cores > 0 ? cores : 1);
        if (srv->nworkers > SRV_WORKERS_MAX)
                srv->nworkers = SRV_WORKERS_MAX;
        for (i = 0; i < srv->nworkers; i++) {
                struct srv_worker *w = &srv->workers[i];
                int fd, hfd;

                w->srv = srv;
                w->idx = i;
                if (!(w->base = event_base_new())) {
                        err = mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                         "event_base_new failed");
                        goto fail;
                }
                if ((fd = listen_socket(&sin, errstr, errstr_size)) < 0) {
                        err = MG_ERR_IO;
                        goto fail;
                }
                w->listener = evconnlistener_new(
                        w->base, accept_cb, w,
                        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1,
                        fd);
                if (!w->listener) {
                        close(fd);
                        err = mg_err_set(MG_ERR_IO, errstr, errstr_size,
                                         "evconnlistener_new failed");
                        goto fail;
                }
                if (!use_http)
                        continue;
                if ((hfd = listen_socket(&hsin, errstr, errstr_size)) < 0) {
                        err = MG_ERR_IO;
                        goto fail;
                }
                if (!(w->http = evhttp_new(w->base)) ||
                    evhttp_accept_socket(w->http, hfd) != 0) {
                        close(hfd);
                        err = mg_err_set(MG_ERR_IO, errstr, errstr_size,
                                         "evhttp setup failed");
                        goto fail;
                }
                evhttp_set_max_body_size(w->http, conf->max_line);
                evhttp_set_timeout(w->http,
                                   (int)(conf->idle_timeout_ms / 1000) + 1);
                evhttp_set_cb(w->http, "/v1/decide", http_decide_cb, w);
                evhttp_set_cb(w->http, "/healthz", http_health_cb, w);
                evhttp_set_cb(w->http, "/metrics", http_metrics_cb, w);
                if (srv->ssl_ctx)
                        evhttp_set_bevcb(w->http, http_bev_cb, w);
        }
        inet_ntop(AF_INET, &sin.sin_addr, host, sizeof(host));
        snprintf(srv->addr, sizeof(srv->addr), "%s:%d", host,
                 ntohs(sin.sin_port));
        if (use_http) {
                inet_ntop(AF_INET, &hsin.sin_addr, host, sizeof(host));
                snprintf(srv->http_addr, sizeof(srv->http_addr), "%s:%d",
                         host, ntohs(hsin.sin_port));
        }
        *srvp = srv;
        return MG_OK;
fail:
        mg_server_destroy(srv);
        return err;
}

mg_err_t mg_server_run(struct mg_server *srv, char *errstr,
                       size_t errstr_size) {
        int i;

        for (i = 0; i < srv->nworkers; i++) {
                if (pthread_create(&srv->workers[i].thread, NULL, worker_main,
                                   &srv->workers[i]) != 0) {
                        mg_server_stop(srv);
                        break;
                }
                srv->workers[i].started = 1;
        }
        for (i = 0; i < srv->nworkers; i++)
                if (srv->workers[i].started) {
                        pthread_join(srv->workers[i].thread, NULL);
                        srv->workers[i].started = 0;
                }
        return MG_OK;
}

void mg_server_stop(struct mg_server *srv) {
        int i;

        for (i = 0; i < srv->nworkers; i++)
                if (srv->workers[i].base)
                        event_base_loopbreak(srv->workers[i].base);
}

void mg_server_destroy(struct mg_server *srv) {
        int i;

        if (!srv)
                return;
        for (i = 0; i < srv->nworkers; i++) {
                struct srv_worker *w = &srv->workers[i];

                while (w->conns)
                        conn_free(w->conns);
                if (w->http)
                        evhttp_free(w->http);
                if (w->listener)
                        evconnlistener_free(w->listener);
                if (w->base)
                        event_base_free(w->base);
        }
        SSL_CTX_free(srv->ssl_ctx);
        free(srv->allow);
        free(srv->allow_buf);
        free(srv);
}

const char *mg_server_addr(const struct mg_server *srv) {
        return srv->addr;
}

const char *mg_server_http_addr(const struct mg_server *srv) {
        return srv->http_addr;
}
