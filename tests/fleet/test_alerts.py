"""Alerts that reach staff: queued durably, delivered once to a webhook that goes down and comes
back, to a real Alertmanager and to an SMTP sink, all on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from kiosk import config
from kiosk.fleet import alerts as kalerts
from tests.fleet.conftest import write_kiosk
from tests.fleet.kiosk_process import HeadlessKiosk
from tests.fleet.procs import Server, free_port, wait_for
from tests.fleet.receivers import SmtpSink, WebhookReceiver


class FakeTime:
    """Injected wall clock for backoff: tests move it instead of sleeping."""

    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def receiver():
    r = WebhookReceiver()
    yield r
    r.stop()


def service(path: Path, sinks: list[Any], now: FakeTime) -> kalerts.AlertService:
    return kalerts.AlertService(
        kalerts.AlertQueue(path),
        sinks,
        terminal="K1",
        library="Demo",
        retry_initial_s=5,
        retry_max_s=60,
        now=now,
    )


def test_webhook_down_then_back_gets_the_alert_once(
    tmp_path: Path, receiver: WebhookReceiver
) -> None:
    now = FakeTime()
    svc = service(
        tmp_path / "alerts.sqlite",
        [kalerts.WebhookSink(receiver.url, token="s3cret", timeout_s=2)],
        now,
    )
    receiver.stop()  # the network is down
    uid = svc.raise_alert("call_staff", "Help wanted at the kiosk", place="entrance")
    assert svc.deliver_due() == 0
    [d] = svc.queue.all()
    assert (d.state, d.attempts) == ("pending", 1) and "webhook" in d.last_error
    now.t += 4
    assert svc.deliver_due() == 0 and svc.queue.all()[0].attempts == 1  # not due yet: backoff
    now.t += 2
    assert svc.deliver_due() == 0 and svc.queue.all()[0].attempts == 2  # still down: next in 10 s

    receiver.start()  # back, on the same port
    now.t += 10
    assert svc.deliver_due() == 1
    for _ in range(3):
        now.t += 600
        assert svc.deliver_due() == 0
    assert len(receiver.bodies) == 1
    body = receiver.bodies[0]
    assert body["id"] == uid and body["kind"] == "call_staff" and body["terminal"] == "K1"
    assert body["labels"] == {"place": "entrance"} and body["auth"] == "Bearer s3cret"
    assert svc.queue.all()[0].state == "delivered"
    svc.close()


def test_an_alert_raised_offline_survives_a_restart_and_is_delivered_once(
    tmp_path: Path, receiver: WebhookReceiver
) -> None:
    now = FakeTime()
    receiver.stop()
    first = service(
        tmp_path / "alerts.sqlite", [kalerts.WebhookSink(receiver.url, timeout_s=2)], now
    )
    first.raise_alert("paper_out", "The receipt printer is out of paper.")
    first.deliver_due()
    first.close()  # the kiosk is switched off

    receiver.start()
    now.t += 3600
    second = service(
        tmp_path / "alerts.sqlite", [kalerts.WebhookSink(receiver.url, timeout_s=2)], now
    )
    assert second.deliver_due() == 1
    assert second.deliver_due() == 0
    second.close()
    assert [b["kind"] for b in receiver.bodies] == ["paper_out"]


def test_the_dispatcher_thread_delivers_when_the_receiver_comes_back(
    tmp_path: Path, receiver: WebhookReceiver
) -> None:
    receiver.stop()
    svc = kalerts.AlertService(
        kalerts.AlertQueue(tmp_path / "alerts.sqlite"),
        [kalerts.WebhookSink(receiver.url, timeout_s=2)],
        retry_initial_s=0.1,
        retry_max_s=0.2,
    )
    svc.start()
    try:
        svc.raise_alert("call_staff", "Help wanted")
        wait_for(lambda: any(d.attempts for d in svc.queue.all()), 10, "a failed first attempt")
        receiver.start()
        assert receiver.received.wait(10)
        wait_for(lambda: svc.queue.all()[0].state == "delivered", 10, "delivery recorded")
    finally:
        svc.close()
    assert len(receiver.bodies) == 1


def test_a_permanent_refusal_is_not_retried(tmp_path: Path) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Refuse(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.send_response(400)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        now = FakeTime()
        svc = service(
            tmp_path / "a.sqlite",
            [kalerts.WebhookSink(f"http://127.0.0.1:{server.server_address[1]}/", timeout_s=2)],
            now,
        )
        svc.raise_alert("call_staff", "Help")
        svc.deliver_due()
        [d] = svc.queue.all()
        assert d.state == "failed" and "HTTP 400" in d.last_error
        svc.close()
    finally:
        server.shutdown()
        server.server_close()


def test_alertmanager_on_loopback_receives_the_alert(tmp_path: Path) -> None:
    (tmp_path / "am.yml").write_text("route:\n  receiver: staff\nreceivers:\n  - name: staff\n")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    am = Server(
        [
            "prometheus-alertmanager",
            f"--config.file={tmp_path / 'am.yml'}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        f"{base}/-/ready",
        tmp_path / "alertmanager.log",
    )
    try:
        now = FakeTime()
        import time as _time

        now.t = _time.time()
        svc = service(
            tmp_path / "alerts.sqlite",
            [kalerts.AlertmanagerSink(base, resolve_after_s=3600, timeout_s=5)],
            now,
        )
        svc.raise_alert("call_staff", "Help wanted at the kiosk", place="entrance")
        assert svc.deliver_due() == 1
        svc.close()

        def received() -> list[dict[str, Any]]:
            return [
                a
                for a in requests.get(f"{base}/api/v2/alerts", timeout=5).json()
                if a["labels"].get("alertname") == "KioskCallStaff"
            ]

        [alert] = wait_for(received, 20, "the alert in Alertmanager")
        assert alert["labels"] == {
            "alertname": "KioskCallStaff",
            "severity": "critical",
            "kiosk": "K1",
            "library": "Demo",
            "place": "entrance",
        }
        assert alert["annotations"]["summary"] == "Help wanted at the kiosk"
        assert alert["status"]["state"] == "active"
    finally:
        am.stop()


def test_email_reaches_a_local_smtp_sink(tmp_path: Path) -> None:
    smtp = SmtpSink()
    try:
        now = FakeTime()
        sink = kalerts.EmailSink(
            smtp.url, "kiosk@library.example", ["desk@library.example"], timeout_s=5
        )
        svc = service(tmp_path / "alerts.sqlite", [sink], now)
        svc.raise_alert("security_write_failed", "A tag's security could not be set")
        assert svc.deliver_due() == 1
        svc.close()
        assert smtp.received.wait(10)
        [(rcpt, msg)] = smtp.messages
        assert rcpt == ["desk@library.example"]
        assert msg["Subject"] == "[K1] security write failed: A tag's security could not be set"
        assert "severity: critical" in msg.get_content()
    finally:
        smtp.stop()


def test_alerts_carry_no_patron_data(tmp_path: Path) -> None:
    with pytest.raises(kalerts.AlertError, match="patron data"):
        kalerts.make_alert("call_staff", "x", card="LV0001")
    alert = kalerts.make_alert("call_staff", "Patron 2400012345678 needs help")
    assert "2400012345678" not in alert.summary and "5678" in alert.summary
    with pytest.raises(kalerts.AlertError):
        kalerts.make_alert("call staff!", "x")


def test_raise_alert_without_a_service_says_so(caplog: pytest.LogCaptureFixture) -> None:
    kalerts.install(None)
    assert kalerts.raise_alert("call_staff", "Help") is None
    assert "no alert service" in caplog.text


def test_a_kiosk_with_a_webhook_alerts_on_paper_out_and_call_staff(
    tmp_path: Path, demo_acs: Any, receiver: WebhookReceiver
) -> None:
    extra = f'[alerts]\nwebhook_url = "{receiver.url}"\nretry_initial_s = 0.1\n'
    k = HeadlessKiosk(config.load(write_kiosk(tmp_path, port=demo_acs.port, extra=extra)))
    try:
        assert kalerts.current() is k.fleet.alerts
        assert (
            kalerts.raise_alert("call_staff", "A patron asks for help", place="checkout")
            is not None
        )
        (tmp_path / "var" / "receipts").mkdir(parents=True, exist_ok=True)
        (tmp_path / "var" / "receipts" / "PAPER_OUT").touch()
        assert k.fleet.sample_now().printer == "paper_out"
        k.fleet.sample_now()  # still out: no second alert
        wait_for(lambda: len(receiver.bodies) >= 2, 10, "two alerts at the webhook")
    finally:
        k.close()
    assert sorted(b["kind"] for b in receiver.bodies) == ["call_staff", "paper_out"]
    assert kalerts.current() is None


def test_alert_send_and_list_from_the_command_line(
    tmp_path: Path, demo_acs: Any, receiver: WebhookReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    from kiosk import cli

    f = write_kiosk(
        tmp_path, port=demo_acs.port, extra=f'[alerts]\nwebhook_url = "{receiver.url}"\n'
    )
    args = [
        "--config",
        str(f),
        "alert",
        "send",
        "test",
        "Checking the alert path",
        "--label",
        "place=desk",
    ]
    assert cli.main(args) == 0
    assert capsys.readouterr().out.strip() == "webhook: delivered"
    assert [(b["kind"], b["labels"]) for b in receiver.bodies] == [("test", {"place": "desk"})]
    assert cli.main(["--config", str(f), "alert", "list"]) == 0
    out = capsys.readouterr().out
    assert "test" in out and "delivered" in out and "Checking the alert path" in out
    assert (
        cli.main(["--config", str(f), "alert", "send", "test", "x", "--label", "card=LV0001"]) == 1
    )
    assert "patron data" in capsys.readouterr().err


def _bookdrop(tmp_path: Path, port: int, receiver: WebhookReceiver, hours: str) -> HeadlessKiosk:
    extra = (
        f'[alerts]\nwebhook_url = "{receiver.url}"\nretry_initial_s = 0.1\ndesk_hours = "{hours}"\n'
    )
    f = write_kiosk(tmp_path, port=port, terminal="DROP-1", extra=extra)
    f.write_text(
        f.read_text().replace('terminal_id = "DROP-1"', 'terminal_id = "DROP-1"\nmode = "bookdrop"')
    )
    return HeadlessKiosk(config.load(f))


def _hours_around_now(open_now: bool) -> str:
    from datetime import datetime, timedelta

    now = datetime.now()
    start = now - timedelta(hours=1) if open_now else now + timedelta(hours=1)
    return f"{start:%H:%M}-{start + timedelta(hours=2):%H:%M}"


def test_book_drop_alerts_for_an_item_meant_for_staff_after_hours(
    tmp_path: Path, demo_acs: Any, receiver: WebhookReceiver
) -> None:
    k = _bookdrop(tmp_path, demo_acs.port, receiver, _hours_around_now(open_now=False))
    try:
        assert str(k.drop("30000008").final) == "checked_in_secured"  # on loan: just returned
        unknown = k.drop("39999999")
        assert str(unknown.final) == "exception_bin"
        wait_for(lambda: receiver.bodies, 10, "the after-hours alert")
    finally:
        k.close()
    [body] = receiver.bodies
    assert body["kind"] == "desk_after_hours" and body["terminal"] == "DROP-1"
    assert "39999999" in body["summary"] and body["labels"] == {"reason": str(unknown.outcome)}


def test_book_drop_stays_quiet_while_the_desk_is_open(
    tmp_path: Path, demo_acs: Any, receiver: WebhookReceiver
) -> None:
    from kiosk.fleet.runtime import parse_hours, within

    assert within(parse_hours("22:00-06:00"), parse_hours("05:59-06:00")[0])  # open over midnight
    assert not within(parse_hours("09:00-20:00"), parse_hours("20:00-21:00")[0])
    k = _bookdrop(tmp_path, demo_acs.port, receiver, _hours_around_now(open_now=True))
    try:
        assert str(k.drop("39999999").final) == "exception_bin"
        assert k.fleet.alerts.deliver_due() == 0 and k.fleet.alerts.queue.all() == []
    finally:
        k.close()
    assert receiver.bodies == []
