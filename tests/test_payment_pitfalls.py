"""The pitfalls real payment code falls into, each proven by name.

- a COD order is never expired as unpaid;
- a capture that arrives after the order was cancelled for timeout is refunded automatically;
- a refund during the escrow hold pauses auto-confirm (and keeps the remaining time);
- a failed refund does not count;
- two concurrent captures or refunds of one payment cannot both succeed;
- an order with a payment in flight is not expired by the payment timeout.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecommerce_core import Actor, Money, PaymentNotCompleted, VersionConflict
from ecommerce_core.demo import demo_payment_service
from ecommerce_core.payments import RefundStatus
from ecommerce_core.ports import GatewayStatus, RefundRequest

ALICE = Actor.buyer("alice")
TEAHOUSE = Actor.merchant("m-teahouse")
SF = Actor.carrier("SF")


def cny(amount: str) -> Money:
    return Money.of(amount, "CNY")


def scripted(service, decide):
    service.payments.decide = decide
    return service.payments


def declines_refunds(request):
    return GatewayStatus.DECLINED if isinstance(request, RefundRequest) else GatewayStatus.SUCCEEDED


def refunds_pending(request):
    return GatewayStatus.PENDING if isinstance(request, RefundRequest) else GatewayStatus.SUCCEEDED


class TestCashOnDelivery:
    @settings(max_examples=30, deadline=None)
    @given(days=st.lists(st.integers(0, 400), min_size=1, max_size=4), shipped=st.booleans())
    def test_a_cod_order_is_never_expired_as_unpaid(self, days, shipped):
        service, clock = demo_payment_service()
        order = service.buy_now(ALICE, "tea-01", 2, "cod")
        assert (order.state, order.deadline) == ("awaiting_shipment", None)
        if shipped:
            service.ship(order.id, TEAHOUSE, carrier="SF", tracking_number="SF1")
        for step in days:
            clock.advance(timedelta(days=step))
            assert service.expire_due() == []
        stored = service.orders.get(order.id)
        assert stored.state == ("awaiting_collection" if shipped else "awaiting_shipment")
        assert stored.cancellation is None


class TestLateCapture:
    def test_a_capture_after_a_timeout_cancel_is_refunded_automatically(self):
        service, clock = demo_payment_service()
        gateway = scripted(service, lambda _: GatewayStatus.PENDING)
        order = service.buy_now(ALICE, "tea-01", 2)
        with pytest.raises(PaymentNotCompleted, match="pending"):
            service.pay(order.id, ALICE)
        (payment,) = service.payments_of(order.id)
        gateway.decide = lambda _: GatewayStatus.SUCCEEDED
        service.void(payment.id, Actor.system())  # we stop waiting; the clock runs again
        clock.advance(timedelta(minutes=31))
        assert [f.trigger for f in service.expire_due()] == ["expire_payment"]
        assert service.orders.get(order.id).cancellation.reason == "payment timeout"

        late = gateway.report_capture(payment.id, order.total)  # the buyer paid after all
        outcome = service.handle_notification(late)

        assert (outcome.outcome, outcome.order_state) == ("applied", "cancelled")
        money = service.money(order.id)
        assert money.paid_in == money.refunded == order.total
        assert gateway.refunded[order.id] == gateway.charged[order.id] == order.total
        (refund,) = service.payments_of(order.id)[0].refunds
        assert refund.automatic
        assert refund.status is RefundStatus.SUCCEEDED

    def test_a_pending_sale_of_a_cancelled_order_is_refunded_when_it_completes(self):
        service, _ = demo_payment_service()
        gateway = scripted(service, lambda _: GatewayStatus.PENDING)
        order = service.buy_now(ALICE, "tea-01", 1)
        with pytest.raises(PaymentNotCompleted):
            service.pay(order.id, ALICE)
        (payment,) = service.payments_of(order.id)
        service.cancel(order.id, ALICE, "found it cheaper")  # the void stays pending too
        gateway.decide = lambda _: GatewayStatus.SUCCEEDED
        service.handle_notification(gateway.settle_pending(f"{payment.id}:sale"))
        money = service.money(order.id)
        assert money.paid_in == money.refunded == order.total
        assert service.orders.get(order.id).state == "cancelled"


class TestAutomaticRefunds:
    def test_a_declined_automatic_refund_is_kept_failed_until_a_retry_is_asked(self):
        service, _ = demo_payment_service()
        order = service.buy_now(ALICE, "tea-01", 2)
        service.pay(order.id, ALICE)
        scripted(service, declines_refunds)
        service.cancel(order.id, ALICE, "changed my mind")
        (payment,) = service.payments_of(order.id)
        assert [r.status for r in payment.refunds] == [RefundStatus.FAILED]
        service.reconcile(order.id)  # an ordinary touch does not hammer the provider
        assert len(service.payments_of(order.id)[0].refunds) == 1
        assert service.money(order.id).refundable == order.total
        scripted(service, lambda _: GatewayStatus.SUCCEEDED)
        service.reconcile(order.id, retry_failed=True)
        money = service.money(order.id)
        assert money.refunded == money.paid_in == order.total


class TestRefundDuringEscrowHold:
    def test_a_refund_during_the_escrow_hold_pauses_auto_confirm(self):
        service, clock = demo_payment_service()
        order = service.buy_now(ALICE, "tea-01", 2, "escrow")
        service.pay(order.id, ALICE)
        service.ship(order.id, TEAHOUSE, carrier="SF", tracking_number="SF1")
        scripted(service, refunds_pending)
        clock.advance(timedelta(days=4))
        refund = service.refund(order.id, TEAHOUSE, key="r-1", lines={"1": cny("38.00")})
        assert refund.status is RefundStatus.PENDING
        stored = service.orders.get(order.id)
        assert stored.deadline is None
        assert stored.paused.trigger == "auto_confirm"
        assert stored.paused.remaining == timedelta(days=6)

        clock.advance(timedelta(days=30))  # long past the original auto-confirm
        assert service.expire_due() == []
        assert service.orders.get(order.id).state == "shipped"

        service.handle_notification(service.payments.settle_pending(refund.id))
        resumed = service.orders.get(order.id)
        assert resumed.deadline.at == clock.now() + timedelta(days=6)
        clock.advance(timedelta(days=6))
        assert [f.trigger for f in service.expire_due()] == ["auto_confirm"]
        settled = service.orders.get(order.id)
        assert settled.state == "completed"
        money = service.money(order.id)
        assert (money.refunded, money.held) == (cny("38.00"), cny("0.00"))
        assert money.released + money.commission == cny("38.00")


class TestFailedRefund:
    def test_a_failed_refund_does_not_count(self):
        service, _ = demo_payment_service()
        order = service.buy_now(ALICE, "tea-01", 2)
        service.pay(order.id, ALICE)
        scripted(service, declines_refunds)
        failed = service.refund(order.id, TEAHOUSE, key="r-1", amount=cny("50.00"))
        assert failed.status is RefundStatus.FAILED
        money = service.money(order.id)
        assert (money.refunded, money.refundable) == (cny("0.00"), cny("76.00"))
        scripted(service, lambda _: GatewayStatus.SUCCEEDED)
        ok = service.refund(order.id, TEAHOUSE, key="r-2", amount=cny("76.00"))
        assert ok.status is RefundStatus.SUCCEEDED
        assert service.money(order.id).refunded == cny("76.00")

    def test_a_pending_refund_counts_until_it_fails(self):
        service, _ = demo_payment_service()
        order = service.buy_now(ALICE, "tea-01", 2)
        service.pay(order.id, ALICE)
        scripted(service, refunds_pending)
        pending = service.refund(order.id, TEAHOUSE, key="r-1", amount=cny("50.00"))
        (payment,) = service.payments_of(order.id)
        assert payment.refundable == cny("26.00")
        with pytest.raises(Exception, match=r"more than the 26\.00 CNY"):
            service.refund(order.id, TEAHOUSE, key="r-2", amount=cny("30.00"))
        service.handle_notification(service.payments.settle_pending(pending.id, succeeded=False))
        (payment,) = service.payments_of(order.id)
        assert payment.refundable == cny("76.00")
        assert service.money(order.id).refunded == cny("0.00")


def event_names(service, aggregate_id):
    """The names of the events published for one aggregate, in order."""
    published = service.publisher.published
    return [type(event).__name__ for event in published if event.aggregate_id == aggregate_id]


def race_on_first_save(service, competitor):
    """Run ``competitor`` just before the first payment save: it loaded the same version."""
    records = service.payment_records
    original_save = records.save
    raced: list[bool] = []

    def save_after_a_competitor(payment, expected_version):
        if not raced:
            raced.append(True)
            competitor()
        return original_save(payment, expected_version)

    records.save = save_after_a_competitor
    return lambda: setattr(records, "save", original_save)


class TestConcurrency:
    def test_two_concurrent_captures_cannot_both_succeed(self):
        service, _ = demo_payment_service()
        order = service.buy_now(ALICE, "tea-01", 2)
        service.pay(order.id, ALICE, capture=False)
        (payment,) = service.payments_of(order.id)
        restore = race_on_first_save(
            service,
            lambda: service.capture(payment.id, TEAHOUSE, amount=order.total, key="second"),
        )
        with pytest.raises(VersionConflict):
            service.capture(payment.id, TEAHOUSE, amount=order.total, key="first")
        restore()
        assert service.payments.charged[order.id] == order.total  # the provider captured once
        assert service.money(order.id).paid_in == order.total
        (stored,) = service.payments_of(order.id)
        assert [c.key for c in stored.captures] == [f"{payment.id}:capture:second"]
        assert service.orders.get(order.id).state == "awaiting_shipment"

    def test_two_concurrent_refunds_cannot_both_succeed(self):
        service, _ = demo_payment_service()
        order = service.buy_now(ALICE, "tea-01", 2)
        service.pay(order.id, ALICE)
        restore = race_on_first_save(
            service,
            lambda: service.refund(order.id, TEAHOUSE, key="second", amount=order.total),
        )
        with pytest.raises(VersionConflict):
            service.refund(order.id, TEAHOUSE, key="first", amount=order.total)
        restore()
        assert service.payments.refunded[order.id] == order.total  # the provider refunded once
        money = service.money(order.id)
        assert (money.refunded, money.refundable) == (order.total, cny("0.00"))

    def test_a_sale_whose_callback_lands_while_the_answer_is_recorded_is_paid_once(self):
        service, _ = demo_payment_service()
        order = service.buy_now(ALICE, "tea-01", 2)

        def callback_first() -> None:  # the provider's callback beats the charge's answer
            (payment,) = service.payments_of(order.id)
            key = f"{payment.id}:sale"
            service.handle_notification(
                service.payments.notification(
                    "captured", payment.id, order.total, request_key=key, transaction_id="tx-cb"
                )
            )

        restore = race_on_first_save(service, callback_first)
        paid = service.pay(order.id, ALICE)
        restore()
        (stored,) = service.payments_of(order.id)
        assert [(c.key, c.status) for c in stored.captures] == [(f"{stored.id}:sale", "succeeded")]
        assert paid.state == service.orders.get(order.id).state == "awaiting_shipment"
        money = service.money(order.id)
        assert (money.paid_in, money.refunded) == (order.total, cny("0.00"))
        assert event_names(service, order.id).count("OrderPaid") == 1

    def test_an_order_a_concurrent_reconcile_paid_first_is_paid_once(self):
        service, _ = demo_payment_service()
        order = service.buy_now(ALICE, "tea-01", 2)
        orders = service.orders
        original_save = orders.save
        saves: list[int] = []

        def save_after_a_reconcile(changed, expected_version):
            saves.append(expected_version)
            if len(saves) == 2:  # pay's own reconcile is about to save: another one wins
                orders.save = original_save
                service.reconcile(order.id)
            return original_save(changed, expected_version)

        orders.save = save_after_a_reconcile
        paid = service.pay(order.id, ALICE)
        orders.save = original_save
        assert len(saves) == 2
        assert (paid.state, paid.holds, paid.payment.amount) == (
            "awaiting_shipment",
            (),
            order.total,
        )
        assert service.orders.get(order.id).version == paid.version
        money = service.money(order.id)
        assert (money.paid_in, money.refunded) == (order.total, cny("0.00"))
        assert event_names(service, order.id).count("OrderPaid") == 1


class TestCancelWhileTheProviderWorks:
    def test_a_cancelled_order_keeps_no_hold_for_a_refund_still_open(self):
        service, _ = demo_payment_service()
        gateway = scripted(service, lambda _: GatewayStatus.PENDING)
        order = service.buy_now(ALICE, "tea-01", 1)
        with pytest.raises(PaymentNotCompleted):
            service.pay(order.id, ALICE, key="k1", capture=False)
        (payment,) = service.payments_of(order.id)
        service.handle_notification(gateway.report_capture(payment.id, cny("0.01")))
        assert service.orders.get(order.id).holds  # the unasked capture's refund is open
        cancelled = service.cancel(order.id, ALICE, "changed my mind")
        assert (cancelled.state, cancelled.holds) == ("cancelled", ())
        gateway.decide = lambda _: GatewayStatus.SUCCEEDED
        for key in gateway.pending_keys():
            service.handle_notification(gateway.settle_pending(key))
        money = service.money(order.id)
        assert (money.paid_in, money.refunded) == (cny("0.01"), cny("0.01"))
        assert service.orders.get(order.id).holds == ()

    def test_a_void_asked_before_the_authorization_arrived_does_not_block_the_next(self):
        service, _ = demo_payment_service()
        gateway = scripted(service, lambda _: GatewayStatus.PENDING)
        order = service.buy_now(ALICE, "tea-01", 1)
        with pytest.raises(PaymentNotCompleted):
            service.pay(order.id, ALICE, key="k1", capture=False)
        service.cancel(order.id, ALICE, "changed my mind")  # voids: the provider is busy
        (payment,) = service.payments_of(order.id)
        assert sorted(gateway.pending_keys()) == [f"{payment.id}:authorize", f"{payment.id}:void"]
        gateway.decide = lambda _: GatewayStatus.SUCCEEDED
        authorized = gateway.settle_pending(f"{payment.id}:authorize")
        outcome = service.handle_notification(authorized)  # reconcile voids it again, by its id
        assert outcome.order_state == "cancelled"
        (voided,) = service.payments_of(order.id)
        assert voided.state == "voided"
        late = gateway.settle_pending(f"{payment.id}:void")  # the first void completes too
        service.handle_notification(late)
        assert service.payments_of(order.id)[0].state == "voided"
        assert service.money(order.id).paid_in == cny("0.00")


class TestPaymentActivity:
    def test_an_order_with_a_payment_in_flight_is_not_expired_by_the_payment_timeout(self):
        service, clock = demo_payment_service()
        gateway = scripted(service, lambda _: GatewayStatus.PENDING)
        order = service.buy_now(ALICE, "tea-01", 2)
        clock.advance(timedelta(minutes=20))
        with pytest.raises(PaymentNotCompleted, match="pending"):
            service.pay(order.id, ALICE)
        paused = service.orders.get(order.id)
        assert paused.deadline is None
        assert paused.paused.remaining == timedelta(minutes=10)
        clock.advance(timedelta(days=3))
        assert service.expire_due() == []
        (payment,) = service.payments_of(order.id)
        service.handle_notification(gateway.settle_pending(f"{payment.id}:sale"))
        paid = service.orders.get(order.id)
        assert (paid.state, paid.holds, paid.deadline) == ("awaiting_shipment", (), None)

    def test_a_declined_payment_gives_the_buyer_the_time_that_was_left(self):
        service, clock = demo_payment_service()
        scripted(service, lambda _: GatewayStatus.DECLINED)
        order = service.buy_now(ALICE, "tea-01", 2)
        clock.advance(timedelta(minutes=25))
        with pytest.raises(PaymentNotCompleted, match="declined"):
            service.pay(order.id, ALICE)
        stored = service.orders.get(order.id)
        assert stored.deadline.at == clock.now() + timedelta(minutes=5)
        assert stored.holds == ()
