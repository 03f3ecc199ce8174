//! `run` and `exec`: a command inside an instance with its output streamed live, its exit code
//! as ours; or an interactive shell on a terminal.

use std::io::{IsTerminal, Write};
use std::os::fd::AsRawFd;
use std::time::Duration;

use headjack::exec::StreamKind;
use headjack::spec::PullPolicy;
use headjack::{Exec, ExecStream, Instance, Network, Spec};
use tokio::sync::mpsc;

use crate::args::{ExecArgs, ExecOptions, Global, RunArgs, parse_env};
use crate::progress::Reporter;
use crate::term::{self, RawMode, Signal};
use crate::{EXIT_TIMEOUT, Failure, Outcome, connect, report};

/// How the command's input and output are wired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Output streamed to our stdout/stderr; our stdin forwarded when `stdin` is set.
    Plain { stdin: bool },
    /// A terminal inside the container, ours in raw mode, resizes forwarded.
    Tty,
}

/// Picks the argv and the mode, before anything is spawned.
fn choose(opts: &ExecOptions) -> Result<(Vec<String>, Mode), Failure> {
    let stdin_tty = std::io::stdin().is_terminal();
    if opts.cmd.is_empty() {
        if !(stdin_tty && std::io::stdout().is_terminal()) {
            return Err(Failure::new(
                "no command given: put one after `--` (e.g. `-- echo hi`), or run from a terminal for an interactive shell",
            ));
        }
        return Ok((vec!["/bin/sh".to_string()], Mode::Tty));
    }
    if opts.tty {
        if !stdin_tty {
            return Err(Failure::new(
                "--tty needs a terminal on standard input; drop -t (use -i to forward piped input)",
            ));
        }
        return Ok((opts.cmd.clone(), Mode::Tty));
    }
    Ok((
        opts.cmd.clone(),
        Mode::Plain {
            stdin: opts.interactive,
        },
    ))
}

fn exec_for(argv: Vec<String>, opts: &ExecOptions, env: &[(String, String)], mode: Mode) -> Exec {
    let mut exec = Exec::new(argv);
    for (k, v) in env {
        exec = exec.env(k, v);
    }
    if let Some(u) = &opts.user {
        exec = exec.user(u);
    }
    if let Some(w) = &opts.workdir {
        exec = exec.workdir(w);
    }
    if let Some(t) = opts.timeout {
        exec = exec.timeout(t);
    }
    match mode {
        Mode::Plain { stdin: true } => exec.interactive(true),
        Mode::Plain { stdin: false } => exec,
        Mode::Tty => {
            let exec = exec.tty(true).interactive(true);
            match std::env::var("TERM") {
                Ok(t) if !t.is_empty() && !env.iter().any(|(k, _)| k == "TERM") => {
                    exec.env("TERM", t)
                }
                _ => exec,
            }
        }
    }
}

/// `headjack run`.
pub async fn run(global: &Global, a: RunArgs) -> Outcome {
    let (argv, mode) = choose(&a.exec)?;
    let env = parse_env(&a.env)?;
    let mut spec = Spec::new();
    if let Some(b) = &a.base {
        spec = spec.base(b.as_str());
    }
    if let Some(w) = &a.workspace {
        spec = spec.workspace(w);
    }
    for (k, v) in &env {
        spec = spec.env(k, v);
    }
    if let Some(m) = a.memory {
        spec = spec.memory(m);
    }
    if let Some(c) = a.cpus {
        spec = spec.cpus(c);
    }
    if let Some(n) = &a.network {
        spec = spec.network(Network::parse(n));
    }
    if a.hardened {
        spec = spec.hardened(true);
    }
    if a.allow_privileged {
        spec = spec.allow_privileged(true);
    }
    if a.keep {
        // The instance outlives this process: it must not count as an orphan of it.
        spec = spec.detached(true);
    }
    if let Some(e) = a.expires {
        spec = spec.expires_after(e);
    }
    if let Some(n) = &a.name {
        spec = spec.name(n);
    }
    if let Some(p) = &a.pull {
        spec = spec.pull(PullPolicy::parse(p)?);
    }
    if let Some(r) = &a.runtime {
        spec = spec.runtime(r);
    }
    for (id, source) in &a.secrets {
        spec = spec.build_secret(id, source.clone());
    }
    if !a.allow_hosts.is_empty() {
        spec = spec.egress(headjack::Egress::allow(a.allow_hosts.clone()));
    } else if !a.deny_hosts.is_empty() {
        spec = spec.egress(headjack::Egress::deny(a.deny_hosts.clone()));
    }
    for l in &a.labels {
        match l.split_once('=') {
            Some((k, v)) if !k.is_empty() => spec = spec.label(k, v),
            _ => {
                return Err(Failure::new(format!(
                    "--label {l:?}: use --label KEY=VALUE"
                )));
            }
        }
    }
    spec = crate::sandbox::apply_run_options(spec, &a)?;
    let reporter = Reporter::new(global);
    if let Some(cb) = reporter.callback() {
        spec = spec.progress_fn(cb);
    }
    let client = connect(global).await?;
    let mut signals = Signals::start()?;
    let spawned = tokio::select! {
        r = client.spawn(spec) => r,
        n = signals.stop() => {
            // Dropping the spawn removes a container that was already created.
            reporter.finish();
            report("interrupted while starting the instance");
            return Ok(128 + n as u8);
        }
    };
    reporter.finish();
    let instance = spawned?;
    if a.keep {
        instance.keep();
    }
    crate::sandbox::report_ports(global, &instance, &a.publish).await;
    // The instance's env is already in the spec: the exec gets no extra env.
    let exec = exec_for(argv, &a.exec, &[], mode);
    // The instance is removed afterwards (unless --keep), which ends an interrupted command.
    let outcome = drive(&instance, exec, a.exec.timeout, mode, &mut signals, a.keep).await;
    if a.keep {
        if global.json {
            let v = serde_json::json!({
                "id": instance.id(),
                "container_id": instance.container_id(),
                "name": instance.name(),
                "image": instance.image(),
            });
            println!("{v}");
        } else {
            println!("{}", instance.id());
        }
    } else if let Err(e) = instance.remove().await {
        report(&format!("could not remove instance {}: {e}", instance.id()));
        return Err(Failure::new(format!(
            "removing instance {}: {e}",
            instance.id()
        )));
    }
    outcome
}

/// `headjack exec`.
pub async fn exec(global: &Global, a: ExecArgs) -> Outcome {
    if a.detach {
        return crate::procs::detach(global, a).await;
    }
    let (argv, mode) = choose(&a.exec)?;
    let env = parse_env(&a.env)?;
    let client = connect(global).await?;
    let instance = client.attach(&a.id).await?;
    let mut signals = Signals::start()?;
    let exec = exec_for(argv, &a.exec, &env, mode);
    drive(&instance, exec, a.exec.timeout, mode, &mut signals, true).await
}

/// The signals channel, tolerant of its thread going away.
struct Signals {
    rx: Option<mpsc::UnboundedReceiver<Signal>>,
}

impl Signals {
    fn start() -> Result<Signals, Failure> {
        let rx = term::signals()
            .map_err(|e| Failure::new(format!("cannot install signal handlers: {e}")))?;
        Ok(Signals { rx: Some(rx) })
    }

    /// The next signal; pending forever once the channel is gone.
    async fn next(&mut self) -> Signal {
        loop {
            match &mut self.rx {
                Some(rx) => match rx.recv().await {
                    Some(s) => return s,
                    None => self.rx = None,
                },
                None => std::future::pending::<()>().await,
            }
        }
    }

    /// The next stop signal (SIGINT, SIGTERM, SIGHUP), ignoring resizes.
    async fn stop(&mut self) -> i32 {
        loop {
            if let Signal::Stop(n) = self.next().await {
                return n;
            }
        }
    }
}

/// Runs `exec` in `instance` wired per `mode`; returns the exit code to leave with.
async fn drive(
    instance: &Instance,
    exec: Exec,
    timeout: Option<Duration>,
    mode: Mode,
    signals: &mut Signals,
    linger: bool,
) -> Outcome {
    let raw = match mode {
        Mode::Tty => Some(
            RawMode::enable(std::io::stdin().as_raw_fd())
                .map_err(|e| Failure::new(format!("cannot put the terminal in raw mode: {e}")))?,
        ),
        Mode::Plain { .. } => None,
    };
    let result = pump(instance, exec, mode, signals, linger).await;
    drop(raw);
    let end = result?;
    match end {
        End::Exited(status) => {
            if status.timed_out {
                let secs = timeout
                    .map(|t| format!(" of {}s", t.as_secs_f64()))
                    .unwrap_or_default();
                report(&format!(
                    "the command ran past its --timeout{secs} and was killed"
                ));
                return Ok(EXIT_TIMEOUT);
            }
            match status.code {
                c @ 0..=255 => Ok(c as u8),
                -1 => Err(Failure::new(
                    "the engine did not report the command's exit code",
                )),
                c => Ok((c & 0xff) as u8),
            }
        }
        End::Interrupted(n) => {
            report("interrupted; the command was stopped");
            Ok(128 + n as u8)
        }
    }
}

enum End {
    Exited(headjack::exec::ExitStatus),
    Interrupted(i32),
}

/// With `linger`, an interrupted command is killed inside the container before we return
/// (`ExecStream::cancel`); without, the stream is dropped and the instance removal ends it.
async fn pump(
    instance: &Instance,
    exec: Exec,
    mode: Mode,
    signals: &mut Signals,
    linger: bool,
) -> Result<End, Failure> {
    let mut stream: ExecStream = instance.exec_stream(exec).await?;
    let forward = matches!(mode, Mode::Tty | Mode::Plain { stdin: true });
    let mut stdin = if forward { stream.take_stdin() } else { None };
    let mut input = if stdin.is_some() {
        Some(term::stdin_reader())
    } else {
        None
    };
    if mode == Mode::Tty {
        resize(&stream).await;
    }
    loop {
        tokio::select! {
            chunk = stream.next() => match chunk {
                None => break,
                Some(Ok(c)) => {
                    let res = match c.stream {
                        StreamKind::Stdout => write_all(&mut std::io::stdout().lock(), &c.data),
                        StreamKind::Stderr => write_all(&mut std::io::stderr().lock(), &c.data),
                    };
                    if let Err(e) = res {
                        if e.kind() == std::io::ErrorKind::BrokenPipe {
                            // Our reader went away: stop the command, as a pipeline would.
                            return Ok(End::Interrupted(libc::SIGPIPE));
                        }
                        return Err(Failure::new(format!("writing the command's output: {e}")));
                    }
                }
                Some(Err(e)) => return Err(e.into()),
            },
            data = recv(&mut input) => match data {
                Some(d) => {
                    // A failed write: the command closed its input; keep its output flowing.
                    if let Some(w) = &mut stdin
                        && w.write(&d).await.is_err()
                    {
                        stdin = None;
                        input = None;
                    }
                }
                None => {
                    input = None;
                    if let Some(w) = stdin.take() {
                        let _ = w.close().await;
                    }
                }
            },
            sig = signals.next() => match sig {
                Signal::Resize => if mode == Mode::Tty { resize(&stream).await },
                Signal::Stop(n) => {
                    if linger {
                        // Return once the command is really gone from the container.
                        let _ = stream.cancel().await;
                    } else {
                        drop(stream);
                    }
                    return Ok(End::Interrupted(n));
                }
            },
        }
    }
    let status = stream.wait().await?;
    Ok(End::Exited(status))
}

async fn recv(input: &mut Option<mpsc::Receiver<Vec<u8>>>) -> Option<Vec<u8>> {
    match input {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

fn write_all(out: &mut impl Write, data: &[u8]) -> std::io::Result<()> {
    out.write_all(data)?;
    out.flush()
}

async fn resize(stream: &ExecStream) {
    let fd = std::io::stdout().as_raw_fd();
    if let Some((rows, cols)) = term::size(fd).or_else(|| term::size(std::io::stdin().as_raw_fd()))
    {
        // A resize that races the end of the command fails harmlessly.
        let _ = stream.resize(rows, cols).await;
    }
}
