from channels.security.websocket import OriginValidator
from django.conf import settings


class BrowserOriginValidator(OriginValidator):
    """Refuse WebSocket handshakes from foreign web pages, but let non-browser clients in.

    Browsers always send ``Origin``; a page on another site must not ride the session
    cookie (cross-site WebSocket hijacking), so a present ``Origin`` must match
    ALLOWED_HOSTS. Bots and SDKs (ccxt, websockets) send none, and refusing them would
    protect nothing.
    """

    def valid_origin(self, parsed_origin):
        if parsed_origin is None:
            return True
        return super().valid_origin(parsed_origin)


def browser_origin_validator(application):
    return BrowserOriginValidator(application, settings.ALLOWED_HOSTS)
