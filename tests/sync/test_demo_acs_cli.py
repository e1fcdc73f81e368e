"""The `kiosk acs` command: it serves the configured demo library and `--reset` reseeds it."""

from __future__ import annotations

import queue
import re
import socket
import threading

from kiosk.cli import build_parser
from kiosk.sync.acs.cli import run
from kiosk.sync.acs.library import Library
from kiosk.sync.acs.server import RunningAcs

CONFIG = """
[sip2]
username = "kiosk"
password = "demo"
institution_id = "DEMO"

[acs]
embedded = true
database_url = "sqlite:///var/demo-acs.sqlite"
port = 0
"""


def make_config(tmp_path) -> str:
    (tmp_path / "config").mkdir()
    path = tmp_path / "config" / "kiosk.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return str(path)


def run_once(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    assert args.func is run
    stop = threading.Event()
    stop.set()  # serve, then stop at the first look
    return run(args, stop)


def test_acs_command_creates_the_database_and_reset_reseeds_it(tmp_path, capsys) -> None:
    cfg = make_config(tmp_path)
    assert run_once(["--config", cfg, "acs"]) == 0
    db = tmp_path / "var" / "demo-acs.sqlite"
    assert db.exists()
    assert re.search(
        r"demo library system on 127\.0\.0\.1:\d+ \(login 'kiosk', utf-8, strict\)",
        capsys.readouterr().out,
    )

    lib = Library.open(f"sqlite:///{db}")
    assert lib.checkout("LV0001", "30000001").ok
    lib.close()
    assert run_once(["--config", cfg, "acs"]) == 0
    lib = Library.open(f"sqlite:///{db}")
    assert "30000001" in lib.loans_of("LV0001"), "data survives a restart"
    lib.close()

    assert run_once(["--config", cfg, "acs", "--reset"]) == 0
    lib = Library.open(f"sqlite:///{db}")
    assert lib.loans_of("LV0001") == ["30000009"], "--reset reseeds the demo catalogue"
    lib.close()


def test_acs_command_serves_until_stopped(tmp_path, capsys) -> None:
    cfg = make_config(tmp_path)
    other = tmp_path / "elsewhere.sqlite"
    args = build_parser().parse_args(
        [
            "--config",
            cfg,
            "acs",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--database-url",
            f"sqlite:///{other}",
        ]
    )
    stop = threading.Event()
    ready: queue.Queue[RunningAcs] = queue.Queue()
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(run(args, stop, ready.put)), daemon=True)
    thread.start()
    try:
        acs = ready.get(timeout=10)
        assert f"127.0.0.1:{acs.port}" in capsys.readouterr().out, (
            "the command prints where it listens"
        )
        with socket.create_connection((acs.host, acs.port), timeout=5) as sock:
            sock.sendall(b"9300CNkiosk|COdemo|\r")
            assert sock.recv(64) == b"941\r"
        assert other.exists()
    finally:
        stop.set()
        thread.join(timeout=10)
    assert result == [0]


def test_acs_command_prints_the_application_counts(tmp_path, capsys) -> None:
    cfg = make_config(tmp_path)
    assert run_once(["--config", cfg, "acs"]) == 0
    lib = Library.open(f"sqlite:///{tmp_path / 'var' / 'demo-acs.sqlite'}")
    assert lib.strict
    lib.checkout("LV0001", "30000001")
    lib.checkout("LV0001", "30000001")  # strict: a renewal, a second application
    lib.checkin("30000002")
    lib.close()
    capsys.readouterr()
    assert run_once(["--config", cfg, "acs", "--applications"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "30000001\tcheckout\t2",
        "30000002\tcheckin\t1",
    ]


def test_repeat_guard_is_a_site_option_and_a_command_line_switch(tmp_path, capsys) -> None:
    cfg = make_config(tmp_path)
    assert run_once(["--config", cfg, "acs", "--repeat-guard"]) == 0
    assert "repeat guard)" in capsys.readouterr().out
    path = tmp_path / "config" / "kiosk.toml"
    path.write_text(CONFIG + "strict = false\n", encoding="utf-8")
    ready: queue.Queue[RunningAcs] = queue.Queue()
    stop = threading.Event()
    stop.set()
    assert run(build_parser().parse_args(["--config", cfg, "acs"]), stop, ready.put) == 0
    assert not ready.get(timeout=5).library.strict
