"""A configuration fault is not an outage, on the patron's screen too: a refused SIP2 login puts the
real app out of service (plain words for the patron, no offline banner, no loans queued), and the
technician's line naming the key is in the log."""

from __future__ import annotations

import dataclasses
import logging
import sys
from typing import Any

import pytest

pytestmark = pytest.mark.ui


def test_a_refused_login_puts_the_real_app_out_of_service(
    kiosk: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    module = sys.modules[type(kiosk).__module__]
    make_config = module.make_config

    def wrong_password(*args: Any, **kwargs: Any) -> Any:
        cfg = make_config(*args, **kwargs)
        return dataclasses.replace(
            cfg, sip2=dataclasses.replace(cfg.sip2, password="not-the-password")
        )

    monkeypatch.setattr(module, "make_config", wrong_password)
    caplog.set_level(logging.ERROR)
    p = kiosk.start(prefix="config-fault-")
    p.wait_screen("out_of_service")
    app = p.app
    assert "sip2.password" in app.config_fault or "[sip2] password" in app.config_fault
    assert app.offline_text == ""  # not an outage: nothing is offered offline
    assert any("password" in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)
    shown = " ".join(str(getattr(w, "text", "")) for w in app.screen("out_of_service").walk())
    assert "password" not in shown
    assert "94" not in shown  # the patron gets plain words only
    p.screenshot("config-fault-out-of-service")
