"""Random order flow for the load and restart tests: valid orders of every type around
100 USD on BTC-USD, and cancels of the trader's own orders."""

import random
from decimal import Decimal

from trading import services
from trading.exceptions import NoLiquidity, OrderNotCancellable
from wallets.exceptions import InsufficientBalance

D = Decimal
CENT = D("0.01")

# (weight, kind)
KINDS = [
    (50, "limit"),
    (8, "ioc"),
    (5, "fok"),
    (7, "post_only"),
    (5, "market_sell"),
    (5, "market_buy_qty"),
    (5, "market_buy_quote"),
    (5, "stop"),
    (5, "stop_limit"),
]
_KIND_NAMES = [kind for _, kind in KINDS]
_KIND_WEIGHTS = [weight for weight, _ in KINDS]

# Refusals a valid random order may meet; anything else fails the test.
EXPECTED_REFUSALS = (InsufficientBalance, NoLiquidity, OrderNotCancellable)


def _price(rng: random.Random, spread: int = 500) -> Decimal:
    return D(10_000 + rng.randint(-spread, spread)) * CENT  # 95.00 .. 105.00


def _quantity(rng: random.Random) -> Decimal:
    return D(rng.randint(2, 200)) * CENT  # 0.02 .. 2.00: at least 1 USD at 95


def random_request(rng: random.Random) -> services.OrderRequest:
    kind = rng.choices(_KIND_NAMES, _KIND_WEIGHTS)[0]
    side = rng.choice(["buy", "sell"])
    base = {"symbol": "BTC-USD", "side": side}
    if kind in ("limit", "ioc", "fok", "post_only"):
        return services.OrderRequest(
            **base,
            order_type="limit",
            price=_price(rng),
            quantity=_quantity(rng),
            time_in_force={"ioc": "IOC", "fok": "FOK"}.get(kind, "GTC"),
            post_only=kind == "post_only",
        )
    if kind == "market_sell":
        return services.OrderRequest(
            **{**base, "side": "sell"}, order_type="market", quantity=_quantity(rng)
        )
    if kind == "market_buy_qty":
        return services.OrderRequest(
            **{**base, "side": "buy"}, order_type="market", quantity=_quantity(rng)
        )
    if kind == "market_buy_quote":
        return services.OrderRequest(
            **{**base, "side": "buy"},
            order_type="market",
            quote_quantity=D(rng.randint(100, 20_000)) * CENT,
        )
    if kind == "stop":
        return services.OrderRequest(
            **base, order_type="stop", stop_price=_price(rng, 300), quantity=_quantity(rng)
        )
    stop = _price(rng, 300)
    offset = D(rng.randint(0, 100)) * CENT
    return services.OrderRequest(
        **base,
        order_type="stop_limit",
        stop_price=stop,
        price=stop + offset if side == "buy" else stop - offset,
        quantity=_quantity(rng),
    )


def random_flow(user, rng: random.Random, steps: int, cancel_share: float = 0.2) -> dict:
    """Place or cancel ``steps`` times as ``user``; returns counts of what happened."""
    placed: list[int] = []
    counts = {"placed": 0, "cancels": 0, "refused": 0}
    for _ in range(steps):
        try:
            if placed and rng.random() < cancel_share:
                services.order_cancel(user=user, order_id=rng.choice(placed))
                counts["cancels"] += 1
            else:
                order, _ = services.order_place(user=user, request=random_request(rng))
                placed.append(order.pk)
                counts["placed"] += 1
        except EXPECTED_REFUSALS:
            counts["refused"] += 1
    return counts
