"""`kiosk run` draws its welcome screen before anything else starts: the demo library system, the
journal and the devices come up after the first frame, and until the link has answered the
welcome screen says it is connecting. A patron's tap in that time is kept, not lost."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from tests.ui.conftest import make_config
from tests.ui.pilot import Pilot, pump

pytestmark = pytest.mark.timeout(120)


class Started:
    """A KioskApp started as `kiosk run` starts it (no services handed in), with what was on
    screen when its first frame was flipped."""

    def __init__(self, cfg: Any) -> None:
        from kivy.base import runTouchApp
        from kivy.core.window import Window

        from kiosk.app import KioskApp

        self.app = KioskApp(cfg)
        self.first: dict[str, Any] = {}
        self.app._run_prepare()

        def flipped(*_: Any) -> None:
            if not self.first:
                self.first = {
                    "screen": self.app.current_screen,
                    "banner": self.app.kiosk_root.ids.offline_banner.text,
                    "services": self.app.services,
                }

        # Bound after the app's own first-frame hook, so it is called before it (Kivy calls an
        # event's handlers last bound first): this sees the frame before anything else starts.
        Window.bind(on_flip=flipped)
        self._unbind = lambda: Window.unbind(on_flip=flipped)
        runTouchApp(embedded=True)
        self.pilot = Pilot(self.app)
        self.pilot.wait_until(lambda: self.first, 10, "the first frame")

    def stop(self) -> None:
        self._unbind()
        self.app.stop()
        pump(1)


@pytest.fixture
def started():
    runs: list[Started] = []
    yield lambda cfg: runs.append(Started(cfg)) or runs[-1]
    for run in runs:
        run.stop()


def test_welcome_is_drawn_before_the_link_is_up_and_says_so(tmp_path: Path, started) -> None:
    from kiosk.app import CONNECTING_TEXT, OFFLINE_TEXTS
    from kiosk.core.events import Action
    from kiosk.i18n import translator

    # A library system that takes the connection and never answers, until it goes away.
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen(4)
    try:
        cfg = make_config(tmp_path, held.getsockname()[1], sip2_timeout=60.0)
        run = started(cfg)
        assert run.first["screen"] == "welcome"
        assert run.first["services"] is None  # nothing of the parts before the first frame
        assert run.first["banner"] == translator("lv").gettext(CONNECTING_TEXT)
        assert run.first["banner"] != CONNECTING_TEXT  # said in the patron's language

        run.app.tap(Action.LANGUAGE, "en")  # a patron who does not wait for the link
        run.pilot.wait_until(lambda: run.app.parts_started, 60, "the kiosk's parts")
        accepted = held.accept()[0]  # the kiosk is at the library system's door
        pump(3)
        assert run.app.offline_text == CONNECTING_TEXT  # still no answer: still connecting
        assert run.app.current_screen == "welcome"
        assert run.app.lang == "en"  # the session's first snapshot did not undo the choice
    finally:
        held.close()
    accepted.close()  # the library system goes away: the link is down, and the banner says so
    run.pilot.wait_until(lambda: not run.app.connecting, 60, "the link's first status")
    assert run.app.offline_text == OFFLINE_TEXTS["checkin-and-checkout"]
    assert run.app.current_screen == "welcome"
    # The tap waited for the session (behind the first connection attempt) and was not lost.
    run.pilot.wait_until(
        lambda: run.app.state is not None and run.app.state.language == "en",
        10,
        "the language chosen while connecting",
    )
    assert run.app.lang == "en"


def test_the_connecting_line_goes_once_the_library_system_answers(
    tmp_path: Path, acs: Any, started
) -> None:
    cfg = make_config(tmp_path, acs.port)
    run = started(cfg)
    assert run.first["screen"] == "welcome" and run.first["services"] is None
    run.pilot.wait_until(lambda: run.app.parts_started and not run.app.connecting, 60, "online")
    assert run.app.online and run.app.offline_text == ""
    pump(2)
    assert run.app.kiosk_root.ids.offline_banner.text == ""
    run.app.present_card("LV0002")  # the demo library system's patron
    run.pilot.wait_until(lambda: run.app.current_screen in ("pin", "checkout"), 20, "login")


def test_a_stop_while_the_parts_start_leaves_none_of_them_running(tmp_path: Path) -> None:
    import threading

    held = socket.socket()  # a library system that never answers: the link cannot come up
    held.bind(("127.0.0.1", 0))
    held.listen(4)
    try:
        before = {t.ident for t in threading.enumerate()}
        run = Started(make_config(tmp_path, held.getsockname()[1], sip2_timeout=60.0))
        assert run.app.services is None
        run.stop()  # SIGTERM in the first second: the parts are still being built
        run.app.wait_started(60)
        left = [t.name for t in threading.enumerate() if t.ident not in before and t.is_alive()]
        assert left == [], left  # no worker, no reader thread, no card source
        assert run.app.services is None
    finally:
        held.close()
