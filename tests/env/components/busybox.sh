# shellcheck shell=bash
# tests/env component: Fixture image localhost/headjack-test/busybox:latest.
# Sourced by tests/env/up.sh (which defines dk/pd/gv, image_id, CLEANUP and the lib.sh helpers); defines step_busybox and its checks.

# The fixture's files (Dockerfile, etc/passwd, etc/group) live in tests/fixtures/busybox; the
# static busybox comes from the host's busybox-static package.
BUSYBOX_FIXTURE="$ENV_DIR/../fixtures/busybox"
BUSYBOX_TOOLS="sh sleep ls id cat kill grep tr head dd ip ps mkdir chmod stat"

step_busybox() {
  local t0 rev have ctx log=$RUN_DIR/build-busybox.log
  t0=$(now)
  [[ -x /bin/busybox ]] || die "/bin/busybox missing (package busybox-static)"
  rev=$( { cat "$BUSYBOX_FIXTURE/Dockerfile" "$BUSYBOX_FIXTURE/etc/passwd" "$BUSYBOX_FIXTURE/etc/group"
           sha256sum /bin/busybox; } | sha256sum | cut -c1-16)
  have=$(dk image inspect -f '{{index .Config.Labels "org.headjack.test.fixture-rev"}}' \
         "$BUSYBOX_IMAGE" 2>/dev/null || true)
  if [[ $have == "$rev" ]]; then
    say "busybox fixture present ($(elapsed "$t0"))"
    return
  fi
  ctx=$(mktemp -d /tmp/headjack-busybox.XXXXXX); CLEANUP+=("$ctx")
  cp -r "$BUSYBOX_FIXTURE/." "$ctx/"
  cp /bin/busybox "$ctx/busybox"
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
