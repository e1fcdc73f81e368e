"""Receipts per printer family and language, read back as that printer would print them.

For each family (Epson TM-T88V and TM-T88IV, a generic 58 mm printer, Bixolon, Citizen, Star
in ESC/POS emulation) and each language, the receipt is encoded with the kiosk's settings for
that printer and then:
- text: decoded through the printer family's own table numbering (kiosk/devices/printer_tables.toml,
  not the encoder's tables) and compared line by line with the intended receipt;
- raster: the printed image is cut into its lines and each compared pixel for pixel with the
  intended line drawn on its own with the same font (no OCR).
"""

from __future__ import annotations

from datetime import datetime

import pytest
from PIL import Image, ImageDraw, ImageFont

from kiosk.core.domain import Fee, Refusal, Routing
from kiosk.core.receipt import ReceiptLine, checkout_receipt, hold_slip
from kiosk.devices.escpos_transcript import Transcript, decode
from kiosk.devices.printer import (
    LATVIAN_ALPHABET,
    RUSSIAN_ALPHABET,
    PrintDocument,
    PrintLine,
    RasterFont,
    encode_document,
    font_path,
    make_test_page,
    open_printer,
    printer_setup,
    uses_raster,
)
from kiosk.devices.printer_models import model_names
from kiosk.screens.receipts import RenderingPrinter, render_receipt

WHEN = datetime(2026, 11, 25, 14, 30)
ITEMS = (
    ReceiptLine("30000002", "Dvēseļu putenis", due_date="20261216    235959"),
    ReceiptLine("30000010", "Война и мир", due_date="20261216    235959", offline=True),
    ReceiptLine("30000011", "Šķūnis un žagata", due_date="20261230    235959", renewal=True),
    ReceiptLine("30000006", "Mērnieku laiki", ok=False, refusal=Refusal.ON_HOLD_FOR_OTHER),
)
LIBRARY = "Ogres Centrālā bibliotēka"

# (profile, [printer] settings the docs give for it, what `auto` is expected to choose)
TEXT_BY_DEFAULT = {"TM-T88V", "TM-T88VI", "TM-T20II", "TM-T20III", "POS-5890"}
FAMILIES = [
    (name, {}, "text" if name in TEXT_BY_DEFAULT else "raster") for name in model_names()
] + [
    ("SRP-350III", {"codepage": "26=CP1257, 17=CP866", "render": "text"}, "text"),
    ("XP-N160II", {"codepage": "25=CP1257, 17=CP866", "render": "text"}, "text"),
]


def _receipt_document(language: str, columns: int) -> PrintDocument:
    receipt = checkout_receipt(
        LIBRARY,
        WHEN,
        "LV0001",
        language,
        ITEMS,
        fees=(Fee("Kavējuma nauda", "2.50"),),
        fee_total="2.50",
    )
    return render_receipt(receipt, width=columns)


def _text_lines(transcript: Transcript) -> list[str]:
    """The printed text lines before the first barcode, image or cut, without the feed before the cut."""
    out = []
    for line in transcript.lines:
        if line.marker:
            break
        out.append(line.text)
    while out and out[-1] == "":
        out.pop()
    return out


def _draw_alone(line: PrintLine, rf: RasterFont) -> Image.Image:
    """The intended line drawn by itself: the same font file and size, nothing else shared."""
    size = rf.size * (2 if line.large else 1)
    font = ImageFont.truetype(str(font_path(line.bold)), size)
    ascent, descent = ImageFont.truetype(str(font_path(False)), size).getmetrics()
    band = Image.new("1", (rf.dots, ascent + descent + (4 if line.large else 2)), 1)
    draw = ImageDraw.Draw(band)
    width = draw.textlength(line.text, font=font)
    x = {"left": 0, "center": (rf.dots - width) / 2, "right": rf.dots - width}[line.align]
    draw.text((max(0, int(x)), 0), line.text, font=font, fill=0)
    return band


def _assert_raster_equals(
    transcript: Transcript, lines: tuple[PrintLine, ...], rf: RasterFont
) -> None:
    (image,) = transcript.image_blocks()
    _assert_image_equals(image, lines, rf)


def _assert_image_equals(
    printed: Image.Image, lines: tuple[PrintLine, ...], rf: RasterFont
) -> None:
    assert printed.width <= rf.dots
    image = Image.new("1", (rf.dots, printed.height), 1)  # the paper beyond the printed width
    image.paste(printed, (0, 0))
    y = 0
    for line in lines:
        band = _draw_alone(line, rf)
        printed = image.crop((0, y, rf.dots, y + band.height))
        assert printed.tobytes() == band.tobytes(), (
            f"line {line.text!r} at row {y} does not print as intended"
        )
        y += band.height
    assert y == image.height


@pytest.mark.parametrize("language", ["lv", "ru", "en"])
@pytest.mark.parametrize(
    ("profile", "options", "expected"),
    FAMILIES,
    ids=[f"{p}-{o.get('render', 'auto')}" for p, o, _ in FAMILIES],
)
def test_receipt_prints_as_intended_on_each_family(
    profile: str, options: dict[str, str], expected: str, language: str
) -> None:
    setup = printer_setup(profile, **options)  # type: ignore[arg-type]
    document = _receipt_document(language, setup.columns)
    assert all(
        len(line.text) <= (setup.columns // 2 if line.large else setup.columns)
        for line in document.lines
    )
    assert ("raster" if uses_raster(document, setup) else "text") == expected
    transcript = decode(encode_document(document, setup), profile)
    if expected == "text":
        assert _text_lines(transcript) == [line.text for line in document.lines]
        assert not transcript.images
        assert not any(page.startswith("undefined") for page in transcript.code_pages)
    else:
        _assert_raster_equals(
            transcript, document.lines, RasterFont(setup.model.dots, setup.columns)
        )
    assert transcript.lines[-1].marker == "<cut>"
    text = document.text
    assert "Ogres Centrālā" in text and "Dvēseļu putenis" in text and "Война и мир" in text


def test_latvian_sections_keep_renewals_apart() -> None:
    document = _receipt_document("lv", 42)
    text = document.text
    assert "Izsniegtie izdevumi (2)" in text and "Pagarinātie izdevumi (1)" in text
    assert text.count("Šķūnis un žagata") == 1


def test_epson_numbering_on_a_bixolon_is_caught_by_the_transcript() -> None:
    """The mismatch the issue found: Epson's table numbers sent to a Bixolon print Hebrew."""
    document = _receipt_document("lv", 42)
    epson_numbers = printer_setup(
        "SRP-350III", render="text", codepage="33=CP775, 51=CP1257, 17=CP866"
    )
    transcript = decode(encode_document(document, epson_numbers), "SRP-350III")
    assert _text_lines(transcript) != [line.text for line in document.lines]
    assert "CP1257" not in transcript.code_pages and "CP775" not in transcript.code_pages
    assert "Ogres Centrālā bibliotēka" not in "\n".join(_text_lines(transcript))
    on_epson = decode(encode_document(document, printer_setup("TM-T88V", render="text")), "TM-T88V")
    assert _text_lines(on_epson) == [line.text for line in document.lines]


def test_tm_t88iv_text_mode_shows_missing_letters_visibly() -> None:
    """Forced text on a printer without a Baltic table: Russian prints, Latvian letters are marked."""
    document = PrintDocument((PrintLine("Dvēseļu putenis"), PrintLine("Война и мир")))
    transcript = decode(
        encode_document(document, printer_setup("TM-T88IV", render="text")), "TM-T88IV"
    )
    assert _text_lines(transcript) == ["Dv■se■u putenis", "Война и мир"]


def test_euro_comes_from_windows_tables_never_greek() -> None:
    document = PrintDocument((PrintLine("Kavējuma nauda 2,50 €"),))
    for profile in ("TM-T88V", "POS-5890"):
        data = encode_document(document, printer_setup(profile, render="text"))
        transcript = decode(data, profile)
        assert _text_lines(transcript) == ["Kavējuma nauda 2,50 €"]
        assert transcript.code_pages == ["CP1257"]
    # Greek only: the euro is not taken from ISO 8859-7 (its 1987 table has no euro at 0xA4).
    greek_only = printer_setup("TM-T88V", render="text", codepage="15=ISO_8859-7")
    assert b"\x1bt\x0f\xa4" not in encode_document(document, greek_only)


def test_cjk_and_emoji_are_substituted_per_character_keeping_latvian() -> None:
    document = PrintDocument((PrintLine("Rīga 東京 📚 Žēl"),))
    setup = printer_setup("TM-T88V")
    assert not uses_raster(document, setup)  # the image could not print 東京 either
    transcript = decode(encode_document(document, setup), "TM-T88V")
    assert _text_lines(transcript) == ["Rīga ■■ ■ Žēl"]


def test_columns_follow_the_profile_font_and_override(tmp_path) -> None:
    assert printer_setup("TM-T88V").columns == 42
    assert printer_setup("TM-T20III").columns == 48
    assert printer_setup("TM-T88V", font="B").columns == 56
    assert printer_setup("POS-5890").columns == 32
    assert printer_setup("TM-T20III", width=42).columns == 42
    # The staff printer's hold slip is wrapped to its own paper, not always 42 columns.
    staff = RenderingPrinter(open_printer(f"file:{tmp_path}", "POS-5890"))
    slip = hold_slip(
        LIBRARY,
        WHEN,
        "lv",
        "30000006",
        "Ļoti gara grāmatas nosaukuma rinda par Latviju",
        Routing(hold_patron_id="LV0004", destination="Pieaugušo nodaļa"),
    )
    staff.print_receipt(slip)
    (transcript,) = tmp_path.glob("*.txt")
    printed = transcript.read_text(encoding="utf-8").splitlines()
    assert max(len(line) for line in printed if not line.startswith("<")) <= 32
    assert any("Ļoti gara" in line for line in printed)


@pytest.mark.parametrize(
    "profile", ["TM-T88V", "TM-T88IV", "POS-5890", "SRP-350III", "CT-S310II", "Star-TSP650II"]
)
def test_test_page_prints_both_alphabets_both_ways(profile: str) -> None:
    setup = printer_setup(profile)
    page = make_test_page(LIBRARY, "T-1", WHEN, setup.columns)
    text_lines = "".join(line.text for line in page.lines if line.render == "text")
    raster_lines = [line for line in page.lines if line.render == "raster"]
    for alphabet in (
        LATVIAN_ALPHABET,
        LATVIAN_ALPHABET.lower(),
        RUSSIAN_ALPHABET,
        RUSSIAN_ALPHABET.lower(),
    ):
        assert alphabet in text_lines and alphabet in "".join(line.text for line in raster_lines)
    transcript = decode(encode_document(page, setup), profile)
    # The raster half, as one picture, line by line as intended.
    rf = RasterFont(setup.model.dots, setup.columns)
    _assert_image_equals(transcript.image_blocks()[-1], tuple(raster_lines), rf)
    if profile == "TM-T88V":
        printed = "".join(line.text for line in transcript.lines if not line.marker)
        assert LATVIAN_ALPHABET in printed and RUSSIAN_ALPHABET.lower() in printed
