"""The technician's admin PIN: a salted scrypt hash stored in `[admin] pin_hash`, never the PIN itself.

`kiosk admin set-pin` writes the hash into the site's config file in place, keeping every
other line, comment and the file's permissions as they were.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import tempfile
from pathlib import Path

from kiosk import config as kconfig
from kiosk.errors import ConfigError

SCHEME = "scrypt"
# scrypt cost: n=2**14, r=8 takes ~16 MiB and tens of milliseconds on a Raspberry Pi 4,
# slow enough to make guessing a short PIN from a stolen hash expensive.
DEFAULT_N = 2**14
DEFAULT_R = 8
DEFAULT_P = 1
SALT_BYTES = 16
KEY_BYTES = 32
MIN_PIN_LENGTH = 4
MAX_PIN_LENGTH = 12  # the login keypad takes at most 12 digits


class AdminPinError(ConfigError):
    """An admin PIN or its stored hash is unusable; the message says what to change."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def validate_pin(pin: str) -> None:
    """Refuse PINs that cannot be typed on the kiosk's keypad or are too short to protect anything."""
    if not MIN_PIN_LENGTH <= len(pin) <= MAX_PIN_LENGTH:
        raise AdminPinError(
            f"admin PIN: expected {MIN_PIN_LENGTH}-{MAX_PIN_LENGTH} digits, got {len(pin)} characters"
        )
    if not pin.isdigit() or not pin.isascii():
        raise AdminPinError("admin PIN: expected digits only (the kiosk's keypad has only digits)")


def hash_pin(
    pin: str,
    *,
    n: int = DEFAULT_N,
    r: int = DEFAULT_R,
    p: int = DEFAULT_P,
    salt: bytes | None = None,
) -> str:
    """`scrypt$n$r$p$salt$key` (base64 without padding) for a PIN, with a fresh random salt."""
    validate_pin(pin)
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    key = hashlib.scrypt(
        pin.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=KEY_BYTES, maxmem=64 * 1024 * 1024
    )
    return f"{SCHEME}${n}${r}${p}${_b64(salt)}${_b64(key)}"


def parse_hash(stored: str) -> tuple[int, int, int, bytes, bytes]:
    """Split a stored hash into (n, r, p, salt, key); AdminPinError if it is not one of ours."""
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        raise AdminPinError(
            "admin.pin_hash: not a scrypt hash written by `kiosk admin set-pin`; run it again"
        )
    try:
        n, r, p = (int(x) for x in parts[1:4])
        salt, key = _unb64(parts[4]), _unb64(parts[5])
    except ValueError:
        raise AdminPinError(
            "admin.pin_hash: damaged (bad number or base64); run `kiosk admin set-pin` again"
        ) from None
    if (
        n < 2
        or n & (n - 1)
        or not 1 <= r <= 64
        or not 1 <= p <= 16
        or n * r > 2**24
        or not salt
        or not key
    ):
        raise AdminPinError(
            "admin.pin_hash: cost parameters out of range; run `kiosk admin set-pin` again"
        )
    return n, r, p, salt, key


def verify_pin(pin: str, stored: str) -> bool:
    """True if `pin` matches the stored hash; an empty or damaged hash never matches."""
    if not stored or not pin:
        return False
    try:
        n, r, p, salt, key = parse_hash(stored)
    except AdminPinError:
        return False
    candidate = hashlib.scrypt(
        pin.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=len(key), maxmem=64 * 1024 * 1024
    )
    return hmac.compare_digest(candidate, key)


_SECTION_RE = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\-]+)\s*\]\s*(#.*)?$")
_ARRAY_TABLE_RE = re.compile(r"^\s*\[\[")
_PIN_HASH_RE = re.compile(r"^\s*pin_hash\s*=")


def with_pin_hash(text: str, pin_hash: str) -> str:
    """The config text with `[admin] pin_hash` set to `pin_hash`; all other lines are kept as they were."""
    newline = "\r\n" if "\r\n" in text else "\n"
    lines = text.splitlines(keepends=True)
    entry = f'pin_hash = "{pin_hash}"'
    section: str | None = None
    admin_header: int | None = None
    admin_end: int | None = None
    for i, line in enumerate(lines):
        stripped = line.rstrip("\r\n")
        m = _SECTION_RE.match(stripped)
        if m or _ARRAY_TABLE_RE.match(stripped):
            if section == "admin" and admin_end is None:
                admin_end = i
            section = m.group(1) if m else None
            if section == "admin":
                admin_header = i
            continue
        if section == "admin" and _PIN_HASH_RE.match(stripped):
            lines[i] = entry + (line[len(stripped) :] or newline)
            return "".join(lines)
    if admin_header is None:
        sep = "" if not text or text.endswith(("\n", "\r\n")) else newline
        return text + sep + newline + "[admin]" + newline + entry + newline
    lines.insert(admin_header + 1, entry + newline)
    return "".join(lines)


def write_pin_hash(path: str | os.PathLike[str], pin_hash: str) -> Path:
    """Set `[admin] pin_hash` in the config file at `path` atomically, keeping its mode and owner.

    The new text is parsed before it replaces the file, so a failure leaves the old file intact.
    """
    target = Path(path)
    if target.resolve() in (kconfig.DEFAULT_CONFIG.resolve(), kconfig.PACKAGED_DEFAULT.resolve()):
        raise AdminPinError(
            f"{target}: this is the embedded demo configuration; copy an example from config/examples/ "
            "to /etc/kiosk/kiosk.toml and set the PIN there (kiosk --config /etc/kiosk/kiosk.toml admin set-pin)"
        )
    try:
        text = target.read_text(encoding="utf-8")
        st = target.stat()
    except FileNotFoundError:
        raise AdminPinError(f"{target}: configuration file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AdminPinError(f"{target}: cannot read ({exc})") from None
    new_text = with_pin_hash(text, pin_hash)
    kconfig.parse(new_text, str(target))  # refuses to write a file the kiosk could not load
    try:
        fd, tmp = tempfile.mkstemp(prefix=".kiosk-", suffix=".toml", dir=target.parent)
    except OSError as exc:
        raise AdminPinError(
            f"{target}: cannot write next to it in {target.parent} ({exc.strerror}); "
            "run as root (sudo kiosk --config ... admin set-pin); nothing was changed"
        ) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(new_text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, st.st_mode & 0o7777)
        try:
            os.chown(tmp, st.st_uid, st.st_gid)
        except PermissionError:
            pass  # not root: the file stays ours, which it already was if we could write it
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise AdminPinError(
            f"{target}: cannot write ({exc}); run as the user owning the file"
        ) from None
    return target
