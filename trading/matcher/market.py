"""One market's matcher: its engine book and the settlement of each batch (ARCHITECTURE §3, §4).

A batch is read, run through the engine and written in ONE transaction: trades, order
updates, aggregated balance changes with their ledger entries, the market's seq and last
price, and the commands' processed marks. If anything fails the transaction rolls back,
the in-memory book is thrown away and rebuilt from the database, and the batch runs again:
the engine is deterministic, so the second run produces the same events.
"""

from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal

from django.db import connection, transaction
from django.db.models import F, Min, Q
from django.utils import timezone

from exchange_site.db import array_literal, copy_rows, next_ids, update_rows
from marketdata.services import candles_apply_trades
from trading import engine
from trading.fee_selectors import fee_rates_for_users
from trading.matcher.commands import (
    OFF_GRID_AT,
    ORDER_AT,
    OUT_OF_RANGE_AT,
    PLACE_AT,
    amend_command,
    oco_command,
    place_columns,
    place_command,
)
from trading.matcher.convert import MarketScale, OffGrid
from trading.models import Market, Order, OrderCommand, OrderList, Trade
from wallets.models import AMOUNT_QUANTUM, ZERO
from wallets.models import LedgerKind as Kind
from wallets.selectors import fee_account_get
from wallets.services import BalanceChange, balance_changes_apply

TRADE_COLUMNS = (
    "id",
    "market_id",
    "price",
    "quantity",
    "quote_quantity",
    "buy_order_id",
    "sell_order_id",
    "buyer_id",
    "seller_id",
    "taker_side",
    "buyer_fee",
    "seller_fee",
    "created_at",
)

ORDER_UPDATE_FIELDS = [
    "status",
    "reason",
    "filled_quantity",
    "filled_quote",
    "fee_total",
    "reserved",
    "rested_seq",
    "updated_at",
]

# Written only for the orders that need them (``OrderState.extra``): the few amended,
# iceberg and trailing orders of a batch, so the common batch writes no more than before.
EXTRA_UPDATE_FIELDS = ["quantity", "iceberg_visible", "rested_rank", "trailing_peak"]


# The order columns the matcher reads: enough to place, settle and write back an order.
ORDER_COLUMNS = (
    "id",
    "user_id",
    "side",
    "order_type",
    "time_in_force",
    "post_only",
    "price",
    "stop_price",
    "quantity",
    "quote_quantity",
    "filled_quantity",
    "filled_quote",
    "fee_total",
    "reserved",
    "status",
    "reason",
    "rested_seq",
    "rested_rank",
    "iceberg_quantity",
    "iceberg_visible",
    "trailing_delta",
    "trailing_peak",
    "order_list_id",
)

_RESTING = (Order.Status.OPEN, Order.Status.PARTIALLY_FILLED)

# A command row (trading.matcher.commands.PLACE_AT): id, kind, quantity, frozen_at, the
# order's engine.Place fields as ints, its off-grid remainder, its out-of-range flag, then
# ORDER_COLUMNS.

# A refreshed iceberg's ``rested_rank``: (batch << 32) + its refresh's number in the batch,
# increasing per market, so refreshes in different batches at one seq keep their order.
_RANK_BITS = 32


class SettledTrade:
    """A trade as the matcher writes it: the Trade row's columns, without a model instance
    (Django's ``Model.__init__`` was the largest Python cost of a batch)."""

    __slots__ = TRADE_COLUMNS

    def __init__(self, **values):
        for name, value in values.items():
            setattr(self, name, value)

    @property
    def pk(self) -> int:
        return self.id

    def row(self) -> tuple:
        return tuple(getattr(self, column) for column in TRADE_COLUMNS)


class OrderState:
    """The matcher's working copy of a live order (it is the only writer of these fields).

    Built from plain column values rather than model instances: a batch reads hundreds.
    """

    __slots__ = (*ORDER_COLUMNS, "extra")

    def __init__(self, values: tuple):
        # In the order of ORDER_COLUMNS (test_settlement checks it), unpacked in one
        # statement: a restore builds 100,000 of these, and a loop of setattr was most of
        # the Python time of reading them.
        (
            self.id,
            self.user_id,
            self.side,
            self.order_type,
            self.time_in_force,
            self.post_only,
            self.price,
            self.stop_price,
            self.quantity,
            self.quote_quantity,
            self.filled_quantity,
            self.filled_quote,
            self.fee_total,
            self.reserved,
            self.status,
            self.reason,
            self.rested_seq,
            self.rested_rank,
            self.iceberg_quantity,
            self.iceberg_visible,
            self.trailing_delta,
            self.trailing_peak,
            self.order_list_id,
        ) = values
        self.extra = False  # EXTRA_UPDATE_FIELDS changed: write them too

    def extra_row(self) -> tuple:
        """(id, *EXTRA_UPDATE_FIELDS values)."""
        return (self.id, self.quantity, self.iceberg_visible, self.rested_rank, self.trailing_peak)

    def update_row(self, now) -> tuple:
        """(id, *ORDER_UPDATE_FIELDS values): what a batch writes back."""
        return (
            self.id,
            self.status,
            self.reason,
            self.filled_quantity,
            self.filled_quote,
            self.fee_total,
            self.reserved,
            self.rested_seq,
            now,
        )


@dataclass
class BatchResult:
    """What a committed batch did, for publishing after commit."""

    symbol: str
    commands: int = 0
    # The market's batch number this result committed as (``MarketMatcher.batches`` moves
    # on with the next batch while this one may still be publishing).
    batch: int | None = None
    trades: list[SettledTrade] = field(default_factory=list)
    orders: list[OrderState] = field(default_factory=list)
    level_changes: list[tuple] = field(default_factory=list)
    balances: dict[tuple[int, int], tuple] = field(default_factory=dict)
    candles: list = field(default_factory=list)


class MarketMatcher:
    """Owns one market's book while this process holds the market's lock."""

    def __init__(self, market: Market):
        self.market_id = market.pk
        self.symbol = market.symbol
        self.book: engine.OrderBook | None = None
        self.live: dict[int, OrderState] = {}
        # The other leg of each live OCO leg, both ways.
        self.peers: dict[int, int] = {}
        self.batches = market.batches
        self._load_rules(market)

    def _load_rules(self, market: Market) -> None:
        self.scale = MarketScale(market.tick_size, market.lot_size)
        self.maker_fee = market.maker_fee
        self.taker_fee = market.taker_fee
        self.base_asset_id = market.base_asset_id
        self.quote_asset_id = market.quote_asset_id
        self.asset_codes = {
            market.base_asset_id: market.base_asset.code,
            market.quote_asset_id: market.quote_asset.code,
        }
        # Looked up once per restore, not per batch: the fee account never changes.
        self.fee_account_id = fee_account_get().pk
        self._compiled: dict[str, tuple[str, tuple]] = {}

    # --- building the book from the database ------------------------------------------

    def restore(self) -> None:
        """Rebuild the book from open orders in the database (after start or a failure).

        Resting orders go in in their time priority: ``rested_seq``, then refreshed
        icebergs by ``rested_rank`` after the order that rested at that seq, then arrival.
        Icebergs get their hidden and shown parts, trailing stops their peak, OCO legs
        their pairing: the book continues exactly as the one that was dropped.
        """
        market = Market.objects.select_related("base_asset", "quote_asset").get(pk=self.market_id)
        self._load_rules(market)
        self.batches = market.batches
        scale = self.scale
        placing = Q(ordercommand__kind__in=[OrderCommand.Kind.PLACE, OrderCommand.Kind.PLACE_LIST])
        live_orders = (
            Order.objects.filter(
                market_id=self.market_id,
                status__in=[
                    Order.Status.OPEN,
                    Order.Status.PARTIALLY_FILLED,
                    Order.Status.UNTRIGGERED,
                ],
            )
            .annotate(arrival=Min("ordercommand__id", filter=placing))
            .order_by("rested_seq", F("rested_rank").asc(nulls_first=True), "arrival")
            .values_list(*ORDER_COLUMNS, "arrival")
        )
        states, arrivals, lists = [], {}, {}
        # The compiled query on a plain cursor: Django's row iterator (a server-side cursor
        # fetched in chunks, a tuple built per row) was a third of a 100,000-order restore.
        with connection.cursor() as cursor:
            cursor.execute(*live_orders.query.sql_with_params())
            rows = cursor.fetchall()
        for *values, arrival in rows:
            state = OrderState(values)
            states.append(state)
            arrivals[state.id] = arrival
            if state.order_list_id is not None:
                lists.setdefault(state.order_list_id, []).append(state)
        live = {state.id: state for state in states}
        peers, oco_pairs = {}, []
        for list_id, legs in lists.items():
            if len(legs) != 2:
                continue  # cannot happen: the engine ends both legs in one command
            limit, stop = sorted(legs, key=lambda leg: leg.order_type != Order.Type.LIMIT)
            peers[limit.id], peers[stop.id] = stop.id, limit.id
            oco_pairs.append((list_id, limit.id, stop.id))
            # A stop leg is placed by its list's command: it arrived with its limit leg.
            arrivals[stop.id] = arrivals[limit.id]
        resting, stops, trailing_peaks = [], [], {}
        for state in states:
            if state.status == Order.Status.UNTRIGGERED:
                peer = live.get(peers.get(state.id))
                reserve = peer.reserved if peer is not None else None
                stops.append((arrivals[state.id], self._place_command(state, reserve=reserve)))
                if state.trailing_peak is not None:
                    trailing_peaks[state.id] = scale.price_to_ticks(state.trailing_peak)
                continue
            remaining = scale.qty_to_lots(state.quantity - state.filled_quantity)
            iceberg = visible = None
            if state.iceberg_quantity is not None:
                iceberg = scale.qty_to_lots(state.iceberg_quantity)
                visible = (
                    scale.qty_to_lots(state.iceberg_visible)
                    if state.iceberg_visible
                    else min(iceberg, remaining)
                )
            resting.append(
                engine.Resting(
                    state.id,
                    state.user_id,
                    state.side,
                    scale.price_to_ticks(state.price),
                    remaining,
                    iceberg,
                    visible,
                    peers.get(state.id),
                )
            )
        stops.sort(key=lambda item: (item[0] is None, item[0] or 0))
        last_price = market.last_price
        self.book = engine.OrderBook.restore(
            resting,
            [command for _, command in stops],
            last_price_ticks=scale.price_to_ticks(last_price) if last_price else None,
            seq=market.seq,
            trailing_peaks=trailing_peaks,
            oco_pairs=oco_pairs,
        )
        self.live = live
        self.peers = peers

    def _place_command(self, order: OrderState, reserve: Decimal | None = None) -> engine.Place:
        """The engine's Place for ``order`` (``trading.matcher.commands.place_command``)."""
        return place_command(self.scale, order, reserve)

    def _list_legs(self, first: OrderState) -> list[OrderState]:
        """The legs of ``first``'s order list, the OCO's limit leg first."""
        if first.order_list_id is None:
            return [first]  # not a list's leg: placed as a single order
        rows = (
            Order.objects.filter(order_list_id=first.order_list_id, market_id=self.market_id)
            .exclude(pk=first.id)
            .values_list(*ORDER_COLUMNS)
        )
        legs = [first, *(OrderState(values) for values in rows)]
        return sorted(legs, key=lambda leg: leg.order_type != Order.Type.LIMIT)

    def _list_command(self, limit: OrderState, stop: OrderState) -> "engine.PlaceOco":
        """The engine command placing an OCO's two legs at once. Raises OffGrid."""
        return oco_command(self.scale, limit, stop)

    # --- one batch ----------------------------------------------------------------------

    def run_batch(self, batch_size: int) -> BatchResult | None:
        """Process up to ``batch_size`` pending commands in one transaction.

        Returns None when there was nothing to do. On any exception the transaction is
        rolled back and the book is dropped, so the caller must ``restore`` before retrying.
        """
        if self.book is None:
            self.restore()
        try:
            with transaction.atomic():
                return self._run_batch(batch_size)
        except BaseException:
            self.book = None
            self.live = {}
            self.batches = None
            raise

    def _rows(self, name: str, build) -> list[tuple]:
        """The rows of the ``values_list`` queryset ``build()`` makes, compiled once per
        matcher: these queries never change shape or parameters, and compiling them again
        for every batch was most of a small batch's CPU (a steady trickle of orders makes
        batches of a few commands)."""
        compiled = self._compiled.get(name)
        if compiled is None:
            compiled = self._compiled[name] = build().query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(*compiled)
            return cursor.fetchall()

    def _commands_query(self, batch_size: int):
        # The engine's ints are computed on this matcher's grid (compiled once per restore,
        # which reloads the grid); a batch that finds the market on another grid stops
        # before using them.
        names, annotations = place_columns(self.scale, "order__")
        return (
            OrderCommand.objects.filter(market_id=self.market_id, processed_at__isnull=True)
            .order_by("id")
            .annotate(**annotations)
            .values_list(
                "id",
                "kind",
                "quantity",
                # A freeze that committed after an order's acceptance (the order was not yet
                # visible to the freeze's cancel sweep) still stops it here.
                "order__user__frozen_at",
                *names,
                *(f"order__{column}" for column in ORDER_COLUMNS),
            )[:batch_size]
        )

    def _run_batch(self, batch_size: int) -> BatchResult | None:
        commands = self._rows(f"commands-{batch_size}", lambda: self._commands_query(batch_size))
        if not commands:
            return None
        # The market row lock orders this batch with operators' status and rule changes
        # (trading.services.market_status_set / market_rules_update), which take it too.
        # NO KEY UPDATE: a plain FOR UPDATE would also block every order INSERT's foreign-key
        # check (FOR KEY SHARE) on the market, deadlocking with order entry's balance locks.
        ((status, tick_size, lot_size, self.maker_fee, self.taker_fee),) = self._rows(
            "market-lock",
            lambda: (
                Market.objects.select_for_update(no_key=True)
                .filter(pk=self.market_id)
                .values_list("status", "tick_size", "lot_size", "maker_fee", "taker_fee")
            ),
        )
        if status == Market.Status.HALTED:
            return None  # the commands wait, in order, until the market resumes
        if (tick_size, lot_size) != (self.scale.tick_size, self.scale.lot_size):
            self.book = None  # rebuilt on the new grid (and re-published) before the next batch
            return None
        cancel_only = status == Market.Status.CANCEL_ONLY
        now = timezone.now()
        book = self.book
        result = BatchResult(symbol=self.symbol, commands=len(commands))
        trades: list[SettledTrade] = []
        releases: list[BalanceChange] = []
        touched: dict[int, OrderState] = {}
        last_price = None

        batch = self.batches + 1
        start_seq = book.seq
        refreshes = 0
        for row in commands:
            command_kind = row[1]
            order_id = row[ORDER_AT]
            if command_kind == OrderCommand.Kind.CANCEL:
                events = book.cancel(order_id)
            elif command_kind == OrderCommand.Kind.AMEND:
                events = self._amend(self.live.get(order_id), row[2])
            else:  # place or place_list
                frozen_at = row[3]
                state = self.live.get(order_id) or OrderState(row[ORDER_AT:])
                if state.status != Order.Status.NEW:
                    continue  # already placed (cannot happen unless re-queued by hand)
                refusal = (
                    "account_frozen"
                    if frozen_at is not None
                    else "market_cancel_only"
                    if cancel_only
                    else None
                )
                legs = (
                    self._list_legs(state)
                    if command_kind == OrderCommand.Kind.PLACE_LIST
                    else [state]
                )
                oco = None
                if len(legs) == 2:
                    try:
                        oco = self._list_command(*legs)
                    except OffGrid:
                        refusal = refusal or "off_grid"  # accepted just before a grid change
                elif row[OUT_OF_RANGE_AT]:
                    refusal = refusal or "out_of_range"
                elif row[OFF_GRID_AT]:
                    refusal = refusal or "off_grid"
                if refusal:
                    # A frozen owner's orders are cancelled (the freeze's promise), even one
                    # that never reached the book; the market's refusals are rejections.
                    for leg in legs:
                        leg.status = (
                            Order.Status.CANCELLED
                            if refusal == "account_frozen"
                            else Order.Status.REJECTED
                        )
                        leg.reason = refusal
                        self._release_rest(leg, releases)
                        touched[leg.id] = leg
                    continue
                for leg in legs:
                    self.live[leg.id] = leg
                if oco is not None:
                    self.peers[legs[0].id], self.peers[legs[1].id] = legs[1].id, legs[0].id
                    events = book.apply(oco)
                else:
                    # The order's Place fields as PostgreSQL computed them (no Decimal work
                    # and no command object here: trading.matcher.commands.place_columns).
                    events = book.place(*row[PLACE_AT:OFF_GRID_AT])
            resting_state = None
            for event in events:
                kind = event[-1]
                if kind == engine.TRADE:
                    maker_id, taker_id, price_ticks, qty_lots, taker_side, _ = event
                    trade = self._fill(
                        self.live[maker_id],
                        self.live[taker_id],
                        price_ticks,
                        qty_lots,
                        taker_side,
                        now,
                        releases,
                        touched,
                    )
                    trades.append(trade)
                    last_price = trade.price
                elif kind == engine.LEVEL_CHANGED:
                    result.level_changes.append(event)
                    if resting_state is not None:
                        resting_state.rested_seq = event[3]
                        resting_state = None
                elif kind == engine.ORDER_RESTED:
                    state = self.live[event[0]]
                    state.status = event[4]
                    touched[state.id] = state
                    resting_state = state
                elif kind == engine.ORDER_DONE:
                    state = self.live.pop(event[0])
                    state.status = event[1]
                    state.reason = event[2] or ""
                    self._release_rest(state, releases)
                    touched[state.id] = state
                    if self.peers:
                        self._unpair(state.id)
                elif kind == engine.ORDER_REJECTED:
                    state = self.live.pop(event[0], None)
                    if state is not None:
                        state.status = Order.Status.REJECTED
                        state.reason = event[1]
                        self._release_rest(state, releases)
                        touched[state.id] = state
                        if self.peers:
                            self._unpair(state.id)
                elif kind == engine.STOP_ACCEPTED:
                    state = self.live[event[0]]
                    state.status = Order.Status.UNTRIGGERED
                    touched[state.id] = state
                elif kind == engine.ORDER_REFRESHED:
                    # Re-queued at the back of its level: after every order that rested at
                    # or before the book's seq now, in the order of the refreshes.
                    state = self.live[event[0]]
                    levels = result.level_changes
                    state.rested_seq = levels[-1][3] if levels else start_seq
                    refreshes += 1
                    state.rested_rank = (batch << _RANK_BITS) + refreshes
                    state.extra = True
                    touched[state.id] = state
                elif kind == engine.TRAILING_MOVED:
                    state = self.live[event[0]]
                    state.trailing_peak = self.scale.ticks_to_price(event[1])
                    state.extra = True
                    touched[state.id] = state
                elif kind == engine.ORDER_AMENDED:
                    self._amended(self.live[event[0]], event[1], releases)
                    touched[event[0]] = self.live[event[0]]
                elif kind == engine.STOP_TRIGGERED:
                    self._triggered(self.live[event[0]], releases, touched)
                # CancelRejected and AmendRejected: nothing changed.

        self._charge_fees(trades, touched)
        lists = {}
        for state in touched.values():
            if state.iceberg_quantity is not None and state.status in _RESTING:
                # What the book shows of it now, for a restore (fills, refreshes, amends).
                shown = book.order(state.id)
                lots = shown.visible_lots if shown.visible_lots is not None else shown.qty_lots
                state.iceberg_visible = self.scale.lots_to_qty(lots)
                state.extra = True
            if state.order_list_id is not None and state.status in Order.FINAL:
                lists[state.order_list_id] = state
        self._insert_trades(trades)
        result.candles = candles_apply_trades(market_id=self.market_id, trades=trades)
        update_rows(
            Order, ORDER_UPDATE_FIELDS, [state.update_row(now) for state in touched.values()]
        )
        extra = [state for state in touched.values() if state.extra]
        update_rows(Order, EXTRA_UPDATE_FIELDS, [state.extra_row() for state in extra])
        for state in extra:
            state.extra = False
        if lists:
            # Both legs of a list end in the same command (the engine's OCO rule).
            update_rows(
                OrderList,
                ["status", "updated_at"],
                [
                    (
                        list_id,
                        OrderList.Status.REJECTED
                        if leg.status == Order.Status.REJECTED
                        else OrderList.Status.ALL_DONE,
                        now,
                    )
                    for list_id, leg in lists.items()
                ],
            )
        self._market_update(book.seq, batch, now, last_price)
        self._mark_processed([command[0] for command in commands], now, batch)
        # Balances last: their row locks are held until the commit, and order entry waits
        # on them to reserve; taken earlier they were held across the writes above.
        result.balances = balance_changes_apply(
            changes=self._trade_changes(trades, batch) + releases, publish=False
        )
        self.batches = result.batch = batch
        result.trades = trades
        result.orders = list(touched.values())
        return result

    def _market_update(self, seq: int, batch: int, now, last_price) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                f'UPDATE "{Market._meta.db_table}" SET "seq" = %s, "batches" = %s, '
                '"updated_at" = %s, "last_price" = COALESCE(%s, "last_price") WHERE "id" = %s',
                [seq, batch, now, last_price, self.market_id],
            )

    def _mark_processed(self, command_ids: list[int], now, batch: int) -> None:
        # One array parameter rather than Django's IN (%s, ...) with a parameter per id:
        # a statement of constant shape that stays prepared, with no 2,000-item IN list.
        # Joined to unnest() rather than "id = ANY(array)": with stale statistics the
        # planner chose a sequential scan testing every row against the whole array (a
        # parameter, so not hashed), 0.5-1.7 s for a 2,000-command batch.
        with connection.cursor() as cursor:
            cursor.execute(
                f'UPDATE "{OrderCommand._meta.db_table}" AS c '
                'SET "processed_at" = %s, "batch" = %s '
                "FROM unnest(%s::text::bigint[]) AS v(id) WHERE c.id = v.id",
                [now, batch, array_literal(command_ids)],
            )

    def _insert_trades(self, trades: list[SettledTrade]) -> None:
        if not trades:
            return
        # Ids first, so the ledger entries can name their trade; then one COPY.
        for trade, trade_id in zip(
            trades, next_ids(Trade._meta.db_table, len(trades)), strict=True
        ):
            trade.id = trade_id
        copy_rows(Trade._meta.db_table, TRADE_COLUMNS, [trade.row() for trade in trades])

    # --- settlement -----------------------------------------------------------------------

    def _fill(self, maker, taker, price_ticks, qty_lots, taker_side, now, releases, touched):
        scale = self.scale
        price = scale.ticks_to_price(price_ticks)
        quantity = scale.lots_to_qty(qty_lots)
        quote = price * quantity
        buy, sell = (taker, maker) if taker_side == Order.Side.BUY else (maker, taker)
        # The fees are charged once the batch's trades are known (_charge_fees).
        for state, spent in ((buy, quote), (sell, quantity)):
            state.filled_quantity += quantity
            state.filled_quote += quote
            state.reserved -= spent
            # The engine reports a maker's partial fill only through the trade itself.
            if state.status == Order.Status.OPEN:
                state.status = Order.Status.PARTIALLY_FILLED
            touched[state.id] = state
        if buy.price is not None:
            # A buy that filled below its limit keeps only what its remainder needs.
            needed = buy.price * (buy.quantity - buy.filled_quantity)
            if buy.reserved > needed:
                self._release(buy, buy.reserved - needed, releases)
        return SettledTrade(
            id=None,
            market_id=self.market_id,
            price=price,
            quantity=quantity,
            quote_quantity=quote,
            buy_order_id=buy.id,
            sell_order_id=sell.id,
            buyer_id=buy.user_id,
            seller_id=sell.user_id,
            taker_side=taker_side,
            buyer_fee=ZERO,
            seller_fee=ZERO,
            created_at=now,
        )

    def _charge_fees(self, trades: list[SettledTrade], touched: dict[int, OrderState]) -> None:
        """Set each trade's two fees, at its owners' rates in this market (the account's tier
        or override, scaled by the market's own rates: ``trading.fee_selectors``), read in
        one query for the accounts that traded in the batch. Fees come out of what each
        side receives, rounded down to the stored precision."""
        if not trades:
            return
        own = fee_rates_for_users(
            user_ids=[user for trade in trades for user in (trade.buyer_id, trade.seller_id)]
        )
        rates = {
            user: account.in_market(self.maker_fee, self.taker_fee) for user, account in own.items()
        }
        for trade in trades:
            buyer_takes = trade.taker_side == Order.Side.BUY
            buyer_rate = rates[trade.buyer_id][1 if buyer_takes else 0]
            seller_rate = rates[trade.seller_id][0 if buyer_takes else 1]
            trade.buyer_fee = (trade.quantity * buyer_rate).quantize(
                AMOUNT_QUANTUM, rounding=ROUND_DOWN
            )
            trade.seller_fee = (trade.quote_quantity * seller_rate).quantize(
                AMOUNT_QUANTUM, rounding=ROUND_DOWN
            )
            touched[trade.buy_order_id].fee_total += trade.buyer_fee
            touched[trade.sell_order_id].fee_total += trade.seller_fee

    def _amend(self, state: OrderState | None, quantity: Decimal) -> list[tuple]:
        """Run an amend command: the new total ``quantity`` becomes the engine's new
        remaining lots. One the engine could not take, or that would take an iceberg (or
        its OCO peer) down to its shown part, changes nothing (order_amend refuses those
        up front; the order may have filled since)."""
        if state is None:
            return []  # not live: done, or never placed
        peer = self.live.get(self.peers.get(state.id))
        for order in (state, peer):
            iceberg = order.iceberg_quantity if order is not None else None
            if iceberg is not None and quantity <= iceberg:
                return []
        try:
            command = amend_command(self.scale, state, quantity)
        except OffGrid:
            return []
        return [] if command is None else self.book.apply(command)

    def _amended(self, state: OrderState, qty_lots: int, releases: list) -> None:
        """The engine reduced ``state``'s remaining to ``qty_lots``: store the new total and
        release what the order (or its OCO pair) no longer needs.

        A sell needs its remaining quantity; a buy with a limit price needs price ×
        remaining (for an OCO, the higher of its legs' prices). A buy that can run as a
        market order (stop-market, or an OCO with a stop-market leg) keeps its whole
        reserve: the engine caps it by the ``max_quote`` it was placed with, which an
        amend does not lower; the reserve is released when the order ends.
        """
        remaining = self.scale.lots_to_qty(qty_lots)
        state.quantity = state.filled_quantity + remaining
        state.extra = True
        if state.reserved <= ZERO:
            return  # an OCO leg whose peer holds the pair's reserve
        if state.side == Order.Side.SELL:
            needed = remaining
        else:
            legs = [state]
            peer = self.live.get(self.peers.get(state.id))
            if peer is not None:
                legs.append(peer)
            if any(leg.price is None for leg in legs):
                return
            needed = max(leg.price for leg in legs) * remaining
        if state.reserved > needed:
            self._release(state, state.reserved - needed, releases)

    def _triggered(self, state: OrderState, releases: list, touched: dict) -> None:
        """A stop triggered. An OCO's stop leg takes the pair's reserve from its limit leg
        (which the engine cancels next, releasing nothing); a stop-limit buy keeps only
        price × remaining of it."""
        peer = self.live.get(self.peers.get(state.id))
        if peer is None:
            return
        state.reserved += peer.reserved
        peer.reserved = ZERO
        touched[peer.id] = peer
        touched[state.id] = state
        self._unpair(state.id)  # the engine ends the limit leg next
        if state.side == Order.Side.BUY and state.price is not None:
            needed = state.price * (state.quantity - state.filled_quantity)
            if state.reserved > needed:
                self._release(state, state.reserved - needed, releases)

    def _unpair(self, order_id: int) -> None:
        """The OCO pairing of ``order_id`` is over (one leg ended or the stop triggered)."""
        peer = self.peers.pop(order_id, None)
        if peer is not None:
            self.peers.pop(peer, None)

    def _release(self, state: OrderState, amount: Decimal, releases: list) -> None:
        asset_id = self.quote_asset_id if state.side == Order.Side.BUY else self.base_asset_id
        releases.append(
            BalanceChange(
                state.user_id,
                asset_id,
                Kind.ORDER_RELEASE,
                "order",
                state.id,
                available=amount,
                locked=-amount,
            )
        )
        state.reserved -= amount

    def _release_rest(self, state: OrderState, releases: list) -> None:
        if state.reserved > ZERO:
            self._release(state, state.reserved, releases)

    def _trade_changes(self, trades: list[SettledTrade], batch: int) -> list[BalanceChange]:
        """Each trade's four transfers and the two fees it takes, as ledger lines.

        The fee account's side is one line per asset per batch (reference: the batch),
        not one per trade: it receives every fee of the batch, and each fee is still on
        its trade row and on the payer's own ledger line.
        """
        if not trades:
            return []
        base, quote = self.base_asset_id, self.quote_asset_id
        changes = []
        base_fees = quote_fees = ZERO
        for trade in trades:
            ref = {"reference_type": "trade", "reference_id": trade.pk}
            changes += [
                BalanceChange(
                    trade.buyer_id, quote, Kind.TRADE, locked=-trade.quote_quantity, **ref
                ),
                BalanceChange(trade.buyer_id, base, Kind.TRADE, available=trade.quantity, **ref),
                BalanceChange(trade.seller_id, base, Kind.TRADE, locked=-trade.quantity, **ref),
                BalanceChange(
                    trade.seller_id, quote, Kind.TRADE, available=trade.quote_quantity, **ref
                ),
            ]
            if trade.buyer_fee:
                changes.append(
                    BalanceChange(trade.buyer_id, base, Kind.FEE, available=-trade.buyer_fee, **ref)
                )
                base_fees += trade.buyer_fee
            if trade.seller_fee:
                changes.append(
                    BalanceChange(
                        trade.seller_id, quote, Kind.FEE, available=-trade.seller_fee, **ref
                    )
                )
                quote_fees += trade.seller_fee
        fee_account_id = self.fee_account_id
        memo = f"{self.symbol} fees of {len(trades)} trades"
        for asset_id, fees in ((base, base_fees), (quote, quote_fees)):
            if fees:
                changes.append(
                    BalanceChange(
                        fee_account_id, asset_id, Kind.FEE, "matcher_batch", batch, fees, ZERO, memo
                    )
                )
        return changes
