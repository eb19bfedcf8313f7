from django.apps import AppConfig


class TradingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "trading"

    def ready(self):
        from trading.invariants import check_trades_and_orders
        from trading.selectors import order_reserves
        from wallets.ledger_check import register_check, register_reserve_source

        # Invariant 4: what live orders reserve is part of every locked balance.
        register_reserve_source("orders", order_reserves)
        register_check("trades_and_orders", check_trades_and_orders)
