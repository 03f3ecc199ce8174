//! Networks and the few untyped requests the egress topology needs (docs/ARCHITECTURE.md#egress):
//! internal networks (Docker's compatible endpoint with `inhibit_ipv4`, Podman's libpod endpoint
//! with `dns_enabled: false`, which the compatible one cannot ask for), connecting and
//! disconnecting containers, a container's addresses, a plain build from a tar context, and a
//! command run to completion in a container.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::Instrument;

use super::exec::{ExecOutputChunk, ExecParams};
use super::raw::{answer_body, percent_encode};
use super::{Engine, EngineKind};
use crate::error::{Error, ErrorKind, Result};

/// What a command run to completion printed, and its exit code.
#[derive(Debug, Clone)]
pub(crate) struct Collected {
    pub code: i64,
    pub stdout: String,
    pub stderr: String,
}

impl Engine {
    /// One request with a body (JSON or a tar), its answer as JSON (`Null` when empty). A path
    /// starting with `/v` is sent as is (libpod endpoints); others get the negotiated version.
    pub(crate) async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
        timeout: Duration,
    ) -> Result<serde_json::Value> {
        let host = &self.info.host;
        let path = if path.starts_with("/v") {
            path.to_string()
        } else {
            format!("/v{}{path}", self.info.api_version)
        };
        let (ctype, data) = body.unwrap_or(("application/json", Vec::new()));
        let head = format!(
            "{method} {path} HTTP/1.0\r\nHost: headjack\r\nUser-Agent: headjack\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
            data.len()
        );
        let io = |e: std::io::Error| {
            Error::new(
                ErrorKind::EngineUnavailable,
                format!("lost the connection to the engine at {host}: {e}"),
            )
            .with_source(e)
        };
        let exchange = async {
            let mut s = self.dial().await?;
            // An engine may answer (a refusal) as soon as it read the headers and close the
            // connection: a small request goes out in one write, and a write that fails still
            // reads whatever answer arrived before it.
            let sent = if data.len() <= 64 << 10 {
                let mut all = head.into_bytes();
                all.extend_from_slice(&data);
                s.write_all(&all).await
            } else {
                match s.write_all(head.as_bytes()).await {
                    Ok(()) => s.write_all(&data).await,
                    Err(e) => Err(e),
                }
            };
            let mut raw = Vec::new();
            let read = s.read_to_end(&mut raw).await;
            match (sent, read) {
                (Ok(()), Ok(_)) => Ok(raw),
                (Err(_), Ok(_)) | (Err(_), Err(_)) if !raw.is_empty() => Ok(raw),
                (Err(e), _) | (Ok(()), Err(e)) => Err(io(e)),
            }
        };
        let raw = tokio::time::timeout(timeout, exchange).await.map_err(|_| {
            Error::new(
                ErrorKind::Timeout,
                format!(
                    "the engine at {host} did not answer {method} {path} within {timeout:?}; it \
                     may be overloaded or frozen"
                ),
            )
        })??;
        let body = answer_body(&raw)?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(serde_json::Value::Null);
        }
        // A build answers with JSON lines: keep them as an array.
        match serde_json::from_slice(body) {
            Ok(v) => Ok(v),
            Err(_) => Ok(serde_json::Value::Array(
                body.split(|b| *b == b'\n')
                    .filter_map(|l| serde_json::from_slice(l).ok())
                    .collect(),
            )),
        }
    }

    /// Creates a network with outside access (a user-defined bridge, so the containers on it get
    /// the engine's DNS). One that exists already counts as created.
    pub(crate) async fn create_bridge_network(
        &self,
        name: &str,
        labels: &serde_json::Value,
    ) -> Result<()> {
        let span = tracing::info_span!("engine.create_network", name, internal = false);
        let body = serde_json::json!({"Name": name, "Driver": "bridge", "CheckDuplicate": true, "Labels": labels});
        match self
            .request(
                "POST",
                "/networks/create",
                Some(("application/json", body.to_string().into_bytes())),
                self.timeout,
            )
            .instrument(span)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == ErrorKind::Conflict || e.message().contains("already") => Ok(()),
            Err(e) => Err(e.context(format!("creating network {name}"))),
        }
    }

    /// Creates an internal network with no route out, no address of the host on it and no
    /// engine DNS server, on `subnet`.
    pub(crate) async fn create_internal_network(
        &self,
        name: &str,
        subnet: &str,
        labels: &serde_json::Value,
    ) -> Result<()> {
        let span = tracing::info_span!("engine.create_network", name, subnet, internal = true);
        let (path, body) = match self.info.kind {
            EngineKind::Podman => (
                "/v4.0.0/libpod/networks/create",
                serde_json::json!({"name": name, "driver": "bridge", "internal": true,
                    "dns_enabled": false, "labels": labels, "subnets": [{"subnet": subnet}]}),
            ),
            EngineKind::Docker => (
                "/networks/create",
                serde_json::json!({"Name": name, "Driver": "bridge", "Internal": true,
                    "CheckDuplicate": true,
                    "Options": {"com.docker.network.bridge.inhibit_ipv4": "true"},
                    "IPAM": {"Config": [{"Subnet": subnet}]}, "Labels": labels}),
            ),
        };
        self.request(
            "POST",
            path,
            Some(("application/json", body.to_string().into_bytes())),
            self.timeout,
        )
        .instrument(span)
        .await
        .map(|_| ())
        .map_err(|e| e.context(format!("creating internal network {name} on {subnet}")))
    }

    /// Connects a container to a network.
    /// Connects a container to a network, at address `ip` when given (an address it keeps
    /// across restarts: Podman gives a restarted container new addresses otherwise).
    pub(crate) async fn connect_network(
        &self,
        network: &str,
        container: &str,
        ip: Option<std::net::Ipv4Addr>,
    ) -> Result<()> {
        let span = tracing::debug_span!("engine.connect_network", network, container);
        let mut body = serde_json::json!({"Container": container});
        if let Some(ip) = ip {
            // And a MAC address made of it, as Docker makes them: Podman gives a restarted
            // container new MAC addresses, and its peers would keep sending to the old one
            // until their ARP entries expire (tens of seconds).
            let [a, b, c, d] = ip.octets();
            body["EndpointConfig"] = serde_json::json!({
                "IPAMConfig": {"IPv4Address": ip.to_string()},
                "MacAddress": format!("02:42:{a:02x}:{b:02x}:{c:02x}:{d:02x}"),
            });
        }
        self.request(
            "POST",
            &format!("/networks/{}/connect", percent_encode(network)),
            Some(("application/json", body.to_string().into_bytes())),
            self.timeout,
        )
        .instrument(span)
        .await
        .map(|_| ())
        .map_err(|e| e.context(format!("connecting {container} to network {network}")))
    }

    /// Disconnects a container from a network (force); one not connected counts as done.
    pub(crate) async fn disconnect_network(&self, network: &str, container: &str) -> Result<()> {
        let span = tracing::debug_span!("engine.disconnect_network", network, container);
        let body = serde_json::json!({"Container": container, "Force": true});
        match self
            .request(
                "POST",
                &format!("/networks/{}/disconnect", percent_encode(network)),
                Some(("application/json", body.to_string().into_bytes())),
                self.timeout,
            )
            .instrument(span)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.context(format!("disconnecting {container} from network {network}"))),
        }
    }

    /// Removes a network; one that is gone counts as removed.
    pub(crate) async fn remove_network(&self, network: &str) -> Result<()> {
        let span = tracing::debug_span!("engine.remove_network", network);
        match self
            .request(
                "DELETE",
                &format!("/networks/{}", percent_encode(network)),
                None,
                self.timeout,
            )
            .instrument(span)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.context(format!("removing network {network}"))),
        }
    }

    /// The names and labels of the networks carrying every label in `labels` (`key=value`).
    pub(crate) async fn networks_with_labels(
        &self,
        labels: &[String],
    ) -> Result<Vec<(String, std::collections::HashMap<String, String>)>> {
        let span = tracing::debug_span!("engine.list_networks");
        let filters = serde_json::json!({ "label": labels }).to_string();
        let v = self
            .get_json(&format!("/networks?filters={}", percent_encode(&filters)))
            .instrument(span)
            .await
            .map_err(|e| e.context("listing networks"))?;
        Ok(v.as_array()
            .into_iter()
            .flatten()
            .map(|n| {
                (
                    n.get("Name")
                        .and_then(|s| s.as_str())
                        .unwrap_or_default()
                        .to_string(),
                    super::raw::string_map(n.get("Labels")),
                )
            })
            .collect())
    }

    /// The untyped inspection of a container (`None` when it does not exist).
    pub(crate) async fn inspect_raw(&self, container: &str) -> Result<Option<serde_json::Value>> {
        let span = tracing::debug_span!("engine.inspect_raw", container);
        match self
            .get_json(&format!("/containers/{}/json", percent_encode(container)))
            .instrument(span)
            .await
        {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.context(format!("inspecting container {container}"))),
        }
    }

    /// A container's address on `network` (`None` when it is not on it or has none yet).
    pub(crate) async fn address_on(
        &self,
        container: &str,
        network: &str,
    ) -> Result<Option<String>> {
        let v = self.inspect_raw(container).await?;
        Ok(v.and_then(|v| {
            v.pointer("/NetworkSettings/Networks")
                .and_then(|n| n.get(network))
                .and_then(|n| n.get("IPAddress"))
                .and_then(|a| a.as_str())
                .filter(|a| !a.is_empty())
                .map(str::to_string)
        }))
    }

    /// Builds image `tag` from a tar context with the engine's classic builder.
    pub(crate) async fn build_plain(&self, tag: &str, context: Vec<u8>) -> Result<()> {
        let span = tracing::info_span!("engine.build_plain", tag);
        let v = self
            .request(
                "POST",
                &format!("/build?t={}&rm=1&forcerm=1", percent_encode(tag)),
                Some(("application/x-tar", context)),
                Duration::from_secs(600),
            )
            .instrument(span)
            .await
            .map_err(|e| e.context(format!("building image {tag}")))?;
        let lines = match v {
            serde_json::Value::Array(a) => a,
            other => vec![other],
        };
        if let Some(err) = lines.iter().find_map(|l| l.get("error")) {
            return Err(Error::new(
                ErrorKind::BuildFailed,
                format!(
                    "building image {tag}: {}",
                    err.as_str().unwrap_or_default().trim()
                ),
            ));
        }
        Ok(())
    }

    /// Creates a container from an engine API body (`POST /containers/create?name=`); an
    /// existing container of that name is a `Conflict`.
    pub(crate) async fn create_raw(&self, name: &str, body: &serde_json::Value) -> Result<()> {
        let span = tracing::info_span!("engine.create_container", name);
        self.request(
            "POST",
            &format!("/containers/create?name={}", percent_encode(name)),
            Some(("application/json", body.to_string().into_bytes())),
            self.timeout,
        )
        .instrument(span)
        .await
        .map(|_| ())
    }

    /// Runs `cmd` in `container` to completion (output bounded by `timeout`).
    pub(crate) async fn exec_collect(
        &self,
        container: &str,
        cmd: Vec<String>,
        timeout: Duration,
    ) -> Result<Collected> {
        let run = async {
            let (id, mut output, _) = self
                .exec(
                    container,
                    ExecParams {
                        cmd,
                        ..Default::default()
                    },
                )
                .await?;
            let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
            while let Some(chunk) = output.next().await {
                match chunk? {
                    ExecOutputChunk::Stdout(b) => stdout.extend_from_slice(&b),
                    ExecOutputChunk::Stderr(b) => stderr.extend_from_slice(&b),
                }
            }
            let mut state = self.exec_state(&id).await?;
            for _ in 0..50 {
                if !state.running {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                state = self.exec_state(&id).await?;
            }
            Ok::<_, Error>(Collected {
                code: state.exit_code.unwrap_or(-1),
                stdout: String::from_utf8_lossy(&stdout).into_owned(),
                stderr: String::from_utf8_lossy(&stderr).into_owned(),
            })
        };
        tokio::time::timeout(timeout, run).await.map_err(|_| {
            Error::new(
                ErrorKind::Timeout,
                format!("a command in container {container} did not finish within {timeout:?}"),
            )
        })?
    }
}
