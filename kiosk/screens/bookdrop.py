"""The unattended book drop's screens (`kiosk run --mode bookdrop`): an attract screen asking for one
item at a time, a big result per item (returned / hold: put aside / goes to bin N / take it to the
desk), and a closed screen. Nobody has to touch anything.

All configured languages are shown at once, Latvian first and largest (Cabinet Regulation No. 292:
the Latvian text takes the main place). The app shows `bookdrop` or `bookdrop_closed` (see
`screen_for`) and hands every BookDropState to `BookDropScreen.show`.
"""

from __future__ import annotations

import logging
from typing import Any

from kivy.app import App
from kivy.clock import Clock
from kivy.properties import BooleanProperty, ListProperty, NumericProperty, StringProperty

from kiosk.core.bookdrop import BookDropItem, BookDropState, Component, FinalState
from kiosk.core.routing import Instruction, ReturnOutcome
from kiosk.screens.base import KioskScreen, register_screen
from kiosk.screens.widgets import load_kv

log = logging.getLogger(__name__)

BOOKDROP = "bookdrop"
CLOSED = "bookdrop_closed"

# Texts by key and language; shown together, so they live here rather than in the catalogs.
TEXTS: dict[str, dict[str, str]] = {
    "attract": {
        "lv": "Ievietojiet pa vienai grāmatai",
        "en": "Drop one item at a time",
        "ru": "Опускайте по одной книге",
    },
    "attract_sub": {
        "lv": "Lasītāja karte nav vajadzīga",
        "en": "No library card needed",
        "ru": "Читательский билет не нужен",
    },
    "busy": {"lv": "Pārbauda…", "en": "Checking…", "ru": "Проверка…"},
    "returned": {"lv": "Paldies! Nodots", "en": "Thank you! Returned", "ru": "Спасибо! Возвращено"},
    "returned_offline": {
        "lv": "Pieņemts, tiks reģistrēts vēlāk",
        "en": "Accepted, recorded later",
        "ru": "Принято, будет учтено позже",
    },
    "hold": {
        "lv": "Rezervēts: nolikts malā",
        "en": "Hold: put aside",
        "ru": "Забронировано: отложено",
    },
    "desk": {
        "lv": "Lūdzu, nododiet to bibliotekāram",
        "en": "Please take it to the desk",
        "ru": "Пожалуйста, отнесите его библиотекарю",
    },
    "staff": {
        "lv": "Darbinieki to pārbaudīs",
        "en": "Staff will check it",
        "ru": "Сотрудники проверят",
    },
    "closed": {
        "lv": "Grāmatu nodošana slēgta",
        "en": "Book drop closed",
        "ru": "Приём книг закрыт",
    },
    "closed_sub": {
        "lv": "Lūdzu, nododiet grāmatas bibliotēkā",
        "en": "Please return items inside the library",
        "ru": "Пожалуйста, верните книги в библиотеке",
    },
    "hours": {
        "lv": "Bibliotēkas darba laiks: {hours}",
        "en": "Library opening hours: {hours}",
        "ru": "Часы работы библиотеки: {hours}",
    },
    "reader_down": {
        "lv": "RFID lasītājs nedarbojas",
        "en": "RFID reader not working",
        "ru": "Считыватель RFID не работает",
    },
    "offline": {
        "lv": "Bibliotēkas sistēma nav pieejama: nodošana tiek reģistrēta vēlāk",
        "en": "Library system offline: returns are recorded later",
        "ru": "Система библиотеки недоступна: возвраты учитываются позже",
    },
}

# Reasons a patron can understand; technical ones (the library system refused, the sorter or the
# security write failed) go to the journal and the maintenance screen, not to the patron.
REASONS: dict[ReturnOutcome, dict[str, str]] = {
    ReturnOutcome.UNREADABLE_TAG: {
        "lv": "Birku nevar nolasīt",
        "en": "The tag cannot be read",
        "ru": "Метку не удаётся прочитать",
    },
    ReturnOutcome.UNKNOWN_ITEM: {
        "lv": "Nezināms eksemplārs",
        "en": "Unknown item",
        "ru": "Неизвестный экземпляр",
    },
    ReturnOutcome.OTHER_LIBRARY: {
        "lv": "Citas bibliotēkas eksemplārs",
        "en": "Belongs to another library",
        "ru": "Из другой библиотеки",
    },
    ReturnOutcome.SET_INCOMPLETE: {
        "lv": "Komplekts nav pilnīgs",
        "en": "The set is incomplete",
        "ru": "Комплект неполный",
    },
    ReturnOutcome.NOT_ON_LOAN: {
        "lv": "Eksemplārs nav izsniegts",
        "en": "The item was not on loan",
        "ru": "Экземпляр не выдавался",
    },
}

# Which result a patron sees, and its colour (a theme colour name).
KIND_OK, KIND_NOTE, KIND_STOP = "ok", "note", "stop"


def _app() -> Any:
    return App.get_running_app()


def languages(cfg: Any) -> list[str]:
    """The configured languages with Latvian first (it must take the main place)."""
    langs = list(getattr(cfg.kiosk, "languages", ("lv", "en", "ru")))
    return sorted(langs, key=lambda code: (code != "lv", langs.index(code)))


def texts(entry: dict[str, str], langs: list[str], **fmt: Any) -> list[str]:
    return [entry.get(code, entry["en"]).format(**fmt) for code in langs]


def describe(item: BookDropItem, has_sorter: bool) -> tuple[str, str, ReturnOutcome | None]:
    """(text key, kind, reason) for one item's result."""
    if item.final is FinalState.EXCEPTION_BIN:
        return ("staff" if has_sorter else "desk"), KIND_STOP, item.outcome
    if item.instruction == Instruction.HOLD_SHELF:
        return "hold", KIND_NOTE, None
    if (
        item.instruction in (Instruction.OTHER_BRANCH, Instruction.TRANSIT, Instruction.SPECIAL)
        and has_sorter
    ):
        return "returned", KIND_OK, None  # the sorter routes it; the bin number is for staff only
    if item.instruction in (
        Instruction.TAKE_TO_DESK,
        Instruction.PLACE_ALL_PARTS,
        Instruction.SPECIAL,
    ):
        return "desk", KIND_STOP, None
    return (
        ("returned_offline" if item.final is FinalState.QUEUED_OFFLINE_SECURED else "returned"),
        KIND_OK,
        None,
    )


def screen_for(state: BookDropState | None, in_service: bool = True) -> str:
    """Which book-drop screen to show: closed when out of service or when the reader is down."""
    if not in_service or (state is not None and Component.READER in state.outages):
        return CLOSED
    return BOOKDROP


class FitScreen(KioskScreen):
    """A screen of big centred text: `fit` (1 at most) shrinks the biggest lines until the
    content fits the screen, so a large-text headline on an 800x480 display is never cut."""

    fit = NumericProperty(1.0)

    def on_kv_post(self, base_widget: Any) -> None:
        self._steps = 0
        self._fit_trigger = Clock.create_trigger(self._fit, -1)
        content = self.ids.content
        content.bind(minimum_height=self._fit_trigger, height=self._fit_trigger)
        self.bind(size=self._refit)
        _app().theme.bind(font_xl=self._refit)

    def _refit(self, *_: Any) -> None:
        self._steps = 0
        self._fit_trigger()

    def on_enter(self, *_: Any) -> None:
        self._refit()

    def _fit(self, *_: Any) -> None:
        content = self.ids.content
        if self.get_root_window() is None or self.height < 200:
            return  # not laid out on the window yet: its sizes mean nothing
        need, have = content.minimum_height, content.height
        # Shrink while too tall, grow back while clearly too small; a few steps per change at most
        # (texts re-wrap while the window is laid out, and must not swing back and forth forever).
        if self._steps >= 12 or need <= 0:
            return
        if need > have + 1 and self.fit > 0.35:
            self._steps += 1
            self.fit = max(0.35, self.fit * max(0.8, have / need))
        elif need < have * 0.85 and self.fit < 1:
            self._steps += 1
            self.fit = min(1.0, self.fit * min(1.25, have / need))


class BookDropScreen(FitScreen):
    """Attract, busy, or the last item's result, with an offline note when the library system is down."""

    mode = StringProperty("attract")  # attract, busy, result
    kind = StringProperty(KIND_OK)
    symbol = StringProperty("")
    lines = ListProperty([])  # the headline in each language, Latvian first
    reason_lines = ListProperty([])
    title_text = StringProperty("")
    note = StringProperty("")
    sequence = NumericProperty(0)
    offline = BooleanProperty(False)
    panel = ListProperty([1, 1, 1, 1])  # the background
    ink = ListProperty([0, 0, 0, 1])  # text on it: dark on light colours, white on dark ones

    def on_kv_post(self, base_widget: Any) -> None:
        super().on_kv_post(base_widget)
        self._state: BookDropState | None = None
        # Bound to the colours themselves: they change after the theme's own mode handler ran.
        _app().theme.bind(bg=lambda *_: self._colour(), ok=lambda *_: self._colour())
        self.show(None)

    def _colour(self) -> None:
        theme = _app().theme
        if self.mode != "result":
            self.panel, self.ink = list(theme.bg), list(theme.fg)
            return
        bg = {KIND_OK: theme.ok, KIND_NOTE: theme.warn_bg, KIND_STOP: theme.refused}[self.kind]
        r, g, b = bg[:3]
        light = 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.5
        self.panel, self.ink = list(bg), ([0.05, 0.05, 0.05, 1] if light else [1, 1, 1, 1])

    def show(self, state: BookDropState | None) -> None:
        self._render(state)
        self._colour()
        self._refit()

    def _render(self, state: BookDropState | None) -> None:
        app = _app()
        cfg = app.cfg
        langs = languages(cfg)
        has_sorter = cfg.sorter.url not in ("", "none")
        self.offline = bool(state and Component.LIBRARY_SYSTEM in state.outages)
        self.note = "\n".join(texts(TEXTS["offline"], langs)) if self.offline else ""
        last = state.last if state else None
        if state is not None and state.busy:
            self.mode, self.kind, self.symbol = "busy", KIND_OK, "…"
            self.lines, self.reason_lines, self.title_text = texts(TEXTS["busy"], langs), [], ""
            return
        if last is None:
            self.mode, self.kind, self.symbol = "attract", KIND_OK, "⬇"
            self.lines = texts(TEXTS["attract"], langs)
            self.reason_lines = texts(TEXTS["attract_sub"], langs)
            self.title_text = ""
            return
        key, kind, reason = describe(last, has_sorter)
        self.mode, self.kind, self.sequence = "result", kind, last.sequence
        self.symbol = {KIND_OK: "✔", KIND_NOTE: "➜", KIND_STOP: "✘"}[kind]
        self.lines = texts(TEXTS[key], langs, n=last.bin)
        self.reason_lines = texts(REASONS[reason], langs) if reason in REASONS else []
        # No bin number: it is for staff (journal, maintenance), never for patrons.
        self.title_text = last.title or last.item_id


class BookDropClosedScreen(FitScreen):
    lines = ListProperty([])
    sub_lines = ListProperty([])
    detail = StringProperty("")

    def on_kv_post(self, base_widget: Any) -> None:
        super().on_kv_post(base_widget)
        self._logged: list[str] = []
        self.show(None)

    def show(self, state: BookDropState | None) -> None:
        app = _app()
        langs = languages(app.cfg)
        self.lines = texts(TEXTS["closed"], langs)
        self.sub_lines = texts(TEXTS["closed_sub"], langs)
        faults = list(getattr(getattr(app, "services", None), "faults", None) or [])
        if state is not None and Component.READER in state.outages:
            faults.append(TEXTS["reader_down"]["en"])
        if faults and faults != self._logged:
            log.warning(
                "book drop closed: %s", "; ".join(faults)
            )  # for staff; patrons see the hours
        self._logged = faults
        hours = getattr(app.cfg.ui, "opening_hours", "")
        self.detail = "\n".join(texts(TEXTS["hours"], langs, hours=hours)) if hours else ""
        self._refit()


def _factory(cls: type[KioskScreen]) -> Any:
    def build(_app_obj: Any) -> KioskScreen:
        load_kv("widgets.kv", "bookdrop.kv")
        return cls()

    return build


register_screen(BOOKDROP, _factory(BookDropScreen))
register_screen(CLOSED, _factory(BookDropClosedScreen))
