"""Site configuration: TOML loaded into typed, frozen dataclasses and validated on start.

A wrong key, type or value raises ConfigError with one line naming the file, the key and
what is expected. Look-up order: an explicit path, then $KIOSK_CONFIG, then the embedded
default `config/kiosk.toml` (the demo: embedded library system, simulated reader).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import logging
import math
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast, get_args, get_origin

from kiosk.core.domain import OfflinePolicy, PinPolicy
from kiosk.errors import ConfigError
from kiosk.fleet.settings import AlertsSection, MetricsSection, SiteSection, StatusPageSection

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "config" / "kiosk.toml"
PACKAGED_DEFAULT = Path(__file__).resolve().parent / "default.toml"

# iso-8859-1 and cp1252: Western European SIP2 servers (FOLIO's sample tenant, some Sierra sites).
ENCODINGS = ("utf-8", "cp850", "cp1257", "iso8859-13", "cp775", "iso8859-4", "iso-8859-1", "cp1252")


class SecretsPolicy(enum.StrEnum):
    """What a secret readable by others does at start (`[admin] secrets_policy`)."""

    REFUSE = "refuse"  # the kiosk does not start
    WARN = "warn"  # a warning in the log and on the doctor's list


@dataclass(frozen=True)
class KioskSection:
    """Who and where this terminal is."""

    mode: Literal["checkout", "bookdrop"] = "checkout"
    library_name: str = "Demo bibliotēka"
    terminal_id: str = "KIOSK-1"
    languages: tuple[str, ...] = ("lv", "en", "ru")
    default_language: str = "lv"
    returns_enabled: bool = True
    demo: bool = False
    currency: str = "EUR"  # ISO 4217, used when the library system does not say (no BH)
    owner_institutions: tuple[
        str, ...
    ] = ()  # ISILs of this library's items; empty = any owner is ours


@dataclass(frozen=True)
class Sip2Section:
    """How to reach the library system (the ACS) over SIP2."""

    host: str = "127.0.0.1"
    port: int = 6001
    tls: bool = False
    tls_verify: bool = True
    tls_ca_file: str = ""
    tls_client_cert: str = ""
    username: str = ""
    password: str = ""
    location_code: str = ""
    institution_id: str = ""
    terminal_password: str = ""
    encoding: str = "utf-8"
    error_detection: Literal["off", "on", "auto"] = "auto"
    # The ACS honours the SIP2 duplicate rule (a request repeating the previous one's sequence
    # number and checksum is answered again, not executed again), verified for this site. Only
    # then, and only while its answers carry AY/AZ, is a changing request (checkout, checkin,
    # renewal, fee, hold...) re-sent after a timeout; otherwise it is in doubt and reconciled.
    # `kiosk sip2 check --duplicate-rule` finds out whether the ACS does.
    duplicate_rule: bool = False
    line_terminator: Literal["CR", "CRLF"] = "CR"
    field_delimiter: str = "|"
    timeout_s: float = 10.0
    retries: int = 3
    keepalive_s: float = 240.0
    summary_page_size: int = 20
    send_login: bool = True
    # The patron's language in 24/64 answers (SIP2 codes) -> the kiosk language a patron is
    # greeted in at login, as "CODE=LANG". The standard's list has no Latvian; codes not listed
    # here (000 = unknown) keep the kiosk's current language.
    patron_languages: tuple[str, ...] = ("001=en", "015=ru")


@dataclass(frozen=True)
class StorageSection:
    """Where the durable journal lives."""

    path: str = "var/journal.sqlite"
    # Days finished transactions (with their card numbers) stay in the journal; `kiosk purge`
    # (daily, kiosk-purge.timer) removes older ones. Open work and the staff list stay.
    retention_days: int = 30


@dataclass(frozen=True)
class OfflineSection:
    """What the kiosk may do while the library system cannot be reached."""

    policy: OfflinePolicy = OfflinePolicy.CHECKIN_ONLY
    max_checkouts: int = 5
    loan_days: int = 14
    forward_interval_s: float = 30.0


@dataclass(frozen=True)
class ClockSection:
    """How far the kiosk's clock may be from the library system's (docs/operations.md, "Clock").

    Beyond it `kiosk doctor` fails and offline loans are refused: their due dates would be wrong.
    """

    max_drift_s: float = 120.0


@dataclass(frozen=True)
class AcsSection:
    """The embedded demo library system (`kiosk acs`)."""

    embedded: bool = False
    database_url: str = "sqlite:///var/demo-acs.sqlite"
    host: str = "127.0.0.1"
    port: int = 6001
    loan_days: int = 21
    max_loans: int = 10
    max_renewals: int = 3
    fee_limit: float = 10.0  # outstanding fees above this block borrowing (EUR)
    # true: every request received is applied (a repeated checkout renews, a repeated checkin is a
    # second return), as a library system without repeat detection does; false: a repeat of the
    # item's last transaction is answered without applying it again.
    strict: bool = True
    # how it answers on the wire: a profile name of kiosk/sync/acs/server.py PROFILES (standard,
    # no-duplicate-rule, no-error-detection, late, close-after-apply, ...) with optional
    # ",key=value" overrides, e.g. "no-duplicate-rule,reply_delay_s=12"
    profile: str = "standard"


@dataclass(frozen=True)
class ReaderSection:
    """The RFID pad under the stack of items, named by a device string."""

    url: str = "sim:"
    stable_rounds: int = 2
    poll_interval_s: float = 0.2
    timeout_s: float = 1.0
    retries: int = 3
    data_model: Literal["auto", "iso28560-3", "iso28560-2", "rfid501"] = "auto"


@dataclass(frozen=True)
class SecuritySection:
    """How items are secured: AFI, EAS or both, and the AFI values (ISO 28560-1)."""

    method: Literal["afi", "eas", "both"] = "afi"
    afi_secured: int = 0x07
    afi_unsecured: int = 0xC2
    write_retries: int = 3


@dataclass(frozen=True)
class PatronSection:
    """How patrons identify themselves."""

    pin_policy: PinPolicy = PinPolicy.OPTIONAL
    card_pattern: str = r"^[0-9A-Z]{4,20}$"
    item_pattern: str = r"^[0-9A-Z-]{3,32}$"
    max_login_failures: int = 3
    lockout_s: float = 60.0
    login_window_s: float = 300.0  # failures older than this are forgotten
    terminal_max_failures: int = (
        10  # failures on any cards within the window that lock the terminal
    )
    card_sources: tuple[str, ...] = ("sim:",)
    card_rule: str = (
        "uid"  # uid | uid-decimal | uid-reversed | block:<n>:<ascii|bcd> | map:<csv> | demo
    )
    wedge_max_interkey_s: float = 0.05  # keyboard-wedge scanners type faster than this per key
    wedge_min_length: int = 4


@dataclass(frozen=True)
class PrinterSection:
    """The receipt printer, named by a device string (`file:DIR`, `usb:VID:PID`, `serial:PATH`, `net:HOST:PORT`, `none`)."""

    url: str = "file:var/receipts"
    profile: str = "TM-T88V"  # a model from kiosk/devices/printer_tables.toml (docs/printers.md)
    width: int = 0  # columns; 0 = the profile's for the font
    font: Literal["A", "B"] = "A"
    render: Literal["auto", "text", "raster"] = (
        "auto"  # auto: text when the code pages hold every letter
    )
    codepage: str = (
        ""  # "26=CP1257, 17=CP866": the printer's own table numbers, replacing the profile's
    )
    staff_url: str = ""
    show_patron_name: bool = False
    email_receipts: bool = False
    email_url: str = "file:var/outbox"  # smtp://HOST[:PORT] or file:DIR (one .eml per receipt)
    # What happens to the receipt of a visit that ended by the idle timeout: "email" sends it
    # when the site mails receipts and the patron has an address (nothing is left on the kiosk),
    # "print" prints it, "none" keeps only the record in the library system.
    timeout_receipt: Literal["print", "email", "none"] = "email"
    email_from: str = "kiosk@localhost"


@dataclass(frozen=True)
class SorterSection:
    """The return sorter: `none`, `sim:`, `serial:PATH` or `tcp:HOST:PORT`."""

    url: str = "none"
    exception_bin: int = 0
    default_bin: int = 1
    timeout_s: float = 2.0  # longest wait for the sorter controller's answer to one item


@dataclass(frozen=True)
class UiSection:
    """The touch screen."""

    fullscreen: bool = True
    width: int = 1280
    height: int = 800
    idle_timeout_s: float = 90.0
    idle_warning_s: float = 25.0
    goodbye_s: float = 8.0
    demo_panel: bool = False
    sounds: bool = True
    scale: float = 0.0  # sizes x this; 0 = from the display (its short side and pixel density)
    opening_hours: str = (
        ""  # told to patrons when the kiosk or book drop is closed: "P-Pk 10-19, S 10-16"
    )
    fee_payment: str = ""  # where fees are paid, after "You can pay them ...": "at the desk"
    card_hint: str = ""  # what a card number looks like, after a mistyped one: "LV and 4-12 digits"
    call_staff: bool = True  # the help screen offers "Call staff" (a staff alert)


@dataclass(frozen=True)
class SpeechSection:
    """Spoken guidance (docs/accessibility.md): when it is on, the engine, voices, volume and rate."""

    # on-demand: a headset or the speech key switches it on
    mode: Literal["off", "on-demand", "always"] = "on-demand"
    engine: Literal["espeak-ng", "none"] = "espeak-ng"
    binary: str = "espeak-ng"
    voice_lv: str = "lv"
    voice_en: str = "en-gb"
    voice_ru: str = "ru"  # "ru-lv" for Russian as spoken in Latvia
    volume: int = 80  # % at the start of a visit; the patron changes it with the keypad
    volume_step: int = 10
    rate: int = 160  # words per minute at the start of a visit
    rate_step: int = 20
    # an evdev device reporting the headset jack (SW_HEADPHONE_INSERT); empty = none
    headset_device: str = ""


@dataclass(frozen=True)
class KeypadSection:
    """Operation without the touch screen: which keys do what (Kivy key names), and the focus ring."""

    enabled: bool = True
    up: tuple[str, ...] = ("up", "numpadsubstract")
    down: tuple[str, ...] = ("down", "numpadadd")
    enter: tuple[str, ...] = ("enter", "numpadenter")
    back: tuple[str, ...] = ("escape", "left")
    help: tuple[str, ...] = ("f1", "numpaddivide")
    speech: tuple[str, ...] = ("f2", "numpadmul")
    repeat: tuple[str, ...] = ("f3", "numpaddecimal")
    louder: tuple[str, ...] = ("pageup",)
    quieter: tuple[str, ...] = ("pagedown",)
    faster: tuple[str, ...] = ("end",)
    slower: tuple[str, ...] = ("home",)
    erase: tuple[str, ...] = ("backspace", "delete")
    ring_width: float = 6.0  # pixels
    ring_color: str = "#FFD400"  # drawn over a black outline, so it stands out on light and dark


@dataclass(frozen=True)
class AdminSection:
    """Technician access: a salted scrypt hash of the admin PIN and admin card numbers."""

    pin_hash: str = ""
    cards: tuple[str, ...] = ()
    max_failures: int = 3
    lockout_s: float = 300.0
    idle_timeout_s: float = 300.0
    secrets_policy: SecretsPolicy = SecretsPolicy.WARN


@dataclass(frozen=True)
class LoggingSection:
    """Where and how much the kiosk logs."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    file: str = ""
    max_bytes: int = 5_000_000
    backups: int = 5


@dataclass(frozen=True)
class Config:
    """The whole site configuration; `source` is the file it came from."""

    kiosk: KioskSection = field(default_factory=KioskSection)
    sip2: Sip2Section = field(default_factory=Sip2Section)
    storage: StorageSection = field(default_factory=StorageSection)
    offline: OfflineSection = field(default_factory=OfflineSection)
    clock: ClockSection = field(default_factory=ClockSection)
    acs: AcsSection = field(default_factory=AcsSection)
    reader: ReaderSection = field(default_factory=ReaderSection)
    security: SecuritySection = field(default_factory=SecuritySection)
    patron: PatronSection = field(default_factory=PatronSection)
    printer: PrinterSection = field(default_factory=PrinterSection)
    sorter: SorterSection = field(default_factory=SorterSection)
    ui: UiSection = field(default_factory=UiSection)
    admin: AdminSection = field(default_factory=AdminSection)
    logging: LoggingSection = field(default_factory=LoggingSection)
    metrics: MetricsSection = field(default_factory=MetricsSection)
    alerts: AlertsSection = field(default_factory=AlertsSection)
    status_page: StatusPageSection = field(default_factory=StatusPageSection)
    site: SiteSection = field(default_factory=SiteSection)
    speech: SpeechSection = field(default_factory=SpeechSection)
    keypad: KeypadSection = field(default_factory=KeypadSection)
    routing: tuple[RoutingRule, ...] = ()
    source: str = "<defaults>"

    def resolve_path(self, value: str) -> Path:
        """A relative path is taken from the project folder of the config file (the parent of `config/`)."""
        p = Path(value).expanduser()
        if p.is_absolute():
            return p
        if self.source.startswith("<"):
            return Path.cwd() / p
        base = Path(self.source).parent
        if base.name == "config":
            base = base.parent
        return base / p


@dataclass(frozen=True)
class RoutingRule:
    """One row of the return-routing table: conditions (empty = any) and where the item goes."""

    bin: int
    instruction: str = ""
    sort_bin: str = ""
    alert_type: str = ""
    alert: bool | None = None
    media_type: str = ""
    owner: str = ""
    hold_slip: bool = False
    outcome: str = ""  # a kiosk.core.routing.ReturnOutcome value; empty = items checked in


def _expected(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if isinstance(tp, type) and issubclass(tp, enum.StrEnum):
        return "one of " + ", ".join(repr(m.value) for m in tp)
    if origin is tuple:
        return f"a list of {_expected(get_args(tp)[0])}"
    if tp is bool:
        return "true or false"
    if tp is int:
        return "a whole number"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    return str(tp)


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = get_origin(tp)
    if origin is Literal:
        if value not in get_args(tp):
            raise ConfigError(f"{where}: expected {_expected(tp)}, got {value!r}")
        return value
    if isinstance(tp, type) and issubclass(tp, enum.StrEnum):
        # The file keeps the plain words ("checkin-only"); the program sees the enum member.
        if not isinstance(value, str) or value not in tp._value2member_map_:
            raise ConfigError(f"{where}: expected {_expected(tp)}, got {value!r}")
        return tp(value)
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected {_expected(tp)}, got {value!r}")
        inner = get_args(tp)[0]
        return tuple(_convert(inner, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _convert(args[0], value, where)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return _build(cast(type, tp), value, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected a whole number, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported type {tp}")  # pragma: no cover


def _build(cls: type, table: dict[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.name != "source"}
    kwargs: dict[str, Any] = {}
    for key, value in table.items():
        shown = key if key.isprintable() else repr(key)  # the message stays one line
        key_where = f"{where}.{shown}" if where else shown
        if key not in names:
            known = ", ".join(sorted(names))
            raise ConfigError(f"{key_where}: unknown key (expected one of: {known})")
        kwargs[key] = _convert(hints[key], value, key_where)
    return cls(**kwargs)


def _validate(cfg: Config) -> None:
    """Cross-field checks that types alone cannot express."""

    def bad(key: str, msg: str) -> ConfigError:
        return ConfigError(f"{key}: {msg}")

    if not 1 <= cfg.sip2.port <= 65535:
        raise bad("sip2.port", f"expected a TCP port 1-65535, got {cfg.sip2.port}")
    if cfg.sip2.encoding.lower() not in ENCODINGS:
        raise bad(
            "sip2.encoding", f"expected one of {', '.join(ENCODINGS)}, got {cfg.sip2.encoding!r}"
        )
    if cfg.security.afi_secured == cfg.security.afi_unsecured:
        raise bad("security.afi_unsecured", "must differ from security.afi_secured")
    if not cfg.kiosk.languages:
        raise bad("kiosk.languages", "expected at least one language")
    for lang in cfg.kiosk.languages:
        if lang not in ("lv", "en", "ru"):
            raise bad("kiosk.languages", f"expected languages from lv, en, ru, got {lang!r}")
    for entry in cfg.sip2.patron_languages:
        code, _, lang = entry.partition("=")
        if not re.fullmatch(r"[0-9]{3}", code) or lang not in ("lv", "en", "ru"):
            raise bad(
                "sip2.patron_languages",
                f"expected entries CODE=LANG (a 3-digit SIP2 language code and lv, en or ru), got {entry!r}",
            )
    if cfg.kiosk.default_language not in cfg.kiosk.languages:
        raise bad(
            "kiosk.default_language", f"expected one of kiosk.languages {list(cfg.kiosk.languages)}"
        )
    _validate_printer(cfg.printer)
    if cfg.ui.scale and not 0.5 <= cfg.ui.scale <= 4:
        raise bad("ui.scale", f"expected 0 (from the display) or 0.5-4, got {cfg.ui.scale}")
    validate_speech(cfg.speech)
    validate_keypad(cfg.keypad)
    if cfg.ui.idle_warning_s < 20:
        raise bad("ui.idle_warning_s", "expected at least 20 seconds of warning before logout")
    _check_ranges(cfg)
    _check_texts(cfg)
    if cfg.ui.idle_timeout_s <= cfg.ui.idle_warning_s:
        raise bad("ui.idle_timeout_s", "expected more than ui.idle_warning_s")
    _check_patterns(cfg)


# --- value checks ----------------------------------------------------------------------------
# Every number and text a site can set is checked here, key by key, so a value that cannot work
# (a NaN timeout, a negative retry count, a delimiter that is a letter, an identifier holding the
# SIP2 field delimiter) stops the kiosk at start with one line naming the key, instead of failing
# later or being altered on the wire.

_DAY_S = 86_400.0
# (lowest, highest) for every number in the configuration; tests/unit/test_config_values.py
# checks that no number is missing here.
NUMBER_RANGES: dict[str, tuple[float, float]] = {
    "sip2.port": (1, 65535),
    "sip2.timeout_s": (0.5, 120),
    "sip2.retries": (0, 10),
    "sip2.keepalive_s": (1, _DAY_S),
    "sip2.summary_page_size": (1, 1000),
    "offline.max_checkouts": (0, 1000),
    "offline.loan_days": (1, 3660),
    "offline.forward_interval_s": (0.1, _DAY_S),
    "clock.max_drift_s": (1, _DAY_S),
    "storage.retention_days": (1, 3650),
    "acs.port": (0, 65535),  # 0: any free port (tests, a second demo)
    "acs.loan_days": (1, 3660),
    "acs.max_loans": (0, 10**7),
    "acs.max_renewals": (0, 1000),
    "acs.fee_limit": (0, 10**9),
    "reader.stable_rounds": (1, 100),
    "reader.poll_interval_s": (0.001, 60),
    "reader.timeout_s": (0.01, 120),
    "reader.retries": (0, 100),
    "security.afi_secured": (0, 0xFF),
    "security.afi_unsecured": (0, 0xFF),
    "security.write_retries": (0, 100),
    "patron.max_login_failures": (1, 1000),
    "patron.lockout_s": (0, _DAY_S),
    "patron.login_window_s": (1, _DAY_S),
    "patron.terminal_max_failures": (1, 10**6),
    "patron.wedge_max_interkey_s": (0.001, 10),
    "patron.wedge_min_length": (1, 255),
    "printer.width": (0, 200),  # 0: the printer profile's width
    "sorter.exception_bin": (0, 255),
    "sorter.default_bin": (0, 255),
    "sorter.timeout_s": (0.01, 600),
    "ui.width": (320, 16384),
    "ui.height": (240, 16384),
    "ui.idle_timeout_s": (1, _DAY_S),
    "ui.idle_warning_s": (20, _DAY_S),
    "ui.goodbye_s": (0, 600),
    "ui.scale": (0, 4),  # 0: from the display
    "admin.max_failures": (1, 1000),
    "admin.lockout_s": (0, _DAY_S),
    "admin.idle_timeout_s": (1, _DAY_S),
    "logging.max_bytes": (0, 10**12),
    "logging.backups": (0, 1000),
    "routing.bin": (0, 255),
    "speech.volume": (10, 100),  # % (validate_speech names the unit)
    "speech.volume_step": (1, 50),
    "speech.rate": (80, 400),  # words per minute
    "speech.rate_step": (5, 100),
    "keypad.ring_width": (2, 20),  # pixels
    # Fleet sections (kiosk/fleet/settings.py), listed here so they are checked once merged.
    "metrics.sample_interval_s": (0.1, _DAY_S),
    "alerts.timeout_s": (0.1, 120),
    "alerts.retry_initial_s": (0.1, _DAY_S),
    "alerts.retry_max_s": (0.1, _DAY_S),
    "alerts.resolve_after_s": (1, 7 * _DAY_S),
}
# Values the library system receives in SIP2 fields, exactly as configured.
SIP2_FIELD_KEYS = (
    "sip2.username",
    "sip2.password",
    "sip2.location_code",
    "sip2.institution_id",
    "sip2.terminal_password",
)
NON_EMPTY_KEYS = (
    "sip2.host",
    "storage.path",
    "acs.database_url",
    "reader.url",
    "printer.url",
    "sorter.url",
    "kiosk.terminal_id",
)
_SIP2_MAX_FIELD_BYTES = 255  # the spec's limit on a variable-length field


def _values(cfg: Config) -> list[tuple[str, Any]]:
    """Every configured value with its key ("sip2.port", "routing.bin" for each rule)."""
    out: list[tuple[str, Any]] = []
    for section in dataclasses.fields(Config):
        value = getattr(cfg, section.name)
        if dataclasses.is_dataclass(value):
            out += [
                (f"{section.name}.{f.name}", getattr(value, f.name))
                for f in dataclasses.fields(value)
            ]
    for rule in cfg.routing:
        out += [(f"routing.{f.name}", getattr(rule, f.name)) for f in dataclasses.fields(rule)]
    return out


def _check_ranges(cfg: Config) -> None:
    """Every number finite and in its range."""
    for key, value in _values(cfg):
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        # A number not listed yet (a section added later) must at least be finite and not
        # negative; the tests ask for every number to be listed.
        low, high = NUMBER_RANGES.get(key, (0, math.inf))
        if not (math.isfinite(value) and low <= value <= high):
            unit = (
                " seconds" if key.endswith("_s") else " (a byte, e.g. 0x07)" if "afi" in key else ""
            )
            raise ConfigError(
                f"{key}: expected {_number(low)} to {_number(high)}{unit}, got {value}"
            )


def _number(value: float) -> str:
    return f"{value:g}" if value < 10**7 else f"{value:.0e}"


def _check_texts(cfg: Config) -> None:
    """No control character in any text; SIP2 identifiers sent as configured or refused here."""
    for key, value in _values(cfg):
        for i, text in enumerate(value if isinstance(value, tuple) else (value,)):
            if not isinstance(text, str):
                continue
            where = f"{key}[{i}]" if isinstance(value, tuple) else key
            if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
                raise ConfigError(
                    f"{where}: expected text without control characters, got {text!r}"
                )
            if isinstance(value, tuple) and not text.strip():
                raise ConfigError(f"{where}: expected a non-empty string")
    for key in NON_EMPTY_KEYS:
        if not _get(cfg, key).strip():
            raise ConfigError(f"{key}: expected a non-empty string")
    delimiter = cfg.sip2.field_delimiter
    if (
        len(delimiter) != 1
        or delimiter.isalnum()
        or delimiter.isspace()
        or not delimiter.isprintable()
    ):
        raise ConfigError(
            "sip2.field_delimiter: expected one printable character that is no letter, digit or "
            f"space (field ids are letters and digits), got {delimiter!r}"
        )
    if not (
        len(cfg.kiosk.currency) == 3
        and cfg.kiosk.currency.isascii()
        and cfg.kiosk.currency.isupper()
    ):
        raise ConfigError(
            f"kiosk.currency: expected an ISO 4217 code such as 'EUR', got {cfg.kiosk.currency!r}"
        )
    if cfg.printer.email_receipts:
        if not cfg.printer.email_url.startswith(("smtp://", "file:")):
            raise ConfigError(
                f"printer.email_url: expected smtp://HOST[:PORT] or file:DIR, got {cfg.printer.email_url!r}"
            )
        local, at, domain = cfg.printer.email_from.partition("@")
        if not (local and at and domain) or " " in cfg.printer.email_from:
            raise ConfigError(
                f"printer.email_from: expected an e-mail address, got {cfg.printer.email_from!r}"
            )
    for key in SIP2_FIELD_KEYS:
        value = _get(cfg, key)
        secret = "password" in key
        shown = "(not shown)" if secret else repr(value)
        if delimiter in value:
            raise ConfigError(
                f"{key}: contains the SIP2 field delimiter {delimiter!r}, which would end the field "
                f"early; the value is sent unaltered or not at all: {shown}"
            )
        try:
            size = len(value.encode(cfg.sip2.encoding))
        except (UnicodeEncodeError, LookupError):
            raise ConfigError(
                f"{key}: cannot be written in sip2.encoding {cfg.sip2.encoding}: {shown}"
            ) from None
        if size > _SIP2_MAX_FIELD_BYTES:
            raise ConfigError(
                f"{key}: {size} bytes; a SIP2 field holds at most {_SIP2_MAX_FIELD_BYTES}"
            )


def _get(cfg: Config, key: str) -> Any:
    section, name = key.split(".")
    return getattr(getattr(cfg, section), name)


_PATTERN_KEYS = ("patron.card_pattern", "patron.item_pattern")


def _check_patterns(cfg: Config) -> None:
    """Both patterns compile, allow nothing longer than a SIP2 field, and no scanned string is
    taken for both a card and an item (decided on the patterns' automata).

    The session takes a scanned string that matches ``card_pattern`` for a library card (and
    ignores it during a session), so an item id that also matches it could never be borrowed:
    patterns under which every item id is a card are refused, a partial overlap is logged as a
    warning naming a string both match.
    """
    compiled: dict[str, Any] = {}
    for key in _PATTERN_KEYS:
        pattern = _get(cfg, key)
        try:
            compiled[key] = re.compile(pattern)
        except (re.error, OverflowError, RecursionError, ValueError) as exc:
            raise ConfigError(
                f"{key}: expected a regular expression, got {pattern!r} ({exc})"
            ) from None
    verdict = _compare_patterns(cfg.patron.card_pattern, cfg.patron.item_pattern)
    if verdict.unbounded:
        raise _unbounded(verdict.unbounded)
    if cfg.kiosk.mode == "bookdrop":
        return  # nobody identifies at a book drop: every scanned string is an item
    if verdict.uncomparable:
        log.warning(
            "patron.item_pattern: cannot check whether it overlaps patron.card_pattern (a pattern "
            "too complex to compare); a scanned string matching both is taken for a card"
        )
    elif verdict.both is not None and verdict.item_inside_card:
        raise ConfigError(
            f"patron.item_pattern: every item id it allows also matches patron.card_pattern "
            f"(e.g. {verdict.both!r}) and would be taken for a library card; make the patterns "
            "distinct"
        )
    elif verdict.both is not None:
        log.warning(
            "patron.item_pattern: item ids that also match patron.card_pattern (e.g. %r) are "
            "taken for library cards and cannot be borrowed; make the patterns distinct",
            verdict.both,
        )


@dataclass(frozen=True)
class _PatternVerdict:
    unbounded: str = ""  # the key of a pattern allowing more than a SIP2 field holds
    uncomparable: bool = False
    both: str | None = None  # a string both patterns match
    item_inside_card: bool = False


@functools.lru_cache(maxsize=32)
def _compare_patterns(card_pattern: str, item_pattern: str) -> _PatternVerdict:
    """The patterns compared once per pair: plainly distinct ones of the common shape at once,
    any others on their automata (loading the automata library and building them takes 10 ms
    at every start, before the first frame: docs/performance.md, cold start)."""
    patterns = dict(zip(_PATTERN_KEYS, (card_pattern, item_pattern), strict=True))
    for key, pattern in patterns.items():
        if any(int(n) > _SIP2_MAX_FIELD_BYTES for n in _COUNT.findall(pattern)):
            return _PatternVerdict(unbounded=key)
    if _plainly_distinct(card_pattern, item_pattern):
        return _PatternVerdict()
    return _automata_verdict(card_pattern, item_pattern)


def _automata_verdict(card_pattern: str, item_pattern: str) -> _PatternVerdict:
    """The verdict on the patterns' automata (interegular): any pattern it can read."""
    card, item = (_automaton(pattern) for pattern in (card_pattern, item_pattern))
    for key, fsm in zip(_PATTERN_KEYS, (card, item), strict=True):
        if fsm is not None and _longest(fsm) > _SIP2_MAX_FIELD_BYTES:
            return _PatternVerdict(unbounded=key)
    if card is None or item is None:
        return _PatternVerdict(uncomparable=True)
    both = _shortest(card & item)
    return _PatternVerdict(
        both=both, item_inside_card=both is not None and _shortest(item - card) is None
    )


# The common shape of a card or item pattern: ^, then letters, digits, "-" and "_", alone or in
# a bracket class of them and their ranges, each with an optional ?, {n} or {m,n}, then $.
_PLAIN_ATOM = re.compile(
    r"(?:([A-Za-z0-9_-])|\[(-?(?:[A-Za-z0-9_](?:-[A-Za-z0-9_])?)+-?)\])(?:\{(\d+)(?:,(\d+))?\}|(\?))?"
)
_CLASS_PART = re.compile(r"^-|-$|([A-Za-z0-9_])(?:-([A-Za-z0-9_]))?")
# Larger products of two patterns' positions are left to the automata.
_PLAIN_PRODUCT_MAX = 4096


def _plain_positions(pattern: str) -> list[tuple[frozenset[str], bool]] | None:
    """The characters each position of a match of a pattern of the common shape may hold, and
    whether it may be left out (a {2,4} is two positions and two that may be left out); None for
    any other pattern."""
    body, ends = _body(pattern)
    if not ends:
        return None
    positions: list[tuple[frozenset[str], bool]] = []
    at = 0
    while at < len(body):
        atom = _PLAIN_ATOM.match(body, at)
        if atom is None:
            return None
        at = atom.end()
        single, inside, low, high, optional = atom.groups()
        chars: set[str] = set(single or "")
        for part in _CLASS_PART.finditer(inside or ""):
            first, last = part.group(1), part.group(2)
            if first is None:
                chars.add("-")
            elif last is None:
                chars.add(first)
            elif first <= last:
                chars.update(map(chr, range(ord(first), ord(last) + 1)))
            else:
                return None  # a reversed range: re refuses it
        least, most = (0, 1) if optional else (int(low or 1), int(high or low or 1))
        if least > most:
            return None
        kept = frozenset(chars)
        positions += [(kept, False)] * least + [(kept, True)] * (most - least)
    return positions


def _plainly_distinct(card_pattern: str, item_pattern: str) -> bool:
    """Both patterns have the common shape, allow no more than a SIP2 field holds, and no
    string matches both: what the automata would find, found by walking the two patterns'
    positions side by side. False says nothing (the automata decide)."""
    card, item = _plain_positions(card_pattern), _plain_positions(item_pattern)
    if card is None or item is None or len(card) * len(item) > _PLAIN_PRODUCT_MAX:
        return False
    if max(len(card), len(item)) > _SIP2_MAX_FIELD_BYTES:
        return False
    end = (len(card), len(item))
    seen, queue = {(0, 0)}, [(0, 0)]
    for i, j in queue:  # (positions of the card pattern, of the item pattern) behind
        if (i, j) == end:
            return False  # a string both match
        steps = []
        if i < end[0] and card[i][1]:
            steps.append((i + 1, j))
        if j < end[1] and item[j][1]:
            steps.append((i, j + 1))
        if i < end[0] and j < end[1] and not card[i][0].isdisjoint(item[j][0]):
            steps.append((i + 1, j + 1))
        for step in steps:
            if step not in seen:
                seen.add(step)
                queue.append(step)
    return True


def _longest(fsm: Any) -> float:
    """The length of the longest string ``fsm`` accepts (infinite when a loop leads to a final
    state)."""
    reverse: dict[Any, set[Any]] = {}
    for state, moves in fsm.map.items():
        for target in moves.values():
            reverse.setdefault(target, set()).add(state)
    live, queue = set(fsm.finals), list(fsm.finals)
    for state in queue:  # states from which a final state can be reached
        for before in reverse.get(state, ()):
            if before not in live:
                live.add(before)
                queue.append(before)
    memo: dict[Any, float] = {}
    visiting: set[Any] = set()

    def longest_from(state: Any) -> float:
        if state in memo:
            return memo[state]
        if state in visiting:
            return math.inf
        visiting.add(state)
        best = 0.0 if state in fsm.finals else -math.inf
        for target in fsm.map.get(state, {}).values():
            if target in live:
                best = max(best, 1 + longest_from(target))
        visiting.discard(state)
        memo[state] = best
        return best

    return longest_from(fsm.initial) if fsm.initial in live else 0.0


_COUNT = re.compile(r"\{(?:\d*,)?(\d+)\}")  # the upper bound of a {m,n} repetition


def _unbounded(key: str) -> ConfigError:
    return ConfigError(
        f"{key}: allows more than {_SIP2_MAX_FIELD_BYTES} characters (more than a SIP2 field "
        "holds, or no end at all without $); bound it, e.g. ^[0-9]{3,32}$"
    )


def _body(pattern: str) -> tuple[str, bool]:
    """The pattern without its anchors (^ or \\A first, $ or \\Z last), and whether it had one
    at its end (without it, re.match lets anything follow)."""
    body = pattern.removeprefix("^").removeprefix("\\A")
    if body.endswith("$") and not body.endswith("\\$"):
        return body[:-1], True
    if body.endswith("\\Z"):
        return body[:-2], True
    return body, False


def _automaton(pattern: str) -> Any:
    """A finite automaton for the strings ``re.match(pattern, s)`` accepts, or None when the
    pattern is beyond what can be compared (lookbehinds, back references). Repetition counts
    are at most 256 here (larger ones are refused first), so the automaton stays small."""
    import interegular  # lazy: fast `kiosk --help`

    body, ends = _body(pattern)
    if not ends:
        body = f"(?:{body}).*"  # re.match: anything may follow
    try:
        return interegular.parse_pattern(body).to_fsm()
    except (interegular.patterns.Unsupported, interegular.patterns.InvalidSyntax, RecursionError):
        return None


def _shortest(fsm: Any) -> str | None:
    """The shortest string ``fsm`` accepts (printable characters preferred), or None."""
    symbols: dict[int, str] = {}
    for symbol, index in fsm.alphabet.items():
        if isinstance(symbol, str) and (index not in symbols or not symbols[index].isprintable()):
            symbols[index] = symbol
    seen, queue = {fsm.initial: ""}, [fsm.initial]
    for state in queue:
        if state in fsm.finals:
            return seen[state]
        for index, target in fsm.map.get(state, {}).items():
            if target not in seen:
                seen[target] = seen[state] + symbols.get(index, "?")
                queue.append(target)
    return None


def _validate_printer(printer: PrinterSection) -> None:
    """An unknown printer profile or table list is refused here, not at the first receipt."""
    from kiosk.devices.printer_models import (  # lazy: fast `kiosk --help`
        check_profile,
        get_model,
        parse_codepage,
    )

    problem = check_profile(printer.profile)
    if problem:
        raise ConfigError(f"printer.profile: {problem}")
    most = get_model(printer.profile).columns(printer.font)
    if printer.width and not 16 <= printer.width <= most:
        raise ConfigError(
            f"printer.width: expected 0 (from the profile) or 16-{most} columns ({printer.profile}, font {printer.font}), got {printer.width}"
        )
    try:
        parse_codepage(printer.codepage)
    except ValueError as exc:
        raise ConfigError(f"printer.codepage: {exc}") from None


def validate_speech(speech: SpeechSection) -> None:
    """Volume and rate within what the engine can do and the patron can still understand."""
    if not 10 <= speech.volume <= 100:
        raise ConfigError(f"speech.volume: expected 10-100 (%), got {speech.volume}")
    if not 1 <= speech.volume_step <= 50:
        raise ConfigError(f"speech.volume_step: expected 1-50, got {speech.volume_step}")
    if not 80 <= speech.rate <= 400:
        raise ConfigError(f"speech.rate: expected 80-400 words per minute, got {speech.rate}")
    if not 5 <= speech.rate_step <= 100:
        raise ConfigError(f"speech.rate_step: expected 5-100, got {speech.rate_step}")
    for key in ("binary", "voice_lv", "voice_en", "voice_ru"):
        if not getattr(speech, key).strip():
            raise ConfigError(f"speech.{key}: expected a name, got an empty string")


def validate_keypad(keypad: KeypadSection) -> None:
    """Every key name known, no key doing two things, a visible focus ring."""

    from kiosk.speech.keys import ACTIONS, unknown_keys  # lazy: fast `kiosk --help`

    owner: dict[str, str] = {}
    for action in ACTIONS:
        names = getattr(keypad, action)
        bad = unknown_keys(names)
        if bad:
            raise ConfigError(
                f"keypad.{action}: unknown key {bad[0]!r} (expected Kivy key names such as up, enter, numpad8, f1, a, 7)"
            )
        for name in names:
            if name in owner:
                raise ConfigError(f"keypad.{action}: key {name!r} is already keypad.{owner[name]}")
            owner[name] = action
    if keypad.enabled and not (keypad.up and keypad.down and keypad.enter):
        raise ConfigError("keypad: expected at least one key each for up, down and enter")
    if not 2 <= keypad.ring_width <= 20:
        raise ConfigError(f"keypad.ring_width: expected 2-20 pixels, got {keypad.ring_width}")
    if not re.fullmatch(r"#[0-9A-Fa-f]{6}", keypad.ring_color):
        raise ConfigError(f"keypad.ring_color: expected #RRGGBB, got {keypad.ring_color!r}")


def read_toml(text: str, source: str) -> dict[str, Any]:
    """TOML text as data; a syntax error or a nesting too deep for the parser is a ConfigError."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(
            f"{source}: {_deepest_key(text)}: arrays or tables nested too deeply"
        ) from None


def parse(text: str, source: str = "<string>") -> Config:
    """Parse TOML text into a validated Config; errors name `source`."""
    return from_data(read_toml(text, source), source)


def from_data(data: dict[str, Any], source: str) -> Config:
    """A validated Config from parsed TOML (one file, or the merged layers of kiosk.config_layers)."""
    data = dict(data)
    try:
        routing = data.pop("routing", [])
        if not isinstance(routing, list):
            raise ConfigError("routing: expected [[routing]] tables")
        cfg = _build(Config, data, "")
        rules = tuple(
            _build(RoutingRule, r, f"routing[{i}]") if isinstance(r, dict) else _bad_rule(i)
            for i, r in enumerate(routing)
        )
        cfg = dataclasses.replace(cfg, routing=rules, source=source)
        _validate(cfg)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    except TypeError as exc:  # a required field (e.g. routing bin) missing
        raise ConfigError(f"{source}: {exc}") from None
    return cfg


def _deepest_key(text: str) -> str:
    """The key (with its table) whose value opens the most brackets: where nesting runs away."""
    table, best, depth = "", "", -1
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("[") and "=" not in stripped:
            table = stripped.strip("[] ")
            continue
        key, eq, value = stripped.partition("=")
        opened = len(value) - len(value.lstrip(" [{"))
        if eq and opened > depth:
            best, depth = f"{table}.{key.strip()}" if table else key.strip(), opened
    return best or "(top level)"


def _bad_rule(i: int) -> Any:
    raise ConfigError(f"routing[{i}]: expected a table")


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The file to load: explicit, then $KIOSK_CONFIG, then the embedded default."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("KIOSK_CONFIG")
    if env:
        return Path(env)
    return DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else PACKAGED_DEFAULT


def load(explicit: str | os.PathLike[str] | None = None) -> Config:
    """Load and validate the configuration; raises ConfigError with a one-line message."""
    path = config_path(explicit)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read configuration ({exc})") from None
    from kiosk import config_layers  # lazy: config_layers imports this module

    return config_layers.load_layers(path, text)
