"""The technician's maintenance mode on the touch screen: admin login, device status, live
diagnostics, the offline queue, statistics as bar charts, and out of service / back.

How a technician gets in (docs/appliance.md): hold the left end of the top bar (over the
library's name, never on a patron control) for five seconds, then type the admin PIN;
or hold an admin card to any card reader at any time. The app hands card numbers to
`MaintenanceController.card_presented()` before the patron session sees them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from kivy.app import App
from kivy.clock import Clock
from kivy.graphics import Color, Line, Rectangle
from kivy.properties import (
    BooleanProperty,
    ListProperty,
    NumericProperty,
    ObjectProperty,
    StringProperty,
)
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.label import Label
from kivy.uix.widget import Widget

from kiosk.adminpin import verify_pin as default_verify
from kiosk.core import stats as kstats
from kiosk.core.identifiers import classify
from kiosk.core.maintenance import (
    AdminPolicy,
    AdminState,
    LoginFailure,
    LongPress,
    MaintenanceAccess,
    Region,
    ServiceSwitch,
    format_lockout,
)
from kiosk.core.masking import mask_card
from kiosk.core.ports import SystemClock
from kiosk.diagnostics import ActionResult, Diagnostics
from kiosk.doctor import Status
from kiosk.i18n import _
from kiosk.screens.base import KioskScreen, register_screen, register_setup
from kiosk.screens.widgets import load_kv

log = logging.getLogger(__name__)

LOGIN = "maintenance_login"
STATUS = "maintenance"
DIAGNOSTICS = "maintenance_diag"
QUEUE = "maintenance_queue"
STATISTICS = "maintenance_stats"
SERVICE = "maintenance_service"
MAINTENANCE_SCREENS = (STATUS, DIAGNOSTICS, QUEUE, STATISTICS, SERVICE)
OUT_OF_SERVICE_PREFIX = "Out of service"

TICK_S = 1.0
CORNER_PX = 96

# Bar colours per counter (readable in both themes: the chart has its own dark panel).
SERIES_COLOURS = {
    "checkouts": (0.25, 0.60, 0.95, 1),
    "returns": (0.30, 0.80, 0.45, 1),
    "renewals": (0.95, 0.75, 0.20, 1),
    "refusals": (0.95, 0.35, 0.35, 1),
}


def _app() -> Any:
    return App.get_running_app()


def tr(msgid: str) -> str:
    app = _app()
    return app.tr(msgid) if app is not None and hasattr(app, "tr") else msgid


def ntr(singular: str, plural: str, n: int) -> str:
    app = _app()
    if app is not None and hasattr(app, "ntr"):
        return app.ntr(singular, plural, n)
    return singular if n == 1 else plural


# The status rows' names come from the checks (English keys); shown translated.
CHECK_NAMES = (
    _("reader"),
    _("card reader"),
    _("printer"),
    _("sorter"),
    _("library"),
    _("offline queue"),
    _("status"),
)


# -- the controller ---------------------------------------------------------------------------


class MaintenanceController:
    """One per app: login, session timeout, the hidden corner, the service switch, and background actions."""

    def __init__(
        self, app: Any, *, clock: Any = None, verify_pin: Callable[[str, str], bool] | None = None
    ) -> None:
        self.app = app
        services = getattr(app, "services", None)
        self.clock = clock or getattr(services, "clock", None) or SystemClock()
        cfg = app.cfg
        self.access = MaintenanceAccess(
            AdminPolicy.from_section(cfg.admin), self.clock, verify_pin or default_verify
        )
        self.service = ServiceSwitch()
        self.service.subscribe(self._service_changed)
        self.diag = (
            Diagnostics.from_services(services) if services is not None else Diagnostics(cfg)
        )
        self.diag.tr = tr  # its texts in the language the screen shows
        self.corner = LongPress(self.corner_region(), self.clock)
        self.return_to = ""
        self.message = ""
        self.running: set[str] = set()
        self.lockdown: Any = None  # set by the app when it applies the lockdown
        self._tick_event = Clock.schedule_interval(lambda _dt: self.tick(), TICK_S)
        if hasattr(app, "fbind"):
            app.fbind("on_stop", lambda *_: self.stop())

    # -- entry ---------------------------------------------------------------------------

    def _technician_view(self) -> None:
        """Maintenance is drawn at the normal text size: large text is a patron's choice for their
        visit, and the technician's screens (dense tables, charts) are laid out for normal text."""
        theme = getattr(self.app, "theme", None)
        if theme is not None:
            theme.large_text = False

    def open_login(self) -> None:
        """The hidden gesture fired: show the admin login over whatever was showing."""
        self._technician_view()
        current = self.app.current_screen
        if current not in (LOGIN, *MAINTENANCE_SCREENS):
            self.return_to = current
        self.access.open_login()
        self.app.show_screen(LOGIN)
        self._refresh(LOGIN)

    def card_presented(self, number: str) -> bool:
        """True when `number` is an admin card (maintenance opens and the patron session must not see it).

        A patron card at the admin login prompt (someone held the corner, or a technician walked
        away) closes the prompt and returns False, so the patron's visit starts as usual."""
        admin = self.access.is_admin_card(number)
        at_prompt = self.app.current_screen == LOGIN
        if not admin and not (at_prompt or self.access.state is AdminState.LOGIN):
            return False
        if not admin and self._patron_card(number):
            self.access.cancel_login()  # a lock-out stays in force
            self.message = ""
            self._back()
            return False
        outcome = self.access.present_card(number)
        if outcome.ok:
            self._record("maintenance_entered", f"admin card {mask_card(number.strip())}")
            self._entered()
        else:
            self._login_failed(outcome)
            self._refresh(LOGIN)
        return True

    def _patron_card(self, number: str) -> bool:
        patron = getattr(self.app.cfg, "patron", None)
        return patron is not None and classify(number, patron) == "patron"

    def corner_region(self) -> Region:
        """Where the hidden gesture is held: the top bar's left end, over the library's name.

        That part of the bar is text on every patron screen and at every display size, so the
        gesture never sits on a patron control. Without a top bar (a host without the patron
        screens), the window's top-left square."""
        from kivy.core.window import Window  # lazy: opens Kivy's window

        root = getattr(self.app, "kiosk_root", None)
        bar = getattr(root, "ids", {}).get("topbar") if root is not None else None
        name = getattr(root, "ids", {}).get("library_name") if root is not None else None
        if bar is None or name is None or bar.get_root_window() is None:
            return Region(0, Window.height - CORNER_PX, CORNER_PX, CORNER_PX)
        x, y = bar.to_window(bar.x, bar.y)
        right = name.to_window(name.right, name.y)[0]
        return Region(x, y, max(0.0, min(right - x, float(CORNER_PX) * 1.5)), bar.height)

    def submit_pin(self, pin: str) -> None:
        outcome = self.access.enter_pin(pin)
        if outcome.ok:
            self._record("maintenance_entered", "admin PIN")
            self._entered()
            return
        self._login_failed(outcome)
        self.message = {
            LoginFailure.WRONG_PIN: ntr(
                "Wrong PIN. {n} attempt left.",
                "Wrong PIN. {n} attempts left.",
                outcome.attempts_left,
            ).format(n=outcome.attempts_left),
            LoginFailure.UNKNOWN_CARD: ntr(
                "Not an admin card. {n} attempt left.",
                "Not an admin card. {n} attempts left.",
                outcome.attempts_left,
            ).format(n=outcome.attempts_left),
            LoginFailure.LOCKED_OUT: tr("Locked for {t} after too many attempts.").format(
                t=format_lockout(outcome.locked_for_s)
            ),
            LoginFailure.NOT_CONFIGURED: tr("No admin PIN is set. Run: kiosk admin set-pin"),
        }.get(outcome.failure, "")
        self._refresh(LOGIN)

    def _login_failed(self, outcome: Any) -> None:
        # Staff see repeated failures in the journal's events (suspicious PIN activity).
        if (
            outcome.failure is LoginFailure.LOCKED_OUT
            and outcome.locked_for_s >= self.access.policy.lockout_s
        ):
            self._record(
                "admin_locked", f"admin login locked for {self.access.policy.lockout_s:.0f} s"
            )
        elif outcome.failure in (LoginFailure.WRONG_PIN, LoginFailure.UNKNOWN_CARD):
            self._record(
                "admin_login_failed",
                f"{outcome.failure.value}, {outcome.attempts_left} attempt(s) left",
            )

    def _record(self, kind: str, detail: str) -> None:
        record = getattr(getattr(self.diag, "journal", None), "record_event", None)
        if record is None:
            return
        try:
            record(kind, detail)
        except Exception:  # the journal's own error is logged there; maintenance goes on
            log.exception("could not record %s in the journal", kind)

    def _entered(self) -> None:
        self._technician_view()
        self.message = ""
        if self.app.current_screen not in (LOGIN, *MAINTENANCE_SCREENS):
            self.return_to = self.app.current_screen
        self.show(STATUS)
        self.refresh_status()

    def cancel_login(self) -> None:
        self.access.cancel_login()
        self.message = ""
        self._back()

    def leave(self) -> None:
        if self.access.active:
            self._record("maintenance_left", "by the technician")
        self.access.leave()
        self._back()

    def _back(self) -> None:
        # The screens the app has, built or to be built when first shown.
        screens = {*getattr(self.app, "_screens", {}), *getattr(self.app, "_factories", {})}
        faults = getattr(getattr(self.app, "services", None), "faults", None) or []
        bookdrop = getattr(getattr(self.app.cfg, "kiosk", None), "mode", "") == "bookdrop"
        home, closed = (
            ("bookdrop", "bookdrop_closed") if bookdrop else ("welcome", "out_of_service")
        )
        if faults and closed in screens:
            target = closed
        elif self.return_to in screens and self.return_to not in (
            closed,
            "out_of_service",
            "bookdrop_closed",
        ):
            target = self.return_to
        else:
            target = home
        self.app.show_screen(target)
        if bookdrop:
            render_drop = getattr(self.app, "render_bookdrop", None)
            if render_drop is not None:
                render_drop(getattr(self.app, "bookdrop_state", None))
            return
        render = getattr(self.app, "render", None)
        state = getattr(self.app, "state", None)
        if render is not None and state is not None and not faults:
            render(state)  # the patron screens pick up where the session is

    # -- time ----------------------------------------------------------------------------

    def tick(self) -> None:
        if self.corner.tick():
            self.open_login()
        was_open = self.access.login_open  # to tell a login prompt closed by the timeout
        left = self.access.tick()
        if left is not None or (was_open and not self.access.login_open):
            if left is not None:
                self._record("maintenance_left", "after inactivity")
            self.message = ""
            self._back()
        elif self.app.current_screen == LOGIN:
            screen = getattr(self.app, "_screens", {}).get(LOGIN)
            if screen is not None:
                screen.update_lock()  # the count-down; digits typed so far stay

    def touched(self) -> None:
        self.access.touch()

    # -- screens -------------------------------------------------------------------------

    def show(self, name: str) -> None:
        if not self.access.active:
            return
        self.access.touch()
        self.app.show_screen(name)
        self._refresh(name)

    def _refresh(self, name: str) -> None:
        screens = getattr(self.app, "_screens", {})
        screen = screens.get(name)
        if screen is not None and hasattr(screen, "refresh"):
            screen.refresh()

    def run(self, name: str, action: Callable[[], Any], done: Callable[[Any], None]) -> bool:
        """Run a blocking action off the UI thread; `done(result or exception)` runs on the UI thread."""
        if name in self.running:
            return False
        self.running.add(name)
        self.access.touch()

        def work() -> None:
            try:
                result: Any = action()
            except Exception as exc:  # shown to the technician, who can act on it
                log.exception("maintenance action %s failed", name)
                result = exc

            def finish(_dt: float) -> None:
                self.running.discard(name)
                if getattr(self.app, "_stopped", False):
                    return  # the app stopped while the action ran: no widgets to update
                done(result)

            Clock.schedule_once(finish)

        threading.Thread(target=work, name=f"maintenance-{name}", daemon=True).start()
        return True

    def refresh_status(self) -> None:
        screen = self.app._screens.get(STATUS)
        if screen is not None:
            screen.loading = True
            self.run(
                "status",
                lambda: (self.diag.device_status(), self.diag.recent_events()),
                screen.set_checks,
            )

    # -- service -------------------------------------------------------------------------

    def set_in_service(self, in_service: bool, message: str = "") -> None:
        self.service.set(in_service, message)

    def _service_changed(self, state: Any) -> None:
        services = getattr(self.app, "services", None)
        faults = getattr(services, "faults", None)
        if faults is not None:
            faults[:] = [f for f in faults if not f.startswith(OUT_OF_SERVICE_PREFIX)]
            if not state.in_service:
                faults.append(
                    f"{OUT_OF_SERVICE_PREFIX}: {state.message}"
                    if state.message
                    else OUT_OF_SERVICE_PREFIX
                )
        self._record("out_of_service" if not state.in_service else "in_service", state.message)
        self._refresh(SERVICE)

    def restart_kiosk(self) -> None:
        """The admin exit: leave the app; systemd (Restart=always) starts it afresh."""
        if self.lockdown is not None:
            self.lockdown.allow_exit()
        log.warning("kiosk restarted from maintenance mode")
        self.app.stop()

    def stop(self) -> None:
        self._tick_event.cancel()


def controller(app: Any) -> MaintenanceController:
    """The app's maintenance controller (KioskApp.maintenance), created on first use."""
    ctl: MaintenanceController | None = app.maintenance
    if ctl is None:
        ctl = MaintenanceController(app)
        app.attach_maintenance(ctl)
    return ctl


# -- the hidden corner ------------------------------------------------------------------------


class HiddenCorner(Widget):
    """Invisible: watches touches on the hidden-gesture region and never takes them from the widgets below."""

    def __init__(self, ctl: MaintenanceController, **kwargs: Any) -> None:
        super().__init__(size_hint=(None, None), size=(0, 0), **kwargs)
        self.ctl = ctl
        self._touch: Any = None

    def on_touch_down(self, touch: Any) -> bool:
        self.ctl.corner.region = self.ctl.corner_region()
        self.ctl.corner.down(*touch.pos)
        self._touch = touch if self.ctl.corner.region.contains(*touch.pos) else None
        return False

    def on_touch_move(self, touch: Any) -> bool:
        if touch is self._touch:
            self.ctl.corner.move(*touch.pos)
        return False

    def on_touch_up(self, touch: Any) -> bool:
        if touch is self._touch:
            self._touch = None
            if self.ctl.corner.up():
                self.ctl.open_login()
        return False


def install_hidden_corner(app: Any, ctl: MaintenanceController) -> HiddenCorner | None:
    """Put the corner watcher on top of the app's root layout (after build)."""
    root = getattr(app, "kiosk_root", None) or getattr(app, "root", None)
    if root is None:
        return None
    corner = HiddenCorner(ctl)
    root.add_widget(corner)
    return corner


# -- widgets -----------------------------------------------------------------------------------


class MaintenanceScreen(KioskScreen):
    """Common frame: title, a navigation bar, and a content area; any touch postpones the timeout."""

    title = StringProperty("")
    nav = StringProperty("")

    def on_touch_down(self, touch: Any) -> bool:
        ctl = getattr(self.kiosk, "maintenance", None)
        if ctl is not None:
            ctl.touched()
        return super().on_touch_down(touch)

    @property
    def ctl(self) -> MaintenanceController:
        return controller(self.kiosk)

    def go(self, name: str) -> None:
        self.ctl.show(name)

    def refresh(self) -> None:
        pass


class CheckRow(BoxLayout):
    """One status line: ok / warn / FAIL, what, and the hint."""

    status = StringProperty("ok")
    name = StringProperty("")
    detail = StringProperty("")
    hint = StringProperty("")
    wide = BooleanProperty(
        True
    )  # set by the kv rule from the width: the name in a column of its own


class OutputLine(Label):
    """A line of diagnostics output in a monospace font."""

    level = StringProperty("")


class BarChart(Widget):
    """Stacked bars per period (checkouts, returns, renewals, refusals), drawn with Kivy graphics."""

    buckets = ListProperty([])  # [(label, Counts)]
    label_every = NumericProperty(1)
    title = StringProperty("")
    text_color = ListProperty([1, 1, 1, 1])
    axis_font = NumericProperty(14)
    max_total = NumericProperty(0)
    _labels = ObjectProperty(None, allownone=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bind(
            pos=self._redraw, size=self._redraw, buckets=self._redraw, label_every=self._redraw
        )

    def _redraw(self, *_: Any) -> None:
        self.canvas.after.clear()
        for child in list(self.children):
            self.remove_widget(child)
        n = len(self.buckets)
        self.max_total = max((c.total for _, c in self.buckets), default=0)
        if not n or self.width <= 0 or self.height <= 0:
            return
        axis_h = self.axis_font + 10
        left, bottom = self.x + 44, self.y + axis_h
        width, height = self.width - 52, self.height - axis_h - 8
        top = max(1, self.max_total)
        slot = width / n
        bar_w = max(2.0, slot * 0.7)
        with self.canvas.after:
            Color(*self.text_color[:3], 0.35)
            Line(points=[left, bottom, left + width, bottom], width=1)
            Line(points=[left, bottom, left, bottom + height], width=1)
            for i, (_label, counts) in enumerate(self.buckets):
                x = left + i * slot + (slot - bar_w) / 2
                y = bottom
                for key in kstats.COUNTERS:
                    value = getattr(counts, key)
                    if not value:
                        continue
                    h = height * value / top
                    Color(*SERIES_COLOURS[key])
                    Rectangle(pos=(x, y), size=(bar_w, h))
                    y += h
        for i, (label, _counts) in enumerate(self.buckets):
            if i % max(1, int(self.label_every)) == 0:
                self.add_widget(
                    Label(
                        text=label,
                        font_size=self.axis_font,
                        color=self.text_color,
                        size=(slot * self.label_every, axis_h),
                        pos=(left + i * slot + slot / 2 - slot * self.label_every / 2, self.y),
                        halign="center",
                    )
                )
        self.add_widget(
            Label(
                text=str(top),
                font_size=self.axis_font,
                color=self.text_color,
                size=(40, self.axis_font + 4),
                pos=(self.x, bottom + height - self.axis_font),
                halign="right",
            )
        )
        self.add_widget(
            Label(
                text="0",
                font_size=self.axis_font,
                color=self.text_color,
                size=(40, self.axis_font + 4),
                pos=(self.x, bottom),
                halign="right",
            )
        )  # above the axis labels, not over them


# -- the screens --------------------------------------------------------------------------------


class MaintenanceLoginScreen(MaintenanceScreen):
    message = StringProperty("")
    locked = BooleanProperty(False)

    def refresh(self) -> None:
        self.update_lock()
        if "pad" in self.ids:
            self.ids.pad.text = ""

    def update_lock(self) -> None:
        access = self.ctl.access
        was_locked = self.locked
        self.locked = access.state is AdminState.LOCKED
        if self.locked:
            self.message = tr("Locked for {t} after too many attempts.").format(
                t=format_lockout(access.locked_for_s)
            )
        elif was_locked:
            self.message = ""
        else:
            self.message = self.ctl.message

    def submit(self, pin: str) -> None:
        self.ctl.submit_pin(pin)

    def cancel(self) -> None:
        self.ctl.cancel_login()


class MaintenanceStatusScreen(MaintenanceScreen):
    loading = BooleanProperty(False)
    checks = ListProperty([])

    def refresh(self) -> None:
        if not self.loading and not self.checks:
            self.ctl.refresh_status()

    def set_checks(self, result: Any) -> None:
        self.loading = False
        box = self.ids.rows
        box.clear_widgets()
        if isinstance(result, BaseException):
            box.add_widget(CheckRow(status="FAIL", name=tr("status"), detail=str(result)))
            return
        checks, events = result
        self.checks = list(checks)
        for c in self.checks:
            box.add_widget(
                CheckRow(
                    status=c.status.value,
                    name=tr(c.name),
                    detail=c.detail,
                    hint=c.hint if c.status is not Status.OK else "",
                )
            )
        if events:
            box.add_widget(OutputLine(text=tr("Recent events"), level="ok"))
            for when, kind, detail in events:
                box.add_widget(OutputLine(text=f"{when:%d.%m %H:%M}  {kind}  {detail}"))


class MaintenanceDiagScreen(MaintenanceScreen):
    busy = StringProperty("")
    last_uid = StringProperty("")
    last_afi = NumericProperty(-1)

    def _show(self, title: str, lines: list[str] | tuple[str, ...], ok: bool = True) -> None:
        self.busy = ""
        box = self.ids.output
        box.clear_widgets()
        box.add_widget(OutputLine(text=title, level="ok" if ok else "fail", bold=True))
        for line in lines:
            box.add_widget(OutputLine(text=line))

    def _run(self, name: str, action: Callable[[], Any], render: Callable[[Any], None]) -> None:
        def done(result: Any) -> None:
            if isinstance(result, BaseException):
                self._show(name, [str(result)], ok=False)
            else:
                render(result)

        if self.ctl.run(name, action, done):
            self.busy = name

    def read_tags(self) -> None:
        def render(views: Any) -> None:
            if views:
                self.last_uid = views[0].uid
                self.last_afi = -1 if views[0].afi is None else views[0].afi
            lines = [v.summary(tr) for v in views] or [tr("No tags on the pad.")]
            self._show(tr("Tags on the pad: {n}").format(n=len(views)), lines)

        self._run(tr("Read tags"), self.ctl.diag.read_tags, render)

    def write_test_afi(self) -> None:
        sec = self.kiosk.cfg.security
        if not self.last_uid:
            self._show(
                tr("Write test AFI"),
                [tr("Read the tags first; the first tag is written.")],
                ok=False,
            )
            return
        # Flip between the two security values, so two presses leave the tag as it was.
        afi = sec.afi_unsecured if self.last_afi == sec.afi_secured else sec.afi_secured
        uid = self.last_uid

        def render(result: ActionResult) -> None:
            if result.ok:
                self.last_afi = afi
            self._show(result.title, list(result.lines), result.ok)

        self._run(tr("Write test AFI"), lambda: self.ctl.diag.write_test_afi(uid, afi), render)

    def print_test(self) -> None:
        self._run(
            tr("Test receipt"),
            self.ctl.diag.print_test_receipt,
            lambda r: self._show(r.title, list(r.lines), r.ok),
        )

    def sip2_check(self) -> None:
        self._run(
            tr("SIP2 check"),
            self.ctl.diag.sip2_check,
            lambda r: self._show(r.title, list(r.lines), r.ok),
        )

    def exchanges(self) -> None:
        self._run(
            tr("Last SIP2 exchanges"),
            self.ctl.diag.last_exchanges,
            lambda lines: self._show(
                tr("Last SIP2 exchanges (passwords and PINs masked)"),
                lines or [tr("No exchanges yet.")],
            ),
        )


class MaintenanceQueueScreen(MaintenanceScreen):
    pending = NumericProperty(0)
    report = StringProperty("")

    def refresh(self) -> None:
        def render(result: Any) -> None:
            if isinstance(result, BaseException):
                self.report = str(result)
                return
            pending, refusals = result
            self.pending = pending
            box = self.ids.refusals
            box.clear_widgets()
            for r in refusals:
                box.add_widget(
                    CheckRow(
                        status="FAIL",
                        name=f"{r.when:%d.%m %H:%M}",
                        detail=f"{r.operation} {r.item_id} {r.patron}".strip(),
                        hint=r.message,
                    )
                )
            if not refusals:
                box.add_widget(
                    CheckRow(status="ok", name="", detail=tr("No refused transactions."))
                )

        self.ctl.run(
            "queue", lambda: (self.ctl.diag.pending_count(), self.ctl.diag.refusals()), render
        )

    def forward(self) -> None:
        def render(result: Any) -> None:
            self.report = str(result) if isinstance(result, BaseException) else result.lines[0]
            self.refresh()

        self.ctl.run("forward", self.ctl.diag.forward_now, render)


class MaintenanceStatsScreen(MaintenanceScreen):
    totals = StringProperty("")

    def refresh(self) -> None:
        now = self.ctl.clock.now()

        def render(result: Any) -> None:
            if isinstance(result, BaseException):
                self.totals = str(result)
                return
            self.show_stats(result, now)

        self.ctl.run("stats", lambda: self.ctl.diag.statistics(now), render)

    def show_stats(self, s: kstats.Statistics, now: datetime) -> None:
        hours = kstats.last_hours(s, now, 24)
        days = kstats.last_days(s, now.date(), 14)
        self.ids.hourly.buckets = [(b.start.strftime("%H"), b.counts) for b in hours]
        self.ids.daily.buckets = [(b.start.strftime("%d.%m"), b.counts) for b in days]
        t = s.totals
        self.totals = tr(
            "Last 14 days: {c} checkouts, {r} returns, {n} renewals, {x} refusals"
        ).format(c=t.checkouts, r=t.returns, n=t.renewals, x=t.refusals)


class MaintenanceServiceScreen(MaintenanceScreen):
    in_service = BooleanProperty(True)
    service_message = StringProperty("")
    reason = StringProperty("Maintenance")  # chosen by buttons: a touch screen has no keyboard

    def refresh(self) -> None:
        state = self.ctl.service.state
        self.in_service = state.in_service
        self.service_message = state.message

    def take_out(self) -> None:
        self.ctl.set_in_service(False, tr(self.reason))

    def put_back(self) -> None:
        self.ctl.set_in_service(True)

    def restart(self) -> None:
        self.ctl.restart_kiosk()


SCREEN_CLASSES: dict[str, type[MaintenanceScreen]] = {
    LOGIN: MaintenanceLoginScreen,
    STATUS: MaintenanceStatusScreen,
    DIAGNOSTICS: MaintenanceDiagScreen,
    QUEUE: MaintenanceQueueScreen,
    STATISTICS: MaintenanceStatsScreen,
    SERVICE: MaintenanceServiceScreen,
}


def _setup(app: Any) -> MaintenanceController:
    """From the app's start: the controller (an admin card opens maintenance) and the hidden
    gesture; the screens are built when a technician first enters them."""
    ctl = controller(app)
    if getattr(ctl, "_corner_widget", None) is None:
        ctl._corner_widget = install_hidden_corner(app, ctl)  # type: ignore[attr-defined]  # kept on the controller, once per app
    return ctl


def _factory(name: str) -> Callable[[Any], MaintenanceScreen]:
    def build(app: Any) -> MaintenanceScreen:
        load_kv("widgets.kv", "maintenance.kv")
        _setup(app)  # a host that builds the screens without the app's setups
        return SCREEN_CLASSES[name](name=name)

    return build


register_setup(_setup)
for _name in SCREEN_CLASSES:
    register_screen(_name, _factory(_name))

__all__ = [
    "MaintenanceController",
    "controller",
    "install_hidden_corner",
    "HiddenCorner",
    "BarChart",
    "SCREEN_CLASSES",
]
