//! Sandbox commands (issue 13): `run -p/--volume/--shm-size/--cpuset/--ulimit/--disk`,
//! `stats`, `fork`, `volume ls/rm`, `checkpoint`, `restore`.

use headjack::spec::Publish;
use headjack::{Instance, Spec};
use serde_json::json;

use crate::args::{CheckpointArgs, ForkArgs, Global, RunArgs, StatsArgs, VolumeCommand};
use crate::{Failure, Outcome, connect, report};

/// Adds `run`'s sandbox options (`--publish`, `--volume`, `--shm-size`, `--cpuset`,
/// `--ulimit`, `--disk`) to `spec`.
pub fn apply_run_options(mut spec: Spec, a: &RunArgs) -> Result<Spec, Failure> {
    for p in &a.publish {
        spec = spec.publish_port(Publish::parse(p)?);
    }
    if let Some(b) = a.shm_size {
        spec = spec.shm_size(b);
    }
    if let Some(c) = &a.cpuset {
        spec = spec.cpuset(c);
    }
    for (name, soft, hard) in &a.ulimits {
        spec = spec.ulimit(name, *soft, *hard);
    }
    if let Some(d) = a.disk {
        spec = spec.disk(d);
    }
    for v in &a.volumes {
        let (name, rest) = v.split_once(':').ok_or_else(|| {
            Failure::new(format!(
                "--volume {v:?}: use --volume NAME:/path (or NAME:/path:ro)"
            ))
        })?;
        spec = match rest.strip_suffix(":ro") {
            Some(target) => spec.volume_read_only(name, target),
            None => spec.volume(name, rest.strip_suffix(":rw").unwrap_or(rest)),
        };
    }
    Ok(spec)
}

/// Prints where each published port is reachable, on stderr (unless --quiet).
pub async fn report_ports(global: &Global, instance: &Instance, publish: &[String]) {
    if global.quiet {
        return;
    }
    for p in publish.iter().filter_map(|p| Publish::parse(p).ok()) {
        match instance.port(p.container_port).await {
            Ok(addr) => report(&format!("port {} published on {addr}", p.container_port)),
            Err(e) => report(&format!("port {}: {e}", p.container_port)),
        }
    }
}

fn stats_json(s: &headjack::instance::Stats) -> serde_json::Value {
    json!({
        "cpu_time_ns": s.cpu_time.as_nanos() as u64,
        "memory_bytes": s.memory_bytes,
        "memory_peak_bytes": s.memory_peak_bytes,
        "memory_limit_bytes": s.memory_limit_bytes,
        "pids": s.pids,
        "net_rx_bytes": s.net_rx_bytes,
        "net_tx_bytes": s.net_tx_bytes,
        "block_read_bytes": s.block_read_bytes,
        "block_write_bytes": s.block_write_bytes,
    })
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
}

fn print_stats(global: &Global, s: &headjack::instance::Stats) {
    if global.json {
        println!("{}", stats_json(s));
        return;
    }
    let opt = |v: Option<u64>| v.map(mib).unwrap_or_else(|| "-".into());
    println!(
        "cpu {:.3}s  memory {} (peak {}, limit {})  pids {}  net rx {} tx {}  block read {} write {}",
        s.cpu_time.as_secs_f64(),
        mib(s.memory_bytes),
        opt(s.memory_peak_bytes),
        opt(s.memory_limit_bytes),
        s.pids,
        s.net_rx_bytes,
        s.net_tx_bytes,
        s.block_read_bytes,
        s.block_write_bytes
    );
}

/// `headjack stats ID [--watch SECS]`.
pub async fn stats(global: &Global, a: StatsArgs) -> Outcome {
    let client = connect(global).await?;
    let instance = client.attach(&a.id).await?;
    match a.watch {
        None => print_stats(global, &instance.stats().await?),
        Some(every) => {
            let mut stream = instance.stats_stream(every);
            while let Some(s) = stream.next().await {
                print_stats(global, &s?);
            }
        }
    }
    Ok(0)
}

/// `headjack fork ID`: prints the fork's ID.
pub async fn fork(global: &Global, a: ForkArgs) -> Outcome {
    let client = connect(global).await?;
    let parent = client.attach(&a.id).await?;
    let fork = parent.fork_with(a.keep_snapshot).await?;
    fork.keep();
    if global.json {
        println!(
            "{}",
            json!({
                "id": fork.id(),
                "container_id": fork.container_id(),
                "name": fork.name(),
                "image": fork.image(),
                "parent": parent.id(),
            })
        );
    } else {
        println!("{}", fork.id());
    }
    Ok(0)
}

/// `headjack volume ls|rm`.
pub async fn volume(global: &Global, a: VolumeCommand) -> Outcome {
    let client = connect(global).await?;
    match a {
        VolumeCommand::Ls => {
            let list = client.volumes().await?;
            if global.json {
                let v: Vec<_> = list
                    .iter()
                    .map(|v| {
                        json!({
                            "name": v.name,
                            "driver": v.driver,
                            "created_at": v.created_at,
                            "expires": v.expires,
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(v));
            } else {
                println!("{:<40} {:<26} EXPIRES", "NAME", "CREATED");
                for v in list {
                    let expires = v.expires.map(|e| e.to_string()).unwrap_or("-".into());
                    println!("{:<40} {:<26} {expires}", v.name, v.created_at);
                }
            }
            Ok(0)
        }
        VolumeCommand::Rm { names } => {
            let mut failed = Vec::new();
            for n in names {
                match client.remove_volume(&n).await {
                    Ok(()) if !global.quiet => println!("{n}"),
                    Ok(()) => {}
                    Err(e) => failed.push(e.to_string()),
                }
            }
            match failed.pop() {
                Some(last) => {
                    for e in failed {
                        report(&e);
                    }
                    Err(Failure::new(last))
                }
                None => Ok(0),
            }
        }
    }
}

/// `headjack checkpoint ID NAME`.
pub async fn checkpoint(global: &Global, a: CheckpointArgs) -> Outcome {
    let client = connect(global).await?;
    let instance = client.attach(&a.id).await?;
    instance.checkpoint(&a.name).await?;
    if !global.quiet {
        println!("{}", a.name);
    }
    Ok(0)
}

/// `headjack restore ID NAME`: prints the restored instance's ID.
pub async fn restore(global: &Global, a: CheckpointArgs) -> Outcome {
    let client = connect(global).await?;
    let instance = client.restore(&a.id, &a.name).await?;
    if global.json {
        println!(
            "{}",
            json!({
                "id": instance.id(),
                "container_id": instance.container_id(),
                "name": instance.name(),
                "checkpoint": a.name,
            })
        );
    } else {
        println!("{}", instance.id());
    }
    Ok(0)
}
