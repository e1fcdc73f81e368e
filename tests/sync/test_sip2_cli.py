"""`kiosk sip2 decode` and `kiosk sip2 check`, driven through the real command dispatcher."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.cli import main

ROOT = Path(__file__).resolve().parents[2]
D = "20261125    101500"


def decode_process(data: bytes, *options: str) -> subprocess.CompletedProcess[bytes]:
    """`kiosk sip2 decode` as its own process, `data` on its stdin."""
    return subprocess.run(
        [sys.executable, "-m", "kiosk", "sip2", "decode", *options],
        input=data,
        capture_output=True,
        cwd=ROOT,
        timeout=120,
    )


def run_decode(monkeypatch, capsys, text: str) -> tuple[int, list[dict]]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))
    rc = main(["sip2", "decode"])
    out = capsys.readouterr().out
    return rc, [json.loads(line) for line in out.splitlines()]


def test_decode_good_lines(monkeypatch, capsys):
    rc, rows = run_decode(
        monkeypatch,
        capsys,
        f"9900482.00AY0AZFC9D\n121NNY{D}AODEMO|AALV0001|AB30000001|AJZaļā grāmata|AUa|AUb|\n",
    )
    assert rc == 0
    assert rows[0] == {
        "line": 1,
        "command": "99",
        "fixed": {"status_code": "0", "max_print_width": "048", "protocol_version": "2.00"},
        "fields": {},
        "sequence": 0,
        "checksum": "FC9D",
        "checksum_ok": True,
        "checksum_variant": "bytes",
        "notes": [],
    }
    assert rows[1]["fields"]["AJ"] == ["Zaļā grāmata"]
    assert rows[1]["fields"]["AU"] == ["a", "b"]
    assert rows[1]["fixed"]["ok"] == "1"
    assert rows[1]["checksum_ok"] is None


def test_decode_bad_and_mixed_lines_go_on(monkeypatch, capsys):
    rc, rows = run_decode(monkeypatch, capsys, "hello\n9900482.00AY0AZFC9E\n\x00\x01\n941\n")
    assert rc == 1  # every line is decoded, and the exit code says some failed
    assert len(rows) == 4
    assert "error" in rows[0]
    assert rows[0]["error"]
    assert rows[1]["checksum_ok"] is False
    assert "error" in rows[2]
    assert rows[3]["fixed"] == {"ok": "1"}


def test_decode_from_a_real_pipe_verifies_utf8_bytes_and_code_points():
    prefix = f"121NNY{D}AODEMO|AJZaļā|AY1AZ"
    by_bytes = f"{(-sum(prefix.encode())) & 0xFFFF:04X}"
    by_points = f"{(-sum(map(ord, prefix))) & 0xFFFF:04X}"
    lines = f"{prefix}{by_bytes}\r\n{prefix}{by_points}\n".encode() + b"\xff\xfe\n"
    proc = decode_process(lines)
    assert proc.returncode == 1, proc.stderr  # the third line is not SIP2
    rows = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert [r.get("checksum_ok") for r in rows[:2]] == [True, True]
    assert [r.get("checksum_variant") for r in rows[:2]] == ["bytes", "codepoints"]
    assert rows[0]["fields"]["AJ"] == ["Zaļā"]
    assert "error" in rows[2]


def write_config(tmp_path: Path, host: str, port: int, **extra: str) -> Path:
    lines = [
        "[sip2]",
        f'host = "{host}"',
        f"port = {port}",
        'username = "kiosk"',
        'password = "demo"',
        'institution_id = "DEMO"',
        "timeout_s = 2.0",
        "retries = 1",
    ] + [f"{k} = {v}" for k, v in extra.items()]
    path = tmp_path / "kiosk.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_check_against_pysip2(pysip2_acs, tmp_path, capsys):
    cfg = write_config(tmp_path, pysip2_acs.host, pysip2_acs.port)
    rc = main(["--config", str(cfg), "sip2", "check"])
    out = capsys.readouterr().out
    assert rc == 0
    report = json.loads(out)
    assert report["acs"]["online"] is True
    assert report["acs"]["library_name"] == "Demo bibliotēka"
    assert "11" in report["acs"]["supported"]
    assert report["port"] == pysip2_acs.port


def test_check_against_a_closed_port(tmp_path, capsys):
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    cfg = write_config(tmp_path, "127.0.0.1", port)
    rc = main(["--config", str(cfg), "sip2", "check"])
    captured = capsys.readouterr()
    assert rc == 3  # unreachable
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert str(port) in lines[0]


def test_check_with_wrong_password_fails(pysip2_acs, tmp_path, capsys):
    cfg = write_config(tmp_path, pysip2_acs.host, pysip2_acs.port)
    cfg.write_text(
        cfg.read_text().replace('password = "demo"', 'password = "nope"'), encoding="utf-8"
    )
    rc = main(["--config", str(cfg), "sip2", "check"])
    assert rc == 2  # a configuration fault, not an outage
    assert "refused the login" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["sip2", "check", "--help"], ["sip2", "decode", "--help"]])
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    assert "usage" in capsys.readouterr().out


def test_decode_of_a_live_capture_prints_each_line_before_waiting_for_the_next():
    """`tail -f wire.log | kiosk sip2 decode`: the output is gathered in batches, but written
    before the command waits for more input, so a line still comes out as it comes in."""
    import selectors

    proc = subprocess.Popen(
        [sys.executable, "-m", "kiosk", "sip2", "decode"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            for n, line in enumerate(
                [b"9900302.00\r\n", b"1720261125    100000AODEMO|AB30000001|\r\n"], start=1
            ):
                proc.stdin.write(line)
                proc.stdin.flush()  # and the input stays open: the command must not wait for EOF
                assert sel.select(timeout=30), f"line {n} was not written while input was open"
                row = json.loads(proc.stdout.readline())
                assert row["line"] == n and row["command"] == line[:2].decode()
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
        assert proc.stdout.read() == b""
    finally:
        proc.kill()
        proc.wait(timeout=30)
