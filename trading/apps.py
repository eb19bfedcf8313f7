from django.apps import AppConfig


class TradingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "trading"

    def ready(self):
        from django.db.models.signals import post_delete, post_save

        from trading.invariants import check_trades_and_orders
        from trading.models import Market
        from trading.selectors import market_cache_clear, order_reserves
        from wallets.ledger_check import register_check, register_reserve_source
        from wallets.models import Asset

        for model in (Market, Asset):
            post_save.connect(market_cache_clear, sender=model, dispatch_uid=f"cache-{model}")
            post_delete.connect(market_cache_clear, sender=model, dispatch_uid=f"del-{model}")

        # Invariant 4: what live orders reserve is part of every locked balance.
        register_reserve_source("orders", order_reserves)
        register_check("trades_and_orders", check_trades_and_orders)
