"""Commands a technician can script: no traceback, one line on stderr, the documented exit codes.

Each case runs `kiosk` as a real process, the way a shell script or a pipe would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.exitcodes import DESCRIPTIONS, Exit

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}


def kiosk(*argv: str, stdin: bytes | None = b"", **kw) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "kiosk", *argv],
        input=stdin,
        capture_output=True,
        cwd=ROOT,
        env=ENV,
        timeout=60,
        **kw,
    )


def one_clean_line(proc: subprocess.CompletedProcess[bytes]) -> str:
    err = proc.stderr.decode()
    assert "Traceback" not in err, err
    # Advice about the configuration (logged once per load) is not the command's failure line.
    lines = [
        line for line in err.splitlines() if line.strip() and " WARNING kiosk.config: " not in line
    ]
    assert len(lines) == 1, err
    return lines[0]


def site_config(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    f = folder / "kiosk.toml"
    f.write_text('[kiosk]\nterminal_id = "T1"\n\n[admin]\n# the technician PIN\n', encoding="utf-8")
    return f


def test_set_pin_without_a_terminal_or_stdin_says_how_to_script_it(tmp_path):
    cfg = site_config(tmp_path)
    before = cfg.read_text()
    # A new session has no controlling terminal; stdin is empty, as under cron or ssh -T.
    proc = kiosk("--config", str(cfg), "admin", "set-pin", stdin=b"", start_new_session=True)
    assert proc.returncode == Exit.USAGE
    assert "--stdin" in one_clean_line(proc)
    assert cfg.read_text() == before


def test_set_pin_where_the_config_cannot_be_written(tmp_path):
    folder = tmp_path / "etc"
    cfg = site_config(folder)
    before = cfg.read_text()
    args = [sys.executable, "-m", "kiosk", "--config", str(cfg), "admin", "set-pin", "--stdin"]
    if os.geteuid() == 0:
        # root writes anywhere: make the folder read-only as the kiosk's sandbox does with /etc
        if not shutil.which("unshare"):
            pytest.skip("needs unshare(1) for a read-only bind mount")
        script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"'
        args = ["unshare", "--mount", "--fork", "sh", "-c", script, "sh", str(folder), *args]
        probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True)
        if probe.returncode != 0:
            pytest.skip("no mount namespace here")
    else:
        folder.chmod(0o555)
    try:
        proc = subprocess.run(
            args, input=b"13579\n", capture_output=True, cwd=ROOT, env=ENV, timeout=60
        )
    finally:
        folder.chmod(0o755)
    assert proc.returncode == Exit.USAGE, proc.stderr
    line = one_clean_line(proc)
    assert "cannot write" in line
    assert "nothing was changed" in line
    assert "13579" not in line
    assert cfg.read_text() == before


@pytest.mark.parametrize(
    "argv",
    [
        ["sip2", "decode", "--encoding", "nosuch"],
        ["sip2", "decode", "--encoding", "base64"],
        ["sip2", "check", "--timeout", "-1"],
        ["sip2", "check", "--timeout", "nan"],
        ["sip2", "check", "--port", "70000"],
        ["stats", "--days", "many"],
    ],
)
def test_bad_arguments_are_usage_errors(argv):
    proc = kiosk(*argv)
    assert proc.returncode == Exit.USAGE
    assert "Traceback" not in proc.stderr.decode()
    assert "error:" in proc.stderr.decode().splitlines()[-1]


def test_output_piped_to_head_ends_quietly(tmp_path):
    capture = tmp_path / "wire.log"
    capture.write_bytes(b"9900482.00AY0AZFC9D\r\n" * 20000)
    with capture.open("rb") as stdin:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kiosk", "sip2", "decode"],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            env=ENV,
        )
        assert proc.stdout is not None
        assert proc.stderr is not None
        first = proc.stdout.readline()
        proc.stdout.close()  # what `| head -1` does after its first line
        err = proc.stderr.read().decode()  # until the process ends: stderr closes with it
        rc = proc.wait(timeout=60)
        proc.stderr.close()
    assert json.loads(first)["command"] == "99"
    assert "Traceback" not in err, err
    assert "BrokenPipe" not in err, err
    assert rc == Exit.OUTPUT_CLOSED


@pytest.mark.parametrize("ending", [b"\r", b"\n", b"\r\n"])
def test_decode_takes_captures_with_any_line_ending(ending):
    capture = ending.join([b"9900482.00AY0AZFC9D", b"941", b"9900482.00AY0AZfc9d  "]) + ending
    proc = kiosk("sip2", "decode", stdin=capture)
    assert proc.returncode == Exit.OK, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert [r["command"] for r in rows] == ["99", "94", "99"]
    assert rows[0]["checksum_variant"] == "bytes"
    assert rows[0]["notes"] == []
    assert set(rows[2]["notes"]) == {"lower-case checksum", "trailing spaces after the checksum"}


def test_decode_exits_non_zero_when_a_line_failed_and_still_decodes_the_rest():
    proc = kiosk(
        "sip2", "decode", "--encoding", "cp1252", stdin=b"hello\r9900482.00AY0AZFC9E\r941\r"
    )
    assert proc.returncode == Exit.FAILED
    rows = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert [r["line"] for r in rows] == [1, 2, 3]
    assert "error" in rows[0]
    assert rows[1]["checksum_ok"] is False
    assert rows[2]["fixed"] == {"ok": "1"}
    assert "1 line(s) could not be decoded" in one_clean_line(proc)


def test_tag_encode_refuses_an_unknown_field():
    proc = kiosk(
        "tag", "encode", "--model", "iso28560-2", "--item-id", "3000123", "--field", "titel=Zaļā"
    )
    assert proc.returncode == Exit.USAGE
    assert "titel" in json.loads(proc.stdout)["error"]
    assert proc.stdout.decode().count("\n") == 1
    good = kiosk(
        "tag", "encode", "--model", "iso28560-2", "--item-id", "3000123", "--field", "title=Zaļā"
    )
    assert good.returncode == Exit.OK, good.stdout
    back = kiosk("tag", "decode", "--model", "iso28560-2", good.stdout.decode().strip())
    assert json.loads(back.stdout)["extra"]["title"] == "Zaļā"


def test_exit_codes_are_in_help_and_readme():
    out = kiosk("--help").stdout.decode()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    for code, text in DESCRIPTIONS.items():
        assert f"{int(code):<4} {text}" in out
        assert f"| {int(code)} |" in section, f"README lacks exit code {int(code)}"


# --- circulation by hand: refusals, PINs, dates, pending work ---------------------------------


def circ_site(tmp_path: Path, port: int) -> Path:
    from tests.tech.conftest import write_site

    tmp_path.mkdir(parents=True, exist_ok=True)
    return write_site(tmp_path, port=port, extra='[offline]\npolicy = "checkin-and-checkout"\n')


def json_out(proc: subprocess.CompletedProcess[bytes]) -> dict:
    assert "Traceback" not in proc.stderr.decode(), proc.stderr
    return json.loads(proc.stdout)


def test_a_lost_card_is_a_refusal_and_an_unknown_card_is_not_taken_for_a_loan(tmp_path, demo_acs):
    cfg = str(circ_site(tmp_path, demo_acs.port))
    lost = kiosk("--config", cfg, "circ", "patron", "LV0003")
    assert lost.returncode == Exit.FAILED
    assert json_out(lost)["ok"] is False
    assert json_out(lost)["refusal"] == "patron_blocked"
    unknown = kiosk("--config", cfg, "circ", "checkout", "LV9999", "30000001")
    assert unknown.returncode == Exit.FAILED
    assert json_out(unknown)["refusal"] == "patron_blocked"


def test_the_pin_comes_from_stdin_never_from_the_command_line(tmp_path, demo_acs):
    cfg = str(circ_site(tmp_path, demo_acs.port))
    on_argv = kiosk("--config", cfg, "circ", "patron", "LV0001", "--pin", "1234")
    assert on_argv.returncode == Exit.USAGE  # `1234` is not an argument any more
    good = kiosk("--config", cfg, "circ", "patron", "LV0001", "--pin", stdin=b"1234\n")
    assert good.returncode == Exit.OK
    assert json_out(good)["pin_ok"] is True
    wrong = kiosk("--config", cfg, "circ", "patron", "LV0001", "--pin", stdin=b"9999\n")
    assert wrong.returncode == Exit.FAILED
    assert json_out(wrong)["pin_ok"] is False
    empty = kiosk("--config", cfg, "circ", "patron", "LV0001", "--pin", stdin=b"")
    assert empty.returncode == Exit.FAILED
    assert "no PIN on standard input" in one_clean_line(empty)


def test_due_dates_are_iso_8601_online_and_offline_and_sync_fails_while_work_waits(
    tmp_path, demo_acs, closed_port
):
    from datetime import datetime

    online = json_out(
        kiosk(
            "--config",
            str(circ_site(tmp_path / "a", demo_acs.port)),
            "circ",
            "checkout",
            "LV0001",
            "30000001",
            "--pin",
            stdin=b"1234\n",
        )
    )
    assert online["mode"] == "online"
    assert datetime.fromisoformat(online["due_date"])
    offline_cfg = str(circ_site(tmp_path / "b", closed_port))
    offline = json_out(kiosk("--config", offline_cfg, "circ", "checkout", "LV0001", "30000002"))
    assert offline["mode"] == "offline"
    assert offline["queued"] is True
    assert datetime.fromisoformat(offline["due_date"])
    sync = kiosk("--config", offline_cfg, "sync", "--no-embedded")
    assert sync.returncode == Exit.FAILED
    assert json_out(sync)["pending"] == 1
