#!/usr/bin/env bash
# PC/SC integration tests against a private pcscd that knows only the virtual reader (vpcd).
# scripts/test.sh runs this as `unshare --mount --net --fork bash tests/integration/run_pcsc.sh`,
# so /run/pcscd and port 35963 are our own; the tests start tests/integration/vcard.py themselves.
set -uo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}

ip link set lo up
mkdir -p /run/pcscd
mount -t tmpfs tmpfs /run/pcscd

conf=$(mktemp -d)
trap 'rm -rf "$conf"' EXIT
if [ -f /etc/reader.conf.d/vpcd ]; then
  cp /etc/reader.conf.d/vpcd "$conf/vpcd"
else
  lib=$(find /usr/lib -name libifdvpcd.so 2>/dev/null | head -n1)
  if [ -z "$lib" ]; then
    echo "run_pcsc: vsmartcard-vpcd is not installed (scripts/setup-dev.sh installs it)" >&2
    exit 1
  fi
  printf 'FRIENDLYNAME "Virtual PCD"\nDEVICENAME /dev/null:0x8C7B\nLIBPATH %s\nCHANNELID 0x8C7B\n' "$lib" >"$conf/vpcd"
fi

pcscd --foreground -c "$conf" >"$conf/pcscd.log" 2>&1 &
pcscd_pid=$!
for _ in $(seq 100); do
  [ -S /run/pcscd/pcscd.comm ] && break
  kill -0 "$pcscd_pid" 2>/dev/null || break
  sleep 0.05
done
if [ ! -S /run/pcscd/pcscd.comm ]; then
  echo "run_pcsc: pcscd did not start; its log:" >&2
  cat "$conf/pcscd.log" >&2
  kill "$pcscd_pid" 2>/dev/null
  wait "$pcscd_pid" 2>/dev/null
  exit 1
fi

KIOSK_PCSC_ISOLATED=1 "$PY" -m pytest -q -m pcsc tests/integration "$@"
rc=$?
[ "$rc" = 5 ] && { echo "run_pcsc: no PC/SC tests were collected" >&2; rc=1; }

kill "$pcscd_pid" 2>/dev/null
wait "$pcscd_pid" 2>/dev/null
exit "$rc"
