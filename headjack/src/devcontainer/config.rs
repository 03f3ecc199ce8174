//! `devcontainer.json` → [`DevContainerConfig`]: the keys headjack understands, typed, each
//! with its position in the file; every other key becomes a warning (never silently dropped,
//! except the tool-specific ones named in [`IGNORED_KEYS`]).
//!
//! Nothing is interpreted here: variables stay unsubstituted, paths unresolved, mount strings
//! unparsed. That happens when planning ([`super::plan()`]), with the workspace and the
//! caller's environment at hand.

use std::path::{Path, PathBuf};

use super::jsonc::{self, Json, Member, Node, Pos, error_at};
use crate::error::{Error, Result};

mod reader;
pub(super) use reader::Reader;

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Located<T> {
    /// The value as written.
    pub value: T,
    /// Where it starts in the file.
    pub pos: Pos,
}

/// A parsed `devcontainer.json`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DevContainerConfig {
    /// The definition file (as given to [`DevContainerConfig::parse`]).
    pub file: PathBuf,
    /// `name`.
    pub name: Option<Located<String>>,
    /// `image`.
    pub image: Option<Located<String>>,
    /// `build` (or the legacy top-level `dockerFile` / `context`).
    pub build: Option<BuildConfig>,
    /// `containerEnv`, in file order.
    pub container_env: Vec<(String, Located<String>)>,
    /// `remoteEnv`, in file order; `None` is a `null` (unset the variable).
    pub remote_env: Vec<(String, Option<Located<String>>)>,
    /// `containerUser`.
    pub container_user: Option<Located<String>>,
    /// `remoteUser`.
    pub remote_user: Option<Located<String>>,
    /// `workspaceFolder`.
    pub workspace_folder: Option<Located<String>>,
    /// `workspaceMount` (an empty string means: no workspace mount).
    pub workspace_mount: Option<Located<String>>,
    /// `mounts`.
    pub mounts: Vec<Located<MountEntry>>,
    /// The lifecycle commands that are set, in the order they run.
    pub lifecycle: Vec<(Hook, Located<LifecycleCommand>)>,
    /// `capAdd`.
    pub cap_add: Vec<Located<String>>,
    /// `securityOpt`.
    pub security_opt: Vec<Located<String>>,
    /// `init`.
    pub init: Option<bool>,
    /// `privileged`.
    pub privileged: Option<Located<bool>>,
    /// `forwardPorts`.
    pub forward_ports: Vec<Located<ForwardPort>>,
    /// `appPort` (legacy), as a list.
    pub app_port: Vec<Located<AppPort>>,
    /// `hostRequirements`.
    pub host_requirements: HostRequirements,
    /// `runArgs`, one element per argument.
    pub run_args: Vec<Located<String>>,
    /// `features`, in file order.
    pub features: Vec<FeatureRef>,
    /// `overrideCommand`.
    pub override_command: Option<Located<bool>>,
    /// `shutdownAction`.
    pub shutdown_action: Option<Located<String>>,
    /// Keys that were not understood, repeated keys, and keys read but not acted on.
    pub warnings: Vec<String>,
}

/// How the image is built from a Dockerfile.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildConfig {
    /// `build.dockerfile` (or the legacy `dockerFile`), relative to the definition's folder.
    pub dockerfile: Located<String>,
    /// `build.context` (or the legacy `context`), relative to the definition's folder.
    pub context: Option<Located<String>>,
    /// `build.args`.
    pub args: Vec<(String, Located<String>)>,
    /// `build.target`.
    pub target: Option<Located<String>>,
}

/// One element of `mounts`.
#[derive(Debug, Clone, PartialEq)]
pub enum MountEntry {
    /// The Docker `--mount` syntax: `type=bind,source=…,target=…`.
    Text(String),
    /// `{"type": …, "source": …, "target": …}`.
    Object {
        /// `type`.
        kind: Option<String>,
        /// `source`.
        source: Option<String>,
        /// `target`.
        target: Option<String>,
        /// `readonly` / `readOnly`, if given.
        read_only: Option<bool>,
    },
}

/// The lifecycle hooks, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Hook {
    /// `onCreateCommand`: once, when the container is created.
    OnCreate,
    /// `updateContentCommand`: once, after `onCreateCommand`.
    UpdateContent,
    /// `postCreateCommand`: once, after `updateContentCommand`.
    PostCreate,
    /// `postStartCommand`: every time the container starts.
    PostStart,
    /// `postAttachCommand`: every time a tool attaches (headjack: at spawn, last).
    PostAttach,
}

impl Hook {
    /// All hooks, in the order they run.
    pub const ALL: [Hook; 5] = [
        Hook::OnCreate,
        Hook::UpdateContent,
        Hook::PostCreate,
        Hook::PostStart,
        Hook::PostAttach,
    ];

    /// The key in `devcontainer.json`, e.g. `postCreateCommand`.
    pub fn key(self) -> &'static str {
        match self {
            Hook::OnCreate => "onCreateCommand",
            Hook::UpdateContent => "updateContentCommand",
            Hook::PostCreate => "postCreateCommand",
            Hook::PostStart => "postStartCommand",
            Hook::PostAttach => "postAttachCommand",
        }
    }

    /// Whether the hook runs again on every start of the container (not only after creation).
    pub fn runs_on_every_start(self) -> bool {
        matches!(self, Hook::PostStart)
    }

    pub(super) fn from_key(key: &str) -> Option<Hook> {
        Hook::ALL.into_iter().find(|h| h.key() == key)
    }
}

/// A lifecycle command as written.
#[derive(Debug, Clone, PartialEq)]
pub enum LifecycleCommand {
    /// A string or an array: one command.
    Single(SingleCommand),
    /// An object: named commands that run in parallel, in file order.
    Parallel(Vec<(String, SingleCommand)>),
}

/// One command of a lifecycle hook.
#[derive(Debug, Clone, PartialEq)]
pub enum SingleCommand {
    /// A string: run by `/bin/sh -c`.
    Shell(String),
    /// An array: run as is (no shell).
    Exec(Vec<String>),
}

impl SingleCommand {
    /// The argv to execute.
    pub fn argv(&self) -> Vec<String> {
        match self {
            SingleCommand::Shell(s) => vec!["/bin/sh".into(), "-c".into(), s.clone()],
            SingleCommand::Exec(argv) => argv.clone(),
        }
    }
}

/// One element of `forwardPorts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardPort {
    /// A port of the container.
    Port(u16),
    /// `"host:port"`: a port of another host (a Docker Compose service), or of `localhost`.
    HostPort(String, u16),
}

/// One element of the legacy `appPort`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppPort {
    /// A number: published on the same host port.
    Port(u16),
    /// A string in `docker run -p` syntax.
    Text(String),
}

/// `hostRequirements`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostRequirements {
    /// `cpus`: a whole number of CPUs.
    pub cpus: Option<Located<u32>>,
    /// `memory`, e.g. `"4gb"`.
    pub memory: Option<Located<String>>,
    /// `storage`, e.g. `"32gb"`.
    pub storage: Option<Located<String>>,
}

/// One entry of `features`: its id and the options given for it.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureRef {
    /// The feature id: `./local-folder`, or a registry reference.
    pub id: Located<String>,
    /// Option values, rendered as strings (booleans `true`/`false`, numbers as written).
    pub options: Vec<(String, String)>,
}

/// Keys ignored without a warning: `$schema`; `customizations` and the VS Code keys that
/// preceded it (`extensions`, `settings`), which are tool-specific by the specification; and
/// `waitFor`, which names the hook an editor waits for before connecting — a spawn always
/// waits for every hook, which satisfies any `waitFor`.
pub const IGNORED_KEYS: [&str; 5] = [
    "$schema",
    "customizations",
    "extensions",
    "settings",
    "waitFor",
];

/// Keys recognised but not supported, with why (each becomes a warning).
const UNSUPPORTED: [(&str, &str); 10] = [
    (
        "initializeCommand",
        "it runs on the host, and headjack never runs a definition's commands on the host",
    ),
    (
        "dockerComposeFile",
        "Docker Compose definitions are not supported",
    ),
    ("service", "Docker Compose definitions are not supported"),
    (
        "runServices",
        "Docker Compose definitions are not supported",
    ),
    (
        "overrideFeatureInstallOrder",
        "local features install in the order they are listed",
    ),
    (
        "userEnvProbe",
        "headjack does not probe a login shell's environment; the image's env, containerEnv and remoteEnv apply",
    ),
    (
        "updateRemoteUserUID",
        "headjack does not change the remote user's UID to match the host's",
    ),
    ("portsAttributes", "port attributes are editor UI settings"),
    (
        "otherPortsAttributes",
        "port attributes are editor UI settings",
    ),
    ("secrets", "recommended secrets are an editor prompt"),
];

impl DevContainerConfig {
    /// Reads and parses the definition at `file`.
    ///
    /// # Errors
    ///
    /// [`crate::error::ErrorKind::InvalidBase`] when the file does not exist or is not a valid
    /// definition (with file, line and column); [`crate::error::ErrorKind::Io`] when it cannot be
    /// read.
    pub fn read(file: &Path) -> Result<DevContainerConfig> {
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::new(
                    crate::error::ErrorKind::InvalidBase,
                    format!(
                        "the dev container definition {} does not exist",
                        file.display()
                    ),
                ));
            }
            Err(e) => {
                return Err(Error::io(
                    format!("reading the dev container definition {}", file.display()),
                    e,
                ));
            }
        };
        DevContainerConfig::parse(&text, file)
    }

    /// Parses the text of a `devcontainer.json`; `file` names it in errors and warnings and
    /// is where relative paths start from when planning.
    ///
    /// # Errors
    ///
    /// [`crate::error::ErrorKind::InvalidBase`], naming file, line and column, for invalid JSONC, a
    /// top level that is not an object, and a key whose value has the wrong type.
    pub fn parse(text: &str, file: &Path) -> Result<DevContainerConfig> {
        let mut warnings = Vec::new();
        let root = jsonc::parse(text, file, &mut warnings)?;
        let Json::Object(members) = root.value else {
            return Err(error_at(
                file,
                root.pos,
                format!(
                    "a dev container definition is a JSON object, found {}",
                    root.value.kind_name()
                ),
            ));
        };
        let mut config = DevContainerConfig {
            file: file.to_path_buf(),
            warnings,
            ..Default::default()
        };
        let r = Reader { file };
        let mut legacy_dockerfile: Option<Located<String>> = None;
        let mut legacy_context: Option<Located<String>> = None;
        for Member { key, key_pos, node } in &members {
            let key = key.as_str();
            match key {
                "name" => config.name = r.opt_string(node, key)?,
                "image" => config.image = r.opt_string(node, key)?,
                "build" => {
                    if let Some(build) = r.build(node, &mut config.warnings)? {
                        config.build = Some(build);
                    }
                }
                "dockerFile" | "dockerfile" => legacy_dockerfile = r.opt_string(node, key)?,
                "context" => legacy_context = r.opt_string(node, key)?,
                "containerEnv" => {
                    config.container_env = r
                        .map(node, key, false)?
                        .into_iter()
                        .filter_map(|(k, v)| v.map(|v| (k, v)))
                        .collect()
                }
                "remoteEnv" => config.remote_env = r.map(node, key, true)?,
                "containerUser" => config.container_user = r.opt_string(node, key)?,
                "remoteUser" => config.remote_user = r.opt_string(node, key)?,
                "workspaceFolder" => config.workspace_folder = r.opt_string(node, key)?,
                "workspaceMount" => config.workspace_mount = r.opt_string(node, key)?,
                "mounts" => config.mounts = r.mounts(node, &mut config.warnings)?,
                "capAdd" => config.cap_add = r.strings(node, key)?,
                "securityOpt" => config.security_opt = r.strings(node, key)?,
                "init" => config.init = r.opt_bool(node, key)?.map(|b| b.value),
                "privileged" => config.privileged = r.opt_bool(node, key)?,
                "forwardPorts" => config.forward_ports = r.forward_ports(node)?,
                "appPort" => config.app_port = r.app_port(node)?,
                "hostRequirements" => {
                    config.host_requirements = r.host_requirements(node, &mut config.warnings)?
                }
                "runArgs" => config.run_args = r.strings(node, key)?,
                "features" => config.features = r.features(node)?,
                "overrideCommand" => config.override_command = r.opt_bool(node, key)?,
                "shutdownAction" => config.shutdown_action = r.opt_string(node, key)?,
                _ if IGNORED_KEYS.contains(&key) => {}
                _ => {
                    if let Some(hook) = Hook::from_key(key) {
                        if let Some(command) = r.lifecycle(node, key)? {
                            config.lifecycle.push((hook, command));
                        }
                    } else if let Some((_, why)) = UNSUPPORTED.iter().find(|(k, _)| *k == key) {
                        config.warnings.push(
                            r.note(*key_pos, format!("unsupported key {key:?}: {why}; ignored")),
                        );
                    } else {
                        config.warnings.push(r.note(
                            *key_pos,
                            format!("unsupported key {key:?}: not part of what headjack understands; ignored"),
                        ));
                    }
                }
            }
        }
        config.lifecycle.sort_by_key(|(hook, _)| *hook);

        if let Some(dockerfile) = legacy_dockerfile {
            if config.build.is_some() {
                config.warnings.push(r.note(
                    dockerfile.pos,
                    "the legacy \"dockerFile\" is ignored because \"build.dockerfile\" is set",
                ));
            } else {
                config.build = Some(BuildConfig {
                    dockerfile,
                    context: legacy_context.take(),
                    args: Vec::new(),
                    target: None,
                });
            }
        }
        if let Some(context) = legacy_context {
            config.warnings.push(r.note(
                context.pos,
                "the legacy \"context\" is ignored: it belongs with the legacy \"dockerFile\" (use \"build.context\")",
            ));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> DevContainerConfig {
        DevContainerConfig::parse(text, Path::new("/p/.devcontainer/devcontainer.json"))
            .unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn parse_err(text: &str) -> String {
        DevContainerConfig::parse(text, Path::new("/p/.devcontainer/devcontainer.json"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn every_supported_key_is_read() {
        let c = parse(
            r#"{
  "$schema": "https://example.invalid/schema.json",
  "name": "all", "image": "debian:bookworm-slim",
  "containerEnv": {"A": "1", "N": 5, "B": true},
  "remoteEnv": {"R": "x", "U": null},
  "containerUser": "root", "remoteUser": "dev",
  "workspaceFolder": "/w", "workspaceMount": "",
  "mounts": ["type=tmpfs,target=/t", {"type": "volume", "source": "v", "target": "/v", "readonly": true}],
  "postStartCommand": ["echo", "hi"],
  "onCreateCommand": "make",
  "postCreateCommand": {"a": "x", "b": ["y"], "skip": null, "empty": ""},
  "updateContentCommand": "",
  "postAttachCommand": null,
  "capAdd": ["SYS_PTRACE"], "securityOpt": ["seccomp=unconfined"],
  "init": true, "privileged": false,
  "forwardPorts": [3000, "db:5432", "localhost:8080", "9000"],
  "appPort": [8000, "127.0.0.1:9001:9000"],
  "hostRequirements": {"cpus": 2, "memory": "4gb", "storage": "32gb"},
  "runArgs": ["--cap-add=NET_ADMIN"],
  "features": {"./local": {"flag": true, "n": 3, "s": "v"}, "ghcr.io/x/y:1": "1.2"},
  "overrideCommand": true, "shutdownAction": "none",
  "customizations": {"vscode": {}},
}"#,
        );
        assert_eq!(c.name.unwrap().value, "all");
        assert_eq!(c.image.unwrap().value, "debian:bookworm-slim");
        let env: Vec<_> = c
            .container_env
            .iter()
            .map(|(k, v)| (k.as_str(), v.value.as_str()))
            .collect();
        assert_eq!(env, [("A", "1"), ("N", "5"), ("B", "true")]);
        assert_eq!(c.remote_env[0].1.as_ref().unwrap().value, "x");
        assert!(c.remote_env[1].1.is_none());
        assert_eq!(c.container_user.unwrap().value, "root");
        assert_eq!(c.remote_user.unwrap().value, "dev");
        assert_eq!(c.workspace_folder.unwrap().value, "/w");
        assert_eq!(c.workspace_mount.unwrap().value, "");
        assert_eq!(
            c.mounts[0].value,
            MountEntry::Text("type=tmpfs,target=/t".into())
        );
        assert_eq!(
            c.mounts[1].value,
            MountEntry::Object {
                kind: Some("volume".into()),
                source: Some("v".into()),
                target: Some("/v".into()),
                read_only: Some(true)
            }
        );
        let hooks: Vec<_> = c.lifecycle.iter().map(|(h, _)| *h).collect();
        assert_eq!(hooks, [Hook::OnCreate, Hook::PostCreate, Hook::PostStart]);
        assert_eq!(
            c.lifecycle[0].1.value,
            LifecycleCommand::Single(SingleCommand::Shell("make".into()))
        );
        assert_eq!(
            c.lifecycle[1].1.value,
            LifecycleCommand::Parallel(vec![
                ("a".into(), SingleCommand::Shell("x".into())),
                ("b".into(), SingleCommand::Exec(vec!["y".into()])),
            ])
        );
        assert_eq!(
            c.lifecycle[2].1.value,
            LifecycleCommand::Single(SingleCommand::Exec(vec!["echo".into(), "hi".into()]))
        );
        assert_eq!(c.cap_add[0].value, "SYS_PTRACE");
        assert_eq!(c.security_opt[0].value, "seccomp=unconfined");
        assert_eq!(c.init, Some(true));
        assert!(!c.privileged.unwrap().value);
        let ports: Vec<_> = c.forward_ports.iter().map(|p| p.value.clone()).collect();
        assert_eq!(
            ports,
            [
                ForwardPort::Port(3000),
                ForwardPort::HostPort("db".into(), 5432),
                ForwardPort::HostPort("localhost".into(), 8080),
                ForwardPort::Port(9000),
            ]
        );
        assert_eq!(c.app_port[0].value, AppPort::Port(8000));
        assert_eq!(
            c.app_port[1].value,
            AppPort::Text("127.0.0.1:9001:9000".into())
        );
        assert_eq!(c.host_requirements.cpus.unwrap().value, 2);
        assert_eq!(c.host_requirements.memory.unwrap().value, "4gb");
        assert_eq!(c.host_requirements.storage.unwrap().value, "32gb");
        assert_eq!(c.run_args[0].value, "--cap-add=NET_ADMIN");
        assert_eq!(c.features[0].id.value, "./local");
        assert_eq!(
            c.features[0].options,
            [
                ("flag".to_string(), "true".to_string()),
                ("n".into(), "3".into()),
                ("s".into(), "v".into())
            ]
        );
        assert_eq!(
            c.features[1].options,
            [("version".to_string(), "1.2".to_string())]
        );
        assert!(c.override_command.unwrap().value);
        assert_eq!(c.shutdown_action.unwrap().value, "none");
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn build_and_legacy_forms() {
        let c = parse(
            r#"{"build": {"dockerfile": "Dockerfile", "context": "..", "args": {"V": "1"}, "target": "dev"}}"#,
        );
        let b = c.build.unwrap();
        assert_eq!(
            (
                b.dockerfile.value.as_str(),
                b.context.unwrap().value.as_str()
            ),
            ("Dockerfile", "..")
        );
        assert_eq!(b.args[0].0, "V");
        assert_eq!(b.args[0].1.value, "1");
        assert_eq!(b.target.unwrap().value, "dev");

        for legacy in ["dockerFile", "dockerfile"] {
            let c = parse(&format!(
                r#"{{"{legacy}": "../Dockerfile", "context": ".."}}"#
            ));
            let b = c.build.unwrap();
            assert_eq!(b.dockerfile.value, "../Dockerfile");
            assert_eq!(b.context.unwrap().value, "..");
            assert!(c.warnings.is_empty());
        }

        let c = parse(r#"{"build": {"dockerfile": "A"}, "dockerFile": "B", "context": "x"}"#);
        assert_eq!(c.build.unwrap().dockerfile.value, "A");
        assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
        assert!(c.warnings[0].contains("legacy \"dockerFile\" is ignored"));

        let c = parse(r#"{"image": "x", "context": ".."}"#);
        assert!(c.warnings[0].contains("legacy \"context\" is ignored"));

        let c =
            parse(r#"{"build": {"dockerfile": "D", "cacheFrom": "x", "options": [], "foo": 1}}"#);
        assert_eq!(c.warnings.len(), 3, "{:?}", c.warnings);
        assert!(c.warnings[2].contains("\"build.foo\""));
    }

    #[test]
    fn unsupported_keys_are_warnings_with_positions() {
        let c = parse(
            "{\n \"image\": \"x\",\n \"dockerComposeFile\": \"c.yml\",\n \"initializeCommand\": \"ls\",\n \"whatever\": 1,\n \"customizations\": {},\n \"hostRequirements\": {\"gpu\": true}\n}",
        );
        assert_eq!(c.warnings.len(), 4, "{:?}", c.warnings);
        assert!(c.warnings[0].starts_with(
            "/p/.devcontainer/devcontainer.json:3:2: unsupported key \"dockerComposeFile\""
        ));
        assert!(
            c.warnings[1]
                .contains(":4:2: unsupported key \"initializeCommand\": it runs on the host")
        );
        assert!(c.warnings[2].contains(":5:2: unsupported key \"whatever\""));
        assert!(c.warnings[3].contains("\"hostRequirements.gpu\""));
    }

    #[test]
    fn wrong_types_are_errors_with_positions() {
        let cases = [
            (
                "[1]",
                ":1:1: a dev container definition is a JSON object, found an array",
            ),
            (
                "{\n \"image\": 5}",
                ":2:11: image: expected a string, found a number",
            ),
            (
                "{\"capAdd\": \"X\"}",
                ":1:12: capAdd: expected an array, found a string",
            ),
            ("{\"capAdd\": [1]}", ":1:13: capAdd[0]: expected a string"),
            (
                "{\"containerEnv\": {\"A\": null}}",
                "containerEnv.A: expected a string, found null",
            ),
            (
                "{\"remoteEnv\": {\"A\": []}}",
                "remoteEnv.A: expected a string or null",
            ),
            ("{\"init\": \"yes\"}", "init: expected true or false"),
            ("{\"mounts\": [5]}", "mounts[0]: expected a mount string"),
            (
                "{\"postCreateCommand\": 5}",
                "postCreateCommand: expected a string, an array of strings, or an object",
            ),
            (
                "{\"postCreateCommand\": {\"a\": 5}}",
                "postCreateCommand.a: expected a string or an array of strings",
            ),
            (
                "{\"postCreateCommand\": [\"a\", 5]}",
                "postCreateCommand[1]: expected a string",
            ),
            (
                "{\"forwardPorts\": [70000]}",
                "forwardPorts[0]: 70000 is not a port number",
            ),
            (
                "{\"forwardPorts\": [0]}",
                "forwardPorts[0]: 0 is not a port number",
            ),
            (
                "{\"forwardPorts\": [\"db:\"]}",
                "forwardPorts[0]: \"db:\" is not a port",
            ),
            (
                "{\"forwardPorts\": [true]}",
                "forwardPorts[0]: expected a port number",
            ),
            ("{\"appPort\": 1.5}", "appPort: 1.5 is not a port number"),
            (
                "{\"hostRequirements\": {\"cpus\": 1.5}}",
                "hostRequirements.cpus: 1.5 is not a whole number",
            ),
            (
                "{\"hostRequirements\": {\"cpus\": 0}}",
                "hostRequirements.cpus: 0 is not a whole number",
            ),
            (
                "{\"hostRequirements\": {\"memory\": 4}}",
                "hostRequirements.memory: expected a string",
            ),
            (
                "{\"build\": {\"context\": \"..\"}}",
                ":1:11: build: \"dockerfile\" is missing",
            ),
            ("{\"build\": \"Dockerfile\"}", "build: expected an object"),
            (
                "{\"features\": {\"./f\": [1]}}",
                "features../f: expected an object of options",
            ),
        ];
        for (text, want) in cases {
            let got = parse_err(text);
            assert!(got.contains(want), "{text}: {got:?} lacks {want:?}");
            assert!(
                got.starts_with("/p/.devcontainer/devcontainer.json:"),
                "{got}"
            );
        }
    }

    #[test]
    fn app_port_single_forms() {
        assert_eq!(
            parse(r#"{"appPort": 3000}"#).app_port[0].value,
            AppPort::Port(3000)
        );
        assert_eq!(
            parse(r#"{"appPort": "3000:3001"}"#).app_port[0].value,
            AppPort::Text("3000:3001".into())
        );
    }

    #[test]
    fn read_reports_a_missing_file() {
        let e = DevContainerConfig::read(Path::new("/nonexistent/devcontainer.json")).unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::InvalidBase);
        assert!(
            e.to_string()
                .contains("/nonexistent/devcontainer.json does not exist")
        );
    }
}
