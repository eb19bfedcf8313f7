"""The pages behind the withdrawal email's links. A GET only shows the withdrawal and asks:
a mail scanner that fetches a link must not move money; the button's POST acts. Neither
needs a login: the owner may read the email on another device, or be locked out by
whoever asked for the withdrawal."""

from django.contrib import messages
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from exchange_site.decimals import decimal_to_str
from exchange_site.exceptions import ExchangeError
from wallets import services
from wallets.exceptions import WithdrawalLinkInvalid


def _withdrawal_page(request, token: str, *, salt: str, action: str):
    try:
        withdrawal = services.withdrawal_link_peek(token=token, salt=salt)
    except WithdrawalLinkInvalid:
        return render(
            request, "wallets/withdrawal_link.html", {"invalid": True, "action": action}, status=400
        )
    done = None
    if request.method == "POST":
        act = (
            services.withdrawal_confirm
            if action == "confirm"
            else services.withdrawal_cancel_by_link
        )
        try:
            withdrawal = act(token=token)
        except ExchangeError as exc:
            messages.error(request, exc.message)
        else:
            done = action
    precision = withdrawal.asset.precision
    context = {
        "action": action,
        "done": done,
        "withdrawal": withdrawal,
        "amount": decimal_to_str(withdrawal.amount, precision),
        "fee": decimal_to_str(withdrawal.fee, precision),
        "pending": withdrawal.status == withdrawal.Status.AWAITING_CONFIRMATION,
        "cancellable": withdrawal.status in withdrawal.CANCELLABLE,
    }
    return render(request, "wallets/withdrawal_link.html", context)


@never_cache
@require_http_methods(["GET", "POST"])
def withdrawal_confirm_page(request, token: str):
    return _withdrawal_page(request, token, salt=services.CONFIRM_SALT, action="confirm")


@never_cache
@require_http_methods(["GET", "POST"])
def withdrawal_cancel_page(request, token: str):
    return _withdrawal_page(request, token, salt=services.CANCEL_SALT, action="cancel")
