"""Keeps web sessions honest about their ``AuthSession``: a session whose row was revoked
(from the session list, a password change or reset) is logged out at its next request, and
the row's last use is kept current."""

from django.contrib.auth import SESSION_KEY, logout
from django.utils import timezone

from accounts import sessions
from accounts.models import AuthSession


class AuthSessionMiddleware:
    """After ``AuthenticationMiddleware``. Costs one primary-key read per request of a
    logged-in browser (and an UPDATE at most once a minute), none for token or anonymous
    requests (no session user)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = getattr(request, "session", None)
        if session is not None and SESSION_KEY in session:
            self._check(request, session)
        return self.get_response(request)

    def _check(self, request, session) -> None:
        user = request.user
        if not user.is_authenticated:
            return
        auth_session_id = session.get(sessions.AUTH_SESSION_KEY)
        if auth_session_id is None:
            # Logged in before sessions were tracked: start tracking it now.
            sessions.auth_session_start_web(request=request, user=user)
            return
        row = (
            AuthSession.objects.filter(pk=auth_session_id)
            .values_list("user_id", "revoked_at", "session_key", "last_used_at")
            .first()
        )
        if row is None or row[0] != user.pk or row[1] is not None:
            logout(request)
            return
        moved_key = session.session_key if session.session_key != row[2] else ""
        if moved_key or row[3] < timezone.now() - sessions.TOUCH_INTERVAL:
            sessions.auth_session_touch(
                auth_session_id=auth_session_id, request=request, session_key=moved_key
            )
