"""bench/gpu_kit.py's trimming, on small wheels built here with the real wheels' layout."""

import tarfile
import zipfile
from pathlib import Path

from bench.gpu_kit import trim_server, unpack_client

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
