"""What a newcomer backend team trips over, each fixed and kept fixed.

A host adopting the library from the README and docs/embedding.md wrote its own order
repository, ran the published contract suites and lifecycle machine on it, and tried careless
inputs on the services. These are the places that did not answer with a typed error, or a
published name that could not be imported where the docs said.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from datetime import timedelta
from pathlib import Path

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ecommerce_core
import ecommerce_core.testing as testing_kit
from ecommerce_core import (
    Actor,
    CartItem,
    DefinitionError,
    InvalidInput,
    Money,
    NotFound,
    Order,
    OrderPolicy,
    TrackingEvent,
    TrackingStatus,
    UnknownCurrency,
)
from ecommerce_core.adapters import sqlite_aggregates
from ecommerce_core.adapters.memory import InMemoryOrderRepository
from ecommerce_core.demo import demo_payment_service, demo_service
from ecommerce_core.money import Currency
from ecommerce_core.ports import Product
from ecommerce_core.testing import CONTRACT_TIME, contracts, payment_contracts
from ecommerce_core.testing.contracts import OrderRepositoryContract

ALICE = Actor.buyer("alice")
TEAHOUSE = Actor.merchant("m-teahouse")
SF = Actor.carrier("SF")
CARELESS_KEYS = st.sampled_from([None, "", "   ", 7, b"key"])
KNOWN_CODES = ("CNY", "USD", "EUR", "JPY", "KWD", "GBP")


def cny(amount: str) -> Money:
    return Money.of(amount, "CNY")


class TestTheTestingKitPublishesEveryContract:
    @pytest.mark.parametrize("module", [contracts, payment_contracts], ids=lambda m: m.__name__)
    def test_every_name_a_contract_module_publishes_is_published_by_the_testing_package(
        self, module
    ):
        missing = sorted(set(module.__all__) - set(testing_kit.__all__))
        assert missing == [], f"add to ecommerce_core.testing: {missing}"

    def test_the_campaign_repository_contracts_import_from_the_testing_package(self):
        for name in (
            "TeamRepositoryContract",
            "AuctionRepositoryContract",
            "DrawRoundRepositoryContract",
            "GroupBuyRepositoryContract",
            "RebateRepositoryContract",
        ):
            assert getattr(testing_kit, name) is getattr(contracts, name)


class _Snapshot:
    """What a refused payment command must leave as it was."""

    @staticmethod
    def of(service, order_ids):
        return [
            (
                service.orders.get(order_id).version,
                service.money(order_id),
                [(p.id, p.version, p.state) for p in service.payments_of(order_id)],
            )
            for order_id in order_ids
        ]


class TestAnIdempotencyKeyThatIsNotAStringIsRefused:
    """Before, ``key=None`` was formatted into the record id as "None" and accepted."""

    @settings(max_examples=15, deadline=None)
    @given(key=CARELESS_KEYS)
    def test_refund_capture_collect_and_repay_refuse_the_key_and_change_nothing(self, key):
        service, _ = demo_payment_service(credit_limit="300.00")
        authorized = service.buy_now(ALICE, "tea-01", 2)
        service.pay(authorized.id, ALICE, capture=False)
        (payment,) = service.payments_of(authorized.id)
        paid = service.buy_now(ALICE, "tea-01", 1)
        service.pay(paid.id, ALICE)
        cod = service.buy_now(ALICE, "tea-01", 1, "cod")
        service.ship(cod.id, TEAHOUSE, carrier="SF", tracking_number="SF1")
        credit = service.buy_now(ALICE, "tea-01", 1, "credit")
        service.pay_with_credit(credit.id, ALICE, periods=3)
        ids = [authorized.id, paid.id, cod.id, credit.id]
        before = _Snapshot.of(service, ids)
        for command in (
            lambda: service.capture(payment.id, TEAHOUSE, amount=cny("1.00"), key=key),
            lambda: service.refund(paid.id, TEAHOUSE, key=key, amount=cny("1.00")),
            lambda: service.collect_cod(cod.id, SF, amount=cod.total, key=key),
            lambda: service.repay(credit.id, ALICE, key=key),
        ):
            with pytest.raises(InvalidInput) as refused:
                command()
            assert (refused.value.field, refused.value.value) == ("key", key)
            assert "non-empty string" in str(refused.value)
        assert _Snapshot.of(service, ids) == before

    def test_a_real_key_still_works_and_a_repeat_returns_the_first_refund(self):
        service, _ = demo_payment_service()
        order = service.buy_now(ALICE, "tea-01", 2)
        service.pay(order.id, ALICE)
        first = service.refund(order.id, TEAHOUSE, key="rf-1", amount=cny("5.00"))
        again = service.refund(order.id, TEAHOUSE, key="rf-1", amount=cny("5.00"))
        assert first.id == again.id
        assert service.money(order.id).refunded == cny("5.00")


class TestACaptureFlagThatIsNotABoolIsRefused:
    @pytest.mark.parametrize("capture", ["no", 0, None, 1])
    def test_pay_refuses_it_before_asking_the_provider_and_changes_nothing(self, capture):
        service, _ = demo_payment_service()
        (order,) = service.checkout(ALICE, [CartItem("tea-01", 1)], "online")
        before = _Snapshot.of(service, [order.id])
        with pytest.raises(InvalidInput) as refused:
            service.pay(order.id, ALICE, capture=capture)
        assert refused.value.field == "capture"
        assert _Snapshot.of(service, [order.id]) == before
        assert service.pay(order.id, ALICE, capture=True).payment is not None


class TestACheckoutGivenSomethingOtherThanAListIsRefused:
    @pytest.mark.parametrize("cart", [CartItem("tea-01", 1), None, 5], ids=repr)
    def test_a_single_item_or_none_raises_invalid_input_and_stores_nothing(self, cart):
        service, _ = demo_service(stock=5)
        with pytest.raises(InvalidInput) as refused:
            service.checkout(ALICE, cart)
        assert (refused.value.field, refused.value.value) == ("cart", cart)
        assert "list of CartItem" in str(refused.value)
        assert len(service.orders) == 0
        assert service.inventory.available("tea-01") == 5


class TestALowerCaseOrPaddedCurrencyCodeIsRefusedWithAHint:
    @given(code=st.sampled_from(KNOWN_CODES), shape=st.sampled_from(["lower", "pad", "title"]))
    @settings(max_examples=20, deadline=None)
    def test_the_error_names_the_code_the_caller_meant(self, code, shape):
        careless = {"lower": code.lower(), "pad": f" {code} ", "title": code.title()}[shape]
        with pytest.raises(UnknownCurrency) as refused:
            Money.of("1.00", careless)
        assert (refused.value.value, refused.value.suggestion) == (careless, code)
        assert f"did you mean {code!r}" in str(refused.value)
        assert Currency.of(code).code == code

    @pytest.mark.parametrize("code", ["XYZ", "xyz", "", None, 978])
    def test_a_code_that_is_nothing_like_a_known_one_gets_no_hint(self, code):
        with pytest.raises(UnknownCurrency) as refused:
            Currency.of(code)
        assert refused.value.suggestion is None
        assert "did you mean" not in str(refused.value)


class _KeyErrorRepository(InMemoryOrderRepository):
    """A repository a host might write: a plain dict look-up that lets TypeError out."""

    def __init__(self) -> None:
        super().__init__()
        self.plain: dict[str, Order] = {}

    def add(self, order: Order) -> None:
        super().add(order)
        self.plain[order.id] = order

    def get(self, order_id: str) -> Order:
        if not isinstance(order_id, str):
            raise TypeError(f"unhashable or wrong id {order_id!r}")
        return super().get(order_id)


class TestTheOrderRepositoryContractChecksIdsThatAreNotStrings:
    def test_a_repository_that_lets_a_type_error_out_fails_the_contract(self):
        class Broken(OrderRepositoryContract):
            def make_repository(self):
                return _KeyErrorRepository()

        with pytest.raises(TypeError):
            Broken().test_get_of_an_id_that_is_not_a_string_raises_not_found()

    def test_the_service_answers_not_found_for_an_id_that_is_not_a_string(self):
        service, _ = demo_service()
        for wrong in (42, None):
            with pytest.raises(NotFound) as refused:
                service.pay(wrong, ALICE)
            assert refused.value.key == wrong


class TestConfigurationMistakesAreTypedErrors:
    """A host's set-up code gets the library's errors, not a TypeError from deep inside."""

    @pytest.mark.parametrize(
        ("owner", "field", "error"),
        [
            ("ecommerce_core.limits.Limit", "measure", DefinitionError),
            (
                "ecommerce_core.aftersales.policy.AfterSalesPolicy",
                "freight_refund",
                DefinitionError,
            ),
            ("ecommerce_core.aftersales.policy.AfterSalesPolicy", "failed_parcel", DefinitionError),
            ("ecommerce_core.policies.PricingPolicy", "recheck_at_payment", DefinitionError),
            ("ecommerce_core.promotions.rules.Promotion", "stacking", DefinitionError),
            ("ecommerce_core.auctions.AuctionTerms", "second_chance", DefinitionError),
            ("ecommerce_core.delivery.options.DeliveryOption", "method", InvalidInput),
            ("ecommerce_core.actors.Actor", "kind", InvalidInput),
            ("ecommerce_core.payments.ledger.Account", "kind", InvalidInput),
            ("ecommerce_core.payments.ledger.Posting", "movement", InvalidInput),
        ],
    )
    def test_a_choice_field_given_an_unknown_value_names_the_field_and_the_choices(
        self, owner, field, error
    ):
        module_name, _, name = owner.rpartition(".")
        module = importlib.import_module(module_name)
        attribute = attrs.fields_dict(getattr(module, name))[field]
        choices = getattr(module, str(attribute.type))  # the field's enum
        convert = attribute.converter
        for member in choices:
            assert convert(member.value) is member
        with pytest.raises(error) as refused:
            convert("no-such-choice")
        message = str(refused.value)
        assert field in message
        assert "no-such-choice" in message
        assert all(repr(member.value) in message for member in choices)
        assert isinstance(refused.value, ValueError)  # as the bare enum call raised before

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("payment_timeout", 30),
            ("auto_confirm_after", "10 days"),
            ("after_sales_window", None),
            ("max_lines", "500"),
            ("max_line_quantity", 1.5),
            ("auto_confirm_extensions", None),
        ],
    )
    def test_an_order_policy_of_the_wrong_type_raises_definition_error_naming_the_field(
        self, field, value
    ):
        with pytest.raises(DefinitionError) as refused:
            OrderPolicy(**{field: value})
        assert any(problem.startswith(f"{field} must be") for problem in refused.value.problems)

    def test_an_order_policy_with_right_types_but_bad_values_still_lists_every_problem(self):
        with pytest.raises(DefinitionError) as refused:
            OrderPolicy(payment_timeout=timedelta(0), max_lines=0)
        assert len(refused.value.problems) == 2

    @pytest.mark.parametrize(
        ("fields", "field"),
        [
            ({"unit_price": 38}, "unit_price"),
            ({"unit_price": 1.5}, "unit_price"),
            ({"unit_price": Money.of("-0.01", "CNY")}, "unit_price"),
            ({"sku": ""}, "sku"),
            ({"merchant_id": None}, "merchant_id"),
        ],
        ids=repr,
    )
    def test_a_product_with_a_bad_price_or_id_is_refused_when_it_is_built(self, fields, field):
        good = {"sku": "tea-01", "merchant_id": "m-1", "name": "tea", "unit_price": cny("38.00")}
        with pytest.raises(InvalidInput) as refused:
            Product(**{**good, **fields})
        assert refused.value.field == field

    def test_a_free_product_is_still_a_product(self):
        assert Product("gift", "m-1", "a gift", cny("0.00")).unit_price.is_zero


ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\]\(([^)\s]*?)#([^)\s]+)\)")


def _slug(heading: str) -> str:
    """The anchor Python-Markdown's toc gives a heading (its default slugify)."""
    text = re.sub(r"[^\w\s-]", "", heading.replace("`", "")).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def _anchors(page: Path) -> set[str]:
    text = re.sub(
        r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.DOTALL | re.MULTILINE
    )
    return {_slug(h) for h in re.findall(r"^#{1,6}\s+(.+?)\s*$", text, re.MULTILINE)}


def _links() -> list[tuple[str, Path, str]]:
    found = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for target, anchor in LINK.findall(page.read_text(encoding="utf-8")):
            if target.startswith(("http:", "https:")):
                continue
            where = page if not target else (page.parent / target).resolve()
            found.append((str(page.relative_to(ROOT)), where, anchor))
    return found


class TestEveryLinkToASectionLandsOnOne:
    def test_the_slug_rule_matches_the_sections_the_docs_link_to(self):
        assert (
            _slug("Calling `expire_due` from a scheduler") == "calling-expire_due-from-a-scheduler"
        )
        assert _slug("An order repository of your own, end to end") == (
            "an-order-repository-of-your-own-end-to-end"
        )

    @pytest.mark.parametrize(("page", "target", "anchor"), _links(), ids=lambda v: str(v)[-40:])
    def test_the_anchor_names_a_heading_of_the_page_it_points_to(self, page, target, anchor):
        assert target.exists(), f"{page} links to a missing page {target}"
        assert anchor in _anchors(target), f"{page}: no section #{anchor} in {target.name}"


def _host_facing_modules() -> list[str]:
    """The modules a host imports from: ports, services, adapters and the testing kit."""
    names = []
    for info in pkgutil.walk_packages(ecommerce_core.__path__, "ecommerce_core."):
        parts = info.name.split(".")
        if parts[1] in {"ports", "services", "adapters", "testing"} and not any(
            part.startswith("_") for part in parts
        ):
            names.append(info.name)
    return sorted(names)


class TestEveryPublicNameAHostMeetsIsExported:
    @pytest.mark.parametrize("module_name", _host_facing_modules())
    def test_every_public_class_and_function_defined_in_the_module_is_in_its_all(self, module_name):
        module = importlib.import_module(module_name)
        defined = {
            name
            for name, value in vars(module).items()
            if not name.startswith("_")
            and (inspect.isclass(value) or inspect.isfunction(value))
            and value.__module__ == module_name
        }
        assert defined - set(getattr(module, "__all__", ())) == set()

    def test_the_composite_look_up_helper_of_the_sqlite_repositories_is_exported(self):
        assert "joined" in sqlite_aggregates.__all__
        assert sqlite_aggregates.joined("SF", "SF1") != sqlite_aggregates.joined("SFS", "F1")


class TestTheDocsNameEveryPartOfTheTestingKit:
    @pytest.mark.parametrize(
        "name",
        sorted(n for n in testing_kit.__all__ if n.endswith("Contract") or n.startswith("run_")),
    )
    def test_every_contract_and_runner_is_named_in_the_docs(self, name):
        pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
        assert any(f"`{name}" in page.read_text(encoding="utf-8") for page in pages), name


class TestACarrierReportWithAnUnknownStatusIsInvalidInput:
    @given(status=st.text(max_size=12).filter(lambda s: s not in set(TrackingStatus)))
    @settings(max_examples=25, deadline=None)
    def test_the_error_names_the_field_and_lists_the_statuses(self, status):
        with pytest.raises(InvalidInput) as refused:
            TrackingEvent("ev-1", "SF", "SF1", status, CONTRACT_TIME)
        assert (refused.value.field, refused.value.value) == ("status", status)
        assert "in_transit" in str(refused.value)

    @pytest.mark.parametrize("status", list(TrackingStatus))
    def test_a_status_given_as_its_value_or_member_is_the_member(self, status):
        for given_as in (status, str(status.value)):
            event = TrackingEvent("ev-1", "SF", "SF1", given_as, CONTRACT_TIME)
            assert event.status is status
