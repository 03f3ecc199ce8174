//! Test helper (headjack/tests/agent.rs): streams a host file into an instance and back through
//! the in-container agent, then prints this process's peak resident memory (VmHWM, kB) — the
//! copy must not hold the file in memory.
//!
//! Usage: stream_child <host file in> <host file out>

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> headjack::Result<()> {
    let mut args = std::env::args().skip(1);
    let (from, to) = (
        args.next().expect("a file in"),
        args.next().expect("a file out"),
    );
    let host = std::env::var("HEADJACK_TEST_HOST")
        .unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    let base = std::env::var("HEADJACK_TEST_BUSYBOX")
        .unwrap_or_else(|_| "localhost/headjack-test/busybox:latest".into());
    let client = headjack::Client::connect_to(&host).await?;
    let env = client
        .spawn(
            headjack::Spec::new()
                .base(base)
                // In memory: the test moves a gigabyte through it.
                .mount(headjack::Mount::tmpfs("/data", None))
                .label("io.headjack.test", "1"),
        )
        .await?;
    env.copy_file_in(&from, "/data/big").await?;
    let written = env.copy_file_out("/data/big", &to).await?;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let peak = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .map(|v| v.trim().trim_end_matches(" kB").to_string())
        .unwrap_or_default();
    println!("{written} {peak}");
    Ok(())
}
