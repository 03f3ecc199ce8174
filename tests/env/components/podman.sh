# shellcheck shell=bash
# tests/env component: Podman API socket.
# Sourced by tests/env/up.sh (which defines dk/pd/gv, image_id, CLEANUP and the lib.sh helpers); defines step_podman and its checks.

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
