"""Spoken guidance for patrons who cannot see the screen: the speech port and its engines, the
Speaker the app talks through, and the phrasing of numbers, dates and money in lv/en/ru.

The names below are loaded when first used: reading the configuration checks the keypad's keys
(`kiosk.speech.keys`), which must not load the engines before the kiosk's first frame
(docs/performance.md)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kiosk.speech.build import make_engine, make_speaker
    from kiosk.speech.espeak import EspeakEngine
    from kiosk.speech.port import RecordingSink, SpeechEngine, SpeechError, Utterance
    from kiosk.speech.speaker import Speaker, VoiceLimits

_WHERE = {
    "EspeakEngine": "kiosk.speech.espeak",
    "RecordingSink": "kiosk.speech.port",
    "SpeechEngine": "kiosk.speech.port",
    "SpeechError": "kiosk.speech.port",
    "Utterance": "kiosk.speech.port",
    "Speaker": "kiosk.speech.speaker",
    "VoiceLimits": "kiosk.speech.speaker",
    "make_engine": "kiosk.speech.build",
    "make_speaker": "kiosk.speech.build",
}

__all__ = [
    "EspeakEngine",
    "RecordingSink",
    "SpeechEngine",
    "SpeechError",
    "Speaker",
    "Utterance",
    "VoiceLimits",
    "make_engine",
    "make_speaker",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
