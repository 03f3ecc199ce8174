//! `headjack`: the command-line front door of the headjack library.
//!
//! A thin layer: every command parses its arguments, calls the public API of the `headjack`
//! crate, and prints the result. No behaviour lives here.

mod args;
mod commands;
mod egress;
mod mcp;
mod procs;
mod progress;
mod run;
mod sandbox;
mod term;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};

/// Exit code for headjack's own failures (bad flags, engine unreachable, bad base, …).
pub const EXIT_HEADJACK: u8 = 125;
/// Exit code when the command ran past `--timeout` and was killed.
pub const EXIT_TIMEOUT: u8 = 124;

/// A failure of the command-line tool: a one-line message and the exit code to leave with.
#[derive(Debug)]
pub struct Failure {
    /// What failed and what to do, one line.
    pub message: String,
    /// The exit code.
    pub code: u8,
}

impl Failure {
    /// A headjack failure (exit code 125).
    pub fn new(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            code: EXIT_HEADJACK,
        }
    }
}

impl From<headjack::Error> for Failure {
    fn from(e: headjack::Error) -> Failure {
        Failure::new(e.to_string())
    }
}

/// What a command ends with: an exit code (0 on success, or the inner command's) or a failure.
pub type Outcome = Result<u8, Failure>;

/// Prints `headjack: <message>` as one line on stderr.
pub fn report(message: &str) {
    let one_line: String = message.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "headjack: {one_line}");
    let _ = err.flush();
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return ExitCode::from(args::usage_error(e)),
    };
    let code = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => {
            let code = rt.block_on(dispatch(cli));
            // Blocked stdin readers must not hold the process open.
            rt.shutdown_background();
            code
        }
        Err(e) => {
            report(&format!("cannot start the async runtime: {e}"));
            EXIT_HEADJACK
        }
    };
    let _ = std::io::stdout().flush();
    ExitCode::from(code)
}

async fn dispatch(cli: Cli) -> u8 {
    let global = cli.global;
    let outcome = match cli.command {
        Command::Run(a) => run::run(&global, *a).await,
        Command::Exec(a) => run::exec(&global, a).await,
        Command::Build(a) => commands::build(&global, a).await,
        Command::Ps(a) => commands::ps(&global, a).await,
        Command::Logs(a) => commands::logs(&global, a).await,
        Command::Stop(a) => commands::stop(&global, a).await,
        Command::Rm(a) => commands::rm(&global, a).await,
        Command::Cp(a) => commands::cp(&global, a).await,
        Command::Commit(a) => commands::commit(&global, a).await,
        Command::Sweep => commands::sweep(&global).await,
        Command::Images(a) => commands::images(&global, a).await,
        Command::Info => commands::info(&global).await,
        Command::Mcp(a) => mcp::serve(&global, a).await,
        Command::Proc(a) => procs::proc(&global, a).await,
        Command::Stats(a) => sandbox::stats(&global, a).await,
        Command::Fork(a) => sandbox::fork(&global, a).await,
        Command::Volume(a) => sandbox::volume(&global, a).await,
        Command::Egress(a) => egress::egress(&global, a).await,
        Command::Checkpoint(a) => sandbox::checkpoint(&global, a).await,
        Command::Restore(a) => sandbox::restore(&global, a).await,
    };
    match outcome {
        Ok(code) => code,
        Err(f) => {
            report(&f.message);
            f.code
        }
    }
}

/// Connects to `--host` if given, else to the first engine that answers.
pub async fn connect(global: &args::Global) -> Result<headjack::Client, Failure> {
    let client = match &global.host {
        Some(h) => headjack::Client::connect_to(h).await?,
        None => headjack::Client::connect().await?,
    };
    Ok(client)
}
