"""Every screen state on every kiosk display, in every language, text size and contrast: each
button, key and input lies inside the window, is not covered by another widget (hit-testing at
its centre and corners reaches it), is at least 48 x 48 px, and no text is cut or broken mid-word.

Each combination renders all states in this one process with one Window (kiosk.preview), writes
the screenshots to tests/artifacts/screenshots/layout/ and a contact sheet per combination.

The default run covers every state at 800x480 and at 480x800, each in all three languages, with
large text and high contrast spread over them; the full matrix (every size, language, text size
and contrast) is `slow`.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from kiosk.preview import SIZES, hit_test, state_names

pytestmark = pytest.mark.ui

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots" / "layout"
MIN_TARGET = 48

DEFAULT = [
    ("800x480", "lv", False, False),
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


def check_state(pv, state: str, size: tuple[int, int]) -> list[str]:
    """What is wrong with the screen now shown (empty when nothing is)."""
    from kiosk.preview import (
        INTERACTIVE_ROLES,
        _role,
        _shown,
        inspect_layout,
        overlapping_texts,
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
    for widget in scope.walk(restrict=True):
        if _role(widget) not in INTERACTIVE_ROLES or not _shown(widget):
            continue
        rect = window_rect(widget)
        label = f"{type(widget).__name__} {getattr(widget, 'text', '')[:30]!r}"
        boxes = _viewport_boxes(widget, size)
        in_scroll = len(boxes) > 1
        if not _inside(rect, boxes[0]) and not in_scroll:
            problems.append(f"outside the window: {label} at {rect}")
            continue
        if widget.width < MIN_TARGET - 0.5 or widget.height < MIN_TARGET - 0.5:
            problems.append(
                f"smaller than {MIN_TARGET} px: {label} {widget.width:.0f}x{widget.height:.0f}"
            )
        if not all(_inside(rect, box) for box in boxes):
            continue  # partly scrolled out of view: reachable by scrolling
        x, y, w, h = rect
        for px, py in (
            (x + w / 2, y + h / 2),
            (x + 2, y + 2),
            (x + w - 3, y + 2),
            (x + 2, y + h - 3),
            (x + w - 3, y + h - 3),
        ):
            found = hit_test(root, px, py)
            if found is not widget:
                other = (
                    f"{type(found).__name__} {getattr(found, 'text', '')[:30]!r}"
                    if found is not None
                    else "nothing"
                )
                problems.append(f"covered: {label} at ({px:.0f}, {py:.0f}) reaches {other}")
                break
    return problems


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


def _fully_shown(widget, size) -> bool:
    from kiosk.preview import window_rect

    return all(_inside(window_rect(widget), box) for box in _viewport_boxes(widget, size))


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
