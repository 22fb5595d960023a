/*
 * mg_broker.h — the embedded Kafka-protocol broker for development and
 * tests (`mintgate broker`, `mintgate dev`).
 *
 * It is librdkafka's mock cluster (rdkafka_mock.h): a real Kafka protocol
 * implementation that keeps messages in memory with small per-partition
 * retention, supports consumer groups and offset commits, and speaks to any
 * Kafka client over TCP. It is NOT durable and NOT for production, where a
 * real Kafka cluster is used.
 *
 * librdkafka 2.0's mock cluster listens on an ephemeral loopback port only.
 * To offer a fixed, well-known bootstrap port (so kcat and other processes
 * can find it), mg_broker runs a small TCP front on the requested address
 * that relays bytes to the mock broker. Clients bootstrap through the front;
 * the metadata they receive advertises the mock broker's own loopback
 * address, which they then use directly, so the relay carries only the
 * bootstrap connection.
 *
 * Threads: the mock cluster runs on librdkafka's threads, the front on one
 * libevent thread of its own. The API may be called from one thread.
 */
#ifndef MG_BROKER_H
#define MG_BROKER_H

#include <stddef.h>

#include "mg_err.h"

struct mg_broker;

struct mg_broker_opts {
        const char *host;        /* front listen address, e.g. "127.0.0.1" */
        int port;                /* front port; 0 picks a free one */
        const char *const *topics; /* topics to create */
        int topic_cnt;
        int partitions;          /* partitions per topic, >= 1 */
};

/* Start the mock cluster, create the topics, start the front. On success
 * the caller owns *brokerp (mg_broker_destroy()). */
mg_err_t mg_broker_new(const struct mg_broker_opts *opts,
                       struct mg_broker **brokerp, char *errstr,
                       size_t errstr_size);

/* "host:port" of the front: the bootstrap.servers value for clients. */
const char *mg_broker_bootstrap(const struct mg_broker *broker);
/* The mock broker's own address (what metadata advertises). */
const char *mg_broker_mock_address(const struct mg_broker *broker);

/* Create one more topic at run time. */
mg_err_t mg_broker_topic_create(struct mg_broker *broker, const char *topic,
                                int partitions, char *errstr,
                                size_t errstr_size);

/* Stop the front and the cluster; NULL is a no-op. */
void mg_broker_destroy(struct mg_broker *broker);

#endif /* MG_BROKER_H */
