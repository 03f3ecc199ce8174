//! `headjack-egress`: the egress proxy (`serve`) and its control client (`ctl`).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::time::Duration;

use headjack_egress::control::{self, Response};
use headjack_egress::server::{Config, Server};

const USAGE: &str = "usage:
  headjack-egress serve [--http ADDR] [--dns ADDR|off] [--ctl NAME] [--idle-timeout SECS]
                        [--max-connections N] [--log-capacity N] [--verbose]
      Run the proxy: HTTP/CONNECT on --http (default 0.0.0.0:3128), DNS on --dns (UDP+TCP,
      default 0.0.0.0:53), control on the abstract unix socket @NAME (default @headjack-egress-ctl).
      Decisions go to stderr as JSON lines.
  headjack-egress ctl [REQUEST...]
      Talk to the running proxy's control socket: each REQUEST argument is sent as one JSON line
      and its response printed (exit 1 if any says ok:false); with no argument, stdin is copied to
      the socket and the socket to stdout.
  headjack-egress version";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") => serve(&args[1..]),
        Some("ctl") => ctl(&args[1..]),
        Some("version" | "--version" | "-V") => {
            println!("headjack-egress {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some("help" | "--help" | "-h") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        other => {
            eprintln!(
                "headjack-egress: {}\n{USAGE}",
                other.map_or("no command given".to_string(), |c| format!(
                    "unknown command `{c}`"
                ))
            );
            ExitCode::from(2)
        }
    }
}

fn serve(args: &[String]) -> ExitCode {
    let config = match parse_serve_args(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("headjack-egress serve: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("headjack-egress: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let server = Server::bind(config).await?;
        server.run().await
    });
    if let Err(e) = result {
        let line = serde_json::json!({"time": headjack_egress::time::now(), "event": "fatal", "error": e.to_string()});
        eprintln!("{line}");
    }
    ExitCode::FAILURE
}

fn parse_serve_args(args: &[String]) -> Result<Config, String> {
    let mut config = Config::default();
    let mut verbose = false;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "--verbose" {
            verbose = true;
            continue;
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let addr = |v: &str| {
            v.parse::<SocketAddr>()
                .map_err(|_| format!("{flag} {v}: not an address:port like 0.0.0.0:3128"))
        };
        let number = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("{flag} {v}: not a number"))
        };
        match flag.as_str() {
            "--http" => config.http = addr(value)?,
            "--dns" if value == "off" => config.dns = None,
            "--dns" => config.dns = Some(addr(value)?),
            "--ctl" if value.is_empty() => return Err("--ctl needs a socket name".into()),
            "--ctl" => config.ctl = Some(value.trim_start_matches('@').to_string()),
            "--idle-timeout" => {
                config.limits.idle_timeout = Duration::from_secs(number(value)?.max(1))
            }
            "--max-connections" => config.limits.max_connections = number(value)?.max(1) as usize,
            "--log-capacity" => config.limits.log_capacity = number(value)?.max(1) as usize,
            "--state" if value.is_empty() => return Err("--state needs a file path".into()),
            "--state" => config.state_file = Some(value.into()),
            _ => return Err(format!("unknown option `{flag}`")),
        }
    }
    let level = if verbose {
        tracing::Level::DEBUG
    } else {
        tracing::Level::INFO
    };
    let _ = tracing::subscriber::set_global_default(jsonlog::Subscriber::new(level));
    Ok(config)
}

fn ctl(args: &[String]) -> ExitCode {
    let name =
        std::env::var("HEADJACK_EGRESS_CTL").unwrap_or_else(|_| control::CTL_SOCKET.to_string());
    let stream = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
        .and_then(|a| UnixStream::connect_addr(&a));
    let stream = match stream {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "headjack-egress ctl: cannot reach the control socket @{name}: {e}; is `headjack-egress serve` running in this container?"
            );
            return ExitCode::from(2);
        }
    };
    let result = if args.is_empty() {
        ctl_stdio(stream)
    } else {
        ctl_args(stream, args)
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("headjack-egress ctl: {e}");
            ExitCode::from(2)
        }
    }
}

/// Sends each argument as one request; prints each response.
fn ctl_args(stream: UnixStream, args: &[String]) -> io::Result<ExitCode> {
    let mut w = stream.try_clone()?;
    let mut r = BufReader::new(stream);
    let mut out = io::stdout().lock();
    let mut failed = false;
    for req in args {
        w.write_all(req.trim().as_bytes())?;
        w.write_all(b"\n")?;
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the proxy closed the control connection",
            ));
        }
        failed |= Response::parse_line(line.trim()).map_or(true, |resp| !resp.ok);
        out.write_all(line.as_bytes())?;
    }
    out.flush()?;
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Copies stdin to the socket and the socket to stdout until the proxy has answered everything.
fn ctl_stdio(stream: UnixStream) -> io::Result<ExitCode> {
    let mut up = stream.try_clone()?;
    std::thread::spawn(move || {
        let _ = io::copy(&mut io::stdin().lock(), &mut up);
        let _ = up.shutdown(Shutdown::Write);
    });
    let mut down = stream;
    let mut out = io::stdout().lock();
    let mut buf = [0u8; 8192];
    loop {
        let n = down.read(&mut buf)?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n])?;
        out.flush()?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Diagnostics as JSON lines on stderr, like the decisions, so the container log is one format.
mod jsonlog {
    use std::fmt::Write as _;
    use std::io::Write as _;

    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Level, Metadata};

    pub(crate) struct Subscriber {
        level: Level,
    }

    impl Subscriber {
        pub(crate) fn new(level: Level) -> Self {
            Subscriber { level }
        }
    }

    struct Fields(serde_json::Map<String, serde_json::Value>);

    impl Visit for Fields {
        fn record_str(&mut self, field: &Field, value: &str) {
            self.0.insert(field.name().to_string(), value.into());
        }
        fn record_u64(&mut self, field: &Field, value: u64) {
            self.0.insert(field.name().to_string(), value.into());
        }
        fn record_i64(&mut self, field: &Field, value: i64) {
            self.0.insert(field.name().to_string(), value.into());
        }
        fn record_bool(&mut self, field: &Field, value: bool) {
            self.0.insert(field.name().to_string(), value.into());
        }
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            let mut s = String::new();
            let _ = write!(s, "{value:?}");
            self.0.insert(field.name().to_string(), s.into());
        }
    }

    impl tracing::Subscriber for Subscriber {
        fn enabled(&self, metadata: &Metadata<'_>) -> bool {
            metadata.level() <= &self.level && metadata.target().starts_with("headjack_egress")
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut fields = Fields(serde_json::Map::new());
            fields
                .0
                .insert("time".into(), headjack_egress::time::now().into());
            fields.0.insert("event".into(), "diagnostic".into());
            fields.0.insert(
                "level".into(),
                event
                    .metadata()
                    .level()
                    .as_str()
                    .to_ascii_lowercase()
                    .into(),
            );
            event.record(&mut fields);
            let mut line = serde_json::Value::Object(fields.0).to_string();
            line.push('\n');
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }
}
