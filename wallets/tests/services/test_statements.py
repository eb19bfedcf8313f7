"""The balance and ledger parts wallets lends to other apps' single statements."""

from decimal import Decimal

import pytest

from wallets.balances import BalanceChange
from wallets.models import LedgerKind
from wallets.statements import SqlPart, ledger_insert_cte, reserve_cte, reserves_batch

RESERVE = BalanceChange(
    7, 3, LedgerKind.ORDER_RESERVE, "order", None, available=Decimal("-2.5"), locked=Decimal("2.5")
)
CREDIT = BalanceChange(7, 3, LedgerKind.ADJUSTMENT, "adjustment", 1, available=Decimal("2.5"))


def test_reserve_cte_is_the_conditional_reserve_joined_to_the_callers_gate():
    gate = SqlPart("g.id = %s", [42])

    part = reserve_cte(
        name="bal", change=RESERVE, now="t", gate_table="gates AS g", gate_condition=gate
    )

    assert part.sql.startswith("bal AS (UPDATE wallets_balance AS b ")
    assert "FROM gates AS g WHERE g.id = %s AND b.user_id = %s" in part.sql
    assert "b.available >= %s" in part.sql
    assert part.params == [Decimal("2.5"), Decimal("2.5"), "t", 42, 7, 3, Decimal("2.5")]
    assert part.sql.count("%s") == len(part.params)


def test_only_a_reserve_can_be_made_a_reserve_statement():
    with pytest.raises(ValueError, match="not a reserve"):
        reserve_cte(
            name="bal", change=CREDIT, now="t", gate_table="g", gate_condition=SqlPart("true", [])
        )
    with pytest.raises(ValueError, match="not a reserve of user 8"):
        reserves_batch(user_id=8, changes=[RESERVE], now="t")


def test_the_ledger_line_takes_its_reference_from_the_callers_row():
    part = ledger_insert_cte(name="led", change=RESERVE, source="ord", reference_id="ord.id")

    assert part.sql.startswith("led AS (INSERT INTO wallets_ledgerentry (")
    assert part.sql.endswith(" FROM ord)")
    assert "ord.id" in part.sql
    assert part.sql.count("%s") == len(part.params)


def test_a_batch_sums_its_reserves_per_asset():
    other = RESERVE._replace(asset_id=4, available=Decimal("-1"), locked=Decimal("1"))

    batch = reserves_batch(user_id=7, changes=[RESERVE, RESERVE, other], now="t")

    assert batch.reserved == {3: Decimal("5.0"), 4: Decimal("1")}
    assert batch.ledger.sql.startswith("led AS (INSERT INTO ")
    assert batch.update.sql.startswith("UPDATE wallets_balance AS b ")
    assert batch.update.params[1:] == ["{3,4}", "{5.0,1}", 7]
