"""Wires fleet operation to a kiosk built by the composition root (kiosk.app.build_services).

`attach(services)` observes the parts already built, without changing what they do: the
circulation service's results, the SIP2 client's exchanges, the tag security service's writes,
the stack reader's rounds and the core worker's tag events. It starts the exporter, the alert
dispatcher and the status page when configured, and a sampler that looks at the queue, the link
and the devices on the core worker (each device keeps its one owner).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path
from typing import Any

from prometheus_client import start_http_server

from kiosk import config_layers
from kiosk.core.errors import log_fault
from kiosk.core.events import TagsChanged
from kiosk.core.maintenance import ServiceSwitch
from kiosk.errors import ConfigError
from kiosk.fleet import alerts as kalerts
from kiosk.fleet.metrics import KioskMetrics, Sample
from kiosk.fleet.statstore import StatsStore
from kiosk.fleet.statuspage import StatusPage
from kiosk.sync.sip2.codec import Sip2Error, Sip2LinkError

log = logging.getLogger(__name__)

# How often a running kiosk copies its journal's days into the statistics file.
ROLL_UP_S = 3600.0


def parse_listen(text: str, what: str) -> tuple[str, int]:
    """`HOST:PORT` (or `[v6]:PORT`) as a pair; raises ConfigError naming the key."""

    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{what}: expected HOST:PORT (e.g. 127.0.0.1:9464), got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


@dataclass
class Fleet:
    """What attach() started for one kiosk; `close()` stops it (also through services.closers)."""

    services: Any
    metrics: KioskMetrics
    alerts: kalerts.AlertService | None = None
    exporter: Any = None  # the exporter's HTTP server
    status_page: Any = None
    reader_error: str = ""
    printer_state: str = "none"
    site_hash: str = ""  # of the site file last looked at
    # In or out of service; the maintenance screen can share it (services.fleet.service_switch).
    service_switch: ServiceSwitch = field(default_factory=ServiceSwitch)
    _rolled_up: float | None = None  # monotonic time of the last statistics roll-up
    _stop: threading.Event = field(default_factory=threading.Event)
    _sampler: threading.Thread | None = None

    @property
    def exporter_address(self) -> tuple[str, int] | None:
        return None if self.exporter is None else self.exporter.server_address[:2]

    # -- sampling ---------------------------------------------------------------------------

    def take_sample(self) -> Sample:
        """Look at the link, the queue and the devices now (call on the core worker)."""
        s = self.services
        circ = s.circulation
        link = circ.status()
        pending = circ.journal.pending_offline()
        now = circ.clock.now()
        oldest = min((e.created for e in pending), default=None)
        in_doubt = sum(1 for e in pending if getattr(e.state, "value", e.state) == "in_doubt")
        staff = len(circ.journal.refusals())
        printer = "none"
        if s.printer is not None:
            try:
                printer = str(getattr(s.printer.status(), "value", s.printer.status()))
            except Exception as exc:
                # A device boundary: metrics observe, and a failing driver must not stop them.
                log_fault(log, exc, "printer status unavailable", level=logging.WARNING)
                printer = "offline"
        devices: list[tuple[str, bool]] = []
        reader_fault = any(f.startswith("RFID reader") for f in s.faults)
        devices.append(
            ("reader", s.stack is not None and not reader_fault and not self.reader_error)
        )
        if printer != "none":
            devices.append(("printer", printer in ("ready", "paper_low")))
        if s.sorter is not None:
            try:
                up = str(s.sorter.status()) == "ready"
            except Exception as exc:
                # A device boundary, as for the printer.
                log_fault(log, exc, "sorter status unavailable", level=logging.WARNING)
                up = False
            devices.append(("sorter", up))
        self._printer_changed(printer)
        sample = Sample(
            link_up=bool(link.online),
            queue_length=len(pending),
            queue_oldest_age_s=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
            in_doubt=in_doubt,
            staff_list=staff,
            printer=printer,
            devices=tuple(devices),
            alert_queue=self.alerts.queue.pending_count() if self.alerts else 0,
        )
        self.metrics.sample = sample
        return sample

    def _printer_changed(self, state: str) -> None:
        previous, self.printer_state = self.printer_state, state
        if state == previous or self.alerts is None:
            return
        if state == "paper_out":
            self.alerts.raise_alert("paper_out", "The receipt printer is out of paper.")
        elif state == "paper_low" and previous != "paper_out":
            self.alerts.raise_alert(
                "paper_low", "The receipt printer's paper is running low.", severity="warning"
            )

    def sample_now(self, timeout_s: float = 10.0) -> Sample | None:
        """Take a sample on the core worker and wait for it (bounded); None when it did not come."""
        try:
            future = self.services.worker.submit(self.take_sample)
            return future.result(timeout=timeout_s)
        except Exception as exc:
            # Metrics observe: a failed or late sample must never stop the kiosk.
            log_fault(log, exc, "metrics sample not taken", level=logging.WARNING)
            return None

    def check_site(self) -> list[str]:
        """Look at the site file again: a changed one that does not load is reported to staff.

        The running kiosk keeps its configuration either way (a good new site file is used at
        the next start, and becomes the last good copy now); returns the problems found.
        """

        cfg = self.services.cfg
        report = config_layers.report_for(cfg)
        if not report.site_file:
            return []
        current = config_layers.file_hash(Path(report.site_file))
        if current == self.site_hash:
            return []
        self.site_hash = current
        kiosk_file = Path(report.kiosk_file)
        try:
            config_layers.load_layers(kiosk_file, kiosk_file.read_text(encoding="utf-8"))
            problems = list(config_layers.report_for(cfg).problems)
        except (ConfigError, OSError, UnicodeDecodeError) as exc:
            problems = [f"the kiosk's own configuration no longer loads: {exc}"]
        self.metrics.site_config_ok.set(0 if problems else 1)
        if problems:
            log.error("site configuration changed and was rejected: %s", problems[0])
            if self.alerts is not None:
                self.alerts.raise_alert("site_config_rejected", problems[0], severity="warning")
        else:
            log.info("site configuration changed; it applies at the next start of the kiosk")
        return problems

    def roll_up_statistics(self) -> None:
        """Copy the journal's recent days into the statistics file that outlives purges."""

        journal = self.services.circulation.journal
        store = StatsStore.for_config(self.services.cfg)
        try:
            since = (
                None
                if self._rolled_up is None
                else datetime.combine(date.today() - timedelta(days=1), datetime.min.time())
            )
            store.roll_up(journal.entries(since))
        finally:
            store.close()
        self._rolled_up = time.monotonic()

    def start_sampler(self, interval_s: float) -> None:
        def run() -> None:
            while not self._stop.is_set():
                self.sample_now(timeout_s=max(interval_s, 5.0))
                for job in (self.check_site, self.roll_up_statistics):
                    if (
                        job is self.roll_up_statistics
                        and self._rolled_up is not None
                        and time.monotonic() - self._rolled_up < ROLL_UP_S
                    ):
                        continue
                    try:
                        job()
                    except Exception:
                        # The sampler thread's last line of defence: the next job still runs.
                        log.exception("%s failed", job.__name__)
                self._stop.wait(interval_s)

        self._sampler = threading.Thread(target=run, name="metrics-sampler", daemon=True)
        self._sampler.start()

    def close(self) -> None:
        self._stop.set()
        if self._sampler is not None:
            self._sampler.join(5.0)
            self._sampler = None
        if self.status_page is not None:
            self.status_page.close()
            self.status_page = None
        if self.exporter is not None:
            self.exporter.shutdown()
            self.exporter.server_close()
            self.exporter = None
        if self.alerts is not None:
            if kalerts.current() is self.alerts:
                kalerts.install(None)
            self.alerts.close()
            self.alerts = None


# -- observing the parts ----------------------------------------------------------------------------


def _after(
    obj: Any, name: str, observe: Callable[[Any], None], failed: Callable[[], None] | None = None
) -> None:
    """Replace obj.name by a call that hands each result to `observe` (whose failure is only
    logged); `failed` hears of a call that raised (the exception goes on unchanged)."""
    original = getattr(obj, name, None)
    if original is None:
        return

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            result = original(*args, **kwargs)
        except Exception:
            # Counted, then raised again unchanged: the wrapped call's caller handles it.
            if failed is not None:
                failed()
            raise
        try:
            observe(result)
        except Exception:
            # Metrics observe: a bug in observing must not change the observed call's result.
            log.exception("metrics: observing %s failed", name)
        return result

    setattr(obj, name, wrapper)


def _observe_sip2(client: Any, metrics: KioskMetrics) -> None:
    original = getattr(client, "request", None)
    if original is None:
        return

    def request(msg: Any, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            resp = original(msg, *args, **kwargs)
        except Sip2LinkError:
            metrics.observe_exchange(msg.command, time.perf_counter() - t0, None, "link")
            raise
        except Sip2Error:
            metrics.observe_exchange(msg.command, time.perf_counter() - t0, None, "protocol")
            raise
        seconds = time.perf_counter() - t0
        try:
            metrics.observe_exchange(msg.command, seconds, resp, "")
        except Exception:
            # As above: the SIP2 answer goes back to the caller whatever the metrics do.
            log.exception("metrics: observing a SIP2 exchange failed")
        return resp

    client.request = request


def _observe_security(security: Any, metrics: KioskMetrics, fleet: Fleet) -> None:
    def failed(op: str) -> Callable[[Any], None]:
        def observe(result: Any) -> None:
            if not getattr(result, "ok", True):
                metrics.security_failures.labels(op).inc()
                if fleet.alerts is not None:
                    fleet.alerts.raise_alert(
                        "security_write_failed",
                        f"A tag's security could not be {'set' if op == 'secure' else 'cleared'} and verified; "
                        "the item needs a look at the desk.",
                        operation=op,
                    )

        return observe

    _after(security, "secure", failed("secure"))
    _after(security, "unsecure", failed("unsecure"))


def _observe_tags(worker: Any, metrics: KioskMetrics) -> None:
    """Time from tags handed to the core worker to the workflow's new state (the screen's snapshot)."""

    original = getattr(worker, "submit", None)
    if original is None:
        return

    def submit(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if args and isinstance(args[0], TagsChanged) and args[0].added:
            t0 = time.perf_counter()

            def timed(*a: Any, **k: Any) -> Any:
                try:
                    return fn(*a, **k)
                finally:
                    metrics.tag_latency.observe(time.perf_counter() - t0)

            return original(timed, *args, **kwargs)
        return original(fn, *args, **kwargs)

    worker.submit = submit


def parse_hours(text: str) -> tuple[dt_time, dt_time] | None:
    """`HH:MM-HH:MM` as (opens, closes), or None when empty; raises ValueError when malformed."""
    if not text.strip():
        return None
    opens, sep, closes = text.partition("-")
    if not sep:
        raise ValueError(f"expected HH:MM-HH:MM, got {text!r}")
    return dt_time.fromisoformat(opens.strip()), dt_time.fromisoformat(closes.strip())


def within(hours: tuple[dt_time, dt_time], moment: dt_time) -> bool:
    """Whether `moment` is inside the hours; closing before opening means open over midnight."""
    opens, closes = hours
    return opens <= moment < closes if opens <= closes else moment >= opens or moment < closes


def _observe_bookdrop(
    bookdrop: Any, fleet: Fleet, hours: tuple[dt_time, dt_time], clock: Any
) -> None:
    """Alert when the book drop sends an item to staff (exception bin, take to desk) after hours."""
    seen = {"sequence": 0}

    def observe(state: Any) -> None:
        item = getattr(state, "last", None)
        if item is None or item.sequence <= seen["sequence"]:
            return
        seen["sequence"] = item.sequence
        to_staff = str(item.final) == "exception_bin" or str(item.instruction) == "take_to_desk"
        if not to_staff or fleet.alerts is None or within(hours, clock.now().time()):
            return
        what = item.item_id or "an item with an unreadable tag"
        reason = str(getattr(item.outcome, "value", item.outcome) or "take_to_desk")
        fleet.alerts.raise_alert(
            "desk_after_hours",
            f"Book drop: {what} needs staff ({reason.replace('_', ' ')}, bin {item.bin}) and the desk is closed.",
            reason=reason,
            severity="warning",
        )

    for name in ("handle_tags", "handle_barcode"):
        _after(bookdrop, name, observe)


def attach(services: Any) -> Fleet:
    """Observe a kiosk's parts and start what its [metrics], [alerts] and [status_page] ask for."""

    cfg = services.cfg
    metrics = KioskMetrics()
    fleet = Fleet(services=services, metrics=metrics)
    report = config_layers.report_for(cfg)
    metrics.set_config(
        config_layers.config_hash(cfg),
        None if not report.site_file else report.site_used == config_layers.SITE,
        cfg.kiosk.mode,
        report.site_hash,
    )
    if report.site_file:
        fleet.site_hash = config_layers.file_hash(Path(report.site_file))

    circ = services.circulation
    for name in ("checkout", "checkin", "renew"):
        _after(circ, name, metrics.observe_result)
    _after(circ, "renew_all", metrics.observe_renew_all)
    _after(circ, "identify_patron", metrics.observe_visit, metrics.visits.labels("error").inc)
    _observe_sip2(circ.client, metrics)
    if services.security is not None:
        _observe_security(services.security, metrics, fleet)
    if services.stack is not None:
        _after(
            services.stack,
            "poll_once",
            lambda change: setattr(fleet, "reader_error", change.error or ""),
        )
    if services.worker is not None:
        _observe_tags(services.worker, metrics)
    if services.bookdrop is not None and cfg.alerts.desk_hours:
        try:
            hours = parse_hours(cfg.alerts.desk_hours)
        except ValueError as exc:
            log.error("alerts.desk_hours: %s; no after-hours alerts from this book drop", exc)
        else:
            if hours is not None:
                _observe_bookdrop(services.bookdrop, fleet, hours, services.clock)

    if any((cfg.alerts.webhook_url, cfg.alerts.alertmanager_url, cfg.alerts.email_url)):
        fleet.alerts = kalerts.AlertService.from_config(
            cfg,
            on_raised=lambda a: metrics.alerts.labels(a.kind).inc(),
            on_failure=lambda sink: metrics.alert_failures.labels(sink).inc(),
        )
        fleet.alerts.start()
        kalerts.install(fleet.alerts)
        for problem in report.problems:
            fleet.alerts.raise_alert("site_config_rejected", problem, severity="warning")

    if cfg.metrics.enabled:
        host, port = parse_listen(cfg.metrics.listen, "metrics.listen")
        try:
            fleet.exporter, _thread = start_http_server(
                port,
                host,
                registry=metrics.registry,
                certfile=cfg.resolve_path(cfg.metrics.certfile) if cfg.metrics.certfile else None,
                keyfile=cfg.resolve_path(cfg.metrics.keyfile) if cfg.metrics.keyfile else None,
                client_cafile=cfg.resolve_path(cfg.metrics.client_cafile)
                if cfg.metrics.client_cafile
                else None,
                client_auth_required=bool(cfg.metrics.client_cafile),
            )
            log.info("metrics on http://%s:%d/metrics", *fleet.exporter.server_address[:2])
        except OSError as exc:
            # A taken port must not keep the patron kiosk from starting; `up == 0` will show it.
            log.error("metrics exporter not started on %s: %s", cfg.metrics.listen, exc)
    if cfg.status_page.enabled:
        fleet.status_page = StatusPage.start(fleet)
    if (
        fleet.exporter is not None
        or fleet.status_page is not None
        or (fleet.alerts and report.site_file)
    ):
        fleet.start_sampler(cfg.metrics.sample_interval_s)
    services.fleet = fleet
    services.closers.append(fleet.close)
    return fleet
