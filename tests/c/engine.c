/*
 * Engine test of libheadjack: spawns instances from the busybox fixture on a real engine and
 * drives them through the C API: collected exec (exit code, both streams, truncation, env),
 * stdin, timeout, streamed exec both ways (pull iterator and callback), interactive stdin, an
 * exec freed while other threads block on it, out-of-memory and unkillable timeouts reported,
 * files (write/read from memory, copy in/out by path), lifecycle, inspect, commit (and a spawn
 * from the snapshot), attach + keep, remove (then use after remove), sweep, and that freeing an
 * instance removes its container (checked through a second client's list), a forked child
 * that frees the handles it inherited (the parent's containers survive), the engine call
 * timeout, and a warm pool (take, background refill, free removes what it holds).
 *
 * Environment (the first three as tests/env/run/env.sh exports them):
 *   HEADJACK_TEST_BUSYBOX      the base image (default localhost/headjack-test/busybox:latest)
 *   HEADJACK_TEST_DOCKER_HOST  the engine (default: headjack's discovery)
 *   HEADJACK_TEST_REGISTRY     a registry holding headjack-test/busybox:latest, pulled to see
 *                              pull progress (default 127.0.0.1:5000)
 *   HEADJACK_TEST_COMMIT_REF   the image reference to commit to (the harness removes it)
 *   HEADJACK_TEST_RUN          a label value that marks this run's containers
 * headjack-ffi/tests/c_programs.rs sets them, runs this program and cleans up after it.
 */
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

/* Calls `call` (which takes `&err` as its last argument); on failure reports and returns from
 * the enclosing function. */
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

static const char *image(void) {
    return env_or("HEADJACK_TEST_BUSYBOX", "localhost/headjack-test/busybox:latest");
}

static int buf_is(const headjack_buffer *b, const char *want) {
    size_t n = strlen(want);
    return b->len == n && (n == 0 || memcmp(b->data, want, n) == 0);
}

/* Runs argv in `inst`, collected; NULL on failure (reported). */
static headjack_output *run_argv(int line, const headjack_instance *inst, const char **argv,
                                 size_t argc) {
    headjack_command *cmd = NULL;
    headjack_output *out = NULL;
    headjack_error *err = NULL;
    headjack_status s = headjack_command_new(argv, argc, &cmd, &err);
    if (!ok_or_report(line, "headjack_command_new", s, err)) return NULL;
    err = NULL;
    s = headjack_instance_exec(inst, cmd, &out, &err);
    headjack_command_free(cmd);
    if (!ok_or_report(line, "headjack_instance_exec", s, err)) return NULL;
    return out;
}
#define RUN(inst, ...) run_argv(__LINE__, inst, ARGV(__VA_ARGS__), ARGC(__VA_ARGS__))

static headjack_spec *fixture_spec(void) {
    headjack_spec *spec = headjack_spec_new();
    headjack_error *err = NULL;
    headjack_status s = headjack_spec_set_base(spec, image(), &err);
    if (!ok_or_report(__LINE__, "set_base", s, err)) return spec;
    err = NULL;
    s = headjack_spec_set_label(spec, "io.headjack.test", "1", &err);
    ok_or_report(__LINE__, "set_label", s, err);
    err = NULL;
    s = headjack_spec_set_label(spec, "io.headjack.test.run", env_or("HEADJACK_TEST_RUN", "c"),
                                &err);
    ok_or_report(__LINE__, "set_label", s, err);
    return spec;
}

/* Whether the engine lists an instance with this ID. -1 on error. */
static int listed(const headjack_client *client, const char *id) {
    headjack_instance_list *list = NULL;
    headjack_error *err = NULL;
    headjack_status s = headjack_client_list(client, &list, &err);
    if (!ok_or_report(__LINE__, "headjack_client_list", s, err)) return -1;
    int found = 0;
    for (size_t i = 0; i < list->len; i++) {
        if (strcmp(list->items[i].id, id) == 0) found = 1;
    }
    headjack_instance_list_free(list);
    return found;
}

struct progress_seen {
    int events;
    int pulls;  /* pull events naming the image, with a status */
    int builds; /* build events naming the tag, with a line */
};

static void on_progress(void *userdata, const headjack_progress *event) {
    struct progress_seen *seen = userdata;
    seen->events++;
    if (event->kind == HEADJACK_PROGRESS_PULL && event->image &&
        strstr(event->image, "headjack-test/busybox") && event->status && !event->line)
        seen->pulls++;
    if (event->kind == HEADJACK_PROGRESS_BUILD && event->image &&
        strstr(event->image, "localhost/headjack/") && event->line && !event->status)
        seen->builds++;
}

/* Pulling (policy "always") reports progress through the spec's callback, on this thread. */
static void pull_progress(const headjack_client *client) {
    char ref[256];
    snprintf(ref, sizeof ref, "%s/headjack-test/busybox:latest",
             env_or("HEADJACK_TEST_REGISTRY", "127.0.0.1:5000"));
    struct progress_seen seen = {0, 0, 0};
    headjack_spec *spec = headjack_spec_new();
    char *resolved = NULL;
    MUST(headjack_spec_set_base(spec, ref, &err));
    MUST(headjack_spec_set_pull_policy(spec, "always", &err));
    MUST(headjack_spec_set_progress(spec, on_progress, &seen, &err));
    MUST(headjack_client_resolve(client, spec, &resolved, &err));
    headjack_spec_free(spec);
    CHECK(resolved && strcmp(resolved, ref) == 0);
    headjack_string_free(resolved);
    CHECK(seen.events > 0 && seen.pulls > 0);
    printf("pull progress: %d events, %d pull events\n", seen.events, seen.pulls);
}

/* Building a Dockerfile base reports its output through the progress callback; a build
 * argument is part of the cache key, so this run's unique value makes it really build. */
static void build_progress(const headjack_client *client) {
    char dir[] = "/tmp/headjack-c-build-XXXXXX", path[64];
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        failures++;
        return;
    }
    snprintf(path, sizeof path, "%s/Dockerfile", dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror("fopen");
        failures++;
        return;
    }
    fprintf(f, "FROM %s\nARG TOKEN\nRUN echo \"built $TOKEN\" && echo \"$TOKEN\" > /built\n", image());
    fclose(f);
    struct progress_seen seen = {0, 0, 0};
    headjack_spec *spec = fixture_spec();
    headjack_instance *inst = NULL;
    MUST(headjack_spec_set_base(spec, path, &err));
    MUST(headjack_spec_set_build_arg(spec, "TOKEN", env_or("HEADJACK_TEST_RUN", "c"), &err));
    MUST(headjack_spec_set_progress(spec, on_progress, &seen, &err));
    MUST(headjack_client_spawn(client, spec, &inst, &err));
    headjack_spec_free(spec);
    remove(path);
    rmdir(dir);
    /* The harness removes the image this run built. */
    printf("cleanup-image: %s\n", headjack_instance_image(inst));
    CHECK(strncmp(headjack_instance_image(inst), "localhost/headjack/", 19) == 0);
    CHECK(seen.builds > 0);
    printf("build progress: %d events, %d build lines\n", seen.events, seen.builds);
    headjack_buffer buf = {NULL, 0};
    MUST(headjack_instance_read_file(inst, "/built", &buf, &err));
    char want[128];
    snprintf(want, sizeof want, "%s\n", env_or("HEADJACK_TEST_RUN", "c"));
    CHECK(buf_is(&buf, want));
    headjack_buffer_free(&buf);

    /* The built image is listed, with its key, source and size. */
    headjack_image_list *images = NULL;
    MUST(headjack_client_images(client, &images, &err));
    int found = 0;
    for (size_t k = 0; k < images->len; k++) {
        const headjack_image *img = &images->items[k];
        CHECK(strncmp(img->reference, "localhost/headjack/", 19) == 0);
        if (strcmp(img->reference, headjack_instance_image(inst)) != 0) continue;
        found = 1;
        CHECK(strlen(img->key) >= 16 && strncmp(img->id, "sha256:", 7) == 0);
        CHECK(strstr(img->source, "Dockerfile") != NULL);
        CHECK(img->size > 0 && img->created > 0 && img->last_used >= img->created - 5);
    }
    CHECK(found);
    headjack_image_list_free(images);
    headjack_instance_free(inst);
}

/* Spec setters are order-free; whether the options fit together is checked by spawn, before
 * anything is created. */
static void order_free_spec(const headjack_client *client) {
    headjack_spec *spec = fixture_spec();
    headjack_instance *inst = NULL;
    /* A workspace target alone, and build options on an image base, are refused. */
    MUST(headjack_spec_set_workspace_target(spec, "/w", &err));
    FAILS(HEADJACK_INVALID_ARGUMENT, "without a workspace",
          headjack_client_spawn(client, spec, &inst, &err));
    CHECK(inst == NULL);
    headjack_spec_free(spec);
    spec = fixture_spec();
    MUST(headjack_spec_set_build_arg(spec, "K", "V", &err));
    FAILS(HEADJACK_INVALID_ARGUMENT, "not a Dockerfile",
          headjack_client_spawn(client, spec, &inst, &err));
    CHECK(inst == NULL);
    headjack_spec_free(spec);
    /* The target before the workspace is the same as after it; hardened on then off is off. */
    spec = fixture_spec();
    MUST(headjack_spec_set_workspace_target(spec, "/w", &err));
    MUST(headjack_spec_set_workspace(spec, "/tmp", true, &err));
    MUST(headjack_spec_set_hardened(spec, true, &err));
    MUST(headjack_spec_set_hardened(spec, false, &err));
    MUST(headjack_client_spawn(client, spec, &inst, &err));
    headjack_spec_free(spec);
    headjack_output *out = run_argv(__LINE__, inst, ARGV("sh", "-c", "pwd; touch /root-is-writable && echo rw"), 3);
    if (out) {
        CHECK(buf_is(&out->stdout_data, "/w\nrw\n"));
        headjack_output_free(out);
    }
    headjack_instance_free(inst);
}

static void collected(const headjack_instance *inst) {
    headjack_output *out = RUN(inst, "sh", "-c", "echo out; echo err >&2; echo \"$FOO\"; exit 3");
    if (!out) return;
    CHECK(out->exit_code == 3);
    CHECK(buf_is(&out->stdout_data, "out\nbar\n"));
    CHECK(buf_is(&out->stderr_data, "err\n"));
    CHECK(!out->stdout_truncated && !out->stderr_truncated && !out->timed_out);
    headjack_output_free(out);

    out = RUN(inst, "true");
    if (!out) return;
    CHECK(out->exit_code == 0);
    CHECK(out->stdout_data.data == NULL && out->stdout_data.len == 0);
    headjack_output_free(out);

    out = RUN(inst, "no-such-program-headjack");
    if (!out) return;
    CHECK(out->exit_code == 127);
    headjack_output_free(out);
}

static void command_options(const headjack_instance *inst) {
    headjack_command *cmd = NULL;
    headjack_output *out = NULL;

    /* Bounded output. */
    MUST(headjack_command_new(ARGV("sh", "-c", "yes | head -c 100000"), 3, &cmd, &err));
    MUST(headjack_command_set_max_output(cmd, 10, &err));
    MUST(headjack_instance_exec(inst, cmd, &out, &err));
    CHECK(out->stdout_data.len == 10 && out->stdout_truncated && !out->stderr_truncated);
    headjack_output_free(out);
    headjack_command_free(cmd);

    /* Stdin (binary, with a NUL), env, workdir, user. */
    const uint8_t input[] = {'h', 'i', 0, '!'};
    MUST(headjack_command_new(ARGV("cat"), 1, &cmd, &err));
    MUST(headjack_command_set_stdin(cmd, input, sizeof input, &err));
    MUST(headjack_instance_exec(inst, cmd, &out, &err));
    CHECK(out->exit_code == 0 && out->stdout_data.len == 4 &&
          memcmp(out->stdout_data.data, input, 4) == 0);
    headjack_output_free(out);
    headjack_command_free(cmd);

    MUST(headjack_command_new(ARGV("sh", "-c", "echo \"$X\"; pwd; id -u"), 3, &cmd, &err));
    MUST(headjack_command_set_env(cmd, "X", "from-command", &err));
    MUST(headjack_command_set_workdir(cmd, "/tmp", &err));
    MUST(headjack_command_set_user(cmd, "1234", &err));
    MUST(headjack_instance_exec(inst, cmd, &out, &err));
    CHECK(buf_is(&out->stdout_data, "from-command\n/tmp\n1234\n"));
    headjack_output_free(out);
    headjack_command_free(cmd);

    /* Timeout: the command is killed and the result says so. */
    MUST(headjack_command_new(ARGV("sleep", "60"), 2, &cmd, &err));
    MUST(headjack_command_set_timeout_ms(cmd, 300, &err));
    MUST(headjack_instance_exec(inst, cmd, &out, &err));
    CHECK(out->timed_out);
    headjack_output_free(out);
    headjack_command_free(cmd);
    /* Nothing of it is left running. */
    out = RUN(inst, "sh", "-c", "ps | grep -c '[s]leep 60'");
    if (out) {
        CHECK(buf_is(&out->stdout_data, "0\n"));
        headjack_output_free(out);
    }
}

static void pull_iterator(const headjack_instance *inst) {
    headjack_command *cmd = NULL;
    headjack_exec *exec = NULL;
    MUST(headjack_command_new(ARGV("sh", "-c", "echo a; echo b >&2; echo c; exit 5"), 3, &cmd,
                              &err));
    MUST(headjack_instance_exec_start(inst, cmd, &exec, &err));
    headjack_command_free(cmd);
    char out[64] = {0}, errs[64] = {0};
    size_t no = 0, ne = 0;
    for (;;) {
        headjack_chunk *chunk = NULL;
        headjack_error *err = NULL;
        headjack_status s = headjack_exec_next(exec, &chunk, &err);
        if (!ok_or_report(__LINE__, "headjack_exec_next", s, err)) break;
        if (chunk == NULL) break;
        CHECK(chunk->data != NULL && chunk->len > 0);
        if (chunk->stream == HEADJACK_STDOUT && no + chunk->len < sizeof out) {
            memcpy(out + no, chunk->data, chunk->len);
            no += chunk->len;
        } else if (chunk->stream == HEADJACK_STDERR && ne + chunk->len < sizeof errs) {
            memcpy(errs + ne, chunk->data, chunk->len);
            ne += chunk->len;
        }
        headjack_chunk_free(chunk);
    }
    CHECK(strcmp(out, "a\nc\n") == 0);
    CHECK(strcmp(errs, "b\n") == 0);
    headjack_chunk *after = (headjack_chunk *)(uintptr_t)1;
    MUST(headjack_exec_next(exec, &after, &err));
    CHECK(after == NULL);
    headjack_exit_status st = {0, true, true, true};
    MUST(headjack_exec_wait(exec, &st, &err));
    CHECK(st.code == 5 && !st.timed_out && !st.oom_killed && !st.kill_failed);
    headjack_exit_status again = {0, true, true, true};
    MUST(headjack_exec_wait(exec, &again, &err));
    CHECK(again.code == 5);
    /* Not interactive: no stdin to write to; closing it is harmless. */
    FAILS(HEADJACK_CONFLICT, "not open",
          headjack_exec_write_stdin(exec, (const uint8_t *)"x", 1, &err));
    MUST(headjack_exec_close_stdin(exec, &err));
    headjack_exec_free(exec);
}

/* Pulls the rest of an exec's output into `buf` (NUL-terminated, truncated to fit). 0 on error
 * (reported). */
static int drain(headjack_exec *exec, char *buf, size_t size) {
    size_t n = 0;
    for (;;) {
        headjack_chunk *chunk = NULL;
        headjack_error *err = NULL;
        headjack_status s = headjack_exec_next(exec, &chunk, &err);
        if (!ok_or_report(__LINE__, "headjack_exec_next", s, err)) return 0;
        if (!chunk) break;
        if (n + chunk->len < size) {
            memcpy(buf + n, chunk->data, chunk->len);
            n += chunk->len;
        }
        headjack_chunk_free(chunk);
    }
    buf[n] = '\0';
    return 1;
}

static void interactive(const headjack_instance *inst) {
    headjack_command *cmd = NULL;
    headjack_exec *exec = NULL;
    MUST(headjack_command_new(ARGV("sh", "-c", "read line; echo \"got $line\"; cat"), 3, &cmd,
                              &err));
    MUST(headjack_command_set_interactive(cmd, true, &err));
    MUST(headjack_instance_exec_start(inst, cmd, &exec, &err));
    headjack_command_free(cmd);
    MUST(headjack_exec_write_stdin(exec, (const uint8_t *)"ping\n", 5, &err));
    headjack_chunk *chunk = NULL;
    MUST(headjack_exec_next(exec, &chunk, &err));
    CHECK(chunk != NULL && chunk->len == 9 && memcmp(chunk->data, "got ping\n", 9) == 0);
    headjack_chunk_free(chunk);
    MUST(headjack_exec_write_stdin(exec, (const uint8_t *)"tail", 4, &err));
    MUST(headjack_exec_close_stdin(exec, &err));
    MUST(headjack_exec_close_stdin(exec, &err)); /* twice is harmless */
    FAILS(HEADJACK_CONFLICT, "not open",
          headjack_exec_write_stdin(exec, (const uint8_t *)"x", 1, &err));
    char rest[16] = {0};
    if (!drain(exec, rest, sizeof rest)) return;
    CHECK(strcmp(rest, "tail") == 0);
    headjack_exit_status st;
    MUST(headjack_exec_wait(exec, &st, &err));
    CHECK(st.code == 0);
    headjack_exec_free(exec);

    /* A terminal, resized before the command looks at it. */
    MUST(headjack_command_new(ARGV("sh", "-c", "read line; stty size"), 3, &cmd, &err));
    MUST(headjack_command_set_tty(cmd, true, &err));
    MUST(headjack_command_set_interactive(cmd, true, &err));
    MUST(headjack_instance_exec_start(inst, cmd, &exec, &err));
    headjack_command_free(cmd);
    {
        headjack_error *err = NULL;
        CHECK(headjack_exec_resize(exec, 0, 80, &err) == HEADJACK_INVALID_ARGUMENT);
        CHECK(err != NULL && strstr(headjack_error_message(err), "at least 1") != NULL);
        headjack_error_free(err);
    }
    MUST(headjack_exec_resize(exec, 30, 100, &err));
    MUST(headjack_exec_write_stdin(exec, (const uint8_t *)"go\n", 3, &err));
    char term[256] = {0};
    if (!drain(exec, term, sizeof term)) return;
    CHECK(strstr(term, "30 100") != NULL);
    MUST(headjack_exec_wait(exec, &st, &err));
    CHECK(st.code == 0);
    headjack_exec_free(exec);

    /* Freeing a running exec kills its command. */
    MUST(headjack_command_new(ARGV("sleep", "600"), 2, &cmd, &err));
    MUST(headjack_instance_exec_start(inst, cmd, &exec, &err));
    headjack_command_free(cmd);
    headjack_exec_free(exec);
}

/* Whether a process whose command line contains `needle` runs in `inst`, polled for up to
 * `seconds` until it does not (a kill runs in the background). -1 on error. */
static int still_running(const headjack_instance *inst, const char *needle, int seconds) {
    const struct timespec tick = {0, 100 * 1000 * 1000};
    for (int i = 0;; i++) {
        headjack_output *out =
            RUN(inst, "sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '");
        if (!out) return -1;
        int found = 0;
        if (out->stdout_data.len > 0) {
            char *text = calloc(out->stdout_data.len + 1, 1);
            if (text) {
                memcpy(text, out->stdout_data.data, out->stdout_data.len);
                found = strstr(text, needle) != NULL;
                free(text);
            }
        }
        headjack_output_free(out);
        if (!found || i >= seconds * 10) return found;
        nanosleep(&tick, NULL);
    }
}

struct blocked_call {
    headjack_exec *exec;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int first_chunk; /* the reader pulled the first chunk and goes on to block */
    headjack_status next_status;
    int next_end;    /* the blocked headjack_exec_next returned end of output */
    headjack_status wait_status;
    int done;        /* both threads returned */
};

static void *blocked_reader(void *arg) {
    struct blocked_call *b = arg;
    headjack_chunk *chunk = NULL;
    headjack_error *err = NULL;
    headjack_status s = headjack_exec_next(b->exec, &chunk, &err);
    headjack_chunk_free(chunk);
    headjack_error_free(err);
    pthread_mutex_lock(&b->lock);
    b->first_chunk = s == HEADJACK_OK && chunk != NULL;
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->lock);
    /* Blocks: the command prints nothing more. */
    chunk = (headjack_chunk *)(uintptr_t)1;
    err = NULL;
    s = headjack_exec_next(b->exec, &chunk, &err);
    headjack_error_free(err);
    pthread_mutex_lock(&b->lock);
    b->next_status = s;
    b->next_end = chunk == NULL;
    b->done++;
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->lock);
    return NULL;
}

static void *blocked_waiter(void *arg) {
    struct blocked_call *b = arg;
    headjack_exit_status st;
    headjack_error *err = NULL;
    headjack_status s = headjack_exec_wait(b->exec, &st, &err);
    if (s != HEADJACK_CONFLICT)
        fprintf(stderr, "blocked wait: %s: %s\n", headjack_status_name(s),
                err ? headjack_error_message(err) : "(no error)");
    headjack_error_free(err);
    pthread_mutex_lock(&b->lock);
    b->wait_status = s;
    b->done++;
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->lock);
    return NULL;
}

/* Freeing an exec while one thread blocks in headjack_exec_next and another in
 * headjack_exec_wait wakes both (end of output; no status) and kills the command. */
static void free_while_blocked(const headjack_instance *inst) {
    headjack_command *cmd = NULL;
    struct blocked_call b = {.exec = NULL, .next_status = HEADJACK_PANIC,
                             .wait_status = HEADJACK_PANIC};
    pthread_mutex_init(&b.lock, NULL);
    pthread_cond_init(&b.cond, NULL);
    MUST(headjack_command_new(ARGV("sh", "-c", "echo ready; exec sleep 301"), 3, &cmd, &err));
    MUST(headjack_instance_exec_start(inst, cmd, &b.exec, &err));
    headjack_command_free(cmd);
    pthread_t reader, waiter;
    if (pthread_create(&reader, NULL, blocked_reader, &b) != 0) {
        failures++;
        headjack_exec_free(b.exec);
        return;
    }
    pthread_mutex_lock(&b.lock);
    while (!b.first_chunk && b.done == 0) pthread_cond_wait(&b.cond, &b.lock);
    pthread_mutex_unlock(&b.lock);
    CHECK(b.first_chunk);
    if (pthread_create(&waiter, NULL, blocked_waiter, &b) != 0) {
        failures++;
        headjack_exec_free(b.exec);
        pthread_join(reader, NULL);
        return;
    }
    /* Let both threads enter their calls and block (a free must not race a call's start). */
    const struct timespec settle = {0, 500 * 1000 * 1000};
    nanosleep(&settle, NULL);
    CHECK(still_running(inst, "sleep 301", 0) == 1);
    headjack_exec_free(b.exec);
    /* Both return: bounded by a minute so that a regression fails instead of hanging. */
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 60;
    pthread_mutex_lock(&b.lock);
    while (b.done < 2) {
        if (pthread_cond_timedwait(&b.cond, &b.lock, &deadline) != 0) break;
    }
    int done = b.done;
    pthread_mutex_unlock(&b.lock);
    if (done < 2) {
        fprintf(stderr, "headjack_exec_free did not wake the blocked calls (%d of 2 returned)\n",
                done);
        failures++;
        return; /* the threads still block: leave them (the process fails) */
    }
    pthread_join(reader, NULL);
    pthread_join(waiter, NULL);
    CHECK(b.next_status == HEADJACK_OK && b.next_end);
    CHECK(b.wait_status == HEADJACK_CONFLICT);
    /* The free returned once the kill went through. */
    CHECK(still_running(inst, "sleep 301", 0) == 0);
    pthread_mutex_destroy(&b.lock);
    pthread_cond_destroy(&b.cond);
}

/* A command killed by the memory limit is reported as such, collected and pulled. */
static void out_of_memory(const headjack_client *client) {
    headjack_spec *spec = fixture_spec();
    headjack_instance *inst = NULL;
    MUST(headjack_spec_set_memory(spec, 32u << 20, &err));
    MUST(headjack_client_spawn(client, spec, &inst, &err));
    headjack_spec_free(spec);
    const char *hog = "head -c 200000000 /dev/zero | tail -c 100000000 >/dev/null";
    headjack_output *out = RUN(inst, "sh", "-c", hog);
    if (out) {
        CHECK(out->oom_killed && out->exit_code != 0 && !out->timed_out && !out->kill_failed);
        printf("out of memory: exit %lld, oom_killed %d\n", (long long)out->exit_code,
               out->oom_killed);
        headjack_output_free(out);
    }
    headjack_command *cmd = NULL;
    headjack_exec *exec = NULL;
    headjack_exit_status st = {0, false, false, true};
    MUST(headjack_command_new(ARGV("sh", "-c", hog), 3, &cmd, &err));
    MUST(headjack_instance_exec_start(inst, cmd, &exec, &err));
    headjack_command_free(cmd);
    MUST(headjack_exec_wait(exec, &st, &err));
    CHECK(st.oom_killed && st.code != 0 && !st.kill_failed);
    headjack_exec_free(exec);
    /* A command that stays within the limit is not reported. */
    out = RUN(inst, "sh", "-c", "head -c 1000000 /dev/zero | wc -c");
    if (out) {
        CHECK(out->exit_code == 0 && !out->oom_killed);
        headjack_output_free(out);
    }
    headjack_instance_free(inst);
}

/* A timed-out command that dropped headjack's kill marker (env -i) cannot be killed on the
 * engine's exec path: the result says so instead of claiming a kill. Removing the instance
 * ends it. Through the in-container agent (the default) the same command is killed, with
 * everything it started. */
static void agent_kills_what_the_engine_path_cannot(const headjack_client *client) {
    headjack_spec *spec = fixture_spec();
    headjack_instance *inst = NULL;
    MUST(headjack_client_spawn(client, spec, &inst, &err));
    headjack_spec_free(spec);
    CHECK(headjack_instance_has_agent(inst));
    headjack_command *cmd = NULL;
    headjack_output *out = NULL;
    MUST(headjack_command_new(ARGV("sh", "-c", "setsid sleep 303 & env -i sleep 303"), 3, &cmd, &err));
    MUST(headjack_command_set_timeout_ms(cmd, 500, &err));
    MUST(headjack_instance_exec(inst, cmd, &out, &err));
    CHECK(out->timed_out && !out->kill_failed);
    headjack_output_free(out);
    headjack_command_free(cmd);
    CHECK(still_running(inst, "sleep 303", 0) == 0);
    headjack_instance_free(inst);
}

static void unkillable_timeout(const headjack_client *client) {
    headjack_spec *spec = fixture_spec();
    headjack_instance *inst = NULL;
    MUST(headjack_spec_set_engine_exec(spec, true, &err));
    MUST(headjack_client_spawn(client, spec, &inst, &err));
    headjack_spec_free(spec);
    CHECK(!headjack_instance_has_agent(inst));
    headjack_command *cmd = NULL;
    headjack_output *out = NULL;
    MUST(headjack_command_new(ARGV("env", "-i", "sleep", "302"), 4, &cmd, &err));
    MUST(headjack_command_set_timeout_ms(cmd, 500, &err));
    MUST(headjack_instance_exec(inst, cmd, &out, &err));
    printf("unkillable: exit %lld, timed_out %d, kill_failed %d, stderr %.*s\n",
           (long long)out->exit_code, out->timed_out, out->kill_failed,
           (int)out->stderr_data.len, (const char *)out->stderr_data.data);
    CHECK(out->timed_out && out->kill_failed && !out->oom_killed);
    headjack_output_free(out);
    headjack_exit_status st = {0, false, false, false};
    headjack_exec *exec = NULL;
    MUST(headjack_instance_exec_start(inst, cmd, &exec, &err));
    MUST(headjack_exec_wait(exec, &st, &err));
    CHECK(st.timed_out && st.kill_failed);
    headjack_exec_free(exec);
    headjack_command_free(cmd);
    CHECK(still_running(inst, "sleep 302", 0) == 1);
    headjack_instance_free(inst); /* removes the container, and the sleeps with it */
}

/* A fork()ed child that frees the handles it inherited leaves the parent's containers alone,
 * and every call in it fails with HEADJACK_FORKED. */
static void forked_child_frees(headjack_client *client, const headjack_instance *parents) {
    headjack_spec *spec = fixture_spec();
    headjack_instance *inst = NULL;
    MUST(headjack_client_spawn(client, spec, &inst, &err));
    headjack_spec_free(spec);
    char id[64];
    snprintf(id, sizeof id, "%s", headjack_instance_id(inst));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        failures++;
        headjack_instance_free(inst);
        return;
    }
    if (pid == 0) {
        headjack_output *out = NULL;
        headjack_command *cmd = NULL;
        headjack_error *err = NULL;
        int ok = headjack_command_new(ARGV("true"), 1, &cmd, &err) == HEADJACK_OK;
        headjack_status s = headjack_instance_exec(parents, cmd, &out, &err);
        ok = ok && s == HEADJACK_FORKED && out == NULL;
        headjack_error_free(err);
        headjack_command_free(cmd);
        /* Freeing what the parent made: memory abandoned, containers untouched. */
        headjack_instance_free(inst);
        headjack_client_free(client);
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(listed(client, id) == 1);
    headjack_output *out = RUN(inst, "echo", "still here");
    if (out) {
        CHECK(buf_is(&out->stdout_data, "still here\n"));
        headjack_output_free(out);
    }
    headjack_instance_free(inst);
    CHECK(listed(client, id) == 0);
}

/* The engine call timeout: 0 is refused, a bound applies to later calls. */
static void call_timeout(headjack_client *client) {
    FAILS(HEADJACK_INVALID_ARGUMENT, "at least 1 millisecond",
          headjack_client_set_timeout_ms(client, 0, &err));
    MUST(headjack_client_set_timeout_ms(client, 30 * 1000, &err));
    headjack_instance_list *list = NULL;
    MUST(headjack_client_list(client, &list, &err));
    headjack_instance_list_free(list);
}

struct collector {
    const headjack_instance *inst;
    headjack_instance *to_free;
    char out[256];
    size_t out_len;
    char err[256];
    size_t err_len;
    int calls;
    headjack_status nested;
};

static void on_output(void *userdata, headjack_stream stream, const uint8_t *data, size_t len) {
    struct collector *c = userdata;
    c->calls++;
    char *dst = stream == HEADJACK_STDOUT ? c->out : c->err;
    size_t *n = stream == HEADJACK_STDOUT ? &c->out_len : &c->err_len;
    if (*n + len < sizeof c->out) {
        memcpy(dst + *n, data, len);
        *n += len;
    }
    /* headjack functions may not be called from a callback: they fail, they do not hang. */
    if (c->calls == 1) {
        headjack_state state;
        headjack_error *err = NULL;
        c->nested = headjack_instance_status(c->inst, &state, NULL, &err);
        headjack_error_free(err);
        /* Freeing (another) instance from a callback works: it blocks until removed. */
        headjack_instance_free(c->to_free);
        c->to_free = NULL;
    }
}

static void callback_stream(const headjack_client *client, const headjack_instance *inst) {
    headjack_command *cmd = NULL;
    struct collector c = {.inst = inst};
    headjack_spec *spec = fixture_spec();
    MUST(headjack_client_spawn(client, spec, &c.to_free, &err));
    headjack_spec_free(spec);
    char other[64];
    snprintf(other, sizeof other, "%s", headjack_instance_id(c.to_free));
    headjack_exit_status st = {-2, true, true, true};
    MUST(headjack_command_new(ARGV("sh", "-c", "echo one; echo two >&2; echo three"), 3, &cmd,
                              &err));
    MUST(headjack_instance_exec_stream(inst, cmd, on_output, &c, &st, &err));
    headjack_command_free(cmd);
    CHECK(c.calls >= 2);
    CHECK(c.out_len == 10 && memcmp(c.out, "one\nthree\n", 10) == 0);
    CHECK(c.err_len == 4 && memcmp(c.err, "two\n", 4) == 0);
    CHECK(st.code == 0 && !st.timed_out && !st.oom_killed && !st.kill_failed);
    CHECK(c.nested == HEADJACK_CONFLICT);
    CHECK(c.to_free == NULL);
    CHECK(listed(client, other) == 0);
}

static void files(const headjack_instance *inst) {
    const uint8_t data[] = {'d', 'a', 't', 'a', 0, 0xff, '\n'};
    MUST(headjack_instance_write_file(inst, "/tmp/new/dir/blob.bin", data, sizeof data, 0600,
                                      &err));
    headjack_buffer buf = {NULL, 0};
    MUST(headjack_instance_read_file(inst, "/tmp/new/dir/blob.bin", &buf, &err));
    CHECK(buf.len == sizeof data && memcmp(buf.data, data, sizeof data) == 0);
    headjack_buffer_free(&buf);
    CHECK(buf.data == NULL && buf.len == 0);
    headjack_buffer_free(&buf); /* twice is harmless */

    headjack_output *out = RUN(inst, "stat", "-c", "%a", "/tmp/new/dir/blob.bin");
    if (out) {
        CHECK(buf_is(&out->stdout_data, "600\n"));
        headjack_output_free(out);
    }
    MUST(headjack_instance_write_file(inst, "/tmp/empty", NULL, 0, 0644, &err));
    MUST(headjack_instance_read_file(inst, "/tmp/empty", &buf, &err));
    CHECK(buf.len == 0);
    headjack_buffer_free(&buf);

    FAILS(HEADJACK_INVALID_ARGUMENT, "07777",
          headjack_instance_write_file(inst, "/tmp/bad-mode", data, 1, 010000, &err));
    FAILS(HEADJACK_INVALID_ARGUMENT, "07777",
          headjack_instance_write_file(inst, "/tmp/bad-mode", data, 1, 0xFFFFFFFFu, &err));
    {
        headjack_error *err = NULL;
        CHECK(headjack_instance_read_file(inst, "/no/such/file", &buf, &err) == HEADJACK_NOT_FOUND);
        CHECK(err != NULL && strstr(headjack_error_message(err), "/no/such/file") != NULL);
        headjack_error_free(err);
        err = NULL;
        CHECK(headjack_instance_write_file(inst, "relative/path", data, 1, 0644, &err) ==
              HEADJACK_INVALID_ARGUMENT);
        headjack_error_free(err);
    }

    /* Copy in a host directory, copy a file out. */
    char dir[] = "/tmp/headjack-c-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        failures++;
        return;
    }
    char src[128], path[160], outdir[128], got[160];
    snprintf(src, sizeof src, "%s/src", dir);
    snprintf(path, sizeof path, "%s/hello.txt", src);
    snprintf(outdir, sizeof outdir, "%s/out", dir);
    mkdir(src, 0755);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("from the host\n", f);
        fclose(f);
    }
    MUST(headjack_instance_copy_in(inst, src, "/tmp", &err));
    out = RUN(inst, "cat", "/tmp/src/hello.txt");
    if (out) {
        CHECK(buf_is(&out->stdout_data, "from the host\n"));
        headjack_output_free(out);
    }
    headjack_string_list *written = NULL;
    MUST(headjack_instance_copy_out(inst, "/tmp/new/dir/blob.bin", outdir, &written, &err));
    CHECK(written != NULL && written->len == 1);
    snprintf(got, sizeof got, "%s/blob.bin", outdir);
    if (written && written->len == 1) CHECK(strcmp(written->items[0], got) == 0);
    headjack_string_list_free(written);
    f = fopen(got, "rb");
    CHECK(f != NULL);
    if (f) {
        uint8_t back[16];
        size_t n = fread(back, 1, sizeof back, f);
        fclose(f);
        CHECK(n == sizeof data && memcmp(back, data, sizeof data) == 0);
    }
    MUST(headjack_instance_copy_out(inst, "/tmp/src", outdir, NULL, &err));
    remove(got);
    snprintf(got, sizeof got, "%s/src/hello.txt", outdir);
    CHECK(access(got, R_OK) == 0);
    remove(got);
    snprintf(got, sizeof got, "%s/src", outdir);
    rmdir(got);
    rmdir(outdir);
    remove(path);
    rmdir(src);
    rmdir(dir);
}

static void lifecycle(const headjack_instance *inst) {
    headjack_state state = 0;
    int64_t code = -1;
    MUST(headjack_instance_status(inst, &state, &code, &err));
    CHECK(state == HEADJACK_STATE_RUNNING && code == 0);
    MUST(headjack_instance_pause(inst, &err));
    MUST(headjack_instance_status(inst, &state, NULL, &err));
    CHECK(state == HEADJACK_STATE_PAUSED);
    MUST(headjack_instance_resume(inst, &err));
    MUST(headjack_instance_status(inst, &state, NULL, &err));
    CHECK(state == HEADJACK_STATE_RUNNING);
    MUST(headjack_instance_stop(inst, 1000, &err));
    MUST(headjack_instance_status(inst, &state, &code, &err));
    CHECK(state == HEADJACK_STATE_EXITED);
    MUST(headjack_instance_start(inst, &err));
    MUST(headjack_instance_restart(inst, 1000, &err));
    MUST(headjack_instance_status(inst, &state, NULL, &err));
    CHECK(state == HEADJACK_STATE_RUNNING);
    MUST(headjack_instance_kill(inst, NULL, &err));
    MUST(headjack_instance_status(inst, &state, &code, &err));
    CHECK(state == HEADJACK_STATE_EXITED);
    MUST(headjack_instance_start(inst, &err));
    headjack_buffer logs = {NULL, 0};
    MUST(headjack_instance_logs(inst, &logs, &err));
    headjack_buffer_free(&logs);

    headjack_instance_info *info = NULL;
    MUST(headjack_instance_inspect(inst, &info, &err));
    CHECK(strcmp(info->id, headjack_instance_id(inst)) == 0);
    CHECK(strcmp(info->container_id, headjack_instance_container_id(inst)) == 0);
    CHECK(info->state == HEADJACK_STATE_RUNNING && strcmp(info->state_name, "running") == 0);
    CHECK(info->owner[0] != '\0');
    CHECK(!info->oom_killed);
    int labelled = 0;
    for (size_t i = 0; i < info->labels_len; i++) {
        if (strcmp(info->label_keys[i], "io.headjack.test") == 0 &&
            strcmp(info->label_values[i], "1") == 0)
            labelled = 1;
    }
    CHECK(labelled);
    headjack_instance_info_free(info);
}

static void snapshot(const headjack_client *client, const headjack_instance *inst) {
    const char *ref = getenv("HEADJACK_TEST_COMMIT_REF");
    if (!ref) {
        fprintf(stderr, "HEADJACK_TEST_COMMIT_REF is not set\n");
        failures++;
        return;
    }
    MUST(headjack_instance_write_file(inst, "/snapshot-marker", (const uint8_t *)"kept", 4, 0644,
                                      &err));
    char *committed = NULL;
    MUST(headjack_instance_commit(inst, ref, &committed, &err));
    CHECK(committed != NULL && strstr(committed, ref) != NULL);

    /* The snapshot is a base: a new instance from it has the file. */
    headjack_spec *spec = fixture_spec();
    headjack_instance *from = NULL;
    MUST(headjack_spec_set_base(spec, committed, &err));
    MUST(headjack_spec_set_pull_policy(spec, "never", &err));
    MUST(headjack_client_spawn(client, spec, &from, &err));
    headjack_spec_free(spec);
    headjack_string_free(committed);
    headjack_buffer buf = {NULL, 0};
    MUST(headjack_instance_read_file(from, "/snapshot-marker", &buf, &err));
    CHECK(buf_is(&buf, "kept"));
    headjack_buffer_free(&buf);

    /* Remove, then use after remove: errors, never a crash. */
    char id[64];
    snprintf(id, sizeof id, "%s", headjack_instance_id(from));
    MUST(headjack_instance_remove(from, &err));
    MUST(headjack_instance_remove(from, &err)); /* twice is harmless */
    {
        headjack_error *err = NULL;
        headjack_output *out = NULL;
        headjack_command *cmd = NULL;
        headjack_state state;
        MUST(headjack_command_new(ARGV("true"), 1, &cmd, &err));
        CHECK(headjack_instance_exec(from, cmd, &out, &err) == HEADJACK_NOT_FOUND);
        CHECK(out == NULL);
        CHECK(err && strstr(headjack_error_message(err), "removed") != NULL);
        headjack_error_free(err);
        err = NULL;
        CHECK(headjack_instance_status(from, &state, NULL, &err) == HEADJACK_NOT_FOUND);
        headjack_error_free(err);
        err = NULL;
        CHECK(headjack_instance_read_file(from, "/snapshot-marker", &buf, &err) ==
              HEADJACK_NOT_FOUND);
        headjack_error_free(err);
        headjack_command_free(cmd);
    }
    headjack_instance_free(from);
    CHECK(listed(client, id) == 0);
}

/* How many instances the engine lists with the pool test's label. -1 on error. */
static int pooled(const headjack_client *client) {
    headjack_instance_list *list = NULL;
    headjack_error *err = NULL;
    headjack_status s = headjack_client_list(client, &list, &err);
    if (!ok_or_report(__LINE__, "headjack_client_list", s, err)) return -1;
    int n = 0;
    for (size_t i = 0; i < list->len; i++) {
        const headjack_instance_info *info = &list->items[i];
        for (size_t j = 0; j < info->labels_len; j++) {
            if (strcmp(info->label_keys[j], "io.headjack.test.pool") == 0) n++;
        }
    }
    headjack_instance_list_free(list);
    return n;
}

/* A pool hands out ready instances, refills in the background, and removes what it holds when
 * freed; taken instances belong to the caller. */
static void pool_checks(const headjack_client *client, const headjack_client *second) {
    headjack_spec *spec = fixture_spec();
    MUST(headjack_spec_set_label(spec, "io.headjack.test.pool", "c", &err));
    headjack_pool *pool = NULL;
    {
        headjack_error *err = NULL;
        CHECK(headjack_pool_new(client, spec, 0, &pool, &err) == HEADJACK_INVALID_ARGUMENT);
        CHECK(pool == NULL && err != NULL);
        CHECK(strstr(headjack_error_message(err), "size") != NULL);
        headjack_error_free(err);
    }
    MUST(headjack_pool_new(client, spec, 2, &pool, &err));
    headjack_spec_free(spec); /* the pool keeps its own copy */
    CHECK(headjack_pool_ready(pool) == 2);

    headjack_instance *taken = NULL;
    MUST(headjack_pool_take(pool, &taken, &err));
    char id[64];
    snprintf(id, sizeof id, "%s", headjack_instance_id(taken));
    headjack_output *out = RUN(taken, "echo", "pooled");
    CHECK(out && buf_is(&out->stdout_data, "pooled\n"));
    headjack_output_free(out);

    /* The refill comes up in the background (allow 30 s on a loaded machine). */
    const struct timespec tick = {0, 50 * 1000 * 1000};
    for (int i = 0; i < 600 && headjack_pool_ready(pool) < 2; i++) nanosleep(&tick, NULL);
    CHECK(headjack_pool_ready(pool) == 2);

    /* The pool's instances are listed; freeing the pool removes them, not the taken one. */
    CHECK(pooled(second) == 3);
    headjack_pool_free(pool);
    CHECK(pooled(second) == 1);
    CHECK(listed(second, id) == 1);
    headjack_instance_free(taken);
    CHECK(listed(second, id) == 0);
}

static void body(void) {
    headjack_client *client = NULL, *second = NULL;
    const char *host = getenv("HEADJACK_TEST_DOCKER_HOST");
    MUST(headjack_client_connect(host, &client, &err));
    MUST(headjack_client_connect(host, &second, &err));
    const headjack_engine_info *info = headjack_client_info(client);
    CHECK(info != NULL && info->version[0] && info->api_version[0] && info->host[0]);
    printf("engine: kind %u, version %s, API %s at %s (%s/%s)\n", info->kind, info->version,
           info->api_version, info->host, info->os, info->arch);

    order_free_spec(client);

    headjack_spec *spec = fixture_spec();
    headjack_instance *inst = NULL;
    MUST(headjack_spec_set_env(spec, "FOO", "bar", &err));
    char *resolved = NULL;
    MUST(headjack_client_resolve(client, spec, &resolved, &err));
    CHECK(resolved && strstr(resolved, "headjack-test/busybox") != NULL);
    headjack_string_free(resolved);
    MUST(headjack_client_spawn(client, spec, &inst, &err));
    headjack_spec_free(spec);
    CHECK(headjack_instance_id(inst)[0] != '\0');
    CHECK(strstr(headjack_instance_image(inst), "headjack-test/busybox") != NULL);
    char id[64];
    snprintf(id, sizeof id, "%s", headjack_instance_id(inst));
    printf("spawned %s (%s)\n", id, headjack_instance_name(inst));

    collected(inst);
    command_options(inst);
    pull_iterator(inst);
    interactive(inst);
    free_while_blocked(inst);
    callback_stream(client, inst);
    files(inst);
    lifecycle(inst);
    snapshot(client, inst);
    out_of_memory(client);
    unkillable_timeout(client);
    agent_kills_what_the_engine_path_cannot(client);
    forked_child_frees(client, inst);
    call_timeout(second);
    pull_progress(client);
    build_progress(client);

    /* Sweep leaves live instances of this process alone. */
    headjack_string_list *swept = NULL;
    MUST(headjack_client_sweep(client, &swept, &err));
    for (size_t i = 0; i < swept->len; i++) CHECK(strcmp(swept->items[i], id) != 0);
    headjack_string_list_free(swept);

    /* An attached handle is kept: freeing it leaves the container. */
    headjack_instance *attached = NULL;
    MUST(headjack_client_attach(second, id, &attached, &err));
    CHECK(strcmp(headjack_instance_container_id(attached), headjack_instance_container_id(inst)) ==
          0);
    headjack_instance_free(attached);
    CHECK(listed(second, id) == 1);
    {
        headjack_error *err = NULL;
        headjack_instance *none = NULL;
        CHECK(headjack_client_attach(second, "no-such-instance-headjack", &none, &err) ==
              HEADJACK_NOT_FOUND);
        CHECK(none == NULL);
        headjack_error_free(err);
    }

    /* Freeing the spawned handle removes the container. */
    headjack_instance_free(inst);
    CHECK(listed(second, id) == 0);

    /* A kept instance survives its handle; attach finds it, remove removes it. */
    spec = fixture_spec();
    MUST(headjack_client_spawn(client, spec, &inst, &err));
    headjack_spec_free(spec);
    snprintf(id, sizeof id, "%s", headjack_instance_id(inst));
    MUST(headjack_instance_keep(inst, &err));
    headjack_instance_free(inst);
    CHECK(listed(second, id) == 1);
    MUST(headjack_client_attach(client, id, &attached, &err));
    MUST(headjack_instance_remove(attached, &err));
    headjack_instance_free(attached);
    CHECK(listed(second, id) == 0);

    /* A detached, kept instance outlives its handle and is not swept before it expires. */
    spec = fixture_spec();
    MUST(headjack_spec_set_detached(spec, true, &err));
    MUST(headjack_spec_set_expires_after_ms(spec, 3600 * 1000, &err));
    MUST(headjack_client_spawn(client, spec, &inst, &err));
    headjack_spec_free(spec);
    snprintf(id, sizeof id, "%s", headjack_instance_id(inst));
    headjack_instance_info *detached = NULL;
    MUST(headjack_instance_inspect(inst, &detached, &err));
    CHECK(strcmp(detached->owner, "detached") == 0 && detached->expires > 0);
    headjack_instance_info_free(detached);
    MUST(headjack_instance_keep(inst, &err));
    headjack_instance_free(inst);
    MUST(headjack_client_sweep(client, &swept, &err));
    for (size_t i = 0; i < swept->len; i++) CHECK(strcmp(swept->items[i], id) != 0);
    headjack_string_list_free(swept);
    CHECK(listed(second, id) == 1);
    MUST(headjack_client_attach(client, id, &attached, &err));
    MUST(headjack_instance_remove(attached, &err));
    headjack_instance_free(attached);
    CHECK(listed(second, id) == 0);

    pool_checks(client, second);

    headjack_client_free(second);
    headjack_client_free(client);
}

int main(void) { return run_checks("engine", body); }
