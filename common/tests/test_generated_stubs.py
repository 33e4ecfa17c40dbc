"""The committed stubs must be exactly what proto/ generates today."""

import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
PROTO_DIR = REPOSITORY / "proto"
STUBS_DIR = REPOSITORY / "common" / "src" / "objectvision" / "v1"


def test_committed_stubs_match_the_proto_contracts(tmp_path: Path) -> None:
    protos = sorted(str(p) for p in (PROTO_DIR / "objectvision" / "v1").glob("*.proto"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{PROTO_DIR}",
            f"--python_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            f"--plugin=protoc-gen-mypy_grpc={Path(sys.executable).parent / 'protoc-gen-mypy_grpc'}",
            f"--mypy_grpc_out={tmp_path}",
            *protos,
        ],
        check=True,
    )
    generated = {p.name: p.read_bytes() for p in (tmp_path / "objectvision" / "v1").iterdir()}
    committed = {
        p.name: p.read_bytes()
        for p in STUBS_DIR.iterdir()
        if p.name.endswith((".py", ".pyi")) and p.name != "__init__.py"
    }
    assert sorted(generated) == sorted(committed), "stub files differ: run `make proto`"
    stale = [name for name in generated if generated[name] != committed[name]]
    assert not stale, f"stale stubs {stale}: run `make proto` and commit the result"
