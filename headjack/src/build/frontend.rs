//! Making a Dockerfile buildable by the engine at hand, or saying clearly why it is not.
//!
//! Engines parse Dockerfiles with the frontend they embed, and no newer one can be pulled when
//! no registry is reachable. Where a Dockerfile uses syntax the engine's frontend lacks and
//! headjack can rewrite it exactly, it does; where it cannot, the build is refused before it
//! starts with the feature, the line, the engine and what to do:
//!
//! - `# syntax=docker/dockerfile:…` asks BuildKit to pull the official frontend image. Unless
//!   that image is in the engine already, the line is dropped and the built-in frontend reads the
//!   file (the features it lacks are translated or refused below). Other frontend images are
//!   left to BuildKit, and refused on builders that cannot run frontends.
//! - `RUN <<EOF` (Dockerfile 1.4) becomes the exec form BuildKit itself derives:
//!   `RUN ["/bin/sh","-c","<body>"]` with the stage's `SHELL` (from the base image, earlier
//!   stages and `SHELL` instructions); `RUN cmd <<EOF …` gives the shell the command and the
//!   documents, as BuildKit does. A body starting with `#!` is run as a file: BuildKit mounts it
//!   at `/dev/pipes/<name>` (mode 0755), and so does the translation, with a bind mount of a
//!   generated file (so it needs a builder with `RUN --mount`).
//! - `COPY <<EOF /path` (and `ADD <<EOF`, which never unpacks) copies a generated file with the
//!   document (mode 0644 unless `--chmod`) from a generated directory of the build context.
//!   Unquoted delimiters make BuildKit expand variables in the document; a document whose text
//!   could be changed by that (`$`, or the escape character) is refused rather than guessed.
//! - `COPY --link`, `ADD --checksum`, `RUN --mount` and `COPY --chmod` cannot be emulated: they
//!   are refused on builders without them.
//!
//! The rewritten Dockerfile keeps every other line as written and every line number (a replaced
//! instruction leaves blank lines where its continuation and heredoc lines were), so the
//! engine's messages still point at the user's lines. BuildKit reads it apart from the context
//! (the original stays in the context, as written); a classic builder reads it from the context
//! tar, where it takes the original's place. Generated documents live in one directory at the
//! context root, visible to a `COPY .` of the whole context, so a Dockerfile that copies the
//! context root (or a wildcard or variable that could match the directory) together with a
//! translated `COPY <<EOF` or `#!` heredoc is refused, instead of copying documents the user
//! never wrote into the image.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;
use sha2::{Digest, Sha256};

use super::context::Generated;
use super::dockerfile::{
    Analysis, Heredoc, Instruction, StageBase, after_flags, is_json_form, leading_flags,
    split_words,
};
use crate::engine::BuilderProfile;
use crate::error::{Error, ErrorKind, Result};

/// The shell of a stage whose image sets none.
mod flags;
mod heredoc;

use flags::{check_copy_flags, check_run_flags, mount_fields};
#[cfg(test)]
use heredoc::may_see_root;
use heredoc::{check_generated_stay_unseen, translate_copy, translate_run};

const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

/// What the engine is sent instead of what was read.
#[derive(Debug, Default)]
pub(crate) struct Translation {
    /// The Dockerfile to send, when it differs from the one read.
    pub(crate) dockerfile: Option<Vec<u8>>,
    /// Files to add under the context's generated directory.
    pub(crate) generated: Vec<Generated>,
    /// The ids of `RUN --mount=type=secret` mounts, in order, without duplicates.
    pub(crate) secret_mounts: Vec<String>,
}

/// What the translation needs to know besides the Dockerfile.
pub(crate) struct Inputs<'a> {
    /// The Dockerfile as read.
    pub(crate) text: &'a str,
    pub(crate) analysis: &'a Analysis,
    /// The builder that will build it.
    pub(crate) profile: &'a BuilderProfile,
    /// `Config.Shell` of each external image, by reference as [`Analysis::images`] has it.
    pub(crate) shells: &'a HashMap<String, Vec<String>>,
    /// The context directory for generated files ([`super::context::Context::generated_dir`]).
    pub(crate) generated_dir: &'a str,
    /// Whether the engine has the image a `# syntax=` line names.
    pub(crate) syntax_image_present: bool,
}

/// The `# syntax=` parser directive: its 0-based line and the frontend image it names.
pub(crate) fn syntax_directive(text: &str) -> Option<(usize, String)> {
    static DIRECTIVE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$").expect("valid regex")
    });
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (i, line) in text.lines().enumerate() {
        let caps = DIRECTIVE.captures(line)?;
        if caps[1].eq_ignore_ascii_case("syntax") {
            let image = caps[2].split_whitespace().next().unwrap_or_default();
            return Some((i, image.to_string()));
        }
    }
    None
}

/// Whether a frontend image is Docker's official Dockerfile frontend (any version or channel),
/// whose language the engine's built-in frontend implements.
pub(crate) fn is_official_frontend(image: &str) -> bool {
    let name = image.split(['@', ':']).next().unwrap_or(image);
    let name = name
        .strip_prefix("docker.io/")
        .or_else(|| name.strip_prefix("index.docker.io/"))
        .unwrap_or(name);
    matches!(name, "docker/dockerfile" | "docker/dockerfile-upstream")
}

/// Rewrites `inputs.text` for the builder, or refuses it (see the module docs).
///
/// # Errors
///
/// `Unsupported` naming the line, the feature, the engine and what to do.
pub(crate) fn translate(inputs: &Inputs<'_>) -> Result<Translation> {
    let profile = inputs.profile;
    let analysis = inputs.analysis;
    let engine = &profile.name;
    let mut out = Translation::default();
    let mut replaced: Vec<(usize, usize, String)> = Vec::new();
    let mut drop_syntax_line = None;

    if let Some((idx, image)) = syntax_directive(inputs.text) {
        let keep = profile.syntax_directive && inputs.syntax_image_present;
        if is_official_frontend(&image) {
            if !keep {
                drop_syntax_line = Some(idx);
            }
        } else if !profile.syntax_directive {
            return Err(unsupported(
                idx + 1,
                &format!("`# syntax={image}` (a Dockerfile frontend image)"),
                engine,
                "it has no frontend images and parses the file itself; remove the line if the \
                 file is plain Dockerfile syntax, or build on Docker with BuildKit",
            ));
        }
        // Another frontend on BuildKit: the engine runs it, pulling it if it can.
    }

    let mut shells: Vec<Vec<String>> = Vec::new();
    let mut heredoc_lines = Vec::new();
    for (i, ins) in analysis.instructions.iter().enumerate() {
        let stage = analysis.stage_of.get(i).copied().flatten();
        match ins.keyword.as_str() {
            "FROM" => {
                let s = shells.len();
                let shell = match analysis.stages.get(s) {
                    Some(StageBase::Image(r)) => inputs
                        .shells
                        .get(r)
                        .filter(|sh| !sh.is_empty())
                        .cloned()
                        .unwrap_or_else(default_shell),
                    Some(StageBase::Stage(j)) => {
                        shells.get(*j).cloned().unwrap_or_else(default_shell)
                    }
                    _ => default_shell(),
                };
                shells.push(shell);
            }
            "SHELL" => {
                if let (Some(s), Ok(sh)) = (stage, serde_json::from_str::<Vec<String>>(&ins.args))
                    && let Some(slot) = shells.get_mut(s)
                {
                    *slot = sh;
                }
            }
            "RUN" => {
                check_run_flags(ins, analysis.escape, profile, &mut out.secret_mounts)?;
                if !ins.heredocs.is_empty() && !profile.heredocs {
                    let shell = stage
                        .and_then(|s| shells.get(s))
                        .cloned()
                        .unwrap_or_else(default_shell);
                    let line = translate_run(ins, analysis.escape, &shell, inputs, &mut out)?;
                    replaced.push((ins.line, ins.end_line, line));
                    heredoc_lines.push(ins.line);
                }
            }
            "COPY" | "ADD" => {
                check_copy_flags(ins, analysis.escape, profile)?;
                if !ins.heredocs.is_empty() && !profile.heredocs {
                    let line = translate_copy(ins, analysis.escape, inputs, &mut out)?;
                    replaced.push((ins.line, ins.end_line, line));
                    heredoc_lines.push(ins.line);
                }
            }
            _ => {}
        }
    }

    if !out.generated.is_empty() {
        check_generated_stay_unseen(analysis, inputs, &heredoc_lines)?;
    }
    if replaced.is_empty() && drop_syntax_line.is_none() {
        return Ok(out);
    }
    out.dockerfile = Some(rewrite(inputs.text, &replaced, drop_syntax_line).into_bytes());
    Ok(out)
}

fn default_shell() -> Vec<String> {
    DEFAULT_SHELL.iter().map(|s| s.to_string()).collect()
}

/// The error for a feature the builder lacks.
fn unsupported(line: usize, feature: &str, engine: &str, advice: &str) -> Error {
    Error::new(
        ErrorKind::Unsupported,
        format!("Dockerfile line {line}: {feature} cannot be built by {engine}: {advice}"),
    )
}

/// The text with `replaced` instructions (first line, last line, new text) put in, each followed
/// by blank lines for the lines it took, and the syntax directive line dropped (a blank line
/// after the directives keeps later line numbers).
fn rewrite(text: &str, replaced: &[(usize, usize, String)], drop_line: Option<usize>) -> String {
    let bom = text.starts_with('\u{feff}');
    let body = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines: Vec<String> = body.split_inclusive('\n').map(str::to_string).collect();
    let ending = |l: &str| if l.ends_with("\r\n") { "\r\n" } else { "\n" };
    for (first, last, new) in replaced {
        let eol = lines.get(first - 1).map_or("\n", |l| ending(l)).to_string();
        for n in *first..=*last {
            if let Some(l) = lines.get_mut(n - 1) {
                *l = if n == *first {
                    format!("{new}{eol}")
                } else {
                    eol.clone()
                };
            }
        }
    }
    if let Some(idx) = drop_line {
        let directives = directive_count(body);
        let eol = ending(&lines[idx]).to_string();
        lines.remove(idx);
        lines.insert(directives - 1, eol);
    }
    let mut out = String::with_capacity(text.len());
    if bom {
        out.push('\u{feff}');
    }
    out.extend(lines);
    out
}

/// How many lines at the top are parser directives.
fn directive_count(text: &str) -> usize {
    static DIRECTIVE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$").expect("valid regex")
    });
    text.lines().take_while(|l| DIRECTIVE.is_match(l)).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::dockerfile::analyse;
    use crate::engine::BuilderKind;
    use std::collections::BTreeMap;

    fn profile(heredocs: bool, run_mounts: bool) -> BuilderProfile {
        BuilderProfile {
            name: "Test Engine 1.0 (BuildKit)".into(),
            kind: BuilderKind::BuildKit,
            secrets: run_mounts,
            run_mounts,
            copy_chmod: run_mounts,
            copy_link: false,
            add_checksum: false,
            heredocs,
            syntax_directive: true,
        }
    }

    fn translate_with(
        text: &str,
        profile: &BuilderProfile,
        shells: &[(&str, &[&str])],
    ) -> Result<Translation> {
        let analysis = analyse(text, &BTreeMap::new())?;
        let shells: HashMap<String, Vec<String>> = shells
            .iter()
            .map(|(r, s)| (r.to_string(), s.iter().map(|x| x.to_string()).collect()))
            .collect();
        translate(&Inputs {
            text,
            analysis: &analysis,
            profile,
            shells: &shells,
            generated_dir: ".headjack-heredocs",
            syntax_image_present: false,
        })
    }

    fn old() -> BuilderProfile {
        profile(false, true)
    }

    fn rewritten(text: &str) -> String {
        let t = translate_with(text, &old(), &[]).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        String::from_utf8(t.dockerfile.expect("rewritten")).unwrap()
    }

    #[test]
    fn run_heredocs_become_the_exec_form_buildkit_derives() {
        let cases: &[(&str, &str)] = &[
            (
                "FROM a\nRUN <<EOF\necho hi\necho $HOME\nEOF\nRUN true\n",
                "FROM a\nRUN [\"/bin/sh\",\"-c\",\"echo hi\\necho $HOME\\n\"]\n\n\n\nRUN true\n",
            ),
            // Chomped tabs, quoted delimiter (expansion is the shell's for RUN), flags kept.
            (
                "FROM a\nRUN --mount=type=cache,target=/c <<-'END'\n\tcd /c\n\t\tmake\n\tEND\n",
                "FROM a\nRUN --mount=type=cache,target=/c [\"/bin/sh\",\"-c\",\"cd /c\\nmake\\n\"]\n\n\n\n",
            ),
            // A command with documents: the shell gets both, BuildKit's way.
            (
                "FROM a\nRUN cat <<A > /a && cat <<B > /b\none\nA\ntwo\nB\n",
                "FROM a\nRUN [\"/bin/sh\",\"-c\",\"cat <<A > /a && cat <<B > /b\\none\\nA\\ntwo\\nB\"]\n\n\n\n\n",
            ),
            // CRLF files keep their line endings.
            (
                "FROM a\r\nRUN <<EOF\r\necho hi\r\nEOF\r\n",
                "FROM a\r\nRUN [\"/bin/sh\",\"-c\",\"echo hi\\r\\n\"]\r\n\r\n\r\n",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(rewritten(text), *want, "{text:?}");
        }
    }

    #[test]
    fn the_stage_shell_is_honoured() {
        let text = "FROM img AS one\nRUN <<EOF\nx\nEOF\nSHELL [\"/bin/bash\", \"-eo\", \"pipefail\", \"-c\"]\nRUN <<EOF\ny\nEOF\nFROM one\nRUN <<EOF\nz\nEOF\nFROM scratch\nRUN <<EOF\nw\nEOF\n";
        let t = translate_with(text, &old(), &[("img", &["/bin/ash", "-c"])]).unwrap();
        let out = String::from_utf8(t.dockerfile.unwrap()).unwrap();
        let runs: Vec<&str> = out.lines().filter(|l| l.starts_with("RUN")).collect();
        assert_eq!(
            runs,
            [
                r#"RUN ["/bin/ash","-c","x\n"]"#,
                r#"RUN ["/bin/bash","-eo","pipefail","-c","y\n"]"#,
                r#"RUN ["/bin/bash","-eo","pipefail","-c","z\n"]"#,
                r#"RUN ["/bin/sh","-c","w\n"]"#,
            ]
        );
        // Every line keeps its number.
        assert_eq!(out.lines().count(), text.lines().count());
    }

    #[test]
    fn shebang_documents_are_mounted_at_dev_pipes() {
        let text = "FROM a\nRUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF\n";
        let t = translate_with(text, &old(), &[]).unwrap();
        let out = String::from_utf8(t.dockerfile.unwrap()).unwrap();
        let g = &t.generated[0];
        assert_eq!(g.mode, 0o755);
        assert_eq!(g.data, b"#!/usr/bin/env python3\nprint(1)\n");
        let dir = g.path.strip_suffix("/EOF").unwrap();
        assert_eq!(
            out.lines().nth(1).unwrap(),
            format!(
                r#"RUN --mount=type=bind,source=.headjack-heredocs/{dir},target=/dev/pipes ["/bin/sh","-c","/dev/pipes/EOF"]"#
            )
        );
        // Without bind mounts it cannot be done.
        let e = translate_with(text, &profile(false, false), &[]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert!(
            e.message().contains("line 2") && e.message().contains("#!"),
            "{e}"
        );
    }

    #[test]
    fn copy_heredocs_become_generated_files() {
        let text = "FROM a\nCOPY --chmod=0600 <<'CONF' <<-EOT /etc/app/\nkey=$v\nCONF\n\tplain\n\tEOT\nADD <<EOF /x\nhello\nEOF\n";
        let t = translate_with(text, &old(), &[]).unwrap();
        let out = String::from_utf8(t.dockerfile.unwrap()).unwrap();
        let paths: Vec<&str> = t.generated.iter().map(|g| g.path.as_str()).collect();
        assert_eq!(t.generated.len(), 3);
        assert!(t.generated.iter().all(|g| g.mode == 0o644));
        assert_eq!(t.generated[0].data, b"key=$v\n");
        assert_eq!(t.generated[1].data, b"plain\n");
        assert_eq!(t.generated[2].data, b"hello\n");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[1],
            format!(
                "COPY --chmod=0600 .headjack-heredocs/{} .headjack-heredocs/{} /etc/app/",
                paths[0], paths[1]
            )
        );
        assert_eq!(lines[6], format!("COPY .headjack-heredocs/{} /x", paths[2]));
        assert!(paths[0].ends_with("/CONF") && paths[1].ends_with("/EOT"));
        assert_eq!(lines.len(), text.lines().count());
    }

    #[test]
    fn untranslatable_heredocs_are_refused_clearly() {
        let cases: &[(&str, &str)] = &[
            ("FROM a\nCOPY <<EOF /x\n$HOME\nEOF\n", "quote the delimiter"),
            ("FROM a\nCOPY <<EOF /x\na\\b\nEOF\n", "quote the delimiter"),
            ("FROM a\nCOPY --from=b <<EOF /x\nhi\nEOF\n", "--from"),
            ("FROM a\nADD <<EOF app.tar /x/\nhi\nEOF\n", "own ADD"),
            (
                "FROM a\nADD --keep-git-dir <<EOF /x\nhi\nEOF\n",
                "--keep-git-dir",
            ),
            ("FROM a\nCOPY <<'a b' /x\nhi\na b\n", "rename the delimiter"),
            // The document would be copied again by a COPY of the context root.
            ("FROM a\nCOPY <<EOF /x\nhi\nEOF\nCOPY . /app\n", "line 5"),
            (
                "FROM a\nCOPY ./ /app\nCOPY <<EOF /x\nhi\nEOF\n",
                "copy named paths",
            ),
            ("FROM a\nCOPY * /app/\nCOPY <<EOF /x\nhi\nEOF\n", "COPY *"),
            (
                "FROM a\nCOPY [\"$SRC\", \"/app\"]\nCOPY <<EOF /x\nhi\nEOF\n",
                "$SRC",
            ),
            (
                "FROM a\nRUN --mount=target=/src make\nCOPY <<EOF /x\nhi\nEOF\n",
                "bind",
            ),
        ];
        for (text, needle) in cases {
            let e = translate_with(text, &old(), &[]).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Unsupported, "{text:?}");
            assert!(e.message().contains(needle), "{text:?}: {e}");
            assert!(e.message().contains("Test Engine 1.0"), "{e}");
        }
        // Named paths, other stages and a RUN heredoc (no document in the context) are fine.
        for text in [
            "FROM a\nCOPY src/ /app/src/\nCOPY --from=b / /\nCOPY <<EOF /x\nhi\nEOF\n",
            "FROM a\nCOPY . /app\nRUN <<EOF\necho hi\nEOF\n",
            "FROM a\nRUN --mount=type=bind,source=src,target=/s make\nCOPY <<EOF /x\nhi\nEOF\n",
        ] {
            translate_with(text, &old(), &[]).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        }
    }

    #[test]
    fn frontends_with_heredocs_get_the_file_as_is() {
        let text = "FROM a\nCOPY <<EOF /x\n$HOME\nEOF\nCOPY . /app\n";
        let t = translate_with(text, &profile(true, true), &[]).unwrap();
        assert!(t.dockerfile.is_none() && t.generated.is_empty());
    }

    #[test]
    fn features_the_builder_lacks_are_named() {
        let classic = BuilderProfile {
            name: "Docker 20.10 (classic builder)".into(),
            kind: BuilderKind::Classic,
            secrets: false,
            run_mounts: false,
            copy_chmod: false,
            copy_link: false,
            add_checksum: false,
            heredocs: false,
            syntax_directive: false,
        };
        let cases: &[(&str, &BuilderProfile, &str)] = &[
            (
                "FROM a\nRUN --mount=type=cache,target=/c true\n",
                &classic,
                "RUN --mount=type=cache",
            ),
            (
                "FROM a\nRUN --mount=type=secret,id=t cat /run/secrets/t\n",
                &classic,
                "type=secret",
            ),
            ("FROM a\nCOPY --chmod=600 k /k\n", &classic, "COPY --chmod"),
            ("FROM a\nCOPY --link a /a\n", &old(), "COPY --link"),
            (
                "FROM a\nADD --checksum=sha256:00 https://x/y /y\n",
                &old(),
                "ADD --checksum",
            ),
            (
                "# syntax=me/frontend:1\nFROM a\n",
                &classic,
                "# syntax=me/frontend:1",
            ),
        ];
        for (text, p, needle) in cases {
            let e = translate_with(text, p, &[]).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Unsupported, "{text:?}");
            assert!(e.message().contains(needle), "{text:?}: {e}");
            assert!(e.message().contains(&p.name), "{e}");
        }
        let t = translate_with(
            "FROM a\nRUN --mount=type=secret,id=tok --mount=type=secret,target=/run/secrets/npm x\n",
            &old(),
            &[],
        )
        .unwrap();
        assert_eq!(t.secret_mounts, ["tok", "npm"]);
        assert!(t.dockerfile.is_none());
        // --link=false is no --link.
        translate_with("FROM a\nCOPY --link=false a /a\n", &old(), &[]).unwrap();
    }

    #[test]
    fn official_syntax_lines_are_dropped_keeping_line_numbers() {
        let text = "# syntax=docker/dockerfile:1.4\n# escape=\\\n\nFROM a\n";
        assert_eq!(rewritten(text), "# escape=\\\n\n\nFROM a\n");
        assert_eq!(
            rewritten("#syntax = docker.io/docker/dockerfile:1-labs\nFROM a\n"),
            "\nFROM a\n"
        );
        // Present in the engine: BuildKit may run it.
        let analysis = analyse("# syntax=docker/dockerfile:1\nFROM a\n", &BTreeMap::new()).unwrap();
        let t = translate(&Inputs {
            text: "# syntax=docker/dockerfile:1\nFROM a\n",
            analysis: &analysis,
            profile: &old(),
            shells: &HashMap::new(),
            generated_dir: "g",
            syntax_image_present: true,
        })
        .unwrap();
        assert!(t.dockerfile.is_none());
        // Another frontend on BuildKit is left to the engine.
        let t = translate_with("# syntax=me/frontend\nFROM a\n", &old(), &[]).unwrap();
        assert!(t.dockerfile.is_none());
        // Not a directive once an instruction came.
        let t = translate_with("FROM a\n# syntax=docker/dockerfile:1\n", &old(), &[]).unwrap();
        assert!(t.dockerfile.is_none());
    }

    #[test]
    fn official_frontends_are_recognised() {
        for image in [
            "docker/dockerfile",
            "docker/dockerfile:1",
            "docker/dockerfile:1.4-labs",
            "docker.io/docker/dockerfile:1@sha256:abc",
            "docker/dockerfile-upstream:master",
        ] {
            assert!(is_official_frontend(image), "{image}");
        }
        for image in [
            "tonistiigi/dockerfile",
            "ghcr.io/docker/dockerfile:1",
            "dockerfile",
        ] {
            assert!(!is_official_frontend(image), "{image}");
        }
        assert_eq!(
            syntax_directive("\u{feff}# check=skip\n#syntax=docker/dockerfile:1 extra\nFROM a"),
            Some((1, "docker/dockerfile:1".into()))
        );
        assert_eq!(syntax_directive("FROM a\n# syntax=x\n"), None);
    }

    /// Dockerfile-like text from lines that exercise heredocs, stages, shells and directives.
    fn dockerfile_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let line = prop_oneof![
            Just("FROM a".to_string()),
            Just("FROM a AS s".to_string()),
            Just("FROM s".to_string()),
            Just("RUN <<EOF".to_string()),
            Just("RUN <<-EOF".to_string()),
            Just("RUN --mount=type=cache,target=/c <<EOF".to_string()),
            Just("RUN cat <<A <<'B' > /x".to_string()),
            Just("COPY <<'X' /x".to_string()),
            Just("COPY --chmod=600 <<X <<-EOF /d/".to_string()),
            Just("ADD <<X /x".to_string()),
            Just("EOF".to_string()),
            Just("\tEOF".to_string()),
            Just("X".to_string()),
            Just("A".to_string()),
            Just("B".to_string()),
            Just("#!/bin/sh".to_string()),
            Just("echo $HOME \\".to_string()),
            Just("SHELL [\"/bin/bash\", \"-c\"]".to_string()),
            Just("COPY src /dst".to_string()),
            Just("# syntax=docker/dockerfile:1".to_string()),
            Just("RUN a \\".to_string()),
            Just("  b".to_string()),
            Just(String::new()),
            "[ -~]{0,12}",
        ];
        (proptest::collection::vec(line, 0..14), proptest::bool::ANY)
            .prop_map(|(lines, crlf)| lines.join(if crlf { "\r\n" } else { "\n" }))
    }

    proptest::proptest! {
        #[test]
        fn translation_never_panics_keeps_line_numbers_and_leaves_no_heredoc(
            text in dockerfile_text(),
        ) {
            let Ok(analysis) = analyse(&text, &BTreeMap::new()) else {
                return Ok(());
            };
            for p in [old(), profile(false, false)] {
                let result = translate(&Inputs {
                    text: &text,
                    analysis: &analysis,
                    profile: &p,
                    shells: &HashMap::new(),
                    generated_dir: ".headjack-heredocs",
                    syntax_image_present: false,
                });
                let Ok(t) = result else { continue };
                let Some(out) = t.dockerfile else { continue };
                let out = String::from_utf8(out).unwrap();
                proptest::prop_assert_eq!(out.lines().count(), text.lines().count(), "{:?}", out);
                let again = analyse(&out, &BTreeMap::new()).unwrap();
                proptest::prop_assert!(
                    again.instructions.iter().all(|i| i.heredocs.is_empty()),
                    "{:?}",
                    out
                );
                proptest::prop_assert_eq!(again.stages.len(), analysis.stages.len());
            }
        }
    }

    #[test]
    fn roots_wildcards_and_variables_may_see_everything() {
        for src in [
            ".", "./", "/", "", "*", "./*.txt", ".*", "$X", "${X}/a", "..", "[a-z]*/x",
        ] {
            assert!(may_see_root(src), "{src}");
        }
        for src in [
            "src",
            "./src/*.rs",
            "a/b",
            "https://x/y",
            "git@github.com:x/y",
        ] {
            assert!(!may_see_root(src), "{src}");
        }
    }
}
