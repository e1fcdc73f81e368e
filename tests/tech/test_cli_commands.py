"""The `kiosk` command loads only the module of the command it runs: the table of which module
adds which command must name exactly what each module registers, and a command line must reach
the same command, with the same arguments, as with every module loaded."""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.cli import COMMANDS, build_parser, command_of

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("module", sorted(COMMANDS))
def test_the_table_names_what_each_module_registers(module: str) -> None:
    sub = argparse.ArgumentParser().add_subparsers(dest="command")
    importlib.import_module(module).register(sub)
    assert sorted(sub.choices) == sorted(COMMANDS[module])


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["sip2", "decode"], "sip2"),
        (["--config", "site.toml", "sync"], "sync"),
        (["-v", "--config", "x", "journal", "show"], "journal"),
        (["--config=site.toml", "doctor"], "doctor"),
        (["--help"], None),
        ([], None),
    ],
)
def test_the_command_word_is_found_past_the_global_options(argv, command) -> None:
    assert command_of(argv) == command


def test_one_module_parses_as_all_of_them_do() -> None:
    argv = ["--config", "site.toml", "sip2", "decode", "--encoding", "cp1257"]
    alone, everything = build_parser("sip2").parse_args(argv), build_parser().parse_args(argv)
    assert vars(alone) | {"func": None} == vars(everything) | {"func": None}
    assert alone.encoding == "cp1257"


def test_sip2_decode_does_not_load_the_journal() -> None:
    probe = (
        "import sys, io; sys.stdin = io.TextIOWrapper(io.BytesIO(b'9900302.00\\r'));"
        "from kiosk.cli import main; code = main(['sip2', 'decode']);"
        "print(sorted(m for m in ('sqlalchemy', 'kiosk.sync.journal', 'kivy') if m in sys.modules));"
        "sys.exit(code)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    decoded, loaded = done.stdout.strip().splitlines()
    assert json.loads(decoded)["command"] == "99"
    assert loaded == "[]"
