"""The SIP2 client against the strict demo library system: a changing request that timed out is
re-sent only to a link proven to honour the duplicate rule, otherwise it is in doubt; and an
answer is only ever taken for the request it belongs to.

Every test counts what the library system applied (strict mode: every request it receives is
applied), so a re-send that the library system executes again shows as a second application.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest

from kiosk.sync.acs import models
from kiosk.sync.acs.server import RunningAcs, start_embedded
from kiosk.sync.sip2.client import SC_TO_ACS, Sip2Client
from kiosk.sync.sip2.codec import Message, Sip2LinkError, decode, message
from tests.sync.demo_link import in_thread, settings_for, wait_for, with_field
from tests.sync.fake_acs import FakeAcs

D = "20261125    100000"
WAIT_S = 10.0


def checkout(patron: str, item: str) -> Message:
    return message(
        "11",
        sc_renewal_policy="Y",
        no_block="N",
        transaction_date=D,
        nb_due_date=D,
        fields=[("AO", "DEMO"), ("AA", patron), ("AB", item), ("AC", "")],
    )


def renew(patron: str, item: str) -> Message:
    return message(
        "29",
        third_party_allowed="N",
        no_block="N",
        transaction_date=D,
        nb_due_date=D,
        fields=[("AO", "DEMO"), ("AA", patron), ("AB", item), ("AC", "")],
    )


def item_info(item: str) -> Message:
    return message("17", transaction_date=D, fields=[("AO", "DEMO"), ("AB", item), ("AC", "")])


@pytest.fixture
def make_acs(tmp_path) -> Iterator[Callable[..., RunningAcs]]:
    started: list[RunningAcs] = []

    def make(profile: str) -> RunningAcs:
        acs = start_embedded(
            f"sqlite:///{tmp_path / f'acs{len(started)}.sqlite'}", fresh=True, profile=profile
        )
        assert acs.library.strict
        started.append(acs)
        return acs

    yield make
    for acs in started:
        acs.faults.stall_s = 0.0
        acs.stop()


@pytest.fixture
def make_client() -> Iterator[Callable[..., Sip2Client]]:
    made: list[Sip2Client] = []

    def make(acs: RunningAcs, **overrides) -> Sip2Client:
        client = Sip2Client(settings_for(acs, **overrides))
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def hold_next_answer(acs: RunningAcs, command: str = "11") -> None:
    """The library system applies the next `command` at once and holds its answer back."""
    acs.faults.stall_commands = frozenset({command})
    acs.faults.stall_count = 1
    acs.faults.stall_s = 600.0


def settle(acs: RunningAcs, client: Sip2Client) -> None:
    """Release held answers and wait until the library system has read (and, strict, applied)
    every frame the kiosk sent."""
    acs.faults.stall_s = 0.0
    frames = sum(1 for _, direction, _ in client.exchanges if direction == SC_TO_ACS)
    wait_for(lambda: acs.frames_handled >= frames, f"the library system to read {frames} frames")
    client.close()


def sent(client: Sip2Client, command: str, item: str) -> int:
    return sum(
        1
        for _, direction, text in client.exchanges
        if direction == SC_TO_ACS and text.startswith(command) and f"|AB{item}|" in text
    )


# --- defect: a changing request re-sent to a library system that executes the copy ----------


@pytest.mark.parametrize(
    "profile,detection",
    [
        ("no-error-detection", "off"),  # no AY/AZ anywhere
        ("no-error-detection", "auto"),  # the kiosk would use them, the ACS answers without
        ("no-duplicate-rule", "on"),  # AY/AZ, but a repeat is executed again
        ("standard", "on"),  # honours the rule, but this site has not declared it
    ],
)
def test_a_timed_out_checkout_is_in_doubt_not_resent(
    make_acs, make_client, profile, detection
) -> None:
    acs = make_acs(profile)
    client = make_client(acs, error_detection=detection)
    client.connect()
    hold_next_answer(acs)

    with pytest.raises(Sip2LinkError) as info:
        client.request(checkout("LV0001", "30000001"))

    assert info.value.maybe_delivered is True, "the library system may have applied it"
    assert sent(client, "11", "30000001") == 1, "a changing request is not sent twice"
    settle(acs, client)
    assert acs.library.applications("30000001", models.CHECKOUT) == 1


def test_a_timed_out_renewal_is_not_applied_twice(make_acs, make_client) -> None:
    acs = make_acs("no-duplicate-rule")
    client = make_client(acs, error_detection="on")
    client.connect()
    hold_next_answer(acs, "29")

    with pytest.raises(Sip2LinkError) as info:
        client.request(renew("LV0001", "30000009"))

    assert info.value.maybe_delivered is True
    settle(acs, client)
    assert acs.library.applications("30000009", models.RENEW) == 1
    assert acs.library.loan("30000009").renewals == 1


def test_a_link_that_honours_the_declared_rule_gets_the_identical_frame_again(
    make_acs, make_client
) -> None:
    acs = make_acs("standard")
    client = make_client(acs, error_detection="on", duplicate_rule=True, timeout_s=2.0)
    client.connect()
    hold_next_answer(acs)
    worker, result = in_thread(lambda: client.request(checkout("LV0001", "30000001")))
    wait_for(lambda: sent(client, "11", "30000001") == 2, "the byte-identical re-send")
    acs.faults.stall_s = 0.0  # the late answer, then the replay of it, go out now
    worker.join(WAIT_S)

    assert len(result) == 1, result
    assert isinstance(result[0], Message), result
    assert result[0].fixed["ok"] == "1"
    frames = [t for _, d, t in client.exchanges if d == SC_TO_ACS and t.startswith("11")]
    assert frames[0] == frames[1]
    settle(acs, client)
    assert acs.library.applications("30000001", models.CHECKOUT) == 1


def test_a_declared_rule_is_not_trusted_on_a_link_without_error_detection(
    make_acs, make_client
) -> None:
    # "auto" against a library system that answers without AY/AZ: the rule cannot work there.
    acs = make_acs("no-error-detection")
    client = make_client(acs, error_detection="auto", duplicate_rule=True)
    client.connect()
    hold_next_answer(acs)

    with pytest.raises(Sip2LinkError) as info:
        client.request(checkout("LV0001", "30000001"))

    assert info.value.maybe_delivered is True
    settle(acs, client)
    assert acs.library.applications("30000001", models.CHECKOUT) == 1


def test_a_read_only_request_is_still_retried(make_acs, make_client) -> None:
    acs = make_acs("no-error-detection")
    client = make_client(acs, error_detection="off", timeout_s=2.0)
    client.connect()
    hold_next_answer(acs, "17")
    worker, result = in_thread(lambda: client.request(item_info("30000002")))
    wait_for(lambda: sent(client, "17", "30000002") == 2, "the retry of the item information")
    acs.faults.stall_s = 0.0
    worker.join(WAIT_S)
    assert len(result) == 1, result
    assert isinstance(result[0], Message), result
    assert result[0].command == "18"
    assert result[0].get("AB") == "30000002"


# --- defect: a late answer taken for the next request ---------------------------------------


def test_a_late_checkout_answer_is_never_taken_for_the_next_checkout(make_acs, make_client) -> None:
    """The hold-item case: the answer to an earlier checkout arrives while the kiosk waits for
    the answer about an item on hold for someone else; taking it would show that item borrowed."""
    acs = make_acs("no-error-detection")
    acs.library.place_hold("30000003", "LV0002", "DEMO")
    client = make_client(acs, error_detection="off", timeout_s=2.0, retries=1)
    client.connect()
    hold_next_answer(acs)

    with pytest.raises(Sip2LinkError):
        client.request(checkout("LV0001", "30000001"))  # applied, answer held back

    worker, result = in_thread(lambda: client.request(checkout("LV0001", "30000003")))
    wait_for(lambda: sent(client, "11", "30000003") >= 1, "the checkout of the held item")
    acs.faults.stall_s = 0.0  # the late "ok" for 30000001 goes out now
    worker.join(WAIT_S)

    assert len(result) == 1, result
    assert isinstance(result[0], Message), result
    answer = result[0]
    assert answer.get("AB") == "30000003"
    assert answer.fixed["ok"] == "0", "on hold for another patron: refused, not borrowed"
    assert acs.library.loan("30000003") is None


def answering(fake: FakeAcs, *wrong: tuple[str, str], right: bool = True):
    """A script answering a checkout first as if for another request (each `(field, value)`
    replaced in turn), then, when `right`, with its own answer."""

    def script(conn, frame: bytes) -> None:
        if frame[:2] != b"11":
            fake.default_script(conn, frame)
            return
        req = decode(frame)
        for fid, value in wrong:
            conn.reply(with_field(FakeAcs.answer(req), fid, value), req)
        if right:
            conn.reply(FakeAcs.answer(req), req)

    return script


def test_answers_about_another_item_or_patron_are_dropped_and_logged_masked(caplog) -> None:
    """Answers with the right command and sequence but another item (AB) or patron (AA) belong to
    another request: dropped, logged with the card masked, and the client keeps waiting."""
    fake = FakeAcs()
    fake.script = answering(fake, ("AB", "30000099"), ("AA", "LV0999"))
    client = Sip2Client(fake.settings(timeout_s=3.0, retries=0))
    try:
        client.connect()
        with caplog.at_level(logging.INFO, logger="kiosk.sync.sip2.client"):
            answer = client.request(checkout("LV0001", "30000001"))
    finally:
        client.close()
        fake.close()

    assert answer.get("AB") == "30000001"
    assert answer.get("AA") == "LV0001"
    dropped = [r.getMessage() for r in caplog.records if "another request" in r.getMessage()]
    assert len(dropped) == 2
    assert "AB30000099" in dropped[0]
    assert "**0999" in dropped[1]
    assert "LV0999" not in caplog.text


def test_only_answers_for_another_request_run_into_the_timeout_in_doubt() -> None:
    fake = FakeAcs()
    fake.script = answering(fake, ("AB", "30000099"), right=False)
    client = Sip2Client(fake.settings(timeout_s=0.5, retries=0))
    try:
        client.connect()
        with pytest.raises(Sip2LinkError) as info:
            client.request(checkout("LV0001", "30000001"))
    finally:
        client.close()
        fake.close()
    assert info.value.maybe_delivered is True
