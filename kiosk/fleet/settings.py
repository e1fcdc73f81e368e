"""The configuration sections of fleet operation ([metrics], [alerts], [status_page], [site]).

They are plain frozen dataclasses so kiosk.config validates them like every other section.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricsSection:
    """The Prometheus exporter. Off unless enabled: a demo or a developer's machine opens no port."""

    enabled: bool = False
    listen: str = (
        "127.0.0.1:9464"  # HOST:PORT; 0.0.0.0:9464 for a central Prometheus on the LAN/VPN
    )
    sample_interval_s: float = 10.0  # how often queue, link and device states are looked at
    certfile: str = ""  # TLS (prometheus-client's own support); with keyfile
    keyfile: str = ""
    client_cafile: str = ""  # require client certificates signed by this CA


@dataclass(frozen=True)
class AlertsSection:
    """Where urgent events go: a webhook, Alertmanager and e-mail, through a durable queue."""

    queue_path: str = "var/alerts.sqlite"
    webhook_url: str = ""
    webhook_token: str = ""  # sent as `Authorization: Bearer ...`
    alertmanager_url: str = ""  # e.g. http://alertmanager:9093 (POST /api/v2/alerts)
    email_url: str = ""  # smtp://HOST[:PORT] or smtp+starttls://HOST[:PORT]
    email_from: str = "kiosk@localhost"
    email_to: tuple[str, ...] = ()
    email_username: str = ""
    email_password: str = ""
    timeout_s: float = 10.0
    retry_initial_s: float = 5.0  # first retry after a failed delivery; doubles up to retry_max_s
    retry_max_s: float = 600.0
    resolve_after_s: float = 3600.0  # Alertmanager: a one-off event stays firing this long
    desk_hours: str = (
        ""  # e.g. "09:00-20:00": a book drop alerts for items meant for the desk outside them
    )


@dataclass(frozen=True)
class StatusPageSection:
    """The technician's status page in a browser: off by default, read-only without the action token."""

    enabled: bool = False
    listen: str = "127.0.0.1:9465"
    token: str = ""  # required to see the page
    action_token: str = ""  # required for actions (out of service, forward now, test print)


@dataclass(frozen=True)
class SiteSection:
    """The site file shared by every kiosk of a library, under this kiosk's own file."""

    file: str = ""  # e.g. /etc/kiosk/site.toml; $KIOSK_SITE_CONFIG overrides
    last_good: str = "var/site.last-good.toml"  # the copy used when the site file is broken
