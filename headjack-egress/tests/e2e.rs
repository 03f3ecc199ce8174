//! End to end on the real engines (Docker and Podman), in the topology the core will set up:
//!
//! - an "outside" network with stand-in servers under the names `allowed.test`, `denied.test`,
//!   `pypi.mirror.test`, `files.mirror.test` (busybox httpd on :80; `outside.py` on :443 with a
//!   test CA, a git repository and a package index; a server that speaks first on :2222);
//! - the proxy in its own container (FROM scratch + the static binary, built through the engine
//!   from a tar context), on the outside network and on two `--internal` networks;
//! - instances on the internal networks with the proxy environment and the proxy as DNS server.
//!
//! Every check drives an unmodified tool (curl, wget, git, pip, apt, openssl, getent) inside a
//! container. One test per engine; all checks run and the failures are listed together.
//! Needs `source tests/env/run/env.sh` (HEADJACK_TEST_DOCKER_HOST, HEADJACK_TEST_PODMAN_HOST,
//! HEADJACK_TEST_BUSYBOX, HEADJACK_TEST_DEBIAN) and the `docker` CLI.

mod support;

use std::time::{Duration, Instant};

use support::{Created, Engine, Run, env};

/// Runs named checks, keeps going after a failure, reports all at the end.
struct Checks {
    engine: &'static str,
    failures: Vec<String>,
}

impl Checks {
    fn check(&mut self, name: &str, f: impl FnOnce() -> Result<(), String>) {
        let t0 = Instant::now();
        let result = f();
        let took = t0.elapsed();
        match result {
            Ok(()) => eprintln!("[{}] ok      {name} ({took:.1?})", self.engine),
            Err(e) => {
                eprintln!("[{}] FAILED  {name} ({took:.1?})\n{e}", self.engine);
                self.failures.push(format!("{name}: {e}"));
            }
        }
    }
}

fn expect(cond: bool, what: &str, r: &Run) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(format!("expected {what}; got {}", r.all()))
    }
}

/// The busybox web server on the outside: an index page and a flat apt repository.
const WEB: &str = r#"mkdir -p /www/debian && echo hello-from-httpd > /www/index.html && : > /www/debian/Packages \
&& printf 'Origin: headjack-egress-test\nLabel: headjack-egress-test\nSuite: stable\nCodename: test\nDate: Thu, 01 Jan 2026 00:00:00 UTC\nSHA256:\n e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0 Packages\n' > /www/debian/Release \
&& exec httpd -f -p 80 -h /www"#;

fn suite(engine: &Engine) {
    let busybox = env("HEADJACK_TEST_BUSYBOX");
    env("HEADJACK_TEST_DEBIAN");
    let t0 = Instant::now();
    let proxy_image = engine.proxy_image();
    let tools = engine.tools_image();
    eprintln!("[{}] images ready ({:.1?})", engine.name, t0.elapsed());

    let created = Created::new(engine);
    let p = format!("hj-egress-e2e-{}-{}", engine.name, std::process::id());
    let outside = created.network(&format!("{p}-outside"), &[]);
    let internal = created.instance_network(&format!("{p}-internal"));
    let internal2 = created.instance_network(&format!("{p}-internal2"));

    let aliases = [
        "allowed.test",
        "denied.test",
        "pypi.mirror.test",
        "files.mirror.test",
    ];
    let mut srv_args = vec!["--network", &outside];
    for a in &aliases {
        srv_args.extend_from_slice(&["--network-alias", a]);
    }
    srv_args.extend_from_slice(&[&tools, "python3", "/opt/egress-test/outside.py"]);
    let srv = created.container(&format!("{p}-outside"), &srv_args);
    let shared_netns = format!("container:{srv}");
    created.container(
        &format!("{p}-web"),
        &["--network", &shared_netns, &busybox, "sh", "-c", WEB],
    );

    let px = created.container(
        &format!("{p}-proxy"),
        &[
            "--network",
            &outside,
            "--cap-drop",
            "ALL",
            "--cap-add",
            "NET_BIND_SERVICE",
            "--read-only",
            "--security-opt",
            "no-new-privileges",
            "--pids-limit",
            "64",
            "--memory",
            "64m",
            &proxy_image,
        ],
    );
    engine.ok(&["network", "connect", &internal, &px]);
    engine.ok(&["network", "connect", &internal2, &px]);
    let px_ip = engine.ip(&px, &internal);
    let px_ip2 = engine.ip(&px, &internal2);
    let proxy_url = format!("http://{px_ip}:3128");

    // An instance as the core starts it: proxy variables, the proxy as DNS server.
    let instance_env = |url: &str| -> Vec<String> {
        let mut v = Vec::new();
        for k in [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "http_proxy",
            "https_proxy",
            "ALL_PROXY",
            "all_proxy",
        ] {
            v.extend(["-e".to_string(), format!("{k}={url}")]);
        }
        for k in ["NO_PROXY", "no_proxy"] {
            v.extend(["-e".to_string(), format!("{k}=localhost,127.0.0.1,::1")]);
        }
        v
    };
    let start_instance =
        |name: &str, network: &str, dns: &str, url: &str, image_and_cmd: &[&str]| {
            let envs = instance_env(url);
            let mut args: Vec<&str> = vec!["--network", network, "--dns", dns];
            args.extend(envs.iter().map(String::as_str));
            args.extend_from_slice(image_and_cmd);
            created.container(name, &args)
        };
    let cl = start_instance(
        &format!("{p}-tools"),
        &internal,
        &px_ip,
        &proxy_url,
        &[&tools, "sleep", "infinity"],
    );
    let bb = start_instance(
        &format!("{p}-busybox"),
        &internal,
        &px_ip,
        &proxy_url,
        &[&busybox, "sleep", "3600"],
    );
    let stranger = start_instance(
        &format!("{p}-stranger"),
        &internal,
        &px_ip,
        &proxy_url,
        &[&busybox, "sleep", "3600"],
    );
    let neighbour = start_instance(
        &format!("{p}-neighbour"),
        &internal2,
        &px_ip2,
        &format!("http://{px_ip2}:3128"),
        &[
            &busybox,
            "sh",
            "-c",
            "mkdir -p /w && echo neighbour > /w/index.html && exec httpd -f -p 8080 -h /w",
        ],
    );
    let cl_ip = engine.ip(&cl, &internal);
    let bb_ip = engine.ip(&bb, &internal);
    let stranger_ip = engine.ip(&stranger, &internal);
    let neighbour_ip = engine.ip(&neighbour, &internal2);
    let srv_ip = engine.ip(&srv, &outside);

    // The stand-in outside is ready, and the instances trust its CA.
    let deadline = Instant::now() + Duration::from_secs(90);
    while engine.sh(&srv, "test -f /srv/outside/ready").code != 0 {
        assert!(
            Instant::now() < deadline,
            "[{}] outside.py did not start: {}",
            engine.name,
            engine.cmd(&["logs", &srv], None).all()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let ca = engine.sh(&srv, "cat /srv/outside/tls/ca.pem").out;
    let r = engine.cmd(
        &["exec", "-i", &cl, "sh", "-c", "cat > /usr/local/share/ca-certificates/hj-egress-test.crt && update-ca-certificates >/dev/null"],
        Some(ca.as_bytes()),
    );
    assert_eq!(r.code, 0, "installing the test CA: {}", r.all());
    // apt ignores the environment under sudo and in its sandbox: the core writes this file too.
    let apt_conf = format!(
        "Acquire::http::Proxy \"{proxy_url}/\";\nAcquire::https::Proxy \"{proxy_url}/\";\n"
    );
    let r = engine.cmd(
        &[
            "exec",
            "-i",
            &cl,
            "sh",
            "-c",
            "cat > /etc/apt/apt.conf.d/99headjack-egress",
        ],
        Some(apt_conf.as_bytes()),
    );
    assert_eq!(r.code, 0, "{}", r.all());

    let ctl = |request: String| -> Result<serde_json::Value, String> {
        let r = engine.cmd(&["exec", &px, "/headjack-egress", "ctl", &request], None);
        let v: serde_json::Value =
            serde_json::from_str(r.out.trim()).map_err(|e| format!("{e}: {}", r.all()))?;
        if v["ok"] == true {
            Ok(v)
        } else {
            Err(format!("ctl {request}: {}", r.all()))
        }
    };
    let set = |ip: &str, instance: &str, allow: &[&str]| {
        ctl(serde_json::json!({"op": "set", "source": ip, "instance": instance, "policy": {"allow": allow}}).to_string())
    };
    let tools_policy = ["allowed.test", "*.mirror.test", neighbour_ip.as_str()];
    set(&cl_ip, "tools", &tools_policy).unwrap();
    set(&bb_ip, "busybox", &["allowed.test"]).unwrap();
    set(&neighbour_ip, "neighbour", &[]).unwrap();
    eprintln!(
        "[{}] topology ready ({:.1?}): proxy {px_ip}/{px_ip2}, tools {cl_ip}, busybox {bb_ip}, stranger {stranger_ip}, neighbour {neighbour_ip}, outside {srv_ip}",
        engine.name,
        t0.elapsed()
    );
    for ip in [
        &px_ip,
        &px_ip2,
        &cl_ip,
        &bb_ip,
        &stranger_ip,
        &neighbour_ip,
        &srv_ip,
    ] {
        assert!(
            ip.parse::<std::net::IpAddr>().is_ok(),
            "[{}] an address could not be read: {ip:?}",
            engine.name
        );
    }

    let mut c = Checks {
        engine: engine.name,
        failures: vec![],
    };
    let curl = |args: &str| engine.sh(&cl, &format!("curl -sS -m 10 {args}"));

    c.check("curl: allowed name over HTTP", || {
        let r = curl("http://allowed.test/");
        expect(
            r.code == 0 && r.out.trim() == "hello-from-httpd",
            "the page",
            &r,
        )
    });
    c.check(
        "curl: allowed name over HTTPS (CONNECT, SNI matches)",
        || {
            let r = curl("https://allowed.test/");
            expect(
                r.code == 0 && r.out.trim() == "hello over tls",
                "the page",
                &r,
            )
        },
    );
    c.check("curl: wildcard pattern", || {
        let r = curl("-o /dev/null -w '%{http_code}' https://files.mirror.test/simple/");
        expect(r.code == 0 && r.out == "200", "200", &r)
    });
    c.check("curl: denied name over HTTP gets 403 saying why", || {
        let r = curl("-w '\\n%{http_code}' http://denied.test/");
        expect(
            r.out.ends_with("403") && r.out.contains("HTTP request to denied.test:80 denied for instance tools: not in the allow-list"),
            "a 403 that names the host, the instance and the reason",
            &r,
        )
    });
    c.check("curl: denied name over HTTPS", || {
        let r = curl("https://denied.test/");
        expect(
            r.code == 56 && r.err.contains("CONNECT tunnel failed, response 403"),
            "CONNECT refused with 403",
            &r,
        )
    });
    c.check("curl: the apex of a wildcard is not covered", || {
        let r = curl("-o /dev/null -w '%{http_code}' http://mirror.test/");
        expect(r.out == "403", "403", &r)
    });
    c.check("curl: raw IPs are denied", || {
        let http = curl(&format!("-w '\\n%{{http_code}}' http://{srv_ip}/"));
        let tls = curl(&format!("-k https://{srv_ip}/"));
        expect(
            http.out.ends_with("403") && http.out.contains("raw IP address"),
            "403 for a raw IP",
            &http,
        )?;
        expect(tls.code == 56, "CONNECT to a raw IP refused", &tls)
    });
    c.check("a program that ignores the proxy reaches nothing", || {
        let by_name = engine.sh(&cl, "curl -sS -m 4 --noproxy '*' http://allowed.test/");
        let by_ip = engine.sh(
            &cl,
            &format!("curl -sS -m 4 --noproxy '*' http://{srv_ip}/"),
        );
        expect(
            by_name.code != 0 && !by_name.out.contains("hello"),
            "no connection by name",
            &by_name,
        )?;
        expect(
            by_ip.code != 0 && !by_ip.out.contains("hello"),
            "no connection by address",
            &by_ip,
        )
    });
    // Where the host's address and an engine DNS server would sit on the instance network.
    let gateway = engine.ok(&[
        "network",
        "inspect",
        &internal,
        "-f",
        "{{range .IPAM.Config}}{{.Gateway}}{{end}}",
    ]);
    // Podman prints "<nil>" for a network without one.
    let gateway = if gateway.is_empty() || gateway == "<nil>" {
        String::new()
    } else {
        gateway
    };
    assert!(
        gateway.is_empty() || gateway.parse::<std::net::IpAddr>().is_ok(),
        "gateway {gateway:?}"
    );
    c.check("the host is out of reach on the instance network", || {
        if gateway.is_empty() {
            return Ok(()); // Podman without DNS: the network has no gateway, the bridge no address
        }
        // bash reports the errno: "Connection refused" means the host answered.
        let r = engine.sh(&cl, &format!("timeout 3 bash -c '</dev/tcp/{gateway}/1'"));
        expect(
            r.code != 0 && !r.err.contains("refused"),
            "no answer from the host's address",
            &r,
        )
    });
    c.check("no DNS server but the proxy answers the instance", || {
        let conf = engine.sh(&bb, "grep nameserver /etc/resolv.conf");
        let servers: Vec<&str> = conf
            .out
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .collect();
        expect(
            !servers.is_empty() && servers.iter().all(|s| *s == px_ip || *s == "127.0.0.11"),
            "only the proxy (or Docker's embedded DNS, which forwards to it) in resolv.conf",
            &conf,
        )?;
        if gateway.is_empty() {
            return Ok(());
        }
        // Any answer (NXDOMAIN included) means a DNS server listens there.
        let r = engine.sh(
            &bb,
            &format!("timeout 5 nslookup allowed.test {gateway} 2>&1"),
        );
        let silent = r.code == 124
            || r.code == 143
            || r.out.contains("no servers could be reached")
            || r.out.contains("can't connect");
        expect(
            r.code != 0 && silent,
            "no DNS server on the gateway address",
            &r,
        )
    });
    c.check("wget (busybox): allowed and denied", || {
        let ok = engine.sh(&bb, "wget -q -O- http://allowed.test/");
        let no = engine.sh(&bb, "wget -q -O- http://denied.test/");
        expect(
            ok.code == 0 && ok.out.trim() == "hello-from-httpd",
            "the page",
            &ok,
        )?;
        expect(
            no.code != 0
                && no
                    .err
                    .contains("403 Forbidden by headjack egress policy (denied.test:80)"),
            "403 with the reason phrase",
            &no,
        )
    });
    c.check("git clone over HTTPS", || {
        let r = engine.sh(&cl, "rm -rf /tmp/r && git clone -q https://allowed.test/repo.git /tmp/r && cat /tmp/r/README");
        expect(r.code == 0 && r.out.contains("cloned through the egress proxy"), "a clone", &r)
    });
    c.check("pip install from an HTTPS index behind a wildcard", || {
        let r = engine.sh(
            &cl,
            "rm -rf /tmp/pkgs && PIP_CERT=/etc/ssl/certs/ca-certificates.crt PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_BREAK_SYSTEM_PACKAGES=1 \
             pip install -q --no-cache-dir --retries 0 --timeout 10 --target /tmp/pkgs --index-url https://pypi.mirror.test/simple/ hjdemo \
             && PYTHONPATH=/tmp/pkgs python3 -c 'import hjdemo; print(hjdemo.VALUE)'",
        );
        expect(r.code == 0 && r.out.trim().ends_with("42"), "hjdemo installed", &r)
    });
    c.check("pip against a denied index shows the proxy's reason", || {
        let r = engine.sh(
            &cl,
            "PIP_DISABLE_PIP_VERSION_CHECK=1 pip download --no-cache-dir --retries 1 --timeout 10 -d /tmp/dl --index-url https://denied.test/simple/ hjdemo 2>&1",
        );
        expect(r.code != 0 && r.out.contains("403 Forbidden by headjack egress policy (denied.test:443)"), "pip failing with the reason", &r)
    });
    c.check("apt-get update through the proxy (apt.conf.d, no environment)", || {
        let r = engine.sh(
            &cl,
            "mkdir -p /tmp/apt-lists/partial && echo 'deb [trusted=yes] http://allowed.test/debian ./' > /tmp/hj.list \
             && env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin apt-get -o Dir::Etc::SourceList=/tmp/hj.list -o Dir::Etc::SourceParts=/nonexistent \
                -o Dir::State::Lists=/tmp/apt-lists -o APT::Sandbox::User=root update",
        );
        expect(r.code == 0 && r.out.contains("http://allowed.test/debian ./ Release"), "apt fetching the Release file", &r)
    });
    c.check("openssl: a ClientHello for another name inside an allowed tunnel is refused", || {
        let bad = engine.sh(&cl, &format!("openssl s_client -proxy {px_ip}:3128 -connect allowed.test:443 -servername denied.test </dev/null 2>&1"));
        let good = engine.sh(
            &cl,
            &format!("openssl s_client -proxy {px_ip}:3128 -connect allowed.test:443 -servername allowed.test -verify_return_error </dev/null 2>&1"),
        );
        expect(bad.code != 0 && bad.out.contains("alert access denied"), "a TLS access_denied alert", &bad)?;
        expect(good.code == 0 && good.out.contains("Verify return code: 0 (ok)"), "a verified handshake", &good)
    });
    c.check(
        "CONNECT to a plain TCP server that speaks first (like SSH)",
        || {
            let r = engine.sh(&cl, "python3 /opt/egress-test/connect.py allowed.test 2222");
            expect(
                r.code == 0
                    && r.out.contains("SSH-2.0-headjack-egress-test")
                    && r.out.contains("echo: hello through the tunnel"),
                "the greeting and the echo",
                &r,
            )
        },
    );
    c.check("DNS: allowed names resolve, denied names do not", || {
        let ok = engine.sh(&cl, "getent hosts allowed.test files.mirror.test");
        let no = engine.sh(&cl, "getent hosts denied.test");
        expect(
            ok.code == 0 && ok.out.contains(&srv_ip),
            "the outside server's address",
            &ok,
        )?;
        expect(no.code == 2, "not found", &no)
    });
    c.check("an unknown source is denied (fail-closed)", || {
        let r = engine.sh(&stranger, "wget -q -O- http://allowed.test/");
        expect(r.code != 0 && r.err.contains("403"), "403", &r)
    });
    c.check(
        "no instance reaches another instance's network through the proxy",
        || {
            let r = curl(&format!(
                "-w '\\n%{{http_code}}' http://{neighbour_ip}:8080/"
            ));
            expect(
                r.out.ends_with("403") && r.out.contains("internal network"),
                "403 from the guard, even though the policy lists it",
                &r,
            )
        },
    );
    c.check("a live policy change applies to the next request", || {
        set(&cl_ip, "tools", &["denied.test"])?;
        let now_denied = curl("-o /dev/null -w '%{http_code}' http://allowed.test/");
        let now_allowed = curl("-o /dev/null -w '%{http_code}' http://denied.test/");
        set(&cl_ip, "tools", &tools_policy)?;
        let back = curl("-o /dev/null -w '%{http_code}' http://allowed.test/");
        expect(now_denied.out == "403", "403 after the change", &now_denied)?;
        expect(
            now_allowed.out == "200",
            "200 after the change",
            &now_allowed,
        )?;
        expect(back.out == "200", "200 after restoring", &back)
    });
    c.check("the decision log lists each decision", || {
        let log = ctl(serde_json::json!({"op": "log", "source": cl_ip}).to_string())?;
        let entries = log["entries"].as_array().cloned().unwrap_or_default();
        let has = |via: &str, host: &str, allowed: bool, reason: &str| {
            entries.iter().any(|e| {
                e["via"] == via
                    && e["host"] == host
                    && e["allowed"] == allowed
                    && e["reason"].as_str().unwrap_or("").contains(reason)
            })
        };
        let want = [
            (
                "http",
                "allowed.test",
                true,
                "allowed by pattern `allowed.test`",
            ),
            (
                "connect",
                "allowed.test",
                true,
                "allowed by pattern `allowed.test`",
            ),
            ("connect", "files.mirror.test", true, "`*.mirror.test`"),
            ("http", "denied.test", false, "not in the allow-list"),
            ("connect", "denied.test", false, "not in the allow-list"),
            ("http", srv_ip.as_str(), false, "raw IP address"),
            (
                "connect",
                "denied.test",
                false,
                "ClientHello names another server",
            ),
            ("dns", "allowed.test", true, ""),
            ("dns", "denied.test", false, ""),
            ("http", neighbour_ip.as_str(), false, "internal network"),
        ];
        let missing: Vec<String> = want
            .iter()
            .filter(|w| !has(w.0, w.1, w.2, w.3))
            .map(|w| format!("{w:?}"))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "missing entries {missing:#?} in {}",
                serde_json::to_string_pretty(&entries).unwrap()
            ))
        }
    });
    c.check(
        "decisions reach the container log as JSON lines (unknown sources too)",
        || {
            let r = engine.cmd(&["logs", &px], None);
            let lines: Vec<serde_json::Value> = r
                .err
                .lines()
                .chain(r.out.lines())
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            let stranger_denied = lines.iter().any(|v| {
                v["event"] == "decision"
                    && v["source"] == stranger_ip.as_str()
                    && v["allowed"] == false
                    && v["instance"].is_null()
            });
            let tools_allowed = lines.iter().any(|v| {
                v["event"] == "decision" && v["instance"] == "tools" && v["allowed"] == true
            });
            expect(
                stranger_denied && tools_allowed,
                "JSON decision lines for the stranger and the tools instance",
                &r,
            )
        },
    );
    c.check("probe: the proxy reaches each instance", || {
        let r = ctl(serde_json::json!({"op": "probe", "source": cl_ip}).to_string())?;
        r["probe"]
            .as_str()
            .filter(|p| p.contains("answered"))
            .map(|_| ())
            .ok_or_else(|| r.to_string())
    });
    c.check("list and health", || {
        let list = ctl(r#"{"op":"list"}"#.to_string())?;
        let health = ctl(r#"{"op":"health"}"#.to_string())?;
        let n = list["sources"].as_array().map_or(0, Vec::len);
        if n == 3 && health["health"]["sources"] == 3 {
            Ok(())
        } else {
            Err(format!("{list}\n{health}"))
        }
    });

    eprintln!("[{}] suite done in {:.1?}", engine.name, t0.elapsed());
    drop(created);
    let left = engine
        .cmd(
            &[
                "ps",
                "-a",
                "--filter",
                &format!("name={p}"),
                "--format",
                "{{.Names}}",
            ],
            None,
        )
        .out;
    let nets = engine
        .cmd(
            &[
                "network",
                "ls",
                "--filter",
                &format!("name={p}"),
                "--format",
                "{{.Name}}",
            ],
            None,
        )
        .out;
    if !left.trim().is_empty() || !nets.trim().is_empty() {
        c.failures.push(format!(
            "the run left containers [{}] and networks [{}]",
            left.trim(),
            nets.trim()
        ));
    }
    assert!(
        c.failures.is_empty(),
        "[{}] {} check(s) failed:\n{}",
        engine.name,
        c.failures.len(),
        c.failures.join("\n\n")
    );
}

#[test]
fn docker() {
    suite(&Engine {
        name: "docker",
        host: env("HEADJACK_TEST_DOCKER_HOST"),
    });
}

#[test]
fn podman() {
    suite(&Engine {
        name: "podman",
        host: env("HEADJACK_TEST_PODMAN_HOST"),
    });
}
