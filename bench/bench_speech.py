"""Speech timings: espeak-ng's render time per language against the length of the speech it
renders (real-time factor), and how long `Speaker.say()` keeps the caller (the UI thread)
against starting the espeak-ng process itself. Run: `.venv/bin/python bench/bench_speech.py`."""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kiosk.speech import EspeakEngine, Speaker, Utterance  # noqa: E402
from kiosk.speech.phrasing import due_phrase, money  # noqa: E402
from kiosk.speech.wavcheck import measure  # noqa: E402

TODAY = date(2026, 12, 7)
TEXTS = {
    "lv": f"Zaļā grāmata, izsniegts, {due_phrase(date(2026, 12, 28), 'lv', today=TODAY)}. Maksājamā summa: {money('3.50', 'lv')}.",
    "en": f"Green book, borrowed, {due_phrase(date(2026, 12, 28), 'en', today=TODAY)}. Fees to pay: {money('3.50', 'en')}.",
    "ru": f"Зелёная книга, выдано, {due_phrase(date(2026, 12, 28), 'ru', today=TODAY)}. К оплате: {money('3.50', 'ru')}.",
}
ROUNDS = 5


class _SilentEspeak(EspeakEngine):
    """espeak-ng writing to /dev/null: the process start and synthesis, without a sound card."""

    def command(self, utterance: Utterance) -> list[str]:
        argv = super().command(utterance)
        argv[1:1] = ["-w", "/dev/null"]
        return argv


def main() -> None:
    engine = EspeakEngine()
    print(f"{'lang':<5} {'speech s':>9} {'render s':>9} {'real-time factor':>17}")
    with tempfile.TemporaryDirectory() as tmp:
        for lang, text in TEXTS.items():
            best = float("inf")
            for i in range(ROUNDS):
                started = time.perf_counter()
                path = engine.render(Utterance(text, lang), Path(tmp) / f"{lang}{i}.wav")
                best = min(best, time.perf_counter() - started)
            seconds = measure(path).seconds
            print(f"{lang:<5} {seconds:>9.2f} {best:>9.3f} {best / seconds:>17.4f}")

    silent = _SilentEspeak()
    starts = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        silent.start(Utterance(TEXTS["lv"], "lv"))
        starts.append(time.perf_counter() - started)
        silent.stop()
    speaker = Speaker(silent, always_on=True)
    says = []
    for _ in range(ROUNDS * 20):
        started = time.perf_counter()
        speaker.say(TEXTS["lv"], "lv")
        says.append(time.perf_counter() - started)
    speaker.flush(30)
    speaker.close()
    start_s, say_s = sorted(starts)[len(starts) // 2], sorted(says)[len(says) // 2]
    print()
    print(f"{'call on the UI thread':<32} {'median ms':>10} {'ratio':>8}")
    print(f"{'espeak-ng process start (Popen)':<32} {start_s * 1000:>10.3f} {1.0:>8.2f}")
    print(f"{'Speaker.say()':<32} {say_s * 1000:>10.3f} {say_s / start_s:>8.4f}")


if __name__ == "__main__":
    main()
