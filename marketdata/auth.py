"""WebSocket authentication: a JWT in ``?token=`` (bots, scripts) or the session cookie
(pages, through Channels' AuthMiddlewareStack)."""

from urllib.parse import parse_qs

from channels.db import database_sync_to_async
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
