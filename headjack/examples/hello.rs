//! Spawns an environment and runs one command in it.
//!
//! `cargo run -p headjack --example hello -- [BASE] [CMD...]`: BASE is any base string (an image,
//! a Dockerfile path, or "" for the default base); CMD defaults to `uname -a`.

use std::time::Duration;

#[tokio::main]
async fn main() -> headjack::Result<()> {
    let mut args = std::env::args().skip(1);
    let base = args
        .next()
        .unwrap_or_else(|| "localhost/headjack-test/busybox:latest".into());
    let mut cmd: Vec<String> = args.collect();
    if cmd.is_empty() {
        cmd = vec!["uname".into(), "-a".into()];
    }
    let env = headjack::spawn(
        headjack::Spec::new()
            .base(base.as_str())
            .network(headjack::Network::None),
    )
    .await?;
    eprintln!("spawned {} from {}", env.id(), env.image());
    let out = env
        .exec(headjack::Exec::new(cmd).timeout(Duration::from_secs(60)))
        .await?;
    print!("{}", out.stdout_text());
    eprint!("{}", out.stderr_text());
    env.remove().await?;
    std::process::exit(out.exit_code as i32);
}
