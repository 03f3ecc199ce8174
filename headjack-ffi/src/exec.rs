//! Running commands: collected (`headjack_instance_exec`), pulled chunk by chunk
//! (`headjack_instance_exec_start` + `headjack_exec_next`), or pushed to a callback
//! (`headjack_instance_exec_stream`).

use std::ffi::c_void;
use std::sync::Mutex;

use headjack_core::ExecStream;
use headjack_core::exec::{Chunk, ExecResizer, ExecStdin, ExitStatus, StreamKind};

use crate::boundary::{arg_bytes, arg_mut, arg_ref, block_on, guard, guard_or, runtime};
use crate::command::headjack_command;
use crate::error::{Failure, headjack_error, headjack_status};
use crate::instance::headjack_instance;
use crate::memory::headjack_buffer;

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
    /// The exit code; 127 when the command does not exist; -1 if the engine never said.
    pub code: i64,
    /// The command ran past its timeout and was killed (with everything it started).
    pub timed_out: bool,
}

impl From<ExitStatus> for headjack_exit_status {
    fn from(s: ExitStatus) -> Self {
        headjack_exit_status {
            code: s.code,
            timed_out: s.timed_out,
        }
    }
}

/// The collected result of `headjack_instance_exec`. Owned by the caller, freed (with its
/// buffers) by `headjack_output_free`.
#[repr(C)]
#[derive(Debug)]
pub struct headjack_output {
    /// The exit code; 127 when the command does not exist; -1 if the engine never said. A
    /// non-zero exit is not an error of the call.
    pub exit_code: i64,
    /// Standard output, up to the bound (`headjack_command_set_max_output`). Owned by the output.
    pub stdout_data: headjack_buffer,
    /// Standard error, up to the bound. Owned by the output.
    pub stderr_data: headjack_buffer,
    /// Standard output went past the bound; the rest was discarded.
    pub stdout_truncated: bool,
    /// Standard error went past the bound; the rest was discarded.
    pub stderr_truncated: bool,
    /// The command ran past its timeout and was killed.
    pub timed_out: bool,
}

/// Runs `cmd` in `instance` and collects its output (bounded, see
/// `headjack_command_set_max_output`).
///
/// On success `*out` is a new output the caller frees with `headjack_output_free`. A non-zero
/// exit or a timeout is a success of the call: look at `exit_code` and `timed_out`.
///
/// Thread-safe: several commands may run in one instance at once. Blocks until the command ends.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_instance_exec(
    instance: *const headjack_instance,
    cmd: *const headjack_command,
    out: *mut *mut headjack_output,
    err: *mut *mut headjack_error,
) -> headjack_status {
    guard(err, || {
        let instance = arg_ref(instance, "instance")?;
        let cmd = arg_ref(cmd, "cmd")?;
        let out = arg_mut(out, "out")?;
        let o = block_on(instance.inner.exec(cmd.exec()))??;
        *out = Box::into_raw(Box::new(headjack_output {
            exit_code: o.exit_code,
            stdout_data: headjack_buffer::from_vec(o.stdout),
            stderr_data: headjack_buffer::from_vec(o.stderr),
            stdout_truncated: o.stdout_truncated,
            stderr_truncated: o.stderr_truncated,
            timed_out: o.timed_out,
        }));
        Ok(())
    })
}

/// Frees an output and its buffers. NULL is ignored.
///
/// Not to be called twice, nor while another thread uses the object.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_output_free(output: *mut headjack_output) {
    guard_or((), || {
        if !output.is_null() {
            // SAFETY: created by headjack_instance_exec, freed once.
            let mut o = unsafe { Box::from_raw(output) };
            o.stdout_data.release();
            o.stderr_data.release();
        }
    })
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
    guard(err, || {
        let instance = arg_ref(instance, "instance")?;
        let cmd = arg_ref(cmd, "cmd")?;
        let Some(cb) = cb else {
            return Err(Failure::new(
                headjack_status::HEADJACK_INVALID_ARGUMENT,
                "cb is NULL",
            ));
        };
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
        // SAFETY: NULL or writable.
        if let Some(out) = unsafe { out_status.as_mut() } {
            *out = status.into();
        }
        Ok(())
    })
}

/// A running command whose output is pulled with `headjack_exec_next`. Created by
/// `headjack_instance_exec_start`, freed by `headjack_exec_free` (which kills the command if it
/// still runs).
///
/// Thread-safe: one thread may write to standard input while another pulls output; concurrent
/// `headjack_exec_next` calls are serialised. Not to be freed while in use.
pub struct headjack_exec {
    stream: Mutex<Option<ExecStream>>,
    stdin: tokio::sync::Mutex<Stdin>,
    resizer: ExecResizer,
    status: Mutex<Option<ExitStatus>>,
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

/// A `headjack_chunk` with the bytes it points into (the chunk must stay first).
#[repr(C)]
struct ChunkBox {
    chunk: headjack_chunk,
    _owner: Chunk,
}

/// The standard input of a running command.
enum Stdin {
    /// The command was not started interactive.
    Never,
    /// Open for writing.
    Open(ExecStdin),
    /// Closed by the caller.
    Closed,
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
    guard(err, || {
        let instance = arg_ref(instance, "instance")?;
        let cmd = arg_ref(cmd, "cmd")?;
        let out = arg_mut(out, "out")?;
        let mut stream = block_on(instance.inner.exec_stream(cmd.exec()))??;
        let stdin = stream.take_stdin().map_or(Stdin::Never, Stdin::Open);
        *out = Box::into_raw(Box::new(headjack_exec {
            resizer: stream.resizer(),
            stream: Mutex::new(Some(stream)),
            stdin: tokio::sync::Mutex::new(stdin),
            status: Mutex::new(None),
        }));
        Ok(())
    })
}

/// Blocks until the next piece of output (or the end) and returns it.
///
/// On success `*out_chunk` is a new chunk the caller frees with `headjack_chunk_free`, or NULL
/// when the output has ended (then call `headjack_exec_wait`). Calling it again after the end,
/// or after `headjack_exec_wait`, keeps returning NULL.
///
/// Thread-safe: concurrent calls on one exec are serialised; another thread may write to its standard input meanwhile.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_exec_next(
    exec: *mut headjack_exec,
    out_chunk: *mut *mut headjack_chunk,
    err: *mut *mut headjack_error,
) -> headjack_status {
    guard(err, || {
        let exec = arg_ref(exec, "exec")?;
        let out = arg_mut(out_chunk, "out_chunk")?;
        let mut guard = exec.stream.lock().unwrap_or_else(|p| p.into_inner());
        let Some(stream) = guard.as_mut() else {
            *out = std::ptr::null_mut();
            return Ok(());
        };
        let next = block_on(stream.next())?;
        *out = match next {
            None => std::ptr::null_mut(),
            Some(chunk) => {
                let chunk = chunk?;
                let boxed = Box::new(ChunkBox {
                    chunk: headjack_chunk {
                        stream: chunk.stream.into(),
                        data: chunk.data.as_ptr(),
                        len: chunk.data.len(),
                    },
                    _owner: chunk,
                });
                Box::into_raw(boxed) as *mut headjack_chunk
            }
        };
        Ok(())
    })
}

/// Frees a chunk. NULL is ignored.
///
/// Not to be called twice, nor while another thread uses the object.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_chunk_free(chunk: *mut headjack_chunk) {
    guard_or((), || {
        if !chunk.is_null() {
            // SAFETY: created by headjack_exec_next as a ChunkBox, freed once.
            drop(unsafe { Box::from_raw(chunk as *mut ChunkBox) });
        }
    })
}

/// Writes `data[0..len]` to the standard input of a command started with
/// `headjack_command_set_interactive(cmd, true)`. Blocks until written.
/// `HEADJACK_INVALID_ARGUMENT` when the command is not interactive or its input was closed.
///
/// Thread-safe: may run while another thread blocks in `headjack_exec_next`.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_exec_write_stdin(
    exec: *mut headjack_exec,
    data: *const u8,
    len: usize,
    err: *mut *mut headjack_error,
) -> headjack_status {
    guard(err, || {
        let exec = arg_ref(exec, "exec")?;
        let data = arg_bytes(data, len, "data")?;
        block_on(async {
            match &mut *exec.stdin.lock().await {
                Stdin::Open(s) => s.write(data).await.map_err(Failure::from),
                Stdin::Closed => Err(Failure::new(
                    headjack_status::HEADJACK_INVALID_ARGUMENT,
                    "this command's standard input was closed by headjack_exec_close_stdin",
                )),
                Stdin::Never => Err(not_interactive()),
            }
        })?
    })
}

/// Closes the standard input of an interactive command (it reads EOF). Closing it twice is
/// harmless; `HEADJACK_INVALID_ARGUMENT` when the command is not interactive.
///
/// Thread-safe: may run while another thread blocks in `headjack_exec_next`.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_exec_close_stdin(
    exec: *mut headjack_exec,
    err: *mut *mut headjack_error,
) -> headjack_status {
    guard(err, || {
        let exec = arg_ref(exec, "exec")?;
        block_on(close_stdin(exec, true))?
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
    guard(err, || {
        let exec = arg_ref(exec, "exec")?;
        block_on(exec.resizer.resize(rows, cols))??;
        Ok(())
    })
}

fn not_interactive() -> Failure {
    Failure::new(
        headjack_status::HEADJACK_INVALID_ARGUMENT,
        "this command's standard input is not open for writing: start it after \
         headjack_command_set_interactive(cmd, true)",
    )
}

/// Closes standard input if open; `strict` makes "never interactive" an error.
async fn close_stdin(exec: &headjack_exec, strict: bool) -> Result<(), Failure> {
    let mut stdin = exec.stdin.lock().await;
    match std::mem::replace(&mut *stdin, Stdin::Closed) {
        Stdin::Open(s) => s.close().await.map_err(Failure::from),
        Stdin::Closed => Ok(()),
        Stdin::Never => {
            *stdin = Stdin::Never;
            if strict {
                Err(not_interactive())
            } else {
                Ok(())
            }
        }
    }
}

/// Closes standard input (if open), discards output not yet pulled, waits for the command to
/// end and returns how it ended in `*out_status`. Calling it again returns the same status.
///
/// Thread-safe: waits for a concurrent `headjack_exec_next` to return first.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_exec_wait(
    exec: *mut headjack_exec,
    out_status: *mut headjack_exit_status,
    err: *mut *mut headjack_error,
) -> headjack_status {
    guard(err, || {
        let exec = arg_ref(exec, "exec")?;
        let out = arg_mut(out_status, "out_status")?;
        let mut status = exec.status.lock().unwrap_or_else(|p| p.into_inner());
        if status.is_none() {
            let stream = exec.stream.lock().unwrap_or_else(|p| p.into_inner()).take();
            let Some(stream) = stream else {
                return Err(Failure::new(
                    headjack_status::HEADJACK_INTERNAL,
                    "the exec has no status and no stream",
                ));
            };
            let s = block_on(async {
                let _ = close_stdin(exec, false).await;
                stream.wait().await
            })??;
            *status = Some(s);
        }
        *out = status.expect("set above").into();
        Ok(())
    })
}

/// Frees an exec. A command still running is killed inside the container (with everything it
/// started). NULL is ignored.
///
/// Not to be called twice, nor while another thread uses the object.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_exec_free(exec: *mut headjack_exec) {
    guard_or((), || {
        if exec.is_null() {
            return;
        }
        // SAFETY: created by headjack_instance_exec_start, freed once.
        let exec = unsafe { Box::from_raw(exec) };
        if crate::boundary::forked() {
            std::mem::forget(exec);
            return;
        }
        match runtime() {
            Ok(rt) => {
                let _entered = rt.enter();
                drop(exec);
            }
            Err(_) => drop(exec),
        }
    })
}
