"""``{% load fees %}{% account_fee_summary user as fees %}``: the account page's fee panel
(templates/trading/_account_fees.html) reads the account's fee standing without the
accounts app importing trading (which sits above it)."""

from decimal import Decimal

from django import template

from exchange_site.decimals import decimal_to_str
from trading.fee_selectors import fee_rates_for_markets, fee_summary_for_user

register = template.Library()


@register.simple_tag
def account_fee_summary(user) -> dict:
    return fee_summary_for_user(user=user)


@register.filter
def percent(rate: str | None) -> str:
    """A rate as text ("0.0016") as people read it: "0.16 %"."""
    if rate is None:
        return "—"
    return f"{decimal_to_str(Decimal(rate) * 100)} %"


@register.simple_tag
def account_market_fees(user, market) -> tuple[str, str]:
    """(maker, taker) as text: what ``user`` pays in ``market`` (the trading page's rules)."""
    ((_market, maker, taker),) = fee_rates_for_markets(user=user, markets=[market])
    return decimal_to_str(maker), decimal_to_str(taker)
