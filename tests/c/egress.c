/*
 * Egress test of libheadjack: an instance spawned with an egress allow-list (fail-closed, through
 * headjack's egress proxy), a denied request that shows up in the decision log, a live change of
 * the policy, bad policies refused with HEADJACK_INVALID_ARGUMENT, and an instance without a
 * policy refusing set_egress with HEADJACK_CONFLICT.
 *
 * Environment: HEADJACK_TEST_BUSYBOX, HEADJACK_TEST_DOCKER_HOST, HEADJACK_TEST_RUN (as for
 * engine.c; headjack-ffi/tests/c_programs.rs sets them, runs this program and cleans up).
 */
#include "check.h"

#define MUST(...)                                                                        \
    do {                                                                                 \
        headjack_error *err = NULL;                                                      \
        headjack_status s_ = __VA_ARGS__;                                                \
        if (!ok_or_report(__LINE__, #__VA_ARGS__, s_, err)) return;                      \
    } while (0)

static const char *env_or(const char *name, const char *fallback) {
    const char *v = getenv(name);
    return v && v[0] ? v : fallback;
}

static headjack_spec *fixture_spec(void) {
    headjack_spec *spec = headjack_spec_new();
    headjack_error *err = NULL;
    headjack_spec_set_base(spec, env_or("HEADJACK_TEST_BUSYBOX", "localhost/headjack-test/busybox:latest"), &err);
    headjack_spec_set_label(spec, "io.headjack.test", "1", &err);
    headjack_spec_set_label(spec, "io.headjack.test.run", env_or("HEADJACK_TEST_RUN", "c"), &err);
    return spec;
}

/* Runs `sh -c script` in `inst`; its exit code (-1 on failure, reported). */
static int sh(const headjack_instance *inst, const char *script) {
    const char *argv[] = {"sh", "-c", script};
    headjack_command *cmd = NULL;
    headjack_output *out = NULL;
    headjack_error *err = NULL;
    if (!ok_or_report(__LINE__, "command_new", headjack_command_new(argv, 3, &cmd, &err), err)) return -1;
    err = NULL;
    headjack_status s = headjack_instance_exec(inst, cmd, &out, &err);
    headjack_command_free(cmd);
    if (!ok_or_report(__LINE__, "exec", s, err)) return -1;
    int code = (int)out->exit_code;
    headjack_output_free(out);
    return code;
}

/* Whether the egress log of `inst` has a decision for `host` with `allowed`. */
static int logged(const headjack_instance *inst, const char *host, int allowed) {
    headjack_string_list *log = NULL;
    headjack_error *err = NULL;
    if (!ok_or_report(__LINE__, "egress_log", headjack_instance_egress_log(inst, &log, &err), err)) return 0;
    char want_host[256], want_allowed[32];
    snprintf(want_host, sizeof want_host, "\"host\":\"%s\"", host);
    snprintf(want_allowed, sizeof want_allowed, "\"allowed\":%s", allowed ? "true" : "false");
    int found = 0;
    for (size_t i = 0; i < log->len; i++) {
        if (strstr(log->items[i], want_host) && strstr(log->items[i], want_allowed)) found = 1;
    }
    headjack_string_list_free(log);
    return found;
}

static void body(void) {
    headjack_client *client = NULL;
    headjack_instance *inst = NULL;
    headjack_instance *plain = NULL;
    MUST(headjack_client_connect(getenv("HEADJACK_TEST_DOCKER_HOST"), &client, &err));

    /* Bad policies fail the spawn with a message naming the pattern. */
    const char *bad[] = {"https://pypi.org"};
    headjack_spec *spec = fixture_spec();
    OK(headjack_spec_set_egress(spec, true, bad, 1, &err));
    FAILS(HEADJACK_INVALID_ARGUMENT, "https://pypi.org", headjack_client_spawn(client, spec, &inst, &err));
    headjack_spec_free(spec);
    spec = fixture_spec();
    OK(headjack_spec_set_egress(spec, true, NULL, 0, &err));
    OK(headjack_spec_set_network(spec, "none", &err));
    FAILS(HEADJACK_INVALID_ARGUMENT, "network `none`", headjack_client_spawn(client, spec, &inst, &err));
    headjack_spec_free(spec);
    spec = fixture_spec();
    FAILS(HEADJACK_INVALID_ARGUMENT, "patterns is NULL", headjack_spec_set_egress(spec, true, NULL, 2, &err));
    headjack_spec_free(spec);

    /* An allow-list: a name outside it is refused by the proxy and logged. */
    const char *allow[] = {"allowed.test"};
    spec = fixture_spec();
    MUST(headjack_spec_set_egress(spec, true, allow, 1, &err));
    MUST(headjack_client_spawn(client, spec, &inst, &err));
    headjack_spec_free(spec);
    CHECK(sh(inst, "wget -q -O- http://denied.test/ 2>&1 | grep -q '403 Forbidden by headjack egress policy'") == 0);
    CHECK(sh(inst, "http_proxy= timeout 5 wget -q -O- http://192.0.2.1/") != 0);
    CHECK(logged(inst, "denied.test", 0));

    /* A live change: the next request follows it. */
    const char *now[] = {"denied.test"};
    OK(headjack_instance_set_egress(inst, true, now, 1, &err));
    CHECK(sh(inst, "wget -q -O- http://allowed.test/ 2>&1 | grep -q '403 Forbidden by headjack egress policy'") == 0);
    CHECK(logged(inst, "allowed.test", 0));
    FAILS(HEADJACK_INVALID_ARGUMENT, "a..b", headjack_instance_set_egress(inst, false, (const char *[]){"a..b"}, 1, &err));
    MUST(headjack_instance_remove(inst, &err));
    headjack_instance_free(inst);

    /* Without a policy there is nothing to change. */
    spec = fixture_spec();
    MUST(headjack_client_spawn(client, spec, &plain, &err));
    headjack_spec_free(spec);
    FAILS(HEADJACK_CONFLICT, "without an egress policy", headjack_instance_set_egress(plain, true, allow, 1, &err));
    headjack_string_list *log = NULL;
    FAILS(HEADJACK_CONFLICT, "without an egress policy", headjack_instance_egress_log(plain, &log, &err));
    headjack_instance_free(plain);
    headjack_client_free(client);
}

int main(void) { return run_checks("egress", body); }
