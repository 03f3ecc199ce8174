//! Builds the in-container agent (`headjack-agent`) as a static binary for the target's
//! architecture and leaves it in `OUT_DIR/headjack-agent`, which the library embeds
//! (`src/agent/delivery.rs`). So `cargo build`, `pip install ./headjack-py` and libheadjack all
//! carry the agent with no extra step.
//!
//! - `HEADJACK_AGENT_BINARY=/path`: embed this prebuilt static binary instead of building one.
//! - `HEADJACK_NO_AGENT=1`: embed none; every exec then uses the engine's exec path.
//!
//! The agent is built by a nested `cargo build` of the workspace's `headjack-agent` package with
//! the `agent` profile and `+crt-static` (no musl target needed: it calls no NSS function), into
//! a target directory of its own beside the outer one, so it is built once, not once per profile.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    egress_proxy();
    println!("cargo:rerun-if-env-changed=HEADJACK_AGENT_BINARY");
    println!("cargo:rerun-if-env-changed=HEADJACK_NO_AGENT");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let dest = out_dir.join("headjack-agent");

    if env::var_os("HEADJACK_NO_AGENT").is_some_and(|v| !v.is_empty() && v != "0") {
        std::fs::write(&dest, b"").expect("writing OUT_DIR/headjack-agent");
        return;
    }
    if let Some(prebuilt) = env::var_os("HEADJACK_AGENT_BINARY") {
        let prebuilt = PathBuf::from(prebuilt);
        println!("cargo:rerun-if-changed={}", prebuilt.display());
        std::fs::copy(&prebuilt, &dest).unwrap_or_else(|e| {
            panic!(
                "HEADJACK_AGENT_BINARY={}: cannot copy it: {e}",
                prebuilt.display()
            )
        });
        return;
    }
    let target = env::var("TARGET").expect("cargo sets TARGET");
    if !target.contains("linux") {
        // Containers run Linux: on another OS the agent would be built for nothing.
        std::fs::write(&dest, b"").expect("writing OUT_DIR/headjack-agent");
        return;
    }

    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .parent()
        .expect("the core lives in the workspace");
    let agent = workspace.join("headjack-agent");
    for watched in ["src", "Cargo.toml"] {
        println!("cargo:rerun-if-changed={}", agent.join(watched).display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("Cargo.lock").display()
    );

    let target_dir = outer_target_dir(&out_dir)
        .map(|t| t.join("headjack-agent-static"))
        .unwrap_or_else(|| out_dir.join("agent-target"));
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args(["build", "--quiet", "--offline", "--profile", "agent"])
        .args(["-p", "headjack-agent", "--bin", "headjack-agent"])
        .args(["--target", &target])
        .arg("--target-dir")
        .arg(&target_dir)
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        // The outer build's flags and wrappers are not the agent's (clippy sets a wrapper).
        .env("CARGO_ENCODED_RUSTFLAGS", "-Ctarget-feature=+crt-static")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR");
    let status = cmd.status().unwrap_or_else(|e| {
        panic!("cannot run cargo to build the in-container agent: {e}; set HEADJACK_AGENT_BINARY or HEADJACK_NO_AGENT=1")
    });
    assert!(
        status.success(),
        "building the in-container agent (headjack-agent) failed ({status}); fix it, or set \
         HEADJACK_AGENT_BINARY=/path/to/a/static/headjack-agent, or HEADJACK_NO_AGENT=1 to build \
         without it (every exec then goes through the engine)"
    );
    let built = target_dir
        .join(&target)
        .join("agent")
        .join("headjack-agent");
    std::fs::copy(&built, &dest)
        .unwrap_or_else(|e| panic!("copying {} into OUT_DIR: {e}", built.display()));
}

/// The outer build's target directory: the ancestor of `OUT_DIR` that cargo marked with
/// `CACHEDIR.TAG`.
fn outer_target_dir(out_dir: &Path) -> Option<PathBuf> {
    out_dir
        .ancestors()
        .find(|a| a.join("CACHEDIR.TAG").is_file())
        .map(Path::to_path_buf)
}

/// The egress proxy (`headjack-egress`), built static like the agent and left in
/// `OUT_DIR/headjack-egress`; the library embeds it and builds the proxy image (`FROM scratch` +
/// this binary) on an engine the first time an instance asks for an egress policy
/// (`src/egress/`).
///
/// - `HEADJACK_EGRESS_BINARY=/path`: embed this prebuilt static binary instead.
/// - `HEADJACK_NO_EGRESS=1`: embed none; a spawn with an egress policy is then an `Unsupported`
///   error.
fn egress_proxy() {
    println!("cargo:rerun-if-env-changed=HEADJACK_EGRESS_BINARY");
    println!("cargo:rerun-if-env-changed=HEADJACK_NO_EGRESS");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let dest = out_dir.join("headjack-egress");
    if env::var_os("HEADJACK_NO_EGRESS").is_some_and(|v| !v.is_empty() && v != "0") {
        std::fs::write(&dest, b"").expect("writing OUT_DIR/headjack-egress");
        return;
    }
    if let Some(prebuilt) = env::var_os("HEADJACK_EGRESS_BINARY") {
        let prebuilt = PathBuf::from(prebuilt);
        println!("cargo:rerun-if-changed={}", prebuilt.display());
        std::fs::copy(&prebuilt, &dest).unwrap_or_else(|e| {
            panic!(
                "HEADJACK_EGRESS_BINARY={}: cannot copy it: {e}",
                prebuilt.display()
            )
        });
        return;
    }
    let target = env::var("TARGET").expect("cargo sets TARGET");
    if !target.contains("linux") {
        std::fs::write(&dest, b"").expect("writing OUT_DIR/headjack-egress");
        return;
    }
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .parent()
        .expect("the core lives in the workspace");
    let egress = workspace.join("headjack-egress");
    for watched in ["src", "Cargo.toml"] {
        println!("cargo:rerun-if-changed={}", egress.join(watched).display());
    }
    let target_dir = outer_target_dir(&out_dir)
        .map(|t| t.join("headjack-egress-static"))
        .unwrap_or_else(|| out_dir.join("egress-target"));
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(workspace)
        .args(["build", "--quiet", "--offline", "--profile", "egress-static"])
        .args(["-p", "headjack-egress", "--bin", "headjack-egress"])
        .args(["--target", &target])
        .arg("--target-dir")
        .arg(&target_dir)
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .env("CARGO_ENCODED_RUSTFLAGS", "-Ctarget-feature=+crt-static")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .status()
        .unwrap_or_else(|e| {
            panic!("cannot run cargo to build the egress proxy: {e}; set HEADJACK_EGRESS_BINARY or HEADJACK_NO_EGRESS=1")
        });
    assert!(
        status.success(),
        "building the egress proxy (headjack-egress) failed ({status}); fix it, or set \
         HEADJACK_EGRESS_BINARY=/path/to/a/static/headjack-egress, or HEADJACK_NO_EGRESS=1 to build \
         without it (egress policies are then refused)"
    );
    let built = target_dir
        .join(&target)
        .join("egress-static")
        .join("headjack-egress");
    std::fs::copy(&built, &dest)
        .unwrap_or_else(|e| panic!("copying {} into OUT_DIR: {e}", built.display()));
}
