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
//! [`Spec`] (what to launch), [`Instance`] (a running environment), [`Exec`] (a command),
//! [`Client`] (an engine connection: list, attach, sweep, images), [`Pool`] (instances spawned
//! ahead of time).

#![warn(missing_docs)]

pub mod base;
mod build;
mod client;
mod devcontainer;
mod engine;
mod error;
mod exec;
mod files;
mod instance;
pub mod labels;
mod pool;
mod progress;
mod pull;
pub mod reference;
mod spec;

pub use base::{Base, Dockerfile};
pub use build::BuiltImage;
pub use client::{Client, ResolvedImage, spawn};
pub use engine::{EngineInfo, EngineKind};
pub use error::{BuildFailure, Error, ErrorKind, Result};
pub use exec::{
    Chunk, DEFAULT_MAX_OUTPUT, EXIT_CANNOT_EXECUTE, EXIT_COMMAND_NOT_FOUND, Exec, ExecOutput,
    ExecResizer, ExecStdin, ExecStream, ExitStatus, StreamKind,
};
pub use instance::{Instance, InstanceInfo, Status};
pub use pool::Pool;
pub use progress::{Progress, ProgressFn};
pub use reference::ImageRef;
pub use spec::{
    BaseArg, DEFAULT_PIDS_LIMIT, Mount, Network, PullPolicy, Readiness, Spec, WORKSPACE_TARGET,
};
