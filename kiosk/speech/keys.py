"""Key names a site may use in `[keypad]`, with the key codes Kivy reports for them.

A USB numeric keypad or an EZ Access keypad presents itself as a keyboard, so a map from
actions to key names is all the configuration it needs. The names are Kivy's own
(`kivy.core.window.Keyboard.keycodes`), kept here so the configuration can be checked
without opening a window.
"""

from __future__ import annotations

import string

KEYCODES: dict[str, int] = {
    "backspace": 8,
    "tab": 9,
    "enter": 13,
    "escape": 27,
    "spacebar": 32,
    "delete": 127,
    "up": 273,
    "down": 274,
    "right": 275,
    "left": 276,
    "insert": 277,
    "home": 278,
    "end": 279,
    "pageup": 280,
    "pagedown": 281,
    "numpaddecimal": 266,
    "numpaddivide": 267,
    "numpadmul": 268,
    "numpadsubstract": 269,
    "numpadadd": 270,
    "numpadenter": 271,
    **{f"numpad{d}": 256 + d for d in range(10)},
    **{f"f{n}": 281 + n for n in range(1, 16)},
    **{c: ord(c) for c in string.ascii_lowercase + string.digits},
}

# The digit a keypad key types, for entering a PIN or a card number. Only the numeric keypad's
# digits: barcode scanners type through the main row, and their scans must reach the scanner
# input untouched.
DIGIT_KEYS: dict[int, str] = {256 + d: str(d) for d in range(10)}

ACTIONS = (
    "up",
    "down",
    "enter",
    "back",
    "help",
    "speech",
    "repeat",
    "louder",
    "quieter",
    "faster",
    "slower",
    "erase",
)


def unknown_keys(names: tuple[str, ...]) -> list[str]:
    return [n for n in names if n not in KEYCODES]
