// Command headjack-example drives libheadjack from Go through cgo: it spawns an environment,
// runs a command whose output streams back through a callback (with a cgo.Handle as userdata),
// copies a file out of the environment, and frees everything (which removes the container).
//
// Build it after `cargo build -p headjack-ffi` (it links target/debug/libheadjack.a statically):
//
//	cd examples/go && go build -o headjack-example . && ./headjack-example [base]
//
// The base defaults to $HEADJACK_TEST_BUSYBOX, else localhost/headjack-test/busybox:latest.
package main

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#cgo LDFLAGS: ${SRCDIR}/../../target/debug/libheadjack.a -ldl -lpthread -lm
#include <stdlib.h>
#include "headjack.h"

headjack_status hj_exec_stream(const headjack_instance *inst, const headjack_command *cmd,
                               uintptr_t handle, headjack_exit_status *status,
                               headjack_error **err);
*/
import "C"

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/cgo"
	"unsafe"
)

// Error is a failed headjack call: its status code and message.
type Error struct {
	Code    uint32
	Name    string
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("headjack %s: %s", e.Name, e.Message) }

// check turns a status and its error object into a Go error, freeing the error object.
func check(status C.headjack_status, err *C.headjack_error) error {
	if status == C.HEADJACK_OK {
		return nil
	}
	e := &Error{Code: uint32(status), Name: C.GoString(C.headjack_status_name(C.uint32_t(status)))}
	if err != nil {
		e.Message = C.GoString(C.headjack_error_message(err))
		C.headjack_error_free(err)
	}
	return e
}

// cstrings copies Go strings to C; free them with freeAll.
func cstrings(ss []string) []*C.char {
	out := make([]*C.char, len(ss))
	for i, s := range ss {
		out[i] = C.CString(s)
	}
	return out
}

func freeAll(cs []*C.char) {
	for _, c := range cs {
		C.free(unsafe.Pointer(c))
	}
}

// output collects streamed output; the callback reaches it through a cgo.Handle.
type output struct {
	stdout, stderr bytes.Buffer
	chunks         int
}

//export goOutput
func goOutput(handle C.uintptr_t, stream C.headjack_stream, data *C.uint8_t, n C.size_t) {
	o := cgo.Handle(handle).Value().(*output)
	b := C.GoBytes(unsafe.Pointer(data), C.int(n)) // copy: data is valid only during the call
	o.chunks++
	if stream == C.HEADJACK_STDERR {
		o.stderr.Write(b)
	} else {
		o.stdout.Write(b)
	}
}

func run(base string) error {
	if got := C.headjack_abi_version(); got != C.HEADJACK_ABI_VERSION {
		return fmt.Errorf("libheadjack ABI %d, header ABI %d", got, C.HEADJACK_ABI_VERSION)
	}
	var err *C.headjack_error

	var host *C.char
	if h := os.Getenv("HEADJACK_TEST_DOCKER_HOST"); h != "" {
		host = C.CString(h)
		defer C.free(unsafe.Pointer(host))
	}
	var client *C.headjack_client
	if e := check(C.headjack_client_connect(host, &client, &err), err); e != nil {
		return e
	}
	defer C.headjack_client_free(client)

	spec := C.headjack_spec_new()
	defer C.headjack_spec_free(spec)
	settings := [][2]string{{"base", base}, {"label", os.Getenv("HEADJACK_TEST_RUN")}}
	for _, s := range settings {
		v := C.CString(s[1])
		var status C.headjack_status
		switch s[0] {
		case "base":
			status = C.headjack_spec_set_base(spec, v, &err)
		case "label":
			k := C.CString("io.headjack.test.run")
			status = C.headjack_spec_set_label(spec, k, v, &err)
			C.free(unsafe.Pointer(k))
		}
		C.free(unsafe.Pointer(v))
		if e := check(status, err); e != nil {
			return e
		}
	}

	var inst *C.headjack_instance
	if e := check(C.headjack_client_spawn(client, spec, &inst, &err), err); e != nil {
		return e
	}
	defer C.headjack_instance_free(inst) // removes the container
	fmt.Printf("spawned %s from %s\n", C.GoString(C.headjack_instance_id(inst)),
		C.GoString(C.headjack_instance_image(inst)))

	// Stream a command's output through the callback.
	argv := cstrings([]string{"sh", "-c",
		"for i in 1 2 3; do echo line $i; done; echo oops >&2; echo hello-from-go > /tmp/out.txt"})
	defer freeAll(argv)
	var cmd *C.headjack_command
	if e := check(C.headjack_command_new(&argv[0], C.size_t(len(argv)), &cmd, &err), err); e != nil {
		return e
	}
	defer C.headjack_command_free(cmd)
	collected := &output{}
	h := cgo.NewHandle(collected)
	defer h.Delete()
	var status C.headjack_exit_status
	if e := check(C.hj_exec_stream(inst, cmd, C.uintptr_t(h), &status, &err), err); e != nil {
		return e
	}
	fmt.Printf("exit %d after %d chunks\n%s", int64(status.code), collected.chunks, collected.stdout.String())
	if status.code != 0 || bool(status.timed_out) {
		return fmt.Errorf("command ended with %d (timed out: %v)", int64(status.code), bool(status.timed_out))
	}
	if collected.stdout.String() != "line 1\nline 2\nline 3\n" || collected.stderr.String() != "oops\n" {
		return fmt.Errorf("unexpected output %q / %q", collected.stdout.String(), collected.stderr.String())
	}

	// Copy the file the command wrote out to the host.
	dir, derr := os.MkdirTemp("", "headjack-go-")
	if derr != nil {
		return derr
	}
	defer os.RemoveAll(dir)
	src, dst := C.CString("/tmp/out.txt"), C.CString(dir)
	defer C.free(unsafe.Pointer(src))
	defer C.free(unsafe.Pointer(dst))
	if e := check(C.headjack_instance_copy_out(inst, src, dst, nil, &err), err); e != nil {
		return e
	}
	got, rerr := os.ReadFile(filepath.Join(dir, "out.txt"))
	if rerr != nil {
		return rerr
	}
	if string(got) != "hello-from-go\n" {
		return fmt.Errorf("copied file holds %q", got)
	}
	fmt.Printf("copied out: %s", got)

	// Errors carry a code and a message.
	missing := C.CString("/no/such/file")
	defer C.free(unsafe.Pointer(missing))
	e := check(C.headjack_instance_copy_out(inst, missing, dst, nil, &err), err)
	var he *Error
	if !errors.As(e, &he) || he.Code != C.HEADJACK_NOT_FOUND {
		return fmt.Errorf("copying a missing file: want not_found, got %v", e)
	}
	return nil
}

func main() {
	base := os.Getenv("HEADJACK_TEST_BUSYBOX")
	if len(os.Args) > 1 {
		base = os.Args[1]
	}
	if base == "" {
		base = "localhost/headjack-test/busybox:latest"
	}
	if err := run(base); err != nil {
		fmt.Fprintln(os.Stderr, "go example:", err)
		os.Exit(1)
	}
	fmt.Println("go example: ok")
}
