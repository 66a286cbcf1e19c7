"""The collective sales modes' journeys in the simulation, one class per mode.

Each mode places its orders through :class:`~ecommerce_core.services.CampaignService` and
hands them back to the :class:`~ecommerce_core.simulation.engine.Simulator`, which pays,
ships and delivers them like any other order; a mode only adds what is its own (a team to
join, a team order that may ship only once its team formed) and the invariants it must keep
(in :mod:`ecommerce_core.simulation.checks`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

from ecommerce_core.actors import Actor
from ecommerce_core.campaigns.team import AWAITING_TEAM, TeamState, TeamTerms
from ecommerce_core.orders import Order

if TYPE_CHECKING:
    from ecommerce_core.simulation.world import SimulatedWorld

__all__ = [
    "TEAM_CAMPAIGN_ID",
    "TEAM_SIZE",
    "TEAM_SKU",
    "TeamJourneys",
]

TEAM_CAMPAIGN_ID: Final = "sim-team"
"""The simulation's team-purchase campaign (拼团): pots, teams of :data:`TEAM_SIZE`."""
TEAM_SIZE: Final = 3
"""Members a simulated team needs, its leader included."""
TEAM_SKU: Final = "pot-01"
"""What the simulated teams buy."""

_CAMPAIGN_DAYS: Final = 30
_TEAM_VALIDITY: Final = timedelta(hours=6)


class TeamJourneys:
    """Buyers who join a forming team, or lead a new one when none takes them.

    Args:
        world: The wired services (its ``service`` must offer team purchase).
        campaign_start: When the campaign opens (it runs for 30 simulated days).

    """

    def __init__(self, world: SimulatedWorld, campaign_start: datetime) -> None:
        self.world = world
        self.terms = TeamTerms(
            TEAM_CAMPAIGN_ID,
            size=TEAM_SIZE,
            ends_at=campaign_start + timedelta(days=_CAMPAIGN_DAYS),
            validity=_TEAM_VALIDITY,
        )
        self._forming: list[str] = []

    def place(self, buyer: Actor) -> Order:
        """Place a team order: a place in the oldest forming team that takes ``buyer``.

        When none does, a leader's order, which :meth:`pay` pays by opening its team.
        """
        service = self.world.service
        for team_id in list(self._forming):
            team = service.team(team_id)
            if team.state != TeamState.FORMING or team.places_left == 0:
                if team.state != TeamState.FORMING:
                    self._forming.remove(team_id)
                continue
            if any(m.buyer_id == buyer.id for m in team.members):
                continue
            return service.place_team_order(buyer, TEAM_SKU, team_id=team_id)
        return service.place_team_order(buyer, TEAM_SKU)

    def pay(self, order_id: str, buyer: Actor, key: str) -> None:
        """Pay a team order: a leader's opens its team, a joiner's may complete one."""
        service = self.world.service
        if service.teams is not None and service.teams.team_of(order_id) is None:
            team = service.lead_team(order_id, buyer, self.terms, key=key)
            self._forming.append(team.id)
        else:
            service.pay_team_member(order_id, buyer, key=key)

    def when_shippable(self, order_id: str, ship: Callable[[], None]) -> timedelta | None:
        """Ship now if the order's team formed; else how long to wait before asking again.

        Returns:
            ``None`` once acted on (shipped, or the order is final: its team failed).

        """
        order = self.world.service.orders.get(order_id)
        if order.state == AWAITING_TEAM:
            return timedelta(hours=1)
        if not order.is_final:
            ship()
        return None
