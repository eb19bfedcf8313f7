from django.urls import re_path

from marketdata.binance_consumers import BinanceStreamConsumer
from marketdata.binance_user import ListenKeyConsumer, WsApiConsumer
from marketdata.consumers import LegacyOrderBookConsumer, StreamConsumer

websocket_urlpatterns = [
    re_path(r"^ws/?$", StreamConsumer.as_asgi()),
    # Binance's user-data stream of a listenKey (60 letters and digits; stream names have @),
    # where Binance serves it and where CCXT builds it (<ws url>/<listenKey>).
    re_path(r"^ws/(?P<listen_key>[A-Za-z0-9]{60})$", ListenKeyConsumer.as_asgi()),
    re_path(r"^api/v3/ws/(?P<listen_key>[A-Za-z0-9]{60})$", ListenKeyConsumer.as_asgi()),
    # Binance's WebSocket API (requests, and user-data streams by signature).
    re_path(r"^ws-api/v3/?$", WsApiConsumer.as_asgi()),
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
