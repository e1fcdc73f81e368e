"""The unattended book drop's screens (`kiosk run --mode bookdrop`): an attract screen asking for one
item at a time, a big result per item (returned / hold: put aside / goes to bin N / take it to the
desk), and a closed screen. Nobody has to touch anything.

All configured languages are shown at once, Latvian first and largest (Cabinet Regulation No. 292:
the Latvian text takes the main place). The app shows `bookdrop` or `bookdrop_closed` (see
`screen_for`) and hands every BookDropState to `BookDropScreen.show`.
"""

from __future__ import annotations

from typing import Any

from kivy.app import App
from kivy.properties import BooleanProperty, ListProperty, NumericProperty, StringProperty

from kiosk.core.bookdrop import BookDropItem, BookDropState, Component, FinalState
from kiosk.core.routing import Instruction, ReturnOutcome
from kiosk.screens.base import KioskScreen, register_screen

BOOKDROP = "bookdrop"
CLOSED = "bookdrop_closed"

# Texts by key and language; shown together, so they live here rather than in the catalogs.
TEXTS: dict[str, dict[str, str]] = {
    "attract": {"lv": "Ievietojiet pa vienai grāmatai", "en": "Drop one item at a time", "ru": "Опускайте по одной книге"},
    "attract_sub": {"lv": "Lasītāja karte nav vajadzīga", "en": "No library card needed", "ru": "Читательский билет не нужен"},
    "busy": {"lv": "Pārbauda…", "en": "Checking…", "ru": "Проверка…"},
    "returned": {"lv": "Paldies! Nodots", "en": "Thank you! Returned", "ru": "Спасибо! Возвращено"},
    "returned_offline": {"lv": "Pieņemts, tiks reģistrēts vēlāk", "en": "Accepted, recorded later", "ru": "Принято, будет учтено позже"},
    "hold": {"lv": "Rezervēts: nolikts malā", "en": "Hold: put aside", "ru": "Забронировано: отложено"},
    "bin": {"lv": "Uz kasti {n}", "en": "Goes to bin {n}", "ru": "В ящик {n}"},
    "desk": {"lv": "Lūdzu, nododiet to bibliotekāram", "en": "Please take it to the desk", "ru": "Пожалуйста, отнесите на абонемент"},
    "staff": {"lv": "Darbinieki to pārbaudīs", "en": "Staff will check it", "ru": "Сотрудники проверят"},
    "closed": {"lv": "Grāmatu nodošana slēgta", "en": "Book drop closed", "ru": "Приём книг закрыт"},
    "closed_sub": {
        "lv": "Lūdzu, nododiet grāmatas bibliotēkā",
        "en": "Please return items inside the library",
        "ru": "Пожалуйста, сдайте книги в библиотеке",
    },
    "reader_down": {"lv": "RFID lasītājs nedarbojas", "en": "RFID reader not working", "ru": "Считыватель RFID не работает"},
    "offline": {"lv": "Bibliotēkas sistēma nav pieejama: nodošana tiek reģistrēta vēlāk", "en": "Library system offline: returns are recorded later", "ru": "Система библиотеки недоступна: возвраты учитываются позже"},
}

REASONS: dict[ReturnOutcome, dict[str, str]] = {
    ReturnOutcome.UNREADABLE_TAG: {"lv": "Birku nevar nolasīt", "en": "The tag cannot be read", "ru": "Метку не удаётся прочитать"},
    ReturnOutcome.UNKNOWN_ITEM: {"lv": "Nezināms eksemplārs", "en": "Unknown item", "ru": "Неизвестный экземпляр"},
    ReturnOutcome.OTHER_LIBRARY: {"lv": "Citas bibliotēkas eksemplārs", "en": "Belongs to another library", "ru": "Из другой библиотеки"},
    ReturnOutcome.SET_INCOMPLETE: {"lv": "Komplekts nav pilnīgs", "en": "The set is incomplete", "ru": "Комплект неполный"},
    ReturnOutcome.NOT_ON_LOAN: {"lv": "Eksemplārs nav izsniegts", "en": "The item was not on loan", "ru": "Экземпляр не выдавался"},
    ReturnOutcome.REFUSED: {"lv": "Bibliotēkas sistēma atteica", "en": "Refused by the library system", "ru": "Отклонено системой библиотеки"},
    ReturnOutcome.LINK_DOWN: {"lv": "Bibliotēkas sistēma nav pieejama", "en": "The library system is unavailable", "ru": "Система библиотеки недоступна"},
    ReturnOutcome.SECURITY_FAILED: {"lv": "Drošības atzīmi nevar ierakstīt", "en": "The security mark could not be set", "ru": "Не удалось включить защиту"},
    ReturnOutcome.SORTER_FAILED: {"lv": "Šķirotājs nedarbojas", "en": "The sorter is not working", "ru": "Сортировщик не работает"},
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
    if item.instruction in (Instruction.OTHER_BRANCH, Instruction.TRANSIT, Instruction.SPECIAL) and has_sorter:
        return "bin", KIND_NOTE, None
    if item.instruction in (Instruction.TAKE_TO_DESK, Instruction.PLACE_ALL_PARTS, Instruction.SPECIAL):
        return "desk", KIND_STOP, None
    return ("returned_offline" if item.final is FinalState.QUEUED_OFFLINE_SECURED else "returned"), KIND_OK, None


def screen_for(state: BookDropState | None, in_service: bool = True) -> str:
    """Which book-drop screen to show: closed when out of service or when the reader is down."""
    if not in_service or (state is not None and Component.READER in state.outages):
        return CLOSED
    return BOOKDROP


class BookDropScreen(KioskScreen):
    """Attract, busy, or the last item's result, with an offline note when the library system is down."""

    mode = StringProperty("attract")  # attract, busy, result
    kind = StringProperty(KIND_OK)
    symbol = StringProperty("")
    lines = ListProperty([])  # the headline in each language, Latvian first
    reason_lines = ListProperty([])
    bin_text = StringProperty("")
    title_text = StringProperty("")
    note = StringProperty("")
    sequence = NumericProperty(0)
    offline = BooleanProperty(False)
    panel = ListProperty([1, 1, 1, 1])  # the background
    ink = ListProperty([0, 0, 0, 1])  # text on it: dark on light colours, white on dark ones

    def on_kv_post(self, base_widget: Any) -> None:
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

    def _render(self, state: BookDropState | None) -> None:
        app = _app()
        cfg = app.cfg
        langs = languages(cfg)
        has_sorter = cfg.sorter.url not in ("", "none")
        self.offline = bool(state and Component.LIBRARY_SYSTEM in state.outages)
        self.note = "  ·  ".join(texts(TEXTS["offline"], langs[:2])) if self.offline else ""
        last = state.last if state else None
        if state is not None and state.busy:
            self.mode, self.kind, self.symbol = "busy", KIND_OK, "…"
            self.lines, self.reason_lines, self.bin_text, self.title_text = texts(TEXTS["busy"], langs), [], "", ""
            return
        if last is None:
            self.mode, self.kind, self.symbol = "attract", KIND_OK, "⬇"
            self.lines = texts(TEXTS["attract"], langs)
            self.reason_lines = texts(TEXTS["attract_sub"], langs)
            self.bin_text = self.title_text = ""
            return
        key, kind, reason = describe(last, has_sorter)
        self.mode, self.kind, self.sequence = "result", kind, last.sequence
        self.symbol = {KIND_OK: "✔", KIND_NOTE: "➜", KIND_STOP: "✘"}[kind]
        self.lines = texts(TEXTS[key], langs, n=last.bin)
        self.reason_lines = texts(REASONS[reason], langs) if reason in REASONS else []
        # The bin is for staff emptying the drop; shown whenever a sorter decides it.
        self.bin_text = f"#{last.bin}" if has_sorter else ""
        self.title_text = last.title or last.item_id


class BookDropClosedScreen(KioskScreen):
    lines = ListProperty([])
    sub_lines = ListProperty([])
    detail = StringProperty("")

    def on_kv_post(self, base_widget: Any) -> None:
        self.show(None)

    def show(self, state: BookDropState | None) -> None:
        app = _app()
        langs = languages(app.cfg)
        self.lines = texts(TEXTS["closed"], langs)
        self.sub_lines = texts(TEXTS["closed_sub"], langs)
        faults = list(getattr(getattr(app, "services", None), "faults", None) or [])
        if state is not None and Component.READER in state.outages:
            faults.append("  ·  ".join(texts(TEXTS["reader_down"], langs[:2])))
        self.detail = "; ".join(faults)


def _factory(cls: type[KioskScreen]) -> Any:
    def build(_app_obj: Any) -> KioskScreen:
        from kiosk.screens.widgets import load_kv

        load_kv("widgets.kv", "bookdrop.kv")
        return cls()

    return build


register_screen(BOOKDROP, _factory(BookDropScreen))
register_screen(CLOSED, _factory(BookDropClosedScreen))
