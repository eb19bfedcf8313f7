"""Account pages for email verification, password reset and change, email change, and the
sessions and login history. Forms validate, ``accounts.recovery`` and ``accounts.sessions``
write; these only route results to messages and templates."""

from django.contrib import messages
from django.contrib.auth import logout, update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import INTERNAL_RESET_SESSION_TOKEN, PasswordResetConfirmView
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from accounts import recovery, selectors, sessions
from accounts.api.recovery_views import RESET_SENT, VERIFICATION_SENT
from accounts.exceptions import LinkInvalid
from accounts.forms import (
    EmailChangeForm,
    EmailRequestForm,
    PasswordChangeForm,
    PasswordResetSetForm,
)
from exchange_site.exceptions import ExchangeError

LOGIN_HISTORY_SHOWN = 50


def _form_errors(form, exc: Exception, *, password_field: str = "new_password1") -> None:
    """Put a service's refusal on the form: validators on the password field, the rest on
    the field the error names, or on the form."""
    if isinstance(exc, ValidationError):
        for field, errors in exc.message_dict.items():
            target = password_field if field == "new_password" else field
            form.add_error(target if target in form.fields else None, errors)
        return
    field = (getattr(exc, "details", None) or {}).get("field")
    form.add_error(field if field in form.fields else None, exc.message)


def _link_invalid(request, *, what: str):
    return render(request, "accounts/link_invalid.html", {"what": what}, status=400)


# --- Email verification ------------------------------------------------------------------


@never_cache
@require_http_methods(["GET"])
def verify_email(request, token: str):
    """The emailed confirmation link. Confirming twice is harmless, so a GET does it."""
    try:
        recovery.email_verify(token=token)
    except LinkInvalid:
        return _link_invalid(request, what="confirmation")
    messages.success(request, "Your email address is confirmed.")
    return redirect("profile" if request.user.is_authenticated else "login")


@require_http_methods(["GET", "POST"])
def verification_resend(request):
    """A signed-in user asks for their own link (a button on the profile); anyone else types
    the address and gets the same answer whether or not it has an account."""
    if request.user.is_authenticated:
        if request.method == "POST":
            try:
                sent = recovery.email_verification_send(user=request.user)
            except ExchangeError as exc:
                messages.error(request, exc.message)
            else:
                if sent:
                    messages.success(request, f"A new link is on its way to {request.user.email}.")
                else:
                    messages.info(request, "Nothing sent: confirmed already, or sent just now.")
        return redirect("profile")
    form = EmailRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            recovery.email_verification_request(
                email=form.cleaned_data["email"], ip=sessions.request_client(request)[0]
            )
        except ExchangeError as exc:
            form.add_error(None, exc.message)
        else:
            return render(request, "accounts/email_sent.html", {"detail": VERIFICATION_SENT})
    return render(
        request,
        "accounts/email_request.html",
        {"form": form, "title": "Resend the confirmation link", "button": "Send the link"},
    )


# --- Password reset ----------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def password_reset_request(request):
    form = EmailRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            recovery.password_reset_request(
                email=form.cleaned_data["email"], ip=sessions.request_client(request)[0]
            )
        except ExchangeError as exc:
            form.add_error(None, exc.message)
        else:
            return render(request, "accounts/email_sent.html", {"detail": RESET_SENT})
    return render(
        request,
        "accounts/email_request.html",
        {
            "form": form,
            "title": "Reset your password",
            "intro": "Type your account's email address; we will send it a link to choose a "
            "new password.",
            "button": "Send the reset link",
        },
    )


class PasswordResetSetView(PasswordResetConfirmView):
    """Django's link handling (the token moves from the URL into the session before the
    form shows, so it never leaks in a Referer); the reset itself is
    ``recovery.password_reset_complete``."""

    template_name = "accounts/password_reset_set.html"
    form_class = PasswordResetSetForm
    success_url = reverse_lazy("login")

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs.pop("user", None)
        return kwargs

    def form_valid(self, form):
        token = self.request.session.get(INTERNAL_RESET_SESSION_TOKEN, "")
        try:
            user = recovery.password_reset_complete(
                uid=self.kwargs["uidb64"],
                token=token,
                new_password=form.cleaned_data["new_password1"],
                request=self.request,
            )
        except LinkInvalid:
            return _link_invalid(self.request, what="password reset")
        except ValidationError as exc:
            _form_errors(form, exc)
            return self.form_invalid(form)
        if self.request.user.pk == user.pk:
            # The reset just deleted this browser's session with the account's others:
            # saving it again would fail (SessionInterrupted, a 400), so end it here.
            logout(self.request)
        else:
            self.request.session.pop(INTERNAL_RESET_SESSION_TOKEN, None)
        messages.success(
            self.request, "Your password is changed and every session signed out. Log in."
        )
        return redirect(self.success_url)


password_reset_set = PasswordResetSetView.as_view()


# --- Changes from the profile ------------------------------------------------------------


@sensitive_post_parameters("current_password", "new_password1", "new_password2", "otp_code")
@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def password_change(request):
    two_factor = selectors.two_factor_is_enabled(user=request.user)
    form = PasswordChangeForm(request.POST or None, two_factor=two_factor)
    if request.method == "POST" and form.is_valid():
        try:
            user = recovery.password_change(
                user=request.user,
                current_password=form.cleaned_data["current_password"],
                new_password=form.cleaned_data["new_password1"],
                otp_code=form.cleaned_data.get("otp_code"),
                request=request,
                keep_session_id=sessions.request_auth_session_id(request),
            )
        except (ExchangeError, ValidationError) as exc:
            _form_errors(form, exc, password_field="new_password1")
        else:
            # This browser stays logged in under the new password; the others are out.
            update_session_auth_hash(request, user)
            messages.success(request, "Password changed. Your other sessions are signed out.")
            return redirect("profile")
    return render(request, "accounts/password_change.html", {"form": form})


@sensitive_post_parameters("password", "otp_code")
@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def email_change(request):
    two_factor = selectors.two_factor_is_enabled(user=request.user)
    form = EmailChangeForm(request.POST or None, two_factor=two_factor)
    if request.method == "POST" and form.is_valid():
        try:
            new_email = recovery.email_change_request(
                user=request.user,
                new_email=form.cleaned_data["new_email"],
                password=form.cleaned_data["password"],
                otp_code=form.cleaned_data.get("otp_code"),
                request=request,
            )
        except (ExchangeError, ValidationError) as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, f"Follow the link we sent to {new_email} to finish.")
            return redirect("profile")
    return render(request, "accounts/email_change.html", {"form": form})


@never_cache
@require_http_methods(["GET", "POST"])
def email_change_confirm(request, token: str):
    """The link sent to the new address. A GET only asks: a mail scanner that fetches the
    link must not move the account; the button's POST does."""
    if request.method == "POST":
        try:
            user = recovery.email_change_confirm(token=token)
        except LinkInvalid:
            return _link_invalid(request, what="email change")
        except ExchangeError as exc:
            messages.error(request, exc.message)
            return redirect("profile" if request.user.is_authenticated else "login")
        messages.success(request, f"Your account's email address is now {user.email}.")
        return redirect("profile" if request.user.is_authenticated else "login")
    return render(request, "accounts/email_change_confirm.html")


# --- Sessions and login history ----------------------------------------------------------


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def sessions_page(request):
    current = sessions.request_auth_session_id(request)
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "revoke_others":
            count = sessions.auth_sessions_revoke_all(user=request.user, keep_session_id=current)
            messages.success(request, f"Signed out {count} other session{'s' * (count != 1)}.")
        elif action == "revoke" and (request.POST.get("session_id") or "").isdigit():
            session_id = int(request.POST["session_id"])
            try:
                sessions.auth_session_revoke(user=request.user, session_id=session_id)
            except ExchangeError as exc:
                messages.error(request, exc.message)
            else:
                if session_id == current:
                    logout(request)
                    return redirect("login")
                messages.success(request, "The session is signed out.")
        return redirect("sessions")
    context = {
        "sessions": selectors.auth_session_list_for_user(user=request.user),
        "current_session_id": current,
        "history": selectors.login_history_for_user(user=request.user)[:LOGIN_HISTORY_SHOWN],
    }
    return render(request, "accounts/sessions.html", context)
