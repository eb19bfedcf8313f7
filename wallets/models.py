"""Balances and the append-only ledger that explains every change to them (ARCHITECTURE §4)."""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q

# ARCHITECTURE §4: every amount is stored with 18 decimal places, whatever the asset's precision.
AMOUNT_MAX_DIGITS = 36
AMOUNT_DECIMAL_PLACES = 18
AMOUNT_QUANTUM = Decimal(1).scaleb(-AMOUNT_DECIMAL_PLACES)
ZERO = Decimal(0)


def AmountField(**kwargs):
    kwargs.setdefault("default", ZERO)
    return models.DecimalField(
        max_digits=AMOUNT_MAX_DIGITS, decimal_places=AMOUNT_DECIMAL_PLACES, **kwargs
    )


class Asset(models.Model):
    """A currency the exchange holds: BTC, ETH, USD ..."""

    code = models.CharField(max_length=12, unique=True, help_text="Upper case, e.g. BTC.")
    name = models.CharField(max_length=64)
    precision = models.PositiveSmallIntegerField(
        help_text="Decimal places allowed for deposits and withdrawals (at most 18)."
    )
    min_withdrawal = AmountField()
    withdrawal_fee = AmountField()
    confirmations_required = models.PositiveIntegerField(default=1)
    reference_price = models.DecimalField(
        max_digits=AMOUNT_MAX_DIGITS,
        decimal_places=AMOUNT_DECIMAL_PLACES,
        null=True,
        blank=True,
        default=None,
        help_text="What one unit is worth in the withdrawal limits' reference asset (USD) when "
        "no market prices it: used only while no trade gives a price. Empty: withdrawals of "
        "an unpriced asset are refused.",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(precision__lte=AMOUNT_DECIMAL_PLACES), name="asset_precision_max_18"
            ),
            models.CheckConstraint(
                condition=Q(min_withdrawal__gte=0) & Q(withdrawal_fee__gte=0),
                name="asset_withdrawal_amounts_not_negative",
            ),
        ]

    def __str__(self):
        return self.code

    @property
    def quantum(self) -> Decimal:
        """The smallest amount that may enter or leave: 0.01 for USD, 0.00000001 for BTC."""
        return Decimal(1).scaleb(-self.precision)


class Balance(models.Model):
    """What one account holds of one asset: ``available`` to use, ``locked`` in reserves.

    Changed only through ``wallets.services``, each change paired with a LedgerEntry.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT)
    available = AmountField()
    locked = AmountField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["user_id", "asset_id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "asset"], name="balance_one_per_user_asset"),
            models.CheckConstraint(condition=Q(available__gte=0), name="balance_available_gte_0"),
            models.CheckConstraint(condition=Q(locked__gte=0), name="balance_locked_gte_0"),
        ]

    def __str__(self):
        return f"{self.user_id}:{self.asset_id} {self.available}/{self.locked}"

    @property
    def total(self) -> Decimal:
        return self.available + self.locked


class LedgerKind(models.TextChoices):
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"
    WITHDRAWAL_FEE = "withdrawal_fee"
    ORDER_RESERVE = "order_reserve"
    ORDER_RELEASE = "order_release"
    TRADE = "trade"
    FEE = "fee"
    ADJUSTMENT = "adjustment"


class LedgerEntry(models.Model):
    """One change of one balance. Append-only: never updated, never deleted.

    ``reference_type``/``reference_id`` name what caused it (``withdrawal`` 12, ``trade`` 7).
    On PostgreSQL a trigger refuses UPDATE and DELETE outright.
    """

    # (user, asset, -id) below serves lookups by user; a separate FK index on either key
    # would only cost every insert (the matcher writes thousands a batch): nothing reads
    # ledger lines by asset alone except an aggregate over all of them (ledger_check).
    # In the database a line references its balance, (user_id, asset_id) of Balance, which
    # references the user and the asset (wallets 0008): one check per line instead of two,
    # and no lock on the asset row every transaction's lines share.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, db_index=False, db_constraint=False
    )
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, db_index=False, db_constraint=False)
    available_delta = AmountField()
    locked_delta = AmountField()
    kind = models.CharField(max_length=16, choices=LedgerKind.choices)
    reference_type = models.CharField(max_length=32)
    reference_id = models.BigIntegerField(null=True, blank=True)
    memo = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "ledger entries"
        # No index by reference: no query looks a line up by what caused it (wallets 0007).
        indexes = [
            models.Index(fields=["user", "asset", "-id"], name="ledger_user_asset_id"),
        ]

    def __str__(self):
        return f"{self.kind} {self.asset_id} {self.available_delta}/{self.locked_delta}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise ValueError("Ledger entries are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Ledger entries are append-only.")


class DepositAddress(models.Model):
    """The stable address a user deposits one asset to (on the simulated chain)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT)
    address = models.CharField(max_length=128, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "deposit addresses"
        constraints = [
            models.UniqueConstraint(fields=["user", "asset"], name="deposit_address_per_user_asset")
        ]

    def __str__(self):
        return self.address


class Deposit(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        CONFIRMED = "confirmed"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT)
    amount = AmountField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    tx_id = models.CharField(max_length=128, unique=True)
    address = models.CharField(max_length=128, blank=True)
    confirmations = models.PositiveIntegerField(default=0)
    confirmations_required = models.PositiveIntegerField(default=1)
    is_demo = models.BooleanField(default=False, help_text="Credited by the demo faucet.")
    created_at = models.DateTimeField(auto_now_add=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["user", "-id"], name="deposit_user_id"),
            models.Index(fields=["status"], name="deposit_pending", condition=Q(status="pending")),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="deposit_amount_gt_0")
        ]

    def __str__(self):
        return f"deposit {self.pk} {self.amount} {self.asset_id} {self.status}"


class Withdrawal(models.Model):
    """Money leaving: requested by its owner, confirmed from the emailed link, approved by
    one operator (two above the asset's threshold), then sent on the chain."""

    class Status(models.TextChoices):
        AWAITING_CONFIRMATION = "awaiting_confirmation", "Awaiting email confirmation"
        REQUESTED = "requested", "Awaiting review"
        AWAITING_SECOND_APPROVAL = "awaiting_second_approval", "Awaiting second approval"
        APPROVED = "approved"
        PROCESSING = "processing"
        COMPLETED = "completed"
        REJECTED = "rejected"
        CANCELLED = "cancelled"
        EXPIRED = "expired", "Expired unconfirmed"

    # Statuses whose amount + fee still sit in the user's locked balance.
    RESERVING = (
        Status.AWAITING_CONFIRMATION,
        Status.REQUESTED,
        Status.AWAITING_SECOND_APPROVAL,
        Status.APPROVED,
        Status.PROCESSING,
    )
    # Statuses that count against the rolling 24-hour limit: all but those that gave the
    # money back.
    COUNTING = (*RESERVING, Status.COMPLETED)
    # Statuses an operator acts on.
    IN_REVIEW = (Status.REQUESTED, Status.AWAITING_SECOND_APPROVAL)
    # Statuses the owner may still cancel: no operator has approved it.
    CANCELLABLE = (Status.AWAITING_CONFIRMATION, *IN_REVIEW)

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT)
    amount = AmountField()
    fee = AmountField()
    address = models.CharField(max_length=128)
    status = models.CharField(
        max_length=24, choices=Status.choices, default=Status.AWAITING_CONFIRMATION
    )
    limit_value = AmountField(
        help_text="The amount's worth in the limits' reference asset when requested: what it "
        "counts against the rolling 24-hour limit."
    )
    needs_second_approval = models.BooleanField(
        default=False, help_text="Over the asset's four-eyes threshold: two operators approve."
    )
    tx_id = models.CharField(max_length=128, blank=True)
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="Released unless confirmed from the email by then."
    )
    confirmed_at = models.DateTimeField(null=True, blank=True)
    first_approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    first_approved_at = models.DateTimeField(null=True, blank=True)
    first_approval_note = models.CharField(max_length=500, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="reviewed_withdrawals",
    )
    review_note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["user", "-id"], name="withdrawal_user_id"),
            models.Index(fields=["status", "id"], name="withdrawal_status_id"),
            models.Index(
                fields=["expires_at"],
                name="withdrawal_unconfirmed",
                condition=Q(status="awaiting_confirmation"),
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="withdrawal_amount_gt_0"),
            models.CheckConstraint(condition=Q(fee__gte=0), name="withdrawal_fee_gte_0"),
            # Four eyes, kept by the database too: who approved second is not who approved
            # first, and no operator approves their own withdrawal.
            models.CheckConstraint(
                condition=Q(first_approved_by__isnull=True)
                | ~Q(status__in=["approved", "processing", "completed"])
                | ~Q(first_approved_by=F("reviewed_by")),
                name="withdrawal_two_approvers",
            ),
            models.CheckConstraint(
                condition=(Q(reviewed_by__isnull=True) | ~Q(reviewed_by=F("user")))
                & (Q(first_approved_by__isnull=True) | ~Q(first_approved_by=F("user"))),
                name="withdrawal_not_approved_by_owner",
            ),
        ]

    def __str__(self):
        amount = format(self.amount.normalize(), "f")
        return f"withdrawal #{self.pk} of {amount} {self.asset.code} ({self.get_status_display()})"

    @property
    def total(self) -> Decimal:
        """What the user pays: the amount sent plus the fee."""
        return self.amount + self.fee


class WithdrawalTier(models.Model):
    """A rolling 24-hour withdrawal limit, valued in the reference asset (USD). Verified
    accounts get the default tier; operators grant others per account."""

    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=64)
    daily_limit = AmountField(
        help_text="Most that may leave in any 24 hours, in the reference asset (USD)."
    )
    is_default = models.BooleanField(
        default=False, help_text="The tier of every verified account without another."
    )
    description = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["daily_limit", "code"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="one_default_tier"
            ),
            models.CheckConstraint(condition=Q(daily_limit__gte=0), name="tier_daily_limit_gte_0"),
        ]

    def __str__(self):
        return self.name


class WithdrawalProfile(models.Model):
    """One account's withdrawal settings: its tier (empty: the default) and whether only
    saved addresses may be used."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        primary_key=True,
        on_delete=models.PROTECT,
        related_name="withdrawal_profile",
    )
    tier = models.ForeignKey(WithdrawalTier, null=True, blank=True, on_delete=models.PROTECT)
    tier_granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    tier_granted_at = models.DateTimeField(null=True, blank=True)
    allowlist_enabled = models.BooleanField(
        default=False, help_text="Withdrawals only to saved addresses past their cool-down."
    )
    allowlist_changed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"withdrawal profile of {self.user_id}"


class WithdrawalAddress(models.Model):
    """A saved withdrawal address of one asset. Usable from ``usable_from`` on (a cool-down
    after it is added), so a thief who adds one is seen in the owner's email first."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT)
    address = models.CharField(max_length=128)
    label = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    usable_from = models.DateTimeField()

    class Meta:
        ordering = ["asset_id", "label", "id"]
        verbose_name_plural = "withdrawal addresses"
        constraints = [
            models.UniqueConstraint(
                fields=["user", "asset", "address"], name="withdrawal_address_once"
            ),
        ]

    def __str__(self):
        return f"{self.label} ({self.address})"


class BalanceAdjustment(models.Model):
    """An operator's manual credit or debit, with the reason written down. Applied only when
    a second operator approves it."""

    class Status(models.TextChoices):
        PENDING = "pending", "Awaiting second approval"
        APPLIED = "applied"
        REJECTED = "rejected"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT)
    amount = AmountField(help_text="Positive credits, negative debits the available balance.")
    reason = models.CharField(max_length=500)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["id"], name="adjustment_pending", condition=Q(status="pending"))
        ]
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="adjustment_amount_not_0"),
            models.CheckConstraint(
                condition=~Q(status="applied") | ~Q(reviewed_by=F("created_by")),
                name="adjustment_applied_by_another",
            ),
        ]

    def __str__(self):
        amount = format(self.amount.normalize(), "f")
        return f"adjustment #{self.pk} of {amount} {self.asset.code} ({self.get_status_display()})"


class LedgerCheckRun(models.Model):
    """The outcome of one ``check_ledger`` run, kept for the operators' dashboard."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    ok = models.BooleanField()
    summary = models.JSONField(default=dict)
    violations = models.JSONField(default=list)

    class Meta:
        verbose_name = "ledger check"
        verbose_name_plural = "ledger checks"
        ordering = ["-id"]

    def __str__(self):
        return f"ledger check {self.finished_at:%Y-%m-%d %H:%M} {'ok' if self.ok else 'FAILED'}"


# --- Proof of liabilities (wallets/proofs.py, wallets/liabilities.py) --------------------
# Sums of many balances can outgrow AmountField's 36 digits; node sums are 1e-18 units.
LIABILITY_TOTAL_MAX_DIGITS = 60
LIABILITY_UNITS_MAX_DIGITS = 78  # 2^256 - 1 has 78 digits


class LiabilitySnapshot(models.Model):
    """Every account's balance of every asset at one moment, committed to one Merkle sum
    tree per asset (``LiabilityRoot``); only the roots and totals are published."""

    taken_at = models.DateTimeField(help_text="When the balances were read (one statement).")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return f"liabilities {self.pk} at {self.taken_at:%Y-%m-%d %H:%M:%S}"


class LiabilityRoot(models.Model):
    """One asset's tree in a snapshot: the published root hash and total."""

    snapshot = models.ForeignKey(LiabilitySnapshot, on_delete=models.CASCADE, related_name="roots")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+")
    root_hash = models.CharField(max_length=64, help_text="Hex SHA-256.")
    total = models.DecimalField(
        max_digits=LIABILITY_TOTAL_MAX_DIGITS, decimal_places=AMOUNT_DECIMAL_PLACES
    )
    leaf_count = models.PositiveIntegerField()

    class Meta:
        ordering = ["snapshot_id", "asset_id"]
        constraints = [
            models.UniqueConstraint(fields=["snapshot", "asset"], name="liability_root_per_asset"),
            models.CheckConstraint(condition=Q(total__gte=0), name="liability_total_gte_0"),
        ]

    def __str__(self):
        return f"{self.asset_id} {self.root_hash[:12]} {self.total}"


class LiabilityLeaf(models.Model):
    """One account's balance in one tree, with the salt only its owner is shown.

    The leaf's hash is not stored: it follows from the salt, user, asset and balance."""

    root = models.ForeignKey(
        LiabilityRoot, on_delete=models.CASCADE, related_name="leaves", db_index=False
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    index = models.PositiveIntegerField()
    salt = models.CharField(max_length=32, help_text="Hex, 16 random bytes.")
    balance = AmountField(help_text="available + locked when the snapshot was taken.")

    class Meta:
        ordering = ["root_id", "index"]
        verbose_name_plural = "liability leaves"
        constraints = [
            # The owner's lookup, and the block of neighbours a path is rebuilt from.
            models.UniqueConstraint(fields=["user", "root"], name="liability_leaf_per_user"),
            models.UniqueConstraint(fields=["root", "index"], name="liability_leaf_index"),
            models.CheckConstraint(condition=Q(balance__gt=0), name="liability_leaf_balance_gt_0"),
        ]

    def __str__(self):
        return f"leaf {self.index} of {self.root_id}"


class LiabilityNode(models.Model):
    """A node of a tree at level ``wallets.liabilities.NODES_STORED_FROM_LEVEL`` (4) or
    above. The levels below are rebuilt from a block of 16 leaves when a proof is asked for:
    storing them would cost 16 times the rows to save hashing 31 nodes."""

    root = models.ForeignKey(
        LiabilityRoot, on_delete=models.CASCADE, related_name="nodes", db_index=False
    )
    level = models.PositiveSmallIntegerField()
    position = models.PositiveIntegerField()
    hash = models.CharField(max_length=64, help_text="Hex SHA-256.")
    sum_units = models.DecimalField(max_digits=LIABILITY_UNITS_MAX_DIGITS, decimal_places=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["root", "level", "position"], name="liability_node_position"
            ),
        ]

    def __str__(self):
        return f"node {self.level}/{self.position} of {self.root_id}"
