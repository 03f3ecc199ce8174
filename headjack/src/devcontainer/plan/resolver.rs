//! Variables and paths while planning: `${localEnv:X}`, `${localWorkspaceFolder}`, … and the
//! folder names and lists the plan is built from.

use super::*;

/// The last component of a path, for `/workspaces/<name>`.
pub(super) fn folder_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "workspace".to_string())
}

/// Substitutes variables in strings from one file, turning notes into warnings and failures
/// into errors that point at the string.
pub(super) struct Resolver<'a> {
    pub(super) vars: Vars<'a>,
    pub(super) warnings: Vec<String>,
}

impl Resolver<'_> {
    pub(super) fn text(
        &mut self,
        file: &Path,
        value: &Located<String>,
        field: Field,
        key: &str,
    ) -> Result<String> {
        self.raw(file, value.pos, &value.value, field, key)
    }

    pub(super) fn raw(
        &mut self,
        file: &Path,
        pos: Pos,
        text: &str,
        field: Field,
        key: &str,
    ) -> Result<String> {
        let mut notes = Vec::new();
        let out = self
            .vars
            .apply(text, field, &mut notes)
            .map_err(|e| error_at(file, pos, format!("{key}: {e}")))?;
        self.warnings.extend(
            notes
                .into_iter()
                .map(|n| format!("{}:{pos}: {key}: {n}", file.display())),
        );
        Ok(out)
    }

    pub(super) fn mount(
        &mut self,
        file: &Path,
        entry: &Located<MountEntry>,
        key: &str,
    ) -> Result<MountPlan> {
        let pos = entry.pos;
        let mut notes = Vec::new();
        let plan = match &entry.value {
            MountEntry::Text(s) => {
                let s = self.raw(file, pos, s, Field::Container, key)?;
                parse_mount(&s, &mut notes)
            }
            MountEntry::Object {
                kind,
                source,
                target,
                read_only,
            } => {
                let mut sub = |v: &Option<String>| -> Result<Option<String>> {
                    v.as_deref()
                        .map(|s| self.raw(file, pos, s, Field::Container, key))
                        .transpose()
                };
                let (source, target) = (sub(source)?, sub(target)?);
                mount_from_object(
                    kind.as_deref(),
                    source.as_deref(),
                    target.as_deref(),
                    read_only.unwrap_or(false),
                )
            }
        }
        .map_err(|e| error_at(file, pos, format!("{key}: {e}")))?;
        self.warnings.extend(
            notes
                .into_iter()
                .map(|n| format!("{}:{pos}: {key}: {n}", file.display())),
        );
        Ok(plan)
    }

    pub(super) fn hook_step(
        &mut self,
        file: &Path,
        hook: Hook,
        origin: HookOrigin,
        command: &Located<LifecycleCommand>,
    ) -> Result<HookStep> {
        let key = hook.key();
        let entries: Vec<(Option<String>, Vec<String>)> = match &command.value {
            LifecycleCommand::Single(c) => vec![(None, c.argv())],
            LifecycleCommand::Parallel(named) => named
                .iter()
                .map(|(n, c)| (Some(n.clone()), c.argv()))
                .collect(),
        };
        let mut commands = Vec::new();
        for (name, argv) in entries {
            let argv = argv
                .iter()
                .map(|a| self.raw(file, command.pos, a, Field::Remote, key))
                .collect::<Result<Vec<_>>>()?;
            commands.push(HookCommand { name, argv });
        }
        Ok(HookStep {
            hook,
            origin,
            commands,
        })
    }
}

/// Adds `items` to `list`, skipping ones already there.
pub(super) fn extend_unique<T: PartialEq>(list: &mut Vec<T>, items: impl IntoIterator<Item = T>) {
    for item in items {
        if !list.contains(&item) {
            list.push(item);
        }
    }
}
