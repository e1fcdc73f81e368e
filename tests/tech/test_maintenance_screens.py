"""Maintenance mode on the touch screen: the hidden corner, admin login by PIN and card, lock-out,
automatic leave, every diagnostics action and out of service, with screenshots of every screen."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest

from kiosk import config
from kiosk.core.domain import Mode, Operation
from kiosk.core.ports import ManualClock
from kiosk.sync.journal import EntryState
from tests.tech.conftest import ADMIN_CARD, ADMIN_PIN, write_site
from tests.tech.ui_host import HostApp, button, frames, screenshot, tap, wait_until

pytestmark = pytest.mark.ui
_pads = itertools.count(1)


@pytest.fixture
def kiosk(tmp_path, demo_acs):
    from kivy.base import runTouchApp

    from kiosk.devices.printer import open_printer
    from kiosk.devices.readers import open_reader
    from kiosk.devices.readers.sim import demo_tag, get_shared_pad
    from kiosk.devices.sorter import open_sorter
    from kiosk.screens import maintenance  # noqa: F401  (registers the screens)
    from kiosk.sync.circulation import build_circulation

    pad_name = f"maint-ui-{next(_pads)}"
    cfg = config.load(write_site(tmp_path, port=demo_acs.port, reader=f"sim:{pad_name}"))
    clock = ManualClock(datetime.now().replace(microsecond=0))
    circulation = build_circulation(cfg)
    services = SimpleNamespace(
        cfg=cfg,
        clock=clock,
        reader=open_reader(cfg.reader.url),
        security=None,
        printer=open_printer(cfg.printer.url, base=cfg.resolve_path(".")),
        sorter=open_sorter("sim:"),
        circulation=circulation,
        faults=[],
    )
    pad = get_shared_pad(pad_name)
    pad.place(demo_tag("30000003", secured=True))
    pad.place(demo_tag("30000010", secured=False))
    app = HostApp(cfg, services, ("maintenance",))
    app._run_prepare()
    runTouchApp(embedded=True)
    frames(3)
    yield SimpleNamespace(
        app=app, clock=clock, pad=pad, services=services, tmp=tmp_path, acs=demo_acs
    )
    app.maintenance.stop()
    app.stop()
    pad.clear()
    circulation.close()


def _login(k, pin=ADMIN_PIN):
    k.app.maintenance.open_login()
    frames(2)
    screen = k.app.screen("maintenance_login")
    for digit in pin:
        tap(button(screen.ids.pad, digit))
    tap(button(screen.ids.pad, "OK"))
    return screen


def test_hidden_corner_long_press_opens_the_login(kiosk):
    from kivy.core.window import Window
    from kivy.tests.common import UnitTestTouch

    touch = UnitTestTouch(20, Window.height - 20)
    touch.touch_down()
    frames(2)
    kiosk.clock.advance(3)
    kiosk.app.maintenance.tick()
    assert kiosk.app.current_screen == "welcome"
    kiosk.clock.advance(2)
    kiosk.app.maintenance.tick()
    frames(2)
    assert kiosk.app.current_screen == "maintenance_login"
    touch.touch_up()
    frames(1)
    screenshot(kiosk.app, "maintenance_login")


def test_a_short_press_or_another_place_does_nothing(kiosk):
    from kivy.core.window import Window
    from kivy.tests.common import UnitTestTouch

    for x, y, held in ((20, Window.height - 20, 2), (Window.width / 2, Window.height / 2, 10)):
        touch = UnitTestTouch(x, y)
        touch.touch_down()
        kiosk.clock.advance(held)
        kiosk.app.maintenance.tick()
        touch.touch_up()
        frames(1)
        assert kiosk.app.current_screen == "welcome"


def test_pin_login_shows_the_device_status(kiosk):
    kiosk.services.circulation.journal.record_event(
        "outage_start", "sorter: down: connection refused"
    )
    _login(kiosk)
    assert kiosk.app.current_screen == "maintenance"
    status = kiosk.app.screen("maintenance")
    wait_until(lambda: len(status.checks) >= 6)
    names = {c.name: c.status.value for c in status.checks}
    assert names["reader"] == "ok"
    assert names["printer"] == "ok"
    assert names["sorter"] == "ok"
    assert names["offline queue"] == "ok"
    assert names["library"] == "warn"  # reachable; the session connects on first use
    lines = [getattr(w, "text", "") for w in status.ids.rows.children]
    assert any("outage_start" in t and "sorter: down" in t for t in lines)
    assert any("maintenance_entered" in t for t in lines)
    screenshot(kiosk.app, "maintenance_status")


def test_wrong_pins_lock_out_then_time_out(kiosk):
    screen = _login(kiosk, "1111")
    assert kiosk.app.current_screen == "maintenance_login"
    assert "2 attempts left" in screen.message
    _login(kiosk, "2222")
    _login(kiosk, "3333")
    assert screen.locked
    assert "Locked for 5:00" in screen.message
    screenshot(kiosk.app, "maintenance_login_locked")
    _login(kiosk)  # the right PIN during the lock-out
    assert kiosk.app.current_screen == "maintenance_login"
    assert screen.locked
    kiosk.clock.advance(301)
    _login(kiosk)
    assert kiosk.app.current_screen == "maintenance"
    events = [(e.kind, e.detail) for e in kiosk.services.circulation.journal.events()]
    kinds = [k for k, _ in events]
    assert kinds.count("admin_login_failed") == 2
    assert kinds.count("admin_locked") == 1
    assert kinds[-1] == "maintenance_entered"
    assert not any(pin in d for _, d in events for pin in ("1111", "2222", "3333", ADMIN_PIN))


def test_admin_card_enters_and_patron_cards_pass_through(kiosk):
    ctl = kiosk.app.maintenance
    assert ctl.card_presented("LV0001") is False
    assert kiosk.app.current_screen == "welcome"
    assert ctl.card_presented(ADMIN_CARD) is True
    frames(2)
    assert kiosk.app.current_screen == "maintenance"
    entered = [
        e.detail
        for e in kiosk.services.circulation.journal.events()
        if e.kind == "maintenance_entered"
    ]
    assert entered == ["admin card ***0001"]


def test_leaves_after_inactivity_and_by_the_leave_button(kiosk):
    _login(kiosk)
    kiosk.clock.advance(250)
    tap(button(kiosk.app.screen("maintenance"), "Diagnostics"))  # activity
    assert kiosk.app.current_screen == "maintenance_diag"
    kiosk.clock.advance(250)
    kiosk.app.maintenance.tick()
    assert kiosk.app.current_screen == "maintenance_diag"
    kiosk.clock.advance(51)
    kiosk.app.maintenance.tick()
    frames(1)
    assert kiosk.app.current_screen == "welcome"
    assert not kiosk.app.maintenance.access.active
    _login(kiosk)
    tap(button(kiosk.app.screen("maintenance"), "Leave"))
    assert kiosk.app.current_screen == "welcome"


def _output(screen):
    return [w.text for w in screen.ids.output.children[::-1]]


def test_every_diagnostics_action(kiosk):
    _login(kiosk)
    tap(button(kiosk.app.screen("maintenance"), "Diagnostics"))
    diag = kiosk.app.screen("maintenance_diag")

    tap(diag.ids.read_tags)
    wait_until(lambda: not diag.busy and _output(diag))
    assert diag.ids.read_tags.width >= 300
    assert diag.ids.output.width >= 600  # buttons beside the output
    out = "\n".join(_output(diag))
    assert "Tags on the pad: 2" in out
    assert "30000003" in out
    assert "30000010" in out
    assert "NOT secured" in out
    screenshot(kiosk.app, "maintenance_diag_tags")

    first = diag.last_uid
    before = kiosk.pad.tag(first).afi
    tap(diag.ids.write_afi)
    wait_until(lambda: not diag.busy and "wrote" in "\n".join(_output(diag)))
    assert kiosk.pad.tag(first).afi != before
    tap(diag.ids.write_afi)
    wait_until(
        lambda: not diag.busy and kiosk.pad.tag(first).afi == before
    )  # the second press restores it

    tap(diag.ids.print_test)
    wait_until(lambda: not diag.busy and "printed" in "\n".join(_output(diag)))
    assert list((kiosk.tmp / "var" / "receipts").glob("*test.txt"))

    tap(diag.ids.sip2_check)
    wait_until(lambda: not diag.busy and "exchange:" in "\n".join(_output(diag)), timeout_s=15)
    out = "\n".join(_output(diag))
    assert "online: True" in out
    assert "9300CNkiosk|CO|" in out
    assert "COdemo" not in out
    screenshot(kiosk.app, "maintenance_diag_sip2")

    kiosk.services.circulation.identify_patron("LV0001", pin="1234")
    tap(diag.ids.exchanges)
    wait_until(lambda: not diag.busy and "masked" in "\n".join(_output(diag)))
    out = "\n".join(_output(diag))
    assert "|AD|" in out
    assert "AD1234" not in out
    assert "LV0001" not in out


def test_offline_queue_forward_and_refusals(kiosk):
    journal = kiosk.services.circulation.journal
    journal.begin(Operation.CHECKIN, mode=Mode.OFFLINE, state=EntryState.QUEUED, item_id="30000009")
    journal.begin(
        Operation.CHECKOUT,
        mode=Mode.OFFLINE,
        state=EntryState.QUEUED,
        patron_id="LV0001",
        item_id="30000007",
    )  # not for loan
    journal.begin(
        Operation.CHECKOUT,
        mode=Mode.OFFLINE,
        state=EntryState.QUEUED,
        patron_id="LV0001",
        item_id="99999998",
    )  # unknown
    _login(kiosk)
    tap(button(kiosk.app.screen("maintenance"), "Offline queue"))
    queue = kiosk.app.screen("maintenance_queue")
    wait_until(lambda: queue.pending == 3)
    tap(queue.ids.forward)
    wait_until(lambda: "forwarded" in queue.report and queue.pending == 0, timeout_s=15)
    for item_id in ("30000007", "99999998"):  # both refused by the library system, listed for staff
        wait_until(
            lambda item_id=item_id: any(
                item_id in getattr(w, "detail", "") for w in queue.ids.refusals.children
            )
        )
        row = next(w for w in queue.ids.refusals.children if item_id in w.detail)
        assert "**0001" in row.detail
        assert "LV0001" not in row.detail
    screenshot(kiosk.app, "maintenance_queue")


def test_statistics_bar_charts(kiosk):
    journal = kiosk.services.circulation.journal
    now = kiosk.clock.now()
    for h, (op, state) in enumerate(
        [(Operation.CHECKOUT, EntryState.DONE)] * 5
        + [(Operation.CHECKIN, EntryState.DONE)] * 3
        + [(Operation.CHECKOUT, EntryState.REFUSED)]
    ):
        journal.begin(
            op,
            mode=Mode.ONLINE,
            state=state,
            patron_id="LV0001",
            item_id=str(h),
            created=now - timedelta(hours=h % 4),
        )
    journal.begin(
        Operation.RENEW,
        mode=Mode.ONLINE,
        state=EntryState.DONE,
        patron_id="LV0001",
        item_id="9",
        created=now - timedelta(days=3),
    )
    _login(kiosk)
    tap(button(kiosk.app.screen("maintenance"), "Statistics"))
    stats = kiosk.app.screen("maintenance_stats")
    wait_until(lambda: stats.totals.startswith("Last 14 days"))
    assert "5 checkouts, 3 returns, 1 renewals, 1 refusals" in stats.totals
    hourly, daily = stats.ids.hourly, stats.ids.daily
    assert len(hourly.buckets) == 24
    assert len(daily.buckets) == 14
    # Summed over days, not the busiest day: near midnight the entries span two days.
    assert sum(c.total for _, c in hourly.buckets) == 9
    assert sum(c.total for _, c in daily.buckets) == 10
    assert daily.max_total >= 5
    assert len(hourly.canvas.after.children) > 10  # bars were drawn
    screenshot(kiosk.app, "maintenance_stats")


def test_out_of_service_and_back(kiosk):
    _login(kiosk)
    tap(button(kiosk.app.screen("maintenance"), "Service"))
    service = kiosk.app.screen("maintenance_service")
    tap(button(service, "Printer repair"))
    assert service.reason == "Printer repair"
    tap(service.ids.take_out)
    assert not service.in_service
    assert kiosk.services.faults == ["Out of service: Printer repair"]
    screenshot(kiosk.app, "maintenance_service")
    tap(button(service, "Leave"))
    assert kiosk.app.current_screen == "out_of_service"
    events = [e.kind for e in kiosk.services.circulation.journal.events()]
    assert "out_of_service" in events
    kiosk.app.maintenance.card_presented(ADMIN_CARD)
    frames(1)
    tap(button(kiosk.app.screen("maintenance"), "Service"))
    tap(service.ids.put_back)
    assert service.in_service
    assert kiosk.services.faults == []
    tap(button(service, "Leave"))
    assert kiosk.app.current_screen == "welcome"


def test_restart_is_the_admin_exit(kiosk):
    from kivy.core.window import Window

    from kiosk.screens.lockdown import apply_lockdown

    lock = apply_lockdown(Window, fullscreen=False, hide_cursor=False)
    kiosk.app.maintenance.lockdown = lock
    try:
        assert Window.dispatch("on_request_close") is True
        _login(kiosk)
        tap(button(kiosk.app.screen("maintenance"), "Service"))
        tap(kiosk.app.screen("maintenance_service").ids.restart)
        assert kiosk.app.stopped
        assert lock.exit_allowed
    finally:
        lock.release()


@pytest.mark.parametrize("size", [(800, 480), (480, 800)])
def test_small_official_display(kiosk, size):
    from kivy.core.window import Window

    before = tuple(Window.size)
    Window.size = size
    try:
        frames(3)
        kiosk.app.maintenance.open_login()
        screenshot(kiosk.app, f"maintenance_login_{size[0]}x{size[1]}")
        _login(kiosk)
        status = kiosk.app.screen("maintenance")
        wait_until(lambda: len(status.checks) >= 6)
        screenshot(kiosk.app, f"maintenance_status_{size[0]}x{size[1]}")
        tap(button(status, "Diagnostics"))
        diag = kiosk.app.screen("maintenance_diag")
        tap(diag.ids.read_tags)
        wait_until(lambda: not diag.busy and _output(diag))
        screenshot(kiosk.app, f"maintenance_diag_{size[0]}x{size[1]}")
        for b in (diag.ids.read_tags, diag.ids.print_test, button(diag, "Leave")):
            assert b.height >= 48
            assert b.width >= 48
            assert b.right <= Window.width + 1
        for name, nav in (
            ("maintenance_stats", "Statistics"),
            ("maintenance_service", "Service"),
            ("maintenance_queue", "Offline queue"),
        ):
            tap(button(kiosk.app.screen(kiosk.app.current_screen), nav))
            assert kiosk.app.current_screen == name
            screenshot(kiosk.app, f"{name}_{size[0]}x{size[1]}")
    finally:
        Window.size = before
        frames(2)


def test_the_hidden_corner_does_not_take_taps_from_patron_buttons(kiosk):
    from kivy.core.window import Window
    from kivy.uix.button import Button

    pressed = []
    corner_button = Button(
        text="Language", size_hint=(None, None), size=(90, 90), pos=(0, Window.height - 90)
    )
    corner_button.bind(on_release=lambda *_: pressed.append(True))
    kiosk.app.screen("welcome").add_widget(corner_button)
    tap(corner_button)
    assert pressed == [True]
    assert kiosk.app.current_screen == "welcome"


def test_stopping_the_app_stops_the_maintenance_clock(kiosk):
    ctl = kiosk.app.maintenance
    assert ctl._tick_event.is_triggered
    kiosk.app.stop()
    assert not ctl._tick_event.is_triggered


def test_an_abandoned_login_prompt_goes_back_to_the_patron_screen(kiosk):
    kiosk.app.maintenance.open_login()
    frames(1)
    assert kiosk.app.current_screen == "maintenance_login"
    kiosk.clock.advance(299)
    kiosk.app.maintenance.tick()
    assert kiosk.app.current_screen == "maintenance_login"
    kiosk.clock.advance(2)
    kiosk.app.maintenance.tick()
    assert kiosk.app.current_screen == "welcome"


@pytest.mark.parametrize("lang", ["lv", "ru"])
@pytest.mark.parametrize("size", [None, (800, 480), (480, 800)])
def test_every_screen_in_latvian_and_russian(kiosk, lang, size):
    """Latvian and Russian texts are longer than English: every screen, with screenshots to look at."""
    from kivy.core.window import Window

    from kiosk.i18n import translator

    t = translator(lang).gettext
    before = tuple(Window.size)
    kiosk.app.lang = lang
    suffix = f"{lang}" + (f"_{size[0]}x{size[1]}" if size else "")
    if size:
        Window.size = size
    try:
        frames(3)
        screen = _login(kiosk, "1111")
        assert (
            screen.message
            == {
                "lv": "Nepareizs PIN. Atlikuši 2 mēģinājumi.",
                "ru": "Неверный PIN. Осталось 2 попытки.",
            }[lang]
        )
        screenshot(kiosk.app, f"maintenance_login_{suffix}")
        _login(kiosk)
        status = kiosk.app.screen("maintenance")
        wait_until(lambda: len(status.checks) >= 6)
        frames(2)
        names = [w.name for w in status.ids.rows.children if hasattr(w, "name")]
        assert t("reader") in names
        assert t("card reader") in names
        screenshot(kiosk.app, f"maintenance_status_{suffix}")
        tap(button(status, t("Diagnostics")))
        diag = kiosk.app.screen("maintenance_diag")
        tap(diag.ids.read_tags)
        wait_until(lambda: not diag.busy and _output(diag))
        assert _output(diag)[0] == t("Tags on the pad: {n}").format(n=2)
        screenshot(kiosk.app, f"maintenance_diag_{suffix}")
        tap(diag.ids.print_test)
        wait_until(lambda: not diag.busy and _output(diag)[0] == t("Test receipt"))
        screenshot(kiosk.app, f"maintenance_diag_receipt_{suffix}")
        for b in (
            diag.ids.read_tags,
            diag.ids.print_test,
            diag.ids.exchanges,
            button(diag, t("Leave")),
        ):
            assert b.right <= Window.width + 1, b.text
            assert b.texture_size[1] <= b.height, b.text  # text fits its button
        for name, nav in (
            ("maintenance_queue", "Offline queue"),
            ("maintenance_stats", "Statistics"),
            ("maintenance_service", "Service"),
        ):
            tap(button(kiosk.app.screen(kiosk.app.current_screen), t(nav)))
            assert kiosk.app.current_screen == name
            if name == "maintenance_stats":
                stats = kiosk.app.screen(name)
                totals = t(
                    "Last 14 days: {c} checkouts, {r} returns, {n} renewals, {x} refusals"
                ).format(c=0, r=0, n=0, x=0)
                wait_until(lambda stats=stats, totals=totals: stats.totals == totals)
            screenshot(kiosk.app, f"{name}_{suffix}")
        service = kiosk.app.screen("maintenance_service")
        tap(button(service, t("Printer repair")))
        tap(service.ids.take_out)
        assert kiosk.services.faults == [f"Out of service: {t('Printer repair')}"]
        screenshot(kiosk.app, f"maintenance_service_out_{suffix}")
        tap(service.ids.put_back)
    finally:
        kiosk.app.lang = "en"
        Window.size = before
        frames(2)
