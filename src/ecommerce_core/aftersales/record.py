"""The after-sales record of one order: every request, and what they claim and refund."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Final

import attrs

from ecommerce_core._validation import text as _text
from ecommerce_core.actors import Actor, ActorKind
from ecommerce_core.aftersales.policy import (
    MERCHANT_FAULT_REASONS,
    AfterSalesKind,
    AfterSalesPolicy,
    AfterSalesReason,
    FreightRefund,
)
from ecommerce_core.aftersales.processes import PROCESS_FOR, AfterSalesState
from ecommerce_core.aftersales.requests import (
    AfterSalesItem,
    AfterSalesProgressed,
    AfterSalesRequest,
    AfterSalesRequested,
    Decision,
    RefundApproved,
    RefundCompleted,
    RefundLine,
    RefundPlan,
    ReturnParcel,
    unit_shares,
)
from ecommerce_core.delivery import FulfilmentStatus
from ecommerce_core.errors import (
    AlreadyRefunded,
    Forbidden,
    InvalidInput,
    NotFound,
    QuantityExceeded,
    RuleViolation,
    WindowClosed,
)
from ecommerce_core.events import DomainEvent
from ecommerce_core.money import Money
from ecommerce_core.orders import Order, OrderLine, OrderState, check_now

__all__ = [
    "OrderAfterSales",
    "after_sales_id",
]

_A = AfterSalesState
_MAX_DESCRIPTION: Final = 1000


_MAY: Final[Mapping[str, frozenset[ActorKind]]] = MappingProxyType(
    {
        "request": frozenset({ActorKind.BUYER}),
        "withdraw": frozenset({ActorKind.BUYER}),
        "dispute": frozenset({ActorKind.BUYER}),
        "ship_back": frozenset({ActorKind.BUYER}),
        "close": frozenset({ActorKind.BUYER, ActorKind.PLATFORM, ActorKind.SYSTEM}),
        "approve": frozenset({ActorKind.MERCHANT}),
        "reject": frozenset({ActorKind.MERCHANT}),
        "receive": frozenset({ActorKind.MERCHANT}),
        "accept_return": frozenset({ActorKind.MERCHANT}),
        "send_replacement": frozenset({ActorKind.MERCHANT}),
        "rule_for_buyer": frozenset({ActorKind.PLATFORM}),
        "rule_for_merchant": frozenset({ActorKind.PLATFORM}),
        "complete_refund": frozenset({ActorKind.PLATFORM, ActorKind.SYSTEM}),
        "complete_exchange": frozenset({ActorKind.BUYER, ActorKind.PLATFORM, ActorKind.SYSTEM}),
        "refund_failed_parcel": frozenset({ActorKind.PLATFORM, ActorKind.SYSTEM}),
    }
)


def after_sales_id(order_id: str) -> str:
    """The id of the :class:`OrderAfterSales` of an order."""
    return f"{order_id}/after-sales"


@attrs.define(eq=False)
class OrderAfterSales:
    """Every after-sales request of one order, and what they claim and refund.

    Open it with :meth:`open` for a paid order; run commands through its methods. A refused
    command changes nothing; an accepted one raises the version by one and appends one event.

    Attributes:
        id: Its id (:func:`after_sales_id` of the order).
        order_id: The order.
        buyer_id: The order's buyer.
        merchant_id: The order's merchant.
        lines: The order's lines, as bought (amounts net of discounts).
        shipping_fee: The order's shipping fee.
        requests: Every request, oldest first.
        version: Raised by one by every accepted command.
        events: Events raised since the last :meth:`collect_events`.

    """

    id: str
    order_id: str
    buyer_id: str
    merchant_id: str
    lines: tuple[OrderLine, ...]
    shipping_fee: Money
    requests: tuple[AfterSalesRequest, ...] = ()
    version: int = 0
    events: tuple[DomainEvent, ...] = ()

    @classmethod
    def open(cls, order: Order) -> OrderAfterSales:
        """An empty after-sales record for ``order``, at version 0."""
        return cls(
            id=after_sales_id(order.id),
            order_id=order.id,
            buyer_id=order.buyer_id,
            merchant_id=order.merchant_id,
            lines=order.lines,
            shipping_fee=order.shipping_fee,
        )

    # ----------------------------------------------------------------- reading

    @property
    def currency(self) -> str:
        """The order's currency."""
        return self.shipping_fee.currency

    def request(self, request_id: str) -> AfterSalesRequest:
        """The request with this id.

        Raises:
            NotFound: No such request on this order.

        """
        for each in self.requests:
            if each.request_id == request_id:
                return each
        raise NotFound("after-sales request", request_id)

    @property
    def open_requests(self) -> tuple[AfterSalesRequest, ...]:
        """The requests that wait on someone."""
        return tuple(each for each in self.requests if each.is_open)

    @property
    def refunds_due(self) -> tuple[AfterSalesRequest, ...]:
        """The requests whose refund is approved and not yet reported done."""
        return tuple(each for each in self.requests if each.state == _A.REFUND_APPROVED)

    def refunded_units(self, line_id: str) -> int:
        """Units of the line with an approved refund (done or on its way)."""
        return sum(
            item.quantity
            for each in self.requests
            if each.refund is not None
            for item in each.refund.lines
            if item.line_id == line_id
        )

    def refunded_amount(self, line_id: str) -> Money:
        """Money approved back on the line (done or on its way)."""
        return sum(
            (
                item.amount
                for each in self.requests
                if each.refund is not None
                for item in each.refund.lines
                if item.line_id == line_id
            ),
            Money.zero(self.currency),
        )

    @property
    def refunded_total(self) -> Money:
        """Money approved back on the whole order, freight included."""
        return sum(
            (each.refund.total for each in self.requests if each.refund is not None),
            Money.zero(self.currency),
        )

    @property
    def freight_refunded(self) -> bool:
        """Whether the shipping fee was given back."""
        return any(
            each.refund is not None and each.refund.freight.is_positive for each in self.requests
        )

    def claimed_units(self, line_id: str, *, received: bool) -> int:
        """Units of the line claimed by requests about received (or never received) goods."""
        return sum(
            each.quantity(line_id)
            for each in self.requests
            if each.holds_claim and each.about_received_goods is received
        )

    def returned_units(self, line_id: str) -> int:
        """Units of the line sent back, or to be, and not replaced.

        Returns and exchanges count until withdrawn or closed; a completed exchange no longer
        counts, since the buyer has its replacement.
        """
        return sum(
            each.quantity(line_id)
            for each in self.requests
            if each.kind is not AfterSalesKind.REFUND_ONLY and each.holds_claim
        )

    @property
    def withdrawn(self) -> dict[str, int]:
        """Per line, units refunded before they were received: the merchant owes them no more."""
        withdrawn: dict[str, int] = {}
        for each in self.requests:
            if each.refund is not None and not each.about_received_goods:
                for item in each.items:
                    withdrawn[item.line_id] = withdrawn.get(item.line_id, 0) + item.quantity
        return withdrawn

    def collect_events(self) -> tuple[DomainEvent, ...]:
        """Return the events raised since the last call, and forget them."""
        events, self.events = self.events, ()
        return events

    def ensure_can(self, command: str, actor: Actor, request_id: str) -> None:
        """Raise what ``command`` on the request would raise for ``actor``, changing nothing.

        Services call it before acting on another port (packing a replacement).

        Raises:
            Forbidden: The actor may not run it.
            NotFound: No such request.
            TransitionNotAllowed: Not from the request's state.

        """
        self._authorize(command, actor)
        current = self.request(request_id)
        current.process.fire(current.state, command, current, None, subject_id=request_id)

    # ----------------------------------------------------------------- asking

    def request_after_sales(
        self,
        actor: Actor,
        *,
        request_id: str,
        kind: AfterSalesKind | str,
        reason: AfterSalesReason | str,
        items: Sequence[AfterSalesItem],
        order: Order,
        fulfilment: FulfilmentStatus,
        now: datetime,
        policy: AfterSalesPolicy,
        description: str = "",
    ) -> AfterSalesRequest:
        """The buyer asks for a refund, a return or an exchange of some units.

        Args:
            actor: The order's buyer.
            request_id: A new id for the request.
            kind: Refund only, return and refund, or exchange.
            reason: Why. Refund only for ``not_received`` or ``no_reason`` is about units not
                received; every other request is about units the buyer has.
            items: The lines and units.
            order: The order as it is now (its state bounds the after-sales window).
            fulfilment: Where the order's units are (from its shipments).
            now: When the buyer asks.
            policy: The after-sales rules.
            description: The buyer's own words.

        Returns:
            The new request, in its process's initial state.

        Raises:
            Forbidden: Not the order's buyer.
            InvalidInput: A bad id, kind, reason or item, a line twice, a reason that does
                not go with the kind (returning goods never received).
            RuleViolation: The order was not paid, or was cancelled.
            WindowClosed: The order is closed, or a no-reason return comes after the window.
            AlreadyRefunded: More units than remain unrefunded on a line.
            QuantityExceeded: More units than were delivered (or not delivered), less those
                other requests already claim.

        """
        self._authorize("request", actor)
        return self._open_request(
            actor,
            request_id=request_id,
            kind=kind,
            reason=reason,
            items=items,
            order=order,
            fulfilment=fulfilment,
            now=now,
            policy=policy,
            description=description,
        )

    def refund_failed_parcel(
        self,
        actor: Actor,
        *,
        request_id: str,
        items: Sequence[AfterSalesItem],
        order: Order,
        fulfilment: FulfilmentStatus,
        now: datetime,
        policy: AfterSalesPolicy,
    ) -> AfterSalesRequest:
        """The platform refunds units a carrier lost or damaged, when the policy says refund.

        It opens a refund-only request for goods not received on the buyer's behalf and
        approves it at once (the carrier's fault is the merchant's, so freight follows
        ``policy.freight_refund`` as for any merchant fault). The same checks as a buyer's
        request apply: no more units than are undelivered and not yet claimed or refunded.

        Raises:
            Forbidden: Not the platform or the system.
            InvalidInput: A bad id or item.
            RuleViolation: The order was not paid, or was cancelled.
            QuantityExceeded: More units than are undelivered and unclaimed.
            AlreadyRefunded: More units than remain unrefunded on a line.

        """
        self._authorize("refund_failed_parcel", actor)
        self._open_request(
            actor,
            request_id=request_id,
            kind=AfterSalesKind.REFUND_ONLY,
            reason=AfterSalesReason.NOT_RECEIVED,
            items=items,
            order=order,
            fulfilment=fulfilment,
            now=now,
            policy=policy,
            description="parcel lost or damaged by the carrier",
        )
        return self._step(
            "approve",
            actor,
            request_id,
            now,
            fulfilment=fulfilment,
            policy=policy,
            authorize_as="refund_failed_parcel",
        )

    def _open_request(
        self,
        actor: Actor,
        *,
        request_id: str,
        kind: AfterSalesKind | str,
        reason: AfterSalesReason | str,
        items: Sequence[AfterSalesItem],
        order: Order,
        fulfilment: FulfilmentStatus,
        now: datetime,
        policy: AfterSalesPolicy,
        description: str,
    ) -> AfterSalesRequest:
        check_now(now)
        _text("request_id", request_id)
        kind, reason = self._kind_and_reason(kind, reason)
        if any(each.request_id == request_id for each in self.requests):
            raise InvalidInput("request_id", request_id, "already used on this order")
        items = self._items(items)
        if not isinstance(description, str) or len(description) > _MAX_DESCRIPTION:
            raise InvalidInput(
                "description", description, f"must be text of at most {_MAX_DESCRIPTION} characters"
            )
        if order.id != self.order_id or fulfilment.order_id != self.order_id:
            raise InvalidInput("order", order.id, f"this record is for {self.order_id!r}")
        draft = AfterSalesRequest(
            request_id=request_id,
            kind=kind,
            reason=reason,
            items=items,
            state=PROCESS_FOR[kind].initial,
            requested_at=now,
            description=description,
            updated_at=now,
        )
        self._check_order(order)
        for item in items:
            self._check_item(
                item, draft, state=order.state, fulfilment=fulfilment, now=now, policy=policy
            )
        self.requests = (*self.requests, draft)
        self._record(
            AfterSalesRequested,
            now,
            actor,
            request_id=request_id,
            kind=kind,
            reason=reason,
            items=items,
        )
        return draft

    # ----------------------------------------------------------------- merchant

    def approve(
        self,
        actor: Actor,
        request_id: str,
        *,
        fulfilment: FulfilmentStatus,
        now: datetime,
        policy: AfterSalesPolicy,
    ) -> AfterSalesRequest:
        """The merchant agrees: a refund only is refunded, a return or exchange awaits the goods.

        Units refunded before they were shipped at all go back into stock.

        Raises:
            Forbidden: Not the order's merchant.
            NotFound: No such request.
            TransitionNotAllowed: The request is not waiting for the merchant.

        """
        return self._step("approve", actor, request_id, now, fulfilment=fulfilment, policy=policy)

    def reject(
        self, actor: Actor, request_id: str, *, reason: str, now: datetime
    ) -> AfterSalesRequest:
        """The merchant refuses, with a reason (at the request, or after inspecting the goods).

        Raises:
            Forbidden: Not the order's merchant.
            InvalidInput: An empty reason.
            TransitionNotAllowed: Nothing to refuse in this state.

        """
        _text("reason", reason, 500)
        return self._step("reject", actor, request_id, now, note=reason)

    def receive_return(self, actor: Actor, request_id: str, *, now: datetime) -> AfterSalesRequest:
        """The merchant has the returned goods and inspects them.

        Raises:
            Forbidden: Not the order's merchant.
            TransitionNotAllowed: No return is on its way.

        """
        return self._step("receive", actor, request_id, now)

    def accept_return(
        self,
        actor: Actor,
        request_id: str,
        *,
        restock: bool,
        fulfilment: FulfilmentStatus,
        now: datetime,
        policy: AfterSalesPolicy,
    ) -> AfterSalesRequest:
        """The returned goods pass inspection: refund them, or send a replacement.

        Args:
            actor: The order's merchant.
            request_id: The request.
            restock: Whether the goods can be sold again (they go back into stock).
            fulfilment: Where the order's units are.
            now: When.
            policy: The after-sales rules (for the freight).

        Raises:
            Forbidden: Not the order's merchant.
            TransitionNotAllowed: The goods have not been received back.

        """
        return self._step(
            "accept_return",
            actor,
            request_id,
            now,
            fulfilment=fulfilment,
            policy=policy,
            restock=restock,
        )

    def send_replacement(
        self, actor: Actor, request_id: str, *, shipment_id: str, now: datetime
    ) -> AfterSalesRequest:
        """The merchant sent the replacement of an exchange.

        Raises:
            Forbidden: Not the order's merchant.
            TransitionNotAllowed: The exchange is not waiting for a replacement.

        """
        _text("shipment_id", shipment_id)
        return self._step("send_replacement", actor, request_id, now, shipment_id=shipment_id)

    # ----------------------------------------------------------------- buyer

    def ship_back(
        self, actor: Actor, request_id: str, *, carrier: str, tracking_number: str, now: datetime
    ) -> AfterSalesRequest:
        """The buyer sent the goods back, with the carrier's tracking number.

        Raises:
            Forbidden: Not the order's buyer.
            InvalidInput: An empty carrier or tracking number.
            TransitionNotAllowed: The return was not approved (or the goods were sent already).

        """
        parcel = ReturnParcel(
            _text("carrier", carrier), _text("tracking_number", tracking_number), now
        )
        return self._step("ship_back", actor, request_id, now, parcel=parcel)

    def dispute(
        self, actor: Actor, request_id: str, *, reason: str, now: datetime
    ) -> AfterSalesRequest:
        """The buyer disputes the merchant's rejection: the platform will rule.

        Raises:
            Forbidden: Not the order's buyer.
            TransitionNotAllowed: The request was not rejected.

        """
        _text("reason", reason, 500)
        return self._step("dispute", actor, request_id, now, note=reason)

    def withdraw(self, actor: Actor, request_id: str, *, now: datetime) -> AfterSalesRequest:
        """The buyer withdraws the request; its units are free to claim again.

        Raises:
            Forbidden: Not the order's buyer.
            TransitionNotAllowed: Too late: the goods went back, or it was decided.

        """
        return self._step("withdraw", actor, request_id, now)

    def close(self, actor: Actor, request_id: str, *, now: datetime) -> AfterSalesRequest:
        """Close a rejected request without a dispute (the buyer accepts it, or time ran out).

        Raises:
            Forbidden: Not the order's buyer, the platform or the system.
            TransitionNotAllowed: The request is not rejected.

        """
        return self._step("close", actor, request_id, now)

    def complete_exchange(
        self, actor: Actor, request_id: str, *, now: datetime
    ) -> AfterSalesRequest:
        """The buyer has the replacement: the exchange is done and its units free again.

        Raises:
            Forbidden: Not the order's buyer, the platform or the system.
            TransitionNotAllowed: No replacement was sent.

        """
        return self._step("complete_exchange", actor, request_id, now)

    # ----------------------------------------------------------------- platform and money

    def arbitrate(
        self,
        actor: Actor,
        request_id: str,
        *,
        for_buyer: bool,
        reason: str,
        fulfilment: FulfilmentStatus,
        now: datetime,
        policy: AfterSalesPolicy,
    ) -> AfterSalesRequest:
        """The platform rules on a dispute.

        For the buyer, the request goes on where the merchant stopped it: a refund only is
        refunded; a return awaits the goods, or is refunded (or replaced) if the merchant has
        them already. For the merchant, it is closed.

        Raises:
            Forbidden: Not the platform.
            InvalidInput: An empty reason, or ``for_buyer`` not a bool.
            TransitionNotAllowed: The request is not in arbitration.

        """
        if not isinstance(for_buyer, bool):
            raise InvalidInput("for_buyer", for_buyer, "must be True or False")
        _text("reason", reason, 500)
        trigger = "rule_for_buyer" if for_buyer else "rule_for_merchant"
        return self._step(
            trigger, actor, request_id, now, note=reason, fulfilment=fulfilment, policy=policy
        )

    def complete_refund(
        self, actor: Actor, request_id: str, *, reference: str, now: datetime
    ) -> AfterSalesRequest:
        """The payment side reports the approved refund done.

        Raises:
            Forbidden: Not the platform or the system.
            InvalidInput: An empty reference.
            TransitionNotAllowed: No refund is approved and waiting.

        """
        _text("reference", reference)
        return self._step("complete_refund", actor, request_id, now, reference=reference)

    # ----------------------------------------------------------------- internals

    def _authorize(self, command: str, actor: Actor) -> None:
        if not isinstance(actor, Actor):
            raise InvalidInput("actor", actor, "must be an Actor")
        if actor.kind not in _MAY[command]:
            raise Forbidden(str(actor), command, self.id, f"a {actor.kind} may not {command}")
        if actor.kind is ActorKind.BUYER and actor.id != self.buyer_id:
            raise Forbidden(str(actor), command, self.id, "it is another buyer's order")
        if actor.kind is ActorKind.MERCHANT and actor.id != self.merchant_id:
            raise Forbidden(str(actor), command, self.id, "it is another merchant's order")

    @staticmethod
    def _kind_and_reason(kind: str, reason: str) -> tuple[AfterSalesKind, AfterSalesReason]:
        try:
            chosen_kind = AfterSalesKind(kind)
        except ValueError:
            raise InvalidInput("kind", kind, "not an after-sales kind") from None
        try:
            chosen_reason = AfterSalesReason(reason)
        except ValueError:
            raise InvalidInput("reason", reason, "not an after-sales reason") from None
        if (
            chosen_kind is not AfterSalesKind.REFUND_ONLY
            and chosen_reason is AfterSalesReason.NOT_RECEIVED
        ):
            raise InvalidInput(
                "reason", chosen_reason, f"goods never received cannot go back ({chosen_kind})"
            )
        return chosen_kind, chosen_reason

    def _items(self, items: Sequence[AfterSalesItem]) -> tuple[AfterSalesItem, ...]:
        items = tuple(items)
        if not items:
            raise InvalidInput("items", items, "a request is about at least one line")
        known = {line.line_id for line in self.lines}
        seen: set[str] = set()
        for item in items:
            if not isinstance(item, AfterSalesItem):
                raise InvalidInput("items", item, "each item must be an AfterSalesItem")
            if item.line_id not in known:
                raise InvalidInput("line_id", item.line_id, "the order has no such line")
            if item.line_id in seen:
                raise InvalidInput("items", item.line_id, "the same line appears twice")
            seen.add(item.line_id)
        return items

    def _check_order(self, order: Order) -> None:
        if order.state == OrderState.CLOSED:
            raise WindowClosed(
                self.id, "request", order.state, "the order is closed: after-sales is over"
            )
        if order.state == OrderState.CANCELLED:
            raise RuleViolation(
                self.id, "request", order.state, "a cancelled order is refunded by cancelling"
            )
        if order.payment is None:
            raise RuleViolation(self.id, "request", order.state, "the order was not paid")

    def _check_item(
        self,
        item: AfterSalesItem,
        draft: AfterSalesRequest,
        *,
        state: str,
        fulfilment: FulfilmentStatus,
        now: datetime,
        policy: AfterSalesPolicy,
    ) -> None:
        line = self._line(item.line_id)
        status = fulfilment.line(item.line_id)

        def exceeded(error: type[QuantityExceeded], available: int, limit: str) -> None:
            raise error(
                self.id,
                "request",
                state,
                line_id=item.line_id,
                requested=item.quantity,
                available=max(0, available),
                limit=limit,
            )

        if draft.bears_refund:
            refundable = line.quantity - sum(
                each.quantity(item.line_id)
                for each in self.requests
                if each.bears_refund and each.holds_claim
            )
            if item.quantity > refundable:
                exceeded(AlreadyRefunded, refundable, "not yet refunded or asked to be")
        if not draft.about_received_goods:
            undelivered = status.undelivered_units - self.claimed_units(
                item.line_id, received=False
            )
            if item.quantity > undelivered:
                exceeded(QuantityExceeded, undelivered, "not delivered and not yet claimed")
            return
        claimed = self.claimed_units(item.line_id, received=True)
        available = status.delivered_units - claimed
        if item.quantity > available:
            exceeded(QuantityExceeded, available, "delivered and not yet claimed")
        if draft.reason is not AfterSalesReason.NO_REASON:
            return
        if line.category in policy.no_reason_excluded_categories:
            raise RuleViolation(
                self.id,
                "request",
                state,
                f"line {item.line_id!r}: category {line.category!r} may not be returned "
                "without a reason",
            )
        window = policy.no_reason_window
        inside = sum(b.quantity for b in status.delivered if now <= b.at + window)
        outside = status.delivered_units - inside
        # Earlier claims are counted against the oldest units first, as favours the buyer.
        eligible = inside - max(0, claimed - outside)
        if item.quantity > eligible:
            # Units are available (checked above), so some lie outside their window: say when
            # the newest of those windows closed.
            closed_at = max(b.at + window for b in status.delivered if now > b.at + window)
            raise WindowClosed(
                self.id,
                "request",
                state,
                f"line {item.line_id!r}: {item.quantity} units asked, {max(0, eligible)} "
                f"delivered within the {window.days}-day no-reason window",
                closed_at,
            )

    def _line(self, line_id: str) -> OrderLine:
        return next(line for line in self.lines if line.line_id == line_id)

    def _step(
        self,
        trigger: str,
        actor: Actor,
        request_id: str,
        now: datetime,
        *,
        note: str = "",
        fulfilment: FulfilmentStatus | None = None,
        policy: AfterSalesPolicy | None = None,
        restock: bool = False,
        parcel: ReturnParcel | None = None,
        shipment_id: str | None = None,
        reference: str | None = None,
        authorize_as: str | None = None,
    ) -> AfterSalesRequest:
        self._authorize(authorize_as or trigger, actor)
        check_now(now)
        current = self.request(request_id)
        dest = current.process.fire(current.state, trigger, current, None, subject_id=request_id)
        changes: dict[str, object] = {"state": dest, "updated_at": now}
        decision = Decision(str(actor), now, note) if note else None
        if trigger == "reject":
            changes["rejection"] = decision
        elif trigger == "dispute":
            changes["dispute"] = decision
        elif trigger.startswith("rule_for_"):
            changes["ruling"] = decision
        elif trigger == "ship_back":
            changes["return_parcel"] = parcel
        elif trigger == "receive":
            changes["return_received_at"] = now
        elif trigger == "send_replacement":
            changes["replacement_shipment_id"] = shipment_id
        elif trigger == "complete_refund":
            changes["refund_reference"] = reference
        restocked: tuple[AfterSalesItem, ...] = ()
        if trigger == "accept_return" and restock:
            restocked = current.items
        plan: RefundPlan | None = None
        if dest == _A.REFUND_APPROVED:
            assert fulfilment is not None  # noqa: S101  # every approving command passes it
            assert policy is not None  # noqa: S101  # likewise
            plan = self._plan_refund(current, fulfilment, policy)
            changes["refund"] = plan
            if not current.about_received_goods:
                restocked = self._unshipped(current, fulfilment)
        if restocked:
            changes["restock"] = restocked
        updated = attrs.evolve(current, **changes)  # type: ignore[arg-type]  # checked above
        self.requests = tuple(updated if r is current else r for r in self.requests)
        common = {
            "request_id": request_id,
            "command": trigger,
            "from_state": current.state,
            "state": dest,
            "note": note,
            "restock": restocked,
        }
        if plan is not None:
            fully = all(self.refunded_units(ln.line_id) == ln.quantity for ln in self.lines)
            self._record(
                RefundApproved,
                now,
                actor,
                **common,
                lines=plan.lines,
                freight=plan.freight,
                total=plan.total,
                order_fully_refunded=fully,
            )
        elif trigger == "complete_refund":
            assert updated.refund is not None  # noqa: S101  # only refund_approved completes
            self._record(
                RefundCompleted,
                now,
                actor,
                **common,
                reference=reference,
                total=updated.refund.total,
            )
        else:
            self._record(AfterSalesProgressed, now, actor, **common)
        return updated

    def _plan_refund(
        self, request: AfterSalesRequest, fulfilment: FulfilmentStatus, policy: AfterSalesPolicy
    ) -> RefundPlan:
        zero = Money.zero(self.currency)
        lines: list[RefundLine] = []
        after: dict[str, int] = {}
        for item in request.items:
            line = self._line(item.line_id)
            done = self.refunded_units(item.line_id)
            if done + item.quantity > line.quantity:  # pragma: no cover - claims prevent it
                raise AlreadyRefunded(
                    self.id,
                    "refund",
                    request.state,
                    line_id=item.line_id,
                    requested=item.quantity,
                    available=line.quantity - done,
                    limit="not yet refunded",
                )
            shares = unit_shares(line)[done : done + item.quantity]
            lines.append(RefundLine(item.line_id, item.quantity, sum(shares, zero)))
            after[item.line_id] = done + item.quantity
        everything = all(
            after.get(ln.line_id, self.refunded_units(ln.line_id)) == ln.quantity
            for ln in self.lines
        )
        freight = zero
        if everything and not self.freight_refunded and self.shipping_fee.is_positive:
            nothing_shipped = not any(ln.packed for ln in fulfilment.lines.values())
            if policy.freight_refund is FreightRefund.ALWAYS or (
                policy.freight_refund is FreightRefund.MERCHANT_FAULT
                and (request.reason in MERCHANT_FAULT_REASONS or nothing_shipped)
            ):
                freight = self.shipping_fee
        total = sum((ln.amount for ln in lines), zero) + freight
        return RefundPlan(tuple(lines), freight, total)

    def _unshipped(
        self, request: AfterSalesRequest, fulfilment: FulfilmentStatus
    ) -> tuple[AfterSalesItem, ...]:
        """Units of a refund for goods not received that never left the warehouse.

        Payment committed the ordered units; original shipments took them out. A parcel sent
        back is restocked when it arrives, and a reshipment draws new stock, so the units
        still held for the order are the ordered ones no original shipment carried.
        """
        restock: list[AfterSalesItem] = []
        for item in request.items:
            line = fulfilment.line(item.line_id)
            earlier = sum(
                restocked.quantity
                for each in self.requests
                if each is not request and not each.about_received_goods
                for restocked in each.restock
                if restocked.line_id == item.line_id
            )
            units = min(item.quantity, line.ordered - line.original - earlier)
            if units > 0:
                restock.append(AfterSalesItem(item.line_id, units))
        return tuple(restock)

    def _record(
        self, event_type: type[DomainEvent], now: datetime, actor: Actor, **fields: object
    ) -> None:
        self.version += 1
        fields["order_id"] = self.order_id
        event = event_type(
            aggregate_id=self.id, version=self.version, occurred_at=now, actor=str(actor), **fields
        )
        self.events = (*self.events, event)
