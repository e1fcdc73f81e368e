#!/usr/bin/env bash
# Installs what the kiosk and its tests need on Debian 12: system packages, then a
# virtual environment in .venv with the kiosk and its test, PC/SC and NFC extras.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  libgl1 libegl1 libegl-mesa0 libgl1-mesa-dri libgbm1 libmtdev1
  swig libpcsclite-dev libpcsclite1 pcscd vsmartcard-vpcd socat
  libusb-1.0-0 util-linux iproute2 systemd openssl
  fonts-dejavu-core espeak-ng
  prometheus prometheus-alertmanager chromium
)
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
else
  echo "setup-dev: not root or no apt-get; assuming these are installed: ${APT_PACKAGES[*]}" >&2
fi

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test,pcsc,nfc]"
