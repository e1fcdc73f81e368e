"""Shared fixtures for the sync tests: a real, strict SIP2 ACS (PyPI pysip2) on loopback.

`pysip2_acs` is a small dict-backed library (the demo catalogue) served by pysip2's
SIP2Server; `make_pysip2_acs(...)` builds another with different server options. Tests can
replace one command's behaviour at runtime with `acs.handlers["11"] = fn(req, ctx) -> response`,
read what the ACS executed in `acs.executed`, and get client settings from `acs.settings()`.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import datetime, timedelta
from typing import Any

import pytest

pysip2 = pytest.importorskip("pysip2")
from anyio.from_thread import start_blocking_portal  # noqa: E402
from pysip2 import (  # noqa: E402
    CHECKIN,
    CHECKOUT,
    END_PATRON_SESSION,
    ITEM_INFORMATION,
    LOGIN,
    PATRON_INFORMATION,
    PATRON_STATUS,
    RENEW,
    CheckinResponse,
    CheckoutResponse,
    EndSessionResponse,
    ItemInformationResponse,
    LoginResponse,
    PatronInformationResponse,
    PatronStatusResponse,
    RenewResponse,
    SIP2Server,
)

from kiosk import demo_catalog  # noqa: E402
from kiosk.config import Sip2Section  # noqa: E402

LOGIN_USER = "kiosk"
LOGIN_PASSWORD = "demo"


def _now18() -> str:
    return datetime.now().strftime("%Y%m%d    %H%M%S")


class PysipAcs:
    """A pysip2 server with a small in-memory library behind it."""

    def __init__(self, **server_options: Any) -> None:
        options = {
            "encoding": "utf-8",
            "error_detection": "auto",
            "login_required": True,
            "institution_id": demo_catalog.INSTITUTION,
            "library_name": "Demo bibliotēka",
            "terminal_location": "Ieeja",
        }
        options.update(server_options)
        self.encoding: str = options["encoding"]
        self.server = SIP2Server(**options)
        self.host = "127.0.0.1"
        self.port = 0
        self.patrons = {p.patron_id: p for p in demo_catalog.PATRONS}
        self.titles = {i.item_id: i.title for i in demo_catalog.ITEMS}
        self.loans: dict[str, str] = {
            i.item_id: i.on_loan_to for i in demo_catalog.ITEMS if i.on_loan_to
        }
        self.executed: list[
            tuple[str, ...]
        ] = []  # (command, patron, item) of state-changing requests
        self.handlers: dict[str, Callable[[Any, Any], Any]] = {}
        self.lock = threading.Lock()
        self._register()

    def settings(self, **overrides: Any) -> Sip2Section:
        """Client settings pointing at this ACS (a short timeout keeps fault tests fast)."""
        base = Sip2Section(
            host=self.host,
            port=self.port,
            username=LOGIN_USER,
            password=LOGIN_PASSWORD,
            location_code="DEMO",
            institution_id=demo_catalog.INSTITUTION,
            encoding=self.encoding,
            error_detection="on",
            timeout_s=2.0,
            retries=2,
        )
        return dataclasses.replace(base, **overrides)

    # --- the library -------------------------------------------------------------------------

    def _route(self, route: Any, default: Callable[[Any, Any], Any]) -> None:
        command = route.command_id

        def handler(req: Any, ctx: Any) -> Any:
            fn = self.handlers.get(command, default)
            return fn(req, ctx)

        self.server.route(route)(handler)

    def _register(self) -> None:
        self._route(LOGIN, self._login)
        self._route(PATRON_STATUS, self._patron_status)
        self._route(PATRON_INFORMATION, self._patron_information)
        self._route(CHECKOUT, self._checkout)
        self._route(CHECKIN, self._checkin)
        self._route(RENEW, self._renew)
        self._route(ITEM_INFORMATION, self._item_information)
        self._route(END_PATRON_SESSION, self._end_session)

    def _login(self, req: Any, ctx: Any) -> LoginResponse:
        ok = req.login_user_id == LOGIN_USER and req.login_password == LOGIN_PASSWORD
        return LoginResponse(ok="1" if ok else "0")

    def _status_flags(self, patron_id: str) -> str:
        p = self.patrons.get(patron_id)
        flags = [" "] * 14
        if p is not None and (p.lost_card or p.expired):
            flags[0] = "Y"
            flags[4] = "Y" if p.lost_card else " "
        return "".join(flags)

    def _patron_status(self, req: Any, ctx: Any) -> PatronStatusResponse:
        p = self.patrons.get(req.patron_identifier)
        return PatronStatusResponse(
            patron_status=self._status_flags(req.patron_identifier),
            language=req.language,
            transaction_date=_now18(),
            institution_id=req.institution_id,
            patron_identifier=req.patron_identifier,
            personal_name=p.name if p else "",
            valid_patron="Y" if p else "N",
            valid_patron_password="Y" if p and (not p.pin or p.pin == req.patron_password) else "N",
        )

    def _patron_information(self, req: Any, ctx: Any) -> PatronInformationResponse:
        p = self.patrons.get(req.patron_identifier)
        with self.lock:
            charged = tuple(
                item for item, who in self.loans.items() if who == req.patron_identifier
            )
        return PatronInformationResponse(
            patron_status=self._status_flags(req.patron_identifier),
            language=req.language,
            transaction_date=_now18(),
            hold_items_count="0000",
            overdue_items_count="0000",
            charged_items_count=f"{len(charged):04d}",
            fine_items_count="0000",
            recall_items_count="0000",
            unavailable_holds_count="0000",
            institution_id=req.institution_id,
            patron_identifier=req.patron_identifier,
            personal_name=p.name if p else "",
            valid_patron="Y" if p else "N",
            charged_items=charged if req.summary[2] == "Y" else (),
            screen_message=() if p else ("Nezināms lasītājs",),
        )

    def _due(self) -> str:
        return (datetime.now() + timedelta(days=21)).strftime("%Y%m%d    235959")

    def _checkout(self, req: Any, ctx: Any) -> CheckoutResponse:
        patron, item = req.patron_identifier, req.item_identifier
        with self.lock:
            self.executed.append(("11", patron, item))
            known = patron in self.patrons and item in self.titles
            holder = self.loans.get(item)
            ok = known and holder in (None, patron)
            if ok:
                self.loans[item] = patron
        return CheckoutResponse(
            ok="1" if ok else "0",
            renewal_ok="Y" if ok and holder == patron else "N",
            magnetic_media="N",
            desensitize="Y" if ok else "N",
            transaction_date=_now18(),
            institution_id=req.institution_id,
            patron_identifier=patron,
            item_identifier=item,
            title_identifier=self.titles.get(item, ""),
            due_date=self._due() if ok else "",
            media_type="001",
            screen_message=() if ok else ("Izsniegt nevar",),
        )

    def _checkin(self, req: Any, ctx: Any) -> CheckinResponse:
        item = req.item_identifier
        with self.lock:
            self.executed.append(("09", "", item))
            holder = self.loans.pop(item, None)
        return CheckinResponse(
            ok="1" if holder else "0",
            resensitize="Y" if item in self.titles else "N",
            magnetic_media="N",
            alert="N",
            transaction_date=_now18(),
            institution_id=req.institution_id,
            item_identifier=item,
            permanent_location="Pieaugušo nodaļa",
            title_identifier=self.titles.get(item, ""),
            sort_bin="1",
            patron_identifier=holder,
        )

    def _renew(self, req: Any, ctx: Any) -> RenewResponse:
        item = req.item_identifier or ""
        with self.lock:
            self.executed.append(("29", req.patron_identifier, item))
            ok = self.loans.get(item) == req.patron_identifier
        return RenewResponse(
            ok="1" if ok else "0",
            renewal_ok="Y" if ok else "N",
            magnetic_media="N",
            desensitize="N",
            transaction_date=_now18(),
            institution_id=req.institution_id,
            patron_identifier=req.patron_identifier,
            item_identifier=item,
            title_identifier=self.titles.get(item, ""),
            due_date=self._due() if ok else "",
        )

    def _item_information(self, req: Any, ctx: Any) -> ItemInformationResponse:
        item = req.item_identifier
        with self.lock:
            on_loan = item in self.loans
        return ItemInformationResponse(
            circulation_status="04" if on_loan else "03" if item in self.titles else "01",
            security_marker="01",
            fee_type="01",
            transaction_date=_now18(),
            item_identifier=item,
            title_identifier=self.titles.get(item, ""),
            media_type="001",
        )

    def _end_session(self, req: Any, ctx: Any) -> EndSessionResponse:
        return EndSessionResponse(
            end_session="Y",
            transaction_date=_now18(),
            institution_id=req.institution_id,
            patron_identifier=req.patron_identifier,
        )


@pytest.fixture
def make_pysip2_acs() -> Iterator[Callable[..., PysipAcs]]:
    """Factory: start a pysip2 ACS on an ephemeral loopback port with the given server options."""
    with ExitStack() as stack:

        def make(**server_options: Any) -> PysipAcs:
            acs = PysipAcs(**server_options)
            portal = stack.enter_context(start_blocking_portal())
            acs.port = stack.enter_context(portal.wrap_async_context_manager(acs.server.start()))
            return acs

        yield make


@pytest.fixture
def pysip2_acs(make_pysip2_acs: Callable[..., PysipAcs]) -> PysipAcs:
    """The demo library served by pysip2 (UTF-8, login required, error detection auto)."""
    return make_pysip2_acs()
