"""The collective sales modes wired into orders, payments (the ledger) and stock.

:class:`CampaignService` is a :class:`~ecommerce_core.services.payments.PaymentService` that
also runs the collective modes. Each mode is one part, in its own module, that adds its use
cases and passes every order of another process on unchanged:

- group buying (团购): :class:`~ecommerce_core.services.group_buys.GroupBuys` (first: it
  answers the provider's callbacks for group-buy deposits and balances, which have no payment
  record, before the parts that look a callback's payment record up);
- auction (竞拍): :class:`~ecommerce_core.services.auctions.Auctions` (next: it answers the
  provider's callbacks for deposits, which belong to no order);
- team purchase (拼团): :class:`~ecommerce_core.services.teams.TeamPurchases`;
- lucky draw (夺宝): :class:`~ecommerce_core.services.lucky_draws.LuckyDraws`;
- rebates (返利): :class:`~ecommerce_core.services.rebates.Rebates`, granted on any paid order
  whose pricing earned one, credited through the ledger when its after-sales window ends.

A host offers a mode by giving its repository; a mode without one is not offered (its use
cases raise :class:`~ecommerce_core.errors.DefinitionError`) and :meth:`expire_due` skips it.
One :meth:`expire_due`, called from the host's scheduler, settles every mode's deadlines.
"""

from __future__ import annotations

import attrs

from ecommerce_core.actors import Actor
from ecommerce_core.orders import Order
from ecommerce_core.ports import (
    AuctionRepository,
    DrawRoundRepository,
    GroupBuyRepository,
    RandomnessSource,
    RebateRepository,
    TeamRepository,
)
from ecommerce_core.services.auctions import Auctions
from ecommerce_core.services.group_buys import GroupBuys
from ecommerce_core.services.lucky_draws import LuckyDraws
from ecommerce_core.services.rebates import Rebates
from ecommerce_core.services.teams import TeamOrderFailed, TeamOrderFormed, TeamPurchases

__all__ = [
    "CampaignService",
    "TeamOrderFailed",
    "TeamOrderFormed",
]


@attrs.define
class CampaignService(GroupBuys, Auctions, TeamPurchases, LuckyDraws, Rebates):
    """The payment use cases, plus every collective mode on the same orders, ledger and stock.

    Build it like a :class:`~ecommerce_core.services.payments.PaymentService`, plus the
    repository of each mode offered.

    Attributes:
        teams: Where teams are stored (``None``: team purchase is not offered).
        rounds: Where lucky-draw rounds are stored (``None``: lucky draws are not offered).
        randomness: Where a round's public number comes from (needed to open a round).
        group_buys: Where group buys are stored (``None``: group buying is not offered).
        rebates: Where rebates are stored (``None``: rebates are not granted).
        auctions: Where auctions are stored (``None``: auctions are not offered).

    """

    teams: TeamRepository | None = attrs.field(default=None, kw_only=True)
    rounds: DrawRoundRepository | None = attrs.field(default=None, kw_only=True)
    randomness: RandomnessSource | None = attrs.field(default=None, kw_only=True)
    group_buys: GroupBuyRepository | None = attrs.field(default=None, kw_only=True)
    rebates: RebateRepository | None = attrs.field(default=None, kw_only=True)
    auctions: AuctionRepository | None = attrs.field(default=None, kw_only=True)

    def pay(
        self, order_id: str, actor: Actor, *, key: str | None = None, capture: bool = True
    ) -> Order:
        """Pay an order the way its sales mode pays; the order is loaded once.

        - a group-buy order: the campaign is checked before the provider is asked and the
          completed payment joins it (a deposit order pays its deposit, then its balance; see
          :class:`~ecommerce_core.services.group_buys.GroupBuys`);
        - an auction order: the balance after the deposit, and the lot is sold;
        - a joiner's team order: as :meth:`pay_team_member` (a leader's order is paid by
          :meth:`lead_team`);
        - a lucky-draw share order: as :meth:`pay_shares`;
        - any other order: as :meth:`PaymentService.pay
          <ecommerce_core.services.payments.PaymentService.pay>`.

        A collective mode's order is paid in full at once: ``capture=False`` is refused.

        Raises:
            InvalidInput: ``capture=False`` for a collective mode's order; a leader's team
                order; a group-buy order priced below the current quote.
            RuleViolation, DeadlinePassed, TransitionNotAllowed, OutOfStock: The mode no
                longer takes the payment (checked before the provider is asked; if it refuses
                afterwards, the order is failed or cancelled and refunded).
            PaymentNotCompleted: Declined, or pending at the provider.

        """
        return super().pay(order_id, actor, key=key, capture=capture)
