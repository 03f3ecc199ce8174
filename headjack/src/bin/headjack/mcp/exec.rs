//! The `exec` tool: a command with a timeout, its output bounded and marked truncated.

use super::*;

/// The argv of a command given as `command` (a shell line) or `argv` (a program and its
/// arguments), exactly one of them.
pub(super) fn command_argv(
    command: Option<String>,
    argv: Option<Vec<String>>,
) -> Result<Vec<String>, ToolError> {
    match (command, argv) {
        (Some(_), Some(_)) => Err(ToolError::invalid(
            "give either `command` (a shell command line) or `argv` (a program and its arguments), not both",
        )),
        (None, None) => Err(ToolError::invalid(
            "nothing to run: give `command` (a shell command line, e.g. \"ls -la\") or `argv` (e.g. [\"ls\", \"-la\"])",
        )),
        (Some(c), None) if c.trim().is_empty() => Err(ToolError::invalid(
            "`command` is empty: give a command line to run",
        )),
        (Some(c), None) => Ok(vec!["/bin/sh".to_string(), "-c".to_string(), c]),
        (None, Some(v)) if v.is_empty() => Err(ToolError::invalid(
            "`argv` is empty: give at least the program, e.g. [\"ls\"]",
        )),
        (None, Some(v)) => Ok(v),
    }
}

/// A command's `timeout_seconds`: more than 0, at most a day.
pub(super) fn timeout_seconds(s: f64) -> Result<Duration, ToolError> {
    if s.is_finite() && s > 0.0 && s <= tools::MAX_TIMEOUT_SECS {
        Ok(Duration::from_secs_f64(s))
    } else {
        Err(ToolError::invalid(format!(
            "timeout_seconds {s} must be more than 0 and at most {} (a day)",
            tools::MAX_TIMEOUT_SECS
        )))
    }
}

/// The bound on each output stream a caller asked for, within the server's.
pub(super) fn output_limit(asked: Option<usize>) -> usize {
    asked
        .unwrap_or(tools::DEFAULT_MAX_OUTPUT)
        .min(tools::MAX_OUTPUT)
}

impl Session {
    pub(super) async fn exec(&self, a: ExecArgs) -> Result<Reply, ToolError> {
        let instance = self.instance(&a.instance)?;
        let argv = command_argv(a.command, a.argv)?;
        let timeout = match a.timeout_seconds {
            None => self.config.exec_timeout,
            Some(s) => timeout_seconds(s)?,
        };
        let limit = output_limit(a.max_output_bytes);
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
        push_output(&mut text, &out, &err);
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
}

/// Appends stdout and stderr as kept, each under a `--- name` line that says what was omitted.
pub(super) fn push_output(text: &mut String, out: &Kept, err: &Kept) {
    for (name, k) in [("stdout", out), ("stderr", err)] {
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
}
