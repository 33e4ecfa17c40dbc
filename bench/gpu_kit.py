"""Fill `.gpu/` with what `bench/gpu.sh` needs on a GPU box that has no network (`make gpu-kit`).

Why: the device machine reaches nothing and takes at most 64 MiB of working tree; its Python
(3.12, torch with CUDA, numpy 2, grpcio, onnx, OpenCV, psutil) lacks tritonserver and
tritonclient, and the two wheels alone are 69 MB. What travels instead (~49 MiB):

- `yolov8n.onnx`, `images/`: the model and the benchmark's images (`../shared` stays behind);
- `triton.tar.xz`: tritonserver 2.51 from the nvidia-pytriton wheel, only the server, the
  Python backend, the stub for the box's Python and the libraries they load (not the bundled
  libpython 3.13, not the other stubs), xz-compressed: ~25 MB of the wheel's 55;
- `site.tar.xz`: tritonclient without its HTTP client and perf_analyzer binaries (14 MB less),
  the python-rapidjson and protobuf it needs, opentelemetry-api and redis (imported by the
  detection path), and pydantic-settings with pydantic, grpcio's health and reflection
  services and landlock (the realtime role's server), for the box's Python, put first on its
  PYTHONPATH;
- `stub-numpy.tar.xz`: numpy 1.26 (tests left out) for the Triton stub's own environment:
  the tritonserver 2.51 stub misreads BYTES inputs (the encoded images) under numpy 2, which
  the box's Python has; gpu.sh makes a venv holding it in front of the box's packages.

    python -m bench.gpu_kit [--out .gpu] [--python-version 3.12]
"""

import argparse
import importlib.util
import io
import lzma
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

from bench.config import REPOSITORY

PYTRITON = "nvidia-pytriton==0.7.0"
# The versions the workspace locks (uv.lock); tritonclient's gRPC code needs protobuf >= 6.33.5,
# and the detection path needs opentelemetry-api (its spans, no-ops without the SDK) and redis
# (the result cache's client, imported though the benchmark runs without a cache).
CLIENT_WHEELS = (
    "tritonclient==2.73.0",
    "python-rapidjson==1.25",
    "protobuf==6.33.6",
    "opentelemetry-api==1.45.1",
    "redis==8.1.0",
    # detection-service's realtime role (ADR 0019), measured as a real gRPC server: its
    # settings (pydantic-settings and what pydantic needs) and the runner's health and
    # reflection services.
    "pydantic==2.14.4",
    "pydantic-core==2.50.5",
    "pydantic-settings==2.16.3",
    "python-dotenv==1.2.4",
    "typing-inspection==0.4.5",
    "annotated-types==0.8.0",
    "typing-extensions==4.16.0",
    "grpcio-health-checking==1.81.1",
    "grpcio-reflection==1.81.1",
    # The annotation sandbox's confinement (ADR 0043), imported by the detector's assembly
    # though the benchmark draws nothing: pure Python, 8 KB.
    "landlock==1.0.0.dev5",
)
# What the GPU box's own Python has, as importable names: the list of it and what the
# detection path imported there on 2026-12-04 (tritonclient's ml_dtypes and packaging, the
# service's prometheus_client). The realtime role must start with these and the kit alone
# (bench/tests/test_gpu_kit.py).
ON_THE_BOX = frozenset(
    {
        "numpy",
        "cv2",
        "grpc",
        "onnx",
        "onnxruntime",
        "torch",
        "torchvision",
        "cupy",
        "psutil",
        "ml_dtypes",
        "packaging",
        "prometheus_client",
    }
)
STUB_NUMPY = "numpy==1.26.4"
PLATFORMS = (
    "manylinux_2_35_x86_64",
    "manylinux_2_28_x86_64",
    "manylinux_2_24_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux1_x86_64",
)
# tritonclient without its HTTP client (whose imports, gevent and aiohttp, the box lacks).
_CLIENT_SKIPPED = ("http/",)
# Over this the kit leaves too little of the 64 MiB for the repository itself.
KIT_LIMIT_BYTES = 56 * 1024 * 1024


def _pip_python() -> str:
    """An interpreter with pip: this one, else python3 (uv's venvs come without pip)."""
    if importlib.util.find_spec("pip") is not None:
        return sys.executable
    found = shutil.which("python3")
    if found is None:
        raise RuntimeError("no pip: run with a Python that has pip")
    return found


def download(requirements: Iterable[str], python_version: str, dest: Path) -> list[Path]:
    """Wheels for the box's Python and platform (no dependencies: each is named)."""
    platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    command = [
        _pip_python(),
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--only-binary=:all:",
        "--python-version",
        python_version,
        "--implementation",
        "cp",
        *platforms,
        "--dest",
        str(dest),
        *requirements,
    ]
    subprocess.run(command, check=True)
    return sorted(dest.glob("*.whl"))


def _server_member(name: str, python_version: str) -> bool:
    """Whether a file of the pytriton wheel belongs to the trimmed server (folders: no, tar
    makes them)."""
    if name.endswith("/"):
        return False
    if name.startswith("nvidia_pytriton.libs/"):
        return not name.rsplit("/", 1)[-1].startswith("libpython3")
    if not name.startswith("pytriton/tritonserver/"):
        return False
    stubs = "pytriton/tritonserver/python_backend_stubs/"
    return not name.startswith(stubs) or name.startswith(f"{stubs}{python_version}/")


def trim_server(wheel: Path, out: Path, python_version: str) -> Path:
    """`out` (.tar.xz): the wheel's server files with their mode bits, libraries' relative
    layout kept (the binaries find each other through $ORIGIN rpaths)."""
    with (
        zipfile.ZipFile(wheel) as archive,
        lzma.open(out, "wb", preset=9) as packed,
        tarfile.open(fileobj=packed, mode="w") as tar,
    ):
        for info in archive.infolist():
            if not _server_member(info.filename, python_version):
                continue
            data = archive.read(info)
            member = tarfile.TarInfo(info.filename)
            member.size = len(data)
            member.mode = (info.external_attr >> 16) & 0o777 or 0o644
            tar.addfile(member, io.BytesIO(data))
    return out


def unpack_client(wheels: Iterable[Path], site: Path) -> Path:
    """Unpack the client wheels into `site` (tritonclient: only its gRPC part)."""
    site.mkdir(parents=True, exist_ok=True)
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            for info in archive.infolist():
                name = info.filename
                if "/purelib/" in name:
                    name = name.split("/purelib/", 1)[1]
                elif ".data/" in name:
                    continue
                elif ".dist-info/" in name and wheel.name.startswith("tritonclient"):
                    # Kept for the others: opentelemetry-api finds its propagators through
                    # the entry points its metadata declares.
                    continue
                if name.startswith("tritonclient/"):
                    if name.removeprefix("tritonclient/").startswith(_CLIENT_SKIPPED):
                        continue
                elif wheel.name.startswith("tritonclient"):
                    continue
                if name.endswith("/"):
                    continue
                target = site / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(info))
    return site


def pack_folder(folder: Path, out: Path, *, skip: tuple[str, ...] = ()) -> Path:
    """``out`` (.tar.xz) of a folder's files, paths relative to it, minus ``skip`` parts."""
    with lzma.open(out, "wb", preset=9) as packed, tarfile.open(fileobj=packed, mode="w") as tar:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not any(part in skip for part in path.parts):
                tar.add(path, arcname=str(path.relative_to(folder)))
    return out


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def build(out: Path, *, model: Path, images: Path, python_version: str) -> int:
    """Write the kit into `out` (replacing what was there); return its size in bytes."""
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model, out / "yolov8n.onnx")
    shutil.rmtree(out / "images", ignore_errors=True)
    shutil.copytree(images, out / "images", ignore=shutil.ignore_patterns("LICENSE", "*.txt"))
    # ../shared is read-only and copytree keeps modes: the next build must be able to replace it.
    for path in [out / "images", *(out / "images").rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)
    with tempfile.TemporaryDirectory(prefix="objectvision-gpu-kit-") as tmp:
        wheels = download([PYTRITON, *CLIENT_WHEELS], python_version, Path(tmp))
        (server,) = [w for w in wheels if w.name.startswith("nvidia_pytriton")]
        trim_server(server, out / "triton.tar.xz", python_version)
        shutil.rmtree(out / "site", ignore_errors=True)
        site = unpack_client([w for w in wheels if w != server], Path(tmp) / "site")
        pack_folder(site, out / "site.tar.xz")
        (numpy_wheel,) = download([STUB_NUMPY], python_version, Path(tmp) / "numpy")
        with zipfile.ZipFile(numpy_wheel) as archive:
            archive.extractall(Path(tmp) / "stub-numpy")  # noqa: S202 - a wheel pip just fetched
        pack_folder(Path(tmp) / "stub-numpy", out / "stub-numpy.tar.xz", skip=("tests",))
    return _size(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.gpu_kit", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", type=Path, default=REPOSITORY / ".gpu")
    parser.add_argument("--python-version", default="3.12", help="the GPU box's python3")
    shared = REPOSITORY.parent / "shared"
    parser.add_argument("--model", type=Path, default=shared / "models" / "yolov8n.onnx")
    parser.add_argument("--images", type=Path, default=shared / "images")
    args = parser.parse_args(argv)
    size = build(args.out, model=args.model, images=args.images, python_version=args.python_version)
    print(f"wrote {args.out}: {size / 2**20:.1f} MiB")
    if size > KIT_LIMIT_BYTES:
        print(f"too large: keep it under {KIT_LIMIT_BYTES / 2**20:.0f} MiB", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
