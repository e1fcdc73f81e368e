"""The kiosk's Prometheus metrics: one registry per kiosk, fed from the existing seams.

Counters come from the circulation service's results, the SIP2 client's exchanges, the tag
security service and the core worker; gauges (queue, link, devices) from a periodic sample.
Labels carry modes, outcomes, reasons, commands and device kinds from fixed lists only: never a
patron, card, item id or title (each value would be a new series, and personal data).
Target labels (library, branch, kiosk) are attached by Prometheus, not here.
"""

from __future__ import annotations

import logging
import platform
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from kiosk import __version__
from kiosk.fleet.alerts import KINDS as ALERT_KINDS
from kiosk.fleet.alerts import SINKS as ALERT_SINKS

log = logging.getLogger(__name__)

# Outcomes of a circulation transaction as the patron saw it.
OUTCOMES = ("done", "refused", "queued", "in_doubt")
MODES = ("online", "offline")
DEVICES = ("reader", "printer", "sorter")
PRINTER_STATES = ("ready", "paper_low", "paper_out", "offline", "none")
VISIT_OUTCOMES = ("ok", "refused", "offline", "error")

# SIP2 request command -> a name a dashboard reader knows (few values, fixed).
SIP2_COMMANDS = {
    "93": "login",
    "99": "sc_status",
    "23": "patron_status",
    "63": "patron_information",
    "11": "checkout",
    "09": "checkin",
    "29": "renew",
    "65": "renew_all",
    "17": "item_information",
    "35": "end_session",
}

# SIP2 round trips: a LAN answers in milliseconds, a loaded library system in seconds.
SIP2_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Tag seen on the pad to the screen's new state: people notice above ~0.3 s.
TAG_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0)


def command_name(command: str) -> str:
    return SIP2_COMMANDS.get(command, "other")


@dataclass(frozen=True)
class Sample:
    """What the kiosk looked like at one moment: the gauges' values."""

    link_up: bool
    queue_length: int = 0
    queue_oldest_age_s: float = 0.0
    in_doubt: int = 0
    staff_list: int = 0
    printer: str = "none"
    devices: tuple[tuple[str, bool], ...] = ()  # (device kind, up) for configured devices
    alert_queue: int = 0


class KioskMetrics:
    """Every kiosk metric, registered in one registry (so several kiosks can live in one process)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.build = Info("kiosk_build", "Kiosk software version", registry=r)
        self.build.info({"version": __version__, "python": platform.python_version()})
        self.config = Info(
            "kiosk_config", "Hash of the resolved configuration and its site layer", registry=r
        )
        self.role = Info("kiosk_role", "What this terminal does (checkout or bookdrop)", registry=r)
        self.start_time = Gauge(
            "kiosk_start_time_seconds", "When the kiosk started, Unix time", registry=r
        )
        self.start_time.set(time.time())
        self.site_config_ok = Gauge(
            "kiosk_site_config_ok",
            "1 when the site configuration loaded, 0 when a last good copy or none is used",
            registry=r,
        )

        self.visits = Counter(
            "kiosk_visits", "Patron identifications by outcome", ["outcome"], registry=r
        )
        labels = ["mode", "outcome", "reason"]
        self.checkouts = Counter(
            "kiosk_checkouts", "Checkouts by mode, outcome and refusal reason", labels, registry=r
        )
        self.returns = Counter(
            "kiosk_returns",
            "Returns (checkins) by mode, outcome and refusal reason",
            labels,
            registry=r,
        )
        self.renewals = Counter(
            "kiosk_renewals", "Renewals by mode, outcome and refusal reason", labels, registry=r
        )
        for counter in (self.checkouts, self.returns, self.renewals):
            for mode in MODES:
                counter.labels(mode, "done", "none")
        for outcome in VISIT_OUTCOMES:
            self.visits.labels(outcome)

        self.sip2_duration = Histogram(
            "kiosk_sip2_request_duration_seconds",
            "SIP2 round trip per command",
            ["command"],
            buckets=SIP2_BUCKETS,
            registry=r,
        )
        self.sip2_errors = Counter(
            "kiosk_sip2_errors",
            "SIP2 requests without a usable answer",
            ["command", "kind"],
            registry=r,
        )
        self.clock_drift = Gauge(
            "kiosk_clock_drift_seconds",
            "Library system's clock minus the kiosk's (from SIP2 transaction dates, 1 s resolution)",
            registry=r,
        )
        self.security_failures = Counter(
            "kiosk_security_write_failures",
            "Tag security (AFI/EAS) writes that failed verification",
            ["operation"],
            registry=r,
        )
        for op in ("secure", "unsecure"):
            self.security_failures.labels(op)
        self.tag_latency = Histogram(
            "kiosk_tag_to_screen_seconds",
            "Tags seen on the pad to the screen's new state",
            buckets=TAG_BUCKETS,
            registry=r,
        )
        self.alerts = Counter(
            "kiosk_alerts_raised", "Alerts raised for staff, by kind", ["kind"], registry=r
        )
        self.alert_failures = Counter(
            "kiosk_alert_delivery_failures",
            "Failed alert delivery attempts, by sink",
            ["sink"],
            registry=r,
        )
        # Every series a dashboard or rule may ask for exists from the start, at zero.
        for name in set(SIP2_COMMANDS.values()):
            for kind in ("link", "protocol"):
                self.sip2_errors.labels(name, kind)
        for kind in ALERT_KINDS:
            self.alerts.labels(kind)
        for sink in ALERT_SINKS:
            self.alert_failures.labels(sink)

        self.sample: Sample | None = None
        r.register(_SampleCollector(self))

    # -- recording ----------------------------------------------------------------------------

    def set_config(
        self, config_hash: str, site_ok: bool | None, role: str, site_hash: str = ""
    ) -> None:
        self.config.info({"hash": config_hash, "site_hash": site_hash})
        self.role.info({"role": role})
        if site_ok is not None:
            self.site_config_ok.set(1 if site_ok else 0)

    def observe_result(self, result: Any) -> None:
        """Count one circulation result (checkout, checkin, renew) by mode, outcome and reason."""
        op = getattr(result.operation, "value", str(result.operation))
        if op == "checkin":
            counter = self.returns
        elif op == "renew" or (op == "checkout" and result.renewal):
            counter = self.renewals
        elif op == "checkout":
            counter = self.checkouts
        else:
            return
        if result.in_doubt:
            outcome = "in_doubt"
        elif result.queued:
            outcome = "queued"
        else:
            outcome = "done" if result.ok else "refused"
        reason = getattr(result.refusal, "value", "") or "none"
        counter.labels(getattr(result.mode, "value", "online"), outcome, reason).inc()

    def observe_renew_all(self, result: Any) -> None:
        mode = getattr(result.mode, "value", "online")
        if result.renewed:
            self.renewals.labels(mode, "done", "none").inc(len(result.renewed))
        if result.unrenewed:
            self.renewals.labels(mode, "refused", "other").inc(len(result.unrenewed))

    def observe_visit(self, result: Any) -> None:
        if result.ok:
            outcome = "offline" if getattr(result.mode, "value", "") == "offline" else "ok"
        else:
            outcome = "refused"
        self.visits.labels(outcome).inc()

    def observe_exchange(self, command: str, seconds: float, response: Any, error: str) -> None:
        name = command_name(command)
        if error:
            self.sip2_errors.labels(name, error).inc()
        else:
            self.sip2_duration.labels(name).observe(seconds)
            drift = acs_clock_drift(response, time.time() - seconds / 2)
            if drift is not None:
                self.clock_drift.set(drift)


def acs_clock_drift(response: Any, local_unix: float) -> float | None:
    """The library system's clock minus ours, from an answer's transaction date (None without one).

    SIP2 dates are YYYYMMDDZZZZHHMMSS: ZZZZ blank means the library system's local time (taken as
    the kiosk's zone, as on any site where both are set right), `   Z` means UTC.
    """
    fixed = getattr(response, "fixed", None) or {}
    text = fixed.get("transaction_date", "")
    if len(text) != 18:
        return None
    try:
        stamp = datetime.strptime(text[:8] + text[12:], "%Y%m%d%H%M%S")
    except ValueError:
        return None
    if text[8:12].strip() == "Z":
        acs = stamp.replace(tzinfo=UTC).timestamp()
    else:
        acs = stamp.timestamp()  # naive: local time
    return round(acs - local_unix, 3)


class _SampleCollector(Collector):
    """The gauges of the latest sample; nothing is exported before the first one."""

    def __init__(self, metrics: KioskMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Any:
        s = self.metrics.sample
        if s is None:
            return
        yield _gauge("kiosk_link_up", "1 when the library system answers over SIP2", s.link_up)
        yield _gauge(
            "kiosk_offline_queue_length",
            "Offline work and in-doubt transactions waiting to be forwarded",
            s.queue_length,
        )
        yield _gauge(
            "kiosk_offline_queue_oldest_age_seconds",
            "Age of the oldest transaction waiting to be forwarded (0 when none)",
            s.queue_oldest_age_s,
        )
        yield _gauge(
            "kiosk_in_doubt_transactions",
            "Transactions sent without an answer, waiting for reconciliation",
            s.in_doubt,
        )
        yield _gauge(
            "kiosk_staff_list_length",
            "Forwarded offline work the library system refused: staff must handle it",
            s.staff_list,
        )
        yield _gauge("kiosk_alert_queue_length", "Alert deliveries not yet made", s.alert_queue)
        printer = GaugeMetricFamily(
            "kiosk_printer_state", "Receipt printer state (1 for the current one)", labels=["state"]
        )
        for state in PRINTER_STATES:
            printer.add_metric([state], 1 if s.printer == state else 0)
        yield printer
        devices = GaugeMetricFamily(
            "kiosk_device_up", "1 when a configured device works", labels=["device"]
        )
        for name, up in s.devices:
            devices.add_metric([name], 1 if up else 0)
        yield devices


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=float(value))


def metric_names(metrics: KioskMetrics) -> set[str]:
    """Every sample name the registry exposes now (for checking dashboards and rules against it)."""
    names = set()
    for family in metrics.registry.collect():
        for sample in family.samples:
            names.add(sample.name)
    return names
