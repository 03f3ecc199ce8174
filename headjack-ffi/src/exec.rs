//! Running commands: collected (`headjack_instance_exec`), pulled chunk by chunk
//! (`headjack_instance_exec_start` + `headjack_exec_next`), or pushed to a callback
//! (`headjack_instance_exec_stream`).

use std::ffi::{CString, c_char, c_void};
use std::ptr;

use headjack_core::exec::{Chunk, ExitStatus, SharedExec, StreamKind};

use crate::args::{arg_bytes, cstring};
use crate::blocking::{block_on, finish};
use crate::boundary::ffi_panic_boundary;
use crate::command::{cmd_ref, headjack_command};
use crate::error::{fallible, headjack_error};
use crate::handle::{
    Castable, OwnershipArc, OwnershipBox, arc_out, box_out, free_arc, free_box, out_ref, try_arc,
    write_opt,
};
use crate::instance::{headjack_instance, inst};
use crate::memory::headjack_buffer;
use crate::status::{Failure, headjack_status};

/// Which output stream a chunk came from.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum headjack_stream {
    /// Standard output (and all output of a command with a terminal).
    HEADJACK_STDOUT = 1,
    /// Standard error.
    HEADJACK_STDERR = 2,
}

impl From<StreamKind> for headjack_stream {
    fn from(k: StreamKind) -> Self {
        match k {
            StreamKind::Stdout => headjack_stream::HEADJACK_STDOUT,
            StreamKind::Stderr => headjack_stream::HEADJACK_STDERR,
        }
    }
}

/// How a command ended.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct headjack_exit_status {
    /// The exit code (128 + N when signal N ended it); 127 when the command does not exist; -1
    /// if it is unknown (the engine never said, or the command could not be killed).
    pub code: i64,
    /// The command ran past its timeout and was killed (see `kill_failed`).
    pub timed_out: bool,
    /// The memory limit (`headjack_spec_set_memory`) killed the command or a process it
    /// waited for.
    pub oom_killed: bool,
    /// The command timed out, but headjack could not confirm it was killed: processes may still
    /// run in the container (the image has no `/bin/sh`, or the command dropped headjack's
    /// marker from its environment, e.g. with `env -i`). Removing the instance ends them.
    pub kill_failed: bool,
}

impl From<ExitStatus> for headjack_exit_status {
    fn from(s: ExitStatus) -> Self {
        headjack_exit_status {
            code: s.code,
            timed_out: s.timed_out,
            oom_killed: s.oom_killed,
            kill_failed: s.kill_failed,
        }
    }
}

/// The collected result of `headjack_instance_exec`. Owned by the caller, freed (with its
/// buffers) by `headjack_output_free`.
#[repr(C)]
#[derive(Debug)]
pub struct headjack_output {
    /// The exit code; 127 when the command does not exist; -1 if it is unknown. A non-zero exit
    /// is not an error of the call.
    pub exit_code: i64,
    /// Standard output, up to the bound (`headjack_command_set_max_output`). Owned by the output.
    pub stdout_data: headjack_buffer,
    /// Standard error, up to the bound. Owned by the output.
    pub stderr_data: headjack_buffer,
    /// Standard output went past the bound; the rest was discarded.
    pub stdout_truncated: bool,
    /// Standard error went past the bound; the rest was discarded.
    pub stderr_truncated: bool,
    /// The command ran past its timeout and was killed (see `kill_failed`).
    pub timed_out: bool,
    /// The memory limit killed the command or a process it waited for.
    pub oom_killed: bool,
    /// The command timed out, but headjack could not confirm it was killed: processes may still
    /// run in the container (see `headjack_exit_status.kill_failed`).
    pub kill_failed: bool,
    /// How the command ended, in words: `"killed: out of memory"`, `"timed out"`, `"killed by
    /// signal N"` or `"exited with code N"`. Owned by the output; never NULL.
    pub exit_reason: *const c_char,
}

impl Castable for headjack_output {
    type Ownership = OwnershipBox;
    type RustType = OutputBox;
}

/// A `headjack_output` with the bytes its buffers point into (the output must stay first).
#[repr(C)]
pub(crate) struct OutputBox {
    output: headjack_output,
    _stdout: Box<[u8]>,
    _stderr: Box<[u8]>,
    _exit_reason: CString,
}

/// How a command ended, in the core's words (`ExitStatus::exit_reason`).
pub(crate) fn reason_of(code: i64, timed_out: bool, oom_killed: bool) -> String {
    ExitStatus {
        code,
        timed_out,
        oom_killed,
        kill_failed: false,
    }
    .exit_reason()
}

/// A buffer viewing `bytes`, which the caller keeps alive.
fn view(bytes: &mut [u8]) -> headjack_buffer {
    headjack_buffer {
        data: if bytes.is_empty() {
            ptr::null_mut()
        } else {
            bytes.as_mut_ptr()
        },
        len: bytes.len(),
    }
}

fn output_out(o: headjack_core::ExecOutput) -> *mut headjack_output {
    let exit_reason = cstring(&o.exit_reason());
    let mut stdout = o.stdout.into_boxed_slice();
    let mut stderr = o.stderr.into_boxed_slice();
    box_out::<headjack_output>(OutputBox {
        output: headjack_output {
            exit_code: o.exit_code,
            stdout_data: view(&mut stdout),
            stderr_data: view(&mut stderr),
            stdout_truncated: o.stdout_truncated,
            stderr_truncated: o.stderr_truncated,
            timed_out: o.timed_out,
            oom_killed: o.oom_killed,
            kill_failed: o.kill_failed,
            exit_reason: exit_reason.as_ptr(),
        },
        // The boxed slices' bytes (and the string's) do not move when the boxes do.
        _stdout: stdout,
        _stderr: stderr,
        _exit_reason: exit_reason,
    })
}

/// Runs `cmd` in `instance` and collects its output (bounded, see
/// `headjack_command_set_max_output`).
///
/// On success `*out` is a new output the caller frees with `headjack_output_free`. A non-zero
/// exit, a timeout or an out-of-memory kill is a success of the call: look at `exit_code`,
/// `timed_out`, `oom_killed` and `kill_failed` (or `exit_reason`, the same in words).
///
/// Thread-safe: several commands may run in one instance at once. Blocks until the command ends.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_instance_exec(
    instance: *const headjack_instance,
    cmd: *const headjack_command,
    out: *mut *mut headjack_output,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let instance = inst(instance)?;
        let cmd = cmd_ref(cmd)?;
        let out = out_ref(out, "out")?;
        let o = block_on(instance.inner.exec(cmd.exec()))??;
        *out = output_out(o);
        Ok(())
    })
}

/// Frees an output and its buffers. NULL is ignored.
///
/// Not to be called twice, nor while another thread uses the object.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_output_free(output: *mut headjack_output) {
    ffi_panic_boundary! { free_box(output) }
}

/// Receives a command's output as it arrives: `len` bytes at `data` from `stream`. `data` is
/// valid only during the call: copy what you keep. Called on the thread that called
/// `headjack_instance_exec_stream`, before it returns; it must not call headjack functions (they
/// fail with `HEADJACK_CONFLICT`).
pub type headjack_output_cb = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        stream: headjack_stream,
        data: *const u8,
        len: usize,
    ),
>;

/// Runs `cmd` in `instance`, calling `cb(userdata, stream, data, len)` on this thread for each
/// piece of output as it arrives, and returns when the command has ended.
///
/// On success `*out_status` (when not NULL) holds how it ended. `userdata` is passed through
/// untouched (from Go: a `cgo.Handle`).
///
/// Thread-safe. Blocks until the command ends.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_instance_exec_stream(
    instance: *const headjack_instance,
    cmd: *const headjack_command,
    cb: headjack_output_cb,
    userdata: *mut c_void,
    out_status: *mut headjack_exit_status,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let instance = inst(instance)?;
        let cmd = cmd_ref(cmd)?;
        let cb = cb.ok_or_else(|| Failure::invalid("cb is NULL"))?;
        let status = block_on(async {
            let mut stream = instance.inner.exec_stream(cmd.exec()).await?;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                // SAFETY: the caller's callback, with the caller's userdata; the bytes live
                // until the call returns.
                unsafe {
                    cb(
                        userdata,
                        chunk.stream.into(),
                        chunk.data.as_ptr(),
                        chunk.data.len(),
                    )
                };
            }
            stream.wait().await
        })??;
        write_opt(out_status, || status.into());
        Ok(())
    })
}

/// A running command whose output is pulled with `headjack_exec_next`. Created by
/// `headjack_instance_exec_start`, freed by `headjack_exec_free` (which kills the command if it
/// still runs).
///
/// Thread-safe: one thread may write to standard input, resize or free the exec while another
/// pulls output; concurrent `headjack_exec_next` calls take turns.
pub struct headjack_exec {
    _private: [u8; 0],
}

impl Castable for headjack_exec {
    // Shared: a thread blocked in `headjack_exec_next` keeps the command's state alive while
    // another thread frees the handle (which wakes it).
    type Ownership = OwnershipArc;
    type RustType = SharedExec;
    const ENGINE_STATE: bool = true;
}

/// One piece of output, owned by the caller and freed by `headjack_chunk_free`.
#[repr(C)]
#[derive(Debug)]
pub struct headjack_chunk {
    /// Where it came from.
    pub stream: headjack_stream,
    /// The bytes (arbitrary binary data, not NUL-terminated); never NULL.
    pub data: *const u8,
    /// How many bytes `data` holds (at least 1).
    pub len: usize,
}

impl Castable for headjack_chunk {
    type Ownership = OwnershipBox;
    type RustType = ChunkBox;
}

/// A `headjack_chunk` with the bytes it points into (the chunk must stay first).
#[repr(C)]
pub(crate) struct ChunkBox {
    chunk: headjack_chunk,
    _owner: Chunk,
}

/// Starts `cmd` in `instance` and returns at once; pull its output with `headjack_exec_next`,
/// then get its exit status with `headjack_exec_wait`.
///
/// On success `*out` is a new exec the caller frees with `headjack_exec_free`.
///
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_instance_exec_start(
    instance: *const headjack_instance,
    cmd: *const headjack_command,
    out: *mut *mut headjack_exec,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let instance = inst(instance)?;
        let cmd = cmd_ref(cmd)?;
        let out = out_ref(out, "out")?;
        let stream = block_on(instance.inner.exec_stream(cmd.exec()))??;
        *out = arc_out::<headjack_exec>(SharedExec::new(stream)).cast_mut();
        Ok(())
    })
}

/// Moves a stream to C as a new `headjack_exec`.
pub(crate) fn exec_out(stream: headjack_core::ExecStream) -> *mut headjack_exec {
    arc_out::<headjack_exec>(SharedExec::new(stream)).cast_mut()
}

/// Blocks until the next piece of output (or the end) and returns it.
///
/// On success `*out_chunk` is a new chunk the caller frees with `headjack_chunk_free`, or NULL
/// when the output has ended (then call `headjack_exec_wait`). Calling it again after the end,
/// or after `headjack_exec_wait`, keeps returning NULL. When another thread frees the exec
/// meanwhile, the call returns at once with NULL (and the exec must not be used again).
///
/// Thread-safe: concurrent calls on one exec take turns; another thread may write to its
/// standard input, resize it or free it meanwhile.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_exec_next(
    exec: *const headjack_exec,
    out_chunk: *mut *mut headjack_chunk,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let exec = try_arc(exec, "exec")?;
        let out = out_ref(out_chunk, "out_chunk")?;
        let next = block_on(exec.next())??;
        *out = next.map_or(ptr::null_mut(), |chunk| {
            box_out::<headjack_chunk>(ChunkBox {
                chunk: headjack_chunk {
                    stream: chunk.stream.into(),
                    data: chunk.data.as_ptr(),
                    len: chunk.data.len(),
                },
                _owner: chunk,
            })
        });
        Ok(())
    })
}

/// Frees a chunk. NULL is ignored.
///
/// Not to be called twice, nor while another thread uses the object.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_chunk_free(chunk: *mut headjack_chunk) {
    ffi_panic_boundary! { free_box(chunk) }
}

/// Writes `data[0..len]` to the standard input of a command started with
/// `headjack_command_set_interactive(cmd, true)`. Blocks until written. `HEADJACK_CONFLICT`
/// when its standard input is not open (the command is not interactive, or its input was
/// closed); `HEADJACK_IO` when the command stopped reading.
///
/// Thread-safe: may run while another thread blocks in `headjack_exec_next`.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_exec_write_stdin(
    exec: *const headjack_exec,
    data: *const u8,
    len: usize,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let exec = try_arc(exec, "exec")?;
        let data = arg_bytes(data, len, "data")?;
        Ok(block_on(exec.write(data))??)
    })
}

/// Closes the standard input of an interactive command (it reads end-of-file; on a terminal,
/// the ^D its line discipline turns into end-of-file). Idempotent; does nothing for a command
/// that is not interactive.
///
/// Thread-safe: may run while another thread blocks in `headjack_exec_next`.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_exec_close_stdin(
    exec: *const headjack_exec,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let exec = try_arc(exec, "exec")?;
        Ok(block_on(exec.close_stdin())??)
    })
}

/// Resizes the terminal of a command started with `headjack_command_set_tty(cmd, true)` to
/// `rows` × `cols` (both at least 1), e.g. on SIGWINCH. After the command ended the engine may
/// answer `HEADJACK_NOT_FOUND` or `HEADJACK_CONFLICT`.
///
/// Thread-safe: may run while another thread blocks in `headjack_exec_next`.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_exec_resize(
    exec: *const headjack_exec,
    rows: u16,
    cols: u16,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let exec = try_arc(exec, "exec")?;
        Ok(block_on(exec.resize(rows, cols))??)
    })
}

/// Closes standard input (if open), discards output not yet pulled, waits for the command to
/// end and returns how it ended in `*out_status`. Calling it again returns the same status.
/// `HEADJACK_CONFLICT` when another thread freed the exec before the command ended (it was
/// killed and has no status).
///
/// Thread-safe: waits for a concurrent `headjack_exec_next` to return first.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_exec_wait(
    exec: *const headjack_exec,
    out_status: *mut headjack_exit_status,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let exec = try_arc(exec, "exec")?;
        let out = out_ref(out_status, "out_status")?;
        let status = block_on(exec.wait())??;
        *out = status.into();
        Ok(())
    })
}

/// Frees an exec. A command still running is killed inside the container (with everything it
/// started); the call returns once the kill went through. NULL is ignored.
///
/// May be called while other threads are blocked in `headjack_exec_next`, `headjack_exec_wait`
/// or `headjack_exec_write_stdin` on this exec: they return at once (`headjack_exec_next` with
/// end of output, `headjack_exec_wait` with `HEADJACK_CONFLICT`), and the memory goes when the
/// last of them has returned. Calls must not start after it (nor be starting concurrently with
/// it), and it must not be called twice.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_exec_free(exec: *mut headjack_exec) {
    ffi_panic_boundary! {
        if let Some(exec) = free_arc(exec.cast_const()) {
            // Kills the command and wakes the threads blocked on it; they hold their own
            // references.
            finish(async move { exec.close().await });
        }
    }
}
