from django.urls import re_path

from marketdata.binance_consumers import BinanceStreamConsumer
from marketdata.consumers import LegacyOrderBookConsumer, StreamConsumer

websocket_urlpatterns = [
    re_path(r"^ws/?$", StreamConsumer.as_asgi()),
    re_path(
        r"^api/v1/ws/orderbook/(?P<symbol>[A-Za-z0-9]{1,12}[-_/][A-Za-z0-9]{1,12})/?$",
        LegacyOrderBookConsumer.as_asgi(),
    ),
    # The same, at the path seed 000's sequence diagram and seed 001's router write.
    re_path(
        r"^ws/orderbook/(?P<symbol>[A-Za-z0-9]{1,12}[-_/][A-Za-z0-9]{1,12})/?$",
        LegacyOrderBookConsumer.as_asgi(),
    ),
    # Binance's streams: /ws (CCXT adds /<n>, one connection per subscription), /ws/<stream>
    # subscribed at once, and the combined /stream?streams=a/b.
    re_path(r"^api/v3/ws(?:/[0-9]{1,4})?/?$", BinanceStreamConsumer.as_asgi()),
    re_path(r"^api/v3/ws/(?P<streams>[A-Za-z0-9@_/]{1,2000})$", BinanceStreamConsumer.as_asgi()),
    re_path(r"^api/v3/stream/?$", BinanceStreamConsumer.as_asgi(), {"combined": True}),
]
