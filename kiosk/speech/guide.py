"""Speech and keypad operation inside the kiosk app: the Speaker, the Narrator and the keypad
FocusNavigator wired to the app's snapshots and key presses.

The app calls five hooks (screen shown with a session, book-drop or return snapshot; a key; a
card presented; stop). Speech switches on with the first keypad key of a visit (EZ Access: any
EZ key starts speech mode), the speech key, a headset (kiosk/speech/headset.py) or the site
setting `[speech] mode = "always"`, and goes off again when the visit ends.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Any

from kiosk.i18n import translator
from kiosk.speech.build import make_speaker
from kiosk.speech.headset import HeadsetWatcher
from kiosk.speech.keys import DIGIT_KEYS
from kiosk.speech.masking import digit_deleted, digit_entered
from kiosk.speech.narration import Narrator, say
from kiosk.speech.port import SpeechEngine

if TYPE_CHECKING:
    from kiosk.speech.speaker import Speaker

log = logging.getLogger(__name__)

# Buttons the back key activates, first found wins (catalog msgids of their labels).
BACK_LABELS = ("Cancel", "Back to my items", "Back", "No receipt", "Done")
# Leaving these for the welcome screen ends a visit; a refused card or a cancelled PIN does not
# (the patron is still there, and must hear why), the idle rule in `tick` covers walking away.
_VISIT_STAGES = ("active", "finishing", "goodbye")
TIMED_OUT = "timed_out"  # the screen after an idle logout


class SpeechGuide:
    """One per app: speaks what the screens show and lets the keypad drive them."""

    def __init__(
        self, app: Any, engine: SpeechEngine | None = None, today: Callable[[], date] = date.today
    ) -> None:
        from kiosk.screens.focus import (  # lazy: Kivy widgets, in the app only
            FocusNavigator,
            KeyMap,
        )

        self.app = app
        cfg = app.cfg
        self.speaker: Speaker = make_speaker(cfg.speech, engine)
        self.narrator = Narrator(cfg.kiosk.library_name, today)
        self.keypad_enabled = cfg.keypad.enabled
        self.navigator = FocusNavigator(
            KeyMap.from_section(cfg.keypad),
            self._roots,
            speak=self._say_now,
            lang=lambda: self.lang,
            on_action=self._on_action,
            ring_width=cfg.keypad.ring_width,
            ring_color=cfg.keypad.ring_color,
        )
        self.screen_name = ""
        self._switched_off = False  # the patron turned speech off with the speech key in this visit
        self._last_key_at = 0.0
        self._headset: Any = None
        self.drop_lang = (
            cfg.kiosk.default_language
        )  # the book drop shows every language; speech picks one
        self._last_activity = 0.0
        self._typed: list[str] = []
        self._end_pending = False

    @property
    def lang(self) -> str:
        """The language speech uses: the visit's, or at the book drop the one chosen with up/down."""
        return self.drop_lang if self._at_bookdrop else str(self.app.lang)

    @property
    def _at_bookdrop(self) -> bool:
        return self.screen_name.startswith("bookdrop")

    # -- the app's hooks ---------------------------------------------------------------------

    def session_shown(self, previous: Any, state: Any, name: str) -> None:
        """After the app rendered a session snapshot on screen `name`."""
        stage = getattr(state.stage, "value", "")
        was = getattr(getattr(previous, "stage", None), "value", "welcome")
        if stage == "welcome" and was in _VISIT_STAGES:
            if name == TIMED_OUT:
                self._end_pending = True  # the patron must still hear why the visit ended
            else:
                self.end_visit()
        elif self._end_pending and name != TIMED_OUT:
            self.end_visit()
        lang = state.language or self.lang
        texts: list[str] = []
        if name != self.screen_name:
            self._screen_changed(name)
            self._last_activity = self._now()  # a new screen: the idle time counts from here
            texts += self._screen_texts(name, state, lang)
        elif previous is not None and previous.language != state.language:
            texts += self.narrator.screen(name, state, lang)  # the patron chose a language: hear it
        texts += self.narrator.session(previous, state, lang)
        if state.idle_warning and not (previous is not None and previous.idle_warning):
            texts.append(self.narrator.idle(int(round(state.seconds_left or 0)), lang))
        self._say(texts, lang)

    def _screen_texts(self, name: str, state: Any, lang: str) -> list[str]:
        if name == TIMED_OUT:  # the screen words it in the patron's language; say the same
            screen = self.app.screen(name)
            return [
                str(getattr(screen, "heading", "")),
                " ".join(str(getattr(screen, "body", "")).split()),
            ]
        return self.narrator.screen(name, state, lang)

    def bookdrop_shown(self, previous: Any, state: Any, name: str) -> None:
        texts: list[str] = []
        changed = name != self.screen_name
        if changed:
            self._screen_changed(name)
        lang = self.lang
        if changed:
            texts += self.narrator.screen(name, state, lang)
        said = self.narrator.bookdrop(previous, state, lang)
        if said:
            self._last_activity = self._now()
        self._say(texts + said, lang)

    def returns_shown(self, previous: Any, state: Any) -> None:
        lang = self.lang
        self._last_activity = self._now()
        texts: list[str] = []
        if self.screen_name != "returns":
            self._screen_changed("returns")
            texts += self.narrator.screen("returns", state, lang)
        texts += self.narrator.returned(previous, state, lang)
        self._say(texts, lang)

    def card_presented(self, number: str) -> None:
        """A card number read or typed: it is never spoken from now until the visit ends."""
        self.speaker.guard(number)

    def on_key(self, keycode: int) -> bool:
        """A key the app did not use (not a scanner's Enter); True when the keypad took it."""
        if not self.keypad_enabled or str(getattr(self.app, "current_screen", "")).startswith(
            "maintenance"
        ):
            return False  # the technician's screens keep their own keys
        nav = self.navigator
        focused = nav.focused
        action = nav.keymap.action(keycode)
        digit = DIGIT_KEYS.get(keycode) if action is None else None
        if action is None and digit is None:
            return False
        sp = self.speaker
        if (
            action is not None
            and action != "speech"
            and not sp.enabled
            and not self._switched_off
            and sp.enable("keypad")
        ):
            # EZ Access: the first key of a visit starts speech and says where the patron is.
            self._note_activity()
            nav.active = True
            nav.screen_changed()
            self._intro()
            return True
        if self._at_bookdrop and action in ("up", "down", "enter"):
            self._note_activity()
            if action != "enter":
                self._next_drop_language(1 if action == "down" else -1)
            self._say(self.narrator.screen(self.screen_name, None, self.lang), self.lang)
            return True
        if not nav.handle_key(keycode):
            return False
        if digit is not None:
            self._typed.append(digit)  # typed: its text input must not reach the scanner input too
            self._after_entry(digit)
        elif action == "erase":
            self._after_entry("BACKSPACE")
        elif action == "enter" and focused is not None:
            key = str(getattr(focused, "key", "") or "")
            if key:
                self._after_entry(key)
        return True

    def took_text(self, text: str) -> bool:
        """The text input that follows a keypad digit the navigator already typed: drop it."""
        if self._typed and text == self._typed[0]:
            self._typed.pop(0)
            return True
        self._typed.clear()
        return False

    def end_visit(self) -> None:
        """The visit is over: speech back to the site's setting, focus ring gone, secrets forgotten."""
        self.speaker.end_visit()
        self.navigator.deactivate()
        self._switched_off = False
        self._end_pending = False
        if self._headset is not None and self._headset.plugged:
            self.speaker.enable("headset")  # still plugged in: the next patron hears the kiosk too

    def start(self) -> None:
        """When the app starts: watch the headset jack if the site names its input device."""
        device = self.app.cfg.speech.headset_device
        if device:
            self.watch_headset(device)

    def close(self) -> None:
        if self._headset is not None:
            self._headset.stop()
        self.speaker.close()

    # -- headset -----------------------------------------------------------------------------

    def headset_changed(self, plugged: bool) -> None:
        """The headset jack reported a plug or unplug (UI thread)."""
        if plugged:
            if self.speaker.enable("headset"):
                self._switched_off = False
                self._intro()
        elif not self.speaker.always_on:
            self.speaker.disable()

    def watch_headset(self, device: str) -> None:
        from kivy.clock import Clock  # lazy: Kivy, in the app only

        self._headset = HeadsetWatcher(
            device, lambda plugged: Clock.schedule_once(lambda _dt: self.headset_changed(plugged))
        )
        self._headset.start()

    # -- inside ------------------------------------------------------------------------------

    def _roots(self) -> list[Any]:
        manager = getattr(self.app, "manager", None)
        if manager is None or manager.current_screen is None:
            return []
        root = getattr(self.app, "kiosk_root", None)
        warning = getattr(root, "_warning", None)
        if warning is not None:
            return [warning]  # while the logout warning is up, only its button counts
        topbar = getattr(root, "ids", {}).get("topbar")
        return [manager.current_screen] + ([topbar] if topbar is not None else [])

    def _screen_changed(self, name: str) -> None:
        self.screen_name = name
        self.navigator.screen_changed()

    def _say(self, texts: list[str], lang: str) -> None:
        text = " ".join(t for t in texts if t)
        if text:
            self.speaker.say(text, lang)

    def _say_now(self, text: str) -> None:
        self.speaker.say(text, self.lang)

    def _intro(self) -> None:
        lang = self.lang
        self._say(
            [
                say("speech_on", lang),
                *self.narrator.screen(self.screen_name, getattr(self.app, "state", None), lang),
            ],
            lang,
        )

    def _note_activity(self) -> None:
        self._last_activity = self._now()
        note = getattr(self.app, "note_activity", None)
        if note is not None:
            note()

    def _now(self) -> float:
        now = getattr(self.app, "_now", None)
        return float(now()) if now is not None else 0.0

    def _next_drop_language(self, step: int) -> None:
        languages = list(self.app.cfg.kiosk.languages)
        at = languages.index(self.drop_lang) if self.drop_lang in languages else 0
        self.drop_lang = languages[(at + step) % len(languages)]

    def tick(self) -> None:
        """Once a second from the app. Outside a visit (the book drop, returns without a card, a
        patron who pressed a key and walked away) speech goes off after the idle time without a
        key or an item; a visit's own end is `end_visit`."""
        state = getattr(self.app, "state", None)
        outside_visit = (
            self._at_bookdrop or state is None or getattr(state.stage, "value", "") == "welcome"
        )
        if outside_visit and self.speaker.enabled and not self.speaker.always_on:
            if self._now() - self._last_activity > self.app.cfg.ui.idle_timeout_s:
                self.end_visit()
                self.drop_lang = self.app.cfg.kiosk.default_language

    def _after_entry(self, key: str) -> None:
        from kiosk.screens.widgets import KeyPad  # lazy: Kivy widgets, in the app only

        lang = self.lang
        for root in self._roots():
            for widget in root.walk(restrict=True):
                if isinstance(widget, KeyPad) and len(widget.text) >= 3:
                    self.speaker.guard(widget.text)  # the PIN or card number typed so far
        if key == "BACKSPACE" or key == "CLEAR":
            self.speaker.say(digit_deleted(lang), lang)
        elif key.isdigit():
            self.speaker.say(digit_entered(lang), lang)

    def _on_action(self, name: str) -> bool:
        lang = self.lang
        sp = self.speaker
        if name == "key":
            self._note_activity()
            return True
        if name == "speech":
            if sp.enabled:
                sp.say(say("speech_off", lang), lang)
                sp.disable()
                self._switched_off = True
            else:
                self._switched_off = False
                if sp.enable("speech key"):
                    self._intro()
            return True
        if name == "help":
            sp.say(
                self.narrator.help(self.screen_name, getattr(self.app, "state", None), lang), lang
            )
        elif name == "repeat":
            sp.repeat()
        elif name in ("louder", "quieter", "faster", "slower"):
            getattr(sp, name)()
            sp.say(say(name, lang), lang)
        elif name == "back":
            return self._back()
        return True

    def _back(self) -> bool:
        tr = translator(self.lang).gettext
        from kiosk.screens.focus import focusables, label_of  # lazy: Kivy widgets, in the app only

        items = focusables(self._roots())
        for msgid in BACK_LABELS:
            for widget in items:
                if label_of(widget, self.lang) == tr(msgid):
                    widget.trigger_action(duration=0)
                    return True
        return False
