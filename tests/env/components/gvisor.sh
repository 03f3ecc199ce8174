# shellcheck shell=bash
# tests/env component: Second dockerd with gVisor's runsc on /run/headjack-gvisor/docker.sock.
# Sourced by tests/env/up.sh (which defines dk/pd/gv, image_id, CLEANUP and the lib.sh helpers); defines step_gvisor and its checks.

GVISOR_MARKER=$RUN_DIR/gvisor.unavailable

gvisor_unavailable() {
  printf '%s\n' "$1" >"$GVISOR_MARKER"
  stop_pid "gvisor dockerd" "$GVISOR_PIDFILE" "$GVISOR_CFG" 30 >/dev/null
  warn "gVisor UNAVAILABLE: $1 (see $GVISOR_MARKER; the other engines are fine)"
}

step_gvisor() {
  local t0 cfg=$GVISOR_CFG pidf=$GVISOR_PIDFILE log=$RUN_DIR/gvisor-dockerd.log
  local changed=0 runsc gvloaded=""
  t0=$(now)
  rm -f "$GVISOR_MARKER"
  runsc=$(command -v runsc || true)
  if [[ -z $runsc ]]; then gvisor_unavailable "runsc is not installed (package runsc)"; return; fi
  local platform=${HEADJACK_TEST_GVISOR_PLATFORM:-ptrace}
  mkdir -p "$GVISOR_DIR" "$GVISOR_EXEC_ROOT" "$GVISOR_DATA_ROOT"
  # Its own pre-created bridge: "bridge": "none" would make this dockerd delete docker0, and the
  # default would make both daemons manage docker0. No NAT (iptables off): runsc runs with
  # --network=none anyway; runc containers on this daemon get an isolated bridge.
  if ! ip link show "$GVISOR_BRIDGE" >/dev/null 2>&1; then
    ip link add name "$GVISOR_BRIDGE" type bridge
    ip addr add "$GVISOR_BRIDGE_CIDR" dev "$GVISOR_BRIDGE"
    ip link set "$GVISOR_BRIDGE" up
  fi
  cat <<EOF | write_if_changed "$cfg" && changed=1
{
  "hosts": ["unix://$GVISOR_SOCK"],
  "data-root": "$GVISOR_DATA_ROOT",
  "exec-root": "$GVISOR_EXEC_ROOT",
  "pidfile": "$pidf",
  "containerd-namespace": "headjack-gvisor",
  "containerd-plugins-namespace": "headjack-gvisor-plugins",
  "storage-driver": "${HEADJACK_TEST_GVISOR_STORAGE_DRIVER:-overlay2}",
  "bridge": "$GVISOR_BRIDGE",
  "iptables": false,
  "ip6tables": false,
  "ip-masq": false,
  "ip-forward": false,
  "cgroup-parent": "/headjack-gvisor",
  "log-driver": "json-file",
  "runtimes": {
    "runsc": {
      "path": "$runsc",
      "runtimeArgs": ["--network=none", "--platform=$platform"]
    }
  }
}
EOF
  if pid_running "$pidf" "$cfg" && (( changed )); then
    stop_pid "gvisor dockerd (config changed)" "$pidf" "$cfg" 30 >/dev/null
  fi
  if ! pid_running "$pidf" "$cfg"; then
    if gv version >/dev/null 2>&1; then
      die "$GVISOR_SOCK is served by a dockerd up.sh did not start; stop it first"
    fi
    rm -f "$GVISOR_SOCK" "$pidf"
    # dockerd writes its own pidfile (configured above; it refuses to start if that file
    # names a live process, so start_bg must not write it)
    start_bg "" "$log" dockerd --config-file "$cfg"
    if ! wait_until 60 gv info; then
      gvisor_unavailable "second dockerd did not answer on $GVISOR_SOCK within 60s: $(tail -n 3 "$log" | tr '\n' ' ')"
      return
    fi
    say "gvisor dockerd started (pid $(<"$pidf"))"
  fi
  local want have
  want=$(image_id dk "$BUSYBOX_IMAGE"); have=$(image_id gv "$BUSYBOX_IMAGE")
  if [[ -z $want || $have != "$want" ]]; then
    dk save "$BUSYBOX_IMAGE" | timeout 120 docker -H "unix://$GVISOR_SOCK" load >"$RUN_DIR/gvisor-load.log" 2>&1 \
      || die "docker save | docker load into the gvisor dockerd" "$RUN_DIR/gvisor-load.log" "$log"
    gvloaded=", loaded busybox"
  fi
  local out
  out=$(timeout 60 docker -H "unix://$GVISOR_SOCK" run --rm --runtime=runsc --network=none "$BUSYBOX_IMAGE" dmesg 2>&1) || true
  if [[ $out != *"Starting gVisor"* ]]; then
    gvisor_unavailable "runsc (--platform=$platform) could not run a container: $(tail -n 5 <<<"$out" | tr '\n' ' ')"
    return
  fi
  say "gvisor dockerd ready (runsc $(runsc --version 2>/dev/null | head -n1 | awk '{print $3}'), platform $platform$gvloaded) ($(elapsed "$t0"))"
}

verify_gvisor() {
  [[ -e $GVISOR_MARKER ]] && return
  local t0 out name=headjack-test-verify-gv-$$ g=(timeout 30 docker -H "unix://$GVISOR_SOCK")
  t0=$(now)
  gv rm -f "$name" >/dev/null 2>&1 || true
  # NB: under runsc (ptrace) --pids-limit counts the sandbox's host tasks: ~40 idle plus ~10 per
  # guest process, so a limit like 64 kills the sandbox (exit 2, "WaitPID failed: EOF"). See README.
  "${g[@]}" run -d --name "$name" --runtime=runsc --memory 64m --pids-limit 512 "$BUSYBOX_IMAGE" sleep 120 >/dev/null \
    || die "verify: gvisor run with limits" "$RUN_DIR/gvisor-dockerd.log"
  out=$("${g[@]}" exec "$name" sh -c 'ip -o link | grep -vc " lo:"; dmesg | grep -c "Starting gVisor"' 2>&1 | tr '\n' ' ')
  out+=$("${g[@]}" exec -u agent "$name" id -u 2>&1)
  out+=" $(echo stdin-ok | "${g[@]}" exec -i "$name" cat 2>&1)"
  out+=" $("${g[@]}" inspect -f '{{.State.Status}}' "$name" 2>&1)"
  gv rm -f "$name" >/dev/null 2>&1 || true
  [[ $out == "0 1 1000 stdin-ok running" ]] \
    || die "verify: gvisor exec/network-none/user/stdin gave: $out (want: 0 1 1000 stdin-ok running)" "$RUN_DIR/gvisor-dockerd.log"
  say "verify: gvisor exec, --network none (forced by runtimeArgs), user, stdin, --memory ok ($(elapsed "$t0"))"
}
