from django.urls import path, re_path

from wallets import liability_views, statement_views, views, withdrawal_views

# Pages (the API is in wallets.api.urls).
urlpatterns = [
    path("wallet/", views.wallet, name="wallet"),
    path(
        "wallet/withdrawals/confirm/<str:token>/",
        withdrawal_views.withdrawal_confirm_page,
        name="withdrawal-confirm",
    ),
    path(
        "wallet/withdrawals/cancel/<str:token>/",
        withdrawal_views.withdrawal_cancel_page,
        name="withdrawal-cancel-link",
    ),
    path("wallet/statements/", statement_views.statement_form, name="wallet-statement-form"),
    re_path(
        r"^wallet/statements/(?P<kind>[a-z_]{1,20})\.(?P<fmt>csv|json)$",
        statement_views.statement_download,
        name="wallet-statement",
    ),
    path("proof-of-liabilities/", liability_views.roots_page, name="liabilities"),
    path(
        "proof-of-liabilities/verify_liabilities.py",
        liability_views.verifier_script,
        name="liabilities-verifier",
    ),
    path("wallet/proof.json", liability_views.proof_download, name="liabilities-proof-download"),
]
