"""A configuration fault is not an outage for the circulation service: a refused login, a missing
CA file or TLS against a plain port put the kiosk out of service with one line naming the key;
nothing is queued on them, even under the checkin-and-checkout policy (demo library system on
loopback, real SIP2 client, real journal)."""

from __future__ import annotations

import pytest

from kiosk import config as kconfig
from kiosk.core.domain import Mode
from kiosk.sync.circulation import build_circulation
from kiosk.sync.journal import EntryState
from tests.tech.conftest import write_site

POLICY = '[offline]\npolicy = "checkin-and-checkout"\n'


def service_for(tmp_path, port: int, replace: dict[str, str]):
    f = write_site(tmp_path, port=port, extra=POLICY)
    text = f.read_text()
    for old, new in replace.items():
        text = text.replace(old, new)
    f.write_text(text)
    return build_circulation(kconfig.load(f))


@pytest.mark.parametrize(
    "replace, key",
    [
        (
            {'password = "demo"': 'password = "typo"'},
            "[sip2] password: the library system refused the login",
        ),
        (
            {"timeout_s = 2.0": 'timeout_s = 2.0\ntls = true\ntls_ca_file = "/nonexistent/ca.pem"'},
            "[sip2] tls_ca_file: /nonexistent/ca.pem does not exist",
        ),
        ({"timeout_s = 2.0": "timeout_s = 2.0\ntls = true"}, "[sip2] tls: TLS handshake"),
    ],
    ids=["wrong password", "missing CA file", "TLS against a plain port"],
)
def test_configuration_faults_put_the_kiosk_out_of_service_and_queue_nothing(
    tmp_path, demo_acs, replace, key
):
    service = service_for(tmp_path, demo_acs.port, replace)
    try:
        loan = service.checkout("LV0001", "30000001")
        back = service.checkin("30000009")
        assert service.config_fault is not None
        assert service.config_fault.startswith(key)
        for result in (loan, back):
            assert not result.ok
            assert not result.queued
            assert result.mode is Mode.OFFLINE
            assert "out of service" in result.message
        states = {e.state for e in service.journal.entries()}
        assert EntryState.QUEUED not in states  # nothing waits to be forwarded on a wrong config
        assert "demo" not in (service.config_fault or "")
        assert "typo" not in (service.config_fault or "")
    finally:
        service.close()


def test_a_network_failure_is_still_an_outage(tmp_path, closed_port):
    service = service_for(tmp_path, closed_port, {})
    try:
        loan = service.checkout("LV0001", "30000001")
        assert service.config_fault is None
        assert loan.ok
        assert loan.queued
    finally:
        service.close()
