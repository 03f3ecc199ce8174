#!/usr/bin/env bash
# Builds the Python module into a venv and runs the pytest suite, stubtest and mypy.
# Idempotent; used by CI. Needs a running container engine and the fixture image
# localhost/headjack-test/busybox:latest (tests/env/up.sh provides both).
#
#   headjack-py/run-tests.sh [pytest args...]
#
# Environment: VENV (default <repo>/.venv), PYTHON (default python3).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
venv="${VENV:-$repo/.venv}"
python="${PYTHON:-python3}"

if [ -f "$repo/tests/env/run/env.sh" ]; then
    # shellcheck disable=SC1091
    . "$repo/tests/env/run/env.sh"
fi

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    'maturin>=1.9.4,<2' 'pytest>=7' 'pytest-asyncio>=0.23' 'mypy>=1.10'

cd "$repo"
"$venv/bin/maturin" develop --quiet -m headjack-py/Cargo.toml
"$venv/bin/python" -m mypy.stubtest headjack._headjack
"$venv/bin/python" -m mypy --config-file headjack-py/pyproject.toml \
    headjack-py/python/headjack headjack-py/tests headjack-py/bench.py examples/python
"$venv/bin/python" -m pytest headjack-py/tests -q "$@"
