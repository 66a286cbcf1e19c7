"""Many buyers racing through one group buy in CampaignService, with the ledger and stock checked.

Buyers place orders of 1-3 units and pay them (the provider may decline, or leave a payment
pending and answer later, sometimes twice), cancel, and the merchant tries to ship or calls
the campaign off; time passes and due orders and the campaign expire. After every step:

- the campaign's level never passes its cap, and is what its active participations add up to;
- a participation belongs to a paid order waiting for the close, paid by that very payment;
- no order ships, or may ship, unless the campaign succeeded; an order waits in
  ``awaiting_group`` only while the campaign runs;
- every posting balances, all accounts sum to zero, every order's money balances, no order is
  refunded more than it paid in, and no order is refunded twice under one key;
- once the campaign succeeded, every settled order paid, net of refunds, the final tier price
  times its quantity (or what it paid, if withdrawals raised the final price above that: a
  buyer never pays more than at joining), exactly that unless a difference refund is still
  open or was declined;
- stock is held exactly by the orders still alive: every abandoned order gave its units back
  once (a second release would show as more available than this);
- a refused command changes nothing.

At the end the provider answers everything, every notification is delivered, the window runs
out and declined refunds are retried: then each cancelled order has all its money back, each
settled order paid exactly the final price, and the provider's books agree with the ledger.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from datetime import timedelta

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from ecommerce_core import Actor, EcommerceCoreError, Money
from ecommerce_core.adapters.memory import (
    InMemoryCatalog,
    InMemoryGroupBuyRepository,
    InMemoryInventory,
    InMemoryLedger,
    InMemoryOrderRepository,
    InMemoryPaymentRepository,
    ManualClock,
    RecordingPublisher,
    ScriptedPaymentGateway,
    SequentialIds,
)
from ecommerce_core.campaigns.group_buy import GroupBuy, GroupBuyTerms, PriceTier, TierMeasure
from ecommerce_core.payments import GatewayPayment
from ecommerce_core.ports import GatewayStatus, Product
from ecommerce_core.services import CampaignService
from ecommerce_core.testing.stateful import RefusalsChangeNothing

CNY = "CNY"
STOCK = 200
BUYERS = [Actor.buyer(name) for name in ("ann", "ben", "cat", "dan", "eve", "fay")]
MERCHANT = Actor.merchant("m-1")
OUTCOMES = st.sampled_from(
    [GatewayStatus.SUCCEEDED] * 4 + [GatewayStatus.PENDING, GatewayStatus.DECLINED]
)


def yuan(amount: str) -> Money:
    return Money.of(amount, CNY)


class GroupBuyRaces(RefusalsChangeNothing, RuleBasedStateMachine):
    """One group buy with a random minimum, cap and measure, raced for by six buyers."""

    @initialize(
        minimum=st.integers(1, 6),
        cap=st.none() | st.integers(8, 12),
        measure=st.sampled_from(list(TierMeasure)),
    )
    def start(self, minimum: int, cap: int | None, measure: TierMeasure) -> None:
        self.outcome = GatewayStatus.SUCCEEDED
        self.clock = ManualClock()
        self.gateway = ScriptedPaymentGateway(lambda _: self.outcome)
        self.ledger = InMemoryLedger()
        self.inventory = InMemoryInventory({"tea": STOCK})
        self.repo = InMemoryOrderRepository()
        self.campaigns = InMemoryGroupBuyRepository()
        self.service = CampaignService(
            orders=self.repo,
            inventory=self.inventory,
            catalog=InMemoryCatalog([Product("tea", "m-1", "tea", yuan("10.00"))]),
            payments=self.gateway,
            clock=self.clock,
            ids=SequentialIds(),
            publisher=RecordingPublisher(),
            ledger=self.ledger,
            payment_records=InMemoryPaymentRepository(),
            group_buys=self.campaigns,
        )
        top = 6 if measure is TierMeasure.PARTICIPANTS else 8
        terms = GroupBuyTerms(
            list_price=yuan("10.00"),
            tiers=[
                PriceTier(2, yuan("9.50")),
                PriceTier(4, yuan("9.00")),
                PriceTier(top, yuan("8.00")),
            ],
            starts_at=self.clock.now(),
            ends_at=self.clock.now() + timedelta(hours=3),
            minimum=min(minimum, top),
            measure=measure,
            cap=None if cap is None else min(cap, top + 2),
        )
        self.campaign_id = self.service.create_group_buy(MERCHANT, "tea", terms).id
        self.undelivered: list[dict[str, str]] = []
        self.delivered: list[dict[str, str]] = []
        self.shipped: set[str] = set()

    # ------------------------------------------------------------------ helpers

    def campaign(self) -> GroupBuy:
        return self.campaigns.get(self.campaign_id)

    def snapshot(self) -> tuple[object, ...]:
        campaign = self.campaign()
        return (
            [(o.id, o.state, o.version, o.payment) for o in self.repo.all()],
            (campaign.version, campaign.state, campaign.participations),
            self.inventory.available("tea"),
            self.inventory.on_hand("tea"),
            len(self.ledger.all()),
        )

    def pending_keys(self) -> list[str]:
        return self.gateway.pending_keys()

    def order_ids(self) -> list[str]:
        return [o.id for o in self.repo.all()]

    def difference_unsettled(self, order_id: str) -> bool:
        """Whether the order's difference refund is open or was declined (not yet retried)."""
        refunds = [r for p in self.service.payments_of(order_id) for r in p.refunds]
        mine = [r for r in refunds if ":difference:" in r.id]
        retried = [r for r in refunds if r.automatic and ":auto-" in r.id]  # reconcile's
        return any(r.status != "succeeded" for r in mine) and not any(
            r.status == "succeeded" for r in retried
        )

    # ------------------------------------------------------------------ rules

    @rule(outcome=OUTCOMES)
    def the_provider_changes_its_mind(self, outcome: GatewayStatus) -> None:
        self.outcome = outcome

    @rule(buyer=st.sampled_from(BUYERS), quantity=st.integers(1, 3))
    def a_buyer_places_an_order(self, buyer: Actor, quantity: int) -> None:
        self.attempt_unchanged(
            lambda: self.service.place_group_buy_order(buyer, self.campaign_id, quantity)
        )

    @rule(buyer=st.sampled_from(BUYERS), quantity=st.integers(1, 3))
    def a_buyer_orders_and_pays_at_once(self, buyer: Actor, quantity: int) -> None:
        orders = []
        if self.attempt_unchanged(
            lambda: orders.append(
                self.service.place_group_buy_order(buyer, self.campaign_id, quantity)
            )
        ):
            with contextlib.suppress(EcommerceCoreError):  # declined, pending, refused
                self.service.pay(orders[0].id, buyer)

    @rule(data=st.data())
    def a_buyer_pays(self, data: st.DataObject) -> None:
        ids = self.order_ids()
        if not ids:
            return
        unpaid = [o.id for o in self.repo.all() if o.state == "pending_payment"]
        order_id = data.draw(st.sampled_from(unpaid or ids), label="order")
        buyer = Actor.buyer(self.repo.get(order_id).buyer_id)
        # declined, pending, refused before (nothing charged) or after (refunded)
        with contextlib.suppress(EcommerceCoreError):
            self.service.pay(order_id, buyer)

    @rule(data=st.data())
    def a_buyer_cancels(self, data: st.DataObject) -> None:
        ids = self.order_ids()
        if not ids:
            return
        order_id = data.draw(st.sampled_from(ids), label="order")
        buyer = Actor.buyer(self.repo.get(order_id).buyer_id)
        self.attempt_unchanged(lambda: self.service.cancel(order_id, buyer, "changed my mind"))

    @rule(data=st.data())
    def the_merchant_tries_to_ship(self, data: st.DataObject) -> None:
        ids = self.order_ids()
        if not ids:
            return
        order_id = data.draw(st.sampled_from(ids), label="order")
        if self.attempt_unchanged(
            lambda: self.service.ship(order_id, MERCHANT, carrier="SF", tracking_number="1")
        ):
            self.shipped.add(order_id)

    @rule(call_off=st.integers(0, 19))
    def the_merchant_may_call_the_campaign_off(self, call_off: int) -> None:
        if call_off == 7:  # rarely: most runs should reach the close
            with contextlib.suppress(EcommerceCoreError):
                self.service.cancel_group_buy(self.campaign_id, MERCHANT, reason="supplier gone")

    @rule(minutes=st.integers(5, 90))
    def time_passes(self, minutes: int) -> None:
        self.clock.advance(timedelta(minutes=minutes))
        self.service.expire_due()

    @precondition(lambda self: len(self.repo.all()) >= 4)
    @rule()
    def the_window_ends(self) -> None:
        ends_at = self.campaign().terms.ends_at
        if self.clock.now() < ends_at:
            self.clock.advance(ends_at - self.clock.now())
        self.service.expire_due()

    @rule(data=st.data(), succeeded=st.booleans())
    def the_provider_finishes_a_pending_request(self, data: st.DataObject, succeeded: bool) -> None:
        keys = self.pending_keys()
        if keys:
            key = data.draw(st.sampled_from(keys), label="pending")
            self.undelivered.append(self.gateway.settle_pending(key, succeeded=succeeded))

    @rule(data=st.data())
    def a_notification_arrives(self, data: st.DataObject) -> None:
        if self.undelivered:
            index = data.draw(st.integers(0, len(self.undelivered) - 1), label="notification")
            payload = self.undelivered.pop(index)
            self.service.handle_notification(payload)
            self.delivered.append(payload)

    @rule(data=st.data())
    def a_notification_arrives_again(self, data: st.DataObject) -> None:
        if self.delivered:
            payload = data.draw(st.sampled_from(self.delivered), label="duplicate")
            before = self.snapshot()
            outcome = self.service.handle_notification(payload)
            assert outcome.outcome == "repeat"
            assert self.snapshot() == before

    # ------------------------------------------------------------------ invariants

    @invariant()
    def the_level_never_passes_the_cap_and_adds_up(self) -> None:
        campaign = self.campaign()
        active = campaign.active()
        if campaign.terms.measure is TierMeasure.QUANTITY:
            assert campaign.level == sum(p.quantity for p in active)
        else:
            assert campaign.level == len({p.buyer_id for p in active})
        if campaign.terms.cap is not None:
            assert campaign.level <= campaign.terms.cap

    @invariant()
    def a_participation_is_a_waiting_order_paid_by_that_payment(self) -> None:
        campaign = self.campaign()
        for joined in campaign.active():
            order = self.repo.get(joined.order_id)
            assert order.payment is not None
            assert order.payment.reference == joined.payment_ref
            lowered = sum(  # the final tier's cut, taken off the order at a successful close
                (
                    a.amount
                    for ln in order.lines
                    for a in ln.adjustments
                    if a.stage == "after_payment"
                ),
                Money.zero(CNY),
            )
            assert joined.paid == order.total + lowered
            if campaign.state == "running":
                assert order.state == "awaiting_group", (joined, order.state)

    @invariant()
    def no_order_ships_or_waits_out_of_turn(self) -> None:
        state = self.campaign().state
        for order in self.repo.all():
            if order.state in ("awaiting_shipment", "shipped") or order.id in self.shipped:
                assert state == "succeeded", (order.id, order.state, state)
            if order.state == "awaiting_group":
                assert state == "running" or not self.campaign().active(), (order.id, state)

    @invariant()
    def money_is_conserved_in_the_ledger(self) -> None:
        for posting in self.ledger.all():
            assert posting.amount.is_positive
            assert posting.source != posting.target
        assert sum(m.minor for m in self.ledger.balances(CNY).values()) == 0
        for order in self.repo.all():
            money = self.service.money(order.id)
            assert money.balanced, money
            assert money.refunded <= money.paid_in, money
            for line in money.lines.values():
                assert not line.refundable.is_negative
            keys = Counter(
                r.id.rsplit(":retry-", 1)[0]
                for p in self.service.payments_of(order.id)
                for r in p.refunds
                if r.status == "succeeded"
            )
            assert all(count == 1 for count in keys.values()), keys

    @invariant()
    def a_settled_order_pays_the_final_price_net_of_refunds(self) -> None:
        campaign = self.campaign()
        if campaign.settlement is None:
            return
        for line in campaign.settlement.lines:
            order = self.repo.get(line.order_id)
            if order.state == "cancelled":
                continue
            money = self.service.money(order.id)
            net = money.paid_in - money.refunded
            # The final tier's price, or what they paid if withdrawals raised it since.
            final = min(campaign.settlement.unit_price * line.quantity, order.total)
            assert line.final_amount == final
            assert net >= final, (order.id, net, final)
            if not self.difference_unsettled(order.id):
                assert net == final, (order.id, net, final)

    @invariant()
    def stock_is_held_exactly_by_the_orders_still_alive(self) -> None:
        alive = [o for o in self.repo.all() if o.state != "cancelled"]
        committed = [o for o in alive if o.payment is not None]
        assert self.inventory.available("tea") == STOCK - sum(o.lines[0].quantity for o in alive)
        assert self.inventory.on_hand("tea") == STOCK - sum(o.lines[0].quantity for o in committed)

    def teardown(self) -> None:
        if not hasattr(self, "service"):
            return
        self.outcome = GatewayStatus.SUCCEEDED
        while self.pending_keys() or self.undelivered:
            for key in self.pending_keys():
                self.undelivered.append(self.gateway.settle_pending(key))
            while self.undelivered:
                self.service.handle_notification(self.undelivered.pop())
        self.clock.advance(timedelta(days=2))
        self.service.expire_due()
        for order in self.repo.all():
            self.service.reconcile(order.id, retry_failed=True)
        self.stock_is_held_exactly_by_the_orders_still_alive()
        self.no_order_ships_or_waits_out_of_turn()
        campaign = self.campaign()
        assert campaign.state in ("succeeded", "failed")
        settled = (
            {}
            if campaign.settlement is None
            else {line.order_id: line for line in campaign.settlement.lines}
        )
        for order in self.repo.all():
            money = self.service.money(order.id)
            assert order.state in ("cancelled", "awaiting_shipment", "shipped"), order
            if order.state == "cancelled":
                assert money.paid_in == money.refunded, f"{order.id} kept money after a cancel"
            else:
                assert campaign.settlement is not None
                line = settled[order.id]
                final = min(campaign.settlement.unit_price * line.quantity, order.total)
                assert money.paid_in - money.refunded == final, order.id
            through_gateway = [
                p for p in self.service.payments_of(order.id) if isinstance(p, GatewayPayment)
            ]
            captured = sum((p.money().paid_in for p in through_gateway), Money.zero(CNY))
            refunded = sum((p.money().refunded for p in through_gateway), Money.zero(CNY))
            assert self.gateway.charged.get(order.id, Money.zero(CNY)) == captured, order.id
            assert self.gateway.refunded.get(order.id, Money.zero(CNY)) == refunded, order.id


GroupBuyRaces.TestCase.settings = settings(max_examples=30, stateful_step_count=50, deadline=None)
TestGroupBuyRaces = GroupBuyRaces.TestCase
