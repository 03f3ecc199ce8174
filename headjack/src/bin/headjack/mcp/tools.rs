//! The tools `headjack mcp` serves: their arguments (whose doc comments become the JSON schema
//! descriptions a model reads), the tool list, and argument parsing that turns every mistake into
//! a message the model can act on.

use std::collections::BTreeMap;

use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Default bound on each of stdout and stderr returned by `exec`.
pub const DEFAULT_MAX_OUTPUT: usize = 32 << 10;
/// Largest bound a caller may ask for, per stream.
pub const MAX_OUTPUT: usize = 1 << 20;
/// Default bound on the bytes `read_file` returns.
pub const DEFAULT_MAX_READ: usize = 256 << 10;
/// Largest `read_file` bound a caller may ask for.
pub const MAX_READ: usize = 8 << 20;
/// Default and largest number of entries `list_files` returns.
pub const DEFAULT_MAX_ENTRIES: usize = 500;
/// See [`DEFAULT_MAX_ENTRIES`].
pub const MAX_ENTRIES: usize = 10_000;
/// Longest exec timeout a caller may ask for (a day).
pub const MAX_TIMEOUT_SECS: f64 = 86_400.0;
/// Default wait of `kill_process` for the process to end.
pub const DEFAULT_KILL_WAIT_SECS: f64 = 3.0;
/// Longest wait `kill_process` may be asked for.
pub const MAX_KILL_WAIT_SECS: f64 = 60.0;
/// Longest wait `wait_process` may be asked for (an hour: a tool call should not hang longer).
pub const MAX_WAIT_SECS: f64 = 3_600.0;

/// A size: a number of bytes, or text such as `"512m"` or `"2g"`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Size {
    /// Bytes.
    Bytes(u64),
    /// A number with a suffix: k, m, g, t (binary multiples), e.g. "512m", "2g".
    Text(String),
}

/// Arguments of `spawn`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SpawnArgs {
    /// What the instance starts from: an image reference such as "debian:bookworm-slim" or
    /// "python:3.12-slim", or the path of a Dockerfile on the server's machine such as
    /// "./Dockerfile" (built once per content, then reused). Omit it for the server's default
    /// base.
    pub base: Option<String>,
    /// A directory on the server's machine to mount at /workspace, which becomes the working
    /// directory. Only directories the server operator allowed (headjack mcp
    /// --allow-workspace) can be mounted.
    pub workspace: Option<String>,
    /// Mount the workspace read-only.
    #[serde(default)]
    pub workspace_read_only: bool,
    /// Environment variables every command in the instance sees.
    pub env: Option<BTreeMap<String, String>>,
    /// Memory limit: bytes, or text such as "512m" or "2g".
    pub memory: Option<Size>,
    /// CPU limit in cores, e.g. 1.5.
    pub cpus: Option<f64>,
    /// Most processes at once (default 4096).
    pub pids: Option<i64>,
    /// "bridge" (the default: outbound network access), "none" (no network at all), or the
    /// name of an existing engine network.
    pub network: Option<String>,
    /// Remove the instance automatically after this many seconds. Without it the instance
    /// lives until `remove`, or until this MCP session ends.
    pub lifetime_seconds: Option<f64>,
    /// Hardened preset: all capabilities dropped, read-only root filesystem with a writable
    /// /tmp, and no network.
    #[serde(default)]
    pub hardened: bool,
}

/// Arguments of `exec`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecArgs {
    /// The instance ID that `spawn` returned.
    pub instance: String,
    /// A shell command line, run with /bin/sh -c (pipes, redirections, && and globs work),
    /// e.g. "cd /workspace && make test 2>&1 | tail -n 50". Give either this or `argv`.
    pub command: Option<String>,
    /// The program and its arguments, run directly without a shell, e.g. ["python3", "-c",
    /// "print(1)"]. Give either this or `command`.
    pub argv: Option<Vec<String>>,
    /// Kill the command, and everything it started, after this many seconds (default: the
    /// server's --exec-timeout, 120 unless set). The result then says timed_out.
    pub timeout_seconds: Option<f64>,
    /// Working directory (default: the instance's, /workspace when a workspace is mounted).
    pub workdir: Option<String>,
    /// Extra environment variables for this command.
    pub env: Option<BTreeMap<String, String>>,
    /// Text fed to the command's standard input (then closed).
    pub stdin: Option<String>,
    /// Most bytes returned of stdout, and of stderr (default 32768, at most 1048576). Longer
    /// output keeps its beginning and its end, with a marker where the middle was dropped.
    pub max_output_bytes: Option<usize>,
}

/// A background process's ID, as `start_process` or `list_processes` gave it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ProcessId {
    /// The ID as a number, e.g. 3.
    Number(u64),
    /// The ID as text, e.g. "3".
    Text(String),
}

impl ProcessId {
    /// The ID as a number, or a message saying what an ID looks like.
    pub fn get(&self) -> Result<u64, String> {
        match self {
            ProcessId::Number(n) => Ok(*n),
            ProcessId::Text(t) => t.trim().parse().map_err(|_| {
                format!(
                    "process {t:?} is not a process ID: give the number start_process returned (list_processes lists them)"
                )
            }),
        }
    }
}

/// A signal: a name or a number.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum SignalArg {
    /// A number, e.g. 9.
    Number(i64),
    /// A name with or without SIG, any case, e.g. "TERM", "SIGKILL", "int".
    Name(String),
}

impl SignalArg {
    /// The signal's number (default TERM), parsed by headjack's one signal parser.
    pub fn number(signal: Option<&SignalArg>) -> Result<i32, headjack::Error> {
        match signal {
            None => Ok(libc::SIGTERM),
            Some(SignalArg::Number(n)) => headjack::instance::signal_number(&n.to_string()),
            Some(SignalArg::Name(s)) => headjack::instance::signal_number(s),
        }
    }
}

/// Arguments of `start_process`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartProcessArgs {
    /// The instance ID that `spawn` returned.
    pub instance: String,
    /// A shell command line, run with /bin/sh -c, e.g. "python3 -m http.server 8000 2>&1".
    /// Give either this or `argv`.
    pub command: Option<String>,
    /// The program and its arguments, run directly without a shell, e.g. ["python3", "-m",
    /// "http.server"]. Give either this or `command`.
    pub argv: Option<Vec<String>>,
    /// Working directory (default: the instance's, /workspace when a workspace is mounted).
    pub workdir: Option<String>,
    /// Extra environment variables for this process.
    pub env: Option<BTreeMap<String, String>>,
    /// User to run as: a name or UID, optionally with a group ("1000:1000"); default the
    /// image's user.
    pub user: Option<String>,
    /// Kill the process, and everything it started, after this many seconds (at most 86400).
    /// Without it the process runs until it ends, `kill_process`, or the instance is removed.
    pub timeout_seconds: Option<f64>,
}

/// Arguments of `process_output`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcessOutputArgs {
    /// The instance ID that `spawn` returned.
    pub instance: String,
    /// The process ID that `start_process` returned.
    pub process: ProcessId,
    /// Most bytes returned of stdout, and of stderr (default 32768, at most 1048576). Longer
    /// output keeps its beginning and its end, with a marker where the middle was dropped.
    pub max_output_bytes: Option<usize>,
}

/// Arguments of `kill_process`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KillProcessArgs {
    /// The instance ID that `spawn` returned.
    pub instance: String,
    /// The process ID that `start_process` returned.
    pub process: ProcessId,
    /// The signal: a name such as "TERM" (the default), "KILL", "INT", "HUP", or a number.
    /// It reaches the process and everything it started.
    pub signal: Option<SignalArg>,
    /// How long to wait for the process to end after the signal, in seconds (default 3, or 0
    /// after STOP, CONT, TSTP and WINCH; at most 60; 0 returns at once). The result says
    /// whether it ended and how.
    pub wait_seconds: Option<f64>,
}

/// Arguments of `wait_process`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitProcessArgs {
    /// The instance ID that `spawn` returned.
    pub instance: String,
    /// The process ID that `start_process` returned.
    pub process: ProcessId,
    /// Most seconds to wait (default: the server's --exec-timeout, 120 unless set; at most
    /// 3600). A process still running then is a normal result (state "running"), not an
    /// error; the process goes on.
    pub timeout_seconds: Option<f64>,
}

/// Arguments of `read_file`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadFileArgs {
    /// The instance ID that `spawn` returned.
    pub instance: String,
    /// Absolute path of a regular file in the instance, e.g. "/workspace/src/main.py".
    pub path: String,
    /// Most bytes returned (default 262144, at most 8388608); a longer file is cut and marked
    /// truncated.
    pub max_bytes: Option<usize>,
}

/// Arguments of `write_file`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteFileArgs {
    /// The instance ID that `spawn` returned.
    pub instance: String,
    /// Absolute path of the file to create or replace, e.g. "/workspace/notes.txt". Missing
    /// parent directories are created.
    pub path: String,
    /// The new contents of the whole file.
    pub content: String,
    /// How `content` is encoded: "utf-8" (the default: plain text) or "base64" (binary data).
    pub encoding: Option<String>,
    /// Permission bits in octal, e.g. "755" for a script (default "644").
    pub mode: Option<String>,
}

/// Arguments of `list_files`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListFilesArgs {
    /// The instance ID that `spawn` returned.
    pub instance: String,
    /// Absolute path of the directory to list (default: the instance's working directory,
    /// /workspace when a workspace is mounted).
    pub path: Option<String>,
    /// How many levels down to go: 1 (the default) lists the directory's own entries.
    pub depth: Option<u32>,
    /// Most entries returned (default 500, at most 10000).
    pub max_entries: Option<usize>,
}

/// Arguments of `remove` (and of any tool that only names an instance).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InstanceArgs {
    /// The instance ID that `spawn` returned.
    pub instance: String,
}

/// Arguments of `list_instances`: none.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// The tool names, in the order they are listed.
pub const SPAWN: &str = "spawn";
/// See [`SPAWN`].
pub const EXEC: &str = "exec";
/// See [`SPAWN`].
pub const READ_FILE: &str = "read_file";
/// See [`SPAWN`].
pub const WRITE_FILE: &str = "write_file";
/// See [`SPAWN`].
pub const LIST_FILES: &str = "list_files";
/// See [`SPAWN`].
pub const LIST_INSTANCES: &str = "list_instances";
/// See [`SPAWN`].
pub const REMOVE: &str = "remove";
/// See [`SPAWN`].
pub const START_PROCESS: &str = "start_process";
/// See [`SPAWN`].
pub const PROCESS_OUTPUT: &str = "process_output";
/// See [`SPAWN`].
pub const KILL_PROCESS: &str = "kill_process";
/// See [`SPAWN`].
pub const WAIT_PROCESS: &str = "wait_process";
/// See [`SPAWN`].
pub const LIST_PROCESSES: &str = "list_processes";

fn tool<T: JsonSchema + 'static>(name: &'static str, description: &'static str) -> Tool {
    let mut t = Tool::new(name, description, JsonObject::new()).with_input_schema::<T>();
    let mut schema = serde_json::Value::Object(t.input_schema.as_ref().clone());
    unwrap_descriptions(&mut schema);
    if let serde_json::Value::Object(o) = schema {
        t.input_schema = std::sync::Arc::new(o);
    }
    t
}

/// Doc comments arrive with their source line breaks; a model reads them better as prose.
fn unwrap_descriptions(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                match x {
                    serde_json::Value::String(s) if k == "description" => {
                        *s = s.split('\n').map(str::trim).collect::<Vec<_>>().join(" ");
                    }
                    other => unwrap_descriptions(other),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(unwrap_descriptions),
        _ => {}
    }
}

/// The tools, with descriptions written for a model choosing among them.
pub fn all() -> Vec<Tool> {
    vec![
        tool::<SpawnArgs>(
            SPAWN,
            "Start a new isolated Linux container (an instance) and return its ID. Commands and \
             file operations inside it cannot touch the machine the server runs on, except a \
             workspace directory if one is mounted. The instance is removed by `remove`, when its \
             lifetime passes, or when this session ends.",
        )
        .annotate(ToolAnnotations::new().open_world(true).destructive(false)),
        tool::<ExecArgs>(
            EXEC,
            "Run a command inside an instance and wait for it to finish. Returns its exit code, \
             stdout and stderr (each bounded: beginning and end kept), and whether the timeout \
             killed it. A non-zero exit code is a normal result, not a tool error. Use \
             `command` for a shell command line or `argv` for a program and its arguments.",
        )
        .annotate(ToolAnnotations::new().destructive(true).open_world(true)),
        tool::<StartProcessArgs>(
            START_PROCESS,
            "Start a command in the background inside an instance and return its process ID at \
             once, without waiting for it: for servers, watchers and long builds. It keeps \
             running between calls; read what it wrote with `process_output`, stop it with \
             `kill_process`, wait for it with `wait_process`, list them with `list_processes`. \
             It has no standard input.",
        )
        .annotate(ToolAnnotations::new().destructive(true).open_world(true)),
        tool::<ProcessOutputArgs>(
            PROCESS_OUTPUT,
            "Read what a background process wrote so far (its stdout and stderr, bounded: \
             beginning and end kept; the instance keeps only the most recent part of a long \
             output), and whether it is still running or how it ended (exit code and reason). \
             Does not wait: call it again later for more.",
        )
        .annotate(ToolAnnotations::new().read_only(true)),
        tool::<KillProcessArgs>(
            KILL_PROCESS,
            "Send a signal (TERM unless told) to a background process and everything it \
             started, then wait a few seconds for it to end and report how it ended, or that \
             it still runs (then send KILL).",
        )
        .annotate(ToolAnnotations::new().destructive(true)),
        tool::<WaitProcessArgs>(
            WAIT_PROCESS,
            "Wait until a background process ends, up to a timeout, and return its exit code \
             and exit reason; if it still runs at the timeout the result says so (state \
             running) and it goes on.",
        )
        .annotate(ToolAnnotations::new().read_only(true)),
        tool::<InstanceArgs>(
            LIST_PROCESSES,
            "List the background processes of an instance: process ID, command, PID, and \
             whether each is running or how it ended (exit code and reason).",
        )
        .annotate(ToolAnnotations::new().read_only(true)),
        tool::<ReadFileArgs>(
            READ_FILE,
            "Read a file from an instance. Text comes back as is; other content as base64 \
             (the result says which encoding).",
        )
        .annotate(ToolAnnotations::new().read_only(true)),
        tool::<WriteFileArgs>(
            WRITE_FILE,
            "Create or replace a file in an instance with the given contents (text, or base64 \
             for binary data). Parent directories are created.",
        )
        .annotate(ToolAnnotations::new().destructive(true).idempotent(true)),
        tool::<ListFilesArgs>(
            LIST_FILES,
            "List a directory in an instance: each entry's path, type (file, directory, \
             symlink, other), size, permission bits and modification time. `depth` above 1 \
             lists subdirectories too.",
        )
        .annotate(ToolAnnotations::new().read_only(true)),
        tool::<NoArgs>(
            LIST_INSTANCES,
            "List the instances this session spawned and still has: ID, base, image, state, and \
             seconds left when a lifetime was set.",
        )
        .annotate(ToolAnnotations::new().read_only(true)),
        tool::<InstanceArgs>(
            REMOVE,
            "Remove an instance now: its processes are killed and its files are gone.",
        )
        .annotate(ToolAnnotations::new().destructive(true).idempotent(true)),
    ]
}

/// Parses a tool's arguments; every failure is a message for the model.
pub fn parse<T: DeserializeOwned>(tool: &str, args: Option<JsonObject>) -> Result<T, String> {
    let value = serde_json::Value::Object(args.unwrap_or_default());
    serde_json::from_value(value)
        .map_err(|e| format!("invalid arguments for {tool}: {e}; see the tool's input schema"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: serde_json::Value) -> Option<JsonObject> {
        match v {
            serde_json::Value::Object(o) => Some(o),
            _ => None,
        }
    }

    #[test]
    fn every_tool_has_an_object_schema_with_described_properties() {
        let tools = all();
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
        assert_eq!(
            names,
            [
                SPAWN,
                EXEC,
                START_PROCESS,
                PROCESS_OUTPUT,
                KILL_PROCESS,
                WAIT_PROCESS,
                LIST_PROCESSES,
                READ_FILE,
                WRITE_FILE,
                LIST_FILES,
                LIST_INSTANCES,
                REMOVE
            ]
        );
        for t in &tools {
            let schema = t.schema_as_json_value();
            assert_eq!(schema["type"], "object", "{}", t.name);
            assert_eq!(schema["additionalProperties"], false, "{}", t.name);
            let none = serde_json::Map::new();
            let props = schema
                .get("properties")
                .and_then(|p| p.as_object())
                .unwrap_or(&none);
            assert!(
                !schema.to_string().contains("\\n"),
                "{}: line breaks left",
                t.name
            );
            for (name, p) in props {
                let described = p.get("description").is_some()
                    || p.get("$ref").is_some()
                    || p.get("anyOf").is_some();
                assert!(described, "{}.{name} has no description: {p}", t.name);
            }
            assert!(t.description.as_deref().is_some_and(|d| d.len() > 40));
        }
    }

    #[test]
    fn required_arguments() {
        let tools = all();
        let exec = tools.iter().find(|t| t.name == EXEC).unwrap();
        assert_eq!(exec.schema_as_json_value()["required"], json!(["instance"]));
        let spawn = tools.iter().find(|t| t.name == SPAWN).unwrap();
        assert!(spawn.schema_as_json_value().get("required").is_none());
    }

    #[test]
    fn bad_arguments_are_messages() {
        let e = parse::<ExecArgs>(EXEC, obj(json!({}))).unwrap_err();
        assert!(e.contains("missing field `instance`"), "{e}");
        let e = parse::<ExecArgs>(EXEC, obj(json!({"instance": "x", "comand": "ls"}))).unwrap_err();
        assert!(e.contains("unknown field `comand`"), "{e}");
        let e = parse::<ExecArgs>(EXEC, obj(json!({"instance": 3}))).unwrap_err();
        assert!(e.contains("invalid type"), "{e}");
        let e = parse::<SpawnArgs>(SPAWN, obj(json!({"memory": [1]}))).unwrap_err();
        assert!(e.starts_with("invalid arguments for spawn"), "{e}");
        let a = parse::<SpawnArgs>(SPAWN, None).unwrap();
        assert!(a.base.is_none() && !a.hardened);
        let a = parse::<SpawnArgs>(SPAWN, obj(json!({"memory": "2g"}))).unwrap();
        assert!(matches!(a.memory, Some(Size::Text(ref s)) if s == "2g"));
        let a = parse::<SpawnArgs>(SPAWN, obj(json!({"memory": 1024}))).unwrap();
        assert!(matches!(a.memory, Some(Size::Bytes(1024))));
    }

    #[test]
    fn process_ids_and_signals() {
        let a = parse::<KillProcessArgs>(KILL_PROCESS, obj(json!({"instance": "i", "process": 3})))
            .unwrap();
        assert_eq!(a.process.get(), Ok(3));
        assert_eq!(SignalArg::number(a.signal.as_ref()).unwrap(), libc::SIGTERM);
        // Models often send numbers as text.
        let a = parse::<KillProcessArgs>(
            KILL_PROCESS,
            obj(json!({"instance": "i", "process": " 7 ", "signal": "kill"})),
        )
        .unwrap();
        assert_eq!(a.process.get(), Ok(7));
        assert_eq!(SignalArg::number(a.signal.as_ref()).unwrap(), libc::SIGKILL);
        let a = parse::<KillProcessArgs>(
            KILL_PROCESS,
            obj(json!({"instance": "i", "process": 1, "signal": 2})),
        )
        .unwrap();
        assert_eq!(SignalArg::number(a.signal.as_ref()).unwrap(), libc::SIGINT);
        for bad in [json!("BOGUS"), json!(0), json!(65), json!(-9), json!("")] {
            let s: SignalArg = serde_json::from_value(bad.clone()).unwrap();
            let e = SignalArg::number(Some(&s)).unwrap_err();
            assert_eq!(e.kind(), headjack::ErrorKind::InvalidArgument, "{bad}");
            assert!(e.message().contains("signal"), "{e}");
        }
        let e = ProcessId::Text("three".into()).get().unwrap_err();
        assert!(
            e.contains("not a process ID") && e.contains("list_processes"),
            "{e}"
        );
        assert!(ProcessId::Text("-1".into()).get().is_err());
        let e =
            parse::<ProcessOutputArgs>(PROCESS_OUTPUT, obj(json!({"instance": "i"}))).unwrap_err();
        assert!(e.contains("missing field `process`"), "{e}");
        let e = parse::<ProcessOutputArgs>(
            PROCESS_OUTPUT,
            obj(json!({"instance": "i", "process": -1})),
        )
        .unwrap_err();
        assert!(e.starts_with("invalid arguments for process_output"), "{e}");
        let e = parse::<WaitProcessArgs>(
            WAIT_PROCESS,
            obj(json!({"instance": "i", "process": 1, "timeout": 3})),
        )
        .unwrap_err();
        assert!(e.contains("unknown field `timeout`"), "{e}");
        let a = parse::<StartProcessArgs>(
            START_PROCESS,
            obj(json!({"instance": "i", "argv": ["sleep", "9"], "user": "nobody"})),
        )
        .unwrap();
        assert_eq!(a.user.as_deref(), Some("nobody"));
        let e = parse::<StartProcessArgs>(
            START_PROCESS,
            obj(json!({"instance": "i", "command": "x", "stdin": "y"})),
        )
        .unwrap_err();
        assert!(e.contains("unknown field `stdin`"), "{e}");
    }

    #[test]
    fn process_tools_require_instance_and_process() {
        let tools = all();
        for (name, want) in [
            (START_PROCESS, json!(["instance"])),
            (PROCESS_OUTPUT, json!(["instance", "process"])),
            (KILL_PROCESS, json!(["instance", "process"])),
            (WAIT_PROCESS, json!(["instance", "process"])),
            (LIST_PROCESSES, json!(["instance"])),
        ] {
            let t = tools.iter().find(|t| t.name == name).unwrap();
            assert_eq!(t.schema_as_json_value()["required"], want, "{name}");
        }
    }
}
