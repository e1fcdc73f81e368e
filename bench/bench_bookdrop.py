"""Returns per minute through the book drop, against the two things that bound it, measured in the
same run against the same embedded demo library system (SIP2 on loopback, SQLite):

* the simulated pad's physical limit: its ISO 15693 air-time model for one item (an inventory
  round, the basic-block read, the AFI write and its read-back);
* the library system's round trip: a bare 09/10 check-in loop over one SIP2 connection.

The book drop runs as a site assembles it: SimulatedPad (timing="iso15693") + StackReader +
TagSecurityService, the simulated sorter, the circulation service with its journal (SQLite in a
temporary folder, fsynced as on the kiosk) and the BookDrop workflow; each item is dropped, read
until the book drop has decided, and taken out of the chute. Every item is on loan, so every
return is a real check-in. The SIP2 loop and the book drop alternate over `--repeat` runs and
medians are shown. Prints a table of rates and ratios, where one return's time goes, and what
dominates.

    .venv/bin/python bench/bench_bookdrop.py [--count 40] [--repeat 3] [--journal-dir /dev/shm]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _kiosk_harness import add_items  # noqa: E402

from kiosk.config import parse  # noqa: E402
from kiosk.core.bookdrop import BookDrop, FinalState  # noqa: E402
from kiosk.core.events import TagsChanged  # noqa: E402
from kiosk.core.ports import SystemClock  # noqa: E402
from kiosk.core.returns import ReturnSettings  # noqa: E402
from kiosk.core.routing import RoutingTable  # noqa: E402
from kiosk.devices.readers.sim import SimReader, SimulatedPad, demo_tag  # noqa: E402
from kiosk.devices.security import TagSecurityService  # noqa: E402
from kiosk.devices.sorter import open_sorter  # noqa: E402
from kiosk.devices.stack import QUICK_BYTES, StackReader  # noqa: E402
from kiosk.sync.acs.server import start_embedded  # noqa: E402
from kiosk.sync.circulation import build_circulation  # noqa: E402
from kiosk.sync.sip2.client import Sip2Client  # noqa: E402
from kiosk.sync.sip2.codec import message, sip_date  # noqa: E402

SITE = """
[kiosk]
mode = "bookdrop"
owner_institutions = ["LV-DEMO"]

[sip2]
host = "127.0.0.1"
port = {port}
username = "kiosk"
password = "demo"
location_code = "DEMO"
institution_id = "DEMO"
error_detection = "on"
timeout_s = 5.0
retries = 1

[storage]
path = "{journal}"

[security]
method = "afi"
afi_secured = 0x07
afi_unsecured = 0xC2

[sorter]
url = "sim:"
"""

STABLE_ROUNDS = 2


def add_loans(acs: object, prefix: str, count: int) -> list[str]:
    """`count` new items, each on loan, so each return is a real check-in."""
    return add_items(acs, prefix, count, on_loan_to="LV0002", sort_bin="1")


def physical_limit_s() -> float:
    """The pad's modelled air time for one returned item: one inventory round with the tag,
    the basic-block read (its head holds the whole tag, so no system information before it:
    docs/protocols/rfid.md §7.7), the AFI write and the read-back."""
    pad = SimulatedPad(timing="iso15693", sleep=lambda _s: None)
    tag = pad.place(demo_tag("39000000", secured=False))
    pad.inventory_tags()
    pad.read(tag.uid, 0, QUICK_BYTES // tag.block_size)
    pad.write_afi(tag.uid, 0x07)
    pad.system_info(tag.uid)
    return pad.air_time_s


class TimedCirculation:
    """The circulation service with the time spent in check-ins (SIP2 + journal) added up."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.checkin_s = 0.0

    def checkin(self, item_id: str):  # noqa: ANN201 (CirculationResult)
        t = time.perf_counter()
        try:
            return self.inner.checkin(item_id)  # type: ignore[attr-defined]
        finally:
            self.checkin_s += time.perf_counter() - t

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self.inner, name)


@dataclass
class DropRun:
    wall_s: float
    air_s: float
    checkin_s: float
    done: int


def run_bookdrop(port: int, items: list[str], journal_dir: Path) -> DropRun:
    """One book-drop run over `items`, each dropped, decided and taken out of the chute."""
    cfg = parse(
        SITE.format(port=port, journal=journal_dir / "journal.sqlite"),
        str(journal_dir / "bench.toml"),
    )
    clock = SystemClock()
    circulation = build_circulation(cfg, clock=clock)
    timed = TimedCirculation(circulation)
    pad = SimulatedPad(timing="iso15693")
    reader = SimReader(pad, "bench")
    security = TagSecurityService(reader, cfg.security)
    stack = StackReader(reader, stable_rounds=STABLE_ROUNDS, security=cfg.security)
    drop = BookDrop(
        timed,  # type: ignore[arg-type]
        security,
        open_sorter(cfg.sorter.url),
        clock,
        RoutingTable.from_config(cfg),
        ReturnSettings.from_config(cfg),
        recorder=circulation.journal.record_event,
    )

    def poll_until(done) -> None:  # noqa: ANN001
        for _ in range(20):
            change = stack.poll_once()
            if change.error:
                raise SystemExit(f"benchmark broken: reader error {change.error}")
            if change.changed:
                drop.handle_tags(
                    TagsChanged(present=change.present, added=change.added, removed=change.removed)
                )
            if change.stable and done({t.uid for t in change.present}):
                return
        raise SystemExit("benchmark broken: the stack reader did not settle")

    tags = [demo_tag(item_id, secured=False) for item_id in items]
    circulation.forward_offline()  # connect and log in first, as on a running kiosk
    t0 = time.perf_counter()
    for tag in tags:
        pad.place(tag)
        poll_until(lambda present, uid=tag.uid: uid in present)
        pad.remove(tag.uid)
        poll_until(lambda present, uid=tag.uid: uid not in present)
    wall = time.perf_counter() - t0
    done = drop.state.count(FinalState.CHECKED_IN_SECURED)
    circulation.close()
    return DropRun(wall, pad.air_time_s, timed.checkin_s, done)


def run_sip2_loop(port: int, items: list[str]) -> tuple[float, list[float]]:
    """(wall seconds, per-request seconds) of bare 09/10 check-ins over one SIP2 connection."""
    cfg = parse(SITE.format(port=port, journal="unused.sqlite"))
    client = Sip2Client(cfg.sip2)
    client.connect()
    times: list[float] = []
    t0 = time.perf_counter()
    for item_id in items:
        now = sip_date(SystemClock().now())
        msg = message(
            "09",
            no_block="N",
            transaction_date=now,
            return_date=now,
            fields=[("AP", "DEMO"), ("AO", "DEMO"), ("AB", item_id), ("AC", "")],
        )
        t = time.perf_counter()
        reply = client.request(msg)
        times.append(time.perf_counter() - t)
        if reply.command != "10" or reply.fixed.get("ok") != "1":
            raise SystemExit(
                f"benchmark broken: check-in of {item_id} answered {reply.command} ok={reply.fixed.get('ok')}"
            )
    wall = time.perf_counter() - t0
    client.close()
    return wall, times


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--count", type=int, default=40, help="returns per run (default 40)")
    ap.add_argument("--repeat", type=int, default=3, help="runs; medians are shown (default 3)")
    ap.add_argument(
        "--journal-dir",
        type=Path,
        default=None,
        help="where the kiosk journal lives (default: a temporary folder)",
    )
    args = ap.parse_args(argv)
    n = args.count

    drops: list[DropRun] = []
    sip_rtts: list[float] = []
    sip_all: list[float] = []
    with tempfile.TemporaryDirectory() as tmp_text:
        tmp = Path(tmp_text)
        acs = start_embedded(
            f"sqlite:///{tmp / 'acs.sqlite'}", port=0, fresh=True, max_loans=1_000_000
        )
        try:
            run_sip2_loop(acs.port, add_loans(acs, "3600", 5))  # warm the server and code paths
            for r in range(args.repeat):
                # The two loops alternate so drift on a shared machine hits both alike.
                sip_wall, sip_times = run_sip2_loop(acs.port, add_loans(acs, f"35{r:02d}", n))
                sip_rtts.append(sip_wall / n)
                sip_all += sip_times
                journal_dir = Path(tempfile.mkdtemp(dir=args.journal_dir or tmp))
                drops.append(run_bookdrop(acs.port, add_loans(acs, f"34{r:02d}", n), journal_dir))
        finally:
            acs.stop()
    for run in drops:
        if run.done != n:
            raise SystemExit(f"benchmark broken: {run.done} of {n} returns checked in and secured")

    def med(values: list[float]) -> float:
        return statistics.median(values)

    limit_s = physical_limit_s()
    per_item = med([d.wall_s / n for d in drops])
    sip_rtt = med(sip_rtts)
    air_per_item = med([d.air_s / n for d in drops])
    checkin_per_item = med([d.checkin_s / n for d in drops])
    rows = [
        ("book drop (pad + workflow + SIP2 + journal)", per_item),
        ("physical limit: pad air time per item", limit_s),
        ("library system: bare 09/10 round trip", sip_rtt),
    ]
    print(
        f"book drop: {n} returns x {args.repeat} runs (medians), simulated pad with ISO 15693 "
        "timing, embedded demo library system on loopback"
    )
    header = f"{'':46} {'ms/item':>8} {'returns/min':>12} {'book drop / this':>17}"
    print(header)
    print("-" * len(header))
    for name, seconds in rows:
        print(f"{name:46} {1000 * seconds:8.2f} {60 / seconds:12.0f} {seconds / per_item:17.3f}")
    print("(book drop / this: the book drop's rate as a share of this one's)")
    print()

    # Where one return's time goes. The pad's modelled air time during the run covers every
    # inventory round (STABLE_ROUNDS identical rounds to accept the item, as many to see it leave)
    # and every read and write; the check-in is the circulation service's call (SIP2 round trip
    # plus the journal's fsynced commits); the rest is decoding, the workflow, the sorter and
    # the oversleep of the pad's timing model.
    parts = {
        "pad air time (all inventories, reads, AFI write, read-back)": air_per_item,
        "  of which above the physical limit (extra inventory rounds)": max(
            0.0, air_per_item - limit_s
        ),
        "check-in in the circulation service": checkin_per_item,
        "  of which the bare SIP2 round trip": sip_rtt,
        "  of which journal commits and the service": max(0.0, checkin_per_item - sip_rtt),
        "the rest (decoding, workflow, sorter, timer slack)": max(
            0.0, per_item - air_per_item - checkin_per_item
        ),
    }
    print("one return, by its parts:")
    for name, seconds in parts.items():
        print(f"  {name:62} {1000 * seconds:8.2f} ms {100 * seconds / per_item:6.1f} %")
    top = max(
        ("the pad's air time", air_per_item),
        ("the check-in (SIP2 + journal)", checkin_per_item),
        ("the rest", parts["the rest (decoding, workflow, sorter, timer slack)"]),
        key=lambda kv: kv[1],
    )
    print(f"dominates: {top[0]} ({100 * top[1] / per_item:.0f} % of a return)")
    print(
        f"ratios: the book drop reaches {limit_s / per_item:.3f} of the pad's physical limit and "
        f"{sip_rtt / per_item:.3f} of the library system's bare check-in rate"
    )
    print(
        f"bare SIP2 round trip over all runs: median {1000 * med(sip_all):.2f} ms, "
        f"p95 {1000 * sorted(sip_all)[int(0.95 * (len(sip_all) - 1))]:.2f} ms; "
        f"journal under {args.journal_dir or tempfile.gettempdir()}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
