"""The operators' report pages in the admin, under ``/admin/reports/``: each a table, charts
and the same table as CSV (``?format=csv``). Staff only (the admin's own login), and each
report asks for the view permissions of the data it shows. Thin: the figures come from
``exchange_site.reports``; this module only lays them out."""

import csv
import datetime
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse

from exchange_site import reports
from exchange_site.decimals import decimal_to_str
from exchange_site.svg_charts import BarChart, bar_chart

app_name = "reports"

Cell = str | int | Decimal | datetime.date | None


def cell_text(value: Cell) -> str:
    """How a value reads in the table and in the CSV alike: plain digits, ISO dates."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return decimal_to_str(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value)


@dataclass
class Table:
    headers: list[str]
    rows: list[list[Cell]]
    numeric_from: int = 1  # columns from this index on are numbers (right-aligned)
    flagged: set[int] = field(default_factory=set)  # row indexes drawn as a problem

    def text_rows(self) -> list[list[str]]:
        return [[cell_text(value) for value in row] for row in self.rows]


@dataclass
class ReportPage:
    table: Table
    charts: list[BarChart]
    totals: Table | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Report:
    slug: str
    title: str
    summary: str
    permissions: tuple[str, ...]
    build: Callable[[reports.Period | None], ReportPage]
    has_period: bool = True


def _per_key(rows: Iterable, key: str) -> dict[str, list]:
    grouped: dict[str, list] = {}
    for row in rows:
        grouped.setdefault(getattr(row, key), []).append(row)
    return grouped


def _day_labels(period: reports.Period) -> tuple[list[str], list[str], int]:
    days = period.days
    every = max(1, -(-len(days) // 8))  # about eight labels on the x axis
    return [day.strftime("%m-%d") for day in days], [d.isoformat() for d in days], every


def _daily(period: reports.Period, rows: list, attr: str) -> list[Decimal]:
    by_day = {row.day: getattr(row, attr) for row in rows}
    return [by_day.get(day, Decimal(0)) for day in period.days]


def fees_page(period: reports.Period) -> ReportPage:
    rows = reports.fee_revenue_by_day(period=period)
    labels, titles, every = _day_labels(period)
    charts, totals = [], []
    for asset, asset_rows in sorted(_per_key(rows, "asset").items()):
        trading = sum((row.trading for row in asset_rows), Decimal(0))
        withdrawal = sum((row.withdrawal for row in asset_rows), Decimal(0))
        totals.append([asset, trading, withdrawal, trading + withdrawal])
        charts.append(
            bar_chart(
                title=f"{asset} fees per day",
                unit=asset,
                labels=labels,
                titles=titles,
                label_every=every,
                series=[
                    ("Trading fees", _daily(period, asset_rows, "trading")),
                    ("Withdrawal fees", _daily(period, asset_rows, "withdrawal")),
                ],
            )
        )
    headers = ["Asset", "Trading fees", "Withdrawal fees", "Total"]
    return ReportPage(
        table=Table(
            ["Day (UTC)", *headers],
            [[r.day, r.asset, r.trading, r.withdrawal, r.total] for r in rows],
            numeric_from=2,
        ),
        totals=Table(headers, totals),
        charts=charts,
        notes=[
            "What the fee account received, from its own ledger lines: trading fees "
            "(kind fee) and withdrawal fees (kind withdrawal_fee), in the asset they were "
            "paid in."
        ],
    )


def volume_page(period: reports.Period) -> ReportPage:
    rows = reports.volume_by_day(period=period)
    labels, titles, every = _day_labels(period)
    markets = _per_key(rows, "market")
    charts = [
        bar_chart(
            title="Trades per day",
            unit="trades",
            labels=labels,
            titles=titles,
            label_every=every,
            series=[(m, _daily(period, markets[m], "trades")) for m in sorted(markets)],
        )
    ]
    totals = []
    for market, market_rows in sorted(markets.items()):
        first = market_rows[0]
        charts.append(
            bar_chart(
                title=f"{market} volume per day",
                unit=first.quote,
                labels=labels,
                titles=titles,
                label_every=every,
                series=[
                    (f"Quote volume ({first.quote})", _daily(period, market_rows, "quote_volume"))
                ],
            )
        )
        totals.append(
            [
                market,
                sum(r.trades for r in market_rows),
                f"{decimal_to_str(sum((r.volume for r in market_rows), Decimal(0)))} {first.base}",
                f"{decimal_to_str(sum((r.quote_volume for r in market_rows), Decimal(0)))} "
                f"{first.quote}",
            ]
        )
    return ReportPage(
        table=Table(
            [
                "Day (UTC)",
                "Market",
                "Trades",
                "Volume (base)",
                "Quote volume",
                "Buyer fees (base)",
                "Seller fees (quote)",
            ],
            [
                [r.day, r.market, r.trades, r.volume, r.quote_volume, r.buyer_fees, r.seller_fees]
                for r in rows
            ],
            numeric_from=2,
        ),
        totals=Table(["Market", "Trades", "Volume", "Quote volume"], totals),
        charts=charts,
    )


def flows_page(period: reports.Period) -> ReportPage:
    rows = reports.flows_by_day(period=period)
    labels, titles, every = _day_labels(period)
    charts, totals = [], []
    for asset, asset_rows in sorted(_per_key(rows, "asset").items()):
        deposited = sum((r.deposited for r in asset_rows), Decimal(0))
        withdrawn = sum((r.withdrawn for r in asset_rows), Decimal(0))
        totals.append(
            [
                asset,
                sum(r.deposits for r in asset_rows),
                deposited,
                sum(r.withdrawals for r in asset_rows),
                withdrawn,
                sum((r.withdrawal_fees for r in asset_rows), Decimal(0)),
                deposited - withdrawn,
            ]
        )
        charts.append(
            bar_chart(
                title=f"{asset} in and out per day",
                unit=asset,
                labels=labels,
                titles=titles,
                label_every=every,
                stacked=False,
                series=[
                    ("Deposited", _daily(period, asset_rows, "deposited")),
                    ("Withdrawn", _daily(period, asset_rows, "withdrawn")),
                ],
            )
        )
    headers = ["Deposits", "Deposited", "Withdrawals", "Withdrawn", "Withdrawal fees", "Net"]
    return ReportPage(
        table=Table(
            ["Day (UTC)", "Asset", *headers],
            [
                [
                    r.day,
                    r.asset,
                    r.deposits,
                    r.deposited,
                    r.withdrawals,
                    r.withdrawn,
                    r.withdrawal_fees,
                    r.net,
                ]
                for r in rows
            ],
            numeric_from=2,
        ),
        totals=Table(["Asset", *headers], totals),
        charts=charts,
        notes=[
            "Deposits count on the day they were credited, withdrawals on the day they "
            "completed; Withdrawn is what was sent out, the fee stays with the exchange. "
            "Net is what the chain holdings changed by."
        ],
    )


def liabilities_page(period: reports.Period | None) -> ReportPage:
    rows = reports.liabilities_list()
    charts = [
        bar_chart(
            title=f"{row.asset}: on the chain and owed",
            unit=row.asset,
            labels=["on chain", "owed"],
            titles=["On the chain", "Owed"],
            series=[
                ("Chain holdings", [row.holdings, 0]),
                ("Owed to users", [0, row.liabilities]),
                ("Exchange's own (fees)", [0, row.own]),
            ],
            width=320,
            height=200,
        )
        for row in rows
    ]
    table = Table(
        [
            "Asset",
            "Chain holdings",
            "Owed to users",
            "Exchange's own (fees)",
            "Difference",
            "Coverage",
        ],
        [
            [
                row.asset,
                row.holdings,
                row.liabilities,
                row.own,
                row.difference,
                row.coverage.quantize(Decimal("0.000001")) if row.coverage is not None else None,
            ]
            for row in rows
        ],
        flagged={n for n, row in enumerate(rows) if row.difference},
    )
    return ReportPage(
        table=table,
        charts=charts,
        notes=[
            "Chain holdings = confirmed deposits − completed withdrawals' amounts. Owed to "
            "users = every user's available + locked balance (system accounts excluded). "
            "Difference = holdings − owed − own: trading leaves it at zero; an operator's "
            "balance adjustment (or a bug) makes it non-zero. Coverage = holdings ÷ owed."
        ],
    )


REPORTS = {
    report.slug: report
    for report in (
        Report(
            "fees",
            "Fee revenue",
            "Trading and withdrawal fees the exchange received, per asset per day.",
            ("wallets.view_ledgerentry",),
            fees_page,
        ),
        Report(
            "volume",
            "Traded volume",
            "Trades, base and quote volume per market per day.",
            ("trading.view_trade",),
            volume_page,
        ),
        Report(
            "flows",
            "Deposits and withdrawals",
            "Confirmed deposits and completed withdrawals per asset per day.",
            ("wallets.view_deposit", "wallets.view_withdrawal"),
            flows_page,
        ),
        Report(
            "liabilities",
            "Liabilities and holdings",
            "What users are owed per asset against what the exchange holds on the chain.",
            ("wallets.view_balance", "wallets.view_deposit", "wallets.view_withdrawal"),
            liabilities_page,
            has_period=False,
        ),
    )
}


def reports_for(user) -> list[Report]:
    """The reports this user may open, in menu order."""
    return [report for report in REPORTS.values() if user.has_perms(report.permissions)]


def _error_text(error: ValidationError) -> list[str]:
    return [
        f"{name}: {message}"
        for name, messages in error.message_dict.items()
        for message in messages
    ]


def _csv_response(report: Report, page: ReportPage, period: reports.Period | None):
    suffix = f"-{period.start.isoformat()}-{period.end.isoformat()}" if period else ""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{report.slug}{suffix}.csv"'
    writer = csv.writer(response)
    writer.writerow(page.table.headers)
    writer.writerows(page.table.text_rows())
    return response


def _context(request, **extra) -> dict:
    return {
        **admin.site.each_context(request),
        "reports": reports_for(request.user),
        **extra,
    }


def report_view(report: Report):
    def view(request):
        if not request.user.has_perms(report.permissions):
            raise PermissionDenied
        wants = request.GET.get("format", "html")
        if wants not in ("html", "csv"):
            return HttpResponse(
                "format must be html or csv.\n", status=400, content_type="text/plain"
            )
        period, errors = None, []
        if report.has_period:
            try:
                period = reports.report_period_parse(request.GET)
            except ValidationError as exc:
                errors = _error_text(exc)
        if errors and wants == "csv":
            body = "\n".join(errors) + "\n"
            return HttpResponse(body, status=400, content_type="text/plain; charset=utf-8")
        page = None if errors else report.build(period)
        if wants == "csv":
            return _csv_response(report, page, period)
        context = _context(
            request,
            title=report.title,
            report=report,
            page=page,
            period=period,
            errors=errors,
            start=request.GET.get("start", period.start.isoformat() if period else ""),
            end=request.GET.get("end", period.end.isoformat() if period else ""),
            csv_query=_csv_query(period),
            presets=_presets() if report.has_period else [],
        )
        return TemplateResponse(
            request, "admin/reports/report.html", context, status=400 if errors else 200
        )

    view.__name__ = f"report_{report.slug}"
    return view


def _csv_query(period: reports.Period | None) -> str:
    if period is None:
        return "?format=csv"
    return f"?start={period.start.isoformat()}&end={period.end.isoformat()}&format=csv"


def _presets() -> list[tuple[str, str]]:
    today = reports.report_period_parse({}).end
    return [
        (label, f"?start={(today - datetime.timedelta(days=days - 1)).isoformat()}&end={today}")
        for label, days in (("Today", 1), ("7 days", 7), ("30 days", 30), ("90 days", 90))
    ]


def reports_index(request):
    available = reports_for(request.user)
    if not available:
        raise PermissionDenied
    return TemplateResponse(
        request,
        "admin/reports/index.html",
        _context(
            request, title="Reports", links=[(r, reverse(f"reports:{r.slug}")) for r in available]
        ),
    )


urlpatterns = [
    path("", admin.site.admin_view(reports_index), name="index"),
    *(
        path(f"{slug}/", admin.site.admin_view(report_view(report)), name=slug)
        for slug, report in REPORTS.items()
    ),
]
