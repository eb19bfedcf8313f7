"""The pages in a real browser against the real processes (gunicorn, daphne, the matcher):
sign up, fund, trade from the form, and watch another user's trade arrive live."""

import re
from decimal import Decimal

import httpx
from playwright.sync_api import expect

from exchange_site.tests.browser.conftest import screenshot
from testsupport.helpers import assert_ledger_ok
from trading.models import Order
from wallets.models import Balance

PASSWORD = "a-long-browser-pass-42"


def _api_user(base_url: str, email: str, username: str, funds: dict[str, str]) -> httpx.Client:
    """A second user made entirely through the REST API (register, log in, demo deposit)."""
    client = httpx.Client(base_url=base_url, timeout=10)
    registered = client.post(
        "/api/v1/auth/register",
        json={"email": email, "username": username, "password": PASSWORD},
    )
    assert registered.status_code == 201, registered.text
    login = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    client.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
    for asset, amount in funds.items():
        deposit = client.post("/api/v1/wallets/deposits", json={"asset": asset, "amount": amount})
        assert deposit.status_code == 201, deposit.text
    return client


def _sign_up(page, email: str, username: str) -> None:
    page.goto("/accounts/signup/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page).to_have_url(re.compile(r"/wallet/$"))


def _open_rows(page):
    return page.locator("#open-orders tbody tr[data-order-id]")


def test_sign_up_fund_trade_and_see_a_crossing_sell_live(live_stack, new_page, console):
    page = new_page()
    _sign_up(page, "trader@example.com", "trader")
    expect(page.locator(".who")).to_have_text("trader")

    # Demo deposit from the wallet page; the balance row updates without a reload.
    deposit_form = page.locator("#demo-deposit-form")
    deposit_form.get_by_label("Asset").select_option("USD")
    deposit_form.get_by_label("Amount").fill("10000")
    page.get_by_role("button", name="Deposit demo funds").click()
    expect(page.locator("#deposit-status")).to_contain_text("Deposited 10,000.00 USD")
    usd_row = page.locator('#balances tr[data-asset="USD"]')
    expect(usd_row.locator('[data-field="available"]')).to_have_text("10,000.00")
    expect(page.locator("#ledger-table tbody")).to_contain_text("Deposit")
    screenshot(page, "wallet")

    # A limit buy from the form rests in the book and shows in open orders.
    page.goto("/trade/BTC-USD/")
    page.evaluate("window.__sameDocument = true")
    expect(page.locator("#order-available")).to_have_text("10,000.00")
    page.get_by_label("Price", exact=True).fill("123.45")
    page.get_by_label("Quantity", exact=True).fill("0.4")
    expect(page.locator("#order-total")).to_have_text("49.38")
    page.get_by_role("button", name="Buy BTC").click()
    expect(page.locator("#order-status")).to_contain_text("order #")
    expect(_open_rows(page)).to_have_count(1)
    expect(_open_rows(page).first).to_contain_text("0.40000")
    expect(_open_rows(page).first).to_contain_text("Open")
    expect(page.locator('#book-bids tr[data-price="123.45"]')).to_contain_text("0.40000")
    # The record first, then what the page shows of it (a failure then says which is wrong).
    usd = Balance.objects.get(user__username="trader", asset__code="USD")
    assert usd.available == Decimal("9950.62"), usd.available
    expect(page.locator("#order-available")).to_have_text("9,950.62")
    live_stack.wait_matcher_idle()
    buy = Order.objects.get(user__username="trader")
    assert (buy.side, buy.status, buy.price) == ("buy", "open", Decimal("123.45"))

    # A second user's crossing sell, through the API: the first page updates by itself.
    seller = _api_user(live_stack.web_url, "seller@example.com", "seller", {"BTC": "1"})
    sold = seller.post(
        "/api/v1/orders/",
        json={
            "symbol": "BTC-USD",
            "side": "sell",
            "order_type": "limit",
            "price": "123.45",
            "quantity": "0.4",
        },
    )
    assert sold.status_code == 201, sold.text
    live_stack.wait_matcher_idle()
    expect(page.locator("#recent-trades tbody tr[data-trade-id]", has_text="123.45")).to_have_count(
        1
    )
    expect(_open_rows(page)).to_have_count(0)
    expect(page.locator('#book-bids tr[data-price="123.45"]')).to_have_count(0)
    page.get_by_role("tab", name="Order history").click()
    history = page.locator("#order-history tbody tr[data-order-id]")
    expect(history.first).to_contain_text("Filled")
    expect(history.first).to_contain_text("123.45")
    page.get_by_role("tab", name="My trades").click()
    fills = page.locator("#my-trades tbody tr[data-trade-id]")
    expect(fills).to_have_count(1)
    expect(fills.first).to_contain_text("Buy")
    expect(fills.first).to_contain_text("0.40000")
    # New balances: 49.38 USD spent; 0.4 BTC bought less the 0.1 % maker fee.
    expect(page.locator("#order-available")).to_have_text("9,950.62")
    page.get_by_role("button", name="Sell", exact=True).click()
    expect(page.get_by_role("button", name="Sell BTC")).to_be_visible()
    expect(page.locator("#order-available")).to_have_text("0.39960000")
    assert Balance.objects.get(user__username="trader", asset__code="BTC").available == Decimal(
        "0.3996"
    )

    # Cancel from the page.
    page.get_by_role("button", name="Buy", exact=True).click()
    page.get_by_role("tab", name="Open orders").click()
    page.get_by_label("Price", exact=True).fill("90.00")
    page.get_by_label("Quantity", exact=True).fill("0.1")
    page.get_by_role("button", name="Buy BTC").click()
    expect(_open_rows(page)).to_have_count(1)
    expect(page.locator("#order-available")).to_have_text("9,941.62")
    order_id = _open_rows(page).first.get_attribute("data-order-id")
    page.get_by_role("button", name=f"Cancel order {order_id}").click()
    expect(_open_rows(page)).to_have_count(0)
    expect(page.locator("#order-available")).to_have_text("9,950.62")
    live_stack.wait_matcher_idle()
    assert Order.objects.get(pk=order_id).status == "cancelled"
    page.get_by_role("tab", name="Order history").click()
    expect(page.locator(f'#order-history tr[data-order-id="{order_id}"]')).to_contain_text(
        "Cancelled"
    )

    # An order beyond the balance: the API's refusal is shown inline, nothing is placed.
    console.allow(r"status of 422")
    orders_before = Order.objects.count()
    page.get_by_label("Price", exact=True).fill("123.45")
    page.get_by_label("Quantity", exact=True).fill("1000")
    with page.expect_response(
        lambda r: r.url.endswith("/api/v1/orders/") and r.request.method == "POST"
    ) as refused:
        page.get_by_role("button", name="Buy BTC").click()
    assert refused.value.status == 422
    api_error = refused.value.json()["error"]
    assert api_error["code"] == "INSUFFICIENT_BALANCE"
    error = page.locator("#order-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text(api_error["message"])
    assert "Traceback" not in error.inner_text()
    assert Order.objects.count() == orders_before

    assert page.evaluate("window.__sameDocument") is True, "the page reloaded"
    screenshot(page, "trade-logged-in")
    assert_ledger_ok()


def test_place_an_oco_and_amend_it_from_the_page(live_stack, new_page):
    from trading.models import OrderList

    _api_user(live_stack.web_url, "oco@example.com", "ocotrader", {"BTC": "1"})
    page = new_page()
    page.goto("/accounts/login/?next=/trade/BTC-USD/")
    page.get_by_label("Email or username").fill("ocotrader")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".who")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/trade/BTC-USD/$"))

    # A sell OCO: take profit at 150, stop out at 90, one reserve of 0.5 BTC.
    page.get_by_role("button", name="Sell", exact=True).click()
    page.get_by_role("button", name="OCO").click()
    page.get_by_label("Limit price", exact=True).fill("150.00")
    page.get_by_label("Stop price", exact=True).fill("90.00")
    page.get_by_label("Quantity", exact=True).fill("0.5")
    page.get_by_role("button", name="Sell BTC").click()
    expect(page.locator("#order-status")).to_contain_text("OCO #")
    expect(_open_rows(page)).to_have_count(2)
    expect(_open_rows(page).first).to_contain_text("OCO #")
    expect(page.locator("#order-available")).to_have_text("0.50000000")
    live_stack.wait_matcher_idle()
    order_list = OrderList.objects.get(user__username="ocotrader")
    limit, stop = order_list.orders.order_by("id")
    assert (limit.status, limit.post_only, stop.status) == ("open", True, "untriggered")
    expect(page.locator('#book-asks tr[data-price="150.00"]')).to_contain_text("0.50000")

    # Amend the limit leg to 0.3: both legs shrink and 0.2 BTC comes back.
    page.get_by_role("button", name=f"Amend quantity of order {limit.pk}").click()
    page.get_by_label(f"New quantity of order {limit.pk}").fill("0.3")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#order-status")).to_contain_text("amend sent")
    live_stack.wait_matcher_idle()
    amended = Order.objects.filter(order_list=order_list).values_list("quantity", flat=True)
    assert set(amended) == {Decimal("0.3")}, amended
    expect(page.locator(f'#open-orders tr[data-order-id="{limit.pk}"]')).to_contain_text("0.30000")
    expect(page.locator(f'#open-orders tr[data-order-id="{stop.pk}"]')).to_contain_text("0.30000")
    expect(page.locator('#book-asks tr[data-price="150.00"]')).to_contain_text("0.30000")
    expect(page.locator("#order-available")).to_have_text("0.70000000")
    limit.refresh_from_db()
    stop.refresh_from_db()
    assert (limit.quantity, stop.quantity, limit.reserved) == (
        Decimal("0.3"),
        Decimal("0.3"),
        Decimal("0.3"),
    )
    assert Balance.objects.get(user__username="ocotrader", asset__code="BTC").locked == Decimal(
        "0.3"
    )

    # An iceberg sell from the limit form: the book shows only its visible part.
    page.get_by_role("button", name="Limit", exact=True).click()
    page.get_by_label("Price", exact=True).fill("200.00")
    page.get_by_label("Quantity", exact=True).fill("0.2")
    page.get_by_label("Iceberg: show").fill("0.05")
    page.get_by_role("button", name="Sell BTC").click()
    expect(page.locator("#order-status")).to_contain_text("order #")
    live_stack.wait_matcher_idle()
    expect(_open_rows(page).first).to_contain_text("iceberg 0.05000")
    expect(page.locator('#book-asks tr[data-price="200.00"]')).to_contain_text("0.05000")
    expect(page.locator("#order-available")).to_have_text("0.50000000")
    iceberg = Order.objects.get(user__username="ocotrader", price=Decimal("200"))
    assert (iceberg.iceberg_quantity, iceberg.iceberg_visible) == (Decimal("0.05"), Decimal("0.05"))
    assert_ledger_ok()


def test_changes_made_before_the_page_subscribed_are_shown_once_it_does(
    live_stack, new_page, console
):
    """An event published before the page's private subscription is confirmed never reaches
    it: the page reads its orders and balances again when the server confirms, on its first
    connection as after a reconnect. Here the ws server is down while the page loads and
    while the user's balance and orders change and others trade; the page shows all of it
    once it connects."""
    client = _api_user(live_stack.web_url, "early@example.com", "earlybird", {"USD": "100"})
    live_stack.stop_ws()
    console.allow(r"WebSocket connection to .* failed")  # the browser's line per attempt
    page = new_page()
    page.goto("/accounts/login/?next=/trade/BTC-USD/")
    page.get_by_label("Email or username").fill("earlybird")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/trade/BTC-USD/$"))
    expect(page.locator("#order-available")).to_have_text("100.00")
    # The page's first reads are done before anything changes (on a slow box the orders read
    # could otherwise land after the order below and show it without any event).
    expect(page.locator("#open-orders tbody")).to_contain_text("No open orders")
    expect(page.locator("#recent-trades tbody")).to_contain_text("No trades yet")
    expect(page.locator("#ws-status")).not_to_have_attribute("data-state", "live")

    # Meanwhile, through the API: 50 USD more and a resting buy that reserves 12.00.
    deposit = client.post("/api/v1/wallets/deposits", json={"asset": "USD", "amount": "50"})
    assert deposit.status_code == 201, deposit.text
    order = {"symbol": "BTC-USD", "side": "buy", "order_type": "limit", "price": "120.00"}
    placed = client.post("/api/v1/orders/", json={**order, "quantity": "0.1"})
    assert placed.status_code == 201, placed.text
    # And two other users trade with each other: a public trade the page has not seen.
    maker = _api_user(live_stack.web_url, "m@example.com", "earlymaker", {"BTC": "1"})
    taker = _api_user(live_stack.web_url, "t@example.com", "earlytaker", {"USD": "100"})
    ask = {"symbol": "BTC-USD", "order_type": "limit", "price": "130.00", "quantity": "0.05"}
    assert maker.post("/api/v1/orders/", json={**ask, "side": "sell"}).status_code == 201
    assert taker.post("/api/v1/orders/", json={**ask, "side": "buy"}).status_code == 201
    live_stack.wait_matcher_idle()
    page.wait_for_timeout(300)
    expect(page.locator("#order-available")).to_have_text("100.00")  # nothing live yet
    expect(_open_rows(page)).to_have_count(0)
    expect(page.locator("#recent-trades tbody tr[data-trade-id]")).to_have_count(0)

    live_stack.start_ws()
    # The client's back-off between attempts grows to 15 s.
    expect(page.locator("#ws-status")).to_have_attribute("data-state", "live", timeout=30_000)
    expect(page.locator("#order-available")).to_have_text("138.00")
    expect(_open_rows(page)).to_have_count(1)
    expect(_open_rows(page).first).to_contain_text("0.10000")
    expect(page.locator("#recent-trades tbody tr[data-trade-id]")).to_have_count(1)
    expect(page.locator("#recent-trades tbody tr[data-trade-id]")).to_contain_text("130.00")
