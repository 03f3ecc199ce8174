//! The proxy in-process on loopback, with upstream servers made here: every path of the HTTP
//! proxy, CONNECT, the DNS server and the control socket, without an engine. (The same behaviour
//! through real containers and real tools is in `e2e.rs`.)

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use headjack_egress::control::{PolicySpec, Request, Response, Via};
use headjack_egress::dns;
use headjack_egress::server::{Config, Control, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};
use tokio::time::timeout;

const T: Duration = Duration::from_secs(10);

struct Proxy {
    http: SocketAddr,
    dns: SocketAddr,
    ctl: String,
    control: Control,
    dir: PathBuf,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts a proxy whose /etc/hosts maps the test names to 127.0.0.1 and whose upstream DNS is a
/// stand-in that answers every A query with 127.0.0.1.
async fn start(tweak: impl FnOnce(&mut Config)) -> Proxy {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("hj-egress-inproc-{}-{n}", std::process::id()));
    std::fs::create_dir_all(dir.join("proc")).unwrap();
    std::fs::write(
        dir.join("hosts"),
        "127.0.0.1 allowed.test denied.test sub.wild.test\n",
    )
    .unwrap();
    let ctl = format!("headjack-egress-test-{}-{n}", std::process::id());
    let mut config = Config {
        http: "127.0.0.1:0".parse().unwrap(),
        dns: Some("127.0.0.1:0".parse().unwrap()),
        ctl: Some(ctl.clone()),
        upstream_dns: Some(vec![fake_dns().await]),
        resolv_conf: dir.join("resolv.conf"),
        hosts_file: dir.join("hosts"),
        proc_net: dir.join("proc"),
        allow_loopback: true,
        log_to_stderr: false,
        ..Config::default()
    };
    tweak(&mut config);
    let server = Server::bind(config).await.unwrap();
    let (http, dns, control) = (
        server.http_addr(),
        server.dns_addr().unwrap(),
        server.control(),
    );
    tokio::spawn(server.run());
    let proxy = Proxy {
        http,
        dns,
        ctl,
        control,
        dir,
    };
    allow(&proxy, &["allowed.test", "*.wild.test"]).await;
    proxy
}

async fn allow(p: &Proxy, patterns: &[&str]) {
    let r = p
        .control
        .request(Request::Set {
            source: "127.0.0.1".parse().unwrap(),
            instance: "test-instance".into(),
            policy: PolicySpec::Allow(patterns.iter().map(|s| s.to_string()).collect()),
        })
        .await;
    assert!(r.ok, "{r:?}");
}

async fn log(p: &Proxy) -> Vec<(Via, String, Option<u16>, bool, String)> {
    let r = p
        .control
        .request(Request::Log {
            source: "127.0.0.1".parse().unwrap(),
            since: 0,
            limit: None,
        })
        .await;
    r.entries
        .unwrap()
        .into_iter()
        .map(|e| (e.via, e.host, e.port, e.allowed, e.reason))
        .collect()
}

/// An upstream DNS server that answers A queries with 127.0.0.1 and anything else with no data.
async fn fake_dns() -> SocketAddr {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        while let Ok((n, peer)) = sock.recv_from(&mut buf).await {
            let msg = &buf[..n];
            let Ok(q) = dns::parse_query(msg) else {
                continue;
            };
            let mut r = dns::reply(msg, &q, dns::RCODE_NOERROR);
            if q.qtype == dns::TYPE_A {
                r[7] = 1;
                r.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 127, 0, 0, 1]);
            }
            let _ = sock.send_to(&r, peer).await;
        }
    });
    addr
}

/// An HTTP upstream: answers every request with `hello <request line>` and keeps the heads seen.
async fn http_upstream() -> (u16, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let seen = seen2.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    let n = s.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                while buf.len() < head_end + len {
                    let n = s.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                seen.lock().unwrap().push(head.clone());
                let body = format!(
                    "hello {} body={}",
                    head.lines().next().unwrap_or(""),
                    buf.len() - head_end
                );
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
                // Keep the connection open like a keep-alive server: the proxy must still end the exchange.
                tokio::time::sleep(Duration::from_secs(30)).await;
            });
        }
    });
    (port, seen)
}

/// A TCP upstream that optionally greets first (like SSH) and then echoes.
async fn echo_upstream(greeting: &'static [u8]) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let _ = s.write_all(greeting).await;
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    port
}

/// Sends `req` and reads until the proxy closes.
async fn exchange(proxy: SocketAddr, req: &[u8]) -> String {
    let mut s = TcpStream::connect(proxy).await.unwrap();
    s.write_all(req).await.unwrap();
    let mut out = Vec::new();
    timeout(T, s.read_to_end(&mut out))
        .await
        .expect("the proxy ends the exchange")
        .unwrap();
    String::from_utf8_lossy(&out).to_string()
}

async fn connect_tunnel(proxy: SocketAddr, target: &str) -> (TcpStream, String) {
    let mut s = TcpStream::connect(proxy).await.unwrap();
    s.write_all(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if timeout(T, s.read(&mut b)).await.unwrap().unwrap() == 0 {
            break;
        }
        head.push(b[0]);
    }
    (s, String::from_utf8_lossy(&head).to_string())
}

fn client_hello(sni: &str) -> Vec<u8> {
    let name = sni.as_bytes();
    let mut ext = vec![0, 0];
    ext.extend_from_slice(&((name.len() + 5) as u16).to_be_bytes());
    ext.extend_from_slice(&((name.len() + 3) as u16).to_be_bytes());
    ext.push(0);
    ext.extend_from_slice(&(name.len() as u16).to_be_bytes());
    ext.extend_from_slice(name);
    let mut body = vec![3, 3];
    body.extend_from_slice(&[1; 32]);
    body.extend_from_slice(&[0, 0, 2, 0x13, 0x01, 1, 0]);
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut rec = vec![0x16, 3, 1];
    rec.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
    rec.extend_from_slice(&[1, 0]);
    rec.extend_from_slice(&(body.len() as u16).to_be_bytes());
    rec.extend_from_slice(&body);
    rec
}

#[tokio::test]
async fn http_requests_are_filtered_rewritten_and_closed() {
    let p = start(|_| {}).await;
    let (port, seen) = http_upstream().await;
    let ok = exchange(
        p.http,
        format!("GET http://allowed.test:{port}/x?y HTTP/1.1\r\nHost: allowed.test:{port}\r\nProxy-Authorization: Basic c2VjcmV0\r\nProxy-Connection: keep-alive\r\nUser-Agent: t\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
    assert!(
        ok.contains("Connection: close\r\n")
            && !ok.contains("keep-alive")
            && !ok.contains("Keep-Alive"),
        "{ok}"
    );
    assert!(ok.ends_with("hello GET /x?y HTTP/1.1 body=0"), "{ok}");
    let head = seen.lock().unwrap()[0].clone();
    assert!(
        head.contains("Host: allowed.test:")
            && head.contains("User-Agent: t")
            && head.contains("Connection: close"),
        "{head}"
    );
    assert!(
        !head.contains("Proxy-"),
        "proxy headers are not forwarded: {head}"
    );

    // A body goes up while the response comes down.
    let body = "x".repeat(300_000);
    let post = exchange(
        p.http,
        format!("POST http://allowed.test:{port}/up HTTP/1.1\r\nHost: allowed.test:{port}\r\nContent-Length: {}\r\n\r\n{body}", body.len()).as_bytes(),
    )
    .await;
    assert!(
        post.ends_with("body=300000"),
        "{}",
        &post[..200.min(post.len())]
    );

    let denied = exchange(
        p.http,
        format!("GET http://denied.test:{port}/ HTTP/1.1\r\nHost: denied.test:{port}\r\n\r\n")
            .as_bytes(),
    )
    .await;
    assert!(
        denied.starts_with("HTTP/1.1 403 Forbidden by headjack egress policy (denied.test:"),
        "{denied}"
    );
    assert!(
        denied.contains("HTTP request to denied.test:")
            && denied.contains("not in the allow-list")
            && denied.contains("test-instance"),
        "{denied}"
    );

    let raw_ip = exchange(
        p.http,
        format!("GET http://127.0.0.1:{port}/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n")
            .as_bytes(),
    )
    .await;
    assert!(
        raw_ip.starts_with("HTTP/1.1 403") && raw_ip.contains("raw IP address"),
        "{raw_ip}"
    );

    let smuggle = exchange(
        p.http,
        format!("GET http://allowed.test:{port}/ HTTP/1.1\r\nHost: denied.test:{port}\r\n\r\n")
            .as_bytes(),
    )
    .await;
    assert!(
        smuggle.starts_with("HTTP/1.1 400") && smuggle.contains("Host header"),
        "{smuggle}"
    );

    for (req, status, why) in [
        (
            "GET /local HTTP/1.1\r\nHost: x\r\n\r\n",
            "400",
            "not an absolute URL",
        ),
        (
            "GET https://allowed.test/ HTTP/1.1\r\nHost: allowed.test\r\n\r\n",
            "400",
            "CONNECT",
        ),
        (
            "GET http://allowed.test/ HTTP/1.1\r\n\r\n",
            "400",
            "needs a Host header",
        ),
        (
            "GET http://a..test/ HTTP/1.1\r\nHost: a..test\r\n\r\n",
            "400",
            "empty label",
        ),
        (
            "CONNECT allowed.test HTTP/1.1\r\n\r\n",
            "400",
            "port is missing",
        ),
        ("\x16\x03\x01\x00\x05hello", "400", "malformed"),
    ] {
        let r = exchange(p.http, req.as_bytes()).await;
        assert!(
            r.starts_with(&format!("HTTP/1.1 {status}")) && r.contains(why),
            "{req:?}: {r}"
        );
    }

    let entries = log(&p).await;
    let summary: Vec<(Via, &str, bool)> =
        entries.iter().map(|e| (e.0, e.1.as_str(), e.3)).collect();
    assert_eq!(
        summary,
        [
            (Via::Http, "allowed.test", true),
            (Via::Http, "denied.test", false),
            (Via::Http, "127.0.0.1", false)
        ]
    );
    assert_eq!(entries[0].2, Some(port));
}

#[tokio::test]
async fn unknown_sources_are_denied() {
    let p = start(|_| {}).await;
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut s = sock.connect(p.http).await.unwrap();
    s.write_all(b"CONNECT allowed.test:443 HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    timeout(T, s.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.starts_with("HTTP/1.1 403")
            && out.contains("no egress policy is registered for source 127.0.0.2"),
        "{out}"
    );
}

#[tokio::test]
async fn tunnels_check_sni_and_pass_other_protocols() {
    let p = start(|_| {}).await;
    let echo = echo_upstream(b"").await;
    let ssh = echo_upstream(b"SSH-2.0-stand-in\r\n").await;

    // TLS with the tunnel's own name: passes, bytes reach the upstream unchanged.
    let (mut s, head) = connect_tunnel(p.http, &format!("allowed.test:{echo}")).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let hello = client_hello("Allowed.Test");
    s.write_all(&hello).await.unwrap();
    let mut back = vec![0u8; hello.len()];
    timeout(T, s.read_exact(&mut back)).await.unwrap().unwrap();
    assert_eq!(back, hello);

    // Another name in the ClientHello: an access_denied alert, then the end.
    let (mut s, _) = connect_tunnel(p.http, &format!("allowed.test:{echo}")).await;
    s.write_all(&client_hello("denied.test")).await.unwrap();
    let mut out = Vec::new();
    timeout(T, s.read_to_end(&mut out)).await.unwrap().unwrap();
    assert_eq!(out, [0x15, 3, 3, 0, 2, 2, 49]);

    // A hello split over two writes is reassembled.
    let (mut s, _) = connect_tunnel(p.http, &format!("sub.wild.test:{echo}")).await;
    let hello = client_hello("sub.wild.test");
    s.write_all(&hello[..7]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    s.write_all(&hello[7..]).await.unwrap();
    let mut back = vec![0u8; hello.len()];
    timeout(T, s.read_exact(&mut back)).await.unwrap().unwrap();
    assert_eq!(back, hello);

    // A server that speaks first (SSH): its greeting arrives before the client says anything.
    let (mut s, head) = connect_tunnel(p.http, &format!("allowed.test:{ssh}")).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut greet = vec![0u8; 18];
    timeout(T, s.read_exact(&mut greet)).await.unwrap().unwrap();
    assert_eq!(greet, b"SSH-2.0-stand-in\r\n");
    s.write_all(b"SSH-2.0-client\r\n").await.unwrap();
    let mut echoed = vec![0u8; 16];
    timeout(T, s.read_exact(&mut echoed))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(echoed, b"SSH-2.0-client\r\n");

    let (_, head) = connect_tunnel(p.http, &format!("denied.test:{echo}")).await;
    assert!(
        head.starts_with("HTTP/1.1 403 Forbidden by headjack egress policy (denied.test:"),
        "{head}"
    );
    let (_, head) = connect_tunnel(p.http, "allowed.test:1").await;
    assert!(head.starts_with("HTTP/1.1 502"), "{head}");

    let denied_sni = log(&p)
        .await
        .into_iter()
        .find(|e| e.1 == "denied.test" && e.0 == Via::Connect && e.4.contains("ClientHello"));
    assert!(
        denied_sni.is_some_and(|e| !e.3),
        "the SNI refusal is logged under the name it asked for"
    );
}

#[tokio::test]
async fn live_policy_changes_apply_to_the_next_connection_and_close_open_tunnels() {
    let p = start(|_| {}).await;
    let echo = echo_upstream(b"").await;
    let (mut open, head) = connect_tunnel(p.http, &format!("allowed.test:{echo}")).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    open.write_all(b"ping").await.unwrap();
    let mut b = [0u8; 4];
    timeout(T, open.read_exact(&mut b)).await.unwrap().unwrap();

    allow(&p, &["denied.test"]).await;
    let mut rest = Vec::new();
    timeout(T, open.read_to_end(&mut rest))
        .await
        .expect("the open tunnel is closed")
        .ok();
    let (_, head) = connect_tunnel(p.http, &format!("allowed.test:{echo}")).await;
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    let (_, head) = connect_tunnel(p.http, &format!("denied.test:{echo}")).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");

    let reasons: Vec<String> = log(&p)
        .await
        .into_iter()
        .map(|e| format!("{} {} {}", e.1, e.3, e.4))
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("allowed.test false tunnel closed: policy changed")),
        "{reasons:#?}"
    );

    // Removing the source: everything denied again (fail-closed).
    assert!(
        p.control
            .request(Request::Remove {
                source: "127.0.0.1".parse().unwrap()
            })
            .await
            .ok
    );
    let (_, head) = connect_tunnel(p.http, &format!("denied.test:{echo}")).await;
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
}

async fn dns_query(server: SocketAddr, from: &str, name: &str, qtype: u16) -> Vec<u8> {
    let sock = UdpSocket::bind(format!("{from}:0")).await.unwrap();
    let q = dns::build_query(0x4242, name, qtype).unwrap();
    sock.send_to(&q, server).await.unwrap();
    let mut buf = [0u8; 1500];
    let n = timeout(T, sock.recv(&mut buf))
        .await
        .expect("a DNS reply")
        .unwrap();
    buf[..n].to_vec()
}

#[tokio::test]
async fn dns_answers_only_allowed_names() {
    let p = start(|_| {}).await;
    let a = dns_query(p.dns, "127.0.0.1", "allowed.test", dns::TYPE_A).await;
    let ans = dns::parse_answer(&a, 0x4242, "allowed.test", dns::TYPE_A).unwrap();
    assert_eq!(
        (ans.rcode, ans.addrs),
        (
            dns::RCODE_NOERROR,
            vec!["127.0.0.1".parse::<IpAddr>().unwrap()]
        )
    );
    let rcode = |m: &[u8]| m[3] & 0xF;
    assert_eq!(
        rcode(&dns_query(p.dns, "127.0.0.1", "denied.test", dns::TYPE_A).await),
        dns::RCODE_NXDOMAIN
    );
    assert_eq!(
        rcode(&dns_query(p.dns, "127.0.0.1", "wild.test", dns::TYPE_AAAA).await),
        dns::RCODE_NXDOMAIN
    );
    let mx = dns_query(p.dns, "127.0.0.1", "x.wild.test", 15).await;
    assert_eq!(
        (rcode(&mx), mx[7]),
        (dns::RCODE_NOERROR, 0),
        "other types of allowed names: no data, not forwarded"
    );
    assert_eq!(
        rcode(&dns_query(p.dns, "127.0.0.2", "allowed.test", dns::TYPE_A).await),
        dns::RCODE_REFUSED
    );

    // TCP, length-prefixed.
    let mut s = TcpStream::connect(p.dns).await.unwrap();
    let q = dns::build_query(7, "sub.wild.test", dns::TYPE_A).unwrap();
    s.write_all(&(q.len() as u16).to_be_bytes()).await.unwrap();
    s.write_all(&q).await.unwrap();
    let len = timeout(T, s.read_u16()).await.unwrap().unwrap();
    let mut r = vec![0u8; usize::from(len)];
    s.read_exact(&mut r).await.unwrap();
    assert_eq!(
        dns::parse_answer(&r, 7, "sub.wild.test", dns::TYPE_A)
            .unwrap()
            .addrs
            .len(),
        1
    );

    // Garbage gets FORMERR or nothing, and the server keeps serving.
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(&[0xde, 0xad, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0], p.dns)
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let n = timeout(T, sock.recv(&mut buf)).await.unwrap().unwrap();
    assert_eq!(buf[..n][3] & 0xF, dns::RCODE_FORMERR);
    sock.send_to(b"x", p.dns).await.unwrap();
    assert_eq!(
        rcode(&dns_query(p.dns, "127.0.0.1", "allowed.test", dns::TYPE_A).await),
        dns::RCODE_NOERROR
    );

    let dns_log: Vec<(String, bool, Option<u16>)> = log(&p)
        .await
        .into_iter()
        .filter(|e| e.0 == Via::Dns)
        .map(|e| (e.1, e.3, e.2))
        .collect();
    assert!(
        dns_log.contains(&("allowed.test".into(), true, None))
            && dns_log.contains(&("denied.test".into(), false, None)),
        "{dns_log:?}"
    );
}

#[tokio::test]
async fn bounds_and_timeouts() {
    let p = start(|c| {
        c.limits.head_timeout = Duration::from_millis(300);
        c.limits.max_connections_per_source = 2;
        c.limits.idle_timeout = Duration::from_millis(500);
    })
    .await;
    let big = format!(
        "GET http://allowed.test/ HTTP/1.1\r\nX: {}\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    assert!(
        exchange(p.http, big.as_bytes())
            .await
            .starts_with("HTTP/1.1 431")
    );
    let many = format!(
        "GET http://allowed.test/ HTTP/1.1\r\n{}\r\n",
        "A: b\r\n".repeat(101)
    );
    assert!(
        exchange(p.http, many.as_bytes())
            .await
            .starts_with("HTTP/1.1 431")
    );
    assert!(
        exchange(p.http, b"GET http://allowed.test/ HTTP/1.1\r\n")
            .await
            .starts_with("HTTP/1.1 408")
    );

    // Two open tunnels are the limit for this source; a third gets 503; an idle one is closed.
    let echo = echo_upstream(b"").await;
    let (mut a, _) = connect_tunnel(p.http, &format!("allowed.test:{echo}")).await;
    let (_b, _) = connect_tunnel(p.http, &format!("allowed.test:{echo}")).await;
    let (_, head) = connect_tunnel(p.http, &format!("allowed.test:{echo}")).await;
    assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
    let mut rest = Vec::new();
    timeout(T, a.read_to_end(&mut rest))
        .await
        .expect("the idle tunnel is closed")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_subcommand_speaks_to_the_socket() {
    let p = start(|_| {}).await;
    let bin = env!("CARGO_BIN_EXE_headjack-egress");
    let ctl = p.ctl.clone();
    let run = move |args: Vec<String>, stdin: &'static str| {
        let ctl = ctl.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                use std::io::Write;
                let mut child = std::process::Command::new(bin)
                    .arg("ctl")
                    .args(args)
                    .env("HEADJACK_EGRESS_CTL", ctl)
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap();
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(stdin.as_bytes())
                    .unwrap();
                child.wait_with_output().unwrap()
            })
            .await
            .unwrap()
        }
    };
    let set = r#"{"op":"set","source":"10.9.0.2","instance":"other","policy":{"deny":["x.test"]}}"#;
    let out = run(vec![set.into(), r#"{"op":"list"}"#.into()], "").await;
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<Response> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| Response::parse_line(l).unwrap())
        .collect();
    assert!(lines[0].ok);
    assert_eq!(lines[1].sources.as_ref().unwrap().len(), 2);

    let out = run(
        vec![r#"{"op":"set","source":"10.9.0.2","policy":{"allow":["bad..name"]}}"#.into()],
        "",
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("empty label"));

    // stdin mode: lines in, responses out, garbage answered with an error, not a hang.
    let out = run(
        vec![],
        "{\"op\":\"health\"}\nnot json\n\n{\"op\":\"remove\",\"source\":\"10.9.0.2\"}\n",
    )
    .await;
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<Response> = text
        .lines()
        .map(|l| Response::parse_line(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[0].health.as_ref().unwrap().sources, 2);
    assert!(
        !lines[1].ok
            && lines[1]
                .error
                .as_ref()
                .unwrap()
                .contains("invalid control request")
    );
    assert!(lines[2].ok);

    let out = std::process::Command::new(bin)
        .args(["ctl", "{}"])
        .env("HEADJACK_EGRESS_CTL", "no-such-socket-here")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("cannot reach the control socket @no-such-socket-here")
    );
}

#[tokio::test]
async fn garbage_does_not_take_the_proxy_down() {
    let p = start(|_| {}).await;
    let mut seed = 0x9e3779b97f4a7c15u64;
    for i in 0..200 {
        let mut s = TcpStream::connect(p.http).await.unwrap();
        let len = (i * 37) % 900 + 1;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        let _ = s.write_all(&bytes).await;
        let _ = s.shutdown().await;
        let mut sink = Vec::new();
        let _ = timeout(T, s.read_to_end(&mut sink))
            .await
            .expect("every connection ends");
    }
    let (port, _) = http_upstream().await;
    let ok = exchange(
        p.http,
        format!("GET http://allowed.test:{port}/ HTTP/1.1\r\nHost: allowed.test:{port}\r\n\r\n")
            .as_bytes(),
    )
    .await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
}
