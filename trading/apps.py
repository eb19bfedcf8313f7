from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class TradingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "trading"

    def ready(self):
        # Imported here, not above: models (and the modules that use them) can only be
        # imported once the app registry is ready, which is what ready() is for.
        from accounts.hooks import register_freeze_hook
        from trading.invariants import check_trades_and_orders
        from trading.models import Market
        from trading.selectors import market_cache_clear, order_reserves
        from trading.services import user_orders_cancel_queue
        from wallets.ledger_check import register_check, register_reserve_source
        from wallets.models import Asset

        for model in (Market, Asset):
            post_save.connect(market_cache_clear, sender=model, dispatch_uid=f"cache-{model}")
            post_delete.connect(market_cache_clear, sender=model, dispatch_uid=f"del-{model}")

        # Invariant 4: what live orders reserve is part of every locked balance.
        register_reserve_source("orders", order_reserves)
        register_check("trades_and_orders", check_trades_and_orders)
        # Freezing an account cancels its orders; the key names them in the audit record.
        register_freeze_hook("orders_cancel_queued", user_orders_cancel_queue)
