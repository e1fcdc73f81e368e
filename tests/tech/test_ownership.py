"""The kiosk's data belongs to the kiosk: root never creates or takes it over, and a journal the
command cannot write is reported in one line with the fix (real processes, real files)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.exitcodes import Exit
from kiosk.sync.journal import Journal

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
NOBODY = 65534

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="about what root may do")


def site(tmp_path: Path) -> Path:
    (tmp_path / "config").mkdir()
    cfg = tmp_path / "config" / "kiosk.toml"
    cfg.write_text((ROOT / "config" / "kiosk.toml").read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "var").mkdir()
    return cfg


def kiosk(*argv: str, prefix: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*(prefix or []), sys.executable, "-m", "kiosk", *argv],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
        cwd=ROOT,
    )


@pytest.mark.parametrize("argv", [["journal"], ["stats"], ["sync", "--no-embedded"]])
def test_root_does_not_create_the_journal_in_the_kiosks_folder(tmp_path, argv):
    cfg = site(tmp_path)
    os.chown(tmp_path / "var", NOBODY, NOBODY)
    proc = kiosk("--config", str(cfg), *argv)
    assert proc.returncode == Exit.USAGE, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "Traceback" not in proc.stderr
    assert f"sudo -u {lines[0].split('sudo -u ')[1].split()[0]} kiosk {argv[0]}" in lines[0]
    assert list((tmp_path / "var").iterdir()) == []  # nothing created, nothing chowned


def test_root_still_works_on_its_own_data(tmp_path):
    cfg = site(tmp_path)
    proc = kiosk("--config", str(cfg), "journal")
    assert proc.returncode == Exit.OK, proc.stderr
    assert (tmp_path / "var" / "journal.sqlite").exists()


def test_a_journal_that_cannot_be_written_is_one_line_with_the_fix(tmp_path):
    if (
        not shutil.which("unshare")
        or subprocess.run(["unshare", "--mount", "true"], capture_output=True).returncode
    ):
        pytest.skip("needs a mount namespace for a read-only folder (root writes anywhere else)")
    cfg = site(tmp_path)
    Journal(tmp_path / "var" / "journal.sqlite").close()
    var = str(tmp_path / "var")
    script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"'
    proc = kiosk(
        "--config",
        str(cfg),
        "circ",
        "checkin",
        "30000001",
        prefix=["unshare", "--mount", "--fork", "sh", "-c", script, "sh", var],
    )
    assert proc.returncode == Exit.FAILED, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "is not writable" in lines[0]
    assert "sudo chown kiosk:kiosk" in lines[0]
