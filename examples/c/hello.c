/*
 * hello.c: the smallest useful headjack program in C.
 *
 * It connects to the container engine, spawns an environment from a base, runs one command in
 * it, prints the output, and frees everything (freeing the instance removes its container).
 *
 * Build (from the repository root, after `cargo build -p headjack-ffi`):
 *
 *     cc -Iinclude examples/c/hello.c target/debug/libheadjack.a -lpthread -ldl -lm -o hello
 *
 * Run:
 *
 *     ./hello                      # the default base (images/base/Dockerfile, built once)
 *     ./hello debian:bookworm-slim # a registry image, pulled if missing
 *     ./hello ./Dockerfile         # a Dockerfile, built once per content
 *
 * Every fallible headjack call returns a headjack_status and, on failure, fills the
 * headjack_error ** you pass last: a code and a message saying what went wrong and what to do.
 */
#include <stdio.h>
#include <stdlib.h>

#include "headjack.h"

/* Prints a failed call's error, frees it, and says whether the call failed. */
static int failed(const char *what, headjack_status status, headjack_error *err) {
    if (status == HEADJACK_OK) return 0;
    fprintf(stderr, "%s failed (%s): %s\n", what, headjack_status_name(status),
            headjack_error_message(err));
    headjack_error_free(err);
    return 1;
}

int main(int argc, char **argv) {
    const char *base = argc > 1 ? argv[1] : "";
    headjack_client *client = NULL;
    headjack_spec *spec = NULL;
    headjack_instance *env = NULL;
    headjack_command *cmd = NULL;
    headjack_output *out = NULL;
    headjack_error *err = NULL;
    int rc = 1;

    /* The header and the library must agree. */
    if (headjack_abi_version() != HEADJACK_ABI_VERSION) {
        fprintf(stderr, "libheadjack ABI %u, header ABI %d\n", headjack_abi_version(),
                HEADJACK_ABI_VERSION);
        return 1;
    }

    /* NULL: DOCKER_HOST, else the Docker socket, else Podman's. */
    if (failed("connect", headjack_client_connect(NULL, &client, &err), err)) goto done;

    spec = headjack_spec_new();
    if (failed("set_base", headjack_spec_set_base(spec, base, &err), err)) goto done;
    if (failed("set_network", headjack_spec_set_network(spec, "none", &err), err)) goto done;
    /* An optional label, so that tests can find what this example creates. */
    const char *label = getenv("HEADJACK_EXAMPLE_LABEL");
    if (label && failed("set_label",
                        headjack_spec_set_label(spec, "io.headjack.test.run", label, &err), err))
        goto done;

    if (failed("spawn", headjack_client_spawn(client, spec, &env, &err), err)) goto done;
    printf("spawned %s from %s\n", headjack_instance_id(env), headjack_instance_image(env));

    const char *args[] = {"sh", "-c", "echo hello from headjack; uname -s"};
    if (failed("command", headjack_command_new(args, 3, &cmd, &err), err)) goto done;
    if (failed("exec", headjack_instance_exec(env, cmd, &out, &err), err)) goto done;

    /* Output is bytes (not NUL-terminated): print it with its length. */
    printf("exit code %lld\n%.*s", (long long)out->exit_code, (int)out->stdout_data.len,
           (const char *)out->stdout_data.data);
    rc = out->exit_code == 0 ? 0 : 1;

done:
    /* One _free per handle; all of them accept NULL. */
    headjack_output_free(out);
    headjack_command_free(cmd);
    headjack_instance_free(env); /* removes the container */
    headjack_spec_free(spec);
    headjack_client_free(client);
    return rc;
}
