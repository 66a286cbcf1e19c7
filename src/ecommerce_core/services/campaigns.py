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
