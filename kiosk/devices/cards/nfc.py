"""Contactless patron cards through nfcpy (PN53x, RC-S380; `udp:` for tests): the UID of an
ISO 14443 card or the IDm of a FeliCa card, mapped by the card rule. nfcpy cannot read ISO 15693."""

from __future__ import annotations

import logging
from typing import Any

from kiosk.devices.cards.base import CardCallback, CardError, CardRule, ThreadedCardSource

log = logging.getLogger(__name__)

TARGETS = ("106A", "106B", "212F")


class NfcCardSource(ThreadedCardSource):
    """Posts one CardPresented per card touched to the nfcpy device at `path` (usb, tty:AMA0:pn532, udp:host:port)."""

    thread_name = "nfc-cards"

    def __init__(
        self, path: str, rule: CardRule, *, targets: tuple[str, ...] = TARGETS, retry_s: float = 1.0
    ) -> None:
        super().__init__()
        if rule.needs_block:
            raise CardError(
                "patron.card_rule block:… is not available with nfc: card sources; use uid, uid-decimal, uid-reversed or map:"
            )
        self.path = path
        self.rule = rule
        self.targets = targets
        self.source = f"nfc:{path}"
        self.retry_s = retry_s

    def card_number(self, tag: Any) -> str | None:
        uid = bytes(getattr(tag, "identifier", b"") or b"")
        if not uid:
            log.warning("nfc card without an identifier (%s)", getattr(tag, "type", "?"))
            return None
        return self.rule.card_number(uid)

    def _on_connect(self, tag: Any) -> bool:
        number = self.card_number(tag)
        if number:
            self._post(number)
        return True  # hold the card until it is removed, so one touch is one event

    def start(self, on_card: CardCallback) -> None:
        super().start(on_card)
        try:
            import nfc  # noqa: F401  # lazy: nfcpy is optional
        except ImportError as exc:
            raise CardError(
                "nfcpy is not installed; install the kiosk with the [nfc] extra"
            ) from exc
        self._start_thread()

    def _run(self) -> None:
        import nfc  # lazy: nfcpy is optional

        while not self._stop.is_set():
            try:
                with nfc.ContactlessFrontend(self.path) as clf:
                    self.error = ""
                    while not self._stop.is_set():
                        clf.connect(
                            rdwr={
                                "targets": list(self.targets),
                                "on-connect": self._on_connect,
                                "interval": 0.1,
                                "iterations": 5,
                            },
                            terminate=self._stop.is_set,
                        )
            except OSError as exc:
                self.error = f"nfc device {self.path} not available ({exc}); check the USB cable or the kernel pn533 driver"
                log.warning(self.error)
                self._stop.wait(self.retry_s)
            except Exception as exc:
                # A device driver boundary: nfcpy raises many kinds from its drivers; retried.
                self.error = f"nfc device {self.path}: {exc}"
                log.warning(self.error, exc_info=exc)
                self._stop.wait(self.retry_s)
