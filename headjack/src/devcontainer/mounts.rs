//! Mounts as definitions write them: Docker's `--mount` syntax
//! (`type=bind,source=/a,target=/b,readonly`), the object form, and `-v` / `--volume`
//! (`source:target[:options]`) in `runArgs`.

use std::path::PathBuf;

use super::units::parse_bytes;

/// A mount to add to the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountPlan {
    /// What is mounted.
    pub kind: MountKind,
    /// Where, inside the container (an absolute path).
    pub target: String,
    /// Whether it is read-only.
    pub read_only: bool,
}

/// What a [`MountPlan`] mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// A host file or directory (an absolute path).
    Bind {
        /// The host path.
        source: PathBuf,
    },
    /// An engine volume, created if missing; `None`: an anonymous volume.
    Volume {
        /// The volume's name.
        name: Option<String>,
    },
    /// An in-memory filesystem, optionally bounded.
    Tmpfs {
        /// `tmpfs-size`, in bytes.
        size_bytes: Option<u64>,
    },
}

/// Splits a `--mount` value into its comma-separated fields, honouring double quotes the way
/// the docker CLI's CSV reader does (`"source=/a,b"` or `source="/a,b"`; `""` is a quote).
fn split_fields(s: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = s.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', false) => quoted = true,
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', true) => quoted = false,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    if quoted {
        return Err(format!("{s:?} has an unterminated quote"));
    }
    fields.push(field);
    Ok(fields)
}

/// Whether `value` means true for a `readonly=` style flag.
fn flag(key: &str, value: Option<&str>) -> Result<bool, String> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None | Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(other) => Err(format!("{key}={other} is not true or false")),
    }
}

/// Parses Docker's `--mount` syntax. Keys: `type` (`bind`, `volume` — the default —, `tmpfs`),
/// `source`/`src`, `target`/`destination`/`dst`, `readonly`/`ro` (optionally `=true|false`),
/// `tmpfs-size`; accepted and ignored: `consistency` (macOS only); named in `warnings`:
/// the other options of Docker's syntax (`bind-propagation`, `volume-opt`, `tmpfs-mode`, …).
///
/// # Errors
///
/// A message naming the problem: an unknown key or type, a missing or relative target, a bind
/// without an absolute source, a source on a tmpfs, a bad size.
pub(crate) fn parse_mount(s: &str, warnings: &mut Vec<String>) -> Result<MountPlan, String> {
    let mut kind = None;
    let mut source: Option<String> = None;
    let mut target: Option<String> = None;
    let mut read_only = false;
    let mut size = None;
    for field in split_fields(s)? {
        let field = field.trim();
        if field.is_empty() {
            continue;
        }
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim())),
            None => (field.to_ascii_lowercase(), None),
        };
        let need = |v: Option<&str>| {
            v.map(str::to_string)
                .ok_or_else(|| format!("{key} needs a value ({key}=…)"))
        };
        match key.as_str() {
            "type" => kind = Some(need(value)?.to_ascii_lowercase()),
            "source" | "src" => source = Some(need(value)?),
            "target" | "destination" | "dst" => target = Some(need(value)?),
            "readonly" | "ro" => read_only = flag(&key, value)?,
            "consistency" => {}
            "tmpfs-size" => size = Some(parse_bytes(&need(value)?)?),
            "bind-propagation" | "bind-nonrecursive" | "bind-recursive" | "volume-nocopy"
            | "volume-driver" | "volume-opt" | "volume-label" | "volume-subpath" | "tmpfs-mode" => {
                warnings.push(format!(
                    "mount option {key:?} in {s:?} is not supported; ignored"
                ))
            }
            _ => {
                return Err(format!(
                    "unknown key {key:?} in mount {s:?}: use type, source, target, readonly"
                ));
            }
        }
    }
    let target = match target {
        Some(t) if t.starts_with('/') => t,
        Some(t) => {
            return Err(format!(
                "the target {t:?} of mount {s:?} is not an absolute container path"
            ));
        }
        None => {
            return Err(format!(
                "mount {s:?} has no target (target=/path/in/container)"
            ));
        }
    };
    let kind = match kind.as_deref().unwrap_or("volume") {
        "bind" => match source {
            Some(src) if src.starts_with('/') => MountKind::Bind {
                source: PathBuf::from(src),
            },
            Some(src) => {
                return Err(format!(
                    "the bind source {src:?} of mount {s:?} is not an absolute host path \
                     (write it from ${{localWorkspaceFolder}})"
                ));
            }
            None => return Err(format!("bind mount {s:?} has no source")),
        },
        "volume" => MountKind::Volume {
            name: source.filter(|n| !n.is_empty()),
        },
        "tmpfs" => {
            if let Some(src) = source.filter(|n| !n.is_empty()) {
                return Err(format!(
                    "tmpfs mount {s:?} cannot have a source (found {src:?})"
                ));
            }
            MountKind::Tmpfs { size_bytes: size }
        }
        other => {
            return Err(format!(
                "mount type {other:?} in {s:?} is not supported: use bind, volume or tmpfs"
            ));
        }
    };
    if size.is_some() && !matches!(kind, MountKind::Tmpfs { .. }) {
        warnings.push(format!(
            "tmpfs-size in the non-tmpfs mount {s:?} is ignored"
        ));
    }
    Ok(MountPlan {
        kind,
        target,
        read_only,
    })
}

/// The object form of a mount (`{"type", "source", "target", "readonly"}`), with the same
/// rules as the string form; `type` is required, as in the specification's schema.
///
/// # Errors
///
/// As [`parse_mount`].
pub(crate) fn mount_from_object(
    kind: Option<&str>,
    source: Option<&str>,
    target: Option<&str>,
    read_only: bool,
) -> Result<MountPlan, String> {
    let described = format!(
        "{{type: {}, source: {}, target: {}}}",
        kind.unwrap_or("?"),
        source.unwrap_or("?"),
        target.unwrap_or("?")
    );
    let Some(kind) = kind else {
        return Err(format!(
            "mount {described} has no type (bind, volume or tmpfs)"
        ));
    };
    let target = match target {
        Some(t) if t.starts_with('/') => t.to_string(),
        Some(t) => {
            return Err(format!(
                "the target {t:?} of mount {described} is not an absolute container path"
            ));
        }
        None => return Err(format!("mount {described} has no target")),
    };
    let source = source.filter(|s| !s.is_empty());
    let kind = match kind.to_ascii_lowercase().as_str() {
        "bind" => match source {
            Some(src) if src.starts_with('/') => MountKind::Bind {
                source: PathBuf::from(src),
            },
            Some(src) => {
                return Err(format!(
                    "the bind source {src:?} of mount {described} is not an absolute host path \
                     (write it from ${{localWorkspaceFolder}})"
                ));
            }
            None => return Err(format!("bind mount {described} has no source")),
        },
        "volume" => MountKind::Volume {
            name: source.map(str::to_string),
        },
        "tmpfs" if source.is_some() => {
            return Err(format!("tmpfs mount {described} cannot have a source"));
        }
        "tmpfs" => MountKind::Tmpfs { size_bytes: None },
        other => {
            return Err(format!(
                "mount type {other:?} is not supported: use bind, volume or tmpfs"
            ));
        }
    };
    Ok(MountPlan {
        kind,
        target,
        read_only,
    })
}

/// Parses `-v` / `--volume`: `source:target[:options]` (a source starting with `/` is a
/// bind, any other a named volume; `target` alone is an anonymous volume). Options: `ro`,
/// `rw`; SELinux and propagation options are named in `warnings`.
///
/// # Errors
///
/// A message for a relative target or a source that is a relative path.
pub(crate) fn parse_volume(s: &str, warnings: &mut Vec<String>) -> Result<MountPlan, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let (source, target, options) = match parts.as_slice() {
        [target] => (None, *target, None),
        [source, target] => (Some(*source), *target, None),
        [source, target, options] => (Some(*source), *target, Some(*options)),
        _ => return Err(format!("{s:?} is not source:target[:options]")),
    };
    if !target.starts_with('/') {
        return Err(format!(
            "the target {target:?} of volume {s:?} is not an absolute container path"
        ));
    }
    let mut read_only = false;
    for option in options.into_iter().flat_map(|o| o.split(',')) {
        match option {
            "ro" => read_only = true,
            "rw" | "" => read_only = false,
            other => warnings.push(format!(
                "volume option {other:?} in {s:?} is not supported; ignored"
            )),
        }
    }
    let kind = match source {
        None => MountKind::Volume { name: None },
        Some(src) if src.starts_with('/') => MountKind::Bind {
            source: PathBuf::from(src),
        },
        Some(src) if src.starts_with('.') || src.starts_with('~') || src.contains('/') => {
            return Err(format!(
                "the source {src:?} of volume {s:?} is not an absolute host path \
                 (write it from ${{localWorkspaceFolder}})"
            ));
        }
        Some(name) => MountKind::Volume {
            name: Some(name.to_string()),
        },
    };
    Ok(MountPlan {
        kind,
        target: target.to_string(),
        read_only,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bind(src: &str, target: &str, ro: bool) -> MountPlan {
        MountPlan {
            kind: MountKind::Bind { source: src.into() },
            target: target.into(),
            read_only: ro,
        }
    }

    fn volume(name: Option<&str>, target: &str, ro: bool) -> MountPlan {
        MountPlan {
            kind: MountKind::Volume {
                name: name.map(String::from),
            },
            target: target.into(),
            read_only: ro,
        }
    }

    #[test]
    fn mount_strings() {
        let cases = [
            ("type=bind,source=/a,target=/b", bind("/a", "/b", false)),
            (
                "type=bind,src=/a,dst=/b,readonly,consistency=cached",
                bind("/a", "/b", true),
            ),
            (
                "type=bind,source=/a,destination=/b,ro=true",
                bind("/a", "/b", true),
            ),
            (
                "type=bind,source=/a,target=/b,readonly=false",
                bind("/a", "/b", false),
            ),
            ("TYPE=BIND, source=/a , target=/b", bind("/a", "/b", false)),
            (
                "\"source=/a,b\",target=/c,type=bind",
                bind("/a,b", "/c", false),
            ),
            (
                "source=\"/a,b\",target=/c,type=bind",
                bind("/a,b", "/c", false),
            ),
            ("source=v,target=/v", volume(Some("v"), "/v", false)),
            (
                "type=volume,source=cache-x,target=/v,ro",
                volume(Some("cache-x"), "/v", true),
            ),
            ("type=volume,target=/anon", volume(None, "/anon", false)),
            (
                "type=tmpfs,target=/t,tmpfs-size=64m",
                MountPlan {
                    kind: MountKind::Tmpfs {
                        size_bytes: Some(64 << 20),
                    },
                    target: "/t".into(),
                    read_only: false,
                },
            ),
        ];
        for (s, want) in cases {
            let mut w = Vec::new();
            assert_eq!(parse_mount(s, &mut w), Ok(want), "{s}");
            assert!(w.is_empty(), "{s}: {w:?}");
        }
    }

    #[test]
    fn mount_warnings() {
        let mut w = Vec::new();
        let m = parse_mount(
            "type=bind,source=/a,target=/b,bind-propagation=rshared,tmpfs-size=1m",
            &mut w,
        )
        .unwrap();
        assert_eq!(m, bind("/a", "/b", false));
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("\"bind-propagation\""));
        assert!(w[1].contains("tmpfs-size in the non-tmpfs mount"));
    }

    #[test]
    fn bad_mount_strings() {
        let cases = [
            ("type=bind,source=/a", "has no target"),
            (
                "type=bind,source=/a,target=b",
                "is not an absolute container path",
            ),
            (
                "type=bind,target=/b",
                "bind mount \"type=bind,target=/b\" has no source",
            ),
            (
                "type=bind,source=./a,target=/b",
                "is not an absolute host path",
            ),
            ("type=tmpfs,source=x,target=/b", "cannot have a source"),
            ("type=npipe,source=x,target=/b", "mount type \"npipe\""),
            (
                "type=bind,source=/a,target=/b,colour=red",
                "unknown key \"colour\"",
            ),
            ("type,source=/a,target=/b", "type needs a value"),
            (
                "type=bind,source=/a,target=/b,readonly=maybe",
                "readonly=maybe is not true or false",
            ),
            ("type=tmpfs,target=/t,tmpfs-size=lots", "is not a size"),
            ("type=bind,\"source=/a,target=/b", "unterminated quote"),
            ("", "has no target"),
        ];
        for (s, want) in cases {
            let e = parse_mount(s, &mut Vec::new()).unwrap_err();
            assert!(e.contains(want), "{s}: {e}");
        }
    }

    #[test]
    fn volume_strings() {
        let mut w = Vec::new();
        assert_eq!(parse_volume("/a:/b", &mut w), Ok(bind("/a", "/b", false)));
        assert_eq!(parse_volume("/a:/b:ro", &mut w), Ok(bind("/a", "/b", true)));
        assert_eq!(
            parse_volume("data:/d", &mut w),
            Ok(volume(Some("data"), "/d", false))
        );
        assert_eq!(parse_volume("/d", &mut w), Ok(volume(None, "/d", false)));
        assert!(w.is_empty());
        assert_eq!(
            parse_volume("/a:/b:ro,z", &mut w),
            Ok(bind("/a", "/b", true))
        );
        assert!(w[0].contains("\"z\""));
        for (s, want) in [
            ("./a:/b", "not an absolute host path"),
            ("a/b:/c", "not an absolute host path"),
            ("/a:b", "not an absolute container path"),
            ("/a:/b:ro:x", "is not source:target"),
        ] {
            let e = parse_volume(s, &mut Vec::new()).unwrap_err();
            assert!(e.contains(want), "{s}: {e}");
        }
    }

    #[test]
    fn mount_objects() {
        assert_eq!(
            mount_from_object(Some("bind"), Some("/a"), Some("/b"), true),
            Ok(bind("/a", "/b", true))
        );
        assert_eq!(
            mount_from_object(Some("volume"), Some("v"), Some("/v"), false),
            Ok(volume(Some("v"), "/v", false))
        );
        assert_eq!(
            mount_from_object(Some("volume"), None, Some("/v"), false),
            Ok(volume(None, "/v", false))
        );
        assert_eq!(
            mount_from_object(Some("tmpfs"), None, Some("/t"), false).map(|m| m.kind),
            Ok(MountKind::Tmpfs { size_bytes: None })
        );
        for (k, s, t, want) in [
            (None, Some("/a"), Some("/b"), "has no type"),
            (Some("bind"), Some("/a"), None, "has no target"),
            (
                Some("bind"),
                Some("/a"),
                Some("b"),
                "not an absolute container path",
            ),
            (Some("bind"), None, Some("/b"), "has no source"),
            (
                Some("bind"),
                Some("a"),
                Some("/b"),
                "not an absolute host path",
            ),
            (Some("tmpfs"), Some("x"), Some("/b"), "cannot have a source"),
            (Some("image"), Some("x"), Some("/b"), "mount type \"image\""),
        ] {
            let e = mount_from_object(k, s, t, false).unwrap_err();
            assert!(e.contains(want), "{k:?} {s:?} {t:?}: {e}");
        }
    }

    proptest! {
        #[test]
        fn mount_parser_never_panics(s in "([a-z=,/\" .:-]|\\PC){0,60}") {
            let _ = parse_mount(&s, &mut Vec::new());
            let _ = parse_volume(&s, &mut Vec::new());
        }

        // Any bind with plain absolute paths reads back what was written.
        #[test]
        fn binds_round_trip(src in "/[a-z0-9_]{1,10}(/[a-z0-9_]{1,10}){0,3}", dst in "/[a-z0-9_]{1,10}", ro in any::<bool>()) {
            let s = format!("type=bind,source={src},target={dst}{}", if ro { ",readonly" } else { "" });
            prop_assert_eq!(parse_mount(&s, &mut Vec::new()), Ok(bind(&src, &dst, ro)));
        }
    }
}
