"""Demo-only pages: /dev/mailbox/, every email the exchange sent to the local mail catcher.

They answer 404 unless ``DEMO_MODE`` is on: the mailbox shows anyone every message, reset and
verification links included.
"""

import re

from django.conf import settings
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from exchange_site.mailcatcher import mailbox_empty, mailbox_message_get, mailbox_message_list

_HEAD = re.compile(r"(<head\b[^>]*>)", re.IGNORECASE)


def _require_demo_mode() -> None:
    if not settings.DEMO_MODE:
        raise Http404


@never_cache
@require_http_methods(["GET", "POST"])
def mailbox(request):
    """The caught emails, newest first; POST empties the mailbox."""
    _require_demo_mode()
    if request.method == "POST":
        count = mailbox_empty(settings.MAILBOX_DIR)
        messages.success(request, f"Mailbox emptied ({count} email{'s' if count != 1 else ''}).")
        return redirect("dev-mailbox")
    return render(
        request,
        "dev/mailbox.html",
        {"emails": mailbox_message_list(settings.MAILBOX_DIR), "directory": settings.MAILBOX_DIR},
    )


@never_cache
@require_http_methods(["GET"])
def mailbox_message(request, key: str):
    """One caught email: its headers, the text with clickable links, the HTML sandboxed."""
    _require_demo_mode()
    message = mailbox_message_get(settings.MAILBOX_DIR, key)
    if message is None:
        raise Http404
    return render(
        request,
        "dev/mailbox_message.html",
        {"email": message, "srcdoc": _links_in_new_tabs(message.html)},
    )


def _links_in_new_tabs(html: str) -> str:
    # The sandbox allows popups, never scripts, and our pages refuse to load inside a frame
    # (X-Frame-Options): so links open in a new tab. The <base> goes into <head>, where it
    # leaves a leading doctype first (else the email renders in quirks mode).
    if not html:
        return ""
    with_base, found = _HEAD.subn(r'\1<base target="_blank">', html, count=1)
    return with_base if found else f'<base target="_blank">{html}'
