"""Technician commands for SIP2: `kiosk sip2 decode` (wire text → JSON) and `kiosk sip2 check` (ask the ACS).

Both are meant for scripts: bad arguments are usage errors (exit 2), and the exit code says
whether every line decoded (`decode`) or the library system answered (`check`), as listed in
docs/operations.md.
"""

from __future__ import annotations

import argparse
import codecs
import dataclasses
import gc
import io
import re
import sys
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from kiosk.cliargs import positive_seconds, tcp_port
from kiosk.errors import ConfigError
from kiosk.exitcodes import Exit
from kiosk.sync.sip2.codec import Sip2FormatError, Sip2LinkError, decode
from kiosk.sync.sip2.fastpath import json_lines

_CHUNK = 65536
_LINE_END = re.compile(rb"\r\n|\r|\n")


def _text_encoding(name: str) -> str:
    try:
        info = codecs.lookup(name)
    except LookupError:
        raise argparse.ArgumentTypeError(
            f"unknown encoding {name!r} (e.g. utf-8, iso-8859-1, cp1252, cp1257)"
        ) from None
    if not getattr(info, "_is_text_encoding", True):
        raise argparse.ArgumentTypeError(f"{name!r} is not a text encoding")
    return info.name


def _delimiter(text: str) -> str:
    if len(text) != 1 or text in "\r\n":
        raise argparse.ArgumentTypeError(
            f"the field delimiter is one character such as |, not {text!r}"
        )
    return text


def register(subparsers: Any) -> None:
    sip2 = subparsers.add_parser("sip2", help="SIP2 technician tools")
    sub = sip2.add_subparsers(dest="sip2_command", metavar="SUBCOMMAND")
    sip2.set_defaults(func=lambda _args: (sip2.print_help(), Exit.USAGE)[1])

    dec = sub.add_parser(
        "decode",
        help="decode raw SIP2 messages from stdin (one per line: CR, LF or CRLF) to JSON lines; exit 1 if a line could not be decoded",
    )
    dec.add_argument(
        "--encoding",
        type=_text_encoding,
        default="utf-8",
        help="character encoding of the messages (default utf-8)",
    )
    dec.add_argument(
        "--delimiter", type=_delimiter, default="|", help="field delimiter (default |)"
    )
    dec.set_defaults(func=_decode)

    chk = sub.add_parser(
        "check",
        help="connect to the configured ACS and print its status and capabilities (exit 2 config fault, 3 unreachable)",
    )
    chk.add_argument("--host", help="override sip2.host")
    chk.add_argument("--port", type=tcp_port, help="override sip2.port")
    chk.add_argument(
        "--timeout", type=positive_seconds, help="override sip2.timeout_s (seconds, > 0)"
    )
    chk.add_argument(
        "--duplicate-rule",
        action="store_true",
        help="also find out whether the ACS honours the SIP2 duplicate rule (sends one 99 "
        "twice); set sip2.duplicate_rule = true only when it does",
    )
    chk.set_defaults(func=_check)


def split_batches(
    stream: BinaryIO | _BytesOf, before_read: Callable[[], object] = lambda: None
) -> Iterator[list[bytes]]:
    """The messages of a capture, whatever ends its lines (CR, the SIP2 terminator, LF or CRLF),
    as lists: the lines that each read completed.

    Read as it arrives, so `tail -f wire.log | kiosk sip2 decode` decodes each line at once;
    `before_read` is called before each read that may wait (to flush what was written).
    """
    buf = b""
    eof = False
    while not eof:
        before_read()
        chunk = (
            stream.read1(_CHUNK) if isinstance(stream, io.BufferedIOBase) else stream.read(_CHUNK)
        )
        eof = not chunk
        buf += chunk
        # A CR at the end of what arrived waits: its LF may follow in the next read.
        held = not eof and buf.endswith(b"\r")
        work = buf[:-1] if held else buf
        lines = _LINE_END.split(work) if b"\r" in work else work.split(b"\n")
        buf = lines.pop() + b"\r" if held else lines.pop()
        if lines:
            yield lines
    if buf:
        yield [buf]


def split_messages(
    stream: BinaryIO | _BytesOf, before_read: Callable[[], object] = lambda: None
) -> Iterator[bytes]:
    """The messages of a capture one by one (see split_batches)."""
    for lines in split_batches(stream, before_read):
        yield from lines


def decode_line(
    raw: bytes, *, encoding: str, delimiter: str, line: int | None = None
) -> tuple[dict[str, Any], bool]:
    """(the JSON of one captured line, whether it decoded); a checksum that does not match is
    reported in `checksum_ok`, not as a failure: some servers get it wrong on every message.
    With `line`, the object starts with its line number."""
    head: dict[str, Any] = {} if line is None else {"line": line}
    try:
        msg = decode(raw, encoding=encoding, delimiter=delimiter)
    except Sip2FormatError as exc:
        return {**head, "error": str(exc), "raw": raw.decode(encoding, errors="replace")}, False
    return {
        **head,
        **msg.to_json(),
        "checksum_variant": msg.checksum_variant,
        "notes": msg.notes,
    }, True


def _decode(args: argparse.Namespace) -> int:
    source = getattr(sys.stdin, "buffer", None)
    if source is None:  # a text stream (tests): encode it back in the capture's encoding
        source = _BytesOf(sys.stdin, args.encoding)
    failed = 0
    # Lines are gathered and written only before a read that may wait: a capture piped in whole
    # goes out in large writes (even where stdout is unbuffered), a `tail -f` still line by line.
    pending = bytearray()
    into: Callable[[Any, bytearray, int], None] | None = None

    def write_out() -> None:
        sys.stdout.flush()  # anything written as text goes first
        out = getattr(sys.stdout, "buffer", None)
        if out is None:  # a text stream (tests)
            sys.stdout.write(pending.decode("utf-8"))
        else:
            out.write(pending)
            out.flush()
        pending.clear()

    # The loop makes many short-lived objects, and the collections they set off would scan every
    # object of the loaded modules again each time: those are set aside while it runs.
    gc.freeze()
    try:
        # Lines of the common shape are written by the fast path (kiosk/sync/sip2/fastpath.py) as
        # the lenient decoder would write them; it knows UTF-8 and the standard delimiter only.
        fast = (args.encoding, args.delimiter) == ("utf-8", "|")
        n = 0
        for lines in split_batches(source, write_out):
            rest = iter(lines)
            while True:
                if fast:  # up to the next line it leaves to the lenient decoder
                    n, raw = json_lines(rest, n, pending)
                    if raw is None:
                        break
                else:
                    raw = next(rest, None)
                    if raw is None:
                        break
                    n += 1
                if not raw.strip(b" \t"):
                    continue
                result, ok = decode_line(
                    raw, encoding=args.encoding, delimiter=args.delimiter, line=n
                )
                failed += not ok
                if into is None:
                    # msgspec writes the JSON (UTF-8, as json.dumps with ensure_ascii=False)
                    # several times faster than the json module; the fast path needs neither.
                    import msgspec  # lazy: only for lines the fast path leaves; 10 ms to start

                    into = msgspec.json.Encoder().encode_into
                into(result, pending, -1)
                pending += b"\n"
    finally:
        gc.unfreeze()
    write_out()
    if failed:
        print(
            f"sip2 decode: {failed} line(s) could not be decoded",
            file=sys.stderr,
        )
        return Exit.FAILED
    return Exit.OK


class _BytesOf:
    """A text stream read as bytes in a given encoding."""

    def __init__(self, stream: Any, encoding: str) -> None:
        self._stream = stream
        self._encoding = encoding

    def read(self, size: int = -1) -> bytes:
        return str(self._stream.read(size)).encode(self._encoding, errors="replace")


def _check(args: argparse.Namespace) -> int:
    import json  # lazy: `sip2 decode` writes its JSON with msgspec, and starts faster without

    from kiosk import config as kiosk_config  # lazy: `sip2 decode` reads no configuration
    from kiosk.configfaults import (  # lazy: as the configuration, for `check` alone
        login_refused,
        sip2_file_faults,
    )
    from kiosk.sync.sip2.client import Sip2LoginError, probe_acs  # lazy: ssl and sockets

    cfg = kiosk_config.load(args.config)
    settings = cfg.sip2
    overrides = {
        k: v
        for k, v in (("host", args.host), ("port", args.port), ("timeout_s", args.timeout))
        if v is not None
    }
    if overrides:
        settings = dataclasses.replace(settings, **overrides)
    faults = sip2_file_faults(settings)
    if faults:
        print(f"sip2 check: configuration fault: {'; '.join(faults)}", file=sys.stderr)
        return Exit.USAGE
    try:
        probe = probe_acs(settings, duplicate_rule=bool(getattr(args, "duplicate_rule", False)))
    except ConfigError as exc:
        print(f"sip2 check: configuration fault: {exc}", file=sys.stderr)
        return Exit.USAGE
    status, failure = probe.status, probe.failure
    if isinstance(failure, Sip2LoginError):
        print(f"sip2 check: configuration fault: {login_refused(settings)}", file=sys.stderr)
        return Exit.USAGE
    if isinstance(failure, Sip2LinkError | OSError):
        print(f"sip2 check: library system unreachable: {probe.error}", file=sys.stderr)
        return Exit.UNREACHABLE
    if status is None:
        print(f"sip2 check failed: {probe.error}", file=sys.stderr)
        return Exit.FAILED
    report = {
        "host": settings.host,
        "port": settings.port,
        "tls": settings.tls,
        "encoding": settings.encoding,
        "error_detection": settings.error_detection,
        "logged_in": bool(settings.send_login and settings.username),
        "acs": status.to_json(),
        "duplicate_rule": settings.duplicate_rule,
    }
    if probe.duplicate_rule_honoured is not None:
        report["duplicate_rule_honoured"] = probe.duplicate_rule_honoured
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return Exit.OK if status.online else Exit.FAILED
