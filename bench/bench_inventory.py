"""Time to inventory and decode a stack of 10 and 30 tags, against the physical limit of the link:
the FEIG and 3M readers through their frame emulators on a pseudo-terminal paced at the reader's
baud rate (limit = bytes on the wire × bits per byte / baud), and the simulated pad with its
ISO 15693 air-timing model (limit = modelled air time). Prints a table of ratios.

    .venv/bin/python bench/bench_inventory.py [--stacks 10 30] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kiosk.devices.readers import open_reader  # noqa: E402
from kiosk.devices.readers.emulators import FeigEmulator, FrameEmulator, ThreeMEmulator  # noqa: E402
from kiosk.devices.readers.sim import SimReader, SimulatedPad, demo_tag  # noqa: E402
from kiosk.devices.stack import StackReader  # noqa: E402


def make_pad(n: int, timing: str | None = None) -> SimulatedPad:
    pad = SimulatedPad(timing=timing)
    for i in range(n):
        pad.place(demo_tag(f"{40000000 + i}"))
    return pad


def read_stack(reader, n: int) -> float:
    stack = StackReader(reader, stable_rounds=2)
    t0 = time.perf_counter()
    for _ in range(10):
        change = stack.poll_once()
        if change.stable and len(change.present) == n:
            break
    elapsed = time.perf_counter() - t0
    present = stack.current()
    if len(present) != n or not all(t.readable for t in present):
        raise SystemExit(f"benchmark broken: read {len(present)} of {n} tags")
    return elapsed


class Counting:
    """Counts the bytes both ways through an emulator."""

    def __init__(self, emu: FrameEmulator) -> None:
        self.bytes = 0
        feed = emu.feed

        def counted(data: bytes) -> bytes:
            out = feed(data)
            self.bytes += len(data) + len(out)
            return out

        emu.feed = counted  # type: ignore[method-assign]


def serial_case(kind: str, n: int, baud: int) -> tuple[float, float, int]:
    pad = make_pad(n)
    emu = FeigEmulator(pad) if kind == "feig" else ThreeMEmulator(pad)
    counter = Counting(emu)
    with tempfile.TemporaryDirectory() as tmp, emu.serve_pty(link_dir=tmp, baud=baud) as port:
        reader = open_reader(f"{kind}:{port.path}?baud={baud}", timeout_s=2.0, retries=1)
        try:
            elapsed = read_stack(reader, n)
        finally:
            reader.close()
    limit = counter.bytes * emu.bits_per_byte / baud
    return elapsed, limit, counter.bytes


def sim_case(n: int) -> tuple[float, float, int]:
    pad = make_pad(n, timing="iso15693")
    elapsed = read_stack(SimReader(pad), n)
    return elapsed, pad.air_time_s, 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stacks", type=int, nargs="+", default=[10, 30])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    cases = [
        ("FEIG on pty, 38400 8E1", lambda n: serial_case("feig", n, 38400)),
        ("3M on pty, 19200 8N1", lambda n: serial_case("3m", n, 19200)),
        ("sim pad, ISO 15693 timing", sim_case),
    ]
    header = f"{'transport':<28} {'tags':>4} {'median s':>9} {'limit s':>8} {'wire bytes':>10} {'ratio':>6}"
    print(header)
    print("-" * len(header))
    for name, fn in cases:
        for n in args.stacks:
            runs = [fn(n) for _ in range(args.repeat)]
            elapsed = statistics.median(r[0] for r in runs)
            limit = statistics.median(r[1] for r in runs)
            wire = runs[0][2]
            print(f"{name:<28} {n:>4} {elapsed:>9.3f} {limit:>8.3f} {wire or '-':>10} {elapsed / limit:>6.2f}")
    print("ratio = measured time / physical limit of the link (1.00 = the link is the only cost)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
