"""Many orders earning rebates through CampaignService, with the ledger and stock checked.

Buyers buy tea (5 % cashback from the platform), a pot (3.00 cashback from its merchant) or a
cup (no cashback), online, in escrow or cash on delivery; they pay (the provider may decline or
leave a payment pending and answer later), cancel, and confirm receipt; merchants ship;
carriers collect cash at the door; the platform refunds parts or all of an order, before and
after its rebate is credited (a refund may stay pending at the provider too); time passes and
``expire_due`` runs. After every step:

- every posting balances, all accounts sum to zero, every order's money balances, and no
  order is refunded more than it paid in;
- the ledger's rebate postings for each order (credits less clawbacks) are exactly what its
  rebates say was paid out, and never more than the rate applied to the goods money the
  order keeps (paid in less refunded): ``paid_out * base <= amount * kept``;
- each rebate was granted, credited and voided at most once, credited only on a closed order,
  and never left alive (pending, frozen) or credited on an abandoned one;
- stock is held exactly by the orders still alive;
- a refused command changes nothing.

At the end the provider answers everything, every notification is delivered and time runs out:
then every closed order's rebate was paid out exactly ``floor(amount * kept / base)`` and every
cancelled order's rebate is void.
"""

from __future__ import annotations

import contextlib
import itertools
from collections import Counter
from datetime import timedelta

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from ecommerce_core import Actor, EcommerceCoreError, Money
from ecommerce_core.adapters.memory import (
    InMemoryCatalog,
    InMemoryInventory,
    InMemoryLedger,
    InMemoryOrderRepository,
    InMemoryPaymentRepository,
    InMemoryPromotionCatalog,
    InMemoryPromotionLedger,
    InMemoryRebateRepository,
    ManualClock,
    RecordingPublisher,
    ScriptedPaymentGateway,
    SequentialIds,
)
from ecommerce_core.campaigns.rebate import (
    RebateCredited,
    RebateGranted,
    RebateVoided,
    kept_amount,
)
from ecommerce_core.orders import Order
from ecommerce_core.payments.ledger import ORDER_LEVEL, Movement
from ecommerce_core.ports import GatewayStatus, Product
from ecommerce_core.promotions import Promotion, Scope
from ecommerce_core.promotions import Rebate as Cashback
from ecommerce_core.services import CampaignService
from ecommerce_core.testing.stateful import RefusalsChangeNothing

CNY = "CNY"
STOCK = 40
SKUS = ("tea", "pot", "cup")
BUYERS = [Actor.buyer(name) for name in ("ann", "ben", "cat")]
MERCHANTS = {"m-1": Actor.merchant("m-1"), "m-2": Actor.merchant("m-2")}
PLATFORM = Actor.platform()
OUTCOMES = st.sampled_from(
    [GatewayStatus.SUCCEEDED] * 4 + [GatewayStatus.PENDING, GatewayStatus.DECLINED]
)


def cny(minor: int) -> Money:
    return Money(minor, CNY)


class RebateRaces(RefusalsChangeNothing, RuleBasedStateMachine):
    """Orders racing through payment, shipment, receipt, refunds and the scheduler."""

    @initialize()
    def start(self) -> None:
        self.outcome = GatewayStatus.SUCCEEDED
        self.clock = ManualClock()
        self.gateway = ScriptedPaymentGateway(lambda _: self.outcome)
        self.ledger = InMemoryLedger()
        self.inventory = InMemoryInventory(dict.fromkeys(SKUS, STOCK))
        self.repo = InMemoryOrderRepository()
        self.rebates = InMemoryRebateRepository()
        self.publisher = RecordingPublisher()
        self.service = CampaignService(
            orders=self.repo,
            inventory=self.inventory,
            catalog=InMemoryCatalog(
                [
                    Product("tea", "m-1", "tea", Money.of("99.00", CNY)),
                    Product("pot", "m-2", "ware", Money.of("45.50", CNY)),
                    Product("cup", "m-1", "ware", Money.of("12.00", CNY)),
                ]
            ),
            payments=self.gateway,
            clock=self.clock,
            ids=SequentialIds(),
            publisher=self.publisher,
            ledger=self.ledger,
            payment_records=InMemoryPaymentRepository(),
            promotions=InMemoryPromotionCatalog(
                [
                    Promotion("cash5", Cashback(percent=5), scope=Scope(skus={"tea"})),
                    Promotion(
                        "pot-back",
                        Cashback(amount=Money.of("3.00", CNY), funded_by="merchant"),
                        scope=Scope(skus={"pot"}),
                    ),
                ]
            ),
            promotion_ledger=InMemoryPromotionLedger(),
            rebates=self.rebates,
        )
        self.order_ids: list[str] = []
        self.undelivered: list[dict[str, str]] = []
        self.keys = itertools.count(1)

    # ------------------------------------------------------------------ helpers

    def orders(self) -> list[Order]:
        return [self.repo.get(order_id) for order_id in self.order_ids]

    def snapshot(self) -> tuple[object, ...]:
        return (
            [(o.id, o.state, o.version, o.payment) for o in self.repo.all()],
            [
                (r.id, r.state, r.version, r.refunded, r.credited, r.clawed_back)
                for order_id in self.order_ids
                for r in self.service.rebates_of(order_id)
            ],
            {sku: (self.inventory.available(sku), self.inventory.on_hand(sku)) for sku in SKUS},
            len(self.ledger.all()),
        )

    def pending_keys(self) -> list[str]:
        return self.gateway.pending_keys()

    def pick(self, data: st.DataObject, *states: str) -> Order | None:
        if not self.order_ids:
            return None
        matching = [o for o in self.orders() if o.state in states]
        order_id = data.draw(
            st.sampled_from([o.id for o in matching] or self.order_ids), label="order"
        )
        return self.repo.get(order_id)

    def committed(self, order: Order) -> bool:
        """Whether the order's stock was deducted: paid, or a COD order once shipped."""
        cod_shipped = order.payment_method == "cod" and order.shipment is not None
        return order.payment is not None or cod_shipped

    def goods_kept(self, order: Order) -> Money:
        money = self.service.money(order.id)
        return sum(
            (
                line.paid_in - line.refunded
                for line_id, line in money.lines.items()
                if line_id != ORDER_LEVEL
            ),
            Money.zero(CNY),
        )

    def ledger_paid_out(self, order_id: str) -> Money:
        out = Money.zero(CNY)
        for posting in self.ledger.postings(order_id):
            if posting.movement is Movement.REBATE_CREDIT:
                out += posting.amount
            elif posting.movement is Movement.REBATE_CLAWBACK:
                out -= posting.amount
        return out

    # ------------------------------------------------------------------ rules

    @rule(outcome=OUTCOMES)
    def the_provider_changes_its_mind(self, outcome: GatewayStatus) -> None:
        self.outcome = outcome

    @rule(
        buyer=st.sampled_from(BUYERS),
        sku=st.sampled_from(SKUS),
        quantity=st.integers(1, 3),
        method=st.sampled_from(["online", "online", "escrow", "cod"]),
    )
    def a_buyer_buys(self, buyer: Actor, sku: str, quantity: int, method: str) -> None:
        placed: list[str] = []
        if self.attempt_unchanged(  # out of stock: refused
            lambda: placed.append(self.service.buy_now(buyer, sku, quantity, method).id)
        ):
            self.order_ids.extend(placed)

    @rule(buyer=st.sampled_from(BUYERS), sku=st.sampled_from(SKUS), quantity=st.integers(1, 3))
    def a_buyer_buys_pays_and_receives_at_once(self, buyer: Actor, sku: str, quantity: int) -> None:
        with contextlib.suppress(EcommerceCoreError):  # out of stock, declined, pending: stop
            order = self.service.buy_now(buyer, sku, quantity)
            self.order_ids.append(order.id)
            self.service.pay(order.id, buyer)
            merchant = MERCHANTS[order.merchant_id]
            self.service.ship(order.id, merchant, carrier="SF", tracking_number="fast")
            self.service.confirm_receipt(order.id, buyer)

    @rule(data=st.data())
    def a_buyer_pays(self, data: st.DataObject) -> None:
        order = self.pick(data, "pending_payment")
        if order is not None:
            with contextlib.suppress(EcommerceCoreError):  # declined, pending, not payable
                self.service.pay(order.id, Actor.buyer(order.buyer_id))

    @rule(data=st.data())
    def a_buyer_cancels(self, data: st.DataObject) -> None:
        order = self.pick(data, "pending_payment", "awaiting_shipment")
        if order is not None:
            buyer = Actor.buyer(order.buyer_id)
            self.attempt_unchanged(lambda: self.service.cancel(order.id, buyer, "changed mind"))

    @rule(data=st.data())
    def the_merchant_ships(self, data: st.DataObject) -> None:
        order = self.pick(data, "awaiting_shipment")
        if order is not None:
            merchant = MERCHANTS[order.merchant_id]
            self.attempt_unchanged(
                lambda: self.service.ship(order.id, merchant, carrier="SF", tracking_number="1")
            )

    @rule(data=st.data())
    def the_carrier_collects_cash_on_delivery(self, data: st.DataObject) -> None:
        order = self.pick(data, "awaiting_collection")
        if order is not None:
            carrier, key = Actor.carrier("SF"), f"door-{next(self.keys)}"
            self.attempt_unchanged(
                lambda: self.service.collect_cod(order.id, carrier, amount=order.total, key=key)
            )

    @rule(data=st.data())
    def a_buyer_confirms_receipt(self, data: st.DataObject) -> None:
        order = self.pick(data, "shipped")
        if order is not None:
            buyer = Actor.buyer(order.buyer_id)
            self.attempt_unchanged(lambda: self.service.confirm_receipt(order.id, buyer))

    @rule(
        data=st.data(),
        share=st.integers(1, 100),
        everything=st.integers(0, 3).map(lambda n: n == 0),
    )
    def the_platform_refunds(self, data: st.DataObject, share: int, everything: bool) -> None:
        order = self.pick(data, "closed", "completed", "shipped", "awaiting_shipment")
        if order is None:
            return
        refundable = self.service.money(order.id).refundable
        amount = refundable if everything else Money(max(1, share * order.total.minor // 100), CNY)
        key = f"r{next(self.keys)}"
        with contextlib.suppress(EcommerceCoreError):  # too much, nothing paid: refused
            self.service.refund(order.id, PLATFORM, key=key, amount=amount)

    @rule(hours=st.sampled_from([1, 6, 24, 24 * 4, 24 * 8]))
    def time_passes(self, hours: int) -> None:
        self.clock.advance(timedelta(hours=hours))
        self.service.expire_due()

    @rule(data=st.data(), succeeded=st.booleans())
    def the_provider_finishes_a_pending_request(self, data: st.DataObject, succeeded: bool) -> None:
        keys = self.pending_keys()
        if keys:
            key = data.draw(st.sampled_from(keys), label="pending")
            self.undelivered.append(self.gateway.settle_pending(key, succeeded=succeeded))

    @rule(data=st.data(), twice=st.booleans())
    def a_notification_arrives(self, data: st.DataObject, twice: bool) -> None:
        if self.undelivered:
            index = data.draw(st.integers(0, len(self.undelivered) - 1), label="notification")
            payload = self.undelivered.pop(index)
            self.service.handle_notification(payload)
            if twice:
                self.service.handle_notification(payload)

    # ------------------------------------------------------------------ invariants

    @invariant()
    def money_is_conserved_in_the_ledger(self) -> None:
        for posting in self.ledger.all():
            assert posting.amount.is_positive
            assert posting.source != posting.target
        assert sum(m.minor for m in self.ledger.balances(CNY).values()) == 0
        for order in self.orders():
            money = self.service.money(order.id)
            assert money.balanced, money
            assert money.refunded <= money.paid_in, money

    @invariant()
    def a_rebate_is_never_paid_on_money_that_was_refunded(self) -> None:
        for order in self.orders():
            rebates = self.service.rebates_of(order.id)
            paid_out = sum((r.paid_out for r in rebates), Money.zero(CNY))
            assert self.ledger_paid_out(order.id) == paid_out, order.id
            assert not paid_out.is_negative
            for rebate in rebates:
                kept = min(max(self.goods_kept(order), Money.zero(CNY)), rebate.base)
                assert rebate.paid_out.minor * rebate.base.minor <= (
                    rebate.amount.minor * kept.minor
                ), (rebate, kept)

    @invariant()
    def each_rebate_is_granted_credited_and_voided_at_most_once(self) -> None:
        counts: Counter[tuple[type, str]] = Counter()
        for published in self.publisher.published:
            if isinstance(published, RebateGranted | RebateCredited | RebateVoided):
                counts[type(published), published.aggregate_id] += 1
        assert all(n == 1 for n in counts.values()), counts

    @invariant()
    def rebates_follow_their_orders(self) -> None:
        for order in self.orders():
            for rebate in self.service.rebates_of(order.id):
                assert order.payment is not None or order.payment_method == "cod"
                if rebate.credited.is_positive:
                    assert order.state == "closed", (order.state, rebate)
                if order.state == "cancelled":
                    assert rebate.state == "void", (order.id, rebate.state)
                if rebate.state == "frozen":
                    assert order.state in ("completed", "closed"), order.state

    @invariant()
    def stock_is_held_exactly_by_the_orders_still_alive(self) -> None:
        for sku in SKUS:
            alive = [o for o in self.orders() if o.state != "cancelled" and sku in o.quantities]
            held = sum(o.quantities[sku] for o in alive)
            committed = sum(o.quantities[sku] for o in alive if self.committed(o))
            assert self.inventory.available(sku) == STOCK - held, sku
            assert self.inventory.on_hand(sku) == STOCK - committed, sku

    def teardown(self) -> None:
        if not hasattr(self, "service"):
            return
        self.outcome = GatewayStatus.SUCCEEDED
        while self.pending_keys() or self.undelivered:
            for key in self.pending_keys():
                self.undelivered.append(self.gateway.settle_pending(key))
            while self.undelivered:
                self.service.handle_notification(self.undelivered.pop())
        for order in self.orders():
            if order.state == "awaiting_shipment":
                merchant = MERCHANTS[order.merchant_id]
                self.service.ship(order.id, merchant, carrier="SF", tracking_number="end")
            if self.repo.get(order.id).state == "shipped":
                self.service.confirm_receipt(order.id, Actor.buyer(order.buyer_id))
            if self.repo.get(order.id).state == "awaiting_collection":
                total, carrier = order.total, Actor.carrier("SF")
                self.service.collect_cod(order.id, carrier, amount=total, key="end")
        self.clock.advance(timedelta(days=30))
        self.service.expire_due()
        self.a_rebate_is_never_paid_on_money_that_was_refunded()
        self.each_rebate_is_granted_credited_and_voided_at_most_once()
        for order in self.orders():
            for rebate in self.service.rebates_of(order.id):
                event(f"a rebate ends {rebate.state}")
                event(f"a {order.payment_method} order earned a rebate")
                if rebate.clawed_back.is_positive:
                    event("a rebate was clawed back")
                if rebate.refunded.is_positive and rebate.credited.is_positive:
                    event("a rebate was reduced, then credited")
                if order.state == "cancelled":
                    assert rebate.state == "void"
                    continue
                assert order.state == "closed", order.state
                kept = min(max(self.goods_kept(order), Money.zero(CNY)), rebate.base)
                expected = kept_amount(rebate.amount, rebate.base, rebate.base - kept)
                if rebate.state != "void":
                    assert rebate.paid_out == expected, (rebate, kept)


RebateRaces.TestCase.settings = settings(max_examples=30, stateful_step_count=50, deadline=None)
TestRebateRaces = RebateRaces.TestCase
