//! Egress policies through the public API, on the engine under test (HEADJACK_TEST_HOST; the CI
//! runs this file on Docker and on Podman).
//!
//! The stand-in "outside": servers on the proxy's outside network (`headjack-egress`) under the
//! names `allowed.test`, `denied.test`, `pypi.mirror.test`, `files.mirror.test` — busybox httpd on
//! :80 and `tests/fixtures/egress/outside.py` on :443 (a test CA, a git repository, a package
//! index). Instances are spawned by headjack with `Spec::egress` from the egress tools image
//! (curl, git, pip, python3, apt; `tests/fixtures/egress`, built FROM the local Debian fixture) and
//! from the busybox fixture (wget). Everything made here is labelled `io.headjack.test=1` and
//! removed; the test fails if an instance network or the proxy is left behind.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use headjack::{Egress, ErrorKind, Instance, Network, Spec};
use sha2::{Digest, Sha256};

/// The `docker` CLI against the engine under test: (exit code, stdout, stderr).
fn docker(args: &[&str]) -> (i32, String, String) {
    let out = Command::new("docker")
        .args(args)
        .env("DOCKER_HOST", common::host())
        .env("DOCKER_BUILDKIT", "0")
        .stdin(Stdio::null())
        .output()
        .expect("the docker CLI runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    )
}

fn docker_ok(args: &[&str]) -> String {
    let (code, out, err) = docker(args);
    assert_eq!(code, 0, "docker {}: {out}\n{err}", args.join(" "));
    out
}

/// The tools image from tests/fixtures/egress, tagged by that directory's content (the same tag
/// headjack-egress's e2e test uses, so either builds it once per engine).
fn tools_image() -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/egress");
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
    let tag = format!(
        "localhost/headjack-test/egress-tools:{}",
        &hex::encode(h.finalize())[..16]
    );
    if docker(&["image", "inspect", "-f", "{{.Id}}", &tag]).0 != 0 {
        docker_ok(&[
            "build",
            "-q",
            "--label",
            "io.headjack.test=1",
            "-t",
            &tag,
            dir.to_str().unwrap(),
        ]);
    }
    tag
}

/// Removes the stand-in servers, also when a check panics.
struct Servers(Vec<String>);

impl Drop for Servers {
    fn drop(&mut self) {
        for c in self.0.iter().rev() {
            docker(&["rm", "-f", "-v", c]);
        }
    }
}

/// The tests here run one at a time: one counts networks, the other sweeps.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn network_exists(name: &str) -> bool {
    docker(&["network", "inspect", name]).0 == 0
}

async fn sh(i: &Instance, script: &str) -> (i32, String, String) {
    let out = i.exec(["sh", "-c", script]).await.expect("exec runs");
    (
        out.exit_code as i32,
        out.stdout_text().trim().to_string(),
        out.stderr_text().trim().to_string(),
    )
}

#[tokio::test]
async fn bad_policies_are_clear_errors_and_create_nothing() {
    let _serial = SERIAL.lock().await;
    let client = common::client().await;
    let before = docker(&["network", "ls", "-q"]).1;
    let cases = [
        (
            common::spec().egress(Egress::allow(["https://pypi.org"])),
            "\"https://pypi.org\"",
        ),
        (
            common::spec().egress(Egress::allow(["pypi.org", "*.*.org"])),
            "\"*.*.org\"",
        ),
        (
            common::spec().egress(Egress::deny(["10.0.0.1/8"])),
            "10.0.0.0/8",
        ),
        (
            common::spec().egress(Egress::allow(["github.com:0"])),
            "github.com:0",
        ),
        (
            common::spec()
                .egress(Egress::allow(Vec::<String>::new()))
                .network(Network::None),
            "network `none`",
        ),
        (
            common::spec()
                .egress(Egress::allow(["pypi.org"]))
                .network(Network::Named("somenet".into())),
            "\"somenet\"",
        ),
    ];
    for (spec, says) in cases {
        let e = client.spawn(spec).await.expect_err(says);
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{says}: {e}");
        assert!(e.message().contains(says), "{says}: {e}");
    }
    assert_eq!(
        docker(&["network", "ls", "-q"]).1,
        before,
        "a network was made"
    );

    // An instance spawned without a policy has no proxy to talk to.
    let plain = client.spawn(common::spec()).await.unwrap();
    let e = plain
        .set_egress(Egress::allow(["pypi.org"]))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    assert!(e.message().contains("without an egress policy"), "{e}");
    let e = plain.egress_log().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    plain.remove().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egress_end_to_end() {
    let _serial = SERIAL.lock().await;
    let client = common::client().await;
    let t0 = Instant::now();
    let tools = tools_image();
    let busybox = common::busybox();
    eprintln!("tools image ready ({:.1?})", t0.elapsed());

    let policy = ["allowed.test", "*.mirror.test"];
    let t = Instant::now();
    let cl = client
        .spawn(
            Spec::new()
                .base(&tools)
                .label("io.headjack.test", "1")
                .engine_exec(common::engine_exec())
                .egress(Egress::allow(policy)),
        )
        .await
        .expect("spawn with an egress policy");
    eprintln!("spawned with a policy in {:.1?}", t.elapsed());
    let bb = client
        .spawn(common::spec().egress(Egress::allow(["allowed.test"])))
        .await
        .expect("spawn busybox with an egress policy");
    let cl_net = format!("headjack-{}", cl.id());
    let bb_net = format!("headjack-{}", bb.id());
    assert!(network_exists(&cl_net) && network_exists(&bb_net));

    // The stand-in outside, on the proxy's outside network.
    let p = format!("hj-egress-test-{}", std::process::id());
    let mut servers = Servers(vec![]);
    let mut args = vec![
        "run",
        "-d",
        "--name",
        &p,
        "--label",
        "io.headjack.test=1",
        "--network",
        "headjack-egress",
    ];
    for a in [
        "allowed.test",
        "denied.test",
        "pypi.mirror.test",
        "files.mirror.test",
    ] {
        args.extend(["--network-alias", a]);
    }
    args.extend([tools.as_str(), "python3", "/opt/egress-test/outside.py"]);
    servers.0.push(p.clone());
    docker_ok(&args);
    let web = format!("{p}-web");
    servers.0.push(web.clone());
    let netns = format!("container:{p}");
    docker_ok(&[
        "run",
        "-d",
        "--name",
        &web,
        "--label",
        "io.headjack.test=1",
        "--network",
        &netns,
        &busybox,
        "sh",
        "-c",
        "mkdir -p /www && echo hello-from-httpd > /www/index.html && exec httpd -f -p 80 -h /www",
    ]);
    let srv_ip = docker_ok(&[
        "inspect",
        &p,
        "-f",
        "{{(index .NetworkSettings.Networks \"headjack-egress\").IPAddress}}",
    ]);
    let deadline = Instant::now() + Duration::from_secs(90);
    while docker(&["exec", &p, "test", "-f", "/srv/outside/ready"]).0 != 0 {
        assert!(
            Instant::now() < deadline,
            "outside.py did not start: {:?}",
            docker(&["logs", &p])
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ca = docker_ok(&["exec", &p, "cat", "/srv/outside/tls/ca.pem"]);
    cl.write_file(
        "/usr/local/share/ca-certificates/hj-egress-test.crt",
        format!("{ca}\n"),
    )
    .await
    .unwrap();
    let (code, _, err) = sh(&cl, "update-ca-certificates >/dev/null").await;
    assert_eq!(code, 0, "{err}");

    let mut failures = Vec::new();
    macro_rules! check {
        ($name:expr, $cond:expr, $got:expr) => {{
            let ok = $cond;
            eprintln!("{} {}", if ok { "ok     " } else { "FAILED " }, $name);
            if !ok {
                failures.push(format!("{}: got {:?}", $name, $got));
            }
        }};
    }
    let curl = |args: String| {
        let cl = &cl;
        async move { sh(cl, &format!("curl -sS -m 10 {args}")).await }
    };

    let r = curl("http://allowed.test/".into()).await;
    check!(
        "curl: allowed name over HTTP",
        r.0 == 0 && r.1 == "hello-from-httpd",
        r
    );
    let r = curl("https://allowed.test/".into()).await;
    check!(
        "curl: allowed name over HTTPS",
        r.0 == 0 && r.1 == "hello over tls",
        r
    );
    let r = curl("-o /dev/null -w '%{http_code}' https://files.mirror.test/simple/".into()).await;
    check!("curl: a wildcard pattern", r.1 == "200", r);
    let r = curl("-w '\\n%{http_code}' http://denied.test/".into()).await;
    check!(
        "curl: a denied name over HTTP gets a 403 saying why",
        r.1.ends_with("403") && r.1.contains("not in the allow-list"),
        r
    );
    let r = curl("https://denied.test/".into()).await;
    check!(
        "curl: a denied name over HTTPS",
        r.0 != 0 && r.2.contains("403"),
        r
    );
    let r = curl(format!("-w '\\n%{{http_code}}' http://{srv_ip}/")).await;
    check!(
        "curl: a raw IP is denied",
        r.1.ends_with("403") && r.1.contains("raw IP address"),
        r
    );
    let r = curl(format!("-k https://{srv_ip}/")).await;
    check!("curl: CONNECT to a raw IP is denied", r.0 != 0, r);
    let r = sh(&cl, "curl -sS -m 4 --noproxy '*' http://allowed.test/").await;
    check!(
        "a program ignoring the proxy reaches nothing (by name)",
        r.0 != 0 && !r.1.contains("hello"),
        r
    );
    let r = sh(
        &cl,
        &format!("curl -sS -m 4 --noproxy '*' http://{srv_ip}/"),
    )
    .await;
    check!(
        "a program ignoring the proxy reaches nothing (by address)",
        r.0 != 0 && !r.1.contains("hello"),
        r
    );
    let r = sh(&cl, "getent hosts allowed.test").await;
    check!(
        "DNS: an allowed name resolves",
        r.0 == 0 && r.1.contains(&srv_ip),
        r
    );
    let r = sh(&cl, "getent hosts denied.test").await;
    check!("DNS: a denied name does not", r.0 == 2, r);
    let r = sh(&bb, "wget -q -O- http://allowed.test/").await;
    check!(
        "wget (busybox): allowed",
        r.0 == 0 && r.1 == "hello-from-httpd",
        r
    );
    let r = sh(&bb, "wget -q -O- http://denied.test/").await;
    check!(
        "wget (busybox): denied, with the reason",
        r.0 != 0
            && r.2
                .contains("403 Forbidden by headjack egress policy (denied.test:80)"),
        r
    );
    let r = sh(
        &cl,
        "rm -rf /tmp/r && git clone -q https://allowed.test/repo.git /tmp/r && cat /tmp/r/README",
    )
    .await;
    check!(
        "git clone over HTTPS",
        r.0 == 0 && r.1.contains("cloned through the egress proxy"),
        r
    );
    let r = sh(
        &cl,
        "rm -rf /tmp/pkgs && PIP_CERT=/etc/ssl/certs/ca-certificates.crt PIP_DISABLE_PIP_VERSION_CHECK=1 \
         pip install -q --no-cache-dir --retries 0 --timeout 10 --target /tmp/pkgs \
         --index-url https://pypi.mirror.test/simple/ hjdemo && PYTHONPATH=/tmp/pkgs python3 -c 'import hjdemo; print(hjdemo.VALUE)'",
    )
    .await;
    check!(
        "pip install from a local index behind a wildcard",
        r.0 == 0 && r.1.ends_with("42"),
        r
    );
    let r = sh(
        &cl,
        "cat /etc/apt/apt.conf.d/99headjack-egress; env | grep -i _proxy= | sort",
    )
    .await;
    check!(
        "apt's proxy setting and the proxy variables are provided",
        r.1.contains("Acquire::https::Proxy \"http://")
            && [
                "HTTP_PROXY=",
                "HTTPS_PROXY=",
                "http_proxy=",
                "https_proxy=",
                "NO_PROXY=",
                "no_proxy="
            ]
            .iter()
            .all(|k| r.1.contains(k)),
        r
    );

    // A live change applies to the next connection.
    cl.set_egress(Egress::allow(["denied.test"])).await.unwrap();
    let now_denied = curl("-o /dev/null -w '%{http_code}' http://allowed.test/".into()).await;
    let now_allowed = curl("-o /dev/null -w '%{http_code}' http://denied.test/".into()).await;
    check!(
        "set_egress: the next request follows the new policy",
        now_denied.1 == "403" && now_allowed.1 == "200",
        (now_denied, now_allowed)
    );
    let e = cl
        .set_egress(Egress::allow(["bad pattern"]))
        .await
        .unwrap_err();
    check!(
        "set_egress: a bad pattern is refused",
        e.kind() == ErrorKind::InvalidArgument && e.message().contains("\"bad pattern\""),
        e
    );
    let back = curl("-o /dev/null -w '%{http_code}' http://denied.test/".into()).await;
    check!("a refused change keeps the policy", back.1 == "200", back);

    let log = cl.egress_log().await.unwrap();
    let has = |via: &str, host: &str, allowed: bool| {
        log.iter()
            .any(|d| d.via == via && d.host == host && d.allowed == allowed && !d.reason.is_empty())
    };
    for (via, host, allowed) in [
        ("http", "allowed.test", true),
        ("connect", "allowed.test", true),
        ("connect", "files.mirror.test", true),
        ("connect", "pypi.mirror.test", true),
        ("http", "denied.test", false),
        ("connect", "denied.test", false),
        ("http", srv_ip.as_str(), false),
        ("dns", "allowed.test", true),
        ("dns", "denied.test", false),
        // After the change.
        ("http", "allowed.test", false),
        ("http", "denied.test", true),
    ] {
        check!(
            format!(
                "the log shows {via} {host} {}",
                if allowed { "allowed" } else { "denied" }
            ),
            has(via, host, allowed),
            log.iter()
                .map(|d| format!(
                    "{} {} {:?} {} {}",
                    d.via, d.host, d.port, d.allowed, d.reason
                ))
                .collect::<Vec<_>>()
        );
    }
    let bb_log = bb.egress_log().await.unwrap();
    check!(
        "each instance has its own log",
        bb_log.iter().all(|d| !d.host.contains("mirror"))
            && bb_log.iter().any(|d| d.host == "denied.test"),
        bb_log
    );

    // A restarted proxy (its container restarted, as the engine's restart policy does after a
    // crash) serves its instances again with their current policies, from its state volume.
    let proxy = docker_ok(&["ps", "-q", "--filter", "label=io.headjack.egress=proxy"]);
    let proxy = proxy.lines().next().unwrap_or_default().to_string();
    docker_ok(&["restart", "-t", "1", &proxy]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let after = loop {
        let r = curl("-o /dev/null -w '%{http_code}' http://denied.test/".into()).await;
        if r.1 == "200" || Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let still_denied = curl("-o /dev/null -w '%{http_code}' http://allowed.test/".into()).await;
    check!(
        "a restarted proxy keeps each instance's current policy",
        after.1 == "200" && still_denied.1 == "403",
        (after, still_denied)
    );

    // Removal takes the instance networks with it; sweep removes the proxy no instance needs.
    drop(servers);
    Instance::remove_all([cl, bb]).await.unwrap();
    check!(
        "remove: instance networks are gone",
        !network_exists(&cl_net) && !network_exists(&bb_net),
        (&cl_net, &bb_net)
    );
    client.sweep().await.unwrap();
    let others = docker(&[
        "network",
        "ls",
        "-q",
        "--filter",
        "label=io.headjack.egress=instance",
    ])
    .1;
    if others.is_empty() {
        let proxies = docker(&["ps", "-aq", "--filter", "label=io.headjack.egress=proxy"]).1;
        let state = docker(&[
            "volume",
            "ls",
            "-q",
            "--filter",
            "label=io.headjack.egress=state",
        ])
        .1;
        check!(
            "sweep: the proxy, its state volume and its outside network are gone",
            proxies.is_empty() && state.is_empty() && !network_exists("headjack-egress"),
            (proxies, state)
        );
    } else {
        eprintln!("other instance networks exist ({others}); the proxy stays, as it should");
    }
    assert!(
        failures.is_empty(),
        "{} check(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
