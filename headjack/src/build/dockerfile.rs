//! Just enough Dockerfile parsing for the cache key and the frontend translation: which
//! external images a build reads, which stage each instruction belongs to, and the heredocs
//! of `RUN`, `COPY` and `ADD`.
//!
//! The key includes the local image ID of every image a build starts from or copies from, so a
//! re-pulled or rebuilt parent changes it. This module finds their references as the builder
//! will see them: `FROM` lines (not `scratch`, not earlier stage names) after substituting the
//! global `ARG`s, plus `COPY --from=<image>` and `RUN --mount=…,from=<image>`. It follows the
//! Dockerfile reference for parser directives (`# escape=`), line continuations, comments,
//! case-insensitive instructions and BuildKit heredocs (Dockerfile 1.4: read as BuildKit's
//! parser reads them, so their bodies are not taken for instructions).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::LazyLock;

use regex::Regex;

use crate::error::{Error, ErrorKind, Result};

/// One instruction after joining continuation lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Instruction {
    /// The 1-based line where it starts, for messages.
    pub(crate) line: usize,
    /// The 1-based last line, heredoc bodies included.
    pub(crate) end_line: usize,
    /// The instruction word, uppercased.
    pub(crate) keyword: String,
    /// Everything after the keyword, trimmed.
    pub(crate) args: String,
    /// Its heredocs, in order (RUN, COPY and ADD in shell form only).
    pub(crate) heredocs: Vec<Heredoc>,
}

/// A heredoc attached to an instruction (`<<EOF` … `EOF`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Heredoc {
    /// The delimiter word, quotes removed: the file name a `COPY` heredoc creates.
    pub(crate) name: String,
    /// `<<-`: leading tabs are removed from the body (and the delimiter line).
    pub(crate) chomp: bool,
    /// The delimiter was not quoted: a `COPY` heredoc's body is variable-expanded.
    pub(crate) expand: bool,
    /// The body as written, every line with its line ending, tabs not yet chomped.
    pub(crate) content: String,
}

/// Where a stage starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StageBase {
    /// An external image, as written after `ARG` substitution.
    Image(String),
    /// An earlier stage, by index.
    Stage(usize),
    /// `scratch`.
    Scratch,
}

/// A Dockerfile's instructions, stages and external images.
#[derive(Debug, Clone)]
pub(crate) struct Analysis {
    pub(crate) instructions: Vec<Instruction>,
    /// The escape character (`\\` or `` ` ``).
    pub(crate) escape: char,
    /// For each instruction, the stage it belongs to (`None` before the first `FROM`).
    pub(crate) stage_of: Vec<Option<usize>>,
    /// Each stage's base.
    pub(crate) stages: Vec<StageBase>,
    /// The external images read, in order of first appearance, without duplicates.
    pub(crate) images: Vec<String>,
}

/// Declared ARGs of a scope: `None` is declared without a value (unset).
type Vars = HashMap<String, Option<String>>;

/// The image references a Dockerfile reads, in order of first appearance, without duplicates
/// (see [`analyse`]).
#[cfg(test)]
pub(crate) fn external_images(
    dockerfile: &str,
    build_args: &BTreeMap<String, String>,
) -> Result<Vec<String>> {
    analyse(dockerfile, build_args).map(|a| a.images)
}

/// Reads a Dockerfile's instructions, stages and external images.
///
/// `build_args` override the defaults of declared `ARG`s (an undeclared build arg is not
/// visible, as in Docker). References are returned as written after substitution, not
/// normalised. A Dockerfile without `FROM`, a `FROM` that names nothing after substitution or a
/// `${VAR:?message}` on an unset variable is an `InvalidBase` error naming the line.
pub(crate) fn analyse(dockerfile: &str, build_args: &BTreeMap<String, String>) -> Result<Analysis> {
    let escape = escape_char(dockerfile);
    let instructions = instructions(dockerfile, escape);
    let mut global: Vars = HashMap::new();
    let mut stage: Vars = HashMap::new();
    let mut stage_names: Vec<String> = Vec::new();
    let mut stages: Vec<StageBase> = Vec::new();
    let mut stage_of = Vec::with_capacity(instructions.len());
    let mut images = Vec::new();
    let mut seen = HashSet::new();

    for ins in &instructions {
        let fail = |why: String| {
            Error::new(
                ErrorKind::InvalidBase,
                format!("Dockerfile line {}: {why}", ins.line),
            )
        };
        let in_stage = !stages.is_empty();
        // Adds a reference unless it is a stage, a stage index or scratch.
        let mut add = |reference: String, stage_names: &[String]| {
            let lower = reference.to_ascii_lowercase();
            let internal = lower.is_empty()
                || lower == "scratch"
                || lower.bytes().all(|b| b.is_ascii_digit())
                || stage_names.contains(&lower);
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
                let lower = image.to_ascii_lowercase();
                let base = if lower == "scratch" {
                    StageBase::Scratch
                } else if let Some(i) = stage_names.iter().position(|s| *s == lower) {
                    StageBase::Stage(i)
                } else {
                    StageBase::Image(image.clone())
                };
                add(image, &stage_names);
                stages.push(base);
                // Unnamed stages get an unmatchable placeholder, so indexes stay aligned.
                if words.len() >= 3 && words[1].eq_ignore_ascii_case("as") {
                    stage_names.push(words[2].to_ascii_lowercase());
                } else {
                    stage_names.push(String::from("\0"));
                }
            }
            "COPY" | "ADD" => {
                for flag in leading_flags(&ins.args, escape) {
                    if let Some(from) = flag.strip_prefix("--from=") {
                        add(expand(from, &stage, escape).map_err(fail)?, &stage_names);
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
                            add(
                                expand(value.trim(), &stage, escape).map_err(fail)?,
                                &stage_names,
                            );
                        }
                    }
                }
            }
            _ => {}
        }
        stage_of.push(stages.len().checked_sub(1));
    }
    if stages.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidBase,
            "the Dockerfile has no FROM instruction".to_string(),
        ));
    }
    Ok(Analysis {
        instructions,
        escape,
        stage_of,
        stages,
        images,
    })
}

/// The escape character set by a `# escape=` parser directive (default `\`).
///
/// Directives are only read at the very top; the first line that is not a known directive ends
/// them (so an unknown `# foo=bar` first hides a later `# escape=`, as in Docker).
pub(crate) fn escape_char(text: &str) -> char {
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
/// joined, heredoc bodies attached to their instruction.
///
/// A heredoc marker without its delimiter line later is left alone (no body): BuildKit's 1.4
/// parser calls that an error, older parsers read on, and the builder decides.
fn instructions(text: &str, escape: char) -> Vec<Instruction> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // Lines with their endings: heredoc bodies keep them.
    let raw_lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    let mut i = 0;
    while i < raw_lines.len() {
        let raw = strip(raw_lines[i]);
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
        let mut ins = split_instruction(line, &text);
        ins.end_line = i;
        if matches!(ins.keyword.as_str(), "RUN" | "COPY" | "ADD")
            && text.contains("<<")
            && !is_json_form(&ins.args, escape)
        {
            for (name, chomp, expand) in heredoc_markers(&text) {
                let end = raw_lines[i..].iter().position(|l| {
                    let l = strip(l);
                    let l = if chomp { l.trim_start_matches('\t') } else { l };
                    l == name
                });
                let Some(end) = end else {
                    continue;
                };
                let content: String = raw_lines[i..i + end].concat();
                i += end + 1;
                ins.end_line = i;
                ins.heredocs.push(Heredoc {
                    name,
                    chomp,
                    expand,
                    content,
                });
            }
        }
        out.push(ins);
    }
    if let Some((line, text)) = current {
        let mut ins = split_instruction(line, &text);
        ins.end_line = raw_lines.len();
        out.push(ins);
    }
    out
}

/// A line without its ending (`\n` or `\r\n`).
fn strip(l: &str) -> &str {
    l.strip_suffix('\n')
        .map_or(l, |l| l.strip_suffix('\r').unwrap_or(l))
}

/// The heredoc markers of an instruction line, as BuildKit finds them: every word (quotes and
/// escapes kept) of the form `[n]<<[-]WORD` whose WORD is one shell word; its quotes removed it is
/// the delimiter, and any quote in it turns expansion off. Returns (name, chomp, expand).
fn heredoc_markers(line: &str) -> Vec<(String, bool, bool)> {
    static MARKER: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^(\d*)<<(-?)([^<]*)$").expect("valid regex"));
    let mut out = Vec::new();
    for word in split_words(line, '\\') {
        let Some(caps) = MARKER.captures(&word) else {
            continue;
        };
        let rest = &caps[3];
        if rest.is_empty() {
            continue;
        }
        let words = split_words(rest, '\\');
        if words.len() != 1 {
            continue;
        }
        let Ok(name) = expand(&words[0], &HashMap::new(), '\\') else {
            continue;
        };
        let quotes = |s: &str| s.matches(['\'', '"']).count();
        let expand_body = quotes(&name) == quotes(&words[0]);
        out.push((name, &caps[2] == "-", expand_body));
    }
    out
}

/// Whether the arguments (after any `--flag`s) are a JSON array of strings (the exec form),
/// which cannot carry heredocs.
pub(crate) fn is_json_form(args: &str, escape: char) -> bool {
    let rest = after_flags(args, escape).trim_start();
    if !rest.starts_with('[') {
        return false;
    }
    let mut values = serde_json::Deserializer::from_str(rest).into_iter::<Vec<String>>();
    matches!(values.next(), Some(Ok(_)))
}

/// The arguments after the leading `--flag` words (quote-aware), as written.
pub(crate) fn after_flags(args: &str, escape: char) -> &str {
    let mut rest = args.trim_start();
    while rest.starts_with("--") {
        let end = word_end(rest, escape);
        rest = rest[end..].trim_start();
    }
    rest
}

/// The byte index where the first word of `s` ends (quotes and escapes respected).
fn word_end(s: &str, escape: char) -> usize {
    let mut quote: Option<char> = None;
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match quote {
            Some(q) if c == q => quote = None,
            Some('"') if c == escape => {
                chars.next();
            }
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == escape => {
                chars.next();
            }
            None if c.is_whitespace() => return i,
            None => {}
        }
    }
    s.len()
}

/// Splits `KEYWORD args` into an [`Instruction`].
fn split_instruction(line: usize, text: &str) -> Instruction {
    let text = text.trim();
    let (keyword, args) = text.split_once([' ', '\t']).unwrap_or((text, ""));
    Instruction {
        line,
        end_line: line,
        keyword: keyword.to_ascii_uppercase(),
        args: args.trim().to_string(),
        heredocs: Vec::new(),
    }
}

/// The `--flag=value` words before the first other word.
pub(crate) fn leading_flags(args: &str, escape: char) -> Vec<String> {
    split_words(args, escape)
        .into_iter()
        .take_while(|w| w.starts_with("--"))
        .collect()
}

/// Splits on whitespace outside quotes and `${…}`; quotes and escapes are kept for [`expand`].
pub(crate) fn split_words(text: &str, escape: char) -> Vec<String> {
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
pub(crate) fn expand(word: &str, vars: &Vars, escape: char) -> std::result::Result<String, String> {
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
    fn heredocs_are_read_as_buildkit_reads_them() {
        let text = "FROM a\nRUN <<EOF\nline 1\n  # not a comment\nEOF\nCOPY <<-\"A B\" <<'C' 3<<D /x/\n\tone\n\tA B\ntwo\r\nC\nthree\nD\nRUN cat <<NOPE\nRUN echo 1<<2\n";
        let got = instructions(text, '\\');
        let kw: Vec<(&str, usize, usize)> = got
            .iter()
            .map(|i| (i.keyword.as_str(), i.line, i.end_line))
            .collect();
        assert_eq!(
            kw,
            [
                ("FROM", 1, 1),
                ("RUN", 2, 5),
                ("COPY", 6, 12),
                ("RUN", 13, 13),
                ("RUN", 14, 14)
            ]
        );
        let h = &got[1].heredocs;
        assert_eq!(
            h,
            &[Heredoc {
                name: "EOF".into(),
                chomp: false,
                expand: true,
                content: "line 1\n  # not a comment\n".into(),
            }]
        );
        let h: Vec<(&str, bool, bool, &str)> = got[2]
            .heredocs
            .iter()
            .map(|h| (h.name.as_str(), h.chomp, h.expand, h.content.as_str()))
            .collect();
        assert_eq!(
            h,
            [
                ("A B", true, false, "\tone\n"),
                ("C", false, false, "two\r\n"),
                ("D", false, true, "three\n"),
            ]
        );
        // No terminator, no heredoc; a shift is not a marker; the exec form has none.
        assert!(got[3].heredocs.is_empty() && got[4].heredocs.is_empty());
        let json = instructions("FROM a\nRUN [\"sh\", \"-c\", \"cat <<EOF\"]\nEOF\n", '\\');
        assert!(json[1].heredocs.is_empty());
        assert_eq!(json.len(), 3);
    }

    #[test]
    fn stages_know_their_bases() {
        let a = analyse(
            "ARG V=1\nFROM img:$V AS base\nRUN x\nFROM base\nFROM scratch AS s\nFROM other\n",
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(
            a.stages,
            [
                StageBase::Image("img:1".into()),
                StageBase::Stage(0),
                StageBase::Scratch,
                StageBase::Image("other".into()),
            ]
        );
        assert_eq!(
            a.stage_of,
            [None, Some(0), Some(0), Some(1), Some(2), Some(3)]
        );
        assert_eq!(a.images, ["img:1", "other"]);
    }

    #[test]
    fn flags_end_where_the_command_starts() {
        assert_eq!(
            after_flags("--mount=a,b=\"c d\" --x=1  <<EOF", '\\'),
            "<<EOF"
        );
        assert_eq!(after_flags("echo --not-a-flag", '\\'), "echo --not-a-flag");
        assert_eq!(after_flags("--only", '\\'), "");
        assert!(is_json_form("--mount=x [\"a\", \"b\"]", '\\'));
        assert!(!is_json_form("[not json", '\\'));
        assert!(!is_json_form("[1, 2]", '\\'));
    }

    #[test]
    fn instructions_are_joined_and_numbered() {
        let got = instructions("# c\nRUN a \\\n  b\n\ncopy x y", '\\');
        assert_eq!(
            got,
            [
                Instruction {
                    line: 2,
                    end_line: 3,
                    keyword: "RUN".into(),
                    args: "a   b".into(),
                    heredocs: vec![],
                },
                Instruction {
                    line: 5,
                    end_line: 5,
                    keyword: "COPY".into(),
                    args: "x y".into(),
                    heredocs: vec![],
                },
            ]
        );
        assert_eq!(images("FROM alpine\nRUN true \\"), ["alpine"]);
    }
}
