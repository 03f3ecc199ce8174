//! What an instance uses (CPU time, memory, pids, I/O) from the engine's stats API, and why
//! a command or an instance ended.

use super::Instance;
use crate::error::{Error, ErrorKind, Result};

/// An instance's resource use at one moment ([`Instance::stats`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// CPU time used by all its processes since it started.
    pub cpu_time: std::time::Duration,
    /// Memory in use now, in bytes (page cache included, as the kernel counts it).
    pub memory_bytes: u64,
    /// The most memory it used at once, in bytes, when the engine or the kernel tells.
    pub memory_peak_bytes: Option<u64>,
    /// Its memory limit in bytes, if it has one.
    pub memory_limit_bytes: Option<u64>,
    /// Processes (and threads) alive now.
    pub pids: u64,
    /// Bytes received over its network interfaces.
    pub net_rx_bytes: u64,
    /// Bytes sent over its network interfaces.
    pub net_tx_bytes: u64,
    /// Bytes read from block devices.
    pub block_read_bytes: u64,
    /// Bytes written to block devices.
    pub block_write_bytes: u64,
    /// When the sample was taken.
    pub at: std::time::SystemTime,
}

/// The kernel's record of a memory cgroup's peak use, seen from inside a container (v1, v2).
const PEAK_FILES: [&str; 2] = [
    "/sys/fs/cgroup/memory/memory.max_usage_in_bytes",
    "/sys/fs/cgroup/memory.peak",
];

impl Instance {
    /// A sample of the instance's resource use (CPU time, memory now and at its peak, processes,
    /// network and block I/O) from the engine's stats API. The peak comes from the engine, or
    /// else from the instance's cgroup (`None` when neither says).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`] when the instance was removed; engine errors.
    pub async fn stats(&self) -> Result<Stats> {
        self.check_live()?;
        let s = self
            .engine
            .stats(&self.container_id)
            .await
            .map_err(|e| match e.kind() {
                ErrorKind::NotFound => Error::new(
                    ErrorKind::NotFound,
                    format!("instance {} no longer exists on the engine", self.id),
                ),
                _ => e,
            })?;
        let mut peak = s.memory_peak;
        if peak.is_none() && s.pids > 0 {
            for file in PEAK_FILES {
                let read = crate::exec::Exec::new(["cat", file])
                    .timeout(std::time::Duration::from_secs(5));
                if let Ok(out) = self.exec(read).await
                    && out.success()
                    && let Ok(v) = out.stdout_text().trim().parse::<u64>()
                {
                    peak = Some(v.max(s.memory));
                    break;
                }
            }
        }
        Ok(Stats {
            cpu_time: std::time::Duration::from_nanos(s.cpu_ns),
            memory_bytes: s.memory,
            memory_peak_bytes: peak,
            memory_limit_bytes: s.memory_limit,
            pids: s.pids,
            net_rx_bytes: s.net_rx,
            net_tx_bytes: s.net_tx,
            block_read_bytes: s.block_read,
            block_write_bytes: s.block_write,
            at: std::time::SystemTime::now(),
        })
    }

    /// Samples [`Instance::stats`] every `interval` (the first at once) until the instance is
    /// removed or stops.
    ///
    /// # Errors
    ///
    /// Each item is a sample or the error that ended the stream.
    pub fn stats_stream(&self, interval: std::time::Duration) -> StatsStream<'_> {
        StatsStream {
            instance: self,
            sampler: StatsSampler::new(interval),
        }
    }
}

/// Samples of an instance's resource use at a fixed interval ([`Instance::stats_stream`]).
#[derive(Debug)]
pub struct StatsStream<'a> {
    instance: &'a Instance,
    sampler: StatsSampler,
}

impl StatsStream<'_> {
    /// The next sample, after the interval; `None` once the instance stopped or was removed.
    /// An error ends the stream.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a cancelled call takes no sample.
    pub async fn next(&mut self) -> Option<Result<Stats>> {
        self.sampler.next(self.instance).await
    }
}

/// The pacing and end of a [`StatsStream`], for a holder that keeps the instance elsewhere (a
/// binding that shares it between threads): each [`StatsSampler::next`] is given the instance.
#[derive(Debug, Clone)]
pub struct StatsSampler {
    interval: std::time::Duration,
    started: bool,
    done: bool,
}

impl StatsSampler {
    /// A sampler taking a sample every `interval` (at least 10 ms), the first at once.
    pub fn new(interval: std::time::Duration) -> StatsSampler {
        StatsSampler {
            interval: interval.max(std::time::Duration::from_millis(10)),
            started: false,
            done: false,
        }
    }

    /// Whether the stream ended (the instance stopped or was removed, or an error came).
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Ends the stream: every later [`StatsSampler::next`] is `None`.
    pub fn end(&mut self) {
        self.done = true;
    }

    /// The next sample of `instance`, after the interval; `None` once it stopped or was
    /// removed. An error ends the stream.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a cancelled call takes no sample (the next call waits the interval again).
    pub async fn next(&mut self, instance: &Instance) -> Option<Result<Stats>> {
        if self.done {
            return None;
        }
        if self.started {
            tokio::time::sleep(self.interval).await;
        }
        self.started = true;
        match instance.status().await {
            Ok(super::Status::Running | super::Status::Paused) => {}
            Ok(_) => {
                self.done = true;
                return None;
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                self.done = true;
                return None;
            }
            Err(e) => {
                self.done = true;
                return Some(Err(e));
            }
        }
        let s = instance.stats().await;
        if s.is_err() {
            self.done = true;
        }
        Some(s)
    }
}

impl super::InstanceInfo {
    /// Why the instance's container stopped: `killed: out of memory` when its memory limit
    /// killed it, `killed by signal N`, or `exited with code N`; `None` while it has not
    /// stopped. (The engine tells about the memory limit only to [`Instance::inspect`].)
    pub fn exit_reason(&self) -> Option<String> {
        match self.status {
            // Docker's flag stays set once the memory limit killed any process of the
            // container: a clean exit after that was not an OOM kill.
            super::Status::Exited(code) if self.oom_killed && code != 0 => {
                Some("killed: out of memory".to_string())
            }
            super::Status::Dead if self.oom_killed => Some("killed: out of memory".to_string()),
            super::Status::Exited(code) if code > 128 && code < 128 + 65 => {
                Some(format!("killed by signal {}", code - 128))
            }
            super::Status::Exited(code) => Some(format!("exited with code {code}")),
            super::Status::Dead => Some("dead (the engine gave up on it)".to_string()),
            _ => None,
        }
    }
}

impl crate::exec::ExecOutput {
    /// How the command ended: `killed: out of memory` when the memory limit killed it,
    /// `timed out`, `killed by signal N` or `exited with code N`
    /// ([`crate::exec::ExitStatus::exit_reason`]).
    pub fn exit_reason(&self) -> String {
        crate::exec::ExitStatus {
            code: self.exit_code,
            timed_out: self.timed_out,
            oom_killed: self.oom_killed,
            kill_failed: self.kill_failed,
        }
        .exit_reason()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{InstanceInfo, Status};

    #[test]
    fn exit_reasons_say_how_an_instance_ended() {
        let info = |status, oom_killed| InstanceInfo {
            oom_killed,
            ..InstanceInfo::from_parts(
                "c".into(),
                "n".into(),
                "i".into(),
                status,
                Default::default(),
            )
        };
        let table = [
            (Status::Running, false, None),
            (Status::Running, true, None),
            (Status::Exited(137), true, Some("killed: out of memory")),
            // Docker's OOM flag outlives the kill it saw: a clean exit stays a clean exit.
            (Status::Exited(0), true, Some("exited with code 0")),
            (Status::Exited(137), false, Some("killed by signal 9")),
            (Status::Exited(3), false, Some("exited with code 3")),
            (Status::Exited(193), false, Some("exited with code 193")),
            (Status::Dead, true, Some("killed: out of memory")),
        ];
        for (status, oom, want) in table {
            assert_eq!(
                info(status.clone(), oom).exit_reason().as_deref(),
                want,
                "{status:?} oom={oom}"
            );
        }
    }
}
