/*
 * bench_serve.c — decision service load, side by side with Redis GET.
 *
 * Starts a redis-server and `mintgate serve` (a separate process, as
 * issuers see it; audit fsync=interval, no signing key, no Kafka), then
 * for each (connections, pipeline depth) in the table:
 *   - a closed-loop generator: C connections, each keeping D requests in
 *     flight, for S seconds; decisions/s and p50/p99/p99.9 latency of
 *     every request (send to answer);
 *   - `redis-benchmark -t get` against the same redis-server with the same
 *     -c and -P, in the same run: requests/s and its p50/p99;
 *   - the ratios (targets: throughput >= 1.0x Redis GET, p99 <= 1.5x Redis
 *     GET p99, single-connection p50 <= 50 us).
 * Then the resident memory per cached identity: RSS of the service before
 * and after 100,000 distinct identities were asked about. Last, freshness:
 * with the embedded broker and a `mintgate score` process, 100 probes each
 * produce a credential_compromise signal for an identity the service has
 * already answered for, then ask again every millisecond: the time from
 * the produce call to the first changed decision, p50/p99/max (target p99
 * < 100 ms), under 5,000 events/s of background traffic.
 *
 * Requests cycle over 2,000 identities (all cached after the first round),
 * the steady state of an issuer's hot path.
 *
 * Usage: bench_serve /path/to/mintgate [seconds per case, default 3]
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <pthread.h>
#include <stdatomic.h>

#include <hiredis/hiredis.h>

#include "bench_common.h"
#include "mg_broker.h"

#define MAX_CONNS 256
#define MAX_DEPTH 64
#define LAT_MAX 4000000

static const char bench_policy[] =
        "version: 1\n"
        "policies:\n"
        "  - name: bench\n"
        "    client: \"bench-*\"\n"
        "    resource: \"api://*\"\n"
        "    allowed_scopes: [\"read\", \"write\"]\n"
        "    high_impact_scopes: [\"write\"]\n"
        "    max_ttl: 1h\n";

struct bconn {
        int fd;
        double sent_at[MAX_DEPTH]; /* ring of in-flight send times */
        int head, inflight;
        char in[65536];
        size_t have;
        uint64_t next_id;
};

static double *lat_us;
static size_t lat_n;

static int connect_to(int port) {
        struct sockaddr_in sin;
        int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

        memset(&sin, 0, sizeof(sin));
        sin.sin_family = AF_INET;
        sin.sin_port = htons((uint16_t)port);
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0)
                bench_die("connect", strerror(errno));
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        return fd;
}

static void send_req(struct bconn *c, unsigned ids, uint64_t base) {
        char line[512];
        int n = snprintf(line, sizeof(line),
                         "{\"id\":%" PRIu64 ",\"identity\":\"spiffe://corp/"
                         "bench/sa-%" PRIu64 "\",\"client_id\":\"bench-c\","
                         "\"resource\":\"api://x\",\"scopes\":[\"read\","
                         "\"write\"],\"grant_type\":\"client_credentials\","
                         "\"ttl\":600}\n",
                         c->next_id, base + c->next_id % ids);

        c->next_id++;
        if (write(c->fd, line, (size_t)n) != n)
                bench_die("write", strerror(errno));
        c->sent_at[(c->head + c->inflight) % MAX_DEPTH] = bench_now();
        c->inflight++;
}

/* Closed loop for seconds; returns requests/s and fills lat_us. */
static double run_load(int port, int conns, int depth, double seconds,
                       unsigned ids, uint64_t base) {
        static struct bconn cs[MAX_CONNS];
        struct pollfd pfd[MAX_CONNS];
        double t0, end;
        uint64_t done = 0;
        int i, k;

        lat_n = 0;
        for (i = 0; i < conns; i++) {
                memset(&cs[i], 0, sizeof(cs[i]));
                cs[i].fd = connect_to(port);
                cs[i].next_id = (uint64_t)i * 1000003;
                pfd[i].fd = cs[i].fd;
                pfd[i].events = POLLIN;
                for (k = 0; k < depth; k++)
                        send_req(&cs[i], ids, base);
        }
        t0 = bench_now();
        end = t0 + seconds;
        while (bench_now() < end) {
                if (poll(pfd, (nfds_t)conns, 100) <= 0)
                        continue;
                for (i = 0; i < conns; i++) {
                        struct bconn *c = &cs[i];
                        ssize_t n;
                        char *nl;

                        if (!(pfd[i].revents & POLLIN))
                                continue;
                        n = read(c->fd, c->in + c->have,
                                 sizeof(c->in) - c->have);
                        if (n <= 0)
                                bench_die("read", "connection closed");
                        c->have += (size_t)n;
                        while ((nl = memchr(c->in, '\n', c->have))) {
                                size_t l = (size_t)(nl - c->in) + 1;
                                double now = bench_now();

                                if (lat_n < LAT_MAX)
                                        lat_us[lat_n++] =
                                                (now - c->sent_at[c->head]) *
                                                1e6;
                                c->head = (c->head + 1) % MAX_DEPTH;
                                c->inflight--;
                                done++;
                                memmove(c->in, c->in + l, c->have - l);
                                c->have -= l;
                                send_req(c, ids, base);
                        }
                }
        }
        for (i = 0; i < conns; i++)
                close(cs[i].fd);
        return (double)done / (bench_now() - t0);
}

static double pct(double p) {
        size_t i = (size_t)(p * (double)lat_n);

        return lat_n ? lat_us[i < lat_n ? i : lat_n - 1] : 0;
}

/* redis-benchmark -t get at the same concurrency: rps, p50, p99 (us). */
static void redis_get(int port, int conns, int depth, double *rps,
                      double *p50, double *p99) {
        char cmd[256], line[512];
        FILE *fp;

        *rps = *p50 = *p99 = 0;
        snprintf(cmd, sizeof(cmd),
                 "redis-benchmark -p %d -t get -c %d -P %d -n %d --csv "
                 "2>/dev/null",
                 port, conns, depth, conns * depth * 2000 > 2000000
                                            ? 2000000
                                            : conns * depth * 2000);
        if (!(fp = popen(cmd, "r")))
                bench_die("redis-benchmark", "cannot run");
        while (fgets(line, sizeof(line), fp)) {
                double v[7];

                /* "GET","rps","avg","min","p50","p95","p99","max" */
                if (sscanf(line, "\"GET\",\"%lf\",\"%lf\",\"%lf\",\"%lf\","
                                 "\"%lf\",\"%lf\"",
                           &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) == 6) {
                        *rps = v[0];
                        *p50 = v[3] * 1000;
                        *p99 = v[5] * 1000;
                }
        }
        pclose(fp);
}

static long rss_kb(pid_t pid) {
        char path[64], line[256];
        long kb = -1;
        FILE *fp;

        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        if (!(fp = fopen(path, "r")))
                return -1;
        while (fgets(line, sizeof(line), fp))
                if (!strncmp(line, "VmRSS:", 6))
                        kb = atol(line + 6);
        fclose(fp);
        return kb;
}

/* One request on a blocking connection; the answer's "decision". */
static void ask(int fd, const char *identity, char *decision, size_t size) {
        char line[512], in[4096];
        size_t have = 0;
        int n = snprintf(line, sizeof(line),
                         "{\"id\":1,\"identity\":\"%s\",\"client_id\":"
                         "\"bench-c\",\"resource\":\"api://x\",\"scopes\":"
                         "[\"read\"],\"grant_type\":\"client_credentials\","
                         "\"ttl\":600}\n",
                         identity);
        const char *p;

        if (write(fd, line, (size_t)n) != n)
                bench_die("write", strerror(errno));
        while (!memchr(in, '\n', have)) {
                ssize_t r = read(fd, in + have, sizeof(in) - have - 1);

                if (r <= 0)
                        bench_die("read", "connection closed");
                have += (size_t)r;
        }
        in[have] = '\0';
        p = strstr(in, "\"decision\":\"");
        snprintf(decision, size, "%.*s", p ? (int)strcspn(p + 12, "\"") : 1,
                 p ? p + 12 : "?");
}

struct background {
        const char *bootstrap;   /* broker */
        double rate;             /* events/s */
        atomic_int stop;         /* set to end */
};

/* Background traffic over 2,000 identities, paced in 1 ms bursts. */
static void *background_main(void *arg) {
        struct background *bg = arg;
        struct bench_producer *bp = bench_producer_new(bg->bootstrap, "5");
        static struct mg_event ev;
        uint64_t i = 0, burst = (uint64_t)(bg->rate / 1000) + 1;

        while (!atomic_load(&bg->stop)) {
                uint64_t k;

                for (k = 0; k < burst; k++, i++) {
                        bench_make_event(&ev, i, mg_time_now_ms(), 2000);
                        ev.ts_ms = mg_time_now_ms();
                        bench_produce(bp, &ev);
                }
                usleep(1000);
        }
        bench_producer_destroy(bp);
        return NULL;
}

static void run_freshness(const char *mintgate, int serve_port,
                          const struct bench_redis *rd) {
        static const char *const topics[] = {"mg.auth", "mg.usage",
                                             "mg.signals", "mg.dlq"};
        struct mg_broker_opts bopts = {"127.0.0.1", 0, topics, 4, 4};
        struct background bg;
        struct bench_producer *bp;
        struct mg_broker *broker;
        static struct mg_event ev;
        double lat[100], t0;
        char errstr[512], line[512], ident[64], dec[32];
        pthread_t tbg;
        pid_t scorer;
        int i, fd, n = 0, seen;

        if (mg_broker_new(&bopts, &broker, errstr, sizeof(errstr)))
                bench_die("broker", errstr);
        if ((scorer = fork()) == 0) {
                execl(mintgate, mintgate, "score", "--brokers",
                      mg_broker_bootstrap(broker), "--redis", rd->addr,
                      "--set", "ingest.fetch_wait=5ms", "--group",
                      "bench-fresh", "--log-level", "error", (char *)NULL);
                _exit(127);
        }
        bp = bench_producer_new(mg_broker_bootstrap(broker), "0");
        fd = -1;
        /* Wait for the scorer: its first baseline appears in Redis. The
         * warm-up is a signal, on the probes' topic, so the producer knows
         * that topic's partitions before the first probe (an issuer's
         * producer in its steady state does; learning them costs the first
         * message of a cold producer most of a second). */
        snprintf(line, sizeof(line),
                 "{\"type\":\"signal\",\"event_id\":\"w\",\"ts\":%" PRId64
                 ",\"identity\":\"warm-up\",\"kind\":\"release\","
                 "\"source\":\"bench\"}",
                 mg_time_now_ms());
        if (mg_event_from_json(&ev, line, strlen(line), mg_time_now_ms(),
                               errstr, sizeof(errstr)))
                bench_die("warm-up", errstr);
        bench_produce(bp, &ev);
        for (i = 0, seen = 0; i < 300 && !seen; i++) {
                redisContext *c = redisConnect("127.0.0.1", rd->port);
                redisReply *r = c && !c->err ? redisCommand(
                                                       c, "EXISTS %s",
                                                       "mg:{warm-up}:bl")
                                             : NULL;

                seen = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
                freeReplyObject(r);
                redisFree(c);
                if (!seen)
                        usleep(100 * 1000);
        }
        if (!seen)
                bench_die("freshness", "the scorer did not start");
        memset(&bg, 0, sizeof(bg));
        bg.bootstrap = mg_broker_bootstrap(broker);
        bg.rate = 5000;
        pthread_create(&tbg, NULL, background_main, &bg);
        fd = connect_to(serve_port);
        for (i = 0; i < 100; i++) {
                snprintf(ident, sizeof(ident), "fresh-probe-%d", i);
                ask(fd, ident, dec, sizeof(dec)); /* cached: no record */
                snprintf(line, sizeof(line),
                         "{\"type\":\"signal\",\"event_id\":\"p%d\","
                         "\"ts\":%" PRId64 ",\"identity\":\"%s\",\"kind\":"
                         "\"credential_compromise\",\"severity\":100,"
                         "\"source\":\"bench\"}",
                         i, mg_time_now_ms(), ident);
                if (mg_event_from_json(&ev, line, strlen(line),
                                       mg_time_now_ms(), errstr,
                                       sizeof(errstr)))
                        bench_die("probe", errstr);
                t0 = bench_now();
                bench_produce(bp, &ev);
                do {
                        ask(fd, ident, dec, sizeof(dec));
                        if (strcmp(dec, "allow"))
                                break;
                        usleep(1000);
                } while (bench_now() - t0 < 5.0);
                if (strcmp(dec, "allow"))
                        lat[n++] = (bench_now() - t0) * 1000.0;
        }
        atomic_store(&bg.stop, 1);
        pthread_join(tbg, NULL);
        close(fd);
        bench_producer_destroy(bp);
        kill(scorer, SIGTERM);
        waitpid(scorer, NULL, 0);
        mg_broker_destroy(broker);
        if (n == 0) {
                printf("freshness: no probe changed a decision\n");
                return;
        }
        bench_median(lat, n);
        printf("freshness: event produced -> decision changed, %d of 100 "
               "probes, under 5,000 events/s: p50 %.1f ms, p99 %.1f ms, "
               "max %.1f ms (target p99 < 100 ms)\n",
               n, lat[n / 2], lat[(int)(n * 0.99) < n ? (int)(n * 0.99) : n - 1],
               lat[n - 1]);
}

int main(int argc, char **argv) {
        static const int cases[][2] = {{1, 1},  {8, 1},  {50, 1},
                                       {1, 16}, {8, 16}, {50, 16}};
        double seconds = argc > 2 ? atof(argv[2]) : 3;
        char dir[] = "/tmp/mg-bench-serve-XXXXXX", policy[128], audit[128];
        char listen_arg[64], redis_arg[64], line[256];
        struct bench_redis rd;
        int port = 0, pipefd[2];
        long rss0, rss1;
        pid_t pid;
        size_t i;
        FILE *fp;

        if (argc < 2) {
                fprintf(stderr, "usage: bench_serve MINTGATE [seconds]\n");
                return 2;
        }
        if (!(lat_us = malloc(LAT_MAX * sizeof(*lat_us))) || !mkdtemp(dir))
                bench_die("setup", "out of memory or no temp dir");
        snprintf(policy, sizeof(policy), "%s/policy.yaml", dir);
        snprintf(audit, sizeof(audit), "audit.log=%s/audit.log", dir);
        if (!(fp = fopen(policy, "w")) || fputs(bench_policy, fp) < 0 ||
            fclose(fp))
                bench_die("policy", "cannot write");
        memset(&rd, 0, sizeof(rd));
        bench_redis_start(&rd);
        snprintf(redis_arg, sizeof(redis_arg), "%s", rd.addr);
        snprintf(listen_arg, sizeof(listen_arg), "127.0.0.1:0");
        if (pipe(pipefd) != 0)
                bench_die("pipe", strerror(errno));
        if ((pid = fork()) == 0) {
                dup2(pipefd[1], 1);
                close(pipefd[0]);
                execl(argv[1], argv[1], "serve", "--listen", listen_arg,
                      "--http", "", "--policy", policy, "--redis", redis_arg,
                      "--set", audit, "--log-level", "error", (char *)NULL);
                _exit(127);
        }
        close(pipefd[1]);
        fp = fdopen(pipefd[0], "r");
        if (!fp || !fgets(line, sizeof(line), fp) ||
            sscanf(line, "listen=127.0.0.1:%d", &port) != 1)
                bench_die("serve", "did not start");

        printf("bench_serve: mintgate serve (2 worker threads, audit fsync "
               "interval, unsigned) vs redis-benchmark -t get, %.0f s per "
               "case\n",
               seconds);
        printf("  %-5s %-5s | %10s %8s %8s %9s | %10s %8s %8s | %6s %6s\n",
               "conns", "pipe", "decide/s", "p50 us", "p99 us", "p99.9 us",
               "GET/s", "p50 us", "p99 us", "x rps", "x p99");
        /* Warm the cache with the identities the load uses. */
        run_load(port, 8, 16, 1.0, 2000, 0);
        for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
                int c = cases[i][0], d = cases[i][1];
                double rps, grps, gp50, gp99, p50, p99, p999;

                rps = run_load(port, c, d, seconds, 2000, 0);
                bench_median(lat_us, (int)lat_n); /* sorts */
                p50 = pct(0.50);
                p99 = pct(0.99);
                p999 = pct(0.999);
                redis_get(rd.port, c, d, &grps, &gp50, &gp99);
                printf("  %-5d %-5d | %10.0f %8.1f %8.1f %9.1f | %10.0f "
                       "%8.1f %8.1f | %6.2f %6.2f\n",
                       c, d, rps, p50, p99, p999, grps, gp50, gp99,
                       grps > 0 ? rps / grps : 0, gp99 > 0 ? p99 / gp99 : 0);
                fflush(stdout);
        }
        rss0 = rss_kb(pid);
        run_load(port, 8, 16, 3.0, 100000, 1000000);
        rss1 = rss_kb(pid);
        printf("memory: RSS %ld kB -> %ld kB after ~100,000 more identities: "
               "%.0f bytes per cached identity (target <= 256)\n",
               rss0, rss1, (double)(rss1 - rss0) * 1024.0 / 100000.0);
        run_freshness(argv[1], port, &rd);
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        fclose(fp);
        bench_redis_stop(&rd);
        return 0;
}
