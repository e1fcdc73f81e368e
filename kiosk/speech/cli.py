"""`kiosk say`: render a text with the configured voice to a WAV file, to check the voice and the headset."""

from __future__ import annotations

import argparse
from pathlib import Path

from kiosk.config import load
from kiosk.speech.espeak import EspeakEngine
from kiosk.speech.phrasing import LANGUAGES
from kiosk.speech.port import Utterance


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "say", help="speak a text in lv, en or ru into a WAV file (voice and headset check)"
    )
    p.add_argument(
        "--lang",
        choices=LANGUAGES,
        required=True,
        help="the language (and so the voice) to speak in",
    )
    p.add_argument("--out", required=True, help="the WAV file to write")
    p.add_argument(
        "--volume", type=int, default=None, help="volume 10-100 %% (default: [speech] volume)"
    )
    p.add_argument(
        "--rate", type=int, default=None, help="words per minute (default: [speech] rate)"
    )
    p.add_argument("text", nargs="+", help="what to say")
    p.set_defaults(func=run_say)


def run_say(args: argparse.Namespace) -> int:
    from kiosk.speech.wavcheck import measure  # lazy: fast `kiosk --help`

    section = load(args.config).speech
    engine = EspeakEngine(
        section.binary, {"lv": section.voice_lv, "en": section.voice_en, "ru": section.voice_ru}
    )
    utterance = Utterance(
        " ".join(args.text), args.lang, args.volume or section.volume, args.rate or section.rate
    )
    path = engine.render(utterance, Path(args.out))
    level = measure(path)
    print(
        f"{path}: {level.seconds:.2f} s, RMS {level.rms_dbfs:.1f} dBFS, voice {engine.voices[args.lang]}"
    )
    return 0
