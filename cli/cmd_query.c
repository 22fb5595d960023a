/*
 * cmd_query.c — `mintgate query`: a decision client. Requests are JSON
 * lines from a file or stdin, or one request built from flags; all are
 * sent on one connection (pipelined) and the answers printed in order.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"

#define QUERY_TIMEOUT_MS 10000 /* for the whole exchange */

int cli_query_connect(const char *addr) {
        char host[256];
        const char *colon = strrchr(addr, ':');
        struct addrinfo hints, *res = NULL, *ai;
        int fd = -1;

        if (!colon || (size_t)(colon - addr) >= sizeof(host)) {
                fprintf(stderr, "mintgate query: --addr %s: expected "
                                "host:port\n",
                        addr);
                return -2;
        }
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = '\0';
        memset(&hints, 0, sizeof(hints));
        hints.ai_socktype = SOCK_STREAM;
        if (getaddrinfo(host, colon + 1, &hints, &res) != 0) {
                fprintf(stderr, "mintgate query: cannot resolve %s\n", addr);
                return -1;
        }
        for (ai = res; ai; ai = ai->ai_next) {
                fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
                if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
                        break;
                if (fd >= 0)
                        close(fd);
                fd = -1;
        }
        freeaddrinfo(res);
        if (fd < 0)
                fprintf(stderr, "mintgate query: cannot connect to %s: %s\n",
                        addr, strerror(errno));
        return fd;
}

int cli_query_exchange(int fd, const char *buf, size_t len, size_t want,
                       FILE *out, size_t *errors) {
        char in[65536];
        size_t sent = 0, got = 0, have = 0;
        int waited = 0;

        while (got < want) {
                struct pollfd pfd = {fd, POLLIN, 0};
                ssize_t n;
                char *nl;

                if (sent < len)
                        pfd.events |= POLLOUT;
                if (poll(&pfd, 1, 100) == 0) {
                        if ((waited += 100) >= QUERY_TIMEOUT_MS) {
                                fprintf(stderr, "mintgate query: timed out "
                                                "with %zu of %zu answers\n",
                                        got, want);
                                return -1;
                        }
                        continue;
                }
                if ((pfd.revents & POLLOUT) && sent < len) {
                        n = send(fd, buf + sent, len - sent, MSG_NOSIGNAL);
                        if (n < 0) {
                                perror("mintgate query: send");
                                return -1;
                        }
                        sent += (size_t)n;
                }
                if (!(pfd.revents & (POLLIN | POLLHUP | POLLERR)))
                        continue;
                n = recv(fd, in + have, sizeof(in) - have - 1, 0);
                if (n <= 0) {
                        fprintf(stderr, "mintgate query: connection closed "
                                        "after %zu of %zu answers\n",
                                got, want);
                        return -1;
                }
                have += (size_t)n;
                in[have] = '\0';
                while ((nl = memchr(in, '\n', have))) {
                        size_t l = (size_t)(nl - in) + 1;

                        fwrite(in, 1, l, out);
                        if (memmem(in, l, "\"error\":{", 9))
                                (*errors)++;
                        got++;
                        memmove(in, in + l, have - l);
                        have -= l;
                }
                if (have == sizeof(in) - 1) {
                        fprintf(stderr, "mintgate query: answer too long\n");
                        return -1;
                }
        }
        fflush(out);
        return 0;
}

static void query_usage(FILE *fp) {
        fprintf(fp,
                "Usage: mintgate query [options] [FILE|-]\n"
                "       mintgate query --identity ID --client C --resource R "
                "--scope S [...]\n\n"
                "Sends decision requests (JSON lines) on one connection and "
                "prints the\nanswers in order. Exit 1 if any answer is an "
                "error object.\n\n"
                "  -a, --addr HOST:PORT  decision service (default "
                "127.0.0.1:7070)\n"
                "      --identity ID     build one request from flags:\n"
                "      --client ID       client_id\n"
                "      --resource R      resource or audience\n"
                "      --scope S         a scope (repeat for more)\n"
                "      --grant G         grant_type (default "
                "client_credentials)\n"
                "      --ttl SECONDS     requested TTL (default 3600)\n"
                "      --source-ip IP    context.source_ip\n");
}

int cmd_query_main(int argc, char **argv) {
        static const struct option longopts[] = {
                {"addr", required_argument, NULL, 'a'},
                {"identity", required_argument, NULL, 'i'},
                {"client", required_argument, NULL, 'C'},
                {"resource", required_argument, NULL, 'r'},
                {"scope", required_argument, NULL, 's'},
                {"grant", required_argument, NULL, 'g'},
                {"ttl", required_argument, NULL, 't'},
                {"source-ip", required_argument, NULL, 'S'},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0}};
        const char *addr = "127.0.0.1:7070", *identity = NULL, *client = NULL,
                   *resource = NULL, *grant = "client_credentials",
                   *source_ip = NULL;
        json_t *scopes = json_array();
        char *buf = NULL, *line = NULL;
        size_t len = 0, cap = 0, lines = 0, errors = 0, lcap = 0;
        long ttl = 3600;
        int c, fd, rc = MG_EXIT_FAILURE;
        ssize_t n;

        while ((c = getopt_long(argc, argv, "a:h", longopts, NULL)) != -1) {
                switch (c) {
                case 'a':
                        addr = optarg;
                        break;
                case 'i':
                        identity = optarg;
                        break;
                case 'C':
                        client = optarg;
                        break;
                case 'r':
                        resource = optarg;
                        break;
                case 's':
                        json_array_append_new(scopes, json_string(optarg));
                        break;
                case 'g':
                        grant = optarg;
                        break;
                case 't':
                        ttl = atol(optarg);
                        break;
                case 'S':
                        source_ip = optarg;
                        break;
                case 'h':
                        query_usage(stdout);
                        json_decref(scopes);
                        return MG_EXIT_OK;
                default:
                        query_usage(stderr);
                        json_decref(scopes);
                        return MG_EXIT_USAGE;
                }
        }
        if (identity) {
                json_t *req = json_pack("{s:s, s:s, s:s, s:s, s:O, s:s, s:i}",
                                        "id", "q-1", "identity", identity,
                                        "client_id", client ? client : "",
                                        "resource", resource ? resource : "",
                                        "scopes", scopes, "grant_type", grant,
                                        "ttl", (int)ttl);

                if (req && source_ip)
                        json_object_set_new(req, "context",
                                            json_pack("{s:s}", "source_ip",
                                                      source_ip));
                buf = req ? json_dumps(req, JSON_COMPACT) : NULL;
                json_decref(req);
                if (!buf) {
                        fprintf(stderr, "mintgate query: bad flags\n");
                        goto out;
                }
                len = strlen(buf);
                buf = realloc(buf, len + 2);
                buf[len++] = '\n';
                lines = 1;
        } else {
                FILE *in = stdin;

                if (optind < argc && strcmp(argv[optind], "-") &&
                    !(in = fopen(argv[optind], "r"))) {
                        perror(argv[optind]);
                        goto out;
                }
                while ((n = getline(&line, &lcap, in)) > 0) {
                        if (n == 1 && line[0] == '\n')
                                continue;
                        if (len + (size_t)n + 2 > cap) {
                                cap = (len + (size_t)n + 2) * 2;
                                buf = realloc(buf, cap);
                        }
                        memcpy(buf + len, line, (size_t)n);
                        len += (size_t)n;
                        if (buf[len - 1] != '\n')
                                buf[len++] = '\n';
                        lines++;
                }
                if (in != stdin)
                        fclose(in);
        }
        if (lines == 0) {
                rc = MG_EXIT_OK;
                goto out;
        }
        if ((fd = cli_query_connect(addr)) < 0) {
                rc = fd == -2 ? MG_EXIT_USAGE : MG_EXIT_FAILURE;
                goto out;
        }
        if (cli_query_exchange(fd, buf, len, lines, stdout, &errors) == 0)
                rc = errors ? MG_EXIT_FAILURE : MG_EXIT_OK;
        close(fd);
out:
        free(buf);
        free(line);
        json_decref(scopes);
        return rc;
}
