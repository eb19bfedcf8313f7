"""Statements: a user's own rows of each kind, exact columns, the [start, end) range, the
streaming itself, and the wallet page's download URLs."""

import csv
import io
import json
import runpy
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.http import StreamingHttpResponse

from accounts.tests.factories import UserFactory
from exchange_site import heartbeat
from trading.tests.factories import MarketFactory
from trading.tests.helpers import drain, place
from wallets import services, statements_export
from wallets.models import LedgerEntry
from wallets.statements_export import (
    KINDS,
    MAX_DAYS,
    StatementRequestInvalid,
    statement_export,
    statement_range_parse,
)
from wallets.tests.factories import AssetFactory

pytestmark = pytest.mark.django_db

WIDE = {"start": "2020-01-01", "end": "2030-01-01"}


def _csv(user, kind, **dates):
    body = b"".join(statement_export(user=user, kind=kind, fmt="csv", **(dates or WIDE)).chunks())
    return list(csv.DictReader(io.StringIO(body.decode())))


def _json(user, kind, **dates):
    body = b"".join(statement_export(user=user, kind=kind, fmt="json", **(dates or WIDE)).chunks())
    return json.loads(body)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@pytest.fixture
def market(btc, usd):
    return MarketFactory(base_asset=btc, quote_asset=usd)


@pytest.fixture
def traded(market, user, other_user, fund):
    """``user`` bought 0.5 BTC at 100.25 USD as taker from ``other_user``'s resting sell."""
    fund(user, market.quote_asset, "1000")
    fund(other_user, market.base_asset, "2")
    sell = place(other_user, side="sell", price="100.25", quantity="0.5")
    buy = place(user, side="buy", price="101", quantity="0.5")
    drain(market)
    return buy, sell


# --- Columns and rows of each kind -------------------------------------------------------


def test_ledger_rows_have_the_columns_and_exact_decimals(user, btc, fund):
    deposit = fund(user, btc, "1.5")
    withdrawal = services.withdrawal_request(
        user=user, asset_code="BTC", amount=Decimal("0.25"), address="bc1-out"
    )

    rows = _csv(user, "ledger")

    entries = list(LedgerEntry.objects.filter(user=user).order_by("id"))
    assert list(rows[0]) == list(KINDS["ledger"].columns)
    assert [row["id"] for row in rows] == [str(entry.pk) for entry in entries]
    credit, reserve = rows
    assert credit == {
        "id": str(entries[0].pk),
        "created_at": _iso(entries[0].created_at),
        "asset": "BTC",
        "kind": "deposit",
        "available_delta": "1.50000000",
        "locked_delta": "0.00000000",
        "reference_type": "deposit",
        "reference_id": str(deposit.pk),
        "memo": entries[0].memo,
    }
    assert credit["created_at"].endswith("Z")
    assert reserve["kind"] == "withdrawal"
    assert reserve["available_delta"] == "-0.25010000"  # amount + the 0.0001 fee
    assert reserve["locked_delta"] == "0.25010000"
    assert reserve["reference_id"] == str(withdrawal.pk)


def test_trades_show_the_users_own_side_role_and_fee(traded, user, other_user):
    buy, sell = traded

    [bought] = _csv(user, "trades")
    [sold] = _csv(other_user, "trades")

    assert list(bought) == list(KINDS["trades"].columns)
    assert bought["symbol"] == sold["symbol"] == "BTC-USD"
    assert bought["id"] == sold["id"]
    assert (bought["order_id"], bought["side"], bought["role"]) == (str(buy.pk), "buy", "taker")
    assert (sold["order_id"], sold["side"], sold["role"]) == (str(sell.pk), "sell", "maker")
    # At the maker's price; quantity on the lot grid, notional in USD's 2 places.
    assert (bought["price"], bought["quantity"], bought["quote_quantity"]) == (
        "100.25",
        "0.50000",
        "50.125",
    )
    # The buyer pays 0.2 % taker fee in BTC, the seller 0.1 % maker fee in USD.
    assert (bought["fee"], bought["fee_asset"]) == ("0.00100000", "BTC")
    assert (sold["fee"], sold["fee_asset"]) == ("0.050125", "USD")


def test_orders_show_fills_average_price_and_fee(traded, user):
    buy, _sell = traded

    [order] = _json(user, "orders")["rows"]

    assert list(order) == list(KINDS["orders"].columns)
    assert order["id"] == buy.pk
    assert order["status"] == "filled"
    assert order["post_only"] is False
    assert order["price"] == "101.00"
    assert order["stop_price"] is None
    assert order["filled_quantity"] == "0.50000"
    assert order["filled_quote"] == "50.125"
    assert order["average_price"] == "100.25"
    assert (order["fee"], order["fee_asset"]) == ("0.00100000", "BTC")


def test_deposits_and_withdrawals_rows(user, btc, usd, fund):
    deposit = fund(user, usd, "250")
    fund(user, btc, "1")
    withdrawal = services.withdrawal_request(
        user=user, asset_code="USD", amount=Decimal("20"), address="acct-1"
    )

    deposits = _json(user, "deposits")["rows"]
    [sent] = _csv(user, "withdrawals")

    assert [row["asset"] for row in deposits] == ["USD", "BTC"]
    assert deposits[0] == {
        "id": deposit.pk,
        "created_at": _iso(deposit.created_at),
        "confirmed_at": _iso(deposit.confirmed_at),
        "asset": "USD",
        "amount": "250.00",
        "status": "confirmed",
        "confirmations": deposit.confirmations,
        "confirmations_required": deposit.confirmations_required,
        "tx_id": deposit.tx_id,
        "address": deposit.address,
    }
    assert sent == {
        "id": str(withdrawal.pk),
        "created_at": _iso(withdrawal.created_at),
        "reviewed_at": "",
        "completed_at": "",
        "asset": "USD",
        "amount": "20.00",
        "fee": "1.00",
        "total": "21.00",
        "status": "awaiting_confirmation",
        "address": "acct-1",
        "tx_id": "",
        "review_note": "",
    }


def test_a_formula_in_free_text_is_defused_in_csv_but_exact_in_json(user, btc, operator):
    adjustment = services.balance_adjust(
        user=user, asset=btc, amount=Decimal("1"), reason="=HYPERLINK(1)", operator=operator
    )
    services.balance_adjustment_approve(
        adjustment_id=adjustment.pk, reviewer=UserFactory(is_staff=True)
    )

    [row] = _csv(user, "ledger")
    [exact] = _json(user, "ledger")["rows"]

    assert row["memo"] == "'=HYPERLINK(1)"
    assert exact["memo"] == "=HYPERLINK(1)"
    assert row["available_delta"] == "1.00000000"  # numbers keep their sign as they are


# --- Only the caller's rows ---------------------------------------------------------------


def test_another_users_rows_never_appear(traded, user, other_user, btc, fund):
    stranger_deposit = fund(other_user, btc, "3")
    services.withdrawal_request(
        user=other_user, asset_code="BTC", amount=Decimal("1"), address="theirs"
    )
    services.withdrawal_request(user=user, asset_code="USD", amount=Decimal("20"), address="mine")
    outsider = UserFactory()

    for kind in KINDS:
        mine = _json(user, kind)["rows"]
        ids = {row["id"] for row in mine}
        theirs = _json(other_user, kind)["rows"]
        assert not _json(outsider, kind)["rows"], kind
        if kind == "trades":
            assert [row["side"] for row in mine] == ["buy"]
            assert [row["side"] for row in theirs] == ["sell"]
        else:
            assert ids, kind
            assert ids.isdisjoint({row["id"] for row in theirs}), kind
    assert stranger_deposit.pk not in {row["id"] for row in _json(user, "deposits")["rows"]}
    assert set(LedgerEntry.objects.filter(user=user).values_list("id", flat=True)) == {
        row["id"] for row in _json(user, "ledger")["rows"]
    }


# --- The range ----------------------------------------------------------------------------


def test_start_is_inclusive_and_end_exclusive_to_the_microsecond(user, btc, fund):
    fund(user, btc, "1")
    fund(user, btc, "2")
    first, second = LedgerEntry.objects.filter(user=user).order_by("id")
    at = _iso(second.created_at)
    just_after = _iso(second.created_at + timedelta(microseconds=1))

    from_second = _csv(user, "ledger", start=at, end=just_after)
    before_second = _csv(user, "ledger", start=_iso(first.created_at), end=at)

    assert [row["id"] for row in from_second] == [str(second.pk)]
    assert str(second.pk) not in [row["id"] for row in before_second]
    assert str(first.pk) in [row["id"] for row in before_second]


def test_dates_are_utc_days_and_offsets_are_converted():
    period = statement_range_parse(start="2026-11-01", end="2026-12-01T01:00:00+02:00")

    assert period.start == datetime(2026, 11, 1, tzinfo=UTC)
    assert period.end == datetime(2026, 11, 30, 23, 0, tzinfo=UTC)


def test_the_default_range_is_the_last_30_days_through_today():
    period = statement_range_parse(start=None, end=None, today=date(2026, 12, 15))
    only_end = statement_range_parse(start="", end="2026-03-01")

    assert period.start == datetime(2026, 11, 16, tzinfo=UTC)
    assert period.end == datetime(2026, 12, 16, tzinfo=UTC)
    assert only_end.start == datetime(2026, 1, 30, tzinfo=UTC)


def test_rows_outside_the_default_range_are_left_out(user, btc, fund):
    fund(user, btc, "1")

    last_month = statement_export(user=user, kind="ledger", fmt="json")
    long_ago = statement_export(user=user, kind="ledger", fmt="json", end="2001-01-01")

    assert len(json.loads(b"".join(last_month.chunks()))["rows"]) == 1
    assert json.loads(b"".join(long_ago.chunks()))["rows"] == []


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"start": "yesterday"}, "start"),
        ({"start": "2026-02-30"}, "start"),
        ({"end": "2026-13-01"}, "end"),
        ({"start": "2026-11-01", "end": "2026-11-01"}, "end"),
        ({"start": "2026-12-01", "end": "2026-11-01"}, "end"),
        ({"start": "2000-01-01", "end": "2026-01-01"}, "end"),
        ({"end": "0001-01-01"}, "start"),
        ({"kind": "balances"}, "kind"),
        ({"fmt": "xml"}, "format"),
    ],
)
def test_bad_requests_name_the_field(user, fields, bad):
    request = {"kind": "ledger", "fmt": "csv", **fields}

    with pytest.raises(StatementRequestInvalid) as raised:
        statement_export(user=user, **request)

    assert raised.value.status == 400
    assert list(raised.value.details) == [bad]


def test_the_longest_range_allowed_is_max_days():
    period = statement_range_parse(start="2000-01-01", end=None, today=date(2000, 1, 1))
    longest = date(2000, 1, 1) + timedelta(days=MAX_DAYS)

    assert statement_range_parse(start="2000-01-01", end=longest.isoformat()).end.date() == longest
    assert period.end - period.start == timedelta(days=1)


# --- Streaming ----------------------------------------------------------------------------


def test_rows_come_from_a_server_side_cursor_without_hold_in_small_fetches(
    user, btc, fund, monkeypatch
):
    for amount in ("1", "2", "3", "4", "5"):
        fund(user, btc, amount)
    monkeypatch.setattr(statements_export, "FETCH_ROWS", 2)
    export = statement_export(user=user, kind="ledger", fmt="csv", **WIDE)

    rows = export.rows()
    first = next(rows)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT is_holdable, statement FROM pg_cursors WHERE name LIKE 'statement_%'"
        )
        cursors = cursor.fetchall()
    rest = list(rows)

    assert len(cursors) == 1
    assert cursors[0][0] is False
    assert "wallets_ledgerentry" in cursors[0][1]
    assert [first[0], *(row[0] for row in rest)] == list(
        LedgerEntry.objects.filter(user=user).order_by("id").values_list("id", flat=True)
    )


def test_the_body_leaves_in_chunks_of_about_flush_bytes(user, btc, fund, monkeypatch):
    for amount in ("1", "2", "3", "4"):
        fund(user, btc, amount)
    monkeypatch.setattr(statements_export, "FLUSH_BYTES", 50)

    csv_chunks = list(statement_export(user=user, kind="ledger", fmt="csv", **WIDE).chunks())
    json_chunks = list(statement_export(user=user, kind="ledger", fmt="json", **WIDE).chunks())

    assert csv_chunks[0] == (",".join(KINDS["ledger"].columns) + "\r\n").encode()
    assert len(csv_chunks) == 5  # the header, then each ~90-byte row
    assert len(json_chunks) >= 4
    assert len(json.loads(b"".join(json_chunks))["rows"]) == 4


def test_an_empty_statement_is_a_header_or_an_empty_array(user):
    csv_body = b"".join(statement_export(user=user, kind="orders", fmt="csv").chunks())
    document = json.loads(b"".join(statement_export(user=user, kind="orders", fmt="json").chunks()))

    assert csv_body.decode().splitlines() == [",".join(KINDS["orders"].columns)]
    assert document["rows"] == []
    assert document["kind"] == "orders"
    assert document["columns"] == list(KINDS["orders"].columns)
    assert document["end"].endswith("T00:00:00Z")


# --- The wallet page ----------------------------------------------------------------------


def test_the_page_download_streams_an_attachment(client, user, btc, fund):
    fund(user, btc, "1")
    client.force_login(user)

    response = client.get(
        "/wallet/statements/ledger.csv", {"start": "2026-11-01", "end": "2026-12-01"}
    )
    wide = client.get("/wallet/statements/ledger.json", WIDE)

    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        'attachment; filename="statement-ledger-2026-11-01-2026-12-01.csv"'
    )
    assert response["Cache-Control"] == "private, no-store"
    assert b"".join(response.streaming_content).decode().startswith("id,created_at,asset")
    assert wide["Content-Type"] == "application/json"
    assert len(json.loads(b"".join(wide.streaming_content))["rows"]) == 1


def test_the_page_download_needs_a_login(client):
    response = client.get("/wallet/statements/ledger.csv")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_page_answers_a_bad_range_with_the_error_shape(client, user):
    client.force_login(user)

    response = client.get("/wallet/statements/ledger.csv", {"start": "soon"})
    unknown = client.get("/wallet/statements/balances.csv")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert list(response.json()["error"]["details"]) == ["start"]
    assert unknown.status_code == 400
    assert list(unknown.json()["error"]["details"]) == ["kind"]


def test_the_page_form_redirects_to_the_download(client, user):
    client.force_login(user)

    chosen = client.get(
        "/wallet/statements/",
        {"kind": "trades", "format": "json", "start": "2026-11-01", "end": ""},
    )
    bad = client.get("/wallet/statements/", {"kind": "trades", "format": "pdf"})

    assert chosen.status_code == 302
    assert chosen["Location"] == "/wallet/statements/trades.json?start=2026-11-01"
    assert bad.status_code == 400
    assert list(bad.json()["error"]["details"]) == ["format"]


def test_the_partial_renders_without_context():
    from django.template.loader import render_to_string

    html = render_to_string("wallets/_statements.html")

    assert 'action="/wallet/statements/"' in html
    assert all(f'value="{kind}"' in html for kind in KINDS)
    assert 'name="format" value="csv"' in html
    assert 'name="format" value="json"' in html


def test_the_page_download_is_throttled(client, user, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "statements": "2/min",
        },
    }
    client.force_login(user)

    codes = [client.get("/wallet/statements/deposits.csv").status_code for _ in range(3)]
    refused = client.get("/wallet/statements/deposits.csv")

    assert codes == [200, 200, 429]
    assert refused.json()["error"]["code"] == "THROTTLED"
    assert int(refused["Retry-After"]) >= 1


def test_a_long_export_tells_gunicorn_it_progresses(user, btc, fund, monkeypatch):
    """A sync worker is killed after GUNICORN_TIMEOUT unless it notifies the arbiter."""

    class Worker:  # gunicorn's side of exchange_site.heartbeat (outside the system)
        notified = 0

        def notify(self):
            self.notified += 1

    for amount in ("1", "2", "3"):
        fund(user, btc, amount)
    worker = Worker()
    monkeypatch.setattr(heartbeat, "_worker", worker)
    monkeypatch.setattr(statements_export, "FLUSH_BYTES", 50)

    chunks = list(statement_export(user=user, kind="ledger", fmt="csv", **WIDE).chunks())

    assert worker.notified == 3  # once per flushed chunk of rows
    assert len(chunks) == 4


def test_gunicorn_registers_each_worker_for_the_heartbeat(monkeypatch):
    config = runpy.run_path(str(Path(django_settings.BASE_DIR) / "gunicorn.conf.py"))
    worker = object()
    monkeypatch.setattr(heartbeat, "_worker", None)

    config["post_worker_init"](worker)

    assert heartbeat._worker is worker


def test_an_asset_added_during_an_export_is_looked_up_again(btc):
    assets = statements_export._asset_lookup()
    added = AssetFactory(code="NEW", precision=3)

    assert assets[btc.pk] == ("BTC", 8)
    assert assets[added.pk] == ("NEW", 3)
    with pytest.raises(KeyError):
        assets[10**12]
