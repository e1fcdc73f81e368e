"""The kiosk's look in one place: colours, font sizes and touch-target sizes, with large-text and
high-contrast modes that every screen binds to (`app.theme.fg`, `app.theme.font_m`, ...).

Sizes follow docs/accessibility.md: targets at least 48 px, primary actions at least 64 px, body text
at least 24 px; large-text mode scales text by about 1.4.
"""

from __future__ import annotations

from kivy.event import EventDispatcher
from kivy.properties import BooleanProperty, ColorProperty, NumericProperty, StringProperty

# Fonts bundled with Kivy: Roboto covers Latvian and Cyrillic; DejaVuSans has the symbols
# (check marks, arrows) that Roboto lacks and that would otherwise render as boxes.
TEXT_FONT = "Roboto"
SYMBOL_FONT = "DejaVuSans"

MIN_TOUCH_PX = 48
PRIMARY_TOUCH_PX = 64

NORMAL_PALETTE = _NORMAL = {
    "bg": (0.96, 0.96, 0.94, 1),
    "fg": (0.10, 0.10, 0.12, 1),
    "muted": (0.35, 0.35, 0.38, 1),
    "panel": (1, 1, 1, 1),
    "bar": (0.55, 0.09, 0.16, 1),  # Latvian carmine red
    "bar_fg": (1, 1, 1, 1),
    "primary": (0.55, 0.09, 0.16, 1),
    "primary_fg": (1, 1, 1, 1),
    "secondary": (0.86, 0.86, 0.84, 1),
    "secondary_fg": (0.10, 0.10, 0.12, 1),
    "ok": (0.09, 0.45, 0.20, 1),
    "refused": (0.70, 0.10, 0.10, 1),
    "pending": (0.35, 0.35, 0.38, 1),
    "warn_bg": (1.0, 0.85, 0.35, 1),
    "warn_fg": (0.10, 0.10, 0.12, 1),
    "overlay": (0, 0, 0, 0.55),
    "edge": (0.33, 0.33, 0.36, 1),  # button and key outlines: at least 3:1 against bg and panel
}

HIGH_CONTRAST_PALETTE = _HIGH_CONTRAST = {
    "bg": (0, 0, 0, 1),
    "fg": (1, 1, 1, 1),
    "muted": (0.92, 0.92, 0.92, 1),
    "panel": (0.08, 0.08, 0.08, 1),
    "bar": (0, 0, 0, 1),
    "bar_fg": (1, 1, 0, 1),
    "primary": (1, 1, 0, 1),
    "primary_fg": (0, 0, 0, 1),
    "secondary": (0.25, 0.25, 0.25, 1),
    "secondary_fg": (1, 1, 1, 1),
    "ok": (0.45, 1, 0.45, 1),
    "refused": (1, 0.55, 0.55, 1),
    "pending": (0.85, 0.85, 0.85, 1),
    "warn_bg": (1, 1, 0, 1),
    "warn_fg": (0, 0, 0, 1),
    "overlay": (0, 0, 0, 0.8),
    "edge": (0.85, 0.85, 0.85, 1),
}


# The display the sizes above were chosen for: a 1280x800 panel (short side 800 px). Larger
# displays scale everything up by their short side; smaller ones keep the sizes (targets must stay
# at least 48 px) and tighten spacing instead ("compact").
REFERENCE_SHORT_SIDE = 800
COMPACT_SHORT_SIDE = 600
SHORT_LANDSCAPE_HEIGHT = 720


def display_scale(
    width: float, height: float, density: float = 1.0, override: float = 0.0
) -> float:
    """How much larger than the reference everything is drawn on this display.

    `override` (the site's `[ui] scale`) wins when set; otherwise the short side against the
    reference panel, times the platform's pixel density (Kivy's Metrics.density: 1 on a plain
    panel, 2 on a high-density one), never below 1.
    """
    if override > 0:
        return float(override)
    return max(1.0, min(width, height) / REFERENCE_SHORT_SIDE) * max(1.0, density)


class Theme(EventDispatcher):
    """Observable theme; toggling `large_text` or `high_contrast` updates every bound widget."""

    large_text = BooleanProperty(False)
    high_contrast = BooleanProperty(False)
    unit = NumericProperty(1.0)  # the display's scale (display_scale)
    compact = BooleanProperty(False)  # a short display (800x480, 480x800): tighter spacing
    landscape = BooleanProperty(True)
    # A landscape display too short for a column of language names above the welcome screen's
    # actions (800x480, 1024x600): the names stand in a row of codes there.
    short = BooleanProperty(False)

    text_font = StringProperty(TEXT_FONT)
    symbol_font = StringProperty(SYMBOL_FONT)

    font_s = NumericProperty(20)
    font_m = NumericProperty(24)
    font_l = NumericProperty(32)
    font_xl = NumericProperty(44)
    touch = NumericProperty(MIN_TOUCH_PX)
    button_h = NumericProperty(PRIMARY_TOUCH_PX)
    row_h = NumericProperty(56)
    pad = NumericProperty(16)

    bg = ColorProperty(_NORMAL["bg"])
    fg = ColorProperty(_NORMAL["fg"])
    muted = ColorProperty(_NORMAL["muted"])
    panel = ColorProperty(_NORMAL["panel"])
    bar = ColorProperty(_NORMAL["bar"])
    bar_fg = ColorProperty(_NORMAL["bar_fg"])
    primary = ColorProperty(_NORMAL["primary"])
    primary_fg = ColorProperty(_NORMAL["primary_fg"])
    secondary = ColorProperty(_NORMAL["secondary"])
    secondary_fg = ColorProperty(_NORMAL["secondary_fg"])
    ok = ColorProperty(_NORMAL["ok"])
    refused = ColorProperty(_NORMAL["refused"])
    pending = ColorProperty(_NORMAL["pending"])
    warn_bg = ColorProperty(_NORMAL["warn_bg"])
    warn_fg = ColorProperty(_NORMAL["warn_fg"])
    overlay = ColorProperty(_NORMAL["overlay"])
    edge = ColorProperty(_NORMAL["edge"])

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.bind(
            large_text=self._apply, high_contrast=self._apply, unit=self._apply, compact=self._apply
        )
        self._apply()

    @property
    def scale(self) -> float:
        return 1.4 if self.large_text else 1.0

    def fit_display(
        self, width: float, height: float, density: float = 1.0, override: float = 0.0
    ) -> None:
        """Follow the window's size (called at start and on every resize)."""
        self.landscape = width >= height
        self.short = width >= height and height < SHORT_LANDSCAPE_HEIGHT
        self.compact = min(width, height) < COMPACT_SHORT_SIDE
        self.unit = display_scale(width, height, density, override)

    def _apply(self, *_: object) -> None:
        s = self.scale * self.unit
        u = self.unit
        self.font_s = round(20 * s)
        self.font_m = round(24 * s)
        self.font_l = round((28 if self.compact else 32) * s)
        self.font_xl = round((34 if self.compact else 44) * s)
        self.touch = round(MIN_TOUCH_PX * u)
        self.button_h = round(PRIMARY_TOUCH_PX * u * (1.2 if self.large_text else 1.0))
        self.row_h = round(56 * s)
        self.pad = round((8 if self.compact else 16) * u)
        palette = _HIGH_CONTRAST if self.high_contrast else _NORMAL
        for name, value in palette.items():
            setattr(self, name, value)

    def reset(self) -> None:
        """Back to the defaults (at logout and idle timeout)."""
        self.large_text = False
        self.high_contrast = False
