"""The speech port: what the kiosk needs from a text-to-speech engine, and a recording engine.

An engine starts speaking an utterance and returns at once; `stop()` cuts off whatever it is
saying. The `Speaker` (kiosk/speech/speaker.py) calls engines from its own thread only, so an
engine may take its time starting a process. Another engine (e.g. Piper with a site-supplied
voice model) plugs in by implementing this protocol and naming itself in `[speech] engine`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from kiosk.errors import KioskError


class SpeechError(KioskError):
    """The speech engine is missing or failed; the kiosk goes on without speech."""


@dataclass(frozen=True)
class Utterance:
    """One thing to say: the text, its language (lv/en/ru), volume 0-100 %, rate in words per minute."""

    text: str
    lang: str
    volume: int = 80
    rate: int = 160


@runtime_checkable
class SpeechEngine(Protocol):
    name: str

    def start(self, utterance: Utterance) -> None:
        """Begin speaking; returns without waiting for the speech to end."""

    def stop(self) -> None:
        """Cut off the utterance being spoken, if any."""

    def render(self, utterance: Utterance, path: Path) -> Path:
        """Write the utterance as a WAV file (blocking); for the technician's voice check."""


class RecordingSink:
    """An engine that speaks nothing and records every utterance and interruption, for tests."""

    name = "record"

    def __init__(self) -> None:
        self.utterances: list[Utterance] = []
        self.stops = 0
        self._lock = threading.Lock()

    def start(self, utterance: Utterance) -> None:
        with self._lock:
            self.utterances.append(utterance)

    def stop(self) -> None:
        with self._lock:
            self.stops += 1

    def render(self, utterance: Utterance, path: Path) -> Path:
        raise SpeechError("the recording engine writes no audio; use espeak-ng")

    @property
    def texts(self) -> list[str]:
        with self._lock:
            return [u.text for u in self.utterances]

    def clear(self) -> None:
        with self._lock:
            self.utterances.clear()
            self.stops = 0
