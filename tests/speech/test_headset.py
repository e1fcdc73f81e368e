"""Headset detection: input_event records through a real FIFO turn into plug and unplug calls."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from kiosk.speech.headset import (
    EV_SW,
    EVENT,
    SW_HEADPHONE_INSERT,
    HeadsetWatcher,
    eviocgsw,
    headphone_events,
)


def _event(kind: int, code: int, value: int) -> bytes:
    return EVENT.pack(1, 2, kind, code, value)


def test_only_headphone_switch_events_count() -> None:
    data = (
        _event(EV_SW, SW_HEADPHONE_INSERT, 1)
        + _event(0x01, 30, 1)
        + _event(EV_SW, 0x04, 1)
        + _event(EV_SW, SW_HEADPHONE_INSERT, 0)
    )
    assert headphone_events(data) == [True, False]
    assert headphone_events(data[:-3]) == [True]  # a torn record is not read


def test_eviocgsw_matches_linux_input_h() -> None:
    assert eviocgsw(8) == 0x8008451B


def test_plug_and_unplug_through_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "event0"
    os.mkfifo(fifo)
    seen: list[bool] = []
    cond = threading.Condition()

    def changed(plugged: bool) -> None:
        with cond:
            seen.append(plugged)
            cond.notify_all()

    watcher = HeadsetWatcher(str(fifo), changed)
    watcher.start()
    try:
        with open(fifo, "wb", buffering=0) as writer:
            record = _event(EV_SW, SW_HEADPHONE_INSERT, 1)
            writer.write(record[:10])  # split across writes, as a reader may see it
            writer.write(record[10:] + _event(EV_SW, SW_HEADPHONE_INSERT, 1))  # repeated: no change
            with cond:
                assert cond.wait_for(lambda: seen == [True], 5)
            writer.write(_event(EV_SW, SW_HEADPHONE_INSERT, 0))
            with cond:
                assert cond.wait_for(lambda: seen == [True, False], 5)
    finally:
        watcher.stop()
    assert watcher.plugged is False


def test_a_plugged_headset_keeps_speech_on_across_visits() -> None:
    from types import SimpleNamespace

    from kiosk.config import Config, SpeechSection
    from kiosk.speech.guide import SpeechGuide

    cfg = Config(speech=SpeechSection(engine="none"))
    app = SimpleNamespace(cfg=cfg, lang="en", state=None, manager=None, kiosk_root=None)
    guide = SpeechGuide(app)
    guide._headset = SimpleNamespace(plugged=True, stop=lambda: None)
    guide.headset_changed(True)
    assert guide.speaker.enabled
    assert guide.speaker.flush()
    assert guide.speaker.engine.texts[0].startswith("Speech on.")  # type: ignore[attr-defined]
    guide.end_visit()
    assert guide.speaker.enabled
    guide._headset.plugged = False
    guide.headset_changed(False)
    assert not guide.speaker.enabled
    guide.end_visit()
    assert not guide.speaker.enabled
    guide.close()
