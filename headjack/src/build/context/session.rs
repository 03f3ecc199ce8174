//! The context as BuildKit reads it over a session (fsutil's directory sync).

use super::*;

impl Context {
    /// The context as BuildKit reads it over a session, the way `docker build` sends a
    /// directory: `context` holds what the ignore rules select (the Dockerfile and the ignore
    /// file only when the rules keep them; parents of kept files always, as fsutil sends them)
    /// plus the `generated` files under [`Context::generated_dir`]; `dockerfile` holds the
    /// Dockerfile to build, as `Dockerfile`.
    pub(crate) fn sync_dirs(&self, dockerfile: Vec<u8>, generated: &[Generated]) -> SyncDirs {
        let mut context: Vec<SyncEntry> = Vec::with_capacity(self.entries.len());
        let mut dirs: std::collections::HashSet<&str> = std::collections::HashSet::new();
        for e in self.entries.iter().filter(|e| !e.only_forced) {
            let kind = match e.kind {
                EntryKind::Dir => {
                    dirs.insert(&e.rel_path);
                    SyncKind::Dir
                }
                EntryKind::Symlink => SyncKind::Symlink {
                    target: e.link_target.clone().unwrap_or_default(),
                },
                EntryKind::File => SyncKind::File {
                    size: e.size,
                    content: Content::Disk {
                        path: e.abs_path.clone(),
                        digest: e.digest.unwrap_or_default(),
                    },
                },
            };
            context.push(SyncEntry {
                path: e.rel_path.clone(),
                mode: e.mode,
                kind,
            });
        }
        // Parents the rules exclude but a kept path lies under (`dir` for `!dir/keep`).
        let mut missing: Vec<String> = Vec::new();
        for e in context.iter() {
            let mut parent = Path::new(&e.path).parent();
            while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
                let name = p.to_string_lossy();
                if !dirs.contains(name.as_ref()) && !missing.iter().any(|m| *m == name) {
                    missing.push(name.into_owned());
                }
                parent = p.parent();
            }
        }
        for dir in missing {
            let mode = fs::symlink_metadata(self.root.join(&dir))
                .map(|m| permission_bits(&m))
                .unwrap_or(0o755);
            context.push(SyncEntry {
                path: dir,
                mode,
                kind: SyncKind::Dir,
            });
        }
        if !generated.is_empty() {
            let root = self.generated_dir();
            let mut gen_dirs = vec![root.clone()];
            for g in generated {
                let mut parent = Path::new(&g.path).parent();
                while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
                    gen_dirs.push(format!("{root}/{}", p.display()));
                    parent = p.parent();
                }
                context.push(SyncEntry {
                    path: format!("{root}/{}", g.path),
                    mode: g.mode,
                    kind: SyncKind::File {
                        size: g.data.len() as u64,
                        content: Content::Memory(g.data.as_slice().into()),
                    },
                });
            }
            gen_dirs.sort();
            gen_dirs.dedup();
            context.extend(gen_dirs.into_iter().map(|path| SyncEntry {
                path,
                mode: 0o755,
                kind: SyncKind::Dir,
            }));
        }
        SyncDirs::sort(&mut context);
        let dockerfile = vec![SyncEntry {
            path: "Dockerfile".into(),
            mode: 0o644,
            kind: SyncKind::File {
                size: dockerfile.len() as u64,
                content: Content::Memory(dockerfile.into()),
            },
        }];
        // Builds of one directory share the engine's copy of it: later transfers send only
        // what changed.
        let shared_key = hex::encode(Sha256::digest(
            format!("headjack:{}", self.root.display()).as_bytes(),
        ));
        SyncDirs {
            dirs: [
                ("context".to_string(), context),
                ("dockerfile".to_string(), dockerfile),
            ]
            .into_iter()
            .collect(),
            shared_key,
            matcher: Arc::new(|patterns: &[String]| {
                let rules = IgnoreRules::parse(&patterns.join("\n")).ok()?;
                Some(Box::new(move |path: &str| rules.is_excluded(path))
                    as Box<dyn Fn(&str) -> bool + Send>)
            }),
        }
    }
}
