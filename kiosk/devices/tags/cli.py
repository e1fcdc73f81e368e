"""The `kiosk tag` technician command: decode tag memory to JSON and encode item data to hex."""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

from kiosk.devices.errors import TagFormatError
from kiosk.devices.tags import MODELS, TagData, decode, encode

EXIT_BAD_TAG = 2
_HEX_SEPARATORS = re.compile(r"[\s:,\-]")


def register(subparsers: Any) -> None:
    tag = subparsers.add_parser("tag", help="decode or encode library RFID tag memory")
    sub = tag.add_subparsers(dest="tag_command", metavar="ACTION", required=True)

    dec = sub.add_parser("decode", help="decode tag user memory (hex) and print it as JSON")
    dec.add_argument(
        "hex",
        nargs="+",
        help="user memory from block 0, hex (spaces and colons allowed); - reads stdin",
    )
    dec.add_argument("--model", default="auto", choices=("auto", *MODELS))
    dec.add_argument("--dsfid", type=_byte, help="the tag's DSFID (hex, e.g. 06 or 0x3E) as a hint")
    dec.add_argument("--block-size", type=int, default=4, help="bytes per block (default 4)")
    dec.add_argument(
        "--block-order",
        default="auto",
        choices=("auto", "normal", "reversed"),
        help="byte order inside each block as read (auto: by CRC, else as read)",
    )
    dec.set_defaults(func=_decode)

    enc = sub.add_parser("encode", help="encode item data and print the tag user memory as hex")
    enc.add_argument("--model", required=True, choices=MODELS)
    enc.add_argument("--item-id", required=True)
    enc.add_argument("--set", dest="set_info", metavar="N/M", help="part N of a set of M parts")
    enc.add_argument("--owner", default="", help="owner institution ISIL, e.g. DK-718500")
    enc.add_argument(
        "--type-of-usage",
        default="",
        help="ISO 28560-3: one hex digit (1 circulating); ISO 28560-2: hex byte (10); "
        "rfid501: item type (book, cd, ... or a number)",
    )
    enc.add_argument("--block-order", default="normal", choices=("normal", "reversed"))
    enc.add_argument("--block-size", type=int, default=4)
    enc.add_argument("--truncated", action="store_true", help="ISO 28560-3: 32-byte basic block")
    enc.add_argument(
        "--field",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="another element, e.g. title=... or shelf_location=... (ISO 28560-2)",
    )
    enc.set_defaults(func=_encode)


def _byte(text: str) -> int:
    try:
        value = int(text, 16)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a hex byte: {text!r}") from None
    if not 0 <= value <= 0xFF:
        raise argparse.ArgumentTypeError(f"not a byte: {text!r}")
    return value


def parse_hex(parts: list[str] | str) -> bytes:
    """Tag memory from hex text that may contain spaces, colons, commas or dashes."""
    text = _HEX_SEPARATORS.sub("", "".join(parts) if isinstance(parts, list) else parts)
    text = text.removeprefix("0x").removeprefix("0X")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise TagFormatError(f"not hex tag memory: {text[:40]!r}") from None


def _fail(message: str) -> int:
    print(json.dumps({"error": message}))
    return EXIT_BAD_TAG


def _decode(args: argparse.Namespace) -> int:
    try:
        memory = parse_hex(sys.stdin.read() if args.hex == ["-"] else args.hex)
        data = decode(
            memory,
            model=args.model,
            block_size=args.block_size,
            dsfid=args.dsfid,
            block_order=args.block_order,
        )
    except TagFormatError as exc:
        return _fail(str(exc))
    print(json.dumps(data.to_json(), ensure_ascii=False, indent=2))
    return 0


def _encode(args: argparse.Namespace) -> int:
    try:
        part, parts = _parse_set(args.set_info)
        extra: dict[str, Any] = {}
        for item in args.field:
            name, sep, value = item.partition("=")
            if not sep or not name:
                raise TagFormatError(f"--field needs NAME=VALUE, not {item!r}")
            extra[name.strip()] = value
        if args.truncated:
            extra["basic_block_size"] = 32
        data = TagData(
            model=args.model,
            item_id=args.item_id,
            part_number=part,
            parts_in_set=parts,
            owner_institution=args.owner,
            type_of_usage=args.type_of_usage,
            extra=extra,
        )
        memory = encode(data, block_size=args.block_size, block_order=args.block_order)
        _refuse_unwritten_fields(args, extra, memory)
    except TagFormatError as exc:
        return _fail(str(exc))
    sys.stdout.write(memory.hex().upper() + "\n")
    return 0


# Encoder options given as --field that are not elements of their own, so decoding cannot show them.
_ENCODER_OPTIONS = {
    "iso28560-2": frozenset({"aligned", "application_defined"}),
    "iso28560-3": frozenset({"nibbles_swapped", "basic_block_size"}),
}


def _refuse_unwritten_fields(
    args: argparse.Namespace, extra: dict[str, Any], memory: bytes
) -> None:
    """Refuse a --field the encoder would drop silently (a typo, or an element of another model).

    The memory is decoded again with the same model: each named field must come back under its
    name, or be an option of that model's encoder.
    """
    options = _ENCODER_OPTIONS.get(args.model, frozenset())
    named = [name for name, value in extra.items() if name not in options and value != ""]
    if not named:
        return
    back = decode(
        memory, model=args.model, block_size=args.block_size, block_order=args.block_order
    )
    unknown = [name for name in named if name not in back.extra]
    if unknown:
        raise TagFormatError(
            f"--field {', '.join(unknown)}: not an element of the {args.model} data model, so it would not be "
            "written; `kiosk tag decode` shows the names this model uses"
        )


def _parse_set(text: str | None) -> tuple[int, int]:
    if not text:
        return 1, 1
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match:
        raise TagFormatError(f"--set needs PART/PARTS such as 2/3, not {text!r}")
    return int(match.group(1)), int(match.group(2))
