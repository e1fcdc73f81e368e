"""The `kiosk circ`, `kiosk sync` and `kiosk journal` output contract (JSON, masked ids, exit codes)."""

from __future__ import annotations

import io
import json
import socket
import sys
from datetime import datetime
from pathlib import Path

import pytest

from kiosk.cli import main
from tests.sync.fake_acs import D, FakeAcs


def write_config(tmp_path: Path, port: int, policy: str = "checkin-and-checkout") -> Path:
    cfg = tmp_path / "config" / "kiosk.toml"
    cfg.parent.mkdir(exist_ok=True)
    cfg.write_text(
        f"""
[sip2]
host = "127.0.0.1"
port = {port}
username = "kiosk"
password = "demo"
institution_id = "DEMO"
location_code = "DEMO"
timeout_s = 0.5
retries = 0

[storage]
path = "var/journal.sqlite"

[offline]
policy = "{policy}"

[acs]
embedded = false
""",
        encoding="utf-8",
    )
    return cfg


def run(capsys, *argv: str) -> tuple[int, list[dict]]:
    """`--pin VALUE` here stands for `--pin` with VALUE on standard input (never on the command line)."""
    args = list(argv)
    stdin = sys.stdin
    if "--pin" in args:
        sys.stdin = io.StringIO(args.pop(args.index("--pin") + 1) + "\n")
    try:
        code = main(args)
    finally:
        sys.stdin = stdin
    out = capsys.readouterr().out
    return code, [json.loads(line) for line in out.splitlines() if line.strip()]


@pytest.fixture
def fake():
    acs = FakeAcs()
    yield acs
    acs.close()


_HELD: list[socket.socket] = []


def dead_port() -> int:
    """A loopback port that refuses connections: bound (so nobody else gets it) but not listening."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    _HELD.append(s)
    return s.getsockname()[1]


def test_checkout_and_checkin_print_the_contract(tmp_path, fake, capsys):
    cfg = write_config(tmp_path, fake.port)
    code, (out,) = run(
        capsys, "circ", "checkout", "LV0001", "30000001", "--pin", "1234", "--config", str(cfg)
    )
    assert code == 0
    assert {"ok", "mode", "item_id", "title", "due_date", "message"} <= out.keys()
    assert (out["ok"], out["mode"], out["item_id"], out["title"], out["due_date"]) == (
        True,
        "online",
        "30000001",
        "Zaļā grāmata",
        datetime.strptime(D, "%Y%m%d    %H%M%S").isoformat(),  # ISO 8601, online and offline
    )
    code, (out,) = run(capsys, "--config", str(cfg), "circ", "checkin", "30000001")
    assert code == 0
    assert out["ok"]
    assert out["mode"] == "online"
    assert out["item_id"] == "30000001"
    assert (
        tmp_path / "var" / "journal.sqlite"
    ).exists()  # [storage] path, relative to the config's project


def test_patron_is_printed_with_masked_id(tmp_path, fake, capsys):
    cfg = write_config(tmp_path, fake.port)
    code, (out,) = run(capsys, "circ", "patron", "LV0001", "--config", str(cfg))
    assert code == 0
    assert out["patron_id"] == "**0001"
    assert out["name"] == "Anna Bērziņa"
    assert out["valid"] is True
    assert out["loans"] == []
    assert out["holds"] == []
    assert out["fees"] == []


def test_offline_then_sync_and_journal(tmp_path, fake, capsys):
    cfg = write_config(tmp_path, dead_port())
    code, (out,) = run(
        capsys, "circ", "checkout", "LV0001", "30000001", "--pin", "4321", "--config", str(cfg)
    )
    assert code == 0
    assert out["mode"] == "offline"
    assert out["queued"] is True
    assert out["due_date"]
    code, (out,) = run(capsys, "circ", "renew", "LV0001", "30000009", "--config", str(cfg))
    assert code == 1
    assert out["refusal"] == "offline_not_allowed"
    code, lines = run(capsys, "journal", "--config", str(cfg))
    tx = [x for x in lines if x["type"] == "transaction"]
    assert [(x["operation"], x["state"]) for x in tx] == [
        ("checkout", "queued"),
        ("renew", "refused"),
    ]
    assert all(x["patron_id"] == "**0001" for x in tx)
    raw = json.dumps(lines)
    assert "LV0001" not in raw
    assert "4321" not in raw
    code, (out,) = run(capsys, "sync", "--config", str(cfg))
    assert code == 1
    assert out == {"forwarded": 0, "refused": 0, "pending": 1}
    write_config(tmp_path, fake.port)  # the library system is back
    code, (out,) = run(capsys, "sync", "--config", str(cfg))
    assert code == 0
    assert out == {"forwarded": 1, "refused": 0, "pending": 0}
    (frame,) = fake.frames("11")
    assert frame[2:4] == b"YY"  # SC renewal policy Y, no block Y


def test_journal_refusals_and_bad_since(tmp_path, capsys):
    cfg = write_config(tmp_path, dead_port())
    code, lines = run(capsys, "journal", "--refusals", "--config", str(cfg))
    assert code == 0
    assert lines == []
    assert main(["journal", "--since", "yesterday", "--config", str(cfg)]) == 1
    assert "--since" in capsys.readouterr().err
    run(capsys, "circ", "checkin", "30000001", "--config", str(cfg))  # queued offline
    code, (out,) = run(capsys, "journal", "--purge-days", "1", "--config", str(cfg))
    assert code == 0
    assert out == {
        "purged": 0,
        "pending": 1,
        "refused": 0,
    }  # open work is never purged


def test_demo_configuration_runs_the_embedded_library_system(tmp_path, capsys):
    pytest.importorskip("kiosk.sync.acs.server")
    port = dead_port()
    _HELD.pop().close()  # free it again for the embedded library system of this one command
    cfg = tmp_path / "config" / "kiosk.toml"
    cfg.parent.mkdir()
    cfg.write_text(
        f"""
[sip2]
port = {port}
username = "kiosk"
password = "demo"
institution_id = "DEMO"
location_code = "DEMO"

[acs]
embedded = true
database_url = "sqlite:///var/demo-acs.sqlite"
""",
        encoding="utf-8",
    )
    code, (out,) = run(capsys, "circ", "checkout", "LV0001", "30000002", "--config", str(cfg))
    assert code == 0
    assert out["mode"] == "online"
    assert out["title"] == "Dvēseļu putenis"
    code, (out,) = run(capsys, "circ", "patron", "LV0001", "--pin", "1234", "--config", str(cfg))
    assert code == 0
    assert out["patron_id"] == "**0001"
    assert sorted(loan["item_id"] for loan in out["loans"]) == [
        "30000002",
        "30000009",
    ]  # kept in var/demo-acs.sqlite
    assert (tmp_path / "var" / "demo-acs.sqlite").exists()


def test_journal_shows_reversals_and_the_staff_list_as_such(tmp_path, capsys):
    from kiosk.core.domain import Mode, Operation
    from kiosk.sync.journal import EntryState, Journal

    cfg = write_config(tmp_path, dead_port())
    with Journal(tmp_path / "var" / "journal.sqlite") as j:
        checkout = j.begin(
            Operation.CHECKOUT,
            mode=Mode.ONLINE,
            state=EntryState.IN_DOUBT,
            patron_id="LV0001",
            item_id="30000001",
        )
        reversal = j.begin_reversal(
            checkout,
            patron_id="LV0001",
            item_id="30000001",
            request={"reversal_of": checkout},
            how="applied without an answer",
        )
        j.update(reversal, EntryState.DONE)
        renew = j.begin(
            Operation.RENEW,
            mode=Mode.ONLINE,
            state=EntryState.STAFF,
            patron_id="LV0001",
            item_id="30000009",
        )
        j.update(
            renew,
            EntryState.STAFF,
            error="renewal without an answer; the library system now shows due 20261228",
        )
    code, lines = run(capsys, "journal", "--config", str(cfg))
    tx = {x["id"]: x for x in lines if x["type"] == "transaction"}
    assert code == 0
    assert tx[checkout]["state"] == "reversed"
    assert tx[checkout]["reversed_by"] == reversal
    assert tx[reversal]["operation"] == "checkin"
    assert tx[reversal]["reversal_of"] == checkout
    assert tx[renew]["state"] == "staff"
    assert tx[renew]["staff_list"] is True
    assert not tx[checkout]["staff_list"]
    assert not tx[reversal]["staff_list"]
    assert "LV0001" not in json.dumps(lines)
    with Journal(tmp_path / "var" / "journal.sqlite") as j:
        j.record_event("security_to_desk", "item 30000004: tag state unknown after the undo")
        j.record_event("outage_start", "reader: unplugged")
    code, lines = run(capsys, "journal", "--staff", "--config", str(cfg))
    rows = [x for x in lines if x["type"] == "transaction"]
    desk = [x for x in lines if x["type"] == "event"]
    assert [(x["id"], x["error"]) for x in rows] == [
        (renew, "renewal without an answer; the library system now shows due 20261228")
    ]
    # the item sent to the desk is on the staff list; an outage is not
    assert [(x["kind"], x["detail"], x["staff_list"]) for x in desk] == [
        ("security_to_desk", "item 30000004: tag state unknown after the undo", True)
    ]
