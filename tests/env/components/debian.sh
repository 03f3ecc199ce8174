# shellcheck shell=bash
# tests/env component: debian:bookworm-slim from debootstrap (tarball cached in tests/env/cache/).
# Sourced by tests/env/up.sh (which defines dk/pd/gv, image_id, CLEANUP and the lib.sh helpers); defines step_debian and its checks.

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
