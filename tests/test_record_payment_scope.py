"""``Order.record_payment`` is for the deposit group-buy process only.

A deposit group-buy order is paid by a deposit and a balance outside :meth:`Order.pay`, and
records them as its payment once the balance is in. Every other order (online, escrow, cash on
delivery, credit, a group buy at the tier price, ...) is paid by ``pay``: recording a payment
on one is refused with ``RuleViolation``, in whatever state it is, and changes nothing.
"""

from __future__ import annotations

import contextlib
import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from ecommerce_core import Actor, EcommerceCoreError, Money, Order, OrderLine, OrderPolicy
from ecommerce_core.campaigns.group_buy import (
    GROUP_BUY_DEPOSIT_ORDER_PROCESS,
    GROUP_BUY_ORDER_PROCESS,
)
from ecommerce_core.errors import RuleViolation
from ecommerce_core.orders import STANDARD_ORDER_PROCESS
from ecommerce_core.payments.cod import ORDER_COD_PROCESS, collect_order, refuse_order
from ecommerce_core.payments.escrow import ORDER_ESCROW_PROCESS
from ecommerce_core.process import Process
from ecommerce_core.services.group_buys import GroupBuyDepositPaid

NOW = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
POLICY = OrderPolicy()
BUYER, MERCHANT = Actor.buyer("alice"), Actor.merchant("m-1")
CARRIER = Actor.carrier("SF")
RECORDERS = [Actor.system("campaigns"), Actor.platform("ops")]
PLAIN: list[tuple[Process, str]] = [
    (STANDARD_ORDER_PROCESS, "online"),
    (STANDARD_ORDER_PROCESS, "credit"),
    (ORDER_COD_PROCESS, "cod"),
    (ORDER_ESCROW_PROCESS, "escrow"),
    (GROUP_BUY_ORDER_PROCESS, "online"),
]


def yuan(amount: str) -> Money:
    return Money.of(amount, "CNY")


def placed(process: Process, method: str) -> Order:
    return Order.place(
        order_id="o-1",
        buyer_id="alice",
        merchant_id="m-1",
        lines=[OrderLine("1", "tea", 2, yuan("10.00"))],
        now=NOW,
        policy=POLICY,
        process=process,
        payment_method=method,
    )


def step(order: Order, command: str, now: datetime) -> None:
    """Try one command a buyer, merchant, carrier or the clock could give; refusals are fine."""
    with contextlib.suppress(EcommerceCoreError):
        if command == "pay":
            order.pay(BUYER, amount=order.total, reference="tx-1", now=now)
        elif command == "ship":
            order.ship(MERCHANT, carrier="SF", tracking_number="SF1", now=now, policy=POLICY)
        elif command == "deliver":
            order.deliver(CARRIER, now=now, policy=POLICY)
        elif command == "confirm":
            order.confirm_receipt(BUYER, now=now, policy=POLICY)
        elif command == "collect":
            collect_order(order, CARRIER, amount=order.total, now=now, policy=POLICY)
        elif command == "refuse":
            refuse_order(order, CARRIER, reason="not home", now=now, policy=POLICY)
        elif command == "cancel":
            order.cancel(BUYER, reason="changed my mind", now=now)
        else:
            order.expire(now, POLICY)


COMMANDS = st.sampled_from(["pay", "ship", "deliver", "confirm", "collect", "refuse", "cancel"])


def seen(order: Order) -> tuple[object, ...]:
    return (order.state, order.version, order.payment, order.events, order.total)


class TestOnlyADepositGroupBuyOrderRecordsAPayment:
    @settings(max_examples=60, deadline=None)
    @given(
        kind=st.sampled_from(PLAIN),
        along=st.integers(0, 4),
        then=st.lists(st.one_of(COMMANDS, st.just("expire")), max_size=2),
        recorder=st.sampled_from(RECORDERS),
    )
    def test_an_order_of_any_other_process_refuses_it_in_every_state_and_is_unchanged(
        self, kind: tuple[Process, str], along: int, then: list[str], recorder: Actor
    ) -> None:
        order = placed(*kind)
        path = ["ship", "collect"] if kind[1] == "cod" else ["pay", "ship", "deliver", "confirm"]
        now = NOW
        for command in [*path[:along], *then]:  # some way along its happy path, then anything
            now += timedelta(days=1) if command == "expire" else timedelta(minutes=1)
            step(order, command, now)
        event(f"{order.process.name} {order.state}")
        before, follows = seen(order), re.escape(order.process.name)
        with pytest.raises(RuleViolation, match=f"this one follows {follows}"):
            order.record_payment(recorder, amount=order.total, reference="gb:gbbal:o-1", now=now)
        assert seen(order) == before

    def test_a_cod_order_waiting_to_ship_unpaid_is_not_recorded_paid(self) -> None:
        order = placed(ORDER_COD_PROCESS, "cod")  # awaiting shipment, nothing paid yet
        before = seen(order)
        with pytest.raises(RuleViolation, match=r"order\.group_buy_deposit"):
            order.record_payment(RECORDERS[0], amount=order.total, reference="r", now=NOW)
        assert seen(order) == before
        assert order.payment is None

    def test_a_deposit_group_buy_order_past_pending_payment_records_it(self) -> None:
        order = placed(GROUP_BUY_DEPOSIT_ORDER_PROCESS, "online")
        order.advance(
            "pay_deposit",
            RECORDERS[0],
            allowed=frozenset({RECORDERS[0].kind}),
            now=NOW,
            policy=POLICY,
            event=GroupBuyDepositPaid,
            campaign_id="gb-1",
            amount=yuan("4.00"),
            transaction_id="ch-1",
        )
        assert order.record_payment(RECORDERS[0], amount=yuan("20.00"), reference="r", now=NOW)
        assert order.payment is not None
        assert order.payment.amount == yuan("20.00")
