#!/usr/bin/env bash
# A private Docker engine for the fault tests (headjack/tests/faults.rs): its own socket, data
# root, exec root, bridge and containerd namespace, so freezing or restarting it touches nothing
# else. The tests drive its life through this script.
#
#   tests/env/fault-engine.sh start DIR    start (or restart) it under DIR; prints its socket URL
#   tests/env/fault-engine.sh freeze DIR   SIGSTOP: the engine hangs (socket open, no answers)
#   tests/env/fault-engine.sh thaw DIR     SIGCONT
#   tests/env/fault-engine.sh stop DIR     stop it (SIGTERM, then SIGKILL); containers stop too
#   tests/env/fault-engine.sh remove DIR   stop it and remove DIR, its bridge and its data
set -euo pipefail
SELF=fault-engine.sh
# shellcheck source=tests/env/lib.sh
source "$(dirname "$0")/lib.sh"

cmd=${1:?usage: fault-engine.sh start|freeze|thaw|stop|remove DIR}
dir=${2:?usage: fault-engine.sh $cmd DIR}
sock=$dir/docker.sock
pidf=$dir/dockerd.pid
cfg=$dir/daemon.json
log=$dir/dockerd.log
bridge=hjfault0
bridge_cidr=10.214.214.1/24

fe() { docker -H "unix://$sock" "$@"; }

stop() {
  local pid
  [[ -s $pidf ]] || return 0
  pid=$(<"$pidf")
  kill -CONT "$pid" 2>/dev/null || true
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pidf"
}

case $cmd in
  start)
    mkdir -p "$dir/data" "$dir/exec"
    stop
    if ! ip link show "$bridge" >/dev/null 2>&1; then
      ip link add name "$bridge" type bridge
      ip addr add "$bridge_cidr" dev "$bridge"
      ip link set "$bridge" up
    fi
    cat >"$cfg" <<JSON
{
  "hosts": ["unix://$sock"],
  "data-root": "$dir/data",
  "exec-root": "$dir/exec",
  "pidfile": "$pidf",
  "containerd-namespace": "headjack-fault",
  "containerd-plugins-namespace": "headjack-fault-plugins",
  "storage-driver": "vfs",
  "bridge": "$bridge",
  "iptables": false,
  "ip6tables": false,
  "ip-masq": false,
  "ip-forward": false,
  "cgroup-parent": "/headjack-fault",
  "log-driver": "json-file"
}
JSON
    rm -f "$sock"
    nohup dockerd --config-file "$cfg" >>"$log" 2>&1 </dev/null &
    wait_until 60 fe info || die "the fault engine did not answer on $sock within 60s" "$log"
    if ! fe image inspect "$BUSYBOX_IMAGE" >/dev/null 2>&1; then
      docker save "$BUSYBOX_IMAGE" | fe load >/dev/null || die "loading $BUSYBOX_IMAGE into the fault engine" "$log"
    fi
    printf 'unix://%s\n' "$sock"
    ;;
  freeze)
    pid=$(<"$pidf")
    kill -STOP "$pid"
    # kill returns before every thread has stopped: wait until they all have, so that a call
    # made right after cannot still be answered.
    for _ in $(seq 1 200); do
      running=$(awk '{print $3}' /proc/"$pid"/task/*/stat 2>/dev/null | grep -cv '^[Tt]$' || true)
      [ "$running" -eq 0 ] && break
      sleep 0.05
    done
    ;;
  thaw) kill -CONT "$(<"$pidf")" ;;
  stop) stop ;;
  remove)
    stop
    # Containers of a stopped engine leave mounts under its data root (vfs has none, but the
    # shm and resolv mounts of runc containers may linger): unmount before removing.
    grep -o " $dir/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$dir"
    ip link del "$bridge" 2>/dev/null || true
    ;;
  *) die "unknown command $cmd (start, freeze, thaw, stop, remove)" ;;
esac
