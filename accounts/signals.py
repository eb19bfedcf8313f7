"""Web logins and logouts (pages, admin) open and close their ``AuthSession``."""

from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.dispatch import receiver

from accounts import sessions


@receiver(user_logged_in, dispatch_uid="accounts.auth_session_start_web")
def _web_session_started(sender, request, user, **_kwargs):
    if request is not None and hasattr(request, "session"):
        sessions.auth_session_start_web(request=request, user=user)


@receiver(user_logged_out, dispatch_uid="accounts.auth_session_logged_out")
def _web_session_ended(sender, request, user, **_kwargs):
    if request is not None and hasattr(request, "session"):
        sessions.auth_session_logged_out(request=request)
