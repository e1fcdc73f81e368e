"""The catalogs keep to the glossary of their language (docs/glossary-<lang>.md): the words a
patron reads for desk, return, borrow, renew, hold, fee... are the glossary's, everywhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"


def glossary(lang: str) -> list[tuple[str, list[str], list[str]]]:
    rows = []
    for line in (DOCS / f"glossary-{lang}.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or cells[0] in ("Concept", "") or set(cells[0]) <= {"-"}:
            continue
        split = lambda cell: [w.strip().lower() for w in cell.split(",") if w.strip()]  # noqa: E731
        rows.append((cells[0], split(cells[1]), split(cells[2])))
    return rows


PATRON_SOURCES = ("screens/patron.py", "screens/texts.py", "receipts.py", "app.py")


def patron_texts(lang: str) -> list[str]:
    """What patrons read in `lang`: the patron screens' and receipts' texts from the catalog (the
    technician's screens have their own words), and the book drop's texts."""
    from kiosk.i18n import translator
    from kiosk.screens.bookdrop import REASONS, TEXTS
    from tests.ui.msgids import msgids_in_kv, msgids_in_python

    package = Path(__file__).resolve().parents[2] / "kiosk"
    found: dict[str, str | None] = {}
    msgids_in_python(
        [package / name for name in PATRON_SOURCES if (package / name).exists()], found
    )
    for kv in ("patron.kv", "patron_screens.kv"):
        msgids_in_kv((package / "screens" / kv).read_text(encoding="utf-8"), found)
    t = translator(lang)
    texts = []
    for msgid, plural in found.items():
        texts += [t.ngettext(msgid, plural, n) for n in (1, 2, 5)] if plural else [t.gettext(msgid)]
    texts += [entry[lang] for entry in (*TEXTS.values(), *REASONS.values())]
    return [text for text in texts if text]


def at_word_start(word: str, text: str) -> bool:
    """`word` begins a word of `text` (glossary entries are word stems: "izsniegum" for its forms)."""
    return re.search(r"(?<!\w)" + re.escape(word), text) is not None


@pytest.mark.parametrize("lang", ["lv", "en", "ru"])
def test_the_catalog_uses_the_glossary(lang: str) -> None:
    rows = glossary(lang)
    assert len(rows) >= 8, (
        "the glossary names at least desk, return, borrow, loan, renew, hold, fee, card"
    )
    text = "\n".join(patron_texts(lang)).lower()
    unused = [concept for concept, use, _ in rows if not any(at_word_start(w, text) for w in use)]
    assert not unused, f"{lang}: glossary words never used: {unused}"
    found = {concept: [w for w in avoid if at_word_start(w, text)] for concept, _, avoid in rows}
    found = {k: v for k, v in found.items() if v}
    assert not found, f"{lang}: words the glossary rules out: {found}"


def test_the_check_catches_a_word_the_glossary_rules_out() -> None:
    rows = dict((c, avoid) for c, _, avoid in glossary("ru"))
    sample = "Пожалуйста, отнесите на абонемент".lower()
    assert any(at_word_start(w, sample) for w in rows["the staff counter (desk)"])
    assert not any(at_word_start(w, "продолжить") for w in rows["take an item home (borrow)"])
