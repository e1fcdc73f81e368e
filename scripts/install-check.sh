#!/usr/bin/env bash
# Runs systemd/install.sh into a throwaway root, as on a fresh Raspberry Pi OS Lite: a dry run,
# the demo install, and a second install that must change nothing. CI runs it from
# scripts/test.sh so the installer's output is in the test log; tests/tech/test_install.py
# checks the result in detail. Needs root (useradd --prefix writes the root's /etc/passwd).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ] || ! command -v useradd >/dev/null; then
  echo "install-check: needs root and useradd; not run" >&2
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root/etc"
printf 'root:x:0:0:root:/root:/bin/bash\n' > "$root/etc/passwd"
printf 'root:x:0:\ntty:x:5:\ndialout:x:20:\n' > "$root/etc/group"
printf 'root:*:19000:0:99999:7:::\n' > "$root/etc/shadow"
printf 'root:*::\ntty:*::\ndialout:*::\n' > "$root/etc/gshadow"
export PYTHON=${PYTHON:-.venv/bin/python}
echo "== install.sh --dry-run into a throwaway root"
bash systemd/install.sh --root "$root" --demo --skip-build --dry-run
echo "== install.sh into a throwaway root"
bash systemd/install.sh --root "$root" --demo --skip-build
echo "== install.sh again: nothing may change"
out=$(bash systemd/install.sh --root "$root" --demo --skip-build)
echo "$out"
if grep -q '^  + ' <<<"$out"; then
  echo "install-check: the second run changed something" >&2
  exit 1
fi
echo "== what the install created"
find "$root" -path "$root/opt/kiosk/releases/*/*" -prune -o -printf '%M %U:%G %p\n' | sed "s#$root##" | sort -k3
