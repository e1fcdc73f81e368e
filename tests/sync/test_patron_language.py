"""The patron's preferred language from the library system: the language field of the 24 and 64
answers, mapped to a kiosk language by the site's `[sip2] patron_languages` (the standard's list
has English 001 and Russian 015 and no Latvian; a code not listed keeps the kiosk's language).
Against the embedded demo library system, where Ivan (LV0004) reads Russian, John (LV0002)
English and Anna (LV0001) Latvian."""

from __future__ import annotations

from datetime import datetime

import pytest

from kiosk.config import ConfigError, OfflineSection, Sip2Section, parse
from kiosk.core.ports import ManualClock
from kiosk.sync.circulation import CirculationService
from kiosk.sync.journal import Journal
from kiosk.sync.sip2.client import Sip2Client

server = pytest.importorskip("kiosk.sync.acs.server")


@pytest.fixture
def acs(tmp_path):
    running = server.start_embedded(f"sqlite:///{tmp_path / 'acs.sqlite'}", fresh=True)
    yield running
    running.stop()


def service(tmp_path, port: int, **sip2: object) -> CirculationService:
    s = Sip2Section(
        host="127.0.0.1",
        port=port,
        username="kiosk",
        password="demo",
        institution_id="DEMO",
        location_code="DEMO",
        timeout_s=2.0,
        retries=1,
        **sip2,  # type: ignore[arg-type]
    )
    clock = ManualClock(datetime.now().replace(microsecond=0))
    return CirculationService(
        Sip2Client(s),
        Journal(tmp_path / "j.sqlite", clock=clock),
        sip2=s,
        offline=OfflineSection(policy="checkin-and-checkout"),
        location="DEMO",
        clock=clock,
    )


@pytest.mark.parametrize("status_only", [False, True], ids=["63-64", "23-24"])
def test_the_patrons_language_comes_from_the_answer(tmp_path, acs, status_only) -> None:
    svc = service(tmp_path, acs.port)
    if status_only:  # a library system without 63 answers 23 with 24
        svc._supported = lambda command: command != "63"  # type: ignore[method-assign]
    try:
        # The kiosk asks in Latvian (000); the answers carry each patron's own language.
        assert svc.identify_patron("LV0004", language="lv").patron.language == "ru"
        assert svc.identify_patron("LV0002", language="lv").patron.language == "en"
        assert svc.identify_patron("LV0001", pin="1234", language="ru").patron.language == ""
    finally:
        svc.client.close()


def test_the_site_maps_the_codes(tmp_path, acs) -> None:
    svc = service(tmp_path, acs.port, patron_languages=("015=lv",))
    try:
        assert svc.identify_patron("LV0004").patron.language == "lv"  # as this site reads 015
        assert svc.identify_patron("LV0002").patron.language == ""  # 001 not listed: keep
    finally:
        svc.client.close()


@pytest.mark.parametrize("entry", ["15=ru", "015=de", "015", "abc=en"])
def test_a_bad_mapping_is_named(entry: str) -> None:
    with pytest.raises(ConfigError, match="sip2.patron_languages"):
        parse(f'[sip2]\npatron_languages = ["{entry}"]\n', "kiosk.toml")
