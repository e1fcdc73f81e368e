"""Layered configuration: a site file shared by every kiosk of a library, under the kiosk's own file.

The kiosk file names the site file (`[site] file`, or $KIOSK_SITE_CONFIG); tables merge key by
key, the kiosk file winning, and lists (including `[[routing]]`) are replaced whole. Each value's
origin (default, site, kiosk) is kept for `kiosk config show --resolved`.

A broken site file never stops a kiosk: the last good copy (`[site] last_good`) is used instead,
and the problem is kept in the load report so the running kiosk alerts staff. A broken kiosk
file is still an error: it is the one file a technician edits on the kiosk itself.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiosk import config as kconfig
from kiosk.errors import ConfigError

log = logging.getLogger(__name__)

SITE_ENV = "KIOSK_SITE_CONFIG"
DEFAULT = "default"
SITE = "site"
LAST_GOOD = "site (last good copy)"
KIOSK = "kiosk"

# Keys whose values are never printed, in any section.
SECRET_WORDS = ("password", "token", "pin_hash", "secret", "keyfile", "cards")
MASK = "********"


@dataclass(frozen=True)
class LoadReport:
    """How a configuration was put together: its files, each key's origin and any site problem."""

    kiosk_file: str
    site_file: str = ""
    site_used: str = ""  # "", SITE or LAST_GOOD
    origins: Mapping[str, str] = field(default_factory=dict)  # "section.key" -> origin
    problems: tuple[str, ...] = ()
    site_hash: str = ""  # of the site file's bytes in use: kiosks on the same site version share it


_reports: dict[str, LoadReport] = {}


def report_for(cfg: kconfig.Config) -> LoadReport:
    """The load report of a configuration loaded from a file (a plain one for other sources)."""
    return _reports.get(cfg.source) or LoadReport(kiosk_file=cfg.source)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: site configuration file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read site configuration ({exc})") from None
    return kconfig.read_toml(text, str(path))


def merge(lower: Mapping[str, Any], upper: Mapping[str, Any]) -> dict[str, Any]:
    """`upper` over `lower`: tables merge key by key, anything else (lists too) is replaced."""
    out = dict(lower)
    for key, value in upper.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def _leaves(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_leaves(value, name + "."))
        else:
            out[name] = value
    return out


def _site_path(kiosk_path: Path, data: Mapping[str, Any]) -> Path | None:
    named = os.environ.get(SITE_ENV) or str((data.get("site") or {}).get("file") or "")
    if not named:
        return None
    p = Path(named).expanduser()
    return p if p.is_absolute() else kiosk_path.resolve().parent / p


def load_layers(path: Path, text: str) -> kconfig.Config:
    """The configuration of the kiosk file at `path` (its `text`), over the site file it names."""
    source = str(path.resolve())
    kiosk_data = kconfig.read_toml(text, source)
    site = _site_path(path, kiosk_data)
    if site is None:
        cfg = kconfig.from_data(kiosk_data, source)
        origins = dict.fromkeys(_leaves(kiosk_data), KIOSK)
        _reports[source] = LoadReport(kiosk_file=source, origins=origins)
        return cfg
    last_good = kconfig.Config(source=source).resolve_path(
        str((kiosk_data.get("site") or {}).get("last_good") or kconfig.SiteSection().last_good)
    )
    problems: list[str] = []
    try:
        site_data = _read_toml(site)
        site_data.pop("site", None)  # which site file to use is each kiosk's own choice
        cfg = kconfig.from_data(merge(site_data, kiosk_data), source)
        site_hash = file_hash(site)
    except ConfigError as exc:
        problems.append(f"site configuration rejected, the kiosk keeps running without it: {exc}")
        log.error("%s", problems[-1])
    else:
        _keep_last_good(site, last_good)
        _reports[source] = _report(source, site, SITE, site_data, kiosk_data, problems, site_hash)
        return cfg
    if last_good.exists():
        try:
            site_data = _read_toml(last_good)
            site_data.pop("site", None)
            cfg = kconfig.from_data(merge(site_data, kiosk_data), source)
        except ConfigError as exc:
            problems.append(f"last good site copy unusable too: {exc}")
            log.error("%s", problems[-1])
        else:
            problems.append(f"using the last good site configuration from {last_good}")
            _reports[source] = _report(
                source, site, LAST_GOOD, site_data, kiosk_data, problems, file_hash(last_good)
            )
            return cfg
    cfg = kconfig.from_data(kiosk_data, source)
    problems.append(
        "no usable site configuration: running on this kiosk's own file and the defaults"
    )
    _reports[source] = _report(source, site, "", {}, kiosk_data, problems)
    return cfg


def _report(
    source: str,
    site: Path,
    used: str,
    site_data: Mapping[str, Any],
    kiosk_data: Mapping[str, Any],
    problems: list[str],
    site_hash: str = "",
) -> LoadReport:
    origins = dict.fromkeys(_leaves(site_data), used or SITE)
    origins.update(dict.fromkeys(_leaves(kiosk_data), KIOSK))
    return LoadReport(source, str(site), used, origins, tuple(problems), site_hash)


def file_hash(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    except OSError:
        return ""


def _keep_last_good(site: Path, last_good: Path) -> None:
    """Copy a site file that loaded well, atomically, so a later broken one has a fallback."""
    try:
        data = site.read_bytes()
        if last_good.exists() and last_good.read_bytes() == data:
            return
        last_good.parent.mkdir(parents=True, exist_ok=True)
        tmp = last_good.with_name(last_good.name + ".tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, last_good)
    except OSError as exc:
        log.warning("could not keep a copy of the site configuration at %s: %s", last_good, exc)


def _secret(key: str) -> bool:
    name = key.rsplit(".", 1)[-1].lower()
    return any(word in name for word in SECRET_WORDS)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def resolved(cfg: kconfig.Config) -> dict[str, Any]:
    """The configuration as nested plain values (no `source`), secrets included: not for printing."""
    data = _plain(cfg)
    data.pop("source", None)
    return data


def config_hash(cfg: kconfig.Config) -> str:
    """A short, stable hash of the resolved configuration: the same on every kiosk with the same settings."""
    text = json.dumps(resolved(cfg), sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class ResolvedValue:
    """One key of the resolved configuration, masked if secret, with where it came from."""

    key: str
    value: Any
    origin: str


def resolved_values(cfg: kconfig.Config) -> list[ResolvedValue]:
    """Every key of the resolved configuration in file order, secrets masked, each with its origin."""
    origins = report_for(cfg).origins
    out = []
    for key, value in _leaves(resolved(cfg)).items():
        if _secret(key) and value not in ("", None):
            value = MASK
        out.append(ResolvedValue(key, value, origins.get(key, DEFAULT)))
    return out


def _toml_value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def show(cfg: kconfig.Config) -> str:
    """The resolved configuration as TOML-like text, one key a line with its origin as a comment."""
    rep = report_for(cfg)
    lines = [f"# kiosk file: {rep.kiosk_file}"]
    if rep.site_file:
        lines.append(
            f"# site file: {rep.site_file} ({rep.site_used or 'not used'}, hash {rep.site_hash or '-'})"
        )
    lines += [f"# problem: {p}" for p in rep.problems]
    lines.append(f"# config hash: {config_hash(cfg)}")
    section = None
    for rv in resolved_values(cfg):
        head, _, name = rv.key.rpartition(".")
        if rv.key == "routing":
            head, name = "", "routing"
        if head != section:
            section = head
            lines.append("")
            if head:
                lines.append(f"[{head}]")
        lines.append(f"{name} = {_toml_value(rv.value)}  # {rv.origin}")
    return "\n".join(lines) + "\n"
