"""Return routing from the 3M extension fields (CV, CT, CY, DA) that pysip2 cannot send."""

from __future__ import annotations

from datetime import datetime

import pytest

from kiosk.config import OfflineSection
from kiosk.core.domain import AlertType
from kiosk.sync.circulation import CirculationService
from kiosk.sync.journal import Journal
from kiosk.sync.sip2.client import Sip2Client
from kiosk.sync.sip2.codec import decode, message
from tests.sync.fake_acs import FakeAcs


@pytest.fixture
def fake():
    acs = FakeAcs()
    yield acs
    acs.close()


def test_checkin_routing_from_extension_fields(tmp_path, fake):
    def script(conn, frame):
        req = decode(frame)
        if req.command != "09":
            fake.default_script(conn, frame)
            return
        now = datetime.now().strftime("%Y%m%d    %H%M%S")
        fields = [
            ("AO", "DEMO"),
            ("AB", req.get("AB")),
            ("AQ", "Bērnu nodaļa"),
            ("AJ", "Mērnieku laiki"),
            ("CL", "5"),
            ("CV", "02"),
            ("CT", "Filiāle Purvciems"),
            ("CY", "LV0004"),
            ("DA", "Иван Петров"),
            ("CK", "001"),
            ("AF", "Rezervēts citā filiālē"),
        ]
        conn.reply(
            message(
                "10",
                ok="1",
                resensitize="Y",
                magnetic_media="N",
                alert="Y",
                transaction_date=now,
                fields=fields,
            ),
            req,
        )

    fake.script = script
    s = fake.settings()
    svc = CirculationService(
        Sip2Client(s),
        Journal(tmp_path / "j.sqlite"),
        sip2=s,
        offline=OfflineSection(),
        location="DEMO",
    )
    res = svc.checkin("30000006")
    r = res.routing
    assert res.ok
    assert res.title == "Mērnieku laiki"
    assert res.message == "Rezervēts citā filiālē"
    assert (r.sort_bin, r.alert, r.alert_type, r.destination) == (
        "5",
        True,
        AlertType.HOLD_OTHER_BRANCH,
        "Filiāle Purvciems",
    )
    assert (r.hold_patron_id, r.hold_patron_name, r.permanent_location, r.media_type) == (
        "LV0004",
        "Иван Петров",
        "Bērnu nodaļa",
        "001",
    )
    row = svc.journal.get(res.journal_id)
    assert row.result["routing"] == {
        "sort_bin": "5",
        "alert": True,
        "alert_type": "02",
        "destination": "Filiāle Purvciems",
    }
    svc.close()
