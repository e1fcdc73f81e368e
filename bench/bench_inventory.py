"""Time to inventory and decode a stack of 10 and 30 tags, against the physical limit of the link:
the FEIG and 3M readers through their frame emulators on a pseudo-terminal paced at the reader's
baud rate (limit = bytes on the wire × bits per byte / baud, plus FEIG's mandatory 5 ms silence
per request), and the simulated pad with its ISO 15693 air-timing model (limit = modelled air
time); each with the basic-block shortcut and with whole-memory reads. Prints a table of ratios.

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


def read_stack(reader, n: int, quick: bool = True) -> float:
    stack = StackReader(reader, stable_rounds=2, quick_read=quick)
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


FEIG_GAP_S = 0.005  # the silence a FEIG reader needs before each request


def serial_case(kind: str, n: int, baud: int, quick: bool) -> tuple[float, float, int]:
    """(measured s, limit s, bytes on the wire); the limit includes FEIG's mandatory gaps."""
    pad = make_pad(n)
    emu = FeigEmulator(pad) if kind == "feig" else ThreeMEmulator(pad)
    counter = Counting(emu)
    with tempfile.TemporaryDirectory() as tmp, emu.serve_pty(link_dir=tmp, baud=baud) as port:
        reader = open_reader(f"{kind}:{port.path}?baud={baud}", timeout_s=2.0, retries=1)
        try:
            elapsed = read_stack(reader, n, quick)
        finally:
            reader.close()
    limit = counter.bytes * emu.bits_per_byte / baud
    if kind == "feig":
        limit += len(emu.requests) * FEIG_GAP_S
    return elapsed, limit, counter.bytes


def sim_case(n: int, quick: bool) -> tuple[float, float, int]:
    pad = make_pad(n, timing="iso15693")
    elapsed = read_stack(SimReader(pad), n, quick)
    return elapsed, pad.air_time_s, 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--stacks", type=int, nargs="+", default=[10, 30])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    cases = [
        ("FEIG on pty, 38400 8E1", lambda n, q: serial_case("feig", n, 38400, q)),
        ("3M on pty, 19200 8N1", lambda n, q: serial_case("3m", n, 19200, q)),
        ("sim pad, ISO 15693 timing", sim_case),
    ]
    header = f"{'transport':<28} {'tags':>4} {'time s':>7} {'limit s':>8} {'bytes':>6} {'ratio':>6} {'full-read s':>11} {'ratio':>6} {'quick/full':>10}"
    print(header)
    print("-" * len(header))
    for name, fn in cases:
        for n in args.stacks:
            row = []
            for quick in (True, False):
                runs = [fn(n, quick) for _ in range(args.repeat)]
                row.append(
                    (
                        statistics.median(r[0] for r in runs),
                        statistics.median(r[1] for r in runs),
                        runs[0][2],
                    )
                )
            (tq, lq, bq), (tf, lf, _bf) = row
            print(
                f"{name:<28} {n:>4} {tq:>7.3f} {lq:>8.3f} {bq or '-':>6} {tq / lq:>6.2f} {tf:>11.3f} {tf / lf:>6.2f} {tq / tf:>10.2f}"
            )
    print(
        "time: stack read with the basic-block shortcut (quick_read); full-read: whole user memory"
    )
    print(
        "ratio = measured time / physical limit of the link (bytes x bits per byte / baud, plus the"
    )
    print(
        "FEIG reader's 5 ms silence before each request; for the sim pad its modelled ISO 15693 air time)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
