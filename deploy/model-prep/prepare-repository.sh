#!/bin/sh
# prepare-repository FLAVOUR DEST
#   Write the Triton model repository of yolov8n into DEST (created if missing):
#   cpu  Python backend + ONNX Runtime: yolov8n/config.pbtxt, yolov8n/1/model.py, 1/model.onnx
#   trt  TensorRT: yolov8n/config.pbtxt and yolov8n/model.onnx (the engine input); the plan,
#        yolov8n/1/model.plan, is built afterwards ON THE SERVING GPU by build_engine.sh
#        (inference/scripts), which this script copies next to DEST (DEST/../build_engine.sh)
#        for the TensorRT container: `bash DEST/../build_engine.sh DEST`.
# Environment: MODEL_SOURCE (plain YOLOv8 ONNX export; baked into the image by default),
# MODEL_TOP_K (candidate rows K of the served graph; default: objectvision-prepare-model's).
set -eu
usage="usage: prepare-repository cpu|trt DEST"
flavour="${1:?$usage}"
dest="${2:?$usage}"
source="${MODEL_SOURCE:-/opt/objectvision/model/yolov8n.onnx}"
log() { echo "[model-prep] $(date -u +%Y-%m-%dT%H:%M:%SZ) $*"; }

case "$flavour" in
    cpu|trt) ;;
    *) echo "$usage" >&2; exit 2 ;;
esac
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

log "served graph from $source${MODEL_TOP_K:+ (top_k=$MODEL_TOP_K)}"
# shellcheck disable=SC2086 # the optional flag must split into two words
objectvision-prepare-model --source "$source" --output "$work/yolov8n_served.onnx" \
    ${MODEL_TOP_K:+--top-k $MODEL_TOP_K}
mkdir -p "$dest"
log "$flavour repository -> $dest"
objectvision-triton repo --served "$work/yolov8n_served.onnx" --dest "$dest" --flavour "$flavour"
if [ "$flavour" = trt ]; then
    cp /opt/objectvision/bin/build_engine.sh "$(dirname "$dest")/build_engine.sh"
    log "TensorRT plan still to build: build_engine.sh $dest (TensorRT image, serving GPU)"
fi
log "done"
