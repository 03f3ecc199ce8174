//! Test helper (headjack/tests/agent.rs): spawns a kept, detached instance, starts a background
//! process in it that prints a counter, prints `<instance id> <process id>`, then waits to be
//! killed with SIGKILL — after which another process reattaches to the still-running process.

#[tokio::main(flavor = "current_thread")]
async fn main() -> headjack::Result<()> {
    let host = std::env::var("HEADJACK_TEST_HOST")
        .unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    let base = std::env::var("HEADJACK_TEST_BUSYBOX")
        .unwrap_or_else(|_| "localhost/headjack-test/busybox:latest".into());
    let client = headjack::Client::connect_to(&host).await?;
    let env = client
        .spawn(
            headjack::Spec::new()
                .base(base)
                .detached(true)
                .expires_after(std::time::Duration::from_secs(600))
                .label("io.headjack.test", "1"),
        )
        .await?;
    env.keep();
    let counter = env
        .start_process([
            "sh",
            "-c",
            "i=0; while :; do echo tick-$i; i=$((i+1)); sleep 0.1; done",
        ])
        .await?;
    println!("{} {}", env.id(), counter.id());
    tokio::time::sleep(std::time::Duration::from_secs(600)).await;
    Ok(())
}
