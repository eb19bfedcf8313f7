"""What other apps do when an account is frozen, registered by them (trading cancels the
user's live orders), the way ``wallets.ledger_check.register_reserve_source`` works.

accounts sits below the apps that hold a user's activity: it cannot import them, so each
registers its hook from its ``AppConfig.ready``. A hook runs inside the freeze's
transaction, so its writes commit or roll back with the freeze.
"""

from collections.abc import Callable
from typing import Any

from accounts.models import User

# A hook takes the frozen user (keyword ``user``) and returns what it did, for the audit
# record of the freeze (JSON-serialisable).
FreezeHook = Callable[..., Any]
_freeze_hooks: dict[str, FreezeHook] = {}


def register_freeze_hook(name: str, hook: FreezeHook) -> None:
    """Run ``hook(user=...)`` whenever an account is frozen; ``name`` keys its result in the
    freeze's audit details. Registering a name again replaces its hook."""
    _freeze_hooks[name] = hook


def freeze_hooks_run(*, user: User) -> dict[str, Any]:
    """Run every registered freeze hook for ``user``, in registration order; returns
    {name: what the hook returned}. A hook's error propagates and undoes the freeze."""
    return {name: hook(user=user) for name, hook in _freeze_hooks.items()}
