"""The Kubernetes manifests of deploy/kubernetes/ and the compose files, loaded for the deploy tests."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support import ROOT

KUBERNETES = ROOT / "deploy" / "kubernetes"
KUSTOMIZATION = KUBERNETES / "kustomization.yaml"
SECRET_TEMPLATE = KUBERNETES / "secret.example.yaml"

# Settings that other work is adding now (shared state in PostgreSQL, index snapshots); their authors document
# them in README and docs/slack.md. CORPUSBOT_PUBLISH_TO is the reindex job's destination for `corpusbot publish`.
NEW_SETTINGS = frozenset({"CORPUSBOT_STATE_URL", "CORPUSBOT_INDEX_FROM", "CORPUSBOT_PUBLISH_TO"})

Doc = dict[str, Any]


@dataclass(frozen=True)
class Manifest:
    file: Path
    doc: Doc

    @property
    def kind(self) -> str:
        return str(self.doc["kind"])

    @property
    def name(self) -> str:
        return str(self.doc["metadata"]["name"])

    def __str__(self) -> str:
        return f"{self.file.name}: {self.kind}/{self.name}"


def manifest_files() -> list[Path]:
    return sorted(p for p in KUBERNETES.glob("*.y*ml") if p != KUSTOMIZATION)


def load_manifests() -> list[Manifest]:
    found = []
    for file in manifest_files():
        for doc in yaml.safe_load_all(file.read_text(encoding="utf-8")):
            if doc:
                found.append(Manifest(file, doc))
    return found


def one(kind: str, manifests: list[Manifest] | None = None) -> Doc:
    matching = [m.doc for m in (manifests or load_manifests()) if m.kind == kind]
    assert len(matching) == 1, f"expected one {kind}, found {len(matching)}"
    return matching[0]


def named(kind: str, name: str, manifests: list[Manifest] | None = None) -> Doc:
    matching = [m.doc for m in (manifests or load_manifests()) if m.kind == kind and m.name == name]
    assert matching, f"no {kind} named {name!r} in deploy/kubernetes"
    return matching[0]


def pod_spec(workload: Doc) -> Doc:
    """The pod spec of a Deployment, Job or CronJob."""
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]


def pod_labels(workload: Doc) -> dict[str, str]:
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return dict(spec["template"]["metadata"].get("labels", {}))


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


def container_env_names(container: Doc, manifests: list[Manifest]) -> set[str]:
    """Every variable a container gets: env entries, and the keys of the ConfigMaps and Secrets in envFrom."""
    names = {entry["name"] for entry in container.get("env", [])}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            names |= set(named("ConfigMap", source["configMapRef"]["name"], manifests).get("data", {}))
        if "secretRef" in source:
            secret = named("Secret", source["secretRef"]["name"], manifests)
            names |= set(secret.get("stringData", {})) | set(secret.get("data", {}))
    return names


def documented_settings() -> set[str]:
    """The variables in README's Configuration table."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", section, re.M))


def load_compose(name: str) -> Doc:
    return yaml.safe_load((ROOT / "deploy" / name).read_text(encoding="utf-8"))
