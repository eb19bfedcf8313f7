"""Operators' view of money. Balances and the ledger are read-only here: every change goes
through ``wallets.services`` (confirm, approve, reject, adjust), so the ledger always
explains it and the audit trail says who did it and why."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html

from exchange_site.admin_tools import ReadOnlyAdmin, run_each_with_reason, user_filter
from wallets import services
from wallets.models import (
    Asset,
    Balance,
    BalanceAdjustment,
    Deposit,
    DepositAddress,
    LedgerCheckRun,
    LedgerEntry,
    LiabilityLeaf,
    LiabilityNode,
    LiabilityRoot,
    LiabilitySnapshot,
    Withdrawal,
    WithdrawalAddress,
    WithdrawalProfile,
    WithdrawalTier,
)
from wallets.selectors import balance_available

__all__ = ["ReadOnlyAdmin"]  # re-exported: other apps' admins import it from here


@admin.register(Asset)
class AssetAdmin(admin.ModelAdmin):
    list_display = (
        "code",
        "name",
        "precision",
        "min_withdrawal",
        "withdrawal_fee",
        "confirmations_required",
        "reference_price",
        "is_active",
    )
    list_editable = ("is_active",)
    list_filter = ("is_active",)
    search_fields = ("code", "name")

    def get_readonly_fields(self, request, obj=None):
        # Precision is baked into every stored amount's validation; fixed once created.
        return ("precision",) if obj else ()

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Balance)
class BalanceAdmin(ReadOnlyAdmin):
    list_display = ("user", "asset", "available", "locked", "updated_at", "adjust_link")
    list_filter = ("asset", user_filter("user"))
    search_fields = ("user__email", "user__username")
    list_select_related = ("user", "asset")
    show_full_result_count = False

    @admin.display(description="adjust")
    def adjust_link(self, obj):
        # Balances never change by editing them: an adjustment posts a ledger entry.
        url = reverse("admin:wallets_balanceadjustment_add")
        return format_html(
            '<a href="{}?user={}&amp;asset={}">adjust…</a>', url, obj.user_id, obj.asset_id
        )


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
        "memo",
    )
    list_filter = ("kind", "asset", "reference_type", user_filter("user"))
    search_fields = ("user__email", "user__username", "=reference_id")
    list_select_related = ("user", "asset")
    date_hierarchy = "created_at"
    show_full_result_count = False


@admin.register(DepositAddress)
class DepositAddressAdmin(ReadOnlyAdmin):
    list_display = ("address", "user", "asset", "created_at")
    list_filter = ("asset", user_filter("user"))
    search_fields = ("=address", "user__email", "user__username")
    list_select_related = ("user", "asset")


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
    list_filter = ("status", "asset", "is_demo", user_filter("user"))
    search_fields = ("user__email", "user__username", "tx_id", "address")
    list_select_related = ("user", "asset")
    date_hierarchy = "created_at"
    show_full_result_count = False
    actions = ["confirm_now"]

    def has_confirm_permission(self, request):
        return request.user.has_perm("wallets.confirm_deposit")

    @admin.action(
        description="Confirm selected pending deposits now (credit them)",
        permissions=["confirm"],
    )
    def confirm_now(self, request, queryset):
        return run_each_with_reason(
            self,
            request,
            queryset,
            lambda deposit, reason: services.deposit_confirm_by_operator(
                deposit_id=deposit.pk, operator=request.user, reason=reason
            ),
            title="Confirm deposits",
            question="Confirm these deposits now and credit them to their owners?",
            done="{count} deposit(s) confirmed and credited.",
        )


class WithdrawalStageFilter(admin.SimpleListFilter):
    """The operators' queues: what waits for a first approval and for a second."""

    title = "review stage"
    parameter_name = "stage"

    def lookups(self, request, model_admin):
        return [
            ("first", "Waiting for a first approval"),
            ("second", "Waiting for a second approval"),
            ("unconfirmed", "Not yet confirmed by email"),
        ]

    def queryset(self, request, queryset):
        status = {
            "first": Withdrawal.Status.REQUESTED,
            "second": Withdrawal.Status.AWAITING_SECOND_APPROVAL,
            "unconfirmed": Withdrawal.Status.AWAITING_CONFIRMATION,
        }.get(self.value())
        return queryset.filter(status=status) if status else queryset


@admin.register(Withdrawal)
class WithdrawalAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "created_at",
        "user",
        "asset",
        "amount",
        "fee",
        "address",
        "status",
        "needs_second_approval",
        "first_approved_by",
        "reviewed_by",
        "review_note",
        "tx_id",
    )
    list_filter = (WithdrawalStageFilter, "status", "needs_second_approval", "asset")
    list_filter = (*list_filter, user_filter("user"))
    search_fields = ("user__email", "user__username", "address", "tx_id")
    list_select_related = ("user", "asset", "reviewed_by", "first_approved_by")
    date_hierarchy = "created_at"
    show_full_result_count = False
    actions = ["approve", "reject"]

    def has_review_permission(self, request):
        return request.user.has_perm("wallets.review_withdrawal")

    @admin.action(
        description="Approve selected withdrawals (large ones need a second operator)",
        permissions=["review"],
    )
    def approve(self, request, queryset):
        return run_each_with_reason(
            self,
            request,
            queryset,
            lambda withdrawal, reason: services.withdrawal_approve(
                withdrawal_id=withdrawal.pk, reviewer=request.user, note=reason
            ),
            title="Approve withdrawals",
            question="Approve these withdrawals? Those over their asset's four-eyes threshold "
            "then wait for a second operator; the others are sent on the chain.",
            done="{count} approval(s) recorded.",
        )

    @admin.action(
        description="Reject selected withdrawals (releases funds)", permissions=["review"]
    )
    def reject(self, request, queryset):
        return run_each_with_reason(
            self,
            request,
            queryset,
            lambda withdrawal, reason: services.withdrawal_reject(
                withdrawal_id=withdrawal.pk, reviewer=request.user, reason=reason
            ),
            title="Reject withdrawals",
            question="Reject these withdrawals? Their reserved funds return to the users' "
            "available balances.",
            done="{count} withdrawal(s) rejected; funds released.",
        )


@admin.register(WithdrawalTier)
class WithdrawalTierAdmin(admin.ModelAdmin):
    """Operators edit the tiers' 24-hour limits here (in the reference asset, USD)."""

    list_display = ("code", "name", "daily_limit", "is_default", "description", "updated_at")
    search_fields = ("code", "name")

    def has_delete_permission(self, request, obj=None):
        return False


class WithdrawalProfileForm(forms.ModelForm):
    reason = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Why this account gets this tier: kept in the audit trail.",
    )

    class Meta:
        model = WithdrawalProfile
        fields = ("user", "tier")


@admin.register(WithdrawalProfile)
class WithdrawalProfileAdmin(admin.ModelAdmin):
    """An account's tier is granted here (empty: the default tier), with a reason; the
    allow-list is the account holder's own switch and only shown."""

    form = WithdrawalProfileForm
    list_display = ("user", "tier", "tier_granted_by", "tier_granted_at", "allowlist_enabled")
    list_filter = ("tier", "allowlist_enabled", user_filter("user"))
    search_fields = ("user__email", "user__username")
    list_select_related = ("user", "tier", "tier_granted_by")
    autocomplete_fields = ("user",)
    readonly_fields = ("tier_granted_by", "tier_granted_at", "allowlist_enabled")

    def get_readonly_fields(self, request, obj=None):
        return (*self.readonly_fields, "user") if obj else self.readonly_fields

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        # The service writes the profile and its audit record together.
        profile = services.withdrawal_tier_grant(
            user=obj.user,
            tier=form.cleaned_data.get("tier"),
            operator=request.user,
            reason=form.cleaned_data["reason"],
        )
        obj.pk = profile.pk
        obj._state.adding = False


@admin.register(WithdrawalAddress)
class WithdrawalAddressAdmin(ReadOnlyAdmin):
    list_display = ("label", "address", "user", "asset", "created_at", "usable_from")
    list_filter = ("asset", user_filter("user"))
    search_fields = ("=address", "label", "user__email", "user__username")
    list_select_related = ("user", "asset")


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
    """Operators ask for a credit or debit here, always with a written reason; a second
    operator approves it (only then is the ``adjustment`` ledger entry posted) or rejects
    it. Both steps go to the audit trail."""

    form = BalanceAdjustmentForm
    list_display = (
        "id",
        "created_at",
        "user",
        "asset",
        "amount",
        "status",
        "reason",
        "created_by",
        "reviewed_by",
        "reviewed_at",
    )
    list_filter = ("status", "asset", user_filter("user"))
    search_fields = ("user__email", "user__username", "reason")
    list_select_related = ("user", "asset", "created_by", "reviewed_by")
    autocomplete_fields = ("user",)
    date_hierarchy = "created_at"
    actions = ["approve", "reject"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_approve_permission(self, request):
        return request.user.has_perm("wallets.add_balanceadjustment")

    def save_model(self, request, obj, form, change):
        # The service creates the pending adjustment and its audit record together.
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
        obj.status = adjustment.status

    def response_add(self, request, obj, post_url_continue=None):
        self.message_user(
            request,
            f"Adjustment #{obj.pk} waits for a second operator's approval; nothing changed yet.",
            messages.INFO,
        )
        return super().response_add(request, obj, post_url_continue)

    @admin.action(
        description="Approve selected adjustments (posts them; another operator's only)",
        permissions=["approve"],
    )
    def approve(self, request, queryset):
        return run_each_with_reason(
            self,
            request,
            queryset,
            lambda adjustment, note: services.balance_adjustment_approve(
                adjustment_id=adjustment.pk, reviewer=request.user, note=note
            ),
            title="Approve balance adjustments",
            question="Approve these adjustments? Each posts a ledger entry and changes the "
            "balance now.",
            done="{count} adjustment(s) applied.",
        )

    @admin.action(description="Reject selected adjustments", permissions=["approve"])
    def reject(self, request, queryset):
        return run_each_with_reason(
            self,
            request,
            queryset,
            lambda adjustment, reason: services.balance_adjustment_reject(
                adjustment_id=adjustment.pk, reviewer=request.user, reason=reason
            ),
            title="Reject balance adjustments",
            question="Reject these adjustments? No balance changes.",
            done="{count} adjustment(s) rejected.",
        )


@admin.register(LedgerCheckRun)
class LedgerCheckRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "finished_at", "ok", "violation_count")
    list_filter = ("ok",)
    date_hierarchy = "finished_at"
    readonly_fields = ("started_at", "finished_at", "ok", "summary", "violations")

    @admin.display(description="violations")
    def violation_count(self, obj):
        return len(obj.violations)


# --- Proof of liabilities: what was published, read-only (docs/PROOF_OF_LIABILITIES.md) ---


class LiabilityRootInline(admin.TabularInline):
    model = LiabilityRoot
    fields = ("asset", "leaf_count", "total", "root_hash")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(LiabilitySnapshot)
class LiabilitySnapshotAdmin(ReadOnlyAdmin):
    list_display = ("id", "taken_at", "created_at")
    date_hierarchy = "taken_at"
    inlines = [LiabilityRootInline]


@admin.register(LiabilityRoot)
class LiabilityRootAdmin(ReadOnlyAdmin):
    list_display = ("snapshot", "asset", "leaf_count", "total", "root_hash")
    list_filter = ("asset",)
    list_select_related = ("snapshot", "asset")


@admin.register(LiabilityLeaf)
class LiabilityLeafAdmin(ReadOnlyAdmin):
    list_display = ("root", "index", "user", "balance")
    list_filter = (user_filter("user"),)
    list_select_related = ("root__snapshot", "root__asset", "user")
    show_full_result_count = False


@admin.register(LiabilityNode)
class LiabilityNodeAdmin(ReadOnlyAdmin):
    list_display = ("root", "level", "position", "sum_units", "hash")
    list_select_related = ("root__snapshot", "root__asset")
    show_full_result_count = False
