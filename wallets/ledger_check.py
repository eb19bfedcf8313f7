"""The money invariants of ARCHITECTURE §4, checked over the whole database.

1. No balance is negative, available or locked.
2. For every account and asset, the balance equals the sum of its ledger entries.
3. For every asset, the sum of all balances (fee account included) equals confirmed
   deposits minus completed withdrawals plus operators' adjustments.
4. For every account and asset, ``locked`` equals what still reserves it: pending
   withdrawals here, and whatever other apps register with ``register_reserve_source``
   (live orders).
5. Registered by trading (``register_check``): trades, orders and fills agree.

Each check is one aggregate query per table; nothing is loaded row by row except the
(user, asset) pairs being compared.
"""

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Q
from django.utils import timezone

from exchange_site.db import decimal_sums
from exchange_site.decimals import decimal_to_str
from wallets.models import (
    ZERO,
    Asset,
    Balance,
    BalanceAdjustment,
    Deposit,
    LedgerCheckRun,
    LedgerEntry,
    Withdrawal,
)

# A reserve source returns {(user_id, asset_id): locked amount it accounts for}.
ReserveSource = Callable[[], dict[tuple[int, int], Decimal]]
_reserve_sources: dict[str, ReserveSource] = {}


def register_reserve_source(name: str, source: ReserveSource) -> None:
    """Let another app declare what it keeps locked (invariant 4)."""
    _reserve_sources[name] = source


# Further invariants of other apps (trading's invariant 5): each adds to the report.
_extra_checks: dict[str, "Callable[[LedgerReport], None]"] = {}


def register_check(name: str, check: "Callable[[LedgerReport], None]") -> None:
    """Let another app add its own invariant checks to every ``ledger_check`` run."""
    _extra_checks[name] = check


def _withdrawal_reserves() -> dict[tuple[int, int], Decimal]:
    sums = decimal_sums(
        Withdrawal.objects.filter(status__in=Withdrawal.RESERVING),
        ["user_id", "asset_id"],
        ["amount", "fee"],
    )
    return {pair: amount + fee for pair, (amount, fee) in sums.items()}


register_reserve_source("withdrawals", _withdrawal_reserves)


@dataclass
class LedgerReport:
    violations: list[dict] = field(default_factory=list)
    assets: dict[str, dict[str, str]] = field(default_factory=dict)
    balances_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.violations

    def add(self, invariant: int, message: str, **facts) -> None:
        self.violations.append({"invariant": invariant, "message": message, **facts})


def _fmt(value: Decimal) -> str:
    return decimal_to_str(value)


def ledger_check() -> LedgerReport:
    """Check invariants 1–4; returns every violation found and a summary per asset."""
    report = LedgerReport()
    codes = dict(Asset.objects.values_list("pk", "code"))

    balances = {
        (user_id, asset_id): (available, locked)
        for user_id, asset_id, available, locked in Balance.objects.values_list(
            "user_id", "asset_id", "available", "locked"
        )
    }
    report.balances_checked = len(balances)

    # 1. Nothing negative (the CHECK constraints should make this impossible).
    for user_id, asset_id, available, locked in Balance.objects.filter(
        Q(available__lt=0) | Q(locked__lt=0)
    ).values_list("user_id", "asset_id", "available", "locked"):
        report.add(
            1,
            "negative balance",
            user_id=user_id,
            asset=codes[asset_id],
            available=_fmt(available),
            locked=_fmt(locked),
        )

    # 2. Each balance is the sum of its ledger entries.
    ledger = {
        pair: tuple(sums)
        for pair, sums in decimal_sums(
            LedgerEntry.objects.all(), ["user_id", "asset_id"], ["available_delta", "locked_delta"]
        ).items()
    }
    for pair in sorted(balances.keys() | ledger.keys()):
        held = balances.get(pair, (ZERO, ZERO))
        explained = ledger.get(pair, (ZERO, ZERO))
        if held != explained:
            report.add(
                2,
                "balance differs from the sum of its ledger entries",
                user_id=pair[0],
                asset=codes[pair[1]],
                balance_available=_fmt(held[0]),
                balance_locked=_fmt(held[1]),
                ledger_available=_fmt(explained[0]),
                ledger_locked=_fmt(explained[1]),
            )

    # 3. Per asset: what is held equals what came in minus what went out.
    def per_asset(queryset, amount_field="amount"):
        sums = decimal_sums(queryset, ["asset_id"], [amount_field])
        return {asset_id: total or ZERO for (asset_id,), (total,) in sums.items()}

    deposited = per_asset(Deposit.objects.filter(status=Deposit.Status.CONFIRMED))
    withdrawn = per_asset(Withdrawal.objects.filter(status=Withdrawal.Status.COMPLETED))
    adjusted = per_asset(BalanceAdjustment.objects.filter(status=BalanceAdjustment.Status.APPLIED))
    held_per_asset: dict[int, Decimal] = defaultdict(lambda: ZERO)
    locked_per_asset: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for (_, asset_id), (available, locked) in balances.items():
        held_per_asset[asset_id] += available + locked
        locked_per_asset[asset_id] += locked
    for asset_id, code in sorted(codes.items(), key=lambda item: item[1]):
        expected = (
            deposited.get(asset_id, ZERO)
            - withdrawn.get(asset_id, ZERO)
            + adjusted.get(asset_id, ZERO)
        )
        held = held_per_asset[asset_id]
        report.assets[code] = {
            "held": _fmt(held),
            "locked": _fmt(locked_per_asset[asset_id]),
            "deposited": _fmt(deposited.get(asset_id, ZERO)),
            "withdrawn": _fmt(withdrawn.get(asset_id, ZERO)),
            "adjusted": _fmt(adjusted.get(asset_id, ZERO)),
        }
        if held != expected:
            report.add(
                3,
                "total held differs from deposits - withdrawals + adjustments",
                asset=code,
                held=_fmt(held),
                expected=_fmt(expected),
            )

    # 4. Locked equals what still reserves it.
    reserved: dict[tuple[int, int], Decimal] = defaultdict(lambda: ZERO)
    for source in _reserve_sources.values():
        for pair, amount in source().items():
            reserved[pair] += amount
    for pair in sorted(balances.keys() | reserved.keys()):
        locked = balances.get(pair, (ZERO, ZERO))[1]
        if locked != reserved.get(pair, ZERO):
            report.add(
                4,
                "locked differs from what open reserves hold",
                user_id=pair[0],
                asset=codes[pair[1]],
                locked=_fmt(locked),
                reserved=_fmt(reserved.get(pair, ZERO)),
            )

    for check in _extra_checks.values():
        check(report)
    return report


def ledger_check_run() -> LedgerCheckRun:
    """Check the money invariants now and keep the outcome for the operators' dashboard."""
    started_at = timezone.now()
    report = ledger_check()
    return LedgerCheckRun.objects.create(
        started_at=started_at,
        finished_at=timezone.now(),
        ok=report.ok,
        summary={"assets": report.assets, "balances_checked": report.balances_checked},
        violations=report.violations[:1000],
    )
