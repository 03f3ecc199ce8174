//! Build output as headjack reports it: lines without terminal control sequences, the tail kept
//! for a failure report, and the `BuildFailed` error made from them.

use std::collections::VecDeque;

use crate::error::{BuildFailure, Error, ErrorKind};

/// How many lines of output a failure report keeps.
pub(crate) const LOG_TAIL_LINES: usize = 30;

/// One line of build output as it is reported: terminal escape sequences (colours, cursor
/// moves, titles) removed, a carriage-return-overwritten line reduced to what a terminal would
/// show last, other control characters dropped, trailing whitespace trimmed.
pub(crate) fn clean_line(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                // CSI: parameters and intermediates, then one final byte in @..~.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC (and the other string sequences): up to BEL or ESC \.
                Some(']' | 'P' | 'X' | '^' | '_') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' {
                            break;
                        }
                        if c == '\u{1b}' && chars.peek() == Some(&'\\') {
                            chars.next();
                            break;
                        }
                    }
                }
                // Two-character sequences (ESC c, ESC 7, charset selection ESC ( B …).
                Some('(' | ')' | '*' | '+') => {
                    chars.next();
                }
                _ => {}
            },
            // The 8-bit CSI.
            '\u{9b}' => {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            '\r' => {
                // A terminal shows what was written after the last carriage return, unless
                // nothing was.
                if chars.peek().is_some_and(|&n| n != '\n') {
                    out.clear();
                }
            }
            '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    out
}

/// The last lines of classic-builder output and the step they belong to.
#[derive(Default)]
pub(crate) struct LogTail {
    lines: VecDeque<String>,
    last_step: Option<String>,
}

impl LogTail {
    /// Keeps a line (cleaned); a `Step 3/5 : RUN make` line names the current step.
    pub(crate) fn push(&mut self, line: &str) {
        let line = clean_line(line);
        if line.is_empty() {
            return;
        }
        // Docker: "Step 3/5 : RUN make"; Podman/buildah: "STEP 3/5: RUN make".
        let upper = line.get(..5).map(|s| s.to_ascii_uppercase());
        if upper.as_deref() == Some("STEP ")
            && let Some((_, step)) = line.split_once(':')
        {
            self.last_step = Some(step.trim().to_string());
        }
        if self.lines.len() == LOG_TAIL_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }

    /// The step and the lines, for [`build_error`].
    pub(crate) fn into_parts(self) -> (Option<String>, Vec<String>) {
        (self.last_step, self.lines.into_iter().collect())
    }
}

/// The `BuildFailed` error for `tag`: why (the engine's words), the failing step if known and
/// the last lines of output, all without terminal escape sequences.
pub(crate) fn build_error(tag: &str, why: &str, step: Option<String>, tail: Vec<String>) -> Error {
    let why = why
        .lines()
        .map(clean_line)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    let tail: Vec<String> = tail
        .iter()
        .map(|l| clean_line(l))
        .filter(|l| !l.is_empty())
        .collect();
    let at = step
        .as_deref()
        .map(|s| format!(" at step `{s}`"))
        .unwrap_or_default();
    let shown = tail
        .iter()
        .rev()
        .take(5)
        .rev()
        .cloned()
        .collect::<Vec<_>>()
        .join("\n  ");
    let advice = unsupported_flag_advice(&why).unwrap_or(
        "Fix the Dockerfile step and spawn again; unchanged steps come from the layer cache",
    );
    Error::new(
        ErrorKind::BuildFailed,
        format!("building {tag} failed{at}: {why}\n  {shown}\n{advice}"),
    )
    .with_build_failure(BuildFailure {
        step,
        log_tail: tail,
    })
}

/// Advice for an engine whose Dockerfile parser rejects a flag newer frontends have.
fn unsupported_flag_advice(why: &str) -> Option<&'static str> {
    let lower = why.to_ascii_lowercase();
    (lower.contains("unknown flag") || lower.contains("only supports the")).then_some(
        "This engine's Dockerfile frontend is older than the Dockerfile: remove the flag, or \
         build on an engine whose frontend supports it (Docker 23+ for COPY --link, 25+ for \
         ADD --checksum)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_lose_escape_sequences_and_overwritten_text() {
        let cases = [
            (
                "\u{1b}[91mE: Unable to locate package\u{1b}[0m",
                "E: Unable to locate package",
            ),
            ("\u{1b}[1;32mok\u{1b}[m done", "ok done"),
            ("\u{1b}]0;title\u{7}text", "text"),
            ("\u{1b}]8;;http://x\u{1b}\\link\u{1b}]8;;\u{1b}\\", "link"),
            ("\u{1b}(Bplain", "plain"),
            ("10%\r50%\r100%", "100%"),
            ("done\r\n", "done"),
            ("tab\tkept\u{7}\u{0}", "tab\tkept"),
            ("\u{9b}31mred", "red"),
            ("trailing   ", "trailing"),
            ("\u{1b}[", ""),
            ("\u{1b}", ""),
        ];
        for (raw, want) in cases {
            assert_eq!(clean_line(raw), want, "{raw:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn cleaned_lines_hold_no_control_characters(raw in "(\\PC|[\\x00-\\x1f\\x7f\\x{9b}]|\\x1b\\[[0-9;]{0,6}[A-Za-z]){0,40}") {
            let clean = clean_line(&raw);
            proptest::prop_assert!(
                clean.chars().all(|c| c == '\t' || !c.is_control()),
                "{:?} -> {:?}",
                raw,
                clean
            );
            proptest::prop_assert_eq!(clean_line(&clean), clean.clone(), "not idempotent");
        }
    }

    #[test]
    fn log_tail_finds_docker_and_podman_steps() {
        let mut t = LogTail::default();
        t.push("Step 2/3 : RUN false");
        assert_eq!(t.last_step.as_deref(), Some("RUN false"));
        t.push("STEP 3/3: RUN exit 3");
        assert_eq!(t.last_step.as_deref(), Some("RUN exit 3"));
        for i in 0..100 {
            t.push(&format!("\u{1b}[33mline {i}\u{1b}[0m"));
        }
        let (_, lines) = t.into_parts();
        assert_eq!(lines.len(), LOG_TAIL_LINES);
        assert_eq!(lines.last().map(String::as_str), Some("line 99"));
    }

    #[test]
    fn build_error_names_step_and_tail_without_colours() {
        let mut t = LogTail::default();
        t.push("Step 2/2 : RUN echo boom && false");
        t.push("\u{1b}[91mboom\u{1b}[0m");
        let (step, tail) = t.into_parts();
        let e = build_error(
            "localhost/headjack/x:1",
            "The command returned a non-zero code: 1\u{1b}[0m\n",
            step,
            tail,
        );
        assert_eq!(e.kind(), ErrorKind::BuildFailed);
        assert_eq!(e.build_step(), Some("RUN echo boom && false"));
        assert!(e.message().contains("boom"));
        assert!(!e.message().contains('\u{1b}'), "{:?}", e.message());
        assert!(e.build_log().iter().any(|l| l == "boom"));
        assert!(e.build_log().iter().all(|l| !l.contains('\u{1b}')));
    }

    #[test]
    fn unknown_flags_get_advice() {
        let e = build_error(
            "t",
            "failed to solve with frontend dockerfile.v0: failed to create LLB definition: dockerfile parse error line 2: Unknown flag: link",
            None,
            vec![],
        );
        assert!(e.message().contains("frontend is older"), "{e}");
    }
}
