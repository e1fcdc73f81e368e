"""The technician's maintenance screens and the book-drop screens: every text they show is translated
into Latvian and Russian with the same placeholders. The message ids are read from the screens'
source, so a text added there without a translation fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kiosk.i18n import LOCALE_DIR, parse_po, translator
from tests.ui.msgids import msgids_in_kv, msgids_in_python, placeholders

SCREENS = Path(__file__).resolve().parents[2] / "kiosk" / "screens"
MAINTENANCE_PY = ("screens/maintenance.py", "diagnostics.py")
MAINTENANCE_KV = ("maintenance.kv",)


def _used_msgids() -> dict[str, str | None]:
    """msgid -> plural msgid (None for a plain text) of every tr/_/ntr call with literal arguments."""
    found: dict[str, str | None] = {}
    msgids_in_python((SCREENS.parent / name for name in MAINTENANCE_PY), found)
    for name in MAINTENANCE_KV:
        kv = (SCREENS / name).read_text(encoding="utf-8")
        msgids_in_kv(kv, found)
        # ReasonButton shows `app.tr(self.reason)`: its reasons are message ids too.
        for match in re.finditer(r"^\s*reason: '((?:[^'\\]|\\.)+)'", kv, re.MULTILINE):
            found.setdefault(match.group(1), None)
    return found


def _catalog(language: str) -> dict[str, str | list[str]]:
    messages, _header = parse_po(
        (LOCALE_DIR / language / "LC_MESSAGES" / "kiosk.po").read_text(encoding="utf-8")
    )
    return messages


def test_the_extractor_sees_the_screens() -> None:
    used = _used_msgids()
    assert len(used) > 90
    # One of each kind: a kv text, a reason button, a plural, a diagnostics text and a status row name.
    assert {
        "Device status",
        "Printer repair",
        "Reader repair",
        "{where}: OFFLINE{since}: {error}",
        "card reader",
    } <= set(used)
    assert used["Wrong PIN. {n} attempt left."] == "Wrong PIN. {n} attempts left."


@pytest.mark.parametrize("language", ["lv", "ru", "en"])
def test_every_maintenance_text_is_translated_with_its_placeholders(language: str) -> None:
    used = _used_msgids()
    messages = _catalog(language)
    missing = [m for m in used if not messages.get(m)]
    assert not missing, f"{language}: untranslated {missing[:5]}"
    for msgid, plural in used.items():
        entry = messages[msgid]
        forms = entry if isinstance(entry, list) else [entry]
        if plural:
            assert isinstance(entry, list), msgid
            assert len(entry) == (2 if language == "en" else 3), msgid
        else:
            assert isinstance(entry, str), msgid
        for form in forms:
            assert placeholders(form) == placeholders(msgid), f"{language}: {msgid!r} -> {form!r}"
        if language != "en" and not plural:
            # A technician term left in English (codes such as SIP2, AFI or PIN aside) is a missed translation.
            assert entry != msgid or not re.search(
                r"[a-z]{3}", re.sub(r"\{\w+\}|SIP2|AFI|PIN", "", msgid)
            ), f"{language}: {msgid!r}"


def test_latvian_texts_use_latvian_letters_and_russian_cyrillic() -> None:
    used = [m for m, plural in _used_msgids().items() if not plural]
    lv, ru = _catalog("lv"), _catalog("ru")
    assert any(ch in "".join(str(lv[m]) for m in used) for ch in "āčēģīķļņšūž")
    for msgid in used:
        letters = re.sub(
            r"\{\w+\}|SIP2|AFI|PIN|RFID|SSH|kiosk admin set-pin|\[\w+\] url", "", str(ru[msgid])
        )
        assert not re.search(r"[A-Za-z]{2}", letters), f"ru: Latin letters left in {ru[msgid]!r}"


def test_login_attempts_in_three_plural_forms() -> None:
    lv, ru = translator("lv"), translator("ru")
    forms = ("Wrong PIN. {n} attempt left.", "Wrong PIN. {n} attempts left.")
    assert [lv.ngettext(*forms, n).format(n=n) for n in (1, 2, 0)] == [
        "Nepareizs PIN. Atlicis 1 mēģinājums.",
        "Nepareizs PIN. Atlikuši 2 mēģinājumi.",
        "Nepareizs PIN. Atlicis 0 mēģinājumu.",
    ]
    assert [ru.ngettext(*forms, n).format(n=n) for n in (1, 2, 5)] == [
        "Неверный PIN. Осталась 1 попытка.",
        "Неверный PIN. Осталось 2 попытки.",
        "Неверный PIN. Осталось 5 попыток.",
    ]


def test_the_two_readers_are_told_apart() -> None:
    lv, ru = translator("lv"), translator("ru")
    assert lv.gettext("reader") == "RFID lasītājs"
    assert lv.gettext("card reader") == "karšu lasītājs"
    assert ru.gettext("reader") != ru.gettext("card reader")


def test_book_drop_texts_in_every_language_with_their_placeholders() -> None:
    from kiosk.screens.bookdrop import REASONS, TEXTS

    # The book drop shows all languages at once, so its texts live in the module, not the catalogs.
    entries = {f"text {k}": v for k, v in TEXTS.items()} | {
        f"reason {k.name}": v for k, v in REASONS.items()
    }
    assert len(entries) > 16
    for key, entry in entries.items():
        assert {"lv", "en", "ru"} <= set(entry), key
        for language in ("lv", "ru"):
            assert entry[language], f"{key}: {language} is missing or English"
            assert entry[language] != entry["en"], f"{key}: {language} is missing or English"
            assert placeholders(entry[language]) == placeholders(entry["en"]), (
                f"{key}: {language} placeholders"
            )
        assert re.search(r"[А-Яа-яЁё]", entry["ru"]), key
