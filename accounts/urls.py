from django.urls import path

from accounts import views

# Pages, mounted at /accounts/.
urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("login/", views.login_view, name="login"),
    path("login/code/", views.login_code, name="login-code"),
    path("logout/", views.logout_view, name="logout"),
    path("profile/", views.profile, name="profile"),
    path("profile/2fa/", views.profile_two_factor, name="profile-2fa"),
]
