"""The simulated card reader the demo panel drives: present(card_number) posts it like a real card."""

from __future__ import annotations

import threading

from kiosk.devices.cards.base import CardError, CardSource


class SimCardSource(CardSource):
    """A card source with no hardware; `sim:` and `sim:<name>` share one instance per name."""

    def __init__(self, name: str = "default") -> None:
        super().__init__()
        self.name = name
        self.source = "sim:" if name == "default" else f"sim:{name}"
        self.presented: list[str] = []

    def present(self, card_number: str) -> None:
        card_number = card_number.strip()
        if not card_number:
            raise CardError("simulated card: an empty card number cannot be presented")
        self.presented.append(card_number)
        self._post(card_number)


_SHARED: dict[str, SimCardSource] = {}
_LOCK = threading.Lock()


def get_shared_card_source(name: str = "default") -> SimCardSource:
    with _LOCK:
        src = _SHARED.get(name or "default")
        if src is None:
            src = _SHARED[name or "default"] = SimCardSource(name or "default")
        return src
