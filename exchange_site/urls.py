from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from accounts.api.urls import api_keys_urlpatterns, auth_urlpatterns, users_urlpatterns
from exchange_site import dev_views, views
from exchange_site.metrics import metrics_view
from exchange_site.urlpaths import path_with_optional_slash
from trading.binance import urls as binance_urls

admin.site.site_header = "Exchange operator console"
admin.site.site_title = "Exchange operator console"
admin.site.index_title = "Dashboard"

api_v1 = [
    path("auth/", include(auth_urlpatterns)),
    path("users/", include(users_urlpatterns)),
    path("", include(api_keys_urlpatterns)),
    path("", include("wallets.api.urls")),
    path("", include("trading.api.urls")),
    path("", include("marketdata.api.urls")),
    path_with_optional_slash("health", views.health, "api-health"),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/", include("accounts.urls")),
    path("", include("trading.urls")),
    path("", include("wallets.urls")),
    path_with_optional_slash("health", views.health_alias, "health"),
    # Prometheus scrapes; open to METRICS_ALLOWED_IPS or the METRICS_TOKEN bearer only.
    path_with_optional_slash("metrics", metrics_view, "metrics"),
    path_with_optional_slash("api/v1", views.ApiIndexApi.as_view(), "api-index"),
    path("api/v1/", include(api_v1)),
    # Binance's spot API for bots and CCXT: no trailing slashes, its own error shape.
    path("api/v3/", include("trading.binance.urls")),
    # Binance's wallet API and (empty) futures market lists, for CCXT's default options.
    path("sapi/v1/", include(binance_urls.sapi_urlpatterns)),
    path("fapi/v1/", include(binance_urls.fapi_urlpatterns)),
    path("dapi/v1/", include(binance_urls.dapi_urlpatterns)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    # Where seed 000's document sends people for the API docs (its "Access the API").
    path_with_optional_slash("docs", RedirectView.as_view(url="/api/docs/"), "seed-docs"),
    path_with_optional_slash("redoc", RedirectView.as_view(url="/api/redoc/"), "seed-redoc"),
    path("api-auth/", include("rest_framework.urls")),
    # The operators' reports, before the admin's own URLs (its catch-all would take them).
    path("admin/reports/", include("exchange_site.admin_reports", namespace="reports")),
    path("admin/", admin.site.urls),
    # Demo mode only (404 otherwise): the emails the local mail catcher received.
    path("dev/mailbox/", dev_views.mailbox, name="dev-mailbox"),
    path("dev/mailbox/<str:key>/", dev_views.mailbox_message, name="dev-mailbox-message"),
]

handler400 = "exchange_site.views.bad_request"
handler403 = "exchange_site.views.permission_denied"
handler404 = "exchange_site.views.page_not_found"
handler500 = "exchange_site.views.server_error"
