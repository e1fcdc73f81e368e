"""Turn the core's Receipt data into printable lines in the patron's language (catalog texts,
dd.mm.yyyy dates, amounts in EUR), for the receipt printer; the book-drop screens reuse it for
hold slips. No Kivy here, so it also runs on the core worker.
"""

from __future__ import annotations

import textwrap
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from kiosk.core.masking import mask_email
from kiosk.core.money import is_nonzero
from kiosk.core.receipt import Receipt, ReceiptKind, ReceiptLine
from kiosk.core.sanitize import for_email, for_printer
from kiosk.devices.printer import PrintDocument, PrintLine
from kiosk.errors import KioskError
from kiosk.i18n import _, translator
from kiosk.screens.texts import refusal_text

KIND_TITLES: dict[ReceiptKind, str] = {
    ReceiptKind.CHECKOUT: _("Loan receipt"),
    ReceiptKind.RETURN: _("Return receipt"),
    ReceiptKind.RENEWAL: _("Renewal receipt"),
    ReceiptKind.ACCOUNT: _("Your account"),
    ReceiptKind.HOLD_SLIP: _("Hold slip"),
}


def render_receipt(
    receipt: Receipt,
    *,
    width: int = 42,
    max_title: int = 0,
    clean: Callable[[str], str] = for_printer,
) -> PrintDocument:
    """The receipt as lines of at most `width` characters; titles cut to `max_title` when set.
    Every text passes `clean` (the sink's sanitiser) before it is wrapped."""
    t = translator(receipt.language or "lv")
    tr = t.gettext
    out: list[PrintLine] = []

    def add(
        text: str = "",
        *,
        bold: bool = False,
        large: bool = False,
        align: Literal["left", "center", "right"] = "left",
        indent: int = 0,
    ) -> None:
        limit = width // 2 if large else width
        wrapped = textwrap.wrap(clean(text), limit - indent, break_long_words=True) or [""]
        for part in wrapped:
            out.append(PrintLine(" " * indent + part, bold=bold, large=large, align=align))

    def title_of(line: ReceiptLine) -> str:
        title = line.title or line.item_id
        if max_title and len(title) > max_title:
            title = title[: max_title - 3] + "..."
        return title

    add(receipt.library_name, bold=True, large=True, align="center")
    add(tr(KIND_TITLES[receipt.kind]), bold=True, align="center")
    add(t.format_datetime(receipt.when), align="center")
    if receipt.card_masked:
        add(f"{tr('Card')}: {receipt.card_masked}", align="center")
    if receipt.patron_name:
        add(receipt.patron_name, align="center")
    add("-" * width)

    if receipt.kind is ReceiptKind.HOLD_SLIP and receipt.hold_slip is not None:
        slip = receipt.hold_slip
        for line in receipt.lines:
            add(title_of(line), bold=True)
            add(f"{tr('Item')}: {line.item_id}", indent=2)
        add(f"{tr('Reserved for')}: {slip.patron_masked}", bold=True)
        if slip.patron_name:
            add(slip.patron_name)
        if slip.destination:
            add(f"{tr('Send to')}: {slip.destination}")
        if slip.pickup_by:
            add(f"{tr('Collect by')}: {t.format_date(slip.pickup_by)}")
        add("-" * width)
        return PrintDocument(
            tuple(out),
            barcode=receipt.lines[0].item_id if receipt.lines else "",
            name="hold-slip",
            language=receipt.language,
        )

    done_heading = {
        ReceiptKind.CHECKOUT: _("Borrowed"),
        ReceiptKind.RETURN: _("Returned"),
        ReceiptKind.RENEWAL: _("Renewed"),
    }.get(receipt.kind)
    refused_heading = (
        _("Not returned")
        if receipt.kind is ReceiptKind.RETURN
        else _("Not renewed")
        if receipt.kind is ReceiptKind.RENEWAL
        else _("Not borrowed")
    )

    def done_section(heading: str, lines: tuple[ReceiptLine, ...]) -> None:
        if not lines:
            return
        add(f"{tr(heading)} ({len(lines)})", bold=True)
        for line in lines:
            add(title_of(line))
            add(f"{tr('Item')}: {line.item_id}", indent=2)
            if line.due_date:
                due = t.format_date(line.due_date)
                add(f"{tr('Due')}: {due}" + (" *" if line.offline else ""), bold=True, indent=2)
        add()

    def refused_section(heading: str, lines: tuple[ReceiptLine, ...]) -> None:
        if not lines:
            return
        add(f"{tr(heading)} ({len(lines)})", bold=True)
        for line in lines:
            add(title_of(line))
            add(f"{tr('Item')}: {line.item_id}", indent=2)
            add(tr(refusal_text(line.refusal)), indent=2)
        add()

    if done_heading:
        done_section(done_heading, receipt.lines)
    done_section(_("Renewed"), receipt.renewed)
    refused_section(refused_heading, receipt.refused)
    refused_section(_("Not renewed"), receipt.not_renewed)
    if receipt.kind is ReceiptKind.ACCOUNT:
        add(f"{tr('Loans')} ({len(receipt.loans)})", bold=True)
        for loan in receipt.loans:
            add(loan.title or loan.item_id)
            due = t.format_date(loan.due_date)
            add(
                f"{tr('Due')}: {due}" + (f" - {tr('overdue')}" if loan.overdue else ""),
                bold=loan.overdue,
                indent=2,
            )
        if receipt.holds:
            add()
            add(f"{tr('Holds')} ({len(receipt.holds)})", bold=True)
            for hold in receipt.holds:
                add(hold.title or hold.item_id)
                add(tr("Ready for pickup") if hold.ready else tr("Waiting"), indent=2)
        add()
    if receipt.fees or is_nonzero(receipt.fee_total):
        add(tr("Fees"), bold=True)
        for fee in receipt.fees:
            add(
                f"{fee.description}: {t.format_money(fee.amount, receipt.currency, symbol=False)}",
                indent=2,
            )
        if is_nonzero(receipt.fee_total):
            add(
                f"{tr('Total')}: {t.format_money(receipt.fee_total, receipt.currency, symbol=False)}",
                bold=True,
                indent=2,
            )
        add()
    if receipt.offline:
        add(
            tr(
                "* Done while the library system was offline: the due dates are provisional and will be confirmed."
            )
        )
        add()
    for text in receipt.acs_lines:
        add(text)
    add(tr("Thank you!"), align="center")
    return PrintDocument(tuple(out), name=receipt.kind.value, language=receipt.language)


class RenderingPrinter:
    """The core's ReceiptPrinter port over a printer device: a Receipt is rendered, then printed.

    Errors (PaperOut, PrinterOffline) pass through, so the session can tell the patron.
    """

    def __init__(self, device: Any, width: int | None = None, max_title: int = 0) -> None:
        self.device = device
        # 0 or None: the printer's own columns (its profile and font, or [printer] width).
        self.width = width or getattr(device, "columns", 0) or 42
        self.max_title = max_title

    def print_receipt(self, receipt: object) -> str:
        document = (
            render_receipt(receipt, width=self.width, max_title=self.max_title)
            if isinstance(receipt, Receipt)
            else receipt
        )
        return self.device.print_receipt(document)


class ReceiptMailer:
    """Sends a receipt as a plain-text e-mail in the patron's language (`[printer] email_url`):
    `smtp://HOST[:PORT]` through an SMTP relay, or `file:DIR` writing one .eml per receipt (demo,
    tests). The address comes from the library system and is never logged."""

    def __init__(
        self, url: str, sender: str, *, width: int = 42, base: Any = None, timeout_s: float = 10.0
    ) -> None:
        scheme, _, rest = url.partition(":")
        self.scheme = scheme.lower()
        if self.scheme not in ("smtp", "file"):
            raise MailError(f"printer.email_url {url!r}: expected smtp://HOST[:PORT] or file:DIR")
        self.sender = sender
        self.width = width or 42
        self.timeout_s = timeout_s
        if self.scheme == "file":
            folder = Path(rest or "outbox")
            self.folder = folder if folder.is_absolute() or base is None else Path(base) / folder
        else:
            host, _, port = rest.lstrip("/").partition(":")
            if not host:
                raise MailError(f"printer.email_url {url!r}: no mail server named")
            self.host, self.port = host, int(port) if port.isdigit() else 25

    def message(self, receipt: Receipt, address: str) -> Any:
        if (
            for_email(address) != address
            or address.count("@") != 1
            or any(c in address for c in " <>,;")
        ):
            raise MailError(
                "the patron's e-mail address from the library system is not usable; no receipt mailed"
            )
        # The mail modules (3 MiB) only on a kiosk that mails receipts (docs/performance.md).
        from email.message import EmailMessage  # lazy: only where receipts are mailed

        document = render_receipt(receipt, width=self.width, clean=for_email)
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = address
        mail["Subject"] = for_email(
            f"{receipt.library_name}: {translator(receipt.language or 'lv').gettext(KIND_TITLES[receipt.kind])}"
        )
        mail.set_content(for_email(document.text, multiline=True) + "\n", charset="utf-8")
        return mail

    def __call__(self, receipt: Receipt, address: str) -> None:
        """The session's mailer port: raises MailError when the receipt could not be sent."""
        import smtplib  # lazy: only where receipts are mailed

        mail = self.message(receipt, address)
        try:
            if self.scheme == "file":
                self.folder.mkdir(parents=True, exist_ok=True)
                (
                    self.folder / f"{receipt.when:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:8]}.eml"
                ).write_bytes(bytes(mail))
                return
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
                smtp.send_message(mail)
        except (OSError, smtplib.SMTPException) as exc:
            # A refusing server names the recipient (SMTPRecipientsRefused): masked for the log.
            reason = str(exc).replace(address, mask_email(address)) if address else str(exc)
            raise MailError(f"receipt e-mail not sent through {self.scheme}: {reason}") from None


class MailError(KioskError):
    """A receipt e-mail could not be sent (mail server unreachable, folder not writable)."""
