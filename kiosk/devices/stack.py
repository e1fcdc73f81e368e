"""Stack reading: repeated inventories of the pad until the set of tags is stable, each new tag's
memory read and decoded once, and tags entering and leaving reported as ItemTag events.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kiosk.core.domain import ItemTag
from kiosk.core.errors import log_fault
from kiosk.devices import tags
from kiosk.devices.errors import DeviceError, DeviceTimeout, TagFormatError
from kiosk.devices.readers.base import (
    InventoryEntry,
    NotSupported,
    SystemInfo,
    TagNotFound,
    TagReader,
)

log = logging.getLogger(__name__)

ChangeCallback = Callable[[tuple[ItemTag, ...], tuple[ItemTag, ...], tuple[ItemTag, ...]], None]
# (tags sighted, sightings withdrawn): see StackReader.on_sighted.
SightedCallback = Callable[[tuple[ItemTag, ...], tuple[ItemTag, ...]], None]
# (uids found, findings withdrawn): see StackReader.on_found.
FoundCallback = Callable[[tuple[str, ...], tuple[str, ...]], None]
Decoder = Callable[..., Any]

# An ISO 28560-3 basic block is 34 bytes; 36 (nine 4-byte blocks) also shows the byte after it.
QUICK_BYTES = 36


@dataclass(frozen=True)
class StackChange:
    """One poll's outcome: the stable tags now on the pad and what entered and left.

    `stable` is False while the inventory is still changing (present is then the last stable set);
    `error` says why an inventory failed."""

    present: tuple[ItemTag, ...]
    added: tuple[ItemTag, ...] = ()
    removed: tuple[ItemTag, ...] = ()
    stable: bool = True
    error: str = ""

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed)


def _sightable(tag: ItemTag) -> bool:
    """A tag read well enough to be shown before the set is stable: its item id decoded."""
    return bool(tag.item_id) and not tag.error


def _default_decoder() -> Decoder:
    return tags.decode


class StackReader:
    """Reads the stack of items on a pad.

    Stacked tags detune each other, so a tag may be missing from one inventory: the set counts
    only after `stable_rounds` identical inventories (docs/protocols/rfid.md P7). A tag whose memory cannot be
    read after `read_retries` retries, or cannot be decoded, is reported with `error` set.
    With `quick_read` only the first 36 bytes are read when they hold the whole tag (an ISO
    28560-3 basic block without extension blocks, or RFID 501), which halves the time on the wire.
    `security` (the [security] config section) asks for each tag's EAS bit when its method uses EAS.

    `on_sighted`, when set, hears of a new tag as soon as one inventory has seen it and its memory
    was read and decoded, before the set is stable: a screen can show "checking" for it at once,
    while nothing is done with the tag until the stable set reports it through `on_change`
    (docs/architecture.md, "A tag sighted before the set is stable"). The read is kept, so the
    stable round does not read the tag again; a sighted tag that the stable set does not hold is
    withdrawn. Only tags that read and decode are sighted; the others wait for the stable set,
    which reports them with their error as before.

    `on_found`, when set, hears of a new tag's UID as soon as an inventory has found it, before
    its memory is read: a screen can show a row for it while the reader reads which item it is
    (docs/architecture.md, "A tag found before it is read"). It is called on the reader's thread
    under the reader's lock, between the inventory and the read, so it must only hand the UIDs
    on. A found tag the stable set does not hold is withdrawn at the stable round (by UID); one the
    stable set holds is reported there, read, through `on_change`.
    """

    def __init__(
        self,
        reader: TagReader,
        *,
        stable_rounds: int = 2,
        decoder: Decoder | None = None,
        security: Any = None,
        on_change: ChangeCallback | None = None,
        on_sighted: SightedCallback | None = None,
        on_found: FoundCallback | None = None,
        data_model: str = "auto",
        read_retries: int = 2,
        max_blocks: int = 64,
        default_blocks: int = 28,
        reopen_after_failures: int = 3,
        quick_read: bool = True,
    ) -> None:
        self.reader = reader
        self.stable_rounds = max(1, stable_rounds)
        self.decoder = decoder or _default_decoder()
        self.read_eas = getattr(security, "method", "afi") in ("eas", "both")
        self.on_change = on_change
        self.on_sighted = on_sighted
        self.on_found = on_found
        self.data_model = data_model
        self.read_retries = max(0, read_retries)
        self.max_blocks = max_blocks
        self.default_blocks = default_blocks
        self.reopen_after_failures = reopen_after_failures
        self.quick_read = quick_read
        self._present: dict[str, ItemTag] = {}
        # Tags read before the set was stable and not yet in it, those that failed too: an
        # unreadable tag is not read again at every unstable round, only at the stable one.
        self._sighted: dict[str, ItemTag] = {}
        self._candidate: frozenset[str] | None = None
        self._seen_rounds = 0
        # Tags forget() was asked for during the round under way: that round's read of them
        # (begun before) is not kept, or it would undo the forget.
        self._forgotten: set[str] = set()
        # Sightings forget() was asked for: still withdrawn if the tag goes, but read again.
        self._stale: set[str] = set()
        # UIDs told to on_found and not yet settled by a stable round (held, or withdrawn).
        self._found: set[str] = set()
        self._failures = 0
        # Rounds whose inventory answered and rounds whose inventory failed, and the last round's
        # outcome: a caller waiting for the pad's change to show counts the reader's own rounds
        # rather than wall time, and can say what the reader saw when the change never comes.
        self.rounds_answered = 0
        self.rounds_failed = 0
        self.last_change: StackChange | None = None
        self._lock = threading.Lock()  # the stable set; held only for bookkeeping
        self._io_lock = threading.Lock()  # one inventory round at a time
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        # A reader that can tell when its field changed (the simulated pad does) wakes the poll
        # loop at once, so a tag is inventoried when it lands rather than at the next tick.
        pad = getattr(reader, "pad", None)
        subscribe = getattr(pad, "subscribe", None)
        if callable(subscribe):
            subscribe(lambda _pad: self.wake())

    @classmethod
    def from_config(
        cls, reader: TagReader, cfg: Any, on_change: ChangeCallback | None = None
    ) -> StackReader:
        """A stack reader set up from the site configuration ([reader] and [security])."""
        return cls(
            reader,
            stable_rounds=cfg.reader.stable_rounds,
            security=cfg.security,
            on_change=on_change,
            data_model=cfg.reader.data_model,
            read_retries=cfg.reader.retries,
        )

    # -- polling --------------------------------------------------------------------------

    def current(self) -> tuple[ItemTag, ...]:
        """The stable set of decoded tags (kiosk.core.ports.TagEvents)."""
        with self._lock:
            return tuple(self._present.values())

    def update(
        self, uid: str, *, afi: int | None = None, eas: bool | None = None
    ) -> ItemTag | None:
        """Record a tag's new security state after a verified write, without reading it again or
        reporting a change; the updated tag, or None when it is not on the pad."""
        with self._lock:
            tag = self._present.get(uid.upper())
            if tag is None:
                return None
            changes: dict[str, Any] = {}
            if afi is not None:
                changes["afi"] = afi
            if eas is not None:
                changes["eas"] = eas
            tag = self._present[tag.uid] = dataclasses.replace(tag, **changes)
            return tag

    def forget(self, uid: str) -> None:
        """Read this tag again on the next stable round (after a write, or to retry an unreadable one)."""
        uid = uid.upper()
        with self._lock:
            self._present.pop(uid, None)
            if uid in self._sighted:
                self._stale.add(uid)
            self._candidate = None
            self._seen_rounds = 0
            self._forgotten.add(uid)

    def poll_once(self) -> StackChange:
        """One inventory round; reads the new tags and reports a change once the set is stable."""
        change = self._poll()
        with self._lock:
            if change.error:
                self.rounds_failed += 1
            else:
                self.rounds_answered += 1
            self.last_change = change
        return change

    def _poll(self) -> StackChange:
        """One round's work (see poll_once).

        The reader's I/O runs under its own lock, never under the one guarding the stable set:
        a hanging reader must not block `current()` or `update()` on another thread (the UI's).
        The listeners are told after the I/O lock is let go, but for `on_found`, told of new tags
        between the inventory and their read (it only hands the UIDs on)."""
        seen: tuple[ItemTag, ...] = ()
        withdrawn: tuple[ItemTag, ...] = ()
        lost: tuple[str, ...] = ()  # found tags the stable set does not hold
        with self._io_lock:
            try:
                entries = self.reader.inventory()
                self._failures = 0
            except DeviceError as exc:
                self._failures += 1
                log.warning("inventory failed (%d in a row): %s", self._failures, exc)
                if self._failures >= self.reopen_after_failures:
                    self._reopen()
                with self._lock:
                    self._candidate, self._seen_rounds = None, 0
                    return StackChange(tuple(self._present.values()), stable=False, error=str(exc))
            by_uid: dict[str, InventoryEntry] = {}
            for e in entries:
                by_uid.setdefault(e.uid.upper(), e)
            uids = frozenset(by_uid)
            with self._lock:
                if uids == self._candidate:
                    self._seen_rounds += 1
                else:
                    self._candidate, self._seen_rounds = uids, 1
                stable = self._seen_rounds >= self.stable_rounds
                self._forgotten.clear()
                new = [uid for uid in by_uid if uid not in self._present]
                if not stable:
                    fresh = [uid for uid in new if uid not in self._sighted or uid in self._stale]
                    if (self.on_sighted is None and self.on_found is None) or not fresh:
                        return StackChange(tuple(self._present.values()), stable=False)
                    unread = fresh
                else:
                    sighted = {uid: self._sighted.pop(uid) for uid in new if uid in self._sighted}
                    unread = [
                        uid
                        for uid in new
                        if not (
                            (t := sighted.get(uid)) and _sightable(t) and uid not in self._stale
                        )
                    ]
                found = tuple(uid for uid in unread if uid not in self._found)
                if self.on_found is not None:
                    self._found.update(found)
            if found:
                self._tell_found(found, ())
            if not stable:
                change, seen = self._sight([by_uid[uid] for uid in fresh])
            else:
                added = tuple(
                    self._read_tag(by_uid[uid]) if uid in unread else sighted[uid] for uid in new
                )
                with self._lock:
                    # A tag forgotten meanwhile is read again next round; its sighting, if it
                    # had one, is withdrawn now (it is sighted again when read).
                    added = tuple(t for t in added if t.uid not in self._forgotten)
                    removed = tuple(t for uid, t in self._present.items() if uid not in uids)
                    for t in removed:
                        del self._present[t.uid]
                    for t in added:
                        self._present[t.uid] = t
                    withdrawn = tuple(
                        t
                        for t in (
                            *self._sighted.values(),
                            *(t for uid, t in sighted.items() if uid in self._forgotten),
                        )
                        if _sightable(t)
                    )
                    self._sighted.clear()
                    self._stale.clear()
                    lost = tuple(uid for uid in self._found if uid not in self._present)
                    self._found.clear()
                    change = StackChange(tuple(self._present.values()), added, removed)
        if lost:
            self._tell_found((), lost)
        if seen or withdrawn:
            self._tell_sighted(seen, withdrawn)
        if change.changed and self.on_change is not None:
            try:
                self.on_change(change.present, change.added, change.removed)
            except Exception as exc:  # the reader thread must survive a faulty listener
                log_fault(log, exc, "stack change listener failed")
        return change

    def _sight(self, entries: list[InventoryEntry]) -> tuple[StackChange, tuple[ItemTag, ...]]:
        """An unstable round's new tags, read now (the caller holds the I/O lock); those that read
        and decode are kept for the stable round and returned, to be told to `on_sighted`."""
        read = [self._read_tag(e) for e in entries]
        with self._lock:
            read = [t for t in read if t.uid not in self._forgotten]
            for t in read:
                self._sighted[t.uid] = t
                self._stale.discard(t.uid)
            change = StackChange(tuple(self._present.values()), stable=False)
        return change, tuple(t for t in read if _sightable(t))

    def _tell_sighted(self, sighted: tuple[ItemTag, ...], withdrawn: tuple[ItemTag, ...]) -> None:
        self._tell(self.on_sighted, sighted, withdrawn, "sighting")

    def _tell_found(self, found: tuple[str, ...], lost: tuple[str, ...]) -> None:
        self._tell(self.on_found, found, lost, "finding")

    @staticmethod
    def _tell(listener: Callable[[Any, Any], None] | None, new: Any, gone: Any, what: str) -> None:
        if listener is None:
            return
        try:
            listener(new, gone)
        except Exception as exc:  # the reader thread must survive a faulty listener
            log_fault(log, exc, "stack %s listener failed", what)

    def _reopen(self) -> None:
        try:
            self.reader.reopen()
            log.info(
                "re-opened %s after repeated inventory failures",
                getattr(self.reader, "url", "the reader"),
            )
        except DeviceError as exc:
            log.warning("re-opening the reader failed: %s", exc)
        self._failures = 0

    def _read_tag(self, entry: InventoryEntry) -> ItemTag:
        uid = entry.uid.upper()
        info: SystemInfo | None = None
        memory: bytes | None = None
        # The head first (docs/protocols/rfid.md §7.7): when the inventory gave the tag's DSFID,
        # its first nine 4-byte blocks are read before its system information, and a head that
        # holds the whole tag needs no system information at all. None: not read yet; b"": read
        # and of no use (refused, or blocks of another size), so the tag is read as before.
        head: bytes | None = None if self.quick_read and entry.dsfid is not None else b""
        last_error = ""
        for attempt in range(self.read_retries + 1):
            try:
                if head is None:
                    head = self._read_head(uid)
                    if head and self._complete(head, entry.dsfid):
                        memory = head
                        break
                if info is None:
                    try:
                        info = self.reader.read_system_info(uid)
                    except NotSupported:
                        info = SystemInfo(
                            uid=uid,
                            dsfid=entry.dsfid,
                            afi=entry.afi,
                            block_size=4,
                            block_count=None,
                        )
                memory = self._read_memory(
                    uid, info, info.dsfid if info.dsfid is not None else entry.dsfid, head
                )
                break
            except DeviceError as exc:
                last_error = str(exc)
                log.info("reading tag %s failed (attempt %d): %s", uid, attempt + 1, exc)
        afi = info.afi if info and info.afi is not None else entry.afi
        eas = self._eas(uid) if self.read_eas and memory is not None else None
        if memory is None:
            return ItemTag(
                uid=uid,
                afi=afi,
                eas=eas,
                error=f"tag could not be read after {self.read_retries + 1} attempts: {last_error}",
            )
        dsfid = info.dsfid if info and info.dsfid is not None else entry.dsfid
        try:
            data = self.decoder(
                memory,
                model=self.data_model,
                block_size=info.block_size if info else 4,
                dsfid=dsfid,
            )
        except TagFormatError as exc:
            return ItemTag(uid=uid, afi=afi, eas=eas, error=f"tag data not understood: {exc}")
        if not data.item_id:
            return ItemTag(
                uid=uid, afi=afi, eas=eas, model=data.model, error="tag holds no item id"
            )
        return ItemTag(
            uid=uid,
            item_id=data.item_id,
            part_number=data.part_number,
            parts_in_set=data.parts_in_set,
            owner_institution=data.owner_institution,
            model=data.model,
            afi=afi,
            eas=eas,
        )

    def _read_head(self, uid: str) -> bytes:
        """The tag's first nine 4-byte blocks, or b"" when the tag refuses them (it has fewer) or
        the reader gives blocks of another size; a tag that does not answer raises, as any read."""
        try:
            head = self.reader.read_blocks(uid, 0, QUICK_BYTES // 4)
        except (DeviceTimeout, TagNotFound):
            raise
        except DeviceError as exc:
            log.info("tag %s refused its first %d blocks (%s)", uid, QUICK_BYTES // 4, exc)
            return b""
        return head if len(head) == QUICK_BYTES else b""

    def _read_memory(
        self, uid: str, info: SystemInfo, dsfid: int | None, head: bytes | None = None
    ) -> bytes:
        """The tag's user memory; with quick_read, only the basic block when that is all there is.
        `head`, the first nine blocks when they were read already, is not read again."""
        total = min(info.block_count, self.max_blocks) if info.block_count else None
        head_blocks = QUICK_BYTES // 4
        if info.block_size != 4:
            head = b""  # nine blocks of another size: not the head read as 4-byte blocks
        elif not head and self.quick_read and (total is None or total > head_blocks):
            head = self.reader.read_blocks(uid, 0, head_blocks)
            if self._complete(head, dsfid):
                return head
        if head:
            if total is not None and total <= head_blocks:
                return head[: total * 4]
            if total is None:
                return head + self._read_unknown_size(uid, start=head_blocks)
            return head + self._read_known_size(uid, head_blocks, total - head_blocks)
        if total is None:
            return self._read_unknown_size(uid)
        return self._read_known_size(uid, 0, total)

    def _complete(self, head: bytes, dsfid: int | None) -> bool:
        """Whether the first 36 bytes hold the whole tag: an ISO 28560-3 basic block with no
        extension block after it (byte 34 is the 0x00 end marker), or a 32-byte RFID 501 layout."""
        try:
            data = self.decoder(head, model=self.data_model, block_size=4, dsfid=dsfid)
        except TagFormatError:
            return False
        if not data.item_id:
            return False
        if data.model == "rfid501":
            return True
        if data.model != "iso28560-3":
            return False  # ISO 28560-2 objects run on: read the rest
        # byte 34 in tag order; with each 4-byte block reversed it sits at offset 33
        marker = head[33] if data.block_order == "reversed" else head[34]
        return marker == 0

    def _read_known_size(self, uid: str, first: int, count: int) -> bytes:
        try:
            return self.reader.read_blocks(uid, first, count)
        except (DeviceTimeout, TagNotFound):
            raise
        except DeviceError as exc:
            # Readers disagree on whether system information counts blocks as value - 1 (docs/protocols/rfid.md
            # P13); a refused last block means the count was one too many.
            log.info(
                "tag %s refused blocks %d..%d (%s); trying one fewer",
                uid,
                first,
                first + count - 1,
                exc,
            )
            if count <= 1:
                raise
            return self.reader.read_blocks(uid, first, count - 1)

    def _read_unknown_size(self, uid: str, chunk: int = 4, start: int = 0) -> bytes:
        """Memory of a tag whose size the reader cannot tell: chunks until the tag refuses one."""
        memory = bytearray(self.reader.read_blocks(uid, start, chunk) if start == 0 else b"")
        while start + len(memory) // 4 + chunk <= self.default_blocks:
            try:
                memory += self.reader.read_blocks(uid, start + len(memory) // 4, chunk)
            except DeviceError:
                break
        return bytes(memory)

    def _eas(self, uid: str) -> bool | None:
        try:
            return self.reader.eas(uid)
        except DeviceError as exc:
            log.info("reading EAS of tag %s failed: %s", uid, exc)
            return None

    # -- background thread ---------------------------------------------------------------------

    def wake(self) -> None:
        """Run the next inventory now instead of after the poll interval (the field changed)."""
        self._wake.set()

    def start(self, interval_s: float = 0.2) -> None:
        """Poll in a background thread every `interval_s`; changes go to on_change from that thread.

        An inventory that is not yet stable is confirmed by the next round at once, not after
        another interval: a new tag is reported after `stable_rounds` inventories plus its read,
        whatever the interval (docs/performance.md)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, args=(interval_s,), name="stack-reader", daemon=True
        )
        self._thread.start()

    def _run(self, interval_s: float) -> None:
        # Confirmation rounds run back to back, but a set that keeps changing (a stack being
        # placed, a detuned tag flickering) must not spin the reader: after this many unstable
        # rounds in a row the loop waits the interval again.
        max_quick = 2 * self.stable_rounds + 2
        quick = 0
        while not self._stop.is_set():
            change: StackChange | None = None
            try:
                change = self.poll_once()
            except Exception as exc:  # never let the pad thread die silently
                log_fault(log, exc, "stack poll failed")
            if change is not None and not change.stable and not change.error and quick < max_quick:
                quick += 1
                continue
            quick = 0
            self._wake.wait(interval_s)
            self._wake.clear()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
