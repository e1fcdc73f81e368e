"""The espeak-ng engine: one `espeak-ng` process per utterance, killed when the next one starts.

espeak-ng (Debian package `espeak-ng`) has mature Latvian, Russian and English voices and renders
a sentence in milliseconds even on a Raspberry Pi; it plays through the default sound device
(the headset jack on a kiosk with one), or writes a 22,050 Hz mono WAV with `-w`.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
from pathlib import Path

from kiosk.speech.port import SpeechError, Utterance

log = logging.getLogger(__name__)

# The kiosk's languages to espeak-ng voices; "ru-lv" (Russian as spoken in Latvia) can be set per site.
DEFAULT_VOICES = {"lv": "lv", "en": "en-gb", "ru": "ru"}


def amplitude(volume: int) -> int:
    """The kiosk's 0-100 % volume as espeak-ng's amplitude 0-200 (100 is its default)."""
    return max(0, min(200, round(volume * 2)))


class EspeakEngine:
    """Speaks through espeak-ng; `binary` and `voices` come from `[speech]`."""

    name = "espeak-ng"

    def __init__(self, binary: str = "espeak-ng", voices: dict[str, str] | None = None) -> None:
        self.binary = binary
        self.voices = {**DEFAULT_VOICES, **(voices or {})}
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def available(self) -> bool:
        return shutil.which(self.binary) is not None

    def command(self, utterance: Utterance) -> list[str]:
        voice = self.voices.get(utterance.lang, utterance.lang)
        # "--" ends the options: a text starting with "-" is spoken, not parsed.
        return [
            self.binary,
            "-v",
            voice,
            "-a",
            str(amplitude(utterance.volume)),
            "-s",
            str(utterance.rate),
            "--",
            utterance.text,
        ]

    def start(self, utterance: Utterance) -> None:
        self.stop()
        try:
            process = subprocess.Popen(
                self.command(utterance),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        except OSError as exc:
            raise SpeechError(
                f"cannot start {self.binary} ({exc}); install the Debian package espeak-ng"
            ) from None
        with self._lock:
            self._process = process

    def stop(self) -> None:
        with self._lock:
            process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
        if process is not None:
            try:
                process.wait(timeout=2)
            except (
                subprocess.TimeoutExpired
            ):  # pragma: no cover - a killed process that does not exit
                log.warning("espeak-ng process %s did not exit after kill", process.pid)

    def speaking(self) -> bool:
        with self._lock:
            return self._process is not None and self._process.poll() is None

    def render(self, utterance: Utterance, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        argv = self.command(utterance)
        argv[1:1] = ["-w", str(path)]
        try:
            done = subprocess.run(
                argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=60, check=False
            )
        except FileNotFoundError:
            raise SpeechError(
                f"{self.binary} not found; install the Debian package espeak-ng"
            ) from None
        except subprocess.TimeoutExpired:
            raise SpeechError(
                f"{self.binary} took more than 60 s to render {len(utterance.text)} characters"
            ) from None
        if done.returncode != 0 or not path.exists():
            detail = (
                done.stderr.decode("utf-8", "replace").strip() or f"exit status {done.returncode}"
            )
            raise SpeechError(
                f"{self.binary} could not render voice {argv[argv.index('-v') + 1]!r}: {detail}"
            )
        return path
