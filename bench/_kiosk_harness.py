"""Shared set-up for the UI benchmarks: Kivy offscreen, the embedded demo library system on a
temporary SQLite database and a free port, and a KioskApp driven without a main loop."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def headless_env() -> None:
    """Kivy's environment; must run before the first `import kivy`."""
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_NO_CONFIG", "1")
    os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")
    os.environ.setdefault("KIVY_HOME", tempfile.mkdtemp(prefix="kivy-bench-"))
    os.environ.setdefault("KIVY_CLIPBOARD", "dummy")
    from kiosk.runcli import KIVY_CLOCK  # the clock `kiosk run` uses

    os.environ.setdefault("KIVY_CLOCK", KIVY_CLOCK)
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")
    os.environ.setdefault("KCFG_GRAPHICS_FULLSCREEN", "0")
    os.environ.setdefault("KCFG_GRAPHICS_WIDTH", "1280")
    os.environ.setdefault("KCFG_GRAPHICS_HEIGHT", "800")


CONFIG = """
[kiosk]
library_name = "Demo bibliotēka"
[sip2]
host = "127.0.0.1"
port = {port}
username = "kiosk"
password = "demo"
institution_id = "DEMO"
location_code = "DEMO"
[storage]
path = "{tmp}/journal.sqlite"
[offline]
forward_interval_s = 3600
[acs]
max_loans = 1000
embedded = {embedded}
database_url = "sqlite:///{tmp}/acs.sqlite"
port = 0
[reader]
url = "sim:bench"
poll_interval_s = {poll}
stable_rounds = {stable_rounds}
[patron]
pin_policy = "none"
card_pattern = "^LV[0-9]{{4,12}}$"
item_pattern = "^[0-9]{{3,32}}$"
card_sources = ["sim:bench"]
[printer]
url = "file:{tmp}/receipts"
[ui]
fullscreen = false
sounds = false
"""


def pump(frames: int = 1) -> None:
    from kivy.base import EventLoop

    for _ in range(frames):
        EventLoop.idle()


def on_flip_once(callback: Callable[[], Any]) -> list[bool]:
    """Call `callback` when the window next flips a drawn frame (the first frame, before the app
    runs anything it scheduled for after it); the list returned is non-empty from then on."""
    from kivy.core.window import Window

    seen: list[bool] = []

    def flipped(*_: Any) -> None:
        Window.unbind(on_flip=flipped)
        seen.append(True)
        callback()

    Window.bind(on_flip=flipped)
    return seen


class Flips:
    """When each drawn frame was flipped, the frame finished (the app waits for it at the flip
    under the offscreen driver). Made before the app is built: Kivy calls the handlers of an
    event last-bound first, so this one runs after the app's own wait for the frame."""

    def __init__(self) -> None:
        from kivy.core.window import Window

        self.times: list[float] = []
        Window.bind(on_flip=lambda *_: self.times.append(time.perf_counter()))

    def settle(self, quiet: int = 3, timeout: float = 20.0) -> None:
        """Pump until `quiet` passes of the loop in a row have drawn nothing: the screen at rest,
        as when a patron acts next (the work of the previous step would otherwise be timed)."""
        deadline = time.monotonic() + timeout
        calm = 0
        while calm < quiet:
            drawn = len(self.times)
            pump(1)
            calm = calm + 1 if len(self.times) == drawn else 0
            if time.monotonic() > deadline:
                raise TimeoutError(f"the screen did not come to rest within {timeout}s")

    def first_after(self, moment: float, timeout: float = 20.0) -> float:
        """The flip of the first frame drawn after `moment` (pumping frames until there is one)."""
        found = wait_until(lambda: next((t for t in self.times if t > moment), None), timeout)
        return float(found)


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        pump(1)
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"benchmark step did not finish within {timeout}s")
        time.sleep(0.001)


class KioskRun:
    """The demo library system and a kiosk app, both in this process."""

    def __init__(
        self,
        poll_interval_s: float = 0.2,
        acs_delay_s: float = 0.0,
        *,
        embedded: bool = False,
        tmp: Path | None = None,
        own_process: bool = False,
        stable_rounds: int = 1,
    ) -> None:
        """`embedded`: the kiosk starts the demo library system itself, as `kiosk run` does on the
        default configuration (so its start counts in the kiosk's start-up); otherwise it is
        started here first: in this process, or with `own_process` as `kiosk acs` in its own, as a
        library system across a network would be (its work then never competes with the kiosk's
        UI thread for the interpreter lock). `tmp`: reuse a directory of an earlier run.
        `stable_rounds`: the inventories that must agree before the stack is believed (the
        site's default is 2; one keeps the other benchmarks' figures comparable with earlier
        ones)."""
        from kiosk.config import parse

        self.tmp = tmp or Path(tempfile.mkdtemp(prefix="kiosk-bench-"))
        self.acs: Any = None
        port = 6001  # replaced by the port the embedded library system takes (a free one)
        if own_process:
            self.acs = AcsProcess(self.tmp, acs_delay_s)
            port = self.acs.port
        elif not embedded:
            from kiosk.sync.acs.server import parse_profile, start_embedded

            profile = parse_profile(f"standard,reply_delay_s={acs_delay_s}")
            self.acs = start_embedded(
                f"sqlite:///{self.tmp}/acs.sqlite",
                "127.0.0.1",
                0,
                fresh=True,
                max_loans=1000,
                profile=profile,
            )
            port = self.acs.port
        text = CONFIG.format(
            port=port,
            tmp=self.tmp.as_posix(),
            poll=poll_interval_s,
            embedded=str(embedded).lower(),
            stable_rounds=stable_rounds,
        )
        self.cfg = parse(text, str(self.tmp / "kiosk.toml"))
        self.embedded = embedded
        self.app: Any = None

    def start(
        self, *, deferred: bool = False, on_first_frame: Callable[[], Any] = lambda: None
    ) -> Any:
        """Build the app and draw its welcome screen. `deferred`: as `kiosk run` starts it (the
        app builds its services after its first frame; `ready()` waits for them), else with the
        services built first. `on_first_frame` is called when that frame has been flipped."""
        from kivy.base import runTouchApp

        from kiosk.app import KioskApp, build_services

        if deferred:
            self.app = KioskApp(self.cfg)
        else:
            services = build_services(self.cfg, start_acs=self.embedded)
            if self.embedded:
                self.acs = services.acs
                self.cfg = services.cfg
            self.app = KioskApp(self.cfg, services)
        self.app._run_prepare()
        seen = on_flip_once(on_first_frame)
        runTouchApp(embedded=True)
        wait_until(lambda: seen)
        if not deferred:
            wait_until(lambda: self.app.current_screen == "welcome")
            pump(2)
        return self.app

    def ready(self) -> Any:
        """After a deferred start: the services attached and the link's first status known."""
        wait_until(lambda: self.app.parts_started and not self.app.connecting, timeout=120)
        self.cfg = self.app.services.cfg
        if self.embedded:
            self.acs = self.app.services.acs
        return self.app

    def login(self, card: str = "LV0002") -> None:
        self.app.present_card(card)
        wait_until(lambda: self.app.current_screen == "checkout")

    def items(self) -> dict[str, Any]:
        state = self.app.state
        return {i.item_id: i for i in state.checkout.items} if state and state.checkout else {}

    def rows(self) -> set[str]:
        return {row.item_id for row in self.app.screen("checkout").ids.item_list.children}

    def stop(self) -> None:
        if self.app is not None:
            self.app.stop()
        if self.acs is not None and not self.embedded:
            self.acs.stop()


def _off_the_kiosks_cpus() -> None:
    """In the library system's process, before it runs: under `--one-core` it takes the CPUs the
    kiosk was not given, as a library system across a network does not share the kiosk's."""
    kiosk_cpus = os.sched_getaffinity(0)
    others = set(range(os.cpu_count() or 1)) - kiosk_cpus
    if others and len(kiosk_cpus) == 1:
        os.sched_setaffinity(0, others)


class AcsProcess:
    """The demo library system as `kiosk acs` in a process of its own, on a free port; its
    SQLite database is reached from here too (`library.engine`), to add bench items."""

    def __init__(self, tmp: Path, delay_s: float) -> None:
        import re
        import subprocess

        from sqlalchemy import create_engine

        url = f"sqlite:///{tmp}/acs.sqlite"
        conf = tmp / "acs.toml"
        conf.write_text(
            CONFIG.format(
                port=6001, tmp=tmp.as_posix(), poll=0.2, embedded="false", stable_rounds=1
            ),
            encoding="utf-8",
        )
        cmd = [
            sys.executable,
            "-m",
            "kiosk",
            "--config",
            str(conf),
            "acs",
            "--port",
            "0",
            "--reset",
            "--database-url",
            url,
        ]
        cmd += ["--profile", f"standard,reply_delay_s={delay_s}"]
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=ROOT,
            preexec_fn=_off_the_kiosks_cpus,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        found = re.search(r" on [^ ]+:(\d+) ", line)
        if not found:
            self.proc.kill()
            raise SystemExit(f"the demo library system did not start: {line!r}")
        self.port = int(found.group(1))
        self.engine = create_engine(url)
        self.library = self

    def checkout(self, patron: str, item_id: str, no_block: bool = False) -> Any:
        raise SystemExit("items on loan need the library system in this process")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except Exception:
            self.proc.kill()
        self.engine.dispose()


def add_items(
    acs: Any, prefix: str, count: int, on_loan_to: str = "", sort_bin: str = ""
) -> list[str]:
    """`count` new loanable items in the demo library system's database (optionally on loan)."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from kiosk.sync.acs import models

    ids = [f"{prefix}{n:04d}" for n in range(count)]
    library = getattr(acs, "library", None)
    # The demo library system in a child process (`kiosk run`): its database, reached from here.
    engine = library.engine if library is not None else create_engine(acs.database_url)
    with Session(engine) as s, s.begin():
        for item_id in ids:
            s.add(
                models.ItemRow(
                    id=item_id,
                    title=f"Bench book {item_id}",
                    owner="LV-DEMO",
                    sort_bin=sort_bin,
                    permanent_location="Bench",
                )
            )
    if library is None:
        engine.dispose()
        if on_loan_to:
            raise SystemExit("items on loan need the library system in this process")
    for item_id in ids if on_loan_to else ():
        if not acs.library.checkout(on_loan_to, item_id, no_block=True).ok:
            raise SystemExit(f"benchmark broken: could not lend {item_id}")
    return ids


def one_core_if_asked(argv: list[str]) -> bool:
    """`--one-core`: pin this process (and every child it starts) to CPU 0, as `taskset -c 0`
    does, standing in for a Raspberry Pi's budget; the demo library system's process
    (`AcsProcess`) moves itself to the other CPUs."""
    if "--one-core" in argv:
        argv.remove("--one-core")
        os.sched_setaffinity(0, {0})
        return True
    return False


def table_row(cells: tuple[str, ...], widths: tuple[int, ...]) -> str:
    """One line of a results table, each cell right-aligned in its width."""
    return " ".join(f"{c:>{w}}" for c, w in zip(cells, widths, strict=True))


def over_cells(value_ms: float, over_ms: float, limit_ms: float = 50.0) -> tuple[str, str, str]:
    """A measured time, how far it is over its baseline, and whether that is within the limit."""
    return f"{value_ms:.1f}ms", f"{over_ms:.1f}ms", "yes" if over_ms <= limit_ms else "NO"


def budget() -> str:
    cpus = sorted(os.sched_getaffinity(0))
    return f"CPUs {cpus} of {os.cpu_count()} (load average {os.getloadavg()[0]:.1f}; the machine is shared)"


def rss_mib(pid: int | str = "self") -> float:
    """Resident memory of this process (or of `pid`), from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")
