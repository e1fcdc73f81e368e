"""Shared widgets of the kiosk screens (themed buttons, labels, keypads, the item row); their look
is in widgets.kv, loaded once by `load_kv()`.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kivy.clock import Clock
from kivy.config import Config
from kivy.effects.dampedscroll import DampedScrollEffect
from kivy.graphics import (
    Callback,
    Color,
    InstructionGroup,
    Line,
    Rectangle,
    RoundedRectangle,
    ScissorPop,
    ScissorPush,
    StencilPop,
    StencilPush,
    StencilUnUse,
    StencilUse,
    Triangle,
)
from kivy.lang import Builder
from kivy.properties import (
    BooleanProperty,
    ColorProperty,
    ListProperty,
    NumericProperty,
    ObjectProperty,
    StringProperty,
)
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.gridlayout import GridLayout
from kivy.uix.label import Label
from kivy.uix.layout import Layout
from kivy.uix.relativelayout import RelativeLayout
from kivy.uix.screenmanager import ScreenManager
from kivy.uix.scrollview import ScrollView
from kivy.uix.widget import Widget

from kiosk.screens.texts import as_read, plain

log = logging.getLogger(__name__)

_KV_FILES = ("widgets.kv",)

# Control keys of the on-screen keypads; names that no card or PIN character can be.
BACKSPACE = "BACKSPACE"
CLEAR = "CLEAR"
DIGIT_KEYS = ("1", "2", "3", "4", "5", "6", "7", "8", "9", CLEAR, "0", BACKSPACE)
LETTER_KEYS = (*"ABCDEFGHIJKLMNOPQRSTUVWXYZ", CLEAR, BACKSPACE)
_loaded: set[str] = set()


def load_kv(*names: str) -> None:
    """Load kv files from this folder once each (loading twice would duplicate rules)."""
    for name in names or _KV_FILES:
        if name in _loaded:
            continue
        Builder.load_file(str(Path(__file__).with_name(name)))
        _loaded.add(name)


_FONT_TAG = re.compile(r"\[font=([^\]]+)\]")


# Bounded: every new word drawn (each item's title and number) would otherwise stay for the
# kiosk's life, a few objects a visit (docs/performance.md, memory); the screens' own words and
# sizes are a few hundred entries.
@functools.lru_cache(maxsize=4096)
def _extent(font_name: str, bold: bool, size: int, word: str) -> float:
    from kivy.core.text import Label as CoreLabel  # lazy: starts Kivy's text provider

    return float(CoreLabel(font_name=font_name, bold=bold, font_size=size).get_extents(word)[0])


def word_width(word: str, font_name: str, bold: bool, font_size: float) -> float:
    """The drawn width of one word (cached: labels are re-fitted on every resize)."""
    return _extent(font_name, bold, int(font_size), word)


def line_width(text: str, font_name: str, bold: bool, font_size: float) -> float:
    """The drawn width of a text on one line, markup left out (a symbol in another font is
    measured in this one: close enough for sizing a button around it)."""
    return word_width(as_read(text), font_name, bold, font_size)


class MarkupGuard:
    """A label that reads markup and draws whatever text reaches it. Text from outside is made
    plain where it is put on a screen (`kiosk.screens.texts.plain`); should a tag still reach a
    label and be one Kivy cannot draw (`[font=x]`, `[size=abc]`, `[size=99999999999]` raise in
    its renderer on the UI thread), the label says so in the log and shows the text as it is."""

    if TYPE_CHECKING:  # provided by the Label it is mixed into
        text: str
        _label: Any

        def _create_label(self) -> None: ...

    def texture_update(self, *largs: Any) -> None:
        try:
            super().texture_update(*largs)  # type: ignore[misc]  # the Label it is mixed into
        # Kivy's markup renderer raises these for a tag it cannot draw (a missing font, a size
        # that is no number or too big for the font engine).
        except (OSError, ValueError, OverflowError) as exc:
            shown = plain(self.text)
            if shown == self.text or self.text == getattr(self, "_made_plain", None):
                raise  # not the markup: a fault of the kiosk's own, with its traceback
            # The text itself stays out of the log: it may be a patron's name.
            log.warning(
                "a %s's text held markup it could not draw (%s); shown as plain text",
                type(self).__name__,
                type(exc).__name__,
            )
            # The failed tag left its style (the font it could not open) in Kivy's renderer:
            # a new one, with the label's own settings.
            self._label = None
            self._create_label()
            self._made_plain = self.text = shown


class GuardedLabel(MarkupGuard, Label):
    """A plain Kivy label with markup guarded (the technician's screens' labels)."""


class FitText(MarkupGuard):
    """Text that never breaks inside a word: the font shrinks (to `min_ratio` of `base_font`)
    until the longest word fits the width, so "Русский" or "Turpināt" stay whole in a narrow
    button or a portrait column. `base_font` is the theme's size; `font_size` is what is drawn."""

    if TYPE_CHECKING:  # provided by the Label it is mixed into
        fbind: Any
        padding: Any
        width: float
        height: float
        text: str
        font_name: str
        bold: bool
        font_size: float

    base_font = NumericProperty(24)
    min_ratio = NumericProperty(0.55)
    height_ratio = NumericProperty(0)  # > 0: the font is also at most this share of the height

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._fit_trigger = Clock.create_trigger(self.fit_text, -1)
        self.fbind("text", self._fit_trigger)
        self.fbind("width", self._fit_trigger)
        self.fbind("base_font", self._fit_trigger)
        self.fbind("font_name", self._fit_trigger)
        self.fbind("bold", self._fit_trigger)
        if self.height_ratio:
            self.fbind("height", self._fit_trigger)
        self.fbind("height_ratio", lambda *_: self.fbind("height", self._fit_trigger))

    def available_width(self) -> float:
        padding = (
            list(self.padding) if isinstance(self.padding, (list, tuple)) else [self.padding] * 4
        )
        sides = float(padding[0]) + float(padding[2] if len(padding) == 4 else padding[0])
        return float(self.width) - sides - (16 if isinstance(self, Button) else 0)

    def fit_text(self, *_: Any) -> None:
        base = float(self.base_font)
        size = base
        if self.height_ratio and self.height > 1:
            size = min(size, float(self.height) * float(self.height_ratio))
        avail = self.available_width()
        words = as_read(self.text).split()
        fonts = [
            self.font_name,
            *_FONT_TAG.findall(self.text or ""),
        ]  # a symbol font in markup draws wider
        if words and avail > 1:
            longest = max(word_width(w, f, self.bold, size) for w in words for f in fonts)
            if longest > avail:
                size = size * avail / longest * 0.97
        self.font_size = max(size, base * float(self.min_ratio))


class KLabel(FitText, Label):
    """Wrapping text in the theme's colour and size; `size_hint_y: None` grows with the text."""

    role = StringProperty("fg")  # fg, muted, ok, refused, warn_fg
    size_role = StringProperty("m")  # s, m, l, xl


class KButton(FitText, Button):
    """A touch target of at least 48 px; `kind` picks primary, secondary or danger colours."""

    kind = StringProperty("secondary")
    size_role = StringProperty("m")  # s, m, l
    min_height = NumericProperty(0)  # 0: the theme's primary height (app.theme.button_h)


class PadKey(FitText, Button):
    """A keypad key: sized by the grid cell (a KButton's own height would overlap its neighbours)."""

    key = StringProperty("")


class KeyPad(GridLayout):
    """An on-screen keypad writing into `text`; `masked` shows dots (for PINs); `on_submit` fires on OK."""

    text = StringProperty("")
    masked = BooleanProperty(False)
    max_length = NumericProperty(20)
    letters = BooleanProperty(False)
    keys = ListProperty([])
    ok_text = StringProperty("OK")
    rows_needed = NumericProperty(4)

    __events__ = ("on_submit",)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not self.keys:
            self.keys = list(DIGIT_KEYS)

    def on_keys(self, _instance: Any, keys: list[str]) -> None:
        self.clear_widgets()
        for key in keys:
            label = {
                BACKSPACE: "[font=DejaVuSans]⌫[/font]",
                CLEAR: "[font=DejaVuSans]✘[/font]",
            }.get(key, key)
            button = PadKey(text=label, key=key)
            button.bind(on_release=lambda b: self.press(b.key))
            self.add_widget(button)

    def press(self, key: str) -> None:
        if key == BACKSPACE:
            self.text = self.text[:-1]
        elif key == CLEAR:
            self.text = ""
        elif key == "OK":
            self.dispatch("on_submit", self.text)
        elif len(self.text) < self.max_length:
            self.text += key

    def on_submit(self, text: str) -> None:
        pass


def frame_s() -> float:
    """One frame at Kivy's frame rate (`graphics.maxfps`, 60 unless a site's Kivy configuration
    says otherwise; 0, no limit, is taken as 60)."""
    fps = Config.getint("graphics", "maxfps")
    return 1 / fps if fps > 0 else 1 / 60


class FrameScrollEffect(DampedScrollEffect):
    """Kivy's scroll effect (a fling's glide, the spring back from past an end), moved once a
    frame. Kivy's own asks for its next step with a zero-timeout trigger, which its default clock
    runs at the next frame but the interrupt clock the kiosk runs with (kiosk/runcli.py) runs at
    once: a spring-back then took tens of thousands of steps a second, each a few microseconds
    long, and kept 60 % of a core busy for seconds after every screen was shown (the side pane's
    content sits right of its left-hand bar, which Kivy's horizontal effect takes for content
    pulled past its end; docs/performance.md, "A scroll effect moved once a frame")."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.trigger_velocity_update = Clock.create_trigger(self.update_velocity, frame_s())


def fill_stencil(before: InstructionGroup, after: InstructionGroup) -> tuple[Rectangle, Rectangle]:
    """A stencil clip as Kivy's StencilView draws it: push, a box, use before the content;
    un-use, the box again, pop after it. Returns the two boxes, to be placed over the clip."""
    boxes = (Rectangle(), Rectangle())
    for instruction in (StencilPush(), boxes[0], StencilUse()):
        before.add(instruction)
    for instruction in (StencilUnUse(), boxes[1], StencilPop()):
        after.add(instruction)
    return boxes


def window_turned() -> bool:
    """Whether Kivy turns the window's drawing (its `rotation`): window coordinates are then
    not the framebuffer's pixels, which a scissor is given in."""
    from kivy.core.window import Window  # lazy: importing it opens Kivy's window

    return bool(Window.rotation % 360)


class BoxClip:
    """A widget's content clipped to the widget's box, by a scissor where one can stand.

    Kivy's clipping widgets (its ScreenManager, every StencilView) clip with the stencil buffer:
    the box drawn into the stencil before the content and again after it, and every pixel of
    the content tested against the stencil. Under Mesa's software renderer that made a frame
    dearer than any other part of it, and a Pi's GPU is short of the same fill rate
    (docs/performance.md, "A scissor for the screens"). A scissor clips the same box, and the
    renderer only leaves out what lies outside it.

    A scissor is given in the framebuffer's pixels, and those are the window's only while the
    window is drawn as it is: a window that Kivy turns (`graphics.rotation`) is clipped by the
    stencil, and so is an export to an image (Kivy draws it upside down into an image of its
    own), under `stencil_while()`. The scissor's box is taken from the widget's place in the
    window as each frame is drawn, so a relative layout that moves the widget's parents along
    cannot leave it behind.

    The widget hands its clip over with `take_over()` once Kivy's rules have been applied.
    """

    def __init__(self, widget: Widget) -> None:
        self.widget = widget
        self.before = InstructionGroup()
        self.after = InstructionGroup()
        self.on = False
        self.scissor: ScissorPush | None = None
        self._by_stencil = False
        self._boxes: tuple[Rectangle, ...] = ()

    def take_over(self) -> None:
        """Take Kivy's stencil out of the widget (its class rule, StencilView's or
        ScreenManager's, put push, box, use first in canvas.before and un-use, box, pop first
        in canvas.after) and put this clip's groups in its place; once."""
        canvas = self.widget.canvas
        if self.before in canvas.before.children:
            return
        for part, kinds in (
            (canvas.before, (StencilPush, Rectangle, StencilUse)),
            (canvas.after, (StencilUnUse, Rectangle, StencilPop)),
        ):
            # Kivy's rule puts its instructions first; a Rectangle takes its texture binding along.
            for instruction in [i for i in part.children[:4] if isinstance(i, kinds)]:
                part.remove(instruction)
        canvas.before.insert(0, self.before)
        canvas.after.insert(0, self.after)

    def set(self, on: bool) -> None:
        """Clip or stop clipping."""
        if on != self.on:
            self.on = on
            self._build()
        else:
            self.place()

    def _build(self) -> None:
        self.before.clear()
        self.after.clear()
        self.scissor, self._boxes = None, ()
        if not self.on:
            return
        if self._by_stencil or window_turned():
            self._boxes = fill_stencil(self.before, self.after)
        else:
            self.scissor = ScissorPush()
            self.before.add(Callback(self._place_scissor))
            self.before.add(self.scissor)
            self.after.add(ScissorPop())
        self.place()

    def place(self, *_: Any) -> None:
        """Follow the widget's box (bound to its pos and size)."""
        for box in self._boxes:
            box.pos, box.size = self.widget.pos, self.widget.size
        self._place_scissor()

    def _place_scissor(self, *_: Any) -> None:
        if self.scissor is None:
            return
        widget = self.widget
        x, y = widget.to_window(widget.x, widget.y)
        pos, size = (round(x), round(y)), (round(widget.width), round(widget.height))
        # Only a change is set: a set instruction asks for another frame.
        if tuple(self.scissor.pos) != pos or tuple(self.scissor.size) != size:
            self.scissor.pos, self.scissor.size = pos, size

    @contextmanager
    def stencil_while(self) -> Iterator[None]:
        """Clip by the stencil while the block runs (an export to an image)."""
        self._by_stencil = True
        self._build()
        try:
            yield
        finally:
            self._by_stencil = False
            self._build()


@contextmanager
def clipped_by_stencil(root: Widget) -> Iterator[None]:
    """Every clip under `root` by the stencil while the block runs: an export of `root` to an
    image, which Kivy draws upside down into a framebuffer of its own."""
    with ExitStack() as stack:
        for widget in root.walk(restrict=True):
            clip = getattr(widget, "clip", None)
            if isinstance(clip, BoxClip):
                stack.enter_context(clip.stencil_while())
        yield


class ClipScreenManager(ScreenManager):
    """The kiosk's screen manager: its screens are clipped to its box by a `BoxClip`, which keeps
    a screen's overflowing text off the bar above it without Kivy's stencil."""

    def __init__(self, **kwargs: Any) -> None:
        self.clip = BoxClip(self)
        super().__init__(**kwargs)

    def on_kv_post(self, base_widget: Any) -> None:
        # Kivy's rule for ScreenManager (its stencil) is applied by now.
        self.clip.take_over()
        self.clip.set(True)
        self.fbind("pos", self.clip.place)
        self.fbind("size", self.clip.place)


class KScroll(ScrollView):
    """A vertical scroll view whose content keeps clear of its scroll bar.

    Kivy draws the bar over the content and takes every touch in the bar's strip for the bar,
    so text under it is cut and a button under it loses its edge. The content is always
    narrower than the view by the bar's strip: reserving it only while the content is taller
    than the view would loop (narrower text can shrink its font and get shorter, which would
    widen it again). A bar on the left keeps the content on the right edge."""

    gap = NumericProperty(4)
    effect_cls = ObjectProperty(FrameScrollEffect, allownone=True)

    def __init__(self, **kwargs: Any) -> None:
        self._gutter_trigger = Clock.create_trigger(self._gutter, -1)
        self.clip = BoxClip(self)
        super().__init__(**kwargs)
        self.bind(
            width=self._gutter_trigger,
            bar_width=self._gutter_trigger,
            bar_pos_y=self._gutter_trigger,
        )

    def add_widget(self, widget: Any, *args: Any, **kwargs: Any) -> None:
        super().add_widget(widget, *args, **kwargs)
        self._gutter_trigger()

    def on_kv_post(self, base_widget: Any) -> None:
        # Kivy's rules are applied by now, StencilView's among them (a view built by another
        # widget's rule gets its own rules after its __init__).
        self._own_clip()

    def _own_clip(self) -> None:
        """Kivy's rule for a StencilView clips the content at every frame, which costs a fill of
        the whole view twice over in the stencil buffer (on the checkout screen at 1280x800 about
        1-2 ms of Mesa's frame for the list and as much for the side pane; docs/performance.md,
        "A stencil only while the content overflows"). Content that lies inside the view has
        nothing to clip: the view takes the clip over and clips only while the content reaches
        past the view (taller than it, scrolled, or pulled past its end), by a scissor where one
        can stand (`BoxClip`)."""
        self.clip.take_over()
        self._update_clip()

    @property
    def clipping(self) -> bool:
        """Whether the content is clipped to the view now."""
        return self.clip.on

    def update_from_scroll(self, *largs: Any) -> None:
        # Where Kivy places the content (its translation), after every change of size, position
        # or scroll: the one place that knows whether the content reaches past the view.
        super().update_from_scroll(*largs)
        self._update_clip()

    def _update_clip(self) -> None:
        content = self._viewport
        x, y = self.g_translate.xy
        outside = content is not None and (
            x < self.x - 0.5
            or y < self.y - 0.5
            or x + content.width > self.right + 0.5
            or y + content.height > self.top + 0.5
        )
        self.clip.set(outside)

    def _bind_inactive_bar_color(self, *_: Any) -> None:
        """Half a second after a scroll (or a change of the content's size), Kivy fades the bar
        to its inactive colour with a 0.5 s animation, which redraws the whole window every frame
        even while the content fits and no bar is drawn: about 16 frames after the first row of
        a visit, each a whole frame of Mesa's drawing that a tag placed meanwhile waits behind
        (docs/performance.md, "frame drawn"). The bar takes its inactive colour in one step."""
        self.funbind("bar_color", self._change_bar_color)
        self.fbind("bar_inactive_color", self._change_bar_color)
        self._bar_color = self.bar_inactive_color

    def _gutter(self, *_: Any) -> None:
        content = self._viewport
        if content is None:
            return
        bar = "bars" in self.scroll_type and self.bar_width > 0
        wanted = max(1.0, self.width - self.bar_width - self.gap) if bar else None
        self.scroll_x = 1 if self.bar_pos_y == "left" else 0
        if content.size_hint_max_x != wanted:
            content.size_hint_max_x = wanted
            self._trigger_update_from_scroll()  # the view sizes its content only on its own changes


class ItemRow(RelativeLayout):
    """One item on the checkout, account or return list: title, id and its status text.

    A relative layout: the list moves every row each time it grows or scrolls, and a row laid
    out in the window's coordinates laid itself and its text column out again at each move
    (about twelve layout passes a row when the 50th item came; docs/performance.md). Here a
    move only shifts the row's drawing."""

    title = StringProperty("")
    item_id = StringProperty("")
    status = StringProperty("")
    state_name = StringProperty("pending")  # pending, ok, refused, info
    action_text = StringProperty("")
    action = ObjectProperty(None, allownone=True)

    action_button: KButton | None = None

    def on_kv_post(self, base_widget: Any) -> None:
        if self.action_text and self.action_button is None:
            self.on_action_text(self, self.action_text)

    def on_action_text(self, _instance: Any, text: str) -> None:
        # The button exists only when there is something to do, so a row never shows an empty one.
        body = self.ids.get("body")
        if body is None:
            return  # set before the kv rule built the row: on_kv_post adds it
        button = getattr(self, "action_button", None)
        if text and button is None:
            button = KButton(text=text, size_hint_x=None, kind="secondary")
            button.bind(texture_size=lambda b, *_: setattr(b, "width", max(b.height * 2.2, 150)))
            button.pos_hint = {"center_y": 0.5}
            button.bind(on_release=self.on_action_press)
            self.action_button = button
            body.add_widget(button)
        elif button is not None:
            if text:
                button.text = text
            else:
                body.remove_widget(button)
                self.action_button = None

    def on_action_press(self, *_: Any) -> None:
        if self.action is not None:
            self.action(self.item_id)


def lay_out_now(widget: Widget, box: Widget) -> None:
    """Lay a widget just built for a vertical list `box` out at the width the list will give
    it, and fit its texts, now.

    Left to the frame's triggers, a new row's labels rendered their text at Kivy's default
    width of 100 px, again at the font their fit chose, and again at the width the list's
    layout gave them: three renders of each text in the frame that shows the row, where one
    will do (docs/performance.md, "A row's texts rendered once"). Laid out top down here,
    each label's width and font are final before its texture is first made. Anything else
    (a widget of a fixed width, another kind of box) is left to the triggers."""
    if widget.size_hint_x is None or not isinstance(box, BoxLayout):
        return
    if box.orientation != "vertical":
        return
    left, _top, right, _bottom = box.padding
    widget.width = (box.width - left - right) * widget.size_hint_x
    for child in widget.walk(restrict=True):  # parents before their children
        if isinstance(child, Layout):
            child.do_layout()
        if isinstance(child, FitText):
            child.fit_text()


class Pictogram(Widget):
    """A picture drawn by the kiosk itself (no image files): "card" shows a card going onto the
    reader, "items" a stack of items on the pad. In the theme's ink, so both themes show it."""

    kind = StringProperty("card")
    ink = ColorProperty((0.1, 0.1, 0.12, 1))
    accent = ColorProperty((0.55, 0.09, 0.16, 1))

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fbind("pos", self._redraw)
        self.fbind("size", self._redraw)
        self.fbind("kind", self._redraw)
        self.fbind("ink", self._redraw)
        self.fbind("accent", self._redraw)

    def _redraw(self, *_: Any) -> None:
        self.canvas.clear()
        x, y, w, h = self.x, self.y, self.width, self.height
        side = min(w, h)
        x, y = x + (w - side) / 2, y + (h - side) / 2
        lw = max(1.5, side / 40)
        with self.canvas:
            Color(*self.ink)
            if self.kind == "card":
                Line(
                    rounded_rectangle=(
                        x + side * 0.1,
                        y + side * 0.04,
                        side * 0.8,
                        side * 0.26,
                        side * 0.05,
                    ),
                    width=lw,
                )
                Line(
                    circle=(x + side * 0.5, y + side * 0.17, side * 0.07), width=lw
                )  # the reader's mark
                Color(*self.accent)
                RoundedRectangle(
                    pos=(x + side * 0.24, y + side * 0.62),
                    size=(side * 0.52, side * 0.32),
                    radius=[side * 0.03],
                )
                Color(*self.ink)
                Rectangle(pos=(x + side * 0.3, y + side * 0.84), size=(side * 0.2, side * 0.04))
            else:
                Rectangle(
                    pos=(x + side * 0.08, y + side * 0.04), size=(side * 0.84, side * 0.08)
                )  # the pad
                Color(*self.accent)
                for n, (bx, bw) in enumerate(((0.2, 0.6), (0.25, 0.5), (0.18, 0.64))):
                    Rectangle(
                        pos=(x + side * bx, y + side * (0.14 + n * 0.13)),
                        size=(side * bw, side * 0.11),
                    )
                Color(*self.ink)
            # The arrow: down, onto the reader or the pad.
            top, tip = (0.6, 0.36) if self.kind == "card" else (0.98, 0.6)
            Line(
                points=[x + side * 0.86, y + side * top, x + side * 0.86, y + side * (tip + 0.06)],
                width=lw,
            )
            Triangle(
                points=[
                    x + side * 0.8,
                    y + side * (tip + 0.08),
                    x + side * 0.92,
                    y + side * (tip + 0.08),
                    x + side * 0.86,
                    y + side * tip,
                ]
            )
