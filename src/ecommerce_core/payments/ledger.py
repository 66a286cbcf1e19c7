"""The double-entry ledger: typed accounts, balanced postings, and what each order's money did.

Every money movement is one :class:`Posting`: a positive amount of one currency moving from a
``source`` account to a ``target`` account, for one order (and one of its lines). A posting
balances by construction: what leaves the source is exactly what reaches the target, so the
balances of all accounts always sum to zero.

Accounts fall in five groups (:class:`AccountKind`):

- **payer side**: the buyer's own money (card, wallet, cash), a deposit held aside for them,
  and a credit provider who lends to the buyer. Money *paid in* leaves these; money
  *refunded* returns to them.
- **held**: escrow the platform holds for an order, and cash a carrier collected at the door
  but has not remitted yet.
- **released**: the merchant's proceeds.
- **commission**: the platform's commission and the carrier's COD fee. The COD fee is *kept*:
  a refund never takes it back.
- **rebate** (:data:`REBATE_KINDS`): cashback credited to a buyer (``rebate_payable``) and the
  platform's rebate budget that funds it (``rebate_expense``; a merchant-funded rebate comes
  from the merchant's account). Rebate postings are not the order's money:
  :func:`order_money` leaves them out.

:func:`order_money` folds an order's postings into an :class:`OrderMoney`: paid in, held,
released, commission, refunded and still refundable, per line too. For every order and every
line, ``paid_in == released + commission + refunded + held``.

Example:
    >>> from datetime import UTC, datetime
    >>> from ecommerce_core.money import Money
    >>> at = datetime(2026, 1, 1, tzinfo=UTC)
    >>> buyer, escrow = Account.buyer("alice"), Account.escrow()
    >>> paid = Posting("p/1", "o-1", "1", buyer, escrow, Money(7600, "CNY"), Movement.CAPTURE, at)
    >>> view = order_money("o-1", "CNY", [paid])
    >>> str(view.paid_in), str(view.held), str(view.refundable)
    ('76.00 CNY', '76.00 CNY', '76.00 CNY')

"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final

import attrs

from ecommerce_core._slots import twin
from ecommerce_core._validation import to_member
from ecommerce_core.errors import CurrencyMismatch, InvalidInput
from ecommerce_core.money import Money

__all__ = [
    "COMMISSION_KINDS",
    "HELD_KINDS",
    "KEPT_KINDS",
    "ORDER_LEVEL",
    "PAYER_KINDS",
    "REBATE_KINDS",
    "Account",
    "AccountKind",
    "LineMoney",
    "Movement",
    "OrderMoney",
    "Posting",
    "balances_by_line",
    "order_money",
]

ORDER_LEVEL: Final = ""
"""The line id of money that belongs to the order, not to a line (the shipping fee, a surplus).

Order line ids are never empty, so it cannot collide with one.
"""


class AccountKind(enum.StrEnum):
    """The kinds of account money moves between."""

    BUYER = "buyer"
    """Payer side: the buyer's own money (owner: the buyer id)."""
    CREDIT_PROVIDER = "credit_provider"
    """Payer side: who lends to the buyer for a credit payment (owner: the provider id)."""
    ESCROW = "escrow"
    """Held: money the platform holds until receipt is confirmed (owner: the platform)."""
    CARRIER_COD = "carrier_cod"
    """Held: cash a carrier collected at the door, not yet remitted (owner: the carrier id)."""
    MERCHANT = "merchant"
    """Released: the merchant's proceeds (owner: the merchant id)."""
    COMMISSION = "commission"
    """Commission: the platform's cut (owner: the platform)."""
    COD_FEE = "cod_fee"
    """Commission, kept on refund: the carrier's fee for collecting cash (owner: the carrier)."""
    REBATE_PAYABLE = "rebate_payable"
    """Rebate: cashback credited to a beneficiary, owed to them (owner: the beneficiary id)."""
    REBATE_EXPENSE = "rebate_expense"
    """Rebate: the platform's cashback budget, which funds platform rebates (owner: platform)."""
    DEPOSIT = "deposit"
    """Payer side: a bidder's deposit (保证金) the platform holds aside (owner: the bidder id).

    It is still the buyer's money, not an order's: holding and releasing it are payer-side
    movements (left out of :func:`order_money`), while a deposit applied to the winner's order,
    or forfeited, is paid in from it."""


PAYER_KINDS: Final = frozenset(
    {AccountKind.BUYER, AccountKind.CREDIT_PROVIDER, AccountKind.DEPOSIT}
)
"""Where paid-in money comes from and refunded money goes back to."""
HELD_KINDS: Final = frozenset({AccountKind.ESCROW, AccountKind.CARRIER_COD})
"""Accounts whose balance for an order is money still held."""
COMMISSION_KINDS: Final = frozenset({AccountKind.COMMISSION, AccountKind.COD_FEE})
"""Accounts whose balance for an order is commission (and fees)."""
KEPT_KINDS: Final = frozenset({AccountKind.COD_FEE})
"""Commission a refund never takes back."""
REBATE_KINDS: Final = frozenset({AccountKind.REBATE_PAYABLE, AccountKind.REBATE_EXPENSE})
"""Rebate accounts: a posting touching one is cashback, not the order's paid-in money, and
:func:`order_money` leaves it out (the ledger as a whole still sums to zero)."""

PLATFORM: Final = "platform"


def _check_owner(_: object, __: object, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("owner", value, "an account needs a non-empty owner id")


def _to_account_kind(value: AccountKind | str) -> AccountKind:
    # A member passes through (calling the enum costs about a microsecond per account built);
    # anything else converts, or is InvalidInput.
    return value if type(value) is AccountKind else to_member(AccountKind, value, "kind")


@attrs.frozen(order=True, cache_hash=True)  # hashed on every ledger write; its kind's hash is slow
class Account:
    """An account: a kind and whose it is.

    Attributes:
        kind: What the account is for.
        owner: Whose it is: the buyer, merchant, carrier or provider id, or ``"platform"``.

    """

    kind: AccountKind = attrs.field(converter=_to_account_kind)
    owner: str = attrs.field(validator=_check_owner)

    @classmethod
    def buyer(cls, buyer_id: str) -> Account:
        """The buyer's own money."""
        if cls is Account:
            return _interned(AccountKind.BUYER, buyer_id)
        return cls(AccountKind.BUYER, buyer_id)

    @classmethod
    def credit_provider(cls, provider_id: str) -> Account:
        """A credit provider's money lent to buyers."""
        if cls is Account:
            return _interned(AccountKind.CREDIT_PROVIDER, provider_id)
        return cls(AccountKind.CREDIT_PROVIDER, provider_id)

    @classmethod
    def escrow(cls) -> Account:
        """The platform's escrow."""
        if cls is Account:
            return _ESCROW
        return cls(AccountKind.ESCROW, PLATFORM)

    @classmethod
    def carrier_cod(cls, carrier_id: str) -> Account:
        """Cash a carrier collected on delivery and holds until it remits it."""
        if cls is Account:
            return _interned(AccountKind.CARRIER_COD, carrier_id)
        return cls(AccountKind.CARRIER_COD, carrier_id)

    @classmethod
    def merchant(cls, merchant_id: str) -> Account:
        """A merchant's proceeds."""
        if cls is Account:
            return _interned(AccountKind.MERCHANT, merchant_id)
        return cls(AccountKind.MERCHANT, merchant_id)

    @classmethod
    def commission(cls) -> Account:
        """The platform's commission."""
        if cls is Account:
            return _COMMISSION
        return cls(AccountKind.COMMISSION, PLATFORM)

    @classmethod
    def cod_fee(cls, carrier_id: str) -> Account:
        """A carrier's fees for collecting cash on delivery."""
        if cls is Account:
            return _interned(AccountKind.COD_FEE, carrier_id)
        return cls(AccountKind.COD_FEE, carrier_id)

    @classmethod
    def rebate_payable(cls, beneficiary_id: str) -> Account:
        """Cashback credited to a beneficiary (the buyer), owed to them."""
        if cls is Account:
            return _interned(AccountKind.REBATE_PAYABLE, beneficiary_id)
        return cls(AccountKind.REBATE_PAYABLE, beneficiary_id)

    @classmethod
    def rebate_expense(cls) -> Account:
        """The platform's cashback budget, which pays platform-funded rebates."""
        return cls(AccountKind.REBATE_EXPENSE, PLATFORM)

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.owner}"

    @classmethod
    def deposit(cls, bidder_id: str) -> Account:
        """The deposits (保证金) the platform holds for a bidder."""
        if cls is Account:
            return _interned(AccountKind.DEPOSIT, bidder_id)
        return cls(AccountKind.DEPOSIT, bidder_id)


_ESCROW: Final = Account(AccountKind.ESCROW, PLATFORM)
_COMMISSION: Final = Account(AccountKind.COMMISSION, PLATFORM)

# Accounts the named constructors built, per kind and owner: an account is a frozen value, so
# one instance serves every posting of that account (built once, its hash computed once). A
# long-running process meets many buyers: a table that fills up is emptied and starts again.
_INTERNED: dict[AccountKind, dict[str, Account]] = {kind: {} for kind in AccountKind}
_INTERNED_LIMIT: Final = 4096


def _interned(kind: AccountKind, owner: str) -> Account:
    """``Account(kind, owner)``: the one already built for that owner, or a new one."""
    table = _INTERNED[kind]
    if type(owner) is str:
        found = table.get(owner)
        if found is not None:
            return found
    account = Account(kind, owner)  # checks the owner, and raises what the class raises
    if type(owner) is str:
        if len(table) >= _INTERNED_LIMIT:
            table.clear()
        table[owner] = account
    return account


class Movement(enum.StrEnum):
    """Why money moved: the business operation behind a posting."""

    CAPTURE = "capture"
    """A payment captured: payer to escrow, or straight to the merchant and commission."""
    COLLECT = "collect"
    """A carrier collected cash at the door: buyer to the carrier's COD float."""
    DRAW = "draw"
    """A credit provider paid for the buyer: provider to the merchant and commission."""
    RELEASE = "release"
    """Escrow released: escrow to the merchant and commission."""
    REMIT = "remit"
    """A carrier remitted the cash it collected: float to the merchant and the COD fee."""
    REFUND = "refund"
    """Money given back to whoever paid it in."""
    REPAY = "repay"
    """A buyer repaid a credit installment (and any penalty): buyer to provider."""
    CASHBACK = "cashback"
    """A credit provider paid back a buyer who had repaid more than a refund left owing."""
    REBATE_CREDIT = "rebate_credit"
    """A rebate was credited: its funder (platform budget or merchant) to the beneficiary."""
    REBATE_CLAWBACK = "rebate_clawback"
    """A credited rebate was clawed back after a refund: the beneficiary back to its funder."""
    FORFEIT = "forfeit"
    """A deposit kept because its owner broke the rules (an auction winner who did not pay)."""


def _check_text(field: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(field, value, "must be a non-empty string")


def _to_movement(value: Movement | str) -> Movement:
    # A member passes through; anything else converts, or is InvalidInput.
    return value if type(value) is Movement else to_member(Movement, value, "movement")


@attrs.frozen
class Posting:
    """One balanced money movement: ``amount`` leaves ``source`` and reaches ``target``.

    Attributes:
        key: Unique per movement; appending a posting with a known key is a no-op when it is the
            same posting, and an :class:`~ecommerce_core.errors.IdempotencyConflict` otherwise.
        order_id: The order the money is for.
        line_id: The order line, or :data:`ORDER_LEVEL` for the shipping fee and surpluses.
        source: The account the money leaves.
        target: The account the money reaches.
        amount: How much: positive, integer minor units, one currency.
        movement: Why it moved.
        at: When.

    Raises:
        InvalidInput: An empty key or order id, a non-positive amount, the same account on both
            sides, a naive time.

    """

    key: str
    order_id: str
    line_id: str
    source: Account
    target: Account
    amount: Money
    movement: Movement = attrs.field(converter=_to_movement)
    at: datetime

    def __attrs_post_init__(self) -> None:
        _check_text("key", self.key)
        _check_text("order_id", self.order_id)
        if not isinstance(self.line_id, str):
            raise InvalidInput("line_id", self.line_id, "must be a string ('' for order level)")
        if not isinstance(self.source, Account) or not isinstance(self.target, Account):
            raise InvalidInput("account", (self.source, self.target), "must be Accounts")
        if self.source == self.target:
            raise InvalidInput("target", self.target, "money must move between two accounts")
        if not isinstance(self.amount, Money) or not self.amount.is_positive:
            raise InvalidInput("amount", self.amount, "a posting moves a positive amount")
        if not isinstance(self.at, datetime) or self.at.utcoffset() is None:
            raise InvalidInput("at", self.at, "must be a timezone-aware datetime")


_new = object.__new__
_POSTING_TWIN: Final = twin(Posting)


def _posting(  # noqa: PLR0917  # the posting's eight fields, in order
    key: str,
    order_id: str,
    line_id: str,
    source: Account,
    target: Account,
    amount: Money,
    movement: Movement,
    at: datetime,
) -> Posting:
    """A :class:`Posting` built slot by slot, past its checks: only for values known to pass them.

    For settlement's books, which check what their postings share once and what differs per
    posting by type (see ``settlement._Book``); anything else calls the class.
    """
    posting: Any = _new(_POSTING_TWIN)  # plain stores, then a Posting (see _slots.twin)
    posting.key = key
    posting.order_id = order_id
    posting.line_id = line_id
    posting.source = source
    posting.target = target
    posting.amount = amount
    posting.movement = movement
    posting.at = at
    posting.__class__ = Posting
    return posting  # type: ignore[no-any-return]  # a Posting now


@attrs.frozen
class LineMoney:
    """What one line's money did (or the order-level money, under :data:`ORDER_LEVEL`).

    Attributes:
        line_id: The line.
        paid_in: Money that came in from the payer side.
        held: Money still held (escrow, a carrier's uncollected float).
        released: Money that reached the merchant.
        commission: Commission and fees kept by the platform and its partners.
        kept: The part of ``commission`` a refund never takes back (the carrier's COD fee).
        refunded: Money that went back to the payer side.

    """

    line_id: str
    paid_in: Money
    held: Money
    released: Money
    commission: Money
    kept: Money
    refunded: Money

    @property
    def refundable(self) -> Money:
        """What can still be refunded: paid in, less refunds and what is kept."""
        return self.paid_in - self.refunded - self.kept

    @property
    def balanced(self) -> bool:
        """Whether ``paid_in == released + commission + refunded + held``."""
        return self.paid_in == self.released + self.commission + self.refunded + self.held


@attrs.frozen
class OrderMoney:
    """What an order's money did, in total and per line.

    Attributes:
        order_id: The order.
        currency: Its currency.
        lines: Per line id (the order level under :data:`ORDER_LEVEL`), only lines with money.

    """

    order_id: str
    currency: str
    lines: Mapping[str, LineMoney]
    _totals: dict[str, int] | None = attrs.field(
        default=None, init=False, repr=False, eq=False, alias="_totals"
    )

    def _sum(self, field: str) -> Money:
        totals = self._totals  # set by order_money, which folded them already
        if totals is not None:
            return Money(totals[field], self.currency)
        return sum(
            (getattr(line, field) for line in self.lines.values()), Money.zero(self.currency)
        )

    @property
    def paid_in(self) -> Money:
        """Money that came in from the payer side."""
        return self._sum("paid_in")

    @property
    def held(self) -> Money:
        """Money still held."""
        return self._sum("held")

    @property
    def released(self) -> Money:
        """Money that reached the merchant."""
        return self._sum("released")

    @property
    def commission(self) -> Money:
        """Commission and fees kept by the platform and its partners."""
        return self._sum("commission")

    @property
    def refunded(self) -> Money:
        """Money that went back to the payer side."""
        return self._sum("refunded")

    @property
    def refundable(self) -> Money:
        """What can still be refunded."""
        return self._sum("refundable")

    @property
    def balanced(self) -> bool:
        """Whether ``paid_in == released + commission + refunded + held``, for every line too."""
        totals = self.paid_in == self.released + self.commission + self.refunded + self.held
        return totals and all(line.balanced for line in self.lines.values())

    def line(self, line_id: str) -> LineMoney:
        """The money of one line (all zero if it has none)."""
        found = self.lines.get(line_id)
        if found is not None:
            return found
        zero = Money.zero(self.currency)
        return LineMoney(line_id, zero, zero, zero, zero, zero, zero)


def balances_by_line(postings: Iterable[Posting]) -> dict[tuple[str, Account], int]:
    """Net minor units per ``(line id, account)`` over ``postings`` (in minus out)."""
    out: dict[tuple[str, Account], int] = {}
    for posting in postings:
        minor = posting.amount.minor
        source = (posting.line_id, posting.source)
        target = (posting.line_id, posting.target)
        out[source] = out.get(source, 0) - minor
        out[target] = out.get(target, 0) + minor
    return out


def _by_line_and_account(item: tuple[tuple[str, Account], int]) -> tuple[str, str, str]:
    (line_id, account), _ = item
    return line_id, account.kind, account.owner


def _sorted_balances(
    balances: Mapping[tuple[str, Account], int],
) -> list[tuple[tuple[str, Account], int]]:
    """``sorted(balances.items())``: by line id, then account (kind, then owner).

    The order :class:`Account`'s own comparison gives, by a key: comparing attrs instances
    pair by pair builds two tuples per comparison. Keys are unique, so the amounts never take
    part. Accounts of a subclass are sorted by the plain call, which compares as it compares.
    """
    for line_id, account in balances:
        if type(account) is not Account or type(line_id) is not str:
            return sorted(balances.items())
    return sorted(balances.items(), key=_by_line_and_account)


_FIELDS: Final = ("paid_in", "held", "released", "commission", "kept", "refunded")
_PAYER: Final = -1
_KEPT: Final = 4
_REBATE: Final = -2
_COLUMN: Final[dict[AccountKind, int]] = {  # the column of _FIELDS an account's balance adds to
    **dict.fromkeys(PAYER_KINDS, _PAYER),
    **dict.fromkeys(HELD_KINDS, 1),
    AccountKind.MERCHANT: 2,
    **{kind: _KEPT if kind in KEPT_KINDS else 3 for kind in COMMISSION_KINDS},
    **dict.fromkeys(REBATE_KINDS, _REBATE),
}


def order_money(order_id: str, currency: str, postings: Iterable[Posting]) -> OrderMoney:
    """Fold an order's postings into what its money did.

    Postings between two payer-side accounts (a credit repayment) and rebate postings (one
    side in :data:`REBATE_KINDS`) are not the order's money and are left out; postings of
    other orders are ignored.

    Args:
        order_id: The order.
        currency: The order's currency.
        postings: Its postings (others are skipped), in any order.

    Raises:
        CurrencyMismatch: A posting of this order in another currency.

    """
    return money_of_rows(order_id, currency, fold_rows(order_id, currency, postings))


def fold_rows(order_id: str, currency: str, postings: Iterable[Posting]) -> dict[str, list[int]]:
    """What :func:`order_money` folds: per line id, minor units in the order of ``_FIELDS``.

    Raises:
        CurrencyMismatch: A posting of this order in another currency.

    """
    sums: dict[str, list[int]] = {}
    for posting in postings:
        if posting.order_id != order_id:
            continue
        if posting.amount.currency != currency:
            raise CurrencyMismatch(currency, posting.amount.currency, "fold")
        source, target = _COLUMN[posting.source.kind], _COLUMN[posting.target.kind]
        if source == target == _PAYER or _REBATE in (source, target):
            continue  # a credit repayment, or a rebate: the buyer's cashback, not the order's
        row = sums.get(posting.line_id)
        if row is None:
            row = sums[posting.line_id] = [0, 0, 0, 0, 0, 0]  # one per _FIELDS
        minor = posting.amount.minor
        # the source loses minor, the target gains it (unrolled: no tuple per side)
        if source == _PAYER:
            row[0 if minor > 0 else 5] += minor  # paid in (a refund the other way round)
        else:
            row[source] -= minor
            if source == _KEPT:  # the COD fee: commission a refund never takes back
                row[3] -= minor
        if target == _PAYER:
            row[0 if minor < 0 else 5] += minor  # refunded
        else:
            row[target] += minor
            if target == _KEPT:
                row[3] += minor
    return sums


def money_of_rows(order_id: str, currency: str, sums: Mapping[str, list[int]]) -> OrderMoney:
    """The :class:`OrderMoney` of rows folded by :func:`fold_rows`."""
    lines: dict[str, LineMoney] = {}
    if sums:
        zero = Money.zero(currency)  # shared: most of a line's figures are zero
        for line_id, values in sorted(sums.items()):
            lines[line_id] = LineMoney(
                line_id, *(Money(v, currency) if v else zero for v in values)
            )
    view = OrderMoney(order_id, currency, MappingProxyType(lines))
    columns = zip(*sums.values(), strict=True) if sums else ([0] for _ in _FIELDS)
    totals = dict(zip(_FIELDS, map(sum, columns), strict=True))
    totals["refundable"] = totals["paid_in"] - totals["refunded"] - totals["kept"]
    object.__setattr__(view, "_totals", totals)  # a cache on a frozen view of private lines
    return view
