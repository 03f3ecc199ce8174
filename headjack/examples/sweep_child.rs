//! Test helper for the sweep test: spawns an instance, prints its ID, then waits to be killed.
//! Killed with SIGKILL, it leaves the instance behind for `Client::sweep` to find.

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
                .label("io.headjack.test", "1"),
        )
        .await?;
    println!("{}", env.id());
    tokio::time::sleep(std::time::Duration::from_secs(600)).await;
    Ok(())
}
