"""A virtual contactless card for vsmartcard's vpcd driver (docs/testing.md §5.3/5.4): connects to the
virtual reader (connected = card inserted, closed = removed) and answers the PC/SC part 3
storage-card pseudo-APDUs from an in-memory tag image. With --transparent it also answers the
PC/SC 2.02 transparent exchange for ISO 15693 Get System Information, Write AFI and NXP EAS.

    python tests/integration/vcard.py --kind iso15693 --uid E004010012345678 --image 1101…
"""

from __future__ import annotations

import argparse
import socket
import sys
import time

ISO15693_ATR = bytes.fromhex("3B8F8001804F0CA0000003060B0014000000")
MIFARE_ATR = bytes.fromhex("3B8F8001804F0CA000000306030001000000")
OK = b"\x90\x00"


def with_tck(atr: bytes) -> bytes:
    tck = 0
    for b in atr[1:]:
        tck ^= b
    return atr + bytes([tck])


class Card:
    def __init__(self, args: argparse.Namespace) -> None:
        self.kind = args.kind
        self.uid = bytes.fromhex(args.uid)  # MSB first, as printed on the card
        self.block_size = args.block_size
        image = bytes.fromhex(args.image) if args.image else b""
        self.memory = bytearray(image.ljust(args.blocks * self.block_size, b"\x00"))
        self.transparent = args.transparent
        self.afi = args.afi
        self.eas = args.eas
        self.dsfid = args.dsfid
        self.atr = with_tck(ISO15693_ATR if self.kind == "iso15693" else MIFARE_ATR)

    def apdu(self, c: bytes) -> bytes:
        if len(c) < 4 or c[0] != 0xFF:
            return b"\x6e\x00"
        ins, p1, p2 = c[1], c[2], c[3]
        if ins == 0xCA and p1 == 0x00:
            # ISO 15693 UIDs travel LSB first through FF CA (docs/protocols/rfid.md P12); ISO 14443 as transmitted
            return (self.uid[::-1] if self.kind == "iso15693" else self.uid) + OK
        if ins == 0xB0:
            n = c[4] if len(c) > 4 and c[4] else self.block_size
            start = p2 * self.block_size
            if start + n > len(self.memory):
                return b"\x6a\x82"
            return bytes(self.memory[start : start + n]) + OK
        if ins == 0xD6:
            n = c[4] if len(c) > 4 else 0
            data = c[5 : 5 + n]
            start = p2 * self.block_size
            if len(data) != n or n % self.block_size or start + n > len(self.memory):
                return b"\x6a\x82"
            self.memory[start : start + n] = data
            return OK
        if ins == 0xC2:
            if not self.transparent:
                return b"\x6a\x81"
            return self.transparent_exchange(p2, c[5 : 5 + c[4]] if len(c) > 4 else b"")
        return b"\x6d\x00"

    def transparent_exchange(self, p2: int, data: bytes) -> bytes:
        status_ok = bytes.fromhex("C003009000")
        if p2 in (0x00, 0x02):  # session management, switch protocol
            return status_ok + OK
        frame = None
        i = 0
        while i < len(data):
            tag = data[i]
            if tag == 0x5F:  # two-byte tag (timer 5F 46)
                n = data[i + 2]
                i += 3 + n
                continue
            n = data[i + 1]
            if tag == 0x95:
                frame = data[i + 2 : i + 2 + n]
            i += 2 + n
        silent = bytes.fromhex("C003016401")  # timeout: no answer from the tag
        if not frame or len(frame) < 2:
            return silent + OK
        flags, cmd = frame[0], frame[1]
        rest = frame[2:]
        if cmd >= 0xA0:
            rest = rest[1:]  # manufacturer code
        if flags & 0x20:
            if rest[:8] != self.uid[::-1]:
                return silent + OK
            rest = rest[8:]
        answer = None
        if cmd == 0x2B:
            blocks = len(self.memory) // self.block_size
            answer = (
                b"\x00\x0f"
                + self.uid[::-1]
                + bytes([self.dsfid, self.afi, blocks - 1, self.block_size - 1, 0x01])
            )
        elif cmd == 0x27 and rest:
            self.afi = rest[0]
            answer = b"\x00"
        elif cmd in (0xA2, 0xA3):
            self.eas = cmd == 0xA2
            answer = b"\x00"
        elif cmd == 0xA5:
            answer = b"\x00" + bytes(32) if self.eas else None
        else:
            answer = b"\x01\x01"  # ISO error: command not supported
        if answer is None:
            return silent + OK
        return status_ok + bytes([0x97, len(answer)]) + answer + OK


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("vpcd closed the connection")
        buf += chunk
    return bytes(buf)


def send(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(len(payload).to_bytes(2, "big") + payload)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=35963)
    ap.add_argument("--kind", choices=("iso15693", "mifare"), default="iso15693")
    ap.add_argument("--uid", required=True, help="card UID, hex, MSB first")
    ap.add_argument("--image", default="", help="tag memory, hex")
    ap.add_argument("--blocks", type=int, default=28)
    ap.add_argument("--block-size", type=int, default=4)
    ap.add_argument(
        "--transparent", action="store_true", help="answer the FF C2 transparent exchange"
    )
    ap.add_argument("--afi", type=lambda s: int(s, 0), default=0x07)
    ap.add_argument("--eas", action="store_true")
    ap.add_argument("--dsfid", type=lambda s: int(s, 0), default=0x00)
    args = ap.parse_args(argv)
    card = Card(args)
    deadline = time.monotonic() + 10
    while True:
        try:
            sock = socket.create_connection((args.host, args.port), timeout=5)
            break
        except OSError:
            if time.monotonic() > deadline:
                print(f"vpcd not reachable on {args.host}:{args.port}", file=sys.stderr)
                return 1
            time.sleep(0.1)
    sock.settimeout(None)
    print("inserted", flush=True)
    try:
        while True:
            n = int.from_bytes(recv_exact(sock, 2), "big")
            payload = recv_exact(sock, n)
            if n == 1:
                if payload[0] == 4:
                    send(sock, card.atr)
                continue  # power off / on / reset need no answer
            send(sock, card.apdu(payload))
    except (ConnectionError, OSError):
        return 0


if __name__ == "__main__":
    sys.exit(main())
