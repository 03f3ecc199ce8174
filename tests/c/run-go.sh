#!/bin/sh
# Builds and runs the Go example (examples/go) against the engine. Called by
# headjack-ffi/tests/c_programs.rs; needs Debian's golang-go (>= 1.17 for cgo.Handle) and
# target/debug/libheadjack.a (cargo build -p headjack-ffi).
#   HEADJACK_GO_OUT  where to put the binary (default: a temporary file)
#   GOCACHE          Go's build cache (default: Go's own)
set -eu
here=$(cd "$(dirname "$0")/../.." && pwd)
command -v go >/dev/null || { echo "run-go.sh: go is not installed (apt-get install golang-go)" >&2; exit 1; }
out=${HEADJACK_GO_OUT:-$(mktemp -d)/headjack-example}
cd "$here/examples/go"
# No network: the module has no dependencies.
GOFLAGS=-mod=mod GOPROXY=off CGO_ENABLED=1 go vet .
GOFLAGS=-mod=mod GOPROXY=off CGO_ENABLED=1 go build -o "$out" .
"$out" "$@"
