"""Helpers of the account-security tests: tell the sent emails apart, read the links out of
their bodies the way a person would follow them, and log in over the API and on the pages."""

import re
from urllib.parse import urlsplit

from django.conf import settings
from django.test import Client
from rest_framework.test import APIClient

from accounts.tests.factories import DEFAULT_PASSWORD

API_LOGIN = "/api/v1/auth/login"
API_REFRESH = "/api/v1/auth/refresh"
API_PROFILE = "/api/v1/users/profile"
PAGE_LOGIN = "/accounts/login/"
PAGE_PROFILE = "/accounts/profile/"

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15"
)

# What each template's subject says (templates/email/<name>.subject.txt).
_SUBJECTS = {
    "verify_email": "Confirm your email address for",
    "password_reset": "Reset your",
    "password_changed": "password was changed",
    "email_change_confirm": "Confirm your new email address",
    "email_change_notice": "A change of your",
    "email_changed": "email address was changed",
    "new_device_login": "New sign-in to your",
    "two_factor_changed": "Two-factor authentication was turned",
    "api_key_created": "A new API key was created",
    "withdrawal_requested": "Confirm your withdrawal of",
    "withdrawal_address_added": "withdrawal address saved",
    "withdrawal_allowlist_changed": "Withdrawal allow-list turned",
}

# The paths the emailed links point at (accounts/urls.py).
VERIFY_LINK = r"/accounts/verify-email/(?P<token>[^/\s]+)/"
RESET_LINK = r"/accounts/password/reset/(?P<uid>[^/\s]+)/(?P<token>[^/\s]+)/"
EMAIL_CHANGE_LINK = r"/accounts/email/confirm/(?P<token>[^/\s]+)/"


def template_of(message) -> str:
    """The template an email was rendered from, told by its subject."""
    names = [name for name, fragment in _SUBJECTS.items() if fragment in message.subject]
    assert len(names) == 1, message.subject
    return names[0]


def mails(sent, template: str | None = None, to: str | None = None) -> list:
    """The sent emails of ``template`` (any when None) to ``to`` (anyone when None)."""
    return [
        message
        for message in sent
        if (template is None or template_of(message) == template)
        and (to is None or message.to == [to])
    ]


def templates_sent(sent) -> list[tuple[str, str]]:
    """(template, recipient) of every sent email, in order."""
    return [(template_of(message), message.to[0]) for message in sent]


def link_in(message, path_pattern: str) -> re.Match:
    """The one link in the plain-text body to a path matching ``path_pattern``, on this
    site; the match's groups are the link's parts, ``path`` its path."""
    pattern = re.compile(rf"{re.escape(settings.SITE_URL)}(?P<path>{path_pattern})(?=\s|$)")
    found = list(pattern.finditer(message.body))
    assert len(found) == 1, message.body
    assert urlsplit(found[0].group(0)).path == found[0].group("path")
    return found[0]


def api_client(*, ip: str = "10.0.0.1", user_agent: str = "") -> APIClient:
    extra = {"REMOTE_ADDR": ip}
    if user_agent:
        extra["HTTP_USER_AGENT"] = user_agent
    return APIClient(**extra)


def api_login(
    login: str,
    password: str = DEFAULT_PASSWORD,
    *,
    otp_code: str | None = None,
    ip: str = "10.0.0.1",
    user_agent: str = "",
):
    """POST /api/v1/auth/login; the response."""
    body = {"email": login, "password": password}
    if otp_code is not None:
        body["otp_code"] = otp_code
    return api_client(ip=ip, user_agent=user_agent).post(API_LOGIN, body, format="json")


def api_tokens(login: str, password: str = DEFAULT_PASSWORD, **kwargs) -> dict:
    """A successful API login's token pair."""
    response = api_login(login, password, **kwargs)
    assert response.status_code == 200, response.content
    return response.json()


def bearer(access_token: str, *, ip: str = "10.0.0.1", user_agent: str = "") -> APIClient:
    client = api_client(ip=ip, user_agent=user_agent)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token}")
    return client


def refresh(refresh_token: str):
    """POST /api/v1/auth/refresh; the response."""
    return APIClient().post(API_REFRESH, {"refresh_token": refresh_token}, format="json")


def page_login(
    login: str, password: str = DEFAULT_PASSWORD, *, user_agent: str = FIREFOX, ip: str = ""
) -> Client:
    """A browser logged in through the login page (a real web session)."""
    extra = {"HTTP_USER_AGENT": user_agent}
    if ip:
        extra["REMOTE_ADDR"] = ip
    client = Client(**extra)
    response = client.post(PAGE_LOGIN, {"username": login, "password": password})
    assert response.status_code == 302, response.content
    assert client.session.get("_auth_user_id"), "the login page logged nobody in"
    return client


def page_is_logged_in(client: Client) -> bool:
    """Whether the browser's next request is a logged-in one: the profile shows, or the
    login page is where it is sent."""
    response = client.get(PAGE_PROFILE)
    if response.status_code == 200:
        return True
    assert response.status_code == 302, response.status_code
    assert response["Location"].startswith(PAGE_LOGIN), response["Location"]
    return False
