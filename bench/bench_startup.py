"""Cold start to the welcome screen and memory after a 20-item session, against a bare Kivy app
(a ScreenManager with two screens) measured the same way in the same run. Each measurement is a
fresh subprocess; the parent times from spawning it to the line it prints at its first frame.

    .venv/bin/python bench/bench_startup.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# 20 items: the ten demo items (the set with all three parts) and ten ids the library does not
# know, so the session has loans, refusals and unknown items as a real busy session would.
SESSION_ITEMS = [f"3000000{i}" for i in range(1, 10)] + ["30000010"] + [f"3999{i:04d}" for i in range(10)]


def child_baseline() -> None:
    from _kiosk_harness import headless_env, pump, rss_mib

    headless_env()
    from kivy.app import App
    from kivy.base import runTouchApp
    from kivy.uix.label import Label
    from kivy.uix.screenmanager import Screen, ScreenManager

    class Bare(App):
        def build(self):  # noqa: ANN202 (Kivy's signature)
            manager = ScreenManager()
            for name in ("one", "two"):
                screen = Screen(name=name)
                screen.add_widget(Label(text=f"Screen {name}"))
                manager.add_widget(screen)
            return manager

    app = Bare()
    app._run_prepare()
    runTouchApp(embedded=True)
    pump(2)
    print("FIRST_FRAME", flush=True)
    print(json.dumps({"rss_first": rss_mib(), "rss_session": rss_mib()}), flush=True)
    app.stop()


def child_kiosk() -> None:
    from _kiosk_harness import KioskRun, headless_env, rss_mib, wait_until

    headless_env()
    run = KioskRun()
    run.start()
    print("FIRST_FRAME", flush=True)
    rss_first = rss_mib()
    from kiosk.devices.readers.sim import demo_tag

    run.login("LV0002")
    pad = run.app.services.pad
    for item_id in SESSION_ITEMS:
        parts = 3 if item_id == "30000005" else 1
        for part in range(1, parts + 1):
            pad.place(demo_tag(item_id, part, parts))
    wait_until(lambda: len(run.items()) == len(SESSION_ITEMS) and all(i.final for i in run.items().values()), timeout=120)
    print(json.dumps({"rss_first": rss_first, "rss_session": rss_mib(), "items": len(run.items())}), flush=True)
    run.stop()


def measure(kind: str) -> dict[str, float]:
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(Path(__file__)), "--child", kind], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=HERE)
    assert proc.stdout is not None
    first_frame = None
    result: dict[str, float] = {}
    for line in proc.stdout:
        if line.startswith("FIRST_FRAME") and first_frame is None:
            first_frame = time.perf_counter() - started
        elif line.startswith("{"):
            result = json.loads(line)
    proc.wait(timeout=180)
    if first_frame is None or not result:
        raise SystemExit(f"{kind} run failed (exit {proc.returncode})")
    result["first_frame_s"] = first_frame
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", choices=("baseline", "kiosk"))
    args = parser.parse_args()
    if args.child == "baseline":
        child_baseline()
        return
    if args.child == "kiosk":
        child_kiosk()
        return
    runs = {kind: [measure(kind) for _ in range(args.repeat)] for kind in ("baseline", "kiosk")}

    def med(kind: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[kind])

    rows = [
        ("process start -> first frame (s)", med("baseline", "first_frame_s"), med("kiosk", "first_frame_s")),
        ("RSS after first frame (MiB)", med("baseline", "rss_first"), med("kiosk", "rss_first")),
        (f"RSS after a {len(SESSION_ITEMS)}-item session (MiB)", med("baseline", "rss_first"), med("kiosk", "rss_session")),
    ]
    print(f"median of {args.repeat} runs each; baseline = bare Kivy app, ScreenManager with 2 screens")
    print(f"{'measure':<40} {'baseline':>10} {'kiosk':>10} {'ratio':>8}")
    for name, base, kiosk in rows:
        print(f"{name:<40} {base:>10.2f} {kiosk:>10.2f} {kiosk / base:>7.2f}x")


if __name__ == "__main__":
    main()
