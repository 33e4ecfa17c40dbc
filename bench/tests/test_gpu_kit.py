"""bench/gpu_kit.py's trimming, on small wheels built here with the real wheels' layout."""

import subprocess
import sys
import tarfile
import zipfile
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.utils import canonicalize_name

from bench.gpu_kit import CLIENT_WHEELS, ON_THE_BOX, trim_server, unpack_client

SERVER_FILES = {
    "pytriton/__init__.py": False,
    "nvidia_pytriton.libs/": False,
    "pytriton/tritonserver/bin/": False,
    "pytriton/tritonserver/bin/tritonserver": True,
    "pytriton/tritonserver/backends/python/libtriton_python.so": True,
    "pytriton/tritonserver/backends/python/triton_python_backend_utils.py": True,
    "pytriton/tritonserver/python_backend_stubs/3.12/triton_python_backend_stub": True,
    "pytriton/tritonserver/python_backend_stubs/3.11/triton_python_backend_stub": False,
    "nvidia_pytriton.libs/libtritonserver-717102f0.so": True,
    "nvidia_pytriton.libs/libpython3-419a3a08.13.so.1.0": False,
    "nvidia_pytriton-0.7.0.dist-info/RECORD": False,
}


def _wheel(path: Path, files: dict[str, int]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, mode in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            archive.writestr(info, f"contents of {name}")
    return path


def test_server_keeps_only_what_the_box_runs_with_its_modes(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path / "pytriton.whl", dict.fromkeys(SERVER_FILES, 0o755))
    kit = trim_server(wheel, tmp_path / "triton.tar.xz", "3.12")
    with tarfile.open(kit) as tar:
        members = {m.name: m for m in tar.getmembers()}
        tar.extractall(tmp_path / "out", filter="tar")
    assert set(members) == {name for name, kept in SERVER_FILES.items() if kept}
    binary = tmp_path / "out" / "pytriton/tritonserver/bin/tritonserver"
    assert binary.read_text() == "contents of pytriton/tritonserver/bin/tritonserver"
    assert binary.stat().st_mode & 0o111


def test_client_takes_the_grpc_part_of_tritonclient_and_all_of_the_rest(tmp_path: Path):
    purelib = "tritonclient-2.73.0.data/purelib/"
    client = _wheel(
        tmp_path / "tritonclient-2.73.0-py3-none-manylinux1_x86_64.whl",
        {
            f"{purelib}tritonclient/__init__.py": 0o644,
            f"{purelib}tritonclient/_request.py": 0o644,
            f"{purelib}tritonclient/grpc/aio/__init__.py": 0o644,
            f"{purelib}tritonclient/utils/__init__.py": 0o644,
            f"{purelib}tritonclient/http/__init__.py": 0o644,
            f"{purelib}tritongrpcclient/__init__.py": 0o644,
            "tritonclient-2.73.0.data/data/bin/perf_analyzer": 0o755,
            "tritonclient-2.73.0.dist-info/METADATA": 0o644,
        },
    )
    rapidjson = _wheel(
        tmp_path / "python_rapidjson-1.25-cp312-cp312-manylinux_2_28_x86_64.whl",
        {
            "rapidjson.cpython-312-x86_64-linux-gnu.so": 0o755,
            "python_rapidjson-1.25.dist-info/METADATA": 0o644,
        },
    )
    site = unpack_client([client, rapidjson], tmp_path / "site")
    found = {str(p.relative_to(site)) for p in site.rglob("*") if p.is_file()}
    assert found == {
        "tritonclient/__init__.py",
        "tritonclient/_request.py",
        "tritonclient/grpc/aio/__init__.py",
        "tritonclient/utils/__init__.py",
        "rapidjson.cpython-312-x86_64-linux-gnu.so",
        # The other wheels keep their metadata: opentelemetry-api's entry points live there.
        "python_rapidjson-1.25.dist-info/METADATA",
    }


# Imports the realtime role (ADR 0019) as bench/gpu.sh starts it on the GPU box, where only the
# standard library, the repository's own packages, the box's Python and the kit are there:
# every other import is refused, as it would fail there.
_ON_THE_BOX_ONLY = """
import importlib, importlib.abc, sys

allowed = set(sys.argv[1:])

class OnlyTheBox(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top in allowed or top in sys.stdlib_module_names or top.startswith("_"):
            return None
        raise ImportError(f"{name}: not on the GPU box, and the kit does not carry it")

sys.meta_path.insert(0, OnlyTheBox())
importlib.import_module("detection_service.realtime.server")
print("started")
"""
OWN_PACKAGES = (
    "detection_service",
    "objectvision",
    "objectvision_common",
    "objectvision_inference",
)


def _kit_modules() -> set[str]:
    """The importable names the kit's client wheels install (as this environment has them)."""
    wanted = {canonicalize_name(requirement.split("==")[0]) for requirement in CLIENT_WHEELS}
    return {
        module
        for module, distributions in packages_distributions().items()
        if any(canonicalize_name(name) in wanted for name in distributions)
    }


def _start_on_the_box(allowed: set[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _ON_THE_BOX_ONLY, *sorted(allowed)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_realtime_role_starts_with_the_gpu_box_and_the_kit_alone() -> None:
    """What bench/gpu.sh's service stage needs: a library the role imports that neither the box
    nor the kit has (as supervision once was) would cost a device lease to find."""
    allowed = set(ON_THE_BOX) | _kit_modules() | set(OWN_PACKAGES)
    answer = _start_on_the_box(allowed)
    assert answer.returncode == 0, answer.stderr[-2000:]
    assert answer.stdout.strip() == "started"


def test_the_box_check_refuses_a_library_the_kit_lacks() -> None:
    """Without landlock in the kit the role cannot start there (so the test before can fail)."""
    allowed = set(ON_THE_BOX) | (_kit_modules() - {"landlock"}) | set(OWN_PACKAGES)
    answer = _start_on_the_box(allowed)
    assert answer.returncode != 0
    assert "landlock: not on the GPU box" in answer.stderr
