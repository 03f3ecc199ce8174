//! Just enough Dockerfile parsing for the cache key: which external images a build reads.
//!
//! The key includes the local image ID of every image a build starts from or copies from, so a
//! re-pulled or rebuilt parent changes it. This module finds their references as the builder
//! will see them: `FROM` lines (not `scratch`, not earlier stage names) after substituting the
//! global `ARG`s, plus `COPY --from=<image>` and `RUN --mount=…,from=<image>`. It follows the
//! Dockerfile reference for parser directives (`# escape=`), line continuations, comments,
//! case-insensitive instructions and BuildKit heredocs (skipped, so their bodies are not read as
//! instructions).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::LazyLock;

use regex::Regex;

use crate::{Error, ErrorKind, Result};

/// One instruction after joining continuation lines.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Instruction {
    /// The 1-based line where it starts, for messages.
    line: usize,
    /// The instruction word, uppercased.
    keyword: String,
    /// Everything after the keyword, trimmed.
    args: String,
}

/// Declared ARGs of a scope: `None` is declared without a value (unset).
type Vars = HashMap<String, Option<String>>;

/// The image references a Dockerfile reads, in order of first appearance, without duplicates.
///
/// `build_args` override the defaults of declared `ARG`s (an undeclared build arg is not
/// visible, as in Docker). References are returned as written after substitution, not
/// normalised. A Dockerfile without `FROM`, a `FROM` that names nothing after substitution or a
/// `${VAR:?message}` on an unset variable is an `InvalidBase` error naming the line.
pub(crate) fn external_images(
    dockerfile: &str,
    build_args: &BTreeMap<String, String>,
) -> Result<Vec<String>> {
    let escape = escape_char(dockerfile);
    let instructions = instructions(dockerfile, escape);
    let mut global: Vars = HashMap::new();
    let mut stage: Vars = HashMap::new();
    let mut stages: Vec<String> = Vec::new();
    let mut in_stage = false;
    let mut images = Vec::new();
    let mut seen = HashSet::new();

    for ins in &instructions {
        let fail = |why: String| {
            Error::new(
                ErrorKind::InvalidBase,
                format!("Dockerfile line {}: {why}", ins.line),
            )
        };
        // Adds a reference unless it is a stage, a stage index or scratch.
        let mut add = |reference: String, stages: &[String]| {
            let lower = reference.to_ascii_lowercase();
            let internal = lower.is_empty()
                || lower == "scratch"
                || lower.bytes().all(|b| b.is_ascii_digit())
                || stages.contains(&lower);
            if !internal && seen.insert(reference.clone()) {
                images.push(reference);
            }
        };
        match ins.keyword.as_str() {
            "ARG" => {
                for word in split_words(&ins.args, escape) {
                    let (name, default) = match word.split_once('=') {
                        Some((name, value)) => (name.to_string(), Some(value)),
                        None => (word.clone(), None),
                    };
                    let scope = if in_stage { &stage } else { &global };
                    let default = match default {
                        Some(raw) => Some(expand(raw, scope, escape).map_err(fail)?),
                        None => None,
                    };
                    let value = match build_args.get(&name) {
                        Some(given) => Some(given.clone()),
                        // Inside a stage, a bare `ARG X` imports the global value.
                        None if in_stage && default.is_none() => {
                            global.get(&name).cloned().flatten()
                        }
                        None => default,
                    };
                    if in_stage {
                        stage.insert(name, value);
                    } else {
                        global.insert(name, value);
                    }
                }
            }
            "FROM" => {
                in_stage = true;
                stage.clear();
                let words: Vec<String> = split_words(&ins.args, escape)
                    .into_iter()
                    .filter(|w| !w.starts_with("--"))
                    .collect();
                let Some(raw) = words.first() else {
                    return Err(fail("FROM names no image".into()));
                };
                let image = expand(raw, &global, escape).map_err(fail)?;
                if image.is_empty() {
                    return Err(fail(format!(
                        "FROM {raw} names no image after ARG substitution; declare the ARG with a \
                         default before the first FROM or pass it as a build arg"
                    )));
                }
                add(image, &stages);
                if words.len() >= 3 && words[1].eq_ignore_ascii_case("as") {
                    stages.push(words[2].to_ascii_lowercase());
                }
            }
            "COPY" | "ADD" => {
                for flag in leading_flags(&ins.args, escape) {
                    if let Some(from) = flag.strip_prefix("--from=") {
                        add(expand(from, &stage, escape).map_err(fail)?, &stages);
                    }
                }
            }
            "RUN" => {
                for flag in leading_flags(&ins.args, escape) {
                    let Some(mount) = flag.strip_prefix("--mount=") else {
                        continue;
                    };
                    for field in mount.split(',') {
                        if let Some((key, value)) = field.split_once('=')
                            && key.trim().eq_ignore_ascii_case("from")
                        {
                            add(expand(value.trim(), &stage, escape).map_err(fail)?, &stages);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    if !in_stage {
        return Err(Error::new(
            ErrorKind::InvalidBase,
            "the Dockerfile has no FROM instruction".to_string(),
        ));
    }
    Ok(images)
}

/// The escape character set by a `# escape=` parser directive (default `\`).
///
/// Directives are only read at the very top; the first line that is not a known directive ends
/// them (so an unknown `# foo=bar` first hides a later `# escape=`, as in Docker).
fn escape_char(text: &str) -> char {
    static DIRECTIVE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$").expect("valid regex")
    });
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for line in text.lines() {
        let Some(caps) = DIRECTIVE.captures(line.trim_start()) else {
            break;
        };
        match caps[1].to_ascii_lowercase().as_str() {
            "escape" => {
                return match &caps[2] {
                    "`" => '`',
                    _ => '\\',
                };
            }
            "syntax" | "check" => {}
            _ => break,
        }
    }
    '\\'
}

/// Splits the text into instructions: comments and blank lines dropped, continuation lines
/// joined, heredoc bodies skipped.
fn instructions(text: &str, escape: char) -> Vec<Instruction> {
    static HEREDOC: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#"(?:^|\s)\d*<<(-?)(["']?)([A-Za-z_][A-Za-z0-9_]*)(["']?)"#)
            .expect("valid regex")
    });
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    let mut i = 0;
    while i < lines.len() {
        let raw = lines[i];
        i += 1;
        let start = raw.trim_start();
        // Comments and blank lines are dropped, also in the middle of a continuation.
        if start.is_empty() || start.starts_with('#') {
            continue;
        }
        let trimmed = raw.trim_end_matches([' ', '\t']);
        let (body, continues) = match trimmed.strip_suffix(escape) {
            Some(body) => (body, true),
            None => (raw, false),
        };
        match &mut current {
            Some((_, text)) => text.push_str(body),
            None => current = Some((i, body.to_string())),
        }
        if continues {
            continue;
        }
        let (line, text) = current.take().expect("set above");
        let ins = split_instruction(line, &text);
        if matches!(ins.keyword.as_str(), "RUN" | "COPY" | "ADD") {
            // Skip heredoc bodies; a marker without its terminator is not a heredoc.
            for caps in HEREDOC.captures_iter(&ins.args) {
                if caps[2] != caps[4] {
                    continue;
                }
                let strip_tabs = &caps[1] == "-";
                let word = &caps[3];
                let end = lines[i..].iter().position(|l| {
                    let l = if strip_tabs {
                        l.trim_start_matches('\t')
                    } else {
                        l
                    };
                    l == word
                });
                if let Some(end) = end {
                    i += end + 1;
                }
            }
        }
        out.push(ins);
    }
    if let Some((line, text)) = current {
        out.push(split_instruction(line, &text));
    }
    out
}

/// Splits `KEYWORD args` into an [`Instruction`].
fn split_instruction(line: usize, text: &str) -> Instruction {
    let text = text.trim();
    let (keyword, args) = text.split_once([' ', '\t']).unwrap_or((text, ""));
    Instruction {
        line,
        keyword: keyword.to_ascii_uppercase(),
        args: args.trim().to_string(),
    }
}

/// The `--flag=value` words before the first other word.
fn leading_flags(args: &str, escape: char) -> Vec<String> {
    split_words(args, escape)
        .into_iter()
        .take_while(|w| w.starts_with("--"))
        .collect()
}

/// Splits on whitespace outside quotes and `${…}`; quotes and escapes are kept for [`expand`].
fn split_words(text: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut braces = 0usize;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quote != Some('\'') {
            if c == '$' && chars.peek() == Some(&'{') {
                braces += 1;
            } else if c == '}' && braces > 0 {
                braces -= 1;
            }
        }
        match quote {
            Some(q) if c == q => {
                quote = None;
                word.push(c);
            }
            Some(_) => {
                word.push(c);
                if c == escape && quote == Some('"') {
                    word.extend(chars.next());
                }
            }
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                word.push(c);
            }
            None if c == escape => {
                word.push(c);
                word.extend(chars.next());
            }
            None if c.is_whitespace() && braces == 0 => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            None => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// Expands `$X`, `${X}` and `${X:-w}`, `${X-w}`, `${X:+w}`, `${X+w}`, `${X:?w}`, `${X?w}` with
/// `vars` (unset variables expand to nothing) and removes quotes, like the Dockerfile shell
/// lexer. Single quotes prevent expansion; the escape character makes the next one literal.
fn expand(word: &str, vars: &Vars, escape: char) -> std::result::Result<String, String> {
    let chars: Vec<char> = word.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let mut in_double = false;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '\'' if !in_double => {
                while i < chars.len() && chars[i] != '\'' {
                    out.push(chars[i]);
                    i += 1;
                }
                i += 1;
            }
            '"' => in_double = !in_double,
            c if c == escape => match chars.get(i) {
                // In double quotes only `"`, `$` and the escape itself are escaped.
                Some(&next) if !in_double || matches!(next, '"' | '$') || next == escape => {
                    out.push(next);
                    i += 1;
                }
                _ => out.push(c),
            },
            '$' => i = expand_var(&chars, i, vars, escape, &mut out)?,
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Expands the variable whose `$` is just before `chars[i]`; returns the index after it.
fn expand_var(
    chars: &[char],
    mut i: usize,
    vars: &Vars,
    escape: char,
    out: &mut String,
) -> std::result::Result<usize, String> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let lookup = |name: &str| vars.get(name).and_then(|v| v.as_deref());
    if chars.get(i) != Some(&'{') {
        let start = i;
        if chars
            .get(i)
            .is_some_and(|c| c.is_ascii_alphabetic() || *c == '_')
        {
            while i < chars.len() && is_name(chars[i]) {
                i += 1;
            }
        }
        if start == i {
            out.push('$');
        } else {
            let name: String = chars[start..i].iter().collect();
            out.push_str(lookup(&name).unwrap_or(""));
        }
        return Ok(i);
    }
    i += 1;
    let start = i;
    while i < chars.len() && is_name(chars[i]) {
        i += 1;
    }
    let name: String = chars[start..i].iter().collect();
    if name.is_empty() {
        return Err("bad substitution: ${} without a variable name".into());
    }
    let value = lookup(&name);
    if chars.get(i) == Some(&'}') {
        out.push_str(value.unwrap_or(""));
        return Ok(i + 1);
    }
    if i >= chars.len() {
        return Err(format!("unterminated ${{{name}"));
    }
    let colon = chars.get(i) == Some(&':');
    if colon {
        i += 1;
    }
    let Some(&op) = chars.get(i).filter(|c| matches!(c, '-' | '+' | '?')) else {
        return Err(format!(
            "unsupported substitution in ${{{name}…}}; use ${{{name}:-default}}"
        ));
    };
    i += 1;
    // The word runs to the matching '}', nested ${…} included.
    let word_start = i;
    let mut depth = 1;
    while i < chars.len() {
        match chars[i] {
            c if c == escape => i += 1,
            '$' if chars.get(i + 1) == Some(&'{') => {
                depth += 1;
                i += 1;
            }
            '}' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            _ => {}
        }
        i += 1;
    }
    if depth != 0 {
        return Err(format!("unterminated ${{{name}…}}"));
    }
    let raw_word: String = chars[word_start..i.min(chars.len())].iter().collect();
    let set = if colon {
        value.is_some_and(|v| !v.is_empty())
    } else {
        value.is_some()
    };
    match op {
        '-' if set => out.push_str(value.unwrap_or("")),
        '-' => out.push_str(&expand(&raw_word, vars, escape)?),
        '+' if set => out.push_str(&expand(&raw_word, vars, escape)?),
        '+' => {}
        _ if set => out.push_str(value.unwrap_or("")),
        _ => {
            let message = expand(&raw_word, vars, escape)?;
            return Err(format!(
                "{name}: {}",
                if message.is_empty() {
                    "is not set"
                } else {
                    &message
                }
            ));
        }
    }
    Ok(i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images(text: &str) -> Vec<String> {
        images_with(text, &[])
    }

    fn images_with(text: &str, args: &[(&str, &str)]) -> Vec<String> {
        let args: BTreeMap<String, String> = args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        external_images(text, &args).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    #[test]
    fn table() {
        // (Dockerfile, build args, expected images)
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [&'a str]);
        let cases: &[Case] = &[
            ("FROM alpine", &[], &["alpine"]),
            ("FROM scratch\nCOPY a /", &[], &[]),
            ("FROM SCRATCH", &[], &[]),
            (
                "FROM golang:1.22 AS build\nRUN go build\nFROM build AS test\nFROM gcr.io/distroless/base\nCOPY --from=build /x /x",
                &[],
                &["golang:1.22", "gcr.io/distroless/base"],
            ),
            // Stage names are case-insensitive; "AS" too.
            (
                "from alpine as Base\nFROM base\nFrOm BASE",
                &[],
                &["alpine"],
            ),
            // A stage named later is not a stage yet.
            (
                "FROM b AS a\nFROM alpine AS b\nFROM b",
                &[],
                &["b", "alpine"],
            ),
            (
                "FROM alpine\nFROM alpine\nFROM debian AS x\nFROM alpine",
                &[],
                &["alpine", "debian"],
            ),
            // Global ARGs, all forms, overridden by build args.
            (
                "ARG BASE=debian\nARG TAG=bookworm\nFROM ${BASE}:${TAG}-slim",
                &[],
                &["debian:bookworm-slim"],
            ),
            (
                "ARG BASE=debian\nARG TAG=bookworm\nFROM $BASE:$TAG",
                &[("TAG", "trixie")],
                &["debian:trixie"],
            ),
            ("ARG V\nFROM alpine:${V:-3.19}", &[], &["alpine:3.19"]),
            (
                "ARG V\nFROM alpine:${V:-3.19}",
                &[("V", "3.20")],
                &["alpine:3.20"],
            ),
            (
                "ARG V=\nFROM alpine${V-:x}${V:-:3.19}",
                &[],
                &["alpine:3.19"],
            ),
            ("ARG V=1\nFROM alpine${V:+:3.19}", &[], &["alpine:3.19"]),
            ("ARG A=x\nARG B=${A}y\nFROM $B", &[], &["xy"]),
            ("ARG IMG=\"alpine:3.19\"\nFROM $IMG", &[], &["alpine:3.19"]),
            ("ARG A=1 B=2\nFROM img:$A.$B", &[], &["img:1.2"]),
            (
                "ARG R=docker.io/library\nFROM ${R}/${N:-alpine}",
                &[],
                &["docker.io/library/alpine"],
            ),
            // Undeclared build args are invisible; ARGs after FROM are not global.
            ("FROM ${X:-alpine}", &[("X", "debian")], &["alpine"]),
            (
                "FROM alpine\nARG X=debian\nFROM ${X:-busybox}",
                &[],
                &["alpine", "busybox"],
            ),
            // Flags on FROM.
            (
                "FROM --platform=$BUILDPLATFORM golang:1.22 AS b\nFROM --platform=linux/arm64 alpine",
                &[],
                &["golang:1.22", "alpine"],
            ),
            // Continuations, comments inside them, indentation, CRLF.
            (
                "FROM \\\n  alpine \\\n  AS base\nFROM base",
                &[],
                &["alpine"],
            ),
            ("FROM \\\n# a comment\n\n alpine", &[], &["alpine"]),
            (
                "# comment\r\n  # indented comment\r\n\r\nFROM alpine\r\n",
                &[],
                &["alpine"],
            ),
            // The escape directive.
            (
                "# escape=`\nFROM `\n alpine\nRUN dir C:\\",
                &[],
                &["alpine"],
            ),
            (
                "# syntax=docker/dockerfile:1\n#escape = `\nFROM `\n alpine",
                &[],
                &["alpine"],
            ),
            // An unknown directive ends the directives: "`" is not the escape here.
            ("# foo=bar\n# escape=`\nFROM \\\n alpine", &[], &["alpine"]),
            // Not a directive after an instruction.
            (
                "FROM alpine\n# escape=`\nRUN a \\\n  b\nFROM debian",
                &[],
                &["alpine", "debian"],
            ),
            // COPY --from: images count; stage names and indexes do not.
            (
                "FROM alpine AS a\nCOPY --from=nginx:1.25 /etc/nginx /n\nCOPY --from=a /x /y\nCOPY --from=0 /x /y\nCOPY --chown=1:1 --from=A /x /y",
                &[],
                &["alpine", "nginx:1.25"],
            ),
            (
                "FROM alpine\nARG T=1.36\nCOPY --from=busybox:$T /bin/sh /sh",
                &[],
                &["alpine", "busybox:1.36"],
            ),
            // RUN --mount=from=…
            (
                "FROM alpine AS build\nFROM alpine\nRUN --mount=type=bind,from=busybox:1.36,target=/bb --mount=type=cache,from=build,target=/c true",
                &[],
                &["alpine", "busybox:1.36"],
            ),
            (
                "FROM alpine\nRUN echo --from=x --mount=from=y",
                &[],
                &["alpine"],
            ),
            // Heredoc bodies are not instructions.
            (
                "FROM alpine\nRUN <<EOF\nFROM evil\nEOF\nFROM busybox",
                &[],
                &["alpine", "busybox"],
            ),
            (
                "FROM alpine\nRUN <<A <<B >x\nFROM a\nA\nFROM b\nB\nFROM busybox",
                &[],
                &["alpine", "busybox"],
            ),
            (
                "FROM alpine\nCOPY <<-'END' /x\n\tFROM evil\n\tEND\nFROM busybox",
                &[],
                &["alpine", "busybox"],
            ),
            // A "<<" without its terminator is not a heredoc.
            (
                "FROM alpine\nRUN cat <<NOPE\nFROM busybox",
                &[],
                &["alpine", "busybox"],
            ),
            // Single quotes prevent expansion; an escaped $ is literal.
            ("ARG X=a\nFROM 'img$X'", &[], &["img$X"]),
            ("ARG X=a\nFROM img\\$X", &[], &["img$X"]),
        ];
        for (text, args, want) in cases {
            assert_eq!(images_with(text, args), *want, "{text:?} with {args:?}");
        }
    }

    #[test]
    fn errors_name_the_line() {
        let args = BTreeMap::new();
        for (text, needle) in [
            ("", "no FROM"),
            ("# only a comment\nRUN true", "no FROM"),
            ("ARG X\n\nFROM $X", "line 3"),
            ("FROM", "line 1"),
            ("ARG X\nFROM ${X:?must be set}", "must be set"),
            ("FROM ${X", "unterminated"),
            ("FROM ${X#y}", "unsupported"),
        ] {
            let err = external_images(text, &args).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidBase, "{text:?}");
            assert!(err.message().contains(needle), "{text:?}: {err}");
        }
    }

    #[test]
    fn instructions_are_joined_and_numbered() {
        let got = instructions("# c\nRUN a \\\n  b\n\ncopy x y", '\\');
        assert_eq!(
            got,
            [
                Instruction {
                    line: 2,
                    keyword: "RUN".into(),
                    args: "a   b".into()
                },
                Instruction {
                    line: 5,
                    keyword: "COPY".into(),
                    args: "x y".into()
                },
            ]
        );
        assert_eq!(images("FROM alpine\nRUN true \\"), ["alpine"]);
    }
}
