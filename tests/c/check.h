/*
 * Check macros shared by the C test programs, and the harness that runs a test body on its own
 * thread.
 *
 * Why a thread: LeakSanitizer treats every word on a live thread's stack as a possible pointer,
 * so a leaked object whose address lingers in a dead stack slot of main() would go unreported.
 * Running the body on a thread that is joined before the leak check leaves no such slots.
 */
#ifndef HEADJACK_TEST_CHECK_H
#define HEADJACK_TEST_CHECK_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "headjack.h"

static int failures = 0;


#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
            failures++;                                                                \
        }                                                                              \
    } while (0)

/* Checks that a call failed with `want`, that *err holds an error with the same code and a
 * message containing `needle` (when not NULL), and frees the error. */
#define FAILS(want, needle, ...)                                                         \
    do {                                                                                 \
        headjack_error *err = (headjack_error *)(uintptr_t)1;                            \
        headjack_status s_ = __VA_ARGS__;                                                \
        check_failure(__LINE__, #__VA_ARGS__, s_, want, needle, err);                    \
    } while (0)

static inline void check_failure(int line, const char *what, headjack_status got, headjack_status want,
                          const char *needle, headjack_error *err) {
    if (got != want) {
        fprintf(stderr, "line %d: %s\n  returned %u (%s), want %u (%s)\n", line, what, got,
                headjack_status_name(got), want, headjack_status_name(want));
        failures++;
    }
    if (err == NULL || err == (headjack_error *)(uintptr_t)1) {
        fprintf(stderr, "line %d: %s\n  did not set *err\n", line, what);
        failures++;
        return;
    }
    if (headjack_error_code(err) != got) {
        fprintf(stderr, "line %d: error code %u differs from status %u\n", line,
                headjack_error_code(err), got);
        failures++;
    }
    const char *msg = headjack_error_message(err);
    if (msg == NULL || msg[0] == '\0') {
        fprintf(stderr, "line %d: empty error message\n", line);
        failures++;
    } else if (needle != NULL && strstr(msg, needle) == NULL) {
        fprintf(stderr, "line %d: message %s\n  does not contain %s\n", line, msg, needle);
        failures++;
    }
    headjack_error_free(err);
}

#define OK(...)                                                                          \
    do {                                                                                 \
        headjack_error *err = (headjack_error *)(uintptr_t)1;                            \
        headjack_status s_ = __VA_ARGS__;                                                \
        if (s_ != HEADJACK_OK) {                                                         \
            fprintf(stderr, "line %d: %s\n  failed: %s: %s\n", __LINE__, #__VA_ARGS__,   \
                    headjack_status_name(s_), err ? headjack_error_message(err) : "?");  \
            failures++;                                                                  \
            headjack_error_free(err);                                                    \
        } else if (err != NULL) {                                                        \
            fprintf(stderr, "line %d: success left *err set\n", __LINE__);               \
            failures++;                                                                  \
        }                                                                                \
    } while (0)


/* Fails the test when `s` is not HEADJACK_OK, printing the error; frees the error. */
static inline int ok_or_report(int line, const char *what, headjack_status s, headjack_error *err) {
    if (s == HEADJACK_OK && err == NULL) return 1;
    fprintf(stderr, "line %d: %s\n  failed: %s: %s\n", line, what, headjack_status_name(s),
            err ? headjack_error_message(err) : "(no error object)");
    failures++;
    headjack_error_free(err);
    return 0;
}

static void (*test_body)(void);

static void *test_thread(void *arg) {
    (void)arg;
    test_body();
    return NULL;
}

/* Runs `body` on its own thread and returns the exit status for main(). */
static inline int run_checks(const char *name, void (*body)(void)) {
    pthread_t t;
    test_body = body;
    if (pthread_create(&t, NULL, test_thread, NULL) != 0 || pthread_join(t, NULL) != 0) {
        fprintf(stderr, "%s: cannot run the test thread\n", name);
        return 2;
    }
    if (failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, failures);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}

#endif
