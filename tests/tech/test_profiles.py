"""The library-system profiles in config/examples/: each loads, keeps its data where the kiosk's
sandbox may write, and is described in docs/library-systems.md."""

from __future__ import annotations

import json
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
    assert cfg.sip2.host
    assert cfg.sip2.port


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


# How each library system answers, as far as the kiosk can tell on the wire: its character set,
# line end, whether it sends checksums, what its login's location must look like, and a library
# name in letters only that character set carries (so a wrong sip2.encoding shows).
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
STYLES = {
    "koha": {"library_name": "Zaļā bibliotēka", "profile": "no-duplicate-rule"},
    "evergreen": {"library_name": "Bibliothèque Zaļā", "profile": "no-duplicate-rule"},
    "sierra": {"library_name": "Bibliothèque – “Café”", "profile": "standard"},
    "alma": {"library_name": "Universitātes bibliotēka", "profile": "standard"},
    "folio": {"library_name": "Bibliothèque Café", "profile": "standard", "location_pattern": UUID},
    "alise": {"library_name": "Rīgas Centrālā bibliotēka", "profile": "standard"},
}


def demo_in_style(tmp_path, name: str, cfg: kconfig.Config, **overrides):
    from kiosk.sync.acs.server import start_embedded

    style = {**STYLES[name], **overrides}
    return start_embedded(
        f"sqlite:///{tmp_path / 'acs.sqlite'}",
        "127.0.0.1",
        0,
        fresh=True,
        login=(cfg.sip2.username, cfg.sip2.password),
        encoding=cfg.sip2.encoding,
        institution=cfg.sip2.institution_id,
        library_name=style["library_name"],
        terminator="\r\n" if cfg.sip2.line_terminator == "CRLF" else "\r",
        profile=style["profile"],
        location_pattern=style.get("location_pattern"),
    )


def site_copy(tmp_path, name: str, port: int, **replace: str):
    """The example as a site would fill it in, pointed at the demo library system on loopback
    (plain TCP here: TLS is tested with the SIP2 client's own tests)."""
    text = (ROOT / "config" / "examples" / f"{name}.toml").read_text(encoding="utf-8")
    text = re.sub(r'(?m)^host = "[^"]*"', 'host = "127.0.0.1"', text)
    text = re.sub(r"(?m)^port = \d+", f"port = {port}", text, count=1)
    text = re.sub(r"(?m)^tls = true", "tls = false", text)
    text = text.replace("/var/lib/kiosk", str(tmp_path / "var"))
    for old, new in replace.items():
        text = text.replace(old, new)
    f = tmp_path / f"{name}.toml"
    f.write_text(text, encoding="utf-8")
    return f


def sip2_check(tmp_path, capsys, name: str, **replace: str) -> tuple[int, str, str]:
    """`kiosk sip2 check` with the example (edited by `replace`) against the demo in its style."""
    from kiosk.cli import main

    example = kconfig.load(ROOT / "config" / "examples" / f"{name}.toml")
    acs = demo_in_style(tmp_path, name, example)
    try:
        rc = main(
            ["--config", str(site_copy(tmp_path, name, acs.port, **replace)), "sip2", "check"]
        )
    finally:
        acs.stop()
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


@pytest.mark.parametrize("name", sorted(STYLES))
def test_profile_talks_to_a_library_system_of_its_style(tmp_path, capsys, name):
    from kiosk.exitcodes import Exit

    example = kconfig.load(ROOT / "config" / "examples" / f"{name}.toml")
    rc, out, err = sip2_check(tmp_path, capsys, name)
    assert rc == Exit.OK, err
    report = json.loads(out)
    assert report["encoding"] == example.sip2.encoding
    assert report["acs"]["institution_id"] == example.sip2.institution_id
    # The library name crosses the wire intact only in the example's character set.
    assert report["acs"]["library_name"] == STYLES[name]["library_name"]
    assert report["acs"]["date_time"]  # ISO 8601, compared with the kiosk's clock


def test_folio_refuses_a_location_that_is_not_a_service_point_uuid(tmp_path, capsys):
    from kiosk.exitcodes import Exit

    uuid = kconfig.load(ROOT / "config" / "examples" / "folio.toml").sip2.location_code
    rc, _out, err = sip2_check(tmp_path, capsys, "folio", **{uuid: "Main Desk"})
    assert rc == Exit.USAGE
    assert "[sip2] password: the library system refused the login" in err


def test_a_wrong_encoding_shows_in_the_library_name(tmp_path, capsys):
    _rc, out, _err = sip2_check(
        tmp_path, capsys, "folio", **{'encoding = "iso-8859-1"': 'encoding = "utf-8"'}
    )
    assert json.loads(out)["acs"]["library_name"] != STYLES["folio"]["library_name"]
