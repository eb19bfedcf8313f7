from django.urls import path

from accounts import recovery_views, views

# Pages, mounted at /accounts/.
urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("login/", views.login_view, name="login"),
    path("login/code/", views.login_code, name="login-code"),
    path("logout/", views.logout_view, name="logout"),
    path("profile/", views.profile, name="profile"),
    path("profile/2fa/", views.profile_two_factor, name="profile-2fa"),
    path("verify-email/resend/", recovery_views.verification_resend, name="verify-email-resend"),
    path("verify-email/<str:token>/", recovery_views.verify_email, name="verify-email"),
    path("password/reset/", recovery_views.password_reset_request, name="password-reset"),
    path(
        "password/reset/<uidb64>/<token>/",
        recovery_views.password_reset_set,
        name="password-reset-confirm",
    ),
    path("password/change/", recovery_views.password_change, name="password-change"),
    path("email/change/", recovery_views.email_change, name="email-change"),
    path(
        "email/confirm/<str:token>/",
        recovery_views.email_change_confirm,
        name="email-change-confirm",
    ),
    path("sessions/", recovery_views.sessions_page, name="sessions"),
]
