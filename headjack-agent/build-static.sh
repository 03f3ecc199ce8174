#!/bin/sh
# Builds the static headjack-agent binary (no dynamic loader, no shared libraries), so it runs
# in any Linux image of the same architecture: scratch + busybox, Debian, an image with no
# shell at all.
#
#   headjack-agent/build-static.sh [TARGET]     (default: the host's target triple)
#
# The musl target is not needed: glibc's static libraries and `+crt-static` give a static-pie
# binary. The agent calls no NSS function (users come from the image's /etc/passwd), so static
# glibc is safe. The `agent` profile (workspace Cargo.toml) optimises for size.
# Prints the binary's path.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
target=${1:-$(rustc -vV | sed -n 's/^host: //p')}

cd "$root"
RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --quiet --profile agent -p headjack-agent --bin headjack-agent \
    --target "$target"

bin="$root/target/$target/agent/headjack-agent"
if ! file "$bin" 2>/dev/null | grep -q 'static'; then
    if command -v file >/dev/null 2>&1; then
        echo "build-static.sh: $bin is not statically linked:" >&2
        file "$bin" >&2
        exit 1
    fi
fi
echo "$bin"
