#!/usr/bin/env bash
# The raw-model stage on a GPU box: PyTorch fp16 through onnx2torch (bench/gpu.py).
#
# For a machine with an NVIDIA GPU, PyTorch with CUDA, numpy, OpenCV and onnxruntime, but no
# network (the H100 of the device tool): onnx2torch is not installed there, so it travels as a
# wheel in .whl/, and the model and images travel in .gpu/ (../shared is not carried).
#
#   MODEL=path/to/yolov8n.onnx IMAGES=path/to/images OUT=results-dir bash bench/gpu.sh [ARGS]
#
# ARGS go to `python3 -m bench.gpu` (--batches 1,8,32,64,128 --seconds 8 ...). Writes
# $OUT/gpu-<timestamp>.json; exits 1 if the model does not find the bus in bus.jpg.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if compgen -G ".whl/*.whl" >/dev/null; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/bench-site .whl/*.whl
  export PYTHONPATH="/tmp/bench-site${PYTHONPATH:+:$PYTHONPATH}"
fi

first() {
  for candidate in "$@"; do
    if [ -e "$candidate" ]; then echo "$candidate"; return; fi
  done
  echo "none of: $*" >&2
  return 1
}
MODEL=${MODEL:-$(first .gpu/yolov8n.onnx ../shared/models/yolov8n.onnx)}
IMAGES=${IMAGES:-$(first .gpu/images ../shared/images)}
OUT=${OUT:-bench/results}

"$PYTHON" -c "import torch, onnx2torch; assert torch.cuda.is_available(), 'no CUDA device'" || {
  echo "needs PyTorch with a CUDA device and onnx2torch (carry its wheel in .whl/)" >&2
  exit 2
}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
exec "$PYTHON" -m bench.gpu --model "$MODEL" --images "$IMAGES" --out "$OUT" "$@"
