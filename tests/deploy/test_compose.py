"""docker-compose.yml: compose-spec schema, and the start-up contract of the stack."""

import pytest
from deploy_validate import compose

ONE_SHOTS = {"migrate", "model-prep", "engine-build", "dali-pipeline"}


@pytest.fixture(scope="module")
def document():
    return compose.load()


@pytest.fixture(scope="module")
def services(document):
    return document["services"]


def test_matches_the_compose_spec_schema(document):
    pytest.importorskip("jsonschema")
    pytest.importorskip("check_jsonschema")
    assert compose.schema_errors(document) == []


def test_schema_validation_catches_mistakes(document):
    pytest.importorskip("check_jsonschema")
    broken = compose.load()
    broken["services"]["gateway"]["helthcheck"] = {"test": ["CMD", "true"]}
    broken["services"]["redis"]["depends_on"] = {"postgres": {"condition": "service_happy"}}
    errors = "\n".join(compose.schema_errors(broken))
    assert "helthcheck" in errors
    assert "services.redis.depends_on" in errors


def test_project_rules(document):
    assert compose.check_rules(document, compose.load_raw()) == []


def test_metrics_ports_are_scraped_but_never_published(services):
    assert services["gateway"]["environment"]["GATEWAY_METRICS_PORT"] == "9100"
    assert compose.metrics_port_problems(services) == []
    broken = compose.load()["services"]
    broken["gateway"]["ports"].append("127.0.0.1:9100:9100")
    broken["auth-service"]["environment"]["AUTH_METRICS_PORT"] = "9200"
    assert set(compose.metrics_port_problems(broken)) == {
        "auth-service: AUTH_METRICS_PORT=9200, but Prometheus scrapes auth-service:9101",
        "gateway: metrics port 9100 must not be published to the host",
    }


def test_every_long_running_service_has_a_healthcheck(services):
    for name, service in services.items():
        if name in ONE_SHOTS:
            assert compose.is_one_shot(service), name
            continue
        test = service["healthcheck"]["test"]
        assert test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, name


def test_dependencies_wait_for_health_or_completion(services):
    for name, service in services.items():
        for dependency, spec in (service.get("depends_on") or {}).items():
            expected = (
                "service_completed_successfully" if dependency in ONE_SHOTS else "service_healthy"
            )
            assert spec["condition"] == expected, f"{name} -> {dependency}"
    assert set(services["gateway"]["depends_on"]) >= {
        "auth-service",
        "detection-service",
        "notification-service",
    }


def test_single_migrate_one_shot_before_the_services(services):
    migrate = services["migrate"]
    assert migrate["build"]["dockerfile"] == "deploy/docker/Dockerfile"
    assert migrate["build"]["target"] == "migrate"
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in ("auth-service", "detection-service", "notification-service"):
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }


def test_gpu_triton_and_cpu_profile(services):
    triton = services["triton"]
    assert triton["image"] == "nvcr.io/nvidia/tritonserver:24.10-py3"
    assert triton["profiles"] == ["gpu"]
    (device,) = triton["deploy"]["resources"]["reservations"]["devices"]
    assert device == {"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}
    assert "models:/models:ro" in triton["volumes"]
    cpu = services["triton-cpu"]
    assert cpu["profiles"] == ["cpu"]
    assert "triton" in cpu["networks"]["default"]["aliases"]
    assert "--model-repository=/models/cpu" in cpu["command"]
    assert "--model-repository=/models/trt" in triton["command"]
    # TensorRT engines only load in the TensorRT they were built with.
    assert services["engine-build"]["image"].rsplit(":", 1)[1] == triton["image"].rsplit(":", 1)[1]
    detection = services["detection-service"]["depends_on"]
    assert detection["triton"]["required"] is False
    assert detection["triton-cpu"]["required"] is False


def test_gpu_repository_is_finished_on_the_gpu_before_triton_starts(services):
    """The plan (TensorRT image) and the DALI file (tritonserver image, whose DALI backend
    loads it) are made by two GPU one-shots in the gpu profile, from the scripts model-prep
    copies next to the repository; Triton starts only after both."""
    triton = services["triton"]
    steps = {}
    for name in ("engine-build", "dali-pipeline"):
        one_shot = services[name]
        assert one_shot["profiles"] == ["gpu"], name
        assert one_shot["deploy"] == triton["deploy"], f"{name} needs the GPU"
        assert "models:/models" in one_shot["volumes"], name
        assert one_shot["depends_on"] == {
            "model-prep": {"condition": "service_completed_successfully"}
        }
        assert triton["depends_on"][name] == {"condition": "service_completed_successfully"}
        launch = " ".join([*one_shot.get("entrypoint", []), *one_shot.get("command", [])])
        assert "bash /models/build_engine.sh /models/trt" in launch, name
        steps[name] = one_shot["environment"]["STEPS"]
    assert steps == {"engine-build": "engine", "dali-pipeline": "dali"}
    # A model.dali must be serialized by the DALI release of the backend that loads it.
    assert services["dali-pipeline"]["image"] == triton["image"]
    dali_env = services["dali-pipeline"]["environment"]
    assert dali_env["PYTHONPATH"] == "/opt/tritonserver/backends/dali/wheel/dali"
    assert dali_env["MAX_BATCH"] == services["engine-build"]["environment"]["MAX_BATCH"]
    prep = " ".join(services["model-prep"]["command"])
    assert "prepare-repository trt /models/trt" in prep


def test_cpu_profile_needs_no_gpu_step(document):
    active = compose.effective_services(document, {"cpu"})
    assert not {"triton", "engine-build", "dali-pipeline"} & set(active)
    assert active["triton-cpu"]["depends_on"] == {
        "model-prep": {"condition": "service_completed_successfully"}
    }
    assert "prepare-repository cpu /models/cpu" in " ".join(active["model-prep"]["command"])


@pytest.mark.parametrize("profile", compose.TRITON_PROFILES)
def test_detection_dials_whichever_triton_runs(document, profile):
    """One Triton container per host: TRITON_URL is a plain host:port that both profiles'
    Triton answer to on its gRPC port."""
    active = compose.effective_services(document, {profile})
    (name,) = {"triton", "triton-cpu"} & set(active)
    host, port = active["detection-service"]["environment"]["TRITON_URL"].rsplit(":", 1)
    assert host in compose._network_names(name, active[name])
    assert f"--grpc-port={port}" in active[name]["command"]


@pytest.mark.parametrize("profile", compose.TRITON_PROFILES)
def test_each_profile_starts_exactly_one_triton(document, profile):
    active = compose.effective_services(document, {profile})
    tritons = {"triton", "triton-cpu"} & set(active)
    assert len(tritons) == 1
    assert set(compose.APP_SERVICES) <= set(active)


def test_nothing_but_env_is_needed():
    """Every ${VARIABLE} is documented in deploy/compose.env.example, secrets come from it."""
    env = compose.read_env_file(compose.ENV_EXAMPLE)
    interpolation = compose.Interpolation(env)
    interpolation.walk(compose.load_raw())
    assert interpolation.used <= set(env)
    for variable in (
        "POSTGRES_PASSWORD",
        "REDIS_PASSWORD",
        "SERVICE_TOKEN_SECRET",
        "WEBHOOK_SECRET_KEY",
    ):
        assert variable in interpolation.used
    missing = dict(env)
    del missing["POSTGRES_PASSWORD"]
    with pytest.raises(compose.InterpolationError, match="POSTGRES_PASSWORD"):
        compose.load(env=missing)


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("${A}", {"A": "1"}, "1"),
        ("${A:-x}", {}, "x"),
        ("${A:-x}", {"A": ""}, "x"),
        ("${A-x}", {"A": ""}, ""),
        ("${A:+set}", {"A": "1"}, "set"),
        ("$$HOME", {}, "$HOME"),
        ("a${B:-${C:-d}}e", {}, "ade"),
    ],
)
def test_interpolation(text, env, expected):
    assert compose.Interpolation(env).string(text) == expected


def test_prometheus_scrapes_every_service_and_triton(document):
    assert compose.prometheus_problems(document) == []
