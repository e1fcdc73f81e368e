"""The ESC/POS transcript decoder: code pages, styles, barcodes, images, cut, and bad input."""

from __future__ import annotations

import pytest
from escpos.printer import Dummy
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.devices.escpos_transcript import TranscriptError, decode, render_png, transcript_text
from kiosk.devices.printer import PrintDocument, PrintLine, encode_document


def _dummy() -> Dummy:
    return Dummy(profile="TM-T88V")


def test_latvian_and_cyrillic_survive_magic_encode() -> None:
    printer = _dummy()
    printer.textln("Grāmata: Dvēseļu putenis")
    printer.textln("Книга: Война и мир")
    transcript = decode(bytes(printer.output))
    assert transcript.text.splitlines()[:2] == ["Grāmata: Dvēseļu putenis", "Книга: Война и мир"]
    assert "CP775" in transcript.code_pages and "CP866" in transcript.code_pages


def test_pinned_cp1257_page_decodes_euro_and_latvian() -> None:
    printer = _dummy()
    printer.charcode("CP1257")
    printer.textln("Kavējuma nauda 2,50 €")
    transcript = decode(bytes(printer.output))
    assert transcript.text.splitlines()[0] == "Kavējuma nauda 2,50 €"
    assert transcript.code_pages[-1] == "CP1257"


def test_styles_alignment_barcode_and_cut_are_marked() -> None:
    doc = PrintDocument(
        (PrintLine("Demo bibliotēka", bold=True, large=True, align="center"), PrintLine("plain")),
        barcode="30000001",
    )
    text = transcript_text(encode_document(doc), width=42)
    lines = text.splitlines()
    assert lines[0].strip() == "^^**Demo bibliotēka**^^"
    assert lines[0].startswith(" ")  # centred within the paper width
    assert lines[1] == "plain"
    assert "<barcode 30000001>" in lines
    assert lines[-1] == "<cut>"


def test_raster_image_and_qr_are_skipped_by_length() -> None:
    data = b"\x1dv0\x00\x02\x00\x03\x00" + bytes(6) + b"after\n" + b"\x1d(k\x03\x001A\x00" + b"x\n"
    transcript = decode(data)
    assert [line.text for line in transcript.lines] == ["<image 16x3>", "after", "<qr>", "x"]


def test_truncated_command_is_a_transcript_error() -> None:
    with pytest.raises(TranscriptError, match="ends inside"):
        decode(b"abc\x1dv0\x00\x10\x00\x10\x00\x00")


def test_png_is_drawn(tmp_path) -> None:
    doc = PrintDocument((PrintLine("Война и мир", large=True), PrintLine("Sprīdītis")))
    path = render_png(encode_document(doc), tmp_path / "r.png")
    from PIL import Image

    with Image.open(path) as image:
        assert image.width == 512 + 20  # the TM-T88V's 512 dots and a margin
        assert image.getextrema()[0][0] == 0  # some black ink on the white paper


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_decode_or_raise_transcript_error(data: bytes) -> None:
    try:
        transcript = decode(data)
    except TranscriptError:
        return
    assert isinstance(transcript.text, str)


# -- decoding with the target printer's own numbering -------------------------------------------


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        ("TM-T88V", "Ā"),
        ("SRP-350III", "\u05d0"),
        ("XP-N160II", "\u0639"),
        ("CT-S310II", "<ESC t 33: no such table on CT-S310II>á"),
    ],
)
def test_table_33_means_what_the_printer_makes_of_it(profile: str, expected: str) -> None:
    """Epson's CP775 number: Hebrew on a Bixolon, Arabic on an Xprinter, nothing on a Citizen."""
    byte = {"TM-T88V": b"\xa0", "SRP-350III": b"\xe0", "XP-N160II": b"\xda", "CT-S310II": b"\xa0"}[
        profile
    ]
    transcript = decode(b"\x1bt\x21" + byte + b"\n", profile)
    assert transcript.lines[0].text == expected


def test_undefined_table_keeps_the_previous_one_and_is_listed() -> None:
    transcript = decode(b"\x1bt\x11\x80\x1bt\x21\x80\n", "TM-T88IV")  # CP866, then no table 33
    assert transcript.code_pages == ["CP866", "undefined 33"]
    assert transcript.lines[0].text == "А<ESC t 33: no such table on TM-T88IV>А"


def test_raster_blocks_are_images_not_text() -> None:
    doc = PrintDocument((PrintLine("Dvēseļu putenis"), PrintLine("Война и мир")))
    from kiosk.devices.printer import RasterFont, printer_setup

    transcript = decode(encode_document(doc, printer_setup("TM-T88IV")), "TM-T88IV")
    height = RasterFont(512, 42).line_height()
    images = [line.text for line in transcript.lines if line.marker.startswith("<image")]
    assert len(images) == 2 and all(text.endswith(f"x{height}>") for text in images)  # one per line
    (image,) = transcript.image_blocks()  # the two lines, one under the other
    assert image.height == 2 * height and image.width <= 512
    assert image.getextrema() == (0, 255)  # ink on paper
    assert "Dv" not in transcript.text  # the image's bytes are never read as letters


def test_unknown_model_is_a_transcript_error() -> None:
    with pytest.raises(TranscriptError, match="TM-T88V"):
        decode(b"x", "TM-T88")


def test_table_data_agrees_with_independent_facts() -> None:
    from kiosk.devices.printer_models import charset, get_model

    assert charset("CP1257")[0x80 - 0x80] == "€" and charset("CP1252")[0] == "€"
    assert charset("ISO_8859-7")[0xA4 - 0x80] != "€"  # only the 2003 revision has it
    assert charset("CP775")[0xA0 - 0x80] == "Ā" and charset("CP866")[0] == "А"
    assert (
        get_model("TM-T88V").numbering[33] == "CP775"
        and get_model("TM-T88V").numbering[51] == "CP1257"
    )
    assert (
        33 not in get_model("TM-T88IV").numbering and get_model("CT-S310II").numbering[7] == "CP866"
    )
    assert (
        get_model("SRP-350III").numbering[30] == "CP775"
        and get_model("SRP-350III").numbering[26] == "CP1257"
    )
