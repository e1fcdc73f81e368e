"""The masking filter keeps PINs, SIP2 passwords and full card numbers out of every log; journald
records are structured; the log file rotates."""

from __future__ import annotations

import io
import json
import logging
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk import config, logsetup
from kiosk.logsetup import JournaldHandler, MaskingFilter, scrub

DEMO_CARD_PATTERN = "^LV[0-9]{4,12}$"


@pytest.fixture(autouse=True)
def _restore_logging():
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    logsetup.remove_handlers()
    root.setLevel(level)
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)


def _record(msg, *args, exc_info=None):
    return logging.LogRecord("kiosk.test", logging.INFO, __file__, 1, msg, args, exc_info)


RAW_LOGIN = "9300CNkiosk|COs3cret-Pass|CPDEMO|AY1AZF5A1"
RAW_PATRON = (
    "63001202611251000000000          AODEMO|AALV00012345|ACterm-pw|AD1234|BP1|BQ5|AY2AZEE11"
)
RAW_CHECKOUT = (
    "11YN20261125    100000                  AODEMO|AALV00012345|AB30000001|AC|AD9876|BON|AY3AZ0000"
)


@pytest.mark.parametrize(
    "message, secrets, kept",
    [
        (f"sent {RAW_LOGIN}", ["s3cret-Pass"], ["CNkiosk", "|CO", "CPDEMO"]),
        (
            f"recv {RAW_PATRON}\r",
            ["term-pw", "1234|", "LV00012345"],
            ["AO", "|AA******2345|", "BP1"],
        ),
        (RAW_CHECKOUT, ["9876", "LV00012345"], ["AB30000001", "|AC|"]),
        ("patron LV00012345 wrong PIN 4711", ["LV00012345", "4711"], ["******2345"]),
        (
            'request {"patron_id": "LV0001", "pin": "4711", "item": "30000001"}',
            ['"4711"', "LV0001"],
            ["30000001", "**0001"],
        ),
        ("login password=hunter22 user=kiosk", ["hunter22"], ["user=kiosk"]),
        ("ACS link down; COMMIT; ADMIN entered", [], ["ACS link down; COMMIT; ADMIN entered"]),
    ],
)
def test_scrub_removes_secrets_and_masks_cards(message, secrets, kept):
    out = scrub(message, logsetup.card_regex(DEMO_CARD_PATTERN))
    for s in secrets:
        assert s not in out
    for k in kept:
        assert k in out


def test_filter_masks_args_exceptions_and_extras():
    f = MaskingFilter(DEMO_CARD_PATTERN)
    try:
        raise ValueError("bad frame 63001...|AALV00012345|AD1234|")
    except ValueError:
        import sys

        rec = _record(
            "patron %s pin %s frame %r",
            "LV00012345",
            "pin=1234",
            RAW_PATRON,
            exc_info=sys.exc_info(),
        )
    rec.card = "LV00012345"
    assert f.filter(rec) is True
    text = rec.getMessage() + rec.exc_text + rec.card
    assert "LV00012345" not in text
    assert "1234|" not in text
    assert "term-pw" not in text
    assert "pin=1234" not in text
    assert "******2345" in rec.getMessage()
    assert "ValueError" in rec.exc_text


def test_default_card_pattern_masks_long_numbers_not_words():
    re_ = logsetup.card_regex(config.PatronSection().card_pattern)
    out = scrub("WARNING card 2000123456789 item ABCD", re_)
    assert "2000123456789" not in out
    assert "*********6789" in out
    assert "WARNING" in out
    assert "ABCD" in out


@given(st.text(alphabet="0123456789", min_size=4, max_size=8))
def test_any_pin_in_any_sip2_frame_is_removed(pin):
    frame = f"63001202611251000000000          AODEMO|AALV0001|AD{pin}|BP1|AY2AZEE11"
    out = scrub(f"sent {frame}", logsetup.card_regex(DEMO_CARD_PATTERN))
    assert f"AD{pin}" not in out
    assert "|AD[redacted]|" in out


def _cfg(tmp_path, extra=""):
    (tmp_path / "config").mkdir(exist_ok=True)
    f = tmp_path / "config" / "kiosk.toml"
    f.write_text(
        f'[patron]\ncard_pattern = "{DEMO_CARD_PATTERN}"\n[kiosk]\nterminal_id = "T-9"\n{extra}'
    )
    return config.load(f)


def test_stderr_json_lines_are_masked(tmp_path):
    stream = io.StringIO()
    logsetup.setup_logging(_cfg(tmp_path), stream=stream, journal=False)
    logging.getLogger("kiosk.sync.sip2.client").warning(
        "sent %s", RAW_PATRON, extra={"terminal": "T-9"}
    )
    doc = json.loads(stream.getvalue().splitlines()[-1])
    assert doc["level"] == "WARNING"
    assert doc["logger"] == "kiosk.sync.sip2.client"
    assert doc["terminal"] == "T-9"
    assert "1234" not in doc["msg"]
    assert "term-pw" not in doc["msg"]
    assert "LV00012345" not in doc["msg"]


def test_journald_native_protocol_with_fields(tmp_path):
    address = str(tmp_path / "journal.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(address)
    server.settimeout(5)
    try:
        logsetup.setup_logging(_cfg(tmp_path), journal=True, journal_address=address)
        logging.getLogger("kiosk.devices").error(
            "reader gone\nsecond line for patron LV00012345", extra={"device": "feig"}
        )
        data = server.recv(65536)
    finally:
        server.close()
    assert b"PRIORITY=3\n" in data
    assert b"SYSLOG_IDENTIFIER=kiosk\n" in data
    assert b"LOGGER=kiosk.devices\n" in data
    assert b"KIOSK_DEVICE=feig\n" in data
    assert b"KIOSK_TERMINAL=T-9\n" in data
    # a message with a newline uses the length-prefixed binary form
    msg = b"reader gone\nsecond line for patron ******2345"
    assert b"MESSAGE\n" + len(msg).to_bytes(8, "little") + msg + b"\n" in data
    assert b"LV00012345" not in data


def test_journald_handler_cuts_huge_messages():
    h = JournaldHandler("/nonexistent")
    data = h.encode(_record("x" * 200_000))
    h.close()
    assert len(data) < JournaldHandler.MAX_DATAGRAM
    assert b"[truncated]" in data


def test_log_file_rotates_and_is_masked(tmp_path):
    cfg = _cfg(tmp_path, '[logging]\nfile = "var/log/kiosk.log"\nmax_bytes = 2000\nbackups = 2\n')
    logsetup.setup_logging(cfg, stream=io.StringIO(), journal=False)
    log = logging.getLogger("kiosk.test")
    for i in range(60):
        log.warning("transaction %d patron LV00012345 pin=4711", i)
    files = sorted(p.name for p in (tmp_path / "var" / "log").iterdir())
    assert files == ["kiosk.log", "kiosk.log.1", "kiosk.log.2"]
    text = "".join((tmp_path / "var" / "log" / f).read_text() for f in files)
    assert "4711" not in text
    assert "LV00012345" not in text
    assert '"transaction 59 patron ******2345 pin=[redacted]"' in text
    assert all(p.stat().st_size <= 2000 for p in (tmp_path / "var" / "log").iterdir())


def test_setup_twice_does_not_double_output(tmp_path):
    stream = io.StringIO()
    cfg = _cfg(tmp_path)
    logsetup.setup_logging(cfg, stream=stream, journal=False)
    logsetup.setup_logging(cfg, stream=stream, journal=False)
    logging.getLogger("kiosk.test").warning("once")
    assert stream.getvalue().count('"once"') == 1


def test_unwritable_log_file_is_a_clear_error(tmp_path):
    (tmp_path / "afile").write_text("not a folder")
    cfg = _cfg(tmp_path, f'[logging]\nfile = "{tmp_path}/afile/kiosk.log"\n')
    with pytest.raises(logsetup.LogSetupError, match="logging.file"):
        logsetup.setup_logging(cfg, stream=io.StringIO(), journal=False)


def test_rotate_directory_keeps_the_newest(tmp_path):
    import os

    for i in range(5):
        p = tmp_path / f"receipt-{i}.txt"
        p.write_text(str(i))
        os.utime(p, (1000 + i, 1000 + i))
    assert logsetup.rotate_directory(tmp_path, keep=2, pattern="receipt-*.txt") == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["receipt-3.txt", "receipt-4.txt"]


def test_other_handlers_see_masked_records_too(tmp_path, caplog):
    logsetup.setup_logging(_cfg(tmp_path), stream=io.StringIO(), journal=False)
    with caplog.at_level(logging.INFO):
        logging.getLogger("kiosk.sync").info("recv %s", RAW_PATRON)
    assert caplog.records
    assert all(
        "term-pw" not in r.getMessage() and "LV00012345" not in r.getMessage()
        for r in caplog.records
    )
    logsetup.remove_handlers()
    assert logging.getLogRecordFactory() is logging.LogRecord


@given(st.text(alphabet="ADCOAEL0123456789|pin=: password\"'{}*", max_size=80))
def test_scrub_never_fails_and_is_stable(text):
    card_re = logsetup.card_regex(DEMO_CARD_PATTERN)
    once = scrub(text, card_re)
    assert scrub(once, card_re) == once  # a second filter on the way changes nothing more


@given(
    st.lists(
        st.one_of(
            st.text(max_size=20),
            st.integers(),
            st.binary(max_size=10),
            st.none(),
            st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
        ),
        max_size=3,
    )
)
def test_filter_keeps_every_record_whatever_its_arguments(args):
    f = MaskingFilter(DEMO_CARD_PATTERN)
    fmt = " ".join(["%s"] * len(args)) + " %d"  # one placeholder too many: a broken format string
    rec = _record(fmt, *args)
    assert f.filter(rec) is True
    assert isinstance(rec.getMessage(), str)
    assert rec.args is None
