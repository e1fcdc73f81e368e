"""Tag security: AFI/EAS writes verified by read-back and retried; a tag that cannot be written
gives ok=False with a message, never an exception."""

from __future__ import annotations

import pytest

from kiosk.config import SecuritySection
from kiosk.devices.readers import open_reader
from kiosk.devices.readers.emulators import FeigEmulator, ThreeMEmulator
from kiosk.devices.readers.sim import SimReader, SimulatedPad, VirtualTag, demo_tag
from kiosk.devices.security import TagSecurityService


def service(pad, **kw):
    return TagSecurityService(SimReader(pad), SecuritySection(**kw), retry_delay_s=0)


@pytest.fixture
def pad():
    return SimulatedPad()


def test_afi_unsecure_and_secure(pad):
    t = pad.place(demo_tag("30000001"))
    svc = service(pad)
    r = svc.unsecure(t.uid)
    assert (r.ok, r.secured, r.attempts, t.afi) == (True, False, 1, 0xC2)
    r = svc.secure(t.uid)
    assert (r.ok, r.secured, t.afi) == (True, True, 0x07)
    assert t.eas is True  # AFI method leaves EAS alone


def test_site_afi_values_are_configuration(pad):
    t = pad.place(VirtualTag("E004010000000001", afi=0xD7))
    svc = service(pad, afi_secured=0xD7, afi_unsecured=0xDA)
    assert svc.unsecure(t.uid).ok and t.afi == 0xDA


def test_reported_write_failure_is_retried(pad):
    t = pad.place(demo_tag("30000001"))
    pad.fail_writes(t.uid, 2)
    r = service(pad, write_retries=3).unsecure(t.uid)
    assert (r.ok, r.attempts, t.afi) == (True, 3, 0xC2)


def test_silent_write_failure_is_caught_by_read_back(pad):
    t = pad.place(demo_tag("30000001"))
    pad.fail_writes(t.uid, 1, silent=True)
    r = service(pad).unsecure(t.uid)
    assert (r.ok, r.attempts, t.afi) == (True, 2, 0xC2)


def test_persistent_failure_returns_not_ok_without_raising(pad):
    t = pad.place(demo_tag("30000001"))
    pad.fail_writes(t.uid, 100, silent=True)
    r = service(pad, write_retries=2).unsecure(t.uid)
    assert (r.ok, r.attempts, t.afi) == (False, 3, 0x07)
    assert "AFI reads 0x07, wanted 0xC2" in r.message and "place the item again" in r.message


def test_tag_gone_and_bad_uid(pad):
    svc = service(pad, write_retries=1)
    r = svc.secure("E0040100000000AA")
    assert not r.ok and "not on the pad" in r.message and r.attempts == 2
    assert not svc.secure("not-a-uid").ok


def test_eas_method(pad):
    t = pad.place(demo_tag("30000001"))
    svc = service(pad, method="eas")
    r = svc.unsecure(t.uid)
    assert r.ok and t.eas is False and t.afi == 0x07
    pad.fail_writes(t.uid, 1, silent=True)
    r = svc.secure(t.uid)
    assert r.ok and r.attempts == 2 and t.eas is True


def test_both_methods(pad):
    t = pad.place(demo_tag("30000001"))
    r = service(pad, method="both").unsecure(t.uid)
    assert r.ok and (t.afi, t.eas) == (0xC2, False)


def test_tag_without_eas_fails_fast_when_eas_is_the_method(pad):
    ti = pad.place(VirtualTag("E007000000000001", eas_supported=False, afi=0x07))
    r = service(pad, method="eas", write_retries=5).unsecure(ti.uid)
    assert not r.ok and r.attempts == 1 and "no EAS bit" in r.message


def test_method_both_secures_a_tag_without_eas_by_its_afi(pad):
    ti = pad.place(VirtualTag("E007000000000001", eas_supported=False, afi=0x07))
    svc = service(pad, method="both", write_retries=5)
    r = svc.unsecure(ti.uid)
    assert (r.ok, r.secured, r.attempts, ti.afi) == (True, False, 1, 0xC2)
    r = svc.secure(ti.uid)
    assert (r.ok, r.secured, r.attempts, ti.afi) == (True, True, 1, 0x07)
    pad.fail_writes(ti.uid, 1, silent=True)  # the AFI still decides, read back as always
    assert svc.unsecure(ti.uid).attempts == 2 and ti.afi == 0xC2


def test_write_landed_but_read_back_lost_is_not_ok_and_says_unverified(pad):
    t = pad.place(demo_tag("30000001"))
    pad.fail_reads(t.uid, 3)
    r = service(pad, write_retries=2).unsecure(t.uid)
    assert not r.ok and "not verified" in r.message
    assert t.afi == 0xC2  # the write did land: only the read-back was lost


def test_lifted_right_after_the_write(pad):
    t = pad.place(demo_tag("30000001"))
    pad.lift_after_write(t.uid)
    r = service(pad, write_retries=2).unsecure(t.uid)
    assert not r.ok and "not on the pad" in r.message and pad.tag(t.uid) is None
    assert t.afi == 0xC2


def test_locked_afi(pad):
    t = pad.place(VirtualTag("E004010000000001", afi=0x07, afi_locked=True))
    r = service(pad, write_retries=1).unsecure(t.uid)
    assert not r.ok and "locked" in r.message


def test_retry_delay_uses_the_injected_sleep(pad):
    t = pad.place(demo_tag("30000001"))
    pad.fail_writes(t.uid, 2)
    slept = []
    svc = TagSecurityService(
        SimReader(pad), SecuritySection(), retry_delay_s=0.05, sleep=slept.append
    )
    assert svc.unsecure(t.uid).ok and slept == [0.05, 0.05]


@pytest.mark.parametrize("emu_cls,kind", [(FeigEmulator, "feig"), (ThreeMEmulator, "3m")])
def test_security_through_serial_readers_with_lost_writes(pad, tmp_path, emu_cls, kind):
    t = pad.place(demo_tag("30000002"))
    with emu_cls(pad).serve_pty(link_dir=tmp_path) as port:
        reader = open_reader(f"{kind}:{port.path}", timeout_s=0.3, retries=1)
        svc = TagSecurityService(reader, SecuritySection(method="both"), retry_delay_s=0)
        pad.fail_writes(t.uid, 1, silent=True)
        r = svc.unsecure(t.uid)
        assert r.ok and r.attempts == 2 and (t.afi, t.eas) == (0xC2, False)
        assert svc.secure(t.uid).ok and (t.afi, t.eas) == (0x07, True)
        reader.close()


@pytest.mark.parametrize("emu_cls,kind", [(FeigEmulator, "feig"), (ThreeMEmulator, "3m")])
def test_method_both_with_a_tag_without_eas_through_serial_readers(pad, tmp_path, emu_cls, kind):
    ti = pad.place(VirtualTag("E007000000000002", eas_supported=False, afi=0x07))
    with emu_cls(pad).serve_pty(link_dir=tmp_path) as port:
        reader = open_reader(f"{kind}:{port.path}", timeout_s=0.3, retries=1)
        svc = TagSecurityService(reader, SecuritySection(method="both"), retry_delay_s=0)
        assert svc.unsecure(ti.uid).ok and ti.afi == 0xC2
        assert svc.secure(ti.uid).ok and ti.afi == 0x07
        reader.close()
