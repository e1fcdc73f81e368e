"""The per-sink sanitisers, fed every byte value and generated text: nothing that is not a plain
character of the sink gets through, and every refused character leaves a visible mark."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.core.sanitize import (
    EMAIL_SUBSTITUTE,
    for_email,
    for_log,
    for_printer,
    for_sorter,
    is_plain_character,
)

EVERY_BYTE = [chr(b) for b in range(256)]
HIDDEN = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def _cp1257(ch: str) -> bool:
    try:
        return len(ch.encode("cp1257")) == 1 and ch.isprintable()
    except UnicodeEncodeError:
        return False


@pytest.mark.parametrize("ch", EVERY_BYTE, ids=[f"{b:02x}" for b in range(256)])
def test_every_byte_value_through_every_sink(ch: str) -> None:
    text = f"a{ch}b"
    printed = for_printer(text, _cp1257)
    assert len(printed) == 3 and printed[0] == "a" and printed[2] == "b"  # one mark per character
    assert all(_cp1257(c) or c == " " for c in printed)
    if not ch.isprintable():
        assert printed[1] in (" ", "¤")  # cp1257 has no ■: the next visible substitute
    mailed = for_email(text)
    assert all(unicodedata.category(c) not in HIDDEN for c in mailed)
    logged = for_log(text)
    assert all(c.isprintable() or c in " \n\t" for c in logged)
    if not (ch.isprintable() or ch in " \n\t"):
        assert logged != text and "\\" in logged  # the escape shows what was there
    sorted_ = for_sorter(text)
    assert all(is_plain_character(c) for c in sorted_) and len(sorted_) == 3


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_generated_text_keeps_plain_characters_and_marks_the_rest(text: str) -> None:
    printed = for_printer(text)
    assert all(is_plain_character(c) for c in printed)
    mailed = for_email(text)
    assert len(mailed) == len(text)  # one substitute per refused character, nothing dropped
    assert all(is_plain_character(c) for c in mailed)
    assert all(c.isprintable() or c in " \n\t" for c in for_log(text))
    sorter = for_sorter(text)
    assert len(sorter) == len(text) and all(is_plain_character(c) for c in sorter)


def test_printer_substitutes_visibly_and_keeps_what_it_can_print() -> None:
    covered = set("Grāmata Война") | set("■")
    assert for_printer("Grāmata\x1bp\x00", covered.__contains__) == "Grāmata■■■"
    assert for_printer("書 📚 Война", covered.__contains__) == "■ ■ Война"
    assert for_printer("ﬁ", set("fi").__contains__) == "fi"  # a ligature prints as its letters
    assert for_printer("a\u0304") == "ā"  # decomposed letters are composed first
    assert for_printer("tab\there\nline") == "tab here line"


def test_email_keeps_body_lines_but_never_a_header_break() -> None:
    assert for_email("Title\r\nBcc: x") == "Title  Bcc: x"
    assert for_email("one\ntwo", multiline=True) == "one\ntwo"
    assert for_email("evil\u202eeman") == f"evil{EMAIL_SUBSTITUTE}eman"


def test_log_escapes_terminal_controls() -> None:
    assert for_log("gone\x1b[2J\r") == "gone\\x1b[2J\\r"
    assert for_log("multi\nline") == "multi\nline"


def test_the_log_hook_escapes_controls_from_data() -> None:
    import logging

    from kiosk.logsetup import MaskingFilter

    record = logging.LogRecord(
        "kiosk", logging.INFO, __file__, 1, "title %s", ("Zaļā\x1b[2J\rx",), None
    )
    MaskingFilter().filter(record)
    assert record.getMessage() == "title Zaļā\\x1b[2J\\rx"
