//! The FFI boundary: the process-wide runtime, the panic guard every exported function runs
//! its body in, and checked conversions of C arguments.

use std::ffi::{CStr, CString, OsStr, c_char};
use std::future::Future;
use std::os::unix::ffi::OsStrExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::ptr;
use std::sync::OnceLock;

use tokio::runtime::Runtime;

use crate::error::{Failure, headjack_error, headjack_status};

/// The runtime every call blocks on, with the PID of the process that created it.
struct Shared {
    runtime: Runtime,
    pid: u32,
}

/// Created on first use and never dropped: its worker threads live as long as the process, and
/// its memory stays reachable from this static (so LeakSanitizer does not report it).
static RUNTIME: OnceLock<Result<Shared, String>> = OnceLock::new();

/// The process-wide multi-thread runtime. Fails after `fork()` (tokio does not survive it)
/// and when the runtime cannot be built.
pub(crate) fn runtime() -> Result<&'static Runtime, Failure> {
    let shared = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("headjack-rt")
            .build()
            .map(|runtime| Shared {
                runtime,
                pid: std::process::id(),
            })
            .map_err(|e| e.to_string())
    });
    match shared {
        Ok(s) if s.pid == std::process::id() => Ok(&s.runtime),
        Ok(s) => Err(Failure::new(
            headjack_status::HEADJACK_FORKED,
            format!(
                "headjack was first used in process {} and this process ({}) is a fork() of it; \
                 its runtime does not survive fork: use headjack only in the parent, or only after \
                 exec() in the child",
                s.pid,
                std::process::id()
            ),
        )),
        Err(e) => Err(Failure::new(
            headjack_status::HEADJACK_INTERNAL,
            format!("cannot start headjack's runtime: {e}"),
        )),
    }
}

/// Whether this process is a fork of the one that created the runtime.
pub(crate) fn forked() -> bool {
    matches!(RUNTIME.get(), Some(Ok(s)) if s.pid != std::process::id())
}

/// Runs `fut` to completion on the calling thread (so callbacks it makes run there too).
pub(crate) fn block_on<F: Future>(fut: F) -> Result<F::Output, Failure> {
    let rt = runtime()?;
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Failure::new(
            headjack_status::HEADJACK_CONFLICT,
            "a headjack function was called from inside a headjack callback (or from a thread \
             running a tokio runtime); copy what you need in the callback and call headjack after \
             it returns",
        ));
    }
    Ok(rt.block_on(fut))
}

/// Runs the body of a fallible exported function: clears `*err`, catches panics, and turns a
/// failure into its status and a new `headjack_error` in `*err` (when `err` is not NULL).
pub(crate) fn guard(
    err: *mut *mut headjack_error,
    body: impl FnOnce() -> Result<(), Failure>,
) -> headjack_status {
    if !err.is_null() {
        // SAFETY: the caller passes NULL or a pointer to writable storage for one pointer.
        unsafe { *err = ptr::null_mut() };
    }
    let failure = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => return headjack_status::HEADJACK_OK,
        Ok(Err(f)) => f,
        Err(payload) => Failure::new(
            headjack_status::HEADJACK_PANIC,
            panic_message(payload.as_ref()),
        ),
    };
    let status = failure.status;
    if !err.is_null() {
        // SAFETY: as above.
        unsafe { *err = Box::into_raw(Box::new(headjack_error::from(failure))) };
    }
    status
}

/// Runs the body of an infallible exported function; a panic yields `default`.
pub(crate) fn guard_or<T>(default: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(default)
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string());
    format!("headjack panicked (a bug; please report it): {what}")
}

fn invalid(message: String) -> Failure {
    Failure::new(headjack_status::HEADJACK_INVALID_ARGUMENT, message)
}

/// A shared reference from a handle pointer; NULL is an error naming `what`.
pub(crate) fn arg_ref<'a, T>(p: *const T, what: &str) -> Result<&'a T, Failure> {
    // SAFETY: the caller passes NULL or a live handle of this type.
    unsafe { p.as_ref() }.ok_or_else(|| invalid(format!("{what} is NULL")))
}

/// An exclusive reference from a handle or out-parameter pointer; NULL is an error.
pub(crate) fn arg_mut<'a, T>(p: *mut T, what: &str) -> Result<&'a mut T, Failure> {
    // SAFETY: the caller passes NULL or a pointer to a live, writable object of this type.
    unsafe { p.as_mut() }.ok_or_else(|| invalid(format!("{what} is NULL")))
}

/// A UTF-8 string argument; NULL or invalid UTF-8 is an error naming `what`.
pub(crate) fn arg_str<'a>(p: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if p.is_null() {
        return Err(invalid(format!("{what} is NULL")));
    }
    // SAFETY: non-NULL, and the caller promises a NUL-terminated string.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str().map_err(|e| {
        invalid(format!(
            "{what} is not valid UTF-8 (invalid byte at offset {}): {:?}",
            e.valid_up_to(),
            String::from_utf8_lossy(s.to_bytes())
        ))
    })
}

/// An optional UTF-8 string argument: NULL is `None`.
pub(crate) fn opt_str<'a>(p: *const c_char, what: &str) -> Result<Option<&'a str>, Failure> {
    if p.is_null() {
        Ok(None)
    } else {
        arg_str(p, what).map(Some)
    }
}

/// A host path argument: any bytes but NUL (host paths need not be UTF-8); NULL or empty is
/// an error.
pub(crate) fn arg_path(p: *const c_char, what: &str) -> Result<PathBuf, Failure> {
    if p.is_null() {
        return Err(invalid(format!("{what} is NULL")));
    }
    // SAFETY: non-NULL, and the caller promises a NUL-terminated string.
    let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
    if bytes.is_empty() {
        return Err(invalid(format!("{what} is empty")));
    }
    Ok(PathBuf::from(OsStr::from_bytes(bytes)))
}

/// An argument vector: `argv[0..argc]`, each a UTF-8 string. NULL `argv`, `argc == 0`, a NULL
/// element or invalid UTF-8 is an error.
pub(crate) fn arg_argv(
    argv: *const *const c_char,
    argc: usize,
    what: &str,
) -> Result<Vec<String>, Failure> {
    if argv.is_null() {
        return Err(invalid(format!("{what} is NULL")));
    }
    if argc == 0 {
        return Err(invalid(format!(
            "{what} is empty (argc is 0): give at least the program name"
        )));
    }
    (0..argc)
        .map(|i| {
            // SAFETY: the caller promises `argc` readable elements.
            let p = unsafe { *argv.add(i) };
            arg_str(p, &format!("{what}[{i}]")).map(str::to_string)
        })
        .collect()
}

/// A byte buffer argument: NULL is allowed only with `len == 0`.
pub(crate) fn arg_bytes<'a>(data: *const u8, len: usize, what: &str) -> Result<&'a [u8], Failure> {
    if len == 0 {
        return Ok(&[]);
    }
    if data.is_null() {
        return Err(invalid(format!("{what} is NULL but its length is {len}")));
    }
    // SAFETY: non-NULL, and the caller promises `len` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(data, len) })
}

/// Converts a Rust string for C, replacing NUL bytes (which C strings cannot hold) by U+FFFD.
pub(crate) fn cstring(s: &str) -> CString {
    CString::new(s.replace('\0', "\u{FFFD}")).unwrap_or_default()
}

/// Drops a handle whose `Drop` removes containers (blocking until they are gone). In a forked
/// child the containers belong to the parent: only the memory is abandoned. Inside a callback (a
/// thread blocked in the shared runtime) the drop runs on a plain thread, where the core's
/// blocking removal is allowed.
pub(crate) fn release<T: Send>(handle: Box<T>) {
    if forked() {
        std::mem::forget(handle);
        return;
    }
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| {
            s.spawn(move || drop(handle));
        });
    } else {
        drop(handle);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_become_a_status_and_an_error() {
        let mut err: *mut headjack_error = ptr::null_mut();
        let status = guard(&mut err, || panic!("deliberate"));
        assert_eq!(status, headjack_status::HEADJACK_PANIC);
        assert!(!err.is_null());
        // SAFETY: just created by guard.
        let e = unsafe { Box::from_raw(err) };
        assert!(e.message().contains("deliberate"), "{}", e.message());
        assert_eq!(
            guard(ptr::null_mut(), || panic!("no error out")),
            headjack_status::HEADJACK_PANIC
        );
        assert_eq!(guard_or(7, || panic!("x")), 7);
    }

    #[test]
    fn success_clears_the_error_slot() {
        let mut err: *mut headjack_error = ptr::dangling_mut();
        assert_eq!(guard(&mut err, || Ok(())), headjack_status::HEADJACK_OK);
        assert!(err.is_null());
    }

    #[test]
    fn argument_checks() {
        assert!(arg_str(ptr::null(), "x").is_err());
        let bad = c"\xff\xfe";
        let e = arg_str(bad.as_ptr(), "name").unwrap_err();
        assert_eq!(e.status, headjack_status::HEADJACK_INVALID_ARGUMENT);
        assert!(
            e.message.contains("name is not valid UTF-8"),
            "{}",
            e.message
        );
        assert!(arg_argv(ptr::null(), 1, "argv").is_err());
        let a = [c"sh".as_ptr(), ptr::null()];
        assert!(arg_argv(a.as_ptr(), 0, "argv").is_err());
        assert!(
            arg_argv(a.as_ptr(), 2, "argv")
                .unwrap_err()
                .message
                .contains("argv[1] is NULL")
        );
        assert_eq!(arg_argv(a.as_ptr(), 1, "argv").unwrap(), ["sh"]);
        assert!(arg_bytes(ptr::null(), 3, "data").is_err());
        assert!(arg_bytes(ptr::null(), 0, "data").unwrap().is_empty());
        assert_eq!(cstring("a\0b").to_str().unwrap(), "a\u{FFFD}b");
    }
}
