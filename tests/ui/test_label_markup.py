"""Labels and buttons read their text as markup only when it holds a tag or an entity (the plain
renderer is the faster one, kiosk/screens/widgets.kv): a text that gains a tag later is still
drawn as markup, and an entity is still drawn as its character."""

from __future__ import annotations

from tests.ui.pilot import pump


def _drawn_width(label, text: str) -> float:
    label.text = text
    pump(2)
    return float(label.texture_size[0])


def test_markup_is_read_where_the_text_has_it_and_only_there(kiosk) -> None:
    pilot = kiosk.start()
    label = pilot.widget("intro", "welcome")
    button = pilot.widget("type_number", "welcome")
    assert not label.markup and not button.markup  # the welcome screen's own texts are plain

    for widget in (label, button):
        # Unwrapped, so the texture is as wide as what is drawn (the kv rule sets the width
        # again only when the widget's own width changes).
        widget.text_size = (None, None)
        plain = _drawn_width(widget, "Sveiki un paldies")
        assert not widget.markup
        # An empty bold span adds nothing drawn; read as text, its tags would take room.
        assert _drawn_width(widget, "Sveiki[b][/b] un paldies") == plain
        assert widget.markup
        # An entity is drawn as its character, as before.
        assert _drawn_width(widget, "Sveiki &amp; paldies") == _drawn_width(
            widget, "Sveiki & paldies"
        )
        assert _drawn_width(widget, "Sveiki un paldies") == plain
        assert not widget.markup
