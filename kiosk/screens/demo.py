"""The demo panel beside the kiosk screen (embedded default only, `[ui] demo_panel`): present the
demo patrons' cards, type at the scanner, and place or lift demo items on the simulated pad, so a
whole visit can be tried with a mouse. It drives the same simulated devices as a real visit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from kivy.app import App
from kivy.graphics import Color, Rectangle
from kivy.properties import BooleanProperty, ObjectProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.label import Label
from kivy.uix.togglebutton import ToggleButton

from kiosk import demo_catalog
from kiosk.core.events import CardSource
from kiosk.screens.widgets import KScroll

log = logging.getLogger(__name__)

PANEL_FONT = 15  # the panel is for the person trying the demo, not for patrons: compact


class DemoPanel(BoxLayout):
    """Cards, scanner and items of the demo library; `pad` is the shared simulated pad.

    The simulated reader's tags come through `make_tag(item_id, part, parts, secured=..., **afi)`
    and `tag_uid(item_id, part)`, handed in by the app, so the screens never import devices."""

    pad = ObjectProperty(None, allownone=True)
    typing = BooleanProperty(False)  # keys typed on the computer go to the simulated scanner
    typed = StringProperty("")

    def __init__(
        self,
        pad: Any = None,
        cfg: Any = None,
        *,
        make_tag: Callable[..., Any] | None = None,
        tag_uid: Callable[[str, int], str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(orientation="vertical", padding=6, spacing=4, **kwargs)
        self.pad = pad
        self.cfg = cfg
        self._make_tag = make_tag
        self._tag_uid = tag_uid
        self.part_buttons: dict[tuple[str, int], ToggleButton] = {}
        with self.canvas.before:
            Color(0.18, 0.2, 0.24, 1)
            self._bg = Rectangle(pos=self.pos, size=self.size)
        self.bind(
            pos=lambda *_: setattr(self._bg, "pos", self.pos),
            size=lambda *_: setattr(self._bg, "size", self.size),
        )

        content = BoxLayout(orientation="vertical", size_hint_y=None, spacing=4)
        content.bind(minimum_height=content.setter("height"))
        scroll = KScroll(do_scroll_x=False)
        scroll.add_widget(content)

        content.add_widget(self._heading("Demo: patron cards"))
        for patron in demo_catalog.PATRONS:
            note = f" ({patron.note})" if patron.note else ""
            button = self._button(f"{patron.patron_id} {patron.name}{note}")
            button.card = patron.patron_id
            button.bind(on_release=lambda b: self.present_card(b.card))
            content.add_widget(button)

        content.add_widget(self._heading("Demo: hand scanner"))
        row = BoxLayout(size_hint_y=None, height=48, spacing=4)
        # Not a TextInput: the kiosk has no text fields (and Kivy's would look for X clipboard tools).
        self.typing_toggle = ToggleButton(text="Type", font_size=PANEL_FONT, size_hint_x=0.3)
        self.typing_toggle.bind(state=lambda _b, state: setattr(self, "typing", state == "down"))
        self.field = Label(
            text="", font_size=PANEL_FONT, halign="left", valign="middle", color=(1, 1, 1, 1)
        )
        self.field.bind(size=lambda w, *_: setattr(w, "text_size", w.size))
        send = self._button("Scan")
        send.size_hint_x = 0.3
        send.bind(on_release=lambda *_: self.send_scan())
        row.add_widget(self.typing_toggle)
        row.add_widget(self.field)
        row.add_widget(send)
        content.add_widget(row)
        self.bind(typed=self._show_typed, typing=self._show_typed)
        self._show_typed()

        content.add_widget(self._heading("Demo: items on the pad"))
        if pad is None:
            content.add_widget(self._label("The reader is not simulated."))
        for item in demo_catalog.ITEMS:
            content.add_widget(
                self._label(
                    f"{item.item_id} {item.title}" + (f" - {item.note}" if item.note else "")
                )
            )
            parts = BoxLayout(size_hint_y=None, height=48, spacing=4)
            for part in range(1, item.parts_in_set + 1):
                label = "on pad" if item.parts_in_set == 1 else f"part {part}/{item.parts_in_set}"
                toggle = ToggleButton(text=label, font_size=PANEL_FONT, disabled=pad is None)
                toggle.item = item.item_id
                toggle.part = part
                toggle.parts = item.parts_in_set
                toggle.bind(state=self._toggle_item)
                self.part_buttons[(item.item_id, part)] = toggle
                parts.add_widget(toggle)
            content.add_widget(parts)
        clear = self._button("Lift everything off the pad")
        clear.bind(on_release=lambda *_: self.clear_pad())
        content.add_widget(clear)
        self.add_widget(scroll)

    # -- building blocks --------------------------------------------------------------------

    @staticmethod
    def _heading(text: str) -> Label:
        label = Label(
            text=text,
            bold=True,
            font_size=PANEL_FONT + 2,
            size_hint_y=None,
            height=36,
            halign="left",
            valign="middle",
            color=(1, 1, 0.7, 1),
        )
        label.bind(size=lambda w, *_: setattr(w, "text_size", w.size))
        return label

    @staticmethod
    def _label(text: str) -> Label:
        label = Label(
            text=text, font_size=PANEL_FONT, size_hint_y=None, halign="left", valign="middle"
        )
        label.bind(width=lambda w, *_: setattr(w, "text_size", (w.width, None)))
        label.bind(texture_size=lambda w, *_: setattr(w, "height", w.texture_size[1] + 4))
        return label

    @staticmethod
    def _button(text: str) -> Button:
        button = Button(
            text=text,
            font_size=PANEL_FONT,
            size_hint_y=None,
            height=48,
            halign="center",
            valign="middle",
        )
        button.bind(width=lambda w, *_: setattr(w, "text_size", (w.width - 8, None)))
        return button

    # -- actions ----------------------------------------------------------------------------

    def present_card(self, card_number: str) -> None:
        """As if the patron held the card to the contactless reader (the simulated card source)."""
        app = App.get_running_app()
        source = getattr(app.services, "card_sim", None)
        if source is not None:
            source.present(card_number)
        else:
            app.present_card(card_number, CardSource.SIMULATED)

    def _show_typed(self, *_: Any) -> None:
        self.field.text = self.typed or (
            "type, then Enter" if self.typing else "item or card number"
        )
        self.field.color = (1, 1, 1, 1) if self.typed else (0.7, 0.7, 0.7, 1)

    def type_text(self, text: str) -> None:
        self.typed += text

    def backspace(self) -> None:
        self.typed = self.typed[:-1]

    def send_scan(self, text: str | None = None) -> None:
        """As if the hand scanner read `text` (a card on the welcome screen, else an item)."""
        app = App.get_running_app()
        value = (text if text is not None else self.typed).strip()
        self.typed = ""
        if not value:
            return
        if app.state is not None and app.state.stage.value == "welcome" and app.local != "returns":
            app.present_card(value, CardSource.BARCODE)
        else:
            app.scan(value)

    def place(self, item_id: str, part: int = 1, parts: int = 1) -> None:
        toggle = self.part_buttons.get((item_id, part))
        if toggle is not None:
            toggle.state = "down"
        else:
            self._place(item_id, part, parts)

    def remove(self, item_id: str, part: int = 1) -> None:
        toggle = self.part_buttons.get((item_id, part))
        if toggle is not None:
            toggle.state = "normal"

    def clear_pad(self) -> None:
        for toggle in self.part_buttons.values():
            toggle.state = "normal"
        if self.pad is not None:
            self.pad.clear()

    def _toggle_item(self, toggle: ToggleButton, state: str) -> None:
        if state == "down":
            self._place(toggle.item, toggle.part, toggle.parts)
        elif self.pad is not None and self._tag_uid is not None:
            self.pad.remove(self._tag_uid(toggle.item, toggle.part))

    def _place(self, item_id: str, part: int, parts: int) -> None:
        if self.pad is None or self._make_tag is None:
            return
        security = self.cfg.security if self.cfg is not None else None
        kwargs = (
            {"afi_secured": security.afi_secured, "afi_unsecured": security.afi_unsecured}
            if security
            else {}
        )
        item = demo_catalog.item(item_id)
        on_loan = bool(item and item.on_loan_to)
        self.pad.place(self._make_tag(item_id, part, parts, secured=not on_loan, **kwargs))
