//! Background processes: `headjack_instance_start_process` starts one, `headjack_process`
//! is a handle to it (by ID, also from another process after a restart), and
//! `headjack_instance_processes` lists them. The process outlives every handle: freeing a
//! `headjack_process` or a following `headjack_exec` leaves it running.

use std::ffi::{CString, c_char, c_int};
use std::ptr;

use headjack_core::instance::{Process, ProcessInfo};

use crate::args::cstring;
use crate::blocking::block_on;
use crate::boundary::ffi_panic_boundary;
use crate::command::{cmd_ref, headjack_command};
use crate::error::{fallible, headjack_error};
use crate::exec::{headjack_exec, headjack_exit_status};
use crate::handle::{
    Castable, OwnershipArc, OwnershipBox, arc_out, box_out, free_arc, free_box, out_ref, try_arc,
    try_ref,
};
use crate::instance::{headjack_instance, inst};
use crate::status::headjack_status;

/// A handle to a background process of an instance. Created by
/// `headjack_instance_start_process` or `headjack_instance_process`, freed by
/// `headjack_process_free`; freeing it does not affect the process.
///
/// Thread-safe: calls may run on one handle from several threads at once (a thread blocked in
/// `headjack_process_wait` while another kills the process).
pub struct headjack_process {
    _private: [u8; 0],
}

impl Castable for headjack_process {
    // Shared: a call in progress keeps its own reference while another thread frees the handle.
    type Ownership = OwnershipArc;
    type RustType = Process;
    const ENGINE_STATE: bool = true;
}

fn proc_arc(
    process: *const headjack_process,
) -> Result<std::sync::Arc<Process>, crate::status::Failure> {
    try_arc(process, "process")
}

/// Starts `cmd` in `instance` as a background process and returns at once: the process
/// outlives this call, its handle and this program. The instance's agent keeps its exit status
/// and the most recent part of its output (replayed by `headjack_process_attach`) until
/// `headjack_process_forget`.
///
/// On success `*out` is a new handle the caller frees with `headjack_process_free`.
/// `HEADJACK_UNSUPPORTED` for an instance without the in-container agent
/// (`headjack_spec_set_engine_exec`); `HEADJACK_EXEC_FAILED` when the command cannot start;
/// `HEADJACK_INVALID_ARGUMENT` for a command with standard input (a background process has
/// none: `headjack_command_set_stdin` / `_set_interactive`).
///
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_instance_start_process(
    instance: *const headjack_instance,
    cmd: *const headjack_command,
    out: *mut *mut headjack_process,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let instance = inst(instance)?;
        let cmd = cmd_ref(cmd)?;
        let out = out_ref(out, "out")?;
        let p = block_on(instance.inner.start_process(cmd.exec()))??;
        *out = arc_out::<headjack_process>(p).cast_mut();
        Ok(())
    })
}

/// A handle to background process `id` of `instance` (from `headjack_instance_processes` or
/// `headjack_process_id`), e.g. in another program after a restart. Returns at once: an unknown
/// ID fails on first use with `HEADJACK_NOT_FOUND`.
///
/// On success `*out` is a new handle the caller frees with `headjack_process_free`.
/// `HEADJACK_UNSUPPORTED` for an instance without the agent.
///
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_instance_process(
    instance: *const headjack_instance,
    id: u64,
    out: *mut *mut headjack_process,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let instance = inst(instance)?;
        let out = out_ref(out, "out")?;
        let p = instance.inner.process(id)?;
        *out = arc_out::<headjack_process>(p).cast_mut();
        Ok(())
    })
}

/// The process's ID, stable for the instance's life; 0 for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_process_id(process: *const headjack_process) -> u64 {
    ffi_panic_boundary! {
        try_ref(process, "process").map_or(0, |p| p.id())
    }
}

/// Follows the process's output: with `replay`, first what the agent kept (its most recent
/// part), then live output until the process ends. Pull it with `headjack_exec_next`; at the
/// end `headjack_exec_wait` gives the process's exit status. Freeing the exec only stops
/// following: the process goes on. Writing to its standard input or resizing it is
/// `HEADJACK_CONFLICT`.
///
/// On success `*out` is a new exec the caller frees with `headjack_exec_free`.
/// `HEADJACK_NOT_FOUND` for a process the agent does not know (forgotten).
///
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_process_attach(
    process: *const headjack_process,
    replay: bool,
    out: *mut *mut headjack_exec,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let p = proc_arc(process)?;
        let out = out_ref(out, "out")?;
        let stream = block_on(p.attach(replay))??;
        *out = crate::exec::exec_out(stream);
        Ok(())
    })
}

/// Sends `signal` (e.g. SIGTERM, SIGKILL from `<signal.h>`) to the process and everything it
/// started. `HEADJACK_INVALID_ARGUMENT` for a number that is not a signal; `HEADJACK_NOT_FOUND`
/// for a process the agent does not know.
///
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_process_kill(
    process: *const headjack_process,
    signal: c_int,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let p = proc_arc(process)?;
        let signal = headjack_core::instance::signal_number(&signal.to_string())?;
        Ok(block_on(p.kill(signal))??)
    })
}

/// Blocks until the process ended and writes how to `*out_status` (its exit code is 128 + N
/// when signal N ended it). Returns at once for an ended process. `HEADJACK_NOT_FOUND` for a
/// process the agent does not know.
///
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_process_wait(
    process: *const headjack_process,
    out_status: *mut headjack_exit_status,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let p = proc_arc(process)?;
        let out = out_ref(out_status, "out_status")?;
        let status = block_on(p.wait())??;
        *out = status.into();
        Ok(())
    })
}

/// Lets the agent drop what it keeps of an ended process (its status and output); it is no
/// longer listed. `HEADJACK_CONFLICT` while it runs; `HEADJACK_NOT_FOUND` for an unknown one.
///
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_process_forget(
    process: *const headjack_process,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let p = proc_arc(process)?;
        Ok(block_on(p.forget())??)
    })
}

/// Frees a process handle; the process is not affected. NULL is ignored.
///
/// May be called while other threads use the handle (their calls hold their own reference);
/// calls must not start after it, and it must not be called twice.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_process_free(process: *mut headjack_process) {
    ffi_panic_boundary! { drop(free_arc(process.cast_const())) }
}

/// What `headjack_instance_processes` reports about one background process. Its strings belong
/// to the list it is in.
#[repr(C)]
#[derive(Debug)]
pub struct headjack_process_info {
    /// Its ID (for `headjack_instance_process`).
    pub id: u64,
    /// Its PID in the container (0 if it never started).
    pub pid: u32,
    /// True while it runs; `status` is then meaningless.
    pub running: bool,
    /// How it ended, when `running` is false.
    pub status: headjack_exit_status,
    /// When it started, milliseconds since the epoch.
    pub started_ms: u64,
    /// Its argument vector (`argc` strings).
    pub argv: *const *const c_char,
    /// How many strings `argv` holds.
    pub argc: usize,
}

/// A list of background processes; owned by the caller and freed by
/// `headjack_process_list_free`. Immutable, so it may be read from any thread.
#[repr(C)]
#[derive(Debug)]
pub struct headjack_process_list {
    /// The processes; NULL when `len` is 0.
    pub items: *const headjack_process_info,
    /// How many processes `items` holds.
    pub len: usize,
}

impl Castable for headjack_process_list {
    type Ownership = OwnershipBox;
    type RustType = ProcessListBox;
}

/// A `headjack_process_list` with its storage (the list must stay first).
#[repr(C)]
pub(crate) struct ProcessListBox {
    list: headjack_process_list,
    _items: Vec<headjack_process_info>,
    _argvs: Vec<Box<[*const c_char]>>,
    _strings: Vec<CString>,
}

fn process_list_out(list: Vec<ProcessInfo>) -> *mut headjack_process_list {
    let mut strings = Vec::new();
    let mut argvs: Vec<Box<[*const c_char]>> = Vec::with_capacity(list.len());
    let mut items = Vec::with_capacity(list.len());
    for p in &list {
        // The CStrings' heap buffers do not move when `strings` grows.
        let argv: Box<[*const c_char]> = p
            .argv
            .iter()
            .map(|a| {
                strings.push(cstring(a));
                strings[strings.len() - 1].as_ptr()
            })
            .collect();
        let idle = headjack_exit_status {
            code: 0,
            timed_out: false,
            oom_killed: false,
            kill_failed: false,
        };
        items.push(headjack_process_info {
            id: p.id,
            pid: p.pid,
            running: p.status.is_none(),
            status: p.status.map_or(idle, Into::into),
            started_ms: p.started_ms,
            argv: if argv.is_empty() {
                ptr::null()
            } else {
                argv.as_ptr()
            },
            argc: argv.len(),
        });
        // The boxed slice's storage does not move when the box does.
        argvs.push(argv);
    }
    let out = headjack_process_list {
        items: if items.is_empty() {
            ptr::null()
        } else {
            items.as_ptr()
        },
        len: items.len(),
    };
    box_out::<headjack_process_list>(ProcessListBox {
        list: out,
        _items: items,
        _argvs: argvs,
        _strings: strings,
    })
}

/// The background processes of `instance` (running or ended, not yet forgotten), whoever
/// started them. On success `*out` is a new list the caller frees with
/// `headjack_process_list_free`. `HEADJACK_UNSUPPORTED` for an instance without the agent.
///
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_instance_processes(
    instance: *const headjack_instance,
    out: *mut *mut headjack_process_list,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let instance = inst(instance)?;
        let out = out_ref(out, "out")?;
        let list = block_on(instance.inner.processes())??;
        *out = process_list_out(list);
        Ok(())
    })
}

/// Frees a list of processes and everything it holds. NULL is ignored.
///
/// Not to be called twice, nor while another thread uses the object.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_process_list_free(list: *mut headjack_process_list) {
    ffi_panic_boundary! { free_box(list) }
}
