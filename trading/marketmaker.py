"""A market maker and a taker that keep the markets alive on a fresh machine (issue 9).

Both are ordinary users: made with ``accounts.services.user_register``, funded with demo
deposits (``wallets.services.deposit_demo_create``, within its caps), trading only through
``trading.services`` and paying the market's fees like everyone.

- The maker keeps a two-sided ladder of post-only limit orders around a reference price that
  follows a random walk (in whole ticks). Each ``interval`` the reference moves and the
  ladder is re-quoted: the levels that left the ladder are cancelled, the missing ones
  placed. Levels sit on a fixed grid, so a small move re-quotes a level or two, not all.
  Each side of each market uses at most ``BUDGET_SHARE`` of what the maker holds of the
  asset (shared between the markets using it): cancels are asynchronous, so the old ladder
  stays reserved until the matcher has processed them and the new one must fit beside it.
- The taker sends market orders and IOC limit orders of random sizes at random intervals,
  buying more often in a market where it holds more quote than base, so neither bot runs
  out of one side.

``ladder`` and ``walk`` are pure; ``MarketMaker`` is the Django glue. The matcher does the
matching, as for every order.
"""

from __future__ import annotations

import logging
import random
import secrets
import signal
import threading
import time
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from django.conf import settings
from django.db import DatabaseError, close_old_connections

from accounts.models import User
from accounts.selectors import user_get_by_login
from accounts.services import user_register
from exchange_site.exceptions import ExchangeError
from trading import services
from trading.models import Market, Order
from trading.selectors import normalize_symbol
from wallets.exceptions import DemoDepositsDisabled, DepositLimitExceeded
from wallets.models import ZERO, Balance
from wallets.services import deposit_demo_create

logger = logging.getLogger("trading.marketmaker")

MAKER = ("marketmaker@example.com", "marketmaker", "Demo market maker")
TAKER = ("taker@example.com", "taker", "Demo taker")
# Where a market with no trade yet starts its walk.
START_PRICES = {"BTC-USD": "50000", "ETH-USD": "3000", "SOL-USD": "150", "ETH-BTC": "0.06"}
BUDGET_SHARE = Decimal("0.4")
TAKER_SHARE = (Decimal("0.002"), Decimal("0.02"))  # of its holdings per order
TOP_UP_BELOW = Decimal("0.25")  # of the per-request cap: deposit back up to the cap
TOP_UP_EVERY_SECONDS = 30.0


@dataclass(frozen=True)
class Quote:
    side: str
    price: Decimal
    quantity: Decimal


@dataclass(frozen=True)
class Rules:
    """What the ladder needs of a market."""

    tick: Decimal
    lot: Decimal
    min_qty: Decimal
    max_qty: Decimal
    min_notional: Decimal

    @classmethod
    def of(cls, market: Market) -> Rules:
        return cls(
            market.tick_size, market.lot_size, market.min_qty, market.max_qty, market.min_notional
        )


def walk(reference_ticks: int, *, volatility_bps: float, rng: random.Random) -> int:
    """One step of the reference's random walk, in whole ticks (never below one tick)."""
    sigma = reference_ticks * volatility_bps / 10_000
    return max(1, reference_ticks + round(rng.gauss(0.0, sigma)))


def _steps(value: Decimal, step: Decimal, rounding) -> Decimal:
    return (value / step).to_integral_value(rounding=rounding) * step


def grid_step(reference: Decimal, *, step_bps: int, tick: Decimal) -> Decimal:
    """The ladder's level spacing: ``step_bps`` of ``reference`` on the tick grid (at least
    one tick). Fixed per market, so that a small move of the reference moves few levels."""
    return max(_steps(reference * Decimal(step_bps) / 10_000, tick, ROUND_FLOOR), tick)


def ladder(
    *,
    reference: Decimal,
    rules: Rules,
    spread_bps: int,
    step: Decimal,
    levels: int,
    bid_budget: Decimal,
    ask_budget: Decimal,
) -> list[Quote]:
    """Bids below and asks above ``reference``, at least ``spread_bps / 2`` away, on a grid
    of multiples of ``step``: when the reference moves less than a step, the ladder stays as
    it is; a larger move cancels only the levels it passes. ``bid_budget`` (in the quote
    asset) and ``ask_budget`` (in the base asset) are spread evenly over the levels; levels
    under the market's minimums are left out."""
    half = reference * Decimal(spread_bps) / 20_000
    best_bid = _steps(reference - half, step, ROUND_FLOOR)
    best_ask = _steps(reference + half, step, ROUND_CEILING)
    if best_ask <= reference:
        best_ask += step
    if best_bid >= best_ask:
        best_bid = best_ask - step
    quotes: list[Quote] = []
    for level in range(levels):
        bid = best_bid - step * level
        ask = best_ask + step * level
        if bid > 0:
            quotes.append(Quote(Order.Side.BUY, bid, _size(bid_budget / levels / bid, rules, bid)))
        quotes.append(Quote(Order.Side.SELL, ask, _size(ask_budget / levels, rules, ask)))
    return [quote for quote in quotes if quote.quantity > 0]


def _size(quantity: Decimal, rules: Rules, price: Decimal) -> Decimal:
    quantity = min(_steps(quantity, rules.lot, ROUND_FLOOR), rules.max_qty)
    if quantity < rules.min_qty or quantity * price < rules.min_notional:
        return ZERO
    return quantity


@dataclass
class MarketState:
    market: Market
    rules: Rules
    reference_ticks: int
    step: Decimal
    next_quote_at: float = 0.0
    cancelling: set[int] = field(default_factory=set)

    @property
    def reference(self) -> Decimal:
        return self.rules.tick * self.reference_ticks


def bot_user_get_or_create(*, email: str, username: str, full_name: str) -> User:
    """The bot's account, registered like anyone's on first use (a random password: it
    never logs in)."""
    user = user_get_by_login(login=email)
    if user is None:
        user = user_register(
            email=email,
            username=username,
            password=secrets.token_urlsafe(24),
            full_name=full_name,
        )
    return user


class MarketMaker:
    """Runs the maker (and the taker) over ``symbols`` until ``stop()``."""

    def __init__(
        self,
        *,
        symbols: list[str] | None = None,
        spread_bps: int = 10,
        step_bps: int = 5,
        levels: int = 10,
        interval: float = 1.0,
        volatility_bps: float = 3.0,
        taker_interval: float | None = 2.0,
        seed: int | None = None,
    ):
        if levels < 1 or spread_bps < 0 or step_bps < 0 or interval <= 0:
            raise ValueError("levels must be at least 1, spreads and interval not negative")
        self.symbols = [normalize_symbol(s) for s in symbols] if symbols else None
        self.spread_bps = spread_bps
        self.step_bps = step_bps
        self.levels = levels
        self.interval = interval
        self.volatility_bps = volatility_bps
        self.taker_interval = taker_interval
        self.rng = random.Random(seed)
        self.markets: list[MarketState] = []
        self.maker: User | None = None
        self.taker: User | None = None
        self.next_take_at = 0.0
        self.next_top_up_at = 0.0
        self._stopping = threading.Event()
        self._warned: set[str] = set()

    # --- lifecycle ------------------------------------------------------------------

    def stop(self, *_args) -> None:
        self._stopping.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

    def setup(self) -> None:
        """Register and fund the bots; pick the markets and their starting prices."""
        self.maker = bot_user_get_or_create(email=MAKER[0], username=MAKER[1], full_name=MAKER[2])
        self.taker = bot_user_get_or_create(email=TAKER[0], username=TAKER[1], full_name=TAKER[2])
        markets = Market.objects.select_related("base_asset", "quote_asset").exclude(
            status=Market.Status.HALTED
        )
        if self.symbols:
            markets = markets.filter(symbol__in=self.symbols)
            missing = set(self.symbols) - {market.symbol for market in markets}
            if missing:
                raise ValueError(f"unknown or halted markets: {', '.join(sorted(missing))}")
        self.markets = []
        for market in markets:
            start = market.last_price or (
                Decimal(START_PRICES[market.symbol]) if market.symbol in START_PRICES else None
            )
            if start is None:
                logger.warning("%s has no trade and no start price: not quoted", market.symbol)
                continue
            ticks = max(1, int(start / market.tick_size))
            step = grid_step(start, step_bps=self.step_bps, tick=market.tick_size)
            self.markets.append(MarketState(market, Rules.of(market), ticks, step))
        if not self.markets:
            raise ValueError("no market to make")
        self.top_up()

    def run(self) -> None:
        self.setup()
        logger.info(
            "market maker quoting %s (%d levels, spread %d bps)",
            ", ".join(state.market.symbol for state in self.markets),
            self.levels,
            self.spread_bps,
        )
        try:
            while not self._stopping.is_set():
                try:
                    close_old_connections()
                    pause = self.step(time.monotonic()) - time.monotonic()
                except DatabaseError:
                    logger.warning("database error; retrying in a second", exc_info=True)
                    pause = 1.0
                self._stopping.wait(max(0.0, pause))
        finally:
            self.withdraw_quotes()

    def withdraw_quotes(self) -> None:
        """Cancel every live order of both bots (on exit, as a real market maker does)."""
        for user in (self.maker, self.taker):
            if user is None:
                continue
            try:
                cancelled = services.order_cancel_all(user=user)
                logger.info("cancelled %d orders of %s", len(cancelled), user.username)
            except (DatabaseError, ExchangeError):
                logger.warning("could not cancel the orders of %s", user.username, exc_info=True)

    def step(self, now: float) -> float:
        """Do whatever is due at ``now`` (monotonic seconds); return when the next thing is."""
        if now >= self.next_top_up_at:
            self.top_up()
            self.next_top_up_at = now + TOP_UP_EVERY_SECONDS
        due = [state for state in self.markets if now >= state.next_quote_at]
        if due:
            holdings = self._holdings(self.maker)
            for state in due:
                state.reference_ticks = walk(
                    state.reference_ticks, volatility_bps=self.volatility_bps, rng=self.rng
                )
                self.requote(state, holdings)
                state.next_quote_at = now + self.interval
        if self.taker_interval and now >= self.next_take_at:
            self.take()
            self.next_take_at = now + self.rng.expovariate(1 / self.taker_interval)
        upcoming = [state.next_quote_at for state in self.markets]
        if self.taker_interval:
            upcoming.append(self.next_take_at)
        return min(upcoming)

    # --- funding --------------------------------------------------------------------

    def _holdings(self, user: User) -> dict[int, Decimal]:
        return {
            asset_id: available + locked
            for asset_id, available, locked in Balance.objects.filter(user=user).values_list(
                "asset_id", "available", "locked"
            )
        }

    def top_up(self) -> None:
        """Deposit each bot back up to the per-deposit cap of an asset once it holds less than
        a quarter of it. Without demo deposits (or past the daily cap) the bots trade what
        they have."""
        assets = {}
        for state in self.markets:
            for asset in (state.market.base_asset, state.market.quote_asset):
                assets[asset.pk] = asset
        caps = settings.DEMO_DEPOSIT_MAX_PER_REQUEST
        for user in (self.maker, self.taker):
            held = self._holdings(user)
            for asset in assets.values():
                cap = Decimal(str(caps.get(asset.code, caps.get("*", "0"))))
                have = held.get(asset.pk, ZERO)
                if cap <= 0 or have >= cap * TOP_UP_BELOW:
                    continue
                amount = _steps(cap - have, asset.quantum, ROUND_FLOOR)
                try:
                    deposit_demo_create(user=user, asset_code=asset.code, amount=amount)
                except (DemoDepositsDisabled, DepositLimitExceeded) as exc:
                    self._warn_once(f"{user.pk}-{asset.code}-{exc.code}", exc.message)

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            logger.warning("market maker funding: %s", message)

    # --- the maker ------------------------------------------------------------------

    def _share(self, asset_id: int) -> int:
        return sum(
            asset_id in (state.market.base_asset_id, state.market.quote_asset_id)
            for state in self.markets
        )

    def desired(self, state: MarketState, holdings: dict[int, Decimal]) -> list[Quote]:
        market = state.market
        return ladder(
            reference=state.reference,
            rules=state.rules,
            spread_bps=self.spread_bps,
            step=state.step,
            levels=self.levels,
            bid_budget=holdings.get(market.quote_asset_id, ZERO)
            * BUDGET_SHARE
            / self._share(market.quote_asset_id),
            ask_budget=holdings.get(market.base_asset_id, ZERO)
            * BUDGET_SHARE
            / self._share(market.base_asset_id),
        )

    def requote(self, state: MarketState, holdings: dict[int, Decimal] | None = None) -> None:
        """Cancel the maker's orders that left the ladder, place the levels it lacks."""
        holdings = holdings if holdings is not None else self._holdings(self.maker)
        wanted = {(quote.side, quote.price): quote for quote in self.desired(state, holdings)}
        live = Order.objects.filter(
            user=self.maker, market=state.market, status__in=Order.LIVE
        ).values_list("id", "side", "price")
        live_ids = set()
        for order_id, side, price in live:
            live_ids.add(order_id)
            if order_id in state.cancelling:
                continue
            if wanted.pop((side, price), None) is None:
                self._cancel(order_id)
                state.cancelling.add(order_id)
        state.cancelling &= live_ids
        # Nearest the reference first: if funds run short, the outer levels go unquoted.
        for quote in sorted(wanted.values(), key=lambda q: abs(q.price - state.reference)):
            self._place(
                self.maker,
                services.OrderRequest(
                    symbol=state.market.symbol,
                    side=quote.side,
                    order_type=Order.Type.LIMIT,
                    price=quote.price,
                    quantity=quote.quantity,
                    post_only=True,
                ),
            )

    def _cancel(self, order_id: int) -> None:
        try:
            services.order_cancel(user=self.maker, order_id=order_id)
        except ExchangeError as exc:  # filled or cancelled meanwhile: nothing to do
            logger.debug("cancel of %s refused: %s", order_id, exc.code)

    def _place(self, user: User, request: services.OrderRequest) -> Order | None:
        try:
            order, _ = services.order_place(user=user, request=request)
        except ExchangeError as exc:
            # Short of funds or a market rule: skip this one; the next round tries again.
            logger.debug("%s %s refused: %s", user.username, request, exc.code)
            return None
        return order

    # --- the taker ------------------------------------------------------------------

    def take(self) -> Order | None:
        """One taker order in a random market: a market order or an IOC limit order a few
        levels deep, sized at a random share of what it holds."""
        state = self.rng.choice(self.markets)
        market, rules, reference = state.market, state.rules, state.reference
        held = self._holdings(self.taker)
        quote_held = held.get(market.quote_asset_id, ZERO)
        base_held = held.get(market.base_asset_id, ZERO)
        total = quote_held + base_held * reference
        if total <= 0:
            return None
        buy_chance = min(max(quote_held / total, Decimal("0.1")), Decimal("0.9"))
        buy = Decimal(str(self.rng.random())) < buy_chance
        low, high = TAKER_SHARE
        share = low + (high - low) * Decimal(str(self.rng.random()))
        value = (quote_held if buy else base_held * reference) * share
        quantity = _steps(value / reference, rules.lot, ROUND_FLOOR)
        if quantity < rules.min_qty or quantity * reference < rules.min_notional:
            return None
        quantity = min(quantity, rules.max_qty)
        side = Order.Side.BUY if buy else Order.Side.SELL
        if self.rng.random() < 0.7:
            if buy:
                spend = _steps(value, market.quote_asset.quantum, ROUND_FLOOR)
                request = services.OrderRequest(
                    symbol=market.symbol, side=side, order_type=Order.Type.MARKET,
                    quote_quantity=spend,
                )  # fmt: skip
            else:
                request = services.OrderRequest(
                    symbol=market.symbol, side=side, order_type=Order.Type.MARKET,
                    quantity=quantity,
                )  # fmt: skip
        else:
            depth = Decimal(self.spread_bps) / 2 + Decimal(self.step_bps) * self.rng.randint(0, 3)
            offset = reference * depth / 10_000
            price = (
                _steps(reference + offset, rules.tick, ROUND_CEILING)
                if buy
                else max(_steps(reference - offset, rules.tick, ROUND_FLOOR), rules.tick)
            )
            request = services.OrderRequest(
                symbol=market.symbol, side=side, order_type=Order.Type.LIMIT, price=price,
                quantity=quantity, time_in_force=Order.TimeInForce.IOC,
            )  # fmt: skip
        return self._place(self.taker, request)
