"""Auth and profile endpoints: parse, call a service, render. Nothing else."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import Throttled
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors, services, twofactor
from accounts.api.serializers import (
    ApiKeyCreatedOutputSerializer,
    ApiKeyCreateInputSerializer,
    ApiKeyListOutputSerializer,
    ApiKeyOutputSerializer,
    LoginInputSerializer,
    ProfileUpdateInputSerializer,
    RecoveryCodesOutputSerializer,
    RefreshTokenInputSerializer,
    RegisterInputSerializer,
    TokenPairOutputSerializer,
    TwoFactorCodeInputSerializer,
    TwoFactorConfirmInputSerializer,
    TwoFactorDisableInputSerializer,
    TwoFactorEnrolOutputSerializer,
    TwoFactorStatusOutputSerializer,
    UserOutputSerializer,
)
from accounts.exceptions import LoginRateLimited
from exchange_site.throttling import AuthRateThrottle, client_address


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
        # 401 also `OTP_REQUIRED` / `OTP_INVALID`: the password was right, the code is needed.
        responses={200: TokenPairOutputSerializer, 401: None, 403: None, 429: None},
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
        return Response(services.auth_token_refresh(**serializer.validated_data, request=request))


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
        # 403: frozen, or a two-factor code missing (`OTP_REQUIRED`) or wrong (`OTP_INVALID`).
        responses={201: ApiKeyCreatedOutputSerializer, 400: None, 403: None, 422: None},
    )
    def post(self, request):
        serializer = ApiKeyCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        api_key, secret = services.api_key_create(
            user=request.user, **serializer.validated_data, ip=client_address(request)
        )
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


def _login_locked(exc: LoginRateLimited) -> LoginLocked:
    return LoginLocked(wait=exc.details["retry_after"], detail=exc.message)


class _TwoFactorApi(APIView):
    """The caller's own two-factor authentication; wrong codes count as failed logins, and a
    lockout answers 429 ``LOGIN_LOCKED`` with ``Retry-After``."""

    permission_classes = [IsAuthenticated]

    def finalize_response(self, request, response, *args, **kwargs):
        # Secrets and recovery codes travel in these answers: no cache may keep them.
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Cache-Control"] = "no-store"
        return response

    def handle_exception(self, exc):
        if isinstance(exc, LoginRateLimited):
            exc = _login_locked(exc)
        return super().handle_exception(exc)


def _status(user) -> Response:
    return Response(TwoFactorStatusOutputSerializer(selectors.two_factor_status(user=user)).data)


class TwoFactorStatusApi(_TwoFactorApi):
    @extend_schema(
        tags=["two-factor"],
        operation_id="two_factor_status",
        responses=TwoFactorStatusOutputSerializer,
    )
    def get(self, request):
        return _status(request.user)


class TwoFactorEnrolApi(_TwoFactorApi):
    @extend_schema(
        tags=["two-factor"],
        operation_id="two_factor_enrol_begin",
        request=None,
        responses={200: TwoFactorEnrolOutputSerializer, 409: None},
        description="A new secret for the authenticator app (again on each call, until "
        "confirmed). 409 `TWO_FACTOR_STATE` when it is already on.",
    )
    def post(self, request):
        _device, secret, uri = twofactor.two_factor_enrol_begin(user=request.user)
        data = {
            "secret": secret,
            "provisioning_uri": uri,
            "qr_code": twofactor.qr_code_data_uri(uri),
        }
        return Response(TwoFactorEnrolOutputSerializer(data).data)


class TwoFactorConfirmApi(_TwoFactorApi):
    @extend_schema(
        tags=["two-factor"],
        operation_id="two_factor_enrol_confirm",
        request=TwoFactorConfirmInputSerializer,
        responses={200: RecoveryCodesOutputSerializer, 409: None},
        description="The first code from the app turns two-factor authentication on; the "
        "answer holds the recovery codes, shown this once. 403 `OTP_INVALID` for a wrong code.",
    )
    def post(self, request):
        serializer = TwoFactorConfirmInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        codes = twofactor.two_factor_enrol_confirm(
            user=request.user, **serializer.validated_data, ip=client_address(request)
        )
        return Response(RecoveryCodesOutputSerializer({"recovery_codes": codes}).data)


class TwoFactorDisableApi(_TwoFactorApi):
    @extend_schema(
        tags=["two-factor"],
        operation_id="two_factor_disable",
        request=TwoFactorDisableInputSerializer,
        responses={200: TwoFactorStatusOutputSerializer, 409: None},
        description="Needs the password (403 `PASSWORD_INVALID`) and a current or recovery "
        "code (403 `OTP_INVALID`).",
    )
    def post(self, request):
        serializer = TwoFactorDisableInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        twofactor.two_factor_disable(
            user=request.user, **serializer.validated_data, ip=client_address(request)
        )
        return _status(request.user)


class TwoFactorRecoveryCodesApi(_TwoFactorApi):
    @extend_schema(
        tags=["two-factor"],
        operation_id="two_factor_recovery_codes_regenerate",
        request=TwoFactorCodeInputSerializer,
        responses={200: RecoveryCodesOutputSerializer, 409: None},
        description="New recovery codes replace all the old ones; shown this once.",
    )
    def post(self, request):
        serializer = TwoFactorCodeInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        codes = twofactor.two_factor_recovery_codes_regenerate(
            user=request.user, **serializer.validated_data, ip=client_address(request)
        )
        return Response(RecoveryCodesOutputSerializer({"recovery_codes": codes}).data)
