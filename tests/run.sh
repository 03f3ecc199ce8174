#!/usr/bin/env bash
# The whole test suite, from a fresh machine: sets up the test environment (engines, registries,
# fixture images, Python venv) and runs every suite against the real engines.
#   bash tests/run.sh            # everything
#   SKIP_LINT=1 bash tests/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
# A run builds everything once: incremental artifacts would only cost disk (gigabytes) and time.
export CARGO_INCREMENTAL=0
start=$(date +%s)
step() { printf '\n=== %s (%ss)\n' "$1" "$(( $(date +%s) - start ))"; }

step "test environment"
bash tests/env/up.sh
# shellcheck disable=SC1091
source tests/env/run/env.sh

if [ -z "${SKIP_LINT:-}" ]; then
  step "cargo fmt --check"
  cargo fmt --all -- --check
  step "shellcheck"
  git ls-files -z '*.sh' | xargs -0 shellcheck -x
  step "cargo clippy"
  cargo clippy -p headjack -p headjack-ffi -p headjack-py -p headjack-agent -p headjack-egress --all-targets --features headjack/cli -- -D warnings
fi

step "core + CLI against Docker ($HEADJACK_TEST_DOCKER_HOST)"
HEADJACK_TEST_HOST="$HEADJACK_TEST_DOCKER_HOST" cargo test -p headjack --features cli

step "core against Podman ($HEADJACK_TEST_PODMAN_HOST)"
HEADJACK_TEST_HOST="$HEADJACK_TEST_PODMAN_HOST" \
  cargo test -p headjack --features cli --test runtime --test spec_options --test builds --test buildkit --test registry \
    --test defects --test agent --test sandbox --test devcontainer --test cli_procs --test egress --test pool_claims

step "exec tests on the engine's exec path (no in-container agent), Docker"
HEADJACK_TEST_HOST="$HEADJACK_TEST_DOCKER_HOST" HEADJACK_TEST_ENGINE_EXEC=1 \
  cargo test -p headjack --features cli --test runtime --test spec_options --test defects --test devcontainer

step "the in-container agent: protocol, agent binary, containers on Docker, Podman and gVisor"
cargo test -p headjack-agent

step "egress proxy: policy, parsers, in-process, Docker and Podman end to end"
cargo test -p headjack-egress

step "C ABI, C programs and Go"
cargo test -p headjack-ffi

step "Python"
bash headjack-py/run-tests.sh

step "MCP server (headjack mcp, driven by the MCP Python client)"
bash headjack/tests/mcp/run.sh

step "framework adapters (OpenAI Agents SDK, deepagents)"
bash headjack-py/run-adapter-tests.sh

step "leak check"
leaks=0
for host in "$HEADJACK_TEST_DOCKER_HOST" "$HEADJACK_TEST_PODMAN_HOST" ${HEADJACK_TEST_GVISOR_HOST:-}; do
  n=$(DOCKER_HOST="$host" docker ps -aq --filter label=io.headjack.managed=true | wc -l)
  if [ "$n" -gt 0 ]; then
    echo "tests left $n headjack container(s) on $host:"
    DOCKER_HOST="$host" docker ps -a --filter label=io.headjack.managed=true
    leaks=1
  fi
  n=$(DOCKER_HOST="$host" docker network ls -q --filter label=io.headjack.egress=instance | wc -l)
  if [ "$n" -gt 0 ]; then
    echo "tests left $n egress instance network(s) on $host:"
    DOCKER_HOST="$host" docker network ls --filter label=io.headjack.egress=instance
    leaks=1
  fi
done
[ "$leaks" -eq 0 ] || { echo "FAILED: the suite leaked containers"; exit 1; }
step "all suites passed"
