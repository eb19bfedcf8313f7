"""``{% load liabilities %}{% liability_snapshot_latest as snapshot %}``: lets the wallet
page's proof-of-liabilities partial (templates/wallets/_proof.html) stand on its own."""

from django import template

from wallets.liabilities import liability_snapshot_latest

register = template.Library()
register.simple_tag(liability_snapshot_latest, name="liability_snapshot_latest")
