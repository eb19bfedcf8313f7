from django.urls import re_path

from exchange_site.urlpaths import path_with_optional_slash as route
from trading.api import seed_views, views

# Mounted at /api/v1/.
urlpatterns = [
    route("orders", views.OrderListCreateApi.as_view(), "orders"),
    route("orders/batch", views.OrderBatchApi.as_view(), "orders-batch"),
    route("orders/oco", views.OcoListCreateApi.as_view(), "oco-lists"),
    re_path(
        r"^orders/oco/(?P<list_id>[0-9]{1,18})/?$", views.OcoDetailApi.as_view(), name="oco-list"
    ),
    re_path(r"^orders/(?P<order_id>[0-9]{1,18})/?$", views.OrderDetailApi.as_view(), name="order"),
    re_path(
        r"^orders/(?P<order_id>[0-9]{1,18})/amend/?$",
        views.OrderAmendApi.as_view(),
        name="order-amend",
    ),
    re_path(
        r"^orders/(?P<order_id>[0-9]{1,18})/replace/?$",
        views.OrderReplaceApi.as_view(),
        name="order-replace",
    ),
    route("trades", views.MyTradeListApi.as_view(), "my-trades"),
    # Seed 003's paths (docs/API.md, "The seeds' shapes").
    route("order", seed_views.SeedOrderApi.as_view(), "seed-order"),
    route("openOrders", seed_views.SeedOpenOrdersApi.as_view(), "seed-open-orders"),
]
