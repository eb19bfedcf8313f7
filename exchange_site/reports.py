"""The operators' reports (reads only): fee revenue, traded volume, and deposits and
withdrawals per day; the exchange's liabilities against its holdings on the simulated chain;
and the hourly series of the dashboard's last-24-hours charts.

Every figure is aggregated by PostgreSQL (``TruncDate``/``TruncHour`` in UTC, ``Sum``,
``Count``): one grouped query per table, never a Python loop over rows. Days and hours are
UTC, like every timestamp the exchange shows.

The reports over past days and hours read from a replica when one is fit
(``exchange_site.db_router``): seconds of staleness change no figure an operator acts on.
The liabilities stay on the primary: they are the check an operator makes right after an
adjustment, and must show it.
"""

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncDate, TruncHour
from django.utils import timezone

from exchange_site.db_router import replica_safe
from trading.models import Trade
from wallets.models import ZERO, Asset, Balance, Deposit, LedgerEntry, LedgerKind, Withdrawal
from wallets.selectors import fee_account_get

UTC = datetime.UTC
DEFAULT_DAYS = 30
MAX_DAYS = 366


# --- The reporting period -----------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Whole UTC days, ``start`` to ``end`` inclusive."""

    start: datetime.date
    end: datetime.date

    @property
    def since(self) -> datetime.datetime:
        return datetime.datetime.combine(self.start, datetime.time(), tzinfo=UTC)

    @property
    def until(self) -> datetime.datetime:
        """The first instant after the period (exclusive upper bound)."""
        return datetime.datetime.combine(self.end, datetime.time(), tzinfo=UTC) + (
            datetime.timedelta(days=1)
        )

    @property
    def days(self) -> list[datetime.date]:
        count = (self.end - self.start).days + 1
        return [self.start + datetime.timedelta(days=n) for n in range(count)]


def _date_param(params: Mapping[str, str], name: str, errors: dict) -> datetime.date | None:
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    try:
        # fromisoformat alone would accept "20240501" and week dates; ask for YYYY-MM-DD.
        if len(raw) != 10:
            raise ValueError
        return datetime.date.fromisoformat(raw)
    except ValueError:
        errors[name] = [f"Give a date as YYYY-MM-DD, not {raw[:40]!r}."]
        return None


def report_period_parse(params: Mapping[str, str], *, today: datetime.date | None = None) -> Period:
    """The period of ``?start=YYYY-MM-DD&end=YYYY-MM-DD``: by default the last 30 UTC days
    up to today; either bound alone keeps a 30-day span. Raises Django's ``ValidationError``
    (per field) for a malformed date, an end before the start, an end in the future, or a
    span longer than 366 days."""
    today = today or timezone.now().astimezone(UTC).date()
    errors: dict[str, list[str]] = {}
    start = _date_param(params, "start", errors)
    end = _date_param(params, "end", errors)
    if errors:
        raise ValidationError(errors)
    span = datetime.timedelta(days=DEFAULT_DAYS - 1)
    if end is None:
        end = min(start + span, today) if start else today
    if start is None:
        start = end - span
    if end > today:
        raise ValidationError({"end": [f"The end date is after today ({today.isoformat()})."]})
    if end < start:
        raise ValidationError({"end": ["The end date is before the start date."]})
    if (end - start).days + 1 > MAX_DAYS:
        raise ValidationError({"start": [f"A report covers at most {MAX_DAYS} days."]})
    return Period(start=start, end=end)


# --- Fee revenue --------------------------------------------------------------------------


@dataclass(frozen=True)
class FeeRow:
    day: datetime.date
    asset: str
    trading: Decimal
    withdrawal: Decimal

    @property
    def total(self) -> Decimal:
        return self.trading + self.withdrawal


@replica_safe
def fee_revenue_by_day(*, period: Period) -> list[FeeRow]:
    """What the fee account received per UTC day and asset: trading fees (ledger kind
    ``fee``) and withdrawal fees (``withdrawal_fee``) apart.

    Computed from the fee account's own ledger lines, not from ``Trade.buyer_fee`` and
    ``seller_fee``: the ledger is what the fee account's balance is made of (invariant 2),
    so the report's totals are exactly what the exchange earned; it also holds the withdrawal
    fees, which no trade carries. The matcher credits a batch's fees as one line per asset,
    dated when the batch committed, within milliseconds of its trades' own times.
    """
    amount = F("available_delta") + F("locked_delta")
    rows = (
        LedgerEntry.objects.filter(
            user=fee_account_get(),
            kind__in=[LedgerKind.FEE, LedgerKind.WITHDRAWAL_FEE],
            created_at__gte=period.since,
            created_at__lt=period.until,
        )
        .annotate(day=TruncDate("created_at", tzinfo=UTC))
        .values("day", "asset__code")
        .annotate(
            trading=Sum(amount, filter=Q(kind=LedgerKind.FEE), default=ZERO),
            withdrawal=Sum(amount, filter=Q(kind=LedgerKind.WITHDRAWAL_FEE), default=ZERO),
        )
        .order_by("day", "asset__code")
    )
    return [
        FeeRow(
            day=row["day"],
            asset=row["asset__code"],
            trading=row["trading"],
            withdrawal=row["withdrawal"],
        )
        for row in rows
    ]


# --- Traded volume ------------------------------------------------------------------------


@dataclass(frozen=True)
class VolumeRow:
    day: datetime.date
    market: str
    base: str
    quote: str
    trades: int
    volume: Decimal  # base asset
    quote_volume: Decimal  # quote asset
    buyer_fees: Decimal  # base asset
    seller_fees: Decimal  # quote asset


@replica_safe
def volume_by_day(*, period: Period) -> list[VolumeRow]:
    """Trades, base and quote volume and the fees they carried, per UTC day and market."""
    rows = (
        Trade.objects.filter(created_at__gte=period.since, created_at__lt=period.until)
        .annotate(day=TruncDate("created_at", tzinfo=UTC))
        .values("day", "market__symbol", "market__base_asset__code", "market__quote_asset__code")
        .annotate(
            trades=Count("id"),
            volume=Sum("quantity"),
            quote_volume=Sum("quote_quantity"),
            buyer_fees=Sum("buyer_fee"),
            seller_fees=Sum("seller_fee"),
        )
        .order_by("day", "market__symbol")
    )
    return [
        VolumeRow(
            day=row["day"],
            market=row["market__symbol"],
            base=row["market__base_asset__code"],
            quote=row["market__quote_asset__code"],
            trades=row["trades"],
            volume=row["volume"],
            quote_volume=row["quote_volume"],
            buyer_fees=row["buyer_fees"],
            seller_fees=row["seller_fees"],
        )
        for row in rows
    ]


# --- Deposits and withdrawals -------------------------------------------------------------


@dataclass(frozen=True)
class FlowRow:
    day: datetime.date
    asset: str
    deposits: int
    deposited: Decimal
    withdrawals: int
    withdrawn: Decimal  # sent out on the chain
    withdrawal_fees: Decimal  # kept by the exchange

    @property
    def net(self) -> Decimal:
        """What the chain holdings changed by: deposited minus sent out."""
        return self.deposited - self.withdrawn


@replica_safe
def flows_by_day(*, period: Period) -> list[FlowRow]:
    """Confirmed deposits (by the day they were credited) and completed withdrawals (by the
    day they completed), per UTC day and asset. Deposits still pending and withdrawals not
    yet completed moved nothing on the chain and are left out."""
    deposits = (
        Deposit.objects.filter(
            status=Deposit.Status.CONFIRMED,
            confirmed_at__gte=period.since,
            confirmed_at__lt=period.until,
        )
        .annotate(day=TruncDate("confirmed_at", tzinfo=UTC))
        .values("day", "asset__code")
        .annotate(count=Count("id"), amount=Sum("amount"))
        .order_by()
    )
    withdrawals = (
        Withdrawal.objects.filter(
            status=Withdrawal.Status.COMPLETED,
            completed_at__gte=period.since,
            completed_at__lt=period.until,
        )
        .annotate(day=TruncDate("completed_at", tzinfo=UTC))
        .values("day", "asset__code")
        .annotate(count=Count("id"), amount=Sum("amount"), fees=Sum("fee"))
        .order_by()
    )
    into = {(row["day"], row["asset__code"]): row for row in deposits}
    out = {(row["day"], row["asset__code"]): row for row in withdrawals}
    result = []
    for day, asset in sorted(into.keys() | out.keys()):
        deposit = into.get((day, asset), {})
        withdrawal = out.get((day, asset), {})
        result.append(
            FlowRow(
                day=day,
                asset=asset,
                deposits=deposit.get("count", 0),
                deposited=deposit.get("amount", ZERO),
                withdrawals=withdrawal.get("count", 0),
                withdrawn=withdrawal.get("amount", ZERO),
                withdrawal_fees=withdrawal.get("fees", ZERO),
            )
        )
    return result


# --- Liabilities against holdings ---------------------------------------------------------


@dataclass(frozen=True)
class LiabilityRow:
    asset: str
    holdings: Decimal
    liabilities: Decimal
    own: Decimal

    @property
    def difference(self) -> Decimal:
        """Holdings not accounted for: zero unless balances were made or destroyed without
        a chain movement (an operator's adjustment, or a bug)."""
        return self.holdings - self.liabilities - self.own

    @property
    def coverage(self) -> Decimal | None:
        """Holdings per unit owed to users (1 = fully covered); None when nothing is owed."""
        return self.holdings / self.liabilities if self.liabilities else None


def liabilities_list() -> list[LiabilityRow]:
    """Per asset: what the exchange holds on the simulated chain against what it owes.

    - holdings: confirmed deposits minus the amounts of completed withdrawals (the chain
      received every deposit and sent every withdrawal's amount; the withdrawal's fee never
      left the exchange);
    - liabilities: the sum of every user's balance, available plus locked (a pending
      withdrawal is still owed until it completes), system accounts excluded;
    - own: the system accounts' balances, i.e. the fee account's collected fees.

    Trading only moves balances between accounts and the fee account (invariant 3), so
    ``difference = holdings − liabilities − own`` is zero; an operator's balance adjustment
    makes it exactly the adjusted amount. Relies only on Balance rows, deposits in status
    ``confirmed`` and withdrawals in status ``completed``. Every asset is listed, held or not.
    """
    balances = {
        row["asset_id"]: row
        for row in Balance.objects.values("asset_id")
        .annotate(
            users=Sum(F("available") + F("locked"), filter=Q(user__is_system=False), default=ZERO),
            system=Sum(F("available") + F("locked"), filter=Q(user__is_system=True), default=ZERO),
        )
        .order_by()
    }
    deposited = dict(
        Deposit.objects.filter(status=Deposit.Status.CONFIRMED)
        .values("asset_id")
        .annotate(total=Sum("amount"))
        .order_by()
        .values_list("asset_id", "total")
    )
    withdrawn = dict(
        Withdrawal.objects.filter(status=Withdrawal.Status.COMPLETED)
        .values("asset_id")
        .annotate(total=Sum("amount"))
        .order_by()
        .values_list("asset_id", "total")
    )
    rows = []
    for asset_id, code in Asset.objects.order_by("code").values_list("pk", "code"):
        held = balances.get(asset_id, {})
        rows.append(
            LiabilityRow(
                asset=code,
                holdings=deposited.get(asset_id, ZERO) - withdrawn.get(asset_id, ZERO),
                liabilities=held.get("users", ZERO),
                own=held.get("system", ZERO),
            )
        )
    return rows


# --- The dashboard's last 24 hours --------------------------------------------------------


def last_hours(*, hours: int = 24, now: datetime.datetime | None = None) -> list[datetime.datetime]:
    """The starts of the last ``hours`` UTC hours, the current (unfinished) one last."""
    now = (now or timezone.now()).astimezone(UTC)
    current = now.replace(minute=0, second=0, microsecond=0)
    return [current - datetime.timedelta(hours=n) for n in range(hours - 1, -1, -1)]


@dataclass(frozen=True)
class HourlyTrades:
    market: str
    quote: str
    trades: dict[datetime.datetime, int]
    quote_volume: dict[datetime.datetime, Decimal]


@replica_safe
def trades_by_hour(*, since: datetime.datetime) -> list[HourlyTrades]:
    """Trades and quote volume per market and UTC hour since ``since``; only markets that
    traded are listed."""
    rows = (
        Trade.objects.filter(created_at__gte=since)
        .annotate(hour=TruncHour("created_at", tzinfo=UTC))
        .values("hour", "market__symbol", "market__quote_asset__code")
        .annotate(trades=Count("id"), quote_volume=Sum("quote_quantity"))
        .order_by("market__symbol", "hour")
    )
    markets: dict[str, HourlyTrades] = {}
    for row in rows:
        market = markets.setdefault(
            row["market__symbol"],
            HourlyTrades(row["market__symbol"], row["market__quote_asset__code"], {}, {}),
        )
        market.trades[row["hour"]] = row["trades"]
        market.quote_volume[row["hour"]] = row["quote_volume"]
    return list(markets.values())


@dataclass(frozen=True)
class HourlyFlows:
    deposits: dict[datetime.datetime, int]
    withdrawals: dict[datetime.datetime, int]


@replica_safe
def flows_by_hour(*, since: datetime.datetime) -> HourlyFlows:
    """How many deposits were credited and withdrawals completed per UTC hour since
    ``since`` (counts: the assets differ, the numbers of movements add up)."""
    deposits = (
        Deposit.objects.filter(status=Deposit.Status.CONFIRMED, confirmed_at__gte=since)
        .annotate(hour=TruncHour("confirmed_at", tzinfo=UTC))
        .values("hour")
        .annotate(count=Count("id"))
        .order_by()
        .values_list("hour", "count")
    )
    withdrawals = (
        Withdrawal.objects.filter(status=Withdrawal.Status.COMPLETED, completed_at__gte=since)
        .annotate(hour=TruncHour("completed_at", tzinfo=UTC))
        .values("hour")
        .annotate(count=Count("id"))
        .order_by()
        .values_list("hour", "count")
    )
    return HourlyFlows(deposits=dict(deposits), withdrawals=dict(withdrawals))
