"""Short feedback tones for scan, success, refusal and the idle warning: generated as small WAV
files on first use (no binary assets in the repository) and played through Kivy's audio.

Every cue is also recorded in `played`, so the UI tests can check that feedback was given
even where the machine has no sound card.
"""

from __future__ import annotations

import enum
import logging
import math
import os
import struct
import tempfile
import wave
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

RATE = 22_050


class Cue(enum.StrEnum):
    SCAN = "scan"  # a card or an item was read: immediate acknowledgement
    SUCCESS = "success"  # item checked out / returned / renewed
    REFUSAL = "refusal"  # item refused or login failed
    WARNING = "warning"  # idle warning before logout


# (frequency Hz, duration s) notes per cue: rising for success, low and double for refusal.
_NOTES: dict[Cue, tuple[tuple[float, float], ...]] = {
    Cue.SCAN: ((1320.0, 0.06),),
    Cue.SUCCESS: ((880.0, 0.08), (1320.0, 0.12)),
    Cue.REFUSAL: ((330.0, 0.15), (0.0, 0.05), (262.0, 0.22)),
    Cue.WARNING: ((660.0, 0.12), (0.0, 0.08), (660.0, 0.12), (0.0, 0.08), (660.0, 0.12)),
}


def write_tone(path: Path, notes: tuple[tuple[float, float], ...], volume: float = 0.4) -> Path:
    """A mono 16-bit WAV of the notes (0 Hz = silence), with short fades against clicks."""
    frames = bytearray()
    for freq, seconds in notes:
        count = int(RATE * seconds)
        fade = max(1, int(RATE * 0.005))
        for i in range(count):
            envelope = min(1.0, i / fade, (count - i) / fade)
            value = math.sin(2 * math.pi * freq * i / RATE) * volume * envelope if freq else 0.0
            frames += struct.pack("<h", int(value * 32767))
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(bytes(frames))
    return path


def tone_files(folder: Path | None = None) -> dict[Cue, Path]:
    """The WAV file of every cue, generated into `folder` (a temporary folder by default) if missing."""
    folder = folder or Path(tempfile.gettempdir()) / "kiosk-sounds"
    files = {}
    for cue, notes in _NOTES.items():
        path = folder / f"{cue.value}.wav"
        if not path.exists():
            write_tone(path, notes)
        files[cue] = path
    return files


class Sounds:
    """Plays cues; silent (but still recording) when disabled or when the machine has no audio."""

    def __init__(self, enabled: bool = True, folder: Path | None = None) -> None:
        self.enabled = enabled
        self.played: list[Cue] = []
        self._folder = folder
        self._loaded: dict[Cue, Any] | None = None

    def _load(self) -> dict[Cue, Any]:
        if self._loaded is None:
            self._loaded = {}
            if not Path("/dev/snd").exists() and not os.environ.get("SDL_AUDIODRIVER"):
                log.info("no sound card found; feedback is visual only")
                return self._loaded
            try:
                from kivy.core.audio import SoundLoader  # lazy: starts Kivy's audio; sounds on only

                for cue, path in tone_files(self._folder).items():
                    sound = SoundLoader.load(str(path))
                    if sound is not None:
                        self._loaded[cue] = sound
            except Exception as exc:
                # A device boundary (Kivy's audio providers): without audio, feedback stays visual.
                log.warning("sounds unavailable (%s); feedback is visual only", exc, exc_info=exc)
            if not self._loaded:
                log.info("no audio provider could load the feedback tones")
        return self._loaded

    def play(self, cue: Cue) -> None:
        self.played.append(cue)
        del self.played[:-50]  # a bounded record
        if not self.enabled:
            return
        sound = self._load().get(cue)
        if sound is not None:
            try:
                sound.stop()
                sound.play()
            except Exception as exc:
                # A device boundary, as above; a lost beep is not worth more than a debug line.
                log.debug("playing %s failed: %s", cue.value, exc, exc_info=exc)
