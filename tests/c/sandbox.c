/*
 * Sandbox features of libheadjack (issue 13) on a real engine: a published port reached from
 * here over TCP, resource use, a fork that has its parent's files, and clear errors (a port
 * that cannot be read, a port not published, fork of a removed instance).
 *
 * Environment: HEADJACK_TEST_BUSYBOX, HEADJACK_TEST_DOCKER_HOST, HEADJACK_TEST_RUN (see
 * engine.c); headjack-ffi/tests/c_programs.rs runs it and checks nothing is left behind.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"

#define MUST(...)                                                                        \
    do {                                                                                 \
        headjack_error *err = NULL;                                                      \
        headjack_status s_ = __VA_ARGS__;                                                \
        if (!ok_or_report(__LINE__, #__VA_ARGS__, s_, err)) return;                      \
    } while (0)

#define ARGV(...) ((const char *[]){__VA_ARGS__})
#define ARGC(...) (sizeof(ARGV(__VA_ARGS__)) / sizeof(const char *))

static const char *env_or(const char *name, const char *fallback) {
    const char *v = getenv(name);
    return v && v[0] ? v : fallback;
}

/* GET / from host:port; 1 when the answer contains `want`. */
static int http_has(const char *host, uint16_t port, const char *want) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return 0;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1 ||
        connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return 0;
    }
    const char *req = "GET / HTTP/1.0\r\nHost: x\r\n\r\n";
    if (write(fd, req, strlen(req)) < 0) {
        close(fd);
        return 0;
    }
    char buf[4096];
    size_t n = 0;
    ssize_t r;
    while (n < sizeof buf - 1 && (r = read(fd, buf + n, sizeof buf - 1 - n)) > 0) n += (size_t)r;
    buf[n] = '\0';
    close(fd);
    return strstr(buf, want) != NULL;
}

static void body(void) {
    headjack_client *client = NULL;
    MUST(headjack_client_connect(getenv("HEADJACK_TEST_DOCKER_HOST"), &client, &err));
    headjack_spec *spec = headjack_spec_new();
    MUST(headjack_spec_set_base(spec, env_or("HEADJACK_TEST_BUSYBOX",
                                              "localhost/headjack-test/busybox:latest"), &err));
    MUST(headjack_spec_set_label(spec, "io.headjack.test", "1", &err));
    MUST(headjack_spec_set_label(spec, "io.headjack.test.run", env_or("HEADJACK_TEST_RUN", "c"),
                                 &err));
    MUST(headjack_spec_set_memory(spec, 64u << 20, &err));
    MUST(headjack_spec_set_init(
        spec,
        ARGV("sh", "-c",
             "mkdir -p /www && echo hi-from-c > /www/index.html && exec httpd -f -p 8080 -h /www"),
        3, &err));
    MUST(headjack_spec_set_readiness(spec,
                                     ARGV("wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"),
                                     5, 20000, 100, &err));
    FAILS(HEADJACK_INVALID_ARGUMENT, "publish", headjack_spec_add_publish(spec, "x:y:z:w", &err));
    MUST(headjack_spec_add_publish(spec, "8080", &err));

    headjack_instance *inst = NULL;
    MUST(headjack_client_spawn(client, spec, &inst, &err));
    char *host = NULL;
    uint16_t port = 0;
    MUST(headjack_instance_port(inst, 8080, &host, &port, &err));
    CHECK(host != NULL && strcmp(host, "127.0.0.1") == 0);
    CHECK(port != 0);
    CHECK(http_has(host, port, "hi-from-c"));
    headjack_string_free(host);
    FAILS(HEADJACK_NOT_FOUND, "not published", headjack_instance_port(inst, 9999, NULL, &port, &err));

    headjack_stats stats;
    MUST(headjack_instance_stats(inst, &stats, &err));
    CHECK(stats.memory_limit_bytes == 64u << 20);
    CHECK(stats.pids >= 1);
    CHECK(stats.cpu_time_ns > 0);

    /* A fork serves the same page (files and init carried over) on a port of its own. */
    headjack_instance *fork = NULL;
    MUST(headjack_instance_fork(inst, false, &fork, &err));
    uint16_t fork_port = 0;
    MUST(headjack_instance_port(fork, 8080, NULL, &fork_port, &err));
    CHECK(fork_port != 0 && fork_port != port);
    CHECK(http_has("127.0.0.1", fork_port, "hi-from-c"));
    headjack_instance_free(fork);

    MUST(headjack_instance_remove(inst, &err));
    headjack_instance *none = NULL;
    FAILS(HEADJACK_NOT_FOUND, "removed", headjack_instance_fork(inst, false, &none, &err));
    CHECK(none == NULL);
    headjack_instance_free(inst);
    headjack_spec_free(spec);
    headjack_client_free(client);
}

int main(void) { return run_checks("sandbox", body); }
