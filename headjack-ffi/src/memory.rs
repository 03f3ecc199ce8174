//! Memory handed to C: strings, byte buffers and string lists, each with its own free.

use std::ffi::{CString, c_char};
use std::ptr;

use crate::args::cstring;
use crate::boundary::ffi_panic_boundary;
use crate::handle::{Castable, OwnershipBox, box_out, free_box};

/// Frees a string returned by headjack (every `char *` out-parameter). NULL is ignored.
///
/// Only for strings headjack returned as `char *`; never for `const char *` results, which are
/// owned by their handle. Never pass it to `free()`, nor a headjack string to `free()`.
///
/// Not to be called twice, nor while another thread uses the object.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_string_free(s: *mut c_char) {
    ffi_panic_boundary! {
        if !s.is_null() {
            // SAFETY: created by CString::into_raw in `string_out`, freed once.
            drop(unsafe { CString::from_raw(s) });
        }
    }
}

/// Returns a new C string owned by the caller (freed with `headjack_string_free`).
pub(crate) fn string_out(s: &str) -> *mut c_char {
    cstring(s).into_raw()
}

/// Bytes owned by headjack: `data[0..len]`. `data` is NULL when `len` is 0.
///
/// A buffer filled by a call (e.g. `headjack_instance_read_file`) belongs to the caller, who
/// frees it with `headjack_buffer_free`. Buffers inside another object (e.g. a
/// `headjack_output`) belong to that object and are freed with it.
#[repr(C)]
#[derive(Debug)]
pub struct headjack_buffer {
    /// The bytes (arbitrary binary data, not NUL-terminated); NULL when `len` is 0.
    pub data: *mut u8,
    /// How many bytes `data` holds.
    pub len: usize,
}

impl headjack_buffer {
    /// An empty buffer.
    pub(crate) fn empty() -> headjack_buffer {
        headjack_buffer {
            data: ptr::null_mut(),
            len: 0,
        }
    }

    /// Moves `bytes` to C.
    pub(crate) fn from_vec(bytes: Vec<u8>) -> headjack_buffer {
        if bytes.is_empty() {
            return headjack_buffer::empty();
        }
        let boxed = bytes.into_boxed_slice();
        let len = boxed.len();
        headjack_buffer {
            data: Box::into_raw(boxed) as *mut u8,
            len,
        }
    }

    /// Frees the bytes (once) and empties the buffer.
    pub(crate) fn release(&mut self) {
        if !self.data.is_null() {
            // SAFETY: created by `from_vec` with exactly this length; nulled right after.
            drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(self.data, self.len)) });
        }
        *self = headjack_buffer::empty();
    }
}

/// Frees the bytes of a buffer that headjack filled, and sets it to `{NULL, 0}` (so freeing it
/// again is harmless). NULL, and a buffer that is already `{NULL, 0}`, are ignored. The
/// `headjack_buffer` struct itself is the caller's.
///
/// Not for the buffers inside a `headjack_output` (free the output instead).
///
/// Not to be called twice, nor while another thread uses the object.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_buffer_free(buf: *mut headjack_buffer) {
    ffi_panic_boundary! {
        // SAFETY: NULL or a buffer filled by headjack.
        if let Some(b) = unsafe { buf.as_mut() } {
            b.release();
        }
    }
}

/// A list of strings owned by headjack: `items[0..len]`, each NUL-terminated UTF-8.
///
/// Freed, with all its strings, by `headjack_string_list_free`. Immutable, so it may be read
/// from any thread.
#[repr(C)]
#[derive(Debug)]
pub struct headjack_string_list {
    /// The strings; NULL when `len` is 0.
    pub items: *const *const c_char,
    /// How many strings `items` holds.
    pub len: usize,
}

impl Castable for headjack_string_list {
    type Ownership = OwnershipBox;
    type RustType = StringListBox;
}

/// A `headjack_string_list` with the storage it points into (the list must stay first, so a
/// pointer to it is a pointer to the whole).
#[repr(C)]
pub(crate) struct StringListBox {
    list: headjack_string_list,
    _pointers: Vec<*const c_char>,
    _strings: Vec<CString>,
}

/// Returns a new string list owned by the caller.
pub(crate) fn string_list_out<S: AsRef<str>>(items: &[S]) -> *mut headjack_string_list {
    let strings: Vec<CString> = items.iter().map(|s| cstring(s.as_ref())).collect();
    let pointers: Vec<*const c_char> = strings.iter().map(|s| s.as_ptr()).collect();
    let list = headjack_string_list {
        items: if pointers.is_empty() {
            ptr::null()
        } else {
            pointers.as_ptr()
        },
        len: pointers.len(),
    };
    box_out::<headjack_string_list>(StringListBox {
        list,
        _pointers: pointers,
        _strings: strings,
    })
}

/// Frees a string list and its strings. NULL is ignored.
///
/// Not to be called twice, nor while another thread uses the object.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_string_list_free(list: *mut headjack_string_list) {
    ffi_panic_boundary! { free_box(list) }
}
