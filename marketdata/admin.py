"""Candles are derived from trades: listed here, changed only by the matcher and by
``manage.py rebuild_candles``."""

from django.contrib import admin

from marketdata.models import Candle


@admin.register(Candle)
class CandleAdmin(admin.ModelAdmin):
    list_display = (
        "market",
        "interval",
        "open_time",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "quote_volume",
        "trade_count",
    )
    list_filter = ("interval", "market")
    list_select_related = ("market",)
    date_hierarchy = "open_time"
    ordering = ("-open_time",)
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
