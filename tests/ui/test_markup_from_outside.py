"""Text from outside the kiosk is shown as it is, never read as Kivy markup: item titles and a
patron's name from the library system with brackets in them. A tag such as `[font=x]` or
`[size=abc]` would otherwise stop the UI thread in Kivy's markup renderer, and `[size=300]`
would blow a row up; `[b]` would vanish. The screens make such text plain
(`kiosk.screens.texts.plain`), and every markup label guards itself if a tag still reaches it
(`kiosk.screens.widgets.MarkupGuard`)."""

from __future__ import annotations

import logging

import pytest
from kivy.core.text import Label as CoreLabel
from kivy.core.text.markup import MarkupLabel as CoreMarkupLabel
from kivy.factory import Factory
from sqlalchemy.orm import Session

from kiosk.screens.texts import clip, plain
from kiosk.screens.widgets import KButton, KLabel
from kiosk.sync.acs import models
from tests.ui.pilot import pump

pytestmark = pytest.mark.ui

# Each of these raises in Kivy's markup renderer, or draws something else than its characters.
HOSTILE = [
    "[font=nosuchfont]Ghost stories",
    "[size=abc]Broken size",
    "[size=99999999999]Huge",
    "[size=100000]Big",
    "[font=/etc/passwd]Path",
    "[size=300]Loud title",
    "Tom &amp; Jerry [b]bold[/b] &bl;x&br;",
    "Harry Potter [Latvian edition] [/color]",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_plain_text_draws_its_own_characters(text: str) -> None:
    """The markup renderer draws plain(text) as wide as a label without markup draws text."""
    from kivy.core.window import Window  # noqa: F401  (a GL context for the textures)

    literal = CoreLabel(text=text, font_size=20)
    literal.refresh()
    shown = CoreMarkupLabel(text=plain(text), font_size=20)
    shown.refresh()
    assert shown.texture.size == literal.texture.size


@pytest.mark.parametrize("make", [KLabel, KButton, lambda **kw: Factory.MaintLabel(**kw)])
def test_a_markup_label_that_gets_a_tag_it_cannot_draw_shows_it_plain(
    make, kiosk, caplog: pytest.LogCaptureFixture
) -> None:
    from kiosk.screens import maintenance  # noqa: F401  (the classes maintenance.kv's rules name)
    from kiosk.screens.widgets import load_kv

    kiosk.start()  # the app the labels' rules read their theme from
    load_kv("widgets.kv", "maintenance.kv")
    label = make(text="[size=abc]Broken size")
    with caplog.at_level(logging.WARNING, logger="kiosk.screens.widgets"):
        label.texture_update()  # as the next frame would
    assert label.text == "&bl;size=abc&br;Broken size"
    assert "could not draw" in caplog.text
    assert "Broken size" not in caplog.text  # the text itself stays out of the log
    label.texture_update()
    assert label.texture is not None and label.texture.size[1] > 10


def test_a_kiosk_fault_in_its_own_markup_is_not_hidden(kiosk) -> None:
    """Plain text that still fails is not bad input: it is raised, with its traceback."""
    kiosk.start()
    label = KLabel(text="plain words")
    font = label.font_name
    label.font_name = "/nonexistent/font.ttf"
    with pytest.raises(OSError):
        label.texture_update()
    label.font_name = font  # or the next frame raises it again


def test_titles_and_a_name_from_the_library_system_are_shown_as_they_are(
    kiosk, acs, caplog: pytest.LogCaptureFixture
) -> None:
    with Session(acs.library.engine) as s, s.begin():
        for n, title in enumerate(HOSTILE):
            s.add(models.ItemRow(id=f"3900{n:04d}", title=title, owner="LV-DEMO"))
        s.get(models.PatronRow, "LV0001").name = "[font=x]Anna [size=abc]Bērziņa"
    p = kiosk.start("markup-", printer_extra="show_patron_name = true")
    with caplog.at_level(logging.WARNING, logger="kiosk.screens.widgets"):
        p.borrow("LV0001", "39000000", "1234")
        from kiosk.devices.readers.sim import demo_tag

        for n in range(1, len(HOSTILE)):
            p.pad.place(demo_tag(f"3900{n:04d}"))
        p.wait_until(
            lambda: len([i for i in p.app.state.checkout.items if i.final]) == len(HOSTILE),
            what="every item's loan",
        )
        p.settle()
        screen = p.app.screen("checkout")
        shown = {row.ids.title_label.text.split("  [size=")[0] for row in screen._rows.values()}
        assert shown == {plain(t) for t in HOSTILE}
        # Each row is as tall as its own words: [size=300] made nothing big.
        heights = [row.height for row in screen._rows.values()]
        assert max(heights) < 3 * min(heights)
        assert "&bl;font=x&br;Anna" in screen.ids.greeting.text
        p.screenshot("checkout")
        for _ in range(3):
            pump(1)
    # Every label got plain text from its screen: the guard never had to step in.
    assert "could not draw" not in caplog.text
    assert p.app.current_screen == "checkout"


def test_an_endless_title_shows_its_first_lines(kiosk) -> None:
    """A library system may send a title of any length (the spec's 255 bytes are not kept by
    all); a label as tall as 60,000 characters would be a texture taller than a GPU allows."""
    from kivy.core.window import Window
    from kivy.uix.boxlayout import BoxLayout

    from kiosk.screens.widgets import ItemRow

    p = kiosk.start()
    box = BoxLayout(orientation="vertical", size_hint=(None, None), size=(760, 4000))
    endless = "A title without end " * 3000
    short, long = ItemRow(title="Short", item_id="1"), ItemRow(title=endless, item_id="2")
    for row in (short, long):
        row.status = "Due 28.12.2026"
        box.add_widget(row)
    Window.add_widget(box)
    try:
        p.settle()
    finally:
        Window.remove_widget(box)
    assert long.ids.title_label.text.startswith(plain(clip(endless)))
    assert len(clip(endless)) <= 301 and clip(endless).endswith("…")
    assert long.height < 8 * short.height
