"""Operators' view of trading. Markets are edited here (rules, fees, status); orders, trades
and commands are read-only: only the matcher and the order services change them."""

from django.contrib import admin

from trading.models import Market, Order, OrderCommand, Trade
from wallets.admin import ReadOnlyAdmin


@admin.register(Market)
class MarketAdmin(admin.ModelAdmin):
    list_display = (
        "symbol",
        "status",
        "last_price",
        "tick_size",
        "lot_size",
        "min_qty",
        "max_qty",
        "min_notional",
        "maker_fee",
        "taker_fee",
        "seq",
    )
    list_editable = ("status",)
    readonly_fields = ("seq", "batches", "last_price", "created_at", "updated_at")

    def get_readonly_fields(self, request, obj=None):
        # Tick and lot sizes define the integer grid of the live book; changing them
        # under resting orders would corrupt it.
        fixed = ("symbol", "base_asset", "quote_asset", "tick_size", "lot_size") if obj else ()
        return (*self.readonly_fields, *fixed)

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "created_at",
        "user",
        "market",
        "side",
        "order_type",
        "price",
        "quantity",
        "filled_quantity",
        "status",
        "reason",
    )
    list_filter = ("status", "market", "side", "order_type")
    search_fields = ("=id", "user__email", "user__username", "client_order_id")
    list_select_related = ("user", "market")
    show_full_result_count = False


@admin.register(Trade)
class TradeAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "created_at",
        "market",
        "price",
        "quantity",
        "taker_side",
        "buyer",
        "seller",
        "buyer_fee",
        "seller_fee",
    )
    list_filter = ("market", "taker_side")
    search_fields = ("=id", "=buy_order__id", "=sell_order__id", "buyer__email", "seller__email")
    list_select_related = ("market", "buyer", "seller")
    show_full_result_count = False


@admin.register(OrderCommand)
class OrderCommandAdmin(ReadOnlyAdmin):
    list_display = ("id", "created_at", "market", "kind", "order", "processed_at", "batch")
    list_filter = ("market", "kind")
    list_select_related = ("market", "order")
    show_full_result_count = False
