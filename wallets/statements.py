"""Wallets' parts of other apps' single SQL statements.

Order entry accepts an order in ONE statement (``trading.services.orders``): the reserve,
the order, its ledger line and its place command are data-modifying CTEs of one ``WITH``,
one round trip and atomic without a transaction. The balance and ledger parts are built
here, so that wallets stays the only code that writes its tables, and they are the same
conditional reserve (``available >= amount``) and ledger line as ``wallets.balances``'. The
caller places each part in its statement and passes the parameters in the order of the
statement's text.
"""

from collections.abc import Sequence
from decimal import Decimal
from typing import NamedTuple

from exchange_site.db import array_literal, insert_select, unnest_insert
from wallets.balances import LEDGER_COLUMNS, BalanceChange, ledger_entry, ledger_row
from wallets.models import ZERO, LedgerEntry


class SqlPart(NamedTuple):
    """A piece of SQL and its parameters, in text order."""

    sql: str
    params: list


def reserve_cte(
    *, name: str, change: BalanceChange, now, gate_table: str, gate_condition: SqlPart
) -> SqlPart:
    """``<name> AS (UPDATE ... RETURNING b.available, b.locked)``: moves ``change.locked``
    from the available to the locked balance of ``change``'s user and asset, and returns
    the new (available, locked). Updates nothing, and returns no row, when the available
    balance does not cover it or when no row of the caller's ``gate_table`` (a FROM item,
    ``trading_market AS m``) meets ``gate_condition``: the caller's own condition (order
    entry's: the market still trades under the rules the order was checked against).
    ``change`` must be a reserve (``available == -locked``)."""
    amount = change.locked
    if change.available != -amount:
        raise ValueError(f"{change!r} is not a reserve")
    return SqlPart(
        f"{name} AS (UPDATE wallets_balance AS b SET available = b.available - %s, "
        f"locked = b.locked + %s, updated_at = %s FROM {gate_table} "
        f"WHERE {gate_condition.sql} "
        "AND b.user_id = %s AND b.asset_id = %s AND b.available >= %s "
        "RETURNING b.available, b.locked)",
        [amount, amount, now, *gate_condition.params, change.user_id, change.asset_id, amount],
    )


def ledger_insert_cte(
    *, name: str, change: BalanceChange, source: str, reference_id: str
) -> SqlPart:
    """``<name> AS (INSERT INTO <ledger> ... SELECT ... FROM <source>)``: ``change``'s ledger
    line, written once per row of the caller's CTE ``source`` (none when it has none), with
    the SQL expression ``reference_id`` over that row as its reference (``ord.id``: the id
    of the order the same statement inserts)."""
    entry = ledger_entry(change)  # its reference_id is replaced by the SQL expression
    columns, values, params = insert_select(entry, {"reference_id": reference_id})
    return SqlPart(
        f"{name} AS (INSERT INTO wallets_ledgerentry ({columns}) SELECT {values} FROM {source})",
        params,
    )


class BatchReserve(NamedTuple):
    """The balance and ledger parts of a batch of reserves of one user."""

    ledger: SqlPart  # a CTE: ``<name> AS (INSERT INTO <ledger> SELECT * FROM unnest(...))``
    update: SqlPart  # the statement's main UPDATE of the balances, which comes last
    reserved: dict[int, Decimal]  # asset id → the total it reserves


def reserves_batch(
    *, user_id: int, changes: Sequence[BalanceChange], now, ledger_name: str = "led"
) -> BatchReserve:
    """One user's reserves ``changes`` (each ``available == -locked``, references set) as
    one ledger CTE and one UPDATE of the user's balance rows, any number of them with a
    handful of parameters. The UPDATE is unconditional: the caller must hold the balance
    rows' locks (``wallets.balances.balances_lock``) and have checked that each available
    balance covers its total, ``reserved``."""
    reserved: dict[int, Decimal] = {}
    for change in changes:
        if change.user_id != user_id or change.available != -change.locked:
            raise ValueError(f"{change!r} is not a reserve of user {user_id}")
        reserved[change.asset_id] = reserved.get(change.asset_id, ZERO) + change.locked
    ledger_sql, ledger_params = unnest_insert(
        LedgerEntry, LEDGER_COLUMNS, [ledger_row(change, now) for change in changes]
    )
    assets = sorted(reserved)
    update = SqlPart(
        "UPDATE wallets_balance AS b SET available = b.available - v.amount, "
        "locked = b.locked + v.amount, updated_at = %s "
        "FROM unnest(%s::text::bigint[], %s::text::numeric[]) AS v(asset_id, amount) "
        "WHERE b.user_id = %s AND b.asset_id = v.asset_id",
        [
            now,
            array_literal(assets),
            array_literal([reserved[asset_id] for asset_id in assets]),
            user_id,
        ],
    )
    return BatchReserve(
        SqlPart(f"{ledger_name} AS ({ledger_sql})", ledger_params), update, reserved
    )
