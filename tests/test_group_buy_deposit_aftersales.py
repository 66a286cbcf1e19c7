"""After-sales of a group-buy order paid by deposit and balance, refunded through the ledger.

Once its balance is in, a deposit order records deposit + balance as its payment and its line
falls from the list price to the final price (``after_payment``), so after-sales refunds what
its units finally cost. ``ledger_refunds`` refunds it through ``CampaignService.refund``: from
the balance charge first, then the deposit charge, posted merchant → buyer once per key; a
part the provider declined is asked again under a fresh key the next time.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from ecommerce_core import Actor, AfterSalesItem, EcommerceCoreError, Money, TrackingEvent
from ecommerce_core.adapters.memory import (
    GatewayRequest,
    InMemoryAfterSalesRepository,
    InMemoryOrderRepository,
    InMemoryShipmentRepository,
)
from ecommerce_core.aftersales import AfterSalesPolicy, AfterSalesRequest, OrderAfterSales
from ecommerce_core.errors import (
    CurrencyMismatch,
    Forbidden,
    InvalidInput,
    NotFound,
    RuleViolation,
    TransitionNotAllowed,
)
from ecommerce_core.events import OrderPaid
from ecommerce_core.orders import Order, OrderRepriced
from ecommerce_core.payments import RefundStatus
from ecommerce_core.payments.ledger import ORDER_LEVEL, Account, Movement
from ecommerce_core.ports import GatewayStatus, RefundRequest
from ecommerce_core.services import AfterSalesService, FulfilmentService
from ecommerce_core.services.aftersales import ledger_refunds
from test_group_buy_deposit_service import ALICE, BOB, CNY, MERCHANT, World, yuan


def after_sales_of(service, inventory) -> tuple[FulfilmentService, AfterSalesService]:
    """Fulfilment and after-sales beside ``service``, refunding through its ledger."""
    records, shipments = InMemoryAfterSalesRepository(), InMemoryShipmentRepository()
    common = {
        "orders": service.orders,
        "shipments": shipments,
        "clock": service.clock,
        "ids": service.ids,
        "publisher": service.publisher,
        "inventory": inventory,
    }
    fulfilment = FulfilmentService(after_sales=records, policy=service.policy, **common)
    after_sales = AfterSalesService(
        after_sales=records,
        refunds=ledger_refunds(service),
        policy=AfterSalesPolicy(),
        order_policy=service.policy,
        **common,
    )
    return fulfilment, after_sales


class Shop(World):
    """The deposit group-buy world, plus fulfilment and after-sales refunding through it."""

    def __init__(self, orders: InMemoryOrderRepository | None = None) -> None:
        super().__init__()
        if orders is not None:
            self.orders = self.service.orders = orders
        self.asked: list[RefundRequest] = []
        self.fulfilment, self.after_sales = after_sales_of(self.service, self.inventory)

    def _decide(self, request: GatewayRequest) -> GatewayStatus:
        if isinstance(request, RefundRequest):
            self.asked.append(request)
        return super()._decide(request)

    def paid(self, *, deposit: str = "2.00", alice: int = 3) -> str:
        """Alice (``alice`` units) and Bob (2) reach 8.00; the window closes; Alice pays."""
        campaign = self.create(deposit=yuan(deposit))
        order_id = self.buy(campaign, ALICE, alice)
        self.buy(campaign, BOB, 2)
        self.close()
        self.service.pay(order_id, ALICE)
        return order_id

    def campaign_id(self) -> str:
        (campaign_id,) = self.campaigns._campaigns  # the one campaign of a test
        return campaign_id

    def delivered(self, order_id: str) -> None:
        self.fulfilment.ship(order_id, MERCHANT, carrier="SF", tracking_number=f"SF-{order_id}")
        self.fulfilment.record_tracking(
            TrackingEvent(f"e-{order_id}", "SF", f"SF-{order_id}", "delivered", self.clock.now())
        )

    def return_units(self, order_id: str, units: int) -> AfterSalesRequest:
        service = self.after_sales
        request = service.request(
            order_id,
            ALICE,
            kind="return_and_refund",
            reason="no_reason",
            items=[AfterSalesItem("1", units)],
        )
        service.approve(order_id, request.request_id, MERCHANT)
        service.ship_back(
            order_id, request.request_id, ALICE, carrier="YTO", tracking_number=request.request_id
        )
        service.receive_return(order_id, request.request_id, MERCHANT)
        return service.accept_return(order_id, request.request_id, MERCHANT)

    def refunded_from(self, order_id: str, marker: str) -> Money:
        """What refund postings gave back from the charges whose payment id holds ``marker``."""
        return sum(
            (
                p.amount
                for p in self.ledger.postings(order_id)
                if p.movement is Movement.REFUND and marker in p.key
            ),
            Money.zero(CNY),
        )

    def books_agree(self, order_id: str) -> None:
        """The ledger balances, gives back no more than came in, and matches the provider."""
        money = self.service.money(order_id)
        assert money.balanced, money
        assert money.refunded <= money.paid_in
        assert sum(m.minor for m in self.ledger.balances(CNY).values()) == 0
        charged = self.gateway.charged.get(order_id, Money.zero(CNY))
        refunded = self.gateway.refunded.get(order_id, Money.zero(CNY))
        assert charged - refunded == money.paid_in - money.refunded


class TestTheBalanceCompletesTheOrder:
    def test_paying_the_balance_records_the_order_paid_and_lowers_it_to_the_final_price(
        self,
    ) -> None:
        shop = Shop()
        order_id = shop.paid()
        order = shop.orders.get(order_id)
        assert order.state == "awaiting_shipment"
        assert order.payment is not None
        assert order.payment.amount == yuan("24.00")  # 6.00 deposit + 18.00 balance
        assert (order.total, order.lines[0].amount) == (yuan("24.00"), yuan("24.00"))
        (cut,) = order.lines[0].adjustments
        assert (cut.stage, cut.amount) == ("after_payment", yuan("6.00"))  # 30.00 listed
        assert shop.service.money(order_id).paid_in == order.total
        assert [e.aggregate_id for e in shop.events(OrderPaid)] == [order_id]
        assert [e.aggregate_id for e in shop.events(OrderRepriced)] == [order_id]
        before = shop.snapshot()
        shop.service.reconcile(order_id)  # paid and lowered once: nothing more
        assert shop.snapshot() == before

    def test_a_balance_covered_by_the_deposit_still_records_the_payment_and_the_final_price(
        self,
    ) -> None:
        shop = Shop()
        order_id = shop.paid(deposit="8.00")  # the deposit is the final price
        order = shop.orders.get(order_id)
        assert order.payment is not None
        assert (order.payment.amount, order.total) == (yuan("24.00"), yuan("24.00"))
        assert shop.gateway.charged[order_id] == yuan("24.00")  # the deposit charge only

    def test_recording_the_balance_interrupted_is_finished_by_the_next_reconcile(self) -> None:
        orders = CrashOnPaid()
        shop = Shop(orders)
        orders.armed = True
        with pytest.raises(RuntimeError):
            shop.paid()
        (order,) = (o for o in shop.orders.all() if o.buyer_id == ALICE.id)
        assert (order.state, order.payment) == ("awaiting_shipment", None)
        shop.service.reconcile(order.id)
        order = shop.orders.get(order.id)
        assert order.payment is not None
        assert order.total == yuan("24.00") == order.payment.amount


class CrashOnPaid(InMemoryOrderRepository):
    """Dies once, when armed, on the save that would record an order paid."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = False

    def save(self, order: Order, expected_version: int) -> None:
        if self.armed and any(isinstance(e, OrderPaid) for e in order.events):
            self.armed = False
            raise RuntimeError("the process died")
        super().save(order, expected_version)


class TestReturningADepositOrder:
    def test_returning_everything_refunds_the_balance_charge_then_the_deposit_charge(
        self,
    ) -> None:
        shop = Shop()
        order_id = shop.paid()
        shop.delivered(order_id)
        done = shop.return_units(order_id, 3)
        assert done.state == "refunded"
        assert done.refund is not None
        assert done.refund.total == yuan("24.00")
        assert shop.refunded_from(order_id, ":gbbal:") == yuan("18.00")
        assert shop.refunded_from(order_id, ":gbdep:") == yuan("6.00")
        money = shop.service.money(order_id)
        assert money.refunded == money.paid_in == yuan("24.00")
        assert shop.gateway.refunded[order_id] == yuan("24.00")
        assert shop.after_sales.record(order_id).refunded_amount("1") == yuan("24.00")
        shop.books_agree(order_id)

    def test_returning_one_unit_refunds_its_final_price_from_the_balance_charge(self) -> None:
        shop = Shop()
        order_id = shop.paid()
        shop.delivered(order_id)
        done = shop.return_units(order_id, 1)
        assert done.state == "refunded"
        assert shop.refunded_from(order_id, ":gbbal:") == yuan("8.00")
        assert shop.refunded_from(order_id, ":gbdep:").is_zero
        again = shop.return_units(order_id, 2)  # the rest: 10.00 of balance, then the deposit
        assert again.state == "refunded"
        assert shop.refunded_from(order_id, ":gbbal:") == yuan("18.00")
        assert shop.refunded_from(order_id, ":gbdep:") == yuan("6.00")
        shop.books_agree(order_id)

    def test_a_return_after_the_deposit_covered_the_final_price_refunds_the_deposit_charge(
        self,
    ) -> None:
        shop = Shop()
        order_id = shop.paid(deposit="8.00")
        shop.delivered(order_id)
        done = shop.return_units(order_id, 1)
        assert done.state == "refunded"
        assert shop.refunded_from(order_id, ":gbdep:") == yuan("8.00")
        assert shop.refunded_from(order_id, ":gbbal:").is_zero
        shop.books_agree(order_id)

    def test_a_declined_refund_is_asked_again_under_a_fresh_key_the_next_time(self) -> None:
        shop = Shop()
        order_id = shop.paid()
        shop.delivered(order_id)
        shop.refund_outcome = GatewayStatus.DECLINED
        stuck = shop.return_units(order_id, 1)
        assert stuck.state == "refund_approved"  # waits; nothing moved
        assert shop.service.money(order_id).refunded.is_zero
        (declined,) = shop.asked
        assert declined.idempotency_key in shop.campaigns.get(shop.campaign_id()).declined_refunds
        shop.refund_outcome = GatewayStatus.SUCCEEDED
        (done,) = shop.after_sales.settle_refunds(order_id)
        assert done.state == "refunded"
        assert [r.idempotency_key for r in shop.asked] == [
            declined.idempotency_key,
            f"{declined.idempotency_key}:again-1",
        ]
        assert shop.service.money(order_id).refunded == yuan("8.00")
        assert shop.after_sales.settle_refunds(order_id) == []  # done: never twice
        shop.books_agree(order_id)

    def test_a_pending_refund_is_posted_once_by_the_providers_callback(self) -> None:
        shop = Shop()
        order_id = shop.paid()
        shop.delivered(order_id)
        shop.refund_outcome = GatewayStatus.PENDING
        request = shop.return_units(order_id, 2)
        assert request.state == "refund_approved"
        assert shop.after_sales.settle_refunds(order_id) == []  # still pending: asked again
        callback = shop.settle()
        shop.service.handle_notification(callback)
        shop.service.handle_notification(callback)  # a repeat posts nothing more
        assert shop.service.money(order_id).refunded == yuan("16.00")
        (done,) = shop.after_sales.settle_refunds(order_id)
        assert done.state == "refunded"
        assert shop.service.money(order_id).refunded == yuan("16.00")
        shop.books_agree(order_id)

    def test_a_refund_the_provider_fails_later_is_asked_again_under_a_fresh_key(self) -> None:
        shop = Shop()
        order_id = shop.paid()
        shop.delivered(order_id)
        shop.refund_outcome = GatewayStatus.PENDING
        shop.return_units(order_id, 1)
        outcome = shop.service.handle_notification(shop.settle(succeeded=False))
        assert outcome.outcome.startswith("refund declined")
        shop.refund_outcome = GatewayStatus.SUCCEEDED
        (done,) = shop.after_sales.settle_refunds(order_id)
        assert done.state == "refunded"
        assert shop.asked[-1].idempotency_key.endswith(":again-1")
        assert shop.service.money(order_id).refunded == yuan("8.00")
        shop.books_agree(order_id)

    def test_a_refund_before_shipping_then_a_cancel_gives_back_only_what_is_left(self) -> None:
        shop = Shop()
        order_id = shop.paid()
        request = shop.after_sales.request(
            order_id,
            ALICE,
            kind="refund_only",
            reason="no_reason",
            items=[AfterSalesItem("1", 1)],
        )
        done = shop.after_sales.approve(order_id, request.request_id, MERCHANT)
        assert done.state == "refunded"
        assert shop.service.money(order_id).refunded == yuan("8.00")
        shop.service.cancel(order_id, MERCHANT, "out of stock")
        money = shop.service.money(order_id)
        assert money.refunded == money.paid_in == yuan("24.00")
        assert shop.refunded_from(order_id, ":gbbal:") == yuan("18.00")
        assert shop.refunded_from(order_id, ":gbdep:") == yuan("6.00")
        shop.books_agree(order_id)


class TestRefundingADepositOrderDirectly:
    def test_a_repeated_key_refunds_once(self) -> None:
        shop = Shop()
        order_id = shop.paid()
        first = shop.service.refund(order_id, MERCHANT, key="k1", amount=yuan("20.00"))
        again = shop.service.refund(order_id, MERCHANT, key="k1", amount=yuan("20.00"))
        assert first.status is again.status is RefundStatus.SUCCEEDED
        assert first.id == again.id
        assert shop.service.money(order_id).refunded == yuan("20.00")
        assert shop.gateway.refunded[order_id] == yuan("20.00")
        with pytest.raises(InvalidInput):  # the key refunded more already
            shop.service.refund(order_id, MERCHANT, key="k1", amount=yuan("5.00"))
        assert shop.service.money(order_id).refunded == yuan("20.00")

    @pytest.mark.parametrize(
        ("actor", "kwargs", "error"),
        [
            (ALICE, {"amount": yuan("1.00")}, Forbidden),
            (Actor.merchant("m-2"), {"amount": yuan("1.00")}, Forbidden),
            (MERCHANT, {"amount": yuan("24.01")}, InvalidInput),
            (MERCHANT, {"amount": yuan("0.00")}, InvalidInput),
            (MERCHANT, {"amount": Money.of("1.00", "USD")}, CurrencyMismatch),
            (MERCHANT, {}, InvalidInput),
            (MERCHANT, {"amount": yuan("1.00"), "lines": {"1": yuan("1.00")}}, InvalidInput),
            (MERCHANT, {"lines": {"9": yuan("1.00")}}, InvalidInput),
            (MERCHANT, {"lines": {ORDER_LEVEL: yuan("1.00")}}, InvalidInput),
            (MERCHANT, {"amount": yuan("1.00"), "key": " "}, InvalidInput),
        ],
    )
    def test_a_refused_refund_changes_nothing(self, actor, kwargs, error) -> None:
        shop = Shop()
        order_id = shop.paid()
        shop.service.refund(order_id, MERCHANT, key="k0", amount=yuan("0.01"))  # one before
        before = shop.snapshot()
        arguments = {"key": "k1", **kwargs}
        with pytest.raises(error):
            shop.service.refund(order_id, actor, **arguments)
        assert shop.snapshot() == before

    def test_an_order_whose_balance_is_unpaid_has_nothing_to_refund(self) -> None:
        shop = Shop()
        campaign = shop.create()
        order_id = shop.buy(campaign, ALICE, 3)
        shop.buy(campaign, BOB, 2)
        shop.close()
        before = shop.snapshot()
        with pytest.raises(RuleViolation):
            shop.service.refund(order_id, MERCHANT, key="k1", amount=yuan("1.00"))
        assert shop.snapshot() == before


class TestRecordingAPaymentTakenOutsidePay:
    def waiting(self) -> tuple[Shop, Order]:
        shop = Shop()
        order_id = shop.buy(shop.create(), ALICE, 1)  # awaiting its group, deposit held
        return shop, shop.orders.get(order_id)

    def test_it_is_recorded_once_and_a_repeat_changes_nothing(self) -> None:
        _, order = self.waiting()
        system, now = Actor.system("t"), datetime(2026, 1, 2, tzinfo=UTC)
        assert order.record_payment(system, amount=yuan("8.00"), reference="r", now=now)
        version = order.version
        assert not order.record_payment(system, amount=yuan("8.00"), reference="r", now=now)
        assert order.version == version
        with pytest.raises(RuleViolation):
            order.record_payment(system, amount=yuan("8.00"), reference="other", now=now)

    @pytest.mark.parametrize(
        ("actor", "amount", "reference", "error"),
        [
            (ALICE, yuan("8.00"), "r", Forbidden),
            (Actor.system("t"), yuan("0.00"), "r", InvalidInput),
            (Actor.system("t"), "8.00", "r", InvalidInput),
            (Actor.system("t"), Money.of("8.00", "USD"), "r", CurrencyMismatch),
            (Actor.system("t"), yuan("8.00"), " ", InvalidInput),
        ],
    )
    def test_a_refused_record_changes_nothing(self, actor, amount, reference, error) -> None:
        _, order = self.waiting()
        version = order.version
        with pytest.raises(error):
            order.record_payment(
                actor, amount=amount, reference=reference, now=datetime(2026, 1, 2, tzinfo=UTC)
            )
        assert (order.version, order.payment) == (version, None)

    def test_an_unpaid_or_final_order_is_refused(self) -> None:
        shop = Shop()
        campaign = shop.create()
        unpaid = shop.orders.get(shop.buy(campaign, ALICE, 1, pay=False))
        now = datetime(2026, 1, 2, tzinfo=UTC)
        with pytest.raises(RuleViolation):
            unpaid.record_payment(Actor.system("t"), amount=yuan("8.00"), reference="r", now=now)
        shop.service.cancel(unpaid.id, ALICE, "changed my mind")
        cancelled = shop.orders.get(unpaid.id)
        with pytest.raises(TransitionNotAllowed):
            cancelled.record_payment(Actor.system("t"), amount=yuan("8.00"), reference="r", now=now)


class TestNotingADeclinedRefund:
    def test_a_key_is_noted_once_for_a_joined_order_by_the_system_only(self) -> None:
        shop = Shop()
        order_id = shop.buy(shop.create(), ALICE, 1)
        campaign = shop.campaigns.get(shop.campaign_id())
        now = shop.clock.now()
        assert campaign.note_declined_refund(order_id=order_id, request_key="k", now=now)
        assert not campaign.note_declined_refund(order_id=order_id, request_key="k", now=now)
        assert campaign.declined_refunds == ("k",)
        with pytest.raises(Forbidden):
            campaign.note_declined_refund(order_id=order_id, request_key="j", now=now, actor=ALICE)
        with pytest.raises(InvalidInput):
            campaign.note_declined_refund(order_id="nobody", request_key="j", now=now)
        assert campaign.declined_refunds == ("k",)


RETURN_STEPS = st.lists(
    st.tuples(
        st.sampled_from(["alice", "bob"]),
        st.integers(1, 3),
        st.sampled_from(["return_and_refund", "refund_only"]),
        st.sampled_from([GatewayStatus.SUCCEEDED, GatewayStatus.DECLINED, GatewayStatus.PENDING]),
        st.sampled_from(["nothing", "answer", "fail", "settle"]),
    ),
    max_size=6,
)


class TestReturnsConserveMoney:
    @settings(max_examples=30, deadline=None)
    @given(
        deposit=st.sampled_from(["2.00", "8.00"]),
        alice=st.integers(1, 3),
        bob=st.integers(2, 3),
        steps=RETURN_STEPS,
    )
    def test_random_returns_refund_each_request_once_and_the_books_balance(
        self, deposit, alice, bob, steps
    ) -> None:
        shop = Shop()
        campaign = shop.create(deposit=yuan(deposit))
        orders = {
            "alice": (ALICE, shop.buy(campaign, ALICE, alice)),
            "bob": (BOB, shop.buy(campaign, BOB, bob)),
        }
        shop.close()
        for buyer, order_id in orders.values():
            shop.service.pay(order_id, buyer)
            shop.delivered(order_id)
        unit = shop.campaigns.get(campaign.id).settlement.unit_price
        for who, units, kind, outcome, then in steps:
            buyer, order_id = orders[who]
            shop.refund_outcome = outcome
            with contextlib.suppress(EcommerceCoreError):  # more units than are left, say
                ask(shop, order_id, buyer, units, kind)
            shop.refund_outcome = GatewayStatus.SUCCEEDED
            for key in shop.pending() if then in ("answer", "fail") else ():
                callback = shop.gateway.settle_pending(key, succeeded=then == "answer")
                shop.service.handle_notification(callback)
            if then == "settle":
                with contextlib.suppress(NotFound):  # nothing was ever asked
                    shop.after_sales.settle_refunds(order_id)
            for _, each in orders.values():
                refunded_at_most_once(shop, each)
        for key in shop.pending():  # the provider answers everything; refunds are settled
            shop.service.handle_notification(shop.gateway.settle_pending(key))
        for _, order_id in orders.values():
            with contextlib.suppress(NotFound):  # never asked
                shop.after_sales.settle_refunds(order_id)
            record = refunded_at_most_once(shop, order_id)
            money = shop.service.money(order_id)
            quantity = shop.orders.get(order_id).lines[0].quantity
            assert money.paid_in == unit * quantity  # deposit + balance: the final price
            requests = record.requests if record is not None else ()
            assert all(r.state == "refunded" for r in requests if r.refund is not None)
            given_back = sum((r.refund.total for r in requests if r.refund), Money.zero(CNY))
            assert money.refunded == given_back  # everything approved went back, once
            event(f"{who_of(order_id, orders)} refunded: {given_back.is_positive}")
            assert shop.gateway.refunded.get(order_id, Money.zero(CNY)) == given_back
        merchant = shop.ledger.balances(CNY).get(Account.merchant(MERCHANT.id), Money.zero(CNY))
        paid = sum((shop.service.money(o).paid_in for _, o in orders.values()), Money.zero(CNY))
        refunded = sum(
            (shop.service.money(o).refunded for _, o in orders.values()), Money.zero(CNY)
        )
        assert paid == refunded + merchant  # paid in = refunded + the merchant's proceeds


def who_of(order_id: str, orders: dict[str, tuple[Actor, str]]) -> str:
    return next(name for name, (_, each) in orders.items() if each == order_id)


def ask(shop: Shop, order_id: str, buyer: Actor, units: int, kind: str) -> None:
    """A buyer asks for ``units`` back; the merchant agrees (a return also comes back)."""
    service = shop.after_sales
    request = service.request(
        order_id, buyer, kind=kind, reason="no_reason", items=[AfterSalesItem("1", units)]
    )
    service.approve(order_id, request.request_id, MERCHANT)
    if kind == "return_and_refund":
        service.ship_back(
            order_id, request.request_id, buyer, carrier="YTO", tracking_number=request.request_id
        )
        service.receive_return(order_id, request.request_id, MERCHANT)
        service.accept_return(order_id, request.request_id, MERCHANT)


def refunded_at_most_once(shop: Shop, order_id: str) -> OrderAfterSales | None:
    """Each request's refund posted at most its amount, exactly it once done; books agree."""
    shop.books_agree(order_id)
    for posting in shop.ledger.all():
        assert posting.amount.is_positive
    try:
        record = shop.after_sales.record(order_id)
    except NotFound:
        return None
    money = shop.service.money(order_id)
    line = money.lines.get("1")
    assert line is None or line.refunded <= line.paid_in
    for request in record.requests:
        if request.refund is None:
            continue
        key = f"{order_id}:after-sales:{request.request_id}:refund"
        posted = sum(
            (
                p.amount
                for p in shop.ledger.postings(order_id)
                if p.movement is Movement.REFUND and p.key.endswith(f":keyed-refund:{key}")
            ),
            Money.zero(CNY),
        )
        assert posted <= request.refund.total
        if request.state == "refunded":
            assert posted == request.refund.total
    assert money.refunded <= record.refunded_amount("1") + sum(
        (r.refund.total for r in record.requests if r.refund and r.state != "refunded"),
        Money.zero(CNY),
    )
    return record
