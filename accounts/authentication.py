"""DRF authentication that also refuses frozen accounts (issue 8) and signed-out sessions.

Access tokens are stateless, so without these checks a token issued before a freeze, or
before its session (refresh-token family) was revoked, would keep working until it expires.
"""

from django.core.signals import setting_changed
from django.db import connection
from django.dispatch import receiver
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework import exceptions
from rest_framework_simplejwt.authentication import JWTAuthentication as SimpleJWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken, TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.utils import aware_utcnow

from accounts.exceptions import AccountFrozen
from accounts.models import AuthSession, User
from accounts.sessions import SESSION_CLAIM
from exchange_site.db import row_to_instance

# Tokens whose signature was checked, by their exact bytes: a bot sends the same token with
# every request until it expires, and verifying it (PyJWT plus simplejwt's Token) was ~5 % of
# an order request. A hit still checks the expiry; the user is read on every request.
_VALIDATED_TOKENS: dict[bytes, object] = {}
_VALIDATED_TOKENS_MAX = 4096


@receiver(setting_changed)
def _forget_validated_tokens(*, setting, **_kwargs) -> None:
    # A new signing key (tests override it) must not keep accepting tokens signed with the old.
    if setting in ("SIMPLE_JWT", "SECRET_KEY"):
        _VALIDATED_TOKENS.clear()


class AccountFrozenFailed(exceptions.AuthenticationFailed):
    status_code = 403
    default_code = "account_frozen"
    default_detail = AccountFrozen.message


def _user_by_id(user_id, session_id=None) -> tuple[User | None, bool]:
    """The user row by primary key, and whether the token's session (``sid``) is still live,
    with one prepared statement: the ORM's compiled ``get`` cost three times as much, on
    every authenticated request, and the session check rides along in the same round trip.
    A token without ``sid`` (issued before sessions existed) counts as live."""
    global _USER_SQL
    if _USER_SQL is None:
        columns = ", ".join(f'u."{field.column}"' for field in User._meta.concrete_fields)
        _USER_SQL = (
            f"SELECT {columns}, (%s::bigint IS NULL OR EXISTS (SELECT 1 FROM "
            f'"{AuthSession._meta.db_table}" s WHERE s."id" = %s::bigint AND s."user_id" = u."id"'
            f' AND s."revoked_at" IS NULL)) FROM "{User._meta.db_table}" u WHERE u."id" = %s'
        )
    try:
        user_id = int(user_id)
        session_id = None if session_id is None else int(session_id)
    except (TypeError, ValueError):
        return None, False
    with connection.cursor() as cursor:
        cursor.execute(_USER_SQL, [session_id, session_id, user_id])
        row = cursor.fetchone()
    if row is None:
        return None, False
    return row_to_instance(User, row[:-1]), bool(row[-1])


_USER_SQL: str | None = None


class SessionRevoked(exceptions.AuthenticationFailed):
    default_code = "session_revoked"
    default_detail = "This session was signed out; log in again."


class JWTAuthentication(SimpleJWTAuthentication):
    """simplejwt's bearer authentication; a frozen user's token is refused (403), and so is
    (401) a token whose session was revoked.

    The same checks as simplejwt's, made cheaper for the order path: a token already verified
    is not verified again (its expiry is), and the user is read with a prepared statement, so
    a freeze, deactivation or deletion still takes effect on the very next request.
    """

    def get_validated_token(self, raw_token: bytes):
        token = _VALIDATED_TOKENS.get(raw_token)
        if token is not None:
            try:
                token.check_exp(current_time=aware_utcnow())
            except TokenError as exc:
                _VALIDATED_TOKENS.pop(raw_token, None)
                raise InvalidToken({"detail": str(exc)}) from exc
            return token
        token = super().get_validated_token(raw_token)
        if len(_VALIDATED_TOKENS) >= _VALIDATED_TOKENS_MAX:
            _VALIDATED_TOKENS.clear()
        _VALIDATED_TOKENS[raw_token] = token
        return token

    def get_user(self, validated_token):
        if jwt_settings.USER_ID_FIELD != "id" or jwt_settings.CHECK_REVOKE_TOKEN:
            user = super().get_user(validated_token)
            session_id = validated_token.get(SESSION_CLAIM)
            if (
                session_id is not None
                and not AuthSession.objects.filter(
                    pk=session_id, user=user, revoked_at__isnull=True
                ).exists()
            ):
                raise SessionRevoked()
        else:
            try:
                user_id = validated_token[jwt_settings.USER_ID_CLAIM]
            except KeyError as exc:
                raise InvalidToken("Token contained no recognizable user identification") from exc
            user, session_live = _user_by_id(user_id, validated_token.get(SESSION_CLAIM))
            if user is None:
                raise AuthenticationFailed("User not found", code="user_not_found")
            if not session_live:
                raise SessionRevoked()
            if jwt_settings.CHECK_USER_IS_ACTIVE and not user.is_active:
                raise AuthenticationFailed("User is inactive", code="user_inactive")
        if getattr(user, "is_frozen", False):
            raise AccountFrozenFailed(code="account_frozen")
        return user


class JWTAuthenticationScheme(SimpleJWTScheme):
    """The OpenAPI security scheme of the subclass: the same bearer JWT as simplejwt's."""

    target_class = "accounts.authentication.JWTAuthentication"
