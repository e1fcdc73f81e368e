"""`kiosk sip2 decode` as a whole process on 100,000 real-world SIP2 lines (the messages of
tests/sync/data/real_sip2.txt, repeated), against a process doing the same job with pysip2's
decoder: read each line from stdin, decode it (or name the error), write one JSON line. Start-up
is included in both. Target: pysip2 / ours >= 2 in wall-clock time. Medians of --repeat, the two
interleaved; the processes' CPU time (user + system) is shown beside it, being less moved by the
other work of a shared machine, and the median of each round's ratio.

    .venv/bin/python bench/bench_codec_process.py [--lines 100000] [--repeat 3] [--one-core]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _kiosk_harness import ROOT, budget, one_core_if_asked

REAL = ROOT / "tests" / "sync" / "data" / "real_sip2.txt"
# Both processes as installed: bytecode compiled (pysip2's is, in site-packages; the kiosk's
# goes to a folder of its own, never into the tree), and stdout as a pipe normally is, buffered.
CHILD_ENV = {
    **{
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED")
    },
    "PYTHONPYCACHEPREFIX": str(Path(tempfile.gettempdir()) / "kiosk-bench-pycache"),
}

PYSIP2_DECODE = r"""
import json, sys
import msgspec
from pysip2 import decode_message
out = sys.stdout
for line in sys.stdin.buffer:
    text = line.rstrip(b"\r\n")
    if not text:
        continue
    try:
        d = decode_message(text + b"\r", encoding="utf-8")
        result = {"message": msgspec.to_builtins(d.message), "sequence": d.sequence_number, "checksum": d.checksum}
    except Exception as exc:
        result = {"error": str(exc)}
    out.write(json.dumps(result, ensure_ascii=False) + "\n")
"""


def corpus(lines: int) -> Path:
    real = [ln for ln in REAL.read_bytes().splitlines() if ln.strip() and not ln.startswith(b"#")]
    path = Path(tempfile.mkstemp(prefix="sip2-lines-", suffix=".txt")[1])
    path.write_bytes(b"\n".join(real[i % len(real)] for i in range(lines)) + b"\n")
    return path


def timed(cmd: list[str], data: Path) -> tuple[float, float, int]:
    """Wall-clock seconds, CPU seconds (user + system) and lines written by one run of `cmd`."""
    with data.open("rb") as stdin, tempfile.TemporaryFile() as out:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(
            cmd,
            stdin=stdin,
            stdout=out,
            stderr=subprocess.DEVNULL,
            cwd=ROOT,
            timeout=1800,
            env=CHILD_ENV,
        )
        elapsed = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        out.seek(0)
        count = sum(1 for _ in out)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[:3]} failed (exit {proc.returncode})")
    return elapsed, cpu, count


def main() -> None:
    one_core = one_core_if_asked(sys.argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    data = corpus(args.lines)
    ours_cmd = [sys.executable, "-m", "kiosk", "sip2", "decode"]
    theirs_cmd = [sys.executable, "-c", PYSIP2_DECODE]
    ours, theirs, ours_cpu, theirs_cpu = [], [], [], []
    try:
        for _ in range(args.repeat):
            t, c, n = timed(theirs_cmd, data)
            theirs.append(t)
            theirs_cpu.append(c)
            if n != args.lines:
                raise SystemExit(f"pysip2 wrote {n} lines for {args.lines}")
            t, c, n = timed(ours_cmd, data)
            ours.append(t)
            ours_cpu.append(c)
            if n != args.lines:
                raise SystemExit(f"kiosk sip2 decode wrote {n} lines for {args.lines}")
    finally:
        data.unlink()
    o, p = statistics.median(ours), statistics.median(theirs)
    oc, pc = statistics.median(ours_cpu), statistics.median(theirs_cpu)
    print(
        f"{args.lines} real-world lines, median of {args.repeat}; {budget()}{' [--one-core]' if one_core else ''}"
    )
    print(f"{'':<22} {'wall':>8} {'CPU':>8}")
    print(f"{'pysip2 process':<22} {p:>7.2f}s {pc:>7.2f}s")
    print(f"{'kiosk sip2 decode':<22} {o:>7.2f}s {oc:>7.2f}s")
    print(
        f"ratio pysip2 / ours: {p / o:.2f}x wall (target >= 2.00x: {'met' if p / o >= 2 else 'NOT met'}), "
        f"{pc / oc:.2f}x CPU"
    )
    # Each round runs the two back to back: the ratio of a round is less moved by a machine whose
    # speed drifts over the run (a shared or throttled one) than the ratio of the medians.
    rounds = statistics.median(t / u for t, u in zip(theirs, ours, strict=True))
    rounds_cpu = statistics.median(t / u for t, u in zip(theirs_cpu, ours_cpu, strict=True))
    print(f"median of the rounds' ratios: {rounds:.2f}x wall, {rounds_cpu:.2f}x CPU")


if __name__ == "__main__":
    main()
