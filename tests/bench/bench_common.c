/*
 * bench_common.c — shared benchmark pieces (see bench_common.h).
 */
#include "bench_common.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <librdkafka/rdkafka.h>

#include "mg_avro.h"

double bench_now(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;

        return x < y ? -1 : x > y;
}

double bench_median(double *v, int n) {
        qsort(v, (size_t)n, sizeof(*v), cmp_double);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void bench_die(const char *what, const char *errstr) {
        fprintf(stderr, "bench_ingest: %s: %s\n", what, errstr);
        exit(1);
}

/* A realistic mix: 45% auth, 50% usage, 5% signals over n_ids identities. */
void bench_make_event(struct mg_event *ev, uint64_t i, int64_t now_ms,
                      unsigned n_ids) {
        char line[1024];
        char errstr[256];
        unsigned r = (unsigned)((i * 2654435761u) % 100);
        unsigned id = (unsigned)((i * 40503u) % n_ids);
        int64_t ts = now_ms - (int64_t)(i % 3600000);

        if (r < 45)
                snprintf(line, sizeof(line),
                         "{\"type\":\"auth\",\"event_id\":\"a-%" PRIu64
                         "\",\"ts\":%" PRId64
                         ",\"identity\":\"spiffe://corp/ns/sa-%u\","
                         "\"identity_kind\":\"workload\",\"client_id\":"
                         "\"client-%u\",\"source_ip\":\"203.0.113.%u\","
                         "\"user_agent\":\"runner/2.3\",\"auth_method\":"
                         "\"jwt_svid\",\"grant_type\":\"client_credentials\","
                         "\"audience\":\"api://deploy\",\"scopes\":"
                         "[\"deploy:write\",\"logs:read\"],\"outcome\":"
                         "\"success\",\"token_id\":\"t-%" PRIu64 "\"}",
                         i, ts, id, id % 50, id % 256, i);
        else if (r < 95)
                snprintf(line, sizeof(line),
                         "{\"type\":\"usage\",\"event_id\":\"u-%" PRIu64
                         "\",\"ts\":%" PRId64
                         ",\"identity\":\"spiffe://corp/ns/sa-%u\","
                         "\"token_id\":\"t-%" PRIu64 "\",\"resource\":"
                         "\"api://deploy\",\"action\":\"POST /releases\","
                         "\"scope\":\"deploy:write\",\"source_ip\":"
                         "\"203.0.113.%u\",\"status\":201,\"bytes\":5120}",
                         i, ts, id, i, id % 256);
        else
                snprintf(line, sizeof(line),
                         "{\"type\":\"signal\",\"event_id\":\"s-%" PRIu64
                         "\",\"ts\":%" PRId64
                         ",\"identity\":\"spiffe://corp/ns/sa-%u\","
                         "\"kind\":\"secret_exposed\",\"severity\":90,"
                         "\"source\":\"secret-scanner\",\"detail\":"
                         "\"token found in public repo\"}",
                         i, ts, id);
        if (mg_event_from_json(ev, line, strlen(line), now_ms, errstr,
                               sizeof(errstr)))
                bench_die("make_event", errstr);
}

struct bench_producer {
        struct mg_avro_registry *reg;  /* built-in schemas */
        struct mg_avro_encoder *enc;   /* single-object encoding */
        rd_kafka_t *rk;                /* the producer */
        unsigned char buf[MG_AVRO_MSG_MAX]; /* one encoded message */
};

struct bench_producer *bench_producer_new(const char *bootstrap,
                                          const char *linger_ms) {
        struct bench_producer *bp = calloc(1, sizeof(*bp));
        rd_kafka_conf_t *kconf = rd_kafka_conf_new();
        char errstr[512];

        if (!bp)
                bench_die("producer", "out of memory");
        if (mg_avro_registry_new(&bp->reg, errstr, sizeof(errstr)) ||
            mg_avro_encoder_new(bp->reg, MG_AVRO_SINGLE_OBJECT, &bp->enc,
                                errstr, sizeof(errstr)))
                bench_die("encoder", errstr);
        rd_kafka_conf_set(kconf, "bootstrap.servers", bootstrap, NULL, 0);
        rd_kafka_conf_set(kconf, "linger.ms", linger_ms, NULL, 0);
        rd_kafka_conf_set(kconf, "batch.size", "1000000", NULL, 0);
        rd_kafka_conf_set(kconf, "queue.buffering.max.messages", "2000000",
                          NULL, 0);
        if (!(bp->rk = rd_kafka_new(RD_KAFKA_PRODUCER, kconf, errstr,
                                    sizeof(errstr))))
                bench_die("producer", errstr);
        return bp;
}

void bench_produce(struct bench_producer *bp, const struct mg_event *ev) {
        static const char *const topics[] = {"mg.auth", "mg.usage",
                                             "mg.signals"};
        char errstr[512];
        size_t len;

        if (mg_avro_encode(bp->enc, ev, NULL, bp->buf, sizeof(bp->buf), &len,
                           errstr, sizeof(errstr)))
                bench_die("encode", errstr);
        while (rd_kafka_producev(bp->rk, RD_KAFKA_V_TOPIC(topics[ev->type]),
                                 RD_KAFKA_V_KEY(ev->identity,
                                                strlen(ev->identity)),
                                 RD_KAFKA_V_VALUE(bp->buf, len),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_END) ==
               RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rd_kafka_poll(bp->rk, 10);
        rd_kafka_poll(bp->rk, 0);
}

void bench_producer_destroy(struct bench_producer *bp) {
        if (rd_kafka_flush(bp->rk, 60000))
                bench_die("flush", "timed out");
        rd_kafka_destroy(bp->rk);
        mg_avro_encoder_destroy(bp->enc);
        mg_avro_registry_destroy(bp->reg);
        free(bp);
}

void bench_fill(const char *bootstrap, uint64_t n, unsigned n_ids) {
        static struct mg_event ev;
        struct bench_producer *bp = bench_producer_new(bootstrap, "20");
        int64_t now_ms = mg_time_now_ms();
        uint64_t i;

        for (i = 0; i < n; i++) {
                bench_make_event(&ev, i, now_ms, n_ids);
                bench_produce(bp, &ev);
        }
        bench_producer_destroy(bp);
}

static double bare_assigned_at;

static void bare_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t kerr,
                              rd_kafka_topic_partition_list_t *parts,
                              void *opaque) {
        if (kerr == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                rd_kafka_assign(rk, parts);
                bare_assigned_at = bench_now();
        } else {
                rd_kafka_assign(rk, NULL);
        }
}

/* See bench_common.h. */
double bench_bare_consumer(const char *bootstrap, const char *group,
                           uint64_t n) {
        rd_kafka_conf_t *kconf = rd_kafka_conf_new();
        rd_kafka_topic_partition_list_t *topics =
                rd_kafka_topic_partition_list_new(3);
        rd_kafka_message_t *msgs[500];
        char errstr[512];
        double t1 = 0;
        uint64_t got = 0;
        rd_kafka_queue_t *rkqu;
        rd_kafka_t *rk;
        ssize_t r, i;

        rd_kafka_conf_set(kconf, "bootstrap.servers", bootstrap, NULL, 0);
        rd_kafka_conf_set(kconf, "group.id", group, NULL, 0);
        rd_kafka_conf_set(kconf, "auto.offset.reset", "earliest", NULL, 0);
        rd_kafka_conf_set(kconf, "enable.auto.offset.store", "false", NULL,
                          0);
        rd_kafka_conf_set_rebalance_cb(kconf, bare_rebalance_cb);
        if (!(rk = rd_kafka_new(RD_KAFKA_CONSUMER, kconf, errstr,
                                sizeof(errstr))))
                bench_die("consumer", errstr);
        rd_kafka_poll_set_consumer(rk);
        rkqu = rd_kafka_queue_get_consumer(rk);
        rd_kafka_topic_partition_list_add(topics, "mg.auth", -1);
        rd_kafka_topic_partition_list_add(topics, "mg.usage", -1);
        rd_kafka_topic_partition_list_add(topics, "mg.signals", -1);
        rd_kafka_subscribe(rk, topics);
        rd_kafka_topic_partition_list_destroy(topics);
        while (got < n) {
                r = rd_kafka_consume_batch_queue(rkqu, 1000, msgs, 500);
                for (i = 0; i < r; i++) {
                        if (!msgs[i]->err)
                                got++;
                        rd_kafka_message_destroy(msgs[i]);
                }
        }
        t1 = bench_now();
        rd_kafka_queue_destroy(rkqu);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        return (double)n / (t1 - bare_assigned_at);
}


static int bench_free_port(void) {
        struct sockaddr_in sin;
        socklen_t slen = sizeof(sin);
        int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

        memset(&sin, 0, sizeof(sin));
        sin.sin_family = AF_INET;
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
            getsockname(fd, (struct sockaddr *)&sin, &slen) == 0)
                port = ntohs(sin.sin_port);
        if (fd >= 0)
                close(fd);
        return port;
}

void bench_redis_start(struct bench_redis *rd) {
        char port[16];
        int i;

        snprintf(rd->dir, sizeof(rd->dir), "/tmp/mg-bench-redis-XXXXXX");
        if (!mkdtemp(rd->dir))
                bench_die("mkdtemp", "failed");
        rd->port = bench_free_port();
        snprintf(port, sizeof(port), "%d", rd->port);
        snprintf(rd->addr, sizeof(rd->addr), "127.0.0.1:%d", rd->port);
        if ((rd->pid = fork()) == 0) {
                execlp("redis-server", "redis-server", "--port", port,
                       "--bind", "127.0.0.1", "--dir", rd->dir, "--save", "",
                       "--appendonly", "no", "--loglevel", "warning",
                       (char *)NULL);
                _exit(127);
        }
        for (i = 0; i < 100; i++) {
                redisContext *c = redisConnect("127.0.0.1", rd->port);
                int ok = c && !c->err;

                redisFree(c);
                if (ok)
                        return;
                usleep(50 * 1000);
        }
        bench_die("redis-server", "did not start");
}

void bench_redis_stop(struct bench_redis *rd) {
        if (rd->pid > 0) {
                kill(rd->pid, SIGTERM);
                waitpid(rd->pid, NULL, 0);
        }
        rd->pid = 0;
        rmdir(rd->dir);
}
