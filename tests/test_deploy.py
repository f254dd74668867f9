"""The deployment files say what the image and the server need: the Kubernetes manifests validate against
the Kubernetes schemas (offline, `kubernetes-validate`), the compose file is valid for podman-compose,
and the numbers and paths that must agree across the Containerfile, the manifests and the server do.

Building and running the image itself is `tests/deploy/container.sh` (CI runs it with podman)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from cutout_mcp.config import ENVIRONMENT
from cutout_mcp.config.environment import FILE_VARS

ROOT = Path(__file__).resolve().parent.parent
KUBERNETES = ROOT / "deploy" / "kubernetes"
MANIFESTS = [*sorted(KUBERNETES.glob("*.yaml")), KUBERNETES / "secret.yaml.example"]
COMPOSE = ROOT / "deploy" / "compose.yaml"
COMPOSE_VARIABLES = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE.read_text()))
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
"""The oldest Kubernetes still common in managed clusters, and the newest the package knows."""


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


def containerfile() -> dict[str, str]:
    """The final stage's ENV values and its USER, from the Containerfile."""
    text = (ROOT / "Containerfile").read_text().replace("\\\n", " ")
    final = text.split("\nFROM ")[-1]
    found = dict(re.findall(r"\b([A-Z_]+)=(\S+)", "".join(re.findall(r"^ENV (.+)$", final, re.MULTILINE))))
    found["USER"] = re.findall(r"^USER (\S+)$", final, re.MULTILINE)[-1]
    return found


def deployment() -> dict[str, Any]:
    return load(KUBERNETES / "deployment.yaml")


def pod_spec() -> dict[str, Any]:
    spec: dict[str, Any] = deployment()["spec"]["template"]["spec"]
    return spec


def container() -> dict[str, Any]:
    (only,) = pod_spec()["containers"]
    found: dict[str, Any] = only
    return found


def config_map() -> dict[str, str]:
    data: dict[str, str] = load(KUBERNETES / "configmap.yaml")["data"]
    return data


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda path: path.name)
def test_each_manifest_validates_against_the_kubernetes_schemas(manifest: Path, version: str) -> None:
    kubernetes_validate.validate(load(manifest), version, strict=True)


def test_the_validator_refuses_a_misspelled_field() -> None:
    broken = deployment()
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"httpGet": {"path": "/readyz"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, kubernetes_validate.latest_version(), strict=True)


def test_the_probes_ask_the_health_endpoints_on_the_mcp_port() -> None:
    probes = container()
    assert probes["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert probes["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert probes["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert {"name": "http", "containerPort": 8000} in probes["ports"]


def test_the_grace_period_outlasts_the_drain() -> None:
    """A pod killed before its drain ends would cut the calls in flight, and their job ids with them."""
    pre_stop = int(container()["lifecycle"]["preStop"]["exec"]["command"][-1])
    drain = float(config_map()["CUTOUT_SHUTDOWN_GRACE"])
    assert pod_spec()["terminationGracePeriodSeconds"] > pre_stop + drain + 1


def test_the_pod_runs_as_the_images_user_on_a_read_only_root() -> None:
    image = containerfile()
    user, group = image["USER"].split(":")
    security = pod_spec()["securityContext"]
    assert security["runAsNonRoot"] is True
    assert (str(security["runAsUser"]), str(security["runAsGroup"])) == (user, group)
    assert int(user) != 0
    assert container()["securityContext"]["readOnlyRootFilesystem"] is True
    assert container()["securityContext"]["allowPrivilegeEscalation"] is False
    assert container()["resources"]["limits"]["memory"]


def test_the_writable_folders_are_volumes_at_the_images_paths() -> None:
    """With a read-only root, the state folder the image names and /tmp (the sandbox's) must be mounted."""
    mounts = {mount["mountPath"]: mount["name"] for mount in container()["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod_spec()["volumes"]}
    for path in (containerfile()["CUTOUT_STATE_DIR"], "/tmp"):
        assert "emptyDir" in volumes[mounts[path]], f"{path} is not a writable volume"


def test_the_secrets_are_files_from_the_secret_where_the_config_map_points() -> None:
    mounts = {mount["mountPath"]: mount for mount in container()["volumeMounts"]}
    secret_volume = next(v for v in pod_spec()["volumes"] if "secret" in v)
    mount = next(m for m in mounts.values() if m["name"] == secret_volume["name"])
    assert mount["readOnly"] is True
    files = {item["path"]: item["key"] for item in secret_volume["secret"]["items"]}
    secret_keys = set(load(KUBERNETES / "secret.yaml.example")["stringData"])
    named = {var: path for var, path in config_map().items() if var in FILE_VARS.values()}
    assert set(named) == {"CUTOUT_API_KEY_FILE", "CUTOUT_MCP_TOKEN_FILE", "CUTOUT_DATABASE_URL_FILE"}
    for path in named.values():
        folder, name = path.rsplit("/", 1)
        assert folder == mount["mountPath"]
        assert files[name] in secret_keys


def test_the_config_map_holds_settings_and_no_secret() -> None:
    data = config_map()
    secrets = {"CUTOUT_API_KEY", "CUTOUT_MCP_TOKEN", "CUTOUT_DATABASE_URL", "AWS_SECRET_ACCESS_KEY"}
    assert not secrets & set(data)
    readable = set(ENVIRONMENT) | set(FILE_VARS.values())
    assert set(data) <= readable, f"not settings of the server: {sorted(set(data) - readable)}"


def test_the_service_and_budget_select_the_deployments_pods() -> None:
    labels = deployment()["spec"]["template"]["metadata"]["labels"]
    service = load(KUBERNETES / "service.yaml")["spec"]
    budget = load(KUBERNETES / "poddisruptionbudget.yaml")["spec"]
    assert service["selector"].items() <= labels.items()
    assert budget["selector"]["matchLabels"].items() <= labels.items()
    assert budget["minAvailable"] < deployment()["spec"]["replicas"], "a node drain could never evict a pod"
    assert service["ports"][0]["targetPort"] == "http"


def test_the_compose_file_balances_two_stateless_replicas() -> None:
    compose = load(COMPOSE)
    services = compose["services"]
    replicas = [name for name, service in services.items() if "--stateless" in service.get("command", [])]
    assert len(replicas) == 2
    front = (ROOT / "deploy" / "nginx.conf.template").read_text()
    upstream = front.split("upstream cutout_mcp {", 1)[1].split("}", 1)[0]
    assert sorted(re.findall(r"^\s*server (\S+):8000", upstream, re.MULTILINE)) == sorted(replicas)
    assert not re.search(r"^\s*ip_hash;", upstream, re.MULTILINE), "stateless replicas need no stickiness"
    assert "proxy_buffering off;" in front
    for name in replicas:
        grace = float(services[name]["environment"]["CUTOUT_SHUTDOWN_GRACE"])
        assert int(services[name]["stop_grace_period"].rstrip("s")) > grace
        assert services[name]["stop_signal"] == "SIGTERM"


def test_each_compose_service_gets_only_its_own_secrets() -> None:
    services = load(COMPOSE)["services"]
    for name in ("postgres", "s3", "front"):
        environment = services[name].get("environment", {})
        assert not {"CUTOUT_API_KEY", "CUTOUT_MCP_TOKEN"} & set(environment), name
    assert "S3_SECRET_ACCESS_KEY" not in services["postgres"]["environment"]
    assert "POSTGRES_PASSWORD" not in services["s3"]["environment"]


def podman_compose(*args: str) -> subprocess.CompletedProcess[str]:
    """podman-compose on the compose file, with none of the compose file's variables from this environment."""
    environment = {name: value for name, value in os.environ.items() if name not in COMPOSE_VARIABLES}
    return subprocess.run(
        [sys.executable, "-m", "podman_compose", "-f", str(COMPOSE), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=environment,
    )


needs_podman = pytest.mark.skipif(
    shutil.which("podman") is None, reason="podman-compose needs podman (Debian's `podman` package)"
)


@needs_podman
def test_podman_compose_accepts_the_compose_file_with_the_example_secrets() -> None:
    result = podman_compose("--env-file", str(ROOT / "deploy" / "secrets.env.example"), "config")
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    url = resolved["services"]["cutout-mcp-1"]["environment"]["CUTOUT_DATABASE_URL"]
    assert url == "postgresql://cutout:replace-with-a-database-password@postgres:5432/cutout"


@needs_podman
def test_podman_compose_refuses_to_start_without_the_secrets(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = podman_compose("--env-file", str(empty), "config")
    assert result.returncode != 0
    assert "CUTOUT_API_KEY" in result.stderr
