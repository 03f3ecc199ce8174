//! Local dev container features (`"./my-feature": {…}` folders holding
//! `devcontainer-feature.json` and `install.sh`), installed by a generated Dockerfile layer
//! on top of the definition's image.
//!
//! The install contract is the one feature authors rely on (as the devcontainers CLI runs
//! it): each feature's folder is copied to `/tmp/dev-container-features/<n>_<id>/`, its
//! options (defaults overlaid by the definition's values) are written to
//! `devcontainer-features.env` as `NAME="value"` with `NAME` upper-cased and made a valid
//! variable name, `_CONTAINER_USER`, `_REMOTE_USER` and their `_HOME`s are set, and
//! `install.sh` runs as root from the feature's folder with all of these exported. The
//! feature's `containerEnv` becomes `ENV` lines just before its install step. Features
//! install in the order the definition lists them.
//!
//! The layer is an ordinary Dockerfile build: the generated Dockerfile and the copied
//! folders form its context ([`FeatureLayer::write_context`]), so it is content-keyed and
//! cached like any other. It starts `FROM` the image named by the build argument
//! [`BASE_IMAGE_ARG`] (the definition's image, or the image its Dockerfile built) and ends
//! as the user named by [`IMAGE_USER_ARG`] (that image's user; default `root`).

use std::path::{Path, PathBuf};

use super::config::{FeatureRef, Hook, LifecycleCommand, Located, MountEntry, Reader};
use super::discover::normalize;
use super::jsonc::{self, Json};
use crate::error::{Error, ErrorKind, Result};

/// The build argument naming the image the features are installed onto.
pub const BASE_IMAGE_ARG: &str = "_DEV_CONTAINERS_BASE_IMAGE";
/// The build argument naming the user that image runs as (restored after installing).
pub const IMAGE_USER_ARG: &str = "_DEV_CONTAINERS_IMAGE_USER";
/// The metadata file of a feature.
pub const FEATURE_FILE: &str = "devcontainer-feature.json";
/// A feature's install script.
pub const INSTALL_SCRIPT: &str = "install.sh";

/// A local feature, read from its folder.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalFeature {
    /// `id` from its `devcontainer-feature.json`.
    pub id: String,
    /// `version`, if given.
    pub version: Option<String>,
    /// Its folder (absolute).
    pub dir: PathBuf,
    /// Its `devcontainer-feature.json`.
    pub file: PathBuf,
    /// Option values: declared defaults overlaid by the definition's values, as
    /// `(option name, value)`.
    pub options: Vec<(String, String)>,
    /// `containerEnv` (baked into the image).
    pub container_env: Vec<(String, String)>,
    /// `mounts`.
    pub mounts: Vec<Located<MountEntry>>,
    /// `capAdd`.
    pub cap_add: Vec<String>,
    /// `securityOpt`.
    pub security_opt: Vec<String>,
    /// `init`.
    pub init: Option<bool>,
    /// `privileged`.
    pub privileged: Option<Located<bool>>,
    /// The feature's own lifecycle commands (they run before the definition's).
    pub lifecycle: Vec<(Hook, Located<LifecycleCommand>)>,
}

/// Feature metadata keys that only describe the feature.
const DESCRIPTIVE: [&str; 10] = [
    "$schema",
    "name",
    "description",
    "documentationURL",
    "licenseURL",
    "keywords",
    "legacyIds",
    "deprecated",
    "customizations",
    "installsAfter",
];

/// Reads the local feature `feature` names (a path relative to `config_dir`, which it must
/// stay inside, as the specification requires).
///
/// # Errors
///
/// [`ErrorKind::InvalidBase`] naming the feature when its folder, metadata or install script
/// is missing, the folder lies outside the definition's folder, or the metadata is invalid
/// (with file, line and column).
pub(crate) fn read_local_feature(
    feature: &FeatureRef,
    config_file: &Path,
    config_dir: &Path,
    warnings: &mut Vec<String>,
) -> Result<LocalFeature> {
    let name = &feature.id.value;
    let at = |what: String| {
        jsonc::error_at(
            config_file,
            feature.id.pos,
            format!("features.{name}: {what}"),
        )
    };
    let dir = normalize(&config_dir.join(name));
    if !dir.starts_with(config_dir) || dir == config_dir {
        return Err(at(format!(
            "a local feature must be a folder inside {}, the definition's folder",
            config_dir.display()
        )));
    }
    if !dir.is_dir() {
        return Err(at(format!(
            "the feature folder {} does not exist",
            dir.display()
        )));
    }
    let file = dir.join(FEATURE_FILE);
    if !dir.join(INSTALL_SCRIPT).is_file() {
        return Err(at(format!(
            "the feature folder {} has no {INSTALL_SCRIPT}",
            dir.display()
        )));
    }
    let text = std::fs::read_to_string(&file).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            at(format!(
                "the feature folder {} has no {FEATURE_FILE}",
                dir.display()
            ))
        } else {
            Error::io(format!("reading {}", file.display()), e)
        }
    })?;
    let root = jsonc::parse(&text, &file, warnings)?;
    let r = Reader { file: &file };
    let Json::Object(members) = &root.value else {
        return Err(r.expected(&root, "feature", "an object"));
    };

    let mut id = None;
    let mut out = LocalFeature {
        id: String::new(),
        version: None,
        dir: dir.clone(),
        file: file.clone(),
        options: Vec::new(),
        container_env: Vec::new(),
        mounts: Vec::new(),
        cap_add: Vec::new(),
        security_opt: Vec::new(),
        init: None,
        privileged: None,
        lifecycle: Vec::new(),
    };
    let mut declared: Vec<(String, Option<String>)> = Vec::new();
    for m in members {
        let key = m.key.as_str();
        match key {
            "id" => id = r.opt_string(&m.node, key)?,
            "version" => out.version = r.opt_string(&m.node, key)?.map(|v| v.value),
            "options" => {
                for o in r.object(&m.node, key)? {
                    let what = format!("options.{}", o.key);
                    let default = match &o.node.value {
                        Json::Object(props) => props
                            .iter()
                            .find(|p| p.key == "default")
                            .map(|p| match &p.node.value {
                                Json::String(s) => Ok(s.clone()),
                                Json::Bool(b) => Ok(b.to_string()),
                                Json::Number(n) => Ok(n.clone()),
                                _ => Err(r.expected(
                                    &p.node,
                                    &format!("{what}.default"),
                                    "a string, a boolean or a number",
                                )),
                            })
                            .transpose()?,
                        _ => return Err(r.expected(&o.node, &what, "an object")),
                    };
                    declared.push((o.key.clone(), default));
                }
            }
            "containerEnv" => {
                for (k, v) in r.map(&m.node, key, false)? {
                    let v = v.map(|v| v.value).unwrap_or_default();
                    out.container_env.push((k, v));
                }
            }
            "mounts" => out.mounts = r.mounts(&m.node, warnings)?,
            "capAdd" => out.cap_add = r.strings(&m.node, key)?.into_iter().map(|s| s.value).collect(),
            "securityOpt" => {
                out.security_opt = r.strings(&m.node, key)?.into_iter().map(|s| s.value).collect()
            }
            "init" => out.init = r.opt_bool(&m.node, key)?.map(|b| b.value),
            "privileged" => out.privileged = r.opt_bool(&m.node, key)?,
            "dependsOn" if matches!(&m.node.value, Json::Object(o) if o.is_empty()) => {}
            "dependsOn" => warnings.push(r.note(
                m.key_pos,
                "unsupported key \"dependsOn\": feature dependencies are not installed; list them in the definition instead",
            )),
            "entrypoint" => warnings.push(r.note(
                m.key_pos,
                "unsupported key \"entrypoint\": headjack runs its own keep-alive command; ignored",
            )),
            _ if DESCRIPTIVE.contains(&key) => {}
            _ => match Hook::from_key(key) {
                Some(hook) => {
                    if let Some(command) = r.lifecycle(&m.node, key)? {
                        out.lifecycle.push((hook, command));
                    }
                }
                None => warnings.push(r.note(m.key_pos, format!("unsupported key {key:?}; ignored"))),
            },
        }
    }
    out.lifecycle.sort_by_key(|(hook, _)| *hook);
    let Some(id) = id else {
        return Err(r.err(root.pos, "feature", "\"id\" is missing"));
    };
    if id.value.is_empty()
        || !id
            .value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(r.err(
            id.pos,
            "id",
            format!(
                "{:?} is not a feature id (letters, digits, '-', '_', '.')",
                id.value
            ),
        ));
    }
    out.id = id.value;

    // Declared defaults, overlaid by the definition's values (in declaration order, then
    // undeclared ones in the definition's order).
    for (name, default) in &declared {
        let given = feature
            .options
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone());
        if let Some(value) = given.or_else(|| default.clone()) {
            out.options.push((name.clone(), value));
        }
    }
    for (name, value) in &feature.options {
        if !declared.iter().any(|(d, _)| d == name) {
            warnings.push(format!(
                "{}:{}: features.{}: option {name:?} is not declared by the feature; passed anyway",
                config_file.display(),
                feature.id.pos,
                feature.id.value
            ));
            out.options.push((name.clone(), value.clone()));
        }
    }
    Ok(out)
}

/// The environment variable name of an option, as the devcontainers CLI derives it: each
/// character other than a letter, digit or `_` becomes `_`, a leading run of digits and `_`
/// becomes one `_`, then upper case.
pub(crate) fn option_variable(name: &str) -> String {
    let word: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let trimmed = word.trim_start_matches(|c: char| c.is_ascii_digit() || c == '_');
    let lead = if trimmed.len() < word.len() { "_" } else { "" };
    format!("{lead}{trimmed}").to_ascii_uppercase()
}

/// `value` in double quotes for a POSIX shell (`$`, `` ` ``, `"`, `\` escaped).
fn shell_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if matches!(c, '$' | '`' | '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// What goes into a generated build context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextSource {
    /// A copy of this host file (its executable bit kept).
    Copy(PathBuf),
    /// Generated text.
    Text {
        /// The content.
        content: String,
        /// Whether it is executable.
        executable: bool,
    },
}

/// One file of a generated build context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextFile {
    /// Its path in the context (relative, `/`-separated).
    pub path: String,
    /// Where its bytes come from.
    pub source: ContextSource,
}

/// The generated Dockerfile layer that installs local features.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureLayer {
    /// The Dockerfile text (free of host paths, so the cache key does not depend on where the
    /// definition lives).
    pub dockerfile: String,
    /// The rest of the context, sorted by path.
    pub files: Vec<ContextFile>,
    /// The features, in install order (`id`s).
    pub feature_ids: Vec<String>,
}

/// The name of the generated Dockerfile inside the context written by
/// [`FeatureLayer::write_context`].
pub const LAYER_DOCKERFILE: &str = "Dockerfile";

impl FeatureLayer {
    /// Writes the layer's build context into the empty or missing directory `dir`:
    /// [`LAYER_DOCKERFILE`] and the feature folders. Build it with the build arguments
    /// [`BASE_IMAGE_ARG`] (required) and [`IMAGE_USER_ARG`].
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Io`] when a file cannot be read or written; [`ErrorKind::InvalidArgument`]
    /// when `dir` exists and is not empty.
    pub fn write_context(&self, dir: &Path) -> Result<()> {
        let io = |what: &str, p: &Path, e: std::io::Error| {
            Error::io(format!("{what} {}", p.display()), e)
        };
        if dir.read_dir().is_ok_and(|mut d| d.next().is_some()) {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "cannot write the feature layer's build context into {}: the directory is not empty",
                    dir.display()
                ),
            ));
        }
        std::fs::create_dir_all(dir).map_err(|e| io("creating", dir, e))?;
        let dockerfile = dir.join(LAYER_DOCKERFILE);
        std::fs::write(&dockerfile, &self.dockerfile).map_err(|e| io("writing", &dockerfile, e))?;
        for file in &self.files {
            let dest = dir.join(&file.path);
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent).map_err(|e| io("creating", parent, e))?;
            }
            let executable = match &file.source {
                ContextSource::Copy(src) => {
                    std::fs::copy(src, &dest).map_err(|e| io("copying", src, e))?;
                    continue; // `copy` keeps the permission bits.
                }
                ContextSource::Text {
                    content,
                    executable,
                } => {
                    std::fs::write(&dest, content).map_err(|e| io("writing", &dest, e))?;
                    *executable
                }
            };
            use std::os::unix::fs::PermissionsExt;
            let mode = if executable { 0o755 } else { 0o644 };
            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(mode))
                .map_err(|e| io("setting permissions of", &dest, e))?;
        }
        Ok(())
    }
}

/// Where features are copied inside the image.
const FEATURES_DIR: &str = "/tmp/dev-container-features";

/// The wrapper that runs one feature's `install.sh` under the install contract.
fn install_wrapper(id: &str, version: Option<&str>) -> String {
    let label = match version {
        Some(v) => format!("{id} {v}"),
        None => id.to_string(),
    };
    format!(
        r#"#!/bin/sh
# Generated by headjack: runs a dev container feature's install.sh under the
# features install contract (options and users exported, run as root).
set -e
cd "$(dirname "$0")"
set -a
# shellcheck source=/dev/null
. ../devcontainer-features.builtin.env
# shellcheck source=/dev/null
. ./devcontainer-features.env
set +a
user_home() {{
    awk -F: -v u="${{1%%:*}}" '$1 == u || $3 == u {{ print $6; exit }}' /etc/passwd || true
}}
_CONTAINER_USER_HOME=$(user_home "$_CONTAINER_USER")
_REMOTE_USER_HOME=$(user_home "$_REMOTE_USER")
export _CONTAINER_USER_HOME _REMOTE_USER_HOME
echo {label}
chmod +x ./install.sh
./install.sh
"#,
        label = shell_quote(&format!("Installing dev container feature {label}"))
    )
}

/// A valid environment variable name.
fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The layer that installs `features`, for a definition whose users are `container_user`
/// and `remote_user` (when set; otherwise the image's user, from [`IMAGE_USER_ARG`]).
///
/// # Errors
///
/// [`ErrorKind::InvalidBase`] for a feature `containerEnv` that cannot be an `ENV` line (a
/// bad name, or a newline in the value); [`ErrorKind::Io`] when a feature folder cannot be
/// listed.
pub(crate) fn layer(
    features: &[LocalFeature],
    container_user: Option<&str>,
    remote_user: Option<&str>,
) -> Result<FeatureLayer> {
    let mut dockerfile = format!(
        "# Generated by headjack: installs the local dev container features of a definition\n\
         # onto the image named by the build argument {BASE_IMAGE_ARG}.\n\
         ARG {BASE_IMAGE_ARG}\n\
         FROM ${BASE_IMAGE_ARG}\n\
         ARG {IMAGE_USER_ARG}=root\n\
         USER root\n\
         COPY devcontainer-features.builtin.env {FEATURES_DIR}/\n"
    );
    let container_user = match container_user {
        Some(u) => shell_quote(u),
        None => format!("\"${{{IMAGE_USER_ARG}:-root}}\""),
    };
    let remote_user = match remote_user {
        Some(u) => shell_quote(u),
        None => "\"$_CONTAINER_USER\"".to_string(),
    };
    let mut files = vec![ContextFile {
        path: "devcontainer-features.builtin.env".into(),
        source: ContextSource::Text {
            content: format!("_CONTAINER_USER={container_user}\n_REMOTE_USER={remote_user}\n"),
            executable: false,
        },
    }];
    for (n, f) in features.iter().enumerate() {
        let folder = format!("{n}_{}", f.id);
        for entry in walkdir::WalkDir::new(&f.dir).sort_by_file_name() {
            let entry = entry.map_err(|e| {
                let path = e.path().unwrap_or(&f.dir).to_path_buf();
                Error::io(
                    format!("reading the feature folder {}", path.display()),
                    e.into_io_error()
                        .unwrap_or_else(|| std::io::Error::other("loop in the folder")),
                )
            })?;
            if !entry.file_type().is_file() {
                continue;
            }
            let rel = entry.path().strip_prefix(&f.dir).unwrap_or(entry.path());
            files.push(ContextFile {
                path: format!("{folder}/{}", rel.to_string_lossy()),
                source: ContextSource::Copy(entry.path().to_path_buf()),
            });
        }
        let env: String = f
            .options
            .iter()
            .map(|(k, v)| format!("{}={}\n", option_variable(k), shell_quote(v)))
            .collect();
        files.push(ContextFile {
            path: format!("{folder}/devcontainer-features.env"),
            source: ContextSource::Text {
                content: env,
                executable: false,
            },
        });
        files.push(ContextFile {
            path: format!("{folder}/devcontainer-features-install.sh"),
            source: ContextSource::Text {
                content: install_wrapper(&f.id, f.version.as_deref()),
                executable: true,
            },
        });
        dockerfile.push_str(&format!("COPY {folder}/ {FEATURES_DIR}/{folder}/\n"));
        for (k, v) in &f.container_env {
            if !is_env_name(k) || v.contains('\n') {
                return Err(Error::new(
                    ErrorKind::InvalidBase,
                    format!(
                        "{}: containerEnv.{k}: cannot become an ENV line (the name must be a \
                         variable name and the value one line)",
                        f.file.display()
                    ),
                ));
            }
            let value = v.replace('\\', "\\\\").replace('"', "\\\"");
            dockerfile.push_str(&format!("ENV {k}=\"{value}\"\n"));
        }
        dockerfile.push_str(&format!(
            "RUN sh {FEATURES_DIR}/{folder}/devcontainer-features-install.sh\n"
        ));
    }
    dockerfile.push_str(&format!("USER ${IMAGE_USER_ARG}\n"));
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(FeatureLayer {
        dockerfile,
        files,
        feature_ids: features.iter().map(|f| f.id.clone()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devcontainer::jsonc::Pos;

    fn feature_ref(id: &str, options: &[(&str, &str)]) -> FeatureRef {
        FeatureRef {
            id: Located {
                value: id.into(),
                pos: Pos { line: 3, column: 5 },
            },
            options: options
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn write(dir: &Path, rel: &str, text: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn option_variables() {
        for (name, want) in [
            ("version", "VERSION"),
            ("installTools", "INSTALLTOOLS"),
            ("node-version", "NODE_VERSION"),
            ("1st.opt", "_ST_OPT"),
            ("__x", "_X"),
            ("a b", "A_B"),
        ] {
            assert_eq!(option_variable(name), want, "{name}");
        }
    }

    #[test]
    fn reads_a_feature_and_overlays_options() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join(".devcontainer");
        write(
            &cfg,
            "hello/devcontainer-feature.json",
            r#"{
  // a comment
  "id": "hello", "version": "1.0.0", "name": "Hello",
  "options": {"greeting": {"type": "string", "default": "hi"}, "loud": {"type": "boolean", "default": false}, "none": {"type": "string"}},
  "containerEnv": {"HELLO_HOME": "/opt/hello"},
  "mounts": [{"type": "volume", "source": "hello-${devcontainerId}", "target": "/cache"}],
  "capAdd": ["SYS_PTRACE"], "securityOpt": ["label=disable"], "init": true,
  "postCreateCommand": "hello --version",
  "entrypoint": "/x",
  "installsAfter": [],
}"#,
        );
        write(&cfg, "hello/install.sh", "#!/bin/sh\necho hi\n");
        let mut warnings = Vec::new();
        let f = read_local_feature(
            &feature_ref("./hello", &[("loud", "true"), ("extra", "1")]),
            &cfg.join("devcontainer.json"),
            &cfg,
            &mut warnings,
        )
        .unwrap();
        assert_eq!(f.id, "hello");
        assert_eq!(f.version.as_deref(), Some("1.0.0"));
        assert_eq!(
            f.options,
            [
                ("greeting".to_string(), "hi".to_string()),
                ("loud".into(), "true".into()),
                ("extra".into(), "1".into())
            ]
        );
        assert_eq!(
            f.container_env,
            [("HELLO_HOME".to_string(), "/opt/hello".to_string())]
        );
        assert_eq!(f.mounts.len(), 1);
        assert_eq!(f.cap_add, ["SYS_PTRACE"]);
        assert_eq!(f.security_opt, ["label=disable"]);
        assert_eq!(f.init, Some(true));
        assert_eq!(f.lifecycle[0].0, Hook::PostCreate);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("\"entrypoint\""));
        assert!(warnings[1].contains("option \"extra\" is not declared"));

        let layer = layer(&[f], None, Some("dev")).unwrap();
        assert!(
            layer
                .dockerfile
                .contains("FROM $_DEV_CONTAINERS_BASE_IMAGE\n")
        );
        assert!(layer.dockerfile.contains("COPY 0_hello/ /tmp/dev-container-features/0_hello/\nENV HELLO_HOME=\"/opt/hello\"\nRUN sh /tmp/dev-container-features/0_hello/devcontainer-features-install.sh\n"));
        assert!(
            layer
                .dockerfile
                .ends_with("USER $_DEV_CONTAINERS_IMAGE_USER\n")
        );
        assert!(
            !layer
                .dockerfile
                .contains(&dir.path().to_string_lossy().to_string())
        );
        let paths: Vec<_> = layer.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "0_hello/devcontainer-feature.json",
                "0_hello/devcontainer-features-install.sh",
                "0_hello/devcontainer-features.env",
                "0_hello/install.sh",
                "devcontainer-features.builtin.env"
            ]
        );
        let text = |p: &str| match &layer.files.iter().find(|f| f.path == p).unwrap().source {
            ContextSource::Text { content, .. } => content.clone(),
            ContextSource::Copy(_) => panic!("{p} is a copy"),
        };
        assert_eq!(
            text("0_hello/devcontainer-features.env"),
            "GREETING=\"hi\"\nLOUD=\"true\"\nEXTRA=\"1\"\n"
        );
        assert_eq!(
            text("devcontainer-features.builtin.env"),
            "_CONTAINER_USER=\"${_DEV_CONTAINERS_IMAGE_USER:-root}\"\n_REMOTE_USER=\"dev\"\n"
        );

        let out = tempfile::tempdir().unwrap();
        layer.write_context(&out.path().join("ctx")).unwrap();
        let ctx = out.path().join("ctx");
        assert!(ctx.join("Dockerfile").is_file());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(ctx.join("0_hello/devcontainer-features-install.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        let e = layer.write_context(&ctx).unwrap_err();
        assert!(e.to_string().contains("is not empty"));
    }

    #[test]
    fn feature_errors() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join(".devcontainer");
        write(
            &cfg,
            "noinstall/devcontainer-feature.json",
            r#"{"id": "x"}"#,
        );
        write(&cfg, "nometa/install.sh", "");
        write(&cfg, "noid/install.sh", "");
        write(
            &cfg,
            "noid/devcontainer-feature.json",
            r#"{"version": "1"}"#,
        );
        write(&cfg, "badid/install.sh", "");
        write(&cfg, "badid/devcontainer-feature.json", r#"{"id": "a b"}"#);
        write(&cfg, "badjson/install.sh", "");
        write(
            &cfg,
            "badjson/devcontainer-feature.json",
            "{\n \"id\": \"x\"\n \"v\": 1}",
        );
        write(&dir.path().join("outside"), "install.sh", "");
        let cases = [
            ("./missing", "the feature folder"),
            ("./noinstall", "has no install.sh"),
            ("./nometa", "has no devcontainer-feature.json"),
            ("./noid", "\"id\" is missing"),
            ("./badid", "\"a b\" is not a feature id"),
            (
                "./badjson",
                "devcontainer-feature.json:2:11: invalid JSONC: Expected comma",
            ),
            ("../outside", "must be a folder inside"),
            ("./", "must be a folder inside"),
        ];
        for (id, want) in cases {
            let e = read_local_feature(
                &feature_ref(id, &[]),
                &cfg.join("devcontainer.json"),
                &cfg,
                &mut Vec::new(),
            )
            .unwrap_err()
            .to_string();
            assert!(e.contains(want), "{id}: {e}");
        }
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("a$b`c\"d\\e"), "\"a\\$b\\`c\\\"d\\\\e\"");
        assert!(is_env_name("_A1"));
        assert!(!is_env_name("1A"));
        assert!(!is_env_name("A-B"));
        assert!(!is_env_name(""));
    }
}
