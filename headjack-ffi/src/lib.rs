//! C ABI for headjack: `libheadjack.{so,a}` and `include/headjack.h` (generated from this crate
//! by cbindgen; see `cbindgen.toml` and `tests/header.rs`).
//!
//! The crate has no behaviour of its own: every function checks its C arguments (`args`),
//! calls the core (`headjack_core`) on its one process-wide runtime (`blocking`), and converts
//! the result. Conventions (after rustls-ffi):
//!
//! - names are `headjack_<type>_<verb>`; handles are opaque, and how each is owned (a `Box`, or
//!   an `Arc` that calls in progress share) is stated once, by its `Castable` impl (`handle`);
//!   each `_new`/`_connect`/`_spawn`/`_start` has exactly one `_free`;
//! - every fallible function returns a `headjack_status` and fills a `headjack_error **`
//!   out-parameter (no thread-local "last error": Go moves goroutines between threads);
//! - no panic crosses into C (`boundary`); calls block the calling thread on the shared runtime,
//!   so callbacks run on the caller's thread;
//! - a process forked after first use gets `HEADJACK_FORKED` instead of a hung runtime, and
//!   never removes its parent's containers.
//!
//! Modules below `boundary` depend only on the ones above them: `status` (codes, `Failure`) ←
//! `boundary` (panics) ← `handle`, `args`, `blocking` ← `error` (error objects, `fallible`) ←
//! the handle types.

// The C names (`headjack_status`, `HEADJACK_OK`) are the ABI.
#![allow(non_camel_case_types)]
// Every exported function takes raw pointers from C, which has no `unsafe`; their validity is
// the caller's contract, documented on each function in the header. NULL is always checked,
// and handle pointers are only dereferenced in `handle`.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

// The header's sections follow the order of these declarations (one per group, because rustfmt
// sorts the declarations within a group).
mod status;

mod boundary;

mod args;

mod blocking;

mod handle;

mod version;

mod error;

mod memory;

mod client;

mod images;

mod spec;

mod secrets;

mod instance;

mod command;

mod exec;

mod pool;

mod process;
mod sandbox;

pub use client::*;
pub use command::*;
pub use error::*;
pub use exec::*;
pub use images::*;
pub use instance::*;
pub use memory::*;
pub use pool::*;
pub use process::*;
pub use sandbox::*;
pub use secrets::*;
pub use spec::*;
pub use status::*;
pub use version::*;

// Every handle documented thread-safe is: its Rust value may be shared between threads.
const _: fn() = || {
    fn thread_safe<T: Send + Sync>() {}
    thread_safe::<headjack_core::Pool>();
    thread_safe::<crate::instance::InstanceHandle>();
    thread_safe::<headjack_core::exec::SharedExec>();
    thread_safe::<crate::command::CommandHandle>();
    thread_safe::<headjack_core::instance::Process>();
};
