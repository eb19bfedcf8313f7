from django.urls import re_path

from exchange_site.urlpaths import path_with_optional_slash as route
from trading.api import views

# Mounted at /api/v1/.
urlpatterns = [
    route("orders", views.OrderListCreateApi.as_view(), "orders"),
    route("orders/batch", views.OrderBatchApi.as_view(), "orders-batch"),
    re_path(r"^orders/(?P<order_id>[0-9]{1,18})/?$", views.OrderDetailApi.as_view(), name="order"),
    route("trades", views.MyTradeListApi.as_view(), "my-trades"),
]
