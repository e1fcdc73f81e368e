"""The technician's status page in headless Chromium: it loads with the token, shows the kiosk's
state, refuses without a token, shows nothing that identifies a patron, and acts only with the
separate action token. Screenshots go to tests/artifacts/screenshots/fleet/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from kiosk import config
from tests.fleet.conftest import write_kiosk
from tests.fleet.kiosk_process import HeadlessKiosk
from tests.fleet.procs import chromium

TOKEN = "read-7f3c9a"
ACTION = "act-51d0e2"


@pytest.fixture
def kiosk(tmp_path: Path, demo_acs: Any):
    extra = f'[status_page]\nenabled = true\nlisten = "127.0.0.1:0"\ntoken = "{TOKEN}"\naction_token = "{ACTION}"\n'
    k = HeadlessKiosk(
        config.load(write_kiosk(tmp_path, port=demo_acs.port, terminal="CENTRAL-2", extra=extra))
    )
    yield k
    k.close()


def base(k: HeadlessKiosk) -> str:
    host, port = k.fleet.status_page.address
    return f"http://{host}:{port}"


@pytest.mark.timeout(240)
def test_status_page_in_chromium_shows_state_and_no_patron_data(
    tmp_path: Path, kiosk: HeadlessKiosk, demo_acs: Any
) -> None:
    assert kiosk.checkout("LV0002", "30000001") == "checked_out"  # John Smith
    assert kiosk.checkout("LV0002", "30000007") == "refused"  # not for loan
    (tmp_path / "var" / "receipts").mkdir(parents=True, exist_ok=True)
    (tmp_path / "var" / "receipts" / "PAPER_OUT").touch()

    dom = chromium(tmp_path, f"{base(kiosk)}/?token={TOKEN}", screenshot="status-page.png")
    assert "CENTRAL-2" in dom and "in service" in dom
    assert '<p id="link"><span class="ok">online</span>' in dom
    assert "paper" in dom.lower()  # the printer row says it is out of paper
    assert "30000001" in dom or "Last SIP2 exchanges" in dom
    assert "<svg" in dom and "1 checkouts" in dom
    for personal in ("LV0002", "LV0001", "John Smith", "Smith", "Anna", "Bērziņa", "Zaļā grāmata"):
        assert personal not in dom, f"{personal!r} on the status page"

    demo_acs.stop()
    kiosk.services.circulation.client.close()
    kiosk.services.worker.submit(kiosk.services.circulation.forward_offline).result(timeout=15)
    dom = chromium(tmp_path, f"{base(kiosk)}/?token={TOKEN}", screenshot="status-page-offline.png")
    assert '<p id="link"><span class="fail">offline</span>' in dom


def test_status_page_refuses_without_the_token(tmp_path: Path, kiosk: HeadlessKiosk) -> None:
    dom = chromium(tmp_path, f"{base(kiosk)}/", screenshot="status-page-no-token.png")
    assert "A token is required" in dom and "CENTRAL-2" not in dom
    assert requests.get(f"{base(kiosk)}/", timeout=5).status_code == 401
    assert requests.get(f"{base(kiosk)}/?token=wrong", timeout=5).status_code == 403
    assert (
        requests.get(
            f"{base(kiosk)}/status.json", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
        ).json()["kiosk"]["terminal"]
        == "CENTRAL-2"
    )


def test_actions_need_the_action_token(kiosk: HeadlessKiosk) -> None:
    url = f"{base(kiosk)}/action/out_of_service"
    assert requests.post(url, data={"token": TOKEN, "message": "x"}, timeout=5).status_code == 403
    assert (
        requests.post(url, data={"token": TOKEN, "action_token": TOKEN}, timeout=5).status_code
        == 403
    )
    assert kiosk.fleet.service_switch.state.in_service
    res = requests.post(
        url,
        data={"token": TOKEN, "action_token": ACTION, "message": "Reader being replaced"},
        timeout=10,
        allow_redirects=False,
    )
    assert res.status_code == 303
    assert not kiosk.fleet.service_switch.state.in_service
    page = requests.get(f"{base(kiosk)}/?token={TOKEN}", timeout=10).text
    assert "out of service</span> Reader being replaced" in page
    res = requests.post(
        f"{base(kiosk)}/action/test_print", headers={"X-Action-Token": ACTION}, timeout=20
    )
    assert res.json()["ok"] is True
    assert list((Path(kiosk.services.cfg.resolve_path("var/receipts"))).glob("*test*"))
    res = requests.post(
        f"{base(kiosk)}/action/back_in_service", headers={"X-Action-Token": ACTION}, timeout=10
    )
    assert res.json() == {"action": "back_in_service", "ok": True, "text": "back in service"}
    assert kiosk.fleet.service_switch.state.in_service


def test_read_only_without_an_action_token_and_off_without_a_token(
    tmp_path: Path, demo_acs: Any
) -> None:
    extra = f'[status_page]\nenabled = true\nlisten = "127.0.0.1:0"\ntoken = "{TOKEN}"\n'
    k = HeadlessKiosk(config.load(write_kiosk(tmp_path / "ro", port=demo_acs.port, extra=extra)))
    try:
        b = base(k)
        assert "Read-only" in requests.get(f"{b}/?token={TOKEN}", timeout=10).text
        res = requests.post(f"{b}/action/forward_now", headers={"X-Action-Token": ""}, timeout=5)
        assert res.status_code == 403 and "read-only" in res.text
    finally:
        k.close()
    extra = '[status_page]\nenabled = true\nlisten = "127.0.0.1:0"\n'
    k = HeadlessKiosk(config.load(write_kiosk(tmp_path / "none", port=demo_acs.port, extra=extra)))
    try:
        assert k.fleet.status_page is None
    finally:
        k.close()
