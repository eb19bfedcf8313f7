"""Forms of the account pages. They validate input; the writes stay in accounts.services."""

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.validators import UnicodeUsernameValidator


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
