"""Random lives of orders under every payment method, with the ledger checked after every step.

Payments, captures, voids, refunds (whole or per line), provider answers that decline or never
come, notifications that arrive late, twice, out of order or for money nobody asked for, COD
collections, refusals and remittances, credit draws and repayments, cancellations and time
passing. After every step:

- every posting moves a positive amount of one currency between two different accounts;
- the balances of all accounts sum to zero;
- for every order and every line: paid in = released + commission + refunded + held, nothing
  negative, and a refund never exceeds what was paid in;
- the ledger holds exactly the postings the payments produced (nothing lost, nothing extra);
- a buyer's drawn credit is the principal their credit plans still owe;
- the order's holds are exactly its payments in flight and its open refunds;
- a COD order is never cancelled as unpaid, and an order with a payment in flight is never
  cancelled by the payment timeout;
- a refused command changes nothing.

At the end the provider answers everything still pending and every notification is delivered;
then every cancelled order has all its money back, and the provider's books agree with the
ledger, order by order.
"""

from __future__ import annotations

import functools
from datetime import timedelta

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

from ecommerce_core import Actor, EcommerceCoreError, Money, OrderPolicy, PaymentNotCompleted
from ecommerce_core.adapters.memory import (
    InMemoryCatalog,
    InMemoryCreditLines,
    InMemoryInventory,
    InMemoryLedger,
    InMemoryOrderRepository,
    InMemoryPaymentRepository,
    ManualClock,
    RecordingPublisher,
    ScriptedPaymentGateway,
    SequentialIds,
)
from ecommerce_core.payments import (
    AccountKind,
    CodPayment,
    CreditPayment,
    GatewayPayment,
    PaymentMethod,
    PaymentPolicy,
)
from ecommerce_core.ports import GatewayStatus, Product
from ecommerce_core.services import PaymentService

CNY = "CNY"
PRODUCTS = (
    Product("tea", "m-1", "tea", Money.of("38.00", CNY)),
    Product("pot", "m-1", "pot", Money.of("168.00", CNY)),
    Product("cup", "m-2", "cup", Money.of("25.00", CNY)),
)
SKUS = [p.sku for p in PRODUCTS]
BUYERS = [Actor.buyer("alice"), Actor.buyer("bob")]
MERCHANTS = {"m-1": Actor.merchant("m-1"), "m-2": Actor.merchant("m-2")}
CARRIER = Actor.carrier("SF")
ANYONE = st.sampled_from(
    [*BUYERS, *MERCHANTS.values(), Actor.platform(), CARRIER, Actor.carrier("YTO"), Actor.system()]
)
OUTCOMES = st.sampled_from(
    [GatewayStatus.SUCCEEDED] * 3 + [GatewayStatus.PENDING, GatewayStatus.DECLINED]
)
CENTS = st.integers(-100, 30_000)


def cny(minor: int) -> Money:
    return Money(minor, CNY)


class PaymentLives(RuleBasedStateMachine):
    """Orders paid by the methods in :attr:`METHODS`, driven at random."""

    METHODS: tuple[PaymentMethod, ...] = tuple(PaymentMethod)
    orders = Bundle("orders")

    @initialize()
    def start(self) -> None:
        self.outcome = GatewayStatus.SUCCEEDED
        self.clock = ManualClock()
        self.gateway = ScriptedPaymentGateway(lambda _: self.outcome)
        self.ledger = InMemoryLedger()
        self.records = InMemoryPaymentRepository()
        self.credit = InMemoryCreditLines({b.id: Money.of("400.00", CNY) for b in BUYERS})
        self.repo = InMemoryOrderRepository()
        self.inventory = InMemoryInventory(dict.fromkeys(SKUS, 40))
        self.publisher = RecordingPublisher()
        self.service = PaymentService(
            orders=self.repo,
            inventory=self.inventory,
            catalog=InMemoryCatalog(PRODUCTS),
            payments=self.gateway,
            clock=self.clock,
            ids=SequentialIds(),
            publisher=self.publisher,
            policy=OrderPolicy(max_line_quantity=50),
            ledger=self.ledger,
            payment_records=self.records,
            credit_lines=self.credit,
            payment_policy=PaymentPolicy(cod_limits={CNY: Money.of("300.00", CNY)}),
        )
        self.delivered: list[dict[str, str]] = []
        self.undelivered: list[dict[str, str]] = []
        self.timed_out: set[str] = set()

    # ------------------------------------------------------------------ helpers

    def snapshot(self) -> tuple[object, ...]:
        orders = tuple(
            (o.id, o.state, o.version, o.deadline, o.paused, o.holds, o.payment)
            for o in self.repo.all()
        )
        payments = tuple((p.id, p.state, p.version) for p in self.records.all())
        stock = tuple(self.inventory.available(s) for s in SKUS)
        books = (dict(self.gateway.charged), dict(self.gateway.refunded))
        credit = tuple(self.credit.drawn(b.id) for b in BUYERS)
        return (
            orders,
            payments,
            len(self.ledger),
            stock,
            books,
            credit,
            len(self.publisher.published),
        )

    def attempt(self, action) -> object:
        """Run a command; if it is refused, nothing may have changed."""
        before = self.snapshot()
        try:
            return action()
        except PaymentNotCompleted:
            return None  # a declined or pending payment is recorded: that is a change
        except EcommerceCoreError:
            assert self.snapshot() == before, "a refused command changed something"
            return None

    def order(self, order_id: str):
        return self.repo.get(order_id)

    def merchant_of(self, order_id: str) -> Actor:
        return MERCHANTS[self.order(order_id).merchant_id]

    def gateway_payments(self, order_id: str) -> list[GatewayPayment]:
        return [p for p in self.service.payments_of(order_id) if isinstance(p, GatewayPayment)]

    def pending_keys(self) -> list[str]:
        return self.gateway.pending_keys()

    # ------------------------------------------------------------------ placing and paying

    @rule(
        target=orders,
        buyer=st.sampled_from(BUYERS),
        sku=st.sampled_from(SKUS),
        quantity=st.integers(1, 8),
        data=st.data(),
    )
    def place(self, buyer, sku, quantity, data):
        method = data.draw(st.sampled_from(self.METHODS), label="method")
        order = self.attempt(lambda: self.service.buy_now(buyer, sku, quantity, method))
        return "missing" if order is None else order.id

    @rule(outcome=OUTCOMES)
    def the_provider_answers(self, outcome):
        self.outcome = outcome

    def who(self, data, order_id: str, role: str) -> Actor:
        """The right actor for ``role`` three times in four, anyone otherwise."""
        try:
            order = self.order(order_id)
        except EcommerceCoreError:
            return data.draw(ANYONE, label="actor")
        right = {
            "buyer": Actor.buyer(order.buyer_id),
            "merchant": MERCHANTS[order.merchant_id],
            "carrier": CARRIER,
        }[role]
        return data.draw(st.sampled_from([right, right, right]) | ANYONE, label=role)

    def amount(self, data, whole: Money) -> Money:
        """A share of ``whole`` (a third, a half, all of it) most of the time, junk otherwise."""
        choice = data.draw(st.sampled_from(["third", "half", "all", "junk"]), label="amount")
        if choice == "junk":
            return cny(data.draw(CENTS, label="minor"))
        divisor = {"third": 3, "half": 2, "all": 1}[choice]
        return cny(whole.minor // divisor)

    @rule(order_id=orders, data=st.data(), capture=st.booleans(), key=st.sampled_from(["k1", None]))
    def pay(self, order_id, data, capture, key):
        actor = self.who(data, order_id, "buyer")
        self.attempt(lambda: self.service.pay(order_id, actor, key=key, capture=capture))

    @rule(order_id=orders, data=st.data(), key=st.sampled_from(["c1", "c2", "c3"]))
    def capture(self, order_id, data, key):
        for payment in self.gateway_payments(order_id)[-1:]:
            actor = self.who(data, order_id, "merchant")
            amount = self.amount(data, payment.authorized - payment.captured)
            capture = functools.partial(
                self.service.capture, payment.id, actor, amount=amount, key=key
            )
            self.attempt(capture)

    @rule(order_id=orders, data=st.data())
    def void(self, order_id, data):
        for payment in self.gateway_payments(order_id)[-1:]:
            actor = self.who(data, order_id, "buyer")
            self.attempt(functools.partial(self.service.void, payment.id, actor))

    @rule(
        order_id=orders,
        data=st.data(),
        per_line=st.booleans(),
        line=st.sampled_from(["1", "1", "", "9"]),
        key=st.sampled_from(["r1", "r2", "r3", "r4"]),
    )
    def refund(self, order_id, data, per_line, line, key):
        actor = self.who(data, order_id, "merchant")
        refundable = (
            sum((p.refundable for p in self.service.payments_of(order_id)), cny(0))
            if order_id != "missing"
            else cny(100)
        )
        amount = self.amount(data, refundable)
        if per_line:
            action = lambda: self.service.refund(order_id, actor, key=key, lines={line: amount})  # noqa: E731
        else:
            action = lambda: self.service.refund(order_id, actor, key=key, amount=amount)  # noqa: E731
        self.attempt(action)

    @rule(data=st.data(), succeeded=st.booleans())
    def the_provider_finishes_a_pending_request(self, data, succeeded):
        keys = self.pending_keys()
        if keys:
            key = data.draw(st.sampled_from(keys), label="pending")
            self.undelivered.append(self.gateway.settle_pending(key, succeeded=succeeded))

    @rule(order_id=orders, minor=st.integers(1, 30_000))
    def the_provider_captures_unasked(self, order_id, minor):
        for payment in self.gateway_payments(order_id)[-1:]:
            self.undelivered.append(self.gateway.report_capture(payment.id, cny(minor)))

    @rule(data=st.data())
    def a_notification_arrives(self, data):
        """Deliver one waiting notification: any of them, so out of order."""
        if self.undelivered:
            index = data.draw(st.integers(0, len(self.undelivered) - 1), label="which")
            payload = self.undelivered.pop(index)
            self.attempt(lambda: self.service.handle_notification(payload))
            self.delivered.append(payload)

    @rule(data=st.data())
    def a_notification_arrives_again(self, data):
        """A repeat is a no-op: once the order is reconciled, it changes nothing at all."""
        if self.delivered:
            payload = data.draw(st.sampled_from(self.delivered), label="repeat")
            payment = self.records.get(payload["payment_id"])
            self.service.reconcile(payment.order_id)  # catch up first (a declined refund retried)
            before = self.snapshot()
            outcome = self.service.handle_notification(payload)
            assert outcome.outcome == "repeat"
            assert self.snapshot() == before, "a repeated notification changed something"

    @rule(minor=st.integers(1, 5_000))
    def a_notification_for_an_unknown_payment_is_refused(self, minor):
        payload = self.gateway.notification("captured", "payment-unknown", cny(minor))
        self.attempt(lambda: self.service.handle_notification(payload))

    # ------------------------------------------------------------------ the order's life

    @rule(order_id=orders, data=st.data())
    def ship(self, order_id, data):
        actor = self.who(data, order_id, "merchant")
        self.attempt(
            lambda: self.service.ship(order_id, actor, carrier="SF", tracking_number="SF1")
        )

    @rule(order_id=orders, data=st.data())
    def deliver(self, order_id, data):
        actor = self.who(data, order_id, "carrier")
        self.attempt(lambda: self.service.deliver(order_id, actor))

    @rule(order_id=orders, data=st.data())
    def confirm_receipt(self, order_id, data):
        actor = self.who(data, order_id, "buyer")
        self.attempt(lambda: self.service.confirm_receipt(order_id, actor))

    @rule(order_id=orders, data=st.data())
    def cancel(self, order_id, data):
        actor = self.who(data, order_id, "buyer")
        self.attempt(lambda: self.service.cancel(order_id, actor, "changed my mind"))

    @rule(order_id=orders, steps=st.integers(1, 6))
    def progress(self, order_id, steps):
        """Up to ``steps`` sensible steps for the order in a row, each by the right actor."""
        if order_id == "missing":
            return
        for _ in range(steps):
            if not self.step(order_id):
                return

    def step(self, order_id: str) -> bool:
        order = self.order(order_id)
        buyer, merchant = Actor.buyer(order.buyer_id), MERCHANTS[order.merchant_id]
        steps = {
            "pending_payment": (
                lambda: (
                    self.service.pay_with_credit(order_id, buyer, periods=3)
                    if order.payment_method == "credit"
                    else self.service.pay(order_id, buyer)
                )
            ),
            "awaiting_shipment": lambda: self.service.ship(
                order_id, merchant, carrier="SF", tracking_number="SF1"
            ),
            "shipped": lambda: self.service.deliver(order_id, CARRIER),
            "delivered": lambda: self.service.confirm_receipt(order_id, buyer),
            "awaiting_collection": lambda: self.service.collect_cod(
                order_id, CARRIER, amount=order.total, key="c"
            ),
            "returning": lambda: self.service.cod_returned(order_id, merchant),
            "completed": lambda: (
                self.service.remit_cod(order_id, CARRIER)
                if order.payment_method == "cod"
                else self.service.repay(order_id, buyer, key=f"p{order.version}")
            ),
        }
        step = steps.get(order.state)
        if step is None:
            return False
        version = order.version
        self.attempt(step)
        return self.order(order_id).version != version

    @rule(minutes=st.sampled_from([1, 31, 60 * 24, 60 * 24 * 11]) | st.integers(0, 60 * 24 * 12))
    def time_passes(self, minutes):
        in_flight = {
            o.id for o in self.repo.all() if any(h.startswith("payment:") for h in o.holds)
        }
        self.clock.advance(timedelta(minutes=minutes))
        self.service.expire_due()
        for order_id in in_flight:
            cancellation = self.order(order_id).cancellation
            assert cancellation is None or cancellation.reason != "payment timeout", (
                "an order with a payment in flight was cancelled by the payment timeout"
            )

    # ------------------------------------------------------------------ cash on delivery

    @rule(order_id=orders, data=st.data(), off=st.sampled_from([0, 0, 0, 1, -1]))
    def collect_cod(self, order_id, data, off):
        total = self.order(order_id).total if order_id != "missing" else cny(100)
        actor = self.who(data, order_id, "carrier")
        self.attempt(
            lambda: self.service.collect_cod(order_id, actor, amount=total + cny(off), key="c")
        )

    @rule(order_id=orders, data=st.data())
    def refuse_cod(self, order_id, data):
        actor = self.who(data, order_id, "carrier")
        self.attempt(lambda: self.service.refuse_cod(order_id, actor, reason="not home"))

    @rule(order_id=orders, data=st.data())
    def cod_returned(self, order_id, data):
        actor = self.who(data, order_id, "merchant")
        self.attempt(lambda: self.service.cod_returned(order_id, actor))

    @rule(order_id=orders, data=st.data())
    def remit_cod(self, order_id, data):
        actor = self.who(data, order_id, "carrier")
        self.attempt(lambda: self.service.remit_cod(order_id, actor))

    # ------------------------------------------------------------------ credit

    @rule(order_id=orders, data=st.data(), periods=st.sampled_from([3, 6, 12, 5]))
    def pay_with_credit(self, order_id, data, periods):
        actor = self.who(data, order_id, "buyer")
        self.attempt(lambda: self.service.pay_with_credit(order_id, actor, periods=periods))

    @rule(order_id=orders, data=st.data(), key=st.sampled_from(["p1", "p2", "p3", "p4"]))
    def repay(self, order_id, data, key):
        actor = self.who(data, order_id, "buyer")
        self.attempt(lambda: self.service.repay(order_id, actor, key=key))

    # ------------------------------------------------------------------ invariants

    @invariant()
    def every_posting_balances_and_all_accounts_sum_to_zero(self):
        for posting in self.ledger.all():
            assert posting.amount.is_positive
            assert posting.source != posting.target
            assert posting.amount.currency == CNY
        assert sum(m.minor for m in self.ledger.balances(CNY).values()) == 0

    @invariant()
    def every_order_and_line_balances_and_nothing_is_negative(self):
        for order in self.repo.all():
            money = self.service.money(order.id)
            assert money.balanced, money
            for line in money.lines.values():
                for field in ("paid_in", "held", "released", "commission", "kept", "refunded"):
                    assert not getattr(line, field).is_negative, (order.id, line)
                assert line.refunded <= line.paid_in
                assert not line.refundable.is_negative

    @invariant()
    def the_ledger_holds_exactly_what_the_payments_produced(self):
        produced = {p.key: p for payment in self.records.all() for p in payment.postings}
        stored = {p.key: p for p in self.ledger.all()}
        assert produced == stored

    @invariant()
    def drawn_credit_is_the_principal_still_owed(self):
        owed = {b.id: Money.zero(CNY) for b in BUYERS}
        for payment in self.records.all():
            if isinstance(payment, CreditPayment):
                owed[payment.buyer_id] += payment.principal_owed
        for buyer in BUYERS:
            assert self.credit.drawn(buyer.id) == owed[buyer.id]

    @invariant()
    def holds_match_payments_in_flight_and_open_refunds(self):
        for order in self.repo.all():
            refunds = {
                f"refund:{r.id}"
                for payment in self.service.payments_of(order.id)
                for r in payment.open_refunds
            }
            holds = {h for h in order.holds if h.startswith("refund:")}
            assert holds == (set() if order.is_final else refunds), order.id
            assert (order.deadline is None) or not order.holds

    @invariant()
    def cod_orders_are_never_cancelled_as_unpaid(self):
        for order in self.repo.all():
            if order.payment_method == "cod" and order.cancellation is not None:
                assert order.cancellation.reason != "payment timeout"

    @invariant()
    def money_goes_to_the_right_places(self):
        for order in self.repo.all():
            for payment in self.service.payments_of(order.id):
                for posting in payment.postings:
                    kinds = {posting.source.kind, posting.target.kind}
                    if AccountKind.ESCROW in kinds:
                        assert order.payment_method == "escrow"
                    if AccountKind.CARRIER_COD in kinds or AccountKind.COD_FEE in kinds:
                        assert isinstance(payment, CodPayment)
                    if AccountKind.CREDIT_PROVIDER in kinds:
                        assert isinstance(payment, CreditPayment)

    def teardown(self):
        if not hasattr(self, "service"):
            return
        self.outcome = GatewayStatus.SUCCEEDED
        while self.pending_keys() or self.undelivered:
            for key in self.pending_keys():
                self.undelivered.append(self.gateway.settle_pending(key))
            while self.undelivered:
                self.service.handle_notification(self.undelivered.pop())
        for order in self.repo.all():
            self.service.reconcile(order.id, retry_failed=True)
        for order in self.repo.all():
            money = self.service.money(order.id)
            if order.state == "cancelled":
                assert money.paid_in == money.refunded, f"{order.id} kept money after a cancel"
            through_gateway = [
                p for p in self.service.payments_of(order.id) if isinstance(p, GatewayPayment)
            ]
            captured = sum((p.money().paid_in for p in through_gateway), cny(0))
            refunded = sum((p.money().refunded for p in through_gateway), cny(0))
            assert self.gateway.charged.get(order.id, cny(0)) == captured, order.id
            assert self.gateway.refunded.get(order.id, cny(0)) == refunded, order.id


STATEFUL = settings(max_examples=25, stateful_step_count=35, deadline=None)


class OnlineLives(PaymentLives):
    METHODS = (PaymentMethod.ONLINE,)


class EscrowLives(PaymentLives):
    METHODS = (PaymentMethod.ESCROW,)


class CodLives(PaymentLives):
    METHODS = (PaymentMethod.COD,)


class CreditLives(PaymentLives):
    METHODS = (PaymentMethod.CREDIT,)


OnlineLives.TestCase.settings = STATEFUL
EscrowLives.TestCase.settings = STATEFUL
CodLives.TestCase.settings = STATEFUL
CreditLives.TestCase.settings = STATEFUL
PaymentLives.TestCase.settings = settings(max_examples=40, stateful_step_count=45, deadline=None)

TestOnlinePaymentLives = OnlineLives.TestCase
TestEscrowPaymentLives = EscrowLives.TestCase
TestCodPaymentLives = CodLives.TestCase
TestCreditPaymentLives = CreditLives.TestCase
TestAllFourMethodsMixed = PaymentLives.TestCase
