from django.contrib.auth.backends import ModelBackend

from accounts.models import User
from accounts.selectors import user_get_by_login


class EmailOrUsernameBackend(ModelBackend):
    """Log in with the email address or the username, both case-insensitive."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        login = username or kwargs.get(User.USERNAME_FIELD)
        if not login or password is None:
            return None
        user = user_get_by_login(login=str(login))
        if user is None:
            # Hash anyway so an unknown login takes as long as a wrong password.
            User().set_password(password)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None
