"""Every rendered Kubernetes object: schema-valid, and the rules a production cluster needs."""

import re
from urllib.parse import urlparse

import pytest
import yaml
from deploy_validate import REPO_ROOT, dockerfile, k8s
from deploy_validate.k8s import OVERLAYS, find

GRPC_SERVICES = {"auth-service": 50051, "detection-service": 50052, "notification-service": 50053}
# detection-service's realtime role (ADR 0019): a gRPC server too, but no database, no
# migrations, no client of the other services, and no *_SERVICE_ADDR (its callers are outside).
REALTIME = {"detection-realtime": 50052}
DETECTION_ROLES = ("detection-service", *REALTIME)
DETECTION_CLIENT_LABEL = "objectvision.io/detection-client"
APP_DEPLOYMENTS = ("gateway", *GRPC_SERVICES, *REALTIME, "triton")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_matches_the_kubernetes_schemas(rendered, overlay):
    pytest.importorskip("kubernetes_validate")
    pytest.importorskip("jsonschema")
    assert k8s.schema_errors(rendered[overlay], k8s.kubernetes_versions()) == []


def test_schema_validation_catches_a_typo(rendered):
    pytest.importorskip("kubernetes_validate")
    objects = yaml.safe_load(yaml.safe_dump(rendered["prod"]))  # a deep copy
    deployment = find(objects, "Deployment", "gateway")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    monitor = find(objects, "ServiceMonitor", "triton")
    monitor["spec"]["endpoints"][0]["intervall"] = "10s"
    errors = k8s.schema_errors([deployment, monitor], [k8s.MIN_KUBERNETES])
    assert any("readinesProbe" in e for e in errors)
    assert any("intervall" in e for e in errors)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_project_rules(rendered, overlay):
    """Non-root, no privilege escalation, ALL capabilities dropped, read-only root filesystem,
    requests and limits on every container (init containers too), readiness and liveness
    probes on long-running containers, references that resolve."""
    assert k8s.check_rules(rendered[overlay]) == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_objects_only_references(rendered, overlay):
    objects = rendered[overlay]
    assert not [o for o in objects if o["kind"] == "Secret"]
    assert set(k8s.secret_references(objects)) == k8s.EXTERNAL_SECRETS


def test_every_secret_key_is_documented(rendered):
    docs = (REPO_ROOT / "docs" / "deployment.md").read_text()
    keys = set().union(*k8s.secret_references(rendered["prod"]).values())
    assert keys, "no secret keys referenced?"
    for key in keys:
        assert f"`{key}`" in docs, f"secret key {key} is not documented in docs/deployment.md"


def test_gpu_only_on_triton_in_prod_and_nowhere_in_dev(rendered):
    """Triton's pod holds the only GPUs: the server, and its two init containers that must
    run on the serving GPU (the plan's build, and DALI's serialization with the GPU decoder).
    Init containers run one after another, so the pod still asks for one GPU."""
    assert set(k8s.gpu_containers(rendered["prod"])) == {
        ("triton", "triton"),
        ("triton", "engine-build"),
        ("triton", "dali-pipeline"),
    }
    assert k8s.gpu_containers(rendered["dev"]) == []
    triton = find(rendered["prod"], "Deployment", "triton")["spec"]["template"]["spec"]
    for container in (*triton["initContainers"], *triton["containers"]):
        resources = container["resources"]
        if "nvidia.com/gpu" in resources["limits"]:
            assert resources["requests"]["nvidia.com/gpu"] == 1, container["name"]
            assert resources["limits"]["nvidia.com/gpu"] == 1, container["name"]
    assert triton["nodeSelector"] and triton["tolerations"]
    dev = find(rendered["dev"], "Deployment", "triton")["spec"]["template"]["spec"]
    assert "nodeSelector" not in dev and "tolerations" not in dev
    assert [c["name"] for c in dev["initContainers"]] == ["model-prep"]
    assert dev["initContainers"][0]["args"][0] == "cpu"


def _env(container):
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def test_engine_is_built_on_the_serving_gpu_with_the_matching_tensorrt(rendered):
    spec = find(rendered["prod"], "Deployment", "triton")["spec"]["template"]["spec"]
    prep, build, dali = spec["initContainers"]
    assert [c["name"] for c in (prep, build, dali)] == [
        "model-prep",
        "engine-build",
        "dali-pipeline",
    ]
    assert prep["args"] == ["trt", "/models/repository"]
    for step in (build, dali):
        assert "build_engine.sh /models/repository" in " ".join(step["command"]), step["name"]
    # Each image makes the file only it can: trtexec the plan, the server's DALI the pipeline.
    assert (_env(build)["STEPS"], _env(dali)["STEPS"]) == ("engine", "dali")
    server = spec["containers"][0]
    # An engine only loads in the TensorRT it was built with: same NGC release on both.
    release = re.compile(r":(\d+\.\d+)-py3$")
    assert release.search(build["image"])[1] == release.search(server["image"])[1]
    # A model.dali must be serialized by the DALI of the backend that loads it.
    assert dali["image"] == server["image"]
    assert _env(dali)["PYTHONPATH"] == "/opt/tritonserver/backends/dali/wheel/dali"
    assert _env(dali)["MAX_BATCH"] == _env(build)["MAX_BATCH"]
    assert "--model-repository=/models/repository" in server["args"]
    assert server["startupProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert server["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert server["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    deployment = find(rendered["prod"], "Deployment", "triton")
    assert deployment["spec"]["progressDeadlineSeconds"] >= 1200


def test_engine_comes_through_the_shared_cache_not_a_build_per_pod(rendered):
    """engine-build fetches the plan from (or builds it once into) the ReadWriteMany engine
    cache that every Triton pod shares; the pod's own repository stays an emptyDir, which
    Triton alone reads, so a slow or lost cache volume cannot stall inference."""
    objects = rendered["prod"]
    spec = find(objects, "Deployment", "triton")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    build = next(c for c in spec["initContainers"] if c["name"] == "engine-build")
    cache_dir = _env(build)["ENGINE_CACHE_DIR"]
    (mount,) = [m for m in build["volumeMounts"] if m["mountPath"] == cache_dir]
    claim = volumes[mount["name"]]["persistentVolumeClaim"]["claimName"]
    pvc = find(objects, "PersistentVolumeClaim", claim)
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"], "pods on every node share it"
    # Waiting for another pod's build of the same key beats building it a second time.
    assert int(_env(build)["LOCK_WAIT_SECONDS"]) >= 600
    for container in (*spec["initContainers"], *spec["containers"]):
        if container is not build:
            assert mount["name"] not in {m["name"] for m in container.get("volumeMounts", [])}
    assert "emptyDir" in volumes["models"]
    # dev has no GPU, so no engine and no cache.
    dev = find(rendered["dev"], "Deployment", "triton")["spec"]["template"]["spec"]
    assert not any("persistentVolumeClaim" in v for v in dev["volumes"])
    assert not [o for o in rendered["dev"] if o["metadata"]["name"] == claim]


def test_model_prep_ships_what_build_engine_runs():
    """The model-prep image carries build_engine.sh and the two scripts it runs, and its
    script copies the three next to the repository, where build_engine.sh looks for them
    (SCRIPTS_DIR defaults to its own folder); the engine's ONNX is the plain export."""
    script = (REPO_ROOT / "deploy" / "model-prep" / "prepare-repository.sh").read_text()
    instructions = dockerfile.parse((REPO_ROOT / dockerfile.PYTHON_DOCKERFILE).read_text())
    stage = next(s for s in dockerfile.stages(instructions) if s.name == "model-prep")
    copied = " ".join(i.value for i in stage.instructions if i.keyword == "COPY")
    scripts = ("build_engine.sh", "add_efficient_nms.py", "dali_letterbox.py")
    for name in scripts:
        assert (REPO_ROOT / "inference" / "scripts" / name).is_file()
        assert f"inference/scripts/{name}" in copied, name
    assert "scripts=/opt/objectvision/bin" in script
    assert f"for script in {' '.join(scripts)}; do" in script
    assert 'ship "$script" "$(dirname "$dest")"' in script
    assert "--flavour trt" in script and '--engine-source "$source"' in script


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_grpc_services_are_headless_with_native_grpc_probes(rendered, overlay):
    """The probes use the plaintext health-only port (GRPC_HEALTH_PORT), never the service
    port, which demands a client certificate when mTLS is on."""
    objects = rendered[overlay]
    config = next(o for o in objects if o["kind"] == "ConfigMap")["data"]
    health_port = int(config["GRPC_HEALTH_PORT"])
    for name, port in {**GRPC_SERVICES, **REALTIME}.items():
        service = find(objects, "Service", name)
        assert service["spec"]["clusterIP"] == "None"
        assert health_port not in {p["port"] for p in service["spec"]["ports"]}
        container = find(objects, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]
        assert health_port in {p["containerPort"] for p in container["ports"]} - {port}
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["grpc"]["port"] == health_port
    gateway = find(objects, "Deployment", "gateway")["spec"]["template"]["spec"]["containers"][0]
    # /ready and /metrics are only on the gateway's metrics port (GATEWAY_METRICS_PORT).
    assert gateway["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "metrics"}
    assert gateway["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert gateway["startupProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    (metrics_port,) = [p["containerPort"] for p in gateway["ports"] if p["name"] == "metrics"]
    assert int(config["GATEWAY_METRICS_PORT"]) == metrics_port
    gateway_service = find(objects, "Service", "gateway")
    assert {"name": "metrics", "port": metrics_port} in [
        {"name": p["name"], "port": p["port"]} for p in gateway_service["spec"]["ports"]
    ]
    for monitor in objects:  # the dev overlay has no Prometheus Operator, so no monitors
        if monitor["kind"] == "ServiceMonitor" and monitor["metadata"]["name"] == "gateway":
            assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
    config = next(o for o in objects if o["kind"] == "ConfigMap")["data"]
    for variable in ("AUTH_SERVICE_ADDR", "DETECTION_SERVICE_ADDR", "NOTIFICATION_SERVICE_ADDR"):
        assert config[variable].startswith("dns:///")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_detection_reaches_every_triton_pod(rendered, overlay):
    """TRITON_URL is the dns:/// name of Triton's headless Service (every ready pod an A
    record, detection's round_robin over all), set once in the ConfigMap, where the validator
    checks that it names a rendered Service and port; the channel is renewed so that pods the
    HPA adds get calls without a connection having to fail first."""
    objects = rendered[overlay]
    configmap = next(o for o in objects if o["kind"] == "ConfigMap")
    config = configmap["data"]
    url = config["TRITON_URL"]
    assert url.startswith("dns:///"), url
    host, port = url.removeprefix("dns:///").rsplit(":", 1)
    service = find(objects, "Service", "triton")
    assert host == f"triton.{service['metadata']['namespace']}.svc.cluster.local"
    assert service["spec"]["clusterIP"] == "None"
    (grpc,) = [p for p in service["spec"]["ports"] if p["port"] == int(port)]
    assert grpc["name"] == "grpc"
    assert k8s.selector_matches(
        {"matchLabels": service["spec"]["selector"]},
        k8s.pod_labels(find(objects, "Deployment", "triton")),
    )
    assert 0 < float(config["TRITON_CHANNEL_MAX_AGE_SECONDS"]) <= 60
    detection = find(objects, "Deployment", "detection-service")["spec"]["template"]["spec"]
    container = detection["containers"][0]
    assert {"configMapRef": {"name": configmap["metadata"]["name"]}} in container["envFrom"]
    overridden = {e["name"] for e in container.get("env", [])}
    assert not {"TRITON_URL", "TRITON_CHANNEL_MAX_AGE_SECONDS"} & overridden


def test_prod_services_speak_mtls_with_certificates_naming_their_services(rendered):
    """Each process mounts its own cert-manager Secret where GRPC_TLS_* point; the servers'
    certificates carry the names their callers dial; dev stays plaintext (no cert-manager)."""
    objects = rendered["prod"]
    config = next(o for o in objects if o["kind"] == "ConfigMap")["data"]
    paths = {config[f"GRPC_TLS_{part}_FILE"] for part in ("CERT", "KEY", "CA")}
    certificates = {
        c["spec"]["secretName"]: c["spec"] for c in objects if c["kind"] == "Certificate"
    }
    for name in ("gateway", *GRPC_SERVICES):
        spec = find(objects, "Deployment", name)["spec"]["template"]["spec"]
        (volume,) = [v for v in spec["volumes"] if v["name"] == "grpc-tls"]
        secret = volume["secret"]["secretName"]
        assert "items" not in volume["secret"], "a whole-Secret mount follows renewals"
        (mount,) = [m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "grpc-tls"]
        assert {f"{mount['mountPath']}/{key}" for key in ("tls.crt", "tls.key", "ca.crt")} == paths
        usages = set(certificates[secret]["usages"])
        assert "client auth" in usages
        assert ("server auth" in usages) == (name in GRPC_SERVICES)
    # The realtime role serves only: a server certificate for the name its callers dial.
    for name in REALTIME:
        spec = find(objects, "Deployment", name)["spec"]["template"]["spec"]
        (volume,) = [v for v in spec["volumes"] if v["name"] == "grpc-tls"]
        assert "items" not in volume["secret"]
        (mount,) = [m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "grpc-tls"]
        assert {f"{mount['mountPath']}/{key}" for key in ("tls.crt", "tls.key", "ca.crt")} == paths
        certificate = certificates[volume["secret"]["secretName"]]
        assert "server auth" in certificate["usages"]
        assert f"{name}.objectvision.svc.cluster.local" in certificate["dnsNames"]
    for variable in ("AUTH_SERVICE_ADDR", "DETECTION_SERVICE_ADDR", "NOTIFICATION_SERVICE_ADDR"):
        host = config[variable].removeprefix("dns:///").rsplit(":", 1)[0]
        service = host.split(".")[0]
        spec = find(objects, "Deployment", service)["spec"]["template"]["spec"]
        (volume,) = [v for v in spec["volumes"] if v["name"] == "grpc-tls"]
        assert host in certificates[volume["secret"]["secretName"]]["dnsNames"]
    dev = next(o for o in rendered["dev"] if o["kind"] == "ConfigMap")["data"]
    assert not any(key.startswith("GRPC_TLS_") for key in dev)
    assert not [o for o in rendered["dev"] if o["kind"] in ("Certificate", "Issuer")]


def test_hpas_target_rendered_deployments_and_triton_uses_the_adapter_metrics(rendered):
    objects = rendered["prod"]
    hpas = {h["metadata"]["name"]: h for h in objects if h["kind"] == "HorizontalPodAutoscaler"}
    assert set(hpas) == set(APP_DEPLOYMENTS)
    for hpa in hpas.values():
        target = hpa["spec"]["scaleTargetRef"]
        deployment = find(objects, target["kind"], target["name"])
        assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
        assert hpa["spec"]["minReplicas"] >= 2
    for name in ("gateway", *GRPC_SERVICES, *REALTIME):
        (metric,) = hpas[name]["spec"]["metrics"]
        assert metric["resource"]["name"] == "cpu"

    # Triton scales on whichever of two signals asks for more pods: its own queue time per
    # pod, and the backlog waiting in detection-service while Triton queues too, which the
    # detection pods' in-flight cap hides from Triton's queue.
    values = yaml.safe_load(
        (REPO_ROOT / "k8s" / "monitoring" / "prometheus-adapter-values.yaml").read_text()
    )
    (custom,) = values["rules"]["custom"]
    (external,) = values["rules"]["external"]
    metrics = {m["type"]: m for m in hpas["triton"]["spec"]["metrics"]}
    assert set(metrics) == {"Pods", "External"}
    assert metrics["Pods"]["pods"]["metric"]["name"] == custom["name"]["as"]
    assert metrics["External"]["external"]["metric"]["name"] == external["name"]["as"]
    assert custom["resources"]["overrides"]["pod"]["resource"] == "pod"
    assert "pod" not in external["resources"]["overrides"]
    queue = 'rate(nv_inference_queue_duration_us{<<.LabelMatchers>>,model="yolov8n"}'
    served = 'rate(nv_inference_request_success{<<.LabelMatchers>>,model="yolov8n"}'
    for rule in (custom, external):
        query = rule["metricsQuery"]
        # Only the model detection calls: the BLS model's two helpers barely queue and would
        # divide the average by three.
        assert queue in query and served in query, rule["name"]["as"]
        assert query.count("nv_inference_") == query.count('model="yolov8n"')
        assert query.count("(") == query.count(")")
    backlog = external["metricsQuery"]
    assert "rate(detection_queue_wait_seconds_sum{<<.LabelMatchers>>}" in backlog
    assert "rate(detection_queue_wait_seconds_count{<<.LabelMatchers>>}" in backlog
    # No traffic reads 0, not "no data", so the HPA can always scale down.
    assert "or vector(0)" in backlog
    behavior = hpas["triton"]["spec"]["behavior"]
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] >= 60
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] >= 600
    assert {p["value"] for p in behavior["scaleUp"]["policies"]} == {1}
    for name in ("triton", *DETECTION_ROLES):
        monitor = find(objects, "ServiceMonitor", name)
        assert monitor["spec"]["endpoints"][0]["port"] == "metrics"


def test_no_hpas_and_one_replica_in_dev(rendered):
    objects = rendered["dev"]
    assert not [o for o in objects if o["kind"] == "HorizontalPodAutoscaler"]
    assert not [o for o in objects if o["kind"] == "ServiceMonitor"]
    for name in APP_DEPLOYMENTS:
        assert find(objects, "Deployment", name)["spec"]["replicas"] == 1


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_has_a_pdb(rendered, overlay):
    objects = rendered[overlay]
    pdbs = [o for o in objects if o["kind"] == "PodDisruptionBudget"]
    for name in APP_DEPLOYMENTS:
        labels = k8s.pod_labels(find(objects, "Deployment", name))
        assert any(k8s.selector_matches(p["spec"]["selector"], labels) for p in pdbs), name


def _policies_for(objects, pod_name, direction):
    labels = k8s.pod_labels(find(objects, "Deployment", pod_name))
    return [
        p
        for p in objects
        if p["kind"] == "NetworkPolicy"
        and direction in p["spec"].get("policyTypes", [])
        and k8s.selector_matches(p["spec"]["podSelector"], labels)
    ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies(rendered, overlay):
    objects = rendered[overlay]
    default_deny = find(objects, "NetworkPolicy", "default-deny")
    assert default_deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    detection = [k8s.pod_labels(find(objects, "Deployment", n)) for n in DETECTION_ROLES]
    others = [k8s.pod_labels(find(objects, "Deployment", n)) for n in APP_DEPLOYMENTS]

    # Triton: inference ports only from the two detection roles; metrics only from Prometheus.
    for policy in _policies_for(objects, "triton", "Ingress"):
        for rule in policy["spec"].get("ingress", []):
            ports = {p["port"] for p in rule.get("ports", [])}
            assert ports, "a rule without ports opens every port"
            for peer in rule["from"]:
                if "namespaceSelector" in peer:
                    assert ports == {8002}, "only the metrics port is open to other namespaces"
                    assert peer["namespaceSelector"] == {
                        "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}
                    }
                else:
                    selected = [
                        labels
                        for labels in others
                        if k8s.selector_matches(peer["podSelector"], labels)
                    ]
                    assert selected and all(labels in detection for labels in selected)
    # ... and only the detection roles have an egress rule towards Triton.
    triton = k8s.pod_labels(find(objects, "Deployment", "triton"))
    for name in APP_DEPLOYMENTS:
        reaches = any(
            k8s.selector_matches(peer.get("podSelector", {"matchLabels": {"x": "y"}}), triton)
            for policy in _policies_for(objects, name, "Egress")
            for rule in policy["spec"].get("egress", [])
            for peer in rule.get("to", [])
        )
        assert reaches == (name in DETECTION_ROLES), name

    # Only the gateway admits traffic from the ingress controller's namespace.
    for name in APP_DEPLOYMENTS:
        from_ingress = any(
            peer.get("namespaceSelector", {})
            .get("matchLabels", {})
            .get("kubernetes.io/metadata.name")
            == "ingress-nginx"
            for policy in _policies_for(objects, name, "Ingress")
            for rule in policy["spec"].get("ingress", [])
            for peer in rule.get("from", [])
        )
        assert from_ingress == (name == "gateway"), name


def test_migrations_job_runs_every_service_before_rollout(rendered):
    job = find(rendered["prod"], "Job", "objectvision-migrate")
    spec = job["spec"]["template"]["spec"]
    steps = [*spec["initContainers"], *spec["containers"]]
    assert [c["image"].rsplit("/", 1)[-1].split(":")[0] for c in steps] == [
        "auth",
        "detection",
        "notification",
    ]
    assert all(c["args"] == ["migrate"] for c in steps)
    assert spec["restartPolicy"] == "Never"
    assert job["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "PreSync"
    # The migrate phase applies only objects labelled component=migrate: the Job must not need
    # anything else from the overlay (no ConfigMap), only the operator's Secret.
    labelled = {
        (o["kind"], o["metadata"]["name"])
        for o in rendered["prod"]
        if o["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "migrate"
    }
    assert labelled == {
        ("Job", "objectvision-migrate"),
        ("ServiceAccount", "migrate"),
        ("NetworkPolicy", "migrate-egress"),
    }
    assert not any(c.get("envFrom") for c in steps)
    # Same image tags as the Deployments they migrate for.
    for step, deployment in zip(steps, GRPC_SERVICES, strict=True):
        container = find(rendered["prod"], "Deployment", deployment)["spec"]["template"]["spec"][
            "containers"
        ][0]
        assert step["image"] == container["image"]


def test_prod_ingress_tls_body_size_and_websocket_timeouts(rendered):
    ingress = find(rendered["prod"], "Ingress", "gateway")
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"].endswith("m")
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-send-timeout"]) >= 3600
    (tls,) = ingress["spec"]["tls"]
    (rule,) = ingress["spec"]["rules"]
    assert tls["hosts"] == [rule["host"]]
    config = next(o for o in rendered["prod"] if o["kind"] == "ConfigMap")["data"]
    assert urlparse(config["PUBLIC_BASE_URL"]).hostname == rule["host"]
    assert config["OBJECTVISION_ENV"] == "production"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_ingress_lets_through_the_largest_upload_the_gateway_accepts(rendered, overlay):
    """nginx answering 413 first would hide the gateway's message (limit in MiB, what to do)."""
    from gateway.config import MAX_IMAGE_BYTES_PER_CALL, GatewaySettings

    ingress = find(rendered[overlay], "Ingress", "gateway")
    body_size = ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"]
    assert body_size.endswith("m"), body_size
    config = next(
        o["data"]
        for o in rendered[overlay]
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("objectvision-config")
    )
    video_default = GatewaySettings.model_fields["max_video_bytes"].default
    largest = max(int(config.get("MAX_VIDEO_BYTES", video_default)), MAX_IMAGE_BYTES_PER_CALL)
    assert int(body_size[:-1]) * 1024 * 1024 > largest


def test_prod_images_are_pinned_to_a_registry(rendered):
    for obj in k8s.workloads(rendered["prod"]):
        for _, container in k8s.containers(k8s.pod_spec(obj)):
            image = container["image"]
            assert "/" in image.split(":")[0] and not image.startswith("objectvision/"), image


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_realtime_role_needs_no_database_redis_or_volume(rendered, overlay):
    """detection-realtime (ADR 0019) runs the detection image's realtime command, with the
    inference settings of the ConfigMap and no DATABASE_URL, REDIS_URL or objects volume; its
    gRPC port admits only pods labelled objectvision.io/detection-client (and those may dial
    it), never the ingress controller, and no policy opens PostgreSQL or Redis to it."""
    objects = rendered[overlay]
    deployment = find(objects, "Deployment", "detection-realtime")
    spec = deployment["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    full = find(objects, "Deployment", "detection-service")["spec"]["template"]["spec"]
    assert container["image"] == full["containers"][0]["image"]
    assert container["args"] == ["serve"]
    env = {e["name"]: e for e in container["env"]}
    assert env["OBJECTVISION_COMMAND"]["value"] == "objectvision-detection-realtime"
    assert not {"DATABASE_URL", "REDIS_URL"} & set(env)
    assert env["SERVICE_TOKEN_SECRET"]["valueFrom"]["secretKeyRef"]["key"] == (
        "service-token-secret"
    )
    assert not any("persistentVolumeClaim" in v for v in spec["volumes"])
    assert full["containers"][0]["envFrom"] == container["envFrom"]

    labels = k8s.pod_labels(deployment)
    client = {DETECTION_CLIENT_LABEL: "true"}
    for policy in _policies_for(objects, "detection-realtime", "Egress"):
        for rule in policy["spec"].get("egress", []):
            ports = {p["port"] for p in rule.get("ports", [])}
            assert not ports & {5432, 6379}, policy["metadata"]["name"]
    admitted = set()
    for policy in _policies_for(objects, "detection-realtime", "Ingress"):
        for rule in policy["spec"].get("ingress", []):
            ports = {p["port"] for p in rule.get("ports", [])}
            assert ports, "a rule without ports opens every port"
            for peer in rule["from"]:
                if "namespaceSelector" in peer:
                    assert ports == {9102} and "podSelector" not in peer
                else:
                    assert ports == {50052}
                    assert peer["podSelector"] == {"matchLabels": client}
                    admitted |= ports
    assert admitted == {50052}
    callers = [
        p
        for p in objects
        if p["kind"] == "NetworkPolicy"
        and "Egress" in p["spec"]["policyTypes"]
        and k8s.selector_matches(p["spec"]["podSelector"], client)
        and not k8s.selector_matches(p["spec"]["podSelector"], {})
    ]
    assert any(
        k8s.selector_matches(peer["podSelector"], labels)
        and 50052 in {p["port"] for p in rule["ports"]}
        for policy in callers
        for rule in policy["spec"]["egress"]
        for peer in rule.get("to", [])
    )
