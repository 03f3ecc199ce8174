//! The agent binary: PID 1 of an instance (default mode), `relay`, and the per-exec shim.

mod env;
mod files;
mod process;
mod relay;
mod ring;
mod server;
mod session;
mod shim;
mod sys;
mod tree;
mod users;

const USAGE: &str = "\
usage: headjack-agent [OPTIONS] [--] [INIT COMMAND...]
       headjack-agent relay [--socket NAME]
       headjack-agent --version

Runs as a container's init: serves a session on stdin/stdout and more on an abstract unix
socket, runs commands for its clients, reaps orphans. With an init command, supervises it and
exits with its status when it ends.

options:
  --user USER         default user of commands: name, uid, uid:gid, name:group (default: own)
  --ring-size BYTES   recent output kept per background process (default 1048576)
  --expires-at SECS   at this unix time, kill everything and exit
  --socket NAME       abstract socket name (default: headjack-agent.<pid namespace id>)
  --no-socket         serve stdin/stdout only
  --no-stdio          serve the socket only

relay: connects stdin/stdout to the agent's socket (run it through the engine's exec, as root).
";

#[derive(Debug, PartialEq, Eq)]
enum Mode {
    Agent(server::Config),
    Relay { socket: String },
    Version,
}

impl PartialEq for server::Config {
    fn eq(&self, o: &Self) -> bool {
        (
            &self.default_user,
            self.ring_bytes,
            self.expires_at,
            &self.socket,
            &self.init,
            self.stdio,
        ) == (
            &o.default_user,
            o.ring_bytes,
            o.expires_at,
            &o.socket,
            &o.init,
            o.stdio,
        )
    }
}
impl Eq for server::Config {}
impl std::fmt::Debug for server::Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("default_user", &self.default_user)
            .field("ring_bytes", &self.ring_bytes)
            .field("expires_at", &self.expires_at)
            .field("socket", &self.socket)
            .field("init", &self.init)
            .field("stdio", &self.stdio)
            .finish()
    }
}

/// The socket name both the agent and a relay in the same container derive: unique per PID
/// namespace, so agents sharing a network namespace (where abstract sockets live) never meet.
fn default_socket() -> String {
    let ns = std::fs::read_link("/proc/self/ns/pid").ok().and_then(|l| {
        let s = l.to_string_lossy().into_owned();
        let digits: String = s.chars().filter(|c| c.is_ascii_digit()).collect();
        (!digits.is_empty()).then_some(digits)
    });
    match ns {
        Some(n) => format!("headjack-agent.{n}"),
        None => "headjack-agent".into(),
    }
}

fn parse(args: &[String], default_socket: &str) -> Result<Mode, String> {
    let mut it = args.iter().peekable();
    let value = |it: &mut std::iter::Peekable<std::slice::Iter<'_, String>>, flag: &str| {
        it.next()
            .cloned()
            .ok_or_else(|| format!("{flag} needs a value"))
    };
    if it.peek().map(|s| s.as_str()) == Some("relay") {
        it.next();
        let mut socket = default_socket.to_string();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--socket" => socket = value(&mut it, "--socket")?,
                other => return Err(format!("relay: unknown argument {other:?}")),
            }
        }
        return Ok(Mode::Relay { socket });
    }
    let mut cfg = server::Config {
        default_user: None,
        ring_bytes: 1 << 20,
        expires_at: None,
        socket: Some(default_socket.to_string()),
        init: Vec::new(),
        stdio: true,
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--version" | "-V" => return Ok(Mode::Version),
            "--user" => cfg.default_user = Some(value(&mut it, "--user")?),
            "--ring-size" => {
                let v = value(&mut it, "--ring-size")?;
                cfg.ring_bytes = v
                    .parse()
                    .map_err(|_| format!("--ring-size {v:?}: not a number of bytes"))?;
            }
            "--expires-at" => {
                let v = value(&mut it, "--expires-at")?;
                cfg.expires_at = Some(
                    v.parse()
                        .map_err(|_| format!("--expires-at {v:?}: not unix seconds"))?,
                );
            }
            "--socket" => cfg.socket = Some(value(&mut it, "--socket")?),
            "--no-socket" => cfg.socket = None,
            "--no-stdio" => cfg.stdio = false,
            "--" => {
                cfg.init = it.cloned().collect();
                break;
            }
            s if s.starts_with('-') => return Err(format!("unknown option {s:?}")),
            _ => {
                cfg.init = std::iter::once(a.clone()).chain(it.cloned()).collect();
                break;
            }
        }
    }
    Ok(Mode::Agent(cfg))
}

/// Ensures descriptors 0-2 are open, so no pipe the agent makes can land on them.
fn occupy_stdio() {
    for fd in 0..3 {
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            let null = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
            if null >= 0 && null != fd {
                unsafe {
                    libc::dup2(null, fd);
                    libc::close(null);
                }
            }
        }
    }
}

pub fn main(args: Vec<String>) -> i32 {
    occupy_stdio();
    let mode = match parse(&args, &default_socket()) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("headjack-agent: {e}\n\n{USAGE}");
            return 2;
        }
    };
    match mode {
        Mode::Version => {
            println!("headjack-agent {}", env!("CARGO_PKG_VERSION"));
            0
        }
        Mode::Relay { socket } => relay::run(&socket),
        Mode::Agent(cfg) => match server::Agent::new(cfg) {
            Ok(agent) => agent.run(),
            Err(e) => {
                eprintln!("headjack-agent: cannot start: {e}");
                1
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn parses_arguments() {
        let base = server::Config {
            default_user: None,
            ring_bytes: 1 << 20,
            expires_at: None,
            socket: Some("sock".into()),
            init: vec![],
            stdio: true,
        };
        assert_eq!(parse(&[], "sock"), Ok(Mode::Agent(base.clone_cfg())));
        assert_eq!(
            parse(
                &s(&[
                    "--user",
                    "dev",
                    "--ring-size",
                    "10",
                    "--expires-at",
                    "99",
                    "sleep",
                    "-x"
                ]),
                "sock"
            ),
            Ok(Mode::Agent(server::Config {
                default_user: Some("dev".into()),
                ring_bytes: 10,
                expires_at: Some(99),
                init: s(&["sleep", "-x"]),
                ..base.clone_cfg()
            }))
        );
        assert_eq!(
            parse(&s(&["--no-socket", "--no-stdio", "--", "--weird"]), "sock"),
            Ok(Mode::Agent(server::Config {
                socket: None,
                stdio: false,
                init: s(&["--weird"]),
                ..base.clone_cfg()
            }))
        );
        assert_eq!(
            parse(&s(&["relay"]), "sock"),
            Ok(Mode::Relay {
                socket: "sock".into()
            })
        );
        assert_eq!(
            parse(&s(&["relay", "--socket", "x"]), "sock"),
            Ok(Mode::Relay { socket: "x".into() })
        );
        assert_eq!(parse(&s(&["--version"]), "sock"), Ok(Mode::Version));
        for bad in [
            &["--ring-size"][..],
            &["--ring-size", "lots"],
            &["--bogus"],
            &["relay", "extra"],
        ] {
            assert!(parse(&s(bad), "sock").is_err(), "{bad:?}");
        }
    }

    impl server::Config {
        fn clone_cfg(&self) -> server::Config {
            server::Config {
                default_user: self.default_user.clone(),
                ring_bytes: self.ring_bytes,
                expires_at: self.expires_at,
                socket: self.socket.clone(),
                init: self.init.clone(),
                stdio: self.stdio,
            }
        }
    }
}
