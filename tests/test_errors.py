"""The error tree: one base, structured attributes, messages a person can act on."""

from __future__ import annotations

import pickle
from datetime import timedelta

import pytest

from ecommerce_core import (
    Conflict,
    CurrencyMismatch,
    DefinitionError,
    EcommerceCoreError,
    Forbidden,
    GuardRefused,
    IdempotencyConflict,
    InvalidInput,
    LimitExceeded,
    NotFound,
    OrderPolicy,
    OutOfStock,
    PaymentNotCompleted,
    RuleViolation,
    TransitionNotAllowed,
    UnknownCurrency,
    VersionConflict,
)

EXAMPLES = [
    DefinitionError("order.x", ["state 'a' is unreachable", "state 'b' has no way out"]),
    InvalidInput("quantity", -1, "must be at least 1"),
    UnknownCurrency("XYZ"),
    CurrencyMismatch("CNY", "USD", "add"),
    NotFound("order", "o-9"),
    VersionConflict("o-1", 3, 4),
    IdempotencyConflict("k-1", "different amount"),
    Forbidden("buyer:bob", "confirm_receipt", "o-1", "it is another buyer's order"),
    RuleViolation("o-1", "refund", "closed", "the after-sales window is over"),
    TransitionNotAllowed("o-1", "ship", "pending_payment", ["cancel", "pay"]),
    GuardRefused("o-1", "pay", "pending_payment", ["paid 1.00 CNY but the total is 2.00 CNY"]),
    OutOfStock("tea", 5, 2),
    LimitExceeded("per-buyer units", 2, 3, "o-1", "reserve"),
    PaymentNotCompleted("o-1", "pending_payment", "declined", "card expired"),
]


@pytest.mark.parametrize("error", EXAMPLES, ids=lambda e: type(e).__name__)
def test_every_error_is_an_ecommerce_core_error_with_its_message(error):
    assert isinstance(error, EcommerceCoreError)
    assert str(error) == error.message
    assert error.message


@pytest.mark.parametrize("error", EXAMPLES, ids=lambda e: type(e).__name__)
def test_every_error_survives_pickling_with_its_attributes(error):
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301  # our own object, round-tripped
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)


def test_errors_subclass_the_builtin_they_semantically_are():
    assert isinstance(InvalidInput("x", 1, "bad"), ValueError)
    assert isinstance(DefinitionError("d", ["p"]), ValueError)
    assert isinstance(NotFound("order", "o"), LookupError)
    assert isinstance(Forbidden("a", "c", "o", "r"), PermissionError)
    assert isinstance(VersionConflict("o", 1, 2), Conflict)


def test_messages_name_what_to_do():
    assert "reload and retry" in str(VersionConflict("o-1", 3, 4))
    assert "allowed here: cancel, pay" in str(
        TransitionNotAllowed("o-1", "ship", "x", ["cancel", "pay"])
    )
    assert "none (final state)" in str(TransitionNotAllowed("o-1", "ship", "closed", []))
    assert str(OutOfStock("tea", 5, 2)) == "out of stock: 'tea': 5 requested, 2 available"
    assert "the payment is declined (card expired)" in str(
        PaymentNotCompleted("o-1", "pending_payment", "declined", "card expired")
    )


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"payment_timeout": timedelta(0)}, "payment_timeout must be positive"),
        ({"after_sales_window": timedelta(days=-1)}, "after_sales_window must be positive"),
        ({"max_line_quantity": 0}, "max_line_quantity must be at least 1"),
        ({"max_lines": 0}, "max_lines must be at least 1"),
    ],
)
def test_a_policy_with_impossible_numbers_is_a_definition_error(changes, problem):
    with pytest.raises(DefinitionError) as caught:
        OrderPolicy(**changes)
    assert any(problem in p for p in caught.value.problems)
