"""The yardstick's four tables and its funded users, written with psycopg alone."""

import psycopg

ASSETS = ("USD", "BTC")

SCHEMA = """
CREATE TABLE yard_balance (
    user_id integer NOT NULL,
    asset varchar(10) NOT NULL,
    available numeric(36, 18) NOT NULL CHECK (available >= 0),
    locked numeric(36, 18) NOT NULL CHECK (locked >= 0),
    PRIMARY KEY (user_id, asset)
);
CREATE TABLE yard_order (
    id bigserial PRIMARY KEY,
    user_id integer NOT NULL,
    symbol varchar(20) NOT NULL,
    side varchar(4) NOT NULL,
    order_type varchar(10) NOT NULL,
    price numeric(36, 18),
    quantity numeric(36, 18) NOT NULL,
    reserved numeric(36, 18) NOT NULL,
    status varchar(16) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX yard_order_user ON yard_order (user_id, id);
CREATE TABLE yard_outbox (
    id bigserial PRIMARY KEY,
    payload jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE yard_ledger (
    id bigserial PRIMARY KEY,
    user_id integer NOT NULL,
    asset varchar(10) NOT NULL,
    delta_available numeric(36, 18) NOT NULL,
    delta_locked numeric(36, 18) NOT NULL,
    kind varchar(20) NOT NULL,
    order_id bigint,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX yard_ledger_user ON yard_ledger (user_id, asset, id);
"""


def create(url: str, users: int, funds: str = "1000000000") -> None:
    """Create the tables in the (empty) database ``url`` and fund users 1..``users``."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SCHEMA)
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO yard_balance VALUES (%s, %s, %s, 0)",
                [(user, asset, funds) for user in range(1, users + 1) for asset in ASSETS],
            )


def counts(url: str) -> dict[str, int]:
    """Rows per table, to check that every accepted order wrote all four."""
    with psycopg.connect(url) as conn:
        return {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("yard_order", "yard_outbox", "yard_ledger")
        }
