"""Auth and profile endpoints: parse, call a service, render. Nothing else."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import Throttled
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors, services
from accounts.api.serializers import (
    ApiKeyCreatedOutputSerializer,
    ApiKeyCreateInputSerializer,
    ApiKeyListOutputSerializer,
    ApiKeyOutputSerializer,
    LoginInputSerializer,
    ProfileUpdateInputSerializer,
    RefreshTokenInputSerializer,
    RegisterInputSerializer,
    TokenPairOutputSerializer,
    UserOutputSerializer,
)
from accounts.exceptions import LoginRateLimited
from exchange_site.throttling import AuthRateThrottle


class _PublicAuthApi(APIView):
    """Credential endpoints: no session (so no CSRF), throttled per client address."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [AuthRateThrottle]


class RegisterApi(_PublicAuthApi):
    @extend_schema(
        tags=["auth"],
        operation_id="auth_register",
        request=RegisterInputSerializer,
        responses={201: UserOutputSerializer, 400: None, 409: None},
    )
    def post(self, request):
        serializer = RegisterInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.user_register(**serializer.validated_data)
        return Response(UserOutputSerializer(user).data, status=status.HTTP_201_CREATED)


class LoginLocked(Throttled):
    """A login locked out after failures: 429 ``LOGIN_LOCKED`` with ``Retry-After``."""

    default_code = "login_locked"


class LoginApi(_PublicAuthApi):
    @extend_schema(
        tags=["auth"],
        operation_id="auth_login",
        request=LoginInputSerializer,
        responses={200: TokenPairOutputSerializer, 401: None, 429: None},
    )
    def post(self, request):
        serializer = LoginInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            tokens = services.auth_login(**serializer.validated_data, request=request)
        except LoginRateLimited as exc:
            # DRF's Throttled carries the Retry-After header the error shape alone lacks.
            raise LoginLocked(
                wait=exc.details["retry_after"], detail=LoginRateLimited.message
            ) from exc
        return Response(tokens)


class RefreshApi(_PublicAuthApi):
    @extend_schema(
        tags=["auth"],
        operation_id="auth_refresh",
        request=RefreshTokenInputSerializer,
        responses={200: TokenPairOutputSerializer, 401: None},
    )
    def post(self, request):
        serializer = RefreshTokenInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(services.auth_token_refresh(**serializer.validated_data))


class LogoutApi(APIView):
    """Revokes a refresh token. An access token is optional; if given, it must be the owner's."""

    permission_classes = [AllowAny]
    throttle_classes = [AuthRateThrottle]

    @extend_schema(
        tags=["auth"],
        operation_id="auth_logout",
        request=RefreshTokenInputSerializer,
        responses={204: OpenApiResponse(description="Revoked."), 401: None, 403: None},
    )
    def post(self, request):
        serializer = RefreshTokenInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = request.user if request.user.is_authenticated else None
        services.auth_logout(**serializer.validated_data, user=user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProfileApi(APIView):
    """The caller's own profile; there is no way to name another user here."""

    permission_classes = [IsAuthenticated]

    @extend_schema(tags=["users"], operation_id="users_profile_get", responses=UserOutputSerializer)
    def get(self, request):
        return Response(UserOutputSerializer(request.user).data)

    @extend_schema(
        tags=["users"],
        operation_id="users_profile_update",
        request=ProfileUpdateInputSerializer,
        responses={200: UserOutputSerializer, 400: None, 409: None},
    )
    def put(self, request):
        return self._update(request, partial=False)

    @extend_schema(
        tags=["users"],
        operation_id="users_profile_partial_update",
        request=ProfileUpdateInputSerializer(partial=True),
        responses={200: UserOutputSerializer, 400: None, 409: None},
    )
    def patch(self, request):
        return self._update(request, partial=True)

    def _update(self, request, *, partial):
        serializer = ProfileUpdateInputSerializer(data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        user = services.user_profile_update(user=request.user, **serializer.validated_data)
        return Response(UserOutputSerializer(user).data)


class ApiKeyListCreateApi(APIView):
    """The caller's active API keys; create one (its secret is in this answer only)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        tags=["api keys"], operation_id="api_keys_list", responses=ApiKeyListOutputSerializer
    )
    def get(self, request):
        keys = selectors.api_key_list_for_user(user=request.user)
        return Response({"results": ApiKeyOutputSerializer(keys, many=True).data})

    @extend_schema(
        tags=["api keys"],
        operation_id="api_keys_create",
        request=ApiKeyCreateInputSerializer,
        responses={201: ApiKeyCreatedOutputSerializer, 400: None, 422: None},
    )
    def post(self, request):
        serializer = ApiKeyCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        api_key, secret = services.api_key_create(user=request.user, **serializer.validated_data)
        return Response(
            ApiKeyCreatedOutputSerializer(api_key, context={"secret": secret}).data,
            status=status.HTTP_201_CREATED,
        )


class ApiKeyRevokeApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        tags=["api keys"],
        operation_id="api_keys_revoke",
        responses={204: OpenApiResponse(description="Revoked."), 404: None},
    )
    def delete(self, request, key_id):
        services.api_key_revoke(user=request.user, key_id=key_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
