#!/usr/bin/env bash
# Installs the kiosk as an appliance on Raspberry Pi OS Lite (Bookworm, 64-bit; there is no
# Kivy wheel for 32-bit): system packages, the "kiosk" user, the code in a release folder
# /opt/kiosk/releases/ID with its own virtual environment (/opt/kiosk/current points at it),
# /etc/kiosk/kiosk.toml, udev rules and systemd units, boot to the console with the kiosk on tty1.
# Run as root from a checkout:  sudo bash systemd/install.sh [options]
#   --demo          start from the demo configuration (embedded library system, simulated reader)
#   --config FILE   install FILE as /etc/kiosk/kiosk.toml (when none is there yet)
#   --dry-run       check everything and print every path, user, group and mode; change nothing
#   --root DIR      install into DIR as a throwaway root (tests): users go to DIR/etc/passwd,
#                   no packages, no services started
#   --skip-build    with --root only: copy the code but build no virtual environment
# Safe to run again (upgrade: run it from the new checkout; docs/operations.md). It prepares
# everything that can fail first (packages, the new release and its environment, the config
# check) and only then changes the running system; a failure says which step and leaves the
# installed kiosk as it was.
set -Eeuo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
DEMO=0
DRY=0
ROOT=""
SKIP_BUILD=0
SITE_CONFIG=""
while [ $# -gt 0 ]; do
  case "$1" in
    --demo) DEMO=1 ;;
    --dry-run) DRY=1 ;;
    --skip-build) SKIP_BUILD=1 ;;
    --root) ROOT=${2:?--root needs a folder}; shift ;;
    --config) SITE_CONFIG=${2:?--config needs a file}; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ -n "$ROOT" ]; then
  mkdir -p "$ROOT"
  ROOT=$(cd "$ROOT" && pwd)
fi
if [ "$SKIP_BUILD" = 1 ] && [ -z "$ROOT" ]; then
  echo "install.sh: --skip-build is for a throwaway --root only; a real kiosk needs its environment" >&2
  exit 2
fi

PREFIX=/opt/kiosk
ETC=/etc/kiosk
STATE=/var/lib/kiosk
LOGS=/var/log/kiosk
USER_NAME=kiosk
# dialout: serial readers and sorters; plugdev: USB readers; lp: printers; video/render: the
# screen; input: touch screen and scanners; tty: tty1 (see kiosk.service).
DEVICE_GROUPS=(dialout plugdev lp video render input tty)
# Kivy's runtime libraries, the PC/SC daemon, and what pyscard (the pcsc extra, no Linux wheel)
# needs to build: swig, a compiler and the PC/SC headers.
APT_PACKAGES=(
  python3 python3-venv python3-dev gcc swig
  libgl1 libegl1 libgles2 libgbm1 libdrm2 libmtdev1 libinput10
  pcscd libccid libpcsclite1 libpcsclite-dev libusb-1.0-0
  fonts-dejavu-core  # the printer's raster path renders receipts in DejaVu Sans Mono
  espeak-ng  # spoken guidance (kiosk/speech)
)
UNITS=(kiosk.service kiosk-acs.service kiosk-forward.service kiosk-forward.timer kiosk-purge.service kiosk-purge.timer)

STEP="starting"
PHASE=prepare
REL_BUILDING=""
on_error() {
  local rc=$?
  if [ "$BASH_SUBSHELL" -gt 0 ]; then exit "$rc"; fi  # the main shell reports it once
  if [ -n "$REL_BUILDING" ] && [ -d "$REL_BUILDING" ]; then
    rm -rf "$REL_BUILDING"
  fi
  if [ "$PHASE" = prepare ]; then
    echo "install.sh: FAILED while $STEP (exit $rc). Nothing of the installed kiosk was changed; fix the cause above and run install.sh again." >&2
  else
    echo "install.sh: FAILED while $STEP (exit $rc). The kiosk still runs its previous release; fix the cause above and run install.sh again (it redoes only what is missing)." >&2
  fi
  exit 1
}
trap on_error ERR

say() { echo "install.sh: $*"; }
# act DESCRIPTION COMMAND...: run a change (or only print it under --dry-run).
act() {
  local what=$1; shift
  if [ "$DRY" = 1 ]; then echo "  would $what"; else echo "  + $what"; "$@"; fi
}
same() { echo "  = $*"; }

# Users and groups of the (throwaway) root.
group_exists() { if [ -n "$ROOT" ]; then grep -q "^$1:" "$ROOT/etc/group" 2>/dev/null; else getent group "$1" >/dev/null; fi; }
user_exists() { if [ -n "$ROOT" ]; then grep -q "^$1:" "$ROOT/etc/passwd" 2>/dev/null; else getent passwd "$1" >/dev/null; fi; }
user_groups() {  # the supplementary groups of $1, one per line
  if [ -n "$ROOT" ]; then awk -F: -v u="$1" '{ n = split($4, m, ","); for (i = 1; i <= n; i++) if (m[i] == u) print $1 }' "$ROOT/etc/group"
  else id -nG "$1" | tr ' ' '\n'; fi
}
uid_of() { if [ "$1" = root ]; then echo 0; elif [ -n "$ROOT" ]; then awk -F: -v u="$1" '$1 == u { print $3 }' "$ROOT/etc/passwd"; else id -u "$1"; fi; }
gid_of() { if [ "$1" = root ]; then echo 0; elif [ -n "$ROOT" ]; then awk -F: -v g="$1" '$1 == g { print $3 }' "$ROOT/etc/group"; else getent group "$1" | cut -d: -f3; fi; }
prefix_opt() { if [ -n "$ROOT" ]; then echo "--prefix $ROOT"; fi; }

# known OWNER GROUP: both exist (under --dry-run the kiosk's user and group may not yet).
known() {
  { [ "$1" = root ] || user_exists "$1"; } && { [ "$2" = root ] || group_exists "$2"; }
}

# ensure_dir PATH MODE OWNER GROUP
ensure_dir() {
  local path=$ROOT$1 mode=$2 owner=$3 group=$4
  if ! known "$owner" "$group"; then
    act "make folder $1 mode $mode owner $owner:$group" true; return
  fi
  local uid gid; uid=$(uid_of "$owner"); gid=$(gid_of "$group")
  if [ -d "$path" ] && [ "$(stat -c '%a %u %g' "$path")" = "${mode#0} $uid $gid" ]; then
    same "folder $1 mode $mode owner $owner:$group"
  else
    act "make folder $1 mode $mode owner $owner:$group" install -d -m "$mode" -o "$uid" -g "$gid" "$path"
  fi
}

# ensure_file SOURCE DEST MODE [OWNER GROUP]: install SOURCE as DEST, replacing it atomically.
ensure_file() {
  local src=$1 dest=$ROOT$2 mode=$3 owner=${4:-root} group=${5:-root}
  if ! known "$owner" "$group"; then
    act "install $2 mode $mode owner $owner:$group" true; return
  fi
  local uid gid; uid=$(uid_of "$owner"); gid=$(gid_of "$group")
  if [ -f "$dest" ] && cmp -s "$src" "$dest" && [ "$(stat -c '%a %u %g' "$dest")" = "${mode#0} $uid $gid" ]; then
    same "file $2 mode $mode owner $owner:$group"
  else
    act "install $2 mode $mode owner $owner:$group" \
      sh -c 'mkdir -p "${5%/*}" && install -m "$1" -o "$2" -g "$3" "$4" "$5.new" && mv -f "$5.new" "$5"' sh "$mode" "$uid" "$gid" "$src" "$dest"
  fi
}

# ensure_text DEST MODE TEXT
ensure_text() {
  local tmp; tmp=$(mktemp); printf '%s' "$3" > "$tmp"
  ensure_file "$tmp" "$1" "$2"
  rm -f "$tmp"
}

# run_system COMMAND...: commands that act on the live system (packages, services); a throwaway
# root only lists them.
run_system() {
  if [ -n "$ROOT" ]; then echo "  - not in a throwaway root: $*"; else act "$*" "$@"; fi
}

# --- 1. checks that change nothing -------------------------------------------------------
STEP="checking the machine"
say "installing from $SRC${ROOT:+ into the throwaway root $ROOT}${DRY:+}"
[ "$DRY" = 1 ] && say "dry run: nothing is changed"
if [ -z "$ROOT" ] && [ "$DRY" = 0 ] && [ "$(id -u)" != 0 ]; then
  echo "install.sh: run as root (sudo bash systemd/install.sh)" >&2
  exit 2
fi
if [ -z "$ROOT" ] && [ "$(uname -m)" != aarch64 ] && [ "$(uname -m)" != x86_64 ]; then
  echo "install.sh: $(uname -m) has no Kivy wheel; install the 64-bit Raspberry Pi OS" >&2
  [ "$DRY" = 1 ] || exit 2
fi
for f in pyproject.toml kiosk/__init__.py config/kiosk.toml config/examples/koha.toml systemd/99-kiosk.rules "${UNITS[@]/#/systemd/}"; do
  [ -f "$SRC/$f" ] || { echo "install.sh: $SRC/$f is missing: run from a complete checkout" >&2; exit 2; }
done
if [ -n "$SITE_CONFIG" ] && [ ! -f "$SITE_CONFIG" ]; then
  echo "install.sh: --config $SITE_CONFIG: no such file" >&2
  exit 2
fi

# --- 2. preparing: nothing the running kiosk uses is touched --------------------------------
STEP="installing system packages"
say "system packages"
if [ -n "$ROOT" ]; then
  echo "  - not in a throwaway root: apt-get install ${APT_PACKAGES[*]}"
else
  missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} = 0 ]; then
    same "packages ${APT_PACKAGES[*]}"
  else
    act "apt-get install ${missing[*]}" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"' sh "${missing[@]}"
  fi
fi

STEP="building the release"
# The release is named by the content of the code, so running install.sh again from the same
# checkout finds it built and changes nothing.
REL_ID=$(cd "$SRC" && find kiosk config docs systemd pyproject.toml README.md -type f \
  -not -path '*/__pycache__/*' -not -name '*.pyc' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-12)
REL=$PREFIX/releases/$REL_ID
say "release $REL_ID in $REL"
if [ -f "$ROOT$REL/.complete" ]; then
  same "release $REL_ID already built"
elif [ "$DRY" = 1 ]; then
  echo "  would build $REL: copy the code, python3 -m venv $REL/.venv, pip install '$REL[pcsc]'"
else
  rm -rf "$ROOT$REL"  # an earlier build that did not finish
  REL_BUILDING=$ROOT$REL
  act "copy the code to $REL" install -d -m 0755 "$ROOT$REL"
  cp -a "$SRC/kiosk" "$SRC/config" "$SRC/docs" "$SRC/systemd" "$SRC/pyproject.toml" "$SRC/README.md" "$ROOT$REL/"
  find "$ROOT$REL" -name __pycache__ -type d -prune -exec rm -rf {} +
  if [ "$SKIP_BUILD" = 1 ]; then
    echo "  - --skip-build: no virtual environment in $REL/.venv"
  else
    act "python3 -m venv $REL/.venv" python3 -m venv "$ROOT$REL/.venv"
    act "pip install $REL[pcsc]" "$ROOT$REL/.venv/bin/pip" install -q --upgrade pip
    "$ROOT$REL/.venv/bin/pip" install -q "$ROOT$REL[pcsc]"
    act "check that the new release starts" "$ROOT$REL/.venv/bin/kiosk" --help >/dev/null
  fi
  touch "$ROOT$REL/.complete"
  REL_BUILDING=""
fi
if [ "$SKIP_BUILD" = 1 ] || [ "$DRY" = 1 ] && [ ! -x "$ROOT$REL/.venv/bin/python" ]; then
  CHECK_PY=(env "PYTHONPATH=$SRC" "${PYTHON:-python3}")
else
  CHECK_PY=("$ROOT$REL/.venv/bin/python")
fi

STEP="checking the site configuration"
say "site configuration $ETC/kiosk.toml"
STAGED=$(mktemp)
trap 'rm -f "$STAGED"' EXIT
if [ -n "$SITE_CONFIG" ]; then
  cp "$SITE_CONFIG" "$STAGED"
elif [ "$DEMO" = 1 ]; then
  # The demo writes its journal, receipts, e-mails and demo library under /var/lib/kiosk:
  # relative paths would resolve under the read-only /etc/kiosk.
  sed -e "s#\"var/#\"$STATE/#g" -e "s#\"file:var/#\"file:$STATE/#g" -e "s#\"sqlite:///var/#\"sqlite:///$STATE/#g" \
    -e "/^\[printer\]/a email_url = \"file:$STATE/outbox\"" \
    "$SRC/config/kiosk.toml" > "$STAGED"
else
  cp "$SRC/config/examples/koha.toml" "$STAGED"
fi
if [ -e "$ROOT$ETC/kiosk.toml" ]; then
  same "$ETC/kiosk.toml exists; the site's configuration is kept as it is"
  CONFIG_TO_CHECK=$ROOT$ETC/kiosk.toml
else
  CONFIG_TO_CHECK=$STAGED
fi
if [ -r "$CONFIG_TO_CHECK" ]; then
  check_rc=0
  check_out=$("${CHECK_PY[@]}" -m kiosk.installcheck "$CONFIG_TO_CHECK" 2>&1) || check_rc=$?
  if [ "$check_rc" = 0 ]; then
    sed 's/^/  data: /' <<<"$check_out"
  elif [ "$DRY" = 1 ] && [ "$check_rc" != 2 ]; then
    # Exit 2 is a configuration fault; anything else is this Python lacking the kiosk's packages.
    echo "  - the configuration check needs the release's environment: the install runs it before changing anything"
  else
    echo "$check_out" >&2
    false
  fi
fi

# --- 3. putting it in place: quick local steps, each done only when needed -----------------
PHASE=commit
STEP="creating the kiosk user and its groups"
say "user $USER_NAME and groups"
for g in "$USER_NAME" "${DEVICE_GROUPS[@]}"; do
  if group_exists "$g"; then same "group $g"; else
    # shellcheck disable=SC2046
    act "add system group $g" groupadd $(prefix_opt) --system "$g"
  fi
done
if user_exists "$USER_NAME"; then
  same "user $USER_NAME"
else
  # shellcheck disable=SC2046
  act "add system user $USER_NAME (home $STATE, no login shell)" useradd $(prefix_opt) --system --gid "$USER_NAME" \
    --home-dir "$STATE" --no-create-home --shell /usr/sbin/nologin "$USER_NAME"
fi
have=$(user_groups "$USER_NAME" 2>/dev/null || true)
need=()
for g in "${DEVICE_GROUPS[@]}"; do grep -qx "$g" <<<"$have" || need+=("$g"); done
if [ ${#need[@]} = 0 ]; then same "user $USER_NAME in groups ${DEVICE_GROUPS[*]}"; else
  # shellcheck disable=SC2046
  act "add $USER_NAME to groups ${need[*]}" usermod $(prefix_opt) -a -G "$(IFS=,; echo "${need[*]}")" "$USER_NAME"
fi

STEP="creating the folders"
say "folders"
ensure_dir "$PREFIX" 0755 root root
ensure_dir "$PREFIX/releases" 0755 root root
# The configuration: root-owned, readable by the kiosk's group only (it holds the SIP2
# password and the admin PIN hash; `kiosk doctor` checks this).
ensure_dir "$ETC" 0750 root "$USER_NAME"
# The kiosk's data: owned by the kiosk from the start, so no command run as root creates it.
ensure_dir "$STATE" 0750 "$USER_NAME" "$USER_NAME"
ensure_dir "$LOGS" 0750 "$USER_NAME" "$USER_NAME"

STEP="installing the configuration"
if [ -e "$ROOT$ETC/kiosk.toml" ]; then
  same "$ETC/kiosk.toml kept"
else
  ensure_file "$STAGED" "$ETC/kiosk.toml" 0640 root "$USER_NAME"
fi

STEP="installing udev rules and systemd units"
say "udev rules, systemd units, console"
ensure_file "$SRC/systemd/99-kiosk.rules" /etc/udev/rules.d/99-kiosk.rules 0644
for unit in "${UNITS[@]}"; do
  ensure_file "$SRC/systemd/$unit" "/etc/systemd/system/$unit" 0644
done
# No login prompts on other virtual consoles (Ctrl+Alt+F2...) and no SysRq from a keyboard.
ensure_dir /etc/systemd/logind.conf.d 0755 root root
ensure_text /etc/systemd/logind.conf.d/kiosk.conf 0644 "[Login]
NAutoVTs=0
ReserveVT=0
"
# Wait for the clock before the kiosk starts (a Pi has no battery clock), but at most 90 s:
# time-sync.target is reached when the wait ends either way (docs/operations.md, "Clock").
for waiter in systemd-time-wait-sync.service chrony-wait.service; do
  ensure_dir "/etc/systemd/system/$waiter.d" 0755 root root
  ensure_text "/etc/systemd/system/$waiter.d/kiosk.conf" 0644 "[Service]
TimeoutStartSec=90s
"
done
ensure_dir /etc/sysctl.d 0755 root root
ensure_text /etc/sysctl.d/90-kiosk.conf 0644 "kernel.sysrq = 0
"

STEP="switching to release $REL_ID"
say "current release"
CURRENT=$ROOT$PREFIX/current
if [ "$(readlink "$CURRENT" 2>/dev/null || true)" = "releases/$REL_ID" ]; then
  same "$PREFIX/current -> releases/$REL_ID"
else
  previous=$(readlink "$CURRENT" 2>/dev/null || true)
  # One rename: the units see the old release or the new one, never a mix.
  act "point $PREFIX/current at releases/$REL_ID${previous:+ (was $previous; rollback: docs/operations.md)}" \
    sh -c 'ln -sfn "$1" "$2.new" && mv -T "$2.new" "$2"' sh "releases/$REL_ID" "$CURRENT"
fi

STEP="enabling the services"
say "services"
run_system udevadm control --reload-rules
run_system udevadm trigger
run_system systemctl daemon-reload
run_system systemctl set-default multi-user.target
run_system systemctl disable getty@tty1.service
run_system systemctl enable pcscd.socket kiosk.service kiosk-forward.timer kiosk-purge.timer
if [ -z "$ROOT" ] && systemctl cat systemd-time-wait-sync.service >/dev/null 2>&1 && ! systemctl is-enabled --quiet chrony.service 2>/dev/null; then
  run_system systemctl enable systemd-time-wait-sync.service
fi
# kiosk-acs.service is installed but not enabled: it serves a demo library system to several
# training kiosks (their [acs] embedded = false); a single demo kiosk starts its own.

PHASE=done
if [ "$DRY" = 1 ]; then
  say "dry run finished: the lines with 'would' are what an install changes"
  exit 0
fi
cat <<MSG
install.sh: installed release $REL_ID.
Before the first start:
  1. edit $ETC/kiosk.toml (library system, reader, printer), set the admin PIN and check:
     sudo $PREFIX/current/.venv/bin/kiosk --config $ETC/kiosk.toml admin set-pin
     sudo -u $USER_NAME $PREFIX/current/.venv/bin/kiosk --config $ETC/kiosk.toml doctor
  2. optional, for a clean screen: add "consoleblank=0 logo.nologo vt.global_cursor_default=0"
     to /boot/firmware/cmdline.txt (one line)
  3. sudo systemctl start kiosk   (or reboot); logs: journalctl -u kiosk -f
MSG
