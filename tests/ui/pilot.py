"""A small driver for the kiosk's Kivy UI in tests: tap widgets through the Window (real hit
testing), pump frames, wait for a condition with a bound, and save screenshots."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SCREENSHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"


def pump(frames: int = 1) -> None:
    from kivy.base import EventLoop

    for _ in range(frames):
        EventLoop.idle()


def exported_pixel(root: Any, x: float, y: float) -> tuple[int, int, int]:
    """The colour drawn at window position (x, y), read back from `root`'s widget tree exported
    to an image, as screenshots are."""
    pump(2)
    texture = root.export_as_image().texture
    data = texture.pixels
    px, py = int(x - root.x), texture.height - 1 - int(y - root.y)  # rows run top to bottom
    offset = (py * texture.width + px) * 4
    return (data[offset], data[offset + 1], data[offset + 2])


class Pilot:
    """Drives one running KioskApp."""

    def __init__(self, app: Any, prefix: str = "") -> None:
        self.app = app
        self.prefix = prefix
        self.shots: list[Path] = []

    # -- finding -----------------------------------------------------------------------------

    def screen(self, name: str | None = None) -> Any:
        return self.app.screen(name or self.app.current_screen)

    def widget(self, wid: str, screen: str | None = None) -> Any:
        """A widget by its kv id on a screen (the current one by default) or on the root layout."""
        if screen == "root":
            return self.app.kiosk_root.ids[wid]
        scr = self.screen(screen)
        if wid in scr.ids:
            return scr.ids[wid]
        for child in scr.walk():
            if wid in getattr(child, "ids", {}):
                return child.ids[wid]
        raise KeyError(f"no widget {wid!r} on screen {scr.name!r}")

    def find(self, predicate: Callable[[Any], bool], root: Any = None) -> Any:
        for child in (root or self.app.kiosk_root).walk(restrict=True):
            if predicate(child):
                return child
        raise LookupError("no widget matches")

    # -- acting ------------------------------------------------------------------------------

    def tap(self, widget: Any) -> None:
        """A touch down and up at the widget's centre, dispatched through the Window."""
        from kivy.tests.common import UnitTestTouch

        pump(2)  # finish pending layout first: a widget about to move must be hit where it will be
        assert widget.get_root_window() is not None, f"{widget!r} is not on screen"
        assert not widget.disabled, f"{widget!r} is disabled"
        x, y = widget.to_window(*widget.center)
        touch = UnitTestTouch(x, y)
        touch.touch_down()
        pump(1)
        touch.touch_up()
        pump(2)

    def choose_language(self, code: str) -> None:
        """Tap a language button on the welcome screen: the patron's own choice, which wins over
        the language the library system has for them."""
        button = next(b for b in self.widget("languages", "welcome").children if b.code == code)
        self.tap(button)
        self.wait_until(lambda: self.app.lang == code, what=f"language {code}")

    def borrow(self, card: str, item_id: str, pin: str = "") -> None:
        """A card on the reader (the PIN typed if asked), one item placed on the pad and borrowed:
        the checkout screen with the loan done."""
        from kiosk.core.events import CardSource
        from kiosk.devices.readers.sim import demo_tag

        self.wait_screen("welcome")
        self.app.present_card(card, CardSource.RFID)
        self.wait_until(lambda: self.app.current_screen in ("pin", "checkout"), what="login")
        if self.app.current_screen == "pin":
            self.keys(self.widget("pad", "pin"), pin)
            self.tap_id("ok", "pin")
        self.wait_screen("checkout")
        self.pad.place(demo_tag(item_id))  # type: ignore[attr-defined]  # set by the harness
        self.wait_until(
            lambda: any(i.item_id == item_id and i.final for i in self.app.state.checkout.items),
            what=f"the loan of {item_id}",
        )

    def tap_id(self, wid: str, screen: str | None = None) -> None:
        self.tap(self.widget(wid, screen))

    def keys(self, pad: Any, text: str) -> None:
        """Tap the keys of an on-screen keypad one by one."""
        for char in text:
            button = next(b for b in pad.children if getattr(b, "key", None) == char)
            self.tap(button)

    def wait_until(
        self,
        predicate: Callable[[], Any],
        timeout: float = 10.0,
        what: str | Callable[[], str] = "",
    ) -> Any:
        """Pump frames until `predicate()` is truthy; fails after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            pump(1)
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                detail = what() if callable(what) else what
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {detail or predicate}"
                )
            time.sleep(0.005)  # yield to the worker and pad threads between frames

    def wait_screen(self, name: str, timeout: float = 10.0) -> None:
        self.wait_until(
            lambda: self.app.current_screen == name,
            timeout,
            f"screen {name!r} (now {self.app.current_screen!r})",
        )
        pump(3)

    def settle(self) -> None:
        """Let layouts and textures catch up before a screenshot."""
        pump(4)

    def screenshot(self, name: str) -> Path:
        self.settle()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.prefix}{name}.png"
        self.app.kiosk_root.export_to_png(str(path))
        self.shots.append(path)
        return path
