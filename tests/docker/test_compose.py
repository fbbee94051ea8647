"""
The docker/ stack, tested without a Docker engine.

No engine runs where this suite runs, so these tests check what can be checked outside one: the compose
file parses and references only files that exist, its services fit together (images, dependencies,
ports, shared settings), its connections are valid Airflow connections, the Dockerfile extends the
official image and installs the provider under the constraints from files that build the package, and
the commands the containers run work the same way here: the emulator with the compose arguments serves
the compose token, and the Airflow components run valid Airflow commands.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import shlex
import shutil
import signal
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
import yaml

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO = Path(__file__).resolve().parents[2]
DOCKER_DIR = REPO / "docker"
COMPOSE_FILE = DOCKER_DIR / "docker-compose.yaml"
DOCKERFILE = DOCKER_DIR / "Dockerfile"
DOCKERIGNORE = DOCKER_DIR / "Dockerfile.dockerignore"
VENV_BIN = Path(sys.executable).parent

BASE_IMAGE = "apache/airflow:3.3.2-python3.11"
CONSTRAINTS = "constraints-3.11.txt"
#: Airflow components; each runs the Airflow command of its own name.
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
AIRFLOW_SERVICES = ("airflow-init", *COMPONENTS)
LONG_RUNNING = ("postgres", "emulator", *COMPONENTS)
# The celery profile (``--profile celery``): the broker, the workers and Flower.
CELERY_WORKERS = ("celery-worker",)
CELERY_SERVICES = ("redis", *CELERY_WORKERS, "flower")
SMSNEXUS_CONN = "AIRFLOW_CONN_SMSNEXUS_DEFAULT"
START_TIMEOUT = 15.0
#: AIRFLOW_HOME in the official image.
IMAGE_AIRFLOW_HOME = "/opt/airflow"

_VARIABLE = re.compile(
    r"\$(?:(?P<dollar>\$)|\{(?P<name>[A-Za-z_]\w*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|(?P<bare>[A-Za-z_]\w*))"
)


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """
    Apply docker compose's variable interpolation to every string in ``value``.

    :param value: the parsed compose document, or a part of it.
    :param env: the variables compose would see; a variable with neither a value nor a default fails,
        so an empty ``env`` checks that the file works on a fresh machine.
    """
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match["dollar"]:
            return "$"
        name = match["name"] or match["bare"]
        op = match["op"] or ""
        current = env.get(name)
        if current is not None and not (op.startswith(":") and current == ""):
            return current
        if op.endswith("-"):
            return match["arg"]
        raise AssertionError(
            f"${{{name}}} is unset and has no default: {match['arg'] or 'compose needs it set'}"
        )

    return _VARIABLE.sub(substitute, value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The compose file as docker compose reads it on a machine without any variables set."""
    return interpolate(yaml.safe_load(COMPOSE_FILE.read_text()), {})


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The compose file's services by name."""
    return compose["services"]


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a mapping (compose also allows a list of ``NAME=value``)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return env


def command_args(service: dict[str, Any]) -> list[str]:
    """A service's ``command`` as an argument list."""
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else list(command)


def entrypoint_argv(service: dict[str, Any]) -> list[str]:
    """
    What the official image's ``/entrypoint`` runs for a service's command: ``bash`` and ``python`` as
    they are, anything else as arguments of ``airflow`` (with or without a leading ``airflow``).
    """
    args = command_args(service)
    if args[0] in ("bash", "python"):
        return args
    return ["airflow", *(args[1:] if args[0] == "airflow" else args)]


def option(args: list[str], name: str) -> list[str]:
    """Every value given to the command-line option ``name``."""
    return [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == name]


def container_ports(service: dict[str, Any]) -> set[int]:
    """The container side of a service's published ports (short syntax ``[ip:]host:container``)."""
    return {int(str(port).rsplit(":", 1)[-1].split("/")[0]) for port in service.get("ports", [])}


def airflow_cli_error(argv: list[str]) -> str | None:
    """None when Airflow's own CLI parser accepts ``airflow <argv>``; else its complaint."""
    from airflow.cli.cli_parser import get_parser

    try:
        get_parser().parse_args(argv)
    except SystemExit as exc:
        return f"airflow {shlex.join(argv)} is not a valid Airflow command (exit {exc.code})"
    return None


def dockerfile_instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (INSTRUCTION, arguments), continuation lines joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        keyword, _, arguments = pending.strip().partition(" ")
        instructions.append((keyword.upper(), " ".join(arguments.split())))
        pending = ""
    return instructions


def dockerfile_copies() -> list[tuple[list[str], str]]:
    """The Dockerfile's COPY instructions as (sources relative to the build context, destination)."""
    copies = []
    for keyword, arguments in dockerfile_instructions():
        if keyword == "COPY":
            parts = [part for part in arguments.split() if not part.startswith("--")]
            copies.append((parts[:-1], parts[-1]))
    return copies


def dockerignored(relative: PurePosixPath) -> bool:
    """Whether docker/Dockerfile.dockerignore keeps a path (relative to the build context) out of the build."""
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert not any(pattern.startswith("!") for pattern in patterns), "exceptions are not modelled here"
    candidates = [PurePosixPath(*relative.parts[: i + 1]) for i in range(len(relative.parts))]
    for pattern in patterns:
        if pattern.startswith("**/"):
            if any(fnmatch(part, pattern[3:]) for part in relative.parts):
                return True
        elif any(fnmatch(str(candidate), pattern) for candidate in candidates):
            return True
    return False


# -- the compose file --------------------------------------------------------------------------------


def test_compose_file_has_the_airflow_components_postgres_the_emulator_and_a_one_shot_init(
    services: dict[str, dict[str, Any]],
) -> None:
    by_default = {name for name, service in services.items() if not service.get("profiles")}
    assert by_default == {"postgres", "emulator", *AIRFLOW_SERVICES}
    assert {name for name, service in services.items() if service.get("profiles") == ["celery"]} == set(
        CELERY_SERVICES
    )


def test_airflow_services_and_the_emulator_run_the_image_built_from_docker_dockerfile(
    services: dict[str, dict[str, Any]],
) -> None:
    images = set()
    for name in (*AIRFLOW_SERVICES, "emulator", *CELERY_WORKERS, "flower"):
        build = services[name]["build"]
        context = (DOCKER_DIR / build["context"]).resolve()
        assert context == REPO, f"{name}: the build context must be the repository root"
        assert (context / build["dockerfile"]).resolve() == DOCKERFILE
        images.add(services[name]["image"])
    assert len(images) == 1, f"one image for all, so the provider is the same everywhere: {images}"


def test_every_host_path_mounted_exists_and_named_volumes_are_declared(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith((".", "/")):
                assert (DOCKER_DIR / source).exists(), f"{name} mounts {source}, which does not exist"
            else:
                assert source in declared, f"{name} uses the undeclared volume {source}"
            assert target.startswith("/")


def test_example_dags_are_mounted_where_airflow_reads_them(services: dict[str, dict[str, Any]]) -> None:
    assert (REPO / "dags").is_dir()
    for name in AIRFLOW_SERVICES:
        mounts = {
            volume.split(":")[1]: (DOCKER_DIR / volume.split(":")[0]).resolve()
            for volume in services[name]["volumes"]
            if volume.startswith(".")
        }
        assert mounts.get(f"{IMAGE_AIRFLOW_HOME}/dags") == REPO / "dags", name


def test_every_smsnexus_setting_in_the_environment_is_read_by_an_example_dag(
    services: dict[str, dict[str, Any]],
) -> None:
    dag_sources = "\n".join(path.read_text() for path in (REPO / "dags").glob("*.py"))
    for name in environment(services["scheduler"]):
        if name.startswith("SMSNEXUS_"):
            assert f'"{name}"' in dag_sources, f"no example DAG reads {name}"


def test_the_example_that_answers_customers_starts_paused_and_answers_only_from_its_first_run_in_the_stack(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    import runpy

    # The stack creates DAGs unpaused; the reply example must not start answering the seeded history.
    env = environment(services["scheduler"])
    assert env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "false"
    for name in [name for name in os.environ if name.startswith("SMSNEXUS_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        if name.startswith("SMSNEXUS_"):
            monkeypatch.setenv(name, value)

    example = runpy.run_path(str(REPO / "dags" / "inbound_replies.py"))

    (watcher,) = example["REPLIES"].watchers
    assert watcher.trigger.serialize()[1]["since"] == "first-run"  # nothing from before its first run
    assert example["dag"].is_paused_upon_creation is True


def test_files_the_example_dags_keep_are_on_volumes_where_tasks_run(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_smsnexus.campaign.ledger_schema import default_ledger_path

    monkeypatch.setenv("AIRFLOW_HOME", IMAGE_AIRFLOW_HOME)
    scheduler = services["scheduler"]  # the LocalExecutor runs the tasks there
    targets = {volume.split(":")[1] for volume in scheduler["volumes"]}
    assert environment(scheduler)["SMSNEXUS_EXPORT_DIR"] in targets, "Parquet exports"
    assert str(default_ledger_path().parent) in targets, "the campaign's send ledger"


def test_dependencies_name_services_whose_condition_can_be_met(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for target, spec in (service.get("depends_on") or {}).items():
            assert target in services, f"{name} depends on the unknown service {target}"
            condition = spec["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits for {target}, which has no check"
            elif condition == "service_completed_successfully":
                assert services[target].get("restart", "no") == "no", f"{target} must run once"
            else:
                assert condition == "service_started", condition
    for name in LONG_RUNNING:
        assert "test" in services[name]["healthcheck"], name
        assert services[name]["restart"] in ("always", "unless-stopped"), name
    for name in AIRFLOW_SERVICES[1:]:
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
    for name in ("scheduler", "triggerer"):  # they run the tasks and triggers that call the emulator
        assert services[name]["depends_on"]["emulator"]["condition"] == "service_healthy"
        assert services[name]["depends_on"]["api-server"]["condition"] == "service_healthy"


def test_airflow_components_share_settings_that_point_at_the_compose_services(
    services: dict[str, dict[str, Any]],
) -> None:
    from cryptography.fernet import Fernet

    envs = {name: environment(services[name]) for name in AIRFLOW_SERVICES}
    shared = [
        "AIRFLOW__CORE__EXECUTOR",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW__API__SECRET_KEY",
        "AIRFLOW__CORE__FERNET_KEY",
        "SMSNEXUS_WAREHOUSE_CONN_ID",
        "SMSNEXUS_EXPORT_DIR",
    ]
    for key in shared:
        values = {env.get(key) for env in envs.values()}
        assert None not in values, f"{key} is missing in a component"
        assert len(values) == 1, f"{key} differs between components: {values}"
    env = envs["scheduler"]
    assert all(isinstance(value, str) for env in envs.values() for value in env.values())
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert len(env["AIRFLOW__API_AUTH__JWT_SECRET"].encode()) >= 32, "HMAC keys under 32 bytes are refused"
    Fernet(env["AIRFLOW__CORE__FERNET_KEY"].encode())

    metadata = urlsplit(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    postgres = environment(services["postgres"])
    assert metadata.scheme.startswith("postgresql")
    assert (metadata.hostname, metadata.username, metadata.password, metadata.path.lstrip("/")) == (
        "postgres",
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
        postgres["POSTGRES_DB"],
    )
    execution_api = urlsplit(env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
    assert execution_api.hostname == "api-server"
    assert execution_api.port in container_ports(services["api-server"])
    assert execution_api.path == "/execution/"
    if "8974" in " ".join(services["scheduler"]["healthcheck"]["test"]):
        assert env["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"].lower() == "true"


def test_connections_in_the_compose_file_are_valid_airflow_connections(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk import BaseHook, Connection

    envs = [environment(services[name]) for name in AIRFLOW_SERVICES]
    conn_vars = {key for env in envs for key in env if key.startswith("AIRFLOW_CONN_")}
    assert SMSNEXUS_CONN in conn_vars
    conns = {}
    for key in conn_vars:
        values = {env.get(key) for env in envs}
        assert None not in values, f"{key} is missing in a component"
        assert len(values) == 1, f"{key} differs between components"
        conn_id = key.removeprefix("AIRFLOW_CONN_").lower()
        conns[conn_id] = Connection.from_json(values.pop(), conn_id=conn_id)

    smsnexus = conns["smsnexus_default"]
    emulator_args = command_args(services["emulator"])
    url = urlsplit(smsnexus.host)
    assert smsnexus.conn_type == "smsnexus"
    assert (url.scheme, url.hostname, url.path) == ("http", "emulator", "/api")
    assert str(url.port) in option(emulator_args, "--port")
    assert smsnexus.password in option(emulator_args, "--token")

    warehouse_id = environment(services["scheduler"])["SMSNEXUS_WAREHOUSE_CONN_ID"]
    warehouse = conns[warehouse_id]
    assert warehouse.conn_type == "postgres"
    # The path SMSNexusToSqlOperator takes: the connection (from the environment, as in the containers),
    # its hook, the hook's SQLAlchemy engine.
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{warehouse_id.upper()}",
        environment(services["scheduler"])[f"AIRFLOW_CONN_{warehouse_id.upper()}"],
    )
    engine = BaseHook.get_connection(warehouse_id).get_hook().get_sqlalchemy_engine()
    try:
        assert engine.url.get_backend_name() == "postgresql"
        assert (engine.url.host, engine.url.port, engine.url.database) == ("postgres", 5432, "warehouse")
    finally:
        engine.dispose()


def test_warehouse_init_script_creates_the_user_and_database_of_the_warehouse_connection(
    services: dict[str, dict[str, Any]],
) -> None:
    from airflow.sdk import Connection

    init_mounts = [
        volume.split(":")[0]
        for volume in services["postgres"]["volumes"]
        if volume.split(":")[1].startswith("/docker-entrypoint-initdb.d/")
    ]
    assert len(init_mounts) == 1
    sql = (DOCKER_DIR / init_mounts[0]).read_text()
    user, password = re.search(r"CREATE USER (\w+) WITH PASSWORD '([^']*)'", sql).groups()
    database, owner = re.search(r"CREATE DATABASE (\w+) OWNER (\w+)", sql).groups()

    env = environment(services["scheduler"])
    conn_id = env["SMSNEXUS_WAREHOUSE_CONN_ID"]
    warehouse = Connection.from_json(env[f"AIRFLOW_CONN_{conn_id.upper()}"], conn_id=conn_id)
    assert (warehouse.host, warehouse.port) == ("postgres", 5432)
    assert (warehouse.login, warehouse.password, warehouse.schema) == (user, password, database)
    assert owner == user
    assert database != environment(services["postgres"])["POSTGRES_DB"], "keep it apart from the metadata"


# -- the Dockerfile ----------------------------------------------------------------------------------


def test_dockerfile_extends_the_official_image_and_installs_the_provider_under_the_constraints() -> None:
    instructions = dockerfile_instructions()
    assert instructions[0] == ("FROM", BASE_IMAGE)
    airflow_version, python_version = re.fullmatch(
        r"apache/airflow:([\d.]+)-python([\d.]+)", BASE_IMAGE
    ).groups()
    assert f"constraints-{python_version}.txt" == CONSTRAINTS
    assert f"apache-airflow=={airflow_version}" in (REPO / CONSTRAINTS).read_text().splitlines()

    copied = {}
    for sources, destination in dockerfile_copies():
        for source in sources:
            assert (REPO / source).exists(), f"COPY {source}: not in the build context"
            target = (
                destination if len(sources) == 1 and not destination.endswith("/") else destination + source
            )
            copied[source.rstrip("/")] = target.rstrip("/")
    assert {"setup.py", "pyproject.toml", "README.md", CONSTRAINTS, "airflow_provider_smsnexus"} <= set(
        copied
    )

    user = None
    installs = []
    for keyword, arguments in instructions:
        if keyword == "USER":
            user = arguments
        elif keyword == "RUN" and "pip install" in arguments:
            installs.append((user, arguments))
    assert len(installs) == 1
    user, install = installs[0]
    assert user == "airflow", "the image's documentation installs packages as the airflow user"
    assert re.search(rf"(--constraint|-c) {re.escape(copied[CONSTRAINTS])}(\s|$)", install)
    assert copied["setup.py"].rsplit("/", 1)[0] in install, "installs the copied package"


def test_files_the_dockerfile_copies_are_enough_to_build_the_package(tmp_path: Path) -> None:
    context = tmp_path / "context"
    for sources, _ in dockerfile_copies():
        for source in sources:
            path = REPO / source
            files = [path] if path.is_file() else [item for item in path.rglob("*") if item.is_file()]
            for file in files:
                relative = PurePosixPath(file.relative_to(REPO).as_posix())
                if not dockerignored(relative):
                    (context / relative).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(file, context / relative)
    assert not (context / "airflow_provider_smsnexus" / "__pycache__").exists()

    result = subprocess.run(
        [sys.executable, "setup.py", "-q", "egg_info", "--egg-base", str(tmp_path)],
        cwd=context,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (egg_info,) = tmp_path.glob("*.egg-info")
    entry_points = (egg_info / "entry_points.txt").read_text()
    assert "smsnexus-emulator = airflow_provider_smsnexus.emulator.cli:main" in entry_points
    assert "provider_info = airflow_provider_smsnexus:get_provider_info" in entry_points
    sources = (egg_info / "SOURCES.txt").read_text().splitlines()
    assert "airflow_provider_smsnexus/emulator/cli.py" in sources


# -- the commands the containers run, run here ---------------------------------------------------------


@pytest.fixture
def emulator_process(
    services: dict[str, dict[str, Any]], tmp_path: Path
) -> Iterator[tuple[subprocess.Popen, str]]:
    """The emulator service's command, run from this virtual environment on loopback and a free port.

    Yields the process and its start-up line.
    """
    args = command_args(services["emulator"])
    assert args[0] == "smsnexus-emulator"
    assert option(args, "--host") == ["0.0.0.0"], "reachable from the other containers"
    local_args = list(args[1:])
    local_args[local_args.index("--host") + 1] = "127.0.0.1"
    local_args[local_args.index("--port") + 1] = "0"
    with (tmp_path / "emulator.log").open("w") as log:
        process = subprocess.Popen(
            [str(VENV_BIN / args[0]), *local_args],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            ready = selector.select(timeout=START_TIMEOUT)
        line = process.stdout.readline() if ready else ""
        assert line, f"no start-up line: {(tmp_path / 'emulator.log').read_text()[-2000:]}"
        yield process, line
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        process.stdout.close()


def test_emulator_command_serves_the_compose_token_and_history_then_stops_cleanly_on_sigterm(
    emulator_process: tuple[subprocess.Popen, str],
    services: dict[str, dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    process, line = emulator_process
    base_url = re.search(r"(http://127\.0\.0\.1:\d+/api)\b", line).group(1)
    port = urlsplit(base_url).port
    compose_conn = json.loads(environment(services["scheduler"])[SMSNEXUS_CONN])
    args = command_args(services["emulator"])

    balance = requests.get(
        f"{base_url}/balance", headers={"Authorization": f"Bearer {compose_conn['password']}"}, timeout=10
    )
    assert balance.status_code == 200, balance.text
    assert balance.json()["success"] is True

    # The container's health check, against this process.
    check_url = urlsplit(services["emulator"]["healthcheck"]["test"][-1])
    assert check_url.port in container_ports(services["emulator"])
    health = requests.get(urlunsplit(check_url._replace(netloc=f"127.0.0.1:{port}")), timeout=10)
    assert health.status_code == 200

    # The compose connection, with only its host moved here, through the provider's hook.
    from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook

    monkeypatch.setenv(SMSNEXUS_CONN, json.dumps({**compose_conn, "host": base_url}))
    page = SMSNexusHook().get_messages(per_page=1)
    assert page["meta"]["total"] == int(option(args, "--seed-messages")[0])

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0


def run_with_stub_airflow(
    service: dict[str, Any], tmp_path: Path, extra_env: dict[str, str] | None = None
) -> list[list[str]]:
    """
    Run a service's command the way the image's entrypoint would, with an ``airflow`` on PATH that only
    records its arguments. Returns the recorded ``airflow`` calls.
    """
    argv = entrypoint_argv(service)
    if argv[0] == "airflow":
        return [argv[1:]]
    stub_bin = tmp_path / "stub-bin"
    stub_bin.mkdir(exist_ok=True)
    calls = tmp_path / "airflow-calls.jsonl"
    calls.write_text("")
    stub = stub_bin / "airflow"
    stub.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        "with open(os.environ['STUB_AIRFLOW_CALLS'], 'a') as calls:\n"
        "    calls.write(json.dumps(sys.argv[1:]) + '\\n')\n"
    )
    stub.chmod(0o755)
    env = {
        **environment(service),
        **(extra_env or {}),
        "PATH": os.pathsep.join([str(stub_bin), str(VENV_BIN), os.environ["PATH"]]),
        "HOME": str(tmp_path),
        "STUB_AIRFLOW_CALLS": str(calls),
    }
    result = subprocess.run(
        argv, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in calls.read_text().splitlines()]


def test_airflow_services_run_valid_airflow_commands(
    services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    errors = []
    for name in AIRFLOW_SERVICES:
        service = services[name]
        assert "entrypoint" not in service, f"{name} needs the image's entrypoint (it waits for the database)"
        workdir = tmp_path / name
        workdir.mkdir()
        passwords = {"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(workdir / "passwords.json")}
        calls = run_with_stub_airflow(service, workdir, passwords)
        assert calls, f"{name} runs no airflow command"
        if name in COMPONENTS:
            assert calls[-1] == [name], f"{name} must end in `airflow {name}`"
        check = service.get("healthcheck", {}).get("test", [])
        if check[:1] == ["CMD-SHELL"] and check[1].startswith("airflow "):
            calls.append(shlex.split(check[1].replace("${HOSTNAME}", "container-host"))[1:])
        errors += [error for call in calls if (error := airflow_cli_error(call))]
    assert not errors


def test_airflow_init_migrates_the_database_and_checks_that_airflow_sees_the_provider(
    services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    calls = run_with_stub_airflow(services["airflow-init"], tmp_path)
    assert calls[0] == ["db", "migrate"]
    assert ["providers", "get", "airflow-provider-smsnexus"] in calls
    # The provider check, for real, where the provider is installed.
    result = subprocess.run(
        [str(VENV_BIN / "airflow"), "providers", "get", "airflow-provider-smsnexus"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "airflow-provider-smsnexus" in result.stdout


def test_api_server_writes_the_admin_password_that_the_simple_auth_manager_reads(
    services: dict[str, dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

    service = services["api-server"]
    env = environment(service)
    passwords_file = tmp_path / "passwords.json"
    calls = run_with_stub_airflow(
        service, tmp_path, {"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file)}
    )
    assert calls == [["api-server"]]
    assert env["AIRFLOW_ADMIN_PASSWORD"] == "admin", "the README's login on a fresh machine"

    monkeypatch.setenv(
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"]
    )
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(passwords_file))
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False")
    users = {user.username: user.role for user in SimpleAuthManager.get_users()}
    assert users == {"admin": "admin"}
    assert SimpleAuthManager.get_passwords() == {"admin": "admin"}


def test_the_celery_profile_runs_two_workers_that_share_the_components_settings_and_a_ledger(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    # As the header says: AIRFLOW__CORE__EXECUTOR=CeleryExecutor docker compose --profile celery up
    celery = interpolate(
        yaml.safe_load(COMPOSE_FILE.read_text()), {"AIRFLOW__CORE__EXECUTOR": "CeleryExecutor"}
    )
    services = celery["services"]
    assert environment(compose["services"]["scheduler"])["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    envs = {name: environment(services[name]) for name in (*AIRFLOW_SERVICES, *CELERY_WORKERS, "flower")}
    for key in (
        "AIRFLOW__CORE__EXECUTOR",
        "AIRFLOW__CELERY__BROKER_URL",
        "AIRFLOW__CELERY__RESULT_BACKEND",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW__CORE__FERNET_KEY",
        "SMSNEXUS_LEDGER_CONN_ID",
        "AIRFLOW_CONN_SMSNEXUS_DEFAULT",
    ):
        assert len({env.get(key) for env in envs.values()}) == 1, key
    env = envs["celery-worker"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    broker = urlsplit(env["AIRFLOW__CELERY__BROKER_URL"])
    assert (broker.scheme, broker.hostname, broker.port) == ("redis", "redis", 6379)
    assert str(broker.port) in services["redis"]["expose"]
    backend = urlsplit(env["AIRFLOW__CELERY__RESULT_BACKEND"].removeprefix("db+"))
    assert (backend.hostname, backend.path) == (
        "postgres",
        urlsplit(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]).path,
    )
    worker = services["celery-worker"]
    assert worker["deploy"]["replicas"] == 2
    assert option(command_args(worker), "--concurrency") == ["1"]
    assert worker["depends_on"]["redis"]["condition"] == "service_healthy"
    # The scheduler waits for Redis only when the profile is on (a required dependency would break the default).
    assert services["scheduler"]["depends_on"]["redis"] == {"condition": "service_healthy", "required": False}
    # The ledger every worker shares is a SQL connection of the compose file (the warehouse), not a file.
    ledger = env["SMSNEXUS_LEDGER_CONN_ID"]
    assert f"AIRFLOW_CONN_{ledger.upper()}" in env
    for name in (*CELERY_WORKERS, "flower"):
        errors = [
            error
            for call in run_with_stub_airflow(services[name], tmp_path)
            if (error := airflow_cli_error(call))
        ]
        assert not errors, (name, errors)
    assert "[postgres,celery,emulator]" in DOCKERFILE.read_text(), (
        "the image installs the celery and emulator extras"
    )


def test_the_inbox_page_is_opened_to_the_hosts_browser_and_published_on_loopback_only(services):
    from airflow_provider_smsnexus.emulator.cli import build_parser, settings_from_args

    emulator = services["emulator"]
    args = command_args(emulator)
    # The browser reaches the container through Docker's bridge: the page must allow a non-loopback client...
    assert settings_from_args(build_parser().parse_args(args[1:])).allow_remote_inspection is True
    # ... and only the host's own loopback may reach the port.
    assert emulator["ports"]
    assert all(str(port).startswith("127.0.0.1:") for port in emulator["ports"])


def test_the_readme_names_the_extras_the_dockerfile_installs():
    extras = re.search(r'"/tmp/smsnexus-provider\[([a-z,]+)\]"', DOCKERFILE.read_text()).group(1)
    assert f'".[{extras}]"' in (DOCKER_DIR / "README.md").read_text()
