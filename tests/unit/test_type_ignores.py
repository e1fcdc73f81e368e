"""Every `# type: ignore` in kiosk/ names its error code and says why (mypy, run by
scripts/test.sh with `warn_unused_ignores`, fails on one that is no longer needed)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IGNORE = re.compile(r"#\s*type:\s*ignore(?P<code>\[[a-z-]+(?:,\s*[a-z-]+)*\])?(?P<rest>.*)$")


def unexplained_ignores(text: str, where: str) -> list[str]:
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = IGNORE.search(line)
        if match and (not match["code"] or not match["rest"].strip().lstrip("#").strip()):
            found.append(f"{where}:{number}: {line.strip()}")
    return found


def test_every_type_ignore_names_its_code_and_reason():
    found = [
        hit
        for path in sorted((ROOT / "kiosk").rglob("*.py"))
        for hit in unexplained_ignores(
            path.read_text(encoding="utf-8"), str(path.relative_to(ROOT))
        )
    ]
    assert found == []


def test_a_bare_or_unexplained_ignore_is_found():
    text = (
        "a = f()  # type: ignore\n"
        "b = g()  # type: ignore[arg-type]\n"
        "c = h()  # type: ignore[attr-defined]  # set by the kv rule\n"
    )
    assert [hit.split(":")[1] for hit in unexplained_ignores(text, "m.py")] == ["1", "2"]
