/*
 * Build secrets through the C API on a real engine: a Dockerfile mounting three secrets (from
 * memory, a file and an environment variable) is built and spawned; the step saw each value
 * (their sha256 digests are in the image) and no progress line carried one. NULL arguments and
 * an unset variable give clear errors.
 *
 * Environment: HEADJACK_TEST_BUSYBOX, HEADJACK_TEST_DOCKER_HOST, HEADJACK_TEST_RUN (as for
 * engine.c); headjack-ffi/tests/c_programs.rs sets them, runs this program and removes the image
 * it prints as `cleanup-image: <ref>`.
 */
#include <unistd.h>

#include "check.h"

#define MUST(...)                                                                        \
    do {                                                                                 \
        headjack_error *err = NULL;                                                      \
        headjack_status s_ = __VA_ARGS__;                                                \
        if (!ok_or_report(__LINE__, #__VA_ARGS__, s_, err)) return;                      \
    } while (0)

static int contains(const uint8_t *hay, size_t n, const uint8_t *needle, size_t m) {
    for (size_t i = 0; m <= n && i <= n - m; i++)
        if (memcmp(hay + i, needle, m) == 0) return 1;
    return 0;
}

static const char *env_or(const char *name, const char *fallback) {
    const char *v = getenv(name);
    return v && v[0] ? v : fallback;
}

struct seen {
    int lines;
    int leaked;
    char values[3][96];
};

static void on_progress(void *userdata, const headjack_progress *event) {
    struct seen *seen = userdata;
    if (event->kind != HEADJACK_PROGRESS_BUILD || !event->line) return;
    seen->lines++;
    for (int i = 0; i < 3; i++)
        if (strstr(event->line, seen->values[i])) seen->leaked++;
}

static void body(void) {
    const char *run = env_or("HEADJACK_TEST_RUN", "c");
    struct seen seen = {0, 0, {{0}}};
    snprintf(seen.values[0], sizeof seen.values[0], "memory-secret-%s", run);
    snprintf(seen.values[1], sizeof seen.values[1], "file-secret-%s", run);
    snprintf(seen.values[2], sizeof seen.values[2], "env-secret-%s", run);

    char dir[] = "/tmp/headjack-c-secrets-XXXXXX", df[96], file[96];
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        failures++;
        return;
    }
    snprintf(df, sizeof df, "%s/Dockerfile", dir);
    snprintf(file, sizeof file, "%s/secret.txt", dir);
    FILE *f = fopen(df, "w");
    if (!f) {
        perror("fopen");
        failures++;
        return;
    }
    fprintf(f,
            "FROM %s\nRUN --mount=type=secret,id=mem --mount=type=secret,id=file "
            "--mount=type=secret,id=env sha256sum /run/secrets/mem /run/secrets/file "
            "/run/secrets/env > /proof && echo %s\n",
            env_or("HEADJACK_TEST_BUSYBOX", "localhost/headjack-test/busybox:latest"), run);
    fclose(f);
    f = fopen(file, "w");
    if (!f) {
        perror("fopen");
        failures++;
        return;
    }
    fputs(seen.values[1], f);
    fclose(f);
    setenv("HEADJACK_C_TEST_SECRET", seen.values[2], 1);

    headjack_client *client = NULL;
    MUST(headjack_client_connect(getenv("HEADJACK_TEST_DOCKER_HOST"), &client, &err));
    headjack_spec *spec = headjack_spec_new();

    /* Bad arguments. */
    FAILS(HEADJACK_INVALID_ARGUMENT, "spec is NULL",
          headjack_spec_set_build_secret(NULL, "id", (const uint8_t *)"x", 1, &err));
    FAILS(HEADJACK_INVALID_ARGUMENT, "id is NULL",
          headjack_spec_set_build_secret(spec, NULL, (const uint8_t *)"x", 1, &err));
    FAILS(HEADJACK_INVALID_ARGUMENT, "data is NULL",
          headjack_spec_set_build_secret(spec, "id", NULL, 3, &err));
    FAILS(HEADJACK_INVALID_ARGUMENT, "path is NULL",
          headjack_spec_set_build_secret_file(spec, "id", NULL, &err));
    FAILS(HEADJACK_INVALID_ARGUMENT, "name is NULL",
          headjack_spec_set_build_secret_env(spec, "id", NULL, &err));

    /* An unset variable is named when the build needs it. */
    MUST(headjack_spec_set_base(spec, df, &err));
    MUST(headjack_spec_set_label(spec, "io.headjack.test", "1", &err));
    MUST(headjack_spec_set_label(spec, "io.headjack.test.run", run, &err));
    MUST(headjack_spec_set_build_secret(spec, "mem", (const uint8_t *)seen.values[0],
                                        strlen(seen.values[0]), &err));
    MUST(headjack_spec_set_build_secret_file(spec, "file", file, &err));
    MUST(headjack_spec_set_build_secret_env(spec, "env", "HEADJACK_C_TEST_UNSET", &err));
    char *resolved = NULL;
    FAILS(HEADJACK_INVALID_ARGUMENT, "HEADJACK_C_TEST_UNSET",
          headjack_client_resolve(client, spec, &resolved, &err));
    CHECK(resolved == NULL);

    /* The real thing. */
    MUST(headjack_spec_set_build_secret_env(spec, "env", "HEADJACK_C_TEST_SECRET", &err));
    MUST(headjack_spec_set_progress(spec, on_progress, &seen, &err));
    headjack_instance *inst = NULL;
    MUST(headjack_client_spawn(client, spec, &inst, &err));
    headjack_spec_free(spec);
    remove(file);
    remove(df);
    rmdir(dir);
    printf("cleanup-image: %s\n", headjack_instance_image(inst));
    headjack_buffer proof = {NULL, 0};
    MUST(headjack_instance_read_file(inst, "/proof", &proof, &err));
    /* sha256 of each value, computed by the image's own sha256sum through an exec. */
    for (int i = 0; i < 3; i++) {
        char script[256];
        snprintf(script, sizeof script, "printf %%s '%s' | sha256sum | cut -c1-64", seen.values[i]);
        const char *argv[] = {"sh", "-c", script};
        headjack_command *cmd = NULL;
        headjack_output *out = NULL;
        MUST(headjack_command_new(argv, 3, &cmd, &err));
        MUST(headjack_instance_exec(inst, cmd, &out, &err));
        headjack_command_free(cmd);
        CHECK(out->stdout_data.len >= 64);
        CHECK(out->stdout_data.len >= 64 &&
              contains(proof.data, proof.len, out->stdout_data.data, 64));
        headjack_output_free(out);
    }
    headjack_buffer_free(&proof);
    CHECK(seen.lines > 0);
    CHECK(seen.leaked == 0);
    printf("secrets: %d build lines, %d carried a value\n", seen.lines, seen.leaked);
    headjack_instance_free(inst);
    headjack_client_free(client);
    unsetenv("HEADJACK_C_TEST_SECRET");
}

int main(void) {
    return run_checks("secrets", body);
}
