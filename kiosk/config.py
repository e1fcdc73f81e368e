"""Site configuration: TOML loaded into typed, frozen dataclasses and validated on start.

A wrong key, type or value raises ConfigError with one line naming the file, the key and
what is expected. Look-up order: an explicit path, then $KIOSK_CONFIG, then the embedded
default `config/kiosk.toml` (the demo: embedded library system, simulated reader).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from kiosk.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "config" / "kiosk.toml"
PACKAGED_DEFAULT = Path(__file__).resolve().parent / "default.toml"

ENCODINGS = ("utf-8", "cp850", "cp1257", "iso8859-13", "cp775", "iso8859-4")


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
    owner_institutions: tuple[str, ...] = ()  # ISILs of this library's items; empty = any owner is ours


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
    line_terminator: Literal["CR", "CRLF"] = "CR"
    field_delimiter: str = "|"
    timeout_s: float = 10.0
    retries: int = 3
    keepalive_s: float = 240.0
    summary_page_size: int = 20
    send_login: bool = True


@dataclass(frozen=True)
class StorageSection:
    """Where the durable journal lives."""

    path: str = "var/journal.sqlite"


@dataclass(frozen=True)
class OfflineSection:
    """What the kiosk may do while the library system cannot be reached."""

    policy: Literal["disabled", "checkin-only", "checkin-and-checkout"] = "checkin-only"
    max_checkouts: int = 5
    loan_days: int = 14
    forward_interval_s: float = 30.0


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

    pin_policy: Literal["none", "mandatory", "optional"] = "optional"
    card_pattern: str = r"^[0-9A-Z]{4,20}$"
    item_pattern: str = r"^[0-9A-Z-]{3,32}$"
    max_login_failures: int = 3
    lockout_s: float = 60.0
    login_window_s: float = 300.0  # failures older than this are forgotten
    terminal_max_failures: int = 10  # failures on any cards within the window that lock the terminal
    card_sources: tuple[str, ...] = ("sim:",)
    card_rule: str = "uid"  # uid | uid-decimal | uid-reversed | block:<n>:<ascii|bcd> | map:<csv> | demo
    wedge_max_interkey_s: float = 0.05  # keyboard-wedge scanners type faster than this per key
    wedge_min_length: int = 4


@dataclass(frozen=True)
class PrinterSection:
    """The receipt printer, named by a device string (`file:DIR`, `usb:VID:PID`, `serial:PATH`, `net:HOST:PORT`, `none`)."""

    url: str = "file:var/receipts"
    profile: str = "TM-T88V"  # a model from kiosk/devices/printer_tables.toml (docs/printers.md)
    width: int = 0  # columns; 0 = the profile's for the font
    font: Literal["A", "B"] = "A"
    render: Literal["auto", "text", "raster"] = "auto"  # auto: text when the code pages hold every letter
    codepage: str = ""  # "26=CP1257, 17=CP866": the printer's own table numbers, replacing the profile's
    staff_url: str = ""
    show_patron_name: bool = False
    email_receipts: bool = False
    email_url: str = "file:var/outbox"  # smtp://HOST[:PORT] or file:DIR (one .eml per receipt)
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
    secrets_policy: Literal["refuse", "warn"] = "warn"


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
    acs: AcsSection = field(default_factory=AcsSection)
    reader: ReaderSection = field(default_factory=ReaderSection)
    security: SecuritySection = field(default_factory=SecuritySection)
    patron: PatronSection = field(default_factory=PatronSection)
    printer: PrinterSection = field(default_factory=PrinterSection)
    sorter: SorterSection = field(default_factory=SorterSection)
    ui: UiSection = field(default_factory=UiSection)
    admin: AdminSection = field(default_factory=AdminSection)
    logging: LoggingSection = field(default_factory=LoggingSection)
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
        return _build(tp, value, where)
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
        key_where = f"{where}.{key}" if where else key
        if key not in names:
            known = ", ".join(sorted(names))
            raise ConfigError(f"{key_where}: unknown key (expected one of: {known})")
        kwargs[key] = _convert(hints[key], value, key_where)
    return cls(**kwargs)


def _validate(cfg: Config) -> None:
    """Cross-field checks that types alone cannot express."""
    import re

    def bad(key: str, msg: str) -> ConfigError:
        return ConfigError(f"{key}: {msg}")

    if not 1 <= cfg.sip2.port <= 65535:
        raise bad("sip2.port", f"expected a TCP port 1-65535, got {cfg.sip2.port}")
    if cfg.sip2.encoding.lower() not in ENCODINGS:
        raise bad("sip2.encoding", f"expected one of {', '.join(ENCODINGS)}, got {cfg.sip2.encoding!r}")
    if not 0.5 <= cfg.sip2.timeout_s <= 120:
        raise bad("sip2.timeout_s", f"expected 0.5-120 seconds, got {cfg.sip2.timeout_s}")
    if not 0 <= cfg.sip2.retries <= 10:
        raise bad("sip2.retries", f"expected 0-10, got {cfg.sip2.retries}")
    if len(cfg.sip2.field_delimiter) != 1:
        raise bad("sip2.field_delimiter", "expected exactly one character")
    for key, val in (("security.afi_secured", cfg.security.afi_secured), ("security.afi_unsecured", cfg.security.afi_unsecured)):
        if not 0 <= val <= 0xFF:
            raise bad(key, f"expected a byte 0-255 (e.g. 0x07), got {val}")
    if cfg.security.afi_secured == cfg.security.afi_unsecured:
        raise bad("security.afi_unsecured", "must differ from security.afi_secured")
    if cfg.offline.max_checkouts < 0 or cfg.offline.loan_days < 1:
        raise bad("offline.loan_days", "expected max_checkouts >= 0 and loan_days >= 1")
    for key, pattern in (("patron.card_pattern", cfg.patron.card_pattern), ("patron.item_pattern", cfg.patron.item_pattern)):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise bad(key, f"expected a regular expression, got {pattern!r} ({exc})") from None
    if not cfg.kiosk.languages:
        raise bad("kiosk.languages", "expected at least one language")
    for lang in cfg.kiosk.languages:
        if lang not in ("lv", "en", "ru"):
            raise bad("kiosk.languages", f"expected languages from lv, en, ru, got {lang!r}")
    if cfg.kiosk.default_language not in cfg.kiosk.languages:
        raise bad("kiosk.default_language", f"expected one of kiosk.languages {list(cfg.kiosk.languages)}")
    _validate_printer(cfg.printer)
    validate_speech(cfg.speech)
    validate_keypad(cfg.keypad)
    if cfg.ui.idle_warning_s < 20:
        raise bad("ui.idle_warning_s", "expected at least 20 seconds of warning before logout")
    if cfg.ui.idle_timeout_s <= cfg.ui.idle_warning_s:
        raise bad("ui.idle_timeout_s", "expected more than ui.idle_warning_s")


def _validate_printer(printer: PrinterSection) -> None:
    """An unknown printer profile or table list is refused here, not at the first receipt."""
    from kiosk.devices.printer import parse_codepage
    from kiosk.devices.printer_models import check_profile, get_model

    problem = check_profile(printer.profile)
    if problem:
        raise ConfigError(f"printer.profile: {problem}")
    most = get_model(printer.profile).columns(printer.font)
    if printer.width and not 16 <= printer.width <= most:
        raise ConfigError(f"printer.width: expected 0 (from the profile) or 16-{most} columns ({printer.profile}, font {printer.font}), got {printer.width}")
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
    import re

    from kiosk.speech.keys import ACTIONS, unknown_keys

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


def parse(text: str, source: str = "<string>") -> Config:
    """Parse TOML text into a validated Config; errors name `source`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    try:
        routing = data.pop("routing", [])
        if not isinstance(routing, list):
            raise ConfigError("routing: expected [[routing]] tables")
        cfg = _build(Config, data, "")
        rules = tuple(_build(RoutingRule, r, f"routing[{i}]") if isinstance(r, dict) else _bad_rule(i) for i, r in enumerate(routing))
        cfg = dataclasses.replace(cfg, routing=rules, source=source)
        _validate(cfg)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    except TypeError as exc:  # a required field (e.g. routing bin) missing
        raise ConfigError(f"{source}: {exc}") from None
    return cfg


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
    return parse(text, str(path.resolve()))
