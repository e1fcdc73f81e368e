"""Contactless patron cards on a PC/SC reader (ACR1281, ACR122U, OMNIKEY …): the card's UID from
FF CA 00 00 00, or a data block from FF B0, mapped to the library card number by the card rule."""

from __future__ import annotations

import logging

from kiosk.devices.cards.base import (
    CardCallback,
    CardError,
    CardRule,
    ThreadedCardSource,
    mask,
)
from kiosk.devices.errors import DeviceError
from kiosk.devices.readers.pcsc import CardConnection, PcscContext, uid_from_pcsc

log = logging.getLogger(__name__)


class PcscCardSource(ThreadedCardSource):
    """Posts one CardPresented per card placed on the reader whose name contains `name`."""

    thread_name = "pcsc-cards"

    def __init__(
        self,
        name: str,
        rule: CardRule,
        *,
        block_size: int = 4,
        wait_ms: int = 200,
        retry_s: float = 1.0,
    ) -> None:
        super().__init__()
        self.name = name
        self.rule = rule
        self.block_size = block_size
        self.source = f"pcsc:{name}"
        self.wait_ms = wait_ms
        self.retry_s = retry_s
        self.ctx = PcscContext()

    def read_card(self, reader: str, atr: bytes) -> str | None:
        """The card number of the card on `reader` now, or None (not enrolled, empty block)."""
        conn = CardConnection(self.ctx, reader)
        try:
            uid = uid_from_pcsc(conn.uid(), atr)
            block = None
            if self.rule.needs_block:
                block, sw = conn.transmit(
                    bytes([0xFF, 0xB0, 0x00, self.rule.block, self.block_size])
                )
                if sw != 0x9000:
                    raise CardError(
                        f"PC/SC reader {self.name}: reading block {self.rule.block} of the card failed (SW {sw:04X}); check patron.card_rule"
                    )
            number = self.rule.card_number(uid, block)
            if number is None:
                log.info("card %s on %s is not enrolled", mask(uid.hex().upper()), reader)
            return number
        finally:
            conn.close()

    def start(self, on_card: CardCallback) -> None:
        super().start(on_card)
        self._start_thread()

    def _run(self) -> None:
        from smartcard import scard  # lazy: pyscard is optional

        reader: str | None = None
        state = scard.SCARD_STATE_UNAWARE
        while not self._stop.is_set():
            try:
                if reader is None:
                    reader = self.ctx.find_reader(self.name)
                    state = scard.SCARD_STATE_UNAWARE
                new_state, atr = self.ctx.wait_for_change(reader, state, self.wait_ms)
                if new_state == state:
                    continue
                was_present = bool(state & scard.SCARD_STATE_PRESENT)
                state = new_state
                if state & scard.SCARD_STATE_PRESENT and not was_present:
                    number = self.read_card(reader, atr)
                    if number:
                        self._post(number)
                self.error = ""
            except DeviceError as exc:
                self.error = str(exc)
                log.warning("PC/SC card source %s: %s", self.name, exc)
                reader = None
                self._stop.wait(self.retry_s)

    def stop(self) -> None:
        self._stop_thread()
        self.ctx.reset()
        super().stop()
