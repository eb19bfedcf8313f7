"""The emails that tell an account holder what happened to their account. Each queues one
email for after the current transaction commits (``exchange_site.mail``), so a change that
rolls back never announces itself; the Celery worker sends it, never the request thread."""

from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from exchange_site.mail import email_send_on_commit, site_url


def _when(moment=None) -> str:
    return f"{timezone.localtime(moment or timezone.now()):%Y-%m-%d %H:%M} UTC"


def notify_new_device_login(*, user: User, event) -> None:
    """A login from a device the account has not used recently."""
    email_send_on_commit(
        to=user.email,
        template="new_device_login",
        context={
            "username": user.username,
            "when": _when(event.created_at),
            "ip": event.ip or "unknown",
            "user_agent": event.user_agent or "unknown",
            "device": event.device or "Unknown device",
            "sessions_url": site_url(reverse("sessions")),
        },
    )


def notify_password_changed(*, user: User, via: str, ip: str | None, user_agent: str) -> None:
    """The password was changed (``via`` "change") or reset by email (``via`` "reset")."""
    email_send_on_commit(
        to=user.email,
        template="password_changed",
        context={
            "username": user.username,
            "when": _when(),
            "ip": ip or "unknown",
            "user_agent": user_agent or "unknown",
            "via": via,
        },
    )


def notify_two_factor_changed(*, user: User, enabled: bool, ip: str | None) -> None:
    """Two-factor authentication was turned on or off (by the user or an operator)."""
    email_send_on_commit(
        to=user.email,
        template="two_factor_changed",
        context={
            "username": user.username,
            "enabled": enabled,
            "when": _when(),
            "ip": ip or "unknown",
        },
    )


def notify_api_key_created(*, user: User, api_key, ip: str | None) -> None:
    """A new API key: whoever holds it can read and maybe trade the account."""
    permissions = ["read"] * api_key.can_read + ["trade"] * api_key.can_trade
    email_send_on_commit(
        to=user.email,
        template="api_key_created",
        context={
            "username": user.username,
            "label": api_key.label,
            "key_prefix": api_key.key[:8],
            "permissions": ", ".join(permissions),
            "when": _when(api_key.created_at),
            "ip": ip or "unknown",
        },
    )


def notify_email_change_requested(*, user: User, new_email: str, ip: str | None) -> None:
    """Told to the current (old) address when a change to ``new_email`` is asked for."""
    email_send_on_commit(
        to=user.email,
        template="email_change_notice",
        context={
            "username": user.username,
            "new_email": new_email,
            "when": _when(),
            "ip": ip or "unknown",
        },
    )


def notify_email_changed(*, user: User, old_email: str) -> None:
    """Told to the old address once the new one is confirmed."""
    email_send_on_commit(
        to=old_email,
        template="email_changed",
        context={"username": user.username, "new_email": user.email, "when": _when()},
    )
