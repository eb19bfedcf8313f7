from django.urls import re_path

from marketdata.consumers import LegacyOrderBookConsumer, StreamConsumer

websocket_urlpatterns = [
    re_path(r"^ws/?$", StreamConsumer.as_asgi()),
    re_path(
        r"^api/v1/ws/orderbook/(?P<symbol>[A-Za-z0-9]{1,12}[-_/][A-Za-z0-9]{1,12})/?$",
        LegacyOrderBookConsumer.as_asgi(),
    ),
]
