"""Order entry over HTTP beside its yardstick, on one machine in one run.

    .venv/bin/python bench/http_order_entry.py [--clients 32] [--seconds 20] [--rounds 3]

Two servers run side by side under the same ``gunicorn.conf.py`` (the same workers):

- ``exchange``: the real web process (``exchange_site.wsgi``) with ``run_matcher``, on a
  fresh database with the demo markets;
- ``yardstick``: ``bench/yardstick``, a bare DRF view doing order entry's database work in
  one transaction (conditional balance UPDATE, order INSERT, outbox INSERT, ledger INSERT)
  and nothing else, on a fresh database of its own.

Both are driven by the same generator (``bench/loadtest.py``'s clients: closed loop, single
limit orders around the market price, a fifth of them crossing) for ``--seconds`` per run,
alternating exchange and yardstick ``--rounds`` times after a warm-up of each, with the
order-entry tables of the server about to be measured vacuumed before each of its runs. The
machines this runs on differ by up to 2.5x, so the figures that travel are the ratios:
exchange orders/s over yardstick orders/s, and exchange p99 over yardstick p99 (medians of
the rounds).

At the end the exchange's orders are cancelled, the matcher must drain and ``check_ledger``
must pass, and the yardstick's tables must hold one order, one outbox row and two ledger
rows per accepted order. Prints one JSON line; exits 1 if any check fails or a run saw a 5xx
or transport error. DROPS and recreates the databases ``exchange_bench_http`` and
``exchange_bench_yardstick`` (``BENCH_DATABASE_URL`` / ``YARDSTICK_DATABASE_URL``).
"""

import argparse
import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import benchdb

BENCH_DATABASE_URL = benchdb.setup(
    database="exchange_bench_http", redis_db=15, allowed_hosts="127.0.0.1,localhost"
)

import loadtest  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import close_old_connections, connection  # noqa: E402
from yardstick import schema  # noqa: E402

YARDSTICK_DATABASE_URL = os.environ.get("YARDSTICK_DATABASE_URL", BENCH_DATABASE_URL + "_yardstick")
GUNICORN = str(benchdb.ROOT / ".venv" / "bin" / "gunicorn")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_http(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{process.args} exited with {process.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"nothing answered at {url}")


class Servers:
    """The exchange's web and matcher processes and the yardstick's web process."""

    def __init__(self, var_dir: str):
        self.var_dir = var_dir
        self.processes: list[subprocess.Popen] = []
        self.exchange_url = self.yardstick_url = ""
        self.meters: dict[str, CpuMeter] = {}

    def _start(self, name: str, args: list[str], env: dict) -> subprocess.Popen:
        log = open(os.path.join(self.var_dir, f"{name}.log"), "w")  # noqa: SIM115
        process = subprocess.Popen(
            args, env=env, cwd=benchdb.ROOT, stdout=log, stderr=subprocess.STDOUT
        )
        self.processes.append(process)
        return process

    def start(self) -> None:
        # The exchange as deployed: throttling on (50 orders/s per user; 32 users stay under it).
        env = dict(os.environ, VAR_DIR=self.var_dir, DEBUG="0", ALLOWED_HOSTS="127.0.0.1")
        env["PROMETHEUS_MULTIPROC_DIR"] = os.path.join(self.var_dir, "prometheus")
        os.makedirs(env["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
        port = _free_port()
        web = self._start(
            "exchange-web",
            [GUNICORN, "exchange_site.wsgi", "-c", "gunicorn.conf.py", "-b", f"127.0.0.1:{port}"],
            env,
        )
        matcher = self._start("matcher", [sys.executable, "manage.py", "run_matcher"], env)
        self.exchange_url = f"http://127.0.0.1:{port}"
        yard_env = dict(
            env,
            DJANGO_SETTINGS_MODULE="bench.yardstick.settings",
            YARDSTICK_DATABASE_URL=YARDSTICK_DATABASE_URL,
        )
        yard_port = _free_port()
        yard = self._start(
            "yardstick-web",
            [
                GUNICORN,
                "bench.yardstick.wsgi",
                "-c",
                "gunicorn.conf.py",
                "-b",
                f"127.0.0.1:{yard_port}",
            ],
            yard_env,
        )
        self.yardstick_url = f"http://127.0.0.1:{yard_port}"
        _wait_http(f"{self.exchange_url}/health", web)
        _wait_http(f"{self.yardstick_url}/api/v1/users/profile", yard)
        self.meters = {
            "exchange": CpuMeter(web, matcher, BENCH_DATABASE_URL),
            "yardstick": CpuMeter(yard, None, YARDSTICK_DATABASE_URL),
        }

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_seconds(pids) -> dict[int, float]:
    """User plus system CPU seconds each of the processes ``pids`` has used (Linux /proc);
    a process already gone is left out."""
    used = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rpartition(")")[2].split()
        except OSError:
            continue
        used[pid] = (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime
    return used


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            return [int(child) for child in children.read().split()]
    except OSError:
        return []


def _backends(database_url: str) -> list[int]:
    """The PostgreSQL backends connected to the database of ``database_url``."""
    import psycopg

    name = database_url.rpartition("/")[2]
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        ).fetchall()
    return [row[0] for row in rows]


class CpuMeter:
    """CPU seconds per accepted order of one server's parts over one run: its web workers,
    the matcher (the exchange only) and the PostgreSQL backends serving its database."""

    def __init__(self, web: subprocess.Popen, matcher: subprocess.Popen | None, database: str):
        self.web, self.matcher, self.database = web, matcher, database

    def _parts(self) -> dict[str, list[int]]:
        parts = {"web": _children(self.web.pid), "postgres": _backends(self.database)}
        if self.matcher is not None:
            parts["matcher"] = [self.matcher.pid]
        return parts

    def start(self) -> None:
        self._pids = self._parts()
        self._before = {part: _cpu_seconds(pids) for part, pids in self._pids.items()}

    def per_order_ms(self, accepted: int) -> dict[str, float]:
        # The processes there at the start and still there (persistent workers and
        # connections; the generator's own short connections are not the server's).
        result = {}
        for part, pids in self._pids.items():
            before, after = self._before[part], _cpu_seconds(pids)
            used = sum(after[pid] - before[pid] for pid in after if pid in before)
            result[f"{part}_cpu_ms"] = round(used * 1000 / max(accepted, 1), 3)
        return result


def vacuum_yardstick() -> None:
    import psycopg

    with psycopg.connect(YARDSTICK_DATABASE_URL, autocommit=True) as conn:
        for table in ("yard_balance", "yard_order", "yard_outbox", "yard_ledger"):
            conn.execute(f"VACUUM (ANALYZE) {table}")


def measure(options: dict, plan, tokens, meter: CpuMeter | None = None) -> dict:
    """One closed-loop run of the generator; orders/s, latency percentiles and, with a
    ``meter``, CPU milliseconds per accepted order of each part of the server."""
    if meter is not None:
        meter.start()
    stats, elapsed = loadtest._run_loop(loadtest.drive(options, plan, tokens))
    latencies = sorted(stats.latencies)
    broken = {k: v for k, v in stats.errors.items() if k.startswith(("5", "transport"))}
    return {
        "orders_per_s": round(stats.accepted / elapsed, 1),
        "accepted": stats.accepted,
        "p50_ms": round(loadtest.percentile(latencies, 0.50) * 1000, 1),
        "p99_ms": round(loadtest.percentile(latencies, 0.99) * 1000, 1),
        **(meter.per_order_ms(stats.accepted) if meter is not None else {}),
        "load_average": round(os.getloadavg()[0], 2),
        "errors": dict(stats.errors),
        "broken": broken,
    }


_SUMMED = ("orders_per_s", "p50_ms", "p99_ms", "web_cpu_ms", "matcher_cpu_ms", "postgres_cpu_ms")


def summary(runs: list[dict]) -> dict:
    keys = [k for k in _SUMMED if k in runs[0]]
    return {
        **{k: statistics.median(r[k] for r in runs) for k in keys},
        "runs": [{k: r[k] for k in (*keys, "load_average")} for r in runs],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup-seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    call_command("seed_demo", verbosity=0, stdout=io.StringIO())
    benchdb.recreate_database(YARDSTICK_DATABASE_URL)
    schema.create(YARDSTICK_DATABASE_URL, users=args.clients)
    options = {
        "symbol": "BTC-USD",
        "mix": "limit=100",
        "batch": False,
        "batch_size": 1,
        "clients": args.clients,
        "users": args.clients,
        "seed": args.seed,
        "no_progress": True,
        "orders": None,
    }
    plan, tokens, users = loadtest.prepare(options)
    yard_tokens = [(n, f"yard-{n}") for n in range(1, args.clients + 1)]
    close_old_connections()
    var_dir = tempfile.mkdtemp(prefix="bench-http-")
    servers = Servers(var_dir)
    runs: dict[str, list[dict]] = {"exchange": [], "yardstick": []}
    try:
        servers.start()
        targets = {
            "exchange": (servers.exchange_url, tokens, loadtest.vacuum_order_tables),
            "yardstick": (servers.yardstick_url, yard_tokens, vacuum_yardstick),
        }
        for url, target_tokens, _ in targets.values():
            measure({**options, "url": url, "duration": args.warmup_seconds}, plan, target_tokens)
        for round_ in range(args.rounds):
            order = ("exchange", "yardstick") if round_ % 2 == 0 else ("yardstick", "exchange")
            for name in order:
                url, target_tokens, vacuum = targets[name]
                vacuum()
                close_old_connections()
                result = measure(
                    {**options, "url": url, "duration": args.seconds},
                    plan,
                    target_tokens,
                    servers.meters[name],
                )
                runs[name].append(result)
                print(f"{name:9} round {round_ + 1}: {json.dumps(result)}", file=sys.stderr)
        from trading.services import order_cancel_all

        for user in users:
            order_cancel_all(user=user)
        drained = loadtest.wait_for_drain(120)
        ledger_ok = loadtest.ledger_ok()[0] if drained else False
    finally:
        servers.stop()
        connection.close()
    accepted = sum(r["accepted"] for r in runs["yardstick"])
    rows = schema.counts(YARDSTICK_DATABASE_URL)
    # Warm-up orders are in the tables too; every row must come in the right proportion.
    yardstick_rows_ok = (
        rows["yard_order"] == rows["yard_outbox"] == rows["yard_ledger"] // 2
        and rows["yard_order"] >= accepted
    )
    exchange, yardstick = summary(runs["exchange"]), summary(runs["yardstick"])
    broken = [r["broken"] for rs in runs.values() for r in rs if r["broken"]]
    report = {
        "clients": args.clients,
        "seconds": args.seconds,
        "rounds": args.rounds,
        "fast_path": os.environ.get("ORDER_ENTRY_FAST_PATH", "1") not in ("0", "false", "off"),
        "exchange": exchange,
        "yardstick": yardstick,
        "ratio_orders_per_s": round(exchange["orders_per_s"] / yardstick["orders_per_s"], 3),
        "ratio_p99": round(exchange["p99_ms"] / yardstick["p99_ms"], 3),
        "vacuumed": True,
        "drained": drained,
        "ledger_ok": ledger_ok,
        "yardstick_rows_ok": yardstick_rows_ok,
        "errors": broken,
    }
    print(json.dumps(report))
    shutil.rmtree(var_dir, ignore_errors=True)
    return 0 if drained and ledger_ok and yardstick_rows_ok and not broken else 1


if __name__ == "__main__":
    sys.exit(main())
