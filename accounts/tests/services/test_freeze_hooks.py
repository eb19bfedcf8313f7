"""Freezing an account runs the hooks other apps register (trading: cancel the orders)."""

import pytest

from accounts import hooks
from accounts.models import OperatorAction
from accounts.services import user_freeze
from accounts.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def extra_hook():
    def register(name, hook):
        hooks.register_freeze_hook(name, hook)
        added.append(name)

    added = []
    yield register
    for name in added:
        hooks._freeze_hooks.pop(name)


def test_trading_registers_the_cancel_of_a_frozen_users_orders():
    assert "orders_cancel_queued" in hooks._freeze_hooks


def test_each_hook_sees_the_frozen_user_and_its_result_is_audited(extra_hook):
    seen = []
    extra_hook("seen", lambda *, user: seen.append((user.pk, user.is_frozen)) or "noted")
    user, operator = UserFactory(), UserFactory(is_staff=True)

    user_freeze(user_id=user.pk, actor=operator, reason="fraud report")

    assert seen == [(user.pk, True)]
    record = OperatorAction.objects.get(action="user_freeze")
    assert record.details == {"orders_cancel_queued": [], "seen": "noted"}


def test_a_failing_hook_undoes_the_freeze(extra_hook):
    def fail(*, user):
        raise RuntimeError("the other app failed")

    extra_hook("fails", fail)
    user, operator = UserFactory(), UserFactory(is_staff=True)

    with pytest.raises(RuntimeError):
        user_freeze(user_id=user.pk, actor=operator, reason="fraud report")

    user.refresh_from_db()
    assert not user.is_frozen
    assert not OperatorAction.objects.exists()
