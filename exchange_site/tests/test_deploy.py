"""Issue 18, item 7: safe by default to deploy.

``docker-compose.yml`` refuses to start without a ``SECRET_KEY``, keeps the demo (faucet, demo
users, market maker, mail catcher) behind the ``demo`` profile, publishes only the reverse
proxy's ports, and the proxy (``deploy/Caddyfile``) sends every WebSocket route to daphne and
the rest to gunicorn. The settings rendered from the compose environment pass
``check --deploy``, the containers' health checks pass under them, and ``X-Forwarded-Proto`` (and
daphne's forwarded client address) is believed only behind a proxy (``NUM_PROXIES`` > 0).

There is no Docker engine on the test machines: the compose file is read as YAML and its
variables are resolved here as the compose specification says
(https://github.com/compose-spec/compose-spec/blob/main/spec.md#interpolation). Settings are read
once per process, so every environment runs in a subprocess of its own.
"""

import json
import os
import re
import signal
import smtplib
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml
from django.conf import settings as django_settings

from accounts.models import User
from exchange_site.routing import websocket_urlpatterns
from testsupport.stack import database_url, free_port

ROOT = Path(django_settings.BASE_DIR)
COMPOSE_FILE = ROOT / "docker-compose.yml"
CADDYFILE = ROOT / "deploy" / "Caddyfile"
# What an operator sets (docker-compose.yml's header); everything else keeps its default.
DOMAIN = "exchange.example.com"
OPERATOR_VARIABLES = {"SECRET_KEY": "k3y-" + "x" * 60, "DOMAIN": DOMAIN}
DEFAULT_SERVICES = {
    "postgres",
    "redis",
    "migrate",
    "web",
    "ws",
    "matcher",
    "worker",
    "beat",
    "caddy",
}
DEMO_COMMANDS = ("seed_demo", "run_marketmaker", "run_mailcatcher")
# Paths the WebSocket routes serve (marketdata/routing.py) and paths they must not take.
WEBSOCKET_PATHS = [
    "/ws",
    "/ws/",
    "/api/v1/ws/orderbook/BTC-USD",
    "/api/v1/ws/orderbook/eth_btc/",
    "/ws/orderbook/BTC/USD",
    "/api/v3/ws",
    "/api/v3/ws/",
    "/api/v3/ws/3",
    "/api/v3/ws/btcusdt@trade/ethbtc@depth",
    "/api/v3/stream",
    "/api/v3/stream/",
    "/api/v3/ws/" + "k" * 60,
    "/ws/" + "k" * 60,
    "/ws-api/v3",
]
HTTP_PATHS = [
    "/",
    "/health",
    "/metrics",
    "/wallet/",
    "/admin/",
    "/dev/mailbox/",
    "/static/js/ws.js",
    "/api/v1/markets",
    "/api/v1/wallets/deposits",
    "/api/v3/ping",
    "/api/v3/userDataStream",
    "/api/v3/ticker/price",
    "/api/docs/",
]


# --- compose interpolation ----------------------------------------------------------------


class MissingVariable(Exception):
    """A ``${NAME:?message}`` (or ``${NAME?message}``) whose variable is missing: compose stops."""


_REFERENCE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<named>[A-Za-z_][A-Za-z0-9_]*)|(?P<invalid>))"
)
_BRACED = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<operator>:?[-?+])(?P<argument>.*))?")


def interpolate(text: str, variables: Mapping[str, str]) -> str:
    """``text`` with its ``$`` references resolved as compose does: ``$$`` is a literal ``$``;
    ``${X:-d}`` / ``${X-d}`` default when X is unset or empty / unset; ``${X:?m}`` / ``${X?m}``
    fail; ``${X:+r}`` / ``${X+r}`` substitute r when X is set. Nested references are refused:
    the compose file stays readable by every compose version."""

    def substitute(match: re.Match) -> str:
        if match["escaped"]:
            return "$"
        if match["named"]:
            return variables.get(match["named"], "")
        braced = _BRACED.fullmatch(match["braced"] or "")
        if braced is None:
            raise ValueError(f"invalid interpolation in {text!r}")
        name, operator, argument = braced["name"], braced["operator"], braced["argument"]
        if argument and "$" in argument:
            raise ValueError(f"nested interpolation in {text!r}")
        value = variables.get(name)
        # With a colon the test is "set and not empty"; without, "set".
        present = value is not None and (value != "" or not (operator or "").startswith(":"))
        if not operator:
            return value or ""
        if operator.endswith("-"):
            return value if present else argument
        if operator.endswith("?"):
            if not present:
                raise MissingVariable(f"{name}: {argument}")
            return value
        return argument if present else ""

    return _REFERENCE.sub(substitute, text)


def _resolved(node, variables: Mapping[str, str]):
    if isinstance(node, str):
        return interpolate(node, variables)
    if isinstance(node, dict):
        return {key: _resolved(value, variables) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolved(item, variables) for item in node]
    return node


def compose(variables: Mapping[str, str] = OPERATOR_VARIABLES) -> dict:
    """docker-compose.yml as compose sees it with these variables (YAML merge keys included)."""
    return _resolved(yaml.safe_load(COMPOSE_FILE.read_text()), variables)


def app_environment(variables: Mapping[str, str] = OPERATOR_VARIABLES) -> dict[str, str]:
    """The environment of the web container, shared by every app service (``x-app``)."""
    environment = compose(variables)["services"]["web"]["environment"]
    # Quoted in the file: YAML would make 1 an int and on/off booleans.
    assert all(isinstance(value, str) for value in environment.values()), environment
    return environment


def local_stand_ins(tmp_path: Path) -> dict[str, str]:
    """What only exists inside the containers, replaced by this machine's: the test database
    and Redis for the hosts ``postgres`` and ``redis``, and the image's programs and /app/var."""
    return {
        "DATABASE_URL": database_url(),
        "REDIS_URL": os.environ["REDIS_URL"],
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "VAR_DIR": str(tmp_path / "var"),
        "MAILBOX_DIR": str(tmp_path / "var" / "mailbox"),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "var" / "prometheus"),
    }


def in_this_checkout(argument: str) -> str:
    """A path of the image (the checkout is copied to /app) as a path of this checkout."""
    return str(ROOT / argument.removeprefix("/app/")) if argument.startswith("/app/") else argument


def command_text(service: dict) -> str:
    command = service.get("command", "")
    return " ".join(command) if isinstance(command, list) else command


def test_the_resolver_follows_the_compose_rules():
    """The checks below are only as good as this resolver."""
    variables = {"SET": "v", "EMPTY": ""}

    assert interpolate("a$$b ${SET} $SET ${UNSET}", variables) == "a$b v v "
    assert interpolate("${EMPTY:-d} ${EMPTY-d} ${UNSET-d} ${SET:-d}", variables) == "d  d v"
    assert interpolate("${SET:+r} ${EMPTY:+r} ${EMPTY+r} ${UNSET+r}", variables) == "r  r "
    assert interpolate("${EMPTY?m}", variables) == ""
    with pytest.raises(MissingVariable, match="EMPTY: needed"):
        interpolate("${EMPTY:?needed}", variables)
    with pytest.raises(MissingVariable, match="UNSET: needed"):
        interpolate("${UNSET?needed}", variables)
    with pytest.raises(ValueError, match="nested"):
        interpolate("${UNSET:-${SET}}", variables)
    with pytest.raises(ValueError, match="invalid"):
        interpolate("price in $", variables)


# --- the compose file ------------------------------------------------------------------------


@pytest.mark.parametrize("variables", [{"DOMAIN": DOMAIN}, {"DOMAIN": DOMAIN, "SECRET_KEY": ""}])
def test_compose_refuses_to_start_without_a_secret_key(variables):
    with pytest.raises(MissingVariable, match="SECRET_KEY") as missing:
        compose(variables)

    # The error tells the operator how to make one.
    assert "secrets.token_urlsafe" in str(missing.value)


def test_compose_has_no_default_secret_key_anywhere():
    references = re.findall(r"\$\{SECRET_KEY[^}]*", COMPOSE_FILE.read_text())
    services = compose()["services"]

    assert references
    assert all(reference.startswith("${SECRET_KEY:?") for reference in references), references
    with_key = {n for n, s in services.items() if "SECRET_KEY" in s.get("environment", {})}
    assert with_key == set(services) - {"postgres", "redis", "caddy"}
    assert {services[name]["environment"]["SECRET_KEY"] for name in with_key} == {
        OPERATOR_VARIABLES["SECRET_KEY"]
    }


def test_compose_leaves_the_demo_off_unless_asked():
    production = app_environment()
    demo = app_environment({**OPERATOR_VARIABLES, "DEMO_MODE": "1"})

    assert production["DEBUG"] == "0"
    assert (production["DEMO_MODE"], production["DEMO_DEPOSITS"]) == ("0", "0")
    assert (demo["DEMO_MODE"], demo["DEMO_DEPOSITS"]) == ("1", "1")


def test_demo_commands_run_only_in_the_demo_profile():
    services = compose()["services"]
    running = {
        demo_command: [name for name, s in services.items() if demo_command in command_text(s)]
        for demo_command in DEMO_COMMANDS
    }

    for demo_command, names in running.items():
        assert names, f"no service runs {demo_command}"
        for name in names:
            assert services[name].get("profiles") == ["demo"], (name, demo_command)
    assert {name for name, s in services.items() if "profiles" not in s} == DEFAULT_SERVICES
    assert command_text(services["migrate"]) == "python manage.py migrate --noinput"


@pytest.mark.django_db(transaction=True)
def test_the_demo_seed_runs_only_with_demo_mode(tmp_path):
    """``docker compose --profile demo up`` without DEMO_MODE=1 would seed public passwords into
    an exchange whose faucet and mailbox page are off: the seed service stops first."""
    seed = compose()["services"]["demo-seed"]
    assert seed["command"][:2] == ["sh", "-c"]

    def run(variables):
        return subprocess.run(
            seed["command"],
            cwd=ROOT,
            env={**app_environment(variables), **local_stand_ins(tmp_path)},
            capture_output=True,
            text=True,
            timeout=120,
        )

    refused = run(OPERATOR_VARIABLES)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "needs DEMO_MODE=1" in refused.stderr
    assert not User.objects.filter(email="admin@example.com").exists()

    seeded = run({**OPERATOR_VARIABLES, "DEMO_MODE": "1"})
    assert seeded.returncode == 0, seeded.stdout + seeded.stderr
    assert User.objects.filter(email="admin@example.com", is_staff=True).exists()


def test_email_reaches_the_demo_mail_catcher_unless_production_names_its_server():
    services = compose()["services"]
    demo = app_environment()
    production = app_environment(
        {**OPERATOR_VARIABLES, "EMAIL_HOST": "smtp.example.com", "EMAIL_PORT": "587"}
    )
    catcher = services["mailcatcher"]["command"]

    assert (demo["EMAIL_HOST"], demo["EMAIL_PORT"]) == ("mailcatcher", "1025")
    assert catcher[catcher.index("--port") + 1] == demo["EMAIL_PORT"]
    assert (production["EMAIL_HOST"], production["EMAIL_PORT"]) == ("smtp.example.com", "587")
    assert demo["SITE_URL"] == f"https://{DOMAIN}"
    # The catcher writes the mailbox that web's /dev/mailbox/ reads.
    for name in ("web", "mailcatcher"):
        assert f"mailbox:{demo['MAILBOX_DIR']}" in services[name]["volumes"], name
    assert "mailbox" in compose()["volumes"]


def test_only_the_proxy_publishes_ports():
    services = compose()["services"]
    proxy = services["caddy"]

    assert {name for name, service in services.items() if "ports" in service} == {"caddy"}
    assert not [name for name, service in services.items() if "network_mode" in service]
    # The official image (Docker Hub's library/caddy), not a third party's.
    assert re.fullmatch(r"caddy:\d[\w.-]*", proxy["image"]), proxy["image"]
    assert {"80:80", "443:443"} <= set(proxy["ports"])
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    assert proxy["environment"]["DOMAIN"] == DOMAIN
    assert app_environment({"SECRET_KEY": "k"})["ALLOWED_HOSTS"] == "localhost"


# --- the reverse proxy ---------------------------------------------------------------------


def _caddyfile() -> tuple[list[str], list[tuple[str, str]]]:
    """The @websockets path patterns and each handle block's (matcher, upstream)."""
    text = "\n".join(line.split("#", 1)[0] for line in CADDYFILE.read_text().splitlines())
    patterns = re.search(r"^\s*@websockets\s+path\s+(.+)$", text, re.MULTILINE)[1].split()
    handles = re.findall(r"\bhandle(?:\s+(@\w+))?\s*\{\s*reverse_proxy\s+(\S+)\s*\}", text)
    return patterns, handles


def _caddy_path_matches(pattern: str, path: str) -> bool:
    """Caddy's path matcher for the two forms used: exact, or a prefix ending in ``*``
    (case-insensitive; https://caddyserver.com/docs/caddyfile/matchers#path)."""
    pattern, path = pattern.lower(), path.lower()
    assert "*" not in pattern[:-1], f"unsupported Caddy path pattern {pattern}"
    return path.startswith(pattern[:-1]) if pattern.endswith("*") else path == pattern


def _websocket_routes(path: str) -> list:
    # channels' URLRouter matches the path without its leading slash.
    return [route for route in websocket_urlpatterns if route.resolve(path.lstrip("/"))]


def test_the_sample_paths_cover_every_websocket_route():
    """A new WebSocket route without a sample here would go untested (and maybe unrouted)."""
    covered = {id(route) for path in WEBSOCKET_PATHS for route in _websocket_routes(path)}

    assert all(_websocket_routes(path) for path in WEBSOCKET_PATHS)
    assert covered == {id(route) for route in websocket_urlpatterns}
    assert not [path for path in HTTP_PATHS if _websocket_routes(path)]


def test_the_proxy_sends_websockets_to_daphne_and_the_rest_to_gunicorn():
    patterns, handles = _caddyfile()
    services = compose()["services"]
    daphne = services["ws"]["command"]
    web_port = services["web"]["environment"]["PORT"]

    assert handles == [
        ("@websockets", "ws:" + daphne[daphne.index("-p") + 1]),
        ("", f"web:{web_port}"),
    ]
    for path in WEBSOCKET_PATHS:
        assert any(_caddy_path_matches(pattern, path) for pattern in patterns), path
    for path in HTTP_PATHS:
        assert not any(_caddy_path_matches(pattern, path) for pattern in patterns), path
    assert CADDYFILE.read_text().count("{$DOMAIN:localhost} {") == 1


# --- the settings the compose environment renders ------------------------------------------


def _django(code: str, environment: Mapping[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup()\n{code}"],
        cwd=ROOT,
        env={**environment, "DJANGO_SETTINGS_MODULE": "exchange_site.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _check_deploy(environment: Mapping[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_the_compose_environment(tmp_path):
    result = _check_deploy({**app_environment(), **local_stand_ins(tmp_path)})

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr


def test_check_deploy_warns_without_the_compose_security_settings(tmp_path):
    """The check above is clean because of the compose file's values, not because it is blind."""
    environment = {**app_environment(), **local_stand_ins(tmp_path)}
    for name in ("SECURE_SSL_REDIRECT", "SECURE_COOKIES", "SECURE_HSTS_SECONDS"):
        environment.pop(name)

    result = _check_deploy(environment)

    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stdout + result.stderr


def test_compose_renders_production_settings(tmp_path):
    secret_key = OPERATOR_VARIABLES["SECRET_KEY"]
    result = _django(
        "import json\nfrom django.conf import settings as s\nprint(json.dumps({"
        "'debug': s.DEBUG, 'hosts': s.ALLOWED_HOSTS, 'origins': s.CSRF_TRUSTED_ORIGINS,"
        "'proxies': s.REST_FRAMEWORK['NUM_PROXIES'], 'ssl_header': s.SECURE_PROXY_SSL_HEADER,"
        "'jwt_key': s.SIMPLE_JWT['SIGNING_KEY'], 'api_key_keys': s.API_KEY_ENCRYPTION_KEY,"
        "'faucet': s.DEMO_DEPOSITS, 'demo': s.DEMO_MODE, 'ws_url': s.WS_PUBLIC_URL,"
        "'secure': s.SESSION_COOKIE_SECURE, 'site_url': s.SITE_URL,"
        "'email': [s.EMAIL_HOST, s.EMAIL_PORT, s.EMAIL_USE_TLS, s.DEFAULT_FROM_EMAIL]"
        "}))",
        {**app_environment(), **local_stand_ins(tmp_path)},
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "debug": False,
        "hosts": [DOMAIN],
        "origins": [f"https://{DOMAIN}"],
        "proxies": 1,
        "ssl_header": ["HTTP_X_FORWARDED_PROTO", "https"],
        # Passed through empty, the two keys fall back to SECRET_KEY rather than to "".
        "jwt_key": secret_key,
        "api_key_keys": [secret_key],
        "faucet": False,
        "demo": False,
        "ws_url": f"wss://{DOMAIN}",
        "secure": True,
        "site_url": f"https://{DOMAIN}",
        "email": ["mailcatcher", 1025, False, "Exchange <no-reply@localhost>"],
    }


@pytest.mark.parametrize(("num_proxies", "believed"), [("0", False), ("1", True)])
def test_forwarded_proto_is_believed_only_behind_a_proxy(num_proxies, believed):
    result = _django(
        "from django.test import RequestFactory\n"
        "factory = RequestFactory()\n"
        "print(factory.get('/', HTTP_X_FORWARDED_PROTO='https').is_secure(),"
        " factory.get('/').is_secure())",
        {**os.environ, "NUM_PROXIES": num_proxies},
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(believed), "False"]


# --- processes started as the compose file and the Procfile start them -------------------------


def _serve(command: list[str], environment: Mapping[str, str], port: int, log: Path):
    """Start a server and wait until it listens on ``port``."""
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=dict(environment),
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{command[0]} exited {process.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process
        except OSError:
            time.sleep(0.2)
    _stop(process)
    pytest.fail(f"{command[0]} did not listen on {port}:\n{log.read_text()}")


def _stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_the_demo_mail_catcher_keeps_what_it_receives_in_the_mailbox(tmp_path):
    """The compose command line is one run_mailcatcher accepts, and mail sent to it lands in
    MAILBOX_DIR (a Maildir), where /dev/mailbox/ reads it."""
    port = str(free_port())
    environment = {**app_environment(), **local_stand_ins(tmp_path)}
    command = compose()["services"]["mailcatcher"]["command"]
    command = [{"0.0.0.0": "127.0.0.1", "1025": port}.get(arg, arg) for arg in command]

    server = _serve(command, environment, int(port), tmp_path / "mailcatcher.log")
    try:
        with smtplib.SMTP("127.0.0.1", int(port), timeout=10) as smtp:
            smtp.sendmail("no-reply@localhost", ["alice@example.com"], b"Subject: hi\r\n\r\nhello")
        deadline = time.monotonic() + 10
        while not list(Path(environment["MAILBOX_DIR"]).rglob("new/*")):
            assert time.monotonic() < deadline, (tmp_path / "mailcatcher.log").read_text()
            time.sleep(0.1)
    finally:
        _stop(server)

    (stored,) = Path(environment["MAILBOX_DIR"]).rglob("new/*")
    assert b"hello" in stored.read_bytes()


def _status(url: str, headers: Mapping[str, str] | None = None) -> int:
    class NoRedirects(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.build_opener(NoRedirects).open(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.django_db
@pytest.mark.parametrize("service", ["web", "ws"])
def test_container_health_checks_pass_under_the_production_settings(service, tmp_path):
    """The health check asks as the proxy does; a plain request to the container is refused
    (unknown host, or a redirect to HTTPS), which is why it must."""
    definition = compose()["services"][service]
    port = str(free_port())
    environment = {
        **app_environment(),
        **local_stand_ins(tmp_path),
        "HOST": "127.0.0.1",
        "PORT": port,
        "WEB_CONCURRENCY": "1",
    }
    # The container's own address and port become a free local one.
    listen = {"0.0.0.0": "127.0.0.1", "8001": port}
    command = [listen.get(argument, argument) for argument in definition["command"]]
    check = definition["healthcheck"]["test"]
    assert check[0] == "CMD"
    check = [sys.executable if check[1] == "python" else check[1]] + [
        port if argument in ("8000", "8001") else in_this_checkout(argument)
        for argument in check[2:]
    ]

    server = _serve(command, environment, int(port), tmp_path / f"{service}.log")
    try:
        healthy = subprocess.run(check, env=environment, capture_output=True, text=True, timeout=30)
        plain = _status(f"http://127.0.0.1:{port}/health")
        right_host_only = _status(f"http://127.0.0.1:{port}/health", {"Host": DOMAIN})
    finally:
        _stop(server)

    assert healthy.returncode == 0, healthy.stderr + (tmp_path / f"{service}.log").read_text()
    assert plain == 400  # 127.0.0.1 is not an allowed host
    assert right_host_only == 301  # plain HTTP, not through the proxy: off to HTTPS


@pytest.mark.django_db
@pytest.mark.parametrize(("num_proxies", "status"), [("0", 403), ("1", 200)])
def test_the_procfile_daphne_trusts_forwarded_addresses_only_behind_a_proxy(
    num_proxies, status, tmp_path
):
    """``make run`` has no proxy: a client naming an allowed address in X-Forwarded-For must
    not pass as it (here /metrics' allow-list); behind one, the forwarded address counts."""
    procfile = dict(
        line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if ":" in line
    )
    port = free_port()
    environment = {
        **os.environ,
        **local_stand_ins(tmp_path),
        "HOST": "127.0.0.1",
        "WS_PORT": str(port),
        "NUM_PROXIES": num_proxies,
        "METRICS_ALLOWED_IPS": "203.0.113.7",
    }

    # honcho runs each Procfile line with the shell.
    server = _serve(["sh", "-c", procfile["ws"].strip()], environment, port, tmp_path / "ws.log")
    try:
        answer = _status(
            f"http://127.0.0.1:{port}/metrics",
            {"Host": "localhost", "X-Forwarded-For": "203.0.113.7"},
        )
    finally:
        _stop(server)

    assert answer == status, (tmp_path / "ws.log").read_text()
