//! `runArgs`: the `docker run` flags headjack can map onto its own settings. The others are
//! named in warnings (never passed through: there is no `docker run` underneath).

use std::collections::BTreeMap;

use super::mounts::{MountPlan, parse_mount, parse_volume};
use super::units::{PortPublish, Publish, parse_bytes, parse_publish};

/// The settings read from `runArgs`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RunArgs {
    pub cap_add: Vec<String>,
    pub security_opt: Vec<String>,
    /// `-e NAME=value`, and `-e NAME` taken from the caller's environment when set there.
    pub env: Vec<(String, String)>,
    pub memory: Option<u64>,
    pub cpus: Option<f64>,
    pub network: Option<String>,
    pub init: Option<bool>,
    pub privileged: Option<bool>,
    pub user: Option<String>,
    pub labels: Vec<(String, String)>,
    pub mounts: Vec<MountPlan>,
    pub ports: Vec<PortPublish>,
}

/// The flags that take a value, by every name they go by.
const VALUED: [(&[&str], &str); 11] = [
    (&["--cap-add"], "cap-add"),
    (&["--security-opt"], "security-opt"),
    (&["--env", "-e"], "env"),
    (&["--memory", "-m"], "memory"),
    (&["--cpus"], "cpus"),
    (&["--network", "--net"], "network"),
    (&["--user", "-u"], "user"),
    (&["--label", "-l"], "label"),
    (&["--mount"], "mount"),
    (&["--volume", "-v"], "volume"),
    (&["--publish", "-p"], "publish"),
];

/// The boolean flags understood.
const SWITCHES: [&str; 2] = ["--init", "--privileged"];

/// Parses `args` (one element per argument, as in `devcontainer.json`). `local_env` serves
/// `-e NAME` without a value. `warnings` receives flags that are not mapped.
///
/// # Errors
///
/// A message naming the flag whose value is missing or invalid.
pub(crate) fn parse_run_args(
    args: &[String],
    local_env: &BTreeMap<String, String>,
    warnings: &mut Vec<String>,
) -> Result<RunArgs, String> {
    let mut out = RunArgs::default();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        i += 1;
        if !arg.starts_with('-') || arg == "-" || arg == "--" {
            warnings.push(format!(
                "runArgs: {arg:?} is not a flag (runArgs holds docker run flags only); ignored"
            ));
            continue;
        }
        // `--name=value`, or `-xVALUE` for a one-letter flag.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ if !arg.starts_with("--") && arg.chars().count() > 2 => {
                let cut = 1 + arg[1..].chars().next().map_or(0, char::len_utf8);
                let (f, v) = arg.split_at(cut);
                (f, Some(v.trim_start_matches('=').to_string()))
            }
            _ => (arg, None),
        };
        if let Some(switch) = SWITCHES.iter().find(|s| **s == flag) {
            let on = match inline.as_deref() {
                None | Some("true") => true,
                Some("false") => false,
                Some(other) => {
                    return Err(format!("runArgs: {switch}={other} is not true or false"));
                }
            };
            match *switch {
                "--init" => out.init = Some(on),
                _ => out.privileged = Some(on),
            }
            continue;
        }
        let Some((_, name)) = VALUED.iter().find(|(names, _)| names.contains(&flag)) else {
            // Unknown: no positional arguments exist in runArgs, so a following non-flag
            // element is this flag's value.
            if inline.is_none() && args.get(i).is_some_and(|next| !next.starts_with('-')) {
                i += 1;
            }
            warnings.push(format!(
                "runArgs: {flag} is not supported (headjack maps --cap-add, --security-opt, \
                 --env, --memory, --cpus, --network, --init, --privileged, --user, --label, \
                 --mount, --volume, --publish); ignored"
            ));
            continue;
        };
        let value = match inline {
            Some(v) => v,
            None => match args.get(i) {
                Some(v) => {
                    i += 1;
                    v.clone()
                }
                None => return Err(format!("runArgs: {flag} needs a value")),
            },
        };
        match *name {
            "cap-add" => out.cap_add.push(value),
            "security-opt" => out.security_opt.push(value),
            "env" => match value.split_once('=') {
                Some((k, v)) => out.env.push((k.to_string(), v.to_string())),
                None => match local_env.get(&value) {
                    Some(v) => out.env.push((value.clone(), v.clone())),
                    None => warnings.push(format!(
                        "runArgs: {flag} {value} passes the caller's {value}, which is not set; skipped"
                    )),
                },
            },
            "memory" => {
                out.memory = Some(parse_bytes(&value).map_err(|e| format!("runArgs: {flag}: {e}"))?)
            }
            "cpus" => match value.parse::<f64>() {
                Ok(c) if c > 0.0 && c.is_finite() => out.cpus = Some(c),
                _ => return Err(format!("runArgs: {flag} {value:?} is not a number of CPUs above 0")),
            },
            "network" => out.network = Some(value),
            "user" => out.user = Some(value),
            "label" => {
                let (k, v) = value.split_once('=').unwrap_or((&value, ""));
                out.labels.push((k.to_string(), v.to_string()));
            }
            "mount" => out
                .mounts
                .push(parse_mount(&value, warnings).map_err(|e| format!("runArgs: {flag}: {e}"))?),
            "volume" => out
                .mounts
                .push(parse_volume(&value, warnings).map_err(|e| format!("runArgs: {flag}: {e}"))?),
            _ => match parse_publish(&value, false).map_err(|e| format!("runArgs: {flag}: {e}"))? {
                Publish::One(p) => out.ports.push(p),
                Publish::Range => warnings.push(format!(
                    "runArgs: {flag} {value}: port ranges are not supported; ignored"
                )),
            },
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devcontainer::mounts::MountKind;
    use crate::devcontainer::units::Protocol;
    use proptest::prelude::*;

    fn run(args: &[&str]) -> (RunArgs, Vec<String>) {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let env = BTreeMap::from([("HOST_TOKEN".to_string(), "t0k".to_string())]);
        let mut w = Vec::new();
        let r = parse_run_args(&args, &env, &mut w).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        (r, w)
    }

    #[test]
    fn every_mapped_flag() {
        let (r, w) = run(&[
            "--cap-add=SYS_PTRACE",
            "--cap-add",
            "NET_ADMIN",
            "--security-opt",
            "seccomp=unconfined",
            "-e",
            "A=1",
            "--env=B=x=y",
            "-eC=3",
            "-e",
            "HOST_TOKEN",
            "--memory",
            "2g",
            "--cpus=1.5",
            "--network",
            "none",
            "--init",
            "--privileged=false",
            "-u",
            "1000:1000",
            "--label",
            "team=core",
            "-l",
            "bare",
            "--mount",
            "type=tmpfs,target=/scratch",
            "-v",
            "/host:/in:ro",
            "-p",
            "127.0.0.1:8080:80",
        ]);
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(r.cap_add, ["SYS_PTRACE", "NET_ADMIN"]);
        assert_eq!(r.security_opt, ["seccomp=unconfined"]);
        let env: Vec<_> = r.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(env, ["A=1", "B=x=y", "C=3", "HOST_TOKEN=t0k"]);
        assert_eq!(r.memory, Some(2 << 30));
        assert_eq!(r.cpus, Some(1.5));
        assert_eq!(r.network.as_deref(), Some("none"));
        assert_eq!(r.init, Some(true));
        assert_eq!(r.privileged, Some(false));
        assert_eq!(r.user.as_deref(), Some("1000:1000"));
        assert_eq!(
            r.labels,
            [
                ("team".to_string(), "core".to_string()),
                ("bare".into(), "".into())
            ]
        );
        assert_eq!(r.mounts.len(), 2);
        assert_eq!(r.mounts[0].kind, MountKind::Tmpfs { size_bytes: None });
        assert!(r.mounts[1].read_only);
        assert_eq!(
            r.ports,
            [PortPublish {
                container_port: 80,
                protocol: Protocol::Tcp,
                host_ip: Some("127.0.0.1".into()),
                host_port: Some(8080)
            }]
        );
    }

    #[test]
    fn unmapped_flags_are_named_and_their_values_skipped() {
        let (r, w) = run(&[
            "--device",
            "/dev/fuse",
            "--rm",
            "--shm-size=1g",
            "-it",
            "--cap-add",
            "X",
            "stray",
            "-e",
            "UNSET_HERE",
            "-p",
            "8000-8001:8000-8001",
        ]);
        assert_eq!(r.cap_add, ["X"]);
        assert!(r.env.is_empty());
        assert_eq!(w.len(), 7, "{w:?}");
        assert!(w[0].starts_with("runArgs: --device is not supported"));
        assert!(w[1].starts_with("runArgs: --rm is not supported"));
        assert!(w[2].starts_with("runArgs: --shm-size is not supported"));
        assert!(w[3].starts_with("runArgs: -i is not supported"));
        assert!(w[4].contains("\"stray\" is not a flag"));
        assert!(w[5].contains("UNSET_HERE, which is not set"));
        assert!(w[6].contains("port ranges"));
    }

    #[test]
    fn non_ascii_short_flags() {
        let (r, w) = run(&["-éx", "-eé=1"]);
        assert!(w[0].starts_with("runArgs: -é is not supported"), "{w:?}");
        assert_eq!(r.env, [("é".to_string(), "1".to_string())]);
    }

    #[test]
    fn bad_values_are_errors() {
        let env = BTreeMap::new();
        for (args, want) in [
            (&["--memory"][..], "--memory needs a value"),
            (&["--memory", "lots"], "is not a size"),
            (&["-m", "0"], "is zero"),
            (&["--cpus", "-1"], "not a number of CPUs"),
            (&["--cpus=NaN"], "not a number of CPUs"),
            (&["--init=maybe"], "--init=maybe is not true or false"),
            (&["--mount", "type=bind,target=/x"], "has no source"),
            (&["-v", "rel/dir:/x"], "not an absolute host path"),
            (&["-p", "x"], "not a port mapping"),
        ] {
            let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            let e = parse_run_args(&args, &env, &mut Vec::new()).unwrap_err();
            assert!(e.contains(want), "{args:?}: {e}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(args in prop::collection::vec("(-{0,2}([a-z=:/0-9.-]|\\PC){0,12})", 0..8)) {
            let _ = parse_run_args(&args, &BTreeMap::new(), &mut Vec::new());
        }
    }
}
