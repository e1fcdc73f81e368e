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


def _row_for(p, uid: str):
    """The checkout row standing for the tag with this UID, whatever its key is by now."""
    rows = _rows(p)
    if f"uid:{uid}" in rows:
        return rows[f"uid:{uid}"]
    tag = p.app.provisional.get(uid)
    return rows.get(tag.item_id) if tag is not None and tag.item_id else None


def test_a_found_tag_has_its_row_before_its_memory_is_read_and_the_item_takes_that_row(
    kiosk, acs
) -> None:
    """The inventory that finds a tag shows a row for it at once, while the reader still reads
    which item it is (the read held here); the same row then shows the item's number and is
    borrowed. One scan sound, one loan."""
    from tests.ui.test_never_blocked import stalled_pad

    p = _checkout_screen(kiosk, "found-")
    sounds = p.app.services.sounds
    heard = sounds.played.count(Cue.SCAN)
    tag = demo_tag("30000003")
    with stalled_pad(p.pad, "read") as (entered, release):
        p.pad.place(tag)
        assert entered.wait(10), "the tag's read never started"
        p.wait_until(lambda: _row_for(p, tag.uid) is not None, timeout=10, what="the found row")
        row = _row_for(p, tag.uid)
        assert (row.title, row.item_id, row.status, row.state_name) == (
            "Item",
            "",
            "Checking...",
            "pending",
        )
        p.settle()
        p.screenshot("04-found-before-read")
        assert sounds.played.count(Cue.SCAN) == heard + 1, "heard when the tag is found"
        assert "30000003" not in _items(p.app)
        release.set()
        p.wait_until(lambda: "30000003" in _rows(p), timeout=10, what="the item's number")
    assert _rows(p)["30000003"] is row, "the found row takes the item's number"
    assert f"uid:{tag.uid}" not in _rows(p)
    p.wait_until(
        lambda: _rows(p)["30000003"].state_name == "ok", timeout=15, what="borrowed in that row"
    )
    assert _rows(p)["30000003"] is row
    assert len(_rows(p)) == 1, "one row for one item"
    assert sounds.played.count(Cue.SCAN) == heard + 1, "not heard again when read or believed"
    assert acs.library.applications("30000003", "checkout") == 1


def test_a_damaged_tags_found_row_becomes_its_unreadable_row(kiosk, acs) -> None:
    """A tag whose memory does not read: the row shown when it was found is the row that then
    says it cannot be read (the session's unreadable item), not a second row."""
    from tests.ui.test_never_blocked import stalled_pad

    p = _checkout_screen(kiosk, "found-damaged-")
    tag = demo_tag("30000004")
    p.pad.fail_reads(tag.uid, 1000)
    with stalled_pad(p.pad, "read") as (entered, release):
        p.pad.place(tag)
        assert entered.wait(10), "the tag's read never started"
        p.wait_until(lambda: _row_for(p, tag.uid) is not None, timeout=10, what="the found row")
        row = _row_for(p, tag.uid)
        assert (row.title, row.state_name) == ("Item", "pending"), "found, before its read"
        release.set()
    p.wait_until(
        lambda: row.state_name not in ("pending", ""), timeout=15, what="the tag's outcome"
    )
    assert _rows(p) == {f"uid:{tag.uid}": row}, "the same row, the only one"
    assert row.state_name == "refused" and "cannot be read" in row.status, row.status
    p.settle()
    p.screenshot("05-found-damaged")
    assert acs.library.applications("30000004", "checkout") == 0


def test_a_found_tag_lifted_before_the_set_is_stable_leaves_no_row(kiosk) -> None:
    from tests.ui.test_never_blocked import stalled_pad

    p = _checkout_screen(kiosk, "found-lifted-")
    stack = p.app.services.stack
    stack.stable_rounds = NEVER
    tag = demo_tag("30000007")
    with stalled_pad(p.pad, "read") as (entered, release):
        p.pad.place(tag)
        assert entered.wait(10)
        p.wait_until(lambda: _row_for(p, tag.uid) is not None, timeout=10, what="the found row")
        release.set()  # the pad lets the tag go only once the read under way is answered
        p.pad.remove(tag.uid)
    stack.stable_rounds = 2
    p.wait_until(lambda: not _rows(p), timeout=10, what="the finding withdrawn")
    assert p.app.provisional == {}
    assert "30000007" not in _items(p.app)


def test_on_the_returns_screen_a_found_tag_has_its_row_before_its_memory_is_read(
    kiosk, acs
) -> None:
    """Returning at the kiosk: the row comes when the inventory finds the tag, as at checkout;
    the same row takes the item's number and its return, one check-in, one sound."""
    from tests.ui.test_never_blocked import stalled_pad

    p = kiosk.start("found-returns-")
    p.wait_screen("welcome")
    p.tap_id("returns", "welcome")
    p.wait_screen("returns")
    rows = p.app.screen("returns")._rows
    sounds = p.app.services.sounds
    heard = sounds.played.count(Cue.SCAN)
    tag = demo_tag("30000008", secured=False)  # on loan to LV0002
    with stalled_pad(p.pad, "read") as (entered, release):
        p.pad.place(tag)
        assert entered.wait(10), "the tag's read never started"
        p.wait_until(lambda: f"uid:{tag.uid}" in rows, timeout=10, what="the found row")
        row = rows[f"uid:{tag.uid}"]
        assert (row.title, row.item_id, row.status, row.state_name) == (
            "Izdevums",  # the kiosk's first language, Latvian: "Item", "Checking..."
            "",
            "Pārbauda...",
            "pending",
        )
        p.app.render(p.app.state)  # a session snapshot meanwhile (the welcome stage's)
        p.settle()
        assert rows.get(f"uid:{tag.uid}") is row, "kept while returning: it is the return's row"
        p.screenshot("06-found-returns")
        assert sounds.played.count(Cue.SCAN) == heard + 1
        release.set()
        p.wait_until(lambda: "30000008" in rows, timeout=10, what="the item's number")
    assert rows["30000008"] is row, "the found row takes the item's number"
    p.wait_until(
        lambda: p.app.return_state is not None and len(p.app.return_state.returned) == 1,
        timeout=15,
        what="returned",
    )
    p.wait_until(lambda: rows["30000008"].state_name == "ok", timeout=5, what="row returned")
    assert rows == {"30000008": row}, "one row, the found one"
    assert p.app.provisional == {}
    assert sounds.played.count(Cue.SCAN) == heard + 1
    assert acs.library.applications("30000008", "checkin") == 1
