"""Every import inside a function in kiosk/ says why it is there with `# lazy: <reason>`.

An import belongs at the top of its module, where a reader sees what the module depends on.
One is deferred into a function only for a reason worth writing down: an optional dependency,
Kivy's import side effects (a window opens), a fast `kiosk --help` or start, or a load-time
cycle that cannot be broken. The reason sits on the import's own line, so that a search for
`# lazy:` lists every deferred import and its why.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "kiosk"
MARK = "# lazy:"


def unexplained_local_imports(path: Path) -> list[str]:
    """`file:line: statement` for each function-local import of `path` without a `# lazy:` reason."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    found: list[str] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if in_function and isinstance(child, ast.Import | ast.ImportFrom):
                span = lines[child.lineno - 1 : (child.end_lineno or child.lineno)]
                reason = next((line.split(MARK, 1)[1] for line in span if MARK in line), "")
                if not reason.strip():
                    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
                    found.append(f"{where}:{child.lineno}: {span[0].strip()}")
            visit(
                child,
                in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef),
            )

    visit(ast.parse(source, filename=str(path)), False)
    return found


def test_every_function_local_import_gives_its_reason():
    missing = [
        hit for path in sorted(PACKAGE.rglob("*.py")) for hit in unexplained_local_imports(path)
    ]
    assert missing == [], "hoist these to the top of the module, or say why with `# lazy: ...`"


def test_an_import_without_a_reason_is_found(tmp_path):
    path = tmp_path / "m.py"
    path.write_text(
        "import json\n"
        "def f():\n"
        "    import re\n"
        "    from os import path  # lazy:\n"
        "    class C:\n"
        "        def g(self):\n"
        "            from kiosk import config  # deferred for speed\n"
        "    return re, path, C\n",
        encoding="utf-8",
    )
    found = unexplained_local_imports(path)
    assert [int(hit.split(":")[1]) for hit in found] == [3, 4, 7]


def test_a_reason_on_any_line_of_the_statement_counts(tmp_path):
    path = tmp_path / "m.py"
    path.write_text(
        "def f():\n"
        "    import kivy  # lazy: Kivy configures its logging on import\n"
        "    from kiosk.devices.printer import (  # lazy: python-escpos is loaded for a real printer only\n"
        "        open_printer,\n"
        "    )\n"
        "    return kivy, open_printer\n",
        encoding="utf-8",
    )
    assert unexplained_local_imports(path) == []
