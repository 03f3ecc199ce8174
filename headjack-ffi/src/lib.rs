//! C ABI for headjack: `libheadjack.{so,a}` and `include/headjack.h` (generated from this crate
//! by cbindgen; see `cbindgen.toml` and `tests/header.rs`).
//!
//! The crate has no behaviour of its own: every function checks its C arguments, calls the core
//! (`headjack_core`) on one process-wide tokio runtime, and converts the result. Conventions
//! (after rustls-ffi):
//!
//! - names are `headjack_<type>_<verb>`; handles are opaque; each `_new`/`_connect`/`_spawn`
//!   has exactly one `_free`;
//! - every fallible function returns a `headjack_status` and fills a `headjack_error **`
//!   out-parameter (no thread-local "last error": Go moves goroutines between threads);
//! - every call runs inside a panic boundary, and blocks the calling thread on the shared runtime,
//!   so callbacks run on the caller's thread;
//! - a process forked after first use gets `HEADJACK_FORKED` instead of a hung runtime.

// The C names (`headjack_status`, `HEADJACK_OK`) are the ABI.
#![allow(non_camel_case_types)]
// Every exported function takes raw pointers from C, which has no `unsafe`; their validity is
// the caller's contract, documented on each function in the header. NULL is always checked.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

// The header's sections follow the order of these declarations (one per group, because rustfmt
// sorts the declarations within a group).
mod boundary;

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

pub use client::*;
pub use command::*;
pub use error::*;
pub use exec::*;
pub use images::*;
pub use instance::*;
pub use memory::*;
pub use pool::*;
pub use secrets::*;
pub use spec::*;
pub use version::*;
