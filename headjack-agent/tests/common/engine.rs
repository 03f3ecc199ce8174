//! Real engines: containers whose PID 1 is the static agent, channels over their attach
//! streams, relay sessions through the engine's exec.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::exec::StartExecResults;
use bollard::models::{ContainerCreateBody, ExecConfig, HostConfig, HostConfigLogConfig};
use bollard::query_parameters::{AttachContainerOptionsBuilder, CreateContainerOptionsBuilder};
use futures_util::StreamExt;
use headjack_agent::client::Channel;
use tokio::io::AsyncWriteExt;

/// One engine under test.
#[derive(Clone)]
pub struct Engine {
    pub name: &'static str,
    pub host: String,
    pub docker: Docker,
}

impl Engine {
    fn connect(name: &'static str, var: &str, default: &str) -> Engine {
        let host = std::env::var(var).unwrap_or_else(|_| default.to_string());
        let path = host.strip_prefix("unix://").expect("a unix socket");
        assert!(
            Path::new(path).exists(),
            "the {name} engine at {host} is not reachable; run tests/env/up.sh"
        );
        let docker = Docker::connect_with_unix(path, 120, bollard::API_DEFAULT_VERSION)
            .expect("engine client");
        Engine { name, host, docker }
    }
    pub fn docker() -> Engine {
        Engine::connect(
            "docker",
            "HEADJACK_TEST_DOCKER_HOST",
            "unix:///var/run/docker.sock",
        )
    }
    pub fn podman() -> Engine {
        Engine::connect(
            "podman",
            "HEADJACK_TEST_PODMAN_HOST",
            "unix:///run/podman/podman.sock",
        )
    }
    pub fn gvisor() -> Engine {
        Engine::connect(
            "gvisor",
            "HEADJACK_TEST_GVISOR_HOST",
            "unix:///run/headjack-gvisor/docker.sock",
        )
    }
    pub fn is_podman(&self) -> bool {
        self.name == "podman"
    }

    /// Runs the docker CLI against this engine; returns (success, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (bool, String, String) {
        let out = std::process::Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", &self.host)
            .output()
            .expect("the docker CLI runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

pub fn busybox() -> String {
    std::env::var("HEADJACK_TEST_BUSYBOX")
        .unwrap_or_else(|_| "localhost/headjack-test/busybox:latest".into())
}

/// The static agent binary, built once per test process (build-static.sh), in a directory
/// of its own to bind-mount.
pub fn static_agent_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("build-static.sh");
        let out = std::process::Command::new(&script)
            .output()
            .expect("build-static.sh runs");
        assert!(
            out.status.success(),
            "build-static.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim().to_string());
        // A directory per build (named by the binary's content), shared by test processes of
        // the same build and never rewritten while containers may have it mounted.
        let bytes = std::fs::read(&bin).unwrap();
        let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
        });
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/agent-test-bin")
            .join(format!("{hash:016x}"));
        if !dir.join("headjack-agent").exists() {
            std::fs::create_dir_all(&dir).unwrap();
            let tmp = dir.join(format!(".headjack-agent.{}", std::process::id()));
            std::fs::write(&tmp, &bytes).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
            std::fs::rename(&tmp, dir.join("headjack-agent")).unwrap();
        }
        dir.canonicalize().unwrap()
    })
}

/// How to create the container.
#[derive(Clone, Default)]
pub struct Opts {
    pub image: Option<String>,
    pub args: Vec<String>,
    pub user: Option<String>,
    pub read_only: bool,
    pub cap_drop_all: bool,
    pub network_none: bool,
    pub memory: Option<i64>,
    pub tmpfs: Vec<(String, String)>,
    /// Keep the default log driver (the default here is "none").
    pub keep_logs: bool,
    /// The agent binary's path in the image (instead of the bind mount).
    pub agent_in_image: Option<String>,
}

/// A container removed (with its anonymous volumes) when dropped, also on test failure.
pub struct Container {
    pub engine: Engine,
    pub id: String,
    pub agent_path: String,
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self.engine.cli(&["rm", "-f", "-v", &self.id]);
    }
}

/// Creates a container whose PID 1 is the agent, attaches to it before start (so nothing
/// the agent says is missed), starts it and opens a channel over the attach stream.
pub async fn start_agent(engine: &Engine, opts: Opts) -> (Container, Channel) {
    let c = create_agent(engine, opts).await;
    let att = attach(&c).await;
    start(&c).await;
    let ch = Channel::open(att.0, att.1)
        .await
        .unwrap_or_else(|e| panic!("{}: handshake over attach: {e}", engine.name));
    (c, ch)
}

type Attached = (
    tokio::io::DuplexStream,
    std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
);

/// Attaches to the container's stdio: (the agent's stdout, its stdin).
async fn attach(c: &Container) -> Attached {
    let att = c
        .engine
        .docker
        .attach_container(
            &c.id,
            Some(
                AttachContainerOptionsBuilder::default()
                    .stdin(true)
                    .stdout(true)
                    .stderr(true)
                    .stream(true)
                    .build(),
            ),
        )
        .await
        .unwrap_or_else(|e| panic!("{}: attach: {e}", c.engine.name));
    (demux(att.output, c.engine.name), att.input)
}

/// A session over a new attach to a running container.
pub async fn attach_session(c: &Container) -> Channel {
    let (r, w) = attach(c).await;
    Channel::open(r, w)
        .await
        .unwrap_or_else(|e| panic!("{}: handshake over a new attach: {e}", c.engine.name))
}

pub async fn start(c: &Container) {
    c.engine
        .docker
        .start_container(
            &c.id,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await
        .unwrap_or_else(|e| panic!("{}: start: {e}", c.engine.name));
}

/// Creates (does not start) a container whose PID 1 will be the agent.
pub async fn create_agent(engine: &Engine, opts: Opts) -> Container {
    let agent_path = opts
        .agent_in_image
        .clone()
        .unwrap_or_else(|| "/hj/headjack-agent".into());
    let binds = opts
        .agent_in_image
        .is_none()
        .then(|| vec![format!("{}:/hj:ro", static_agent_dir().display())]);
    let host_config = HostConfig {
        binds,
        log_config: (!opts.keep_logs).then(|| HostConfigLogConfig {
            typ: Some("none".into()),
            config: None,
        }),
        readonly_rootfs: Some(opts.read_only),
        cap_drop: opts.cap_drop_all.then(|| vec!["ALL".into()]),
        security_opt: Some(vec!["no-new-privileges".into()]),
        network_mode: opts.network_none.then(|| "none".into()),
        memory: opts.memory,
        memory_swap: opts.memory,
        tmpfs: (!opts.tmpfs.is_empty()).then(|| opts.tmpfs.iter().cloned().collect()),
        ..Default::default()
    };
    let body = ContainerCreateBody {
        image: Some(opts.image.clone().unwrap_or_else(busybox)),
        entrypoint: Some(vec![agent_path.clone()]),
        cmd: Some(opts.args.clone()),
        user: opts.user.clone(),
        open_stdin: Some(true),
        stdin_once: Some(false),
        attach_stdin: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(false),
        labels: Some([("io.headjack.test".to_string(), "1".to_string())].into()),
        host_config: Some(host_config),
        ..Default::default()
    };
    let created = engine
        .docker
        .create_container(Some(CreateContainerOptionsBuilder::default().build()), body)
        .await
        .unwrap_or_else(|e| panic!("{}: create: {e}", engine.name));
    Container {
        engine: engine.clone(),
        id: created.id.clone(),
        agent_path,
    }
}

/// The engine's multiplexed output as a plain byte stream of the agent's stdout; its stderr
/// (diagnostics) goes to the test's stderr.
pub fn demux<S>(mut output: S, name: &'static str) -> tokio::io::DuplexStream
where
    S: futures_util::Stream<Item = Result<LogOutput, bollard::errors::Error>>
        + Unpin
        + Send
        + 'static,
{
    let (mut w, r) = tokio::io::duplex(256 << 10);
    tokio::spawn(async move {
        while let Some(item) = output.next().await {
            match item {
                Ok(LogOutput::StdOut { message }) | Ok(LogOutput::Console { message }) => {
                    if w.write_all(&message).await.is_err() {
                        break;
                    }
                }
                Ok(LogOutput::StdErr { message }) => {
                    eprint!("[{name} agent] {}", String::from_utf8_lossy(&message))
                }
                Ok(LogOutput::StdIn { .. }) => {}
                Err(e) => {
                    eprintln!("[{name}] attach stream ended: {e}");
                    break;
                }
            }
        }
    });
    r
}

/// A further session through the engine's exec of `headjack-agent relay`.
pub async fn relay_session(c: &Container, user: Option<&str>) -> Channel {
    let exec = c
        .engine
        .docker
        .create_exec(
            &c.id,
            ExecConfig {
                cmd: Some(vec![c.agent_path.clone(), "relay".into()]),
                attach_stdin: Some(true),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                tty: Some(false),
                user: user.map(String::from),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    match c.engine.docker.start_exec(&exec.id, None).await.unwrap() {
        StartExecResults::Attached { output, input } => {
            Channel::open(demux(output, c.engine.name), input)
                .await
                .unwrap_or_else(|e| panic!("{}: handshake over relay: {e}", c.engine.name))
        }
        StartExecResults::Detached => panic!("detached exec"),
    }
}

/// Lists the PIDs in the container whose environment holds `marker`, through the agent's
/// own file access (no shell needed).
pub async fn container_pids_with(ch: &Channel, marker: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in ch.list("/proc").await.unwrap() {
        let Ok(pid) = String::from_utf8_lossy(&e.name).parse::<u32>() else {
            continue;
        };
        let Ok(r) = ch.read_file(&format!("/proc/{pid}/environ"), None).await else {
            continue;
        };
        let Ok(env) = r.read_to_end().await else {
            continue;
        };
        if env.windows(marker.len()).any(|w| w == marker.as_bytes()) {
            out.push(pid);
        }
    }
    out
}
