"""Receipt printing paths: bytes sent and encoding time of a visit receipt per printer and render
mode, against the text path on an Epson TM-T88V measured in the same run, and the time the bytes
take on a serial line (the physical limit a patron waits for).

    .venv/bin/python bench/bench_printer.py
"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kiosk.core.domain import Fee, Refusal  # noqa: E402
from kiosk.core.receipt import ReceiptLine, checkout_receipt  # noqa: E402
from kiosk.devices.printer import encode_document, printer_setup, uses_raster  # noqa: E402
from kiosk.screens.receipts import render_receipt  # noqa: E402

ITEMS = tuple(
    ReceiptLine(f"3000{i:04d}", title, due_date="20261216    235959")
    for i, title in enumerate(
        ["Dvēseļu putenis", "Война и мир", "Mērnieku laiki", "Sprīdītis", "The Hobbit"]
    )
) + (ReceiptLine("30009999", "Šķūnis", ok=False, refusal=Refusal.ON_HOLD_FOR_OTHER),)
CASES = [
    ("TM-T88V", {}),
    ("TM-T88V", {"render": "raster"}),
    ("TM-T88IV", {}),
    ("POS-5890", {}),
    ("SRP-350III", {}),
    ("SRP-350III", {"codepage": "26=CP1257, 17=CP866", "render": "text"}),
]


def measure(profile: str, options: dict[str, str], rounds: int = 20) -> tuple[str, int, float]:
    setup = printer_setup(profile, **options)  # type: ignore[arg-type]
    receipt = checkout_receipt(
        "Ogres Centrālā bibliotēka",
        datetime(2026, 11, 25, 14, 30),
        "LV0001",
        "lv",
        ITEMS,
        fees=(Fee("Kavējuma nauda", "2.50"),),
        fee_total="2.50",
    )
    document = render_receipt(receipt, width=setup.columns)
    data = encode_document(document, setup)
    start = time.perf_counter()
    for _ in range(rounds):
        encode_document(document, setup)
    return (
        ("raster" if uses_raster(document, setup) else "text"),
        len(data),
        (time.perf_counter() - start) / rounds,
    )


def main() -> None:
    _, base_bytes, base_time = measure("TM-T88V", {})
    print(
        f"{'printer':<14} {'settings':<40} {'path':<7} {'bytes':>7} {'x bytes':>8} {'x time':>7} {'19200 Bd':>9} {'115200 Bd':>9}"
    )
    for profile, options in CASES:
        path, size, seconds = measure(profile, options)
        settings = ", ".join(f"{k}={v}" for k, v in options.items()) or "(defaults)"
        print(
            f"{profile:<14} {settings:<40} {path:<7} {size:>7} {size / base_bytes:>8.1f} {seconds / base_time:>7.1f} {size * 10 / 19200:>8.1f}s {size * 10 / 115200:>8.1f}s"
        )


if __name__ == "__main__":
    main()
