from django.urls import re_path

from accounts.api import recovery_views, views
from exchange_site.urlpaths import path_with_optional_slash as route

auth_urlpatterns = [
    route("register", views.RegisterApi.as_view(), "auth-register"),
    route("login", views.LoginApi.as_view(), "auth-login"),
    route("refresh", views.RefreshApi.as_view(), "auth-refresh"),
    route("logout", views.LogoutApi.as_view(), "auth-logout"),
    route(
        "password/reset", recovery_views.PasswordResetRequestApi.as_view(), "auth-password-reset"
    ),
    route(
        "password/reset/confirm",
        recovery_views.PasswordResetConfirmApi.as_view(),
        "auth-password-reset-confirm",
    ),
    route("email/verify", recovery_views.EmailVerifyApi.as_view(), "auth-email-verify"),
    route(
        "email/verify/resend",
        recovery_views.EmailVerificationResendApi.as_view(),
        "auth-email-verify-resend",
    ),
    route(
        "email/change/confirm",
        recovery_views.EmailChangeConfirmApi.as_view(),
        "auth-email-change-confirm",
    ),
]

users_urlpatterns = [
    route("profile", views.ProfileApi.as_view(), "users-profile"),
    route("2fa", views.TwoFactorStatusApi.as_view(), "users-2fa-status"),
    route("2fa/enrol", views.TwoFactorEnrolApi.as_view(), "users-2fa-enrol"),
    route("2fa/confirm", views.TwoFactorConfirmApi.as_view(), "users-2fa-confirm"),
    route("2fa/disable", views.TwoFactorDisableApi.as_view(), "users-2fa-disable"),
    route("2fa/recovery-codes", views.TwoFactorRecoveryCodesApi.as_view(), "users-2fa-recovery"),
    route(
        "email/verify/resend",
        recovery_views.OwnVerificationResendApi.as_view(),
        "users-email-verify-resend",
    ),
    route("email", recovery_views.EmailChangeApi.as_view(), "users-email-change"),
    route("password", recovery_views.PasswordChangeApi.as_view(), "users-password-change"),
    route("sessions", recovery_views.SessionListApi.as_view(), "users-sessions"),
    route(
        "sessions/revoke-others",
        recovery_views.SessionRevokeOthersApi.as_view(),
        "users-sessions-revoke-others",
    ),
    re_path(
        r"^sessions/(?P<session_id>[0-9]{1,18})/?$",
        recovery_views.SessionRevokeApi.as_view(),
        name="users-session",
    ),
    route("login-history", recovery_views.LoginHistoryApi.as_view(), "users-login-history"),
]

# Mounted at /api/v1/.
api_keys_urlpatterns = [
    route("api-keys", views.ApiKeyListCreateApi.as_view(), "api-keys"),
    re_path(
        r"^api-keys/(?P<key_id>[0-9]{1,18})/?$", views.ApiKeyRevokeApi.as_view(), name="api-key"
    ),
]
