"""Keypad operation of any screen, in the spirit of EZ Access: up and down move a focus through the
screen's actions in reading order, enter activates, digits type on the screen's keypad, and a thick
high-contrast ring shows where the focus is (docs/accessibility.md).

The navigator knows nothing about particular screens: it walks the widget tree it is given and
takes every visible, enabled button. A widget can steer it with attributes: `focus_order` (lower
first), `focus_skip` (never focused), `speech_label` (what is said instead of its text).
Everything the app decides (back, help, speech on/off, volume) goes through `on_action`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from kivy.graphics import Color, InstructionGroup, Line
from kivy.uix.behaviors import ButtonBehavior, ToggleButtonBehavior
from kivy.uix.scrollview import ScrollView
from kivy.uix.widget import Widget

from kiosk.screens.texts import as_read
from kiosk.speech.keys import ACTIONS, DIGIT_KEYS, KEYCODES

log = logging.getLogger(__name__)

# Words of the announcements, per language. Keypad control keys are named by what they do.
WORDS: dict[str, dict[str, str]] = {
    "button": {"en": "button", "lv": "poga", "ru": "кнопка"},
    "selected": {"en": "selected", "lv": "izvēlēts", "ru": "выбрано"},
    "not selected": {"en": "not selected", "lv": "nav izvēlēts", "ru": "не выбрано"},
    "digit key": {"en": "digit key", "lv": "cipara taustiņš", "ru": "клавиша цифры"},
    "BACKSPACE": {"en": "delete last", "lv": "dzēst pēdējo", "ru": "удалить последнюю"},
    "CLEAR": {"en": "clear all", "lv": "notīrīt visu", "ru": "очистить всё"},
    "end of list": {"en": "end of list", "lv": "saraksta beigas", "ru": "конец списка"},
    "top of list": {"en": "top of list", "lv": "saraksta sākums", "ru": "начало списка"},
    "nothing to choose": {
        "en": "nothing to choose here",
        "lv": "šeit nav ko izvēlēties",
        "ru": "здесь нечего выбрать",
    },
}


def word(key: str, lang: str) -> str:
    return WORDS[key].get(lang, WORDS[key]["en"])


@dataclass(frozen=True)
class KeyMap:
    """Key code -> action name (kiosk.speech.keys.ACTIONS), from the `[keypad]` section."""

    actions: dict[int, str]

    @classmethod
    def from_section(cls, section: Any) -> KeyMap:
        actions: dict[int, str] = {}
        for action in ACTIONS:
            for name in getattr(section, action):
                actions[KEYCODES[name]] = action
        return cls(actions)

    def action(self, keycode: int) -> str | None:
        return self.actions.get(keycode)


def _visible(widget: Widget) -> bool:
    w: Any = widget
    while w is not None and isinstance(w, Widget):
        if w.opacity <= 0 or getattr(w, "disabled", False):
            return False
        w = w.parent
    return widget.width >= 1 and widget.height >= 1 and widget.get_root_window() is not None


def focusables(roots: Iterable[Widget]) -> list[Widget]:
    """The buttons under `roots` that a patron can use: each root's in reading order (or by
    `focus_order`), the first root's first (the screen before the top bar)."""

    def key(w: Widget) -> tuple[float, float, float]:
        x, top = w.to_window(w.x, w.top)
        row = round(-top / 24)  # widgets whose tops are within a few pixels read as one row
        return (getattr(w, "focus_order", 100), row, x)

    found: list[Widget] = []
    for root in roots:
        mine = [
            child
            for child in root.walk(restrict=True)
            if isinstance(child, ButtonBehavior)
            and not getattr(child, "focus_skip", False)
            and child not in found
            and _visible(child)
        ]
        found += sorted(mine, key=key)
    return found


def label_of(widget: Widget, lang: str) -> str:
    """What a widget is called when focused: `speech_label`, a keypad key's meaning, or its text."""
    spoken = getattr(widget, "speech_label", "")
    if spoken:
        return str(spoken)
    key = getattr(widget, "key", "")
    if key in WORDS:
        return word(key, lang)
    return " ".join(as_read(str(getattr(widget, "text", ""))).split())


def _in_masked_pad(widget: Widget) -> bool:
    parent = widget.parent
    return bool(getattr(parent, "masked", False))


def describe(widget: Widget, lang: str) -> str:
    """ "Label, role, state" as EZ Access reads an item; keys of a PIN pad never say their digit."""
    if _in_masked_pad(widget) and str(getattr(widget, "key", "")).isdigit():
        return word("digit key", lang)
    parts = [label_of(widget, lang), word("button", lang)]
    if isinstance(widget, ToggleButtonBehavior):
        parts.append(word("selected" if widget.state == "down" else "not selected", lang))
    return ", ".join(p for p in parts if p)


class FocusRing:
    """A thick ring in the focus colour over a black outline, drawn on a widget's canvas.after."""

    def __init__(
        self, width: float = 6.0, color: tuple[float, float, float, float] = (1.0, 0.83, 0.0, 1.0)
    ) -> None:
        self.width = width
        self.color = color
        self.widget: Widget | None = None
        self.rect: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
        self._group: Any = None  # built on first use: graphics need the window's GL context

    def _build(self) -> None:
        self._group = InstructionGroup()
        self._outline = Line(width=self.width + 3)
        self._line = Line(width=self.width)
        self._group.add(Color(0, 0, 0, 1))
        self._group.add(self._outline)
        self._group.add(Color(*self.color))
        self._group.add(self._line)

    def attach(self, widget: Widget | None) -> None:
        if widget is self.widget:
            return
        self.detach()
        if widget is None:
            return
        if self._group is None:
            self._build()
        self.widget = widget
        widget.canvas.after.add(self._group)
        widget.bind(pos=self._place, size=self._place)
        self._place()

    def detach(self) -> None:
        if self.widget is not None:
            self.widget.unbind(pos=self._place, size=self._place)
            self.widget.canvas.after.remove(self._group)
            self.widget = None

    def _place(self, *_args: Any) -> None:
        w = self.widget
        if w is None:
            return
        inset = self.width / 2
        rect = (
            w.x + inset,
            w.y + inset,
            max(1.0, w.width - 2 * inset),
            max(1.0, w.height - 2 * inset),
        )
        self.rect = rect
        self._line.rectangle = rect
        self._outline.rectangle = rect


def _rgba(hex_color: str) -> tuple[float, float, float, float]:
    value = hex_color.lstrip("#")
    r, g, b = (int(value[i : i + 2], 16) / 255 for i in (0, 2, 4))
    return (r, g, b, 1.0)


class FocusNavigator:
    """Moves a focus through the widgets under `roots()` on key presses.

    `speak(text)` says an announcement; `lang()` names the language; `on_action(name)` gets every
    action the navigator does not do itself (back, help, speech, repeat, louder, quieter, faster,
    slower) and any key at all as "key" first, so the app can note activity and switch speech on.
    """

    def __init__(
        self,
        keymap: KeyMap,
        roots: Callable[[], list[Widget]],
        *,
        speak: Callable[[str], None] | None = None,
        lang: Callable[[], str] = lambda: "en",
        on_action: Callable[[str], bool] | None = None,
        ring_width: float = 6.0,
        ring_color: str = "#FFD400",
    ) -> None:
        self.keymap = keymap
        self.roots = roots
        self.speak = speak or (lambda _text: None)
        self.lang = lang
        self.on_action = on_action or (lambda _name: False)
        self.ring = FocusRing(ring_width, _rgba(ring_color))
        self.items: list[Widget] = []
        self.index = -1
        self.active = False  # the patron has used the keypad in this visit

    @property
    def focused(self) -> Widget | None:
        return self.items[self.index] if 0 <= self.index < len(self.items) else None

    # -- keys --------------------------------------------------------------------------------

    def handle_key(self, keycode: int) -> bool:
        """One key press; True when it was a keypad key (and so is consumed)."""
        action = self.keymap.action(keycode)
        digit = DIGIT_KEYS.get(keycode) if action is None else None
        if action is None and digit is None:
            return False
        first = not self.active
        self.active = True
        self.on_action("key")
        if digit is not None:
            return self.type_digit(digit)
        if action in ("up", "down"):
            if first or self.focused is None:
                self.refresh(announce=False)
                self._focus(max(self.index, 0))
            else:
                self.move(-1 if action == "up" else 1)
        elif action == "enter":
            self.activate()
        elif action == "erase":
            self._press_key("BACKSPACE")
        else:
            self.on_action(str(action))
        return True

    def type_digit(self, digit: str) -> bool:
        """A digit key types on the screen's own keypad (the PIN or card pad), if it has one."""
        return self._press_key(digit)

    def _press_key(self, key: str) -> bool:
        for widget in self._collect():
            if getattr(widget, "key", None) == key:
                widget.trigger_action(duration=0)
                return True
        return False

    # -- focus -------------------------------------------------------------------------------

    def _collect(self) -> list[Widget]:
        try:
            return focusables(self.roots())
        except Exception:  # a screen half-built during a change must not break the keypad
            log.exception("focusable widgets could not be listed")
            return []

    def refresh(self, announce: bool = True) -> None:
        """Take the widgets of the screen now shown; the focus stays on the same widget if it is still there."""
        old = self.focused
        self.items = self._collect()
        if old is not None and old in self.items:
            self.index = self.items.index(old)
        else:
            self.index = 0 if self.items else -1
        if self.active:
            self.ring.attach(self.focused)
            self._scroll_to(self.focused)
            if announce and self.focused is not None:
                self.speak(describe(self.focused, self.lang()))

    def screen_changed(self) -> None:
        """A new screen: the focus starts at its first action (announced after the screen's purpose)."""
        self.index = -1
        self.ring.detach()
        self.items = self._collect()
        if self.active and self.items:
            self.index = 0
            self.ring.attach(self.focused)

    def move(self, step: int) -> None:
        """One step through the list; at either end the end is said and the focus stays."""
        current = self.focused
        self.items = self._collect()
        self.index = self.items.index(current) if current in self.items else -1
        if not self.items:
            self.speak(word("nothing to choose", self.lang()))
            return
        if self.index < 0:
            self._focus(0)
            return
        new = self.index + step
        if new >= len(self.items):
            self.speak(word("end of list", self.lang()))
        elif new < 0:
            self.speak(word("top of list", self.lang()))
        else:
            self._focus(new)

    def _focus(self, index: int) -> None:
        if not self.items:
            self.speak(word("nothing to choose", self.lang()))
            return
        self.index = max(0, min(index, len(self.items) - 1))
        widget = self.items[self.index]
        self.ring.attach(widget)
        self._scroll_to(widget)
        self.speak(describe(widget, self.lang()))

    def activate(self) -> bool:
        widget = self.focused
        if widget is None or not _visible(widget):
            self.refresh(announce=False)
            widget = self.focused
            if widget is None:
                self.speak(word("nothing to choose", self.lang()))
                return False
            self._focus(self.index)
            return False
        widget.trigger_action(duration=0)
        return True

    def deactivate(self) -> None:
        """End of the visit: no ring, no focus, keypad mode off until the next key."""
        self.ring.detach()
        self.items = []
        self.index = -1
        self.active = False

    @staticmethod
    def _scroll_to(widget: Widget | None) -> None:
        parent = widget.parent if widget is not None else None
        while parent is not None and isinstance(parent, Widget):
            if isinstance(parent, ScrollView):
                try:
                    parent.scroll_to(widget, padding=10, animate=False)
                except Exception:  # a widget not yet laid out inside the scroll view
                    log.debug("could not scroll to the focused widget", exc_info=True)
                return
            parent = parent.parent
