"""systemd/install.sh in a throwaway root: every path, user, group and mode it creates, a second
run that changes nothing, and a failing step that leaves nothing half-configured.

The root is a folder with its own /etc/passwd and /etc/group (as a fresh Raspberry Pi OS Lite
has them for root, tty and dialout); install.sh --root adds users there with useradd --prefix and
writes every file under it. Packages, the virtual environment and systemctl are listed, not run
(scripts/test.sh runs the same install so its output is in the test log).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk import config as kconfig
from kiosk import installcheck

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / "systemd" / "install.sh"

pytestmark = pytest.mark.skipif(
    not shutil.which("useradd") or os.geteuid() != 0, reason="needs root and useradd"
)


def fresh_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (root / "etc" / "group").write_text("root:x:0:\ntty:x:5:\ndialout:x:20:\n")
    (root / "etc" / "shadow").write_text("root:*:19000:0:99999:7:::\n")
    (root / "etc" / "gshadow").write_text("root:*::\ntty:*::\ndialout:*::\n")
    for name in ("shadow", "gshadow"):
        (root / "etc" / name).chmod(0o640)
    return root


def install(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        ["bash", str(INSTALL), "--root", str(root), "--skip-build", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHON": sys.executable},
    )
    print(proc.stdout, proc.stderr)  # in the test log when a test fails
    return proc


def snapshot(root: Path) -> dict[str, tuple[int, int, int, str]]:
    """Every path under root: (mode, uid, gid, content hash or link target)."""
    out = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        if path.is_symlink():
            what = os.readlink(path)
        elif path.is_file():
            what = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            what = "dir"
        out[str(path.relative_to(root))] = (st.st_mode, st.st_uid, st.st_gid, what)
    return out


def ids(root: Path, table: str, name: str) -> int:
    for line in (root / "etc" / table).read_text().splitlines():
        fields = line.split(":")
        if fields[0] == name:
            return int(fields[2])
    raise AssertionError(f"{name} not in {table}")


def mode_owner(root: Path, path: str) -> tuple[str, int, int]:
    st = (root / path.lstrip("/")).stat()
    return oct(st.st_mode & 0o7777), st.st_uid, st.st_gid


def test_demo_install_creates_what_it_says_and_a_second_run_changes_nothing(tmp_path):
    root = fresh_root(tmp_path)
    first = install(root, "--demo")
    assert first.returncode == 0, first.stderr
    uid, gid = ids(root, "passwd", "kiosk"), ids(root, "group", "kiosk")
    assert uid != 0
    assert gid != 0
    passwd = next(
        line for line in (root / "etc/passwd").read_text().splitlines() if line.startswith("kiosk:")
    )
    assert passwd.endswith(":/var/lib/kiosk:/usr/sbin/nologin")
    group = (root / "etc/group").read_text()
    for g in ("dialout", "plugdev", "lp", "video", "render", "input", "tty"):
        assert any(
            line.startswith(f"{g}:") and "kiosk" in line.split(":")[3].split(",")
            for line in group.splitlines()
        ), g
    assert mode_owner(root, "/etc/kiosk") == ("0o750", 0, gid)
    assert mode_owner(root, "/etc/kiosk/kiosk.toml") == ("0o640", 0, gid)
    assert mode_owner(root, "/var/lib/kiosk") == ("0o750", uid, gid)
    assert mode_owner(root, "/var/log/kiosk") == ("0o750", uid, gid)
    for unit in (
        "kiosk.service",
        "kiosk-forward.service",
        "kiosk-acs.service",
        "kiosk-forward.timer",
    ):
        assert mode_owner(root, f"/etc/systemd/system/{unit}") == ("0o644", 0, 0)
    assert (
        "ExecStart=/opt/kiosk/current/.venv/bin/kiosk run"
        in (root / "etc/systemd/system/kiosk.service").read_text()
    )
    current = root / "opt/kiosk/current"
    assert current.is_symlink()
    assert (current / "kiosk" / "app.py").is_file()
    assert (current / ".complete").exists()
    # The demo config writes only under /var/lib/kiosk, with absolute paths.
    cfg = kconfig.load(root / "etc/kiosk/kiosk.toml")
    assert installcheck.problems(cfg) == []
    paths = installcheck.data_paths(cfg)
    assert {p.key for p in paths} >= {
        "storage.path",
        "printer.url",
        "printer.email_url",
        "acs.database_url",
    }
    assert all(p.path.startswith("/var/lib/kiosk/") for p in paths)
    assert "data: storage.path = /var/lib/kiosk/journal.sqlite" in first.stdout

    before = snapshot(root)
    again = install(root, "--demo")
    assert again.returncode == 0, again.stderr
    assert "\n  + " not in again.stdout  # nothing to do
    assert snapshot(root) == before


def test_dry_run_lists_every_path_user_and_mode_and_changes_nothing(tmp_path):
    root = fresh_root(tmp_path)
    before = snapshot(root)
    proc = install(root, "--demo", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert snapshot(root) == before
    for line in (
        "would add system user kiosk (home /var/lib/kiosk, no login shell)",
        "would add system group plugdev",
        "would make folder /var/lib/kiosk mode 0750 owner kiosk:kiosk",
        "would make folder /etc/kiosk mode 0750 owner root:kiosk",
        "would install /etc/kiosk/kiosk.toml mode 0640 owner root:kiosk",
        "would install /etc/systemd/system/kiosk.service mode 0644 owner root:root",
        "would point /opt/kiosk/current at releases/",
        "data: storage.path = /var/lib/kiosk/journal.sqlite",
    ):
        assert line in proc.stdout, line


def test_a_failing_step_leaves_nothing_half_configured(tmp_path):
    root = fresh_root(tmp_path)
    before = snapshot(root / "etc")
    # The repository's demo config as a site config: its data paths are relative.
    proc = install(root, "--config", str(ROOT / "config" / "kiosk.toml"))
    assert proc.returncode == 1
    assert "storage.path: 'var/journal.sqlite' is relative" in proc.stderr
    assert "FAILED while checking the site configuration" in proc.stderr
    assert "Nothing of the installed kiosk was changed" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert snapshot(root / "etc") == before  # no user, no group, no config, no units
    assert not (root / "var").exists()
    assert not (root / "opt/kiosk/current").exists()


def test_the_site_config_is_never_overwritten(tmp_path):
    root = fresh_root(tmp_path)
    assert install(root).returncode == 0
    site = root / "etc/kiosk/kiosk.toml"
    site.write_text(site.read_text() + "\n# edited by the library\n")
    proc = install(root, "--demo")
    assert proc.returncode == 0, proc.stderr
    assert site.read_text().endswith("# edited by the library\n")
