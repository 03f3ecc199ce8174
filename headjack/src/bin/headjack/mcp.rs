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

mod output;
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
use output::{Bounded, Entry};
use tools::{
    ExecArgs, InstanceArgs, ListFilesArgs, NoArgs, ReadFileArgs, Size, SpawnArgs, WriteFileArgs,
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
`read_file`, `write_file` and `list_files`. Paths inside an instance are absolute. `remove` an \
instance when done; all of this session's instances are removed when the session ends.";

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

    // ---- spawn ----

    /// Builds the spec for `a`, refusing what the operator did not allow.
    fn spec(&self, a: &SpawnArgs) -> Result<(Spec, String, Option<f64>), ToolError> {
        let mut spec = Spec::new();
        for (k, v) in &self.config.labels {
            spec = spec.label(k, v);
        }
        let base = a
            .base
            .clone()
            .filter(|b| !b.trim().is_empty())
            .or_else(|| self.config.base.clone());
        if let Some(b) = &base {
            spec = spec.base(b.as_str());
        }
        if let Some(w) = &a.workspace {
            let dir = self.allowed_workspace(w)?;
            spec = spec
                .workspace(dir)
                .workspace_read_only(a.workspace_read_only);
        } else if a.workspace_read_only {
            return Err(ToolError::invalid(
                "workspace_read_only needs a workspace; give `workspace` too, or drop it",
            ));
        }
        for (k, v) in a.env.iter().flatten() {
            spec = spec.env(k, v);
        }
        if let Some(m) = &a.memory {
            let bytes = match m {
                Size::Bytes(0) => return Err(ToolError::invalid("memory must be more than 0")),
                Size::Bytes(n) => *n,
                Size::Text(t) => {
                    parse_size(t).map_err(|e| ToolError::invalid(format!("memory: {e}")))?
                }
            };
            spec = spec.memory(bytes);
        }
        if let Some(c) = a.cpus {
            if !(c.is_finite() && c > 0.0) {
                return Err(ToolError::invalid(format!(
                    "cpus {c} is not a positive number of cores (e.g. 0.5, 2)"
                )));
            }
            spec = spec.cpus(c);
        }
        if let Some(p) = a.pids {
            if p <= 0 {
                return Err(ToolError::invalid(format!(
                    "pids {p}: give a positive process limit (e.g. 512)"
                )));
            }
            spec = spec.pids(p);
        }
        if let Some(n) = &a.network {
            let n = n.trim();
            if n == "host" || n.starts_with("container:") {
                return Err(ToolError::invalid(format!(
                    "network {n:?} is refused: it would share another network namespace (the server's machine or another container); use \"bridge\" or \"none\""
                )));
            }
            spec = spec.network(Network::parse(n));
        }
        let lifetime = match a.lifetime_seconds {
            Some(s) if !(s.is_finite() && s > 0.0 && s <= MAX_LIFETIME_SECS) => {
                return Err(ToolError::invalid(format!(
                    "lifetime_seconds {s} must be more than 0 and at most {MAX_LIFETIME_SECS} (a week)"
                )));
            }
            Some(s) => {
                // The label lets `sweep` remove it even if this server hangs.
                spec = spec.expires_after(Duration::from_secs_f64(s));
                Some(s)
            }
            None => None,
        };
        if a.hardened {
            spec = spec.hardened(true);
        }
        if let Some(r) = &self.config.runtime {
            spec = spec.runtime(r);
        }
        let shown = base.unwrap_or_else(|| "(default base)".to_string());
        Ok((spec, shown, lifetime))
    }

    /// `w` resolved, if it lies inside a directory the operator allowed.
    fn allowed_workspace(&self, w: &str) -> Result<PathBuf, ToolError> {
        if self.config.allowed_workspaces.is_empty() {
            return Err(ToolError::invalid(
                "this server mounts no workspaces (it was started without --allow-workspace); spawn without `workspace` and copy files in with write_file",
            ));
        }
        let dir = PathBuf::from(w).canonicalize().map_err(|e| {
            ToolError::new(
                "not_found",
                format!("workspace {w:?} cannot be used on the server's machine: {e}"),
            )
        })?;
        if !dir.is_dir() {
            return Err(ToolError::invalid(format!(
                "workspace {w:?} is not a directory"
            )));
        }
        if !self
            .config
            .allowed_workspaces
            .iter()
            .any(|root| dir.starts_with(root))
        {
            let roots: Vec<String> = self
                .config
                .allowed_workspaces
                .iter()
                .map(|r| r.display().to_string())
                .collect();
            return Err(ToolError::invalid(format!(
                "workspace {w:?} is outside the directories this server may mount: {}",
                roots.join(", ")
            )));
        }
        Ok(dir)
    }

    async fn spawn(
        self: &Arc<Self>,
        a: SpawnArgs,
        context: &RequestContext<RoleServer>,
    ) -> Result<Reply, ToolError> {
        let (mut spec, base, lifetime) = self.spec(&a)?;
        let slot = Slot::reserve(self)?;
        // Pulls and builds can take minutes: tell a client that asked for progress.
        let forwarder = context.meta.get_progress_token().map(|token| {
            let (tx, mut rx) = mpsc::unbounded_channel::<String>();
            spec = spec.clone().progress(move |p: &Progress| {
                if let Some(line) = describe(p) {
                    let _ = tx.send(line);
                }
            });
            let peer = context.peer.clone();
            tokio::spawn(async move {
                let mut n = 0.0;
                while let Some(message) = rx.recv().await {
                    n += 1.0;
                    let note =
                        ProgressNotificationParam::new(token.clone(), n).with_message(message);
                    if peer.notify_progress(note).await.is_err() {
                        break;
                    }
                }
            })
        });
        let spawned = self.client.spawn(spec).await;
        if let Some(f) = forwarder {
            f.abort();
        }
        let instance = Arc::new(spawned?);
        let id = instance.id().to_string();
        let reply = Reply {
            text: format!(
                "spawned instance {id} from {base} (image {}). Pass \"{id}\" as `instance` to exec, read_file, write_file, list_files and remove.",
                instance.image()
            ),
            data: json!({
                "instance": id,
                "name": instance.name(),
                "base": base,
                "image": instance.image(),
                "workspace": a.workspace.is_some().then_some("/workspace"),
                "lifetime_seconds": lifetime,
            }),
        };
        slot.admit(Live {
            instance,
            base,
            workspace: a.workspace.is_some(),
            expires: lifetime.map(|s| (Instant::now(), s)),
            reaper: None,
        })
        .await?;
        Ok(reply)
    }

    /// Removes `id` when its lifetime is up.
    fn reap_after(self: &Arc<Self>, id: String, lifetime: f64) -> tokio::task::AbortHandle {
        let weak: Weak<Session> = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs_f64(lifetime)).await;
            let Some(session) = weak.upgrade() else {
                return;
            };
            let live = {
                let mut st = session.state();
                let live = st.live.remove(&id);
                if live.is_some() {
                    st.gone.insert(
                        id.clone(),
                        format!("its lifetime of {lifetime} seconds passed and it was removed"),
                    );
                }
                live
            };
            if let Some(l) = live
                && let Err(e) = l.instance.remove().await
            {
                tracing::warn!(instance = %id, error = %e, "removing an expired instance failed");
            }
        })
        .abort_handle()
    }

    // ---- exec ----

    async fn exec(&self, a: ExecArgs) -> Result<Reply, ToolError> {
        let instance = self.instance(&a.instance)?;
        let argv = match (a.command, a.argv) {
            (Some(_), Some(_)) => {
                return Err(ToolError::invalid(
                    "give either `command` (a shell command line) or `argv` (a program and its arguments), not both",
                ));
            }
            (None, None) => {
                return Err(ToolError::invalid(
                    "nothing to run: give `command` (a shell command line, e.g. \"ls -la\") or `argv` (e.g. [\"ls\", \"-la\"])",
                ));
            }
            (Some(c), None) if c.trim().is_empty() => {
                return Err(ToolError::invalid(
                    "`command` is empty: give a command line to run",
                ));
            }
            (Some(c), None) => vec!["/bin/sh".to_string(), "-c".to_string(), c],
            (None, Some(v)) if v.is_empty() => {
                return Err(ToolError::invalid(
                    "`argv` is empty: give at least the program, e.g. [\"ls\"]",
                ));
            }
            (None, Some(v)) => v,
        };
        let timeout = match a.timeout_seconds {
            None => self.config.exec_timeout,
            Some(s) if s.is_finite() && s > 0.0 && s <= tools::MAX_TIMEOUT_SECS => {
                Duration::from_secs_f64(s)
            }
            Some(s) => {
                return Err(ToolError::invalid(format!(
                    "timeout_seconds {s} must be more than 0 and at most {} (a day)",
                    tools::MAX_TIMEOUT_SECS
                )));
            }
        };
        let limit = a
            .max_output_bytes
            .unwrap_or(tools::DEFAULT_MAX_OUTPUT)
            .min(tools::MAX_OUTPUT);
        let mut exec = Exec::new(argv).timeout(timeout);
        for (k, v) in a.env.iter().flatten() {
            exec = exec.env(k, v);
        }
        if let Some(w) = a.workdir {
            exec = exec.workdir(w);
        }
        if let Some(s) = a.stdin {
            exec = exec.stdin(s.into_bytes());
        }
        let mut stream = instance.exec_stream(exec).await?;
        let (mut out, mut err) = (Bounded::new(limit), Bounded::new(limit));
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            match chunk.stream {
                StreamKind::Stdout => out.push(&chunk.data),
                StreamKind::Stderr => err.push(&chunk.data),
            }
        }
        let status = stream.wait().await?;
        let (out, err) = (out.finish(), err.finish());
        let mut text = if status.timed_out {
            format!(
                "timed out after {} seconds: the command and everything it started were killed\n",
                timeout.as_secs_f64()
            )
        } else {
            format!("exit code {}\n", status.code)
        };
        for (name, k) in [("stdout", &out), ("stderr", &err)] {
            if k.total > 0 {
                text.push_str(&format!("--- {name}"));
                if k.omitted > 0 {
                    text.push_str(&format!(
                        " ({} bytes, middle {} bytes omitted)",
                        k.total, k.omitted
                    ));
                }
                text.push('\n');
                text.push_str(&k.text);
                if !k.text.ends_with('\n') {
                    text.push('\n');
                }
            }
        }
        if out.total == 0 && err.total == 0 {
            text.push_str("(no output)\n");
        }
        Ok(Reply {
            text,
            data: json!({
                "exit_code": status.code,
                "timed_out": status.timed_out,
                "stdout": out.text,
                "stderr": err.text,
                "stdout_truncated": out.omitted > 0,
                "stderr_truncated": err.omitted > 0,
            }),
        })
    }

    // ---- files ----

    async fn read_file(&self, a: ReadFileArgs) -> Result<Reply, ToolError> {
        let instance = self.instance(&a.instance)?;
        let data = instance.read_file(&a.path).await.map_err(|e| {
            if e.kind() == headjack::ErrorKind::InvalidArgument
                && e.message().contains("is a directory")
            {
                ToolError::invalid(format!(
                    "{} is a directory; list it with list_files",
                    a.path
                ))
            } else {
                e.into()
            }
        })?;
        let max = a
            .max_bytes
            .unwrap_or(tools::DEFAULT_MAX_READ)
            .min(tools::MAX_READ);
        let size = data.len();
        let truncated = size > max;
        let mut shown = &data[..size.min(max)];
        if truncated {
            // A text file cut by the bound stays text: drop the character the cut went through.
            shown = &shown[..output::utf8_prefix_end(shown)];
        }
        let contents = output::encode_contents(shown);
        let mut text = match contents.encoding {
            "utf-8" => contents.content.clone(),
            _ => format!(
                "(binary file of {size} bytes, shown as base64)\n{}",
                contents.content
            ),
        };
        if truncated {
            text.push_str(&format!(
                "\n[truncated: the first {} of {size} bytes; raise max_bytes or read pieces with exec (e.g. sed -n, tail -c)]",
                shown.len()
            ));
        }
        Ok(Reply {
            text,
            data: json!({
                "path": a.path,
                "size": size,
                "encoding": contents.encoding,
                "content": contents.content,
                "truncated": truncated,
            }),
        })
    }

    async fn write_file(&self, a: WriteFileArgs) -> Result<Reply, ToolError> {
        let instance = self.instance(&a.instance)?;
        let data = output::decode_contents(&a.content, a.encoding.as_deref())
            .map_err(ToolError::invalid)?;
        let mode = match &a.mode {
            Some(m) => output::parse_mode(m).map_err(ToolError::invalid)?,
            None => 0o644,
        };
        instance.write_file_with_mode(&a.path, &data, mode).await?;
        Ok(Reply {
            text: format!("wrote {} bytes to {} (mode {mode:o})", data.len(), a.path),
            data: json!({ "path": a.path, "bytes": data.len(), "mode": format!("{mode:o}") }),
        })
    }

    async fn list_files(&self, a: ListFilesArgs) -> Result<Reply, ToolError> {
        let instance = self.instance(&a.instance)?;
        let depth = a.depth.unwrap_or(1);
        if !(1..=32).contains(&depth) {
            return Err(ToolError::invalid(format!(
                "depth {depth}: give 1 (the directory's own entries) up to 32"
            )));
        }
        let max = a
            .max_entries
            .unwrap_or(tools::DEFAULT_MAX_ENTRIES)
            .clamp(1, tools::MAX_ENTRIES);
        let path = a.path.unwrap_or_default();
        let exec = Exec::new([
            "/bin/sh".to_string(),
            "-c".to_string(),
            output::LIST_SCRIPT.to_string(),
            "list_files".to_string(),
            path.clone(),
            depth.to_string(),
        ])
        .timeout(Duration::from_secs(120))
        .max_output(LISTING_OUTPUT);
        let out = instance.exec(exec).await?;
        let stderr = out.stderr_text();
        match out.exit_code {
            _ if out.timed_out => {
                return Err(ToolError::new(
                    "timeout",
                    format!(
                        "listing {path} took over 120 seconds; list a smaller directory or a lower depth"
                    ),
                ));
            }
            2 => return Err(ToolError::new("not_found", stderr.trim().to_string())),
            126 | 127 => {
                return Err(ToolError::new(
                    "exec_failed",
                    format!(
                        "list_files needs /bin/sh, find and stat in the instance, and this image lacks them ({}); run your own listing with exec",
                        stderr.trim()
                    ),
                ));
            }
            _ => {}
        }
        let mut entries: Vec<Entry> = output::parse_listing(&out.stdout_text());
        let truncated = entries.len() > max || out.stdout_truncated;
        entries.truncate(max);
        let shown = if path.is_empty() {
            "the working directory".to_string()
        } else {
            path.clone()
        };
        let mut text = format!("{} entries in {shown}", entries.len());
        if truncated {
            text.push_str(&format!(
                " (truncated at {max}: list a subdirectory or a lower depth)"
            ));
        }
        text.push('\n');
        for e in &entries {
            let kind = match e.kind {
                "directory" => "dir ",
                "file" => "file",
                "symlink" => "link",
                _ => "othr",
            };
            text.push_str(&format!("{kind} {:>4} {:>10} {}\n", e.mode, e.size, e.path));
        }
        // Unreadable subdirectories: the rest of the listing still stands.
        let warnings =
            (out.exit_code != 0 && !stderr.trim().is_empty()).then(|| stderr.trim().to_string());
        if let Some(w) = &warnings {
            text.push_str(&format!("warnings:\n{w}\n"));
        }
        Ok(Reply {
            text,
            data: json!({ "entries": entries, "truncated": truncated, "warnings": warnings }),
        })
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

/// A place among --max-instances, held while a spawn is under way.
struct Slot {
    session: Arc<Session>,
    taken: bool,
}

impl Slot {
    fn reserve(session: &Arc<Session>) -> Result<Slot, ToolError> {
        let mut st = session.state();
        if st.closing {
            return Err(ToolError::new(
                "shutting_down",
                "the headjack MCP server is shutting down",
            ));
        }
        let max = session.config.max_instances;
        if st.live.len() + st.spawning >= max {
            return Err(ToolError::new(
                "conflict",
                format!(
                    "this session already has {max} instance(s), its limit (headjack mcp --max-instances); remove one first"
                ),
            ));
        }
        st.spawning += 1;
        Ok(Slot {
            session: session.clone(),
            taken: true,
        })
    }

    /// Records the spawned instance; during shutdown it is removed at once instead.
    async fn admit(mut self, mut live: Live) -> Result<(), ToolError> {
        let id = live.instance.id().to_string();
        let closing = {
            let mut st = self.session.state();
            st.spawning -= 1;
            self.taken = false;
            if !st.closing {
                if let Some((_, s)) = live.expires {
                    live.reaper = Some(self.session.reap_after(id.clone(), s));
                }
                st.live.insert(id.clone(), live);
                return Ok(());
            }
            live
        };
        let _ = closing.instance.remove().await;
        Err(ToolError::new(
            "shutting_down",
            "the headjack MCP server is shutting down",
        ))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.taken {
            self.session.state().spawning -= 1;
        }
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
