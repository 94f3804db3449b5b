#!/usr/bin/env bash
# The test command: makes .venv if needed, installs the project with its test extras, runs pytest.
# Shared data (weights, clips, goldens) is read from $RVM_RENDER_SHARED, default ../shared.
set -euo pipefail
cd "$(dirname "$0")/.."
export RVM_RENDER_SHARED="${RVM_RENDER_SHARED:-$(cd .. && pwd)/shared}"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -e '.[test]' torch==2.13.0
exec .venv/bin/python -m pytest "$@"
