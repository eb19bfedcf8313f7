"""DRF authentication that also refuses frozen accounts (issue 8).

Access tokens are stateless, so without this check a token issued before a freeze would
keep working until it expires.
"""

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework import exceptions
from rest_framework_simplejwt.authentication import JWTAuthentication as SimpleJWTAuthentication

from accounts.exceptions import AccountFrozen


class AccountFrozenFailed(exceptions.AuthenticationFailed):
    status_code = 403
    default_code = "account_frozen"
    default_detail = AccountFrozen.message


class JWTAuthentication(SimpleJWTAuthentication):
    """simplejwt's bearer authentication; a frozen user's token is refused (403)."""

    def get_user(self, validated_token):
        user = super().get_user(validated_token)
        if getattr(user, "is_frozen", False):
            raise AccountFrozenFailed(code="account_frozen")
        return user


class JWTAuthenticationScheme(SimpleJWTScheme):
    """The OpenAPI security scheme of the subclass: the same bearer JWT as simplejwt's."""

    target_class = "accounts.authentication.JWTAuthentication"
