"""deploy/kubernetes: valid against the Kubernetes API schemas, clean under a security linter, and keeping the
promises docs/operations.md makes (two replicas on different nodes, non-root, read-only root, probes on /healthz
and /readyz, selectors that match, only documented settings)."""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import all_versions

from corpusbot.bot.serving.workers import STOP_TIMEOUT_SECONDS
from tests.deploy.manifests import (
    KUBERNETES,
    KUSTOMIZATION,
    NEW_SETTINGS,
    SECRET_TEMPLATE,
    Doc,
    Manifest,
    container_env_names,
    documented_settings,
    load_manifests,
    manifest_files,
    named,
    one,
    pod_labels,
    pod_spec,
    selects,
)

# The oldest Kubernetes the manifests are for (CronJob timeZone, topology spread matchLabelKeys and node
# policies, PDB unhealthyPodEvictionPolicy are all on by default from here); every newer schema
# kubernetes-validate ships is checked too.
OLDEST_KUBERNETES = (1, 29)
HTTP_PORT = 3000
WAITRESS_DRAIN_SECONDS = 5  # waitress waits this long for requests being answered (docs/slack.md)

# Checks of checkov that these manifests fail on purpose. Keep this short; each needs its reason.
CHECKOV_SKIPS = {
    "CKV_K8S_43": (
        "Image digest: known only once an image is pushed. Pin it per deployment in kustomization.yaml's images: "
        "(digest: sha256:...); the manifests carry a placeholder tag."
    ),
    "CKV_K8S_35": (
        "Secrets as files: corpusbot reads SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET and CORPUSBOT_STATE_URL from the "
        "environment only (bot/config.py); it masks them in everything it logs."
    ),
}
CHECKOV_ENV = "CORPUSBOT_CHECKOV"  # path of a checkov executable (CI installs it into a venv of its own)


@pytest.fixture(scope="module")
def manifests() -> list[Manifest]:
    return load_manifests()


@pytest.fixture(scope="module")
def deployment(manifests: list[Manifest]) -> Doc:
    return one("Deployment", manifests)


@pytest.fixture(scope="module")
def cronjob(manifests: list[Manifest]) -> Doc:
    return one("CronJob", manifests)


def _containers(workload: Doc) -> list[Doc]:
    spec = pod_spec(workload)
    return list(spec.get("initContainers", [])) + list(spec["containers"])


def _bot(deployment: Doc) -> Doc:
    [container] = pod_spec(deployment)["containers"]
    return container


def _port_number(container: Doc, port: int | str) -> int:
    if isinstance(port, int):
        return port
    numbers = [p["containerPort"] for p in container.get("ports", []) if p.get("name") == port]
    assert numbers, f"no container port named {port!r}"
    return int(numbers[0])


# ------------------------------------------------------------------------------------------------ the set


def test_kustomization_lists_every_manifest_but_the_secret_template(manifests: list[Manifest]) -> None:
    kustomization = yaml.safe_load(KUSTOMIZATION.read_text(encoding="utf-8"))
    listed = set(kustomization["resources"])
    files = {p.name for p in manifest_files()}
    assert SECRET_TEMPLATE.name in files
    # Applying the template would overwrite the real Secret with placeholders on every `kubectl apply -k`.
    assert SECRET_TEMPLATE.name not in listed
    assert listed == files - {SECRET_TEMPLATE.name}, f"unlisted: {files - listed - {SECRET_TEMPLATE.name}}"
    namespace = kustomization["namespace"]
    for manifest in manifests:
        if manifest.kind == "Namespace":
            assert manifest.name == namespace
        else:
            assert manifest.doc["metadata"].get("namespace") == namespace, f"{manifest}: namespace {namespace}"
    images = {image["name"] for image in kustomization.get("images", [])}
    for manifest in manifests:
        if manifest.kind in ("Deployment", "CronJob"):
            for container in _containers(manifest.doc):
                assert container["image"].rsplit(":", 1)[0] in images, f"{manifest}: image not set by kustomization"


def test_kustomize_renders_the_set(manifests: list[Manifest]) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed (the YAML checks above still ran)")
    result = subprocess.run([kubectl, "kustomize", str(KUBERNETES)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    rendered = {(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(result.stdout) if d}
    expected = {(m.kind, m.name) for m in manifests if m.file != SECRET_TEMPLATE}
    assert rendered == expected


# --------------------------------------------------------------------------------------------- the schemas


def _schema_versions() -> list[str]:
    return sorted(
        {v for v in all_versions() if tuple(map(int, v.split(".")[:2])) >= OLDEST_KUBERNETES},
        key=lambda v: tuple(map(int, v.split("."))),
    )


def test_every_manifest_is_valid_for_every_supported_kubernetes_version(manifests: list[Manifest]) -> None:
    versions = _schema_versions()
    assert len(versions) >= 2 and versions[0].startswith("1.29"), versions
    errors = []
    for manifest in manifests:
        for version in versions:
            try:
                # strict: a property the schema does not know (a typo such as readinessprobe) is an error too.
                kubernetes_validate.validate(manifest.doc, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                path = ".".join(str(p) for p in error.path)
                errors.append(f"{manifest} against {version}: {path}: {error.message}")
            except kubernetes_validate.SchemaNotFoundError as error:
                errors.append(f"{manifest}: {error.message}")
    assert not errors, "\n".join(errors)


def test_the_schema_check_rejects_a_misspelled_or_mistyped_field(deployment: Doc) -> None:
    version = _schema_versions()[-1]
    misspelled = copy.deepcopy(deployment)
    container = pod_spec(misspelled)["containers"][0]
    container["readinessprobe"] = container.pop("readinessProbe")
    mistyped = copy.deepcopy(deployment)
    mistyped["spec"]["replicas"] = "two"
    for broken in (misspelled, mistyped):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, version, strict=True)


# ---------------------------------------------------------------------------------------- security linter


def _checkov() -> list[str] | None:
    path = os.environ.get(CHECKOV_ENV)
    if path:
        assert Path(path).is_file(), f"{CHECKOV_ENV}={path} is not a file"
        return [path]
    if importlib.util.find_spec("checkov") is not None:
        return [sys.executable, "-m", "checkov.main"]
    return None


def _run_checkov(directory: Path, *extra: str) -> dict[str, Any]:
    command = _checkov()
    if command is None:
        pytest.skip(
            f"checkov is not installed here and {CHECKOV_ENV} is unset. It conflicts with the dev tools "
            f"(it pins packaging<24, pytest 9.2 needs >=24), so CI installs it into its own venv and sets "
            f"{CHECKOV_ENV}; locally: python3 -m venv /tmp/checkov && /tmp/checkov/bin/pip install checkov==3.3.30 "
            f"&& {CHECKOV_ENV}=/tmp/checkov/bin/checkov python -m pytest tests/deploy"
        )
    result = subprocess.run(
        [
            *command,
            "-d",
            str(directory),
            "--framework",
            "kubernetes",
            "--compact",
            "--skip-download",
            "-o",
            "json",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},  # offline: no guideline download
    )
    assert result.returncode in (0, 1), f"checkov failed to run ({result.returncode}): {result.stderr[-3000:]}"
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    assert [r.get("check_type") for r in reports] == ["kubernetes"], result.stdout[:2000]
    return reports[0]


def test_checkov_finds_nothing_but_the_documented_skips(manifests: list[Manifest]) -> None:
    report = _run_checkov(KUBERNETES, "--skip-check", ",".join(CHECKOV_SKIPS))
    summary = report["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] >= len(manifests), summary  # it read every manifest
    assert summary["passed"] > 100, summary
    failed = [
        f"{c['check_id']} {c['check_name']}: {c['resource']} ({c['file_path']})"
        for c in report["results"]["failed_checks"]
    ]
    assert not failed, "\n".join(failed)


def test_checkov_fails_an_insecure_deployment(deployment: Doc, tmp_path: Path) -> None:
    insecure = copy.deepcopy(deployment)
    for key in ("runAsNonRoot", "runAsUser", "runAsGroup"):
        del pod_spec(insecure)["securityContext"][key]
    security = pod_spec(insecure)["containers"][0]["securityContext"]
    security["allowPrivilegeEscalation"] = True
    security["readOnlyRootFilesystem"] = False
    (tmp_path / "deployment.yaml").write_text(yaml.safe_dump(insecure), encoding="utf-8")
    report = _run_checkov(tmp_path, "--check", "CKV_K8S_20,CKV_K8S_22,CKV_K8S_23")
    # privilege escalation, a writable root filesystem, root
    assert {c["check_id"] for c in report["results"]["failed_checks"]} == {"CKV_K8S_20", "CKV_K8S_22", "CKV_K8S_23"}


# --------------------------------------------------------------------------------------- the bot Deployment


def test_two_replicas_spread_over_nodes_and_rollouts_keep_both(deployment: Doc) -> None:
    assert deployment["spec"]["replicas"] >= 2
    rolling = deployment["spec"]["strategy"]["rollingUpdate"]
    assert rolling["maxUnavailable"] == 0 and rolling["maxSurge"] >= 1
    labels = pod_labels(deployment)
    spread = [
        c
        for c in pod_spec(deployment).get("topologySpreadConstraints", [])
        if c["topologyKey"] == "kubernetes.io/hostname"
    ]
    assert spread, "no topologySpreadConstraints over kubernetes.io/hostname"
    [constraint] = spread
    assert constraint["maxSkew"] == 1
    assert selects(constraint["labelSelector"]["matchLabels"], labels), "the spread must count the bot's own pods"
    assert selects(deployment["spec"]["selector"]["matchLabels"], labels)


@pytest.mark.parametrize("kind", ["Deployment", "CronJob"])
def test_pods_run_non_root_with_a_read_only_root_filesystem(manifests: list[Manifest], kind: str) -> None:
    workload = one(kind, manifests)
    spec = pod_spec(workload)
    pod = spec["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] > 0 and pod["seccompProfile"]["type"] == "RuntimeDefault"
    assert spec.get("automountServiceAccountToken") is False
    mounts_of_emptydirs = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
    config = named("ConfigMap", "corpusbot-settings", manifests)["data"]
    for container in _containers(workload):
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        # What the process writes must be a volume: /tmp (an emptyDir) and the database's folder.
        assert "/tmp" in mounts and mounts["/tmp"]["name"] in mounts_of_emptydirs
        assert posixpath.dirname(config["CORPUSBOT_DB"]) in mounts
        assert not mounts[posixpath.dirname(config["CORPUSBOT_DB"])].get("readOnly")


@pytest.mark.parametrize("kind", ["Deployment", "CronJob"])
def test_every_container_has_resource_requests_and_limits(manifests: list[Manifest], kind: str) -> None:
    for container in _containers(one(kind, manifests)):
        resources = container["resources"]
        for what in ("cpu", "memory"):
            assert what in resources["requests"] and what in resources["limits"], f"{container['name']}: {what}"


def test_probes_use_healthz_and_readyz_on_the_port_serve_listens_on(deployment: Doc) -> None:
    container = _bot(deployment)
    command = container.get("command", []) + container.get("args", [])
    assert command[:2] == ["corpusbot", "serve"], command
    assert command[command.index("--port") + 1] == str(HTTP_PORT)
    assert command[command.index("--host") + 1] == "0.0.0.0", "the kubelet probes the pod's IP, not loopback"
    paths = {}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = container[probe]["httpGet"]
        assert _port_number(container, get["port"]) == HTTP_PORT
        paths[probe] = get["path"]
    assert paths == {"startupProbe": "/healthz", "readinessProbe": "/readyz", "livenessProbe": "/healthz"}


def test_http_mode_only(manifests: list[Manifest], deployment: Doc) -> None:
    # SLACK_APP_TOKEN switches serve to Socket Mode: no /healthz or /readyz, one WebSocket per replica.
    assert "SLACK_APP_TOKEN" not in container_env_names(_bot(deployment), manifests)
    assert "SLACK_APP_TOKEN" not in yaml.safe_load(SECRET_TEMPLATE.read_text(encoding="utf-8"))["stringData"]


def test_shutdown_lets_answers_in_flight_finish(deployment: Doc) -> None:
    spec = pod_spec(deployment)
    command = _bot(deployment)["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep", command
    sleep = int(command[1])
    assert 5 <= sleep <= 15, "long enough for endpoints to drop the pod, short enough not to stall rollouts"
    # After the sleep, SIGTERM: waitress drains for up to 5 s; with --workers N the parent waits for its workers.
    assert spec["terminationGracePeriodSeconds"] >= sleep + WAITRESS_DRAIN_SECONDS + STOP_TIMEOUT_SECONDS


def test_pod_disruption_budget_keeps_one_bot_pod(manifests: list[Manifest], deployment: Doc) -> None:
    budget = one("PodDisruptionBudget", manifests)
    assert budget["spec"]["minAvailable"] == 1 < deployment["spec"]["replicas"]
    assert budget["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert selects(budget["spec"]["selector"]["matchLabels"], pod_labels(deployment))


def test_service_selects_the_bot_pods_and_not_the_reindex_job(
    manifests: list[Manifest], deployment: Doc, cronjob: Doc
) -> None:
    service = one("Service", manifests)
    selector = service["spec"]["selector"]
    assert selects(selector, pod_labels(deployment))
    assert not selects(selector, pod_labels(cronjob)), "the reindex job's pod must not receive Slack's requests"
    assert not selects(one("PodDisruptionBudget", manifests)["spec"]["selector"]["matchLabels"], pod_labels(cronjob))
    for port in service["spec"]["ports"]:
        assert _port_number(_bot(deployment), port["targetPort"]) == HTTP_PORT


def test_ingress_publishes_only_slack_events_to_the_service_over_tls(manifests: list[Manifest]) -> None:
    ingress = one("Ingress", manifests)
    service = one("Service", manifests)
    [rule] = ingress["spec"]["rules"]
    [path] = rule["http"]["paths"]
    assert path["path"] == "/slack/events" and path["pathType"] == "Exact", "keep /metrics off the internet"
    backend = path["backend"]["service"]
    assert backend["name"] == service["metadata"]["name"]
    ports = service["spec"]["ports"]
    assert any(
        backend["port"].get("name") == p.get("name") or backend["port"].get("number") == p["port"] for p in ports
    )
    [tls] = ingress["spec"]["tls"]
    assert tls["secretName"] and rule["host"] in tls["hosts"]


def test_network_policy_covers_the_bot_pods(manifests: list[Manifest], deployment: Doc) -> None:
    policy = one("NetworkPolicy", manifests)
    assert selects(policy["spec"]["podSelector"]["matchLabels"], pod_labels(deployment))
    allowed_in = [p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]]
    assert [_port_number(_bot(deployment), p) for p in allowed_in] == [HTTP_PORT]
    allowed_out = {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]}
    assert {53, 443, 5432} <= allowed_out, "DNS, the Slack API and PostgreSQL"


# -------------------------------------------------------------------------------------- settings and volumes


@pytest.mark.parametrize("kind", ["Deployment", "CronJob"])
def test_pods_use_only_documented_settings(manifests: list[Manifest], kind: str) -> None:
    allowed = documented_settings() | NEW_SETTINGS
    assert {"CORPUSBOT_DB", "SLACK_BOT_TOKEN", "CORPUSBOT_RATE_LIMIT"} <= documented_settings()
    # Service links would add CORPUSBOT_SERVICE_HOST, CORPUSBOT_PORT... (from the Service named corpusbot).
    assert pod_spec(one(kind, manifests)).get("enableServiceLinks") is False
    for container in _containers(one(kind, manifests)):
        unknown = container_env_names(container, manifests) - allowed
        assert not unknown, f"{container['name']} sets variables README does not document: {sorted(unknown)}"


def test_config_map_and_secret_template_hold_the_settings(manifests: list[Manifest], deployment: Doc) -> None:
    config = named("ConfigMap", "corpusbot-settings", manifests)["data"]
    assert {"CORPUSBOT_LOG_LEVEL", "CORPUSBOT_RATE_LIMIT", "CORPUSBOT_INDEX_FROM", "CORPUSBOT_DB"} <= set(config)
    assert all(isinstance(value, str) for value in config.values()), "ConfigMap values must be strings"
    secret = yaml.safe_load(SECRET_TEMPLATE.read_text(encoding="utf-8"))
    values = secret["stringData"]
    assert set(values) == {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "CORPUSBOT_STATE_URL"}
    # Placeholders that corpusbot refuses (a bot token must start with xoxb-): an unedited copy cannot run.
    assert all("CHANGE-ME" in value for value in values.values())
    assert not values["SLACK_BOT_TOKEN"].startswith("xoxb-")
    for entry in _bot(deployment)["env"]:
        reference = entry.get("valueFrom", {}).get("secretKeyRef")
        if reference:
            assert reference["name"] == secret["metadata"]["name"] and reference["key"] in values
    assert {e["name"] for e in _bot(deployment)["env"]} >= {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"}


@pytest.mark.parametrize("kind", ["Deployment", "CronJob"])
def test_variable_references_in_commands_resolve(manifests: list[Manifest], kind: str) -> None:
    # Kubernetes leaves an unknown $(VAR) as it is, and `sh -c` would then run VAR as a command.
    for container in _containers(one(kind, manifests)):
        words = " ".join(container.get("command", []) + container.get("args", []))
        missing = set(re.findall(r"(?<!\$)\$\(([A-Za-z_][A-Za-z0-9_]*)\)", words)) - container_env_names(
            container, manifests
        )
        assert not missing, f"{container['name']}: $({', '.join(sorted(missing))}) is not defined in its env"


def test_volumes_and_claims_exist(manifests: list[Manifest]) -> None:
    claims = {m.name for m in manifests if m.kind == "PersistentVolumeClaim"}
    for kind in ("Deployment", "CronJob"):
        spec = pod_spec(one(kind, manifests))
        volumes = {v["name"]: v for v in spec["volumes"]}
        for container in _containers(one(kind, manifests)):
            for mount in container["volumeMounts"]:
                assert mount["name"] in volumes, f"{kind}: volume {mount['name']} is not defined"
        for volume in volumes.values():
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims


def test_reindex_job_publishes_where_the_bot_follows(manifests: list[Manifest], deployment: Doc, cronjob: Doc) -> None:
    config = named("ConfigMap", "corpusbot-settings", manifests)["data"]
    [job] = pod_spec(cronjob)["containers"]
    script = job["command"][-1]
    assert job["command"][:2] == ["sh", "-c"]
    assert script == "corpusbot index /corpus && corpusbot check && corpusbot publish $(CORPUSBOT_PUBLISH_TO)"
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid", "one writer of the job's database at a time"

    def claim_at(workload: Doc, container: Doc, path: str) -> tuple[str, bool]:
        mount = next(m for m in container["volumeMounts"] if m["mountPath"] == path)
        volume = next(v for v in pod_spec(workload)["volumes"] if v["name"] == mount["name"])
        return volume["persistentVolumeClaim"]["claimName"], bool(mount.get("readOnly"))

    published, job_read_only = claim_at(cronjob, job, config["CORPUSBOT_PUBLISH_TO"])
    followed, bot_read_only = claim_at(deployment, _bot(deployment), config["CORPUSBOT_INDEX_FROM"])
    assert published == followed and not job_read_only and bot_read_only
    claim = named("PersistentVolumeClaim", published, manifests)
    assert "ReadWriteMany" in claim["spec"]["accessModes"], "mounted by pods on several nodes"
    assert any(m["mountPath"] == "/corpus" for m in job["volumeMounts"])
