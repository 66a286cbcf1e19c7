"""Pricing steps of the order use cases: coupons at checkout, holds on every path an order takes.

:class:`~ecommerce_core.services.OrderService` calls these when it has a promotion catalogue and
a promotion ledger. They keep its own methods short:

- :func:`price_checkout` prices each merchant's part of a cart with that merchant's automatic
  promotions and the coupons the buyer entered (each coupon goes to the first merchant's order,
  in merchant order, where it applies; a coupon that applies nowhere refuses the checkout);
- :func:`take_payment_holds` re-checks an order's offer when it is paid, and takes what it only
  takes at payment (a rush purchase's quantity and stock);
- :func:`release_holds` gives back, on every abandon path, what the order held.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from ecommerce_core.errors import InvalidInput, NotFound, PromotionRefused
from ecommerce_core.limits import StockTiming
from ecommerce_core.orders import Order, OrderLine, OrderState, PricingTerms
from ecommerce_core.policies import PricingPolicy, Recheck
from ecommerce_core.ports import Inventory, PromotionCatalog, PromotionLedger, StockItem
from ecommerce_core.promotions import (
    Coupon,
    Explanation,
    PricingContext,
    PricingResult,
    Promotion,
    Status,
    limit_keys,
    price,
)

__all__ = [
    "confirm_payment_holds",
    "drop_stale_payment_holds",
    "payment_hold_id",
    "price_checkout",
    "release_holds",
    "stock_items",
    "take_payment_holds",
]


def payment_hold_id(order_id: str) -> str:
    """The ledger reservation id of the claims an order takes when it is paid."""
    return f"{order_id}:payment"


def stock_items(order: Order) -> list[StockItem]:
    """The stock an order's lines need."""
    return [StockItem(line.line_id, line.sku, line.quantity) for line in order.lines]


def _codes(codes: Sequence[str]) -> list[str]:
    if isinstance(codes, str):
        raise InvalidInput("coupon_codes", codes, "pass a list of codes, not one string")
    listed = list(codes)
    for code in listed:
        if not isinstance(code, str) or not code.strip():
            raise InvalidInput("coupon_codes", code, "each code must be a non-empty string")
    if len(set(listed)) != len(listed):
        raise InvalidInput("coupon_codes", listed, "the same code was applied twice")
    return listed


def _most_telling(explanations: Sequence[Explanation]) -> Explanation:
    """Of a coupon's explanations on several orders, the closest to applying.

    The smallest shortfall (the order that needs least to qualify), else the first.
    """
    short = [e for e in explanations if e.shortfall is not None]
    if not short:
        return explanations[0]
    return min(short, key=_missing)


def _missing(explanation: Explanation) -> tuple[int, int]:
    shortfall = explanation.shortfall
    assert shortfall is not None  # noqa: S101  # filtered by the caller
    return (shortfall.units, 0 if shortfall.amount is None else shortfall.amount.minor)


def _refuse(coupon: Coupon, explanation: Explanation) -> PromotionRefused:
    return PromotionRefused(
        coupon.promotion.id,
        explanation.status.value,
        explanation.reason,
        code=coupon.code,
        command="checkout",
    )


def price_checkout(
    catalog: PromotionCatalog,
    ledger: PromotionLedger,
    *,
    buyer_id: str,
    segments: Iterable[str],
    lines_by_merchant: Mapping[str, Sequence[OrderLine]],
    coupon_codes: Sequence[str],
    now: datetime,
) -> dict[str, PricingResult]:
    """Price each merchant's lines; each coupon applies to one order.

    Orders are priced in merchant order, each against the usage the earlier ones claimed, so
    a platform-wide promotion limited to one use per buyer goes to one order of the checkout.

    Raises:
        InvalidInput: A code given twice or malformed.
        NotFound: An unknown code.
        PromotionRefused: A code that applies to no order (expired, exhausted, its condition
            unmet...), with the reason.
        CurrencyMismatch: A coupon of another currency.

    """
    codes = _codes(coupon_codes)
    coupons = [catalog.coupon(code) for code in codes]
    merchants = sorted(lines_by_merchant)
    automatic: dict[str, Sequence[Promotion]] = {m: catalog.promotions(m) for m in merchants}
    everything: list[Promotion | Coupon] = [p for m in merchants for p in automatic[m]]
    usage = dict(ledger.usage(limit_keys([*everything, *coupons], buyer_id)))
    wanted = frozenset(segments)

    def run(merchant: str, extra: Sequence[Coupon]) -> PricingResult:
        context = PricingContext(now, buyer_id, wanted, usage=usage, merchant_id=merchant)
        return price(lines_by_merchant[merchant], [*automatic[merchant], *extra], context)

    assigned: dict[str, list[Coupon]] = {m: [] for m in merchants}
    for coupon in coupons:
        tried: list[Explanation] = []
        for merchant in merchants:
            explanation = run(merchant, [*assigned[merchant], coupon]).explanation(
                coupon.promotion.id
            )
            if explanation.applied:
                assigned[merchant].append(coupon)
                break
            tried.append(explanation)
        else:
            raise _refuse(coupon, _most_telling(tried))
    results: dict[str, PricingResult] = {}
    for merchant in merchants:  # a limit one order takes is not there for the next
        results[merchant] = run(merchant, assigned[merchant])
        for claim in results[merchant].claims:
            usage[claim.key] = usage.get(claim.key, 0) + claim.amount
    for merchant, given in assigned.items():
        for coupon in given:
            explanation = results[merchant].explanation(coupon.promotion.id)
            if not explanation.applied:  # another code the buyer entered beat or stopped it
                raise _refuse(coupon, explanation)
    return results


def take_payment_holds(
    order: Order,
    *,
    now: datetime,
    policy: PricingPolicy,
    ledger: PromotionLedger | None,
    inventory: Inventory,
) -> None:
    """Before charging: re-check the offer per policy, then take what is taken at payment.

    Raises:
        PromotionRefused: The offer is no longer honoured (the payment deadline passed, or it
            ended and the policy requires it active).
        LimitExceeded: The quantity taken at payment has run out (nothing was taken).
        OutOfStock: The stock taken at payment has run out (nothing was taken).

    """
    terms = order.terms
    if terms is None:
        return
    _recheck(order, terms, now, policy)
    claims = terms.payment_claims
    if claims and ledger is not None:
        ledger.reserve(payment_hold_id(order.id), claims)
    if terms.stock_timing is StockTiming.ON_PAYMENT:
        try:
            inventory.reserve(order.id, stock_items(order))
        except BaseException:
            if claims and ledger is not None:
                ledger.release(payment_hold_id(order.id))
            raise


def _recheck(order: Order, terms: PricingTerms, now: datetime, policy: PricingPolicy) -> None:
    if not terms.promotion_ids:
        return
    first = terms.promotion_ids[0]
    if policy.recheck_at_payment is Recheck.REQUIRE_ACTIVE:
        if terms.offer_ends_at is not None and now >= terms.offer_ends_at:
            reason = f"the offer ended at {terms.offer_ends_at.isoformat()}"
            raise PromotionRefused(
                first, Status.EXPIRED.value, reason, aggregate_id=order.id, command="pay"
            )
        return
    deadline = order.deadline
    if deadline is not None and deadline.trigger == "expire_payment" and now >= deadline.at:
        reason = (
            f"the price was held until the payment deadline {deadline.at.isoformat()}, "
            "which has passed"
        )
        raise PromotionRefused(
            first, Status.EXPIRED.value, reason, aggregate_id=order.id, command="pay"
        )


def confirm_payment_holds(order: Order, ledger: PromotionLedger | None) -> None:
    """After the payment is saved: commit what the order holds in the ledger."""
    terms = order.terms
    if terms is None or ledger is None:
        return
    if terms.order_claims:
        ledger.commit(order.id)
    if terms.payment_claims:
        ledger.commit(payment_hold_id(order.id))


def drop_stale_payment_holds(
    order: Order, stored: Order, *, ledger: PromotionLedger | None, inventory: Inventory
) -> None:
    """Give back payment holds taken for an order a concurrent writer cancelled meanwhile."""
    terms = order.terms
    if terms is None or stored.state != OrderState.CANCELLED:
        return
    if ledger is not None:
        ledger.release(payment_hold_id(order.id))
    if terms.stock_timing is StockTiming.ON_PAYMENT:
        with contextlib.suppress(NotFound):
            inventory.release(order.id)


def release_holds(
    order: Order,
    *,
    ledger: PromotionLedger | None,
    inventory: Inventory,
    policy: PricingPolicy,
) -> None:
    """Give back, once, what an abandoned (cancelled or expired) order holds.

    Its stock (unless it takes stock at payment and never took it), and, in the ledger, its
    coupon uses, budget and campaign quota: always when it was unpaid, and when it was paid if
    the policy gives them back.
    """
    terms = order.terms
    if terms is None or terms.stock_timing is StockTiming.ON_ORDER or order.payment is not None:
        inventory.release(order.id)
    else:
        with contextlib.suppress(NotFound):  # stock taken at payment: maybe never taken
            inventory.release(order.id)
    if terms is None or ledger is None:
        return
    if order.payment is not None and not policy.release_when_paid_order_cancelled:
        return
    ledger.release(order.id)
    ledger.release(payment_hold_id(order.id))
