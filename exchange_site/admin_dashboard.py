"""The numbers on the operators' dashboard (the admin index): per market the matcher's
state, lag and backlog, open orders and the last 24 h of trading; withdrawals waiting for
an operator; the last ledger check; liabilities against chain holdings; the charts of the
last 24 hours. Reads only."""

import json
import time
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlencode

from django.db.models import Count, Min, Sum
from django.urls import reverse
from django.utils import timezone
from django_redis import get_redis_connection

from exchange_site import reports
from exchange_site.svg_charts import BarChart, bar_chart
from trading.matcher.publish import heartbeat_key
from trading.models import Market, Order, OrderCommand, Trade
from trading.selectors import MATCHER_STALE_SECONDS
from wallets.models import LedgerCheckRun, Withdrawal


def _url(name: str, **query) -> str:
    url = reverse(f"admin:{name}")
    return f"{url}?{urlencode(query)}" if query else url


@dataclass(frozen=True)
class MarketRow:
    market: Market
    matcher: str  # ok / stale / down / unknown (Redis unreachable)
    lag_ms: int
    pending_commands: int
    open_orders: int
    trades_24h: int
    volume_24h: Decimal
    quote_volume_24h: Decimal
    links: dict[str, str]


def _heartbeats(symbols: list[str]) -> dict[str, dict] | None:
    try:
        raw = get_redis_connection("default").mget([heartbeat_key(s) for s in symbols])
    except Exception:  # Redis down: the dashboard still shows what the database knows
        return None
    return {symbol: json.loads(beat) for symbol, beat in zip(symbols, raw, strict=True) if beat}


def _matcher_state(beat: dict | None, beats_known: bool) -> str:
    if not beats_known:
        return "unknown"
    if beat is None:
        return "down"
    return "ok" if time.time() - beat["at"] < MATCHER_STALE_SECONDS else "stale"


def market_rows() -> list[MarketRow]:
    now = timezone.now()
    since = now - timedelta(hours=24)
    markets = list(Market.objects.select_related("base_asset", "quote_asset").order_by("symbol"))
    pending = {
        row["market_id"]: row
        for row in OrderCommand.objects.filter(processed_at__isnull=True)
        .values("market_id")
        .annotate(count=Count("id"), oldest=Min("created_at"))
        .order_by()
    }
    open_orders = dict(
        Order.objects.filter(status__in=Order.LIVE)
        .values("market_id")
        .annotate(count=Count("id"))
        .order_by()
        .values_list("market_id", "count")
    )
    trades = {
        row["market_id"]: row
        for row in Trade.objects.filter(created_at__gte=since)
        .values("market_id")
        .annotate(count=Count("id"), volume=Sum("quantity"), quote_volume=Sum("quote_quantity"))
        .order_by()
    }
    beats = _heartbeats([market.symbol for market in markets]) if markets else {}
    rows = []
    for market in markets:
        waiting = pending.get(market.pk)
        traded = trades.get(market.pk, {})
        lag_ms = int((now - waiting["oldest"]).total_seconds() * 1000) if waiting else 0
        rows.append(
            MarketRow(
                market=market,
                matcher=_matcher_state((beats or {}).get(market.symbol), beats is not None),
                lag_ms=lag_ms,
                pending_commands=waiting["count"] if waiting else 0,
                open_orders=open_orders.get(market.pk, 0),
                trades_24h=traded.get("count", 0),
                volume_24h=traded.get("volume") or Decimal(0),
                quote_volume_24h=traded.get("quote_volume") or Decimal(0),
                links={
                    "market": reverse("admin:trading_market_change", args=[market.pk]),
                    "commands": _url(
                        "trading_ordercommand_changelist",
                        market__id__exact=market.pk,
                        pending="yes",
                    ),
                    "orders": _url(
                        "trading_order_changelist",
                        market__id__exact=market.pk,
                        status__in=",".join(Order.LIVE),
                    ),
                    "trades": _url(
                        "trading_trade_changelist",
                        market__id__exact=market.pk,
                        created_at__gte=since.replace(microsecond=0).isoformat(),
                    ),
                },
            )
        )
    return rows


def charts_last_24h(*, now=None) -> list[BarChart]:
    """Trades per hour (stacked by market), quote volume per hour (one chart per quote
    asset, stacked by market) and deposits credited and withdrawals completed per hour."""
    hours = reports.last_hours(hours=24, now=now)
    labels = [hour.strftime("%H:00") for hour in hours]
    titles = [hour.strftime("%Y-%m-%d %H:00 UTC") for hour in hours]
    common = {"labels": labels, "titles": titles, "label_every": 3, "height": 200}
    markets = reports.trades_by_hour(since=hours[0])
    charts = [
        bar_chart(
            title="Trades per hour",
            unit="trades",
            series=[(m.market, [m.trades.get(h, 0) for h in hours]) for m in markets],
            **common,
        )
    ]
    for quote in sorted({m.quote for m in markets}):
        charts.append(
            bar_chart(
                title=f"{quote} volume per hour",
                unit=quote,
                series=[
                    (m.market, [m.quote_volume.get(h, Decimal(0)) for h in hours])
                    for m in markets
                    if m.quote == quote
                ],
                **common,
            )
        )
    flows = reports.flows_by_hour(since=hours[0])
    charts.append(
        bar_chart(
            title="Deposits and withdrawals per hour",
            unit="count",
            stacked=False,
            series=[
                ("Deposits credited", [flows.deposits.get(h, 0) for h in hours]),
                ("Withdrawals completed", [flows.withdrawals.get(h, 0) for h in hours]),
            ],
            **common,
        )
    )
    return charts


def dashboard() -> dict:
    """Everything the dashboard shows, with the admin links behind each number."""
    withdrawals = dict(
        Withdrawal.objects.filter(
            status__in=[
                Withdrawal.Status.REQUESTED,
                Withdrawal.Status.APPROVED,
                Withdrawal.Status.PROCESSING,
            ]
        )
        .values("status")
        .annotate(count=Count("id"))
        .order_by()
        .values_list("status", "count")
    )
    last_check = LedgerCheckRun.objects.order_by("-id").first()
    liabilities = reports.liabilities_list()
    return {
        "markets": market_rows(),
        "withdrawals": {
            "to_review": withdrawals.get(Withdrawal.Status.REQUESTED, 0),
            "in_progress": withdrawals.get(Withdrawal.Status.APPROVED, 0)
            + withdrawals.get(Withdrawal.Status.PROCESSING, 0),
            "to_review_url": _url("wallets_withdrawal_changelist", status__exact="requested"),
            "in_progress_url": _url(
                "wallets_withdrawal_changelist", status__in="approved,processing"
            ),
        },
        "ledger_check": last_check,
        "ledger_check_url": (
            reverse("admin:wallets_ledgercheckrun_change", args=[last_check.pk])
            if last_check
            else _url("wallets_ledgercheckrun_changelist")
        ),
        "liabilities": liabilities,
        "liabilities_differ": [row for row in liabilities if row.difference],
        "liabilities_url": reverse("reports:liabilities"),
        "charts": charts_last_24h(),
        "generated_at": timezone.now(),
    }
