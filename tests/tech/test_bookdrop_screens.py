"""Book-drop screens: attract, a big result per item, closed; trilingual with Latvian first; with
screenshots. The last test drives them from the real book-drop workflow and the demo library."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import pytest

from kiosk import config
from kiosk.core.bookdrop import BookDropItem, BookDropState, Component, FinalState
from kiosk.core.routing import Instruction, ReturnOutcome
from tests.tech.conftest import write_site
from tests.tech.ui_host import HostApp, frames, screenshot

pytestmark = pytest.mark.ui
_pads = itertools.count(1)


def _start(cfg, services=None):
    from kivy.base import runTouchApp

    from kiosk.screens import bookdrop  # noqa: F401  (registers the screens)

    app = HostApp(cfg, services or SimpleNamespace(cfg=cfg, faults=[]), ("bookdrop",))
    app._run_prepare()
    runTouchApp(embedded=True)
    frames(3)
    return app


@pytest.fixture
def drop_app(tmp_path):
    cfg = config.load(
        write_site(
            tmp_path,
            port=6001,
            sorter="sim:",
            extra='[ui]\nopening_hours = "P-Pk 10-19, S 10-16"\n',
        )
    )
    app = _start(cfg)
    app.show_screen("bookdrop")
    yield app
    app.stop()


def _item(
    final=FinalState.CHECKED_IN_SECURED,
    outcome=ReturnOutcome.CHECKED_IN,
    bin=1,
    instruction=Instruction.DONE,
    seq=1,
):
    return BookDropItem(
        sequence=seq,
        key="30000001",
        item_id="30000001",
        final=final,
        outcome=outcome,
        bin=bin,
        title="Zaļā grāmata",
        instruction=instruction,
    )


def _texts(screen):
    return [screen.ids.headline.text, screen.ids.others.text, screen.ids.reason.text]


def test_attract_screen_in_three_languages_latvian_first(drop_app):
    screen = drop_app.screen("bookdrop")
    screen.show(BookDropState())
    frames(2)
    head, others, sub = _texts(screen)
    assert head == "Ievietojiet pa vienai grāmatai"
    assert others.splitlines() == ["Drop one item at a time", "Опускайте по одной книге"]
    assert "No library card needed" in sub
    assert (
        screen.ids.headline.font_size > screen.ids.others.font_size
    )  # Latvian takes the main place
    screenshot(drop_app, "bookdrop_attract")


@pytest.mark.parametrize(
    "name, item, head, kind, reason",
    [
        ("bookdrop_returned", _item(), "Paldies! Nodots", "ok", ""),
        (
            "bookdrop_returned_offline",
            _item(final=FinalState.QUEUED_OFFLINE_SECURED, outcome=ReturnOutcome.QUEUED_OFFLINE),
            "Pieņemts, tiks reģistrēts vēlāk",
            "ok",
            "",
        ),
        (
            "bookdrop_hold",
            _item(instruction=Instruction.HOLD_SHELF, bin=2),
            "Rezervēts: nolikts malā",
            "note",
            "",
        ),
        (
            "bookdrop_bin",
            _item(instruction=Instruction.OTHER_BRANCH, bin=3),
            "Paldies! Nodots",
            "ok",
            "",
        ),
        (
            "bookdrop_exception",
            _item(final=FinalState.EXCEPTION_BIN, outcome=ReturnOutcome.UNREADABLE_TAG, bin=0),
            "Darbinieki to pārbaudīs",
            "stop",
            "The tag cannot be read",
        ),
        (
            "bookdrop_other_library",
            _item(final=FinalState.EXCEPTION_BIN, outcome=ReturnOutcome.OTHER_LIBRARY, bin=0),
            "Darbinieki to pārbaudīs",
            "stop",
            "Belongs to another library",
        ),
        (
            "bookdrop_sorter_failed",
            _item(final=FinalState.EXCEPTION_BIN, outcome=ReturnOutcome.SORTER_FAILED, bin=9),
            "Darbinieki to pārbaudīs",
            "stop",
            "",
        ),
    ],
)
def test_a_big_result_per_item(drop_app, name, item, head, kind, reason):
    from kivy.uix.label import Label

    screen = drop_app.screen("bookdrop")
    screen.show(BookDropState(last=item))
    frames(2)
    assert screen.mode == "result"
    assert screen.kind == kind
    assert screen.ids.headline.text == head
    assert reason in screen.ids.reason.text
    shown = " ".join(w.text for w in screen.walk() if isinstance(w, Label))
    assert f"#{item.bin}" not in shown
    assert "sorter" not in shown.lower()  # no bin numbers or technical reasons
    assert screen.ids.headline.font_size >= 60  # readable from a distance
    r, g, b = screen.panel[:3]
    light = 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.5
    assert (
        tuple(screen.ids.headline.color)[0] < 0.5
    ) == light  # dark text on light panels, white on dark
    screenshot(drop_app, name)


def test_without_a_sorter_exceptions_go_to_the_desk_and_no_bin_is_shown(tmp_path):
    cfg = config.load(write_site(tmp_path, port=6001, sorter="none"))
    app = _start(cfg)
    try:
        app.show_screen("bookdrop")
        screen = app.screen("bookdrop")
        screen.show(
            BookDropState(
                last=_item(
                    final=FinalState.EXCEPTION_BIN, outcome=ReturnOutcome.SET_INCOMPLETE, bin=0
                )
            )
        )
        frames(2)
        assert screen.ids.headline.text == "Lūdzu, nododiet to bibliotekāram"
        assert "Please take it to the desk" in screen.ids.others.text
        screenshot(app, "bookdrop_take_to_desk")
    finally:
        app.stop()


def test_only_the_configured_languages(tmp_path):
    cfg = config.load(write_site(tmp_path, port=6001))
    import dataclasses

    cfg = dataclasses.replace(cfg, kiosk=dataclasses.replace(cfg.kiosk, languages=("en", "lv")))
    app = _start(cfg)
    try:
        screen = app.screen("bookdrop")
        screen.show(BookDropState())
        assert screen.lines == [
            "Ievietojiet pa vienai grāmatai",
            "Drop one item at a time",
        ]  # lv first, no ru
    finally:
        app.stop()


def test_busy_offline_note_and_closed(drop_app):
    from kiosk.screens.bookdrop import screen_for

    screen = drop_app.screen("bookdrop")
    screen.show(BookDropState(busy=True, outages=frozenset({Component.LIBRARY_SYSTEM})))
    frames(2)
    assert screen.mode == "busy"
    assert screen.offline
    assert "Bibliotēkas sistēma nav pieejama" in screen.note
    assert "Система библиотеки недоступна" in screen.note
    assert "Library system offline" in screen.note
    screenshot(drop_app, "bookdrop_busy_offline")
    down = BookDropState(outages=frozenset({Component.READER}))
    assert screen_for(down) == "bookdrop_closed"
    assert screen_for(BookDropState()) == "bookdrop"
    assert screen_for(BookDropState(), in_service=False) == "bookdrop_closed"
    closed = drop_app.screen("bookdrop_closed")
    closed.show(down)
    drop_app.show_screen("bookdrop_closed")
    frames(2)
    assert closed.lines[0] == "Grāmatu nodošana slēgta"
    assert "RFID" not in closed.detail  # no technical text
    assert closed.detail.splitlines() == [
        "Bibliotēkas darba laiks: P-Pk 10-19, S 10-16",
        "Library opening hours: P-Pk 10-19, S 10-16",
        "Часы работы библиотеки: P-Pk 10-19, S 10-16",
    ]
    screenshot(drop_app, "bookdrop_closed")


def test_driven_by_the_book_drop_workflow(tmp_path, demo_acs):
    from kiosk.core.bookdrop import BookDrop
    from kiosk.core.events import TagsChanged
    from kiosk.core.ports import ManualClock
    from kiosk.core.returns import ReturnSettings
    from kiosk.core.routing import RoutingTable
    from kiosk.devices.readers import open_reader
    from kiosk.devices.readers.sim import demo_tag, get_shared_pad
    from kiosk.devices.security import TagSecurityService
    from kiosk.devices.sorter import open_sorter
    from kiosk.devices.stack import StackReader
    from kiosk.sync.circulation import build_circulation

    pad_name = f"drop-{next(_pads)}"
    cfg = config.load(
        write_site(tmp_path, port=demo_acs.port, reader=f"sim:{pad_name}", sorter="sim:")
    )
    reader = open_reader(cfg.reader.url)
    circulation = build_circulation(cfg)
    sorter = open_sorter("sim:")
    drop = BookDrop(
        circulation,
        TagSecurityService(reader, cfg.security),
        sorter,
        ManualClock(),
        RoutingTable.from_config(cfg),
        ReturnSettings.from_config(cfg),
    )
    stack = StackReader(reader, stable_rounds=1, security=cfg.security)
    pad = get_shared_pad(pad_name)
    app = _start(cfg)
    try:
        screen = app.screen("bookdrop")
        app.show_screen("bookdrop")
        pad.place(demo_tag("30000009", secured=False))  # on loan to LV0001: a plain return
        change = stack.poll_once()
        state = drop.handle_tags(TagsChanged(present=stack.current(), added=change.added))
        screen.show(state)
        frames(2)
        assert state.last.final is FinalState.CHECKED_IN_SECURED
        assert screen.kind == "ok"
        assert screen.ids.headline.text == "Paldies! Nodots"
        assert screen.title_text == "Sprīdītis"
        assert pad.tag(next(iter(t.uid for t in stack.current()))).afi == cfg.security.afi_secured
        screenshot(app, "bookdrop_workflow_returned")
    finally:
        app.stop()
        pad.clear()
        circulation.close()
        reader.close()


def test_screens_are_in_the_apps_registry():
    import importlib

    from kiosk.app import EXTRA_SCREEN_MODULES
    from kiosk.screens.base import registered_screens

    for module in ("kiosk.screens.maintenance", "kiosk.screens.bookdrop"):
        assert module in EXTRA_SCREEN_MODULES
        importlib.import_module(module)
    names = set(registered_screens())
    assert {
        "bookdrop",
        "bookdrop_closed",
        "maintenance_login",
        "maintenance",
        "maintenance_diag",
        "maintenance_queue",
        "maintenance_stats",
        "maintenance_service",
    } <= names


def test_maintenance_out_of_service_closes_the_book_drop(tmp_path):
    import dataclasses

    from kivy.base import runTouchApp

    from kiosk.screens import maintenance  # noqa: F401
    from tests.tech.conftest import ADMIN_CARD

    cfg = config.load(write_site(tmp_path, port=6001, sorter="sim:"))
    cfg = dataclasses.replace(cfg, kiosk=dataclasses.replace(cfg.kiosk, mode="bookdrop"))

    app = HostApp(cfg, SimpleNamespace(cfg=cfg, faults=[]), ("bookdrop", "maintenance"))
    app._run_prepare()
    runTouchApp(embedded=True)
    frames(3)
    try:
        app.show_screen("bookdrop")
        ctl = app.maintenance
        assert ctl.card_presented(ADMIN_CARD)
        assert app.current_screen == "maintenance"
        ctl.set_in_service(False, "Maintenance")
        ctl.leave()
        frames(2)
        assert app.current_screen == "bookdrop_closed"
        assert app.services.faults == ["Out of service: Maintenance"]
        closed = app.screen("bookdrop_closed")
        closed.show(None)
        assert "Out of service" not in closed.detail  # the technician's reason is not for patrons
        ctl.card_presented(ADMIN_CARD)
        ctl.set_in_service(True)
        ctl.leave()
        assert app.current_screen == "bookdrop"
    finally:
        app.maintenance.stop()
        app.stop()


def test_high_contrast_and_large_text(drop_app):
    screen = drop_app.screen("bookdrop")
    normal = screen.ids.headline.font_size
    drop_app.theme.high_contrast = True
    drop_app.theme.large_text = True
    try:
        screen.show(BookDropState(last=_item()))
        frames(2)
        assert screen.ids.headline.font_size > normal
        assert tuple(screen.ids.headline.color)[:3] == (
            0.05,
            0.05,
            0.05,
        )  # dark ink on the light green
        screenshot(drop_app, "bookdrop_returned_high_contrast")
        screen.show(BookDropState())
        frames(2)
        assert tuple(screen.ids.headline.color) == tuple(drop_app.theme.fg) == (1, 1, 1, 1)
        screenshot(drop_app, "bookdrop_attract_high_contrast")
    finally:
        drop_app.theme.reset()


@pytest.mark.parametrize("size", [(800, 480), (480, 800)])
def test_long_latvian_and_russian_texts_fit_a_small_display(drop_app, size):
    """The longest texts (Latvian first and largest) on the small official displays: nothing cut off."""
    from kivy.core.window import Window
    from kivy.uix.label import Label

    before = tuple(Window.size)
    Window.size = size
    suffix = f"{size[0]}x{size[1]}"
    states = {
        "attract": BookDropState(),
        "desk": BookDropState(
            last=_item(
                final=FinalState.EXCEPTION_BIN,
                outcome=ReturnOutcome.SECURITY_FAILED,
                bin=0,
                instruction=Instruction.TAKE_TO_DESK,
            )
        ),
        "offline": BookDropState(
            last=_item(
                final=FinalState.QUEUED_OFFLINE_SECURED, outcome=ReturnOutcome.QUEUED_OFFLINE
            ),
            outages=frozenset({Component.LIBRARY_SYSTEM}),
        ),
    }
    try:
        screen = drop_app.screen("bookdrop")
        for name, state in states.items():
            screen.show(state)
            screenshot(drop_app, f"bookdrop_{name}_{suffix}")
            for label in screen.walk():
                if isinstance(label, Label) and label.text and label.opacity:
                    assert label.texture_size[0] <= Window.width, (name, label.text)
                    assert 0 <= label.y, (name, label.text)
                    assert label.top <= Window.height + 1, (name, label.text)
        closed = drop_app.screen("bookdrop_closed")
        closed.show(BookDropState(outages=frozenset({Component.READER})))
        drop_app.show_screen("bookdrop_closed")
        screenshot(drop_app, f"bookdrop_closed_{suffix}")
        assert "RFID" not in closed.detail
        for label in closed.walk():
            if isinstance(label, Label) and label.text:
                assert label.texture_size[0] <= Window.width, ("closed", label.text)
                assert 0 <= label.y, ("closed", label.text)
                assert label.top <= Window.height + 1, ("closed", label.text)
    finally:
        Window.size = before
        frames(2)
