from django.contrib.auth.backends import ModelBackend

from accounts import lockout, sessions, twofactor
from accounts.exceptions import (
    FrozenAccountLogin,
    LoginLocked,
    LoginRateLimited,
    LoginUnavailable,
    OtpInvalid,
    OtpInvalidLogin,
    OtpRequired,
    OtpRequiredLogin,
    TwoFactorUnavailable,
)
from accounts.models import LoginEvent, User
from accounts.selectors import user_get_by_login
from exchange_site.throttling import client_address


class EmailOrUsernameBackend(ModelBackend):
    """Log in with the email address or the username, both case-insensitive.

    A frozen account cannot log in, and its existing sessions end at their next request
    (``get_user`` goes through ``user_can_authenticate``). Failed logins are counted per
    account and per client address, and a login locked out after too many raises
    ``LoginLocked`` before any password is checked (``accounts.lockout.login_lock_check``):
    the API, the pages and the admin all log in through here.

    With two-factor authentication on, the right password is not enough: ``otp_code`` must be
    a current code or a recovery code, else ``OtpRequiredLogin`` / ``OtpInvalidLogin`` (form
    errors; ``auth_login`` makes them 401s). A wrong code counts as a failed login, and only a
    full success clears the account's count, so codes cannot be guessed behind a right password.

    Every attempt lands in the login history (``accounts.sessions.login_event_record``),
    committed at once: callers authenticate outside their transactions.
    """

    def authenticate(self, request, username=None, password=None, otp_code=None, **kwargs):
        login = username or kwargs.get(User.USERNAME_FIELD)
        if not login or password is None:
            return None
        login = str(login)
        ip = client_address(request) if request is not None else None
        user = user_get_by_login(login=login)
        account = lockout.login_account_ident(login=login, user=user)

        def record(outcome):
            sessions.login_event_record(
                user=user, account=account, request=request, outcome=outcome
            )

        try:
            lockout.login_lock_check(account=account, ip=ip)
        except LoginLocked:
            record(LoginEvent.Outcome.LOCKED)
            raise
        if user is None:
            # Hash anyway so an unknown login takes as long as a wrong password.
            User().set_password(password)
            lockout.login_failure_record(account=account, ip=ip)
            record(LoginEvent.Outcome.BAD_CREDENTIALS)
            return None
        if not user.check_password(password) or not super().user_can_authenticate(user):
            lockout.login_failure_record(account=account, ip=ip)
            record(LoginEvent.Outcome.BAD_CREDENTIALS)
            return None
        if user.is_frozen:
            # Said only to whoever knows the password, so it reveals nothing to a guesser.
            record(LoginEvent.Outcome.FROZEN)
            raise FrozenAccountLogin()
        try:
            twofactor.two_factor_login_check(user=user, otp_code=otp_code, ip=ip)
        except OtpRequired as exc:
            record(LoginEvent.Outcome.OTP_REQUIRED)
            raise OtpRequiredLogin(user) from exc
        except OtpInvalid as exc:
            record(LoginEvent.Outcome.OTP_INVALID)
            raise OtpInvalidLogin() from exc
        except LoginRateLimited as exc:
            record(LoginEvent.Outcome.LOCKED)
            raise LoginLocked(retry_after=exc.details["retry_after"]) from exc
        except TwoFactorUnavailable as exc:
            record(LoginEvent.Outcome.UNAVAILABLE)
            raise LoginUnavailable() from exc
        lockout.login_success_record(account=account)
        sessions.login_success_record(user=user, account=account, request=request)
        return user

    def user_can_authenticate(self, user):
        return super().user_can_authenticate(user) and not getattr(user, "is_frozen", False)
