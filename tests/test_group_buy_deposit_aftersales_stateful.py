"""The deposit group-buy race, plus deliveries and returns of delivered orders at random.

Extends :class:`DepositGroupBuyRaces` (every rule and invariant of it still holds): orders
that paid their balance are shipped and delivered, their buyers return random units (the
provider refunds, declines or leaves the refund pending; its callbacks come later, or the
refund is declined in one), and after-sales asks again for the refunds not done. Orders
waiting to ship are refunded part of their money under a key (the provider refunds, declines
or leaves it pending) and then cancelled, before that refund's callback comes. The provider
is honest: it declines a refund asking a charge for more than it still holds, pending refunds
included, and the service never asks it to. After every
step, on top of the race's invariants: each request's refund is posted at most its amount,
exactly it once the request is refunded, and a delivered order kept the final price less what
after-sales gave back. At the end the provider answers everything and every approved refund
is done, and every cancelled order got back all it paid (``reconcile`` with ``retry_failed``
asks again for a cancel's return the provider declined): the provider's books agree with the
ledger.
"""

from __future__ import annotations

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, precondition, rule

from ecommerce_core import Actor, AfterSalesItem, EcommerceCoreError, Money, TrackingEvent
from ecommerce_core.aftersales import OrderAfterSales
from ecommerce_core.errors import NotFound
from ecommerce_core.payments.ledger import Movement
from ecommerce_core.ports import GatewayStatus, RefundRequest
from ecommerce_core.services import AfterSalesService, FulfilmentService
from test_group_buy_deposit_aftersales import after_sales_of
from test_group_buy_deposit_service_stateful import MERCHANT, STOCK, DepositGroupBuyRaces
from test_group_buy_pending_refunds import over_asked

CNY = "CNY"
REFUNDS = st.sampled_from([GatewayStatus.SUCCEEDED, GatewayStatus.DECLINED, GatewayStatus.PENDING])


class DepositGroupBuyReturns(DepositGroupBuyRaces):
    """The deposit race, with deliveries and after-sales returns through ``ledger_refunds``."""

    def wired(self) -> tuple[FulfilmentService, AfterSalesService]:
        if not hasattr(self, "after_sales"):
            self.fulfilment, self.after_sales = after_sales_of(self.service, self.inventory)
        return self.fulfilment, self.after_sales

    @property
    def over_asked(self) -> list[RefundRequest]:
        """Refunds the provider declined for asking more than their charge holds."""
        return over_asked(self.gateway) if hasattr(self, "gateway") else []

    def in_state(self, state: str) -> list[str]:
        return [o.id for o in self.repo.all() if o.state == state]

    def record(self, order_id: str) -> OrderAfterSales | None:
        try:
            return self.wired()[1].record(order_id)
        except NotFound:
            return None

    @precondition(lambda self: self.in_state("awaiting_shipment"))
    @rule(data=st.data())
    def ship_and_deliver(self, data: st.DataObject) -> None:
        order_id = data.draw(st.sampled_from(self.in_state("awaiting_shipment")), label="order")
        fulfilment, _ = self.wired()
        fulfilment.ship(order_id, MERCHANT, carrier="SF", tracking_number=f"SF-{order_id}")
        fulfilment.record_tracking(
            TrackingEvent(f"t-{order_id}", "SF", f"SF-{order_id}", "delivered", self.clock.now())
        )

    @precondition(lambda self: self.in_state("delivered"))
    @rule(data=st.data(), units=st.integers(1, 3), refund=REFUNDS)
    def return_units(self, data: st.DataObject, units: int, refund: GatewayStatus) -> None:
        order_id = data.draw(st.sampled_from(self.in_state("delivered")), label="order")
        buyer = Actor.buyer(self.repo.get(order_id).buyer_id)
        _, service = self.wired()
        self.refund_outcome = refund
        try:
            request = service.request(
                order_id,
                buyer,
                kind="return_and_refund",
                reason="no_reason",
                items=[AfterSalesItem("1", units)],
            )
        except EcommerceCoreError:  # more units than are left to return
            return
        finally:
            self.refund_outcome = GatewayStatus.SUCCEEDED
        self.refund_outcome = refund
        service.approve(order_id, request.request_id, MERCHANT)
        service.ship_back(
            order_id, request.request_id, buyer, carrier="YTO", tracking_number=request.request_id
        )
        service.receive_return(order_id, request.request_id, MERCHANT)
        service.accept_return(order_id, request.request_id, MERCHANT)  # restocked
        self.restocked = getattr(self, "restocked", 0) + units
        event(f"a return refunded at once: {request.request_id in self.refunded_now(order_id)}")
        self.refund_outcome = GatewayStatus.SUCCEEDED

    def refunded_now(self, order_id: str) -> set[str]:
        record = self.record(order_id)
        requests = record.requests if record is not None else ()
        return {r.request_id for r in requests if r.state == "refunded"}

    @precondition(lambda self: self.in_state("delivered"))
    @rule(data=st.data(), refund=REFUNDS)
    def ask_again(self, data: st.DataObject, refund: GatewayStatus) -> None:
        order_id = data.draw(st.sampled_from(self.in_state("delivered")), label="order")
        if self.record(order_id) is None:
            return
        self.refund_outcome = refund
        self.wired()[1].settle_refunds(order_id)
        self.refund_outcome = GatewayStatus.SUCCEEDED

    @precondition(lambda self: self.in_state("awaiting_shipment"))
    @rule(
        data=st.data(),
        key=st.sampled_from(["k1", "k2"]),
        amount=st.sampled_from(["1.00", "3.00", "9.00"]),
        refund=REFUNDS,
        returned=REFUNDS,
        again=st.booleans(),
    )
    def refund_then_cancel(
        self,
        data: st.DataObject,
        *,
        key: str,
        amount: str,
        refund: GatewayStatus,
        returned: GatewayStatus,
        again: bool,
    ) -> None:
        """Refund part of a paid order under a key (its callback comes later), then cancel it."""
        order = self.repo.get(data.draw(st.sampled_from(self.in_state("awaiting_shipment"))))
        self.refund_outcome = refund
        money = Money.of(amount, CNY)
        self.attempt(lambda: self.service.refund(order.id, MERCHANT, key=key, amount=money))
        if again:  # the same key and total again: a retry
            self.attempt(lambda: self.service.refund(order.id, MERCHANT, key=key, amount=money))
        self.refund_outcome = returned
        self.attempt(lambda: self.service.cancel(order.id, Actor.buyer(order.buyer_id), "bye"))
        self.refund_outcome = GatewayStatus.SUCCEEDED
        pending = self.campaign().pending_refunds
        event(f"cancelled with a refund pending: {any(order.id in k for k, _, _ in pending)}")

    @invariant()
    def the_provider_is_never_asked_for_more_than_a_charge_holds(self) -> None:
        assert not getattr(self, "over_asked", []), self.over_asked

    @invariant()
    def stock_is_held_exactly_by_the_orders_still_alive(self) -> None:
        """As in the race, less the units returned: they are back on sale."""
        alive = [o for o in self.repo.all() if o.state != "cancelled"]
        held = sum(o.lines[0].quantity for o in alive) - getattr(self, "restocked", 0)
        assert self.inventory.available("tea") == STOCK - held

    @invariant()
    def each_request_is_refunded_at_most_once(self) -> None:
        if not hasattr(self, "service"):
            return
        settlement = self.campaign().settlement
        for order in self.repo.all():
            record = self.record(order.id) if hasattr(self, "after_sales") else None
            if record is None:
                continue
            for request in record.requests:
                if request.refund is None:
                    continue
                key = f"{order.id}:after-sales:{request.request_id}:refund"
                posted = sum(
                    (
                        p.amount
                        for p in self.ledger.postings(order.id)
                        if p.movement is Movement.REFUND and p.key.endswith(key)
                    ),
                    Money.zero(CNY),
                )
                assert posted <= request.refund.total, (request, posted)
                if request.state == "refunded":
                    assert posted == request.refund.total, (request, posted)
            if order.state == "delivered" and settlement is not None:
                money = self.service.money(order.id)
                kept = settlement.unit_price * order.lines[0].quantity
                late_in, late_out = self.late_balances(order.id)  # refunded on their own
                paid_in, refunded = money.paid_in - late_in, money.refunded - late_out
                assert paid_in == kept
                assert paid_in - refunded >= kept - record.refunded_amount("1") - sum(
                    (r.refund.total for r in record.requests if r.refund and r.state != "refunded"),
                    Money.zero(CNY),
                )

    def late_balances(self, order_id: str) -> tuple[Money, Money]:
        """What balance charges captured after the deposit was applied took in and gave back.

        A balance that lands late (a second charge) is refunded from itself, apart from the
        order's money for its units: ``(captured, refunded so far)``.
        """
        zero = Money.zero(CNY)
        postings = self.ledger.postings(order_id)
        applied = next((n for n, p in enumerate(postings) if p.key.endswith(":apply")), None)
        if applied is None:
            return zero, zero
        late = {
            p.key.removesuffix(":capture"): p.amount
            for p in postings[applied:]
            if ":gbbal:" in p.key and p.key.endswith(":capture")
        }
        returned = (p.amount for p in postings if p.key.removesuffix(":refund") in late)
        return sum(late.values(), zero), sum(returned, zero)

    def ask_everything_again(self) -> None:
        """After-sales refunds not settled, declined returns and late balances: asked again."""
        for order_id in self.in_state("delivered"):
            if self.record(order_id) is not None:
                self.wired()[1].settle_refunds(order_id)
        for order in self.repo.all():
            self.service.reconcile(order.id, retry_failed=True)

    def teardown(self) -> None:
        if not hasattr(self, "service"):
            return
        self.settle_everything()
        self.each_request_is_refunded_at_most_once()
        for order in self.repo.all():
            record = self.record(order.id) if hasattr(self, "after_sales") else None
            money = self.service.money(order.id)
            if record is not None:
                assert all(r.state == "refunded" for r in record.requests if r.refund), record
                given_back = sum(
                    (r.refund.total for r in record.requests if r.refund), Money.zero(CNY)
                )
                late_in, late_out = self.late_balances(order.id)
                assert late_out == late_in  # a late balance is given back whole
                assert money.refunded - late_out == given_back
            net = self.gateway.charged.get(order.id, Money.zero(CNY)) - self.gateway.refunded.get(
                order.id, Money.zero(CNY)
            )
            assert net == money.paid_in - money.refunded, (order.id, net, money)
            forfeited = any(p.movement is Movement.FORFEIT for p in self.ledger.postings(order.id))
            if order.state == "cancelled" and not forfeited:
                assert money.refunded == money.paid_in, (order.id, money)
        assert not self.campaign().pending_refunds
        self.the_provider_is_never_asked_for_more_than_a_charge_holds()


DepositGroupBuyReturns.TestCase.settings = settings(
    max_examples=40, stateful_step_count=80, deadline=None
)
TestDepositGroupBuyReturns = DepositGroupBuyReturns.TestCase
