from django.urls import path

from wallets import views, withdrawal_views

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
]
