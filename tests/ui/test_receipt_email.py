"""The e-mailed receipt, through the real app and the demo library system: the receipt question
shows the masked address the e-mail goes to (from the patron information's BE), a receipt can
be printed and e-mailed at once, and there is no e-mail choice for a patron without an address
or at a site without a mailer. The address is never logged."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

pytestmark = pytest.mark.ui


def _borrow_one_and_finish(p, card: str, pin: str = "") -> None:
    p.borrow(card, "30000002", pin)
    p.tap_id("finish", "checkout")
    p.wait_screen("finish")


def test_print_and_email_show_the_masked_address(kiosk, tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    p = kiosk.start("email-", pin_policy="optional", email="true")
    _borrow_one_and_finish(p, "LV0001", "1234")  # anna@example.lv in the library system
    finish = p.screen("finish")
    assert p.widget("email_to", "finish").text == "Kvīti e-pastā sūtīsim uz a***@e***.lv."
    assert finish.email_button.parent is not None
    assert finish.both_button.parent is not None
    assert not finish.both_button.disabled
    p.screenshot("receipt-choice")
    p.tap(finish.both_button)
    p.wait_screen("goodbye")
    message = p.widget("message", "goodbye").text
    assert "Lūdzu, paņemiet kvīti." in message
    assert "Kvīts ir nosūtīta uz jūsu e-pastu." in message
    (mail,) = (tmp_path / "outbox").glob("*.eml")
    assert b"To: anna@example.lv" in mail.read_bytes()
    (printed,) = (tmp_path / "receipts").glob("*-checkout.txt")  # the printer's transcript
    assert "Dvēseļu putenis" in printed.read_text(encoding="utf-8")
    assert "anna@example.lv" not in caplog.text
    assert "anna@" not in caplog.text


@pytest.mark.parametrize(
    ("card", "email"),
    [("LV0002", "true"), ("LV0001", "false")],
    ids=["patron-without-address", "site-without-mailer"],
)
def test_no_email_choice(kiosk, card: str, email: str) -> None:
    p = kiosk.start("no-email-", pin_policy="optional", email=email)
    _borrow_one_and_finish(p, card, "1234")
    finish = p.screen("finish")
    assert not p.widget("email_slot", "finish").children
    assert p.widget("email_to", "finish").text == ""
    assert not finish.can_email
    assert not p.widget("print_receipt", "finish").disabled


def test_a_refusing_mail_server_is_logged_without_the_address() -> None:
    """A real SMTP conversation on loopback where the server refuses the recipient (and names
    it, as servers do): the error the kiosk logs carries the masked address only."""
    import socket
    import threading
    from datetime import datetime

    from kiosk.core.receipt import Receipt, ReceiptKind
    from kiosk.receipts import MailError, ReceiptMailer

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(10)

    def serve() -> None:
        conn, _ = listener.accept()
        with conn, conn.makefile("rb") as lines:
            conn.sendall(b"220 mail.example.lv ESMTP\r\n")
            for raw in lines:
                verb = raw[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    conn.sendall(b"250 mail.example.lv\r\n")
                elif verb == b"RCPT":
                    conn.sendall(b"550 5.1.1 <anna@example.lv>: no such mailbox\r\n")
                elif verb == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                else:  # MAIL FROM, RSET
                    conn.sendall(b"250 ok\r\n")

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        mailer = ReceiptMailer(
            f"smtp://127.0.0.1:{listener.getsockname()[1]}", "kiosk@library.lv", timeout_s=5
        )
        receipt = Receipt(
            ReceiptKind.CHECKOUT, "Demo bibliotēka", datetime(2026, 12, 7, 11, 30), "lv"
        )
        with pytest.raises(MailError) as raised:
            mailer(receipt, "anna@example.lv")
    finally:
        server.join(timeout=10)
        listener.close()
    assert "a***@e***.lv" in str(raised.value)
    assert "anna@" not in str(raised.value)
