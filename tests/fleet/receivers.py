"""Peers that receive alerts in the fleet tests: a webhook receiver and an SMTP sink, on loopback."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class WebhookReceiver:
    """An HTTP server that records every JSON body POSTed to it; stop() and start() on the same port."""

    def __init__(self, port: int = 0) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.port = port
        self.received = threading.Event()
        self.server: ThreadingHTTPServer | None = None
        self.start()

    def start(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length") or 0)
                owner.bodies.append(
                    {
                        "auth": self.headers.get("Authorization", ""),
                        **json.loads(self.rfile.read(length)),
                    }
                )
                owner.received.set()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


class SmtpSink:
    """aiosmtpd on loopback, keeping every message it accepts."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        from tests.fleet.procs import free_port

        self.messages: list[Any] = []
        self.received = threading.Event()
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
                from email import message_from_bytes
                from email.policy import default

                sink.messages.append(
                    (envelope.rcpt_tos, message_from_bytes(envelope.content, policy=default))
                )
                sink.received.set()
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(
            Handler(), hostname="127.0.0.1", port=self.port, ready_timeout=10
        )
        self.controller.start()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.controller.stop()
