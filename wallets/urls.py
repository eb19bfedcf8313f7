from django.urls import path, re_path

from wallets import statement_views, views

# Pages (the API is in wallets.api.urls).
urlpatterns = [
    path("wallet/", views.wallet, name="wallet"),
    path("wallet/statements/", statement_views.statement_form, name="wallet-statement-form"),
    re_path(
        r"^wallet/statements/(?P<kind>[a-z_]{1,20})\.(?P<fmt>csv|json)$",
        statement_views.statement_download,
        name="wallet-statement",
    ),
]
