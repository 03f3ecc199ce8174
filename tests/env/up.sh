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

# ---------------------------------------------------------------------------------------------
# 0. Debian packages (apt-get update once, install only what is missing)
# ---------------------------------------------------------------------------------------------
BASE_PKGS=(curl ca-certificates iproute2 busybox-static debootstrap docker-registry apache2-utils
           podman catatonit uidmap slirp4netns fuse-overlayfs runsc)
# Not used by this script, but the test suites need them (Go and clang/ASan based tests).
TOOLCHAIN_PKGS=(golang-go clang libclang-rt-14-dev)
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

# ---------------------------------------------------------------------------------------------
# 1. Main Docker engine on /var/run/docker.sock
# ---------------------------------------------------------------------------------------------
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

# ---------------------------------------------------------------------------------------------
# 2. Fixture image localhost/headjack-test/busybox:latest
# ---------------------------------------------------------------------------------------------
BUSYBOX_DOCKERFILE='FROM scratch
COPY busybox /bin/busybox
COPY etc/ /etc/
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox --install -s /bin && mkdir -p /tmp /root /home/agent /var/tmp && chmod 1777 /tmp /var/tmp && chmod 700 /root && chown 1000:1000 /home/agent && chmod 755 /home/agent"]
CMD ["sh"]
'
BUSYBOX_PASSWD='root:x:0:0:root:/root:/bin/sh
agent:x:1000:1000:agent:/home/agent:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
'
BUSYBOX_GROUP='root:x:0:
agent:x:1000:
nogroup:x:65534:
'
BUSYBOX_TOOLS="sh sleep ls id cat kill grep tr head dd ip ps mkdir chmod stat"

step_busybox() {
  local t0 rev have ctx log=$RUN_DIR/build-busybox.log
  t0=$(now)
  [[ -x /bin/busybox ]] || die "/bin/busybox missing (package busybox-static)"
  rev=$( { printf '%s' "$BUSYBOX_DOCKERFILE$BUSYBOX_PASSWD$BUSYBOX_GROUP"; sha256sum /bin/busybox; } \
         | sha256sum | cut -c1-16)
  have=$(dk image inspect -f '{{index .Config.Labels "org.headjack.test.fixture-rev"}}' \
         "$BUSYBOX_IMAGE" 2>/dev/null || true)
  if [[ $have == "$rev" ]]; then
    say "busybox fixture present ($(elapsed "$t0"))"
    return
  fi
  ctx=$(mktemp -d /tmp/headjack-busybox.XXXXXX); CLEANUP+=("$ctx")
  mkdir -p "$ctx/etc"
  cp /bin/busybox "$ctx/busybox"
  printf '%s' "$BUSYBOX_DOCKERFILE" >"$ctx/Dockerfile"
  printf '%s' "$BUSYBOX_PASSWD" >"$ctx/etc/passwd"
  printf '%s' "$BUSYBOX_GROUP" >"$ctx/etc/group"
  DOCKER_BUILDKIT=0 timeout 300 docker -H "unix://$MAIN_SOCK" build --label "org.headjack.test.fixture-rev=$rev" \
    -t "$BUSYBOX_IMAGE" "$ctx" >"$log" 2>&1 || die "docker build of $BUSYBOX_IMAGE" "$log"
  local out
  out=$(dk run --rm --network none "$BUSYBOX_IMAGE" sh -c \
        "for c in $BUSYBOX_TOOLS; do command -v \$c >/dev/null || echo missing:\$c; done
         [ \"\$(stat -c %a /tmp)\" = 1777 ] || echo bad:/tmp
         id agent" 2>&1) || die "smoke test of $BUSYBOX_IMAGE: $out"
  [[ $out == "uid=1000(agent) gid=1000(agent)"* ]] || die "smoke test of $BUSYBOX_IMAGE: $out"
  say "busybox fixture built ($(elapsed "$t0"))"
}

# ---------------------------------------------------------------------------------------------
# 3. debian:bookworm-slim from debootstrap (tarball cached in tests/env/cache/)
# ---------------------------------------------------------------------------------------------
# Prints "main <uri>" and "security <uri>" lines found in the host's apt sources.
host_debian_sources() {
  {
    # deb822 (*.sources)
    for f in /etc/apt/sources.list.d/*.sources; do
      [[ -r $f ]] || continue
      awk 'BEGIN { RS = ""; FS = "\n" }
           { types = uris = suites = ""; enabled = "yes"
             for (i = 1; i <= NF; i++) {
               line = $i
               if (line ~ /^[ \t]*#/) continue
               split(line, kv, ":"); key = tolower(kv[1]); val = substr(line, length(kv[1]) + 2)
               gsub(/^[ \t]+|[ \t]+$/, "", val)
               if (key == "types") types = val; else if (key == "uris") uris = val
               else if (key == "suites") suites = val; else if (key == "enabled") enabled = tolower(val)
             }
             if (enabled == "no" || (" " types " ") !~ / deb /) next
             split(uris, u, /[ \t]+/); n = split(suites, s, /[ \t]+/)
             for (j = 1; j <= n; j++) print s[j], u[1]
           }' "$f"
    done
    # one-line format
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
      | sed -e 's/#.*//' -e 's/\[[^]]*\]//' | awk '$1 == "deb" && NF >= 3 { print $3, $2 }'
  } | awk '
    $1 == "bookworm" && !m1 { m1 = $2 }
    $1 == "bookworm-security" && !s1 { s1 = $2 }
    $1 !~ /-(security|updates|backports)$/ && $2 ~ /\/debian\/?$/ && !m2 { m2 = $2 }
    $1 ~ /-security$/ && !s2 { s2 = $2 }
    END { m = m1 ? m1 : m2; s = s1 ? s1 : s2
          if (m) print "main", m; if (s) print "security", s }'
}

step_debian() {
  local t0 mirror="" security="" arch key tarball have apt_extra proxy log=$RUN_DIR/debootstrap.log
  t0=$(now)
  while read -r kind uri; do
    case $kind in main) mirror=${uri%/} ;; security) security=${uri%/} ;; esac
  done < <(host_debian_sources)
  mirror=${HEADJACK_TEST_DEBIAN_MIRROR:-${mirror:-http://deb.debian.org/debian}}
  security=${HEADJACK_TEST_DEBIAN_SECURITY_MIRROR:-${security:-http://deb.debian.org/debian-security}}
  # Host apt settings the image needs too: proxies and the snapshot-mirror validity switches.
  apt_extra=$(apt-config dump 2>/dev/null \
    | grep -E '^Acquire::(https?::Proxy|Check-Valid-Until|Check-Date)' || true)
  proxy=${http_proxy:-$(apt-config dump 2>/dev/null | sed -n 's/^Acquire::http::Proxy "\(.*\)";$/\1/p' | head -n1)}
  arch=$(dpkg --print-architecture)
  key=$(printf 'recipe=2\n%s\n%s\n%s\n%s\n' "$mirror" "$security" "$apt_extra" "$arch" | sha256sum | cut -c1-10)
  tarball=$CACHE_DIR/debian-bookworm-minbase-$arch-$key.tar.gz

  have=$(dk image inspect -f '{{index .Config.Labels "org.headjack.test.rootfs"}}' "$DEBIAN_IMAGE" 2>/dev/null || true)
  if [[ $have == "$(basename "$tarball")" ]]; then
    say "debian:bookworm-slim present ($(elapsed "$t0"))"
    return
  fi

  if [[ ! -s $tarball ]]; then
    [[ $proxy == *://127.* || $proxy == *://localhost* ]] && \
      warn "apt proxy $proxy is on the host loopback: RUN apt-get inside container builds cannot reach it"
    local work=$CACHE_DIR/debootstrap.tmp include=()
    CLEANUP+=("$work")
    cleanup_path "$work"
    mkdir -p "$work"
    [[ $mirror == https:* || $security == https:* ]] && include=(--include=ca-certificates)
    say "debootstrap bookworm from $mirror (takes ~1 min)"
    env ${proxy:+http_proxy=$proxy} timeout 1200 debootstrap --variant=minbase --arch="$arch" "${include[@]}" \
      bookworm "$work/root" "$mirror" >"$log" 2>&1 || die "debootstrap" "$log" "$work/root/debootstrap/debootstrap.log"
    local r=$work/root
    rm -f "$r"/var/cache/apt/archives/*.deb "$r"/var/cache/apt/*.bin "$r"/var/log/bootstrap.log
    rm -rf "$r"/var/lib/apt/lists/* && mkdir -p "$r/var/lib/apt/lists/partial"
    # docker bind-mounts these; don't bake the host's into the image
    rm -f "$r/etc/resolv.conf" "$r/etc/hostname"
    rm -f "$r/etc/apt/sources.list"
    cat >"$r/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    [[ -z $apt_extra ]] || printf '%s\n' "$apt_extra" >"$r/etc/apt/apt.conf.d/90headjack-test-host"
    tar --numeric-owner --exclude='./dev/*' -C "$r" -cf - . | gzip -1 >"$tarball.tmp" \
      || die "tar of the debootstrap tree"
    mv -f "$tarball.tmp" "$tarball"
    # drop tarballs of older recipes/mirrors
    find "$CACHE_DIR" -maxdepth 1 -name 'debian-bookworm-minbase-*.tar.gz' ! -name "$(basename "$tarball")" -delete
    cleanup_path "$work"
    say "debootstrap tarball cached: $(basename "$tarball") ($(du -h "$tarball" | cut -f1), $(elapsed "$t0"))"
  fi

  dk import -c 'CMD ["bash"]' -c "LABEL org.headjack.test.rootfs=$(basename "$tarball")" \
    "$tarball" "$DEBIAN_IMAGE" >/dev/null 2>"$RUN_DIR/import.log" || die "docker import $tarball" "$RUN_DIR/import.log"
  local out
  out=$(dk run --rm --network none "$DEBIAN_IMAGE" sh -c 'cat /etc/debian_version && apt-get --version | head -n1' 2>&1) \
    || die "smoke test of $DEBIAN_IMAGE: $out"
  say "debian:bookworm-slim imported (Debian $(head -n1 <<<"$out"), $(elapsed "$t0"))"
}

cleanup_path() {
  local p=$1
  [[ -e $p ]] || return 0
  findmnt -rn -o TARGET | grep -F "$p/" | sort -r | xargs -r umount -l 2>/dev/null || true
  rm -rf --one-file-system "$p"
}

verify_debian_apt() { # SOCKET LABEL
  local host=unix://$1 what=$2 t0 ctx log=$RUN_DIR/verify-apt.log tag=localhost/headjack-test/verify-apt:tmp
  t0=$(now)
  ctx=$(mktemp -d /tmp/headjack-apt.XXXXXX); CLEANUP+=("$ctx")
  printf 'FROM %s\nRUN apt-get update && apt-get install -y --no-install-recommends jq\n' "$DEBIAN_IMAGE" >"$ctx/Dockerfile"
  DOCKER_BUILDKIT=0 timeout 600 docker -H "$host" build -t "$tag" "$ctx" >"$log" 2>&1 \
    || die "verify: $what build FROM debian:bookworm-slim with apt-get install jq" "$log"
  local v; v=$(timeout 60 docker -H "$host" run --rm --network none "$tag" jq --version 2>&1) \
    || die "verify: jq in the image $what built: $v"
  docker -H "$host" rmi "$tag" >/dev/null
  say "verify: $what build FROM debian:bookworm-slim with apt-get install jq works ($v, $(elapsed "$t0"))"
}

# ---------------------------------------------------------------------------------------------
# 4. Registries: open on 127.0.0.1:5000, htpasswd on 127.0.0.1:5001 (plain HTTP)
# ---------------------------------------------------------------------------------------------
registry_up() { # NAME ADDR
  if [[ $1 == open ]]; then
    curl -fsS -o /dev/null --max-time 2 "http://$2/v2/"
  else
    [[ $(curl -sS -o /dev/null -w '%{http_code}' --max-time 2 "http://$2/v2/") == 401 ]] &&
      curl -fsS -o /dev/null --max-time 2 -u "$REG_USER:$REG_PASSWORD" "http://$2/v2/"
  fi
}

ensure_registry() { # NAME ADDR
  local name=$1 addr=$2 t0 cfg=$RUN_DIR/registry-$1.yml pidf=$RUN_DIR/registry-$1.pid
  local log=$RUN_DIR/registry-$1.log changed=0
  t0=$(now)
  mkdir -p "$RUN_DIR/registry-$name"
  {
    cat <<EOF
# generated by tests/env/up.sh
version: 0.1
log:
  level: info
  fields:
    service: headjack-test-registry-$name
storage:
  filesystem:
    rootdirectory: $RUN_DIR/registry-$name
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: $addr
  secret: headjack-test-only
  headers:
    X-Content-Type-Options: [nosniff]
EOF
    if [[ $name == auth ]]; then
      cat <<EOF
auth:
  htpasswd:
    realm: headjack-test
    path: $RUN_DIR/registry.htpasswd
EOF
    fi
  } | write_if_changed "$cfg" && changed=1

  if pid_running "$pidf" docker-registry; then
    if (( changed )); then
      stop_pid "registry $addr (config changed)" "$pidf" docker-registry 10 >/dev/null
    elif wait_until 5 registry_up "$name" "$addr"; then
      say "registry $addr ready ($(elapsed "$t0"))"
      return
    else
      die "registry $addr (pid $(<"$pidf")) runs but does not answer" "$log"
    fi
  fi
  if curl -s -o /dev/null --max-time 2 "http://$addr/v2/"; then
    die "$addr is already served by a process up.sh did not start (ss -ltnp | grep ${addr##*:})"
  fi
  start_bg "$pidf" "$log" /usr/bin/docker-registry serve "$cfg"
  wait_until 30 registry_up "$name" "$addr" || die "registry $addr did not come up within 30s" "$log"
  say "registry $addr started ($name, pid $(<"$pidf"), $(elapsed "$t0"))"
}

# registry_config_digest ADDR [CURL-AUTH...] -> "abc..." config digest of headjack-test/busybox:latest
registry_config_digest() {
  local addr=$1; shift
  curl -fsS --max-time 5 "$@" -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://$addr/v2/headjack-test/busybox/manifests/latest" 2>/dev/null \
    | tr -d ' \n' | grep -o '"config":{[^}]*}' | grep -o 'sha256:[0-9a-f]*' | head -n1 | sed 's/^sha256://' || true
}

push_fixture() { # ADDR AUTH(0|1)
  local addr=$1 auth=$2 t0 want have ref=$1/headjack-test/busybox:latest log=$RUN_DIR/push.log
  local curl_auth=()
  t0=$(now)
  (( auth )) && curl_auth=(-u "$REG_USER:$REG_PASSWORD")
  want=$(image_id dk "$BUSYBOX_IMAGE")
  have=$(registry_config_digest "$addr" "${curl_auth[@]}")
  if [[ -n $want && $have == "$want" ]]; then
    say "busybox fixture already in $addr ($(elapsed "$t0"))"
    return
  fi
  local cfgdir; cfgdir=$(mktemp -d /tmp/headjack-docker-config.XXXXXX); CLEANUP+=("$cfgdir")
  dk tag "$BUSYBOX_IMAGE" "$ref"
  if (( auth )); then
    printf '%s' "$REG_PASSWORD" | DOCKER_CONFIG=$cfgdir docker -H "unix://$MAIN_SOCK" login -u "$REG_USER" \
      --password-stdin "$addr" >"$log" 2>&1 || { dk rmi "$ref" >/dev/null 2>&1; die "docker login $addr" "$log"; }
  fi
  DOCKER_CONFIG=$cfgdir timeout 120 docker -H "unix://$MAIN_SOCK" push "$ref" >>"$log" 2>&1 \
    || { dk rmi "$ref" >/dev/null 2>&1; die "docker push $ref" "$log" "$RUN_DIR/registry-$([[ $auth == 1 ]] && echo auth || echo open).log"; }
  rm -rf "$cfgdir"
  # keep only the canonical name locally, so pull tests start from "not present"
  dk rmi "$ref" >/dev/null
  say "pushed busybox fixture to $ref ($(elapsed "$t0"))"
}

step_registries() {
  if ! grep -qs "^$REG_USER:" "$RUN_DIR/registry.htpasswd"; then
    htpasswd -Bbn "$REG_USER" "$REG_PASSWORD" >"$RUN_DIR/registry.htpasswd"
  fi
  ensure_registry open "$REG_OPEN_ADDR"
  ensure_registry auth "$REG_AUTH_ADDR"
  push_fixture "$REG_OPEN_ADDR" 0
  push_fixture "$REG_AUTH_ADDR" 1
}

verify_registry_pulls() { # SOCKET LABEL
  local host=unix://$1 what=$2 t0 cfgdir log=$RUN_DIR/verify-pull.log
  t0=$(now)
  cfgdir=$(mktemp -d /tmp/headjack-docker-config.XXXXXX); CLEANUP+=("$cfgdir")
  local ref
  for ref in "$REG_OPEN_ADDR/headjack-test/busybox:latest" "$REG_AUTH_ADDR/headjack-test/busybox:latest"; do
    if [[ $ref == "$REG_AUTH_ADDR"* ]]; then
      DOCKER_CONFIG=$cfgdir timeout 60 docker -H "$host" pull "$ref" >"$log" 2>&1 \
        && die "verify: $what pulled $ref without credentials"
      # credentials as a client keeps them (sent as X-Registry-Auth on pull); no `docker login`,
      # because podman's POST /auth refuses plain HTTP for 127.0.0.1 (see README)
      printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$REG_AUTH_ADDR" \
        "$(printf '%s:%s' "$REG_USER" "$REG_PASSWORD" | base64 -w0)" >"$cfgdir/config.json"
    fi
    DOCKER_CONFIG=$cfgdir timeout 120 docker -H "$host" pull "$ref" >>"$log" 2>&1 || die "verify: $what pull $ref" "$log"
    docker -H "$host" rmi "$ref" >/dev/null 2>&1 || true
  done
  rm -rf "$cfgdir"
  say "verify: $what pulls from both registries (auth one only with credentials) ($(elapsed "$t0"))"
}

# ---------------------------------------------------------------------------------------------
# 5. Podman API socket
# ---------------------------------------------------------------------------------------------
ULIMITS_LINE='default_ulimits = ["nofile=10000:10000","nproc=10000:10000"]'

podman_configure() { # returns 0 if a config file changed
  local changed=1 f=/etc/containers/containers.conf
  mkdir -p /etc/containers/registries.conf.d
  if [[ -f $f ]]; then
    # replace/insert default_ulimits under [containers], keep everything else
    awk -v line="$ULIMITS_LINE" '
      /^[ \t]*\[/ { insec = ($0 ~ /^[ \t]*\[containers\][ \t]*$/); print
                    if (insec && !done) { print line; done = 1 }; next }
      skip { if ($0 ~ /\]/) skip = 0; next }
      insec && /^[ \t]*default_ulimits[ \t]*=/ { skip = ($0 !~ /\]/); next }
      { print }
      END { if (!done) { print ""; print "[containers]"; print line } }' "$f" | write_if_changed "$f" && changed=0
  else
    printf '# written by headjack tests/env/up.sh: the hard rlimits here are below podman'"'"'s defaults\n[containers]\n%s\n' \
      "$ULIMITS_LINE" | write_if_changed "$f" && changed=0
  fi
  cat <<EOF | write_if_changed /etc/containers/registries.conf.d/50-headjack-test.conf && changed=0
# written by headjack tests/env/up.sh: local plain-HTTP test registries
[[registry]]
location = "$REG_OPEN_ADDR"
insecure = true

[[registry]]
location = "$REG_AUTH_ADDR"
insecure = true

# the same registries by name: podman's POST /auth (docker login through the socket) only allows
# plain HTTP for "localhost:" registries, so /auth tests must use localhost:5000/5001
[[registry]]
location = "localhost:${REG_OPEN_ADDR##*:}"
insecure = true

[[registry]]
location = "localhost:${REG_AUTH_ADDR##*:}"
insecure = true
EOF
  return $changed
}

podman_up() { curl -fs --max-time 3 --unix-socket "$PODMAN_SOCK" http://d/_ping | grep -q OK; }

podman_load() { # REF
  local ref=$1 want have out log=$RUN_DIR/podman-load.log
  want=$(image_id dk "$ref")
  have=$(podman image inspect --format '{{.Id}}' "$ref" 2>/dev/null || true)
  [[ -n $want && $have == "$want" ]] && return 1
  dk save "$ref" | timeout 300 podman load >"$log" 2>&1 || die "docker save $ref | podman load" "$log"
  if ! podman image exists "$ref"; then
    # docker save records "debian:bookworm-slim", which podman loads as localhost/debian:...
    out=$(sed -n 's/^Loaded image[^:]*: *//p' "$log" | head -n1 | cut -d, -f1)
    if [[ -z $out ]] || ! podman tag "$out" "$ref"; then die "podman load gave no image named $ref" "$log"; fi
    podman untag "$out" "$out" >/dev/null 2>&1 || true
  fi
  return 0
}

# Docker loads br_netfilter (bridge-nf-call-iptables=1) and sets the FORWARD policy to DROP, so
# frames between two containers on one Podman bridge go through iptables; netavark 1.4 adds ACCEPT
# rules only for networks with outside access, so every `--internal` Podman network carries no
# traffic at all while Docker runs on the same host (the egress proxy's topology needs them). Accept
# frames *bridged* inside one podman bridge (never routed between networks): what a host without
# Docker does.
podman_bridges_with_docker() {
  local rule=(-i 'podman+' -m physdev --physdev-is-bridged -j ACCEPT)
  iptables -C DOCKER-USER "${rule[@]}" 2>/dev/null && return 0
  iptables -I DOCKER-USER "${rule[@]}" || die "iptables -I DOCKER-USER ${rule[*]}"
  say "accepting bridged traffic inside podman bridges (Docker's FORWARD drop policy would block Podman internal networks)"
}

step_podman() {
  local t0 restart=0 pidf=$RUN_DIR/podman.pid log=$RUN_DIR/podman.log loaded=()
  t0=$(now)
  podman_configure && restart=1
  if pid_running "$pidf" "podman system service"; then
    if (( restart )); then
      stop_pid "podman service (config changed)" "$pidf" "podman system service" 15 >/dev/null
    elif ! wait_until 5 podman_up; then
      die "podman service (pid $(<"$pidf")) runs but $PODMAN_SOCK does not answer" "$log"
    fi
  fi
  if ! pid_running "$pidf" "podman system service"; then
    if podman_up; then
      die "$PODMAN_SOCK is served by a podman service up.sh did not start; stop it first"
    fi
    mkdir -p "$(dirname "$PODMAN_SOCK")"
    rm -f "$PODMAN_SOCK"
    start_bg "$pidf" "$log" podman system service --time=0 "unix://$PODMAN_SOCK"
    wait_until 30 podman_up || die "podman service did not answer on $PODMAN_SOCK within 30s" "$log"
    say "podman service started (pid $(<"$pidf"), storage driver $(podman info --format '{{.Store.GraphDriverName}}'))"
  fi
  podman_bridges_with_docker
  podman_load "$BUSYBOX_IMAGE" && loaded+=(busybox)
  podman_load "$DEBIAN_IMAGE" && loaded+=(debian)
  local api out
  api=$(curl -fsS --max-time 5 --unix-socket "$PODMAN_SOCK" http://d/v1.41/version | grep -o '"ApiVersion":"[^"]*"' | cut -d'"' -f4) \
    || die "GET /v1.41/version on $PODMAN_SOCK" "$log"
  out=$(timeout 60 docker -H "unix://$PODMAN_SOCK" run --rm "$BUSYBOX_IMAGE" id 2>&1) \
    || die "docker run through $PODMAN_SOCK: $out" "$log"
  [[ $out == uid=0* ]] || die "docker run through $PODMAN_SOCK printed: $out" "$log"
  say "podman socket ready (API $api${loaded[*]:+, loaded ${loaded[*]}}) ($(elapsed "$t0"))"
}

verify_podman() {
  local t0 out name=headjack-test-verify-$$ bind
  t0=$(now)
  bind=$(mktemp -d /tmp/headjack-bind.XXXXXX); CLEANUP+=("$bind")
  echo bound >"$bind/f"
  pd rm -f "$name" >/dev/null 2>&1 || true
  pd run -d --name "$name" --pids-limit 64 --memory 64m --network none -v "$bind:/mnt/b:ro" \
    "$BUSYBOX_IMAGE" sleep 120 >/dev/null || die "verify: podman run with limits"
  out=$(pd exec "$name" sh -c 'cat /mnt/b/f; ip -o link | grep -vc " lo:"; cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/pids.max /sys/fs/cgroup/memory.max' 2>&1 | tr '\n' ' ')
  out+=$(pd exec -u agent "$name" id -u 2>&1)
  out+=" $(echo stdin-ok | pd exec -i "$name" cat 2>&1)"
  pd rm -f "$name" >/dev/null 2>&1 || true
  [[ $out == "bound 0 64 67108864 1000 stdin-ok" ]] \
    || die "verify: podman exec/bind/pids/memory/network-none/user/stdin gave: $out (want: bound 0 64 67108864 1000 stdin-ok)"
  say "verify: podman exec, bind mount, --pids-limit, --memory, --network none, user, stdin ok ($(elapsed "$t0"))"
}

# ---------------------------------------------------------------------------------------------
# 6. Second dockerd with gVisor's runsc on /run/headjack-gvisor/docker.sock
# ---------------------------------------------------------------------------------------------
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

# ---------------------------------------------------------------------------------------------
# 7. env.sh for the test suites
# ---------------------------------------------------------------------------------------------
step_envfile() {
  {
    echo "# generated by tests/env/up.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ); source it before the tests"
    echo "export HEADJACK_TEST_DOCKER_HOST=unix://$MAIN_SOCK"
    echo "export HEADJACK_TEST_PODMAN_HOST=unix://$PODMAN_SOCK"
    if [[ -e $GVISOR_MARKER ]]; then
      echo "# gVisor unavailable: $(head -n1 "$GVISOR_MARKER")"
      echo "unset HEADJACK_TEST_GVISOR_HOST"
      echo "export HEADJACK_TEST_GVISOR_UNAVAILABLE=$(printf '%q' "$(head -n1 "$GVISOR_MARKER")")"
    else
      echo "export HEADJACK_TEST_GVISOR_HOST=unix://$GVISOR_SOCK"
    fi
    echo "export HEADJACK_TEST_REGISTRY=$REG_OPEN_ADDR"
    echo "export HEADJACK_TEST_AUTH_REGISTRY=$REG_AUTH_ADDR"
    echo "export HEADJACK_TEST_REGISTRY_USER=$REG_USER"
    echo "export HEADJACK_TEST_REGISTRY_PASSWORD=$REG_PASSWORD"
    echo "export HEADJACK_TEST_BUSYBOX=$BUSYBOX_IMAGE"
    echo "export HEADJACK_TEST_DEBIAN=$DEBIAN_IMAGE"
  } >"$RUN_DIR/env.sh.tmp"
  mv -f "$RUN_DIR/env.sh.tmp" "$RUN_DIR/env.sh"
}

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
