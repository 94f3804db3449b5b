#!/usr/bin/env bash
# The test command: makes .venv if needed, installs the project with its test extras, runs pytest.
# Shared data (weights, clips, goldens) is read from $RVM_RENDER_SHARED, default ../shared.
# The status page is tested in Debian's chromium (driven by Playwright, whose own browser download is
# not used): installed here when missing and running as root.
set -euo pipefail
cd "$(dirname "$0")/.."
export RVM_RENDER_SHARED="${RVM_RENDER_SHARED:-$(cd .. && pwd)/shared}"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -e '.[test]' torch==2.13.0
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  apt-get install -y -qq chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }
fi
exec .venv/bin/python -m pytest "$@"
