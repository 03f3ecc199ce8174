//! Registry images: pull policy and credentials from the Docker client configuration.

use std::path::PathBuf;

use base64::Engine as _;

use crate::engine::{Credentials, Engine, ImageDetails};
use crate::error::{Error, ErrorKind, Result};
use crate::progress::ProgressFn;
use crate::reference::ImageRef;
use crate::spec::PullPolicy;

/// Makes `image` present locally according to `policy`; returns what the engine knows of it.
pub(crate) async fn ensure_image(
    engine: &Engine,
    image: &ImageRef,
    policy: PullPolicy,
    platform: Option<&str>,
    progress: Option<&ProgressFn>,
) -> Result<ImageDetails> {
    let reference = image.to_string();
    if policy != PullPolicy::Always {
        if let Some(found) = engine.image(&reference).await? {
            return Ok(found);
        }
        if policy == PullPolicy::Never {
            return Err(Error::new(
                ErrorKind::ImageNotFound,
                format!(
                    "image {reference} is not present locally and the pull policy is \"never\"; \
                     pull or build it first, or use pull policy \"missing\""
                ),
            ));
        }
    }
    let credentials = credentials_for(image).await;
    let tag_or_digest = match (image.digest(), image.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_string(),
        (None, None) => "latest".to_string(),
    };
    engine
        .pull(
            &reference,
            &image.name(),
            &tag_or_digest,
            platform,
            credentials,
            progress,
        )
        .await?;
    match engine.image(&reference).await? {
        Some(found) => Ok(found),
        None => Err(Error::new(
            ErrorKind::ImageNotFound,
            format!(
                "pulled {reference}, but the engine does not list it afterwards; check the platform"
            ),
        )),
    }
}

/// The Docker client configuration file: `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`.
fn config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
}

/// Credentials for `image`'s registry, if the user has any configured. Failures to read them
/// are logged and treated as anonymous access (the registry then says what it wants).
pub(crate) async fn credentials_for(image: &ImageRef) -> Option<Credentials> {
    let server = image.auth_server();
    let path = config_path()?;
    let text = tokio::fs::read_to_string(&path).await.ok()?;
    let config: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable docker config");
            return None;
        }
    };
    match lookup(&config, &server) {
        Lookup::Inline(c) => Some(c),
        Lookup::Helper(helper) => {
            let s = server.clone();
            tokio::task::spawn_blocking(move || from_helper(&helper, &s))
                .await
                .ok()
                .flatten()
        }
        Lookup::None => None,
    }
}

enum Lookup {
    Inline(Credentials),
    Helper(String),
    None,
}

fn lookup(config: &serde_json::Value, server: &str) -> Lookup {
    if let Some(helper) = config
        .get("credHelpers")
        .and_then(|h| h.get(server))
        .and_then(|v| v.as_str())
    {
        return Lookup::Helper(helper.to_string());
    }
    if let Some(auths) = config.get("auths").and_then(|a| a.as_object()) {
        let entry = auths
            .iter()
            .find(|(k, _)| same_server(k, server))
            .map(|(_, v)| v);
        if let Some(entry) = entry
            && let Some(c) = inline_credentials(entry, server)
        {
            return Lookup::Inline(c);
        }
    }
    if let Some(store) = config.get("credsStore").and_then(|v| v.as_str()) {
        return Lookup::Helper(store.to_string());
    }
    Lookup::None
}

/// `auths` keys may be written with a scheme and path (`https://host/v1/`).
fn same_server(key: &str, server: &str) -> bool {
    let strip = |s: &str| {
        let s = s
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        s.split('/').next().unwrap_or(s).to_string()
    };
    key == server || strip(key) == strip(server)
}

fn inline_credentials(entry: &serde_json::Value, server: &str) -> Option<Credentials> {
    let mut c = Credentials {
        server: server.to_string(),
        ..Default::default()
    };
    if let Some(auth) = entry
        .get("auth")
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
    {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (u, p) = decoded.split_once(':')?;
        c.username = Some(u.to_string());
        c.password = Some(p.to_string());
    }
    if let Some(u) = entry.get("username").and_then(|v| v.as_str()) {
        c.username = Some(u.to_string());
    }
    if let Some(p) = entry.get("password").and_then(|v| v.as_str()) {
        c.password = Some(p.to_string());
    }
    if let Some(t) = entry.get("identitytoken").and_then(|v| v.as_str()) {
        c.identity_token = Some(t.to_string());
    }
    (c.username.is_some() || c.identity_token.is_some()).then_some(c)
}

/// Runs `docker-credential-<helper> get` with the server on stdin.
fn from_helper(helper: &str, server: &str) -> Option<Credentials> {
    use std::io::Write;
    let program = format!("docker-credential-{helper}");
    let mut child = std::process::Command::new(&program)
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| tracing::warn!(%program, error = %e, "credential helper could not be started"))
        .ok()?;
    child.stdin.take()?.write_all(server.as_bytes()).ok()?;
    let out = child.wait_with_output().ok()?;
    if !out.status.success() {
        tracing::debug!(%program, server, "credential helper has no credentials");
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let user = v
        .get("Username")
        .and_then(|u| u.as_str())
        .unwrap_or_default()
        .to_string();
    let secret = v
        .get("Secret")
        .and_then(|u| u.as_str())
        .unwrap_or_default()
        .to_string();
    // By convention a helper returns the user "<token>" for identity tokens.
    if user == "<token>" {
        Some(Credentials {
            server: server.to_string(),
            identity_token: Some(secret),
            ..Default::default()
        })
    } else {
        Some(Credentials {
            server: server.to_string(),
            username: Some(user),
            password: Some(secret),
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_auth_is_decoded() {
        let cfg =
            serde_json::json!({"auths": {"127.0.0.1:5001": {"auth": "aGVhZGphY2s6c2VjcmV0"}}});
        let Lookup::Inline(c) = lookup(&cfg, "127.0.0.1:5001") else {
            panic!("no inline creds")
        };
        assert_eq!(c.username.as_deref(), Some("headjack"));
        assert_eq!(c.password.as_deref(), Some("secret"));
    }

    #[test]
    fn docker_hub_key_with_scheme_matches() {
        let cfg = serde_json::json!({"auths": {"https://index.docker.io/v1/": {"auth": "dTpw"}}});
        assert!(matches!(
            lookup(&cfg, "https://index.docker.io/v1/"),
            Lookup::Inline(_)
        ));
    }

    #[test]
    fn helpers_take_precedence_and_store_is_fallback() {
        let cfg = serde_json::json!({"credHelpers": {"r.example": "ecr"}, "credsStore": "pass",
            "auths": {"r.example": {"auth": "dTpw"}}});
        assert!(matches!(lookup(&cfg, "r.example"), Lookup::Helper(h) if h == "ecr"));
        assert!(matches!(lookup(&cfg, "other"), Lookup::Helper(h) if h == "pass"));
        assert!(matches!(lookup(&serde_json::json!({}), "x"), Lookup::None));
    }

    #[test]
    fn missing_helper_means_anonymous() {
        assert!(from_helper("headjack-no-such-helper", "x").is_none());
    }
}
