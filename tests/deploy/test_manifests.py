"""The deployment files, checked offline.

* Every document under deploy/k8s against the Kubernetes API's JSON schemas (bundled by
  kubernetes-validate, strict: unknown fields fail), and what matters for running chatops:
  secrets by reference only, probes, one beat, the HPAs' targets, selectors, the kustomization.
* deploy/compose.yml's Prometheus and Grafana, and what Prometheus scrapes.
* The Grafana dashboard: every metric its PromQL names is one chatops.metrics defines, with
  the labels it groups by.

The validator, the secret scan, the selector check and the dashboard check also run on known-bad
input, to show they can fail.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from urllib.parse import urlparse

import kubernetes_validate
import kubernetes_validate.utils
import pytest
import yaml
from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase

import chatops.metrics

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
# Schemas of this Kubernetes release (kubernetes-validate bundles 1.25 and later).
K8S_VERSION = "1.30"
NAMESPACE = "chatops"
SECRET_NAME = "chatops-secrets"
SECRET_KEYS = frozenset({"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "OPENAI_API_KEY", "ENTRA_CLIENT_SECRET",
                         "CHATOPS_METRICS_TOKEN", "DATABASE_URL", "CHATOPS_ADMIN_SECRET"})
CLUSTER_SCOPED = {"Namespace"}


def _documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


MANIFEST_FILES = sorted(p for p in K8S.iterdir() if p.is_file() and p.name != "kustomization.yaml")
RESOURCES = [(path.name, doc) for path in MANIFEST_FILES for doc in _documents(path)]


def _by_kind(kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for _, doc in RESOURCES if doc["kind"] == kind}


def _deployment(name: str) -> dict:
    deployments = _by_kind("Deployment")
    assert name in deployments, f"no Deployment {name} in deploy/k8s"
    return deployments[name]


def _container(name: str) -> dict:
    containers = _deployment(name)["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, f"{name}: one container expected"
    return containers[0]


def _port(container: dict, port) -> int:
    """A probe's or Service's port: a number, or the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    named = {p["name"]: p["containerPort"] for p in container.get("ports", []) if "name" in p}
    assert port in named, f"port {port!r} is not a named port of {container['name']}"
    return named[port]


def _http_probe(container: dict, kind: str) -> tuple[str, int]:
    probe = container.get(kind)
    assert probe and "httpGet" in probe, f"{container['name']}: no HTTP {kind}"
    return probe["httpGet"]["path"], _port(container, probe["httpGet"]["port"])


def _mebibytes(quantity: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "K": 1e3 / 2**20, "M": 1e6 / 2**20, "G": 1e9 / 2**20}
    match = re.fullmatch(r"([0-9.]+)([KMG]i?)?", str(quantity))
    assert match, f"unexpected memory quantity {quantity!r}"
    return float(match.group(1)) * units.get(match.group(2), 1 / 2**20)


def _subset(small: dict, big: dict) -> bool:
    return bool(small) and all(big.get(k) == v for k, v in small.items())


# -- the schemas ----------------------------------------------------------------------------------


def test_the_schemas_of_that_release_are_bundled():
    bundled = {".".join(v.split(".")[:2]) for v in kubernetes_validate.utils.all_versions()}
    assert K8S_VERSION in bundled, f"kubernetes-validate {kubernetes_validate.__version__} bundles {sorted(bundled)}"


def test_there_are_manifests():
    kinds = {doc["kind"] for _, doc in RESOURCES}
    assert {"Namespace", "ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler",
            "PodDisruptionBudget"} <= kinds
    assert all(p.suffix == ".yaml" for p in K8S.iterdir()), "deploy/k8s holds .yaml files only"


@pytest.mark.parametrize("doc", [doc for _, doc in RESOURCES],
                         ids=[f"{name}:{doc['kind']}/{doc['metadata']['name']}" for name, doc in RESOURCES])
def test_manifest_matches_the_kubernetes_schema(doc):
    # A kind or apiVersion without a schema raises SchemaNotFoundError: an error, not a pass.
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(str(p) for p in exc.path)
        pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {where}: {exc.message}")


def _bad_manifests():
    web = _deployment("chatops-web")
    unknown_field = copy.deepcopy(web)
    unknown_field["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}   # a typo
    wrong_type = copy.deepcopy(web)
    wrong_type["spec"]["revisionHistoryLimit"] = "five"
    no_name = copy.deepcopy(web)
    del no_name["spec"]["template"]["spec"]["containers"][0]["name"]
    return [unknown_field, wrong_type, no_name]


@pytest.mark.parametrize("bad", _bad_manifests(), ids=["unknown-field", "wrong-type", "missing-required"])
def test_the_validator_rejects_a_bad_manifest(bad):
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


def test_the_validator_knows_no_made_up_kind():
    doc = {"apiVersion": "v1", "kind": "Deploymint", "metadata": {"name": "x"}}
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


# -- the kustomization and the namespace --------------------------------------------------------


def test_the_kustomization_lists_every_manifest():
    (kustomization,) = _documents(K8S / "kustomization.yaml")
    assert kustomization["kind"] == "Kustomization"
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert kustomization.get("namespace") == NAMESPACE
    listed = kustomization["resources"]
    assert len(listed) == len(set(listed)), "a file is listed twice"
    assert set(listed) == {p.name for p in MANIFEST_FILES}


def test_everything_is_in_the_chatops_namespace():
    assert NAMESPACE in _by_kind("Namespace")
    for name, doc in RESOURCES:
        if doc["kind"] not in CLUSTER_SCOPED:
            assert doc["metadata"].get("namespace") == NAMESPACE, f"{name}: {doc['kind']}/{doc['metadata']['name']}"


# -- secrets --------------------------------------------------------------------------------------


def secret_literals(node, where: str = "") -> list[str]:
    """Places where one of SECRET_KEYS is given a value: a mapping key (ConfigMap data, compose
    environment), a Kubernetes env entry with `value`, a compose `NAME=value` list item."""
    found = []
    if isinstance(node, dict):
        if node.get("name") in SECRET_KEYS and "value" in node:
            found.append(f"{where}: env {node['name']} has a literal value")
        for key, value in node.items():
            if key in SECRET_KEYS and not isinstance(value, (dict, list)) and value not in (None, ""):
                found.append(f"{where}.{key}")
            found += secret_literals(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            if isinstance(item, str) and "=" in item:
                key, value = item.split("=", 1)
                if key.strip() in SECRET_KEYS and value.strip():
                    found.append(f"{where}[{i}]: {key}")
            found += secret_literals(item, f"{where}[{i}]")
    return found


def _deploy_documents() -> list[tuple[str, object]]:
    docs = []
    for path in sorted(DEPLOY.rglob("*")):
        rel = str(path.relative_to(DEPLOY))
        if path.suffix in (".yaml", ".yml"):
            docs += [(rel, doc) for doc in _documents(path)]
        elif path.suffix == ".json":
            docs.append((rel, json.loads(path.read_text())))
    return docs


def test_no_secret_value_anywhere_under_deploy():
    documents = _deploy_documents()
    assert any(rel == "compose.yml" for rel, _ in documents)
    found = [f"{rel}{hit}" for rel, doc in documents for hit in secret_literals(doc)]
    assert not found, found
    assert not _by_kind("Secret"), "the Secret is created by the operator, never kept in the repo"
    # compose's env file template: placeholders only (or commented out).
    for line in (DEPLOY / ".env.example").read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() in SECRET_KEYS:
            assert "replace-me" in value, f".env.example: {key} is not a placeholder"


def test_the_secret_scan_finds_literal_secrets():
    bad = [{"kind": "ConfigMap", "data": {"OPENAI_API_KEY": "sk-123"}},
           {"env": [{"name": "SLACK_BOT_TOKEN", "value": "xoxb-1"}]},
           {"services": {"web": {"environment": ["SLACK_SIGNING_SECRET=abc"]}}},
           {"services": {"web": {"environment": {"DATABASE_URL": "postgresql://u:p@db/x"}}}}]
    assert all(secret_literals(doc) for doc in bad)
    ok = {"env": [{"name": "SLACK_BOT_TOKEN", "valueFrom": {"secretKeyRef": {"name": SECRET_NAME,
                                                                             "key": "SLACK_BOT_TOKEN"}}}]}
    assert secret_literals(ok) == []


@pytest.mark.parametrize("name", ["chatops-web", "chatops-worker", "chatops-beat"])
def test_containers_take_secrets_from_the_secret_only(name):
    config_maps = _by_kind("ConfigMap")
    pod = _deployment(name)["spec"]["template"]["spec"]
    for container in pod["containers"] + pod.get("initContainers", []):
        refs = container.get("envFrom", [])
        secret_refs = [r["secretRef"]["name"] for r in refs if "secretRef" in r]
        config_refs = [r["configMapRef"]["name"] for r in refs if "configMapRef" in r]
        assert secret_refs == [SECRET_NAME], f"{name}: envFrom secretRef {SECRET_NAME} expected"
        assert config_refs and all(c in config_maps for c in config_refs)
        # The Secret comes last, so a key in both (REDIS_URL with a password) takes its value.
        assert "secretRef" in refs[-1]
        for env in container.get("env", []):
            source = env.get("valueFrom", {})
            if env["name"] in SECRET_KEYS:
                assert source.get("secretKeyRef", {}).get("name") == SECRET_NAME, f"{name}: {env['name']}"
            if "secretKeyRef" in source:
                assert source["secretKeyRef"]["name"] == SECRET_NAME, f"{name}: {env['name']}"
    for volume in pod.get("volumes", []):
        if "configMap" in volume:
            assert volume["configMap"]["name"] in config_maps
        assert "secret" not in volume or volume["secret"]["secretName"] == SECRET_NAME


# -- the three roles ------------------------------------------------------------------------------


def test_web_serves_slack_with_probes():
    web = _container("chatops-web")
    assert web["command"] == ["chatops", "serve", "--host", "0.0.0.0", "--port", "3000", "--workers", "2"]
    assert _http_probe(web, "readinessProbe") == ("/readyz", 3000)
    assert _http_probe(web, "livenessProbe") == ("/livez", 3000)
    assert "startupProbe" in web


def test_worker_has_its_health_port_probed_and_time_to_finish():
    deployment = _deployment("chatops-worker")
    worker = _container("chatops-worker")
    assert worker["command"] == ["chatops", "worker", "--concurrency", "4"]
    env = {e["name"]: e.get("value") for e in worker.get("env", [])}
    assert env.get("CHATOPS_WORKER_HEALTH_PORT") == "8081"
    assert _http_probe(worker, "livenessProbe") == ("/healthz", 8081)
    assert "startupProbe" in worker
    # Running answers finish on SIGTERM: the task hard limit is 150 s.
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 180
    assert _mebibytes(worker["resources"]["requests"]["memory"]) >= 1536


def test_beat_is_exactly_one_recreated_pod():
    beat = _deployment("chatops-beat")
    assert _container("chatops-beat")["command"] == ["chatops", "beat"]
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"]["type"] == "Recreate"
    targets = {h["spec"]["scaleTargetRef"]["name"] for h in _by_kind("HorizontalPodAutoscaler").values()}
    assert "chatops-beat" not in targets


def test_hpas_scale_the_web_and_worker_deployments_on_cpu():
    hpas = _by_kind("HorizontalPodAutoscaler")
    deployments = _by_kind("Deployment")
    bounds = {}
    for hpa in hpas.values():
        assert hpa["apiVersion"] == "autoscaling/v2"
        ref = hpa["spec"]["scaleTargetRef"]
        assert (ref["apiVersion"], ref["kind"]) == ("apps/v1", "Deployment")
        assert ref["name"] in deployments, f"HPA {hpa['metadata']['name']} targets a missing Deployment"
        assert "replicas" not in deployments[ref["name"]]["spec"], "the HPA owns the replica count"
        metrics = hpa["spec"]["metrics"]
        assert any(m["type"] == "Resource" and m["resource"]["name"] == "cpu"
                   and m["resource"]["target"]["type"] == "Utilization" for m in metrics)
        bounds[ref["name"]] = (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"])
    assert bounds == {"chatops-web": (2, 10), "chatops-worker": (2, 20)}


def test_disruption_budgets_cover_web_and_worker():
    deployments = _by_kind("Deployment")
    covered = set()
    for pdb in _by_kind("PodDisruptionBudget").values():
        selector = pdb["spec"]["selector"]["matchLabels"]
        matches = [n for n, d in deployments.items() if _subset(selector, d["spec"]["template"]["metadata"]["labels"])]
        assert len(matches) == 1, f"PDB {pdb['metadata']['name']} selects {matches}"
        covered |= set(matches)
    assert covered == {"chatops-web", "chatops-worker"}


def test_deployment_selectors_match_their_pods():
    for name, deployment in _by_kind("Deployment").items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert _subset(deployment["spec"]["selector"]["matchLabels"], labels), name


def test_every_service_selects_a_deployment():
    deployments = _by_kind("Deployment")
    for name, service in _by_kind("Service").items():
        spec = service["spec"]
        if spec.get("type") == "ExternalName":
            assert spec["externalName"] and "selector" not in spec, name
            continue
        matches = [d for d in deployments.values()
                   if _subset(spec.get("selector", {}), d["spec"]["template"]["metadata"]["labels"])]
        assert len(matches) == 1, f"Service {name} selects {len(matches)} Deployments"
        container = matches[0]["spec"]["template"]["spec"]["containers"][0]
        for port in spec["ports"]:
            _port(container, port.get("targetPort", port["port"]))   # the pod has that port
    web = _by_kind("Service")["chatops-web"]["spec"]["ports"][0]
    assert web["port"] == 80 and _port(_container("chatops-web"), web["targetPort"]) == 3000


def test_the_service_check_notices_a_selector_that_matches_nothing():
    labels = _deployment("chatops-web")["spec"]["template"]["metadata"]["labels"]
    assert _subset({"app.kubernetes.io/component": "web"}, labels)
    assert not _subset({"app.kubernetes.io/component": "frontend"}, labels)
    assert not _subset({}, labels)


def test_external_services_carry_the_urls():
    env = _by_kind("ConfigMap")["chatops-env"]["data"]
    services = _by_kind("Service")
    for key in ("REDIS_URL", "QDRANT_URL"):
        host = urlparse(env[key]).hostname
        assert services[host]["spec"]["type"] == "ExternalName", key
    assert services["postgres"]["spec"]["type"] == "ExternalName"
    assert "DATABASE_URL" not in env     # it carries a password: in the Secret


def _dockerfile_uid() -> int:
    match = re.search(r"useradd\b.*?--uid\s+(\d+)", (DEPLOY / "Dockerfile").read_text(), re.S)
    assert match, "deploy/Dockerfile creates no user with --uid"
    return int(match.group(1))


@pytest.mark.parametrize("name", ["chatops-web", "chatops-worker", "chatops-beat"])
def test_pods_run_as_the_image_user_on_a_read_only_root(name):
    pod = _deployment(name)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == _dockerfile_uid() == 10001
    empty_dirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    for container in pod["containers"]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert mounts.get("/data") in empty_dirs and mounts.get("/tmp") in empty_dirs
        assert container["image"] == "chatops:latest"   # the placeholder; kustomization's images: sets it
        for part in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][part]), f"{name}: {part}"


@pytest.mark.parametrize("name, port", [("chatops-web", 3000), ("chatops-worker", 8081)])
def test_metrics_pods_carry_scrape_annotations(name, port):
    annotations = _deployment(name)["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(port)
    assert annotations["prometheus.io/path"] == "/metrics"


# -- compose: Prometheus and Grafana --------------------------------------------------------------


def _compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yml").read_text())


def _binds(service: dict) -> dict[str, str]:
    """A compose service's bind mounts: container path -> host path (relative to deploy/)."""
    binds = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            binds[target] = source
    return binds


def _prometheus_targets(config: dict) -> dict[str, dict]:
    """host:port -> its scrape config, from static and DNS service discovery."""
    targets = {}
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                targets[target] = job
        for dns in job.get("dns_sd_configs", []):
            for name in dns["names"]:
                targets[f"{name}:{dns['port']}"] = job
    return targets


def test_compose_runs_prometheus_and_grafana():
    services = _compose()["services"]
    assert services["prometheus"]["image"].startswith("prom/prometheus")
    assert services["grafana"]["image"].startswith("grafana/grafana")
    config_flag = next(a for a in services["prometheus"]["command"] if a.startswith("--config.file="))
    source = _binds(services["prometheus"])[config_flag.split("=", 1)[1]]
    assert (DEPLOY / source).resolve() == DEPLOY / "prometheus" / "prometheus.yml"
    grafana = _binds(services["grafana"])
    assert (DEPLOY / grafana["/etc/grafana/provisioning"]).resolve() == DEPLOY / "grafana" / "provisioning"
    for mounts in (_binds(services["prometheus"]), grafana):
        for source in mounts.values():
            assert (DEPLOY / source).exists(), source


def test_prometheus_scrapes_web_and_worker_with_the_token():
    compose = _compose()
    services = compose["services"]
    # The secret is the value web and worker check, and the file Prometheus reads it from.
    assert compose["secrets"]["metrics_token"] == {"environment": "CHATOPS_METRICS_TOKEN"}
    assert "metrics_token" in services["prometheus"]["secrets"]
    token_file = "/run/secrets/metrics_token"
    # The ports the compose services serve /metrics on.
    assert services["web"]["command"][services["web"]["command"].index("--port") + 1] == "3000"
    assert services["worker"]["environment"]["CHATOPS_WORKER_HEALTH_PORT"] == "8081"

    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = _prometheus_targets(config)
    for target in ("web:3000", "worker:8081"):
        assert target in targets, f"Prometheus does not scrape {target}"
        assert target.split(":")[0] in services
        job = targets[target]
        assert job.get("metrics_path", "/metrics") == "/metrics"
        assert job["authorization"].get("type", "Bearer") == "Bearer"
        assert job["authorization"]["credentials_file"] == token_file
        assert "credentials" not in job["authorization"], "the token belongs in the secret file"


def test_grafana_provisions_prometheus_and_the_dashboard():
    services = _compose()["services"]
    grafana_dir = DEPLOY / "grafana"
    (datasource,) = yaml.safe_load((grafana_dir / "provisioning/datasources/prometheus.yml").read_text())["datasources"]
    assert datasource["type"] == "prometheus"
    url = urlparse(datasource["url"])
    assert url.hostname in services and url.port == 9090
    (provider,) = yaml.safe_load((grafana_dir / "provisioning/dashboards/chatops.yml").read_text())["providers"]
    mounted = _binds(services["grafana"])[provider["options"]["path"]]
    assert (DEPLOY / mounted / "chatops.json").exists()
    variable = _datasource_variable(_dashboard())
    assert variable["current"]["value"] == datasource["uid"]


# -- the dashboard --------------------------------------------------------------------------------

ROWS = {
    "Traffic": {"chatops_slack_events_total", "chatops_slack_ack_duration_seconds_bucket", "chatops_answers_total"},
    "Latency by stage": {"chatops_answer_stage_duration_seconds_bucket"},
    "Quality": {"chatops_answers_total", "chatops_feedback_total", "chatops_answer_top_similarity_bucket",
                "chatops_answer_citations_total", "chatops_answer_cache_lookups_total"},
    "Cost": {"chatops_llm_tokens_total", "chatops_llm_cost_total", "chatops_budget_rejections_total"},
    "Workers": {"chatops_queue_depth", "chatops_tasks_total", "chatops_task_duration_seconds_bucket",
                "chatops_slack_api_calls_total", "chatops_slack_rate_limited_total",
                "chatops_source_acl_age_seconds"},
    "Live tools": {"chatops_tool_calls_total", "chatops_tool_call_duration_seconds_bucket", "chatops_tool_rounds_bucket",
                   "chatops_tool_definition_changes_total"},
}
SUFFIXES = {"counter": ("_total", "_created"), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count", "_created"),
            "summary": ("", "_sum", "_count", "_created"), "info": ("_info",), "stateset": ("",),
            "gaugehistogram": ("_bucket", "_gsum", "_gcount"), "unknown": ("",)}
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)")
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or",
             "unless", "inf", "nan", "atan2"}


def _dashboard() -> dict:
    return json.loads((DEPLOY / "grafana" / "dashboards" / "chatops.json").read_text())


def _datasource_variable(dashboard: dict) -> dict:
    (variable,) = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert variable["query"] == "prometheus"
    return variable


def registered_series() -> set[str]:
    """Every series name the default registry can expose (a labelled metric nobody has counted
    yet has no samples, hence the names from each family's type)."""
    names = set()
    for family in REGISTRY.collect():
        names |= {family.name + suffix for suffix in SUFFIXES[family.type]}
        names |= {sample.name for sample in family.samples}
    return names


def series_labels() -> dict[str, set[str]]:
    """chatops' series -> their label names (histogram buckets add le)."""
    labels = {}
    for metric in vars(chatops.metrics).values():
        if isinstance(metric, MetricWrapperBase):
            names = set(metric._labelnames)   # prometheus_client keeps them there; no public getter
            for suffix in SUFFIXES[metric._type]:
                labels[metric._name + suffix] = names | ({"le"} if suffix == "_bucket" else set())
    return labels


def promql_parts(expr: str) -> tuple[set[str], set[str]]:
    """The metric names and the grouping labels (by, without, on, ignoring) of a PromQL expression."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    labels = {label.strip() for m in _GROUPING.finditer(text) for label in m.group(1).split(",") if label.strip()}
    text = _GROUPING.sub(" ", text)
    text = re.sub(r"\{[^{}]*\}", " ", text)            # label matchers
    text = re.sub(r"\[[^\[\]]*\]", " ", text)          # ranges, subqueries
    text = re.sub(r"\$\{[^}]*\}|\$\w+", " ", text)     # Grafana's variables
    names = set()
    for match in re.finditer(r"(?<![\w.:])([A-Za-z_:][\w:]*)(\s*\()?", text):
        word, call = match.groups()
        if not call and word.lower() not in _KEYWORDS:
            names.add(word)
    return names, labels


def dashboard_defects(dashboard: dict) -> list[str]:
    known, labels = registered_series(), series_labels()
    defects = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            names, grouping = promql_parts(expr)
            if not names:
                defects.append(f"{panel['title']}: no metric in {expr}")
            for name in sorted(names - known):
                defects.append(f"{panel['title']}: {name} is not a metric chatops defines")
            allowed = set().union(*(labels.get(n, set()) for n in names)) if names else set()
            legend = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", "")))
            for label in sorted((grouping | legend) - allowed):
                defects.append(f"{panel['title']}: no metric of {expr} has the label {label}")
            if "histogram_quantile" in expr and not (names and all(n.endswith("_bucket") for n in names)
                                                     and "le" in grouping):
                defects.append(f"{panel['title']}: histogram_quantile needs _bucket series by le: {expr}")
    return defects


def test_promql_parts():
    names, labels = promql_parts('histogram_quantile(0.95, sum by (le, stage) (rate(chatops_answer_stage_duration'
                                 '_seconds_bucket{stage!="x", a=~"b|c"}[$__rate_interval])))')
    assert names == {"chatops_answer_stage_duration_seconds_bucket"} and labels == {"le", "stage"}
    names, labels = promql_parts('sum(rate(a_total[5m] offset 1h)) / on (job) group_left sum(b) > bool 1e3')
    assert names == {"a_total", "b"} and labels == {"job"}
    assert promql_parts("time() - max(chatops_worker_last_consumer_tick_seconds)")[0] == {
        "chatops_worker_last_consumer_tick_seconds"}


def test_dashboard_is_a_provisionable_grafana_dashboard():
    dashboard = _dashboard()
    assert dashboard["uid"] == "chatops"
    assert 36 <= dashboard["schemaVersion"] <= 41
    variable = _datasource_variable(dashboard)
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    rows = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    assert rows == list(ROWS)
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        for source in [panel["datasource"]] + [t["datasource"] for t in panel["targets"]]:
            assert source == {"type": "prometheus", "uid": "${%s}" % variable["name"]}, panel["title"]


def test_dashboard_rows_show_what_they_say():
    used: dict[str, set[str]] = {}
    row = None
    for panel in _dashboard()["panels"]:
        if panel["type"] == "row":
            row = panel["title"]
            continue
        for target in panel["targets"]:
            used.setdefault(row, set()).update(promql_parts(target["expr"])[0])
    for title, metrics in ROWS.items():
        assert metrics <= used.get(title, set()), f"{title}: missing {metrics - used.get(title, set())}"


def test_dashboard_uses_only_defined_metrics_and_labels():
    assert dashboard_defects(_dashboard()) == []


def test_the_dashboard_check_finds_a_missing_metric_or_label():
    def panel(expr, legend=""):
        return {"title": "bad", "targets": [{"expr": expr, "legendFormat": legend}]}

    bad = [panel("sum(rate(chatops_answer_total[5m]))"),                                 # a typo
           panel("sum by (channel) (rate(chatops_answers_total[5m]))"),                   # no such label
           panel("sum(rate(chatops_answers_total[5m]))", "{{person}}"),
           panel("histogram_quantile(0.5, sum by (le) (rate(chatops_task_duration_seconds_sum[5m])))"),
           panel("sum(rate(chatops_answer_stage_duration_seconds[5m]))"),                 # a histogram's bare name
           panel("vector(1)")]
    for one in bad:
        assert dashboard_defects({"panels": [one]}), one["targets"][0]
    assert dashboard_defects({"panels": [panel("sum by (mode) (rate(chatops_answers_total[5m]))", "{{mode}}")]}) == []
    assert "chatops_answers_total" in registered_series()
    assert "chatops_answer_stage_duration_seconds" not in registered_series()
