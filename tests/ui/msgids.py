"""Reading the message ids a screen uses from its source, for the catalog tests.

Python sources are parsed (tr/_/ntr calls with literal arguments); .kv files are searched for
`app.tr('...')`. Found ids map to their plural msgid, or None for a plain text.
"""

from __future__ import annotations

import ast
import re
import string
from collections.abc import Iterable
from pathlib import Path

KV_TR = re.compile(r"app\.tr\('((?:[^'\\]|\\.)*)'")


def msgids_in_python(paths: Iterable[Path], found: dict[str, str | None]) -> None:
    """Add every tr/_/ntr call's literal msgid in `paths` to `found`."""
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            func = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            args = node.args
            if (
                func in ("_", "tr")
                and args
                and isinstance(args[0], ast.Constant)
                and isinstance(args[0].value, str)
            ):
                found.setdefault(args[0].value, None)
            if (
                func == "ntr"
                and len(args) >= 2
                and all(isinstance(a, ast.Constant) for a in args[:2])
            ):
                found[args[0].value] = args[1].value


def msgids_in_kv(kv: str, found: dict[str, str | None]) -> None:
    """Add every `app.tr('...')` msgid in the kv text to `found`."""
    for match in KV_TR.finditer(kv):
        found.setdefault(match.group(1), None)


def placeholders(text: str) -> set[str]:
    """The placeholder names in a format string."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}
