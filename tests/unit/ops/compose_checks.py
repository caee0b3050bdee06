"""docker-compose.yml and its Prometheus and Grafana files, checked against the code.

No Docker engine runs where the tests run, so the compose path would rot unseen: a
renamed module, a setting spelt the old way or a metric renamed in the catalog only
shows up when someone deploys. These checks read the files as compose, Prometheus and
Grafana would and compare every name in them with what the project really has: the
commands must parse with the project's own CLIs, the env names must be ones
``Settings`` (or a process the image runs) reads, the metric names ones ``/metrics``
exports. Each check returns its problems as sentences; no problems is a pass.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.util
import io
import json
import re
import shlex
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any

import click
import yaml
from celery.app.utils import find_app
from celery.bin.base import CLIContext
from celery.bin.celery import celery as celery_cli
from flower.command import default_options as flower_options

from producers.cli.parser import build_parser as tickfleet_parser
from tickfleet.keyspace import tasks

Doc = dict[str, Any]

# Series Prometheus adds to every scrape; rules may name them beside the fleet's own.
SCRAPE_SERIES = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})
# The ports the third-party images listen on unless their command or env says otherwise.
IMAGE_PORTS = {"redis": 6379, "postgres": 5432, "prom/prometheus": 9090, "grafana/grafana": 3000}
# Env names the third-party images read (their own documented prefixes).
IMAGE_ENV_PREFIXES = {"postgres": "POSTGRES_", "grafana/grafana": "GF_"}
ROOT_USERS = frozenset({"root", "0", "0:0", "root:root"})
LONG_RUNNING_RESTARTS = frozenset({"always", "unless-stopped", "on-failure"})
# Where Grafana reads provisioning from (its GF_PATHS_PROVISIONING default).
GRAFANA_PROVISIONING = "/etc/grafana/provisioning"

_VAR = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")
_DOCUMENTED = re.compile(r"^([A-Z_][A-Z0-9_]*)=(.*)$", re.MULTILINE)
QUEUES = frozenset(v for k, v in vars(tasks).items() if k.startswith("QUEUE_"))


@dataclass(frozen=True, slots=True)
class Code:
    """What the project really has, for the files to be checked against."""

    env_names: frozenset[str]  # every env name Settings reads
    process_env: frozenset[str]  # env the processes read outside Settings (Flower's, scripts')
    metrics: frozenset[str]  # every series name /metrics exports
    api_paths: frozenset[str]  # the API's routes


@dataclass(frozen=True)
class Deployment:
    """A folder laid out like the repository: docker-compose.yml, .env.example, Dockerfile,
    deploy/ (the real one, or a broken copy of it)."""

    root: Path

    @cached_property
    def compose(self) -> Doc:
        doc: Doc = yaml.safe_load((self.root / "docker-compose.yml").read_text())
        return doc

    @property
    def services(self) -> dict[str, Doc]:
        services: dict[str, Doc] = self.compose.get("services") or {}
        return services

    @cached_property
    def documented(self) -> dict[str, str]:
        """The variables .env.example sets, with their example values."""
        text = (self.root / ".env.example").read_text()
        return {m.group(1): m.group(2).strip() for m in _DOCUMENTED.finditer(text)}

    def host_path(self, service: Doc, container_path: str) -> Path | None:
        """The repository file a bind mount shows a service at ``container_path``."""
        wanted = PurePosixPath(container_path)
        for source, target in bind_mounts(service):
            if wanted == PurePosixPath(target) or PurePosixPath(target) in wanted.parents:
                return self.root / source / wanted.relative_to(target)
        return None


# --- compose values ------------------------------------------------------------------------


def interpolate(value: str) -> str:
    """A compose string as compose would run it with an empty .env: defaults applied."""

    def one(match: re.Match[str]) -> str:
        return match.group(3) if match.group(2) in {":-", "-"} else "x"

    return _VAR.sub(one, value).replace("$$", "$")


def strings(node: object) -> Iterator[str]:
    """Every string value of a YAML document (keys excluded)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


def environment(service: Doc) -> dict[str, str]:
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.partition("=")[::2] for item in raw)
    return {str(k): interpolate(str(v)) for k, v in raw.items()}


def argv(command: str | list[object] | None) -> list[str]:
    """A command as the container runs it: a string is split as a shell would."""
    if isinstance(command, str):
        return shlex.split(interpolate(command))
    return [interpolate(str(part)) for part in command or []]


def health_argv(service: Doc) -> list[str] | None:
    test = (service.get("healthcheck") or {}).get("test")
    if not test:
        return None
    if isinstance(test, str):
        return argv(test)
    kind, *rest = test
    return argv(rest[0]) if kind == "CMD-SHELL" else argv(rest)


def is_fleet(service: Doc) -> bool:
    """Built from this repository's Dockerfile (the image every fleet process shares)."""
    return "build" in service


def image_name(service: Doc) -> str:
    return str(service.get("image", "")).rsplit(":", 1)[0]


def bind_mounts(service: Doc) -> Iterator[tuple[str, str]]:
    for volume in service.get("volumes") or []:
        source, _, rest = str(volume).partition(":")
        if source.startswith((".", "/")):
            yield source, rest.split(":")[0]


def listen_ports(service: Doc) -> set[int]:
    """The ports a service's process listens on inside its container."""
    if is_fleet(service):
        found = {int(v) for k, v in environment(service).items() if k == "API_PORT"}
        command = argv(service.get("command"))
        return found | {int(a.split("=", 1)[1]) for a in command if a.startswith("--port=")}
    for flag in argv(service.get("command")):
        if flag.startswith("--web.listen-address="):
            return {int(flag.rsplit(":", 1)[1])}
    if "GF_SERVER_HTTP_PORT" in environment(service):
        return {int(environment(service)["GF_SERVER_HTTP_PORT"])}
    port = IMAGE_PORTS.get(image_name(service))
    return {port} if port else set()


# --- commands ------------------------------------------------------------------------------


def celery_problems(args: list[str]) -> list[str]:
    """``celery -A app sub ...``: the app loads, the subcommand parses with its options."""
    app_name, rest = _celery_app(args)
    if app_name is None or not rest:
        return [f"celery {' '.join(args)}: needs -A <app> and a subcommand"]
    try:
        app = find_app(app_name)
    except Exception as exc:
        return [f"celery -A {app_name}: the app does not load ({exc!r})"]
    sub, sub_args = rest[0], rest[1:]
    command = celery_cli.commands.get(sub)
    if command is None:
        return [f"celery {sub}: no such celery command"]
    if sub == "flower":
        return _flower_problems(sub_args)
    obj = CLIContext(app=app, no_color=True, workdir=None, quiet=True)
    try:
        context = command.make_context(sub, list(sub_args), obj=obj)
    except click.ClickException as exc:
        return [f"celery {sub} {' '.join(sub_args)}: {exc.format_message()}"]
    queues = context.params.get("queues") or []
    return [
        f"celery {sub} -Q {q}: no such queue in tickfleet.keyspace.keys"
        for q in queues
        if q not in QUEUES
    ]


def _celery_app(args: list[str]) -> tuple[str | None, list[str]]:
    app, rest = None, list(args)
    while rest and rest[0].startswith("-"):
        flag = rest.pop(0)
        if flag in {"-A", "--app"} and rest:
            app = rest.pop(0)
        elif flag.startswith("--app="):
            app = flag.split("=", 1)[1]
    return app, rest


def _flower_problems(args: list[str]) -> list[str]:
    """Flower hands its options to tornado: each must be one Flower defines."""
    found = [a.lstrip("-").split("=", 1)[0].replace("-", "_") for a in args if a.startswith("--")]
    return [f"celery flower --{o}: no such Flower option" for o in found if o not in flower_options]


def python_problems(args: list[str]) -> list[str]:
    if len(args) == 2 and args[0] == "-m":
        return module_problems(args[1], runnable=True)
    if len(args) == 2 and args[0] == "-c":
        return code_problems(args[1])
    return [f"python {' '.join(args)}: expected -m <module> or -c <code>"]


def module_problems(module: str, runnable: bool = False) -> list[str]:
    try:
        spec = importlib.util.find_spec(module)
    except ModuleNotFoundError:
        spec = None
    if spec is None:
        return [f"module {module} does not exist"]
    if runnable and spec.submodule_search_locations is not None:
        return module_problems(f"{module}.__main__")
    return []


def code_problems(code: str) -> list[str]:
    """``python -c``: it compiles, and every module and name it imports exists."""
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        return [f"python -c {code!r}: {exc}"]
    problems: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            problems += [p for a in node.names for p in module_problems(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.module:
            problems += _from_problems(node.module, [a.name for a in node.names])
    return problems


def _from_problems(module: str, imported: list[str]) -> list[str]:
    found = module_problems(module)
    if found:
        return found
    loaded = importlib.import_module(module)
    return [f"{module} has no {name}" for name in imported if not hasattr(loaded, name)]


def tickfleet_problems(args: list[str]) -> list[str]:
    """``tickfleet ...`` parses with the CLI's own parser."""
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
            tickfleet_parser().parse_args(args)
    except SystemExit as exc:
        if exc.code:  # the parser says what is wrong first, then where the help is
            first = errors.getvalue().strip().splitlines()[:1] or [""]
            return [f"tickfleet {' '.join(args)}: {first[0]}"]
    return []


PROGRAMS: dict[str, Callable[[list[str]], list[str]]] = {
    "celery": celery_problems,
    "python": python_problems,
    "tickfleet": tickfleet_problems,
}


def program_problems(where: str, command: list[str]) -> list[str]:
    if not command:
        return [f"{where}: no command"]
    check = PROGRAMS.get(command[0])
    if check is None:
        return [f"{where}: {command[0]} is no program of the project's image"]
    return [f"{where}: {p}" for p in check(command[1:])]


def command_problems(deployment: Deployment) -> list[str]:
    """Every fleet service's command and health check runs something the project has."""
    problems: list[str] = []
    for name, service in deployment.services.items():
        if not is_fleet(service):
            continue
        problems += program_problems(f"{name} command", argv(service.get("command")))
        health = health_argv(service)
        if health is not None:
            problems += program_problems(f"{name} healthcheck", health)
    return problems


# --- environment ---------------------------------------------------------------------------


def env_problems(deployment: Deployment, code: Code) -> list[str]:
    """Fleet processes get only env names they read; other images only their own."""
    problems: list[str] = []
    for name, service in deployment.services.items():
        for key in environment(service):
            if is_fleet(service):
                known = key in code.env_names or key in code.process_env
            else:
                prefix = IMAGE_ENV_PREFIXES.get(image_name(service))
                known = prefix is not None and key.startswith(prefix)
            if not known:
                problems.append(f"{name}: environment {key} is read by nothing it runs")
    return problems


def interpolation_problems(deployment: Deployment) -> list[str]:
    """Every ${VAR} is documented in .env.example, every documented one used, and the
    required ones (secrets) have no value there."""
    used: dict[str, set[str]] = {}
    for value in strings(deployment.compose):
        for match in _VAR.finditer(value):
            used.setdefault(match.group(1), set()).add(match.group(2) or "")
    for secret in (deployment.compose.get("secrets") or {}).values():
        if "environment" in secret:
            used.setdefault(secret["environment"], set()).add(":?")
    documented = deployment.documented
    problems = [f"${{{v}}} is not documented in .env.example" for v in used if v not in documented]
    problems += [
        f".env.example documents {v}, which compose never reads"
        for v in documented
        if v not in used
    ]
    problems += [
        f".env.example gives the secret {v} a value"
        for v, kinds in used.items()
        if ":?" in kinds and documented.get(v)
    ]
    return problems


# --- services: health, restart, users, ports, volumes, secrets -----------------------------


def lifecycle_problems(deployment: Deployment) -> list[str]:
    """A health check and a restart policy everywhere; one-shot jobs say so."""
    services = deployment.services
    completed = {
        target
        for service in services.values()
        for target, how in _depends(service).items()
        if how.get("condition") == "service_completed_successfully"
    }
    problems: list[str] = []
    for name, service in services.items():
        health = service.get("healthcheck")
        restart = str(service.get("restart", ""))
        if not health or not (health.get("test") or health.get("disable")):
            problems.append(f"{name}: no health check")
        elif health.get("disable") and (name not in completed or restart != "no"):
            problems.append(f"{name}: health check disabled but it is no one-shot job")
        elif (
            not health.get("disable")
            and restart.split(":", maxsplit=1)[0] not in LONG_RUNNING_RESTARTS
        ):
            problems.append(f"{name}: restart policy {restart or 'missing'}")
    return problems + _dependency_problems(services)


def _depends(service: Doc) -> dict[str, Doc]:
    raw = service.get("depends_on") or {}
    return {k: {} for k in raw} if isinstance(raw, list) else {k: v or {} for k, v in raw.items()}


def _dependency_problems(services: dict[str, Doc]) -> list[str]:
    problems: list[str] = []
    for name, service in services.items():
        for target, how in _depends(service).items():
            if target not in services:
                problems.append(f"{name}: depends on {target}, which is no service")
            elif how.get("condition") == "service_healthy" and not (
                services[target].get("healthcheck") or {}
            ).get("test"):
                problems.append(f"{name}: waits for {target} to be healthy, which has no check")
    return problems


def user_problems(deployment: Deployment) -> list[str]:
    """Fleet processes (Celery above all) run as the Dockerfile's own user, never root."""
    dockerfile = (deployment.root / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.MULTILINE)
    created = set(re.findall(r"useradd\b[^\n]*?\s(\w[\w-]*)\s*$", dockerfile, re.MULTILINE))
    problems: list[str] = []
    if not users or users[-1] in ROOT_USERS or users[-1] not in created:
        problems.append(
            f"Dockerfile: the image runs as {users[-1:] or 'root'}, not a user it creates"
        )
    for name, service in deployment.services.items():
        user = str(service.get("user", ""))
        if is_fleet(service) and (
            user in ROOT_USERS or user.split(":", maxsplit=1)[0] not in created
        ):
            problems.append(
                f"{name}: runs as {user or 'the default user'}, not the image's own user"
            )
    return problems


def port_problems(deployment: Deployment) -> list[str]:
    """Published on loopback, each host port once, onto a port the service listens on."""
    problems: list[str] = []
    published: dict[str, str] = {}
    for name, service in deployment.services.items():
        for port in service.get("ports") or []:
            host_ip, _, rest = interpolate(str(port)).partition(":")
            host_port, _, container = rest.partition(":")
            if host_ip != "127.0.0.1" or not container:
                problems.append(f"{name}: port {port} is not published on 127.0.0.1 only")
                continue
            if host_port in published:
                problems.append(f"{name}: host port {host_port} is {published[host_port]}'s too")
            published[host_port] = name
            if int(container) not in listen_ports(service):
                problems.append(f"{name}: publishes {container}, where nothing listens")
    return problems + _url_problems(deployment) + _health_port_problems(deployment)


def _health_port_problems(deployment: Deployment) -> list[str]:
    """A health check that asks a port of its own container asks one its process serves."""
    problems: list[str] = []
    for name, service in deployment.services.items():
        asked = re.findall(
            r"(?:127\.0\.0\.1|localhost):(\d+)", " ".join(health_argv(service) or [])
        )
        problems += [
            f"{name}: its health check asks port {p}, where nothing listens"
            for p in asked
            if int(p) not in listen_ports(service)
        ]
    return problems


def _url_problems(deployment: Deployment) -> list[str]:
    """Connection URLs in the environment name a service, on a port it listens on."""
    problems: list[str] = []
    for name, service in deployment.services.items():
        for key, value in environment(service).items():
            match = re.match(r"^[\w+]+://(?:[^@/]*@)?([\w.-]+):(\d+)", value)
            if match:
                problems += _target_problems(deployment, f"{name} {key}", match[1], int(match[2]))
    return problems


def _target_problems(deployment: Deployment, where: str, host: str, port: int) -> list[str]:
    target = deployment.services.get(host)
    if target is None:
        return [f"{where}: {host} is no service"]
    if port not in listen_ports(target):
        return [f"{where}: nothing listens on {host}:{port}"]
    return []


def volume_problems(deployment: Deployment) -> list[str]:
    """Named volumes and secrets declared and used; bind mounts exist in the repository."""
    declared = set(deployment.compose.get("volumes") or {})
    secrets = set(deployment.compose.get("secrets") or {})
    used: set[str] = set()
    used_secrets: set[str] = set()
    problems: list[str] = []
    for name, service in deployment.services.items():
        for volume in service.get("volumes") or []:
            source = str(volume).partition(":")[0]
            if source.startswith((".", "/")):
                if source.startswith("/") or not (deployment.root / source).exists():
                    problems.append(f"{name}: mounts {source}, which is not in the repository")
            else:
                used.add(source)
        used_secrets |= {
            str(s if isinstance(s, str) else s["source"]) for s in service.get("secrets") or []
        }
    problems += [f"volume {v} is used but not declared" for v in sorted(used - declared)]
    problems += [f"volume {v} is declared but never used" for v in sorted(declared - used)]
    problems += [f"secret {s} is used but not declared" for s in sorted(used_secrets - secrets)]
    problems += [f"secret {s} is declared but never used" for s in sorted(secrets - used_secrets)]
    return problems


# --- Prometheus and Grafana ----------------------------------------------------------------

_STRING = re.compile(r"\"(?:\\.|[^\"\\])*\"|'(?:\\.|[^'\\])*'")
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "offset", "bool", "inf", "nan", "by", "without", "on", "ignoring"}
    | {"group_left", "group_right"}
)


def promql_metrics(expr: str) -> set[str]:
    """The series names a PromQL expression selects (not its functions, labels, keywords)."""
    text = _STRING.sub('""', expr)
    for pattern in (_MATCHERS, _RANGE, _GROUPING):
        text = pattern.sub(" ", text)
    found = set()
    for match in _IDENT.finditer(text):
        before = text[match.start() - 1] if match.start() else " "
        after = text[match.end() :].lstrip()[:1]
        if before.isdigit() or before in ".$" or after == "(" or match[0] in _KEYWORDS:
            continue
        found.add(match[0])
    return found


def _metric_problems(where: str, expr: str, code: Code) -> list[str]:
    unknown = promql_metrics(expr) - code.metrics - SCRAPE_SERIES
    return [f"{where}: {m} is not a metric the fleet exports" for m in sorted(unknown)]


def _service_with(deployment: Deployment, image: str) -> tuple[str, Doc] | None:
    return next(((n, s) for n, s in deployment.services.items() if image_name(s) == image), None)


def prometheus_problems(deployment: Deployment, code: Code) -> list[str]:
    """Prometheus' config is mounted, its targets are services, its rules name real metrics."""
    found = _service_with(deployment, "prom/prometheus")
    if found is None:
        return ["no prometheus service"]
    name, service = found
    flags = dict(a.split("=", 1) for a in argv(service.get("command")) if "=" in a)
    path = deployment.host_path(
        service, flags.get("--config.file", "/etc/prometheus/prometheus.yml")
    )
    if path is None or not path.is_file():
        return [f"{name}: its config file is not mounted from the repository"]
    config: Doc = yaml.safe_load(path.read_text())
    problems = [
        p
        for job in config.get("scrape_configs") or []
        for p in _job_problems(deployment, service, job, code)
    ]
    rule_files = [
        f
        for pattern in config.get("rule_files") or []
        for f in _rule_files(deployment, service, pattern)
    ]
    if config.get("rule_files") and not rule_files:
        problems.append(f"{name}: rule_files match no file of the repository")
    for rule_file in rule_files:
        for group in yaml.safe_load(rule_file.read_text()).get("groups") or []:
            for rule in group.get("rules") or []:
                where = f"rule {rule.get('alert') or rule.get('record')}"
                problems += _metric_problems(where, str(rule.get("expr", "")), code)
    return problems


def _rule_files(deployment: Deployment, service: Doc, pattern: str) -> list[Path]:
    folder = deployment.host_path(service, str(PurePosixPath(pattern).parent))
    return sorted(folder.glob(PurePosixPath(pattern).name)) if folder else []


def _job_problems(deployment: Deployment, service: Doc, job: Doc, code: Code) -> list[str]:
    where = f"prometheus job {job.get('job_name')}"
    problems: list[str] = []
    credentials = (job.get("authorization") or {}).get("credentials_file")
    if credentials is not None:
        secret = str(credentials).removeprefix("/run/secrets/")
        mounted = {
            str(s if isinstance(s, str) else s["source"]) for s in service.get("secrets") or []
        }
        if secret not in mounted and deployment.host_path(service, str(credentials)) is None:
            problems.append(f"{where}: credentials_file {credentials} is not mounted")
    for static in job.get("static_configs") or []:
        for target in static.get("targets") or []:
            host, _, port = str(target).rpartition(":")
            if host == "localhost":
                continue  # Prometheus itself
            problems += _target_problems(deployment, where, host, int(port))
            if host in deployment.services and is_fleet(deployment.services[host]):
                path = job.get("metrics_path", "/metrics")
                if path not in code.api_paths:
                    problems.append(f"{where}: the API has no route {path}")
    return problems


def grafana_problems(deployment: Deployment, code: Code) -> list[str]:
    """Grafana's data sources reach Prometheus; every panel queries real metrics through one."""
    found = _service_with(deployment, "grafana/grafana")
    if found is None:
        return ["no grafana service"]
    name, service = found
    provisioning = deployment.host_path(service, GRAFANA_PROVISIONING)
    if provisioning is None or not provisioning.is_dir():
        return [f"{name}: {GRAFANA_PROVISIONING} is not mounted from the repository"]
    uids, problems = _datasources(deployment, provisioning)
    dashboards = [
        f
        for provider in _providers(provisioning)
        for f in _dashboard_files(deployment, service, provider)
    ]
    if not dashboards:
        problems.append(f"{name}: no dashboard is provisioned")
    for dashboard in dashboards:
        problems += _dashboard_problems(dashboard, uids, code)
    return problems


def _datasources(deployment: Deployment, provisioning: Path) -> tuple[set[str], list[str]]:
    uids: set[str] = set()
    problems: list[str] = []
    for file in sorted((provisioning / "datasources").glob("*.y*ml")):
        for source in yaml.safe_load(file.read_text()).get("datasources") or []:
            uids.add(str(source.get("uid")))
            match = re.match(r"^https?://([\w.-]+):(\d+)", str(source.get("url", "")))
            if match is None:
                problems.append(f"grafana data source {source.get('name')}: no host:port url")
            else:
                where = f"grafana data source {source.get('name')}"
                problems += _target_problems(deployment, where, match[1], int(match[2]))
    return uids, problems


def _providers(provisioning: Path) -> Iterator[Doc]:
    for file in sorted((provisioning / "dashboards").glob("*.y*ml")):
        yield from yaml.safe_load(file.read_text()).get("providers") or []


def _dashboard_files(deployment: Deployment, service: Doc, provider: Doc) -> list[Path]:
    folder = deployment.host_path(service, str((provider.get("options") or {}).get("path", "")))
    return sorted(folder.glob("*.json")) if folder and folder.is_dir() else []


def _panels(panels: list[Doc]) -> Iterator[Doc]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels") or [])  # rows hold their panels


def _dashboard_problems(file: Path, uids: set[str], code: Code) -> list[str]:
    dashboard = json.loads(file.read_text())
    problems: list[str] = []
    for panel in _panels(dashboard.get("panels") or []):
        where = f"{file.name} panel {panel.get('title')!r}"
        for target in panel.get("targets") or []:
            uid = (target.get("datasource") or panel.get("datasource") or {}).get("uid")
            if uid not in uids:
                problems.append(f"{where}: data source {uid} is not provisioned")
            problems += _metric_problems(where, str(target.get("expr", "")), code)
    return problems


def all_problems(deployment: Deployment, code: Code) -> list[str]:
    return [
        *command_problems(deployment),
        *env_problems(deployment, code),
        *interpolation_problems(deployment),
        *lifecycle_problems(deployment),
        *user_problems(deployment),
        *port_problems(deployment),
        *volume_problems(deployment),
        *prometheus_problems(deployment, code),
        *grafana_problems(deployment, code),
    ]
