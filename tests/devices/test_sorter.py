"""The return sorter: the simulated sorter's faults, and the line protocol over TCP and a pty
against a small threaded sorter controller that speaks it."""

from __future__ import annotations

import os
import select
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from kiosk.devices.errors import DeviceError
from kiosk.devices.sorter import LineSorter, NoSorter, SimulatedSorter, open_sorter

# Answers that come are waited for generously (a loaded test machine is slow); answers that
# never come are waited for briefly, so the silence tests stay fast.
TIMEOUT = 5.0
SHORT = 0.3
Handler = Callable[[str], "str | bytes | None"]
CLOSE = "<close>"


def standard(line: str) -> str | None:
    """A well-behaved controller: bins 0-9 exist."""
    if line == "STATUS":
        return "READY"
    parts = line.split(" ", 2)
    if len(parts) == 3 and parts[0] == "BIN" and parts[1].isdigit():
        return "OK" if int(parts[1]) < 10 else f"ERR no bin {parts[1]}"
    return "ERR bad request"


class LineController:
    """What both controllers share: each request line is recorded and ``handler`` answers it."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.lines: list[str] = []

    def _answers(self, buffer: bytearray) -> Iterator[bytes | str]:
        """The wire answer to each complete line in ``buffer`` (taken out of it), or CLOSE.

        A generator, so each line is recorded and answered only after the answer before it went out.
        """
        while (end := buffer.find(b"\n")) >= 0:
            line = bytes(buffer[:end]).decode().strip()
            del buffer[: end + 1]
            self.lines.append(line)
            answer = self.handler(line)
            if answer == CLOSE:
                yield CLOSE
                return
            if answer is not None:
                # bytes go out as they are; text gets the protocol's CR LF
                yield answer if isinstance(answer, bytes) else answer.encode() + b"\r\n"


class TcpController(LineController):
    """A sorter controller on loopback: records each request line and answers via ``handler``."""

    def __init__(self, handler: Handler = standard) -> None:
        super().__init__(handler)
        self.connections = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.1)
        self.port = self._server.getsockname()[1]
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(0.1)
        buffer = bytearray()
        with conn:
            while not self._stop.is_set():
                try:
                    chunk = conn.recv(256)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not chunk:
                    return
                buffer += chunk
                for answer in self._answers(buffer):
                    if answer == CLOSE:
                        return
                    try:
                        conn.sendall(answer)
                    except OSError:
                        return

    def close(self) -> None:
        self._stop.set()
        self._server.close()
        for thread in self._threads:
            thread.join(timeout=2)


class PtyController(LineController):
    """A sorter controller on the master side of a pseudo-terminal (real tty semantics)."""

    def __init__(self, handler: Handler = standard) -> None:
        super().__init__(handler)
        self.master, self._slave = os.openpty()
        self.path = os.ttyname(self._slave)
        self.sent = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        buffer = bytearray()
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self.master], [], [], 0.1)
                if not ready:
                    continue
                chunk = os.read(self.master, 256)
            except OSError:
                return
            buffer += chunk
            for answer in self._answers(buffer):
                if answer == CLOSE:
                    self.unplug()
                    return
                os.write(self.master, answer)
                self.sent.set()

    def unplug(self) -> None:
        """Close the master end, as when a USB-serial adapter disappears."""
        self._stop.set()
        for fd in (self.master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def close(self) -> None:
        self.unplug()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=2)


@pytest.fixture
def controller() -> Iterator[TcpController]:
    peer = TcpController()
    yield peer
    peer.close()


@pytest.fixture
def pty_controller() -> Iterator[PtyController]:
    peer = PtyController()
    yield peer
    peer.close()


# --- URLs -----------------------------------------------------------------------------------


def test_open_sorter_kinds() -> None:
    assert isinstance(open_sorter("none"), NoSorter)
    assert isinstance(open_sorter(""), NoSorter)
    assert isinstance(open_sorter("sim:"), SimulatedSorter)
    assert isinstance(open_sorter("tcp:127.0.0.1:9"), LineSorter)
    assert isinstance(open_sorter("serial:/dev/does-not-exist"), LineSorter)  # opened lazily


@pytest.mark.parametrize(
    "url",
    [
        "tcp:nohost",
        "tcp:host:port",
        "tcp:host:70000",
        "serial:",
        "ftp:x",
        "sim:?color=red",
        "sim:?jam_after=x",
        "serial:/dev/ttyS0?baud=fast",
    ],
)
def test_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(DeviceError):
        open_sorter(url)


def test_no_sorter_accepts_everything() -> None:
    sorter = open_sorter("none")
    assert sorter.route("30000001", 3) is True
    assert sorter.status() == "ready"


# --- simulated sorter -----------------------------------------------------------------------


def test_sim_records_items_per_bin() -> None:
    sorter = open_sorter("sim:")
    assert isinstance(sorter, SimulatedSorter)
    assert sorter.route("30000001", 1)
    assert sorter.route("30000002", 2)
    assert sorter.route("30000003", 1)
    assert sorter.bins == {1: ["30000001", "30000003"], 2: ["30000002"]}
    assert sorter.status() == "ready"
    assert sorter.status().ok


def test_sim_down_refuses_until_cleared() -> None:
    sorter = open_sorter("sim:?down=maintenance")
    assert sorter.route("30000001", 1) is False
    assert sorter.status() == "down: maintenance"
    assert not sorter.status().ok
    assert isinstance(sorter, SimulatedSorter)
    assert sorter.bins == {}
    sorter.clear_faults()
    assert sorter.route("30000001", 1) is True
    assert open_sorter("sim:?down").status() == "down: down"


def test_sim_jams_after_n_items() -> None:
    sorter = open_sorter("sim:?jam_after=2")
    assert [sorter.route(f"3000000{i}", 1) for i in range(4)] == [True, True, False, False]
    assert sorter.status() == "down: jammed after 2 items"
    assert isinstance(sorter, SimulatedSorter)
    assert sorter.bins == {1: ["30000000", "30000001"]}


def test_sim_delays_use_injected_sleep_and_time_out() -> None:
    slept: list[float] = []
    sorter = SimulatedSorter(delay_s=0.5, timeout_s=2.0, sleep=slept.append)
    assert sorter.route("30000001", 1) is True
    slow = SimulatedSorter(delay_s=5.0, timeout_s=2.0, sleep=slept.append)
    assert slow.route("30000002", 1) is False
    assert slept == [0.5, 2.0]
    assert slow.bins == {}


def test_sim_unknown_bin_and_bad_requests() -> None:
    sorter = open_sorter("sim:?bins=4")
    assert sorter.route("30000001", 3) is True
    assert sorter.route("30000001", 4) is False
    assert sorter.route("", 1) is False
    assert sorter.route("3000\r\n0001", 1) is False
    assert sorter.route("30000001", -1) is False
    assert sorter.route("30000001", "2") is False  # type: ignore[arg-type]


# --- line protocol over TCP ------------------------------------------------------------------


def test_tcp_routes_and_reports_status(controller: TcpController) -> None:
    sorter = open_sorter(f"tcp:127.0.0.1:{controller.port}", timeout_s=TIMEOUT)
    try:
        assert sorter.route("30000001", 3) is True
        assert sorter.route("Zaļā 7", 0) is True
        assert sorter.status() == "ready"
        assert controller.lines == ["BIN 3 30000001", "BIN 0 Zaļā 7", "STATUS"]
        assert controller.connections == 1  # one link kept open across requests
    finally:
        sorter.close()


def test_tcp_refusal_is_false(controller: TcpController) -> None:
    sorter = open_sorter(f"tcp:127.0.0.1:{controller.port}", timeout_s=TIMEOUT)
    try:
        assert sorter.route("30000001", 12) is False
        assert controller.lines == ["BIN 12 30000001"]
        assert sorter.route("30000001", 2) is True
    finally:
        sorter.close()


def test_tcp_silence_times_out_then_reconnects(controller: TcpController) -> None:
    release = threading.Event()

    def stall_first(line: str) -> str | None:
        if len(controller.lines) == 1:
            release.wait(5)
            return None
        return standard(line)

    controller.handler = stall_first
    sorter = open_sorter(f"tcp:127.0.0.1:{controller.port}", timeout_s=SHORT)
    try:
        assert sorter.route("30000001", 1) is False
        sorter.timeout_s = TIMEOUT  # type: ignore[attr-defined]
        assert controller.connections == 1
        release.set()
        assert sorter.status() == "ready"  # a fresh link after the timeout
        assert controller.connections == 2
        assert sorter.route("30000002", 1) is True
    finally:
        release.set()
        sorter.close()


def test_tcp_disconnect_mid_request_then_reconnects(controller: TcpController) -> None:
    def drop_first(line: str) -> str | None:
        return CLOSE if len(controller.lines) == 1 else standard(line)

    controller.handler = drop_first
    sorter = open_sorter(f"tcp:127.0.0.1:{controller.port}", timeout_s=TIMEOUT)
    try:
        assert sorter.route("30000001", 1) is False
        assert sorter.route("30000002", 1) is True
        assert controller.connections == 2
    finally:
        sorter.close()


def test_tcp_bare_cr_line_end_is_accepted(controller: TcpController) -> None:
    controller.handler = lambda line: b"OK\r"
    sorter = open_sorter(f"tcp:127.0.0.1:{controller.port}", timeout_s=TIMEOUT)
    try:
        assert sorter.route("30000001", 1) is True
        assert sorter.route("30000002", 1) is True
    finally:
        sorter.close()


@pytest.mark.parametrize(
    ("answer", "expected_status"),
    [
        ("HELLO", "unexpected answer"),
        (b"OK", "incomplete answer"),
        (b"\xff\xfe\r\n", "unexpected answer"),
    ],
)
def test_tcp_garbage_or_incomplete_answer(
    controller: TcpController, answer: str | bytes, expected_status: str
) -> None:
    controller.handler = lambda line: answer
    sorter = open_sorter(f"tcp:127.0.0.1:{controller.port}", timeout_s=SHORT)
    try:
        assert sorter.route("30000001", 1) is False
        assert expected_status in sorter.status()
    finally:
        sorter.close()


def test_tcp_sorter_down_and_unreachable(controller: TcpController) -> None:
    controller.handler = lambda line: (
        "DOWN belt stopped" if line == "STATUS" else "ERR belt stopped"
    )
    sorter = open_sorter(f"tcp:127.0.0.1:{controller.port}", timeout_s=TIMEOUT)
    assert sorter.status() == "down: belt stopped"
    assert sorter.route("30000001", 1) is False
    sorter.close()
    controller.close()
    gone = open_sorter(f"tcp:127.0.0.1:{controller.port}", timeout_s=TIMEOUT)
    assert gone.route("30000001", 1) is False
    status = gone.status()
    assert status.startswith("down: cannot open sorter link")
    assert not status.ok  # type: ignore[attr-defined]


def test_serial_socket_url_reaches_tcp_controller(controller: TcpController) -> None:
    sorter = open_sorter(f"serial:socket://127.0.0.1:{controller.port}", timeout_s=TIMEOUT)
    try:
        assert sorter.route("30000004", 4) is True
        assert controller.lines == ["BIN 4 30000004"]
    finally:
        sorter.close()


# --- line protocol over a pty ------------------------------------------------------------------


def test_pty_routes_and_refuses(pty_controller: PtyController) -> None:
    sorter = open_sorter(f"serial:{pty_controller.path}?baud=19200", timeout_s=TIMEOUT)
    try:
        assert sorter.route("30000005", 5) is True
        assert sorter.route("30000006", 50) is False
        assert sorter.status() == "ready"
        assert pty_controller.lines == ["BIN 5 30000005", "BIN 50 30000006", "STATUS"]
    finally:
        sorter.close()


def test_pty_silence_times_out(pty_controller: PtyController) -> None:
    pty_controller.handler = lambda line: None
    sorter = open_sorter(f"serial:{pty_controller.path}", timeout_s=SHORT)
    try:
        assert sorter.route("30000005", 5) is False
        assert pty_controller.lines == ["BIN 5 30000005"]
    finally:
        sorter.close()


def test_pty_late_answer_is_not_taken_for_the_next_item(pty_controller: PtyController) -> None:
    release = threading.Event()

    def late_first(line: str) -> str | None:
        if len(pty_controller.lines) == 1:
            release.wait(5)
            return "OK"
        return standard(line)

    pty_controller.handler = late_first
    sorter = open_sorter(f"serial:{pty_controller.path}", timeout_s=SHORT)
    try:
        assert sorter.route("30000005", 5) is False
        sorter.timeout_s = TIMEOUT  # type: ignore[attr-defined]
        release.set()
        assert pty_controller.sent.wait(5)  # the stale OK now sits in the line's input buffer
        assert sorter.route("30000006", 50) is False  # answered ERR, not the stale OK
        assert pty_controller.lines[-1] == "BIN 50 30000006"
    finally:
        release.set()
        sorter.close()


def test_pty_unplug_is_reported_not_raised(pty_controller: PtyController) -> None:
    sorter = open_sorter(f"serial:{pty_controller.path}", timeout_s=TIMEOUT)
    try:
        assert sorter.route("30000005", 5) is True
        pty_controller.unplug()
        assert sorter.route("30000006", 5) is False
        assert sorter.status().startswith("down:")
    finally:
        sorter.close()
