#!/usr/bin/env bash
# Stop what tests/env/up.sh started: both registries, the podman API service, the gVisor dockerd,
# and the main dockerd only if up.sh started it. Keeps caches, registry contents and fixture
# images, so the next up.sh is quick. Idempotent; run as root.
set -euo pipefail

SELF=down.sh # used by lib.sh
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

[[ $EUID -eq 0 ]] || die "must run as root"
mkdir -p "$RUN_DIR"
exec 9>"$RUN_DIR/up.lock"
flock -w 600 9 || die "up.sh still holds $RUN_DIR/up.lock after 10 minutes"

T_ALL=$(now)
stop_pid "registry $REG_OPEN_ADDR" "$RUN_DIR/registry-open.pid" docker-registry 10
stop_pid "registry $REG_AUTH_ADDR" "$RUN_DIR/registry-auth.pid" docker-registry 10
stop_pid "podman service" "$RUN_DIR/podman.pid" "podman system service" 20
# dockerd stops its containers (up to their stop timeout) and its containerd on SIGTERM
stop_pid "gvisor dockerd" "$GVISOR_PIDFILE" "$GVISOR_CFG" 60
if ip link show "$GVISOR_BRIDGE" >/dev/null 2>&1 && ! pid_running "$GVISOR_PIDFILE" "$GVISOR_CFG"; then
  ip link del "$GVISOR_BRIDGE" && say "bridge $GVISOR_BRIDGE removed"
fi
if [[ -e $RUN_DIR/dockerd.pid ]]; then
  stop_pid "main dockerd (started by up.sh)" "$RUN_DIR/dockerd.pid" dockerd 60
else
  say "main dockerd left alone (not started by up.sh)"
fi
rm -f "$RUN_DIR/env.sh" "$RUN_DIR/gvisor.unavailable"
say "done ($(elapsed "$T_ALL"))"
