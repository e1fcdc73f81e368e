"""Memory over 1,000 patron sessions in one kiosk process: card, one item checked out (and its
tag unsecured) on the simulated pad, logout. RSS and live Python objects are sampled every
--every sessions after a warm-up; the target is no growth: the last sample within a few percent
of the first after warm-up, and no steady climb (the slope per 1,000 sessions is printed).
The suite runs a bounded version (tests/ui/test_never_blocked.py).

    .venv/bin/python bench/bench_leak.py [--sessions 1000] [--every 100] [--one-core]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time

from _kiosk_harness import (
    KioskRun,
    add_items,
    budget,
    headless_env,
    one_core_if_asked,
    pump,
    rss_mib,
    wait_until,
)


def main() -> None:
    one_core = one_core_if_asked(sys.argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    headless_env()
    from kiosk.core.events import Action, Tapped
    from kiosk.devices.readers.sim import demo_tag

    run = KioskRun(poll_interval_s=0.05, own_process=True)
    app = run.start()
    wait_until(lambda: app.services.circulation.status().online, timeout=60)
    items = add_items(run.acs, "35", args.sessions + args.warmup)
    pad = app.services.pad
    samples: list[tuple[int, float, int]] = []
    started = time.perf_counter()
    try:
        for n in range(args.sessions + args.warmup):
            run.login("LV0002")
            item = items[n]
            pad.place(demo_tag(item))
            wait_until(
                lambda item=item: item in run.items() and run.items()[item].final, timeout=60
            )
            pad.clear()
            wait_until(lambda: not app.services.stack.current(), timeout=30)
            app.post(Tapped(Action.LOGOUT))
            wait_until(lambda: app.current_screen == "welcome", timeout=30)
            pump(1)
            done = n + 1 - args.warmup
            if done >= 0 and done % args.every == 0:
                gc.collect()
                samples.append((done, rss_mib(), len(gc.get_objects())))
                print(
                    f"after {done:>5} sessions: RSS {samples[-1][1]:7.1f} MiB, {samples[-1][2]:>8} objects",
                    flush=True,
                )
    finally:
        run.stop()
    elapsed = time.perf_counter() - started
    first, last = samples[0], samples[-1]
    xs = [s[0] for s in samples]
    slope = (
        statistics.linear_regression(xs, [s[1] for s in samples]).slope * 1000
        if len(samples) > 2
        else float("nan")
    )
    obj_slope = (
        statistics.linear_regression(xs, [s[2] for s in samples]).slope * 1000
        if len(samples) > 2
        else float("nan")
    )
    print(
        f"{args.sessions} sessions in {elapsed:.0f}s; {budget()}{' [--one-core]' if one_core else ''}"
    )
    print(
        f"RSS last/first after warm-up: {last[1] / first[1]:.3f}x ({last[1] - first[1]:+.1f} MiB); slope {slope:+.2f} MiB per 1,000 sessions"
    )
    print(
        f"objects last/first: {last[2] / first[2]:.3f}x ({last[2] - first[2]:+d}); slope {obj_slope:+.0f} per 1,000 sessions"
    )


if __name__ == "__main__":
    main()
