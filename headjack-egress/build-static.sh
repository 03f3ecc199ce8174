#!/usr/bin/env bash
# Builds the static headjack-egress binary (static-pie on x86_64-unknown-linux-gnu: the musl target
# is not installed here; the binary uses no glibc NSS function) and prints its path.
#   bash headjack-egress/build-static.sh            # profile egress-static (size-optimised, stripped)
#   PROFILE=dev bash headjack-egress/build-static.sh
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${PROFILE:-egress-static}
target=x86_64-unknown-linux-gnu
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
  cargo build --quiet --profile "$profile" -p headjack-egress --bin headjack-egress --target "$target" >&2
dir=$profile
[[ $profile == dev ]] && dir=debug
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
echo "$target_dir/$target/$dir/headjack-egress"
