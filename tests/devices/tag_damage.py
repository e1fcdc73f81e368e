"""Damaged tags: valid tags of each data model, corrupted the ways tags and readers fail, and
what the autodetecting decoder makes of them (read right, refused, or misread).

Run: .venv/bin/python tests/devices/tag_damage.py [--per-model 100000] [--seed 1]
prints, per model and corruption kind, how many tags were tried, read right, refused and
misread. The tests (test_tags_damage.py) hold the misread count at 0.

Corruption kinds: ``bit-flip`` (1-3 bits anywhere in the read, padding included),
``truncation`` (the read cut short), ``block-reversal`` (every 4-byte block delivered
byte-reversed, or 8-byte blocks reversed) and ``status-bytes`` (a reader's per-block status byte, or a header byte, left
in the data).

``intact`` tags are decoded as delivered, to show what the decoder refuses of good tags.

ISO 28560-2 and 3M RFID 501 tags carry no check value, so a flipped bit inside the bytes that
hold the item id can turn it into another valid id that no decoder can tell from the real
one. Such readings are counted apart as ``no-check``: a bit flip read as the same model, where
putting back the bytes of the item id's own object (ISO 28560-2: precursor, length and data;
RFID 501: the barcode field) gives the right id, or a refusal. Every other wrong id is a
``misread``.
"""

from __future__ import annotations

import argparse
import random
import string
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from kiosk.devices.errors import TagFormatError
from kiosk.devices.tags import DSFID_ISO28560_2, DSFID_ISO28560_3, TagData, decode, encode

MODELS = ("iso28560-3", "iso28560-2", "rfid501")
KINDS = ("intact", "bit-flip", "truncation", "block-reversal", "status-bytes")
OUTCOMES = ("read", "refused", "misread", "no-check")
READ_SIZES = (32, 36, 40, 64, 112)  # ICODE SLI/SLIX user memories and partial reads
BLOCK = 4
_ISILS = ("DK-718500", "DE-705", "FI-Mamk-M", "LV-RCB", "NO-02030000", "SE-Ab", "")


@dataclass(frozen=True)
class Tag:
    """One intact tag as a reader delivers it, and where its item id's bytes are."""

    model: str
    item_id: str
    memory: bytes
    dsfid: int | None
    id_bytes: frozenset[int]


@dataclass(frozen=True)
class Damaged:
    tag: Tag
    kind: str
    memory: bytes


def _item_id(rng: random.Random, longest: int) -> str:
    shape = rng.random()
    if shape < 0.6:
        digits = rng.randint(6, min(14, longest))
        return str(rng.randint(1, 9)) + "".join(rng.choices(string.digits, k=digits - 1))
    if shape < 0.8:
        return "".join(rng.choices(string.digits, k=rng.randint(6, min(14, longest))))
    rest = rng.choices(string.ascii_uppercase + string.digits + "-", k=rng.randint(2, longest - 1))
    return rng.choice(string.ascii_uppercase) + "".join(rest)


def _read(memory: bytes, rng: random.Random) -> bytes:
    size = rng.choice([s for s in READ_SIZES if s >= len(memory)] or [len(memory)])
    return memory + bytes(size - len(memory))


def make_tag(rng: random.Random, model: str) -> Tag:
    """A valid tag of ``model`` with random contents, padded to a reader's read size."""
    if model == "iso28560-3":
        owner = rng.choice(_ISILS)
        short = len(owner) <= 12 and rng.random() < 0.3
        data = TagData(
            model,
            _item_id(rng, 16),
            *_set(rng, 3),
            owner,
            rng.choice("1127"),
            extra={"basic_block_size": 32} if short else {},
        )
        raw = encode(data)
        id_bytes = frozenset(range(3, 19))
        dsfid = rng.choice([None, DSFID_ISO28560_3])
    elif model == "iso28560-2":
        extra: dict[str, str] = {}
        if rng.random() < 0.3:
            extra["shelf_location"] = rng.choice(["QA268.L55", "821 ZA", "J 5"])
        if rng.random() < 0.2:
            extra["title"] = rng.choice(["Zaļā grāmata", "Test", "Kalevala"])
        data = TagData(
            model,
            _item_id(rng, 20),
            *_set(rng, 3),
            rng.choice(_ISILS),
            rng.choice(["", "10", "12"]),
            extra=extra,
        )
        raw = encode(data)
        # The whole item id object: precursor, pad count, length, data and padding.
        length_at = 2 if raw[0] & 0x80 else 1
        pad = raw[1] if raw[0] & 0x80 else 0
        id_bytes = frozenset(range(length_at + 1 + raw[length_at] + pad))
        dsfid = rng.choice([None, DSFID_ISO28560_2])
    else:
        data = TagData(
            model,
            _item_id(rng, 16).replace("-", "")[:16] or "1",
            *_set(rng, 3),
            "",
            rng.choice(["book", "cd", "other", "magazine"]),
            extra={"branch": rng.randint(0, 4095), "library": rng.randint(0, 0xFFFFF)},
        )
        raw = encode(data)
        id_bytes = frozenset(range(4, 20))
        dsfid = None
    return Tag(model, data.item_id, _read(raw, rng), dsfid, id_bytes)


def _set(rng: random.Random, most: int) -> tuple[int, int]:
    parts = rng.randint(1, most)
    return rng.randint(1, parts), parts


def _reverse(memory: bytes, size: int) -> bytes:
    return b"".join(memory[i : i + size][::-1] for i in range(0, len(memory), size))


def damage(rng: random.Random, tag: Tag, kind: str) -> Damaged:
    mem = tag.memory
    if kind == "intact":
        return Damaged(tag, kind, mem)
    if kind == "bit-flip":
        count = rng.choices((1, 2, 3), weights=(7, 2, 1))[0]
        flips = rng.sample(range(len(mem) * 8), count)
        out = bytearray(mem)
        for bit in flips:
            out[bit // 8] ^= 1 << (bit % 8)
        return Damaged(tag, kind, bytes(out))
    if kind == "truncation":
        return Damaged(tag, kind, mem[: rng.randrange(1, len(mem))])
    if kind == "block-reversal":
        # A reader delivering every block byte-reversed, or reversing 8-byte blocks of a tag
        # read with 4-byte ones (a wrong block size in its set-up).
        return Damaged(tag, kind, _reverse(mem, 8 if rng.random() < 0.3 else BLOCK))
    if kind == "status-bytes":
        if rng.random() < 0.25:
            return Damaged(tag, kind, bytes([rng.choice((0x00, 0x01, 0x02, 0x11, 0x04))]) + mem)
        statuses = rng.choice([(0x00,), (0x01,), (0x00, 0x01), (0x00, 0x01, 0x02)])
        out = bytearray()
        for i in range(0, len(mem), BLOCK):
            out.append(rng.choice(statuses))
            out += mem[i : i + BLOCK]
        return Damaged(tag, kind, bytes(out))
    raise ValueError(f"unknown corruption kind {kind!r}")


def outcome(damaged: Damaged) -> tuple[str, TagData | None, str]:
    """('read' | 'refused' | 'misread' | 'no-check', the decoded tag, the refusal reason)."""
    tag = damaged.tag
    try:
        got = decode(damaged.memory, dsfid=tag.dsfid)
    except TagFormatError as exc:
        return "refused", None, str(exc)
    if got.item_id == tag.item_id:
        return "read", got, ""
    return ("no-check" if _only_id_bytes_to_blame(damaged, got) else "misread"), got, ""


def _only_id_bytes_to_blame(damaged: Damaged, got: TagData) -> bool:
    """Whether the wrong id comes from damage to the id's own bytes of a model without a check
    value: with those bytes put back, the same memory reads the right id."""
    tag = damaged.tag
    if tag.model == "iso28560-3" or got.model != tag.model or damaged.kind != "bit-flip":
        return False
    restored = bytearray(damaged.memory)
    changed = {i for i in tag.id_bytes if restored[i] != tag.memory[i]}
    for i in changed:
        restored[i] = tag.memory[i]
    try:
        return bool(changed) and decode(bytes(restored), dsfid=tag.dsfid).item_id == tag.item_id
    except TagFormatError:
        return True  # the rest of the damage is found once the id object is whole again


def corpus(per_model: int, seed: int) -> Iterator[Damaged]:
    """``per_model`` damaged tags of each model, the corruption kinds in turn."""
    rng = random.Random(seed)
    for model in MODELS:
        for n in range(per_model):
            yield damage(rng, make_tag(rng, model), KINDS[n % len(KINDS)])


def measure(
    per_model: int, seed: int = 1
) -> tuple[dict[tuple[str, str], Counter[str]], list[Damaged]]:
    """Outcome counts per (model, kind), and every misread tag."""
    counts: dict[tuple[str, str], Counter[str]] = {
        (m, k): Counter({o: 0 for o in OUTCOMES}) for m in MODELS for k in KINDS
    }
    misread: list[Damaged] = []
    for damaged in corpus(per_model, seed):
        result = outcome(damaged)[0]
        counts[(damaged.tag.model, damaged.kind)][result] += 1
        if result == "misread":
            misread.append(damaged)
    return counts, misread


def table(counts: dict[tuple[str, str], Counter[str]]) -> str:
    lines = [
        f"{'model':12} {'corruption':15} {'tried':>8} {'read':>8} {'refused':>8} {'refused %':>9}"
        f" {'misread':>8} {'no-check':>8}"
    ]
    for (model, kind), c in counts.items():
        tried = sum(c.values())
        lines.append(
            f"{model:12} {kind:15} {tried:8d} {c['read']:8d} {c['refused']:8d}"
            f" {100 * c['refused'] / max(tried, 1):8.1f}% {c['misread']:8d} {c['no-check']:8d}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-model", type=int, default=100_000, help="damaged tags per model")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    counts, misread = measure(args.per_model, args.seed)
    print(table(counts))
    for damaged in misread[:20]:
        got = outcome(damaged)[1]
        print(
            f"MISREAD {damaged.tag.model} {damaged.kind}: {damaged.memory.hex()} "
            f"dsfid={damaged.tag.dsfid} id={damaged.tag.item_id!r} -> {got}"
        )
    return 1 if misread else 0


if __name__ == "__main__":
    sys.exit(main())
