"""Patron identification sources: the CardPresented event, the CardSource interface, the card
rule that maps a contactless card's UID (or a data block) to the library card number. Telling a
patron card number from an item id is kiosk.core.identifiers.classify()."""

from __future__ import annotations

import csv
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from kiosk import demo_catalog
from kiosk.core.errors import log_fault
from kiosk.core.events import CardPresented  # the core's event; card sources post it as is
from kiosk.devices.errors import DeviceError

log = logging.getLogger(__name__)


class CardError(DeviceError):
    """A patron card source is misconfigured, missing, or delivered something unusable."""


CardCallback = Callable[[CardPresented], None]


def mask(card_number: str) -> str:
    """A card number for logs and screens: only the last four characters shown."""
    if len(card_number) <= 4:
        return "*" * len(card_number)
    return "*" * (len(card_number) - 4) + card_number[-4:]


class CardSource:
    """Something patrons identify with; posts CardPresented through the callback given to start()."""

    source: str = ""

    def __init__(self) -> None:
        self._callback: CardCallback | None = None

    def start(self, on_card: CardCallback) -> None:
        self._callback = on_card

    def stop(self) -> None:
        self._callback = None

    def _post(self, card_number: str) -> None:
        callback = self._callback
        log.info("card %s presented at %s", mask(card_number), self.source)
        if callback is not None:
            try:
                callback(CardPresented(card_number, self.source))
            except Exception as exc:  # a listener bug must not stop the reader thread
                log_fault(log, exc, "card listener failed")


class ThreadedCardSource(CardSource):
    """A card source that watches its device from a daemon thread (`_run`) until stop()."""

    thread_name = "cards"
    join_s = 3.0  # how long stop() waits for the thread before leaving it to die with the process

    def __init__(self) -> None:
        super().__init__()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error = ""

    def _run(self) -> None:
        raise NotImplementedError

    def _start_thread(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def _stop_thread(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.join_s)
            self._thread = None

    def stop(self) -> None:
        self._stop_thread()
        super().stop()


# -- card rules -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CardRule:
    """How a contactless card becomes a library card number (`[patron] card_rule`).

    uid            UID hex, upper case, MSB first
    uid-decimal    the UID read as one big-endian number, in decimal
    uid-reversed   UID bytes reversed (some systems enrolled cards LSB first), hex upper case
    block:<n>:<ascii|bcd>   data block n of the card, as ASCII text or BCD digits
    map:<csv>      a file of `uid,card` rows (UID in any of the above hex forms)
    demo           the demo catalogue's card UIDs (kiosk/demo_catalog.py)
    """

    kind: Literal["uid", "uid-decimal", "uid-reversed", "block", "map", "demo"]
    block: int = 0
    encoding: str = "ascii"
    table: tuple[tuple[str, str], ...] = ()

    @property
    def needs_block(self) -> bool:
        return self.kind == "block"

    def card_number(self, uid: bytes, block_data: bytes | None = None) -> str | None:
        """The card number, or None when the card is not enrolled (map) or its block is empty."""
        hexuid = uid.hex().upper()
        if self.kind == "uid":
            return hexuid
        if self.kind == "uid-decimal":
            return str(int.from_bytes(uid, "big"))
        if self.kind == "uid-reversed":
            return uid[::-1].hex().upper()
        if self.kind in ("map", "demo"):
            table = dict(self.table)
            return table.get(hexuid) or table.get(uid[::-1].hex().upper())
        if block_data is None:
            raise CardError(
                f"card rule block:{self.block} needs the card's data block; this card source cannot read blocks"
            )
        return decode_block(block_data, self.encoding)


def decode_block(data: bytes, encoding: str) -> str | None:
    if encoding == "bcd":
        digits: list[str] = []
        for b in data:
            for nibble in (b >> 4, b & 0x0F):
                if nibble > 9:  # 0xF pads an odd count; anything else ends the number
                    return "".join(digits) or None
                digits.append(str(nibble))
        return "".join(digits) or None
    try:
        text = data.split(b"\x00", 1)[0].decode("ascii").strip()
    except UnicodeDecodeError:
        raise CardError(
            "the card's data block is not ASCII text; check the card_rule block number and encoding"
        ) from None
    if not text:
        return None
    if not text.isprintable():
        raise CardError(
            "the card's data block holds unprintable characters; check the card_rule block number"
        )
    return text


_UID_RULES: dict[str, Literal["uid", "uid-decimal", "uid-reversed"]] = {
    "uid": "uid",
    "uid-decimal": "uid-decimal",
    "uid-reversed": "uid-reversed",
}


def parse_card_rule(rule: str, *, base_dir: Path | None = None) -> CardRule:
    """A CardRule from the config string; CardError (naming the setting) when it is not one."""
    rule = rule.strip()
    uid_kind = _UID_RULES.get(rule)
    if uid_kind is not None:
        return CardRule(kind=uid_kind)
    if rule == "demo":
        return CardRule(
            kind="demo",
            table=tuple(
                (p.card_uid.upper(), p.patron_id) for p in demo_catalog.PATRONS if p.card_uid
            ),
        )
    if rule.startswith("block:"):
        parts = rule.split(":")
        if len(parts) != 3 or not parts[1].isdigit() or parts[2] not in ("ascii", "bcd"):
            raise CardError(
                f"patron.card_rule {rule!r}: expected block:<number>:<ascii|bcd>, e.g. block:4:ascii"
            )
        return CardRule(kind="block", block=int(parts[1]), encoding=parts[2])
    if rule.startswith("map:"):
        path = Path(rule[4:]).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        return CardRule(kind="map", table=load_card_map(path))
    raise CardError(
        f"patron.card_rule {rule!r}: expected uid, uid-decimal, uid-reversed, block:<n>:<ascii|bcd>, map:<csv file> or demo"
    )


def load_card_map(path: Path) -> tuple[tuple[str, str], ...]:
    """Rows `uid,card` (a header row and blank or #-comment lines are skipped)."""
    try:
        text = path.read_text(encoding="utf-8")
        parsed = list(csv.reader(text.splitlines()))
    except OSError as exc:
        raise CardError(
            f"patron.card_rule map file {path} cannot be read ({exc.strerror})"
        ) from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise CardError(
            f"patron.card_rule map file {path} is not a UTF-8 CSV file ({exc})"
        ) from None
    rows = []
    for lineno, row in enumerate(parsed, start=1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if len(row) < 2:
            raise CardError(f"{path}:{lineno}: expected `uid,card number`, got {','.join(row)!r}")
        uid = re.sub(r"[\s:.-]", "", row[0]).upper()
        if lineno == 1 and not re.fullmatch(r"[0-9A-F]+", uid):
            continue  # header
        if not re.fullmatch(r"(?:[0-9A-F]{2})+", uid):
            raise CardError(f"{path}:{lineno}: {row[0]!r} is not a hexadecimal card UID")
        rows.append((uid, row[1].strip()))
    return tuple(rows)


# -- telling cards from items -----------------------------------------------------------------
