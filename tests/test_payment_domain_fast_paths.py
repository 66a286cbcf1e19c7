"""The payment domain's fast paths build exactly what the plain definitions build.

Settlement works in minor units and builds its postings slot by slot; accounts are interned;
balances are sorted by a key; captures are built slot by slot; a payment's keys are copied
from the stored dict. Each is compared, on arbitrary input, with the straightforward
computation it replaces (the plain settlement below is the code the fast one replaced: every
amount a ``Money``, every posting through :class:`Posting`'s constructor), errors included.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import attrs
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ecommerce_core import CurrencyMismatch, InvalidInput, Money
from ecommerce_core.actors import Actor
from ecommerce_core.money import allocate_minor
from ecommerce_core.orders import Order, OrderLine
from ecommerce_core.payments import PaymentPolicy
from ecommerce_core.payments import ledger as ledger_module
from ecommerce_core.payments.cod import CodPayment
from ecommerce_core.payments.escrow import EscrowPayment
from ecommerce_core.payments.ledger import (
    HELD_KINDS,
    ORDER_LEVEL,
    Account,
    AccountKind,
    Movement,
    Posting,
    _sorted_balances,
    balances_by_line,
    fold_rows,
)
from ecommerce_core.payments.online import Capture, CaptureStatus, GatewayPayment, _capture
from ecommerce_core.payments.settlement import (
    _Book,
    _settle,
    collect_postings,
    payer_postings,
    refund_postings,
    release_postings,
    remit_postings,
    split,
)
from ecommerce_core.policies import OrderPolicy

AT = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
MERCHANT = Account.merchant("m-1")
BUYER = Account.buyer("alice")
ACCOUNTS = [
    BUYER,
    Account.credit_provider("huabei"),
    Account.escrow(),
    Account.carrier_cod("SF"),
    Account.carrier_cod("YTO"),
    MERCHANT,
    Account.commission(),
    Account.cod_fee("SF"),
]
LINES = ["1", "2", "3", ORDER_LEVEL]


def cny(minor: int) -> Money:
    return Money(minor, "CNY")


# --------------------------------------------------------------------------- the plain code

_SETTLING = frozenset({Movement.CAPTURE, Movement.RELEASE, Movement.DRAW})


class _PlainBook:
    def __init__(self, key: str, order_id: str, movement: Movement, at: datetime) -> None:
        self.key, self.order_id, self.movement, self.at = key, order_id, movement, at
        self.postings: list[Posting] = []

    def move(self, line_id: str, source: Account, target: Account, amount: Money) -> None:
        if amount.is_positive:
            number = len(self.postings) + 1
            self.postings.append(
                Posting(
                    f"{self.key}/{number}",
                    self.order_id,
                    line_id,
                    source,
                    target,
                    amount,
                    self.movement,
                    self.at,
                )
            )


def _plain_fill(
    amount: Money, allocation: Sequence[tuple[str, Money]], done: Iterable[Posting]
) -> list[tuple[str, Money]]:
    paid: dict[str, int] = {}
    for posting in done:
        if posting.source.kind in (AccountKind.BUYER, AccountKind.CREDIT_PROVIDER):
            paid[posting.line_id] = paid.get(posting.line_id, 0) + posting.amount.minor
    lacking = [(line_id, max(cost.minor - paid.get(line_id, 0), 0)) for line_id, cost in allocation]
    room = sum(weight for _, weight in lacking)
    fitting = min(amount.minor, room)
    shares = dict(split(Money(fitting, amount.currency), lacking) if fitting else [])
    if amount.minor > fitting:
        excess = Money(amount.minor - fitting, amount.currency)
        shares[ORDER_LEVEL] = shares.get(ORDER_LEVEL, Money.zero(amount.currency)) + excess
    return list(shares.items())


def _plain_settle(  # the settlement's inputs
    book: _PlainBook,
    shares: list[tuple[str, Money]],
    *,
    source: Account,
    merchant: Account,
    policy: PaymentPolicy,
    done: Iterable[Posting],
) -> None:
    if not shares:
        return
    currency = shares[0][1].currency
    settled_before = sum(
        p.amount.minor
        for p in done
        if p.movement in _SETTLING
        and p.target.kind in (AccountKind.MERCHANT, AccountKind.COMMISSION)
    )
    charged_before = sum(
        p.amount.minor
        for p in done
        if p.movement in _SETTLING and p.target.kind is AccountKind.COMMISSION
    )
    now = sum(amount.minor for _, amount in shares)
    due = policy.commission_total(Money(settled_before + now, currency)).minor - charged_before
    cuts = (
        dict(
            zip([k for k, _ in shares], split_ints(due, [a.minor for _, a in shares]), strict=True)
        )
        if due > 0
        else {}
    )
    for line_id, amount in shares:
        cut = cuts.get(line_id, 0)
        book.move(line_id, source, merchant, amount - Money(cut, currency))
        book.move(line_id, source, Account.commission(), Money(cut, currency))


def split_ints(total: int, weights: list[int]) -> list[int]:
    return allocate_minor(total, weights)


def _plain_held(done: Sequence[Posting], kind: AccountKind) -> list[tuple[str, Account, Money]]:
    currency = done[0].amount.currency
    return [
        (line_id, account, Money(minor, currency))
        for (line_id, account), minor in sorted(balances_by_line(done).items())
        if account.kind is kind and minor > 0
    ]


def plain_payer_postings(  # payer_postings' arguments
    *,
    key: str,
    allocation: Sequence[tuple[str, Money]],
    done: Sequence[Posting],
    amount: Money,
    hold: bool,
    policy: PaymentPolicy,
    movement: Movement,
) -> tuple[Posting, ...]:
    book = _PlainBook(key, "o-1", movement, AT)
    shares = _plain_fill(amount, allocation, done)
    if hold:
        for line_id, share in shares:
            book.move(line_id, BUYER, Account.escrow(), share)
    else:
        _plain_settle(book, shares, source=BUYER, merchant=MERCHANT, policy=policy, done=done)
    return tuple(book.postings)


def plain_release(
    key: str, done: Sequence[Posting], lines: Iterable[str] | None, policy: PaymentPolicy
) -> tuple[Posting, ...]:
    wanted = None if lines is None else set(lines)
    book = _PlainBook(key, "o-1", Movement.RELEASE, AT)
    held = [
        (line_id, amount)
        for line_id, _, amount in (_plain_held(done, AccountKind.ESCROW) if done else [])
        if wanted is None or line_id in wanted
    ]
    _plain_settle(book, held, source=Account.escrow(), merchant=MERCHANT, policy=policy, done=done)
    return tuple(book.postings)


def plain_remit(key: str, done: Sequence[Posting], policy: PaymentPolicy) -> tuple[Posting, ...]:
    book = _PlainBook(key, "o-1", Movement.REMIT, AT)
    held = _plain_held(done, AccountKind.CARRIER_COD) if done else []
    if not held:
        return ()
    total = sum((amount for _, _, amount in held), Money.zero(held[0][2].currency))
    fees = dict(split(policy.cod_fee_on(total), [(k, a.minor) for k, _, a in held]))
    for line_id, float_account, amount in held:
        fee = fees.get(line_id, Money.zero(amount.currency))
        book.move(line_id, float_account, MERCHANT, amount - fee)
        book.move(line_id, float_account, Account.cod_fee(float_account.owner), fee)
    return tuple(book.postings)


def plain_refund(
    key: str, done: Sequence[Posting], amounts: Mapping[str, Money]
) -> tuple[Posting, ...]:
    balances = balances_by_line(done)
    book = _PlainBook(key, "o-1", Movement.REFUND, AT)
    for line_id, amount in amounts.items():
        wanted = amount.minor
        for (line, account), minor in sorted(balances.items()):
            if line == line_id and account.kind in HELD_KINDS and minor > 0 and wanted:
                take = min(minor, wanted)
                book.move(line_id, account, BUYER, Money(take, amount.currency))
                wanted -= take
        if not wanted:
            continue
        sources = [
            (account, minor)
            for (line, account), minor in sorted(balances.items())
            if line == line_id
            and account.kind in (AccountKind.MERCHANT, AccountKind.COMMISSION)
            and minor > 0
        ]
        if wanted > sum(minor for _, minor in sources):
            raise InvalidInput("amount", amount, f"more than line {line_id!r} can refund")
        for (account, _), share in zip(
            sources, allocate_minor(wanted, [minor for _, minor in sources]), strict=True
        ):
            book.move(line_id, account, BUYER, Money(share, amount.currency))
    return tuple(book.postings)


def plain_fold_rows(order_id: str, currency: str, postings: Iterable[Posting]) -> dict[str, Any]:
    columns = ledger_module._COLUMN
    payer, rebate, kept = ledger_module._PAYER, ledger_module._REBATE, ledger_module._KEPT
    sums: dict[str, list[int]] = {}
    for posting in postings:
        if posting.order_id != order_id:
            continue
        if posting.amount.currency != currency:
            raise CurrencyMismatch(currency, posting.amount.currency, "fold")
        source, target = columns[posting.source.kind], columns[posting.target.kind]
        if source == target == payer or rebate in (source, target):
            continue
        row = sums.setdefault(posting.line_id, [0] * 6)
        minor = posting.amount.minor
        for column, signed in ((source, -minor), (target, minor)):
            if column == payer:
                row[0 if signed < 0 else 5] += minor
            else:
                row[column] += signed
                if column == kept:
                    row[3] += signed
    return sums


def placed_order(method: str) -> Order:
    lines = (
        OrderLine("1", "tea-01", 2, Money.of("38.00", "CNY")),
        OrderLine("2", "cup-01", 4, Money.of("25.00", "CNY")),
    )
    return Order.place(
        order_id="o-1",
        buyer_id="alice",
        merchant_id="m-1",
        lines=lines,
        now=AT,
        policy=OrderPolicy(),
        payment_method=method,
    )


def started_escrow_payment() -> EscrowPayment:
    order = placed_order("escrow")
    return EscrowPayment.start("p-1", order, Actor.buyer("alice"), now=AT)


def started_cod_payment() -> CodPayment:
    return CodPayment.start("p-1", placed_order("cod"), carrier_id="SF", now=AT)


def started_payment() -> GatewayPayment:
    lines = (
        OrderLine("1", "tea-01", 2, Money.of("38.00", "CNY")),
        OrderLine("2", "cup-01", 4, Money.of("25.00", "CNY")),
    )
    order = Order.place(
        order_id="o-1",
        buyer_id="alice",
        merchant_id="m-1",
        lines=lines,
        now=AT,
        policy=OrderPolicy(),
    )
    return GatewayPayment.start("p-1", order, Actor.buyer("alice"), now=AT, key="k")


def outcome(build: Any) -> Any:
    """What ``build()`` returns, or the type and arguments of what it raises."""
    try:
        return build()
    except Exception as error:  # noqa: BLE001  # compared, not handled
        return type(error), error.args


# --------------------------------------------------------------------------- strategies

minors = st.integers(1, 50_000)
allocations = st.lists(
    st.tuples(st.sampled_from(LINES), st.integers(0, 50_000)), min_size=1, max_size=4
).map(lambda drawn: tuple((line, cny(minor)) for line, minor in dict(drawn).items()))
moves = st.lists(
    st.tuples(
        st.sampled_from(LINES),
        st.sampled_from(ACCOUNTS),
        st.sampled_from(ACCOUNTS),
        minors,
        st.sampled_from([Movement.CAPTURE, Movement.RELEASE, Movement.COLLECT, Movement.REFUND]),
    ).filter(lambda m: m[1] != m[2]),
    max_size=10,
)
policies = st.builds(
    PaymentPolicy,
    commission_rate=st.sampled_from(
        [Decimal(0), Decimal("0.05"), Decimal("0.123"), Decimal("0.3")]
    ),
    commission_caps=st.sampled_from([{}, {"CNY": cny(0)}, {"CNY": cny(777)}]),
    cod_fee_rate=st.sampled_from([Decimal(0), Decimal("0.01"), Decimal("0.5"), Decimal(1)]),
)


def postings_of(drawn: list[tuple[str, Account, Account, int, Movement]]) -> list[Posting]:
    return [
        Posting(f"d/{n}", "o-1", line, source, target, cny(minor), movement, AT)
        for n, (line, source, target, minor, movement) in enumerate(drawn, 1)
    ]


# --------------------------------------------------------------------------- the properties


class TestSettlementInMinorUnits:
    @given(
        allocation=allocations,
        drawn=moves,
        minor=st.integers(0, 50_000),
        hold=st.booleans(),
        policy=policies,
        movement=st.sampled_from(list(Movement)),
    )
    @settings(max_examples=150)
    def test_money_coming_in_is_booked_as_the_plain_settlement_books_it(
        self, *, allocation, drawn, minor, hold, policy, movement
    ):
        done = postings_of(drawn)
        fast = payer_postings(
            key="op",
            order_id="o-1",
            allocation=allocation,
            done=done,
            payer=BUYER,
            amount=cny(minor),
            hold=hold,
            merchant=MERCHANT,
            policy=policy,
            movement=movement,
            at=AT,
        )
        plain = plain_payer_postings(
            key="op",
            allocation=allocation,
            done=done,
            amount=cny(minor),
            hold=hold,
            policy=policy,
            movement=movement,
        )
        assert fast == plain
        assert [type(p) for p in fast] == [Posting] * len(plain)

    def test_a_share_the_commission_takes_whole_books_no_empty_posting_to_the_merchant(self):
        # 700 settled before without commission, 300 now at 30 %: all 300 are commission due
        done = postings_of([("1", BUYER, MERCHANT, 700, Movement.CAPTURE)])
        policy = PaymentPolicy(commission_rate=Decimal("0.3"))
        arguments = {"key": "op", "allocation": (("1", cny(1_000)),), "done": done}
        arguments |= {"amount": cny(300), "hold": False, "policy": policy}
        fast = payer_postings(
            **arguments,
            order_id="o-1",
            payer=BUYER,
            merchant=MERCHANT,
            movement=Movement.CAPTURE,
            at=AT,
        )
        assert fast == plain_payer_postings(**arguments, movement=Movement.CAPTURE)
        assert [(p.target, p.amount) for p in fast] == [(Account.commission(), cny(300))]

    @given(allocations, minors)
    @settings(max_examples=60)
    def test_cash_collected_is_split_as_the_plain_settlement_splits_it(self, allocation, minor):
        carrier = Account.carrier_cod("SF")
        fast = collect_postings(
            key="c",
            order_id="o-1",
            allocation=allocation,
            buyer=BUYER,
            carrier=carrier,
            amount=cny(minor),
            at=AT,
        )
        book = _PlainBook("c", "o-1", Movement.COLLECT, AT)
        for line_id, share in _plain_fill(cny(minor), allocation, ()):
            book.move(line_id, BUYER, carrier, share)
        assert fast == tuple(book.postings)

    @given(moves, policies, st.none() | st.lists(st.sampled_from(LINES), max_size=3))
    @settings(max_examples=100)
    def test_a_release_is_booked_as_the_plain_settlement_books_it(self, drawn, policy, lines):
        done = postings_of(drawn)
        fast = outcome(
            lambda: release_postings(
                key="r",
                order_id="o-1",
                done=done,
                lines=lines,
                merchant=MERCHANT,
                policy=policy,
                at=AT,
            )
        )
        assert fast == outcome(lambda: plain_release("r", done, lines, policy))

    @given(moves, policies)
    @settings(max_examples=100)
    def test_a_remittance_is_booked_as_the_plain_settlement_books_it(self, drawn, policy):
        done = postings_of(drawn)
        fast = remit_postings(
            key="m", order_id="o-1", done=done, merchant=MERCHANT, policy=policy, at=AT
        )
        assert fast == plain_remit("m", done, policy)

    @given(moves, st.dictionaries(st.sampled_from(LINES), minors, min_size=1, max_size=3))
    @settings(max_examples=100)
    def test_a_refund_takes_money_from_where_the_plain_settlement_takes_it(self, drawn, wanted):
        done = postings_of(drawn)
        amounts = {line: cny(minor) for line, minor in wanted.items()}
        fast = outcome(
            lambda: refund_postings(
                key="f", order_id="o-1", done=done, amounts=amounts, payer=BUYER, at=AT
            )
        )
        assert fast == outcome(lambda: plain_refund("f", done, amounts))

    def test_a_gross_beyond_the_largest_amount_is_refused_as_money_refuses_it(self):
        huge = Money(10**18, "CNY")
        done = [Posting("d/1", "o-1", "1", BUYER, MERCHANT, huge, Movement.CAPTURE, AT)]
        with pytest.raises(InvalidInput) as fast:
            payer_postings(
                key="op",
                order_id="o-1",
                allocation=(("1", huge),),
                done=done,
                payer=BUYER,
                amount=cny(1),
                hold=False,
                merchant=MERCHANT,
                policy=PaymentPolicy(),
                movement=Movement.CAPTURE,
                at=AT,
            )
        with pytest.raises(InvalidInput) as plain:
            Money(10**18 + 1, "CNY")
        assert fast.value.args == plain.value.args


class TestSumsInMinorUnits:
    """Sums the fast paths add up as ints raise what adding them up as Money raises."""

    def test_a_carrier_float_beyond_the_largest_amount_is_refused_as_its_sum_is(self):
        half = Money(6 * 10**17, "CNY")
        carrier = Account.carrier_cod("SF")
        done = [
            Posting(f"c/{n}", "o-1", line, BUYER, carrier, half, Movement.COLLECT, AT)
            for n, line in enumerate(["1", "2"], 1)
        ]
        fast = outcome(
            lambda: remit_postings(
                key="m", order_id="o-1", done=done, merchant=MERCHANT, policy=PaymentPolicy(), at=AT
            )
        )
        assert fast[0] is InvalidInput
        assert fast == outcome(lambda: plain_remit("m", done, PaymentPolicy()))

    def test_escrow_money_in_another_currency_is_refused_as_adding_it_up_refuses_it(self):
        payment = started_escrow_payment()
        usd = Money(500, "USD")
        payment.postings = (
            Posting("u/1", "o-1", "1", BUYER, Account.escrow(), usd, Movement.CAPTURE, AT),
        )
        system = Actor.system("payments")
        plain = outcome(lambda: Money.zero("CNY") + usd)
        assert outcome(lambda: payment.release(system, now=AT, policy=PaymentPolicy())) == plain
        assert outcome(payment.released_total) == plain

    def test_a_remittance_in_another_currency_is_refused_as_adding_it_up_refuses_it(self):
        payment = started_cod_payment()
        usd = Money(500, "USD")
        carrier = Account.carrier_cod("SF")
        payment.postings = (Posting("u/1", "o-1", "1", BUYER, carrier, usd, "collect", AT),)
        payment.state = "collected"
        carrier_actor = Actor.carrier("SF")
        plain = outcome(lambda: Money.zero("CNY") + usd)
        fast = outcome(lambda: payment.remit(carrier_actor, now=AT, policy=PaymentPolicy()))
        assert fast == plain


class TestBooks:
    @pytest.mark.parametrize(
        ("order_id", "movement", "at"),
        [
            ("o-1", "capture", AT),  # a movement given by value
            ("o-1", Movement.CAPTURE, AT.astimezone(timezone(timedelta(hours=8)))),
            ("o-1", Movement.CAPTURE, datetime(2026, 3, 1)),  # noqa: DTZ001  # naive, refused
            ("  ", Movement.CAPTURE, AT),
            ("o-1", "no-such-movement", AT),
        ],
    )
    def test_a_book_with_anything_unusual_builds_every_posting_through_the_constructor(
        self, order_id, movement, at
    ):
        book = _Book("op", order_id, movement, at, "CNY")
        assert not book.plain
        fast = outcome(lambda: (book.add("1", BUYER, MERCHANT, 100), book.postings)[1])
        plain = outcome(
            lambda: [Posting("op/1", order_id, "1", BUYER, MERCHANT, cny(100), movement, at)]
        )
        assert fast == plain

    @given(st.sampled_from(LINES), st.sampled_from(ACCOUNTS), st.sampled_from(ACCOUNTS), minors)
    @settings(max_examples=60)
    def test_a_plain_book_builds_what_the_constructor_builds_or_raises_what_it_raises(
        self, line_id, source, target, minor
    ):
        book = _Book("op", "o-1", Movement.CAPTURE, AT, "CNY")
        assert book.plain
        fast = outcome(lambda: (book.add(line_id, source, target, minor), book.postings)[1])
        plain = outcome(
            lambda: [Posting("op/1", "o-1", line_id, source, target, cny(minor), "capture", AT)]
        )
        assert fast == plain

    def test_a_look_alike_account_goes_through_the_constructor(self):
        class Special(Account):
            pass

        book = _Book("op", "o-1", Movement.CAPTURE, AT, "CNY")
        book.add("1", BUYER, Special(AccountKind.MERCHANT, "m-1"), 5)
        with pytest.raises(InvalidInput) as caught:
            book.add(1, BUYER, MERCHANT, 5)  # type: ignore[arg-type]
        assert caught.value.field == "line_id"
        assert book.postings == [
            Posting(
                "op/1",
                "o-1",
                "1",
                BUYER,
                Special(AccountKind.MERCHANT, "m-1"),
                cny(5),
                "capture",
                AT,
            )
        ]

    def test_nothing_is_booked_for_a_zero_or_negative_share(self):
        book = _Book("op", "o-1", Movement.CAPTURE, AT, "CNY")
        book.add("1", BUYER, MERCHANT, 0)
        book.add("1", BUYER, MERCHANT, -3)
        assert book.postings == []


NAMED_ACCOUNTS = [
    (Account.buyer, AccountKind.BUYER),
    (Account.credit_provider, AccountKind.CREDIT_PROVIDER),
    (Account.carrier_cod, AccountKind.CARRIER_COD),
    (Account.merchant, AccountKind.MERCHANT),
    (Account.cod_fee, AccountKind.COD_FEE),
    (Account.rebate_payable, AccountKind.REBATE_PAYABLE),
    (Account.deposit, AccountKind.DEPOSIT),
]


class TestInternedAccounts:
    @pytest.mark.parametrize(("build", "kind"), NAMED_ACCOUNTS)
    @given(owner=st.text(min_size=1, max_size=8).filter(str.strip))
    @settings(max_examples=20)
    def test_a_named_account_equals_the_one_the_class_builds_and_is_shared(
        self, build, kind, owner
    ):
        account = build(owner)
        assert account == Account(kind, owner)
        assert (account.kind, account.owner, hash(account)) == (
            kind,
            owner,
            hash(Account(kind, owner)),
        )
        assert build(owner) is account

    @pytest.mark.parametrize(("build", "kind"), NAMED_ACCOUNTS)
    @pytest.mark.parametrize("owner", ["", "   ", None, 7, ["m-1"]])
    def test_a_bad_owner_raises_what_the_class_raises(self, build, kind, owner):
        assert outcome(lambda: build(owner)) == outcome(lambda: Account(kind, owner))

    def test_a_full_table_starts_again_and_still_gives_equal_accounts(self):
        first = Account.buyer("b-first")
        for n in range(ledger_module._INTERNED_LIMIT + 1):
            Account.buyer(f"b-{n}")
        assert len(ledger_module._INTERNED[AccountKind.BUYER]) <= ledger_module._INTERNED_LIMIT
        assert Account.buyer("b-first") == first

    def test_a_subclass_builds_its_own_accounts(self):
        class Special(Account):
            pass

        special = Special.buyer("alice")
        assert type(special) is Special
        assert type(Account.buyer("alice")) is Account


class TestSortedBalances:
    @given(moves)
    @settings(max_examples=80)
    def test_balances_are_sorted_as_their_items_sort(self, drawn):
        balances = balances_by_line(postings_of(drawn))
        assert _sorted_balances(balances) == sorted(balances.items())

    def test_subclassed_accounts_are_sorted_by_their_own_comparison(self):
        class Special(Account):
            pass

        balances = {("1", Special(AccountKind.MERCHANT, "m")): 1, ("1", MERCHANT): -1}
        assert outcome(lambda: _sorted_balances(balances)) == outcome(
            lambda: sorted(balances.items())
        )


class TestFoldedRows:
    @given(moves, st.sampled_from(["o-1", "o-2"]))
    @settings(max_examples=80)
    def test_the_unrolled_fold_folds_as_the_loop_over_both_sides(self, drawn, order_id):
        postings = postings_of(drawn)
        assert fold_rows(order_id, "CNY", postings) == plain_fold_rows(order_id, "CNY", postings)

    def test_a_posting_in_another_currency_is_refused_alike(self):
        usd = Posting("u/1", "o-1", "1", BUYER, MERCHANT, Money(5, "USD"), "capture", AT)
        assert outcome(lambda: fold_rows("o-1", "CNY", [usd])) == outcome(
            lambda: plain_fold_rows("o-1", "CNY", [usd])
        )


class TestCapturesAndKeys:
    @given(
        st.text(max_size=5),
        minors,
        st.sampled_from(list(CaptureStatus)),
        st.text(max_size=5),
    )
    @settings(max_examples=40)
    def test_a_capture_built_slot_by_slot_equals_the_one_its_class_builds(
        self, key, minor, status, transaction_id
    ):
        built = _capture(key, cny(minor), AT, status, transaction_id)
        assert built == Capture(key, cny(minor), AT, status, transaction_id)
        assert repr(built) == repr(Capture(key, cny(minor), AT, status, transaction_id))

    @pytest.mark.parametrize(
        "keys",
        [MappingProxyType({"a": "1"}), {"a": "1"}, MappingProxyType({})],
        ids=["read-only view", "plain dict", "empty view"],
    )
    def test_remembering_a_key_adds_it_to_a_fresh_read_only_copy(self, keys):
        payment = started_payment()
        payment.keys = keys
        before = dict(keys)
        payment._remember("b", "2")
        assert type(payment.keys) is MappingProxyType
        assert dict(payment.keys) == {**before, "b": "2"}
        assert dict(keys) == before  # the old mapping is untouched


class _LookAlike(Account):
    """An account subclass: settling from or to it takes the checked path."""


class TestSettlingInPlace:
    """``_settle`` builds a plain book's postings itself; exactly what ``_Book.add`` builds."""

    @given(
        shares=st.lists(
            st.tuples(st.sampled_from([*LINES, 7]), st.integers(-5, 50_000)), max_size=4
        ),
        source=st.sampled_from([*ACCOUNTS, _LookAlike(AccountKind.BUYER, "alice")]),
        merchant=st.sampled_from([*ACCOUNTS, _LookAlike(AccountKind.MERCHANT, "m-1")]),
        policy=policies,
        plain=st.booleans(),
    )
    @settings(max_examples=150)
    def test_settling_books_or_refuses_what_adding_share_by_share_does(
        self, shares, source, merchant, policy, plain
    ):
        def settle(*, by_hand: bool) -> Any:
            at = AT if plain else AT.astimezone(timezone(timedelta(hours=8)))
            book = _Book("op", "o-1", Movement.CAPTURE, at, "CNY")
            if by_hand:  # _settle's loop before it built postings itself
                book_add = book.add

                class Adding:
                    plain = False

                    def __getattr__(self, name: str) -> Any:
                        return getattr(book, name)

                    def add(self, *args: Any) -> None:
                        book_add(*args)

                _settle(Adding(), shares, source=source, merchant=merchant, policy=policy, done=())  # type: ignore[arg-type]
            else:
                _settle(book, shares, source=source, merchant=merchant, policy=policy, done=())
            return book.postings

        fast, slow = outcome(lambda: settle(by_hand=False)), outcome(lambda: settle(by_hand=True))
        assert fast == slow
        if isinstance(fast, list):
            assert [type(p) for p in fast] == [type(p) for p in slow]


class TestTwins:
    """``_slots.twin``: a posting built through its twin is a plain, frozen Posting."""

    def test_a_posting_built_through_the_twin_is_the_one_the_class_builds(self):
        built = ledger_module._posting(
            "op/1", "o-1", "1", BUYER, MERCHANT, cny(5), Movement.CAPTURE, AT
        )
        assert type(built) is Posting
        assert built == Posting("op/1", "o-1", "1", BUYER, MERCHANT, cny(5), Movement.CAPTURE, AT)
        assert hash(built) == hash(
            Posting("op/1", "o-1", "1", BUYER, MERCHANT, cny(5), Movement.CAPTURE, AT)
        )
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            built.key = "other"  # type: ignore[misc]

    def test_the_twin_is_cached_and_no_attrs_class(self):
        from ecommerce_core import _slots  # noqa: PLC0415

        made = _slots.twin(Posting)
        assert made is _slots.twin(Posting)
        assert issubclass(made, Posting)
        assert not attrs.has(made)

    def test_every_event_built_through_its_twin_is_the_one_its_class_builds(self):
        from ecommerce_core import _slots  # noqa: PLC0415
        from ecommerce_core.payments.events import CaptureRequested, PaymentStarted  # noqa: PLC0415
        from ecommerce_core.payments.policy import PaymentMethod  # noqa: PLC0415

        for cls, fields in (
            (PaymentStarted, {"order_id": "o-1", "method": PaymentMethod.ONLINE, "amount": cny(5)}),
            (CaptureRequested, {"capture_key": "k", "amount": cny(5)}),
        ):
            built = _slots.event(cls, "p-1", 2, AT, "buyer:b-1", fields)
            expected = cls(
                aggregate_id="p-1", version=2, occurred_at=AT, actor="buyer:b-1", **fields
            )
            assert type(built) is cls
            assert built == expected
            assert hash(built) == hash(expected)
            with pytest.raises(attrs.exceptions.FrozenInstanceError):
                built.version = 3  # type: ignore[misc]

    def test_a_frozen_value_built_by_a_builder_goes_through_its_twin(self):
        from ecommerce_core import _slots  # noqa: PLC0415
        from ecommerce_core.orders import Deadline  # noqa: PLC0415

        build = _slots.builder(Deadline, ("at", "trigger"))
        built = build(AT, "close")
        assert type(built) is Deadline
        assert built == Deadline(AT, "close")
        assert _slots._STAND_INS[Deadline] is _slots.twin(Deadline)

    def test_the_codec_registry_names_the_event_classes_not_their_twins(self):
        from ecommerce_core import _slots  # noqa: PLC0415
        from ecommerce_core.adapters.codec import event_types  # noqa: PLC0415
        from ecommerce_core.payments.events import PaymentCaptured  # noqa: PLC0415

        stand_in = _slots.twin(PaymentCaptured)
        assert stand_in.__name__ == "PaymentCaptured"
        assert event_types()["PaymentCaptured"] is PaymentCaptured

    def test_a_class_that_allows_no_twin_is_built_through_its_setters(self):
        from ecommerce_core import _slots  # noqa: PLC0415
        from ecommerce_core.events import DomainEvent  # noqa: PLC0415

        @attrs.frozen(kw_only=True)
        class Sealed(DomainEvent):
            note: str

            def __init_subclass__(cls, **kwargs: Any) -> None:
                raise TypeError("no subclasses")

        built = _slots.event(Sealed, "o-1", 1, AT, "a", {"note": "x"})
        assert type(built) is Sealed
        assert built == Sealed(aggregate_id="o-1", version=1, occurred_at=AT, actor="a", note="x")
        assert _slots._STAND_INS[Sealed] is None
        build = _slots.builder(Sealed, ("aggregate_id", "version", "occurred_at", "actor", "note"))
        assert build("o-1", 1, AT, "a", "x") == built

    def test_a_class_that_is_not_frozen_and_slotted_has_no_twin(self):
        from ecommerce_core import _slots  # noqa: PLC0415

        @attrs.define
        class Mutable:
            value: int

        with pytest.raises(TypeError, match="not a frozen slotted class"):
            _slots.twin(Mutable)
        with pytest.raises(TypeError, match="not a frozen slotted class"):
            _slots.twin(int)


class _Discounted(OrderLine):
    """A line subclass: allocation asks its own ``amount``."""

    @property
    def amount(self) -> Money:
        return cny(1)


class _Allocated:
    """What allocation_of reads of an order: its lines and shipping fee."""

    def __init__(self, lines: list[OrderLine], shipping_fee: Money) -> None:
        self.lines, self.shipping_fee = lines, shipping_fee


class TestAllocations:
    """``allocation_of`` figures a plain line's amount in minor units: what ``line.amount`` is."""

    @given(
        lines=st.lists(
            st.tuples(
                st.sampled_from([1, 7, 3_000_000, 10**12, 10**13]),
                st.integers(1, 10**6),
                st.integers(0, 500),
                st.booleans(),
            ),
            min_size=1,
            max_size=3,
        ),
        fee=st.integers(0, 900),
    )
    @settings(max_examples=100)
    def test_each_line_is_allocated_what_it_costs_or_refused_as_its_amount_is(self, lines, fee):
        from ecommerce_core.money import MAX_MINOR_UNITS  # noqa: PLC0415
        from ecommerce_core.payments.base import allocation_of  # noqa: PLC0415

        built = []
        for number, (price, quantity, discount, special) in enumerate(lines, 1):
            kind = _Discounted if special else OrderLine
            line = kind(str(number), f"sku-{number}", 1, cny(price))
            object.__setattr__(line, "quantity", quantity)  # past the checks: any stored line
            object.__setattr__(line, "discount", cny(min(discount, MAX_MINOR_UNITS)))
            built.append(line)
        order = _Allocated(built, cny(fee))

        def plain() -> Any:
            out = [(line.line_id, line.amount) for line in order.lines]
            if order.shipping_fee.is_positive:
                out.append((ORDER_LEVEL, order.shipping_fee))
            return tuple(out)

        fast, slow = outcome(lambda: allocation_of(order)), outcome(plain)  # type: ignore[arg-type]
        assert fast == slow
        if not isinstance(fast[0], type):  # built, not refused: plain Money throughout
            assert all(type(amount) is Money for _, amount in fast)

    def test_a_line_with_another_currency_discount_is_refused_as_its_amount_is(self):
        from ecommerce_core.payments.base import allocation_of  # noqa: PLC0415

        line = OrderLine("1", "sku-1", 2, cny(500))
        object.__setattr__(line, "discount", Money(5, "USD"))
        got = outcome(lambda: allocation_of(_Allocated([line], cny(0))))  # type: ignore[arg-type]
        assert got == outcome(lambda: line.amount)
        assert got[0] is CurrencyMismatch


class TestMoneyFromArithmetic:
    """Money built through its twin is plain, frozen, equal and hashed as the class builds it."""

    @given(st.one_of(st.integers(-(10**6), 10**6), st.integers(-2 * 10**18, 2 * 10**18)))
    def test_a_result_is_the_money_the_class_builds(self, minor):
        from ecommerce_core.money import _result  # noqa: PLC0415

        got = outcome(lambda: _result(minor, "CNY"))
        want = outcome(lambda: Money(minor, "CNY"))
        assert got == want
        if isinstance(got, Money):
            assert type(got) is Money
            assert hash(got) == hash(want)
            with pytest.raises(attrs.exceptions.FrozenInstanceError):
                got.minor = 0  # type: ignore[misc]


class _Odd(Money):
    """A Money subclass: a payment authorized in it takes the Money arithmetic."""


_CAPTURE_STEPS = st.lists(
    st.tuples(
        st.sampled_from(["request", "succeed", "fail", "unasked"]),
        st.integers(-3, 300),
    ),
    max_size=6,
)


class TestCaptureArithmetic:
    """Captures figure what is left, and what a capture does to the payment, in minor units."""

    @given(authorized=st.one_of(st.none(), st.integers(1, 400)), steps=_CAPTURE_STEPS)
    @settings(max_examples=120)
    def test_a_capture_is_refused_exactly_when_it_is_more_than_the_money_left(
        self, authorized, steps
    ):
        payment = started_payment()
        if authorized is not None:
            payment.authorize(
                amount=cny(authorized), transaction_id="t-1", now=AT, ttl=timedelta(days=1)
            )
        for number, (step, minor) in enumerate(steps):
            if step != "request":
                continue
            sale = payment.state == "created"
            ceiling = payment.total if sale else payment.authorized
            left = ceiling - payment.captured - payment.capturing
            allowed = payment.state in {"created", "authorized", "captured"}
            got = outcome(
                lambda number=number, minor=minor: payment.request_capture(
                    f"c-{number}", Actor.platform("ops"), amount=cny(minor), now=AT
                )
            )
            if allowed and minor > 0 and cny(minor) > left:
                what = "the order total" if sale else "authorized"
                message = f"more than {what}: {left} is left to capture of {ceiling}"
                assert got[0] is InvalidInput
                assert message in str(got[1])
            elif allowed and minor > 0:
                assert isinstance(got, Capture)
            else:
                assert isinstance(got, tuple)  # refused for another reason

    @given(authorized=st.integers(1, 400), steps=_CAPTURE_STEPS)
    @example(authorized=100, steps=[("request", 60), ("unasked", 50)])  # pending counts
    @settings(max_examples=120)
    def test_a_booked_capture_changes_the_payment_as_the_money_arithmetic_does(
        self, authorized, steps
    ):
        payments = []
        for odd in (False, True):
            payment = started_payment()
            payment.authorize(
                amount=cny(authorized), transaction_id="t-1", now=AT, ttl=timedelta(days=1)
            )
            if odd:  # authorized in a Money subclass: the arithmetic path
                payment.authorized = _Odd(authorized, "CNY")
            payments.append(payment)
        policy = PaymentPolicy()
        for number, (step, minor) in enumerate(steps):
            results = []
            for payment in payments:
                got = outcome(
                    lambda p=payment, s=step, n=number, m=minor: capture_step(p, s, n, m, policy)
                )
                results.append(got if isinstance(got, (bool, tuple)) else fields(got))
            assert results[0] == results[1]
            fast, slow = payments
            assert (fast.authorized.minor, fast.authorized.currency) == (
                slow.authorized.minor,
                slow.authorized.currency,
            )
            assert (fast.state, fast.deadline, fast.transaction_id, fast.captures) == (
                slow.state,
                slow.deadline,
                slow.transaction_id,
                slow.captures,
            )
            assert fast.events == slow.events
            assert fast.postings == slow.postings


def capture_step(
    payment: GatewayPayment, step: str, number: int, minor: int, policy: PaymentPolicy
) -> Any:
    """One step on a payment's captures: ask, answer the oldest pending one, or book unasked."""
    pending = [c.key for c in payment.captures if c.status is CaptureStatus.PENDING]
    if step == "request":
        return payment.request_capture(
            f"c-{number}", Actor.platform("ops"), amount=cny(minor), now=AT
        )
    if step == "succeed" and pending:
        return payment.capture_succeeded(pending[0], transaction_id="t-2", now=AT, policy=policy)
    if step == "fail" and pending:
        return payment.capture_failed(pending[0], now=AT, reason="no")
    return payment._book_capture(
        f"txn:{number}", cny(max(minor, 1)), transaction_id=f"t-{number}", now=AT, policy=policy
    )


def fields(value: Any) -> dict[str, Any]:
    """Every field of an attrs instance, by name."""
    return attrs.asdict(value, recurse=False)
