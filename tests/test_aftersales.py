"""After-sales on its own: eligibility, windows, refund amounts, freight, every process."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecommerce_core import (
    Actor,
    AfterSalesItem,
    AfterSalesPolicy,
    AlreadyRefunded,
    DefinitionError,
    Forbidden,
    FreightRefund,
    InvalidInput,
    Money,
    NotFound,
    Order,
    OrderAfterSales,
    OrderLine,
    OrderPolicy,
    QuantityExceeded,
    RefundInstruction,
    RuleViolation,
    Shipment,
    ShipmentLine,
    TrackingEvent,
    TransitionNotAllowed,
    WindowClosed,
)
from ecommerce_core.aftersales import (
    EXCHANGE_PROCESS,
    RETURN_AND_REFUND_PROCESS,
    AfterSalesProgressed,
    AfterSalesRequested,
    RefundApproved,
    RefundCompleted,
    unit_shares,
)
from ecommerce_core.delivery import FulfilmentStatus, ShipmentPurpose, fulfilment_status

NOW = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
DAY = timedelta(days=1)
POLICY = AfterSalesPolicy(no_reason_excluded_categories={"fresh"})
ALICE, BOB = Actor.buyer("alice"), Actor.buyer("bob")
SHOP, OTHER_SHOP = Actor.merchant("m-1"), Actor.merchant("m-2")
PLATFORM, SYSTEM = Actor.platform(), Actor.system()


def cny(amount: str) -> Money:
    return Money.of(amount, "CNY")


def paid_order(fee: str = "8.00", *, pay: bool = True) -> Order:
    """Three teas at 10.00 with 0.01 off (29.99), two cups at 25.00, one fresh fruit at 5.00."""
    order = Order.place(
        order_id="o-1",
        buyer_id="alice",
        merchant_id="m-1",
        lines=[
            OrderLine("1", "tea", 3, cny("10.00"), discount=cny("0.01"), category="tea"),
            OrderLine("2", "cup", 2, cny("25.00"), category="teaware"),
            OrderLine("3", "fruit", 1, cny("5.00"), category="fresh"),
        ],
        now=NOW,
        policy=OrderPolicy(),
        shipping_fee=cny(fee),
    )
    if pay:
        order.pay(ALICE, amount=order.total, reference="tx-1", now=NOW)
    return order


def delivered(order: Order, *batches: tuple[dict[str, int], datetime]) -> FulfilmentStatus:
    """Parcels of ``{line_id: units}``, each delivered at its time."""
    parcels = []
    for number, (units, at) in enumerate(batches, 1):
        parcel = Shipment.create(
            shipment_id=f"s-{number}",
            order=order,
            sequence=number,
            actor=SHOP,
            carrier="SF",
            tracking_number=f"SF{number}",
            lines=[ShipmentLine(line, quantity) for line, quantity in units.items()],
            now=NOW,
        )
        parcel.record(
            TrackingEvent(f"e-{number}", "SF", f"SF{number}", "delivered", at),
            actor=Actor.carrier("SF"),
            now=at,
        )
        parcels.append(parcel)
    return fulfilment_status(order, parcels)


EVERYTHING = ({"1": 3, "2": 2, "3": 1}, NOW)


class World:
    """One order, its after-sales record and where its units are, for the domain commands."""

    def __init__(self, *batches, fee: str = "8.00", policy: AfterSalesPolicy = POLICY) -> None:
        self.order = paid_order(fee)
        self.status = (
            delivered(self.order, *batches) if batches else fulfilment_status(self.order, [])
        )
        self.record = OrderAfterSales.open(self.order)
        self.policy = policy
        self.numbers = iter(range(1, 100))

    def ask(self, kind, reason, *items, now=NOW + DAY, actor=ALICE, request_id=None):
        return self.record.request_after_sales(
            actor,
            request_id=request_id or f"r-{next(self.numbers)}",
            kind=kind,
            reason=reason,
            items=[AfterSalesItem(line, units) for line, units in items],
            order=self.order,
            fulfilment=self.status,
            now=now,
            policy=self.policy,
        )

    def approve(self, request_id, actor=SHOP):
        return self.record.approve(
            actor, request_id, fulfilment=self.status, now=NOW + 2 * DAY, policy=self.policy
        )

    def accept(self, request_id, *, restock=True):
        return self.record.accept_return(
            SHOP,
            request_id,
            restock=restock,
            fulfilment=self.status,
            now=NOW + 5 * DAY,
            policy=self.policy,
        )

    def arbitrate(self, request_id, *, for_buyer, actor=PLATFORM):
        return self.record.arbitrate(
            actor,
            request_id,
            for_buyer=for_buyer,
            reason="ruled",
            fulfilment=self.status,
            now=NOW + 6 * DAY,
            policy=self.policy,
        )

    def returned(self, kind="return_and_refund", reason="defective", *items):
        request = self.ask(kind, reason, *(items or [("1", 1)]))
        self.approve(request.request_id)
        self.record.ship_back(
            ALICE, request.request_id, carrier="YTO", tracking_number="Y1", now=NOW + 3 * DAY
        )
        return self.record.receive_return(SHOP, request.request_id, now=NOW + 4 * DAY)

    def snapshot(self):
        return {f.name: getattr(self.record, f.name) for f in attrs.fields(OrderAfterSales)}


class TestThePolicy:
    def test_the_defaults_follow_the_seven_day_rule_of_the_law(self):
        policy = AfterSalesPolicy()
        assert policy.no_reason_window == 7 * DAY
        assert {"custom-made", "fresh", "digital", "newspaper"} == (
            policy.no_reason_excluded_categories
        )
        assert policy.freight_refund is FreightRefund.MERCHANT_FAULT

    def test_a_window_that_is_not_positive_and_blank_categories_are_all_reported(self):
        with pytest.raises(DefinitionError) as refused:
            AfterSalesPolicy(no_reason_window=timedelta(0), no_reason_excluded_categories={" "})
        assert len(refused.value.problems) == 2

    def test_an_unknown_freight_rule_is_refused(self):
        with pytest.raises(DefinitionError, match="freight_refund is 'sometimes'"):
            AfterSalesPolicy(freight_refund="sometimes")


class TestTheProcesses:
    def test_an_exchange_never_refunds(self):
        assert "refund_approved" not in EXCHANGE_PROCESS.states
        assert EXCHANGE_PROCESS.final_states == {"exchanged", "withdrawn", "closed"}

    def test_a_ruling_for_the_buyer_continues_where_the_goods_are(self):
        world = World(EVERYTHING)
        waiting = world.ask("return_and_refund", "defective", ("1", 1))
        goods_back = attrs.evolve(waiting, return_received_at=NOW)
        process = RETURN_AND_REFUND_PROCESS
        assert process.target("in_arbitration", "rule_for_buyer", waiting) == "awaiting_return"
        assert process.target("in_arbitration", "rule_for_buyer", goods_back) == "refund_approved"


class TestAsking:
    def test_a_refund_for_units_not_received_is_asked_and_recorded(self):
        world = World()
        request = world.ask("refund_only", "not_received", ("1", 2))
        assert (request.state, request.kind.value, request.about_received_goods) == (
            "requested",
            "refund_only",
            False,
        )
        assert world.record.version == 1
        (asked,) = world.record.collect_events()
        assert isinstance(asked, AfterSalesRequested)
        assert (asked.aggregate_id, asked.order_id, asked.items) == (
            "o-1/after-sales",
            "o-1",
            (AfterSalesItem("1", 2),),
        )

    def test_a_return_of_more_than_was_delivered_is_refused_and_changes_nothing(self):
        world = World(({"1": 2}, NOW))
        before = world.snapshot()
        with pytest.raises(QuantityExceeded) as refused:
            world.ask("return_and_refund", "defective", ("1", 3))
        assert (refused.value.line_id, refused.value.requested, refused.value.available) == (
            "1",
            3,
            2,
        )
        assert refused.value.state == "awaiting_shipment"
        assert world.snapshot() == before

    def test_units_other_requests_claim_are_not_available_until_released(self):
        world = World(EVERYTHING)
        first = world.ask("return_and_refund", "defective", ("2", 2))
        with pytest.raises(QuantityExceeded):
            world.ask("exchange", "defective", ("2", 1))
        world.record.withdraw(ALICE, first.request_id, now=NOW + DAY)
        world.ask("exchange", "defective", ("2", 1))

    def test_a_refund_for_units_not_received_is_bounded_by_the_units_not_received(self):
        world = World(({"1": 2}, NOW))
        with pytest.raises(QuantityExceeded, match="not delivered"):
            world.ask("refund_only", "not_received", ("1", 2))
        world.ask("refund_only", "not_received", ("1", 1))

    def test_a_refund_for_units_already_refunded_is_refused_as_already_refunded(self):
        world = World()
        request = world.ask("refund_only", "not_received", ("1", 3))
        world.approve(request.request_id)
        before = world.snapshot()
        with pytest.raises(AlreadyRefunded) as refused:
            world.ask("refund_only", "no_reason", ("1", 1))
        assert refused.value.available == 0
        assert world.snapshot() == before

    def test_a_no_reason_return_after_the_window_is_refused_with_when_it_closed(self):
        world = World(EVERYTHING)
        before = world.snapshot()
        with pytest.raises(WindowClosed) as refused:
            world.ask("return_and_refund", "no_reason", ("1", 1), now=NOW + 7 * DAY + 1 * DAY)
        assert refused.value.closed_at == NOW + 7 * DAY
        assert world.snapshot() == before
        world.ask("return_and_refund", "no_reason", ("1", 1), now=NOW + 7 * DAY)

    def test_a_quality_return_is_not_bound_to_the_no_reason_window(self):
        world = World(EVERYTHING)
        request = world.ask("return_and_refund", "defective", ("1", 1), now=NOW + 20 * DAY)
        assert request.state == "requested"

    def test_the_window_counts_earlier_claims_against_the_oldest_units(self):
        world = World(({"1": 2}, NOW), ({"1": 1}, NOW + 6 * DAY))
        late = NOW + 9 * DAY  # the first two units are out of their window, the last is not
        world.ask("return_and_refund", "defective", ("1", 2), now=late)
        world.ask("return_and_refund", "no_reason", ("1", 1), now=late)

    def test_the_window_refuses_units_only_old_deliveries_could_cover(self):
        world = World(({"1": 1}, NOW), ({"1": 1}, NOW + DAY), ({"1": 1}, NOW + 6 * DAY))
        with pytest.raises(WindowClosed, match="1 delivered within") as refused:
            world.ask("return_and_refund", "no_reason", ("1", 2), now=NOW + 9 * DAY)
        assert refused.value.closed_at == NOW + 8 * DAY

    def test_an_excluded_category_may_not_be_returned_without_a_reason(self):
        world = World(EVERYTHING)
        with pytest.raises(RuleViolation, match="'fresh' may not be returned"):
            world.ask("return_and_refund", "no_reason", ("3", 1))
        world.ask("return_and_refund", "damaged", ("3", 1))

    def test_a_closed_order_is_past_after_sales(self):
        world = World(EVERYTHING)
        world.order.state = "closed"
        with pytest.raises(WindowClosed, match="after-sales is over"):
            world.ask("return_and_refund", "defective", ("1", 1))

    def test_an_unpaid_or_cancelled_order_has_nothing_to_refund(self):
        world = World()
        world.order = paid_order(pay=False)
        with pytest.raises(RuleViolation, match="not paid"):
            world.ask("refund_only", "no_reason", ("1", 1))
        world.order.cancel(ALICE, reason="changed my mind", now=NOW)
        with pytest.raises(RuleViolation, match="cancelling"):
            world.ask("refund_only", "no_reason", ("1", 1))

    @pytest.mark.parametrize(
        ("kind", "reason", "items", "match"),
        [
            ("swap", "defective", [("1", 1)], "kind"),
            ("exchange", "bored", [("1", 1)], "reason"),
            ("return_and_refund", "not_received", [("1", 1)], "never received"),
            ("exchange", "not_received", [("1", 1)], "never received"),
            ("refund_only", "no_reason", [], "at least one line"),
            ("refund_only", "no_reason", [("9", 1)], "no such line"),
            ("refund_only", "no_reason", [("1", 1), ("1", 1)], "twice"),
        ],
    )
    def test_malformed_requests_are_refused(self, kind, reason, items, match):
        world = World(EVERYTHING)
        with pytest.raises(InvalidInput, match=match):
            world.ask(kind, reason, *items)
        assert world.record.requests == ()

    def test_other_malformed_input_is_refused(self):
        world = World(EVERYTHING)
        world.ask("refund_only", "defective", ("1", 1), request_id="r-1")
        with pytest.raises(InvalidInput, match="already used"):
            world.ask("refund_only", "defective", ("2", 1), request_id="r-1")
        with pytest.raises(InvalidInput):
            AfterSalesItem("1", 0)
        with pytest.raises(InvalidInput, match="description"):
            world.record.request_after_sales(
                ALICE,
                request_id="r-2",
                kind="refund_only",
                reason="defective",
                items=[AfterSalesItem("2", 1)],
                order=world.order,
                fulfilment=world.status,
                now=NOW,
                policy=POLICY,
                description="x" * 1001,
            )
        with pytest.raises(InvalidInput, match="each item"):
            world.record.request_after_sales(
                ALICE,
                request_id="r-3",
                kind="refund_only",
                reason="defective",
                items=[("2", 1)],
                order=world.order,
                fulfilment=world.status,
                now=NOW,
                policy=POLICY,
            )

    def test_a_record_is_for_one_order_only(self):
        world = World(EVERYTHING)
        world.order = attrs.evolve(world.order, id="o-2")
        with pytest.raises(InvalidInput, match="'o-1'"):
            world.ask("refund_only", "defective", ("1", 1))

    @pytest.mark.parametrize("actor", [BOB, SHOP, PLATFORM, "alice"])
    def test_only_the_orders_buyer_asks(self, actor):
        world = World(EVERYTHING)
        with pytest.raises((Forbidden, InvalidInput)):
            world.ask("refund_only", "defective", ("1", 1), actor=actor)


class TestRefundAmounts:
    def test_an_approved_refund_gives_back_the_units_shares_of_the_line_amount(self):
        world = World()
        request = world.ask("refund_only", "no_reason", ("1", 2), ("2", 1))
        world.record.collect_events()
        approved = world.approve(request.request_id)
        assert approved.state == "refund_approved"
        assert [(ln.line_id, ln.quantity, str(ln.amount)) for ln in approved.refund.lines] == [
            ("1", 2, "20.00 CNY"),
            ("2", 1, "25.00 CNY"),
        ]
        (event,) = world.record.collect_events()
        assert isinstance(event, RefundApproved)
        assert (event.total, event.freight, event.order_fully_refunded) == (
            cny("45.00"),
            cny("0.00"),
            False,
        )

    def test_refunds_of_a_line_in_parts_add_up_to_its_amount_exactly(self):
        world = World(EVERYTHING)
        amounts = []
        for _ in range(3):
            request = world.ask("refund_only", "defective", ("1", 1))
            amounts.append(world.approve(request.request_id).refund.lines[0].amount)
        assert amounts == [cny("10.00"), cny("10.00"), cny("9.99")]
        assert world.record.refunded_amount("1") == world.order.lines[0].amount
        assert world.record.refunded_units("1") == 3

    @given(
        quantity=st.integers(1, 40),
        price=st.integers(0, 10**6),
        off=st.integers(0, 100),
        cuts=st.lists(st.integers(1, 40), max_size=12),
    )
    def test_any_split_of_a_line_refunds_consecutive_shares_never_more_than_paid(
        self, quantity, price, off, cuts
    ):
        list_amount = price * quantity
        line = OrderLine(
            "1",
            "tea",
            quantity,
            Money(price, "CNY"),
            discount=Money(list_amount * off // 100, "CNY"),
        )
        order = Order.place(
            order_id="o-1",
            buyer_id="alice",
            merchant_id="m-1",
            lines=[line],
            now=NOW,
            policy=OrderPolicy(),
        )
        order.pay(ALICE, amount=order.total, reference="tx", now=NOW)
        record = OrderAfterSales.open(order)
        status = fulfilment_status(order, [])
        shares, done = unit_shares(line), 0
        for number, cut in enumerate(cuts):
            units = min(cut, quantity - done)
            if not units:
                break
            record.request_after_sales(
                ALICE,
                request_id=f"r-{number}",
                kind="refund_only",
                reason="not_received",
                items=[AfterSalesItem("1", units)],
                order=order,
                fulfilment=status,
                now=NOW,
                policy=POLICY,
            )
            plan = record.approve(
                Actor.merchant("m-1"), f"r-{number}", fulfilment=status, now=NOW, policy=POLICY
            ).refund
            assert plan.lines[0].amount == sum(shares[done : done + units], Money.zero("CNY"))
            done += units
            assert record.refunded_amount("1") <= line.amount
        assert max(shares).minor - min(shares).minor <= 1
        assert sum(shares, Money.zero("CNY")) == line.amount
        if done == quantity:
            assert record.refunded_amount("1") == line.amount

    def test_freight_goes_back_with_the_last_unit_when_the_merchant_is_at_fault(self):
        world = World(EVERYTHING)
        first = world.ask("refund_only", "defective", ("1", 3), ("2", 2))
        assert world.approve(first.request_id).refund.freight == cny("0.00")
        last = world.ask("refund_only", "damaged", ("3", 1))
        plan = world.approve(last.request_id).refund
        assert (plan.freight, plan.total) == (cny("8.00"), cny("13.00"))
        assert world.record.freight_refunded
        assert world.record.refunded_total == world.order.total

    def test_freight_stays_with_a_no_reason_return_of_shipped_goods(self):
        world = World(EVERYTHING, policy=AfterSalesPolicy())
        request = world.ask("refund_only", "other", ("1", 3), ("2", 2), ("3", 1))
        assert world.approve(request.request_id).refund.freight == cny("0.00")

    def test_freight_goes_back_when_nothing_was_ever_shipped(self):
        world = World()
        request = world.ask("refund_only", "no_reason", ("1", 3), ("2", 2), ("3", 1))
        plan = world.approve(request.request_id).refund
        assert plan.freight == cny("8.00")
        assert plan.total == world.order.total

    @pytest.mark.parametrize(
        ("rule", "freight"), [(FreightRefund.ALWAYS, "8.00"), (FreightRefund.NEVER, "0.00")]
    )
    def test_the_policy_may_always_or_never_give_the_freight_back(self, rule, freight):
        world = World(EVERYTHING, policy=AfterSalesPolicy(freight_refund=rule))
        request = world.ask("refund_only", "other", ("1", 3), ("2", 2), ("3", 1))
        assert world.approve(request.request_id).refund.freight == cny(freight)

    def test_free_shipping_gives_no_freight_back(self):
        world = World(fee="0.00")
        request = world.ask("refund_only", "not_received", ("1", 3), ("2", 2), ("3", 1))
        assert world.approve(request.request_id).refund.freight == cny("0.00")

    def test_the_instruction_for_the_payment_side_carries_a_stable_idempotency_key(self):
        world = World()
        request = world.ask("refund_only", "no_reason", ("1", 1))
        with pytest.raises(RuleViolation, match="no refund"):
            RefundInstruction.for_request("o-1", request)
        approved = world.approve(request.request_id)
        instruction = RefundInstruction.for_request("o-1", approved)
        assert instruction == RefundInstruction.for_request("o-1", approved)
        assert instruction.idempotency_key == "o-1:after-sales:r-1:refund"
        assert instruction.total == cny("10.00")


class TestRestocking:
    def test_units_refunded_before_shipping_go_back_into_stock(self):
        world = World()
        request = world.ask("refund_only", "no_reason", ("1", 2))
        assert world.approve(request.request_id).restock == (AfterSalesItem("1", 2),)

    def test_units_lost_on_the_way_do_not_go_back_into_stock(self):
        order = paid_order()
        parcel = Shipment.create(
            shipment_id="s-1",
            order=order,
            sequence=1,
            actor=SHOP,
            carrier="SF",
            tracking_number="SF1",
            lines=[ShipmentLine("1", 2)],
            now=NOW,
        )
        parcel.record(
            TrackingEvent("e-1", "SF", "SF1", "lost", NOW), actor=Actor.carrier("SF"), now=NOW
        )
        world = World()
        world.status = fulfilment_status(order, [parcel])
        first = world.ask("refund_only", "not_received", ("1", 1))
        second = world.ask("refund_only", "not_received", ("1", 2))
        assert world.approve(first.request_id).restock == (AfterSalesItem("1", 1),)
        assert world.approve(second.request_id).restock == ()

    def test_a_reshipment_does_not_count_as_units_sent_from_the_orders_stock(self):
        order = paid_order()
        again = Shipment.create(
            shipment_id="s-2",
            order=order,
            sequence=2,
            actor=SHOP,
            carrier="SF",
            tracking_number="SF2",
            lines=[ShipmentLine("1", 3)],
            now=NOW,
            purpose=ShipmentPurpose.RESHIPMENT,
        )
        world = World()
        world.status = fulfilment_status(order, [again])
        assert world.status.line("1").original == 0

    def test_returned_goods_fit_to_sell_go_back_into_stock(self):
        world = World(EVERYTHING)
        kept = world.returned("return_and_refund", "defective", ("1", 1))
        assert world.accept(kept.request_id, restock=False).restock == ()
        back = world.returned("return_and_refund", "defective", ("1", 2))
        assert world.accept(back.request_id).restock == (AfterSalesItem("1", 2),)


class TestTheReturnProcess:
    def test_a_return_goes_back_inspected_and_refunded_step_by_step(self):
        world = World(EVERYTHING)
        request = world.ask("return_and_refund", "defective", ("2", 1))
        steps = [
            world.approve(request.request_id),
            world.record.ship_back(
                ALICE, request.request_id, carrier="YTO", tracking_number="Y1", now=NOW + 3 * DAY
            ),
            world.record.receive_return(SHOP, request.request_id, now=NOW + 4 * DAY),
            world.accept(request.request_id),
            world.record.complete_refund(
                SYSTEM, request.request_id, reference="rf-1", now=NOW + 5 * DAY
            ),
        ]
        assert [s.state for s in steps] == [
            "awaiting_return",
            "returning",
            "received",
            "refund_approved",
            "refunded",
        ]
        done = steps[-1]
        assert (done.return_parcel.tracking_number, done.return_received_at) == (
            "Y1",
            NOW + 4 * DAY,
        )
        assert (done.refund_reference, done.refund.total) == ("rf-1", cny("25.00"))
        events = world.record.collect_events()
        assert [type(e) for e in events] == [
            AfterSalesRequested,
            AfterSalesProgressed,
            AfterSalesProgressed,
            AfterSalesProgressed,
            RefundApproved,
            RefundCompleted,
        ]
        assert [e.version for e in events] == [1, 2, 3, 4, 5, 6]
        assert world.record.returned_units("2") == 1

    def test_a_rejection_after_inspection_can_be_disputed_and_ruled_for_the_buyer(self):
        world = World(EVERYTHING)
        request = world.returned()
        world.record.reject(SHOP, request.request_id, reason="worn", now=NOW + 5 * DAY)
        disputed = world.record.dispute(
            ALICE, request.request_id, reason="it came broken", now=NOW + 5 * DAY
        )
        assert (disputed.rejection.reason, disputed.dispute.reason) == ("worn", "it came broken")
        ruled = world.arbitrate(request.request_id, for_buyer=True)
        assert (ruled.state, ruled.ruling.by) == ("refund_approved", "platform:operator")
        assert ruled.refund.total == cny("10.00")

    def test_a_rejected_request_ruled_for_the_buyer_waits_for_the_goods(self):
        world = World(EVERYTHING)
        request = world.ask("return_and_refund", "defective", ("1", 1))
        world.record.reject(SHOP, request.request_id, reason="no", now=NOW + DAY)
        world.record.dispute(ALICE, request.request_id, reason="yes", now=NOW + DAY)
        assert world.arbitrate(request.request_id, for_buyer=True).state == "awaiting_return"

    def test_a_ruling_for_the_merchant_closes_it_and_frees_the_units(self):
        world = World(EVERYTHING)
        request = world.ask("return_and_refund", "defective", ("2", 2))
        world.record.reject(SHOP, request.request_id, reason="no", now=NOW + DAY)
        world.record.dispute(ALICE, request.request_id, reason="yes", now=NOW + DAY)
        assert world.arbitrate(request.request_id, for_buyer=False).state == "closed"
        assert world.record.claimed_units("2", received=True) == 0
        assert world.record.returned_units("2") == 0

    def test_a_rejected_request_may_be_closed_without_a_dispute(self):
        world = World(EVERYTHING)
        request = world.ask("refund_only", "other", ("1", 1))
        world.record.reject(SHOP, request.request_id, reason="no", now=NOW + DAY)
        assert not world.record.request(request.request_id).is_open
        assert world.record.close(ALICE, request.request_id, now=NOW + DAY).state == "closed"

    def test_the_buyer_may_withdraw_until_the_goods_go_back(self):
        world = World(EVERYTHING)
        request = world.ask("return_and_refund", "defective", ("1", 1))
        world.approve(request.request_id)
        assert world.record.withdraw(ALICE, request.request_id, now=NOW + DAY).state == "withdrawn"
        sent = world.returned()
        before = world.snapshot()
        with pytest.raises(TransitionNotAllowed):
            world.record.withdraw(ALICE, sent.request_id, now=NOW + DAY)
        assert world.snapshot() == before

    def test_an_exchange_ends_with_the_replacement_and_frees_its_units(self):
        world = World(EVERYTHING)
        request = world.returned("exchange", "defective", ("2", 1))
        assert world.accept(request.request_id).state == "replacing"
        sent = world.record.send_replacement(
            SHOP, request.request_id, shipment_id="s-9", now=NOW + 6 * DAY
        )
        assert (sent.state, sent.replacement_shipment_id, sent.refund) == (
            "replacement_shipped",
            "s-9",
            None,
        )
        assert world.record.claimed_units("2", received=True) == 1
        done = world.record.complete_exchange(ALICE, request.request_id, now=NOW + 8 * DAY)
        assert done.state == "exchanged"
        assert world.record.claimed_units("2", received=True) == 0
        assert world.record.returned_units("2") == 0
        world.ask("return_and_refund", "defective", ("2", 2), now=NOW + 9 * DAY)
        assert world.record.returned_units("2") == 2
        assert world.record.refunded_total == cny("0.00")


class TestWhoMayDoWhat:
    @pytest.mark.parametrize(
        ("command", "actor"),
        [
            ("approve", ALICE),
            ("approve", OTHER_SHOP),
            ("approve", PLATFORM),
            ("reject", BOB),
            ("withdraw", SHOP),
            ("withdraw", BOB),
            ("close", SHOP),
            ("rule", SHOP),
            ("rule", ALICE),
            ("refund", ALICE),
            ("refund", SHOP),
        ],
    )
    def test_a_command_by_the_wrong_actor_is_forbidden_and_changes_nothing(self, command, actor):
        world = World(EVERYTHING)
        request = world.ask("refund_only", "defective", ("1", 1))
        before = world.snapshot()
        run = {
            "approve": lambda: world.approve(request.request_id, actor),
            "reject": lambda: world.record.reject(actor, request.request_id, reason="x", now=NOW),
            "withdraw": lambda: world.record.withdraw(actor, request.request_id, now=NOW),
            "close": lambda: world.record.close(actor, request.request_id, now=NOW),
            "rule": lambda: world.arbitrate(request.request_id, for_buyer=True, actor=actor),
            "refund": lambda: world.record.complete_refund(
                actor, request.request_id, reference="r", now=NOW
            ),
        }
        with pytest.raises(Forbidden):
            run[command]()
        assert world.snapshot() == before

    def test_a_command_the_state_does_not_allow_is_refused_and_changes_nothing(self):
        world = World(EVERYTHING)
        request = world.ask("refund_only", "defective", ("1", 1))
        world.approve(request.request_id)
        before = world.snapshot()
        with pytest.raises(TransitionNotAllowed) as refused:
            world.approve(request.request_id)
        assert refused.value.allowed == ("complete_refund",)
        with pytest.raises(TransitionNotAllowed):
            world.record.ensure_can("approve", SHOP, request.request_id)
        assert world.snapshot() == before

    def test_an_unknown_request_is_not_found(self):
        world = World(EVERYTHING)
        with pytest.raises(NotFound):
            world.approve("r-404")

    def test_empty_reasons_and_references_and_non_bool_rulings_are_refused(self):
        world = World(EVERYTHING)
        request = world.ask("refund_only", "defective", ("1", 1))
        with pytest.raises(InvalidInput):
            world.record.reject(SHOP, request.request_id, reason=" ", now=NOW)
        with pytest.raises(InvalidInput):
            world.record.arbitrate(
                PLATFORM,
                request.request_id,
                for_buyer="yes",
                reason="x",
                fulfilment=world.status,
                now=NOW,
                policy=POLICY,
            )
        world.approve(request.request_id)
        with pytest.raises(InvalidInput):
            world.record.complete_refund(SYSTEM, request.request_id, reference="", now=NOW)
        assert world.record.request(request.request_id).state == "refund_approved"
