"""Helpers of the two-factor tests: turn it on for a user, and compute codes with pyotp, the
way an authenticator app does."""

import time

import pyotp

from accounts import twofactor
from accounts.models import TwoFactorDevice


def code_at(secret: str, steps: int = 0) -> str:
    """The code an app shows ``steps`` time steps (30 s) from now."""
    return pyotp.TOTP(secret).at(time.time() + steps * twofactor.TOTP_INTERVAL)


def enable_two_factor(user) -> tuple[str, list[str]]:
    """Enrol ``user`` and confirm with the previous step's code (still in the tolerance), so
    the current and the next step's codes stay usable. Returns (secret, recovery codes)."""
    _device, secret, _uri = twofactor.two_factor_enrol_begin(user=user)
    codes = twofactor.two_factor_enrol_confirm(user=user, otp_code=code_at(secret, -1))
    return secret, codes


def fresh_code(user, secret: str) -> str:
    """A code accepted whatever was used before: forgets the last used step first. For tests
    of what a code unlocks; the replay tests use ``code_at`` and keep the memory."""
    TwoFactorDevice.objects.filter(user=user).update(last_used_step=None)
    return code_at(secret)
