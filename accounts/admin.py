"""Operators' view of accounts: users (freeze / unfreeze, two-factor reset, through the
services), API keys (read-only) and the audit trail of every operator action (read-only)."""

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserChangeForm, UserCreationForm
from django.db.models import Exists, OuterRef
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join

from accounts import services, twofactor
from accounts.models import (
    ApiKey,
    AuthSession,
    LoginEvent,
    OperatorAction,
    RecoveryCode,
    TwoFactorDevice,
    User,
)
from exchange_site.admin_tools import ReadOnlyAdmin, run_each_with_reason, user_filter


class AccountCreationForm(UserCreationForm):
    class Meta:
        model = User
        fields = ("email", "username", "full_name")


class AccountChangeForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"
        field_classes = {"email": forms.EmailField}


class FrozenFilter(admin.SimpleListFilter):
    title = "frozen"
    parameter_name = "frozen"

    def lookups(self, request, model_admin):
        return [("yes", "frozen"), ("no", "not frozen")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(frozen_at__isnull=self.value() == "no")
        return queryset


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = AccountChangeForm
    add_form = AccountCreationForm
    list_display = (
        "email",
        "username",
        "full_name",
        "is_verified",
        "is_active",
        "frozen",
        "two_factor_enabled",
        "is_staff",
        "created_at",
    )
    list_filter = (FrozenFilter, "is_verified", "is_active", "is_staff", "is_superuser", "groups")
    search_fields = ("email", "username", "full_name")
    ordering = ("-created_at",)
    date_hierarchy = "created_at"
    show_full_result_count = False
    # Frozen state changes only through the freeze / unfreeze actions (audited).
    readonly_fields = (
        "created_at",
        "updated_at",
        "last_login",
        "frozen_at",
        "frozen_reason",
        "two_factor_enabled",
        "email_verified_at",
    )
    fieldsets = (
        (None, {"fields": ("email", "username", "password")}),
        ("Profile", {"fields": ("full_name", "is_verified", "email_verified_at")}),
        ("Freeze", {"fields": ("frozen_at", "frozen_reason")}),
        ("Security", {"fields": ("two_factor_enabled",)}),
        ("Activity", {"fields": ("records",)}),
        (
            "Permissions",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Dates", {"fields": ("last_login", "created_at", "updated_at")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "username", "full_name", "password1", "password2"),
            },
        ),
    )
    actions = ["freeze", "unfreeze", "reset_two_factor"]

    def get_queryset(self, request):
        enabled = TwoFactorDevice.objects.filter(user=OuterRef("pk"), confirmed_at__isnull=False)
        return super().get_queryset(request).annotate(two_factor_on=Exists(enabled))

    def get_readonly_fields(self, request, obj=None):
        return (*self.readonly_fields, "records") if obj else self.readonly_fields

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or self.has_change_permission(request, obj):
            return fieldsets
        # A read-only view would print the password hash itself.
        return [
            (name, {**options, "fields": [f for f in options["fields"] if f != "password"]})
            for name, options in fieldsets
        ]

    @admin.display(description="frozen", boolean=True)
    def frozen(self, obj):
        return obj.is_frozen

    # Not named ``two_factor``: that is the user's reverse relation to its device, which the
    # admin would show (a link, one query a row) instead of this column.
    @admin.display(description="2FA", boolean=True, ordering="two_factor_on")
    def two_factor_enabled(self, obj):
        return getattr(obj, "two_factor_on", False)

    @admin.display(description="records")
    def records(self, obj):
        # By app label and model name, not by import: accounts sits below these apps.
        links = [
            ("trading", "order", "orders"),
            ("trading", "trade", "trades"),
            ("wallets", "balance", "balances"),
            ("wallets", "ledgerentry", "ledger"),
            ("wallets", "deposit", "deposits"),
            ("wallets", "withdrawal", "withdrawals"),
        ]
        return format_html_join(
            " · ",
            '<a href="{}?user={}">{}</a>',
            (
                (reverse(f"admin:{app}_{model}_changelist"), obj.pk, label)
                for app, model, label in links
            ),
        )

    def has_freeze_permission(self, request):
        return request.user.has_perm("accounts.freeze_user")

    @admin.action(
        description="Freeze selected users (cancels their orders)", permissions=["freeze"]
    )
    def freeze(self, request, queryset):
        return run_each_with_reason(
            self,
            request,
            queryset,
            lambda user, reason: services.user_freeze(
                user_id=user.pk, actor=request.user, reason=reason
            ),
            title="Freeze users",
            question="Freeze these accounts? They can no longer log in, trade or withdraw; "
            "their tokens stop working and their open orders are cancelled.",
            done="{count} user(s) frozen; their open orders are being cancelled.",
        )

    @admin.action(description="Unfreeze selected users", permissions=["freeze"])
    def unfreeze(self, request, queryset):
        return run_each_with_reason(
            self,
            request,
            queryset,
            lambda user, reason: services.user_unfreeze(
                user_id=user.pk, actor=request.user, reason=reason
            ),
            title="Unfreeze users",
            question="Unfreeze these accounts? Logins, trading and withdrawals work again.",
            done="{count} user(s) unfrozen.",
        )

    @admin.action(description="Reset two-factor authentication", permissions=["freeze"])
    def reset_two_factor(self, request, queryset):
        return run_each_with_reason(
            self,
            request,
            queryset,
            lambda user, reason: twofactor.two_factor_reset(
                user_id=user.pk, actor=request.user, reason=reason
            ),
            title="Reset two-factor authentication",
            question="Remove these users' two-factor authentication (authenticator and "
            "recovery codes)? Their password alone logs them in until they set it up again. "
            "Do this only once you have verified who is asking.",
            done="Two-factor authentication reset for {count} user(s).",
        )


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdmin):
    list_display = ("label", "key", "user", "can_read", "can_trade", "created_at", "revoked_at")
    list_filter = ("can_trade", user_filter("user"))
    search_fields = ("=key", "user__email", "user__username", "label")
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    # The encrypted secret never leaves the database, not even to operators.
    exclude = ("secret_encrypted",)


@admin.register(OperatorAction)
class OperatorActionAdmin(ReadOnlyAdmin):
    """The audit trail: who did what to which object, when and why."""

    list_display = ("created_at", "actor", "action", "target_link", "reason")
    list_filter = ("action", "target_type", user_filter("actor", title="operator"))
    search_fields = ("reason", "target_repr", "=target_id", "actor__email", "actor__username")
    list_select_related = ("actor",)
    date_hierarchy = "created_at"
    show_full_result_count = False
    readonly_fields = (
        "created_at",
        "actor",
        "action",
        "target_type",
        "target_id",
        "target_link",
        "reason",
        "details",
    )

    @admin.display(description="target")
    def target_link(self, obj):
        app_label, _, model = obj.target_type.partition(".")
        try:
            url = reverse(f"admin:{app_label}_{model}_change", args=[obj.target_id])
        except NoReverseMatch:
            return obj.target_repr
        return format_html('<a href="{}">{}</a>', url, obj.target_repr or obj.target_id)


class _UserSecurityAdmin(ReadOnlyAdmin):
    """Read-only, for whoever may view users (the operators): whether and since when a user
    has two-factor authentication; the secret and the code hashes never leave the database."""

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("accounts.view_user")

    def has_module_permission(self, request):
        return self.has_view_permission(request)


@admin.register(TwoFactorDevice)
class TwoFactorDeviceAdmin(_UserSecurityAdmin):
    list_display = ("user", "confirmed_at", "created_at")
    list_filter = (user_filter("user"),)
    search_fields = ("user__email", "user__username")
    list_select_related = ("user",)
    exclude = ("secret_encrypted", "last_used_step")


@admin.register(RecoveryCode)
class RecoveryCodeAdmin(_UserSecurityAdmin):
    list_display = ("id", "user", "created_at", "used_at")
    list_filter = (user_filter("user"),)
    search_fields = ("user__email", "user__username")
    list_select_related = ("user",)
    exclude = ("code_hash",)


@admin.register(AuthSession)
class AuthSessionAdmin(_UserSecurityAdmin):
    """Where users are signed in (web sessions and API refresh-token families)."""

    list_display = ("user", "kind", "device", "ip", "created_at", "last_used_at", "revoked_at")
    list_filter = ("kind", user_filter("user"))
    search_fields = ("user__email", "user__username", "=ip")
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    show_full_result_count = False
    exclude = ("session_key",)


@admin.register(LoginEvent)
class LoginEventAdmin(_UserSecurityAdmin):
    """Every login attempt: the account's history, and what the lockout counts."""

    list_display = ("created_at", "user", "outcome", "channel", "ip", "device")
    list_filter = ("outcome", "channel", user_filter("user"))
    search_fields = ("user__email", "user__username", "=ip")
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    show_full_result_count = False
    exclude = ("account_key",)
