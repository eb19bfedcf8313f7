"""Where an account is signed in, and how it got there: ``AuthSession`` rows (web sessions and
refresh-token families) and the login history (``LoginEvent``).

Login events are written in autocommit, outside the callers' transactions: a refused login
raises, and a rollback must not erase the record of it (the lockout counts on it while the
cache is down, and the history must show failures).
"""

import base64
import hashlib
import json
import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts.devices import device_label
from accounts.exceptions import AuthSessionNotFound
from accounts.models import AuthSession, LoginEvent, User
from accounts.notifications import notify_new_device_login
from exchange_site.throttling import client_address

logger = logging.getLogger("accounts")

# The session's key for its AuthSession row.
AUTH_SESSION_KEY = "auth_session_id"
# The JWT claim that names a token's family.
SESSION_CLAIM = "sid"
# Last use is written at most this often per session (one UPDATE, not one per request).
TOUCH_INTERVAL = timedelta(seconds=60)
# A login from a user agent the account has not logged in from for this long is "new".
KNOWN_DEVICE_DAYS = 180
_USER_AGENT_MAX = 400


def request_client(request) -> tuple[str | None, str]:
    """The client address (after trusted proxies) and user agent of a request, if any."""
    if request is None:
        return None, ""
    ip = client_address(request) or None
    user_agent = (request.META.get("HTTP_USER_AGENT") or "")[:_USER_AGENT_MAX]
    return ip, user_agent


def request_channel(request) -> str:
    """``api``, ``admin`` or ``web``: where a login came in."""
    path = getattr(request, "path", "") or ""
    if path.startswith("/api/"):
        return "api"
    if path.startswith("/admin/"):
        return "admin"
    return "web"


def account_key(ident: str) -> str:
    """The stored form of a lockout identity (``accounts.lockout.login_account_ident``)."""
    return hashlib.sha256(ident.encode()).hexdigest()


# --- Login history ------------------------------------------------------------------------


def login_event_record(
    *, user: User | None, account: str, request, outcome: str, channel: str | None = None
) -> LoginEvent | None:
    """Record one login attempt. Callers record outside their atomic blocks, so the row is
    committed at once and a refused login's rollback cannot take it away. A database error is
    logged, never raised: a login must not fail because its history could not be written."""
    ip, user_agent = request_client(request)
    try:
        return LoginEvent.objects.create(
            user=user,
            account_key=account_key(account),
            ip=ip,
            user_agent=user_agent,
            device=device_label(user_agent),
            channel=channel or request_channel(request),
            outcome=outcome,
        )
    except Exception as exc:  # the history must not turn a login into a 500
        logger.error("login event not recorded (%s): %s", outcome, exc)
        return None


def login_is_from_new_device(*, user: User, user_agent: str) -> bool:
    """True when the account has logged in before, but not with this user agent recently.
    An account's very first login has nothing to compare with, so it is not "new"."""
    successes = LoginEvent.objects.filter(
        user=user, outcome__in=(LoginEvent.Outcome.SUCCESS, LoginEvent.Outcome.SIGNUP)
    )
    if not successes.exists():
        return False
    since = timezone.now() - timedelta(days=KNOWN_DEVICE_DAYS)
    return not successes.filter(
        user_agent=user_agent[:_USER_AGENT_MAX], created_at__gte=since
    ).exists()


def login_success_record(*, user: User, account: str, request, channel: str | None = None):
    """Record a successful login, and email the owner when it came from a device (user
    agent) the account has not used in ``KNOWN_DEVICE_DAYS``."""
    _ip, user_agent = request_client(request)
    new_device = login_is_from_new_device(user=user, user_agent=user_agent)
    event = login_event_record(
        user=user,
        account=account,
        request=request,
        outcome=LoginEvent.Outcome.SUCCESS,
        channel=channel,
    )
    if new_device and event is not None:
        notify_new_device_login(user=user, event=event)
    return event


# --- Sessions ---------------------------------------------------------------------------


def auth_session_start(
    *,
    user: User,
    kind: str,
    request=None,
    session_key: str = "",
    expires_at=None,
) -> AuthSession:
    """Open an ``AuthSession`` for a web login or a new refresh-token family."""
    ip, user_agent = request_client(request)
    now = timezone.now()
    return AuthSession.objects.create(
        user=user,
        kind=kind,
        session_key=session_key or "",
        ip=ip,
        user_agent=user_agent,
        device=device_label(user_agent),
        last_used_at=now,
        expires_at=expires_at,
    )


def auth_session_start_web(*, request, user: User) -> AuthSession:
    """Open the ``AuthSession`` of a web login (Django's ``login()`` just ran) and remember
    it in the session, where the middleware checks it on every request."""
    session = request.session
    if session.session_key is None:
        session.save()
    auth_session = auth_session_start(
        user=user,
        kind=AuthSession.Kind.WEB,
        request=request,
        session_key=session.session_key,
        expires_at=session.get_expiry_date(),
    )
    session[AUTH_SESSION_KEY] = auth_session.pk
    return auth_session


def auth_session_touch(*, auth_session_id: int, request=None, session_key: str = "") -> None:
    """Record a use of the session now (address and session key too, when they moved);
    one conditional UPDATE, a no-op when it was touched within ``TOUCH_INTERVAL``."""
    now = timezone.now()
    ip, _user_agent = request_client(request)
    fields = {"last_used_at": now}
    if ip:
        fields["ip"] = ip
    if session_key:
        fields["session_key"] = session_key
    touched = AuthSession.objects.filter(pk=auth_session_id, revoked_at__isnull=True)
    if not session_key:
        touched = touched.filter(last_used_at__lt=now - TOUCH_INTERVAL)
    touched.update(**fields)


def _refresh_token_sid(token_text: str):
    """The ``sid`` claim of a stored refresh token, read without verifying it (the row is
    ours); None for tokens issued before families existed."""
    try:
        payload = token_text.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return claims.get(SESSION_CLAIM)
    except (IndexError, ValueError):
        return None


def _refresh_tokens_blacklist(*, user: User, keep_session_id: int | None) -> int:
    """Blacklist the user's live refresh tokens outside the family ``keep_session_id``
    (tokens without a family included)."""
    live = OutstandingToken.objects.filter(
        user=user, expires_at__gt=timezone.now(), blacklistedtoken__isnull=True
    ).only("id", "token")
    doomed = [
        token
        for token in live
        if keep_session_id is None or _refresh_token_sid(token.token) != keep_session_id
    ]
    BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token=token) for token in doomed], ignore_conflicts=True
    )
    return len(doomed)


def _web_sessions_end(session_keys) -> None:
    keys = [key for key in session_keys if key]
    if keys:
        Session.objects.filter(session_key__in=keys).delete()


@transaction.atomic
def auth_session_revoke(*, user: User, session_id: int, reason: str = "revoked") -> AuthSession:
    """End one of the user's sessions: a web session is logged out at its next request, a
    refresh-token family's access and refresh tokens are refused from now on.

    Raises ``AuthSessionNotFound`` (404) for another user's session, an unknown one or one
    already ended. Locks the session's row.
    """
    auth_session = (
        AuthSession.objects.select_for_update()
        .filter(pk=session_id, user=user, revoked_at__isnull=True)
        .first()
    )
    if auth_session is None:
        raise AuthSessionNotFound(details={"id": session_id})
    auth_session.revoked_at = timezone.now()
    auth_session.revoked_reason = reason
    auth_session.save(update_fields=["revoked_at", "revoked_reason"])
    if auth_session.kind == AuthSession.Kind.WEB:
        _web_sessions_end([auth_session.session_key])
    return auth_session


@transaction.atomic
def auth_sessions_revoke_all(
    *, user: User, keep_session_id: int | None = None, reason: str = "revoked"
) -> int:
    """End every session of the user but ``keep_session_id`` (the caller's own, when it is
    kept): web sessions, refresh-token families, and refresh tokens issued before families
    existed. Returns how many sessions were ended."""
    live = AuthSession.objects.select_for_update().filter(user=user, revoked_at__isnull=True)
    if keep_session_id is not None:
        live = live.exclude(pk=keep_session_id)
    doomed = list(live.values_list("pk", "kind", "session_key"))
    AuthSession.objects.filter(pk__in=[pk for pk, _kind, _key in doomed]).update(
        revoked_at=timezone.now(), revoked_reason=reason
    )
    _web_sessions_end(key for _pk, kind, key in doomed if kind == AuthSession.Kind.WEB)
    _refresh_tokens_blacklist(user=user, keep_session_id=keep_session_id)
    return len(doomed)


def auth_session_logged_out(*, request) -> None:
    """Mark the request's web session ended (Django's ``logout()`` is running)."""
    auth_session_id = request.session.get(AUTH_SESSION_KEY) if hasattr(request, "session") else None
    if auth_session_id is not None:
        AuthSession.objects.filter(pk=auth_session_id, revoked_at__isnull=True).update(
            revoked_at=timezone.now(), revoked_reason="logout"
        )


def request_auth_session_id(request) -> int | None:
    """The id of the ``AuthSession`` a request is authenticated by: the web session's, or
    the ``sid`` claim of its access token."""
    token = getattr(request, "auth", None)
    if token is not None and hasattr(token, "get"):
        sid = token.get(SESSION_CLAIM)
        if sid is not None:
            return int(sid)
    session = getattr(request, "session", None)
    if session is not None and SESSION_KEY in session:
        return session.get(AUTH_SESSION_KEY)
    return None


@transaction.atomic
def auth_history_prune() -> dict[str, int]:
    """Delete login events older than ``LOGIN_HISTORY_DAYS`` and sessions that ended (revoked
    or expired) more than ``AUTH_SESSION_KEEP_DAYS`` ago. Returns how many of each went.
    Safe at any time: nothing live is touched, and the lockout reads only the last window."""
    now = timezone.now()
    events, _ = LoginEvent.objects.filter(
        created_at__lt=now - timedelta(days=settings.LOGIN_HISTORY_DAYS)
    ).delete()
    ended_before = now - timedelta(days=settings.AUTH_SESSION_KEEP_DAYS)
    ended, _ = AuthSession.objects.filter(
        Q(revoked_at__lt=ended_before) | Q(expires_at__lt=ended_before)
    ).delete()
    return {"login_events": events, "sessions": ended}
