"""CPU an idle kiosk uses: `kiosk run` as a process (offscreen, the embedded demo library system
in its child), left alone on its welcome screen, with Kivy's default clock and with the clock
the kiosk uses (kiosk/runcli.py, KIVY_CLOCK), one after the other and repeated so that a burst
of load on the machine hits both. CPU time of the kiosk's process (its threads; the demo library
system's child apart) over --seconds, as a share of one core.

    .venv/bin/python bench/bench_idle_cpu.py [--seconds 20] [--repeat 2] [--settle 5] [--one-core]

`--settle S`: the measure starts S seconds after the kiosk is ready (5 unless told, so that the
start's trailing work is done); `--settle 0 --seconds 3` measures the seconds just after the
welcome screen is shown, when the screen's scroll effects settle (docs/performance.md, "A scroll
effect moved once a frame").
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _kiosk_harness import CONFIG, ROOT, budget, one_core_if_asked

CLOCKS = ("default", "interrupt")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (/proc, Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_share(clock: str, seconds: float, settle: float = 5.0) -> float:
    """Start `kiosk run`, wait for its READY (as systemd does), let it settle, then measure."""
    tmp = Path(tempfile.mkdtemp(prefix="kiosk-idle-"))
    conf = tmp / "kiosk.toml"
    conf.write_text(
        CONFIG.format(port=6001, tmp=tmp.as_posix(), poll=0.2, embedded="true", stable_rounds=2)
    )
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp / "notify"))
    notify.settimeout(120)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SDL_VIDEODRIVER": "offscreen",
        "NOTIFY_SOCKET": str(tmp / "notify"),
        "KIVY_HOME": str(tmp / "kivy"),
        "KIVY_CLOCK": clock,
        "PYTHONPYCACHEPREFIX": str(Path(tempfile.gettempdir()) / "kiosk-bench-pycache"),
    }
    env.pop("DISPLAY", None)
    cmd = [sys.executable, "-m", "kiosk", "--config", str(conf), "run", "--windowed"]
    proc = subprocess.Popen(
        cmd, env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while b"READY=1" not in notify.recv(4096):
            pass
        # By default the start's trailing work (the heap trim, the first link check) is done.
        time.sleep(settle)
        before, t0 = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(seconds)
        used, wall = cpu_seconds(proc.pid) - before, time.monotonic() - t0
        if proc.poll() is not None:
            raise SystemExit(f"kiosk run ended early ({proc.returncode})")
        return used / wall
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        notify.close()


def main() -> None:
    one_core = one_core_if_asked(sys.argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--settle", type=float, default=5.0)
    args = parser.parse_args()
    flag = " [--one-core]" if one_core else ""
    print(
        f"idle kiosk run, {args.seconds:.0f} s each from {args.settle:.0f} s after ready, "
        f"{args.repeat}x; {budget()}{flag}"
    )
    shares: dict[str, list[float]] = {clock: [] for clock in CLOCKS}
    for _ in range(args.repeat):
        for clock in CLOCKS:
            shares[clock].append(idle_share(clock, args.seconds, args.settle))
    for clock in CLOCKS:
        runs = ", ".join(f"{s * 100:.1f}" for s in shares[clock])
        print(
            f"{clock:>10} clock: {statistics.median(shares[clock]) * 100:5.1f} % of a core ({runs})"
        )
    base = statistics.median(shares["default"])
    print(f"ratio interrupt / default: {statistics.median(shares['interrupt']) / base:.2f}")


if __name__ == "__main__":
    main()
