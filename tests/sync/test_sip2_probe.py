"""probe_acs: the one SIP2 check behind `kiosk sip2 check`, the doctor and the maintenance screen."""

from __future__ import annotations

import socket

from kiosk.sync.sip2.client import SC_TO_ACS, probe_acs


def test_probe_finds_the_library_system_and_keeps_the_exchange(pysip2_acs) -> None:
    probe = probe_acs(pysip2_acs.settings(), timeout_s=2.0)
    assert probe.ok
    assert probe.error == ""
    assert probe.status is not None
    assert probe.status.online
    sent = [text[:2] for _, direction, text in probe.exchanges if direction == SC_TO_ACS]
    assert sent == ["93", "99"]
    assert probe.duplicate_rule_honoured is None  # not asked


def test_probe_of_a_closed_port_says_why(pysip2_acs) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens there
    probe = probe_acs(pysip2_acs.settings(port=port), timeout_s=0.5)
    assert not probe.ok
    assert probe.status is None
    assert probe.error
