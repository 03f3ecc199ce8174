/*
 * Pure ABI test of libheadjack: needs no engine. Versions, status names, error objects, every
 * function with NULL arguments, frees of NULL, invalid UTF-8, empty argv, spec and command
 * validation, fork detection.
 *
 * Built and run (under AddressSanitizer + LeakSanitizer) by headjack-ffi/tests/c_programs.rs.
 */
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define NUL_ARG HEADJACK_INVALID_ARGUMENT

static void versions(void) {
    CHECK(headjack_abi_version() == HEADJACK_ABI_VERSION);
    char want[64];
    snprintf(want, sizeof want, "%d.%d.%d", HEADJACK_VERSION_MAJOR, HEADJACK_VERSION_MINOR,
             HEADJACK_VERSION_PATCH);
    CHECK(headjack_version() != NULL);
    CHECK(strncmp(headjack_version(), want, strlen(want)) == 0);
}

static void status_names(void) {
    CHECK(strcmp(headjack_status_name(HEADJACK_OK), "ok") == 0);
    CHECK(strcmp(headjack_status_name(HEADJACK_ENGINE_UNAVAILABLE), "engine_unavailable") == 0);
    CHECK(strcmp(headjack_status_name(HEADJACK_INVALID_BASE), "invalid_base") == 0);
    CHECK(strcmp(headjack_status_name(HEADJACK_NOT_FOUND), "not_found") == 0);
    CHECK(strcmp(headjack_status_name(HEADJACK_INVALID_ARGUMENT), "invalid_argument") == 0);
    CHECK(strcmp(headjack_status_name(HEADJACK_INTERNAL), "internal") == 0);
    CHECK(strcmp(headjack_status_name(HEADJACK_PANIC), "panic") == 0);
    CHECK(strcmp(headjack_status_name(HEADJACK_FORKED), "forked") == 0);
    CHECK(strcmp(headjack_status_name(HEADJACK_UNSUPPORTED), "unsupported") == 0);
    CHECK(HEADJACK_UNSUPPORTED == 13 && HEADJACK_FORKED == 101); /* codes never change */
    CHECK(strcmp(headjack_status_name(4242), "unknown") == 0);
}

static void error_accessors_with_null(void) {
    CHECK(headjack_error_code(NULL) == HEADJACK_INVALID_ARGUMENT);
    CHECK(headjack_error_message(NULL) == NULL);
    CHECK(headjack_error_build_step(NULL) == NULL);
    CHECK(headjack_error_build_log(NULL) == NULL);
}

static void frees_accept_null(void) {
    headjack_error_free(NULL);
    headjack_string_free(NULL);
    headjack_buffer_free(NULL);
    headjack_buffer empty = {NULL, 0};
    headjack_buffer_free(&empty);
    headjack_string_list_free(NULL);
    headjack_client_free(NULL);
    headjack_spec_free(NULL);
    headjack_instance_free(NULL);
    headjack_instance_list_free(NULL);
    headjack_instance_info_free(NULL);
    headjack_command_free(NULL);
    headjack_output_free(NULL);
    headjack_exec_free(NULL);
    headjack_chunk_free(NULL);
    headjack_pool_free(NULL);
    headjack_image_list_free(NULL);
}

static void null_err_is_allowed(void) {
    /* Without an error out-parameter the status still says what happened. */
    CHECK(headjack_spec_set_name(NULL, "x", NULL) == HEADJACK_INVALID_ARGUMENT);
    CHECK(headjack_command_new(NULL, 0, NULL, NULL) == HEADJACK_INVALID_ARGUMENT);
}

static void spec_arguments(void) {
    const char bad_utf8[] = {'a', (char)0xff, 'b', 0};
    const char *argv[] = {"true"};
    headjack_spec *spec = headjack_spec_new();
    CHECK(spec != NULL);

    /* NULL spec for every setter. */
    FAILS(NUL_ARG, "spec is NULL", headjack_spec_set_base(NULL, "", &err));
    FAILS(NUL_ARG, "spec is NULL", headjack_spec_set_base_dir(NULL, "/tmp", &err));
    FAILS(NUL_ARG, "spec is NULL", headjack_spec_set_name(NULL, "n", &err));
    FAILS(NUL_ARG, "spec is NULL", headjack_spec_set_workspace(NULL, "/tmp", false, &err));
    FAILS(NUL_ARG, "spec is NULL", headjack_spec_set_workspace_target(NULL, "/w", &err));
    FAILS(NUL_ARG, "spec is NULL", headjack_spec_add_bind_mount(NULL, "/tmp", "/t", false, &err));
    FAILS(NUL_ARG, "spec is NULL", headjack_spec_add_volume_mount(NULL, "v", "/v", false, &err));
    FAILS(NUL_ARG, "spec is NULL", headjack_spec_add_tmpfs_mount(NULL, "/t", 0, &err));
    FAILS(NUL_ARG, "spec is NULL", headjack_spec_set_env(NULL, "K", "V", &err));
    FAILS(NUL_ARG, "spec is NULL", headjack_spec_set_user(NULL, "u", &err));
    FAILS(NUL_ARG, "spec is NULL", headjack_spec_set_workdir(NULL, "/", &err));
    FAILS(NUL_ARG, "spec is NULL", headjack_spec_set_label(NULL, "k", "v", &err));
    FAILS(NUL_ARG, "spec is NULL", headjack_spec_set_cpus(NULL, 1.0, &err));
    FAILS(NUL_ARG, "spec is NULL", headjack_spec_set_memory(NULL, 1 << 30, &err));
    FAILS(NUL_ARG, "spec is NULL", headjack_spec_set_pids(NULL, 10, &err));
    FAILS(NUL_ARG, "spec is NULL", headjack_spec_set_network(NULL, "none", &err));
    FAILS(NUL_ARG, "spec is NULL", headjack_spec_set_runtime(NULL, "runc", &err));
    FAILS(NUL_ARG, "spec is NULL", headjack_spec_set_pull_policy(NULL, "never", &err));
    FAILS(NUL_ARG, "spec is NULL", headjack_spec_set_platform(NULL, "linux/amd64", &err));
    FAILS(NUL_ARG, "spec is NULL", headjack_spec_set_expires_after_ms(NULL, 1000, &err));
    FAILS(NUL_ARG, "spec is NULL", headjack_spec_set_readiness(NULL, argv, 1, 1000, 0, &err));
    FAILS(NUL_ARG, "spec is NULL", headjack_spec_set_progress(NULL, NULL, NULL, &err));
    FAILS(NUL_ARG, "spec is NULL", headjack_spec_set_hardened(NULL, true, &err));
    FAILS(NUL_ARG, "spec is NULL", headjack_spec_set_detached(NULL, true, &err));
    FAILS(NUL_ARG, "spec is NULL", headjack_spec_set_engine_exec(NULL, true, &err));
    CHECK(!headjack_instance_has_agent(NULL));
    FAILS(NUL_ARG, "spec is NULL", headjack_spec_set_init(NULL, argv, 1, &err));
    FAILS(NUL_ARG, "spec is NULL", headjack_spec_set_dockerfile(NULL, "Dockerfile", NULL, &err));
    FAILS(NUL_ARG, "spec is NULL", headjack_spec_set_build_arg(NULL, "K", "V", &err));
    FAILS(NUL_ARG, "spec is NULL", headjack_spec_set_build_target(NULL, "dev", &err));
    FAILS(NUL_ARG, "spec is NULL", headjack_spec_set_build_platform(NULL, "linux/amd64", &err));
    FAILS(NUL_ARG, "spec is NULL", headjack_spec_set_build_no_cache(NULL, true, &err));

    /* NULL and invalid UTF-8 strings. */
    FAILS(NUL_ARG, "base is NULL", headjack_spec_set_base(spec, NULL, &err));
    FAILS(NUL_ARG, "base is not valid UTF-8", headjack_spec_set_base(spec, bad_utf8, &err));
    FAILS(NUL_ARG, "dir is NULL", headjack_spec_set_base_dir(spec, NULL, &err));
    FAILS(NUL_ARG, "dir is empty", headjack_spec_set_base_dir(spec, "", &err));
    FAILS(NUL_ARG, "name is NULL", headjack_spec_set_name(spec, NULL, &err));
    FAILS(NUL_ARG, "name is not valid UTF-8", headjack_spec_set_name(spec, bad_utf8, &err));
    FAILS(NUL_ARG, "dir is NULL", headjack_spec_set_workspace(spec, NULL, true, &err));
    FAILS(NUL_ARG, "target is NULL", headjack_spec_set_workspace_target(spec, NULL, &err));
    FAILS(NUL_ARG, "host is NULL", headjack_spec_add_bind_mount(spec, NULL, "/t", false, &err));
    FAILS(NUL_ARG, "target is NULL", headjack_spec_add_bind_mount(spec, "/tmp", NULL, false, &err));
    FAILS(NUL_ARG, "name is NULL", headjack_spec_add_volume_mount(spec, NULL, "/v", false, &err));
    FAILS(NUL_ARG, "target is not valid UTF-8",
          headjack_spec_add_volume_mount(spec, "v", bad_utf8, false, &err));
    FAILS(NUL_ARG, "target is NULL", headjack_spec_add_tmpfs_mount(spec, NULL, 0, &err));
    FAILS(NUL_ARG, "key is NULL", headjack_spec_set_env(spec, NULL, "v", &err));
    FAILS(NUL_ARG, "value is not valid UTF-8", headjack_spec_set_env(spec, "K", bad_utf8, &err));
    FAILS(NUL_ARG, "user is NULL", headjack_spec_set_user(spec, NULL, &err));
    FAILS(NUL_ARG, "dir is NULL", headjack_spec_set_workdir(spec, NULL, &err));
    FAILS(NUL_ARG, "value is NULL", headjack_spec_set_label(spec, "k", NULL, &err));
    FAILS(NUL_ARG, "network is NULL", headjack_spec_set_network(spec, NULL, &err));
    FAILS(NUL_ARG, "runtime is NULL", headjack_spec_set_runtime(spec, NULL, &err));
    FAILS(NUL_ARG, "policy is NULL", headjack_spec_set_pull_policy(spec, NULL, &err));
    FAILS(NUL_ARG, "platform is NULL", headjack_spec_set_platform(spec, NULL, &err));
    FAILS(NUL_ARG, "argv is NULL", headjack_spec_set_readiness(spec, NULL, 1, 1000, 0, &err));
    FAILS(NUL_ARG, "argv is empty", headjack_spec_set_readiness(spec, argv, 0, 1000, 0, &err));
    FAILS(NUL_ARG, "argv is empty", headjack_spec_set_init(spec, argv, 0, &err));

    /* Values the setters check themselves. */
    FAILS(HEADJACK_INVALID_BASE, "Upper/Case", headjack_spec_set_base(spec, "Upper/Case", &err));
    FAILS(HEADJACK_INVALID_BASE, "does-not-exist",
          headjack_spec_set_base(spec, "./does-not-exist/Dockerfile", &err));
    FAILS(NUL_ARG, "sometimes", headjack_spec_set_pull_policy(spec, "sometimes", &err));
    /* Setters are order-free: a workspace target or build options may come before the
       workspace or the Dockerfile base (spawn checks that they fit, see engine.c). */
    OK(headjack_spec_set_workspace_target(spec, "/w", &err));
    OK(headjack_spec_set_build_arg(spec, "K", "V", &err));
    OK(headjack_spec_set_build_target(spec, "dev", &err));
    OK(headjack_spec_set_build_platform(spec, "linux/amd64", &err));
    OK(headjack_spec_set_build_no_cache(spec, true, &err));
    FAILS(NUL_ARG, "path is NULL", headjack_spec_set_dockerfile(spec, NULL, NULL, &err));
    FAILS(NUL_ARG, "context is empty", headjack_spec_set_dockerfile(spec, "Dockerfile", "", &err));
    OK(headjack_spec_set_dockerfile(spec, "ci/Containerfile", "..", &err));
    FAILS(NUL_ARG, "key is NULL", headjack_spec_set_build_arg(spec, NULL, "V", &err));
    FAILS(NUL_ARG, "stage is NULL", headjack_spec_set_build_target(spec, NULL, &err));
    OK(headjack_spec_set_build_arg(spec, "K", "V", &err));
    OK(headjack_spec_set_build_target(spec, "dev", &err));
    OK(headjack_spec_set_build_platform(spec, "linux/amd64", &err));
    OK(headjack_spec_set_build_no_cache(spec, true, &err));
    OK(headjack_spec_set_base(spec, "alpine", &err));
    OK(headjack_spec_set_build_arg(spec, "K", "V", &err));

    /* Valid calls. */
    OK(headjack_spec_set_base(spec, "", &err));
    OK(headjack_spec_set_base(spec, "localhost/headjack-test/busybox:latest", &err));
    OK(headjack_spec_set_base_dir(spec, "/tmp", &err));
    OK(headjack_spec_set_name(spec, "abi-test", &err));
    OK(headjack_spec_set_workspace(spec, "/tmp", true, &err));
    OK(headjack_spec_set_workspace_target(spec, "/w", &err));
    OK(headjack_spec_add_bind_mount(spec, "/tmp", "/host-tmp", true, &err));
    OK(headjack_spec_add_volume_mount(spec, "vol", "/vol", false, &err));
    OK(headjack_spec_add_tmpfs_mount(spec, "/scratch", 1 << 20, &err));
    OK(headjack_spec_set_env(spec, "K", "V", &err));
    OK(headjack_spec_set_user(spec, "1000:1000", &err));
    OK(headjack_spec_set_workdir(spec, "/w", &err));
    OK(headjack_spec_set_label(spec, "io.headjack.test", "1", &err));
    OK(headjack_spec_set_cpus(spec, 0.5, &err));
    OK(headjack_spec_set_memory(spec, 64u << 20, &err));
    OK(headjack_spec_set_pids(spec, 64, &err));
    OK(headjack_spec_set_network(spec, "none", &err));
    OK(headjack_spec_set_runtime(spec, "runc", &err));
    OK(headjack_spec_set_pull_policy(spec, "never", &err));
    OK(headjack_spec_set_platform(spec, "linux/amd64", &err));
    OK(headjack_spec_set_expires_after_ms(spec, 60000, &err));
    OK(headjack_spec_set_readiness(spec, argv, 1, 5000, 50, &err));
    OK(headjack_spec_set_progress(spec, NULL, NULL, &err));
    OK(headjack_spec_set_hardened(spec, false, &err));
    OK(headjack_spec_set_hardened(spec, true, &err));
    OK(headjack_spec_set_hardened(spec, false, &err)); /* switches turn off again */
    OK(headjack_spec_set_detached(spec, false, &err));
    OK(headjack_spec_set_detached(spec, true, &err));
    OK(headjack_spec_set_detached(spec, false, &err));
    OK(headjack_spec_set_init(spec, argv, 1, &err));
    headjack_spec_free(spec);
}

static void command_arguments(void) {
    const char bad_utf8[] = {(char)0xc3, (char)0x28, 0};
    const char *argv[] = {"sh", "-c", "echo hi"};
    const char *with_null[] = {"sh", NULL};
    const char *with_bad[] = {"sh", bad_utf8};
    const char *empty_prog[] = {""};
    headjack_command *cmd = NULL;

    FAILS(NUL_ARG, "argv is NULL", headjack_command_new(NULL, 1, &cmd, &err));
    FAILS(NUL_ARG, "argv is empty", headjack_command_new(argv, 0, &cmd, &err));
    FAILS(NUL_ARG, "argv[1] is NULL", headjack_command_new(with_null, 2, &cmd, &err));
    FAILS(NUL_ARG, "argv[1] is not valid UTF-8", headjack_command_new(with_bad, 2, &cmd, &err));
    FAILS(NUL_ARG, "argv[0]", headjack_command_new(empty_prog, 1, &cmd, &err));
    FAILS(NUL_ARG, "out is NULL", headjack_command_new(argv, 3, NULL, &err));
    CHECK(cmd == NULL); /* out-parameters are written only on success */

    FAILS(NUL_ARG, "cmd is NULL", headjack_command_set_env(NULL, "K", "V", &err));
    FAILS(NUL_ARG, "cmd is NULL", headjack_command_set_workdir(NULL, "/", &err));
    FAILS(NUL_ARG, "cmd is NULL", headjack_command_set_user(NULL, "root", &err));
    FAILS(NUL_ARG, "cmd is NULL", headjack_command_set_stdin(NULL, (const uint8_t *)"x", 1, &err));
    FAILS(NUL_ARG, "cmd is NULL", headjack_command_set_interactive(NULL, true, &err));
    FAILS(NUL_ARG, "cmd is NULL", headjack_command_set_tty(NULL, true, &err));
    FAILS(NUL_ARG, "cmd is NULL", headjack_command_set_timeout_ms(NULL, 10, &err));
    FAILS(NUL_ARG, "cmd is NULL", headjack_command_set_max_output(NULL, 10, &err));

    OK(headjack_command_new(argv, 3, &cmd, &err));
    CHECK(cmd != NULL);
    FAILS(NUL_ARG, "key is NULL", headjack_command_set_env(cmd, NULL, "V", &err));
    FAILS(NUL_ARG, "value is not valid UTF-8", headjack_command_set_env(cmd, "K", bad_utf8, &err));
    FAILS(NUL_ARG, "dir is NULL", headjack_command_set_workdir(cmd, NULL, &err));
    FAILS(NUL_ARG, "user is NULL", headjack_command_set_user(cmd, NULL, &err));
    FAILS(NUL_ARG, "data is NULL", headjack_command_set_stdin(cmd, NULL, 4, &err));
    OK(headjack_command_set_stdin(cmd, NULL, 0, &err));
    OK(headjack_command_set_stdin(cmd, (const uint8_t *)"in\0put", 6, &err));
    OK(headjack_command_set_env(cmd, "K", "V", &err));
    OK(headjack_command_set_workdir(cmd, "/tmp", &err));
    OK(headjack_command_set_user(cmd, "root", &err));
    OK(headjack_command_set_interactive(cmd, false, &err));
    OK(headjack_command_set_tty(cmd, false, &err));
    OK(headjack_command_set_timeout_ms(cmd, 1000, &err));
    OK(headjack_command_set_max_output(cmd, 1024, &err));
    headjack_command_free(cmd);
}

static void handles_null(void) {
    headjack_client *client = NULL;
    headjack_instance *inst = NULL;
    headjack_instance_list *list = NULL;
    headjack_string_list *strings = NULL;
    headjack_instance_info *info = NULL;
    headjack_output *output = NULL;
    headjack_exec *exec = NULL;
    headjack_chunk *chunk = NULL;
    headjack_exit_status st;
    headjack_buffer buf = {NULL, 0};
    headjack_state state;
    char *s = NULL;
    const char *argv[] = {"true"};
    headjack_command *cmd = NULL;
    headjack_spec *spec = headjack_spec_new();
    OK(headjack_command_new(argv, 1, &cmd, &err));

    /* Client. */
    FAILS(NUL_ARG, "out is NULL", headjack_client_connect(NULL, NULL, &err));
    FAILS(NUL_ARG, "host is not valid UTF-8",
          headjack_client_connect("unix:///\xff", &client, &err));
    CHECK(headjack_client_info(NULL) == NULL);
    FAILS(NUL_ARG, "client is NULL", headjack_client_spawn(NULL, spec, &inst, &err));
    FAILS(NUL_ARG, "client is NULL", headjack_client_resolve(NULL, spec, &s, &err));
    FAILS(NUL_ARG, "client is NULL", headjack_client_attach(NULL, "x", &inst, &err));
    FAILS(NUL_ARG, "client is NULL", headjack_client_list(NULL, &list, &err));
    FAILS(NUL_ARG, "client is NULL", headjack_client_sweep(NULL, &strings, &err));
    FAILS(NUL_ARG, "client is NULL", headjack_client_prune_images(NULL, 1, &strings, &err));
    headjack_image_list *images = NULL;
    FAILS(NUL_ARG, "client is NULL", headjack_client_images(NULL, &images, &err));
    CHECK(images == NULL);
    FAILS(NUL_ARG, "client is NULL", headjack_client_set_timeout_ms(NULL, 1000, &err));
    FAILS(NUL_ARG, "client is NULL", headjack_client_set_timeout_ms(NULL, 0, &err));

    /* Pool. */
    headjack_pool *pool = NULL;
    FAILS(NUL_ARG, "client is NULL", headjack_pool_new(NULL, spec, 1, &pool, &err));
    FAILS(NUL_ARG, "pool is NULL", headjack_pool_take(NULL, &inst, &err));
    CHECK(headjack_pool_ready(NULL) == 0);
    CHECK(pool == NULL);

    /* Instance. */
    const uint8_t data[] = {1, 2, 3};
    CHECK(headjack_instance_id(NULL) == NULL);
    CHECK(headjack_instance_container_id(NULL) == NULL);
    CHECK(headjack_instance_name(NULL) == NULL);
    CHECK(headjack_instance_image(NULL) == NULL);
    FAILS(NUL_ARG, "instance is NULL", headjack_instance_keep(NULL, &err));
    FAILS(NUL_ARG, "instance is NULL", headjack_instance_exec(NULL, cmd, &output, &err));
    FAILS(NUL_ARG, "instance is NULL",
          headjack_instance_exec_stream(NULL, cmd, NULL, NULL, &st, &err));
    FAILS(NUL_ARG, "instance is NULL", headjack_instance_exec_start(NULL, cmd, &exec, &err));
    FAILS(NUL_ARG, "instance is NULL",
          headjack_instance_write_file(NULL, "/tmp/x", data, 3, 0644, &err));
    FAILS(NUL_ARG, "instance is NULL", headjack_instance_read_file(NULL, "/tmp/x", &buf, &err));
    FAILS(NUL_ARG, "instance is NULL", headjack_instance_copy_in(NULL, "/tmp", "/tmp", &err));
    FAILS(NUL_ARG, "instance is NULL",
          headjack_instance_copy_out(NULL, "/tmp", "/tmp", &strings, &err));
    FAILS(NUL_ARG, "instance is NULL", headjack_instance_logs(NULL, &buf, &err));
    FAILS(NUL_ARG, "instance is NULL", headjack_instance_stop(NULL, 0, &err));
    FAILS(NUL_ARG, "instance is NULL", headjack_instance_kill(NULL, NULL, &err));
    FAILS(NUL_ARG, "instance is NULL", headjack_instance_start(NULL, &err));
    FAILS(NUL_ARG, "instance is NULL", headjack_instance_restart(NULL, 0, &err));
    FAILS(NUL_ARG, "instance is NULL", headjack_instance_pause(NULL, &err));
    FAILS(NUL_ARG, "instance is NULL", headjack_instance_resume(NULL, &err));
    FAILS(NUL_ARG, "instance is NULL", headjack_instance_status(NULL, &state, NULL, &err));
    FAILS(NUL_ARG, "instance is NULL", headjack_instance_commit(NULL, "a/b:c", &s, &err));
    FAILS(NUL_ARG, "instance is NULL", headjack_instance_remove(NULL, &err));
    FAILS(NUL_ARG, "instance is NULL", headjack_instance_inspect(NULL, &info, &err));

    /* Exec. */
    FAILS(NUL_ARG, "exec is NULL", headjack_exec_next(NULL, &chunk, &err));
    FAILS(NUL_ARG, "exec is NULL",
          headjack_exec_write_stdin(NULL, (const uint8_t *)"x", 1, &err));
    FAILS(NUL_ARG, "exec is NULL", headjack_exec_close_stdin(NULL, &err));
    FAILS(NUL_ARG, "exec is NULL", headjack_exec_resize(NULL, 24, 80, &err));
    FAILS(NUL_ARG, "exec is NULL", headjack_exec_wait(NULL, &st, &err));

    CHECK(client == NULL && inst == NULL && list == NULL && strings == NULL && info == NULL &&
          output == NULL && exec == NULL && chunk == NULL && s == NULL && buf.data == NULL);
    headjack_command_free(cmd);
    headjack_spec_free(spec);
}

/* Connecting to a socket that does not exist fails cleanly (and starts the runtime). */
static void unreachable_engine(void) {
    headjack_client *client = NULL;
    FAILS(HEADJACK_ENGINE_UNAVAILABLE, "/nonexistent/headjack-abi.sock",
          headjack_client_connect("unix:///nonexistent/headjack-abi.sock", &client, &err));
    CHECK(client == NULL);
}

/* After fork(), a child of a process that used headjack gets HEADJACK_FORKED. */
static void fork_is_detected(void) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        failures++;
        return;
    }
    if (pid == 0) {
        headjack_client *client = NULL;
        headjack_error *err = NULL;
        headjack_status s = headjack_client_connect("unix:///nonexistent/x.sock", &client, &err);
        int ok = s == HEADJACK_FORKED && err != NULL &&
                 strstr(headjack_error_message(err), "fork") != NULL;
        if (!ok) {
            fprintf(stderr, "child: got %s: %s\n", headjack_status_name(s),
                    err ? headjack_error_message(err) : "(no error)");
        }
        headjack_error_free(err);
        /* Pure ABI functions keep working. */
        ok = ok && headjack_abi_version() == HEADJACK_ABI_VERSION;
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void run(void) {
    versions();
    status_names();
    error_accessors_with_null();
    frees_accept_null();
    null_err_is_allowed();
    spec_arguments();
    command_arguments();
    handles_null();
    unreachable_engine();
    fork_is_detected();
}

int main(void) { return run_checks("abi", run); }
