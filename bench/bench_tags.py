"""Decode throughput of each tag data model against the floor of touching the same bytes.

Run: .venv/bin/python bench/bench_tags.py [--seconds 0.5]

For each model the same tag memory is decoded in a loop (autodetection included, as the
readers call it) and, in the same run, copied and CRC'd (binascii.crc_hqx, the ISO 28560-3
CRC): the ratios say how many times a decode costs over the cheapest possible look at a tag.
Every sample is padded to the 112 bytes of an ICODE SLIX user memory, as a reader delivers it.
A stack of 20 items read twice a second needs 40 decodes per second.
"""

from __future__ import annotations

import argparse
import binascii
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kiosk.devices.tags import TagData, decode, encode  # noqa: E402

SAMPLES: dict[str, bytes] = {
    "iso28560-3": encode(TagData("iso28560-3", "30000001", 1, 2, "LV-RCB", "1")) + bytes(76),
    "iso28560-3 reversed": encode(
        TagData("iso28560-3", "30000001", 1, 2, "LV-RCB", "1"), block_order="reversed"
    )
    + bytes(76),
    "iso28560-2 (§4.5 example)": bytes.fromhex(
        "91 00 05 1C BE 99 1A 14 02 01 D0 14 02 04 B3 46 07 44 1C B6 E2 E3 35 D6"
        " 83 02 07 AC C0 9E BA A0 6F 6B 00 00"
    )
    + bytes(76),
    "iso28560-2 with title": encode(
        TagData(
            "iso28560-2",
            "30000001",
            1,
            2,
            "LV-RCB",
            "10",
            extra={"title": "Zaļā grāmata par Rīgu", "shelf_location": "821 ZA"},
        )
    ).ljust(112, b"\x00"),
    "rfid501": bytes.fromhex("04 11 00 01 31 33 30 32 30 30 33 37 36 37") + bytes(98),
}


def rate(func: Callable[[], object], seconds: float) -> float:
    """Calls per second, measured over roughly ``seconds``."""
    loops = 1
    while True:
        start = time.perf_counter()
        for _ in range(loops):
            func()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return loops / elapsed
        loops = max(loops * 2, int(loops * seconds / max(elapsed, 1e-9)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=0.5, help="time per measurement")
    args = parser.parse_args()
    print(
        f"{'model':26} {'bytes':>5} {'decode/s':>11} {'copy/s':>12} {'crc/s':>12} {'× copy':>8} {'× crc':>7}"
    )
    for name, memory in SAMPLES.items():
        tag = decode(memory)
        assert tag.item_id, name
        decode_rate = rate(lambda m=memory: decode(m), args.seconds)
        copy_rate = rate(lambda m=memory: bytearray(m), args.seconds)
        crc_rate = rate(lambda m=memory: binascii.crc_hqx(m, 0xFFFF), args.seconds)
        print(
            f"{name:26} {len(memory):5d} {decode_rate:11,.0f} {copy_rate:12,.0f} {crc_rate:12,.0f}"
            f" {copy_rate / decode_rate:8.0f} {crc_rate / decode_rate:7.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
