"""Contract suites for the payment ports: the ledger, the payment repository, credit lines.

Use them like the ones in :mod:`ecommerce_core.testing.contracts`: subclass under a name pytest
collects and fill in the factory::

    class TestPostgresLedger(LedgerContract):
        def make_ledger(self) -> Ledger:
            return PostgresLedger(fresh_schema())
"""

# ruff: noqa: S101, PLR2004  # the testing kit asserts literal expectations, as tests do.

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Final

import hypothesis
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from ecommerce_core.actors import Actor
from ecommerce_core.errors import (
    Conflict,
    CreditLimitExceeded,
    CurrencyMismatch,
    IdempotencyConflict,
    InvalidInput,
    NotFound,
    VersionConflict,
)
from ecommerce_core.money import Money
from ecommerce_core.payments.ledger import Account, Movement, Posting
from ecommerce_core.payments.online import GatewayPayment
from ecommerce_core.payments.policy import PaymentPolicy
from ecommerce_core.ports import CreditLines, Ledger, PaymentRepository
from ecommerce_core.testing.contracts import CONTRACT_TIME, make_order

__all__ = [
    "CreditLinesContract",
    "LedgerContract",
    "PaymentRepositoryContract",
    "make_payment",
    "run_ledger_contract",
]

_BUYER: Final = Account.buyer("b-1")
_ESCROW: Final = Account.escrow()
_MERCHANT: Final = Account.merchant("m-1")
_ACCOUNTS: Final = (_BUYER, _ESCROW, _MERCHANT, Account.commission())


def _cny(minor: int) -> Money:
    return Money(minor, "CNY")


def _posting(
    key: str,
    minor: int = 100,
    *,
    order_id: str = "o-1",
    source: Account = _BUYER,
    target: Account = _ESCROW,
    currency: str = "CNY",
) -> Posting:
    return Posting(
        key, order_id, "1", source, target, Money(minor, currency), Movement.CAPTURE, CONTRACT_TIME
    )


class _LedgerMachine(RuleBasedStateMachine):
    """Random batches, repeats and conflicts, checked against a plain model."""

    def __init__(self, ledger: Ledger) -> None:
        super().__init__()
        self.ledger = ledger
        self.stored: dict[str, Posting] = {}

    @rule(
        moves=st.lists(
            st.tuples(
                st.sampled_from([f"k{n}" for n in range(6)]),
                st.integers(1, 500),
                st.sampled_from(_ACCOUNTS),
                st.sampled_from(_ACCOUNTS),
                st.sampled_from(["o-1", "o-2"]),
            ),
            min_size=1,
            max_size=4,
        )
    )
    def append(self, moves: list[tuple[str, int, Account, Account, str]]) -> None:
        """Append a batch: all new, some repeated, or some conflicting."""
        batch = [
            _posting(key, minor, order_id=order_id, source=a, target=b)
            for key, minor, a, b, order_id in moves
            if a != b
        ]
        keys = [p.key for p in batch]
        clash_in_batch = any(
            p != q for p in batch for q in batch if p.key == q.key
        )  # the same key twice, differently
        clash_stored = any(p.key in self.stored and self.stored[p.key] != p for p in batch)
        if clash_in_batch or clash_stored:
            with pytest.raises((InvalidInput, IdempotencyConflict)):
                self.ledger.append(batch)
            return
        fresh = {p.key: p for p in batch if p.key not in self.stored}
        assert self.ledger.append(batch) == len(fresh)
        self.stored.update(fresh)
        assert set(keys) <= set(self.stored)

    @invariant()
    def postings_and_balances_match_the_model(self) -> None:
        """Each order's postings in append order; balances are sums; all sum to zero."""
        for order_id in ("o-1", "o-2"):
            expected = [p for p in self.stored.values() if p.order_id == order_id]
            assert self.ledger.postings(order_id) == expected
        balances = self.ledger.balances("CNY")
        for account in _ACCOUNTS:
            net = sum(
                p.amount.minor * ((p.target == account) - (p.source == account))
                for p in self.stored.values()
            )
            assert self.ledger.balance(account, "CNY") == _cny(net)
            if account in balances:
                assert balances[account] == _cny(net)
        assert sum(m.minor for m in balances.values()) == 0


def run_ledger_contract(
    factory: Callable[[], Ledger], settings: hypothesis.settings | None = None
) -> None:
    """Drive fresh ledgers from ``factory()`` through random appends against a model."""
    chosen = settings or hypothesis.settings(max_examples=40, stateful_step_count=20, deadline=None)

    class _Machine(_LedgerMachine):
        def __init__(self) -> None:
            super().__init__(factory())

    run_state_machine_as_test(_Machine, settings=chosen)


class LedgerContract:
    """The behaviour of :class:`~ecommerce_core.ports.Ledger`."""

    def make_ledger(self) -> Ledger:
        """A new, empty ledger."""
        raise NotImplementedError

    def test_append_stores_postings_per_order_in_order(self) -> None:
        """Appended postings come back per order, in the order they were appended."""
        ledger = self.make_ledger()
        first, second, other = _posting("a"), _posting("b", 50), _posting("c", order_id="o-2")
        assert ledger.append([first, other]) == 2
        assert ledger.append([second]) == 1
        assert ledger.postings("o-1") == [first, second]
        assert ledger.postings("o-2") == [other]
        assert ledger.postings("o-unknown") == []

    def test_appending_the_same_batch_again_changes_nothing(self) -> None:
        """A repeat of a batch appends nothing and returns zero."""
        ledger = self.make_ledger()
        batch = [_posting("a"), _posting("b", 50)]
        ledger.append(batch)
        assert ledger.append(list(batch)) == 0
        assert ledger.postings("o-1") == batch
        assert ledger.balance(_ESCROW, "CNY") == _cny(150)

    def test_a_partly_known_batch_appends_only_the_new_postings(self) -> None:
        """Known postings in a batch are skipped, new ones appended."""
        ledger = self.make_ledger()
        ledger.append([_posting("a")])
        assert ledger.append([_posting("a"), _posting("b", 50)]) == 1
        assert [p.key for p in ledger.postings("o-1")] == ["a", "b"]

    def test_a_known_key_with_another_posting_is_refused_and_nothing_is_appended(self) -> None:
        """An idempotency conflict anywhere in a batch appends none of it."""
        ledger = self.make_ledger()
        ledger.append([_posting("a")])
        with pytest.raises(IdempotencyConflict) as caught:
            ledger.append([_posting("b", 50), _posting("a", 999)])
        assert caught.value.key == "a"
        assert [p.key for p in ledger.postings("o-1")] == ["a"]
        assert ledger.balance(_ESCROW, "CNY") == _cny(100)

    def test_one_key_twice_in_a_batch_with_different_postings_is_refused(self) -> None:
        """A batch that contradicts itself raises InvalidInput and appends nothing."""
        ledger = self.make_ledger()
        with pytest.raises(InvalidInput):
            ledger.append([_posting("a"), _posting("a", 2)])
        assert ledger.postings("o-1") == []

    def test_only_postings_are_appended(self) -> None:
        """Anything but a Posting raises InvalidInput."""
        with pytest.raises(InvalidInput):
            self.make_ledger().append(["not a posting"])  # type: ignore[list-item]

    def test_balances_are_money_in_less_money_out_and_sum_to_zero(self) -> None:
        """Each account's balance nets its postings; all of them sum to zero, per currency."""
        ledger = self.make_ledger()
        ledger.append(
            [
                _posting("a", 7600),
                _posting("b", 7220, source=_ESCROW, target=_MERCHANT),
                _posting("c", 500, currency="USD"),
            ]
        )
        assert ledger.balance(_BUYER, "CNY") == _cny(-7600)
        assert ledger.balance(_ESCROW, "CNY") == _cny(380)
        assert ledger.balance(_MERCHANT, "CNY") == _cny(7220)
        assert ledger.balance(Account.commission(), "CNY") == _cny(0)
        balances = ledger.balances("CNY")
        assert sum(m.minor for m in balances.values()) == 0
        assert ledger.balances("USD") == {
            _BUYER: Money(-500, "USD"),
            _ESCROW: Money(500, "USD"),
        }

    def test_random_appends_match_a_simple_model(self) -> None:
        """Random batches, repeats and conflicts keep postings and balances equal to a model."""
        run_ledger_contract(self.make_ledger)


def make_payment(payment_id: str = "p-1", order_id: str = "o-1") -> GatewayPayment:
    """A new online payment for a contract order, started (version 1)."""
    order = make_order(order_id)
    return GatewayPayment.start(payment_id, order, Actor.buyer(order.buyer_id), now=CONTRACT_TIME)


def _authorize(payment: GatewayPayment, minutes: int = 0) -> None:
    payment.authorize(
        amount=payment.total,
        transaction_id="au-1",
        now=CONTRACT_TIME + timedelta(minutes=minutes),
        ttl=PaymentPolicy().authorization_ttl,
    )


class PaymentRepositoryContract:
    """The behaviour of :class:`~ecommerce_core.ports.PaymentRepository`."""

    def make_repository(self) -> PaymentRepository:
        """A new, empty repository."""
        raise NotImplementedError

    def test_get_returns_an_equal_copy_of_an_added_payment(self) -> None:
        """An added payment loads back equal in every stored field, as another object."""
        repository, payment = self.make_repository(), make_payment()
        repository.add(payment)
        loaded = repository.get("p-1")
        assert loaded is not payment
        assert isinstance(loaded, GatewayPayment)
        assert (loaded.id, loaded.order_id, loaded.state, loaded.version) == (
            "p-1",
            "o-1",
            "created",
            1,
        )
        assert (loaded.total, loaded.allocation, loaded.keys) == (
            payment.total,
            payment.allocation,
            payment.keys,
        )
        assert loaded.events == ()

    def test_an_unknown_id_raises_not_found_and_a_second_add_conflicts(self) -> None:
        """Loading an unknown id raises NotFound; adding an id twice raises Conflict."""
        repository = self.make_repository()
        repository.add(make_payment())
        with pytest.raises(NotFound):
            repository.get("p-missing")
        with pytest.raises(Conflict):
            repository.add(make_payment())

    def test_save_stores_with_the_expected_version_and_conflicts_otherwise(self) -> None:
        """A save from the stored version is stored; a stale one raises VersionConflict."""
        repository = self.make_repository()
        repository.add(make_payment())
        fresh, stale = repository.get("p-1"), repository.get("p-1")
        assert isinstance(fresh, GatewayPayment)
        assert isinstance(stale, GatewayPayment)
        _authorize(fresh)
        repository.save(fresh, 1)
        _authorize(stale, minutes=1)
        with pytest.raises(VersionConflict) as caught:
            repository.save(stale, 1)
        assert (caught.value.expected, caught.value.actual) == (1, 2)
        loaded = repository.get("p-1")
        assert (loaded.state, loaded.version, loaded.deadline) == (
            "authorized",
            2,
            fresh.deadline,
        )
        with pytest.raises(VersionConflict):
            repository.save(make_payment("p-new"), 1)

    def test_changing_a_loaded_payment_changes_nothing_stored_until_save(self) -> None:
        """Commands on a loaded copy leave the stored payment as it was."""
        repository = self.make_repository()
        repository.add(make_payment())
        loaded = repository.get("p-1")
        assert isinstance(loaded, GatewayPayment)
        loaded.request_capture("c-1", Actor.system(), amount=loaded.total, now=CONTRACT_TIME)
        stored = repository.get("p-1")
        assert isinstance(stored, GatewayPayment)
        assert (stored.captures, stored.version, "c-1" in stored.keys) == ((), 1, False)

    def test_for_order_lists_an_orders_payments_oldest_first(self) -> None:
        """Payments of one order come back in the order they were added."""
        repository = self.make_repository()
        for payment_id, order_id in (("p-2", "o-1"), ("p-1", "o-1"), ("p-3", "o-2")):
            repository.add(make_payment(payment_id, order_id))
        assert repository.for_order("o-1") == ["p-2", "p-1"]
        assert repository.for_order("o-9") == []

    def test_due_lists_payments_whose_deadline_has_come_earliest_first(self) -> None:
        """Authorizations whose expiry has come are due, earliest first, at most ``limit``."""
        repository = self.make_repository()
        for index, payment_id in enumerate(("p-late", "p-early")):
            payment = make_payment(payment_id, f"o-{index}")
            _authorize(payment, minutes=10 - 10 * index)
            repository.add(payment)
        repository.add(make_payment("p-none", "o-9"))
        ttl = PaymentPolicy().authorization_ttl
        assert repository.due(CONTRACT_TIME + ttl) == ["p-early"]
        later = CONTRACT_TIME + ttl + timedelta(minutes=10)
        assert repository.due(later) == ["p-early", "p-late"]
        assert repository.due(later, limit=1) == ["p-early"]


class CreditLinesContract:
    """The behaviour of :class:`~ecommerce_core.ports.CreditLines`."""

    def make_credit_lines(self, limits: Mapping[str, Money]) -> CreditLines:
        """Credit lines with exactly these limits and nothing drawn."""
        raise NotImplementedError

    def _lines(self) -> CreditLines:
        return self.make_credit_lines({"alice": _cny(50_000)})

    def test_a_draw_lowers_what_is_available(self) -> None:
        """Drawing moves money from available to drawn; the limit stays."""
        lines = self._lines()
        lines.draw("d-1", "alice", _cny(20_000))
        assert (lines.limit("alice"), lines.drawn("alice"), lines.available("alice")) == (
            _cny(50_000),
            _cny(20_000),
            _cny(30_000),
        )

    def test_a_draw_beyond_what_is_available_is_refused_and_draws_nothing(self) -> None:
        """Exactly the available amount may be drawn; a cent more raises CreditLimitExceeded."""
        lines = self._lines()
        lines.draw("d-1", "alice", _cny(30_000))
        with pytest.raises(CreditLimitExceeded):
            lines.draw("d-2", "alice", _cny(20_001))
        assert lines.drawn("alice") == _cny(30_000)
        lines.draw("d-3", "alice", _cny(20_000))
        assert lines.available("alice") == _cny(0)

    def test_draws_and_restorations_are_idempotent_by_key(self) -> None:
        """A repeated key changes nothing; a key reused for another amount conflicts."""
        lines = self._lines()
        lines.draw("d-1", "alice", _cny(10_000))
        lines.draw("d-1", "alice", _cny(10_000))
        lines.restore("r-1", "alice", _cny(4_000))
        lines.restore("r-1", "alice", _cny(4_000))
        assert lines.drawn("alice") == _cny(6_000)
        with pytest.raises(IdempotencyConflict):
            lines.draw("d-1", "alice", _cny(1))
        with pytest.raises(IdempotencyConflict):
            lines.restore("r-1", "alice", _cny(1))
        assert lines.drawn("alice") == _cny(6_000)

    def test_a_restoration_beyond_what_is_drawn_is_refused(self) -> None:
        """Giving back more than is drawn raises InvalidInput and changes nothing."""
        lines = self._lines()
        lines.draw("d-1", "alice", _cny(1_000))
        with pytest.raises(InvalidInput):
            lines.restore("r-1", "alice", _cny(1_001))
        assert lines.drawn("alice") == _cny(1_000)

    @pytest.mark.parametrize("minor", [0, -1])
    def test_an_amount_that_is_not_positive_is_refused(self, minor: int) -> None:
        """Zero or negative draws and restorations raise InvalidInput."""
        lines = self._lines()
        with pytest.raises(InvalidInput):
            lines.draw("d-1", "alice", _cny(minor))
        with pytest.raises(InvalidInput):
            lines.restore("r-1", "alice", _cny(minor))

    def test_another_currency_or_an_unknown_buyer_is_refused(self) -> None:
        """A draw in another currency raises CurrencyMismatch; an unknown buyer NotFound."""
        lines = self._lines()
        with pytest.raises(CurrencyMismatch):
            lines.draw("d-1", "alice", Money(100, "USD"))
        for call in (
            lambda: lines.limit("mallory"),
            lambda: lines.available("mallory"),
            lambda: lines.draw("d-2", "mallory", _cny(1)),
        ):
            with pytest.raises(NotFound):
                call()
