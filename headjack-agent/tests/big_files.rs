//! A 1 GiB file streamed into a container and back through the agent's attach channel, with
//! the host's memory bounded (this test binary holds nothing else, so its peak RSS is the
//! transfer's) and the agent's too.

mod common;

use common::engine::{Engine, Opts, start_agent};
use headjack_agent::client::{Channel, WriteFileRequest};

const SIZE: u64 = 1 << 30;
const CHUNK: usize = 256 << 10;

/// Deterministic bytes (xorshift), generated chunk by chunk so the host never holds the file.
struct Gen(u64);

impl Gen {
    fn fill(&mut self, buf: &mut [u8]) {
        for c in buf.chunks_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            let b = self.0.to_le_bytes();
            c.copy_from_slice(&b[..c.len()]);
        }
    }
}

fn fnv(mut h: u64, data: &[u8]) -> u64 {
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

fn status_kib(path: &str, field: &str) -> u64 {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

async fn agent_status(ch: &Channel, field: &str) -> u64 {
    let text = ch
        .read_file("/proc/1/status", None)
        .await
        .unwrap()
        .read_to_end()
        .await
        .unwrap();
    String::from_utf8_lossy(&text)
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

async fn one_gib_in_and_out(e: Engine) {
    let (_c, ch) = start_agent(
        &e,
        Opts {
            tmpfs: vec![("/data".into(), "size=1100m".into())],
            ..Opts::default()
        },
    )
    .await;
    let mut bytes = Gen(0x9e37_79b9_7f4a_7c15);
    let mut buf = vec![0u8; CHUNK];
    let mut sum = 0xcbf2_9ce4_8422_2325;
    let start = std::time::Instant::now();
    let mut w = ch
        .write_file(WriteFileRequest::new("/data/big.bin").owner(1000, 1000))
        .await
        .unwrap();
    let mut sent = 0u64;
    while sent < SIZE {
        bytes.fill(&mut buf);
        sum = fnv(sum, &buf);
        w.write(&buf).await.unwrap();
        sent += CHUNK as u64;
    }
    w.finish().await.unwrap();
    let write_secs = start.elapsed().as_secs_f64();
    let st = ch.stat("/data/big.bin", false).await.unwrap();
    assert_eq!((st.size, st.uid), (SIZE, 1000));

    let start = std::time::Instant::now();
    let mut r = ch.read_file("/data/big.bin", None).await.unwrap();
    assert_eq!(r.size(), SIZE);
    let mut back = 0xcbf2_9ce4_8422_2325;
    let mut got = 0u64;
    while let Some(c) = r.next().await {
        let c = c.unwrap();
        back = fnv(back, &c);
        got += c.len() as u64;
    }
    let read_secs = start.elapsed().as_secs_f64();
    assert_eq!(got, SIZE);
    assert_eq!(back, sum, "the bytes came back different");
    let agent_hwm = agent_status(&ch, "VmHWM:").await;
    println!(
        "{}: 1 GiB in {write_secs:.1}s ({:.0} MiB/s), out {read_secs:.1}s ({:.0} MiB/s); \
         agent peak RSS {agent_hwm} KiB",
        e.name,
        1024.0 / write_secs,
        1024.0 / read_secs
    );
    assert!(
        agent_hwm < 16 << 10,
        "the agent's peak RSS: {agent_hwm} KiB"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gib_streams_in_and_out_with_bounded_memory() {
    // One engine after the other, so the peak below is one transfer's.
    one_gib_in_and_out(Engine::docker()).await;
    one_gib_in_and_out(Engine::podman()).await;
    let hwm = status_kib("/proc/self/status", "VmHWM:");
    println!("test process peak RSS: {hwm} KiB (for 2 × 2 GiB moved)");
    assert!(hwm < 128 << 10, "the host side held too much: {hwm} KiB");
}
