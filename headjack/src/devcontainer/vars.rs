//! `${…}` variables in definition strings, resolved the way the devcontainers CLI does:
//!
//! | variable | value |
//! | --- | --- |
//! | `${localEnv:X}`, `${env:X}` | the caller's environment variable `X`; empty when unset |
//! | `${localEnv:X:default}` | … or `default` when unset (everything after the second `:`, so a default may hold colons; the CLI keeps only up to the next `:`) |
//! | `${localWorkspaceFolder}`, `${localWorkspaceFolderBasename}` | the workspace folder on the host, its last component |
//! | `${containerWorkspaceFolder}`, `${containerWorkspaceFolderBasename}` | the workspace folder in the container, its last component |
//! | `${devcontainerId}` | [`devcontainer_id`] of the id labels; not in build settings (the image is built before there is a container) |
//! | `${containerEnv:X}` | the container's variable `X`, in `remoteEnv` and lifecycle commands only: when planning if `containerEnv` sets `X` ([`resolve_known_container_env`]), else once the container's environment is known ([`resolve_container_env`]) |
//!
//! A variable the CLI does not know stays as written (the CLI does the same), with a warning.
//! `${localEnv}` without a name is an error, as in the CLI.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

/// Answers a `${name:args…}` reference: its value, or `None` to keep it as written.
type Resolve<'a> = dyn FnMut(&str, &[&str]) -> Result<Option<String>, String> + 'a;

/// Splits `text` at each `${…}` (up to the first `}`, as the CLI's `/\$\{(.*?)\}/`), asks
/// `resolve(name, args)` for each, and keeps the reference as written when it says `None`.
fn replace(text: &str, resolve: &mut Resolve<'_>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start + 2..].find('}') else {
            break;
        };
        out.push_str(&rest[..start]);
        let whole = &rest[start..start + 2 + len + 1];
        let inner = &rest[start + 2..start + 2 + len];
        let mut parts = inner.split(':');
        let name = parts.next().unwrap_or_default();
        let args: Vec<&str> = parts.collect();
        match resolve(name, &args)? {
            Some(value) => out.push_str(&value),
            None => out.push_str(whole),
        }
        rest = &rest[start + 2 + len + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `${localEnv:X[:default]}` / `${containerEnv:X[:default]}` against `env`.
fn lookup(
    name: &str,
    args: &[&str],
    env: &BTreeMap<String, String>,
) -> Result<Option<String>, String> {
    let Some((var, default)) = args.split_first() else {
        return Err(format!(
            "${{{name}}} needs a variable name: write ${{{name}:NAME}} or ${{{name}:NAME:default}}"
        ));
    };
    Ok(Some(match env.get(*var) {
        Some(v) => v.clone(),
        None => default.join(":"),
    }))
}

/// The last component of a `/`-separated path (the whole path when it has none).
fn basename(path: &str) -> String {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// What the variables of a definition resolve to.
#[derive(Debug, Clone)]
pub(crate) struct Vars<'a> {
    /// The caller's environment (`${localEnv:…}`).
    pub local_env: &'a BTreeMap<String, String>,
    /// The workspace folder on the host.
    pub local_workspace: &'a str,
    /// The workspace folder in the container, once known.
    pub container_workspace: Option<&'a str>,
    /// `${devcontainerId}` (not substituted in build settings).
    pub devcontainer_id: &'a str,
}

/// Where a string sits, which decides what may be used in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    /// Build settings (image, Dockerfile, context, args, target): no `${devcontainerId}`.
    Build,
    /// `remoteEnv` and lifecycle commands: `${containerEnv:…}` is kept for later.
    Remote,
    /// Everything else.
    Container,
}

impl Vars<'_> {
    /// Resolves the variables of `text` used in `field`; variables kept as written are
    /// described in `notes`.
    ///
    /// # Errors
    ///
    /// A message for `${localEnv}` or `${containerEnv}` without a variable name.
    pub fn apply(
        &self,
        text: &str,
        field: Field,
        notes: &mut Vec<String>,
    ) -> Result<String, String> {
        replace(text, &mut |name, args| match name {
            "localEnv" | "env" => lookup(name, args, self.local_env),
            "localWorkspaceFolder" => Ok(Some(self.local_workspace.to_string())),
            "localWorkspaceFolderBasename" => Ok(Some(basename(self.local_workspace))),
            "containerWorkspaceFolder" => Ok(self.container_workspace.map(str::to_string)),
            "containerWorkspaceFolderBasename" => Ok(self.container_workspace.map(basename)),
            "devcontainerId" if field == Field::Build => {
                notes.push(
                    "${devcontainerId} cannot be used in build settings (the image is built \
                     before there is a container); left as written"
                        .to_string(),
                );
                Ok(None)
            }
            "devcontainerId" => Ok(Some(self.devcontainer_id.to_string())),
            "containerEnv" => {
                if args.is_empty() {
                    return lookup(name, args, &BTreeMap::new());
                }
                if field != Field::Remote {
                    notes.push(format!(
                        "${{containerEnv:{}}} is only resolved in remoteEnv and lifecycle \
                         commands; left as written",
                        args.join(":")
                    ));
                }
                Ok(None)
            }
            other => {
                notes.push(format!(
                    "unknown variable ${{{}}} is left as written",
                    std::iter::once(other)
                        .chain(args.iter().copied())
                        .collect::<Vec<_>>()
                        .join(":")
                ));
                Ok(None)
            }
        })
    }
}

/// Resolves the `${containerEnv:X[:default]}` references left in `text`, against the
/// container's environment (the image's variables overlaid by `containerEnv`, as the engine
/// reports them). A variable the container lacks becomes its default or empty, as in the CLI.
///
/// # Errors
///
/// A message for `${containerEnv}` without a variable name.
pub(crate) fn resolve_container_env(
    text: &str,
    container_env: &BTreeMap<String, String>,
) -> Result<String, String> {
    replace(text, &mut |name, args| match name {
        "containerEnv" => lookup(name, args, container_env),
        _ => Ok(None),
    })
}

/// Resolves the `${containerEnv:X[:default]}` references of `text` whose `X` is in `known`
/// (variables the definition itself sets, so their container value is certain), keeping the
/// others for [`resolve_container_env`].
pub(crate) fn resolve_known_container_env(text: &str, known: &BTreeMap<String, String>) -> String {
    replace(text, &mut |name, args| match (name, args.first()) {
        ("containerEnv", Some(var)) => Ok(known.get(*var).cloned()),
        _ => Ok(None),
    })
    .unwrap_or_else(|_| text.to_string())
}

/// Whether `text` still holds a `${containerEnv:…}` reference.
pub(crate) fn has_container_env(text: &str) -> bool {
    let mut found = false;
    let _ = replace(text, &mut |name, _| {
        found |= name == "containerEnv";
        Ok(None)
    });
    found
}

/// The dev container id, as the devcontainers CLI derives it from a container's id labels:
/// the labels as a JSON object with sorted keys and no whitespace, SHA-256, the 256-bit number
/// in base 32 (`0-9a-v`), left-padded with `0` to 52 characters. headjack's id labels are the
/// CLI's (`devcontainer.local_folder`, `devcontainer.config_file`), so the same definition and
/// workspace give the same id — and the same `${devcontainerId}`-named volumes — in both.
pub fn devcontainer_id(id_labels: &BTreeMap<String, String>) -> String {
    // A BTreeMap serialises with sorted keys; serde_json's escaping matches JSON.stringify's
    // for every string Rust can hold.
    let json = serde_json::to_string(id_labels).unwrap_or_default();
    let hash = Sha256::digest(json.as_bytes());
    const DIGITS: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    // 52 digits of 5 bits = 260 bits: the hash behind 4 leading zero bits.
    let bit = |i: usize| -> u8 {
        if i < 4 {
            0
        } else {
            let i = i - 4;
            (hash[i / 8] >> (7 - i % 8)) & 1
        }
    };
    (0..52)
        .map(|d| {
            let v = (0..5).fold(0u8, |acc, b| (acc << 1) | bit(d * 5 + b));
            DIGITS[v as usize] as char
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn env() -> BTreeMap<String, String> {
        [("HOME", "/home/me"), ("EMPTY", ""), ("P", "a:b")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn vars<'a>(env: &'a BTreeMap<String, String>) -> Vars<'a> {
        Vars {
            local_env: env,
            local_workspace: "/src/my-proj",
            container_workspace: Some("/workspaces/my-proj"),
            devcontainer_id: "ID",
        }
    }

    #[test]
    fn variables() {
        let env = env();
        let v = vars(&env);
        let cases = [
            ("${localEnv:HOME}/x", "/home/me/x"),
            ("${env:HOME}", "/home/me"),
            ("${localEnv:MISSING}", ""),
            ("${localEnv:MISSING:dflt}", "dflt"),
            ("${localEnv:MISSING:a:b}", "a:b"),
            ("${localEnv:EMPTY:dflt}", ""),
            ("${localEnv:P}", "a:b"),
            ("${localWorkspaceFolder}", "/src/my-proj"),
            ("${localWorkspaceFolderBasename}", "my-proj"),
            ("${containerWorkspaceFolder}/sub", "/workspaces/my-proj/sub"),
            ("${containerWorkspaceFolderBasename}", "my-proj"),
            ("vol-${devcontainerId}", "vol-ID"),
            ("${containerEnv:PATH}:/x", "${containerEnv:PATH}:/x"),
            ("a ${ b", "a ${ b"),
            ("$HOME ${HOME", "$HOME ${HOME"),
            ("${localEnv:HOME}${localEnv:HOME}", "/home/me/home/me"),
            ("no variables", "no variables"),
        ];
        for (text, want) in cases {
            let mut notes = Vec::new();
            assert_eq!(
                v.apply(text, Field::Remote, &mut notes),
                Ok(want.to_string()),
                "{text}"
            );
            assert!(notes.is_empty(), "{text}: {notes:?}");
        }
    }

    #[test]
    fn kept_variables_are_noted() {
        let env = env();
        let v = vars(&env);
        let mut notes = Vec::new();
        let out = v.apply(
            "${foo:bar}-${localHomeFolder}",
            Field::Container,
            &mut notes,
        );
        assert_eq!(out.as_deref(), Ok("${foo:bar}-${localHomeFolder}"));
        assert_eq!(notes.len(), 2);
        assert_eq!(notes[0], "unknown variable ${foo:bar} is left as written");

        let mut notes = Vec::new();
        let out = v.apply("${containerEnv:PATH}", Field::Container, &mut notes);
        assert_eq!(out.as_deref(), Ok("${containerEnv:PATH}"));
        assert!(notes[0].contains("only resolved in remoteEnv"), "{notes:?}");

        let mut notes = Vec::new();
        let out = v.apply("x-${devcontainerId}", Field::Build, &mut notes);
        assert_eq!(out.as_deref(), Ok("x-${devcontainerId}"));
        assert!(notes[0].contains("cannot be used in build settings"));

        let before = Vars {
            container_workspace: None,
            ..v
        };
        let mut notes = Vec::new();
        let out = before.apply("${containerWorkspaceFolder}", Field::Container, &mut notes);
        assert_eq!(out.as_deref(), Ok("${containerWorkspaceFolder}"));
    }

    #[test]
    fn names_are_required() {
        let env = env();
        for text in ["${localEnv}", "${env}", "${containerEnv}"] {
            let e = vars(&env)
                .apply(text, Field::Remote, &mut Vec::new())
                .unwrap_err();
            assert!(e.contains("needs a variable name"), "{text}: {e}");
        }
    }

    #[test]
    fn container_env_second_pass() {
        let env = env();
        assert_eq!(
            resolve_container_env(
                "${containerEnv:P}/x:${containerEnv:NO:d}:${localEnv:X}",
                &env
            )
            .as_deref(),
            Ok("a:b/x:d:${localEnv:X}")
        );
        assert_eq!(
            resolve_known_container_env("${containerEnv:P}|${containerEnv:NO:d}", &env),
            "a:b|${containerEnv:NO:d}"
        );
        assert!(has_container_env("x${containerEnv:PATH}"));
        assert!(!has_container_env("x${localEnv:PATH}"));
    }

    #[test]
    fn devcontainer_id_matches_the_cli() {
        // Expected values computed with the JavaScript of the specification
        // (docs/specs/devcontainer-id-variable.md) under Node.js.
        let labels = |folder: &str, config: &str| {
            BTreeMap::from([
                ("devcontainer.local_folder".to_string(), folder.to_string()),
                ("devcontainer.config_file".to_string(), config.to_string()),
            ])
        };
        assert_eq!(
            devcontainer_id(&labels(
                "/home/me/proj",
                "/home/me/proj/.devcontainer/devcontainer.json"
            )),
            "0qbup1i4f2ig7p6igu8b63pn9mil7frd06bh2glbg2t8vn29r9ca"
        );
        assert_eq!(
            devcontainer_id(&labels("/tmp/a \"quoted\" \\ dir\tü", "/x.json")),
            "1d985t24afu4bipnqoaoi18nf690lp6oij624310hjst1k56sjdf"
        );
        assert_eq!(
            devcontainer_id(&BTreeMap::new()),
            "0h0jduhlbcr7h88kdb8muvk697kkvd7s47v7fq1h1g30uoealvsa"
        );
    }

    proptest! {
        #[test]
        fn substitution_never_panics(text in "(\\PC|[${}:])*") {
            let env = env();
            let _ = vars(&env).apply(&text, Field::Remote, &mut Vec::new());
            let _ = resolve_container_env(&text, &env);
        }

        // Text without "${" comes back unchanged.
        #[test]
        fn plain_text_is_unchanged(text in "[^$]*") {
            let env = env();
            prop_assert_eq!(vars(&env).apply(&text, Field::Container, &mut Vec::new()), Ok(text));
        }
    }
}
