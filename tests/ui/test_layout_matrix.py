"""Every screen state on every kiosk display, in every language, text size and contrast: each
button, key and input lies inside the window, is not covered by another widget (hit-testing at
its centre and corners reaches it), is at least 48 x 48 px, and no text is cut or broken mid-word.

Each combination renders all states in this one process with one Window (kiosk.preview), writes
the screenshots to tests/artifacts/screenshots/layout/ and a contact sheet per combination.

The default run covers every state at 800x480 with large text in all three languages (the most
fragile case) and at 480x800 in all three, with normal text and high contrast spread over them; the full matrix (every size, language, text size
and contrast) is `slow`.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from kiosk.preview import SIZES, state_names

pytestmark = pytest.mark.ui

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots" / "layout"
MIN_TARGET = 48

# 800x480 with large text, the most fragile case, in every language; portrait spread over the rest.
DEFAULT = [
    ("800x480", "lv", True, False),
    ("800x480", "en", True, False),
    ("800x480", "ru", True, True),
    ("480x800", "lv", True, False),
    ("480x800", "en", False, True),
    ("480x800", "ru", True, False),
]
FULL = [
    c
    for c in itertools.product(SIZES, ("lv", "en", "ru"), (False, True), (False, True))
    if c not in DEFAULT
]


@pytest.fixture(scope="module")
def previewer():
    from kiosk.preview import Previewer

    pv = Previewer()
    yield pv
    pv.stop()


def _inside(rect, box) -> bool:
    from kiosk.preview import contains

    return contains(box, rect)


def _viewport_boxes(widget, size):
    """The window and the scroll views the widget is drawn within."""
    from kiosk.preview import viewports

    return [(0.0, 0.0, float(size[0]), float(size[1])), *viewports(widget)]


def _clip(rect, boxes):
    """The part of `rect` that lies within every box (zero-sized when none does)."""
    x0, y0, x1, y1 = rect[0], rect[1], rect[0] + rect[2], rect[1] + rect[3]
    for bx, by, bw, bh in boxes:
        x0, y0, x1, y1 = max(x0, bx), max(y0, by), min(x1, bx + bw), min(y1, by + bh)
    return (x0, y0, max(0.0, x1 - x0), max(0.0, y1 - y0))


def _fully_shown(widget, size) -> bool:
    """Inside the window and every scroll view around it, and clear of their scroll bars."""
    from kiosk.preview import intersection, scroll_views, scrollbar_rect, window_rect

    rect = window_rect(widget)
    if not all(_inside(rect, box) for box in _viewport_boxes(widget, size)):
        return False
    for view in scroll_views(widget):
        bar = scrollbar_rect(view)
        if bar is not None and min(intersection(rect, bar)) > 1:
            return False
    return True


def _describe(widget) -> str:
    return f"{type(widget).__name__} {getattr(widget, 'text', '')[:30]!r}"


def covered_texts(scope, size) -> list[str]:
    """Texts whose drawn lines run under a button, key or input beside them, under a scroll
    bar, or out of the window: cut for the reader although each fits its own box."""
    from kiosk.preview import (
        INTERACTIVE_ROLES,
        TEXT,
        _role,
        _shown,
        ancestors,
        ink_rect,
        intersection,
        scroll_views,
        scrollbar_rect,
        window_rect,
    )

    widgets = [w for w in scope.walk(restrict=True) if _shown(w)]
    texts = [w for w in widgets if _role(w) == TEXT]
    targets = [w for w in widgets if _role(w) in INTERACTIVE_ROLES]
    problems = []
    for text in texts:
        ink = ink_rect(text)
        views = list(scroll_views(text))
        seen = _clip(ink, _viewport_boxes(text, size))
        if seen[2] < 1 or seen[3] < 1:
            continue  # scrolled out of view: the list shows it when scrolled to
        label = f"{_describe(text)}"
        if not views and not _inside(ink, (0.0, 0.0, float(size[0]), float(size[1]))):
            problems.append(
                f"text cut by the window: {label} drawn at {tuple(round(v) for v in ink)}"
            )
            continue
        for view in views:
            bar = scrollbar_rect(view)
            if bar is not None and min(intersection(seen, bar)) > 1:
                problems.append(f"text under a scroll bar: {label}")
                break
        lineage = set(map(id, ancestors(text)))
        for target in targets:
            if id(target) in lineage or id(text) in set(map(id, ancestors(target))):
                continue
            shown = _clip(window_rect(target), _viewport_boxes(target, size))
            if min(intersection(seen, shown)) > 2:
                problems.append(f"text runs under {_describe(target)}: {label}")
                break
    return problems


def check_state(pv, state: str, size: tuple[int, int]) -> list[str]:
    """What is wrong with the screen now shown (empty when nothing is)."""
    from kiosk.preview import (
        INTERACTIVE_ROLES,
        _role,
        _shown,
        inspect_layout,
        overlapping_texts,
        scroll_views,
        window_rect,
    )

    problems = []
    root = pv.app.kiosk_root
    # A modal overlay (the idle warning, help) takes every touch on purpose: only its widgets count.
    modal = next((w for w in root.walk(restrict=True) if getattr(w, "modal", False)), None)
    scope = modal or root
    layout = inspect_layout(scope)
    for entry in layout:
        if entry["visible"] and entry["clipped"]:
            problems.append(
                f"text cut: {entry['id']} {entry['text'][:50]!r} ({entry['problem'] or 'outside the window'})"
            )
    for a, b in overlapping_texts(layout):
        problems.append(
            f"texts overlap: {a['id']} {a['text'][:30]!r} and {b['id']} {b['text'][:30]!r}"
        )
    problems += covered_texts(scope, size)
    targets = [w for w in scope.walk(restrict=True) if _role(w) in INTERACTIVE_ROLES and _shown(w)]
    for widget in targets:
        label = _describe(widget)
        views = list(scroll_views(widget))
        if not _fully_shown(widget, size):
            if not views:
                problems.append(f"outside the window: {label} at {window_rect(widget)}")
                continue
            if pv.app.current_screen == "welcome" and modal is None:
                # The patron's first actions are in view as they arrive, on every display.
                problems.append(f"needs scrolling on welcome: {label}")
                continue
        if widget.width < MIN_TARGET - 0.5 or widget.height < MIN_TARGET - 0.5:
            problems.append(
                f"smaller than {MIN_TARGET} px: {label} {widget.width:.0f}x{widget.height:.0f}"
            )
        # A target partly out of its scroll view counts only if scrolling really brings it in.
        before = [(view, view.scroll_y) for view in views]
        try:
            if not _fully_shown(widget, size):
                for view in views:
                    view.scroll_to(widget, padding=0, animate=False)
                pv.pump(2)
                if not _fully_shown(widget, size):
                    problems.append(
                        f"not fully shown even when scrolled to (cut by its view or under a scroll bar): {label} at {window_rect(widget)}"
                    )
                    continue
            problems += _hit_problems(root, widget, label)
        finally:
            if any(view.scroll_y != y for view, y in before):
                for view, y in before:
                    view.scroll_y = y
                pv.pump(2)
    return problems


def _hit_problems(root, widget, label) -> list[str]:
    """A touch at the target's centre and near each corner reaches the target itself."""
    from kiosk.preview import hit_test, window_rect

    x, y, w, h = window_rect(widget)
    for px, py in (
        (x + w / 2, y + h / 2),
        (x + 2, y + 2),
        (x + w - 3, y + 2),
        (x + 2, y + h - 3),
        (x + w - 3, y + h - 3),
    ):
        found = hit_test(root, px, py)
        if found is not widget:
            other = _describe(found) if found is not None else "nothing"
            return [f"covered: {label} at ({px:.0f}, {py:.0f}) reaches {other}"]
    return []


def run_matrix(pv, size_name: str, lang: str, large: bool, contrast: bool) -> None:
    from kiosk.preview import contact_sheet

    size = SIZES[size_name]
    tag = f"{size_name}-{lang}-{'large' if large else 'normal'}{'-hc' if contrast else ''}"
    shots, failures = [], []
    for state in state_names():
        pv.show(state, size, lang, large, contrast)
        shots.append((state, pv.save_png(ARTIFACTS / tag / f"{state}.png")))
        failures += [f"{state}: {p}" for p in check_state(pv, state, size)]
    contact_sheet(shots, ARTIFACTS / f"sheet-{tag}.png", columns=6, width=320)
    assert not failures, f"{tag}: {len(failures)} problems\n" + "\n".join(failures[:60])


@pytest.mark.parametrize(
    ("size", "lang", "large", "contrast"), DEFAULT, ids=["-".join(map(str, c)) for c in DEFAULT]
)
def test_every_state_fits(previewer, size, lang, large, contrast) -> None:
    run_matrix(previewer, size, lang, large, contrast)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("size", "lang", "large", "contrast"), FULL, ids=["-".join(map(str, c)) for c in FULL]
)
def test_every_state_fits_everywhere(previewer, size, lang, large, contrast) -> None:
    run_matrix(previewer, size, lang, large, contrast)


def test_the_checks_catch_a_covered_key_and_cut_text(previewer) -> None:
    """The layout checks can fail: a button laid over a key, and a word too long for its button."""
    from kivy.uix.button import Button

    previewer.show("card-entry", (800, 480), "lv")
    screen = previewer.app.screen("card_entry")
    key = next(k for k in screen.ids.pad.children if getattr(k, "key", "") == "5")
    x, y = key.to_window(key.x, key.y)
    cover = Button(
        text="Atcelt", size_hint=(None, None), size=(key.width, key.height / 2), pos=(x, y)
    )
    long = Button(
        text="Pārāklieguvārdsnepietiekplatspogā",
        size_hint=(None, None),
        size=(60, 60),
        pos=(0, 0),
        text_size=(60, None),
    )
    previewer.app.kiosk_root.add_widget(cover)
    previewer.app.kiosk_root.add_widget(long)
    previewer.pump(3)
    try:
        problems = check_state(previewer, "card-entry", (800, 480))
    finally:
        previewer.app.kiosk_root.remove_widget(cover)
        previewer.app.kiosk_root.remove_widget(long)
    assert any(p.startswith("covered: PadKey '5'") for p in problems), problems
    assert any(
        "Pārāklieguvārd" in p and ("word broken" in p or "larger than" in p) for p in problems
    ), problems


def test_the_checks_catch_text_and_buttons_cut_by_neighbours_and_scroll_views(previewer) -> None:
    """What each fits its own box but is still cut or covered: text running under a button
    beside it or under a scroll bar, and a button under a scroll bar (its edge moves the bar).
    Drawn on an overlay that takes every touch, so only its own widgets are checked."""
    from kivy.uix.boxlayout import BoxLayout
    from kivy.uix.button import Button
    from kivy.uix.floatlayout import FloatLayout
    from kivy.uix.label import Label
    from kivy.uix.scrollview import ScrollView
    from kivy.uix.widget import Widget

    previewer.show("welcome", (800, 480), "lv", large_text=True)
    overlay = FloatLayout()
    overlay.modal = True
    overlay.add_widget(
        Label(
            text="Borrow and return items, see your loans and renew them here.",
            size_hint=(None, None),
            size=(300, 60),
            pos=(420, 300),
            text_size=(300, None),
        )
    )
    # An icon button (no text of its own) beside the text, over its last words.
    overlay.add_widget(Widget(size_hint=(None, None), size=(1, 1), pos=(0, 470)))
    icon = Button(text="", size_hint=(None, None), size=(100, 60), pos=(640, 300))
    overlay.add_widget(icon)
    view = ScrollView(
        size_hint=(None, None),
        size=(300, 150),
        pos=(20, 20),
        bar_width=12,
        do_scroll_x=False,
        scroll_type=["bars", "content"],
    )
    content = BoxLayout(orientation="vertical", size_hint_y=None, height=400)
    content.add_widget(
        # Short words fill each line to the list's edge, under the bar.
        Label(text="A list of short words: " + "ab " * 80, text_size=(300, None), halign="left")
    )
    content.add_widget(Button(text="Under the bar"))
    view.add_widget(content)
    overlay.add_widget(view)
    previewer.app.kiosk_root.add_widget(overlay)
    previewer.settle()
    try:
        problems = check_state(previewer, "welcome", (800, 480))
    finally:
        previewer.app.kiosk_root.remove_widget(overlay)
        previewer.settle()
    assert any(p.startswith("text runs under Button ''") for p in problems), problems
    assert any(
        p.startswith("text under a scroll bar: Label 'A list of short words") for p in problems
    ), problems
    assert any(
        p.startswith("not fully shown even when scrolled to") and "Under the bar" in p
        for p in problems
    ), problems


def test_the_checks_catch_welcome_actions_below_the_fold(previewer) -> None:
    """The welcome screen's actions must be in view as the patron arrives: pushed down the side
    column (as three language names in a column did at 800x480 with large text), they count
    as a problem even though the column scrolls to them."""
    from kivy.uix.widget import Widget

    previewer.show("welcome", (800, 480), "lv", large_text=True)
    assert check_state(previewer, "welcome", (800, 480)) == []
    push = Widget(size_hint_y=None, height=300)
    side_top = previewer.app.screen("welcome").ids.side_top
    side_top.add_widget(push)
    previewer.settle()
    try:
        problems = check_state(previewer, "welcome", (800, 480))
    finally:
        side_top.remove_widget(push)
        previewer.settle()
    assert "needs scrolling on welcome: KButton 'Nodot izdevumus'" in problems, problems


def test_preview_list_and_errors(capsys) -> None:
    from kiosk.cli import main

    assert main(["preview", "--list"]) == 0
    names = capsys.readouterr().out.split()
    for required in (
        "welcome",
        "card-entry",
        "card-entry-letters",
        "pin",
        "pin-wrong",
        "locked-out",
        "checking-card",
        "checkout-empty",
        "checkout-mixed",
        "checkout-many",
        "blocked-patron",
        "account",
        "account-fees",
        "account-holds",
        "renewed",
        "receipt-choice",
        "receipt-email",
        "goodbye",
        "idle-warning",
        "timed-out",
        "out-of-service",
        "offline",
        "returns",
    ):
        assert required in names
    assert any(n.startswith("bookdrop-") for n in names)
    assert any(n.startswith("maintenance-") for n in names)
    assert main(["preview", "no-such-state"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "no-such-state" in err
    assert main(["preview", "welcome", "--size", "800by480"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "800by480" in err


def test_preview_command_writes_the_png_and_the_layout_json(tmp_path: Path) -> None:
    """In its own process, as a technician runs it: the window has the asked size from the start."""
    import json
    import os
    import subprocess
    import sys

    out = tmp_path / "pin.png"
    env = {**os.environ, "KIVY_HOME": str(tmp_path / "kivy")}
    env.pop("KCFG_GRAPHICS_WIDTH", None)
    env.pop("KCFG_GRAPHICS_HEIGHT", None)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "kiosk",
            "preview",
            "pin-wrong",
            "--size",
            "480x800",
            "--lang",
            "ru",
            "--large-text",
            "--out",
            str(out),
            "--layout-json",
        ],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    layout = json.loads(done.stdout)
    assert layout["state"] == "pin-wrong"
    assert layout["size"] == [480, 800]
    from PIL import Image

    with Image.open(out) as img:
        assert img.size == (480, 800)
    roles = {w["role"] for w in layout["widgets"]}
    assert {"key", "button", "text"} <= roles
    for w in layout["widgets"]:
        assert set(w) >= {"id", "role", "rect", "text", "interactive", "clipped", "visible"}
        x, y, width, height = w["rect"]
        assert 0 <= x
        assert 0 <= y
        assert x + width <= 481
        assert y + height <= 801
    keys = [w for w in layout["widgets"] if w["role"] == "key"]
    assert sorted(w["text"] for w in keys if w["text"].isdigit()) == list("0123456789")
    assert any("PIN" in w["text"] for w in layout["widgets"] if w["role"] == "text")


@pytest.mark.parametrize("size", [(800, 480), (480, 800)])
def test_what_the_small_displays_must_show_without_scrolling(previewer, size) -> None:
    """At 800x480 (the Pi's display) and 480x800: the welcome instructions, the receipt question
    and several checkout rows are on screen as the patron arrives, not below the fold."""
    previewer.show("welcome", size, "lv")
    screen = previewer.app.screen("welcome")
    for wid in ("how_card", "how_scan", "how_type", "type_number"):
        assert _fully_shown(screen.ids[wid], size), wid
    previewer.show("receipt-choice", size, "ru")
    finish = previewer.app.screen("finish")
    assert _fully_shown(finish.ids.question, size)
    assert _fully_shown(finish.ids.print_receipt, size)
    previewer.show("checkout-many", size, "en")
    rows = previewer.app.screen("checkout").ids.item_list.children
    assert sum(_fully_shown(r, size) for r in rows) >= 4
    previewer.show("checkout-many", size, "en", large_text=True)
    shown = sum(
        _fully_shown(r, size) for r in previewer.app.screen("checkout").ids.item_list.children
    )
    assert shown >= 2  # large text wraps the titles: fewer, taller rows


@pytest.mark.parametrize(
    ("size", "short"), [((800, 480), True), ((1024, 600), True), ((1280, 800), False)]
)
def test_short_landscape_displays_show_the_languages_by_code(previewer, size, short) -> None:
    """A short landscape display has the languages in one row of codes (so the actions stay in
    view); each is still spoken by its own name."""
    from kiosk.screens.focus import label_of

    previewer.show("welcome", size, "ru", large_text=True)
    buttons = {b.code: b for b in previewer.app.screen("welcome").ids.languages.children}
    texts = {code: b.text for code, b in buttons.items()}
    if short:
        assert texts == {"lv": "LV", "en": "EN", "ru": "RU"}
        assert len({round(b.y) for b in buttons.values()}) == 1  # one row
    else:
        assert texts == {"lv": "Latviešu", "en": "English", "ru": "Русский"}
    assert label_of(buttons["lv"], "ru") == "Latviešu"
