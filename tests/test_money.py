from __future__ import annotations

from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

import attrs
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ecommerce_core.errors import CurrencyMismatch, InvalidInput, UnknownCurrency
from ecommerce_core.money import CURRENCIES, MAX_MINOR_UNITS, Currency, Money, allocate_minor

codes = st.sampled_from(sorted(CURRENCIES))
minors = st.integers(-(10**15), 10**15)
monies = st.builds(Money, minors, codes)


def money_lists(min_size: int, max_size: int | None = None) -> st.SearchStrategy[list[Money]]:
    """Lists of amounts that all share one currency."""
    return codes.flatmap(
        lambda code: st.lists(
            st.builds(Money, minors, st.just(code)), min_size=min_size, max_size=max_size
        )
    )


same_currency_pairs = money_lists(2, 2)
weight_lists = st.lists(st.integers(0, 1_000), min_size=1, max_size=12).filter(
    lambda ws: sum(ws) > 0
)
totals = st.integers(0, 10**15)

REQUIRED = ["CNY", "USD", "EUR", "GBP", "JPY", "KRW", "HKD", "TWD", "SGD", "AUD", "CAD", "CHF",
            "INR", "RUB", "BRL", "MXN", "THB", "VND", "IDR", "MYR", "PHP", "NZD", "SEK", "NOK",
            "DKK", "PLN", "CZK", "HUF", "TRY", "ZAR", "AED", "SAR", "ILS", "KWD", "BHD", "OMR",
            "JOD", "TND", "CLP", "ISK", "UGX"]  # fmt: skip
BAD_CODES = ["XXX", "usd", "", " USD", "USDX", 123, None]


class TestCurrency:
    def test_every_required_currency_is_known(self):
        assert set(REQUIRED) <= set(CURRENCIES)

    @pytest.mark.parametrize(
        ("code", "exponent"),
        [("CNY", 2), ("USD", 2), ("JPY", 0), ("KRW", 0), ("VND", 0), ("CLP", 0), ("ISK", 0),
         ("UGX", 0), ("KWD", 3), ("BHD", 3), ("OMR", 3), ("JOD", 3), ("TND", 3), ("CLF", 4),
         ("UYW", 4)],
    )  # fmt: skip
    def test_currencies_know_their_minor_unit_digits(self, code, exponent):
        assert Currency.of(code) == Currency(code, exponent)

    def test_one_currency_object_is_shared_per_code(self):
        assert Currency.of("EUR") is Currency.of("EUR") is Money(1, "EUR").currency_info

    @pytest.mark.parametrize("code", BAD_CODES)
    def test_unknown_or_malformed_codes_are_refused(self, code):
        with pytest.raises(UnknownCurrency) as refused:
            Currency.of(code)
        assert refused.value.value == code


class TestConstruction:
    def test_floats_are_refused_for_money(self):
        with pytest.raises(InvalidInput, match="floats are refused") as refused:
            Money(1.5, "USD")  # type: ignore[arg-type]
        assert refused.value.field == "amount"

    @pytest.mark.parametrize("minor", [True, False, Decimal(1), "100", None])
    def test_minor_units_must_be_a_plain_int(self, minor):
        with pytest.raises(InvalidInput) as refused:
            Money(minor, "USD")
        assert refused.value.field == "amount"
        assert refused.value.value is minor

    @pytest.mark.parametrize("code", BAD_CODES)
    def test_unknown_currencies_are_refused_for_money(self, code):
        with pytest.raises(UnknownCurrency):
            Money(100, code)

    def test_absurd_magnitudes_are_refused(self):
        assert Money(-(10**18), "USD").minor == -(10**18)
        for minor in (10**18 + 1, -(10**18) - 1):
            with pytest.raises(InvalidInput, match="too large"):
                Money(minor, "USD")
        with pytest.raises(InvalidInput, match="too large"):
            Money.of("100000000000000000000", "JPY")

    @pytest.mark.parametrize(
        ("amount", "code", "minor"),
        [("12.34", "CNY", 1234), ("1200", "JPY", 1200), ("1.234", "KWD", 1234),
         ("-0.5", "USD", -50), (Decimal("12.30"), "EUR", 1230), (7, "GBP", 700),
         ("12.00", "JPY", 12), (Decimal("1E+3"), "JPY", 1000), ("0", "CLP", 0)],
    )  # fmt: skip
    def test_major_unit_amounts_are_parsed_exactly(self, amount, code, minor):
        assert Money.of(amount, code) == Money(minor, code)

    def test_floats_are_refused_for_major_units_with_a_hint(self):
        with pytest.raises(InvalidInput, match=r"str .* or a Decimal") as refused:
            Money.of(1.5, "USD")  # type: ignore[arg-type]
        assert refused.value.field == "amount"

    @pytest.mark.parametrize(
        "amount",
        ["abc", "NaN", "Infinity", "", "1e3", " 1", "1.2.3", "1_000", "١٢", True,
         Decimal("NaN"), Decimal("-Infinity")],
    )  # fmt: skip
    def test_malformed_major_unit_amounts_are_refused(self, amount):
        with pytest.raises(InvalidInput) as refused:
            Money.of(amount, "USD")
        assert refused.value.field == "amount"

    @pytest.mark.parametrize(
        ("amount", "code"), [("1.005", "CNY"), ("12.5", "JPY"), ("1.2345", "KWD")]
    )
    def test_too_many_decimals_are_refused_unless_a_rounding_is_given(self, amount, code):
        with pytest.raises(InvalidInput, match=r"rounding=decimal\.ROUND_HALF_EVEN"):
            Money.of(amount, code)

    @pytest.mark.parametrize(
        ("amount", "code", "rounding", "expected"),
        [("1.005", "CNY", ROUND_HALF_UP, "1.01"), ("1.005", "CNY", ROUND_HALF_EVEN, "1.00"),
         ("-1.005", "CNY", ROUND_HALF_UP, "-1.01"), ("12.5", "JPY", ROUND_HALF_EVEN, "12"),
         ("13.5", "JPY", ROUND_HALF_EVEN, "14"), ("1.2345", "KWD", ROUND_HALF_UP, "1.235")],
    )  # fmt: skip
    def test_a_rounding_mode_quantizes_to_the_currency(self, amount, code, rounding, expected):
        assert Money.of(amount, code, rounding).amount == Decimal(expected)

    def test_an_unknown_rounding_mode_is_refused(self):
        with pytest.raises(InvalidInput) as refused:
            Money.of("1.005", "CNY", "HALF_UP")
        assert refused.value.field == "rounding"

    @given(monies)
    def test_major_units_round_trip_for_every_currency(self, money):
        assert Money.of(str(money.amount), money.currency) == money
        assert money.amount.scaleb(money.currency_info.exponent) == money.minor

    def test_the_magnitude_limit_itself_is_allowed_on_both_sides(self):
        for minor in (MAX_MINOR_UNITS, -MAX_MINOR_UNITS):
            money = Money(minor, "USD")
            attrs.validate(money)  # the fields' own validators agree with the constructor
            assert money.minor == minor
        assert Money(MAX_MINOR_UNITS - 1, "USD") + Money(1, "USD") == Money(MAX_MINOR_UNITS, "USD")
        assert Money(1 - MAX_MINOR_UNITS, "USD") - Money(1, "USD") == Money(-MAX_MINOR_UNITS, "USD")
        with pytest.raises(InvalidInput, match="too large"):
            Money(-MAX_MINOR_UNITS, "USD") - Money(1, "USD")

    @given(monies)
    @example(Money(1, "USD"))
    @example(Money(-1, "USD"))
    @example(Money(0, "USD"))
    def test_sign_predicates_follow_the_minor_units(self, money):
        predicates = (money.is_zero, money.is_positive, money.is_negative)
        assert predicates == (money.minor == 0, money.minor > 0, money.minor < 0)
        assert Money.zero(money.currency).is_zero


class TestFormatting:
    @pytest.mark.parametrize(
        ("minor", "code", "text"),
        [(1234, "CNY", "12.34 CNY"), (1200, "JPY", "1200 JPY"), (1234, "KWD", "1.234 KWD"),
         (-50, "USD", "-0.50 USD"), (5, "USD", "0.05 USD"), (0, "EUR", "0.00 EUR")],
    )  # fmt: skip
    def test_str_shows_the_currency_decimal_places(self, minor, code, text):
        assert str(Money(minor, code)) == text

    def test_repr_shows_the_major_amount_and_code(self):
        assert repr(Money(1234, "CNY")) == "Money('12.34', 'CNY')"


class TestArithmetic:
    @given(same_currency_pairs)
    def test_adding_then_subtracting_gives_back_the_start(self, pair):
        a, b = pair
        assert a + b - b == a

    @given(same_currency_pairs)
    def test_addition_is_commutative(self, pair):
        a, b = pair
        assert a + b == b + a

    @given(money_lists(1))
    def test_sum_adds_minor_units(self, items):
        assert sum(items) == Money(sum(m.minor for m in items), items[0].currency)

    @given(monies, st.integers(-1_000, 1_000))
    def test_multiplying_by_a_quantity_scales_minor_units(self, money, quantity):
        assert money * quantity == quantity * money == Money(money.minor * quantity, money.currency)

    @given(monies)
    def test_negation_flips_the_sign_and_cancels_out(self, money):
        assert (-money).minor == -money.minor
        assert (-money).currency == money.currency
        assert money + -money == Money.zero(money.currency)

    @given(same_currency_pairs)
    def test_comparison_is_consistent_with_minor_units(self, pair):
        a, b = pair
        assert (a < b, a <= b, a > b, a >= b, a == b) == (
            a.minor < b.minor, a.minor <= b.minor, a.minor > b.minor, a.minor >= b.minor,
            a.minor == b.minor,
        )  # fmt: skip

    @given(monies)
    def test_an_amount_compares_equal_to_the_same_amount_and_no_more(self, money):
        same = Money(money.minor, money.currency)
        assert (money < same, money <= same, money > same, money >= same) == (
            False, True, False, True,
        )  # fmt: skip

    @pytest.mark.parametrize(
        "operation",
        [lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a < b, lambda a, b: a <= b,
         lambda a, b: a > b, lambda a, b: a >= b],
    )  # fmt: skip
    def test_mixed_currencies_are_refused(self, operation):
        with pytest.raises(CurrencyMismatch) as refused:
            operation(Money(100, "USD"), Money(100, "EUR"))
        assert (refused.value.expected, refused.value.actual) == ("USD", "EUR")

    def test_different_currencies_are_simply_unequal(self):
        assert Money(100, "USD") != Money(100, "EUR")
        assert hash(Money(100, "USD")) == hash(Money.of("1", "USD"))

    @pytest.mark.parametrize(
        "operation",
        [lambda m: m + 1, lambda m: 1 + m, lambda m: m - 1, lambda m: m < 1, lambda m: m / 2,
         lambda m: m * "2", lambda m: m + Decimal(0)],
    )  # fmt: skip
    def test_non_money_operands_are_unsupported(self, operation):
        with pytest.raises(TypeError):
            operation(Money(100, "USD"))

    @pytest.mark.parametrize("factor", [1.5, Decimal(2), True])
    def test_only_int_quantities_multiply_money(self, factor):
        money = Money(100, "USD")
        for operation in (lambda: money * factor, lambda: factor * money):
            with pytest.raises(InvalidInput) as refused:
                operation()
            assert refused.value.field == "quantity"
        assert money == Money(100, "USD")

    def test_results_beyond_the_magnitude_limit_are_refused(self):
        with pytest.raises(InvalidInput, match="too large"):
            Money(10**18, "USD") + Money(1, "USD")


class TestAllocation:
    @given(totals, weight_lists)
    def test_shares_sum_exactly_to_the_total(self, total, weights):
        assert sum(allocate_minor(total, weights)) == total

    @given(totals, weight_lists)
    def test_each_share_is_the_floor_or_ceiling_of_its_exact_part(self, total, weights):
        whole = sum(weights)
        for weight, share in zip(weights, allocate_minor(total, weights), strict=True):
            assert total * weight // whole <= share <= -(-total * weight // whole)

    @given(totals, weight_lists, st.data())
    def test_permuting_the_weights_permutes_the_shares(self, total, weights, data):
        permuted = data.draw(st.permutations(weights))
        before = sorted(zip(weights, allocate_minor(total, weights), strict=True))
        after = sorted(zip(permuted, allocate_minor(total, permuted), strict=True))
        assert before == after

    @given(totals, weight_lists.map(lambda ws: [*ws, 0]))
    def test_a_zero_weight_gets_nothing(self, total, weights):
        shares = allocate_minor(total, weights)
        assert all(s == 0 for w, s in zip(weights, shares, strict=True) if w == 0)

    @given(monies.map(lambda m: Money(abs(m.minor), m.currency)), weight_lists)
    def test_money_allocation_keeps_the_currency(self, money, weights):
        shares = money.allocate(weights)
        assert {s.currency for s in shares} == {money.currency}
        assert sum(shares) == money

    @given(
        totals | st.integers(0, 50),
        st.lists(st.integers(0, 6), min_size=1, max_size=8).filter(lambda ws: sum(ws) > 0),
    )
    @example(2, [0, 2, 1])  # remainders 1 and 2: the smaller weight's larger remainder wins
    def test_shares_follow_the_documented_largest_remainder_rule(self, total, weights):
        # the rule written out plainly: floors first, then one unit each by remainder, then
        # weight (both largest first), then index (lowest first); small weights make ties
        whole = sum(weights)
        shares = [total * weight // whole for weight in weights]
        order = sorted(
            range(len(weights)),
            key=lambda i: (-(total * weights[i] % whole), -weights[i], i),
        )
        for index in order[: total - sum(shares)]:
            shares[index] += 1
        assert allocate_minor(total, weights) == shares

    @given(weight_lists)
    def test_allocating_no_money_gives_every_weight_nothing(self, weights):
        zero = Money.zero("EUR")
        assert zero.allocate(weights) == [zero] * len(weights)

    def test_a_refused_weight_is_named_in_the_message(self):
        with pytest.raises(InvalidInput, match=r"-1 is not a non-negative int"):
            allocate_minor(10, [0, 2, -1])

    def test_leftover_units_go_to_the_largest_remainder_then_weight_then_index(self):
        assert allocate_minor(100, [1, 1, 1]) == [34, 33, 33]
        assert allocate_minor(2, [1, 3]) == [0, 2]
        assert allocate_minor(2, [3, 1]) == [2, 0]
        shares = Money.of("0.05", "USD").allocate([1, 0, 2])
        assert shares == [Money(2, "USD"), Money(0, "USD"), Money(3, "USD")]

    @pytest.mark.parametrize(
        ("total", "weights", "field"),
        [(10, [1, -1], "weights"), (10, [], "weights"), (10, [0, 0], "weights"),
         (10, [1, True], "weights"), (10, [1.5], "weights"), (10, {1, 2}, "weights"),
         (-1, [1], "total"), (True, [1], "total")],
    )  # fmt: skip
    def test_bad_allocations_are_refused(self, total, weights, field):
        original = list(weights)
        with pytest.raises(InvalidInput) as refused:
            allocate_minor(total, weights)
        assert refused.value.field == field
        assert list(weights) == original

    def test_a_negative_amount_cannot_be_allocated(self):
        with pytest.raises(InvalidInput) as refused:
            Money(-1, "USD").allocate([1, 1])
        assert refused.value.field == "amount"
