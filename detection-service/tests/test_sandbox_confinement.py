"""Every sandbox child (videos, annotated images) confines itself before it reads a user's file
(ADR 0041): a seccomp filter (no network, programs, processes or signals to others) and
Landlock (no file but its own). What the check at start finds, that its attempts are real, and
what a kernel without Landlock does: it is reported, and refused only where required."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from detection_service.sandbox.check import _ATTEMPTS, _refused, check_confinement
from detection_service.sandbox.confinement import Layer
from detection_service.sandbox.limits import SandboxLimits
from objectvision_devstack.videos import make_video

from .conftest import IMAGES

BUS = IMAGES / "bus.jpg"
GENEROUS = SandboxLimits(memory_bytes=4 * 2**30, cpu_seconds=120)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("sandbox") / "bus.mp4", [(BUS, 20)], fps=10)


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    """A storage directory holding another account's image, as the service's does."""
    objects = tmp_path / "objects"
    objects.mkdir()
    (objects / "someone-elses.jpg").write_bytes(BUS.read_bytes())
    return objects


def test_every_attempt_of_the_confinement_check_goes_through_where_nothing_confines(storage):
    """The check's attempts are real: in this unconfined test process each one succeeds, so
    a refusal in a child means the child was confined."""
    for name, (_layer, attempt) in _ATTEMPTS.items():
        assert not _refused(attempt, storage), name
    assert not (storage / f".sandbox-check-{os.getpid()}").exists()


def test_a_confined_child_reaches_no_network_file_program_process_or_service(storage):
    check = check_confinement(GENEROUS, protected=storage)
    assert check.confinement.syscalls_filtered
    assert check.confinement.landlock_abi >= 1
    assert check.still_allowed == ()
    assert all(check.holds(layer) for layer in Layer) and check.sound
    # A single stored file is as closed as the directory.
    assert check_confinement(GENEROUS, protected=storage / "someone-elses.jpg").sound


# Run in a process whose own seccomp filter answers ENOSYS to Landlock, as a kernel without
# it (or a container profile that refuses it) does; the children inherit that.
_WITHOUT_LANDLOCK = textwrap.dedent(
    """
    import asyncio, errno, json, sys
    from pathlib import Path
    import pyseccomp
    from prometheus_client import CollectorRegistry, Gauge
    from detection_service.pipeline.annotation_sandbox import SandboxedAnnotator
    from detection_service.pipeline.decode import ImageLimits
    from detection_service.sandbox.check import check_confinement, check_sandbox
    from detection_service.sandbox.limits import SandboxLimits
    from detection_service.video.probe import Sampling, VideoContainer
    from detection_service.video.sandbox import SandboxedFrameReader, VideoDecodeError
    from objectvision_common.errors import InvalidArgument

    kernel = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
    kernel.add_rule(pyseccomp.ERRNO(errno.ENOSYS), "landlock_create_ruleset")
    kernel.load()
    clip, storage, image = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    found = {}
    best_effort = SandboxLimits(memory_bytes=4 * 2**30, cpu_seconds=120)
    required = SandboxLimits(memory_bytes=4 * 2**30, cpu_seconds=120, require_confinement=True)
    check = check_confinement(best_effort, protected=storage)
    found["confinement"] = [check.confinement.syscalls_filtered, check.confinement.landlock_abi]
    found["still_allowed"] = list(check.still_allowed)
    for name, limits in (("best_effort", best_effort), ("required", required)):
        reader = SandboxedFrameReader(
            clip, VideoContainer.MP4, Sampling(every=1), width=640, height=480, sandbox=limits
        )
        try:
            found[name] = reader.next_sampled().index
        except VideoDecodeError as error:
            found[name] = error.message
        finally:
            reader.close()
    for name, limits in (("best_effort", best_effort), ("required", required)):
        drawing = SandboxedAnnotator(
            limits=limits, images=ImageLimits(2**24, 10**8), workers=1, timeout_s=30,
        )
        try:
            found[f"annotated_{name}"] = len(asyncio.run(drawing.annotate(image.read_bytes(), [])))
        except InvalidArgument as error:
            found[f"annotated_{name}"] = error.message
        finally:
            drawing.close()
    gauge = Gauge("confined", "", ["layer"], registry=CollectorRegistry())
    asyncio.run(check_sandbox(best_effort, protected=storage, confined=gauge))
    found["gauge"] = {
        sample.labels["layer"]: sample.value for sample in gauge.collect()[0].samples
    }
    try:
        asyncio.run(check_sandbox(required, protected=storage, confined=gauge))
        found["start"] = "started"
    except RuntimeError as error:
        found["start"] = str(error)
    print(json.dumps(found))
    """
)


def test_a_kernel_without_landlock_is_reported_and_refused_only_where_required(clip, storage):
    """Videos and annotated images alike: read with what there is by default, refused where
    SANDBOX_REQUIRE_CONFINEMENT is on, and a service that requires it does not start."""
    ran = subprocess.run(
        [sys.executable, "-c", _WITHOUT_LANDLOCK, str(clip), str(storage), str(BUS)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    found = json.loads(ran.stdout.splitlines()[-1])
    assert found["confinement"] == [True, 0]
    assert found["still_allowed"] == ["reading the storage", "creating a file"]
    # Best effort: the video is read with the syscall filter and the limits.
    assert found["best_effort"] == 0
    # Required: the child refuses before it opens the video, and says why.
    assert "could not be confined (SANDBOX_REQUIRE_CONFINEMENT)" in found["required"]
    # The same for annotated images: drawn with what there is, or refused where required.
    assert isinstance(found["annotated_best_effort"], int) and found["annotated_best_effort"] > 0
    assert "could not be confined (SANDBOX_REQUIRE_CONFINEMENT)" in found["annotated_required"]
    assert found["gauge"] == {"syscall_filter": 1.0, "file_rules": 0.0}
    assert "SANDBOX_REQUIRE_CONFINEMENT is on" in found["start"]
    assert "no Landlock file rules" in found["start"]


def test_a_started_service_exports_that_both_layers_hold_here(detection):
    """What the service found at start, as Prometheus scrapes it (this kernel has both)."""
    samples = detection.service.metrics.sandbox_confined.collect()[0].samples
    assert {sample.labels["layer"]: sample.value for sample in samples} == {
        "syscall_filter": 1.0,
        "file_rules": 1.0,
    }
