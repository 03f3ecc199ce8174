// C glue for main.go. A file with //export may only declare C functions in its preamble, so the
// functions that pass Go's exported callback to headjack live here.
#include "headjack.h"

#include "_cgo_export.h"

// Matches headjack_output_cb and forwards to the Go function goOutput; userdata carries a
// cgo.Handle (an integer, never a Go pointer).
static void on_output(void *userdata, headjack_stream stream, const uint8_t *data, size_t len) {
    goOutput((uintptr_t)userdata, stream, (uint8_t *)data, len);
}

headjack_status hj_exec_stream(const headjack_instance *inst, const headjack_command *cmd,
                               uintptr_t handle, headjack_exit_status *status,
                               headjack_error **err) {
    return headjack_instance_exec_stream(inst, cmd, on_output, (void *)handle, status, err);
}
