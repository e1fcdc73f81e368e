"""A stack of ten checked out, each tag's security flipped and verified, against the sum of the
parts done one after another in the same run: for each item the library system's checkout round
trip plus the verified tag write on the simulated pad with its ISO 15693 air-timing model.

Target: wall time <= 1.05 x that sum. The stack checkout pipelines the tag write of item n with
the checkout request for item n+1, so it can come in under 1.0; the "overlap" column is the time
the two ran side by side (sum - wall). The demo library system runs in this process on a fresh
SQLite database with --delay added to each answer (a library system across a network).

    .venv/bin/python bench/bench_stack_of_ten.py [--repeat 5] [--delays 0 0.02] [--one-core]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

from _kiosk_harness import KioskRun, add_items, budget, one_core_if_asked, table_row

STACK = 10
PROFILE: Any = None  # a cProfile.Profile around the stack checkout (bench/profile_paths.py)


def one_run(delay_s: float, run_no: int) -> tuple[float, float, float, float, float]:
    """(wall of the stack, sum of parts, sum of ACS round trips, sum of tag writes, wall of the
    same stack handled one item at a time)."""
    from kiosk.config import SecuritySection
    from kiosk.core.checkout import ItemStatus, StackCheckout
    from kiosk.core.domain import ItemTag
    from kiosk.core.events import TagsChanged
    from kiosk.devices.readers.sim import SimReader, SimulatedPad, demo_tag
    from kiosk.devices.security import TagSecurityService
    from kiosk.sync.circulation import build_circulation

    kiosk = KioskRun(acs_delay_s=delay_s, own_process=True)
    circ = build_circulation(kiosk.cfg)
    try:
        pad = SimulatedPad(timing="iso15693")
        reader = SimReader(pad)
        security = TagSecurityService(reader, SecuritySection(method="afi"), retry_delay_s=0)
        circ.identify_patron("LV0002")

        def parts() -> tuple[float, float]:
            """The parts one after another: checkout round trip, then the verified write."""
            acs_s = write_s = 0.0
            for item_id in add_items(kiosk.acs, f"38{run_no:02d}", STACK):
                tag = pad.place(demo_tag(item_id, secured=True))
                t0 = time.perf_counter()
                if not circ.checkout("LV0002", item_id).ok:
                    raise SystemExit(f"benchmark broken: checkout of {item_id} refused")
                t1 = time.perf_counter()
                if not security.unsecure(tag.uid).ok:
                    raise SystemExit(f"benchmark broken: tag write of {item_id} failed")
                acs_s += t1 - t0
                write_s += time.perf_counter() - t1
            pad.clear()
            return acs_s, write_s

        def stacked(prefix: str, pipelined: bool = True) -> float:
            """The kiosk's stack checkout of ten other items, their tags already read; without
            `pipelined` the tags arrive one by one, so each item is done before the next."""
            tags = tuple(
                ItemTag(uid=pad.place(demo_tag(item_id, secured=True)).uid, item_id=item_id)
                for item_id in add_items(kiosk.acs, f"{prefix}{run_no:02d}", STACK)
            )
            co = StackCheckout(circ, security, "LV0002")
            if PROFILE is not None:
                PROFILE.enable()
            t0 = time.perf_counter()
            if pipelined:
                state = co.handle_tags(TagsChanged(present=tags, added=tags))
            else:
                for n, tag in enumerate(tags):
                    state = co.handle_tags(TagsChanged(present=tags[: n + 1], added=(tag,)))
            wall = time.perf_counter() - t0
            if PROFILE is not None:
                PROFILE.disable()
            bad = [
                i for i in state.items if i.status is not ItemStatus.CHECKED_OUT or not i.unsecured
            ]
            if bad or len(state.items) != STACK:
                raise SystemExit(f"benchmark broken: {bad}")
            pad.clear()
            return wall

        # Alternate which goes first, so a warmer connection or cache favours neither.
        if run_no % 2:
            acs_s, write_s = parts()
            wall = stacked("37")
            serial = stacked("36", pipelined=False)
        else:
            serial = stacked("36", pipelined=False)
            wall = stacked("37")
            acs_s, write_s = parts()
        return wall, acs_s + write_s, acs_s, write_s, serial
    finally:
        circ.close()
        kiosk.acs.stop()


def main() -> None:
    one_core = one_core_if_asked(sys.argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--delays", type=float, nargs="+", default=[0.0, 0.02])
    args = parser.parse_args()
    flag = " [--one-core]" if one_core else ""
    print(f"stack of {STACK}, median of {args.repeat}; {budget()}{flag}")
    head = (
        "delay",
        "ACS sum",
        "writes",
        "sum",
        "stack",
        "overlap",
        "ratio",
        "met",
        "1-by-1",
        "ratio",
    )
    widths = (6, 8, 7, 7, 7, 8, 6, 4, 7, 6)
    print(table_row(head, widths))
    n = 0
    for delay in args.delays:
        runs = []
        for _ in range(args.repeat):
            n += 1
            runs.append(one_run(delay, n))
        wall = statistics.median(r[0] for r in runs)
        total = statistics.median(r[1] for r in runs)
        ratio = statistics.median(r[0] / r[1] for r in runs)
        cells = (
            f"{delay * 1000:.0f}ms",
            f"{statistics.median(r[2] for r in runs):.3f}s",
            f"{statistics.median(r[3] for r in runs):.3f}s",
            f"{total:.3f}s",
            f"{wall:.3f}s",
            f"{statistics.median(r[1] - r[0] for r in runs):.3f}s",
            f"{ratio:.2f}x",
            "yes" if ratio <= 1.05 else "NO",
            f"{statistics.median(r[4] for r in runs):.3f}s",
            f"{statistics.median(r[4] / r[1] for r in runs):.2f}x",
        )
        print(table_row(cells, widths))
    print("sum: checkout round trip + verified tag write per item, done one after another; stack:")
    print("the kiosk's pipelined stack checkout (target <= 1.05x the sum); overlap = sum - stack;")
    print("1-by-1: the same kiosk code given the tags one at a time (nothing to pipeline).")


if __name__ == "__main__":
    main()
