"""The C allocator's side of the kiosk's memory: give freed heap back to the system after the
start and after each visit (glibc's `malloc_trim`), and how much of the heap is in use
(`mallinfo2`, for tests and benchmarks). On a C library without them both do nothing.

Python frees its objects at once, but glibc keeps freed heap pages for the next allocation, and
the parts started on their own thread leave theirs in that thread's arena; on a 1 GB kiosk the
difference is worth handing back at the quiet moments (docs/performance.md, memory).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from functools import cache
from typing import Any

log = logging.getLogger(__name__)


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


@cache
def _libc() -> Any:
    """glibc, or None where the C library is another (musl, macOS) or cannot be loaded."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.malloc_trim.restype = ctypes.c_int
        libc.mallinfo2.argtypes = []
        libc.mallinfo2.restype = _MallInfo2
    except (OSError, AttributeError):  # not glibc (>= 2.33): nothing to trim or to ask
        return None
    return libc


def trim() -> bool:
    """Hand the heap's free pages back to the system; True when some were."""
    libc = _libc()
    if libc is None:
        return False
    return bool(libc.malloc_trim(0))


def heap_in_use() -> int | None:
    """Bytes the C allocator has handed out and not had back (all arenas), or None."""
    libc = _libc()
    if libc is None:
        return None
    info = libc.mallinfo2()
    return int(info.uordblks + info.hblkhd)
