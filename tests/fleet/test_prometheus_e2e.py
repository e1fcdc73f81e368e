"""A real Prometheus (Debian's package, loopback, 1 s scrape) scraping two kiosk processes on the
demo library system: checkouts on one show in `sum(kiosk_checkouts_total)`, and the other, which
cannot reach the library system, has the shipped KioskOffline alert pending."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
import yaml

from tests.fleet.conftest import write_kiosk
from tests.fleet.procs import ROOT, KioskProcess, Server, chromium, free_port, wait_for

METRICS = '[metrics]\nenabled = true\nlisten = "127.0.0.1:0"\nsample_interval_s = 1\n'


def query(base: str, expr: str) -> list[dict[str, Any]]:
    doc = requests.get(f"{base}/api/v1/query", params={"query": expr}, timeout=5).json()
    assert doc["status"] == "success", doc
    return doc["data"]["result"]  # type: ignore[no-any-return]


def scalar(base: str, expr: str) -> float | None:
    result = query(base, expr)
    return float(result[0]["value"][1]) if result else None


@pytest.mark.timeout(180)
def test_prometheus_scrapes_two_kiosks_counts_checkouts_and_sees_one_offline(
    tmp_path: Path, demo_acs: Any, closed_port: int
) -> None:
    kiosks: dict[str, KioskProcess] = {}
    prometheus = None
    try:
        kiosks["A"] = KioskProcess(
            write_kiosk(tmp_path / "a", port=demo_acs.port, terminal="A", extra=METRICS)
        )
        kiosks["B"] = KioskProcess(
            write_kiosk(tmp_path / "b", port=closed_port, terminal="B", extra=METRICS)
        )
        for k in kiosks.values():
            k.ready()
        conf = {
            "global": {
                "scrape_interval": "1s",
                "evaluation_interval": "1s",
                "scrape_timeout": "1s",
            },
            "rule_files": [str(ROOT / "deploy" / "prometheus" / "rules" / "kiosk.rules.yml")],
            "scrape_configs": [
                {
                    "job_name": "kiosk",
                    "static_configs": [
                        {
                            "targets": [f"127.0.0.1:{k.metrics_port}"],
                            "labels": {"kiosk": name, "branch": "Central"},
                        }
                        for name, k in kiosks.items()
                    ],
                }
            ],
        }
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(conf))
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        prometheus = Server(
            [
                "prometheus",
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=1h",
            ],
            f"{base}/-/ready",
            tmp_path / "prometheus.log",
        )
        wait_for(lambda: scalar(base, 'sum(up{job="kiosk"})') == 2, 30, "both kiosks scraped")
        assert scalar(base, "sum(kiosk_checkouts_total)") == 0

        assert kiosks["A"].command("checkout LV0002 30000001") == "checked_out"
        assert kiosks["A"].command("checkout LV0002 30000002") == "checked_out"
        assert kiosks["A"].command("checkout LV0002 30000007") == "refused"  # not for loan

        wait_for(
            lambda: scalar(base, "sum(kiosk_checkouts_total)") == 3,
            30,
            "three checkouts in Prometheus",
        )
        done = query(base, 'sum by (kiosk) (kiosk_checkouts_total{outcome="done"})')
        assert {r["metric"]["kiosk"]: float(r["value"][1]) for r in done} == {"A": 2.0, "B": 0.0}
        assert scalar(base, 'kiosk_link_up{kiosk="A"}') == 1
        assert scalar(base, 'kiosk_link_up{kiosk="B"}') == 0

        def offline_alerts() -> list[dict[str, Any]]:
            doc = requests.get(f"{base}/api/v1/alerts", timeout=5).json()
            return [a for a in doc["data"]["alerts"] if a["labels"]["alertname"] == "KioskOffline"]

        alerts = wait_for(offline_alerts, 30, "KioskOffline alert")
        assert [(a["labels"]["kiosk"], a["state"]) for a in alerts] == [
            ("B", "pending")
        ]  # for: 15m
        assert (
            alerts[0]["annotations"]["summary"]
            == "Kiosk B (Central) cannot reach the library system"
        )

        # What a technician sees in Prometheus' own pages (docs/fleet.md shows them).
        graph = "/graph?" + urlencode(
            {
                "g0.expr": "sum by (kiosk) (kiosk_checkouts_total)",
                "g0.tab": "0",
                "g0.range_input": "5m",
            }
        )
        chromium(
            tmp_path,
            base + graph,
            screenshot="prometheus-checkouts.png",
            wait_ms=8000,
            size="1280,800",
        )
        alerts_page = "/graph?" + urlencode({"g0.expr": "ALERTS", "g0.tab": "1"})
        dom = chromium(
            tmp_path,
            base + alerts_page,
            screenshot="prometheus-alerts.png",
            wait_ms=8000,
            size="1280,500",
        )
        assert "KioskOffline" in dom and "pending" in dom
    finally:
        if prometheus is not None:
            prometheus.stop()
        for k in kiosks.values():
            k.stop()
