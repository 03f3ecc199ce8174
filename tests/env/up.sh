#!/usr/bin/env bash
# Bring up the headjack test environment (see tests/env/README.md). Idempotent; run as root.
#
#   tests/env/up.sh            # start/ensure everything, cheap smoke checks (seconds when warm)
#   tests/env/up.sh --verify   # additionally run the slow checks (apt build, limits, registry pulls)
#
# Then: source tests/env/run/env.sh
set -euo pipefail

SELF=up.sh # used by lib.sh
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

VERIFY=0
for arg in "$@"; do
  case $arg in
    --verify) VERIFY=1 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) die "unknown argument: $arg (try --help)" ;;
  esac
done

[[ $EUID -eq 0 ]] || die "must run as root (it installs packages, starts daemons and writes /etc/containers)"

mkdir -p "$RUN_DIR" "$CACHE_DIR"
# tests/env/run -> the machine-wide run directory (where env.sh is written).
if [[ -d "$ENV_DIR/run" && ! -L "$ENV_DIR/run" ]]; then rm -rf "$ENV_DIR/run"; fi
ln -sfn "$RUN_DIR" "$ENV_DIR/run"
exec 9>"$RUN_DIR/up.lock"
flock -w 1200 9 || die "another up.sh still holds $RUN_DIR/up.lock after 20 minutes"

T_ALL=$(now)
# Never let the caller's docker client settings redirect us.
unset DOCKER_HOST DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH
dk() { DOCKER_HOST="unix://$MAIN_SOCK" docker "$@"; }
pd() { DOCKER_HOST="unix://$PODMAN_SOCK" docker "$@"; }
gv() { DOCKER_HOST="unix://$GVISOR_SOCK" docker "$@"; }

CLEANUP=()
cleanup() {
  local p
  for p in "${CLEANUP[@]}"; do
    [[ -e $p ]] || continue
    # a killed debootstrap can leave proc/sys mounted inside its target
    findmnt -rn -o TARGET | grep -F "$p/" | sort -r | xargs -r umount -l 2>/dev/null || true
    rm -rf --one-file-system "$p"
  done
}
trap cleanup EXIT

# image_id ENGINE-FN REF -> "abc123..." (no sha256: prefix), empty if absent
image_id() { local id; id=$("$1" image inspect -f '{{.Id}}' "$2" 2>/dev/null) || return 0; echo "${id#sha256:}"; }

# One file per component, in the order they come up.
for component in packages docker busybox debian registries podman gvisor envfile; do
  # shellcheck source=/dev/null
  source "$ENV_DIR/components/$component.sh"
done

step_packages
step_docker
step_busybox
step_debian
(( VERIFY )) && verify_debian_apt "$MAIN_SOCK" docker
step_registries
(( VERIFY )) && verify_registry_pulls "$MAIN_SOCK" docker
step_podman
(( VERIFY )) && { verify_podman; verify_registry_pulls "$PODMAN_SOCK" podman; verify_debian_apt "$PODMAN_SOCK" podman; }
step_gvisor
(( VERIFY )) && verify_gvisor
step_envfile
say "environment ready$([[ -e $GVISOR_MARKER ]] && echo ' (WITHOUT gVisor)') in $(elapsed "$T_ALL"); source $RUN_DIR/env.sh"
