"""The library-system profiles in config/examples/: each loads, keeps its data where the kiosk's
sandbox may write, and is described in docs/library-systems.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kiosk import config as kconfig
from kiosk import installcheck

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "config" / "examples").glob("*.toml"))
DOC = (ROOT / "docs" / "library-systems.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_loads_and_writes_only_under_var_lib_kiosk(path):
    cfg = kconfig.load(path)
    assert installcheck.problems(cfg) == []
    assert cfg.sip2.host and cfg.sip2.port


@pytest.mark.parametrize("name", ["koha", "evergreen", "sierra", "alma", "folio", "alise"])
def test_each_profile_has_an_example_and_a_row(name):
    assert (ROOT / "config" / "examples" / f"{name}.toml").exists()
    assert f"`{name}.toml`" in DOC


def test_every_doc_reference_in_the_examples_exists():
    for path in EXAMPLES:
        for line in path.read_text(encoding="utf-8").splitlines():
            for ref in re.findall(r"docs/[\w/-]+\.md", line):
                target = ROOT / ref
                assert target.exists(), f"{path.name}: {line.strip()}"
                if '"TLS and stunnel"' in line:
                    assert "## TLS and stunnel" in target.read_text(encoding="utf-8")
