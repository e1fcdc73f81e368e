#!/usr/bin/env bash
# Runs the checks and the test suite: the install check, ruff (lint and format), mypy, then everything but PC/SC
# and the long `slow` runs directly, then the PC/SC tests inside a private mount and network
# namespace with their own pcscd and virtual reader. Every step runs; the script exits non-zero
# when any of them failed (pytest's 5, "no tests ran", included).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export SDL_VIDEODRIVER=offscreen
rc=0
step() {
  local code=0
  "$@" || code=$?
  if [ "$code" -ne 0 ]; then
    echo "FAILED ($code): $*" >&2
    rc=$code
  fi
}
step bash scripts/install-check.sh
step "$PY" -m ruff check .
step "$PY" -m ruff format --check .
step "$PY" -m mypy
step env -u DISPLAY "$PY" -m pytest -m "not pcsc and not slow" "$@"
if [ -f tests/integration/run_pcsc.sh ]; then
  if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null; then
    step unshare --mount --net --fork bash tests/integration/run_pcsc.sh
  else
    echo "PC/SC tests need root for a private namespace; not run" >&2
  fi
fi
exit $rc
