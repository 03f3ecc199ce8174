//! Reading a parsed JSONC tree into [`DevContainerConfig`](super::DevContainerConfig): each key
//! with its type checked and its position kept for messages and warnings.

use super::*;

/// Typed reads of tree nodes, with errors that point into the file.
pub(in crate::devcontainer) struct Reader<'a> {
    pub(in crate::devcontainer) file: &'a Path,
}

impl Reader<'_> {
    pub(in crate::devcontainer) fn err(
        &self,
        pos: Pos,
        key: &str,
        what: impl std::fmt::Display,
    ) -> Error {
        error_at(self.file, pos, format!("{key}: {what}"))
    }

    pub(in crate::devcontainer) fn note(&self, pos: Pos, what: impl std::fmt::Display) -> String {
        format!("{}:{pos}: {what}", self.file.display())
    }

    pub(in crate::devcontainer) fn expected(&self, node: &Node, key: &str, what: &str) -> Error {
        self.err(
            node.pos,
            key,
            format!("expected {what}, found {}", node.value.kind_name()),
        )
    }

    pub(in crate::devcontainer) fn string(
        &self,
        node: &Node,
        key: &str,
    ) -> Result<Located<String>> {
        match &node.value {
            Json::String(s) => Ok(Located {
                value: s.clone(),
                pos: node.pos,
            }),
            _ => Err(self.expected(node, key, "a string")),
        }
    }

    /// A string, or `null` meaning "not set".
    pub(in crate::devcontainer) fn opt_string(
        &self,
        node: &Node,
        key: &str,
    ) -> Result<Option<Located<String>>> {
        match node.value {
            Json::Null => Ok(None),
            _ => self.string(node, key).map(Some),
        }
    }

    pub(in crate::devcontainer) fn opt_bool(
        &self,
        node: &Node,
        key: &str,
    ) -> Result<Option<Located<bool>>> {
        match node.value {
            Json::Null => Ok(None),
            Json::Bool(b) => Ok(Some(Located {
                value: b,
                pos: node.pos,
            })),
            _ => Err(self.expected(node, key, "true or false")),
        }
    }

    pub(in crate::devcontainer) fn array<'n>(
        &self,
        node: &'n Node,
        key: &str,
    ) -> Result<&'n [Node]> {
        match &node.value {
            Json::Array(items) => Ok(items),
            Json::Null => Ok(&[]),
            _ => Err(self.expected(node, key, "an array")),
        }
    }

    pub(in crate::devcontainer) fn object<'n>(
        &self,
        node: &'n Node,
        key: &str,
    ) -> Result<&'n [Member]> {
        match &node.value {
            Json::Object(members) => Ok(members),
            Json::Null => Ok(&[]),
            _ => Err(self.expected(node, key, "an object")),
        }
    }

    pub(in crate::devcontainer) fn strings(
        &self,
        node: &Node,
        key: &str,
    ) -> Result<Vec<Located<String>>> {
        self.array(node, key)?
            .iter()
            .enumerate()
            .map(|(i, item)| self.string(item, &format!("{key}[{i}]")))
            .collect()
    }

    /// An object of strings (`null` values kept as `None` when `nulls` is allowed).
    pub(in crate::devcontainer) fn map(
        &self,
        node: &Node,
        key: &str,
        nulls: bool,
    ) -> Result<Vec<(String, Option<Located<String>>)>> {
        let mut out = Vec::new();
        for m in self.object(node, key)? {
            let what = format!("{key}.{}", m.key);
            let value = match (&m.node.value, nulls) {
                (Json::Null, true) => None,
                (Json::String(_), _) => Some(self.string(&m.node, &what)?),
                // Numbers and booleans are written unquoted often enough; they mean their text.
                (Json::Number(n), _) => Some(Located {
                    value: n.clone(),
                    pos: m.node.pos,
                }),
                (Json::Bool(b), _) => Some(Located {
                    value: b.to_string(),
                    pos: m.node.pos,
                }),
                _ if nulls => return Err(self.expected(&m.node, &what, "a string or null")),
                _ => return Err(self.expected(&m.node, &what, "a string")),
            };
            out.push((m.key.clone(), value));
        }
        Ok(out)
    }

    pub(in crate::devcontainer) fn build(
        &self,
        node: &Node,
        warnings: &mut Vec<String>,
    ) -> Result<Option<BuildConfig>> {
        if matches!(node.value, Json::Null) {
            return Ok(None);
        }
        let members = self.object(node, "build")?;
        let mut dockerfile = None;
        let mut context = None;
        let mut args = Vec::new();
        let mut target = None;
        for m in members {
            let key = format!("build.{}", m.key);
            match m.key.as_str() {
                "dockerfile" | "dockerFile" => dockerfile = self.opt_string(&m.node, &key)?,
                "context" => context = self.opt_string(&m.node, &key)?,
                "args" => {
                    args = self
                        .map(&m.node, &key, false)?
                        .into_iter()
                        .filter_map(|(k, v)| v.map(|v| (k, v)))
                        .collect()
                }
                "target" => target = self.opt_string(&m.node, &key)?,
                "cacheFrom" => warnings.push(self.note(
                    m.key_pos,
                    "unsupported key \"build.cacheFrom\": headjack builds with its own content-keyed cache; ignored",
                )),
                "options" => warnings.push(self.note(
                    m.key_pos,
                    "unsupported key \"build.options\": extra docker build flags are not passed; ignored",
                )),
                other => warnings.push(self.note(
                    m.key_pos,
                    format!("unsupported key \"build.{other}\"; ignored"),
                )),
            }
        }
        let Some(dockerfile) = dockerfile else {
            return Err(self.err(
                node.pos,
                "build",
                "\"dockerfile\" is missing: name the Dockerfile to build, relative to this file's folder",
            ));
        };
        Ok(Some(BuildConfig {
            dockerfile,
            context,
            args,
            target,
        }))
    }

    pub(in crate::devcontainer) fn mounts(
        &self,
        node: &Node,
        warnings: &mut Vec<String>,
    ) -> Result<Vec<Located<MountEntry>>> {
        let mut out = Vec::new();
        for (i, item) in self.array(node, "mounts")?.iter().enumerate() {
            let key = format!("mounts[{i}]");
            let entry = match &item.value {
                Json::String(s) => MountEntry::Text(s.clone()),
                Json::Object(members) => {
                    let (mut kind, mut source, mut target, mut read_only) =
                        (None, None, None, None);
                    for m in members {
                        let what = format!("{key}.{}", m.key);
                        match m.key.as_str() {
                            "type" => kind = self.opt_string(&m.node, &what)?.map(|s| s.value),
                            "source" => {
                                source = self.opt_string(&m.node, &what)?.map(|s| s.value)
                            }
                            "target" => {
                                target = self.opt_string(&m.node, &what)?.map(|s| s.value)
                            }
                            "readonly" | "readOnly" => {
                                read_only = self.opt_bool(&m.node, &what)?.map(|b| b.value)
                            }
                            other => warnings.push(self.note(
                                m.key_pos,
                                format!("unsupported key \"{key}.{other}\" (a mount object has type, source and target); ignored"),
                            )),
                        }
                    }
                    MountEntry::Object {
                        kind,
                        source,
                        target,
                        read_only,
                    }
                }
                _ => {
                    return Err(self.expected(
                        item,
                        &key,
                        "a mount string (\"type=bind,source=…,target=…\") or object",
                    ));
                }
            };
            out.push(Located {
                value: entry,
                pos: item.pos,
            });
        }
        Ok(out)
    }

    pub(in crate::devcontainer) fn single_command(
        &self,
        node: &Node,
        key: &str,
    ) -> Result<Option<SingleCommand>> {
        match &node.value {
            Json::Null => Ok(None),
            Json::String(s) if s.trim().is_empty() => Ok(None),
            Json::String(s) => Ok(Some(SingleCommand::Shell(s.clone()))),
            Json::Array(items) if items.is_empty() => Ok(None),
            Json::Array(_) => {
                let argv = self.strings(node, key)?;
                Ok(Some(SingleCommand::Exec(
                    argv.into_iter().map(|a| a.value).collect(),
                )))
            }
            _ => Err(self.expected(node, key, "a string or an array of strings")),
        }
    }

    pub(in crate::devcontainer) fn lifecycle(
        &self,
        node: &Node,
        key: &str,
    ) -> Result<Option<Located<LifecycleCommand>>> {
        let command = match &node.value {
            Json::Object(members) => {
                let mut entries = Vec::new();
                for m in members {
                    let what = format!("{key}.{}", m.key);
                    if let Some(command) = self.single_command(&m.node, &what)? {
                        entries.push((m.key.clone(), command));
                    }
                }
                (!entries.is_empty()).then_some(LifecycleCommand::Parallel(entries))
            }
            Json::String(_) | Json::Array(_) | Json::Null => self
                .single_command(node, key)?
                .map(LifecycleCommand::Single),
            _ => {
                return Err(self.expected(
                    node,
                    key,
                    "a string, an array of strings, or an object of named commands",
                ));
            }
        };
        Ok(command.map(|value| Located {
            value,
            pos: node.pos,
        }))
    }

    pub(in crate::devcontainer) fn port_number(&self, node: &Node, key: &str) -> Result<u16> {
        match &node.value {
            Json::Number(n) => match n.parse::<u16>() {
                Ok(p) if p > 0 => Ok(p),
                _ => Err(self.err(
                    node.pos,
                    key,
                    format!("{n} is not a port number (1 to 65535)"),
                )),
            },
            _ => Err(self.expected(node, key, "a port number")),
        }
    }

    pub(in crate::devcontainer) fn forward_ports(
        &self,
        node: &Node,
    ) -> Result<Vec<Located<ForwardPort>>> {
        let mut out = Vec::new();
        for (i, item) in self.array(node, "forwardPorts")?.iter().enumerate() {
            let key = format!("forwardPorts[{i}]");
            let port = match &item.value {
                Json::Number(_) => ForwardPort::Port(self.port_number(item, &key)?),
                Json::String(s) => {
                    let parsed = match s.rsplit_once(':') {
                        Some((host, port)) if !host.is_empty() => port
                            .parse::<u16>()
                            .ok()
                            .filter(|p| *p > 0)
                            .map(|p| ForwardPort::HostPort(host.to_string(), p)),
                        Some(_) => None,
                        None => s
                            .parse::<u16>()
                            .ok()
                            .filter(|p| *p > 0)
                            .map(ForwardPort::Port),
                    };
                    parsed.ok_or_else(|| {
                        self.err(
                            item.pos,
                            &key,
                            format!("{s:?} is not a port: use a number or \"host:port\""),
                        )
                    })?
                }
                _ => return Err(self.expected(item, &key, "a port number or \"host:port\"")),
            };
            out.push(Located {
                value: port,
                pos: item.pos,
            });
        }
        Ok(out)
    }

    pub(in crate::devcontainer) fn app_port(&self, node: &Node) -> Result<Vec<Located<AppPort>>> {
        let one = |item: &Node, key: &str| -> Result<Located<AppPort>> {
            let value = match &item.value {
                Json::Number(_) => AppPort::Port(self.port_number(item, key)?),
                Json::String(s) => AppPort::Text(s.clone()),
                _ => return Err(self.expected(item, key, "a port number or a string")),
            };
            Ok(Located {
                value,
                pos: item.pos,
            })
        };
        match &node.value {
            Json::Null => Ok(Vec::new()),
            Json::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| one(item, &format!("appPort[{i}]")))
                .collect(),
            _ => Ok(vec![one(node, "appPort")?]),
        }
    }

    pub(in crate::devcontainer) fn host_requirements(
        &self,
        node: &Node,
        warnings: &mut Vec<String>,
    ) -> Result<HostRequirements> {
        let mut out = HostRequirements::default();
        for m in self.object(node, "hostRequirements")? {
            let key = format!("hostRequirements.{}", m.key);
            match m.key.as_str() {
                "cpus" => match &m.node.value {
                    Json::Null => {}
                    Json::Number(n) => match n.parse::<u32>() {
                        Ok(c) if c > 0 => {
                            out.cpus = Some(Located {
                                value: c,
                                pos: m.node.pos,
                            })
                        }
                        _ => {
                            return Err(self.err(
                                m.node.pos,
                                &key,
                                format!("{n} is not a whole number of CPUs (1 or more)"),
                            ));
                        }
                    },
                    _ => return Err(self.expected(&m.node, &key, "a whole number")),
                },
                "memory" => out.memory = self.opt_string(&m.node, &key)?,
                "storage" => out.storage = self.opt_string(&m.node, &key)?,
                "gpu" => warnings.push(self.note(
                    m.key_pos,
                    "unsupported key \"hostRequirements.gpu\": GPUs are not supported; ignored",
                )),
                other => warnings.push(self.note(
                    m.key_pos,
                    format!("unsupported key \"hostRequirements.{other}\"; ignored"),
                )),
            }
        }
        Ok(out)
    }

    pub(in crate::devcontainer) fn features(&self, node: &Node) -> Result<Vec<FeatureRef>> {
        let mut out = Vec::new();
        for m in self.object(node, "features")? {
            let key = format!("features.{}", m.key);
            let options = match &m.node.value {
                // `"id": "1.2"` is the short form of `{"version": "1.2"}`.
                Json::String(v) => vec![("version".to_string(), v.clone())],
                Json::Bool(_) | Json::Null => Vec::new(),
                Json::Object(options) => {
                    let mut out = Vec::new();
                    for o in options {
                        let value = match &o.node.value {
                            Json::String(s) => s.clone(),
                            Json::Bool(b) => b.to_string(),
                            Json::Number(n) => n.clone(),
                            _ => {
                                return Err(self.expected(
                                    &o.node,
                                    &format!("{key}.{}", o.key),
                                    "a string, a boolean or a number",
                                ));
                            }
                        };
                        out.push((o.key.clone(), value));
                    }
                    out
                }
                _ => return Err(self.expected(&m.node, &key, "an object of options")),
            };
            out.push(FeatureRef {
                id: Located {
                    value: m.key.clone(),
                    pos: m.key_pos,
                },
                options,
            });
        }
        Ok(out)
    }
}
