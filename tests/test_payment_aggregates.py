"""The payment aggregates on their own: records, stale and contradictory reports, refusals."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import attrs
import pytest

from ecommerce_core import (
    Actor,
    CurrencyMismatch,
    Forbidden,
    IdempotencyConflict,
    InvalidInput,
    Money,
    NotFound,
    Order,
    OrderLine,
    OrderPolicy,
    TransitionNotAllowed,
)
from ecommerce_core.payments import (
    CodPayment,
    CreditPayment,
    EscrowPayment,
    GatewayPayment,
    Notification,
    NotificationKind,
    PaymentPolicy,
    RefundStatus,
)
from ecommerce_core.payments.base import allocation_of
from ecommerce_core.payments.events import PaymentFailed
from ecommerce_core.payments.ledger import ORDER_LEVEL

NOW = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
POLICY = PaymentPolicy()
ALICE, SYSTEM, MERCHANT = Actor.buyer("alice"), Actor.system(), Actor.merchant("m-1")


def cny(amount: str) -> Money:
    return Money.of(amount, "CNY")


def order(method: str = "online", fee: str | None = None) -> Order:
    return Order.place(
        order_id="o-1",
        buyer_id="alice",
        merchant_id="m-1",
        lines=[OrderLine("1", "tea", 2, cny("38.00"))],
        now=NOW,
        policy=OrderPolicy(),
        shipping_fee=None if fee is None else cny(fee),
        payment_method=method,
    )


def payment() -> GatewayPayment:
    return GatewayPayment.start("p-1", order(), ALICE, now=NOW)


def sold() -> GatewayPayment:
    p = payment()
    p.request_capture("sale", ALICE, amount=p.total, now=NOW)
    p.capture_succeeded("sale", transaction_id="tx-1", now=NOW, policy=POLICY)
    return p


def authorized() -> GatewayPayment:
    p = payment()
    p.authorize(amount=p.total, transaction_id="au-1", now=NOW, ttl=timedelta(days=7))
    return p


def note(kind, amount="76.00", **fields) -> Notification:
    return Notification(
        event_id=fields.pop("event_id", "ev-1"),
        payment_id=fields.pop("payment_id", "p-1"),
        kind=kind,
        amount=cny(amount),
        **fields,
    )


def frozen(p) -> dict[str, object]:
    return {
        f.name: getattr(p, f.name) for f in attrs.fields(type(p)) if f.eq and f.name != "events"
    }


class TestStarting:
    def test_the_allocation_puts_the_shipping_fee_at_the_order_level(self):
        assert allocation_of(order(fee="8.00")) == (("1", cny("76.00")), (ORDER_LEVEL, cny("8.00")))

    def test_a_payment_of_another_method_or_of_nothing_is_refused(self):
        with pytest.raises(InvalidInput, match="online payment"):
            GatewayPayment.start("p-1", order("escrow"), ALICE, now=NOW)
        free = order()
        free.total = cny("0.00")
        with pytest.raises(InvalidInput, match="nothing to pay"):
            GatewayPayment.start("p-1", free, ALICE, now=NOW)
        assert EscrowPayment.start("p-1", order("escrow"), ALICE, now=NOW).holds_in_escrow

    def test_only_the_buyer_the_platform_or_the_system_starts_a_payment(self):
        with pytest.raises(Forbidden, match="another buyer"):
            GatewayPayment.start("p-1", order(), Actor.buyer("bob"), now=NOW)
        with pytest.raises(Forbidden):
            GatewayPayment.start("p-1", order(), MERCHANT, now=NOW)


class TestCaptures:
    @pytest.mark.parametrize(
        ("amount", "error"),
        [(7600, InvalidInput), (Money.of("1.00", "USD"), CurrencyMismatch)],
    )
    def test_a_malformed_capture_is_refused_and_changes_nothing(self, amount, error):
        p = authorized()
        before = frozen(p)
        with pytest.raises(error):
            p.request_capture("c", MERCHANT, amount=amount, now=NOW)
        assert frozen(p) == before

    def test_a_repeated_capture_request_returns_the_first_and_another_amount_conflicts(self):
        p = authorized()
        first = p.request_capture("c", MERCHANT, amount=cny("10.00"), now=NOW)
        assert p.request_capture("c", MERCHANT, amount=cny("10.00"), now=NOW) is first
        with pytest.raises(IdempotencyConflict):
            p.request_capture("c", MERCHANT, amount=cny("11.00"), now=NOW)

    def test_a_refunded_payment_captures_no_more(self):
        p = sold()
        p.request_refund("r", SYSTEM, now=NOW, reason="x", amount=p.total)
        p.settle_refund("r", succeeded=True, now=NOW)
        assert p.state == "refunded"
        with pytest.raises(TransitionNotAllowed):
            p.request_capture("c2", MERCHANT, amount=cny("1.00"), now=NOW)

    def test_a_capture_settles_once(self):
        p = sold()
        before = frozen(p)
        assert not p.capture_succeeded("sale", transaction_id="tx-1", now=NOW, policy=POLICY)
        assert not p.capture_failed("sale", now=NOW, reason="late")
        assert frozen(p) == before
        with pytest.raises(InvalidInput, match="no capture with this key"):
            p.capture_failed("nope", now=NOW, reason="x")

    def test_a_capture_the_provider_took_after_refusing_it_is_booked_after_all(self):
        p = authorized()
        p.request_capture("c", MERCHANT, amount=cny("10.00"), now=NOW)
        p.capture_failed("c", now=NOW, reason="timeout")
        assert p.capture_succeeded("c", transaction_id="tx-9", now=NOW, policy=POLICY)
        assert p.captured == cny("10.00")
        assert [c.key for c in p.captures] == ["c", "txn:tx-9"]

    def test_a_capture_still_pending_counts_against_what_is_left_to_capture(self):
        p = authorized()  # 76.00
        p.request_capture("c1", MERCHANT, amount=cny("60.00"), now=NOW)
        before = frozen(p)
        with pytest.raises(InvalidInput, match=r"16\.00 CNY is left to capture"):
            p.request_capture("c2", MERCHANT, amount=cny("20.00"), now=NOW)
        assert frozen(p) == before
        assert p.request_capture("c3", MERCHANT, amount=cny("16.00"), now=NOW).amount == cny(
            "16.00"
        )

    def test_a_capture_recorded_now_says_so(self):
        p = payment()
        p.request_capture("sale", ALICE, amount=p.total, now=NOW)
        assert p.capture_succeeded("sale", transaction_id="tx-1", now=NOW, policy=POLICY) is True


class TestAuthorization:
    def test_an_authorization_recorded_now_says_so(self):
        p = payment()
        assert p.authorize(amount=p.total, transaction_id="au-1", now=NOW, ttl=timedelta(1)) is True

    def test_a_decline_after_a_capture_changes_nothing(self):
        p = authorized()
        p.request_capture("c", MERCHANT, amount=cny("10.00"), now=NOW)
        p.capture_succeeded("c", transaction_id="tx", now=NOW, policy=POLICY)
        before = frozen(p)
        assert not p.decline(now=NOW, reason="late")
        assert frozen(p) == before

    def test_a_lapsed_authorization_records_what_was_never_captured(self):
        p = authorized()
        p.request_capture("c", MERCHANT, amount=cny("10.00"), now=NOW)
        p.capture_succeeded("c", transaction_id="tx", now=NOW, policy=POLICY)
        assert p.expire(NOW + timedelta(days=8))
        assert p.collect_events()[-1].lapsed == cny("66.00")

    def test_a_malformed_authorization_is_refused(self):
        p = payment()
        with pytest.raises(CurrencyMismatch):
            p.authorize(amount=Money.of("1", "USD"), transaction_id="a", now=NOW, ttl=timedelta(1))
        with pytest.raises(InvalidInput):
            p.authorize(amount=cny("0.00"), transaction_id="a", now=NOW, ttl=timedelta(1))

    def test_an_authorization_after_a_capture_is_stale(self):
        p = sold()
        assert not p.authorize(amount=p.total, transaction_id="a", now=NOW, ttl=timedelta(1))
        assert not p.decline(now=NOW, reason="late")
        assert p.state == "captured"

    def test_expiry_waits_for_its_deadline_and_for_pending_captures(self):
        p = authorized()
        assert not p.expire(NOW + timedelta(days=6))
        p.request_capture("c", MERCHANT, amount=cny("10.00"), now=NOW)
        assert not p.expire(NOW + timedelta(days=8))
        p.capture_succeeded("c", transaction_id="tx", now=NOW, policy=POLICY)
        assert p.expire(NOW + timedelta(days=8))
        assert (p.state, p.authorized, p.deadline) == ("captured", cny("10.00"), None)

    def test_a_failure_reported_after_authorization_fails_the_payment(self):
        p = authorized()
        assert p.notify(note("failed", reason="closed"), now=NOW, policy=POLICY) == "applied"
        assert p.state == "failed"
        assert isinstance(p.collect_events()[-1], PaymentFailed)


class TestNotifications:
    def test_a_notification_for_another_payment_is_refused(self):
        with pytest.raises(InvalidInput, match="this is 'p-1'"):
            payment().notify(note("captured", payment_id="p-2"), now=NOW, policy=POLICY)

    @pytest.mark.parametrize(
        ("make", "notification", "outcome"),
        [
            (payment, note("authorized", "0.00"), "an authorization of nothing"),
            (payment, note("captured", "0.00"), "a capture of nothing"),
            (sold, note("captured", request_key="sale"), "capture already recorded"),
            (sold, note("captured", transaction_id="tx-1"), "capture already recorded"),
            (sold, note("refunded", "0.00"), "a refund of nothing"),
            (sold, note("failed"), "already captured"),
            (authorized, note("authorized"), "already authorized"),
        ],
    )
    def test_a_notification_the_history_covers_is_recorded_and_ignored(
        self, make, notification, outcome
    ):
        p = make()
        money = p.money()
        assert p.notify(notification, now=NOW, policy=POLICY) == outcome
        assert p.money() == money
        assert p.notify(notification, now=NOW, policy=POLICY) == "repeat"

    def test_a_failed_refund_or_capture_reported_again_is_ignored(self):
        p = sold()
        p.request_refund("r", SYSTEM, now=NOW, reason="x", amount=cny("1.00"))
        p.settle_refund("r", succeeded=False, now=NOW)
        refund_failed = note("failed", request_key="r", event_id="e1")
        assert p.notify(refund_failed, now=NOW, policy=POLICY) == "refund already failed"
        capture_report = note("failed", request_key="sale", event_id="e2")
        assert p.notify(capture_report, now=NOW, policy=POLICY) == "capture already succeeded"

    def test_a_provider_that_contradicts_how_a_refund_ended_is_refused(self):
        p = sold()
        p.request_refund("r", SYSTEM, now=NOW, reason="x", amount=cny("1.00"))
        p.settle_refund("r", succeeded=False, now=NOW)
        before = copy.copy(frozen(p))
        with pytest.raises(IdempotencyConflict, match="already failed"):
            p.notify(note("refunded", "1.00", request_key="r"), now=NOW, policy=POLICY)
        assert frozen(p) == before
        assert [r.status for r in p.refunds] == [RefundStatus.FAILED]

    def test_a_notification_needs_ids_and_a_non_negative_amount(self):
        with pytest.raises(InvalidInput):
            Notification("", "p-1", NotificationKind.CAPTURED, cny("1.00"))
        with pytest.raises(InvalidInput):
            Notification("e", "p-1", NotificationKind.CAPTURED, cny("-1.00"))


class TestRefundRecords:
    def test_an_unknown_refund_is_not_found_and_a_settled_one_settles_once(self):
        p = sold()
        with pytest.raises(NotFound):
            p.refund("nope")
        p.request_refund("r", SYSTEM, now=NOW, reason="x", amount=cny("1.00"))
        assert p.settle_refund("r", succeeded=True, now=NOW)
        assert not p.settle_refund("r", succeeded=True, now=NOW)

    @pytest.mark.parametrize(
        ("actor", "error"),
        [
            ("system", InvalidInput),
            (Actor.buyer("alice"), Forbidden),
            (Actor.merchant("m-2"), Forbidden),
        ],
    )
    def test_only_the_merchant_the_platform_or_the_system_refunds(self, actor, error):
        with pytest.raises(error):
            sold().request_refund("r", actor, now=NOW, reason="x", amount=cny("1.00"))

    @pytest.mark.parametrize(
        ("key", "lines"),
        [("k" * 201, {"1": cny("1.00")}), ("r", {"1": 100}), (" ", {"1": cny("1.00")})],
    )
    def test_a_malformed_refund_is_refused(self, key, lines):
        p = sold()
        before = frozen(p)
        with pytest.raises(InvalidInput):
            p.request_refund(key, MERCHANT, now=NOW, reason="x", lines=lines)
        assert frozen(p) == before


class TestCodAndCredit:
    def test_cod_and_credit_payments_are_for_their_own_orders(self):
        with pytest.raises(InvalidInput, match="not a COD order"):
            CodPayment.start("p-1", order(), carrier_id="SF", now=NOW)
        with pytest.raises(InvalidInput, match="not a credit order"):
            CreditPayment.draw(
                "p-1", order(), ALICE, provider_id="c", periods=3, now=NOW, policy=POLICY
            )

    @pytest.mark.parametrize(
        ("amount", "error"), [(7600, InvalidInput), (Money.of("76.00", "USD"), CurrencyMismatch)]
    )
    def test_cash_must_be_money_in_the_orders_currency(self, amount, error):
        cod = CodPayment.start("p-1", order("cod"), carrier_id="SF", now=NOW)
        with pytest.raises(error):
            cod.collect("k", Actor.carrier("SF"), amount=amount, now=NOW)
        assert cod.state == "awaiting_collection"

    def test_a_refusal_needs_a_reason(self):
        cod = CodPayment.start("p-1", order("cod"), carrier_id="SF", now=NOW)
        with pytest.raises(InvalidInput):
            cod.refuse(Actor.carrier("SF"), reason=" ", now=NOW)

    def test_an_installment_keeps_the_penalty_it_was_repaid_with(self):
        credit = CreditPayment.draw(
            "p-1", order("credit"), ALICE, provider_id="c", periods=3, now=NOW, policy=POLICY
        )
        late = NOW + timedelta(days=45)
        first = credit.repay("k", ALICE, now=late, policy=POLICY)
        assert first.days_late(late + timedelta(days=100)) == 15
        assert first.penalty_at(late + timedelta(days=100), POLICY) == first.penalty
        assert credit.installments[1].penalty_at(late, POLICY) == cny("0.00")
        second = credit.installments[1]  # due on day 60: 25 days late on day 85
        assert second.penalty_at(late + timedelta(days=40), POLICY) == cny("0.32")
