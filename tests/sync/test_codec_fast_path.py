"""The fast path of `kiosk sip2 decode` (kiosk/sync/sip2/fastpath.py) against the lenient decoder.

The fast path writes a line's JSON itself when the line has the common shape, and leaves every
other line to the lenient decoder (kiosk/sync/sip2/codec.py, decode). Which path a line takes must
never show in the output: for every message of the real-world corpus, and for thousands of seeded
mutations of them (the faults real ACSs and damaged captures have), the fast path either writes
exactly the bytes the lenient decoder's JSON would be, or writes nothing. The whole command is
then run as a process on the mutated capture, with CR, LF and CRLF line ends, and its output
compared byte for byte with the lenient decoder's, line by line.
"""

from __future__ import annotations

import io
import random
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.sync.sip2 import codec, fastpath
from kiosk.sync.sip2.cli import decode_line, split_messages
from kiosk.sync.sip2.codec import FIXED_FIELDS, _shifted_dates, byte_sum
from kiosk.sync.sip2.fastpath import _json_text, json_line, json_lines
from tests.sync.test_sip2_cli import decode_process

ROOT = Path(__file__).resolve().parents[2]
CORPUS = [
    line
    for line in (ROOT / "tests" / "sync" / "data" / "real_sip2.txt").read_bytes().splitlines()
    if line.strip() and not line.startswith(b"#")
]
SEED = 20261207


def reference(raw: bytes, line: int) -> bytes:
    """The JSON line the lenient decoder gives `raw`, as `kiosk sip2 decode` writes it."""
    result, _ = decode_line(raw, encoding="utf-8", delimiter="|", line=line)
    return msgspec.json.encode(result) + b"\n"


def fast(raw: bytes, line: int) -> bytes | None:
    """The fast path's JSON line for `raw`, or None when it leaves the line to the lenient decoder."""
    out = bytearray(b"before|")
    taken = json_line(raw, line, out)
    assert out.startswith(b"before|"), "the fast path changed what was already written"
    if not taken:
        assert out == b"before|", "the fast path wrote part of a line it then declined"
        return None
    return bytes(out[len(b"before|") :])


def agree(raw: bytes, line: int = 7) -> bool:
    """Assert the two paths agree on `raw`; True when the fast path took it."""
    got = fast(raw, line)
    if got is None:
        return False
    assert got == reference(raw, line), raw
    return True


# --- mutations: the faults of real captures, each a function of (line, random) ---------------


def _truncate(m: bytes, r: random.Random) -> bytes:
    return m[: r.randrange(0, len(m) + 1)]


def _flip_byte(m: bytes, r: random.Random) -> bytes:
    i = r.randrange(len(m))
    return m[:i] + bytes([r.randrange(256)]) + m[i + 1 :]


def _flip_ascii(m: bytes, r: random.Random) -> bytes:
    i = r.randrange(len(m))
    return m[:i] + bytes([r.randrange(32, 127)]) + m[i + 1 :]


def _wrong_checksum(m: bytes, r: random.Random) -> bytes:
    i = m.rfind(b"AZ")
    if i < 0 or len(m) - i != 6:
        return m + b"AZ" + b"%04X" % r.randrange(0x10000)
    return m[: i + 2] + b"%04X" % r.randrange(0x10000)


def _lower_checksum(m: bytes, r: random.Random) -> bytes:
    i = m.rfind(b"AZ")
    return m if i < 0 else m[: i + 2] + m[i + 2 :].lower()


def _drop_delimiter(m: bytes, r: random.Random) -> bytes:
    spots = [i for i, b in enumerate(m) if b == 0x7C]
    if not spots:
        return m
    i = r.choice(spots)
    return m[:i] + m[i + 1 :]


def _extra_delimiter(m: bytes, r: random.Random) -> bytes:
    i = r.randrange(len(m) + 1)
    return m[:i] + b"|" + m[i:]


def _shift_fixed(m: bytes, r: random.Random) -> bytes:
    spec = FIXED_FIELDS.get(m[:2].decode("ascii", "replace"))
    end = 2 + sum(w for _, w in spec) if spec else min(len(m), 10)
    i = r.randrange(2, max(3, end))
    if r.random() < 0.5:
        return m[:i] + r.choice([b" ", b"\t", b"0", b"Y", b"   "]) + m[i:]
    return m[:i] + m[i + r.choice([1, 1, 2, 4]) :]


def _non_ascii(m: bytes, r: random.Random) -> bytes:
    i = r.randrange(len(m) + 1)
    text = r.choice(["é", "ļā", "中文", "😀", "\u2028", "\u00a0", "ﬁ", "\ufffd", "Å"])
    return m[:i] + text.encode() + m[i:]


def _invalid_utf8(m: bytes, r: random.Random) -> bytes:
    i = r.randrange(len(m) + 1)
    return m[:i] + r.choice([b"\xff", b"\xc3", b"\xe4\xb8", b"\x80", b"\xed\xa0\x80"]) + m[i:]


def _line_end(m: bytes, r: random.Random) -> bytes:
    i = r.randrange(len(m) + 1)
    return m[:i] + r.choice([b"\r", b"\n", b"\r\n", b"\n\r"]) + m[i:]


def _empty_field(m: bytes, r: random.Random) -> bytes:
    spots = [i for i, b in enumerate(m) if b == 0x7C]
    i = r.choice(spots) + 1 if spots else len(m)
    return m[:i] + r.choice([b"|", b"AF|", b"AG|", b"XX|"]) + m[i:]


def _repeat_field(m: bytes, r: random.Random) -> bytes:
    spots = [i for i, b in enumerate(m) if b == 0x7C]
    if len(spots) < 2:
        return m + b"AFone|AFtwo|"
    a, b = sorted(r.sample(spots, 2))
    return m[: b + 1] + m[a + 1 : b + 1] + m[b + 1 :]


def _unknown_command(m: bytes, r: random.Random) -> bytes:
    return r.choice([b"XX", b"00", b"5Z", b"ab", b"9", b"", b"97", b"96"]) + m[2:]


def _special_chars(m: bytes, r: random.Random) -> bytes:
    i = r.randrange(len(m) + 1)
    return (
        m[:i] + r.choice([b'"', b"\\", b"\t", b"\x01", b"\x1f", b"\x7f", b"\x00", b"\\u"]) + m[i:]
    )


def _trailer_variants(m: bytes, r: random.Random) -> bytes:
    i = m.rfind(b"AY")
    body = m[:i] if i > 0 and len(m) - i <= 10 else m
    return body + r.choice(
        [
            b"",
            b"AY1",
            b"AY1|",
            b"AY1AZ",
            b"AZ1234",
            b"AY1AZ12",
            b"AY1AZFFFF ",
            b"AY12AZ1234",
            b"AYxAZ1234",
            b"|AY1AZ0000",
            b"AY1|AZ0000",
            b"AY0AZ" + b"%04X" % r.randrange(0x10000),
            b"  ",
            b"AO|AY3AZ0000",
        ]
    )


def _last_field_open(m: bytes, r: random.Random) -> bytes:
    i = m.rfind(b"|")
    if i < 0:
        return m + b"AFtext"
    tail = m[i + 1 :]
    return m[:i] + r.choice([b"", b" ", b"  ", b"A", b"AF", b"af"]) + tail


def _swap_date(m: bytes, r: random.Random) -> bytes:
    # Dates as hand-built fixed parts carry them: a TAB or one blank for the zone, other digits.
    return m.replace(b"    ", r.choice([b"\t", b" ", b"  Z ", b"UTC ", b"   Z", b"\xd9\xa3   "]), 1)


MUTATIONS: list[Callable[[bytes, random.Random], bytes]] = [
    _truncate,
    _flip_byte,
    _flip_ascii,
    _wrong_checksum,
    _lower_checksum,
    _drop_delimiter,
    _extra_delimiter,
    _shift_fixed,
    _non_ascii,
    _invalid_utf8,
    _line_end,
    _empty_field,
    _repeat_field,
    _unknown_command,
    _special_chars,
    _trailer_variants,
    _last_field_open,
    _swap_date,
]


def mutated(count: int, seed: int = SEED) -> list[bytes]:
    """`count` mutations of the corpus, one to three faults each, the same on every run."""
    r = random.Random(seed)
    out = []
    for n in range(count):
        m = CORPUS[n % len(CORPUS)]
        for _ in range(r.choice([1, 1, 1, 2, 3])):
            m = r.choice(MUTATIONS)(m, r) if m else m
        out.append(m)
    return out


# --- the tests -------------------------------------------------------------------------------


def test_every_corpus_line_agrees_and_most_take_the_fast_path():
    taken = [agree(raw, n) for n, raw in enumerate(CORPUS, start=1)]
    # The fast path is for the common shape: most of a real capture (every message of this one);
    # the faults it leaves to the lenient decoder are the mutations' (test_seeded_mutations_agree).
    assert sum(taken) >= 0.8 * len(CORPUS), f"fast path took {sum(taken)} of {len(CORPUS)}"


def test_seeded_mutations_agree():
    lines = mutated(12_000)
    taken = Counter()
    for n, raw in enumerate(lines, start=1):
        for part in split_messages(io.BytesIO(raw)):  # a CR or LF put inside splits the line
            taken[agree(part, n)] += 1
    # Both outcomes are exercised many times: the mutations reach the fast path's edges.
    assert taken[True] > 2_000 and taken[False] > 2_000, taken


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda f: f.__name__.strip("_"))
def test_each_mutation_agrees_on_every_corpus_line(mutation):
    r = random.Random(f"{SEED}-{mutation.__name__}")
    for n, raw in enumerate(CORPUS, start=1):
        for _ in range(8):
            for part in split_messages(io.BytesIO(mutation(raw, r))):
                agree(part, n)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(
    st.sampled_from(CORPUS),
    st.integers(min_value=0, max_value=600),
    st.binary(max_size=6),
    st.integers(min_value=0, max_value=4),
)
def test_arbitrary_splices_agree(raw, at, insert, cut):
    agree(raw[:at] + insert + raw[at + cut :])


def test_special_shapes_agree_and_take_the_fast_path():
    date = b"20261207    101500"
    for raw in [
        b"9900482.00AY0AZFC9D",  # no fields at all
        b"941",  # no fields, no trailer
        b"17" + date + b"AOx|AB1|",  # no trailer
        b"17" + date + b"AOx|ABone|AFa|AFb|AFc|AY3AZ0000",  # a repeated id
        b"17" + date + b"AOx|AFan open last field",  # the last field without its delimiter
        b"17" + date + b"AOx|AFopenAY1AZ0000",  # ... before the trailer
        b"17" + date + b'AOx|AJsay "hi" \\ there|AY1AZ0000',  # JSON escapes
        b"9900302.00|AY1AZFC14",  # a stray delimiter after the fixed part
        b"17" + date + b"|AOx|AB1|",
        b"17" + date + b"|AOx|ABopen",
        b"17" + date + b"AOx|BEa|b@c.lv|AB1|AY1AZ0000",  # a delimiter inside a value
        b"96AZFEF6",  # requests to resend, with a checksum or none
        b"97AZFEF5",
        b"96AZFEF7",
        b"96AZFFFF",
        b"96",
        b"97",
    ]:
        assert agree(raw), raw
    # Fixed parts the lenient decoder cuts on their transaction date (real ACSs' messages, in the
    # corpus): one character short, a TAB for the zone, one blank for the zone; and a short
    # fixed part before a stray delimiter.
    for start in [
        b"64    Y        00020161021",
        b"98YYYYYN30000320140930\t",
        b"64              00119980723 104009",
        b"29NN",
    ]:
        (raw,) = [raw for raw in CORPUS if raw.startswith(start)]
        assert agree(raw), raw
        assert b'"fixed part is ' in (fast(raw, 1) or b"")
    # Summed over characters, not bytes (a real ACS's message, in the corpus).
    (codepoints,) = [raw for raw in CORPUS if b"Anam \xc4\x8bara" in raw]
    assert agree(codepoints)
    assert b'"checksum_variant":"codepoints"' in (fast(codepoints, 1) or b"")


def test_a_reads_lines_in_one_call_agree_line_by_line():
    """json_lines, as the command calls it: one call for a read's lines, stopping at each line it
    leaves to the lenient decoder and going on from the next one with the same iterator."""
    lines = mutated(3_000, seed=SEED + 2) + CORPUS + [b"", b"hello", b"941"]
    random.Random(SEED + 2).shuffle(lines)
    rest = iter(lines)
    out = bytearray()
    n, declined = 0, []
    while True:
        n, raw = json_lines(rest, n, out)
        if raw is None:
            break
        assert raw == lines[n - 1]
        declined.append(n)
        out += reference(raw, n)
    assert n == len(lines)
    assert 500 < len(declined) < len(lines) - 500
    assert bytes(out) == b"".join(reference(raw, n) for n, raw in enumerate(lines, start=1))


@pytest.mark.parametrize(
    ("filler", "sizes"),
    [
        # Adler-32's low half is 1 + the plain sum while that is under 65521: with this head,
        # up to 531 bytes of DEL (0x7F), the largest ASCII byte, and up to 337 bytes of U+07FF
        # (0xDF 0xBF, as large as UTF-8 bytes go on average); the sums of longer lines are not.
        (b"\x7f", [200, 515, 516, 531, 532, 533, 600]),
        ("\u07ff".encode(), [256, 257, 337, 338, 339, 400, 520]),
    ],
)
def test_a_long_lines_checksum_is_the_plain_sum(filler, sizes):
    for size in sizes:  # the bytes the checksum covers (all but its four digits)
        head = b"17" + b"20261207    101500" + b"AO"
        tail = b"|AY1AZ"
        room = size - len(head) - len(tail)
        prefix = head + filler * (room // len(filler)) + b"x" * (room % len(filler)) + tail
        assert len(prefix) == size
        good = prefix + b"%04X" % (-sum(prefix) & 0xFFFF)
        bad = prefix + b"%04X" % ((-sum(prefix) + 1) & 0xFFFF)
        assert agree(good) and agree(bad), size
        assert b'"checksum_ok":true' in (fast(good, 1) or b"")
        assert b'"checksum_ok":false' in (fast(bad, 1) or b"")


# A transaction date with a zone of another width, looked for at every place.
_DATE_AT_EVERY_PLACE = re.compile(r"(?=(\d{8}\D{1,4}\d{6}))")


@settings(max_examples=500, derandomize=True, deadline=None)
@given(
    st.lists(
        st.sampled_from(["0", "1", "2", "9", "٣", " ", "\t", "Y", "A", "|", "20261207", "101500"]),
        max_size=40,
    ).map("".join)
)
def test_the_realignment_finds_the_dates_a_look_at_every_place_finds(text):
    """The lenient decoder looks for a shifted date at the end of each run of digits only, not at
    every place: the same dates, where they start and end."""
    text = "64" + text
    every = [
        (m.start(), m.start() + len(m.group(1))) for m in _DATE_AT_EVERY_PLACE.finditer(text, 2)
    ]
    assert _shifted_dates(text, len(text)) == every
    limit = len(text) // 2
    assert _shifted_dates(text, limit) == [
        (m.start(), m.start() + len(m.group(1)))
        for m in _DATE_AT_EVERY_PLACE.finditer(text, 2, limit)
    ]


@settings(max_examples=600, derandomize=True, deadline=None)
@given(
    st.sampled_from(sorted(c for c in FIXED_FIELDS if codec._LAYOUTS[c].date >= 0)),
    st.integers(min_value=-3, max_value=3),
    st.sampled_from(["20261207", "2026120", "202612071"]),
    st.sampled_from([" ", "\t", "  ", "    ", "     ", "Z", ""]),
    st.integers(min_value=-2, max_value=2),
    st.sampled_from(["", "20261208 101501", "20261208\t101501AO", "9"]),
    st.booleans(),
    st.sampled_from(["AOx|", "|AOx|", "XYz|", "AO"]),
    st.lists(st.sampled_from(["0", "1", " ", "Y", "|", "AO", "AB1|"]), max_size=6).map("".join),
)
def test_a_date_where_the_widths_put_it_is_taken_as_the_search_of_every_run_takes_it(
    command, shift, day, zone, slack, other, other_first, fields, noise
):
    """The realignment tries the date where the widths put it first and searches every run of
    digits only when it is not there or not plausible: the same cut as the search alone, with
    a second date before or after it, and the part after the date too short or too long."""
    layout = codec._LAYOUTS[command]
    head = (command + "Y" * 40)[: max(2, layout.date + shift)]
    tail = "0" * max(0, layout.after_date + slack) + noise
    if other_first:
        head = (head + other)[: max(2, layout.date + shift)] if other else head
        text = head + day + zone + "101500" + tail + fields
    else:
        text = head + day + zone + "101500" + tail + other + fields
    for end in {layout.end, codec._fixed_end(text, layout.end, "|")}:
        quick = codec._split_fixed(text, command, end, "|")
        with mock.patch.object(codec, "_SHIFTED_DATE_AT_RE", re.compile("(?!)")):  # never there
            searched = codec._split_fixed(text, command, end, "|")
        assert quick == searched and list(quick[0]) == list(searched[0])


def test_the_fast_paths_json_text_is_msgspecs():
    """The fixed fields of a realigned line and the notes are written as msgspec writes them."""
    for c in range(0x80):
        assert b'"%s"' % _json_text(chr(c)) == msgspec.json.encode(chr(c)), c
    text = "".join(map(chr, range(0x80))) * 2
    assert b'"%s"' % _json_text(text) == msgspec.json.encode(text)


def test_the_fast_path_needs_no_msgspec():
    """Its start counts: msgspec is imported for a line left to the lenient decoder only."""
    code = "import sys, kiosk.sync.sip2.cli; print('msgspec' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=ROOT, timeout=60)
    assert proc.stdout.strip() == b"False", proc.stderr


def test_the_command_writes_the_lenient_decoders_json_for_every_line():
    """The whole process on a mutated capture: every line end, blank lines, the exit code."""
    r = random.Random(SEED + 1)
    lines = mutated(3_000, seed=SEED + 1) + CORPUS + [b"", b"  \t", b"hello"]
    r.shuffle(lines)
    data = b"".join(line + r.choice([b"\r", b"\n", b"\r\n"]) for line in lines)
    proc = decode_process(data)
    expected = bytearray()
    failed = 0
    for n, raw in enumerate(split_messages(io.BytesIO(data)), start=1):
        if not raw.strip(b" \t"):
            continue
        result, ok = decode_line(raw, encoding="utf-8", delimiter="|", line=n)
        failed += not ok
        expected += msgspec.json.encode(result) + b"\n"
    assert failed  # the capture has lines that cannot be decoded, and the exit code says so
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == bytes(expected)
    assert f"{failed} line(s) could not be decoded".encode() in proc.stderr


def test_other_encodings_and_delimiters_keep_the_lenient_decoder():
    line = "17" + "20261207    101500" + "AOx^ABÅ^"
    data = line.encode("cp1257") + b"\n"
    proc = decode_process(data, "--encoding", "cp1257", "--delimiter", "^")
    result, ok = decode_line(data[:-1], encoding="cp1257", delimiter="^", line=1)
    assert ok and result["fields"] == {"AO": ["x"], "AB": ["Å"]}
    assert proc.stdout == msgspec.json.encode(result) + b"\n"


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.binary(max_size=700) | st.binary(min_size=250, max_size=600).map(bytes.upper))
def test_the_checksums_byte_sum_is_the_plain_sum(data):
    assert byte_sum(data) == sum(data)


@pytest.mark.parametrize("size", [255, 256, 257, 514, 515, 516, 2000])
@pytest.mark.parametrize("byte", [0x00, 0x7F, 0x80, 0xFF])
def test_the_checksums_byte_sum_at_the_bounds_of_adler32(size, byte):
    data = bytes([byte]) * size
    assert byte_sum(data) == sum(data) == byte_sum(bytearray(data))


@settings(max_examples=600, derandomize=True, deadline=None)
@given(
    st.sampled_from(sorted(c for c in FIXED_FIELDS if codec._LAYOUTS[c].date >= 0)),
    st.sampled_from(["Y", " ", "N", "0", "CA", "AO", "\t"]),
    st.sampled_from([" ", "\t", "  ", "   ", "    ", " \t", "Z", "-:", "|", '"', "\\", "     "]),
    st.sampled_from(["0", "Y", "", "00", "A"]),
    st.sampled_from(["AOx|", "|AOx|", "XYz|", "AO", "ABCD|", "ZZx|", "aox|", "", "|", "CA|AOx|"]),
    st.sampled_from(["", "AY1AZ", "AY1AZFFFF"]),
)
def test_a_zone_of_another_width_where_the_widths_put_it_is_cut_as_the_lenient_decoder_cuts_it(
    command, filler, zone, slack, fields, trailer
):
    """The fast path cuts a fixed part whose date stands where the widths put it, its zone
    another width, itself (the lenient decoder's first try when it realigns): the same line, and
    the lenient decoder's cut only where the widths end the part where a field begins."""
    layout = codec._LAYOUTS[command]
    head = (command + filler * 40)[: layout.date]
    after = ("0" * layout.after_date + slack)[: layout.after_date + len(slack) - 1 or None]
    raw = (head + "20261207" + zone + "101500" + after + fields + trailer).encode()
    if trailer.endswith("AZ"):
        raw += codec.checksum(raw).encode()
    calls = []
    with mock.patch.object(
        fastpath, "_split_fixed", lambda *a: calls.append(a) or codec._split_fixed(*a)
    ):
        taken = agree(raw)
    text = raw.decode()
    plain = 1 <= len(zone) <= 3 and not set(zone) & set('|"\\') and "\t" not in head
    end = len(head) + 14 + len(zone) + layout.after_date
    body = text[:-9] if trailer else text  # (a checksum follows AZ)
    if (
        plain
        and len(after) == layout.after_date
        and end < len(body)
        and (body[end] == "|" or body[end : end + 2] in codec.KNOWN_FIELD_IDS)
        and codec._fixed_end(body, layout.end, "|") != layout.end
        and fastpath._shape(raw[:2]).pattern.match(raw) is None  # (not of the spec's shape)
    ):
        assert taken and not calls, raw  # cut by the fast path's pattern


def test_the_corpus_zones_of_another_width_are_cut_by_the_fast_paths_pattern():
    """Two corpus lines have a zone of another width (a TAB, one blank) at the date's place."""
    calls = []
    with mock.patch.object(
        fastpath, "_split_fixed", lambda *a: calls.append(a) or codec._split_fixed(*a)
    ):
        for raw in CORPUS:
            agree(raw)
    cut = {a[0][:2] for a in calls}
    assert len(calls) == 2 and cut == {"64", "29"}, calls


@settings(max_examples=300, derandomize=True, deadline=None)
@given(
    st.text(max_size=300)
    | st.sampled_from(["\uffff", "\U0010ffff", "\u07ff", "ÿ", "\x7f"]).flatmap(
        lambda c: st.integers(min_value=250, max_value=262).map(lambda n: c * n)
    )
)
def test_the_fast_paths_code_point_sum_is_the_sum_of_the_characters(text):
    """A checksum over code points is summed from the line's UTF-32 form (modulo 65536), and
    one by one past the size where Adler-32 stops being the plain sum."""
    raw = text.encode("utf-8", errors="surrogatepass") + b"0000"
    if text.encode("utf-8", errors="ignore") != raw[:-4]:
        return  # (a lone surrogate is not UTF-8)
    assert fastpath._codepoint_sum(raw) & 0xFFFF == sum(map(ord, text)) & 0xFFFF
