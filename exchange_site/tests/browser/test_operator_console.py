"""The operator console in a real browser: the dashboard takes the page's width with its
headers on one line, and every report page renders with its chart and CSV link, at desktop
and phone width, without console errors."""

from django.contrib.auth.models import Group
from playwright.sync_api import expect

from accounts.models import User
from exchange_site.tests.browser.conftest import operators_group_restore, screenshot

PASSWORD = "a-long-operator-pass-42"


def test_dashboard_and_reports_render_for_an_operator(live_stack, new_page):
    live_stack.create_user(
        email="olga@example.com", username="olga", password=PASSWORD, funds={"USD": "100"}
    )
    olga = User.objects.get(email="olga@example.com")
    User.objects.filter(pk=olga.pk).update(is_staff=True)
    operators_group_restore()
    olga.groups.add(Group.objects.get(name="operators"))
    page = new_page()

    page.goto("/admin/login/")
    page.fill("#id_username", "olga@example.com")
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    dashboard = page.locator("#operator-dashboard")
    expect(dashboard).to_be_visible()

    # The page's width (1440 minus the admin's padding), not the app list's 600px column.
    assert dashboard.bounding_box()["width"] > 1200
    header = page.locator("#markets-table thead th", has_text="Pending commands")
    assert header.bounding_box()["height"] < 40  # one line, not a letter per line
    # No trade yet: trades per hour, and deposits and withdrawals (no quote-volume chart).
    expect(page.locator("#operator-dashboard figure.oc-chart")).to_have_count(2)
    expect(page.get_by_role("link", name="Deposit addresses")).to_be_visible()
    screenshot(page, "admin-dashboard")

    page.locator("#report-links").get_by_role("link", name="Liabilities and holdings").click()
    expect(page.locator("#report-table tbody tr")).to_have_count(4)  # the four demo assets
    screenshot(page, "report-liabilities")
    for name, slug in (
        ("Fee revenue", "fees"),
        ("Traded volume", "volume"),
        ("Deposits and withdrawals", "flows"),
    ):
        page.locator(".oc-tabs").get_by_role("link", name=name).click()
        expect(page.locator("#report-table")).to_be_visible()
        expect(page.get_by_role("link", name="Download CSV")).to_have_attribute(
            "href",
            f"?start={page.locator('input[name=start]').input_value()}"
            f"&end={page.locator('input[name=end]').input_value()}&format=csv",
        )
        screenshot(page, f"report-{slug}")
