"""The SIP2 client against a real, strict, independent ACS: PyPI pysip2 0.1.0 on loopback."""

from __future__ import annotations

import threading
import time
from datetime import datetime

import pytest

from kiosk.sync.sip2.client import Sip2Client, Sip2LoginError
from kiosk.sync.sip2.codec import message, sip_date


def now() -> str:
    return sip_date(datetime.now())


def checkout(patron: str, item: str):
    return message(
        "11",
        sc_renewal_policy="N",
        no_block="N",
        transaction_date=now(),
        nb_due_date=now(),
        fields=[("AO", "DEMO"), ("AA", patron), ("AB", item), ("AC", ""), ("BO", "N")],
    )


def checkin(item: str):
    return message(
        "09",
        no_block="N",
        transaction_date=now(),
        return_date=now(),
        fields=[("AP", "Ieeja"), ("AO", "DEMO"), ("AB", item), ("AC", "")],
    )


def patron_information(patron: str):
    return message(
        "63",
        language="000",
        transaction_date=now(),
        summary="  Y       ",
        fields=[("AO", "DEMO"), ("AA", patron), ("AC", ""), ("AD", ""), ("BP", "1"), ("BQ", "20")],
    )


def wait_until(predicate, timeout: float = 5.0) -> bool:
    """Wait for a condition with a bound (a short Event wait between checks, never a bare sleep)."""
    pause = threading.Event()
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            return False
        pause.wait(0.01)
    return True


@pytest.fixture
def client(pysip2_acs):
    c = Sip2Client(pysip2_acs.settings())
    yield c
    c.close()


def test_login_and_capabilities(client):
    status = client.connect()

    assert status.online and status.checkin_ok and status.checkout_ok
    assert status.renewal_ok  # pysip2 sets it because a 29 route exists
    assert status.offline_ok and status.institution_id == "DEMO"
    assert status.library_name == "Demo bibliotēka" and status.terminal_location == "Ieeja"
    assert {"11", "09", "29", "63", "17", "23", "35", "93", "99"} <= status.supported
    assert not {"37", "15", "65", "19"} & status.supported
    assert status.timeout_s == 3.0 and status.retries == 3
    assert client.acs_status == status and client.connected
    assert status.to_json()["supported"] == sorted(status.supported)


def test_wrong_password_is_a_login_error(pysip2_acs):
    c = Sip2Client(pysip2_acs.settings(password="wrong"))
    with pytest.raises(Sip2LoginError):
        c.connect()
    assert not c.connected


@pytest.mark.parametrize("detection", ["on", "auto", "off"])
def test_checkout_checkin_and_patron_information_with_latvian_titles(pysip2_acs, detection):
    c = Sip2Client(pysip2_acs.settings(error_detection=detection))
    try:
        c.connect()
        out = c.request(checkout("LV0001", "30000001"))
        info = c.request(patron_information("LV0001"))
        back = c.request(checkin("30000001"))
    finally:
        c.close()

    assert out.command == "12" and out.fixed["ok"] == "1" and out.fixed["desensitize"] == "Y"
    assert out.get("AJ") == "Zaļā grāmata" and out.get("AH")
    assert info.get("AE") == "Anna Bērziņa" and "30000001" in info.get_all("AU")
    assert back.fixed["ok"] == "1" and back.get("AJ") == "Zaļā grāmata"
    assert back.get("AQ") == "Pieaugušo nodaļa"
    assert pysip2_acs.loans.get("30000001") is None
    if detection == "off":
        assert out.checksum is None
    else:
        assert out.checksum_ok is True


def test_cp1257_connection_round_trips_latvian_text(make_pysip2_acs):
    acs = make_pysip2_acs(encoding="cp1257")
    c = Sip2Client(acs.settings())
    try:
        c.connect()
        status = c.acs_status
        out = c.request(checkout("LV0001", "30000002"))
    finally:
        c.close()
    assert status.library_name == "Demo bibliotēka"
    assert out.get("AJ") == "Dvēseļu putenis" and out.checksum_ok is True


def test_second_checkout_of_the_same_item_is_reported_as_renewal(client):
    client.connect()
    first = client.request(checkout("LV0001", "30000003"))
    second = client.request(checkout("LV0001", "30000003"))
    assert first.fixed["renewal_ok"] == "N" and second.fixed["renewal_ok"] == "Y"


def test_retransmit_after_timeout_is_not_executed_twice(pysip2_acs):
    release = threading.Event()
    default = pysip2_acs._checkout

    def slow_checkout(req, ctx):
        release.wait(5)  # answer only after the client has retransmitted
        return default(req, ctx)

    pysip2_acs.handlers["11"] = slow_checkout
    # pysip2 honours the duplicate rule; the site declares it, so the copy may go out.
    c = Sip2Client(pysip2_acs.settings(timeout_s=0.5, retries=3, duplicate_rule=True))
    c.connect()
    result: dict = {}

    def run():
        try:
            result["reply"] = c.request(checkout("LV0001", "30000007"))
        except Exception as exc:  # surfaced by the assertions below
            result["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    try:
        sent = lambda: [t for _, d, t in list(c.exchanges) if d == "SC→ACS" and t.startswith("11")]  # noqa: E731
        assert wait_until(lambda: len(sent()) >= 2)
    finally:
        release.set()
        worker.join(10)
    c.close()

    assert "error" not in result, result.get("error")
    assert result["reply"].fixed["ok"] == "1"
    frames = sent()
    assert len(frames) >= 2 and len(set(frames)) == 1  # byte-identical retransmissions
    assert pysip2_acs.executed.count(("11", "LV0001", "30000007")) == 1


def test_a_frame_the_acs_cannot_verify_gets_96_and_is_resent(pysip2_acs, client):
    client.connect()
    real_send = client._send
    state = {"corrupted": False}

    def send(data: bytes) -> None:
        if data.startswith(b"11") and not state["corrupted"]:
            state["corrupted"] = True
            body = data.rstrip(b"\r")
            data = body[:-1] + (b"0" if body[-1:] != b"0" else b"1") + b"\r"
        real_send(data)

    client._send = send
    reply = client.request(checkout("LV0002", "30000008"))

    assert reply.fixed["ok"] == "1"
    received = [t for _, d, t in client.exchanges if d == "ACS→SC"]
    assert "96AZFEF6" in received
    assert pysip2_acs.executed.count(("11", "LV0002", "30000008")) == 1


def test_a_garbled_answer_gets_97_and_pysip2_repeats_it(pysip2_acs, client):
    client.connect()
    real_read = client._read_frame
    state = {"garbled": False}

    def read(deadline: float) -> bytes:
        frame = real_read(deadline)
        if frame.startswith(b"10") and not state["garbled"]:
            state["garbled"] = True
            return frame[:-1] + (b"0" if frame[-1:] != b"0" else b"1")
        return frame

    client._read_frame = read
    client.request(checkout("LV0001", "30000009"))
    reply = client.request(checkin("30000009"))

    assert reply.fixed["ok"] == "1" and reply.checksum_ok
    sent = [t for _, d, t in client.exchanges if d == "SC→ACS"]
    assert sent[-1] == "97AZFEF5"
    assert pysip2_acs.executed.count(("09", "", "30000009")) == 1
