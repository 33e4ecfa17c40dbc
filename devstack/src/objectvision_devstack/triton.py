"""A real Triton server from the nvidia-pytriton wheel, serving the prepared YOLOv8 model."""

from pathlib import Path

from objectvision_devstack.health import http_ok
from objectvision_devstack.processes import ManagedProcess, free_port
from objectvision_inference.triton import build_model_repository, tritonserver_command

REPOSITORY_ROOT = Path(__file__).resolve().parents[3]


class LocalTriton:
    def __init__(
        self,
        data_dir: Path,
        *,
        served_model: Path | None = None,
        triton_env_dir: Path | None = None,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.served_model = served_model or self.data_dir / "models" / "yolov8n_served.onnx"
        self.triton_env_dir = triton_env_dir or REPOSITORY_ROOT / ".venv-triton"
        self.grpc_port = free_port()
        self.http_port = free_port()
        self.metrics_port = free_port()
        self.repository = self.data_dir / "triton" / "model_repository"
        self.process = self._process()

    def _process(self) -> ManagedProcess:
        argv, env = tritonserver_command(
            self.repository,
            grpc_port=self.grpc_port,
            http_port=self.http_port,
            metrics_port=self.metrics_port,
            triton_env_dir=self.triton_env_dir,
        )
        return ManagedProcess(
            "triton", argv, env=env, log_path=self.data_dir / "logs" / "triton.log"
        )

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def start(self) -> None:
        if not self.served_model.exists():
            raise FileNotFoundError(
                f"{self.served_model} is missing: run `make model` to prepare the served model"
            )
        build_model_repository(self.repository, self.served_model, flavour="cpu")
        self.process = self._process()
        self.process.start()
        ready = f"http://127.0.0.1:{self.http_port}/v2/health/ready"
        self.process.wait_ready(lambda: http_ok(ready), timeout=120)

    def stop(self) -> None:
        self.process.stop()
