//! Shared by the end-to-end test and the latency example: the `docker` CLI against a chosen engine,
//! the fixture images (the proxy: FROM scratch + the static binary; the tools from
//! tests/fixtures/egress), and a guard that removes what a run created.

// Each user takes what it needs.
#![allow(dead_code)]

use std::cell::RefCell;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

use sha2::{Digest, Sha256};

pub const LABEL: &str = "io.headjack.test=1";
const PROXY_REPO: &str = "localhost/headjack-test/egress-proxy";
const TOOLS_REPO: &str = "localhost/headjack-test/egress-tools";

pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run `source tests/env/run/env.sh` first (tests/env/up.sh sets up the engines)"))
}

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The static proxy binary: $HEADJACK_EGRESS_BIN, or built once per test run by build-static.sh.
pub fn proxy_binary() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(p) = std::env::var("HEADJACK_EGRESS_BIN") {
            return PathBuf::from(p);
        }
        let out = Command::new("bash")
            .arg(workspace().join("headjack-egress/build-static.sh"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "build-static.sh failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
}

pub struct Run {
    pub code: i32,
    pub out: String,
    pub err: String,
}

impl Run {
    pub fn all(&self) -> String {
        format!(
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code,
            self.out.trim_end(),
            self.err.trim_end()
        )
    }
}

pub struct Engine {
    pub name: &'static str,
    pub host: String,
}

impl Engine {
    pub fn cmd(&self, args: &[&str], stdin: Option<&[u8]>) -> Run {
        let mut child = Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", &self.host)
            .env("DOCKER_BUILDKIT", "0")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the docker CLI runs");
        if let Some(data) = stdin {
            let mut w = child.stdin.take().unwrap();
            w.write_all(data).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            out: String::from_utf8_lossy(&out.stdout).to_string(),
            err: String::from_utf8_lossy(&out.stderr).to_string(),
        }
    }

    /// A setup step that must work.
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.cmd(args, None);
        assert_eq!(
            r.code,
            0,
            "[{}] docker {}: {}",
            self.name,
            args.join(" "),
            r.all()
        );
        r.out.trim().to_string()
    }

    /// `sh -c script` in a container.
    pub fn sh(&self, container: &str, script: &str) -> Run {
        self.cmd(&["exec", container, "sh", "-c", script], None)
    }

    /// A request to the engine's API over its unix socket (for Podman's libpod endpoints, which
    /// the docker CLI cannot reach): the status code and the body.
    pub fn api(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        use std::io::Read;
        let sock = self
            .host
            .strip_prefix("unix://")
            .expect("a unix:// engine socket");
        let mut s = std::os::unix::net::UnixStream::connect(sock).unwrap();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        let status = resp
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (
            status,
            resp.split_once("\r\n\r\n")
                .map_or(String::new(), |(_, b)| b.to_string()),
        )
    }

    pub fn ip(&self, container: &str, network: &str) -> String {
        self.ok(&[
            "inspect",
            container,
            "-f",
            &format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}"),
        ])
    }

    pub fn has_image(&self, tag: &str) -> bool {
        self.cmd(&["image", "inspect", "-f", "{{.Id}}", tag], None)
            .code
            == 0
    }

    /// Removes older tags of a fixture repository after a new one was built.
    pub fn drop_old_tags(&self, repo: &str, keep: &str) {
        let list = self.cmd(
            &["images", repo, "--format", "{{.Repository}}:{{.Tag}}"],
            None,
        );
        for tag in list
            .out
            .lines()
            .filter(|t| *t != keep && t.starts_with(repo))
        {
            self.cmd(&["rmi", tag], None);
        }
    }

    /// The proxy image: FROM scratch + the static binary, built from a tar context on stdin.
    pub fn proxy_image(&self) -> String {
        let bin = std::fs::read(proxy_binary()).unwrap();
        let dockerfile = "FROM scratch\nCOPY headjack-egress /headjack-egress\nLABEL io.headjack.egress=1\nENTRYPOINT [\"/headjack-egress\", \"serve\"]\n";
        let tag = format!(
            "{PROXY_REPO}:{}",
            &hex::encode(
                Sha256::new()
                    .chain_update(&bin)
                    .chain_update(dockerfile)
                    .finalize()
            )[..16]
        );
        if self.has_image(&tag) {
            return tag;
        }
        let mut tar = tar::Builder::new(Vec::new());
        for (name, data, mode) in [
            ("Dockerfile", dockerfile.as_bytes(), 0o644),
            ("headjack-egress", &bin[..], 0o755),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(mode);
            h.set_mtime(0);
            h.set_cksum();
            tar.append_data(&mut h, name, data).unwrap();
        }
        let context = tar.into_inner().unwrap();
        let r = self.cmd(
            &["build", "-q", "--label", LABEL, "-t", &tag, "-"],
            Some(&context),
        );
        assert_eq!(
            r.code,
            0,
            "[{}] building the proxy image: {}",
            self.name,
            r.all()
        );
        self.drop_old_tags(PROXY_REPO, &tag);
        tag
    }

    /// The tools image from tests/fixtures/egress, tagged by the content of that directory.
    pub fn tools_image(&self) -> String {
        let dir = workspace().join("tests/fixtures/egress");
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        let mut h = Sha256::new();
        for n in &names {
            h.update(n.as_encoded_bytes());
            h.update(std::fs::read(dir.join(n)).unwrap());
        }
        let tag = format!("{TOOLS_REPO}:{}", &hex::encode(h.finalize())[..16]);
        if self.has_image(&tag) {
            return tag;
        }
        let t0 = Instant::now();
        let r = self.cmd(
            &[
                "build",
                "-q",
                "--label",
                LABEL,
                "-t",
                &tag,
                dir.to_str().unwrap(),
            ],
            None,
        );
        assert_eq!(
            r.code,
            0,
            "[{}] building the tools image: {}",
            self.name,
            r.all()
        );
        eprintln!("[{}] built {tag} in {:.0?}", self.name, t0.elapsed());
        self.drop_old_tags(TOOLS_REPO, &tag);
        tag
    }
}

/// Removes what a suite created, also when it panics.
pub struct Created<'a> {
    pub engine: &'a Engine,
    pub containers: RefCell<Vec<String>>,
    pub networks: RefCell<Vec<String>>,
}

impl<'a> Created<'a> {
    pub fn new(engine: &'a Engine) -> Self {
        Created {
            engine,
            containers: RefCell::new(vec![]),
            networks: RefCell::new(vec![]),
        }
    }

    pub fn network(&self, name: &str, opts: &[&str]) -> String {
        let mut args = vec!["network", "create", "--label", LABEL];
        args.extend_from_slice(opts);
        args.push(name);
        self.networks.borrow_mut().push(name.to_string());
        self.engine.ok(&args);
        name.to_string()
    }

    /// An instance network as the core makes it: no route out, no address of the host on it, and
    /// no engine DNS server on it (Podman's aardvark-dns would resolve any outside name for the
    /// instance, bypassing the proxy). Docker: `--internal` + `inhibit_ipv4` (its embedded DNS
    /// forwards only to the `--dns` servers on internal networks). Podman: the libpod endpoint with
    /// `dns_enabled: false`, which also leaves the network without a gateway address (the
    /// Docker-compatible endpoint cannot ask for either).
    pub fn instance_network(&self, name: &str) -> String {
        if self.engine.name != "podman" {
            return self.network(
                name,
                &[
                    "--internal",
                    "-o",
                    "com.docker.network.bridge.inhibit_ipv4=true",
                ],
            );
        }
        self.networks.borrow_mut().push(name.to_string());
        let body = format!(
            r#"{{"name":"{name}","driver":"bridge","internal":true,"dns_enabled":false,"labels":{{"io.headjack.test":"1"}}}}"#
        );
        let (status, resp) = self
            .engine
            .api("POST", "/v4.0.0/libpod/networks/create", &body);
        assert_eq!(status, 200, "[podman] POST /libpod/networks/create: {resp}");
        name.to_string()
    }

    pub fn container(&self, name: &str, args: &[&str]) -> String {
        let mut all = vec!["run", "-d", "--name", name, "--label", LABEL];
        all.extend_from_slice(args);
        self.containers.borrow_mut().push(name.to_string());
        self.engine.ok(&all);
        name.to_string()
    }
}

impl Drop for Created<'_> {
    fn drop(&mut self) {
        // Newest first: Podman refuses to remove a container whose network namespace another
        // one still shares.
        for name in self.containers.borrow().iter().rev() {
            let r = self.engine.cmd(&["rm", "-f", "-v", name], None);
            if r.code != 0
                && !r.err.contains("No such container")
                && !r.err.contains("no such container")
            {
                eprintln!(
                    "[{}] cleanup: docker rm -f {name}: {}",
                    self.engine.name,
                    r.all()
                );
            }
        }
        for n in self.networks.borrow().iter().rev() {
            let r = self.engine.cmd(&["network", "rm", n], None);
            if r.code != 0 {
                eprintln!(
                    "[{}] cleanup: docker network rm {n}: {}",
                    self.engine.name,
                    r.all()
                );
            }
        }
    }
}
