"""The demo library system's SIP2 server: one thread per kiosk connection, translating SIP2
requests into Library calls, with the ACS-side error handling of the spec and fault injection.

Conformance (docs/protocols/sip2.md §3.2, §13.2): bad checksum → `96AZFEF6`; `97` → the last response again
(`96` if none); a message repeating the previous one's sequence number and checksum → the last
response replayed without executing again; unknown commands → no reply; CR or CRLF accepted;
the trailer is sent only when the request carried one.

A `Profile` makes it answer like other real library systems: without the AY/AZ trailer, without
the duplicate rule, late (after the kiosk's timeout), or closing the connection after applying a
request instead of answering it (`PROFILES`, `parse_profile()`; `[acs] profile`,
`kiosk acs --profile`). Tests change the same behaviour at run time through `Faults`.
"""

from __future__ import annotations

import logging
import re
import socket
import socketserver
import struct
import threading
import time
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from kiosk.config import Config
from kiosk.core.domain import PATRON_STATUS_FLAGS, AlertType
from kiosk.core.masking import mask_card
from kiosk.core.ports import Clock, SystemClock
from kiosk.sync.acs.library import (
    AcsError,
    ItemView,
    Library,
    LoanOutcome,
    PatronView,
    Policy,
    make_engine,
)
from kiosk.sync.sip2.codec import (
    FrameBuffer,
    Message,
    Sip2FormatError,
    decode,
    encode,
    message,
    parse_sip_date,
    sip_date,
)

log = logging.getLogger(__name__)

# "Card expired" in the language a terminal asks for (SIP2 language codes; 000 is Latvian here).
CARD_EXPIRED_TEXT = {
    "000": "Lasītāja kartes derīguma termiņš ir beidzies",
    "001": "Library card has expired",
    "015": "Срок действия читательского билета истёк",
}

RESEND_REQUEST = b"96AZFEF6"  # Request SC Resend, the only valid form
# Requests that change the library's state: the ones a profile may apply and then not answer.
CHANGING = frozenset({"11", "09", "29", "65", "37", "15", "19", "01", "25"})
SUPPORTED = "YYYYYYYYYYYYYYYY"  # BX: every message of SIP 2.00 is answered
_HANDLED = frozenset(
    {"93", "99", "23", "63", "11", "09", "29", "65", "17", "19", "35", "37", "15", "01", "25"}
)


@dataclass(frozen=True)
class Profile:
    """How the library system answers on the wire, like one kind of real system.

    `error_detection`: answer with the AY/AZ trailer when the request carried one (False: never,
    as systems that ignore error detection do). `duplicate_rule`: a request repeating the previous
    one's sequence number and checksum gets the previous answer without being executed again
    (False: it is executed again). `reply_delay_s`: every answer is sent this late, after the
    request was applied. `close_after_apply`: a changing request is applied, then the connection
    is closed without an answer.
    """

    name: str = "standard"
    error_detection: bool = True
    duplicate_rule: bool = True
    reply_delay_s: float = 0.0
    close_after_apply: bool = False


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("standard"),
        # Checksums and sequence numbers, but a repeat is executed again (many real systems).
        Profile("no-duplicate-rule", duplicate_rule=False),
        # No AY/AZ at all, so nothing can recognise a repeat either.
        Profile("no-error-detection", error_detection=False, duplicate_rule=False),
        # Applies at once, answers after the kiosk's default timeout (sip2.timeout_s 5 s).
        Profile("late", reply_delay_s=7.0),
        Profile("late-no-duplicate-rule", duplicate_rule=False, reply_delay_s=7.0),
        # Applies, then drops the link: the kiosk never learns the outcome.
        Profile("close-after-apply", close_after_apply=True),
    )
}


def parse_profile(spec: str) -> Profile:
    """A profile from `NAME[,key=value...]`, e.g. `no-duplicate-rule,reply_delay_s=12`.

    Keys are the fields of Profile; booleans are true/false. Raises AcsError naming what is wrong.
    """
    parts = [part.strip() for part in spec.split(",") if part.strip()]
    name = parts[0] if parts and "=" not in parts[0] else "standard"
    if name not in PROFILES:
        raise AcsError(f"demo library profile {name!r} is not one of {', '.join(sorted(PROFILES))}")
    profile = PROFILES[name]
    for part in parts[1 if parts and "=" not in parts[0] else 0 :]:
        key, sep, raw = part.partition("=")
        key, raw = key.strip(), raw.strip()
        if not sep or key not in {
            "error_detection",
            "duplicate_rule",
            "reply_delay_s",
            "close_after_apply",
        }:
            raise AcsError(
                f"demo library profile option {part!r}: expected error_detection=, "
                "duplicate_rule=, reply_delay_s= or close_after_apply="
            )
        value: bool | float
        if key == "reply_delay_s":
            try:
                value = float(raw)
            except ValueError:
                value = -1.0
            if not 0 <= value <= 600:
                raise AcsError(f"demo library profile: reply_delay_s={raw!r} is not 0-600 seconds")
        elif raw.lower() in ("true", "yes", "1", "false", "no", "0"):
            value = raw.lower() in ("true", "yes", "1")
        else:
            raise AcsError(f"demo library profile: {key}={raw!r} is not true or false")
        changes: dict[str, Any] = {key: value}
        profile = replace(profile, **changes)
    return profile


@dataclass
class Faults:
    """Fault injection for tests of the kiosk: change the fields while the server runs.

    `stall_s` delays replies (the transaction is applied first, as a slow ACS would): every reply,
    or only those to `stall_commands` when given, and only the next `stall_count` of them when
    that is set (it counts down). `close_after_apply` applies a changing request (`close_commands`)
    and closes the connection instead of answering (the next `close_count` of them when set).
    `error_detection = False` answers without AY/AZ; `duplicate_rule = False` executes a repeat
    of the previous request (same sequence and checksum) again. `refuse_connections` resets new
    connections at once; `corrupt_checksum` spoils the checksum of every reply that has one;
    `drop_connections()` closes every open kiosk connection. `use(profile)` sets them as a
    Profile says.
    """

    stall_s: float = 0.0
    stall_commands: frozenset[str] = frozenset()
    stall_count: int | None = None
    close_after_apply: bool = False
    close_commands: frozenset[str] = CHANGING
    close_count: int | None = None
    error_detection: bool = True
    duplicate_rule: bool = True
    refuse_connections: bool = False
    corrupt_checksum: bool = False
    # Set when a reply starts being held back by stall_s: the request has been applied by then.
    reply_held: threading.Event = field(default_factory=threading.Event, repr=False)
    # Set when a connection was closed after applying a request (close_after_apply).
    closed_after_apply: threading.Event = field(default_factory=threading.Event, repr=False)
    _server: AcsServer | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def use(self, profile: Profile | str) -> Profile:
        """Answer as `profile` (a Profile, a name in PROFILES or a `parse_profile()` spec) says."""
        chosen = parse_profile(profile) if isinstance(profile, str) else profile
        self.error_detection = chosen.error_detection
        self.duplicate_rule = chosen.duplicate_rule
        self.stall_s = chosen.reply_delay_s
        self.close_after_apply = chosen.close_after_apply
        return chosen

    def drop_connections(self) -> int:
        """Close all client connections now; returns how many were closed."""
        return self._server.drop_connections() if self._server else 0

    def take_stall(self, command: str) -> float:
        """How long to hold back the reply to `command` (0: not at all); counts stall_count down."""
        return (
            self._take(command, self.stall_s > 0, self.stall_commands, "stall_count") * self.stall_s
        )

    def take_close(self, command: str) -> bool:
        """Whether to close instead of answering `command`; counts close_count down."""
        return bool(self._take(command, self.close_after_apply, self.close_commands, "close_count"))

    def _take(self, command: str, on: bool, commands: frozenset[str], counter: str) -> int:
        if not on or (commands and command not in commands):
            return 0
        with self._lock:
            left = getattr(self, counter)
            if left is None:
                return 1
            if left <= 0:
                return 0
            setattr(self, counter, left - 1)
            return 1


@dataclass(eq=False)
class _Connection:
    """Per-connection state: login, and the last exchange for 97 and duplicate detection."""

    sock: socket.socket
    peer: str
    logged_in: bool = False
    last_key: tuple[int | None, str] | None = None
    last_response: bytes | None = None
    command: str = ""  # of the request being answered
    executed: bool = False  # whether that request was executed (not replayed, not refused unread)


class AcsServer(socketserver.ThreadingTCPServer):
    """A threaded SIP2 server over a Library."""

    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(
        self,
        address: tuple[str, int],
        library: Library,
        *,
        login: tuple[str, str] | None = ("kiosk", "demo"),
        encoding: str = "utf-8",
        institution: str = "DEMO",
        library_name: str = "Demo bibliotēka",
        terminator: str = "\r",
        clock: Clock | None = None,
        location_pattern: str | None = None,
    ) -> None:
        self.library = library
        # The form a login's CP must have, as some systems check it (FOLIO edge-sip2: a service
        # point UUID); None accepts any.
        self.location_pattern = re.compile(location_pattern) if location_pattern else None
        self.login = login
        self.encoding = encoding
        self.institution = institution
        self.library_name = library_name
        self.terminator = terminator
        self.clock: Clock = clock or library.clock or SystemClock()
        self.faults = Faults(_server=self)
        self.stopping = threading.Event()
        self._conns: set[_Connection] = set()
        self.frames_handled = 0  # frames read and acted on (applied, replayed or refused)
        self._conns_lock = threading.Lock()
        super().__init__(address, _Handler)

    # --- connection registry and faults -----------------------------------------------------

    def verify_request(self, request: socket.socket, client_address: tuple[str, int]) -> bool:  # type: ignore[override]  # TCP only: a socket, not socketserver's any request
        if self.faults.refuse_connections or self.stopping.is_set():
            try:
                # Linger 0: the close sends a reset, so the kiosk sees a refused link, not a silent one.
                request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            log.info("refusing connection from %s:%s (fault injection)", *client_address[:2])
            return False
        return True

    def register(self, conn: _Connection) -> None:
        with self._conns_lock:
            self._conns.add(conn)

    def unregister(self, conn: _Connection) -> None:
        with self._conns_lock:
            self._conns.discard(conn)

    def connection_count(self) -> int:
        with self._conns_lock:
            return len(self._conns)

    def note_frame(self) -> None:
        with self._conns_lock:
            self.frames_handled += 1

    def drop_connections(self) -> int:
        with self._conns_lock:
            conns = list(self._conns)
            self._conns.clear()
        for conn in conns:
            _close(conn.sock)
        if conns:
            log.info("dropped %d kiosk connection(s)", len(conns))
        return len(conns)

    # --- one frame ------------------------------------------------------------------------

    def respond(self, conn: _Connection, frame: bytes) -> bytes | None:
        """The reply to one frame (terminator included), or None when the spec says to stay silent."""
        conn.command, conn.executed = "", False
        try:
            msg = decode(frame, encoding=self.encoding)
        except Sip2FormatError as exc:
            log.warning("from %s: not a SIP2 message (%s); asking for a resend", conn.peer, exc)
            return self._remember(conn, None, RESEND_REQUEST + b"\r")
        conn.command = msg.command
        if msg.command == "97":
            return conn.last_response or RESEND_REQUEST + b"\r"
        if self.faults.error_detection and msg.checksum is not None and not msg.checksum_ok:
            log.warning(
                "from %s: message %s has a bad checksum; asking for a resend",
                conn.peer,
                msg.command,
            )
            return self._remember(conn, None, RESEND_REQUEST + b"\r")
        key = (msg.sequence, msg.checksum) if msg.checksum is not None else None
        if (
            self.faults.duplicate_rule
            and key is not None
            and key == conn.last_key
            and conn.last_response is not None
        ):
            log.info(
                "from %s: message %s repeats the previous one; replaying the last response",
                conn.peer,
                msg.command,
            )
            return conn.last_response
        if msg.command not in _HANDLED:
            log.info("from %s: unsupported command %r ignored", conn.peer, msg.command)
            return None
        if self.login is not None and not conn.logged_in and msg.command != "93":
            log.warning(
                "from %s: %s before a successful login; answering 940 and closing",
                conn.peer,
                msg.command,
            )
            conn.logged_in = False
            raise _CloseAfter(self._encode(message("94", ok="0"), msg))
        try:
            reply = self._dispatch(conn, msg)
            conn.executed = True
        except AcsError as exc:
            log.error("message %s could not be processed: %s", msg.command, exc)
            return self._remember(conn, None, RESEND_REQUEST + b"\r")
        data = self._encode(reply, msg)
        if msg.command == "93" and reply.fixed.get("ok") != "1":
            raise _CloseAfter(data)
        return self._remember(conn, key, data)

    def _remember(
        self, conn: _Connection, key: tuple[int | None, str] | None, data: bytes
    ) -> bytes:
        conn.last_key, conn.last_response = key, data
        return data

    def _encode(self, reply: Message, request: Message) -> bytes:
        reply.fields = [(fid, self._encodable(value)) for fid, value in reply.fields]
        detect = self.faults.error_detection and (
            request.checksum is not None or request.sequence is not None
        )
        data = encode(
            reply,
            encoding=self.encoding,
            sequence=request.sequence,
            error_detection=detect,
            terminator=self.terminator,
        )
        if self.faults.corrupt_checksum and detect:
            body = data.rstrip(b"\r\n")
            bad = b"0000" if not body.endswith(b"0000") else b"1111"
            data = body[:-4] + bad + data[len(body) :]
        return data

    def _encodable(self, value: str) -> str:
        # A title the configured encoding cannot carry (Latvian in cp850) is sent with '?' rather than not at all.
        try:
            value.encode(self.encoding)
            return value
        except UnicodeEncodeError:
            log.warning(
                "a value cannot be written in %s; unencodable letters sent as '?'", self.encoding
            )
            return value.encode(self.encoding, errors="replace").decode(self.encoding)

    # --- messages -------------------------------------------------------------------------

    def _now(self) -> str:
        return sip_date(self.clock.now())

    def _dispatch(self, conn: _Connection, msg: Message) -> Message:
        handler = getattr(self, f"_on_{msg.command}")
        reply: Message = handler(conn, msg)
        return reply

    def _on_93(self, conn: _Connection, msg: Message) -> Message:
        user, password = msg.get("CN"), msg.get("CO")
        ok = self.login is None or (user, password) == self.login
        if (
            ok
            and self.location_pattern is not None
            and not self.location_pattern.fullmatch(msg.get("CP"))
        ):
            log.info(
                "login from %s: location %r is not of the form this library system expects",
                conn.peer,
                msg.get("CP"),
            )
            ok = False
        conn.logged_in = ok
        log.info("login from %s as %r: %s", conn.peer, user, "accepted" if ok else "refused")
        return message("94", ok="1" if ok else "0")

    def _on_99(self, conn: _Connection, msg: Message) -> Message:
        fields = [("AO", self.institution), ("AM", self.library_name), ("BX", SUPPORTED)]
        version = msg.fixed.get("protocol_version", "").strip()
        # The spec's answer to a terminal speaking an older protocol: off-line, with a reason.
        too_old = bool(version) and version < "2.00"
        if too_old:
            log.warning("terminal at %s speaks SIP %s; SIP 2.00 is required", conn.peer, version)
            fields.append(("AF", f"SIP 2.00 required, terminal sent {version}"))
        return message(
            "98",
            online_status="N" if too_old else "Y",
            checkin_ok="Y",
            checkout_ok="Y",
            acs_renewal_policy="Y",
            status_update_ok="Y",
            offline_ok="Y",
            timeout_period="050",
            retries_allowed="003",
            date_time_sync=self._now(),
            protocol_version="2.00",
            fields=fields,
        )

    def _ao(self, msg: Message) -> str:
        return msg.get("AO") or self.institution

    @staticmethod
    def _language(msg: Message) -> str:
        lang = msg.fixed.get("language", "")
        return lang if len(lang) == 3 and lang.isdigit() else "000"

    @staticmethod
    def _status(view: PatronView) -> str:
        return "".join("Y" if flag in view.blocks else " " for flag in PATRON_STATUS_FLAGS)

    def _patron_fields(self, view: PatronView, msg: Message) -> list[tuple[str, str]]:
        fields = [
            ("AO", self._ao(msg)),
            ("AA", view.patron_id),
            ("AE", view.name),
            ("BL", "Y" if view.found else "N"),
        ]
        if view.pin_ok is not None:
            fields.append(("CQ", "Y" if view.pin_ok else "N"))
        elif view.has_pin:
            # No PIN (AD missing) for a patron who has one: "not validated", as real ACSs answer;
            # a terminal with an optional PIN policy asks for it on this CQ N.
            fields.append(("CQ", "N"))
        if view.found:
            fields += [("BH", view.currency), ("BV", f"{view.fee_total:.2f}")]
        if view.card_expired:
            # SIP2 has no "card expired" flag (only charge privileges denied): say it in words.
            lang = self._language(msg)
            fields.append(("AF", CARD_EXPIRED_TEXT.get(lang, CARD_EXPIRED_TEXT["001"])))
        return fields

    @staticmethod
    def _pin(msg: Message) -> str | None:
        # An empty AD is no PIN at all (23 requires the field, so terminals send it blank).
        return msg.get("AD") or None

    def _on_23(self, conn: _Connection, msg: Message) -> Message:
        view = self.library.patron_status(msg.get("AA"), self._pin(msg))
        fields = self._patron_fields(view, msg)
        if view.message:
            fields.append(("AF", view.message))
        self._log_tx("patron status", view.patron_id, "", view.found)
        return message(
            "24",
            patron_status=self._status(view),
            language=self._language(msg),
            transaction_date=self._now(),
            fields=fields,
        )

    def _on_63(self, conn: _Connection, msg: Message) -> Message:
        view = self.library.patron_status(msg.get("AA"), self._pin(msg))
        summary = msg.fixed.get("summary", "").ljust(10)
        fee_lines = tuple(f"{f.description} {f.amount:.2f} {view.currency}" for f in view.fees)
        lists = (
            ("AS", view.holds_ready),
            ("AT", view.overdue),
            ("AU", view.charged),
            ("AV", fee_lines),
            ("BU", ()),
            ("CD", view.holds_waiting),
        )
        start = _int(msg.get("BP"), 1)
        end = _int(msg.get("BQ"), 0)
        fields = self._patron_fields(view, msg)
        if view.found:
            fields += [("CB", f"{view.charged_limit:04d}"[-4:]), ("CC", f"{view.fee_limit:.2f}")]
            if view.email:
                fields.append(("BE", view.email))
        for position, (fid, values) in enumerate(lists):
            if summary[position] in "Yy":
                page = values[max(start, 1) - 1 : end if end >= start else None]
                fields += [(fid, v) for v in page]
        if view.message:
            fields.append(("AF", view.message))
        counts = [len(v) for _, v in lists]
        self._log_tx("patron information", view.patron_id, "", view.found)
        return message(
            "64",
            patron_status=self._status(view),
            language=self._language(msg),
            transaction_date=self._now(),
            hold_items_count=f"{counts[0]:04d}",
            overdue_items_count=f"{counts[1]:04d}",
            charged_items_count=f"{counts[2]:04d}",
            fine_items_count=f"{counts[3]:04d}",
            recall_items_count=f"{counts[4]:04d}",
            unavailable_holds_count=f"{counts[5]:04d}",
            fields=fields,
        )

    def _on_11(self, conn: _Connection, msg: Message) -> Message:
        patron_id, item_id = msg.get("AA"), msg.get("AB")
        tdate = msg.fixed.get("transaction_date", "")
        seq = "" if msg.sequence is None else str(msg.sequence)
        if msg.get("BI") in ("Y", "y"):
            out = self.library.cancel_checkout(
                patron_id, item_id, transaction_date=tdate, sequence=seq
            )
            self._log_tx("cancel checkout", patron_id, item_id, out.ok, reason=out.message)
            return self._loan_reply("12", msg, out, desensitize=False)
        no_block = msg.fixed.get("no_block") in ("Y", "y")
        out = self.library.checkout(
            patron_id,
            item_id,
            pin=self._pin(msg),
            no_block=no_block,
            transaction_date=tdate,
            when=parse_sip_date(tdate),
            nb_due=parse_sip_date(msg.fixed.get("nb_due_date", "")),
            sequence=seq,
            renewal_allowed=msg.fixed.get("sc_renewal_policy", "Y") not in ("N", "n"),
            fee_acknowledged=msg.get("BO") in ("Y", "y"),
        )
        self._log_tx(
            "no-block checkout" if no_block else "checkout",
            patron_id,
            item_id,
            out.ok,
            out.replayed,
            out.message,
        )
        return self._loan_reply("12", msg, out, desensitize=out.ok)

    def _on_29(self, conn: _Connection, msg: Message) -> Message:
        patron_id, item_id = msg.get("AA"), msg.get("AB")
        tdate = msg.fixed.get("transaction_date", "")
        no_block = msg.fixed.get("no_block") in ("Y", "y")
        out = self.library.renew(
            patron_id,
            item_id,
            title=msg.get("AJ"),
            pin=self._pin(msg),
            no_block=no_block,
            transaction_date=tdate,
            nb_due=parse_sip_date(msg.fixed.get("nb_due_date", "")),
            sequence="" if msg.sequence is None else str(msg.sequence),
        )
        self._log_tx(
            "no-block renewal" if no_block else "renewal",
            patron_id,
            out.item_id,
            out.ok,
            out.replayed,
            out.message,
        )
        return self._loan_reply("30", msg, out, desensitize=out.ok)

    def _loan_reply(
        self, command: str, msg: Message, out: LoanOutcome, *, desensitize: bool
    ) -> Message:
        fields = [
            ("AO", self._ao(msg)),
            ("AA", out.patron_id),
            ("AB", out.item_id),
            ("AJ", out.title),
            ("AH", sip_date(out.due) if out.due and (out.ok or out.renewal) else ""),
        ]
        if out.media_type:
            fields.append(("CK", out.media_type))
        if out.fee_amount:
            fields += [
                ("BT", "06"),
                ("BH", self.library.policy.currency),
                ("BV", f"{out.fee_amount:.2f}"),
            ]
        if out.message:
            fields.append(("AF", out.message))
        return message(
            command,
            ok="1" if out.ok else "0",
            renewal_ok="Y" if out.renewal else "N",
            magnetic_media="Y" if out.magnetic else "N",
            desensitize="Y" if desensitize else "N",
            transaction_date=self._now(),
            fields=fields,
        )

    def _on_65(self, conn: _Connection, msg: Message) -> Message:
        patron_id = msg.get("AA")
        out = self.library.renew_all(
            patron_id,
            pin=self._pin(msg),
            transaction_date=msg.fixed.get("transaction_date", ""),
            sequence="" if msg.sequence is None else str(msg.sequence),
        )
        fields = (
            [("AO", self._ao(msg))]
            + [("BM", i) for i in out.renewed]
            + [("BN", i) for i in out.unrenewed]
        )
        if out.message:
            fields.append(("AF", out.message))
        self._log_tx("renew all", patron_id, "", out.ok, reason=out.message)
        return message(
            "66",
            ok="1" if out.ok else "0",
            renewed_count=f"{len(out.renewed):04d}",
            unrenewed_count=f"{len(out.unrenewed):04d}",
            transaction_date=self._now(),
            fields=fields,
        )

    def _on_09(self, conn: _Connection, msg: Message) -> Message:
        item_id = msg.get("AB")
        tdate = msg.fixed.get("transaction_date", "")
        seq = "" if msg.sequence is None else str(msg.sequence)
        no_block = msg.fixed.get("no_block") in ("Y", "y")
        if msg.get("BI") in ("Y", "y"):
            out = self.library.cancel_checkin(item_id, transaction_date=tdate, sequence=seq)
            kind = "cancel checkin"
        else:
            out = self.library.checkin(
                item_id,
                current_location=msg.get("AP"),
                no_block=no_block,
                transaction_date=tdate,
                return_date=parse_sip_date(msg.fixed.get("return_date", "")),
                sequence=seq,
            )
            kind = "no-block checkin" if no_block else "checkin"
        self._log_tx(kind, out.previous_patron, item_id, out.ok, out.replayed, out.message)
        fields = [("AO", self._ao(msg)), ("AB", out.item_id), ("AQ", out.permanent_location)]
        if out.title:
            fields.append(("AJ", out.title))
        if out.sort_bin:
            fields.append(("CL", out.sort_bin))
        if out.previous_patron:
            fields.append(("AA", out.previous_patron))
        if out.media_type:
            fields.append(("CK", out.media_type))
        if out.alert_type is not AlertType.NONE:
            fields.append(("CV", out.alert_type.value))
        if out.destination:
            fields.append(("CT", out.destination))
        if out.hold_patron_id:
            fields += [("CY", out.hold_patron_id), ("DA", out.hold_patron_name)]
        if out.message:
            fields.append(("AF", out.message))
        return message(
            "10",
            ok="1" if out.ok else "0",
            resensitize="Y" if out.resensitize else "N",
            magnetic_media="Y" if out.magnetic else "N",
            alert="Y" if out.alert else "N",
            transaction_date=self._now(),
            fields=fields,
        )

    def _item_fields(self, view: ItemView, msg: Message) -> list[tuple[str, str]]:
        fields: list[tuple[str, str]] = []
        if view.found:
            fields.append(("CF", str(view.hold_queue_length)))
            if view.due:
                fields.append(("AH", sip_date(view.due)))
            if view.hold_pickup_date:
                fields.append(("CM", sip_date(view.hold_pickup_date)))
        fields += [("AB", view.item_id), ("AJ", view.title)]
        if view.found:
            fields += [("BG", view.owner), ("CK", view.media_type), ("AQ", view.permanent_location)]
            if view.current_location:
                fields.append(("AP", view.current_location))
            if view.properties:
                fields.append(("CH", view.properties))
        if view.message:
            fields.append(("AF", view.message))
        return fields

    def _on_17(self, conn: _Connection, msg: Message) -> Message:
        view = self.library.item_information(msg.get("AB"))
        return message(
            "18",
            circulation_status=view.circulation_status,
            security_marker="00",
            fee_type="01",
            transaction_date=self._now(),
            fields=self._item_fields(view, msg),
        )

    def _on_19(self, conn: _Connection, msg: Message) -> Message:
        view = self.library.set_item_properties(msg.get("AB"), msg.get("CH"))
        fields = [("AB", view.item_id), ("AJ", view.title)]
        if view.properties:
            fields.append(("CH", view.properties))
        if not view.found:
            fields.append(("AF", "Unknown item"))
        return message(
            "20",
            item_properties_ok="1" if view.found else "0",
            transaction_date=self._now(),
            fields=fields,
        )

    def _on_35(self, conn: _Connection, msg: Message) -> Message:
        patron_id = msg.get("AA")
        self._log_tx("end session", patron_id, "", True)
        return message(
            "36",
            end_session="Y",
            transaction_date=self._now(),
            fields=[("AO", self._ao(msg)), ("AA", patron_id)],
        )

    def _on_37(self, conn: _Connection, msg: Message) -> Message:
        patron_id = msg.get("AA")
        out = self.library.pay_fee(
            patron_id,
            msg.get("BV"),
            fee_id=msg.get("CG"),
            transaction_id=msg.get("BK"),
            transaction_date=msg.fixed.get("transaction_date", ""),
        )
        fields = [("AO", self._ao(msg)), ("AA", patron_id)]
        if out.transaction_id:
            fields.append(("BK", out.transaction_id))
        if out.message:
            fields.append(("AF", out.message))
        self._log_tx("fee paid", patron_id, "", out.accepted, reason=out.message)
        return message(
            "38",
            payment_accepted="Y" if out.accepted else "N",
            transaction_date=self._now(),
            fields=fields,
        )

    def _on_15(self, conn: _Connection, msg: Message) -> Message:
        patron_id, item_id, title = msg.get("AA"), msg.get("AB"), msg.get("AJ")
        mode = msg.fixed.get("hold_mode", "+")
        pickup = msg.get("BS")
        if mode == "-":
            out = self.library.cancel_hold(patron_id, item_id, title=title)
        elif mode == "*":
            out = self.library.change_hold(patron_id, item_id, pickup, title=title)
        else:
            out = self.library.place_hold(item_id, patron_id, pickup, title=title)
        fields = []
        if out.queue_position:
            fields.append(("BR", str(out.queue_position)))
        if out.pickup_location:
            fields.append(("BS", out.pickup_location))
        fields += [("AO", self._ao(msg)), ("AA", patron_id)]
        if out.item_id:
            fields.append(("AB", out.item_id))
        if out.title:
            fields.append(("AJ", out.title))
        if out.message:
            fields.append(("AF", out.message))
        self._log_tx(f"hold {mode}", patron_id, item_id, out.ok, reason=out.message)
        return message(
            "16",
            ok="1" if out.ok else "0",
            available="Y" if out.available else "N",
            transaction_date=self._now(),
            fields=fields,
        )

    def _on_01(self, conn: _Connection, msg: Message) -> Message:
        patron_id = msg.get("AA")
        view = self.library.block_patron(patron_id, msg.get("AL"))
        self._log_tx("block patron", patron_id, "", view.found)
        fields = self._patron_fields(view, msg)
        return message(
            "24",
            patron_status=self._status(view),
            language="000",
            transaction_date=self._now(),
            fields=fields,
        )

    def _on_25(self, conn: _Connection, msg: Message) -> Message:
        patron_id = msg.get("AA")
        view = self.library.enable_patron(patron_id)
        self._log_tx("patron enable", patron_id, "", view.found)
        fields = [
            ("AO", self._ao(msg)),
            ("AA", view.patron_id),
            ("AE", view.name),
            ("BL", "Y" if view.found else "N"),
        ]
        return message(
            "26",
            patron_status=self._status(view),
            language="000",
            transaction_date=self._now(),
            fields=fields,
        )

    @staticmethod
    def _log_tx(
        kind: str, patron_id: str, item_id: str, ok: bool, replayed: bool = False, reason: str = ""
    ) -> None:
        log.info(
            "%s patron=%s item=%s %s%s",
            kind,
            mask_card(patron_id) or "-",
            item_id or "-",
            "ok" if ok else f"refused ({reason or 'no reason given'})",
            " (replay, not applied again)" if replayed else "",
        )


class _CloseAfter(Exception):
    """Send these bytes, then close the connection (failed login)."""

    def __init__(self, data: bytes) -> None:
        super().__init__("close after reply")
        self.data = data


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def _int(text: str, default: int) -> int:
    text = text.strip()
    return int(text) if text.isdigit() else default


class _Handler(socketserver.BaseRequestHandler):
    server: AcsServer

    def handle(self) -> None:
        srv = self.server
        host, port = self.client_address[:2]
        conn = _Connection(self.request, f"{host}:{port}")
        srv.register(conn)
        frames = FrameBuffer()
        log.info("kiosk connected from %s", conn.peer)
        try:
            while not srv.stopping.is_set():
                try:
                    data = self.request.recv(65536)
                except OSError:
                    break
                if not data:
                    break
                try:
                    batch = frames.feed(data)
                except Sip2FormatError as exc:
                    log.warning("from %s: %s; closing the connection", conn.peer, exc)
                    break
                for frame in batch:
                    close = False
                    try:
                        reply = srv.respond(conn, frame)
                    except _CloseAfter as done:
                        reply, close = done.data, True
                    except Exception:  # a bug must not take the whole demo library down
                        log.exception(
                            "from %s: unexpected error on a message; asking for a resend", conn.peer
                        )
                        reply = RESEND_REQUEST + b"\r"
                    srv.note_frame()
                    if conn.executed and srv.faults.take_close(conn.command):
                        log.info(
                            "from %s: %s applied; closing the connection without answering "
                            "(fault injection)",
                            conn.peer,
                            conn.command,
                        )
                        srv.faults.closed_after_apply.set()
                        _close(self.request)
                        return
                    if reply is not None:
                        if srv.faults.take_stall(conn.command) > 0 and not self._stall():
                            return
                        try:
                            self.request.sendall(reply)
                        except OSError:
                            return
                    if close:
                        return
        finally:
            srv.unregister(conn)
            log.info("kiosk %s disconnected", conn.peer)

    def _stall(self) -> bool:
        """Hold the reply back for faults.stall_s, re-read so a test can shorten it; False when stopping."""
        srv = self.server
        srv.faults.reply_held.set()
        start = time.monotonic()
        while (remaining := start + srv.faults.stall_s - time.monotonic()) > 0:
            if srv.stopping.wait(min(remaining, 0.05)):
                return False
        return True


class RunningAcs:
    """A demo library system serving SIP2 in a background thread. Thread-safe."""

    def __init__(self, server: AcsServer) -> None:
        self._server = server
        host, port = server.server_address[:2]
        self.host: str = str(host)
        self.port: int = int(port)
        self.library: Library = server.library
        self.faults: Faults = server.faults
        self.profile: Profile = PROFILES["standard"]
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"demo-acs-{self.port}",
            daemon=True,
        )
        self._thread.start()
        self._stopped = False

    @property
    def frames_handled(self) -> int:
        """How many SIP2 frames the library system has read and acted on, over all connections."""
        return self._server.frames_handled

    @property
    def connections(self) -> int:
        """How many kiosk connections are open now (a handler finishing its last frame counts)."""
        return self._server.connection_count()

    @property
    def address(self) -> str:
        return f"{self.host!s}:{self.port}"

    def stop(self) -> None:
        """Stop serving, close every connection and release the database. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._server.drop_connections()
        self._thread.join(timeout=5)
        self.library.close()

    def __enter__(self) -> RunningAcs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_embedded(
    database_url: str,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    fresh: bool = False,
    login: tuple[str, str] | None = ("kiosk", "demo"),
    encoding: str = "utf-8",
    loan_days: int = 21,
    max_loans: int = 10,
    max_renewals: int = 3,
    fee_limit: Decimal | str = "10.00",
    institution: str = "DEMO",
    library_name: str = "Demo bibliotēka",
    branch: str = "DEMO",
    clock: Clock | None = None,
    terminator: str = "\r",
    strict: bool = True,
    profile: Profile | str = "standard",
    location_pattern: str | None = None,
) -> RunningAcs:
    """Open (creating and seeding on first use) the demo database and serve SIP2 on host:port
    (0 = an ephemeral port) in a daemon thread. Raises AcsError when the database or port is unusable.

    `strict` (default) applies every request received (see `Library`); `strict=False` answers a
    repeat of an item's last transaction without applying it again. `profile` (a Profile, a name
    in PROFILES or a `parse_profile()` spec) says how it answers on the wire."""
    chosen = parse_profile(profile) if isinstance(profile, str) else profile
    try:
        "".encode(encoding)
    except LookupError:
        raise AcsError(
            f"unknown character encoding {encoding!r} for the demo library system"
        ) from None
    policy = Policy(
        loan_days=loan_days,
        max_loans=max_loans,
        max_renewals=max_renewals,
        fee_limit=Decimal(str(fee_limit)),
        branch=branch,
    )
    library = Library(make_engine(database_url), policy, clock, strict=strict)
    library.prepare(fresh=fresh)
    try:
        server = AcsServer(
            (host, port),
            library,
            login=login,
            encoding=encoding,
            institution=institution,
            library_name=library_name,
            terminator=terminator,
            clock=clock,
            location_pattern=location_pattern,
        )
    except OSError as exc:
        library.close()
        raise AcsError(
            f"demo library system cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None
    server.faults.use(chosen)
    running = RunningAcs(server)
    running.profile = chosen
    log.info(
        "demo library system serving SIP2 on %s:%s (%s, profile %s)",
        running.host,
        running.port,
        "strict" if strict else "repeat guard",
        chosen.name,
    )
    return running


def database_url_for(cfg: Config, database_url: str | None = None) -> str:
    """The configured database URL with a relative SQLite path made absolute (and its folder created)."""

    raw = database_url or cfg.acs.database_url
    try:
        url = make_url(raw)
    except (ArgumentError, ValueError) as exc:  # unparseable, or a port that is not a number
        raise AcsError(f"acs.database_url: {raw!r} is not a database URL ({exc})") from None
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        path = cfg.resolve_path(url.database)
        path.parent.mkdir(parents=True, exist_ok=True)
        url = url.set(database=str(path))
    return url.render_as_string(hide_password=False)


def build_from_config(
    cfg: Config,
    *,
    host: str | None = None,
    port: int | None = None,
    fresh: bool = False,
    database_url: str | None = None,
    profile: str | None = None,
) -> RunningAcs:
    """Start the demo library system as `[acs]` and `[sip2]` of one configuration describe it
    (`profile` overrides `acs.profile`)."""
    login = (cfg.sip2.username, cfg.sip2.password) if cfg.sip2.username else None
    return start_embedded(
        database_url_for(cfg, database_url),
        host if host is not None else cfg.acs.host,
        cfg.acs.port if port is None else port,
        fresh=fresh,
        login=login,
        encoding=cfg.sip2.encoding,
        loan_days=cfg.acs.loan_days,
        max_loans=cfg.acs.max_loans,
        max_renewals=cfg.acs.max_renewals,
        fee_limit=Decimal(str(cfg.acs.fee_limit)),
        institution=cfg.sip2.institution_id or "DEMO",
        library_name=cfg.kiosk.library_name,
        branch=cfg.sip2.location_code or cfg.sip2.institution_id or "DEMO",
        strict=cfg.acs.strict,
        profile=profile if profile is not None else cfg.acs.profile,
    )


def describe(profile: Profile) -> str:
    """A profile as its name and the fields that differ from that name's preset."""
    preset = PROFILES.get(profile.name, Profile())
    changed = [
        f"{name}={getattr(profile, name)}"
        for name in ("error_detection", "duplicate_rule", "reply_delay_s", "close_after_apply")
        if getattr(profile, name) != getattr(preset, name)
    ]
    return ",".join([profile.name, *changed])
