"""What the sales modes share: release items, the new errors, and their registered processes."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecommerce_core import (
    Actor,
    AlreadyJoined,
    AlreadyLeading,
    BidTooLow,
    DeadlinePassed,
    DepositRequired,
    DrawInputsMissing,
    EcommerceCoreError,
    InvalidInput,
    Money,
    RuleViolation,
    TeamFull,
)
from ecommerce_core.campaigns.team import Team, TeamTerms
from ecommerce_core.orders import STANDARD_ORDER
from ecommerce_core.processes import PROCESSES
from ecommerce_core.releases import Release, ReleaseKind, releases_for_order, releases_for_stock

AT = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CNY = Money.of("9.90", "CNY")

EXAMPLES = [
    DeadlinePassed("t-1", "join", "forming", AT, AT),
    TeamFull("t-1", 3, open_new_team=True),
    AlreadyJoined("t-1", "alice", "a buyer never joins their own team"),
    BidTooLow("a-1", Money.of("110.00", "CNY"), Money.of("105.00", "CNY")),
    AlreadyLeading("a-1", "bob"),
    DepositRequired("a-1", "bob", Money.of("50.00", "CNY")),
    DrawInputsMissing("r-1", "sold_out", ["B (a public number)"]),
]


class TestTheNewErrors:
    @pytest.mark.parametrize("error", EXAMPLES, ids=lambda e: type(e).__name__)
    def test_every_new_error_is_a_rule_violation_with_its_message(self, error):
        assert isinstance(error, RuleViolation)
        assert isinstance(error, EcommerceCoreError)
        assert str(error) == error.message

    @pytest.mark.parametrize("error", EXAMPLES, ids=lambda e: type(e).__name__)
    def test_every_new_error_survives_pickling_with_its_attributes(self, error):
        copy = pickle.loads(pickle.dumps(error))  # noqa: S301  # our own object, round-tripped
        assert type(copy) is type(error)
        assert vars(copy) == vars(error)

    def test_messages_say_what_to_do(self):
        assert "open a new team instead" in str(TeamFull("t-1", 3, open_new_team=True))
        assert "the join is refused" in str(TeamFull("t-1", 3, open_new_team=False))
        assert "bid 105.00 CNY is below 110.00 CNY" in str(EXAMPLES[3])
        assert "must hold a deposit of 50.00 CNY" in str(EXAMPLES[5])
        assert "missing draw inputs: B (a public number)" in str(EXAMPLES[6])
        assert "has passed" in str(EXAMPLES[0])


class TestCommandChecks:
    def test_a_command_by_something_that_is_not_an_actor_is_refused(self):
        team = Team.open(
            Actor.buyer("alice"),
            team_id="t-1",
            terms=TeamTerms("pin", 2, AT + timedelta(days=1)),
            order_id="o-1",
            amount=CNY,
            payment_ref="tx",
            now=AT,
        )
        with pytest.raises(InvalidInput):
            team.join("buyer:bob", order_id="o-2", now=AT)

    def test_an_over_long_id_is_refused(self):
        with pytest.raises(InvalidInput, match="longer than 200"):
            Team.open(
                Actor.buyer("alice"),
                team_id="t" * 201,
                terms=TeamTerms("pin", 2, AT + timedelta(days=1)),
                order_id="o-1",
                amount=CNY,
                payment_ref="tx",
                now=AT,
            )


class TestReleases:
    def test_an_unpaid_order_gives_back_stock_quota_and_coupon_uses(self):
        items = releases_for_order("t-1", order_id="o-1", buyer_id="bob")
        assert [i.kind for i in items] == [
            ReleaseKind.STOCK,
            ReleaseKind.QUOTA,
            ReleaseKind.COUPON_USES,
        ]
        assert all(i.amount is None and i.payment_ref is None for i in items)

    def test_a_paid_order_also_voids_its_rebate_and_is_refunded_against_its_own_payment(self):
        items = releases_for_order(
            "t-1", order_id="o-1", buyer_id="bob", paid=CNY, payment_ref="tx"
        )
        refund = items[-1]
        assert (refund.kind, refund.amount, refund.payment_ref) == (ReleaseKind.REFUND, CNY, "tx")
        assert ReleaseKind.REBATE in {i.kind for i in items}

    def test_a_refund_needs_the_payment_it_undoes(self):
        with pytest.raises(InvalidInput):
            releases_for_order("t-1", order_id="o-1", buyer_id="bob", paid=CNY)

    def test_a_negative_payment_is_refused(self):
        with pytest.raises(InvalidInput):
            releases_for_order("t-1", order_id="o", buyer_id="b", paid=-CNY, payment_ref="tx")

    def test_an_items_own_stock_is_keyed_by_its_reservation(self):
        (item,) = releases_for_stock("a-1", "a-1")
        assert (item.kind, item.reference, item.buyer_id, item.key) == (
            ReleaseKind.STOCK,
            "a-1",
            "",
            "a-1:stock:a-1",
        )

    @given(
        orders=st.lists(st.text("abc", min_size=1, max_size=3), unique=True, max_size=8),
        paid=st.booleans(),
    )
    def test_keys_are_unique_across_the_orders_of_one_abandonment(self, orders, paid):
        items: list[Release] = []
        for order_id in orders:
            items.extend(
                releases_for_order(
                    "src",
                    order_id=order_id,
                    buyer_id="b",
                    paid=CNY if paid else None,
                    payment_ref="tx" if paid else None,
                )
            )
        assert len({i.key for i in items}) == len(items)


MODE_PROCESSES = {
    "team": "order.team",
    "group_buy": ("order.group_buy", "order.group_buy_deposit"),
    "draw_round": "order.lucky_draw",
    "rebate": None,
    "auction": "order.auction",
}


class TestTheRegisteredProcesses:
    @pytest.mark.parametrize("name", sorted(MODE_PROCESSES))
    def test_every_mode_registers_its_own_process(self, name):
        assert name in PROCESSES

    @pytest.mark.parametrize(
        "name",
        [
            "order.team",
            "order.group_buy",
            "order.group_buy_deposit",
            "order.lucky_draw",
            "order.auction",
        ],
    )
    def test_every_mode_order_process_extends_the_standard_order(self, name):
        process = PROCESSES[name]
        standard = {s.name for s in STANDARD_ORDER.states}
        assert standard <= set(process.states)
        assert process.initial == "pending_payment"
        assert {"closed", "cancelled"} <= process.final_states
        assert "ship" in process.triggers("awaiting_shipment")

    @pytest.mark.parametrize(
        ("name", "waiting"),
        [
            ("order.team", "awaiting_team"),
            ("order.group_buy", "awaiting_group"),
            ("order.group_buy_deposit", "awaiting_group"),
            ("order.group_buy_deposit", "awaiting_balance"),
            ("order.lucky_draw", "awaiting_draw"),
            ("order.lucky_draw", "awaiting_address"),
        ],
    )
    def test_no_mode_order_ships_while_it_waits_on_its_mode(self, name, waiting):
        assert "ship" not in PROCESSES[name].triggers(waiting)
