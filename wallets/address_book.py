"""Saved withdrawal addresses and the allow-list (ARCHITECTURE §4).

A saved address is usable only after a cool-down (``WITHDRAWAL_ADDRESS_COOLDOWN_SECONDS``)
and its owner is emailed when one is added, so whoever steals a session cannot add an
address and empty the account before the owner hears of it. With the allow-list on,
withdrawals go only to saved addresses past their cool-down.
"""

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone

from accounts.audit import operator_action_record, reason_require
from accounts.exceptions import AccountFrozen
from accounts.models import User
from accounts.twofactor import two_factor_require
from exchange_site.mail import email_send_on_commit, site_url
from wallets.exceptions import (
    AssetInactive,
    WithdrawalAddressCoolingDown,
    WithdrawalAddressExists,
    WithdrawalAddressNotAllowed,
    WithdrawalAddressNotFound,
)
from wallets.models import Asset, WithdrawalAddress, WithdrawalProfile, WithdrawalTier
from wallets.selectors import asset_get_by_code


def _when(moment) -> str:
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M} UTC"


def withdrawal_profile_get(*, user: User) -> WithdrawalProfile:
    """The account's withdrawal settings (defaults until one is saved; not written)."""
    return WithdrawalProfile.objects.filter(user_id=user.pk).first() or WithdrawalProfile(user=user)


def withdrawal_address_list_for_user(*, user: User) -> QuerySet[WithdrawalAddress]:
    return WithdrawalAddress.objects.filter(user=user).select_related("asset")


def address_validate(address: str) -> str:
    """On the simulated chain an address is any 1–128 printable characters."""
    if not isinstance(address, str) or not 1 <= len(address) <= 128 or not address.isprintable():
        raise ValidationError({"address": ["An address is 1 to 128 printable characters."]})
    return address


def _label_validate(label: str) -> str:
    label = (label or "").strip()
    if not 1 <= len(label) <= 64 or not label.isprintable():
        raise ValidationError({"label": ["A label is 1 to 64 printable characters."]})
    return label


@transaction.atomic
def withdrawal_address_add(
    *,
    user: User,
    asset_code: str,
    address: str,
    label: str,
    otp_code: str | None = None,
    ip: str | None = None,
) -> WithdrawalAddress:
    """Save a withdrawal address of one asset under a label; usable after the cool-down.

    Needs a current two-factor code when two-factor authentication is on (locks the device
    row). Emails the owner after commit. Raises ``AccountFrozen`` (403), ``AssetInactive``
    (422), ``ValidationError`` (400) for a bad address or label, ``OtpRequired`` /
    ``OtpInvalid`` (403) and ``WithdrawalAddressExists`` (409).
    """
    if user.is_frozen:
        raise AccountFrozen()
    asset = asset_get_by_code(code=asset_code)
    if not asset.is_active:
        raise AssetInactive(details={"asset": asset.code})
    address = address_validate(address)
    label = _label_validate(label)
    two_factor_require(user=user, otp_code=otp_code, ip=ip)
    now = timezone.now()
    try:
        with transaction.atomic():
            saved = WithdrawalAddress.objects.create(
                user=user,
                asset=asset,
                address=address,
                label=label,
                usable_from=now + timedelta(seconds=settings.WITHDRAWAL_ADDRESS_COOLDOWN_SECONDS),
            )
    except IntegrityError:
        raise WithdrawalAddressExists(details={"asset": asset.code, "address": address}) from None
    email_send_on_commit(
        to=user.email,
        template="withdrawal_address_added",
        context={
            "username": user.username,
            "asset": asset.code,
            "address": address,
            "label": label,
            "when": _when(now),
            "usable_from": _when(saved.usable_from),
            "ip": ip or "unknown",
            "wallet_url": site_url(reverse("wallet")),
        },
    )
    return saved


@transaction.atomic
def withdrawal_address_delete(*, user: User, address_id: int) -> None:
    """Remove one of the account's saved addresses (withdrawals keep their own copy).
    Raises ``WithdrawalAddressNotFound`` (404, also for another account's)."""
    deleted, _ = WithdrawalAddress.objects.filter(user=user, pk=address_id).delete()
    if not deleted:
        raise WithdrawalAddressNotFound(details={"address_id": address_id})


@transaction.atomic
def withdrawal_allowlist_set(
    *, user: User, enabled: bool, otp_code: str | None = None, ip: str | None = None
) -> WithdrawalProfile:
    """Turn the allow-list on or off. Turning it off needs a current two-factor code when
    two-factor authentication is on (``OtpRequired`` / ``OtpInvalid``, 403); either change
    is emailed to the owner. Locks the profile row."""
    WithdrawalProfile.objects.get_or_create(user=user)
    profile = WithdrawalProfile.objects.select_for_update().get(user=user)
    if profile.allowlist_enabled == enabled:
        return profile
    if not enabled:
        two_factor_require(user=user, otp_code=otp_code, ip=ip)
    profile.allowlist_enabled = enabled
    profile.allowlist_changed_at = timezone.now()
    profile.save(update_fields=["allowlist_enabled", "allowlist_changed_at", "updated_at"])
    email_send_on_commit(
        to=user.email,
        template="withdrawal_allowlist_changed",
        context={
            "username": user.username,
            "enabled": enabled,
            "when": _when(profile.allowlist_changed_at),
            "ip": ip or "unknown",
            "wallet_url": site_url(reverse("wallet")),
        },
    )
    return profile


def withdrawal_destination_resolve(
    *, user: User, asset: Asset, address: str | None, address_id: int | None
) -> str:
    """The address a withdrawal request goes to, checked against the address book.

    ``address_id`` names a saved address (it must belong to the account and asset and be
    past its cool-down); a plain ``address`` is taken as given unless the allow-list is on,
    when it must match such a saved address. Raises ``WithdrawalAddressNotFound`` (404),
    ``WithdrawalAddressCoolingDown`` and ``WithdrawalAddressNotAllowed`` (422).
    """
    now = timezone.now()
    saved = None
    if address_id is not None:
        saved = WithdrawalAddress.objects.filter(user=user, asset=asset, pk=address_id).first()
        if saved is None:
            raise WithdrawalAddressNotFound(details={"address_id": address_id})
    elif withdrawal_profile_get(user=user).allowlist_enabled:
        saved = WithdrawalAddress.objects.filter(user=user, asset=asset, address=address).first()
        if saved is None:
            raise WithdrawalAddressNotAllowed(details={"asset": asset.code, "address": address})
    if saved is None:
        return address
    if saved.usable_from > now:
        raise WithdrawalAddressCoolingDown(
            f"The address “{saved.label}” can be used from {_when(saved.usable_from)}.",
            details={"address_id": saved.pk, "usable_from": saved.usable_from.isoformat()},
        )
    return saved.address


@transaction.atomic
def withdrawal_tier_grant(
    *, user: User, tier: WithdrawalTier | None, operator: User, reason: str
) -> WithdrawalProfile:
    """An operator puts an account in ``tier`` (None: back to the default), with a reason
    kept in the audit trail. Locks the profile row."""
    reason = reason_require(reason)
    WithdrawalProfile.objects.get_or_create(user=user)
    profile = WithdrawalProfile.objects.select_for_update().get(user=user)
    previous = profile.tier
    profile.tier = tier
    profile.tier_granted_by = operator
    profile.tier_granted_at = timezone.now()
    profile.save(update_fields=["tier", "tier_granted_by", "tier_granted_at", "updated_at"])
    operator_action_record(
        actor=operator,
        action="withdrawal_tier_grant",
        target=user,
        reason=reason,
        details={
            "from": previous.code if previous else None,
            "to": tier.code if tier else None,
        },
    )
    return profile
