"""Application services: one method per use case, over the ports.

Every command follows the same steps: load the aggregate through its repository, run the
domain command (which checks actor, input and state before changing anything), save with the
version it was loaded at (a concurrent writer gets
:class:`~ecommerce_core.errors.VersionConflict`), act on the other ports (commit or release
stock, refund), and only then publish the events the aggregate collected.

Example:
    >>> from ecommerce_core.demo import demo_service
    >>> service, clock = demo_service()
    >>> buyer = Actor.buyer("alice")
    >>> order = service.buy_now(buyer, "tea-01", 2)
    >>> order.state, str(order.total)
    ('pending_payment', '76.00 CNY')
    >>> service.pay(order.id, buyer).state
    'awaiting_shipment'

"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime

import attrs

from ecommerce_core import _slots
from ecommerce_core.actors import Actor
from ecommerce_core.delivery import DeliveryOption
from ecommerce_core.errors import InvalidInput, PaymentNotCompleted, RuleViolation, VersionConflict
from ecommerce_core.limits import StockTiming
from ecommerce_core.money import Money
from ecommerce_core.orders import (
    STANDARD_ORDER_PROCESS,
    CartItem,
    Order,
    OrderLine,
    PricingTerms,
    _cart_item,
    _order_line,
    _split,
    check_now,
)
from ecommerce_core.payments.policy import PaymentMethod
from ecommerce_core.policies import OrderPolicy, PricingPolicy
from ecommerce_core.ports import (
    Carriers,
    Catalog,
    ChargeRequest,
    Clock,
    EventPublisher,
    GatewayStatus,
    IdSource,
    Inventory,
    OrderRepository,
    PaymentGateway,
    PromotionCatalog,
    PromotionLedger,
    RefundRequest,
    StockItem,
)
from ecommerce_core.process import Process
from ecommerce_core.promotions import PricingContext, limit_keys, price
from ecommerce_core.services.fulfilment import delivery_fees
from ecommerce_core.services.pricing import (
    confirm_payment_holds,
    drop_stale_payment_holds,
    price_checkout,
    release_holds,
    stock_items,
    take_payment_holds,
)

__all__ = [
    "Expired",
    "OrderService",
]

# StockItem(line_id, sku, quantity), slot by slot (a plain value: nothing to check).
_stock_item: Callable[[str, str, int], StockItem] = _slots.builder(
    StockItem, ("line_id", "sku", "quantity")
)
_METHOD_VALUES: dict[PaymentMethod, str] = {method: method.value for method in PaymentMethod}
# ChargeRequest(order_id, amount, idempotency_key, payment_id), slot by slot (a plain value).
_charge_request: Callable[[str, Money, str, str], ChargeRequest] = _slots.builder(
    ChargeRequest, ("order_id", "amount", "idempotency_key", "payment_id")
)


@attrs.frozen
class Expired:
    """One deadline that :meth:`OrderService.expire_due` fired.

    Attributes:
        order_id: The order.
        trigger: What fired (``"expire_payment"``, ``"auto_confirm"``, ``"close"``).
        state: The state the order reached.

    """

    order_id: str
    trigger: str
    state: str


@attrs.define
class OrderService:
    """The order use cases, wired to the host's ports.

    Attributes:
        orders: Where orders are stored.
        inventory: Stock and reservations.
        catalog: Products and their prices.
        payments: The payment provider.
        clock: The time.
        ids: New ids.
        publisher: Where events go after a save.
        policy: Timeouts and limits.
        process: The process new orders follow.
        promotions: The promotions, coupons and campaigns to price with (none: list prices).
        ledger: Where promotion limits are reserved (needed with ``promotions``).
        pricing_policy: How priced orders are re-checked at payment and released.
        carriers: The delivery options merchants offer (needed for ``checkout(delivery=...)``).

    """

    orders: OrderRepository
    inventory: Inventory
    catalog: Catalog
    payments: PaymentGateway
    clock: Clock
    ids: IdSource
    publisher: EventPublisher
    policy: OrderPolicy = attrs.field(factory=OrderPolicy)
    process: Process = STANDARD_ORDER_PROCESS
    promotions: PromotionCatalog | None = None
    promotion_ledger: PromotionLedger | None = None
    pricing_policy: PricingPolicy = attrs.field(factory=PricingPolicy)
    carriers: Carriers | None = None

    # ----------------------------------------------------------------- placing

    def buy_now(
        self,
        buyer: Actor,
        sku: str,
        quantity: int,
        payment_method: PaymentMethod | str = PaymentMethod.ONLINE,
    ) -> Order:
        """Buy one SKU at once (立即购买): one order, stock reserved.

        Raises:
            InvalidInput: A bad SKU, quantity or payment method.
            NotFound: No such SKU.
            OutOfStock: Not enough stock; nothing was reserved or stored.

        """
        (order,) = self.checkout(buyer, [_cart_item(sku, quantity)], payment_method)
        return order

    def checkout(
        self,
        buyer: Actor,
        items: Sequence[CartItem],
        payment_method: PaymentMethod | str = PaymentMethod.ONLINE,
        *,
        coupon_codes: Sequence[str] = (),
        segments: Iterable[str] = (),
        delivery: Mapping[str, str | DeliveryOption] | None = None,
    ) -> list[Order]:
        """Check a cart out (购物车结算): one order per merchant, sharing one checkout id.

        Stock for every order is reserved before any order is stored; if any SKU is short,
        every reservation already made is released and nothing is stored. With a promotion
        catalogue, each merchant's order is priced with its automatic promotions and the
        coupons the buyer entered (each coupon on one order); the discounts are stored on the
        lines and the limits the prices need are reserved.

        Args:
            buyer: The buyer checking out.
            items: The cart.
            payment_method: How the buyer pays; it picks the orders' process. This service
                settles online payments; escrow, COD and credit need
                :class:`~ecommerce_core.services.payments.PaymentService`.
            coupon_codes: Codes the buyer entered.
            segments: The buyer's segments (members, new buyers...), for promotions.
            delivery: Per merchant, the delivery option the buyer picked (its id, or the
                option as shown); its fee becomes that order's shipping fee. The options are
                asked for again now: one no longer offered on those terms is refused, and cash
                on delivery needs an option that supports it. ``None``: no delivery fee.

        Raises:
            InvalidInput: Not a buyer, an empty cart, the same SKU twice, bad quantities, a
                payment method this service does not settle, a code entered twice or without
                a promotion catalogue.
            NotFound: An unknown SKU or coupon code.
            OutOfStock: Not enough stock for some SKU.
            RuleViolation: The payment method is not offered for these orders (COD over its
                cap, say).
            PromotionRefused: A coupon that applies to no order, and why.
            LimitExceeded: A limit ran out while the checkout was placed.
            DeliveryOptionUnavailable: A delivery option not offered now, or without COD for a
                cash-on-delivery checkout.

        """
        if not isinstance(buyer, Actor) or buyer.kind != "buyer":
            raise InvalidInput("buyer", buyer, "only a buyer checks out")
        method = _method(payment_method)
        process = self._process_for(method)
        try:
            items = tuple(items)
        except TypeError:  # one CartItem, or None, instead of a list of them
            raise InvalidInput("cart", items, "must be a list of CartItem") from None
        if not items:
            raise InvalidInput("cart", items, "the cart is empty")
        skus: list[str] = []
        for item in items:  # a loop, not a comprehension (its frame costs more than the work)
            if not isinstance(item, CartItem):
                raise InvalidInput("cart", items, "each item must be a CartItem")
            skus.append(item.sku)
        if len(skus) > 1 and len(set(skus)) != len(skus):
            raise InvalidInput("cart", skus, "the same SKU appears twice; merge the lines")
        by_merchant: dict[str, list[OrderLine]] = {}
        for item in items:
            product = self.catalog.product(item.sku)
            lines = by_merchant.setdefault(product.merchant_id, [])
            lines.append(  # OrderLine(...), slot by slot once its checks pass
                _order_line(
                    str(len(lines) + 1),
                    product.sku,
                    item.quantity,
                    product.unit_price,
                    product.category,
                )
            )
        fees = None if delivery is None else self._delivery_fees(by_merchant, delivery, method)
        now = self.clock.now()
        terms = (  # _price_cart answers None at once without promotions or codes
            None
            if self.promotions is None and not coupon_codes
            else self._price_cart(buyer, by_merchant, coupon_codes, segments, now)
        )
        next_id = self.ids.next_id
        checkout_id = next_id("checkout")
        order_ids = [next_id("order")]
        while len(order_ids) < len(by_merchant):
            order_ids.append(next_id("order"))
        orders = _split(  # split_by_merchant(checkout_id=checkout_id, ...), by position
            checkout_id,
            buyer.id,
            by_merchant,
            order_ids,
            now,
            self.policy,
            fees,
            process,
            _METHOD_VALUES.get(method) or method.value,  # the value, without the enum property
            terms,
        )
        self._check_method(method, orders)
        reserved: list[str] = []
        try:
            for order in orders:
                stock: list[StockItem] = []
                for line in order.lines:
                    stock.append(_stock_item(line.line_id, line.sku, line.quantity))  # noqa: PERF401  # a loop: cheaper than a comprehension's frame
                self.inventory.reserve(order.id, stock)
                reserved.append(order.id)
                self._reserve_holds(order)
            for order in orders:
                self.orders.add(order)
        except BaseException:
            for order_id in reserved:
                self.inventory.release(order_id)
                self._release_placement_holds(order_id)
            raise
        publish = self.publisher.publish
        for order in orders:
            events, order.events = order.events, ()  # collect_events, inline
            publish(events)
        return orders

    # ----------------------------------------------------------------- commands

    def pay(self, order_id: str, actor: Actor) -> Order:
        """Charge the order total through the payment provider and record the payment.

        The provider is asked only once the order could accept the payment. If a concurrent
        writer changed the order meanwhile, the charge is refunded and the conflict raised.

        Raises:
            Forbidden: The actor may not pay this order.
            TransitionNotAllowed: The order is not awaiting payment.
            PaymentNotCompleted: The provider declined, or has not answered yet.
            VersionConflict: The order changed while the provider answered.

        """
        order = self.orders.get(order_id)
        order.ensure_can("pay", actor, order.total)
        if order.terms is not None:  # _before_payment does nothing for an order with no terms
            self._before_payment(order)
        result = self.payments.charge(
            _charge_request(order.id, order.total, f"{order.id}:charge", "")
        )
        if result.status is not GatewayStatus.SUCCEEDED:  # not result.succeeded
            raise PaymentNotCompleted(order.id, order.state, result.status.value, result.message)
        version = order.version
        order.pay(
            actor, amount=result.amount, reference=result.transaction_id, now=self.clock.now()
        )
        try:
            self.orders.save(order, version)
        except VersionConflict:
            self.payments.refund(
                RefundRequest(
                    order.id, result.transaction_id, result.amount, f"{order.id}:charge:undo"
                )
            )
            raise
        self.inventory.commit(order.id)
        if order.terms is not None:  # confirm_payment_holds does nothing for no terms
            confirm_payment_holds(order, self.promotion_ledger)
        events, order.events = order.events, ()  # _publish, inline
        self.publisher.publish(events)
        return order

    def ship(self, order_id: str, actor: Actor, *, carrier: str, tracking_number: str) -> Order:
        """The merchant hands the order to a carrier.

        Raises:
            Forbidden: Not the order's merchant.
            TransitionNotAllowed: The order is not awaiting shipment.

        """
        order = self.orders.get(order_id)  # _run, inline on every lifecycle (no lambda)
        version = order.version
        order.ship(
            actor,
            carrier=carrier,
            tracking_number=tracking_number,
            now=self.clock.now(),
            policy=self.policy,
        )
        self.orders.save(order, version)
        events, order.events = order.events, ()  # _publish, inline
        self.publisher.publish(events)
        return order

    def deliver(self, order_id: str, actor: Actor) -> Order:
        """The carrier reports the parcel delivered."""
        order = self.orders.get(order_id)  # _run, inline
        version = order.version
        order.deliver(actor, now=self.clock.now(), policy=self.policy)
        self.orders.save(order, version)
        events, order.events = order.events, ()  # _publish, inline
        self.publisher.publish(events)
        return order

    def confirm_receipt(self, order_id: str, actor: Actor) -> Order:
        """The buyer confirms receipt; the after-sales window opens."""
        order = self.orders.get(order_id)  # _run, inline
        version = order.version
        order.confirm_receipt(actor, now=self.clock.now(), policy=self.policy)
        self.orders.save(order, version)
        events, order.events = order.events, ()  # _publish, inline
        self.publisher.publish(events)
        return order

    def cancel(self, order_id: str, actor: Actor, reason: str) -> Order:
        """Cancel before shipment: stock goes back and a paid order is refunded.

        This service keeps no record of refunds, so a paid order's refund is asked for first,
        under the order's one refund key, and the order is cancelled only once the provider
        accepted it (succeeded, or pending). A retried cancel sends the same key, so it never
        refunds twice; and a provider that declined the key answers the same again, so the
        order stays paid and goes on to be shipped: money and goods never part.
        :class:`~ecommerce_core.services.PaymentService` instead cancels at once and tracks the
        refund in its ledger, retrying it under fresh keys until it succeeds.

        Raises:
            Forbidden: Not the order's buyer or merchant, nor the platform.
            TransitionNotAllowed: Already shipped or finished.
            RuleViolation: The provider declined the refund; the order stays paid, unchanged.

        """
        self._refund_before_cancel(order_id, actor, reason)
        order = self._run(
            order_id, lambda o: o.cancel(actor, reason=reason, now=self.clock.now()), publish=False
        )
        self._undo(order)
        return self._publish(order)

    def expire_due(self, now: datetime | None = None) -> list[Expired]:
        """Fire every deadline due at ``now`` (the clock's time if omitted).

        Call it from the host's scheduler as often as you like: it is idempotent, and an
        order whose deadlines fell due one after another (shipped long ago: auto-confirmed,
        then closed) is carried through all of them in one call. An order that a concurrent
        writer is changing is skipped and picked up by the next call.
        """
        now = check_now(self.clock.now() if now is None else now)
        fired: list[Expired] = []
        progress = True
        while progress:
            progress = False
            for order_id in self.orders.due(now):
                order = self.orders.get(order_id)
                version = order.version
                trigger = order.expire(now, self.policy)
                if trigger is None:
                    continue
                try:
                    self.orders.save(order, version)
                except VersionConflict:
                    continue
                progress = True
                if trigger == "expire_payment":
                    self._undo(order)
                self._publish(order)
                fired.append(Expired(order.id, trigger, order.state))
        return fired

    # ----------------------------------------------------------------- internals

    def _process_for(self, method: PaymentMethod) -> Process:
        """The process orders paid by ``method`` follow; this service settles online only."""
        if method is not PaymentMethod.ONLINE:
            raise InvalidInput(
                "payment_method",
                method.value,
                "OrderService settles online payments; use PaymentService for escrow, COD "
                "and credit",
            )
        return self.process

    def _check_method(self, method: PaymentMethod, orders: Sequence[Order]) -> None:
        """Refuse orders the payment method is not offered for (nothing to check here)."""

    def _run(
        self, order_id: str, command: Callable[[Order], None], *, publish: bool = True
    ) -> Order:
        order = self.orders.get(order_id)
        version = order.version
        command(order)
        self.orders.save(order, version)
        return self._publish(order) if publish else order

    def _refund_before_cancel(self, order_id: str, actor: Actor, reason: str) -> None:
        """Refund the order about to be cancelled, if it was paid (see :meth:`cancel`).

        The cancel is rehearsed on a loaded copy (never saved) first, so a cancel refused for
        any reason (actor, state, reason) never reaches the provider.
        """
        loaded = self.orders.get(order_id)
        payment, state = loaded.payment, loaded.state
        if payment is None:
            return
        loaded.cancel(actor, reason=reason, now=self.clock.now())  # refused: nothing asked
        result = self.payments.refund(
            RefundRequest(loaded.id, payment.reference, payment.amount, f"{loaded.id}:refund")
        )
        if result.status is GatewayStatus.DECLINED:
            raise RuleViolation(
                loaded.id,
                "cancel",
                state,
                f"the provider declined the refund ({result.message or 'no reason given'});"
                " the order stays paid",
            )

    def _undo(self, order: Order) -> None:
        """Give back what a cancelled or timed-out order held (its money went back first)."""
        self._release_holds(order)

    def _publish(self, order: Order) -> Order:
        self.publisher.publish(order.collect_events())
        return order

    # ----------------------------------------------------------------- pricing

    def buy_in_campaign(self, buyer: Actor, campaign_id: str, sku: str, quantity: int) -> Order:
        """Buy one SKU in a flash sale (秒杀) or rush purchase (抢购): one order, campaign price.

        The order is priced by the campaign's offer alone, placed with its payment timeout and
        terms (sales mode, no cash on delivery, when stock is taken), and holds what the
        campaign takes at order time: a flash sale's session quota, the buyer's units and the
        one-unpaid-order hold in the ledger, and the main stock. A rush purchase takes its
        quantity and stock only when the order is paid. Nothing is held or stored if any of
        it is refused.

        Raises:
            InvalidInput: Not a buyer, a bad quantity, no promotion catalogue configured.
            NotFound: An unknown campaign, or a SKU it does not sell.
            PromotionRefused: The campaign is not selling now, or the buyer already has an
                unpaid flash order for the item.
            OutOfStock: The campaign's quota or the main stock is short.
            LimitExceeded: The buyer's units would pass the per-buyer limit.

        """
        if not isinstance(buyer, Actor) or buyer.kind != "buyer":
            raise InvalidInput("buyer", buyer, "only a buyer buys")
        item = CartItem(sku, quantity)
        catalog, ledger = self._pricing_ports()
        campaign = catalog.campaign(campaign_id)
        product = self.catalog.product(item.sku)
        now = self.clock.now()
        offer = campaign.offer(item.sku, now)
        line = OrderLine(
            "1", product.sku, item.quantity, product.unit_price, category=product.category
        )
        usage = ledger.usage(limit_keys([offer], buyer.id))
        context = PricingContext(now, buyer.id, usage=usage, merchant_id=product.merchant_id)
        result = price([line], [offer], context)
        campaign.ensure_sold(result, offer, quantity=item.quantity, buyer_id=buyer.id, usage=usage)
        terms = campaign.terms(result)
        order = Order.place(
            order_id=self.ids.next_id("order"),
            buyer_id=buyer.id,
            merchant_id=product.merchant_id,
            lines=result.order_lines(),
            now=now,
            policy=campaign.policy(self.policy),
            checkout_id=self.ids.next_id("checkout"),
            process=self.process,
            terms=terms,
        )
        stock_taken = False
        try:
            self._reserve_holds(order)
            if terms.stock_timing is StockTiming.ON_ORDER:
                self.inventory.reserve(order.id, stock_items(order))
                stock_taken = True
            self.orders.add(order)
        except BaseException:
            self._release_placement_holds(order.id)
            if stock_taken:
                self.inventory.release(order.id)
            raise
        return self._publish(order)

    def _pricing_ports(self) -> tuple[PromotionCatalog, PromotionLedger]:
        if self.promotions is None or self.promotion_ledger is None:
            raise InvalidInput(
                "promotions", None, "this service has no promotion catalogue and ledger"
            )
        return self.promotions, self.promotion_ledger

    def _price_cart(
        self,
        buyer: Actor,
        by_merchant: dict[str, list[OrderLine]],
        coupon_codes: Sequence[str],
        segments: Iterable[str],
        now: datetime,
    ) -> dict[str, PricingTerms] | None:
        """Price the cart in place (discounted lines per merchant); the terms per merchant."""
        if self.promotions is None and not coupon_codes:
            return None
        catalog, ledger = self._pricing_ports()
        results = price_checkout(
            catalog,
            ledger,
            buyer_id=buyer.id,
            segments=segments,
            lines_by_merchant=by_merchant,
            coupon_codes=coupon_codes,
            now=now,
        )
        terms: dict[str, PricingTerms] = {}
        for merchant, result in results.items():
            by_merchant[merchant] = result.order_lines()
            sold = result.terms()
            if sold is not None:
                terms[merchant] = sold
        return terms

    def _reserve_holds(self, order: Order) -> None:
        """Reserve, in the ledger, the limit claims an order takes when it is placed."""
        if order.terms is not None and order.terms.order_claims:
            _, ledger = self._pricing_ports()
            ledger.reserve(order.id, order.terms.order_claims)

    def _release_placement_holds(self, order_id: str) -> None:
        if self.promotion_ledger is not None:
            self.promotion_ledger.release(order_id)

    def _before_payment(self, order: Order) -> None:
        """Re-check a priced order's offer and take what it takes at payment, before charging.

        If a concurrent writer cancelled the order while the holds were taken, they are given
        back and the conflict raised.
        """
        terms = order.terms
        if terms is None:
            return
        take_payment_holds(
            order,
            now=self.clock.now(),
            policy=self.pricing_policy,
            ledger=self.promotion_ledger,
            inventory=self.inventory,
        )
        if terms.payment_claims or terms.stock_timing is StockTiming.ON_PAYMENT:
            stored = self.orders.get(order.id)
            if stored.version != order.version:
                drop_stale_payment_holds(
                    order, stored, ledger=self.promotion_ledger, inventory=self.inventory
                )
                raise VersionConflict(order.id, order.version, stored.version)

    def _release_holds(self, order: Order) -> None:
        """Give back, once, the stock and promotion holds of an abandoned order."""
        release_holds(
            order,
            ledger=self.promotion_ledger,
            inventory=self.inventory,
            policy=self.pricing_policy,
        )

    def _delivery_fees(
        self,
        by_merchant: Mapping[str, Sequence[OrderLine]],
        delivery: Mapping[str, str | DeliveryOption] | None,
        method: PaymentMethod,
    ) -> dict[str, Money] | None:
        """Each merchant's shipping fee from the buyer's delivery choice, checked now."""
        if delivery is None:
            return None
        if self.carriers is None:
            raise InvalidInput("delivery", delivery, "no carriers are configured")
        chosen = delivery_fees(
            self.carriers,
            by_merchant,
            delivery,
            cash_on_delivery=method is PaymentMethod.COD,
        )
        return {merchant_id: option.fee for merchant_id, option in chosen.items()}


def _method(value: PaymentMethod | str) -> PaymentMethod:
    if type(value) is PaymentMethod:  # the default: no lookup
        return value
    try:
        return PaymentMethod(value)
    except ValueError:
        options = ", ".join(m.value for m in PaymentMethod)
        raise InvalidInput("payment_method", value, f"one of {options}") from None
