"""Many buyers racing through one deposit group buy in CampaignService, ledger and stock checked.

Buyers place orders of 1-3 units, pay deposits and balances (the provider may decline, or
leave a charge or a refund pending and answer later, sometimes twice), cancel; time passes
and the campaign, the payment deadlines and the balance deadline expire. After every step:

- the campaign's level never passes its cap; an active participation is an order whose
  deposit is held (or applied or forfeited) in the ledger, paid by that very charge;
- all accounts sum to zero, every order's money balances, none is refunded more than paid;
- each deposit is settled (released, applied or forfeited) at most once, and a buyer's
  deposit account holds exactly the deposits not settled yet;
- an order waiting to ship paid exactly the final price times its quantity;
- stock is held exactly by the orders still alive (each abandoned order gave it back once);
- a refused command changes nothing.

At the end the provider answers everything, every notification is delivered and every
deadline passes: then each deposit was settled exactly once, each order is cancelled (all its
money back, but a forfeited deposit) or waits to ship having paid the final price, and the
provider's books agree with the ledger.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from ecommerce_core import Actor, EcommerceCoreError, Money
from ecommerce_core.adapters.memory import (
    GatewayRequest,
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
from ecommerce_core.campaigns.group_buy import (
    GroupBuy,
    GroupBuyPayment,
    GroupBuyTerms,
    PriceTier,
    UnpaidBalance,
)
from ecommerce_core.payments.ledger import AccountKind, Movement
from ecommerce_core.ports import GatewayStatus, Product, RefundRequest
from ecommerce_core.services import CampaignService

CNY = "CNY"
STOCK = 200
BUYERS = [Actor.buyer(name) for name in ("ann", "ben", "cat", "dan", "eve")]
MERCHANT = Actor.merchant("m-1")
OUTCOMES = st.sampled_from(
    [GatewayStatus.SUCCEEDED] * 4 + [GatewayStatus.PENDING, GatewayStatus.DECLINED]
)
SETTLES = ("release", "apply", "forfeit")
PAYABLE = ("pending_payment", "awaiting_balance")


def yuan(amount: str) -> Money:
    return Money.of(amount, CNY)


class DepositGroupBuyRaces(RuleBasedStateMachine):
    """One deposit group buy with a random minimum, cap and unpaid-balance policy."""

    @initialize(
        minimum=st.integers(1, 5),
        cap=st.none() | st.integers(8, 10),
        policy=st.sampled_from(list(UnpaidBalance)),
        deposit=st.sampled_from(["1.00", "2.50", "8.00"]),
    )
    def start(self, minimum: int, cap: int | None, policy: UnpaidBalance, deposit: str) -> None:
        self.outcome = GatewayStatus.SUCCEEDED
        self.refund_outcome = GatewayStatus.SUCCEEDED
        self.clock = ManualClock()
        self.gateway = ScriptedPaymentGateway(self._decide)
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
        terms = GroupBuyTerms(
            list_price=yuan("10.00"),
            tiers=[
                PriceTier(2, yuan("9.50")),
                PriceTier(4, yuan("9.00")),
                PriceTier(8, yuan("8.00")),
            ],
            starts_at=self.clock.now(),
            ends_at=self.clock.now() + timedelta(hours=3),
            minimum=minimum,
            cap=cap,
            payment=GroupBuyPayment.DEPOSIT,
            deposit=yuan(deposit),
            balance_window=timedelta(hours=1),
            unpaid_balance=policy,
        )
        self.campaign_id = self.service.create_group_buy(MERCHANT, "tea", terms).id
        self.undelivered: list[dict[str, str]] = []
        self.delivered: list[dict[str, str]] = []

    def _decide(self, request: GatewayRequest) -> GatewayStatus:
        return self.refund_outcome if isinstance(request, RefundRequest) else self.outcome

    # ------------------------------------------------------------------ helpers

    def campaign(self) -> GroupBuy:
        return self.campaigns.get(self.campaign_id)

    def order_ids(self) -> list[str]:
        return [o.id for o in self.repo.all()]

    def pending_keys(self) -> list[str]:
        return self.gateway.pending_keys()

    def snapshot(self) -> tuple[object, ...]:
        return (
            [(o.id, o.state, o.version) for o in self.repo.all()],
            self.campaign().version,
            self.inventory.available("tea"),
            len(self.ledger.all()),
            dict(self.gateway.charged),
        )

    def attempt(self, command: object) -> None:
        """Run a command; if it is refused (and charged nothing), nothing may have changed."""
        before = self.snapshot()
        charged = dict(self.gateway.charged)
        try:
            command()  # type: ignore[operator]
        except EcommerceCoreError:
            if self.gateway.charged == charged:
                assert self.snapshot() == before

    def settled(self) -> Counter[str]:
        """How many times each deposit charge (``<payment id>:<transaction>``) was settled."""
        return Counter(
            p.key.rsplit(":", 1)[0]
            for p in self.ledger.all()
            if ":gbdep:" in p.key and p.key.rsplit(":", 1)[1] in SETTLES
        )

    def holds(self) -> dict[str, Money]:
        return {
            p.key.rsplit(":", 1)[0]: p.amount
            for p in self.ledger.all()
            if ":gbdep:" in p.key and p.key.endswith(":hold")
        }

    # ------------------------------------------------------------------ rules

    @rule(buyer=st.sampled_from(BUYERS), quantity=st.integers(1, 3))
    def place(self, buyer: Actor, quantity: int) -> None:
        self.attempt(lambda: self.service.place_group_buy_order(buyer, self.campaign_id, quantity))

    @rule(buyer=st.sampled_from(BUYERS), quantity=st.integers(1, 3))
    def place_and_pay_the_deposit(self, buyer: Actor, quantity: int) -> None:
        def command() -> None:
            order = self.service.place_group_buy_order(buyer, self.campaign_id, quantity)
            self.service.pay(order.id, buyer)

        self.attempt(command)

    @precondition(lambda self: self.awaiting_balance())
    @rule(data=st.data(), outcome=OUTCOMES)
    def pay_the_balance(self, data: st.DataObject, outcome: GatewayStatus) -> None:
        order = self.repo.get(data.draw(st.sampled_from(self.awaiting_balance()), label="order"))
        self.outcome = outcome
        self.attempt(lambda: self.service.pay(order.id, Actor.buyer(order.buyer_id)))
        self.outcome = GatewayStatus.SUCCEEDED

    def awaiting_balance(self) -> list[str]:
        return [o.id for o in self.repo.all() if o.state == "awaiting_balance"]

    def payable(self) -> list[str]:
        return [o.id for o in self.repo.all() if o.state in PAYABLE]

    @precondition(lambda self: self.payable())
    @rule(data=st.data(), outcome=OUTCOMES, key=st.sampled_from(["1", "2"]))
    def pay(self, data: st.DataObject, outcome: GatewayStatus, key: str) -> None:
        order = self.repo.get(data.draw(st.sampled_from(self.payable()), label="order"))
        self.outcome = outcome
        self.attempt(lambda: self.service.pay(order.id, Actor.buyer(order.buyer_id), key=key))
        self.outcome = GatewayStatus.SUCCEEDED

    @precondition(lambda self: self.order_ids())
    @rule(data=st.data(), refund=st.sampled_from([GatewayStatus.SUCCEEDED, GatewayStatus.PENDING]))
    def cancel(self, data: st.DataObject, refund: GatewayStatus) -> None:
        order = self.repo.get(data.draw(st.sampled_from(self.order_ids()), label="order"))
        self.refund_outcome = refund
        self.attempt(lambda: self.service.cancel(order.id, Actor.buyer(order.buyer_id), "bye"))
        self.refund_outcome = GatewayStatus.SUCCEEDED

    @precondition(lambda self: self.pending_keys())
    @rule(data=st.data(), succeeded=st.booleans())
    def provider_answers(self, data: st.DataObject, succeeded: bool) -> None:
        key = data.draw(st.sampled_from(self.pending_keys()), label="pending")
        self.undelivered.append(self.gateway.settle_pending(key, succeeded=succeeded))

    @precondition(lambda self: self.undelivered)
    @rule(data=st.data())
    def deliver(self, data: st.DataObject) -> None:
        index = data.draw(st.integers(0, len(self.undelivered) - 1), label="notification")
        payload = self.undelivered.pop(index)
        self.service.handle_notification(payload)
        self.delivered.append(payload)

    @precondition(lambda self: self.delivered)
    @rule(data=st.data())
    def deliver_again(self, data: st.DataObject) -> None:
        payload = data.draw(st.sampled_from(self.delivered), label="duplicate")
        before = self.snapshot()
        self.service.handle_notification(payload)
        assert self.snapshot() == before

    @rule(
        minutes=st.integers(5, 50),
        refund=st.sampled_from([GatewayStatus.SUCCEEDED, GatewayStatus.PENDING]),
    )
    def time_passes(self, minutes: int, refund: GatewayStatus) -> None:
        self.clock.advance(timedelta(minutes=minutes))
        self.refund_outcome = refund
        self.service.expire_due()
        self.refund_outcome = GatewayStatus.SUCCEEDED

    # ------------------------------------------------------------------ invariants

    @invariant()
    def the_level_never_passes_the_cap_and_each_participant_holds_its_deposit(self) -> None:
        campaign = self.campaign()
        active = campaign.active()
        assert campaign.level == sum(p.quantity for p in active)
        if campaign.terms.cap is not None:
            assert campaign.level <= campaign.terms.cap
        holds = self.holds()
        for joined in active:
            base = f"{campaign.id}:gbdep:{joined.order_id}:{joined.payment_ref}"
            assert holds.get(base) == joined.paid, (joined, holds)
            if campaign.state == "running":
                assert self.repo.get(joined.order_id).state == "awaiting_group"

    @invariant()
    def money_is_conserved_and_every_orders_money_balances(self) -> None:
        for posting in self.ledger.all():
            assert posting.amount.is_positive
        assert sum(m.minor for m in self.ledger.balances(CNY).values()) == 0
        for order in self.repo.all():
            money = self.service.money(order.id)
            assert money.balanced, money
            assert money.refunded <= money.paid_in, money

    @invariant()
    def each_deposit_is_settled_at_most_once_and_the_rest_is_held(self) -> None:
        settled = self.settled()
        assert all(count == 1 for count in settled.values()), settled
        holds = self.holds()
        assert set(settled) <= set(holds)
        balances = self.ledger.balances(CNY)
        for buyer in BUYERS:
            open_ = sum(
                (
                    amount
                    for base, amount in holds.items()
                    if base not in settled
                    and self.repo.get(base.split(":")[2]).buyer_id == buyer.id
                ),
                Money.zero(CNY),
            )
            held = sum(
                (
                    m
                    for a, m in balances.items()
                    if a.kind is AccountKind.DEPOSIT and a.owner == buyer.id
                ),
                Money.zero(CNY),
            )
            assert held == open_, (buyer, held, open_)

    @invariant()
    def an_order_waiting_to_ship_paid_the_final_price(self) -> None:
        campaign = self.campaign()
        for order in self.repo.all():
            if order.state != "awaiting_shipment":
                continue
            assert campaign.settlement is not None
            money = self.service.money(order.id)
            quantity = order.lines[0].quantity
            assert money.paid_in - money.refunded == campaign.settlement.unit_price * quantity

    @invariant()
    def stock_is_held_exactly_by_the_orders_still_alive(self) -> None:
        alive = [o for o in self.repo.all() if o.state != "cancelled"]
        assert self.inventory.available("tea") == STOCK - sum(o.lines[0].quantity for o in alive)

    def ask_everything_again(self) -> None:
        """What a host's jobs ask again once every callback is in (nothing, in this race)."""

    def settle_everything(self) -> None:
        """The provider answers everything, hosts' jobs ask again, the clock runs on: thrice."""
        self.outcome = self.refund_outcome = GatewayStatus.SUCCEEDED
        for _ in range(3):
            while self.pending_keys() or self.undelivered:
                for key in self.pending_keys():
                    self.undelivered.append(self.gateway.settle_pending(key))
                while self.undelivered:
                    self.service.handle_notification(self.undelivered.pop())
            self.ask_everything_again()
            self.clock.advance(timedelta(hours=3))
            self.service.expire_due()

    def teardown(self) -> None:
        if not hasattr(self, "service"):
            return
        self.settle_everything()
        self.stock_is_held_exactly_by_the_orders_still_alive()
        campaign = self.campaign()
        assert campaign.state in ("succeeded", "failed")
        assert campaign.due_at is None
        settled = self.settled()
        assert set(settled) == set(self.holds()), "a deposit was never settled"
        forfeited = Counter(
            p.order_id for p in self.ledger.all() for _ in [p] if p.movement is Movement.FORFEIT
        )
        for order in self.repo.all():
            assert order.state in ("cancelled", "awaiting_shipment"), order
            money = self.service.money(order.id)
            if order.state == "cancelled":
                kept = money.paid_in - money.refunded
                assert kept.is_zero or forfeited[order.id] == 1, (order.id, money)
            net = self.gateway.charged.get(order.id, Money.zero(CNY)) - self.gateway.refunded.get(
                order.id, Money.zero(CNY)
            )
            assert net == money.paid_in - money.refunded, (order.id, net, money)


DepositGroupBuyRaces.TestCase.settings = settings(
    max_examples=30, stateful_step_count=40, deadline=None
)
TestDepositGroupBuyRaces = DepositGroupBuyRaces.TestCase
