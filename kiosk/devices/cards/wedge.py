"""Keyboard-wedge barcode scanners: tells a scanner's burst of keystrokes ending in Enter from a
person typing, by the time between keys (the UI feeds it Kivy's keyboard events)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from kiosk.core.ports import Clock
from kiosk.devices.cards.base import CardSource, mask

log = logging.getLogger(__name__)

ENTER_KEYS = ("\r", "\n", "enter", "return", "numpadenter")


@dataclass(frozen=True)
class WedgeOutput:
    """What the keystrokes were: a scanned barcode, or typing to pass on to the focused widget."""

    kind: Literal["barcode", "typing", "enter"]
    text: str = ""


class WedgeCollector(CardSource):
    """Collects keystrokes; a run of at least `min_length` characters whose gaps are all shorter
    than `max_interkey_s`, ended by Enter, is a barcode. Anything slower is typing.

    Keys are held back only while they could still be a scan: feed() and poll() return typing as
    soon as a gap shows a human (poll() is called from the UI's clock tick)."""

    source = "wedge:"

    def __init__(
        self,
        clock: Clock,
        max_interkey_s: float = 0.05,
        min_length: int = 4,
        on_barcode: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__()
        self.clock = clock
        self.max_interkey_s = max_interkey_s
        self.min_length = min_length
        self.on_barcode = on_barcode
        self._held: list[str] = []
        self._last = 0.0

    def _flush_typing(self) -> list[WedgeOutput]:
        if not self._held:
            return []
        text, self._held = "".join(self._held), []
        return [WedgeOutput("typing", text)]

    def poll(self) -> list[WedgeOutput]:
        """Held keys that have waited longer than a scanner would, released as typing."""
        if self._held and self.clock.monotonic() - self._last > self.max_interkey_s:
            return self._flush_typing()
        return []

    def feed(self, key: str) -> list[WedgeOutput]:
        """One keystroke: a printable character, or Enter ("\\r", "\\n", "enter")."""
        now = self.clock.monotonic()
        out: list[WedgeOutput] = []
        gap = now - self._last
        self._last = now
        if self._held and gap > self.max_interkey_s:
            out += self._flush_typing()
        if key.lower() in ENTER_KEYS:
            if len(self._held) >= self.min_length and gap <= self.max_interkey_s:
                text, self._held = "".join(self._held), []
                out.append(WedgeOutput("barcode", text))
                log.debug("wedge barcode %s", mask(text))
                if self.on_barcode is not None:
                    self.on_barcode(text)
                self._post(text)
            else:
                out += self._flush_typing()
                out.append(WedgeOutput("enter"))
            return out
        if len(key) != 1 or not key.isprintable():
            return out + self._flush_typing()  # a function key ends any scan
        self._held.append(key)
        return out
