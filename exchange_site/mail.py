"""Placeholder until the mail branch lands (same interface)."""

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string


def site_url(path: str) -> str:
    return getattr(settings, "SITE_URL", "http://127.0.0.1:8000").rstrip("/") + path


def email_render(template, context):
    context = {"site_name": "Exchange", "site_url": site_url(""), **context}
    subject = render_to_string(f"email/{template}.subject.txt", context).strip()
    return subject, render_to_string(f"email/{template}.txt", context), ""


def email_send_now(*, to, template, context):
    subject, text, _html = email_render(template, context)
    EmailMultiAlternatives(subject, text, None, [to]).send()


def email_send_on_commit(*, to, template, context):
    transaction.on_commit(lambda: email_send_now(to=to, template=template, context=context))
