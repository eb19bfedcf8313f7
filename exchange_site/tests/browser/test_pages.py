"""Every page renders in a real browser at desktop and phone width, with no console error,
static files come from both servers, and the account pages work end to end."""

import re
from decimal import Decimal

import httpx
from playwright.sync_api import expect

from accounts.models import ApiKey
from exchange_site.tests.browser.conftest import screenshot
from wallets.models import Asset, Balance

PASSWORD = "a-long-browser-pass-42"
CHART_LIBRARY = "/static/vendor/lightweight-charts/lightweight-charts.standalone.production.js"


def _log_in(page, login: str, password: str = PASSWORD) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Email or username").fill(login)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".who")).to_be_visible()


def test_static_files_are_served_by_gunicorn_and_daphne(live_stack):
    daphne_http = live_stack.ws_url.replace("ws://", "http://")
    for path in ("/static/css/site.css", "/static/js/trade.js", CHART_LIBRARY):
        for base in (live_stack.web_url, daphne_http):
            response = httpx.get(base + path, timeout=10)
            assert response.status_code == 200, (base, path)
            assert len(response.content) > 1000


def test_public_pages_render_live_without_console_errors(live_stack, new_page, console):
    page = new_page()
    page.goto("/")
    rows = page.locator("#markets-table tbody tr[data-symbol]")
    expect(rows).to_have_count(4)
    expect(page.locator("#ws-status")).to_have_attribute("data-state", "live")
    screenshot(page, "home")

    page.get_by_role("link", name=re.compile("ETH.*USD")).first.click()
    expect(page).to_have_url(re.compile(r"/trade/ETH-USD/$"))
    expect(page.get_by_text("Log in to trade ETH.")).to_be_visible()
    expect(page.locator("#chart canvas").first).to_be_attached()
    page.get_by_role("button", name="1h").click()
    expect(page.get_by_role("button", name="1h")).to_have_attribute("aria-pressed", "true")
    screenshot(page, "trade-anonymous")

    console.allow(r"status of 404 .*/trade/NOPE-USD/")
    page.goto("/trade/btc_usd/")
    expect(page).to_have_url(re.compile(r"/trade/BTC-USD/$"))
    response = page.goto("/trade/NOPE-USD/")
    assert response.status == 404
    expect(page.get_by_role("heading", name="404")).to_be_visible()

    page.goto("/accounts/signup/")
    screenshot(page, "signup")
    page.goto("/accounts/login/")
    screenshot(page, "login")
    page.goto("/wallet/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/wallet/$"))


def test_signup_errors_login_profile_api_keys_and_logout(live_stack, new_page, console):
    page = new_page()
    page.goto("/accounts/signup/")
    page.get_by_label("Email").fill("not-an-email")
    page.get_by_label("Username").fill("ab")
    page.get_by_label("Password", exact=True).fill("short")
    page.get_by_label("Repeat password").fill("different")
    page.get_by_role("button", name="Sign up").click()
    expect(page.locator(".errorlist")).to_have_count(3)
    expect(page.get_by_text("The two passwords differ.")).to_be_visible()

    page.get_by_label("Email").fill("kim@example.com")
    page.get_by_label("Username").fill("kim")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page).to_have_url(re.compile(r"/wallet/$"))
    screenshot(page, "wallet-empty")

    # Log out needs a POST; the GET page asks first.
    page.goto("/accounts/logout/")
    screenshot(page, "logout")
    page.locator("main").get_by_role("button", name="Log out").click()
    expect(page.get_by_role("link", name="Log in")).to_be_visible()

    # Log in by username, land on the profile, change the full name.
    page.goto("/accounts/login/?next=/accounts/profile/")
    page.get_by_label("Email or username").fill("kim")
    page.get_by_label("Password").fill("wrong-password-1")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".errorlist")).to_be_visible()
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/accounts/profile/$"))
    page.get_by_label("Full name").fill("Kim Trader")
    page.get_by_role("button", name="Save profile").click()
    expect(page.get_by_text("Profile saved.")).to_be_visible()
    expect(page.get_by_label("Full name")).to_have_value("Kim Trader")

    # API keys: created with the secret shown once, listed, then revoked.
    page.get_by_label("Label").fill("grid bot")
    page.get_by_label("Trade").check()
    page.get_by_label("IP allowlist").fill("203.0.113.7")
    page.get_by_role("button", name="Create API key").click()
    secret = page.locator('#api-key-secret [data-field="secret"]')
    expect(secret).not_to_be_empty()
    key = ApiKey.objects.get(user__username="kim")
    assert key.label == "grid bot"
    assert key.can_trade
    assert key.ip_allowlist == ["203.0.113.7"]
    row = page.locator(f'#api-keys-table tr[data-key-id="{key.pk}"]')
    expect(row).to_contain_text(key.key)
    expect(row).to_contain_text("Read, Trade")
    screenshot(page, "profile")
    page.on("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke grid bot").click()
    expect(row).to_have_count(0)
    expect(page.locator("#api-key-secret")).to_be_hidden()
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_wallet_deposit_address_withdrawal_and_its_error(live_stack, new_page, console):
    live_stack.create_user(email="wendy@example.com", username="wendy", funds={"BTC": "1"})
    # No BTC trade yet on this stack: the operators' reference price values it for the
    # 24-hour limit (0.5 BTC is 5,000 USD, under the default tier's 10,000).
    Asset.objects.filter(code="BTC").update(reference_price=Decimal("10000"))
    page = new_page()
    _log_in(page, "wendy@example.com", "correct-horse-battery")
    page.goto("/wallet/")
    expect(page.locator("#deposit-address")).to_have_text(re.compile(r"\w{20,}"))

    withdraw = page.locator("#withdraw-form")
    withdraw.get_by_label("Asset").select_option("BTC")
    withdraw.get_by_label("Amount").fill("0.5")
    withdraw.get_by_label("Destination address").fill("bc1qexampledestination0000000000")
    withdraw.get_by_role("button", name="Request withdrawal").click()
    expect(page.locator("#withdraw-status")).to_contain_text("requested")
    row = page.locator("#withdrawals tbody tr[data-withdrawal-id]")
    expect(row).to_have_count(1)
    # Nothing leaves before the owner follows the emailed link; until then it can be cancelled.
    expect(row).to_contain_text("Awaiting confirmation")
    btc = page.locator('#balances tr[data-asset="BTC"]')
    expect(btc.locator('[data-field="available"]')).not_to_have_text("1.00000000")
    balance = Balance.objects.get(user__username="wendy", asset__code="BTC")
    assert balance.locked > 0

    console.allow(r"status of 422")
    withdraw.get_by_label("Amount").fill("5")
    withdraw.get_by_role("button", name="Request withdrawal").click()
    expect(page.locator("#withdraw-error")).to_contain_text("nsufficient")

    row.get_by_role("button", name="Cancel").click()
    expect(row).to_contain_text("Cancelled")
    expect(btc.locator('[data-field="available"]')).to_have_text("1.00000000")
    screenshot(page, "wallet-withdrawal")
