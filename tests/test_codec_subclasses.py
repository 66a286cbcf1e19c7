"""The JSON codec keeps the class of a value stored where its base class is declared."""

from __future__ import annotations

from datetime import timedelta

from ecommerce_core.actors import Actor
from ecommerce_core.adapters.codec import JsonCodec
from ecommerce_core.orders import Deadline
from ecommerce_core.policies import OrderPolicy
from ecommerce_core.testing import CONTRACT_TIME, make_order

POLICY = OrderPolicy()


def shipped_order():
    order = make_order()
    buyer, merchant = Actor.buyer(order.buyer_id), Actor.merchant(order.merchant_id)
    order.pay(buyer, amount=order.total, reference="p-1", now=CONTRACT_TIME)
    order.ship(merchant, carrier="SF", tracking_number="SF1", now=CONTRACT_TIME, policy=POLICY)
    return order


class TestAPausedAutoConfirm:
    def test_a_held_deadline_reads_back_held_and_runs_again_when_released(self):
        codec = JsonCodec()
        order = shipped_order()
        later = CONTRACT_TIME + timedelta(days=1)
        assert order.pause_clock("aftersales:r-1", Actor.system("t"), now=later)
        back = codec.decode_order(codec.encode_order(order))
        assert (back.holds, back.paused, back.deadline) == (order.holds, order.paused, None)
        assert back.auto_confirm_paused
        assert back.resume_clock(
            "aftersales:r-1", Actor.system("t"), now=later + timedelta(hours=1)
        )
        assert back.deadline == Deadline(
            later + timedelta(hours=1) + timedelta(days=9), "auto_confirm"
        )

    def test_a_plain_deadline_is_written_as_before(self):
        codec = JsonCodec()
        order = shipped_order()
        assert "__class__" not in codec.encode_order(order)
        back = codec.decode_order(codec.encode_order(order))
        assert type(back.deadline) is Deadline
        assert back.deadline == order.deadline
