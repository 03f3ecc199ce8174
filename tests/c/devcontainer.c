/*
 * A devcontainer.json base through the C API on a real engine: the base string names the
 * fixture tests/fixtures/devcontainer/unsupported (a definition with unsupported keys) and
 * tests/fixtures/devcontainer/hooks; hooks ran before spawn returned, the exec runs in the
 * workspace folder, warnings reach the progress callback and the instance; a failing hook is
 * HEADJACK_EXEC_FAILED naming the hook; privileged is refused unless allowed.
 *
 * Environment: HEADJACK_TEST_DOCKER_HOST, HEADJACK_TEST_RUN (as for engine.c),
 * HEADJACK_TEST_FIXTURES (the tests/fixtures/devcontainer folder); c_programs.rs sets them.
 */
#include "check.h"

#define MUST(...)                                                                        \
    do {                                                                                 \
        headjack_error *err = NULL;                                                      \
        headjack_status s_ = __VA_ARGS__;                                                \
        if (!ok_or_report(__LINE__, #__VA_ARGS__, s_, err)) return;                      \
    } while (0)

struct seen {
    int warnings;
    int hook_lines;
};

static void on_progress(void *userdata, const headjack_progress *event) {
    struct seen *seen = userdata;
    if (event->kind == HEADJACK_PROGRESS_WARNING && event->line) seen->warnings++;
    if (event->kind == HEADJACK_PROGRESS_HOOK && event->line &&
        strcmp(event->image, "onCreateCommand") == 0 &&
        strcmp(event->line, "before the failure") == 0)
        seen->hook_lines++;
}

static headjack_spec *spec_for(const char *fixture, struct seen *seen) {
    const char *dir = getenv("HEADJACK_TEST_FIXTURES");
    const char *run = getenv("HEADJACK_TEST_RUN");
    char base[1024];
    snprintf(base, sizeof base, "%s/%s", dir ? dir : "tests/fixtures/devcontainer", fixture);
    headjack_spec *spec = headjack_spec_new();
    headjack_error *err = NULL;
    if (spec == NULL ||
        headjack_spec_set_base(spec, base, &err) != HEADJACK_OK ||
        headjack_spec_set_label(spec, "io.headjack.test", "1", &err) != HEADJACK_OK ||
        headjack_spec_set_label(spec, "io.headjack.test.run", run ? run : "c", &err) != HEADJACK_OK ||
        headjack_spec_set_progress(spec, on_progress, seen, &err) != HEADJACK_OK) {
        fprintf(stderr, "spec for %s: %s\n", fixture, headjack_error_message(err));
        headjack_error_free(err);
        headjack_spec_free(spec);
        failures++;
        return NULL;
    }
    return spec;
}

static void body(void) {
    headjack_client *client = NULL;
    MUST(headjack_client_connect(getenv("HEADJACK_TEST_DOCKER_HOST"), &client, &err));

    /* Hooks ran; the command starts in the workspace folder. */
    struct seen seen = {0, 0};
    headjack_spec *spec = spec_for("hooks/.devcontainer", &seen);
    if (!spec) return;
    headjack_instance *inst = NULL;
    MUST(headjack_client_spawn(client, spec, &inst, &err));
    headjack_spec_free(spec);
    const char *argv[] = {"sh", "-c", "cat /tmp/hooks.log; pwd"};
    headjack_command *cmd = NULL;
    headjack_output *out = NULL;
    MUST(headjack_command_new(argv, 3, &cmd, &err));
    MUST(headjack_instance_exec(inst, cmd, &out, &err));
    headjack_command_free(cmd);
    const char *want = "onCreate\nupdateContent\npostStart\npostAttach\n/workspaces/hooks\n";
    CHECK(out->stdout_data.len == strlen(want) &&
          memcmp(out->stdout_data.data, want, strlen(want)) == 0);
    headjack_output_free(out);
    CHECK(headjack_instance_warning_count(inst) == 0);
    CHECK(headjack_instance_warning(inst, 0) == NULL);
    headjack_instance_free(inst);

    /* Warnings: in the callback and on the instance. */
    spec = spec_for("unsupported", &seen);
    if (!spec) return;
    MUST(headjack_client_spawn(client, spec, &inst, &err));
    headjack_spec_free(spec);
    size_t n = headjack_instance_warning_count(inst);
    CHECK(n > 0);
    CHECK((size_t)seen.warnings >= n);
    int compose = 0;
    for (size_t i = 0; i < n; i++)
        if (strstr(headjack_instance_warning(inst, i), "dockerComposeFile")) compose = 1;
    CHECK(compose);
    CHECK(headjack_instance_warning(inst, n) == NULL);
    printf("devcontainer: %zu warnings, e.g. %s\n", n, headjack_instance_warning(inst, 0));
    headjack_instance_free(inst);

    /* A failing hook: its output reached the callback, the error names it. */
    spec = spec_for("bad/failing-hook", &seen);
    if (!spec) return;
    inst = NULL;
    FAILS(HEADJACK_EXEC_FAILED, "postCreateCommand", headjack_client_spawn(client, spec, &inst, &err));
    CHECK(inst == NULL);
    CHECK(seen.hook_lines == 1);
    headjack_spec_free(spec);

    /* privileged: refused unless allowed. */
    spec = spec_for("bad/privileged", &seen);
    if (!spec) return;
    FAILS(HEADJACK_INVALID_BASE, "privileged", headjack_client_spawn(client, spec, &inst, &err));
    FAILS(HEADJACK_INVALID_ARGUMENT, NULL, headjack_spec_set_allow_privileged(NULL, true, &err));
    MUST(headjack_spec_set_allow_privileged(spec, true, &err));
    headjack_spec_free(spec);
    headjack_client_free(client);
}

int main(void) {
    return run_checks("devcontainer", body);
}
