"""Contrast of both themes, measured from the theme's own colours (WCAG 2.2): text at least 4.5:1
against what it is drawn on (1.4.3), button and key outlines at least 3:1 against the screen and
the panels they stand on (1.4.11)."""

from __future__ import annotations

import pytest

from kiosk.screens.theme import HIGH_CONTRAST_PALETTE, NORMAL_PALETTE

PALETTES = {"normal": NORMAL_PALETTE, "high contrast": HIGH_CONTRAST_PALETTE}

# (text colour, background) pairs the screens draw.
TEXT_PAIRS = [
    ("fg", "bg"),
    ("fg", "panel"),
    ("muted", "bg"),
    ("muted", "panel"),
    ("ok", "bg"),
    ("ok", "panel"),
    ("refused", "bg"),
    ("refused", "panel"),
    ("primary_fg", "primary"),
    ("secondary_fg", "secondary"),
    ("bar_fg", "bar"),
    ("warn_fg", "warn_bg"),
    ("pending", "panel"),
]
# Non-text: what tells a control from its surroundings - its outline or its fill, whichever stands
# out more (on the top bar a light button's fill does it in the normal theme, its outline in the
# other; the bar holds no primary buttons: its toggles show their on state with a check mark).
EDGE_PAIRS = [
    (("edge", "secondary"), "bg"),
    (("edge", "secondary"), "panel"),
    (("edge", "secondary"), "bar"),
    (("edge", "primary"), "bg"),
    (("edge", "primary"), "panel"),
]


def luminance(rgb) -> float:
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(float(c)) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def ratio(a, b) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def test_the_ratio_is_wcags() -> None:
    assert ratio((0, 0, 0), (1, 1, 1)) == pytest.approx(21.0)
    assert ratio((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)) == pytest.approx(1.0)
    assert ratio((0.4627, 0.4627, 0.4627), (1, 1, 1)) == pytest.approx(
        4.54, abs=0.02
    )  # #767676 on white


@pytest.mark.parametrize("theme", PALETTES)
def test_text_is_at_least_4_5_to_1(theme: str) -> None:
    p = PALETTES[theme]
    low = {
        f"{fg} on {bg}": round(ratio(p[fg], p[bg]), 2)
        for fg, bg in TEXT_PAIRS
        if ratio(p[fg], p[bg]) < 4.5
    }
    assert not low, f"{theme}: {low}"


@pytest.mark.parametrize("theme", PALETTES)
def test_button_and_key_edges_are_at_least_3_to_1(theme: str) -> None:
    p = PALETTES[theme]
    best = {f"{'/'.join(a)} against {b}": max(ratio(p[x], p[b]) for x in a) for a, b in EDGE_PAIRS}
    low = {pair: round(value, 2) for pair, value in best.items() if value < 3.0}
    assert not low, f"{theme}: {low}"
