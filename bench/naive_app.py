"""The naive baseline: the seed's design as one small FastAPI app, for comparison only.

Per request, in the request's own thread: read the upload, decode, letterbox, run the plain
model in ONNX Runtime at batch 1, decode the 8,400 anchors and NMS in numpy. No batching, no
separate inference server, one uvicorn worker. The endpoint is a plain `def`, as FastAPI
suggests for blocking work, so requests overlap in FastAPI's thread pool the way the seed's
did. Not part of the product.

    python -m bench.naive_app --port 8090 [--model ../shared/models/yolov8n.onnx]
"""

import argparse
from pathlib import Path
from typing import Annotated, Any

import uvicorn
from fastapi import FastAPI, File, HTTPException, UploadFile

from bench.config import BenchConfig
from bench.pipeline import PlainDetector


def create_app(model: Path, *, threads: int | None = None) -> FastAPI:
    detector = PlainDetector(model, threads=threads)
    names = detector.class_names
    app = FastAPI(title="naive baseline")

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/detect")
    def detect(file: Annotated[UploadFile, File()]) -> dict[str, Any]:
        data = file.file.read()
        try:
            (found,) = detector.detect([data])
        except ValueError as error:
            raise HTTPException(status_code=400, detail=str(error)) from None
        return {
            "objects": [
                {
                    "class_id": d.class_id,
                    "class_name": names.get(d.class_id, str(d.class_id)),
                    "confidence": d.confidence,
                    "box": {"x1": d.x1, "y1": d.y1, "x2": d.x2, "y2": d.y2},
                }
                for d in found
            ]
        }

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--model", type=Path, default=BenchConfig.preset(quick=True).model)
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads")
    args = parser.parse_args()
    app = create_app(args.model, threads=args.threads)
    uvicorn.run(
        app, host=args.host, port=args.port, workers=1, access_log=False, log_level="warning"
    )


if __name__ == "__main__":
    main()
