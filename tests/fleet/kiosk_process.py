"""A kiosk without its touch screen, for fleet tests: the composition root's services (journal,
SIP2 link, simulated pad and card source, metrics) driven through the patron session.

In a test process: `HeadlessKiosk(cfg).checkout("LV0002", "30000001")`. As its own process
(`python tests/fleet/kiosk_process.py CONFIG`) it prints `READY <metrics port>` and then reads
one command a line from standard input: `checkout CARD ITEM`, `sample`, `quit`; each answered
with one line.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_NO_CONFIG", "1")
os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")
os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")

WAIT_S = 15.0


class HeadlessKiosk:
    """build_services() plus the wiring KioskApp.on_start does for the pad, without Kivy's window."""

    def __init__(self, cfg: Any) -> None:
        from kiosk.app import build_services

        self.services = build_services(cfg, start_acs=False)
        self.fleet = self.services.fleet
        self.changed = threading.Event()
        s = self.services
        s.stack.on_change = self._on_tags
        s.worker.submit(s.circulation.forward_offline).result(timeout=WAIT_S)

    def _on_tags(self, present: Any, added: Any, removed: Any) -> None:
        from kiosk.core.events import TagsChanged

        s = self.services
        handle = s.bookdrop.handle_tags if s.bookdrop is not None else s.session.handle
        s.worker.submit(handle, TagsChanged(present=present, added=added, removed=removed)).result(
            timeout=WAIT_S
        )
        self.changed.set()

    def _poll_until_changed(self) -> None:
        self.changed.clear()
        for _ in range(50):
            self.services.stack.poll_once()
            if self.changed.is_set():
                return
        raise AssertionError("the pad's change never reached the session")

    def checkout(self, card: str, item_id: str) -> str:
        """One patron visit: card, one item on the pad, logout; returns the item's final status."""
        from kiosk.core.events import Action, CardPresented, Tapped
        from kiosk.devices.readers.sim import demo_tag

        s = self.services
        state = s.worker.submit(s.session.handle, CardPresented(card)).result(timeout=WAIT_S)
        if state.stage.value != "active":
            raise AssertionError(f"patron {card} not logged in: {state.stage}")
        tag = s.pad.place(demo_tag(item_id))
        try:
            self._poll_until_changed()
            state = s.session.state
            status = next(i.status.value for i in state.checkout.items if i.item_id == item_id)
        finally:
            s.pad.remove(tag.uid)
            self._poll_until_changed()
            s.worker.submit(s.session.handle, Tapped(Action.LOGOUT)).result(timeout=WAIT_S)
        return status

    def drop(self, item_id: str) -> Any:
        """One item through the book drop's slot; returns what the book drop decided for it."""
        from kiosk.devices.readers.sim import demo_tag

        s = self.services
        tag = s.pad.place(demo_tag(item_id))
        try:
            self._poll_until_changed()
            return s.bookdrop.state.last
        finally:
            s.pad.remove(tag.uid)
            self._poll_until_changed()

    def close(self) -> None:
        self.services.close()


def main(argv: list[str]) -> int:
    from kiosk import config

    kiosk = HeadlessKiosk(config.load(argv[0]))
    address = kiosk.fleet.exporter_address
    print(f"READY {address[1] if address else 0}", flush=True)
    try:
        for line in sys.stdin:
            cmd = line.split()
            if not cmd:
                continue
            if cmd[0] == "checkout":
                print(kiosk.checkout(cmd[1], cmd[2]), flush=True)
            elif cmd[0] == "sample":
                print(kiosk.fleet.sample_now(), flush=True)
            elif cmd[0] == "quit":
                break
    finally:
        kiosk.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
