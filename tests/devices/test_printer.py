"""Receipt printer transports against local fakes: a folder, a TCP listener (net:), a pty (serial:),
with paper-out and offline reported as errors, never lost silently."""

from __future__ import annotations

import os
import socket
import threading
import tty
from pathlib import Path

import pytest

from kiosk.devices.escpos_transcript import decode
from kiosk.devices.printer import (
    PAPER_OUT_FLAG,
    EscposPrinter,
    NoPrinter,
    PaperOut,
    PrintDocument,
    PrinterError,
    PrinterOffline,
    PrinterStatus,
    PrintLine,
    encode_document,
    open_printer,
)

DOC = PrintDocument(
    (
        PrintLine("Demo bibliotēka", bold=True, align="center"),
        PrintLine("Война и мир"),
        PrintLine("Karte: **0001"),
    ),
    name="checkout",
)

ONLINE, OFFLINE = 0x12, 0x1A  # DLE EOT 1: bit 3 set = offline
PAPER_OK, PAPER_LOW, PAPER_OUT = 0x12, 0x1E, 0x72  # DLE EOT 4


class FakeStatusPrinter:
    """Answers DLE EOT 1 / DLE EOT 4 from a byte stream and keeps everything else as printed bytes."""

    def __init__(self, online: int = ONLINE, paper: int = PAPER_OK) -> None:
        self.online = online
        self.paper = paper
        self.printed = bytearray()
        self.queries = 0
        self._pending = bytearray()

    def feed(self, data: bytes) -> bytes:
        self._pending += data
        reply = bytearray()
        while True:
            at = self._pending.find(b"\x10\x04")
            if at < 0 or at + 2 >= len(self._pending):
                keep = (
                    self._pending[-2:]
                    if self._pending.endswith(b"\x10") or self._pending.endswith(b"\x10\x04")
                    else b""
                )
                self.printed += self._pending[: len(self._pending) - len(keep)]
                self._pending = bytearray(keep)
                return bytes(reply)
            self.printed += self._pending[:at]
            n = self._pending[at + 2]
            self._pending = self._pending[at + 3 :]
            self.queries += 1
            reply.append(self.online if n == 1 else self.paper)


@pytest.fixture
def tcp_printer():
    fake = FakeStatusPrinter()
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    server.settimeout(0.2)
    stop = threading.Event()
    done = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                while True:
                    try:
                        data = conn.recv(4096)
                    except OSError:
                        break
                    if not data:
                        break
                    reply = fake.feed(data)
                    if reply:
                        conn.sendall(reply)
            done.set()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield fake, server.getsockname()[1], done
    stop.set()
    thread.join(2)
    server.close()


def test_file_printer_writes_bytes_and_readable_transcript(tmp_path: Path) -> None:
    printer = open_printer("file:receipts", base=tmp_path)
    assert printer.status() is PrinterStatus.READY
    written = Path(printer.print_receipt(DOC))
    assert written.parent == tmp_path / "receipts"
    assert written.read_bytes() == encode_document(DOC)
    transcript = written.with_suffix(".txt").read_text(encoding="utf-8")
    assert "Demo bibliotēka" in transcript and "Война и мир" in transcript and "<cut>" in transcript
    second = Path(printer.print_receipt(DOC))
    assert second != written  # one file per receipt, never overwritten


def test_file_printer_paper_out_flag_raises_and_writes_nothing(tmp_path: Path) -> None:
    printer = open_printer(f"file:{tmp_path}")
    (tmp_path / PAPER_OUT_FLAG).touch()
    assert printer.status() is PrinterStatus.PAPER_OUT
    with pytest.raises(PaperOut, match="out of paper"):
        printer.print_receipt(DOC)
    assert not list(tmp_path.glob("*.bin"))


def test_file_printer_unwritable_folder_is_offline(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    printer = open_printer(f"file:{blocker}/receipts")
    assert printer.status() is PrinterStatus.OFFLINE
    with pytest.raises(PrinterOffline, match="not writable"):
        printer.print_receipt(DOC)


def test_net_printer_prints_after_status_checks(tcp_printer) -> None:
    fake, port, done = tcp_printer
    printer = open_printer(f"net:127.0.0.1:{port}")
    printer.print_receipt(DOC)
    assert done.wait(5)
    assert fake.queries == 4  # online + paper, before and after
    assert decode(bytes(fake.printed)).text.splitlines()[:2] == ["Demo bibliotēka", "Война и мир"]


def test_net_printer_paper_out_is_reported_before_printing(tcp_printer) -> None:
    fake, port, done = tcp_printer
    fake.paper = PAPER_OUT
    printer = open_printer(f"net:127.0.0.1:{port}")
    assert printer.status() is PrinterStatus.PAPER_OUT
    with pytest.raises(PaperOut):
        printer.print_receipt(DOC)
    assert done.wait(5)
    assert b"Demo" not in fake.printed


def test_net_printer_reporting_offline(tcp_printer) -> None:
    fake, port, _ = tcp_printer
    fake.online = OFFLINE
    printer = open_printer(f"net:127.0.0.1:{port}")
    with pytest.raises(PrinterOffline, match="offline"):
        printer.print_receipt(DOC)


def test_net_printer_not_listening_is_offline() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    printer = open_printer(f"net:127.0.0.1:{port}", timeout_s=1)
    assert printer.status() is PrinterStatus.OFFLINE
    with pytest.raises(PrinterOffline, match="not reachable"):
        printer.print_receipt(DOC)


def _pty_printer(fake: FakeStatusPrinter | None):
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data = os.read(master, 4096)
            except OSError:
                return
            if fake is not None:
                reply = fake.feed(data)
                if reply:
                    os.write(master, reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return master, slave, stop, thread


def test_serial_printer_over_pty_prints_and_detects_paper_end_after_printing() -> None:
    fake = FakeStatusPrinter()
    master, slave, stop, thread = _pty_printer(fake)
    try:
        printer = open_printer(f"serial:{os.ttyname(slave)}:19200", timeout_s=1)
        printer.print_receipt(DOC)
        assert fake.queries == 4
        assert "Война и мир" in decode(bytes(fake.printed)).text
        fake.paper = PAPER_OUT  # runs out: the next receipt is refused before printing
        before = len(fake.printed)
        with pytest.raises(PaperOut):
            printer.print_receipt(DOC)
        assert len(fake.printed) == before
    finally:
        stop.set()
        os.close(slave)
        os.close(master)
        thread.join(2)


def test_serial_printer_that_never_answers_is_offline() -> None:
    master, slave, stop, thread = _pty_printer(None)
    try:
        printer = open_printer(f"serial:{os.ttyname(slave)}", timeout_s=0.3)
        with pytest.raises(PrinterError):
            printer.print_receipt(DOC)
        assert printer.status() is PrinterStatus.OFFLINE
    finally:
        stop.set()
        os.close(slave)
        os.close(master)
        thread.join(2)


@pytest.mark.parametrize("url", ["usb:xyz", "net:", "net:host:port", "serial:", "lpt:1"])
def test_bad_urls_are_printer_errors(url: str) -> None:
    with pytest.raises(PrinterError, match="printer url"):
        open_printer(url)


def test_none_printer_reports_none_and_refuses() -> None:
    printer = open_printer("none")
    assert isinstance(printer, NoPrinter)
    assert printer.status() is PrinterStatus.NONE
    with pytest.raises(PrinterOffline):
        printer.print_receipt(DOC)


# -- unknown profiles and printers that fail ----------------------------------------------------


@pytest.mark.parametrize("profile", ["TM-T20", "tm-t88v", "TSP143III", ""])
def test_unknown_profile_is_refused_at_load_with_the_closest_names(profile: str) -> None:
    from kiosk.config import parse
    from kiosk.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        parse(f'[printer]\nprofile = "{profile}"\n')
    message = str(caught.value)
    assert "\n" not in message and "printer.profile" in message
    if profile == "TM-T20":
        assert "TM-T20II" in message and "TM-T20III" in message
    if profile == "tm-t88v":
        assert "did you mean TM-T88V" in message
    if profile == "TSP143III":
        assert "CUPS" in message and "not supported" in message
    with pytest.raises(PrinterError, match="printer profile"):
        open_printer("net:127.0.0.1:9100", profile)


def test_bad_codepage_override_is_refused_at_load() -> None:
    from kiosk.config import parse
    from kiosk.errors import ConfigError

    with pytest.raises(ConfigError, match="printer.codepage"):
        parse('[printer]\nprofile = "SRP-350III"\ncodepage = "26=CP9999"\n')
    assert parse(
        '[printer]\nprofile = "SRP-350III"\ncodepage = "26=CP1257, 17=CP866"\n'
    ).printer.codepage


def test_a_printer_whose_driver_fails_is_offline_never_an_exception(caplog) -> None:
    def broken() -> object:
        raise KeyError("TM-T20")  # what python-escpos raised for an unknown profile

    printer = EscposPrinter("net:10.0.0.50:9100", broken)
    assert printer.status() is PrinterStatus.OFFLINE
    with pytest.raises(PrinterOffline, match="not usable"):
        printer.print_receipt(DOC)
    assert any(record.exc_info for record in caplog.records)  # logged with its traceback


def test_doctor_printer_check_reports_instead_of_crashing() -> None:
    import dataclasses

    from kiosk.config import Config
    from kiosk.doctor import Status, _check_printer

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    cfg = Config()
    offline = dataclasses.replace(
        cfg, printer=dataclasses.replace(cfg.printer, url=f"net:127.0.0.1:{port}")
    )
    assert _check_printer(offline, 1.0).status is Status.FAIL
    # A config that slipped past the loader (built in code) still gives a check, not a traceback.
    unknown = dataclasses.replace(
        offline, printer=dataclasses.replace(offline.printer, profile="TM-T20")
    )
    check = _check_printer(unknown, 1.0)
    assert check.status is Status.FAIL and "TM-T20II" in check.detail


def test_width_beyond_the_paper_is_refused() -> None:
    from kiosk.config import parse
    from kiosk.errors import ConfigError

    with pytest.raises(ConfigError, match="printer.width: expected 0 .* or 16-42 columns"):
        parse('[printer]\nprofile = "TM-T88V"\nwidth = 48\n')
    assert parse('[printer]\nprofile = "TM-T20III"\nwidth = 48\n').printer.width == 48
    with pytest.raises(PrinterError, match="at most 42 columns"):
        open_printer("file:x", "TM-T88V", 48)


def test_file_printer_draws_raster_receipts_as_png(tmp_path: Path) -> None:
    from PIL import Image

    printer = open_printer(f"file:{tmp_path}", "SRP-350III")
    written = Path(printer.print_receipt(DOC))
    assert "<image " in written.with_suffix(".txt").read_text(encoding="utf-8")
    with Image.open(written.with_suffix(".png")) as image:
        assert image.getextrema()[0][0] == 0  # ink on the paper
    text_only = Path(open_printer(f"file:{tmp_path}", "TM-T88V").print_receipt(DOC))
    assert not text_only.with_suffix(".png").exists()


def test_barcode_is_the_item_id_or_text_never_an_altered_id() -> None:
    coded = decode(encode_document(PrintDocument((PrintLine("x"),), barcode="30000006"))).text
    assert "<barcode 30000006>" in coded
    lower = decode(encode_document(PrintDocument((PrintLine("x"),), barcode="abc-1"))).text
    assert "<barcode" not in lower and "abc-1" in lower
