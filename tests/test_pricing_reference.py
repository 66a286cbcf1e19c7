"""The optimised pricing engine returns exactly what the straightforward one did.

``pricing_reference`` is the engine as it stood before the performance work (see its
docstring). For any cart, any mix of promotions (windows, limits, exclusivity, stacking
groups, sales modes) and any usage snapshot, both return equal results, field by field, and
refuse the same bad input with the same error.
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecommerce_core import Money
from ecommerce_core.errors import EcommerceCoreError
from ecommerce_core.promotions import (
    AmountOff,
    BuyXGetY,
    FixedPrice,
    PercentOff,
    PricingContext,
    PricingLine,
    Promotion,
    Scope,
    Stacking,
    Threshold,
    Tier,
    Tiered,
    price,
)
from pricing_reference import engine as reference
from test_promotions_properties import NOW, carts, cny

SAME = settings(max_examples=40, deadline=None)


def fields(result):
    """Every field of a result, lines and adjustments included, as plain comparable data."""
    return (
        result.currency,
        [(ln, ln.adjustments, ln.discount) for ln in result.lines],
        [(a, a.shares) for a in result.adjustments],
        result.entitlements,
        result.explanations,
        result.claims,
        result.shipping_fee,
        result.shipping_discount,
        result.sales_mode,
        result.offer_ends_at,
        result.total,
    )


class TestTheOptimisedEngineMatchesTheReference:
    @SAME
    @given(carts)
    def test_any_cart_and_promotions_price_exactly_as_the_reference_engine_did(self, cart):
        lines, promotions, context = cart
        assert fields(price(lines, promotions, context)) == fields(
            reference.price(lines, promotions, context)
        )

    @SAME
    @given(carts, st.integers(0, 2))
    def test_promotions_with_windows_price_exactly_as_the_reference_engine_did(self, cart, shift):
        lines, promotions, context = cart
        windowed = [
            Promotion(
                p.id,
                p.benefit,
                stage=p.stage,
                scope=p.scope,
                conditions=p.conditions,
                priority=p.priority,
                exclusive=p.exclusive,
                stacking=p.stacking,
                group=p.group,
                limits=p.limits,
                starts_at=start,
                ends_at=start + timedelta(hours=1 + index % 2),
            )
            for index, p in enumerate(promotions)
            for start in [NOW - timedelta(hours=1) + timedelta(hours=index % 3 * shift)]
        ]
        assert fields(price(lines, windowed, context)) == fields(
            reference.price(lines, windowed, context)
        )

    def test_a_big_seeded_cart_prices_exactly_as_the_reference_engine_did(self):
        rnd = random.Random(7)  # noqa: S311  # seeded test data, not security
        lines = [
            PricingLine(
                f"{i:04}",
                f"sku-{i % 90}",
                rnd.randint(1, 4),
                cny(rnd.randint(0, 40_000)),
                f"cat-{i % 12}",
                f"m-{i % 3}",
            )
            for i in range(300)
        ]
        promotions = []
        for i in range(60):
            category = Scope(categories={f"cat-{i % 12}"}, exclude_skus={f"sku-{i}"})
            benefit = (
                PercentOff(1 + i % 30),
                AmountOff(cny(50 + i), per_unit=i % 2 == 0),
                BuyXGetY(1 + i % 3, 1, percent=50 + i % 50),
                FixedPrice(cny(5_000 + 100 * i)),
                Threshold(cny(10_000), cny(500 + i), repeat=True),
                Tiered([Tier(cny(5_000), PercentOff(3)), Tier(cny(50_000), AmountOff(cny(900)))]),
            )[i % 6]
            scope = Scope(skus={f"sku-{i}", f"sku-{i + 1}"}) if i % 6 == 3 else category
            promotions.append(
                Promotion(
                    f"p{i:03}",
                    benefit,
                    scope=scope,
                    priority=i % 4,
                    exclusive=i % 5 == 0,
                    stacking=Stacking.BEST_OF_GROUP if i % 7 == 0 else Stacking.STACK,
                    group="best" if i % 7 == 0 else "",
                )
            )
        context = PricingContext(NOW, "alice", shipping_fee=Money.of("6.00", "CNY"))
        assert fields(price(lines, promotions, context)) == fields(
            reference.price(lines, promotions, context)
        )


class TestBadInputIsRefusedAsTheReferenceEngineDid:
    @pytest.mark.parametrize(
        "lines",
        [
            [],
            [PricingLine("a", "tea", 1, cny(100)), PricingLine("a", "cup", 1, cny(100))],
            [PricingLine("a", "tea", 1, cny(100)), PricingLine("b", "cup", 1, Money(1, "USD"))],
        ],
    )
    def test_bad_lines_raise_the_same_error(self, lines):
        context = PricingContext(NOW, "alice")
        with pytest.raises(EcommerceCoreError) as fast:
            price(lines, [], context)
        with pytest.raises(EcommerceCoreError) as slow:
            reference.price(lines, [], context)
        assert type(fast.value) is type(slow.value)
        assert str(fast.value) == str(slow.value)
