"""Names, e-mail addresses and other personal fields never reach a log in clear: not through
the SIP2 wire log (the technician screen, `kiosk -v`), not through the logging filter.

The end-to-end case runs the logging exactly as `kiosk -v` installs it and a real patron
information exchange with the demo library system (Anna Bērziņa, anna@example.lv).
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from kiosk.config import Config, Sip2Section
from kiosk.logsetup import remove_handlers, scrub, setup_logging
from kiosk.sync.acs.server import RunningAcs, start_embedded
from kiosk.sync.sip2.client import Sip2Client
from kiosk.sync.sip2.codec import message
from kiosk.sync.sip2.wirelog import mask, mask_email, mask_name

D = "20261125    101500"
PATRON_ANSWER = (
    f"64              001{D}000000000000000000000000AODEMO|AALV0001|AEAnna Bērziņa|BLY|"
    "BEanna@example.lv|BDBrīvības iela 1, Rīga|BF+371 2000 1234|CY LV0002|DAJohn Smith|AY1AZABCD\r"
)


def test_personal_fields_are_masked_in_the_wire_log() -> None:
    masked = mask(PATRON_ANSWER)
    for clear in ("Anna", "Bērziņa", "anna@", "Brīvības", "2000 1234", "John", "Smith", "LV0002"):
        assert clear not in masked, clear
    assert "|AEA*** B******|" in masked
    assert "|BEa***@example.lv|" in masked
    assert "|DAJ*** S****|" in masked
    assert "|BD" + "*" * len("Brīvības iela 1, Rīga") + "|" in masked
    assert masked.endswith("|AY1AZABCD\r")


def test_name_and_email_masks_are_stable() -> None:
    for value in ("Anna Bērziņa", "", "  ", "x", "Jean-Luc  Picard"):
        assert mask_name(mask_name(value)) == mask_name(value)
    for value in ("anna@example.lv", "no-at-sign", "@example.lv", ""):
        assert mask_email(mask_email(value)) == mask_email(value)
    assert mask_email("anna@example.lv") == "a***@example.lv"


def test_the_logging_filter_masks_names_and_addresses_too() -> None:
    text = scrub(f"ACS→SC {PATRON_ANSWER}")
    for clear in ("Anna", "anna@", "Brīvības", "John"):
        assert clear not in text, clear


@pytest.fixture
def acs(tmp_path) -> Iterator[RunningAcs]:
    running = start_embedded(f"sqlite:///{tmp_path / 'acs.sqlite'}", fresh=True)
    yield running
    running.stop()


def test_kiosk_verbose_logs_no_name_or_email(acs: RunningAcs) -> None:
    stream = io.StringIO()
    setup_logging(Config(), verbose=True, stream=stream, journal=False)
    client = Sip2Client(
        Sip2Section(host=acs.host, port=acs.port, username="kiosk", password="demo")
    )
    try:
        client.connect()
        answer = client.request(
            message(
                "63",
                language="001",
                transaction_date=D,
                summary=" " * 10,
                fields=[("AO", "DEMO"), ("AA", "LV0001"), ("AC", ""), ("AD", "1234")],
            )
        )
    finally:
        client.close()
        remove_handlers()
        logging.getLogger().setLevel(logging.WARNING)
    assert answer.get("AE") == "Anna Bērziņa" and answer.get("BE") == "anna@example.lv"
    messages = [json.loads(line)["msg"] for line in stream.getvalue().splitlines()]
    wire = [m for m in messages if m.startswith("ACS→SC 64")]
    assert wire, "the answer was logged at debug level"
    logged = "\n".join(messages)
    assert "Anna" not in logged and "Bērziņa" not in logged
    assert "anna@example.lv" not in logged
    assert "|AEA*** B******|" in wire[0] and "|BEa***@example.lv|" in wire[0]
    shown = "\n".join(text for _, _, text in client.exchanges)  # the technician screen
    assert "Anna" not in shown and "anna@" not in shown
