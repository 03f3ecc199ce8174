//! A BuildKit build's status stream turned into the lines headjack reports, in the shape of
//! BuildKit's own plain progress output: `#3 [2/4] RUN make` when a step starts, its output as
//! `#3 <line>`, then `#3 DONE 1.2s`, `#3 CACHED` or `#3 ERROR: <why>`. The steps are numbered
//! in the order the stream first names them.
//!
//! It also remembers what a failure report needs: the step that failed and the tail of its
//! output.

use std::collections::{HashMap, VecDeque};

use super::logtail::{LOG_TAIL_LINES, clean_line};
use super::proto::{StatusResponse, Vertex};

/// What is known of one step.
#[derive(Debug, Default)]
struct Step {
    number: usize,
    name: String,
    announced: bool,
    finished: bool,
    error: Option<String>,
    /// Output not yet ended by a newline, per stream.
    partial: HashMap<i64, Vec<u8>>,
    /// The step's last output lines.
    tail: VecDeque<String>,
}

/// The steps of one build, as its status stream describes them.
#[derive(Debug, Default)]
pub(crate) struct BuildStatus {
    steps: HashMap<String, Step>,
    /// Digests of failed steps, in the order they failed.
    failed: Vec<String>,
}

impl BuildStatus {
    /// Applies one status message; returns the lines to report, in order.
    pub(crate) fn apply(&mut self, msg: &StatusResponse) -> Vec<String> {
        let mut out = Vec::new();
        for v in &msg.vertexes {
            self.vertex(v, &mut out);
        }
        for log in &msg.logs {
            let next = self.steps.len() + 1;
            let step = self
                .steps
                .entry(log.vertex.clone())
                .or_insert_with(|| Step {
                    number: next,
                    ..Step::default()
                });
            let buf = step.partial.entry(log.stream).or_default();
            buf.extend_from_slice(&log.msg);
            while let Some(end) = buf.iter().position(|&b| b == b'\n') {
                let raw: Vec<u8> = buf.drain(..=end).collect();
                let line = clean_line(&String::from_utf8_lossy(&raw));
                if line.is_empty() {
                    continue;
                }
                out.push(format!("#{} {line}", step.number));
                push_tail(&mut step.tail, line);
            }
        }
        out
    }

    fn vertex(&mut self, v: &Vertex, out: &mut Vec<String>) {
        let next = self.steps.len() + 1;
        let step = self.steps.entry(v.digest.clone()).or_insert_with(|| Step {
            number: next,
            ..Step::default()
        });
        if !v.name.is_empty() {
            step.name = clean_line(&v.name);
        }
        let n = step.number;
        if !step.announced && (v.started.is_some() || v.cached || v.completed.is_some()) {
            step.announced = true;
            out.push(format!("#{n} {}", step.name));
        }
        if step.finished {
            return;
        }
        if !v.error.is_empty() {
            step.finished = true;
            // Output still buffered without a newline belongs to the report.
            let mut streams: Vec<_> = step.partial.drain().collect();
            streams.sort_by_key(|(s, _)| *s);
            for (_, rest) in streams {
                let line = clean_line(&String::from_utf8_lossy(&rest));
                if !line.is_empty() {
                    out.push(format!("#{n} {line}"));
                    push_tail(&mut step.tail, line);
                }
            }
            let error = clean_line(&v.error);
            out.push(format!("#{n} ERROR: {error}"));
            step.error = Some(error);
            self.failed.push(v.digest.clone());
        } else if v.cached {
            step.finished = true;
            out.push(format!("#{n} CACHED"));
        } else if let (Some(started), Some(completed)) = (&v.started, &v.completed) {
            step.finished = true;
            out.push(format!(
                "#{n} DONE {:.1}s",
                started.seconds_until(completed)
            ));
        }
    }

    /// The step that failed first for a reason of its own (others then fail with "context
    /// canceled"): its name without the `[2/4] ` position, its error and its last output lines.
    pub(crate) fn failure(&self) -> Option<(String, String, Vec<String>)> {
        let own = |d: &&String| {
            self.steps[*d]
                .error
                .as_deref()
                .is_some_and(|e| !e.contains("context canceled"))
        };
        let digest = self
            .failed
            .iter()
            .find(own)
            .or_else(|| self.failed.first())?;
        let step = &self.steps[digest];
        Some((
            step_name(&step.name),
            step.error.clone().unwrap_or_default(),
            step.tail.iter().cloned().collect(),
        ))
    }
}

fn push_tail(tail: &mut VecDeque<String>, line: String) {
    if tail.len() == LOG_TAIL_LINES {
        tail.pop_front();
    }
    tail.push_back(line);
}

/// `[stage-1 2/4] RUN make` → `RUN make`; names without a position stay as they are.
fn step_name(name: &str) -> String {
    match name.strip_prefix('[').and_then(|r| r.split_once("] ")) {
        Some((position, rest)) if position.contains('/') => rest.to_string(),
        _ => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::proto::{Timestamp, VertexLog};
    use super::*;

    fn vertex(digest: &str, name: &str) -> Vertex {
        Vertex {
            digest: digest.into(),
            name: name.into(),
            ..Vertex::default()
        }
    }

    fn at(seconds: i64) -> Option<Timestamp> {
        Some(Timestamp { seconds, nanos: 0 })
    }

    fn log(digest: &str, msg: &[u8]) -> VertexLog {
        VertexLog {
            vertex: digest.into(),
            stream: 1,
            msg: msg.to_vec(),
        }
    }

    #[test]
    fn steps_are_numbered_announced_logged_and_finished() {
        let mut s = BuildStatus::default();
        let mut lines = Vec::new();
        let mut a = vertex("a", "[internal] load build definition from Dockerfile");
        a.started = at(10);
        let mut b = vertex("b", "[2/2] RUN make");
        lines.extend(s.apply(&StatusResponse {
            vertexes: vec![a.clone(), b.clone()],
            logs: vec![],
        }));
        a.completed = at(11);
        b.started = at(11);
        lines.extend(s.apply(&StatusResponse {
            vertexes: vec![a.clone(), b.clone()],
            logs: vec![
                log("b", b"compiling \x1b[1mmain\x1b[0m\npart"),
                log("b", b"ial\n"),
            ],
        }));
        let mut c = vertex("c", "[1/2] FROM busybox");
        c.cached = true;
        c.started = at(11);
        lines.extend(s.apply(&StatusResponse {
            vertexes: vec![c],
            logs: vec![],
        }));
        b.completed = at(13);
        // Repeated updates of a finished step add nothing.
        lines.extend(s.apply(&StatusResponse {
            vertexes: vec![b.clone(), b],
            logs: vec![],
        }));
        assert_eq!(
            lines,
            [
                "#1 [internal] load build definition from Dockerfile",
                "#1 DONE 1.0s",
                "#2 [2/2] RUN make",
                "#2 compiling main",
                "#2 partial",
                "#3 [1/2] FROM busybox",
                "#3 CACHED",
                "#2 DONE 2.0s",
            ]
        );
        assert!(s.failure().is_none());
    }

    #[test]
    fn the_first_own_failure_is_reported_with_its_output() {
        let mut s = BuildStatus::default();
        let mut ok = vertex("x", "[stage-1 3/3] RUN sleep 5");
        ok.started = at(1);
        let mut bad = vertex("y", "[stage-0 2/2] RUN echo boom && exit 7");
        bad.started = at(1);
        s.apply(&StatusResponse {
            vertexes: vec![ok.clone(), bad.clone()],
            logs: vec![log("y", b"boom\n"), log("y", b"\x1b[91mno newline")],
        });
        ok.error = "context canceled".into();
        bad.error = "executor failed running [/bin/sh -c echo boom && exit 7]: exit code: 7".into();
        let lines = s.apply(&StatusResponse {
            vertexes: vec![ok, bad],
            logs: vec![],
        });
        assert_eq!(lines[0], "#1 ERROR: context canceled");
        assert_eq!(lines[1], "#2 no newline");
        assert!(lines[2].starts_with("#2 ERROR: executor failed"));
        let (step, error, tail) = s.failure().unwrap();
        assert_eq!(step, "RUN echo boom && exit 7");
        assert!(error.contains("exit code: 7"));
        assert_eq!(tail, ["boom", "no newline"]);
    }

    #[test]
    fn step_names_lose_their_position() {
        assert_eq!(step_name("[2/4] RUN make"), "RUN make");
        assert_eq!(step_name("[build 1/3] COPY . ."), "COPY . .");
        assert_eq!(
            step_name("[internal] load metadata"),
            "[internal] load metadata"
        );
        assert_eq!(step_name("exporting to image"), "exporting to image");
    }
}
