"""A kiosk process for the multi-process tests: what `kiosk run` does with the journal, minus the UI.

    python tests/sync/kiosk_proc.py CONFIG [checkout:PATRON:ITEM | checkin:ITEM | renew:PATRON:ITEM]...

It builds the circulation service from CONFIG, forwards in a background thread as `kiosk run`
does, performs the listed transactions online in order, forwards once more and prints one JSON
line per transaction (ok, in_doubt, queued, journal id).
"""

from __future__ import annotations

import json
import sys

from kiosk import config as kiosk_config
from kiosk.sync.circulation import build_circulation


def main(argv: list[str]) -> int:
    cfg = kiosk_config.load(argv[0])
    svc = build_circulation(cfg)
    svc.forwarder.start(0.005)
    try:
        for action in argv[1:]:
            kind, *args = action.split(":")
            if kind == "checkout":
                res = svc.checkout(args[0], args[1])
            elif kind == "checkin":
                res = svc.checkin(args[0])
            elif kind == "renew":
                res = svc.renew(args[0], args[1])
            else:
                raise SystemExit(f"unknown action {action!r}")
            print(
                json.dumps(
                    {
                        "action": action,
                        "ok": res.ok,
                        "in_doubt": res.in_doubt,
                        "queued": res.queued,
                        "id": res.journal_id,
                    }
                ),
                flush=True,
            )
        svc.forward_offline()
    finally:
        svc.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
