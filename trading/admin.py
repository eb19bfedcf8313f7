"""Operators' view of trading. Markets: halt / cancel-only / resume and rule changes, each
through ``trading.services`` with a reason for the audit trail. Orders are cancelled only by
queueing cancel commands; orders, trades and commands are otherwise read-only: only the
matcher and the order services change them."""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from exchange_site.admin_tools import (
    ReadOnlyAdmin,
    reason_for_action,
    run_each_with_reason,
    user_filter,
)
from trading import services
from trading.models import Market, Order, OrderCommand, OrderList, Trade


class MarketForm(forms.ModelForm):
    reason = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="Why the rules change (kept in the audit trail).",
    )

    class Meta:
        model = Market
        fields = ("base_asset", "quote_asset", "status", *services.RULE_FIELDS)

    def clean(self):
        data = super().clean()
        rules = {name: data[name] for name in services.RULE_FIELDS if data.get(name) is not None}
        try:
            # self.instance still holds the stored rules here (the form applies its data
            # after clean), which is what the check compares the live orders against.
            services.market_rules_validate(market=self.instance, rules=rules)
        except ValidationError as exc:
            self.add_error(None, exc)
        return data


@admin.register(Market)
class MarketAdmin(admin.ModelAdmin):
    form = MarketForm
    list_display = (
        "symbol",
        "status",
        "last_price",
        "tick_size",
        "lot_size",
        "min_qty",
        "max_qty",
        "min_notional",
        "maker_fee",
        "taker_fee",
        "seq",
    )
    list_filter = ("status", "quote_asset")
    search_fields = ("symbol",)
    actions = ["halt", "set_cancel_only", "resume"]
    matcher_fields = ("seq", "batches", "last_price", "created_at", "updated_at")

    def get_fieldsets(self, request, obj=None):
        head = ("base_asset", "quote_asset", "status")
        if obj:
            head = ("symbol", *head)
        fieldsets = [
            (None, {"fields": head}),
            ("Trading rules and fees", {"fields": services.RULE_FIELDS}),
        ]
        if self.has_change_permission(request, obj) or obj is None:
            fieldsets.append(("Why", {"fields": ("reason",)}))
        if obj:
            fieldsets.append(("Matcher", {"fields": self.matcher_fields}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        # The status changes only through the actions (halt, cancel-only, resume).
        return ("symbol", "base_asset", "quote_asset", "status", *self.matcher_fields)

    def has_delete_permission(self, request, obj=None):
        return False

    def has_status_permission(self, request):
        return request.user.has_perm("trading.change_market_status")

    def save_model(self, request, obj, form, change):
        reason = form.cleaned_data["reason"]
        if change:
            rules = {name: form.cleaned_data[name] for name in services.RULE_FIELDS}
            market = services.market_rules_update(
                market_id=obj.pk, rules=rules, actor=request.user, reason=reason
            )
        else:
            market = services.market_create(
                base_asset=form.cleaned_data["base_asset"],
                quote_asset=form.cleaned_data["quote_asset"],
                status=form.cleaned_data["status"],
                rules={name: form.cleaned_data[name] for name in services.RULE_FIELDS},
                actor=request.user,
                reason=reason,
            )
        obj.pk, obj.symbol = market.pk, market.symbol

    def _set_status(self, request, queryset, status: str, *, title: str, question: str):
        return run_each_with_reason(
            self,
            request,
            queryset,
            lambda market, reason: services.market_status_set(
                market_id=market.pk, status=status, actor=request.user, reason=reason
            ),
            title=title,
            question=question,
            done=f"{{count}} market(s) now {status.replace('_', '-')}.",
        )

    @admin.action(
        description="Halt selected markets (no orders, no cancels)", permissions=["status"]
    )
    def halt(self, request, queryset):
        return self._set_status(
            request,
            queryset,
            Market.Status.HALTED,
            title="Halt markets",
            question="Halt these markets? New orders and cancels are refused and the matcher "
            "stops; queued commands wait until the market resumes.",
        )

    @admin.action(description="Set selected markets to cancel-only", permissions=["status"])
    def set_cancel_only(self, request, queryset):
        return self._set_status(
            request,
            queryset,
            Market.Status.CANCEL_ONLY,
            title="Cancel-only",
            question="Put these markets in cancel-only? New orders are refused, queued ones are "
            "rejected, cancels still run.",
        )

    @admin.action(description="Resume trading on selected markets", permissions=["status"])
    def resume(self, request, queryset):
        return self._set_status(
            request,
            queryset,
            Market.Status.TRADING,
            title="Resume trading",
            question="Resume trading on these markets?",
        )


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "created_at",
        "user",
        "market",
        "side",
        "order_type",
        "price",
        "quantity",
        "filled_quantity",
        "reserved",
        "status",
        "reason",
        "order_list",
    )
    list_filter = ("status", "market", user_filter("user"), "side", "order_type")
    search_fields = ("=id", "=order_list__id", "user__email", "user__username", "client_order_id")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    ("user", "market", "client_order_id"),
                    ("side", "order_type", "time_in_force", "post_only"),
                    ("price", "stop_price", "quantity", "quote_quantity"),
                    ("status", "reason"),
                    ("filled_quantity", "filled_quote", "fee_total", "reserved"),
                    ("created_at", "updated_at"),
                )
            },
        ),
        (
            "Order types",
            {
                "fields": (
                    ("iceberg_quantity", "iceberg_visible"),
                    ("trailing_delta", "trailing_peak"),
                    "order_list",
                )
            },
        ),
        ("Matcher", {"fields": (("rested_seq", "rested_rank"),)}),
    )
    list_select_related = ("user", "market")
    date_hierarchy = "created_at"
    show_full_result_count = False
    actions = ["cancel_selected"]

    def has_cancel_permission(self, request):
        return request.user.has_perm("trading.cancel_order")

    @admin.action(
        description="Cancel selected orders (queues cancel commands)", permissions=["cancel"]
    )
    def cancel_selected(self, request, queryset):
        reason, form = reason_for_action(
            self,
            request,
            queryset,
            title="Cancel orders",
            question="Cancel these orders? The matcher cancels them and releases their funds "
            "(in a halted market once it resumes). Orders already done are skipped.",
        )
        if form:
            return form
        queued = services.orders_cancel_by_operator(
            order_ids=list(queryset.values_list("pk", flat=True)),
            actor=request.user,
            reason=reason,
        )
        self.message_user(request, f"Cancel queued for {len(queued)} order(s).")
        return None


class OrderListLegs(admin.TabularInline):
    model = Order
    fields = ("id", "order_type", "price", "stop_price", "quantity", "filled_quantity", "reserved")
    fields += ("status", "reason")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ("id",)

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(OrderList)
class OrderListAdmin(ReadOnlyAdmin):
    """OCO lists and their legs; cancelled through a leg (which ends both)."""

    list_display = ("id", "created_at", "user", "market", "kind", "status", "client_list_id")
    list_filter = ("status", "market", "kind", user_filter("user"))
    search_fields = ("=id", "user__email", "user__username", "client_list_id")
    list_select_related = ("user", "market")
    date_hierarchy = "created_at"
    show_full_result_count = False
    inlines = [OrderListLegs]


@admin.register(Trade)
class TradeAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "created_at",
        "market",
        "price",
        "quantity",
        "quote_quantity",
        "taker_side",
        "buyer",
        "seller",
        "buyer_fee",
        "seller_fee",
    )
    list_filter = ("market", "taker_side", user_filter("buyer", "seller"))
    search_fields = ("=id", "=buy_order__id", "=sell_order__id", "buyer__email", "seller__email")
    list_select_related = ("market", "buyer", "seller")
    date_hierarchy = "created_at"
    show_full_result_count = False


class PendingFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "pending"

    def lookups(self, request, model_admin):
        return [("yes", "pending"), ("no", "processed")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(processed_at__isnull=self.value() == "yes")
        return queryset


@admin.register(OrderCommand)
class OrderCommandAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "created_at",
        "market",
        "kind",
        "order",
        "quantity",
        "processed_at",
        "batch",
    )
    list_filter = (PendingFilter, "market", "kind")
    search_fields = ("=order__id",)
    list_select_related = ("market", "order")
    date_hierarchy = "created_at"
    show_full_result_count = False
