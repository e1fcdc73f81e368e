"""Numbers, counts, dates and money as spoken words, against phrases written out by hand."""

from __future__ import annotations

from datetime import date

import pytest

from kiosk.speech.phrasing import (
    Case,
    PhrasingError,
    cardinal,
    count,
    digits,
    due_phrase,
    money,
    plural_category,
    spoken_date,
)

COUNTS = (1, 2, 5, 11, 21, 22, 25)

# The books (feminine in lv and ru) and the kiosk's items (masculine lv "izdevums", neuter ru "издание").
BOOKS = {
    "en": [
        "one book",
        "two books",
        "five books",
        "eleven books",
        "twenty-one books",
        "twenty-two books",
        "twenty-five books",
    ],
    "lv": [
        "viena grāmata",
        "divas grāmatas",
        "piecas grāmatas",
        "vienpadsmit grāmatas",
        "divdesmit viena grāmata",
        "divdesmit divas grāmatas",
        "divdesmit piecas grāmatas",
    ],
    "ru": [
        "одна книга",
        "две книги",
        "пять книг",
        "одиннадцать книг",
        "двадцать одна книга",
        "двадцать две книги",
        "двадцать пять книг",
    ],
}
ITEMS = {
    "en": [
        "one item",
        "two items",
        "five items",
        "eleven items",
        "twenty-one items",
        "twenty-two items",
        "twenty-five items",
    ],
    "lv": [
        "viens izdevums",
        "divi izdevumi",
        "pieci izdevumi",
        "vienpadsmit izdevumi",
        "divdesmit viens izdevums",
        "divdesmit divi izdevumi",
        "divdesmit pieci izdevumi",
    ],
    "ru": [
        "одно издание",
        "два издания",
        "пять изданий",
        "одиннадцать изданий",
        "двадцать одно издание",
        "двадцать два издания",
        "двадцать пять изданий",
    ],
}
SECONDS = {
    "en": [
        "one second",
        "two seconds",
        "five seconds",
        "eleven seconds",
        "twenty-one seconds",
        "twenty-two seconds",
        "twenty-five seconds",
    ],
    "lv": [
        "viena sekunde",
        "divas sekundes",
        "piecas sekundes",
        "vienpadsmit sekundes",
        "divdesmit viena sekunde",
        "divdesmit divas sekundes",
        "divdesmit piecas sekundes",
    ],
    "ru": [
        "одна секунда",
        "две секунды",
        "пять секунд",
        "одиннадцать секунд",
        "двадцать одна секунда",
        "двадцать две секунды",
        "двадцать пять секунд",
    ],
}


@pytest.mark.parametrize("lang", ["en", "lv", "ru"])
@pytest.mark.parametrize(("noun", "table"), [("book", BOOKS), ("item", ITEMS), ("second", SECONDS)])
def test_counts_agree_with_their_noun(lang: str, noun: str, table: dict[str, list[str]]) -> None:
    assert [count(n, noun, lang) for n in COUNTS] == table[lang]


def test_plural_categories_follow_cldr() -> None:
    assert [plural_category("ru", n) for n in (1, 2, 5, 11, 12, 14, 21, 22, 25, 111, 0)] == [
        "one",
        "few",
        "many",
        "many",
        "many",
        "many",
        "one",
        "few",
        "many",
        "many",
        "many",
    ]
    assert [plural_category("lv", n) for n in (0, 1, 2, 10, 11, 19, 21, 22, 111)] == [
        "zero",
        "one",
        "other",
        "zero",
        "zero",
        "zero",
        "one",
        "other",
        "zero",
    ]
    assert [plural_category("en", n) for n in (0, 1, 2)] == ["other", "one", "other"]


def test_nothing_takes_the_genitive_plural() -> None:
    assert count(0, "book", "lv") == "nulle grāmatu"
    assert count(0, "book", "ru") == "ноль книг"
    assert count(0, "book", "en") == "zero books"


def test_larger_cardinals() -> None:
    assert cardinal(1234, "en") == "one thousand two hundred and thirty-four"
    assert cardinal(1234, "lv") == "tūkstotis divi simti trīsdesmit četri"
    assert cardinal(1234, "ru") == "одна тысяча двести тридцать четыре"
    assert cardinal(2022, "ru") == "две тысячи двадцать два"
    assert cardinal(5000, "ru") == "пять тысяч"
    assert cardinal(21000, "lv") == "divdesmit viens tūkstotis"
    assert cardinal(101, "en") == "one hundred and one"
    with pytest.raises(PhrasingError):
        cardinal(1_000_000, "en")
    with pytest.raises(PhrasingError):
        cardinal(1, "de")


DEC28 = date(2026, 12, 28)
THIS_YEAR = date(2026, 12, 7)


def test_dates_in_this_year_without_the_year() -> None:
    assert spoken_date(DEC28, "en", today=THIS_YEAR) == "the twenty-eighth of December"
    assert spoken_date(DEC28, "lv", today=THIS_YEAR) == "divdesmit astotais decembris"
    assert spoken_date(DEC28, "ru", today=THIS_YEAR) == "двадцать восьмое декабря"


def test_dates_in_the_case_their_preposition_needs() -> None:
    assert due_phrase(DEC28, "en", today=THIS_YEAR) == "due the twenty-eighth of December"
    assert due_phrase(DEC28, "lv", today=THIS_YEAR) == "jānodod līdz divdesmit astotajam decembrim"
    assert due_phrase(DEC28, "ru", today=THIS_YEAR) == "вернуть до двадцать восьмого декабря"
    assert spoken_date(date(2026, 3, 3), "ru", Case.GENITIVE, today=THIS_YEAR) == "третьего марта"
    assert spoken_date(date(2026, 3, 3), "ru", today=THIS_YEAR) == "третье марта"
    assert spoken_date(date(2026, 1, 1), "lv", Case.DATIVE, today=THIS_YEAR) == "pirmajam janvārim"
    assert spoken_date(date(2026, 5, 21), "lv", today=THIS_YEAR) == "divdesmit pirmais maijs"
    assert (
        spoken_date(date(2026, 4, 30), "ru", Case.GENITIVE, today=THIS_YEAR) == "тридцатого апреля"
    )
    assert spoken_date(date(2026, 8, 12), "en", today=THIS_YEAR) == "the twelfth of August"
    assert (
        spoken_date(date(2026, 6, 20), "lv", Case.DATIVE, today=THIS_YEAR)
        == "divdesmitajam jūnijam"
    )


def test_dates_in_another_year_name_it() -> None:
    jan4 = date(2027, 1, 4)
    assert spoken_date(jan4, "en", today=THIS_YEAR) == "the fourth of January twenty twenty-seven"
    assert (
        spoken_date(jan4, "lv", today=THIS_YEAR)
        == "divi tūkstoši divdesmit septītā gada ceturtais janvāris"
    )
    assert (
        due_phrase(jan4, "lv", today=THIS_YEAR)
        == "jānodod līdz divi tūkstoši divdesmit septītā gada ceturtajam janvārim"
    )
    assert (
        due_phrase(jan4, "ru", today=THIS_YEAR)
        == "вернуть до четвёртого января две тысячи двадцать седьмого года"
    )


def test_money() -> None:
    assert money("3.50", "en") == "three euros and fifty cents"
    assert money("3.50", "lv") == "trīs eiro un piecdesmit centi"
    assert money("3.50", "ru") == "три евро пятьдесят центов"
    assert money("1.01", "en") == "one euro and one cent"
    assert money("1.01", "lv") == "viens eiro un viens cents"
    assert money("1.01", "ru") == "один евро один цент"
    assert money("0,22", "ru") == "двадцать два цента"
    assert money("21.00", "lv") == "divdesmit viens eiro"
    assert money("0", "en") == "zero euros"
    assert money("2.5", "en", "USD") == "two USD and fifty"
    with pytest.raises(PhrasingError):
        money("lots", "en")


def test_digits_one_by_one() -> None:
    assert digits("4 5-0", "en") == "four five zero"
    assert digits("21", "ru") == "два один"
