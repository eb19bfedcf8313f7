"""The operators' reports: the figures (fees, volume, flows, liabilities against holdings),
the period they cover, and the admin pages with their CSV downloads."""

import csv
import datetime
import io
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from accounts.tests.admin.fixtures import *  # noqa: F403 (operator, operator_client, ...)
from accounts.tests.factories import UserFactory
from exchange_site import reports
from testsupport.helpers import assert_ledger_ok
from trading.tests.factories import MarketFactory
from trading.tests.helpers import drain, place
from wallets import services
from wallets.models import Balance, LedgerEntry, LedgerKind
from wallets.selectors import fee_account_get

pytestmark = pytest.mark.django_db

TODAY = datetime.date(2025, 5, 31)


def _chain_deposit(user, asset, amount: str) -> None:
    """Money arriving on the simulated chain at the user's deposit address, mined until
    confirmed."""
    address = services.deposit_address_get_or_create(user=user, asset_code=asset.code)
    services.deposit_chain_detect(address=address.address, amount=Decimal(amount))
    for _ in range(asset.confirmations_required):
        services.chain_block_mine()


@pytest.fixture
def activity(operator):
    """Two chain deposits, one trade with fees on both sides, one completed withdrawal.

    alice deposits 1000 USD, bob 2 BTC; bob sells 1 BTC at 100 (maker, 0.1 % of 100 USD =
    0.1 USD), alice buys it (taker, 0.2 % of 1 BTC = 0.002 BTC); alice withdraws 50 USD
    (fee 1 USD).
    """
    market = MarketFactory()
    btc, usd = market.base_asset, market.quote_asset
    alice, bob = UserFactory(), UserFactory()
    _chain_deposit(alice, usd, "1000")
    _chain_deposit(bob, btc, "2")
    place(bob, side="sell", price="100", quantity="1")
    place(alice, side="buy", price="100", quantity="1")
    drain(market)
    withdrawal = services.withdrawal_request(
        user=alice, asset_code="USD", amount=Decimal("50"), address="bank-acct-1"
    )
    services.withdrawal_approve(withdrawal_id=withdrawal.pk, reviewer=operator)
    services.withdrawal_process(withdrawal_id=withdrawal.pk)
    return {"market": market, "btc": btc, "usd": usd, "alice": alice, "bob": bob}


def _today() -> reports.Period:
    return reports.report_period_parse({})


# --- The period ---------------------------------------------------------------------------


def test_report_period_defaults_to_the_last_30_utc_days():
    period = reports.report_period_parse({}, today=TODAY)

    assert (period.start, period.end) == (datetime.date(2025, 5, 2), TODAY)
    assert len(period.days) == 30
    assert period.since == datetime.datetime(2025, 5, 2, tzinfo=datetime.UTC)
    assert period.until == datetime.datetime(2025, 6, 1, tzinfo=datetime.UTC)


def test_report_period_takes_both_bounds_or_keeps_30_days_from_one():
    both = reports.report_period_parse({"start": "2025-01-01", "end": "2025-01-03"}, today=TODAY)
    start_only = reports.report_period_parse({"start": "2025-01-01"}, today=TODAY)
    end_only = reports.report_period_parse({"end": "2025-01-30"}, today=TODAY)

    assert both.days == [datetime.date(2025, 1, d) for d in (1, 2, 3)]
    assert (start_only.start, start_only.end) == (
        datetime.date(2025, 1, 1),
        datetime.date(2025, 1, 30),
    )
    assert (end_only.start, end_only.end) == (datetime.date(2025, 1, 1), datetime.date(2025, 1, 30))


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "yesterday"}, "start"),
        ({"start": "20250101"}, "start"),
        ({"end": "2025-02-30"}, "end"),
        ({"start": "2025-05-10", "end": "2025-05-01"}, "end"),
        ({"end": "2025-06-01"}, "end"),  # after today
        ({"start": "2023-01-01", "end": "2025-01-01"}, "start"),  # over 366 days
    ],
)
def test_report_period_refuses_bad_dates_by_field(params, field):
    with pytest.raises(ValidationError) as caught:
        reports.report_period_parse(params, today=TODAY)

    assert list(caught.value.message_dict) == [field]


# --- The figures --------------------------------------------------------------------------


def test_fee_revenue_is_what_the_fee_account_received_per_kind(activity):
    rows = reports.fee_revenue_by_day(period=_today())

    by_asset = {row.asset: row for row in rows}
    assert set(by_asset) == {"BTC", "USD"}
    assert by_asset["BTC"].trading == Decimal("0.002")
    assert by_asset["BTC"].withdrawal == 0
    assert by_asset["USD"].trading == Decimal("0.1")
    assert by_asset["USD"].withdrawal == Decimal("1")
    assert {row.day for row in rows} == {_today().end}
    # The report agrees with the ledger and with the fee account's balances.
    fee_account = fee_account_get()
    for asset, row in by_asset.items():
        ledger = sum(
            LedgerEntry.objects.filter(
                user=fee_account,
                asset__code=asset,
                kind__in=[LedgerKind.FEE, LedgerKind.WITHDRAWAL_FEE],
            ).values_list("available_delta", flat=True)
        )
        balance = Balance.objects.get(user=fee_account, asset__code=asset).available
        assert row.total == ledger == balance


def test_fee_revenue_leaves_out_days_outside_the_period(activity):
    yesterday = _today().end - datetime.timedelta(days=1)
    period = reports.Period(start=yesterday - datetime.timedelta(days=5), end=yesterday)

    assert reports.fee_revenue_by_day(period=period) == []
    assert reports.volume_by_day(period=period) == []
    assert reports.flows_by_day(period=period) == []


def test_volume_counts_trades_volumes_and_fees_per_market_and_day(activity):
    (row,) = reports.volume_by_day(period=_today())

    assert (row.market, row.base, row.quote, row.trades) == ("BTC-USD", "BTC", "USD", 1)
    assert (row.volume, row.quote_volume) == (Decimal(1), Decimal(100))
    assert (row.buyer_fees, row.seller_fees) == (Decimal("0.002"), Decimal("0.1"))


def test_flows_count_confirmed_deposits_and_completed_withdrawals_only(activity):
    pending_address = services.deposit_address_get_or_create(
        user=activity["alice"], asset_code="BTC"
    )
    services.deposit_chain_detect(address=pending_address.address, amount=Decimal("3"))
    services.withdrawal_request(
        user=activity["alice"], asset_code="USD", amount=Decimal("20"), address="bank-acct-2"
    )

    rows = {row.asset: row for row in reports.flows_by_day(period=_today())}

    assert (rows["USD"].deposits, rows["USD"].deposited) == (1, Decimal(1000))
    assert (rows["USD"].withdrawals, rows["USD"].withdrawn) == (1, Decimal(50))
    assert rows["USD"].withdrawal_fees == Decimal(1)
    assert rows["USD"].net == Decimal(950)
    assert (rows["BTC"].deposits, rows["BTC"].deposited) == (1, Decimal(2))  # not the pending 3
    assert rows["BTC"].withdrawals == 0


def test_liabilities_match_holdings_after_deposits_a_trade_and_a_withdrawal(activity):
    rows = {row.asset: row for row in reports.liabilities_list()}

    usd, btc = rows["USD"], rows["BTC"]
    assert usd.holdings == Decimal(950)  # 1000 in, 50 sent out; the 1 USD fee stayed
    assert usd.liabilities == Decimal("948.9")  # alice 849, bob 99.9
    assert usd.own == Decimal("1.1")  # 0.1 trading fee + 1 withdrawal fee
    assert usd.difference == 0
    assert usd.coverage == Decimal(950) / Decimal("948.9")
    assert (btc.holdings, btc.liabilities, btc.own) == (
        Decimal(2),
        Decimal("1.998"),
        Decimal("0.002"),
    )
    assert btc.difference == 0
    assert_ledger_ok()


def test_liabilities_count_a_pending_withdrawal_as_still_owed(activity):
    services.withdrawal_request(
        user=activity["alice"], asset_code="USD", amount=Decimal("20"), address="bank-acct-2"
    )

    usd = next(row for row in reports.liabilities_list() if row.asset == "USD")

    assert usd.liabilities == Decimal("948.9")  # 21 moved to locked, still the user's
    assert usd.difference == 0


def test_an_operator_adjustment_shows_as_the_difference(activity, operator):
    services.balance_adjust(
        user=activity["bob"],
        asset=activity["usd"],
        amount=Decimal("5"),
        reason="goodwill credit",
        operator=operator,
    )

    rows = {row.asset: row for row in reports.liabilities_list()}

    # A credit owes 5 USD more with nothing more on the chain: 5 short.
    assert rows["USD"].difference == Decimal("-5")
    assert rows["BTC"].difference == 0


def test_liabilities_list_every_asset_even_one_never_held(activity):
    unheld = MarketFactory(symbol="ETH-USD", base_asset__code="ETH").base_asset

    row = next(row for row in reports.liabilities_list() if row.asset == unheld.code)

    assert (row.holdings, row.liabilities, row.own, row.difference) == (0, 0, 0, 0)
    assert row.coverage is None


def test_last_24_hours_series_bucket_by_utc_hour(activity):
    hours = reports.last_hours(hours=24)

    (market,) = reports.trades_by_hour(since=hours[0])
    flows = reports.flows_by_hour(since=hours[0])

    assert len(hours) == 24
    assert hours[-1].minute == 0
    assert market.trades == {hours[-1]: 1}
    assert market.quote_volume == {hours[-1]: Decimal(100)}
    assert flows.deposits == {hours[-1]: 2}
    assert flows.withdrawals == {hours[-1]: 1}


# --- The pages ----------------------------------------------------------------------------

PAGES = ["fees", "volume", "flows", "liabilities"]
URLS = ["/admin/reports/", *(f"/admin/reports/{slug}/" for slug in PAGES)]


def _csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode())))


@pytest.mark.parametrize("slug", PAGES)
def test_each_report_page_shows_a_table_a_chart_and_a_csv_link(operator_client, activity, slug):
    page = operator_client.get(f"/admin/reports/{slug}/")

    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="report-table"' in html
    assert "<svg" in html
    assert "<rect" in html
    assert "format=csv" in html
    assert "Download CSV" in html


@pytest.mark.parametrize("url", URLS)
def test_reports_are_refused_to_staff_outside_the_operators(outsider_client, url):
    assert outsider_client.get(url).status_code == 403


@pytest.mark.parametrize("url", URLS)
def test_reports_send_anyone_not_staff_to_the_admin_login(url):
    client = Client()
    client.force_login(UserFactory())

    response = client.get(url, {"format": "csv"})

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_fees_csv_has_the_header_and_the_ledgers_numbers(operator_client, activity):
    today = _today().end.isoformat()

    response = operator_client.get("/admin/reports/fees/", {"format": "csv"})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    assert _csv(response) == [
        ["Day (UTC)", "Asset", "Trading fees", "Withdrawal fees", "Total"],
        [today, "BTC", "0.002", "0", "0.002"],
        [today, "USD", "0.1", "1", "1.1"],
    ]


def test_volume_and_flows_csv_carry_the_days_numbers(operator_client, activity):
    today = _today().end.isoformat()

    volume = _csv(operator_client.get("/admin/reports/volume/", {"format": "csv"}))
    flows = _csv(operator_client.get("/admin/reports/flows/", {"format": "csv"}))

    assert volume[1:] == [[today, "BTC-USD", "1", "1", "100", "0.002", "0.1"]]
    assert flows[0][:4] == ["Day (UTC)", "Asset", "Deposits", "Deposited"]
    assert flows[1:] == [
        [today, "BTC", "1", "2", "0", "0", "0", "2"],
        [today, "USD", "1", "1000", "1", "50", "1", "950"],
    ]


def test_liabilities_csv_and_page_flag_a_difference(operator_client, operator, activity):
    services.balance_adjust(
        user=activity["alice"],
        asset=activity["btc"],
        amount=Decimal("-0.5"),
        reason="reversed a mistaken credit",
        operator=operator,
    )

    rows = _csv(operator_client.get("/admin/reports/liabilities/", {"format": "csv"}))
    html = operator_client.get("/admin/reports/liabilities/").content.decode()

    assert rows[0] == [
        "Asset",
        "Chain holdings",
        "Owed to users",
        "Exchange's own (fees)",
        "Difference",
        "Coverage",
    ]
    assert rows[1] == ["BTC", "2", "1.498", "0.002", "0.5", "1.335113"]
    assert rows[2][0] == "USD"
    assert rows[2][4] == "0"
    assert html.count('class="oc-flagged"') == 1


def test_a_report_period_can_be_chosen_and_a_bad_one_is_a_400(operator_client, activity):
    today = _today().end
    earlier = (today - datetime.timedelta(days=3)).isoformat()

    chosen = operator_client.get("/admin/reports/fees/", {"start": earlier, "end": earlier})
    bad_page = operator_client.get("/admin/reports/fees/", {"start": "31/05/2025"})
    bad_csv = operator_client.get("/admin/reports/volume/", {"end": "2000-13-01", "format": "csv"})
    bad_format = operator_client.get("/admin/reports/flows/", {"format": "xlsx"})

    assert chosen.status_code == 200
    csv_of_that_day = operator_client.get(
        "/admin/reports/fees/", {"start": earlier, "end": earlier, "format": "csv"}
    )
    assert _csv(csv_of_that_day)[1:] == []
    assert f'value="{earlier}"' in chosen.content.decode()
    assert bad_page.status_code == 400
    assert "Give a date as YYYY-MM-DD" in bad_page.content.decode()
    assert bad_csv.status_code == 400
    assert bad_csv.content.decode().startswith("end: Give a date as YYYY-MM-DD")
    assert bad_format.status_code == 400


# --- The dashboard on the admin index -----------------------------------------------------


def test_dashboard_flags_a_difference_with_a_link_to_the_liabilities_report(
    operator_client, operator, activity
):
    balanced = operator_client.get("/admin/").content.decode()
    services.balance_adjust(
        user=activity["bob"],
        asset=activity["usd"],
        amount=Decimal("5"),
        reason="goodwill credit",
        operator=operator,
    )
    flagged = operator_client.get("/admin/").content.decode()

    assert 'id="liabilities-alert"' not in balanced
    assert "balanced" in balanced
    assert 'id="liabilities-alert"' in flagged
    alert = flagged[flagged.index('id="liabilities-alert"') :].split("</div>")[0]
    assert "USD" in alert
    assert "difference <b>-5</b>" in alert
    assert 'href="/admin/reports/liabilities/"' in alert


def test_dashboard_has_the_page_width_charts_report_links_and_proper_names(
    operator_client, activity
):
    html = operator_client.get("/admin/").content.decode()

    assert 'id="content" class="oc-index"' in html  # not colMS: no 300px right margin
    assert html.count('class="oc-chart"') == 3  # trades, USD volume, deposits/withdrawals
    for slug in PAGES:
        assert f'href="/admin/reports/{slug}/"' in html
    assert "addresss" not in html
    assert "Deposit addresses" in html
    assert "Ledger checks" in html
    assert "Matcher commands" in html
    assert "Market data" in html
