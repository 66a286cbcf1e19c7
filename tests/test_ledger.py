"""The ledger's values and views, and how operations become postings (settlement)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecommerce_core import DefinitionError, InvalidInput, Money
from ecommerce_core.errors import CurrencyMismatch
from ecommerce_core.payments import PaymentPolicy
from ecommerce_core.payments.ledger import (
    ORDER_LEVEL,
    Account,
    AccountKind,
    Movement,
    Posting,
    order_money,
)
from ecommerce_core.payments.settlement import (
    payer_postings,
    refund_postings,
    release_postings,
    remit_postings,
    split,
)

AT = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
BUYER, ESCROW = Account.buyer("alice"), Account.escrow()
MERCHANT, COMMISSION = Account.merchant("m-1"), Account.commission()


def cny(minor: int) -> Money:
    return Money(minor, "CNY")


def posting(source, target, minor, *, line="1", key="k", order="o-1", movement="capture"):
    return Posting(key, order, line, source, target, cny(minor), movement, AT)


ACCOUNTS = st.sampled_from(
    [
        BUYER,
        Account.credit_provider("huabei"),
        ESCROW,
        Account.carrier_cod("SF"),
        MERCHANT,
        COMMISSION,
        Account.cod_fee("SF"),
    ]
)


class TestPostings:
    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"key": ""}, "key"),
            ({"order_id": " "}, "order_id"),
            ({"line_id": None}, "line_id"),
            ({"target": BUYER}, "target"),
            ({"amount": cny(0)}, "amount"),
            ({"amount": cny(-5)}, "amount"),
            ({"amount": 5}, "amount"),
            ({"at": datetime(2026, 3, 1)}, "at"),  # noqa: DTZ001  # the naive time under test
            ({"source": "alice"}, "account"),
        ],
    )
    def test_a_malformed_posting_is_refused(self, change, field):
        fields = {
            "key": "k",
            "order_id": "o-1",
            "line_id": "1",
            "source": BUYER,
            "target": ESCROW,
            "amount": cny(100),
            "movement": Movement.CAPTURE,
            "at": AT,
        } | change
        with pytest.raises(InvalidInput) as caught:
            Posting(**fields)
        assert caught.value.field == field

    def test_an_account_needs_an_owner_and_a_known_kind(self):
        with pytest.raises(InvalidInput):
            Account(AccountKind.BUYER, "")
        with pytest.raises(InvalidInput, match=r"'wallet'.*must be one of 'buyer'"):
            Account("wallet", "alice")
        assert str(Account.cod_fee("SF")) == "cod_fee:SF"


class TestOrderMoney:
    def test_the_view_sorts_money_into_paid_in_held_released_commission_refunded(self):
        view = order_money(
            "o-1",
            "CNY",
            [
                posting(BUYER, ESCROW, 7600, key="a"),
                posting(ESCROW, MERCHANT, 3610, key="b"),
                posting(ESCROW, COMMISSION, 190, key="c"),
                posting(ESCROW, BUYER, 1000, key="d"),
                posting(BUYER, ESCROW, 800, line=ORDER_LEVEL, key="e"),
                posting(BUYER, MERCHANT, 999, order="o-2", key="f"),
            ],
        )
        line = view.line("1")
        assert (line.paid_in, line.held, line.released) == (cny(7600), cny(2800), cny(3610))
        assert (line.commission, line.refunded, line.refundable) == (cny(190), cny(1000), cny(6600))
        assert view.line(ORDER_LEVEL).held == cny(800)
        assert view.paid_in == cny(8400)
        assert view.balanced
        assert view.line("9").paid_in == cny(0)

    def test_a_repayment_between_buyer_and_provider_is_not_the_orders_money(self):
        provider = Account.credit_provider("huabei")
        view = order_money("o-1", "CNY", [posting(BUYER, provider, 500, movement="repay")])
        assert view.lines == {}

    def test_the_carriers_cod_fee_is_commission_a_refund_never_takes_back(self):
        carrier = Account.carrier_cod("SF")
        view = order_money(
            "o-1",
            "CNY",
            [
                posting(BUYER, carrier, 1000, key="a", movement="collect"),
                posting(carrier, MERCHANT, 990, key="b", movement="remit"),
                posting(carrier, Account.cod_fee("SF"), 10, key="c", movement="remit"),
            ],
        )
        assert (view.commission, view.line("1").kept, view.refundable) == (
            cny(10),
            cny(10),
            cny(990),
        )

    def test_a_posting_in_another_currency_is_refused(self):
        usd = Posting("k", "o-1", "1", BUYER, ESCROW, Money(1, "USD"), "capture", AT)
        with pytest.raises(CurrencyMismatch):
            order_money("o-1", "CNY", [usd])

    @given(
        st.lists(
            st.tuples(ACCOUNTS, ACCOUNTS, st.integers(1, 10_000), st.sampled_from(["1", "2", ""])),
            max_size=30,
        )
    )
    def test_any_postings_keep_every_line_balanced(self, moves):
        postings = [
            posting(a, b, minor, line=line, key=str(n))
            for n, (a, b, minor, line) in enumerate(moves)
            if a != b
        ]
        view = order_money("o-1", "CNY", postings)
        assert view.balanced
        net = view.paid_in - view.refunded
        assert net == view.held + view.released + view.commission


class TestSettlement:
    ALLOCATION = (("1", cny(7600)), ("2", cny(2500)), (ORDER_LEVEL, cny(800)))
    POLICY = PaymentPolicy()

    def capture(self, minor, done=(), hold=False, key="c"):
        return payer_postings(
            key=key,
            order_id="o-1",
            allocation=self.ALLOCATION,
            done=done,
            payer=BUYER,
            amount=cny(minor),
            hold=hold,
            merchant=MERCHANT,
            policy=self.POLICY,
            movement=Movement.CAPTURE,
            at=AT,
        )

    def test_a_capture_is_split_over_the_lines_by_what_each_costs(self):
        postings = self.capture(10_900, hold=True)
        assert [(p.line_id, p.amount) for p in postings] == [
            ("1", cny(7600)),
            ("2", cny(2500)),
            (ORDER_LEVEL, cny(800)),
        ]
        assert [p.key for p in postings] == ["c/1", "c/2", "c/3"]

    def test_captures_fill_the_lines_and_the_excess_goes_to_the_order_level(self):
        first = self.capture(5_450, hold=True, key="a")
        second = self.capture(10_000, done=first, hold=True, key="b")
        view = order_money("o-1", "CNY", [*first, *second])
        assert view.line("1").paid_in == cny(7600)
        assert view.line("2").paid_in == cny(2500)
        assert view.line(ORDER_LEVEL).paid_in == cny(800 + 4550)

    @given(parts=st.lists(st.integers(1, 3000), min_size=1, max_size=6))
    def test_commission_is_rounded_once_whatever_the_steps(self, parts):
        done: tuple[Posting, ...] = ()
        for n, minor in enumerate(parts):
            done = (*done, *self.capture(minor, done=done, key=str(n)))
        view = order_money("o-1", "CNY", done)
        once = self.POLICY.commission_total(view.paid_in)
        assert view.commission == once
        assert view.released + view.commission == view.paid_in

    def test_commission_is_capped_per_order(self):
        policy = PaymentPolicy(commission_caps={"CNY": Money.of("1.00", "CNY")})
        postings = payer_postings(
            key="c",
            order_id="o-1",
            allocation=self.ALLOCATION,
            done=(),
            payer=BUYER,
            amount=cny(10_900),
            hold=False,
            merchant=MERCHANT,
            policy=policy,
            movement=Movement.CAPTURE,
            at=AT,
        )
        assert order_money("o-1", "CNY", postings).commission == cny(100)

    def test_release_moves_only_the_lines_asked_and_charges_commission(self):
        held = self.capture(10_900, hold=True)
        released = release_postings(
            key="r", order_id="o-1", done=held, lines=["2"], merchant=MERCHANT,
            policy=self.POLICY, at=AT,
        )  # fmt: skip
        view = order_money("o-1", "CNY", [*held, *released])
        assert view.line("2").held == cny(0)
        assert (view.line("2").released, view.line("2").commission) == (cny(2375), cny(125))
        assert view.line("1").held == cny(7600)

    def test_a_refund_takes_held_money_first_then_merchant_and_commission_in_proportion(self):
        held = self.capture(10_900, hold=True)
        released = release_postings(
            key="r", order_id="o-1", done=held, lines=None, merchant=MERCHANT,
            policy=self.POLICY, at=AT,
        )  # fmt: skip
        refund = refund_postings(
            key="f", order_id="o-1", done=(*held, *released), amounts={"1": cny(2000)},
            payer=BUYER, at=AT,
        )  # fmt: skip
        assert {(p.source.kind, p.amount) for p in refund} == {
            (AccountKind.MERCHANT, cny(1900)),
            (AccountKind.COMMISSION, cny(100)),
        }
        with pytest.raises(InvalidInput, match="more than line '1' can refund"):
            refund_postings(
                key="g", order_id="o-1", done=(*held, *released), amounts={"1": cny(7601)},
                payer=BUYER, at=AT,
            )  # fmt: skip

    def test_remitting_nothing_posts_nothing(self):
        assert (
            remit_postings(
                key="m", order_id="o-1", done=(), merchant=MERCHANT, policy=self.POLICY, at=AT
            )
            == ()
        )

    def test_split_drops_zero_shares_and_returns_nothing_for_nothing(self):
        assert split(cny(0), [("1", 1)]) == []
        assert split(cny(3), [("1", 1), ("2", 0), ("3", 1)]) == [("1", cny(2)), ("3", cny(1))]


class TestPolicy:
    def test_the_defaults_are_the_published_ones(self):
        policy = PaymentPolicy()
        assert sorted(policy.credit_fee_rates) == [3, 6, 12]
        assert policy.credit_fee(Money.of("300.00", "CNY"), 6) == Money.of("6.00", "CNY")
        assert policy.cod_excluded_sales_modes == {"flash_sale", "team_purchase", "lucky_draw"}

    @pytest.mark.parametrize(
        "change",
        [
            {"commission_rate": Decimal("0.31")},
            {"commission_rate": Decimal("-0.01")},
            {"commission_rate": 0.05},
            {"cod_fee_rate": Decimal("NaN")},
            {"commission_caps": {"CNY": Money.of("1.00", "USD")}},
            {"cod_limits": {"CNY": Money.of("-1.00", "CNY")}},
            {"authorization_ttl": __import__("datetime").timedelta(0)},
            {"credit_fee_rates": {}},
            {"credit_fee_rates": {0: Decimal("0.01")}},
            {"credit_fee_rates": {3: Decimal(2)}},
        ],
    )
    def test_a_bad_policy_is_refused_when_built(self, change):
        with pytest.raises(DefinitionError):
            PaymentPolicy(**change)

    def test_cod_is_refused_over_its_cap_in_an_unlisted_currency_and_for_excluded_modes(self):
        policy = PaymentPolicy(cod_limits={"CNY": Money.of("100.00", "CNY")})
        assert policy.cod_refusal(Money.of("100.00", "CNY")) is None
        assert "limited to 100.00 CNY" in policy.cod_refusal(Money.of("100.01", "CNY"))
        assert "not offered in USD" in policy.cod_refusal(Money.of("1.00", "USD"))
        assert "team_purchase" in policy.cod_refusal(Money.of("1.00", "CNY"), "team_purchase")

    def test_an_unoffered_number_of_periods_is_refused(self):
        with pytest.raises(InvalidInput, match="3, 6, 12 periods"):
            PaymentPolicy().credit_fee(Money.of("300.00", "CNY"), 5)

    @given(minor=st.integers(1, 10**7), days=st.integers(-5, 5000))
    def test_the_penalty_grows_with_the_days_late_and_never_exceeds_the_installment(
        self, minor, days
    ):
        policy = PaymentPolicy()
        amount = cny(minor)
        penalty = policy.penalty(amount, days)
        assert cny(0) <= penalty <= amount
        assert policy.penalty(amount, days + 1) >= penalty
        if days > 0:
            assert penalty == min(cny(minor * days * 5 // 10_000), amount)
