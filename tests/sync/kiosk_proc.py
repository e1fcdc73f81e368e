"""A kiosk process for the multi-process tests: what `kiosk run` does with the journal, minus the UI.

    python tests/sync/kiosk_proc.py CONFIG [--sync] [--kill-after-us N] [ACTION ...]

ACTION is checkout:PATRON:ITEM, checkin:ITEM or renew:PATRON:ITEM. It builds the circulation
service from CONFIG, forwards in a background thread as `kiosk run` does, performs the actions
online in order and prints one JSON line per transaction (what the patron was told), then
forwards once more. `--sync` only forwards, as `kiosk sync` does. `--kill-after-us N` kills the
process with SIGKILL N microseconds after the service is up: a power cut at a random point.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading

from kiosk import config as kiosk_config
from kiosk.sync.circulation import build_circulation
from kiosk.sync.sip2.client import Sip2LinkBusy


def main(argv: list[str]) -> int:
    args = list(argv)
    cfg = kiosk_config.load(args.pop(0))
    sync_only = "--sync" in args
    if sync_only:
        args.remove("--sync")
    kill_after_us = None
    if "--kill-after-us" in args:
        i = args.index("--kill-after-us")
        kill_after_us = int(args[i + 1])
        del args[i : i + 2]
    svc = build_circulation(cfg)
    if kill_after_us is not None:
        timer = threading.Timer(kill_after_us / 1e6, lambda: os.kill(os.getpid(), signal.SIGKILL))
        timer.daemon = True
        timer.start()
    if sync_only:
        print(json.dumps(svc.forward_offline().to_json()), flush=True)
        svc.close()
        return 0
    svc.forwarder.start(0.005)
    try:
        for action in args:
            kind, *rest = action.split(":")
            try:
                if kind == "checkout":
                    res = svc.checkout(rest[0], rest[1])
                elif kind == "checkin":
                    res = svc.checkin(rest[0])
                elif kind == "renew":
                    res = svc.renew(rest[0], rest[1])
                else:
                    raise SystemExit(f"unknown action {action!r}")
            except Sip2LinkBusy as exc:
                # The link stayed busy past the call's deadline; nothing was sent or journaled.
                # The touch screen shows this as "not done" (CirculationResult.service_failed).
                print(json.dumps({"action": action, "ok": False, "busy": str(exc)}), flush=True)
                continue
            told = {"action": action, "ok": res.ok, "in_doubt": res.in_doubt, "queued": res.queued}
            print(json.dumps({**told, "id": res.journal_id}), flush=True)
        svc.forward_offline()
    finally:
        svc.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
