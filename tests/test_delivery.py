"""Delivery on its own: options at checkout, the shipment process, carrier tracking, facts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecommerce_core import (
    Actor,
    CurrencyMismatch,
    DeliveryOption,
    DeliveryOptionUnavailable,
    Forbidden,
    IdempotencyConflict,
    InvalidInput,
    Money,
    Order,
    OrderLine,
    OrderPolicy,
    Shipment,
    ShipmentLine,
    TrackingEvent,
    TrackingOutcome,
    TrackingStatus,
    choose_delivery_option,
)
from ecommerce_core.delivery import (
    SHIPMENT,
    SHIPMENT_PROCESS,
    SHIPMENT_PROGRESS,
    TRACKING_CLOCK_SKEW,
    ShipmentCreated,
    ShipmentPurpose,
    ShipmentReceiptConfirmed,
    TrackingEventRecorded,
    fulfilment_status,
)

NOW = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
MERCHANT = Actor.merchant("m-1")
SF = Actor.carrier("SF")


def cny(amount: str) -> Money:
    return Money.of(amount, "CNY")


SF_STD = DeliveryOption("sf-std", "SF", "standard", cny("12.00"), 2, cod_supported=True)
SF_EXP = DeliveryOption("sf-exp", "SF", "express", cny("22.00"), 1)


def paid_order(order_id: str = "o-1", tea: int = 3, cups: int = 2) -> Order:
    order = Order.place(
        order_id=order_id,
        buyer_id="alice",
        merchant_id="m-1",
        lines=[
            OrderLine("1", "tea", tea, cny("10.00")),
            OrderLine("2", "cup", cups, cny("25.00")),
        ],
        now=NOW,
        policy=OrderPolicy(),
    )
    order.pay(Actor.buyer("alice"), amount=order.total, reference="tx", now=NOW)
    return order


def shipment(
    order: Order | None = None,
    lines: tuple[ShipmentLine, ...] = (ShipmentLine("1", 2),),
    *,
    shipment_id: str = "s-1",
    sequence: int = 1,
    tracking: str = "SF1",
    purpose: ShipmentPurpose = ShipmentPurpose.ORIGINAL,
) -> Shipment:
    return Shipment.create(
        shipment_id=shipment_id,
        order=order or paid_order(),
        sequence=sequence,
        actor=MERCHANT,
        carrier="SF",
        tracking_number=tracking,
        lines=lines,
        now=NOW,
        purpose=purpose,
    )


def event(status: str, minutes: int, event_id: str | None = None, tracking: str = "SF1"):
    return TrackingEvent(
        event_id or f"{status}@{minutes}", "SF", tracking, status, NOW + timedelta(minutes=minutes)
    )


LATER = NOW + timedelta(days=1)


def record(parcel: Shipment, *events: TrackingEvent) -> list[TrackingOutcome]:
    return [parcel.record(e, actor=SF, now=LATER) for e in events]


def state_of(parcel: Shipment) -> dict[str, object]:
    return {f.name: getattr(parcel, f.name) for f in attrs.fields(Shipment)}


class TestDeliveryOptions:
    def test_an_option_names_its_carrier_service_fee_days_cod_and_method(self):
        pickup = DeliveryOption("shop", "m-1-shop", "pickup", cny("0.00"), 0, method="pickup")
        assert (pickup.method.value, pickup.cod_supported, pickup.fee) == (
            "pickup",
            False,
            cny("0.00"),
        )

    @pytest.mark.parametrize(
        "changes",
        [
            {"option_id": ""},
            {"carrier": " "},
            {"fee": cny("-1.00")},
            {"fee": 12},
            {"estimated_days": -1},
            {"estimated_days": 1.5},
        ],
    )
    def test_a_malformed_option_is_refused(self, changes):
        with pytest.raises(InvalidInput):
            attrs.evolve(SF_STD, **changes)

    def test_an_unknown_method_is_refused(self):
        with pytest.raises(InvalidInput, match="teleport") as refused:
            attrs.evolve(SF_STD, method="teleport")
        assert refused.value.field == "method"

    def test_choosing_an_offered_option_by_id_returns_it_and_its_fee(self):
        chosen = choose_delivery_option([SF_STD, SF_EXP], "sf-exp", currency="CNY")
        assert chosen is SF_EXP
        assert chosen.fee == cny("22.00")

    def test_choosing_the_option_the_buyer_saw_works_while_its_terms_hold(self):
        assert choose_delivery_option([SF_STD], attrs.evolve(SF_STD), currency="CNY") == SF_STD

    def test_an_option_not_offered_is_refused_with_what_is_offered(self):
        with pytest.raises(DeliveryOptionUnavailable) as refused:
            choose_delivery_option([SF_STD, SF_EXP], "ems", currency="CNY")
        assert refused.value.option_id == "ems"
        assert refused.value.offered == ("sf-std", "sf-exp")
        assert "not offered" in str(refused.value)

    def test_an_option_withdrawn_since_the_buyer_saw_it_is_refused(self):
        with pytest.raises(DeliveryOptionUnavailable) as refused:
            choose_delivery_option([SF_STD], SF_EXP, currency="CNY")
        assert refused.value.offered == ("sf-std",)

    def test_an_option_repriced_since_the_buyer_saw_it_is_refused_naming_the_change(self):
        repriced = attrs.evolve(SF_STD, fee=cny("15.00"))
        with pytest.raises(DeliveryOptionUnavailable, match=r"fee 12\.00 CNY -> 15\.00 CNY"):
            choose_delivery_option([repriced], SF_STD, currency="CNY")

    def test_nothing_offered_refuses_every_choice(self):
        with pytest.raises(DeliveryOptionUnavailable, match="offered now: none"):
            choose_delivery_option([], "sf-std", currency="CNY")

    def test_cash_on_delivery_needs_an_option_that_collects_it(self):
        offered = [SF_STD, SF_EXP]
        assert choose_delivery_option(offered, "sf-std", currency="CNY", cash_on_delivery=True)
        with pytest.raises(DeliveryOptionUnavailable, match="cash on delivery"):
            choose_delivery_option(offered, "sf-exp", currency="CNY", cash_on_delivery=True)

    def test_a_fee_in_another_currency_than_the_order_is_refused(self):
        with pytest.raises(CurrencyMismatch):
            choose_delivery_option([SF_STD], "sf-std", currency="USD")

    @pytest.mark.parametrize("chosen", ["", None, 3])
    def test_a_choice_that_is_neither_an_id_nor_an_option_is_refused(self, chosen):
        with pytest.raises(InvalidInput):
            choose_delivery_option([SF_STD], chosen, currency="CNY")


class TestTheShipmentProcess:
    def test_no_transition_leads_to_a_state_less_far_along(self):
        for transition in SHIPMENT.transitions:
            for source in transition.source:
                assert SHIPMENT_PROGRESS[source] <= SHIPMENT_PROGRESS[transition.dest], (
                    transition.trigger,
                    source,
                )

    def test_every_state_has_a_progress_and_every_tracking_status_names_a_state(self):
        assert set(SHIPMENT_PROGRESS) == set(SHIPMENT_PROCESS.states)
        assert {status.value for status in TrackingStatus} <= set(SHIPMENT_PROCESS.states)

    def test_delivered_lost_and_returned_to_sender_are_final(self):
        assert SHIPMENT_PROCESS.final_states == {"delivered", "lost", "returned_to_sender"}

    def test_carriers_may_skip_scans_but_a_failed_parcel_is_never_delivered(self):
        assert SHIPMENT_PROCESS.target("created", "deliver") == "delivered"
        assert SHIPMENT_PROCESS.target("created", "lose") == "lost"
        assert SHIPMENT_PROCESS.target("out_for_delivery", "delay") is None
        assert SHIPMENT_PROCESS.target("damaged", "deliver") is None
        assert SHIPMENT_PROCESS.target("refused_by_buyer", "deliver") is None


class TestPackingAParcel:
    def test_a_new_shipment_is_created_at_version_one_with_an_event(self):
        parcel = shipment()
        assert (parcel.state, parcel.version, parcel.order_id) == ("created", 1, "o-1")
        (created,) = parcel.collect_events()
        assert isinstance(created, ShipmentCreated)
        assert (created.tracking_number, created.lines) == ("SF1", (ShipmentLine("1", 2),))
        assert created.actor == "merchant:m-1"

    @pytest.mark.parametrize(
        "actor", [Actor.merchant("m-2"), Actor.buyer("alice"), Actor.platform(), "m-1"]
    )
    def test_only_the_orders_merchant_packs_it(self, actor):
        with pytest.raises((Forbidden, InvalidInput)):
            Shipment.create(
                shipment_id="s-1",
                order=paid_order(),
                sequence=1,
                actor=actor,
                carrier="SF",
                tracking_number="SF1",
                lines=[ShipmentLine("1", 1)],
                now=NOW,
            )

    @pytest.mark.parametrize(
        ("lines", "match"),
        [
            ((), "at least one line"),
            ((ShipmentLine("1", 1), ShipmentLine("1", 1)), "twice"),
            ((ShipmentLine("9", 1),), "no such line"),
            ((ShipmentLine("1", 4),), "has 3"),
        ],
    )
    def test_a_parcel_of_lines_the_order_does_not_have_is_refused(self, lines, match):
        with pytest.raises(InvalidInput, match=match):
            shipment(lines=lines)

    @pytest.mark.parametrize("changes", [{"tracking": " "}, {"sequence": 0}, {"sequence": True}])
    def test_an_empty_tracking_number_or_a_bad_sequence_is_refused(self, changes):
        with pytest.raises(InvalidInput):
            shipment(**changes)

    def test_a_shipment_line_needs_whole_units(self):
        with pytest.raises(InvalidInput):
            ShipmentLine("1", 0)


class TestTrackingEvents:
    def test_an_event_moves_the_parcel_forward_and_joins_its_history(self):
        parcel = shipment()
        parcel.collect_events()
        assert record(parcel, event("in_transit", 5)) == [TrackingOutcome.APPLIED]
        assert (parcel.state, parcel.version, parcel.last_moved_at) == (
            "in_transit",
            2,
            NOW + timedelta(minutes=5),
        )
        (recorded,) = parcel.collect_events()
        assert isinstance(recorded, TrackingEventRecorded)
        assert (recorded.applied, recorded.state, recorded.occurred_at) == (
            True,
            "in_transit",
            LATER,
        )

    def test_a_repeated_event_changes_nothing(self):
        parcel = shipment()
        record(parcel, event("in_transit", 5))
        before = state_of(parcel)
        assert record(parcel, event("in_transit", 5)) == [TrackingOutcome.DUPLICATE]
        assert state_of(parcel) == before

    def test_an_event_id_reused_with_another_payload_is_a_conflict_and_changes_nothing(self):
        parcel = shipment()
        record(parcel, event("in_transit", 5, "e-1"))
        before = state_of(parcel)
        with pytest.raises(IdempotencyConflict) as refused:
            record(parcel, event("delivered", 9, "e-1"))
        assert refused.value.key == "e-1"
        assert state_of(parcel) == before

    def test_a_late_older_event_is_recorded_but_does_not_move_the_parcel(self):
        parcel = shipment()
        outcomes = record(parcel, event("out_for_delivery", 30), event("in_transit", 10))
        assert outcomes == [TrackingOutcome.APPLIED, TrackingOutcome.RECORDED]
        assert parcel.state == "out_for_delivery"
        assert [e.status for e in parcel.tracking] == ["in_transit", "out_for_delivery"]
        assert parcel.version == 3

    def test_a_late_event_leading_further_still_does_not_move_the_parcel(self):
        parcel = shipment()
        record(parcel, event("in_transit", 30), event("delivered", 10))
        assert parcel.state == "in_transit"
        assert parcel.delivered_at is None

    def test_a_newer_event_with_no_way_forward_is_recorded_only(self):
        parcel = shipment()
        outcomes = record(parcel, event("delivered", 10), event("in_transit", 20))
        assert outcomes == [TrackingOutcome.APPLIED, TrackingOutcome.RECORDED]
        assert (parcel.state, parcel.delivered_at) == ("delivered", NOW + timedelta(minutes=10))

    def test_a_delayed_parcel_moves_on_again(self):
        parcel = shipment()
        record(parcel, event("delayed", 10), event("in_transit", 20))
        assert parcel.state == "in_transit"

    def test_a_damaged_parcel_goes_back_to_the_sender(self):
        parcel = shipment()
        record(parcel, event("damaged", 10), event("returned_to_sender", 20))
        assert (parcel.state, parcel.has_failed, parcel.is_live) == (
            "returned_to_sender",
            True,
            False,
        )

    @pytest.mark.parametrize("actor", [Actor.carrier("YTO"), Actor.buyer("alice"), MERCHANT])
    def test_only_the_parcels_carrier_the_platform_or_the_system_report_on_it(self, actor):
        parcel = shipment()
        with pytest.raises(Forbidden):
            parcel.record(event("in_transit", 5), actor=actor, now=LATER)
        for allowed in (Actor.platform(), Actor.system()):
            parcel.record(event("in_transit", 5, f"e-{allowed.kind}"), actor=allowed, now=LATER)

    def test_a_report_about_another_orders_parcel_is_refused(self):
        parcel = shipment()
        before = state_of(parcel)
        with pytest.raises(Forbidden, match="belongs to order 'o-1'"):
            parcel.record(event("in_transit", 5), actor=SF, now=LATER, order_id="o-2")
        assert state_of(parcel) == before
        parcel.record(event("in_transit", 5), actor=SF, now=LATER, order_id="o-1")

    def test_an_event_for_another_tracking_number_is_refused(self):
        with pytest.raises(InvalidInput, match="SF:SF1"):
            record(shipment(), event("in_transit", 5, tracking="SF2"))

    def test_an_event_dated_too_far_ahead_of_now_is_refused(self):
        parcel = shipment()
        ahead = TRACKING_CLOCK_SKEW + timedelta(seconds=1)
        with pytest.raises(InvalidInput, match="after now"):
            parcel.record(event("in_transit", 5), actor=SF, now=NOW + timedelta(minutes=5) - ahead)
        skewed = NOW + timedelta(minutes=5) - TRACKING_CLOCK_SKEW
        assert parcel.record(event("in_transit", 5), actor=SF, now=skewed) is (
            TrackingOutcome.APPLIED
        )

    def test_a_naive_event_time_is_refused(self):
        with pytest.raises(InvalidInput):
            TrackingEvent("e", "SF", "SF1", "in_transit", datetime(2026, 1, 1))  # noqa: DTZ001

    @given(
        path=st.lists(
            st.sampled_from(["handed_to_carrier", "in_transit", "out_for_delivery", "delivered"]),
            min_size=1,
            max_size=4,
            unique=True,
        ).map(
            lambda statuses: sorted(
                statuses,
                key=["handed_to_carrier", "in_transit", "out_for_delivery", "delivered"].index,
            )
        ),
        data=st.data(),
    )
    def test_a_forward_path_ends_at_its_newest_step_whatever_order_events_arrive_in(
        self, path, data
    ):
        events = [event(status, 10 * n) for n, status in enumerate(path, 1)]
        arrivals = data.draw(st.lists(st.sampled_from(events), min_size=len(events)))
        arrivals = data.draw(st.permutations([*events, *arrivals]))
        parcel = shipment()
        for each in arrivals:
            record(parcel, each)
        assert parcel.state == path[-1]
        assert parcel.tracking == tuple(events)

    @given(
        reports=st.lists(
            st.tuples(st.sampled_from(list(TrackingStatus)), st.integers(0, 500)), max_size=12
        ),
        data=st.data(),
    )
    def test_any_events_in_any_order_never_move_a_parcel_backwards(self, reports, data):
        events = [event(status, minutes, f"e-{n}") for n, (status, minutes) in enumerate(reports)]
        arrivals = data.draw(st.permutations(events + events[: len(events) // 2]))
        parcel = shipment()
        progress, final = parcel.progress, None
        for each in arrivals:
            state = parcel.state
            record(parcel, each)
            assert parcel.progress >= progress
            progress = parcel.progress
            if final is not None:
                assert parcel.state == final
            if SHIPMENT_PROCESS.is_final(parcel.state):
                final = parcel.state
            assert (parcel.state == state) or parcel.last_moved_at == each.occurred_at
        assert list(parcel.tracking) == sorted(
            set(events), key=lambda e: (e.occurred_at, e.event_id)
        )


class TestReceiptOnAParcel:
    def test_confirming_receipt_delivers_a_moving_parcel_at_that_time(self):
        parcel = shipment()
        record(parcel, event("in_transit", 5))
        parcel.collect_events()
        assert parcel.confirm_receipt(Actor.buyer("alice"), now=LATER) is True
        assert (parcel.state, parcel.delivered_at) == ("delivered", LATER)
        assert isinstance(parcel.collect_events()[0], ShipmentReceiptConfirmed)

    def test_confirming_receipt_of_a_delivered_or_failed_parcel_changes_nothing(self):
        for status in ("delivered", "lost"):
            parcel = shipment()
            record(parcel, event(status, 5))
            before = state_of(parcel)
            assert parcel.confirm_receipt(Actor.system(), now=LATER) is False
            assert state_of(parcel) == before

    @pytest.mark.parametrize("actor", [Actor.buyer("bob"), MERCHANT, SF])
    def test_only_the_buyer_the_platform_or_the_system_confirm_it(self, actor):
        with pytest.raises(Forbidden):
            shipment().confirm_receipt(actor, now=LATER)


class TestFulfilmentStatus:
    def test_units_are_folded_per_line_into_live_delivered_and_failed(self):
        order = paid_order()
        first = shipment(order, (ShipmentLine("1", 2), ShipmentLine("2", 2)))
        second = shipment(order, (ShipmentLine("1", 1),), shipment_id="s-2", tracking="SF2")
        record(first, event("delivered", 5))
        record(second, event("lost", 5, tracking="SF2"))
        status = fulfilment_status(order, [second, first])
        tea = status.line("1")
        assert (tea.ordered, tea.live, tea.failed, tea.packed, tea.original) == (3, 2, 1, 3, 3)
        assert (tea.delivered_units, tea.undelivered_units) == (2, 1)
        assert status.shippable("1") == 1
        assert status.outstanding == 1
        assert not status.fully_shipped
        assert status.delivery_problem == "1 units lost or sent back, not yet reshipped or refunded"

    def test_an_order_is_fully_shipped_when_every_unit_owed_is_in_a_live_parcel(self):
        order = paid_order()
        parcel = shipment(order, (ShipmentLine("1", 3), ShipmentLine("2", 1)))
        assert not fulfilment_status(order, [parcel]).fully_shipped
        status = fulfilment_status(order, [parcel], {"2": 1})
        assert status.fully_shipped
        assert not status.fully_delivered
        record(parcel, event("delivered", 5))
        assert fulfilment_status(order, [parcel], {"2": 1}).fully_delivered

    def test_units_refunded_before_anything_shipped_do_not_make_an_order_shipped(self):
        order = paid_order()
        status = fulfilment_status(order, [], {"1": 3, "2": 2})
        assert status.outstanding == 0
        assert not status.fully_shipped
        assert not status.fully_delivered
        assert status.delivery_problem is None

    def test_replacements_do_not_count_towards_the_orders_units(self):
        order = paid_order()
        replacement = shipment(order, purpose=ShipmentPurpose.REPLACEMENT)
        record(replacement, event("delayed", 5))
        status = fulfilment_status(order, [replacement])
        assert status.line("1").packed == 0
        assert status.exceptions == ("s-1",)
        assert status.delivery_problem == "delivery problem on shipment s-1"

    def test_reshipments_draw_new_stock_so_they_are_not_original_units(self):
        order = paid_order()
        lost = shipment(order)
        record(lost, event("lost", 5))
        again = shipment(
            order, shipment_id="s-2", tracking="SF2", sequence=2, purpose=ShipmentPurpose.RESHIPMENT
        )
        line = fulfilment_status(order, [lost, again]).line("1")
        assert (line.packed, line.original, line.live) == (4, 2, 2)

    def test_a_shipment_of_another_order_or_an_unknown_line_is_refused(self):
        order = paid_order()
        with pytest.raises(InvalidInput, match="not a shipment"):
            fulfilment_status(order, [shipment(paid_order("o-2"))])
        with pytest.raises(InvalidInput, match="no such line"):
            fulfilment_status(order, []).line("9")
