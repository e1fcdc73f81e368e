"""Alerts that reach staff now: a durable queue and its sinks (webhook, Alertmanager, e-mail).

`raise_alert(kind, summary, **labels)` is the one call for events that cannot wait for a scrape
(a patron's "call staff", paper out, a failed security write). The alert is written to its own
SQLite file first, then a dispatcher thread delivers it to every configured sink, retrying with
exponential backoff, so an alert raised while the network is down arrives later, once.

Labels and summaries go through the log scrubber (card numbers masked); labels named after a
patron, card or PIN are refused outright.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from kiosk.errors import KioskError
from kiosk.fleet.settings import AlertsSection
from kiosk.logsetup import scrub

if TYPE_CHECKING:
    from email.message import EmailMessage

    import requests

log = logging.getLogger(__name__)

KINDS = (
    "call_staff",
    "paper_out",
    "paper_low",
    "security_write_failed",
    "desk_after_hours",
    "site_config_rejected",
    "test",
)
SINKS = ("webhook", "alertmanager", "email")
SEVERITIES = ("critical", "warning", "info")
_LABEL_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_FORBIDDEN_LABELS = frozenset(
    {"patron", "patron_id", "card", "card_number", "pin", "password", "name", "title"}
)


class AlertError(KioskError):
    """An alert could not be raised or queued; the message says why."""


class DeliveryError(AlertError):
    """One delivery attempt failed; `permanent` when retrying cannot help (e.g. HTTP 400)."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Alert:
    """One event for staff. `uid` is stable across retries, so a receiver can drop a repeat."""

    uid: str
    created: float  # Unix time
    kind: str
    summary: str
    severity: str = "warning"
    terminal: str = ""
    library: str = ""
    labels: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.uid,
            "created": datetime.fromtimestamp(self.created, UTC).isoformat(timespec="seconds"),
            "kind": self.kind,
            "summary": self.summary,
            "severity": self.severity,
            "terminal": self.terminal,
            "library": self.library,
            "labels": dict(self.labels),
        }


def make_alert(
    kind: str,
    summary: str,
    *,
    terminal: str = "",
    library: str = "",
    now: float | None = None,
    **labels: str,
) -> Alert:
    """A checked alert: known kind, label names Prometheus accepts, nothing naming a patron."""
    if not _LABEL_RE.match(kind):
        raise AlertError(f"alert kind {kind!r}: expected letters, digits and _ (e.g. call_staff)")
    severity = str(
        labels.pop(
            "severity",
            "critical"
            if kind in ("call_staff", "security_write_failed", "paper_out")
            else "warning",
        )
    )
    if severity not in SEVERITIES:
        raise AlertError(f"alert severity {severity!r}: expected one of {', '.join(SEVERITIES)}")
    clean = []
    for key, value in sorted(labels.items()):
        if not _LABEL_RE.match(key) or key.startswith("__"):
            raise AlertError(f"alert label {key!r}: expected letters, digits and _")
        if key.lower() in _FORBIDDEN_LABELS:
            raise AlertError(f"alert label {key!r}: alerts never carry patron data")
        clean.append((key, scrub(str(value))[:200]))
    return Alert(
        uid=uuid.uuid4().hex,
        created=time.time() if now is None else now,
        kind=kind,
        summary=scrub(summary)[:500],
        severity=severity,
        terminal=terminal,
        library=library,
        labels=tuple(clean),
    )


# -- sinks ------------------------------------------------------------------------------------


class Sink(Protocol):
    name: str

    def send(self, alert: Alert) -> None: ...


def _http_failure(what: str, resp: requests.Response) -> DeliveryError:
    # 4xx other than timeout / rate limit will not get better by retrying.
    permanent = 400 <= resp.status_code < 500 and resp.status_code not in (408, 429)
    return DeliveryError(
        f"{what}: HTTP {resp.status_code} {resp.text[:200]!r}", permanent=permanent
    )


class WebhookSink:
    """POSTs the alert as JSON; any 2xx is delivered."""

    name = "webhook"

    def __init__(
        self,
        url: str,
        *,
        token: str = "",
        timeout_s: float = 10.0,
        session: requests.Session | None = None,
    ) -> None:
        import requests  # lazy: 3.5 MiB for every kiosk, used only by the HTTP sinks

        self.url = url
        self.timeout_s = timeout_s
        self.session = session or requests.Session()
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def send(self, alert: Alert) -> None:
        import requests  # lazy: loaded by __init__ already; its exceptions are named here

        try:
            resp = self.session.post(
                self.url, json=alert.to_json(), headers=self.headers, timeout=self.timeout_s
            )
        except requests.RequestException as exc:
            raise DeliveryError(f"webhook {self.url}: {exc}") from exc
        if not 200 <= resp.status_code < 300:
            raise _http_failure(f"webhook {self.url}", resp)


def alertname(kind: str) -> str:
    """call_staff -> KioskCallStaff: Alertmanager's names follow the Prometheus rules' style."""
    return "Kiosk" + "".join(part.capitalize() for part in kind.split("_"))


class AlertmanagerSink:
    """Posts to Alertmanager's API (`POST /api/v2/alerts`), so kiosk events join the same routing."""

    name = "alertmanager"

    def __init__(
        self,
        url: str,
        *,
        resolve_after_s: float = 3600.0,
        timeout_s: float = 10.0,
        session: requests.Session | None = None,
    ) -> None:
        self.url = url.rstrip("/") + "/api/v2/alerts"
        import requests  # lazy: 3.5 MiB for every kiosk, used only by the HTTP sinks

        self.resolve_after_s = resolve_after_s
        self.timeout_s = timeout_s
        self.session = session or requests.Session()

    def payload(self, alert: Alert) -> list[dict[str, Any]]:
        labels = {
            "alertname": alertname(alert.kind),
            "severity": alert.severity,
            **dict(alert.labels),
        }
        if alert.terminal:
            labels["kiosk"] = alert.terminal
        if alert.library:
            labels["library"] = alert.library
        fmt = "%Y-%m-%dT%H:%M:%SZ"
        return [
            {
                "labels": labels,
                "annotations": {"summary": alert.summary, "alert_id": alert.uid},
                "startsAt": time.strftime(fmt, time.gmtime(alert.created)),
                "endsAt": time.strftime(fmt, time.gmtime(alert.created + self.resolve_after_s)),
            }
        ]

    def send(self, alert: Alert) -> None:
        import requests  # lazy: loaded by __init__ already; its exceptions are named here

        try:
            resp = self.session.post(self.url, json=self.payload(alert), timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise DeliveryError(f"Alertmanager {self.url}: {exc}") from exc
        if not 200 <= resp.status_code < 300:
            raise _http_failure(f"Alertmanager {self.url}", resp)


class EmailSink:
    """Sends one plain-text message per alert through SMTP (`smtp://` or `smtp+starttls://`)."""

    name = "email"

    def __init__(
        self,
        url: str,
        sender: str,
        recipients: Iterable[str],
        *,
        username: str = "",
        password: str = "",
        timeout_s: float = 10.0,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtp+starttls") or not parts.hostname:
            raise AlertError(
                f"alerts.email_url {url!r}: expected smtp://HOST[:PORT] or smtp+starttls://HOST[:PORT]"
            )
        self.host, self.port = parts.hostname, parts.port or 25
        self.starttls = parts.scheme == "smtp+starttls"
        self.sender, self.recipients = sender, tuple(recipients)
        if not self.recipients:
            raise AlertError("alerts.email_to: expected at least one address for e-mail alerts")
        self.username, self.password, self.timeout_s = username, password, timeout_s

    def message(self, alert: Alert) -> EmailMessage:
        from email.message import EmailMessage  # lazy: only where alerts are mailed

        msg = EmailMessage()
        where = alert.terminal or "kiosk"
        msg["Subject"] = f"[{where}] {alert.kind.replace('_', ' ')}: {alert.summary}"[:200]
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg["Message-ID"] = f"<{alert.uid}@kiosk>"
        body = [
            alert.summary,
            "",
            f"kiosk: {alert.terminal}",
            f"library: {alert.library}",
            f"severity: {alert.severity}",
        ]
        body += [f"{k}: {v}" for k, v in alert.labels]
        body.append(f"raised: {alert.to_json()['created']}")
        msg.set_content("\n".join(body) + "\n")
        return msg

    def send(self, alert: Alert) -> None:
        import smtplib  # lazy: only where alerts are mailed

        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.username:
                    smtp.login(self.username, self.password)
                smtp.send_message(self.message(alert))
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(
                f"e-mail to {', '.join(self.recipients)}: refused ({exc})", permanent=True
            ) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"e-mail via {self.host}:{self.port}: {exc}") from exc


def sinks_from_config(alerts: AlertsSection) -> list[Sink]:
    sinks: list[Sink] = []
    if alerts.webhook_url:
        sinks.append(
            WebhookSink(alerts.webhook_url, token=alerts.webhook_token, timeout_s=alerts.timeout_s)
        )
    if alerts.alertmanager_url:
        sinks.append(
            AlertmanagerSink(
                alerts.alertmanager_url,
                resolve_after_s=alerts.resolve_after_s,
                timeout_s=alerts.timeout_s,
            )
        )
    if alerts.email_url:
        sinks.append(
            EmailSink(
                alerts.email_url,
                alerts.email_from,
                alerts.email_to,
                username=alerts.email_username,
                password=alerts.email_password,
                timeout_s=alerts.timeout_s,
            )
        )
    return sinks


# -- the durable queue ---------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    uid TEXT PRIMARY KEY,
    created REAL NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    uid TEXT NOT NULL REFERENCES alerts(uid),
    sink TEXT NOT NULL,
    state TEXT NOT NULL,            -- pending, sending, delivered, failed
    attempts INTEGER NOT NULL DEFAULT 0,
    next_try REAL NOT NULL,
    last_error TEXT NOT NULL DEFAULT '',
    delivered REAL,
    PRIMARY KEY (uid, sink)
);
"""


@dataclass(frozen=True)
class Delivery:
    alert: Alert
    sink: str
    state: str
    attempts: int
    next_try: float
    last_error: str


class AlertQueue:
    """Alerts and their per-sink deliveries in one SQLite file of their own (WAL, full sync)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None, timeout=10
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            # A process that died while sending leaves 'sending': try again (the uid lets receivers drop a repeat).
            self._db.execute("UPDATE deliveries SET state='pending' WHERE state='sending'")
        except sqlite3.Error as exc:
            raise AlertError(f"alert queue {self.path}: cannot open ({exc})") from exc

    def add(self, alert: Alert, sinks: Iterable[str]) -> None:
        body = json.dumps({k: v for k, v in alert.__dict__.items()}, ensure_ascii=False)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT INTO alerts(uid, created, body) VALUES (?, ?, ?)",
                    (alert.uid, alert.created, body),
                )
                for sink in sinks:
                    self._db.execute(
                        "INSERT INTO deliveries(uid, sink, state, next_try) VALUES (?, ?, 'pending', ?)",
                        (alert.uid, sink, alert.created),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                # Undo the transaction whatever stopped it; the fault goes on unchanged.
                self._db.execute("ROLLBACK")
                raise

    def _rows(self, where: str, args: tuple[Any, ...] = ()) -> list[Delivery]:
        sql = (
            "SELECT a.body, d.sink, d.state, d.attempts, d.next_try, d.last_error FROM deliveries d "
            f"JOIN alerts a ON a.uid = d.uid WHERE {where} ORDER BY a.created, d.sink"
        )
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        out = []
        for body, sink, state, attempts, next_try, error in rows:
            data = json.loads(body)
            data["labels"] = tuple(tuple(p) for p in data.get("labels", ()))
            out.append(Delivery(Alert(**data), sink, state, attempts, next_try, error))
        return out

    def due(self, now: float) -> list[Delivery]:
        return self._rows("d.state = 'pending' AND d.next_try <= ?", (now,))

    def all(self) -> list[Delivery]:
        return self._rows("1")

    def claim(self, uid: str, sink: str) -> bool:
        """Take a delivery for sending; False when another process took it first."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE deliveries SET state='sending' WHERE uid=? AND sink=? AND state='pending'",
                (uid, sink),
            )
        return cur.rowcount == 1

    def finish(
        self,
        uid: str,
        sink: str,
        *,
        delivered: bool,
        now: float,
        next_try: float = 0.0,
        error: str = "",
        give_up: bool = False,
    ) -> None:
        state = "delivered" if delivered else ("failed" if give_up else "pending")
        with self._lock:
            self._db.execute(
                "UPDATE deliveries SET state=?, attempts=attempts+1, next_try=?, last_error=?, delivered=? WHERE uid=? AND sink=?",
                (state, next_try, error[:500], now if delivered else None, uid, sink),
            )

    def pending_count(self) -> int:
        with self._lock:
            return int(
                self._db.execute(
                    "SELECT count(*) FROM deliveries WHERE state IN ('pending', 'sending')"
                ).fetchone()[0]
            )

    def next_due(self) -> float | None:
        with self._lock:
            row = self._db.execute(
                "SELECT min(next_try) FROM deliveries WHERE state='pending'"
            ).fetchone()
        return None if row[0] is None else float(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


# -- the service ----------------------------------------------------------------------------------


class AlertService:
    """Raises alerts into the queue and delivers them from one dispatcher thread."""

    def __init__(
        self,
        queue_: AlertQueue,
        sinks: Iterable[Sink],
        *,
        terminal: str = "",
        library: str = "",
        retry_initial_s: float = 5.0,
        retry_max_s: float = 600.0,
        now: Callable[[], float] = time.time,
        on_raised: Callable[[Alert], None] | None = None,
        on_failure: Callable[[str], None] | None = None,
    ) -> None:
        self.queue = queue_
        self.sinks = {s.name: s for s in sinks}
        self.terminal, self.library = terminal, library
        self.retry_initial_s, self.retry_max_s = retry_initial_s, retry_max_s
        self.now = now
        self.on_raised, self.on_failure = on_raised, on_failure
        self._inbox: queue.Queue[Alert] = queue.Queue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_config(cls, cfg: Any, **kwargs: Any) -> AlertService:
        section: AlertsSection = cfg.alerts
        return cls(
            AlertQueue(cfg.resolve_path(section.queue_path)),
            sinks_from_config(section),
            terminal=cfg.kiosk.terminal_id,
            library=cfg.kiosk.library_name,
            retry_initial_s=section.retry_initial_s,
            retry_max_s=section.retry_max_s,
            **kwargs,
        )

    def raise_alert(self, kind: str, summary: str, **labels: str) -> str:
        """Queue an alert for every sink; returns its id. Never blocks on the network (or, once
        the dispatcher runs, on the disk): the dispatcher thread writes and delivers it."""
        alert = make_alert(
            kind, summary, terminal=self.terminal, library=self.library, now=self.now(), **labels
        )
        log.warning("alert %s raised: %s", alert.kind, alert.summary)
        if self._thread is not None and self._thread.is_alive():
            self._inbox.put(alert)
            self._wake.set()
        else:
            self._store(alert)
        if self.on_raised is not None:
            self.on_raised(alert)
        return alert.uid

    def _store(self, alert: Alert) -> None:
        if not self.sinks:
            log.warning("alert %s not sent anywhere: no [alerts] sink configured", alert.kind)
        self.queue.add(alert, self.sinks)

    def _drain_inbox(self) -> None:
        while True:
            try:
                alert = self._inbox.get_nowait()
            except queue.Empty:
                return
            try:
                self._store(alert)
            except Exception:
                # Raising an alert must never fail its caller (a patron's help tap, a watchdog).
                log.exception("alert %s could not be queued", alert.kind)

    def backoff(self, attempts: int) -> float:
        return float(min(self.retry_max_s, self.retry_initial_s * (2 ** max(0, attempts))))

    def deliver_due(self) -> int:
        """One pass over the deliveries due now; returns how many were delivered."""
        self._drain_inbox()
        delivered = 0
        for d in self.queue.due(self.now()):
            sink = self.sinks.get(d.sink)
            if sink is None:
                continue  # a sink no longer configured: left for the day it is again
            if not self.queue.claim(d.alert.uid, d.sink):
                continue
            try:
                sink.send(d.alert)
            except DeliveryError as exc:
                wait = self.backoff(d.attempts)
                log.warning(
                    "alert %s to %s failed (attempt %d, next in %.0f s): %s",
                    d.alert.kind,
                    d.sink,
                    d.attempts + 1,
                    wait,
                    exc,
                )
                self.queue.finish(
                    d.alert.uid,
                    d.sink,
                    delivered=False,
                    now=self.now(),
                    next_try=self.now() + wait,
                    error=str(exc),
                    give_up=exc.permanent,
                )
                if self.on_failure is not None:
                    self.on_failure(d.sink)
            except Exception as exc:
                # A sink is outside code: its bug is logged and counted as a failed delivery.
                log.exception("alert %s to %s: unexpected failure", d.alert.kind, d.sink)
                self.queue.finish(
                    d.alert.uid,
                    d.sink,
                    delivered=False,
                    now=self.now(),
                    next_try=self.now() + self.backoff(d.attempts),
                    error=repr(exc),
                )
            else:
                self.queue.finish(d.alert.uid, d.sink, delivered=True, now=self.now())
                log.info("alert %s delivered to %s", d.alert.kind, d.sink)
                delivered += 1
        return delivered

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="alert-dispatcher", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.deliver_due()
            except Exception:
                # The dispatcher thread's last line of defence: the next pass still runs.
                log.exception("alert dispatcher pass failed")
            nxt = self.queue.next_due()
            wait = 30.0 if nxt is None else min(30.0, max(0.05, nxt - self.now()))
            self._wake.wait(wait)
            self._wake.clear()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        self._drain_inbox()

    def close(self) -> None:
        self.stop()
        self.queue.close()


# -- the one entry point ----------------------------------------------------------------------------

_service: AlertService | None = None


def install(service: AlertService | None) -> None:
    """Make `service` the one `raise_alert` uses (the composition root does this)."""
    global _service
    _service = service


def current() -> AlertService | None:
    return _service


def raise_alert(kind: str, summary: str, **labels: str) -> str | None:
    """Tell staff now: queued durably and delivered to every configured sink. Returns the alert id,
    or None when this kiosk runs without an alert service (logged). Safe from any thread."""
    service = _service
    if service is None:
        log.warning(
            "alert %s not sent: the kiosk has no alert service running: %s", kind, scrub(summary)
        )
        return None
    return service.raise_alert(kind, summary, **labels)


def deliveries_json(deliveries: Iterable[Delivery]) -> list[Mapping[str, Any]]:
    return [
        {
            **d.alert.to_json(),
            "sink": d.sink,
            "state": d.state,
            "attempts": d.attempts,
            "last_error": d.last_error,
        }
        for d in deliveries
    ]
