"""``{% operator_dashboard %}``: the operators' dashboard on the admin index."""

from django import template
from django.urls import reverse

from exchange_site.admin_dashboard import dashboard
from exchange_site.admin_reports import REPORTS, reports_for
from exchange_site.decimals import decimal_to_str

register = template.Library()


@register.inclusion_tag("admin/operator_dashboard.html", takes_context=True)
def operator_dashboard(context):
    user = context["request"].user
    # Exchange-wide figures: only for staff allowed to see the markets (the operators).
    if not user.has_perm("trading.view_market"):
        return {"shown": False}
    data = dashboard()
    data["reports"] = [(report, reverse(f"reports:{report.slug}")) for report in reports_for(user)]
    data["sees_liabilities"] = user.has_perms(REPORTS["liabilities"].permissions)
    return {"shown": True, **data}


@register.filter
def plain_decimal(value) -> str:
    """A Decimal as plain digits (1500, not Decimal.normalize's 1.5E+3)."""
    return decimal_to_str(value) if value is not None else ""
