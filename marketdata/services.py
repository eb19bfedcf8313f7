"""Writes of market data: candles, kept from the trades (ARCHITECTURE §6).

The matcher calls ``candles_apply_trades`` inside its batch transaction, so candles commit
or roll back with the trades they count: a crash can neither lose a trade from them nor
count one twice. ``candles_rebuild`` recomputes them from the trades in SQL and must agree
with the incremental path row for row (``marketdata/tests`` checks it).
"""

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP

from django.db import connection, transaction

from marketdata.models import INTERVAL_SECONDS, Candle
from trading.models import Trade
from wallets.models import AMOUNT_QUANTUM

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INTERVALS = tuple(INTERVAL_SECONDS.items())
_TABLE = Candle._meta.db_table
_RETURNED = (
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
_COLUMNS = ("market_id", *_RETURNED)
_COLUMN_LIST = ", ".join(f'"{column}"' for column in _COLUMNS)
_RETURNED_LIST = ", ".join(f'"{column}"' for column in _RETURNED)
_CONFLICT = 'ON CONFLICT ("market_id", "interval", "open_time") DO UPDATE SET '

# One statement whatever the batch, its text constant so it is prepared once.
# Rows are aggregated before, so no key appears twice (ON CONFLICT would refuse that).
_UPSERT = (
    f'INSERT INTO "{_TABLE}" AS c ({_COLUMN_LIST}) '
    "SELECT %s, v.* FROM unnest(%s::varchar[], %s::timestamptz[], %s::numeric[], "
    "%s::numeric[], %s::numeric[], %s::numeric[], %s::numeric[], %s::numeric[], "
    "%s::integer[]) AS v "
    f"{_CONFLICT}"
    '"high" = GREATEST(c."high", EXCLUDED."high"), '
    '"low" = LEAST(c."low", EXCLUDED."low"), '
    '"close" = EXCLUDED."close", '
    '"volume" = c."volume" + EXCLUDED."volume", '
    '"quote_volume" = c."quote_volume" + EXCLUDED."quote_volume", '
    '"trade_count" = c."trade_count" + EXCLUDED."trade_count" '
    f"RETURNING {_RETURNED_LIST}"
)


def epoch_seconds(moment: datetime) -> int:
    """Whole seconds since the Unix epoch, in integers (a float timestamp can round up)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - EPOCH
    return delta.days * 86_400 + delta.seconds


def bucket_start(moment: datetime, interval: str) -> datetime:
    """The start of the ``interval`` bucket holding ``moment`` (see ``Candle``)."""
    seconds = INTERVAL_SECONDS[interval]
    second = epoch_seconds(moment)
    return EPOCH + timedelta(seconds=second - second % seconds)


def _stored(amount):
    # What a numeric(36, 18) column keeps of a longer product: PostgreSQL rounds half away
    # from zero. Summing the stored values keeps this path equal to the SQL rebuild.
    return amount.quantize(AMOUNT_QUANTUM, rounding=ROUND_HALF_UP)


def candles_aggregate(trades: Iterable[Trade]) -> dict[tuple[str, int], list]:
    """The trades' candles, per (interval, bucket start in epoch seconds), as
    ``[open, high, low, close, volume, quote_volume, trade_count]``.

    ``trades`` must come in id order (the matcher's order), so the first trade of a
    bucket gives its open and the last its close.
    """
    candles: dict[tuple[str, int], list] = {}
    created_at = keys = None
    for trade in trades:
        if trade.created_at != created_at:
            # A batch's trades share one time: the bucket keys are computed once.
            created_at = trade.created_at
            second = epoch_seconds(created_at)
            keys = [(name, second - second % seconds) for name, seconds in _INTERVALS]
        price = trade.price
        quantity = _stored(trade.quantity)
        quote = _stored(trade.quote_quantity)
        for key in keys:
            candle = candles.get(key)
            if candle is None:
                candles[key] = [price, price, price, price, quantity, quote, 1]
                continue
            if price > candle[1]:
                candle[1] = price
            elif price < candle[2]:
                candle[2] = price
            candle[3] = price
            candle[4] += quantity
            candle[5] += quote
            candle[6] += 1
    return candles


@transaction.atomic(savepoint=False)
def candles_apply_trades(*, market_id: int, trades: list[Trade]) -> list[Candle]:
    """Add a matcher batch's trades to the market's candles of every interval.

    Called by the matcher inside its batch transaction (no savepoint of its own: it
    commits or rolls back with the trades). ``trades`` are the batch's trades in id order
    with ``price``, ``quantity``, ``quote_quantity`` and ``created_at`` set. One upsert
    statement per batch: a bucket's ``high``/``low`` widen, ``close`` becomes the batch's
    last price in it, volumes and the trade count add up. It takes the row locks of the
    candles it touches, after the trades' inserts; nothing else writes candles except
    ``candles_rebuild``, which locks the table first.

    Returns the touched candles as they are after the batch (unsaved copies), for
    publishing after commit.
    """
    if not trades:
        return []
    candles = candles_aggregate(trades)
    columns: list[list] = [[] for _ in range(9)]
    for (interval, start), values in candles.items():
        columns[0].append(interval)
        columns[1].append(EPOCH + timedelta(seconds=start))
        for column, value in zip(columns[2:], values, strict=True):
            column.append(value)
    with connection.cursor() as cursor:
        cursor.execute(_UPSERT, [market_id, *columns])
        rows = cursor.fetchall()
    return [Candle(market_id=market_id, **dict(zip(_RETURNED, row, strict=True))) for row in rows]


# --- rebuilding from the trades ------------------------------------------------------------

# extract(epoch) is numeric on PostgreSQL 14+: exact, microseconds included.
_BUCKET_SQL = "(floor(extract(epoch FROM created_at) / %s) * %s)::bigint"
_REBUILD_SQL = (
    f'INSERT INTO "{_TABLE}" ({_COLUMN_LIST}) '
    "SELECT market_id, %s, to_timestamp(bucket), MIN(first_price), MAX(price), MIN(price), "
    "MIN(last_price), SUM(quantity), SUM(quote_quantity), COUNT(*) "
    "FROM ("
    "  SELECT market_id, bucket, price, quantity, quote_quantity,"
    "    FIRST_VALUE(price) OVER (PARTITION BY market_id, bucket ORDER BY id) AS first_price,"
    "    FIRST_VALUE(price) OVER (PARTITION BY market_id, bucket ORDER BY id DESC) AS last_price"
    f"  FROM (SELECT market_id, {_BUCKET_SQL} AS bucket, id, price, quantity, quote_quantity"
    f'    FROM "{Trade._meta.db_table}" {{where}}) AS t'
    ") AS w "
    "GROUP BY market_id, bucket"
)


@transaction.atomic
def candles_rebuild(*, market_ids: list[int] | None = None, intervals: list[str] | None = None):
    """Recompute candles from the trades: delete them, then aggregate the trades in SQL.

    ``market_ids`` and ``intervals`` narrow it (default: all). Returns the number of
    candles written. Produces exactly what ``candles_apply_trades`` built incrementally.

    Lock: the candle table in SHARE ROW EXCLUSIVE mode before reading any
    trade. A running matcher's batch that already touched candles has committed by then;
    one that has not waits at its upsert until this commits, and then adds its trades,
    which this did not see, on top. So the matcher can keep running.
    """
    intervals = list(intervals or INTERVAL_SECONDS)
    if market_ids is not None and not market_ids:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(f'LOCK TABLE "{_TABLE}" IN SHARE ROW EXCLUSIVE MODE')
        stale = Candle.objects.filter(interval__in=intervals)
        where, where_params = "", []
        if market_ids is not None:
            stale = stale.filter(market_id__in=market_ids)
            where = "WHERE market_id IN (" + ", ".join(["%s"] * len(market_ids)) + ")"
            where_params = list(market_ids)
        stale.delete()
        written = 0
        for interval in intervals:
            seconds = INTERVAL_SECONDS[interval]
            cursor.execute(
                _REBUILD_SQL.format(where=where),
                [interval, seconds, seconds, *where_params],
            )
            written += cursor.rowcount
    return written
