from django.db.models import Q

from accounts.models import User, normalize_email


def user_get_by_login(*, login: str) -> User | None:
    """The account whose email or username is ``login`` (both case-insensitive), or None."""
    login = login.strip()
    return User.objects.filter(Q(email=normalize_email(login)) | Q(username__iexact=login)).first()
