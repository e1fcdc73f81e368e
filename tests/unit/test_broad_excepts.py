"""Every broad `except Exception` (or `BaseException`) in kiosk/ says why it is broad and keeps
the traceback.

A fault the kiosk expects belongs to a KioskError family and is caught by that family. A broad
catch is right only at a boundary that must carry on (a thread's last line of defence, a device
driver, outside code such as an alert sink): there a comment says why, and the handler logs the
fault with its traceback (`log.exception`, `log_fault`, `exc_info=`, logging's `handleError`) or
raises it again, so a bug is never turned into a message that blames the library system.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "kiosk"

KEEPS_TRACEBACK = ("log.exception", "log_fault", "exc_info", "handleError", ".exception(")

# (file, function): broad catches that cannot log, with why.
NO_LOG_POSSIBLE = {
    # The log filter itself: a broken format string is kept as raw text in the record it filters.
    ("kiosk/logsetup.py", "filter"),
    # The hard exit after the stop deadline: flushing the log handlers is what failed.
    ("kiosk/shutdown.py", "_overtime"),
}


def _is_broad(handler: ast.ExceptHandler) -> bool:
    kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(k, ast.Name) and k.id in ("Exception", "BaseException") for k in kinds)


def broad_catch_problems(path: Path, where: str) -> list[str]:
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    problems: list[str] = []

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ExceptHandler) and child.type is not None and _is_broad(child):
                head = lines[child.lineno - 1 : child.body[0].lineno - 1]
                body = ast.unparse(ast.Module(body=child.body, type_ignores=[]))
                reraises = any(isinstance(n, ast.Raise) for b in child.body for n in ast.walk(b))
                if not any("#" in line for line in head):
                    problems.append(
                        f"{where}:{child.lineno}: no comment says why the catch is broad"
                    )
                if not (
                    reraises
                    or any(k in body for k in KEEPS_TRACEBACK)
                    or (where, function) in NO_LOG_POSSIBLE
                ):
                    problems.append(f"{where}:{child.lineno}: the traceback is lost")
            inner = (
                child.name
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
                else function
            )
            visit(child, inner)

    visit(ast.parse(source, filename=str(path)), "")
    return problems


def test_every_broad_catch_says_why_and_keeps_the_traceback():
    problems = [
        problem
        for path in sorted(PACKAGE.rglob("*.py"))
        for problem in broad_catch_problems(path, path.relative_to(ROOT).as_posix())
    ]
    assert problems == []


def test_a_silent_broad_catch_is_found(tmp_path):
    path = tmp_path / "m.py"
    path.write_text(
        "import logging\n"
        "log = logging.getLogger(__name__)\n"
        "def quiet():\n"
        "    try:\n"
        "        pass\n"
        "    except Exception as exc:\n"
        "        log.error('failed: %s', exc)\n"
        "def explained():\n"
        "    try:\n"
        "        pass\n"
        "    except (OSError, Exception):  # a thread's last line of defence\n"
        "        log.exception('failed')\n"
        "def narrow():\n"
        "    try:\n"
        "        pass\n"
        "    except ValueError:\n"
        "        pass\n"
        "def cleanup():\n"
        "    try:\n"
        "        pass\n"
        "    except BaseException:\n"
        "        # undo, then on\n"
        "        raise\n",
        encoding="utf-8",
    )
    assert broad_catch_problems(path, "m.py") == [
        "m.py:6: no comment says why the catch is broad",
        "m.py:6: the traceback is lost",
    ]
