from django.urls import re_path

from exchange_site.urlpaths import path_with_optional_slash as route
from wallets.api import control_views, statement_views, views
from wallets.api.liabilities import LiabilityProofApi, LiabilityRootsApi

# Mounted at /api/v1/.
urlpatterns = [
    route("assets", views.AssetListApi.as_view(), "assets-list"),
    route("account/balance", views.AccountBalanceApi.as_view(), "account-balance"),
    route("account/positions", views.AccountPositionsApi.as_view(), "account-positions"),
    route("wallets", views.WalletListApi.as_view(), "wallets-list"),
    route("wallets/ledger", views.LedgerListApi.as_view(), "wallets-ledger"),
    route("wallets/deposits", views.DepositListCreateApi.as_view(), "wallets-deposits"),
    re_path(
        r"^wallets/deposit-address/(?P<asset>[A-Za-z0-9]{1,12})/?$",
        views.DepositAddressApi.as_view(),
        name="wallets-deposit-address",
    ),
    route("wallets/withdrawals", views.WithdrawalListCreateApi.as_view(), "wallets-withdrawals"),
    route(
        "wallets/withdrawals/confirm",
        control_views.WithdrawalConfirmApi.as_view(),
        "wallets-withdrawal-confirm",
    ),
    route(
        "wallets/withdrawal-limits",
        control_views.WithdrawalLimitApi.as_view(),
        "wallets-withdrawal-limits",
    ),
    route(
        "wallets/withdrawal-settings",
        control_views.WithdrawalSettingsApi.as_view(),
        "wallets-withdrawal-settings",
    ),
    route(
        "wallets/addresses",
        control_views.WithdrawalAddressListCreateApi.as_view(),
        "wallets-addresses",
    ),
    re_path(
        r"^wallets/addresses/(?P<address_id>[0-9]{1,18})/?$",
        control_views.WithdrawalAddressDetailApi.as_view(),
        name="wallets-address-detail",
    ),
    re_path(
        r"^wallets/withdrawals/(?P<withdrawal_id>[0-9]{1,18})/?$",
        views.WithdrawalDetailApi.as_view(),
        name="wallets-withdrawal-detail",
    ),
    re_path(
        r"^wallets/statements/(?P<kind>[a-z_]{1,20})/?$",
        statement_views.StatementExportApi.as_view(),
        name="wallets-statement",
    ),
    # Proof of liabilities: the public roots, and the caller's own inclusion proof.
    route("proof-of-liabilities", LiabilityRootsApi.as_view(), "liabilities-roots"),
    route("wallets/proof-of-liabilities", LiabilityProofApi.as_view(), "liabilities-proof"),
]
