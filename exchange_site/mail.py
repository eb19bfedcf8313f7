"""Email: rendered from ``templates/email/``, sent by the Celery worker after commit.

A use case calls ``email_send_on_commit`` inside its transaction. Nothing is sent if the
transaction rolls back, and the request never waits for an SMTP server: the worker renders
and sends, retrying while the server is unreachable. Templates come in threes:
``email/<name>.subject.txt`` (one line), ``email/<name>.txt`` and ``email/<name>.html``.

This module is below the apps: it imports none of them, so any of them may send email.
"""

import json
import logging
import smtplib

from celery import shared_task
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template import Context
from django.template.loader import get_template, render_to_string

logger = logging.getLogger(__name__)


def site_url(path: str) -> str:
    """The absolute URL of ``path`` on this site (``SITE_URL``), for links in emails.

    The worker has no request to build a URL from, so every link an email carries is made
    here: ``site_url("/accounts/verify/abc/")`` → ``"http://127.0.0.1:8000/accounts/verify/abc/"``.
    """
    return f"{settings.SITE_URL.rstrip('/')}/{path.lstrip('/')}"


def _template_names(template: str) -> tuple[str, str, str]:
    return (
        f"email/{template}.subject.txt",
        f"email/{template}.txt",
        f"email/{template}.html",
    )


def _render_plain(name: str, context: dict) -> str:
    # Plain text must not be HTML-escaped: a link's "&" would arrive as "&amp;".
    return get_template(name).template.render(Context(context, autoescape=False))


def email_render(template: str, context: dict) -> tuple[str, str, str]:
    """Render the email ``template`` with ``context``: ``(subject, text, html)``.

    ``site_name`` and ``site_url`` (from settings) are added to the context and win over the
    caller's, so every link points at the configured site. The subject is made one line
    (whitespace, newlines included, collapsed), as mail headers need. Raises
    ``TemplateDoesNotExist`` for an unknown template.
    """
    full_context = {
        **context,
        "site_name": getattr(settings, "SITE_NAME", "Exchange"),
        "site_url": settings.SITE_URL.rstrip("/"),
    }
    subject_name, text_name, html_name = _template_names(template)
    subject = " ".join(_render_plain(subject_name, full_context).split())
    text = _render_plain(text_name, full_context)
    html = render_to_string(html_name, full_context)
    return subject, text, html


def email_send_now(*, to: str, template: str, context: dict) -> None:
    """Render ``template`` and send it to ``to`` at once, from ``DEFAULT_FROM_EMAIL``.

    One message: the plain-text body with the HTML as an alternative. Blocks on the SMTP
    server (up to ``EMAIL_TIMEOUT`` seconds per step), so only the worker calls it; use
    ``email_send_on_commit`` everywhere else. Raises the backend's errors (``OSError``,
    ``smtplib.SMTPException``) and ``TemplateDoesNotExist``.
    """
    subject, text, html = email_render(template, context)
    message = EmailMultiAlternatives(
        subject=subject, body=text, from_email=settings.DEFAULT_FROM_EMAIL, to=[to]
    )
    message.attach_alternative(html, "text/html")
    message.send(fail_silently=False)


@shared_task(
    name="exchange_site.mail.email_send_task",
    # SMTPException is an OSError too; both are named for the reader. Connection refused,
    # timeouts and 4xx/5xx answers are retried; a missing template is a bug and is not.
    autoretry_for=(smtplib.SMTPException, OSError),
    # Up to 30 s, 1, 2, 4 and 8 minutes (jittered): rides out a mail server's restart or a
    # short outage, then the task fails where the worker's log and /metrics show it.
    retry_backoff=30,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=5,
    acks_late=True,
)
def email_send_task(to: str, template: str, context: dict) -> None:
    """Queued by ``email_send_on_commit``; sends one email."""
    email_send_now(to=to, template=template, context=context)


def _recipient_domain(to: str) -> str:
    return to.rpartition("@")[2] or "?"


def _enqueue(to: str, template: str, context: dict) -> None:
    try:
        email_send_task.delay(to, template, context)
    except Exception:
        # The user's action has committed; failing it now would not undo it. The address's
        # local part stays out of the logs.
        logger.exception(
            "could not queue email %r to a recipient at %s",
            template,
            _recipient_domain(to),
        )


def email_send_on_commit(*, to: str, template: str, context: dict) -> None:
    """Send the email ``template`` to ``to`` once the current transaction commits.

    Call it inside the use case's transaction: a rollback sends nothing, and outside any
    transaction it is queued at once. The Celery task ``email_send_task`` renders and sends
    it on the worker, retrying SMTP failures with backoff.

    ``context`` goes through the broker as JSON, so it may hold strings, numbers, booleans,
    None, lists and dicts only; anything else (a model, a datetime, a Decimal) raises
    ``TypeError`` here rather than in the worker. An unknown template or an address without
    "@" raises ``ValueError`` / ``TemplateDoesNotExist`` here too. A broker that refuses the
    task after commit is logged (template and recipient domain), not raised.
    """
    if "@" not in to:
        raise ValueError(f"not an email address: {to!r}")
    for name in _template_names(template):
        get_template(name)
    # A copy of what the worker will see: later changes to the caller's dict do not leak in.
    payload = json.loads(json.dumps(context))
    transaction.on_commit(lambda: _enqueue(to, template, payload))
