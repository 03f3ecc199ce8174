# shellcheck shell=bash disable=SC2034
# Shared helpers for tests/env/up.sh and tests/env/down.sh. Sourced, not executed.

ENV_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# The services are machine-wide (fixed ports and sockets), so their state is too: every checkout
# of the project (a developer's, CI's clone) shares one set, and tests/env/run links to it.
RUN_DIR="${HEADJACK_TEST_RUN_DIR:-/var/lib/headjack-test/run}"  # configs, logs, pid files, registry storage
CACHE_DIR="${HEADJACK_TEST_CACHE_DIR:-/var/cache/headjack-test}" # debootstrap tarball (survives down.sh)

# Fixed endpoints (exported to the test suites through run/env.sh).
MAIN_SOCK=/var/run/docker.sock
PODMAN_SOCK=/run/podman/podman.sock
GVISOR_DIR=/run/headjack-gvisor
GVISOR_SOCK=$GVISOR_DIR/docker.sock
GVISOR_EXEC_ROOT=$GVISOR_DIR/exec
GVISOR_DATA_ROOT=/var/lib/headjack-test/gvisor-docker
GVISOR_CFG=$RUN_DIR/gvisor-daemon.json
GVISOR_PIDFILE=$RUN_DIR/gvisor-dockerd.pid
GVISOR_BRIDGE=hjgv0                 # the gVisor dockerd's own bridge (never docker0)
GVISOR_BRIDGE_CIDR=10.213.213.1/24
REG_OPEN_ADDR=127.0.0.1:5000
REG_AUTH_ADDR=127.0.0.1:5001
REG_USER=headjack
REG_PASSWORD=secret
BUSYBOX_IMAGE=localhost/headjack-test/busybox:latest
DEBIAN_IMAGE=docker.io/library/debian:bookworm-slim

SELF="${SELF:-$(basename "$0")}"

now() { printf '%s' "${EPOCHREALTIME:-$(date +%s.%N)}"; }
# elapsed START -> "1.2s"
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

say() { printf '%s: %s\n' "$SELF" "$*"; }
warn() { printf '%s: WARNING: %s\n' "$SELF" "$*" >&2; }

# die MESSAGE [LOGFILE...]: print what failed plus the tail of the relevant logs, exit 1.
die() {
  local msg=$1; shift
  printf '%s: FAILED: %s\n' "$SELF" "$msg" >&2
  local f
  for f in "$@"; do
    if [[ -s $f ]]; then
      printf '%s: --- last 30 lines of %s ---\n' "$SELF" "$f" >&2
      tail -n 30 "$f" >&2
      printf '%s: --- end of %s ---\n' "$SELF" "$f" >&2
    fi
  done
  exit 1
}

# wait_until TIMEOUT_SECONDS CMD...: poll CMD every 0.2s until it succeeds; non-zero on timeout.
wait_until() {
  local timeout=$1; shift
  local deadline
  deadline=$(awk -v n="$(now)" -v t="$timeout" 'BEGIN { printf "%d", n + t }')
  while :; do
    if "$@" >/dev/null 2>&1; then return 0; fi
    (( $(date +%s) >= deadline )) && return 1
    sleep 0.2
  done
}

# pid_running PIDFILE PATTERN: the pid in PIDFILE is alive and its command line contains PATTERN
# (guards against a recycled pid after a reboot or crash).
pid_running() {
  local pidfile=$1 pattern=$2 pid
  [[ -s $pidfile ]] || return 1
  pid=$(<"$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/cmdline ]] || return 1
  local cmdline
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmdline == *"$pattern"* ]]
}

# pid_gone PID: exited (a zombie not yet reaped by init counts as gone)
pid_gone() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  stat=${stat##*) }
  [[ ${stat%% *} == Z ]]
}

# stop_pid NAME PIDFILE PATTERN [TIMEOUT]: SIGTERM, wait, then SIGKILL; removes PIDFILE.
stop_pid() {
  local name=$1 pidfile=$2 pattern=$3 timeout=${4:-15} pid t0
  t0=$(now)
  if pid_running "$pidfile" "$pattern"; then
    pid=$(<"$pidfile")
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_until "$timeout" pid_gone "$pid"; then
      warn "$name (pid $pid) ignored SIGTERM for ${timeout}s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      wait_until 5 pid_gone "$pid" || warn "$name (pid $pid) is still alive"
    fi
    rm -f "$pidfile"
    say "$name stopped ($(elapsed "$t0"))"
  else
    rm -f "$pidfile"
    say "$name not running"
  fi
}

# start_bg PIDFILE LOGFILE CMD...: start CMD detached (own session, no inherited stdio) and
# write its pid to PIDFILE (pass "" when the daemon writes its own pid file).
start_bg() {
  local pidfile=$1 logfile=$2; shift 2
  # Without job control the background child is not a process-group leader, so setsid
  # does not fork and $! is the daemon's own pid.
  # 9>&-: don't leak up.sh's lock fd into the daemon (it would hold the lock forever).
  setsid nohup "$@" >>"$logfile" 2>&1 </dev/null 9>&- &
  [[ -z $pidfile ]] || echo $! >"$pidfile"
}

# write_if_changed FILE: content on stdin; returns 0 if FILE was (re)written, 1 if unchanged.
write_if_changed() {
  local file=$1 tmp
  tmp=$(mktemp "$file.tmp.XXXXXX")
  cat >"$tmp"
  if [[ -f $file ]] && cmp -s "$tmp" "$file"; then
    rm -f "$tmp"
    return 1
  fi
  chmod 644 "$tmp"
  mv -f "$tmp" "$file"
  return 0
}
