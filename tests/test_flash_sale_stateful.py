"""A flash sale under random traffic: many buyers buying, paying, cancelling and timing out.

Two 2-hour sessions sell one item: a quota per session, a per-buyer limit in units over the
sale, one unpaid order per buyer, a 15-minute payment timeout, and less main stock than the
two quotas together. A plain model predicts every outcome; after every step:

- never more units sold (paid, not cancelled) in a session than its quota;
- never more units held by a buyer (unpaid or paid, not cancelled) than the limit;
- the ledger holds exactly what the live orders hold: a quota returned twice, or never, would
  show; every abandoned order's reservation is released;
- the main stock reserved and on hand match the model: it is never oversold.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from ecommerce_core import Actor, EcommerceCoreError, Money
from ecommerce_core.adapters.memory import ScriptedPaymentGateway
from ecommerce_core.campaigns import FlashItem, FlashSale, daily_sessions
from ecommerce_core.demo import demo_service
from ecommerce_core.ports import GatewayStatus

QUOTA, PER_BUYER, STOCK = 3, 2, 4
TIMEOUT = timedelta(minutes=15)
BUYERS = ("alice", "bob", "carol")
SALE = FlashSale(
    "618",
    daily_sessions(date(2026, 1, 1), [time(10), time(12)], timedelta(hours=2), UTC),
    [FlashItem("tea-01", Money.of("38.00", "CNY"), Money.of("19.90", "CNY"), QUOTA, PER_BUYER)],
    payment_timeout=TIMEOUT,
)
START = datetime(2026, 1, 1, 9, 50, tzinfo=UTC)


class FlashSaleTraffic(RuleBasedStateMachine):
    @initialize()
    def open_the_shop(self):
        self.outcome = GatewayStatus.SUCCEEDED
        self.service, self.clock = demo_service(stock=STOCK, promotions=[SALE])
        self.service.payments = ScriptedPaymentGateway(lambda _: self.outcome)
        self.clock.advance(START - self.clock.now())
        # order id -> {"buyer", "units", "session", "state", "deadline"}
        self.model: dict[str, dict] = {}

    # ------------------------------------------------------------------ model

    def live(self, **match):
        return [
            o
            for o in self.model.values()
            if o["state"] != "cancelled" and all(o[k] == v for k, v in match.items())
        ]

    def units(self, **match):
        return sum(o["units"] for o in self.live(**match))

    def snapshot(self):
        inventory = self.service.inventory
        keys = [f"618:{s.id}:tea-01:units" for s in SALE.sessions]
        keys += [f"618:tea-01:units:buyer:{b}" for b in BUYERS]
        keys += [f"618:tea-01:uses:buyer:{b}:unpaid" for b in BUYERS]
        return (
            len(self.service.orders),
            dict(self.service.promotion_ledger.usage(keys)),
            (inventory.on_hand("tea-01"), inventory.reserved("tea-01")),
            dict(self.service.payments.charged),
        )

    def refused(self, action):
        before = self.snapshot()
        try:
            action()
        except EcommerceCoreError:
            pass
        else:  # pragma: no cover - only reached when the model and the service disagree
            msg = "the model expected a refusal"
            raise AssertionError(msg)
        assert self.snapshot() == before

    # ------------------------------------------------------------------ rules

    @rule(buyer=st.sampled_from(BUYERS), units=st.sampled_from([1, 1, 2, 3]))
    def buy(self, buyer, units):
        now = self.clock.now()
        session = SALE.session_at(now)
        possible = (
            session is not None
            and not self.live(buyer=buyer, state="pending")
            and self.units(session=session.id) + units <= QUOTA
            and self.units(buyer=buyer) + units <= PER_BUYER
            and self.units() + units <= STOCK
        )
        action = lambda: self.service.buy_in_campaign(Actor.buyer(buyer), "618", "tea-01", units)  # noqa: E731
        if not possible:
            self.refused(action)
            return
        order = action()
        assert order.total == Money.of("19.90", "CNY") * units
        self.model[order.id] = {
            "buyer": buyer,
            "units": units,
            "session": session.id,
            "state": "pending",
            "deadline": now + TIMEOUT,
        }

    @precondition(lambda self: self.live(state="pending"))
    @rule(
        data=st.data(),
        outcome=st.sampled_from(
            [GatewayStatus.SUCCEEDED] * 4 + [GatewayStatus.DECLINED, GatewayStatus.PENDING]
        ),
    )
    def pay(self, data, outcome):
        order_id = data.draw(
            st.sampled_from(sorted(o for o, m in self.model.items() if m["state"] == "pending"))
        )
        self.outcome = outcome
        buyer = Actor.buyer(self.model[order_id]["buyer"])
        # The gateway answers a retried charge (same idempotency key) with its first answer.
        first = self.model[order_id].setdefault("first_answer", outcome)
        if first is not GatewayStatus.SUCCEEDED:
            self.refused(lambda: self.service.pay(order_id, buyer))
            return
        self.service.pay(order_id, buyer)
        self.model[order_id]["state"] = "paid"

    @precondition(lambda self: self.live())
    @rule(data=st.data())
    def cancel(self, data):
        live = sorted(o["id"] for o in self.with_ids() if o["state"] != "cancelled")
        order_id = data.draw(st.sampled_from(live))
        self.outcome = GatewayStatus.SUCCEEDED  # refunds go through here; a declined refund
        # refuses the cancel, which tests/test_order_lifecycle_stateful.py covers
        self.service.cancel(order_id, Actor.buyer(self.model[order_id]["buyer"]), "changed my mind")
        self.model[order_id]["state"] = "cancelled"

    @rule(buyer=st.sampled_from(BUYERS), units=st.sampled_from([1, 2]))
    def buy_again(self, buyer, units):
        """Buying is the busiest rule in a flash sale: give it twice the weight."""
        self.buy(buyer, units)

    @rule(minutes=st.sampled_from([1, 3, 10, 16, 45]))
    def time_passes(self, minutes):
        now = self.clock.advance(timedelta(minutes=minutes))
        fired = {f.order_id for f in self.service.expire_due()}
        due = {
            order_id
            for order_id, order in self.model.items()
            if order["state"] == "pending" and order["deadline"] <= now
        }
        assert fired == due
        for order_id in due:
            self.model[order_id]["state"] = "cancelled"

    def with_ids(self):
        return [{"id": order_id, **order} for order_id, order in self.model.items()]

    # ------------------------------------------------------------------ invariants

    @invariant()
    def never_more_sold_in_a_session_than_its_quota(self):
        for session in SALE.sessions:
            assert self.units(session=session.id, state="paid") <= QUOTA
            assert self.units(session=session.id) <= QUOTA

    @invariant()
    def never_more_held_by_a_buyer_than_the_limit_nor_two_unpaid_orders(self):
        for buyer in BUYERS:
            assert self.units(buyer=buyer) <= PER_BUYER
            assert len(self.live(buyer=buyer, state="pending")) <= 1

    @invariant()
    def the_ledger_holds_exactly_what_live_orders_hold(self):
        _, usage, _, _ = self.snapshot()
        for session in SALE.sessions:
            assert usage[f"618:{session.id}:tea-01:units"] == self.units(session=session.id)
        for buyer in BUYERS:
            assert usage[f"618:tea-01:units:buyer:{buyer}"] == self.units(buyer=buyer)
            unpaid = len(self.live(buyer=buyer, state="pending"))
            assert usage[f"618:tea-01:uses:buyer:{buyer}:unpaid"] == unpaid

    @invariant()
    def every_abandoned_order_released_its_quota(self):
        for order_id, order in self.model.items():
            expected = {"pending": "reserved", "paid": "committed", "cancelled": "released"}
            assert self.service.promotion_ledger.state(order_id) == expected[order["state"]]

    @invariant()
    def the_main_stock_matches_the_model_and_is_never_oversold(self):
        _, _, (on_hand, reserved), _ = self.snapshot()
        assert reserved == self.units(state="pending")
        assert on_hand == STOCK - self.units(state="paid")
        assert on_hand - reserved >= 0


FlashSaleTraffic.TestCase.settings = settings(
    max_examples=50, stateful_step_count=40, deadline=None
)
TestFlashSaleTraffic = FlashSaleTraffic.TestCase
