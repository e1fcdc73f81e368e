"""The patron's screens: welcome, card entry, identifying, PIN, checkout, account, receipt choice,
goodbye, returns and out of service, plus the root layout with the top bar and idle warning.

Each screen renders a session snapshot in `show(state)` and forwards taps to the app; the
wording of refusals and blocks comes from kiosk.screens.texts through the catalogs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kivy.app import App
from kivy.clock import Clock
from kivy.factory import Factory
from kivy.graphics import ClearBuffers, ClearColor
from kivy.lang import Builder
from kivy.properties import BooleanProperty, ListProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.floatlayout import FloatLayout
from kivy.uix.widget import Widget

from kiosk.core.domain import (
    BlockReason,
    ItemStatus,
    LoginProblem,
    ReceiptChoice,
    Refusal,
    uid_key,
)
from kiosk.core.events import Action, PinEntered
from kiosk.core.money import is_nonzero
from kiosk.core.routing import Instruction, ReturnOutcome
from kiosk.i18n import _, translator
from kiosk.screens.base import KioskScreen
from kiosk.screens.texts import block_text, clip, ordered_blocks, refusal_text
from kiosk.screens.widgets import (
    DIGIT_KEYS,
    LETTER_KEYS,
    ItemRow,
    KButton,
    KLabel,
    clipped_by_stencil,
    lay_out_now,
)

if TYPE_CHECKING:  # the snapshots' types only: the workflows load after the first frame
    from kiosk.core.checkout import CheckoutItem
    from kiosk.core.returns import ReturnState
    from kiosk.core.session import SessionState

INSTRUCTION_TEXTS: dict[str, str] = {
    Instruction.DONE: _("Thank you. Put it in the return box."),
    Instruction.HOLD_SHELF: _("Reserved for another reader: put it in the reservations box."),
    Instruction.OTHER_BRANCH: _("Wanted at another branch: put it in the transit box."),
    Instruction.TRANSIT: _("Belongs elsewhere: put it in the transit box."),
    Instruction.SPECIAL: _("Please give it to the staff."),
    Instruction.TAKE_TO_DESK: _("Please take it to the desk."),
    Instruction.PLACE_ALL_PARTS: _("Place all parts of the set on the pad."),
}

LOGIN_PROBLEM_TEXTS: dict[LoginProblem, str] = {
    LoginProblem.BAD_CARD: _("That is not a library card number. Please try again."),
    LoginProblem.UNKNOWN_PATRON: _(
        "This card is not known to the library. Please check the number or ask at the desk."
    ),
    LoginProblem.WRONG_PIN: _("The PIN is not correct. Please try again."),
    LoginProblem.LOCKED_OUT: _("Too many attempts. Please wait a moment or ask at the desk."),
    LoginProblem.LINK_DOWN: _(
        "The library system is not answering. Please try again later or ask at the desk."
    ),
}


def _app() -> Any:
    return App.get_running_app()


def tr(msgid: str) -> str:
    return _app().tr(msgid)


class KioskRoot(FloatLayout):
    """Top bar and screens on the left, the demo panel (if any) on the right, overlays on top."""

    # Screens with language buttons of their own, or none for patrons (maintenance, book drop).
    OWN_LANGUAGE_CHOICE = ("welcome",)
    LANGUAGE_BUTTON_MIN_BAR = 400
    _languages: Any = (
        None  # the language overlay while it is shown (kv builds before __init__ ends)
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._warning: Any = None
        _app().bind(idle_warning=self._idle_changed)

    def on_kv_post(self, base_widget: Any) -> None:
        # The background is a clear of the frame, not a rectangle drawn over it: a window-sized
        # rectangle is blended pixel by pixel, a quarter of a 1280x800 frame under Mesa's
        # software renderer and fill rate a Pi's GPU is short of (docs/performance.md, "The
        # background is a clear"). The root covers the window, so clearing all of it hides
        # nothing; an export of the root to an image is cleared the same way.
        theme = _app().theme
        with self.ids.main.canvas.before:
            background = ClearColor(*theme.bg)
            ClearBuffers(clear_color=True)
        theme.bind(bg=lambda _theme, rgba: setattr(background, "rgba", rgba))
        # Held here: `ids` keep only weak references, and the button is off the bar at times.
        self._language_button = self.ids.language_button.__self__
        self.ids.manager.bind(current=lambda *_: self._place_language_button())
        self.ids.topbar.bind(width=lambda *_: self._place_language_button())
        self._place_language_button()

    def export_as_image(self, *args: Any, **kwargs: Any) -> Any:
        # Kivy draws the exported image upside down into an image of its own, where a scissor
        # (in the window's pixels) would cut the wrong band: the clips are stencils meanwhile.
        with clipped_by_stencil(self):
            return super().export_as_image(*args, **kwargs)

    def _place_language_button(self) -> None:
        """The bar's language button, wherever a patron has no other way to change language."""
        button, bar = self._language_button, self.ids.topbar
        current = self.ids.manager.current or ""
        wanted = not (
            current in self.OWN_LANGUAGE_CHOICE
            or current.startswith(("maintenance", "bookdrop"))
            or len(_app().cfg.kiosk.languages) < 2
            # Narrower than any display the kiosk supports: on a portrait bar (480 px) the
            # button fits (compact, its code) and the library's name takes two smaller lines.
            or bar.width < self.LANGUAGE_BUTTON_MIN_BAR
        )
        # Taken out rather than hidden, so no invisible button is left to catch a touch.
        if wanted and button.parent is None:
            bar.add_widget(button, index=len(bar.children) - 1)
        elif not wanted and button.parent is not None:
            bar.remove_widget(button)
        if not wanted:
            self.hide_languages()

    def show_languages(self) -> None:
        """The bar's language button: the kiosk's languages, each in its own name, over the screen."""
        self.hide_languages()
        app = _app()
        overlay = Factory.LanguageOverlay()
        for code in app.cfg.kiosk.languages:
            button = KButton(
                text=app.language_name(code), kind="primary" if code == app.lang else "secondary"
            )
            button.code = code
            button.bind(on_release=lambda b: self._choose_language(b.code))
            overlay.ids.choices.add_widget(button)
        self._languages = overlay
        self.add_widget(overlay)

    def _choose_language(self, code: str) -> None:
        _app().tap(Action.LANGUAGE, code)
        self.hide_languages()

    def hide_languages(self) -> None:
        if self._languages is not None:
            self.remove_widget(discard(self._languages))
            self._languages = None

    def show_help(self) -> None:
        """The help button: what to do on the current screen, over it."""

        self.hide_help()
        app = _app()
        self._help = Factory.HelpOverlay(
            text=tr(HELP_TEXTS.get(app.current_screen, HELP_TEXTS["welcome"]))
        )
        self.add_widget(self._help)

    def hide_help(self) -> None:
        if getattr(self, "_help", None) is not None:
            self.remove_widget(discard(self._help))
            self._help = None

    def _idle_changed(self, _app_obj: Any, shown: bool) -> None:
        # Added and removed rather than hidden: a hidden widget would still swallow touches.

        if shown and self._warning is None:
            self._warning = Factory.IdleWarning()
            self.add_widget(self._warning)
        elif not shown and self._warning is not None:
            self.remove_widget(self._warning)
            self._warning = None


class IdleWarning(FloatLayout):
    """The logout warning over every screen; touches outside its button go nowhere else."""

    modal = True

    def on_touch_down(self, touch: Any) -> bool:
        super().on_touch_down(touch)
        return True


# What to do on each screen, for the help button (the screen's name -> msgid).
HELP_TEXTS: dict[str, str] = {
    "welcome": _(
        'Place your library card on the reader, or tap "Type your card number". To return items, tap "Return items".'
    ),
    "card_entry": _('Type the number printed on your library card, then tap "Continue".'),
    "pin": _('Type your PIN (the secret number you chose at the library), then tap "Continue".'),
    "identifying": _("Your card is being checked. This takes a moment."),
    "checkout": _(
        'Put the items you want to borrow on the pad. Each one gets a line with its due date. Tap "Finish" when you are done.'
    ),
    "account": _('Here are your loans, holds and fees. Tap "Renew" to keep an item longer.'),
    "finish": _(
        "Choose whether you want a receipt. Items that could not be borrowed are listed: leave them at the desk."
    ),
    "goodbye": _("You are done. Take your items and your card."),
    "returns": _("Put the items you are returning on the pad. Each one says where it goes."),
}


class LanguageOverlay(FloatLayout):
    """The kiosk's languages, offered from the bar during a visit."""

    modal = True

    def on_touch_down(self, touch: Any) -> bool:
        super().on_touch_down(touch)
        return True


class HelpOverlay(FloatLayout):
    """What to do here, and (if the site allows) a button that calls staff: over every screen."""

    modal = True
    text = StringProperty("")
    called = BooleanProperty(False)

    def on_touch_down(self, touch: Any) -> bool:
        super().on_touch_down(touch)
        return True

    def call_staff(self) -> None:
        app = _app()
        app.call_staff(app.current_screen)
        self.called = True


class StateScreen(KioskScreen):
    """A screen that re-renders its last snapshot when the language changes."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._state: SessionState | ReturnState | None = None
        _app().bind(lang=lambda *_: self._state is not None and self.show(self._state))

    def show(self, state: SessionState | ReturnState | None) -> None:
        self._state = state
        self.render(state)

    def render(self, state: Any) -> None:
        pass


class PaneScreen(StateScreen):
    """A screen of content and actions: on a landscape display the actions stand in a column
    beside the content, so a short 800x480 screen still shows its content; on a portrait one
    the top actions stand above the content and the bottom ones below it (within reach)."""

    # Groups laid out in a row on a portrait display and in a column beside the content otherwise.
    flipping: tuple[str, ...] = ("side_top", "side_bottom", "header", "languages")
    side_share = 0.34

    parts = ("body", "main", "side", "side_top", "side_bottom", "side_box")

    def on_kv_post(self, base_widget: Any) -> None:
        self._spacer = Widget()
        follow_orientation(self)

    def arrange(self) -> None:
        body, main, side, top, bottom, box = (self._parts[name] for name in self.parts)
        detach(main, side, top, bottom, self._spacer)
        landscape = _app().theme.landscape
        if landscape:
            body.orientation = "horizontal"
            side.size_hint_x, main.size_hint_x = self.side_share, 1 - self.side_share
            for widget in (top, self._spacer, bottom):
                box.add_widget(widget)
            body.add_widget(main)
            body.add_widget(side)
        else:
            body.orientation = "vertical"
            main.size_hint_x = 1
            for widget in (top, main, bottom):
                body.add_widget(widget)
        for name in self.flipping:
            if name in self.ids:
                self.ids[name].orientation = "vertical" if landscape else "horizontal"


class WelcomeScreen(PaneScreen):
    message = StringProperty("")

    def on_kv_post(self, base_widget: Any) -> None:
        app = _app()
        box = self.ids.languages
        for code in app.cfg.kiosk.languages:
            button = KButton(text=app.language_name(code))
            if code == "lv":
                button.bold = True  # Latvian takes the main place (Cabinet Regulation No. 292)
            button.code = code
            # Spoken by its name in itself even where the button shows the code (LV, EN, RU).
            button.speech_label = app.language_name(code)
            button.bind(on_release=lambda b: self.choose_language(b.code))
            box.add_widget(button)
        app.bind(lang=self._mark_language)
        self._mark_language(app, app.lang)
        super().on_kv_post(base_widget)

    def arrange(self) -> None:
        super().arrange()
        app = _app()
        landscape, compact = app.theme.landscape, app.theme.compact
        # A short landscape display (800x480, 1024x600) has no room for a column of three names
        # above the actions (with large text, or under the offline banner, "Return items" would
        # fall below the fold): the languages stand in one row there, by their codes (LV, EN, RU).
        short = app.theme.short
        self.ids.languages.orientation = "horizontal" if short or not landscape else "vertical"
        for button in self.ids.languages.children:
            # In a row of names Latvian is the widest; in a column it is the first.
            button.size_hint_x = 1.4 if button.code == "lv" and not landscape else 1
            button.text = button.code.upper() if short else app.language_name(button.code)
            button.min_height = app.theme.touch if short else 0
        # On a short display (or a short landscape one, under an offline banner) the steps to
        # start come right after the greeting, above the fold; the sentence on what the kiosk
        # does follows them.
        intro = self.ids.intro.__self__  # held: a kv id alone would let it be collected while out
        column = intro.parent
        if column is not None:
            column.remove_widget(intro)
            column.add_widget(intro, index=1 if compact or short else len(column.children) - 2)

    def _mark_language(self, _app_obj: Any, lang: str) -> None:
        for button in self.ids.languages.children:
            button.kind = "primary" if button.code == lang else "secondary"

    def render(self, state: SessionState) -> None:
        self.message = login_message(state)

    def choose_language(self, code: str) -> None:
        _app().tap(Action.LANGUAGE, code)


def login_message(state: Any) -> str:
    """The reason the last identification failed, in the patron's words."""
    if state is None or state.problem is None:
        return ""
    if state.problem is LoginProblem.BLOCKED:
        blocks = ordered_blocks(state.blocks)
        return "\n".join(tr(block_text(b)) for b in blocks) or tr(
            refusal_text(Refusal.PATRON_BLOCKED)
        )
    text = tr(
        LOGIN_PROBLEM_TEXTS.get(state.problem, LOGIN_PROBLEM_TEXTS[LoginProblem.UNKNOWN_PATRON])
    )
    if state.problem is LoginProblem.LOCKED_OUT and state.locked_for_s:
        text += " " + tr("Try again in {seconds} seconds.").format(
            seconds=int(state.locked_for_s + 0.99)
        )
    return text


def discard(widget: Any) -> Any:
    """A widget leaving for good: its kv rules stop listening to the app and theme now. (Left to
    the garbage collector, a theme change could reach a rule of a widget already collected.)"""

    for child in widget.walk(restrict=True):
        Builder.unbind_widget(child.uid)
    return widget


def detach(*widgets: Any) -> None:
    """Take widgets out of wherever they are, to be placed again."""
    for widget in widgets:
        if widget.parent is not None:
            widget.parent.remove_widget(widget)


def follow_orientation(screen: Any) -> None:
    """Arrange `screen` for the display's orientation now and whenever it turns or changes
    between a short and a tall display (a window resized from 1280x800 to 800x480 stays
    landscape but must be arranged as compact).

    The widgets named in `screen.parts` are held strongly: kv ids are weak references, and a
    widget taken out of the tree to be placed elsewhere would otherwise be collected in between."""
    screen._parts = {name: screen.ids[name].__self__ for name in screen.parts}
    _app().theme.bind(
        landscape=lambda *_: screen.arrange(),
        compact=lambda *_: screen.arrange(),
        short=lambda *_: screen.arrange(),
    )
    screen.arrange()


class KeypadScreen(StateScreen):
    """Card number and PIN entry: the keypad beside the texts and buttons on a landscape display,
    below the texts and above the buttons on a portrait one, so no key ever sits under a button."""

    parts = ("body", "side", "buttons", "keys_area", "spacer", "ok", "row")

    def on_kv_post(self, base_widget: Any) -> None:
        follow_orientation(self)

    def arrange(self) -> None:
        body, side, buttons, keys, spacer, ok, row = (self._parts[name] for name in self.parts)
        landscape = _app().theme.landscape
        detach(buttons, keys, spacer, ok)
        # With two other buttons, Continue gets a whole row of its own (three in a row would
        # shrink "Продолжить" in a half-width column or on a portrait display).
        if len(row.children) > 1:
            buttons.add_widget(ok, index=0)
        else:
            row.add_widget(ok, index=0)
        if landscape:
            body.orientation = "horizontal"
            side.unbind(minimum_height=self._side_height)
            side.size_hint = (0.5, 1)
            keys.size_hint = (0.5, 1)
            side.add_widget(spacer)
            side.add_widget(buttons)
            body.add_widget(keys)
        else:
            body.orientation = "vertical"
            side.size_hint = (1, None)
            keys.size_hint = (1, 1)
            side.bind(minimum_height=self._side_height)
            side.height = side.minimum_height
            body.add_widget(keys)
            body.add_widget(buttons)

    def _side_height(self, side: Any, height: float) -> None:
        side.height = height


class CardEntryScreen(KeypadScreen):
    letters = BooleanProperty(False)
    hint = StringProperty("")

    def submit(self, text: str) -> None:
        if text.strip():
            self.ids.pad.text = ""
            self.hint = ""
            _app().present_card(text.strip())

    def cancel(self) -> None:
        self.ids.pad.text = ""
        self.hint = ""
        _app().close_keypad()

    def clear(self) -> None:
        """A fresh keypad: no digits or message left from an earlier visit (or an earlier language)."""
        self.ids.pad.text = ""
        self.hint = ""
        self.letters = False

    def keep(self, number: str, problem: LoginProblem) -> None:
        """A mistyped or unknown number comes back on the keypad to be corrected, with what is wrong
        and what a card number looks like (`[ui] card_hint`)."""
        self.letters = not number[-1:].isdigit()
        self.ids.pad.text = number
        text = tr(LOGIN_PROBLEM_TEXTS.get(problem, LOGIN_PROBLEM_TEXTS[LoginProblem.BAD_CARD]))
        example = _app().cfg.ui.card_hint
        if example:
            text += " " + tr("A card number looks like this: {example}").format(example=example)
        self.hint = text

    def on_letters(self, *_: Any) -> None:
        pad = self.ids.get("pad")
        if pad is None:
            return

        # Seven columns make four rows of letters, which fit an 800x480 screen above the buttons.
        pad.cols, pad.keys = (7, list(LETTER_KEYS)) if self.letters else (3, list(DIGIT_KEYS))


class IdentifyingScreen(StateScreen):
    pass


class PinScreen(KeypadScreen):
    message = StringProperty("")

    def render(self, state: SessionState) -> None:
        text = ""
        if state.problem is LoginProblem.WRONG_PIN:
            text = tr(LOGIN_PROBLEM_TEXTS[LoginProblem.WRONG_PIN])
            if state.attempts_left is not None:
                text += " " + _app().ntr(
                    "{n} attempt left.", "{n} attempts left.", state.attempts_left
                ).format(n=state.attempts_left)
        self.message = text

    def on_pre_enter(self, *_: Any) -> None:
        self.ids.pad.text = ""

    def submit(self, pin: str) -> None:
        if pin:
            self.ids.pad.text = ""  # the PIN leaves the screen at once
            _app().post(PinEntered(pin))


def item_status_text(item: CheckoutItem) -> tuple[str, str]:
    """(text, state name) for a checkout item."""
    app = _app()
    if item.status is ItemStatus.SEEN:
        return tr("Checking..."), "pending"
    if item.status is ItemStatus.CHECKED_OUT:
        text = (
            tr("Due {date}").format(date=app.fmt_date(item.due_date))
            if item.due_date
            else tr("Checked out")
        )
        if item.due_unchanged:
            text = tr("Renewed, but the due date stays {date}.").format(
                date=app.fmt_date(item.due_date)
            )
        elif item.renewal:
            text += " - " + tr("renewed")
        if item.offline:
            text += " - " + tr("provisional date (offline)")
        return text, "ok"
    if item.status is ItemStatus.WAITING:
        return tr("The set has {total} parts, {present} are on the pad. Place all parts.").format(
            total=item.parts_in_set, present=item.parts_present
        ), "warn"
    if item.status is ItemStatus.TO_DESK:
        return tr("Take this to the desk: its security tag could not be switched off."), "refused"
    if item.status is ItemStatus.UNREADABLE:
        if item.refusal is Refusal.UNKNOWN_ITEM and not item.item_id:
            return tr("That is not an item number."), "refused"
        return tr(refusal_text(Refusal.UNREADABLE_TAG)), "refused"
    text = tr(refusal_text(item.refusal))
    if item.refusal is Refusal.SET_INCOMPLETE and item.parts_in_set > 1:
        text = tr("The set has {total} parts, {present} are on the pad. Place all parts.").format(
            total=item.parts_in_set, present=item.parts_present
        )
    if item.refusal is Refusal.FEE_REQUIRED and item.fee_amount:
        text += " " + app.fmt_money(item.fee_amount)
    return text, "refused"


class SessionScreen(PaneScreen):
    """Checkout and account share the patron header and the tabs."""

    card = StringProperty("")
    notice = StringProperty("")  # a blocked patron's one sentence
    detail = StringProperty("")  # the library system's own words about the block, small
    greeting = StringProperty("")  # hello and what needs attention
    blocked = BooleanProperty(False)
    can_renew = BooleanProperty(False)
    can_account = BooleanProperty(True)

    def wipe(self) -> None:
        """Forget the last patron's rows and header (logout): nothing of theirs stays in memory."""
        rows = getattr(self, "_rows", None)
        if rows:
            rows.clear()
        for wid in ("item_list", "account_list"):
            if wid in self.ids:
                for row in list(self.ids[wid].children):
                    self.ids[wid].remove_widget(discard(row))
        self.card = self.notice = ""
        self._state = None

    def render_header(self, state: SessionState) -> None:
        patron = state.patron
        self.card = tr("Card {card}").format(card=patron.card_masked) if patron else ""
        checkout = state.checkout
        self.blocked = bool(checkout is not None and checkout.blocked is not Refusal.NONE)
        self.notice = blocked_sentence(state) if self.blocked else ""
        self.greeting = greeting_text(state) if not self.blocked else ""
        self.detail = (
            patron.screen_message if (self.blocked and patron and patron.screen_message) else ""
        )
        self.can_account = state.capabilities.can_view_account
        self.can_renew = state.capabilities.can_renew


class CheckoutScreen(SessionScreen):
    count_text = StringProperty("")
    busy = BooleanProperty(False)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._rows: dict[str, ItemRow] = {}

    def render(self, state: SessionState) -> None:
        self.render_header(state)
        items = state.checkout.items if state.checkout else ()
        entries: list[tuple[str, dict[str, Any]]] = []
        for item in items:
            text, name = item_status_text(item)
            fee = item.fee_pending
            accept = (lambda item_id: _app().tap(Action.CONFIRM_FEE, item_id)) if fee else None
            entries.append(item_entry(item, text, name, tr("Accept fee") if fee else "", accept))
        entries += provisional_entries(self._rows, items)
        before = set(self._rows)
        sync_rows(self.ids.item_list, self._rows, entries)
        new = [key for key, _ in entries if key not in before]
        if new:
            row = self._rows[new[-1]]
            # The newest result in view, even at the bottom of a long stack.
            Clock.schedule_once(
                lambda _dt: row.parent is not None and self.ids.main.scroll_to(row, animate=False)
            )
        done = len(state.checkout.checked_out) if state.checkout else 0
        self.count_text = (
            _app().ntr("{n} item borrowed", "{n} items borrowed", done).format(n=done)
            if entries
            else ""
        )
        self.busy = bool(state.checkout and state.checkout.busy)


def provisional_entries(rows: dict[str, Any], items: Any) -> list[tuple[str, dict[str, Any]]]:
    """List entries, "checking", for the tags the reader has found or read that the workflow's
    snapshot (`items`: checkout or return items) does not hold yet.

    A tag found and not yet read, or read and not decoded, has its row by its UID (the workflows'
    key for an unreadable tag): the row its item takes over once it is read, renamed in `rows`
    here so that the same widget shows the item's number (docs/architecture.md, "A tag found
    before it is read")."""
    shown = {i.key for i in items} | {i.item_id for i in items if i.item_id}
    entries: list[tuple[str, dict[str, Any]]] = []
    for tag in list(_app().provisional.values()):
        key = tag.key
        if key in shown:
            continue
        shown.add(key)
        found_key = uid_key(tag.uid)  # the row shown when the tag was found
        if key != found_key and key not in rows and found_key in rows:
            rows[key] = rows.pop(found_key)
        entries.append(
            (
                key,
                {
                    "title": "" if tag.item_id else tr("Item"),
                    "item_id": tag.item_id,
                    "status": tr("Checking..."),
                    "state_name": "pending",
                    "action_text": "",
                    "action": None,
                },
            )
        )
    return entries


def item_entry(
    item: Any, status: str, state_name: str, action_text: str = "", action: Any = None
) -> tuple[str, dict[str, Any]]:
    """One checkout or return item as a list entry for sync_rows."""
    values = {
        "title": item.title or ("" if item.item_id else tr("Unknown item")),
        "item_id": item.item_id,
        "status": status,
        "state_name": state_name,
        "action_text": action_text,
    }
    if action is not None or action_text:
        values["action"] = action
    return item.key, values


def sync_rows(
    box: Any, rows: dict[str, Any], entries: list[tuple[str, dict[str, Any]]], cls: Any = None
) -> None:
    """Update the list in place: existing rows get new texts, only new entries build a widget.

    Rebuilding every row on each snapshot (one a second while the session ticks) made a long
    list slow and could swap a button away under a patron's finger. An entry's values may name
    its widget class under "cls" (ItemRow by default)."""
    wanted = [key for key, _ in entries]
    keep = set(wanted)
    for key in [k for k in rows if k not in keep]:
        box.remove_widget(discard(rows.pop(key)))
    for key, values in entries:
        values = dict(values)
        widget_cls = values.pop("cls", cls or ItemRow)
        action = values.pop("action", None)
        row = rows.get(key)
        if row is not None and type(row) is not widget_cls:
            box.remove_widget(discard(rows.pop(key)))
            row = None
        if row is None:
            action_text = values.pop("action_text", "")
            row = rows[key] = widget_cls(**values)
            if action_text:
                row.action_text = action_text  # after construction: it adds a button
            lay_out_now(row, box)
        else:
            for name, value in values.items():
                if getattr(row, name) != value:
                    setattr(row, name, value)
        if isinstance(row, ItemRow):
            row.action = action
    order = [rows[key] for key in wanted]
    shown = list(reversed(box.children))
    # The usual change, an item placed: the new rows go under the others, which stay put.
    # Taking every row off and putting it back made each one lay itself out again (about 12
    # layout passes a row at the 50th item, docs/performance.md).
    kept = len(shown) if shown == order[: len(shown)] else 0
    if not kept:
        box.clear_widgets()
    for row in order[kept:]:
        box.add_widget(row)


class AccountScreen(SessionScreen):
    summary = StringProperty("")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._rows: dict[str, Any] = {}

    def render(self, state: SessionState) -> None:
        self.render_header(state)
        app = _app()
        account = state.account
        entries: list[tuple[str, dict[str, Any]]] = []
        if account is None:
            sync_rows(self.ids.account_list, self._rows, entries)
            return

        def heading(key: str, text: str, role: str = "fg", size: str = "l") -> None:
            entries.append((key, {"cls": KLabel, "text": text, "role": role, "size_role": size}))

        if account.offline:
            heading(
                "offline",
                tr("Your account cannot be shown while the library system is offline."),
                "refused",
                "m",
            )
        heading(
            "loans",
            app.ntr("{n} loan", "{n} loans", len(account.loans)).format(n=len(account.loans)),
        )
        for loan in account.loans:
            status = (
                tr("Due {date}").format(date=app.fmt_date(loan.due_date)) if loan.due_date else ""
            )
            name = "ok"
            if loan.overdue:
                status = (
                    tr("Overdue since {date}").format(date=app.fmt_date(loan.due_date))
                    if loan.due_date
                    else tr("Overdue")
                )
                name = "refused"
            if loan.renewed is True and loan.due_unchanged:
                # Said plainly: renewed, yet the patron must bring it back on the same day.
                status = tr("Renewed, but the due date stays {date}.").format(
                    date=app.fmt_date(loan.due_date)
                )
                name = "ok"
            elif loan.renewed is True:
                status = tr("Renewed: due {date}").format(date=app.fmt_date(loan.due_date))
                name = "ok"
            elif loan.renewed is False:
                status += " - " + tr("Not renewed:") + " " + tr(refusal_text(loan.refusal))
                name = "refused"
            renewable = self.can_renew and loan.renewed is None
            entries.append(
                (
                    f"loan:{loan.item_id}",
                    {
                        "title": loan.title or loan.item_id,
                        "item_id": loan.item_id,
                        "status": status,
                        "state_name": name,
                        "action_text": tr("Renew") if renewable else "",
                        "action": (lambda item_id: app.tap(Action.RENEW, item_id))
                        if renewable
                        else None,
                    },
                )
            )
        if account.holds:
            heading(
                "holds",
                app.ntr("{n} hold", "{n} holds", len(account.holds)).format(n=len(account.holds)),
            )
            for hold in account.holds:
                text = tr("Ready for pickup") if hold.ready else tr("Waiting")
                if hold.ready and hold.pickup_by:
                    text += " - " + tr("collect by {date}").format(
                        date=app.fmt_date(hold.pickup_by)
                    )
                entries.append(
                    (
                        f"hold:{hold.item_id}",
                        {
                            "title": hold.title or hold.item_id,
                            "item_id": hold.item_id,
                            "status": text,
                            "state_name": "ok" if hold.ready else "info",
                            "action_text": "",
                        },
                    )
                )
        if account.fees or is_nonzero(account.fee_total):
            heading("fees", tr("Fees"))
            for n, fee in enumerate(account.fees):
                entries.append(
                    (
                        f"fee:{n}",
                        {
                            "title": fee.description,
                            "item_id": "",
                            "status": app.fmt_money(fee.amount, account.currency),
                            "state_name": "refused",
                            "action_text": "",
                        },
                    )
                )
            if is_nonzero(account.fee_total):
                heading(
                    "fee_total",
                    tr("Total: {amount}").format(
                        amount=app.fmt_money(account.fee_total, account.currency)
                    ),
                    "refused",
                    "m",
                )
        sync_rows(self.ids.account_list, self._rows, entries)


class FinishScreen(PaneScreen):
    summary = StringProperty("")
    refused_text = StringProperty("")
    can_email = BooleanProperty(False)
    email_to = StringProperty("")
    flipping = ("side_top",)  # the receipt choices stay one above the other

    def render(self, state: SessionState) -> None:
        receipt = state.receipt
        lines = receipt.lines if receipt else ()
        done = sum(1 for line in lines if not line.renewal)
        renewed = len(lines) - done
        refused = len(receipt.refused) if receipt else 0
        parts = [
            _app().ntr("You borrowed {n} item.", "You borrowed {n} items.", done).format(n=done)
        ]
        if renewed:
            parts.append(
                _app()
                .ntr("{n} loan was renewed.", "{n} loans were renewed.", renewed)
                .format(n=renewed)
            )
        if refused:
            parts.append(
                _app()
                .ntr("{n} item was not borrowed.", "{n} items were not borrowed.", refused)
                .format(n=refused)
            )
        self.summary = " ".join(parts)
        self.refused_text = refused_items_text(receipt.refused if receipt else ())
        self.can_email = state.capabilities.can_email
        # With the next patron's card already read, this visit only ends: no way back into it.
        # Taken out rather than hidden, so no invisible button is left to catch a touch.
        back = getattr(self, "_back", None) or self.ids.back.__self__
        self._back = back
        if state.next_patron_waiting and back.parent is not None:
            back.parent.remove_widget(back)
        elif not state.next_patron_waiting and back.parent is None:
            self.ids.side_bottom.add_widget(back, index=0)
        address = state.patron.email_masked if state.patron else ""
        # Where the e-mail goes, masked (j***@e***.lv): enough to recognise, nothing to read off.
        self.email_to = (
            tr("An e-mailed receipt goes to {address}.").format(address=address)
            if self.can_email and address
            else ""
        )
        slot = self.ids.email_slot
        buttons = getattr(self, "email_buttons", None)
        if buttons is None:
            # Built once and kept: a button rebuilt on every snapshot could vanish under a finger.
            mail, both = KButton(), KButton()
            mail.bind(on_release=lambda *_: _app().tap(Action.RECEIPT_EMAIL))
            both.bind(on_release=lambda *_: _app().tap(Action.RECEIPT_BOTH))
            _app().bind(printer_ready=lambda _a, ready: setattr(both, "disabled", not ready))
            buttons = self.email_buttons = (mail, both)
            self.email_button, self.both_button = mail, both
        mail, both = buttons
        mail.text = tr("Send the receipt by e-mail")
        both.text = tr("Print and send by e-mail")
        both.disabled = not _app().printer_ready
        for button in buttons:
            if self.can_email and button.parent is None:
                slot.add_widget(button)
            elif not self.can_email and button.parent is not None:
                slot.remove_widget(button)


def blocked_sentence(state: Any) -> str:
    """One clear sentence for a patron who may not borrow: the most useful block, else the general one."""
    blocks = [b for b in ordered_blocks(tuple(state.blocks)) if b is not BlockReason.HOLD_DENIED]
    if blocks:
        return tr(block_text(blocks[0]))
    return tr(refusal_text(state.checkout.blocked))


def greeting_text(state: Any) -> str:
    """Hello (by first name where the site shows names) and one calm summary of what needs attention."""
    app = _app()
    patron = state.patron
    if patron is None:
        return ""
    named = patron.name and app.cfg.printer.show_patron_name
    lines = [tr("Hello, {name}!").format(name=patron.name.split()[0]) if named else tr("Hello!")]
    if patron.overdue:
        lines.append(
            app.ntr(
                "{n} of your loans is overdue.", "{n} of your loans are overdue.", patron.overdue
            ).format(n=patron.overdue)
        )
    if patron.holds_ready:
        lines.append(
            app.ntr(
                "{n} hold is ready for you to collect.",
                "{n} holds are ready for you to collect.",
                patron.holds_ready,
            ).format(n=patron.holds_ready)
        )
    if is_nonzero(patron.fee_total):
        fee = tr("You have fees of {amount}.").format(
            amount=app.fmt_money(patron.fee_total, patron.currency)
        )
        where = app.cfg.ui.fee_payment
        lines.append(
            fee + (" " + tr("You can pay them {where}.").format(where=where) if where else "")
        )
    return "\n".join(lines)


def refused_items_text(refused: Any) -> str:
    """The items not borrowed, by name, and where they go: on the receipt question and the goodbye."""
    if not refused:
        return ""
    names = "\n".join("– " + clip(line.title or line.item_id) for line in refused)
    return tr("Please leave these at the desk:") + "\n" + names


class GoodbyeScreen(StateScreen):
    message = StringProperty("")

    def render(self, state: SessionState) -> None:
        lines = []
        if state.items_done:
            lines.append(
                _app()
                .ntr("{n} item is yours to take.", "{n} items are yours to take.", state.items_done)
                .format(n=state.items_done)
            )
        if state.receipt_failed:
            lines.append(
                tr(
                    "The receipt could not be printed. Your loans are recorded; ask at the desk for a copy."
                )
            )
        elif state.receipt_choice is ReceiptChoice.PRINT:
            lines.append(tr("Please take your receipt."))
        elif state.receipt_choice is ReceiptChoice.EMAIL:
            lines.append(tr("Your receipt has been sent by e-mail."))
        elif state.receipt_choice is ReceiptChoice.BOTH:
            lines.append(tr("Please take your receipt."))
            lines.append(tr("Your receipt has been sent by e-mail."))
        refused = refused_items_text(_app().refused_lines)
        if refused:
            lines.append(refused)
        self.message = "\n".join(lines)


class ReturnsScreen(PaneScreen):
    count_text = StringProperty("")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._rows: dict[str, Any] = {}

    def render(self, state: ReturnState | None) -> None:
        entries: list[tuple[str, dict[str, Any]]] = []
        for item in state.items if state is not None else ():
            if item.outcome is None:
                text, name = tr("Checking..."), "pending"
            elif item.outcome.is_exception:
                text, name = (
                    tr(
                        INSTRUCTION_TEXTS.get(
                            item.instruction, INSTRUCTION_TEXTS[Instruction.TAKE_TO_DESK]
                        )
                    ),
                    "refused",
                )
                if item.outcome is ReturnOutcome.SET_INCOMPLETE:
                    text = tr(
                        "The set has {total} parts, {present} are on the pad. Place all parts."
                    ).format(total=item.parts_in_set, present=item.parts_present)
                    name = "warn"
            else:
                text, name = (
                    tr(
                        INSTRUCTION_TEXTS.get(item.instruction, INSTRUCTION_TEXTS[Instruction.DONE])
                    ),
                    "ok",
                )
                if item.offline:
                    text += " " + tr("(recorded offline)")
            entries.append(item_entry(item, text, name))
        entries += provisional_entries(self._rows, state.items if state is not None else ())
        sync_rows(self.ids.item_list, self._rows, entries)
        done = len(state.returned) if state is not None else 0
        self.count_text = (
            _app().ntr("{n} item returned", "{n} items returned", done).format(n=done)
            if entries
            else ""
        )


class OutOfServiceScreen(KioskScreen):
    """Out of service in plain words, in every language at once (a patron arriving here has no
    language to choose), with the opening hours; what broke goes to the log and maintenance."""

    heading = StringProperty("")
    body = StringProperty("")
    others = StringProperty("")
    hours = StringProperty("")

    def show(self, state: Any) -> None:
        app = _app()
        langs = sorted(app.cfg.kiosk.languages, key=lambda code: code != "lv")  # Latvian first
        head, body = _("This kiosk is resting."), _("Please use the book drop or ask at the desk.")
        first = translator(langs[0])
        self.heading, self.body = first.gettext(head), first.gettext(body)
        self.others = "\n".join(
            translator(code).gettext(head) + " " + translator(code).gettext(body)
            for code in langs[1:]
        )
        hours = app.cfg.ui.opening_hours
        self.hours = first.gettext("Opening hours: {hours}").format(hours=hours) if hours else ""


class TimedOutScreen(KioskScreen):
    """After an idle logout: the session has ended, said in the language the patron was using."""

    heading = StringProperty("")
    body = StringProperty("")
    done_text = StringProperty("")

    def show_for(
        self, lang: str, items_done: int, receipt: Any = None, receipt_failed: bool = False
    ) -> None:
        """`receipt`: what the site's timeout policy did with the visit's receipt (a
        ReceiptChoice: printed or e-mailed), None when nothing was sent."""
        t = translator(lang)
        self.heading = t.gettext("Your session has ended.")
        lines = [
            t.gettext("You were away for a while, so we logged you out to keep your account safe.")
        ]
        if items_done:
            lines.append(
                t.ngettext(
                    "{n} item is yours to take.", "{n} items are yours to take.", items_done
                ).format(n=items_done)
            )
        if receipt is not None and receipt_failed:
            lines.append(
                t.gettext(
                    "The receipt could not be printed. Your loans are recorded; ask at the desk for a copy."
                )
            )
        elif receipt is ReceiptChoice.PRINT:
            lines.append(t.gettext("Please take your receipt."))
        elif receipt is ReceiptChoice.EMAIL:
            lines.append(t.gettext("Your receipt has been sent by e-mail."))
        self.body = "\n".join(lines)
        self.done_text = t.gettext("Done")


class LanguageBar(BoxLayout):
    languages = ListProperty([])


PATRON_SCREENS: dict[str, type[KioskScreen]] = {
    "welcome": WelcomeScreen,
    "card_entry": CardEntryScreen,
    "identifying": IdentifyingScreen,
    "pin": PinScreen,
    "checkout": CheckoutScreen,
    "account": AccountScreen,
    "finish": FinishScreen,
    "goodbye": GoodbyeScreen,
    "returns": ReturnsScreen,
    "out_of_service": OutOfServiceScreen,
    "timed_out": TimedOutScreen,
}
