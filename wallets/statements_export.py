"""Account statements: one user's own ledger, trades, orders, deposits or withdrawals over a
date range, as CSV or JSON, streamed in constant memory whatever the number of rows.

Reads only (a selector module). ``statement_export`` checks the request and returns a
``StatementExport`` whose ``chunks()`` the caller streams (``wallets.statement_views``).

How it stays constant in memory: rows come from a PostgreSQL server-side cursor
(``DECLARE ... CURSOR``) fetched ``FETCH_ROWS`` at a time, as tuples of plain columns (no
model instances, no joins: asset and market names come from one small lookup each), and
the output leaves in chunks of about ``FLUSH_BYTES``. The cursor is declared inside a
transaction of its own, WITHOUT HOLD. Django's ``QuerySet.iterator()`` outside a transaction
declares it WITH HOLD instead, and PostgreSQL materialises a holdable cursor's whole result
when the declaring (autocommit) transaction ends, before the first row is sent
(https://www.postgresql.org/docs/current/sql-declare.html); with
``DISABLE_SERVER_SIDE_CURSORS`` it fetches every row into the client. Using psycopg's named
cursor directly avoids both, and a transaction also keeps the cursor usable behind a
transaction-pooling PgBouncer.

Decimals are exact strings with at least their asset's places (``decimal_to_str``, which pads
and never rounds), timestamps ISO-8601 in UTC with ``Z`` (as the REST API writes them).
"""

import csv
import io
import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db import connections, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from accounts.models import User
from exchange_site.db_router import replica_for_stream
from exchange_site.decimals import decimal_places, decimal_to_str
from exchange_site.exceptions import ExchangeError
from exchange_site.heartbeat import heartbeat
from trading.models import Market, Order, Trade
from wallets.models import Asset, Deposit, LedgerEntry, Withdrawal

FORMATS = ("csv", "json")
DEFAULT_DAYS = 30
MAX_DAYS = 3660
# Rows per round trip from the server-side cursor, and output bytes per chunk sent.
FETCH_ROWS = 2000
FLUSH_BYTES = 64 * 1024
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


class StatementRequestInvalid(ExchangeError):
    """A bad kind, format or date range; ``details`` maps the field to its messages, as a
    DRF validation error does."""

    code = "VALIDATION_ERROR"
    status = 400
    message = "The request has invalid fields; see details."


def _invalid(field: str, message: str) -> StatementRequestInvalid:
    return StatementRequestInvalid(details={field: [message]})


# --- Date range ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StatementRange:
    """``start`` inclusive, ``end`` exclusive, both aware datetimes in UTC."""

    start: datetime
    end: datetime


def _parse_moment(field: str, text: str) -> datetime:
    """A date (midnight UTC) or an ISO-8601 datetime (UTC unless it names an offset)."""
    text = text.strip()
    try:
        moment = parse_datetime(text) if ("T" in text or " " in text) else None
        if moment is None:
            day = parse_date(text)
            if day is None:
                raise ValueError
            return datetime.combine(day, time.min, tzinfo=UTC)
    except ValueError:
        # parse_* return None for the wrong shape and raise for impossible values (Feb 30).
        raise _invalid(
            field, "Use a date (2026-11-01) or an ISO-8601 datetime (2026-11-01T12:00:00Z)."
        ) from None
    if timezone.is_naive(moment):
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise _invalid(field, "Out of range.") from None


def statement_range_parse(
    *, start: str | None, end: str | None, today: date | None = None
) -> StatementRange:
    """The range a request asks for. Empty ``end`` is the end of today (UTC), empty ``start``
    ``DEFAULT_DAYS`` before ``end``. Raises ``StatementRequestInvalid`` (400) for a value
    that does not parse, ``start >= end`` or a range over ``MAX_DAYS`` days."""
    try:
        if end:
            end_at = _parse_moment("end", end)
        else:
            today = today or timezone.now().astimezone(UTC).date()
            end_at = datetime.combine(today + timedelta(days=1), time.min, tzinfo=UTC)
        start_at = _parse_moment("start", start) if start else end_at - timedelta(days=DEFAULT_DAYS)
    except OverflowError:
        raise _invalid("start", "Out of range.") from None
    if start_at >= end_at:
        raise _invalid("end", "Must be after start.")
    if end_at - start_at > timedelta(days=MAX_DAYS):
        raise _invalid("end", f"A statement covers at most {MAX_DAYS} days.")
    return StatementRange(start=start_at, end=end_at)


# --- Cells --------------------------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _amount(value: Decimal | None, places: int) -> str | None:
    return None if value is None else decimal_to_str(value, places)


class _Lookup(dict):
    """A small table in memory, loaded again when asked for a key it lacks: an asset or market
    added while a statement was being read (none is ever deleted)."""

    def __init__(self, load: Callable[[], dict]):
        super().__init__(load())
        self._load = load

    def __missing__(self, key):
        self.update(self._load())
        if key not in self:
            raise KeyError(key)
        return self.get(key)


def _assets() -> dict[int, tuple[str, int]]:
    """asset id → (code, precision); the exchange lists a handful of assets."""
    return {
        pk: (code, precision)
        for pk, code, precision in Asset.objects.values_list("pk", "code", "precision")
    }


def _asset_lookup() -> _Lookup:
    return _Lookup(_assets)


@dataclass(frozen=True)
class _MarketInfo:
    symbol: str
    base: str
    quote: str
    tick_size: Decimal
    price_places: int
    qty_places: int
    base_precision: int
    quote_precision: int


def _markets() -> dict[int, _MarketInfo]:
    assets = _assets()
    markets = {}
    for market in Market.objects.all():
        base, base_precision = assets[market.base_asset_id]
        quote, quote_precision = assets[market.quote_asset_id]
        markets[market.pk] = _MarketInfo(
            symbol=market.symbol,
            base=base,
            quote=quote,
            tick_size=market.tick_size,
            # The same minimum places as the REST API's orders and trades.
            price_places=decimal_places(market.tick_size),
            qty_places=decimal_places(market.lot_size),
            base_precision=base_precision,
            quote_precision=quote_precision,
        )
    return markets


def _market_lookup() -> _Lookup:
    return _Lookup(_markets)


# --- Rows per kind ------------------------------------------------------------------------


@dataclass(frozen=True)
class StatementKind:
    """What one kind of statement holds: its columns, the query (``fields`` of ``queryset``
    in that order) and how a fetched tuple becomes output rows (one or more)."""

    columns: tuple[str, ...]
    queryset: Callable[[User, StatementRange], QuerySet]
    fields: tuple[str, ...]
    # Builds the row formatter once per export (it closes over the lookups it needs).
    formatter: Callable[[User], Callable[[tuple], Iterator[tuple]]]
    # Free-text columns: a CSV cell starting with = + - @ is a spreadsheet formula.
    text_columns: tuple[str, ...] = ()
    bool_columns: tuple[str, ...] = ()


def _in_range(queryset: QuerySet, period: StatementRange) -> QuerySet:
    return queryset.filter(created_at__gte=period.start, created_at__lt=period.end).order_by("id")


def _ledger_formatter(user):
    assets = _asset_lookup()

    def rows(values):
        pk, created_at, asset_id, kind, available, locked, ref_type, ref_id, memo = values
        code, places = assets[asset_id]
        yield (
            pk,
            _iso(created_at),
            code,
            kind,
            decimal_to_str(available, places),
            decimal_to_str(locked, places),
            ref_type,
            ref_id,
            memo,
        )

    return rows


LEDGER = StatementKind(
    columns=(
        "id",
        "created_at",
        "asset",
        "kind",
        "available_delta",
        "locked_delta",
        "reference_type",
        "reference_id",
        "memo",
    ),
    queryset=lambda user, period: _in_range(LedgerEntry.objects.filter(user=user), period),
    fields=(
        "id",
        "created_at",
        "asset_id",
        "kind",
        "available_delta",
        "locked_delta",
        "reference_type",
        "reference_id",
        "memo",
    ),
    formatter=_ledger_formatter,
    text_columns=("memo",),
)


def _trade_formatter(user):
    markets = _market_lookup()
    user_id = user.pk

    def rows(values):
        (
            pk,
            created_at,
            market_id,
            buyer_id,
            seller_id,
            buy_order_id,
            sell_order_id,
            taker_side,
            price,
            quantity,
            quote_quantity,
            buyer_fee,
            seller_fee,
        ) = values
        market = markets[market_id]
        common = (
            decimal_to_str(price, market.price_places),
            decimal_to_str(quantity, market.qty_places),
            decimal_to_str(quote_quantity, market.quote_precision),
        )
        # Self-trades are prevented by the engine; were one recorded, each side is a row.
        if buyer_id == user_id:
            yield (
                pk,
                _iso(created_at),
                market.symbol,
                buy_order_id,
                Order.Side.BUY.value,
                "taker" if taker_side == Order.Side.BUY else "maker",
                *common,
                decimal_to_str(buyer_fee, market.base_precision),
                market.base,
            )
        if seller_id == user_id:
            yield (
                pk,
                _iso(created_at),
                market.symbol,
                sell_order_id,
                Order.Side.SELL.value,
                "taker" if taker_side == Order.Side.SELL else "maker",
                *common,
                decimal_to_str(seller_fee, market.quote_precision),
                market.quote,
            )

    return rows


TRADES = StatementKind(
    columns=(
        "id",
        "created_at",
        "symbol",
        "order_id",
        "side",
        "role",
        "price",
        "quantity",
        "quote_quantity",
        "fee",
        "fee_asset",
    ),
    # Two indexes, (buyer, -id) and (seller, -id), serve the OR as a BitmapOr.
    queryset=lambda user, period: _in_range(
        Trade.objects.filter(Q(buyer=user) | Q(seller=user)), period
    ),
    fields=(
        "id",
        "created_at",
        "market_id",
        "buyer_id",
        "seller_id",
        "buy_order_id",
        "sell_order_id",
        "taker_side",
        "price",
        "quantity",
        "quote_quantity",
        "buyer_fee",
        "seller_fee",
    ),
    formatter=_trade_formatter,
)


def _order_formatter(user):
    markets = _market_lookup()

    def rows(values):
        (
            pk,
            client_order_id,
            created_at,
            updated_at,
            market_id,
            side,
            order_type,
            time_in_force,
            post_only,
            status,
            reason,
            price,
            stop_price,
            quantity,
            quote_quantity,
            filled_quantity,
            filled_quote,
            fee_total,
        ) = values
        market = markets[market_id]
        average = None
        if filled_quantity:
            average = decimal_to_str(
                (filled_quote / filled_quantity).quantize(market.tick_size), market.price_places
            )
        yield (
            pk,
            client_order_id,
            _iso(created_at),
            _iso(updated_at),
            market.symbol,
            side,
            order_type,
            time_in_force,
            post_only,
            status,
            reason,
            _amount(price, market.price_places),
            _amount(stop_price, market.price_places),
            _amount(quantity, market.qty_places),
            _amount(quote_quantity, market.quote_precision),
            decimal_to_str(filled_quantity, market.qty_places),
            decimal_to_str(filled_quote, market.quote_precision),
            average,
            # An order's fee is paid in what it receives: base for a buy, quote for a sell.
            decimal_to_str(
                fee_total,
                market.base_precision if side == Order.Side.BUY else market.quote_precision,
            ),
            market.base if side == Order.Side.BUY else market.quote,
        )

    return rows


ORDERS = StatementKind(
    columns=(
        "id",
        "client_order_id",
        "created_at",
        "updated_at",
        "symbol",
        "side",
        "order_type",
        "time_in_force",
        "post_only",
        "status",
        "reason",
        "price",
        "stop_price",
        "quantity",
        "quote_quantity",
        "filled_quantity",
        "filled_quote",
        "average_price",
        "fee",
        "fee_asset",
    ),
    queryset=lambda user, period: _in_range(Order.objects.filter(user=user), period),
    fields=(
        "id",
        "client_order_id",
        "created_at",
        "updated_at",
        "market_id",
        "side",
        "order_type",
        "time_in_force",
        "post_only",
        "status",
        "reason",
        "price",
        "stop_price",
        "quantity",
        "quote_quantity",
        "filled_quantity",
        "filled_quote",
        "fee_total",
    ),
    formatter=_order_formatter,
    text_columns=("client_order_id",),
    bool_columns=("post_only",),
)


def _deposit_formatter(user):
    assets = _asset_lookup()

    def rows(values):
        pk, created_at, confirmed_at, asset_id, amount, status, confs, required, tx_id, addr = (
            values
        )
        code, places = assets[asset_id]
        yield (
            pk,
            _iso(created_at),
            _iso(confirmed_at),
            code,
            decimal_to_str(amount, places),
            status,
            confs,
            required,
            tx_id,
            addr,
        )

    return rows


DEPOSITS = StatementKind(
    columns=(
        "id",
        "created_at",
        "confirmed_at",
        "asset",
        "amount",
        "status",
        "confirmations",
        "confirmations_required",
        "tx_id",
        "address",
    ),
    queryset=lambda user, period: _in_range(Deposit.objects.filter(user=user), period),
    fields=(
        "id",
        "created_at",
        "confirmed_at",
        "asset_id",
        "amount",
        "status",
        "confirmations",
        "confirmations_required",
        "tx_id",
        "address",
    ),
    formatter=_deposit_formatter,
    text_columns=("tx_id", "address"),
)


def _withdrawal_formatter(user):
    assets = _asset_lookup()

    def rows(values):
        pk, created_at, reviewed_at, completed_at, asset_id, amount, fee, status = values[:8]
        address, tx_id, review_note = values[8:]
        code, places = assets[asset_id]
        yield (
            pk,
            _iso(created_at),
            _iso(reviewed_at),
            _iso(completed_at),
            code,
            decimal_to_str(amount, places),
            decimal_to_str(fee, places),
            decimal_to_str(amount + fee, places),
            status,
            address,
            tx_id,
            review_note,
        )

    return rows


WITHDRAWALS = StatementKind(
    columns=(
        "id",
        "created_at",
        "reviewed_at",
        "completed_at",
        "asset",
        "amount",
        "fee",
        "total",
        "status",
        "address",
        "tx_id",
        "review_note",
    ),
    queryset=lambda user, period: _in_range(Withdrawal.objects.filter(user=user), period),
    fields=(
        "id",
        "created_at",
        "reviewed_at",
        "completed_at",
        "asset_id",
        "amount",
        "fee",
        "status",
        "address",
        "tx_id",
        "review_note",
    ),
    formatter=_withdrawal_formatter,
    text_columns=("address", "tx_id", "review_note"),
)

KINDS: dict[str, StatementKind] = {
    "ledger": LEDGER,
    "trades": TRADES,
    "orders": ORDERS,
    "deposits": DEPOSITS,
    "withdrawals": WITHDRAWALS,
}


# --- Streaming ----------------------------------------------------------------------------

_cursor_names = itertools.count(1)


def _server_side_rows(queryset: QuerySet, fields: tuple[str, ...]) -> Iterator[tuple]:
    """The queryset's ``fields`` as tuples, ``FETCH_ROWS`` per round trip from a cursor
    declared WITHOUT HOLD in a transaction of its own (see the module docstring).

    A generator: the transaction stays open while the caller consumes it and ends (rolled
    back; it wrote nothing) when it is exhausted or closed, as a WSGI server closes the
    response when the client goes away.
    """
    sql, params = queryset.values_list(*fields).query.sql_with_params()
    connection = connections[queryset.db]
    with transaction.atomic(using=queryset.db):
        connection.ensure_connection()
        # Django's values_list needs no converters for these columns on PostgreSQL: psycopg
        # returns Decimal for numeric and aware datetimes (in the session's UTC) itself.
        name = f"statement_{next(_cursor_names)}"
        with connection.connection.cursor(name=name, withhold=False) as cursor:
            cursor.itersize = FETCH_ROWS
            cursor.execute(sql, params)
            yield from cursor


@dataclass(frozen=True)
class StatementExport:
    """One checked statement request; ``chunks()`` produces its body (bytes)."""

    user: User
    kind: str
    fmt: str
    period: StatementRange

    @property
    def spec(self) -> StatementKind:
        return KINDS[self.kind]

    @property
    def filename(self) -> str:
        """``statement-ledger-2026-11-01-2026-12-01.csv`` (times only when not midnight)."""

        def label(moment: datetime) -> str:
            if moment.time() == time.min:
                return moment.date().isoformat()
            return moment.strftime("%Y-%m-%dT%H%M%SZ")

        return (
            f"statement-{self.kind}-{label(self.period.start)}-{label(self.period.end)}.{self.fmt}"
        )

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.fmt]

    def rows(self) -> Iterator[tuple]:
        """Output rows (cells as str, int, bool or None), oldest first. Read from a replica
        when one is fit and the user changed nothing within the read-your-writes window
        (``exchange_site.db_router``)."""
        spec = self.spec
        to_rows = spec.formatter(self.user)
        queryset = spec.queryset(self.user, self.period).using(replica_for_stream(user=self.user))
        for values in _server_side_rows(queryset, spec.fields):
            yield from to_rows(values)

    def chunks(self) -> Iterator[bytes]:
        return self._csv_chunks() if self.fmt == "csv" else self._json_chunks()

    def _csv_chunks(self) -> Iterator[bytes]:
        spec = self.spec
        text_at = [spec.columns.index(name) for name in spec.text_columns]
        bool_at = [spec.columns.index(name) for name in spec.bool_columns]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(spec.columns)
        # The header goes at once: the client sees the download start before the query ends.
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
        for row in self.rows():
            if text_at or bool_at:
                row = list(row)
                for i in text_at:
                    row[i] = _csv_text(row[i])
                for i in bool_at:
                    row[i] = "true" if row[i] else "false"
            writer.writerow(row)
            if buffer.tell() >= FLUSH_BYTES:
                heartbeat()
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
        if buffer.tell():
            yield buffer.getvalue().encode()

    def _json_chunks(self) -> Iterator[bytes]:
        columns = self.spec.columns
        head = {
            "kind": self.kind,
            "start": _iso(self.period.start),
            "end": _iso(self.period.end),
            "columns": list(columns),
        }
        # '{"kind": ..., "columns": [...], "rows": [' then each row, then ']}'.
        yield (json.dumps(head)[:-1] + ', "rows": [').encode()
        parts: list[str] = []
        size = 0
        separator = ""
        for row in self.rows():
            text = separator + json.dumps(dict(zip(columns, row, strict=True)))
            separator = ", "
            parts.append(text)
            size += len(text)
            if size >= FLUSH_BYTES:
                heartbeat()
                yield "".join(parts).encode()
                parts.clear()
                size = 0
        parts.append("]}\n")
        yield "".join(parts).encode()


def _csv_text(value: Any) -> Any:
    """Free text a spreadsheet would run as a formula gets a leading apostrophe (OWASP's
    CSV injection advice); everything else is left exactly as stored."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def statement_export(
    *, user: User, kind: str, fmt: str, start: str | None = None, end: str | None = None
) -> StatementExport:
    """Check a statement request of ``user``'s own rows of ``kind`` (``KINDS``) in ``fmt``
    (``csv`` or ``json``) over [start, end) (see ``statement_range_parse``). Runs no query:
    the rows are read when the export's ``chunks()`` are consumed. Raises
    ``StatementRequestInvalid`` (400)."""
    if kind not in KINDS:
        raise _invalid("kind", f"One of: {', '.join(KINDS)}.")
    if fmt not in FORMATS:
        raise _invalid("format", f"One of: {', '.join(FORMATS)}.")
    period = statement_range_parse(start=start, end=end)
    return StatementExport(user=user, kind=kind, fmt=fmt, period=period)
