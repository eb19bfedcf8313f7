"""WebSocket authentication: a JWT in ``?token=`` (bots, scripts) or the session cookie
(pages, through ``session_auth_stack``: Channels' AuthMiddlewareStack, less one thread hop)."""

from urllib.parse import parse_qs

from channels.auth import AuthMiddleware
from channels.db import database_sync_to_async
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken


@database_sync_to_async
def _user_for_token(raw_token: str):
    try:
        token = AccessToken(raw_token)
    except TokenError:
        return None
    # A frozen user's token opens no private stream (issue 8), like a deactivated user's.
    return (
        get_user_model()
        .objects.filter(pk=token.get("user_id"), is_active=True, frozen_at__isnull=True)
        .first()
    )


class JwtQueryAuthMiddleware:
    """Sets ``scope["user"]`` from ``?token=<access token>`` when one is given.

    A bad or expired token leaves the connection anonymous (public streams still work);
    asking for a private channel then gets an ``AUTH_REQUIRED`` error.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":
            token = parse_qs(scope.get("query_string", b"").decode()).get("token", [None])[0]
            if token:
                user = await _user_for_token(token)
                scope = {**scope, "user": user or AnonymousUser(), "token_invalid": user is None}
        return await self.app(scope, receive, send)


class SessionAuthMiddleware(AuthMiddleware):
    """Channels' ``AuthMiddleware``, answering at once for a connection without a session
    cookie: such a session is empty, so Channels' ``get_user`` would return an anonymous
    user too, but only after a hop to the one thread that runs the process's database
    work, queued behind everything else there. Bots and SDKs send no cookie; in a
    reconnect storm those hops held handshakes past daphne's timeout."""

    async def resolve_scope(self, scope):
        if scope["session"].session_key is None:
            scope["user"]._wrapped = AnonymousUser()
            return
        await super().resolve_scope(scope)


def session_auth_stack(inner):
    """``channels.auth.AuthMiddlewareStack`` with ``SessionAuthMiddleware``."""
    return CookieMiddleware(SessionMiddleware(SessionAuthMiddleware(inner)))
