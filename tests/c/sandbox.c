/*
 * Sandbox features of libheadjack (issue 13) on a real engine: a published port reached from
 * here over TCP, resource use, a fork that has its parent's files, limits (shm, cpuset,
 * ulimits, disk), a named volume whose data outlives an instance, the memory limit killing a
 * command and an instance (with their exit reasons), checkpoints where the engine cannot, and
 * clear errors (a port that cannot be read, a port not published, fork of a removed instance,
 * NULL and invalid arguments).
 *
 * Environment: HEADJACK_TEST_BUSYBOX, HEADJACK_TEST_DOCKER_HOST, HEADJACK_TEST_RUN (see
 * engine.c); headjack-ffi/tests/c_programs.rs runs it and checks nothing is left behind.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
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


/* Runs argv in inst; the output (freed by the caller) or NULL after reporting a failure. */
static headjack_output *run_cmd(headjack_instance *inst, const char **argv, size_t argc) {
    headjack_command *cmd = NULL;
    headjack_output *out = NULL;
    headjack_error *err = NULL;
    headjack_status s = headjack_command_new(argv, argc, &cmd, &err);
    if (s == HEADJACK_OK) s = headjack_instance_exec(inst, cmd, &out, &err);
    headjack_command_free(cmd);
    if (!ok_or_report(__LINE__, argv[argc - 1], s, err)) return NULL;
    return out;
}

/* Whether the output's standard output is exactly `want`. */
static int stdout_is(const headjack_output *o, const char *want) {
    return o != NULL && o->stdout_data.len == strlen(want) &&
           memcmp(o->stdout_data.data, want, o->stdout_data.len) == 0;
}

/* Whether volume `name` is in the client's list. -1 when listing failed. */
static int volume_listed(headjack_client *client, const char *name) {
    headjack_volume_list *list = NULL;
    headjack_error *err = NULL;
    if (!ok_or_report(__LINE__, "headjack_client_volumes",
                      headjack_client_volumes(client, &list, &err), err))
        return -1;
    int found = 0;
    for (size_t i = 0; i < list->len; i++) {
        const headjack_volume *v = &list->items[i];
        CHECK(v->driver != NULL && v->mountpoint != NULL && v->created_at != NULL);
        if (strcmp(v->name, name) == 0) found = 1;
    }
    headjack_volume_list_free(list);
    return found;
}

/* A spec on the fixture, labelled for the harness. */
static headjack_spec *test_spec(void) {
    headjack_spec *spec = headjack_spec_new();
    OK(headjack_spec_set_base(spec, env_or("HEADJACK_TEST_BUSYBOX",
                                            "localhost/headjack-test/busybox:latest"), &err));
    OK(headjack_spec_set_label(spec, "io.headjack.test", "1", &err));
    OK(headjack_spec_set_label(spec, "io.headjack.test.run", env_or("HEADJACK_TEST_RUN", "c"),
                               &err));
    return spec;
}

/* NULL and invalid arguments of the limit, volume, checkpoint and exit-reason functions. */
static void bad_arguments(headjack_client *client) {
    headjack_spec *spec = headjack_spec_new();
    FAILS(HEADJACK_INVALID_ARGUMENT, "spec is NULL", headjack_spec_set_shm_size(NULL, 1 << 20, &err));
    FAILS(HEADJACK_INVALID_ARGUMENT, "spec is NULL", headjack_spec_set_disk(NULL, 1 << 30, &err));
    FAILS(HEADJACK_INVALID_ARGUMENT, "spec is NULL", headjack_spec_set_cpuset(NULL, "0", &err));
    FAILS(HEADJACK_INVALID_ARGUMENT, "cpus is NULL", headjack_spec_set_cpuset(spec, NULL, &err));
    FAILS(HEADJACK_INVALID_ARGUMENT, "cpus is not valid UTF-8",
          headjack_spec_set_cpuset(spec, "\xff", &err));
    FAILS(HEADJACK_INVALID_ARGUMENT, "spec is NULL",
          headjack_spec_add_ulimit(NULL, "nofile", 1, 2, &err));
    FAILS(HEADJACK_INVALID_ARGUMENT, "name is NULL",
          headjack_spec_add_ulimit(spec, NULL, 1, 2, &err));
    headjack_spec_free(spec);

    headjack_volume_list *list = NULL;
    FAILS(HEADJACK_INVALID_ARGUMENT, "client is NULL", headjack_client_volumes(NULL, &list, &err));
    FAILS(HEADJACK_INVALID_ARGUMENT, "out is NULL", headjack_client_volumes(client, NULL, &err));
    CHECK(list == NULL);
    headjack_volume_list_free(NULL);
    FAILS(HEADJACK_INVALID_ARGUMENT, "client is NULL",
          headjack_client_remove_volume(NULL, "v1", &err));
    FAILS(HEADJACK_INVALID_ARGUMENT, "name is NULL",
          headjack_client_remove_volume(client, NULL, &err));
    FAILS(HEADJACK_INVALID_ARGUMENT, "invalid volume name",
          headjack_client_remove_volume(client, "no/such", &err));

    headjack_instance *restored = NULL;
    FAILS(HEADJACK_INVALID_ARGUMENT, "instance is NULL",
          headjack_instance_checkpoint(NULL, "c1", &err));
    FAILS(HEADJACK_INVALID_ARGUMENT, "client is NULL",
          headjack_client_restore(NULL, "x", "c1", &restored, &err));
    FAILS(HEADJACK_INVALID_ARGUMENT, "id_or_name is NULL",
          headjack_client_restore(client, NULL, "c1", &restored, &err));
    FAILS(HEADJACK_INVALID_ARGUMENT, "name is NULL",
          headjack_client_restore(client, "x", NULL, &restored, &err));
    FAILS(HEADJACK_INVALID_ARGUMENT, "out is NULL",
          headjack_client_restore(client, "x", "c1", NULL, &err));
    CHECK(restored == NULL);
    CHECK(headjack_exit_status_reason(NULL) == NULL);

    /* Limits the library refuses when spawning, before creating anything. */
    headjack_instance *inst = NULL;
    spec = test_spec();
    OK(headjack_spec_add_ulimit(spec, "bogus", 1, 1, &err));
    FAILS(HEADJACK_INVALID_ARGUMENT, "unknown ulimit", headjack_client_spawn(client, spec, &inst, &err));
    headjack_spec_free(spec);
    spec = test_spec();
    OK(headjack_spec_add_ulimit(spec, "nofile", 10, 5, &err));
    FAILS(HEADJACK_INVALID_ARGUMENT, "soft at most hard",
          headjack_client_spawn(client, spec, &inst, &err));
    headjack_spec_free(spec);
    spec = test_spec();
    OK(headjack_spec_set_cpuset(spec, "0-", &err));
    FAILS(HEADJACK_INVALID_ARGUMENT, "cpuset", headjack_client_spawn(client, spec, &inst, &err));
    headjack_spec_free(spec);
    spec = test_spec();
    OK(headjack_spec_set_shm_size(spec, 1, &err));
    FAILS(HEADJACK_INVALID_ARGUMENT, "shm size", headjack_client_spawn(client, spec, &inst, &err));
    headjack_spec_free(spec);
    /* This machine's storage drivers cannot bound a root filesystem: a clear refusal. */
    spec = test_spec();
    OK(headjack_spec_set_disk(spec, 100u << 20, &err));
    FAILS(HEADJACK_UNSUPPORTED, "100 MiB", headjack_client_spawn(client, spec, &inst, &err));
    headjack_spec_free(spec);
    CHECK(inst == NULL);
}

/* Limits, a named volume across two instances, the memory limit, checkpoints. */
static void limits_volumes_checkpoints(headjack_client *client) {
    char volume[200];
    snprintf(volume, sizeof volume, "hjc-%s", env_or("HEADJACK_TEST_RUN", "c"));

    headjack_spec *spec = test_spec();
    MUST(headjack_spec_set_memory(spec, 32u << 20, &err));
    MUST(headjack_spec_set_shm_size(spec, 16u << 20, &err));
    MUST(headjack_spec_set_cpuset(spec, "0", &err));
    MUST(headjack_spec_add_ulimit(spec, "nofile", 123, 456, &err));
    MUST(headjack_spec_add_volume_mount(spec, volume, "/data", false, &err));

    /* First instance: the limits hold; it writes to the volume; the memory limit kills. */
    headjack_instance *a = NULL;
    MUST(headjack_client_spawn(client, spec, &a, &err));
    CHECK(volume_listed(client, volume) == 1);
    headjack_output *o = run_cmd(a, ARGV("sh", "-c", "ulimit -n; ulimit -Hn"), 3);
    CHECK(stdout_is(o, "123\n456\n"));
    headjack_output_free(o);
    o = run_cmd(a, ARGV("sh", "-c", "df -k /dev/shm | tail -1 | awk '{print $2}'"), 3);
    CHECK(stdout_is(o, "16384\n"));
    headjack_output_free(o);
    o = run_cmd(a, ARGV("sh", "-c", "echo kept > /data/f"), 3);
    CHECK(o != NULL && o->exit_code == 0 && strcmp(o->exit_reason, "exited with code 0") == 0);
    headjack_output_free(o);
    o = run_cmd(a, ARGV("sh", "-c", "exit 3"), 3);
    CHECK(o != NULL && strcmp(o->exit_reason, "exited with code 3") == 0);
    headjack_output_free(o);
    o = run_cmd(a,
                ARGV("sh", "-c", "head -c 200000000 /dev/zero | tail -c 100000000 > /dev/null"),
                3);
    if (o != NULL) {
        CHECK(o->oom_killed);
        CHECK(strcmp(o->exit_reason, "killed: out of memory") == 0);
        headjack_exit_status st = {o->exit_code, o->timed_out, o->oom_killed, o->kill_failed};
        char *why = headjack_exit_status_reason(&st);
        CHECK(why != NULL && strcmp(why, "killed: out of memory") == 0);
        headjack_string_free(why);
        if (!o->oom_killed)
            fprintf(stderr, "exit %lld: %.*s\n", (long long)o->exit_code,
                    (int)o->stderr_data.len, (const char *)o->stderr_data.data);
    }
    headjack_output_free(o);

    /* Checkpoints: refused with the reason on this machine, the instance unharmed. */
    FAILS(HEADJACK_INVALID_ARGUMENT, "checkpoint", headjack_instance_checkpoint(a, "bad name", &err));
    FAILS(HEADJACK_UNSUPPORTED, "experimental", headjack_instance_checkpoint(a, "c1", &err));
    headjack_instance *restored = NULL;
    FAILS(HEADJACK_CONFLICT, "stop it first",
          headjack_client_restore(client, headjack_instance_id(a), "c1", &restored, &err));
    FAILS(HEADJACK_NOT_FOUND, NULL,
          headjack_client_restore(client, "no-such-instance-hjc", "c1", &restored, &err));
    CHECK(restored == NULL);
    headjack_instance_info *info = NULL;
    MUST(headjack_instance_inspect(a, &info, &err));
    CHECK(info->state == HEADJACK_STATE_RUNNING && info->exit_reason == NULL);
    headjack_instance_info_free(info);
    headjack_instance_free(a);

    /* Second instance: the data is still there; the volume cannot go while it is mounted. */
    headjack_instance *b = NULL;
    MUST(headjack_client_spawn(client, spec, &b, &err));
    o = run_cmd(b, ARGV("cat", "/data/f"), 2);
    CHECK(stdout_is(o, "kept\n"));
    headjack_output_free(o);
    FAILS(HEADJACK_CONFLICT, "in use", headjack_client_remove_volume(client, volume, &err));
    headjack_instance_free(b);
    MUST(headjack_client_remove_volume(client, volume, &err));
    CHECK(volume_listed(client, volume) == 0);
    /* Removing it again is harmless. */
    MUST(headjack_client_remove_volume(client, volume, &err));
    headjack_spec_free(spec);

    /* An instance whose main process the memory limit kills: inspect says why it stopped. */
    spec = test_spec();
    MUST(headjack_spec_set_memory(spec, 32u << 20, &err));
    MUST(headjack_spec_set_init(
        spec, ARGV("sh", "-c", "sleep 1; exec dd if=/dev/zero of=/dev/null bs=64M count=1"), 3,
        &err));
    headjack_instance *c = NULL;
    MUST(headjack_client_spawn(client, spec, &c, &err));
    headjack_state state = HEADJACK_STATE_RUNNING;
    for (int i = 0; i < 150 && state != HEADJACK_STATE_EXITED; i++) {
        struct timespec pause = {0, 200 * 1000 * 1000};
        nanosleep(&pause, NULL);
        MUST(headjack_instance_status(c, &state, NULL, &err));
    }
    CHECK(state == HEADJACK_STATE_EXITED);
    MUST(headjack_instance_inspect(c, &info, &err));
    CHECK(info->oom_killed);
    CHECK(info->exit_reason != NULL && strcmp(info->exit_reason, "killed: out of memory") == 0);
    if (info->exit_reason != NULL && !info->oom_killed)
        fprintf(stderr, "instance exit reason: %s\n", info->exit_reason);
    headjack_instance_info_free(info);
    headjack_instance_free(c);
    headjack_spec_free(spec);
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

    bad_arguments(client);
    limits_volumes_checkpoints(client);
    headjack_client_free(client);
}

int main(void) { return run_checks("sandbox", body); }
