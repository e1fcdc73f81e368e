"""What the kiosk says: each screen's purpose and next step, each item's outcome as it appears,
refusals with their reason, totals, the idle warning and errors, in the patron's language.

The narrator compares two workflow snapshots and returns the sentences that are new, so it is
testable without a screen. Reasons come from the same catalog texts the screens show
(kiosk/screens/texts.py), so what is heard matches what is on screen; buttons are named by
their on-screen labels. Numbers, dates and money are words (kiosk/speech/phrasing.py); a card
number or PIN never appears in a sentence.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from kiosk.core.checkout import ItemStatus
from kiosk.core.domain import Refusal
from kiosk.i18n import parse_date, translator
from kiosk.screens.texts import BLOCK_ORDER, BLOCK_TEXTS, REFUSAL_TEXTS
from kiosk.speech.phrasing import cardinal, count, due_phrase, money

# Speech-only sentences per language; {b:msgid} names an on-screen button by its label.
SAY: dict[str, dict[str, str]] = {
    "welcome": {
        "en": "{library}. Welcome. Place your library card on the reader, or use the up and down keys to choose and enter to select. The help key explains again.",
        "lv": "{library}. Laipni lūdzam! Novietojiet bibliotēkas karti uz lasītāja vai ar augšup un lejup taustiņiem izvēlieties un ar ievades taustiņu apstipriniet. Palīdzības taustiņš paskaidro vēlreiz.",
        "ru": "{library}. Добро пожаловать! Приложите читательский билет к считывателю или выберите действие клавишами вверх и вниз и подтвердите клавишей ввода. Клавиша помощи объяснит ещё раз.",
    },
    "card_entry": {
        "en": "Type your card number with the number keys, then choose {b:Continue}.",
        "lv": "Ievadiet kartes numuru ar ciparu taustiņiem un izvēlieties {b:Continue}.",
        "ru": "Введите номер карты цифровыми клавишами и выберите {b:Continue}.",
    },
    "identifying": {
        "en": "Checking your card. Please wait.",
        "lv": "Pārbaudām karti. Lūdzu, uzgaidiet.",
        "ru": "Проверяем карту. Пожалуйста, подождите.",
    },
    "pin": {
        "en": "Type your PIN with the number keys, then choose {b:Continue}.",
        "lv": "Ievadiet PIN kodu ar ciparu taustiņiem un izvēlieties {b:Continue}.",
        "ru": "Введите PIN-код цифровыми клавишами и выберите {b:Continue}.",
    },
    "checkout": {
        "en": "Your card is accepted. Place the items you want to borrow on the pad. You will hear what happens to each one. When you are done, choose {b:Finish}.",
        "lv": "Karte pieņemta. Novietojiet izdevumus, ko vēlaties paņemt, uz paliktņa. Par katru izdevumu jūs dzirdēsiet rezultātu. Beigās izvēlieties {b:Finish}.",
        "ru": "Карта принята. Положите издания, которые хотите взять, на площадку. О каждом издании вы услышите результат. В конце выберите {b:Finish}.",
    },
    "account": {
        "en": "Your account.",
        "lv": "Jūsu konts.",
        "ru": "Ваш счёт.",
    },
    "account_next": {
        "en": "To renew, choose {b:Renew all}. To go back, choose {b:Back to my items}.",
        "lv": "Lai pagarinātu, izvēlieties {b:Renew all}. Lai atgrieztos, izvēlieties {b:Back to my items}.",
        "ru": "Чтобы продлить, выберите {b:Renew all}. Чтобы вернуться, выберите {b:Back to my items}.",
    },
    "on_loan": {"en": "On loan: {n}.", "lv": "Izsniegti: {n}.", "ru": "На руках: {n}."},
    "overdue": {"en": "Overdue: {n}.", "lv": "Nokavēti: {n}.", "ru": "Просрочено: {n}."},
    "holds_ready": {
        "en": "Ready to collect: {n}.",
        "lv": "Gaida saņemšanu: {n}.",
        "ru": "Ждут получения: {n}.",
    },
    "fees": {
        "en": "Fees to pay: {amount}.",
        "lv": "Maksājamā summa: {amount}.",
        "ru": "К оплате: {amount}.",
    },
    "finish": {
        "en": "Would you like a receipt? Choose {b:Print a receipt} or {b:No receipt}.",
        "lv": "Vai vēlaties čeku? Izvēlieties {b:Print a receipt} vai {b:No receipt}.",
        "ru": "Нужен ли вам чек? Выберите {b:Print a receipt} или {b:No receipt}.",
    },
    "borrowed_total": {
        "en": "You borrowed {n}.",
        "lv": "Jūs paņēmāt: {n}.",
        "ru": "Вы взяли: {n}.",
    },
    "goodbye": {
        "en": "Thank you. Goodbye. Please take your card and your items.",
        "lv": "Paldies! Uz redzēšanos. Lūdzu, paņemiet karti un izdevumus.",
        "ru": "Спасибо! До свидания. Пожалуйста, возьмите карту и издания.",
    },
    "receipt_failed": {
        "en": "The receipt could not be printed. Your loans are recorded.",
        "lv": "Čeku nevarēja izdrukāt. Jūsu izsniegumi ir reģistrēti.",
        "ru": "Чек не удалось напечатать. Ваши выдачи записаны.",
    },
    "returns": {
        "en": "Returning items. Place them on the pad. You will hear what happens to each one. When you are done, choose {b:Done}.",
        "lv": "Izdevumu nodošana. Novietojiet tos uz paliktņa. Par katru jūs dzirdēsiet rezultātu. Beigās izvēlieties {b:Done}.",
        "ru": "Возврат изданий. Положите их на площадку. О каждом вы услышите результат. В конце выберите {b:Done}.",
    },
    "out_of_service": {
        "en": "This kiosk is out of service. Please use another kiosk or ask at the desk.",
        "lv": "Šis terminālis nedarbojas. Lūdzu, izmantojiet citu termināli vai vērsieties pie bibliotekāra.",
        "ru": "Этот терминал не работает. Пожалуйста, воспользуйтесь другим терминалом или обратитесь к библиотекарю.",
    },
    "bookdrop": {
        "en": "Book return. Put your items into the slot one at a time. You will hear each one.",
        "lv": "Grāmatu nodošana. Ievietojiet izdevumus atverē pa vienam. Par katru jūs dzirdēsiet rezultātu.",
        "ru": "Возврат книг. Опускайте издания в окно по одному. О каждом вы услышите результат.",
    },
    "bookdrop_closed": {
        "en": "The book return is closed. Please ask at the desk.",
        "lv": "Grāmatu nodošana ir slēgta. Lūdzu, vērsieties pie bibliotekāra.",
        "ru": "Приём книг закрыт. Пожалуйста, обратитесь к библиотекарю.",
    },
    "borrowed": {
        "en": "{title}, borrowed, {due}.",
        "lv": "{title}, izsniegts, {due}.",
        "ru": "{title}, выдано, {due}.",
    },
    "renewed": {
        "en": "{title}, renewed, {due}.",
        "lv": "{title}, pagarināts, {due}.",
        "ru": "{title}, продлено, {due}.",
    },
    "not_borrowed": {
        "en": "{title}, not borrowed. {reason}",
        "lv": "{title}, nav izsniegts. {reason}",
        "ru": "{title}, не выдано. {reason}",
    },
    "not_renewed": {
        "en": "{title}, not renewed. {reason}",
        "lv": "{title}, nav pagarināts. {reason}",
        "ru": "{title}, не продлено. {reason}",
    },
    "to_desk": {
        "en": "{title}: please take it to the desk.",
        "lv": "{title}: lūdzu, nododiet to bibliotekāram.",
        "ru": "{title}: пожалуйста, отнесите его библиотекарю.",
    },
    "unreadable": {
        "en": "An item cannot be read. Please take it to the desk.",
        "lv": "Izdevumu nevar nolasīt. Lūdzu, nododiet to bibliotekāram.",
        "ru": "Издание не читается. Пожалуйста, отнесите его библиотекарю.",
    },
    "waiting_parts": {
        "en": "{title}: place all parts of the set on the pad.",
        "lv": "{title}: novietojiet uz paliktņa visas komplekta daļas.",
        "ru": "{title}: положите на площадку все части комплекта.",
    },
    "returned": {
        "en": "{title}, returned.",
        "lv": "{title}, nodots.",
        "ru": "{title}, возвращено.",
    },
    "not_returned": {
        "en": "{title}, not returned. Please take it to the desk.",
        "lv": "{title}, nav nodots. Lūdzu, nododiet to bibliotekāram.",
        "ru": "{title}, не возвращено. Пожалуйста, отнесите его библиотекарю.",
    },
    "kept_for_staff": {
        "en": "{title}, received. Staff will check it.",
        "lv": "{title}, saņemts. Darbinieki to pārbaudīs.",
        "ru": "{title}, принято. Сотрудники его проверят.",
    },
    "item": {"en": "An item", "lv": "Izdevums", "ru": "Издание"},
    "idle": {
        "en": "Are you still there? Your session ends in {n}. Press any key to continue.",
        "lv": "Vai jūs vēl esat šeit? Laiks līdz sesijas beigām: {n}. Nospiediet jebkuru taustiņu, lai turpinātu.",
        "ru": "Вы ещё здесь? До конца сеанса: {n}. Нажмите любую клавишу, чтобы продолжить.",
    },
    "attempts_left": {
        "en": "Attempts left: {n}.",
        "lv": "Atlikušie mēģinājumi: {n}.",
        "ru": "Осталось попыток: {n}.",
    },
    "keys": {
        "en": "Up and down move between the choices, enter selects, back returns, the star key switches speech off, page up and page down change the volume.",
        "lv": "Augšup un lejup pārvietojas starp izvēlēm, ievade apstiprina, atpakaļ atgriežas, zvaigznīte izslēdz runu, lapa augšup un lejup maina skaļumu.",
        "ru": "Вверх и вниз переходят между вариантами, ввод подтверждает, назад возвращает, звёздочка выключает речь, страница вверх и вниз меняют громкость.",
    },
    "speech_on": {"en": "Speech on.", "lv": "Runa ieslēgta.", "ru": "Речь включена."},
    "speech_off": {"en": "Speech off.", "lv": "Runa izslēgta.", "ru": "Речь выключена."},
    "louder": {"en": "Louder.", "lv": "Skaļāk.", "ru": "Громче."},
    "quieter": {"en": "Quieter.", "lv": "Klusāk.", "ru": "Тише."},
    "faster": {"en": "Faster.", "lv": "Ātrāk.", "ru": "Быстрее."},
    "slower": {"en": "Slower.", "lv": "Lēnāk.", "ru": "Медленнее."},
    "problem_generic": {
        "en": "Something went wrong. Please ask at the desk.",
        "lv": "Radās kļūda. Lūdzu, vērsieties pie bibliotekāra.",
        "ru": "Произошла ошибка. Пожалуйста, обратитесь к библиотекарю.",
    },
}

# The screens' own wording of a login problem (the same catalog msgids as kiosk/screens/patron.py).
LOGIN_PROBLEMS = {
    "bad_card": "That is not a library card number. Please try again.",
    "unknown_patron": "This card is not known to the library. Please check the number or ask at the desk.",
    "wrong_pin": "The PIN is not correct. Please try again.",
    "locked_out": "Too many attempts. Please wait a moment or ask at the desk.",
    "link_down": "The library system is not answering. Please try again later or ask at the desk.",
}


def say(key: str, lang: str, **values: Any) -> str:
    """A speech sentence with on-screen button labels and values filled in."""
    text = SAY[key].get(lang) or SAY[key]["en"]
    tr = translator(lang).gettext
    while "{b:" in text:
        start = text.index("{b:")
        end = text.index("}", start)
        text = text[:start] + "“" + tr(text[start + 3 : end]) + "”" + text[end + 1 :]
    return text.format(**values) if values else text


def _title(item: Any, lang: str) -> str:
    title = " ".join(str(getattr(item, "title", "") or "").split())
    return title or say("item", lang)


class Narrator:
    """Sentences for workflow snapshots; `today` decides whether a due date names its year."""

    def __init__(self, library_name: str, today: Callable[[], date] = date.today) -> None:
        self.library_name = library_name
        self.today = today

    # -- pieces ------------------------------------------------------------------------------

    def due(self, value: str, lang: str) -> str:
        parsed = parse_date(value)
        if parsed is None:
            return value.strip()
        return due_phrase(parsed, lang, today=self.today())

    def reason(self, item: Any, lang: str) -> str:
        refusal = getattr(item, "refusal", None)
        msgid = REFUSAL_TEXTS.get(refusal) if isinstance(refusal, Refusal) else None
        if msgid:
            return translator(lang).gettext(msgid)
        message = str(getattr(item, "message", "") or "").strip()
        return message or say("problem_generic", lang)

    # -- screens -----------------------------------------------------------------------------

    def screen(self, name: str, state: Any, lang: str) -> list[str]:
        """What a screen says when it appears: where the patron is and what to do next."""
        if name == "welcome":
            return [say("welcome", lang, library=self.library_name)]
        if name == "checkout":
            return [say("checkout", lang)]
        if name == "account":
            return self.account(state, lang)
        if name == "finish":
            texts = []
            done = _borrowed(state)
            if done:
                texts.append(say("borrowed_total", lang, n=count(done, "item", lang)))
            return [*texts, say("finish", lang)]
        if name == "goodbye":
            done = getattr(state, "items_done", 0) or 0
            head = [say("borrowed_total", lang, n=count(done, "item", lang))] if done else []
            failed = (
                [say("receipt_failed", lang)] if getattr(state, "receipt_failed", False) else []
            )
            return [*failed, *head, say("goodbye", lang)]
        if name in SAY:
            return [say(name, lang)]
        return []

    def help(self, name: str, state: Any, lang: str) -> str:
        """The help key: the screen's purpose and next step again, and the keys."""
        return " ".join([*self.screen(name, state, lang), say("keys", lang)])

    def account(self, state: Any, lang: str) -> list[str]:
        account = getattr(state, "account", None)
        texts = [say("account", lang)]
        if account is not None:
            loans = account.loans
            texts.append(say("on_loan", lang, n=count(len(loans), "item", lang)))
            overdue = sum(1 for loan in loans if loan.overdue)
            if overdue:
                texts.append(say("overdue", lang, n=count(overdue, "item", lang)))
            ready = sum(1 for hold in account.holds if getattr(hold, "ready", False))
            if ready:
                texts.append(say("holds_ready", lang, n=count(ready, "item", lang)))
            if account.fee_total and _nonzero(account.fee_total):
                texts.append(
                    say(
                        "fees",
                        lang,
                        amount=money(account.fee_total, lang, account.currency or "EUR"),
                    )
                )
        texts.append(say("account_next", lang))
        return [" ".join(texts)]

    # -- changes -----------------------------------------------------------------------------

    def session(self, previous: Any, state: Any, lang: str) -> list[str]:
        """New item outcomes, renewals and problems between two session snapshots."""
        texts: list[str] = []
        if getattr(state, "problem", None) is not None and _problem_key(state) != _problem_key(
            previous
        ):
            texts.append(self.problem(state, lang))
        texts += self.items(previous, state, lang)
        texts += self.renewals(previous, state, lang)
        view = getattr(state, "view", None)
        if (
            previous is not None
            and previous.account is None
            and state.account is not None
            and view == "account"
            and previous.view == view
        ):
            texts += self.account(
                state, lang
            )  # the loans arrived after the account screen was announced
        return texts

    def problem(self, state: Any, lang: str) -> str:
        tr = translator(lang).gettext
        value = getattr(state.problem, "value", str(state.problem))
        if value == "blocked" and state.blocks:
            ordered = sorted(
                state.blocks,
                key=lambda b: BLOCK_ORDER.index(b) if b in BLOCK_ORDER else len(BLOCK_ORDER),
            )
            text = tr(BLOCK_TEXTS.get(ordered[0], "Please ask at the desk about your account."))
        else:
            text = (
                tr(LOGIN_PROBLEMS.get(value, ""))
                if value in LOGIN_PROBLEMS
                else say("problem_generic", lang)
            )
        if state.attempts_left is not None and value == "wrong_pin":
            text += " " + say("attempts_left", lang, n=_number(state.attempts_left, lang))
        return text

    def items(self, previous: Any, state: Any, lang: str) -> list[str]:
        checkout = getattr(state, "checkout", None)
        if checkout is None:
            return []
        before = (
            {i.key: i.status for i in previous.checkout.items}
            if previous is not None and previous.checkout
            else {}
        )
        texts = []
        for item in checkout.items:
            if before.get(item.key) is item.status:
                continue
            title = _title(item, lang)
            if item.status is ItemStatus.CHECKED_OUT:
                texts.append(
                    say(
                        "renewed" if item.renewal else "borrowed",
                        lang,
                        title=title,
                        due=self.due(item.due_date, lang),
                    )
                )
            elif item.status is ItemStatus.REFUSED:
                texts.append(say("not_borrowed", lang, title=title, reason=self.reason(item, lang)))
            elif item.status is ItemStatus.TO_DESK:
                texts.append(say("to_desk", lang, title=title))
            elif item.status is ItemStatus.UNREADABLE:
                texts.append(say("unreadable", lang))
            elif item.status is ItemStatus.WAITING:
                texts.append(say("waiting_parts", lang, title=title))
        return texts

    def renewals(self, previous: Any, state: Any, lang: str) -> list[str]:
        account = getattr(state, "account", None)
        if account is None:
            return []
        before = (
            {loan.item_id: loan.renewed for loan in previous.account.loans}
            if previous is not None and previous.account
            else {}
        )
        texts = []
        for loan in account.loans:
            if loan.renewed is None or before.get(loan.item_id) == loan.renewed:
                continue
            title = _title(loan, lang)
            if loan.renewed:
                texts.append(say("renewed", lang, title=title, due=self.due(loan.due_date, lang)))
            else:
                texts.append(say("not_renewed", lang, title=title, reason=self.reason(loan, lang)))
        return texts

    def idle(self, seconds: int, lang: str) -> str:
        # The count stays in the nominative ("До конца сеанса: двадцать одна секунда"): after
        # "через" / "pēc" it would need the accusative / dative, which `count` does not build.
        return say("idle", lang, n=count(max(0, seconds), "second", lang))

    def returned(self, previous: Any, state: Any, lang: str) -> list[str]:
        """Items of the return station whose outcome is new."""
        before = {i.key: i.outcome for i in previous.items} if previous is not None else {}
        texts = []
        for item in getattr(state, "items", ()):
            if item.outcome is None or before.get(item.key) == item.outcome:
                continue
            key = "not_returned" if item.outcome.is_exception else "returned"
            texts.append(say(key, lang, title=_title(item, lang)))
        return texts

    def bookdrop(self, previous: Any, state: Any, lang: str) -> list[str]:
        """The item just decided at the book drop: returned, or kept for staff to check."""
        last = getattr(state, "last", None)
        if last is None or (
            previous is not None
            and previous.last is not None
            and previous.last.sequence == last.sequence
        ):
            return []
        exception = getattr(last.final, "value", "") == "exception_bin"
        return [say("kept_for_staff" if exception else "returned", lang, title=_title(last, lang))]


def _problem_key(state: Any) -> tuple[Any, ...]:
    """What makes a login problem new: a problem said once is not said again on the next screen."""
    if state is None or state.problem is None:
        return ()
    return (state.problem, state.blocks, state.attempts_left, state.locked_for_s is not None)


def _borrowed(state: Any) -> int:
    checkout = getattr(state, "checkout", None)
    if checkout is None:
        return 0
    return sum(1 for i in checkout.items if i.status is ItemStatus.CHECKED_OUT)


def _nonzero(amount: str) -> bool:
    try:
        return float(amount.replace(",", ".")) != 0
    except ValueError:
        return False


def _number(n: int, lang: str) -> str:
    return cardinal(max(0, n), lang)
