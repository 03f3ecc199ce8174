# shellcheck shell=bash
# tests/env component: Debian packages (apt-get update once, install only what is missing).
# Sourced by tests/env/up.sh (which defines dk/pd/gv, image_id, CLEANUP and the lib.sh helpers); defines step_packages and its checks.

BASE_PKGS=(curl ca-certificates iproute2 busybox-static debootstrap docker-registry apache2-utils
           podman catatonit uidmap slirp4netns fuse-overlayfs runsc)
# Not used by this script, but the test suites need them (Go and clang/ASan based tests, and
# the lint step of tests/run.sh).
TOOLCHAIN_PKGS=(golang-go clang libclang-rt-14-dev shellcheck)
APT_LOG=$RUN_DIR/apt.log
APT_UPDATED=0

missing_pkgs() {
  local p st
  for p in "$@"; do
    st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
    [[ $st == ii* ]] || printf '%s\n' "$p"
  done
}

apt_install() {
  local t0; t0=$(now)
  if (( ! APT_UPDATED )); then
    timeout 900 apt-get update >>"$APT_LOG" 2>&1 || die "apt-get update" "$APT_LOG"
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive timeout 1800 apt-get install -y \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" >>"$APT_LOG" 2>&1 \
    || die "apt-get install $*" "$APT_LOG"
  say "installed $* ($(elapsed "$t0"))"
}

step_packages() {
  local t0 want=("${BASE_PKGS[@]}") missing
  t0=$(now)
  [[ ${HEADJACK_TEST_SKIP_TOOLCHAIN:-0} == 1 ]] || want+=("${TOOLCHAIN_PKGS[@]}")
  mapfile -t missing < <(missing_pkgs "${want[@]}")
  if (( ${#missing[@]} )); then
    apt_install "${missing[@]}"
  else
    say "packages present ($(elapsed "$t0"))"
  fi
}
