"""Email verification, password reset and change, email change, sessions and the login
history: parse, call a service, render."""

from django.contrib.auth import update_session_auth_hash
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import Throttled
from rest_framework.generics import ListAPIView
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import recovery, selectors, sessions
from accounts.api.serializers import (
    AuthSessionListOutputSerializer,
    AuthSessionOutputSerializer,
    DetailOutputSerializer,
    EmailChangeInputSerializer,
    EmailInputSerializer,
    LoginEventOutputSerializer,
    PasswordChangeInputSerializer,
    PasswordResetConfirmInputSerializer,
    RevokedCountOutputSerializer,
    TokenInputSerializer,
    UserOutputSerializer,
)
from accounts.api.views import LoginLocked, _PublicAuthApi
from accounts.exceptions import EmailRequestsThrottled, LoginRateLimited
from accounts.models import LoginEvent

# One answer whether or not an account has the address: nobody learns who is registered.
RESET_SENT = "If an account has this address, a link to reset its password is on its way."
VERIFICATION_SENT = (
    "If an unverified account has this address, a new confirmation link is on its way."
)


class _RateLimitedAnswers:
    """The login lockout (``LoginRateLimited``) and the per-address limit on emailing
    requests answer 429 with ``Retry-After``."""

    def handle_exception(self, exc):
        if isinstance(exc, LoginRateLimited):
            exc = LoginLocked(wait=exc.details["retry_after"], detail=exc.message)
        elif isinstance(exc, EmailRequestsThrottled):
            exc = Throttled(wait=exc.details["retry_after"], detail=exc.message)
        return super().handle_exception(exc)


class PasswordResetRequestApi(_RateLimitedAnswers, _PublicAuthApi):
    @extend_schema(
        tags=["auth"],
        operation_id="auth_password_reset",
        request=EmailInputSerializer,
        responses={202: DetailOutputSerializer, 400: None, 429: None, 503: None},
        description="Emails a single-use reset link (valid `PASSWORD_RESET_TTL_SECONDS`) when "
        "an account has the address. The answer is the same either way.",
    )
    def post(self, request):
        serializer = EmailInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        recovery.password_reset_request(
            email=serializer.validated_data["email"], ip=sessions.request_client(request)[0]
        )
        return Response({"detail": RESET_SENT}, status=status.HTTP_202_ACCEPTED)


class PasswordResetConfirmApi(_PublicAuthApi):
    @extend_schema(
        tags=["auth"],
        operation_id="auth_password_reset_confirm",
        request=PasswordResetConfirmInputSerializer,
        responses={200: DetailOutputSerializer, 400: None},
        description="Sets the new password from the emailed link's `uid` and `token`. Every "
        "session and refresh token of the account ends. 400 `LINK_INVALID` for a used, "
        "expired or altered link.",
    )
    def post(self, request):
        serializer = PasswordResetConfirmInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        recovery.password_reset_complete(**serializer.validated_data, request=request)
        return Response({"detail": "Your password is changed; log in with it."})


class EmailVerifyApi(_PublicAuthApi):
    @extend_schema(
        tags=["auth"],
        operation_id="auth_email_verify",
        request=TokenInputSerializer,
        responses={200: DetailOutputSerializer, 400: None},
        description="Confirms the address from the emailed link's token.",
    )
    def post(self, request):
        serializer = TokenInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        recovery.email_verify(token=serializer.validated_data["token"])
        return Response({"detail": "Your email address is confirmed."})


class EmailVerificationResendApi(_RateLimitedAnswers, _PublicAuthApi):
    @extend_schema(
        tags=["auth"],
        operation_id="auth_email_verify_resend",
        request=EmailInputSerializer,
        responses={202: DetailOutputSerializer, 400: None, 429: None, 503: None},
        description="Sends a new confirmation link when an unverified account has the "
        "address. The answer is the same either way.",
    )
    def post(self, request):
        serializer = EmailInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        recovery.email_verification_request(
            email=serializer.validated_data["email"], ip=sessions.request_client(request)[0]
        )
        return Response({"detail": VERIFICATION_SENT}, status=status.HTTP_202_ACCEPTED)


class EmailChangeConfirmApi(_PublicAuthApi):
    @extend_schema(
        tags=["auth"],
        operation_id="auth_email_change_confirm",
        request=TokenInputSerializer,
        responses={200: UserOutputSerializer, 400: None, 409: None},
        description="Moves the account to the new address from the link sent there.",
    )
    def post(self, request):
        serializer = TokenInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = recovery.email_change_confirm(token=serializer.validated_data["token"])
        return Response(UserOutputSerializer(user).data)


class _AccountSecurityApi(_RateLimitedAnswers, APIView):
    permission_classes = [IsAuthenticated]


class OwnVerificationResendApi(_AccountSecurityApi):
    @extend_schema(
        tags=["users"],
        operation_id="users_email_verify_resend",
        request=None,
        responses={202: DetailOutputSerializer, 503: None},
        description="Sends the caller a new confirmation link (at most "
        "`ACCOUNT_EMAILS_PER_ADDRESS` an hour; nothing when already confirmed).",
    )
    def post(self, request):
        sent = recovery.email_verification_send(user=request.user)
        detail = (
            "A new confirmation link is on its way."
            if sent
            else "Nothing sent: the address is confirmed, or a link was sent very recently."
        )
        return Response({"detail": detail}, status=status.HTTP_202_ACCEPTED)


class PasswordChangeApi(_AccountSecurityApi):
    @extend_schema(
        tags=["users"],
        operation_id="users_password_change",
        request=PasswordChangeInputSerializer,
        responses={200: DetailOutputSerializer, 400: None, 403: None, 429: None},
        description="Needs the current password (403 `PASSWORD_INVALID`) and, with 2FA on, a "
        "code. Every other session and refresh token ends; this request's stays.",
    )
    def post(self, request):
        serializer = PasswordChangeInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = recovery.password_change(
            user=request.user,
            **serializer.validated_data,
            request=request,
            keep_session_id=sessions.request_auth_session_id(request),
        )
        if isinstance(request.successful_authenticator, SessionAuthentication):
            # A browser's own session (the site's scripts) must stay, as on the password
            # page: Django ends a session whose stored password hash is stale.
            update_session_auth_hash(request, user)
        return Response({"detail": "Your password is changed; other sessions are signed out."})


class EmailChangeApi(_AccountSecurityApi):
    @extend_schema(
        tags=["users"],
        operation_id="users_email_change",
        request=EmailChangeInputSerializer,
        responses={202: DetailOutputSerializer, 400: None, 403: None, 409: None, 429: None},
        description="Sends a confirmation link to the new address (the change happens when "
        "it is followed) and a notice to the current one.",
    )
    def post(self, request):
        serializer = EmailChangeInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        new_email = recovery.email_change_request(
            user=request.user, **serializer.validated_data, request=request
        )
        return Response(
            {"detail": f"Follow the link we sent to {new_email} to finish the change."},
            status=status.HTTP_202_ACCEPTED,
        )


class SessionListApi(_AccountSecurityApi):
    @extend_schema(
        tags=["users"],
        operation_id="users_sessions_list",
        responses=AuthSessionListOutputSerializer,
        description="Where the account is signed in: web sessions and API refresh-token "
        "families, with device, address and last use.",
    )
    def get(self, request):
        current = sessions.request_auth_session_id(request)
        rows = selectors.auth_session_list_for_user(user=request.user)
        data = AuthSessionOutputSerializer(
            rows, many=True, context={"current_session_id": current}
        ).data
        return Response({"results": data})


class SessionRevokeApi(_AccountSecurityApi):
    @extend_schema(
        tags=["users"],
        operation_id="users_sessions_revoke",
        responses={204: OpenApiResponse(description="Signed out."), 404: None},
        description="Ends one session: its next request is refused.",
    )
    def delete(self, request, session_id):
        sessions.auth_session_revoke(user=request.user, session_id=int(session_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class SessionRevokeOthersApi(_AccountSecurityApi):
    @extend_schema(
        tags=["users"],
        operation_id="users_sessions_revoke_others",
        request=None,
        responses=RevokedCountOutputSerializer,
        description="Ends every session but this request's.",
    )
    def post(self, request):
        revoked = sessions.auth_sessions_revoke_all(
            user=request.user, keep_session_id=sessions.request_auth_session_id(request)
        )
        return Response({"revoked": revoked})


@extend_schema_view(
    get=extend_schema(
        tags=["users"],
        operation_id="users_login_history",
        description="Every login attempt on the account, newest first: time, address, device, "
        "and whether it succeeded or why not.",
    )
)
class LoginHistoryApi(_RateLimitedAnswers, ListAPIView):
    permission_classes = [IsAuthenticated]
    serializer_class = LoginEventOutputSerializer
    queryset = LoginEvent.objects.none()  # for the schema; requests use get_queryset

    def get_queryset(self):
        return selectors.login_history_for_user(user=self.request.user)
