"""The circulation service against the shared strict pysip2 peer (login required, checksums on)."""

from __future__ import annotations

import threading

from kiosk.config import OfflineSection
from kiosk.core.domain import Mode
from kiosk.sync.circulation import CirculationService
from kiosk.sync.journal import EntryState, Journal
from kiosk.sync.sip2.client import Sip2Client


def make(tmp_path, acs, **overrides) -> CirculationService:
    s = acs.settings(**overrides)
    return CirculationService(
        Sip2Client(s),
        Journal(tmp_path / "j.sqlite"),
        sip2=s,
        offline=OfflineSection(),
        location="DEMO",
    )


def test_round_trip_with_login_and_checksums(tmp_path, pysip2_acs):
    svc = make(tmp_path, pysip2_acs)
    ident = svc.identify_patron("LV0001", pin="1234")
    assert ident.ok
    assert ident.patron.name == "Anna Bērziņa"
    assert [loan.title for loan in ident.patron.loans] == ["Sprīdītis"]
    out = svc.checkout("LV0001", "30000004")
    assert out.ok
    assert out.title == "Мастер и Маргарита"
    assert out.mode is Mode.ONLINE
    back = svc.checkin("30000004")
    assert back.ok
    assert back.routing.sort_bin == "1"
    assert pysip2_acs.executed == [("11", "LV0001", "30000004"), ("09", "", "30000004")]
    svc.close()


def test_answer_lost_after_apply_is_reconciled_not_resent(tmp_path, pysip2_acs):
    release = threading.Event()
    original = pysip2_acs._checkin

    def slow_checkin(req, ctx):
        answer = original(req, ctx)  # applied ...
        release.wait(10)  # ... but the answer comes after the kiosk gave up
        return answer

    pysip2_acs.handlers["09"] = slow_checkin
    svc = make(tmp_path, pysip2_acs, timeout_s=0.5, retries=0)
    res = svc.checkin("30000009")
    release.set()
    assert res.in_doubt
    pysip2_acs.handlers.pop("09")
    assert svc.forward_offline().forwarded == 1
    assert pysip2_acs.executed == [("09", "", "30000009")]  # once
    (row,) = svc.journal.entries()
    assert row.state is EntryState.DONE
    assert row.result["reconciled"] is True
    svc.close()
