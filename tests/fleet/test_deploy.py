"""deploy/: the Prometheus rules and config pass promtool (syntax and unit tests), and every metric
the rules and the Grafana dashboard use is one a running kiosk really exposes."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from kiosk import config
from kiosk.fleet.metrics import metric_names as exposed_names
from tests.fleet.conftest import write_kiosk
from tests.fleet.kiosk_process import HeadlessKiosk
from tests.fleet.promql import metric_names

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "library-kiosks.json"
# Series Prometheus itself makes for every target, and the rules' own recordings.
PROMETHEUS_NAMES = {"up", "scrape_duration_seconds"}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("promtool")
    assert exe, "promtool missing: scripts/setup-dev.sh installs Debian's prometheus package"
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=60, cwd=PROM)


def test_promtool_accepts_the_rules_and_the_config() -> None:
    res = promtool("check", "rules", "rules/kiosk.rules.yml")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS" in res.stdout
    res = promtool("check", "config", "prometheus.yml")
    assert res.returncode == 0, res.stdout + res.stderr


def test_promtool_unit_tests_of_the_alert_rules_pass() -> None:
    res = promtool("test", "rules", "tests/kiosk.rules.test.yml")
    assert res.returncode == 0, res.stdout + res.stderr


def test_promtool_unit_tests_can_fail(tmp_path: Path) -> None:
    # The same tests against rules with the offline alert's delay changed must fail.
    rules = (PROM / "rules" / "kiosk.rules.yml").read_text()
    assert "for: 15m" in rules
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "kiosk.rules.yml").write_text(rules.replace("for: 15m", "for: 30m", 1))
    (tmp_path / "tests").mkdir()
    shutil.copy(PROM / "tests" / "kiosk.rules.test.yml", tmp_path / "tests")
    exe = shutil.which("promtool")
    assert exe
    res = subprocess.run(
        [exe, "test", "rules", "tests/kiosk.rules.test.yml"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert res.returncode != 0 and "KioskOffline" in res.stdout + res.stderr


@pytest.fixture(scope="module")
def kiosk_names(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The names a kiosk exposes after a visit with a checkout (histograms have buckets then)."""
    from kiosk.sync.acs.server import start_embedded

    tmp = tmp_path_factory.mktemp("names")
    acs = start_embedded(
        f"sqlite:///{tmp / 'acs.sqlite'}", "127.0.0.1", 0, fresh=True, login=("kiosk", "demo")
    )
    try:
        k = HeadlessKiosk(config.load(write_kiosk(tmp, port=acs.port)))
        try:
            assert k.checkout("LV0002", "30000001") == "checked_out"
            k.fleet.sample_now()
            return exposed_names(k.fleet.metrics)
        finally:
            k.close()
    finally:
        acs.stop()


def _recorded(rules: dict[str, Any]) -> set[str]:
    return {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}


def _dashboard_exprs(dash: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for panel in dash["panels"]:
        for t in panel.get("targets", []):
            out.append((panel["title"], t["expr"]))
    for var in dash["templating"]["list"]:
        q = var.get("query")
        if isinstance(q, dict):
            out.append((f"variable {var['name']}", q["query"]))
    return out


def test_every_dashboard_panel_uses_metrics_the_kiosk_exposes(kiosk_names: set[str]) -> None:
    dash = json.loads(DASHBOARD.read_text())
    exprs = _dashboard_exprs(dash)
    assert len(exprs) > 20
    used = set()
    for title, expr in exprs:
        names = metric_names(expr)
        assert names, f"panel {title!r}: no metric in {expr!r}"
        missing = names - kiosk_names - PROMETHEUS_NAMES
        assert not missing, f"panel {title!r} asks for {sorted(missing)}, which no kiosk exposes"
        used |= names
    assert {"kiosk_checkouts_total", "kiosk_link_up", "kiosk_offline_queue_length"} <= used


def test_dashboard_is_a_grafana_model() -> None:
    dash = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    assert dash["uid"] and dash["title"]
    for p in dash["panels"]:
        assert (
            set(p["gridPos"]) == {"x", "y", "w", "h"}
            and p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
        )
        if p["type"] != "row":
            assert p["targets"] and all(t["refId"] for t in p["targets"])


def test_every_rule_uses_metrics_the_kiosk_exposes(kiosk_names: set[str]) -> None:
    rules = yaml.safe_load((PROM / "rules" / "kiosk.rules.yml").read_text())
    recorded = _recorded(rules)
    for group in rules["groups"]:
        for rule in group["rules"]:
            missing = metric_names(rule["expr"]) - kiosk_names - PROMETHEUS_NAMES - recorded
            assert not missing, (
                f"rule {rule.get('alert') or rule.get('record')} asks for {sorted(missing)}"
            )


def test_the_name_check_catches_a_misspelt_metric(kiosk_names: set[str]) -> None:
    assert metric_names('sum(kiosk_checkout_total{mode="online"})') - kiosk_names == {
        "kiosk_checkout_total"
    }
    assert (
        metric_names(
            "histogram_quantile(0.95, sum by (le) (rate(kiosk_tag_to_screen_seconds_bucket[5m])))"
        )
        <= kiosk_names
    )
