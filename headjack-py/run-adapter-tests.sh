#!/usr/bin/env bash
# The framework adapters (headjack.adapters.*) against the real engine: makes a venv with the
# frameworks from PyPI (cached), builds headjack into it with the adapter extras, type-checks the
# adapters, tests and examples, and runs the tests.
#
#   headjack-py/run-adapter-tests.sh [pytest args...]
#
# Environment: VENV (default <repo>/.venv-frameworks), PYTHON (default python3),
# HEADJACK_TEST_HOST (default the Docker engine of tests/env); tests/env/run/env.sh is sourced
# when present. Needs the fixture images of tests/env/up.sh; the deepagents tests build a small
# python3 image from the Debian fixture once (apt inside the build).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
venv="${VENV:-$repo/.venv-frameworks}"
python="${PYTHON:-python3}"

if [ -f "$repo/tests/env/run/env.sh" ]; then
    # shellcheck disable=SC1091
    . "$repo/tests/env/run/env.sh"
fi
export HEADJACK_TEST_HOST="${HEADJACK_TEST_HOST:-${HEADJACK_TEST_DOCKER_HOST:-unix:///var/run/docker.sock}}"

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/tests-adapters/requirements.txt"

cd "$repo"
# The extras resolve against the pins above (a conflict fails here); pip's chatter is shown
# only when the build fails.
log="$(mktemp)"
if ! VIRTUAL_ENV="$venv" "$venv/bin/maturin" develop --quiet -m headjack-py/Cargo.toml \
    --extras openai-agents,deepagents >"$log" 2>&1; then
    cat "$log"
    rm -f "$log"
    exit 1
fi
rm -f "$log"
"$venv/bin/python" -m mypy --config-file headjack-py/pyproject.toml \
    headjack-py/python/headjack/adapters headjack-py/tests-adapters examples/frameworks
"$venv/bin/python" -m pytest headjack-py/tests-adapters -q -p no:cacheprovider "$@"
