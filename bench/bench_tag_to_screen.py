"""Time from a tag placed on the simulated pad to the item on the screen (its row drawn, before the
library system answers) and to its result (due date or refusal), offscreen, against the stack
reader's own poll interval as the baseline: a pad polled every P seconds cannot show a tag sooner
than P/2 on average, so a ratio near 0.5-1 means the kiosk adds little on top of the reader.

    .venv/bin/python bench/bench_tag_to_screen.py [--items 10] [--poll 0.2 0.05]
"""

from __future__ import annotations

import argparse
import statistics
import time

from _kiosk_harness import KioskRun, headless_env, pump, wait_until

ITEMS = ["30000001", "30000002", "30000003", "30000004", "30000010", "30000007", "30000006"]


def run(poll_s: float, count: int) -> tuple[list[float], list[float], list[float]]:
    from kiosk.devices.readers.sim import demo_tag

    kiosk = KioskRun(poll_interval_s=poll_s)
    kiosk.start()
    reported: list[float] = []
    stack = kiosk.app.services.stack
    forward = stack.on_change

    def on_change(present, added, removed):  # noqa: ANN001 (the stack reader's callback)
        if added:
            reported.append(time.perf_counter())
        return forward(present, added, removed)

    stack.on_change = on_change
    try:
        kiosk.login("LV0002")
        pad = kiosk.app.services.pad
        seen: list[float] = []
        answered: list[float] = []
        by_reader: list[float] = []
        for n in range(count):
            item_id = ITEMS[n % len(ITEMS)] if n < len(ITEMS) else f"3999{n:04d}"
            pad.clear()
            wait_until(lambda: not kiosk.app.services.stack.current())
            pump(2)
            reported.clear()
            started = time.perf_counter()
            pad.place(demo_tag(item_id))
            wait_until(lambda item_id=item_id: item_id in kiosk.rows())
            seen.append(time.perf_counter() - started)
            wait_until(lambda: reported)  # the reader's report is recorded on its own thread
            by_reader.append(reported[0] - started)
            wait_until(lambda item_id=item_id: kiosk.items()[item_id].final)
            answered.append(time.perf_counter() - started)
        return seen, answered, by_reader
    finally:
        kiosk.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10)
    parser.add_argument("--poll", type=float, nargs="+", default=[0.2, 0.05])
    args = parser.parse_args()
    headless_env()
    print(f"{args.items} items, one at a time; baseline = the stack reader's poll interval")
    print(
        "(tag->reader: the stack reader reported it; reader->row: what the kiosk adds until it is drawn)"
    )
    header = f"{'poll (s)':>8} {'tag->reader':>12} {'reader->row':>12} {'tag->row':>10} {'p90':>8} {'ratio':>7} {'tag->result':>12} {'ratio':>7}"
    print(header)
    for poll in args.poll:
        seen, answered, by_reader = run(poll, args.items)
        seen_med = statistics.median(seen)
        p90 = statistics.quantiles(seen, n=10)[-1] if len(seen) >= 2 else seen[0]
        ans_med = statistics.median(answered)
        reader_med = statistics.median(by_reader)
        overhead = statistics.median(s - r for s, r in zip(seen, by_reader, strict=True))
        print(
            f"{poll:>8.3f} {reader_med:>11.3f}s {overhead:>11.3f}s {seen_med:>9.3f}s {p90:>7.3f}s {seen_med / poll:>6.2f}x"
            f" {ans_med:>11.3f}s {ans_med / poll:>6.2f}x"
        )


if __name__ == "__main__":
    main()
