"""The wallet page: balances, demo deposits, deposit addresses, withdrawals and the ledger.
Reads come from the selectors; the forms post to the REST API from static/js/wallet.js."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render
from django.utils import timezone

from accounts.selectors import two_factor_is_enabled
from exchange_site.decimals import decimal_to_str
from wallets import selectors
from wallets.address_book import withdrawal_address_list_for_user, withdrawal_profile_get
from wallets.limits import withdrawal_limit_summary
from wallets.models import Withdrawal

LEDGER_PAGE_SIZE = 25


def _amount(value, asset) -> str:
    return decimal_to_str(value, asset.precision)


@login_required
def wallet(request):
    user = request.user
    balances = [
        {
            "asset": row.asset.code,
            "name": row.asset.name,
            "precision": row.asset.precision,
            "available": _amount(row.available, row.asset),
            "locked": _amount(row.locked, row.asset),
            "total": _amount(row.total, row.asset),
            "min_withdrawal": _amount(row.asset.min_withdrawal, row.asset),
            "withdrawal_fee": _amount(row.asset.withdrawal_fee, row.asset),
        }
        for row in selectors.balance_list_for_user(user=user)
    ]
    ledger_page = Paginator(selectors.ledger_list_for_user(user=user), LEDGER_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    ledger = [
        {
            "id": entry.id,
            "created_at": entry.created_at,
            "asset": entry.asset.code,
            "kind": entry.get_kind_display(),
            "available_delta": _amount(entry.available_delta, entry.asset),
            "locked_delta": _amount(entry.locked_delta, entry.asset),
            "reference": f"{entry.reference_type} #{entry.reference_id}"
            if entry.reference_id is not None
            else entry.reference_type,
            "memo": entry.memo,
        }
        for entry in ledger_page.object_list
    ]
    withdrawals = [
        {
            "id": w.id,
            "created_at": w.created_at,
            "asset": w.asset.code,
            "amount": _amount(w.amount, w.asset),
            "fee": _amount(w.fee, w.asset),
            "address": w.address,
            "status": w.status,
            "status_label": w.get_status_display(),
            "cancellable": w.status in Withdrawal.CANCELLABLE,
        }
        for w in selectors.withdrawal_list_for_user(user=user)[:20]
    ]
    now = timezone.now()
    addresses = [
        {
            "id": saved.id,
            "asset": saved.asset.code,
            "address": saved.address,
            "label": saved.label,
            "usable_from": saved.usable_from.isoformat(),
            "usable": saved.usable_from <= now,
        }
        for saved in withdrawal_address_list_for_user(user=user)
    ]
    context = {
        "balances": balances,
        "ledger": ledger,
        "ledger_page": ledger_page,
        "withdrawals": withdrawals,
        "addresses": addresses,
        "limit": withdrawal_limit_summary(user=user),
        "allowlist_enabled": withdrawal_profile_get(user=user).allowlist_enabled,
        "cooldown_hours": round(settings.WITHDRAWAL_ADDRESS_COOLDOWN_SECONDS / 3600, 2),
        "demo_deposits": settings.DEMO_DEPOSITS,
        "two_factor_enabled": two_factor_is_enabled(user=user),
    }
    return render(request, "wallets/wallet.html", context)
