"""What the kiosk says for workflow snapshots: item outcomes as they appear, refusals with the
screen's reason, renewals, totals, the idle warning, problems; never a card number."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from kiosk.core.account import AccountState, LoanLine
from kiosk.core.checkout import CheckoutItem, CheckoutState, ItemSource, ItemStatus
from kiosk.core.domain import BlockReason, Hold, Refusal
from kiosk.core.session import LoginProblem, PatronSummary, SessionState, Stage
from kiosk.i18n import translator
from kiosk.speech.narration import Narrator, say

TODAY = date(2026, 12, 7)


@pytest.fixture
def narrator() -> Narrator:
    return Narrator("Demo bibliotēka", today=lambda: TODAY)


def _item(key: str, status: ItemStatus, **kw: object) -> CheckoutItem:
    return CheckoutItem(key=key, item_id=key, source=ItemSource.RFID, status=status, **kw)  # type: ignore[arg-type]


def _active(*items: CheckoutItem) -> SessionState:
    return SessionState(
        stage=Stage.ACTIVE,
        patron=PatronSummary(card_masked="****2345"),
        checkout=CheckoutState(items=items),
    )


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        (
            "en",
            [
                "Zaļā grāmata, borrowed, due the twenty-eighth of December.",
                "Sarkanā grāmata, not borrowed. Reserved for another reader. Please leave it at the desk.",
            ],
        ),
        (
            "lv",
            [
                "Zaļā grāmata, izsniegts, jānodod līdz divdesmit astotajam decembrim.",
                "Sarkanā grāmata, nav izsniegts. Rezervēts citam lasītājam. Lūdzu, atstājiet to pie bibliotekāra.",
            ],
        ),
        ("ru", ["Zaļā grāmata, выдано, вернуть до двадцать восьмого декабря.", None]),
    ],
)
def test_each_outcome_once_as_it_appears(
    narrator: Narrator, lang: str, expected: list[str | None]
) -> None:
    seen = _active(
        _item("A1", ItemStatus.SEEN, title="Zaļā grāmata"),
        _item("B2", ItemStatus.SEEN, title="Sarkanā grāmata"),
    )
    one = _active(
        _item("A1", ItemStatus.CHECKED_OUT, title="Zaļā grāmata", due_date="20261228    235900"),
        _item("B2", ItemStatus.SEEN, title="Sarkanā grāmata"),
    )
    two = replace(
        one,
        checkout=CheckoutState(
            items=(
                one.checkout.items[0],
                _item(
                    "B2",
                    ItemStatus.REFUSED,
                    title="Sarkanā grāmata",
                    refusal=Refusal.ON_HOLD_FOR_OTHER,
                ),
            )
        ),
    )
    assert narrator.session(None, seen, lang) == []  # nothing decided yet
    assert narrator.session(seen, one, lang) == [expected[0]]
    refused = narrator.session(one, two, lang)
    assert len(refused) == 1
    if expected[1] is not None:
        assert refused == [expected[1]]
    else:
        assert refused[0].startswith("Sarkanā grāmata, не выдано. ")
    assert narrator.session(two, two, lang) == []  # not said twice


def test_renewal_at_checkout_and_in_the_account(narrator: Narrator) -> None:
    state = _active(
        _item(
            "A1", ItemStatus.CHECKED_OUT, title="Zaļā grāmata", due_date="2027-01-04", renewal=True
        )
    )
    assert narrator.session(None, state, "en") == [
        "Zaļā grāmata, renewed, due the fourth of January twenty twenty-seven."
    ]
    loans = (LoanLine("A1", "Zaļā grāmata", "2026-12-28"), LoanLine("B2", "", "2026-12-20"))
    before = SessionState(stage=Stage.ACTIVE, account=AccountState(loans=loans))
    after = replace(
        before,
        account=AccountState(
            loans=(
                replace(loans[0], renewed=True, due_date="2027-01-11"),
                replace(loans[1], renewed=False, refusal=Refusal.RENEWAL_LIMIT),
            )
        ),
    )
    assert narrator.session(before, after, "ru") == [
        "Zaļā grāmata, продлено, вернуть до одиннадцатого января две тысячи двадцать седьмого года.",
        "Издание, не продлено. " + translator("ru").gettext("It cannot be renewed again."),
    ]


def test_account_summary_with_counts_and_money(narrator: Narrator) -> None:
    loans = tuple(LoanLine(f"I{n}", overdue=n < 2) for n in range(21))
    state = SessionState(
        stage=Stage.ACTIVE,
        account=AccountState(loans=loans, holds=(Hold("H1", ready=True),), fee_total="3.50"),
    )
    text = narrator.screen("account", state, "ru")[0]
    assert "На руках: двадцать одно издание." in text
    assert "Просрочено: два издания." in text
    assert "Ждут получения: одно издание." in text
    assert "К оплате: три евро пятьдесят центов." in text
    lv = narrator.screen("account", state, "lv")[0]
    assert "Izsniegti: divdesmit viens izdevums." in lv
    assert "Maksājamā summa: trīs eiro un piecdesmit centi." in lv


def test_totals_receipt_choice_and_goodbye(narrator: Narrator) -> None:
    state = _active(*(_item(f"I{n}", ItemStatus.CHECKED_OUT) for n in range(5)))
    finish = narrator.screen("finish", replace(state, stage=Stage.FINISHING), "lv")
    assert finish[0] == "Jūs paņēmāt: pieci izdevumi."
    assert finish[1].startswith("Vai vēlaties čeku? Izvēlieties “")
    bye = narrator.screen(
        "goodbye", SessionState(stage=Stage.GOODBYE, items_done=22, receipt_failed=True), "en"
    )
    assert bye == [
        say("receipt_failed", "en"),
        "You borrowed twenty-two items.",
        say("goodbye", "en"),
    ]


def test_idle_warning_counts_the_seconds(narrator: Narrator) -> None:
    assert (
        narrator.idle(25, "ru")
        == "Вы ещё здесь? До конца сеанса: двадцать пять секунд. Нажмите любую клавишу, чтобы продолжить."
    )
    assert narrator.idle(21, "lv").startswith(
        "Vai jūs vēl esat šeit? Laiks līdz sesijas beigām: divdesmit viena sekunde."
    )
    assert "twenty-two seconds" in narrator.idle(22, "en")
    assert "До конца сеанса: двадцать одна секунда." in narrator.idle(21, "ru")


def test_problems_are_the_screens_words(narrator: Narrator) -> None:
    wrong = SessionState(
        stage=Stage.PIN, problem=LoginProblem.WRONG_PIN, pin_retry=True, attempts_left=2
    )
    assert narrator.session(None, wrong, "en") == [
        "The PIN is not correct. Please try again. Attempts left: two."
    ]
    blocked = SessionState(
        stage=Stage.WELCOME,
        problem=LoginProblem.BLOCKED,
        blocks=(BlockReason.EXCESSIVE_FEES, BlockReason.CARD_EXPIRED),
    )
    assert narrator.session(None, blocked, "lv") == [
        translator("lv").gettext("Your library card has expired. Please renew it at the desk.")
    ]


def test_on_screen_button_labels_in_the_sentence(narrator: Narrator) -> None:
    assert f"“{translator('ru').gettext('Finish')}”" in narrator.screen("checkout", None, "ru")[0]
    assert narrator.help("pin", None, "en").startswith(
        "Type your PIN with the number keys, then choose “Continue”. Up and down"
    )


def test_the_book_drop_and_returns(narrator: Narrator) -> None:
    from kiosk.core.bookdrop import BookDropItem, BookDropState, FinalState
    from kiosk.core.returns import ReturnItem, ReturnState
    from kiosk.core.routing import ReturnOutcome

    first = BookDropState(
        last=BookDropItem(
            1,
            "A1",
            "A1",
            FinalState.CHECKED_IN_SECURED,
            ReturnOutcome.CHECKED_IN,
            1,
            title="Zaļā grāmata",
        )
    )
    second = BookDropState(
        last=BookDropItem(2, "B2", "B2", FinalState.EXCEPTION_BIN, ReturnOutcome.UNKNOWN_ITEM, 0)
    )
    assert narrator.bookdrop(None, first, "lv") == ["Zaļā grāmata, nodots."]
    assert narrator.bookdrop(first, first, "lv") == []
    assert narrator.bookdrop(first, second, "en") == ["An item, received. Staff will check it."]
    r1 = ReturnState(items=(ReturnItem("A1", "A1"),))
    r2 = ReturnState(
        items=(ReturnItem("A1", "A1", ReturnOutcome.CHECKED_IN, title="Zaļā grāmata"),)
    )
    assert narrator.returned(r1, r2, "ru") == ["Zaļā grāmata, возвращено."]
