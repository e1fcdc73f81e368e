"""The speech parts a site's `[speech]` section asks for: its engine and the Speaker."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kiosk.speech.espeak import EspeakEngine
from kiosk.speech.port import RecordingSink, SpeechEngine
from kiosk.speech.speaker import Speaker, VoiceLimits

if TYPE_CHECKING:
    from kiosk.config import SpeechSection


def make_engine(section: SpeechSection) -> SpeechEngine:
    """The engine `[speech] engine` names; "none" records what would have been said."""
    if section.engine == "espeak-ng":
        return EspeakEngine(
            section.binary, {"lv": section.voice_lv, "en": section.voice_en, "ru": section.voice_ru}
        )
    return RecordingSink()


def make_speaker(section: SpeechSection, engine: SpeechEngine | None = None) -> Speaker:
    """The Speaker for a site's `[speech]` section; `engine` replaces the configured one (tests)."""
    limits = VoiceLimits(
        volume=section.volume,
        volume_step=section.volume_step,
        rate=section.rate,
        rate_step=section.rate_step,
    )
    return Speaker(
        engine or make_engine(section),
        limits,
        always_on=section.mode == "always",
        allowed=section.mode != "off",
    )
