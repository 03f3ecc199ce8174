//! The `spawn` tool: a spec within what the operator allowed, a place among
//! `--max-instances`, and the instance's lifetime.

use super::*;

impl Session {
    /// Builds the spec for `a`, refusing what the operator did not allow.
    pub(super) fn spec(&self, a: &SpawnArgs) -> Result<(Spec, String, Option<f64>), ToolError> {
        let mut spec = Spec::new();
        for (k, v) in &self.config.labels {
            spec = spec.label(k, v);
        }
        let base = a
            .base
            .clone()
            .filter(|b| !b.trim().is_empty())
            .or_else(|| self.config.base.clone());
        if let Some(b) = &base {
            spec = spec.base(b.as_str());
        }
        if let Some(w) = &a.workspace {
            let dir = self.allowed_workspace(w)?;
            spec = spec
                .workspace(dir)
                .workspace_read_only(a.workspace_read_only);
        } else if a.workspace_read_only {
            return Err(ToolError::invalid(
                "workspace_read_only needs a workspace; give `workspace` too, or drop it",
            ));
        }
        for (k, v) in a.env.iter().flatten() {
            spec = spec.env(k, v);
        }
        if let Some(m) = &a.memory {
            let bytes = match m {
                Size::Bytes(0) => return Err(ToolError::invalid("memory must be more than 0")),
                Size::Bytes(n) => *n,
                Size::Text(t) => {
                    parse_size(t).map_err(|e| ToolError::invalid(format!("memory: {e}")))?
                }
            };
            spec = spec.memory(bytes);
        }
        if let Some(c) = a.cpus {
            if !(c.is_finite() && c > 0.0) {
                return Err(ToolError::invalid(format!(
                    "cpus {c} is not a positive number of cores (e.g. 0.5, 2)"
                )));
            }
            spec = spec.cpus(c);
        }
        if let Some(p) = a.pids {
            if p <= 0 {
                return Err(ToolError::invalid(format!(
                    "pids {p}: give a positive process limit (e.g. 512)"
                )));
            }
            spec = spec.pids(p);
        }
        if let Some(n) = &a.network {
            let n = n.trim();
            if n == "host" || n.starts_with("container:") {
                return Err(ToolError::invalid(format!(
                    "network {n:?} is refused: it would share another network namespace (the server's machine or another container); use \"bridge\" or \"none\""
                )));
            }
            spec = spec.network(Network::parse(n));
        }
        let lifetime = match a.lifetime_seconds {
            Some(s) if !(s.is_finite() && s > 0.0 && s <= MAX_LIFETIME_SECS) => {
                return Err(ToolError::invalid(format!(
                    "lifetime_seconds {s} must be more than 0 and at most {MAX_LIFETIME_SECS} (a week)"
                )));
            }
            Some(s) => {
                // The label lets `sweep` remove it even if this server hangs.
                spec = spec.expires_after(Duration::from_secs_f64(s));
                Some(s)
            }
            None => None,
        };
        if a.hardened {
            spec = spec.hardened(true);
        }
        if let Some(r) = &self.config.runtime {
            spec = spec.runtime(r);
        }
        let shown = base.unwrap_or_else(|| "(default base)".to_string());
        Ok((spec, shown, lifetime))
    }

    /// `w` resolved, if it lies inside a directory the operator allowed.
    pub(super) fn allowed_workspace(&self, w: &str) -> Result<PathBuf, ToolError> {
        if self.config.allowed_workspaces.is_empty() {
            return Err(ToolError::invalid(
                "this server mounts no workspaces (it was started without --allow-workspace); spawn without `workspace` and copy files in with write_file",
            ));
        }
        let dir = PathBuf::from(w).canonicalize().map_err(|e| {
            ToolError::new(
                "not_found",
                format!("workspace {w:?} cannot be used on the server's machine: {e}"),
            )
        })?;
        if !dir.is_dir() {
            return Err(ToolError::invalid(format!(
                "workspace {w:?} is not a directory"
            )));
        }
        if !self
            .config
            .allowed_workspaces
            .iter()
            .any(|root| dir.starts_with(root))
        {
            let roots: Vec<String> = self
                .config
                .allowed_workspaces
                .iter()
                .map(|r| r.display().to_string())
                .collect();
            return Err(ToolError::invalid(format!(
                "workspace {w:?} is outside the directories this server may mount: {}",
                roots.join(", ")
            )));
        }
        Ok(dir)
    }

    pub(super) async fn spawn(
        self: &Arc<Self>,
        a: SpawnArgs,
        context: &RequestContext<RoleServer>,
    ) -> Result<Reply, ToolError> {
        let (mut spec, base, lifetime) = self.spec(&a)?;
        let slot = Slot::reserve(self)?;
        // Pulls and builds can take minutes: tell a client that asked for progress.
        let forwarder = context.meta.get_progress_token().map(|token| {
            let (tx, mut rx) = mpsc::unbounded_channel::<String>();
            spec = spec.clone().progress(move |p: &Progress| {
                if let Some(line) = describe(p) {
                    let _ = tx.send(line);
                }
            });
            let peer = context.peer.clone();
            tokio::spawn(async move {
                let mut n = 0.0;
                while let Some(message) = rx.recv().await {
                    n += 1.0;
                    let note =
                        ProgressNotificationParam::new(token.clone(), n).with_message(message);
                    if peer.notify_progress(note).await.is_err() {
                        break;
                    }
                }
            })
        });
        let spawned = self.client.spawn(spec).await;
        if let Some(f) = forwarder {
            f.abort();
        }
        let instance = Arc::new(spawned?);
        let id = instance.id().to_string();
        let reply = Reply {
            text: format!(
                "spawned instance {id} from {base} (image {}). Pass \"{id}\" as `instance` to exec, start_process, read_file, write_file, list_files and remove.",
                instance.image()
            ),
            data: json!({
                "instance": id,
                "name": instance.name(),
                "base": base,
                "image": instance.image(),
                "workspace": a.workspace.is_some().then_some("/workspace"),
                "lifetime_seconds": lifetime,
            }),
        };
        slot.admit(Live {
            instance,
            base,
            workspace: a.workspace.is_some(),
            expires: lifetime.map(|s| (Instant::now(), s)),
            reaper: None,
        })
        .await?;
        Ok(reply)
    }

    /// Removes `id` when its lifetime is up.
    pub(super) fn reap_after(
        self: &Arc<Self>,
        id: String,
        lifetime: f64,
    ) -> tokio::task::AbortHandle {
        let weak: Weak<Session> = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs_f64(lifetime)).await;
            let Some(session) = weak.upgrade() else {
                return;
            };
            let live = {
                let mut st = session.state();
                let live = st.live.remove(&id);
                if live.is_some() {
                    st.gone.insert(
                        id.clone(),
                        format!("its lifetime of {lifetime} seconds passed and it was removed"),
                    );
                }
                live
            };
            if let Some(l) = live
                && let Err(e) = l.instance.remove().await
            {
                tracing::warn!(instance = %id, error = %e, "removing an expired instance failed");
            }
        })
        .abort_handle()
    }
}

/// A place among --max-instances, held while a spawn is under way.
pub(super) struct Slot {
    session: Arc<Session>,
    taken: bool,
}

impl Slot {
    pub(super) fn reserve(session: &Arc<Session>) -> Result<Slot, ToolError> {
        let mut st = session.state();
        if st.closing {
            return Err(ToolError::new(
                "shutting_down",
                "the headjack MCP server is shutting down",
            ));
        }
        let max = session.config.max_instances;
        if st.live.len() + st.spawning >= max {
            return Err(ToolError::new(
                "conflict",
                format!(
                    "this session already has {max} instance(s), its limit (headjack mcp --max-instances); remove one first"
                ),
            ));
        }
        st.spawning += 1;
        Ok(Slot {
            session: session.clone(),
            taken: true,
        })
    }

    /// Records the spawned instance; during shutdown it is removed at once instead.
    pub(super) async fn admit(mut self, mut live: Live) -> Result<(), ToolError> {
        let id = live.instance.id().to_string();
        let closing = {
            let mut st = self.session.state();
            st.spawning -= 1;
            self.taken = false;
            if !st.closing {
                if let Some((_, s)) = live.expires {
                    live.reaper = Some(self.session.reap_after(id.clone(), s));
                }
                st.live.insert(id.clone(), live);
                return Ok(());
            }
            live
        };
        let _ = closing.instance.remove().await;
        Err(ToolError::new(
            "shutting_down",
            "the headjack MCP server is shutting down",
        ))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.taken {
            self.session.state().spawning -= 1;
        }
    }
}
