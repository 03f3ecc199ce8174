//! Heredocs (`RUN <<EOF`, `COPY <<EOF`) rewritten into what the built-in frontend reads, exactly
//! as BuildKit derives them, or refused.

use super::*;

/// A heredoc's document as BuildKit uses it (leading tabs removed for `<<-`).
pub(super) fn document(h: &Heredoc) -> String {
    if !h.chomp {
        return h.content.clone();
    }
    h.content
        .split_inclusive('\n')
        .map(|l| l.trim_start_matches('\t'))
        .collect()
}

/// Whether a heredoc name can be a file name in the generated directory.
pub(super) fn valid_doc_name(name: &str) -> bool {
    static NAME: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$").expect("valid regex"));
    NAME.is_match(name) && name != "." && name != ".."
}

/// A directory for one generated document, named by its kind, name and content.
pub(super) fn doc_dir(kind: &str, name: &str, data: &str) -> String {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([0]);
    h.update(data.as_bytes());
    format!("{kind}-{}", &hex::encode(h.finalize())[..16])
}

/// Whether the command is a single heredoc marker (`<<EOF`, `<<-"EOF"`, `3<<EOF`).
pub(super) fn is_single_marker(cmd: &str) -> bool {
    static MARKER: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^(\d*)<<(-?)([^<]*)$").expect("valid regex"));
    let Some(caps) = MARKER.captures(cmd) else {
        return false;
    };
    let rest = &caps[3];
    !rest.is_empty() && split_words(rest, '\\').len() == 1
}

pub(super) fn json_array(args: &[String]) -> String {
    serde_json::to_string(args).expect("strings serialise")
}

pub(super) fn translate_run(
    ins: &Instruction,
    escape: char,
    shell: &[String],
    inputs: &Inputs<'_>,
    out: &mut Translation,
) -> Result<String> {
    let rest = after_flags(&ins.args, escape);
    let flags = ins.args[..ins.args.len() - rest.len()].trim_end();
    let cmd = rest.trim();
    let mut args: Vec<String> = shell.to_vec();
    let mut extra_flag = String::new();
    if is_single_marker(cmd) && ins.heredocs.len() == 1 {
        let h = &ins.heredocs[0];
        let data = document(h);
        if data.starts_with("#!") {
            if !inputs.profile.run_mounts {
                return Err(unsupported(
                    ins.line,
                    "RUN <<EOF with a #! line",
                    &inputs.profile.name,
                    "its frontend has no heredocs, and running the document as a file needs a \
                     bind mount (RUN --mount), which needs BuildKit or Podman; start the \
                     document without #! to run it with the stage's shell",
                ));
            }
            if !valid_doc_name(&h.name) {
                return Err(bad_doc_name(ins.line, &h.name, &inputs.profile.name));
            }
            let dir = doc_dir("run", &h.name, &data);
            out.generated.push(Generated {
                path: format!("{dir}/{}", h.name),
                mode: 0o755,
                data: data.into_bytes(),
            });
            extra_flag = format!(
                "--mount=type=bind,source={}/{dir},target=/dev/pipes ",
                inputs.generated_dir
            );
            args.push(format!("/dev/pipes/{}", h.name));
        } else {
            args.push(data);
        }
    } else {
        // BuildKit hands the shell the command with its documents appended.
        let mut full = cmd.to_string();
        for h in &ins.heredocs {
            full.push('\n');
            full.push_str(&h.content);
            full.push_str(&h.name);
        }
        args.push(full);
    }
    let flags = if flags.is_empty() {
        String::new()
    } else {
        format!("{flags} ")
    };
    Ok(format!("RUN {flags}{extra_flag}{}", json_array(&args)))
}

pub(super) fn bad_doc_name(line: usize, name: &str, engine: &str) -> Error {
    unsupported(
        line,
        &format!("the heredoc name {name:?}"),
        engine,
        "its frontend has no heredocs, and headjack writes a heredoc's document to a file of that \
         name, which must be letters, digits, `_`, `.` and `-`; rename the delimiter",
    )
}

pub(super) fn translate_copy(
    ins: &Instruction,
    escape: char,
    inputs: &Inputs<'_>,
    out: &mut Translation,
) -> Result<String> {
    let engine = &inputs.profile.name;
    let kw = ins.keyword.as_str();
    let words = split_words(&ins.args, escape);
    let (flags, rest): (Vec<&String>, Vec<&String>) = {
        let n = words.iter().take_while(|w| w.starts_with("--")).count();
        (words[..n].iter().collect(), words[n..].iter().collect())
    };
    let markers: Vec<usize> = rest
        .iter()
        .enumerate()
        .filter(|(i, w)| *i + 1 < rest.len() && is_single_marker(w))
        .map(|(i, _)| i)
        .collect();
    if markers.len() != ins.heredocs.len() {
        return Err(unsupported(
            ins.line,
            &format!("{kw} with heredocs"),
            engine,
            "its frontend has no heredocs and headjack could not match each <<marker with its \
             document; put each <<marker as its own source word",
        ));
    }
    for flag in &flags {
        let name = flag.split('=').next().unwrap_or_default();
        let allowed = matches!(name, "--chown" | "--chmod") || (kw == "COPY" && name == "--link");
        if name == "--from" {
            return Err(unsupported(
                ins.line,
                &format!("{kw} --from with a heredoc"),
                engine,
                "its frontend has no heredocs; copy the document in an instruction without --from",
            ));
        }
        if !allowed {
            return Err(unsupported(
                ins.line,
                &format!("{kw} {name} with a heredoc"),
                engine,
                "its frontend has no heredocs and headjack translates them only with --chown and \
                 --chmod; move the document to its own COPY",
            ));
        }
    }
    if kw == "ADD" && markers.len() + 1 != rest.len() {
        return Err(unsupported(
            ins.line,
            "ADD mixing heredocs and other sources",
            engine,
            "its frontend has no heredocs, and headjack turns ADD <<EOF into a COPY (BuildKit \
             never unpacks a document), which would change how the other sources are added; \
             give the documents their own ADD",
        ));
    }
    let mut new_words: Vec<String> = rest.iter().map(|w| w.to_string()).collect();
    for (k, &i) in markers.iter().enumerate() {
        let h = &ins.heredocs[k];
        let data = document(h);
        if h.expand && (data.contains('$') || data.contains('\\') || data.contains(escape)) {
            return Err(unsupported(
                ins.line,
                &format!("{kw} <<{} with `$` or `\\` in the document", h.name),
                engine,
                "its frontend has no heredocs, and BuildKit would expand variables and escapes in \
                 a document with an unquoted delimiter, which headjack does not imitate; quote \
                 the delimiter (<<'EOF') to copy the text as written, or build the file with RUN",
            ));
        }
        if !valid_doc_name(&h.name) {
            return Err(bad_doc_name(ins.line, &h.name, engine));
        }
        let dir = doc_dir("copy", &h.name, &data);
        let path = format!("{dir}/{}", h.name);
        if !out.generated.iter().any(|g| g.path == path) {
            out.generated.push(Generated {
                path: path.clone(),
                mode: 0o644,
                data: data.into_bytes(),
            });
        }
        new_words[i] = format!("{}/{path}", inputs.generated_dir);
    }
    let mut parts: Vec<String> = vec!["COPY".to_string()];
    parts.extend(flags.iter().map(|f| f.to_string()));
    parts.extend(new_words);
    Ok(parts.join(" "))
}

/// Refuses a Dockerfile that would copy or mount the generated directory along with the
/// context (a `COPY .` of the root, or a wildcard or variable that could name it).
pub(super) fn check_generated_stay_unseen(
    analysis: &Analysis,
    inputs: &Inputs<'_>,
    translated: &[usize],
) -> Result<()> {
    let escape = analysis.escape;
    let first_translated = translated.first().copied().unwrap_or(0);
    let conflict = |line: usize, what: &str| {
        unsupported(
            line,
            what,
            &inputs.profile.name,
            &format!(
                "its frontend has no heredocs; headjack translates the heredoc on line \
                 {first_translated} by adding its document to the build context, and this \
                 instruction would copy that document into the image too; copy named paths \
                 instead of the whole context, or keep the document as a file in the context"
            ),
        )
    };
    for ins in &analysis.instructions {
        if translated.contains(&ins.line) {
            continue;
        }
        match ins.keyword.as_str() {
            "COPY" | "ADD" => {
                let flags = leading_flags(&ins.args, escape);
                if flags.iter().any(|f| f.starts_with("--from=")) {
                    continue;
                }
                let rest = after_flags(&ins.args, escape);
                let words: Vec<String> = if is_json_form(&ins.args, escape) {
                    serde_json::Deserializer::from_str(rest.trim())
                        .into_iter::<Vec<String>>()
                        .next()
                        .and_then(|r| r.ok())
                        .unwrap_or_default()
                } else {
                    split_words(rest, escape)
                };
                let Some((_, sources)) = words.split_last() else {
                    continue;
                };
                if let Some(src) = sources.iter().find(|s| may_see_root(s)) {
                    return Err(conflict(
                        ins.line,
                        &format!("{} {src} together with a translated heredoc", ins.keyword),
                    ));
                }
            }
            "RUN" => {
                for flag in leading_flags(&ins.args, escape) {
                    let Some(spec) = flag.strip_prefix("--mount=") else {
                        continue;
                    };
                    let fields = mount_fields(spec);
                    let get = |k: &str| {
                        fields
                            .iter()
                            .find(|(key, _)| key == k)
                            .map(|(_, v)| v.as_str())
                    };
                    if get("type").unwrap_or("bind") != "bind" || get("from").is_some() {
                        continue;
                    }
                    let source = get("source").or_else(|| get("src")).unwrap_or("");
                    if may_see_root(source) {
                        return Err(conflict(
                            ins.line,
                            "RUN --mount=type=bind of the build context together with a \
                             translated heredoc",
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whether a context source path could include a directory at the context root other than
/// the ones it names: the root itself, a wildcard or a variable in its first component.
pub(super) fn may_see_root(src: &str) -> bool {
    if src.contains("://") || src.starts_with("git@") {
        return false;
    }
    if src.contains('$') {
        return true;
    }
    let mut p = src;
    loop {
        let before = p;
        p = p.trim_start_matches('/');
        if let Some(r) = p.strip_prefix("./") {
            p = r;
        }
        if p == before {
            break;
        }
    }
    let first = p.split('/').next().unwrap_or_default();
    first.is_empty() || first == "." || first == ".." || first.contains(['*', '?', '[', '\\'])
}
