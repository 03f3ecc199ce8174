//! Engine execs: create + start (attached), inspect, resize. The engine API has no exec-kill
//! (moby#35703): killing is done by the caller (see `crate::exec::driver`).

use std::pin::Pin;

use bollard::container::LogOutput;
use bollard::exec::StartExecResults;
use bollard::models::ExecConfig;
use bytes::Bytes;
use futures_util::{Stream, TryStreamExt};
use tokio::io::AsyncWrite;
use tracing::Instrument;

use super::Engine;
use super::errors::{exec_error, map_err};
use crate::error::{Error, Result};

/// Parameters of one exec.
#[derive(Debug, Clone, Default)]
pub(crate) struct ExecParams {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub stdin: bool,
    pub tty: bool,
}

/// Output of a running exec, demultiplexed.
pub(crate) enum ExecOutputChunk {
    Stdout(Bytes),
    Stderr(Bytes),
}

pub(crate) type OutputStream = Pin<Box<dyn Stream<Item = Result<ExecOutputChunk>> + Send>>;
pub(crate) type InputSink = Pin<Box<dyn AsyncWrite + Send>>;

/// Result of inspecting an exec.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ExecState {
    pub running: bool,
    pub exit_code: Option<i64>,
}

pub(super) fn chunk_of(out: LogOutput) -> Option<ExecOutputChunk> {
    match out {
        LogOutput::StdOut { message } | LogOutput::Console { message } => {
            Some(ExecOutputChunk::Stdout(message))
        }
        LogOutput::StdErr { message } => Some(ExecOutputChunk::Stderr(message)),
        LogOutput::StdIn { .. } => None,
    }
}

impl Engine {
    /// Creates and starts an exec; returns its ID, its output and (if requested) its stdin.
    pub(crate) async fn exec(
        &self,
        container: &str,
        params: ExecParams,
    ) -> Result<(String, OutputStream, Option<InputSink>)> {
        let span = tracing::debug_span!("engine.exec", container, cmd = ?params.cmd);
        async {
            let config = ExecConfig {
                cmd: Some(params.cmd),
                env: Some(params.env),
                working_dir: params.workdir,
                user: params.user,
                attach_stdin: Some(params.stdin),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                tty: Some(params.tty),
                ..Default::default()
            };
            let created = self
                .docker
                .create_exec(container, config)
                .await
                .map_err(|e| exec_error(container, e))?;
            let started = self
                .docker
                .start_exec(&created.id, None::<bollard::exec::StartExecOptions>)
                .await
                .map_err(|e| exec_error(container, e))?;
            match started {
                StartExecResults::Attached { output, input } => {
                    let what = format!("reading exec output in container {container}");
                    let output = output
                        .map_err(move |e| map_err(&what, e))
                        .try_filter_map(|o| async move { Ok(chunk_of(o)) });
                    Ok((
                        created.id,
                        Box::pin(output) as OutputStream,
                        params.stdin.then_some(input),
                    ))
                }
                StartExecResults::Detached => {
                    Err(Error::internal("exec started detached unexpectedly"))
                }
            }
        }
        .instrument(span)
        .await
    }

    pub(crate) async fn exec_state(&self, exec_id: &str) -> Result<ExecState> {
        let span = tracing::debug_span!("engine.inspect_exec", exec_id);
        let r = self
            .docker
            .inspect_exec(exec_id)
            .instrument(span)
            .await
            .map_err(|e| map_err("inspecting an exec", e))?;
        Ok(ExecState {
            running: r.running.unwrap_or(false),
            exit_code: r.exit_code,
        })
    }

    pub(crate) async fn resize_exec(&self, exec_id: &str, rows: u16, cols: u16) -> Result<()> {
        let opts = bollard::query_parameters::ResizeExecOptionsBuilder::default()
            .h(rows as i32)
            .w(cols as i32)
            .build();
        self.docker
            .resize_exec(exec_id, opts)
            .await
            .map_err(|e| map_err("resizing an exec terminal", e))
    }
}
