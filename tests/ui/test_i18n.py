"""The gettext catalogs: every text the screens and receipts use is translated into Latvian and
Russian with the same placeholders; plural rules, dates and money follow local conventions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from kiosk.i18n import (
    LOCALE_DIR,
    CatalogError,
    _unquote,
    parse_date,
    parse_po,
    read_by_formats,
    translator,
)
from tests.ui.msgids import msgids_in_kv, msgids_in_python, placeholders

ROOT = Path(__file__).resolve().parents[2] / "kiosk"


def _used_msgids() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    # The patron-facing modules (technician screens may stay in English).
    patron_modules = ("patron.py", "texts.py", "widgets.py", "base.py")
    sources = [ROOT / "screens" / name for name in patron_modules]
    sources += [ROOT / "receipts.py", ROOT / "app.py"]
    msgids_in_python(sources, found)
    for path in (
        ROOT / "screens" / "patron.kv",
        ROOT / "screens" / "patron_screens.kv",
        ROOT / "screens" / "widgets.kv",
    ):
        msgids_in_kv(path.read_text(encoding="utf-8"), found)
    return found


@pytest.mark.parametrize("language", ["lv", "ru", "en"])
def test_every_used_text_is_translated_with_its_placeholders(language: str) -> None:
    used = _used_msgids()
    assert len(used) > 100  # the extractor sees the screens
    messages, _header = parse_po(
        (LOCALE_DIR / language / "LC_MESSAGES" / "kiosk.po").read_text(encoding="utf-8")
    )
    missing = [m for m in used if not messages.get(m)]
    assert not missing, f"{language}: untranslated {missing[:5]}"
    for msgid, plural in used.items():
        entry = messages[msgid]
        forms = entry if isinstance(entry, list) else [entry]
        if plural:
            assert isinstance(entry, list), msgid
            assert len(entry) >= 2, msgid
        for form in forms:
            assert placeholders(form) == placeholders(msgid), f"{language}: {msgid!r} -> {form!r}"


def test_latvian_and_russian_plurals() -> None:
    lv, ru = translator("lv"), translator("ru")
    forms = ("{n} item borrowed", "{n} items borrowed")
    assert [lv.ngettext(*forms, n).format(n=n) for n in (1, 2, 11, 21, 0)] == [
        "1 izdevums izsniegts",
        "2 izdevumi izsniegti",
        "11 izdevumi izsniegti",
        "21 izdevums izsniegts",
        "0 izdevumu izsniegts",
    ]
    assert [ru.ngettext(*forms, n).format(n=n) for n in (1, 3, 5, 22)] == [
        "1 издание выдано",
        "3 издания выдано",
        "5 изданий выдано",
        "22 издания выдано",
    ]


def _read_by_strptime(text: str) -> object:
    """A date's text read by trying each of the kiosk's formats with strptime, in order."""
    text = text.strip()
    return read_by_formats(text[:8] if len(text) == 18 and text[:8].isdigit() else text)


@example("20261216")
@example("20261301")  # no 13th month
@example("20260229")  # not a leap year
@example("20240229")
@example("00001216")  # no year 0
@example("20261216    235959")
@example("20261232    000000")
@example("\u0662\u0660\u0662\u0666\u0661\u0662\u0661\u0666")  # Arabic-Indic digits
@example("2026121")
@example("202612160")
@given(
    st.one_of(
        st.text(alphabet="0123456789", min_size=6, max_size=10),
        st.builds(
            lambda d, t: d + t,
            st.text("0123456789", min_size=8, max_size=8),
            st.text("0123456789 Z", min_size=10, max_size=10),
        ),
        st.dates().map(lambda d: d.strftime("%Y%m%d")),
        st.dates().map(lambda d: d.strftime("%d.%m.%Y")),
        st.text(max_size=20),
    )
)
def test_a_due_date_is_read_as_strptime_reads_it(text: str) -> None:
    """The eight-digit form is read without strptime (the most common, and it was tried last);
    whatever the digits, the day read is strptime's, or none where strptime finds none."""
    assert parse_date(text) == _read_by_strptime(text)
    assert parse_date(text) == _read_by_strptime(text)  # again, from the cache


def test_dates_and_money_in_local_form() -> None:
    lv, en = translator("lv"), translator("en")
    assert lv.format_date("20261216    235959") == "16.12.2026"
    assert lv.format_date("2026-12-16") == "16.12.2026"
    assert lv.format_date("next Tuesday") == "next Tuesday"  # verbatim when not a date
    assert parse_date("garbage") is None
    assert lv.format_money("3.5") == "3,50 €"
    assert lv.format_money("3.5", symbol=False) == "3,50 EUR"
    assert en.format_money("3.5") == "€3.50"


def test_malformed_catalog_is_a_catalog_error() -> None:
    with pytest.raises(CatalogError, match="not a .po line"):
        parse_po('msgid "a"\nmsgstr "b"\nbogus line\n')
    with pytest.raises(CatalogError, match="quoted string"):
        parse_po('msgid "a"b"\nmsgstr "b"\n')


def test_fuzzy_entries_are_not_used() -> None:
    messages, _ = parse_po(
        '#, fuzzy\nmsgid "Cancel"\nmsgstr "Atsaukt"\n\nmsgid "Done"\nmsgstr "Gatavs"\n'
    )
    assert messages == {"Done": "Gatavs"}


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # literal_eval on a stray escape
@given(
    st.text(
        # A line of a catalog read as UTF-8: no line breaks, no lone surrogates.
        alphabet=st.characters(blacklist_categories=("Zl", "Zp", "Cc", "Cs"))
        | st.sampled_from('"\\\0\t')
    )
)
@example("Line\\none")  # an escape
@example('a "quoted" word')  # adjacent literals
@example("nul\0")
def test_a_catalog_string_reads_as_the_python_literal_it_is(text: str) -> None:
    # The quick read of a plain quoted string must give what the literal's full parse gives.
    chunk = f'"{text}"'
    try:
        expected: str | None = ast.literal_eval(chunk)
    except (ValueError, SyntaxError):
        expected = None
    if not isinstance(expected, str):
        with pytest.raises(CatalogError):
            _unquote(chunk, Path("<test>"), 1)
    else:
        assert _unquote(chunk, Path("<test>"), 1) == expected
