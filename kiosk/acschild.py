"""The embedded demo library system in a process of its own, as `kiosk run` starts it: the kiosk's
process then carries none of its SQLAlchemy models, database or server thread (a real site has no
demo library system at all), and its start runs beside the kiosk's on another core.

The child is `python -m kiosk.acschild`. It reads the kiosk's configuration and the port to take
(pickled, length-prefixed) on stdin, answers one line on stdout (`ready HOST PORT DATABASE_URL`,
or `error MESSAGE`) and then serves until its stdin ends: the kiosk closes it to stop the child,
and the kernel closes it when the kiosk dies, so a killed kiosk leaves no demo library system
behind.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING

from kiosk.errors import KioskError

if TYPE_CHECKING:
    from kiosk.config import Config

log = logging.getLogger(__name__)

_LENGTH = struct.Struct(">Q")


class AcsChild:
    """The demo library system running as `python -m kiosk.acschild`; `stop()` ends it."""

    def __init__(self, proc: subprocess.Popen[bytes], host: str, port: int, database_url: str):
        self.proc = proc
        self.host = host
        self.port = port
        self.database_url = database_url  # the demo database, for tools and benchmarks

    @property
    def pid(self) -> int:
        return self.proc.pid

    @classmethod
    def start(cls, cfg: Config, port: int, timeout_s: float = 60.0) -> AcsChild:
        """Start the child on `port` (0: a free one) and wait, at most `timeout_s`, until it
        listens. Raises AcsError with the child's own message when it cannot start."""
        # The child imports the kiosk from where this process did (a development tree may not be
        # the installed one).
        package_root = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_root, env.get("PYTHONPATH", "")) if p
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "kiosk.acschild"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        assert proc.stdin is not None and proc.stdout is not None
        try:
            payload = pickle.dumps((cfg, port))
            proc.stdin.write(_LENGTH.pack(len(payload)) + payload)
            proc.stdin.flush()
            line = _read_line(proc.stdout, timeout_s)
        except (OSError, TimeoutError) as exc:
            _end(proc)
            raise _start_error(f"{exc} (exit code {proc.returncode})") from None
        kind, _, rest = line.partition(" ")
        if kind != "ready":
            _end(proc)
            reason = rest if kind == "error" else f"it said {line!r}"
            raise _start_error(f"{reason} (exit code {proc.returncode})")
        host, port_text, database_url = rest.split(" ", 2)
        return cls(proc, host, int(port_text), database_url)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Close the child's stdin (it stops its server and exits); kill it after `timeout_s`."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:  # it has gone already
                pass
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("the demo library system did not stop within %.0f s; killed", timeout_s)
            _end(self.proc)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _start_error(reason: str) -> Exception:
    from kiosk.sync.acs.library import AcsError  # lazy: SQLAlchemy, only when the start failed

    return AcsError(f"the demo library system did not start: {reason}")


def _read_line(stream: IO[bytes], timeout_s: float) -> str:
    """One line from the child's stdout, or TimeoutError after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    data = b""
    fd = stream.fileno()
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no answer within {timeout_s:.0f} s")
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            raise OSError("it ended without a word")
        data += chunk
    return data.decode("utf-8", "replace").strip()


def _end(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            raise EOFError("the kiosk closed the pipe before the configuration was read")
        data += chunk
    return data


def _setup_logging(cfg: Config) -> None:
    """The kiosk's logging (journal or stderr), without its log file, which is the kiosk's own."""
    from kiosk.logsetup import setup_logging  # lazy: only in the child

    setup_logging(dataclasses.replace(cfg, logging=dataclasses.replace(cfg.logging, file="")))
    logging.getLogger().setLevel(logging.WARNING)
    logging.getLogger("kiosk").setLevel(logging.INFO)


def main() -> int:
    """The child: serve until stdin ends (or SIGTERM); Ctrl-C is the kiosk's to handle."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    answer = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # nothing else may reach the pipe nobody reads after the first line
    stdin = sys.stdin.buffer
    (size,) = _LENGTH.unpack(_read_exactly(stdin, _LENGTH.size))
    cfg, port = pickle.loads(_read_exactly(stdin, size))  # from the kiosk that started us
    _setup_logging(cfg)
    from kiosk.sync.acs.server import (  # lazy: SQLAlchemy and the server, only in the child
        build_from_config,
        database_url_for,
    )

    try:
        acs = build_from_config(cfg, port=port)
        database_url = database_url_for(cfg)
    except Exception as exc:
        # The child's last line: whatever stops the start is told to the kiosk, which raises it
        # as the demo library system's error; a bug also keeps its traceback in the log here.
        if not isinstance(exc, KioskError):
            log.exception("the demo library system could not start")
        answer.write(f"error {exc}\n".replace("\n", " ").rstrip() + "\n")
        answer.close()
        return 1
    answer.write(f"ready {acs.host} {acs.port} {database_url}\n")
    answer.close()
    try:
        while stdin.read(4096):  # the kiosk never writes more; the end of stdin is the stop
            pass
    finally:
        acs.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
