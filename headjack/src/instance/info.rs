//! What headjack reports about an instance: its [`Status`] and [`InstanceInfo`].

use std::collections::HashMap;

use crate::engine::ContainerDetails;
use crate::labels;

/// The state of an instance's container.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Created, never started.
    Created,
    /// Running.
    Running,
    /// Frozen by [`Instance::pause`].
    Paused,
    /// Being restarted.
    Restarting,
    /// Stopped; the keep-alive process exited with this code.
    Exited(i64),
    /// Being removed.
    Removing,
    /// The engine gave up on it.
    Dead,
    /// A state this version of headjack does not know.
    Other(String),
}

impl Status {
    pub(crate) fn from_engine(status: &str, exit_code: Option<i64>) -> Status {
        match status {
            "created" => Status::Created,
            "running" => Status::Running,
            "paused" => Status::Paused,
            "restarting" => Status::Restarting,
            "exited" | "stopped" => Status::Exited(exit_code.unwrap_or(0)),
            "removing" | "stopping" => Status::Removing,
            "dead" => Status::Dead,
            other => Status::Other(other.to_string()),
        }
    }

    /// A short lowercase name (`running`, `exited`, …).
    pub fn as_str(&self) -> &str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Exited(_) => "exited",
            Status::Removing => "removing",
            Status::Dead => "dead",
            Status::Other(s) => s,
        }
    }
}

/// What `list` and `inspect` report about an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceInfo {
    /// headjack's instance ID (label `io.headjack.instance`).
    pub id: String,
    /// The engine's container ID.
    pub container_id: String,
    /// The container name.
    pub name: String,
    /// The base as it was asked for.
    pub base: String,
    /// The image the container runs.
    pub image: String,
    /// Its state.
    pub status: Status,
    /// The process that spawned it: `<host>/<boot id>/<pid namespace>/<pid>/<start time>`, or
    /// `detached`.
    pub owner: String,
    /// Unix seconds after which sweep may remove it.
    pub expires: Option<u64>,
    /// All labels of the container.
    pub labels: HashMap<String, String>,
    /// The engine saw the memory limit kill the container's main process (only `inspect`
    /// reads it; `list` leaves it false).
    pub oom_killed: bool,
}

impl InstanceInfo {
    pub(crate) fn from_parts(
        container_id: String,
        name: String,
        image: String,
        status: Status,
        labels: HashMap<String, String>,
    ) -> InstanceInfo {
        let get = |k: &str| labels.get(k).cloned().unwrap_or_default();
        InstanceInfo {
            id: get(labels::INSTANCE),
            container_id,
            name,
            base: get(labels::BASE),
            image: labels.get(labels::IMAGE).cloned().unwrap_or(image),
            status,
            owner: get(labels::OWNER),
            expires: labels.get(labels::EXPIRES).and_then(|e| e.parse().ok()),
            labels,
            oom_killed: false,
        }
    }

    pub(crate) fn from_details(d: ContainerDetails) -> InstanceInfo {
        let status = Status::from_engine(&d.status, d.exit_code);
        InstanceInfo {
            oom_killed: d.oom_killed,
            ..InstanceInfo::from_parts(d.id, d.name, d.image, status, d.labels)
        }
    }
}
