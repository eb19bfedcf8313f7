from django.contrib.auth.backends import ModelBackend

from accounts.exceptions import FrozenAccountLogin
from accounts.models import User
from accounts.selectors import user_get_by_login


class EmailOrUsernameBackend(ModelBackend):
    """Log in with the email address or the username, both case-insensitive.

    A frozen account cannot log in, and its existing sessions end at their next request
    (``get_user`` goes through ``user_can_authenticate``).
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        login = username or kwargs.get(User.USERNAME_FIELD)
        if not login or password is None:
            return None
        user = user_get_by_login(login=str(login))
        if user is None:
            # Hash anyway so an unknown login takes as long as a wrong password.
            User().set_password(password)
            return None
        if not user.check_password(password) or not super().user_can_authenticate(user):
            return None
        if user.is_frozen:
            # Said only to whoever knows the password, so it reveals nothing to a guesser.
            raise FrozenAccountLogin()
        return user

    def user_can_authenticate(self, user):
        return super().user_can_authenticate(user) and not getattr(user, "is_frozen", False)
