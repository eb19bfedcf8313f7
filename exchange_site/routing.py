"""WebSocket routes of every app, mounted by ``exchange_site.asgi``."""

from marketdata.routing import websocket_urlpatterns as marketdata_websocket_urlpatterns

websocket_urlpatterns = [*marketdata_websocket_urlpatterns]
