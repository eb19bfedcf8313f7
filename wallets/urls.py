from django.urls import path

from wallets import views

# Pages (the API is in wallets.api.urls).
urlpatterns = [
    path("wallet/", views.wallet, name="wallet"),
]
