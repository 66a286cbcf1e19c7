"""A ready-wired service on the in-memory adapters, and the walk-through ``make demo`` prints.

Use :func:`demo_service` to try the library in a REPL or a doctest:

    >>> service, clock = demo_service()
    >>> [str(service.catalog.product(sku).unit_price) for sku in ("tea-01", "cup-01")]
    ['38.00 CNY', '25.00 CNY']

"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta

import attrs

from ecommerce_core.actors import Actor
from ecommerce_core.adapters.memory import (
    InMemoryAfterSalesRepository,
    InMemoryCarriers,
    InMemoryCatalog,
    InMemoryCreditLines,
    InMemoryInventory,
    InMemoryLedger,
    InMemoryOrderRepository,
    InMemoryPaymentRepository,
    InMemoryPromotionCatalog,
    InMemoryPromotionLedger,
    InMemoryShipmentRepository,
    ManualClock,
    RecordingPublisher,
    ScriptedPaymentGateway,
    SequentialIds,
)
from ecommerce_core.aftersales import AfterSalesPolicy
from ecommerce_core.campaigns import FlashSale, RushPurchase
from ecommerce_core.delivery import DeliveryOption
from ecommerce_core.errors import EcommerceCoreError
from ecommerce_core.money import Money
from ecommerce_core.orders import CartItem, Order
from ecommerce_core.payments.policy import PaymentPolicy
from ecommerce_core.policies import OrderPolicy
from ecommerce_core.ports import Product
from ecommerce_core.promotions import Coupon, Promotion
from ecommerce_core.services import (
    AfterSalesService,
    FulfilmentService,
    OrderService,
    PaymentService,
    RefundHandler,
    gateway_refunds,
)

__all__ = [
    "DEMO_DELIVERY_OPTIONS",
    "DEMO_PRODUCTS",
    "DemoWorld",
    "demo_payment_service",
    "demo_service",
    "demo_world",
    "run_demo",
]

DEMO_PRODUCTS = (
    Product("tea-01", "m-teahouse", "Longjing green tea 250 g", Money.of("38.00", "CNY"), "tea"),
    Product("pot-01", "m-teahouse", "Yixing clay teapot", Money.of("168.00", "CNY"), "teaware"),
    Product("cup-01", "m-pottery", "Celadon cup", Money.of("25.00", "CNY"), "teaware"),
)
"""Three products from two merchants."""


def demo_service(
    stock: int = 100,
    policy: OrderPolicy | None = None,
    promotions: Iterable[Promotion | Coupon | FlashSale | RushPurchase] | None = None,
) -> tuple[OrderService, ManualClock]:
    """An :class:`OrderService` on in-memory adapters with :data:`DEMO_PRODUCTS` in stock.

    With ``promotions`` (even an empty list), the service also has an in-memory promotion
    catalogue holding them and an in-memory promotion ledger, so checkout prices carts and
    :meth:`~ecommerce_core.services.OrderService.buy_in_campaign` sells in campaigns.

    Returns:
        The service and its manual clock (advance it to make deadlines fall due).

    """
    clock = ManualClock()
    inventory = InMemoryInventory({p.sku: stock for p in DEMO_PRODUCTS})
    service = OrderService(
        orders=InMemoryOrderRepository(),
        inventory=inventory,
        catalog=InMemoryCatalog(DEMO_PRODUCTS),
        payments=ScriptedPaymentGateway(),
        clock=clock,
        ids=SequentialIds(),
        publisher=RecordingPublisher(),
        policy=policy or OrderPolicy(),
    )
    if promotions is not None:
        service.promotions = InMemoryPromotionCatalog(promotions)
        service.promotion_ledger = InMemoryPromotionLedger()
    return service, clock


def demo_payment_service(
    stock: int = 100,
    policy: OrderPolicy | None = None,
    payment_policy: PaymentPolicy | None = None,
    credit_limit: str = "1000.00",
) -> tuple[PaymentService, ManualClock]:
    """A :class:`PaymentService` on in-memory adapters: every payment method, one ledger.

    The buyers ``alice`` and ``bob`` have credit lines of ``credit_limit`` CNY.

    Returns:
        The service and its manual clock.

    """
    clock = ManualClock()
    limit = Money.of(credit_limit, "CNY")
    service = PaymentService(
        orders=InMemoryOrderRepository(),
        inventory=InMemoryInventory({p.sku: stock for p in DEMO_PRODUCTS}),
        catalog=InMemoryCatalog(DEMO_PRODUCTS),
        payments=ScriptedPaymentGateway(),
        clock=clock,
        ids=SequentialIds(),
        publisher=RecordingPublisher(),
        policy=policy or OrderPolicy(),
        ledger=InMemoryLedger(),
        payment_records=InMemoryPaymentRepository(),
        credit_lines=InMemoryCreditLines({"alice": limit, "bob": limit}),
        payment_policy=payment_policy or PaymentPolicy(),
    )
    return service, clock


def run_demo(echo: Callable[[str], None] = print) -> int:  # noqa: PLR0915  # a script, step by step
    """Walk a handful of orders through the standard process, printing each step.

    Returns:
        0 when every step behaved as the rules say, 1 otherwise.

    """
    service, clock = demo_service(stock=10)
    alice, bob = Actor.buyer("alice"), Actor.buyer("bob")
    teahouse, pottery = Actor.merchant("m-teahouse"), Actor.merchant("m-pottery")
    failures = 0

    def show(order: Order, what: str) -> None:
        deadline = (
            f", next: {order.deadline.trigger} at {order.deadline.at:%m-%d %H:%M}"
            if order.deadline
            else ""
        )
        echo(f"  {clock.now():%m-%d %H:%M}  {order.id:<8} {what:<38} -> {order.state}{deadline}")

    def refused(what: str, action: Callable[[], object]) -> None:
        nonlocal failures
        try:
            action()
        except EcommerceCoreError as error:
            echo(f"  {clock.now():%m-%d %H:%M}  refused: {what}: {type(error).__name__}: {error}")
        else:
            failures += 1
            echo(f"  UNEXPECTED: {what} was accepted")

    echo("1. Alice buys two boxes of tea now, pays, and it goes all the way to closed")
    order = service.buy_now(alice, "tea-01", 2)
    show(order, f"buy now 2 x tea-01, total {order.total}")
    show(service.pay(order.id, alice), "alice pays")
    refused("bob confirms alice's receipt", lambda: service.confirm_receipt(order.id, bob))
    show(
        service.ship(order.id, teahouse, carrier="SF", tracking_number="SF100"),
        "teahouse ships with SF",
    )
    clock.advance(timedelta(days=2))
    show(service.deliver(order.id, Actor.carrier("SF")), "SF reports delivered")
    show(service.confirm_receipt(order.id, alice), "alice confirms receipt")
    refused("alice confirms again", lambda: service.confirm_receipt(order.id, alice))
    clock.advance(timedelta(days=7))
    for fired in service.expire_due():
        echo(
            f"  {clock.now():%m-%d %H:%M}  {fired.order_id:<8} {fired.trigger:<38} -> {fired.state}"
        )

    echo("2. Bob checks a cart out across two merchants: one order each, one checkout")
    orders = service.checkout(bob, [CartItem("pot-01", 1), CartItem("cup-01", 4)])
    for each in orders:
        show(each, f"{each.checkout_id}: {each.merchant_id}, {each.total}")
    cups, pot = sorted(orders, key=lambda o: o.lines[0].sku)
    show(service.pay(pot.id, bob), "bob pays the teapot")
    echo(f"           cups available while reserved: {service.inventory.available('cup-01')} of 10")
    show(service.cancel(cups.id, bob, "changed my mind"), "bob cancels the cups")
    echo(
        f"           cups available after the cancel: {service.inventory.available('cup-01')} of 10"
    )

    echo("3. Alice orders and never pays; the payment deadline cancels it")
    order = service.buy_now(alice, "cup-01", 3)
    show(order, "buy now 3 x cup-01")
    echo(f"           cups available while reserved: {service.inventory.available('cup-01')} of 10")
    refused(
        "pottery ships an unpaid order",
        lambda: service.ship(order.id, pottery, carrier="YTO", tracking_number="Y1"),
    )
    clock.advance(timedelta(minutes=31))
    for fired in service.expire_due():
        echo(
            f"  {clock.now():%m-%d %H:%M}  {fired.order_id:<8} {fired.trigger:<38} -> {fired.state}"
        )
    echo(f"           cups available again: {service.inventory.available('cup-01')} of 10")

    echo("4. A shipped order nobody confirms: auto-confirmed after 10 days, closed 7 days later")
    order = service.buy_now(bob, "tea-01", 1)
    service.pay(order.id, bob)
    show(service.ship(order.id, teahouse, carrier="ZTO", tracking_number="Z7"), "paid and shipped")
    clock.advance(timedelta(days=30))
    for fired in service.expire_due():
        echo(
            f"  {clock.now():%m-%d %H:%M}  {fired.order_id:<8} {fired.trigger:<38} -> {fired.state}"
        )
    refused("too many units", lambda: service.buy_now(alice, "tea-01", 11))

    published = service.publisher.published  # type: ignore[attr-defined]
    on_hand = service.inventory.on_hand("tea-01")
    echo(f"\n{len(published)} events published; stock of tea-01: {on_hand} on hand")
    echo(
        "demo finished: all steps behaved as expected"
        if not failures
        else f"{failures} UNEXPECTED results"
    )
    return 0 if not failures else 1


DEMO_DELIVERY_OPTIONS = {
    "m-teahouse": (
        DeliveryOption("sf-std", "SF", "standard", Money.of("12.00", "CNY"), 2, cod_supported=True),
        DeliveryOption("sf-exp", "SF", "express", Money.of("22.00", "CNY"), 1),
        DeliveryOption("shop", "m-teahouse", "pickup", Money.zero("CNY"), 0, method="pickup"),
    ),
    "m-pottery": (DeliveryOption("zto", "ZTO", "standard", Money.of("8.00", "CNY"), 3),),
}
"""The delivery options the demo merchants offer."""


@attrs.frozen
class DemoWorld:
    """Every service of the demo, over one set of in-memory adapters.

    Attributes:
        orders: Placing, paying, cancelling, deadlines.
        fulfilment: Shipments, tracking, receipt.
        after_sales: Refunds, returns, exchanges.
        carriers: The delivery options each merchant offers.
        clock: The manual clock they share.

    """

    orders: OrderService
    fulfilment: FulfilmentService
    after_sales: AfterSalesService
    carriers: InMemoryCarriers
    clock: ManualClock


def demo_world(
    stock: int = 100,
    policy: OrderPolicy | None = None,
    after_sales_policy: AfterSalesPolicy | None = None,
    refunds: RefundHandler | None = None,
) -> DemoWorld:
    """Order, fulfilment and after-sales services on shared in-memory adapters.

    Refunds go back through the demo payment gateway unless ``refunds`` says otherwise.

        >>> world = demo_world()
        >>> [o.option_id for o in world.carriers.delivery_options("m-teahouse", [])]
        ['sf-std', 'sf-exp', 'shop']

    """
    orders, clock = demo_service(stock, policy)
    shipments, records = InMemoryShipmentRepository(), InMemoryAfterSalesRepository()
    fulfilment = FulfilmentService(
        orders=orders.orders,
        shipments=shipments,
        clock=clock,
        ids=orders.ids,
        publisher=orders.publisher,
        after_sales=records,
        inventory=orders.inventory,
        policy=orders.policy,
    )
    after_sales = AfterSalesService(
        orders=orders.orders,
        shipments=shipments,
        after_sales=records,
        refunds=refunds or gateway_refunds(orders.orders, orders.payments),
        clock=clock,
        ids=orders.ids,
        publisher=orders.publisher,
        inventory=orders.inventory,
        policy=after_sales_policy or AfterSalesPolicy(),
        order_policy=orders.policy,
    )
    carriers = InMemoryCarriers(dict(DEMO_DELIVERY_OPTIONS))
    return DemoWorld(orders, fulfilment, after_sales, carriers, clock)
