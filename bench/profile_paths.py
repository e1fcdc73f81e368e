"""cProfile of the two paths docs/performance.md summarises: cold start (process start to the
first frame of the welcome screen, in this process, as `kiosk run` on the default configuration)
and a stack of ten checked out and unsecured. Prints the top entries by cumulative time; the
raw profiles are written next to --out for snakeviz or pstats.

    .venv/bin/python bench/profile_paths.py cold|stack [--top 30] [--out /tmp/kiosk]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path


def cold(top: int, out: str) -> None:
    started = time.perf_counter()
    profile = cProfile.Profile()
    profile.enable()
    from _kiosk_harness import KioskRun, headless_env

    headless_env()
    run = KioskRun(embedded=True, tmp=Path(tempfile.mkdtemp(prefix="kiosk-prof-")))
    run.start(deferred=True, on_first_frame=profile.disable)  # as `kiosk run` starts
    print(f"first frame after {time.perf_counter() - started:.2f}s (profiled; imports included)")
    run.ready()
    run.stop()
    report(profile, top, out + "-cold.prof")


def stack(top: int, out: str) -> None:
    import bench_stack_of_ten

    profile = cProfile.Profile()
    bench_stack_of_ten.PROFILE = profile
    bench_stack_of_ten.one_run(0.0, 99)
    report(profile, top, out + "-stack.prof")


def report(profile: cProfile.Profile, top: int, path: str) -> None:
    profile.dump_stats(path)
    stats = pstats.Stats(profile)
    stats.strip_dirs().sort_stats("cumulative").print_stats(top)
    print(f"raw profile: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", choices=("cold", "stack"))
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "kiosk"))
    args = parser.parse_args()
    sys.setrecursionlimit(10000)
    (cold if args.path == "cold" else stack)(args.top, args.out)


if __name__ == "__main__":
    main()
