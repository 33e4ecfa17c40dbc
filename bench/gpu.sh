#!/usr/bin/env bash
# The benchmark on a GPU box, in one command: the raw model (bench/gpu.py), then Triton's GPU
# flavour and the detection service's inference path in front of it (bench/gpu_serving.py).
#
# For a machine with an NVIDIA GPU and a Python with PyTorch (CUDA), numpy, OpenCV, onnx,
# grpcio, psutil and prometheus_client, but no network and no tritonserver/tritonclient (the
# H100 of the device tool). What it lacks travels in .gpu/, made here by `make gpu-kit`:
# the model, the images, a trimmed tritonserver (triton.tar.xz) and the gRPC client (site/).
#
#   OUT=results-dir bash bench/gpu.sh
#
# STAGES=raw,serving (default both); RAW_ARGS / SERVING_ARGS go to `python3 -m bench.gpu` /
# `python3 -m bench.gpu_serving` (e.g. RAW_ARGS="--batches 1,32,128 --seconds 3").
# Writes $OUT/gpu-<timestamp>.json and $OUT/gpu-serving-<timestamp>.json. Exits 2 without a
# CUDA device, 1 if a stage failed or a model did not find the bus in bus.jpg.
# CPU_DRY_RUN=1 runs the same steps on the CPU (fp32, no graphs): it checks this script and
# the kit on a machine without a GPU; its numbers mean nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
KIT=${KIT:-.gpu}
WORK=${WORK:-/tmp/objectvision-gpu}
STAGES=${STAGES:-raw,serving}
OUT=${OUT:-bench/results}

raw_device=() serving_device=()
if [ "${CPU_DRY_RUN:-0}" = 1 ]; then
  raw_device=(--device cpu --fp32) serving_device=(--instance-kind cpu)
elif ! "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null
then
  echo "bench/gpu.sh: no CUDA device: needs an NVIDIA GPU and PyTorch with CUDA in $PYTHON" >&2
  exit 2
else
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
fi

first() {
  for candidate in "$@"; do
    if [ -e "$candidate" ]; then echo "$candidate"; return; fi
  done
  echo "none of: $*" >&2
  return 1
}
MODEL=${MODEL:-$(first "$KIT/yolov8n.onnx" ../shared/models/yolov8n.onnx)}
IMAGES=${IMAGES:-$(first "$KIT/images" ../shared/images)}

# Extra wheels, if any were carried in .whl/, and the kit's client packages go first on the
# path of the benchmark's own processes (tritonserver's stub never sees PYTHONPATH).
paths="$PWD/inference/src:$PWD/detection-service/src:$PWD/common/src:$PWD"
if compgen -G ".whl/*.whl" >/dev/null; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$WORK/wheels" .whl/*.whl
  paths="$WORK/wheels:$paths"
fi
if [ -d "$KIT/site" ]; then paths="$(cd "$KIT/site" && pwd):$paths"; fi
export PYTHONPATH="$paths${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

status=0
if [[ ",$STAGES," == *",raw,"* ]]; then
  # shellcheck disable=SC2086  # RAW_ARGS is a list of arguments
  "$PYTHON" -m bench.gpu --model "$MODEL" --images "$IMAGES" --out "$OUT" \
    "${raw_device[@]}" ${RAW_ARGS:-} || status=1
fi
if [[ ",$STAGES," == *",serving,"* ]]; then
  server="$WORK/triton"
  if [ ! -x "$server/pytriton/tritonserver/bin/tritonserver" ]; then
    if [ ! -f "$KIT/triton.tar.xz" ]; then
      echo "bench/gpu.sh: no $KIT/triton.tar.xz: run \`make gpu-kit\` where pip works" >&2
      exit 1
    fi
    mkdir -p "$server"
    "$PYTHON" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2], filter="tar")' \
      "$KIT/triton.tar.xz" "$server"
  fi
  # shellcheck disable=SC2086  # SERVING_ARGS is a list of arguments
  "$PYTHON" -m bench.gpu_serving --model "$MODEL" --images "$IMAGES" --out "$OUT" \
    --server-site "$server" "${serving_device[@]}" ${SERVING_ARGS:-} || status=1
fi
exit "$status"
