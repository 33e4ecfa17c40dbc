#!/usr/bin/env bash
# The benchmark on a GPU box, in one command: the raw model (bench/gpu.py), then the encoded-
# image contract: Triton's GPU flavour (nvJPEG, CUDA graphs, device NMS) with JPEGs in, and the
# detection service's Detector path in front of it (bench/gpu_encoded.py).
#
# For a machine with an NVIDIA GPU and a Python with PyTorch (CUDA), numpy, OpenCV, onnx,
# grpcio, psutil and prometheus_client, but no network and no tritonserver/tritonclient (the
# H100 of the device tool). What it lacks travels in .gpu/, made here by `make gpu-kit`:
# the model, the images, a trimmed tritonserver (triton.tar.xz) and the gRPC client (site/).
#
#   OUT=results-dir bash bench/gpu.sh
#
# STAGES=raw,encoded (default both); RAW_ARGS / ENCODED_ARGS go to `python3 -m bench.gpu` /
# `python3 -m bench.gpu_encoded` (e.g. RAW_ARGS="--batches 1,32,128 --seconds 3").
# Writes $OUT/gpu-<timestamp>.json and $OUT/gpu-encoded-<timestamp>.json. Exits 2 without a
# CUDA device, 1 if a stage failed or a model did not find the bus in bus.jpg.
# CPU_DRY_RUN=1 runs the same steps on the CPU (fp32, no graphs): it checks this script and
# the kit on a machine without a GPU; its numbers mean nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
KIT=${KIT:-.gpu}
WORK=${WORK:-/tmp/objectvision-gpu}
STAGES=${STAGES:-raw,encoded}
OUT=${OUT:-bench/results}

raw_device=() serving_device=()
if [ "${CPU_DRY_RUN:-0}" = 1 ]; then
  raw_device=(--device cpu --fp32) serving_device=(--instance-kind cpu)
  export CUDA_VISIBLE_DEVICES=""
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
unpack() {  # unpack ARCHIVE DEST (once per archive: a rebuilt kit is unpacked afresh)
  local stamp
  stamp="$(cksum < "$1")"
  if [ ! -e "$2/.unpacked" ] || [ "$(cat "$2/.unpacked")" != "$stamp" ]; then
    rm -rf "$2"
    mkdir -p "$2"
    "$PYTHON" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2], filter="tar")' "$1" "$2"
    echo "$stamp" > "$2/.unpacked"
  fi
}
if [ -f "$KIT/site.tar.xz" ]; then unpack "$KIT/site.tar.xz" "$WORK/site"; paths="$WORK/site:$paths"; fi
# The Triton stub's environment: the box's packages behind numpy 1.26 (the 2.51 stub misreads
# BYTES inputs under numpy 2).
stub_env="$WORK/stub-env"
if [ -f "$KIT/stub-numpy.tar.xz" ] && [ ! -e "$stub_env/.ready" ]; then
  "$PYTHON" -m venv --without-pip "$stub_env"
  stub_site="$("$stub_env/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  unpack "$KIT/stub-numpy.tar.xz" "$stub_site"
  "$PYTHON" -c 'import site, sys; print("\n".join(site.getsitepackages()))' > "$stub_site/box-packages.pth"
  touch "$stub_env/.ready"
fi
export PYTHONPATH="$paths${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

status=0
if [[ ",$STAGES," == *",raw,"* ]]; then
  # shellcheck disable=SC2086  # RAW_ARGS is a list of arguments
  "$PYTHON" -m bench.gpu --model "$MODEL" --images "$IMAGES" --out "$OUT" \
    "${raw_device[@]}" ${RAW_ARGS:-} || status=1
fi
if [[ ",$STAGES," == *",encoded,"* ]]; then
  server="$WORK/triton"
  unpack "$KIT/triton.tar.xz" "$server"
  stub_args=()
  if [ -e "$stub_env/.ready" ]; then stub_args=(--stub-env "$stub_env"); fi
  # shellcheck disable=SC2086  # ENCODED_ARGS is a list of arguments
  "$PYTHON" -m bench.gpu_encoded --model "$MODEL" --images "$IMAGES" --out "$OUT" \
    --server-site "$server" "${stub_args[@]}" "${serving_device[@]}" ${ENCODED_ARGS:-} || status=1
fi
exit "$status"
