//! `exec --detach` and `proc`: background processes of an instance. Each command attaches to the
//! instance afresh (through the agent's relay), so any invocation — also after the one that
//! started a process was killed — reaches every process the agent keeps.

use std::io::Write;

use headjack::exec::{ExitStatus, StreamKind};
use headjack::instance::ProcessInfo;
use headjack::{Exec, Instance};
use serde_json::{Value, json};

use crate::args::{
    ExecArgs, Global, ProcArgs, ProcCommand, ProcKillArgs, ProcLogsArgs, ProcRef, ProcRmArgs,
    parse_env,
};
use crate::{EXIT_TIMEOUT, Failure, Outcome, connect, report};

/// `headjack exec --detach ID -- CMD…`: prints the process ID (JSON with --json).
pub async fn detach(global: &Global, a: ExecArgs) -> Outcome {
    if a.exec.cmd.is_empty() {
        return Err(Failure::new(
            "exec --detach needs a command after `--` (e.g. `-- python3 -m http.server`)",
        ));
    }
    if a.exec.interactive {
        return Err(Failure::new(
            "exec --detach with -i: a background process has no standard input; drop -i and give it its input as a file (`headjack cp`)",
        ));
    }
    let env = parse_env(&a.env)?;
    let mut exec = Exec::new(a.exec.cmd.clone()).tty(a.exec.tty);
    for (k, v) in env {
        exec = exec.env(k, v);
    }
    if let Some(u) = &a.exec.user {
        exec = exec.user(u);
    }
    if let Some(w) = &a.exec.workdir {
        exec = exec.workdir(w);
    }
    if let Some(t) = a.exec.timeout {
        exec = exec.timeout(t);
    }
    let client = connect(global).await?;
    let instance = client.attach(&a.id).await?;
    let process = instance.start_process(exec).await?;
    if global.json {
        println!(
            "{}",
            json!({ "instance": instance.id(), "process": process.id() })
        );
    } else {
        println!("{}", process.id());
    }
    Ok(0)
}

/// `headjack proc …`.
pub async fn proc(global: &Global, a: ProcArgs) -> Outcome {
    match a.command {
        ProcCommand::Ls(l) => ls(global, &l.id).await,
        ProcCommand::Logs(l) => logs(global, l).await,
        ProcCommand::Kill(k) => kill(global, k).await,
        ProcCommand::Wait(w) => wait(global, w).await,
        ProcCommand::Rm(r) => rm(global, r).await,
    }
}

async fn instance(global: &Global, id: &str) -> Result<Instance, Failure> {
    let client = connect(global).await?;
    Ok(client.attach(id).await?)
}

/// A process the agent knows, or a clear failure naming what to do.
async fn known(instance: &Instance, target: &ProcRef) -> Result<ProcessInfo, Failure> {
    instance
        .processes()
        .await?
        .into_iter()
        .find(|p| p.id == target.process)
        .ok_or_else(|| {
            Failure::new(format!(
                "instance {} has no background process {} (never started, or removed with `proc rm`); `headjack proc ls {}` lists them",
                target.id, target.process, target.id
            ))
        })
}

fn status_json(s: &Option<ExitStatus>) -> Value {
    match s {
        None => json!({ "state": "running" }),
        Some(s) => json!({
            "state": "exited",
            "exit_code": s.code,
            "timed_out": s.timed_out,
            "oom_killed": s.oom_killed,
        }),
    }
}

fn status_text(s: &Option<ExitStatus>) -> String {
    match s {
        None => "running".into(),
        Some(s) if s.timed_out => format!("exited ({}, timed out)", s.code),
        Some(s) if s.oom_killed => format!("exited ({}, out of memory)", s.code),
        Some(s) => format!("exited ({})", s.code),
    }
}

async fn ls(global: &Global, id: &str) -> Outcome {
    let instance = instance(global, id).await?;
    let mut list = instance.processes().await?;
    list.sort_by_key(|p| p.id);
    if global.json {
        let v: Vec<Value> = list
            .iter()
            .map(|p| {
                json!({
                    "id": p.id,
                    "pid": p.pid,
                    "argv": p.argv,
                    "status": status_json(&p.status),
                    "started_ms": p.started_ms,
                })
            })
            .collect();
        println!("{}", Value::Array(v));
        return Ok(0);
    }
    let mut out = std::io::stdout().lock();
    let rows: Vec<[String; 4]> = list
        .iter()
        .map(|p| {
            [
                p.id.to_string(),
                p.pid.to_string(),
                status_text(&p.status),
                shell_words::join(&p.argv),
            ]
        })
        .collect();
    let header = ["PROC", "PID", "STATUS", "COMMAND"];
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    for r in std::iter::once(header.map(String::from)).chain(rows) {
        let _ = writeln!(
            out,
            "{:<w0$}   {:<w1$}   {:<w2$}   {}",
            r[0],
            r[1],
            r[2],
            r[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
    }
    Ok(0)
}

fn write_chunk(kind: StreamKind, data: &[u8]) -> std::io::Result<()> {
    match kind {
        StreamKind::Stdout => {
            let mut o = std::io::stdout().lock();
            o.write_all(data)?;
            o.flush()
        }
        StreamKind::Stderr => std::io::stderr().lock().write_all(data),
    }
}

fn write_failed(e: std::io::Error) -> Outcome {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        return Ok(0);
    }
    Err(Failure::new(format!("writing the process's output: {e}")))
}

async fn logs(global: &Global, a: ProcLogsArgs) -> Outcome {
    let instance = instance(global, &a.target.id).await?;
    known(&instance, &a.target).await?;
    let process = instance.process(a.target.process)?;
    if !a.follow {
        for c in process.output().await? {
            if let Err(e) = write_chunk(c.stream, &c.data) {
                return write_failed(e);
            }
        }
        return Ok(0);
    }
    let mut stream = process.attach(true).await?;
    while let Some(chunk) = stream.next().await {
        let c = chunk?;
        if let Err(e) = write_chunk(c.stream, &c.data) {
            return write_failed(e);
        }
    }
    Ok(0)
}

async fn kill(global: &Global, a: ProcKillArgs) -> Outcome {
    let instance = instance(global, &a.target.id).await?;
    let info = known(&instance, &a.target).await?;
    if let Some(s) = info.status {
        return Err(Failure::new(format!(
            "process {} of instance {} already ended (exit code {}); nothing to signal",
            a.target.process, a.target.id, s.code
        )));
    }
    instance.process(a.target.process)?.kill(a.signal).await?;
    Ok(0)
}

async fn wait(global: &Global, a: ProcRef) -> Outcome {
    let instance = instance(global, &a.id).await?;
    known(&instance, &a).await?;
    let status = instance.process(a.process)?.wait().await?;
    if global.json {
        println!("{}", status_json(&Some(status)));
    }
    if status.timed_out {
        report(&format!(
            "process {} ran past its --timeout and was killed",
            a.process
        ));
        return Ok(EXIT_TIMEOUT);
    }
    match status.code {
        c @ 0..=255 => Ok(c as u8),
        -1 => Err(Failure::new(
            "the agent did not report the process's exit code",
        )),
        c => Ok((c & 0xff) as u8),
    }
}

async fn rm(global: &Global, a: ProcRmArgs) -> Outcome {
    let instance = instance(global, &a.id).await?;
    let mut failed = 0;
    for p in &a.processes {
        match instance.process(*p)?.forget().await {
            Ok(()) if global.quiet => {}
            Ok(()) => println!("{p}"),
            Err(e) => {
                let what = match e.kind() {
                    headjack::ErrorKind::Conflict => format!(
                        "it still runs; stop it first (`headjack proc kill {} {p}`)",
                        a.id
                    ),
                    headjack::ErrorKind::NotFound => "the instance has no such process".into(),
                    _ => e.to_string(),
                };
                let line = format!("proc rm {p}: {what}");
                if a.processes.len() == 1 {
                    return Err(Failure::new(line));
                }
                report(&line);
                failed += 1;
            }
        }
    }
    if failed > 0 {
        return Err(Failure::new(format!(
            "{failed} of {} process(es) could not be removed",
            a.processes.len()
        )));
    }
    Ok(0)
}
