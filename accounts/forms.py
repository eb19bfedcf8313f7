"""Forms of the account pages. They validate input; the writes stay in accounts.services."""

from django import forms
from django.contrib.auth import authenticate
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.validators import UnicodeUsernameValidator

from accounts.exceptions import OtpRequiredLogin


class NoSuffixMixin:
    """Labels without Django's trailing colon, as everywhere else on the pages."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class LoginForm(NoSuffixMixin, AuthenticationForm):
    """Django's login form, labelled for the backend that takes an email or a username."""

    username = forms.CharField(
        label="Email or username",
        max_length=254,
        widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "username"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Set when the password was right and the account asks for its second factor: the
        # view then takes the user to the code step instead of logging in.
        self.otp_user = None

    def clean(self):
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is not None and password:
            try:
                self.user_cache = authenticate(self.request, username=username, password=password)
            except OtpRequiredLogin as exc:
                self.otp_user = exc.user
                return self.cleaned_data
            if self.user_cache is None:
                raise self.get_invalid_login_error()
            self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data


def otp_code_field(**kwargs) -> forms.CharField:
    attrs = {"autocomplete": "one-time-code", "inputmode": "numeric", "spellcheck": "false"}
    return forms.CharField(
        label=kwargs.pop("label", "Authentication code"),
        max_length=64,
        help_text=kwargs.pop(
            "help_text", "The 6-digit code from your authenticator app, or a recovery code."
        ),
        widget=forms.TextInput(attrs=attrs),
        **kwargs,
    )


class OtpCodeForm(NoSuffixMixin, forms.Form):
    otp_code = otp_code_field()

    def __init__(self, *args, autofocus: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if autofocus:
            self.fields["otp_code"].widget.attrs["autofocus"] = True


class TwoFactorDisableForm(NoSuffixMixin, forms.Form):
    password = forms.CharField(
        label="Password",
        strip=False,
        max_length=128,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    otp_code = otp_code_field()


class SignupForm(NoSuffixMixin, forms.Form):
    email = forms.EmailField(
        label="Email", max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )
    username = forms.CharField(
        label="Username",
        min_length=3,
        max_length=32,
        validators=[UnicodeUsernameValidator()],
        help_text="3 to 32 characters: letters, digits and @ . + - _",
        widget=forms.TextInput(attrs={"autocomplete": "username"}),
    )
    full_name = forms.CharField(label="Full name", max_length=150, required=False)
    password1 = forms.CharField(
        label="Password",
        strip=False,
        max_length=128,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    password2 = forms.CharField(
        label="Repeat password",
        strip=False,
        max_length=128,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self):
        data = super().clean()
        if data.get("password1") and data.get("password2") != data.get("password1"):
            self.add_error("password2", "The two passwords differ.")
        return data


class ProfileForm(NoSuffixMixin, forms.Form):
    username = forms.CharField(
        label="Username", min_length=3, max_length=32, validators=[UnicodeUsernameValidator()]
    )
    full_name = forms.CharField(label="Full name", max_length=150, required=False)


# --- Email verification, password recovery, credential changes -----------------------------


def _new_password_fields(form: forms.Form) -> None:
    form.fields["new_password1"] = forms.CharField(
        label="New password",
        strip=False,
        max_length=128,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 8 characters; not a common or all-digit password, nor one like "
        "your email or username.",
    )
    form.fields["new_password2"] = forms.CharField(
        label="New password again",
        strip=False,
        max_length=128,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )


class _NewPasswordMixin:
    def clean(self):
        cleaned = super().clean()
        first, second = cleaned.get("new_password1"), cleaned.get("new_password2")
        if first and second and first != second:
            self.add_error("new_password2", "The two passwords differ.")
        return cleaned


class EmailRequestForm(NoSuffixMixin, forms.Form):
    email = forms.EmailField(
        label="Email",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
    )


class PasswordResetSetForm(_NewPasswordMixin, NoSuffixMixin, forms.Form):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _new_password_fields(self)


class PasswordChangeForm(_NewPasswordMixin, NoSuffixMixin, forms.Form):
    current_password = forms.CharField(
        label="Current password",
        strip=False,
        max_length=128,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, *args, two_factor: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        _new_password_fields(self)
        if two_factor:
            self.fields["otp_code"] = otp_code_field()


class EmailChangeForm(NoSuffixMixin, forms.Form):
    new_email = forms.EmailField(
        label="New email", max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )
    password = forms.CharField(
        label="Password",
        strip=False,
        max_length=128,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, *args, two_factor: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if two_factor:
            self.fields["otp_code"] = otp_code_field()
