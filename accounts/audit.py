"""The operators' audit trail: every operator action is recorded, with its reason, by the
service that performs it (issue 8). Its own module because every app's operator services
record here, and accounts.services (which cancels a frozen user's orders through trading)
must not be one of their imports.
"""

from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import OperatorAction, User


def _target_fields(target) -> dict[str, str]:
    return {
        "target_type": target._meta.label_lower,
        "target_id": str(target.pk),
        "target_repr": str(target)[:200],
    }


@transaction.atomic
def operator_action_record(
    *, actor: User, action: str, target, reason: str = "", details: dict | None = None
) -> OperatorAction:
    """Append one row to the operators' audit trail: who (``actor``) did what (``action``)
    to which object (``target``, any model instance), and why.

    Called by the service that performs the action, inside its transaction, so the record
    exists exactly when the action took effect.
    """
    return OperatorAction.objects.create(
        actor=actor,
        action=action,
        reason=reason.strip(),
        details=details or {},
        **_target_fields(target),
    )


def operator_actions_record(
    *, actor: User, action: str, targets, reason: str = "", details: dict | None = None
) -> list[OperatorAction]:
    """``operator_action_record`` for many targets at once (one INSERT)."""
    return OperatorAction.objects.bulk_create(
        OperatorAction(
            actor=actor,
            action=action,
            reason=reason.strip(),
            details=details or {},
            **_target_fields(target),
        )
        for target in targets
    )


def reason_require(reason: str | None) -> str:
    """Every operator action states why; raises ``ValidationError`` keyed by ``reason``."""
    if not reason or not reason.strip():
        raise ValidationError({"reason": ["Give the reason for this action."]})
    return reason.strip()
