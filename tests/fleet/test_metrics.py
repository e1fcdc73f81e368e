"""The kiosk's /metrics: real services on the demo library system, scraped over HTTP."""

from __future__ import annotations

import platform
import re
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from kiosk import __version__ as kiosk_version
from kiosk import config
from tests.fleet.conftest import write_kiosk
from tests.fleet.kiosk_process import HeadlessKiosk

METRICS = '[metrics]\nenabled = true\nlisten = "127.0.0.1:0"\nsample_interval_s = 3600\n'


def scrape(kiosk: HeadlessKiosk) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    host, port = kiosk.fleet.exporter_address
    text = requests.get(f"http://{host}:{port}/metrics", timeout=5).text
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: dict, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


@pytest.fixture
def kiosk(tmp_path: Path, demo_acs: Any):
    k = HeadlessKiosk(config.load(write_kiosk(tmp_path, port=demo_acs.port, extra=METRICS)))
    yield k
    k.close()


def test_checkouts_refusals_and_link_are_exposed(kiosk: HeadlessKiosk) -> None:
    assert kiosk.checkout("LV0002", "30000001") == "checked_out"
    assert kiosk.checkout("LV0002", "30000007") == "refused"  # reference, not for loan
    kiosk.fleet.sample_now()
    samples = scrape(kiosk)
    assert (
        value(samples, "kiosk_checkouts_total", mode="online", outcome="done", reason="none") == 1
    )
    refused = {
        k: v
        for k, v in samples.items()
        if k[0] == "kiosk_checkouts_total" and ("outcome", "refused") in k[1]
    }
    assert sum(refused.values()) == 1
    assert value(samples, "kiosk_visits_total", outcome="ok") == 2
    assert value(samples, "kiosk_link_up") == 1
    assert value(samples, "kiosk_offline_queue_length") == 0
    assert value(samples, "kiosk_device_up", device="reader") == 1
    assert value(samples, "kiosk_printer_state", state="ready") == 1
    assert value(samples, "kiosk_sip2_request_duration_seconds_count", command="checkout") == 2
    assert value(samples, "kiosk_tag_to_screen_seconds_count") >= 2
    assert abs(value(samples, "kiosk_clock_drift_seconds")) < 5  # same machine, same clock
    assert (
        value(samples, "kiosk_build_info", version=kiosk_version, python=platform.python_version())
        == 1
    )
    config_hash = next(dict(k[1])["hash"] for k in samples if k[0] == "kiosk_config_info")
    assert re.fullmatch(r"[0-9a-f]{12}", config_hash)


def test_offline_checkout_is_queued_and_the_queue_age_shows(tmp_path: Path, demo_acs: Any) -> None:
    k = HeadlessKiosk(config.load(write_kiosk(tmp_path, port=demo_acs.port, extra=METRICS)))
    try:
        demo_acs.stop()
        k.services.circulation.client.close()
        assert k.checkout("LV0002", "30000002") == "checked_out"  # offline, queued
        k.fleet.sample_now()
        samples = scrape(k)
        assert value(samples, "kiosk_link_up") == 0
        assert value(samples, "kiosk_offline_queue_length") == 1
        assert (
            value(samples, "kiosk_checkouts_total", mode="offline", outcome="queued", reason="none")
            == 1
        )
        assert value(samples, "kiosk_offline_queue_oldest_age_seconds") >= 0
        assert value(samples, "kiosk_visits_total", outcome="offline") == 1
    finally:
        k.close()


def test_no_label_names_a_patron_or_an_item(kiosk: HeadlessKiosk) -> None:
    kiosk.checkout("LV0002", "30000003")
    kiosk.fleet.sample_now()
    host, port = kiosk.fleet.exporter_address
    text = requests.get(f"http://{host}:{port}/metrics", timeout=5).text
    assert "LV0002" not in text and "30000003" not in text and "Hobbit" not in text


def test_exporter_is_off_unless_enabled(tmp_path: Path, demo_acs: Any) -> None:
    k = HeadlessKiosk(config.load(write_kiosk(tmp_path, port=demo_acs.port)))
    try:
        assert k.fleet.exporter is None
        assert (
            k.checkout("LV0002", "30000001") == "checked_out"
        )  # still counted, for the status page
        assert k.fleet.metrics.checkouts.labels("online", "done", "none")._value.get() == 1
    finally:
        k.close()


def test_a_taken_port_does_not_stop_the_kiosk(tmp_path: Path, demo_acs: Any) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        extra = f'[metrics]\nenabled = true\nlisten = "127.0.0.1:{port}"\n'
        k = HeadlessKiosk(config.load(write_kiosk(tmp_path, port=demo_acs.port, extra=extra)))
        try:
            assert k.fleet.exporter is None
            assert k.checkout("LV0002", "30000001") == "checked_out"
        finally:
            k.close()


def test_metrics_over_tls_with_client_certificates(tmp_path: Path, demo_acs: Any) -> None:
    import subprocess

    def cert(name: str, *extra: str) -> None:
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
                f"/CN={name}",
                "-keyout",
                str(tmp_path / f"{name}.key"),
                "-out",
                str(tmp_path / f"{name}.pem"),
                *extra,
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )

    cert("kiosk", "-addext", "subjectAltName=IP:127.0.0.1")
    cert("prometheus")
    extra = (
        f'[metrics]\nenabled = true\nlisten = "127.0.0.1:0"\ncertfile = "{tmp_path / "kiosk.pem"}"\n'
        f'keyfile = "{tmp_path / "kiosk.key"}"\nclient_cafile = "{tmp_path / "prometheus.pem"}"\n'
    )
    k = HeadlessKiosk(config.load(write_kiosk(tmp_path, port=demo_acs.port, extra=extra)))
    try:
        host, port = k.fleet.exporter_address
        url = f"https://{host}:{port}/metrics"
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(
                url, verify=str(tmp_path / "kiosk.pem"), timeout=5
            )  # no client certificate
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(url, timeout=5)  # a certificate nobody vouches for
        client = (str(tmp_path / "prometheus.pem"), str(tmp_path / "prometheus.key"))
        text = requests.get(url, verify=str(tmp_path / "kiosk.pem"), cert=client, timeout=5).text
        assert "kiosk_checkouts_total" in text
    finally:
        k.close()
