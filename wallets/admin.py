"""Operators' view of money. Balances and the ledger are read-only here: every change goes
through ``wallets.services`` (approve, reject, adjust), so the ledger always explains it."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.shortcuts import render

from exchange_site.exceptions import ExchangeError
from wallets import services
from wallets.models import (
    Asset,
    Balance,
    BalanceAdjustment,
    Deposit,
    LedgerCheckRun,
    LedgerEntry,
    Withdrawal,
)
from wallets.selectors import balance_available


class ReadOnlyAdmin(admin.ModelAdmin):
    """Listed and searchable, never added, changed or deleted by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def _error_text(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(exc.messages)
    return getattr(exc, "message", str(exc))


@admin.register(Asset)
class AssetAdmin(admin.ModelAdmin):
    list_display = (
        "code",
        "name",
        "precision",
        "min_withdrawal",
        "withdrawal_fee",
        "confirmations_required",
        "is_active",
    )
    list_editable = ("is_active",)
    search_fields = ("code", "name")

    def get_readonly_fields(self, request, obj=None):
        # Precision is baked into every stored amount's validation; fixed once created.
        return ("precision",) if obj else ()

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Balance)
class BalanceAdmin(ReadOnlyAdmin):
    list_display = ("user", "asset", "available", "locked", "updated_at")
    list_filter = ("asset",)
    search_fields = ("user__email", "user__username")
    list_select_related = ("user", "asset")


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "created_at",
        "user",
        "asset",
        "kind",
        "available_delta",
        "locked_delta",
        "reference_type",
        "reference_id",
    )
    list_filter = ("kind", "asset", "reference_type")
    search_fields = ("user__email", "user__username", "=reference_id")
    list_select_related = ("user", "asset")
    date_hierarchy = "created_at"
    show_full_result_count = False


@admin.register(Deposit)
class DepositAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "created_at",
        "user",
        "asset",
        "amount",
        "status",
        "confirmations",
        "confirmations_required",
        "is_demo",
        "tx_id",
    )
    list_filter = ("status", "asset", "is_demo")
    search_fields = ("user__email", "user__username", "tx_id", "address")
    list_select_related = ("user", "asset")
    actions = ["confirm_now"]

    @admin.action(description="Confirm selected pending deposits now (credit them)")
    def confirm_now(self, request, queryset):
        confirmed = sum(
            services.deposit_confirm(deposit_id=pk)
            for pk in queryset.filter(status=Deposit.Status.PENDING).values_list("pk", flat=True)
        )
        self.message_user(request, f"{confirmed} deposit(s) confirmed and credited.")

    def has_change_permission(self, request, obj=None):
        # Needed for the action; the change form itself shows read-only fields only.
        return request.user.has_perm("wallets.change_deposit")

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in Deposit._meta.fields]


class RejectWithdrawalForm(forms.Form):
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 3}))


@admin.register(Withdrawal)
class WithdrawalAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "created_at",
        "user",
        "asset",
        "amount",
        "fee",
        "address",
        "status",
        "reviewed_by",
        "tx_id",
    )
    list_filter = ("status", "asset")
    search_fields = ("user__email", "user__username", "address", "tx_id")
    list_select_related = ("user", "asset", "reviewed_by")
    actions = ["approve", "reject"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in Withdrawal._meta.fields]

    @admin.action(description="Approve selected withdrawals", permissions=["change"])
    def approve(self, request, queryset):
        approved = 0
        for withdrawal in queryset:
            try:
                services.withdrawal_approve(withdrawal_id=withdrawal.pk, reviewer=request.user)
                approved += 1
            except ExchangeError as exc:
                self.message_user(request, f"#{withdrawal.pk}: {exc.message}", messages.WARNING)
        if approved:
            self.message_user(request, f"{approved} withdrawal(s) approved; processing started.")

    @admin.action(
        description="Reject selected withdrawals (asks for a reason)", permissions=["change"]
    )
    def reject(self, request, queryset):
        form = RejectWithdrawalForm(request.POST if "reason" in request.POST else None)
        if not form.is_valid():
            return render(
                request,
                "admin/wallets/withdrawal/reject.html",
                {
                    **self.admin_site.each_context(request),
                    "title": "Reject withdrawals",
                    "form": form,
                    "withdrawals": queryset,
                    "opts": self.model._meta,
                    "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                },
            )
        rejected = 0
        for withdrawal in queryset:
            try:
                services.withdrawal_reject(
                    withdrawal_id=withdrawal.pk,
                    reviewer=request.user,
                    reason=form.cleaned_data["reason"],
                )
                rejected += 1
            except (ExchangeError, ValidationError) as exc:
                self.message_user(
                    request, f"#{withdrawal.pk}: {_error_text(exc)}", messages.WARNING
                )
        if rejected:
            self.message_user(request, f"{rejected} withdrawal(s) rejected; funds released.")
        return None


class BalanceAdjustmentForm(forms.ModelForm):
    class Meta:
        model = BalanceAdjustment
        fields = ("user", "asset", "amount", "reason")
        widgets = {"reason": forms.Textarea(attrs={"rows": 3})}

    def clean(self):
        # Refuse here what the service would refuse, so the operator sees it on the form.
        data = super().clean()
        user, asset, amount = data.get("user"), data.get("asset"), data.get("amount")
        if user is None or asset is None or amount is None:
            return data
        if amount == 0:
            raise ValidationError({"amount": "A non-zero amount is required."})
        services.amount_validate(asset=asset, amount=abs(amount))
        available = balance_available(user_id=user.pk, asset_id=asset.pk)
        if amount < 0 and available < -amount:
            raise ValidationError({"amount": f"Only {available} {asset.code} is available."})
        return data


@admin.register(BalanceAdjustment)
class BalanceAdjustmentAdmin(admin.ModelAdmin):
    """Operators credit or debit a balance here, always with a written reason."""

    form = BalanceAdjustmentForm
    list_display = ("id", "created_at", "user", "asset", "amount", "reason", "created_by")
    list_filter = ("asset",)
    search_fields = ("user__email", "user__username", "reason")
    list_select_related = ("user", "asset", "created_by")
    autocomplete_fields = ("user",)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        # The service creates the adjustment and its ledger entry together.
        adjustment = services.balance_adjust(
            user=obj.user,
            asset=obj.asset,
            amount=obj.amount,
            reason=obj.reason,
            operator=request.user,
        )
        obj.pk = adjustment.pk
        obj.created_by = adjustment.created_by
        obj.created_at = adjustment.created_at


@admin.register(LedgerCheckRun)
class LedgerCheckRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "finished_at", "ok", "violation_count")
    list_filter = ("ok",)
    readonly_fields = ("started_at", "finished_at", "ok", "summary", "violations")

    @admin.display(description="violations")
    def violation_count(self, obj):
        return len(obj.violations)
