"""The payment fast paths give what the plain definitions give.

Totals folded once by ``order_money``, a payment's memoised rows and refundable money, and
settlement books that check what their postings share once: each is compared with the
straightforward computation it replaces, on arbitrary postings.
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecommerce_core import InvalidInput, Money
from ecommerce_core.actors import Actor
from ecommerce_core.adapters.memory import InMemoryLedger, InMemoryPaymentRepository
from ecommerce_core.orders import Order, OrderLine
from ecommerce_core.payments import PaymentPolicy
from ecommerce_core.payments.ledger import (
    Account,
    LineMoney,
    Movement,
    OrderMoney,
    Posting,
    order_money,
)
from ecommerce_core.payments.online import GatewayPayment
from ecommerce_core.payments.settlement import _Book
from ecommerce_core.policies import OrderPolicy

AT = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
ACCOUNTS = [
    Account.buyer("alice"),
    Account.credit_provider("huabei"),
    Account.escrow(),
    Account.carrier_cod("SF"),
    Account.merchant("m-1"),
    Account.commission(),
    Account.cod_fee("SF"),
]
FIELDS = ("paid_in", "held", "released", "commission", "refunded", "refundable")

moves = st.lists(
    st.tuples(
        st.sampled_from(["1", "2", ""]),
        st.sampled_from(ACCOUNTS),
        st.sampled_from(ACCOUNTS),
        st.integers(1, 10_000),
    ).filter(lambda m: m[1] != m[2]),
    max_size=12,
)


def postings_of(drawn: list[tuple[str, Account, Account, int]]) -> list[Posting]:
    return [
        Posting(f"k/{n}", "o-1", line, source, target, Money(minor, "CNY"), "capture", AT)
        for n, (line, source, target, minor) in enumerate(drawn, 1)
    ]


def cny(minor: int) -> Money:
    return Money(minor, "CNY")


def paid_payment() -> GatewayPayment:
    lines = (
        OrderLine("1", "tea-01", 2, Money.of("38.00", "CNY")),
        OrderLine("2", "cup-01", 4, Money.of("25.00", "CNY")),
    )
    order = Order.place(
        order_id="o-1",
        buyer_id="alice",
        merchant_id="m-1",
        lines=lines,
        now=AT,
        policy=OrderPolicy(),
    )
    alice = Actor.buyer("alice")
    payment = GatewayPayment.start("p-1", order, alice, now=AT)
    payment.request_capture("sale", alice, amount=order.total, now=AT)
    payment.capture_succeeded("sale", transaction_id="t-1", now=AT, policy=PaymentPolicy())
    payment.collect_events()
    return payment


class TestOrderMoneyTotals:
    @given(moves)
    @settings(max_examples=60)
    def test_the_folded_totals_are_the_sums_of_the_lines(self, drawn):
        view = order_money("o-1", "CNY", postings_of(drawn))
        by_hand = OrderMoney("o-1", "CNY", MappingProxyType(dict(view.lines)))  # no folded totals
        for field in FIELDS:
            assert getattr(view, field) == getattr(by_hand, field), field
        assert view == by_hand

    def test_a_view_built_by_hand_sums_its_lines(self):
        line = LineMoney("1", cny(500), cny(200), cny(250), cny(50), cny(0), cny(0))
        view = OrderMoney("o-1", "CNY", {"1": line, "2": line})
        assert (view.paid_in, view.held, view.refundable) == (cny(1000), cny(400), cny(1000))

    def test_no_postings_make_a_view_of_zeros(self):
        view = order_money("o-1", "CNY", [])
        assert view.lines == {}
        assert [getattr(view, field) for field in FIELDS] == [cny(0)] * len(FIELDS)


class TestPaymentMemo:
    def test_refundable_money_follows_each_copy_of_a_payment(self):
        repository = InMemoryPaymentRepository()
        repository.add(paid_payment())
        first, second = repository.get("p-1"), repository.get("p-1")
        assert first.refundable == second.refundable == cny(17600)
        system = Actor.system("payments")
        first.request_refund("r-1", system, now=AT, reason="damaged", amount=cny(1000))
        assert (first.refundable, second.refundable) == (cny(16600), cny(17600))
        first.settle_refund("r-1", succeeded=True, now=AT)
        assert (first.refundable, first.paid_in) == (cny(16600), cny(17600))
        assert (second.refundable, repository.get("p-1").refundable) == (cny(17600), cny(17600))
        assert second.money().refunded == cny(0)
        assert first.money().refunded == cny(1000)

    def test_refundable_by_line_is_a_fresh_dict_each_time(self):
        payment = paid_payment()
        lines = payment.refundable_by_line()
        lines["1"] = cny(1)
        assert payment.refundable_by_line() == {"1": cny(7600), "2": cny(10000)}
        assert payment.refundable == cny(17600)


class TestSettlementBooks:
    def test_every_posting_of_a_book_is_checked_like_the_first(self):
        book = _Book("op", "o-1", Movement.CAPTURE, AT)
        buyer, merchant = Account.buyer("alice"), Account.merchant("m-1")
        book.move("1", buyer, merchant, cny(100))
        with pytest.raises(InvalidInput) as caught:
            book.move("2", merchant, merchant, cny(100))
        assert caught.value.field == "target"
        with pytest.raises(InvalidInput) as caught:
            book.move("2", buyer, "m-1", cny(100))  # type: ignore[arg-type]
        assert caught.value.field == "account"
        book.move("2", buyer, Account.commission(), cny(5))
        built = [
            Posting("op/1", "o-1", "1", buyer, merchant, cny(100), "capture", AT),
            Posting("op/2", "o-1", "2", buyer, Account.commission(), cny(5), "capture", AT),
        ]
        assert book.postings == built

    def test_a_naive_time_is_refused_at_the_first_posting(self):
        book = _Book("op", "o-1", Movement.CAPTURE, datetime(2026, 3, 1))  # noqa: DTZ001  # under test
        book.move("1", Account.buyer("alice"), Account.merchant("m-1"), cny(0))  # nothing moves
        with pytest.raises(InvalidInput) as caught:
            book.move("1", Account.buyer("alice"), Account.merchant("m-1"), cny(1))
        assert caught.value.field == "at"


class TestLedgerBalances:
    @given(st.lists(moves, max_size=4))
    @settings(max_examples=40)
    def test_balances_asked_between_appends_are_those_of_every_posting_so_far(self, batches):
        ledger = InMemoryLedger()
        expected: dict[Account, int] = {}
        for number, drawn in enumerate(batches):
            postings = [
                Posting(
                    f"b{number}/{i}",
                    p.order_id,
                    p.line_id,
                    p.source,
                    p.target,
                    p.amount,
                    p.movement,
                    p.at,
                )
                for i, p in enumerate(postings_of(drawn))
            ]
            ledger.append(postings)
            ledger.append(postings)  # a repeat changes nothing
            for p in postings:
                expected[p.source] = expected.get(p.source, 0) - p.amount.minor
                expected[p.target] = expected.get(p.target, 0) + p.amount.minor
            for account in ACCOUNTS:
                assert ledger.balance(account, "CNY") == cny(expected.get(account, 0))
        assert ledger.balances("CNY") == {a: cny(m) for a, m in sorted(expected.items())}
