"""The technician's status page: the maintenance screen's content in a browser, without walking to
the branch.

Off by default; bound to localhost unless configured; every request needs `[status_page] token`
(`?token=` or `Authorization: Bearer`). It only reads, unless `action_token` is set: then out of
service / back, forward now and test print are offered, each needing that second token. The
page shows no patron data: card numbers are masked and SIP2 fields that can name a patron
(name, address, e-mail, phone, screen messages, titles) are removed.
"""

from __future__ import annotations

import hmac
import html
import json
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from kiosk import __version__, config_layers
from kiosk.diagnostics import Diagnostics
from kiosk.fleet.statstore import StatsStore
from kiosk.logsetup import scrub

log = logging.getLogger(__name__)

ACTIONS = ("out_of_service", "back_in_service", "forward_now", "test_print")
WAIT_S = 30.0
# SIP2 fields that can identify a patron or say what they read: never on the page.
_PERSONAL_FIELDS = re.compile(
    r"(?<=\|)(AE|AF|AG|AJ|BD|BE|BF|PB|PC|PD|DA|CY|AU|AV|AS|AT|CD)[^|\r\n]*"
)


def redact_exchange(text: str) -> str:
    return _PERSONAL_FIELDS.sub(lambda m: m.group(1) + "[removed]", text)


@dataclass(frozen=True)
class ActionOutcome:
    ok: bool
    text: str


class StatusPage:
    """An HTTP server for one kiosk's status page (a thread per request; data read on the core worker)."""

    def __init__(self, fleet: Any, host: str, port: int) -> None:
        section = fleet.services.cfg.status_page
        self.fleet = fleet
        self.token = section.token
        self.action_token = section.action_token
        page = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                page.handle_get(self)

            def do_POST(self) -> None:  # noqa: N802
                page.handle_post(self)

            def log_message(self, fmt: str, *args: Any) -> None:
                log.debug("status page: " + fmt, *args)

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="status-page", daemon=True
        )
        self._thread.start()

    @classmethod
    def start(cls, fleet: Any) -> StatusPage | None:
        from kiosk.fleet.runtime import parse_listen  # lazy: fleet.runtime imports this module

        section = fleet.services.cfg.status_page
        if not section.token:
            log.error(
                "status page not started: [status_page] token is empty (the page is never served without one)"
            )
            return None
        host, port = parse_listen(section.listen, "status_page.listen")
        try:
            page = cls(fleet, host, port)
        except OSError as exc:
            log.error("status page not started on %s: %s", section.listen, exc)
            return None
        log.info("technician status page on http://%s:%d/", *page.address)
        return page

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.server.server_address[:2]
        return str(host), int(port)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)

    # -- requests ------------------------------------------------------------------------------

    @staticmethod
    def _given(
        req: BaseHTTPRequestHandler,
        query: dict[str, list[str]],
        form: dict[str, list[str]],
        name: str,
    ) -> str:
        auth = req.headers.get("Authorization", "")
        if name == "token" and auth.startswith("Bearer "):
            return auth[7:].strip()
        if name == "action_token" and req.headers.get("X-Action-Token"):
            return str(req.headers["X-Action-Token"])
        return (form.get(name) or query.get(name) or [""])[0]

    @staticmethod
    def _ok(given: str, expected: str) -> bool:
        return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())

    def _send(
        self,
        req: BaseHTTPRequestHandler,
        status: int,
        body: str,
        ctype: str = "text/html; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        data = body.encode("utf-8")
        req.send_response(status)
        req.send_header("Content-Type", ctype)
        req.send_header("Content-Length", str(len(data)))
        req.send_header("Cache-Control", "no-store")
        req.send_header("X-Content-Type-Options", "nosniff")
        req.send_header(
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'",
        )
        req.send_header("Referrer-Policy", "no-referrer")
        for k, v in (headers or {}).items():
            req.send_header(k, v)
        req.end_headers()
        req.wfile.write(data)

    def _refuse(self, req: BaseHTTPRequestHandler, status: int, text: str) -> None:
        self._send(
            req, status, _layout("Status page", f'<p class="refused">{html.escape(text)}</p>')
        )

    def handle_get(self, req: BaseHTTPRequestHandler) -> None:
        url = urlsplit(req.path)
        query = parse_qs(url.query)
        given = self._given(req, query, {}, "token")
        if not given:
            return self._refuse(
                req,
                401,
                "A token is required: open this page with ?token=… (see [status_page] token).",
            )
        if not self._ok(given, self.token):
            return self._refuse(req, 403, "Wrong token.")
        if url.path not in ("/", "/status.json"):
            return self._refuse(req, 404, "No such page.")
        try:
            data = self.collect()
        except Exception:
            # The HTTP handler's last line of defence: a 500 page, the traceback in the log.
            log.exception("status page: collecting the kiosk's state failed")
            return self._refuse(
                req, 500, "The kiosk's state could not be read now; see the kiosk's log."
            )
        if url.path == "/status.json":
            return self._send(
                req,
                200,
                json.dumps(data, ensure_ascii=False, indent=2, default=str),
                "application/json; charset=utf-8",
            )
        done = (query.get("done") or [""])[0]
        return self._send(req, 200, render(data, given, bool(self.action_token), done))

    def handle_post(self, req: BaseHTTPRequestHandler) -> None:
        url = urlsplit(req.path)
        length = min(int(req.headers.get("Content-Length") or 0), 10_000)
        form = parse_qs(req.rfile.read(length).decode("utf-8", "replace"))
        name = url.path.removeprefix("/action/")
        if not url.path.startswith("/action/") or name not in ACTIONS:
            return self._refuse(req, 404, "No such action.")
        if not self.action_token:
            return self._refuse(
                req,
                403,
                "Actions are off on this kiosk ([status_page] action_token is empty): the page is read-only.",
            )
        if not self._ok(self._given(req, {}, form, "action_token"), self.action_token):
            return self._refuse(req, 403, "Actions need the action token.")
        outcome = self.act(name, (form.get("message") or [""])[0][:200])
        log.warning("status page action %s: %s", name, outcome.text)
        token = self._given(req, {}, form, "token")
        if self._ok(token, self.token):
            where = "/?" + urlencode({"token": token, "done": f"{name}: {outcome.text}"})
            return self._send(req, 303, "", headers={"Location": where})
        return self._send(
            req,
            200 if outcome.ok else 409,
            json.dumps({"action": name, "ok": outcome.ok, "text": outcome.text}),
            "application/json",
        )

    # -- the kiosk's state and actions ---------------------------------------------------------

    def _on_worker(self, fn: Callable[[], Any]) -> Any:
        return self.fleet.services.worker.submit(fn).result(timeout=WAIT_S)

    def collect(self) -> dict[str, Any]:
        """Everything the page shows, read on the core worker (devices keep their one owner)."""
        return self._on_worker(self._collect)

    def _collect(self) -> dict[str, Any]:
        fleet, s = self.fleet, self.fleet.services
        cfg = s.cfg
        diag = Diagnostics.from_services(s)
        sample = fleet.take_sample()
        today = date.today()
        store = StatsStore.for_config(cfg)
        try:
            store.roll_up(
                s.circulation.journal.entries(
                    datetime.combine(today - timedelta(days=13), datetime.min.time())
                )
            )
            days = store.days(today - timedelta(days=13), today)
        finally:
            store.close()
        switch = fleet.service_switch.state
        link = s.circulation.status()
        return {
            "kiosk": {
                "library": cfg.kiosk.library_name,
                "terminal": cfg.kiosk.terminal_id,
                "mode": cfg.kiosk.mode,
                "version": __version__,
                "config_hash": config_layers.config_hash(cfg),
                "started": datetime.fromtimestamp(fleet.metrics.start_time._value.get()).isoformat(
                    timespec="seconds"
                ),
            },
            "service": {"in_service": switch.in_service, "message": switch.message},
            "link": {
                "online": bool(link.online),
                "library_system": link.library_name,
                "since": link.since.isoformat(timespec="seconds") if link.since else "",
                "last_error": _scrub(link.last_error, diag),
            },
            "queue": {
                "pending": sample.queue_length,
                "in_doubt": sample.in_doubt,
                "oldest_age_s": round(sample.queue_oldest_age_s),
                "staff_list": sample.staff_list,
                "refused": [
                    {
                        "when": r.when.isoformat(timespec="minutes"),
                        "operation": r.operation,
                        "item": r.item_id,
                    }
                    for r in diag.refusals()
                ],
            },
            "devices": [c.to_json() for c in diag.device_status()],
            "events": [
                {"when": w.isoformat(timespec="seconds"), "kind": k, "detail": d}
                for w, k, d in diag.recent_events(15)
            ],
            "exchanges": [redact_exchange(x) for x in diag.last_exchanges(20)],
            "statistics": [b.to_json() for b in days],
        }

    def act(self, name: str, message: str) -> ActionOutcome:
        fleet = self.fleet
        if name == "out_of_service":
            fleet.service_switch.set(False, message or "Out of service (set from the status page)")
            fleet.services.circulation.journal.record_event(
                "out_of_service", f"from the status page: {message}".strip()
            )
            return ActionOutcome(True, "out of service")
        if name == "back_in_service":
            fleet.service_switch.set(True)
            fleet.services.circulation.journal.record_event(
                "back_in_service", "from the status page"
            )
            return ActionOutcome(True, "back in service")
        diag = Diagnostics.from_services(fleet.services)
        result = self._on_worker(
            diag.forward_now if name == "forward_now" else diag.print_test_receipt
        )
        return ActionOutcome(bool(result.ok), "; ".join(result.lines))


def _scrub(text: str, diag: Any) -> str:
    return scrub(text or "", diag.card_re)


# -- HTML ---------------------------------------------------------------------------------------

_STYLE = """
body{font-family:sans-serif;margin:1.5em;color:#222;max-width:1100px}
h1{font-size:1.4em;margin-bottom:.2em} h2{font-size:1.1em;margin-top:1.4em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;width:100%} td,th{padding:.25em .5em;text-align:left;border-bottom:1px solid #eee;vertical-align:top}
.ok{color:#0a6b2d;font-weight:bold} .warn{color:#9a6700;font-weight:bold} .fail,.refused{color:#b00020;font-weight:bold}
.muted{color:#666} pre{font-size:.8em;white-space:pre-wrap;background:#f6f6f6;padding:.5em}
form{display:inline-block;margin:.2em .6em .2em 0} .done{background:#eef6ee;padding:.4em}
"""


def _layout(title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f'<meta http-equiv="refresh" content="30"><style>{_STYLE}</style></head><body>{body}</body></html>'
    )


def _status_class(status: str) -> str:
    return {"ok": "ok", "warn": "warn", "fail": "fail"}.get(status.lower(), "muted")


def _chart(days: list[dict[str, Any]]) -> str:
    """Checkouts and returns per day as an inline SVG bar chart (no script, no external file)."""
    width, height, pad = 700, 160, 24
    top = max([1] + [d["checkouts"] + d["returns"] for d in days])
    bar = (width - 2 * pad) / max(1, len(days))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 30}" role="img" aria-label="checkouts and returns per day">'
    ]
    for i, d in enumerate(days):
        x = pad + i * bar
        h_out = (height - pad) * d["checkouts"] / top
        h_ret = (height - pad) * d["returns"] / top
        parts.append(
            f'<rect x="{x + 2:.1f}" y="{height - h_out:.1f}" width="{bar / 2 - 2:.1f}" height="{h_out:.1f}" fill="#2b6cb0"><title>{d["start"][:10]}: {d["checkouts"]} checkouts</title></rect>'
        )
        parts.append(
            f'<rect x="{x + bar / 2:.1f}" y="{height - h_ret:.1f}" width="{bar / 2 - 2:.1f}" height="{h_ret:.1f}" fill="#38a169"><title>{d["start"][:10]}: {d["returns"]} returns</title></rect>'
        )
        parts.append(
            f'<text x="{x + bar / 2:.1f}" y="{height + 14}" font-size="10" text-anchor="middle">{d["start"][8:10]}</text>'
        )
    parts.append(
        f'<text x="{pad}" y="12" font-size="11">max {top} a day · blue checkouts · green returns</text></svg>'
    )
    return "".join(parts)


def render(data: dict[str, Any], token: str, actions: bool, done: str = "") -> str:
    e = html.escape
    k, svc, link, q = data["kiosk"], data["service"], data["link"], data["queue"]
    out = [f"<h1>{e(k['library'])} · {e(k['terminal'])}</h1>"]
    out.append(
        f'<p class="muted">{e(k["mode"])} · version {e(k["version"])} · configuration {e(k["config_hash"])} · running since {e(k["started"])}</p>'
    )
    if done:
        out.append(f'<p class="done">{e(done)}</p>')
    state = (
        '<span class="ok">in service</span>'
        if svc["in_service"]
        else f'<span class="fail">out of service</span> {e(svc["message"])}'
    )
    out.append(f"<h2>Service</h2><p id=service>{state}</p>")
    online = (
        '<span class="ok">online</span>' if link["online"] else '<span class="fail">offline</span>'
    )
    detail = f" since {e(link['since'])}" if link["since"] else ""
    error = (
        f' · <span class="muted">{e(link["last_error"])}</span>'
        if link["last_error"] and not link["online"]
        else ""
    )
    out.append(
        f"<h2>Library system</h2><p id=link>{online} {e(link['library_system'])}{detail}{error}</p>"
    )
    out.append(
        f"<h2>Offline queue</h2><p id=queue>{q['pending']} waiting · {q['in_doubt']} in doubt · oldest {q['oldest_age_s']} s · "
        f"{q['staff_list']} refused for staff</p>"
    )
    if q["refused"]:
        rows = "".join(
            f"<tr><td>{e(r['when'])}</td><td>{e(r['operation'])}</td><td>{e(r['item'])}</td></tr>"
            for r in q["refused"]
        )
        out.append(f"<table><tr><th>when</th><th>what</th><th>item</th></tr>{rows}</table>")
    rows = "".join(
        f'<tr><td>{e(c["check"])}</td><td class="{_status_class(c["status"])}">{e(c["status"])}</td><td>{e(c["detail"])}</td></tr>'
        for c in data["devices"]
    )
    out.append(
        f"<h2>Devices</h2><table id=devices><tr><th>part</th><th>state</th><th>detail</th></tr>{rows}</table>"
    )
    out.append(
        f"<h2>Checkouts and returns, last {len(data['statistics'])} days</h2>{_chart(data['statistics'])}"
    )
    rows = "".join(
        f"<tr><td>{e(ev['when'])}</td><td>{e(ev['kind'])}</td><td>{e(ev['detail'])}</td></tr>"
        for ev in data["events"]
    )
    out.append(
        f"<h2>Recent events</h2><table id=events><tr><th>when</th><th>event</th><th>detail</th></tr>{rows}</table>"
    )
    exchanges = "\n".join(e(x) for x in data["exchanges"]) or "(none yet)"
    out.append(f"<h2>Last SIP2 exchanges (masked)</h2><pre id=exchanges>{exchanges}</pre>")
    if actions:
        hidden = f'<input type="hidden" name="token" value="{e(token)}">'
        key = '<input type="password" name="action_token" placeholder="action token" required>'
        forms = [
            f'<form method="post" action="/action/out_of_service">{hidden}{key}<input name="message" placeholder="message for the screen">'
            "<button>Out of service</button></form>",
            f'<form method="post" action="/action/back_in_service">{hidden}{key}<button>Back in service</button></form>',
            f'<form method="post" action="/action/forward_now">{hidden}{key}<button>Forward now</button></form>',
            f'<form method="post" action="/action/test_print">{hidden}{key}<button>Test print</button></form>',
        ]
        out.append("<h2>Actions</h2>" + "".join(forms))
    else:
        out.append('<p class="muted">Read-only: actions are off on this kiosk.</p>')
    return _layout(f"{k['terminal']} status", "".join(out))
