"""Lowering a paid order's price after payment (``Order.lower_price``): a group buy's final tier."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecommerce_core import (
    Actor,
    CurrencyMismatch,
    Forbidden,
    InvalidInput,
    Money,
    Order,
    OrderLine,
    OrderPolicy,
    RuleViolation,
    TransitionNotAllowed,
)
from ecommerce_core.events import OrderRepriced
from ecommerce_core.orders import LineAdjustment

NOW = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
SYSTEM = Actor.system("group-buy")
BUYER = Actor.buyer("alice")
CNY = "CNY"


def cny(minor: int) -> Money:
    return Money(minor, CNY)


def paid(*lines: OrderLine, fee: int = 0) -> Order:
    order = Order.place(
        order_id="o-1",
        buyer_id="alice",
        merchant_id="m-1",
        lines=lines,
        now=NOW,
        policy=OrderPolicy(),
        shipping_fee=cny(fee),
    )
    order.pay(BUYER, amount=order.total, reference="tx-1", now=NOW)
    order.collect_events()
    return order


def snapshot(order: Order) -> dict[str, object]:
    return {f.name: getattr(order, f.name) for f in attrs.fields(Order)}


prices = st.integers(1, 100_000)
line_specs = st.lists(
    st.tuples(st.integers(1, 5), prices, st.integers(0, 100)), min_size=1, max_size=4
)


def build_lines(specs: list[tuple[int, int, int]]) -> list[OrderLine]:
    """Lines from (quantity, unit price, discount percent), with a recorded adjustment."""
    lines = []
    for n, (quantity, price, percent) in enumerate(specs, start=1):
        off = price * quantity * percent // 100
        adjustments = (LineAdjustment("promo", "item", cny(off)),) if off else ()
        lines.append(OrderLine(str(n), f"sku-{n}", quantity, cny(price), adjustments=adjustments))
    return lines


@st.composite
def orders_and_cuts(draw: st.DrawFn) -> tuple[Order, dict[str, Money]]:
    order = paid(*build_lines(draw(line_specs)), fee=draw(st.integers(0, 2_000)))
    cuts = {
        line.line_id: cny(draw(st.integers(0, line.amount.minor), label=f"cut {line.line_id}"))
        for line in order.lines
    }
    return order, cuts


class TestLoweringThePrice:
    @given(orders_and_cuts())
    def test_the_total_falls_by_the_cuts_and_every_line_records_its_own(self, drawn) -> None:
        order, cuts = drawn
        before = copy.copy(order)  # every field is a value or a tuple the command replaces
        taken = sum(cuts.values(), cny(0))
        if not taken.is_positive:
            with pytest.raises(InvalidInput, match="nothing to take off"):
                order.lower_price(SYSTEM, promotion_id="gb:final", reductions=cuts, now=NOW)
            assert snapshot(order) == snapshot(before)
            return
        assert order.lower_price(SYSTEM, promotion_id="gb:final", reductions=cuts, now=NOW)
        assert order.total == before.total - taken
        assert order.total == sum((ln.amount for ln in order.lines), order.shipping_fee)
        for old, new in zip(before.lines, order.lines, strict=True):
            cut = cuts[old.line_id]
            assert new.amount == old.amount - cut
            assert not new.amount.is_negative
            assert sum((a.amount for a in new.adjustments), cny(0)) == new.discount
            mine = [a for a in new.adjustments if a.stage == "after_payment"]
            assert [a.amount for a in mine] == ([cut] if cut.is_positive else [])
        (event,) = order.collect_events()
        assert isinstance(event, OrderRepriced)
        assert (event.total, event.version) == (order.total, before.version + 1)
        assert sum((amount for _, amount in event.reductions), cny(0)) == taken

    @given(orders_and_cuts())
    def test_the_same_cut_again_changes_nothing(self, drawn) -> None:
        order, cuts = drawn
        if not any(cut.is_positive for cut in cuts.values()):
            return
        order.lower_price(SYSTEM, promotion_id="gb:final", reductions=cuts, now=NOW)
        order.collect_events()
        once = snapshot(order)
        assert not order.lower_price(SYSTEM, promotion_id="gb:final", reductions=cuts, now=NOW)
        assert snapshot(order) == once

    def test_a_line_discounted_without_adjustments_is_refused_and_nothing_changes(
        self,
    ) -> None:
        order = paid(
            OrderLine("1", "tea", 2, cny(1000), discount=cny(300)),
            OrderLine("2", "cup", 1, cny(500)),
        )
        before = snapshot(order)
        cuts = {"1": cny(200), "2": cny(100)}
        for _ in range(2):  # refused each time: never lowered twice unseen
            with pytest.raises(InvalidInput, match="not itemised"):
                order.lower_price(SYSTEM, promotion_id="gb:final", reductions=cuts, now=NOW)
            assert snapshot(order) == before


class TestRefusals:
    @pytest.mark.parametrize(
        ("actor", "reductions", "error", "match"),
        [
            (BUYER, {"1": cny(100)}, Forbidden, "buyer may not lower_price"),
            (Actor.merchant("m-1"), {"1": cny(100)}, Forbidden, "merchant may not"),
            (SYSTEM, {"9": cny(100)}, InvalidInput, "no such line"),
            (SYSTEM, {"1": cny(-1)}, InvalidInput, "not negative"),
            (SYSTEM, {"1": 100}, InvalidInput, "is Money"),
            (SYSTEM, {"1": Money(100, "USD")}, CurrencyMismatch, "USD"),
            (SYSTEM, {"1": cny(2001)}, InvalidInput, "more than line 1 costs"),
            (SYSTEM, {"1": cny(0)}, InvalidInput, "nothing to take off"),
            (SYSTEM, [("1", cny(100))], InvalidInput, "must map line ids"),
        ],
    )
    def test_a_refused_cut_changes_nothing(self, actor, reductions, error, match) -> None:
        order = paid(OrderLine("1", "tea", 2, cny(1000)))
        before = snapshot(order)
        with pytest.raises(error, match=match):
            order.lower_price(actor, promotion_id="gb:final", reductions=reductions, now=NOW)
        assert snapshot(order) == before

    def test_another_cut_under_a_used_promotion_id_is_refused(self) -> None:
        order = paid(OrderLine("1", "tea", 2, cny(1000)))
        order.lower_price(SYSTEM, promotion_id="gb:final", reductions={"1": cny(200)}, now=NOW)
        before = snapshot(order)
        with pytest.raises(InvalidInput, match="already lowered it"):
            order.lower_price(SYSTEM, promotion_id="gb:final", reductions={"1": cny(300)}, now=NOW)
        assert snapshot(order) == before

    def test_cuts_under_other_ids_or_stages_do_not_count_as_this_promotions(self) -> None:
        placed = LineAdjustment("promo", "item", cny(100))  # promo's discount at placement
        order = paid(OrderLine("1", "tea", 2, cny(1000), adjustments=(placed,)))
        assert order.lower_price(SYSTEM, promotion_id="promo", reductions={"1": cny(50)}, now=NOW)
        assert order.lower_price(SYSTEM, promotion_id="other", reductions={"1": cny(30)}, now=NOW)
        assert order.total == cny(2000 - 100 - 50 - 30)
        assert [(a.promotion_id, a.stage, a.amount) for a in order.lines[0].adjustments] == [
            ("promo", "item", cny(100)),
            ("promo", "after_payment", cny(50)),
            ("other", "after_payment", cny(30)),
        ]

    def test_an_unpaid_order_is_not_repriced(self) -> None:
        order = Order.place(
            order_id="o-1",
            buyer_id="alice",
            merchant_id="m-1",
            lines=[OrderLine("1", "tea", 2, cny(1000))],
            now=NOW,
            policy=OrderPolicy(),
        )
        with pytest.raises(RuleViolation, match="only a paid order"):
            order.lower_price(SYSTEM, promotion_id="gb:final", reductions={"1": cny(1)}, now=NOW)

    def test_a_finished_order_is_not_repriced(self) -> None:
        order = paid(OrderLine("1", "tea", 2, cny(1000)))
        order.cancel(BUYER, reason="changed my mind", now=NOW)
        with pytest.raises(TransitionNotAllowed):
            order.lower_price(SYSTEM, promotion_id="gb:final", reductions={"1": cny(1)}, now=NOW)
