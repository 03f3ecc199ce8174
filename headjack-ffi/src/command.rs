//! `headjack_command`: one command to run in an instance.

use std::ffi::c_char;
use std::sync::Mutex;
use std::time::Duration;

use headjack_core::Exec;

use crate::args::{arg_argv, arg_bytes, arg_str};
use crate::boundary::ffi_panic_boundary;
use crate::error::{fallible, headjack_error};
use crate::handle::{Castable, OwnershipBox, box_out, free_box, out_ref, try_ref};
use crate::status::{Failure, headjack_status};

/// A command to run in an instance: its argument vector (no shell involved) and options.
/// Create it with `headjack_command_new`, configure it with the `headjack_command_set_*`
/// setters, run it (as often as you like) with `headjack_instance_exec`,
/// `headjack_instance_exec_start` or `headjack_instance_exec_stream`, free it with
/// `headjack_command_free`.
///
/// A command may be used from several threads (calls on it are serialised), but not freed while
/// in use.
pub struct headjack_command {
    _private: [u8; 0],
}

impl Castable for headjack_command {
    type Ownership = OwnershipBox;
    type RustType = CommandHandle;
}

/// What a `headjack_command` holds: the core command, which every setter updates in place.
pub(crate) struct CommandHandle {
    exec: Mutex<Exec>,
}

impl CommandHandle {
    /// The core command, ready to run.
    pub(crate) fn exec(&self) -> Exec {
        self.exec.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn map(&self, f: impl FnOnce(Exec) -> Exec) -> Result<(), Failure> {
        let mut exec = self.exec.lock().unwrap_or_else(|p| p.into_inner());
        *exec = f(std::mem::replace(
            &mut *exec,
            Exec::new(Vec::<String>::new()),
        ));
        Ok(())
    }
}

pub(crate) fn cmd_ref<'a>(cmd: *const headjack_command) -> Result<&'a CommandHandle, Failure> {
    try_ref(cmd, "cmd")
}

/// A new command running `argv[0..argc]` (each a NUL-terminated UTF-8 string; `argv[0]` is the
/// program, looked up on the container's `PATH`). `argc == 0`, a NULL element or invalid UTF-8
/// fails with `HEADJACK_INVALID_ARGUMENT`. The strings are copied.
///
/// On success `*out` is a new command the caller frees with `headjack_command_free`.
///
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_command_new(
    argv: *const *const c_char,
    argc: usize,
    out: *mut *mut headjack_command,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let argv = arg_argv(argv, argc, "argv")?;
        let out = out_ref(out, "out")?;
        if argv[0].is_empty() {
            return Err(Failure::new(
                headjack_status::HEADJACK_INVALID_ARGUMENT,
                "argv[0] (the program) is empty",
            ));
        }
        *out = box_out::<headjack_command>(CommandHandle {
            exec: Mutex::new(Exec::new(argv)),
        });
        Ok(())
    })
}

/// Frees a command. NULL is ignored. Commands already started are not affected.
///
/// Not to be called twice, nor while another thread uses the object.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_command_free(cmd: *mut headjack_command) {
    ffi_panic_boundary! { free_box(cmd) }
}

/// Sets environment variable `key` to `value` for this command (on top of the instance's).
///
/// Thread-safe: calls on one command are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_command_set_env(
    cmd: *mut headjack_command,
    key: *const c_char,
    value: *const c_char,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let cmd = cmd_ref(cmd)?;
        let key = arg_str(key, "key")?;
        let value = arg_str(value, "value")?;
        cmd.map(|e| e.env(key, value))
    })
}

/// Runs the command in directory `dir` instead of the instance's working directory.
///
/// Thread-safe: calls on one command are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_command_set_workdir(
    cmd: *mut headjack_command,
    dir: *const c_char,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let cmd = cmd_ref(cmd)?;
        let dir = arg_str(dir, "dir")?;
        cmd.map(|e| e.workdir(dir))
    })
}

/// Runs the command as `user` (`name`, `uid` or `uid:gid`) instead of the instance's user.
///
/// Thread-safe: calls on one command are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_command_set_user(
    cmd: *mut headjack_command,
    user: *const c_char,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let cmd = cmd_ref(cmd)?;
        let user = arg_str(user, "user")?;
        cmd.map(|e| e.user(user))
    })
}

/// Feeds `data[0..len]` (copied now) to the command's standard input, then closes it. `data`
/// may be NULL when `len` is 0 (the command reads EOF at once).
///
/// Thread-safe: calls on one command are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_command_set_stdin(
    cmd: *mut headjack_command,
    data: *const u8,
    len: usize,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let cmd = cmd_ref(cmd)?;
        let data = arg_bytes(data, len, "data")?.to_vec();
        cmd.map(|e| e.stdin(data))
    })
}

/// Keeps standard input open for `headjack_exec_write_stdin` / `headjack_exec_close_stdin`
/// (only for `headjack_instance_exec_start`).
///
/// Thread-safe: calls on one command are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_command_set_interactive(
    cmd: *mut headjack_command,
    interactive: bool,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || cmd_ref(cmd)?.map(|e| e.interactive(interactive)))
}

/// Allocates a terminal: standard output and error then arrive merged as standard output.
///
/// Thread-safe: calls on one command are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_command_set_tty(
    cmd: *mut headjack_command,
    tty: bool,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || cmd_ref(cmd)?.map(|e| e.tty(tty)))
}

/// Kills the command, and everything it started, inside the container after `ms` milliseconds;
/// the result then says it timed out. 0 means no timeout (the default).
///
/// Thread-safe: calls on one command are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_command_set_timeout_ms(
    cmd: *mut headjack_command,
    ms: u64,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        cmd_ref(cmd)?.map(|e| e.timeout((ms > 0).then(|| Duration::from_millis(ms))))
    })
}

/// Bounds the output `headjack_instance_exec` collects, per stream (default 16 MiB); the rest is
/// discarded and the `*_truncated` flag set. Streaming is not bounded.
///
/// Thread-safe: calls on one command are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_command_set_max_output(
    cmd: *mut headjack_command,
    bytes: usize,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || cmd_ref(cmd)?.map(|e| e.max_output(bytes)))
}
