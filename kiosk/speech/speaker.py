"""The Speaker: the kiosk's one voice. The UI thread hands it texts; a worker thread drives the engine.

Each new utterance interrupts the one being spoken (EN 301 549 §5.1.3.5), the last one can be
repeated, and the patron's volume and rate last until the end of the visit. Speech is off until
something switches it on: a headset, the speech key, or the site setting `[speech] mode = "always"`.
Every text passes `redact` on the way, so a registered card number or PIN is never spoken.
"""

from __future__ import annotations

import collections
import logging
import threading
from dataclasses import dataclass

from kiosk.speech.masking import redact
from kiosk.speech.port import SpeechEngine, SpeechError, Utterance

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VoiceLimits:
    """The volume (%) and rate (words per minute) the visit starts with, the steps and the bounds."""

    volume: int = 80
    volume_step: int = 10
    min_volume: int = 10
    max_volume: int = 100
    rate: int = 160
    rate_step: int = 20
    min_rate: int = 100
    max_rate: int = 300


class Speaker:
    """Speaks through an engine on its own thread; every public method returns at once."""

    def __init__(
        self,
        engine: SpeechEngine,
        limits: VoiceLimits | None = None,
        *,
        always_on: bool = False,
        allowed: bool = True,
    ) -> None:
        self.engine = engine
        self.limits = limits or VoiceLimits()
        self.allowed = allowed  # False: the site switched speech off ([speech] mode = "off")
        self.always_on = always_on and allowed
        self.enabled = self.always_on
        self.volume = self.limits.volume
        self.rate = self.limits.rate
        self.spoken: list[str] = []  # every text handed to the engine, in order (bounded)
        self._last: tuple[str, str] | None = None
        self._secrets: set[str] = set()
        self._queue: collections.deque[Utterance | None] = collections.deque()
        self._cond = threading.Condition()
        self._busy = False
        self._thread: threading.Thread | None = None
        self._closed = False

    # -- switching ---------------------------------------------------------------------------

    def enable(self, reason: str = "") -> bool:
        """Switch speech on; True when it was off."""
        if not self.allowed:
            return False
        was = self.enabled
        self.enabled = True
        if not was:
            log.info("speech on (%s)", reason or "requested")
        return not was

    def disable(self) -> None:
        if self.enabled:
            log.info("speech off")
        self.enabled = False
        self.interrupt()

    def end_visit(self) -> None:
        """Back to the site's state: off unless always on, default volume and rate, secrets forgotten."""
        self.interrupt()
        self.enabled = self.always_on
        self.volume = self.limits.volume
        self.rate = self.limits.rate
        self._last = None
        self._secrets.clear()

    # -- secrets -----------------------------------------------------------------------------

    def guard(self, secret: str) -> None:
        """Never speak `secret` (a card number or a PIN) until the visit ends."""
        if secret:
            self._secrets.add(secret)

    # -- speaking ----------------------------------------------------------------------------

    def say(self, text: str, lang: str) -> None:
        """Speak `text`, cutting off whatever is being said; nothing happens while speech is off."""
        text = " ".join(text.split())
        if not text:
            return
        text = redact(text, self._secrets, lang)
        self._last = (text, lang)
        if not self.enabled:
            return
        self._post(Utterance(text, lang, self.volume, self.rate))

    def repeat(self) -> bool:
        """Say the last text again; False when nothing was said yet."""
        if self._last is None or not self.enabled:
            return False
        text, lang = self._last
        self._post(Utterance(text, lang, self.volume, self.rate))
        return True

    @property
    def last_text(self) -> str:
        return self._last[0] if self._last else ""

    def interrupt(self) -> None:
        """Stop speaking now (the patron acted)."""
        with self._cond:
            self._queue.clear()
            self._queue.append(None)
            self._cond.notify()
        self._ensure_thread()

    def louder(self) -> int:
        self.volume = min(self.limits.max_volume, self.volume + self.limits.volume_step)
        return self.volume

    def quieter(self) -> int:
        self.volume = max(self.limits.min_volume, self.volume - self.limits.volume_step)
        return self.volume

    def faster(self) -> int:
        self.rate = min(self.limits.max_rate, self.rate + self.limits.rate_step)
        return self.rate

    def slower(self) -> int:
        self.rate = max(self.limits.min_rate, self.rate - self.limits.rate_step)
        return self.rate

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait (bounded) until the worker has handed everything queued to the engine."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._busy, timeout)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._queue.clear()
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.engine.stop()
        except SpeechError as exc:
            log.warning("speech engine did not stop: %s", exc)

    # -- worker ------------------------------------------------------------------------------

    def _post(self, utterance: Utterance) -> None:
        with self._cond:
            if self._closed:
                return
            self._queue.append(utterance)
            self.spoken.append(utterance.text)
            del self.spoken[:-500]
            self._cond.notify()
        self._ensure_thread()

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            with self._cond:
                if self._closed:
                    return
            self._thread = threading.Thread(target=self._run, name="speech", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._closed)
                if self._closed:
                    self._cond.notify_all()
                    return
                item = self._queue.popleft()
                self._busy = True
            try:
                self.engine.stop()
                if item is not None:
                    self.engine.start(item)
            except SpeechError as exc:
                log.warning("speech unavailable: %s", exc)
            except Exception:
                # The speaker thread's last line of defence: the next utterance still plays.
                log.exception("speech engine failed")
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
