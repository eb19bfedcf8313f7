from django.core.exceptions import ValidationError

from exchange_site.exceptions import (
    ConflictError,
    ExchangeError,
    NotFoundError,
    ServiceUnavailableError,
)


class EmailTaken(ConflictError):
    code = "EMAIL_TAKEN"
    message = "An account with this email already exists."


class UsernameTaken(ConflictError):
    code = "USERNAME_TAKEN"
    message = "This username is taken."


class InvalidCredentials(ExchangeError):
    code = "INVALID_CREDENTIALS"
    status = 401
    # One message for an unknown login and a wrong password: no account enumeration.
    message = "Invalid login or password."


class InvalidToken(ExchangeError):
    code = "TOKEN_INVALID"
    status = 401
    message = "The token is invalid, expired or revoked."


class TokenOwnerMismatch(ExchangeError):
    code = "PERMISSION_DENIED"
    status = 403
    message = "This refresh token belongs to another user."


class AccountFrozen(ExchangeError):
    code = "ACCOUNT_FROZEN"
    status = 403
    message = "This account is frozen by the exchange; contact support."


class FrozenAccountLogin(ValidationError):
    """Raised by the login backend when the password is right but the account is frozen.

    A ``ValidationError`` so that every ``AuthenticationForm`` (admin, pages) shows it as the
    form's error; ``auth_login`` turns it into ``AccountFrozen`` (403) for the API.
    """

    def __init__(self):
        super().__init__(AccountFrozen.message, code="account_frozen")


class ApiKeyNotFound(ExchangeError):
    code = "API_KEY_NOT_FOUND"
    status = 404
    message = "API key not found."


class ApiKeyLimit(ExchangeError):
    code = "API_KEY_LIMIT"
    status = 422
    message = "Too many API keys; revoke one first."


class ApiKeyInvalid(ExchangeError):
    """Unknown, revoked, or its owner cannot use it (frozen, deactivated)."""

    code = "API_KEY_INVALID"
    status = 401
    message = "Invalid API key, IP address, or permissions for this action."


class ApiKeyIpNotAllowed(ApiKeyInvalid):
    code = "API_KEY_IP_NOT_ALLOWED"


class ApiKeyPermissionDenied(ApiKeyInvalid):
    code = "API_KEY_PERMISSION_DENIED"


class ApiSignatureInvalid(ExchangeError):
    code = "SIGNATURE_INVALID"
    status = 401
    message = "Signature for this request is not valid."


class AccountStateConflict(ConflictError):
    code = "ACCOUNT_STATE"
    message = "The account is not in a state that allows this."


def _retry_phrase(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    return f"{(seconds + 59) // 60} minutes"


class LoginLocked(ValidationError):
    """Raised by the login backend while an account or an address is locked out.

    A ``ValidationError`` so every ``AuthenticationForm`` (pages, admin) shows it; the API turns
    it into ``LoginRateLimited`` (429). Said alike for every login, known or not.
    """

    def __init__(self, retry_after: int):
        self.retry_after = retry_after
        super().__init__(
            f"Too many failed logins. Try again in {_retry_phrase(retry_after)}.",
            code="login_locked",
        )


class LoginRateLimited(ExchangeError):
    code = "LOGIN_LOCKED"
    status = 429
    message = "Too many failed logins; try again later."


# --- Two-factor authentication ------------------------------------------------------------
# On an action (withdrawal, API key, 2FA changes) the caller is authenticated and must step
# up: 403, so a client does not take it for an expired token. On login: 401, like a password.


class OtpRequired(ExchangeError):
    code = "OTP_REQUIRED"
    status = 403
    message = (
        "Two-factor authentication is on: give the code from your authenticator app "
        "(or a recovery code) in `otp_code`."
    )


class OtpInvalid(ExchangeError):
    code = "OTP_INVALID"
    status = 403
    message = "The authentication code is wrong, expired or already used."


class LoginOtpRequired(OtpRequired):
    status = 401


class LoginOtpInvalid(OtpInvalid):
    status = 401


class PasswordIncorrect(ExchangeError):
    code = "PASSWORD_INVALID"
    status = 403
    message = "The password is wrong."


class TwoFactorStateConflict(ConflictError):
    code = "TWO_FACTOR_STATE"
    message = "Two-factor authentication is not in a state that allows this."


class OtpRequiredLogin(ValidationError):
    """Raised by the login backend when the password is right but the account's second factor
    is missing. Carries the user, so the login page can ask for the code in a second step;
    any other ``AuthenticationForm`` (admin, browsable API) shows it and logs nobody in."""

    def __init__(self, user):
        self.user = user
        super().__init__(
            "This account uses two-factor authentication: log in on the exchange's login "
            "page, which asks for the code.",
            code="otp_required",
        )


class OtpInvalidLogin(ValidationError):
    def __init__(self):
        super().__init__(OtpInvalid.message, code="otp_invalid")


class TwoFactorUnavailable(ServiceUnavailableError):
    """The two-factor failure budget lives in the cache; with the cache down no code is
    checked at all (fail closed), or codes could be guessed without limit during an outage."""

    code = "TWO_FACTOR_UNAVAILABLE"
    message = "Two-factor checks are briefly unavailable; try again in a minute."


class LoginUnavailable(ValidationError):
    """``TwoFactorUnavailable`` on the login forms (a form error, not a 500)."""

    def __init__(self):
        super().__init__(TwoFactorUnavailable.message, code="two_factor_unavailable")


# --- Sessions, email verification, password recovery --------------------------------------


class AuthSessionNotFound(NotFoundError):
    code = "SESSION_NOT_FOUND"
    message = "Session not found (or already ended)."


class LinkInvalid(ExchangeError):
    code = "LINK_INVALID"
    status = 400
    message = "This link is invalid or has expired; ask for a new one."


class EmailNotVerified(ExchangeError):
    code = "EMAIL_NOT_VERIFIED"
    status = 403
    message = "Confirm your email address first (the link we emailed you; you can resend it)."


class RequestsUnavailable(ServiceUnavailableError):
    """An emailing endpoint whose limits (and queue) live in Redis while Redis is down."""

    code = "TEMPORARILY_UNAVAILABLE"
    message = "This is briefly unavailable; try again in a minute."


class EmailRequestsThrottled(ExchangeError):
    """Too many reset or resend requests from one client address (said alike for every
    address typed, so it reveals nothing about accounts)."""

    code = "THROTTLED"
    status = 429
    message = "Too many requests from your address; try again later."
