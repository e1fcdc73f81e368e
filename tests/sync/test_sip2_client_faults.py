"""Fault tests for the SIP2 client against the scriptable fake ACS: garbage, stalls, resends, drops."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from kiosk.config import Sip2Section
from kiosk.core.ports import ManualClock
from kiosk.sync.sip2.client import Sip2Client, Sip2LoginError
from kiosk.sync.sip2.codec import Sip2LinkError, decode, encode, message
from tests.sync.fake_acs import D, FakeAcs, FakeConnection


def item_info(item: str = "30000001"):
    return message("17", transaction_date=D, fields=[("AO", "DEMO"), ("AB", item), ("AC", "")])


def checkout(item: str = "30000001"):
    return message(
        "11",
        sc_renewal_policy="N",
        no_block="N",
        transaction_date=D,
        nb_due_date=D,
        fields=[("AO", "DEMO"), ("AA", "LV0001"), ("AB", item), ("AC", ""), ("AD", "1234")],
    )


@pytest.fixture
def fake() -> Iterator[FakeAcs]:
    acs = FakeAcs()
    yield acs
    acs.close()


@pytest.fixture
def client_for(fake: FakeAcs):
    made: list[Sip2Client] = []

    def make(**overrides) -> Sip2Client:
        c = Sip2Client(fake.settings(**overrides))
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def corrupt(data: bytes) -> bytes:
    """The same frame with its last checksum digit changed."""
    body = data.rstrip(b"\r\n")
    last = b"0" if body[-1:] != b"0" else b"1"
    return body[:-1] + last + b"\r"


def script_for(fake: FakeAcs, command: str, handler):
    """A script that handles `command` with `handler(conn, req, frame)` and answers the rest normally."""

    def script(conn: FakeConnection, frame: bytes) -> None:
        if frame[:2] == command.encode():
            handler(conn, decode(frame), frame)
        else:
            fake.default_script(conn, frame)

    return script


def log_in_then_drop_the_idle_link(fake: FakeAcs, client: Sip2Client) -> None:
    """The client logs in, then the ACS closes that connection while it is idle."""
    client.connect()
    fake.connections[0].close()
    fake.wait_for(lambda: fake.connections[0].closed)


def test_bad_checksum_answer_gets_a_97_and_the_resent_answer_is_used(fake, client_for):
    def handler(conn, req, frame):
        good = encode(FakeAcs.answer(req), sequence=req.sequence)
        conn.state["last"] = good
        conn.send(corrupt(good))

    fake.script = script_for(fake, "17", handler)
    client = client_for()
    client.connect()

    reply = client.request(item_info())

    assert reply.command == "18"
    assert reply.get("AJ") == "Zaļā grāmata"
    assert reply.checksum_ok
    assert fake.frames("97") == [b"97AZFEF5"]
    assert len(fake.frames("17")) == 1


def test_answers_that_never_verify_exhaust_the_budget(fake, client_for):
    def handler(conn, req, frame):
        conn.state["last"] = corrupt(encode(FakeAcs.answer(req), sequence=req.sequence))
        conn.send(conn.state["last"])

    fake.script = script_for(fake, "17", handler)
    client = client_for(retries=2)
    client.connect()

    with pytest.raises(Sip2LinkError) as info:
        client.request(item_info())

    assert info.value.maybe_delivered is True
    assert len(fake.frames("97")) == 2
    assert len(fake.frames("17")) == 1


def test_crlf_answers_are_read_one_after_another(fake, client_for):
    def script(conn, frame):
        req = decode(frame)
        conn.reply(FakeAcs.answer(req), req, terminator="\r\n")

    fake.script = script
    client = client_for()
    status = client.connect()
    replies = [client.request(item_info(f"3000000{i}")) for i in range(1, 5)]

    assert status.library_name == "Fake bibliotēka"
    assert [r.get("AB") for r in replies] == [f"3000000{i}" for i in range(1, 5)]


def test_answers_without_trailer_pass_in_auto_mode_and_fail_in_on_mode(fake, client_for):
    def script(conn, frame):
        req = decode(frame)
        ans = FakeAcs.answer(req)
        if ans is not None:  # a 97 gets silence
            conn.reply(ans, req, checksum=False)

    fake.script = script
    auto = client_for(error_detection="auto")
    auto.connect()
    assert auto.request(item_info()).get("AJ") == "Zaļā grāmata"
    auto.close()

    strict = client_for(error_detection="on", retries=1)
    with pytest.raises(Sip2LinkError):
        strict.connect()
    assert b"97AZFEF5" in fake.frames("97")


def test_error_detection_off_sends_no_trailer_and_ignores_checksums(fake, client_for):
    def script(conn, frame):
        req = decode(frame)
        conn.send(corrupt(encode(FakeAcs.answer(req), sequence=4)))

    fake.script = script
    client = client_for(error_detection="off")
    client.connect()
    reply = client.request(item_info())

    assert reply.command == "18"
    assert all(b"AZ" not in f for f in fake.frames())


def test_disconnect_mid_reply_to_a_read_only_request_reconnects_and_retries(fake, client_for):
    def handler(conn, req, frame):
        if conn.index == 0:
            conn.send(b"18030101" + D.encode() + b"AB300")  # half an answer
            conn.close()
        else:
            conn.reply(FakeAcs.answer(req), req)

    fake.script = script_for(fake, "17", handler)
    client = client_for()
    client.connect()

    reply = client.request(item_info())

    assert reply.get("AJ") == "Zaļā grāmata"
    assert len(fake.connections) == 2
    second = [f[:2] for i, f in fake.received if i == 1]
    assert second == [b"93", b"99", b"17"]


def test_disconnect_mid_reply_to_a_checkout_leaves_it_in_doubt(fake, client_for):
    def handler(conn, req, frame):
        conn.send(b"121NNY" + D.encode())
        conn.close()

    fake.script = script_for(fake, "11", handler)
    client = client_for()
    client.connect()

    with pytest.raises(Sip2LinkError) as info:
        client.request(checkout())

    assert info.value.maybe_delivered is True
    assert "may have applied" in str(info.value)
    assert len(fake.frames("11")) == 1  # never blindly re-sent
    assert client.connected  # the link is back for the next transaction


def test_a_stalled_acs_gets_the_identical_frame_again_then_the_client_gives_up(fake, client_for):
    fake.script = script_for(
        fake, "11", lambda conn, req, frame: None
    )  # a 30-second (endless) stall
    # The site declared that its ACS honours the duplicate rule, and the link uses AY/AZ.
    client = client_for(timeout_s=0.3, retries=1, duplicate_rule=True)
    client.connect()

    started = time.monotonic()
    with pytest.raises(Sip2LinkError) as info:
        client.request(checkout())
    elapsed = time.monotonic() - started

    assert info.value.maybe_delivered is True
    fake.wait_for(lambda: len(fake.frames("11")) == 2)
    frames = fake.frames("11")
    assert len(frames) == 2
    assert frames[0] == frames[1]
    assert elapsed < 5  # bounded by its own timeout x (1 + retries), nowhere near 30 s


def test_a_stalled_checkout_is_in_doubt_at_once_without_the_duplicate_rule(fake, client_for):
    fake.script = script_for(fake, "11", lambda conn, req, frame: None)
    client = client_for(timeout_s=0.3, retries=2)
    client.connect()

    with pytest.raises(Sip2LinkError) as info:
        client.request(checkout())

    assert info.value.maybe_delivered is True
    assert "duplicate rule" in str(info.value)
    assert len(fake.frames("11")) == 1
    assert not client.connected, "the link that may still carry the late answer is closed"


def test_garbage_bytes_are_answered_with_97(fake, client_for):
    def handler(conn, req, frame):
        conn.state["last"] = encode(FakeAcs.answer(req), sequence=req.sequence)
        conn.send(b"\x00\xff\xfegarbage\x80\r")

    fake.script = script_for(fake, "17", handler)
    client = client_for()
    client.connect()

    assert client.request(item_info()).command == "18"
    assert len(fake.frames("97")) == 1


def test_96_makes_the_client_resend_the_identical_frame(fake, client_for):
    def handler(conn, req, frame):
        if not conn.state.get("asked"):
            conn.state["asked"] = True
            conn.send(b"96AZFEF6\r")
        else:
            conn.reply(FakeAcs.answer(req), req)

    fake.script = script_for(fake, "11", handler)
    client = client_for()
    client.connect()

    reply = client.request(checkout())

    assert reply.fixed["ok"] == "1"
    first, second = fake.frames("11")
    assert first == second


@pytest.mark.parametrize("command,succeeds", [("17", True), ("11", False)])
def test_96_after_our_97_means_the_link_failed_so_reconnect_and_log_in(
    fake, client_for, command, succeeds
):
    def handler(conn, req, frame):
        if conn.index == 0:
            conn.send(corrupt(encode(FakeAcs.answer(req), sequence=req.sequence)))
            conn.state["last"] = b"96AZFEF6\r"  # the 97 gets a 96
        else:
            conn.reply(FakeAcs.answer(req), req)

    fake.script = script_for(fake, command, handler)
    client = client_for()
    client.connect()
    request = item_info() if command == "17" else checkout()

    if succeeds:
        assert client.request(request).command == "18"
    else:
        with pytest.raises(Sip2LinkError) as info:
            client.request(request)
        assert info.value.maybe_delivered is True

    assert fake.frames("97") == [b"97AZFEF5"]
    assert len(fake.connections) == 2
    again = [f[:2] for i, f in fake.received if i == 1]
    assert again[:2] == [b"93", b"99"]
    assert again.count(command.encode()) == (1 if succeeds else 0)


def test_sequence_numbers_wrap_from_9_to_0(fake, client_for):
    client = client_for()
    client.connect()
    for _ in range(12):
        client.request(item_info())

    seqs = [decode(f).sequence for f in fake.frames()]
    assert seqs == [(seqs[0] + i) % 10 for i in range(len(seqs))]
    assert any(a == 9 and b == 0 for a, b in zip(seqs, seqs[1:], strict=False))


def test_an_answer_with_the_wrong_sequence_is_discarded(fake, client_for):
    def handler(conn, req, frame):
        stale = message(
            "18",
            circulation_status="01",
            security_marker="00",
            fee_type="01",
            transaction_date=D,
            fields=[("AB", "stale"), ("AJ", "old")],
        )
        conn.reply(stale, sequence=(req.sequence + 5) % 10)
        conn.reply(FakeAcs.answer(req), req)

    fake.script = script_for(fake, "17", handler)
    client = client_for()
    client.connect()

    assert client.request(item_info()).get("AB") == "30000001"


def test_a_huge_patron_information_answer_is_read_whole(fake, client_for):
    items = [
        f"3{i:07d} Ļoti gara grāmatas nosaukuma rinda, kas aizpilda vietu" for i in range(2000)
    ]

    def handler(conn, req, frame):
        ans = FakeAcs.answer(req)
        ans.fields.extend(("AU", i) for i in items)
        conn.reply(ans, req)

    fake.script = script_for(fake, "63", handler)
    client = client_for(timeout_s=5.0)
    client.connect()
    req = message(
        "63",
        language="000",
        transaction_date=D,
        summary="  Y       ",
        fields=[("AO", "DEMO"), ("AA", "LV0001"), ("AC", ""), ("AD", "")],
    )

    reply = client.request(req)

    assert reply.get_all("AU") == items
    assert sum(len(i.encode()) for i in items) > 100_000


def test_idle_connection_closed_by_the_acs_is_reopened_before_sending(fake, client_for):
    client = client_for()
    log_in_then_drop_the_idle_link(fake, client)

    reply = client.request(checkout())

    assert reply.fixed["ok"] == "1"
    assert len(fake.frames("11")) == 1
    assert [f[:2] for i, f in fake.received if i == 1] == [b"93", b"99", b"11"]


@pytest.mark.parametrize("stalled", ["93", "99"])
def test_unanswered_relogin_after_an_idle_close_leaves_the_request_not_delivered(
    fake, client_for, stalled
):
    # The ACS dropped the idle link; on the new connection it never answers the login (or
    # status). The checkout was never written, so it must not come back as possibly applied.
    def handler(conn, req, frame):
        if conn.index == 0:
            conn.reply(FakeAcs.answer(req), req)

    fake.script = script_for(fake, stalled, handler)
    client = client_for(timeout_s=0.2, retries=0)
    log_in_then_drop_the_idle_link(fake, client)

    with pytest.raises(Sip2LinkError) as info:
        client.request(checkout())

    assert info.value.maybe_delivered is False
    assert "SIP2 11 not sent" in str(info.value)
    assert fake.frames("11") == []
    assert fake.wait_for(lambda: len(fake.connections) == 2)
    assert stalled.encode() in [f[:2] for i, f in fake.received if i == 1]
    assert not client.connected


@pytest.mark.parametrize("stalled", ["93", "99"])
def test_unanswered_login_of_the_first_connect_leaves_the_request_not_delivered(
    fake, client_for, stalled
):
    fake.script = script_for(fake, stalled, lambda conn, req, frame: None)
    client = client_for(timeout_s=0.2, retries=0)

    with pytest.raises(Sip2LinkError) as info:
        client.request(checkout())

    assert info.value.maybe_delivered is False
    assert fake.frames("11") == []


def test_request_that_went_out_unanswered_after_a_relogin_stays_in_doubt(fake, client_for):
    # The reconnect succeeds, then the checkout itself is written and gets no answer.
    fake.script = script_for(fake, "11", lambda conn, req, frame: None)
    client = client_for(timeout_s=0.2, retries=0)
    log_in_then_drop_the_idle_link(fake, client)

    with pytest.raises(Sip2LinkError) as info:
        client.request(checkout())

    assert info.value.maybe_delivered is True
    assert fake.wait_for(lambda: len(fake.frames("11")) == 1)


def test_refused_connection_backs_off_without_hammering():
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens here now
    clock = ManualClock()
    client = Sip2Client(
        Sip2Section(host="127.0.0.1", port=port, username="kiosk", timeout_s=0.5), clock=clock
    )

    with pytest.raises(Sip2LinkError) as first:
        client.request(item_info())
    with pytest.raises(Sip2LinkError) as second:
        client.request(item_info())

    assert first.value.maybe_delivered is False
    assert "cannot connect" in str(first.value)
    assert "next attempt" in str(second.value)
    clock.advance(1.5)
    with pytest.raises(Sip2LinkError) as third:
        client.request(item_info())
    assert "cannot connect" in str(third.value)


def test_login_refused(fake, client_for):
    def handler(conn, req, frame):
        conn.reply(message("94", ok="0"), req)

    fake.script = script_for(fake, "93", handler)
    client = client_for()
    with pytest.raises(Sip2LoginError, match="username"):
        client.connect()
    assert not client.connected


@pytest.mark.parametrize("stalled", ["93", "99"])
def test_a_stalled_login_or_status_leaves_no_open_socket(fake, client_for, stalled):
    fake.script = script_for(fake, stalled, lambda conn, req, frame: None)
    client = client_for(timeout_s=0.2, retries=0)
    with pytest.raises(Sip2LinkError):
        client.connect()
    assert not client.connected
    # the ACS sees the connection closed, not a session left hanging
    assert fake.wait_for(lambda: fake.connections and fake.connections[0].closed)


def test_keepalive_is_sent_only_when_the_link_was_quiet(fake):
    clock = ManualClock()
    client = Sip2Client(fake.settings(keepalive_s=240.0), clock=clock)
    try:
        client.connect()
        client.keepalive_if_due()
        assert len(fake.frames("99")) == 1
        clock.advance(239)
        client.keepalive_if_due()
        assert len(fake.frames("99")) == 1
        clock.advance(2)
        client.keepalive_if_due()
        assert len(fake.frames("99")) == 2
    finally:
        client.close()


def test_wire_log_masks_passwords_and_card_numbers(fake, client_for):
    client = client_for(password="s3cret", terminal_password="termpw")
    client.connect()
    req = checkout()
    req.fields[3] = ("AC", "termpw")
    client.request(req)

    text = "\n".join(t for _, _, t in client.exchanges)
    assert "s3cret" not in text
    assert "termpw" not in text
    # The answer carries the fake's clock (HHMMSS), where "1234" may turn up by chance:
    # what must not be there is the PIN field's value.
    assert "|AD1234" not in text
    assert "|AD" in text, "the PIN field is logged, masked"
    assert "LV0001" not in text
    assert "AA**0001" in text
    assert "|CO|" in text
    assert "|AD|" in text
    directions = {d for _, d, _ in client.exchanges}
    assert directions == {"SC→ACS", "ACS→SC"}


def test_an_answer_that_never_ends_is_cut_off_at_the_frame_guard(fake, client_for):
    def handler(conn, req, frame):
        chunk = b"x" * 65536
        for _ in range(20):  # 1.3 MB and no CR
            conn.send(chunk)

    fake.script = script_for(fake, "17", handler)
    client = client_for(retries=0, timeout_s=5.0)
    client.connect()

    with pytest.raises(Sip2LinkError, match="no CR within") as info:
        client.request(item_info())
    assert info.value.maybe_delivered is True
