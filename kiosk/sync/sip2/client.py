"""The kiosk's SIP2 session to the ACS: connect, log in, status, and reliable request/response.

One Sip2Client owns one TCP (or TLS) connection. `request()` is thread-safe and implements the
spec's error-detection rules (`97` on a bad checksum, resend on `96`, discard replies with a
wrong sequence number), reconnecting with back-off when the link drops.

Exactly once: a request that changes something at the ACS (checkout, checkin, renewal, fee,
hold...) is re-sent after a timeout only where the site declared that its ACS honours the
duplicate rule (`sip2.duplicate_rule`) and the link carries AY/AZ; otherwise an unanswered one
is in doubt (Sip2LinkError with maybe_delivered) and the circulation layer reconciles it. An
answer is taken only for the request it belongs to: expected command, and the request's item
(AB) and patron (AA) where both carry them; anything else on the link is dropped and logged.

Deadline: every call (`request()`, `connect()`, `sc_status()`, or several under `call()` or a
`LinkLock`) ends within one overall budget, `call_budget_s` = timeout_s x (2 + retries), that
covers waiting for the link, reconnecting and every retry (docs/architecture.md). A changing
request is written only while a whole timeout_s is left for its answer; later it is not sent.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import logging
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from kiosk.clock import Drift
from kiosk.config import Sip2Section
from kiosk.core.ports import Clock, SystemClock
from kiosk.sync.sip2.codec import (
    FrameBuffer,
    Message,
    Sip2Error,
    Sip2FormatError,
    Sip2LinkError,
    decode,
    encode,
    message,
    parse_sip_date,
    sip_date,
)
from kiosk.sync.sip2.wirelog import mask

log = logging.getLogger(__name__)

SC_TO_ACS = "SC→ACS"
ACS_TO_SC = "ACS→SC"

# Request command → the response command that answers it.
RESPONSE_FOR = {
    "93": "94",
    "99": "98",
    "23": "24",
    "63": "64",
    "11": "12",
    "09": "10",
    "29": "30",
    "65": "66",
    "17": "18",
    "19": "20",
    "35": "36",
    "37": "38",
    "15": "16",
    "01": "24",
    "25": "26",
}

# Requests that change nothing at the ACS: safe to send again on a new connection. The others
# are only ever retransmitted byte-identically on the same connection, where the ACS
# recognises the duplicate (docs/protocols/sip2.md §3.2); after a reconnect they are in doubt.
READ_ONLY = frozenset({"93", "99", "23", "63", "17", "35"})

# BX positions (docs/protocols/sip2.md §6) → request command codes.
BX_COMMANDS = (
    "23",
    "11",
    "09",
    "01",
    "99",
    "97",
    "93",
    "63",
    "35",
    "37",
    "17",
    "19",
    "25",
    "15",
    "29",
    "65",
)

MAX_FRAME = 1 << 20
_BACKOFF_START_S = 1.0
_BACKOFF_MAX_S = 60.0


class Sip2LoginError(Sip2LinkError):
    """The ACS refused the `93` login: the user id, password or location code is wrong."""


class Sip2TlsError(Sip2LinkError):
    """The TCP connection opened but TLS did not: a plain port, or a certificate that does not match."""


class Sip2LinkBusy(Sip2LinkError):
    """The link stayed busy with another call until this call's deadline: nothing was sent."""


# Fields that tie an answer to its request: the item and the patron.
_MATCHED_FIELDS = ("AB", "AA")


@dataclass(frozen=True)
class AcsStatus:
    """What the ACS said about itself in its `98` status response."""

    online: bool
    checkin_ok: bool
    checkout_ok: bool
    renewal_ok: bool
    status_update_ok: bool
    offline_ok: bool
    timeout_s: float | None
    retries: int | None
    institution_id: str
    library_name: str
    terminal_location: str
    supported: frozenset[str]
    protocol_version: str
    screen_message: str
    # The library system's clock as its 98 said (None when blank or unreadable).
    date_time: datetime | None = None

    @classmethod
    def from_message(cls, msg: Message) -> AcsStatus:
        """Build from a decoded `98`; tolerant of blanks, `999` and short BX strings."""
        f = msg.fixed

        def yes(name: str) -> bool:
            return f.get(name, "") == "Y"

        timeout_raw = f.get("timeout_period", "")
        timeout_s = (
            int(timeout_raw) / 10
            if timeout_raw.isdigit() and timeout_raw not in ("000", "999")
            else None
        )
        retries_raw = f.get("retries_allowed", "")
        retries = int(retries_raw) if retries_raw.isdigit() and retries_raw != "999" else None
        bx = msg.get("BX").strip()
        supported = frozenset(
            code for code, flag in zip(BX_COMMANDS, bx, strict=False) if flag == "Y"
        )
        return cls(
            online=yes("online_status") and timeout_raw != "000",
            checkin_ok=yes("checkin_ok"),
            checkout_ok=yes("checkout_ok"),
            renewal_ok=yes("acs_renewal_policy"),
            status_update_ok=yes("status_update_ok"),
            offline_ok=yes("offline_ok"),
            timeout_s=timeout_s,
            retries=retries,
            institution_id=msg.get("AO"),
            library_name=msg.get("AM"),
            terminal_location=msg.get("AN"),
            supported=supported,
            protocol_version=f.get("protocol_version", "").strip(),
            screen_message=" ".join(v for v in msg.get_all("AF") if v),
            date_time=parse_sip_date(f.get("date_time_sync", "")),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "online": self.online,
            "checkin_ok": self.checkin_ok,
            "checkout_ok": self.checkout_ok,
            "renewal_ok": self.renewal_ok,
            "status_update_ok": self.status_update_ok,
            "offline_ok": self.offline_ok,
            "timeout_s": self.timeout_s,
            "retries": self.retries,
            "institution_id": self.institution_id,
            "library_name": self.library_name,
            "terminal_location": self.terminal_location,
            "supported": sorted(self.supported),
            "protocol_version": self.protocol_version,
            "screen_message": self.screen_message,
            "date_time": self.date_time.isoformat() if self.date_time else None,
        }


class _Timeout(Exception):
    pass


class _LinkDown(Exception):
    pass


class Sip2Link(Protocol):
    """What the circulation service uses of its SIP2 client: a Sip2Client, or a stand-in that
    answers requests itself (tests that script an ACS's replies)."""

    @property
    def acs_status(self) -> AcsStatus | None: ...

    @property
    def connected(self) -> bool: ...

    @property
    def clock_drift(self) -> Drift | None: ...

    def connect(self) -> AcsStatus | None: ...

    def request(self, msg: Message) -> Message: ...

    def keepalive_if_due(self) -> None: ...

    def close(self) -> None: ...


class Sip2Client:
    """A SIP2 session from the kiosk (SC) to the library system (ACS)."""

    def __init__(
        self,
        settings: Sip2Section,
        *,
        clock: Clock | None = None,
        connect_timeout_s: float | None = None,
    ) -> None:
        self._settings = settings
        self._clock: Clock = clock or SystemClock()
        self._connect_timeout = (
            connect_timeout_s if connect_timeout_s is not None else settings.timeout_s
        )
        self._encoding = settings.encoding
        self._delimiter = settings.field_delimiter
        self._terminator = "\r\n" if settings.line_terminator == "CRLF" else "\r"
        self._detection = settings.error_detection
        self._lock = threading.RLock()
        self._sock: socket.socket | None = None
        self._frames = FrameBuffer(MAX_FRAME)
        self._queued: collections.deque[bytes] = collections.deque()
        self._seq = 9  # the first message goes out with 0
        self._acs_status: AcsStatus | None = None
        self._drift: Drift | None = None
        self._last_activity = self._clock.monotonic()
        self._backoff_s = 0.0
        self._next_connect_at = float("-inf")
        # Whether the last valid answer carried AY/AZ ("auto" follows what the ACS does).
        self._trailer_seen = False
        self._calls = threading.local()  # .deadline: time.monotonic() by which this call ends
        self.exchanges: collections.deque[tuple[datetime, str, str]] = collections.deque(maxlen=200)

    # --- public API ----------------------------------------------------------------------

    @property
    def acs_status(self) -> AcsStatus | None:
        return self._acs_status

    @property
    def connected(self) -> bool:
        return self._sock is not None

    @property
    def call_budget_s(self) -> float:
        """The overall deadline of one call: one timeout for waiting for the link and
        reconnecting, then every attempt's wait, and nothing more."""
        return self._settings.timeout_s * (2 + self._settings.retries)

    @contextmanager
    def call(self, budget_s: float | None = None) -> Iterator[float]:
        """Run what follows in this thread as one call with one overall deadline (returned, in
        time.monotonic() terms): queueing for the link, reconnecting and retries all count. An
        enclosing call's deadline wins, so nested calls never extend it."""
        outer: float | None = getattr(self._calls, "deadline", None)
        if outer is not None:
            yield outer
            return
        deadline = time.monotonic() + (self.call_budget_s if budget_s is None else budget_s)
        self._calls.deadline = deadline
        try:
            yield deadline
        finally:
            self._calls.deadline = None

    def _remaining(self) -> float:
        deadline: float | None = getattr(self._calls, "deadline", None)
        return float("inf") if deadline is None else deadline - time.monotonic()

    @contextmanager
    def _link(self, command: str) -> Iterator[None]:
        """Hold the link for one call, waiting for it no longer than the call's deadline."""
        with self.call():
            if not _acquire(self._lock, self._remaining()):
                raise self._busy(command)
            try:
                yield
            finally:
                self._lock.release()

    def _busy(self, command: str) -> Sip2LinkBusy:
        s = self._settings
        return Sip2LinkBusy(
            f"SIP2 {command} not sent to the ACS at {s.host}:{s.port}: the link was busy with "
            f"another call until this call's deadline ({self.call_budget_s:g} s)",
            maybe_delivered=False,
        )

    def connect(self) -> AcsStatus:
        """Open the connection, log in (`93`) when a user name is configured, then `99` → `98`."""
        with self._link("93"):
            self._close_socket()
            try:
                self._open()
                s = self._settings
                if s.send_login and s.username:
                    fields = [("CN", s.username), ("CO", s.password)]
                    if s.location_code:
                        fields.append(("CP", s.location_code))
                    reply = self._exchange(
                        message("93", uid_algorithm="0", pwd_algorithm="0", fields=fields),
                        reconnect=False,
                    )
                    if reply.fixed.get("ok") != "1":
                        raise Sip2LoginError(
                            f"the ACS at {s.host}:{s.port} refused the login of user {s.username!r}; "
                            "check sip2.username, sip2.password and sip2.location_code"
                        )
                status = self._status(reconnect=False)
            except BaseException as exc:
                # A login or status that timed out leaves the socket open: a half-set-up session
                # must not look connected.
                self._close_socket()
                if isinstance(exc, Sip2LinkError):
                    self._note_failure()
                raise
            self._backoff_s = 0.0
            self._next_connect_at = float("-inf")
            return status

    def request(self, msg: Message) -> Message:
        """Send one request and return the ACS's answer.

        Raises Sip2LinkError (with `maybe_delivered`) when no valid answer came within the
        timeout and retry budget, and Sip2FormatError when `msg` cannot be encoded.
        """
        with self._link(msg.command):
            try:
                self._ensure_connected()
            except Sip2LinkError as exc:
                raise self._not_sent(msg, exc) from exc
            return self._exchange(msg, reconnect=True)

    def sc_status(self) -> AcsStatus:
        """`99` → `98`; also the keep-alive."""
        with self._link("99"):
            try:
                self._ensure_connected()
            except Sip2LinkError as exc:
                raise self._not_sent(message("99"), exc) from exc
            return self._status(reconnect=True)

    def probe_duplicate_rule(self, pause_s: float = 1.5) -> bool:
        """Whether the ACS honours the duplicate rule on this link, found out harmlessly.

        The same `99` frame goes out twice, `pause_s` apart (more than the one-second resolution
        of SIP2 dates). An ACS that replays its last answer sends the first answer again, date
        and all; one that executes the copy answers with a later date. False as well when the
        link carries no AY/AZ (no rule can work there) or the answer has no date to compare.
        Raises Sip2LinkError when the ACS cannot be asked.
        """
        with self.call(self.call_budget_s + pause_s), self._link("99"):
            self._ensure_connected()
            if self._detection == "off":
                return False
            self._drain_stale()
            req = message("99", status_code="0", max_print_width="048", protocol_version="2.00")
            frame = self._encode(req)
            seq = self._seq
            answers: list[Message] = []
            for attempt in range(2):
                if attempt:
                    threading.Event().wait(pause_s)
                try:
                    self._send(frame)
                    reply = self._receive("98", seq, req)
                except (_Timeout, _LinkDown) as exc:
                    self._close_socket()
                    raise Sip2LinkError(
                        self._give_up(req, f"duplicate rule probe: {exc or 'no answer'}"),
                        maybe_delivered=True,
                    ) from None
                if reply is None or reply.command != "98" or reply.checksum is None:
                    return False  # no AY/AZ in the answer: nothing to recognise a repeat by
                answers.append(reply)
            first, second = answers
            date = first.fixed.get("date_time_sync", "").strip()
            return bool(date) and first.fixed == second.fixed and first.fields == second.fields

    def keepalive_if_due(self) -> None:
        """Send a `99` when the link has been quiet for sip2.keepalive_s; reconnect when down and due."""
        with self._link("99"):
            now = self._clock.monotonic()
            if self._sock is None:
                if now >= self._next_connect_at:
                    self.connect()
                return
            if now - self._last_activity >= self._settings.keepalive_s:
                self._status(reconnect=True)

    def close(self) -> None:
        with self._lock:
            self._close_socket()

    # --- connection ----------------------------------------------------------------------

    def _ensure_connected(self) -> None:
        if self._sock is not None:
            return
        now = self._clock.monotonic()
        if now < self._next_connect_at:
            raise Sip2LinkError(
                f"the ACS at {self._settings.host}:{self._settings.port} is unreachable; "
                f"next attempt in {self._next_connect_at - now:.0f} s",
                maybe_delivered=False,
            )
        self.connect()

    def _note_failure(self) -> None:
        self._backoff_s = min(_BACKOFF_MAX_S, max(_BACKOFF_START_S, self._backoff_s * 2))
        self._next_connect_at = self._clock.monotonic() + self._backoff_s

    def _open(self) -> None:
        s = self._settings
        remaining = self._remaining()
        if remaining <= 0:
            raise Sip2LinkError(
                f"cannot connect to the ACS at {s.host}:{s.port}: the call's deadline has passed",
                maybe_delivered=False,
            )
        try:
            sock = socket.create_connection(
                (s.host, s.port), timeout=min(self._connect_timeout, remaining)
            )
        except OSError as exc:
            raise Sip2LinkError(
                f"cannot connect to the ACS at {s.host}:{s.port}: {exc}", maybe_delivered=False
            ) from None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if s.tls:
                sock = self._tls_context().wrap_socket(sock, server_hostname=s.host)
        except (OSError, ssl.SSLError) as exc:
            sock.close()
            raise Sip2TlsError(
                f"TLS handshake with the ACS at {s.host}:{s.port} failed: {exc}",
                maybe_delivered=False,
            ) from None
        self._sock = sock
        self._frames.clear()
        self._queued.clear()
        self._last_activity = self._clock.monotonic()
        log.info("connected to the ACS at %s:%s%s", s.host, s.port, " (TLS)" if s.tls else "")

    def _tls_context(self) -> ssl.SSLContext:
        s = self._settings
        ctx = ssl.create_default_context(cafile=s.tls_ca_file or None)
        if not s.tls_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if s.tls_client_cert:
            ctx.load_cert_chain(s.tls_client_cert)
        return ctx

    def _close_socket(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None
        self._frames.clear()
        self._queued.clear()

    def _reconnect(self) -> None:
        log.warning("reconnecting to the ACS at %s:%s", self._settings.host, self._settings.port)
        self.connect()

    # --- the exchange --------------------------------------------------------------------

    @property
    def _timeout_s(self) -> float:
        t = self._settings.timeout_s
        acs = self._acs_status.timeout_s if self._acs_status else None
        if acs is not None:
            # 98 timeouts in the wild range from 0.5 s to minutes: only let a sane one shorten ours.
            t = min(t, max(5.0, min(acs, 60.0)))
        return t

    @property
    def _retries(self) -> int:
        r = self._settings.retries
        acs = self._acs_status.retries if self._acs_status else None
        if acs is not None:
            r = min(r, acs)
        return r

    def _next_sequence(self) -> int:
        self._seq = (self._seq + 1) % 10
        return self._seq

    def _status(self, *, reconnect: bool) -> AcsStatus:
        req = message("99", status_code="0", max_print_width="048", protocol_version="2.00")
        reply = self._exchange(req, reconnect=reconnect)
        status = AcsStatus.from_message(reply)
        self._acs_status = status
        if status.date_time is not None:
            # Every status exchange compares the clocks (kiosk/clock.py): an offline loan's due
            # date is only as good as the kiosk's clock.
            drift = Drift.between(self._clock.now(), status.date_time)
            if drift.beyond() and (self._drift is None or not self._drift.beyond()):
                log.warning("the kiosk's clock is %s", drift.describe())
            self._drift = drift
        return status

    @property
    def clock_drift(self) -> Drift | None:
        """The kiosk's clock minus the library system's at the latest status exchange."""
        return self._drift

    def _encode(self, msg: Message) -> bytes:
        return encode(
            msg,
            encoding=self._encoding,
            sequence=self._next_sequence() if self._detection != "off" else None,
            error_detection=self._detection != "off",
            terminator=self._terminator,
            delimiter=self._delimiter,
        )

    def _exchange(self, msg: Message, *, reconnect: bool) -> Message:
        if reconnect:
            try:
                self._drain_stale()  # first: it may reconnect, which uses sequence numbers
            except Sip2LinkError as exc:
                raise self._not_sent(msg, exc) from exc
        expected = RESPONSE_FOR.get(msg.command)
        detect = self._detection != "off"
        control_97 = _request_resend(detect, self._terminator)
        frame = self._encode(msg)
        seq = self._seq if detect else None
        attempts_left = self._retries
        written = False
        outgoing = frame
        while True:
            if not written and msg.command not in READ_ONLY and self._remaining() < self._timeout_s:
                # Sent now, it could only end in doubt: better not sent at all.
                raise self._busy(msg.command)
            try:
                if self._remaining() <= 0:
                    raise _Timeout()
                self._send(outgoing)
                written = True
                reply = self._receive(expected, seq, msg)
            except _Timeout:
                retransmit = self._may_retransmit(msg)
                if attempts_left <= 0 or not retransmit or self._remaining() <= 0:
                    why = (
                        f"no answer within {self._timeout_s:g} s"
                        if self._remaining() > 0
                        else f"no answer within the call's deadline ({self.call_budget_s:g} s)"
                    )
                    if written and not retransmit:
                        # A late answer must not meet the next request on this link.
                        self._close_socket()
                        why += (
                            "; not re-sent (the ACS is not known to honour the SIP2 duplicate "
                            "rule, sip2.duplicate_rule), so the ACS may have applied it"
                        )
                    raise Sip2LinkError(self._give_up(msg, why), maybe_delivered=written) from None
                attempts_left -= 1
                outgoing = (
                    frame  # byte-identical: the ACS replays its answer instead of re-executing
                )
                continue
            except _LinkDown as exc:
                self._close_socket()
                self._restart(msg, f"connection lost ({exc})", written, reconnect, attempts_left)
                attempts_left -= 1
                frame, written = self._encode(msg), False
                outgoing = frame
                seq = self._seq if detect else None
                continue

            if reply is None:  # unreadable, or a checksum that does not verify
                if attempts_left <= 0:
                    raise Sip2LinkError(
                        self._give_up(msg, "every answer was garbled"), maybe_delivered=written
                    )
                attempts_left -= 1
                outgoing = control_97
                continue
            if reply.command == "96":
                if outgoing is control_97:
                    # The ACS could not read our 97 either: the link is broken (docs/protocols/sip2.md §3.2).
                    self._close_socket()
                    self._restart(
                        msg,
                        "the ACS answered our resend request with 96",
                        written,
                        reconnect,
                        attempts_left,
                    )
                    attempts_left -= 1
                    frame, written = self._encode(msg), False
                    outgoing = frame
                    seq = self._seq if detect else None
                    continue
                if attempts_left <= 0:
                    raise Sip2LinkError(
                        self._give_up(msg, "the ACS kept asking for a resend (96)"),
                        maybe_delivered=written,
                    )
                attempts_left -= 1
                outgoing = frame
                continue
            return reply

    def _may_retransmit(self, msg: Message) -> bool:
        """Whether `msg` may go out again byte-identically after a timeout on the same link.

        A read-only request may; a changing one only where the ACS honours the duplicate rule
        (declared for the site) and this link actually uses error detection: without AY/AZ the
        copy is executed again (a second renewal, a second checkout).
        """
        if msg.command in READ_ONLY:
            return True
        if not self._settings.duplicate_rule:
            return False
        return self._detection == "on" or (self._detection == "auto" and self._trailer_seen)

    def _restart(
        self, msg: Message, why: str, written: bool, reconnect: bool, attempts_left: int
    ) -> None:
        """After a broken link: reconnect and log in again; raise unless `msg` may safely be sent again."""
        in_doubt = written and msg.command not in READ_ONLY
        if reconnect:
            try:
                self._reconnect()
            except Sip2LinkError as exc:
                raise Sip2LinkError(
                    self._give_up(msg, f"{why}; reconnect failed: {exc}"), maybe_delivered=written
                ) from None
        if not reconnect or in_doubt or attempts_left <= 0 or self._remaining() <= 0:
            detail = "; the ACS may have applied it" if in_doubt else ""
            raise Sip2LinkError(self._give_up(msg, why + detail), maybe_delivered=written)

    def _not_sent(self, msg: Message, exc: Sip2LinkError) -> Sip2LinkError:
        """A link error from (re)connecting before `msg` was written, as the outcome of `msg`.

        The login (93) or status (99) of that reconnect may itself have gone out unanswered
        (maybe_delivered=True), but `msg` never left the kiosk: the ACS cannot have applied it.
        """
        if not exc.maybe_delivered:
            return exc
        s = self._settings
        return type(exc)(
            f"SIP2 {msg.command} not sent to the ACS at {s.host}:{s.port}: {exc}",
            maybe_delivered=False,
        )

    def _give_up(self, msg: Message, why: str) -> str:
        s = self._settings
        return f"no valid answer to SIP2 {msg.command} from the ACS at {s.host}:{s.port}: {why}"

    def _send(self, data: bytes) -> None:
        sock = self._sock
        if sock is None:
            raise _LinkDown("not connected")
        self._record(SC_TO_ACS, data)
        try:
            sock.settimeout(max(0.001, min(self._timeout_s, self._remaining())))
            sock.sendall(data)
        except TimeoutError:
            raise _LinkDown("send timed out") from None
        except OSError as exc:
            raise _LinkDown(str(exc)) from None
        self._last_activity = self._clock.monotonic()

    def _drain_stale(self) -> None:
        """Drop late answers to earlier requests, and notice a connection the ACS closed while idle."""
        sock = self._sock
        if sock is None:
            return
        self._queued.clear()
        try:
            sock.setblocking(False)
            while True:
                data = sock.recv(65536)
                if not data:
                    self._close_socket()
                    self._reconnect()
                    return
                for frame in self._frames.feed(data):
                    self._record(ACS_TO_SC, frame, note="(stale, dropped)")
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass  # nothing waiting: the usual case
        except Sip2FormatError:
            self._frames.clear()
        except OSError:
            self._close_socket()
            self._reconnect()
        finally:
            if self._sock is not None:
                self._sock.settimeout(self._timeout_s)

    def _read_frame(self, deadline: float) -> bytes:
        while not self._queued:
            sock = self._sock
            if sock is None:
                raise _LinkDown("not connected")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Timeout()
            sock.settimeout(remaining)
            try:
                data = sock.recv(65536)
            except TimeoutError:
                raise _Timeout() from None
            except OSError as exc:
                raise _LinkDown(str(exc)) from None
            if not data:
                raise _LinkDown("the ACS closed the connection")
            try:
                self._queued.extend(self._frames.feed(data))
            except Sip2FormatError as exc:
                raise _LinkDown(str(exc)) from None
        return self._queued.popleft()

    def _receive(
        self, expected: str | None, seq: int | None, request: Message | None = None
    ) -> Message | None:
        """The answer to the request just sent; None when it is garbled (caller sends 97)."""
        deadline = min(time.monotonic() + self._timeout_s, time.monotonic() + self._remaining())
        while True:
            frame = self._read_frame(deadline)
            self._last_activity = self._clock.monotonic()
            self._record(ACS_TO_SC, frame)
            try:
                reply = decode(frame, encoding=self._encoding, delimiter=self._delimiter)
            except Sip2FormatError as exc:
                log.warning("garbled answer from the ACS: %s", exc)
                return None
            if self._detection != "off":
                if reply.checksum_ok is False or (
                    self._detection == "on" and reply.checksum is None
                ):
                    log.warning("answer from the ACS fails its checksum; asking for a resend")
                    return None
                if reply.checksum_variant == "codepoints":
                    log.info("the ACS checksums code points, not bytes (tolerated)")
            if reply.command == "96":
                return reply
            if (
                self._detection != "off"
                and seq is not None
                and reply.sequence is not None
                and reply.sequence != seq
            ):
                log.info("dropping an answer with sequence %s (expected %s)", reply.sequence, seq)
                continue
            if expected is not None and reply.command != expected:
                log.info("dropping an unexpected %s (waiting for %s)", reply.command, expected)
                continue
            if request is not None and not _belongs(reply, request):
                log.warning(
                    "dropping an answer that belongs to another request (waiting for the answer "
                    "to %s): %s",
                    request.command,
                    mask(frame.decode(self._encoding, errors="replace").rstrip("\r\n")),
                )
                continue
            self._trailer_seen = reply.checksum is not None
            for note in reply.notes:
                log.debug("SIP2 %s: %s", reply.command, note)
            return reply

    def _record(self, direction: str, data: bytes, note: str = "") -> None:
        text = mask(data.decode(self._encoding, errors="replace").rstrip("\r\n"), self._delimiter)
        if note:
            text = f"{text} {note}"
        self.exchanges.append((self._clock.now(), direction, text))
        log.debug("%s %s", direction, text)


@functools.cache
def _request_resend(error_detection: bool, terminator: str) -> bytes:
    """The 97 frame (always the same for a link's settings: encoded once, not per request)."""
    return encode(message("97"), error_detection=error_detection, terminator=terminator)


def _belongs(reply: Message, request: Message) -> bool:
    """Whether an answer can be the one to `request`: same item (AB) and patron (AA) where both
    carry one (compared without case and surrounding blanks; a checkin's answer names who had
    the item in AA, but a checkin request carries no AA)."""
    for fid in _MATCHED_FIELDS:
        want = request.get(fid).strip().casefold()
        got = reply.get(fid).strip().casefold()
        if want and got and want != got:
            return False
    return True


def _acquire(lock: Any, remaining: float) -> bool:
    """Acquire `lock`, waiting at most `remaining` seconds (unbounded when infinite)."""
    if remaining == float("inf"):
        return bool(lock.acquire())
    return bool(lock.acquire(timeout=max(0.0, remaining)))


@dataclass(frozen=True)
class AcsProbe:
    """What one probe of the library system found: its 98 status, or why there was none."""

    status: AcsStatus | None
    error: str = ""
    exchanges: tuple[tuple[datetime, str, str], ...] = ()
    duplicate_rule_honoured: bool | None = None
    # Why there is no status, for callers that answer each kind in its own way: Sip2LoginError
    # (a configuration fault), another Sip2LinkError or OSError (unreachable), a Sip2Error.
    failure: Sip2Error | OSError | None = None
    drift: Drift | None = None  # the kiosk's clock against the date and time in the 98

    @property
    def ok(self) -> bool:
        return self.status is not None


def probe_acs(
    settings: Sip2Section,
    *,
    timeout_s: float | None = None,
    duplicate_rule: bool = False,
    clock: Clock | None = None,
) -> AcsProbe:
    """A fresh connection, login and status (and, asked for, the duplicate-rule probe), then
    close: the one SIP2 check behind `kiosk sip2 check`, the doctor and the maintenance screen.
    `timeout_s` caps the settings' timeout (not below 0.5 s) with no retries, for checks that
    must finish quickly; without it the site's own timeout and retries apply."""
    if timeout_s is not None:
        capped = max(0.5, min(settings.timeout_s, timeout_s))
        settings = dataclasses.replace(settings, timeout_s=capped, retries=0)
        client = Sip2Client(settings, clock=clock, connect_timeout_s=capped)
    else:
        client = Sip2Client(settings, clock=clock)
    honoured: bool | None = None
    try:
        status = client.connect()
        drift = client.clock_drift
        if duplicate_rule:
            honoured = client.probe_duplicate_rule()
    except (Sip2Error, OSError) as exc:
        return AcsProbe(None, str(exc), tuple(client.exchanges), failure=exc)
    finally:
        client.close()
    return AcsProbe(status, "", tuple(client.exchanges), honoured, drift=drift)


class LinkLock:
    """A reentrant lock for everything that uses one Sip2Client (the circulation service, its
    forwarder), with the client's overall call deadline: the outermost `with` starts a call
    (`Sip2Client.call()`), and waiting for the lock counts against it. Raises Sip2LinkBusy
    (maybe_delivered False: nothing was sent) when the lock stays held past the deadline."""

    def __init__(self, client: Sip2Client) -> None:
        self._client = client
        self._lock = threading.RLock()
        self._calls = threading.local()

    def __enter__(self) -> LinkLock:
        call = self._client.call()
        call.__enter__()
        try:
            if not _acquire(self._lock, self._client._remaining()):
                raise self._client._busy("request")
        except BaseException:
            # The call's deadline ends with the failed wait; the fault goes on unchanged.
            call.__exit__(None, None, None)
            raise
        stack: list[Any] = getattr(self._calls, "stack", None) or []
        stack.append(call)
        self._calls.stack = stack
        return self

    def __exit__(self, *exc: object) -> None:
        call = self._calls.stack.pop()
        self._lock.release()
        call.__exit__(None, None, None)

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Plain lock acquisition (no deadline), for code written against threading.RLock."""
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        self._lock.release()


def link_lock(client: Any) -> LinkLock | threading.RLock:
    """The lock to share around `client`: a LinkLock for a Sip2Client, else a plain RLock."""
    return LinkLock(client) if isinstance(client, Sip2Client) else threading.RLock()


def transaction_date(clock: Clock | None = None) -> str:
    """The current time as an 18-character SIP2 date, from an injected clock when given."""
    return sip_date((clock or SystemClock()).now())


__all__ = [
    "ACS_TO_SC",
    "AcsStatus",
    "LinkLock",
    "AcsProbe",
    "probe_acs",
    "Sip2Link",
    "READ_ONLY",
    "RESPONSE_FOR",
    "SC_TO_ACS",
    "Sip2Client",
    "Sip2Error",
    "Sip2LinkBusy",
    "Sip2LinkError",
    "Sip2LoginError",
    "link_lock",
    "transaction_date",
]
