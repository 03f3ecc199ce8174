//! Background processes, kept by the in-container agent between calls: `start_process`,
//! `process_output`, `kill_process`, `wait_process` and `list_processes`, on top of the core's
//! `Instance::start_process` / `Instance::processes` / `Process`.

use headjack::exec::ExitStatus;
use headjack::instance::ProcessInfo;
use serde_json::Map;

use super::exec::{command_argv, output_limit, push_output, timeout_seconds};
use super::*;
use tools::{ProcessId, SignalArg};

/// Refuses an instance that runs without the agent: only the agent keeps processes.
pub(super) fn need_agent(id: &str, has_agent: bool) -> Result<(), ToolError> {
    if has_agent {
        return Ok(());
    }
    Err(ToolError::new(
        headjack::ErrorKind::Unsupported.as_str(),
        format!(
            "instance {id} runs without headjack's in-container agent (its engine runs another \
             CPU architecture, or the agent could not be delivered or started there), and only the agent keeps \
             background processes; use exec with timeout_seconds instead, or `nohup CMD > \
             /tmp/out.log 2>&1 &` through exec and read_file on the log"
        ),
    ))
}

/// A process's state as data: `state` (`running` or `exited`), and once it ended its
/// `exit_code`, `exit_reason`, `timed_out` and `oom_killed`.
pub(super) fn status_fields(status: Option<&ExitStatus>) -> Map<String, Value> {
    let v = match status {
        None => json!({ "state": "running" }),
        Some(s) => json!({
            "state": "exited",
            "exit_code": s.code,
            "exit_reason": s.exit_reason(),
            "timed_out": s.timed_out,
            "oom_killed": s.oom_killed,
        }),
    };
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// A process's state in words: `running`, or `exited: <reason> (exit code N)`.
pub(super) fn status_text(status: Option<&ExitStatus>) -> String {
    match status {
        None => "running".into(),
        Some(s) => format!("exited: {} (exit code {})", s.exit_reason(), s.code),
    }
}

/// `fields` plus `more`, as one JSON object.
fn merged(mut fields: Map<String, Value>, more: Value) -> Value {
    if let Value::Object(m) = more {
        fields.extend(m);
    }
    Value::Object(fields)
}

/// A wait bound given in seconds: more than 0 (or 0 too, with `allow_zero`), at most `max`.
fn seconds(name: &str, s: f64, allow_zero: bool, max: f64) -> Result<Duration, ToolError> {
    let low_ok = if allow_zero { s >= 0.0 } else { s > 0.0 };
    if s.is_finite() && low_ok && s <= max {
        return Ok(Duration::from_secs_f64(s));
    }
    let low = if allow_zero {
        "0 or more"
    } else {
        "more than 0"
    };
    Err(ToolError::invalid(format!(
        "{name} {s} must be {low} and at most {max}"
    )))
}

/// How long `kill_process` waits for the end by default: not at all after a signal that does
/// not end a process (STOP, CONT, TSTP, WINCH).
fn default_kill_wait(signal: i32) -> Duration {
    if [libc::SIGSTOP, libc::SIGCONT, libc::SIGTSTP, libc::SIGWINCH].contains(&signal) {
        Duration::ZERO
    } else {
        Duration::from_secs_f64(tools::DEFAULT_KILL_WAIT_SECS)
    }
}

impl Session {
    /// The live instance `instance`, which must run the agent, and what the agent knows of its
    /// process `process`.
    async fn process_of(
        &self,
        instance: &str,
        process: &ProcessId,
    ) -> Result<(Arc<Instance>, ProcessInfo), ToolError> {
        let handle = self.instance(instance)?;
        need_agent(instance, handle.has_agent())?;
        let id = process.get().map_err(ToolError::invalid)?;
        let list = handle.processes().await?;
        match list.iter().find(|p| p.id == id) {
            Some(p) => {
                let p = p.clone();
                Ok((handle, p))
            }
            None => {
                let mut ids: Vec<u64> = list.iter().map(|p| p.id).collect();
                ids.sort_unstable();
                let known = if ids.is_empty() {
                    "it has none: start one with start_process".to_string()
                } else {
                    format!(
                        "its processes are: {}",
                        ids.iter()
                            .map(u64::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                Err(ToolError::new(
                    "not_found",
                    format!("instance {instance} has no background process {id}; {known}"),
                ))
            }
        }
    }

    pub(super) async fn start_process(&self, a: StartProcessArgs) -> Result<Reply, ToolError> {
        let instance = self.instance(&a.instance)?;
        need_agent(&a.instance, instance.has_agent())?;
        let argv = command_argv(a.command, a.argv)?;
        let mut exec = Exec::new(argv.clone());
        if let Some(s) = a.timeout_seconds {
            exec = exec.timeout(timeout_seconds(s)?);
        }
        for (k, v) in a.env.iter().flatten() {
            exec = exec.env(k, v);
        }
        if let Some(w) = a.workdir {
            exec = exec.workdir(w);
        }
        if let Some(u) = a.user {
            exec = exec.user(u);
        }
        let process = instance.start_process(exec).await?;
        let id = process.id();
        Ok(Reply {
            text: format!(
                "started process {id} in instance {}: {}\nIt runs in the background: pass \
                 \"process\": {id} to process_output (what it wrote so far), kill_process or \
                 wait_process.",
                a.instance,
                shell_words::join(&argv)
            ),
            data: json!({ "instance": a.instance, "process": id, "argv": argv }),
        })
    }

    pub(super) async fn process_output(&self, a: ProcessOutputArgs) -> Result<Reply, ToolError> {
        let limit = output_limit(a.max_output_bytes);
        // The state first: a process reported ended has all its output in what follows.
        let (instance, info) = self.process_of(&a.instance, &a.process).await?;
        let chunks = instance.process(info.id)?.output().await?;
        let (mut out, mut err) = (Bounded::new(limit), Bounded::new(limit));
        for c in &chunks {
            match c.stream {
                StreamKind::Stdout => out.push(&c.data),
                StreamKind::Stderr => err.push(&c.data),
            }
        }
        let (out, err) = (out.finish(), err.finish());
        let mut text = format!(
            "process {} ({}): {}\n",
            info.id,
            shell_words::join(&info.argv),
            status_text(info.status.as_ref())
        );
        push_output(&mut text, &out, &err);
        Ok(Reply {
            text,
            data: merged(
                status_fields(info.status.as_ref()),
                json!({
                    "process": info.id,
                    "stdout": out.text,
                    "stderr": err.text,
                    "stdout_truncated": out.omitted > 0,
                    "stderr_truncated": err.omitted > 0,
                }),
            ),
        })
    }

    pub(super) async fn kill_process(&self, a: KillProcessArgs) -> Result<Reply, ToolError> {
        let signal = SignalArg::number(a.signal.as_ref())?;
        let wait = match a.wait_seconds {
            None => default_kill_wait(signal),
            Some(s) => seconds("wait_seconds", s, true, tools::MAX_KILL_WAIT_SECS)?,
        };
        let (instance, info) = self.process_of(&a.instance, &a.process).await?;
        if let Some(s) = &info.status {
            return Err(ToolError::new(
                "conflict",
                format!(
                    "process {} already ended ({}); there is nothing to signal",
                    info.id,
                    status_text(Some(s))
                ),
            ));
        }
        let process = instance.process(info.id)?;
        process.kill(signal).await?;
        let status = if wait.is_zero() {
            None
        } else {
            match tokio::time::timeout(wait, process.wait()).await {
                Ok(s) => Some(s?),
                Err(_) => None,
            }
        };
        let mut text = format!("sent signal {signal} to process {}", info.id);
        match &status {
            Some(s) => text.push_str(&format!("; it ended: {}", status_text(Some(s)))),
            None if wait.is_zero() => {}
            None => text.push_str(&format!(
                "; it still runs after {} seconds (it may catch or ignore that signal: send \
                 \"KILL\" to force it)",
                wait.as_secs_f64()
            )),
        }
        Ok(Reply {
            text,
            data: merged(
                status_fields(status.as_ref()),
                json!({ "process": info.id, "signal": signal }),
            ),
        })
    }

    pub(super) async fn wait_process(&self, a: WaitProcessArgs) -> Result<Reply, ToolError> {
        let timeout = match a.timeout_seconds {
            None => self
                .config
                .exec_timeout
                .min(Duration::from_secs_f64(tools::MAX_WAIT_SECS)),
            Some(s) => seconds("timeout_seconds", s, false, tools::MAX_WAIT_SECS)?,
        };
        let (instance, info) = self.process_of(&a.instance, &a.process).await?;
        let status = match info.status {
            Some(s) => Some(s),
            None => match tokio::time::timeout(timeout, instance.process(info.id)?.wait()).await {
                Ok(s) => Some(s?),
                Err(_) => None,
            },
        };
        let text = match &status {
            Some(s) => format!("process {} {}", info.id, status_text(Some(s))),
            None => format!(
                "process {} still runs after {} seconds; it goes on (process_output shows what \
                 it wrote, kill_process stops it)",
                info.id,
                timeout.as_secs_f64()
            ),
        };
        Ok(Reply {
            text,
            data: merged(
                status_fields(status.as_ref()),
                json!({ "process": info.id }),
            ),
        })
    }

    pub(super) async fn list_processes(&self, a: InstanceArgs) -> Result<Reply, ToolError> {
        let instance = self.instance(&a.instance)?;
        need_agent(&a.instance, instance.has_agent())?;
        let mut list = instance.processes().await?;
        list.sort_by_key(|p| p.id);
        let mut text = format!("{} background process(es)\n", list.len());
        let mut rows = Vec::new();
        for p in &list {
            let command = shell_words::join(&p.argv);
            text.push_str(&format!(
                "{}  pid {}  {}  {command}\n",
                p.id,
                p.pid,
                status_text(p.status.as_ref())
            ));
            rows.push(merged(
                status_fields(p.status.as_ref()),
                json!({
                    "process": p.id, "pid": p.pid, "argv": p.argv, "started_ms": p.started_ms,
                }),
            ));
        }
        Ok(Reply {
            text,
            data: json!({ "instance": a.instance, "processes": rows }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: i64, timed_out: bool, oom_killed: bool) -> ExitStatus {
        ExitStatus {
            code,
            timed_out,
            oom_killed,
            kill_failed: false,
        }
    }

    #[test]
    fn states_and_exit_reasons() {
        assert_eq!(status_text(None), "running");
        assert_eq!(
            status_fields(None),
            *json!({"state": "running"}).as_object().unwrap()
        );
        let killed = status(143, false, false);
        assert_eq!(
            status_text(Some(&killed)),
            "exited: killed by signal 15 (exit code 143)"
        );
        let f = status_fields(Some(&killed));
        assert_eq!(f["state"], "exited");
        assert_eq!(f["exit_code"], 143);
        assert_eq!(f["exit_reason"], "killed by signal 15");
        assert_eq!(status(0, false, false).exit_reason(), "exited with code 0");
        assert_eq!(status(137, true, false).exit_reason(), "timed out");
        assert_eq!(
            status(137, false, true).exit_reason(),
            "killed: out of memory"
        );
    }

    #[test]
    fn an_instance_without_the_agent_is_refused_clearly() {
        assert!(need_agent("abc", true).is_ok());
        let e = need_agent("abc", false).unwrap_err();
        assert_eq!(e.kind, "unsupported");
        assert!(
            e.message.contains("instance abc") && e.message.contains("agent"),
            "{}",
            e.message
        );
        assert!(e.message.contains("exec"), "says what to do instead");
    }

    #[test]
    fn kill_waits_only_after_signals_that_end_processes() {
        assert_eq!(default_kill_wait(libc::SIGTERM), Duration::from_secs(3));
        assert_eq!(default_kill_wait(libc::SIGKILL), Duration::from_secs(3));
        assert_eq!(default_kill_wait(libc::SIGSTOP), Duration::ZERO);
        assert_eq!(default_kill_wait(libc::SIGCONT), Duration::ZERO);
    }

    #[test]
    fn wait_bounds() {
        assert_eq!(
            seconds("wait_seconds", 0.0, true, 60.0).unwrap(),
            Duration::ZERO
        );
        assert!(seconds("timeout_seconds", 0.0, false, 60.0).is_err());
        assert!(seconds("wait_seconds", 61.0, true, 60.0).is_err());
        assert!(seconds("wait_seconds", f64::NAN, true, 60.0).is_err());
        let e = seconds("wait_seconds", -1.0, true, 60.0).unwrap_err();
        assert!(
            e.message.contains("wait_seconds -1 must be 0 or more"),
            "{}",
            e.message
        );
    }
}
