"""The collective sales modes wired into orders, payments (the ledger) and stock.

:class:`CampaignService` is a :class:`~ecommerce_core.services.payments.PaymentService` that
also runs the collective modes. Each mode is one part, in its own module, that adds its use
cases and passes every order of another process on unchanged:

- team purchase (拼团): :class:`~ecommerce_core.services.teams.TeamPurchases`;
- auction (竞拍): :class:`~ecommerce_core.services.auctions.Auctions`.

A host offers a mode by giving its repository; a mode without one is not offered (its use
cases raise :class:`~ecommerce_core.errors.DefinitionError`) and :meth:`expire_due` skips it.
One :meth:`expire_due`, called from the host's scheduler, settles every mode's deadlines.
"""

from __future__ import annotations

import attrs

from ecommerce_core.ports import AuctionRepository, TeamRepository
from ecommerce_core.services.auctions import Auctions
from ecommerce_core.services.teams import TeamOrderFailed, TeamOrderFormed, TeamPurchases

__all__ = [
    "CampaignService",
    "TeamOrderFailed",
    "TeamOrderFormed",
]


@attrs.define
class CampaignService(Auctions, TeamPurchases):
    """The payment use cases, plus every collective mode on the same orders, ledger and stock.

    Build it like a :class:`~ecommerce_core.services.payments.PaymentService`, plus the
    repository of each mode offered.

    Attributes:
        teams: Where teams are stored (``None``: team purchase is not offered).
        auctions: Where auctions are stored (``None``: auctions are not offered).

    """

    teams: TeamRepository | None = attrs.field(default=None, kw_only=True)
    auctions: AuctionRepository | None = attrs.field(default=None, kw_only=True)
