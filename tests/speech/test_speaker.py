"""The Speaker: off until switched on, every utterance interrupts the last, repeat, volume and rate,
secrets never reach the engine, and the UI thread never waits for the engine."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from kiosk.speech import RecordingSink, Speaker, Utterance, VoiceLimits, make_speaker
from kiosk.speech.masking import card_ending, digit_entered, redact


def test_silent_until_switched_on_and_off_again_after_the_visit() -> None:
    sink = RecordingSink()
    speaker = Speaker(sink)
    speaker.say("Welcome", "en")
    assert speaker.flush()
    assert sink.texts == []
    assert speaker.enable("speech key")
    speaker.say("Welcome", "en")
    assert speaker.flush()
    assert sink.texts == ["Welcome"]
    speaker.end_visit()
    speaker.say("Goodbye", "en")
    assert speaker.flush()
    assert sink.texts == ["Welcome"]
    speaker.close()


def test_each_utterance_interrupts_the_previous_one() -> None:
    sink = RecordingSink()
    speaker = Speaker(sink, always_on=True)
    for text in ("one", "two", "three"):
        speaker.say(text, "en")
    assert speaker.flush()
    assert sink.texts == ["one", "two", "three"]
    assert sink.stops >= 3  # the engine was stopped before each start
    speaker.close()


def test_repeat_says_the_last_text_again() -> None:
    sink = RecordingSink()
    speaker = Speaker(sink, always_on=True)
    assert not speaker.repeat()
    speaker.say("Place your items on the shelf", "en")
    assert speaker.repeat()
    assert speaker.flush()
    assert sink.texts == ["Place your items on the shelf"] * 2
    speaker.close()


def test_volume_and_rate_are_bounded_and_reset_at_the_end_of_the_visit() -> None:
    sink = RecordingSink()
    speaker = Speaker(
        sink,
        VoiceLimits(volume=80, volume_step=10, rate=160, rate_step=20, max_rate=200),
        always_on=True,
    )
    assert [speaker.louder() for _ in range(4)] == [90, 100, 100, 100]
    assert [speaker.faster() for _ in range(3)] == [180, 200, 200]
    speaker.say("x", "en")
    assert speaker.flush()
    assert sink.utterances[-1] == Utterance("x", "en", 100, 200)
    speaker.end_visit()
    assert (speaker.volume, speaker.rate) == (80, 160)
    assert speaker.enabled  # always on stays on
    speaker.close()


def test_site_setting_off_wins_over_keys() -> None:
    from kiosk.config import SpeechSection

    speaker = make_speaker(SpeechSection(mode="off"), RecordingSink())
    assert not speaker.enable("speech key")
    assert not speaker.enabled
    assert make_speaker(SpeechSection(mode="always"), RecordingSink()).enabled


def test_registered_secrets_are_never_spoken() -> None:
    sink = RecordingSink()
    speaker = Speaker(sink, always_on=True)
    speaker.guard("LV00012345")
    speaker.guard("4711")
    speaker.say("Card LV00012345 with PIN 4711 or 4 7 1 1", "en")
    assert speaker.flush()
    assert sink.texts == ["Card hidden with PIN hidden or hidden"]
    speaker.end_visit()  # forgotten with the visit
    speaker.say("4711", "en")
    assert speaker.flush()
    assert sink.texts[-1] == "4711"
    speaker.close()


def test_masked_forms() -> None:
    assert card_ending("LV00012345", "en") == "the card ending in four five"
    assert card_ending("LV00012345", "ru") == "карта с номером, оканчивающимся на четыре пять"
    assert card_ending("LV00012345", "lv") == "karte, kuras numurs beidzas ar četri pieci"
    assert digit_entered("lv") == "cipars ievadīts"
    assert redact("ab", {"ab"}, "en") == "ab"  # too short to be a secret, and too common to cut


class _SlowEngine(RecordingSink):
    """An engine whose start blocks until released, as a stuck audio device would."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def start(self, utterance: Utterance) -> None:
        self.release.wait(5)
        super().start(utterance)


def test_a_stuck_engine_never_blocks_the_caller() -> None:
    engine = _SlowEngine()
    speaker = Speaker(engine, always_on=True)
    speaker.say("first", "en")
    speaker.say("second", "en")  # returns while the engine is still stuck in "first"
    assert engine.texts == []
    assert not speaker.flush(timeout=0.05)
    engine.release.set()
    assert speaker.flush()
    assert engine.texts == ["first", "second"]
    speaker.close()


class _FailingEngine(RecordingSink):
    def start(self, utterance: Utterance) -> None:
        from kiosk.speech import SpeechError

        raise SpeechError("no sound device")


def test_a_failing_engine_is_logged_and_speech_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    speaker = Speaker(_FailingEngine(), always_on=True)
    speaker.say("hello", "en")
    assert speaker.flush()
    assert "no sound device" in caplog.text
    speaker.close()


def test_recording_sink_renders_nothing(tmp_path: Path) -> None:
    from kiosk.speech import SpeechError

    with pytest.raises(SpeechError):
        RecordingSink().render(Utterance("x", "en"), tmp_path / "x.wav")
