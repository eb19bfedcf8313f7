from django.urls import re_path

from accounts.api import views
from exchange_site.urlpaths import path_with_optional_slash as route

auth_urlpatterns = [
    route("register", views.RegisterApi.as_view(), "auth-register"),
    route("login", views.LoginApi.as_view(), "auth-login"),
    route("refresh", views.RefreshApi.as_view(), "auth-refresh"),
    route("logout", views.LogoutApi.as_view(), "auth-logout"),
]

users_urlpatterns = [
    route("profile", views.ProfileApi.as_view(), "users-profile"),
    route("2fa", views.TwoFactorStatusApi.as_view(), "users-2fa-status"),
    route("2fa/enrol", views.TwoFactorEnrolApi.as_view(), "users-2fa-enrol"),
    route("2fa/confirm", views.TwoFactorConfirmApi.as_view(), "users-2fa-confirm"),
    route("2fa/disable", views.TwoFactorDisableApi.as_view(), "users-2fa-disable"),
    route("2fa/recovery-codes", views.TwoFactorRecoveryCodesApi.as_view(), "users-2fa-recovery"),
]

# Mounted at /api/v1/.
api_keys_urlpatterns = [
    route("api-keys", views.ApiKeyListCreateApi.as_view(), "api-keys"),
    re_path(
        r"^api-keys/(?P<key_id>[0-9]{1,18})/?$", views.ApiKeyRevokeApi.as_view(), name="api-key"
    ),
]
