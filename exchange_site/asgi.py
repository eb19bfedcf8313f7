"""ASGI entry point: daphne serves WebSockets (and, slower, HTTP) from here (ARCHITECTURE §1)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange_site.settings")
# Persistent connections leak under ASGI; this process uses psycopg's pool instead.
os.environ.setdefault("DATABASE_POOL", "1")

from channels.routing import ProtocolTypeRouter, URLRouter
from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()

# Consumers import models, so they load only after Django is set up above.
from exchange_site.routing import websocket_urlpatterns  # noqa: E402
from exchange_site.ws_security import browser_origin_validator  # noqa: E402
from marketdata.auth import JwtQueryAuthMiddleware, session_auth_stack  # noqa: E402
from marketdata.autobahn_logging import defer_debug_formatting  # noqa: E402

defer_debug_formatting()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": browser_origin_validator(
            session_auth_stack(JwtQueryAuthMiddleware(URLRouter(websocket_urlpatterns)))
        ),
    }
)
