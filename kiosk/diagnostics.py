"""What the maintenance screens do, without Kivy: device status, tag reading with decoded content
and security state, a test AFI write, a test receipt, the SIP2 check and its masked exchanges,
the offline queue and statistics.

Every method blocks on I/O; the screens run them on a background thread and show the result.
They use the kiosk's live devices (the reader the app already has open), never a second handle.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from kiosk import doctor
from kiosk.config import Config
from kiosk.core import stats as kstats
from kiosk.devices import tags
from kiosk.devices.errors import TagFormatError
from kiosk.doctor import Check, Status
from kiosk.errors import KioskError
from kiosk.logsetup import card_regex, mask_card, scrub
from kiosk.sync.sip2.client import probe_acs

log = logging.getLogger(__name__)


def _same(msgid: str) -> str:
    return msgid


@dataclass(frozen=True)
class TagView:
    """One tag on the pad as the diagnostics screen shows it."""

    uid: str
    item_id: str = ""
    model: str = ""
    part_number: int = 1
    parts_in_set: int = 1
    owner: str = ""
    type_of_usage: str = ""
    crc_ok: bool | None = None
    afi: int | None = None
    eas: bool | None = None
    secured: bool | None = None
    error: str = ""

    @property
    def afi_text(self) -> str:
        return "?" if self.afi is None else f"0x{self.afi:02X}"

    def summary(self, tr: Callable[[str], str] = _same) -> str:
        """One line; `tr` translates its words (the codes, AFI, EAS, CRC and UID stay as they are)."""
        security = {True: tr("secured"), False: tr("NOT secured"), None: tr("security unknown")}[
            self.secured
        ]
        eas = "" if self.eas is None else f", EAS {'on' if self.eas else 'off'}"
        if self.error:
            return f"{self.uid}: {self.error} (AFI {self.afi_text}{eas})"
        part = (
            ", " + tr("part {i}/{n}").format(i=self.part_number, n=self.parts_in_set)
            if self.parts_in_set > 1
            else ""
        )
        crc = "" if self.crc_ok is None else (", CRC ok" if self.crc_ok else ", CRC BAD")
        owner = tr("owner {owner}").format(owner=self.owner or "-")
        usage = tr("usage {usage}").format(usage=self.type_of_usage or "-")
        return f"{self.item_id} [{self.model}{part}, {owner}, {usage}{crc}] AFI {self.afi_text}{eas}: {security}  (UID {self.uid})"


@dataclass(frozen=True)
class ActionResult:
    """The outcome of one diagnostics action, as lines for the screen."""

    ok: bool
    title: str
    lines: tuple[str, ...] = ()
    data: Any = None


@dataclass(frozen=True)
class RefusalView:
    """A staff-list line: a transaction the library system refused or whose outcome the kiosk
    cannot know (patron id masked), or an item sent to the desk (operation "desk")."""

    when: datetime
    operation: str
    item_id: str
    patron: str
    message: str


@dataclass
class Diagnostics:
    """The maintenance actions over the kiosk's live parts (any may be None when not built)."""

    cfg: Config
    reader: Any = None
    security: Any = None
    printer: Any = None
    sorter: Any = None
    circulation: Any = None
    journal: Any = None
    card_re: Any = field(default=None, repr=False)
    # Translates the texts shown on the screen (the maintenance screen sets the app's translator).
    tr: Callable[[str], str] = field(default=_same, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.card_re = card_regex(self.cfg.patron.card_pattern)
        if self.journal is None and self.circulation is not None:
            self.journal = getattr(self.circulation, "journal", None)

    @classmethod
    def from_services(cls, services: Any) -> Diagnostics:
        """Take the parts from the app's KioskServices."""
        return cls(
            cfg=services.cfg,
            reader=getattr(services, "reader", None),
            security=getattr(services, "security", None),
            printer=getattr(services, "printer", None),
            sorter=getattr(services, "sorter", None),
            circulation=getattr(services, "circulation", None),
        )

    # -- status --------------------------------------------------------------------------

    def device_status(self) -> list[Check]:
        """Reader, card readers, printer (with paper), sorter, library system link and offline queue."""

        checks = [self._reader_status()]
        checks += doctor.check_card_sources(self.cfg)
        checks.append(self._printer_status())
        checks.append(self._sorter_status())
        checks.append(self._link_status())
        checks.append(self._queue_status())
        return checks

    def _reader_status(self) -> Check:
        url = self.cfg.reader.url
        if self.reader is None:
            return Check(
                "reader",
                Status.FAIL,
                self.tr("{url}: not open (see the log for why)").format(url=url),
                self.tr("check the cable and [reader] url, then restart the kiosk"),
            )
        try:
            found = self.reader.inventory()
        except (KioskError, OSError) as exc:
            return Check(
                "reader",
                Status.FAIL,
                f"{url}: {exc}",
                self.tr("check the reader's cable and power"),
            )
        return Check(
            "reader",
            Status.OK,
            self.tr("{url}: answers, tags on the pad: {n}").format(url=url, n=len(found)),
        )

    def _printer_status(self) -> Check:
        url = self.cfg.printer.url
        if self.printer is None:
            return Check(
                "printer",
                Status.WARN,
                self.tr("{url}: not open").format(url=url),
                self.tr("check [printer] url"),
            )
        try:
            from kiosk.devices.printer import PrinterStatus  # lazy: Pillow, only with a printer

            state = self.printer.status()
        except (KioskError, OSError) as exc:
            return Check("printer", Status.FAIL, f"{url}: {exc}", self.tr("check power and cable"))
        text = {
            PrinterStatus.READY: (Status.OK, self.tr("ready, paper ok")),
            PrinterStatus.PAPER_LOW: (Status.WARN, self.tr("paper near end")),
            PrinterStatus.PAPER_OUT: (Status.FAIL, self.tr("OUT OF PAPER")),
            PrinterStatus.OFFLINE: (Status.FAIL, self.tr("offline (cover open, off, or cable)")),
            PrinterStatus.NONE: (Status.WARN, self.tr("no printer configured")),
        }.get(state, (Status.WARN, str(state)))
        return Check(
            "printer",
            text[0],
            f"{url}: {text[1]}",
            self.tr("put in a new roll / close the cover / check power"),
        )

    def _sorter_status(self) -> Check:
        url = self.cfg.sorter.url
        if url in ("", "none"):
            return Check("sorter", Status.OK, self.tr("no sorter configured"))
        if self.sorter is None:
            return doctor._check_sorter(self.cfg, 2.0)
        try:
            status = self.sorter.status()
        except (KioskError, OSError) as exc:
            return Check(
                "sorter", Status.FAIL, f"{url}: {exc}", self.tr("check the sorter's power and link")
            )
        ok = bool(getattr(status, "ok", status == "ready"))
        return Check(
            "sorter",
            Status.OK if ok else Status.FAIL,
            f"{url}: {status}",
            self.tr("check the sorter's power and link"),
        )

    def _link_status(self) -> Check:
        where = f"{self.cfg.sip2.host}:{self.cfg.sip2.port}"
        if self.circulation is None:
            return Check(
                "library",
                Status.FAIL,
                self.tr("{where}: no circulation service").format(where=where),
                self.tr("see the log"),
            )
        link = self.circulation.status()
        if link.online:
            name = link.library_name or self.tr("library system")
            return Check(
                "library",
                Status.OK,
                self.tr("{name} at {where}: online").format(name=name, where=where),
            )
        since = (
            " " + self.tr("since {time}").format(time=f"{link.since:%H:%M}")
            if getattr(link, "since", None)
            else ""
        )
        # The session may simply not have connected yet: a fresh connection tells the two apart.
        probe = self.sip2_check(timeout_s=3.0)
        if probe.ok:
            return Check(
                "library",
                Status.WARN,
                self.tr("{where}: answers, but the kiosk's session is offline{since}").format(
                    where=where, since=since
                ),
                self.tr("it reconnects by itself; forward the queue if items wait"),
            )
        return Check(
            "library",
            Status.FAIL,
            self.tr("{where}: OFFLINE{since}: {error}").format(
                where=where, since=since, error=link.last_error or probe.lines[0]
            ),
            self.tr("run the SIP2 check in Diagnostics"),
        )

    def _queue_status(self) -> Check:
        if self.journal is None:
            return Check("offline queue", Status.WARN, self.tr("no journal"), "")
        pending = self.journal.pending_count()
        refused = len(self.journal.refusals())
        status = Status.WARN if pending or refused else Status.OK
        return Check(
            "offline queue",
            status,
            self.tr("{pending} waiting, {refused} refused (for staff)").format(
                pending=pending, refused=refused
            ),
            self.tr("forward now, or handle the refusals by hand"),
        )

    # -- tags ----------------------------------------------------------------------------

    def read_tags(self) -> list[TagView]:
        """Every tag on the pad, decoded, with its AFI/EAS and whether it counts as secured."""
        from kiosk.devices.readers.base import (  # lazy: pyserial, only with a reader
            NotSupported,
            SystemInfo,
        )

        if self.reader is None:
            raise KioskError(self.tr("no RFID reader is open; check [reader] url and the cable"))
        views = []
        for entry in self.reader.inventory():
            uid = entry.uid
            try:
                info = self.reader.read_system_info(uid)
            except NotSupported:
                info = SystemInfo(uid=uid, dsfid=entry.dsfid, afi=entry.afi)
            except KioskError as exc:
                views.append(
                    TagView(
                        uid,
                        afi=entry.afi,
                        error=self.tr("system information not read: {error}").format(error=exc),
                    )
                )
                continue
            eas = self._eas(uid)
            secured = self._secured(info.afi, eas)
            try:
                memory = self.reader.read_blocks(uid, 0, info.block_count or 28)
                data = tags.decode(
                    memory,
                    model=self.cfg.reader.data_model,
                    block_size=info.block_size,
                    dsfid=info.dsfid,
                )
            except TagFormatError as exc:
                views.append(
                    TagView(
                        uid,
                        afi=info.afi,
                        eas=eas,
                        secured=secured,
                        error=self.tr("tag data not understood: {error}").format(error=exc),
                    )
                )
                continue
            except KioskError as exc:
                views.append(
                    TagView(
                        uid,
                        afi=info.afi,
                        eas=eas,
                        secured=secured,
                        error=self.tr("memory not read: {error}").format(error=exc),
                    )
                )
                continue
            views.append(
                TagView(
                    uid,
                    data.item_id,
                    data.model,
                    data.part_number,
                    data.parts_in_set,
                    data.owner_institution,
                    data.type_of_usage,
                    data.crc_ok,
                    info.afi,
                    eas,
                    secured,
                )
            )
        return views

    def _eas(self, uid: str) -> bool | None:
        try:
            return self.reader.eas(uid)
        except KioskError:
            return None

    def _secured(self, afi: int | None, eas: bool | None) -> bool | None:
        s = self.cfg.security
        by_afi = None if afi is None else afi == s.afi_secured
        if s.method == "afi":
            return by_afi
        if s.method == "eas":
            return eas
        if by_afi is None or eas is None:
            return None
        return by_afi and eas

    def write_test_afi(self, uid: str, afi: int) -> ActionResult:
        """Write `afi` to one tag and read it back (the technician's test of the write path)."""
        title = self.tr("Write AFI")
        if self.reader is None:
            return ActionResult(False, title, (self.tr("no RFID reader is open"),))
        try:
            self.reader.write_afi(uid, afi)
            back = self.reader.read_system_info(uid).afi
        except KioskError as exc:
            return ActionResult(False, title, (f"{uid}: {exc}",))
        ok = back == afi
        text = self.tr("{uid}: wrote {afi}, reads back {back}").format(
            uid=uid, afi=f"0x{afi:02X}", back="?" if back is None else f"0x{back:02X}"
        )
        return ActionResult(
            ok,
            title,
            (text + ("" if ok else " - " + self.tr("the tag did not take the write")),),
            back,
        )

    # -- printer -------------------------------------------------------------------------

    def print_test_receipt(self, now: datetime | None = None) -> ActionResult:
        """The test page: the terminal, the time, and the whole Latvian and Russian alphabets as text and as an image."""
        from kiosk.devices.printer import make_test_page  # lazy: Pillow, only with a printer

        if self.printer is None:
            return ActionResult(False, self.tr("Test receipt"), (self.tr("no printer is open"),))
        columns = getattr(self.printer, "columns", 0) or 42
        doc = make_test_page(
            self.cfg.kiosk.library_name, self.cfg.kiosk.terminal_id, now or datetime.now(), columns
        )
        try:
            where = self.printer.print_receipt(doc)
        except (KioskError, OSError) as exc:
            return ActionResult(False, self.tr("Test receipt"), (str(exc),))
        return ActionResult(
            True,
            self.tr("Test receipt"),
            (self.tr("printed ({where})").format(where=where),),
            where,
        )

    # -- library system ------------------------------------------------------------------

    def sip2_check(self, timeout_s: float = 5.0) -> ActionResult:
        """`kiosk sip2 check`: a fresh connection, login and status; the exchange shown masked."""

        s = self.cfg.sip2
        probe = probe_acs(s, timeout_s=timeout_s)
        if probe.status is not None:
            lines = [f"{k}: {v}" for k, v in probe.status.to_json().items()]
        else:
            lines = [probe.error]
        lines += ["", self.tr("exchange:")] + self._format_exchanges(probe.exchanges)
        return ActionResult(
            probe.ok, f"{self.tr('SIP2 check')} {s.host}:{s.port}", tuple(lines), probe.status
        )

    def last_exchanges(self, limit: int = 20) -> list[str]:
        """The live session's last SIP2 messages, passwords and PINs masked."""
        client = getattr(self.circulation, "client", None)
        exchanges = list(getattr(client, "exchanges", ()))[-limit:]
        return self._format_exchanges(exchanges)

    def _format_exchanges(self, exchanges: Any) -> list[str]:
        # Already masked by the SIP2 client; scrubbed again because this goes on a screen.
        # "->" rather than the client's arrow: the screen's monospace font has no arrow glyph.
        return [
            scrub(
                f"{when:%H:%M:%S} {direction.replace('→', '->')} {text}".rstrip("\r\n"),
                self.card_re,
            )
            for when, direction, text in exchanges
        ]

    # -- offline queue -------------------------------------------------------------------

    def forward_now(self) -> ActionResult:
        if self.circulation is None:
            return ActionResult(False, self.tr("Forward"), (self.tr("no circulation service"),))
        try:
            report = self.circulation.forward_offline()
        except (KioskError, OSError) as exc:
            return ActionResult(False, self.tr("Forward"), (str(exc),))
        text = self.tr("forwarded {forwarded}, refused {refused}, still waiting {pending}").format(
            forwarded=report.forwarded, refused=report.refused, pending=report.pending
        )
        return ActionResult(report.pending == 0, self.tr("Forward"), (text,), report)

    def refusals(self) -> list[RefusalView]:
        if self.journal is None:
            return []
        out = []
        for e in self.journal.refusals():
            result = e.result if isinstance(e.result, dict) else {}
            message = str(result.get("message") or e.error or "")
            out.append(
                RefusalView(
                    e.created,
                    e.operation.value,
                    e.item_id,
                    mask_card(e.patron_id) if e.patron_id else "",
                    scrub(message, self.card_re),
                )
            )
        for ev in self.journal.desk_events():
            # Recorded as "item <id>: <what happened>" by checkout, returns and the book drop.
            head, _, rest = ev.detail.partition(": ")
            item_id = head.removeprefix("item ") if head.startswith("item ") and rest else ""
            out.append(
                RefusalView(
                    ev.created,
                    "desk",
                    item_id,
                    "",
                    scrub(rest if item_id else ev.detail, self.card_re),
                )
            )
        return out

    def recent_events(self, limit: int = 8) -> list[tuple[datetime, str, str]]:
        """The newest journal events (outages, maintenance, service changes), newest first."""
        if self.journal is None:
            return []
        events = self.journal.events()[-limit:]
        return [(e.created, e.kind, scrub(e.detail, self.card_re)) for e in reversed(events)]

    def pending_count(self) -> int:
        return self.journal.pending_count() if self.journal is not None else 0

    # -- statistics ----------------------------------------------------------------------

    def statistics(self, now: datetime, days: int = 14) -> kstats.Statistics:
        if self.journal is None:
            return kstats.Statistics()
        since = datetime.combine((now - timedelta(days=days - 1)).date(), datetime.min.time())
        return kstats.compute(self.journal.entries(since), since=since)
