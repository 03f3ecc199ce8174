//! Test helper for the cross-process single-flight test: resolves the Dockerfile given as the
//! first argument and prints `built <ref>` or `hit <ref>`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> headjack::Result<()> {
    let host = std::env::var("HEADJACK_TEST_HOST")
        .unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    let dockerfile = std::env::args()
        .nth(1)
        .expect("usage: resolve_child DOCKERFILE");
    let client = headjack::Client::connect_to(&host).await?;
    let r = client
        .resolve(&headjack::Spec::new().base(dockerfile.as_str()))
        .await?;
    println!("{} {}", if r.built { "built" } else { "hit" }, r.reference);
    Ok(())
}
