"""The import layers of docs/architecture.md, read from the source of every module in kiosk/.

- kiosk/core (the domain) imports none of kiosk.sync, kiosk.devices, kiosk.screens, kivy;
- kiosk/screens (the Kivy UI) imports neither kiosk.sync nor kiosk.devices;
- no two modules import each other, directly or around a longer loop.

How imports are counted: the layer rules count every import wherever it sits, at module level,
in a class body, under `if TYPE_CHECKING:` or inside a function, because an import inside a
function is still a dependency on that layer. The cycle check counts only imports that run when
the module is imported (module level and class bodies, `if TYPE_CHECKING:` blocks left out):
a function-local import runs later and cannot leave a half-initialised module behind, so it
is the accepted way to break a load-time loop. Importing `a.b.c` is counted as a dependency on
`a.b.c` alone, not on the packages `a` and `a.b` that Python loads on the way.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "kiosk"

# layer (module prefix) -> module prefixes it must not import
FORBIDDEN = {
    "kiosk.core": ("kiosk.sync", "kiosk.devices", "kiosk.screens", "kivy"),
    "kiosk.screens": ("kiosk.sync", "kiosk.devices"),
}


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported module (or the package, for `from pkg import name` of a non-module)
    line: int
    at_load: bool  # runs when `source` is imported


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(source: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = source.split(".")
    drop = node.level - 1 if is_package else node.level
    base = base[: len(base) - drop] if drop else base
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(name: str, path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[Import] = []
    is_package = path.name == "__init__.py"

    def visit(node: ast.AST, at_load: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                for alias in child.names:
                    found.append(Import(name, alias.name, child.lineno, at_load))
            elif isinstance(child, ast.ImportFrom):
                base = _resolve(name, is_package, child)
                for alias in child.names:
                    sub = f"{base}.{alias.name}"
                    target = sub if sub in MODULES else base
                    found.append(Import(name, target, child.lineno, at_load))
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(child, False)
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.body:
                    visit(ast.Module(body=[stmt], type_ignores=[]), False)
                for stmt in child.orelse:
                    visit(ast.Module(body=[stmt], type_ignores=[]), at_load)
            else:
                visit(child, at_load)

    visit(tree, True)
    return found


ALL_IMPORTS = [imp for name, path in MODULES.items() for imp in imports_of(name, path)]


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def layer_violations(imports: list[Import]) -> list[str]:
    bad = []
    for imp in imports:
        for layer, forbidden in FORBIDDEN.items():
            if _under(imp.source, layer) and any(_under(imp.target, f) for f in forbidden):
                bad.append(f"{imp.source}:{imp.line} imports {imp.target}")
    return bad


def cycles(imports: list[Import]) -> list[list[str]]:
    """Strongly connected groups of two or more kiosk modules over load-time imports (Tarjan)."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        if imp.at_load and imp.target in MODULES and imp.target != imp.source:
            graph.setdefault(imp.source, set()).add(imp.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return groups


def test_every_module_is_read():
    assert "kiosk.core.session" in MODULES
    assert "kiosk.screens.patron" in MODULES
    assert len(ALL_IMPORTS) > 100


def test_core_and_screens_keep_to_their_layers():
    assert layer_violations(ALL_IMPORTS) == []


def test_no_two_modules_import_each_other():
    assert cycles(ALL_IMPORTS) == []


# The checks themselves must be able to fail: each rule is shown a made-up violation.


def _fake(source: str, code: str, tmp_path: Path, package: bool = False) -> list[Import]:
    path = tmp_path / ("__init__.py" if package else "m.py")
    path.write_text(code, encoding="utf-8")
    return imports_of(source, path)


@pytest.mark.parametrize(
    ("source", "code"),
    [
        ("kiosk.core.fake", "from kiosk.sync.journal import Journal\n"),
        ("kiosk.core.fake", "def f():\n    import kivy.app\n"),
        (
            "kiosk.core.fake",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from kiosk.devices import printer\n",
        ),
        ("kiosk.core.fake", "from ..screens import base\n"),
        ("kiosk.screens.fake", "from kiosk.devices.readers.sim import demo_tag\n"),
        ("kiosk.screens.fake", "import kiosk.sync.circulation\n"),
    ],
)
def test_a_layer_violation_is_found(tmp_path, source, code):
    assert layer_violations(_fake(source, code, tmp_path)) != []


def test_allowed_imports_pass(tmp_path):
    code = "from kiosk.core.domain import Mode\nfrom kiosk.i18n import _\nimport logging\n"
    assert layer_violations(_fake("kiosk.screens.fake", code, tmp_path)) == []


def test_a_mutual_import_is_found():
    a = Import("kiosk.core.session", "kiosk.core.domain", 1, True)
    b = Import("kiosk.core.domain", "kiosk.core.session", 1, True)
    assert cycles([a, b]) == [["kiosk.core.domain", "kiosk.core.session"]]


def test_a_longer_loop_is_found():
    loop = [
        Import("kiosk.core.session", "kiosk.core.domain", 1, True),
        Import("kiosk.core.domain", "kiosk.core.ports", 1, True),
        Import("kiosk.core.ports", "kiosk.core.session", 1, True),
    ]
    assert cycles(loop) == [["kiosk.core.domain", "kiosk.core.ports", "kiosk.core.session"]]


def test_a_function_local_import_does_not_make_a_loop(tmp_path):
    code = "def later():\n    from kiosk.core import domain\n"
    back = _fake("kiosk.core.session", code, tmp_path)
    assert back
    assert not back[0].at_load
    there = Import("kiosk.core.domain", "kiosk.core.session", 1, True)
    assert cycles([*back, there]) == []
