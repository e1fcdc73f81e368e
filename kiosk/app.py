"""The kiosk application and its composition root: reads the configuration, builds the devices,
the circulation service, the core workflows and the worker, and hands them to the screens.

This is the only module that knows every part. Screens see the app (`App.get_running_app()`):
its theme, its language, `post(event)` to drive the patron session, and `add_screen(name, ...)`
for extra screens (maintenance, book drop) registered through kiosk.screens.base.

Threads: device callbacks (pad, cards) and the core worker never touch widgets; they hand
snapshots to the UI thread with `Clock.schedule_once`.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
import socket
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from kivy.app import App
from kivy.clock import Clock
from kivy.metrics import Metrics
from kivy.properties import BooleanProperty, NumericProperty, ObjectProperty, StringProperty
from kivy.uix.screenmanager import NoTransition, Screen, ScreenManager

from kiosk import memory
from kiosk.config import Config
from kiosk.core.domain import ItemTag, uid_key
from kiosk.core.errors import log_fault
from kiosk.core.events import (
    Action,
    BarcodeScanned,
    CardPresented,
    CardSource,
    Event,
    TagsChanged,
    Tapped,
)
from kiosk.core.ports import Clock as CoreClock
from kiosk.core.ports import SystemClock
from kiosk.errors import KioskError
from kiosk.i18n import LANGUAGE_NAMES, _, translator
from kiosk.screens.base import ScreenFactory, registered_screens, registered_setups
from kiosk.screens.theme import Theme
from kiosk.sounds import Cue, Sounds

if TYPE_CHECKING:
    from kiosk.acschild import AcsChild
    from kiosk.core.bookdrop import BookDrop, BookDropState
    from kiosk.core.domain import LinkStatus
    from kiosk.core.returns import ReturnState, ReturnStation
    from kiosk.core.session import PatronSession, SessionState
    from kiosk.core.worker import Worker
    from kiosk.devices.cards.base import CardSource as CardReader
    from kiosk.devices.cards.wedge import WedgeCollector
    from kiosk.devices.printer import PrinterStatus, ReceiptPrinterDevice
    from kiosk.devices.readers.base import TagReader
    from kiosk.devices.readers.sim import SimulatedPad
    from kiosk.devices.security import TagSecurityService
    from kiosk.devices.sorter import SorterDevice
    from kiosk.devices.stack import StackReader
    from kiosk.screens.maintenance import MaintenanceController
    from kiosk.speech.guide import SpeechGuide
    from kiosk.sync.acs.server import RunningAcs
    from kiosk.sync.circulation import CirculationService

log = logging.getLogger(__name__)

# Screen modules other parts contribute; each registers its screens on import (missing ones skipped).
EXTRA_SCREEN_MODULES = ("kiosk.screens.maintenance", "kiosk.screens.bookdrop")

# How often the session hears the time (idle warning and logout), and the link is looked at.
TICK_S = 1.0
LINK_CHECK_S = 10.0
ACTIVITY_THROTTLE_S = 3.0
# "Checking your card" comes up only once the library system has taken this long to answer. A
# quicker answer would replace it within a frame or two: a flash, and a whole frame's drawing
# the patron's own screen waits behind (docs/performance.md, "frame drawn"). The card's sound
# has already said it was read; under 0.1 s an answer reads as immediate.
IDENTIFYING_AFTER_S = 0.1


OFFLINE_TEXTS = {
    "checkin-and-checkout": _(
        "The library system is offline. You can still borrow and return items; due dates are provisional. "
        "Your account and renewals are not available."
    ),
    "checkin-only": _(
        "The library system is offline. You can return items; borrowing, renewals and your account are not available."
    ),
    "disabled": _("The library system is offline."),
}

# Until the first answer about the link (the kiosk's parts start after its first frame).
CONNECTING_TEXT = _("Connecting to the library system…")


@dataclass
class KioskServices:
    """Everything the composition root built; `close()` stops it all in reverse order."""

    cfg: Config
    clock: CoreClock = field(default_factory=SystemClock)
    worker: Worker | None = None
    circulation: CirculationService | None = None
    session: PatronSession | None = None
    returns: ReturnStation | None = None  # the staffed return station, `[kiosk] returns_enabled`
    bookdrop: BookDrop | None = None  # the book-drop workflow, in `[kiosk] mode = "bookdrop"`
    sorter: SorterDevice | None = None
    reader: TagReader | None = None
    stack: StackReader | None = None
    security: TagSecurityService | None = None
    printer: ReceiptPrinterDevice | None = (
        None  # the device (status(), print_receipt(PrintDocument))
    )
    sounds: Sounds = field(default_factory=lambda: Sounds(enabled=False))
    acs: RunningAcs | AcsChild | None = None  # the demo library system, in-process or a child
    pad: SimulatedPad | None = None  # the simulated pad, when the reader is `sim:`
    cards: list[CardReader] = field(
        default_factory=list
    )  # patron card sources ([patron] card_sources)
    card_sim: CardReader | None = (
        None  # the simulated card source the demo panel presents cards through
    )
    wedge: WedgeCollector | None = (
        None  # the keyboard-wedge collector, fed with the window's key events
    )
    faults: list[str] = field(default_factory=list)  # required parts that are missing
    closers: list[Callable[[], Any]] = field(default_factory=list)

    def close(self) -> None:
        for closer in reversed(self.closers):
            try:
                closer()
            except Exception:
                # Shutting down: one part failing must not keep the others running.
                log.exception(
                    "error while shutting down %s", getattr(closer, "__qualname__", closer)
                )
        self.closers.clear()


def _unread(tag: ItemTag) -> bool:
    """A tag the reader has found but not read yet (StackReader.on_found): no item, no error."""
    return not tag.item_id and not tag.error


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def start_embedded_acs(
    cfg: Config, *, own_process: bool = False
) -> tuple[Config, RunningAcs | AcsChild]:
    """Start the embedded demo library system (`own_process`: as a child process, see
    kiosk/acschild.py); when its port is taken, on a free one (and point [sip2] at it)."""
    port = cfg.acs.port
    if not _port_free(cfg.acs.host, port):
        log.warning(
            "port %s:%d is in use; the demo library system takes a free port instead",
            cfg.acs.host,
            port,
        )
        port = 0
    acs: RunningAcs | AcsChild
    if own_process:
        from kiosk.acschild import AcsChild  # lazy: not for a frame

        acs = AcsChild.start(cfg, port)
    else:
        from kiosk.sync.acs.server import build_from_config  # lazy: SQLAlchemy, not for a frame

        acs = build_from_config(cfg, port=port)
    if cfg.sip2.host in ("127.0.0.1", "localhost", cfg.acs.host) and cfg.sip2.port != acs.port:
        cfg = dataclasses.replace(
            cfg, sip2=dataclasses.replace(cfg.sip2, host=acs.host, port=acs.port)
        )
    log.info("demo library system listening on %s:%d", acs.host, acs.port)
    return cfg, acs


def build_services(
    cfg: Config,
    *,
    clock: CoreClock | None = None,
    session_clock: CoreClock | None = None,
    start_acs: bool | None = None,
    acs_process: bool = False,
    migrate_apart: bool = False,
    worker: Worker | None = None,
) -> KioskServices:
    """The composition root: every part the kiosk needs, built from the configuration.

    `session_clock` drives only the patron session's timers (idle warning, logout), so a test or
    a simulation can move them on without touching the network timeouts that use `clock`.

    `acs_process`: the embedded demo library system (when started) runs in a child process
    (`kiosk run`), not in this one.

    `migrate_apart`: a journal that needs its schema brought up to date (the first start, the
    first after an update) is migrated in a child process (`kiosk run`), so Alembic never takes
    memory in this one.

    A missing required device (the reader) is recorded in `faults` (the out-of-service screen
    shows it) instead of stopping the program, so a technician can still reach maintenance.
    """
    from kiosk.core.bookdrop import BookDrop  # lazy: not for a frame
    from kiosk.core.returns import ReturnSettings, ReturnStation  # lazy: not for a frame
    from kiosk.core.routing import RoutingTable  # lazy: not for a frame
    from kiosk.core.session import PatronSession, SessionSettings  # lazy: not for a frame
    from kiosk.core.worker import CoreWorker  # lazy: not for a frame
    from kiosk.devices.errors import DeviceError  # lazy: not for a frame
    from kiosk.devices.printer import open_configured_printer  # lazy: Pillow, not for a frame
    from kiosk.receipts import RenderingPrinter  # lazy: Pillow, not for a frame
    from kiosk.sync.circulation import build_circulation  # lazy: SQLAlchemy, not for a frame

    clock = clock or SystemClock()
    session_clock = session_clock or clock
    services = KioskServices(cfg=cfg, clock=session_clock, sounds=Sounds(enabled=cfg.ui.sounds))
    if start_acs if start_acs is not None else cfg.acs.embedded:
        cfg, services.acs = start_embedded_acs(cfg, own_process=acs_process)
        services.cfg = cfg
        services.closers.append(services.acs.stop)

    if migrate_apart:
        from kiosk.sync.migrate import migrate_apart as migrate  # lazy: SQLAlchemy, not for a frame

        migrate(cfg.resolve_path(cfg.storage.path))
    services.circulation = build_circulation(cfg, clock=clock)
    services.closers.append(services.circulation.close)
    services.worker = worker or CoreWorker(
        idle=_forwarder_step(services.circulation), idle_interval_s=cfg.offline.forward_interval_s
    )
    services.closers.append(services.worker.stop)

    try:
        from kiosk.devices.readers import open_reader  # lazy: pyserial, not for a frame
        from kiosk.devices.security import TagSecurityService  # lazy: pyserial, not for a frame
        from kiosk.devices.stack import StackReader  # lazy: pyserial, not for a frame

        services.reader = open_reader(
            cfg.reader.url, timeout_s=cfg.reader.timeout_s, retries=cfg.reader.retries
        )
        services.security = TagSecurityService(services.reader, cfg.security)
        services.stack = StackReader(
            services.reader,
            stable_rounds=cfg.reader.stable_rounds,
            security=cfg.security,
            data_model=cfg.reader.data_model,
        )
        services.closers.append(services.stack.stop)
        if cfg.reader.url.startswith("sim:"):
            from kiosk.devices.readers.sim import get_shared_pad  # lazy: pyserial, not for a frame

            services.pad = get_shared_pad(cfg.reader.url[4:] or "default")
    except DeviceError as exc:
        log.error("RFID reader %s unavailable: %s", cfg.reader.url, exc)
        services.faults.append(f"RFID reader: {exc}")

    from kiosk.devices.cards import open_card_source  # lazy: not for a frame

    for url in cfg.patron.card_sources:
        try:
            source = open_card_source(url, cfg.patron, clock=clock, base_dir=cfg.resolve_path("."))
        except DeviceError as exc:
            # The on-screen keypad still works, so a missing card reader does not stop the kiosk.
            log.error("card source %s unavailable: %s", url, exc)
            continue
        services.cards.append(source)
        services.closers.append(source.stop)
        if url.startswith("sim:"):
            services.card_sim = source
        if url.startswith("wedge:"):
            services.wedge = cast("WedgeCollector", source)  # open_card_source's wedge: kind

    try:
        services.printer = open_configured_printer(cfg.printer, base=cfg.resolve_path("."))
    except DeviceError as exc:
        log.error("receipt printer %s unusable: %s", cfg.printer.url, exc)
        from kiosk.devices.printer import NoPrinter  # lazy: Pillow, not for a frame

        services.printer = NoPrinter()
    printer = RenderingPrinter(services.printer, width=cfg.printer.width)

    mailer = None
    if cfg.printer.email_receipts:
        from kiosk.receipts import MailError, ReceiptMailer  # lazy: Pillow, not for a frame

        try:
            mailer = ReceiptMailer(
                cfg.printer.email_url,
                cfg.printer.email_from,
                width=cfg.printer.width,
                base=cfg.resolve_path("."),
            )
        except MailError as exc:
            log.error("e-mail receipts disabled: %s", exc)
    services.session = PatronSession(
        services.circulation,
        session_clock,
        SessionSettings.from_config(cfg),
        security=services.security,
        printer=printer,
        mailer=mailer,
        pad=services.stack,
        recorder=getattr(services.circulation.journal, "record_event", None),
    )
    if cfg.kiosk.mode == "bookdrop":
        from kiosk.devices.sorter import open_sorter  # lazy: pyserial, not for a frame

        try:
            services.sorter = open_sorter(cfg.sorter.url)
            services.closers.append(getattr(services.sorter, "close", lambda: None))
        except DeviceError as exc:
            log.error("sorter %s unavailable: %s", cfg.sorter.url, exc)
        staff = printer
        if cfg.printer.staff_url:
            try:
                staff = RenderingPrinter(
                    open_configured_printer(
                        cfg.printer, cfg.printer.staff_url, base=cfg.resolve_path(".")
                    )
                )
            except DeviceError as exc:
                log.error(
                    "staff printer %s unusable: %s; hold slips go to the receipt printer",
                    cfg.printer.staff_url,
                    exc,
                )
        services.bookdrop = BookDrop(
            services.circulation,
            services.security,
            services.sorter,
            session_clock,
            RoutingTable.from_config(cfg),
            ReturnSettings.from_config(cfg),
            recorder=getattr(services.circulation.journal, "record_event", None),
            staff_printer=staff,
        )
    if cfg.kiosk.returns_enabled:
        services.returns = ReturnStation(
            services.circulation,
            services.security,
            session_clock,
            RoutingTable.from_config(cfg),
            ReturnSettings.from_config(cfg),
            recorder=getattr(services.circulation.journal, "record_event", None),
            staff_printer=printer,
        )
    from kiosk.fleet.runtime import attach as attach_fleet  # lazy: requests, not for a frame

    attach_fleet(services)  # metrics, alerts and the status page observe the parts built above
    return services


def raise_alert(kind: str, summary: str, **labels: str) -> str | None:
    """kiosk.fleet.alerts.raise_alert, imported when the first alert is raised."""
    from kiosk.fleet.alerts import raise_alert as fleet_alert  # lazy: requests, not for a frame

    return fleet_alert(kind, summary, **labels)


def wire_staff_alert(app: KioskApp) -> None:
    """ "Call staff" goes to the fleet alerting, which queues it for every configured sink (or logs
    it where no sink is configured)."""
    app.staff_alert = lambda reason: raise_alert("call_staff", reason)


def finish_frames_offscreen(
    env: os._Environ[str] | dict[str, str] = os.environ,
) -> Callable[[], None] | None:
    """Under SDL's offscreen driver (smoke tests, CI, previews, the benchmarks), wait for each
    frame to be drawn when the window flips; returns what undoes that (None: another driver).

    A real display's swap waits for the frame. The offscreen driver's swap shows nothing and so
    waits for nothing, and Mesa's software renderer keeps the draw data of every frame not waited
    for: about 2 MiB a frame of the welcome or checkout screen, without bound (1.3 GB after 600
    frames; docs/performance.md, memory)."""
    if env.get("SDL_VIDEODRIVER") != "offscreen":
        return None
    from kivy.core.window import Window  # lazy: opens Kivy's window

    gl_finish = frame_wait()

    def finish(*_: Any) -> None:
        gl_finish()

    Window.bind(on_flip=finish)
    return lambda: Window.unbind(on_flip=finish)


def frame_wait() -> Callable[[], Any]:
    """glFinish, called so that the interpreter lock is let go while the frame is drawn.

    Kivy's own `kivy.graphics.opengl.glFinish` keeps the lock for the whole call: with Mesa's
    software renderer that is the frame's whole drawing (20-40 ms at 1280x800), during which the
    library system's answer and the reader's tags wait on their threads. A foreign function
    called through ctypes runs without the lock; libGL dispatches it to the current context, the
    window's (docs/performance.md, "frame drawn")."""
    import ctypes  # lazy: only under the offscreen driver

    try:
        return cast(Callable[[], Any], ctypes.CDLL("libGL.so.1").glFinish)
    except (OSError, AttributeError):  # no libGL by that name: Kivy's call, lock and all
        from kivy.graphics.opengl import glFinish  # lazy: with the window

        return cast(Callable[[], Any], glFinish)


class InstantTransition(NoTransition):
    """A screen switch finished in the frame it was asked in.

    Kivy's NoTransition finishes at the next tick: the frame of the switch draws both screens,
    and the next one is drawn again only to take the old screen away. Under a software renderer
    each is a whole frame's drawing (20-40 ms at 1280x800), and a snapshot that arrives meanwhile
    waits for it (docs/performance.md, "frame drawn")."""

    def start(self, manager: Any) -> None:
        super().start(manager)
        anim: Any = getattr(self, "_anim", None)  # Kivy's property, untyped
        if anim is not None:
            anim.cancel(self)  # cancelled, it does not complete on its own
        self._on_progress(self, 1.0)
        self._on_complete()  # the old screen out, on_enter and on_leave: now, as at its end


def _forwarder_step(circulation: CirculationService) -> Callable[[], None]:
    def step() -> None:
        if circulation.status().pending or not circulation.status().online:
            circulation.forward_offline()

    return step


class KioskApp(App):
    """The patron's kiosk: a ScreenManager of patron screens under a top bar, plus overlays."""

    # Patron screens a visit seldom shows (a fault, an idle logout, returns at a checkout kiosk):
    # built when first shown (`screen()`), not at the start (docs/performance.md, memory).
    ON_FIRST_USE = ("out_of_service", "timed_out", "returns")

    lang = StringProperty("lv")
    theme = ObjectProperty(None)
    online = BooleanProperty(True)
    config_fault = StringProperty("")  # the technician's line; the patron sees "out of service"
    offline_text = StringProperty("")
    printer_ready = BooleanProperty(True)
    printer_problem = StringProperty("")
    idle_warning = BooleanProperty(False)
    seconds_left = NumericProperty(0)
    demo_panel = BooleanProperty(False)
    parts_started = BooleanProperty(False)  # services attached: sessions, devices, watchdog

    def __init__(self, cfg: Config, services: KioskServices | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cfg = cfg
        self.services = services
        self.theme = Theme()
        self.lang = cfg.kiosk.default_language
        self.title = cfg.kiosk.library_name
        self.demo_panel = cfg.ui.demo_panel
        self.manager: ScreenManager | None = None
        self.kiosk_root: Any = None
        self._screens: dict[str, Screen] = {}
        # Screens other modules registered (maintenance, book drop), built when first shown.
        self._factories: dict[str, ScreenFactory] = {}
        self.state: SessionState | None = None  # the latest snapshot of the patron session
        self.return_state: ReturnState | None = None
        self.local = ""  # a UI-only place on the welcome stage: "", "keypad", "returns"
        self._presentation: tuple[str, bool, bool] | None = None
        self._tick_pending = threading.Event()
        self._last_activity_post = -1e9
        # The names of the latest events posted, for tests and previews (bounded: one a tap).
        self._events: deque[str] = deque(maxlen=200)
        self._identifying: Any = None  # the "checking your card" screen's pending show
        self._last_link_check = -1e9
        self._return_activity = 0.0
        self.demo_panel_widget: Any = None
        self.provisional: dict[
            str, ItemTag
        ] = {}  # uid -> tag the reader saw, not yet in a snapshot
        # Tags on the pad whose scan sound was played: one sound per item placed, whether it is
        # first sighted or first believed, and whatever the screens did to `provisional` since.
        self._heard_on_pad: set[str] = set()
        self._stopped = False
        self.refused_lines: tuple[Any, ...] = ()  # items not borrowed, named on the goodbye screen
        self._typed = ""  # a card number typed on the keypad, kept until the login answers
        self._timed_out_until = 0.0
        # Raises a staff alert (the help screen's "Call staff"): the services' alerting when the
        # kiosk has one (see wire_staff_alert), else a log line staff monitoring picks up.
        self.staff_alert: Callable[[str], Any] = self._log_staff_alert
        self.speech: SpeechGuide | None = None  # spoken guidance and keypad operation
        self.connecting = False  # started without services: until the first link status
        self._early_events: list[Event] = []  # posted before the session was there
        self.start_error: BaseException | None = None  # the parts failed to start (kiosk run)
        self._start_lock = threading.Lock()
        self._start_thread: threading.Thread | None = None
        self._unattached: KioskServices | None = None
        # Technician mode, attached by the maintenance screens when they are registered.
        self.maintenance: MaintenanceController | None = None

    # -- texts ------------------------------------------------------------------------------

    def tr(self, msgid: str, *_bound: Any) -> str:
        """The text in the current language; kv passes `app.lang` as a second argument to re-bind."""
        return translator(self.lang).gettext(msgid)

    def ntr(self, singular: str, plural: str, n: int, *_bound: Any) -> str:
        return translator(self.lang).ngettext(singular, plural, n)

    def fmt_date(self, value: str, *_bound: Any) -> str:
        return translator(self.lang).format_date(value)

    def fmt_money(self, amount: str, currency: str = "EUR", *_bound: Any) -> str:
        return translator(self.lang).format_money(amount, currency)

    def language_name(self, code: str) -> str:
        return LANGUAGE_NAMES.get(code, code)

    # -- screens ----------------------------------------------------------------------------

    def add_screen(self, name: str, screen: Screen) -> None:
        """Add (or replace) a screen by name; extra screens use this or `register_screen`."""
        if self.manager is None:
            raise RuntimeError("add_screen() before build()")
        old = self._screens.get(name)
        if old is not None:
            self.manager.remove_widget(old)
        screen.name = name
        self._screens[name] = screen
        self.manager.add_widget(screen)

    def screen(self, name: str) -> Screen:
        """The screen called `name`; a patron or registered screen not built yet is built now."""
        screen = self._screens.get(name)
        if screen is None:
            factory = self._factories.get(name)
            if factory is not None:
                screen = factory(self)
            else:
                from kiosk.screens.patron import PATRON_SCREENS  # lazy: not for a frame
                from kiosk.screens.widgets import load_kv  # lazy: with the window

                if name not in PATRON_SCREENS:
                    raise KeyError(name)
                if name != "welcome":
                    load_kv("patron_screens.kv")  # once: not before the first frame
                screen = PATRON_SCREENS[name]()
            self.add_screen(name, screen)
        return screen

    def show_screen(self, name: str) -> None:
        """Show the screen called `name`, built now if it was not yet. A registered screen that
        fails to build is logged and the current screen stays."""
        if self.manager is None or self.manager.current == name:
            return
        if name not in self._screens and name in self._factories:
            try:
                self.screen(name)
            except Exception:
                # Another part's screen must not take the patron kiosk down with it.
                log.exception("screen %s could not be built", name)
                return
        self.screen(name)
        self.manager.current = name

    @property
    def current_screen(self) -> str:
        return self.manager.current if self.manager is not None else ""

    @property
    def maintenance_showing(self) -> bool:
        """A maintenance screen (or its login prompt) is up: session snapshots must not replace it."""
        return self.current_screen.startswith("maintenance")

    def _add_registered_screens(self) -> None:
        for module in EXTRA_SCREEN_MODULES:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if exc.name and module.startswith(exc.name):
                    continue
                raise
            except Exception:  # another part's screen must not keep the patron kiosk from starting
                log.exception("screen module %s failed to load", module)
        # The screens themselves are built when first shown: a technician's screens (and the
        # book drop's, in checkout mode) would otherwise take memory for a visit that may never
        # come (docs/performance.md, memory).
        self._factories.update(registered_screens())
        for setup in registered_setups():
            try:
                setup(self)
            except Exception:
                # Another part's screen must not keep the patron kiosk from starting.
                log.exception("screen setup %s failed", getattr(setup, "__module__", setup))

    # -- building ---------------------------------------------------------------------------

    def build(self) -> Any:
        from kiosk.screens import patron  # lazy: with the window, not on import of kiosk.app
        from kiosk.screens.widgets import load_kv  # lazy: as above

        load_kv("widgets.kv", "patron.kv")
        self._follow_display()
        self._unfinish_frames = finish_frames_offscreen()
        wire_staff_alert(self)
        root = patron.KioskRoot()
        self.kiosk_root = root
        self.manager = root.ids.manager
        self.manager.transition = InstantTransition()
        if self.services is None:
            # `kiosk run`: the welcome screen is drawn first and says it is connecting; the parts
            # (the demo library system, the journal, the devices) and the other screens are built
            # after that frame (on_start), so a restart is not a patron at a dark screen.
            self.connecting = True
            self.screen("welcome")
            self.show_screen("welcome")
            self._update_offline_text()
            return root
        self._build_screens()
        return root

    def _build_screens(self) -> None:
        """Every screen not built yet, the demo panel and speech; needs the services."""
        from kiosk.screens import patron  # lazy: not for a frame

        s = self.services
        assert s is not None and self.kiosk_root is not None
        for name in patron.PATRON_SCREENS:
            if name not in self.ON_FIRST_USE:
                self.screen(name)
        self._add_registered_screens()
        if self.demo_panel:
            from kiosk.devices.readers.sim import demo_tag, demo_uid  # lazy: not for a frame
            from kiosk.screens.demo import DemoPanel  # lazy: not for a frame

            self.demo_panel_widget = DemoPanel(
                pad=s.pad, cfg=self.cfg, make_tag=demo_tag, tag_uid=demo_uid
            )
            self.kiosk_root.ids.side.add_widget(self.demo_panel_widget)
        if s.bookdrop is not None and "bookdrop" in self._factories:
            self.show_screen("bookdrop_closed" if s.faults else "bookdrop")
        elif s.faults:
            self.show_screen("out_of_service")
        elif not self.local:  # a patron who went on while the kiosk was connecting stays there
            self.show_screen("welcome")

        from kiosk.speech.guide import SpeechGuide  # lazy: not for a frame

        self.speech = SpeechGuide(self)

    def _follow_display(self) -> None:
        """Sizes follow the window (and the site's `[ui] scale`), now and on every resize."""
        from kivy.core.window import Window  # lazy: opens Kivy's window

        def fit(*_: Any) -> None:
            self.theme.fit_display(Window.width, Window.height, Metrics.density, self.cfg.ui.scale)

        Window.bind(size=fit)
        self._unfollow_display = lambda: Window.unbind(size=fit)
        fit()

    def on_start(self) -> None:
        if self.services is not None:
            self._attach()
            return
        from kivy.core.window import Window  # lazy: opens Kivy's window

        def first_frame(*_: Any) -> None:
            Window.unbind(on_flip=first_frame)
            self._start_parts()

        Window.bind(on_flip=first_frame)

    def _start_parts(self) -> None:
        """After the first frame: the services on a thread of their own (their imports, the demo
        library system and the journal's recovery); the other screens once they are there."""

        def build() -> None:
            try:
                # The demo library system (on the embedded default) in a process of its own:
                # this one then holds only the kiosk (docs/performance.md, memory).
                services = build_services(self.cfg, acs_process=True, migrate_apart=True)
            except Exception as exc:  # `kiosk run` reports it once the app has stopped
                if isinstance(exc, KioskError):
                    log.error("the kiosk's parts could not be started: %s", exc)
                else:
                    log.exception("the kiosk's parts could not be started")
                self.start_error = exc
                Clock.schedule_once(lambda _dt: self.stop())
                return
            with self._start_lock:
                stopped = self._stopped
                if not stopped:
                    self._unattached = services  # on_stop closes them if they never attach
            if stopped:  # stopped while starting: nothing is left running
                services.close()
                return
            Clock.schedule_once(lambda _dt: self._parts_ready(services))

        self._start_thread = threading.Thread(target=build, name="kiosk-start", daemon=True)
        self._start_thread.start()

    def wait_started(self, timeout_s: float) -> None:
        """After the app stopped: let a start still under way finish (it then closes its parts)."""
        if self._start_thread is not None:
            self._start_thread.join(timeout_s)

    def _parts_ready(self, services: KioskServices) -> None:
        with self._start_lock:
            if self._stopped:  # on_stop closed them
                return
            self._unattached = None
        self.services = services
        self.cfg = services.cfg
        # The session starts in the site's defaults; a choice tapped while connecting is on its
        # way to it (_early_events) and must not be undone by its first snapshot.
        assert services.session is not None  # build_services always makes one
        first = services.session.state
        self._presentation = (first.language, first.large_text, first.high_contrast)
        self._build_screens()
        self._attach()
        early, self._early_events = self._early_events, []
        for event in early:
            self.post(event)
        self._trim_heap()  # what the start thread allocated and let go of

    def _trim_heap(self) -> None:
        """Give the C heap's free pages back to the system (kiosk/memory.py), on the worker, at
        the quiet moments: after the start and after each visit."""
        s = self.services
        if s is not None and s.worker is not None and not self._stopped:
            s.worker.submit(memory.trim, on_error=lambda exc: log.error("malloc_trim: %s", exc))

    def _attach(self) -> None:
        """Listen to the parts and start them: sessions, card sources, the pad, the link check."""
        s = self.services
        assert s is not None and s.session is not None and s.worker is not None
        s.session.set_listener(lambda state: Clock.schedule_once(lambda _dt: self.render(state)))
        if s.bookdrop is not None:
            s.bookdrop.set_listener(
                lambda state: Clock.schedule_once(lambda _dt: self.render_bookdrop(state))
            )
        if s.returns is not None:
            s.returns.set_listener(
                lambda state: Clock.schedule_once(lambda _dt: self.render_returns(state))
            )
        for source in s.cards:
            try:
                source.start(lambda event: Clock.schedule_once(lambda _dt: self._on_card(event)))
            except Exception as exc:
                # A device boundary: a card reader that fails to start leaves the keypad.
                log_fault(
                    log, exc, "card source %s did not start", getattr(source, "source", source)
                )
        if s.stack is not None:
            s.stack.on_change = self._on_tags
            s.stack.on_sighted = self._on_sighted
            s.stack.on_found = self._on_found
            s.stack.start(self.cfg.reader.poll_interval_s)
        self.render(s.session.state)
        if s.bookdrop is not None:
            self.render_bookdrop(s.bookdrop.state)
        log.info("kiosk started: %s screen shown", self.current_screen)
        s.worker.submit(
            self._connect_and_status,
            on_done=lambda st: Clock.schedule_once(lambda _dt: self._link(st)),
        )
        self._tick_event = Clock.schedule_interval(lambda _dt: self.tick(), TICK_S)
        from kivy.core.window import Window  # lazy: opens Kivy's window

        logging.getLogger("kivy").setLevel(
            max(logging.getLogger("kivy").level, logging.getLogger().level)
        )
        Window.bind(on_textinput=self._on_text_input, on_key_down=self._on_key_down)
        self._wedge = ""
        if self.speech is not None:  # made in _build_screens, which runs first
            self.speech.start()
        if self.cfg.ui.fullscreen:
            self._lock_down(Window)

        from kiosk.watchdog import Notifier, start_kivy_watchdog  # lazy: not for a frame

        # READY=1 and WATCHDOG=1 from the Kivy clock: a hung UI thread stops the pings and
        # systemd restarts the kiosk (systemd/kiosk.service, WatchdogSec).
        self._notifier = Notifier.from_env()
        self._watchdog = start_kivy_watchdog(self._notifier)
        self.parts_started = True

    def _lock_down(self, window: Any) -> None:
        """On a real site: no Escape, no window close, full screen (the technician's exit unlocks)."""
        try:
            from kiosk.screens.lockdown import apply_lockdown  # lazy: not for a frame
        except ImportError:
            log.warning("kiosk lockdown not available; the window is not locked down")
            return
        self.lockdown = apply_lockdown(window, self, fullscreen=True)
        if self.maintenance is not None:
            self.maintenance.lockdown = self.lockdown

    def on_stop(self) -> None:
        with self._start_lock:
            self._stopped = True  # snapshots still on their way from the worker are dropped
            unattached, self._unattached = self._unattached, None
        if unattached is not None:  # started, but stopped before they were attached
            unattached.close()
        s = self.services
        if s is not None:
            if s.session is not None:
                s.session.set_listener(None)
            for workflow in (s.returns, s.bookdrop):
                if workflow is not None:
                    workflow.set_listener(None)
            if s.stack is not None:
                s.stack.on_change = None
                s.stack.on_sighted = None
                s.stack.on_found = None
        for name in ("_tick_event", "_watchdog"):
            event = getattr(self, name, None)
            if event is not None:
                event.cancel()
        notifier = getattr(self, "_notifier", None)
        if notifier is not None:
            notifier.stopping()
            notifier.close()
        from kivy.core.window import Window  # lazy: opens Kivy's window

        Window.unbind(on_textinput=self._on_text_input, on_key_down=self._on_key_down)
        if self.speech is not None:
            self.speech.close()
        getattr(self, "_unfollow_display", lambda: None)()
        (getattr(self, "_unfinish_frames", None) or (lambda: None))()
        if self.services is not None:
            self.services.close()

    # -- driving the core -------------------------------------------------------------------

    def post(self, event: Event) -> None:
        """Hand an event to the patron session on the core worker (never blocks the UI)."""
        s = self.services
        self._events.append(type(event).__name__)
        if s is None:  # still starting: handled in order once the session is there
            self._early_events.append(event)
            return
        assert s.worker is not None and s.session is not None
        s.worker.submit(s.session.handle, event, on_error=self._core_failed)

    def _core_failed(self, exc: BaseException) -> None:
        log.error("patron session failed: %s", exc)

    def tap(self, action: Action, arg: str = "") -> None:
        """A control was tapped: forward it; display choices apply at once (the worker may be busy)."""
        if action is Action.EXTEND:
            self.idle_warning = False
        if action is Action.LARGE_TEXT:
            self.theme.large_text = not self.theme.large_text
        elif action is Action.HIGH_CONTRAST:
            self.theme.high_contrast = not self.theme.high_contrast
        elif action is Action.LANGUAGE:
            self.lang = arg
        if self.local == "returns" and action in (
            Action.LARGE_TEXT,
            Action.HIGH_CONTRAST,
            Action.LANGUAGE,
        ):
            self._return_activity = self._now()
        self.post(Tapped(action, arg))

    def present_card(self, number: str, source: str = CardSource.KEYPAD) -> None:
        if self._admin_card(number):
            return
        self._typed = number if source == CardSource.KEYPAD else ""
        self.local = ""
        self._play(Cue.SCAN)
        if self.speech is not None:
            self.speech.card_presented(number)
        self.post(CardPresented(number, source))

    def attach_maintenance(self, ctl: MaintenanceController) -> None:
        """Technician mode for this kiosk (the maintenance screens attach it when registered)."""
        self.maintenance = ctl

    def _admin_card(self, number: str) -> bool:
        """An admin card opens maintenance; the patron session never sees it."""
        return bool(self.maintenance is not None and self.maintenance.card_presented(number))

    def _on_card(self, event: CardPresented) -> None:
        """A card source read something (UI thread): an item scan, or a patron card; another patron's
        card mid-session goes to the session, which ends the open session first."""
        if self._stopped:
            return
        from kiosk.devices.cards import classify  # lazy: not for a frame

        text = event.card_number.strip()
        if self._admin_card(text):
            return
        in_welcome = self.state is None or self.state.stage.value in ("welcome", "goodbye")
        if self.local == "returns" or (
            not in_welcome and classify(text, self.cfg.patron) != "patron"
        ):
            self.scan(text)
        else:
            self.present_card(text, event.source)

    def scan(self, text: str) -> None:
        """A barcode from the hand scanner (keyboard wedge) or the demo panel."""
        text = text.strip()
        if not text:
            return
        self._play(Cue.SCAN)
        s = self.services
        if (
            self.local == "returns"
            and s is not None
            and s.returns is not None
            and s.worker is not None
        ):
            self._return_activity = self._now()
            s.worker.submit(s.returns.handle_barcode, text)
            return
        self.local = ""
        self.post(BarcodeScanned(text))

    def _on_tags(
        self, present: tuple[ItemTag, ...], added: tuple[ItemTag, ...], removed: tuple[ItemTag, ...]
    ) -> None:
        """From the pad's thread: route to returns or to the session on the worker."""
        s = self.services
        assert s is not None and s.worker is not None and s.session is not None
        event = TagsChanged(present=present, added=added, removed=removed)
        if added or removed:
            # Shown at the next frame, even while the worker is still busy with earlier items.
            Clock.schedule_once(lambda _dt: self._seen_on_pad(added, removed))
        if s.bookdrop is not None:
            s.worker.submit(s.bookdrop.handle_tags, event)
        elif self.local == "returns" and s.returns is not None:
            s.worker.submit(s.returns.handle_tags, event)
        else:
            s.worker.submit(s.session.handle, event)

    def _on_sighted(self, sighted: tuple[ItemTag, ...], withdrawn: tuple[ItemTag, ...]) -> None:
        """From the pad's thread: tags one inventory saw, before the set is stable (shown as
        "checking", nothing done with them yet), and sightings the stable set did not keep."""
        Clock.schedule_once(lambda _dt: self._seen_on_pad(sighted, withdrawn))

    def _on_found(self, found: tuple[str, ...], lost: tuple[str, ...]) -> None:
        """From the pad's thread: tags an inventory has just found, before their memory is read
        (a row at once, "checking", while the reader reads which item each one is), and findings
        the stable set did not keep."""
        Clock.schedule_once(
            lambda _dt: self._seen_on_pad(
                tuple(ItemTag(uid=uid) for uid in found), tuple(ItemTag(uid=uid) for uid in lost)
            )
        )

    def _seen_on_pad(self, added: tuple[ItemTag, ...], removed: tuple[ItemTag, ...]) -> None:
        """Items the reader just saw, shown as "checking" until the session's own snapshot has them.

        A tag only found, not yet read (no item id, no error), stands in for its item until the
        read comes; it never takes the place of a tag already heard of."""
        if self._stopped:
            return
        s = self.services
        assert s is not None
        added = tuple(t for t in added if not _unread(t) or t.uid not in self._heard_on_pad)
        if any(tag.uid not in self._heard_on_pad for tag in added):
            # Once per item: a tag sighted before the set was stable is heard then, not again.
            s.sounds.play(Cue.SCAN)
        self._heard_on_pad.update(tag.uid for tag in added)
        for tag in removed:
            self._heard_on_pad.discard(tag.uid)
            self.provisional.pop(tag.uid, None)
        for tag in added:
            self.provisional[tag.uid] = tag
        if (
            self.state is not None
            and self.state.stage.value == "active"
            and self.current_screen == "checkout"
        ):
            self.screen("checkout").show(self.state)
        elif self.local == "returns" and self.current_screen == "returns":
            self.screen("returns").show(self.return_state)

    def note_activity(self) -> None:
        """A touch anywhere: tell the session (throttled), so the idle timer starts again."""
        now = self._now()
        if self.local == "returns":
            self._return_activity = now
        if (
            self.state is not None
            and self.state.stage.value != "welcome"
            and now - self._last_activity_post >= ACTIVITY_THROTTLE_S
        ):
            self._last_activity_post = now
            self.post(Tapped(Action.EXTEND))

    def _play(self, cue: Cue) -> None:
        if self.services is not None:
            self.services.sounds.play(cue)

    def _now(self) -> float:
        return self.services.clock.monotonic() if self.services else 0.0

    def tick(self) -> None:
        """Once a second: time for the session; skipped while the previous tick waits on a busy worker."""
        s = self.services
        if s is None or s.worker is None or s.session is None:
            return
        if not self._tick_pending.is_set():
            self._tick_pending.set()
            s.worker.submit(
                s.bookdrop.tick if s.bookdrop is not None else s.session.tick,
                on_done=lambda _st: self._tick_pending.clear(),
                on_error=lambda _e: self._tick_pending.clear(),
            )
        now = self._now()
        if self.speech is not None:
            self.speech.tick()
        if self.local == "returns" and now - self._return_activity > self.cfg.ui.idle_timeout_s:
            self.leave_returns()
        if self.local == "timed_out" and now >= self._timed_out_until:
            self.end_timed_out()
        if now - self._last_link_check >= LINK_CHECK_S:
            self._last_link_check = now
            s.worker.submit(
                self._link_and_printer_status,
                on_done=lambda st: Clock.schedule_once(lambda _dt: self._link(st)),
            )

    def refresh_status(self) -> None:
        """Look at the link and the printer now (on the worker) and update banners and buttons."""
        s = self.services
        if s is not None and s.worker is not None:
            self._last_link_check = self._now()
            s.worker.submit(
                self._link_and_printer_status,
                on_done=lambda st: Clock.schedule_once(lambda _dt: self._link(st)),
            )

    def _connect_and_status(self) -> tuple[LinkStatus, PrinterStatus]:
        s = self.services
        assert s is not None and s.circulation is not None
        try:
            s.circulation.forward_offline()  # connects, and forwards anything left from before
        except Exception as exc:
            # The kiosk starts whatever the link does; a bug keeps its traceback.
            log_fault(log, exc, "library system not reachable at start", level=logging.WARNING)
        return self._link_and_printer_status()

    def _link_and_printer_status(self) -> tuple[LinkStatus, PrinterStatus]:
        s = self.services
        assert s is not None and s.circulation is not None and s.printer is not None
        return s.circulation.status(), s.printer.status()

    def _link(self, status: tuple[LinkStatus, PrinterStatus]) -> None:
        if self._stopped:
            return
        from kiosk.devices.printer import PrinterStatus  # lazy: Pillow, not for a frame

        link, printer = status
        self.online = bool(link.online)
        self.config_fault = link.config_fault
        self.printer_ready = printer in (PrinterStatus.READY, PrinterStatus.PAPER_LOW)
        self.printer_problem = {
            PrinterStatus.PAPER_OUT: _("The receipt printer is out of paper."),
            PrinterStatus.OFFLINE: _("The receipt printer is not working."),
            PrinterStatus.NONE: "",
        }.get(printer, "")
        self._link_checked = True
        self.connecting = False
        self._update_offline_text()
        self._update_service_screen()

    def _update_offline_text(self) -> None:
        state = self.state
        in_session = False
        if state is not None:  # a session's snapshot (none yet at the first frame)
            from kiosk.core.session import Stage  # lazy: not for a frame

            in_session = state.stage is not Stage.WELCOME and state.stage is not Stage.GOODBYE
        offline = (in_session and state is not None and not state.capabilities.online) or (
            getattr(self, "_link_checked", False) and not self.online
        )
        offline = (
            offline and not self.config_fault
        )  # a configuration fault is no outage: nothing offline
        self.offline_text = (
            OFFLINE_TEXTS.get(self.cfg.offline.policy, OFFLINE_TEXTS["disabled"])
            if offline
            else CONNECTING_TEXT
            if self.connecting and not self.config_fault
            else ""
        )

    def out_of_service(self) -> bool:
        """A required part is missing, the configuration is wrong (the technician's line is in the
        log and on the maintenance screen, never on the patron's), or the library system is down
        where no offline work is allowed."""
        s = self.services
        if s is None:
            return False
        down = not self.online and self.cfg.offline.policy == "disabled"
        return bool(s.faults or self.config_fault or down)

    def _update_service_screen(self) -> None:
        s = self.services
        assert s is not None
        if self.maintenance_showing:
            return
        if self.out_of_service():
            if self.state is None or self.state.stage.value == "welcome":
                self.show_screen("out_of_service")
        elif self.current_screen == "out_of_service":
            self.render(self.state)

    # -- rendering --------------------------------------------------------------------------

    def render(self, state: SessionState | None) -> None:
        """Show a session snapshot (UI thread)."""
        from kiosk.core.session import Stage, View  # lazy: not for a frame

        if state is None or self._stopped:
            return
        previous = self.state
        self.state = state
        self._apply_presentation(state)
        # The patron's overlay would cover (and swallow the taps of) the technician's screens.
        self.idle_warning = bool(state.idle_warning) and not self.maintenance_showing
        self.seconds_left = int(round(state.seconds_left or 0))
        self._follow_visit(previous, state)
        if state.stage is not Stage.WELCOME:
            self.local = ""
        if state.stage is not Stage.ACTIVE and self.local != "returns":
            self.provisional.clear()
        if (
            state.stage in (Stage.WELCOME, Stage.GOODBYE)
            and previous is not None
            and previous.patron is not None
        ):
            for name in ("checkout", "account"):
                self.screen(name).wipe()
            self._trim_heap()  # the visit's rows and texts are gone
        elif state.checkout is not None:
            self._drop_known_provisional(state.checkout.items)
        self._update_offline_text()
        self._feedback(previous, state)
        if state.stage is Stage.FINISHING and (
            previous is None or previous.stage is not Stage.FINISHING
        ):
            self.refresh_status()  # the patron must see a paper-out before choosing to print
        if self.services and self.services.bookdrop is not None:
            return  # the book drop has its own screens (render_bookdrop)
        if self.out_of_service() and state.stage is Stage.WELCOME:
            name = "out_of_service"
        elif state.stage is Stage.WELCOME:
            name = {"keypad": "card_entry", "returns": "returns", "timed_out": "timed_out"}.get(
                self.local, "welcome"
            )
        elif state.stage is Stage.ACTIVE:
            name = "account" if state.view is View.ACCOUNT else "checkout"
        else:
            name = {
                Stage.IDENTIFYING: "identifying",
                Stage.PIN: "pin",
                Stage.FINISHING: "finish",
                Stage.GOODBYE: "goodbye",
            }[state.stage]
        screen = self.screen(name)
        if hasattr(screen, "show"):
            screen.show(self.return_state if name == "returns" else state)
        if self._identifying is not None and name != "identifying":
            self._identifying.cancel()  # answered in time: the screen never comes up
            self._identifying = None
        if self.maintenance_showing:  # leaving maintenance renders the session again
            return
        if name == "identifying" and self.current_screen != name:
            if self._identifying is None:
                self._identifying = Clock.schedule_once(
                    lambda _dt: self._show_identifying(previous), IDENTIFYING_AFTER_S
                )
            return
        self.show_screen(name)
        if self.speech is not None:
            self.speech.session_shown(previous, state, name)

    def _show_identifying(self, before: SessionState | None) -> None:
        """The library system has not answered within IDENTIFYING_AFTER_S: say it is checking."""
        self._identifying = None
        state = self.state
        from kiosk.core.session import Stage  # lazy: not for a frame

        if self._stopped or self.maintenance_showing or state is None:
            return
        if state.stage is not Stage.IDENTIFYING:
            return
        self.show_screen("identifying")
        if self.speech is not None:
            self.speech.session_shown(before, state, "identifying")

    def _follow_visit(self, previous: SessionState | None, state: SessionState) -> None:
        """What the screens remember across snapshots: the refused items (for the goodbye), an idle
        logout (for the "your session has ended" screen) and a mistyped card number (kept on the keypad)."""
        from kiosk.core.session import LoginProblem, Stage  # lazy: not for a frame

        if state.stage is Stage.FINISHING and state.receipt is not None:
            if state.receipt.refused and (
                previous is None or previous.stage is not Stage.FINISHING
            ):
                self._play(Cue.REFUSAL)  # "leave these at the desk"
            self.refused_lines = tuple(state.receipt.refused)
        elif state.stage in (Stage.WELCOME, Stage.IDENTIFYING, Stage.PIN):
            self.refused_lines = ()
        timed_out = (
            state.stage is Stage.WELCOME
            and previous is not None
            and previous.patron is not None
            and previous.idle_warning
            and previous.stage in (Stage.PIN, Stage.ACTIVE, Stage.FINISHING)
        )
        if timed_out and previous is not None:
            done = len(previous.checkout.checked_out) if previous.checkout is not None else 0
            self.screen("timed_out").show_for(
                previous.language, done, state.timeout_receipt, state.receipt_failed
            )
            self._timed_out_until = self._now() + self.cfg.ui.goodbye_s
            self.local = "timed_out"
        if (
            state.stage is Stage.WELCOME
            and self._typed
            and state.problem in (LoginProblem.BAD_CARD, LoginProblem.UNKNOWN_PATRON)
        ):
            self.local = (
                "keypad"  # back to the keypad with the digits, and what a card number looks like
            )
            self.screen("card_entry").keep(self._typed, state.problem)
            self._typed = ""
        elif state.stage in (Stage.PIN, Stage.ACTIVE, Stage.GOODBYE) or state.problem is not None:
            self._typed = ""  # in, or refused for another reason: the number is not kept

    def end_timed_out(self) -> None:
        """The "your session has ended" screen was read (or its time is up): greet the next patron."""
        if self.local == "timed_out":
            self.local = ""
            self.render(self.state)

    def _log_staff_alert(self, reason: str) -> None:
        log.warning("staff alert: %s (kiosk %s)", reason, self.cfg.kiosk.terminal_id)

    def call_staff(self, screen: str) -> None:
        """A patron asked for help on `screen`: raise a staff alert; a failing alert is logged, never shown."""
        try:
            self.staff_alert(f"a patron asks for help at the {screen} screen")
        except Exception:
            # The alert sinks are outside code (mail, webhooks): a patron's help tap never fails.
            log.exception("the staff alert could not be raised")

    def render_bookdrop(self, state: BookDropState) -> None:
        """Show a book-drop snapshot on the book-drop screens (UI thread)."""
        if self._stopped:
            return
        from kiosk.screens.bookdrop import screen_for  # lazy: not for a frame

        previous = getattr(self, "bookdrop_state", None)
        self.bookdrop_state = state
        in_service = not (self.services and self.services.faults)
        maintenance = self.maintenance
        if maintenance is not None and not maintenance.service.state.in_service:
            in_service = False
        name = screen_for(state, in_service)
        if name in self._screens or name in self._factories:
            self.screen(name).show(state)
            if not self.current_screen.startswith("maintenance"):
                self.show_screen(name)
                if self.speech is not None:
                    self.speech.bookdrop_shown(previous, state, name)

    def render_returns(self, state: ReturnState) -> None:
        if self._stopped:
            return
        previous = self.return_state
        self.return_state = state
        self._drop_known_provisional(state.items)
        before = {i.key: i.outcome for i in previous.items} if previous else {}
        for item in state.items:
            if item.outcome is not None and before.get(item.key) is None:
                self._play(Cue.REFUSAL if item.outcome.is_exception else Cue.SUCCESS)
        self.screen("returns").show(state)
        if self.speech is not None:
            self.speech.returns_shown(previous, state)

    def _drop_known_provisional(self, items: Any) -> None:
        """Tags a workflow's snapshot (its checkout or return items) now holds are shown from it,
        no longer as "checking"."""
        if not self.provisional:
            return
        keys = {i.key for i in items} | {i.item_id for i in items if i.item_id}
        self.provisional = {
            uid: tag
            for uid, tag in self.provisional.items()
            if tag.key not in keys and uid_key(uid) not in keys
        }

    def _apply_presentation(self, state: SessionState) -> None:
        """Follow the session's language and display choices only when the session changed them.

        Taps change the theme at once; a snapshot produced before the tap was handled (the worker
        may be busy with a slow library system) must not undo it.
        """
        current = (state.language, state.large_text, state.high_contrast)
        if current != self._presentation:
            self._presentation = current
            self.lang, self.theme.large_text, self.theme.high_contrast = current

    def _feedback(self, previous: SessionState | None, state: SessionState) -> None:
        """A sound for every result: success for items done, refusal for items refused or a failed login."""
        from kiosk.core.checkout import ItemStatus  # lazy: not for a frame

        sounds = self.services.sounds if self.services else None
        if sounds is None:
            return
        if state.idle_warning and not (previous and previous.idle_warning):
            sounds.play(Cue.WARNING)
        if state.problem is not None and (
            previous is None or previous.problem is None or previous.stage is not state.stage
        ):
            sounds.play(Cue.REFUSAL)
        if state.checkout is None:
            return
        before = (
            {i.key: i.status for i in previous.checkout.items}
            if previous and previous.checkout
            else {}
        )
        for item in state.checkout.items:
            old = before.get(item.key)
            if old is item.status or not item.final:
                continue
            sounds.play(Cue.SUCCESS if item.status is ItemStatus.CHECKED_OUT else Cue.REFUSAL)

    # -- returns (a UI place on the welcome stage) ----------------------------------------------

    def enter_returns(self) -> None:
        s = self.services
        if s is None or s.returns is None or s.worker is None:
            return
        self.local = "returns"
        self._return_activity = self._now()
        s.worker.submit(s.returns.clear)
        if s.stack is not None:
            present = s.stack.current()
            if present:
                s.worker.submit(s.returns.handle_tags, TagsChanged(present=present, added=present))
        self.render(self.state)

    def leave_returns(self, print_receipt: bool = False) -> None:
        s = self.services
        if s is None or s.returns is None or s.worker is None:
            return
        returns = s.returns

        def finish() -> None:
            if print_receipt:
                from kiosk.receipts import RenderingPrinter  # lazy: Pillow, not for a frame

                receipt = returns.receipt()
                if receipt is not None:
                    receipt = dataclasses.replace(receipt, language=self.lang)
                    RenderingPrinter(s.printer, width=self.cfg.printer.width).print_receipt(receipt)
            returns.clear()

        s.worker.submit(
            finish, on_error=lambda exc: log.error("return receipt not printed: %s", exc)
        )
        self.local = ""
        self.return_state = None
        self.render(self.state)

    def open_keypad(self) -> None:
        self.screen("card_entry").clear()
        self.local = "keypad"
        self.post(Tapped(Action.START))
        self.render(self.state)

    def close_keypad(self) -> None:
        self.local = ""
        self.render(self.state)

    # -- keyboard-wedge scanners ------------------------------------------------------------------

    def _on_text_input(self, _window: Any, text: str) -> None:
        if self.speech is not None and self.speech.took_text(text):
            return  # a keypad digit, already typed on the screen's keypad
        panel = self.demo_panel_widget
        if panel is not None and panel.typing:
            panel.type_text(text)  # typing at the demo panel's simulated scanner
            return
        wedge = self.services.wedge if self.services else None
        if wedge is not None:
            for char in text:
                wedge.feed(char)  # a complete scan comes back through the card callback
            return
        self._wedge += text

    def _on_key_down(self, _window: Any, key: int, *_args: Any) -> bool:
        panel = self.demo_panel_widget
        if panel is not None and panel.typing and key in (8, 13, 271):
            panel.backspace() if key == 8 else panel.send_scan()
            return True
        wedge = self.services.wedge if self.services else None
        if wedge is not None and key in (13, 271):
            if any(out.kind == "barcode" for out in wedge.feed("enter")):
                return True
        elif key in (13, 271) and self._wedge:  # Enter / keypad Enter ends a scan
            text, self._wedge = self._wedge, ""
            if (
                self.state is not None
                and self.state.stage.value == "welcome"
                and self.local != "returns"
            ):
                self.present_card(text, CardSource.BARCODE)
            else:
                self.scan(text)
            return True
        return self.speech is not None and self.speech.on_key(key)  # the patron's keypad
