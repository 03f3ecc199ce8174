//! The command line: flags, subcommands, help text, and how usage errors are reported.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use headjack::base::SecretSource;

use crate::EXIT_HEADJACK;

const EXIT_CODES: &str = "\
Exit codes:
  0        success (for run/exec: the command exited 0)
  1-255    run/exec: the command's own exit code, except as below
  124      run/exec: the command ran past --timeout and was killed (inside the container)
  125      headjack itself failed: bad flags, no engine, bad base, build/pull failure, unknown
           instance, ... (one line `headjack: <message>` on stderr says what and what to do)
  126      run/exec: the command cannot be invoked (e.g. not executable)
  127      run/exec: the command was not found in the container
  128+N    run/exec: interrupted by signal N (130 SIGINT, 143 SIGTERM, 129 SIGHUP); the
           command is stopped and the instance removed (unless --keep)

Bases (--base, build [BASE]): nothing for the default base (HEADJACK_BASE, else headjack's
embedded base image), a registry image (debian:bookworm-slim), a Dockerfile path
(./Dockerfile, ci/dev.Containerfile), built once per content, or a dev container definition
(.devcontainer, .devcontainer.json, path/.devcontainer/<name>/devcontainer.json, or a folder
holding one): its image or Dockerfile, settings and hooks; its warnings go to stderr.";

/// Spawn isolated container environments from an image or a Dockerfile, and drive them.
#[derive(Debug, Parser)]
#[command(
    name = "headjack",
    version,
    color = clap::ColorChoice::Never,
    after_help = EXIT_CODES,
    subcommand_required = true,
    arg_required_else_help = true
)]
pub struct Cli {
    /// Flags every command takes.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Engine to use (unix:///path, tcp://host:port). Default: DOCKER_HOST, then the Docker
    /// and Podman sockets.
    #[arg(long, global = true, value_name = "URL")]
    pub host: Option<String>,
    /// No progress output, and no echo of the IDs that stop/rm handled (results of build, ps,
    /// images, ... are still printed).
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
    /// Machine-readable output (build, ps, images, info, sweep, commit, run --keep).
    #[arg(long, global = true)]
    pub json: bool,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Spawn an instance and run a command in it (or an interactive shell), then remove it.
    #[command(after_help = EXIT_CODES)]
    Run(Box<RunArgs>),
    /// Run a command in an existing instance.
    #[command(after_help = EXIT_CODES)]
    Exec(ExecArgs),
    /// Resolve a base to a local image (building a Dockerfile if needed) and print its tag.
    Build(BuildArgs),
    /// List headjack instances (running ones unless --all).
    Ps(PsArgs),
    /// Print the output of an instance's keep-alive process.
    Logs(LogsArgs),
    /// Stop instances (their files are kept).
    Stop(StopArgs),
    /// Remove instances (running or not).
    Rm(RmArgs),
    /// Copy files between the host and an instance: one side is `ID:/path`. DST is a directory;
    /// SRC keeps its name inside it.
    Cp(CpArgs),
    /// Save an instance's filesystem as an image, usable as a base.
    Commit(CommitArgs),
    /// Remove instances whose owner process is gone or whose lifetime expired.
    Sweep,
    /// List the images headjack built (most recently used first), or prune them.
    Images(ImagesArgs),
    /// Show the engine headjack talks to.
    Info,
    /// Serve headjack to an AI assistant as a Model Context Protocol server on stdin/stdout
    /// (tools: spawn, exec, start_process, process_output, kill_process, wait_process,
    /// list_processes, read_file, write_file, list_files, list_instances, remove). The instances
    /// it spawns are removed when the client disconnects or the server stops.
    Mcp(McpArgs),
    /// Show an instance's resource use (CPU time, memory, processes, I/O); --watch repeats it.
    Stats(StatsArgs),
    /// Fork an instance: a new instance from a snapshot of its files, with the same settings.
    /// Prints the new instance's ID (it is kept; remove it with `headjack rm`).
    Fork(ForkArgs),
    /// Named volumes that outlive instances (`run --volume NAME:/path`).
    #[command(subcommand)]
    Volume(VolumeCommand),
    /// The egress policy of an instance spawned with --allow-host/--deny-host: replace it while
    /// the instance runs, or show what its proxy let through and refused.
    #[command(subcommand)]
    Egress(EgressCommand),
    /// Save a running instance's processes with their memory as checkpoint NAME (it keeps
    /// running). Needs an engine that can (Docker in experimental mode with CRIU, or Podman
    /// with CRIU); elsewhere it fails (exit 125) saying why.
    Checkpoint(CheckpointArgs),
    /// Restore a stopped instance from its checkpoint NAME: its processes continue where they
    /// were. Prints the instance's ID. Fails (exit 125) where the engine cannot restore.
    Restore(CheckpointArgs),
    /// Background processes of an instance (started with `exec --detach`): list them, replay
    /// and follow their output, signal them, wait for them, forget them.
    Proc(ProcArgs),
}

/// `proc` subcommands.
#[derive(Debug, Args)]
pub struct ProcArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ProcCommand,
}

/// What `proc` does.
#[derive(Debug, Subcommand)]
pub enum ProcCommand {
    /// List an instance's background processes (running or ended, not yet removed).
    Ls(ProcLsArgs),
    /// Print what is kept of a process's output (its most recent part); with -f, then follow
    /// it until the process ends.
    Logs(ProcLogsArgs),
    /// Send a signal to a process and everything it started.
    Kill(ProcKillArgs),
    /// Wait until a process ends; exit with its exit code (124 if its --timeout killed it).
    Wait(ProcRef),
    /// Forget ended processes (their exit status and kept output).
    Rm(ProcRmArgs),
}

/// `proc ls` arguments.
#[derive(Debug, Args)]
pub struct ProcLsArgs {
    /// The instance.
    pub id: String,
}

/// One process of one instance.
#[derive(Debug, Args)]
pub struct ProcRef {
    /// The instance.
    pub id: String,
    /// The process ID (printed by `exec --detach`, listed by `proc ls`).
    #[arg(value_name = "PROC", value_parser = parse_process_id)]
    pub process: u64,
}

/// `proc logs` arguments.
#[derive(Debug, Args)]
pub struct ProcLogsArgs {
    #[command(flatten)]
    pub target: ProcRef,
    /// Follow new output until the process ends, then exit with 0.
    #[arg(long, short = 'f')]
    pub follow: bool,
}

/// `proc kill` arguments.
#[derive(Debug, Args)]
pub struct ProcKillArgs {
    #[command(flatten)]
    pub target: ProcRef,
    /// The signal: a name (TERM, SIGKILL, …) or a number.
    #[arg(long, short = 's', value_name = "SIGNAL", default_value = "TERM", value_parser = parse_signal)]
    pub signal: i32,
}

/// `proc rm` arguments.
#[derive(Debug, Args)]
pub struct ProcRmArgs {
    /// The instance.
    pub id: String,
    /// The process IDs.
    #[arg(required = true, value_name = "PROC", value_parser = parse_process_id)]
    pub processes: Vec<u64>,
}

/// Parses a background process ID.
pub fn parse_process_id(s: &str) -> Result<u64, String> {
    s.trim().parse::<u64>().map_err(|_| {
        format!(
            "{s:?} is not a process ID (a number, as `exec --detach` prints and `proc ls` lists)"
        )
    })
}

/// Parses a signal: a name with or without `SIG` (any case), or a number from 1 to 64.
pub fn parse_signal(s: &str) -> Result<i32, String> {
    headjack::instance::signal_number(s).map_err(|e| e.message().to_string())
}

/// What `mcp` allows the assistant.
#[derive(Debug, Args)]
pub struct McpArgs {
    /// The base of spawns that name none (default: the default base).
    #[arg(long, short = 'b', value_name = "BASE")]
    pub base: Option<String>,
    /// A host directory that spawn may mount as a workspace, with everything under it;
    /// repeatable. Without it, spawn mounts no host directory.
    #[arg(long, value_name = "DIR")]
    pub allow_workspace: Vec<PathBuf>,
    /// Most instances alive at once.
    #[arg(long, value_name = "N", default_value = "8")]
    pub max_instances: usize,
    /// Timeout of exec calls that give none, in seconds.
    #[arg(long, value_name = "SECS", default_value = "120", value_parser = parse_timeout, allow_hyphen_values = true)]
    pub exec_timeout: Duration,
    /// Engine runtime of every instance, e.g. runsc (gVisor).
    #[arg(long, value_name = "RUNTIME")]
    pub runtime: Option<String>,
    /// Label K=V on every instance; repeatable.
    #[arg(long = "label", short = 'l', value_name = "K=V")]
    pub labels: Vec<String>,
}

/// What `run` launches.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The base: an image, a Dockerfile path, or nothing for the default base.
    #[arg(long, short = 'b', value_name = "BASE")]
    pub base: Option<String>,
    /// Host directory mounted read-write at /workspace (the working directory).
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// Environment variable K=V (K alone takes the host's value); repeatable.
    #[arg(long = "env", short = 'e', value_name = "K=V")]
    pub env: Vec<String>,
    /// Memory limit, e.g. 512m, 2g (bytes without a suffix).
    #[arg(long, value_name = "SIZE", value_parser = parse_size, allow_hyphen_values = true)]
    pub memory: Option<u64>,
    /// CPU limit in cores, e.g. 1.5.
    #[arg(long, value_name = "N", value_parser = parse_cpus, allow_hyphen_values = true)]
    pub cpus: Option<f64>,
    /// Network: bridge (default), none, or a named engine network.
    #[arg(long, value_name = "NET")]
    pub network: Option<String>,
    /// Hardened preset: no capabilities, read-only root with a tmpfs /tmp, no network.
    #[arg(long)]
    pub hardened: bool,
    /// Allow a privileged container when the base asks for one (a devcontainer.json with
    /// `privileged: true`); refused otherwise.
    #[arg(long)]
    pub allow_privileged: bool,
    /// Keep the instance afterwards and print its ID. A kept instance has no owner process, so
    /// `headjack sweep` leaves it alone until --expires passes; remove it with `headjack rm`.
    #[arg(long)]
    pub keep: bool,
    /// With --keep: let `headjack sweep` remove the instance after this many seconds.
    #[arg(long, value_name = "SECS", value_parser = parse_timeout, requires = "keep", allow_hyphen_values = true)]
    pub expires: Option<Duration>,
    /// Container name (default headjack-<id>).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// When to pull an image base: missing (default), always, never.
    #[arg(long, value_name = "POLICY", value_parser = ["missing", "always", "never"])]
    pub pull: Option<String>,
    /// Engine runtime, e.g. runsc.
    #[arg(long, value_name = "RUNTIME")]
    pub runtime: Option<String>,
    /// Label K=V on the container; repeatable.
    #[arg(long = "label", short = 'l', value_name = "K=V")]
    pub labels: Vec<String>,
    /// A build secret for a Dockerfile base's RUN --mount=type=secret steps: id=ID,src=FILE or
    /// id=ID,env=VAR; repeatable. Never stored in the image, logs or errors.
    #[arg(long = "secret", value_name = "id=ID,src=FILE|env=VAR", value_parser = parse_secret)]
    pub secrets: Vec<(String, SecretSource)>,
    /// Egress allow-list: the instance reaches only these hosts (pypi.org, *.pythonhosted.org,
    /// github.com:443, 10.0.0.0/8), through headjack's egress proxy, fail-closed; repeatable.
    #[arg(long = "allow-host", value_name = "PATTERN", conflicts_with_all = ["deny_hosts", "network"])]
    pub allow_hosts: Vec<String>,
    /// Egress deny-list: the instance reaches everything but these hosts (through the proxy);
    /// repeatable.
    #[arg(long = "deny-host", value_name = "PATTERN", conflicts_with = "network")]
    pub deny_hosts: Vec<String>,
    /// Publish a container TCP port on the host: PORT (a free host port on 127.0.0.1),
    /// HOST_PORT:PORT or IP:HOST_PORT:PORT; repeatable. The addresses are printed on stderr.
    #[arg(long = "publish", short = 'p', value_name = "[[IP:]HOST_PORT:]PORT")]
    pub publish: Vec<String>,
    /// Mount named volume NAME at /path (created when missing, kept afterwards; `:ro` for
    /// read-only); repeatable.
    #[arg(long = "volume", short = 'v', value_name = "NAME:/PATH[:ro]")]
    pub volumes: Vec<String>,
    /// Size of /dev/shm, e.g. 256m (the engines' default is 64m).
    #[arg(long, value_name = "SIZE", value_parser = parse_size, allow_hyphen_values = true)]
    pub shm_size: Option<u64>,
    /// The CPUs the instance may run on: 0-3, 0,2, 1.
    #[arg(long, value_name = "CPUS")]
    pub cpuset: Option<String>,
    /// A resource limit of every process, as `docker run --ulimit` takes it: NAME=SOFT[:HARD]
    /// (nofile=1024:2048, nproc=512; -1 or unlimited for no limit; HARD defaults to SOFT);
    /// repeatable.
    #[arg(long = "ulimit", value_name = "NAME=SOFT[:HARD]", value_parser = parse_ulimit)]
    pub ulimits: Vec<(String, i64, i64)>,
    /// Size of the writable root filesystem, e.g. 10g (only on storage drivers that can:
    /// overlay on xfs with pquota, btrfs, zfs; refused elsewhere).
    #[arg(long, value_name = "SIZE", value_parser = parse_size, allow_hyphen_values = true)]
    pub disk: Option<u64>,
    #[command(flatten)]
    pub exec: ExecOptions,
}

/// Options of the command itself (run and exec).
#[derive(Debug, Args)]
pub struct ExecOptions {
    /// Run as this user (name, uid or uid:gid).
    #[arg(long, short = 'u', value_name = "USER")]
    pub user: Option<String>,
    /// Working directory inside the container.
    #[arg(long, short = 'w', value_name = "DIR")]
    pub workdir: Option<String>,
    /// Kill the command inside the container after this many seconds (exit code 124).
    #[arg(long, value_name = "SECS", value_parser = parse_timeout, allow_hyphen_values = true)]
    pub timeout: Option<Duration>,
    /// Forward our standard input to the command.
    #[arg(long, short = 'i')]
    pub interactive: bool,
    /// Allocate a terminal (needs one on our stdin; implied with no command).
    #[arg(long, short = 't')]
    pub tty: bool,
    /// The command and its arguments (after `--`). None, on a terminal: an interactive shell.
    #[arg(trailing_var_arg = true, value_name = "CMD")]
    pub cmd: Vec<String>,
}

/// What `exec` runs where.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The instance (headjack ID, container name or container ID).
    pub id: String,
    /// Environment variable K=V (K alone takes the host's value); repeatable.
    #[arg(long = "env", short = 'e', value_name = "K=V")]
    pub env: Vec<String>,
    #[command(flatten)]
    pub exec: ExecOptions,
    /// Start the command as a background process and print its process ID (see `headjack
    /// proc`): it outlives this command, and its output is kept for `proc logs`.
    #[arg(long, short = 'd')]
    pub detach: bool,
}

/// What `build` resolves.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The base (default: the default base).
    pub base: Option<String>,
    /// Rebuild a Dockerfile base even if an image with its content key exists.
    #[arg(long)]
    pub no_cache: bool,
    /// When to pull an image base: missing (default), always, never.
    #[arg(long, value_name = "POLICY", value_parser = ["missing", "always", "never"])]
    pub pull: Option<String>,
    /// A build secret for RUN --mount=type=secret steps: id=ID,src=FILE or id=ID,env=VAR;
    /// repeatable. Never stored in the image, logs or errors.
    #[arg(long = "secret", value_name = "id=ID,src=FILE|env=VAR", value_parser = parse_secret)]
    pub secrets: Vec<(String, SecretSource)>,
}

/// `ps` flags.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Include instances that are not running.
    #[arg(long, short = 'a')]
    pub all: bool,
}

/// `logs` arguments.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The instance.
    pub id: String,
    /// Keep following new output.
    #[arg(long, short = 'f')]
    pub follow: bool,
}

/// `stop` arguments.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// The instances.
    #[arg(required = true)]
    pub ids: Vec<String>,
    /// Seconds to wait after SIGTERM before SIGKILL.
    #[arg(long, short = 't', value_name = "SECS", default_value = "10", value_parser = parse_timeout, allow_hyphen_values = true)]
    pub time: Duration,
}

/// `rm` arguments.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// The instances.
    #[arg(required = true)]
    pub ids: Vec<String>,
}

/// `cp` arguments.
#[derive(Debug, Args)]
pub struct CpArgs {
    /// Source: a host path, or ID:/path in an instance.
    pub src: String,
    /// Destination directory: a host directory (created if missing), or ID:/dir in an instance.
    pub dst: String,
}

/// `commit` arguments.
#[derive(Debug, Args)]
pub struct CommitArgs {
    /// The instance.
    pub id: String,
    /// The image reference to create, e.g. localhost/myagent/after-setup:1.
    pub tag: String,
}

/// `images` flags.
#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Remove all but the N most recently used headjack-built images (in-use ones are kept).
    #[arg(long, value_name = "N")]
    pub prune: Option<usize>,
}

/// Parses a size: bytes, or a number with b/k/m/g/t (binary multiples), e.g. `512m`, `2g`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').filter(|r| !r.is_empty()).unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a size (use e.g. 512m or 2g)"))?;
    if !(n.is_finite() && n > 0.0) {
        return Err(format!("{s:?} is not a positive size"));
    }
    Ok((n * mult as f64) as u64)
}

/// Parses a `--ulimit` value as `docker run --ulimit` takes it: `NAME=SOFT[:HARD]`, each value
/// a number, `-1` or `unlimited`; HARD defaults to SOFT. The name and the values' order are
/// checked by the library when spawning.
pub fn parse_ulimit(s: &str) -> Result<(String, i64, i64), String> {
    let usage = "use NAME=SOFT[:HARD], e.g. nofile=1024:2048";
    let (name, values) = s
        .split_once('=')
        .ok_or_else(|| format!("--ulimit {s:?} is not NAME=SOFT[:HARD]; {usage}"))?;
    let name = name.trim();
    if name.is_empty() {
        return Err(format!("--ulimit {s:?} has no name; {usage}"));
    }
    let value = |v: &str| match v.trim() {
        "unlimited" | "-1" => Ok(-1),
        t => t.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            format!("--ulimit {s:?}: {v:?} is not a limit (a number, -1 or unlimited); {usage}")
        }),
    };
    let (soft, hard) = match values.split_once(':') {
        Some((soft, hard)) => (value(soft)?, value(hard)?),
        None => {
            let v = value(values)?;
            (v, v)
        }
    };
    Ok((name.to_string(), soft, hard))
}

/// Parses a CPU limit: a positive number of cores.
pub fn parse_cpus(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 => Ok(n),
        Ok(_) => Err(format!(
            "{s:?} is not a positive number of cores (use e.g. 0.5 or 2)"
        )),
        Err(_) => Err(format!(
            "{s:?} is not a number of cores (use e.g. 0.5 or 2)"
        )),
    }
}

/// Parses a `--secret` value, as `docker build --secret` takes it: `id=ID,src=FILE` (also
/// `source=`), `id=ID,env=VAR`, with an optional `type=file|env`.
pub fn parse_secret(s: &str) -> Result<(String, SecretSource), String> {
    let mut id = None;
    let mut file = None;
    let mut env = None;
    let mut kind = None;
    for field in s.split(',') {
        let (k, v) = field.split_once('=').ok_or_else(|| {
            format!("{field:?} in --secret is not KEY=VALUE (use id=ID,src=FILE or id=ID,env=VAR)")
        })?;
        match k.trim() {
            "id" => id = Some(v.to_string()),
            "src" | "source" => file = Some(v.to_string()),
            "env" => env = Some(v.to_string()),
            "type" if v == "file" || v == "env" => kind = Some(v.to_string()),
            other => {
                return Err(format!(
                    "--secret does not know {other:?}; use id=ID,src=FILE or id=ID,env=VAR"
                ));
            }
        }
    }
    let id = id
        .filter(|i| !i.is_empty())
        .ok_or("--secret needs id=ID (the id in RUN --mount=type=secret,id=ID)")?;
    let source = match (file, env, kind.as_deref()) {
        (Some(f), None, None | Some("file")) if !f.is_empty() => SecretSource::File(f.into()),
        (None, Some(e), None | Some("env")) if !e.is_empty() => SecretSource::Env(e),
        // `type=env,id=X` alone reads the variable X, as docker build does.
        (None, None, Some("env")) => SecretSource::Env(id.clone()),
        _ => {
            return Err(format!(
                "--secret {id}: give exactly one source, src=FILE or env=VAR"
            ));
        }
    };
    Ok((id, source))
}

/// Parses a positive number of seconds (fractions allowed, an optional `s` suffix).
pub fn parse_timeout(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let t = t.strip_suffix('s').unwrap_or(t);
    let n: f64 = t
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(n.is_finite() && n >= 0.0) || n > 1e9 {
        return Err(format!(
            "{s:?} is not a usable number of seconds (from 0 to 1000000000)"
        ));
    }
    Ok(Duration::from_secs_f64(n))
}

/// Parses `-e` values: `K=V`, or `K` alone to take the host's value (skipped if unset).
pub fn parse_env(items: &[String]) -> Result<Vec<(String, String)>, crate::Failure> {
    let mut out = Vec::new();
    for item in items {
        match item.split_once('=') {
            Some(("", _)) => {
                return Err(crate::Failure::new(format!(
                    "-e {item:?}: the variable name is empty; use -e KEY=VALUE"
                )));
            }
            Some((k, v)) => out.push((k.to_string(), v.to_string())),
            None => {
                if item.is_empty() {
                    return Err(crate::Failure::new("-e needs KEY=VALUE"));
                }
                if let Ok(v) = std::env::var(item) {
                    out.push((item.clone(), v));
                }
            }
        }
    }
    Ok(out)
}

/// Reports a clap error: help and version go to stdout with exit 0; anything else becomes one
/// line `headjack: <what>` on stderr and exit code 125.
pub fn usage_error(e: clap::Error) -> u8 {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            0
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // `headjack` alone: the help, on stderr, and a failure code (nothing was done).
            eprint!("{}", e.render());
            EXIT_HEADJACK
        }
        _ => {
            let text = e.render().to_string();
            // The first paragraph, joined: clap puts what is missing on the lines that follow
            // ("the following required arguments were not provided:" / "  --keep").
            let first: String = text
                .lines()
                .map(str::trim)
                .skip_while(|l| l.is_empty())
                .take_while(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            let first = first.trim_start_matches("error:").trim();
            let first = if first.is_empty() {
                "invalid arguments"
            } else {
                first
            };
            let tip = text
                .lines()
                .map(str::trim)
                .find_map(|l| l.strip_prefix("tip:"))
                .map(|t| format!(" ({})", t.trim()))
                .unwrap_or_default();
            crate::report(&format!("{first}{tip}; see `headjack --help`"));
            EXIT_HEADJACK
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("2g").unwrap(), 2 << 30);
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("512mb").unwrap(), 512 << 20);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert_eq!(parse_size("1.5k").unwrap(), 1536);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("-1g").is_err());
        assert!(parse_size("").is_err());
    }

    #[test]
    fn ulimits() {
        let ok = |s: &str| parse_ulimit(s).unwrap();
        assert_eq!(ok("nofile=1024:2048"), ("nofile".into(), 1024, 2048));
        assert_eq!(ok("nproc=512"), ("nproc".into(), 512, 512));
        assert_eq!(ok("core=unlimited"), ("core".into(), -1, -1));
        assert_eq!(ok("core=0:-1"), ("core".into(), 0, -1));
        for (bad, needle) in [
            ("nofile", "not NAME=SOFT[:HARD]"),
            ("=5", "no name"),
            ("nofile=lots", "not a limit"),
            ("nofile=1:x", "not a limit"),
            ("nofile=-5", "not a limit"),
            ("nofile=", "not a limit"),
        ] {
            let e = parse_ulimit(bad).unwrap_err();
            assert!(e.contains(needle), "{bad}: {e}");
        }
        let cli = Cli::try_parse_from([
            "headjack",
            "run",
            "--ulimit",
            "nofile=10:20",
            "--ulimit",
            "nproc=5",
            "--shm-size",
            "128m",
            "--disk",
            "1g",
            "--cpuset",
            "0",
            "--",
            "true",
        ])
        .unwrap();
        match cli.command {
            Command::Run(r) => {
                assert_eq!(r.ulimits.len(), 2);
                assert_eq!(r.shm_size, Some(128 << 20));
                assert_eq!(r.disk, Some(1 << 30));
                assert_eq!(r.cpuset.as_deref(), Some("0"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout("30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_timeout("1.5s").unwrap(), Duration::from_millis(1500));
        assert!(parse_timeout("soon").is_err());
        assert!(parse_timeout("-3").is_err());
    }

    #[test]
    fn secrets() {
        use SecretSource::{Env, File};
        let ok: &[(&str, &str, SecretSource)] = &[
            (
                "id=npm,src=/home/me/.npmrc",
                "npm",
                File("/home/me/.npmrc".into()),
            ),
            ("id=npm,source=rel/path", "npm", File("rel/path".into())),
            ("type=file,id=k,src=k.pem", "k", File("k.pem".into())),
            ("id=tok,env=GITHUB_TOKEN", "tok", Env("GITHUB_TOKEN".into())),
            (
                "type=env,id=GITHUB_TOKEN",
                "GITHUB_TOKEN",
                Env("GITHUB_TOKEN".into()),
            ),
        ];
        for (text, id, source) in ok {
            assert_eq!(
                parse_secret(text).unwrap(),
                (id.to_string(), source.clone()),
                "{text}"
            );
        }
        for (text, needle) in [
            ("src=x", "needs id"),
            ("id=x", "exactly one source"),
            ("id=x,src=a,env=B", "exactly one source"),
            ("id=x,type=env,src=a", "exactly one source"),
            ("id=x,value=hunter2", "does not know"),
            ("id", "not KEY=VALUE"),
            ("id=x,src=", "exactly one source"),
        ] {
            let e = parse_secret(text).unwrap_err();
            assert!(e.contains(needle), "{text}: {e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
        let cli = Cli::try_parse_from([
            "headjack",
            "build",
            "./Dockerfile",
            "--secret",
            "id=a,env=A",
            "--secret",
            "id=b,src=b.txt",
        ])
        .unwrap();
        match cli.command {
            Command::Build(b) => assert_eq!(b.secrets.len(), 2),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn signals_and_process_ids() {
        assert_eq!(parse_signal("TERM").unwrap(), libc::SIGTERM);
        assert_eq!(parse_signal("sigkill").unwrap(), libc::SIGKILL);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("65").is_err());
        assert!(parse_signal("BOGUS").unwrap_err().contains("not a signal"));
        assert_eq!(parse_process_id("12").unwrap(), 12);
        assert!(parse_process_id("-1").is_err());
        let cli =
            Cli::try_parse_from(["headjack", "proc", "kill", "abc", "3", "-s", "INT"]).unwrap();
        match cli.command {
            Command::Proc(ProcArgs {
                command: ProcCommand::Kill(k),
            }) => {
                assert_eq!((k.target.id.as_str(), k.target.process), ("abc", 3));
                assert_eq!(k.signal, libc::SIGINT);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn command_line_shapes() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let cli =
            Cli::try_parse_from(["headjack", "run", "--base", "x", "--", "sh", "-c", "exit 3"])
                .unwrap();
        match cli.command {
            Command::Run(r) => assert_eq!(r.exec.cmd, ["sh", "-c", "exit 3"]),
            other => panic!("{other:?}"),
        }
        let cli = Cli::try_parse_from(["headjack", "exec", "abc", "ls", "-l"]).unwrap();
        match cli.command {
            Command::Exec(r) => {
                assert_eq!(r.id, "abc");
                assert_eq!(r.exec.cmd, ["ls", "-l"]);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            Cli::try_parse_from(["headjack", "ps", "--json"])
                .unwrap()
                .global
                .json
        );
    }
}

/// `stats` arguments.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// The instance.
    pub id: String,
    /// Print a sample every SECS seconds until the instance stops (Ctrl-C ends it).
    #[arg(long, value_name = "SECS", value_parser = parse_timeout, allow_hyphen_values = true)]
    pub watch: Option<Duration>,
}

/// `fork` arguments.
#[derive(Debug, Args)]
pub struct ForkArgs {
    /// The instance to fork.
    pub id: String,
    /// Keep the snapshot image when the fork is removed (it is printed with --json).
    #[arg(long)]
    pub keep_snapshot: bool,
}

/// `volume` subcommands.
#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// List the named volumes headjack created.
    Ls,
    /// Remove named volumes (refused while an instance mounts one).
    Rm {
        /// The volumes.
        #[arg(required = true)]
        names: Vec<String>,
    },
}

/// What `egress` does.
#[derive(Debug, Subcommand)]
pub enum EgressCommand {
    /// Replace the instance's policy: it applies to its next connection, HTTP request and DNS
    /// lookup (open connections the new policy denies are closed).
    Set(EgressSetArgs),
    /// Print the proxy's decisions for the instance, oldest first (the last 1000): every HTTP
    /// request, CONNECT and DNS lookup, allowed or denied, and why.
    Log(EgressLogArgs),
}

/// `egress set` arguments.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("policy").required(true).args(["allow_hosts", "deny_hosts"])))]
pub struct EgressSetArgs {
    /// The instance (headjack ID, container name or container ID).
    pub id: String,
    /// Allow only these destinations (repeatable): a host name, `*.domain`, or an address.
    #[arg(
        long = "allow-host",
        value_name = "PATTERN",
        conflicts_with = "deny_hosts"
    )]
    pub allow_hosts: Vec<String>,
    /// Allow everything but these destinations (repeatable).
    #[arg(long = "deny-host", value_name = "PATTERN")]
    pub deny_hosts: Vec<String>,
}

/// `egress log` arguments.
#[derive(Debug, Args)]
pub struct EgressLogArgs {
    /// The instance (headjack ID, container name or container ID).
    pub id: String,
}

/// `checkpoint` and `restore` arguments.
#[derive(Debug, Args)]
pub struct CheckpointArgs {
    /// The instance (headjack ID, container name or container ID).
    pub id: String,
    /// The checkpoint's name.
    pub name: String,
}
