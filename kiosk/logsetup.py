"""Logging for the kiosk: structured records to the systemd journal (or JSON lines on stderr),
an optional size-rotated log file, and a masking filter on every handler as a last line of
defence against PINs, SIP2 passwords and full card numbers reaching a log.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import re
import socket
import sys
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from kiosk.core.masking import mask_card
from kiosk.core.sanitize import for_log
from kiosk.errors import KioskError
from kiosk.sync.sip2.wirelog import mask_value

JOURNAL_SOCKET = "/run/systemd/journal/socket"
_MARK = "_kiosk_handler"  # handlers we installed, so setup can be repeated without doubling output

# SIP2 fields: CO login password, AD patron PIN, AC terminal password are removed outright;
# patron ids (AA, CY), names (AE, DA), e-mail (BE), address (BD) and phone (BF) are masked as
# the wire log masks them. In every SC message these fields follow a delimiter (the first
# variable field is never one of them), so words like "ACS" are left alone.
_SIP2_SECRET_RE = re.compile(r"(?<=\|)(AD|CO|AC)([^|\r\n'\"]*)")
_SIP2_PATRON_RE = re.compile(r"(?<=\|)(AA|AE|BE|BD|BF|CY|DA)([^|\r\n'\"]*)")
# key=value, key: value and JSON "key": "value" forms of secrets in free text.
_SECRET_KV_RE = re.compile(
    r"""(?ix)
    (["']?\b(?:pin|pin_hash|password|passwd|terminal_password|patron_password|secret)\b["']?\s*[:=]\s*)
    (?:\[redacted\]|"[^"]*"|'[^']*'|[^\s,;|}\]]+)
    """
)
_PIN_WORD_RE = re.compile(r"(?i)(\bpin\s+)(\d{3,})")
_SCRUBBED = "_kiosk_scrubbed"
_PATRON_KV_RE = re.compile(
    r"""(?ix)(["']?\b(?:patron_id|patron|card|card_number|barcode_card)\b["']?\s*[:=]\s*["']?)([^\s"',;|}\]]+)"""
)
# Without a site pattern, long digit runs (card numbers, but also item ids) are masked.
_DEFAULT_CARD_RE = r"\b\d{10,19}\b"

REDACTED = "[redacted]"

_SYSLOG_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


class LogSetupError(KioskError):
    """The log file or the journal socket cannot be used; the message says which and what to check."""


def card_regex(card_pattern: str | None) -> re.Pattern[str]:
    """A search pattern for card numbers in free text, from the site's anchored `patron.card_pattern`."""
    body = (card_pattern or "").strip()
    if body.startswith("^"):
        body = body[1:]
    if body.endswith("$") and not body.endswith("\\$"):
        body = body[:-1]
    if not body:
        return re.compile(_DEFAULT_CARD_RE)
    try:
        return re.compile(rf"(?<![0-9A-Za-z*])(?:{body})(?![0-9A-Za-z])")
    except re.error:
        return re.compile(_DEFAULT_CARD_RE)


def _mask_if_card(m: re.Match[str]) -> str:
    # A permissive site pattern (e.g. [0-9A-Z]{4,20}) also matches words like WARNING; card
    # numbers carry digits, so only matches with at least four digits are masked.
    value = m.group(0)
    return mask_card(value) if sum(c.isdigit() for c in value) >= 4 else value


def _mask_personal(fid: str, value: str) -> str:
    # The wire log's rules, so a line masked there is left as it is here.

    return mask_value(fid, value)


def scrub(text: str, card_re: re.Pattern[str] | None = None) -> str:
    """`text` with SIP2 secrets removed, patron fields and card numbers masked, PIN-like values redacted."""
    if not text:
        return text
    text = _SIP2_SECRET_RE.sub(lambda m: m.group(1) + ("" if not m.group(2) else REDACTED), text)
    text = _SIP2_PATRON_RE.sub(lambda m: m.group(1) + _mask_personal(m.group(1), m.group(2)), text)
    text = _SECRET_KV_RE.sub(lambda m: m.group(1) + REDACTED, text)
    text = _PIN_WORD_RE.sub(lambda m: m.group(1) + REDACTED, text)
    text = _PATRON_KV_RE.sub(lambda m: m.group(1) + mask_card(m.group(2)), text)
    text = (card_re or re.compile(_DEFAULT_CARD_RE)).sub(_mask_if_card, text)
    return text


class MaskingFilter(logging.Filter):
    """Rewrites each record's message (and exception text) through `scrub` before any handler sees it."""

    def __init__(self, card_pattern: str | None = None) -> None:
        super().__init__()
        self.card_re = card_regex(card_pattern)

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _SCRUBBED, False):
            return True
        setattr(record, _SCRUBBED, True)
        try:
            message = record.getMessage()
        except Exception:
            # A broken format string must not lose the record: it is kept, unformatted, and the
            # record's own text shows what was wrong (msg and args as given).
            message = f"{record.msg!r} % {record.args!r}"
        # The log sink's sanitiser: control characters from data are written as escapes.
        record.msg = for_log(scrub(message, self.card_re))
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = scrub(record.exc_text, self.card_re)
        record.exc_info = (
            None  # formatted and scrubbed above; keeps handlers from re-formatting the raw one
        )
        if record.stack_info:
            record.stack_info = scrub(record.stack_info, self.card_re)
        for key in ("card", "patron_id", "pin", "password"):
            if hasattr(record, key):
                setattr(
                    record,
                    key,
                    REDACTED
                    if key in ("pin", "password")
                    else mask_card(str(getattr(record, key))),
                )
        return True


_original_factory: Callable[..., logging.LogRecord] | None = None


def install_record_masking(masking: MaskingFilter) -> None:
    """Scrub every record as it is created, so handlers installed by others (Kivy, test
    harnesses) never see the raw text either; the handler filter stays as a second net."""
    global _original_factory
    if _original_factory is None:
        _original_factory = logging.getLogRecordFactory()
    base = _original_factory

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = base(*args, **kwargs)
        if record.exc_info is None:  # exceptions are formatted (and scrubbed) by the handler filter
            masking.filter(record)
        return record

    logging.setLogRecordFactory(factory)


_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {
        k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS and not k.startswith("_")
    }


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, and any `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        doc.update(
            {
                k: v if isinstance(v, (str, int, float, bool, type(None))) else str(v)
                for k, v in _extras(record).items()
            }
        )
        if record.exc_text:
            doc["exc"] = record.exc_text
        elif record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


def _journal_field(name: str, value: str) -> bytes:
    key = name.upper().encode("ascii")
    data = value.encode("utf-8", "replace")
    if b"\n" in data:
        # Native protocol: a value with a newline is sent as NAME\n + 64-bit LE length + bytes.
        return key + b"\n" + len(data).to_bytes(8, "little") + data + b"\n"
    return key + b"=" + data + b"\n"


_FIELD_NAME_RE = re.compile(r"[^A-Z0-9_]")


class JournaldHandler(logging.Handler):
    """Sends records to journald over its native datagram socket, with fields as journal fields.

    Each record carries MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, LOGGER, CODE_FILE/LINE/FUNC and
    every `extra=` field as KIOSK_<NAME>, so `journalctl -u kiosk KIOSK_TERMINAL=...` can filter.
    """

    MAX_DATAGRAM = 60_000

    def __init__(
        self,
        address: str = JOURNAL_SOCKET,
        identifier: str = "kiosk",
        fields: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.address = address
        self.identifier = identifier
        self.fields = dict(fields or {})
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    def encode(self, record: logging.LogRecord) -> bytes:
        message = record.getMessage()
        if record.exc_text:
            message += "\n" + record.exc_text
        parts = [
            _journal_field("MESSAGE", message),
            _journal_field("PRIORITY", str(_SYSLOG_PRIORITY.get(record.levelno, 6))),
            _journal_field("SYSLOG_IDENTIFIER", self.identifier),
            _journal_field("LOGGER", record.name),
            _journal_field("CODE_FILE", record.pathname),
            _journal_field("CODE_LINE", str(record.lineno)),
            _journal_field("CODE_FUNC", record.funcName or ""),
        ]
        for key, value in {**self.fields, **_extras(record)}.items():
            name = "KIOSK_" + _FIELD_NAME_RE.sub("_", key.upper())
            parts.append(_journal_field(name, str(value)))
        data = b"".join(parts)
        if (
            len(data) > self.MAX_DATAGRAM
        ):  # larger needs fd passing; cut rather than lose the record
            data = _journal_field(
                "MESSAGE", message[: self.MAX_DATAGRAM // 2] + " [truncated]"
            ) + b"".join(parts[1:7])
        return data

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._sock.sendto(self.encode(record), self.address)
        except Exception:
            # logging's own rule for a handler: handleError reports it with the traceback.
            self.handleError(record)

    def close(self) -> None:
        try:
            self._sock.close()
        finally:
            super().close()


def under_journald() -> bool:
    """True when stderr is connected to the journal (systemd sets $JOURNAL_STREAM to its dev:inode)."""
    stream = os.environ.get("JOURNAL_STREAM", "")
    if not stream:
        return False
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return stream == f"{st.st_dev}:{st.st_ino}"


def setup_logging(
    cfg: Any,
    *,
    verbose: bool = False,
    stream: TextIO | None = None,
    journal: bool | None = None,
    journal_address: str = JOURNAL_SOCKET,
) -> list[logging.Handler]:
    """Install the kiosk's handlers on the root logger (replacing ones installed before).

    `cfg` is a kiosk Config. Under systemd the records go to the journal natively; otherwise
    JSON lines go to `stream` (stderr). `[logging] file` adds a rotated JSON-lines file of
    `max_bytes` with `backups` old copies. Every handler carries the masking filter.
    """
    section = cfg.logging
    level = logging.DEBUG if verbose else getattr(logging, section.level)
    masking = MaskingFilter(getattr(cfg.patron, "card_pattern", None))
    root = logging.getLogger()
    for h in list(root.handlers):
        # Ours from an earlier call, or the plain stderr handler of logging.basicConfig.
        if getattr(h, _MARK, False) or type(h) is logging.StreamHandler:
            root.removeHandler(h)
            if getattr(h, _MARK, False):
                h.close()
    handlers: list[logging.Handler] = []
    use_journal = under_journald() if journal is None else journal
    if use_journal and journal_address and (journal or os.path.exists(journal_address)):
        handlers.append(
            JournaldHandler(journal_address, fields={"terminal": cfg.kiosk.terminal_id})
        )
    else:
        sh = logging.StreamHandler(stream or sys.stderr)
        sh.setFormatter(JsonFormatter())
        handlers.append(sh)
    if section.file:
        path = cfg.resolve_path(section.file)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fh = logging.handlers.RotatingFileHandler(
                path, maxBytes=section.max_bytes, backupCount=section.backups, encoding="utf-8"
            )
        except OSError as exc:
            raise LogSetupError(
                f"logging.file {path}: cannot open ({exc}); check the path and that the kiosk user may write there"
            ) from None
        fh.setFormatter(JsonFormatter())
        handlers.append(fh)
    install_record_masking(masking)
    for h in handlers:
        h.addFilter(masking)
        setattr(h, _MARK, True)
        root.addHandler(h)
    root.setLevel(level)
    # Kivy logs through the same root logger with KIVY_LOG_MODE=PYTHON; keep its chatter down.
    logging.getLogger("kivy").setLevel(max(level, logging.INFO))
    return handlers


def remove_handlers() -> None:
    """Take the kiosk's handlers off the root logger again (tests, and before re-configuring)."""
    global _original_factory
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, _MARK, False):
            root.removeHandler(h)
            h.close()
    if _original_factory is not None:
        logging.setLogRecordFactory(_original_factory)
        _original_factory = None


def rotate_directory(directory: str | os.PathLike[str], *, keep: int, pattern: str = "*") -> int:
    """Delete the oldest files matching `pattern` in `directory` beyond the newest `keep`; returns how many.

    For files the kiosk writes outside the logging system (receipt copies, exports).
    """
    d = Path(directory)
    if keep < 0 or not d.is_dir():
        return 0
    files = sorted(
        (p for p in d.glob(pattern) if p.is_file()), key=lambda p: p.stat().st_mtime, reverse=True
    )
    removed = 0
    for old in files[keep:]:
        try:
            old.unlink()
            removed += 1
        except OSError:
            logging.getLogger(__name__).warning("cannot delete %s during rotation", old)
    return removed
