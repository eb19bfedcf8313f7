from django.urls import path

from wallets import liability_views, views

# Pages (the API is in wallets.api.urls).
urlpatterns = [
    path("wallet/", views.wallet, name="wallet"),
    path("proof-of-liabilities/", liability_views.roots_page, name="liabilities"),
    path(
        "proof-of-liabilities/verify_liabilities.py",
        liability_views.verifier_script,
        name="liabilities-verifier",
    ),
    path("wallet/proof.json", liability_views.proof_download, name="liabilities-proof-download"),
]
