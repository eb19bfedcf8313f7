"""Markets, orders, trades and the command queue the matcher consumes (ARCHITECTURE §3, §5)."""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

from wallets.models import AmountField, Asset


class Market(models.Model):
    """A trading pair ``BASE-QUOTE`` with its trading rules and fees."""

    class Status(models.TextChoices):
        TRADING = "trading"
        HALTED = "halted"
        CANCEL_ONLY = "cancel_only"

    symbol = models.CharField(max_length=25, unique=True, help_text="BASE-QUOTE, e.g. BTC-USD.")
    base_asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+")
    quote_asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+")
    tick_size = AmountField(default=None, help_text="Price step, in the quote asset.")
    lot_size = AmountField(default=None, help_text="Quantity step, in the base asset.")
    min_qty = AmountField(default=None)
    max_qty = AmountField(default=None)
    min_notional = AmountField(help_text="Least price × quantity an order may have.")
    maker_fee = models.DecimalField(max_digits=8, decimal_places=6, default=Decimal("0.001"))
    taker_fee = models.DecimalField(max_digits=8, decimal_places=6, default=Decimal("0.002"))
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.TRADING)
    seq = models.BigIntegerField(
        default=0, help_text="Book sequence number: +1 for every visible book change."
    )
    batches = models.BigIntegerField(default=0, help_text="Matcher batches committed.")
    last_price = models.DecimalField(
        max_digits=36, decimal_places=18, null=True, blank=True, default=None
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["symbol"]
        constraints = [
            models.CheckConstraint(
                condition=Q(tick_size__gt=0) & Q(lot_size__gt=0), name="market_steps_positive"
            ),
            models.CheckConstraint(
                condition=Q(min_qty__gt=0) & Q(max_qty__gte=models.F("min_qty")),
                name="market_qty_bounds",
            ),
            models.CheckConstraint(
                condition=Q(maker_fee__gte=0)
                & Q(maker_fee__lt=1)
                & Q(taker_fee__gte=0)
                & Q(taker_fee__lt=1),
                name="market_fee_rates",
            ),
            models.CheckConstraint(
                condition=~Q(base_asset=models.F("quote_asset")), name="market_assets_differ"
            ),
        ]

    def __str__(self):
        return self.symbol


class OrderList(models.Model):
    """Orders placed together that end together: an OCO (one-cancels-the-other) pair.

    Its legs are the orders whose ``order_list`` is this row (ARCHITECTURE §5): a limit
    leg (post-only) and a stop or stop-limit leg, same user, side and quantity. The pair
    holds one reserve, on one leg's ``Order.reserved``.
    """

    class Kind(models.TextChoices):
        OCO = "oco"

    class Status(models.TextChoices):
        EXECUTING = "executing"
        ALL_DONE = "all_done"
        REJECTED = "rejected"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, db_index=False)
    market = models.ForeignKey(Market, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.OCO)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.EXECUTING)
    # NULL, not "", when absent: the per-user uniqueness applies only to given ids.
    client_list_id = models.CharField(max_length=36, null=True, blank=True)  # noqa: DJ001
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "order list"
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "client_list_id"],
                condition=Q(client_list_id__isnull=False),
                name="orderlist_client_id_unique_per_user",
            ),
        ]
        indexes = [models.Index(fields=["user", "-id"], name="orderlist_user_id")]

    def __str__(self):
        return f"{self.kind} list {self.pk} ({self.status})"


class Order(models.Model):
    class Side(models.TextChoices):
        BUY = "buy"
        SELL = "sell"

    class Type(models.TextChoices):
        LIMIT = "limit"
        MARKET = "market"
        STOP = "stop"
        STOP_LIMIT = "stop_limit"

    class TimeInForce(models.TextChoices):
        GTC = "GTC"
        IOC = "IOC"
        FOK = "FOK"

    class Status(models.TextChoices):
        NEW = "new"
        OPEN = "open"
        PARTIALLY_FILLED = "partially_filled"
        FILLED = "filled"
        CANCELLED = "cancelled"
        REJECTED = "rejected"
        EXPIRED = "expired"
        UNTRIGGERED = "untriggered"

    # Statuses in which an order may still trade and so still holds a reserve.
    LIVE = (Status.NEW, Status.OPEN, Status.PARTIALLY_FILLED, Status.UNTRIGGERED)
    FINAL = (Status.FILLED, Status.CANCELLED, Status.REJECTED, Status.EXPIRED)

    # No single-column FK indexes where a composite index below starts with the column:
    # every index costs each matcher batch an insert per changed row.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, db_index=False)
    market = models.ForeignKey(Market, on_delete=models.PROTECT, db_index=False)
    side = models.CharField(max_length=4, choices=Side.choices)
    order_type = models.CharField(max_length=10, choices=Type.choices)
    time_in_force = models.CharField(
        max_length=3, choices=TimeInForce.choices, default=TimeInForce.GTC
    )
    post_only = models.BooleanField(default=False)
    price = models.DecimalField(max_digits=36, decimal_places=18, null=True, blank=True)
    stop_price = models.DecimalField(max_digits=36, decimal_places=18, null=True, blank=True)
    quantity = models.DecimalField(max_digits=36, decimal_places=18, null=True, blank=True)
    quote_quantity = models.DecimalField(max_digits=36, decimal_places=18, null=True, blank=True)
    filled_quantity = AmountField()
    filled_quote = AmountField()
    fee_total = AmountField(help_text="Fees paid, in the asset this order receives.")
    reserved = AmountField(
        help_text="What the order still holds locked: quote for a buy, base for a sell."
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.NEW)
    reason = models.CharField(max_length=40, blank=True)
    # NULL, not "", when absent: the per-user uniqueness applies only to given ids.
    client_order_id = models.CharField(max_length=36, null=True, blank=True)  # noqa: DJ001
    rested_seq = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="The book seq at which it came to rest: its time priority in its level.",
    )
    # Among orders with the same rested_seq, icebergs re-queued by a refresh come after the
    # order that rested at that seq, in refresh order: this key, increasing per market.
    rested_rank = models.BigIntegerField(null=True, blank=True)
    iceberg_quantity = models.DecimalField(
        max_digits=36,
        decimal_places=18,
        null=True,
        blank=True,
        help_text="Iceberg: the part shown on the book at a time (limit GTC orders only).",
    )
    iceberg_visible = models.DecimalField(
        max_digits=36,
        decimal_places=18,
        null=True,
        blank=True,
        help_text="Iceberg: what the book shows of it now (kept by the matcher for restores).",
    )
    trailing_delta = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Trailing stop: the distance from the best price since activation, in bps.",
    )
    trailing_peak = models.DecimalField(
        max_digits=36,
        decimal_places=18,
        null=True,
        blank=True,
        help_text="Trailing stop: the extreme last price since activation (None: not active).",
    )
    order_list = models.ForeignKey(
        OrderList,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="orders",
        db_index=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "client_order_id"],
                condition=Q(client_order_id__isnull=False),
                name="order_client_id_unique_per_user",
            ),
            models.CheckConstraint(condition=Q(reserved__gte=0), name="order_reserved_gte_0"),
            models.CheckConstraint(condition=Q(filled_quantity__gte=0), name="order_filled_gte_0"),
            # An iceberg is a GTC limit order showing a part smaller than its quantity; an
            # amend never takes the quantity down to the shown part (order_amend refuses).
            models.CheckConstraint(
                condition=Q(iceberg_quantity__isnull=True)
                | (
                    Q(order_type="limit", time_in_force="GTC", iceberg_quantity__gt=0)
                    & Q(iceberg_quantity__lt=models.F("quantity"))
                ),
                name="order_iceberg_shape",
            ),
            # The engine's range; order entry applies the narrower 10..2000 (Binance's).
            models.CheckConstraint(
                condition=Q(trailing_delta__isnull=True)
                | Q(
                    order_type__in=["stop", "stop_limit"],
                    trailing_delta__gte=1,
                    trailing_delta__lte=9999,
                ),
                name="order_trailing_shape",
            ),
            models.CheckConstraint(
                condition=Q(trailing_peak__isnull=True) | Q(trailing_delta__isnull=False),
                name="order_trailing_peak_needs_delta",
            ),
        ]
        indexes = [
            models.Index(fields=["user", "-id"], name="order_user_id"),
            models.Index(
                fields=["user", "market"],
                name="order_user_live",
                condition=Q(status__in=["new", "open", "partially_filled", "untriggered"]),
            ),
            models.Index(
                fields=["market", "id"],
                name="order_market_live",
                condition=Q(status__in=["new", "open", "partially_filled", "untriggered"]),
            ),
            models.Index(
                fields=["order_list"],
                name="order_list_legs",
                condition=Q(order_list__isnull=False),
            ),
        ]

    def __str__(self):
        return f"order {self.pk} {self.side} {self.order_type} {self.quantity} @ {self.price}"

    @property
    def is_live(self) -> bool:
        return self.status in self.LIVE

    @property
    def average_price(self) -> Decimal | None:
        if not self.filled_quantity:
            return None
        return self.filled_quote / self.filled_quantity


class Trade(models.Model):
    """One fill between a resting (maker) and an incoming (taker) order, at the maker's price.

    The buyer's fee is in the base asset and the seller's in the quote asset: each pays
    from what it receives.
    """

    market = models.ForeignKey(Market, on_delete=models.PROTECT, db_index=False)
    price = AmountField(default=None)
    quantity = AmountField(default=None)
    quote_quantity = AmountField(default=None)
    buy_order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="+")
    sell_order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="+")
    # Users' trades are found through (buyer, -id) and (seller, -id) below.
    buyer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    seller = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    taker_side = models.CharField(max_length=4, choices=Order.Side.choices)
    buyer_fee = AmountField()
    seller_fee = AmountField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["market", "-id"], name="trade_market_id"),
            models.Index(fields=["market", "created_at"], name="trade_market_time"),
            models.Index(fields=["buyer", "-id"], name="trade_buyer_id"),
            models.Index(fields=["seller", "-id"], name="trade_seller_id"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(price__gt=0) & Q(quantity__gt=0), name="trade_positive"
            ),
        ]

    def __str__(self):
        return f"trade {self.pk} {self.quantity} @ {self.price}"


class OrderCommand(models.Model):
    """What the matcher must do next, in id order per market (ARCHITECTURE §3)."""

    class Kind(models.TextChoices):
        PLACE = "place"
        CANCEL = "cancel"
        # Reduce the order's quantity to ``quantity`` (its new total), keeping its priority.
        AMEND = "amend"
        # Place an order list's legs as one engine command; ``order`` is the list's first
        # leg (the OCO's limit leg), the matcher reads the others through ``order_list``.
        PLACE_LIST = "place_list"

    # Pending commands are found through the partial index below, not a market FK index.
    market = models.ForeignKey(Market, on_delete=models.PROTECT, db_index=False)
    order = models.ForeignKey(Order, on_delete=models.PROTECT)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    quantity = models.DecimalField(
        max_digits=36,
        decimal_places=18,
        null=True,
        blank=True,
        help_text="amend: the order's new total quantity.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    # Concurrent order entry can commit command ids out of order, so the matcher records
    # which batch ran each command: (batch, id) is the exact order the engine saw.
    batch = models.BigIntegerField(null=True, blank=True)

    class Meta:
        verbose_name = "matcher command"
        verbose_name_plural = "matcher commands"
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["market", "id"],
                name="command_pending",
                condition=Q(processed_at__isnull=True),
            ),
        ]
        constraints = [
            # A second cancel of an order already being cancelled queues nothing: the
            # one-statement cancel relies on this index (ON CONFLICT DO NOTHING).
            models.UniqueConstraint(
                fields=["order"],
                condition=Q(kind="cancel", processed_at__isnull=True),
                name="one_pending_cancel_per_order",
            ),
            models.CheckConstraint(
                condition=Q(kind="amend", quantity__gt=0)
                | (~Q(kind="amend") & Q(quantity__isnull=True)),
                name="command_amend_quantity",
            ),
        ]

    def __str__(self):
        return f"{self.kind} order {self.order_id}"
