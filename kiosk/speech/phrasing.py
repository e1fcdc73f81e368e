"""Numbers, counts, dates and money as words in Latvian, English and Russian, ready to be spoken.

A speech engine reads digits without context: espeak-ng says "двенадцать декабря" for
"12 декабря" where Russian needs "двенадцатого", and cannot know that "21" before a feminine
noun is "двадцать одна" / "divdesmit viena". So the kiosk writes these words itself: cardinals
with gender, the plural form a count takes (Unicode CLDR categories), ordinal dates in the case
the phrase needs, and amounts of money in units and cents.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

LANGUAGES = ("lv", "en", "ru")


class Gender(enum.Enum):
    MASCULINE = "m"
    FEMININE = "f"
    NEUTER = "n"


class Case(enum.Enum):
    """The grammatical case a date is spoken in: standalone, after "до" (ru), after "līdz" (lv)."""

    NOMINATIVE = "nom"
    GENITIVE = "gen"
    DATIVE = "dat"


@dataclass(frozen=True)
class Noun:
    """A counted noun in one language: forms for one, few, many (ru) / one, other, zero (lv)."""

    one: str
    few: str
    many: str
    gender: Gender = Gender.MASCULINE


# -- English -------------------------------------------------------------------------------------

_EN_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_EN_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_EN_ORD_ONES = (
    "zeroth first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth "
    "thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth"
).split()
_EN_ORD_TENS = (
    "",
    "",
    "twentieth",
    "thirtieth",
    "fortieth",
    "fiftieth",
    "sixtieth",
    "seventieth",
    "eightieth",
    "ninetieth",
)
_EN_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def _en_below_1000(n: int) -> str:
    hundreds, rest = divmod(n, 100)
    parts = []
    if hundreds:
        parts.append(f"{_EN_ONES[hundreds]} hundred")
    if rest or not hundreds:
        if rest < 20:
            words = _EN_ONES[rest]
        else:
            tens, ones = divmod(rest, 10)
            words = _EN_TENS[tens] + (f"-{_EN_ONES[ones]}" if ones else "")
        parts.append(("and " if hundreds else "") + words)
    return " ".join(parts)


def _en_cardinal(n: int) -> str:
    thousands, rest = divmod(n, 1000)
    if not thousands:
        return _en_below_1000(rest)
    head = f"{_en_below_1000(thousands)} thousand"
    if not rest:
        return head
    return f"{head} {'and ' if rest < 100 else ''}{_en_below_1000(rest)}"


def _en_ordinal(n: int) -> str:
    if n < 20:
        return _EN_ORD_ONES[n]
    tens, ones = divmod(n, 10)
    if not ones:
        return _EN_ORD_TENS[tens]
    return f"{_EN_TENS[tens]}-{_EN_ORD_ONES[ones]}"


def _en_year(year: int) -> str:
    century, rest = divmod(year, 100)
    if 10 <= rest and 11 <= century <= 20:  # 2027 -> twenty twenty-seven
        return f"{_en_cardinal(century)} {_en_cardinal(rest)}"
    return _en_cardinal(year)


# -- Russian -------------------------------------------------------------------------------------

_RU_ONES = (
    "ноль один два три четыре пять шесть семь восемь девять десять одиннадцать двенадцать тринадцать "
    "четырнадцать пятнадцать шестнадцать семнадцать восемнадцать девятнадцать"
).split()
_RU_TENS = (
    "",
    "",
    "двадцать",
    "тридцать",
    "сорок",
    "пятьдесят",
    "шестьдесят",
    "семьдесят",
    "восемьдесят",
    "девяносто",
)
_RU_HUNDREDS = (
    "",
    "сто",
    "двести",
    "триста",
    "четыреста",
    "пятьсот",
    "шестьсот",
    "семьсот",
    "восемьсот",
    "девятьсот",
)
_RU_GENDERED = {
    1: {Gender.MASCULINE: "один", Gender.FEMININE: "одна", Gender.NEUTER: "одно"},
    2: {Gender.MASCULINE: "два", Gender.FEMININE: "две", Gender.NEUTER: "два"},
}
# Ordinal stems (1-19, then tens); the ending follows the case. "третий" has its own forms.
_RU_ORD_STEMS = (
    "",
    "перв",
    "втор",
    "треть",
    "четвёрт",
    "пят",
    "шест",
    "седьм",
    "восьм",
    "девят",
    "десят",
    "одиннадцат",
    "двенадцат",
    "тринадцат",
    "четырнадцат",
    "пятнадцат",
    "шестнадцат",
    "семнадцат",
    "восемнадцат",
    "девятнадцат",
)
_RU_ORD_TEN_STEMS = (
    "",
    "",
    "двадцат",
    "тридцат",
    "сороков",
    "пятидесят",
    "шестидесят",
    "семидесят",
    "восьмидесят",
    "девяност",
)
_RU_MONTHS_GEN = (
    "января",
    "февраля",
    "марта",
    "апреля",
    "мая",
    "июня",
    "июля",
    "августа",
    "сентября",
    "октября",
    "ноября",
    "декабря",
)
_RU_THOUSAND = Noun("тысяча", "тысячи", "тысяч", Gender.FEMININE)


def _ru_below_1000(n: int, gender: Gender) -> str:
    hundreds, rest = divmod(n, 100)
    parts = [_RU_HUNDREDS[hundreds]] if hundreds else []
    if rest >= 20:
        tens, rest = divmod(rest, 10)
        parts.append(_RU_TENS[tens])
    if rest or not parts:
        parts.append(_RU_GENDERED[rest][gender] if rest in _RU_GENDERED else _RU_ONES[rest])
    return " ".join(parts)


def _ru_cardinal(n: int, gender: Gender = Gender.MASCULINE) -> str:
    thousands, rest = divmod(n, 1000)
    if not thousands:
        return _ru_below_1000(rest, gender)
    head = f"{_ru_below_1000(thousands, Gender.FEMININE)} {_pick('ru', thousands, _RU_THOUSAND)}"
    return head if not rest else f"{head} {_ru_below_1000(rest, gender)}"


def _ru_ordinal(n: int, case: Case) -> str:
    """An ordinal 1-99 in the neuter (nominative "двадцать восьмое") or genitive ("двадцать восьмого")."""
    tens, ones = divmod(n, 10)
    if n < 20:
        stem, prefix = _RU_ORD_STEMS[n], ""
    elif ones:
        stem, prefix = _RU_ORD_STEMS[ones], _RU_TENS[tens] + " "
    else:
        stem, prefix = _RU_ORD_TEN_STEMS[tens], ""
    if stem == "треть":
        ending = "е" if case is Case.NOMINATIVE else "его"
    else:
        ending = "ое" if case is Case.NOMINATIVE else "ого"
    return prefix + stem + ending


def _ru_year_genitive(year: int) -> str:
    """2027 -> "две тысячи двадцать седьмого" (followed by "года")."""
    thousands, rest = divmod(year, 1000)
    if rest and rest < 100:
        return (
            f"{_ru_cardinal(thousands * 1000, Gender.FEMININE)} {_ru_ordinal(rest, Case.GENITIVE)}"
        )
    return _ru_cardinal(year)


# -- Latvian -------------------------------------------------------------------------------------

_LV_ONES_M = (
    "nulle",
    "viens",
    "divi",
    "trīs",
    "četri",
    "pieci",
    "seši",
    "septiņi",
    "astoņi",
    "deviņi",
)
_LV_ONES_F = (
    "nulle",
    "viena",
    "divas",
    "trīs",
    "četras",
    "piecas",
    "sešas",
    "septiņas",
    "astoņas",
    "deviņas",
)
_LV_TEENS = (
    "desmit",
    "vienpadsmit",
    "divpadsmit",
    "trīspadsmit",
    "četrpadsmit",
    "piecpadsmit",
    "sešpadsmit",
    "septiņpadsmit",
    "astoņpadsmit",
    "deviņpadsmit",
)
_LV_TENS = (
    "",
    "",
    "divdesmit",
    "trīsdesmit",
    "četrdesmit",
    "piecdesmit",
    "sešdesmit",
    "septiņdesmit",
    "astoņdesmit",
    "deviņdesmit",
)
_LV_ORD_STEMS = ("", "pirm", "otr", "treš", "ceturt", "piekt", "sest", "septīt", "astot", "devīt")
_LV_ORD_ENDINGS = {Case.NOMINATIVE: "ais", Case.GENITIVE: "ā", Case.DATIVE: "ajam"}
_LV_MONTHS = {
    Case.NOMINATIVE: (
        "janvāris",
        "februāris",
        "marts",
        "aprīlis",
        "maijs",
        "jūnijs",
        "jūlijs",
        "augusts",
        "septembris",
        "oktobris",
        "novembris",
        "decembris",
    ),
    Case.DATIVE: (
        "janvārim",
        "februārim",
        "martam",
        "aprīlim",
        "maijam",
        "jūnijam",
        "jūlijam",
        "augustam",
        "septembrim",
        "oktobrim",
        "novembrim",
        "decembrim",
    ),
}
_LV_HUNDRED = Noun("simts", "simti", "simtu")
_LV_THOUSAND = Noun("tūkstotis", "tūkstoši", "tūkstošu")


def _lv_below_1000(n: int, gender: Gender) -> str:
    ones_words = _LV_ONES_F if gender is Gender.FEMININE else _LV_ONES_M
    hundreds, rest = divmod(n, 100)
    parts = []
    if hundreds:
        parts.append("simts" if hundreds == 1 else f"{_LV_ONES_M[hundreds]} simti")
    if 10 <= rest < 20:
        parts.append(_LV_TEENS[rest - 10])
    else:
        tens, ones = divmod(rest, 10)
        if tens:
            parts.append(_LV_TENS[tens])
        if ones or not parts:
            parts.append(ones_words[ones])
    return " ".join(parts)


def _lv_cardinal(n: int, gender: Gender = Gender.MASCULINE) -> str:
    thousands, rest = divmod(n, 1000)
    if not thousands:
        return _lv_below_1000(rest, gender)
    head = (
        "tūkstotis"
        if thousands == 1
        else f"{_lv_below_1000(thousands, Gender.MASCULINE)} {_pick('lv', thousands, _LV_THOUSAND)}"
    )
    return head if not rest else f"{head} {_lv_below_1000(rest, gender)}"


def _lv_ordinal(n: int, case: Case) -> str:
    """An ordinal 1-99, masculine, in the case asked: "divdesmit astotais", "-ajam", "-ā"."""
    ending = _LV_ORD_ENDINGS[case]
    tens, ones = divmod(n, 10)
    if n < 10:
        return _LV_ORD_STEMS[n] + ending
    if n < 20:
        return _LV_TEENS[n - 10] + ending
    if not ones:
        return _LV_TENS[tens] + ending
    return f"{_LV_TENS[tens]} {_LV_ORD_STEMS[ones]}{ending}"


def _lv_year_genitive(year: int) -> str:
    """2027 -> "divi tūkstoši divdesmit septītā" (followed by "gada")."""
    thousands, rest = divmod(year, 1000)
    if rest and rest < 100:
        return f"{_lv_cardinal(thousands * 1000)} {_lv_ordinal(rest, Case.GENITIVE)}"
    return _lv_cardinal(year)


# -- public --------------------------------------------------------------------------------------


class PhrasingError(ValueError):
    """A number or language outside what the kiosk speaks."""


def _check(lang: str, n: int) -> None:
    if lang not in LANGUAGES:
        raise PhrasingError(
            f"no phrasing for language {lang!r} (expected one of {', '.join(LANGUAGES)})"
        )
    if not 0 <= n < 1_000_000:
        raise PhrasingError(f"cannot speak {n} (expected 0-999999)")


def plural_category(lang: str, n: int) -> str:
    """The CLDR plural category of a count: one / few / many (ru), zero / one / other (lv), one / other (en)."""
    if lang == "ru":
        if n % 10 == 1 and n % 100 != 11:
            return "one"
        if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
            return "few"
        return "many"
    if lang == "lv":
        if n % 10 == 0 or 11 <= n % 100 <= 19:
            return "zero"
        if n % 10 == 1 and n % 100 != 11:
            return "one"
        return "other"
    return "one" if n == 1 else "other"


def _pick(lang: str, n: int, noun: Noun) -> str:
    category = plural_category(lang, n)
    if category == "one":
        return noun.one
    if lang == "lv" and n == 0:
        return noun.many  # "nav grāmatu": the genitive after nothing
    if lang == "ru" and category == "many":
        return noun.many
    return noun.few


def cardinal(n: int, lang: str, gender: Gender = Gender.MASCULINE) -> str:
    """A whole number 0-999999 in words, agreeing in gender where the language asks (1, 2 in ru; 1-9 in lv)."""
    _check(lang, n)
    if lang == "en":
        return _en_cardinal(n)
    if lang == "ru":
        return _ru_cardinal(n, gender)
    return _lv_cardinal(n, gender)


# The nouns the kiosk counts, per language. lv: one / plural / genitive plural.
NOUNS: dict[str, dict[str, Noun]] = {
    "item": {
        "en": Noun("item", "items", "items"),
        "lv": Noun("izdevums", "izdevumi", "izdevumu"),
        "ru": Noun("издание", "издания", "изданий", Gender.NEUTER),
    },
    "book": {
        "en": Noun("book", "books", "books"),
        "lv": Noun("grāmata", "grāmatas", "grāmatu", Gender.FEMININE),
        "ru": Noun("книга", "книги", "книг", Gender.FEMININE),
    },
    "second": {
        "en": Noun("second", "seconds", "seconds"),
        "lv": Noun("sekunde", "sekundes", "sekunžu", Gender.FEMININE),
        "ru": Noun("секунда", "секунды", "секунд", Gender.FEMININE),
    },
    "euro": {
        "en": Noun("euro", "euros", "euros"),
        "lv": Noun("eiro", "eiro", "eiro"),
        "ru": Noun("евро", "евро", "евро"),
    },
    "cent": {
        "en": Noun("cent", "cents", "cents"),
        "lv": Noun("cents", "centi", "centu"),
        "ru": Noun("цент", "цента", "центов"),
    },
    "renewal": {
        "en": Noun("renewal", "renewals", "renewals"),
        "lv": Noun("pagarinājums", "pagarinājumi", "pagarinājumu"),
        "ru": Noun("продление", "продления", "продлений", Gender.NEUTER),
    },
}


def count(n: int, noun: str, lang: str) -> str:
    """A count with its noun in the agreeing form: "twenty-one books", "divdesmit viena grāmata", "двадцать одна книга"."""
    _check(lang, n)
    try:
        word = NOUNS[noun][lang]
    except KeyError:
        raise PhrasingError(f"no noun {noun!r} (expected one of {', '.join(NOUNS)})") from None
    return f"{cardinal(n, lang, word.gender)} {_pick(lang, n, word)}"


def spoken_date(
    value: date, lang: str, case: Case = Case.NOMINATIVE, *, today: date | None = None
) -> str:
    """A date as words with an ordinal day; the year only when it is not `today`'s.

    en: "the twenty-eighth of December"; lv nominative "divdesmit astotais decembris", dative
    (after "līdz") "divdesmit astotajam decembrim"; ru nominative "двадцать восьмое декабря",
    genitive (after "до") "двадцать восьмого декабря".
    """
    _check(lang, value.day)
    with_year = today is None or today.year != value.year
    if lang == "en":
        text = f"the {_en_ordinal(value.day)} of {_EN_MONTHS[value.month - 1]}"
        return f"{text} {_en_year(value.year)}" if with_year else text
    if lang == "ru":
        text = f"{_ru_ordinal(value.day, Case.NOMINATIVE if case is Case.NOMINATIVE else Case.GENITIVE)} {_RU_MONTHS_GEN[value.month - 1]}"
        return f"{text} {_ru_year_genitive(value.year)} года" if with_year else text
    lv_case = Case.DATIVE if case is Case.DATIVE else Case.NOMINATIVE
    text = f"{_lv_ordinal(value.day, lv_case)} {_LV_MONTHS[lv_case][value.month - 1]}"
    return f"{_lv_year_genitive(value.year)} gada {text}" if with_year else text


def due_phrase(value: date, lang: str, *, today: date | None = None) -> str:
    """When a loan is due: "due the twenty-eighth of December", "līdz ... decembrim", "до ... декабря"."""
    if lang == "en":
        return "due " + spoken_date(value, lang, today=today)
    if lang == "ru":
        return "вернуть до " + spoken_date(value, lang, Case.GENITIVE, today=today)
    return "jānodod līdz " + spoken_date(value, lang, Case.DATIVE, today=today)


def money(amount: str | Decimal, lang: str, currency: str = "EUR") -> str:
    """An amount in units and cents: "three euros and fifty cents", "trīs eiro un piecdesmit centi", "три евро пятьдесят центов".

    Other currencies than the euro keep their ISO code after the units.
    """
    try:
        value = Decimal(str(amount).strip().replace(",", ".")).quantize(Decimal("0.01"))
    except InvalidOperation:
        raise PhrasingError(f"not an amount of money: {amount!r}") from None
    negative = value < 0
    units, cents = divmod(int(abs(value) * 100), 100)
    _check(lang, units)
    is_euro = currency.upper() == "EUR"
    parts = []
    if units or not cents:
        parts.append(
            count(units, "euro", lang) if is_euro else f"{cardinal(units, lang)} {currency.upper()}"
        )
    if cents:
        parts.append(count(cents, "cent", lang) if is_euro else cardinal(cents, lang))
    joiner = {"en": " and ", "lv": " un ", "ru": " "}[lang]
    text = joiner.join(parts)
    if negative:
        text = {"en": "minus ", "lv": "mīnus ", "ru": "минус "}[lang] + text
    return text


def digits(text: str, lang: str) -> str:
    """Each digit of `text` as its own word ("4 5" -> "four five"); other characters are dropped."""
    return " ".join(cardinal(int(c), lang) for c in text if c.isdigit())
