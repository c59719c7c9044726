#!/usr/bin/env bash
# ./run_tests.sh [pytest args]   — creates/reuses .venv (scripts/install.sh --test), then runs the test suite.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
scripts/install.sh --test
exec .venv/bin/python -m pytest "$@"
