"""The keypad focus navigator on a widget tree of its own: reading order, skipping what cannot be
used, the ring drawn where the focus is, activation, digits on a PIN pad that are never spoken."""

from __future__ import annotations

from typing import Any

import pytest

from kiosk.config import KeypadSection
from kiosk.screens.focus import FocusNavigator, KeyMap, describe, focusables
from kiosk.speech.keys import KEYCODES
from tests.ui.pilot import exported_pixel, pump

UP, DOWN, ENTER, HELP, ERASE = (KEYCODES[k] for k in ("up", "down", "enter", "f1", "backspace"))


@pytest.fixture
def tree():
    """Two rows of buttons (the second row's right button first in the tree), a hidden and a
    disabled button, a toggle, and a masked PIN pad."""
    from kivy.core.window import Window
    from kivy.properties import BooleanProperty, StringProperty
    from kivy.uix.boxlayout import BoxLayout
    from kivy.uix.button import Button
    from kivy.uix.gridlayout import GridLayout
    from kivy.uix.togglebutton import ToggleButton

    class PinPad(GridLayout):
        """A masked PIN pad as the screens build it (keys carry `key`), without their kv rules."""

        masked = BooleanProperty(False)
        text = StringProperty("")

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            for key in ("1", "2", "3", "4", "5", "6", "7", "8", "9", "CLEAR", "0", "BACKSPACE"):
                button = Button(
                    text={"CLEAR": "[font=DejaVuSans]✘[/font]", "BACKSPACE": "⌫"}.get(key, key),
                    markup=True,
                )
                button.key = key
                button.bind(on_release=lambda b: self.press(b.key))
                self.add_widget(button)

        def press(self, key: str) -> None:
            self.text = (
                self.text[:-1] if key == "BACKSPACE" else "" if key == "CLEAR" else self.text + key
            )

    root = BoxLayout(orientation="vertical", size=Window.size)
    top = BoxLayout()
    top.add_widget(Button(text="[b]Borrow[/b]", markup=True))
    top.add_widget(Button(text="Hidden", opacity=0))
    top.add_widget(Button(text="Disabled", disabled=True))
    row = BoxLayout()
    right = Button(text="Right")
    row.add_widget(Button(text="Left"))
    row.add_widget(right)
    toggle = ToggleButton(text="Large text")
    pad = PinPad(masked=True, cols=3)
    root.add_widget(top)
    root.add_widget(row)
    root.add_widget(toggle)
    root.add_widget(pad)
    Window.add_widget(root)
    pump(3)
    yield {"root": root, "pad": pad, "toggle": toggle, "right": right}
    Window.remove_widget(root)
    pump(1)


def _navigator(root: Any, spoken: list[str], actions: list[str]) -> FocusNavigator:
    def on_action(name: str) -> bool:
        actions.append(name)
        return True

    return FocusNavigator(
        KeyMap.from_section(KeypadSection()),
        lambda: [root],
        speak=spoken.append,
        lang=lambda: "en",
        on_action=on_action,
    )


def test_reading_order_skips_hidden_and_disabled(tree: dict[str, Any]) -> None:
    labels = [describe(w, "en") for w in focusables([tree["root"]])]
    assert labels[:4] == [
        "Borrow, button",
        "Left, button",
        "Right, button",
        "Large text, button, not selected",
    ]
    assert "Hidden, button" not in labels
    assert "Disabled, button" not in labels
    # the PIN pad's digit keys never say their digit; its control keys say what they do
    assert labels[4:] == ["digit key"] * 9 + [
        "clear all, button",
        "digit key",
        "delete last, button",
    ]


def test_focus_order_attribute_comes_first(tree: dict[str, Any]) -> None:
    tree["right"].focus_order = 1
    assert describe(focusables([tree["root"]])[0], "en") == "Right, button"


def test_up_down_enter_and_the_ring(tree: dict[str, Any]) -> None:
    spoken: list[str] = []
    actions: list[str] = []
    nav = _navigator(tree["root"], spoken, actions)
    assert not nav.handle_key(KEYCODES["a"])  # not a keypad key: left to the screen
    assert nav.handle_key(DOWN)  # the first key focuses the first item
    assert spoken == ["Borrow, button"]
    assert nav.ring.widget is nav.focused
    for _ in range(3):
        nav.handle_key(DOWN)
    assert spoken[-1] == "Large text, button, not selected"
    assert nav.handle_key(ENTER)
    assert tree["toggle"].state == "down"
    nav.handle_key(UP)
    nav.handle_key(DOWN)
    assert spoken[-1] == "Large text, button, selected"
    nav.handle_key(UP)
    nav.handle_key(UP)
    nav.handle_key(UP)
    nav.handle_key(UP)
    assert spoken[-1] == "top of list"
    # The ring: a black outline and the focus colour, as wide as configured, around the widget.
    focused = nav.focused
    assert focused is not None
    assert nav.ring.widget is focused
    x, y, w, h = nav.ring.rect
    assert exported_pixel(tree["root"], focused.x + 3, focused.center_y) == (
        255,
        212,
        0,
    )  # drawn, in the focus colour
    assert exported_pixel(tree["root"], focused.center_x, focused.center_y) != (
        255,
        212,
        0,
    )  # a ring, not a fill
    assert nav.ring._line.width == 6.0
    assert nav.ring._outline.width == 9.0
    assert abs(x - (focused.x + 3)) < 1e-6
    assert abs(w - (focused.width - 6)) < 1e-6
    assert nav.ring._group in focused.canvas.after.children
    nav.handle_key(HELP)
    assert actions.count("key") == 12
    assert actions[-1] == "help"
    nav.deactivate()
    assert nav.ring.widget is None
    assert nav.ring._group not in focused.canvas.after.children


def test_end_of_list_is_said(tree: dict[str, Any]) -> None:
    spoken: list[str] = []
    nav = _navigator(tree["root"], spoken, [])
    for _ in range(20):
        nav.handle_key(DOWN)
    assert spoken[-1] == "end of list"
    assert describe(nav.focused, "en") == "delete last, button"


def test_digits_type_on_the_pin_pad_and_erase_deletes(tree: dict[str, Any]) -> None:
    spoken: list[str] = []
    nav = _navigator(tree["root"], spoken, [])
    for key in ("numpad4", "numpad7", "numpad1", "numpad1"):
        assert nav.handle_key(KEYCODES[key])
    assert not nav.handle_key(KEYCODES["5"])  # the main row is the scanners': not the keypad's
    assert tree["pad"].text == "4711"
    nav.handle_key(ERASE)
    assert tree["pad"].text == "471"
    assert spoken == []  # the navigator itself says nothing about digits


def test_a_screen_without_actions(tree: dict[str, Any]) -> None:
    from kivy.uix.label import Label

    spoken: list[str] = []
    nav = FocusNavigator(
        KeyMap.from_section(KeypadSection()), lambda: [Label(text="x")], speak=spoken.append
    )
    nav.handle_key(DOWN)
    nav.handle_key(ENTER)
    assert spoken == ["nothing to choose here", "nothing to choose here"]
    assert not nav.type_digit("5")


def test_languages_of_the_announcements(tree: dict[str, Any]) -> None:
    toggle = tree["toggle"]
    assert describe(toggle, "lv") == "Large text, poga, nav izvēlēts"
    assert describe(toggle, "ru") == "Large text, кнопка, не выбрано"
