/*
 * mg_broker.c — embedded Kafka-protocol broker: librdkafka's mock cluster
 * behind a fixed-port TCP front (see mg_broker.h for why the front exists).
 *
 * The front is a plain relay: for each accepted connection it opens one to
 * the mock broker and pairs two bufferevents, each copying what it reads to
 * the other. Either side closing or failing closes both. Relay buffers are
 * capped (MG_BROKER_RELAY_HIGHWAT) by read watermarks so a slow reader
 * throttles the writer instead of growing memory.
 */
#include "mg_broker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "mg_log.h"

/* Kafka fetch responses are up to fetch.max.bytes (50 MB by default) but
 * arrive in socket-sized pieces; 1 MiB of relay buffer per direction keeps
 * bootstrap traffic flowing without letting one client hold much memory. */
#define MG_BROKER_RELAY_HIGHWAT (1024 * 1024)

struct mg_broker {
        rd_kafka_t *rk;                 /* handle owning the mock cluster */
        rd_kafka_mock_cluster_t *mcluster; /* the mock cluster */
        struct sockaddr_in mock_sin;    /* mock broker's listen address */
        char mock_addr[64];             /* same, as "host:port" */
        char bootstrap[300];            /* front address "host:port" */
        struct event_base *base;        /* front's event loop */
        struct evconnlistener *listener; /* front listening socket */
        pthread_t thread;               /* runs base */
        int thread_started;             /* thread must be joined */
        struct mg_broker_relay *relays; /* open relay pairs (front thread) */
};

/* One client connection and its upstream connection to the mock broker. */
struct mg_broker_relay {
        struct mg_broker *broker;       /* owner */
        struct bufferevent *client;     /* accepted connection */
        struct bufferevent *upstream;   /* connection to the mock broker */
        struct mg_broker_relay *prev, *next; /* broker->relays list */
};

static void relay_close(struct mg_broker_relay *relay) {
        struct mg_broker *broker = relay->broker;

        if (relay->prev)
                relay->prev->next = relay->next;
        else
                broker->relays = relay->next;
        if (relay->next)
                relay->next->prev = relay->prev;
        if (relay->client)
                bufferevent_free(relay->client);
        if (relay->upstream)
                bufferevent_free(relay->upstream);
        free(relay);
}

static void relay_read_cb(struct bufferevent *bev, void *arg) {
        struct mg_broker_relay *relay = arg;
        struct bufferevent *peer =
                bev == relay->client ? relay->upstream : relay->client;

        bufferevent_write_buffer(peer, bufferevent_get_input(bev));
}

static void relay_event_cb(struct bufferevent *bev, short what, void *arg) {
        if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
                return;
        /* Flushing what the peer still has to write is not worth the
         * complexity for a bootstrap relay: Kafka clients reconnect. */
        relay_close(arg);
}

static void front_accept_cb(struct evconnlistener *listener,
                            evutil_socket_t fd, struct sockaddr *sa,
                            int socklen, void *arg) {
        struct mg_broker *broker = arg;
        struct event_base *base = evconnlistener_get_base(listener);
        struct mg_broker_relay *relay;

        relay = calloc(1, sizeof(*relay));
        if (!relay) {
                evutil_closesocket(fd);
                return;
        }
        relay->broker = broker;
        relay->next = broker->relays;
        if (broker->relays)
                broker->relays->prev = relay;
        broker->relays = relay;
        relay->client = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
        if (!relay->client)
                evutil_closesocket(fd);
        relay->upstream = bufferevent_socket_new(base, -1,
                                                 BEV_OPT_CLOSE_ON_FREE);
        if (!relay->client || !relay->upstream) {
                mg_log_error("broker", "front: out of memory");
                relay_close(relay);
                return;
        }
        if (bufferevent_socket_connect(relay->upstream,
                                       (struct sockaddr *)&broker->mock_sin,
                                       sizeof(broker->mock_sin)) != 0) {
                mg_log_error("broker", "front: connect to %s failed: %s",
                             broker->mock_addr, strerror(errno));
                relay_close(relay);
                return;
        }
        bufferevent_setcb(relay->client, relay_read_cb, NULL, relay_event_cb,
                          relay);
        bufferevent_setcb(relay->upstream, relay_read_cb, NULL,
                          relay_event_cb, relay);
        bufferevent_setwatermark(relay->client, EV_READ, 0,
                                 MG_BROKER_RELAY_HIGHWAT);
        bufferevent_setwatermark(relay->upstream, EV_READ, 0,
                                 MG_BROKER_RELAY_HIGHWAT);
        bufferevent_enable(relay->client, EV_READ | EV_WRITE);
        bufferevent_enable(relay->upstream, EV_READ | EV_WRITE);
}

static void *front_thread_main(void *arg) {
        struct mg_broker *broker = arg;

        event_base_dispatch(broker->base);
        return NULL;
}

static mg_err_t parse_mock_address(struct mg_broker *broker, char *errstr,
                                   size_t errstr_size) {
        const char *bs = rd_kafka_mock_cluster_bootstraps(broker->mcluster);
        const char *colon = bs ? strrchr(bs, ':') : NULL;
        char host[64];
        size_t hlen;

        if (!colon || strchr(bs, ',') || (hlen = (size_t)(colon - bs)) == 0 ||
            hlen >= sizeof(host))
                return mg_err_set(MG_ERR_FATAL, errstr, errstr_size,
                                  "unexpected mock cluster address '%s'",
                                  bs ? bs : "(null)");
        memcpy(host, bs, hlen);
        host[hlen] = '\0';
        memset(&broker->mock_sin, 0, sizeof(broker->mock_sin));
        broker->mock_sin.sin_family = AF_INET;
        broker->mock_sin.sin_port = htons((uint16_t)atoi(colon + 1));
        if (inet_pton(AF_INET, host, &broker->mock_sin.sin_addr) != 1)
                return mg_err_set(MG_ERR_FATAL, errstr, errstr_size,
                                  "unexpected mock cluster host '%s'", host);
        snprintf(broker->mock_addr, sizeof(broker->mock_addr), "%s", bs);
        return MG_OK;
}

static mg_err_t front_start(struct mg_broker *broker, const char *host,
                            int port, char *errstr, size_t errstr_size) {
        struct sockaddr_in sin;
        socklen_t slen = sizeof(sin);

        memset(&sin, 0, sizeof(sin));
        sin.sin_family = AF_INET;
        sin.sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
                return mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                  "broker host '%s' is not an IPv4 address",
                                  host);
        broker->base = event_base_new();
        if (!broker->base)
                return mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                  "event_base_new failed");
        broker->listener = evconnlistener_new_bind(
                broker->base, front_accept_cb, broker,
                LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 128,
                (struct sockaddr *)&sin, sizeof(sin));
        if (!broker->listener)
                return mg_err_set(MG_ERR_IO, errstr, errstr_size,
                                  "cannot listen on %s:%d: %s", host, port,
                                  strerror(errno));
        if (getsockname(evconnlistener_get_fd(broker->listener),
                        (struct sockaddr *)&sin, &slen) != 0)
                return mg_err_set(MG_ERR_IO, errstr, errstr_size,
                                  "getsockname: %s", strerror(errno));
        snprintf(broker->bootstrap, sizeof(broker->bootstrap), "%s:%d", host,
                 ntohs(sin.sin_port));
        if (pthread_create(&broker->thread, NULL, front_thread_main,
                           broker) != 0)
                return mg_err_set(MG_ERR_FATAL, errstr, errstr_size,
                                  "cannot start the broker front thread");
        broker->thread_started = 1;
        return MG_OK;
}

mg_err_t mg_broker_topic_create(struct mg_broker *broker, const char *topic,
                                int partitions, char *errstr,
                                size_t errstr_size) {
        rd_kafka_resp_err_t kerr;

        kerr = rd_kafka_mock_topic_create(broker->mcluster, topic, partitions,
                                          1);
        if (kerr)
                return mg_err_set(MG_ERR_KAFKA, errstr, errstr_size,
                                  "cannot create topic %s: %s", topic,
                                  rd_kafka_err2str(kerr));
        return MG_OK;
}

mg_err_t mg_broker_new(const struct mg_broker_opts *opts,
                       struct mg_broker **brokerp, char *errstr,
                       size_t errstr_size) {
        struct mg_broker *broker;
        rd_kafka_conf_t *kconf;
        char kerrstr[256];
        mg_err_t err = MG_OK;
        int i;

        *brokerp = NULL;
        if (opts->partitions < 1)
                return mg_err_set(MG_ERR_CONFIG, errstr, errstr_size,
                                  "partitions must be at least 1, not %d",
                                  opts->partitions);
        broker = calloc(1, sizeof(*broker));
        if (!broker)
                return mg_err_set(MG_ERR_NOMEM, errstr, errstr_size,
                                  "out of memory");
        /* libevent must lock: bufferevents are touched only on the front
         * thread, but event_base_loopbreak() comes from the caller's. */
        evthread_use_pthreads();

        kconf = rd_kafka_conf_new();
        /* The handle exists only to own the mock cluster; silence its
         * "no bootstrap.servers" warning by pointing it nowhere useful. */
        rd_kafka_conf_set(kconf, "log_level", "3", NULL, 0);
        broker->rk = rd_kafka_new(RD_KAFKA_PRODUCER, kconf, kerrstr,
                                  sizeof(kerrstr));
        if (!broker->rk) {
                rd_kafka_conf_destroy(kconf);
                err = mg_err_set(MG_ERR_KAFKA, errstr, errstr_size,
                                 "rd_kafka_new: %s", kerrstr);
                goto out;
        }
        broker->mcluster = rd_kafka_mock_cluster_new(broker->rk, 1);
        if (!broker->mcluster) {
                err = mg_err_set(MG_ERR_KAFKA, errstr, errstr_size,
                                 "cannot create the mock cluster");
                goto out;
        }
        if ((err = parse_mock_address(broker, errstr, errstr_size)))
                goto out;
        for (i = 0; i < opts->topic_cnt; i++)
                if ((err = mg_broker_topic_create(broker, opts->topics[i],
                                                  opts->partitions, errstr,
                                                  errstr_size)))
                        goto out;
        err = front_start(broker, opts->host ? opts->host : "127.0.0.1",
                          opts->port, errstr, errstr_size);
out:
        if (err) {
                mg_broker_destroy(broker);
                return err;
        }
        *brokerp = broker;
        return MG_OK;
}

const char *mg_broker_bootstrap(const struct mg_broker *broker) {
        return broker->bootstrap;
}

const char *mg_broker_mock_address(const struct mg_broker *broker) {
        return broker->mock_addr;
}

void mg_broker_destroy(struct mg_broker *broker) {
        if (!broker)
                return;
        if (broker->thread_started) {
                event_base_loopbreak(broker->base);
                pthread_join(broker->thread, NULL);
        }
        while (broker->relays)
                relay_close(broker->relays);
        if (broker->listener)
                evconnlistener_free(broker->listener);
        if (broker->base)
                event_base_free(broker->base);
        if (broker->mcluster)
                rd_kafka_mock_cluster_destroy(broker->mcluster);
        if (broker->rk)
                rd_kafka_destroy(broker->rk);
        free(broker);
}
