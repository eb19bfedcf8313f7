from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone


def normalize_email(email: str) -> str:
    """Emails compare case-insensitively everywhere, so they are stored lower-cased."""
    return email.strip().lower()


class UserManager(BaseUserManager):
    use_in_migrations = True

    def get_by_natural_key(self, username):
        return self.get(email=normalize_email(username))

    def _create_user(self, email, username, password, **extra_fields):
        if not email:
            raise ValueError("An email address is required.")
        if not username:
            raise ValueError("A username is required.")
        user = self.model(email=normalize_email(email), username=username, **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, username, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, username, password, **extra_fields)

    def create_superuser(self, email, username, password=None, **extra_fields):
        extra_fields["is_staff"] = True
        extra_fields["is_superuser"] = True
        return self._create_user(email, username, password, **extra_fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A person (or a bot) with an account. Logs in with email or username."""

    email = models.EmailField(unique=True)
    username = models.CharField(
        max_length=32,
        unique=True,
        validators=[UnicodeUsernameValidator()],
        help_text="Up to 32 characters: letters, digits and @/./+/-/_ only.",
    )
    full_name = models.CharField(max_length=150, blank=True)
    is_verified = models.BooleanField(
        default=False,
        help_text="The email address is confirmed (by its emailed link); needed to withdraw.",
    )
    email_verified_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, help_text="Can log into the admin site.")
    is_system = models.BooleanField(
        default=False,
        help_text="An internal account of the exchange (the fee account); cannot log in.",
    )
    frozen_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Set by an operator: a frozen user cannot log in, trade or withdraw.",
    )
    frozen_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["username"]

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique"),
            models.UniqueConstraint(Lower("username"), name="accounts_user_username_ci_unique"),
        ]

    def __str__(self):
        return self.email

    def clean(self):
        super().clean()
        self.email = normalize_email(self.email)

    def get_full_name(self):
        return self.full_name or self.username

    def get_short_name(self):
        return self.username

    @property
    def is_frozen(self) -> bool:
        return self.frozen_at is not None


class ApiKey(models.Model):
    """A bot's credential: the public ``key`` travels in ``X-MBX-APIKEY``; the secret signs
    requests (HMAC-SHA256). The secret is kept only encrypted with a key from the settings,
    because the server must recompute signatures and so cannot store a one-way hash."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_keys")
    label = models.CharField(max_length=64)
    key = models.CharField(max_length=64, unique=True)
    secret_encrypted = models.TextField(help_text="The secret, encrypted at rest.")
    can_read = models.BooleanField(default=True)
    can_trade = models.BooleanField(default=False)
    ip_allowlist = models.JSONField(
        default=list,
        blank=True,
        help_text="IP addresses or networks (CIDR) the key may be used from; empty = any.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"
        verbose_name_plural = "API keys"
        ordering = ["-id"]
        indexes = [models.Index(fields=["user", "-id"], name="accounts_apikey_user_idx")]

    def __str__(self):
        return f"{self.label} ({self.key[:8]}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class OperatorAction(models.Model):
    """The audit trail of the operator console: who did what to which object, when and why.
    Append-only; written by the services that carry out operator actions."""

    actor = models.ForeignKey(
        User, on_delete=models.PROTECT, related_name="operator_actions", null=True
    )
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=64, help_text="app_label.model of the target.")
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=200, blank=True)
    reason = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name_plural = "operator audit trail"
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["target_type", "target_id"], name="accounts_opaction_target_idx")
        ]

    def __str__(self):
        return f"{self.action} {self.target_repr} by {self.actor_id}"


class TwoFactorDevice(models.Model):
    """A user's TOTP authenticator (RFC 6238: 6 digits, 30 s steps, SHA-1, as every
    authenticator app expects). Created by enrolment, enabled once the user proves the app
    works by entering a first code; one per user.

    The secret is kept only encrypted (``accounts.crypto``): the server must recompute codes,
    so a one-way hash would not do, the same reason as for API-key secrets."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="two_factor")
    secret_encrypted = models.TextField(help_text="The TOTP secret, encrypted at rest.")
    confirmed_at = models.DateTimeField(
        null=True, blank=True, help_text="When enabled; empty while the enrolment is pending."
    )
    last_used_step = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="Time step (unix time // 30) of the last accepted code: a code is accepted "
        "once, and never one older than the last.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "two-factor device"
        verbose_name_plural = "two-factor devices"

    def __str__(self):
        return f"2FA of {self.user_id} ({'on' if self.is_enabled else 'pending'})"

    @property
    def is_enabled(self) -> bool:
        return self.confirmed_at is not None


class RecoveryCode(models.Model):
    """A one-time code that stands in for the authenticator when it is lost. Only its
    SHA-256 is stored: the codes are random with 80 bits of entropy, so a salted slow hash
    would add nothing but time."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="recovery_codes")
    code_hash = models.CharField(max_length=64)
    used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "code_hash"], name="accounts_recoverycode_user_hash_unique"
            )
        ]

    def __str__(self):
        return f"recovery code {self.pk} of {self.user_id}"


class AuthSession(models.Model):
    """One place an account is signed in: a web session (the browser's session cookie) or a
    refresh-token family (every refresh token rotated from one API login carries its id as
    the ``sid`` claim, and so do their access tokens).

    Revoking it ends that place at its next request: the session middleware logs a revoked
    web session out, the JWT authentication refuses a revoked family's access tokens and the
    refresh endpoint its refresh tokens."""

    class Kind(models.TextChoices):
        WEB = "web", "Web session"
        API = "api", "API (refresh token)"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="auth_sessions")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    session_key = models.CharField(
        max_length=40, blank=True, help_text="The Django session of a web session."
    )
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=400, blank=True)
    device = models.CharField(
        max_length=100,
        blank=True,
        help_text="Browser and system, e.g. “Chrome on Windows”, read from the user agent.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=32, blank=True)

    class Meta:
        verbose_name = "sign-in session"
        verbose_name_plural = "sign-in sessions"
        ordering = ["-last_used_at"]
        indexes = [
            models.Index(
                fields=["user", "-last_used_at"],
                name="accounts_authsession_live_idx",
                condition=models.Q(revoked_at__isnull=True),
            )
        ]

    def __str__(self):
        return f"{self.kind} session {self.pk} of {self.user_id}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class LoginEvent(models.Model):
    """One login attempt, successful or not: the account's login history, and the database
    record the login lockout falls back on while the cache (Redis) is down.

    ``account_key`` is a hash of what the lockout counts the attempt against (the account,
    or the login text when it names none), so an unknown login is counted without storing it.
    """

    class Outcome(models.TextChoices):
        SUCCESS = "success", "Logged in"
        SIGNUP = "signup", "Signed up"
        BAD_CREDENTIALS = "bad_credentials", "Wrong login or password"
        OTP_REQUIRED = "otp_required", "Password right, waiting for the 2FA code"
        OTP_INVALID = "otp_invalid", "Wrong 2FA code"
        LOCKED = "locked", "Locked out after failures"
        FROZEN = "frozen", "Account frozen"
        UNAVAILABLE = "unavailable", "Refused: checks unavailable"

    user = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="login_events", null=True, blank=True
    )
    account_key = models.CharField(max_length=64)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=400, blank=True)
    device = models.CharField(max_length=100, blank=True)
    channel = models.CharField(max_length=8, help_text="web, api or admin.")
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "login attempt"
        verbose_name_plural = "login attempts"
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["user", "-id"], name="accounts_loginevent_user_idx"),
            models.Index(fields=["account_key", "created_at"], name="accounts_loginevent_acct_idx"),
            models.Index(fields=["ip", "created_at"], name="accounts_loginevent_ip_idx"),
        ]

    def __str__(self):
        return f"{self.outcome} for {self.user_id or '?'} at {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def succeeded(self) -> bool:
        return self.outcome in (self.Outcome.SUCCESS, self.Outcome.SIGNUP)
