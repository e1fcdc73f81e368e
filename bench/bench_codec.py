"""Benchmark: encode and decode throughput of the kiosk's SIP2 codec against PyPI pysip2's codec.

Both codecs handle the same realistic frames (built by pysip2, checked byte-identical with
ours) in the same run; the table shows microseconds per message and pysip2/ours ratios
(above 1 means ours is faster). Run: `.venv/bin/python bench/bench_codec.py`.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pysip2  # noqa: E402
from pysip2 import (  # noqa: E402
    ACSStatusResponse,
    CheckinRequest,
    CheckinResponse,
    CheckoutRequest,
    CheckoutResponse,
    ItemInformationResponse,
    PatronInformationRequest,
    PatronInformationResponse,
)

from kiosk.sync.sip2.codec import decode, encode  # noqa: E402

NOW = datetime(2026, 11, 25, 10, 15, 0)
D = NOW.strftime("%Y%m%d    %H%M%S")
DUE = (NOW + timedelta(days=21)).strftime("%Y%m%d    235959")


def samples() -> list[tuple[str, object]]:
    return [
        (
            "11 checkout",
            CheckoutRequest(
                sc_renewal_policy="N",
                no_block="N",
                transaction_date=D,
                nb_due_date=D,
                institution_id="DEMO",
                patron_identifier="LV0001",
                item_identifier="30000001",
                terminal_password="",
                patron_password="1234",
                fee_acknowledged="N",
            ),
        ),
        (
            "12 checkout resp",
            CheckoutResponse(
                ok="1",
                renewal_ok="N",
                magnetic_media="N",
                desensitize="Y",
                transaction_date=D,
                institution_id="DEMO",
                patron_identifier="LV0001",
                item_identifier="30000001",
                title_identifier="Zaļā grāmata",
                due_date=DUE,
                media_type="001",
                screen_message=("Izsniegts",),
                print_line=("Zaļā grāmata", DUE),
            ),
        ),
        (
            "09 checkin",
            CheckinRequest(
                no_block="N",
                transaction_date=D,
                return_date=D,
                current_location="Ieeja",
                institution_id="DEMO",
                item_identifier="30000001",
                terminal_password="",
            ),
        ),
        (
            "10 checkin resp",
            CheckinResponse(
                ok="1",
                resensitize="Y",
                magnetic_media="N",
                alert="N",
                transaction_date=D,
                institution_id="DEMO",
                item_identifier="30000001",
                permanent_location="Pieaugušo nodaļa",
                title_identifier="Zaļā grāmata",
                sort_bin="1",
                patron_identifier="LV0001",
            ),
        ),
        (
            "63 patron info",
            PatronInformationRequest(
                language="000",
                transaction_date=D,
                summary="  Y       ",
                institution_id="DEMO",
                patron_identifier="LV0001",
                terminal_password="",
                patron_password="",
                start_item="1",
                end_item="20",
            ),
        ),
        (
            "64 patron resp (20 items)",
            PatronInformationResponse(
                patron_status=" " * 14,
                language="000",
                transaction_date=D,
                hold_items_count="0000",
                overdue_items_count="0001",
                charged_items_count="0020",
                fine_items_count="0000",
                recall_items_count="0000",
                unavailable_holds_count="0000",
                institution_id="DEMO",
                patron_identifier="LV0001",
                personal_name="Anna Bērziņa",
                valid_patron="Y",
                valid_patron_password="Y",
                currency_type="EUR",
                fee_amount="0.00",
                charged_items=tuple(f"3000{i:04d}" for i in range(20)),
                email_address="anna@example.lv",
            ),
        ),
        (
            "98 ACS status",
            ACSStatusResponse(
                online_status="Y",
                checkin_ok="Y",
                checkout_ok="Y",
                acs_renewal_policy="Y",
                status_update_ok="N",
                offline_ok="Y",
                timeout_period="030",
                retries_allowed="003",
                date_time_sync=D,
                protocol_version="2.00",
                institution_id="DEMO",
                library_name="Demo bibliotēka",
                supported_messages="YYYNYYYYYNYNNNYN",
                terminal_location="Ieeja",
            ),
        ),
        (
            "18 item info resp",
            ItemInformationResponse(
                circulation_status="04",
                security_marker="01",
                fee_type="01",
                transaction_date=D,
                due_date=DUE,
                item_identifier="30000004",
                title_identifier="Мастер и Маргарита",
                owner="LV-DEMO",
                media_type="001",
                permanent_location="Pieaugušo nodaļa",
            ),
        ),
    ]


def best_of(fn, n: int, repeat: int = 5) -> float:
    """Best wall time per call over `repeat` runs of `n` calls (seconds)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best


def main() -> int:
    n = 2000
    rows = []
    totals = {"p_enc": 0.0, "o_enc": 0.0, "p_dec": 0.0, "o_dec": 0.0}
    for name, model in samples():
        frame = pysip2.encode_message(model, sequence_number=3, checksum=True, encoding="utf-8")
        ours = decode(frame)
        if encode(ours, sequence=3) != frame:
            print(f"{name}: our encoding differs from pysip2's; not comparable", file=sys.stderr)
            return 1
        p_enc = best_of(
            lambda m=model: pysip2.encode_message(
                m, sequence_number=3, checksum=True, encoding="utf-8"
            ),
            n,
        )
        o_enc = best_of(lambda m=ours: encode(m, sequence=3), n)
        p_dec = best_of(lambda f=frame: pysip2.decode_message(f, encoding="utf-8"), n)
        o_dec = best_of(lambda f=frame: decode(f), n)
        for key, value in zip(totals, (p_enc, o_enc, p_dec, o_dec), strict=True):
            totals[key] += value
        rows.append((name, len(frame), p_enc, o_enc, p_dec, o_dec))

    head = f"{'message':28} {'bytes':>5} | {'enc pysip2':>10} {'enc ours':>9} {'ratio':>6} | {'dec pysip2':>10} {'dec ours':>9} {'ratio':>6}"
    print(f"SIP2 codec throughput, µs per message (best of 5 × {n}); ratio = pysip2 / ours")
    print(head)
    print("-" * len(head))
    for name, size, p_enc, o_enc, p_dec, o_dec in rows:
        print(
            f"{name:28} {size:5d} | {p_enc * 1e6:10.2f} {o_enc * 1e6:9.2f} {p_enc / o_enc:6.2f} |"
            f" {p_dec * 1e6:10.2f} {o_dec * 1e6:9.2f} {p_dec / o_dec:6.2f}"
        )
    print("-" * len(head))
    t = totals
    print(
        f"{'all messages':28} {'':5} | {t['p_enc'] * 1e6:10.2f} {t['o_enc'] * 1e6:9.2f} {t['p_enc'] / t['o_enc']:6.2f} |"
        f" {t['p_dec'] * 1e6:10.2f} {t['o_dec'] * 1e6:9.2f} {t['p_dec'] / t['o_dec']:6.2f}"
    )
    both = (t["p_enc"] + t["p_dec"]) / (t["o_enc"] + t["o_dec"])
    print(f"encode+decode ratio (pysip2 / ours): {both:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
