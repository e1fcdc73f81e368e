"""The demo library system over a real loopback socket: raw SIP2 frames in, decoded replies out."""

from __future__ import annotations

import socket
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk import config
from kiosk.core.ports import ManualClock
from kiosk.sync.acs import models
from kiosk.sync.acs.library import AcsError
from kiosk.sync.acs.server import (
    RunningAcs,
    _CloseAfter,
    _Connection,
    build_from_config,
    start_embedded,
)
from kiosk.sync.sip2.codec import Message, checksum, decode, encode, message

T = "20261125    100000"
WAIT_S = 5.0


class Wire:
    """A raw SIP2 client: writes frames, reads replies up to CR with a bounded wait."""

    def __init__(self, acs: RunningAcs, encoding: str = "utf-8") -> None:
        self.sock = socket.create_connection((acs.host, acs.port), timeout=WAIT_S)
        self.buf = b""
        self.encoding = encoding
        self.seq = 0

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_raw(self, timeout: float = WAIT_S) -> bytes:
        self.sock.settimeout(timeout)
        while b"\r" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buf += chunk
        frame, _, self.buf = self.buf.partition(b"\r")
        return frame + b"\r"

    def frame(self, msg: Message, *, trailer: bool = True) -> bytes:
        data = encode(msg, encoding=self.encoding, sequence=self.seq, error_detection=trailer)
        self.seq = (self.seq + 1) % 10
        return data

    def call(self, msg: Message, *, trailer: bool = True) -> Message:
        self.send_raw(self.frame(msg, trailer=trailer))
        return decode(self.read_raw(), encoding=self.encoding)

    def login(self, user: str = "kiosk", password: str = "demo") -> Message:
        return self.call(
            message(
                "93", uid_algorithm="0", pwd_algorithm="0", fields=[("CN", user), ("CO", password)]
            )
        )

    def closed(self) -> bool:
        self.sock.settimeout(WAIT_S)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()


def checkout(
    patron: str,
    item: str,
    *,
    no_block: str = "N",
    tdate: str = T,
    nb_due: str = T,
    extra: tuple = (),
) -> Message:
    fields = [("AO", "DEMO"), ("AA", patron), ("AB", item), ("AC", ""), *extra]
    return message(
        "11",
        sc_renewal_policy="Y",
        no_block=no_block,
        transaction_date=tdate,
        nb_due_date=nb_due,
        fields=fields,
    )


def checkin(
    item: str, *, no_block: str = "N", tdate: str = T, return_date: str = T, location: str = "DEMO"
) -> Message:
    fields = [("AP", location), ("AO", "DEMO"), ("AB", item), ("AC", "")]
    return message(
        "09", no_block=no_block, transaction_date=tdate, return_date=return_date, fields=fields
    )


def patron_info(patron: str, summary: str, start: str = "", end: str = "") -> Message:
    fields = [("AO", "DEMO"), ("AA", patron), ("AC", ""), ("AD", "")]
    if start:
        fields += [("BP", start), ("BQ", end)]
    return message(
        "63", language="001", transaction_date=T, summary=summary.ljust(10), fields=fields
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 25, 10, 0, 0))


@pytest.fixture
def acs(tmp_path, clock) -> RunningAcs:
    running = start_embedded(f"sqlite:///{tmp_path / 'acs.sqlite'}", fresh=True, clock=clock)
    yield running
    running.stop()


@pytest.fixture
def wire(acs: RunningAcs) -> Wire:
    w = Wire(acs)
    assert w.login().fixed["ok"] == "1"
    yield w
    w.close()


# --- login and status -------------------------------------------------------------------------


def test_login_is_required_before_anything_else(acs: RunningAcs) -> None:
    w = Wire(acs)
    reply = w.call(patron_info("LV0001", "Y"))
    assert reply.command == "94" and reply.fixed["ok"] == "0"
    assert w.closed()


def test_wrong_password_is_refused_and_the_connection_closed(acs: RunningAcs) -> None:
    w = Wire(acs)
    assert w.login(password="wrong").fixed["ok"] == "0"
    assert w.closed()


def test_sc_status_reports_what_the_demo_supports(wire: Wire) -> None:
    reply = wire.call(
        message("99", status_code="0", max_print_width="048", protocol_version="2.00")
    )
    assert reply.command == "98" and reply.checksum_ok
    assert reply.fixed["online_status"] == "Y" and reply.fixed["offline_ok"] == "Y"
    assert reply.fixed["date_time_sync"] == "20261125    100000"
    assert (
        reply.get("BX") == "Y" * 16
        and reply.get("AO") == "DEMO"
        and reply.get("AM") == "Demo bibliotēka"
    )


def test_sc_status_from_an_older_protocol_is_answered_off_line(wire: Wire) -> None:
    reply = wire.call(
        message("99", status_code="0", max_print_width="048", protocol_version="1.00")
    )
    assert reply.fixed["online_status"] == "N" and "2.00" in reply.get("AF")


def test_login_not_required_when_not_configured(tmp_path) -> None:
    with start_embedded(f"sqlite:///{tmp_path / 'open.sqlite'}", login=None) as acs:
        w = Wire(acs)
        assert (
            w.call(
                message("17", transaction_date=T, fields=[("AO", "DEMO"), ("AB", "30000001")])
            ).command
            == "18"
        )
        w.close()


# --- error detection, resend, duplicates ------------------------------------------------------


def test_bad_checksum_gets_exactly_96(wire: Wire) -> None:
    frame = bytearray(wire.frame(checkout("LV0001", "30000001")))
    frame[-2:-1] = b"0" if frame[-2:-1] != b"0" else b"1"
    wire.send_raw(bytes(frame))
    assert wire.read_raw() == b"96AZFEF6\r"
    # The connection stays usable.
    assert (
        wire.call(
            message("99", status_code="0", max_print_width="048", protocol_version="2.00")
        ).command
        == "98"
    )


def test_97_first_gets_96_and_later_the_last_response(acs: RunningAcs) -> None:
    w = Wire(acs)
    w.send_raw(b"97AZFEF5\r")
    assert w.read_raw() == b"96AZFEF6\r"
    w.send_raw(
        w.frame(
            message(
                "93", uid_algorithm="0", pwd_algorithm="0", fields=[("CN", "kiosk"), ("CO", "demo")]
            )
        )
    )
    w.read_raw()
    w.send_raw(w.frame(checkout("LV0001", "30000001")))
    first = w.read_raw()
    w.send_raw(b"97AZFEF5\r")
    assert w.read_raw() == first
    assert acs.library.applied("30000001", models.CHECKOUT) == 1
    w.close()


def test_97_after_a_96_resends_the_96(wire: Wire) -> None:
    wire.send_raw(b"11garbageAZ0000\r")
    assert wire.read_raw() == b"96AZFEF6\r"
    wire.send_raw(b"97AZFEF5\r")
    assert wire.read_raw() == b"96AZFEF6\r"


def test_duplicate_message_is_answered_without_a_second_application(
    acs: RunningAcs, wire: Wire
) -> None:
    frame = wire.frame(checkout("LV0001", "30000001"))
    wire.send_raw(frame)
    first = wire.read_raw()
    wire.send_raw(frame)
    second = wire.read_raw()
    assert second == first and decode(first).fixed["ok"] == "1"
    assert decode(first).fixed["renewal_ok"] == "N"
    assert acs.library.applied("30000001", models.CHECKOUT) == 1
    assert acs.library.loan("30000001").renewals == 0


def test_strict_applies_a_resend_on_a_new_connection_again(acs: RunningAcs, wire: Wire) -> None:
    # The kiosk lost the answer, reconnected and re-sent the transaction with its original date:
    # a library system without repeat detection renews.
    assert wire.call(checkout("LV0001", "30000001")).fixed["ok"] == "1"
    wire.close()
    again = Wire(acs)
    again.login()
    reply = again.call(checkout("LV0001", "30000001"))
    assert reply.fixed["ok"] == "1" and reply.fixed["renewal_ok"] == "Y"
    assert acs.library.applications("30000001", models.CHECKOUT) == 2
    again.close()


def test_repeat_guard_does_not_apply_a_resend_on_a_new_connection(tmp_path, clock) -> None:
    guarded = start_embedded(
        f"sqlite:///{tmp_path / 'guarded.sqlite'}", fresh=True, clock=clock, strict=False
    )
    try:
        first = Wire(guarded)
        first.login()
        assert first.call(checkout("LV0001", "30000001")).fixed["ok"] == "1"
        first.close()
        again = Wire(guarded)
        again.login()
        reply = again.call(checkout("LV0001", "30000001"))
        assert reply.fixed["ok"] == "1" and reply.fixed["renewal_ok"] == "N"
        assert guarded.library.applications("30000001", models.CHECKOUT) == 1
        again.close()
    finally:
        guarded.stop()


def test_same_checkout_with_a_new_sequence_and_date_is_a_renewal(
    acs: RunningAcs, wire: Wire
) -> None:
    wire.call(checkout("LV0001", "30000001"))
    reply = wire.call(checkout("LV0001", "30000001", tdate="20261125    100500"))
    assert reply.fixed["renewal_ok"] == "Y"
    assert acs.library.loan("30000001").renewals == 1


def test_reply_echoes_the_sequence_and_verifies(wire: Wire) -> None:
    wire.seq = 7
    wire.send_raw(
        wire.frame(message("99", status_code="0", max_print_width="048", protocol_version="2.00"))
    )
    raw = wire.read_raw()
    reply = decode(raw)
    assert reply.sequence == 7 and reply.checksum_ok
    body = raw[:-5]
    assert checksum(body) == raw[-5:-1].decode()


def test_request_without_trailer_gets_a_reply_without_trailer(wire: Wire) -> None:
    wire.send_raw(
        wire.frame(
            message("99", status_code="0", max_print_width="048", protocol_version="2.00"),
            trailer=False,
        )
    )
    raw = wire.read_raw()
    assert raw.startswith(b"98") and b"AY" not in raw and b"AZ" not in raw


def test_unknown_command_gets_no_reply(wire: Wire) -> None:
    wire.send_raw(b"XX123AY1AZ" + checksum(b"XX123AY1AZ").encode() + b"\r")
    wire.send_raw(
        wire.frame(message("99", status_code="0", max_print_width="048", protocol_version="2.00"))
    )
    assert wire.read_raw().startswith(b"98"), "the first reply is the 98: nothing came for XX"


def test_crlf_and_pipelined_requests_are_all_answered(wire: Wire) -> None:
    a = wire.frame(message("99", status_code="0", max_print_width="048", protocol_version="2.00"))
    b = wire.frame(message("17", transaction_date=T, fields=[("AO", "DEMO"), ("AB", "30000003")]))
    wire.send_raw(a[:-1] + b"\r\n" + b[:-1] + b"\r\n")
    assert decode(wire.read_raw()).command == "98"
    reply = decode(wire.read_raw())
    assert reply.command == "18" and reply.get("AJ") == "The Hobbit"


# --- circulation over the wire ----------------------------------------------------------------


def test_latvian_and_russian_titles_round_trip_in_utf8(wire: Wire) -> None:
    out = wire.call(checkout("LV0001", "30000004"))
    assert out.checksum_ok and out.checksum_variant == "bytes"
    assert out.fixed["ok"] == "1" and out.fixed["desensitize"] == "Y"
    assert out.get("AJ") == "Мастер и Маргарита" and out.get("AH") == "20261216    235959"
    back = wire.call(checkin("30000001"))
    assert back.get("AJ") == "Zaļā grāmata" and back.get("AQ") == "Pieaugušo nodaļa"


def test_refused_checkout_carries_the_reason(wire: Wire) -> None:
    out = wire.call(checkout("LV0001", "30000006"))
    assert out.fixed["ok"] == "0" and out.fixed["desensitize"] == "N"
    assert "on hold for another patron" in out.get("AF")


def test_checkin_hold_routing_fields(acs: RunningAcs, wire: Wire) -> None:
    here = wire.call(checkin("30000006"))
    assert (
        here.fixed["ok"] == "1" and here.fixed["alert"] == "Y" and here.fixed["resensitize"] == "Y"
    )
    assert here.get("CV") == "01" and here.get("CY") == "LV0004" and here.get("DA") == "Иван Петров"
    assert here.get("CL") == "1" and not here.has("CT")
    acs.library.place_hold("30000008", "LV0001", "FILIALE")
    other = wire.call(checkin("30000008"))
    assert other.get("CV") == "02" and other.get("CT") == "FILIALE" and other.get("CY") == "LV0001"
    assert other.get("AA") == "LV0002", "the patron who had it"
    plain = wire.call(checkin("30000010"))
    assert plain.fixed["ok"] == "1" and plain.fixed["alert"] == "N" and not plain.has("CV")
    assert plain.get("CL") == "2" and "not on loan" in plain.get("AF")


def test_no_block_replays_apply_the_given_dates(acs: RunningAcs, wire: Wire) -> None:
    # LV0003's card is lost: an online checkout is refused, an offline replay is not.
    assert wire.call(checkout("LV0003", "30000002")).fixed["ok"] == "0"
    out = wire.call(
        checkout(
            "LV0003",
            "30000002",
            no_block="Y",
            tdate="20261120    153000",
            nb_due="20261204    235959",
        )
    )
    assert out.fixed["ok"] == "1" and out.get("AH") == "20261204    235959"
    assert acs.library.loan("30000002").due == datetime(2026, 12, 4, 23, 59, 59)
    back = wire.call(
        checkin(
            "30000002", no_block="Y", tdate="20261122    090000", return_date="20261121    180000"
        )
    )
    assert back.fixed["ok"] == "1"
    tx = acs.library.transactions("30000002")
    assert [(t.kind, t.no_block, t.transaction_date) for t in tx] == [
        ("checkout", True, "20261120    153000"),
        ("checkin", True, "20261122    090000"),
    ]
    assert tx[1].effective == datetime(2026, 11, 21, 18, 0, 0)


def test_fee_acknowledgement_over_the_wire(acs: RunningAcs, wire: Wire) -> None:
    acs.library.set_rental_fee("30000010", "0.80")
    first = wire.call(checkout("LV0001", "30000010", extra=(("BO", "N"),)))
    assert (
        first.fixed["ok"] == "0"
        and first.get("BV") == "0.80"
        and first.get("BT") == "06"
        and first.get("BH") == "EUR"
    )
    again = wire.call(
        checkout("LV0001", "30000010", tdate="20261125    100010", extra=(("BO", "Y"),))
    )
    assert again.fixed["ok"] == "1" and again.get("BV") == "0.80"
    assert str(acs.library.fee_total("LV0001")) == "0.80"


def test_cancel_checkout_over_the_wire(acs: RunningAcs, wire: Wire) -> None:
    wire.call(checkout("LV0001", "30000001"))
    out = wire.call(
        checkout("LV0001", "30000001", tdate="20261125    100001", extra=(("BI", "Y"),))
    )
    assert out.fixed["ok"] == "1" and out.fixed["desensitize"] == "N"
    assert acs.library.loans_of("LV0001") == ["30000009"]


def test_renew_and_renew_all(acs: RunningAcs, wire: Wire) -> None:
    renew = message(
        "29",
        third_party_allowed="N",
        no_block="N",
        transaction_date=T,
        nb_due_date=T,
        fields=[("AO", "DEMO"), ("AA", "LV0001"), ("AB", "30000009")],
    )
    out = wire.call(renew)
    assert (
        out.command == "30"
        and out.fixed["ok"] == "1"
        and out.fixed["renewal_ok"] == "Y"
        and out.get("AJ") == "Sprīdītis"
    )
    wire.call(checkout("LV0001", "30000001"))
    acs.library.place_hold("30000001", "LV0004")
    out = wire.call(
        message(
            "65", transaction_date="20261125    110000", fields=[("AO", "DEMO"), ("AA", "LV0001")]
        )
    )
    assert out.command == "66" and out.fixed["ok"] == "1"
    assert (out.fixed["renewed_count"], out.fixed["unrenewed_count"]) == ("0001", "0001")
    assert out.get_all("BM") == ["30000009"] and out.get_all("BN") == ["30000001"]


def test_item_information(acs: RunningAcs, wire: Wire) -> None:
    out = wire.call(message("17", transaction_date=T, fields=[("AO", "DEMO"), ("AB", "30000008")]))
    assert out.fixed["circulation_status"] == "04" and out.get("AH") and out.get("CF") == "0"
    assert out.get("AJ").startswith("Harry Potter") and out.get("BG") == "LV-DEMO"
    wire.call(checkin("30000006"))
    shelf = wire.call(
        message("17", transaction_date=T, fields=[("AO", "DEMO"), ("AB", "30000006")])
    )
    assert (
        shelf.fixed["circulation_status"] == "08"
        and shelf.get("CF") == "1"
        and shelf.get("CM") == "20261202    100000"
    )
    unknown = wire.call(message("17", transaction_date=T, fields=[("AO", "DEMO"), ("AB", "nope")]))
    assert unknown.fixed["circulation_status"] == "01" and unknown.get("AF") == "Unknown item"


def test_patron_status_message(wire: Wire) -> None:
    def status(patron: str, pin: str) -> Message:
        return wire.call(
            message(
                "23",
                language="000",
                transaction_date=T,
                fields=[("AO", "DEMO"), ("AA", patron), ("AC", ""), ("AD", pin)],
            )
        )

    ok = status("LV0001", "1234")
    assert ok.command == "24" and ok.fixed["patron_status"] == " " * 14
    assert ok.get("BL") == "Y" and ok.get("CQ") == "Y" and ok.get("AE") == "Anna Bērziņa"
    assert status("LV0001", "1111").get("CQ") == "N"
    lost = status("LV0003", "")
    assert lost.fixed["patron_status"] == "YYYYY" + " " * 9 and "lost" in lost.get("AF")
    fees = status("LV0004", "")
    assert (
        fees.get("BV") == "3.50"
        and fees.get("BH") == "EUR"
        and "Y" not in fees.fixed["patron_status"]
    )
    assert status("LV9999", "").get("BL") == "N"


def test_patron_information_lists_and_paging(acs: RunningAcs, wire: Wire) -> None:
    for item in ("30000001", "30000002", "30000003", "30000004"):
        assert wire.call(checkout("LV0001", item)).fixed["ok"] == "1"
    everything = wire.call(patron_info("LV0001", "  Y"))
    assert everything.fixed["charged_items_count"] == "0005"
    # Earliest due first: the seeded loan, then today's checkouts.
    assert everything.get_all("AU") == ["30000009", "30000001", "30000002", "30000003", "30000004"]
    page = wire.call(patron_info("LV0001", "  Y", "2", "3"))
    assert (
        page.get_all("AU") == ["30000001", "30000002"]
        and page.fixed["charged_items_count"] == "0005"
    )
    assert page.get("CB") == "0010" and page.get("BE") == "anna@example.lv"
    none = wire.call(patron_info("LV0001", ""))
    assert none.get_all("AU") == [] and none.fixed["charged_items_count"] == "0005"
    overdue = wire.call(patron_info("LV0002", " Y"))
    assert overdue.get_all("AT") == ["30000008"] and overdue.fixed["overdue_items_count"] == "0001"
    fines = wire.call(patron_info("LV0004", "   Y"))
    assert fines.get_all("AV") == ["Kavējuma nauda 2.50 EUR", "Bojāts vāks 1.00 EUR"]
    holds = wire.call(patron_info("LV0004", "     Y"))
    assert holds.get_all("CD") == ["30000006"] and holds.fixed["unavailable_holds_count"] == "0001"


def test_end_session_fee_paid_hold_and_item_status_update(acs: RunningAcs, wire: Wire) -> None:
    end = wire.call(message("35", transaction_date=T, fields=[("AO", "DEMO"), ("AA", "LV0001")]))
    assert end.command == "36" and end.fixed["end_session"] == "Y"
    paid = wire.call(
        message(
            "37",
            transaction_date=T,
            fee_type="01",
            payment_type="00",
            currency_type="EUR",
            fields=[("BV", "2.50"), ("AO", "DEMO"), ("AA", "LV0004")],
        )
    )
    assert paid.command == "38" and paid.fixed["payment_accepted"] == "Y" and paid.get("BK")
    assert str(acs.library.fee_total("LV0004")) == "1.00"
    hold = wire.call(
        message(
            "15",
            hold_mode="+",
            transaction_date=T,
            fields=[("AO", "DEMO"), ("AA", "LV0001"), ("AB", "30000008")],
        )
    )
    assert hold.command == "16" and hold.fixed["ok"] == "1" and hold.get("BR") == "1"
    update = wire.call(
        message(
            "19", transaction_date=T, fields=[("AO", "DEMO"), ("AB", "30000001"), ("CH", "RFID")]
        )
    )
    assert update.command == "20" and update.fixed["item_properties_ok"] == "1"
    assert acs.library.item_information("30000001").properties == "RFID"


def test_block_patron_and_enable(acs: RunningAcs, wire: Wire) -> None:
    blocked = wire.call(
        message(
            "01",
            card_retained="N",
            transaction_date=T,
            fields=[("AO", "DEMO"), ("AL", "card left in reader"), ("AA", "LV0002"), ("AC", "")],
        )
    )
    assert blocked.command == "24" and blocked.fixed["patron_status"][0] == "Y"
    assert wire.call(checkout("LV0002", "30000001")).fixed["ok"] == "0"
    enabled = wire.call(
        message("25", transaction_date=T, fields=[("AO", "DEMO"), ("AA", "LV0002")])
    )
    assert enabled.command == "26" and enabled.fixed["patron_status"] == " " * 14


# --- encodings --------------------------------------------------------------------------------


def test_cp1257_encoding(tmp_path, clock) -> None:
    with start_embedded(
        f"sqlite:///{tmp_path / 'cp.sqlite'}", encoding="cp1257", clock=clock
    ) as acs:
        w = Wire(acs, encoding="cp1257")
        w.login()
        w.send_raw(
            w.frame(message("17", transaction_date=T, fields=[("AO", "DEMO"), ("AB", "30000001")]))
        )
        raw = w.read_raw()
        assert "Zaļā grāmata".encode("cp1257") in raw
        assert decode(raw, encoding="cp1257").checksum_ok
        w.close()


def test_cp850_cannot_carry_latvian_and_sends_question_marks(tmp_path, clock) -> None:
    with start_embedded(
        f"sqlite:///{tmp_path / 'dos.sqlite'}", encoding="cp850", clock=clock
    ) as acs:
        w = Wire(acs, encoding="cp850")
        w.login()
        reply = w.call(
            message("17", transaction_date=T, fields=[("AO", "DEMO"), ("AB", "30000001")])
        )
        assert reply.get("AJ") == "Za?? gr?mata" and reply.checksum_ok
        w.close()


def test_unknown_encoding_is_refused(tmp_path) -> None:
    with pytest.raises(AcsError, match="encoding"):
        start_embedded(f"sqlite:///{tmp_path / 'x.sqlite'}", encoding="klingon")


# --- faults -----------------------------------------------------------------------------------


def test_stall_delays_replies_but_applies_the_transaction(acs: RunningAcs, wire: Wire) -> None:
    acs.faults.stall_s = 30.0
    wire.send_raw(wire.frame(checkout("LV0001", "30000001")))
    assert acs.faults.reply_held.wait(WAIT_S)
    with pytest.raises(TimeoutError):
        wire.read_raw(timeout=0.2)
    assert acs.library.applied("30000001", models.CHECKOUT) == 1, (
        "applied while the reply is held back"
    )
    acs.faults.stall_s = 0.0
    assert decode(wire.read_raw()).fixed["ok"] == "1"


def test_refused_connections(acs: RunningAcs) -> None:
    acs.faults.refuse_connections = True

    def attempt() -> None:
        w = Wire(acs)
        try:
            w.send_raw(
                w.frame(
                    message("99", status_code="0", max_print_width="048", protocol_version="2.00")
                )
            )
            w.read_raw()
        finally:
            w.close()

    # Depending on timing the reset shows at connect, at send or at read: never as a reply.
    with pytest.raises(OSError):
        attempt()
    acs.faults.refuse_connections = False
    ok = Wire(acs)
    assert ok.login().fixed["ok"] == "1"
    ok.close()


def test_drop_connections(acs: RunningAcs, wire: Wire) -> None:
    assert acs.faults.drop_connections() == 1
    assert wire.closed()
    fresh = Wire(acs)
    assert fresh.login().fixed["ok"] == "1"
    fresh.close()


def test_corrupt_checksum_fault(acs: RunningAcs, wire: Wire) -> None:
    acs.faults.corrupt_checksum = True
    reply = wire.call(
        message("99", status_code="0", max_print_width="048", protocol_version="2.00")
    )
    assert reply.command == "98" and reply.checksum_ok is False


def test_stop_closes_connections_and_the_port(tmp_path) -> None:
    acs = start_embedded(f"sqlite:///{tmp_path / 'stop.sqlite'}")
    w = Wire(acs)
    w.login()
    acs.stop()
    assert w.closed()
    with pytest.raises(OSError):
        socket.create_connection((acs.host, acs.port), timeout=1).close()
    acs.stop()  # idempotent


# --- configuration ----------------------------------------------------------------------------


def test_build_from_the_demo_configuration(tmp_path) -> None:
    cfg = config.load(config.DEFAULT_CONFIG)
    db = tmp_path / "sub" / "demo.sqlite"
    with build_from_config(cfg, port=0, database_url=f"sqlite:///{db}", fresh=True) as acs:
        assert db.exists()
        w = Wire(acs)
        assert w.login(cfg.sip2.username, cfg.sip2.password).fixed["ok"] == "1"
        assert w.call(checkout("LV0001", "30000003")).fixed["ok"] == "1"
        w.close()


def test_relative_sqlite_path_is_taken_from_the_project_folder(tmp_path) -> None:
    from kiosk.sync.acs.server import database_url_for

    (tmp_path / "config").mkdir()
    cfg_file = tmp_path / "config" / "site.toml"
    cfg_file.write_text('[acs]\ndatabase_url = "sqlite:///var/acs.sqlite"\n', encoding="utf-8")
    cfg = config.load(cfg_file)
    url = database_url_for(cfg)
    assert url == f"sqlite:///{tmp_path / 'var' / 'acs.sqlite'}"
    assert (tmp_path / "var").is_dir()


# --- bad input --------------------------------------------------------------------------------


_COMMANDS = [
    "93",
    "99",
    "23",
    "63",
    "11",
    "09",
    "29",
    "65",
    "17",
    "19",
    "35",
    "37",
    "15",
    "01",
    "25",
    "97",
    "96",
    "XX",
]
_REPLIES = {
    "94",
    "96",
    "98",
    "24",
    "64",
    "12",
    "10",
    "30",
    "66",
    "18",
    "20",
    "36",
    "38",
    "16",
    "26",
}


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    command=st.sampled_from(_COMMANDS),
    body=st.binary(max_size=120).filter(lambda b: b"\r" not in b),
    trailer=st.booleans(),
)
def test_any_bytes_get_a_spec_reply_or_silence(
    acs: RunningAcs, command: str, body: bytes, trailer: bool
) -> None:
    frame = command.encode() + body
    if trailer:
        frame += b"AY3AZ"
        frame += checksum(frame).encode()
    conn = _Connection(sock=None, peer="fuzz", logged_in=True)  # type: ignore[arg-type]
    try:
        reply = acs._server.respond(conn, frame)
    except _CloseAfter as done:
        reply = done.data
    if reply is None:
        assert command in ("XX", "96") or not frame[:2].isalnum(), (
            "silence only for commands the ACS does not answer"
        )
        return
    decoded = decode(reply)
    assert reply.endswith(b"\r") and decoded.command in _REPLIES
    if trailer and decoded.command != "96":
        assert decoded.sequence == 3 and decoded.checksum_ok


def test_transaction_log_lines_mask_the_patron_and_never_show_the_pin(
    acs: RunningAcs, wire: Wire, caplog
) -> None:
    caplog.set_level("INFO", logger="kiosk.sync.acs")
    wire.call(checkout("LV0001", "30000003", extra=(("AD", "9876"),)))
    wire.call(
        message(
            "23",
            language="000",
            transaction_date=T,
            fields=[("AO", "DEMO"), ("AA", "LV0001"), ("AC", ""), ("AD", "1234")],
        )
    )
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("kiosk.sync.acs")]
    checkout_line = next(line for line in lines if line.startswith("checkout"))
    assert "**0001" in checkout_line and "refused (Wrong PIN)" in checkout_line
    assert not any("LV0001" in line or "9876" in line or "1234" in line for line in lines)
    assert not any("COdemo" in line for line in lines)
