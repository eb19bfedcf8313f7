"""Account pages: sign up, log in (with a second step for two-factor authentication), log out
and the profile (with the user's API keys and two-factor authentication)."""

import time

from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from accounts import lockout, selectors, services, sessions, twofactor
from accounts.exceptions import (
    EmailTaken,
    LoginRateLimited,
    TwoFactorUnavailable,
    UsernameTaken,
)
from accounts.forms import LoginForm, OtpCodeForm, ProfileForm, SignupForm, TwoFactorDisableForm
from accounts.models import LoginEvent, User
from exchange_site.exceptions import ExchangeError
from exchange_site.throttling import client_address

BACKEND = "accounts.backends.EmailOrUsernameBackend"
# Between the password and the code: who, since when, and where to go after.
TWO_FACTOR_PENDING = "two_factor_login"
TWO_FACTOR_PENDING_SECONDS = 300


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
            sessions.login_event_record(
                user=user,
                account=lockout.login_account_ident(login="", user=user),
                request=request,
                outcome=LoginEvent.Outcome.SIGNUP,
            )
            login(request, user, backend=BACKEND)
            messages.success(
                request,
                f"Welcome! We sent a link to {user.email}: follow it to confirm your address.",
            )
            return redirect(_safe_next(request, "/wallet/"))
    return render(request, "accounts/signup.html", {"form": form})


class ExchangeLoginView(LoginView):
    template_name = "accounts/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True

    def form_valid(self, form):
        if form.otp_user is None:
            return super().form_valid(form)
        # The password was right; nobody is logged in until the code is too.
        self.request.session[TWO_FACTOR_PENDING] = {
            "user_id": form.otp_user.pk,
            "at": time.time(),
            "next": self.get_success_url(),
        }
        return redirect("login-code")


login_view = ExchangeLoginView.as_view()


def _code_outcome(exc: ExchangeError) -> str:
    if isinstance(exc, LoginRateLimited):
        return LoginEvent.Outcome.LOCKED
    if isinstance(exc, TwoFactorUnavailable):
        return LoginEvent.Outcome.UNAVAILABLE
    return LoginEvent.Outcome.OTP_INVALID


@sensitive_post_parameters("otp_code")
@never_cache
@require_http_methods(["GET", "POST"])
def login_code(request):
    """The login's second step: the code from the authenticator app (or a recovery code) for
    the account whose password was just given. Wrong codes count as failed logins."""
    pending = request.session.get(TWO_FACTOR_PENDING) or {}
    user = None
    if time.time() - pending.get("at", 0) < TWO_FACTOR_PENDING_SECONDS:
        user = User.objects.filter(pk=pending.get("user_id"), is_active=True).first()
    if user is None or user.is_frozen:
        request.session.pop(TWO_FACTOR_PENDING, None)
        messages.info(request, "Please log in again.")
        return redirect("login")
    form = OtpCodeForm(request.POST or None, autofocus=True)
    if request.method == "POST" and form.is_valid():
        account = lockout.login_account_ident(login="", user=user)
        try:
            twofactor.two_factor_require(
                user=user, otp_code=form.cleaned_data["otp_code"], ip=client_address(request)
            )
        except ExchangeError as exc:
            sessions.login_event_record(
                user=user, account=account, request=request, outcome=_code_outcome(exc)
            )
            form.add_error("otp_code", exc.message)
        else:
            request.session.pop(TWO_FACTOR_PENDING, None)
            sessions.login_success_record(user=user, account=account, request=request)
            login(request, user, backend=BACKEND)
            return redirect(pending.get("next") or "/")
    return render(request, "accounts/login_code.html", {"form": form})


@require_http_methods(["GET", "POST"])
def logout_view(request):
    """GET asks for confirmation; only a POST (with its CSRF token) logs out."""
    if request.method == "POST":
        logout(request)
        messages.info(request, "You are logged out.")
        return redirect("home")
    return render(request, "accounts/logout.html")


def _render_profile(request, *, form=None, **two_factor_context):
    user = request.user
    if form is None:
        form = ProfileForm(initial={"username": user.username, "full_name": user.full_name})
    status = selectors.two_factor_status(user=user)
    context = {
        "form": form,
        "two_factor": status,
        "otp_form": two_factor_context.pop("otp_form", None) or OtpCodeForm(prefix="confirm"),
        "regenerate_form": two_factor_context.pop("regenerate_form", None)
        or OtpCodeForm(prefix="regenerate"),
        "disable_form": two_factor_context.pop("disable_form", None)
        or TwoFactorDisableForm(prefix="disable"),
        **two_factor_context,
    }
    if status["pending"]:
        pending = twofactor.two_factor_pending_secret(user=user)
        if pending is not None:
            secret, uri = pending
            context["enrolment"] = {
                "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
                "qr_code": twofactor.qr_code_data_uri(uri),
            }
    return render(request, "accounts/profile.html", context)


# never_cache: the page shows a pending enrolment's key and new recovery codes.
@never_cache
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
    return _render_profile(request, form=form)


@sensitive_post_parameters(
    "confirm-otp_code", "regenerate-otp_code", "disable-otp_code", "disable-password"
)
@never_cache
def _recovery_codes_form(request, prefix: str, form_name: str, service, *, done: str):
    """A code form whose service answers with new recovery codes (confirm, regenerate): the
    form again with the error, or the profile showing the codes this once."""
    form = OtpCodeForm(request.POST, prefix=prefix)
    if not form.is_valid():
        return _render_profile(request, **{form_name: form})
    try:
        codes = service(
            user=request.user, otp_code=form.cleaned_data["otp_code"], ip=client_address(request)
        )
    except ExchangeError as exc:
        form.add_error("otp_code", exc.message)
        return _render_profile(request, **{form_name: form})
    messages.success(request, done)
    return _render_profile(request, recovery_codes=codes)


@login_required
@require_POST
def profile_two_factor(request):
    """The profile's two-factor forms (``action``: begin, confirm, regenerate, disable). New
    recovery codes are rendered in this answer only, never stored to show again."""
    user = request.user
    action = request.POST.get("action")
    ip = client_address(request)
    try:
        if action == "begin":
            twofactor.two_factor_enrol_begin(user=user)
            return redirect(reverse("profile") + "#two-factor")
        if action == "confirm":
            return _recovery_codes_form(
                request,
                "confirm",
                "otp_form",
                twofactor.two_factor_enrol_confirm,
                done="Two-factor authentication is on.",
            )
        if action == "regenerate":
            return _recovery_codes_form(
                request,
                "regenerate",
                "regenerate_form",
                twofactor.two_factor_recovery_codes_regenerate,
                done="New recovery codes made; the old ones no longer work.",
            )
        if action == "disable":
            disable_form = TwoFactorDisableForm(request.POST, prefix="disable")
            if not disable_form.is_valid():
                return _render_profile(request, disable_form=disable_form)
            try:
                twofactor.two_factor_disable(user=user, **disable_form.cleaned_data, ip=ip)
            except ExchangeError as exc:
                field = exc.details.get("field", "otp_code")
                disable_form.add_error(field if field in disable_form.fields else None, exc.message)
                return _render_profile(request, disable_form=disable_form)
            messages.success(request, "Two-factor authentication is off.")
            return redirect(reverse("profile") + "#two-factor")
    except ExchangeError as exc:
        messages.error(request, exc.message)
        return redirect(reverse("profile") + "#two-factor")
    messages.error(request, "Unknown action.")
    return redirect(reverse("profile") + "#two-factor")
