"""Pieces the operator console's admin classes share: the "why?" step of every action,
a user filter that takes an id from a link, and read-only admins."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.template.response import TemplateResponse

from accounts.models import User
from exchange_site.exceptions import ExchangeError


class ReadOnlyAdmin(admin.ModelAdmin):
    """Listed and searchable, never added, changed or deleted by hand (not even by a
    superuser): these rows change only through services."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReasonForm(forms.Form):
    reason = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Kept in the audit trail with your name and the time.",
    )


def error_text(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(exc.messages)
    return getattr(exc, "message", str(exc))


def reason_for_action(modeladmin, request, queryset, *, title: str, question: str):
    """The action's second step: returns ``(reason, None)`` once the operator has written
    one, else ``(None, response)`` with the form (listing the selected objects) to return."""
    form = ReasonForm(request.POST if "reason" in request.POST else None)
    if form.is_valid():
        return form.cleaned_data["reason"], None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "question": question,
        "form": form,
        "objects": queryset,
        "opts": modeladmin.model._meta,
        "action": request.POST.get("action", ""),
        "select_across": request.POST.get("select_across", "0"),
        "action_checkbox_name": ACTION_CHECKBOX_NAME,
        "media": modeladmin.media,
    }
    return None, TemplateResponse(request, "admin/operator_action_reason.html", context)


def run_each(modeladmin, request, objects, call, *, done: str) -> int:
    """Run ``call(obj)`` (a service) for each object; a refusal becomes a warning naming the
    object and the rest go on. Reports ``done`` (formatted with ``count``) if any worked."""
    count = 0
    for obj in objects:
        try:
            call(obj)
        except (ExchangeError, ValidationError) as exc:
            modeladmin.message_user(request, f"{obj}: {error_text(exc)}", messages.WARNING)
        else:
            count += 1
    if count:
        modeladmin.message_user(request, done.format(count=count), messages.SUCCESS)
    return count


def run_each_with_reason(
    modeladmin, request, queryset, call, *, title: str, question: str, done: str
):
    """A reason-asking action whole: ``reason_for_action``, then ``run_each`` with
    ``call(obj, reason)``. Returns what the action returns: the form, or None once done."""
    reason, form = reason_for_action(modeladmin, request, queryset, title=title, question=question)
    if form:
        return form
    run_each(modeladmin, request, queryset, lambda obj: call(obj, reason), done=done)
    return None


def user_filter(*fields: str, title: str = "user"):
    """A list filter on one user, chosen by id in the URL (``?user=42``): the dashboard and
    the user pages link to it; a select of every user would not scale."""

    class UserFilter(admin.SimpleListFilter):
        parameter_name = "user"

        def lookups(self, request, model_admin):
            value = self.value()
            if not value or not (value.isascii() and value.isdigit()):
                return []
            user = User.objects.filter(pk=value).first()
            return [(value, str(user) if user else f"#{value}")]

        def queryset(self, request, queryset):
            value = self.value()
            if not value:
                return queryset
            if not (value.isascii() and value.isdigit()):
                return queryset.none()
            match = Q()
            for field in fields:
                match |= Q(**{field: int(value)})
            return queryset.filter(match)

    UserFilter.title = title
    return UserFilter
