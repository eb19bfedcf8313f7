"""``{% operator_dashboard %}``: the operators' dashboard on the admin index."""

from django import template

from exchange_site.admin_dashboard import dashboard

register = template.Library()


@register.inclusion_tag("admin/operator_dashboard.html", takes_context=True)
def operator_dashboard(context):
    user = context["request"].user
    # Exchange-wide figures: only for staff allowed to see the markets (the operators).
    if not user.has_perm("trading.view_market"):
        return {"shown": False}
    return {"shown": True, **dashboard()}
