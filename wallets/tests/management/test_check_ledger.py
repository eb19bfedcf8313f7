"""``manage.py check_ledger`` reports ARCHITECTURE §4's invariants and fails on any violation."""

import json
import os
import subprocess
import sys
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from accounts.tests.factories import UserFactory
from wallets import services
from wallets.models import Balance, LedgerCheckRun
from wallets.tests.helpers import withdrawal_request_confirmed

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[3]


def check_ledger():
    """Run the command; return (exit code, output)."""
    out = StringIO()
    try:
        call_command("check_ledger", stdout=out)
    except CommandError as exc:
        return exc.returncode, out.getvalue()
    return 0, out.getvalue()


def violations(output):
    return [json.loads(line[line.index("{") :]) for line in output.splitlines() if "{" in line]


@pytest.fixture
def books(user, other_user, btc, usd, fund, operator):
    """Deposits, a pending and a completed withdrawal, an adjustment: a ledger in use."""
    fund(user, btc, "2")
    fund(other_user, usd, "500")
    withdrawal_request_confirmed(user=user, asset_code="BTC", amount=Decimal("0.5"), address="a")
    done = withdrawal_request_confirmed(
        user=other_user, asset_code="USD", amount=Decimal(100), address="b"
    )
    services.withdrawal_approve(withdrawal_id=done.pk, reviewer=operator)
    services.withdrawal_process(withdrawal_id=done.pk)
    adjustment = services.balance_adjust(
        user=user, asset=btc, amount=Decimal("0.1"), reason="goodwill", operator=operator
    )
    services.balance_adjustment_approve(
        adjustment_id=adjustment.pk, reviewer=UserFactory(is_staff=True)
    )


def test_check_ledger_passes_on_clean_books_and_stores_the_run(books):
    code, output = check_ledger()

    assert code == 0, output
    assert "ledger OK" in output
    assert violations(output) == []
    run = LedgerCheckRun.objects.get()
    assert run.ok is True
    assert run.violations == []
    assert run.summary["assets"]["USD"] == {
        "held": "400",
        "locked": "0",
        "deposited": "500",
        "withdrawn": "100",
        "adjusted": "0",
    }
    assert run.summary["assets"]["BTC"]["locked"] == "0.5001"


def test_check_ledger_counts_only_applied_adjustments(user, btc, fund, operator):
    """A pending adjustment has moved no money (nor has a rejected one), so the books still
    balance while one waits for its second operator."""
    fund(user, btc, "1")
    services.balance_adjust(
        user=user, asset=btc, amount=Decimal("0.1"), reason="awaits review", operator=operator
    )
    rejected = services.balance_adjust(
        user=user, asset=btc, amount=Decimal("-0.2"), reason="mistake", operator=operator
    )
    services.balance_adjustment_reject(
        adjustment_id=rejected.pk, reviewer=UserFactory(is_staff=True), reason="typo"
    )

    code, output = check_ledger()

    assert code == 0, output
    assert LedgerCheckRun.objects.get().summary["assets"]["BTC"]["adjusted"] == "0"


def test_check_ledger_passes_on_an_empty_database(db):
    assert check_ledger()[0] == 0


def test_check_ledger_catches_a_balance_changed_behind_the_ledger(books, user, btc):
    Balance.objects.filter(user=user, asset=btc).update(available=Decimal("99"))

    code, output = check_ledger()

    assert code == 1
    found = violations(output)
    assert {v["invariant"] for v in found} == {2, 3}
    balance_violation = next(v for v in found if v["invariant"] == 2)
    assert balance_violation["user_id"] == user.pk
    assert balance_violation["asset"] == "BTC"
    assert balance_violation["balance_available"] == "99"
    assert balance_violation["ledger_available"] == "1.5999"
    total_violation = next(v for v in found if v["invariant"] == 3)
    assert (total_violation["asset"], total_violation["held"]) == ("BTC", "99.5001")
    run = LedgerCheckRun.objects.get()
    assert run.ok is False
    assert len(run.violations) == 2


def test_check_ledger_catches_locked_money_without_a_withdrawal(books, other_user, usd):
    Balance.objects.filter(user=other_user, asset=usd).update(locked=Decimal(7))

    code, output = check_ledger()

    assert code == 1
    found = violations(output)
    assert {v["invariant"] for v in found} == {2, 3, 4}
    locked_violation = next(v for v in found if v["invariant"] == 4)
    assert locked_violation == {
        "invariant": 4,
        "message": "locked differs from what open reserves hold",
        "user_id": other_user.pk,
        "asset": "USD",
        "locked": "7",
        "reserved": "0",
    }


def test_check_ledger_catches_a_negative_balance(books, user, btc):
    # A CHECK constraint forbids it; drop that inside the test's transaction (rolled back).
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE wallets_balance DROP CONSTRAINT balance_available_gte_0")
    Balance.objects.filter(user=user, asset=btc).update(available=Decimal(-1))

    code, output = check_ledger()

    assert code == 1
    assert 1 in {v["invariant"] for v in violations(output)}


@pytest.mark.django_db(transaction=True)
def test_check_ledger_as_a_process_exits_0_then_1_after_corruption(user, btc, fund):
    fund(user, btc, "1")
    database = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": (
            f"postgres://{database['USER']}:{database['PASSWORD'] or ''}@{database['HOST']}:"
            f"{database['PORT']}/{database['NAME']}"
        ),
    }
    command = [sys.executable, "manage.py", "check_ledger"]

    clean = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    Balance.objects.filter(user=user, asset=btc).update(available=Decimal(2))
    broken = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)

    assert clean.returncode == 0, clean.stderr
    assert "ledger OK" in clean.stdout
    assert broken.returncode == 1, broken.stderr
    assert '"invariant": 2' in broken.stdout
    assert "violation" in broken.stderr
    assert LedgerCheckRun.objects.filter(ok=False).count() == 1
