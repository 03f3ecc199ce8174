//! Finding a dev container definition from a path, and telling whether a base string names
//! one.
//!
//! For a directory `D`, in this order (the order of the devcontainers CLI and VS Code, then
//! the folders one level down):
//!
//! 1. `D/.devcontainer/devcontainer.json`
//! 2. `D/.devcontainer.json`
//! 3. `D/devcontainer.json` (`D` is itself a definition folder, e.g. `.devcontainer` or
//!    `.devcontainer/python`)
//! 4. `D/.devcontainer/<name>/devcontainer.json` — when exactly one exists; several are an
//!    error that lists them
//! 5. if `D` is named `.devcontainer`: `D/<name>/devcontainer.json`, likewise
//!
//! A path to a file is taken as the definition when its name ends in `devcontainer.json`
//! (`devcontainer.json`, `.devcontainer.json`, `python.devcontainer.json`).
//!
//! The workspace (the host folder mounted into the container) is the folder that holds
//! `.devcontainer/` or `.devcontainer.json`; for a definition elsewhere, the definition's
//! own folder.

use std::path::{Component, Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};

/// The definition file name.
pub const DEFINITION_FILE: &str = "devcontainer.json";
/// The definition folder name.
pub const DEFINITION_DIR: &str = ".devcontainer";
/// The single-file form's name.
pub const DEFINITION_DOTFILE: &str = ".devcontainer.json";

/// A definition found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    /// The `devcontainer.json` (absolute, lexically normalised).
    pub config_file: PathBuf,
    /// The workspace folder it describes (absolute, lexically normalised).
    pub workspace: PathBuf,
}

/// Whether a file name names a definition by itself.
fn is_definition_name(name: &str) -> bool {
    name.to_ascii_lowercase().ends_with(DEFINITION_FILE)
}

/// Whether a base string is explicitly a path (the base-string rule of `base.rs`).
fn is_explicit_path(s: &str) -> bool {
    ["./", "../", "/", "~/"].iter().any(|p| s.starts_with(p)) || matches!(s, "." | ".." | "~")
}

/// Whether the base string `s` should be read as a dev container definition, `base_dir`
/// being where relative paths start (`~` is `home`, when given):
///
/// - the last path component ends in `devcontainer.json` (`.devcontainer/devcontainer.json`,
///   `.devcontainer.json`, `ci/devcontainer.json`) — whether or not the file exists, so a
///   missing one is reported as a missing definition, not as a bad image name;
/// - the last path component is `.devcontainer` (never a valid image name);
/// - an explicit path (`./`, `../`, `/`, `~/`, `.`, `..`, `~`) to a directory that holds a
///   definition ([`discover`]'s order) **and no `Dockerfile`/`Containerfile` directly** — a
///   directory holding a Dockerfile keeps meaning that Dockerfile, as before;
///
/// and nothing else (a bare word like `myproj` stays an image reference).
pub fn is_devcontainer_base(s: &str, base_dir: &Path, home: Option<&Path>) -> bool {
    let t = s.trim();
    let last = t.trim_end_matches('/').rsplit('/').next().unwrap_or(t);
    if is_definition_name(last) || last == DEFINITION_DIR {
        return true;
    }
    if !is_explicit_path(t) {
        return false;
    }
    let dir = resolve(t, base_dir, home);
    dir.is_dir()
        && !["Dockerfile", "Containerfile"]
            .iter()
            .any(|f| dir.join(f).is_file())
        && candidates(&dir).is_ok_and(|c| !c.is_empty())
}

/// `s` with `~` expanded and made absolute against `base_dir`, normalised.
fn resolve(s: &str, base_dir: &Path, home: Option<&Path>) -> PathBuf {
    let p = Path::new(s);
    let p = match (p.strip_prefix("~"), home) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => p.to_path_buf(),
    };
    let base = std::path::absolute(base_dir).unwrap_or_else(|_| base_dir.to_path_buf());
    normalize(&base.join(p))
}

/// Lexical normalisation: drops `.`, resolves `..` against the preceding component.
pub(crate) fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// The definitions a directory offers, in priority order: the first of rules 1–3 alone, or
/// all of those found by rule 4 or 5.
fn candidates(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    for direct in [
        dir.join(DEFINITION_DIR).join(DEFINITION_FILE),
        dir.join(DEFINITION_DOTFILE),
        dir.join(DEFINITION_FILE),
    ] {
        if direct.is_file() {
            return Ok(vec![direct]);
        }
    }
    fn scan(folder: &Path, nested: &mut Vec<PathBuf>) -> std::io::Result<()> {
        let entries = match std::fs::read_dir(folder) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let candidate = entry?.path().join(DEFINITION_FILE);
            if candidate.is_file() {
                nested.push(candidate);
            }
        }
        Ok(())
    }
    let mut nested = Vec::new();
    let dot_dir = dir.join(DEFINITION_DIR);
    if dot_dir.is_dir() {
        scan(&dot_dir, &mut nested)?;
    }
    if nested.is_empty() && dir.file_name().is_some_and(|n| n == DEFINITION_DIR) {
        scan(dir, &mut nested)?;
    }
    nested.sort();
    Ok(nested)
}

/// The workspace a definition file describes (see the [module docs](self)).
pub fn workspace_of(config_file: &Path) -> PathBuf {
    let folder = config_file.parent().unwrap_or(Path::new("/"));
    let name = config_file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name == DEFINITION_DOTFILE {
        return folder.to_path_buf();
    }
    // `W/.devcontainer/devcontainer.json` or `W/.devcontainer/<name>/devcontainer.json` → W.
    for ancestor in folder.ancestors().take(2) {
        if ancestor.file_name().is_some_and(|n| n == DEFINITION_DIR) {
            return ancestor.parent().unwrap_or(Path::new("/")).to_path_buf();
        }
    }
    folder.to_path_buf()
}

/// Finds the definition `path` names: a definition file, or a directory searched in the
/// order of the [module docs](self). Relative paths resolve against `base_dir`.
///
/// # Errors
///
/// [`ErrorKind::InvalidBase`] when the path does not exist, is a file whose name is not a
/// definition's, holds no definition (the message lists where it looked) or holds several
/// `.devcontainer/<name>/` definitions and no top-level one (the message lists them, to pick
/// one by its path); [`ErrorKind::Io`] when a directory cannot be read.
pub fn discover(path: &Path, base_dir: &Path) -> Result<Definition> {
    let path = resolve(&path.to_string_lossy(), base_dir, home().as_deref());
    let invalid = |why: String| Error::new(ErrorKind::InvalidBase, why);
    let meta = std::fs::metadata(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            invalid(format!(
                "the dev container definition {} does not exist",
                path.display()
            ))
        } else {
            Error::io(format!("cannot access {}", path.display()), e)
        }
    })?;
    let config_file = if meta.is_file() {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !is_definition_name(&name) {
            return Err(invalid(format!(
                "{} is not a dev container definition: its name must end in devcontainer.json",
                path.display()
            )));
        }
        path
    } else {
        let found = candidates(&path)
            .map_err(|e| Error::io(format!("reading the directory {}", path.display()), e))?;
        match found.as_slice() {
            [one] => one.clone(),
            [] => {
                return Err(invalid(format!(
                    "{} holds no dev container definition: looked for {DEFINITION_DIR}/{DEFINITION_FILE}, \
                     {DEFINITION_DOTFILE}, {DEFINITION_FILE} and {DEFINITION_DIR}/<name>/{DEFINITION_FILE}",
                    path.display()
                )));
            }
            several => {
                let list: Vec<String> = several
                    .iter()
                    .map(|p| format!("  {}", p.display()))
                    .collect();
                return Err(invalid(format!(
                    "{} holds {} dev container definitions and no top-level one; name the one \
                     to use by its path:\n{}",
                    path.display(),
                    several.len(),
                    list.join("\n")
                )));
            }
        }
    };
    Ok(Definition {
        workspace: workspace_of(&config_file),
        config_file,
    })
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A temp tree with `files` (relative paths; a trailing `/` makes a directory).
    fn tree(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for f in files {
            let p = dir.path().join(f);
            if f.ends_with('/') {
                std::fs::create_dir_all(&p).unwrap();
            } else {
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(&p, "{}").unwrap();
            }
        }
        dir
    }

    #[test]
    fn discovery_table() {
        // (files, path asked, Ok(config file, workspace) | Err(part of the message))
        type Want = std::result::Result<(&'static str, &'static str), &'static str>;
        let cases: [(&[&str], &str, Want); 14] = [
            (
                &[".devcontainer/devcontainer.json"],
                ".",
                Ok((".devcontainer/devcontainer.json", "")),
            ),
            (&[".devcontainer.json"], ".", Ok((".devcontainer.json", ""))),
            (
                &[".devcontainer/devcontainer.json", ".devcontainer.json"],
                ".",
                Ok((".devcontainer/devcontainer.json", "")),
            ),
            (
                &[".devcontainer/devcontainer.json"],
                ".devcontainer",
                Ok((".devcontainer/devcontainer.json", "")),
            ),
            (
                &[".devcontainer/devcontainer.json"],
                ".devcontainer/devcontainer.json",
                Ok((".devcontainer/devcontainer.json", "")),
            ),
            (
                &[".devcontainer/py/devcontainer.json"],
                ".",
                Ok((".devcontainer/py/devcontainer.json", "")),
            ),
            (
                &[
                    ".devcontainer/py/devcontainer.json",
                    ".devcontainer/go/devcontainer.json",
                ],
                ".devcontainer/go",
                Ok((".devcontainer/go/devcontainer.json", "")),
            ),
            (
                &[
                    ".devcontainer/py/devcontainer.json",
                    ".devcontainer/go/devcontainer.json",
                ],
                ".devcontainer",
                Err("holds 2 dev container definitions and no top-level one"),
            ),
            (
                &[
                    ".devcontainer/py/devcontainer.json",
                    ".devcontainer/go/devcontainer.json",
                    ".devcontainer/devcontainer.json",
                ],
                ".",
                Ok((".devcontainer/devcontainer.json", "")),
            ),
            (
                &["ci/devcontainer.json"],
                "ci",
                Ok(("ci/devcontainer.json", "ci")),
            ),
            (
                &["ci/web.devcontainer.json"],
                "ci/web.devcontainer.json",
                Ok(("ci/web.devcontainer.json", "ci")),
            ),
            (
                &["Dockerfile"],
                "Dockerfile",
                Err("its name must end in devcontainer.json"),
            ),
            (
                &["src/"],
                "src",
                Err("holds no dev container definition: looked for"),
            ),
            (&[], "missing/devcontainer.json", Err("does not exist")),
        ];
        for (files, asked, want) in cases {
            let dir = tree(files);
            let root = dir.path().canonicalize().unwrap();
            let got = discover(Path::new(asked), &root);
            match (got, want) {
                (Ok(d), Ok((config, workspace))) => {
                    assert_eq!(d.config_file, root.join(config), "{files:?} {asked}");
                    assert_eq!(
                        normalize(&d.workspace),
                        normalize(&root.join(workspace)),
                        "{files:?} {asked}"
                    );
                }
                (Err(e), Err(part)) => {
                    assert!(e.to_string().contains(part), "{files:?} {asked}: {e}");
                    assert_eq!(e.kind(), ErrorKind::InvalidBase);
                }
                (got, want) => panic!("{files:?} {asked}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn several_definitions_are_listed() {
        let dir = tree(&[
            ".devcontainer/b/devcontainer.json",
            ".devcontainer/a/devcontainer.json",
        ]);
        let e = discover(Path::new("."), dir.path())
            .unwrap_err()
            .to_string();
        let a = e.find("/.devcontainer/a/devcontainer.json").unwrap();
        let b = e.find("/.devcontainer/b/devcontainer.json").unwrap();
        assert!(a < b, "{e}");
        assert!(e.contains("name the one to use by its path"));
    }

    #[test]
    fn base_string_classification() {
        let dir = tree(&[
            "proj/.devcontainer/devcontainer.json",
            "both/.devcontainer/devcontainer.json",
            "both/Dockerfile",
            "plain/",
            "single/.devcontainer.json",
        ]);
        let base = dir.path();
        let cases = [
            (".devcontainer/devcontainer.json", true),
            ("proj/.devcontainer/devcontainer.json", true),
            (".devcontainer.json", true),
            ("ci/web.devcontainer.json", true),
            ("./missing/devcontainer.json", true),
            (".devcontainer", true),
            ("proj/.devcontainer/", true),
            ("./proj", true),
            ("./proj/", true),
            ("./single", true),
            ("./both", false),
            ("./plain", false),
            ("./nope", false),
            ("proj", false),
            ("debian:bookworm-slim", false),
            ("./Dockerfile", false),
            ("", false),
        ];
        for (s, want) in cases {
            assert_eq!(is_devcontainer_base(s, base, None), want, "{s}");
        }
        assert!(is_devcontainer_base("~/proj", Path::new("/"), Some(base)));
        assert!(!is_devcontainer_base("~/plain", Path::new("/"), Some(base)));
    }

    #[test]
    fn workspace_rules() {
        let cases = [
            ("/w/.devcontainer/devcontainer.json", "/w"),
            ("/w/.devcontainer/py/devcontainer.json", "/w"),
            ("/w/.devcontainer.json", "/w"),
            ("/w/ci/devcontainer.json", "/w/ci"),
            ("/w/a/b/devcontainer.json", "/w/a/b"),
        ];
        for (file, want) in cases {
            assert_eq!(workspace_of(Path::new(file)), Path::new(want), "{file}");
        }
    }
}
