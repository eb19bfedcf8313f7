"""A PostgreSQL primary and a streaming hot-standby replica, each its own throwaway cluster.

``start_primary_and_replica(tmpdir)`` runs ``initdb`` for the primary, starts it, copies it
with ``pg_basebackup -R`` (which writes ``standby.signal`` and the ``primary_conninfo``) and
starts the copy as a hot standby that streams the primary's WAL: real replication, with real
replay lag when replay is paused. It returns ``(primary_url, replica_url, controls)``; the
URLs name the database ``exchange`` (created on the primary, so present on the replica).

Both servers are ``devservers.postgres.PostgresServer`` s (as root, in a user namespace; see
that module), on free ports of 127.0.0.1, with the machine's PostgreSQL binaries when
installed. Durability is off as for every throwaway cluster (``fsync``), except
``full_page_writes`` (a base backup's consistency relies on it) and ``synchronous_commit``.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import psycopg

from devservers.postgres import SUPERUSER, PostgresServer, bin_dir, free_port, unprivileged
from testsupport.stack import _die_with_parent

DATABASE = "exchange"
CATCH_UP_TIMEOUT = 30.0
_PRIMARY_SETTINGS = {
    "full_page_writes": "on",
    # A commit is in the WAL sent to replicas when it returns: what production runs, and
    # what lets a probe that compares WAL positions see every committed write.
    "synchronous_commit": "on",
    "wal_level": "replica",
    "max_wal_senders": "10",
    # Keeps enough WAL for a replica stopped for a while to catch up by streaming alone.
    "wal_keep_size": "256MB",
    # No commits but the test's own: a test that checks "caught up" or "idle for a second"
    # must not race autovacuum's analyze of a freshly migrated database.
    "autovacuum": "off",
}
_REPLICA_SETTINGS = {
    "hot_standby": "on",
    # Reports replay progress quickly (the lag the router measures) and avoids query
    # cancellations on the replica from vacuum on the primary.
    "wal_receiver_status_interval": "1s",
    "hot_standby_feedback": "on",
}


def _query(dsn: str, sql: str, params: list | None) -> list[tuple]:
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        cursor = conn.execute(sql, params or [])
        return cursor.fetchall() if cursor.description else []


class ReplicaControls:
    """Handles on the pair: the two servers, and the faults tests make (pause replay, stop
    or start the replica, wait for it to catch up)."""

    def __init__(self, primary: PostgresServer, replica: PostgresServer, directory: Path):
        self.primary = primary
        self.replica = replica
        self.directory = directory

    def primary_dsn(self, database: str = DATABASE) -> str:
        return self.primary.dsn(database)

    def replica_dsn(self, database: str = DATABASE) -> str:
        return f"host=127.0.0.1 port={self.replica.port} user={SUPERUSER} dbname={database}"

    def query_primary(self, sql: str, params: list | None = None) -> list[tuple]:
        """Run ``sql`` on the primary in autocommit; its rows (none for a command)."""
        return _query(self.primary_dsn(), sql, params)

    def query_replica(self, sql: str, params: list | None = None) -> list[tuple]:
        """Run ``sql`` on the replica (read only); its rows."""
        return _query(self.replica_dsn(), sql, params)

    def pause_replay(self) -> None:
        """Stop applying WAL on the replica (it still receives it): from here the replica's
        data ages while the primary moves on, which is real replication lag."""
        self.query_replica("SELECT pg_wal_replay_pause()")
        deadline = time.monotonic() + CATCH_UP_TIMEOUT
        while self.query_replica("SELECT pg_get_wal_replay_pause_state()")[0][0] != "paused":
            if time.monotonic() > deadline:
                raise TimeoutError("the replica did not pause its replay")
            time.sleep(0.02)

    def resume_replay(self) -> None:
        self.query_replica("SELECT pg_wal_replay_resume()")

    def stop_replica(self) -> None:
        """Fast shutdown of the replica: its sessions end, new connections are refused."""
        self.replica.stop(mode="fast")

    def start_replica(self) -> None:
        """Start the replica again on the same port; it resumes streaming where it stopped."""
        self.replica.start()

    def wait_caught_up(self, timeout: float = CATCH_UP_TIMEOUT) -> None:
        """Wait until the replica has replayed everything the primary had written when this
        was called."""
        target = self.query_primary("SELECT pg_current_wal_insert_lsn()::text")[0][0]
        deadline = time.monotonic() + timeout
        while True:
            (done,) = self.query_replica("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [target])[
                0
            ]
            if done:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the replica did not replay up to {target}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop both servers and delete their data."""
        try:
            self.replica.stop(mode="fast")
        finally:
            self.primary.stop(mode="fast")
            shutil.rmtree(self.directory, ignore_errors=True)


def start_primary_and_replica(
    tmpdir: Path | str, *, log_dir: Path | str | None = None
) -> tuple[str, str, ReplicaControls]:
    """Start a primary and its streaming hot-standby replica under ``tmpdir``.

    Returns ``(primary_url, replica_url, controls)``; call ``controls.stop()`` when done.
    Raises ``devservers.postgres.PostgresUnavailable`` (with the server's log) if either
    cannot start, or ``RuntimeError`` if ``pg_basebackup`` fails.
    """
    directory = Path(tmpdir)
    logs = Path(log_dir) if log_dir else directory
    binaries = bin_dir(prefer="system")
    primary = PostgresServer(
        directory / "primary",
        binaries=binaries,
        port=free_port(),
        log_path=logs / "pg-primary.log",
        durable=False,
        settings=_PRIMARY_SETTINGS,
        preexec_fn=_die_with_parent,
    )
    primary.start()
    replica = PostgresServer(
        directory / "replica",
        binaries=binaries,
        port=free_port(),
        log_path=logs / "pg-replica.log",
        durable=False,
        settings=_REPLICA_SETTINGS,
        preexec_fn=_die_with_parent,
    )
    controls = ReplicaControls(primary, replica, directory)
    try:
        primary.ensure_database(DATABASE)
        command = [
            str(binaries / "pg_basebackup"),
            *("-D", str(replica.data_dir), "-h", "127.0.0.1", "-p", str(primary.port)),
            *("-U", SUPERUSER, "-R", "-X", "stream", "--checkpoint=fast", "--no-sync"),
        ]
        result = subprocess.run(
            unprivileged(command), capture_output=True, text=True, timeout=120, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"pg_basebackup failed ({result.returncode}):\n{result.stderr[-2000:]}"
            )
        replica.start()
        controls.wait_caught_up()
    except BaseException:
        controls.stop()
        raise
    return primary.url(DATABASE), replica.url(DATABASE), controls
