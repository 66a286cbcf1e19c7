"""The pricing engine: ``price(lines, promotions, context) -> PricingResult``, with no side effects.

How a cart is priced:

1. The lines are put in a canonical order (by line id) and indexed by SKU, category and
   merchant, so each promotion looks only at the lines its scope can match.
2. The stages run in order (base price, item, order, shipping, post-order); each works on the
   amounts the earlier ones left. Within a stage, promotions run by priority (higher first),
   ties broken by id, so neither the order of the lines nor the order of the promotions
   changes the result.
3. Each promotion is checked (window, buyer, scope, conditions), its benefit computed on the
   units still available to it (an exclusive promotion uses only units no other promotion
   touched; any other uses the units no exclusive one took), its limits checked against the
   usage snapshot (a budget caps what it gives, a count refuses it), then applied or explained.
4. An amount given to several lines is split by largest remainder in minor units, weighted by
   what each line still costs, so the shares add up exactly and no line goes below zero.
5. Until the end, the engine works on ints (working lines, lists of shares); the result's
   objects are built last, all of a kind at once, field by field (:meth:`_Pricing.result`).

Cost: O(N log N + Σ_p N_p log N_p) for N lines and promotions touching N_p lines each.
"""

from __future__ import annotations

import functools
import math
import operator
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from itertools import repeat, starmap
from typing import Any

from ecommerce_core.errors import CurrencyMismatch, InvalidInput
from ecommerce_core.limits import LimitClaim, Measure
from ecommerce_core.money import Money
from ecommerce_core.money import _result as _money  # Money from known-good ints (hot path)
from ecommerce_core.orders import LineAdjustment, OrderLine
from ecommerce_core.promotions.benefits import (
    AmountOff,
    BuyXGetY,
    FixedPrice,
    FreeShipping,
    PercentOff,
    Points,
    Rebate,
    Stage,
    Threshold,
    Tiered,
)
from ecommerce_core.promotions.rules import (
    Coupon,
    MinQuantity,
    Promotion,
    Stacking,
)
from ecommerce_core.promotions.values import (
    Adjustment,
    Entitlement,
    Explanation,
    LineShare,
    PricedLine,
    PricingContext,
    PricingLine,
    PricingResult,
    Status,
)
from ecommerce_core.promotions.working import (
    _ADJUSTMENT_SETTERS,
    _APPLIED,
    _CONDITION_UNMET,
    _EXPLANATION_SETTERS,
    _NO_VALUE,
    _PRICED_SETTERS,
    _adjustment_amount,
    _adjustment_code,
    _adjustment_promotion,
    _adjustment_stage,
    _amount,
    _built,
    _cap,
    _consume,
    _from_rows,
    _index,
    _limit_reached,
    _Line,
    _money_currency,
    _money_minor,
    _money_short,
    _Offer,
    _Outcome,
    _percent_of,
    _Pool,
    _share_amount,
    _share_line,
    _Shares,
    _spread,
    _threshold,
    _units_short,
)

__all__ = [
    "limit_keys",
    "price",
]

_STAGES = tuple(Stage)
_STAGE_NAMES = {stage: stage.value for stage in Stage}  # (Enum.value is a Python-level property)
# Enum members as globals (an enum class's attribute is a Python-level lookup; see working.py).
_BASE_PRICE = Stage.BASE_PRICE
_POST_ORDER = Stage.POST_ORDER
_BEST_OF_GROUP = Stacking.BEST_OF_GROUP
_STOP_AFTER = Stacking.STOP_AFTER
_AMOUNT = Measure.AMOUNT
_NONE: list[Any] = []  # no lines (never changed)


class _Pricing:
    """One run of :func:`price`: the cart's state as the stages change it."""

    def __init__(self, lines: Sequence[PricingLine | OrderLine], context: PricingContext) -> None:
        self.context = context
        given = [line if type(line) is PricingLine else self._line(line) for line in lines]
        if not given:
            raise InvalidInput("lines", lines, "there is nothing to price")
        self.currency = currency = given[0].unit_price.currency
        line_ids = [source.line_id for source in given]
        if (
            len(set(line_ids)) != len(line_ids)
            or len({source.unit_price.currency for source in given}) != 1
        ):
            self._refuse(given)
        fee = context.shipping_fee or Money.zero(currency)
        if fee.currency != currency:
            raise CurrencyMismatch(currency, fee.currency, "price")
        self.shipping_fee = fee
        self.zero = Money.zero(currency)
        self.shipping_left = fee.minor
        # The working lines, built in one go and filled field by field (no __init__ call
        # each), in canonical order (by line id); ``given`` keeps them in the order given.
        canonical = sorted(range(len(given)), key=line_ids.__getitem__)
        self.given = working = _built(_Line, len(given))
        self.lines: list[_Line] = [working[position] for position in canonical]
        self.sources = sources = [given[position] for position in canonical]
        for index, line, source in zip(range(len(sources)), self.lines, sources, strict=True):
            unit, qty = source.unit_price.minor, source.quantity
            line.source, line.line_id, line.unit, line.qty = source, source.line_id, unit, qty
            line.index = index
            line.discount = line.shared_units = 0
            line.open_units = line.free_units = qty
            line.open_amount = unit * qty
            line.adjustments = []
        self.indexes: dict[str, dict[str, list[_Line]]] = {}  # built when a scope needs one
        self.sales_mode = ""
        self.sales_mode_by = ""
        # What each applied promotion gave, built into Adjustments by result(): (promotion id,
        # stage, amount, its shares' slice of the lists below, shipping, code).
        self.adjustments: list[tuple[str, Stage, Money, int, int, Money | None, str]] = []
        # Every line share of every applied promotion, in the order they were given.
        self.share_lines: list[_Line] = []
        self.share_discounts: list[int] = []
        self.share_offers: list[str] = []
        self.share_stages: list[str] = []
        self.share_codes: list[str] = []
        self.entitlements: list[Entitlement] = []
        # The fields of each Explanation, in _EXPLANATION_FIELDS order, built by result().
        self.explanations: list[tuple[Any, ...]] = []
        self.claims: list[LimitClaim] = []
        self.shipping_discount = 0
        self.ends: list[datetime] = []

    def _refuse(self, given: list[PricingLine]) -> None:
        """Raise for the first line of another currency or with an id seen before."""
        ids: set[str] = set()
        for source in given:
            if source.unit_price.currency != self.currency:
                raise CurrencyMismatch(self.currency, source.unit_price.currency, "price")
            if source.line_id in ids:
                raise InvalidInput("lines", source.line_id, "line ids must be unique")
            ids.add(source.line_id)

    def _line(self, line: PricingLine | OrderLine) -> PricingLine:
        if isinstance(line, PricingLine):
            return line
        if isinstance(line, OrderLine):
            return PricingLine.of(line, self.context.merchant_id)
        raise InvalidInput("lines", line, "each line must be a PricingLine or an OrderLine")

    # ----------------------------------------------------------------- looking

    def index(self, field: str) -> dict[str, list[_Line]]:
        """Lines by SKU, category or merchant (canonical order within each), built once."""
        index = self.indexes.get(field)
        if index is None:
            groups: defaultdict[str, list[_Line]] = defaultdict(list)
            keys = map(operator.attrgetter(field), self.sources)
            _consume(map(list.append, map(groups.__getitem__, keys), self.lines))
            index = self.indexes[field] = dict(groups)
        return index

    def candidates(self, offer: _Offer) -> list[_Line]:
        """The lines an offer's scope matches, found through an index, in canonical order."""
        field, names, filtered = offer.lookup
        if not field:
            lines: list[_Line] = self.lines  # every line
        else:
            index = self.indexes.get(field) or self.index(field)
            if len(names) == 1:
                lines = index.get(names[0], _NONE)
            else:
                found = [index[name] for name in names if name in index]
                if len(found) == 1:
                    lines = found[0]
                else:
                    lines = sorted((line for group in found for line in group), key=_index)
        if not filtered:
            return lines  # the index matched the only criterion: nothing to filter
        covers = offer.promotion.scope.covers
        return [
            line
            for line in lines
            if covers(line.source.sku, line.source.category, line.source.merchant_id)
        ]

    def pool(self, offer: _Offer) -> tuple[_Pool, int, int]:
        """What each line in scope still offers this promotion, and the totals: units, amount."""
        # Parallel lists, one comprehension each, totals summed in C: this runs for every line
        # of every promotion, so it builds no per-line object.
        lines = self.candidates(offer)
        if offer.exclusive:
            units = [line.free_units for line in lines]
            if not all(units):  # units never go below zero: a 0 is a line used up
                lines = [line for line, u in zip(lines, units, strict=True) if u > 0]
                units = [u for u in units if u > 0]
            amounts = [u * line.unit for u, line in zip(units, lines, strict=True)]
        else:
            units = [line.open_units for line in lines]
            if not all(units):  # units never go below zero: a 0 is a line used up
                lines = [line for line, u in zip(lines, units, strict=True) if u > 0]
                units = [u for u in units if u > 0]
            amounts = [line.open_amount for line in lines]
        return (lines, units, amounts), sum(units), sum(amounts)

    # ----------------------------------------------------------------- evaluating

    def evaluate(self, offer: _Offer) -> _Outcome:  # noqa: PLR0911  # one return per status
        """Check and compute one promotion against the cart as it stands; change nothing."""
        promotion = offer.promotion
        if offer.starts_at is not None or offer.ends_at is not None:
            closed = self.closed(offer)
            if closed is not None:
                return closed
        for condition in offer.buyer_conditions:
            if not condition.segments & self.context.segments:
                names = ", ".join(sorted(condition.segments))
                return _Outcome(_CONDITION_UNMET, f"only for buyers in: {names}")
        benefit: Any = promotion.benefit
        kind = type(benefit)
        if kind is FreeShipping and not offer.measure_conditions and not offer.limits:
            # Only whether a line is in scope counts (no amount, no count of units is read).
            if not self.any_open(offer):
                what = promotion.scope.describe()
                return _Outcome(_CONDITION_UNMET, f"nothing in the cart it covers ({what})")
            outcome = self.free_shipping(benefit, (_NONE, _NONE, _NONE), 0, 0)
        else:
            pool, units, amount = self.pool(offer)
            if not pool[0]:
                what = promotion.scope.describe()
                return _Outcome(_CONDITION_UNMET, f"nothing in the cart it covers ({what})")
            for measure in offer.measure_conditions:
                if isinstance(measure, MinQuantity):
                    if units < measure.units:
                        return _units_short(measure.units - units)
                elif amount < measure.amount.minor:
                    return _money_short(measure.amount.minor - amount, self.currency)
            outcome = _RULES[kind](self, benefit, pool, units, amount)
        if outcome.status is not _APPLIED:
            return outcome
        if outcome.value == 0 and outcome.points == 0:
            return _Outcome(_NO_VALUE, "nothing left to take off")
        if not offer.limits:
            return outcome
        return self.limit(offer, outcome)

    def any_open(self, offer: _Offer) -> bool:
        """Whether a line in scope has a unit left for this promotion (what :meth:`pool` keeps)."""
        if offer.exclusive:
            return any(line.free_units for line in self.candidates(offer))
        return any(line.open_units for line in self.candidates(offer))

    def percent_off(self, benefit: PercentOff, pool: _Pool, units: int, amount: int) -> _Outcome:
        """A percentage of the pool, rounded once, spread over the lines."""
        total = _percent_of(amount, benefit.rate)
        return _Outcome(_APPLIED, shares=_spread(pool, total, amount), units=units)

    def amount_off(self, benefit: AmountOff, pool: _Pool, units: int, amount: int) -> _Outcome:
        """An amount per unit (capped per line), or once, spread over the lines."""
        off = benefit.amount.minor
        if benefit.per_unit:
            lines, used, amounts = pool
            discounts = [min(off * u, a) for u, a in zip(used, amounts, strict=True)]
            return _Outcome(_APPLIED, shares=(lines, discounts, used), units=units)
        return _Outcome(_APPLIED, shares=_spread(pool, min(off, amount), amount), units=units)

    def fixed_price(self, benefit: FixedPrice, pool: _Pool, units: int, amount: int) -> _Outcome:
        """Each unit down to the fixed price; units already cheaper are left alone."""
        del units, amount
        price = benefit.unit_price.minor
        lines, used, amounts = pool
        dearer = [i for i, (u, a) in enumerate(zip(used, amounts, strict=True)) if a > price * u]
        shares = (
            [lines[i] for i in dearer],
            [amounts[i] - price * used[i] for i in dearer],
            [used[i] for i in dearer],
        )
        return _Outcome(_APPLIED, shares=shares, units=sum(shares[2]))

    def threshold(self, benefit: Threshold, pool: _Pool, units: int, amount: int) -> _Outcome:
        """满减: the reduction once, or once per whole multiple of the threshold."""
        spend = benefit.spend.minor
        if amount < spend:
            return _money_short(spend - amount, self.currency)
        times = amount // spend if benefit.repeat else 1
        if benefit.max_times is not None:
            times = min(times, benefit.max_times)
        total = min(benefit.off.minor * times, amount)
        return _Outcome(_APPLIED, shares=_spread(pool, total, amount), units=units)

    def free_shipping(
        self, benefit: FreeShipping, pool: _Pool, units: int, amount: int
    ) -> _Outcome:
        """The shipping fee left, or at most ``up_to`` of it."""
        del pool, amount
        cap = self.shipping_left if benefit.up_to is None else benefit.up_to.minor
        return _Outcome(_APPLIED, shipping=min(self.shipping_left, cap), units=units)

    def rebate(self, benefit: Rebate, pool: _Pool, units: int, amount: int) -> _Outcome:
        """Cashback on what the lines in scope cost after every discount."""
        del pool
        if benefit.amount is not None:
            cashback = min(benefit.amount.minor, amount)
        else:
            cashback = _percent_of(amount, benefit.rate)
        return _Outcome(_APPLIED, entitlement=cashback, units=units)

    def points(self, benefit: Points, pool: _Pool, units: int, amount: int) -> _Outcome:
        """Points per whole amount paid for the lines in scope."""
        del pool
        points = amount // benefit.per.minor * benefit.points
        return _Outcome(_APPLIED, points=points, units=units)

    def buy_x_get_y(self, benefit: BuyXGetY, pool: _Pool, units: int, amount: int) -> _Outcome:
        """Pool the units; the cheapest ``get`` of every ``buy + get`` get the rate off."""
        del amount
        bundle = benefit.buy + benefit.get
        times = units // bundle
        if times == 0:
            return _units_short(bundle - units)
        if benefit.max_applications is not None:
            times = min(times, benefit.max_applications)
        entries = list(zip(*pool, strict=True))  # (line, units, amount)
        cheapest = _cheapest_first(entries, len(self.lines))
        free_left, paid_left = times * benefit.get, times * benefit.buy
        used: dict[int, list[int]] = {}  # line index -> [free units, paid units]
        for line, u, _ in cheapest:
            take = min(u, free_left)
            free_left -= take
            used[line.index] = [take, 0]
        for line, u, _ in reversed(cheapest):
            take = min(u - used[line.index][0], paid_left)
            paid_left -= take
            used[line.index][1] = take
        rate = benefit.rate
        shares: _Shares = ([], [], [])
        lines, discounts, units_used = shares
        for line, u, a in entries:
            free, paid = used[line.index]
            if free or paid:
                lines.append(line)
                discounts.append(_percent_of(a * free // u, rate))
                units_used.append(free + paid)
        return _Outcome(_APPLIED, shares=shares, units=sum(units_used))

    def tiered(self, benefit: Tiered, pool: _Pool, units: int, amount: int) -> _Outcome:
        """The highest tier the pool reaches."""
        measure = units if benefit.by_units else amount
        reached = [t for t in benefit.tiers if _threshold(t.at) <= measure]
        if not reached:
            first = _threshold(benefit.tiers[0].at)
            if benefit.by_units:
                return _units_short(first - measure)
            return _money_short(first - measure, self.currency)
        tier = reached[-1].benefit
        if isinstance(tier, PercentOff):
            total = _percent_of(amount, tier.rate)
        else:
            total = min(tier.amount.minor, amount)
        return _Outcome(_APPLIED, shares=_spread(pool, total, amount), units=units)

    def limit(self, offer: _Offer, outcome: _Outcome) -> _Outcome:
        """Check the limits against the usage snapshot; a budget caps, a count refuses."""
        if not offer.limits:
            return outcome
        usage, buyer = self.context.usage, self.context.buyer_id
        for limit in offer.limits:
            left = limit.remaining(offer.id, buyer, usage)
            if limit.measure is _AMOUNT:
                if left == 0:
                    return _limit_reached(limit, left)
                if outcome.value > left:
                    _cap(outcome, left)
                continue
            needed = limit.needs(uses=1, units=outcome.units, discount=outcome.value)
            if needed > left:
                return _limit_reached(limit, left)
        outcome.claims = [
            claim
            for limit in offer.limits
            if limit.needs(uses=1, units=outcome.units, discount=outcome.value) > 0
            for claim in (
                limit.claim(
                    offer.id,
                    buyer_id=buyer,
                    uses=1,
                    units=outcome.units,
                    discount=outcome.value,
                ),
            )
        ]
        return outcome

    # ----------------------------------------------------------------- applying

    def run(self, offers: Sequence[_Offer]) -> None:
        """Run every stage in order."""
        by_stage: dict[Stage, list[_Offer]] = {stage: [] for stage in _STAGES}
        for offer in offers:
            by_stage[offer.promotion.stage].append(offer)
        for stage in _STAGES:
            ranked = sorted(by_stage[stage], key=lambda o: (-o.promotion.priority, o.id))
            self.stage(stage, ranked)

    def stage(self, stage: Stage, ranked: list[_Offer]) -> None:
        """Run one stage: promotions by priority, with stops and best-of groups."""
        stopped_all = ""
        stopped: dict[str, str] = {}  # group -> the promotion that stopped it
        groups: dict[str, list[_Offer]] = {}  # best-of groups, members in rank order
        for offer in ranked:
            if offer.promotion.stacking is _BEST_OF_GROUP:
                groups.setdefault(offer.promotion.group, []).append(offer)
        for offer in ranked:
            promotion = offer.promotion
            stopper = stopped_all or stopped.get(promotion.group, "")
            if promotion.stacking is _BEST_OF_GROUP:
                members = groups.pop(promotion.group, None)
                if members is None:
                    continue  # the group already competed at its first member's place
                if stopper:
                    for member in members:
                        self.explain_stopped(stage, member, stopper)
                    continue
                self.best_of(stage, members)
                continue
            if stopper:
                self.explain_stopped(stage, offer, stopper)
                continue
            if (
                stage is _BASE_PRICE
                and self.sales_mode
                and promotion.sales_mode != self.sales_mode
                and self.closed(offer) is None
            ):
                reason = (
                    f"an order has one sales mode, and {self.sales_mode_by!r} "
                    f"sells it as {self.sales_mode}"
                )
                self.explain(
                    stage, offer, _Outcome(Status.STOPPED_BY, reason), by=self.sales_mode_by
                )
                continue
            outcome = self.evaluate(offer)
            self.settle(stage, offer, outcome)
            if outcome.status is _APPLIED and promotion.stacking is _STOP_AFTER:
                if promotion.group:
                    stopped[promotion.group] = offer.id
                else:
                    stopped_all = offer.id

    def best_of(self, stage: Stage, members: list[_Offer]) -> None:
        """Evaluate a best-of group on the same cart; only the one giving most applies."""
        outcomes = [(member, self.evaluate(member)) for member in members]
        winner = None
        for rank, (member, outcome) in enumerate(outcomes):
            if outcome.status is _APPLIED:
                score = (outcome.value, outcome.points, -rank)
                if winner is None or score > winner[2]:
                    winner = (member, outcome, score)
        for member, outcome in outcomes:
            if winner is None or member is winner[0] or outcome.status is not _APPLIED:
                self.settle(stage, member, outcome)
                continue
            best = winner[1]
            reason = (
                f"{winner[0].id!r} in group {member.promotion.group!r} gives more "
                f"({_amount(best.value, self.currency)} against "
                f"{_amount(outcome.value, self.currency)})"
            )
            self.explain(stage, member, _Outcome(Status.LOST_TO_BETTER, reason), by=winner[0].id)

    def closed(self, offer: _Offer) -> _Outcome | None:
        """Why the promotion is not running now (not started, or over), if it is not."""
        now = self.context.now
        if offer.starts_at is not None and now < offer.starts_at:
            return _Outcome(Status.NOT_STARTED, f"starts at {offer.starts_at.isoformat()}")
        if offer.ends_at is not None and now >= offer.ends_at:
            return _Outcome(Status.EXPIRED, f"ended at {offer.ends_at.isoformat()}")
        return None

    def explain_stopped(self, stage: Stage, offer: _Offer, stopper: str) -> None:
        """Record that ``stopper`` stopped this promotion (unless it is not running anyway)."""
        closed = self.closed(offer)
        if closed is not None:
            self.explain(stage, offer, closed)
            return
        reason = f"stopped by {stopper!r}, which stops the promotions after it"
        self.explain(stage, offer, _Outcome(Status.STOPPED_BY, reason), by=stopper)

    def settle(self, stage: Stage, offer: _Offer, outcome: _Outcome) -> None:
        """Apply an outcome that applied; explain every outcome."""
        if outcome.status is not _APPLIED:
            self.explain(stage, offer, outcome)
            return
        promotion, currency, code, offer_id = offer.promotion, self.currency, offer.code, offer.id
        lines, discounts, units_used = outcome.shares
        # The hot loop: only the working lines' ints change here; the shares' objects (Money,
        # LineAdjustment, LineShare) are built all at once by result(), from the lists below.
        if offer.exclusive:
            for line, discount, units in zip(lines, discounts, units_used, strict=True):
                line.discount += discount
                line.open_units -= units
                line.open_amount -= units * line.unit
                line.free_units -= units
        else:
            for line, discount, units in zip(lines, discounts, units_used, strict=True):
                line.discount += discount
                line.open_amount -= discount
                if units > line.shared_units:
                    line.shared_units = units
                    line.free_units = line.open_units - units
        if not all(discounts):  # a line given nothing gets no share
            lines = [line for line, discount in zip(lines, discounts, strict=True) if discount]
            discounts = [discount for discount in discounts if discount]
        start, count = len(self.share_discounts), len(lines)
        self.share_lines += lines
        self.share_discounts += discounts
        self.share_offers += repeat(offer_id, count)
        self.share_stages += repeat(_STAGE_NAMES[stage], count)
        self.share_codes += repeat(code, count)
        if outcome.shipping:
            self.shipping_left -= outcome.shipping
            self.shipping_discount += outcome.shipping
        given = outcome.value
        given_money = _money(given, currency)
        if stage is _POST_ORDER:
            self.entitlements.append(
                Entitlement(
                    offer.id,
                    "points" if isinstance(promotion.benefit, Points) else "rebate",
                    None if isinstance(promotion.benefit, Points) else given_money,
                    outcome.points,
                    code,
                    promotion.benefit.funded_by
                    if isinstance(promotion.benefit, Rebate)
                    else "platform",
                )
            )
            reason = (
                f"earns {outcome.points} points"
                if isinstance(promotion.benefit, Points)
                else f"grants {_amount(given, currency)} cashback"
            )
        else:
            self.adjustments.append(  # built by result(), once the shares are
                (
                    offer_id,
                    stage,
                    given_money,
                    start,
                    start + count,
                    _money(outcome.shipping, currency) if outcome.shipping else None,
                    code,
                )
            )
            reason = f"took {_amount(given, currency)} off"
        if stage is _BASE_PRICE and not self.sales_mode:
            self.sales_mode, self.sales_mode_by = promotion.sales_mode, offer.id
        if offer.ends_at is not None:
            self.ends.append(offer.ends_at)
        self.claims.extend(outcome.claims)
        self.explanations.append(  # as explain() records it
            (
                offer_id,
                stage,
                _APPLIED,
                reason,
                self.zero if stage is _POST_ORDER else given_money,
                None,
                "",
                None,
                code,
            )
        )

    def explain(
        self,
        stage: Stage,
        offer: _Offer,
        outcome: _Outcome,
        *,
        by: str = "",
        discount: Money | None = None,
    ) -> None:
        """Record the explanation for one promotion."""
        self.explanations.append(  # built by result(), all at once
            (
                offer.id,
                stage,
                outcome.status,
                outcome.reason,
                discount if discount is not None else self.zero,
                outcome.shortfall,
                by,
                outcome.limit,
                offer.code,
            )
        )

    def result(self) -> PricingResult:
        """The result, lines in the order they were given.

        Every object the shares and the lines need is built here, all of a kind at once: the
        instances first, then one field of all of them at a time, through the slots' own
        setters (past the frozen ``__setattr__``) driven by ``starmap`` over ``zip``, in C.
        ``zip`` hands ``starmap`` one argument tuple it reuses for every call, so no call
        packs its arguments (the cost of a setter called from bytecode). The values are the
        engine's own, already checked: discounts between zero and what was left of a line,
        ids and prices from checked lines.
        """
        currency = self.currency
        built, consume = _built, _consume
        # The shares: one Money each, shared by its LineAdjustment (on the line) and its
        # LineShare (on the Adjustment).
        count = len(self.share_discounts)
        moneys = built(Money, count)
        consume(starmap(_money_minor, zip(moneys, self.share_discounts, strict=True)))
        consume(starmap(_money_currency, zip(moneys, repeat(currency, count), strict=True)))
        line_adjustments = built(LineAdjustment, count)
        consume(
            starmap(_adjustment_promotion, zip(line_adjustments, self.share_offers, strict=True))
        )
        consume(starmap(_adjustment_stage, zip(line_adjustments, self.share_stages, strict=True)))
        consume(starmap(_adjustment_amount, zip(line_adjustments, moneys, strict=True)))
        consume(starmap(_adjustment_code, zip(line_adjustments, self.share_codes, strict=True)))
        shares = built(LineShare, count)
        share_lines = self.share_lines
        consume(
            starmap(_share_line, zip(shares, [line.line_id for line in share_lines], strict=True))
        )
        consume(starmap(_share_amount, zip(shares, moneys, strict=True)))
        on_lines = [line.adjustments for line in share_lines]
        consume(starmap(list.append, zip(on_lines, line_adjustments, strict=True)))
        adjustments = _from_rows(
            Adjustment,
            _ADJUSTMENT_SETTERS,
            [
                (offer_id, stage, amount, tuple(shares[start:end]), shipping, code)
                for offer_id, stage, amount, start, end, shipping, code in self.adjustments
            ],
        )
        explanations = _from_rows(Explanation, _EXPLANATION_SETTERS, self.explanations)
        # One PricedLine per line, in the order given, its discount as Money.
        given = self.given
        count = len(given)
        sources = [line.source for line in given]
        discounts = built(Money, count)
        consume(
            starmap(_money_minor, zip(discounts, [line.discount for line in given], strict=True))
        )
        consume(starmap(_money_currency, zip(discounts, repeat(currency, count), strict=True)))
        line_id, sku, quantity, unit_price, category, merchant_id, adjusted, discounted = (
            _PRICED_SETTERS
        )
        priced = built(PricedLine, count)
        consume(starmap(line_id, zip(priced, [line.line_id for line in given], strict=True)))
        consume(starmap(sku, zip(priced, [source.sku for source in sources], strict=True)))
        consume(starmap(quantity, zip(priced, [line.qty for line in given], strict=True)))
        consume(
            starmap(unit_price, zip(priced, [source.unit_price for source in sources], strict=True))
        )
        consume(
            starmap(category, zip(priced, [source.category for source in sources], strict=True))
        )
        consume(
            starmap(
                merchant_id, zip(priced, [source.merchant_id for source in sources], strict=True)
            )
        )
        consume(
            starmap(adjusted, zip(priced, [tuple(line.adjustments) for line in given], strict=True))
        )
        consume(starmap(discounted, zip(priced, discounts, strict=True)))
        lines = tuple(priced)
        return PricingResult(
            currency=currency,
            lines=lines,
            adjustments=adjustments,
            entitlements=tuple(self.entitlements),
            explanations=explanations,
            claims=tuple(self.claims),
            shipping_fee=self.shipping_fee,
            shipping_discount=Money(self.shipping_discount, currency),
            sales_mode=self.sales_mode or "standard",
            offer_ends_at=min(self.ends) if self.ends else None,
        )


def _cheapest_first(
    entries: list[tuple[_Line, int, int]], count: int
) -> list[tuple[_Line, int, int]]:
    """Pool entries ``(line, units, amount)`` by amount per unit, then line: exact, in ints.

    With ``common`` the least common multiple of the units, ``amount * (common // units)`` is
    ``amount / units`` scaled by the same ``common`` for every entry: an exact int key (a
    ``Fraction`` key or a comparison function cost several times more). ``count`` (more than
    any line's index) makes room for the line's index below it, so ties go to the earlier line.
    Lines of many different quantities can make ``common`` huge; then the entries are compared
    pairwise by cross-multiplying instead (:func:`_by_unit_amount`), which orders them the same.
    """
    common = math.lcm(*(units for _, units, _ in entries))
    if common > _MAX_COMMON_UNITS:
        return sorted(entries, key=_BY_UNIT_AMOUNT)
    keys = [amount * (common // units) * count + line.index for line, units, amount in entries]
    return [entries[position] for position in sorted(range(len(keys)), key=keys.__getitem__)]


_MAX_COMMON_UNITS = 2**32  # beyond it, the int keys grow long enough to cost more than comparing


def _by_unit_amount(one: tuple[_Line, int, int], other: tuple[_Line, int, int]) -> int:
    """Order pool entries by amount per unit, then line: exact, by cross-multiplying."""
    _, units, amount = one
    _, other_units, other_amount = other
    return amount * other_units - other_amount * units or one[0].index - other[0].index


_BY_UNIT_AMOUNT = functools.cmp_to_key(_by_unit_amount)


_RULES: dict[type, Callable[[_Pricing, Any, _Pool, int, int], _Outcome]] = {
    PercentOff: _Pricing.percent_off,
    AmountOff: _Pricing.amount_off,
    FixedPrice: _Pricing.fixed_price,
    BuyXGetY: _Pricing.buy_x_get_y,
    Threshold: _Pricing.threshold,
    Tiered: _Pricing.tiered,
    FreeShipping: _Pricing.free_shipping,
    Rebate: _Pricing.rebate,
    Points: _Pricing.points,
}


def _offers(promotions: Iterable[Promotion | Coupon], currency: str) -> list[_Offer]:
    offers: list[_Offer] = []
    ids: set[str] = set()
    codes: set[str] = set()
    for item in promotions:
        if isinstance(item, Coupon):
            if item.code in codes:
                raise InvalidInput("coupons", item.code, "the same code was applied twice")
            codes.add(item.code)
            offer = _Offer(item.promotion, item)
        elif isinstance(item, Promotion):
            offer = _Offer(item, None)
        else:
            raise InvalidInput("promotions", item, "each must be a Promotion or a Coupon")
        if offer.id in ids:
            raise InvalidInput(
                "promotions", offer.id, "a promotion was given twice (or by two of its codes)"
            )
        ids.add(offer.id)
        theirs = offer.promotion.currency
        if theirs is not None and theirs != currency:
            raise CurrencyMismatch(currency, theirs, f"apply {offer.code or offer.id!r} to")
        offers.append(offer)
    return offers


def price(
    lines: Sequence[PricingLine | OrderLine],
    promotions: Iterable[Promotion | Coupon],
    context: PricingContext,
) -> PricingResult:
    """Price lines against promotions and coupons: pure, deterministic, explained.

    Args:
        lines: The cart's lines (:class:`PricingLine`, or order lines of
            ``context.merchant_id``), at list prices; at least one, ids unique, one currency.
        promotions: The promotions that may apply and the coupons the buyer entered.
        context: The time, the buyer, the usage snapshot of the limits and the shipping fee.

    Returns:
        Every adjustment, the final amounts, one explanation per promotion, the entitlements
        and the limit claims to reserve.

    Raises:
        InvalidInput: No lines, duplicate line ids, a promotion given twice, a coupon code
            applied twice, something that is not a line or a promotion.
        CurrencyMismatch: Lines, the shipping fee or a promotion (a coupon of another
            currency) in different currencies.

    """
    if not isinstance(context, PricingContext):
        raise InvalidInput("context", context, "must be a PricingContext")
    pricing = _Pricing(lines, context)
    pricing.run(_offers(promotions, pricing.currency))
    return pricing.result()


def limit_keys(promotions: Iterable[Promotion | Coupon], buyer_id: str) -> list[str]:
    """The limit counters pricing these promotions for ``buyer_id`` reads from the usage.

    Read them from the :class:`~ecommerce_core.ports.PromotionLedger` (``usage(keys)``) and
    pass them as :attr:`PricingContext.usage`.
    """
    keys: list[str] = []
    for item in promotions:
        offer = _Offer(item.promotion, item) if isinstance(item, Coupon) else _Offer(item, None)
        keys.extend(limit.key(offer.id, buyer_id=buyer_id) for limit in offer.limits)
    return list(dict.fromkeys(keys))
