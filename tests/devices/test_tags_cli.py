"""The `kiosk tag` command through kiosk.cli.main: JSON output, hex output and exit codes."""

from __future__ import annotations

import json

import pytest

from kiosk.cli import main

DANISH_32 = "11 01 01 31 31 32 32 33 33 34 34 00 00 00 00 00 00 00 00 51 3E 44 45 37 30 35 00 00 00 00 00 00"
ISO2 = "91:00:05:1C:BE:99:1A:14:02:01:D0:14:02:04:B3:46:07:44:1C:B6:E2:E3:35:D6:83:02:07:AC:C0:9E:BA:A0:6F:6B:00:00"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_decode_prints_the_fields(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "tag", "decode", DANISH_32)
    assert code == 0
    data = json.loads(out)
    assert data["model"] == "iso28560-3"
    assert data["item_id"] == "11223344"
    assert (data["part_number"], data["parts_in_set"]) == (1, 1)
    assert data["owner_institution"] == "DE-705"
    assert data["type_of_usage"] == "1"
    assert data["crc_ok"] is True
    assert data["block_order"] == "normal"


def test_decode_accepts_colons_and_split_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "tag", "decode", ISO2)
    assert code == 0
    assert json.loads(out)["owner_institution"] == "US-InU-Mu"
    code, out = run(capsys, "tag", "decode", *DANISH_32.split())
    assert code == 0
    assert json.loads(out)["item_id"] == "11223344"


def test_decode_options(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "tag", "decode", "--dsfid", "06", "--block-size", "4", ISO2)
    assert code == 0
    assert json.loads(out)["model"] == "iso28560-2"
    code, out = run(capsys, "tag", "decode", "--model", "rfid501", DANISH_32)
    assert code == 2
    assert "error" in json.loads(out)


@pytest.mark.parametrize(
    ("hexdata", "fragment"),
    [
        (DANISH_32.replace("51 3E", "51 3F"), "CRC"),
        ("zz", "not hex"),
        ("00 00 00 00", "blank"),
        ("91 00 09 1C", "ISO 28560-2"),
    ],
)
def test_bad_tag_prints_error_and_exits_2(
    capsys: pytest.CaptureFixture[str], hexdata: str, fragment: str
) -> None:
    code, out = run(capsys, "tag", "decode", hexdata)
    assert code == 2
    assert fragment in json.loads(out)["error"]


@pytest.mark.parametrize("model", ["iso28560-3", "iso28560-2"])
def test_encode_then_decode(capsys: pytest.CaptureFixture[str], model: str) -> None:
    code, out = run(
        capsys,
        "tag",
        "encode",
        "--model",
        model,
        "--item-id",
        "30000004",
        "--set",
        "2/3",
        "--owner",
        "LV-RCB",
        "--type-of-usage",
        "1" if model == "iso28560-3" else "10",
        "--block-order",
        "reversed",
    )
    assert code == 0
    memory = out.strip()
    assert len(bytes.fromhex(memory)) % 4 == 0
    code, out = run(capsys, "tag", "decode", memory)
    data = json.loads(out)
    assert code == 0
    assert (data["model"], data["item_id"], data["part_number"], data["parts_in_set"]) == (
        model,
        "30000004",
        2,
        3,
    )
    assert data["owner_institution"] == "LV-RCB"
    assert data["block_order"] == "reversed"


def test_encode_rfid501_and_extra_fields(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(
        capsys,
        "tag",
        "encode",
        "--model",
        "rfid501",
        "--item-id",
        "1302003767",
        "--type-of-usage",
        "book",
    )
    assert code == 0
    assert bytes.fromhex(out.strip()) == bytes.fromhex(
        "04 11 00 01" + " 31 33 30 32 30 30 33 37 36 37"
    ) + bytes(18)
    code, out = run(
        capsys,
        "tag",
        "encode",
        "--model",
        "iso28560-2",
        "--item-id",
        "1",
        "--field",
        "title=Zaļā grāmata",
    )
    assert code == 0
    code, out = run(capsys, "tag", "decode", out.strip())
    assert json.loads(out)["extra"]["title"] == "Zaļā grāmata"


def test_encode_truncated_form_matches_example(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(
        capsys,
        "tag",
        "encode",
        "--model",
        "iso28560-3",
        "--item-id",
        "11223344",
        "--owner",
        "DE-705",
        "--type-of-usage",
        "1",
        "--truncated",
    )
    assert code == 0
    assert bytes.fromhex(out.strip()) == bytes.fromhex(DANISH_32)


@pytest.mark.parametrize(
    "argv",
    [
        ["--set", "3/2"],
        ["--set", "two"],
        ["--owner", "DK-718500123456"],
        ["--field", "novalue"],
        ["--field", "content_parameter=x"],
        ["--block-size", "0"],
    ],
)
def test_encode_refusals_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, out = run(capsys, "tag", "encode", "--model", "iso28560-3", "--item-id", "1", *argv)
    assert code == 2
    assert json.loads(out)["error"]


def test_decode_reads_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(DANISH_32.replace(" ", "\n")))
    code, out = run(capsys, "tag", "decode", "-")
    assert code == 0
    assert json.loads(out)["item_id"] == "11223344"
