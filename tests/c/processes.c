/*
 * Background processes through the C API, across a crash: `processes start` spawns an instance
 * from the busybox fixture, keeps it, starts a background process that prints and then waits
 * for a go-ahead, prints `instance: ID` and `process: N`, and kills itself with SIGKILL (no
 * handle freed, nothing cleaned up). `processes reattach ID N` is the program after the restart:
 * it attaches to the instance, finds the process in the list, replays its output, lets it
 * finish and collects its exit code, checks kill/wait/forget and their errors, and removes the
 * instance. headjack-ffi/tests/c_programs.rs runs both under AddressSanitizer (LeakSanitizer on
 * for the second).
 *
 * Environment: HEADJACK_TEST_BUSYBOX (the base), HEADJACK_TEST_DOCKER_HOST (the engine),
 * HEADJACK_TEST_RUN (a label value that marks this run's containers).
 */
#include <signal.h>
#include <unistd.h>

#include "check.h"

#define MUST(...)                                                                        \
    do {                                                                                 \
        headjack_error *err = NULL;                                                      \
        headjack_status s_ = __VA_ARGS__;                                                \
        if (!ok_or_report(__LINE__, #__VA_ARGS__, s_, err)) goto out;                    \
    } while (0)

static const char *env_or(const char *name, const char *fallback) {
    const char *v = getenv(name);
    return v && v[0] ? v : fallback;
}

static const char *host(void) { return env_or("HEADJACK_TEST_DOCKER_HOST", NULL); }

static const char *WAITER[] = {
    "sh", "-c",
    "echo before $WHO; echo err >&2; while [ ! -e /tmp/go ]; do sleep 0.05; done; echo after; "
    "exit 3"};

static int start(void) {
    headjack_client *client = NULL;
    headjack_spec *spec = headjack_spec_new();
    headjack_instance *inst = NULL;
    headjack_command *cmd = NULL;
    headjack_process *proc = NULL;
    MUST(headjack_client_connect(host(), &client, &err));
    MUST(headjack_spec_set_base(spec, env_or("HEADJACK_TEST_BUSYBOX",
                                             "localhost/headjack-test/busybox:latest"), &err));
    MUST(headjack_spec_set_label(spec, "io.headjack.test", "1", &err));
    MUST(headjack_spec_set_label(spec, "io.headjack.test.run", env_or("HEADJACK_TEST_RUN", "c"),
                                 &err));
    MUST(headjack_spec_set_detached(spec, true, &err));
    MUST(headjack_client_spawn(client, spec, &inst, &err));
    MUST(headjack_instance_keep(inst, &err));
    MUST(headjack_command_new(WAITER, 3, &cmd, &err));
    MUST(headjack_command_set_env(cmd, "WHO", "c", &err));
    MUST(headjack_instance_start_process(inst, cmd, &proc, &err));
    printf("instance: %s\nprocess: %llu\n", headjack_instance_id(inst),
           (unsigned long long)headjack_process_id(proc));
    fflush(stdout);
    /* The crash: nothing is freed, the container and the process go on. */
    raise(SIGKILL);
out:
    headjack_process_free(proc);
    headjack_command_free(cmd);
    headjack_instance_free(inst);
    headjack_spec_free(spec);
    headjack_client_free(client);
    return 1;
}

static const char *g_instance;
static uint64_t g_process;

/* Pulls an exec's output to its end into `out` (stdout) / `errout` (stderr). */
static void pull(headjack_exec *exec, char *out, size_t cap, char *errout, size_t errcap) {
    size_t n = 0, m = 0;
    for (;;) {
        headjack_chunk *chunk = NULL;
        headjack_error *err = NULL;
        headjack_status s = headjack_exec_next(exec, &chunk, &err);
        if (!ok_or_report(__LINE__, "headjack_exec_next", s, err) || chunk == NULL) break;
        if (chunk->stream == HEADJACK_STDOUT && n + chunk->len < cap) {
            memcpy(out + n, chunk->data, chunk->len);
            n += chunk->len;
        } else if (chunk->stream == HEADJACK_STDERR && m + chunk->len < errcap) {
            memcpy(errout + m, chunk->data, chunk->len);
            m += chunk->len;
        }
        headjack_chunk_free(chunk);
    }
    out[n] = '\0';
    errout[m] = '\0';
}

static void reattach(void) {
    headjack_client *client = NULL;
    headjack_instance *inst = NULL;
    headjack_process_list *list = NULL;
    headjack_process *proc = NULL;
    headjack_process *unknown = NULL;
    headjack_exec *follow = NULL;
    headjack_command *cmd = NULL;
    headjack_output *output = NULL;
    headjack_exit_status st;
    char out[256], errout[256];

    MUST(headjack_client_connect(host(), &client, &err));
    MUST(headjack_client_attach(client, g_instance, &inst, &err));

    /* Listed, running, with its argv. */
    MUST(headjack_instance_processes(inst, &list, &err));
    int found = 0;
    for (size_t i = 0; i < list->len; i++) {
        const headjack_process_info *p = &list->items[i];
        if (p->id != g_process) continue;
        found = 1;
        CHECK(p->running);
        CHECK(p->pid > 1);
        CHECK(p->started_ms > 0);
        CHECK(p->argc == 3 && strcmp(p->argv[0], "sh") == 0 && strcmp(p->argv[1], "-c") == 0);
    }
    CHECK(found);
    headjack_process_list_free(list);
    list = NULL;

    /* Reattach: the replay, then live output once the go-ahead is given. */
    MUST(headjack_instance_process(inst, g_process, &proc, &err));
    CHECK(headjack_process_id(proc) == g_process);
    MUST(headjack_process_attach(proc, true, &follow, &err));
    {
        const char *touch[] = {"touch", "/tmp/go"};
        MUST(headjack_command_new(touch, 2, &cmd, &err));
        MUST(headjack_instance_exec(inst, cmd, &output, &err));
        CHECK(output->exit_code == 0);
    }
    pull(follow, out, sizeof out, errout, sizeof errout);
    CHECK(strcmp(out, "before c\nafter\n") == 0);
    CHECK(strcmp(errout, "err\n") == 0);
    MUST(headjack_exec_wait(follow, &st, &err));
    CHECK(st.code == 3);
    MUST(headjack_process_wait(proc, &st, &err));
    CHECK(st.code == 3 && !st.timed_out);

    MUST(headjack_instance_processes(inst, &list, &err));
    found = 0;
    for (size_t i = 0; i < list->len; i++) {
        if (list->items[i].id == g_process) {
            found = 1;
            CHECK(!list->items[i].running);
            CHECK(list->items[i].status.code == 3);
        }
    }
    CHECK(found);
    headjack_process_list_free(list);
    list = NULL;

    /* Wrong input, and forgetting. */
    FAILS(HEADJACK_INVALID_ARGUMENT, "not a signal", headjack_process_kill(proc, 0, &err));
    FAILS(HEADJACK_INVALID_ARGUMENT, "not a signal", headjack_process_kill(proc, 99, &err));
    FAILS(HEADJACK_INVALID_ARGUMENT, "process is NULL", headjack_process_wait(NULL, &st, &err));
    FAILS(HEADJACK_INVALID_ARGUMENT, "out_status is NULL",
          headjack_process_wait(proc, NULL, &err));
    MUST(headjack_process_forget(proc, &err));
    FAILS(HEADJACK_NOT_FOUND, NULL, headjack_process_wait(proc, &st, &err));
    MUST(headjack_instance_process(inst, 424242, &unknown, &err));
    FAILS(HEADJACK_NOT_FOUND, NULL, headjack_process_kill(unknown, SIGTERM, &err));
    CHECK(headjack_process_id(NULL) == 0);

    /* A running process: cannot be forgotten; SIGKILL ends it (128 + 9). */
    {
        const char *sleeper[] = {"sleep", "300"};
        headjack_command_free(cmd);
        cmd = NULL;
        MUST(headjack_command_new(sleeper, 2, &cmd, &err));
        headjack_process_free(proc);
        proc = NULL;
        MUST(headjack_instance_start_process(inst, cmd, &proc, &err));
        FAILS(HEADJACK_CONFLICT, NULL, headjack_process_forget(proc, &err));
        MUST(headjack_process_kill(proc, SIGKILL, &err));
        MUST(headjack_process_wait(proc, &st, &err));
        CHECK(st.code == 137);
        MUST(headjack_process_forget(proc, &err));
        /* Standard input is refused. */
        MUST(headjack_command_set_stdin(cmd, (const uint8_t *)"x", 1, &err));
        headjack_process *none = NULL;
        FAILS(HEADJACK_INVALID_ARGUMENT, "standard input",
              headjack_instance_start_process(inst, cmd, &none, &err));
        CHECK(none == NULL);
    }
    MUST(headjack_instance_remove(inst, &err));
out:
    headjack_output_free(output);
    headjack_command_free(cmd);
    headjack_exec_free(follow);
    headjack_process_free(unknown);
    headjack_process_free(proc);
    headjack_process_list_free(list);
    headjack_instance_free(inst);
    headjack_client_free(client);
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "start") == 0) return start();
    if (argc == 4 && strcmp(argv[1], "reattach") == 0) {
        g_instance = argv[2];
        g_process = strtoull(argv[3], NULL, 10);
        return run_checks("processes", reattach);
    }
    fprintf(stderr, "usage: processes start | processes reattach INSTANCE PROCESS\n");
    return 2;
}
