#!/bin/sh
# prepare-repository FLAVOUR DEST
#   Write the Triton model repository of yolov8n into DEST (created if missing):
#   cpu  Python backend + ONNX Runtime: yolov8n/config.pbtxt, yolov8n/1/model.py, 1/model.onnx
#   trt  the production GPU repository: yolov8n (the BLS model, Python backend) calling
#        yolov8n_preprocess (DALI) and yolov8n_engine (TensorRT + EfficientNMS); their configs,
#        and yolov8n_engine/model.onnx, the plain export the engine is built from. What only
#        the serving GPU can make comes afterwards, from build_engine.sh (inference/scripts):
#        yolov8n_engine/1/model.plan in the TensorRT image (STEPS=engine) and
#        yolov8n_preprocess/1/model.dali in the tritonserver image (STEPS=dali). Neither image
#        has this project's scripts, so this one copies build_engine.sh and the two scripts it
#        runs (add_efficient_nms.py, dali_letterbox.py) next to DEST, where build_engine.sh
#        looks for them by default: `bash DEST/../build_engine.sh DEST`.
# Environment: MODEL_SOURCE (plain YOLOv8 ONNX export; baked into the image by default),
# MODEL_TOP_K (candidate rows K of the served graph; default: objectvision-prepare-model's).
set -eu
usage="usage: prepare-repository cpu|trt DEST"
flavour="${1:?$usage}"
dest="${2:?$usage}"
source="${MODEL_SOURCE:-/opt/objectvision/model/yolov8n.onnx}"
scripts=/opt/objectvision/bin
log() { echo "[model-prep] $(date -u +%Y-%m-%dT%H:%M:%SZ) $*"; }

case "$flavour" in
    cpu|trt) ;;
    *) echo "$usage" >&2; exit 2 ;;
esac
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Via a temporary name and a rename: the copies in the image are read-only, and a volume that
# outlives a run (compose) still holds the previous run's, which a plain cp could not overwrite.
ship() {
    cp "$scripts/$1" "$2/.$1.tmp"
    mv -f "$2/.$1.tmp" "$2/$1"
}

log "served graph from $source${MODEL_TOP_K:+ (top_k=$MODEL_TOP_K)}"
# shellcheck disable=SC2086 # the optional flag must split into two words
objectvision-prepare-model --source "$source" --output "$work/yolov8n_served.onnx" \
    ${MODEL_TOP_K:+--top-k $MODEL_TOP_K}
mkdir -p "$dest"
log "$flavour repository -> $dest"
if [ "$flavour" = trt ]; then
    # The engine is built from the plain export, which add_efficient_nms.py rewrites for
    # TensorRT (uint8 NHWC in, EfficientNMS out); the served graph only gives the configs
    # their class count here.
    objectvision-triton repo --flavour trt --served "$work/yolov8n_served.onnx" --dest "$dest" \
        --engine-source "$source"
    for script in build_engine.sh add_efficient_nms.py dali_letterbox.py; do
        ship "$script" "$(dirname "$dest")"
    done
    log "model.plan and model.dali still to make on the serving GPU: build_engine.sh $dest"
else
    objectvision-triton repo --flavour cpu --served "$work/yolov8n_served.onnx" --dest "$dest"
fi
log "done"
