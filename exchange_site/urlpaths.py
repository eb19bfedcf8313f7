from django.urls import re_path


def path_with_optional_slash(route: str, view, name: str):
    """A route that answers both with and without a trailing slash (no redirect, POST-safe)."""
    return re_path(rf"^{route.strip('/')}/?$", view, name=name)
