//! The commands that do one library call and print its result.

use std::io::Write;
use std::path::Path;

use headjack::exec::StreamKind;
use headjack::instance::InstanceInfo;
use headjack::spec::PullPolicy;
use headjack::{Base, Spec, Status};
use serde_json::{Value, json};

use crate::args::{
    BuildArgs, CommitArgs, CpArgs, Global, ImagesArgs, LogsArgs, PsArgs, RmArgs, StopArgs,
};
use crate::progress::Reporter;
use crate::{Failure, Outcome, connect, report};

/// `headjack build [BASE] [--no-cache]`: prints the image tag (or JSON with --json).
pub async fn build(global: &Global, a: BuildArgs) -> Outcome {
    let text = a.base.as_deref().unwrap_or("");
    let mut spec = Spec::new();
    if a.no_cache {
        let base = Base::parse(text)?;
        match base {
            Base::Dockerfile(df) => spec = spec.base(Base::Dockerfile(df.no_cache(true))),
            other => {
                return Err(Failure::new(format!(
                    "--no-cache applies to a Dockerfile base, and {} is {}; give a Dockerfile path (or use --pull always to refresh an image)",
                    if text.is_empty() {
                        "the default base".to_string()
                    } else {
                        format!("{text:?}")
                    },
                    if other.is_default() {
                        "the default base"
                    } else {
                        "an image"
                    }
                )));
            }
        }
    } else if !text.is_empty() {
        spec = spec.base(text);
    }
    if let Some(p) = &a.pull {
        spec = spec.pull(PullPolicy::parse(p)?);
    }
    for (id, source) in &a.secrets {
        spec = spec.build_secret(id, source.clone());
    }
    let reporter = Reporter::new(global);
    if let Some(cb) = reporter.callback() {
        spec = spec.progress_fn(cb);
    }
    let client = connect(global).await?;
    let resolved = client.resolve(&spec).await;
    reporter.finish();
    let image = resolved?;
    if global.json {
        println!(
            "{}",
            json!({
                "reference": image.reference,
                "id": image.id,
                "built": image.built,
                "warnings": image.warnings,
            })
        );
    } else {
        println!("{}", image.reference);
    }
    Ok(0)
}

fn status_json(s: &Status) -> Value {
    match s {
        Status::Exited(code) => json!({ "state": s.as_str(), "exit_code": code }),
        other => json!({ "state": other.as_str() }),
    }
}

fn info_json(i: &InstanceInfo) -> Value {
    json!({
        "id": i.id,
        "container_id": i.container_id,
        "name": i.name,
        "base": i.base,
        "image": i.image,
        "status": i.status.as_str(),
        "state": status_json(&i.status),
        "owner": i.owner,
        "expires": i.expires,
        "labels": i.labels,
        "oom_killed": i.oom_killed,
        "exit_reason": i.exit_reason(),
    })
}

/// `info` with what only an inspect tells (whether the memory limit killed it), for a stopped
/// instance; unchanged when that fails (it may have gone meanwhile).
async fn with_exit_details(client: &headjack::Client, info: InstanceInfo) -> InstanceInfo {
    if !matches!(info.status, Status::Exited(_) | Status::Dead) {
        return info;
    }
    match client.attach(&info.id).await {
        Ok(instance) => instance.inspect().await.unwrap_or(info),
        Err(_) => info,
    }
}

/// `headjack ps [--all]`.
pub async fn ps(global: &Global, a: PsArgs) -> Outcome {
    let client = connect(global).await?;
    let mut list: Vec<InstanceInfo> = client
        .list()
        .await?
        .into_iter()
        .filter(|i| a.all || i.status == Status::Running)
        .collect();
    list.sort_by(|x, y| x.name.cmp(&y.name));
    let mut detailed = Vec::with_capacity(list.len());
    for i in list {
        detailed.push(with_exit_details(&client, i).await);
    }
    let list = detailed;
    if global.json {
        let v: Vec<Value> = list.iter().map(info_json).collect();
        println!("{}", Value::Array(v));
        return Ok(0);
    }
    let rows: Vec<[String; 5]> = list
        .iter()
        .map(|i| {
            [
                i.id.clone(),
                i.name.clone(),
                match i.exit_reason() {
                    Some(why) => format!("{} ({why})", i.status.as_str()),
                    None => i.status.as_str().to_string(),
                },
                i.image.clone(),
                i.base.clone(),
            ]
        })
        .collect();
    print_table(["ID", "NAME", "STATUS", "IMAGE", "BASE"], &rows);
    Ok(0)
}

fn print_table<const N: usize>(header: [&str; N], rows: &[[String; N]]) {
    let mut widths = header.map(str::len);
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = std::io::stdout().lock();
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == N {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}   ", w = widths[i]));
            }
        }
        s
    };
    let _ = writeln!(out, "{}", line(header.to_vec()));
    for r in rows {
        let _ = writeln!(out, "{}", line(r.iter().map(String::as_str).collect()));
    }
}

/// `headjack logs ID [-f]`.
pub async fn logs(global: &Global, a: LogsArgs) -> Outcome {
    use futures_util::StreamExt;
    let client = connect(global).await?;
    let instance = client.attach(&a.id).await?;
    let mut stream = Box::pin(instance.logs_stream(a.follow));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        let res = match chunk.stream {
            StreamKind::Stdout => std::io::stdout()
                .lock()
                .write_all(&chunk.data)
                .and_then(|_| std::io::stdout().flush()),
            StreamKind::Stderr => std::io::stderr().lock().write_all(&chunk.data),
        };
        if let Err(e) = res {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(0);
            }
            return Err(Failure::new(format!("writing logs: {e}")));
        }
    }
    Ok(0)
}

/// Runs `op` for each ID, printing the IDs done (unless --quiet); reports each failure on its
/// own line and fails if any did.
async fn each<F, Fut>(global: &Global, ids: &[String], verb: &str, past: &str, op: F) -> Outcome
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), Failure>>,
{
    let mut failed = 0;
    for id in ids {
        match op(id.clone()).await {
            Ok(()) if global.quiet => {}
            Ok(()) => println!("{id}"),
            Err(f) => {
                report(&format!("{verb} {id}: {}", f.message));
                failed += 1;
            }
        }
    }
    if failed > 0 {
        return Err(Failure::new(format!(
            "{failed} of {} instance(s) could not be {past}",
            ids.len()
        )));
    }
    Ok(0)
}

/// `headjack stop ID...`.
pub async fn stop(global: &Global, a: StopArgs) -> Outcome {
    let client = connect(global).await?;
    let grace = a.time;
    each(global, &a.ids, "stop", "stopped", |id| {
        let client = client.clone();
        async move {
            let instance = client.attach(&id).await?;
            instance.stop(grace).await?;
            Ok(())
        }
    })
    .await
}

/// `headjack rm ID...`.
pub async fn rm(global: &Global, a: RmArgs) -> Outcome {
    let client = connect(global).await?;
    each(global, &a.ids, "rm", "removed", |id| {
        let client = client.clone();
        async move {
            let instance = client.attach(&id).await?;
            instance.remove().await?;
            Ok(())
        }
    })
    .await
}

/// Splits `ID:/path` (an instance side) from a host path. A host path that contains a colon
/// can be written with a `./` or `/` prefix.
fn instance_side(s: &str) -> Option<(&str, &str)> {
    if s.starts_with('/') || s.starts_with("./") || s.starts_with("../") || s.starts_with('~') {
        return None;
    }
    let (id, path) = s.split_once(':')?;
    (!id.is_empty()).then_some((id, path))
}

/// `headjack cp SRC DST`.
pub async fn cp(global: &Global, a: CpArgs) -> Outcome {
    match (instance_side(&a.src), instance_side(&a.dst)) {
        (Some(_), Some(_)) => Err(Failure::new(
            "cp copies between the host and one instance: only one of SRC and DST may be ID:/path",
        )),
        (None, None) => Err(Failure::new(
            "cp needs one side in an instance, written ID:/path (e.g. `headjack cp ./src abc123:/workspace`)",
        )),
        (None, Some((id, dir))) => {
            if !Path::new(&a.src).exists() {
                return Err(Failure::new(format!(
                    "{} does not exist on the host",
                    a.src
                )));
            }
            let client = connect(global).await?;
            let instance = client.attach(id).await?;
            instance.copy_in(&a.src, dir).await?;
            Ok(0)
        }
        (Some((id, path)), None) => {
            let client = connect(global).await?;
            let instance = client.attach(id).await?;
            let written = instance.copy_out(path, &a.dst).await?;
            if !global.quiet {
                for p in written {
                    if global.json {
                        println!("{}", json!(p.display().to_string()));
                    } else {
                        println!("{}", p.display());
                    }
                }
            }
            Ok(0)
        }
    }
}

/// `headjack commit ID TAG`: prints the image reference.
pub async fn commit(global: &Global, a: CommitArgs) -> Outcome {
    let client = connect(global).await?;
    let instance = client.attach(&a.id).await?;
    let image = instance.commit(&a.tag).await?;
    if global.json {
        println!(
            "{}",
            json!({ "reference": image.to_string(), "instance": instance.id() })
        );
    } else {
        println!("{image}");
    }
    Ok(0)
}

/// `headjack sweep`: prints the IDs removed.
pub async fn sweep(global: &Global) -> Outcome {
    let client = connect(global).await?;
    let removed = client.sweep().await?;
    if global.json {
        println!("{}", json!({ "removed": removed }));
    } else {
        for id in removed {
            println!("{id}");
        }
    }
    Ok(0)
}

/// `headjack images [--prune N]`.
pub async fn images(global: &Global, a: ImagesArgs) -> Outcome {
    let client = connect(global).await?;
    if let Some(n) = a.prune {
        let removed = client.prune_images(n).await?;
        if global.json {
            println!("{}", json!({ "removed": removed }));
        } else {
            for r in removed {
                println!("{r}");
            }
        }
        return Ok(0);
    }
    let list = client.images().await?;
    if global.json {
        let v: Vec<Value> = list
            .iter()
            .map(|i| {
                json!({
                    "reference": i.reference,
                    "id": i.id,
                    "key": i.key,
                    "source": i.source,
                    "created": i.created,
                    "last_used": i.last_used,
                    "size": i.size,
                })
            })
            .collect();
        println!("{}", Value::Array(v));
        return Ok(0);
    }
    let rows: Vec<[String; 4]> = list
        .iter()
        .map(|i| {
            [
                i.reference.clone(),
                human_size(i.size),
                i.id.chars().skip(7).take(12).collect(),
                i.source.clone(),
            ]
        })
        .collect();
    print_table(["IMAGE", "SIZE", "ID", "SOURCE"], &rows);
    Ok(0)
}

fn human_size(bytes: i64) -> String {
    let b = bytes.max(0) as f64;
    match b {
        b if b >= (1u64 << 30) as f64 => format!("{:.1}GiB", b / (1u64 << 30) as f64),
        b if b >= (1u64 << 20) as f64 => format!("{:.1}MiB", b / (1u64 << 20) as f64),
        b if b >= 1024.0 => format!("{:.1}KiB", b / 1024.0),
        b => format!("{b}B"),
    }
}

/// `headjack info`.
pub async fn info(global: &Global) -> Outcome {
    let client = connect(global).await?;
    let i = client.info();
    let kind = format!("{:?}", i.kind).to_lowercase();
    if global.json {
        println!(
            "{}",
            json!({
                "headjack_version": env!("CARGO_PKG_VERSION"),
                "engine": kind,
                "version": i.version,
                "api_version": i.api_version,
                "host": i.host,
                "os": i.os,
                "arch": i.arch,
            })
        );
    } else {
        println!("headjack:    {}", env!("CARGO_PKG_VERSION"));
        println!("engine:      {kind} {}", i.version);
        println!("api version: {}", i.api_version);
        println!("host:        {}", i.host);
        println!("platform:    {}/{}", i.os, i.arch);
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_sides() {
        assert_eq!(instance_side("abc:/tmp/x"), Some(("abc", "/tmp/x")));
        assert_eq!(instance_side("./a:b"), None);
        assert_eq!(instance_side("/tmp/x"), None);
        assert_eq!(instance_side("file.txt"), None);
        assert_eq!(instance_side(":/x"), None);
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(2 << 20), "2.0MiB");
    }
}
