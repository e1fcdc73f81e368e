"""Cold start to the welcome screen, warm restart after a crash, and memory after start and after
a 50-item session, against a bare Kivy app with the same fonts and window measured the same way
in the same run. Each measurement is a fresh process; the parent times from spawning it to the
line it prints at its first frame.

The kiosk runs as `kiosk run` does on the default configuration: its composition root starts the
embedded demo library system (in a child process, kiosk/acschild.py, whose memory is shown beside
the kiosk's), the simulated devices and the journal. The warm restart reopens
the journal and database of a kiosk killed (os._exit) in the middle of a session, so journal
recovery is on its path. Targets: first frame <= 1.5x the bare app (cold and warm); RSS <= 1.3x.

    .venv/bin/python bench/bench_startup.py [--repeat 5] [--one-core]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _kiosk_harness import budget, one_core_if_asked

HERE = Path(__file__).resolve().parent
SESSION = 50
# An installed kiosk has its modules compiled (pip writes the bytecode), as Kivy's are here; a
# development tree run with PYTHONDONTWRITEBYTECODE would compile the kiosk's on every start.
# The bytecode goes to a folder of its own, never into the tree.
CHILD_ENV = {
    **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
    "PYTHONPYCACHEPREFIX": str(Path(tempfile.gettempdir()) / "kiosk-bench-pycache"),
}


def first_frame() -> None:
    """Tells the parent the first frame is flipped, with the CPU time this process has used so
    far (all its threads): on a shared machine the CPU time moves less than the wall clock."""
    print(f"FIRST_FRAME {time.process_time():.4f}", flush=True)


def child_baseline() -> None:
    from _kiosk_harness import headless_env, on_flip_once, pump, rss_mib

    headless_env()
    from kivy.app import App
    from kivy.base import runTouchApp
    from kivy.uix.boxlayout import BoxLayout
    from kivy.uix.button import Button
    from kivy.uix.label import Label
    from kivy.uix.screenmanager import NoTransition, Screen, ScreenManager

    class Bare(App):
        # The kiosk's fonts (kiosk/screens/theme.py): Roboto for text, DejaVuSans for symbols.
        def build(self):  # noqa: ANN202 (Kivy's signature)
            manager = ScreenManager(transition=NoTransition())
            for name in ("welcome", "checkout"):
                screen = Screen(name=name)
                box = BoxLayout(orientation="vertical")
                box.add_widget(Label(text=f"Sveiki - {name}", font_name="Roboto", font_size=48))
                box.add_widget(
                    Label(text="\u2714 \u2716 \u25b6", font_name="DejaVuSans", font_size=48)
                )
                box.add_widget(Button(text="Latviešu  English  Русский", font_name="Roboto"))
                screen.add_widget(box)
                manager.add_widget(screen)
            return manager

    app = Bare()
    app._run_prepare()
    if os.environ.get("SDL_VIDEODRIVER") == "offscreen":
        # As the kiosk does on this driver (kiosk.app.finish_frames_offscreen): each frame is
        # waited for at the flip, as a real display's swap does.
        from kivy.core.window import Window
        from kivy.graphics.opengl import glFinish

        Window.bind(on_flip=lambda *_: glFinish())
    seen = on_flip_once(first_frame)
    runTouchApp(embedded=True)
    while not seen:
        pump(1)
    print(json.dumps({"rss_first": rss_mib(), "rss_session": rss_mib()}), flush=True)
    app.stop()


def _session(run, count: int) -> None:  # noqa: ANN001 (a KioskRun)
    from _kiosk_harness import add_items, wait_until

    from kiosk.devices.readers.sim import demo_tag

    wait_until(lambda: run.app.services.circulation.status().online, timeout=60)
    ids = add_items(run.acs, "3600", count)
    run.login("LV0002")
    pad = run.app.services.pad
    for item_id in ids:
        pad.place(demo_tag(item_id))
    wait_until(
        lambda: len(run.items()) == count and all(i.final for i in run.items().values()),
        timeout=300,
    )


def child_kiosk(tmp: str, mode: str) -> None:
    from _kiosk_harness import KioskRun, headless_env, rss_mib

    headless_env()
    run = KioskRun(embedded=True, tmp=Path(tmp))
    # As `kiosk run` starts: the welcome screen's first frame, then the parts behind it.
    run.start(deferred=True, on_first_frame=first_frame)
    run.ready()  # "after start": the demo library system, journal and devices up, link answered
    # `kiosk run` keeps the demo library system in a child process (kiosk/acschild.py); a real
    # site has none, so the kiosk's own process is the target's measure, and the two together
    # are shown beside it.
    acs_pid = getattr(run.acs, "pid", None)

    def acs_rss() -> float:
        return rss_mib(acs_pid) if acs_pid is not None else 0.0

    rss_first, acs_first = rss_mib(), acs_rss()
    if mode == "crash":
        print(json.dumps({"acs_pid": acs_pid}), flush=True)
        _session(run, 5)
        os._exit(70)  # killed mid-session: no logout, no clean close of the journal
    if mode == "warm":
        print(
            json.dumps(
                {
                    "rss_first": rss_first,
                    "rss_session": rss_first,
                    "acs_first": acs_first,
                    "acs_session": acs_first,
                }
            ),
            flush=True,
        )
        run.stop()
        return
    _session(run, SESSION)
    result = {
        "rss_first": rss_first,
        "rss_session": rss_mib(),
        "acs_first": acs_first,
        "acs_session": acs_rss(),
    }
    print(json.dumps(result), flush=True)
    run.stop()


def _ended(pid: int) -> bool:
    """The process is gone, or has ended and waits for its new parent to reap it."""
    try:
        return "\nState:\tZ" in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True


def measure(kind: str, tmp: str = "") -> dict[str, float]:
    started = time.perf_counter()
    cmd = [sys.executable, str(Path(__file__)), "--child", kind, "--tmp", tmp]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=HERE, env=CHILD_ENV
    )
    assert proc.stdout is not None
    first_frame = None
    result: dict[str, float] = {}
    for line in proc.stdout:
        if line.startswith("FIRST_FRAME") and first_frame is None:
            first_frame = time.perf_counter() - started
            result["first_frame_cpu_s"] = float(line.split()[1])
        elif line.startswith("{"):
            result.update(json.loads(line))
    proc.wait(timeout=600)
    if kind == "crash":
        # systemd restarts the kiosk once every process of its unit has ended (the demo library
        # system's child ends when the kiosk's end of its stdin closes): so does this restart.
        pid = result.get("acs_pid")
        deadline = time.monotonic() + 30
        while pid and not _ended(int(pid)) and time.monotonic() < deadline:
            time.sleep(0.01)
        return {}
    if first_frame is None or "rss_first" not in result:
        raise SystemExit(f"{kind} run failed (exit {proc.returncode})")
    result["first_frame_s"] = first_frame
    return result


def main() -> None:
    one_core = one_core_if_asked(sys.argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--child", choices=("baseline", "cold", "crash", "warm"))
    parser.add_argument("--tmp", default="")
    args = parser.parse_args()
    if args.child == "baseline":
        child_baseline()
        return
    if args.child:
        child_kiosk(args.tmp, args.child)
        return
    runs: dict[str, list[dict[str, float]]] = {"baseline": [], "cold": [], "warm": []}
    for _ in range(args.repeat):  # interleaved, so a burst of load elsewhere hits all kinds
        runs["baseline"].append(measure("baseline"))
        runs["cold"].append(measure("cold", tempfile.mkdtemp(prefix="kiosk-bench-")))
        crashed = tempfile.mkdtemp(prefix="kiosk-bench-")
        measure("crash", crashed)
        runs["warm"].append(measure("warm", crashed))

    def med(kind: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[kind])

    def med_sum(kind: str, key: str) -> float:
        return statistics.median(r[f"rss_{key}"] + r[f"acs_{key}"] for r in runs[kind])

    base_ff, base_rss = med("baseline", "first_frame_s"), med("baseline", "rss_first")
    base_cpu = med("baseline", "first_frame_cpu_s")
    rows = [
        ("cold start -> first frame (s)", base_ff, med("cold", "first_frame_s"), 1.5),
        ("warm restart after crash (s)", base_ff, med("warm", "first_frame_s"), 1.5),
        ("  CPU time to the first frame, cold", base_cpu, med("cold", "first_frame_cpu_s"), None),
        ("  the same, warm", base_cpu, med("warm", "first_frame_cpu_s"), None),
        ("RSS after start, link up (MiB)", base_rss, med("cold", "rss_first"), 1.3),
        (f"RSS after a {SESSION}-item session (MiB)", base_rss, med("cold", "rss_session"), 1.3),
        ("  with the demo library system's process", base_rss, med_sum("cold", "first"), None),
        ("  the same after the session", base_rss, med_sum("cold", "session"), None),
    ]
    print(f"median of {args.repeat} runs each; baseline = bare Kivy app, same fonts and window")
    print(f"{budget()}{' [--one-core]' if one_core else ''}")
    print(f"{'measure':<36} {'baseline':>9} {'kiosk':>9} {'ratio':>7} {'target':>7} {'met':>4}")
    for name, base, kiosk, target in rows:
        ratio = kiosk / base
        if target is None:  # shown for the record: a real site has no demo library system
            print(f"{name:<36} {base:>9.2f} {kiosk:>9.2f} {ratio:>6.2f}x {'-':>7} {'-':>4}")
            continue
        print(
            f"{name:<36} {base:>9.2f} {kiosk:>9.2f} {ratio:>6.2f}x {target:>6.2f}x {'yes' if ratio <= target else 'NO':>4}"
        )


if __name__ == "__main__":
    main()
