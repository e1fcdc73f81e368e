"""A small, scriptable, deliberately misbehaving SIP2 ACS for fault tests.

pysip2 is strict and well-behaved; real ACSs are not. Each test gives FakeAcs a script,
`script(conn, frame) -> None`, called for every frame the SC sends; the script answers with
`conn.reply(...)`/`conn.send(...)`, closes the connection, or stays silent (a stall).
`FakeAcs.answer(request)` builds a plausible valid answer a script can send or corrupt.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from kiosk.config import Sip2Section
from kiosk.sync.sip2.codec import Message, decode, encode, message

D = "20261125    101500"
BX_ALL = "YYYYYYYYYYYYYYYY"


class FakeConnection:
    """One accepted connection, as seen by a script."""

    def __init__(self, acs: FakeAcs, sock: socket.socket, index: int) -> None:
        self.acs = acs
        self.sock = sock
        self.index = index
        self.state: dict[str, Any] = {}
        self.closed = False

    def send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError:
            self.closed = True

    def reply(
        self,
        msg: Message,
        request: Message | None = None,
        *,
        checksum: bool = True,
        terminator: str = "\r",
        sequence: int | None = None,
    ) -> bytes:
        """Send `msg` with the request's sequence number (or `sequence`); returns the bytes sent."""
        seq = (
            sequence
            if sequence is not None
            else (request.sequence if request is not None else None)
        )
        data = encode(
            msg,
            sequence=seq,
            error_detection=checksum,
            terminator=terminator,
            encoding=self.acs.encoding,
        )
        self.send(data)
        return data

    def close(self) -> None:
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


Script = Callable[[FakeConnection, bytes], None]


class FakeAcs:
    """A threaded TCP server on 127.0.0.1 with an ephemeral port."""

    def __init__(
        self,
        script: Script | None = None,
        *,
        encoding: str = "utf-8",
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.script: Script = script or self.default_script
        self.tls = tls
        self.encoding = encoding
        self.received: list[tuple[int, bytes]] = []  # (connection index, frame without CR)
        self.connections: list[FakeConnection] = []
        self._cond = threading.Condition()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.host = "127.0.0.1"
        self.port = self._server.getsockname()[1]
        self._stopping = False
        self._thread = threading.Thread(target=self._accept_loop, name="fake-acs", daemon=True)
        self._thread.start()

    def settings(self, **overrides: Any) -> Sip2Section:
        base = Sip2Section(
            host=self.host,
            port=self.port,
            username="kiosk",
            password="demo",
            institution_id="DEMO",
            encoding=self.encoding,
            error_detection="on",
            timeout_s=0.5,
            retries=2,
        )
        import dataclasses

        return dataclasses.replace(base, **overrides)

    # --- serving ----------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stopping:
            try:
                sock, _ = self._server.accept()
            except OSError:
                return
            with self._cond:
                conn = FakeConnection(self, sock, len(self.connections))
                self.connections.append(conn)
                self._cond.notify_all()
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: FakeConnection) -> None:
        if self.tls is not None:
            try:
                conn.sock = self.tls.wrap_socket(conn.sock, server_side=True)
            except (OSError, ssl.SSLError):
                conn.closed = True
                return
        buf = bytearray()
        while not conn.closed:
            try:
                data = conn.sock.recv(65536)
            except OSError:
                break
            if not data:
                break
            buf += data
            while b"\r" in buf:
                i = buf.index(b"\r")
                frame = bytes(buf[:i]).lstrip(b"\n")
                del buf[: i + 1]
                with self._cond:
                    self.received.append((conn.index, frame))
                    self._cond.notify_all()
                self.script(conn, frame)
                if conn.closed:
                    return
        with self._cond:
            conn.closed = True  # the SC closed (or reset) the connection; wake up wait_for
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        with self._cond:
            return self._cond.wait_for(predicate, timeout)

    def frames(self, command: str | None = None) -> list[bytes]:
        with self._cond:
            return [f for _, f in self.received if command is None or f[:2] == command.encode()]

    def close(self) -> None:
        self._stopping = True
        self._server.close()
        for conn in list(self.connections):
            if not conn.closed:
                conn.close()

    # --- a plausible ACS ---------------------------------------------------------------------

    @staticmethod
    def answer(req: Message) -> Message | None:
        """A valid answer to the common requests; None for others."""
        now = datetime.now().strftime("%Y%m%d    %H%M%S")
        c = req.command
        if c == "93":
            return message("94", ok="1")
        if c == "99":
            return message(
                "98",
                online_status="Y",
                checkin_ok="Y",
                checkout_ok="Y",
                acs_renewal_policy="Y",
                status_update_ok="N",
                offline_ok="Y",
                timeout_period="050",
                retries_allowed="003",
                date_time_sync=now,
                protocol_version="2.00",
                fields=[("AO", "DEMO"), ("AM", "Fake bibliotēka"), ("BX", BX_ALL)],
            )
        if c == "17":
            return message(
                "18",
                circulation_status="03",
                security_marker="01",
                fee_type="01",
                transaction_date=now,
                fields=[("AB", req.get("AB")), ("AJ", "Zaļā grāmata")],
            )
        if c == "11":
            return message(
                "12",
                ok="1",
                renewal_ok="N",
                magnetic_media="N",
                desensitize="Y",
                transaction_date=now,
                fields=[
                    ("AO", "DEMO"),
                    ("AA", req.get("AA")),
                    ("AB", req.get("AB")),
                    ("AJ", "Zaļā grāmata"),
                    ("AH", D),
                ],
            )
        if c == "09":
            return message(
                "10",
                ok="1",
                resensitize="Y",
                magnetic_media="N",
                alert="N",
                transaction_date=now,
                fields=[("AO", "DEMO"), ("AB", req.get("AB")), ("AQ", "Pieaugušo nodaļa")],
            )
        if c == "63":
            return message(
                "64",
                patron_status=" " * 14,
                language="000",
                transaction_date=now,
                hold_items_count="0000",
                overdue_items_count="0000",
                charged_items_count="0000",
                fine_items_count="0000",
                recall_items_count="0000",
                unavailable_holds_count="0000",
                fields=[("AO", "DEMO"), ("AA", req.get("AA")), ("AE", "Anna Bērziņa"), ("BL", "Y")],
            )
        return None

    def default_script(self, conn: FakeConnection, frame: bytes) -> None:
        req = decode(frame, encoding=self.encoding)
        if req.command == "97":
            last = conn.state.get("last")
            conn.send(last if last else b"96AZFEF6\r")
            return
        ans = self.answer(req)
        if ans is not None:
            conn.state["last"] = conn.reply(ans, req, checksum=req.checksum is not None)
