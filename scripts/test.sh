#!/usr/bin/env bash
# Runs the whole test suite: everything but PC/SC directly, then the PC/SC tests inside a
# private mount and network namespace with their own pcscd and virtual reader.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export SDL_VIDEODRIVER=offscreen
rc=0
bash scripts/install-check.sh || rc=$?
env -u DISPLAY "$PY" -m pytest -m "not pcsc" "$@" || rc=$?
if [ -f tests/integration/run_pcsc.sh ]; then
  if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null; then
    unshare --mount --net --fork bash tests/integration/run_pcsc.sh || rc=$?
  else
    echo "PC/SC tests need root for a private namespace; not run" >&2
  fi
fi
exit $rc
