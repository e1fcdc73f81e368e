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
