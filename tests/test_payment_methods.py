"""The four payment methods through PaymentService: what each does to the order and the ledger."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from ecommerce_core import (
    Actor,
    CreditLimitExceeded,
    CurrencyMismatch,
    DefinitionError,
    EcommerceCoreError,
    Forbidden,
    IdempotencyConflict,
    InvalidInput,
    Money,
    NotFound,
    PaymentNotCompleted,
    RuleViolation,
    TransitionNotAllowed,
)
from ecommerce_core.demo import demo_payment_service, demo_service
from ecommerce_core.events import OrderPaid
from ecommerce_core.payments import CodPayment, CreditPayment, PaymentPolicy, RefundStatus
from ecommerce_core.payments.events import (
    CashCollected,
    CashRemitted,
    EscrowReleased,
    OrderSettled,
    RefundSucceeded,
)
from ecommerce_core.ports import GatewayStatus

ALICE, BOB = Actor.buyer("alice"), Actor.buyer("bob")
TEAHOUSE = Actor.merchant("m-teahouse")
SF = Actor.carrier("SF")


def cny(amount: str) -> Money:
    return Money.of(amount, "CNY")


def stock(service, sku="tea-01"):
    inv = service.inventory
    return inv.on_hand(sku), inv.reserved(sku), inv.available(sku)


def state_of(service):
    """Everything a refused command must leave as it was."""
    orders = tuple((o.id, o.state, o.version, o.holds) for o in service.orders.all())
    payments = tuple((p.id, p.state, p.version) for p in service.payment_records.all())
    return orders, payments, len(service.ledger), stock(service), len(service.publisher.published)


def refused(service, error, action):
    before = state_of(service)
    with pytest.raises(error) as caught:
        action()
    assert state_of(service) == before
    return caught.value


@pytest.fixture
def world():
    return demo_payment_service(stock=10)


class TestCheckout:
    @pytest.mark.parametrize(
        ("method", "process", "state"),
        [
            ("online", "order.standard", "pending_payment"),
            ("escrow", "order.escrow", "pending_payment"),
            ("cod", "order.cod", "awaiting_shipment"),
            ("credit", "order.standard", "pending_payment"),
        ],
    )
    def test_the_payment_method_picks_the_orders_process(self, world, method, process, state):
        service, _ = world
        order = service.buy_now(ALICE, "tea-01", 1, method)
        assert (order.payment_method, order.process.name, order.state) == (method, process, state)

    def test_an_unknown_method_is_refused(self, world):
        service, _ = world
        refused(service, InvalidInput, lambda: service.buy_now(ALICE, "tea-01", 1, "barter"))

    def test_cod_over_its_cap_is_refused_and_nothing_is_reserved(self):
        policy = PaymentPolicy(cod_limits={"CNY": cny("100.00")})
        service, _ = demo_payment_service(payment_policy=policy)
        error = refused(service, RuleViolation, lambda: service.buy_now(ALICE, "pot-01", 1, "cod"))
        assert "limited to 100.00 CNY" in str(error)
        assert service.buy_now(ALICE, "tea-01", 2, "cod").total == cny("76.00")

    def test_the_plain_order_service_settles_online_payments_only(self):
        service, _ = demo_service()
        with pytest.raises(InvalidInput, match="use PaymentService"):
            service.buy_now(ALICE, "tea-01", 1, "escrow")
        assert service.buy_now(ALICE, "tea-01", 1, "online").payment_method == "online"


class TestOnline:
    def test_a_sale_settles_to_the_merchant_less_commission_at_once(self, world):
        service, _ = world
        order = service.buy_now(ALICE, "tea-01", 2)
        paid = service.pay(order.id, ALICE)
        assert paid.state == "awaiting_shipment"
        assert paid.payment.reference == service.payments_of(order.id)[0].id
        money = service.money(order.id)
        assert (money.paid_in, money.released, money.commission, money.held) == (
            cny("76.00"),
            cny("72.20"),
            cny("3.80"),
            cny("0.00"),
        )
        assert stock(service) == (8, 0, 8)
        assert any(isinstance(e, OrderPaid) for e in service.publisher.published)

    def test_an_authorization_is_captured_in_parts_and_the_order_is_paid_when_covered(self, world):
        service, _ = world
        order = service.buy_now(ALICE, "tea-01", 2)
        authorized = service.pay(order.id, ALICE, capture=False)
        assert authorized.state == "pending_payment"
        (payment,) = service.payments_of(order.id)
        assert (payment.state, payment.authorized) == ("authorized", cny("76.00"))
        service.capture(payment.id, TEAHOUSE, amount=cny("30.00"), key="1")
        assert service.orders.get(order.id).state == "pending_payment"
        refused(
            service,
            InvalidInput,
            lambda: service.capture(payment.id, TEAHOUSE, amount=cny("46.01"), key="2"),
        )
        service.capture(payment.id, TEAHOUSE, amount=cny("46.00"), key="2")
        assert service.orders.get(order.id).state == "awaiting_shipment"
        assert service.money(order.id).commission == cny("3.80")

    def test_a_repeated_pay_with_the_same_key_asks_the_provider_nothing(self, world):
        service, _ = world
        order = service.buy_now(ALICE, "tea-01", 2)
        service.pay(order.id, ALICE, key="checkout-1")
        before = state_of(service)
        assert service.pay(order.id, ALICE, key="checkout-1").state == "awaiting_shipment"
        assert state_of(service) == before
        assert service.payments.charged[order.id] == order.total

    def test_a_second_payment_while_one_is_in_flight_is_refused(self, world):
        service, _ = world
        service.payments.decide = lambda _: GatewayStatus.PENDING
        order = service.buy_now(ALICE, "tea-01", 2)
        with pytest.raises(PaymentNotCompleted):
            service.pay(order.id, ALICE)
        refused(service, RuleViolation, lambda: service.pay(order.id, ALICE))

    def test_after_a_decline_the_buyer_may_try_again(self, world):
        service, _ = world
        service.payments.decide = lambda _: GatewayStatus.DECLINED
        order = service.buy_now(ALICE, "tea-01", 2)
        with pytest.raises(PaymentNotCompleted, match="declined"):
            service.pay(order.id, ALICE)
        service.payments.decide = lambda _: GatewayStatus.SUCCEEDED
        assert service.pay(order.id, ALICE).state == "awaiting_shipment"
        assert [p.state for p in service.payments_of(order.id)] == ["declined", "captured"]

    def test_a_void_before_capture_closes_the_payment_and_a_void_after_is_refused(self, world):
        service, _ = world
        order = service.buy_now(ALICE, "tea-01", 2)
        service.pay(order.id, ALICE, capture=False)
        (payment,) = service.payments_of(order.id)
        assert service.void(payment.id, ALICE).state == "voided"
        assert service.orders.get(order.id).deadline is not None
        other = service.buy_now(ALICE, "tea-01", 1)
        service.pay(other.id, ALICE)
        (captured,) = service.payments_of(other.id)
        refused(service, TransitionNotAllowed, lambda: service.void(captured.id, ALICE))

    def test_an_authorization_lapses_uncaptured_and_the_clock_runs_again(self, world):
        service, clock = world
        order = service.buy_now(ALICE, "tea-01", 2)
        service.pay(order.id, ALICE, capture=False)
        clock.advance(timedelta(days=7))
        service.expire_due()
        (payment,) = service.payments_of(order.id)
        assert payment.state == "expired"
        assert service.orders.get(order.id).deadline.at == clock.now() + timedelta(minutes=30)
        clock.advance(timedelta(minutes=30))
        assert [f.trigger for f in service.expire_due()] == ["expire_payment"]

    def test_a_partial_capture_left_when_the_authorization_lapses_goes_back(self, world):
        service, clock = world
        order = service.buy_now(ALICE, "tea-01", 2)
        service.pay(order.id, ALICE, capture=False)
        (payment,) = service.payments_of(order.id)
        service.capture(payment.id, TEAHOUSE, amount=cny("30.00"), key="1")
        clock.advance(timedelta(days=7))
        service.expire_due()
        money = service.money(order.id)
        assert money.paid_in == money.refunded == cny("30.00")

    def test_a_partial_refund_reverses_commission_in_proportion(self, world):
        service, _ = world
        order = service.buy_now(ALICE, "tea-01", 2)
        service.pay(order.id, ALICE)
        refund = service.refund(order.id, TEAHOUSE, key="r-1", amount=cny("10.00"))
        assert refund.status is RefundStatus.SUCCEEDED
        money = service.money(order.id)
        assert (money.released, money.commission, money.refunded) == (
            cny("62.70"),
            cny("3.30"),
            cny("10.00"),
        )
        assert service.payments_of(order.id)[0].state == "partially_refunded"
        service.refund(order.id, TEAHOUSE, key="r-2", amount=cny("66.00"))
        assert service.payments_of(order.id)[0].state == "refunded"

    def test_cancelling_a_paid_order_refunds_it_and_restocks(self, world):
        service, _ = world
        order = service.buy_now(ALICE, "tea-01", 2)
        service.pay(order.id, ALICE)
        cancelled = service.cancel(order.id, TEAHOUSE, "cannot fulfil")
        assert cancelled.state == "cancelled"
        money = service.money(order.id)
        assert money.refunded == money.paid_in == cny("76.00")
        assert stock(service) == (10, 0, 10)


class TestNotifications:
    def pending_sale(self, service):
        service.payments.decide = lambda _: GatewayStatus.PENDING
        order = service.buy_now(ALICE, "tea-01", 2)
        with pytest.raises(PaymentNotCompleted):
            service.pay(order.id, ALICE)
        (payment,) = service.payments_of(order.id)
        return order, payment

    def test_a_repeated_notification_is_a_no_op(self, world):
        service, _ = world
        _, payment = self.pending_sale(service)
        payload = service.payments.settle_pending(f"{payment.id}:sale")
        assert service.handle_notification(payload).outcome == "applied"
        before = state_of(service)
        again = service.handle_notification(payload)
        assert (again.outcome, again.order_state) == ("repeat", "awaiting_shipment")
        assert state_of(service) == before

    def test_the_same_event_id_with_another_payload_is_refused(self, world):
        service, _ = world
        _, payment = self.pending_sale(service)
        payload = service.payments.settle_pending(f"{payment.id}:sale")
        service.handle_notification(payload)
        forged = service.payments.notification(
            "captured", payment.id, cny("1.00"), event_id=payload["event_id"]
        )
        refused(service, IdempotencyConflict, lambda: service.handle_notification(forged))

    def test_a_capture_reported_before_its_authorization_pays_and_the_late_one_is_ignored(
        self, world
    ):
        service, _ = world
        order = service.buy_now(ALICE, "tea-01", 2)
        service.pay(order.id, ALICE, capture=False)
        (payment,) = service.payments_of(order.id)
        early = service.payments.report_capture(payment.id, order.total)
        assert service.handle_notification(early).order_state == "awaiting_shipment"
        late = service.payments.notification("authorized", payment.id, order.total)
        assert service.handle_notification(late).outcome == "already captured"
        assert service.money(order.id).paid_in == order.total

    def test_a_duplicate_capture_is_given_back(self, world):
        service, _ = world
        order = service.buy_now(ALICE, "tea-01", 2)
        service.pay(order.id, ALICE)
        (payment,) = service.payments_of(order.id)
        twice = service.payments.report_capture(payment.id, order.total)
        service.handle_notification(twice)
        money = service.money(order.id)
        assert (money.paid_in, money.refunded) == (cny("152.00"), cny("76.00"))
        assert service.orders.get(order.id).state == "awaiting_shipment"

    def test_a_refund_made_at_the_provider_is_recorded(self, world):
        service, _ = world
        order = service.buy_now(ALICE, "tea-01", 2)
        service.pay(order.id, ALICE)
        (payment,) = service.payments_of(order.id)
        payload = service.payments.notification(
            "refunded", payment.id, cny("20.00"), transaction_id="re-99"
        )
        assert service.handle_notification(payload).outcome == "applied"
        assert service.money(order.id).refunded == cny("20.00")
        again = service.payments.notification(
            "refunded", payment.id, cny("20.00"), transaction_id="re-99"
        )
        assert service.handle_notification(again).outcome == "refund already recorded"

    def test_a_failure_reported_for_a_pending_sale_declines_it(self, world):
        service, _ = world
        order, payment = self.pending_sale(service)
        failed = service.payments.settle_pending(f"{payment.id}:sale", succeeded=False)
        outcome = service.handle_notification(failed)
        assert (outcome.outcome, outcome.order_state) == ("applied", "pending_payment")
        assert service.payments_of(order.id)[0].state == "declined"
        assert service.orders.get(order.id).deadline is not None

    @pytest.mark.parametrize(
        ("payload", "error"),
        [
            ({"event_id": "e"}, InvalidInput),
            ("not a mapping", InvalidInput),
        ],
    )
    def test_a_malformed_notification_is_refused(self, world, payload, error):
        service, _ = world
        refused(service, error, lambda: service.handle_notification(payload))

    def test_an_unsigned_or_unknown_or_foreign_notification_is_refused(self, world):
        service, _ = world
        order = service.buy_now(ALICE, "tea-01", 2)
        service.pay(order.id, ALICE)
        (payment,) = service.payments_of(order.id)
        unsigned = service.payments.notification("captured", payment.id, cny("1.00"))
        unsigned["signature"] = "forged"
        refused(service, InvalidInput, lambda: service.handle_notification(unsigned))
        unknown = service.payments.notification("captured", "payment-404", cny("1.00"))
        refused(service, NotFound, lambda: service.handle_notification(unknown))
        foreign = service.payments.notification("captured", payment.id, Money.of("1.00", "USD"))
        refused(service, CurrencyMismatch, lambda: service.handle_notification(foreign))


class TestEscrow:
    def paid_and_shipped(self, service, quantity=2, sku="tea-01"):
        order = service.buy_now(ALICE, sku, quantity, "escrow")
        service.pay(order.id, ALICE)
        service.ship(order.id, TEAHOUSE, carrier="SF", tracking_number="SF1")
        return order

    def test_money_is_held_until_receipt_is_confirmed_then_released_less_commission(self, world):
        service, _ = world
        order = self.paid_and_shipped(service)
        assert service.money(order.id).held == cny("76.00")
        completed = service.confirm_receipt(order.id, ALICE)
        assert completed.state == "completed"
        money = service.money(order.id)
        assert (money.held, money.released, money.commission) == (
            cny("0.00"),
            cny("72.20"),
            cny("3.80"),
        )
        names = [type(e) for e in service.publisher.published]
        assert EscrowReleased in names
        assert OrderSettled in names
        (released,) = [e for e in service.publisher.published if isinstance(e, EscrowReleased)]
        assert (released.amount, released.commission) == (cny("76.00"), cny("3.80"))
        (payment,) = service.payments_of(order.id)
        assert payment.released_total() == cny("76.00")  # to the merchant and the platform

    def test_the_auto_confirm_deadline_releases_escrow(self, world):
        service, clock = world
        order = self.paid_and_shipped(service)
        clock.advance(timedelta(days=10))
        assert [f.trigger for f in service.expire_due()] == ["auto_confirm"]
        assert service.orders.get(order.id).state == "completed"
        assert service.money(order.id).released == cny("72.20")

    def test_partial_release_with_partial_refund_works_per_line(self, world):
        service, _ = world
        order = service.checkout(
            ALICE, [__import__("ecommerce_core").CartItem(s, 1) for s in ("tea-01", "pot-01")],
            "escrow",
        )[0]  # fmt: skip
        service.pay(order.id, ALICE)
        service.ship(order.id, TEAHOUSE, carrier="SF", tracking_number="SF1")
        service.refund(order.id, TEAHOUSE, key="r-1", lines={"2": cny("68.00")})
        service.confirm_receipt(order.id, ALICE)
        money = service.money(order.id)
        tea, pot = money.line("1"), money.line("2")
        assert (tea.released, tea.commission, tea.refunded) == (
            cny("36.10"),
            cny("1.90"),
            cny("0.00"),
        )
        assert (pot.paid_in, pot.refunded, pot.released + pot.commission) == (
            cny("168.00"),
            cny("68.00"),
            cny("100.00"),
        )
        assert money.held == cny("0.00")
        assert money.refundable == cny("138.00")

    def test_a_line_with_an_open_refund_stays_held_while_the_others_are_released(self, world):
        service, _ = world
        order = service.checkout(
            ALICE, [__import__("ecommerce_core").CartItem(s, 1) for s in ("tea-01", "pot-01")],
            "escrow",
        )[0]  # fmt: skip
        service.pay(order.id, ALICE)
        service.ship(order.id, TEAHOUSE, carrier="SF", tracking_number="SF1")
        service.payments.decide = lambda _: GatewayStatus.PENDING
        refund = service.refund(order.id, TEAHOUSE, key="r-1", lines={"2": cny("168.00")})
        waiting = service.confirm_receipt(order.id, ALICE)
        assert waiting.state == "awaiting_release"
        money = service.money(order.id)
        assert (money.line("1").held, money.line("2").held) == (cny("0.00"), cny("168.00"))
        service.handle_notification(service.payments.settle_pending(refund.id))
        done = service.orders.get(order.id)
        assert done.state == "completed"
        assert service.money(order.id).line("2").refunded == cny("168.00")

    def test_a_refund_after_release_comes_from_the_merchant_and_the_commission(self, world):
        service, _ = world
        order = self.paid_and_shipped(service)
        service.confirm_receipt(order.id, ALICE)
        service.refund(order.id, TEAHOUSE, key="r-1", amount=cny("76.00"))
        money = service.money(order.id)
        assert (money.released, money.commission, money.refunded) == (
            cny("0.00"),
            cny("0.00"),
            cny("76.00"),
        )

    def test_cancelling_before_shipment_refunds_from_escrow(self, world):
        service, _ = world
        order = service.buy_now(ALICE, "tea-01", 2, "escrow")
        service.pay(order.id, ALICE)
        service.cancel(order.id, ALICE, "changed my mind")
        money = service.money(order.id)
        assert (money.held, money.refunded, money.released) == (
            cny("0.00"),
            cny("76.00"),
            cny("0.00"),
        )


class TestCashOnDelivery:
    def shipped(self, service):
        order = service.buy_now(ALICE, "tea-01", 2, "cod")
        assert stock(service) == (10, 2, 8)
        service.ship(order.id, TEAHOUSE, carrier="SF", tracking_number="SF1")
        assert stock(service) == (8, 0, 8)
        return order

    def test_the_carrier_collects_then_remits_less_its_fee(self, world):
        service, _ = world
        order = self.shipped(service)
        collected = service.collect_cod(order.id, SF, amount=order.total, key="door")
        assert collected.state == "completed"
        assert service.money(order.id).held == cny("76.00")
        assert service.collect_cod(order.id, SF, amount=order.total, key="door").version == (
            collected.version
        )
        service.remit_cod(order.id, SF)
        money = service.money(order.id)
        assert (money.held, money.released, money.commission, money.refundable) == (
            cny("0.00"),
            cny("75.24"),
            cny("0.76"),
            cny("75.24"),
        )
        names = [type(e) for e in service.publisher.published]
        assert CashCollected in names
        assert CashRemitted in names
        (remitted,) = [e for e in service.publisher.published if isinstance(e, CashRemitted)]
        assert (remitted.amount, remitted.fee) == (cny("75.24"), cny("0.76"))

    def test_a_refused_parcel_returns_with_its_stock_and_nothing_is_refunded(self, world):
        service, _ = world
        order = self.shipped(service)
        assert service.refuse_cod(order.id, SF, reason="not at home").state == "returning"
        assert stock(service) == (8, 0, 8)
        returned = service.cod_returned(order.id, TEAHOUSE)
        assert returned.state == "returned"
        assert stock(service) == (10, 0, 10)
        assert service.ledger.postings(order.id) == []
        refused(
            service,
            RuleViolation,
            lambda: service.refund(order.id, TEAHOUSE, key="r", amount=cny("1.00")),
        )

    def test_the_wrong_carrier_or_the_wrong_amount_collects_nothing(self, world):
        service, _ = world
        order = self.shipped(service)
        refused(
            service,
            Forbidden,
            lambda: service.collect_cod(
                order.id, Actor.carrier("YTO"), amount=order.total, key="k"
            ),
        )
        refused(
            service,
            InvalidInput,
            lambda: service.collect_cod(order.id, SF, amount=cny("75.99"), key="k"),
        )

    def test_a_refund_before_remittance_comes_from_the_float_and_the_fee_is_never_refunded(
        self, world
    ):
        service, _ = world
        order = self.shipped(service)
        service.collect_cod(order.id, SF, amount=order.total, key="door")
        service.refund(order.id, TEAHOUSE, key="r-1", amount=cny("26.00"))
        service.remit_cod(order.id, SF)
        money = service.money(order.id)
        assert (money.refunded, money.released, money.commission) == (
            cny("26.00"),
            cny("49.50"),
            cny("0.50"),
        )
        refused(
            service,
            InvalidInput,
            lambda: service.refund(order.id, TEAHOUSE, key="r-2", amount=cny("50.00")),
        )
        service.refund(order.id, TEAHOUSE, key="r-3", amount=cny("49.50"))
        assert service.money(order.id).paid_in - service.money(order.id).refunded == cny("0.50")

    def test_cod_has_no_pay_step(self, world):
        service, _ = world
        order = service.buy_now(ALICE, "tea-01", 1, "cod")
        refused(service, TransitionNotAllowed, lambda: service.pay(order.id, ALICE))
        payments = service.payments_of(order.id)
        assert payments == []
        cancelled = service.cancel(order.id, ALICE, "changed my mind")
        assert cancelled.state == "cancelled"
        assert stock(service) == (10, 0, 10)


class TestCredit:
    def test_the_provider_pays_the_merchant_and_the_buyer_owes_installments(self, world):
        service, _ = world
        order = service.buy_now(ALICE, "pot-01", 1, "credit")
        paid = service.pay_with_credit(order.id, ALICE, periods=6)
        assert paid.state == "awaiting_shipment"
        (payment,) = service.payments_of(order.id)
        assert isinstance(payment, CreditPayment)
        assert payment.fee == cny("3.36")
        assert [i.amount for i in payment.installments] == [cny("28.56")] * 5 + [cny("28.56")]
        assert service.credit_lines.available("alice") == cny("832.00")
        money = service.money(order.id)
        assert (money.paid_in, money.released, money.commission) == (
            cny("168.00"),
            cny("159.60"),
            cny("8.40"),
        )

    def test_a_draw_beyond_the_available_limit_is_refused_and_nothing_changes(self):
        service, _ = demo_payment_service(credit_limit="100.00")
        order = service.buy_now(ALICE, "pot-01", 1, "credit")
        error = refused(
            service,
            CreditLimitExceeded,
            lambda: service.pay_with_credit(order.id, ALICE, periods=3),
        )
        assert (error.available_amount, error.requested_amount) == (cny("100.00"), cny("168.00"))
        assert "100.00 CNY available, 168.00 CNY requested" in str(error)
        assert service.credit_lines.drawn("alice") == cny("0.00")

    def test_repaying_late_costs_a_capped_daily_penalty_and_restores_the_limit(self, world):
        service, clock = world
        order = service.buy_now(ALICE, "tea-01", 2, "credit")
        service.pay_with_credit(order.id, ALICE, periods=3)
        clock.advance(timedelta(days=40))  # due on day 30: ten days late
        (payment,) = service.payments_of(order.id)
        assert [i.number for i in payment.overdue(clock.now())] == [1]
        first = service.repay(order.id, ALICE, key="k-1")
        assert (first.number, first.penalty) == (1, cny("0.12"))
        assert service.repay(order.id, ALICE, key="k-1") == first
        assert service.credit_lines.drawn("alice") == cny("76.00") - first.principal
        service.repay(order.id, ALICE, key="k-2")
        service.repay(order.id, ALICE, key="k-3")
        (payment,) = service.payments_of(order.id)
        assert payment.state == "repaid"
        assert service.credit_lines.drawn("alice") == cny("0.00")
        refused(service, TransitionNotAllowed, lambda: service.repay(order.id, ALICE, key="k-4"))

    def test_a_refund_reduces_what_is_owed_and_restores_the_limit(self, world):
        service, _ = world
        order = service.buy_now(ALICE, "tea-01", 2, "credit")
        service.pay_with_credit(order.id, ALICE, periods=3)
        service.refund(order.id, TEAHOUSE, key="r-1", amount=cny("76.00"))
        (payment,) = service.payments_of(order.id)
        assert payment.state == "repaid"
        assert payment.owed(service.clock.now(), service.payment_policy) == cny("0.00")
        assert service.credit_lines.drawn("alice") == cny("0.00")

    def test_a_refund_after_repaying_pays_the_buyer_back(self, world):
        service, _ = world
        order = service.buy_now(ALICE, "tea-01", 2, "credit")
        service.pay_with_credit(order.id, ALICE, periods=3)
        for key in ("k-1", "k-2"):
            service.repay(order.id, ALICE, key=key)
        service.refund(order.id, TEAHOUSE, key="r-1", amount=cny("76.00"))
        cashback = [p for p in service.ledger.postings(order.id) if p.movement == "cashback"]
        (payment,) = service.payments_of(order.id)
        repaid_principal = sum(
            (i.principal for i in payment.installments if i.repaid_at), cny("0.00")
        )
        assert [p.amount for p in cashback] == [repaid_principal]
        assert service.credit_lines.drawn("alice") == cny("0.00")

    def test_cancelling_a_credit_order_gives_the_draw_back(self, world):
        service, _ = world
        order = service.buy_now(ALICE, "tea-01", 2, "credit")
        service.pay_with_credit(order.id, ALICE, periods=12)
        service.cancel(order.id, ALICE, "changed my mind")
        assert service.credit_lines.drawn("alice") == cny("0.00")
        assert service.money(order.id).refunded == cny("76.00")

    @pytest.mark.parametrize(
        ("method", "call", "error"),
        [
            ("credit", lambda s, o: s.pay(o.id, ALICE), InvalidInput),
            ("online", lambda s, o: s.pay_with_credit(o.id, ALICE, periods=3), InvalidInput),
            ("credit", lambda s, o: s.pay_with_credit(o.id, ALICE, periods=5), InvalidInput),
            ("credit", lambda s, o: s.pay_with_credit(o.id, BOB, periods=3), Forbidden),
        ],
    )
    def test_credit_is_refused_where_it_does_not_apply(self, world, method, call, error):
        service, _ = world
        order = service.buy_now(ALICE, "tea-01", 2, method)
        refused(service, error, lambda: call(service, order))

    def test_credit_needs_a_credit_lines_port(self, world):
        service, _ = world
        service.credit_lines = None
        order = service.buy_now(ALICE, "tea-01", 2, "credit")
        refused(
            service, DefinitionError, lambda: service.pay_with_credit(order.id, ALICE, periods=3)
        )


class TestBadInput:
    """Each refused with a typed error and a clear message, and nothing changed."""

    @pytest.fixture
    def paid(self, world):
        service, _ = world
        order = service.buy_now(ALICE, "tea-01", 2)
        service.pay(order.id, ALICE)
        return service, order

    @pytest.mark.parametrize(
        ("kwargs", "error", "message"),
        [
            ({"amount": Money.of("76.01", "CNY")}, InvalidInput, "can still refund"),
            ({"lines": {"1": Money.of("76.01", "CNY")}}, InvalidInput, "line '1' can refund"),
            ({"lines": {"7": Money.of("1.00", "CNY")}}, InvalidInput, "not a line"),
            ({"amount": Money.of("0.00", "CNY")}, InvalidInput, "positive"),
            ({"amount": Money.of("-1.00", "CNY")}, InvalidInput, "positive"),
            ({"amount": Money.of("1.00", "USD")}, CurrencyMismatch, "USD"),
            ({}, InvalidInput, "either an amount or lines"),
            ({"lines": {}}, InvalidInput, "at least one line"),
        ],
    )
    def test_a_bad_refund(self, paid, kwargs, error, message):
        service, order = paid
        caught = refused(
            service, error, lambda: service.refund(order.id, TEAHOUSE, key="r", **kwargs)
        )
        assert message in str(caught)

    def test_a_refund_by_someone_else_is_forbidden(self, paid):
        service, order = paid
        for actor in (ALICE, Actor.merchant("m-pottery"), SF):
            refused(
                service,
                Forbidden,
                lambda a=actor: service.refund(order.id, a, key="r", amount=cny("1.00")),
            )

    def test_a_refund_key_reused_for_another_amount_is_refused(self, paid):
        service, order = paid
        first = service.refund(order.id, TEAHOUSE, key="r", amount=cny("1.00"))
        assert service.refund(order.id, TEAHOUSE, key="r", amount=cny("1.00")) == first
        refused(
            service,
            IdempotencyConflict,
            lambda: service.refund(order.id, TEAHOUSE, key="r", amount=cny("2.00")),
        )

    def test_a_capture_of_nothing_or_too_much_or_after_a_sale(self, paid):
        service, order = paid
        (payment,) = service.payments_of(order.id)
        for amount in (cny("0.00"), cny("-1.00"), cny("0.01")):
            refused(
                service,
                (InvalidInput, TransitionNotAllowed),
                lambda a=amount: service.capture(payment.id, TEAHOUSE, amount=a, key="c"),
            )

    def test_a_refund_of_an_unpaid_order_is_refused(self, world):
        service, _ = world
        order = service.buy_now(ALICE, "tea-01", 2)
        caught = refused(
            service,
            RuleViolation,
            lambda: service.refund(order.id, TEAHOUSE, key="r", amount=cny("1.00")),
        )
        assert "nothing was paid" in str(caught)

    def test_every_error_is_one_of_ours(self, paid):
        service, order = paid
        with pytest.raises(EcommerceCoreError):
            service.capture("payment-404", TEAHOUSE, amount=cny("1.00"), key="c")
        cod = service.buy_now(ALICE, "tea-01", 1, "cod")
        with pytest.raises(EcommerceCoreError):
            service.remit_cod(cod.id, SF)
        with pytest.raises(EcommerceCoreError):
            service.capture(service.payments_of(order.id)[0].id, TEAHOUSE, amount=cny("1"), key="")


class TestEvents:
    def test_refunds_publish_their_outcome(self, world):
        service, _ = world
        order = service.buy_now(ALICE, "tea-01", 2)
        service.pay(order.id, ALICE)
        service.refund(order.id, TEAHOUSE, key="r", amount=cny("5.00"))
        (event,) = [e for e in service.publisher.published if isinstance(e, RefundSucceeded)]
        assert (event.amount, event.refund_id.endswith(":refund:r")) == (cny("5.00"), True)

    def test_a_cod_payment_starts_when_the_parcel_ships(self, world):
        service, _ = world
        order = service.buy_now(ALICE, "tea-01", 2, "cod")
        service.ship(order.id, TEAHOUSE, carrier="SF", tracking_number="SF1")
        (payment,) = service.payments_of(order.id)
        assert isinstance(payment, CodPayment)
        assert (payment.state, payment.carrier_id) == ("awaiting_collection", "SF")


def test_policy_rates_are_exact_decimals():
    assert PaymentPolicy().commission_rate == Decimal("0.05")
