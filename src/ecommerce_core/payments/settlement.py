"""How each money operation becomes postings: split over lines, commission, refund sources.

Pure functions over a payment's own postings (what it already moved) and the allocation its
order stores (what each line costs, after discounts). Every function returns postings whose
keys are ``"{key}/{n}"``, so the same operation always yields the same keys.

- A capture, collection or draw is split over the lines by what each still lacks, largest
  remainder first; anything beyond the order's total (a provider's duplicate capture) is booked
  at the order level, to be given back.
- Settling money to the merchant charges commission on the running total (one rounding for
  the whole order), split over the lines by what each settles.
- A refund takes a line's money from where it still is: held money first, then the merchant's
  proceeds and the commission in proportion. A carrier's COD fee is never taken back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Final

from ecommerce_core.errors import InvalidInput
from ecommerce_core.money import MAX_MINOR_UNITS, Money, _allocate, allocate_minor
from ecommerce_core.money import _result as _money  # Money from known-good ints (hot path)
from ecommerce_core.payments.ledger import (
    _COMMISSION,
    HELD_KINDS,
    ORDER_LEVEL,
    Account,
    AccountKind,
    Movement,
    Posting,
    _posting,
    _sorted_balances,
    balances_by_line,
)
from ecommerce_core.payments.policy import PaymentPolicy

__all__ = [
    "Allocation",
    "collect_postings",
    "payer_postings",
    "refund_postings",
    "release_postings",
    "remit_postings",
    "split",
]

Allocation = tuple[tuple[str, Money], ...]
"""What each line of an order costs, in order: ``((line_id, amount), ...)``."""

_SETTLING: Final = frozenset({Movement.CAPTURE, Movement.RELEASE, Movement.DRAW})


def split(amount: Money, weights: Sequence[tuple[str, int]]) -> list[tuple[str, Money]]:
    """Split ``amount`` over line ids by integer weights (largest remainder); zero shares dropped.

    Raises:
        InvalidInput: A negative amount, or weights that are all zero while the amount is not.

    """
    if amount.is_zero:
        return []
    shares = allocate_minor(amount.minor, [w for _, w in weights])
    return [
        (line_id, Money(share, amount.currency))
        for (line_id, _), share in zip(weights, shares, strict=True)
        if share
    ]


class _Book:
    """Postings of one operation, keyed ``{key}/1``, ``{key}/2``, ...

    What every posting of the book shares (order id, movement, time; the keys are built here,
    never empty) is checked once, the way :class:`Posting`'s constructor checks it; each posting
    then checks by type only what differs (line id, accounts, amount) and is built slot by slot.
    Anything unusual goes through the constructor, which raises exactly what it raises.
    """

    def __init__(
        self, key: str, order_id: str, movement: Movement, at: datetime, currency: str = ""
    ) -> None:
        self.key, self.order_id, self.movement, self.at = key, order_id, movement, at
        self.currency = currency  # of the amounts :meth:`add` is given in minor units
        self.postings: list[Posting] = []
        self.plain = (
            type(order_id) is str
            and order_id.strip() != ""
            and type(movement) is Movement
            and type(at) is datetime
            and at.tzinfo is UTC
        )

    def move(self, line_id: str, source: Account, target: Account, amount: Money) -> None:
        if amount.minor <= 0:  # Money.is_positive, without the property's frame
            return
        number = len(self.postings) + 1
        if (
            self.plain
            and type(line_id) is str
            and type(source) is Account
            and type(target) is Account
            and type(amount) is Money
            and (source.kind is not target.kind or source.owner != target.owner)
        ):
            posting = _posting(
                f"{self.key}/{number}",
                self.order_id,
                line_id,
                source,
                target,
                amount,
                self.movement,
                self.at,
            )
        else:  # let the constructor check (and raise) exactly as it does
            posting = Posting(
                f"{self.key}/{number}",
                self.order_id,
                line_id,
                source,
                target,
                amount,
                self.movement,
                self.at,
            )
        self.postings.append(posting)

    def add(self, line_id: str, source: Account, target: Account, minor: int) -> None:
        """:meth:`move` of ``minor`` units of the book's currency (a share it computed)."""
        if minor <= 0:
            return
        amount = _money(minor, self.currency)
        if (
            self.plain
            and type(line_id) is str
            and type(source) is Account
            and type(target) is Account
            and (source.kind is not target.kind or source.owner != target.owner)
        ):  # what move checks, the amount being Money already: one frame less per posting
            postings = self.postings
            postings.append(
                _posting(
                    f"{self.key}/{len(postings) + 1}",
                    self.order_id,
                    line_id,
                    source,
                    target,
                    amount,
                    self.movement,
                    self.at,
                )
            )
        else:
            self.move(line_id, source, target, amount)


def _paid_in_by_line(postings: Iterable[Posting]) -> dict[str, int]:
    paid: dict[str, int] = {}
    for posting in postings:
        if posting.source.kind in (AccountKind.BUYER, AccountKind.CREDIT_PROVIDER):
            paid[posting.line_id] = paid.get(posting.line_id, 0) + posting.amount.minor
    return paid


def _fill(minor: int, allocation: Allocation, done: Iterable[Posting]) -> list[tuple[str, int]]:
    """Split ``minor`` incoming units over the lines by what each still lacks; excess: order level.

    Largest remainder, zero shares dropped (what :func:`split` gives), in minor units.
    """
    paid = _paid_in_by_line(done) if done else {}
    lacking: list[tuple[str, int]] = []
    room = 0
    for line_id, cost in allocation:  # a loop: no frames for an order's few lines
        weight = cost.minor - paid.get(line_id, 0) if paid else cost.minor
        weight = max(weight, 0)
        lacking.append((line_id, weight))
        room += weight
    fitting = min(minor, room)
    if fitting == room:  # every line gets exactly what it lacks (what the split would give)
        shares = {line_id: weight for line_id, weight in lacking if weight}
    elif fitting:  # 0 < fitting < room: the weights are non-negative ints summing to room
        weights = [weight for _, weight in lacking]
        parts = _allocate(fitting, weights, room)
        shares = {line_id: part for (line_id, _), part in zip(lacking, parts, strict=True) if part}
    else:
        shares = {}
    if minor > fitting:
        shares[ORDER_LEVEL] = shares.get(ORDER_LEVEL, 0) + minor - fitting
    return list(shares.items())


def _settle(
    book: _Book,
    shares: list[tuple[str, int]],
    *,
    source: Account,
    merchant: Account,
    policy: PaymentPolicy,
    done: Iterable[Posting],
) -> None:
    """Move ``shares`` from ``source`` to the merchant, charging commission on the running total.

    The shares are positive minor units of the book's currency.
    """
    if not shares:
        return
    settled_before = charged_before = 0
    for posting in done:
        if posting.movement in _SETTLING and posting.target.kind in (
            AccountKind.MERCHANT,
            AccountKind.COMMISSION,
        ):
            settled_before += posting.amount.minor
            if posting.target.kind is AccountKind.COMMISSION:
                charged_before += posting.amount.minor
    keys: list[str] = []
    minors: list[int] = []
    now = 0
    for line_id, minor in shares:  # one loop: no frames for an order's few lines
        keys.append(line_id)
        minors.append(minor)
        now += minor
    gross = _money(settled_before + now, book.currency)
    due = policy.commission_total(gross).minor - charged_before
    cuts = dict(zip(keys, _allocate(due, minors, now), strict=True)) if due > 0 else {}
    platform = _COMMISSION
    if not (
        book.plain
        and type(source) is Account
        and type(merchant) is Account
        and (source.kind is not merchant.kind or source.owner != merchant.owner)
        and (source.kind is not platform.kind or source.owner != platform.owner)
    ):
        for line_id, minor in shares:
            cut = cuts.get(line_id, 0)  # zero shares are dropped: moved not
            book.add(line_id, source, merchant, minor - cut)
            book.add(line_id, source, platform, cut)
        return
    # What book.add checks per posting is checked above once (the accounts are the same for
    # every share); per share only the line id's type is left: the postings are built here.
    postings, key, order_id = book.postings, book.key, book.order_id
    movement, at, currency = book.movement, book.at, book.currency
    for line_id, minor in shares:
        cut = cuts.get(line_id, 0)
        if type(line_id) is not str:  # let book.add check (and raise) exactly as it does
            book.add(line_id, source, merchant, minor - cut)
            book.add(line_id, source, platform, cut)
            continue
        if minor - cut > 0:
            postings.append(
                _posting(
                    f"{key}/{len(postings) + 1}",
                    order_id,
                    line_id,
                    source,
                    merchant,
                    _money(minor - cut, currency),
                    movement,
                    at,
                )
            )
        if cut > 0:
            postings.append(
                _posting(
                    f"{key}/{len(postings) + 1}",
                    order_id,
                    line_id,
                    source,
                    platform,
                    _money(cut, currency),
                    movement,
                    at,
                )
            )


def payer_postings(
    *,
    key: str,
    order_id: str,
    allocation: Allocation,
    done: Sequence[Posting],
    payer: Account,
    amount: Money,
    hold: bool,
    merchant: Account,
    policy: PaymentPolicy,
    movement: Movement,
    at: datetime,
) -> tuple[Posting, ...]:
    """Money coming in from the payer: into escrow (``hold``), or settled to the merchant.

    Args:
        key: The operation's key.
        order_id: The order.
        allocation: What each line costs.
        done: The payment's earlier postings.
        payer: Where the money comes from (the buyer, or a credit provider).
        amount: How much came in.
        hold: ``True`` to hold it in escrow, ``False`` to settle it at once.
        merchant: The merchant's account.
        policy: The commission rate and cap.
        movement: :attr:`Movement.CAPTURE` or :attr:`Movement.DRAW`.
        at: When.

    """
    book = _Book(key, order_id, movement, at, amount.currency)
    shares = _fill(amount.minor, allocation, done)
    if hold:
        escrow = Account.escrow()
        for line_id, share in shares:
            book.add(line_id, payer, escrow, share)
    else:
        _settle(book, shares, source=payer, merchant=merchant, policy=policy, done=done)
    return tuple(book.postings)


def collect_postings(
    *,
    key: str,
    order_id: str,
    allocation: Allocation,
    buyer: Account,
    carrier: Account,
    amount: Money,
    at: datetime,
) -> tuple[Posting, ...]:
    """Cash collected at the door: from the buyer into the carrier's COD float, split by line."""
    book = _Book(key, order_id, Movement.COLLECT, at, amount.currency)
    for line_id, share in _fill(amount.minor, allocation, ()):
        book.add(line_id, buyer, carrier, share)
    return tuple(book.postings)


def _held(done: Iterable[Posting], kind: AccountKind) -> list[tuple[str, Account, int]]:
    """What accounts of ``kind`` hold, per line and account, in minor units (positive only)."""
    return [
        (line_id, account, minor)
        for (line_id, account), minor in _sorted_balances(balances_by_line(done))
        if account.kind is kind and minor > 0
    ]


def _currency(done: Iterable[Posting]) -> str:
    return next(iter(done)).amount.currency


def release_postings(
    *,
    key: str,
    order_id: str,
    done: Sequence[Posting],
    lines: Iterable[str] | None,
    merchant: Account,
    policy: PaymentPolicy,
    at: datetime,
) -> tuple[Posting, ...]:
    """Release what escrow holds for ``lines`` (every line if ``None``) to the merchant."""
    wanted = None if lines is None else set(lines)
    held = [
        (line_id, minor)
        for line_id, _, minor in (_held(done, AccountKind.ESCROW) if done else [])
        if wanted is None or line_id in wanted
    ]
    if not held:
        return ()
    book = _Book(key, order_id, Movement.RELEASE, at, _currency(done))
    _settle(book, held, source=Account.escrow(), merchant=merchant, policy=policy, done=done)
    return tuple(book.postings)


def remit_postings(
    *,
    key: str,
    order_id: str,
    done: Sequence[Posting],
    merchant: Account,
    policy: PaymentPolicy,
    at: datetime,
) -> tuple[Posting, ...]:
    """Remit the cash a carrier holds for the order: to the merchant, less the carrier's fee."""
    held = _held(done, AccountKind.CARRIER_COD) if done else []
    if not held:
        return ()
    currency = _currency(done)
    book = _Book(key, order_id, Movement.REMIT, at, currency)
    minors = [minor for _, _, minor in held]
    total = 0
    for minor in minors:
        total += minor
        if total > MAX_MINOR_UNITS:  # raise where adding the amounts up as Money raises
            _money(total, currency)
    fee = policy.cod_fee_on(_money(total, currency)).minor
    cuts = allocate_minor(fee, minors) if fee else [0] * len(held)  # what split gives
    fees = {line_id: cut for (line_id, _, _), cut in zip(held, cuts, strict=True) if cut}
    for line_id, float_account, minor in held:
        cut = fees.get(line_id, 0)
        book.add(line_id, float_account, merchant, minor - cut)
        book.add(line_id, float_account, Account.cod_fee(float_account.owner), cut)
    return tuple(book.postings)


def refund_postings(
    *,
    key: str,
    order_id: str,
    done: Sequence[Posting],
    amounts: Mapping[str, Money],
    payer: Account,
    at: datetime,
) -> tuple[Posting, ...]:
    """Give ``amounts`` (per line) back to the payer, from where each line's money still is.

    Raises:
        InvalidInput: A line does not have that much refundable money.

    """
    ordered = _sorted_balances(balances_by_line(done))  # not changed below: sorted once
    book = _Book(key, order_id, Movement.REFUND, at)
    for line_id, amount in amounts.items():
        wanted = amount.minor
        for (line, account), minor in ordered:
            if line == line_id and account.kind in HELD_KINDS and minor > 0 and wanted:
                take = min(minor, wanted)
                book.move(line_id, account, payer, Money(take, amount.currency))
                wanted -= take
        if not wanted:
            continue
        sources = [
            (account, minor)
            for (line, account), minor in ordered
            if line == line_id
            and account.kind in (AccountKind.MERCHANT, AccountKind.COMMISSION)
            and minor > 0
        ]
        if wanted > sum(minor for _, minor in sources):
            raise InvalidInput("amount", amount, f"more than line {line_id!r} can refund")
        shares = allocate_minor(wanted, [minor for _, minor in sources])
        for (account, _), share in zip(sources, shares, strict=True):
            book.move(line_id, account, payer, Money(share, amount.currency))
    return tuple(book.postings)
