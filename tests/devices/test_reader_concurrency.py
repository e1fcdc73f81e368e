"""One reader, two threads: the stack reader polls while the core worker flips tag security, on
the FEIG and 3M frame-level emulators over real pseudo-terminals. Multi-frame operations (a FEIG
inventory continued with MORE, an EAS read-back that inventories) must not interleave: no write
that landed is reported failed and no tag that stayed on the pad is reported removed.

The default run is bounded (a few hundred operations per reader); `-m slow` runs thousands.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pytest

from kiosk.config import SecuritySection
from kiosk.devices.readers import open_reader
from kiosk.devices.readers.emulators import FeigEmulator, FrameEmulator, ThreeMEmulator
from kiosk.devices.readers.sim import SimulatedPad, demo_tag
from kiosk.devices.security import TagSecurityService
from kiosk.devices.stack import StackReader

ITEMS = ("30000001", "30000002", "30000003", "30000004", "30000006", "30000007", "30000010")


@dataclass
class Tally:
    polls: int = 0
    writes: int = 0
    removed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def emulator(kind: str, pad: SimulatedPad) -> FrameEmulator:
    # Three tags per inventory answer: the FEIG stack inventory needs MORE to see the whole pad.
    return FeigEmulator(pad, max_data_sets=3) if kind == "feig" else ThreeMEmulator(pad)


def run(kind: str, tmp_path: object, writes: int) -> Tally:
    pad = SimulatedPad()
    tags = [pad.place(demo_tag(item)) for item in ITEMS]
    tally = Tally()
    with emulator(kind, pad).serve_pty(link_dir=tmp_path) as port:
        reader = open_reader(f"{kind}:{port.path}", timeout_s=0.5, retries=2)
        try:
            cfg = SecuritySection(method="eas", write_retries=0)
            security = TagSecurityService(reader, cfg, retry_delay_s=0)
            stack = StackReader(reader, stable_rounds=1, security=cfg)
            first = stack.poll_once()
            assert {t.uid for t in first.present} == {t.uid for t in tags}
            stop = threading.Event()

            def poll() -> None:
                while not stop.is_set():
                    change = stack.poll_once()
                    tally.polls += 1
                    tally.removed += [t.uid for t in change.removed]
                    if change.error:
                        tally.errors.append(change.error)

            poller = threading.Thread(target=poll, name="stack-poller", daemon=True)
            poller.start()
            try:
                for n in range(writes):
                    tag = tags[n % len(tags)]
                    secured = (n // len(tags)) % 2 == 1
                    res = security.secure(tag.uid) if secured else security.unsecure(tag.uid)
                    tally.writes += 1
                    if not res.ok or tag.eas is not secured:
                        tally.failed.append(f"{tag.uid}: {res.message} (tag EAS {tag.eas})")
            finally:
                stop.set()
                poller.join(10)
            assert not poller.is_alive()
        finally:
            reader.close()
    print(
        f"{kind}: {tally.writes} security writes, {tally.polls} stack polls, "
        f"{len(tally.failed)} failed writes, {len(tally.removed)} phantom removals"
    )
    return tally


def check(tally: Tally) -> None:
    assert tally.failed == []
    assert tally.removed == []
    assert tally.errors == []
    assert tally.polls > 0  # the two threads really ran together


@pytest.mark.parametrize("kind", ["feig", "3m"])
def test_stack_polling_and_security_writes_do_not_interleave(kind: str, tmp_path: object) -> None:
    check(run(kind, tmp_path, writes=50 if kind == "feig" else 200))


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("kind", ["feig", "3m"])
def test_stack_polling_and_security_writes_thousands_of_cycles(kind: str, tmp_path: object) -> None:
    check(run(kind, tmp_path, writes=3000))
