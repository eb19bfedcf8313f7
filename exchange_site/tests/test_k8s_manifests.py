"""Issue 22, item 4: the Kubernetes manifests (deploy/k8s) hold together without kubectl.

There is no cluster on the test machines, so every manifest is read as YAML and checked
against the project itself: each kind and apiVersion is one Kubernetes serves; selectors pick
the pods they mean; every container runs the image docker-compose.yml builds; every command
exists (manage.py subcommands and their options are parsed by the command's own parser,
scripts are in the checkout, gunicorn/daphne/celery are installed and their modules import);
probes point at a real URL, a real port or a real command; and every environment variable is
one the settings (or a command line of these manifests) read. ``manifest_problems`` returns
what is wrong; the last tests break a copy of the manifests in each way and see it caught.
"""

import copy
import importlib.util
import re
import shlex
from pathlib import Path

import pytest
import yaml
from django.conf import settings as django_settings
from django.core.management import get_commands, load_command_class
from django.core.management.base import CommandError
from django.urls import Resolver404, resolve

from exchange_site.tests.test_deploy import (
    HTTP_PATHS,
    WEBSOCKET_PATHS,
    _check_deploy,
    compose,
    local_stand_ins,
)
from trading.services.demo import DEMO_MARKETS

ROOT = Path(django_settings.BASE_DIR)
K8S = ROOT / "deploy" / "k8s"
VENV_BIN = ROOT / ".venv" / "bin"
KNOWN_KINDS = {
    ("v1", "Namespace"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "Service"),
    ("apps/v1", "Deployment"),
    ("batch/v1", "Job"),
    ("networking.k8s.io/v1", "Ingress"),
    ("policy/v1", "PodDisruptionBudget"),
}
KUSTOMIZATION = ("kustomize.config.k8s.io/v1beta1", "Kustomization")
# Programs the image has besides Python's: sh and coreutils of its Debian base.
SHELL_TOOLS = {"echo", "sleep", "rm", "mkdir", "true", "test"}
SHELL_KEYWORDS = {"until", "while", "do", "done", "if", "then", "else", "fi", "exec", "!"}
# Where the environment is read: settings, the gunicorn config, the ws start script and the
# modules beside settings (asgi, celery, the Redis and database helpers).
ENV_READERS = [
    ROOT / "exchange_site" / "settings.py",
    ROOT / "gunicorn.conf.py",
    ROOT / "scripts" / "daphne.sh",
    *sorted((ROOT / "exchange_site").glob("*.py")),
]
ENV_READ = re.compile(
    r"""env\.\w+\(\s*["'](\w+)["']"""
    r"""|os\.environ(?:\.get|\.setdefault)?\s*[\[(]\s*["'](\w+)["']"""
    r"""|getenv\(\s*["'](\w+)["']"""
    r"""|\$\{(\w+)"""
)
K8S_REFERENCE = re.compile(r"\$\((\w+)\)")
SHELL_REFERENCE = re.compile(r"\$\{?(\w+)\}?")
# Set by Kubernetes in every container.
KUBERNETES_ENV = {"HOSTNAME"}


def load(directory: Path = K8S) -> dict[str, list[dict]]:
    """Every YAML file of ``directory``: its name and its documents."""
    return {
        path.name: [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
        for path in sorted(directory.glob("*.yaml"))
    }


def compose_image() -> str:
    """The image docker-compose.yml builds from the Dockerfile (its ``x-app`` anchor)."""
    return compose()["x-app"]["image"]


def env_names_read() -> set[str]:
    names = set()
    for path in ENV_READERS:
        for match in ENV_READ.finditer(path.read_text()):
            names.update(group for group in match.groups() if group)
    return names


def _docs(manifests: dict[str, list[dict]], kind: str) -> list[dict]:
    return [doc for docs in manifests.values() for doc in docs if doc.get("kind") == kind]


def _pod_owners(manifests) -> list[dict]:
    return _docs(manifests, "Deployment") + _docs(manifests, "Job")


def _containers(pod_spec: dict) -> list[dict]:
    return pod_spec.get("initContainers", []) + pod_spec.get("containers", [])


def _subset(small: dict, large: dict) -> bool:
    return bool(small) and all(large.get(key) == value for key, value in small.items())


def _in_checkout(path: str) -> Path:
    """A path of the image (the checkout is copied to /app, the working directory)."""
    return ROOT / path.removeprefix("/app/")


def _shell_commands(script: str) -> list[list[str]]:
    """The simple commands of a one-line ``sh -c`` script, keywords dropped."""
    lexer = shlex.shlex(script, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    commands, current = [], []
    for token in lexer:
        if token in {";", "&&", "||", "|", "&"}:
            commands.append(current)
            current = []
        else:
            current.append(token)
    commands.append(current)
    cleaned = []
    for command in commands:
        while command and command[0] in SHELL_KEYWORDS:
            command = command[1:]
        if command:
            cleaned.append(command)
    return cleaned


def _manage_py_problem(arguments: list[str]) -> str | None:
    if not arguments:
        return "manage.py without a subcommand"
    name, options = arguments[0], arguments[1:]
    commands = get_commands()
    if name not in commands:
        return f"manage.py has no command {name!r}"
    parser = load_command_class(commands[name], name).create_parser("manage.py", name)
    try:
        parser.parse_args(options)
    except CommandError as exc:
        return f"manage.py {name} {' '.join(options)}: {exc}"
    return None


def _module_problem(module: str) -> str | None:
    base = module.split(":")[0]
    return None if importlib.util.find_spec(base) else f"module {base} does not exist"


def command_problems(argv: list[str], environment: dict[str, str]) -> list[str]:
    """What is wrong with running ``argv`` in the image with this environment (shell
    variables substituted from it)."""
    if not argv:
        return ["empty command"]
    program, arguments = argv[0], argv[1:]
    if program in {"sh", "/bin/sh"}:
        if arguments[:1] == ["-c"]:
            script = arguments[1]
            unknown = sorted(set(SHELL_REFERENCE.findall(script)) - set(environment))
            if unknown:
                return [f"sh -c uses unset variables {unknown}"]
            script = SHELL_REFERENCE.sub(lambda match: environment[match[1]], script)
            return [
                problem
                for command in _shell_commands(script)
                for problem in command_problems(command, environment)
            ]
        return [] if _in_checkout(arguments[0]).is_file() else [f"no script {arguments[0]}"]
    if program == "python":
        if arguments[:1] == ["manage.py"]:
            problem = _manage_py_problem(arguments[1:])
            return [problem] if problem else []
        if arguments and arguments[0].endswith(".py"):
            return [] if _in_checkout(arguments[0]).is_file() else [f"no script {arguments[0]}"]
        return [f"python {' '.join(arguments)}: not a manage.py command or a script"]
    if program in {"gunicorn", "daphne", "celery"}:
        problems = [] if (VENV_BIN / program).exists() else [f"{program} is not installed"]
        if program == "gunicorn":
            problems += filter(None, [_module_problem(arguments[0])])
            if "--config" in arguments:
                config = arguments[arguments.index("--config") + 1]
                problems += [] if _in_checkout(config).is_file() else [f"no file {config}"]
        if program == "celery":
            problems += filter(None, [_module_problem(arguments[arguments.index("-A") + 1])])
        return problems
    if program in SHELL_TOOLS:
        return []
    return [f"unknown program {program!r}"]


def _expand(argv: list[str], environment: dict[str, str], where: str, problems: list[str]):
    """``$(NAME)`` in a container's command, as Kubernetes expands it from its environment."""
    expanded = []
    for argument in argv:
        for name in K8S_REFERENCE.findall(argument):
            if name not in environment:
                problems.append(f"{where}: $({name}) is not in the container's environment")
        expanded.append(
            K8S_REFERENCE.sub(lambda match: environment.get(match[1], match[0]), argument)
        )
    return expanded


def _container_ports(container: dict) -> set:
    ports = container.get("ports", [])
    return {port["containerPort"] for port in ports} | {
        port["name"] for port in ports if "name" in port
    }


def _probe_problems(probe: dict, container: dict, environment, where: str) -> list[str]:
    problems = []
    if "exec" in probe:
        command = probe["exec"]["command"]
        if any(K8S_REFERENCE.search(argument) for argument in command):
            problems.append(f"{where}: Kubernetes does not expand $(...) in a probe")
        problems += [f"{where}: {p}" for p in command_problems(command, environment)]
        health_check = command[:2] == ["python", "/app/deploy/healthcheck.py"]
        if health_check and int(command[2]) not in _container_ports(container):
            problems.append(f"{where}: health check on port {command[2]}, not served here")
    elif "httpGet" in probe:
        try:
            resolve(probe["httpGet"]["path"])
        except Resolver404:
            problems.append(f"{where}: no URL {probe['httpGet']['path']}")
        if probe["httpGet"]["port"] not in _container_ports(container):
            problems.append(f"{where}: probe port {probe['httpGet']['port']} is not served")
    elif "tcpSocket" in probe:
        if probe["tcpSocket"]["port"] not in _container_ports(container):
            problems.append(f"{where}: probe port {probe['tcpSocket']['port']} is not served")
    else:
        problems.append(f"{where}: a probe of no known type")
    return problems


def _ingress_backend(ingress: dict, path: str) -> str | None:
    """The Service a request for ``path`` reaches: the longest matching Prefix path, matched
    by whole segments as Kubernetes specifies."""
    best = None
    for rule in ingress["spec"]["rules"]:
        for entry in rule["http"]["paths"]:
            prefix = entry["path"].rstrip("/")
            if entry["pathType"] != "Prefix":
                continue
            matches = prefix == "" or path == prefix or path.startswith(prefix + "/")
            if matches and (best is None or len(prefix) > len(best[0])):
                best = (prefix, entry["backend"]["service"]["name"])
    return best[1] if best else None


def manifest_problems(manifests: dict[str, list[dict]]) -> list[str]:
    """Everything wrong with these manifests, as readable lines (empty: all is well)."""
    problems: list[str] = []
    image = compose_image()
    env_read = env_names_read()

    kustomizations = [
        (name, doc)
        for name, docs in manifests.items()
        for doc in docs
        if doc.get("kind") == "Kustomization"
    ]
    for name, docs in manifests.items():
        for doc in docs:
            kind = (doc.get("apiVersion"), doc.get("kind"))
            if kind not in KNOWN_KINDS and kind != KUSTOMIZATION:
                problems.append(f"{name}: unknown apiVersion/kind {kind}")
    if len(kustomizations) != 1:
        problems.append(f"{len(kustomizations)} kustomization files, not 1")
    else:
        listed = set(kustomizations[0][1].get("resources", []))
        present = set(manifests) - {kustomizations[0][0]}
        if listed != present:
            problems.append(f"kustomization resources {sorted(listed ^ present)} differ from files")
        repositories = {entry["name"] for entry in kustomizations[0][1].get("images", [])}
        if repositories - {image.split(":")[0]}:
            problems.append(f"kustomization rewrites images {sorted(repositories)}, not {image}")
        namespaces = {doc["metadata"]["name"] for doc in _docs(manifests, "Namespace")}
        if kustomizations[0][1].get("namespace") not in namespaces:
            problems.append("kustomization's namespace is not one of the manifests")

    config_maps = {
        doc["metadata"]["name"]: doc.get("data", {}) for doc in _docs(manifests, "ConfigMap")
    }
    secrets = {
        doc["metadata"]["name"]: doc.get("stringData", {}) for doc in _docs(manifests, "Secret")
    }
    for name, values in secrets.items():
        for key, value in values.items():
            if not str(value).startswith("REPLACE_ME"):
                problems.append(f"secret {name}: {key} is not a REPLACE_ME placeholder")

    # Names the manifests' own command lines read, besides the settings'.
    referenced = set()
    deployments = _docs(manifests, "Deployment")
    for owner in _pod_owners(manifests):
        for container in _containers(owner["spec"]["template"]["spec"]):
            words = container.get("command", []) + container.get("args", [])
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                words += container.get(probe, {}).get("exec", {}).get("command", [])
            text = " ".join(words)
            referenced |= set(K8S_REFERENCE.findall(text)) | set(SHELL_REFERENCE.findall(text))
    for name, values in [*config_maps.items(), *secrets.items()]:
        for key in values:
            if key not in env_read | referenced:
                problems.append(f"{name}: {key} is read by no setting or command")

    shards: dict[str, set[str]] = {}
    for owner in _pod_owners(manifests):
        owner_name = f"{owner['kind']} {owner['metadata']['name']}"
        spec = owner["spec"]
        pod = spec["template"]
        pod_labels = pod["metadata"].get("labels", {})
        if owner["kind"] == "Deployment" and not _subset(
            spec["selector"]["matchLabels"], pod_labels
        ):
            problems.append(f"{owner_name}: selector does not match its pods' labels")
        for term in (
            pod["spec"]
            .get("affinity", {})
            .get("podAntiAffinity", {})
            .get("preferredDuringSchedulingIgnoredDuringExecution", [])
        ):
            if not _subset(term["podAffinityTerm"]["labelSelector"]["matchLabels"], pod_labels):
                problems.append(f"{owner_name}: anti-affinity does not select its own pods")
        for container in _containers(pod["spec"]):
            where = f"{owner_name}/{container['name']}"
            if container.get("image") != image:
                problems.append(f"{where}: image {container.get('image')}, not {image}")
            environment = dict.fromkeys(KUBERNETES_ENV, "pod")
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    ref = source["configMapRef"]["name"]
                    if ref not in config_maps:
                        problems.append(f"{where}: no ConfigMap {ref}")
                    environment.update(config_maps.get(ref, {}))
                if "secretRef" in source:
                    ref = source["secretRef"]["name"]
                    if ref not in secrets:
                        problems.append(f"{where}: no Secret {ref}")
                    environment.update(secrets.get(ref, {}))
            for variable in container.get("env", []):
                environment[variable["name"]] = str(variable.get("value", ""))
                if variable["name"] not in env_read | referenced:
                    problems.append(f"{where}: {variable['name']} is read by nothing")
            argv = _expand(
                container.get("command", []) + container.get("args", []),
                environment,
                where,
                problems,
            )
            problems += [f"{where}: {problem}" for problem in command_problems(argv, environment)]
            for probe_name in ("readinessProbe", "livenessProbe", "startupProbe"):
                if probe_name in container:
                    problems += _probe_problems(
                        container[probe_name], container, environment, f"{where} {probe_name}"
                    )
            if argv[1:3] == ["manage.py", "run_matcher"]:
                markets = argv[argv.index("--markets") + 1] if "--markets" in argv else ""
                shards[owner["metadata"]["name"]] = set(filter(None, markets.split(",")))

    # Matchers: leader + standby per shard; every demo market in exactly one shard.
    for deployment in deployments:
        name = deployment["metadata"]["name"]
        if name in shards and deployment["spec"].get("replicas", 1) < 2:
            problems.append(f"matcher {name}: fewer than 2 replicas, so no standby")
        if name == "beat" and (
            deployment["spec"].get("replicas") != 1
            or deployment["spec"].get("strategy", {}).get("type") != "Recreate"
        ):
            problems.append("beat: must be 1 replica with the Recreate strategy")
    placed = [market for markets in shards.values() for market in markets]
    if not shards or any(not markets for markets in shards.values()):
        problems.append("every matcher shard must name its markets (--markets)")
    if sorted(placed) != sorted(symbol for symbol, *_ in DEMO_MARKETS):
        problems.append(f"matcher shards hold {sorted(placed)}, not each market exactly once")

    def pods_selected(selector: dict) -> list[dict]:
        return [
            d for d in deployments if _subset(selector, d["spec"]["template"]["metadata"]["labels"])
        ]

    services = {doc["metadata"]["name"]: doc for doc in _docs(manifests, "Service")}
    for name, service in services.items():
        selected = pods_selected(service["spec"].get("selector", {}))
        if len(selected) != 1:
            problems.append(f"Service {name} selects {len(selected)} Deployments, not 1")
            continue
        served = set().union(
            *(_container_ports(c) for c in selected[0]["spec"]["template"]["spec"]["containers"])
        )
        for port in service["spec"]["ports"]:
            if port.get("targetPort", port["port"]) not in served:
                problems.append(f"Service {name}: targetPort {port.get('targetPort')} not served")
    for budget in _docs(manifests, "PodDisruptionBudget"):
        if len(pods_selected(budget["spec"]["selector"]["matchLabels"])) != 1:
            problems.append(
                f"PodDisruptionBudget {budget['metadata']['name']} selects no single Deployment"
            )

    for ingress in _docs(manifests, "Ingress"):
        for rule in ingress["spec"]["rules"]:
            for entry in rule["http"]["paths"]:
                backend = entry["backend"]["service"]
                service = services.get(backend["name"])
                ports = (
                    {p["name"] for p in service["spec"]["ports"]}
                    | {p["port"] for p in service["spec"]["ports"]}
                    if service
                    else set()
                )
                wanted = backend["port"].get("name", backend["port"].get("number"))
                if wanted not in ports:
                    problems.append(
                        f"Ingress {entry['path']}: no Service port {backend['name']}:{wanted}"
                    )
        for path in WEBSOCKET_PATHS:
            if _ingress_backend(ingress, path) != "ws":
                problems.append(
                    f"Ingress sends WebSocket path {path} to {_ingress_backend(ingress, path)}"
                )
        for path in HTTP_PATHS:
            if _ingress_backend(ingress, path) != "web":
                problems.append(
                    f"Ingress sends HTTP path {path} to {_ingress_backend(ingress, path)}"
                )
    return problems


def test_the_manifests_hold_together():
    assert manifest_problems(load()) == []


def test_every_process_kind_of_the_procfile_has_its_deployment():
    """The Procfile's production processes; the market maker and mail catcher are demo only."""
    procfile = dict(
        line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line
    )
    deployments = {doc["metadata"]["name"]: doc for doc in _docs(load(), "Deployment")}
    programs = {
        name: " ".join(doc["spec"]["template"]["spec"]["containers"][0]["command"])
        for name, doc in deployments.items()
    }

    assert set(procfile) - {"marketmaker", "mail"} == {"web", "ws", "worker", "beat", "matcher"}
    for kind in ("web", "ws", "worker", "beat"):
        assert (
            procfile[kind].split()[:2]
            == programs[kind].removeprefix("sh -c rm -rf /app/var/prometheus && exec ").split()[:2]
        ), kind
    assert [name for name in programs if name.startswith("matcher-")] == [
        "matcher-btc-usd",
        "matcher-others",
    ]
    assert all("manage.py run_matcher" in programs[name] for name in programs if "matcher-" in name)


def test_the_health_check_the_probes_run_asks_for_a_real_url():
    script = (ROOT / "deploy" / "healthcheck.py").read_text()

    assert '/health"' in script
    assert resolve("/health").url_name == "health"


def _operator_environment(tmp_path) -> dict[str, str]:
    """The ConfigMap with the Secret's placeholders filled in as an operator would, and this
    machine's database, Redis and programs for the cluster's."""
    manifests = load()
    (config_map,) = _docs(manifests, "ConfigMap")
    filled = {"SECRET_KEY": "k8s-" + "x" * 60, "EMAIL_HOST": "smtp.example.com"}
    return {**config_map["data"], **filled, **local_stand_ins(tmp_path)}


def test_the_configmap_renders_settings_that_pass_check_deploy(tmp_path):
    result = _check_deploy(_operator_environment(tmp_path))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr


def test_the_placeholder_secret_does_not_start(tmp_path):
    (secret,) = _docs(load(), "Secret")
    environment = {**_operator_environment(tmp_path), **secret["stringData"]}

    result = _check_deploy(environment)

    # The placeholder database address is what stops it (django-environ drops its first
    # letter while failing to find an engine for it).
    assert result.returncode != 0
    assert "PLACE_ME-postgres://" in result.stderr, result.stderr


def _find(manifests, kind: str, name: str) -> dict:
    return next(doc for doc in _docs(manifests, kind) if doc["metadata"]["name"] == name)


def _container(manifests, name: str) -> dict:
    return _find(manifests, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]


def _break_image(m):
    _container(m, "ws")["image"] = "exchange:other"


def _break_command(m):
    _container(m, "matcher-btc-usd")["command"][2] = "run_matchers"


def _break_option(m):
    _container(m, "matcher-btc-usd")["command"][3] = "--shard"


def _break_script(m):
    _container(m, "ws")["command"] = ["sh", "scripts/daphne-missing.sh"]


def _break_module(m):
    _container(m, "worker")["command"][2] = "exchange_sites"


def _break_program(m):
    _container(m, "web")["command"][2] = (
        "rm -rf /app/var/prometheus && exec uwsgi exchange_site.wsgi"
    )


def _break_shell_variable(m):
    probe = _container(m, "matcher-others")["livenessProbe"]["exec"]["command"]
    probe[2] = probe[2].replace("$MATCHER_MARKETS", "$MATCHER_MARKET")


def _break_probe_expansion(m):
    _container(m, "matcher-others")["livenessProbe"]["exec"]["command"] = [
        "python", "manage.py", "matcher_health", "--markets", "$(MATCHER_MARKETS)"
    ]  # fmt: skip


def _break_probe_path(m):
    _container(m, "web")["readinessProbe"] = {"httpGet": {"path": "/healthz", "port": "http"}}


def _break_probe_port(m):
    _container(m, "ws")["readinessProbe"]["exec"]["command"][2] = "8000"


def _break_env_name(m):
    _find(m, "ConfigMap", "exchange-config")["data"]["WEB_CONCURENCY"] = "3"


def _break_secret(m):
    _find(m, "Secret", "exchange-secrets")["stringData"]["SECRET_KEY"] = "hunter2"


def _break_kind(m):
    _find(m, "Ingress", "exchange")["apiVersion"] = "extensions/v1beta1"


def _break_selector(m):
    _find(m, "Service", "ws")["spec"]["selector"]["app.kubernetes.io/component"] = "websocket"


def _break_target_port(m):
    _find(m, "Service", "web")["spec"]["ports"][0]["targetPort"] = "https"


def _break_budget(m):
    _find(m, "PodDisruptionBudget", "matcher-others")["spec"]["selector"]["matchLabels"].pop(
        "exchange/shard"
    )


def _break_ingress(m):
    paths = _find(m, "Ingress", "exchange")["spec"]["rules"][0]["http"]["paths"]
    paths[:] = [entry for entry in paths if entry["path"] != "/api/v3/stream"]


def _break_shards(m):
    _container(m, "matcher-others")["env"][0]["value"] = "BTC-USD,ETH-USD,SOL-USD,ETH-BTC"


def _break_standby(m):
    _find(m, "Deployment", "matcher-btc-usd")["spec"]["replicas"] = 1


def _break_beat(m):
    _find(m, "Deployment", "beat")["spec"]["strategy"] = {"type": "RollingUpdate"}


def _break_kustomization(m):
    m["extra.yaml"] = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}]


@pytest.mark.parametrize(
    ("breakage", "caught"),
    [
        (_break_image, "image exchange:other, not exchange:latest"),
        (_break_command, "manage.py has no command 'run_matchers'"),
        (_break_option, "manage.py run_matcher --shard"),
        (_break_script, "no script scripts/daphne-missing.sh"),
        (_break_module, "module exchange_sites does not exist"),
        (_break_program, "unknown program 'uwsgi'"),
        (_break_shell_variable, "sh -c uses unset variables ['MATCHER_MARKET']"),
        (_break_probe_expansion, "Kubernetes does not expand $(...) in a probe"),
        (_break_probe_path, "no URL /healthz"),
        (_break_probe_port, "health check on port 8000, not served here"),
        (_break_env_name, "WEB_CONCURENCY is read by no setting or command"),
        (_break_secret, "SECRET_KEY is not a REPLACE_ME placeholder"),
        (_break_kind, "unknown apiVersion/kind ('extensions/v1beta1', 'Ingress')"),
        (_break_selector, "Service ws selects 0 Deployments, not 1"),
        (_break_target_port, "Service web: targetPort https not served"),
        (_break_budget, "PodDisruptionBudget matcher-others selects no single Deployment"),
        (_break_ingress, "Ingress sends WebSocket path /api/v3/stream to web"),
        (_break_shards, "not each market exactly once"),
        (_break_standby, "matcher matcher-btc-usd: fewer than 2 replicas, so no standby"),
        (_break_beat, "beat: must be 1 replica with the Recreate strategy"),
        (_break_kustomization, "kustomization resources ['extra.yaml'] differ from files"),
    ],
)
def test_a_broken_manifest_is_caught(breakage, caught):
    manifests = copy.deepcopy(load())

    breakage(manifests)

    problems = manifest_problems(manifests)
    assert any(caught in problem for problem in problems), problems
