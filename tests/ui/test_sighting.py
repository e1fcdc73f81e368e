"""A tag on the pad is shown as "checking" as soon as one inventory has seen it and its memory has
been read, before the stack reader believes the set (its `stable_rounds`); nothing is done with it
until then, and a sighting the stable set does not keep leaves no row, no loan and no sound
again. In the real KioskApp, on the real stack reader and simulated pad."""

from __future__ import annotations

import pytest

from kiosk.core.checkout import ItemStatus
from kiosk.devices.readers.sim import demo_tag
from kiosk.sounds import Cue

pytestmark = pytest.mark.ui

# The set never settles while the test looks at the sighting: the stack reader confirms only
# after this many identical inventories (the site's default, which the UI tests use, is 2).
NEVER = 1_000_000


def _items(app):
    return (
        {i.item_id: i for i in app.state.checkout.items} if app.state and app.state.checkout else {}
    )


def _rows(p):
    return p.app.screen("checkout")._rows


def _checkout_screen(kiosk, prefix: str):
    p = kiosk.start(prefix, pin_policy="none")
    p.wait_screen("welcome")
    p.app.present_card("LV0002")
    p.wait_screen("checkout")
    return p


def test_a_sighted_tag_shows_checking_at_once_and_is_borrowed_once_the_set_is_stable(
    kiosk, acs
) -> None:
    p = _checkout_screen(kiosk, "sighting-")
    stack, sounds = p.app.services.stack, p.app.services.sounds
    stack.stable_rounds = NEVER
    heard = sounds.played.count(Cue.SCAN)  # the card's
    p.pad.place(demo_tag("30000001"))
    p.wait_until(lambda: "30000001" in _rows(p), timeout=10, what="the row at the sighting")
    row = _rows(p)["30000001"]
    assert (row.status, row.state_name) == ("Checking...", "pending")
    p.settle()
    p.screenshot("01-sighted-checking")
    assert "30000001" not in _items(p.app), "nothing is done before the set is stable"
    assert stack.current() == ()
    assert acs.library.applications("30000001", "checkout") == 0
    assert sounds.played.count(Cue.SCAN) == heard + 1, "heard when it is first shown"

    stack.stable_rounds = 1
    p.wait_until(
        lambda: (
            _items(p.app).get("30000001") is not None
            and _items(p.app)["30000001"].status is ItemStatus.CHECKED_OUT
        ),
        timeout=15,
        what="borrowed once the set is stable",
    )
    p.wait_until(lambda: _rows(p)["30000001"].state_name == "ok", timeout=5, what="row borrowed")
    assert _rows(p)["30000001"] is row, "the same row, filled in"
    assert acs.library.applications("30000001", "checkout") == 1
    assert sounds.played.count(Cue.SCAN) == heard + 1, "not heard again when the set is believed"
    p.screenshot("02-borrowed")


def test_a_sighting_the_stable_set_does_not_keep_leaves_no_row_and_no_loan(kiosk, acs) -> None:
    p = _checkout_screen(kiosk, "sighting-withdrawn-")
    stack = p.app.services.stack
    stack.stable_rounds = NEVER
    tag = p.pad.place(demo_tag("30000002"))
    p.wait_until(lambda: "30000002" in _rows(p), timeout=10, what="the row at the sighting")
    p.pad.remove(tag.uid)  # lifted again (or a detuned tag that answered once)
    stack.stable_rounds = 2
    p.wait_until(lambda: "30000002" not in _rows(p), timeout=10, what="the sighting withdrawn")
    p.settle()
    p.screenshot("03-withdrawn")
    assert p.app.provisional == {}
    assert "30000002" not in _items(p.app)
    assert acs.library.applications("30000002", "checkout") == 0
    # The pad keeps being read: the same tag placed again is sighted and shown again.
    p.pad.place(tag)
    p.wait_until(lambda: "30000002" in _rows(p), timeout=10, what="shown again when placed again")


def test_one_scan_sound_per_item_even_when_a_snapshot_clears_the_checking_rows(kiosk) -> None:
    """On the welcome or returns screen a session snapshot clears the provisional rows; the tag
    believed after that is the same item on the pad and is not heard a second time."""
    p = kiosk.start("sighting-sound-", pin_policy="none")
    p.wait_screen("welcome")
    stack, sounds = p.app.services.stack, p.app.services.sounds
    stack.stable_rounds = NEVER
    heard = sounds.played.count(Cue.SCAN)
    tag = p.pad.place(demo_tag("30000003"))
    p.wait_until(lambda: tag.uid in p.app.provisional, timeout=10, what="the sighting")
    assert sounds.played.count(Cue.SCAN) == heard + 1
    p.app.provisional.clear()  # what a snapshot of a stage other than a visit does
    believed = [0]
    seen_on_pad = p.app._seen_on_pad

    def counted(added, removed):  # noqa: ANN001, ANN202 (the app's own method, wrapped)
        believed[0] += any(t.uid == tag.uid for t in added)
        return seen_on_pad(added, removed)

    p.app._seen_on_pad = counted
    stack.stable_rounds = 1
    p.wait_until(lambda: believed[0] >= 1, timeout=10, what="the set believed, on the UI thread")
    assert sounds.played.count(Cue.SCAN) == heard + 1, "one item, one sound"
    p.pad.remove(tag.uid)
    p.wait_until(lambda: stack.current() == (), timeout=10, what="taken away")
    p.settle()
    p.pad.place(tag)  # placed again: heard again
    p.wait_until(lambda: sounds.played.count(Cue.SCAN) == heard + 2, timeout=10, what="heard again")


def test_while_its_tag_is_written_the_row_shows_the_title_still_checking_at_800x480(
    kiosk, acs
) -> None:
    """The library system's answer names the title before the tag is unsecured (a write and its
    read-back, air time the reader may take long over): the row shows it at once, still
    "checking", not borrowed, and is borrowed once the write is verified. On the smallest
    display in large text, where a title that wraps must still leave the status readable."""
    from kivy.core.window import Window

    from tests.ui.test_never_blocked import stalled_pad

    Window.size = (800, 480)  # the autouse fixture puts 1280x800 back
    p = _checkout_screen(kiosk, "sighting-title-")
    p.tap_id("large_text_toggle", "root")
    title = acs.library.item_information("30000001").title
    assert title
    with stalled_pad(p.pad, "afi", "write", "eas") as (entered, release):
        p.pad.place(demo_tag("30000001"))
        assert entered.wait(10), "the tag write never started"
        p.wait_until(
            lambda: "30000001" in _rows(p) and _rows(p)["30000001"].title == title,
            timeout=10,
            what="the title while the tag is written",
        )
        row = _rows(p)["30000001"]
        assert (row.status, row.state_name) == ("Checking...", "pending")
        item = _items(p.app)["30000001"]
        assert item.status is ItemStatus.SEEN and not item.due_date
        p.settle()
        p.screenshot("03-title-while-writing-800x480-large-text")
        release.set()
        p.wait_until(
            lambda: _rows(p)["30000001"].state_name == "ok",
            timeout=15,
            what="borrowed once the write is verified",
        )
    assert _items(p.app)["30000001"].status is ItemStatus.CHECKED_OUT
    assert acs.library.applications("30000001", "checkout") == 1
