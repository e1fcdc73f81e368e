"""SIP2 over TLS: server-certificate verification against a CA file, and a refused unknown certificate."""

from __future__ import annotations

import shutil
import ssl
import subprocess

import pytest

from kiosk.sync.sip2.client import Sip2Client
from kiosk.sync.sip2.codec import Sip2LinkError, message
from tests.sync.fake_acs import D, FakeAcs


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (scripts/setup-dev.sh installs it)")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "acs.pem", folder / "acs.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@pytest.fixture
def tls_acs(certificate):
    cert, key = certificate
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    acs = FakeAcs(tls=ctx)
    yield acs
    acs.close()


def test_tls_with_a_verified_server_certificate(tls_acs, certificate):
    cert, _ = certificate
    client = Sip2Client(tls_acs.settings(tls=True, tls_verify=True, tls_ca_file=str(cert)))
    try:
        status = client.connect()
        reply = client.request(
            message(
                "17", transaction_date=D, fields=[("AO", "DEMO"), ("AB", "30000001"), ("AC", "")]
            )
        )
    finally:
        client.close()
    assert status.library_name == "Fake bibliotēka"
    assert reply.get("AJ") == "Zaļā grāmata"
    assert [f[:2] for f in tls_acs.frames()] == [b"93", b"99", b"17"]


def test_tls_refuses_an_unknown_certificate(tls_acs):
    client = Sip2Client(tls_acs.settings(tls=True, tls_verify=True))
    with pytest.raises(Sip2LinkError, match="TLS") as info:
        client.connect()
    assert info.value.maybe_delivered is False
    assert tls_acs.frames() == []


def test_tls_without_verification_when_configured(tls_acs):
    client = Sip2Client(tls_acs.settings(tls=True, tls_verify=False))
    try:
        assert client.connect().online
    finally:
        client.close()
