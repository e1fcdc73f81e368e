"""sd_notify readiness and watchdog pings over a real AF_UNIX datagram socket."""

from __future__ import annotations

import os
import socket

import pytest

from kiosk.watchdog import Notifier


@pytest.fixture
def notify_socket(tmp_path):
    path = str(tmp_path / "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(5)
    yield path, s
    s.close()


def test_ready_and_ping(notify_socket):
    path, server = notify_socket
    n = Notifier.from_env({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "20000000"})
    assert n.enabled
    assert n.ping_interval_s == 10.0
    assert n.ready("serving")
    ready = server.recv(4096).decode().split("\n")
    assert "READY=1" in ready
    assert "STATUS=serving" in ready
    assert f"MAINPID={os.getpid()}" in ready
    assert n.ping()
    assert server.recv(4096) == b"WATCHDOG=1"
    n.close()


def test_abstract_namespace_address():
    name = f"kiosk-test-{os.getpid()}"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind("\0" + name)
    s.settimeout(5)
    try:
        n = Notifier.from_env({"NOTIFY_SOCKET": "@" + name})
        assert n.stopping()
        assert s.recv(100) == b"STOPPING=1"
    finally:
        s.close()


def test_without_systemd_nothing_is_sent():
    n = Notifier.from_env({})
    assert not n.enabled
    assert n.ping_interval_s is None
    assert n.ping() is False


def test_watchdog_meant_for_another_pid_is_ignored(notify_socket):
    path, _ = notify_socket
    n = Notifier.from_env(
        {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(os.getpid() + 1)}
    )
    assert n.ping_interval_s is None


def test_unreachable_socket_returns_false(tmp_path):
    n = Notifier(str(tmp_path / "gone.sock"), 1_000_000)
    assert n.ping() is False
    assert n.ping() is False


@pytest.mark.ui
def test_kivy_main_loop_pings(notify_socket):
    from kivy.clock import Clock

    from kiosk.watchdog import start_kivy_watchdog

    path, server = notify_socket
    n = Notifier(path, 100_000)  # 0.1 s period: pings every 0.05 s
    event = start_kivy_watchdog(n)
    try:
        assert b"READY=1" in server.recv(4096)
        assert server.recv(100) == b"WATCHDOG=1"  # the immediate one
        # A UI thread that does not run the Kivy clock (hung) sends nothing, however long it takes.
        server.settimeout(0.25)
        with pytest.raises(TimeoutError):
            server.recv(100)
        server.settimeout(0.01)
        got = 0
        for _ in range(400):  # bounded: pump the Kivy clock until two scheduled pings arrived
            Clock.tick()
            try:
                got += server.recv(100) == b"WATCHDOG=1"
            except TimeoutError:
                pass
            if got >= 2:
                break
        assert got >= 2
        event.cancel()
        Clock.tick()
        server.settimeout(0.2)
        with pytest.raises(TimeoutError):
            server.recv(100)  # a cancelled (or hung) loop stops the pings
    finally:
        event.cancel()
