"""Serial barcode scanners (RS-232 or USB CDC): CR/LF-terminated lines read in a background thread."""

from __future__ import annotations

import logging

import serial

from kiosk.devices.cards.base import CardCallback, CardError, ThreadedCardSource

log = logging.getLogger(__name__)

MAX_LINE = 64  # longer than any card or item barcode: a wrong baud rate or a stuck device


def split_lines(buffer: bytearray) -> list[bytes]:
    """Complete CR- or LF-terminated lines taken out of `buffer` (CRLF counts once, empty lines are dropped)."""
    lines: list[bytes] = []
    while True:
        ends = [p for p in (buffer.find(b"\r"), buffer.find(b"\n")) if p >= 0]
        if not ends:
            return lines
        end = min(ends)
        line = bytes(buffer[:end])
        del buffer[: end + 1]
        if line:
            lines.append(line)


def decode_line(line: bytes) -> str | None:
    """The scanned text, or None (logged) for bytes a barcode cannot be: a wrong baud rate."""
    try:
        text = line.decode("ascii").strip()
    except UnicodeDecodeError:
        log.warning(
            "barcode scanner sent non-ASCII bytes %s; check its baud rate", line[:16].hex(" ")
        )
        return None
    if not text.isprintable():
        log.warning(
            "barcode scanner sent control characters; check its configuration (suffix CR or LF)"
        )
        return None
    return text or None


class SerialScanner(ThreadedCardSource):
    """A barcode scanner on `url` (any pyserial URL: /dev/ttyACM0, socket://, loop://)."""

    thread_name = "serial-scanner"
    join_s = 2.0

    def __init__(self, url: str, *, baudrate: int = 9600, reopen_s: float = 1.0) -> None:
        super().__init__()
        self.url = url
        self.source = f"serial:{url}"
        self.baudrate = baudrate
        self.reopen_s = reopen_s
        self._port: serial.SerialBase | None = None

    def _open(self) -> serial.SerialBase:
        try:
            return serial.serial_for_url(self.url, baudrate=self.baudrate, timeout=0.1)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise CardError(
                f"barcode scanner {self.url}: cannot open ({exc}); check the cable and the dialout group"
            ) from exc

    def start(self, on_card: CardCallback) -> None:
        super().start(on_card)
        self._port = self._open()
        self._start_thread()

    def _run(self) -> None:
        buf = bytearray()
        while not self._stop.is_set():
            port = self._port
            try:
                if port is None:
                    port = self._port = self._open()
                data = port.read(256)
            except (CardError, serial.SerialException, OSError) as exc:
                self.error = str(exc)
                log.warning("barcode scanner %s: %s; retrying", self.url, exc)
                if self._port is not None:
                    self._port.close()
                self._port = None
                self._stop.wait(self.reopen_s)
                continue
            if not data:
                continue
            buf += data
            for line in split_lines(buf):
                text = decode_line(line)
                if text:
                    self._post(text)
            if len(buf) > MAX_LINE:
                log.warning(
                    "barcode scanner %s: %d bytes without CR/LF dropped; set the scanner's suffix to CR",
                    self.url,
                    len(buf),
                )
                buf.clear()

    def stop(self) -> None:
        self._stop_thread()
        if self._port is not None:
            self._port.close()
            self._port = None
        super().stop()
