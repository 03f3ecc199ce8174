//! Instruction flags (`RUN --mount`, `COPY --chmod`, `--link`, `ADD --checksum`) checked against
//! what the builder at hand supports.

use super::*;

/// The fields of a `--mount=` value: `type=cache,target=/x` → [("type","cache"), …].
pub(super) fn mount_fields(spec: &str) -> Vec<(String, String)> {
    spec.split(',')
        .map(|f| {
            let (k, v) = f.split_once('=').unwrap_or((f, ""));
            (
                k.trim().to_ascii_lowercase(),
                v.trim().trim_matches('"').to_string(),
            )
        })
        .collect()
}

pub(super) fn check_run_flags(
    ins: &Instruction,
    escape: char,
    profile: &BuilderProfile,
    secret_mounts: &mut Vec<String>,
) -> Result<()> {
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
        let kind = get("type").unwrap_or("bind");
        if kind == "secret" {
            let id = get("id").map(str::to_string).or_else(|| {
                get("target")
                    .or_else(|| get("dst"))
                    .or_else(|| get("destination"))
                    .and_then(|t| t.rsplit('/').next())
                    .map(str::to_string)
            });
            if let Some(id) = id.filter(|i| !i.is_empty())
                && !secret_mounts.contains(&id)
            {
                secret_mounts.push(id);
            }
            if !profile.secrets {
                return Err(unsupported(
                    ins.line,
                    "RUN --mount=type=secret",
                    &profile.name,
                    "it cannot pass build secrets (the step would run without them); build on \
                     Docker with BuildKit or on Podman",
                ));
            }
        }
        if !profile.run_mounts {
            return Err(unsupported(
                ins.line,
                &format!("RUN --mount=type={kind}"),
                &profile.name,
                "RUN --mount needs BuildKit; build on Docker with BuildKit (the default) or on \
                 Podman",
            ));
        }
    }
    Ok(())
}

pub(super) fn check_copy_flags(
    ins: &Instruction,
    escape: char,
    profile: &BuilderProfile,
) -> Result<()> {
    let kw = ins.keyword.as_str();
    for flag in leading_flags(&ins.args, escape) {
        let name = flag.split('=').next().unwrap_or_default();
        match name {
            "--chmod" if !profile.copy_chmod => {
                return Err(unsupported(
                    ins.line,
                    &format!("{kw} --chmod"),
                    &profile.name,
                    "it keeps the context's modes only; build on Docker with BuildKit or on \
                     Podman, or set the mode in the build context (headjack sends it as is)",
                ));
            }
            "--link" if !profile.copy_link && !flag.ends_with("=false") => {
                return Err(unsupported(
                    ins.line,
                    &format!("{kw} --link"),
                    &profile.name,
                    "its Dockerfile frontend predates --link (Dockerfile 1.4, Docker 23) and no \
                     newer frontend image can be used; remove --link (it changes how the layer \
                     is cached and reused; the files copied are the same unless the destination \
                     path crosses a symlink in the image)",
                ));
            }
            "--checksum" if !profile.add_checksum => {
                return Err(unsupported(
                    ins.line,
                    &format!("{kw} --checksum"),
                    &profile.name,
                    "its Dockerfile frontend predates --checksum (Dockerfile 1.6, Docker 25); \
                     headjack will not drop a verification: download and check the file in a RUN \
                     step (sha256sum -c), or put it in the build context and COPY it",
                ));
            }
            _ => {}
        }
    }
    Ok(())
}
