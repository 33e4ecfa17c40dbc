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
        if name in compose.UNPROBED:
            assert service["healthcheck"] == {"disable": True}, name
            continue
        test = service["healthcheck"]["test"]
        assert test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, name
    # An unprobed service keeps its check disabled in so many words.
    broken = compose.load()
    del broken["services"]["perses"]["healthcheck"]
    assert "perses: cannot be probed" in " ".join(compose.check_rules(broken, compose.load_raw()))


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


@pytest.mark.parametrize("profile", compose.TRITON_PROFILES)
def test_realtime_role_only_with_its_profile(document, profile):
    """detection-realtime (ADR 0019) joins a Triton profile with `--profile realtime` and then
    needs nothing but that Triton: no migrate, PostgreSQL, Redis or volume."""
    assert compose.REALTIME_SERVICE not in compose.effective_services(document, {profile})
    active = compose.effective_services(document, {profile, compose.REALTIME_PROFILE})
    realtime = active[compose.REALTIME_SERVICE]
    assert realtime["image"] == active["detection-service"]["image"]
    assert realtime["environment"]["OBJECTVISION_COMMAND"] == "objectvision-detection-realtime"
    assert realtime["command"] == ["serve"]
    detection = active["detection-service"]
    assert realtime["environment"]["TRITON_URL"] == detection["environment"]["TRITON_URL"]
    required = {d for d, s in realtime["depends_on"].items() if s.get("required", True)}
    assert required == set()
    assert {"triton", "triton-cpu"} & set(realtime["depends_on"]) & set(active)
    # Its gRPC port reaches the host (loopback) on a port of its own; metrics stay internal.
    published = {str(p).rsplit(":", 1)[-1] for p in realtime.get("ports", [])}
    assert published == {realtime["environment"]["DETECTION_GRPC_PORT"]}
    assert all(str(p).startswith("127.0.0.1:") for p in realtime["ports"])
    assert compose.realtime_problems(document["services"]) == []


def test_realtime_rules_catch_mistakes():
    broken = compose.load()["services"]
    realtime = broken[compose.REALTIME_SERVICE]
    realtime["profiles"] = []
    realtime["environment"]["REDIS_URL"] = "redis://redis:6379/0"
    realtime["depends_on"]["migrate"] = {"condition": "service_completed_successfully"}
    realtime["volumes"] = ["detection-data:/var/lib/objectvision"]
    assert set(compose.realtime_problems(broken)) == {
        "detection-realtime: must be in profile realtime only",
        "detection-realtime: REDIS_URL set, but the realtime role has no state",
        "detection-realtime: depends on ['migrate'], but the role has no state",
        "detection-realtime: mounts a volume, but the role writes only /tmp",
    }


def test_optional_service_is_not_a_static_scrape_target(document, tmp_path, monkeypatch):
    """A listed target whose service a plain `docker compose up` does not start would be down,
    and fire ObjectVisionTargetDown; detection-realtime is found by DNS instead."""
    import yaml

    config = yaml.safe_load(compose.PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "detection-realtime"]
    assert "static_configs" not in job
    assert job["dns_sd_configs"] == [
        {"names": ["detection-realtime"], "type": "A", "port": 9102, "refresh_interval": "30s"}
    ]
    job.pop("dns_sd_configs")
    job["static_configs"] = [{"targets": ["detection-realtime:9102"]}]
    broken = tmp_path / "prometheus.yml"
    broken.write_text(yaml.safe_dump(config), encoding="utf-8")
    monkeypatch.setattr(compose, "PROMETHEUS_CONFIG", broken)
    assert compose.prometheus_problems(document) == [
        f"prometheus.yml target detection-realtime:9102: not started in profile {profile}, "
        "so it would be down there (find it by dns_sd_configs instead)"
        for profile in compose.TRITON_PROFILES
    ]
    job.pop("static_configs")
    broken.write_text(yaml.safe_dump(config), encoding="utf-8")
    assert compose.prometheus_problems(document) == [
        "prometheus.yml does not scrape detection-realtime:9102"
    ]
