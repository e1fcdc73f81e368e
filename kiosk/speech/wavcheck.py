"""How loud and how long a WAV file is: RMS and peak in dBFS of 16-bit PCM, with the standard library."""

from __future__ import annotations

import math
import struct
import wave
from dataclasses import dataclass
from pathlib import Path

from kiosk.speech.port import SpeechError

SILENCE_DBFS = -60.0  # below this the file is taken as silent


@dataclass(frozen=True)
class Level:
    seconds: float
    rms_dbfs: float
    peak_dbfs: float

    @property
    def silent(self) -> bool:
        return self.rms_dbfs < SILENCE_DBFS


def _dbfs(value: float) -> float:
    return 20 * math.log10(value / 32768) if value > 0 else -math.inf


def measure(path: Path) -> Level:
    """The level of a 16-bit PCM WAV (any channel count, averaged over all samples)."""
    try:
        with wave.open(str(path), "rb") as wav:
            if wav.getsampwidth() != 2:
                raise SpeechError(
                    f"{path}: expected 16-bit samples, got {8 * wav.getsampwidth()}-bit"
                )
            frames = wav.readframes(wav.getnframes())
            rate = wav.getframerate()
            channels = wav.getnchannels()
    except (wave.Error, EOFError) as exc:
        raise SpeechError(f"{path}: not a WAV file ({exc})") from None
    samples = struct.unpack(f"<{len(frames) // 2}h", frames[: len(frames) // 2 * 2])
    if not samples:
        return Level(0.0, -math.inf, -math.inf)
    rms = math.sqrt(sum(s * s for s in samples) / len(samples))
    peak = max(abs(s) for s in samples)
    return Level(len(samples) / channels / rate, _dbfs(rms), _dbfs(peak))
