"""deploy/docker-compose.replicas.yml: the several-hosts topology on one host (2 replicas, PostgreSQL, snapshots)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from tests.deploy.manifests import NEW_SETTINGS, Doc, documented_settings, load_compose

REPLICAS = "docker-compose.replicas.yml"


@pytest.fixture(scope="module")
def compose() -> Doc:
    return load_compose(REPLICAS)


def _replicas(compose: Doc) -> dict[str, Doc]:
    return {name: s for name, s in compose["services"].items() if s.get("command", [])[:2] == ["corpusbot", "serve"]}


def _mounts(service: Doc) -> dict[str, str]:
    """{path in the container: volume name or host path}, read-only marks dropped."""
    mounts = {}
    for entry in service.get("volumes", []):
        source, target = entry.split(":")[:2]
        mounts[target] = source
    return mounts


def _interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?error} with ``variables``; $$ is a literal $."""

    def one(match: re.Match[str]) -> str:
        name, operator, rest = match.group(1), match.group(2) or "", match.group(3) or ""
        if name in variables:
            return variables[name]
        assert operator != ":?", f"{name} must be set: {rest}"
        return rest

    return re.sub(r"\$\{(\w+)(:[-?])?([^}]*)\}", one, value).replace("$$", "$")


def test_two_replicas_in_http_mode_each_with_its_own_index(compose: Doc) -> None:
    replicas = _replicas(compose)
    assert len(replicas) >= 2
    data = [_mounts(service)["/data"] for service in replicas.values()]
    assert len(set(data)) == len(data), "each replica needs its own /data: the follower writes into its database"
    assert all(name in compose["volumes"] for name in data)
    ports = [port for service in replicas.values() for port in service["ports"]]
    assert len(set(ports)) == len(ports) and all(port.startswith("127.0.0.1:") for port in ports)
    for service in replicas.values():
        command = service["command"]
        assert command[command.index("--host") + 1] == "0.0.0.0"
        # .env may hold a Socket Mode token for the single-host setup; the replicas must serve HTTP.
        assert service["environment"]["SLACK_APP_TOKEN"] == ""
        assert service["read_only"] is True and "/tmp" in service["tmpfs"]
        assert "/readyz" in " ".join(service["healthcheck"]["test"])


def test_postgres_holds_the_shared_state_and_is_healthy_before_the_replicas_start(compose: Doc) -> None:
    postgres_name, postgres = next((n, s) for n, s in compose["services"].items() if "postgres" in s["image"])
    assert postgres["image"] == "postgres:16"
    assert _mounts(postgres)["/var/lib/postgresql/data"] in compose["volumes"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert "ports" not in postgres, "PostgreSQL stays on the compose network"
    environment = postgres["environment"]
    for service in _replicas(compose).values():
        assert service["depends_on"][postgres_name]["condition"] == "service_healthy"
        url = urlsplit(_interpolate(service["environment"]["CORPUSBOT_STATE_URL"], {"POSTGRES_PASSWORD": "pw42"}))
        assert url.scheme.startswith("postgres") and url.hostname == postgres_name and url.port == 5432
        assert url.username == environment["POSTGRES_USER"] and url.path == f"/{environment['POSTGRES_DB']}"
        assert url.password == _interpolate(environment["POSTGRES_PASSWORD"], {"POSTGRES_PASSWORD": "pw42"})
    with pytest.raises(AssertionError, match="must be set"):  # no default password
        _interpolate(environment["POSTGRES_PASSWORD"], {})


def test_the_indexer_publishes_where_the_replicas_follow(compose: Doc) -> None:
    indexer = compose["services"]["indexer"]
    assert indexer["profiles"] == ["index"], "run on demand, not by `up`"
    script = indexer["command"][-1]
    assert script.startswith("corpusbot index /corpus && corpusbot check && corpusbot publish ")
    destination = indexer["environment"]["CORPUSBOT_PUBLISH_TO"]
    assert '"$$CORPUSBOT_PUBLISH_TO"' in script, "$$ so that compose leaves the variable to the shell"
    snapshots = _mounts(indexer)[destination]
    for name, service in _replicas(compose).items():
        source = service["environment"]["CORPUSBOT_INDEX_FROM"]
        assert _mounts(service)[source] == snapshots, f"{name} does not follow the indexer's snapshots"
        assert f"{snapshots}:{source}:ro" in service["volumes"]
    assert _mounts(indexer)["/data"] not in {_mounts(s)["/data"] for s in _replicas(compose).values()}


def test_only_documented_settings(compose: Doc) -> None:
    allowed = documented_settings() | NEW_SETTINGS
    for name, service in compose["services"].items():
        if "postgres" in service["image"]:
            continue
        unknown = set(service.get("environment", {})) - allowed
        assert not unknown, f"{name}: {sorted(unknown)} not documented in README"


def test_the_single_host_compose_file_is_still_one_service() -> None:
    single = load_compose("docker-compose.yml")
    assert list(single["services"]) == ["corpusbot"]
