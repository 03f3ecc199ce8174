//! Checked conversions of C arguments (strings, paths, argument vectors, byte buffers) and of
//! Rust strings for C. Every failure is `HEADJACK_INVALID_ARGUMENT` naming the argument.

use std::ffi::{CStr, CString, OsStr, c_char};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

use crate::status::Failure;

/// A UTF-8 string argument; NULL or invalid UTF-8 is an error naming `what`.
pub(crate) fn arg_str<'a>(p: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if p.is_null() {
        return Err(Failure::invalid(format!("{what} is NULL")));
    }
    // SAFETY: non-NULL, and the caller promises a NUL-terminated string.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str().map_err(|e| {
        Failure::invalid(format!(
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
        return Err(Failure::invalid(format!("{what} is NULL")));
    }
    // SAFETY: non-NULL, and the caller promises a NUL-terminated string.
    let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
    if bytes.is_empty() {
        return Err(Failure::invalid(format!("{what} is empty")));
    }
    Ok(PathBuf::from(OsStr::from_bytes(bytes)))
}

/// An optional host path: NULL is `None`.
pub(crate) fn opt_path(p: *const c_char, what: &str) -> Result<Option<PathBuf>, Failure> {
    if p.is_null() {
        Ok(None)
    } else {
        arg_path(p, what).map(Some)
    }
}

/// An argument vector: `argv[0..argc]`, each a UTF-8 string. NULL `argv`, `argc == 0`, a NULL
/// element or invalid UTF-8 is an error.
pub(crate) fn arg_argv(
    argv: *const *const c_char,
    argc: usize,
    what: &str,
) -> Result<Vec<String>, Failure> {
    if argv.is_null() {
        return Err(Failure::invalid(format!("{what} is NULL")));
    }
    if argc == 0 {
        return Err(Failure::invalid(format!(
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
        return Err(Failure::invalid(format!(
            "{what} is NULL but its length is {len}"
        )));
    }
    // SAFETY: non-NULL, and the caller promises `len` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(data, len) })
}

/// A duration in milliseconds that must be at least 1 ms.
pub(crate) fn arg_millis(ms: u64, what: &str) -> Result<Duration, Failure> {
    if ms == 0 {
        return Err(Failure::invalid(format!(
            "{what} is 0: give at least 1 millisecond"
        )));
    }
    Ok(Duration::from_millis(ms))
}

/// File permission bits (`0` to `07777`).
pub(crate) fn arg_mode(mode: u32, what: &str) -> Result<u32, Failure> {
    if mode > 0o7777 {
        return Err(Failure::invalid(format!(
            "{what} {mode:#o} is not permission bits: give a value from 0 to 07777 (e.g. 0644)"
        )));
    }
    Ok(mode)
}

/// Converts a Rust string for C, replacing NUL bytes (which C strings cannot hold) by U+FFFD.
pub(crate) fn cstring(s: &str) -> CString {
    CString::new(s.replace('\0', "\u{FFFD}")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ptr;

    #[test]
    fn argument_checks() {
        assert!(arg_str(ptr::null(), "x").is_err());
        let bad = c"\xff\xfe";
        let e = arg_str(bad.as_ptr(), "name").unwrap_err();
        assert!(
            e.message.contains("name is not valid UTF-8"),
            "{}",
            e.message
        );
        assert_eq!(opt_str(ptr::null(), "x").unwrap(), None);
        assert!(arg_path(c"".as_ptr(), "dir").is_err());
        assert_eq!(opt_path(ptr::null(), "dir").unwrap(), None);
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

    #[test]
    fn modes_and_durations() {
        for ok in [0, 0o644, 0o7777] {
            assert_eq!(arg_mode(ok, "mode").unwrap(), ok);
        }
        for bad in [0o10000, 0o777777, u32::MAX] {
            let e = arg_mode(bad, "mode").unwrap_err();
            assert!(e.message.contains("07777"), "{}", e.message);
        }
        assert!(arg_millis(0, "ms").is_err());
        assert_eq!(
            arg_millis(u64::MAX, "ms").unwrap().as_millis(),
            u64::MAX as u128
        );
    }
}
