"""Configuration faults of the library-system link, told apart from outages.

A refused login, a CA file that is not there, a client certificate that cannot be read: waiting
does not mend them, so they are reported as one line naming the key and the fix — never as "the
library system is offline" (docs/operations.md, "Exit codes").
"""

from __future__ import annotations

import os
from typing import Any


def sip2_file_faults(sip2: Any) -> list[str]:
    """One line per `[sip2]` file setting that names a file the kiosk cannot read."""
    lines: list[str] = []
    if not getattr(sip2, "tls", False):
        return lines
    for key in ("tls_ca_file", "tls_client_cert"):
        value = getattr(sip2, key, "")
        if not value:
            continue
        if not os.path.exists(value):
            lines.append(f"[sip2] {key}: {value} does not exist")
        elif not os.access(value, os.R_OK):
            lines.append(
                f"[sip2] {key}: {value} is not readable by this user (give the kiosk group read access)"
            )
    return lines


def login_refused(sip2: Any) -> str:
    """The line for a `94` login answer with ok 0."""
    return (
        f"[sip2] password: the library system refused the login of {getattr(sip2, 'username', '')!r} (94 0); "
        "check [sip2] username, password and location_code with the library system's administrator"
    )


def tls_failed(sip2: Any, detail: str) -> str:
    """The line for a TLS handshake that failed after the TCP connection opened."""
    return (
        f"[sip2] tls: {detail}; the port does not speak TLS, or the server's certificate does not "
        "match [sip2] host and tls_ca_file"
    )
