"""RFID item readers chosen by a device string, like pyserial's serial_for_url:

    feig:/dev/serial/by-id/usb-FEIG…   feig:socket://10.0.0.5:10001?baud=38400&parity=E&adr=0
    3m:/dev/serial/by-id/usb-3M…       3m:socket://127.0.0.1:4001
    pcsc:ACR1552                        (a substring of the PC/SC reader name)
    sim:  or  sim:<pad name>            (the simulated pad the demo panel drives)

Options after `?` that the kiosk knows (baud, parity, adr, blocks) are taken out; the rest go to
pyserial (e.g. `?logging=debug` for socket URLs).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from kiosk.devices.errors import DeviceError
from kiosk.devices.readers.base import (
    InventoryEntry,
    NotSupported,
    ReaderFrameError,
    SystemInfo,
    TagNotFound,
    TagReader,
    TagWriteError,
    normalize_uid,
)

__all__ = [
    "InventoryEntry",
    "NotSupported",
    "ReaderFrameError",
    "SystemInfo",
    "TagNotFound",
    "TagReader",
    "TagWriteError",
    "normalize_uid",
    "open_reader",
]

_OWN_OPTIONS = {"baud", "parity", "adr", "blocks", "block_size"}


def _split_options(rest: str) -> tuple[str, dict[str, str]]:
    if "?" not in rest:
        return rest, {}
    path, query = rest.split("?", 1)
    own: dict[str, str] = {}
    passthrough = []
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key in _OWN_OPTIONS:
            own[key] = value
        else:
            passthrough.append((key, value))
    if passthrough:
        path += "?" + urlencode(passthrough)
    return path, own


def _int_option(opts: dict[str, str], key: str, default: int, url: str) -> int:
    if key not in opts:
        return default
    try:
        return int(opts[key], 0)
    except ValueError:
        raise DeviceError(
            f"reader URL {url!r}: option {key}={opts[key]!r} is not a number"
        ) from None


def open_reader(url: str, *, timeout_s: float = 1.0, retries: int = 3) -> TagReader:
    """The reader named by `url`; DeviceError says what is wrong with the string or the device."""
    scheme, sep, rest = url.partition(":")
    scheme = scheme.lower()
    if not sep:
        raise DeviceError(f"reader URL {url!r} has no kind; expected feig:, 3m:, pcsc: or sim:")
    if scheme == "sim":
        # only the configured kind's driver is loaded (pyscard is optional)
        from kiosk.devices.readers.sim import (  # lazy: only the configured driver loads
            SimReader,
            get_shared_pad,
        )

        name = rest or "default"
        return SimReader(get_shared_pad(name), name)
    if scheme in ("feig", "3m"):
        port, opts = _split_options(rest)
        if not port:
            raise DeviceError(f"reader URL {url!r} names no serial port or socket:// address")
        parity = opts.get("parity", "E" if scheme == "feig" else "N").upper()
        if parity not in ("N", "E", "O"):
            raise DeviceError(f"reader URL {url!r}: parity must be N, E or O")
        if scheme == "feig":
            # only the configured kind's driver is loaded (pyscard is optional)
            from kiosk.devices.readers.feig import (  # lazy: only the configured driver loads
                FeigReader,
            )

            return FeigReader(
                port,
                timeout_s=timeout_s,
                retries=retries,
                baudrate=_int_option(opts, "baud", 38400, url),
                parity=parity,
                com_adr=_int_option(opts, "adr", 0xFF, url),
                block_order=opts.get("blocks", "msb"),
            )
        # only the configured kind's driver is loaded (pyscard is optional)
        from kiosk.devices.readers.threem import (  # lazy: only the configured driver loads
            ThreeMReader,
        )

        return ThreeMReader(
            port,
            timeout_s=timeout_s,
            retries=retries,
            baudrate=_int_option(opts, "baud", 19200, url),
            parity=parity,
        )
    if scheme == "pcsc":
        # only the configured kind's driver is loaded (pyscard is optional)
        from kiosk.devices.readers.pcsc import PcscReader  # lazy: only the configured driver loads

        name, opts = _split_options(rest)
        return PcscReader(
            name,
            timeout_s=timeout_s,
            retries=retries,
            block_size=_int_option(opts, "block_size", 4, url),
        )
    raise DeviceError(
        f"reader URL {url!r}: unknown kind {scheme!r}; expected feig:, 3m:, pcsc: or sim:"
    )
