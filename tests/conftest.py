"""Top-level test configuration: Kivy runs headless and keeps its files in a temporary home.

These variables must be set before anything imports kivy (docs/testing.md §2.3).
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_NO_CONFIG", "1")
os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")
os.environ.setdefault("KIVY_HOME", tempfile.mkdtemp(prefix="kivy-home-"))
if not os.environ.get("DISPLAY"):
    os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")
os.environ.setdefault("KCFG_GRAPHICS_FULLSCREEN", "0")
os.environ.setdefault("KCFG_GRAPHICS_WIDTH", "1280")
os.environ.setdefault("KCFG_GRAPHICS_HEIGHT", "800")
os.environ.setdefault("KIVY_CLOCK", "interrupt")  # as `kiosk run` (kiosk/runcli.py, KIVY_CLOCK)

import pytest  # noqa: E402  (after the Kivy variables above)

from kiosk.core import errors as core_errors  # noqa: E402


@pytest.fixture(autouse=True)
def strict_faults():
    """Strict mode for every test: an unexpected exception that kiosk code caught and carried on
    from (the core worker, a workflow's fallback) fails the test that caused it, re-raised when
    the test ends, as Textual's pilot re-raises an app's exceptions."""
    core_errors.set_strict(True)
    core_errors.take_unexpected()
    yield
    caught = core_errors.take_unexpected()
    if caught:
        raise AssertionError(
            f"{len(caught)} unexpected exception(s) caught in kiosk code, first: {caught[0]!r}"
        ) from caught[0]


@pytest.fixture
def unexpected_faults():
    """For a test that provokes a bug on purpose: call it to take (and so accept) the unexpected
    exceptions caught so far; any left at the end still fail the test."""
    return core_errors.take_unexpected
