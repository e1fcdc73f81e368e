"""`kiosk preview`: render any patron, book-drop or maintenance screen in a named state with demo
data, offscreen, without a library system or devices; and the layout facts the screen tests
assert on (every widget's rect, role, whether its text fits, whether something covers it).

The real KioskApp and its real screens draw the states: snapshots (SessionState, ReturnState,
BookDropState) are built here from demo data and handed to the app's own `render` methods, so a
preview shows exactly what a patron would see in that state.

    kiosk preview --list
    kiosk preview checkout-mixed --size 800x480 --lang ru --large-text --out shot.png
    kiosk preview pin --layout-json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from kiosk import config
from kiosk.core.domain import BlockReason, Fee, Hold, Refusal
from kiosk.screens.texts import as_read

SIZES = {
    "800x480": (800, 480),
    "1024x600": (1024, 600),
    "1280x800": (1280, 800),
    "1920x1080": (1920, 1080),
    "480x800": (480, 800),
    "720x1280": (720, 1280),
    "1080x1920": (1080, 1920),
}
LANGUAGES = ("lv", "en", "ru")
ADMIN_CARD = "PREVIEW-ADMIN"

# Roles of the layout JSON.
BUTTON, KEY, INPUT, TOGGLE, TEXT, IMAGE = "button", "key", "input", "toggle", "text", "image"
INTERACTIVE_ROLES = (BUTTON, KEY, INPUT, TOGGLE)


class PreviewError(Exception):
    """An unknown state or a bad size: one line for the command's user."""


def parse_size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d{2,5})\s*[xX×]\s*(\d{2,5})\s*", text or "")
    if not match:
        raise PreviewError(f"bad size {text!r}: expected WIDTHxHEIGHT, e.g. 800x480")
    w, h = int(match.group(1)), int(match.group(2))
    if not (320 <= w <= 7680 and 320 <= h <= 7680):
        raise PreviewError(f"bad size {text!r}: each side must be between 320 and 7680 pixels")
    return w, h


# -- demo data ---------------------------------------------------------------------------------

TITLES = (
    "Zaļā grāmata",
    "Dvēseļu putenis",
    "The Hobbit",
    "Мастер и Маргарита",
    "Mērnieku laiki",
    "Latviešu valodas kurss (3 CD)",
    "Ziemeļmeža noslēpumi: stāsti bērniem un pieaugušajiem",
    "Baltijas putni",
)


def _demo_now() -> datetime:
    return datetime(2026, 12, 7, 11, 30)


def _due(days: int) -> str:
    return (_demo_now() + timedelta(days=days)).strftime("%Y%m%d    113000")


_SHOWING = {"lang": "lv"}  # the language being previewed: the demo snapshots are in it


def _patron(**kw: Any) -> Any:
    from kiosk.core.session import PatronSummary  # lazy: fast `kiosk --help`

    values: dict[str, Any] = {
        "card_masked": "***0001",
        "name": "Anna Bērziņa",
        "has_email": True,
        "email_masked": "a***@e***.lv",
        "loans": 3,
    }
    values.update(kw)
    return PatronSummary(**values)


def _session(stage: str, **kw: Any) -> Any:
    from kiosk.core.session import Capabilities, SessionState, Stage  # lazy: fast `kiosk --help`

    values: dict[str, Any] = {
        "stage": Stage(stage),
        "language": _SHOWING["lang"],
        "languages": LANGUAGES,
        "capabilities": Capabilities(can_renew=True),
    }
    if stage not in ("welcome", "identifying", "pin"):
        values["patron"] = _patron()
    values.update(kw)
    return SessionState(**values)


def _item(n: int, status: str, **kw: Any) -> Any:
    from kiosk.core.checkout import (  # lazy: fast `kiosk --help`
        CheckoutItem,
        ItemSource,
        ItemStatus,
    )

    item_id = f"3000{n:04d}"
    values: dict[str, Any] = {
        "key": item_id,
        "item_id": item_id,
        "source": ItemSource.RFID,
        "status": ItemStatus(status),
        "title": TITLES[n % len(TITLES)],
    }
    if status == "checked_out":
        values["due_date"] = _due(28)
    values.update(kw)
    return CheckoutItem(**values)


def _checkout(items: tuple[Any, ...], **kw: Any) -> Any:
    from kiosk.core.checkout import CheckoutState  # lazy: fast `kiosk --help`
    from kiosk.core.session import View  # lazy: fast `kiosk --help`

    return _session("active", view=View.CHECKOUT, checkout=CheckoutState(items=items), **kw)


def _mixed_items() -> tuple[Any, ...]:
    return (
        _item(1, "checked_out"),
        _item(2, "checked_out", renewal=True),
        _item(4, "refused", refusal=Refusal.ON_HOLD_FOR_OTHER),
        _item(5, "waiting", parts_in_set=3, parts_present=2),
        _item(6, "to_desk", refusal=Refusal.SECURITY_WRITE_FAILED),
        _item(7, "seen"),
    )


def _account(**kw: Any) -> Any:
    from kiosk.core.account import AccountState, LoanLine  # lazy: fast `kiosk --help`
    from kiosk.core.session import View  # lazy: fast `kiosk --help`

    loans = (
        LoanLine("30000001", TITLES[1], _due(-3), overdue=True),
        LoanLine("30000003", TITLES[3], _due(10)),
        LoanLine("30000007", TITLES[7], _due(21)),
    )
    fields: dict[str, Any] = {"loans": loans, "renew_available": True}
    if kw.pop("fees", False):
        fields.update(
            fees=(Fee("Kavējuma nauda", "2.50"), Fee("Bojāts vāks", "1.00")), fee_total="3.50"
        )
    if kw.pop("holds", False):
        fields.update(
            holds=(
                Hold("30000006", TITLES[4], ready=True, pickup_by=_due(5)[:8]),
                Hold("30000008", TITLES[0]),
            )
        )
    if kw.pop("renewed", False):
        fields["loans"] = (
            dataclasses.replace(loans[0], renewed=True, due_date=_due(25), overdue=False),
            dataclasses.replace(loans[1], renewed=False, refusal=Refusal.RENEWAL_LIMIT),
            # Renewed, yet the library system kept the date (a loan taken today).
            dataclasses.replace(loans[2], renewed=True, previous_due=loans[2].due_date),
        )
    patron = _patron(
        holds_ready=1 if fields.get("holds") else 0,
        fee_total=fields.get("fee_total", ""),
        overdue=1,
    )
    return _session(
        "active", view=View.ACCOUNT, account=AccountState(**fields), patron=patron, **kw
    )


def _receipt(**kw: Any) -> Any:
    from kiosk.core.receipt import Receipt, ReceiptKind  # lazy: fast `kiosk --help`

    items = _mixed_items()
    lines = tuple(i.receipt_line() for i in items if i.status.value == "checked_out")
    refused = tuple(
        i.receipt_line() for i in items if i.status.value in ("refused", "to_desk", "waiting")
    )
    receipt = Receipt(
        ReceiptKind.CHECKOUT,
        "Demo bibliotēka",
        _demo_now(),
        "lv",
        card_masked="***0001",
        lines=lines,
        refused=refused,
    )
    from kiosk.core.checkout import CheckoutState  # lazy: fast `kiosk --help`

    return _session("finishing", receipt=receipt, checkout=CheckoutState(items=items), **kw)


def _returns_state() -> Any:
    from kiosk.core.returns import ReturnItem, ReturnState  # lazy: fast `kiosk --help`
    from kiosk.core.routing import Instruction, ReturnOutcome  # lazy: fast `kiosk --help`

    return ReturnState(
        items=(
            ReturnItem(
                "30000001",
                "30000001",
                ReturnOutcome.CHECKED_IN,
                TITLES[1],
                instruction=Instruction.DONE,
            ),
            ReturnItem(
                "30000006",
                "30000006",
                ReturnOutcome.CHECKED_IN,
                TITLES[4],
                instruction=Instruction.HOLD_SHELF,
            ),
            ReturnItem(
                "30000005",
                "30000005",
                ReturnOutcome.SET_INCOMPLETE,
                TITLES[5],
                instruction=Instruction.PLACE_ALL_PARTS,
                parts_in_set=3,
                parts_present=2,
            ),
            ReturnItem("30000009", "30000009", None, TITLES[6]),
        )
    )


def _drop(kind: str) -> Any:
    from kiosk.core.bookdrop import (  # lazy: fast `kiosk --help`
        BookDropItem,
        BookDropState,
        Component,
        FinalState,
    )
    from kiosk.core.routing import Instruction, ReturnOutcome  # lazy: fast `kiosk --help`

    ok = BookDropItem(
        1,
        "30000001",
        "30000001",
        FinalState.CHECKED_IN_SECURED,
        ReturnOutcome.CHECKED_IN,
        1,
        TITLES[1],
        Instruction.DONE,
    )
    return {
        "attract": BookDropState(),
        "busy": BookDropState(busy=True),
        "returned": BookDropState(last=ok),
        "hold": BookDropState(
            last=dataclasses.replace(ok, instruction=Instruction.HOLD_SHELF, bin=2)
        ),
        "desk": BookDropState(
            last=dataclasses.replace(
                ok, final=FinalState.EXCEPTION_BIN, outcome=ReturnOutcome.UNKNOWN_ITEM, bin=9
            )
        ),
        "offline": BookDropState(
            last=dataclasses.replace(
                ok, final=FinalState.QUEUED_OFFLINE_SECURED, outcome=ReturnOutcome.QUEUED_OFFLINE
            ),
            outages=frozenset({Component.LIBRARY_SYSTEM}),
        ),
        "closed": BookDropState(outages=frozenset({Component.READER})),
    }[kind]


# -- states ------------------------------------------------------------------------------------

StateSetter = Callable[[Any], None]


def _patron_state(
    factory: Callable[[], Any], local: str = "", after: Callable[[Any], None] | None = None
) -> StateSetter:
    def apply(app: Any) -> None:
        app.local = local
        app.render(factory())
        if after is not None:
            after(app)

    return apply


def _keypad(letters: bool, text: str) -> Callable[[Any], None]:
    def after(app: Any) -> None:
        screen = app.screen("card_entry")
        screen.clear()  # nothing left from a state drawn before in the same process
        screen.letters = letters
        screen.ids.pad.text = text

    return after


def _mistyped(app: Any) -> None:
    """A card number typed with a digit too few: back on the keypad with the digits and a hint."""
    app.local = "keypad"
    app.render(_session("welcome"))
    app.present_card("LV001")
    app.render(_login_problem("bad_card"))


def _pin_digits(app: Any) -> None:
    app.screen("pin").ids.pad.text = "12"


def _offline(app: Any) -> None:
    app.online = False
    app._link_checked = True
    app.render(_session("welcome"))


def _out_of_service(app: Any) -> None:
    app.services.faults.append("RFID reader: /dev/ttyUSB0 not found")
    app.render(_session("welcome"))


def _returns(app: Any) -> None:
    app.local = "returns"
    app.render(_session("welcome"))
    app.render_returns(_returns_state())


def _timed_out(app: Any) -> None:
    """An idle logout: the last snapshot of the visit (warning shown), then the welcome stage."""
    app.render(_checkout(_mixed_items()[:2], idle_warning=True, seconds_left=0, language=app.lang))
    app.render(_session("welcome"))


def _help_called(app: Any) -> None:
    app.kiosk_root.show_help()
    app.kiosk_root._help.called = True


def _bookdrop(kind: str) -> StateSetter:
    def apply(app: Any) -> None:
        app.render_bookdrop(_drop(kind))

    return apply


def _maintenance(screen: str) -> StateSetter:
    def apply(app: Any) -> None:
        from kiosk.screens import maintenance as m  # lazy: Kivy only after its setup

        ctl = m.controller(app)
        ctl.diag = PreviewDiagnostics(app.cfg)  # type: ignore[assignment]  # same methods, demo answers
        ctl.run = _run_now  # type: ignore[method-assign]  # actions run at once, not on the worker
        if screen == m.LOGIN:
            ctl.open_login()
            app.screen(m.LOGIN).ids.pad.text = "12"
            return
        ctl.card_presented(ADMIN_CARD)
        ctl.show(screen)
        if screen == m.DIAGNOSTICS:
            app.screen(screen)._show(
                app.tr("Tags on the pad: 2"),
                ["30000003  AFI 0x07  secured", "30000010  AFI 0xC2  NOT secured"],
            )

    return apply


def _run_now(name: str, action: Callable[[], Any], done: Callable[[Any], None]) -> bool:
    done(action())
    return True


class PreviewDiagnostics:
    """Maintenance diagnostics answering from demo data (no devices are opened)."""

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg
        self.tr: Callable[[str], str] = lambda s: s

    def device_status(self) -> list[Any]:
        from kiosk.doctor import Check, Status  # lazy: fast `kiosk --help`

        return [
            Check("reader", Status.OK, "sim:demo: 2 tags on the pad"),
            Check("card reader", Status.OK, "sim:demo"),
            Check("printer", Status.WARN, "paper low", "put in a new roll soon"),
            Check("library", Status.OK, "127.0.0.1:6001: online, 41 ms"),
            Check("offline queue", Status.OK, "empty"),
        ]

    def recent_events(self, limit: int = 8) -> list[tuple[datetime, str, str]]:
        return [
            (_demo_now() - timedelta(minutes=12), "maintenance_entered", "admin card ***0001"),
            (_demo_now() - timedelta(hours=2), "outage_end", "library system"),
        ]

    def pending_count(self) -> int:
        return 2

    def refusals(self) -> list[Any]:
        from kiosk.diagnostics import RefusalView  # lazy: fast `kiosk --help`

        return [
            RefusalView(
                _demo_now() - timedelta(hours=1), "checkout", "30000007", "***0001", "Not for loan"
            )
        ]

    def statistics(self, now: datetime) -> Any:
        from kiosk.core import stats  # lazy: fast `kiosk --help`

        @dataclasses.dataclass
        class Entry:
            created: datetime
            operation: Any
            state: Any
            result: Mapping[str, Any]

        entries = [
            Entry(_demo_now() - timedelta(hours=h % 20, days=h % 9), op, "done", {})
            for h, op in enumerate(["checkout"] * 30 + ["checkin"] * 18 + ["renew"] * 6)
        ]
        return stats.compute(entries)


def _goodbye_state(app: Any) -> None:
    """The receipt question (with refused items), then the goodbye naming them."""
    from kiosk.core.session import ReceiptChoice  # lazy: fast `kiosk --help`

    app.render(_receipt())
    app.render(_session("goodbye", items_done=2, receipt_choice=ReceiptChoice.PRINT))


STATES: dict[str, StateSetter] = {
    "welcome": _patron_state(lambda: _session("welcome")),
    "card-entry": _patron_state(lambda: _session("welcome"), "keypad", _keypad(False, "LV00")),
    "card-entry-letters": _patron_state(lambda: _session("welcome"), "keypad", _keypad(True, "LV")),
    "card-entry-mistyped": _mistyped,
    "pin": _patron_state(lambda: _session("pin"), after=_pin_digits),
    "pin-wrong": _patron_state(lambda: _pin_wrong()),
    "locked-out": _patron_state(lambda: _login_problem("locked_out", locked_for_s=45.0)),
    "bad-card": _patron_state(lambda: _login_problem("bad_card")),
    "unknown-card": _patron_state(lambda: _login_problem("unknown_patron")),
    "checking-card": _patron_state(lambda: _session("identifying")),
    "checkout-empty": _patron_state(lambda: _checkout(())),
    "checkout-mixed": _patron_state(lambda: _checkout(_mixed_items())),
    "checkout-many": _patron_state(
        lambda: _checkout(tuple(_item(n, "checked_out") for n in range(1, 31)))
    ),
    "blocked-patron": _patron_state(lambda: _blocked()),
    "account": _patron_state(lambda: _account()),
    "account-fees": _patron_state(lambda: _account(fees=True)),
    "account-holds": _patron_state(lambda: _account(holds=True)),
    "renewed": _patron_state(lambda: _account(renewed=True)),
    "receipt-choice": _patron_state(lambda: _receipt()),
    "receipt-email": _patron_state(lambda: _receipt(capabilities=_caps(can_email=True))),
    "receipt-next-patron": _patron_state(lambda: _receipt(next_patron_waiting=True)),
    "goodbye": _goodbye_state,
    "idle-warning": _patron_state(
        lambda: _checkout(_mixed_items()[:2], idle_warning=True, seconds_left=20)
    ),
    "timed-out": _timed_out,
    "help": _patron_state(
        lambda: _checkout(_mixed_items()[:3]), after=lambda app: app.kiosk_root.show_help()
    ),
    "language-choice": _patron_state(
        lambda: _checkout(_mixed_items()[:3]), after=lambda app: app.kiosk_root.show_languages()
    ),
    "help-staff-called": _patron_state(
        lambda: _session("welcome"), after=lambda app: _help_called(app)
    ),
    "out-of-service": _out_of_service,
    "offline": _offline,
    "returns": _returns,
    "bookdrop-attract": _bookdrop("attract"),
    "bookdrop-busy": _bookdrop("busy"),
    "bookdrop-returned": _bookdrop("returned"),
    "bookdrop-hold": _bookdrop("hold"),
    "bookdrop-desk": _bookdrop("desk"),
    "bookdrop-offline": _bookdrop("offline"),
    "bookdrop-closed": _bookdrop("closed"),
    "maintenance-login": _maintenance("maintenance_login"),
    "maintenance-status": _maintenance("maintenance"),
    "maintenance-diag": _maintenance("maintenance_diag"),
    "maintenance-queue": _maintenance("maintenance_queue"),
    "maintenance-stats": _maintenance("maintenance_stats"),
    "maintenance-service": _maintenance("maintenance_service"),
}


def _caps(**kw: Any) -> Any:
    from kiosk.core.session import Capabilities  # lazy: fast `kiosk --help`

    return Capabilities(can_renew=True, **kw)


def _pin_wrong() -> Any:
    from kiosk.core.session import LoginProblem  # lazy: fast `kiosk --help`

    return _session("pin", problem=LoginProblem.WRONG_PIN, attempts_left=2, pin_retry=True)


def _login_problem(problem: str, **kw: Any) -> Any:
    from kiosk.core.session import LoginProblem  # lazy: fast `kiosk --help`

    return _session("welcome", problem=LoginProblem(problem), **kw)


def _blocked() -> Any:
    from kiosk.core.checkout import CheckoutState  # lazy: fast `kiosk --help`

    patron = _patron(
        blocks=(BlockReason.EXCESSIVE_FEES,),
        may_borrow=False,
        screen_message="Parāds 12,50 EUR",
        fee_total="12.50",
    )
    return _session(
        "active",
        patron=patron,
        blocks=(BlockReason.EXCESSIVE_FEES,),
        checkout=CheckoutState(blocked=Refusal.PATRON_BLOCKED),
        capabilities=_caps(),
    )


def state_names() -> list[str]:
    return list(STATES)


# -- the app -----------------------------------------------------------------------------------


def preview_config(mode: Literal["checkout", "bookdrop"] = "checkout") -> Any:
    """The packaged demo configuration, with nothing that opens a device or a connection."""

    cfg = config.parse(
        config.PACKAGED_DEFAULT.read_text(encoding="utf-8"), str(config.PACKAGED_DEFAULT)
    )
    return dataclasses.replace(
        cfg,
        kiosk=dataclasses.replace(cfg.kiosk, mode=mode, languages=LANGUAGES, returns_enabled=True),
        ui=dataclasses.replace(
            cfg.ui,
            fullscreen=False,
            demo_panel=False,
            sounds=False,
            opening_hours=cfg.ui.opening_hours or "P–Pk 10–19, S 10–16",
            card_hint=cfg.ui.card_hint or "LV0001",
            fee_payment=cfg.ui.fee_payment or "maksajumi.example.lv",
        ),
        admin=dataclasses.replace(cfg.admin, cards=(ADMIN_CARD,)),
        acs=dataclasses.replace(cfg.acs, embedded=False),
    )


class _NoWorker:
    """The preview runs no workflow: work handed to the core is dropped."""

    def submit(self, *_args: Any, **_kwargs: Any) -> Future[Any]:
        dropped: Future[Any] = Future()
        dropped.cancel()
        return dropped

    def stop(self, timeout: float = 5.0) -> bool:
        return True


def make_app(cfg: Any = None) -> Any:
    """A KioskApp drawing the real screens, with no library system, devices or timers."""
    from kiosk.app import KioskApp, KioskServices  # lazy: Kivy only after its setup

    class PreviewApp(KioskApp):
        def on_start(self) -> None:
            pass  # no listeners, devices, ticks, watchdog or lockdown

        def on_stop(self) -> None:
            self._stopped = True
            getattr(self, "_unfollow_display", lambda: None)()

        def post(self, event: Any) -> None:
            self._events.append(type(event).__name__)

    cfg = cfg or preview_config()
    services = KioskServices(cfg=cfg, worker=_NoWorker())
    return PreviewApp(cfg, services)


class Previewer:
    """One running preview app in this process; `show(state, ...)` draws a state at a size."""

    def __init__(self) -> None:
        from kivy.base import runTouchApp  # lazy: Kivy only after its setup

        self.app = make_app()
        self.app._run_prepare()
        runTouchApp(embedded=True)
        self.pump(2)
        from kiosk.screens.maintenance import controller  # lazy: Kivy only after its setup

        self.ctl = controller(self.app)
        self.ctl.stop()  # no maintenance clock: the preview stands still
        self._welcome = self.app.screen("welcome")

    @staticmethod
    def pump(frames: int = 1) -> None:
        from kivy.base import EventLoop  # lazy: Kivy only after its setup

        for _ in range(frames):
            EventLoop.idle()

    def reset(self) -> None:
        """Back to a fresh kiosk between states."""
        from kiosk.core.maintenance import AdminState  # lazy: fast `kiosk --help`

        app = self.app
        app.kiosk_root.hide_help()
        app.refused_lines = ()
        app.services.faults.clear()
        app.online = True
        app._link_checked = False
        app.offline_text = ""
        app.local = ""
        app.idle_warning = False
        app.return_state = None
        app.provisional.clear()
        self.ctl.access._state = AdminState.OUTSIDE  # leave maintenance without a journal event
        self.ctl.message = ""
        for name in ("checkout", "account"):
            app.screen(name).wipe()
        app.show_screen("welcome")

    def show(
        self,
        state: str,
        size: tuple[int, int] = (1280, 800),
        lang: str = "lv",
        large_text: bool = False,
        high_contrast: bool = False,
    ) -> None:
        from kivy.core.window import Window  # lazy: opens Kivy's window

        if state not in STATES:
            raise PreviewError(f"unknown state {state!r}: `kiosk preview --list` names them")
        if tuple(Window.size) != tuple(size):
            Window.size = size
        self.reset()
        app = self.app
        app._presentation = None
        _SHOWING["lang"] = lang
        app.lang = lang
        app.theme.large_text = large_text
        app.theme.high_contrast = high_contrast
        self.pump(1)
        STATES[state](app)
        # Snapshots carry the session's presentation; the preview's flags win (but maintenance is
        # always drawn at the normal text size, as in the kiosk).
        app.lang = lang
        app.theme.large_text = large_text and not state.startswith("maintenance")
        app.theme.high_contrast = high_contrast
        self.settle()

    def settle(self, most: int = 30) -> int:
        """Pump frames until the layout stands still (two frames alike), at most `most`; a
        layout change can take several frames to ripple through (text re-wrapped in a
        narrowed scroll view makes its list taller, which moves the rows)."""
        self.pump(2)
        last = None
        for n in range(most):
            now = tuple((id(w), *window_rect(w)) for w in self.app.kiosk_root.walk(restrict=True))
            if now == last:
                return n
            last = now
            self.pump(1)
        return most

    def save_png(self, path: str | os.PathLike[str]) -> Path:
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        self.app.kiosk_root.export_to_png(str(out))
        return out

    def layout(self, state: str) -> dict[str, Any]:
        from kivy.core.window import Window  # lazy: opens Kivy's window

        return {
            "state": state,
            "size": [int(Window.width), int(Window.height)],
            "widgets": inspect_layout(self.app.kiosk_root),
        }

    def stop(self) -> None:
        self.app.stop()  # no frame after it: kv rules would look for the stopped app


# -- layout facts --------------------------------------------------------------------------------


def _role(widget: Any) -> str | None:
    from kivy.uix.behaviors import (  # lazy: Kivy only after its setup
        ButtonBehavior,
        ToggleButtonBehavior,
    )
    from kivy.uix.image import Image  # lazy: Kivy only after its setup
    from kivy.uix.label import Label  # lazy: Kivy only after its setup
    from kivy.uix.textinput import TextInput  # lazy: Kivy only after its setup

    if isinstance(widget, TextInput):
        return INPUT
    if isinstance(widget, ToggleButtonBehavior) or getattr(widget, "toggle", False):
        return TOGGLE
    if isinstance(widget, ButtonBehavior):
        return KEY if hasattr(widget, "key") and type(widget).__name__ == "PadKey" else BUTTON
    if isinstance(widget, Image):
        return IMAGE
    if isinstance(widget, Label):
        return TEXT if (widget.text or "").strip() else None
    return None


def _shown(widget: Any) -> bool:
    w: Any = widget
    while w is not None:
        if getattr(w, "opacity", 1) <= 0:
            return False
        parent = w.parent
        if parent is w:
            break
        w = parent
    return widget.width > 1 and widget.height > 1 and widget.get_root_window() is not None


def window_rect(widget: Any) -> tuple[float, float, float, float]:
    x, y = widget.to_window(widget.x, widget.y)
    return (x, y, float(widget.width), float(widget.height))


def viewports(widget: Any) -> Iterator[tuple[float, float, float, float]]:
    """The rects of the scroll views the widget is drawn within."""
    for w in scroll_views(widget):
        yield window_rect(w)


def scroll_views(widget: Any) -> Iterator[Any]:
    """The scroll views the widget is drawn within, nearest first."""
    from kivy.uix.scrollview import ScrollView  # lazy: Kivy only after its setup

    for w in ancestors(widget):
        if isinstance(w, ScrollView):
            yield w


def scrolls(view: Any) -> bool:
    """Whether a scroll view's content is taller than the view (so it can be scrolled)."""
    content = getattr(view, "_viewport", None)
    return bool(view.do_scroll_y and content is not None and content.height > view.height + 0.5)


def scrollbar_rect(view: Any) -> tuple[float, float, float, float] | None:
    """The strip along a scrollable view's edge where its bar is drawn over the content (and,
    with `scroll_type` 'bars', where a touch moves the bar instead of reaching the content:
    Kivy's `in_bar_y`); None when the view has no bar to show."""
    if view.bar_width <= 0 or not scrolls(view):
        return None
    x, y, w, h = window_rect(view)
    width = float(view.bar_width)
    if view.bar_pos_y == "right":
        return (x + w - view.bar_margin - width, y, width, h)
    return (x + view.bar_margin, y, width, h)


def ink_rect(label: Any) -> tuple[float, float, float, float]:
    """Where a label's text is actually drawn, in window pixels: its lines' extent placed in its
    box as Kivy places the texture (centred) and each line (by `halign`); the whole box when the
    lines are not known."""
    lines = getattr(getattr(label, "_label", None), "_cached_lines", None)
    tw, th = label.texture_size
    bx, by = label.to_window(label.x, label.y)
    tx = bx + label.width / 2 - tw / 2
    ty = by + label.height / 2 - th / 2
    if not lines:
        return (tx, ty, float(tw), float(th))
    pad_x = label.padding[0] if len(label.padding) in (2, 4) else 0
    inner = tw - 2 * pad_x
    left, right = float("inf"), float("-inf")
    for line in lines:
        width = float(line.w)
        offset = 0.0
        if label.halign == "center":
            offset = (inner - width) / 2
        elif label.halign == "right":
            offset = inner - width
        left = min(left, tx + pad_x + offset)
        right = max(right, tx + pad_x + offset + width)
    if right <= left:
        return (tx, ty, 0.0, float(th))
    return (left, ty, right - left, float(th))


def intersection(
    a: tuple[float, float, float, float], b: tuple[float, float, float, float]
) -> tuple[float, float]:
    """The width and height two rects share (0 where they do not meet)."""
    ox = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    oy = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return (max(0.0, ox), max(0.0, oy))


def _rendered_lines(label: Any) -> list[str] | None:
    core = getattr(label, "_label", None)
    lines = getattr(core, "_cached_lines", None)
    if lines is None:
        return None
    return ["".join(word.text for word in line.words) for line in lines]


def text_problem(label: Any) -> str:
    """Why a label's text does not fit its box ('' when it does): shortened, broken mid-word, or too big."""
    text = as_read(label.text)
    if not text.strip():
        return ""
    tw, th = label.texture_size
    if tw > label.width + 1.5 or th > label.height + 1.5:
        return f"texture {tw:.0f}x{th:.0f} larger than the box {label.width:.0f}x{label.height:.0f}"
    lines = _rendered_lines(label)
    if lines is None:
        return ""
    rendered = "".join(lines)
    if re.sub(r"\s+", "", rendered) != re.sub(r"\s+", "", text):
        return "text shortened"
    words = set(re.split(r"\s+", text))
    for line in lines:
        for word in re.split(r"\s+", line.strip()):
            if (
                word
                and word not in words
                and not any(word in w for w in words if "-" in w or "/" in w)
            ):
                return f"word broken: {word!r}"
    return ""


def inspect_layout(root: Any) -> list[dict[str, Any]]:
    """Every visible widget with a role, in window pixels, with its `clipped` and `interactive` facts."""
    from kivy.core.window import Window  # lazy: opens Kivy's window

    out = []
    for n, widget in enumerate(root.walk(restrict=True)):
        role = _role(widget)
        if role is None or not _shown(widget):
            continue
        x, y, w, h = window_rect(widget)
        visible = True
        clipped = False
        shown = (x, y, x + w, y + h)  # what the scroll views around it let be drawn of it
        for vx, vy, vw, vh in viewports(widget):
            if x >= vx + vw or x + w <= vx or y >= vy + vh or y + h <= vy:
                visible = False
            shown = (
                max(shown[0], vx),
                max(shown[1], vy),
                min(shown[2], vx + vw),
                min(shown[3], vy + vh),
            )
        if not (x >= -1 and y >= -1 and x + w <= Window.width + 1 and y + h <= Window.height + 1):
            if not any(True for _ in viewports(widget)):
                clipped = True
        from kivy.uix.label import Label  # lazy: Kivy only after its setup

        problem = text_problem(widget) if isinstance(widget, Label) else ""
        screen = _screen_of(widget)
        if (
            not problem
            and screen is not None
            and visible
            and not any(True for _ in viewports(widget))
        ):
            if not contains(window_rect(screen), (x, y, w, h)):
                problem = "outside its screen"
        out.append(
            {
                "id": _widget_id(widget, n),
                "role": role,
                "rect": [round(x, 1), round(y, 1), round(w, 1), round(h, 1)],
                "text": as_read(getattr(widget, "text", "")),
                "interactive": role in INTERACTIVE_ROLES and not widget.disabled,
                "clipped": clipped or bool(problem),
                "visible": visible,
                "problem": problem,
                "shown_rect": [
                    round(shown[0], 1),
                    round(shown[1], 1),
                    round(max(0.0, shown[2] - shown[0]), 1),
                    round(max(0.0, shown[3] - shown[1]), 1),
                ],
            }
        )
    return out


def ancestors(widget: Any) -> Iterator[Any]:
    """The widget's parents, nearest first, up to the window."""
    w = widget.parent
    while w is not None and w is not w.parent:
        yield w
        w = w.parent


def _screen_of(widget: Any) -> Any:
    from kivy.uix.screenmanager import Screen  # lazy: Kivy only after its setup

    return next((w for w in ancestors(widget) if isinstance(w, Screen)), None)


def contains(
    box: tuple[float, float, float, float],
    rect: tuple[float, float, float, float],
    slack: float = 1.0,
) -> bool:
    bx, by, bw, bh = box
    x, y, w, h = rect
    return (
        x >= bx - slack
        and y >= by - slack
        and x + w <= bx + bw + slack
        and y + h <= by + bh + slack
    )


def overlapping_texts(layout: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Pairs of visible texts drawn over each other (buttons' own labels excepted)."""
    texts = [w for w in layout if w["visible"] and w["text"].strip()]
    pairs = []
    for n, a in enumerate(texts):
        ax, ay, aw, ah = a["shown_rect"]
        for b in texts[n + 1 :]:
            bx, by, bw, bh = b["shown_rect"]
            ox = min(ax + aw, bx + bw) - max(ax, bx)
            oy = min(ay + ah, by + bh) - max(ay, by)
            if ox > 2 and oy > 2:
                pairs.append((a, b))
    return pairs


def _widget_id(widget: Any, n: int) -> str:
    """The kv id where the widget has one (looked up in its ancestors' ids), else class and index."""
    w = widget.parent
    while w is not None and w is not w.parent:
        for name, candidate in getattr(w, "ids", {}).items():
            try:
                if candidate is widget or getattr(candidate, "__self__", None) is widget:
                    return str(name)
            except ReferenceError:  # a kv id whose widget was removed
                continue
        w = w.parent
    key = getattr(widget, "key", "")
    return f"{type(widget).__name__}:{key}" if key else f"{type(widget).__name__}#{n}"


def hit_test(root: Any, x: float, y: float) -> Any:
    """The widget a touch at window (x, y) reaches first: the topmost button, key or input there,
    or an overlay that takes every touch; None if nothing interactive is there."""
    from kivy.uix.scrollview import ScrollView  # lazy: Kivy only after its setup

    def visit(widget: Any) -> Any:
        for child in widget.children:  # Kivy hands a touch to the last added (topmost) child first
            if not _shown(child):
                continue
            cx, cy, cw, ch = window_rect(child)
            inside = cx <= x < cx + cw and cy <= y < cy + ch
            if inside and isinstance(child, ScrollView):
                bar = scrollbar_rect(child) if "bars" in child.scroll_type else None
                if bar is not None and bar[0] <= x <= bar[0] + bar[2]:
                    return child  # the touch moves the scroll bar; nothing under it gets it
            if not inside:
                # Scroll views and plain layouts do not confine their children's touches except by their own rect.
                if isinstance(child, ScrollView):
                    continue
                found = visit(child) if not _role(child) else None
                if found is not None:
                    return found
                continue
            if _role(child) in INTERACTIVE_ROLES:
                return child
            found = visit(child)
            if found is not None:
                return found
            if getattr(child, "modal", False):  # an overlay that takes every touch
                return child
        return None

    return visit(root)


# -- the command ---------------------------------------------------------------------------------


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "preview", help="render a screen in a named state with demo data (offscreen)"
    )
    p.add_argument("state", nargs="?", help="the state to draw (see --list)")
    p.add_argument("--list", action="store_true", help="print every state name, one per line")
    p.add_argument("--size", default="1280x800", help="window size WIDTHxHEIGHT (default 1280x800)")
    p.add_argument("--lang", choices=LANGUAGES, default="lv")
    p.add_argument("--large-text", action="store_true")
    p.add_argument("--high-contrast", action="store_true")
    p.add_argument("--out", help="PNG file to write (default preview-STATE-WxH-LANG.png)")
    p.add_argument(
        "--layout-json", action="store_true", help="print the laid-out widgets as one JSON object"
    )
    p.set_defaults(func=preview_command)


def preview_command(args: argparse.Namespace) -> int:
    if args.list:
        print("\n".join(state_names()))
        return 0
    try:
        if not args.state:
            raise PreviewError("name a state (kiosk preview --list)")
        if args.state not in STATES:
            raise PreviewError(f"unknown state {args.state!r}: `kiosk preview --list` names them")
        size = parse_size(args.size)
    except PreviewError as exc:
        print(f"kiosk preview: {exc}", file=sys.stderr)
        return 2
    _prepare_kivy(size)

    import kivy  # noqa: F401  # lazy: after its setup; Kivy sets its log level on import

    logging.getLogger("kivy").setLevel(logging.WARNING)
    previewer = Previewer()
    try:
        previewer.show(args.state, size, args.lang, args.large_text, args.high_contrast)
        if args.out or not args.layout_json:
            out = previewer.save_png(
                args.out or f"preview-{args.state}-{size[0]}x{size[1]}-{args.lang}.png"
            )
            if not args.layout_json:
                print(out)
        if args.layout_json:
            print(json.dumps(previewer.layout(args.state), ensure_ascii=False))
    finally:
        previewer.stop()
    return 0


def _prepare_kivy(size: tuple[int, int]) -> None:
    """Offscreen unless a display is there; Kivy reads these once, at its import."""
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_NO_CONFIG", "1")
    os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")
    os.environ.setdefault("KIVY_HOME", os.path.join(tempfile.gettempdir(), "kiosk-kivy"))
    os.environ["KCFG_GRAPHICS_FULLSCREEN"] = "0"
    os.environ["KCFG_GRAPHICS_WIDTH"], os.environ["KCFG_GRAPHICS_HEIGHT"] = (
        str(size[0]),
        str(size[1]),
    )


def contact_sheet(
    shots: list[tuple[str, Path]], out: str | os.PathLike[str], columns: int = 4, width: int = 400
) -> Path:
    """One PNG with every screenshot scaled to `width` and captioned, for review at a glance."""
    from PIL import Image, ImageDraw  # lazy: fast `kiosk --help`

    thumbs = []
    for caption, path in shots:
        with Image.open(path) as opened:
            img = opened.convert("RGB")
        scale = width / img.width
        thumbs.append((caption, img.resize((width, max(1, round(img.height * scale))))))
    if not thumbs:
        raise PreviewError("no screenshots for a contact sheet")
    cell_h = max(t.height for _, t in thumbs) + 22
    rows = (len(thumbs) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * (width + 8) + 8, rows * (cell_h + 8) + 8), (60, 60, 60))
    draw = ImageDraw.Draw(sheet)
    for n, (caption, thumb) in enumerate(thumbs):
        x, y = 8 + (n % columns) * (width + 8), 8 + (n // columns) * (cell_h + 8)
        draw.text((x, y), caption, fill=(255, 255, 255))
        sheet.paste(thumb, (x, y + 20))
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(target)
    return target
