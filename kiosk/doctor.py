"""`kiosk doctor`: checks the configuration, its secrets, the library system link, each configured
device and the journal, one line each (`ok` / `warn` / `FAIL`, what, and a fix hint).

Also home of `check_secrets(cfg)`, which `kiosk run` calls before starting.
"""

from __future__ import annotations

import enum
import functools
import importlib
import logging
import os
import pwd
import shutil
import socket
import stat
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from kiosk.adminpin import AdminPinError, parse_hash
from kiosk.clock import DEFAULT_MAX_DRIFT, Drift, SyncState, kernel_sync_state
from kiosk.config import Config
from kiosk.configfaults import login_refused, sip2_file_faults
from kiosk.core.ports import Clock
from kiosk.errors import ConfigError, KioskError
from kiosk.sync.sip2.client import Sip2LoginError, probe_acs

log = logging.getLogger(__name__)

MIN_FREE_BYTES = 200 * 1024 * 1024


class Status(enum.StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Check:
    """One result line: what was checked, how it went, and what to do about it."""

    name: str
    status: Status
    detail: str
    hint: str = ""

    def line(self) -> str:
        text = f"{self.status.value:<4}  {self.name:<14}  {self.detail}"
        if self.hint and self.status is not Status.OK:
            text += f"  -- fix: {self.hint}"
        return text

    def to_json(self) -> dict[str, str]:
        return {
            "check": self.name,
            "status": self.status.value,
            "detail": self.detail,
            "hint": self.hint,
        }


def exit_code(checks: list[Check]) -> int:
    """1 if anything required failed, else 0 (warnings do not fail the doctor)."""
    return 1 if any(c.status is Status.FAIL for c in checks) else 0


# -- secrets ---------------------------------------------------------------------------------

SECRET_KEYS = ("sip2.password", "sip2.terminal_password", "admin.pin_hash")


def _secrets_present(cfg: Config) -> list[str]:
    present = []
    for key in SECRET_KEYS:
        section, name = key.split(".")
        if getattr(getattr(cfg, section), name):
            present.append(key)
    return present


def secrets_exposed(cfg: Config) -> str:
    """What is wrong with the config file's permissions ('' when nothing is), without the fix."""
    if cfg.source.startswith("<") or cfg.kiosk.demo:
        return ""  # no file, or the demo whose password is published with the project
    keys = _secrets_present(cfg)
    if not keys:
        return ""
    path = Path(cfg.source)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        return f"{path}: cannot check its permissions ({exc})"
    if not mode & 0o004:
        return ""
    return f"{path} holds {', '.join(keys)} and is readable by every user (mode {mode:04o})"


def secrets_fix(cfg: Config) -> str:
    return f"chmod 0640 {cfg.source}; chown root:kiosk {cfg.source}"


def check_secrets(cfg: Config) -> list[str]:
    """Warnings about a config file holding secrets that other users can read.

    Under `[admin] secrets_policy = "refuse"` the same finding raises ConfigError instead, so
    the kiosk does not start with its SIP2 password exposed.
    """
    problem = secrets_exposed(cfg)
    if not problem:
        return []
    message = f"{problem}; fix: {secrets_fix(cfg)}"
    if cfg.admin.secrets_policy == "refuse":
        raise ConfigError(message + '; refused by [admin] secrets_policy = "refuse"')
    log.warning("%s", message)
    return [message]


# -- the checks ------------------------------------------------------------------------------


def _check_config(cfg: Config) -> Check:
    return Check(
        "config",
        Status.OK,
        f"{cfg.source} (mode {cfg.kiosk.mode}, terminal {cfg.kiosk.terminal_id})",
    )


def _check_secrets(cfg: Config) -> Check:
    problem = secrets_exposed(cfg)
    if problem:
        if cfg.admin.secrets_policy == "refuse":
            return Check(
                "secrets",
                Status.FAIL,
                problem + "; the kiosk refuses to start ([admin] secrets_policy)",
                secrets_fix(cfg),
            )
        return Check("secrets", Status.WARN, problem, secrets_fix(cfg))
    if cfg.kiosk.demo:
        return Check("secrets", Status.OK, "demo configuration (its password is public)")
    keys = _secrets_present(cfg)
    return Check(
        "secrets", Status.OK, "not readable by other users" if keys else "no secrets in the file"
    )


def _check_admin(cfg: Config) -> Check:
    a = cfg.admin
    if a.pin_hash:
        try:
            parse_hash(a.pin_hash)
        except AdminPinError as exc:
            return Check("admin", Status.FAIL, str(exc), "run: kiosk --config FILE admin set-pin")
    if not a.pin_hash and not a.cards:
        return Check(
            "admin",
            Status.WARN,
            "no admin PIN and no admin cards: maintenance mode cannot be entered",
            "run: kiosk --config FILE admin set-pin, or list cards in [admin] cards",
        )
    ways = (["PIN"] if a.pin_hash else []) + ([f"{len(a.cards)} card(s)"] if a.cards else [])
    return Check(
        "admin",
        Status.OK,
        f"maintenance access by {' and '.join(ways)}; lock-out after {a.max_failures} failures",
    )


def _check_library(cfg: Config, timeout_s: float, clock: Clock | None = None) -> list[Check]:
    """The library system's link, then the kiosk's clock against the date/time in its `98`."""

    s = cfg.sip2
    where = f"{s.host}:{s.port}"
    faults = sip2_file_faults(s)
    if faults:  # a configuration fault, not an outage: no point in connecting
        return [
            Check(
                "library", Status.FAIL, "; ".join(faults), "fix the named key in the configuration"
            ),
            _check_clock(cfg, None),
        ]
    probe = probe_acs(s, timeout_s=timeout_s, clock=clock)
    status = probe.status
    if isinstance(probe.failure, Sip2LoginError):
        return [
            Check(
                "library",
                Status.FAIL,
                login_refused(s),
                "a configuration fault: the kiosk stays out of service until it is fixed",
            ),
            _check_clock(cfg, None),
        ]
    if status is None:
        if cfg.acs.embedded:
            return [
                Check(
                    "library",
                    Status.WARN,
                    f"embedded demo library system at {where} not running ({probe.error})",
                    "it starts with `kiosk run`; or start it alone with `kiosk acs`",
                ),
                _check_clock(cfg, None),
            ]
        return [
            Check(
                "library",
                Status.FAIL,
                f"library system at {where} unreachable: {probe.error}",
                "check [sip2] host/port, the network and that the SIP2 server is running; `kiosk sip2 check` shows the exchange",
            ),
            _check_clock(cfg, None),
        ]
    if not status.online:
        library = Check(
            "library",
            Status.WARN,
            f"{where} answered but says it is offline",
            "ask the library system's administrator",
        )
    else:
        allowed = [
            n
            for n, ok in (
                ("checkout", status.checkout_ok),
                ("checkin", status.checkin_ok),
                ("renewal", status.renewal_ok),
            )
            if ok
        ]
        name = status.library_name or status.institution_id or "library system"
        library = Check(
            "library",
            Status.OK,
            f"{name} at {where} online; allows {', '.join(allowed) or 'nothing'}",
        )
    return [library, _check_clock(cfg, probe.drift)]


def max_drift(cfg: Config) -> timedelta:
    """`[clock] max_drift_s` where the configuration has it, else 2 minutes."""
    seconds = getattr(getattr(cfg, "clock", None), "max_drift_s", None)
    return (
        timedelta(seconds=seconds)
        if isinstance(seconds, int | float) and seconds > 0
        else DEFAULT_MAX_DRIFT
    )


_CLOCK_FIX = "let the kiosk reach an NTP server (timedatectl set-ntp true; NTP= in /etc/systemd/timesyncd.conf, or chrony)"


def _check_clock(
    cfg: Config, drift: Drift | None, sync: Callable[[], SyncState] = kernel_sync_state
) -> Check:
    """FAIL beyond the allowed drift from the library system (offline loans are refused then)."""
    limit = max_drift(cfg)
    state = sync()
    if drift is not None and drift.beyond(limit):
        return Check(
            "clock",
            Status.FAIL,
            f"kiosk clock {drift.describe()} (allowed {int(limit.total_seconds())} s; {state.value})",
            _CLOCK_FIX + "; offline loans are refused until the clocks agree",
        )
    if state is SyncState.UNSYNCHRONISED:
        where = (
            f"; {drift.describe()}"
            if drift is not None
            else "; not compared with the library system"
        )
        return Check("clock", Status.WARN, f"not synchronised by NTP{where}", _CLOCK_FIX)
    if drift is None:
        return Check(
            "clock",
            Status.OK if state is SyncState.SYNCHRONISED else Status.WARN,
            f"{state.value}; the library system's date/time was not available",
            _CLOCK_FIX,
        )
    return Check("clock", Status.OK, f"{state.value}; {drift.describe()}")


def _check_reader(cfg: Config, timeout_s: float) -> Check:
    url = cfg.reader.url
    try:
        from kiosk.devices.readers import open_reader  # lazy: pyserial, only with a reader
    except ImportError as exc:
        return Check(
            "reader",
            Status.FAIL,
            f"{url}: reader drivers not installed ({exc})",
            "reinstall the kiosk package",
        )
    try:
        reader = open_reader(url, timeout_s=min(cfg.reader.timeout_s, timeout_s), retries=1)
        try:
            tags = reader.inventory()
        finally:
            reader.close()
    except (KioskError, OSError) as exc:
        return Check(
            "reader",
            Status.FAIL,
            f"{url}: {exc}",
            "check the reader's cable and power, and [reader] url (e.g. feig:/dev/kiosk-reader); `kiosk devices` lists ports",
        )
    return Check("reader", Status.OK, f"{url}: answers, {len(tags)} tag(s) on the pad")


def _path_of(url: str) -> str:
    return url.split(":", 1)[1] if ":" in url else url


def _tcp(host: str, port: int, timeout_s: float) -> str:
    """'' when a TCP connection opens, else why not."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return ""
    except OSError as exc:
        return str(exc) or exc.__class__.__name__


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(text)
    return host.strip("[]"), int(port)


def _check_printer(cfg: Config, timeout_s: float) -> Check:
    url = cfg.printer.url
    hint = "check paper, cover, power and cable, and [printer] url; the maintenance screen prints a test receipt"
    scheme, _, rest = url.partition(":")
    if scheme == "serial":
        path = (
            rest.rsplit(":", 1)[0]
            if rest.rsplit(":", 1)[-1].isdigit() and rest.count(":")
            else rest
        )
        if not os.path.exists(path):
            return Check(
                "printer",
                Status.FAIL,
                f"{url}: {path} does not exist",
                "plug the printer in; the udev rules in systemd/ give it the stable name /dev/kiosk-printer",
            )
    try:
        from kiosk.devices.printer import (  # lazy: Pillow, only with a printer
            PrinterStatus,
            open_configured_printer,
        )
    except ImportError as exc:
        return Check(
            "printer",
            Status.FAIL,
            f"{url}: printer driver missing ({exc})",
            "reinstall the kiosk package",
        )
    try:
        printer = open_configured_printer(
            cfg.printer, base=cfg.resolve_path("."), timeout_s=min(timeout_s, 3.0)
        )
        try:
            state = printer.status()
        finally:
            printer.close()
    except (KioskError, OSError) as exc:
        return Check("printer", Status.FAIL, f"{url}: {exc}", hint)
    if state is PrinterStatus.READY:
        return Check("printer", Status.OK, f"{url}: ready, paper ok")
    if state is PrinterStatus.PAPER_LOW:
        return Check("printer", Status.WARN, f"{url}: paper near end", "put in a new roll soon")
    if state is PrinterStatus.NONE:
        return Check(
            "printer",
            Status.WARN,
            "no receipt printer configured ([printer] url = none)",
            "set [printer] url to print receipts",
        )
    if state is PrinterStatus.PAPER_OUT:
        return Check("printer", Status.FAIL, f"{url}: out of paper", "put in a new roll")
    return Check("printer", Status.FAIL, f"{url}: offline or not reachable", hint)


def _optional(module: str, attr: str) -> Callable[..., Any] | None:
    try:
        return getattr(importlib.import_module(module), attr, None)
    except ImportError:
        return None


def _status_text(status: Any) -> tuple[Status, str]:
    """Interpret a device's `.status()` answer: a bool, a text, or an object with ok/online/ready + message."""
    if isinstance(status, bool):
        return (Status.OK if status else Status.FAIL), ("ready" if status else "not ready")
    for attr in ("ok", "online", "ready"):
        if hasattr(status, attr):
            ok = bool(getattr(status, attr))
            message = str(
                getattr(status, "message", "")
                or getattr(status, "detail", "")
                or ("ready" if ok else "not ready")
            )
            warn = bool(
                getattr(status, "paper_low", False) or getattr(status, "paper_near_end", False)
            )
            return (Status.WARN if ok and warn else Status.OK if ok else Status.FAIL), message
    return Status.OK, str(status)


def _device_status(name: str, url: str, opener: Callable[[], Any], hint: str) -> Check:
    try:
        device = opener()
        try:
            state, message = (
                _status_text(device.status())
                if hasattr(device, "status")
                else (Status.OK, "opened")
            )
        finally:
            close = getattr(device, "close", None)
            if close:
                close()
    except (KioskError, OSError) as exc:
        return Check(name, Status.FAIL, f"{url}: {exc}", hint)
    return Check(name, state, f"{url}: {message}", hint)


def _check_sorter(cfg: Config, timeout_s: float) -> Check:
    url = cfg.sorter.url
    if url in ("", "none"):
        return Check("sorter", Status.OK, "no sorter configured")
    opener = _optional("kiosk.devices.sorter", "open_sorter")
    if opener is not None:
        return _device_status(
            "sorter",
            url,
            lambda: opener(url),
            "check the sorter's power and link, and [sorter] url",
        )
    scheme = url.split(":", 1)[0]
    if scheme == "sim":
        return Check("sorter", Status.OK, f"{url}: simulated")
    if scheme == "tcp":
        try:
            host, port = _host_port(_path_of(url))
        except ValueError:
            return Check(
                "sorter", Status.FAIL, f"{url}: expected tcp:HOST:PORT", "fix [sorter] url"
            )
        why = _tcp(host, port, timeout_s)
        if why:
            return Check(
                "sorter",
                Status.FAIL,
                f"{url}: cannot connect ({why})",
                "check the sorter's power and network address",
            )
        return Check("sorter", Status.OK, f"{url}: accepts connections")
    if scheme == "serial":
        path = _path_of(url)
        if not os.path.exists(path):
            return Check(
                "sorter",
                Status.FAIL,
                f"{url}: {path} does not exist",
                "check the cable; see systemd/99-kiosk.rules",
            )
        return Check("sorter", Status.OK, f"{url}: device present")
    return Check(
        "sorter", Status.WARN, f"{url}: not checked (unknown kind)", "see docs/appliance.md"
    )


def check_card_sources(cfg: Config) -> list[Check]:
    checks: list[Check] = []
    lister = _optional("kiosk.devices.cards", "check_source")
    for url in cfg.patron.card_sources:
        name = "card reader"
        if lister is not None:
            checks.append(
                _device_status(
                    name,
                    url,
                    functools.partial(lister, url),
                    "check the card reader's cable and [patron] card_sources",
                )
            )
            continue
        scheme, _, rest = url.partition(":")
        if scheme in ("sim", "keyboard", "hid") and not rest:
            checks.append(Check(name, Status.OK, f"{url}: built in"))
        elif scheme == "pcsc":
            checks.append(_check_pcsc(url, rest))
        elif rest.startswith("/"):
            ok = os.path.exists(rest)
            checks.append(
                Check(
                    name,
                    Status.OK if ok else Status.FAIL,
                    f"{url}: {'present' if ok else rest + ' does not exist'}",
                    "plug the card reader in; see systemd/99-kiosk.rules",
                )
            )
        else:
            checks.append(Check(name, Status.WARN, f"{url}: not checked", "see docs/appliance.md"))
    return checks


def _check_pcsc(url: str, name: str) -> Check:
    try:
        from smartcard.System import readers  # lazy: pyscard is optional
    except ImportError:
        return Check(
            "card reader",
            Status.FAIL,
            f"{url}: pyscard not installed",
            "pip install 'kiosk[pcsc]' and apt install pcscd",
        )
    try:
        names = [str(r) for r in readers()]
    except Exception as exc:
        # A device driver boundary: pyscard raises its own family when pcscd is not running.
        log.debug("listing PC/SC readers failed", exc_info=exc)
        return Check(
            "card reader",
            Status.FAIL,
            f"{url}: PC/SC not available ({exc})",
            "systemctl start pcscd",
        )
    if any(name in n for n in names):
        return Check("card reader", Status.OK, f"{url}: found")
    return Check(
        "card reader",
        Status.FAIL,
        f"{url}: not among {names or 'no readers'}",
        "plug the reader in, or fix the name in [patron] card_sources",
    )


def _check_journal(cfg: Config) -> Check:
    path = cfg.resolve_path(cfg.storage.path)
    try:
        from kiosk.sync.journal import Journal  # lazy: SQLAlchemy, only with a journal
    except ImportError as exc:
        return Check(
            "journal", Status.FAIL, f"journal module missing ({exc})", "reinstall the kiosk package"
        )
    if not path.exists():
        # Not created here: a doctor run as root would leave a journal the kiosk user cannot write.
        folder = path.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not os.access(folder, os.W_OK):
            return Check(
                "journal",
                Status.FAIL,
                f"{path}: {folder} not writable",
                "create the folder and give it to the kiosk user",
            )
        return Check(
            "journal",
            Status.OK,
            f"{path}: not created yet (the kiosk creates it on its first start)",
        )
    if not os.access(path, os.W_OK):
        return Check(
            "journal",
            Status.FAIL,
            f"{path}: not writable by {_user()}",
            "chown the journal (and its -wal/-shm files) to the kiosk user",
        )
    try:
        journal = Journal(path)
        try:
            pending = journal.pending_count()
            refused = len(journal.refusals())
        finally:
            journal.close()
    except (KioskError, OSError) as exc:
        return Check(
            "journal",
            Status.FAIL,
            f"{path}: {exc}",
            "check [storage] path, free disk space and the file's owner",
        )
    if refused:
        return Check(
            "journal",
            Status.WARN,
            f"{path}: {pending} waiting to forward, {refused} refused by the library system",
            "staff must handle the refusals: maintenance screen > offline queue",
        )
    if pending:
        return Check(
            "journal",
            Status.WARN,
            f"{path}: {pending} offline transaction(s) waiting to forward",
            "they forward when the library system is back",
        )
    return Check("journal", Status.OK, f"{path}: nothing waiting")


def _user() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"uid {os.geteuid()}"


def _check_disk(cfg: Config) -> Check:
    path = cfg.resolve_path(cfg.storage.path).parent
    while not path.exists() and path != path.parent:
        path = path.parent
    free = shutil.disk_usage(path).free
    if free < MIN_FREE_BYTES:
        return Check(
            "disk",
            Status.WARN,
            f"{path}: only {free // 2**20} MiB free",
            "free space; the journal needs room to record transactions",
        )
    return Check("disk", Status.OK, f"{path}: {free // 2**20} MiB free")


def _check_log_file(cfg: Config) -> Check | None:
    if not cfg.logging.file:
        return None
    path = cfg.resolve_path(cfg.logging.file)
    target = path if path.exists() else path.parent
    if target.exists() and os.access(target, os.W_OK):
        return Check(
            "log file",
            Status.OK,
            f"{path} (rotated at {cfg.logging.max_bytes} bytes, {cfg.logging.backups} kept)",
        )
    return Check(
        "log file",
        Status.FAIL,
        f"{path}: not writable",
        "create the folder and give it to the kiosk user, or empty [logging] file",
    )


def run_checks(cfg: Config, *, timeout_s: float = 5.0, clock: Clock | None = None) -> list[Check]:
    """Every check in order; a check that crashes is reported as FAIL rather than stopping the rest.

    `clock` is the kiosk's clock the library system's is compared with (injected by tests).
    """
    steps: list[Callable[[], Check | list[Check] | None]] = [
        lambda: _check_config(cfg),
        lambda: _check_secrets(cfg),
        lambda: _check_admin(cfg),
        lambda: _check_library(cfg, timeout_s, clock),
        lambda: _check_reader(cfg, timeout_s),
        lambda: check_card_sources(cfg),
        lambda: _check_printer(cfg, timeout_s),
        lambda: _check_sorter(cfg, timeout_s),
        lambda: _check_journal(cfg),
        lambda: _check_disk(cfg),
        lambda: _check_log_file(cfg),
    ]
    checks: list[Check] = []
    for step in steps:
        try:
            result = step()
        except Exception as exc:  # the doctor must finish its report whatever one check does
            log.exception("doctor check crashed")
            result = Check(
                "internal",
                Status.FAIL,
                f"a check crashed: {exc!r}",
                "report this with the output of kiosk -v doctor",
            )
        if result is None:
            continue
        checks.extend(result if isinstance(result, list) else [result])
    return checks
