//! `headjack egress set|log`: a kept instance's egress policy, changed live, and its proxy's
//! decisions (issue 14). The policy itself and the proxy live in the core (`headjack::Egress`).

use serde_json::json;

use crate::args::{EgressCommand, Global};
use crate::{Outcome, connect};

/// `headjack egress set ID (--allow-host P… | --deny-host P…)` and `headjack egress log ID`.
pub async fn egress(global: &Global, cmd: EgressCommand) -> Outcome {
    let client = connect(global).await?;
    match cmd {
        EgressCommand::Set(a) => {
            let policy = if a.allow_hosts.is_empty() {
                headjack::Egress::deny(a.deny_hosts)
            } else {
                headjack::Egress::allow(a.allow_hosts)
            };
            client.attach(&a.id).await?.set_egress(policy).await?;
            Ok(0)
        }
        EgressCommand::Log(a) => {
            let log = client.attach(&a.id).await?.egress_log().await?;
            if global.json {
                let v: Vec<_> = log
                    .iter()
                    .map(|d| {
                        json!({
                            "seq": d.seq,
                            "time": d.time,
                            "via": d.via,
                            "host": d.host,
                            "port": d.port,
                            "allowed": d.allowed,
                            "reason": d.reason,
                            "count": d.count,
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(v));
            } else {
                println!(
                    "{:<24} {:<8} {:<40} {:<8} REASON",
                    "TIME", "VIA", "DESTINATION", "DECISION"
                );
                for d in log {
                    let dest = match d.port {
                        Some(p) => format!("{}:{p}", d.host),
                        None => d.host.clone(),
                    };
                    let times = if d.count > 1 {
                        format!(" (x{})", d.count)
                    } else {
                        String::new()
                    };
                    println!(
                        "{:<24} {:<8} {:<40} {:<8} {}{times}",
                        d.time,
                        d.via,
                        dest,
                        if d.allowed { "allowed" } else { "denied" },
                        d.reason
                    );
                }
            }
            Ok(0)
        }
    }
}
