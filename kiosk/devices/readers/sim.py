"""The simulated RFID pad: a first-class reader transport holding virtual ISO 15693 tags, with
injectable faults (read misses, failed or silently lost writes, delays, disconnects) and an
optional air-interface timing model, driven by the demo panel and by tests.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from kiosk import demo_catalog
from kiosk.core.errors import log_fault
from kiosk.devices import tags
from kiosk.devices.errors import DeviceError, DeviceTimeout
from kiosk.devices.readers.base import (
    InventoryEntry,
    NotSupported,
    SystemInfo,
    TagNotFound,
    TagReader,
    TagWriteError,
    check_afi,
    check_blocks,
    normalize_uid,
)

log = logging.getLogger(__name__)

# ISO 15693 high data rate (fc/512, ~26.5 kbit/s) with an approximate per-exchange overhead for
# SOF/EOF, request framing and the t1/t2 waiting times; good enough to compare against.
ISO15693_BIT_S = 1 / 26_480
ISO15693_EXCHANGE_OVERHEAD_S = 0.0006
ISO15693_SLOTS = 16


@dataclass
class VirtualTag:
    """One simulated tag; memory is in tag order. Mutable: it is device state, not a value."""

    uid: str
    memory: bytearray = field(default_factory=lambda: bytearray(112))
    afi: int = 0x00
    eas: bool = False
    dsfid: int = 0x00
    block_size: int = 4
    eas_supported: bool = True  # TI Tag-it HF-I has no EAS bit
    afi_locked: bool = False
    label: str = ""  # what a person would call it, e.g. "30000005 (2/3)", for the demo panel
    item_id: str = ""  # the demo item this tag belongs to, if any

    def __post_init__(self) -> None:
        self.uid = normalize_uid(self.uid)
        self.memory = bytearray(self.memory)
        rem = len(self.memory) % self.block_size
        if rem:
            self.memory += bytes(self.block_size - rem)

    @property
    def block_count(self) -> int:
        return len(self.memory) // self.block_size


@dataclass
class _WriteFault:
    count: int
    silent: bool


class SimulatedPad:
    """The tags lying on a simulated pad, plus the faults to inject. Thread-safe."""

    def __init__(
        self,
        *,
        timing: str | None = None,
        miss_probability: float = 0.0,
        seed: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if timing not in (None, "iso15693"):
            raise DeviceError(f"simulated pad timing must be None or 'iso15693', got {timing!r}")
        self.timing = timing
        self.miss_probability = miss_probability
        self._rng = random.Random(seed)
        self._sleep = sleep
        self._lock = threading.RLock()
        self._tags: dict[str, VirtualTag] = {}
        self._inventory_misses: dict[str, int] = {}
        self._read_failures: dict[str, int] = {}
        self._write_faults: dict[str, _WriteFault] = {}
        self._delays: dict[str, float] = {}
        self._lift_after_write: dict[str, int] = {}
        self.connected = True
        self.air_time_s = 0.0
        # (operation, uid), most recent last; bounded so a long-running demo does not grow it forever
        self.operations: deque[tuple[str, str]] = deque(maxlen=2000)
        self._listeners: list[Callable[[SimulatedPad], None]] = []

    # -- placing tags -----------------------------------------------------------------------

    def place(self, tag: VirtualTag) -> VirtualTag:
        with self._lock:
            self._tags[tag.uid] = tag
        self._notify()
        return tag

    def remove(self, uid: str) -> VirtualTag | None:
        with self._lock:
            tag = self._tags.pop(normalize_uid(uid), None)
        self._notify()
        return tag

    def clear(self) -> None:
        with self._lock:
            self._tags.clear()
        self._notify()

    @property
    def tags(self) -> tuple[VirtualTag, ...]:
        with self._lock:
            return tuple(self._tags.values())

    def tag(self, uid: str) -> VirtualTag | None:
        with self._lock:
            return self._tags.get(normalize_uid(uid))

    def tags_for(self, item_id: str) -> tuple[VirtualTag, ...]:
        """The tags of one item on the pad (all parts of a set)."""
        with self._lock:
            return tuple(t for t in self._tags.values() if t.item_id == item_id)

    def subscribe(self, listener: Callable[[SimulatedPad], None]) -> None:
        """Called (on the placing thread) whenever tags are placed or removed."""
        self._listeners.append(listener)

    def _notify(self) -> None:
        for listener in list(self._listeners):
            try:
                listener(self)
            except Exception as exc:  # a broken listener must not break the pad
                log_fault(log, exc, "simulated pad listener failed")

    # -- faults -----------------------------------------------------------------------------

    def miss_inventory(self, uid: str, rounds: int = 1) -> None:
        """The tag is absent from the next `rounds` inventories (a detuned tag in a stack)."""
        with self._lock:
            self._inventory_misses[normalize_uid(uid)] = rounds

    def fail_reads(self, uid: str, count: int = 1) -> None:
        """The next `count` block or system-information reads of this tag get no answer."""
        with self._lock:
            self._read_failures[normalize_uid(uid)] = count

    def fail_writes(self, uid: str, count: int = 1, *, silent: bool = False) -> None:
        """The next `count` writes to this tag fail; silently (reported OK, nothing written) if asked."""
        with self._lock:
            self._write_faults[normalize_uid(uid)] = _WriteFault(count, silent)

    def lift_after_write(self, uid: str, writes: int = 1) -> None:
        """The patron lifts the tag right after the `writes`-th next write to it lands (AFI, EAS
        or blocks): the write took effect but nothing can read it back."""
        with self._lock:
            self._lift_after_write[normalize_uid(uid)] = writes

    def _landed(self, tag: VirtualTag) -> None:
        left = self._lift_after_write.get(tag.uid, 0)
        if not left:
            return
        if left > 1:
            self._lift_after_write[tag.uid] = left - 1
            return
        del self._lift_after_write[tag.uid]
        self._tags.pop(tag.uid, None)
        self.operations.append(("lifted", tag.uid))

    def set_delay(self, operation: str, seconds: float) -> None:
        """Extra time for an operation: inventory, read, write, system_info, afi, eas."""
        with self._lock:
            self._delays[operation] = seconds

    def disconnect(self) -> None:
        """The whole reader goes away (unplugged) until reconnect()."""
        self.connected = False

    def reconnect(self) -> None:
        self.connected = True

    def reset_faults(self) -> None:
        with self._lock:
            self._inventory_misses.clear()
            self._read_failures.clear()
            self._write_faults.clear()
            self._delays.clear()
            self._lift_after_write.clear()
        self.miss_probability = 0.0
        self.connected = True

    # -- used by SimReader and the frame emulators ---------------------------------------------

    def _begin(self, operation: str, uid: str = "") -> None:
        if not self.connected:
            raise DeviceError("simulated reader is disconnected; reconnect it in the demo panel")
        self.operations.append((operation, uid))
        delay = self._delays.get(operation, 0.0)
        if delay:
            self._sleep(delay)

    def _air(self, seconds: float) -> None:
        if self.timing == "iso15693":
            self.air_time_s += seconds
            self._sleep(seconds)

    @staticmethod
    def _exchange_time(request_bytes: int, response_bytes: int) -> float:
        return (request_bytes + response_bytes) * 8 * ISO15693_BIT_S + ISO15693_EXCHANGE_OVERHEAD_S

    def _missed(self) -> bool:
        return self.miss_probability > 0 and self._rng.random() < self.miss_probability

    def inventory_tags(self) -> list[VirtualTag]:
        with self._lock:
            self._begin("inventory")
            out = []
            for uid, tag in self._tags.items():
                left = self._inventory_misses.get(uid, 0)
                if left:
                    self._inventory_misses[uid] = left - 1
                    continue
                if self._missed():
                    continue
                out.append(tag)
            # 16 slots per round, each tag answering with DSFID + UID (10 bytes + flags, CRC)
            self._air(
                ISO15693_SLOTS * ISO15693_EXCHANGE_OVERHEAD_S
                + len(out) * self._exchange_time(3, 12)
            )
            return out

    def _tag_for(self, operation: str, uid: str) -> VirtualTag:
        uid = normalize_uid(uid)
        self._begin(operation, uid)
        tag = self._tags.get(uid)
        if tag is None:
            raise TagNotFound(f"simulated reader: tag {uid} is not on the pad")
        if operation in ("read", "system_info", "eas"):
            left = self._read_failures.get(uid, 0)
            if left:
                self._read_failures[uid] = left - 1
                raise DeviceTimeout(
                    f"simulated reader: tag {uid} did not answer (injected read miss)"
                )
            if self._missed():
                raise DeviceTimeout(
                    f"simulated reader: tag {uid} did not answer (random read miss)"
                )
        return tag

    def _write_fault(self, uid: str) -> bool:
        """True when this write must be lost silently; raises for a reported failure."""
        fault = self._write_faults.get(uid)
        if not fault or fault.count <= 0:
            return False
        fault.count -= 1
        if fault.silent:
            return True
        raise TagWriteError(f"simulated reader: writing tag {uid} failed (injected write error)")

    def read(self, uid: str, first: int, count: int) -> bytes:
        with self._lock:
            tag = self._tag_for("read", uid)
            check_blocks(first, count, tag.block_count)
            self._air(self._exchange_time(12, 3 + count * tag.block_size))
            return bytes(tag.memory[first * tag.block_size : (first + count) * tag.block_size])

    def write(self, uid: str, first: int, data: bytes) -> None:
        with self._lock:
            tag = self._tag_for("write", uid)
            if not data or len(data) % tag.block_size:
                raise DeviceError(
                    f"write of {len(data)} bytes is not whole {tag.block_size}-byte blocks"
                )
            check_blocks(first, len(data) // tag.block_size, tag.block_count)
            self._air(len(data) // tag.block_size * self._exchange_time(13 + tag.block_size, 3))
            if self._write_fault(tag.uid):
                return
            tag.memory[first * tag.block_size : first * tag.block_size + len(data)] = data
            self._landed(tag)

    def system_info(self, uid: str) -> SystemInfo:
        with self._lock:
            tag = self._tag_for("system_info", uid)
            self._air(self._exchange_time(12, 17))
            return SystemInfo(tag.uid, tag.dsfid, tag.afi, tag.block_size, tag.block_count, 0x01)

    def write_afi(self, uid: str, afi: int) -> None:
        with self._lock:
            tag = self._tag_for("afi", uid)
            self._air(self._exchange_time(13, 3))
            if tag.afi_locked:
                raise TagWriteError(
                    f"simulated reader: tag {tag.uid} has a locked AFI (ISO error 0x12)"
                )
            if self._write_fault(tag.uid):
                return
            tag.afi = check_afi(afi)
            self._landed(tag)

    def set_eas(self, uid: str, on: bool) -> None:
        with self._lock:
            tag = self._tag_for("eas", uid)
            self._air(self._exchange_time(13, 3))
            if not tag.eas_supported:
                raise NotSupported(
                    f"simulated reader: tag {tag.uid} has no EAS bit (use AFI security)"
                )
            if self._write_fault(tag.uid):
                return
            tag.eas = on
            self._landed(tag)

    def get_eas(self, uid: str) -> bool:
        with self._lock:
            tag = self._tag_for("eas", uid)
            return tag.eas if tag.eas_supported else False


class SimReader(TagReader):
    """A TagReader on a SimulatedPad."""

    def __init__(self, pad: SimulatedPad, name: str = "default") -> None:
        self.pad = pad
        self.url = f"sim:{name}" if name != "default" else "sim:"
        self.closed = False

    def _check_open(self) -> None:
        if self.closed:
            raise DeviceError("simulated reader is closed; reopen() it")

    def inventory(self) -> list[InventoryEntry]:
        self._check_open()
        return [InventoryEntry(t.uid, t.dsfid, t.afi) for t in self.pad.inventory_tags()]

    def read_blocks(self, uid: str, first: int, count: int) -> bytes:
        self._check_open()
        return self.pad.read(uid, first, count)

    def write_blocks(self, uid: str, first: int, data: bytes) -> None:
        self._check_open()
        self.pad.write(uid, first, bytes(data))

    def read_system_info(self, uid: str) -> SystemInfo:
        self._check_open()
        return self.pad.system_info(uid)

    def write_afi(self, uid: str, afi: int) -> None:
        self._check_open()
        self.pad.write_afi(uid, afi)

    def set_eas(self, uid: str, on: bool) -> None:
        self._check_open()
        self.pad.set_eas(uid, on)

    def eas(self, uid: str) -> bool | None:
        self._check_open()
        return self.pad.get_eas(uid)

    def close(self) -> None:
        self.closed = True

    def reopen(self) -> None:
        self.closed = False


_SHARED: dict[str, SimulatedPad] = {}
_SHARED_LOCK = threading.Lock()


def get_shared_pad(name: str = "default") -> SimulatedPad:
    """The process-wide pad called `name`: `sim:` and `sim:name` readers and the demo panel share it."""
    name = name or "default"
    with _SHARED_LOCK:
        pad = _SHARED.get(name)
        if pad is None:
            pad = _SHARED[name] = SimulatedPad()
        return pad


def demo_uid(item_id: str, part: int = 1) -> str:
    """A stable NXP-style UID (E0 04 01 …) for a demo item's part, so runs are repeatable."""
    digest = hashlib.sha256(f"{item_id}/{part}".encode()).digest()
    return ("E00401" + digest[:5].hex()).upper()


def demo_tag(
    item_id: str,
    part: int = 1,
    parts: int | None = None,
    model: str = "iso28560-3",
    secured: bool = True,
    *,
    afi_secured: int = 0x07,
    afi_unsecured: int = 0xC2,
    memory_bytes: int = 112,
    uid: str | None = None,
) -> VirtualTag:
    """A virtual tag for a demo item (kiosk/demo_catalog.py), encoded with the project's tag encoder.

    `parts` defaults to the catalogue's number of parts; unknown item ids are allowed (a tag for an
    item the library system does not know).
    """

    known = demo_catalog.item(item_id)
    if parts is None:
        parts = known.parts_in_set if known else 1
    owner = known.owner if known else demo_catalog.OWNER_ISIL
    data = tags.TagData(
        model=model, item_id=item_id, part_number=part, parts_in_set=parts, owner_institution=owner
    )
    memory = bytearray(tags.encode(data, model=model))
    if len(memory) < memory_bytes:
        memory += bytes(memory_bytes - len(memory))
    dsfid = {"iso28560-3": tags.DSFID_ISO28560_3, "iso28560-2": tags.DSFID_ISO28560_2}.get(
        model, 0x00
    )
    return VirtualTag(
        uid=uid or demo_uid(item_id, part),
        memory=memory,
        dsfid=dsfid,
        afi=afi_secured if secured else afi_unsecured,
        eas=secured,
        label=item_id if parts == 1 else f"{item_id} ({part}/{parts})",
        item_id=item_id,
    )
