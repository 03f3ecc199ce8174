//! `headjack mcp`: headjack served to AI assistants over the Model Context Protocol, on stdio.
//!
//! One server process is one session. The instances it spawns belong to it: they are removed
//! when the client disconnects (end of standard input), when the server is told to stop
//! (SIGINT, SIGTERM, SIGHUP), by the `remove` tool, or when a lifetime given at spawn passes.
//! They carry the usual owner labels, so after a crash (even `kill -9`) `headjack sweep`
//! removes them.
//!
//! Every failure of a tool — bad arguments, an unknown instance, an engine error — is an MCP
//! tool error (`isError: true`) carrying headjack's message, never a protocol error: a model
//! reads the message and can correct itself. Only an unknown tool name is a protocol error,
//! as the specification asks.
//!
//! The server operator decides what a model may not: which host directories can be mounted
//! (`--allow-workspace`), the runtime (`--runtime runsc`), how many instances may live at once,
//! and labels every instance gets. A model cannot ask for host networking.

mod exec;
mod files;
mod output;
mod process;
mod spawn;
mod tools;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use headjack::exec::StreamKind;
use headjack::{Client, Exec, Instance, Network, Progress, Spec};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    JsonObject, ListToolsResult, PaginatedRequestParams, ProgressNotificationParam,
    ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};

use crate::args::{Global, McpArgs, parse_size};
use crate::term::{self, Signal};
use crate::{Failure, Outcome, connect, report};
use output::{Bounded, Entry, Kept};
use tools::{
    ExecArgs, InstanceArgs, KillProcessArgs, ListFilesArgs, NoArgs, ProcessOutputArgs,
    ReadFileArgs, Size, SpawnArgs, StartProcessArgs, WaitProcessArgs, WriteFileArgs,
};

/// Tool calls that may run at once; shutdown takes them all to know none is left.
const MAX_CALLS: u32 = 1024;
/// How long shutdown waits for cancelled calls to return before removing instances anyway.
const DRAIN: Duration = Duration::from_secs(5);
/// Longest lifetime a model may give an instance (a week).
const MAX_LIFETIME_SECS: f64 = 7.0 * 86_400.0;
/// Bound on the output `list_files` reads from `find`.
const LISTING_OUTPUT: usize = 16 << 20;

const INSTRUCTIONS: &str = "headjack runs isolated Linux containers (instances). Call `spawn` \
first (optionally with a `base` image), then pass the returned instance ID to `exec`, \
`read_file`, `write_file` and `list_files`. Paths inside an instance are absolute. For a \
command that keeps running (a server, a watcher, a long build), `start_process` returns a process \
ID at once; `process_output` reads what it wrote so far, `kill_process` stops it, `wait_process` \
waits for its end. `remove` an instance when done; all of this session's instances are removed \
when the session ends.";

/// What the operator fixed on the command line.
struct Config {
    base: Option<String>,
    allowed_workspaces: Vec<PathBuf>,
    max_instances: usize,
    exec_timeout: Duration,
    labels: Vec<(String, String)>,
    runtime: Option<String>,
}

impl Config {
    fn from_args(a: &McpArgs) -> Result<Config, Failure> {
        let mut allowed = Vec::new();
        for dir in &a.allow_workspace {
            let canonical = dir.canonicalize().map_err(|e| {
                Failure::new(format!(
                    "--allow-workspace {}: {e}; give an existing directory",
                    dir.display()
                ))
            })?;
            if !canonical.is_dir() {
                return Err(Failure::new(format!(
                    "--allow-workspace {}: not a directory",
                    dir.display()
                )));
            }
            allowed.push(canonical);
        }
        let mut labels = Vec::new();
        for l in &a.labels {
            match l.split_once('=') {
                Some((k, v)) if !k.is_empty() => labels.push((k.to_string(), v.to_string())),
                _ => {
                    return Err(Failure::new(format!(
                        "--label {l:?}: use --label KEY=VALUE"
                    )));
                }
            }
        }
        if a.max_instances == 0 {
            return Err(Failure::new(
                "--max-instances 0 would refuse every spawn; give at least 1",
            ));
        }
        if a.exec_timeout.is_zero() {
            return Err(Failure::new("--exec-timeout must be more than 0 seconds"));
        }
        Ok(Config {
            base: a.base.clone().filter(|b| !b.is_empty()),
            allowed_workspaces: allowed,
            max_instances: a.max_instances,
            exec_timeout: a.exec_timeout,
            labels,
            runtime: a.runtime.clone(),
        })
    }
}

/// `headjack mcp`: serves until the client disconnects or a stop signal, then removes the
/// session's instances.
pub async fn serve(global: &Global, a: McpArgs) -> Outcome {
    let config = Config::from_args(&a)?;
    let client = connect(global).await?;
    let mut signals = term::signals()
        .map_err(|e| Failure::new(format!("cannot install signal handlers: {e}")))?;
    let session = Arc::new(Session {
        client,
        config,
        state: Mutex::new(State::default()),
        calls: Semaphore::new(MAX_CALLS as usize),
    });
    let handler = Handler {
        session: session.clone(),
        tools: Arc::new(tools::all()),
    };
    let stop = tokio::select! {
        served = handler.serve(rmcp::transport::stdio()) => match served {
            Ok(running) => tokio::select! {
                _ = running.waiting() => None,
                n = next_stop(&mut signals) => Some(n),
            },
            // The client went away (or spoke no MCP) before the session started: nothing to
            // clean up.
            Err(e) => return Err(Failure::new(format!(
                "the MCP session did not start: {e}; headjack mcp expects an MCP client on its standard input and output"
            ))),
        },
        n = next_stop(&mut signals) => Some(n),
    };
    // Signals during cleanup must not cut it short: they are still routed to `signals`.
    let failures = session.shutdown().await;
    for f in &failures {
        report(f);
    }
    match stop {
        Some(n) => Ok(128 + n as u8),
        None if failures.is_empty() => Ok(0),
        None => Err(Failure::new(format!(
            "{} instance(s) could not be removed; `headjack sweep` removes them once this process is gone",
            failures.len()
        ))),
    }
}

async fn next_stop(signals: &mut mpsc::UnboundedReceiver<Signal>) -> i32 {
    loop {
        match signals.recv().await {
            Some(Signal::Stop(n)) => return n,
            Some(Signal::Resize) => {}
            None => std::future::pending::<()>().await,
        }
    }
}

/// The MCP face of a session.
#[derive(Clone)]
struct Handler {
    session: Arc<Session>,
    tools: Arc<Vec<Tool>>,
}

impl ServerHandler for Handler {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new("headjack", env!("CARGO_PKG_VERSION"))
                    .with_title("headjack: isolated containers for agents"),
            )
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.tools.as_ref().clone()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools.iter().find(|t| t.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let name = request.name.to_string();
        if !self.tools.iter().any(|t| t.name == name) {
            return Err(ErrorData::invalid_params(
                format!("unknown tool {name:?}; tools/list gives the tools of headjack mcp"),
                None,
            ));
        }
        let Ok(_permit) = self.session.calls.acquire().await else {
            return Ok(
                ToolError::new("shutting_down", "the headjack MCP server is shutting down")
                    .into_result()
                    .into(),
            );
        };
        let work = self.session.dispatch(&name, request.arguments, &context);
        let result = tokio::select! {
            r = work => r,
            // Dropping the work stops it: a running command is killed in its container.
            _ = context.ct.cancelled() => Err(ToolError::new(
                "cancelled",
                format!("{name} was cancelled; anything it was running was stopped"),
            )),
        };
        Ok(match result {
            Ok(reply) => reply.into_result(),
            Err(e) => e.into_result(),
        }
        .into())
    }
}

/// A successful tool result: text for the model, the same as structured data for programs.
struct Reply {
    text: String,
    data: Value,
}

impl Reply {
    fn into_result(self) -> CallToolResult {
        let mut r = CallToolResult::success(vec![ContentBlock::text(self.text)]);
        r.structured_content = Some(self.data);
        r
    }
}

/// A failed tool call: headjack's error kind and its message.
#[derive(Debug)]
struct ToolError {
    kind: &'static str,
    message: String,
}

impl ToolError {
    fn new(kind: &'static str, message: impl Into<String>) -> ToolError {
        ToolError {
            kind,
            message: message.into(),
        }
    }

    fn invalid(message: impl Into<String>) -> ToolError {
        ToolError::new("invalid_argument", message)
    }

    fn into_result(self) -> CallToolResult {
        let mut r = CallToolResult::error(vec![ContentBlock::text(self.message.clone())]);
        r.structured_content =
            Some(json!({ "error": { "kind": self.kind, "message": self.message } }));
        r
    }
}

impl From<headjack::Error> for ToolError {
    fn from(e: headjack::Error) -> ToolError {
        let mut message = e.message().to_string();
        if let Some(step) = e.build_step() {
            message.push_str(&format!("\nfailing step: {step}"));
        }
        if !e.build_log().is_empty() {
            message.push_str("\nlast lines of the build:\n");
            message.push_str(&e.build_log().join("\n"));
        }
        ToolError::new(e.kind().as_str(), message)
    }
}

/// The instances of this session and how to reach the engine.
struct Session {
    client: Client,
    config: Config,
    state: Mutex<State>,
    /// One permit per tool call in flight.
    calls: Semaphore,
}

#[derive(Default)]
struct State {
    live: BTreeMap<String, Live>,
    /// Why instances that are gone went, so a model calling them learns what happened.
    gone: HashMap<String, String>,
    /// Spawns under way (they count against --max-instances).
    spawning: usize,
    closing: bool,
}

struct Live {
    instance: Arc<Instance>,
    base: String,
    workspace: bool,
    expires: Option<(Instant, f64)>,
    reaper: Option<tokio::task::AbortHandle>,
}

impl Session {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn dispatch(
        self: &Arc<Self>,
        name: &str,
        args: Option<JsonObject>,
        context: &RequestContext<RoleServer>,
    ) -> Result<Reply, ToolError> {
        let parsed = |e: String| ToolError::invalid(e);
        match name {
            tools::SPAWN => {
                self.spawn(tools::parse(name, args).map_err(parsed)?, context)
                    .await
            }
            tools::EXEC => self.exec(tools::parse(name, args).map_err(parsed)?).await,
            tools::READ_FILE => {
                self.read_file(tools::parse(name, args).map_err(parsed)?)
                    .await
            }
            tools::WRITE_FILE => {
                self.write_file(tools::parse(name, args).map_err(parsed)?)
                    .await
            }
            tools::LIST_FILES => {
                self.list_files(tools::parse(name, args).map_err(parsed)?)
                    .await
            }
            tools::LIST_INSTANCES => {
                let NoArgs {} = tools::parse(name, args).map_err(parsed)?;
                self.list_instances().await
            }
            tools::REMOVE => self.remove(tools::parse(name, args).map_err(parsed)?).await,
            tools::START_PROCESS => {
                self.start_process(tools::parse(name, args).map_err(parsed)?)
                    .await
            }
            tools::PROCESS_OUTPUT => {
                self.process_output(tools::parse(name, args).map_err(parsed)?)
                    .await
            }
            tools::KILL_PROCESS => {
                self.kill_process(tools::parse(name, args).map_err(parsed)?)
                    .await
            }
            tools::WAIT_PROCESS => {
                self.wait_process(tools::parse(name, args).map_err(parsed)?)
                    .await
            }
            tools::LIST_PROCESSES => {
                self.list_processes(tools::parse(name, args).map_err(parsed)?)
                    .await
            }
            other => Err(ToolError::new(
                "internal",
                format!("tool {other:?} has no implementation"),
            )),
        }
    }

    /// The live instance `id` of this session.
    fn instance(&self, id: &str) -> Result<Arc<Instance>, ToolError> {
        let st = self.state();
        if let Some(l) = st.live.get(id) {
            return Ok(l.instance.clone());
        }
        if let Some(why) = st.gone.get(id) {
            return Err(ToolError::new(
                "not_found",
                format!("instance {id} is gone: {why}; spawn a new one"),
            ));
        }
        let ids: Vec<&str> = st.live.keys().map(String::as_str).collect();
        Err(ToolError::new(
            "not_found",
            if ids.is_empty() {
                format!("no instance {id:?} in this session, which has none: call spawn first")
            } else {
                format!(
                    "no instance {id:?} in this session; its instances are: {}",
                    ids.join(", ")
                )
            },
        ))
    }

    // ---- instances ----

    async fn list_instances(&self) -> Result<Reply, ToolError> {
        let mine: Vec<(String, String, bool, Option<f64>)> = {
            let st = self.state();
            st.live
                .iter()
                .map(|(id, l)| {
                    let left = l
                        .expires
                        .map(|(t0, s)| (s - t0.elapsed().as_secs_f64()).max(0.0).round());
                    (id.clone(), l.base.clone(), l.workspace, left)
                })
                .collect()
        };
        let engine: HashMap<String, headjack::instance::InstanceInfo> = self
            .client
            .list()
            .await?
            .into_iter()
            .map(|i| (i.id.clone(), i))
            .collect();
        let mut rows = Vec::new();
        let mut text = format!("{} instance(s)\n", mine.len());
        for (id, base, workspace, left) in mine {
            let info = engine.get(&id);
            let state = info
                .map(|i| i.status.as_str().to_string())
                .unwrap_or_else(|| "missing".into());
            let image = info.map(|i| i.image.clone()).unwrap_or_default();
            text.push_str(&format!("{id}  {state}  base {base}  image {image}"));
            if let Some(s) = left {
                text.push_str(&format!("  {s}s left"));
            }
            text.push('\n');
            rows.push(json!({
                "instance": id, "state": state, "base": base, "image": image,
                "name": info.map(|i| i.name.clone()), "lifetime_left_seconds": left,
                "workspace": workspace.then_some("/workspace"),
            }));
        }
        Ok(Reply {
            text,
            data: json!({ "instances": rows }),
        })
    }

    async fn remove(&self, a: InstanceArgs) -> Result<Reply, ToolError> {
        self.instance(&a.instance)?;
        let live = self.state().live.remove(&a.instance);
        let Some(live) = live else {
            // Removed by a concurrent call in between.
            return Err(self.instance(&a.instance).err().unwrap_or_else(|| {
                ToolError::new("not_found", format!("instance {} is gone", a.instance))
            }));
        };
        if let Some(r) = &live.reaper {
            r.abort();
        }
        if let Err(e) = live.instance.remove().await {
            // Keep it listed: it still exists, and shutdown retries.
            self.state().live.insert(a.instance.clone(), live);
            return Err(e.into());
        }
        self.state().gone.insert(
            a.instance.clone(),
            "it was removed by the remove tool".into(),
        );
        Ok(Reply {
            text: format!("removed instance {}", a.instance),
            data: json!({ "removed": a.instance }),
        })
    }

    // ---- the end of the session ----

    /// Refuses new calls, lets the cancelled ones return, and removes every instance left.
    /// Returns a message per instance that could not be removed.
    async fn shutdown(&self) -> Vec<String> {
        self.state().closing = true;
        // Calls in flight were cancelled with the session; a spawn that completes now removes
        // its instance itself (see `Slot::admit`).
        let _ = tokio::time::timeout(DRAIN, self.calls.acquire_many(MAX_CALLS)).await;
        self.calls.close();
        let live: Vec<(String, Live)> =
            std::mem::take(&mut self.state().live).into_iter().collect();
        let removals = live.iter().map(|(id, l)| async move {
            if let Some(r) = &l.reaper {
                r.abort();
            }
            l.instance
                .remove()
                .await
                .map_err(|e| format!("could not remove instance {id}: {e}"))
        });
        futures_util::future::join_all(removals)
            .await
            .into_iter()
            .filter_map(Result::err)
            .collect()
    }
}

/// One line about a pull or build event worth showing, if any (per-chunk download counters
/// are not).
fn describe(p: &Progress) -> Option<String> {
    match p {
        Progress::Pull {
            image,
            layer,
            status,
            current,
            ..
        } => current.is_none().then(|| match layer {
            Some(l) => format!("pull {image}: {l} {status}"),
            None => format!("pull {image}: {status}"),
        }),
        Progress::Build { line, .. } => Some(format!("build: {line}")),
        _ => None,
    }
}
