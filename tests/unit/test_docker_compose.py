"""docker-compose.yml and the Dockerfile agree with the project: no Docker needed, the files are parsed.

The stack cannot be started in CI (no Docker engine), so these tests pin down what would break it silently: a
service missing, an Airflow image of another version than requirements.txt pins, a worker without the warehouse,
the wrong executor or broker, a password written into the file, a project directory left out of the image.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest
import yaml
from sqlalchemy import make_url

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

AIRFLOW_SERVICES = {
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "airflow-init",
}
REQUIRED_SERVICES = AIRFLOW_SERVICES | {"redis", "postgres", "warehouse", "api"}
PROJECT_DIRS = ["dags", "pipelines", "plugins", "sql", "config", "expectations"]

_VAR = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def interpolate(value: str) -> str:
    """What Compose makes of a value when no variable is set: ${VAR:-default} -> default, $$ -> $."""
    return _VAR.sub(lambda m: m.group(2) or "", value).replace("$$", "$")


def resolved(node):
    if isinstance(node, str):
        return interpolate(node)
    if isinstance(node, dict):
        return {k: resolved(v) for k, v in node.items()}
    if isinstance(node, list):
        return [resolved(v) for v in node]
    return node


@pytest.fixture(scope="module")
def raw() -> dict:
    # safe_load resolves the anchors and `<<:` merge keys, as Compose does
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(raw) -> dict:
    return resolved(raw["services"])


def env(service: dict) -> dict[str, str]:
    environment = service.get("environment", {})
    if isinstance(environment, list):  # KEY=value form
        environment = dict(item.split("=", 1) for item in environment)
    return {k: str(v) for k, v in environment.items()}


def pinned_airflow_version() -> str:
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        name, _, version = line.strip().partition("==")
        if name.lower() == "apache-airflow":
            return version
    raise AssertionError("requirements.txt pins no apache-airflow version")


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def test_every_service_of_the_stack_exists(services):
    assert REQUIRED_SERVICES <= set(services), f"missing: {sorted(REQUIRED_SERVICES - set(services))}"


def test_airflow_image_is_the_version_requirements_pin(raw, services):
    version = pinned_airflow_version()
    froms = [rest for kw, rest in dockerfile_instructions() if kw == "FROM"]
    assert froms, "Dockerfile has no FROM"
    image, _, tag = froms[0].partition(":")
    assert image == "apache/airflow"
    assert tag.split("-")[0] == version, f"Dockerfile FROM {froms[0]} but requirements.txt pins {version}"
    for name in AIRFLOW_SERVICES | {"api"}:
        service = services[name]
        assert service.get("build", {}).get("dockerfile", "Dockerfile") == "Dockerfile", name
        assert service["image"].rsplit(":", 1)[1] == version, f"{name} image {service['image']}"


def test_every_airflow_service_and_the_api_reach_the_warehouse_service(services):
    for name in AIRFLOW_SERVICES | {"api"}:
        url = make_url(env(services[name])["WAREHOUSE_URL"])
        assert url.drivername == "postgresql+psycopg", name
        assert url.host == "warehouse" and url.port == 5432, f"{name}: {url}"
        assert url.database == "warehouse"
        assert make_url(env(services[name])["FRONTDB_URL"]).host == "warehouse", name
    assert services["warehouse"]["image"].startswith("postgis/postgis:15-")


def test_celery_executor_with_redis_broker_and_postgres_metadata(services):
    for name in AIRFLOW_SERVICES:
        e = env(services[name])
        assert e["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert make_url(e["AIRFLOW__CELERY__BROKER_URL"]).host == "redis", name
        assert make_url(e["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]).host == "postgres", name
        assert make_url(e["AIRFLOW__CELERY__RESULT_BACKEND"].removeprefix("db+")).host == "postgres", name
        # Airflow 3: task processes talk to the api-server, with JWTs all components sign with one secret
        assert e["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].startswith("http://airflow-apiserver:8080/"), name
        assert e["AIRFLOW__API_AUTH__JWT_SECRET"], name
    assert services["airflow-worker"]["command"] == "celery worker"
    assert services["redis"]["image"].startswith("redis:")


def test_api_server_publishes_port_8080(services):
    ports = [str(p) for p in services["airflow-apiserver"]["ports"]]
    assert any(p.split(":")[-1] == "8080" and p.split(":")[-2] == "8080" for p in ports), ports
    assert services["airflow-apiserver"]["command"] == "api-server"


def test_long_running_services_have_healthchecks_and_wait_for_init(services):
    for name, service in services.items():
        if name == "airflow-init":
            continue
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        if name in AIRFLOW_SERVICES:
            assert service["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully", name
            for dep in ("postgres", "redis", "warehouse"):
                assert service["depends_on"][dep]["condition"] == "service_healthy", (name, dep)


def test_init_migrates_airflow_and_the_warehouse(services):
    script = " ".join(services["airflow-init"]["command"])
    assert "airflow db migrate" in script
    assert "python -m pipelines migrate" in script
    assert "AIRFLOW_ADMIN_PASSWORD" in script


def test_the_api_service_runs_the_read_api(services):
    command = services["api"]["command"]
    assert command[:3] == ["python", "-m", "uvicorn"] and "pipelines.api.app:app" in command
    assert command[command.index("--port") + 1] == "8000" and command[command.index("--host") + 1] == "0.0.0.0"
    assert "profiles" not in services["api"], "the read API starts with a plain `docker compose up`"
    assert any(str(p).split(":")[-1] == "8000" for p in services["api"]["ports"])
    assert "http://localhost:8000/api/v1/health" in services["api"]["healthcheck"]["test"]
    assert services["api"]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
    assert (ROOT / "pipelines" / "api" / "app.py").is_file()


def test_no_password_is_written_into_the_file(raw):
    """Every password in a URL or a POSTGRES_PASSWORD comes from a variable (with a local default)."""
    text = COMPOSE.read_text()
    for user_password in re.findall(r"://([^@/\s]+)@", text):
        _, _, password = user_password.partition(":")
        assert not password or password.startswith("${"), f"literal password in a URL: {user_password}"
    keys = re.finditer(r"^\s*([A-Z_]*(?:PASSWORD|SECRET|FERNET_KEY)[A-Z_]*):\s*(\S+)", text, re.MULTILINE)
    checked = [m for m in keys if not m.group(1).endswith("_FILE")]
    assert checked
    for m in checked:
        assert m.group(2).startswith("${"), f"literal secret: {m.group(0).strip()}"


def test_warehouse_init_script_is_in_the_repo(services):
    mounts = [v for v in services["warehouse"]["volumes"] if v.startswith("./")]
    assert mounts
    for mount in mounts:
        assert (ROOT / mount.split(":")[0]).is_file(), mount


def _ignored(path: str, patterns: list[str]) -> bool:
    """.dockerignore semantics, enough for these patterns: the last matching line wins, ! re-includes."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        candidates = [pattern, pattern + "/*"]
        if pattern.startswith("**/"):
            candidates += [pattern[3:], pattern[3:] + "/*"]
        if any(fnmatch.fnmatch(path, c) for c in candidates):
            ignored = not negate
    return ignored


def test_the_image_contains_the_project():
    copies = {}
    for kw, rest in dockerfile_instructions():
        if kw == "COPY":
            args = [a for a in rest.split() if not a.startswith("--")]
            *sources, dest = args
            for source in sources:
                copies[source.rstrip("/").replace("[s]", "s")] = dest.rstrip("/")
    for d in PROJECT_DIRS:
        assert copies.get(d) == f"/opt/airflow/{d}", f"Dockerfile does not copy {d}/ to /opt/airflow/{d}"
    assert "requirements.txt" in copies
    env_lines = " ".join(rest for kw, rest in dockerfile_instructions() if kw == "ENV")
    assert "PYTHONPATH=/opt/airflow" in env_lines and "PROJECT_ROOT=/opt/airflow" in env_lines

    patterns = [
        line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    for d in PROJECT_DIRS:
        assert not _ignored(f"{d}/x.py", patterns), f".dockerignore hides {d}/"
    assert not _ignored("requirements.txt", patterns)
    for local_state in (".venv/bin/python", ".local/pg/data", ".git/HEAD", "pipelines/__pycache__/x.pyc"):
        assert _ignored(local_state, patterns), f"{local_state} would be sent to the Docker build"
