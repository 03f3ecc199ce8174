//! Versions: of the library, and of its C ABI.

use std::ffi::c_char;

/// The version of the C ABI this header describes. It changes whenever a function, type or
/// constant changes incompatibly; compare it with `headjack_abi_version()` at start-up to make
/// sure the header you compiled against matches the library you linked.
pub const HEADJACK_ABI_VERSION: u32 = 3;

/// The library's major version (semantic versioning).
pub const HEADJACK_VERSION_MAJOR: u32 = 0;
/// The library's minor version.
pub const HEADJACK_VERSION_MINOR: u32 = 1;
/// The library's patch version.
pub const HEADJACK_VERSION_PATCH: u32 = 0;

/// The ABI version of the linked library (`HEADJACK_ABI_VERSION` when it matches the header).
///
/// Thread-safe; needs no engine.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_abi_version() -> u32 {
    HEADJACK_ABI_VERSION
}

/// The version of the linked library, e.g. `"0.1.0"`. The string is static: never free it.
///
/// Thread-safe; needs no engine.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr() as *const c_char
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_version_defines_match_the_crate_version() {
        let parts: Vec<u32> = env!("CARGO_PKG_VERSION")
            .split(['.', '-'])
            .take(3)
            .map(|p| p.parse().unwrap())
            .collect();
        assert_eq!(
            parts,
            [
                HEADJACK_VERSION_MAJOR,
                HEADJACK_VERSION_MINOR,
                HEADJACK_VERSION_PATCH
            ]
        );
        // SAFETY: a static NUL-terminated string.
        let s = unsafe { std::ffi::CStr::from_ptr(headjack_version()) };
        assert_eq!(s.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }
}
