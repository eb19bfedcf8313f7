"""Account pages: sign up, log in, log out and the profile (with the user's API keys)."""

from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from accounts import services
from accounts.exceptions import EmailTaken, UsernameTaken
from accounts.forms import LoginForm, ProfileForm, SignupForm


def _safe_next(request, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


def _add_service_errors(form, exc: Exception) -> None:
    """Put a service's refusal on the form field it concerns."""
    if isinstance(exc, EmailTaken):
        form.add_error("email", exc.message)
    elif isinstance(exc, UsernameTaken):
        form.add_error("username", exc.message)
    elif isinstance(exc, ValidationError):
        for field, errors in exc.message_dict.items():
            form.add_error("password1" if field == "password" else None, errors)


@require_http_methods(["GET", "POST"])
def signup(request):
    if request.user.is_authenticated:
        return redirect("wallet")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.user_register(
                email=form.cleaned_data["email"],
                username=form.cleaned_data["username"],
                password=form.cleaned_data["password1"],
                full_name=form.cleaned_data["full_name"],
            )
        except (EmailTaken, UsernameTaken, ValidationError) as exc:
            _add_service_errors(form, exc)
        else:
            login(request, user, backend="accounts.backends.EmailOrUsernameBackend")
            messages.success(request, "Welcome! Fund your wallet with a demo deposit to trade.")
            return redirect(_safe_next(request, "/wallet/"))
    return render(request, "accounts/signup.html", {"form": form})


class ExchangeLoginView(LoginView):
    template_name = "accounts/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True


login_view = ExchangeLoginView.as_view()


@require_http_methods(["GET", "POST"])
def logout_view(request):
    """GET asks for confirmation; only a POST (with its CSRF token) logs out."""
    if request.method == "POST":
        logout(request)
        messages.info(request, "You are logged out.")
        return redirect("home")
    return render(request, "accounts/logout.html")


@login_required
@require_http_methods(["GET", "POST"])
def profile(request):
    user = request.user
    initial = {"username": user.username, "full_name": user.full_name}
    form = ProfileForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.user_profile_update(
                user=user,
                username=form.cleaned_data["username"],
                full_name=form.cleaned_data["full_name"],
            )
        except UsernameTaken as exc:
            form.add_error("username", exc.message)
        else:
            messages.success(request, "Profile saved.")
            return redirect("profile")
    return render(request, "accounts/profile.html", {"form": form})
