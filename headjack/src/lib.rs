//! headjack: spawn isolated container environments in-process, from one string that names their
//! base (the default base, a registry image, or a Dockerfile), and drive them.
//!
//! ```no_run
//! # async fn demo() -> headjack::Result<()> {
//! use std::time::Duration;
//! let env = headjack::spawn(
//!     headjack::Spec::new()
//!         .base("./Dockerfile")          // or "debian:bookworm-slim", or "" for the default base
//!         .workspace(".")
//!         .network(headjack::Network::None),
//! )
//! .await?;
//! let out = env.exec(["sh", "-c", "ls /workspace && id"]).await?;
//! println!("{} {}", out.exit_code, out.stdout_text());
//! let run = headjack::Exec::new(["make", "test"]).timeout(Duration::from_secs(600));
//! let mut stream = env.exec_stream(run).await?;
//! while let Some(chunk) = stream.next().await {
//!     let chunk = chunk?;
//!     print!("{}", String::from_utf8_lossy(&chunk.data));
//! }
//! env.write_file("/tmp/task.json", b"{}").await?;
//! let _snapshot = env.commit("localhost/myagent/after-setup:1").await?;
//! drop(env); // the container is removed
//! # Ok(()) }
//! ```
//!
//! Modules, one concept each: [`base`] (what to start from), [`mod@reference`] (image names),
//! [`spec`] (what to launch), [`instance`] (a running environment), [`exec`] (a command and its
//! output), [`client`] (an engine connection: spawn, list, attach, sweep, images), [`Pool`]
//! (instances spawned ahead of time), [`labels`] (the contract with the engine), [`error`].
//! How they fit together: `docs/ARCHITECTURE.md`.

#![warn(missing_docs)]

mod agent;
pub mod base;
pub mod blocking;
mod build;
pub mod client;
mod devcontainer;
pub mod egress;
mod engine;
pub mod error;
pub mod exec;
mod files;
pub mod instance;
pub mod labels;
pub mod pool;
pub mod progress;
mod pull;
pub mod reference;
mod spawn;
pub mod spec;
pub mod volume;

pub use base::{Base, Dockerfile};
pub use client::{Client, spawn};
pub use egress::{Egress, EgressDecision};
pub use error::{Error, ErrorKind, Result};
pub use exec::{Exec, ExecOutput, ExecStream};
pub use instance::{Instance, Status};
pub use pool::Pool;
pub use progress::Progress;
pub use reference::ImageRef;
pub use spec::Publish;
pub use spec::{Mount, Network, Spec, Workspace};
pub use volume::VolumeInfo;
