#!/usr/bin/env bash
# Installs the kiosk as an appliance on Raspberry Pi OS Lite (Bookworm, 64-bit; there is no
# Kivy wheel for 32-bit): system packages, the "kiosk" user, the code in /opt/kiosk with its
# own virtual environment, /etc/kiosk/kiosk.toml, udev rules and systemd units, and boot to
# the console with the kiosk on tty1. Run as root from a checkout:  sudo bash systemd/install.sh
# Options: --demo (start from the demo configuration: embedded library system, simulated
# reader), --dry-run (print the steps only).
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=/opt/kiosk
ETC=/etc/kiosk
DEMO=0
DRY=0
for arg in "$@"; do
  case "$arg" in
    --demo) DEMO=1 ;;
    --dry-run) DRY=1 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $arg (expected --demo, --dry-run)" >&2; exit 2 ;;
  esac
done

run() {
  echo "+ $*"
  if [ "$DRY" = 0 ]; then "$@"; fi
}

write_file() {  # write_file PATH CONTENT
  echo "+ write $1"
  if [ "$DRY" = 0 ]; then printf '%s' "$2" > "$1"; fi
}

if [ "$DRY" = 0 ] && [ "$(id -u)" != 0 ]; then
  echo "install.sh: run as root (sudo bash systemd/install.sh)" >&2
  exit 1
fi
if [ "$(uname -m)" != aarch64 ] && [ "$(uname -m)" != x86_64 ]; then
  echo "install.sh: $(uname -m) has no Kivy wheel; install the 64-bit Raspberry Pi OS" >&2
  [ "$DRY" = 1 ] || exit 1
fi

APT_PACKAGES=(
  python3 python3-venv python3-dev
  libgl1 libegl1 libgles2 libgbm1 libdrm2 libmtdev1 libinput10
  pcscd libccid libpcsclite1 libusb-1.0-0
  fonts-dejavu-core espeak-ng
)
run apt-get update -qq
run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${APT_PACKAGES[@]}"

# The unprivileged user the kiosk runs as, with the groups for its devices.
if ! id kiosk >/dev/null 2>&1; then
  run useradd --system --home-dir /var/lib/kiosk --no-create-home --shell /usr/sbin/nologin kiosk
fi
for g in dialout plugdev lp video render input tty; do
  getent group "$g" >/dev/null || run groupadd --system "$g"
done
run usermod -a -G dialout,plugdev,lp,video,render,input,tty kiosk

# The code and its virtual environment, owned by root: the kiosk user cannot change it.
run mkdir -p "$PREFIX"
run cp -a "$SRC/kiosk" "$SRC/config" "$SRC/docs" "$SRC/systemd" "$SRC/pyproject.toml" "$SRC/README.md" "$PREFIX/"
run python3 -m venv "$PREFIX/.venv"
run "$PREFIX/.venv/bin/pip" install -q --upgrade pip
run "$PREFIX/.venv/bin/pip" install -q "$PREFIX[pcsc]"

# The site configuration: root-owned, readable by the kiosk's group only (it holds the SIP2
# password and the admin PIN hash; `kiosk doctor` checks this).
run install -d -m 0750 -o root -g kiosk "$ETC"
if [ ! -e "$ETC/kiosk.toml" ]; then
  example=koha.toml
  [ "$DEMO" = 1 ] && example=../kiosk.toml
  run install -m 0640 -o root -g kiosk "$SRC/config/examples/$example" "$ETC/kiosk.toml"
  echo "install.sh: edit $ETC/kiosk.toml, then set the admin PIN: sudo $PREFIX/.venv/bin/kiosk --config $ETC/kiosk.toml admin set-pin"
fi

run install -m 0644 "$SRC/systemd/99-kiosk.rules" /etc/udev/rules.d/99-kiosk.rules
run udevadm control --reload-rules
run udevadm trigger

for unit in kiosk.service kiosk-acs.service kiosk-forward.service kiosk-forward.timer; do
  run install -m 0644 "$SRC/systemd/$unit" "/etc/systemd/system/$unit"
done
# No login prompts on other virtual consoles (Ctrl+Alt+F2...) and no SysRq from a keyboard.
run mkdir -p /etc/systemd/logind.conf.d
write_file /etc/systemd/logind.conf.d/kiosk.conf "[Login]
NAutoVTs=0
ReserveVT=0
"
write_file /etc/sysctl.d/90-kiosk.conf "kernel.sysrq = 0
"
run systemctl daemon-reload
# Console boot, no login prompt on the kiosk's screen.
run systemctl set-default multi-user.target
run systemctl disable --now getty@tty1.service
run systemctl enable pcscd.socket
run systemctl enable kiosk.service kiosk-forward.timer
# kiosk-acs.service is installed but not enabled: it serves a demo library system to several
# training kiosks (their [acs] embedded = false); a single demo kiosk starts its own.

cat <<MSG
Installed. Before the first start:
  1. edit $ETC/kiosk.toml (library system, reader, printer) and run:
     sudo -u kiosk $PREFIX/.venv/bin/kiosk --config $ETC/kiosk.toml doctor
  2. optional, for a clean screen: add "consoleblank=0 logo.nologo vt.global_cursor_default=0"
     to /boot/firmware/cmdline.txt (one line)
  3. sudo systemctl start kiosk   (or reboot); logs: journalctl -u kiosk -f
MSG
