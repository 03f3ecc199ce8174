# shellcheck shell=bash
# tests/env component: Main Docker engine on /var/run/docker.sock.
# Sourced by tests/env/up.sh (which defines dk/pd/gv, image_id, CLEANUP and the lib.sh helpers); defines step_docker and its checks.

# A dockerd started with --bridge=none deletes the interface "docker0" at startup (moby's
# removeDefaultBridgeInterface), which breaks every bridge-networked container of the main engine
# with "could not find bridge docker0". Recreate it from the main engine's own network config.
repair_default_bridge() {
  local name subnet gw mtu
  name=$(dk network inspect bridge -f '{{index .Options "com.docker.network.bridge.name"}}' 2>/dev/null) || return 0
  [[ -n $name ]] || return 0
  ip link show "$name" >/dev/null 2>&1 && return 0
  subnet=$(dk network inspect bridge -f '{{range .IPAM.Config}}{{.Subnet}}{{end}}')
  gw=$(dk network inspect bridge -f '{{range .IPAM.Config}}{{.Gateway}}{{end}}')
  mtu=$(dk network inspect bridge -f '{{index .Options "com.docker.network.driver.mtu"}}')
  [[ $subnet == */* ]] || die "main dockerd's bridge $name is missing and its subnet is unknown; restart dockerd"
  [[ -n $gw ]] || gw=$(awk -F'[./]' '{ printf "%d.%d.%d.%d", $1, $2, $3, $4 + 1 }' <<<"$subnet")
  ip link add name "$name" type bridge
  [[ -z $mtu ]] || ip link set "$name" mtu "$mtu"
  ip addr add "$gw/${subnet#*/}" dev "$name"
  ip link set "$name" up
  warn "the main dockerd's bridge $name had been deleted (by a dockerd started with --bridge=none?); recreated it as $gw/${subnet#*/}"
}

step_docker() {
  local t0; t0=$(now)
  if command -v docker >/dev/null && dk info >/dev/null 2>&1; then
    repair_default_bridge
    say "docker engine ready: $(dk version -f '{{.Server.Version}} (API {{.Server.APIVersion}})') ($(elapsed "$t0"))"
    return
  fi
  if ! command -v docker >/dev/null || ! command -v dockerd >/dev/null; then
    apt_install docker.io
    # on a systemd machine the package starts the service itself
    if wait_until 20 dk info; then
      say "docker engine ready (started by the docker.io package) ($(elapsed "$t0"))"
      return
    fi
  fi
  if pid_running "$RUN_DIR/dockerd.pid" dockerd; then
    say "dockerd (pid $(<"$RUN_DIR/dockerd.pid")) runs but does not answer yet, waiting"
  else
    start_bg "$RUN_DIR/dockerd.pid" "$RUN_DIR/dockerd.log" dockerd
  fi
  wait_until 90 dk info || die "dockerd did not answer on $MAIN_SOCK within 90s" "$RUN_DIR/dockerd.log"
  say "docker engine started by up.sh, pid $(<"$RUN_DIR/dockerd.pid") ($(elapsed "$t0"))"
}
