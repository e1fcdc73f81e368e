"""espeak-ng really speaking: a WAV per language rendered and measured, interruption of a running
utterance, and `kiosk say` for technicians."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import wave
from datetime import date
from pathlib import Path

import pytest

from kiosk.speech import EspeakEngine, SpeechError, Utterance
from kiosk.speech.phrasing import due_phrase, money
from kiosk.speech.wavcheck import SILENCE_DBFS, measure

pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None,
    reason="espeak-ng not installed (scripts/setup-dev.sh installs it)",
)

PHRASES = {
    "lv": "Zaļā grāmata, izsniegta, "
    + due_phrase(date(2026, 12, 28), "lv", today=date(2026, 12, 7)),
    "en": "Green book, borrowed. You owe " + money("3.50", "en"),
    "ru": "Зелёная книга, выдана. Долг " + money("3.50", "ru"),
}


@pytest.mark.parametrize("lang", ["lv", "en", "ru"])
def test_a_wav_per_language_is_speech_not_silence(lang: str, tmp_path: Path) -> None:
    path = EspeakEngine().render(Utterance(PHRASES[lang], lang), tmp_path / f"{lang}.wav")
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 22050)
    level = measure(path)
    assert level.seconds > 1.0, level
    assert level.rms_dbfs > SILENCE_DBFS, level
    assert level.rms_dbfs > -35, level  # speech, not a click or noise floor


def test_volume_reaches_the_engine(tmp_path: Path) -> None:
    engine = EspeakEngine()
    quiet = measure(engine.render(Utterance("one two three", "en", volume=20), tmp_path / "q.wav"))
    loud = measure(engine.render(Utterance("one two three", "en", volume=100), tmp_path / "l.wav"))
    assert loud.rms_dbfs - quiet.rms_dbfs > 6  # five times the amplitude is about 14 dB


def test_rate_reaches_the_engine(tmp_path: Path) -> None:
    engine = EspeakEngine()
    slow = measure(
        engine.render(Utterance("one two three four five six", "en", rate=100), tmp_path / "s.wav")
    )
    fast = measure(
        engine.render(Utterance("one two three four five six", "en", rate=300), tmp_path / "f.wav")
    )
    assert slow.seconds > 1.5 * fast.seconds


def test_silence_is_measured_as_silent(tmp_path: Path) -> None:
    path = tmp_path / "silence.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(22050)
        wav.writeframes(b"\0\0" * 22050)
    assert measure(path).silent


def test_a_new_utterance_kills_the_running_one(tmp_path: Path) -> None:
    # A stand-in binary that "speaks" until killed, so interruption is seen on real processes.
    fake = tmp_path / "espeak-ng"
    fake.write_text("#!/bin/sh\necho $$ >> " + str(tmp_path / "pids") + "\nexec sleep 30\n")
    fake.chmod(0o755)
    engine = EspeakEngine(str(fake))
    engine.start(Utterance("first", "en"))
    first = engine._process
    assert first is not None
    engine.start(Utterance("second", "en"))
    assert first.poll() is not None  # killed, not left talking over the next one
    assert engine.speaking()
    engine.stop()
    assert not engine.speaking()


def test_a_missing_binary_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SpeechError, match="install the Debian package espeak-ng"):
        EspeakEngine(str(tmp_path / "nowhere")).render(Utterance("x", "en"), tmp_path / "x.wav")
    with pytest.raises(SpeechError, match="install the Debian package espeak-ng"):
        EspeakEngine(str(tmp_path / "nowhere")).start(Utterance("x", "en"))


def test_an_unknown_voice_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SpeechError, match="could not render voice 'xx-nonexistent'"):
        EspeakEngine(voices={"lv": "xx-nonexistent"}).render(
            Utterance("x", "lv"), tmp_path / "x.wav"
        )


@pytest.mark.parametrize("lang", ["lv", "en", "ru"])
def test_kiosk_say_writes_a_wav(lang: str, tmp_path: Path) -> None:
    out = tmp_path / f"say-{lang}.wav"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run(
        [sys.executable, "-m", "kiosk", "say", "--lang", lang, "--out", str(out), PHRASES[lang]],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert str(out) in done.stdout
    assert "dBFS" in done.stdout
    assert not measure(out).silent
