#!/usr/bin/env bash
# Drives `headjack mcp` with the real MCP Python client against the real engine: builds the
# binary, makes a venv with the pinned client (cached), type-checks the test, runs pytest.
#
#   headjack/tests/mcp/run.sh [pytest args...]
#
# Environment: VENV (default <repo>/.venv-mcp), PYTHON (default python3), HEADJACK_TEST_HOST
# (default the Docker socket); tests/env/run/env.sh is sourced when present.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
venv="${VENV:-$repo/.venv-mcp}"
python="${PYTHON:-python3}"

if [ -f "$repo/tests/env/run/env.sh" ]; then
    # shellcheck disable=SC1091
    . "$repo/tests/env/run/env.sh"
fi
export HEADJACK_TEST_HOST="${HEADJACK_TEST_HOST:-${HEADJACK_TEST_DOCKER_HOST:-unix:///var/run/docker.sock}}"

cd "$repo"
cargo build -q -p headjack --features cli --bin headjack
export HEADJACK_BIN="$repo/target/debug/headjack"

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
"$venv/bin/python" -m mypy --strict "$here/test_mcp_server.py"
"$venv/bin/python" -m pytest "$here" -q -p no:cacheprovider "$@"
