//! Build secrets on a `headjack_spec`: values for a Dockerfile base's
//! `RUN --mount=type=secret,id=…` steps, from memory, a file or an environment variable.

use std::ffi::c_char;

use headjack_core::base::SecretSource;

use crate::args::{arg_bytes, arg_path, arg_str};
use crate::error::{fallible, headjack_error};
use crate::spec::{headjack_spec, spec_ref};
use crate::status::headjack_status;

/// Gives the Dockerfile base the build secret `id` with the `len` bytes at `data` (copied; you
/// may clear your buffer afterwards). The value reaches `RUN --mount=type=secret,id=<id>` steps
/// only: never the image, its history, labels, logs, progress events or errors. The id (not the
/// value) is part of the build's cache key. A later secret with the same id replaces an earlier
/// one. Ids are 1 to 128 characters from `A-Z a-z 0-9 _ . -` (checked when the base is built).
/// Spawning fails with `HEADJACK_INVALID_ARGUMENT` when the base is not a Dockerfile; on a builder
/// without secrets (Docker's classic builder) a Dockerfile that mounts one is refused before
/// anything is built, with a message naming the builder.
///
/// Thread-safe: calls on one spec are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_spec_set_build_secret(
    spec: *mut headjack_spec,
    id: *const c_char,
    data: *const u8,
    len: usize,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let spec = spec_ref(spec)?;
        let id = arg_str(id, "id")?;
        let value = arg_bytes(data, len, "data")?.to_vec();
        spec.update(|s| s.build_secret(id, SecretSource::Memory(value)))
    })
}

/// Like `headjack_spec_set_build_secret`, with the value read from the file at `path` when a
/// build needs it (not on a cache hit); a file that cannot be read then fails the build with
/// `HEADJACK_INVALID_ARGUMENT` naming the secret and the path.
///
/// Thread-safe: calls on one spec are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_spec_set_build_secret_file(
    spec: *mut headjack_spec,
    id: *const c_char,
    path: *const c_char,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let spec = spec_ref(spec)?;
        let id = arg_str(id, "id")?;
        let path = arg_path(path, "path")?;
        spec.update(|s| s.build_secret(id, SecretSource::File(path)))
    })
}

/// Like `headjack_spec_set_build_secret`, with the value read from this process's environment
/// variable `name` when a build needs it; an unset variable then fails the build with
/// `HEADJACK_INVALID_ARGUMENT` naming the secret and the variable.
///
/// Thread-safe: calls on one spec are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_spec_set_build_secret_env(
    spec: *mut headjack_spec,
    id: *const c_char,
    name: *const c_char,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let spec = spec_ref(spec)?;
        let id = arg_str(id, "id")?;
        let name = arg_str(name, "name")?;
        spec.update(|s| s.build_secret(id, SecretSource::Env(name.to_string())))
    })
}
